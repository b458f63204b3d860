//! The behaviours that crossbeam's tests pin down for its LIFO structures —
//! crossbeam-deque `tests/lifo.rs` (`Worker::new_lifo`) and the
//! ownership/drop tests of crossbeam-queue `tests/seg_queue.rs` — checked
//! against [`LockFreeStack`]. (crossbeam has no standalone stack; these are
//! its closest tests.) Written for waitless; each test names the peer test
//! that inspired it.

// The structures run on loom's atomics under `--cfg loom`, which work only
// inside `loom::model`: these tests are for the real build.
#![cfg(not(loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use waitless::stack::LockFreeStack;
use waitless_check::DropLedger;

/// Pops one value with a fresh guard.
fn pop<T>(s: &LockFreeStack<T>) -> Option<T> {
    let g = s.enter();
    s.pop(&g)
}

// Inspired by crossbeam-deque `lifo.rs::smoke`.
#[test]
fn last_in_first_out() {
    let s = LockFreeStack::new();
    assert_eq!(pop(&s), None);
    s.push(1).unwrap();
    assert_eq!(pop(&s), Some(1));
    assert_eq!(pop(&s), None);
    s.push(2).unwrap();
    s.push(3).unwrap();
    assert_eq!(pop(&s), Some(3));
    s.push(4).unwrap();
    s.push(5).unwrap();
    assert_eq!(pop(&s), Some(5));
    assert_eq!(pop(&s), Some(4));
    assert_eq!(pop(&s), Some(2));
    assert_eq!(pop(&s), None);
    let g = s.enter();
    for i in 0..10 {
        s.push(i).unwrap();
    }
    let out: Vec<i32> = std::iter::from_fn(|| s.pop(&g)).collect();
    assert_eq!(out, (0..10).rev().collect::<Vec<_>>());
}

// Inspired by crossbeam-deque `lifo.rs::is_empty` and crossbeam-queue
// `seg_queue.rs::len_empty_full`.
#[test]
fn len_and_is_empty_agree_when_quiet() {
    let s = LockFreeStack::new();
    assert!(s.is_empty());
    assert_eq!(s.len(), 0);
    for i in 0..50 {
        s.push(i).unwrap();
        assert_eq!(s.len(), i + 1);
        assert!(!s.is_empty());
    }
    for i in (0..50).rev() {
        assert_eq!(pop(&s), Some(i));
        assert_eq!(s.len(), i);
    }
    assert!(s.is_empty());
    let st = s.stats();
    assert_eq!(st.successful_pushes, 50);
    assert_eq!(st.successful_pops, 50);
}

// Inspired by crossbeam-deque `lifo.rs::spsc` and `stampede`: values pushed
// by some threads and popped by others arrive exactly once, in whatever
// order the threads interleave: never twice, never lost.
#[test]
fn concurrent_push_pop_no_loss_no_duplication() {
    let per = if cfg!(miri) { 40 } else { 20_000 };
    let threads = 3;
    let s = LockFreeStack::new();
    let seen: Vec<AtomicUsize> = (0..per * threads).map(|_| AtomicUsize::new(0)).collect();
    let popped = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for t in 0..threads {
            let s = &s;
            sc.spawn(move || {
                for i in 0..per {
                    s.push(t * per + i).unwrap();
                }
            });
        }
        for _ in 0..threads {
            sc.spawn(|| {
                let g = s.enter();
                while popped.load(Ordering::Relaxed) < per * threads {
                    if let Some(v) = s.pop(&g) {
                        seen[v].fetch_add(1, Ordering::Relaxed);
                        popped.fetch_add(1, Ordering::Relaxed);
                    } else {
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    for (v, c) in seen.iter().enumerate() {
        assert_eq!(c.load(Ordering::Relaxed), 1, "value {v}");
    }
    assert!(s.is_empty());
    assert_eq!(pop(&s), None);
}

// Inspired by crossbeam-deque `lifo.rs::destructors`: threads pop part of
// a filled stack; the values popped are dropped by their poppers, and the
// stack's own drop drops exactly the rest — the bottom of the stack, a
// contiguous run of the first pushes, since only pops ran.
#[test]
fn destructors_cover_exactly_what_was_left() {
    let count = if cfg!(miri) { 200 } else { 50_000 };
    let steps = if cfg!(miri) { 20 } else { 2_000 };
    let threads = 3;
    let ledger = DropLedger::new(count);
    let s = LockFreeStack::new();
    for id in 0..count {
        s.push(ledger.track(id)).unwrap();
    }
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                let g = s.enter();
                for _ in 0..steps {
                    drop(s.pop(&g).expect("enough values"));
                }
            });
        }
    });
    let rem = count - threads * steps;
    assert_eq!(ledger.dropped(), threads * steps);
    assert_eq!(ledger.live_ids(), (0..rem).collect::<Vec<_>>());
    drop(s);
    ledger.assert_all_dropped();
    assert_eq!(ledger.dropped(), count);
}

