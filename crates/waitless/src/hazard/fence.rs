//! Asymmetric fences: a nearly free fence for readers, a heavy one for the
//! reclaimer.
//!
//! The hazard-pointer handshake is a store-buffering (Dekker) pattern:
//!
//! ```text
//! reader                          reclaimer
//! slot.store(p)                   src.store(q)     (unlink p; done by the caller)
//! ---- fence A ----               ---- fence B ----
//! src.load() == p ?               slot.load() == p ?
//! ```
//!
//! At least one side must see the other's store, or the reclaimer frees `p`
//! while the reader goes on to use it. With two `SeqCst` fences the C++/Rust
//! memory model guarantees that (fences are totally ordered, and the second
//! fence's load sees the store before the first fence). That puts a full
//! fence (`mfence`/`lock`-prefixed op on x86, `dmb ish` on ARM) on every
//! protect, the hot path.
//!
//! The asymmetric scheme (Dice et al., "Asymmetric Dekker Synchronization";
//! folly's `asymmetric_thread_fence_light/heavy`) moves the cost to the rare
//! side: the reader only stops the *compiler* from reordering its store and
//! load, and the reclaimer calls `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`,
//! which makes the kernel interrupt every CPU currently running a thread of
//! this process and execute a full memory barrier there before the syscall
//! returns. A reader that was between its store and its load when the
//! membarrier ran has therefore had its store made globally visible, or had
//! not yet executed its load, which will then see the unlink. This reasoning
//! lives outside the language memory model (it is a contract with the kernel),
//! which is why Miri and loom always use the symmetric path.
//!
//! The same pair serves the epoch collector (`crate::epoch`): a pin is the
//! reader's publication (`light`), and an epoch advance or a scan of the
//! pin words is the reclaimer's side (`heavy`). There is one implementation
//! of the barrier and one registration for both.
//!
//! Registration (`MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`) is attempted once
//! per process. Where it fails (old kernel, seccomp filter, non-Linux) every
//! domain uses the symmetric path. The choice is made per [`Domain`] at
//! construction and never changes afterwards, so readers and the reclaimer
//! of one domain always agree on it.
//!
//! [`Domain`]: super::Domain

use crate::sync::atomic::{compiler_fence, fence, Ordering};

/// How a [`Domain`](super::Domain) makes hazard publications visible to its
/// reclaimer.
///
/// ```
/// use waitless::hazard::{Domain, FenceStrategy};
///
/// // Symmetric is always honoured; Asymmetric falls back where membarrier
/// // is unavailable, and `strategy()` reports what is in effect.
/// assert_eq!(Domain::with_strategy(FenceStrategy::Symmetric).strategy(), FenceStrategy::Symmetric);
/// let s = Domain::with_strategy(FenceStrategy::Asymmetric).strategy();
/// assert!(s == FenceStrategy::Asymmetric || s == FenceStrategy::Symmetric);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FenceStrategy {
    /// Readers issue a compiler fence only; the reclaimer issues
    /// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`. Linux only; requested
    /// elsewhere (or under Miri/loom, or where registration fails) it
    /// silently becomes [`Symmetric`](FenceStrategy::Symmetric).
    Asymmetric,
    /// Both readers and the reclaimer issue a full `SeqCst` fence. Portable
    /// and within the language memory model.
    Symmetric,
}

// Linux `membarrier(2)` commands (include/uapi/linux/membarrier.h).
#[cfg(all(
    target_os = "linux",
    not(miri),
    not(loom),
    not(waitless_sanitize_thread)
))]
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
#[cfg(all(
    target_os = "linux",
    not(miri),
    not(loom),
    not(waitless_sanitize_thread)
))]
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

/// Whether this process can use the asymmetric path. Registers once.
///
/// Always `false` under Miri and loom (they cannot model a process-wide
/// barrier) and under `cfg(waitless_sanitize_thread)`: ThreadSanitizer does
/// not model fences either, and the symmetric path is the one whose
/// happens-before edges it can follow (with the access-based variants that
/// `epoch` switches to under that cfg).
pub(crate) fn asymmetric_available() -> bool {
    #[cfg(all(
        target_os = "linux",
        not(miri),
        not(loom),
        not(waitless_sanitize_thread)
    ))]
    {
        static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *REGISTERED.get_or_init(|| {
            // SAFETY: `membarrier` takes (cmd, flags, cpu_id) integers and
            // touches no memory of ours; an unsupported command returns -1.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                    0 as libc::c_long,
                    0 as libc::c_long,
                )
            };
            rc == 0
        })
    }
    #[cfg(not(all(
        target_os = "linux",
        not(miri),
        not(loom),
        not(waitless_sanitize_thread)
    )))]
    {
        false
    }
}

