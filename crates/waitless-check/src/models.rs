//! Sequential models of the structures waitless provides.
//!
//! All of them take element types `T: Clone + Eq + Hash + Debug`. Histories
//! check fastest when every inserted value is unique (e.g.
//! `thread << 32 | i`): the checker then has few candidate orders.

use std::collections::VecDeque;
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::marker::PhantomData;

use crate::history::Operation;
use crate::model::{partition_by_key, Model, Partition};

macro_rules! phantom_model {
    ($name:ident < $($p:ident),+ >) => {
        impl<$($p),+> Clone for $name<$($p),+> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<$($p),+> Copy for $name<$($p),+> {}
        impl<$($p),+> Default for $name<$($p),+> {
            fn default() -> Self {
                Self::new()
            }
        }
        impl<$($p),+> fmt::Debug for $name<$($p),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }
    };
}

// ---------------------------------------------------------------- stack

/// A stack operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StackOp<T> {
    /// Push a value.
    Push(T),
    /// Pop the top value.
    Pop,
}

/// A stack operation's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StackRet<T> {
    /// The push happened.
    Pushed,
    /// The popped value, `None` if the stack was empty.
    Popped(Option<T>),
}

/// An unbounded LIFO stack. State: the elements, bottom first.
///
/// ```
/// use waitless_check::{check, History, StackModel, StackOp, StackRet};
/// let mut h = History::new();
/// h.push(0, StackOp::Push(1), StackRet::Pushed, 0, 10)
///     .push(1, StackOp::Pop, StackRet::Popped(Some(1)), 20, 30)
///     .push(1, StackOp::Pop, StackRet::Popped(Some(1)), 40, 50); // popped twice
/// assert!(check(&StackModel::new(), &h).is_err());
/// ```
pub struct StackModel<T> {
    _t: PhantomData<fn() -> T>,
}
phantom_model!(StackModel<T>);

impl<T> StackModel<T> {
    /// An empty unbounded stack.
    #[must_use]
    pub const fn new() -> Self {
        StackModel { _t: PhantomData }
    }
}

impl<T: Clone + Eq + Hash + Debug> Model for StackModel<T> {
    type Input = StackOp<T>;
    type Output = StackRet<T>;
    type State = Vec<T>;

    fn init(&self) -> Vec<T> {
        Vec::new()
    }

    fn step(&self, s: &Vec<T>, input: &StackOp<T>, output: &StackRet<T>) -> Option<Vec<T>> {
        match (input, output) {
            (StackOp::Push(v), StackRet::Pushed) => {
                let mut n = s.clone();
                n.push(v.clone());
                Some(n)
            }
            (StackOp::Pop, StackRet::Popped(got)) => {
                if s.last() == got.as_ref() {
                    let mut n = s.clone();
                    n.pop();
                    Some(n)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn step_pending(&self, s: &Vec<T>, input: &StackOp<T>) -> Option<Vec<T>> {
        let mut n = s.clone();
        match input {
            StackOp::Push(v) => n.push(v.clone()),
            StackOp::Pop => {
                n.pop();
            }
        }
        Some(n)
    }

    fn describe(&self, s: &Vec<T>) -> Option<String> {
        Some(format!("stack (bottom..top) {s:?}"))
    }
}

// ---------------------------------------------------------------- queue

/// A queue operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QueueOp<T> {
    /// Enqueue a value.
    Enqueue(T),
    /// Dequeue the oldest value.
    Dequeue,
}

/// A queue operation's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum QueueRet<T> {
    /// The value was enqueued.
    Enqueued,
    /// The queue was full; nothing changed.
    Full,
    /// The dequeued value, `None` if the queue was empty.
    Dequeued(Option<T>),
}

/// A FIFO queue, bounded or not. State: the elements, oldest first.
///
/// With a capacity, `Full` is accepted only when the queue holds exactly
/// `cap` elements and `Enqueued` only when it holds fewer; `Dequeued(None)`
/// only when it is empty. A queue that may answer `Full` spuriously does not
/// satisfy this model.
///
/// ```
/// use waitless_check::{check, History, QueueModel, QueueOp, QueueRet};
/// let mut h = History::new();
/// h.push(0, QueueOp::Enqueue(1), QueueRet::Enqueued, 0, 10)
///     .push(0, QueueOp::Enqueue(2), QueueRet::Full, 20, 30); // only 1 of 2 used
/// assert!(check(&QueueModel::bounded(2), &h).is_err());
/// assert!(check(&QueueModel::bounded(1), &h).is_ok());
/// ```
pub struct QueueModel<T> {
    cap: Option<usize>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for QueueModel<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for QueueModel<T> {}
impl<T> fmt::Debug for QueueModel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cap {
            Some(c) => write!(f, "QueueModel::bounded({c})"),
            None => f.write_str("QueueModel::unbounded()"),
        }
    }
}

impl<T> QueueModel<T> {
    /// A queue holding at most `cap` elements.
    #[must_use]
    pub const fn bounded(cap: usize) -> Self {
        QueueModel {
            cap: Some(cap),
            _t: PhantomData,
        }
    }

