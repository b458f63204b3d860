//! Loom models of the channel's core races. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom
//! cargo test -p waitless --release --test loom_channel`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use waitless::channel::{self, AcquireRelease, ChannelError, OptimizedChannel, RecvError};

/// One slot, one producer, one consumer: the value is either received once
/// or still in the channel, never torn, lost or duplicated.
#[test]
fn channel_one_slot_send_recv() {
    loom::model(|| {
        let ch = Arc::new(OptimizedChannel::<u32>::new(1));
        let c = ch.clone();
        let consumer = thread::spawn(move || c.recv());
        ch.send(7).unwrap();
        let got = consumer.join().unwrap();
        let left = ch.recv();
        match (got, left) {
            (Some(7), None) | (None, Some(7)) => {}
            other => panic!("value lost or duplicated: {other:?}"),
        }
    });
}

/// A second send into the full one-slot channel is `Full` exactly when the
/// consumer has not taken the first value yet; no value is overwritten.
#[test]
fn channel_one_slot_full_then_reuse() {
    loom::model(|| {
        let ch = Arc::new(OptimizedChannel::<u32>::new(1));
        ch.send(1).unwrap();
        let c = ch.clone();
        let consumer = thread::spawn(move || c.recv());
        let second = ch.send(2);
        let got = consumer.join().unwrap();
        assert_eq!(
            got,
            Some(1),
            "the first value is the only one the consumer can see"
        );
        match second {
            Ok(()) => assert_eq!(ch.recv(), Some(2)),
            Err(ChannelError::Full(2)) => assert_eq!(ch.recv(), None),
            Err(e) => panic!("unexpected {e:?}"),
        }
    });
}

/// Two producers race for one slot of a two-slot channel under the weaker
/// AcquireRelease strategy, and a consumer drains concurrently: every value
/// received exactly once, per-producer FIFO kept.
#[test]
fn channel_two_producers_one_consumer() {
    loom::model(|| {
        let ch = Arc::new(OptimizedChannel::<u32, AcquireRelease>::with_strategy(2));
        let producers: Vec<_> = [10u32, 20]
            .into_iter()
            .map(|v| {
                let ch = ch.clone();
                thread::spawn(move || ch.send(v).unwrap())
            })
            .collect();
        let first = ch.recv();
        for p in producers {
            p.join().unwrap();
        }
        let mut got: Vec<u32> = first.into_iter().collect();
        while let Some(v) = ch.recv() {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [10, 20]);
    });
}

/// The park/wake race: a receiver that parks on an empty channel is woken
/// by a send however the two interleave (a lost wake-up would leave the
/// receiver blocked forever, which loom reports as a deadlock).
#[test]
fn channel_park_wake_no_lost_wakeup() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let receiver = thread::spawn(move || rx.recv());
        tx.send(5).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(5));
    });
}

/// The mirror race: a sender parked on a full channel is woken by a recv.
#[test]
fn channel_parked_sender_woken_by_recv() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        tx.send(1).unwrap();
        let sender = thread::spawn(move || tx.send(2));
        assert_eq!(rx.recv(), Ok(1));
        sender.join().unwrap().unwrap();
        assert_eq!(rx.recv(), Ok(2));
    });
}

/// Disconnect while a receiver is parked: dropping the last sender wakes it
/// and it fails (nothing was sent), without deadlock.
#[test]
fn channel_disconnect_wakes_parked_receiver() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let receiver = thread::spawn(move || rx.recv());
        drop(tx);
        assert_eq!(receiver.join().unwrap(), Err(RecvError));
    });
}

/// Drain then fail: a value sent just before the last sender drops is
/// received before the disconnection is reported.
#[test]
fn channel_disconnect_after_send_drains_first() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(2);
        let sender = thread::spawn(move || {
            tx.send(3).unwrap();
            drop(tx);
        });
        assert_eq!(rx.recv(), Ok(3));
        assert_eq!(rx.recv(), Err(RecvError));
        sender.join().unwrap();
    });
}

/// Disconnect while a sender is parked on a full channel: it is woken and
/// gets its value back — or, since the last receiver's drop empties the
/// channel, a retry that passed the closed check just before the close may
/// still be accepted (the send linearizes before the disconnect, and the
/// value is dropped with the rest, see `channel_last_receiver_drop_races_a_send`).
/// Never a deadlock.
#[test]
fn channel_disconnect_wakes_parked_sender() {
    loom::model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        tx.send(1).unwrap();
        let sender = thread::spawn(move || tx.send(2).map_err(|e| e.into_inner()));
        drop(rx);
        let r = sender.join().unwrap();
        assert!(r == Err(2) || r == Ok(()), "{r:?}");
    });
}

