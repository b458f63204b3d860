//! Drop accounting for tests of structures that own their values: did the
//! structure drop every value it was given, and none of them twice?
//!
//! ```
//! use waitless_check::DropLedger;
//!
//! let ledger = DropLedger::new(3);
//! let mut v = vec![ledger.track(0), ledger.track(1)];
//! assert_eq!(ledger.live(), 2);
//! v.pop();
//! assert_eq!(ledger.dropped(), 1);
//! assert!(ledger.is_dropped(1) && !ledger.is_dropped(0));
//! drop(v);
//! ledger.assert_all_dropped();
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counts values created and dropped, and remembers which ids were dropped.
///
/// Cheap to clone (an `Arc`); every [`Tracked`] value holds a clone, so the
/// ledger outlives the values it tracks. A second drop of the same id
/// panics (a double free in the structure under test), as does tracking an
/// id twice while the first is alive.
#[derive(Clone)]
pub struct DropLedger {
    inner: Arc<Inner>,
}

struct Inner {
    created: AtomicUsize,
    dropped: AtomicUsize,
    /// `alive[id]`: a [`Tracked`] with this id exists.
    alive: Vec<AtomicBool>,
    /// `ever[id]`: the id was tracked at least once.
    ever: Vec<AtomicBool>,
}

impl DropLedger {
    /// A ledger for ids `0..capacity`.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let flags = || (0..capacity).map(|_| AtomicBool::new(false)).collect();
        Self {
            inner: Arc::new(Inner {
                created: AtomicUsize::new(0),
                dropped: AtomicUsize::new(0),
                alive: flags(),
                ever: flags(),
            }),
        }
    }

    /// The number of ids this ledger accepts.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.inner.alive.len()
    }

    /// A new value with this id.
    ///
    /// # Panics
    /// If `id >= capacity`, or a value with this id is alive.
    pub fn track(&self, id: usize) -> Tracked {
        assert!(
            id < self.capacity(),
            "id {id} is outside the ledger's {} ids",
            self.capacity()
        );
        // Relaxed counters: read after the threads that drop values joined.
        let was = self.inner.alive[id].swap(true, Ordering::Relaxed);
        assert!(!was, "id {id} tracked twice while alive");
        self.inner.ever[id].store(true, Ordering::Relaxed);
        self.inner.created.fetch_add(1, Ordering::Relaxed);
        Tracked {
            id,
            ledger: self.clone(),
        }
    }

    /// Values created so far.
    #[must_use]
    pub fn created(&self) -> usize {
        self.inner.created.load(Ordering::Relaxed)
    }

    /// Values dropped so far.
    #[must_use]
    pub fn dropped(&self) -> usize {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Values created and not yet dropped.
    #[must_use]
    pub fn live(&self) -> usize {
        self.created() - self.dropped()
    }

    /// Whether a value with this id was tracked and is no longer alive.
    #[must_use]
    pub fn is_dropped(&self, id: usize) -> bool {
        self.inner.ever[id].load(Ordering::Relaxed) && !self.inner.alive[id].load(Ordering::Relaxed)
    }

    /// The ids tracked and still alive, ascending.
    #[must_use]
    pub fn live_ids(&self) -> Vec<usize> {
        (0..self.capacity())
            .filter(|&i| self.inner.alive[i].load(Ordering::Relaxed))
            .collect()
    }

    /// # Panics
    /// Naming the first few ids still alive, if any value is.
    pub fn assert_all_dropped(&self) {
        let live = self.live_ids();
        assert!(
            live.is_empty(),
            "{} of {} values were never dropped (leaked), e.g. ids {:?}",
            live.len(),
            self.created(),
            &live[..live.len().min(8)]
        );
    }
}

impl fmt::Debug for DropLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropLedger")
            .field("created", &self.created())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// A value whose drop is recorded in its [`DropLedger`]. Equal when the ids
/// are.
pub struct Tracked {
    id: usize,
    ledger: DropLedger,
}

impl Tracked {
    /// Its id.
    #[must_use]
    pub fn id(&self) -> usize {
        self.id
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let inner = &self.ledger.inner;
        let was = inner.alive[self.id].swap(false, Ordering::Relaxed);
        assert!(was, "id {} dropped twice", self.id);
        inner.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Tracked {}

impl fmt::Debug for Tracked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tracked({})", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_names_live_values() {
        let l = DropLedger::new(4);
        let a = l.track(0);
        let b = l.track(3);
        assert_eq!((l.created(), l.dropped(), l.live()), (2, 0, 2));
        assert_eq!(l.live_ids(), vec![0, 3]);
        drop(a);
        assert!(l.is_dropped(0) && !l.is_dropped(3) && !l.is_dropped(1));
        assert_eq!(b.id(), 3);
        drop(b);
        l.assert_all_dropped();
        // An id may be reused once its value is gone.
        let c = l.track(0);
        assert_eq!(l.created(), 3);
        drop(c);
    }

    #[test]
    #[should_panic(expected = "never dropped")]
    fn a_leak_is_reported() {
        let l = DropLedger::new(2);
        std::mem::forget(l.track(1));
        l.assert_all_dropped();
    }

    #[test]
    #[should_panic(expected = "tracked twice")]
    fn a_duplicate_live_id_is_rejected() {
        let l = DropLedger::new(2);
        let _a = l.track(1);
        let _b = l.track(1);
    }

    #[test]
    fn drops_from_many_threads_are_all_counted() {
        let l = DropLedger::new(400);
        let values: Vec<Tracked> = (0..400).map(|i| l.track(i)).collect();
        let mut chunks: Vec<Vec<Tracked>> = Vec::new();
        let mut it = values.into_iter();
        for _ in 0..4 {
            chunks.push(it.by_ref().take(100).collect());
        }
        std::thread::scope(|s| {
            for c in chunks {
                s.spawn(move || drop(c));
            }
        });
        assert_eq!(l.dropped(), 400);
        l.assert_all_dropped();
    }
}
