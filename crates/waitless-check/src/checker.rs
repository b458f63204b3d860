//! The Wing–Gong–Lowe search (see the crate docs for the algorithm).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::history::{History, Operation};
use crate::model::{Model, Partition};
use crate::report::{CheckOutcome, NonLinearizable, OpReport, PREFIX_TAIL};

/// Step budget of [`assert_linearizable`]: generous for any history that
/// decides (a few thousand operations take well under a million steps; a
/// 100k-operation queue history with four operations always open takes
/// about two million), small enough that a pathological one fails the test
/// in seconds, with the cache under a few hundred MiB, instead of hanging
/// it or exhausting memory.
pub const ASSERT_STEP_LIMIT: u64 = 10_000_000;

/// Checks `history` against `model`, exhaustively (no step budget).
///
/// `Ok(())` if the history is linearizable; otherwise the first failing
/// partition's explanation. For a bounded search use [`check_with_limit`].
pub fn check<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
) -> Result<(), NonLinearizable> {
    match check_with_limit(model, history, u64::MAX) {
        CheckOutcome::Linearizable => Ok(()),
        CheckOutcome::NonLinearizable(e) => Err(e),
        CheckOutcome::Unknown { .. } => unreachable!("an unbounded search always decides"),
    }
}

/// Checks `history` against `model`, giving up with
/// [`CheckOutcome::Unknown`] after `max_steps` model steps in all.
#[must_use]
pub fn check_with_limit<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    max_steps: u64,
) -> CheckOutcome {
    let ops = history.ops();
    let parts = model.partition(ops).unwrap_or_else(|| {
        vec![Partition {
            label: "whole history".to_string(),
            ops: (0..ops.len()).collect(),
        }]
    });
    let mut budget = max_steps;
    for part in &parts {
        let members: Vec<&Operation<M::Input, M::Output>> = part
            .ops
            .iter()
            .map(|&i| {
                ops.get(i).unwrap_or_else(|| {
                    panic!(
                        "Model::partition returned index {i} for a history of {} operations",
                        ops.len()
                    )
                })
            })
            .collect();
        let mut search = Search::new(model, members);
        match search.run(&mut budget, None) {
            Run::Linearizable => {}
            Run::Unknown => {
                return CheckOutcome::Unknown {
                    partition: part.label.clone(),
                    steps: max_steps - budget,
                }
            }
            Run::Stuck { .. } => unreachable!("no stop depth was given"),
            Run::Fail { max_depth } => {
                // Replay the (deterministic) search up to the first time it
                // reached its deepest point, to report that prefix.
                let mut replay = Search::new(model, search.ops);
                let mut unlimited = u64::MAX;
                let Run::Stuck { prefix, state } = replay.run(&mut unlimited, Some(max_depth))
                else {
                    unreachable!("the replay reaches the depth the search reached")
                };
                return CheckOutcome::NonLinearizable(replay.explain(&part.label, &prefix, &state));
            }
        }
    }
    CheckOutcome::Linearizable
}

/// Panics, printing the explanation, unless `history` is linearizable
/// under `model`. The search is bounded by [`ASSERT_STEP_LIMIT`] steps; a
/// history that does not decide within it also panics (record fewer
/// operations per check, or use unique values).
#[track_caller]
pub fn assert_linearizable<M: Model>(model: &M, history: &History<M::Input, M::Output>) {
    match check_with_limit(model, history, ASSERT_STEP_LIMIT) {
        CheckOutcome::Linearizable => {}
        CheckOutcome::NonLinearizable(e) => panic!("{e}"),
        CheckOutcome::Unknown { partition, steps } => panic!(
            "linearizability check undecided after {steps} steps ({partition}, {} operations): \
             the history is too ambiguous; check fewer operations at a time or use unique values",
            history.len()
        ),
    }
}

/// End-of-list marker.
const NIL: u32 = u32::MAX;
/// The list head sentinel's node index.
const HEAD: u32 = 0;