/// SPSC: the consumer sees values in order and complete, across wrap-around
/// of a one-slot ring.
#[test]
fn channel_spsc_push_pop() {
    loom::model(|| {
        let (mut p, mut c) = channel::spsc::bounded::<u32>(1);
        let producer = thread::spawn(move || {
            let mut pushed = 0;
            for v in [1, 2] {
                if p.push(v).is_ok() {
                    pushed += 1;
                }
            }
            pushed
        });
        let mut got = Vec::new();
        for _ in 0..2 {
            if let Some(v) = c.pop() {
                got.push(v);
            }
        }
        let pushed = producer.join().unwrap();
        while let Some(v) = c.pop() {
            got.push(v);
        }
        assert_eq!(got.len(), pushed);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
        assert!(got.first().map_or(true, |&v| v == 1));
    });
}

/// SPSC chunks: a two-slot ring, the producer writes two chunks (one
/// `Release` store each), the consumer reads chunks (one `Acquire` refresh
/// when its cache is short, plain reads, one `Release` store). Every value
/// a chunk reads is complete and in order (loom checks the plain cell
/// accesses against the index hand-off), none lost or read twice, and a
/// chunk dropped after taking one of two values leaves the other queued.
#[test]
fn channel_spsc_chunks() {
    loom::model(|| {
        let (mut p, mut c) = channel::spsc::bounded::<u32>(2);
        let producer = thread::spawn(move || {
            let mut src = 1..=4u32;
            let mut pushed = 0;
            for _ in 0..2 {
                pushed += p.write_chunk(2).fill_from_iter(&mut src);
            }
            pushed
        });
        let mut got = Vec::new();
        {
            // Take at most one of what is ready.
            let mut chunk = c.read_chunk(2);
            if let Some(v) = chunk.next() {
                got.push(v);
            }
        }
        got.extend(c.read_chunk(2));
        let pushed = producer.join().unwrap();
        got.extend(c.read_chunk(4));
        assert_eq!(got.len(), pushed);
        assert_eq!(got, (1..=pushed as u32).collect::<Vec<_>>());
    });
}

/// The stamp-first path: two consumers race for the one value already in a
/// two-slot channel while a producer sends a second. The value that was in
/// the channel before either consumer started is taken by exactly one of
/// them (a `None` from a consumer is linearizable only if the other took
/// it), the losing CAS goes straight back to the stamp of the next
/// position, and no value is lost or duplicated.
#[test]
fn channel_stamp_first_two_consumers_and_a_producer() {
    loom::model(|| {
        let ch = Arc::new(OptimizedChannel::<u32>::new(2));
        ch.send(1).unwrap();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let ch = ch.clone();
                thread::spawn(move || ch.recv())
            })
            .collect();
        ch.send(2).unwrap();
        let got: Vec<Option<u32>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        assert_eq!(
            got.iter().filter(|v| **v == Some(1)).count(),
            1,
            "value 1 was in the channel before both consumers started: {got:?}"
        );
        let mut all: Vec<u32> = got.into_iter().flatten().collect();
        while let Some(v) = ch.recv() {
            all.push(v);
        }
        all.sort_unstable();
        assert_eq!(all, [1, 2]);
    });
}

struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The last receiver drops while a send is in flight: whether the send is
/// accepted (its value is then dropped by the receiver's drain or by the
/// sender's own drain) or rejected (the value comes back), the value is
/// dropped by the time both are done, while the sender handle still lives:
/// never left queued for nobody.
#[test]
fn channel_last_receiver_drop_races_a_send() {
    loom::model(|| {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = channel::bounded::<Counted>(2);
        let d = drops.clone();
        let sender = thread::spawn(move || {
            let accepted = tx.try_send(Counted(d)).is_ok();
            (tx, accepted)
        });
        drop(rx);
        let (tx, _accepted) = sender.join().unwrap();
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 1);
        drop(tx);
    });
}

/// SPSC abandonment (rtrb's `no_race_with_is_abandoned`; peers10): a
/// consumer that sees the producer gone also sees what it pushed first —
/// `is_abandoned` must synchronize with the producer's drop, and the value
/// is then popped, not reported missing. (The `Relaxed`
/// `Arc::strong_count` check this replaced was caught by Miri's weak-memory
/// emulation in `tests/peer_spsc.rs`; loom's `Arc` does not model that
/// load. This model fails if the flag's load is weakened to `Relaxed`.)
#[test]
fn channel_spsc_abandoned_sees_last_push() {
    loom::model(|| {
        let (mut p, mut c) = channel::spsc::bounded::<u32>(2);
        let producer = thread::spawn(move || {
            p.push(10).unwrap();
            drop(p);
        });
        if c.is_abandoned() {
            assert_eq!(c.pop(), Some(10), "the producer's last push is lost");
            assert_eq!(c.pop(), None);
        }
        producer.join().unwrap();
        assert!(c.is_abandoned());
    });
}
