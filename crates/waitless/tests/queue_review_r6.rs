//! Review tests (q11er) for the queue's round 6: the record a thread keeps
//! across operations (`ring::Held`) is now reached through a cached
//! pointer (`Held::ptr`), looked up by the queue's chunk-0 address.
//!
//! * `a_queue_rebuilt_at_the_same_address_uses_no_stale_record`: queues
//!   of different capacities built and dropped one after another in the
//!   same stack slot (so each new `WaitFreeQueue` lives where the dropped
//!   one did), each used for more than `GIVE_BACK_AFTER` operations so the
//!   thread keeps a record of it, interleaved with a long-lived queue.
//!   Every answer must be the model's and every value dropped once. Fails
//!   if the kept record is keyed by anything a new queue can share with a
//!   dropped one (for example the queue's own address): the new queue then
//!   runs on the old queue's record, whose spare cell does not exist in a
//!   smaller queue.
//! * `a_signal_handler_that_switches_the_kept_record_mid_lookup`: a thread
//!   runs operations on queue `a` while a signal handler on the same thread
//!   runs more than `GIVE_BACK_AFTER` operations on queue `b`, so that the
//!   handler's last operation keeps a record of `b` and gives `a`'s back.
//!   When the signal lands between the key check and the `BUSY` mark in
//!   `Ring::enter_held`, the interrupted operation goes on with the
//!   record of `a` that was just given back and with the cached pointer of
//!   `b`'s record, and `leave_held` then files `b`'s record under `a`'s key.
//!   Failed on 0505b08 (the `debug_assert` in `enter_held`; in release
//!   "cell … used before its chunk"); fixed in 92cb81c, where
//!   `enter_held` re-checks `Held::kept` after the `BUSY` mark.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicU8, Ordering};

use waitless::queue::{QueueError, WaitFreeQueue};

/// A value whose drop is recorded (exactly-once drop check).
struct Tracked<'a> {
    v: usize,
    dropped: &'a [AtomicU8],
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        let before = self.dropped[self.v].fetch_add(1, Ordering::Relaxed);
        assert_eq!(before, 0, "value {} dropped twice", self.v);
    }
}

/// More than `ring::GIVE_BACK_AFTER` (64) operations: enough for a thread to
/// move its kept record to the queue it uses.
const SWITCH_OPS: usize = 70;

#[test]
fn a_queue_rebuilt_at_the_same_address_uses_no_stale_record() {
    let rounds = if cfg!(miri) { 4 } else { 40 };
    let per_queue = if cfg!(miri) {
        SWITCH_OPS + 10
    } else {
        3 * SWITCH_OPS
    };
    let total = rounds * (per_queue + 2) + 2 * rounds + 8;
    let dropped: Vec<AtomicU8> = (0..total).map(|_| AtomicU8::new(0)).collect();
    let mut next = 0;
    let mut fresh = || {
        next += 1;
        next - 1
    };
    let long = WaitFreeQueue::<Tracked<'_>>::with_threads(64, 2);
    let caps = [1024, 2, 1, 64, 8, 4, 256, 16];
    let mut addrs = Vec::new();
    for round in 0..rounds {
        let cap = caps[round % caps.len()];
        let q = WaitFreeQueue::<Tracked<'_>>::with_threads(cap, 1 + round % 4);
        addrs.push(&q as *const _ as usize);
        for i in 0..per_queue {
            let v = fresh();
            q.enqueue(Tracked {
                v,
                dropped: &dropped,
            })
            .unwrap_or_else(|_| panic!("round {round} op {i}: Full on an empty queue"));
            let out = q.dequeue().map(|t| t.v);
            assert_eq!(out, Some(v), "round {round} (capacity {cap}) op {i}");
        }
        // One value left in `q` (dropped with it) and one in `long`.
        let left = fresh();
        q.enqueue(Tracked {
            v: left,
            dropped: &dropped,
        })
        .unwrap_or_else(|_| panic!("round {round}: Full"));
        let kept = fresh();
        if let Err(QueueError::Full(_)) = long.enqueue(Tracked {
            v: kept,
            dropped: &dropped,
        }) {
            assert!(long.dequeue().is_some());
        }
        drop(q);
        assert_eq!(
            dropped[left].load(Ordering::Relaxed),
            1,
            "round {round}: the value left in the dropped queue was not dropped once"
        );
    }
    drop(long);
    for (v, d) in dropped.iter().enumerate().take(next) {
        assert_eq!(d.load(Ordering::Relaxed), 1, "value {v} not dropped once");
    }
    // The test is about queues at one address: check it got them (not
    // under Miri, which does not reuse stack addresses; there it checks the
    // kept records of dropped queues for undefined behaviour).
    if cfg!(miri) {
        return;
    }
    addrs.sort_unstable();
    addrs.dedup();
    assert!(
        addrs.len() < rounds,
        "no two queues shared an address; the test did not test anything"
    );
}

