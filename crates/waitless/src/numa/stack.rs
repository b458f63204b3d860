//! [`NodeAwareStack`]: the Treiber stack of [`crate::stack`] with one
//! elimination array per NUMA node.
//!
//! It *is* a [`LockFreeStack`]: the head CAS, the epoch reclamation, the
//! node cache and the linearization points are that stack's code, run
//! through its crate-private `push_with`/`pop_with` hook. What changes is
//! where a push and a pop whose head CAS failed meet: in the elimination
//! array of the node the thread runs on ([`current_node`](super::current_node)),
//! so an eliminated pair exchanges its node through lines that stay on one
//! socket, and threads of different nodes never contend for the same
//! exchange slots (Hendler, Shavit & Yerushalmi, SPAA 2004, pick slots at
//! random from one shared array; on a NUMA machine a random slot is remote
//! with probability `1 - 1/nodes`). The node is looked up only on that
//! contended path. The plain stack keeps that path out of line (`#[cold]`,
//! never inlined), so the hook's code cannot change how the uncontended
//! path is compiled: an uncontended operation runs exactly the plain
//! stack's machine code. When the retry loop and the hook were inlined
//! next to the first CAS, the hook's extra live values made the compiler
//! spill registers around the uncontended CASes, and this stack ran at
//! 0.76–0.84× the plain one with 3.6 % more instructions (`docs/numa.md`
//! §4.1).
//!
//! ```
//! use waitless::numa::NodeAwareStack;
//!
//! let stack = NodeAwareStack::new();
//! stack.push(1).unwrap();
//! stack.push(2).unwrap();
//! let guard = stack.enter();
//! assert_eq!(stack.pop(&guard), Some(2));
//! assert_eq!(stack.pop(&guard), Some(1));
//! assert_eq!(stack.pop(&guard), None);
//! ```

use core::fmt;

use super::topology::{node_hint, Topology};
use crate::stack::{Elimination, EpochGuard, LockFreeStack, StackError, StackStats};

/// A lock-free LIFO stack with per-node elimination arrays. Same API as
/// [`LockFreeStack`]; see the [module docs](crate::numa).
///
/// ```
/// use waitless::numa::NodeAwareStack;
/// let s = NodeAwareStack::with_nodes(2);
/// s.push(1).unwrap();
/// assert_eq!(s.pop(&s.enter()), Some(1));
/// ```
pub struct NodeAwareStack<T> {
    stack: LockFreeStack<T>,
    /// One elimination array per node (the plain stack's own array is not
    /// used).
    arrays: Box<[Elimination<T>]>,
}

/// A pinned section on one [`NodeAwareStack`]; `!Send`.
///
/// ```compile_fail
/// let s = waitless::numa::NodeAwareStack::<u8>::new();
/// let g = s.enter();
/// std::thread::scope(|sc| {
///     sc.spawn(move || drop(g));
/// });
/// ```
#[must_use]
pub struct NodeStackGuard<'a, T> {
    guard: EpochGuard<'a, T>,
}

impl<T> fmt::Debug for NodeStackGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeStackGuard").finish_non_exhaustive()
    }
}

