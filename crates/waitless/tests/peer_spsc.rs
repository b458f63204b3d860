//! The behaviours that rtrb's own tests (`tests/lib.rs`, `tests/chunks.rs`,
//! `tests/write_and_read.rs`) pin down for an SPSC ring buffer, checked
//! against [`waitless::channel::spsc`]. Written for waitless; each test
//! names the peer test that inspired it.
//!
//! Differences on purpose: the capacity must be a power of two, so there is
//! no zero-capacity ring (rtrb accepts 0 and every push fails); `pop`
//! returns `Option` (rtrb: `Result<T, PopError>`); chunks publish when
//! dropped (rtrb: an explicit `commit`).

// The structures run on loom's atomics under `--cfg loom`, which work only
// inside `loom::model`: these tests are for the real build.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};

use waitless::channel::spsc;
use waitless::channel::PushError;

// Inspired by rtrb `lib.rs::capacity`.
#[test]
fn capacity_is_what_was_asked() {
    for shift in 0..12 {
        let (p, c) = spsc::bounded::<i32>(1 << shift);
        assert_eq!(p.capacity(), 1 << shift);
        assert_eq!(c.capacity(), 1 << shift);
    }
}

// Inspired by rtrb `lib.rs::zero_capacity`: where rtrb makes a ring that
// is always full, ours refuses the capacity with a message naming it.
#[test]
#[should_panic(expected = "spsc capacity must be a power of two, got 0")]
fn zero_capacity_panics_with_its_reason() {
    let _ = spsc::bounded::<i32>(0);
}

// Inspired by rtrb `lib.rs::zero_sized_type` (capacity 1, slot accounting
// on both sides).
#[test]
fn zero_sized_type_in_a_one_slot_ring() {
    struct ZeroSized;
    let (mut p, mut c) = spsc::bounded(1);
    assert_eq!(p.capacity(), 1);
    assert_eq!(p.slots(), 1);
    assert_eq!(c.len(), 0);
    assert!(p.push(ZeroSized).is_ok());
    assert_eq!(p.slots(), 0);
    assert_eq!(c.len(), 1);
    assert!(p.push(ZeroSized).is_err());
    assert!(c.pop().is_some());
    assert_eq!(c.len(), 0);
    assert!(c.is_empty());
    assert!(c.pop().is_none());
    assert_eq!(p.slots(), 1);
}

// Inspired by rtrb `lib.rs::parallel`: FIFO across two threads through a
// small ring, and nothing left over.
#[test]
fn parallel_fifo() {
    let count = if cfg!(miri) { 1_000 } else { 100_000 };
    let (mut p, mut c) = spsc::bounded(4);
    let popper = std::thread::spawn(move || {
        for i in 0..count {
            loop {
                if let Some(x) = c.pop() {
                    assert_eq!(x, i);
                    break;
                }
                std::thread::yield_now();
            }
        }
        assert!(c.pop().is_none());
    });
    let pusher = std::thread::spawn(move || {
        for i in 0..count {
            let mut v = i;
            while let Err(e) = p.push(v) {
                v = e.into_inner();
                std::thread::yield_now();
            }
        }
    });
    pusher.join().unwrap();
    popper.join().unwrap();
}

static DROPS: AtomicUsize = AtomicUsize::new(0);
#[derive(Debug)]
struct DropCounter;
impl Drop for DropCounter {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

// Inspired by rtrb `lib.rs::drops`: the values popped are dropped by the
// consumer, a refused push gives its value back, and the values left when
// the last handle goes (here the producer, after the consumer's thread
// ended) are dropped then, exactly once.
#[test]
fn drops_exactly_once_when_the_last_handle_goes() {
    let runs = if cfg!(miri) { 4 } else { 50 };
    for run in 0..runs {
        let steps = if cfg!(miri) { 30 } else { 1_000 + run * 97 };
        let additional = run % 32;
        DROPS.store(0, Ordering::SeqCst);
        let (mut p, mut c) = spsc::bounded(32);
        let popper = std::thread::spawn(move || {
            for _ in 0..steps {
                while c.pop().is_none() {
                    std::thread::yield_now();
                }
            }
            // `c` is dropped here, with the ring empty.
        });
        let pusher = std::thread::spawn(move || {
            for _ in 0..steps {
                let mut v = DropCounter;
                while let Err(e) = p.push(v) {
                    v = e.into_inner();
                    std::thread::yield_now();
                }
            }
            p
        });
        let mut p = pusher.join().unwrap();
        popper.join().unwrap();
        assert!(p.is_abandoned());
        assert_eq!(DROPS.load(Ordering::SeqCst), steps);
        for _ in 0..additional {
            assert!(p.push(DropCounter).is_ok());
        }
        assert_eq!(DROPS.load(Ordering::SeqCst), steps);
        drop(p);
        assert_eq!(
            DROPS.load(Ordering::SeqCst),
            steps + additional,
            "run {run}"
        );
    }
}

// Inspired by rtrb `lib.rs::trait_impls`: handles print as themselves,
// the push error prints without `T: Debug` and reads as an error.
#[test]
fn debug_and_error_impls() {
    struct Opaque;
    let (mut p, c) = spsc::bounded::<Opaque>(1);
    assert!(format!("{p:?}").starts_with("Producer"), "{p:?}");
    assert!(format!("{c:?}").starts_with("Consumer"), "{c:?}");
    assert!(p.push(Opaque).is_ok());
    let e: PushError<Opaque> = p.push(Opaque).unwrap_err();
    assert_eq!(format!("{e:?}"), "PushError(..)");
    assert!(e.to_string().contains("full"), "{e}");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().contains("full"));
}

