//! Workloads: every structure's benchmark, with its mutex baseline and its
//! crates.io peers, as entries the analyzer and the CLI can run.
//!
//! # One pattern for every structure
//!
//! A structure module (one file per group) has:
//!
//! 1. a **contender trait** (e.g. `BenchQueue: Contender`) with the
//!    operations its workloads drive, implemented once per contender (the
//!    waitless structure, its lock baseline, its peers). [`Contender`] gives
//!    each implementation its display name and [`Role`];
//! 2. one [`Workload`] constant per workload (name, unit, thread counts);
//! 3. generic run functions, `fn pairs<Q: BenchQueue>(cfg: &RunConfig,
//!    threads: usize) -> RunResult`, built on
//!    [`run_workload`](crate::measure::run_workload);
//! 4. `pub fn entries() -> Vec<Entry>`: the table of implementations, one
//!    `table!` per workload:
//!    `table!(PAIRS, pairs, [WaitFreeQueue<u64>, MutexQueue, ArrayQueue<u64>])`.
//!
//! Adding a group is one new file `workloads/<group>.rs` with that shape
//! plus one line in [`all`] (and its `pub mod` line); entries that share a
//! workload name are compared with one another.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::measure::{RunConfig, RunResult};

/// The minimum window noisy workloads ask for ([`Workload::min_window`]):
/// oversubscribed runs and two threads handing cache lines back and forth.
/// On the 2-core VM, 150 ms windows of a 240 s full run flipped their
/// medians between runs and 630 ms windows steadied them
/// (docs/results/2-core-wave6/README.md).
pub const NOISY_MIN_WINDOW: Duration = Duration::from_millis(400);

/// Who a contender is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A waitless structure (or a variant of one, e.g. without elimination).
    Waitless,
    /// The lock-based baseline (`Mutex<…>` / `RwLock<…>`).
    MutexBaseline,
    /// A crates.io peer.
    Peer,
}

/// An implementation measured by a group's workloads: the supertrait of
/// every group's contender trait.
pub trait Contender: 'static {
    /// Name in tables and plots, e.g. `"crossbeam ArrayQueue"`.
    const NAME: &'static str;
    /// Who it is.
    const ROLE: Role;
}

/// A workload of one group: what is measured, independent of contender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Structure group, e.g. `"queue"`; the CLI's `--group`.
    pub group: &'static str,
    /// Workload name, `"<group>/<what>"`, e.g. `"queue/pairs"`.
    pub name: &'static str,
    /// What one counted operation is, e.g. `"enqueue+dequeue pairs"`.
    pub unit: &'static str,
    /// Thread counts this workload is meaningful at (`None`: any).
    pub fixed_threads: Option<&'static [usize]>,
    /// Shortest measurement window of a budgeted run (`None`: the planned
    /// window). For noisy workloads (oversubscribed, two threads handing
    /// cache lines back and forth) whose medians swing with short windows;
    /// every contender of the workload gets the same window, and the
    /// planner takes the extra time out of the other workloads' windows
    /// ([`crate::report::run_min_windows`]).
    pub min_window: Option<Duration>,
}

impl Workload {
    /// A workload measured at any thread count.
    pub const fn new(group: &'static str, name: &'static str, unit: &'static str) -> Self {
        Self {
            group,
            name,
            unit,
            fixed_threads: None,
            min_window: None,
        }
    }

    /// The same workload, measured over at least `window` per run when the
    /// run has a budget (see the `min_window` field).
    pub const fn min_window(self, window: Duration) -> Self {
        Self {
            min_window: Some(window),
            ..self
        }
    }

    /// The same workload, measured only at `threads`.
    pub const fn at(self, threads: &'static [usize]) -> Self {
        Self {
            fixed_threads: Some(threads),
            ..self
        }
    }

    /// Contender `C` on this workload, measured by `run` (normally the
    /// workload's generic run function instantiated for `C`).
    pub fn entry<C: Contender>(&self, run: fn(&RunConfig, usize) -> RunResult) -> Entry {
        Entry {
            group: self.group,
            workload: self.name,
            unit: self.unit,
            contender: C::NAME,
            role: C::ROLE,
            fixed_threads: self.fixed_threads,
            min_window: self.min_window,
            run,
        }
    }
}

/// One row of a group's table of implementations per contender:
/// `table!(WORKLOAD, run_fn, [A, B, C])` is
/// `vec![WORKLOAD.entry::<A>(run_fn::<A>), …]`.
macro_rules! table {
    ($workload:expr, $run:ident, [$($c:ty),+ $(,)?]) => {
        vec![$($workload.entry::<$c>($run::<$c>)),+]
    };
}

/// One contender on one workload.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Structure group, e.g. `"stack"`, `"queue"`, `"map"`, `"channel"`, `"rcu"`.
    pub group: &'static str,
    /// Workload name, e.g. `"stack/push-pop-pairs"`.
    pub workload: &'static str,
    /// What one counted operation is, e.g. `"push+pop pairs"`.
    pub unit: &'static str,
    /// Contender name, e.g. `"waitless"`, `"Mutex<Vec>"`, `"crossbeam SegQueue"`.
    pub contender: &'static str,
    /// Who the contender is.
    pub role: Role,
    /// Thread counts this workload is meaningful at (`None`: any).
    pub fixed_threads: Option<&'static [usize]>,
    /// Shortest window of a budgeted run, the workload's (`None`: the planned one).
    pub min_window: Option<Duration>,
    /// Builds a fresh instance and measures it at the given thread count.
    pub run: fn(&RunConfig, usize) -> RunResult,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("workload", &self.workload)
            .field("contender", &self.contender)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

// One module per group; keep one blank line between them so parallel work
// merges cleanly.

pub mod stack;

pub mod epoch;

pub mod hazard;

pub mod map;

pub mod queue;

pub mod channel;

pub mod rcu;

pub mod counter;

pub mod btree;

// --- numa (issue 17)
pub mod numa;

/// Every workload entry of every group, in report order.
pub fn all() -> Vec<Entry> {
    [
        stack::entries(),
        epoch::entries(),
        hazard::entries(),
        map::entries(),
        queue::entries(),
        channel::entries(),
        rcu::entries(),
        counter::entries(),
        btree::entries(),
        numa::entries(),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_start_with_their_group_and_contenders_are_unique() {
        let all = all();
        for e in &all {
            assert!(
                e.workload.starts_with(&format!("{}/", e.group)),
                "{} is not in group {}",
                e.workload,
                e.group
            );
            let same = all
                .iter()
                .filter(|o| o.workload == e.workload && o.contender == e.contender)
                .count();
            assert_eq!(same, 1, "{} / {} listed twice", e.workload, e.contender);
        }
    }
}
