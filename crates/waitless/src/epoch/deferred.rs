//! Deferred functions and the bags that hold them.
//!
//! A [`Deferred`] is a type-erased `FnOnce()` stored inline when it fits in
//! three words (the common case: a pointer and a layout), boxed otherwise.
//! A [`Bag`] is a fixed array of them, filled by one thread without any
//! synchronization and handed over as a whole.

use core::mem::{self, MaybeUninit};
use core::ptr;

/// Inline storage for a closure: three words, word-aligned.
type Data = [usize; 3];

/// The word of `Data` where [`Deferred::hinted`] keeps its hint.
const HINT_WORD: usize = 2;

/// Calls the `F` stored inline at `raw`.
///
/// # Safety
/// 1. `raw` holds an `F` written by `Deferred::new` or `Deferred::hinted`
///    and not yet read.
unsafe fn call_inline<F: FnOnce()>(raw: *mut Data) {
    // SAFETY: precondition 1: an initialized `F` lives at `raw`, and this
    // is the only read of it (the caller calls once).
    let f: F = unsafe { ptr::read(raw.cast::<F>()) };
    f();
}

/// A type-erased `FnOnce()` that is called exactly once, or dropped without
/// being called only by [`Deferred::call`]'s absence (never: every bag runs
/// what it holds).
pub(crate) struct Deferred {
    call: unsafe fn(*mut Data),
    data: MaybeUninit<Data>,
}

impl Deferred {
    /// Wraps `f`. Allocates only when `f` is larger than three words.
    pub(crate) fn new<F: FnOnce()>(f: F) -> Self {
        let mut data = MaybeUninit::<Data>::uninit();
        if mem::size_of::<F>() <= mem::size_of::<Data>()
            && mem::align_of::<F>() <= mem::align_of::<Data>()
        {
            // SAFETY: `F` fits in `Data` in size and alignment (checked
            // above), and `data` is a fresh, writable buffer.
            unsafe { ptr::write(data.as_mut_ptr().cast::<F>(), f) };
            Self {
                call: call_inline::<F>,
                data,
            }
        } else {
            /// # Safety
            /// 1. `raw` holds a `Box<F>` written by `Deferred::new` and not yet read.
            unsafe fn call_boxed<F: FnOnce()>(raw: *mut Data) {
                // SAFETY: precondition 1; a `Box<F>` is one word and fits.
                let f: Box<F> = unsafe { ptr::read(raw.cast::<Box<F>>()) };
                (*f)();
            }
            let boxed: Box<F> = Box::new(f);
            // SAFETY: a `Box` is one pointer: it fits in `Data` and is
            // word-aligned; `data` is a fresh buffer.
            unsafe { ptr::write(data.as_mut_ptr().cast::<Box<F>>(), boxed) };
            Self {
                call: call_boxed::<F>,
                data,
            }
        }
    }

    /// Wraps `f`, whose captures fit in two words, with `hint`: an address
    /// that `f` reads first. A bag holding it starts loading that line
    /// before it runs any of its functions ([`Bag::run_all`]), so that the
    /// cache misses of a bag's functions overlap instead of following one
    /// another: a function run a grace period after it was deferred finds
    /// its object cold. The hint is only ever prefetched, never
    /// dereferenced, so any address is sound. Push it with
    /// [`Bag::try_push_hinted`].
    pub(crate) fn hinted<F: FnOnce()>(f: F, hint: *const u8) -> Self {
        const {
            assert!(
                mem::size_of::<F>() <= HINT_WORD * mem::size_of::<usize>()
                    && mem::align_of::<F>() <= mem::align_of::<Data>(),
                "a hinted function must fit in two words"
            )
        };
        let mut data = MaybeUninit::<Data>::uninit();
        let raw = data.as_mut_ptr();
        // SAFETY: `F` fits in the first two words of `Data` in size and
        // alignment (asserted above), and the third word, written next, is
        // past it; `data` is a fresh, writable buffer.
        unsafe {
            ptr::write(raw.cast::<F>(), f);
            ptr::write(raw.cast::<*const u8>().add(HINT_WORD), hint);
        }
        Self {
            call: call_inline::<F>,
            data,
        }
    }