// Inspired by rtrb `lib.rs::no_race_with_is_abandoned`: a handle learns
// that its partner is gone, and what the partner wrote before it went is
// visible (the drop synchronizes with `is_abandoned`).
#[test]
fn abandonment_is_seen_with_what_came_before() {
    for _ in 0..if cfg!(miri) { 3 } else { 50 } {
        let (mut p, mut c) = spsc::bounded(8);
        assert!(!p.is_abandoned() && !c.is_abandoned());
        let t = std::thread::spawn(move || {
            p.push(10u32).unwrap();
            drop(p);
        });
        while !c.is_abandoned() {
            std::thread::yield_now();
        }
        assert_eq!(c.pop(), Some(10));
        assert_eq!(c.pop(), None);
        t.join().unwrap();
    }
    let (p, c) = spsc::bounded::<u8>(2);
    drop(c);
    assert!(p.is_abandoned());
}

// Inspired by rtrb `chunks.rs::iterators`: a read chunk is an exact-size
// iterator whose length counts down, and values not taken stay.
#[test]
fn read_chunks_count_down_and_leave_the_rest() {
    let (mut p, mut c) = spsc::bounded(4);
    p.push(10).unwrap();
    p.push(11).unwrap();
    {
        let mut it = c.read_chunk(1);
        assert_eq!(it.len(), 1);
        assert_eq!(it.next(), Some(10));
        assert_eq!(it.len(), 0);
        assert_eq!(it.next(), None);
    }
    assert_eq!(c.len(), 1);
    p.push(20).unwrap();
    p.push(21).unwrap();
    {
        let mut it = c.read_chunk(8);
        assert_eq!(it.len(), 3);
        assert_eq!(it.next(), Some(11));
        assert_eq!(it.len(), 2);
        assert_eq!(it.next(), Some(20));
        // Dropped with 21 not taken.
    }
    assert_eq!(c.len(), 1);
    let mut it = c.read_chunk(8);
    assert_eq!(it.next(), Some(21));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None, "fused");
}

// Inspired by rtrb `chunks.rs::single_capacity` and `zero_capacity` (a
// chunk is as long as the free slots / ready values, possibly zero).
#[test]
fn chunk_lengths_follow_the_free_slots() {
    let (mut p, mut c) = spsc::bounded(1);
    {
        let mut w = p.write_chunk(5);
        assert_eq!(w.len(), 1);
        assert!(!w.is_empty());
        w.push(1).unwrap();
        assert!(w.push(2).is_err(), "the chunk is full");
    }
    assert!(p.write_chunk(1).is_empty(), "no free slot");
    assert_eq!(c.read_chunk(0).len(), 0);
    assert_eq!(c.read_chunk(5).collect::<Vec<_>>(), [1]);
    assert_eq!(c.read_chunk(5).len(), 0);
    assert_eq!(p.write_chunk(0).len(), 0);
    assert_eq!(p.write_chunk(3).len(), 1);
}

static CHUNK_DROPS: AtomicUsize = AtomicUsize::new(0);
struct ChunkCounted;
impl Drop for ChunkCounted {
    fn drop(&mut self) {
        CHUNK_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

// Inspired by rtrb `chunks.rs::drop_write_chunk` (values written through a
// chunk are dropped exactly once, however the chunk and the ring end).
#[test]
fn values_written_through_chunks_drop_once() {
    CHUNK_DROPS.store(0, Ordering::SeqCst);
    {
        let (mut p, mut c) = spsc::bounded(4);
        {
            let mut w = p.write_chunk(3);
            for _ in 0..3 {
                assert!(w.push(ChunkCounted).is_ok());
            }
            let refused = w.push(ChunkCounted);
            assert!(refused.is_err());
            drop(refused);
            assert_eq!(CHUNK_DROPS.load(Ordering::SeqCst), 1);
        }
        assert_eq!(CHUNK_DROPS.load(Ordering::SeqCst), 1);
        drop(c.read_chunk(1).next());
        assert_eq!(CHUNK_DROPS.load(Ordering::SeqCst), 2);
        {
            let mut it = c.read_chunk(8);
            assert_eq!(it.len(), 2);
            drop(it.next());
        }
        assert_eq!(CHUNK_DROPS.load(Ordering::SeqCst), 3);
        assert_eq!(
            p.push_iter(&mut std::iter::repeat_with(|| ChunkCounted).take(2)),
            2
        );
        assert_eq!(c.len(), 3);
    }
    assert_eq!(CHUNK_DROPS.load(Ordering::SeqCst), 6);
}

// Inspired by rtrb `chunks.rs::push_pop_partial_slice` and
// `write_and_read.rs` (batch writes take only what fits; nothing lost).
#[test]
fn batches_take_only_what_fits() {
    let (mut p, mut c) = spsc::bounded(8);
    let mut src = 1..=3;
    assert_eq!(p.push_iter(&mut src), 3);
    assert_eq!(src.next(), None);
    let mut src = 4..=20;
    assert_eq!(p.push_iter(&mut src), 5);
    assert_eq!(
        src.next(),
        Some(9),
        "the first value that did not fit stays"
    );
    let mut out = Vec::new();
    assert_eq!(c.pop_batch(&mut out, 3), 3);
    assert_eq!(c.pop_batch(&mut out, 100), 5);
    assert_eq!(out, (1..=8).collect::<Vec<_>>());
    assert_eq!(c.pop_batch(&mut out, 100), 0);
}

// Inspired by rtrb's `Producer: Send`, `Consumer: Send` (each handle moves
// to its own thread).
#[test]
fn handles_are_send() {
    fn send<T: Send>() {}
    send::<spsc::Producer<String>>();
    send::<spsc::Consumer<String>>();
}
