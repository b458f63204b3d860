//! Review (map12gr, wave 8): the window between the fast path's read of the
//! record cache's `LAST` entry (`Domain::cached_local`, used by
//! `CachedSet::try_new` and `HazardSet::new_in`, and `Domain::local`) and
//! the owner-only mask test-and-set on the record it names.
//!
//! A signal handler that lands in that window and uses enough other hazard
//! domains (maps: each map has its own) to fill the thread's record cache
//! evicts the interrupted domain's entry, whose record has no slot taken
//! yet, and `uncache` releases it. The interrupted frame then reserves and
//! publishes into a record that another thread may acquire meanwhile (a
//! data race on the owner-only `mask`; two threads publishing into one
//! slot; a protection overwritten is a use-after-free), and
//! `CachedSet::drop` relies on the record still being cached.
//!
//! The handler is simulated by running its operations between the two steps
//! on the same thread (no signal is needed to show the state it leaves).
//! Pre-existing: main's `cache::local` + `reserve_run` has the same window.
//! Fixed by map12g in dc876c1 (the cache evicts only entries of dropped
//! domains); this test failed before it. Needs
//! `#[cfg(all(test, not(loom)))] mod review_map12gr;` in `hazard/mod.rs`.

use super::{Domain, HazardPointer};

/// Records the cache holds (its `MAX_ENTRIES`).
const CACHE_ENTRIES: usize = 8;

#[test]
fn a_handler_in_the_fast_path_window_cannot_hand_the_record_to_another_thread() {
    let d = Domain::new();
    // `d` is the domain this thread used last: its record is `LAST`'s.
    drop(HazardPointer::new_in(&d));
    // The interrupted frame has read `LAST` (and will test-and-set the
    // mask of `ours` next).
    let ours = d.cached_local().expect("d was used last").as_ptr() as usize;
    // The signal handler: reads of as many other maps as the cache holds.
    let others: Vec<Domain> = (0..CACHE_ENTRIES).map(|_| Domain::new()).collect();
    for o in &others {
        drop(HazardPointer::new_in(o));
    }
    // Another thread takes a record of `d` (a map operation of its own).
    let theirs = std::thread::scope(|s| {
        s.spawn(|| {
            let _hp = HazardPointer::new_in(&d);
            d.local().as_ptr() as usize
        })
        .join()
        .expect("thread")
    });
    assert_ne!(
        theirs, ours,
        "the record the interrupted frame is about to reserve and publish into \
         was released by the handler's cache eviction and acquired by another thread"
    );
}
