//! Review loom models (map12fr, wave 7): under loom every map write that
//! retires something scans when its guard drops (the hazard domain's loom
//! `BATCH` is 1 "so the models see the shared list on every path", and
//! `tests/loom_map.rs` relies on "under loom every retire scans ... so the
//! rare paths (reclamation, ...) run"). map12f's `collect_at(SCAN_BATCH)`
//! (08a94a9) hands over only once 16 objects are retired under loom, so the
//! loom models never free a value or entry while other threads run: the
//! reclamation races they were written for go unexplored. Values carry a
//! std `Arc` token (not modeled by loom): its count tells what was freed.
//!
//! Both pass on main (0f45b10) and on map12f since 0a27cfc (`SCAN_BATCH` 1
//! under loom, map12fr's fix2), and fail on map12f@fe08646..08fa876 (5
//! tokens alive instead of 3).
//!
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom
//!  cargo test -p waitless --release --test review_map_loom_scan -- --test-threads=1`
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use waitless::map::LockFreeHashMap;

#[derive(Clone)]
struct Tok(u64, #[allow(dead_code)] std::sync::Arc<()>);

/// One thread: three replaces retire the first three values (the inline
/// one and two boxes); each write's guard drop scans, so every replaced
/// value but the last is freed before the map is dropped (the last is
/// still under its writer's own hazard when that writer's guard scans).
#[test]
fn a_write_frees_what_it_retired_when_nothing_protects_it() {
    loom::model(|| {
        let token = std::sync::Arc::new(());
        let m: LockFreeHashMap<u64, Tok> = LockFreeHashMap::new();
        m.insert(1, Tok(10, token.clone()));
        m.insert(1, Tok(11, token.clone()));
        m.insert(1, Tok(12, token.clone()));
        m.insert(1, Tok(13, token.clone()));
        // The token, the current value and the last replaced one.
        assert_eq!(
            std::sync::Arc::strong_count(&token),
            3,
            "a write's guard drop did not scan: retired values wait for the map's drop"
        );
    });
}

/// A reader (`get_with`, hazard on the value) races a writer that replaces
/// the value; the writer's scan runs while the reader may hold its hazard.
/// Whatever the interleaving, the reader sees one of the two values, and
/// once both are done one more write on the main thread (whose guard drop
/// scans, with no other thread's hazard left) frees every replaced value
/// but its own (still under its own hazard when it scans).
#[test]
fn a_scan_races_a_reader_and_frees_after_it() {
    loom::model(|| {
        let token = std::sync::Arc::new(());
        let m = Arc::new(LockFreeHashMap::<u64, Tok>::new());
        m.insert(1, Tok(10, token.clone()));
        m.insert(1, Tok(11, token.clone()));
        let r = {
            let m = m.clone();
            thread::spawn(move || m.get_with(&1, |v| v.0))
        };
        m.insert(1, Tok(12, token.clone()));
        let seen = r.join().unwrap();
        assert!(matches!(seen, Some(11 | 12)), "{seen:?}");
        m.insert(1, Tok(13, token.clone()));
        // The token, the current value and the last replaced one.
        assert_eq!(
            std::sync::Arc::strong_count(&token),
            3,
            "replaced values were not freed by the writers' scans"
        );
    });
}
