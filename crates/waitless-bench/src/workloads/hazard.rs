//! Hazard-pointer workloads.
//!
//! - `hazard/protect`: protect one shared pointer and read through it, with
//!   the hazard pointer held across operations (the usual way to amortize
//!   acquiring it). Contenders: waitless with asymmetric and with symmetric
//!   fences, `haphazard`, and a crossbeam-epoch pin + load for scale.

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, Ordering};

use waitless::hazard::{Domain, FenceStrategy, HazardPointer};

use super::{Contender, Entry, Role, Workload};
use crate::measure::{run_workload, RunConfig, RunResult};

const PROTECT: Workload = Workload::new("hazard", "hazard/protect", "protects");

type Payload = [u64; 2];

/// A protection scheme around one shared, never-retired payload.
pub trait BenchProtect: Contender + Sync + Sized {
    /// A thread's protection state (e.g. its hazard pointer).
    type Local<'a>
    where
        Self: 'a;
    /// A fresh instance; its payload is `[1, 2]`.
    fn build() -> Self;
    /// The per-thread state, made before the start barrier.
    fn local(&self) -> Self::Local<'_>;
    /// Protects the payload and reads its first word.
    fn protect_read(&self, local: &mut Self::Local<'_>) -> u64;
}

/// The shared payload of the raw-pointer contenders, freed on drop.
struct Shared(AtomicPtr<Payload>);

impl Shared {
    fn new() -> Self {
        Self(AtomicPtr::new(Box::into_raw(Box::new([1, 2]))))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: created by `Box::into_raw` in `new`; the run's threads
        // joined, nothing else frees it.
        drop(unsafe { Box::from_raw(*self.0.get_mut()) });
    }
}

/// waitless hazard pointers in their own domain, with fence strategy `S`
/// (`true`: asymmetric).
pub struct Waitless<const ASYMMETRIC: bool>(Domain, Shared);

impl Contender for Waitless<true> {
    const NAME: &'static str = "waitless (asymmetric)";
    const ROLE: Role = Role::Waitless;
}

impl Contender for Waitless<false> {
    const NAME: &'static str = "waitless (symmetric)";
    const ROLE: Role = Role::Waitless;
}

impl<const A: bool> BenchProtect for Waitless<A>
where
    Self: Contender,
{
    type Local<'a> = HazardPointer<'a>;
    fn build() -> Self {
        let s = if A {
            FenceStrategy::Asymmetric
        } else {
            FenceStrategy::Symmetric
        };
        Self(Domain::with_strategy(s), Shared::new())
    }
    fn local(&self) -> HazardPointer<'_> {
        HazardPointer::new_in(&self.0)
    }
    fn protect_read(&self, hp: &mut HazardPointer<'_>) -> u64 {
        let p = hp.protect(&self.1 .0);
        // SAFETY: protected; never retired during the run.
        unsafe { (*p)[0] }
    }
}

/// `haphazard` with its global domain.
pub struct Haphazard(Shared);

impl Contender for Haphazard {
    const NAME: &'static str = "haphazard";
    const ROLE: Role = Role::Peer;
}

impl BenchProtect for Haphazard {
    type Local<'a> = haphazard::HazardPointer<'static>;
    fn build() -> Self {
        Self(Shared::new())
    }
    fn local(&self) -> Self::Local<'_> {
        haphazard::HazardPointer::new()
    }
    fn protect_read(&self, hp: &mut Self::Local<'_>) -> u64 {
        let p = hp.protect_ptr(&self.0 .0).expect("non-null").0;
        // SAFETY: protected; never retired during the run.
        unsafe { p.as_ref()[0] }
    }
}

/// crossbeam-epoch: pin and load, for scale.
pub struct CrossbeamEpoch(crossbeam_epoch::Atomic<Payload>);

impl Contender for CrossbeamEpoch {
    const NAME: &'static str = "crossbeam-epoch pin+load";
    const ROLE: Role = Role::Peer;
}

impl BenchProtect for CrossbeamEpoch {
    type Local<'a> = ();
    fn build() -> Self {
        Self(crossbeam_epoch::Atomic::new([1, 2]))
    }
    fn local(&self) {}
    fn protect_read(&self, _: &mut ()) -> u64 {
        let guard = crossbeam_epoch::pin();
        let p = self.0.load(Ordering::Acquire, &guard);
        // SAFETY: pinned; never retired while `self` lives.
        unsafe { p.deref()[0] }
    }
}

impl Drop for CrossbeamEpoch {
    fn drop(&mut self) {
        let a = std::mem::replace(&mut self.0, crossbeam_epoch::Atomic::null());
        // SAFETY: `&mut self`: no thread holds a reference into it.
        drop(unsafe { a.into_owned() });
    }
}

fn protect<P: BenchProtect>(cfg: &RunConfig, threads: usize) -> RunResult {
    let p = P::build();
    run_workload(
        cfg,
        threads,
        |_| p.local(),
        |local| {
            black_box(p.protect_read(local));
            1
        },
    )
}

/// Every hazard-pointer workload entry.
pub fn entries() -> Vec<Entry> {
    table!(
        PROTECT,
        protect,
        [Waitless<true>, Waitless<false>, Haphazard, CrossbeamEpoch]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<P: BenchProtect>() -> u64 {
        let p = P::build();
        let mut l = p.local();
        p.protect_read(&mut l)
    }

    #[test]
    fn every_scheme_reads_the_payload() {
        assert_eq!(read::<Waitless<true>>(), 1);
        assert_eq!(read::<Waitless<false>>(), 1);
        assert_eq!(read::<Haphazard>(), 1);
        assert_eq!(read::<CrossbeamEpoch>(), 1);
    }
}
