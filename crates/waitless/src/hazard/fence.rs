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
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
#[cfg(all(target_os = "linux", not(miri), not(loom)))]
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

/// Whether this process can use the asymmetric path. Registers once.
pub(crate) fn asymmetric_available() -> bool {
    #[cfg(all(target_os = "linux", not(miri), not(loom)))]
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
    #[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
    {
        false
    }
}

/// The reader's side of the handshake, between publishing a hazard and
/// re-reading the source.
#[inline(always)]
pub(crate) fn light(asymmetric: bool) {
    if asymmetric {
        // SeqCst: only stops the compiler from moving the hazard store below
        // the validating load; the CPU-level ordering comes from the
        // reclaimer's membarrier (see the module docs).
        compiler_fence(Ordering::SeqCst);
    } else {
        // SeqCst: pairs with the SeqCst fence in `heavy`; the single total
        // order of SeqCst fences is what makes the store-buffering handshake
        // work (one side sees the other's store).
        fence(Ordering::SeqCst);
    }
}

/// The reclaimer's side of the handshake, after unlinking (the caller's
/// retire) and before reading the hazard slots.
pub(crate) fn heavy(asymmetric: bool) {
    // SeqCst: in the symmetric mode this pairs with the readers' SeqCst fence
    // in `light` (total order of SeqCst fences). In the asymmetric mode it
    // orders this thread's own unlink before its hazard loads; the remote
    // half comes from membarrier below.
    fence(Ordering::SeqCst);
    if asymmetric {
        membarrier();
    }
}

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
fn membarrier() {
    // SAFETY: as in `asymmetric_available`: integer arguments, no memory
    // passed. The process registered for the command before any domain
    // could choose the asymmetric strategy.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_PRIVATE_EXPEDITED,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    // After a successful registration the kernel documents no failure mode;
    // continuing would free memory readers may still use, so stop instead.
    assert!(
        rc == 0,
        "membarrier(PRIVATE_EXPEDITED) failed after registration; cannot reclaim safely"
    );
}

#[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
fn membarrier() {
    unreachable!("the asymmetric strategy is never chosen without membarrier")
}