enum Run<S> {
    Linearizable,
    Fail {
        max_depth: usize,
    },
    Unknown,
    /// Stopped on reaching the requested depth.
    Stuck {
        prefix: Vec<u32>,
        state: S,
    },
}

struct Frame {
    /// The lifted call node.
    node: u32,
    /// The cache entry holding the state before the operation.
    state: u32,
    /// `hi` before the operation (see `Search::hi`).
    hi: usize,
}

/// Lowe's cache of explored (linearized set, state) configurations.
///
/// Entries live in an arena and are never removed, so the search refers to
/// states by entry index (no state is cloned to be cached) and keys are
/// slices of one word buffer (no allocation per key). The hash table maps
/// a configuration's hash to its newest entry; entries with equal hashes
/// are chained.
struct Cache<S> {
    words: Vec<u64>,
    entries: Vec<CacheEntry<S>>,
    index: HashMap<u64, u32, BuildHasherDefault<IdentityHasher>>,
}

struct CacheEntry<S> {
    key_start: usize,
    key_len: usize,
    state: S,
    /// An older entry with the same hash, or NIL.
    next: u32,
}

impl<S: Eq + Hash> Cache<S> {
    fn with_capacity(n: usize) -> Self {
        Cache {
            words: Vec::with_capacity(4 * n),
            entries: Vec::with_capacity(n),
            index: HashMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// Adds the configuration unless it is already there; returns the new
    /// entry's index, or `None` if it was explored before.
    fn insert(&mut self, key: &[u64], state: S) -> Option<u32> {
        let mut h = FxHasher::default();
        for &w in key {
            h.add(w);
        }
        h.add(key.len() as u64);
        state.hash(&mut h);
        let hash = h.finish();
        let head = self.index.get(&hash).copied().unwrap_or(NIL);
        let mut e = head;
        while e != NIL {
            let entry = &self.entries[e as usize];
            if entry.state == state
                && &self.words[entry.key_start..entry.key_start + entry.key_len] == key
            {
                return None;
            }
            e = entry.next;
        }
        let idx = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NIL)
            .expect("waitless-check: more than 2^32 cached configurations");
        self.entries.push(CacheEntry {
            key_start: self.words.len(),
            key_len: key.len(),
            state,
            next: head,
        });
        self.words.extend_from_slice(key);
        self.index.insert(hash, idx);
        Some(idx)
    }

    fn state(&self, idx: u32) -> &S {
        &self.entries[idx as usize].state
    }
}

/// One partition's search state.
struct Search<'a, M: Model> {
    model: &'a M,
    /// The partition's operations: completed ones by call time, then
    /// pending ones (so the linearized set is a dense prefix plus a small
    /// window, see `key`).
    ops: Vec<&'a Operation<M::Input, M::Output>>,
    completed: usize,
    // The doubly linked list of call/return events in time order. Node 0 is
    // the head; node n > 0 is event n - 1.
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Per node: the operation index, with the top bit set for a return.
    node_op: Vec<u32>,
    /// Per operation: its return node, or NIL if pending.
    ret_node: Vec<u32>,
    /// Linearized completed operations, one bit each.
    done: Vec<u64>,
    /// Linearized pending operations.
    pend: Vec<u64>,
    /// First word of `done` that is not all ones (advanced lazily).
    low: usize,
    /// One past the last word of `done` with a bit set (exact: restored
    /// from the stack on backtrack).
    hi: usize,
    /// Scratch buffer for `key`.
    key: Vec<u64>,
}