    /// The hint of a [`Deferred::hinted`] function.
    ///
    /// # Safety
    /// 1. `d` points to a live `Deferred` made by [`Deferred::hinted`].
    #[inline]
    unsafe fn hint(d: *const Self) -> *const u8 {
        // SAFETY: precondition 1: `hinted` wrote a pointer in the third
        // word of `data`.
        unsafe {
            ptr::addr_of!((*d).data)
                .cast::<*const u8>()
                .add(HINT_WORD)
                .read()
        }
    }

    /// Runs the function, consuming it.
    pub(crate) fn call(mut self) {
        // SAFETY: `data` was initialized by `new` or `hinted` with the
        // closure `call` expects, and `self` is consumed, so this is the only call.
        unsafe { (self.call)(self.data.as_mut_ptr()) }
    }
}

/// Deferred functions per bag. 30 keeps a sealed bag (30 × 32 + 40 bytes:
/// the array, its length, its `hinted` bits, the seal epoch, the list link
/// and the `heavy` flag, 1 000 bytes) within glibc's small-bin requests (at most 1000 bytes, a chunk
/// under 1024). A larger request is a "large" one, and glibc's `malloc`
/// runs `malloc_consolidate` over every fast-bin chunk (the map's 32-byte
/// entries, freed by other threads) whenever its thread cache has none of
/// that size, which is the usual case when one thread seals bags and
/// another frees them: with 31 (a 1024-byte node) `perf` put 4–5 % of a
/// four-thread B-tree insert mix in `malloc_consolidate` (docs/epoch.md,
/// "Bags"; 64 had made it the top cost of `collect`). The test
/// `a_sealed_bag_is_a_small_bin_request` holds the size. Small under loom
/// and Miri so that sealing, advancing and collecting run in small models.
#[cfg(not(any(loom, miri)))]
pub(crate) const BAG_CAP: usize = 30;
#[cfg(miri)]
pub(crate) const BAG_CAP: usize = 4;
#[cfg(all(loom, not(miri)))]
pub(crate) const BAG_CAP: usize = 2;

/// A thread's bag of deferred functions.
pub(crate) struct Bag {
    items: [MaybeUninit<Deferred>; BAG_CAP],
    len: usize,
    /// Bit `i` set: item `i` came from [`Deferred::hinted`].
    hinted: u32,
}

const _: () = assert!(BAG_CAP <= 32, "`Bag::hinted` has a bit per item");

