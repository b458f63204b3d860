//! Unit tests of `numa` (small enough for Miri).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

const ITERS: usize = if cfg!(miri) { 20 } else { 2_000 };

#[test]
fn cpulist_parses_ranges_holes_and_rejects_garbage() {
    assert_eq!(
        parse_cpulist("0-3,8-11\n").unwrap(),
        vec![0, 1, 2, 3, 8, 9, 10, 11]
    );
    assert_eq!(parse_cpulist("5,1,3").unwrap(), vec![1, 3, 5]);
    assert_eq!(parse_cpulist("2-2").unwrap(), vec![2]);
    assert_eq!(parse_cpulist(" \n").unwrap(), Vec::<usize>::new());
    for bad in ["a", "1-", "-3", "3-1", "1,,2", "0-99999999999", "1:2"] {
        assert!(parse_cpulist(bad).is_err(), "{bad:?} must be rejected");
    }
}

#[test]
fn node_override_is_per_thread() {
    // No machine has a node this large, so only the override can yield it.
    const FAKE: usize = usize::MAX - 1;
    let prev = set_node_override(Some(FAKE));
    assert_eq!(current_node(), FAKE);
    std::thread::scope(|s| {
        s.spawn(|| assert_ne!(current_node(), FAKE, "another thread has no override"));
    });
    assert_eq!(set_node_override(prev), Some(FAKE));
}

#[test]
fn uniform_topology_shape() {
    let t = Topology::uniform(4, 3);
    assert_eq!(t.num_nodes(), 4);
    assert_eq!(t.num_cpus(), 12);
    assert_eq!(t.node_of_cpu(11), Some(3));
    assert_eq!(t.node_of_cpu(12), None);
    assert_eq!(t.distance(2, 2), Some(10));
    assert_eq!(t.distance(2, 3), Some(20));
    assert_eq!(t.distance(4, 0), None);
}

fn on_node<R>(node: usize, f: impl FnOnce() -> R) -> R {
    let prev = set_node_override(Some(node));
    let r = f();
    set_node_override(prev);
    r
}

#[test]
fn cohort_lock_excludes_and_counts_handovers() {
    let lock = Arc::new(CohortLock::with_bound(2, 4, 0usize));
    let threads = if cfg!(miri) { 2 } else { 4 };
    std::thread::scope(|s| {
        for t in 0..threads {
            let lock = &lock;
            s.spawn(move || {
                on_node(t % 2, || {
                    for _ in 0..ITERS {
                        let mut g = lock.lock();
                        let v = *g;
                        *g = v + 1;
                    }
                })
            });
        }
    });
    let st = lock.stats();
    assert_eq!(*lock.lock(), threads * ITERS);
    assert_eq!(st.acquisitions, (threads * ITERS) as u64);
    // Every critical section either took the global lock or was handed it.
    assert_eq!(st.global_acquisitions + st.local_handovers, st.acquisitions);
    assert!(st.cross_node_handovers <= st.global_acquisitions);
}

#[test]
fn cohort_bound_zero_never_passes_locally() {
    let lock = CohortLock::with_bound(1, 0, ());
    for _ in 0..10 {
        drop(lock.lock());
    }
    let st = lock.stats();
    assert_eq!(st.local_handovers, 0);
    assert_eq!(st.global_acquisitions, 10);
    assert_eq!(st.cross_node_handovers, 0, "one node: nothing crosses");
}

#[test]
fn cohort_cross_node_handover_is_counted_sequentially() {
    let lock = CohortLock::new(2, 0u8);
    on_node(0, || drop(lock.lock()));
    on_node(1, || drop(lock.lock()));
    on_node(1, || drop(lock.lock()));
    on_node(0, || drop(lock.lock()));
    let st = lock.stats();
    assert_eq!(
        st.global_acquisitions, 4,
        "no waiter, so no local hand-over"
    );
    assert_eq!(st.cross_node_handovers, 2);
}

/// A map with a drop ledger in its values.
#[derive(Default)]
struct Kv(HashMap<u64, Tracked>);

struct Tracked(u64, Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::Relaxed);
    }
}

enum W {
    Put(u64, u64, Arc<AtomicUsize>),
    Del(u64),
}

impl Sequential for Kv {
    type ReadOp = u64;
    type WriteOp = W;
    type Response = Option<u64>;
    fn read(&self, k: &u64) -> Option<u64> {
        self.0.get(k).map(|t| t.0)
    }
    fn apply(&mut self, op: &W) -> Option<u64> {
        match op {
            W::Put(k, v, d) => self.0.insert(*k, Tracked(*v, d.clone())).map(|t| t.0),
            W::Del(k) => self.0.remove(k).map(|t| t.0),
        }
    }
}

#[test]
fn nr_sequential_semantics_across_replicas() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cfg = NrConfig {
        replicas: 3,
        log_entries: 4,
        threads_per_replica: 2,
    };
    let nr = NodeReplicated::with_config(cfg, Kv::default);
    let h0 = nr.register_on(0).unwrap();
    let h2 = nr.register_on(2).unwrap();
    let n = if cfg!(miri) { 12 } else { 100 };
    for i in 0..n {
        assert_eq!(h0.write(W::Put(i % 3, i, drops.clone())), i.checked_sub(3));
        assert_eq!(
            h2.read(&(i % 3)),
            Some(i),
            "replica 2 catches up before reading"
        );
    }
    assert_eq!(h2.write(W::Del(0)), Some(n - 1 - (n - 1) % 3));
    assert_eq!(h0.read(&0), None);
    let st = nr.stats();
    assert_eq!(st.appended, n + 1);
    // Replica 1 had no thread: writers helped it when the 4-entry log filled.
    assert!(st.log_full > 0 && st.helped_replays > 0, "{st:?}");
    drop((h0, h2));
    drop(nr);
    // Each replica created `n` values (one per Put); all were dropped.
    assert_eq!(drops.load(Ordering::Relaxed), 3 * n as usize);
}

