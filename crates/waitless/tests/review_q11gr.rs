//! Review tests (q11gr) for the queue's round 8 (q11g, a112b50 on): the
//! kept record (`ring::Held`) is now found by ONE read-and-mark of
//! `Held::key` (the `BUSY` mark goes in before anything is tested), then
//! `Held::ptr` (the held record's address) is range-tested against the
//! queue's chunk 0; `end` re-reaches `HELD` and restores `key` to the
//! record's address; the pacing level lives in the record.
//!
//! * `signal_handlers_switching_both_ways_lose_and_leak_nothing`: a thread
//!   alternates runs of more than `GIVE_BACK_AFTER` operations on queues
//!   `a` and `b` (so its own operations keep, switch and give back records),
//!   while a signal handler on the same thread alternates runs of such
//!   operations on `a` and on `b` too, i.e. on the very queue the
//!   interrupted operation is using and on the other one. Signals land
//!   anywhere: between the mark and the pointer read, inside `keep`, inside
//!   `end`. Every value must come out exactly once, no dequeue may find the
//!   queue empty (each context leaves at most one value in a queue it
//!   works on, and dequeues after its own enqueue), and neither queue may
//!   grow its record space (a record left taken by a lost hand-back would
//!   make the queues grow after a few hundred signals).
//! * `records_given_back_at_exit_are_reused_with_their_old_pacing_level`:
//!   many short-lived threads, two at a time, contend on one queue (so their
//!   records' pacing levels and hints are left non-zero) and exit with their
//!   records kept; later threads get those records back. Values are checked
//!   exactly once and the record space must not grow beyond what two
//!   concurrent threads need.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use waitless::queue::{verification, QueueError, WaitFreeQueue};

/// More than `ring::GIVE_BACK_AFTER` (64) operations.
const SWITCH_OPS: u64 = 70;

#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore)] // Miri runs no signal handlers
fn signal_handlers_switching_both_ways_lose_and_leak_nothing() {
    use std::sync::atomic::AtomicBool;
    use std::sync::OnceLock;
    use std::thread;

    static A: OnceLock<WaitFreeQueue<u64>> = OnceLock::new();
    static B: OnceLock<WaitFreeQueue<u64>> = OnceLock::new();
    static SEEN: OnceLock<Vec<AtomicU8>> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static HANDLED: AtomicU64 = AtomicU64::new(0);
    static EMPTY: AtomicU64 = AtomicU64::new(0);
    static FULL: AtomicU64 = AtomicU64::new(0);
    static TWICE: AtomicU64 = AtomicU64::new(0);
    static PROGRESS: AtomicU64 = AtomicU64::new(0);
    static DONE: AtomicBool = AtomicBool::new(false);
    static WAITING: AtomicBool = AtomicBool::new(false);
    static SENDER_STOPPED: AtomicBool = AtomicBool::new(false);

    const SIGNALS: u64 = 1_000;
    // Values: the worker's operations plus the handlers'.
    const MAIN_OPS_MAX: u64 = 4_000_000;
    const MAX_VALUES: u64 = SIGNALS * SWITCH_OPS + MAIN_OPS_MAX;

    /// One enqueue of a fresh value and one dequeue, on `q`; counts wrong
    /// answers (no allocation, no lock: signal-safe).
    fn pair(q: &WaitFreeQueue<u64>) {
        let v = NEXT.fetch_add(1, Ordering::Relaxed);
        if v >= MAX_VALUES {
            // Out of values (cannot happen with the bounds above).
            FULL.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Err(QueueError::Full(_)) = q.enqueue(v) {
            FULL.fetch_add(1, Ordering::Relaxed);
        }
        match q.dequeue() {
            None => {
                EMPTY.fetch_add(1, Ordering::Relaxed);
            }
            Some(x) => {
                let seen = SEEN.get().expect("set before the first operation");
                if seen[x as usize].fetch_add(1, Ordering::Relaxed) != 0 {
                    TWICE.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    extern "C" fn on_signal(_: libc::c_int) {
        // Alternate: a run on `a`, then a run on `b`, … so the handler keeps
        // (and switches) records of both queues, of the interrupted
        // operation's queue as well as of the other one.
        let n = HANDLED.load(Ordering::Relaxed);
        let q = if n % 2 == 0 { A.get() } else { B.get() };
        let q = q.expect("set before the first signal");
        for _ in 0..SWITCH_OPS {
            pair(q);
        }
        HANDLED.fetch_add(1, Ordering::Relaxed);
    }

    SEEN.get_or_init(|| (0..MAX_VALUES).map(|_| AtomicU8::new(0)).collect());
    let a = A.get_or_init(|| WaitFreeQueue::with_threads(8, 4));
    B.get_or_init(|| WaitFreeQueue::with_threads(1024, 4));
    let b = B.get().unwrap();
    // SAFETY: installs a handler for SIGUSR1 that only runs queue operations
    // and atomic adds; nothing else in this test binary uses SIGUSR1, and it
    // is sent only to the worker below with `pthread_kill`.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pair(a);
            pair(b);
            // SAFETY: `pthread_self` has no preconditions.
            tx.send(unsafe { libc::pthread_self() } as usize).unwrap();
            let mut ops = 0u64;
            while HANDLED.load(Ordering::Relaxed) < SIGNALS && ops < MAIN_OPS_MAX / 2 - SWITCH_OPS {
                // Runs on each queue long enough to move the kept record.
                let handled = HANDLED.load(Ordering::Relaxed);
                for q in [a, b] {
                    for _ in 0..SWITCH_OPS {
                        pair(q);
                        ops += 1;
                        PROGRESS.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // On a loaded machine the sender may not have run: wait for
                // at least one signal per two runs (it signals after every
                // 23 pairs of progress or when we wait).
                WAITING.store(true, Ordering::SeqCst);
                while HANDLED.load(Ordering::Relaxed) == handled {
                    thread::yield_now();
                }
                WAITING.store(false, Ordering::SeqCst);
            }
        }));
        // SAFETY: blocks SIGUSR1 for this thread only, so no handler runs
        // after this; `set` is initialised by `sigemptyset` before use.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            assert_eq!(
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                0
            );
        }
        DONE.store(true, Ordering::SeqCst);
        while !SENDER_STOPPED.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        result
    });
    let target = rx.recv().unwrap() as libc::pthread_t;
    while !DONE.load(Ordering::SeqCst) {
        // Let the worker run a little, then signal it wherever it is.
        let seen = PROGRESS.load(Ordering::Relaxed);
        while PROGRESS.load(Ordering::Relaxed) < seen + 23
            && !DONE.load(Ordering::SeqCst)
            && !WAITING.load(Ordering::SeqCst)
        {
            thread::yield_now();
        }
        // SAFETY: the worker is alive until `SENDER_STOPPED` is set below.
        assert_eq!(unsafe { libc::pthread_kill(target, libc::SIGUSR1) }, 0);
    }
    SENDER_STOPPED.store(true, Ordering::SeqCst);
    if let Err(p) = worker.join().unwrap() {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("a queue operation panicked: {msg}");
    }
    assert!(
        HANDLED.load(Ordering::Relaxed) >= 100,
        "too few signals handled to test anything"
    );
    assert_eq!(
        (
            EMPTY.load(Ordering::Relaxed),
            FULL.load(Ordering::Relaxed),
            TWICE.load(Ordering::Relaxed)
        ),
        (0, 0, 0),
        "(None after own enqueue, Full, dequeued twice)"
    );
    assert_eq!((a.len(), b.len()), (0, 0));
    let seen = SEEN.get().unwrap();
    let made = NEXT.load(Ordering::Relaxed);
    for (v, s) in seen.iter().enumerate().take(made as usize) {
        assert_eq!(s.load(Ordering::Relaxed), 1, "value {v} not dequeued once");
    }
    // The worker held at most one record of each queue and a handler
    // claimed at most one more at a time: no growth beyond the 4 records.
    assert_eq!(
        (verification::records(a), verification::records(b)),
        (4, 4),
        "a record stayed taken: the queues grew"
    );
}