const RET_BIT: u32 = 1 << 31;

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, mut ops: Vec<&'a Operation<M::Input, M::Output>>) -> Self {
        assert!(
            ops.len() < (RET_BIT as usize) - 1,
            "waitless-check: a partition of {} operations is too large",
            ops.len()
        );
        ops.sort_by_key(|o| (o.ret.is_none(), o.call, o.ret));
        let completed = ops.iter().filter(|o| o.ret.is_some()).count();
        let mut events: Vec<(u64, u32)> = Vec::with_capacity(2 * ops.len());
        for (i, o) in ops.iter().enumerate() {
            // Calls sort before returns at the same instant: operations
            // whose times tie are treated as concurrent.
            events.push((o.call, i as u32));
            if let Some(r) = o.ret {
                events.push((r, i as u32 | RET_BIT));
            }
        }
        events.sort_unstable_by_key(|&(t, tagged)| (t, tagged & RET_BIT, tagged));
        let n = events.len() + 1;
        let mut next = Vec::with_capacity(n);
        let mut prev = Vec::with_capacity(n);
        let mut node_op = Vec::with_capacity(n);
        let mut ret_node = vec![NIL; ops.len()];
        node_op.push(0);
        for (k, &(_, tagged)) in events.iter().enumerate() {
            node_op.push(tagged);
            if tagged & RET_BIT != 0 {
                ret_node[(tagged & !RET_BIT) as usize] = k as u32 + 1;
            }
        }
        for k in 0..n {
            next.push(if k + 1 < n { k as u32 + 1 } else { NIL });
            prev.push(if k == 0 { NIL } else { k as u32 - 1 });
        }
        Search {
            model,
            completed,
            done: vec![0; completed.div_ceil(64)],
            pend: vec![0; (ops.len() - completed).div_ceil(64)],
            ops,
            next,
            prev,
            node_op,
            ret_node,
            low: 0,
            hi: 0,
            key: Vec::new(),
        }
    }

    fn unlink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = x;
        if x != NIL {
            self.prev[x as usize] = p;
        }
    }

    fn relink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = n;
        if x != NIL {
            self.prev[x as usize] = n;
        }
    }

    /// Removes an operation's call node and its return node (if any).
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.ret_node[self.node_op[call as usize] as usize];
        if r != NIL {
            self.unlink(r);
        }
    }

    /// Undoes `lift` (dancing links: the reverse order of removal).
    fn unlift(&mut self, call: u32) {
        let r = self.ret_node[self.node_op[call as usize] as usize];
        if r != NIL {
            self.relink(r);
        }
        self.relink(call);
    }

    fn flip(&mut self, op: usize) {
        if op < self.completed {
            self.done[op / 64] ^= 1 << (op % 64);
        } else {
            let p = op - self.completed;
            self.pend[p / 64] ^= 1 << (p % 64);
        }
    }

    /// Clears a set bit, keeping `low`'s invariant (every word below `low`
    /// is full): `key` may have moved `low` past this bit's word.
    fn unset(&mut self, op: usize) {
        self.flip(op);
        if op < self.completed {
            self.low = self.low.min(op / 64);
        }
    }

    /// The cache key of the linearized set: `[low, hi, done[low..hi], pend]`.
    /// Completed operations are numbered by call time and an operation can
    /// be linearized only before every operation that returned before its
    /// call, so the set is "everything below `low` words" plus a window whose
    /// width is bounded by the history's concurrency: keys stay small even
    /// for 100k-operation histories.
    fn fill_key(&mut self) {
        while self.low < self.done.len() && self.done[self.low] == u64::MAX {
            self.low += 1;
        }
        let window = if self.hi > self.low {
            &self.done[self.low..self.hi]
        } else {
            &[]
        };
        self.key.clear();
        self.key.push(self.low as u64);
        self.key.push(window.len() as u64);
        self.key.extend_from_slice(window);
        self.key.extend_from_slice(&self.pend);
    }

    fn try_step(&self, state: &M::State, op: usize) -> Option<M::State> {
        let o = self.ops[op];
        match &o.output {
            Some(out) => self.model.step(state, &o.input, out),
            None => self.model.step_pending(state, &o.input),
        }
    }

    /// The search. With `stop_at`, returns `Stuck` the first time the
    /// linearized prefix reaches that length.
    fn run(&mut self, budget: &mut u64, stop_at: Option<usize>) -> Run<M::State> {
        let mut cache = Cache::with_capacity(4 * self.ops.len() + 16);
        self.fill_key();
        let mut state = cache
            .insert(&self.key, self.model.init())
            .expect("the cache starts empty");
        let mut stack: Vec<Frame> = Vec::new();
        let mut remaining = self.completed;
        let mut max_depth = 0;
        let mut node = self.next[HEAD as usize];
        loop {
            if stop_at == Some(stack.len()) {
                let prefix = stack
                    .iter()
                    .map(|f| self.node_op[f.node as usize])
                    .collect();
                return Run::Stuck {
                    prefix,
                    state: cache.state(state).clone(),
                };
            }
            if remaining == 0 {
                return Run::Linearizable;
            }
            // A return node is still listed (`remaining > 0`), and the scan
            // never passes one, so `node` is never NIL here.
            debug_assert_ne!(node, NIL);
            let tagged = self.node_op[node as usize];
            if tagged & RET_BIT == 0 {
                let op = tagged as usize;
                if *budget == 0 {
                    return Run::Unknown;
                }
                *budget -= 1;
                if let Some(next_state) = self.try_step(cache.state(state), op) {
                    self.flip(op);
                    let old_hi = self.hi;
                    if op < self.completed {
                        self.hi = self.hi.max(op / 64 + 1);
                    }
                    self.fill_key();
                    if let Some(next) = cache.insert(&self.key, next_state) {
                        stack.push(Frame {
                            node,
                            state: std::mem::replace(&mut state, next),
                            hi: old_hi,
                        });
                        max_depth = max_depth.max(stack.len());
                        self.lift(node);
                        if op < self.completed {
                            remaining -= 1;
                        }
                        node = self.next[HEAD as usize];
                        continue;
                    }
                    self.unset(op);
                    self.hi = old_hi;
                }
                node = self.next[node as usize];
            } else {
                // An operation returned before anything in the prefix could
                // account for it: undo the last choice.
                let Some(frame) = stack.pop() else {
                    return Run::Fail { max_depth };
                };
                let op = self.node_op[frame.node as usize] as usize;
                self.unset(op);
                if op < self.completed {
                    remaining += 1;
                }
                self.hi = frame.hi;
                state = frame.state;
                self.unlift(frame.node);
                node = self.next[frame.node as usize];
            }
        }
    }

    fn report(&self, op: usize, why: String) -> OpReport {
        let o = self.ops[op];
        OpReport {
            thread: o.thread,
            input: format!("{:?}", o.input),
            output: o.output.as_ref().map(|x| format!("{x:?}")),
            call: o.call,
            ret: o.ret,
            why,
        }
    }

    /// Builds the explanation from a `Stuck` replay.
    fn explain(&self, label: &str, prefix: &[u32], state: &M::State) -> NonLinearizable {
        let tail = &prefix[prefix.len().saturating_sub(PREFIX_TAIL)..];
        let prefix_tail = tail
            .iter()
            .map(|&op| self.report(op as usize, String::new()))
            .collect();
        // The candidates: calls listed before the first remaining return.
        let mut stuck = Vec::new();
        let mut node = self.next[HEAD as usize];
        let mut deadline = None;
        while node != NIL {
            let tagged = self.node_op[node as usize];
            if tagged & RET_BIT != 0 {
                deadline = Some((tagged & !RET_BIT) as usize);
                break;
            }
            stuck.push(tagged as usize);
            node = self.next[node as usize];
        }
        let stuck = stuck
            .into_iter()
            .map(|op| {
                let mut why = match (self.try_step(state, op), self.ops[op].is_pending()) {
                    (None, false) => {
                        "impossible here: the model cannot give this answer in this state"
                            .to_string()
                    }
                    (None, true) => {
                        "impossible here: the model cannot apply it in this state".to_string()
                    }
                    (Some(_), _) => {
                        "possible here, but no linearization of the remaining operations follows it"
                            .to_string()
                    }
                };
                if deadline == Some(op) {
                    why.push_str(
                        "; it returned before any other remaining operation, \
                         so nothing after it can come first",
                    );
                }
                self.report(op, why)
            })
            .collect();
        NonLinearizable {
            partition: label.to_string(),
            partition_len: self.ops.len(),
            prefix_len: prefix.len(),
            prefix_tail,
            state: self.model.describe(state),
            stuck,
        }
    }
}

