//! A test-only model of the per-leaf write protocol of `docs/btree.md`
//! ("Next: writers on different leaves in parallel"), small enough to
//! model-check. The map does not call it: it is the protocol's core,
//! checked with loom, std threads and Miri before it was built into the
//! tree (session 7, `mod.rs`), with the corrections this model forced on
//! the written design (see the doc's "Status after session 5"). The map's
//! `stamp` and snapshot mirror this model's.
//!
//! Simplifications against the real tree: one inner level (the root
//! version holds the separators and the leaf handles directly, any width),
//! `u64` keys with no values, leaves of at most [`CAP`] keys, inserts only
//! (a leaf that would overflow is split first). What is modelled as in the
//! design: the version clock (writers advance it), pending/stamped versions, leaf handles with a
//! frozen mark, a split as a *content-preserving* shape change that any
//! thread completes with one root CAS, linearizable snapshot scans by
//! version timestamps, and retirement of replaced versions through the
//! epoch collector after their successor is stamped.

use crate::epoch::{Collector, Guard};
use crate::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use crate::sync::UnsafeCell;
use core::ptr;

/// Most keys in a leaf (small, so that splits happen in every model).
pub(super) const CAP: usize = 2;
/// The timestamp of a version that is not yet stamped.
const PENDING: u64 = 0;

/// An immutable version of a leaf (apart from `ts`). The keys sit in a
/// (loom) cell that `Drop` writes, so a version freed while a reader still
/// reads it is reported by loom as a race and by Miri as a use after free.
struct LeafVer {
    ts: AtomicU64,
    /// The version this one replaced; followed only by scans whose
    /// timestamp is below `ts`.
    prev: *mut LeafVer,
    keys: UnsafeCell<Vec<u64>>,
}

impl Drop for LeafVer {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other reference; loom reports any read
        // of the cell that is not ordered before this write.
        self.keys.with_mut(|k| unsafe { (*k).clear() });
    }
}

/// A leaf handle: the current version, low bit set once frozen.
struct Handle {
    cur: AtomicPtr<LeafVer>,
}

/// A version of the (single) inner level: child `i` holds the keys `k` with
/// `seps[i - 1] <= k < seps[i]`.
struct RootVer {
    ts: AtomicU64,
    prev: *mut RootVer,
    seps: Vec<u64>,
    kids: Vec<*mut Handle>,
}

fn frozen(p: *mut LeafVer) -> bool {
    p.addr() & 1 == 1
}
fn unmark(p: *mut LeafVer) -> *mut LeafVer {
    p.map_addr(|a| a & !1)
}
fn mark(p: *mut LeafVer) -> *mut LeafVer {
    p.map_addr(|a| a | 1)
}

fn new_ver(ts: u64, prev: *mut LeafVer, keys: Vec<u64>) -> *mut LeafVer {
    Box::into_raw(Box::new(LeafVer {
        ts: AtomicU64::new(ts),
        prev,
        keys: UnsafeCell::new(keys),
    }))
}

/// The model tree.
pub(super) struct Model {
    clock: AtomicU64,
    root: AtomicPtr<RootVer>,
    /// Failed handle CASes (std atomic: statistics, not synchronization).
    pub(super) leaf_cas_failures: std::sync::atomic::AtomicUsize,
    /// Successful root CASes.
    pub(super) root_swaps: std::sync::atomic::AtomicUsize,
    collector: Collector,
}

// SAFETY: all shared mutation is through atomics; versions are immutable
// once published (apart from their atomic `ts`) and freed through the
// collector.
unsafe impl Send for Model {}
// SAFETY: as above.
unsafe impl Sync for Model {}

