//! A sequential ordered map whose operations include range scans with their
//! full result, for checking structures such as
//! `waitless::btree::LockFreeBTree` whose ranges claim to be snapshots.
//!
//! A range answer is a whole sequence of entries, so a range operation
//! touches many keys at once: the history cannot be split per key and is
//! checked whole. Keep histories small (3–4 threads, a few hundred
//! operations, a small key space) — that is also what makes scans race with
//! writers often.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::marker::PhantomData;

use crate::model::Model;

/// An ordered-map operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OrderedOp<K, V> {
    /// Insert or replace; answers the previous value.
    Insert(K, V),
    /// Insert only if the key is absent (`try_insert`); answers whether it
    /// inserted.
    TryInsert(K, V),
    /// Read one key.
    Get(K),
    /// Remove; answers the removed value.
    Remove(K),
    /// Every entry with `lo <= key < hi`, ascending (`range(lo..hi)`; a
    /// reversed range answers nothing).
    Range(K, K),
}

/// An ordered-map operation's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OrderedRet<K, V> {
    /// The previous value of the key, if any.
    Inserted(Option<V>),
    /// Whether a `TryInsert` inserted (`false`: the key was present).
    TryInserted(bool),
    /// The value read, if any.
    Got(Option<V>),
    /// The removed value, if any.
    Removed(Option<V>),
    /// The entries of the range, ascending.
    Ranged(Vec<(K, V)>),
}

/// An ordered map with range scans. State: the map's entries.
///
/// A range answer must be exactly the entries in the range in *one* state:
/// a scan that mixes two states (weakly consistent iteration) is rejected.
///
/// ```
/// use waitless_check::{check, History, OrderedMapModel, OrderedOp, OrderedRet};
/// let mut h = History::new();
/// h.push(0, OrderedOp::Insert(1, 10), OrderedRet::Inserted(None), 0, 10)
///     .push(0, OrderedOp::Remove(1), OrderedRet::Removed(Some(10)), 20, 30)
///     .push(0, OrderedOp::Insert(2, 20), OrderedRet::Inserted(None), 40, 50)
///     // Concurrent with all three: sees the first insert and the last one,
///     // but they were never present together.
///     .push(1, OrderedOp::Range(0, 5), OrderedRet::Ranged(vec![(1, 10), (2, 20)]), 5, 45);
/// assert!(check(&OrderedMapModel::new(), &h).is_err());
/// ```
pub struct OrderedMapModel<K, V> {
    _t: PhantomData<fn() -> (K, V)>,
}

impl<K, V> OrderedMapModel<K, V> {
    /// An empty map.
    #[must_use]
    pub const fn new() -> Self {
        OrderedMapModel { _t: PhantomData }
    }
}

impl<K, V> Clone for OrderedMapModel<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for OrderedMapModel<K, V> {}
impl<K, V> Default for OrderedMapModel<K, V> {
    fn default() -> Self {
        Self::new()
    }
}
impl<K, V> fmt::Debug for OrderedMapModel<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrderedMapModel")
    }
}

