//! **NOT WIRED (wave 5 prototype, test builds only).** An open-addressing
//! table with lock-free cooperative migration, the candidate replacement for
//! the split-ordered list (`docs/hash-map.md` §7). `LockFreeHashMap` does not
//! use it; it is compiled only under `cfg(test)` so its unit tests, Miri and
//! loom can check the protocol before anything is switched over.
//!
//! # Layout
//! A table is an array of 16-byte slots `{ tag, word }`:
//! - `tag`: `hash | 1` once a key hash claimed the slot (0 = unclaimed), set
//!   once and never changed, so a probe for another hash skips the slot
//!   without touching an entry;
//! - `word`: a pointer to an [`Entry`] `{ value, key }` plus three flag bits
//!   (`FROZEN`, `COPIED`, `DROPPED`).
//!
//! An entry is the key's identity: its `value` cell holds a boxed value, null
//! (removed: a tombstone that keeps the key, so a slot's key never changes
//! within a table) or `SEALED` (dead, never written again). Replace, update,
//! remove and re-insert are CASes on `value`, so they never touch the slot
//! and never need the key again (no `K: Clone`). Migration moves entry
//! *pointers*: while a table is copied, old and new table may both point at
//! one entry, and writes on its value cell go on in either.
//!
//! # Migration
//! A writer that needs a new slot when the table is too full installs
//! `next` (only while the table is the root) and every writer that needs a
//! new slot then helps: chunks are claimed with `fetch_add`; a helper that
//! finds none left sweeps the table itself (copying a slot is idempotent),
//! so nobody waits. Copying slot `X` with entry `e`:
//! 1. **Freeze** `X` with one CAS that also records the decision: if `e`'s
//!    value is null (a tombstone) the freezer first seals it (`null →
//!    SEALED`, which a re-insert's `null → box` CAS cannot follow) and sets
//!    `FROZEN|COPIED|DROPPED` (the entry is retired by this CAS's winner);
//!    otherwise it sets `FROZEN` (copy). The one winning CAS decides, so an
//!    entry is either copied or dropped, never both.
//! 2. **Copy**: put-if-absent of the *pointer* `e` into the next table
//!    (identity, no `Eq`): `e` is the only live entry of its key, and a slot
//!    never becomes claimable again, so a slow copier finds `e` where the
//!    first one put it. A copier that meets a frozen slot of the next table
//!    stops: that table migrates only after this one was completely copied.
//! 3. Set `COPIED`. A probe never dereferences the entry of a `COPIED`
//!    slot (it may be retired); a matching tag there sends the probe to the
//!    next table once the probe ends.
//!
//! New entries are created only in the root table (a writer that finds a
//! migration under way helps it finish first), so a key has at most one
//! entry that is not sealed.
//!
//! # Reclamation
//! Four hazard slots per operation: two tables (the current one and the
//! next, validated by re-reading the root: a table is retired only after
//! the root moved past it), the entry (validated by re-reading the slot
//! word: an entry is retired only by the `DROPPED` CAS, after which no probe
//! dereferences it) and the value (validated by re-reading the value cell).

use core::hash::Hash;
use core::ptr;