#[test]
fn records_given_back_at_exit_are_reused_with_their_old_pacing_level() {
    use std::sync::Arc;
    let rounds = if cfg!(miri) { 3 } else { 60 };
    let per = if cfg!(miri) { 40 } else { 2_000 };
    let q = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 2));
    let total = (rounds * 2 * per) as usize;
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..total).map(|_| AtomicU8::new(0)).collect());
    for round in 0..rounds {
        // `spawn` + `join` (not `scope`): `join` returns after the thread's
        // thread-local destructors ran, i.e. after it gave its record back.
        let workers: Vec<_> = (0..2u64)
            .map(|me| {
                let (q, seen) = (Arc::clone(&q), Arc::clone(&seen));
                std::thread::spawn(move || {
                    let base = (round * 2 + me) * per;
                    let mut i = 0;
                    let mut last: [Option<u64>; 2] = [None, None];
                    while i < per {
                        if q.enqueue(base + i).is_ok() {
                            i += 1;
                        }
                        if let Some(v) = q.dequeue() {
                            // Per producer FIFO (both producers are this
                            // round's).
                            let p = ((v / per) % 2) as usize;
                            if let Some(l) = last[p] {
                                assert!(v > l, "{v} after {l}");
                            }
                            last[p] = Some(v);
                            assert_eq!(seen[v as usize].fetch_add(1, Ordering::Relaxed), 0);
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        while let Some(v) = q.dequeue() {
            assert_eq!(seen[v as usize].fetch_add(1, Ordering::Relaxed), 0);
        }
        // Two threads at a time plus this one (draining): never more than
        // 4 records if exited threads give theirs back.
        assert!(
            verification::records(&q) <= 4,
            "round {round}: records grew to {}",
            verification::records(&q)
        );
    }
    for (v, s) in seen.iter().enumerate() {
        assert_eq!(s.load(Ordering::Relaxed), 1, "value {v}");
    }
}
