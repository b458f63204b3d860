//! Property tests: histories built around a sequential execution are always
//! accepted, and on tiny random histories the checker agrees with a
//! brute-force enumeration of all orders.

use std::collections::{HashMap, VecDeque};

use proptest::prelude::*;
use waitless_check::*;

/// Turns a sequential execution into a concurrent-looking history: the
/// i-th operation takes effect at `100 * i` and its interval stretches
/// `before`/`after` ns around that point, so neighbours overlap, yet the
/// history stays linearizable by construction.
fn spread<I, O>(seq: Vec<(I, O)>, jitter: &[(u64, u64)]) -> History<I, O> {
    let mut h = History::new();
    for (i, ((input, output), &(before, after))) in seq.into_iter().zip(jitter).enumerate() {
        let lp = 1_000 + 100 * i as u64;
        h.push(i % 4, input, output, lp - before, lp + after);
    }
    h
}

fn jitter() -> impl Strategy<Value = Vec<(u64, u64)>> {
    prop::collection::vec((0u64..250, 0u64..250), 80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sequential_queue_runs_are_accepted(kinds in prop::collection::vec(0u8..3, 0..80), j in jitter()) {
        let mut q = VecDeque::new();
        let seq: Vec<_> = kinds.iter().enumerate().map(|(i, &k)| {
            if k == 0 {
                (QueueOp::Dequeue, QueueRet::Dequeued(q.pop_front()))
            } else if q.len() == 3 {
                (QueueOp::Enqueue(i), QueueRet::Full)
            } else {
                q.push_back(i);
                (QueueOp::Enqueue(i), QueueRet::Enqueued)
            }
        }).collect();
        let h = spread(seq, &j);
        prop_assert!(check(&QueueModel::bounded(3), &h).is_ok());
    }

    // Long enough that the linearized set spans many bitset words.
    #[test]
    fn long_sequential_queue_runs_are_accepted(kinds in prop::collection::vec(0u8..3, 200..600), seed in any::<u64>()) {
        let mut x = seed | 1;
        let mut rnd = move || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x % 250 };
        let j: Vec<(u64, u64)> = (0..kinds.len()).map(|_| (rnd(), rnd())).collect();
        let mut q = VecDeque::new();
        let seq: Vec<_> = kinds.iter().enumerate().map(|(i, &k)| {
            if k == 0 {
                (QueueOp::Dequeue, QueueRet::Dequeued(q.pop_front()))
            } else if q.len() == 3 {
                (QueueOp::Enqueue(i), QueueRet::Full)
            } else {
                q.push_back(i);
                (QueueOp::Enqueue(i), QueueRet::Enqueued)
            }
        }).collect();
        let h = spread(seq, &j);
        prop_assert!(check(&QueueModel::bounded(3), &h).is_ok());
    }

    #[test]
    fn sequential_stack_runs_are_accepted(kinds in prop::collection::vec(0u8..2, 0..80), j in jitter()) {
        let mut s = Vec::new();
        let seq: Vec<_> = kinds.iter().enumerate().map(|(i, &k)| {
            if k == 0 {
                (StackOp::Pop, StackRet::Popped(s.pop()))
            } else {
                s.push(i);
                (StackOp::Push(i), StackRet::Pushed)
            }
        }).collect();
        prop_assert!(check(&StackModel::new(), &spread(seq, &j)).is_ok());
    }

    #[test]
    fn sequential_map_runs_are_accepted(ops in prop::collection::vec((0u8..3, 0u8..4), 0..80), j in jitter()) {
        let mut m = HashMap::new();
        let seq: Vec<_> = ops.iter().enumerate().map(|(i, &(k, key))| match k {
            0 => (MapOp::Insert(key, i), MapRet::Inserted(m.insert(key, i))),
            1 => (MapOp::Get(key), MapRet::Got(m.get(&key).copied())),
            _ => (MapOp::Remove(key), MapRet::Removed(m.remove(&key))),
        }).collect();
        prop_assert!(check(&MapModel::new(), &spread(seq, &j)).is_ok());
    }

    #[test]
    fn queue_checker_agrees_with_brute_force(raw in prop::collection::vec(raw_op(), 0..7)) {
        let h = History::from_ops(raw.iter().map(|r| {
            let input = if r.kind == 0 { QueueOp::Dequeue } else { QueueOp::Enqueue(r.value) };
            let output = match (r.kind, r.answer) {
                (0, 0) => QueueRet::Dequeued(None),
                (0, _) => QueueRet::Dequeued(Some(r.value)),
                (_, 0) => QueueRet::Full,
                _ => QueueRet::Enqueued,
            };
            r.op(input, output)
        }).collect());
        let model = QueueModel::bounded(2);
        prop_assert_eq!(check(&model, &h).is_ok(), brute_force(&model, h.ops()), "{:?}", h);
    }

    #[test]
    fn register_checker_agrees_with_brute_force(raw in prop::collection::vec(raw_op(), 0..7)) {
        let h = History::from_ops(raw.iter().map(|r| {
            if r.kind == 0 {
                r.op(RegisterOp::Read, RegisterRet::Read(r.value))
            } else {
                r.op(RegisterOp::Write(r.value), RegisterRet::Written)
            }
        }).collect());
        let model = RegisterModel::new(0);
        prop_assert_eq!(check(&model, &h).is_ok(), brute_force(&model, h.ops()), "{:?}", h);
    }

    #[test]
    fn stack_checker_agrees_with_brute_force(raw in prop::collection::vec(raw_op(), 0..7)) {
        let h = History::from_ops(raw.iter().map(|r| {
            if r.kind == 0 {
                let got = if r.answer == 0 { None } else { Some(r.value) };
                r.op(StackOp::Pop, StackRet::Popped(got))
            } else {
                r.op(StackOp::Push(r.value), StackRet::Pushed)
            }
        }).collect());
        let model = StackModel::new();
        prop_assert_eq!(check(&model, &h).is_ok(), brute_force(&model, h.ops()), "{:?}", h);
    }

    #[test]
    fn set_checker_agrees_with_brute_force(raw in prop::collection::vec(raw_op(), 0..7)) {
        let h = History::from_ops(raw.iter().map(|r| {
            let x = r.value % 2;
            let answer = SetRet(r.answer % 2 == 0);
            match (r.kind, r.answer / 2) {
                (0, _) => r.op(SetOp::Contains(x), answer),
                (_, 0) => r.op(SetOp::Insert(x), answer),
                _ => r.op(SetOp::Remove(x), answer),
            }
        }).collect());
        let model = SetModel::new();
        prop_assert_eq!(check(&model, &h).is_ok(), brute_force(&model, h.ops()), "{:?}", h);
    }

    #[test]
    fn map_checker_agrees_with_brute_force(raw in prop::collection::vec(raw_op(), 0..7)) {
        let h = History::from_ops(raw.iter().map(|r| {
            let key = r.answer % 2; // two keys: partitions matter
            let prev = if r.value == 0 { None } else { Some(r.value) };
            match r.kind {
                0 => r.op(MapOp::Get(key), MapRet::Got(prev)),
                _ if r.answer < 2 => r.op(MapOp::Insert(key, r.value + 1), MapRet::Inserted(prev)),
                _ => r.op(MapOp::Remove(key), MapRet::Removed(prev)),
            }
        }).collect());
        let model = MapModel::new();
        prop_assert_eq!(check(&model, &h).is_ok(), brute_force(&model, h.ops()), "{:?}", h);
    }
}

