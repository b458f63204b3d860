//! Small shared utilities: [`CachePadded`] and [`Backoff`].

use core::fmt;
use core::ops::{Deref, DerefMut};

use crate::sync;

/// Pads and aligns a value to the length of a cache line (or of the unit the
/// CPU prefetches together), so that two `CachePadded` values never share a
/// line and writes to one never invalidate the other (no false sharing).
///
/// Alignment per architecture:
///
/// | target | alignment | why |
/// |---|---|---|
/// | `x86_64` | 128 | 64-byte lines, but the spatial prefetcher pulls lines in adjacent pairs |
/// | `aarch64` | 128 | Apple M-series and some Neoverse parts use 128-byte lines/prefetch pairs |
/// | `powerpc64` | 128 | 128-byte lines |
/// | `arm`, `mips`, `riscv`, `s390x`… | 64 (256 on `s390x`) | their line size |
/// | other | 64 | the common case |
///
/// # Examples
///
/// ```
/// use waitless::CachePadded;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let head = CachePadded::new(AtomicUsize::new(0));
/// head.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(head.load(Ordering::Relaxed), 1);
/// assert!(core::mem::align_of::<CachePadded<u8>>() >= 64);
/// ```
#[cfg_attr(
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "powerpc64"
    ),
    repr(align(128))
)]
#[cfg_attr(target_arch = "s390x", repr(align(256)))]
#[cfg_attr(
    not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "powerpc64",
        target_arch = "s390x"
    )),
    repr(align(64))
)]
#[derive(Clone, Copy, Default, Hash, PartialEq, Eq)]
pub struct CachePadded<T> {
    value: T,
}

impl<T> CachePadded<T> {
    /// Wraps `value` in its own cache line.
    ///
    /// ```
    /// use waitless::CachePadded;
    ///
    /// let counters = [CachePadded::new(0u64), CachePadded::new(0u64)];
    /// assert!(core::mem::size_of_val(&counters) >= 128); // one line each
    /// ```
    #[must_use]
    pub const fn new(value: T) -> Self {
        Self { value }
    }

    /// Returns the inner value.
    ///
    /// ```
    /// use waitless::CachePadded;
    ///
    /// assert_eq!(CachePadded::new(7).into_inner(), 7);
    /// ```
    #[must_use]
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T> Deref for CachePadded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for CachePadded<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for CachePadded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachePadded")
            .field("value", &self.value)
            .finish()
    }
}

impl<T> From<T> for CachePadded<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

const SPIN_LIMIT: u32 = 6;
const YIELD_LIMIT: u32 = 10;

/// Exponential backoff for retry loops.
///
/// [`spin`](Backoff::spin) is for a failed CAS (someone else made progress:
/// back off briefly, never yield). [`snooze`](Backoff::snooze) is for waiting
/// on another thread: it spins `2^step` times up to a limit, then yields the
/// CPU. Once [`is_completed`](Backoff::is_completed) returns `true` the
/// caller should stop burning CPU and park on a real blocking primitive —
/// yielding alone is 20× slower when both threads share a core.
///
/// # Examples
///
/// ```
/// use waitless::Backoff;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let ready = AtomicBool::new(true);
/// let backoff = Backoff::new();
/// while !ready.load(Ordering::Acquire) {
///     if backoff.is_completed() {
///         std::thread::park_timeout(std::time::Duration::from_millis(1));
///     } else {
///         backoff.snooze();
///     }
/// }
/// ```
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use waitless::Backoff;
///
/// let flag = AtomicBool::new(true);
/// let backoff = Backoff::new();
/// while !flag.load(Ordering::Acquire) {
///     backoff.snooze(); // spin a little longer each time, then yield
/// }
/// ```
pub struct Backoff {
    step: core::cell::Cell<u32>,
}

impl Backoff {
    /// A fresh backoff at step zero.
    ///
    /// ```
    /// use waitless::Backoff;
    ///
    /// let b = Backoff::new();
    /// assert!(!b.is_completed());
    /// ```
    #[must_use]
    #[inline]
    pub const fn new() -> Self {
        Self {
            step: core::cell::Cell::new(0),
        }
    }

    /// Back to step zero.
    ///
    /// ```
    /// use waitless::Backoff;
    ///
    /// let b = Backoff::new();
    /// while !b.is_completed() {
    ///     b.snooze();
    /// }
    /// b.reset();
    /// assert!(!b.is_completed());
    /// ```
    #[inline]
    pub fn reset(&self) {
        self.step.set(0);
    }

    /// Backs off after a failed CAS: spins `2^step` times (capped), never
    /// yields, because the competing thread is running and will finish soon.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use waitless::Backoff;
    ///
    /// let n = AtomicUsize::new(0);
    /// let b = Backoff::new();
    /// let mut cur = n.load(Ordering::Relaxed);
    /// while let Err(now) = n.compare_exchange(cur, cur + 1, Ordering::Relaxed, Ordering::Relaxed) {
    ///     cur = now;
    ///     b.spin(); // after a lost CAS
    /// }
    /// assert_eq!(n.load(Ordering::Relaxed), 1);
    /// ```
    #[inline]
    pub fn spin(&self) {
        let step = self.step.get().min(SPIN_LIMIT);
        for _ in 0..(1u32 << step) {
            sync::spin_loop();
        }
        if self.step.get() <= SPIN_LIMIT {
            self.step.set(self.step.get() + 1);
        }
    }

