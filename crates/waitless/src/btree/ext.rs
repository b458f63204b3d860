//! Collection conveniences for [`LockFreeBTree`]: the std traits
//! (`FromIterator`, `Extend`, `IntoIterator for &map`, `Clone`,
//! `PartialEq`/`Eq`, an entry-printing `Debug`) and `clear`, `pop_first`,
//! `pop_last`, as `BTreeMap` and crossbeam's `SkipMap` offer them.
//!
//! Everything here is built on the map's public operations, so it inherits
//! their guarantees: each insert and remove is linearizable and lock-free,
//! and whatever reads the whole map reads one linearizable snapshot
//! ([`LockFreeBTree::iter`]). A bulk operation (`extend`, `clear`) is not
//! atomic as a whole.

use core::fmt;

use super::{LockFreeBTree, Range};

impl<K: Ord, V: Clone> FromIterator<(K, V)> for LockFreeBTree<K, V> {
    /// Builds a map from `(key, value)` pairs; a later pair replaces an
    /// earlier one with the same key, as in `BTreeMap`.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m: LockFreeBTree<&str, u32> = [("b", 2), ("a", 1), ("b", 3)].into_iter().collect();
    /// assert_eq!(m.len(), 2);
    /// assert_eq!(m.get("b"), Some(3));
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let map = Self::new();
        (&map).extend(iter);
        map
    }
}

impl<K: Ord, V: Clone> Extend<(K, V)> for &LockFreeBTree<K, V> {
    /// Inserts every pair through a shared reference (other threads may use
    /// the map meanwhile); each insert is its own linearizable operation.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// (&m).extend([(1, "one"), (2, "two")]);
    /// assert_eq!(m.get(&2), Some("two"));
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<K: Ord, V: Clone> Extend<(K, V)> for LockFreeBTree<K, V> {
    /// Inserts every pair, replacing the values of keys already present.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let mut m = LockFreeBTree::new();
    /// m.extend([(1, 10), (1, 11)]);
    /// assert_eq!(m.get(&1), Some(11));
    /// ```
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        (&*self).extend(iter);
    }
}

impl<'m, K: Ord + Clone, V: Clone> IntoIterator for &'m LockFreeBTree<K, V> {
    type Item = (K, V);
    type IntoIter = Range<'m, K, V>;

    /// The same as [`LockFreeBTree::iter`]: clones of every entry,
    /// ascending, from one linearizable snapshot.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m: LockFreeBTree<u32, u32> = (0..4).map(|i| (i, i * i)).collect();
    /// let mut seen = Vec::new();
    /// for (k, v) in &m {
    ///     seen.push((k, v));
    /// }
    /// assert_eq!(seen, [(0, 0), (1, 1), (2, 4), (3, 9)]);
    /// ```
    fn into_iter(self) -> Range<'m, K, V> {
        self.iter()
    }
}

impl<K: Ord + Clone, V: Clone> Clone for LockFreeBTree<K, V> {
    /// A new map holding a clone of every entry of one snapshot of this one
    /// (the map as it was at one instant during the call, however others
    /// write meanwhile).
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let a = LockFreeBTree::new();
    /// a.insert("k", 1);
    /// let b = a.clone();
    /// b.insert("k", 2);
    /// assert_eq!((a.get("k"), b.get("k")), (Some(1), Some(2)));
    /// ```
    fn clone(&self) -> Self {
        self.iter().collect()
    }
}

impl<K: Ord + Clone, V: PartialEq + Clone> PartialEq for LockFreeBTree<K, V> {
    /// Two maps are equal when they hold the same keys with equal values,
    /// as `BTreeMap`s are. Compares one snapshot of each (taken one after
    /// the other): exact when neither map is written meanwhile.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let a: LockFreeBTree<u32, &str> = [(1, "one"), (2, "two")].into_iter().collect();
    /// let b = LockFreeBTree::new();
    /// b.insert(2, "two");
    /// assert_ne!(a, b);
    /// b.insert(1, "one");
    /// assert_eq!(a, b);
    /// ```
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<K: Ord + Clone, V: Eq + Clone> Eq for LockFreeBTree<K, V> {}

impl<K: Ord + Clone + fmt::Debug, V: Clone + fmt::Debug> fmt::Debug for LockFreeBTree<K, V> {
    /// Prints the entries in key order like `BTreeMap` does (`{k: v, ...}`),
    /// from one snapshot.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m = LockFreeBTree::new();
    /// m.insert(2, "two");
    /// m.insert(1, "one");
    /// assert_eq!(format!("{m:?}"), r#"{1: "one", 2: "two"}"#);
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord + Clone, V: Clone> LockFreeBTree<K, V> {
    /// Removes every entry of one snapshot, one `remove` each: not atomic
    /// as a whole. Afterwards the map holds only keys that other threads
    /// inserted while it ran.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m: LockFreeBTree<u32, u32> = (0..100).map(|i| (i, i)).collect();
    /// m.clear();
    /// assert!(m.is_empty());
    /// ```
    pub fn clear(&self) {
        for (k, _) in self.iter() {
            self.remove(&k);
        }
    }

    /// Removes the first entry and returns it, like `BTreeMap::pop_first`
    /// and `SkipMap::pop_front`: reads the first key of a snapshot and
    /// removes it, again with the next first key if another thread removed
    /// it first. Each call takes a key that no other call takes (a
    /// linearizable `remove`); under concurrent inserts of smaller keys the
    /// key taken was the first at the snapshot, not necessarily when it is
    /// removed. Lock-free: a retry means another thread removed that key.
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m: LockFreeBTree<u32, char> = [(2, 'b'), (1, 'a')].into_iter().collect();
    /// assert_eq!(m.pop_first(), Some((1, 'a')));
    /// assert_eq!(m.pop_first(), Some((2, 'b')));
    /// assert_eq!(m.pop_first(), None);
    /// ```
    pub fn pop_first(&self) -> Option<(K, V)> {
        self.pop_edge(Self::first_key_value)
    }

    /// Removes the last entry and returns it, like `BTreeMap::pop_last` and
    /// `SkipMap::pop_back` (the same guarantees as
    /// [`pop_first`](Self::pop_first)).
    ///
    /// ```
    /// use waitless::btree::LockFreeBTree;
    ///
    /// let m: LockFreeBTree<u32, char> = [(2, 'b'), (1, 'a')].into_iter().collect();
    /// assert_eq!(m.pop_last(), Some((2, 'b')));
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn pop_last(&self) -> Option<(K, V)> {
        self.pop_edge(Self::last_key_value)
    }

    /// Removes the key `edge` reads, until a removal succeeds or the map is
    /// empty.
    fn pop_edge(&self, edge: impl Fn(&Self) -> Option<(K, V)>) -> Option<(K, V)> {
        loop {
            let (k, _) = edge(self)?;
            if let Some(v) = self.remove(&k) {
                return Some((k, v));
            }
        }
    }
}