impl<T> NodeAwareStack<T> {
    /// An empty stack with one elimination array per node of
    /// [`Topology::current`].
    ///
    /// ```
    /// use waitless::numa::NodeAwareStack;
    /// let s: NodeAwareStack<u8> = NodeAwareStack::new();
    /// assert!(s.nodes() >= 1);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_nodes(Topology::current().num_nodes())
    }

    /// An empty stack with `nodes` elimination arrays (at least one); a
    /// thread uses array [`current_node`](super::current_node) modulo
    /// `nodes` (re-read from the OS every 64 contended operations).
    ///
    /// ```
    /// use waitless::numa::NodeAwareStack;
    /// let s: NodeAwareStack<u8> = NodeAwareStack::with_nodes(0);
    /// assert_eq!(s.nodes(), 1); // at least one
    /// ```
    #[must_use]
    pub fn with_nodes(nodes: usize) -> Self {
        NodeAwareStack {
            stack: LockFreeStack::new(),
            arrays: (0..nodes.max(1)).map(|_| Elimination::new()).collect(),
        }
    }

    /// The number of elimination arrays.
    ///
    /// ```
    /// use waitless::numa::NodeAwareStack;
    /// assert_eq!(NodeAwareStack::<u8>::with_nodes(4).nodes(), 4);
    /// ```
    #[must_use]
    pub fn nodes(&self) -> usize {
        self.arrays.len()
    }

    /// The calling thread's node's array (the elimination hook; runs only
    /// after a failed head CAS, in the plain stack's out-of-line path).
    fn local_array(&self) -> Option<&Elimination<T>> {
        Some(&self.arrays[node_hint() % self.arrays.len()])
    }

    /// Pins the current thread on this stack (see
    /// [`LockFreeStack::enter`]).
    ///
    /// ```
    /// use waitless::numa::NodeAwareStack;
    /// let s = NodeAwareStack::with_nodes(1);
    /// s.push(1).unwrap();
    /// s.push(2).unwrap();
    /// let g = s.enter(); // one pin for several pops
    /// assert_eq!((s.pop(&g), s.pop(&g)), (Some(2), Some(1)));
    /// ```
    #[inline]
    pub fn enter(&self) -> NodeStackGuard<'_, T> {
        NodeStackGuard {
            guard: self.stack.enter(),
        }
    }

    /// Pushes `value`; gives it back if no node can be allocated.
    ///
    /// ```
    /// use waitless::numa::NodeAwareStack;
    /// let s = NodeAwareStack::with_nodes(2);
    /// assert!(s.push("a").is_ok());
    /// assert_eq!(s.stats().successful_pushes, 1);
    /// ```
    pub fn push(&self, value: T) -> Result<(), StackError<T>> {
        self.stack.push_with(value, || self.local_array())
    }

    /// Pops the most recently pushed value, or `None` if the stack is empty.
    ///
    /// # Panics
    /// If `guard` comes from another stack's [`enter`](Self::enter).
    ///
    /// ```
    /// use waitless::numa::NodeAwareStack;
    /// let s = NodeAwareStack::with_nodes(2);
    /// assert_eq!(s.pop(&s.enter()), None::<u8>);
    /// s.push(7).unwrap();
    /// assert_eq!(s.pop(&s.enter()), Some(7));
    /// ```
    pub fn pop(&self, guard: &NodeStackGuard<'_, T>) -> Option<T> {
        self.stack.pop_with(&guard.guard, || self.local_array())
    }

    /// Seals this thread's retired nodes, advances the epoch if it is safe
    /// and frees what became safe.
    ///
    /// ```
    /// use waitless::numa::NodeAwareStack;
    /// let s = NodeAwareStack::with_nodes(1);
    /// s.push(1).unwrap();
    /// assert_eq!(s.pop(&s.enter()), Some(1));
    /// for _ in 0..3 {
    ///     s.advance_epoch();
    /// }
    /// assert_eq!(s.stats().retired_nodes, 0);
    /// ```
    pub fn advance_epoch(&self) {
        self.stack.advance_epoch();
    }

    /// The stack's counters (see [`StackStats`]).
    ///
    /// ```
    /// use waitless::numa::NodeAwareStack;
    /// let s = NodeAwareStack::with_nodes(1);
    /// s.push(1).unwrap();
    /// s.push(2).unwrap();
    /// assert_eq!(s.pop(&s.enter()), Some(2));
    /// let st = s.stats();
    /// assert_eq!((st.successful_pushes, st.successful_pops, st.active_nodes), (2, 1, 1));
    /// ```
    #[must_use]
    pub fn stats(&self) -> StackStats {
        self.stack.stats()
    }
}

impl<T> Default for NodeAwareStack<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for NodeAwareStack<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeAwareStack")
            .field("nodes", &self.nodes())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T> Drop for NodeAwareStack<T> {
    fn drop(&mut self) {
        // `&mut self`: no operation is in flight, so no node is offered; the
        // values still in the list are dropped by the inner stack.
        debug_assert!(self.arrays.iter().all(Elimination::is_idle));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::numa::set_node_override;

    #[test]
    fn each_node_meets_in_its_own_array() {
        let s = NodeAwareStack::<u8>::with_nodes(3);
        let prev = set_node_override(None);
        for node in [0, 1, 2, 4] {
            set_node_override(Some(node));
            let got = s.local_array().expect("always an array") as *const Elimination<u8>;
            assert_eq!(got, &s.arrays[node % 3] as *const _, "node {node}");
        }
        set_node_override(prev);
        assert_eq!(s.nodes(), 3);
    }
}
