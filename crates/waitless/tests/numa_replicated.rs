//! `NodeReplicated` is linearizable: histories of 4–8 threads spread over
//! 1–4 simulated nodes (per-thread node override) pass `waitless-check`,
//! with logs small enough to wrap and fill, so writers help lagging
//! replicas. Plus a stalled-replica test: a node whose thread does nothing
//! for a long time loses no entry.
#![cfg(not(loom))]

use std::collections::HashMap;
use std::sync::Barrier;

use waitless::numa::{set_node_override, NodeReplicated, NrConfig, Sequential};
use waitless_check::{
    assert_linearizable, MapModel, MapOp, MapRet, Recorder, RegisterModel, RegisterOp, RegisterRet,
};

#[derive(Default)]
struct Map(HashMap<u64, u64>);

enum Write {
    Insert(u64, u64),
    Remove(u64),
}

impl Sequential for Map {
    type ReadOp = u64;
    type WriteOp = Write;
    type Response = Option<u64>;
    fn read(&self, k: &u64) -> Option<u64> {
        self.0.get(k).copied()
    }
    fn apply(&mut self, op: &Write) -> Option<u64> {
        match *op {
            Write::Insert(k, v) => self.0.insert(k, v),
            Write::Remove(k) => self.0.remove(&k),
        }
    }
}

/// A cheap deterministic generator per thread.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn map_history(threads: usize, nodes: usize, log_entries: usize, ops: usize, reads_pct: u64) {
    let nr = NodeReplicated::with_config(
        NrConfig {
            replicas: nodes,
            log_entries,
            threads_per_replica: threads,
        },
        Map::default,
    );
    let rec: Recorder<MapOp<u64, u64>, MapRet<u64>> = Recorder::new();
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (nr, rec, start) = (&nr, &rec, &start);
            s.spawn(move || {
                // The thread runs "on" node t % nodes: `register` finds it.
                set_node_override(Some(t % nodes));
                let h = nr.register().unwrap();
                assert_eq!(h.replica(), t % nodes);
                let mut log = rec.thread();
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                start.wait();
                for i in 0..ops as u64 {
                    let k = rng.next() % 6;
                    let dice = rng.next() % 100;
                    if dice < reads_pct {
                        log.op(MapOp::Get(k), || MapRet::Got(h.read(&k)));
                    } else if dice < reads_pct + (100 - reads_pct) * 3 / 4 {
                        let v = (t as u64) << 32 | i; // unique values
                        log.op(MapOp::Insert(k, v), || {
                            MapRet::Inserted(h.write(Write::Insert(k, v)))
                        });
                    } else {
                        log.op(MapOp::Remove(k), || {
                            MapRet::Removed(h.write(Write::Remove(k)))
                        });
                    }
                }
            });
        }
    });
    let st = nr.stats();
    let history = rec.into_history();
    assert_eq!(history.len(), threads * ops);
    assert_linearizable(&MapModel::new(), &history);
    // Every write went through the log exactly once.
    let writes = history
        .ops()
        .iter()
        .filter(|o| !matches!(o.input, MapOp::Get(_)))
        .count() as u64;
    assert_eq!(st.appended, writes, "{st:?}");
    assert!(st.replayed >= writes, "{st:?}");
}

fn ops(n: usize) -> usize {
    if cfg!(miri) {
        10
    } else {
        n
    }
}

#[test]
fn map_4_threads_1_node() {
    // One replica: readers skip `ctail` and rely on the replica's own
    // `ltail` alone; that shortcut must stay linearizable.
    map_history(4, 1, 8, ops(1_500), 70);
}

#[test]
fn map_4_threads_2_nodes() {
    map_history(4, 2, 8, ops(1_500), 50);
}

#[test]
fn map_6_threads_3_nodes_tiny_log() {
    // A 2-entry log: almost every batch finds it full.
    map_history(6, 3, 2, ops(800), 50);
}

#[test]
fn map_8_threads_4_nodes_read_mostly() {
    map_history(8, 4, 16, ops(1_000), 90);
}

#[test]
fn register_8_threads_4_nodes() {
    #[derive(Default)]
    struct Reg(u64);
    impl Sequential for Reg {
        type ReadOp = ();
        type WriteOp = u64;
        type Response = u64;
        fn read(&self, _: &()) -> u64 {
            self.0
        }
        fn apply(&mut self, v: &u64) -> u64 {
            self.0 = *v;
            0
        }
    }
    let threads = 8;
    let nr = NodeReplicated::with_config(
        NrConfig {
            replicas: 4,
            log_entries: 4,
            threads_per_replica: 2,
        },
        Reg::default,
    );
    let rec: Recorder<RegisterOp<u64>, RegisterRet<u64>> = Recorder::new();
    let n = ops(500) as u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (nr, rec) = (&nr, &rec);
            s.spawn(move || {
                let h = nr.register_on(t % 4).unwrap();
                let mut log = rec.thread();
                for i in 0..n {
                    if (i + t as u64) % 3 == 0 {
                        let v = (t as u64 + 1) << 32 | i;
                        log.op(RegisterOp::Write(v), || {
                            h.write(v);
                            RegisterRet::Written
                        });
                    } else {
                        log.op(RegisterOp::Read, || RegisterRet::Read(h.read(&())));
                    }
                }
            });
        }
    });
    assert_linearizable(&RegisterModel::new(0), &rec.into_history());
}

#[test]
fn a_stalled_replica_loses_no_entry() {
    // Replica 2's only thread registers, then waits (on a barrier, not a
    // sleep) while two other nodes write 50 times the log's length. The
    // writers must help replica 2 each time the log fills; when its thread
    // wakes it must read every key's last value.
    let nr = NodeReplicated::with_config(
        NrConfig {
            replicas: 3,
            log_entries: 8,
            threads_per_replica: 1,
        },
        Map::default,
    );
    let writes = ops(400) as u64;
    let done = Barrier::new(3);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (nr, done) = (&nr, &done);
            s.spawn(move || {
                let h = nr.register_on(t as usize).unwrap();
                for i in 0..writes {
                    h.write(Write::Insert(t * 1000 + i % 20, i));
                }
                done.wait();
            });
        }
        let (nr, done) = (&nr, &done);
        s.spawn(move || {
            let h = nr.register_on(2).unwrap();
            done.wait();
            for t in 0..2u64 {
                for k in 0..20 {
                    let last = (0..writes).rev().find(|i| i % 20 == k);
                    assert_eq!(h.read(&(t * 1000 + k)), last, "key {t}:{k}");
                }
            }
        });
    });
    let st = nr.stats();
    assert!(st.log_full > 0, "{st:?}");
    assert!(st.helped_replays > 0, "{st:?}");
    assert_eq!(st.appended, 2 * writes);
    // No replica applied an entry twice; the two writers' replicas may each
    // still lag by less than a log's length (nobody read there since).
    assert!(st.replayed <= 3 * 2 * writes, "{st:?}");
    assert!(st.replayed + 2 * 8 >= 3 * 2 * writes, "{st:?}");
}