impl Model {
    /// A model whose leaves hold `leaves` (each sorted, at most `CAP`, the
    /// first keys of leaves after the first are the separators).
    pub(super) fn new(leaves: &[&[u64]]) -> Self {
        let mut seps = Vec::new();
        let mut kids = Vec::new();
        for (i, l) in leaves.iter().enumerate() {
            assert!(l.len() <= CAP && !l.is_empty());
            if i > 0 {
                seps.push(l[0]);
            }
            kids.push(Box::into_raw(Box::new(Handle {
                cur: AtomicPtr::new(new_ver(1, ptr::null_mut(), l.to_vec())),
            })));
        }
        let root = Box::into_raw(Box::new(RootVer {
            ts: AtomicU64::new(1),
            prev: ptr::null_mut(),
            seps,
            kids,
        }));
        Model {
            clock: AtomicU64::new(1),
            root: AtomicPtr::new(root),
            leaf_cas_failures: std::sync::atomic::AtomicUsize::new(0),
            root_swaps: std::sync::atomic::AtomicUsize::new(0),
            collector: Collector::new(),
        }
    }

    /// Stamps `ts` if pending (one CAS try: if it fails, somebody else
    /// stamped it) and returns the stamp.
    fn stamp(&self, ts: &AtomicU64) -> u64 {
        // Writers advance the clock (session 8; sessions 5–7 had scans bump
        // it, with a SeqCst fence on both sides). A stamp is the value
        // written by one clock increment (an RMW: the clock is written only
        // by RMWs), then one CAS try on `ts`. The version was installed
        // (our CAS) or read (a helper's load of the handle) before the
        // increment; a scan whose Acquire load of the clock returns
        // `s >= stamp` reads from the release sequence of this increment,
        // so its later handle load finds the version or a newer one. A scan
        // that read an older value sees the version stamped `> s`. SeqCst
        // everywhere else keeps the model simple; no fence is needed.
        let t = ts.load(Ordering::SeqCst);
        if t != PENDING {
            return t;
        }
        let now = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        match ts.compare_exchange(PENDING, now, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => now,
            Err(t) => t,
        }
    }

