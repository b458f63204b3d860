//! loom models of pin / advance / collect.
//!
//! A node holds a loom `UnsafeCell`; readers read it while pinned and the
//! deferred destructor writes it before freeing. loom reports a data race
//! (a causality violation) if the destructor could run while a pinned
//! reader that saw the node is not yet done with it.

use super::*;
use crate::sync::atomic::{AtomicPtr, Ordering};
use crate::sync::{Arc, UnsafeCell};
use loom::thread;

struct Node {
    value: UnsafeCell<u64>,
}

struct SendPtr(*mut Node);
// SAFETY: the pointer is handed to the deferred destructor, which is the
// only code that frees it.
unsafe impl Send for SendPtr {}

fn new_node(v: u64) -> *mut Node {
    Box::into_raw(Box::new(Node {
        value: UnsafeCell::new(v),
    }))
}

/// Reader pins and reads the current node; writer replaces it, retires the
/// old one and advances as hard as it can.
#[test]
fn no_free_while_a_pinned_reader_can_see_the_node() {
    loom::model(|| {
        let c = Arc::new(Collector::new());
        let shared = Arc::new(AtomicPtr::new(new_node(1)));

        let reader = {
            let (c, shared) = (Arc::clone(&c), Arc::clone(&shared));
            thread::spawn(move || {
                let g = c.pin();
                let p = shared.load(Ordering::Acquire);
                // SAFETY: pinned: `p` is not freed until `g` drops.
                let v = unsafe { (*p).value.with(|v| *v) };
                assert!(v == 1 || v == 2, "read a destroyed node: {v}");
                drop(g);
            })
        };

        let old = shared.swap(new_node(2), Ordering::AcqRel);
        {
            let g = c.pin();
            let old = SendPtr(old);
            let f = move || {
                let old = old;
                // SAFETY: deferred: every reader that could see `old` has
                // unpinned; the write models destruction.
                unsafe {
                    (*old.0).value.with_mut(|v| *v = 0);
                    drop(Box::from_raw(old.0));
                }
            };
            // SAFETY: `f` frees a node nobody can reach any more; freeing is
            // sound on any thread.
            unsafe { g.defer_unchecked(f) };
            g.flush();
        }
        for _ in 0..3 {
            c.try_advance();
        }
        reader.join().unwrap();
        let last = shared.load(Ordering::Relaxed);
        // SAFETY: all threads are done; `last` is still owned by `shared`.
        drop(unsafe { Box::from_raw(last) });
        // Dropping the collector runs the destructor if it has not run.
        drop(c);
    });
}

/// Two threads retire concurrently; both retirements run exactly once,
/// whether by collection or when the collector drops, and a thread that
/// exits hands its bag over.
#[test]
fn concurrent_retire_runs_each_destructor_once() {
    loom::model(|| {
        let c = Arc::new(Collector::new());
        let runs = Arc::new(crate::sync::atomic::AtomicUsize::new(0));
        let t = {
            let (c, runs) = (Arc::clone(&c), Arc::clone(&runs));
            thread::spawn(move || {
                let g = c.pin();
                g.defer(move || {
                    runs.fetch_add(1, Ordering::Relaxed);
                });
            })
        };
        {
            let g = c.pin();
            let runs = Arc::clone(&runs);
            g.defer(move || {
                runs.fetch_add(1, Ordering::Relaxed);
            });
            g.flush();
        }
        c.try_advance();
        t.join().unwrap();
        let c = Arc::try_unwrap(c).ok().expect("the only owner");
        drop(c);
        assert_eq!(runs.load(Ordering::Relaxed), 2);
    });
}

