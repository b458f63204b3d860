//! Review models (bt16gr) of session 8's clock: writers (and readers that
//! meet a pending version) advance the clock with one `fetch_add`, then try
//! one CAS on the version's stamp; a scan only loads the clock (Acquire) and
//! reads, at the root and at each handle, the newest version stamped no
//! later than that value.
//!
//! The helper's own model (`btree::loom_tests::a_scan_and_a_lookup_race_an_
//! install_and_its_stamp`) has one writer and one reader thread. These add a
//! *relay*: a second thread observes the first update (through a lookup or
//! a scan, which may stamp the pending version itself: a helper whose bump
//! may land before or after the writer's, and whose CAS may win or lose)
//! and only then makes an update of another leaf. Any snapshot that holds
//! the relayed update must hold the first one; a lookup after a scan that
//! saw a key must see it too. Fan-out is 4 under loom: the map below has
//! two leaves, `[10 20 25] | [30 40]`, so 15 and 45 go to different leaves
//! and neither insert splits.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use waitless::btree::LockFreeBTree;

/// Leaves `[10 20 25] | [30 40]` (the fifth insert splits the full leaf).
fn two_leaves() -> Arc<LockFreeBTree<u64, u64>> {
    let m = LockFreeBTree::new();
    for k in [10, 20, 30, 40, 25] {
        m.insert(k, k);
    }
    Arc::new(m)
}

fn keys(m: &LockFreeBTree<u64, u64>) -> Vec<u64> {
    m.iter()
        .map(|(k, v)| {
            assert_eq!(k, v);
            k
        })
        .collect()
}

/// One preemption suffices for the races these models look for, once the
/// writer is the main thread and runs after both spawns: the writer is
/// stopped between its handle CAS and its increment, or between its
/// increment and its stamp CAS, and the relay and the scanner run (threads
/// that finish hand over without a preemption). A bound of 1 keeps each
/// model to seconds; the CI's default of 2 would take many minutes.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(1);
    b.check(f);
}

/// A lookup relays the first update: the relay thread inserts 45 only
/// after its `get(15)` found 15 (that `get` may be the thread that stamps
/// 15's version). A scan that shows 45 must show 15.
#[test]
fn an_update_relayed_by_a_lookup_is_ordered_after_the_one_it_saw() {
    model(|| {
        let m = two_leaves();
        let relay = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                if m.get(&15).is_some() {
                    assert_eq!(m.insert(45, 45), None);
                }
            })
        };
        let scanner = {
            let m = Arc::clone(&m);
            thread::spawn(move || keys(&m))
        };
        assert_eq!(m.insert(15, 15), None);
        let got = scanner.join().unwrap();
        assert!(
            !got.contains(&45) || got.contains(&15),
            "not a snapshot: the relayed update without the one it saw: {got:?}"
        );
        relay.join().unwrap();
        assert!(keys(&m).contains(&15));
    });
}

/// A scan relays the first update (and may stamp its pending version); a
/// second scan that shows the relayed update must show the first; a lookup
/// made after a scan that saw 15 finds 15.
#[test]
fn an_update_relayed_by_a_scan_is_ordered_after_the_one_it_saw() {
    model(|| {
        let m = two_leaves();
        let relay = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                if keys(&m).contains(&15) {
                    assert_eq!(m.get(&15), Some(15), "a lookup went back");
                    assert_eq!(m.insert(45, 45), None);
                }
            })
        };
        let scanner = {
            let m = Arc::clone(&m);
            thread::spawn(move || keys(&m))
        };
        assert_eq!(m.insert(15, 15), None);
        let got = scanner.join().unwrap();
        assert!(
            !got.contains(&45) || got.contains(&15),
            "not a snapshot: the relayed update without the one it saw: {got:?}"
        );
        relay.join().unwrap();
    });
}