// Inspired by crossbeam-queue `seg_queue.rs::into_iter` and
// `into_iter_drop`: draining yields LIFO order, and stopping half way
// leaves the rest to the stack's drop.
#[test]
fn a_partial_drain_leaves_the_rest_to_drop() {
    let ledger = DropLedger::new(100);
    let s: LockFreeStack<_> = (0..100).map(|id| ledger.track(id)).collect();
    let firsts: Vec<usize> = s.drain().take(50).map(|t| t.id()).collect();
    assert_eq!(firsts, (50..100).rev().collect::<Vec<_>>());
    assert_eq!(ledger.live(), 50);
    assert_eq!(s.len(), 50);
    drop(s);
    ledger.assert_all_dropped();
}

// Inspired by crossbeam-queue `seg_queue.rs::stack_overflow`: big elements
// and a long list neither overflow the thread's stack on push/pop nor on
// the structure's drop (no recursive node drop).
#[test]
fn big_elements_and_long_lists_do_not_overflow_the_stack() {
    const N: usize = 32_768;
    struct Big {
        data: [u8; N],
    }
    let s = LockFreeStack::new();
    s.push(Big { data: [7; N] }).unwrap();
    s.push(Big { data: [8; N] }).unwrap();
    assert_eq!(pop(&s).map(|b| b.data[N - 1]), Some(8));
    drop(s);

    let n = if cfg!(miri) { 1_000 } else { 300_000 };
    // A small thread stack: a recursive drop of `n` nodes would overflow it.
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let s = LockFreeStack::new();
            for i in 0..n {
                s.push(vec![i]).unwrap();
            }
            drop(s);
        })
        .unwrap()
        .join()
        .unwrap();
}

// Inspired by rtrb `lib.rs::zero_sized_type`.
#[test]
fn zero_sized_values() {
    let s = LockFreeStack::new();
    for _ in 0..10 {
        s.push(()).unwrap();
    }
    assert_eq!(s.len(), 10);
    assert_eq!(s.drain().count(), 10);
    assert_eq!(pop(&s), None);
}

// Inspired by crossbeam-deque's `Worker::push` ownership and
// `FromIterator`/`Extend` for crossbeam's collections (`SegQueue`).
#[test]
fn collect_and_extend() {
    let mut s: LockFreeStack<u32> = (0..3).collect();
    s.extend([10, 11]);
    (&s).extend([20]);
    assert_eq!(s.drain().collect::<Vec<_>>(), [20, 11, 10, 2, 1, 0]);
}

/// Panics in its drop for value 1; counts every drop.
struct PanicOnDrop<'a>(usize, &'a AtomicUsize);
impl Drop for PanicOnDrop<'_> {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        assert!(self.0 != 1, "T::drop panics for value 1");
    }
}

// Inspired by crossbeam-deque `lifo.rs::destructors` together with the
// SPEC §2 promise: one panicking `T::drop` while the stack is dropped
// leaks nothing else.
#[test]
fn a_panicking_drop_leaks_nothing_else() {
    let drops = AtomicUsize::new(0);
    let s = LockFreeStack::new();
    for i in 0..5 {
        s.push(PanicOnDrop(i, &drops)).unwrap();
    }
    assert!(catch_unwind(AssertUnwindSafe(move || drop(s))).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

// Inspired by crossbeam's guard-from-another-collector checks
// (crossbeam-epoch refuses a guard of a different collector): a guard of
// another stack is refused.
#[test]
#[should_panic(expected = "guard was created by another stack")]
fn a_guard_of_another_stack_is_refused() {
    let a = LockFreeStack::new();
    let b: LockFreeStack<u8> = LockFreeStack::new();
    a.push(1u8).unwrap();
    let g = b.enter();
    let _ = a.pop(&g);
}

// Inspired by crossbeam's `Send + Sync` bounds (`T: Send` suffices for a
// structure that moves values between threads).
#[test]
fn auto_traits() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LockFreeStack<String>>();
    send_sync::<LockFreeStack<std::cell::Cell<u8>>>();
    let s = LockFreeStack::<u8>::default();
    assert!(format!("{s:?}").contains("LockFreeStack"));
}
