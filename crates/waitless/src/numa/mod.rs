//! NUMA-aware structures: the machine's [`Topology`], node replication
//! ([`NodeReplicated`]), a cohort lock ([`CohortLock`]) as the lock
//! baseline, and a node-aware stack ([`NodeAwareStack`]).
//!
//! On a NUMA machine a cache line that moves between sockets costs several
//! times a move inside one (see `docs/numa.md` for published numbers and
//! this module's cost model). The structures here cut those moves:
//!
//! | structure | idea | cross-node traffic per operation |
//! |---|---|---|
//! | [`CohortLock`] | pass the lock inside a node up to a bound | one global hand-over per cohort turn |
//! | [`NodeReplicated`] | one replica per node, a shared log of writes, flat combining | reads: none; writes: one log append per node batch, replayed once per remote node |
//! | [`NodeAwareStack`] | a Treiber stack whose elimination array is per node | eliminated pairs meet on their node's lines |
//!
//! Every structure finds its node with [`current_node`], which a thread can
//! override ([`set_node_override`]) to run "on" a node of a simulated
//! topology: that is how the tests check 2-, 4- and 8-node behaviour on a
//! one-node machine, and how the simulation counts cross-node events.

mod cohort;
mod replicated;
mod stack;
mod topology;

pub use cohort::{CohortGuard, CohortLock, CohortStats, DEFAULT_COHORT_BOUND};
pub use replicated::{NodeReplicated, NrConfig, NrHandle, NrStats, RegisterError, Sequential};
pub use stack::{NodeAwareStack, NodeStackGuard};
pub use topology::{
    current_node, parse_cpulist, set_node_override, NodeInfo, Topology, TopologyError,
    SYSFS_NODE_DIR,
};

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
