//! Workloads: every structure's benchmark, with its mutex baseline and its
//! crates.io peers, as entries the analyzer and the CLI can run.
//!
//! Each structure module exposes `pub fn entries() -> Vec<Entry>`; [`all`]
//! collects them. An entry is one contender on one workload; entries that
//! share a `workload` name are compared with one another.

use serde::{Deserialize, Serialize};

use crate::measure::{RunConfig, RunResult};

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

/// One contender on one workload.
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

// One module per structure; keep one blank line between them so parallel
// work merges cleanly.

// --- stack (issue 3)
pub mod stack;

// --- map (issue 4)
pub mod map;

// --- queue (issue 5)
pub mod queue;

// --- channel (issue 6)
pub mod channel;

// --- rcu (issue 8)
pub mod rcu;

// --- counter (issue 7: bench demonstration group)
pub mod counter;

/// Every workload entry of every structure.
pub fn all() -> Vec<Entry> {
    #[allow(unused_mut)]
    let mut v: Vec<Entry> = Vec::new();
    // --- entries: stack
    v.extend(stack::entries());

    // --- entries: map
    v.extend(map::entries());

    // --- entries: queue
    v.extend(queue::entries());

    // --- entries: channel
    v.extend(channel::entries());

    // --- entries: rcu
    v.extend(rcu::entries());

    // --- entries: counter
    v.extend(counter::entries());

    v
}