impl Bag {
    pub(crate) fn new() -> Self {
        Self {
            items: [const { MaybeUninit::uninit() }; BAG_CAP],
            len: 0,
            hinted: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `d`, or gives it back when the bag is full.
    pub(crate) fn try_push(&mut self, d: Deferred) -> Result<(), Deferred> {
        if self.len == BAG_CAP {
            return Err(d);
        }
        self.items[self.len].write(d);
        self.len += 1;
        Ok(())
    }

    /// Adds `d` as [`try_push`](Self::try_push) does; `hinted` says that
    /// `d` came from [`Deferred::hinted`] (otherwise its hint is not read).
    ///
    /// # Safety
    /// 1. If `hinted`, `d` came from [`Deferred::hinted`] (the bag reads
    ///    its third word as a pointer, which other functions may leave
    ///    uninitialized).
    pub(crate) unsafe fn try_push_hinted(
        &mut self,
        d: Deferred,
        hinted: bool,
    ) -> Result<(), Deferred> {
        let i = self.len;
        self.try_push(d)?;
        self.hinted |= u32::from(hinted) << i;
        Ok(())
    }

    /// Starts loading the hints of the hinted items, all at once.
    fn prefetch_hints(&mut self) {
        let mut m = core::mem::take(&mut self.hinted);
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            debug_assert!(i < self.len);
            // SAFETY: item `i` was pushed by `try_push_hinted` with its bit
            // set, so it is initialized (`i < len`: items are only taken
            // by `run_all`, after this) and came from `Deferred::hinted`
            // (that function's precondition 1).
            let hint = unsafe { Deferred::hint(self.items[i].as_ptr()) };
            crate::utils::prefetch(hint);
        }
    }

    /// Runs every function in the bag. If one panics, the rest still run
    /// (a drop guard continues the loop while unwinding) and the panic then
    /// propagates; a second panic during that unwinding aborts, as for any
    /// panic in a destructor.
    pub(crate) fn run_all(&mut self) {
        /// On unwind, runs what is left of the bag.
        struct Rest(*mut Bag);
        impl Drop for Rest {
            fn drop(&mut self) {
                // SAFETY: `run_all` created this from its `&mut self`, which
                // it does not use while the guard is armed, and the bag
                // outlives the guard.
                unsafe { (*self.0).run_all() }
            }
        }
        self.prefetch_hints();
        while self.len > 0 {
            self.len -= 1;
            // SAFETY: items `0..len` are initialized; `len` shrank before
            // the read, so item `len` is read exactly once.
            let d = unsafe { self.items[self.len].assume_init_read() };
            let rest = Rest(self);
            d.call();
            core::mem::forget(rest);
        }
    }
}

impl Drop for Bag {
    fn drop(&mut self) {
        // A bag is only dropped once it is safe to run what it holds (the
        // collector is gone or the bag expired), so dropping runs them.
        self.run_all();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn hinted_functions_keep_their_hint_and_run_once_with_the_rest() {
        let hits = Rc::new(Cell::new(0usize));
        let target = [0u8; 64];
        let mut bag = Bag::new();
        for i in 0..BAG_CAP {
            let h = Rc::clone(&hits);
            let hint = target.as_ptr().wrapping_add(i % 64);
            // Two words of captures: the most a hinted function may hold.
            let d = if i % 2 == 0 {
                Deferred::hinted(move || h.set(h.get() + 1 + i), hint)
            } else {
                Deferred::new(move || h.set(h.get() + 1 + i))
            };
            if i % 2 == 0 {
                // SAFETY: `d` came from `Deferred::hinted`.
                assert_eq!(unsafe { Deferred::hint(&d) }, hint);
            }
            // SAFETY: `hinted` exactly for the `Deferred::hinted` ones.
            assert!(unsafe { bag.try_push_hinted(d, i % 2 == 0) }.is_ok());
        }
        assert_eq!(bag.hinted.count_ones() as usize, BAG_CAP.div_ceil(2));
        bag.run_all();
        assert_eq!(hits.get(), (1..=BAG_CAP).sum::<usize>());
        assert_eq!(bag.hinted, 0, "hints are consumed with the items");
        assert_eq!(Rc::strong_count(&hits), 1, "every closure was consumed");
        drop(bag);
        assert_eq!(
            hits.get(),
            (1..=BAG_CAP).sum::<usize>(),
            "nothing ran twice"
        );
    }

    #[test]
    fn inline_and_boxed_closures_run_once() {
        let hits = Rc::new(Cell::new(0));
        let h = Rc::clone(&hits);
        let small = Deferred::new(move || h.set(h.get() + 1));
        let h = Rc::clone(&hits);
        let big = [7u64; 8];
        let large = Deferred::new(move || h.set(h.get() + big.iter().sum::<u64>() as usize));
        small.call();
        large.call();
        assert_eq!(hits.get(), 57);
        assert_eq!(
            Rc::strong_count(&hits),
            1,
            "closures were dropped after running"
        );
    }

    #[test]
    fn bag_runs_everything_even_when_one_panics() {
        let hits = Rc::new(Cell::new(0));
        let mut bag = Bag::new();
        for i in 0..BAG_CAP {
            let h = Rc::clone(&hits);
            let d = Deferred::new(move || {
                h.set(h.get() + 1);
                if i == 1 {
                    panic!("deferred panic");
                }
            });
            assert!(bag.try_push(d).is_ok());
        }
        assert!(bag.try_push(Deferred::new(|| ())).is_err(), "bag is full");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bag.run_all()));
        assert!(r.is_err());
        assert_eq!(hits.get(), BAG_CAP);
        assert!(bag.is_empty());
        assert_eq!(Rc::strong_count(&hits), 1);
    }
}