    /// A queue that is never full (answering `Full` is always wrong).
    #[must_use]
    pub const fn unbounded() -> Self {
        QueueModel {
            cap: None,
            _t: PhantomData,
        }
    }

    /// The capacity, `None` if unbounded.
    #[must_use]
    pub const fn capacity(&self) -> Option<usize> {
        self.cap
    }

    fn has_room(&self, len: usize) -> bool {
        self.cap.map_or(true, |c| len < c)
    }
}

impl<T: Clone + Eq + Hash + Debug> Model for QueueModel<T> {
    type Input = QueueOp<T>;
    type Output = QueueRet<T>;
    type State = VecDeque<T>;

    fn init(&self) -> VecDeque<T> {
        VecDeque::new()
    }

    fn step(
        &self,
        s: &VecDeque<T>,
        input: &QueueOp<T>,
        output: &QueueRet<T>,
    ) -> Option<VecDeque<T>> {
        match (input, output) {
            (QueueOp::Enqueue(v), QueueRet::Enqueued) if self.has_room(s.len()) => {
                let mut n = s.clone();
                n.push_back(v.clone());
                Some(n)
            }
            (QueueOp::Enqueue(_), QueueRet::Full) if !self.has_room(s.len()) => Some(s.clone()),
            (QueueOp::Dequeue, QueueRet::Dequeued(got)) if s.front() == got.as_ref() => {
                let mut n = s.clone();
                n.pop_front();
                Some(n)
            }
            _ => None,
        }
    }

    fn step_pending(&self, s: &VecDeque<T>, input: &QueueOp<T>) -> Option<VecDeque<T>> {
        let mut n = s.clone();
        match input {
            QueueOp::Enqueue(v) => {
                if self.has_room(n.len()) {
                    n.push_back(v.clone());
                }
            }
            QueueOp::Dequeue => {
                n.pop_front();
            }
        }
        Some(n)
    }

    fn describe(&self, s: &VecDeque<T>) -> Option<String> {
        Some(format!("queue (oldest first) {s:?}"))
    }
}

// ---------------------------------------------------------------- map

/// A map operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MapOp<K, V> {
    /// Insert or replace the value of a key.
    Insert(K, V),
    /// Read the value of a key.
    Get(K),
    /// Remove a key.
    Remove(K),
}

impl<K, V> MapOp<K, V> {
    /// The key this operation touches.
    #[must_use]
    pub fn key(&self) -> &K {
        match self {
            MapOp::Insert(k, _) | MapOp::Get(k) | MapOp::Remove(k) => k,
        }
    }
}