/// As above, with a third thread advancing and collecting concurrently, so
/// a seal can race with an advance and a collection (a bag may be sealed
/// with an epoch newer than the collector's load).
#[test]
fn concurrent_advancer_never_frees_under_a_pinned_reader() {
    loom::model(|| {
        let c = Arc::new(Collector::new());
        let shared = Arc::new(AtomicPtr::new(new_node(1)));

        let reader = {
            let (c, shared) = (Arc::clone(&c), Arc::clone(&shared));
            thread::spawn(move || {
                let g = c.pin();
                let p = shared.load(Ordering::Acquire);
                // SAFETY: pinned: `p` is not freed until `g` drops.
                let v = unsafe { (*p).value.with(|v| *v) };
                assert!(v == 1 || v == 2, "read a destroyed node: {v}");
                drop(g);
            })
        };
        let advancer = {
            let c = Arc::clone(&c);
            thread::spawn(move || {
                c.try_advance();
                c.try_advance();
            })
        };

        let old = shared.swap(new_node(2), Ordering::AcqRel);
        {
            let g = c.pin();
            let old = SendPtr(old);
            let f = move || {
                let old = old;
                // SAFETY: as in the test above.
                unsafe {
                    (*old.0).value.with_mut(|v| *v = 0);
                    drop(Box::from_raw(old.0));
                }
            };
            // SAFETY: as in the test above.
            unsafe { g.defer_unchecked(f) };
            g.flush();
        }
        c.try_advance();
        reader.join().unwrap();
        advancer.join().unwrap();
        let last = shared.load(Ordering::Relaxed);
        // SAFETY: all threads are done; `last` is still owned by `shared`.
        drop(unsafe { Box::from_raw(last) });
        drop(c);
    });
}

/// The reader holds two guards and drops the outer one first, then reads
/// again under the inner one: the pin path counts only nested guards
/// (`LocalState::nested`), and the node must stay alive until the last
/// guard, whichever was taken first, is gone.
#[test]
fn nested_guards_dropped_out_of_order_protect_until_the_last() {
    loom::model(|| {
        let c = Arc::new(Collector::new());
        let shared = Arc::new(AtomicPtr::new(new_node(1)));

        let reader = {
            let (c, shared) = (Arc::clone(&c), Arc::clone(&shared));
            thread::spawn(move || {
                let outer = c.pin();
                let inner = c.pin();
                let p = shared.load(Ordering::Acquire);
                drop(outer);
                // SAFETY: still pinned by `inner`: `p` is not freed yet.
                let v = unsafe { (*p).value.with(|v| *v) };
                assert!(v == 1 || v == 2, "read a destroyed node: {v}");
                drop(inner);
            })
        };

        let old = shared.swap(new_node(2), Ordering::AcqRel);
        {
            let g = c.pin();
            let old = SendPtr(old);
            let f = move || {
                let old = old;
                // SAFETY: as in the first model.
                unsafe {
                    (*old.0).value.with_mut(|v| *v = 0);
                    drop(Box::from_raw(old.0));
                }
            };
            // SAFETY: as in the first model.
            unsafe { g.defer_unchecked(f) };
            g.flush();
        }
        for _ in 0..3 {
            c.try_advance();
        }
        reader.join().unwrap();
        let last = shared.load(Ordering::Relaxed);
        // SAFETY: all threads are done; `last` is still owned by `shared`.
        drop(unsafe { Box::from_raw(last) });
        drop(c);
    });
}

/// The reader's second pin is due for the periodic collection (every
/// second pin under loom), which runs with the pin withdrawn and may run
/// the writer's destructor itself; the pin is then published again and
/// the read that follows must still be protected: it sees the new node,
/// or the old one not yet destroyed. (One model: under loom the
/// asymmetric strategy falls back to the symmetric one.)
#[test]
fn a_pin_published_again_after_a_withdrawn_collection_protects() {
    loom::model(move || {
        let c = Arc::new(Collector::with_strategy(FenceStrategy::Symmetric));
        let shared = Arc::new(AtomicPtr::new(new_node(1)));

        let reader = {
            let (c, shared) = (Arc::clone(&c), Arc::clone(&shared));
            thread::spawn(move || {
                drop(c.pin());
                let g = c.pin();
                let p = shared.load(Ordering::Acquire);
                // SAFETY: pinned: `p` is not freed until `g` drops.
                let v = unsafe { (*p).value.with(|v| *v) };
                assert!(v == 1 || v == 2, "read a destroyed node: {v}");
                drop(g);
            })
        };

        let old = shared.swap(new_node(2), Ordering::AcqRel);
        {
            let g = c.pin();
            let old = SendPtr(old);
            let f = move || {
                let old = old;
                // SAFETY: as in the first test.
                unsafe {
                    (*old.0).value.with_mut(|v| *v = 0);
                    drop(Box::from_raw(old.0));
                }
            };
            // SAFETY: as in the first test.
            unsafe { g.defer_unchecked(f) };
            g.flush();
        }
        c.try_advance();
        c.try_advance();
        reader.join().unwrap();
        let last = shared.load(Ordering::Relaxed);
        // SAFETY: all threads are done; `last` is still owned by `shared`.
        drop(unsafe { Box::from_raw(last) });
        drop(c);
    });
}
