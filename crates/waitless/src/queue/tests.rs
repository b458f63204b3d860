use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

fn scale(n: usize) -> usize {
    if cfg!(miri) {
        (n / 200).max(8)
    } else {
        n
    }
}

#[test]
fn fifo_and_exact_capacity() {
    for cap in [1usize, 2, 4, 8, 64] {
        let q = WaitFreeQueue::with_threads(cap, 3);
        assert!(q.is_empty());
        for round in 0..3 {
            for i in 0..cap {
                q.enqueue(round * 1000 + i).unwrap();
                assert_eq!(q.len(), i + 1);
            }
            assert!(q.is_full());
            match q.enqueue(7) {
                Err(QueueError::Full(7)) => {}
                other => panic!("expected Full(7), got {other:?}"),
            }
            for i in 0..cap {
                assert_eq!(q.dequeue(), Some(round * 1000 + i));
            }
            assert_eq!(q.dequeue(), None);
            assert_eq!(q.len(), 0);
        }
    }
}

#[test]
fn interleaved_wraps_many_laps() {
    let q = WaitFreeQueue::with_threads(4, 2);
    let mut next_out = 0u64;
    for i in 0..scale(10_000) as u64 {
        q.enqueue(i).unwrap();
        if i % 3 != 0 {
            assert_eq!(q.dequeue(), Some(next_out));
            next_out += 1;
        }
        if q.is_full() {
            while let Some(v) = q.dequeue() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
    }
}

#[test]
#[should_panic(expected = "power of two")]
fn rejects_non_power_of_two() {
    let _ = WaitFreeQueue::<u8>::new(3);
}

#[test]
#[should_panic(expected = "power of two")]
fn rejects_zero() {
    let _ = WaitFreeQueue::<u8>::new(0);
}

#[test]
#[should_panic(expected = "thread count")]
fn rejects_zero_threads() {
    let _ = WaitFreeQueue::<u8>::with_threads(2, 0);
}

/// More threads at once than records: the queue adds records instead of
/// panicking, and the values all arrive.
#[test]
fn more_threads_than_records_grow_the_records() {
    let q = WaitFreeQueue::<usize>::with_threads(64, 1);
    let threads = if cfg!(miri) { 3 } else { 24 };
    let per = scale(2_000);
    let hits: Vec<AtomicUsize> = (0..threads * per).map(|_| AtomicUsize::new(0)).collect();
    let barrier = std::sync::Barrier::new(threads);
    thread::scope(|s| {
        for t in 0..threads {
            let (q, hits, barrier) = (&q, &hits, &barrier);
            s.spawn(move || {
                barrier.wait();
                let mut i = 0;
                while i < per {
                    if q.enqueue(t * per + i).is_ok() {
                        i += 1;
                    }
                    if let Some(v) = q.dequeue() {
                        hits[v].fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    while let Some(v) = q.dequeue() {
        hits[v].fetch_add(1, Ordering::Relaxed);
    }
    assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
    // No finished request (fast or slow) can look pending again.
    assert!(q.ring.idle_records_agree());
    assert!(q.ring.cells_partition());
    let k = verification::records(&q);
    assert!((1..=ring::MAX_RECORDS).contains(&k), "{k} records");
}

/// Many threads over the queue's life, one record: each thread keeps it
/// while it runs (`ring::Held`) and gives it back when it exits, so thread
/// 2, 3, … never find it held and the queue never grows.
#[test]
fn any_number_of_threads_over_the_lifetime() {
    let q = std::sync::Arc::new(WaitFreeQueue::<usize>::with_threads(8, 1));
    let n = if cfg!(miri) { 4 } else { 300 };
    for i in 0..n {
        let q2 = q.clone();
        thread::spawn(move || {
            if i > 0 {
                assert_eq!(q2.dequeue(), Some(i - 1));
            }
            q2.enqueue(i).unwrap();
            assert_eq!(q2.dequeue(), Some(i));
            q2.enqueue(i).unwrap();
        })
        .join()
        .unwrap();
    }
    // Sequential threads never hold two records at once.
    assert_eq!(verification::records(&q), 1);
    assert_eq!(q.dequeue(), Some(n - 1));
    assert!(q.ring.cells_partition());
}

/// A thread keeps its record of the queue it uses (other claims find it
/// taken), gives it back after `GIVE_BACK_AFTER` operations on another
/// queue and keeps that queue's record instead, and still gives that one
/// back at thread exit after the queue was dropped (the records outlive the
/// queue; Miri checks the hand-back touches no freed memory).
#[test]
fn held_records_are_given_back() {
    thread::spawn(|| {
        let mut steps = Steps::default();
        let a = WaitFreeQueue::<u64>::with_threads(4, 1);
        a.enqueue(1).unwrap();
        assert!(
            !a.ring.try_claim_first(0, &mut steps),
            "the thread should keep its record of `a`"
        );
        let b = WaitFreeQueue::<u64>::with_threads(4, 1);
        for i in 0..100 {
            b.enqueue(i).unwrap();
            assert_eq!(b.dequeue(), Some(i));
        }
        assert!(
            a.ring.try_claim_first(0, &mut steps),
            "the record of `a` should be given back"
        );
        a.ring.release(0);
        assert!(!b.ring.try_claim_first(0, &mut steps));
        assert_eq!(verification::records(&b), 1);
        drop(b);
        assert_eq!(a.dequeue(), Some(1));
        assert_eq!(verification::records(&a), 1);
    })
    .join()
    .unwrap();
}

/// The kept record is given back at thread exit by the guard thread-local
/// (`GiveBackAtExit`), not by `Held` (which has no destructor), whatever
/// order the thread's destructors run in: an operation run by another
/// thread-local's destructor before the guard's uses the kept record, and
/// one run after it claims a record and releases it instead of keeping it
/// (no one would give it back). Either way every record is free once the
/// thread is gone, and the queue never grew.
#[test]
fn thread_exit_gives_the_record_back_whatever_the_destructor_order() {
    use std::sync::Arc;
    struct Late(Arc<WaitFreeQueue<u64>>);
    impl Drop for Late {
        fn drop(&mut self) {
            for i in 0..3 {
                self.0.enqueue(i).unwrap();
                assert_eq!(self.0.dequeue(), Some(i));
            }
        }
    }
    std::thread_local! {
        static LATE: std::cell::RefCell<Option<Late>> = const { std::cell::RefCell::new(None) };
    }
    for late_first in [true, false] {
        let q = Arc::new(WaitFreeQueue::<u64>::with_threads(4, 2));
        let q2 = Arc::clone(&q);
        thread::spawn(move || {
            // Registration order decides destructor order (reverse, on
            // the usual platforms): `LATE` before or after `GIVE_BACK`.
            if late_first {
                LATE.with(|l| *l.borrow_mut() = Some(Late(Arc::clone(&q2))));
            }
            q2.enqueue(7).unwrap();
            assert_eq!(q2.dequeue(), Some(7));
            if !late_first {
                LATE.with(|l| *l.borrow_mut() = Some(Late(Arc::clone(&q2))));
            }
            // The thread keeps a record of `q` now.
            let mut steps = Steps::default();
            let taken = (0..2)
                .filter(|&r| {
                    let got = q2.ring.try_claim_first(r, &mut steps);
                    if got {
                        q2.ring.release(r);
                    }
                    !got
                })
                .count();
            assert_eq!(taken, 1, "the thread keeps one record");
        })
        .join()
        .unwrap();
        let mut steps = Steps::default();
        for r in 0..verification::records(&q) {
            assert!(
                q.ring.try_claim_first(r, &mut steps),
                "record {r} was not given back (late_first = {late_first})"
            );
        }
        assert_eq!(verification::records(&q), 2, "the queue grew");
        assert!(q.ring.cells_partition());
    }
}

/// The counters start next to their wrap points: record sequence numbers
/// (40 bits), the head and tail tickets (64 bits) and the slot stamps (30
/// bits, `2·lap mod 2^30`) all wrap during the test, which checks FIFO
/// order, exact capacity and `Full`/`None` across the wraps.
#[test]
fn counters_wrap() {
    for cap in [1usize, 2, 8] {
        for fast in [true, false] {
            let start = ring::Start {
                seq: ring::SEQ_MASK - 5,
                head: u64::MAX - 3 * cap as u64 + 2,
            };
            let q = WaitFreeQueue::build_at(cap, 2, false, fast, start);
            let mut next_in = 0u64;
            let mut next_out = 0u64;
            for round in 0..scale(400) {
                // Fill to capacity, check Full, drain part of it.
                while q.len() < cap {
                    q.enqueue(next_in).unwrap();
                    next_in += 1;
                }
                assert!(matches!(
                    q.enqueue(u64::MAX),
                    Err(QueueError::Full(u64::MAX))
                ));
                for _ in 0..=(round % cap) {
                    assert_eq!(q.dequeue(), Some(next_out));
                    next_out += 1;
                }
            }
            while let Some(v) = q.dequeue() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
            assert_eq!(next_in, next_out);
            assert_eq!(q.dequeue(), None);
            assert!(q.ring.idle_records_agree());
            assert!(q.ring.cells_partition());
        }
    }
}

struct Counted<'a>(&'a AtomicUsize);
impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn drop_drops_what_is_left_exactly_once() {
    let drops = AtomicUsize::new(0);
    {
        let q = WaitFreeQueue::with_threads(8, 2);
        for _ in 0..6 {
            assert!(q.enqueue(Counted(&drops)).is_ok());
        }
        drop(q.dequeue());
        drop(q.dequeue());
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        for _ in 0..4 {
            assert!(q.enqueue(Counted(&drops)).is_ok());
        }
        // Full gives the value back; dropping it counts once.
        let e = q.enqueue(Counted(&drops)).unwrap_err();
        drop(e);
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    }
    assert_eq!(drops.load(Ordering::Relaxed), 3 + 8);
}

/// Unique values, per-value hit counts: nothing lost, nothing duplicated,
/// and each producer's values come out in its order (FIFO per producer).
#[test]
fn mpmc_no_loss_no_dup() {
    for (cap, threads) in [(2usize, 4usize), (4, 3), (64, 4)] {
        let per = scale(20_000);
        let q = WaitFreeQueue::with_threads(cap, threads);
        let hits: Vec<AtomicUsize> = (0..threads * per).map(|_| AtomicUsize::new(0)).collect();
        let drained = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..threads {
                let (q, hits, drained) = (&q, &hits, &drained);
                s.spawn(move || {
                    let mut last_seen = vec![None::<usize>; threads];
                    let mut i = 0;
                    while i < per {
                        match q.enqueue(t * per + i) {
                            Ok(()) => i += 1,
                            Err(QueueError::Full(v)) => assert_eq!(v, t * per + i),
                        }
                        if let Some(v) = q.dequeue() {
                            hits[v].fetch_add(1, Ordering::Relaxed);
                            drained.fetch_add(1, Ordering::Relaxed);
                            let (prod, idx) = (v / per, v % per);
                            if let Some(prev) = last_seen[prod] {
                                assert!(idx > prev, "per-producer FIFO violated");
                            }
                            last_seen[prod] = Some(idx);
                            assert!(q.len() <= cap);
                        }
                    }
                });
            }
        });
        while let Some(v) = q.dequeue() {
            hits[v].fetch_add(1, Ordering::Relaxed);
        }
        for (v, h) in hits.iter().enumerate() {
            assert_eq!(
                h.load(Ordering::Relaxed),
                1,
                "value {v} seen wrong number of times"
            );
        }
        assert!(q.ring.cells_partition());
    }
}

#[test]
fn zero_sized_and_boxed_values() {
    let q = WaitFreeQueue::with_threads(2, 2);
    q.enqueue(()).unwrap();
    q.enqueue(()).unwrap();
    assert!(q.enqueue(()).is_err());
    assert_eq!(q.dequeue(), Some(()));
    let b = WaitFreeQueue::with_threads(4, 2);
    b.enqueue(Box::new(5)).unwrap();
    b.enqueue(Box::new(6)).unwrap();
    assert_eq!(*b.dequeue().unwrap(), 5);
    drop(b); // Box(6) freed by Drop (Miri checks for the leak)
}

mod model {
    use super::super::WaitFreeQueue;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            // No regression files: Miri's isolation forbids file access.
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Single-threaded: any sequence of operations matches a bounded
        /// `VecDeque`, including `Full`, `None`, `len`, `is_full`.
        #[test]
        fn matches_bounded_vecdeque(
            log2_cap in 0u32..4,
            ops in proptest::collection::vec(any::<Option<u16>>(), 0..if cfg!(miri) { 60 } else { 200 }),
        ) {
            let cap = 1usize << log2_cap;
            let q = WaitFreeQueue::with_threads(cap, 2);
            let mut m = VecDeque::new();
            for op in ops {
                match op {
                    Some(v) => {
                        let r = q.enqueue(v);
                        if m.len() < cap {
                            prop_assert!(r.is_ok());
                            m.push_back(v);
                        } else {
                            prop_assert_eq!(r.unwrap_err().into_inner(), v);
                        }
                    }
                    None => prop_assert_eq!(q.dequeue(), m.pop_front()),
                }
                prop_assert_eq!(q.len(), m.len());
                prop_assert_eq!(q.is_full(), m.len() == cap);
                prop_assert_eq!(q.is_empty(), m.is_empty());
            }
        }
    }
}

/// With all 4096 records held, a claim reports "start over" (`Grow(0)`),
/// never a chunk past the last; once one is released it is found again.
#[test]
#[cfg_attr(
    miri,
    ignore = "4096 records are too slow under Miri; no unsafe code is involved"
)]
fn all_records_taken_starts_over() {
    let q = WaitFreeQueue::<u8>::with_threads(1, ring::MAX_RECORDS);
    let mut steps = Steps::default();
    for _ in 0..ring::MAX_RECORDS {
        assert!(matches!(
            q.ring.claim(0, None, &mut steps),
            ring::Claim::Got(_)
        ));
    }
    assert!(matches!(
        q.ring.claim(0, None, &mut steps),
        ring::Claim::Grow(0)
    ));
    q.ring.release(17);
    assert_eq!(q.acquire(&mut steps), 17);
}

/// Claims a record for a test-driven "stalled" operation, away from the
/// records this thread's own operations will claim.
fn claim_other(q: &WaitFreeQueue<u64>) -> usize {
    let mut steps = Steps::default();
    match q.ring.claim(1, None, &mut steps) {
        ring::Claim::Got(r) => r,
        ring::Claim::Grow(_) => panic!("no free record"),
    }
}

/// Writes `v` into record `r`'s spare cell (as `enqueue_in` does).
fn fill_spare(q: &WaitFreeQueue<u64>, r: usize, v: u64) {
    let mut steps = Steps::default();
    let spare = q.ring.spare(r, &mut steps);
    // SAFETY: record `r` is claimed by this test and its spare cell is
    // empty and referenced by no slot.
    q.cell(spare, &mut steps)
        .with_mut(|p| unsafe { (*p).write(v) });
}

/// Lemma "window": an operation that starts after a request was announced
/// finishes that request before its own. The announcing owner stalls right
/// after announcing; a later enqueue must help it, so the stalled request
/// is answered when the later one returns, and it is ordered first. Fails
/// with helping switched off, or with the fast path not reading `pending`.
#[test]
fn a_later_operation_finishes_an_announced_request_first() {
    // Enqueue: the stalled enqueue of 1 comes out before the later 7.
    let q = WaitFreeQueue::<u64>::with_threads(4, 4);
    let r = claim_other(&q);
    fill_spare(&q, r, 1);
    let rq = q.ring.test_announce(r, Kind::Enqueue);
    q.enqueue(7).unwrap();
    assert!(
        q.ring.test_answered(r, rq),
        "the later enqueue did not help"
    );
    let a = q.ring.test_finish(r, Kind::Enqueue, rq);
    assert!(a.ok);
    q.ring.release(r);
    assert_eq!(q.dequeue(), Some(1));
    assert_eq!(q.dequeue(), Some(7));
    assert!(q.ring.idle_records_agree());

    // Dequeue: the stalled dequeue takes 5 before the later dequeue runs.
    let q = WaitFreeQueue::<u64>::with_threads(4, 4);
    q.enqueue(5).unwrap();
    q.enqueue(6).unwrap();
    let r = claim_other(&q);
    let rq = q.ring.test_announce(r, Kind::Dequeue);
    assert_eq!(q.dequeue(), Some(6), "the later dequeue did not help first");
    assert!(q.ring.test_answered(r, rq));
    let a = q.ring.test_finish(r, Kind::Dequeue, rq);
    assert!(a.ok);
    // SAFETY: the answer of an applied dequeue hands its owner the full
    // cell; this test is that owner.
    let v = q
        .cell(a.cell, &mut Steps::default())
        .with(|p| unsafe { (*p).assume_init_read() });
    assert_eq!(v, 5);
    q.ring.release(r);
    assert!(q.ring.idle_records_agree());
}

/// A `u = 1` word met with `pending = 0` (its owner committed, withdrew and
/// stalled before clearing it): a fast dequeue must finalize it from the
/// word (value cell from the owner's request) and never take the word's
/// cell, which is the slot's old, empty one. Fails if the fast path
/// ignores `u`.
#[test]
fn a_fast_operation_finalizes_a_u1_word() {
    for cap in [1usize, 4] {
        let q = WaitFreeQueue::<u64>::with_threads(cap, 4);
        let r = claim_other(&q);
        fill_spare(&q, r, 0xfeed);
        let rq = q.ring.test_announce(r, Kind::Enqueue);
        let a = q.ring.test_commit_and_stall(r, rq);
        assert!(a.ok);
        assert!(q.ring.test_has_u1(), "the stall should leave a u = 1 word");
        assert_eq!(q.dequeue(), Some(0xfeed));
        assert!(!q.ring.test_has_u1());
        q.ring.test_resume(r, Kind::Enqueue, rq, a);
        q.ring.release(r);
        assert_eq!(q.dequeue(), None);
        // The stalled enqueue's `u = 1` word also blocks `Full`: with the
        // queue full except for it, a fast enqueue must not decide early.
        let r = claim_other(&q);
        for i in 0..cap as u64 - 1 {
            q.enqueue(i).unwrap();
        }
        fill_spare(&q, r, 99);
        let rq = q.ring.test_announce(r, Kind::Enqueue);
        let a = q.ring.test_commit_and_stall(r, rq);
        assert!(a.ok);
        assert!(matches!(q.enqueue(100), Err(QueueError::Full(100))));
        q.ring.test_resume(r, Kind::Enqueue, rq, a);
        q.ring.release(r);
        let out: Vec<u64> = std::iter::from_fn(|| q.dequeue()).collect();
        let mut want: Vec<u64> = (0..cap as u64 - 1).collect();
        want.push(99);
        assert_eq!(out, want);
        assert!(q.ring.idle_records_agree());
    }
}

/// A `u = 1` word at `tail` met by a fast *enqueue* (its owner committed,
/// withdrew and stalled before clearing it, `pending = 0`, a free slot
/// after it): the enqueue must finalize the word before it takes the next
/// ticket, so no `u = 1` word is left when it returns, and the owner's
/// `CLEAR_OWN` (which looks only at the counter's slot) is not needed.
/// If the enqueue ignores `u`, it reads the word as "full for `t`", moves
/// `tail` past it and fills `t + 1`; the word is then left behind the
/// counter for good (the owner's `CLEAR_OWN` no longer finds it), and once
/// the owner announces again a finalizer would commit or clear it with the
/// wrong request. This is the mutation that the loom model
/// `u1_slot_finalized_by_another_thread` cannot see (in two threads the
/// filler always finalizes its own word; the stalled third party is the
/// `test_commit_and_stall` hook here).
#[test]
fn a_fast_enqueue_finalizes_a_u1_word_before_passing_it() {
    for cap in [4usize, 8] {
        let q = WaitFreeQueue::<u64>::with_threads(cap, 4);
        // Some history first, so the word is not at ticket 0.
        q.enqueue(1).unwrap();
        assert_eq!(q.dequeue(), Some(1));
        let r = claim_other(&q);
        fill_spare(&q, r, 10);
        let rq = q.ring.test_announce(r, Kind::Enqueue);
        let a = q.ring.test_commit_and_stall(r, rq);
        assert!(a.ok);
        assert!(q.ring.test_has_u1(), "the stall should leave a u = 1 word");
        q.enqueue(11).unwrap();
        assert!(
            !q.ring.test_has_u1(),
            "a fast enqueue passed a u = 1 word without finalizing it"
        );
        q.ring.test_resume(r, Kind::Enqueue, rq, a);
        // The owner runs its next request on the same record.
        fill_spare(&q, r, 12);
        let rq = q.ring.test_announce(r, Kind::Enqueue);
        assert!(q.ring.test_finish(r, Kind::Enqueue, rq).ok);
        q.ring.release(r);
        let out: Vec<u64> = std::iter::from_fn(|| q.dequeue()).collect();
        assert_eq!(out, vec![10, 11, 12]);
        assert!(q.ring.cells_partition(), "a cell is lost or in two places");
        assert!(q.ring.idle_records_agree());
    }
}

/// A helper that read `resp = CLAIM(s, x)` and stalled before reading the
/// counter must not fill anything once request `s` is answered, even when
/// the counter has moved on by exactly 2^22 tickets (the claim word keeps
/// `ticket mod 2^22`, so `CLAIM(s, x + 2^22)` is the same word). Without a
/// check that `resp` still holds the claim, the stale helper fills slot
/// `x + 2^22` with a `u = 1` word for the idle record, and finalizing it
/// puts the record's old request cell (in use elsewhere) into the slot.
#[test]
#[cfg_attr(miri, ignore = "2^22 operations")]
fn a_stale_claim_is_not_reused_after_2_pow_22_tickets() {
    let q = WaitFreeQueue::<u64>::with_threads(1, 4);
    let r = claim_other(&q);
    fill_spare(&q, r, 1);
    let rq = q.ring.test_announce(r, Kind::Enqueue);
    // A helper claims ticket 0 for `rq`; a second helper reads that claim
    // in `resp` and stalls.
    let stale = q.ring.test_claim(r, rq);
    // The owner finishes its request (fill, commit, clear) and idles.
    let a = q.ring.test_finish(r, Kind::Enqueue, rq);
    assert!(a.ok);
    q.ring.release(r);
    assert_eq!(q.dequeue(), Some(1));
    // The queue runs on for 2^22 - 1 more tickets on both sides.
    for i in 1..Ring::TEST_CLAIM_PERIOD {
        q.enqueue(i).unwrap();
        assert_eq!(q.dequeue(), Some(i));
    }
    // Now `tail = 2^22` and its slot is empty: the stale helper resumes.
    q.ring.test_help_round(r, rq, stale);
    assert!(!q.ring.test_has_u1(), "a stale helper filled a slot");
    assert!(q.ring.cells_partition(), "a cell is in two places");
    q.enqueue(2).unwrap();
    assert_eq!(q.dequeue(), Some(2));
    assert_eq!(q.dequeue(), None);
    assert!(q.ring.idle_records_agree());
}

/// A signal handler that runs on a thread in the middle of that thread's
/// operation on a queue, and itself operates on the same queue, must not use
/// the record the interrupted operation is using (before `ring::Held`, it
/// claimed another one with the owner CAS). If it does, both operations
/// share one spare cell: the handler's value overwrites the interrupted
/// enqueue's, or lands in a cell that is already in a slot, and values are
/// lost or returned twice. Counts and sums of the values enqueued and
/// dequeued (by the thread and by its handler) must match at the end.
#[test]
#[cfg(target_os = "linux")]
#[cfg_attr(miri, ignore)] // Miri runs no signal handlers
fn a_signal_handler_using_the_interrupted_queue_takes_another_record() {
    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;
    static Q: OnceLock<WaitFreeQueue<u64>> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(2);
    static HANDLED: AtomicU64 = AtomicU64::new(0);
    static ENQ: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
    static DEQ: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
    static DONE: AtomicBool = AtomicBool::new(false);
    static SENDER_STOPPED: AtomicBool = AtomicBool::new(false);
    use std::sync::atomic::AtomicBool;
    fn note(to: &[AtomicU64; 2], v: u64) {
        to[0].fetch_add(1, Ordering::Relaxed);
        to[1].fetch_add(v, Ordering::Relaxed);
    }
    extern "C" fn on_signal(_: libc::c_int) {
        let q = Q.get().expect("set before the first signal");
        let v = NEXT.fetch_add(2, Ordering::Relaxed);
        if q.enqueue(v).is_ok() {
            note(&ENQ, v);
        }
        if let Some(d) = q.dequeue() {
            note(&DEQ, d);
        }
        HANDLED.fetch_add(1, Ordering::Relaxed);
    }
    let q = Q.get_or_init(|| WaitFreeQueue::with_threads(8, 4));
    let handled = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    // SAFETY: installs a handler for SIGUSR1 that only runs queue operations
    // and atomic adds; nothing else in this test binary uses SIGUSR1, and
    // it is sent only to the worker below with `pthread_kill`.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = thread::spawn(move || {
        // First operations before any signal: the thread-locals exist and
        // the thread keeps a record of `q`.
        q.enqueue(1).unwrap();
        note(&ENQ, 1);
        // SAFETY: `pthread_self` has no preconditions.
        tx.send(unsafe { libc::pthread_self() } as usize).unwrap();
        let mut i = 1u64;
        while HANDLED.load(Ordering::Relaxed) < handled {
            i += 2;
            if q.enqueue(i).is_ok() {
                note(&ENQ, i);
            }
            if let Some(d) = q.dequeue() {
                note(&DEQ, d);
            }
        }
        // SAFETY: blocks SIGUSR1 for this thread only, so no handler runs
        // during the drain or after the sender stopped; `set` is initialised
        // by `sigemptyset` before use.
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
        while let Some(d) = q.dequeue() {
            note(&DEQ, d);
        }
        // Stay alive until the sender no longer signals this thread.
        while !SENDER_STOPPED.load(Ordering::SeqCst) {
            thread::yield_now();
        }
    });
    let target = rx.recv().unwrap() as libc::pthread_t;
    while !DONE.load(Ordering::SeqCst) {
        // SAFETY: the worker is alive until `SENDER_STOPPED` is set below.
        assert_eq!(unsafe { libc::pthread_kill(target, libc::SIGUSR1) }, 0);
        thread::yield_now();
    }
    SENDER_STOPPED.store(true, Ordering::SeqCst);
    worker.join().unwrap();
    let enq = (
        ENQ[0].load(Ordering::Relaxed),
        ENQ[1].load(Ordering::Relaxed),
    );
    let deq = (
        DEQ[0].load(Ordering::Relaxed),
        DEQ[1].load(Ordering::Relaxed),
    );
    assert_eq!(
        enq, deq,
        "(count, sum) of values enqueued and dequeued differ: a value was lost or returned twice"
    );
    assert!(q.ring.cells_partition(), "a cell is lost or in two places");
}

