//! Stack workloads.
//!
//! - `stack/push-pop-pairs`: every thread pushes a value and pops one, in a
//!   loop, on one shared stack. Contenders: waitless (elimination on, off,
//!   and without statistics counters, to measure their cost),
//!   `Mutex<Vec<u64>>`, `sdd::Stack` (scc's stack, which scc 3 moved to its
//!   epoch crate `sdd`), and a plain Treiber stack on `crossbeam-epoch`.

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use crossbeam_epoch as cbe;
use waitless::stack::{LockFreeStack, StackConfig};

use super::{Contender, Entry, Role, Workload, NOISY_MIN_WINDOW};
use crate::measure::{run_workload, RunConfig, RunResult};

// Flipped between runs at 1–2 threads with short windows: see NOISY_MIN_WINDOW.
const PAIRS: Workload =
    Workload::new("stack", "stack/push-pop-pairs", "push+pop pairs").min_window(NOISY_MIN_WINDOW);

/// A stack of `u64` as the workloads drive it.
pub trait BenchStack: Contender + Sync + Sized {
    /// An empty stack.
    fn build() -> Self;
    /// Pushes `v`, then pops one value (any thread's).
    fn push_pop(&self, v: u64) -> Option<u64>;
}

/// The waitless stack with a fixed configuration.
pub struct Waitless<const ELIMINATION: bool, const STATISTICS: bool>(LockFreeStack<u64>);

impl<const E: bool, const S: bool> BenchStack for Waitless<E, S>
where
    Self: Contender,
{
    fn build() -> Self {
        Self(LockFreeStack::with_config(StackConfig {
            elimination: E,
            statistics: S,
        }))
    }
    fn push_pop(&self, v: u64) -> Option<u64> {
        // `push` needs no pin; pinning only for the pop keeps the thread
        // unpinned about half of the time, so a thread preempted between
        // operations does not hold the epoch (and the node cache's reuse)
        // back (docs/stack.md §6.3).
        let _ = self.0.push(v);
        self.0.pop(&self.0.enter())
    }
}

impl Contender for Waitless<true, true> {
    const NAME: &'static str = "waitless";
    const ROLE: Role = Role::Waitless;
}

impl Contender for Waitless<false, true> {
    const NAME: &'static str = "waitless (no elimination)";
    const ROLE: Role = Role::Waitless;
}

impl Contender for Waitless<true, false> {
    const NAME: &'static str = "waitless (no stats)";
    const ROLE: Role = Role::Waitless;
}

/// `Mutex<Vec<u64>>`, locked once for the push and once for the pop.
pub struct MutexVec(Mutex<Vec<u64>>);

impl Contender for MutexVec {
    const NAME: &'static str = "Mutex<Vec>";
    const ROLE: Role = Role::MutexBaseline;
}

impl BenchStack for MutexVec {
    fn build() -> Self {
        Self(Mutex::new(Vec::new()))
    }
    fn push_pop(&self, v: u64) -> Option<u64> {
        self.0.lock().unwrap().push(v);
        self.0.lock().unwrap().pop()
    }
}

impl Contender for sdd::Stack<u64> {
    const NAME: &'static str = "sdd::Stack (scc)";
    const ROLE: Role = Role::Peer;
}

impl BenchStack for sdd::Stack<u64> {
    fn build() -> Self {
        sdd::Stack::new()
    }
    fn push_pop(&self, v: u64) -> Option<u64> {
        self.push(v);
        self.pop().map(|e| **e)
    }
}

impl Contender for CbTreiber {
    const NAME: &'static str = "Treiber on crossbeam-epoch";
    const ROLE: Role = Role::Peer;
}

impl BenchStack for CbTreiber {
    fn build() -> Self {
        CbTreiber {
            head: cbe::Atomic::null(),
        }
    }
    fn push_pop(&self, v: u64) -> Option<u64> {
        self.push(v);
        self.pop()
    }
}

/// A plain Treiber stack on crossbeam-epoch: no elimination, no counters.
pub struct CbTreiber {
    head: cbe::Atomic<CbNode>,
}

struct CbNode {
    value: std::mem::ManuallyDrop<u64>,
    next: cbe::Atomic<CbNode>,
}

impl CbTreiber {
    fn push(&self, value: u64) {
        let mut n = cbe::Owned::new(CbNode {
            value: std::mem::ManuallyDrop::new(value),
            next: cbe::Atomic::null(),
        });
        let g = cbe::pin();
        loop {
            let head = self.head.load(Ordering::Relaxed, &g);
            n.next.store(head, Ordering::Relaxed);
            match self
                .head
                .compare_exchange(head, n, Ordering::Release, Ordering::Relaxed, &g)
            {
                Ok(_) => return,
                Err(e) => n = e.new,
            }
        }
    }

    fn pop(&self) -> Option<u64> {
        let g = cbe::pin();
        loop {
            let head = self.head.load(Ordering::Acquire, &g);
            // SAFETY: pinned; nodes are retired with `defer_destroy`.
            let h = unsafe { head.as_ref() }?;
            let next = h.next.load(Ordering::Relaxed, &g);
            if self
                .head
                .compare_exchange(head, next, Ordering::Relaxed, Ordering::Relaxed, &g)
                .is_ok()
            {
                let v = *h.value;
                // SAFETY: unlinked by the CAS above; `u64` needs no drop.
                unsafe { g.defer_destroy(head) };
                return Some(v);
            }
        }
    }
}

impl Drop for CbTreiber {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

fn pairs<S: BenchStack>(cfg: &RunConfig, threads: usize) -> RunResult {
    let s = S::build();
    run_workload(
        cfg,
        threads,
        |t| t as u64,
        |v| {
            let got = s.push_pop(*v);
            *v = v.wrapping_add(got.unwrap_or(1));
            1
        },
    )
}

/// Every stack workload entry.
pub fn entries() -> Vec<Entry> {
    table!(
        PAIRS,
        pairs,
        [
            MutexVec,
            Waitless<true, true>,
            Waitless<false, true>,
            Waitless<true, false>,
            sdd::Stack<u64>,
            CbTreiber,
        ]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script<S: BenchStack>() -> Vec<Option<u64>> {
        let s = S::build();
        (1..=5).map(|v| s.push_pop(v)).collect()
    }

    #[test]
    fn contenders_agree_on_a_sequential_script() {
        let want = script::<MutexVec>();
        assert_eq!(want, (1..=5).map(Some).collect::<Vec<_>>());
        assert_eq!(script::<Waitless<true, true>>(), want);
        assert_eq!(script::<Waitless<false, true>>(), want);
        assert_eq!(script::<Waitless<true, false>>(), want);
        assert_eq!(script::<sdd::Stack<u64>>(), want);
        assert_eq!(script::<CbTreiber>(), want);
    }
}