/// Passes a precomputed `u64` hash through (the cache hashes its
/// configurations itself, once).
#[derive(Default, Clone, Copy)]
struct IdentityHasher {
    hash: u64,
}

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this hasher; fold anything else.
        let mut fx = FxHasher { hash: self.hash };
        fx.write(bytes);
        self.hash = fx.hash;
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.hash = i;
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// The rustc/Firefox "Fx" hash: a fast non-cryptographic hash for the
/// cache's integer keys (no HashDoS concern: keys come from our own search).
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("chunk of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueueModel, QueueOp, QueueRet};

    #[test]
    fn cache_deduplicates_by_key_and_state() {
        let mut c: Cache<u8> = Cache::with_capacity(0);
        assert_eq!(c.insert(&[0, 1, 5], 1), Some(0));
        assert_eq!(c.insert(&[0, 1, 5], 1), None);
        assert_eq!(c.insert(&[0, 1, 5], 2), Some(1));
        assert_eq!(c.insert(&[0, 1, 6], 1), Some(2));
        assert_eq!(c.insert(&[0, 1], 1), Some(3));
        assert_eq!(c.insert(&[0, 1, 6], 1), None);
        assert_eq!(*c.state(1), 2);
    }

    #[test]
    fn keys_are_canonical_after_set_and_clear() {
        // 200 sequential enqueues: 4 words of `done`.
        let ops: Vec<Operation<QueueOp<u32>, QueueRet<u32>>> = (0..200u32)
            .map(|i| {
                Operation::new(
                    0,
                    QueueOp::Enqueue(i),
                    QueueRet::Enqueued,
                    10 * i as u64,
                    10 * i as u64 + 5,
                )
            })
            .collect();
        let model = QueueModel::unbounded();
        let mut s = Search::new(&model, ops.iter().collect());
        let set = |s: &mut Search<'_, _>, op: usize| {
            s.flip(op);
            s.hi = s.hi.max(op / 64 + 1);
        };
        for op in 0..130 {
            set(&mut s, op);
        }
        s.fill_key();
        let full = s.key.clone();
        assert_eq!(full[0], 2, "two full words");
        // Clear a bit in a full word, then set it again: same key.
        s.unset(5);
        s.fill_key();
        assert_ne!(s.key, full);
        assert_eq!(s.key[0], 0);
        set(&mut s, 5);
        s.fill_key();
        assert_eq!(s.key, full);
        // The same set reached in another order gives the same key.
        let mut t = Search::new(&model, ops.iter().collect());
        for op in (0..130).rev() {
            set(&mut t, op);
        }
        t.fill_key();
        assert_eq!(t.key, full);
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops: Vec<Operation<QueueOp<u32>, QueueRet<u32>>> = (0..4u32)
            .map(|i| {
                Operation::new(
                    0,
                    QueueOp::Enqueue(i),
                    QueueRet::Enqueued,
                    i as u64,
                    10 + i as u64,
                )
            })
            .collect();
        let model = QueueModel::unbounded();
        let mut s = Search::new(&model, ops.iter().collect());
        let (next, prev) = (s.next.clone(), s.prev.clone());
        let first = s.next[HEAD as usize];
        s.lift(first);
        let second = s.next[HEAD as usize];
        assert_ne!(second, first);
        s.lift(second);
        s.unlift(second);
        s.unlift(first);
        assert_eq!((s.next.clone(), s.prev.clone()), (next, prev));
    }
}