    /// The current root version, stamped (writers must stamp it before
    /// they stamp a version of one of its new handles).
    fn root<'g>(&self, _g: &'g Guard<'_>) -> (*mut RootVer, &'g RootVer) {
        // SeqCst: see `stamp`.
        let p = self.root.load(Ordering::SeqCst);
        // SAFETY: root versions are retired only after being replaced, and
        // the guard was pinned before this load.
        let r = unsafe { &*p };
        self.stamp(&r.ts);
        (p, r)
    }

    fn route(r: &RootVer, k: u64) -> usize {
        r.seps.partition_point(|&s| s <= k)
    }

    /// Whether the map holds `k` (a lookup: writes only a pending stamp).
    pub(super) fn contains(&self, k: u64) -> bool {
        let g = self.collector.pin();
        // SeqCst: see `stamp`. A lookup need not stamp the root: a split
        // does not change the contents.
        // SAFETY: see `root`.
        let r = unsafe { &*self.root.load(Ordering::SeqCst) };
        // SAFETY: handles of a pinned root version are retired only after
        // that version is replaced.
        let h = unsafe { &*r.kids[Self::route(r, k)] };
        // SAFETY: the handle's versions are retired after their successor
        // is stamped, which is after this load could read them.
        let v = unsafe { &*unmark(h.cur.load(Ordering::SeqCst)) };
        self.stamp(&v.ts);
        // SAFETY: reading the immutable keys of a pinned version.
        let found = v.keys.with(|ks| unsafe { (*ks).contains(&k) });
        drop(g);
        found
    }

    /// Every key, in one snapshot: the contents at the scan's clock load.
    pub(super) fn scan(&self) -> Vec<u64> {
        let _g = self.collector.pin();
        // Acquire: see `stamp`. The scan's linearization point; a load, so
        // a scan that meets no pending version writes nothing shared.
        let s = self.clock.load(Ordering::Acquire);
        // SAFETY: see `root`.
        let mut r = unsafe { &*self.root.load(Ordering::SeqCst) };
        while self.stamp(&r.ts) > s {
            // SAFETY: `r` was stamped after our load, so the writer that
            // replaced `r.prev` retired it after our pin: still alive.
            r = unsafe { &*r.prev };
        }
        let mut out = Vec::new();
        for &h in &r.kids {
            // SAFETY: handles of a pinned root version are alive.
            let mut v = unsafe { &*unmark((*h).cur.load(Ordering::SeqCst)) };
            while self.stamp(&v.ts) > s {
                // SAFETY: as for root versions: `v` stamped after our load,
                // so its predecessor was retired after our pin.
                v = unsafe { &*v.prev };
            }
            // SAFETY: reading the immutable keys of a pinned version.
            v.keys.with(|ks| out.extend_from_slice(unsafe { &*ks }));
        }
        out
    }

    /// Inserts `k`; false if it was present.
    pub(super) fn insert(&self, k: u64) -> bool {
        loop {
            let g = self.collector.pin();
            let (_, r) = self.root(&g);
            let hp = r.kids[Self::route(r, k)];
            // SAFETY: handles of a pinned root version are alive.
            let h = unsafe { &*hp };
            // SeqCst: see `stamp`.
            let cur = h.cur.load(Ordering::SeqCst);
            if frozen(cur) {
                self.complete_split(&g, hp, k);
                continue;
            }
            // SAFETY: the current version of a live handle, pinned.
            let v = unsafe { &*cur };
            self.stamp(&v.ts);
            // SAFETY: immutable keys of a pinned version.
            let keys = v.keys.with(|ks| unsafe { (*ks).clone() });
            let Err(at) = keys.binary_search(&k) else {
                return false; // linearized at `v`'s stamp / our load
            };
            if keys.len() == CAP {
                // Freeze `v` as the handle's last version, then split.
                // SeqCst: see `stamp`.
                if h.cur
                    .compare_exchange(cur, mark(cur), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    self.complete_split(&g, hp, k);
                }
                continue;
            }
            let mut nk = keys;
            nk.insert(at, k);
            let nv = new_ver(PENDING, cur, nk);
            // SeqCst: see `stamp`.
            if h.cur
                .compare_exchange(cur, nv, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                self.leaf_cas_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // SAFETY: never published.
                drop(unsafe { Box::from_raw(nv) });
                continue;
            }
            // The insert's linearization point is the defining clock
            // increment of `nv`'s stamp (ours or a helper's), inside this
            // call.
            // SAFETY: we published `nv`; it is retired only after its
            // successor is stamped, later than our guard's pin.
            self.stamp(unsafe { &(*nv).ts });
            // SAFETY: `cur` is unlinked (replaced by `nv`, now stamped):
            // scans that may still need it loaded a clock value older than
            // the stamp's increment (ordered before this retire) after
            // pinning, so their pins hold it.
            unsafe { g.defer_destroy(cur) };
            return true;
        }
    }

    /// Completes the split of the frozen handle `hp` that `k` routed to:
    /// replaces it in the root by two handles holding the halves of its
    /// last version, or returns if that is done already.
    fn complete_split(&self, g: &Guard<'_>, hp: *mut Handle, k: u64) {
        loop {
            let (rp, r) = self.root(g);
            let i = Self::route(r, k);
            if r.kids[i] != hp {
                return; // done by someone (a handle never comes back)
            }
            // SAFETY: `hp` is in the pinned current root: alive; frozen, so
            // its version is final.
            let last = unmark(unsafe { &*hp }.cur.load(Ordering::SeqCst));
            // SAFETY: the final version of a live handle.
            let keys = unsafe { &*last }.keys.with(|ks| unsafe { (*ks).clone() });
            let mid = keys.len() / 2;
            let mk = |ks: &[u64]| {
                Box::into_raw(Box::new(Handle {
                    cur: AtomicPtr::new(new_ver(1, ptr::null_mut(), ks.to_vec())),
                }))
            };
            let (a, b) = (mk(&keys[..mid]), mk(&keys[mid..]));
            let mut seps = r.seps.clone();
            seps.insert(i, keys[mid]);
            let mut kids = r.kids.clone();
            kids[i] = a;
            kids.insert(i + 1, b);
            let nr = Box::into_raw(Box::new(RootVer {
                ts: AtomicU64::new(PENDING),
                prev: rp,
                seps,
                kids,
            }));
            // SeqCst: see `stamp`.
            if self
                .root
                .compare_exchange(rp, nr, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.root_swaps
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // SAFETY: published by us; retired only after a successor
                // is stamped.
                self.stamp(unsafe { &(*nr).ts });
                // SAFETY: `r`, the handle and its last version are unlinked
                // (only `r` reached the handle), and `nr` is stamped: a
                // scan that can still need them pinned before these
                // retires. Each is retired once: only the CAS winner.
                unsafe {
                    g.defer_destroy(rp);
                    g.defer_destroy(hp);
                    g.defer_destroy(last);
                }
                return;
            }
            // SAFETY: never published: ours alone.
            unsafe {
                for h in [a, b] {
                    drop(Box::from_raw((*h).cur.load(Ordering::Relaxed)));
                    drop(Box::from_raw(h));
                }
                drop(Box::from_raw(nr));
            }
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // Exclusive access: free the current version of everything; the
        // retired ones go with the collector (dropped after this).
        let r = self.root.load(Ordering::Relaxed);
        // SAFETY: `&mut self`: nobody else reaches these any more, and
        // current versions were never retired.
        unsafe {
            for &h in &(*r).kids {
                drop(Box::from_raw(unmark((*h).cur.load(Ordering::Relaxed))));
                drop(Box::from_raw(h));
            }
            drop(Box::from_raw(r));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod stress {
    use super::*;
    use std::sync::Arc;

    /// The `i`-th key writer `w` inserts: alternately at the low and the
    /// high end of the key space, so consecutive inserts of one writer
    /// land in leaves far apart (a scan reads one long before the other).
    fn key(w: u64, i: u64) -> u64 {
        let base = if i % 2 == 0 { 1_000 } else { 1_000_000 };
        base + (i / 2) * 2 + w
    }

    /// Two writers insert their own keys while a scanner checks that every
    /// scan is a snapshot: the keys of each writer it sees are a prefix of
    /// that writer's sequence, and scans never go back. The writers share
    /// leaves (interleaved keys), so they race each other's splits.
    #[test]
    fn scans_are_snapshots_while_leaves_split() {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        let n: u64 = if cfg!(miri) { 16 } else { 6_000 };
        let m = Arc::new(Model::new(&[&[0]]));
        let done = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let (m, done) = (Arc::clone(&m), Arc::clone(&done));
                std::thread::spawn(move || {
                    for i in 0..n {
                        assert!(m.insert(key(w, i)));
                    }
                    done.fetch_add(1, Relaxed);
                })
            })
            .collect();
        let mut last = [0u64; 2];
        let mut scans = 0;
        while done.load(Relaxed) < 2 || scans < 3 {
            scans += 1;
            let got = m.scan();
            assert!(got.windows(2).all(|p| p[0] < p[1]), "unsorted {got:?}");
            for w in 0..2u64 {
                let mut mine: Vec<u64> = got
                    .iter()
                    .copied()
                    .filter(|&k| k != 0 && k % 2 == w)
                    .collect();
                let c = mine.len() as u64;
                let mut want: Vec<u64> = (0..c).map(|i| key(w, i)).collect();
                mine.sort_unstable();
                want.sort_unstable();
                assert_eq!(mine, want, "writer {w}: not a prefix: not a snapshot");
                assert!(c >= last[w as usize], "a later scan lost keys");
                last[w as usize] = c;
            }
        }
        for t in writers {
            t.join().unwrap();
        }
        let got = m.scan();
        assert_eq!(got.len() as u64, 2 * n + 1);
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        // `CAP` keys per leaf: the leaves split over and over.
        assert!(m.root_swaps.load(relaxed) as u64 >= n / CAP as u64);
        let _ = m.leaf_cas_failures.load(relaxed); // how often writers met
        for w in 0..2 {
            for i in 0..n {
                assert!(m.contains(key(w, i)));
            }
        }
        assert!(!m.contains(1));
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::sync::Arc;
    use loom::thread;

    /// Writers on different leaves never conflict (no failed handle CAS,
    /// no root CAS), and a scan racing them is a snapshot: the writer
    /// inserts 11 (first leaf) before 31 (third leaf), so a scan that sees
    /// 31 must see 11.
    #[test]
    fn two_writers_on_different_leaves_and_a_scan() {
        loom::model(|| {
            let m = Arc::new(Model::new(&[&[10], &[20], &[30]]));
            let w1 = {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    assert!(m.insert(11));
                    assert!(m.insert(31));
                })
            };
            let got = m.scan();
            assert!(
                !got.contains(&31) || got.contains(&11),
                "not a snapshot: {got:?}"
            );
            assert!(m.insert(21)); // the second writer, on the middle leaf
            w1.join().unwrap();
            assert_eq!(m.scan(), [10, 11, 20, 21, 30, 31]);
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            assert_eq!(m.leaf_cas_failures.load(relaxed), 0, "writers conflicted");
            assert_eq!(m.root_swaps.load(relaxed), 0, "the root was written");
        });
    }

    /// A writer's handle CAS races the freeze of its leaf by another
    /// writer's split: neither insert is lost nor doubled, whoever
    /// completes the split.
    #[test]
    fn a_writer_races_a_split_of_its_leaf() {
        loom::model(|| {
            let m = Arc::new(Model::new(&[&[10], &[30]]));
            assert!(m.insert(12)); // left leaf full
            let t = {
                let m = Arc::clone(&m);
                thread::spawn(move || assert!(m.insert(14))) // splits
            };
            assert!(m.insert(11)); // races the freeze
                                   // Our own insert is seen by our next scan, even if it went into
                                   // a half whose root version the splitter has not stamped yet
                                   // (writers stamp the root before their version).
            assert!(m.scan().contains(&11), "a scan missed a finished insert");
            t.join().unwrap();
            assert_eq!(m.scan(), [10, 11, 12, 14, 30]);
            // one split, however many threads tried to complete it
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            assert_eq!(m.root_swaps.load(relaxed), 1, "the split was not done once");
        });
    }

    /// A split races a lookup and a scan: keys present throughout are
    /// always found, and the lookup after the scan is not older than it.
    #[test]
    fn a_split_races_a_lookup_and_a_scan() {
        loom::model(|| {
            let m = Arc::new(Model::new(&[&[10, 12], &[30]]));
            let t = {
                let m = Arc::clone(&m);
                thread::spawn(move || assert!(m.insert(14)))
            };
            assert!(m.contains(12), "a key present throughout was missed");
            let got = m.scan();
            assert!(got == [10, 12, 30] || got == [10, 12, 14, 30], "{got:?}");
            if got.contains(&14) {
                assert!(m.contains(14), "the lookup went back in time");
            }
            t.join().unwrap();
        });
    }

    /// A scan straddles a stamp: a lookup that saw the insert is followed
    /// by a scan that sees it too, and versions the scan walks through
    /// (`prev`) are not freed under it (loom cells in the versions).
    #[test]
    fn a_scan_straddles_a_stamp_and_a_retire() {
        loom::model(|| {
            let m = Arc::new(Model::new(&[&[10], &[30]]));
            let t = {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    assert!(m.insert(31)); // retires [30]
                    m.collector.flush();
                })
            };
            let seen = m.contains(31);
            let got = m.scan();
            if seen {
                assert_eq!(got, [10, 30, 31], "the scan missed a seen insert");
            } else {
                assert!(got == [10, 30] || got == [10, 30, 31], "{got:?}");
            }
            t.join().unwrap();
        });
    }
}