/// A map operation's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MapRet<V> {
    /// The previous value of the key, if any.
    Inserted(Option<V>),
    /// The value read, if any.
    Got(Option<V>),
    /// The removed value, if any.
    Removed(Option<V>),
}

/// A map, checked per key (operations on different keys are independent, so
/// the history is split by key: P-compositionality). State: the `(key,
/// value)` pairs present.
///
/// ```
/// use waitless_check::{check, History, MapModel, MapOp, MapRet};
/// let mut h = History::new();
/// h.push(0, MapOp::Insert(1, 10), MapRet::Inserted(None), 0, 10)
///     .push(1, MapOp::Get(2), MapRet::Got(None), 0, 10)
///     .push(1, MapOp::Get(1), MapRet::Got(None), 20, 30); // misses the insert
/// let err = check(&MapModel::new(), &h).unwrap_err();
/// assert_eq!(err.partition(), "key 1");
/// ```
pub struct MapModel<K, V> {
    _t: PhantomData<fn() -> (K, V)>,
}
phantom_model!(MapModel<K, V>);

impl<K, V> MapModel<K, V> {
    /// An empty map.
    #[must_use]
    pub const fn new() -> Self {
        MapModel { _t: PhantomData }
    }
}

impl<K, V> Model for MapModel<K, V>
where
    K: Clone + Eq + Hash + Debug,
    V: Clone + Eq + Hash + Debug,
{
    type Input = MapOp<K, V>;
    type Output = MapRet<V>;
    /// Association list; one entry per key present (at most one per
    /// partition).
    type State = Vec<(K, V)>;

    fn init(&self) -> Self::State {
        Vec::new()
    }

    fn step(
        &self,
        s: &Self::State,
        input: &MapOp<K, V>,
        output: &MapRet<V>,
    ) -> Option<Self::State> {
        let pos = s.iter().position(|(k, _)| k == input.key());
        let cur = pos.map(|p| &s[p].1);
        match (input, output) {
            (MapOp::Insert(k, v), MapRet::Inserted(prev)) if cur == prev.as_ref() => {
                let mut n = s.clone();
                match pos {
                    Some(p) => n[p].1 = v.clone(),
                    None => n.push((k.clone(), v.clone())),
                }
                Some(n)
            }
            (MapOp::Get(_), MapRet::Got(got)) if cur == got.as_ref() => Some(s.clone()),
            (MapOp::Remove(_), MapRet::Removed(prev)) if cur == prev.as_ref() => {
                let mut n = s.clone();
                if let Some(p) = pos {
                    n.remove(p);
                }
                Some(n)
            }
            _ => None,
        }
    }

    fn step_pending(&self, s: &Self::State, input: &MapOp<K, V>) -> Option<Self::State> {
        let pos = s.iter().position(|(k, _)| k == input.key());
        let mut n = s.clone();
        match (input, pos) {
            (MapOp::Insert(_, v), Some(p)) => n[p].1 = v.clone(),
            (MapOp::Insert(k, v), None) => n.push((k.clone(), v.clone())),
            (MapOp::Remove(_), Some(p)) => {
                n.remove(p);
            }
            _ => {}
        }
        Some(n)
    }

    fn partition(&self, ops: &[Operation<MapOp<K, V>, MapRet<V>>]) -> Option<Vec<Partition>> {
        partition_by_key(ops, |i| Some(i.key().clone()))
    }

    fn describe(&self, s: &Self::State) -> Option<String> {
        Some(format!("map {s:?}"))
    }
}

// ---------------------------------------------------------------- set

/// A set operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SetOp<T> {
    /// Insert an element; answers whether it was absent.
    Insert(T),
    /// Remove an element; answers whether it was present.
    Remove(T),
    /// Answers whether the element is present.
    Contains(T),
}

impl<T> SetOp<T> {
    /// The element this operation touches.
    #[must_use]
    pub fn elem(&self) -> &T {
        match self {
            SetOp::Insert(x) | SetOp::Remove(x) | SetOp::Contains(x) => x,
        }
    }
}