#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore)] // Miri runs no signal handlers
fn a_signal_handler_that_switches_the_kept_record_mid_lookup() {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::OnceLock;
    use std::thread;

    static A: OnceLock<WaitFreeQueue<u64>> = OnceLock::new();
    static B: OnceLock<WaitFreeQueue<u64>> = OnceLock::new();
    static HANDLED: AtomicU64 = AtomicU64::new(0);
    static WRONG_B: AtomicU64 = AtomicU64::new(0);
    static PROGRESS: AtomicU64 = AtomicU64::new(0);
    static DONE: AtomicBool = AtomicBool::new(false);
    static SENDER_STOPPED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_: libc::c_int) {
        let b = B.get().expect("set before the first signal");
        // Queue `b` is used by this handler only, one operation at a time:
        // every enqueue succeeds and the dequeue returns its value.
        for i in 0..SWITCH_OPS as u64 {
            if b.enqueue(i).is_err() || b.dequeue() != Some(i) {
                WRONG_B.fetch_add(1, Ordering::Relaxed);
            }
        }
        HANDLED.fetch_add(1, Ordering::Relaxed);
    }

    let a = A.get_or_init(|| WaitFreeQueue::with_threads(8, 4));
    // A larger `b`: its records' spare cells are not cells of `a`, so an
    // operation on `a` with a record of `b` fails visibly also in a build
    // without debug assertions.
    B.get_or_init(|| WaitFreeQueue::with_threads(1024, 4));
    let signals = if cfg!(debug_assertions) { 1_000 } else { 4_000 };
    // SAFETY: installs a handler for SIGUSR2 that only runs queue operations
    // and atomic adds; nothing else in this test binary uses SIGUSR2, and it
    // is sent only to the worker below with `pthread_kill`.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            a.enqueue(0).unwrap();
            assert_eq!(a.dequeue(), Some(0));
            // SAFETY: `pthread_self` has no preconditions.
            tx.send(unsafe { libc::pthread_self() } as usize).unwrap();
            let mut wrong = 0u64;
            let mut i = 1u64;
            while HANDLED.load(Ordering::Relaxed) < signals {
                // Queue `a` is used by this thread only (never by the
                // handler), one operation at a time.
                if a.enqueue(i).is_err() || a.dequeue() != Some(i) {
                    wrong += 1;
                }
                i += 1;
                PROGRESS.fetch_add(1, Ordering::Relaxed);
            }
            wrong
        }));
        // SAFETY: blocks SIGUSR2 for this thread only, so no handler runs
        // after this; `set` is initialised by `sigemptyset` before use.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                0
            );
        }
        DONE.store(true, Ordering::SeqCst);
        // Stay alive until the sender no longer signals this thread.
        while !SENDER_STOPPED.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        result
    });
    let target = rx.recv().unwrap() as libc::pthread_t;
    while !DONE.load(Ordering::SeqCst) {
        // Let the worker make enough operations on `a` to keep a record of
        // it again (it lost it to `b` in the last handler), then signal it
        // somewhere in an operation.
        let seen = PROGRESS.load(Ordering::Relaxed);
        while PROGRESS.load(Ordering::Relaxed) < seen + 40 && !DONE.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        // SAFETY: the worker is alive until `SENDER_STOPPED` is set below.
        assert_eq!(unsafe { libc::pthread_kill(target, libc::SIGUSR2) }, 0);
    }
    SENDER_STOPPED.store(true, Ordering::SeqCst);
    let wrong_a = match worker.join().unwrap() {
        Ok(w) => w,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("an operation on `a` panicked: {msg}");
        }
    };
    assert_eq!(
        (wrong_a, WRONG_B.load(Ordering::Relaxed)),
        (0, 0),
        "wrong answers on (a, b): an operation ran on another queue's record"
    );
    assert_eq!(a.len(), 0);
}

/// The largest queue (capacity 2^20, 4096 records): its spare cells are
/// numbered from 2^20 up to 2^20 + 4095, so the 21-bit cell field of the
/// slot, request and answer words is needed in full. A full lap (fill to
/// `Full`, drain to `None`) plus a second partial lap must keep FIFO order
/// and every value. Fails if the cell field is narrowed (for example
/// `CELL_BITS = 20`: cell 2^20 then spills into the `tid` bits and the slot
/// hands out the wrong cell).
#[test]
#[cfg_attr(miri, ignore)] // 2^20 slots and cells: too slow under Miri
fn the_largest_queue_keeps_every_value_in_its_highest_cells() {
    const CAP: usize = 1 << 20;
    let q = WaitFreeQueue::<u32>::with_threads(CAP, 4096);
    assert_eq!(q.capacity(), CAP);
    // A few other threads, each with its own record (records are spread by
    // the thread's address, up to 4095), put their spares into the ring.
    std::thread::scope(|s| {
        for t in 0..3u32 {
            let q = &q;
            s.spawn(move || {
                q.enqueue(u32::MAX - t).unwrap();
            });
        }
    });
    let mut firsts: Vec<u32> = (0..3).map(|_| q.dequeue().unwrap()).collect();
    firsts.sort_unstable();
    assert_eq!(firsts, [u32::MAX - 2, u32::MAX - 1, u32::MAX]);
    for v in 0..CAP as u32 {
        q.enqueue(v)
            .unwrap_or_else(|_| panic!("Full after {v} of {CAP} values"));
    }
    assert!(matches!(q.enqueue(7), Err(QueueError::Full(7))));
    assert_eq!(q.len(), CAP);
    for v in 0..CAP as u32 {
        assert_eq!(q.dequeue(), Some(v), "FIFO order at the largest capacity");
    }
    assert_eq!(q.dequeue(), None);
    for v in 0..1000u32 {
        q.enqueue(v).unwrap();
        assert_eq!(q.dequeue(), Some(v));
    }
    assert!(q.is_empty());
}

/// Input beyond the cell and record fields is refused with a clear panic
/// at construction, never accepted and truncated.
#[test]
#[should_panic(expected = "capacity must be at most 1048576")]
fn a_capacity_above_2_pow_20_is_refused() {
    let _ = WaitFreeQueue::<u8>::new(1 << 21);
}

#[test]
#[should_panic(expected = "thread count must be in 1..=4096")]
fn more_than_4096_records_are_refused() {
    let _ = WaitFreeQueue::<u8>::with_threads(2, 4097);
}
