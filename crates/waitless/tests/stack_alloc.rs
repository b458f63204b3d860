//! Dropping a stack returns every byte it allocated: live nodes, retired
//! nodes, sealed garbage bags and every per-thread record; the per-thread
//! node caches of the threads that used it are returned when those threads
//! exit (and the dropping thread's at the drop). A counting
//! `#[global_allocator]` measures it; this file holds one test so no other
//! test allocates concurrently.
#![cfg(not(loom))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};

use waitless::stack::LockFreeStack;

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

std::thread_local! {
    /// Set on the threads this test runs: only their allocations count, so
    /// the test harness's own threads (which allocate at times of their own,
    /// e.g. when libtest's main thread first blocks on its result channel)
    /// cannot disturb the measurement.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread: its allocations from now on are counted.
fn count_this_thread() {
    COUNTED.with(|c| c.set(true));
}

/// Every block carries a header recording whether its allocation was
/// counted, so its deallocation (on whatever thread) is counted the same.
fn header(layout: Layout) -> usize {
    layout.align().max(16)
}

fn padded(layout: Layout) -> Layout {
    match Layout::from_size_align(layout.size() + header(layout), header(layout)) {
        Ok(l) => l,
        Err(_) => std::process::abort(),
    }
}

// SAFETY: forwards to `System` with a header in front of every block (the
// returned pointer is `header` bytes in, which keeps the requested alignment
// because `header` is a multiple of it); it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `padded(layout)` has a non-zero size.
        let base = unsafe { System.alloc(padded(layout)) };
        if base.is_null() {
            return base;
        }
        let counted = COUNTED.try_with(Cell::get).unwrap_or(false);
        if counted {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the header byte lies inside the fresh block.
        unsafe { base.write(u8::from(counted)) };
        // SAFETY: `header(layout) <= padded(layout).size()`.
        unsafe { base.add(header(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout: its block starts
        // `header` bytes before it.
        let base = unsafe { ptr.sub(header(layout)) };
        // SAFETY: the header byte was written by `alloc`.
        if unsafe { base.read() } == 1 {
            LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: allocated by `System` with `padded(layout)`.
        unsafe { System.dealloc(base, padded(layout)) };
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn dropping_the_stack_returns_every_byte() {
    let per: u64 = if cfg!(miri) { 50 } else { 20_000 };
    // Everything runs on a spawned thread so that its thread-locals (the
    // collector cache) are gone when we measure; the measuring thread never
    // touches a stack.
    let run = move || {
        count_this_thread();
        let s = LockFreeStack::new();
        std::thread::scope(|sc| {
            let workers: Vec<_> = (0..4u64)
                .map(|t| {
                    let s = &s;
                    sc.spawn(move || {
                        count_this_thread();
                        for i in 0..per {
                            s.push(vec![t; (i % 7) as usize]).unwrap();
                            if i % 4 != 0 {
                                let g = s.enter();
                                drop(s.pop(&g));
                            }
                        }
                    })
                })
                .collect();
            // Join each worker explicitly: unlike the scope's implicit
            // wait, `join` returns only once the thread has exited, its
            // thread-local destructors (the node cache) included.
            for w in workers {
                w.join().unwrap();
            }
        });
        // The spawning thread also takes part, and stays alive past the drop.
        s.push(vec![9; 3]).unwrap();
        drop(s.pop(&s.enter()));
        let st = s.stats();
        assert!(st.active_nodes > 0 && st.retired_nodes > 0, "{st:?}");
        // Drop with live nodes, retired nodes and records of exited threads.
        drop(s);
    };
    // Warm up std's lazily allocated per-process state (thread spawning).
    std::thread::spawn(|| ()).join().unwrap();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let allocs_before = ALLOCS.load(Ordering::Relaxed);
    std::thread::spawn(run).join().unwrap();
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    assert!(ALLOCS.load(Ordering::Relaxed) - allocs_before > per);
    assert_eq!(
        after, before,
        "bytes still allocated after the stack dropped"
    );
}