/// The reader's side of the handshake, between publishing a hazard (or a
/// pin) and the loads it protects.
#[inline(always)]
pub(crate) fn light(asymmetric: bool) {
    if asymmetric {
        // SeqCst: only stops the compiler from moving the publishing store
        // below the loads that follow; the CPU-level ordering comes from the
        // other side's membarrier (see the module docs).
        compiler_fence(Ordering::SeqCst);
    } else {
        // SeqCst: pairs with the SeqCst fence in `heavy`; the single total
        // order of SeqCst fences is what makes the store-buffering handshake
        // work (one side sees the other's store).
        fence(Ordering::SeqCst);
    }
}

/// The reclaimer's side of the handshake, after unlinking (the caller's
/// retire) and before reading the hazard slots or pin words.
///
/// Returns `false` when the asymmetric barrier failed: the caller must then
/// free nothing on the strength of what it reads next (a reader's
/// publication may still be invisible to it). The failure is counted
/// ([`membarrier_failures`]). Registration succeeded before any caller
/// could choose the asymmetric path and the kernel documents no later
/// failure, so this is a defence against the unforeseen (e.g. a seccomp
/// filter installed after start-up), not an expected path.
#[must_use = "on false, nothing may be freed"]
pub(crate) fn heavy(asymmetric: bool) -> bool {
    // SeqCst: in the symmetric mode this pairs with the readers' SeqCst fence
    // in `light` (total order of SeqCst fences). In the asymmetric mode it
    // orders everything this thread did before (its unlinks, its load of
    // the global epoch) before the barrier the kernel runs on the other
    // CPUs.
    fence(Ordering::SeqCst);
    if asymmetric {
        if !membarrier() {
            MEMBARRIER_FAILURES.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // SeqCst: orders the barrier the kernel ran on the other CPUs
        // before this thread's following loads (the slot / pin-word reads).
        fence(Ordering::SeqCst);
    }
    true
}

/// How many times `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` failed
/// after a successful registration in this process (each failure skipped
/// one round of freeing, which is always safe).
static MEMBARRIER_FAILURES: crate::sync::StatCounter = crate::sync::StatCounter::new(0);

/// Process-wide count of failed heavy barriers (each skipped one round of
/// freeing or one epoch advance).
///
/// ```
/// use waitless::hazard::{membarrier_failures, Domain};
///
/// let before = membarrier_failures();
/// let domain = Domain::new();
/// domain.reclaim();
/// // A working membarrier (or none, in the symmetric mode) adds nothing.
/// assert_eq!(membarrier_failures(), before);
/// ```
#[must_use]
pub fn membarrier_failures() -> usize {
    // Relaxed: a statistic.
    MEMBARRIER_FAILURES.load(Ordering::Relaxed)
}

#[cfg(all(test, not(loom)))]
std::thread_local! {
    /// Test hook: the next `n` membarrier calls *of this thread* report
    /// failure (thread-local, so concurrently running tests are unaffected).
    pub(crate) static INJECT_FAILURES: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

#[cfg(all(
    target_os = "linux",
    not(miri),
    not(loom),
    not(waitless_sanitize_thread)
))]
fn membarrier() -> bool {
    #[cfg(test)]
    if INJECT_FAILURES.with(|n| n.replace(n.get().saturating_sub(1)) > 0) {
        return false;
    }
    // SAFETY: as in `asymmetric_available`: integer arguments, no memory
    // passed. The process registered for the command before any domain or
    // collector could choose the asymmetric strategy.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_PRIVATE_EXPEDITED,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    rc == 0
}

#[cfg(not(all(
    target_os = "linux",
    not(miri),
    not(loom),
    not(waitless_sanitize_thread)
)))]
fn membarrier() -> bool {
    unreachable!("the asymmetric strategy is never chosen without membarrier")
}