#[test]
fn nr_register_full_and_reuse() {
    let cfg = NrConfig {
        replicas: 1,
        log_entries: 2,
        threads_per_replica: 1,
    };
    let nr = NodeReplicated::with_config(cfg, Kv::default);
    let h = nr.register().unwrap();
    let err = nr.register().unwrap_err();
    assert_eq!(err.replica, 0);
    assert!(err.to_string().contains("threads_per_replica"));
    drop(h);
    assert!(nr.register().is_ok(), "a dropped handle frees its slot");
}

#[test]
fn nr_concurrent_writers_on_two_nodes() {
    let drops = Arc::new(AtomicUsize::new(0));
    let cfg = NrConfig {
        replicas: 2,
        log_entries: 4,
        threads_per_replica: 2,
    };
    let mut nr = NodeReplicated::with_config(cfg, Kv::default);
    let threads = if cfg!(miri) { 2 } else { 4 };
    let n = if cfg!(miri) { 10 } else { 500 };
    std::thread::scope(|s| {
        for t in 0..threads {
            let (nr, drops) = (&nr, &drops);
            s.spawn(move || {
                let h = nr.register_on(t % 2).unwrap();
                for i in 0..n {
                    let k = (t * n + i) as u64;
                    assert_eq!(h.write(W::Put(k, k, drops.clone())), None);
                    assert_eq!(h.read(&k), Some(k), "read-your-write");
                }
            });
        }
    });
    let total = (threads * n) as u64;
    assert_eq!(nr.stats().appended, total);
    for r in 0..2 {
        assert_eq!(nr.replica_mut(r).0.len() as u64, total);
    }
    drop(nr);
    assert_eq!(drops.load(Ordering::Relaxed) as u64, 2 * total);
}

#[test]
fn nr_drops_logged_operations_exactly_once() {
    // The log owns operations until they are overwritten or the structure
    // drops; count them through their Arc.
    let marker = Arc::new(AtomicUsize::new(0));
    let cfg = NrConfig {
        replicas: 2,
        log_entries: 4,
        threads_per_replica: 1,
    };
    let mut nr = NodeReplicated::with_config(cfg, Kv::default);
    let h = nr.register_on(1).unwrap();
    for i in 0..10 {
        h.write(W::Put(i, i, marker.clone()));
    }
    drop(h);
    // Replica 0 has no thread and lags (helped only when the log filled).
    let lagging = nr.stats().replayed - 10;
    assert!(lagging < 10, "replica 0 applied {lagging} of 10");
    assert_eq!(
        nr.replica_mut(0).0.len(),
        10,
        "replica_mut syncs every replica"
    );
    // 4 ops in the log, 10 values in each replica's map.
    assert_eq!(Arc::strong_count(&marker), 1 + 4 + 2 * 10);
    drop(nr);
    assert_eq!(Arc::strong_count(&marker), 1);
}

#[test]
fn node_aware_stack_lifo_and_drops() {
    let drops = Arc::new(AtomicUsize::new(0));
    let s = NodeAwareStack::with_nodes(2);
    for i in 0..10u64 {
        s.push(Tracked(i, drops.clone())).unwrap();
    }
    {
        let g = s.enter();
        assert_eq!(s.pop(&g).map(|t| t.0), Some(9));
        assert_eq!(s.pop(&g).map(|t| t.0), Some(8));
    }
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    let st = s.stats();
    assert_eq!((st.successful_pushes, st.successful_pops), (10, 2));
    assert_eq!(st.active_nodes, 8);
    s.advance_epoch();
    s.advance_epoch();
    drop(s);
    assert_eq!(drops.load(Ordering::Relaxed), 10);
}

#[test]
fn node_aware_stack_concurrent_no_loss() {
    let s = NodeAwareStack::with_nodes(2);
    let threads = if cfg!(miri) { 2 } else { 4 };
    let n = if cfg!(miri) { 30 } else { 5_000 };
    let popped = AtomicUsize::new(0);
    let sum = AtomicUsize::new(0);
    std::thread::scope(|sc| {
        for t in 0..threads {
            let (s, popped, sum) = (&s, &popped, &sum);
            sc.spawn(move || {
                on_node(t % 2, || {
                    for i in 0..n {
                        s.push(t * n + i).unwrap();
                        let g = s.enter();
                        if let Some(v) = s.pop(&g) {
                            popped.fetch_add(1, Ordering::Relaxed);
                            sum.fetch_add(v, Ordering::Relaxed);
                        }
                    }
                })
            });
        }
    });
    let g = s.enter();
    while let Some(v) = s.pop(&g) {
        popped.fetch_add(1, Ordering::Relaxed);
        sum.fetch_add(v, Ordering::Relaxed);
    }
    let total = threads * n;
    assert_eq!(popped.load(Ordering::Relaxed), total);
    assert_eq!(sum.load(Ordering::Relaxed), total * (total - 1) / 2);
}

#[test]
#[should_panic(expected = "another stack")]
fn node_aware_stack_rejects_foreign_guard() {
    let a = NodeAwareStack::<u8>::with_nodes(1);
    let b = NodeAwareStack::<u8>::with_nodes(1);
    let g = a.enter();
    b.pop(&g);
}