#[derive(Debug, Clone)]
struct RawOp {
    kind: u8,
    value: u32,
    answer: u8,
    call: u64,
    len: u64,
    pending: bool,
}

impl RawOp {
    fn op<I, O>(&self, input: I, output: O) -> Operation<I, O> {
        if self.pending {
            Operation::pending(0, input, self.call)
        } else {
            Operation::new(0, input, output, self.call, self.call + self.len)
        }
    }
}

fn raw_op() -> impl Strategy<Value = RawOp> {
    (0u8..2, 0u32..3, 0u8..4, 0u64..20, 0u64..10, 0u8..8).prop_map(
        |(kind, value, answer, call, len, p)| RawOp {
            kind,
            value,
            answer,
            call,
            len,
            pending: p == 0,
        },
    )
}

/// Tries every order consistent with real time (pending operations may be
/// left out): the definition of linearizability, executed literally.
fn brute_force<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool {
    fn go<M: Model>(
        model: &M,
        ops: &[Operation<M::Input, M::Output>],
        used: &mut Vec<bool>,
        state: &M::State,
    ) -> bool {
        if ops
            .iter()
            .zip(used.iter())
            .all(|(o, &u)| u || o.is_pending())
        {
            return true;
        }
        for i in 0..ops.len() {
            if used[i] {
                continue;
            }
            // `i` may come next only if no unplaced operation returned
            // before `i` was called.
            let blocked = ops
                .iter()
                .zip(used.iter())
                .any(|(o, &u)| !u && o.ret.is_some_and(|r| r < ops[i].call));
            if blocked {
                continue;
            }
            let next = match &ops[i].output {
                Some(out) => model.step(state, &ops[i].input, out),
                None => model.step_pending(state, &ops[i].input),
            };
            if let Some(next) = next {
                used[i] = true;
                if go(model, ops, used, &next) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    go(model, ops, &mut vec![false; ops.len()], &model.init())
}

/// Four simulated threads issue operations back to back; each takes effect
/// at a random instant inside its interval; answers come from a sequential
/// queue run in effect order. Linearizable by construction, ~4 operations
/// open at any time, thousands of operations (many bitset words). This
/// shape caught a bug where a cache hit left the bitset's "full prefix"
/// marker past a cleared bit.
#[test]
fn generated_overlapping_queue_histories_are_accepted() {
    for seed in 1..=20u64 {
        let h = waitless_check::generate::queue_history(4, 2000, 8, seed);
        if let Err(e) = check(&QueueModel::bounded(8), &h) {
            panic!("seed {seed}: {e}");
        }
    }
}
