//! The [`Model`] trait: a sequential specification the checker compares
//! histories against, plus the partitioning hook.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

use crate::history::Operation;

/// A sequential specification.
///
/// The checker looks for an order of the history's operations, consistent
/// with real time, in which every operation is a legal [`step`](Model::step)
/// from the state the previous ones left. States are hashed and compared to
/// memoize the search, so they must be `Clone + Eq + Hash`, and two states
/// that behave the same should compare equal (a canonical form) or the
/// cache works less well (never incorrectly).
pub trait Model {
    /// An operation with its arguments.
    type Input: Debug;
    /// An operation's answer.
    type Output: Debug;
    /// The sequential object's state.
    type State: Clone + Eq + Hash;

    /// The initial state.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`; `Some(next)` if the object could have
    /// answered `output`, `None` if that answer is impossible in `state`.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;

    /// Applies `input` whose answer is unknown (a pending operation that
    /// took effect): the state after it, if it can take effect at all.
    ///
    /// The default returns `None`: pending operations of this model are
    /// then assumed never to have taken effect, which can reject a correct
    /// history where one did. Every model in this crate implements it.
    fn step_pending(&self, state: &Self::State, input: &Self::Input) -> Option<Self::State> {
        let _ = (state, input);
        None
    }

    /// Splits a history into independent parts checked one by one
    /// (P-compositionality, Horn & Kroening 2015): e.g. per key for a map.
    /// Returns `None` (the default) to check the whole history at once.
    ///
    /// A partition is only sound if the model's behaviour on each part is
    /// independent of the others; [`partition_by_key`] builds the usual
    /// per-key split.
    fn partition(&self, ops: &[Operation<Self::Input, Self::Output>]) -> Option<Vec<Partition>> {
        let _ = ops;
        None
    }

    /// A human-readable rendering of `state` for failure reports; `None`
    /// (the default) leaves the state out.
    fn describe(&self, state: &Self::State) -> Option<String> {
        let _ = state;
        None
    }
}

/// One independent part of a history (see [`Model::partition`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// How reports name this part, e.g. `key 7`.
    pub label: String,
    /// Indices into the history's operations.
    pub ops: Vec<usize>,
}

/// Groups operations by `key(input)`, one [`Partition`] per distinct key in
/// order of first appearance, labelled `key {:?}`. Operations for which
/// `key` returns `None` (whole-structure operations) make partitioning
/// impossible: the function then returns `None` and the history is checked
/// whole.
#[must_use]
pub fn partition_by_key<I, O, K: Hash + Eq + Debug>(
    ops: &[Operation<I, O>],
    mut key: impl FnMut(&I) -> Option<K>,
) -> Option<Vec<Partition>> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut parts: Vec<Partition> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let k = key(&op.input)?;
        let p = match index.get(&k) {
            Some(&p) => p,
            None => {
                parts.push(Partition {
                    label: format!("key {k:?}"),
                    ops: Vec::new(),
                });
                index.insert(k, parts.len() - 1);
                parts.len() - 1
            }
        };
        parts[p].ops.push(i);
    }
    Some(parts)
}
