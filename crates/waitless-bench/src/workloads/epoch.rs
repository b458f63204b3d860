//! Epoch-based reclamation workloads.
//!
//! - `epoch/pin-unpin`: the cost of pinning and unpinning.
//! - `epoch/pin-load`: pin, load and dereference a shared pointer, unpin —
//!   what an RCU-style read costs.
//!
//! Contenders: a waitless per-instance `Collector`, the waitless default
//! collector (`waitless::epoch::pin`) and `crossbeam_epoch::pin()`.

use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, Ordering};

use crossbeam_epoch as cbe;
use waitless::epoch::Collector;

use super::{Contender, Entry, Role, Workload};
use crate::measure::{run_workload, RunConfig, RunResult};

const PIN_UNPIN: Workload = Workload::new("epoch", "epoch/pin-unpin", "pin+unpin");
const PIN_LOAD: Workload = Workload::new("epoch", "epoch/pin-load", "pin+load+unpin");

/// An epoch scheme, holding one shared, never-retired `u64`.
pub trait BenchEpoch: Contender + Sync + Sized {
    /// A fresh instance (its shared value is 42).
    fn build() -> Self;
    /// Pins and unpins.
    fn pin_unpin(&self);
    /// Pins, loads the shared pointer, reads through it, unpins.
    fn pin_load(&self) -> u64;
}

/// The shared value of the waitless contenders: freed on drop.
struct Shared(AtomicPtr<u64>);

impl Shared {
    fn new() -> Self {
        Self(AtomicPtr::new(Box::into_raw(Box::new(42u64))))
    }
    fn read(&self) -> u64 {
        // Acquire: pairs with nothing (the pointer is set before the run's
        // threads start); it is what a reader of a published pointer uses.
        let p = self.0.load(Ordering::Acquire);
        // SAFETY: `p` came from `Box::into_raw` and is freed only on drop.
        unsafe { *p }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: created by `Box::into_raw` in `new`; nothing else frees it.
        drop(unsafe { Box::from_raw(*self.0.get_mut()) });
    }
}

/// A waitless per-instance `Collector`.
pub struct WaitlessCollector(Collector, Shared);

impl Contender for WaitlessCollector {
    const NAME: &'static str = "waitless Collector::pin";
    const ROLE: Role = Role::Waitless;
}

impl BenchEpoch for WaitlessCollector {
    fn build() -> Self {
        Self(Collector::new(), Shared::new())
    }
    fn pin_unpin(&self) {
        black_box(&self.0.pin());
    }
    fn pin_load(&self) -> u64 {
        let _g = self.0.pin();
        self.1.read()
    }
}

/// The waitless default collector.
pub struct WaitlessDefault(Shared);

impl Contender for WaitlessDefault {
    const NAME: &'static str = "waitless epoch::pin (default)";
    const ROLE: Role = Role::Waitless;
}

impl BenchEpoch for WaitlessDefault {
    fn build() -> Self {
        Self(Shared::new())
    }
    fn pin_unpin(&self) {
        black_box(&waitless::epoch::pin());
    }
    fn pin_load(&self) -> u64 {
        let _g = waitless::epoch::pin();
        self.0.read()
    }
}

/// `crossbeam_epoch::pin()` with a `crossbeam_epoch::Atomic`.
pub struct Crossbeam(cbe::Atomic<u64>);

impl Contender for Crossbeam {
    const NAME: &'static str = "crossbeam_epoch::pin";
    const ROLE: Role = Role::Peer;
}

impl BenchEpoch for Crossbeam {
    fn build() -> Self {
        Self(cbe::Atomic::new(42))
    }
    fn pin_unpin(&self) {
        black_box(&cbe::pin());
    }
    fn pin_load(&self) -> u64 {
        let g = cbe::pin();
        let p = self.0.load(Ordering::Acquire, &g);
        // SAFETY: pinned; the value is never retired while `self` lives.
        unsafe { *p.deref() }
    }
}

impl Drop for Crossbeam {
    fn drop(&mut self) {
        let a = std::mem::replace(&mut self.0, cbe::Atomic::null());
        // SAFETY: `&mut self`: no thread can hold a reference into it.
        drop(unsafe { a.into_owned() });
    }
}

fn pin_unpin<E: BenchEpoch>(cfg: &RunConfig, threads: usize) -> RunResult {
    let e = E::build();
    run_workload(
        cfg,
        threads,
        |_| (),
        |_| {
            e.pin_unpin();
            1
        },
    )
}

fn pin_load<E: BenchEpoch>(cfg: &RunConfig, threads: usize) -> RunResult {
    let e = E::build();
    run_workload(
        cfg,
        threads,
        |_| 0u64,
        |acc| {
            *acc = acc.wrapping_add(e.pin_load());
            black_box(*acc);
            1
        },
    )
}

/// Every epoch workload entry.
pub fn entries() -> Vec<Entry> {
    [
        table!(
            PIN_UNPIN,
            pin_unpin,
            [Crossbeam, WaitlessCollector, WaitlessDefault]
        ),
        table!(
            PIN_LOAD,
            pin_load,
            [Crossbeam, WaitlessCollector, WaitlessDefault]
        ),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads<E: BenchEpoch>() -> u64 {
        let e = E::build();
        e.pin_unpin();
        e.pin_load()
    }

    #[test]
    fn every_scheme_reads_the_shared_value() {
        assert_eq!(reads::<WaitlessCollector>(), 42);
        assert_eq!(reads::<WaitlessDefault>(), 42);
        assert_eq!(reads::<Crossbeam>(), 42);
    }
}
