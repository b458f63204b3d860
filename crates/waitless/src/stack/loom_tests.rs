//! loom models of the stack's races: concurrent push/pop (with and without
//! elimination) and the elimination exchange itself.

use super::*;
use crate::sync::Arc;
use loom::thread;

fn push_pop_race(cfg: StackConfig) {
    loom::model(move || {
        let s = Arc::new(LockFreeStack::with_config(cfg));
        s.push(0u32).unwrap();
        let t = {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                s.push(1).unwrap();
                let g = s.enter();
                s.pop(&g)
            })
        };
        let mine = {
            let g = s.enter();
            s.pop(&g)
        };
        let theirs = t.join().unwrap();
        let mut seen = vec![];
        seen.extend(mine);
        seen.extend(theirs);
        let g = s.enter();
        while let Some(v) = s.pop(&g) {
            seen.push(v);
        }
        drop(g);
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1], "lost or duplicated a value");
    });
}

#[test]
fn push_pop_race_with_elimination() {
    push_pop_race(StackConfig::default());
}

#[test]
fn push_pop_race_without_elimination() {
    push_pop_race(StackConfig {
        elimination: false,
        statistics: true,
    });
}

/// Two poppers race on one node while a pusher pushes: the popped node's
/// memory is retired, never read after free (loom tracks the cells).
#[test]
fn two_poppers_one_pusher() {
    loom::model(|| {
        let s = Arc::new(LockFreeStack::with_config(StackConfig {
            elimination: false,
            statistics: false,
        }));
        s.push(1u32).unwrap();
        let popper = {
            let s = Arc::clone(&s);
            thread::spawn(move || s.pop(&s.enter()))
        };
        let pusher = {
            let s = Arc::clone(&s);
            thread::spawn(move || s.push(2).unwrap())
        };
        let a = s.pop(&s.enter());
        let b = popper.join().unwrap();
        pusher.join().unwrap();
        let mut seen: Vec<u32> = a.into_iter().chain(b).collect();
        while let Some(v) = s.pop(&s.enter()) {
            seen.push(v);
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2]);
    });
}

/// The exchange: an offer is taken by exactly one popper or withdrawn.
#[test]
fn elimination_exchange() {
    loom::model(|| {
        let e: Arc<Elimination<u32>> = Arc::new(Elimination::new());
        struct SendPtr(*mut Node<u32>);
        // SAFETY: the node moves to the pusher thread, then to at most one
        // taker, as the protocol under test guarantees.
        unsafe impl Send for SendPtr {}
        // SAFETY: a null block: a fresh allocation.
        let raw = unsafe { alloc_node(7u32, core::ptr::null_mut()) };
        let node = SendPtr(raw.ok().unwrap());
        let pusher = {
            let e = Arc::clone(&e);
            thread::spawn(move || {
                let node = node;
                let taken = e.offer(node.0, 0);
                if !taken {
                    // Still ours: clean up.
                    // SAFETY: withdrawn, never published elsewhere.
                    unsafe {
                        let _ = take_value(node.0);
                        dealloc_node(node.0);
                    }
                }
                taken
            })
        };
        let got = e.take(0).map(|p| {
            // SAFETY: `take` handed us the node exclusively.
            let v = unsafe { take_value(p) };
            // SAFETY: exclusive; value moved out.
            unsafe { dealloc_node(p) };
            v
        });
        let taken = pusher.join().unwrap();
        assert_eq!(taken, got.is_some(), "offer and take disagree");
        if let Some(v) = got {
            assert_eq!(v, 7);
        }
        assert!(e.is_idle());
    });
}

/// The node cache's reuse after a grace period (no ABA). The stack is
/// `2 -> 1`; a second thread pops while the main thread pops, advances the
/// epoch as far as it may, then pushes `3`, which reuses the popped node's
/// block exactly when its grace period has ended (the block is then in the
/// main thread's record in the stack's collector: its pool's free list). A popper that read the old head before must not
/// see the recycled block as that head: every value comes out exactly once,
/// and loom checks that no access to a node's cells races with its reuse.
#[test]
fn node_cache_reuse_after_grace_period() {
    use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
    static REUSED: AtomicBool = AtomicBool::new(false);
    loom::model(|| {
        let s = Arc::new(LockFreeStack::with_config(StackConfig {
            elimination: false,
            statistics: false,
        }));
        s.push(1u32).unwrap();
        s.push(2u32).unwrap();
        let popper = {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                let g = s.enter();
                s.pop(&g)
            })
        };
        let a = {
            let g = s.enter();
            s.pop(&g)
        };
        s.advance_epoch();
        s.advance_epoch();
        s.advance_epoch();
        if crate::epoch::thread_free_bytes() > 0 {
            // The push below takes a recycled block.
            REUSED.store(true, StdOrdering::Relaxed);
        }
        s.push(3).unwrap();
        let b = popper.join().unwrap();
        let mut seen: Vec<u32> = a.into_iter().chain(b).collect();
        while let Some(v) = s.pop(&s.enter()) {
            seen.push(v);
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2, 3], "lost or duplicated a value");
    });
    assert!(
        REUSED.load(StdOrdering::Relaxed),
        "no execution reused a node: the model does not exercise the cache"
    );
}

/// A thread that pops and exits hands the node it retired (in its record's
/// pool) to the collector's garbage list at its exit; a reader that was
/// pinned on the stack before the pop keeps it alive, and every value comes
/// out exactly once. The main thread then advances and pushes again, which
/// may reuse a block of its own pool only after a grace period.
#[test]
fn exiting_popper_hands_its_retired_node_over() {
    loom::model(|| {
        let s = Arc::new(LockFreeStack::with_config(StackConfig {
            elimination: false,
            statistics: false,
        }));
        s.push(1u32).unwrap();
        s.push(2u32).unwrap();
        let popper = {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                let g = s.enter();
                let v = s.pop(&g);
                drop(g);
                // Thread exit: the pool's retired node goes to the garbage
                // list (`Global::release`).
                v
            })
        };
        let a = {
            let g = s.enter();
            s.pop(&g)
        };
        let b = popper.join().unwrap();
        s.advance_epoch();
        s.advance_epoch();
        s.advance_epoch();
        s.push(3).unwrap();
        let mut seen: Vec<u32> = a.into_iter().chain(b).collect();
        while let Some(v) = s.pop(&s.enter()) {
            seen.push(v);
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2, 3], "lost or duplicated a value");
    });
}