impl<K, V> Model for OrderedMapModel<K, V>
where
    K: Clone + Ord + Hash + Debug,
    V: Clone + Eq + Hash + Debug,
{
    type Input = OrderedOp<K, V>;
    type Output = OrderedRet<K, V>;
    type State = BTreeMap<K, V>;

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(
        &self,
        s: &Self::State,
        input: &OrderedOp<K, V>,
        output: &OrderedRet<K, V>,
    ) -> Option<Self::State> {
        match (input, output) {
            (OrderedOp::Insert(k, v), OrderedRet::Inserted(prev)) if s.get(k) == prev.as_ref() => {
                let mut n = s.clone();
                n.insert(k.clone(), v.clone());
                Some(n)
            }
            (OrderedOp::TryInsert(k, v), OrderedRet::TryInserted(done))
                if *done != s.contains_key(k) =>
            {
                let mut n = s.clone();
                n.entry(k.clone()).or_insert_with(|| v.clone());
                Some(n)
            }
            (OrderedOp::Get(k), OrderedRet::Got(got)) if s.get(k) == got.as_ref() => {
                Some(s.clone())
            }
            (OrderedOp::Remove(k), OrderedRet::Removed(prev)) if s.get(k) == prev.as_ref() => {
                let mut n = s.clone();
                n.remove(k);
                Some(n)
            }
            (OrderedOp::Range(lo, hi), OrderedRet::Ranged(got)) => {
                let ok = if lo >= hi {
                    got.is_empty()
                } else {
                    s.range(lo.clone()..hi.clone())
                        .eq(got.iter().map(|(k, v)| (k, v)))
                };
                ok.then(|| s.clone())
            }
            _ => None,
        }
    }

    fn step_pending(&self, s: &Self::State, input: &OrderedOp<K, V>) -> Option<Self::State> {
        let mut n = s.clone();
        match input {
            OrderedOp::Insert(k, v) => {
                n.insert(k.clone(), v.clone());
            }
            OrderedOp::TryInsert(k, v) => {
                n.entry(k.clone()).or_insert_with(|| v.clone());
            }
            OrderedOp::Remove(k) => {
                n.remove(k);
            }
            OrderedOp::Get(_) | OrderedOp::Range(..) => {}
        }
        Some(n)
    }

    fn describe(&self, s: &Self::State) -> Option<String> {
        Some(format!("ordered map {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check, History};

    type H = History<OrderedOp<u32, u32>, OrderedRet<u32, u32>>;

    #[test]
    fn try_insert_succeeds_only_on_an_absent_key() {
        // Two racing try-inserts of one key: one wins, and the map keeps
        // the winner's value.
        let mut h = H::new();
        h.push(
            0,
            OrderedOp::TryInsert(1, 10),
            OrderedRet::TryInserted(true),
            0,
            10,
        )
        .push(
            1,
            OrderedOp::TryInsert(1, 11),
            OrderedRet::TryInserted(false),
            0,
            10,
        )
        .push(1, OrderedOp::Get(1), OrderedRet::Got(Some(10)), 20, 30);
        assert!(check(&OrderedMapModel::new(), &h).is_ok());
        // Both cannot win, and a loser does not change the value.
        let mut both = H::new();
        both.push(
            0,
            OrderedOp::TryInsert(1, 10),
            OrderedRet::TryInserted(true),
            0,
            10,
        )
        .push(
            1,
            OrderedOp::TryInsert(1, 11),
            OrderedRet::TryInserted(true),
            0,
            10,
        );
        assert!(check(&OrderedMapModel::new(), &both).is_err());
        let mut replaced = H::new();
        replaced
            .push(
                0,
                OrderedOp::Insert(1, 10),
                OrderedRet::Inserted(None),
                0,
                10,
            )
            .push(
                0,
                OrderedOp::TryInsert(1, 11),
                OrderedRet::TryInserted(false),
                20,
                30,
            )
            .push(0, OrderedOp::Get(1), OrderedRet::Got(Some(11)), 40, 50);
        assert!(check(&OrderedMapModel::new(), &replaced).is_err());
    }

    #[test]
    fn a_snapshot_scan_passes() {
        let mut h = H::new();
        h.push(
            0,
            OrderedOp::Insert(1, 10),
            OrderedRet::Inserted(None),
            0,
            10,
        )
        .push(
            0,
            OrderedOp::Insert(3, 30),
            OrderedRet::Inserted(None),
            20,
            30,
        )
        .push(
            1,
            OrderedOp::Range(0, 5),
            OrderedRet::Ranged(vec![(1, 10)]),
            5,
            25,
        )
        .push(
            1,
            OrderedOp::Range(2, 4),
            OrderedRet::Ranged(vec![(3, 30)]),
            31,
            40,
        )
        .push(
            1,
            OrderedOp::Range(4, 2),
            OrderedRet::Ranged(vec![]),
            41,
            42,
        );
        assert!(check(&OrderedMapModel::new(), &h).is_ok());
    }

    #[test]
    fn a_scan_missing_a_completed_insert_fails() {
        let mut h = H::new();
        h.push(
            0,
            OrderedOp::Insert(1, 10),
            OrderedRet::Inserted(None),
            0,
            10,
        )
        .push(
            1,
            OrderedOp::Range(0, 5),
            OrderedRet::Ranged(vec![]),
            11,
            20,
        );
        assert!(check(&OrderedMapModel::new(), &h).is_err());
    }

    #[test]
    fn a_scan_out_of_order_or_with_a_wrong_value_fails() {
        let mut h = H::new();
        h.push(
            0,
            OrderedOp::Insert(1, 10),
            OrderedRet::Inserted(None),
            0,
            10,
        )
        .push(
            0,
            OrderedOp::Insert(2, 20),
            OrderedRet::Inserted(None),
            11,
            20,
        )
        .push(
            1,
            OrderedOp::Range(0, 5),
            OrderedRet::Ranged(vec![(2, 20), (1, 10)]),
            21,
            30,
        );
        assert!(check(&OrderedMapModel::new(), &h).is_err());
        let mut h = H::new();
        h.push(
            0,
            OrderedOp::Insert(1, 10),
            OrderedRet::Inserted(None),
            0,
            10,
        )
        .push(
            1,
            OrderedOp::Range(0, 5),
            OrderedRet::Ranged(vec![(1, 11)]),
            21,
            30,
        );
        assert!(check(&OrderedMapModel::new(), &h).is_err());
    }
}
