//! Review tests (q11fr) for the queue's round 7: the record a thread keeps
//! (`ring::Held`) now lives in a `const` thread-local without drop glue,
//! and a second, zero-sized thread-local (`GiveBackAtExit`), registered by
//! the first operation that keeps a record, gives it back at thread exit.
//!
//! Each test checks from outside that no record stays taken after a thread
//! is gone: the queues have ONE record (`with_threads(_, 1)`), so a record
//! that is never given back makes the next thread's claim grow the queue
//! (`verification::records` becomes 2).
//!
//! * `the_first_operation_made_in_a_thread_local_destructor_gives_its_record_back`:
//!   the thread's only operations run inside another thread-local's
//!   destructor, so the guard is first touched (registered) while the
//!   thread's destructors are already running.
//! * `a_destructor_after_the_guard_switching_queues_keeps_nothing` and
//!   `a_destructor_before_the_guard_switching_queues_gives_both_back`: a
//!   destructor that runs more than `GIVE_BACK_AFTER` operations on a second
//!   queue (enough to move the kept record there) after, or before, the
//!   guard's destructor.
//! * `many_short_lived_threads_never_grow_the_queue`: the same over many
//!   threads, each mixing operations in its body and in a destructor.
#![cfg(not(loom))]

use std::cell::RefCell;
use std::sync::Arc;
use std::thread;

use waitless::queue::{verification::records, WaitFreeQueue};

/// More than `ring::GIVE_BACK_AFTER` (64) operations: enough for a thread to
/// move its kept record to the queue it uses.
const SWITCH_OPS: u64 = 70;

/// Operations run by a thread-local's destructor.
struct AtExit {
    queue: Arc<WaitFreeQueue<u64>>,
    pairs: u64,
}

impl Drop for AtExit {
    fn drop(&mut self) {
        for i in 0..self.pairs {
            self.queue.enqueue(i).unwrap();
            assert_eq!(self.queue.dequeue(), Some(i));
        }
    }
}

thread_local! {
    static AT_EXIT: RefCell<Vec<AtExit>> = const { RefCell::new(Vec::new()) };
}

fn at_exit(queue: &Arc<WaitFreeQueue<u64>>, pairs: u64) {
    AT_EXIT.with(|a| {
        a.borrow_mut().push(AtExit {
            queue: Arc::clone(queue),
            pairs,
        })
    });
}

/// The queue's one record is free: a fresh thread's operations do not grow
/// the queue.
fn assert_record_free(q: &Arc<WaitFreeQueue<u64>>, what: &str) {
    assert_eq!(records(q), 1, "{what}: the queue grew already");
    let q2 = Arc::clone(q);
    thread::spawn(move || {
        q2.enqueue(99).unwrap();
        assert_eq!(q2.dequeue(), Some(99));
    })
    .join()
    .unwrap();
    assert_eq!(
        records(q),
        1,
        "{what}: a record stayed taken after its thread exited"
    );
}

/// The plainest case: a thread keeps its record and exits. Failed (on
/// bb0aca3..fc93cec; fixed in 0cb4aba, where a `ring::Keeper` owned by the
/// guard holds the `Arc` and the index) on targets without native
/// thread-locals (`cfg(not(target_thread_local))`: Android,
/// OpenBSD, windows-gnu), where std keeps a `const` thread-local in a
/// heap box behind an OS key and frees that box at thread exit even without
/// drop glue: when `HELD`'s key destructor runs before `GIVE_BACK`'s
/// (ascending key order, as bionic, OpenBSD and Miri run them; `HELD`'s key
/// is created first), the `Held` is freed with its `ManuallyDrop` `Arc`
/// and the record still marked taken, and the guard then finds a fresh,
/// empty `Held`. Witness: `cargo +nightly miri test --target
/// aarch64-linux-android -p waitless --test review_q11fr` (after `cargo
/// +nightly miri setup --target aarch64-linux-android`); every test of this
/// file failed there, and passes on `main` and after the fix.
#[test]
fn a_thread_that_exits_gives_its_record_back() {
    let q = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 1));
    let q2 = Arc::clone(&q);
    thread::spawn(move || {
        q2.enqueue(1).unwrap();
        assert_eq!(q2.dequeue(), Some(1));
    })
    .join()
    .unwrap();
    assert_record_free(&q, "plain thread exit");
}

#[test]
fn the_first_operation_made_in_a_thread_local_destructor_gives_its_record_back() {
    let q = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 1));
    let q2 = Arc::clone(&q);
    // No queue operation in the body: the first one (which keeps the
    // record and registers the guard) runs during thread teardown.
    thread::spawn(move || at_exit(&q2, 3)).join().unwrap();
    assert_record_free(&q, "first operation in a destructor");
}

#[test]
fn a_destructor_after_the_guard_switching_queues_keeps_nothing() {
    let a = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 1));
    let b = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 1));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    thread::spawn(move || {
        // Registered before the guard: on the usual platforms its
        // destructor runs after the guard's.
        at_exit(&b2, SWITCH_OPS);
        a2.enqueue(1).unwrap();
        assert_eq!(a2.dequeue(), Some(1));
    })
    .join()
    .unwrap();
    assert_record_free(&a, "queue a");
    assert_record_free(&b, "queue b");
}

#[test]
fn a_destructor_before_the_guard_switching_queues_gives_both_back() {
    let a = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 1));
    let b = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 1));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    thread::spawn(move || {
        a2.enqueue(1).unwrap();
        assert_eq!(a2.dequeue(), Some(1));
        // Registered after the guard: on the usual platforms its
        // destructor runs first, moves the kept record to `b` (giving `a`'s
        // back), and the guard then gives `b`'s back.
        at_exit(&b2, SWITCH_OPS);
    })
    .join()
    .unwrap();
    assert_record_free(&a, "queue a");
    assert_record_free(&b, "queue b");
}

#[test]
fn many_short_lived_threads_never_grow_the_queue() {
    let threads = if cfg!(miri) { 4 } else { 40 };
    let a = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 1));
    let b = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 1));
    for i in 0..threads {
        let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
        thread::spawn(move || {
            // Vary what runs in the body and in the destructors, and the
            // registration order of the destructors against the guard.
            if i % 2 == 0 {
                at_exit(&a2, 2);
            }
            if i % 3 != 0 {
                a2.enqueue(i).unwrap();
                assert_eq!(a2.dequeue(), Some(i));
            }
            at_exit(&b2, if i % 4 == 1 { SWITCH_OPS } else { 1 });
            if i % 5 == 2 {
                at_exit(&a2, SWITCH_OPS);
            }
        })
        .join()
        .unwrap();
        assert_eq!(records(&a), 1, "thread {i}: a record of a stayed taken");
        assert_eq!(records(&b), 1, "thread {i}: a record of b stayed taken");
    }
    assert_record_free(&a, "queue a");
    assert_record_free(&b, "queue b");
}