/// A set operation's answer (see [`SetOp`] for what it means).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetRet(pub bool);

/// A set, checked per element (P-compositionality). State: the elements
/// present.
pub struct SetModel<T> {
    _t: PhantomData<fn() -> T>,
}
phantom_model!(SetModel<T>);

impl<T> SetModel<T> {
    /// An empty set.
    #[must_use]
    pub const fn new() -> Self {
        SetModel { _t: PhantomData }
    }
}

impl<T: Clone + Eq + Hash + Debug> Model for SetModel<T> {
    type Input = SetOp<T>;
    type Output = SetRet;
    type State = Vec<T>;

    fn init(&self) -> Vec<T> {
        Vec::new()
    }

    fn step(&self, s: &Vec<T>, input: &SetOp<T>, output: &SetRet) -> Option<Vec<T>> {
        let pos = s.iter().position(|x| x == input.elem());
        match (input, pos) {
            (SetOp::Insert(x), None) if output.0 => {
                let mut n = s.clone();
                n.push(x.clone());
                Some(n)
            }
            (SetOp::Remove(_), Some(p)) if output.0 => {
                let mut n = s.clone();
                n.remove(p);
                Some(n)
            }
            (SetOp::Insert(_), Some(_)) | (SetOp::Remove(_), None) if !output.0 => Some(s.clone()),
            (SetOp::Contains(_), p) if p.is_some() == output.0 => Some(s.clone()),
            _ => None,
        }
    }

    fn step_pending(&self, s: &Vec<T>, input: &SetOp<T>) -> Option<Vec<T>> {
        let pos = s.iter().position(|x| x == input.elem());
        let mut n = s.clone();
        match (input, pos) {
            (SetOp::Insert(x), None) => n.push(x.clone()),
            (SetOp::Remove(_), Some(p)) => {
                n.remove(p);
            }
            _ => {}
        }
        Some(n)
    }

    fn partition(&self, ops: &[Operation<SetOp<T>, SetRet>]) -> Option<Vec<Partition>> {
        partition_by_key(ops, |i| Some(i.elem().clone()))
    }

    fn describe(&self, s: &Vec<T>) -> Option<String> {
        Some(format!("set {s:?}"))
    }
}

// ---------------------------------------------------------------- register

/// A register operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOp<T> {
    /// Overwrite the value.
    Write(T),
    /// Read the value.
    Read,
}

/// A register operation's answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegisterRet<T> {
    /// The write happened.
    Written,
    /// The value read.
    Read(T),
}

/// A read/write register holding one value. State: the value.
#[derive(Clone, Debug)]
pub struct RegisterModel<T> {
    initial: T,
}

impl<T> RegisterModel<T> {
    /// A register that starts out holding `initial`.
    #[must_use]
    pub const fn new(initial: T) -> Self {
        RegisterModel { initial }
    }
}

impl<T: Clone + Eq + Hash + Debug> Model for RegisterModel<T> {
    type Input = RegisterOp<T>;
    type Output = RegisterRet<T>;
    type State = T;

    fn init(&self) -> T {
        self.initial.clone()
    }

    fn step(&self, s: &T, input: &RegisterOp<T>, output: &RegisterRet<T>) -> Option<T> {
        match (input, output) {
            (RegisterOp::Write(v), RegisterRet::Written) => Some(v.clone()),
            (RegisterOp::Read, RegisterRet::Read(v)) if v == s => Some(s.clone()),
            _ => None,
        }
    }

    fn step_pending(&self, s: &T, input: &RegisterOp<T>) -> Option<T> {
        match input {
            RegisterOp::Write(v) => Some(v.clone()),
            RegisterOp::Read => Some(s.clone()),
        }
    }

    fn describe(&self, s: &T) -> Option<String> {
        Some(format!("register {s:?}"))
    }
}
