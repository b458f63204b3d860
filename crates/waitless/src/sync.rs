//! The one place that imports synchronization primitives.
//!
//! Every other module takes its atomics, cells, thread-locals, `Arc`,
//! `Mutex`/`Condvar`, parking and yielding from here. Under `cfg(loom)` they
//! come from [`loom`](https://docs.rs/loom) so the model checker sees every
//! access; otherwise from `std`. The [`UnsafeCell`] wrapper exposes loom's
//! closure-based `with`/`with_mut` API in both modes so code is written once.
//!
//! Under `cfg(waitless_sanitize_thread)` (set it when running ThreadSanitizer)
//! code that relies on standalone fences uses the access-based variants
//! instead, because TSan does not model `fence`: the epoch advancer's
//! pin-word loads are `Acquire` (`epoch/internal.rs`), and the fence-free
//! pin and hazard publication (membarrier) are off (`hazard/fence.rs`).
#![allow(dead_code, unused_imports)]

#[cfg(not(loom))]
pub(crate) mod atomic {
    pub(crate) use std::sync::atomic::{
        compiler_fence, fence, AtomicBool, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64,
        AtomicU8, AtomicUsize, Ordering,
    };
}

#[cfg(loom)]
pub(crate) mod atomic {
    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, AtomicU8,
        AtomicUsize, Ordering,
    };

    /// loom has no `compiler_fence`; a compiler fence only constrains the
    /// compiler, and loom explores the weakest executions anyway, so the
    /// closest sound model is a SeqCst fence (it can only hide bugs that a
    /// compiler fence would also have to be paired with a process-wide
    /// barrier to prevent, which loom cannot model either).
    pub(crate) fn compiler_fence(order: Ordering) {
        fence(order)
    }
}

/// A process-wide statistics counter in a `static`: always std's atomic,
/// because a `static` needs a `const` constructor, which loom's atomics
/// lack. Nothing may be synchronized through it (only `Relaxed` counts).
pub(crate) type StatCounter = std::sync::atomic::AtomicUsize;

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Thread primitives: `yield_now`, `park`, `current`, `Thread`.
pub(crate) mod thread {
    #[cfg(not(loom))]
    pub(crate) use std::thread::{current, park, park_timeout, yield_now, Thread};

    #[cfg(loom)]
    pub(crate) use loom::thread::{current, park, yield_now, Thread};

    /// loom has no timed park; a spurious early wake-up is allowed by the
    /// contract of `park_timeout`, so a plain `park` preceded by a yield is a
    /// faithful model of "may return at any time".
    #[cfg(loom)]
    pub(crate) fn park_timeout(_dur: std::time::Duration) {
        loom::thread::yield_now();
    }
}

/// A spin-loop hint. Under loom it yields, because loom must see every spin
/// iteration as a scheduling point or it explores an unbounded loop.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// `thread_local!` from std or loom.
#[cfg(not(loom))]
#[allow(unused_macros)]
macro_rules! waitless_thread_local {
    ($($tt:tt)*) => { std::thread_local!($($tt)*); };
}
#[cfg(loom)]
#[allow(unused_macros)]
macro_rules! waitless_thread_local {
    ($($tt:tt)*) => { loom::thread_local!($($tt)*); };
}
#[allow(unused_imports)]
pub(crate) use waitless_thread_local as thread_local;

/// An `UnsafeCell` with loom's closure-based API in both modes.
#[cfg(not(loom))]
#[derive(Debug, Default)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T: ?Sized>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline]
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Runs `f` with a shared raw pointer to the contents. The caller is
    /// responsible for the absence of concurrent writes while it is used.
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a mutable raw pointer to the contents. The caller is
    /// responsible for exclusive access while it is used.
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }

    /// Exclusive access through `&mut self`; needs no synchronization.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }
}

#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

#[cfg(loom)]
impl<T> UnsafeCell<T> {
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        Self(loom::cell::UnsafeCell::new(value))
    }

    #[inline]
    pub(crate) fn into_inner(self) -> T {
        self.0.into_inner()
    }

    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        self.0.with(f)
    }

    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        self.0.with_mut(f)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        // SAFETY: `&mut self` proves exclusive access, so handing out a
        // `&mut T` for the borrow's lifetime cannot race with anything.
        self.0.with_mut(|p| unsafe { &mut *p })
    }
}