    /// Backs off while waiting for another thread: spins, then yields.
    ///
    /// ```
    /// use waitless::Backoff;
    ///
    /// let b = Backoff::new();
    /// b.snooze(); // spins now; yields the thread once the budget is spent
    /// ```
    #[inline]
    pub fn snooze(&self) {
        if self.step.get() <= SPIN_LIMIT {
            for _ in 0..(1u32 << self.step.get()) {
                sync::spin_loop();
            }
        } else {
            sync::thread::yield_now();
        }
        if self.step.get() <= YIELD_LIMIT {
            self.step.set(self.step.get() + 1);
        }
    }

    /// `true` once backing off has run its course: park instead.
    ///
    /// ```
    /// use waitless::Backoff;
    ///
    /// let b = Backoff::new();
    /// let mut rounds = 0;
    /// while !b.is_completed() {
    ///     b.snooze();
    ///     rounds += 1;
    /// }
    /// assert!(rounds > 0); // time to park instead of spinning
    /// ```
    #[must_use]
    #[inline]
    pub fn is_completed(&self) -> bool {
        self.step.get() > YIELD_LIMIT
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("step", &self.step.get())
            .field("is_completed", &self.is_completed())
            .finish()
    }
}

/// Defines an error type that gives the rejected value back: the type (an
/// enum with one `T` per variant, or a tuple struct `Name<T>(pub T)`),
/// `into_inner`, and the traits every such error has in this crate —
/// `Clone`, `Copy`, `PartialEq`, `Eq` (derived, so only where `T` has them),
/// a `Debug` that needs no `T: Debug` and prints `Name::Variant(..)` (or
/// `Name(..)` for a struct), `Display` with the given message and
/// `std::error::Error`. Every value-returning error of the library is
/// defined with it, so they all behave alike.
macro_rules! value_error {
    (
        $(#[$meta:meta])*
        enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $msg:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(PartialEq, Eq, Clone, Copy)]
        pub enum $name<T> {
            $( $(#[$vmeta])* $variant(T), )+
        }

        impl<T> $name<T> {
            /// Returns the value that the failed call gave back.
            #[must_use]
            pub fn into_inner(self) -> T {
                match self {
                    $( Self::$variant(v) => v, )+
                }
            }
        }

        impl<T> ::core::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    $( Self::$variant(_) => f.write_str(concat!(stringify!($name), "::", stringify!($variant), "(..)")), )+
                }
            }
        }

        impl<T> ::core::fmt::Display for $name<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    $( Self::$variant(_) => f.write_str($msg), )+
                }
            }
        }

        impl<T> std::error::Error for $name<T> {}
    };
    (
        $(#[$meta:meta])*
        struct $name:ident => $msg:literal
    ) => {
        $(#[$meta])*
        #[derive(PartialEq, Eq, Clone, Copy)]
        pub struct $name<T>(pub T);

        impl<T> $name<T> {
            /// Returns the value that the failed call gave back.
            #[must_use]
            pub fn into_inner(self) -> T {
                self.0
            }
        }

        impl<T> ::core::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }

        impl<T> ::core::fmt::Display for $name<T> {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str($msg)
            }
        }

        impl<T> std::error::Error for $name<T> {}
    };
}
pub(crate) use value_error;

/// Asks the CPU to start loading the cache line at `p` into L1, so that a
/// load that comes later finds it there. A hint only: a prefetch never
/// faults and has no effect on the program's semantics, whatever the
/// address (null, dangling or freed included). A no-op under loom and Miri
/// and off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", not(loom), not(miri)))]
    // SAFETY: `_mm_prefetch` (SSE, part of the x86-64 baseline) reads
    // nothing the program can observe and never faults.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    };
    #[cfg(not(all(target_arch = "x86_64", not(loom), not(miri))))]
    let _ = p;
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn cache_padded_alignment_separates_values() {
        let pair = [CachePadded::new(0u8), CachePadded::new(1u8)];
        let a = &pair[0] as *const _ as usize;
        let b = &pair[1] as *const _ as usize;
        assert!(b - a >= 64);
        assert_eq!(a % core::mem::align_of::<CachePadded<u8>>(), 0);
        assert_eq!(*pair[1], 1);
    }

    #[test]
    fn backoff_completes_after_bounded_snoozes() {
        let b = Backoff::new();
        let mut n = 0;
        while !b.is_completed() {
            b.snooze();
            n += 1;
            assert!(n < 100, "backoff never completed");
        }
        b.reset();
        assert!(!b.is_completed());
        // spin() alone never reports completion-worthy yielding steps beyond its cap
        for _ in 0..100 {
            b.spin();
        }
        assert!(!b.is_completed());
    }
}