use crate::hazard::{Domain, HazardSet};
use crate::sync::atomic::{AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

const FROZEN: usize = 1;
const COPIED: usize = 2;
const DROPPED: usize = 4;
const FLAGS: usize = 7;

/// Slots copied per claimed chunk.
const CHUNK: usize = if cfg!(any(loom, miri)) { 2 } else { 64 };
/// Smallest table.
const MIN_LEN: usize = if cfg!(loom) { 2 } else { 8 };

/// The `SEALED` value: the address of a static, never a box's.
static SEAL: u8 = 0;

fn sealed<V>() -> *mut V {
    ptr::from_ref(&SEAL).cast_mut().cast()
}

/// A key and its value cell; 8-aligned so the slot word has three flag bits.
#[repr(C, align(8))]
pub(crate) struct Entry<K, V> {
    value: AtomicPtr<V>,
    key: K,
}

impl<K, V> Drop for Entry<K, V> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`, exclusive access.
        let v = self.value.load(Ordering::Relaxed);
        if !v.is_null() && v != sealed() {
            // SAFETY: an entry owns the box in its value cell; whoever
            // swapped a box out retired it, so this one is only ours.
            drop(unsafe { Box::from_raw(v) });
        }
    }
}

fn flags<T>(p: *mut T) -> usize {
    p.addr() & FLAGS
}

fn untag<T>(p: *mut T) -> *mut T {
    p.map_addr(|a| a & !FLAGS)
}

/// A key's first probe slot: from the hash bits above the tag's low bit,
/// which `tag = hash | 1` always sets (taking it would make every home slot
/// odd and leave half the table never a home).
#[inline]
fn home(tag: u64, mask: usize) -> usize {
    (tag >> 1) as usize & mask
}

fn tagged<T>(p: *mut T, f: usize) -> *mut T {
    p.map_addr(|a| a | f)
}

struct Slot<K, V> {
    tag: AtomicU64,
    word: AtomicPtr<Entry<K, V>>,
}

struct Table<K, V> {
    slots: Box<[Slot<K, V>]>,
    mask: usize,
    /// The next table while this one is migrated (set once).
    next: AtomicPtr<Table<K, V>>,
    /// Slots with an entry (or reserved for one), against `max`.
    claims: AtomicUsize,
    max: usize,
    /// Next chunk to hand out, and chunks copied.
    handed: AtomicUsize,
    done: AtomicUsize,
}

impl<K, V> Table<K, V> {
    fn new(len: usize) -> *mut Self {
        let slots = (0..len)
            .map(|_| Slot {
                tag: AtomicU64::new(0),
                word: AtomicPtr::new(ptr::null_mut()),
            })
            .collect();
        Box::into_raw(Box::new(Table {
            slots,
            mask: len - 1,
            next: AtomicPtr::new(ptr::null_mut()),
            claims: AtomicUsize::new(0),
            max: len - len / 4,
            handed: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }))
    }

    fn chunks(&self) -> usize {
        self.slots.len().div_ceil(CHUNK)
    }
}

/// Where a probe ended.
enum Found<K, V> {
    /// The key's live-or-removed entry, protected by hazard 2.
    Entry(*mut Entry<K, V>),
    /// An unfrozen slot this key may claim; the key is in no table.
    Empty(usize),
    /// The key's state is in the next table.
    Next,
    /// Every slot is taken by other keys; the key is in no table.
    Full,
}

/// The hazard slots of one operation.
struct Guard<'m> {
    domain: &'m Domain,
    /// 0 and 1: tables; 2: an entry; 3: a value.
    hp: HazardSet<'m, 4>,
    retired: bool,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.retired && !std::thread::panicking() {
            self.domain.collect();
        }
    }
}

/// The raw table: a root pointer, a live count and the hazard domain.
pub(crate) struct RawTable<K, V> {
    root: AtomicPtr<Table<K, V>>,
    count: AtomicIsize,
    /// Finished migrations (for tests).
    pub(crate) migrations: AtomicUsize,
    /// Declared last: drains what was retired after `drop` freed the rest.
    pub(crate) domain: Domain,
}

// SAFETY: as for `LockFreeHashMap`: the table owns keys and values reached
// through raw pointers; any thread may drop them or read them through `&`.
unsafe impl<K: Send, V: Send> Send for RawTable<K, V> {}
// SAFETY: as above; shared reads of keys and values need `Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for RawTable<K, V> {}

impl<K: Eq + Hash, V> RawTable<K, V> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        let len = (n + n / 3).clamp(MIN_LEN, 1 << 20).next_power_of_two();
        RawTable {
            root: AtomicPtr::new(Table::new(len)),
            count: AtomicIsize::new(0),
            migrations: AtomicUsize::new(0),
            domain: Domain::new(),
        }
    }

    fn guard(&self) -> Guard<'_> {
        Guard {
            domain: &self.domain,
            hp: HazardSet::new_in(&self.domain),
            retired: false,
        }
    }

    /// Live entries (exact when quiescent).
    pub(crate) fn len(&self) -> usize {
        // Relaxed: a statistic.
        self.count.load(Ordering::Relaxed).max(0) as usize
    }

    /// Slots of the root table (for tests).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn capacity(&self) -> usize {
        let mut g = self.guard();
        let t = g.hp.protect(0, &self.root);
        // SAFETY: protected root.
        let t = unsafe { &*t };
        t.slots.len()
    }

    /// Protects the root in hazard 0.
    fn root<'g>(&self, g: &mut Guard<'_>) -> (&'g Table<K, V>, usize) {
        let t = g.hp.protect(0, &self.root);
        // SAFETY: published and validated against the root; a table is
        // retired only after the root moved past it.
        (unsafe { &*t }, 0)
    }

    /// Protects `t.next` in the other table hazard; `None` if the root
    /// moved past both (start again from the root).
    fn advance<'g>(
        &self,
        g: &mut Guard<'_>,
        t: &Table<K, V>,
        ti: usize,
    ) -> Option<(&'g Table<K, V>, usize)> {
        // Acquire: pairs with the AcqRel CAS in `grow`.
        let n = t.next.load(Ordering::Acquire);
        debug_assert!(!n.is_null(), "Next without a next table");
        let ni = 1 - ti;
        g.hp.publish(ni, n);
        // Acquire: as in `HazardSet::protect`; `n` is retired only after
        // the root moved past it, so root ∈ {t, n} now means it is not.
        let r = self.root.load(Ordering::Acquire);
        if r == ptr::from_ref(t).cast_mut() || r == n {
            // SAFETY: published, and validated as above.
            Some((unsafe { &*n }, ni))
        } else {
            None
        }
    }

    /// Probes `t` for the key (`eq`, tag `tag`).
    fn find(
        &self,
        g: &mut Guard<'_>,
        t: &Table<K, V>,
        tag: u64,
        eq: &mut dyn FnMut(&K) -> bool,
    ) -> Found<K, V> {
        let mut i = home(tag, t.mask);
        let mut flagged = false;
        for _ in 0..t.slots.len() {
            let s = &t.slots[i];
            // Relaxed: the tag is a filter written once before the word;
            // a stale 0 only makes us look at the word.
            let st = s.tag.load(Ordering::Relaxed);
            if st == 0 || st == tag {
                // Acquire: pairs with the Release CAS that stored the entry.
                let mut w = s.word.load(Ordering::Acquire);
                loop {
                    let e = untag(w);
                    if e.is_null() {
                        if flags(w) & FROZEN != 0 || flagged {
                            return Found::Next;
                        }
                        return Found::Empty(i);
                    }
                    if flags(w) & COPIED != 0 {
                        flagged = true;
                        break;
                    }
                    g.hp.publish(2, e);
                    // Acquire: validation; an entry is retired only by the
                    // CAS that sets COPIED on its slot.
                    let now = s.word.load(Ordering::Acquire);
                    if now != w {
                        w = now;
                        continue;
                    }
                    // SAFETY: protected and validated above.
                    let ent = unsafe { &*e };
                    if eq(&ent.key) {
                        // Acquire: pairs with the CAS that sealed it.
                        if ent.value.load(Ordering::Acquire) == sealed() {
                            break; // dead: a newer entry may follow
                        }
                        return Found::Entry(e);
                    }
                    break;
                }
            }
            i = (i + 1) & t.mask;
        }
        if flagged {
            Found::Next
        } else {
            Found::Full
        }
    }

    /// Calls `f` on the value of the key, if present.
    pub(crate) fn get_with<Q, R>(&self, hash: u64, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let tag = hash | 1;
        let mut g = self.guard();
        let (mut t, mut ti) = self.root(&mut g);
        loop {
            match self.find(&mut g, t, tag, &mut |k| k.borrow() == key) {
                Found::Entry(e) => {
                    // SAFETY: `e` is protected by hazard 2.
                    let v = g.hp.protect(3, unsafe { &(*e).value });
                    if v.is_null() {
                        return None;
                    }
                    if v == sealed() {
                        continue; // sealed meanwhile: probe again
                    }
                    // SAFETY: protected by hazard 3, validated against the
                    // cell; a value is retired only after being swapped out.
                    return Some(f(unsafe { &*v }));
                }
                Found::Next => match self.advance(&mut g, t, ti) {
                    Some(n) => (t, ti) = n,
                    None => (t, ti) = self.root(&mut g),
                },
                Found::Empty(_) | Found::Full => return None,
            }
        }
    }

    /// Inserts or replaces; returns the old value (cloned).
    pub(crate) fn insert(&self, hash: u64, key: K, value: V) -> Option<V>
    where
        V: Clone,
    {
        let tag = hash | 1;
        let nb = Box::into_raw(Box::new(value));
        // Owns `nb` until it is published; the key stays loose until a
        // vacant slot needs an entry.
        struct Own<V>(*mut V);
        impl<V> Drop for Own<V> {
            fn drop(&mut self) {
                if !self.0.is_null() {
                    // SAFETY: never published (cleared when it is).
                    drop(unsafe { Box::from_raw(self.0) });
                }
            }
        }
        let mut own = Own(nb);
        let mut loose = Some(key);
        // The entry built for a vacant slot, kept across failed CASes;
        // freed on drop unless published (then cleared).
        struct Fresh<K, V>(*mut Entry<K, V>);
        impl<K, V> Drop for Fresh<K, V> {
            fn drop(&mut self) {
                if !self.0.is_null() {
                    // SAFETY: never published (cleared when it is); its
                    // value cell is null again after a failed CAS.
                    drop(unsafe { Box::from_raw(self.0) });
                }
            }
        }
        let mut fresh = Fresh(ptr::null_mut());
        let mut g = self.guard();
        let (mut t, mut ti) = self.root(&mut g);
        loop {
            let found = {
                let k: &K = match &loose {
                    Some(k) => k,
                    // SAFETY: the key moved into our unpublished entry.
                    None => unsafe { &(*fresh.0).key },
                };
                self.find(&mut g, t, tag, &mut |x| x == k)
            };
            match found {
                Found::Entry(e) => {
                    // SAFETY: `e` is protected by hazard 2.
                    let cell = unsafe { &(*e).value };
                    loop {
                        let cur = g.hp.protect(3, cell);
                        if cur == sealed() {
                            break; // dead: probe again
                        }
                        // AcqRel: Release publishes the new box to readers;
                        // Acquire pairs with the previous value's CAS.
                        if cell
                            .compare_exchange(cur, nb, Ordering::AcqRel, Ordering::Relaxed)
                            .is_ok()
                        {
                            own.0 = ptr::null_mut();
                            if cur.is_null() {
                                self.count.fetch_add(1, Ordering::Relaxed);
                                return None;
                            }
                            // Retire before the clone and drop the guard before
                            // returning, so neither a panicking `V::clone` nor a
                            // panicking `V::drop` in the guard's scan leaks.
                            // SAFETY: swapped out by our CAS, retired once.
                            unsafe { self.domain.retire_box_deferred(cur) };
                            g.retired = true;
                            // SAFETY: `cur` is still protected by hazard 3, so
                            // the retire above cannot free it yet.
                            let old = unsafe { (*cur).clone() };
                            drop(g);
                            return Some(old);
                        }
                    }
                }
                Found::Next => match self.advance(&mut g, t, ti) {
                    Some(n) => (t, ti) = n,
                    None => (t, ti) = self.root(&mut g),
                },
                Found::Full => {
                    self.grow(&mut g, t);
                    (t, ti) = self.root(&mut g);
                }
                Found::Empty(i) => {
                    // Acquire: pairs with `grow`'s CAS.
                    let migrating = !t.next.load(Ordering::Acquire).is_null();
                    if migrating || self.root.load(Ordering::Acquire) != ptr::from_ref(t).cast_mut()
                    {
                        self.help_root(&mut g);
                        (t, ti) = self.root(&mut g);
                        continue;
                    }
                    // Relaxed: a budget; overshoot is bounded by the CAS
                    // reservation below.
                    if t.claims.fetch_add(1, Ordering::Relaxed) >= t.max {
                        t.claims.fetch_sub(1, Ordering::Relaxed);
                        self.grow(&mut g, t);
                        (t, ti) = self.root(&mut g);
                        continue;
                    }
                    let s = &t.slots[i];
                    // Relaxed: the tag orders nothing (see `find`).
                    let claimed =
                        match s
                            .tag
                            .compare_exchange(0, tag, Ordering::Relaxed, Ordering::Relaxed)
                        {
                            Ok(_) => true,
                            Err(x) => x == tag,
                        };
                    if claimed {
                        if fresh.0.is_null() {
                            fresh.0 = Box::into_raw(Box::new(Entry {
                                value: AtomicPtr::new(ptr::null_mut()),
                                key: loose.take().expect("key held loose"),
                            }));
                        }
                        let ep = fresh.0;
                        // SAFETY: our unpublished entry.
                        let cell = unsafe { &(*ep).value };
                        // Relaxed: published by the Release CAS below.
                        cell.store(nb, Ordering::Relaxed);
                        // AcqRel: Release publishes the entry and its value;
                        // Acquire (failure) sees the winner's entry.
                        if s.word
                            .compare_exchange(
                                ptr::null_mut(),
                                ep,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok()
                        {
                            fresh.0 = ptr::null_mut();
                            own.0 = ptr::null_mut();
                            self.count.fetch_add(1, Ordering::Relaxed);
                            return None;
                        }
                        // Relaxed: still unpublished.
                        cell.store(ptr::null_mut(), Ordering::Relaxed);
                    }
                    t.claims.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Removes the key; returns its value (cloned).
    pub(crate) fn remove<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
        V: Clone,
    {
        let tag = hash | 1;
        let mut g = self.guard();
        let (mut t, mut ti) = self.root(&mut g);
        loop {
            match self.find(&mut g, t, tag, &mut |k| k.borrow() == key) {
                Found::Entry(e) => {
                    // SAFETY: `e` is protected by hazard 2.
                    let cell = unsafe { &(*e).value };
                    loop {
                        let cur = g.hp.protect(3, cell);
                        if cur.is_null() {
                            return None;
                        }
                        if cur == sealed() {
                            break;
                        }
                        // AcqRel: as in `insert`.
                        if cell
                            .compare_exchange(
                                cur,
                                ptr::null_mut(),
                                Ordering::AcqRel,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                        {
                            self.count.fetch_sub(1, Ordering::Relaxed);
                            // As in `insert`: retire, clone, drop the guard.
                            // SAFETY: swapped out by our CAS, retired once.
                            unsafe { self.domain.retire_box_deferred(cur) };
                            g.retired = true;
                            // SAFETY: still protected by hazard 3, so the
                            // retire above cannot free it yet.
                            let old = unsafe { (*cur).clone() };
                            drop(g);
                            return Some(old);
                        }
                    }
                }
                Found::Next => match self.advance(&mut g, t, ti) {
                    Some(n) => (t, ti) = n,
                    None => (t, ti) = self.root(&mut g),
                },
                Found::Empty(_) | Found::Full => return None,
            }
        }
    }

    /// Starts a migration of `t` if it is the root and has none, then helps.
    fn grow(&self, g: &mut Guard<'_>, t: &Table<K, V>) {
        let tp = ptr::from_ref(t).cast_mut();
        // Acquire: pairs with the root CAS in `help_migrate`.
        if self.root.load(Ordering::Acquire) == tp && t.next.load(Ordering::Acquire).is_null() {
            // Relaxed: a size hint.
            let live = self.count.load(Ordering::Relaxed).max(0) as usize;
            let len = t.slots.len();
            // Copies are at most `t.max < len` entries, so a table of the
            // same size always has room; shrink-free cleanup of tombstones.
            let new_len = if len >= 64 && live * 4 < len {
                len
            } else {
                len * 2
            };
            let n = Table::new(new_len);
            // AcqRel: Release publishes the new table; Acquire (failure)
            // sees the winner's.
            if t.next
                .compare_exchange(ptr::null_mut(), n, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                // SAFETY: never shared.
                drop(unsafe { Box::from_raw(n) });
            }
        }
        self.help_root(g);
    }

    /// Helps the root's migration, if any, to its end.
    fn help_root(&self, g: &mut Guard<'_>) {
        let (t, ti) = self.root(g);
        // Acquire: pairs with `grow`'s CAS.
        if t.next.load(Ordering::Acquire).is_null() {
            return;
        }
        let Some((n, _)) = self.advance(g, t, ti) else {
            return;
        };
        let chunks = t.chunks();
        loop {
            // Relaxed: only hands out indices.
            let c = t.handed.fetch_add(1, Ordering::Relaxed);
            if c >= chunks {
                break;
            }
            self.copy_chunk(g, t, c, n);
            // AcqRel: the last one sees every chunk's copies.
            if t.done.fetch_add(1, Ordering::AcqRel) + 1 == chunks {
                return self.finish(g, t, n);
            }
        }
        // Every chunk was handed out; some may be in progress or abandoned
        // (a panicking helper): copy what is left ourselves.
        for c in 0..chunks {
            // Acquire: pairs with the AcqRel increments.
            if t.done.load(Ordering::Acquire) == chunks {
                break;
            }
            self.copy_chunk(g, t, c, n);
        }
        self.finish(g, t, n);
    }

    fn finish(&self, g: &mut Guard<'_>, t: &Table<K, V>, _n: &Table<K, V>) {
        // The raw pointers, not ones made from `&Table` (the root and the
        // retire need the allocation's own provenance).
        // Acquire: pairs with `grow`'s CAS.
        let n = t.next.load(Ordering::Acquire);
        // AcqRel: Release publishes the copies with the new root; Acquire
        // pairs with the copies made by other helpers (through `done`).
        if let Ok(tp) = self.root.compare_exchange(
            ptr::from_ref(t).cast_mut(),
            n,
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            // SAFETY: the root moved past `t`; readers that follow a stale
            // pointer validate against the root (see `advance`). The table
            // owns no entry any more (all its slots are COPIED).
            unsafe { self.domain.retire_box_deferred(tp) };
            g.retired = true;
            // Relaxed: a statistic.
            self.migrations.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn copy_chunk(&self, g: &mut Guard<'_>, t: &Table<K, V>, c: usize, n: &Table<K, V>) {
        let end = ((c + 1) * CHUNK).min(t.slots.len());
        for i in c * CHUNK..end {
            self.copy_slot(g, t, i, n);
        }
    }

    /// Freezes slot `i` of `t`, copies its entry to `n` or drops it, and
    /// marks it COPIED. Idempotent.
    fn copy_slot(&self, g: &mut Guard<'_>, t: &Table<K, V>, i: usize, n: &Table<K, V>) {
        let s = &t.slots[i];
        // Acquire: pairs with the CAS that stored the entry.
        let mut w = s.word.load(Ordering::Acquire);
        loop {
            if flags(w) & COPIED != 0 {
                return;
            }
            let e = untag(w);
            if e.is_null() {
                // AcqRel: a failed insert CAS must see the freeze.
                match s.word.compare_exchange(
                    w,
                    tagged(w, FROZEN | COPIED),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return,
                    Err(x) => {
                        w = x;
                        continue;
                    }
                }
            }
            g.hp.publish(2, e);
            // Acquire: validation, as in `find`.
            let now = s.word.load(Ordering::Acquire);
            if now != w {
                w = now;
                continue;
            }
            // SAFETY: protected and validated.
            let cell = unsafe { &(*e).value };
            if flags(w) & FROZEN == 0 {
                // Decide copy or drop, in the freezing CAS.
                // Acquire: pairs with the value CASes.
                let v = cell.load(Ordering::Acquire);
                let drop_it = if v.is_null() {
                    // AcqRel: a re-insert's `null → box` CAS and this seal
                    // are ordered; the loser sees the winner.
                    match cell.compare_exchange(v, sealed(), Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => true,
                        Err(x) => x == sealed(),
                    }
                } else {
                    v == sealed()
                };
                if !drop_it && v.is_null() {
                    continue; // re-inserted meanwhile: decide again
                }
                let nw = if drop_it {
                    tagged(w, FROZEN | COPIED | DROPPED)
                } else {
                    tagged(w, FROZEN)
                };
                // AcqRel: the decision is this CAS; writers' insert CASes
                // on the word fail after it.
                match s
                    .word
                    .compare_exchange(w, nw, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) if drop_it => {
                        // SAFETY: sealed (no value to own) and now unreachable
                        // for probes (COPIED); this CAS's winner retires it.
                        unsafe { self.domain.retire_box_deferred(e) };
                        g.retired = true;
                        return;
                    }
                    Ok(_) => w = nw,
                    Err(x) => {
                        w = x;
                        continue;
                    }
                }
            }
            // Frozen with the decision "copy".
            // Relaxed: written before the word (same thread), which we read
            // with Acquire.
            let tag = s.tag.load(Ordering::Relaxed);
            put_if_absent(n, tag, e);
            // AcqRel: Release orders the copy before readers that see
            // COPIED and go to `n`.
            let _ =
                s.word
                    .compare_exchange(w, tagged(w, COPIED), Ordering::AcqRel, Ordering::Relaxed);
            return;
        }
    }
}

/// Puts entry `e` (tag `tag`) into `n` unless it is there; stops if `n` is
/// itself frozen (then the copy was finished by someone else, because `n`
/// migrates only after its predecessor was completely copied).
fn put_if_absent<K, V>(n: &Table<K, V>, tag: u64, e: *mut Entry<K, V>) {
    let mut i = home(tag, n.mask);
    for _ in 0..n.slots.len() {
        let s = &n.slots[i];
        // Relaxed: see `find`.
        let st = s.tag.load(Ordering::Relaxed);
        let mine = st == tag
            || (st == 0
                && match s
                    .tag
                    .compare_exchange(0, tag, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => true,
                    Err(x) => x == tag,
                });
        if mine {
            // Acquire: pairs with the CASes that store entries.
            let mut w = s.word.load(Ordering::Acquire);
            loop {
                if flags(w) & FROZEN != 0 || untag(w) == e {
                    return;
                }
                if !w.is_null() {
                    break; // another key with this tag
                }
                // AcqRel: Release publishes the entry in `n`.
                match s
                    .word
                    .compare_exchange(w, e, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        n.claims.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(x) => w = x,
                }
            }
        }
        i = (i + 1) & n.mask;
    }
    unreachable!("a next table always has room for the copies");
}

impl<K, V> Drop for RawTable<K, V> {
    fn drop(&mut self) {
        // Relaxed (all loads below): `&mut self`, exclusive access.
        let r = self.root.load(Ordering::Relaxed);
        // SAFETY: exclusive access; the root and its next (if a migration
        // was under way) are live; nothing else points at them.
        let root = unsafe { Box::from_raw(r) };
        let next = root.next.load(Ordering::Relaxed);
        let next = (!next.is_null()).then(|| {
            // SAFETY: as above.
            unsafe { Box::from_raw(next) }
        });
        for s in root.slots.iter() {
            let w = s.word.load(Ordering::Relaxed);
            let e = untag(w);
            if e.is_null() || flags(w) & COPIED != 0 {
                continue; // empty, or owned by `next` / retired
            }
            // A frozen entry may already be in `next` (copied, COPIED not
            // yet set): then `next` owns it.
            let tag = s.tag.load(Ordering::Relaxed);
            let in_next = flags(w) & FROZEN != 0 && next.as_ref().is_some_and(|n| holds(n, tag, e));
            if !in_next {
                // SAFETY: owned by this slot only; freed once.
                drop(unsafe { Box::from_raw(e) });
            }
        }
        if let Some(n) = next {
            for s in n.slots.iter() {
                let e = untag(s.word.load(Ordering::Relaxed));
                if !e.is_null() {
                    // SAFETY: `n` never migrated (the root did not reach
                    // it), so every entry in it is owned by it alone.
                    drop(unsafe { Box::from_raw(e) });
                }
            }
        }
    }
}

/// Whether `n` holds entry `e` on the probe of `tag` (exclusive access).
fn holds<K, V>(n: &Table<K, V>, tag: u64, e: *mut Entry<K, V>) -> bool {
    let mut i = home(tag, n.mask);
    for _ in 0..n.slots.len() {
        let s = &n.slots[i];
        let w = s.word.load(Ordering::Relaxed);
        if untag(w) == e {
            return true;
        }
        if w.is_null() && s.tag.load(Ordering::Relaxed) == 0 {
            return false;
        }
        i = (i + 1) & n.mask;
    }
    false
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

#[cfg(all(test, not(loom)))]
mod review_tests;

#[cfg(all(test, loom))]
mod review_loom;