/// While an operation runs on the kept record (`Held::enter` .. `leave`), an
/// operation that starts on the same thread (a signal handler's) neither
/// finds that record nor replaces it, even after `GIVE_BACK_AFTER` misses;
/// and a record whose operation never returned (a panic) stays taken at
/// thread exit instead of being handed to another thread mid-operation.
#[test]
fn a_kept_record_in_use_is_neither_shared_nor_replaced_nor_given_back() {
    let q = WaitFreeQueue::<u64>::with_threads(4, 2);
    let mut steps = Steps::default();
    let held = ring::Held::new();
    let keeper = ring::Keeper::new();
    let r = q.acquire(&mut steps);
    assert!(q.ring.keep(&held, &keeper, r));
    assert_eq!(q.ring.held_record(&held), Some(r));
    let key = held.enter();
    for _ in 0..100 {
        assert_eq!(q.ring.held_record(&held), None, "the record is in use");
    }
    let r2 = q.acquire(&mut steps);
    assert_ne!(r2, r);
    assert!(!q.ring.keep(&held, &keeper, r2), "replaced a record in use");
    q.ring.release(r2);
    held.leave(key);
    assert_eq!(q.ring.held_record(&held), Some(r));
    let _ = held.enter();
    // The thread exits (`GiveBackAtExit`) with the operation still marked.
    keeper.give_back(Some(&held));
    assert!(
        !q.ring.try_claim_first(r, &mut steps),
        "a record whose operation never returned was given back"
    );
}
