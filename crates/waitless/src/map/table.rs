//! The map's raw table: open addressing with lock-free cooperative
//! migration (`docs/hash-map.md`). [`LockFreeHashMap`](super::LockFreeHashMap)
//! hashes keys and calls in here; this module knows only hashes, keys
//! (through `Eq`) and values.
//!
//! # Layout
//! A table is two arrays, 12 bytes a slot:
//! - `tags[i]`: `tag_of(hash)` (the hash folded to 32 bits, low bit set)
//!   once a key claimed the slot (0 = unclaimed), set once and never
//!   changed, so a probe for another key skips the slot without touching
//!   an entry;
//! - `words[i]`: a pointer to an [`Entry`] `{ value, key, init }` plus three
//!   flag bits (`FROZEN`, `COPIED`, `DROPPED`).
//!
//! An entry is the key's identity, one allocation holding the key and its
//! first value inline (`init`): 24 bytes for `u64 → u64`. Its `value` cell
//! points at `init`, at a boxed replacement, at nothing (removed: a
//! tombstone that keeps the key, so a slot's key never changes within a
//! table) or at `SEALED` (dead, never written again), and carries two share
//! bits (see [`Entry`]). Replace, update, remove and re-insert are CASes on
//! `value`, so they never touch the slot and never need the key again (no
//! `K: Clone`). Migration moves entry *pointers*: while a table is copied,
//! old and new table may both point at one entry, and writes on its value
//! cell go on in either.
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
//! dereferences it) and the value (validated by re-reading the value cell's
//! pointer bits). A swapped-out `init` is retired by its own address with a
//! deleter that drops it in place and gives up the entry share it holds.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::ptr;

use crate::hazard::{CachedSet, Domain, HazardSet, Members};
use crate::sync::atomic::{AtomicIsize, AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use crate::CachePadded;

const FROZEN: usize = 1;
const COPIED: usize = 2;
const DROPPED: usize = 4;
const FLAGS: usize = 7;

/// Counter stripes for `len`.
const STRIPES: usize = if cfg!(loom) { 1 } else { 16 };

/// Slots copied per claimed chunk.
const CHUNK: usize = if cfg!(any(loom, miri)) { 2 } else { 64 };
/// Retired objects a thread collects before it scans (or hands them to
/// the domain): a scan's heavy fence is a `membarrier` system call that
/// interrupts the other CPUs, and most writes retire a value box, so at the
/// domain's own batch (16) the scans cost `map/insert-heavy` a sixth of its
/// time at two threads. Small under tests and Miri so scans run; 1 under
/// loom, where the domain's own batch is 1 so that every write's guard drop
/// scans and the models explore reclamation racing the other threads (at 16
/// no model retires enough to scan before the map's drop).
const SCAN_BATCH: usize = if cfg!(loom) {
    1
} else if cfg!(miri) {
    2
} else if cfg!(test) {
    16
} else {
    512
};
/// Smallest table.
const MIN_LEN: usize = if cfg!(loom) { 2 } else { 8 };

/// The `SEALED` value: the address of a static, never a box's (8-aligned,
/// so the value word keeps its two share bits free).
static SEAL: u64 = 0;

fn sealed<V>() -> *mut V {
    ptr::from_ref(&SEAL).cast_mut().cast()
}

/// Share bits of an entry's value word (see [`Entry`]): a table holds the
/// entry (cleared by the deleter of the `DROPPED` retire or by the table's
/// drop), and a swapped-out `init` waits for its retired drop.
const OWN_TABLE: usize = 1;
const OWN_INIT: usize = 2;
const SHARES: usize = OWN_TABLE | OWN_INIT;

/// A value, 8-aligned so that every value pointer (`&init` or a box) leaves
/// the share bits of the value word free (and `untag` serves both words).
/// `repr(C)`: the value is at offset 0, so a pointer to `Al<V>` is a pointer
/// to its `V`.
#[repr(C, align(8))]
pub(super) struct Al<V>(pub(super) V);

/// A key, its first value inline and its value cell; 8-aligned so the slot
/// word has three flag bits.
///
/// `value` holds `&init`, a boxed [`Al<V>`], null (removed: a tombstone that
/// keeps the key) or `SEALED` (dead), plus the share bits: `OWN_TABLE` while
/// a table owns the entry, `OWN_INIT` while a swapped-out `init` waits for its
/// retired drop (set by the CAS that swapped it out). Whoever clears the last
/// share frees the entry ([`release`]), so `init` is dropped as soon as no
/// hazard protects it and the entry is never freed before that drop, in
/// whatever order the scans run. No extra word: for `u64 → u64` an entry is
/// 24 bytes (a 32-byte malloc chunk) and a first insert one allocation.
#[repr(C, align(8))]
pub(crate) struct Entry<K, V> {
    value: AtomicPtr<V>,
    key: K,
    /// Written once before the entry is published, then only read (through
    /// `&`, by readers that protect `&init`) until it is dropped in place by
    /// the `drop_init` deleter or by the entry's drop.
    init: UnsafeCell<MaybeUninit<Al<V>>>,
}

impl<K, V> Entry<K, V> {
    /// A fresh entry holding `key` and `value` inline (one table share).
    fn boxed(key: K, value: V) -> *mut Self {
        let e = Box::into_raw(Box::new(Entry {
            value: AtomicPtr::new(ptr::null_mut()),
            key,
            init: UnsafeCell::new(MaybeUninit::new(Al(value))),
        }));
        // The slot word keeps a tag filter in the bits above 48.
        assert!(
            (e as usize) & FILTER == 0,
            "waitless::map needs heap addresses below 2^48"
        );
        // SAFETY: `e` is a fresh allocation.
        let init = unsafe { Self::init_ptr(e) };
        // Relaxed: not shared yet (published by the slot CAS).
        // SAFETY: as above.
        unsafe { (*e).value.store(tagged(init, OWN_TABLE), Ordering::Relaxed) };
        e
    }

    /// Takes the key and the inline value back out of an entry that was
    /// never published, and frees it.
    ///
    /// # Safety
    /// 1. `e` came from [`Entry::boxed`] and was never shared.
    unsafe fn unbox(e: *mut Self) -> (K, V) {
        // SAFETY: precondition 1: exclusively ours and fully initialised;
        // both fields are read once, then the allocation is freed without
        // running `Entry::drop` (as `MaybeUninit`, same layout).
        unsafe {
            let key = ptr::read(ptr::addr_of!((*e).key));
            let value = ptr::read(Self::init_ptr(e));
            drop(Box::from_raw(e.cast::<MaybeUninit<Self>>()));
            (key, value)
        }
    }

    /// The address of `init`'s value inside the entry `this` (no reference
    /// made, so it keeps the provenance of the whole allocation).
    ///
    /// # Safety
    /// 1. `this` points at a live entry.
    #[inline]
    unsafe fn init_ptr(this: *mut Self) -> *mut V {
        // SAFETY: precondition 1; `UnsafeCell<MaybeUninit<Al<V>>>` has the
        // layout of `Al<V>`, whose `V` is at offset 0.
        unsafe { ptr::addr_of_mut!((*this).init) }.cast()
    }
}

impl<K, V> Drop for Entry<K, V> {
    fn drop(&mut self) {
        // Relaxed: `&mut self`: the last share's release (AcqRel) or the
        // table's exclusive drop synchronized with every earlier writer.
        let v = untag(self.value.load(Ordering::Relaxed));
        let init: *mut V = self.init.get_mut().as_mut_ptr().cast();
        if v == init {
            // SAFETY: `value` still points at `init`: live, owned here.
            unsafe { self.init.get_mut().assume_init_drop() };
        } else if !v.is_null() && v != sealed() {
            // SAFETY: a value other than `init` is a boxed `Al<V>` owned by
            // this entry; whoever swapped a box out retired it. (A
            // swapped-out `init` was dropped by its deleter before the
            // last share was released.)
            drop(unsafe { Box::from_raw(v.cast::<Al<V>>()) });
        }
    }
}

/// Gives up one share (`bit`) of entry `e`; frees it if it was the last.
///
/// # Safety
/// 1. The caller holds share `bit` of `e` and does not use it again.
unsafe fn release<K, V>(e: *mut Entry<K, V>, bit: usize) {
    // SAFETY: precondition 1: our share keeps `e` alive until here.
    let cell = unsafe { &(*e).value };
    // Relaxed: the CAS below reads the current word.
    let mut w = cell.load(Ordering::Relaxed);
    loop {
        debug_assert!(flags(w) & bit != 0, "a share released twice");
        // AcqRel: Release orders our uses of the entry (the drop of
        // `init`, a reader's clone) before the last releaser frees it;
        // Acquire makes the last releaser see the other share's uses.
        match cell.compare_exchange_weak(w, untag_bits(w, bit), Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => break,
            Err(x) => w = x,
        }
    }
    if flags(w) & SHARES == bit {
        // SAFETY: the last share: nobody else refers to the entry.
        drop(unsafe { Box::from_raw(e) });
    }
}

/// Deleter for a swapped-out inline value: drops it in place, then gives up
/// the `OWN_INIT` share its retirement held (even if the drop panics).
///
/// # Safety
/// 1. `v` is `Entry::init_ptr(e)` of an entry whose `OWN_INIT` share this
///    retirement holds, and `init` is live and no longer in the value cell.
unsafe fn drop_init<K, V>(v: *mut V) {
    struct Release<K, V>(*mut Entry<K, V>);
    impl<K, V> Drop for Release<K, V> {
        fn drop(&mut self) {
            // SAFETY: the share taken when `init` was swapped out.
            unsafe { release(self.0, OWN_INIT) };
        }
    }
    let off = core::mem::offset_of!(Entry<K, V>, init);
    // SAFETY: precondition 1: `v` points `off` bytes into the entry and
    // keeps the provenance of the whole allocation it was derived from.
    let e = unsafe { v.cast::<u8>().sub(off) }.cast::<Entry<K, V>>();
    let _release = Release(e);
    // SAFETY: precondition 1: live, dropped once here.
    unsafe { ptr::drop_in_place(v) };
}

/// Deleter for an entry dropped by a migration: gives up the table's share.
///
/// # Safety
/// 1. `e`'s table share is this retirement's (the winning `DROPPED` CAS).
unsafe fn release_table<K, V>(e: *mut Entry<K, V>) {
    // SAFETY: precondition 1.
    unsafe { release(e, OWN_TABLE) };
}

// Tag bits are added and removed by byte offsets (`wrapping_add`/`sub`),
// which keep the pointer's provenance (the crate's MSRV predates
// `map_addr`); a pointer's address is read with `as usize`.

#[inline]
fn flags<T>(p: *mut T) -> usize {
    (p as usize) & FLAGS
}

/// `p` without the tag bits in `bits`.
#[inline]
fn untag_bits<T>(p: *mut T, bits: usize) -> *mut T {
    p.cast::<u8>().wrapping_sub((p as usize) & bits).cast()
}

/// `p` without its flag bits and, for a slot word, its filter bits (a
/// value word has none: its pointers are below 2^48, see `FILTER`).
#[inline]
fn untag<T>(p: *mut T) -> *mut T {
    untag_bits(p, FLAGS | FILTER)
}

/// The top 16 bits of a slot word: a filter of the entry's tag (see
/// [`filter`]), so that a probe can pass over another key's entry without
/// reading the tag array. x86-64 only, where user-space heap addresses are
/// canonical and below 2^47 ([`Entry::boxed`] checks it). Not on other
/// 64-bit targets: aarch64 heaps put a tag in the top byte of every pointer
/// (Android 11+ on any kernel with Top-Byte-Ignore, MTE-enabled glibc or
/// scudo), so the check would fail on every insert; there no bits, and
/// every filter is 0.
#[cfg(target_arch = "x86_64")]
const FILTER: usize = 0xFFFF << 48;
#[cfg(not(target_arch = "x86_64"))]
const FILTER: usize = 0;

/// The filter bits of a slot word holding an entry of tag `tag`: 16 bits
/// mixed from all of the tag (the home uses its low bits, so keys probed
/// together would share those).
#[inline]
fn filter(tag: u32) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        ((tag.wrapping_mul(0x9E37_79B1) >> 16) as usize) << 48
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = tag;
        0
    }
}

/// The slot word for entry `e` of tag `tag` (no flags).
#[inline]
fn slot_word<K, V>(e: *mut Entry<K, V>, tag: u32) -> *mut Entry<K, V> {
    e.cast::<u8>().wrapping_add(filter(tag)).cast()
}

/// A key's 32-bit tag: the hash folded to 32 bits, with the low bit set so
/// that 0 means "unclaimed". Two keys share a tag with odds 2^-31 (then
/// the key compare tells them apart).
#[inline]
fn tag_of(hash: u64) -> u32 {
    (hash ^ (hash >> 32)) as u32 | 1
}

/// A key's first probe slot: from the tag bits above its low bit, which is
/// always set (taking it would make every home slot odd and leave half the
/// table never a home). 31 bits: tables past 2^31 slots still work, their
/// homes just stay in the first 2^31.
#[inline]
fn home(tag: u32, mask: usize) -> usize {
    (tag >> 1) as usize & mask
}

use crate::utils::prefetch;

/// `p` (whose bits in `f` may be set already) with the bits `f` set.
#[inline]
fn tagged<T>(p: *mut T, f: usize) -> *mut T {
    p.cast::<u8>().wrapping_add(f & !(p as usize)).cast()
}

/// The slots of a table as two arrays: 12 bytes a slot (a 4-byte tag and an
/// 8-byte entry word) instead of 16 for an interleaved `{u64, ptr}` pair.
/// A probe reads the tag line (16 tags) and, on a matching tag, the word.
struct Slots<K, V> {
    /// `tag_of(hash)` once a key claimed the slot (0 = unclaimed), set once
    /// and never changed, so a probe for another key skips the slot
    /// without touching an entry.
    tags: Box<[AtomicU32]>,
    /// An entry pointer plus the flags `FROZEN`, `COPIED`, `DROPPED`.
    words: Box<[AtomicPtr<Entry<K, V>>]>,
}

/// One slot of [`Slots`].
struct Slot<'a, K, V> {
    tag: &'a AtomicU32,
    word: &'a AtomicPtr<Entry<K, V>>,
}

impl<K, V> Slots<K, V> {
    fn new(len: usize) -> Self {
        Slots {
            tags: (0..len).map(|_| AtomicU32::new(0)).collect(),
            words: (0..len).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.words.len()
    }

    #[inline]
    fn at(&self, i: usize) -> Slot<'_, K, V> {
        Slot {
            tag: &self.tags[i],
            word: &self.words[i],
        }
    }

    /// [`at`](Self::at) without the bounds checks (the probe loops).
    ///
    /// # Safety
    /// 1. `i < self.len()`.
    #[inline]
    unsafe fn at_unchecked(&self, i: usize) -> Slot<'_, K, V> {
        debug_assert!(i < self.len());
        // SAFETY: precondition 1; both arrays have `len()` elements.
        unsafe {
            Slot {
                tag: self.tags.get_unchecked(i),
                word: self.words.get_unchecked(i),
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = Slot<'_, K, V>> {
        (0..self.len()).map(|i| self.at(i))
    }
}

struct Table<K, V> {
    slots: Slots<K, V>,
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
        Box::into_raw(Box::new(Table {
            slots: Slots::new(len),
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

/// What [`RawTable::probe`] found.
enum Probe<K, V> {
    /// The key's entry (protected by the set's member 2), its value (not
    /// null, protected by member 3) and its value cell's word as validated
    /// (the value with the share bits).
    Hit(*mut Entry<K, V>, *const V, *mut V),
    /// The key's entry (protected by member 2) holds no value (a
    /// tombstone); its value cell's word as validated. Absent for a read.
    Tomb(*mut Entry<K, V>, *mut V),
    /// The key is absent (no entry): the probe ended at free slot `.1`
    /// of table `.0`, the root when the probe protected it (member 0).
    Miss(*const Table<K, V>, usize),
    /// Not decided on the fast path: use the general one.
    Slow,
}

/// What [`RawTable::write_value`] did.
enum Write<V> {
    /// The entry is sealed (dead): probe again.
    Dead,
    /// Nothing written; the current value (null if none), protected.
    None(*mut V),
    /// Written; the value swapped out (`None` if there was none), retired
    /// and protected.
    Wrote(Option<*mut V>),
}

/// What [`RawTable::put`] did.
enum Put<V> {
    Inserted,
    Replaced(V),
    Present(V),
}

/// A value a fast write swapped out of its cell (`p` null if the cell
/// held none): protected by member 3 of the writer's set, not retired yet;
/// `deleter` is the one its retirement must use.
struct Old<V> {
    p: *mut V,
    deleter: unsafe fn(*mut V),
}

/// Deleter for a swapped-out value box: [`pool::free`](super::pool::free)
/// on the `*mut V` the value cell held.
///
/// # Safety
/// 1. As for `pool::free`: `p` is the value of a box from `pool::boxed`
///    (or `Box::new(Al(..))`), live, and nothing uses it afterwards.
unsafe fn free_box<V>(p: *mut V) {
    // SAFETY: precondition 1; `Al<V>` is `repr(C)` with the value at
    // offset 0, so the cell's pointer is the box's.
    unsafe { super::pool::free(p.cast::<Al<V>>()) }
}

/// A boxed `Al<V>` not published yet (null when none or published).
struct Own<V>(*mut V);

impl<V> Drop for Own<V> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a boxed `Al<V>` never published (cleared when it is).
            drop(unsafe { Box::from_raw(self.0.cast::<Al<V>>()) });
        }
    }
}

/// The hazard slots of one operation.
pub(crate) struct Guard<'m> {
    domain: &'m Domain,
    /// 0 and 1: tables; 2: an entry; 3: a value.
    hp: HazardSet<'m, 4>,
    retired: bool,
    /// This operation retired a table: scan on drop (a table is large and
    /// migrations are rare; left to the batch threshold, the old tables of
    /// a growing map would stay allocated until some later scan).
    scan: bool,
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.retired {
            self.collect();
        }
    }
}

impl Guard<'_> {
    /// The drop of a guard whose operation retired something: scan or
    /// collect (out of line: reads never get here).
    #[cold]
    #[inline(never)]
    fn collect(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if self.scan {
            // Our own hazards end here; clear them first, or the scan
            // would keep the table we just retired (hazard 0 protects it).
            for i in 0..4 {
                self.hp.publish(i, ptr::null_mut::<u8>());
            }
            self.domain.reclaim();
        } else {
            self.domain.collect_at(SCAN_BATCH);
        }
    }
}

/// The raw table: a root pointer, a live count and the hazard domain.
pub(crate) struct RawTable<K, V> {
    root: AtomicPtr<Table<K, V>>,
    /// Live entries, in per-thread stripes (one shared counter would be the
    /// one hot word every writer touches).
    counts: Box<[CachePadded<AtomicIsize>]>,
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

impl<K, V> RawTable<K, V> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        let len = n
            .saturating_add(n / 3)
            .clamp(MIN_LEN, 1 << 20)
            .next_power_of_two();
        RawTable {
            root: AtomicPtr::new(Table::new(len)),
            counts: (0..STRIPES)
                .map(|_| CachePadded::new(AtomicIsize::new(0)))
                .collect(),
            migrations: AtomicUsize::new(0),
            domain: Domain::new(),
        }
    }

    pub(crate) fn guard(&self) -> Guard<'_> {
        Guard {
            domain: &self.domain,
            hp: HazardSet::new_in(&self.domain),
            retired: false,
            scan: false,
        }
    }

    /// This thread's counter stripe.
    fn stripe(&self) -> &AtomicIsize {
        #[cfg(not(loom))]
        {
            use crate::sync::atomic::AtomicUsize as Counter;
            static NEXT: Counter = Counter::new(0);
            crate::sync::thread_local! {
                static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
            }
            let i = INDEX.try_with(|i| *i).unwrap_or(0);
            &self.counts[i % STRIPES]
        }
        #[cfg(loom)]
        {
            &self.counts[0]
        }
    }

    /// Live entries (exact when quiescent).
    pub(crate) fn len(&self) -> usize {
        // Relaxed: a statistic.
        let n: isize = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        n.max(0) as usize
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
        // the root moved past it, so root == t now means it is not.
        let r = self.root.load(Ordering::Acquire);
        if r == ptr::from_ref(t).cast_mut() {
            // SAFETY: published, and validated as above.
            Some((unsafe { &*n }, ni))
        } else if r == n {
            // The root is at `n`'s address. That is `n`, or (if `n` was
            // retired and freed before we published, and a later table
            // reused the address and became the root) that later table:
            // either way the current root, protected by the hazard we
            // published before this load. Use the root's pointer, whose
            // provenance is the live allocation's, not `t.next`'s; a later
            // table holds every key of `n` after its migration.
            // SAFETY: published, and validated against the root.
            Some((unsafe { &*r }, ni))
        } else {
            None
        }
    }

    /// Probes `t` for the key (`eq`, tag `tag`).
    fn find(
        &self,
        g: &mut Guard<'_>,
        t: &Table<K, V>,
        tag: u32,
        mut eq: impl FnMut(&K) -> bool,
    ) -> Found<K, V> {
        let mut i = home(tag, t.mask);
        let mut flagged = false;
        let f = filter(tag);
        for _ in 0..t.slots.len() {
            // SAFETY: `i` is masked by `t.mask`, which is `len - 1`.
            let s = unsafe { t.slots.at_unchecked(i) };
            // The word first: for a hit, its filter bits stand in for the
            // tag line (one cache line per probed slot, not two).
            // Acquire: pairs with the Release CAS that stored the entry.
            let mut w = s.word.load(Ordering::Acquire);
            loop {
                let e = untag(w);
                if e.is_null() {
                    // Relaxed: the tag is set once, before any entry is
                    // stored in the slot; a foreign tag (a claim whose word
                    // CAS is still to come, or lost to a freeze) means the
                    // slot never holds this key: probe on. A stale 0 only
                    // ends the probe as the word would have.
                    let st = s.tag.load(Ordering::Relaxed);
                    if st != 0 && st != tag {
                        break;
                    }
                    if flags(w) & FROZEN != 0 || flagged {
                        return Found::Next;
                    }
                    return Found::Empty(i);
                }
                if (w as usize) & FILTER != f {
                    break; // another key's entry (its tag differs)
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
                    if untag(ent.value.load(Ordering::Acquire)) == sealed() {
                        break; // dead: a newer entry may follow
                    }
                    return Found::Entry(e);
                }
                break;
            }
            i = (i + 1) & t.mask;
        }
        if flagged {
            Found::Next
        } else {
            Found::Full
        }
    }

    /// Loads the value cell `cell` and protects its value in hazard 3;
    /// returns the whole word (value pointer and share bits).
    fn protect_value(g: &mut Guard<'_>, cell: &AtomicPtr<V>) -> *mut V {
        // Relaxed: validated below.
        let mut w = cell.load(Ordering::Relaxed);
        loop {
            g.hp.publish(3, untag(w));
            // Acquire: pairs with the Release CAS that stored the value (so
            // its contents are visible) and validates the publication: a
            // value is retired only after it was swapped out of the cell.
            // Only the pointer counts; the share bits change on their own.
            let now = cell.load(Ordering::Acquire);
            if untag(now) == untag(w) {
                return now;
            }
            w = now;
        }
    }

    /// The one write path on a value cell (`insert`, `remove`, `update`,
    /// `get_or_insert_with`, `retain`). Protects the current value of entry
    /// `e` (protected by hazard 2) in hazard 3 and asks `mk` for the new
    /// one: `mk(None)` if the entry holds no value, `mk(Some(v))` with the
    /// current value; `mk` returns the pointer to CAS in (a boxed `Al<V>` it
    /// owns, or null to remove) or `None` to write nothing. `mk` runs again
    /// after a failed CAS. A swapped-out value is retired (so `g` scans on
    /// drop) and stays protected by hazard 3.
    fn write_value(
        &self,
        g: &mut Guard<'_>,
        e: *mut Entry<K, V>,
        mk: &mut dyn FnMut(Option<&V>) -> Option<*mut V>,
    ) -> Write<V> {
        // SAFETY: `e` is protected by hazard 2.
        let cell = unsafe { &(*e).value };
        // SAFETY: as above.
        let init = unsafe { Entry::init_ptr(e) };
        loop {
            let cur = Self::protect_value(g, cell);
            let p = untag(cur);
            if p == sealed() {
                return Write::Dead;
            }
            // The caller reads the value we swap out (a clone to return)
            // only after the CAS; start its cache miss now, so it overlaps
            // `mk` and the CAS instead of following them.
            prefetch(p);
            // SAFETY: protected by hazard 3 and validated against the cell.
            let Some(new) = mk((!p.is_null()).then(|| unsafe { &*p })) else {
                return Write::None(p);
            };
            if p.is_null() && new.is_null() {
                return Write::None(p);
            }
            let mut cur = cur;
            let swapped = loop {
                // Swapping `init` out gives its pending drop a share.
                let bits = flags(cur) | if p == init { OWN_INIT } else { 0 };
                // AcqRel: Release publishes the new box to readers; Acquire
                // pairs with the previous value's CAS (whose box we retire).
                match cell.compare_exchange(
                    cur,
                    tagged(new, bits),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break true,
                    // Only the share bits changed: `p` is still the value
                    // (and still protected), so retry without asking `mk`
                    // again; re-protecting could validate a new value at a
                    // reused address `mk` never saw.
                    Err(x) if untag(x) == p => cur = x,
                    Err(_) => break false,
                }
            };
            if !swapped {
                continue;
            }
            // Relaxed (both): a statistic.
            if p.is_null() {
                self.stripe().fetch_add(1, Ordering::Relaxed);
                return Write::Wrote(None);
            }
            if new.is_null() {
                self.stripe().fetch_sub(1, Ordering::Relaxed);
            }
            if p == init {
                // SAFETY: `init` is swapped out by our CAS, which took the
                // `OWN_INIT` share this retirement holds; retired once.
                unsafe { self.domain.retire_deferred(p, drop_init::<K, V>) };
            } else {
                // SAFETY: a box (from `pool::boxed`) swapped out by our CAS,
                // retired once; `pool::free` drops it and keeps its block.
                unsafe {
                    self.domain
                        .retire_deferred(p.cast::<Al<V>>(), super::pool::free::<V>);
                };
            }
            g.retired = true;
            return Write::Wrote(Some(p));
        }
    }

    /// The tail of a write that swapped `old` out (or read it): clone it
    /// (still protected by hazard 3; retired by `write_value`), then drop
    /// the guard before returning, so neither a panicking `V::clone` nor a
    /// panicking `V::drop` in the guard's scan leaks (retire → clone →
    /// drop guard).
    fn take_old(g: Guard<'_>, old: *mut V) -> V
    where
        V: Clone,
    {
        // SAFETY: protected by hazard 3 of `g`, which is still alive, so the
        // retire in `write_value` cannot free it yet.
        let v = unsafe { (*old).clone() };
        drop(g);
        v
    }

    /// The key's stored key and value, protected by `g`'s hazards 2 and 3
    /// until the next operation on `g` (the pinned view's read): the fast
    /// probe ([`probe`](Self::probe)), else the general path.
    #[inline(always)]
    pub(crate) fn lookup_kv<'g, Q>(
        &'g self,
        g: &'g mut Guard<'_>,
        hash: u64,
        key: &Q,
    ) -> Option<(&'g K, &'g V)>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        match self.probe(g.hp.members(), hash, key) {
            // SAFETY: protected by `g`'s hazards 2 and 3 (see `probe`)
            // until `g` is used again, which the borrow prevents.
            Probe::Hit(e, v, _) => Some(unsafe { (&(*e).key, &*v) }),
            Probe::Tomb(..) | Probe::Miss(..) => None,
            Probe::Slow => self.lookup_kv_slow(g, hash, key),
        }
    }

    /// The read fast path, for a table that is not being migrated from
    /// where the probe goes: it protects the root (member 0), probes with
    /// the word filter, protects and compares one entry per matching
    /// filter (member 2) and protects the value (member 3), with the same
    /// loads, hazards and validations as [`find`](Self::find) and
    /// [`protect_value`](Self::protect_value), so the same linearization
    /// points. `Hit(e, v, vw)`: the key's entry, its value and its value
    /// cell's word, entry and value protected by members 2 and 3 until they are
    /// published over or the set is dropped (`Tomb`: the same for an entry
    /// without a value, which a read reports absent). Every
    /// other case (a `COPIED` or `FROZEN` slot on the way, a word or value
    /// that changed under a validation, a sealed entry, a full table) is
    /// `Slow`: the caller starts the whole lookup again on the general
    /// path, which is always allowed, as nothing was returned yet.
    #[inline(always)]
    fn probe<Q>(&self, m: Members<'_, 4>, hash: u64, key: &Q) -> Probe<K, V>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        // One branch on the fence strategy, not one per publication.
        if m.asymmetric() {
            self.probe_as::<true, Q>(m, hash, key)
        } else {
            self.probe_as::<false, Q>(m, hash, key)
        }
    }

    /// [`probe`](Self::probe) for the fence strategy `ASYM`.
    #[inline(always)]
    fn probe_as<const ASYM: bool, Q>(&self, m: Members<'_, 4>, hash: u64, key: &Q) -> Probe<K, V>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let tag = tag_of(hash);
        let f = filter(tag);
        // SAFETY: published and validated against the root; a table is
        // retired only after the root moved past it.
        let t = unsafe { &*m.protect_as::<ASYM, _>(0, &self.root) };
        // The table's arrays and mask, read once (the loop's Acquire loads
        // would otherwise make the compiler reload them on every slot).
        let (tags, words, mask) = (&*t.slots.tags, &*t.slots.words, t.mask);
        let mut i = home(tag, mask);
        // Slots left to probe: all of them (`len = mask + 1 >= 1`).
        let mut left = mask;
        loop {
            // SAFETY: `i` is masked by `t.mask`, which is `len - 1`, and
            // both arrays have `len` elements.
            let s = unsafe {
                Slot {
                    tag: tags.get_unchecked(i),
                    word: words.get_unchecked(i),
                }
            };
            // Acquire: pairs with the Release CAS that stored the entry.
            let w = s.word.load(Ordering::Acquire);
            let e = untag(w);
            if e.is_null() {
                // As in `find`: a foreign tag means a claim that never
                // holds this key (probe on); otherwise the probe ends here.
                // Relaxed: see `find`.
                let st = s.tag.load(Ordering::Relaxed);
                if st == 0 || st == tag {
                    if flags(w) & FROZEN != 0 {
                        return Probe::Slow; // migrating
                    }
                    return Probe::Miss(t, i);
                }
            } else if (w as usize) & FILTER == f {
                if flags(w) & COPIED != 0 {
                    return Probe::Slow; // the key may be in the next table
                }
                m.publish_as::<ASYM, _>(2, e);
                // Acquire: validation, as in `find`.
                if s.word.load(Ordering::Acquire) != w {
                    return Probe::Slow;
                }
                // SAFETY: protected and validated above.
                let ent = unsafe { &*e };
                if ent.key.borrow() == key {
                    // Relaxed: validated (Acquire) below, as in
                    // `protect_value`.
                    let vw = ent.value.load(Ordering::Relaxed);
                    let v = untag(vw);
                    m.publish_as::<ASYM, _>(3, v);
                    // Acquire: pairs with the Release CAS that stored the
                    // value and validates the publication. The whole word
                    // (`protect_value` compares the pointer only): a
                    // share bit that changed meanwhile, which is rare, only
                    // sends the read to the general path.
                    if ent.value.load(Ordering::Acquire) != vw || v == sealed() {
                        return Probe::Slow;
                    }
                    if v.is_null() {
                        return Probe::Tomb(e, vw);
                    }
                    return Probe::Hit(e, v, vw);
                }
            }
            if left == 0 {
                return Probe::Slow; // every slot probed: a full table
            }
            left -= 1;
            i = (i + 1) & mask;
        }
    }

    /// The general path of [`lookup_kv`](Self::lookup_kv): any table state.
    #[cold]
    #[inline(never)]
    fn lookup_kv_slow<'g, Q>(
        &'g self,
        g: &'g mut Guard<'_>,
        hash: u64,
        key: &Q,
    ) -> Option<(&'g K, &'g V)>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let tag = tag_of(hash);
        let (mut t, mut ti) = self.root(g);
        loop {
            match self.find(g, t, tag, |k| k.borrow() == key) {
                Found::Entry(e) => {
                    // SAFETY: `e` is protected by hazard 2.
                    let v = untag(Self::protect_value(g, unsafe { &(*e).value }));
                    if v.is_null() {
                        return None;
                    }
                    if v == sealed() {
                        continue; // sealed meanwhile: probe again
                    }
                    // SAFETY: the entry is protected by hazard 2 (validated
                    // against its slot) and the value by hazard 3 (validated
                    // against the cell; a value is retired only after being
                    // swapped out), until `g` is used again, which the
                    // borrow prevents.
                    return Some(unsafe { (&(*e).key, &*v) });
                }
                Found::Next => match self.advance(g, t, ti) {
                    Some(n) => (t, ti) = n,
                    None => (t, ti) = self.root(g),
                },
                Found::Empty(_) | Found::Full => return None,
            }
        }
    }

    /// The value of the key, protected by `g`'s hazard 3 until the next
    /// operation on `g`.
    #[inline]
    pub(crate) fn lookup<'g, Q>(&'g self, g: &'g mut Guard<'_>, hash: u64, key: &Q) -> Option<&'g V>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.lookup_kv(g, hash, key).map(|(_, v)| v)
    }

    /// Calls `f` on the value of the key, if present. The fast path holds
    /// only the thread's cached hazard set (no [`Guard`]: a read retires
    /// nothing).
    #[inline(always)]
    pub(crate) fn get_with<Q, R>(&self, hash: u64, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        if let Some(hp) = CachedSet::<4>::try_new(&self.domain) {
            match self.probe(hp.members(), hash, key) {
                // SAFETY: protected by `hp`'s members 2 and 3 (see
                // `probe`); `hp` is neither used nor dropped before `f`
                // returns.
                Probe::Hit(_, v, _) => return Some(f(unsafe { &*v })),
                Probe::Tomb(..) | Probe::Miss(..) => return None,
                Probe::Slow => {}
            }
        }
        self.get_with_slow(hash, key, f)
    }

    /// [`get_with`](Self::get_with) with a per-call guard: when the cached
    /// set is taken (a read nested in another operation's closure), not
    /// available (another domain used last, thread exit, always under
    /// loom, so that the models explore [`probe`](Self::probe) through
    /// here), or its probe was not decided. Probes again, then the general
    /// path.
    #[cold]
    #[inline(never)]
    fn get_with_slow<Q, R>(&self, hash: u64, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let mut g = self.guard();
        self.lookup_kv(&mut g, hash, key).map(|(_, v)| f(v))
    }

    /// Inserts or replaces; returns the old value (cloned).
    ///
    /// The fast path holds only the thread's cached hazard set:
    /// [`probe`](Self::probe), then one CAS on the value cell of the key's
    /// entry, or for a new key the slot claim in a root that is not
    /// migrating ([`claim_fast`](Self::claim_fast)); the old value is
    /// retired into the set's record (no [`Guard`]). A migration on the
    /// probe's way, a lost CAS, an exhausted budget or a taken cached set
    /// (a write nested in another operation's closure or `Eq`) go the
    /// general way.
    #[inline]
    pub(crate) fn insert(&self, hash: u64, key: K, value: V) -> Option<V>
    where
        K: Eq,
        V: Clone,
    {
        let Some(hp) = CachedSet::<4>::try_new(&self.domain) else {
            return self.insert_slow(hash, key, value);
        };
        match self.insert_fast(hp.members(), hash, key, value) {
            Ok(old) => self.finish_cached(hp, old),
            Err((key, value)) => {
                drop(hp);
                self.insert_put(hash, key, value)
            }
        }
    }

    /// [`insert`](Self::insert) with a per-call guard (cached set taken or
    /// unavailable; always under loom, so the models explore
    /// [`insert_fast`](Self::insert_fast)): the fast write on the guard's
    /// set, then the general path.
    #[cold]
    #[inline(never)]
    fn insert_slow(&self, hash: u64, key: K, value: V) -> Option<V>
    where
        K: Eq,
        V: Clone,
    {
        let g = self.guard();
        match self.insert_fast(g.hp.members(), hash, key, value) {
            Ok(old) => self.finish_guarded(g, old),
            Err((key, value)) => {
                drop(g);
                self.insert_put(hash, key, value)
            }
        }
    }

    /// The general insert ([`put`](Self::put)).
    #[inline(never)]
    fn insert_put(&self, hash: u64, key: K, value: V) -> Option<V>
    where
        K: Eq,
        V: Clone,
    {
        match self.put(hash, key, value, true) {
            Put::Inserted => None,
            Put::Replaced(old) | Put::Present(old) => Some(old),
        }
    }

    /// The write fast path of `insert`: `Ok` with what one value-cell CAS
    /// swapped out of the key's entry (see [`swap_fast`](Self::swap_fast)),
    /// or, for a key without an entry, `Ok` with a null `old` after the
    /// slot CAS of a new entry ([`claim_fast`](Self::claim_fast)); `Err`
    /// with the key and value when [`probe`](Self::probe) sends the write
    /// to the general path or a CAS lost.
    #[inline(always)]
    fn insert_fast(&self, m: Members<'_, 4>, hash: u64, key: K, value: V) -> Result<Old<V>, (K, V)>
    where
        K: Eq,
    {
        let (e, vw) = match self.probe(m, hash, &key) {
            Probe::Hit(e, _, vw) | Probe::Tomb(e, vw) => (e, vw),
            Probe::Miss(t, i) => return self.claim_fast(t, i, tag_of(hash), key, value),
            Probe::Slow => return Err((key, value)),
        };
        let nb = super::pool::boxed(value).cast::<V>();
        match self.swap_fast(e, vw, nb) {
            Some(old) => Ok(old),
            // SAFETY: our box, never published (the CAS failed).
            None => Err((key, unsafe { Box::from_raw(nb.cast::<Al<V>>()) }.0)),
        }
    }

    /// A new key's entry into free slot `i` of `t` (protected by member 0;
    /// the probe for the key ended there): the steps of `put`'s
    /// `Found::Empty` arm (only while `t` is the root and not migrating;
    /// the budget reservation; the tag claim; the slot CAS `null → entry`,
    /// the linearization point). Anything else (a migration, an exhausted
    /// budget, a slot claimed by another key, a lost CAS) gives the key
    /// and value back for the general path, which helps or grows.
    #[inline]
    fn claim_fast(
        &self,
        t: *const Table<K, V>,
        i: usize,
        tag: u32,
        key: K,
        value: V,
    ) -> Result<Old<V>, (K, V)> {
        // SAFETY: `t` is protected by member 0 (validated against the root
        // by `probe`); a table is retired only after the root moved past it.
        let t = unsafe { &*t };
        // Acquire (both): as in `put`, pairs with `grow`'s CAS and with the
        // root's move.
        if !t.next.load(Ordering::Acquire).is_null()
            || self.root.load(Ordering::Acquire) != ptr::from_ref(t).cast_mut()
        {
            return Err((key, value));
        }
        // Relaxed: a budget (see `put`).
        if t.claims.fetch_add(1, Ordering::Relaxed) >= t.max {
            t.claims.fetch_sub(1, Ordering::Relaxed);
            return Err((key, value));
        }
        let s = t.slots.at(i);
        // Relaxed: the tag orders nothing (see `find`).
        let claimed = match s
            .tag
            .compare_exchange(0, tag, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(x) => x == tag,
        };
        if claimed {
            let ep = Entry::boxed(key, value);
            // Release: publishes the entry and its value (pairs with the
            // Acquire word loads of `probe` and `find`); nothing is read
            // through the null word we replace. Relaxed on failure:
            // nothing is read through the word we lost to either; the
            // general path re-reads it with Acquire.
            if s.word
                .compare_exchange(
                    ptr::null_mut(),
                    slot_word(ep, tag),
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                // Relaxed: a statistic.
                self.stripe().fetch_add(1, Ordering::Relaxed);
                return Ok(Old {
                    p: ptr::null_mut(),
                    deleter: free_box::<V>,
                });
            }
            t.claims.fetch_sub(1, Ordering::Relaxed);
            // SAFETY: the CAS failed, so `ep` was never shared.
            return Err(unsafe { Entry::unbox(ep) });
        }
        t.claims.fetch_sub(1, Ordering::Relaxed);
        Err((key, value))
    }

    /// The write fast path of `remove`: `Ok(Some(old))` if one value-cell
    /// CAS swapped the key's value out, `Ok(None)` if the key holds no
    /// value (no entry, or a tombstone: linearized at the word or value
    /// load `probe` validated, as in the general path), `Err(())` for the
    /// general path (`probe` undecided, or the CAS lost).
    #[inline(always)]
    fn remove_fast<Q>(&self, m: Members<'_, 4>, hash: u64, key: &Q) -> Result<Option<Old<V>>, ()>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        match self.probe(m, hash, key) {
            Probe::Hit(e, _, vw) => self.swap_fast(e, vw, ptr::null_mut()).map(Some).ok_or(()),
            Probe::Tomb(..) | Probe::Miss(..) => Ok(None),
            Probe::Slow => Err(()),
        }
    }

    /// One CAS of entry `e`'s value cell from `vw`, the word
    /// [`probe`](Self::probe) validated (entry protected by member 2, its
    /// value, if any, by member 3), to `nb` (a box of ours not published
    /// yet, or null to remove): the CAS of [`write_value`](Self::write_value),
    /// with its share bits and counters, so the same linearization point.
    /// `None` if the CAS failed; else what it swapped out, not retired
    /// yet (the caller retires it once).
    #[inline(always)]
    fn swap_fast(&self, e: *mut Entry<K, V>, vw: *mut V, nb: *mut V) -> Option<Old<V>> {
        let p = untag(vw);
        // The caller clones what we swap out after the CAS: start its
        // cache miss now (as in `write_value`).
        prefetch(p);
        // SAFETY: `e` is protected by member 2 and was validated against
        // its slot by `probe`.
        let cell = unsafe { &(*e).value };
        // SAFETY: as above.
        let init = unsafe { Entry::init_ptr(e) };
        // Swapping `init` out gives its pending drop a share.
        let bits = flags(vw) | if p == init { OWN_INIT } else { 0 };
        // AcqRel: as in `write_value`: Release publishes the new box to
        // readers; Acquire pairs with the CAS that stored the value we
        // swap out (whose box we retire). Expecting the whole word: a
        // share bit or a seal that changed since the probe fails the CAS
        // and sends the write to the general path.
        cell.compare_exchange(vw, tagged(nb, bits), Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        // Relaxed (both): a statistic.
        if p.is_null() {
            self.stripe().fetch_add(1, Ordering::Relaxed);
        } else if nb.is_null() {
            self.stripe().fetch_sub(1, Ordering::Relaxed);
        }
        let deleter: unsafe fn(*mut V) = if p == init {
            drop_init::<K, V>
        } else {
            free_box::<V>
        };
        Some(Old { p, deleter })
    }

    /// The tail of a fast write on the cached set `hp`: retires `old`
    /// into the set's record, clones it (still protected by member 3),
    /// gives the set back, then hands over or scans (out of line) once the
    /// thread's private list holds `SCAN_BATCH` objects: retire → clone →
    /// release → collect, as [`take_old`](Self::take_old) orders it, so a
    /// panicking `V::clone` or `V::drop` (in the scan) leaks nothing and
    /// leaves the set free (dropped by the unwinding or before the scan).
    #[inline(always)]
    fn finish_cached(&self, hp: CachedSet<'_, 4>, old: Old<V>) -> Option<V>
    where
        V: Clone,
    {
        if old.p.is_null() {
            return None;
        }
        // SAFETY: `old.p` was swapped out of its cell by our CAS, so it is
        // unreachable from then on; retired once, with the deleter
        // `swap_fast` chose for it (`drop_init` holds the `OWN_INIT` share
        // the CAS took; `free_box` for a pool box).
        let n = unsafe { hp.retire_deferred(old.p, old.deleter) };
        // SAFETY: protected by member 3 of `hp`, which is still alive: a
        // scan (even one run by a write nested in this `clone`, which may
        // hand over or scan this record's list) keeps it until `hp` is
        // dropped below.
        let v = unsafe { (*old.p).clone() };
        drop(hp);
        if n >= SCAN_BATCH {
            self.collect();
        }
        Some(v)
    }

    /// [`finish_cached`](Self::finish_cached) for a fast write on a guard's
    /// set: retire through the domain, then [`take_old`](Self::take_old).
    fn finish_guarded(&self, mut g: Guard<'_>, old: Old<V>) -> Option<V>
    where
        V: Clone,
    {
        if old.p.is_null() {
            return None;
        }
        // SAFETY: as in `finish_cached`.
        unsafe { self.domain.retire_deferred(old.p, old.deleter) };
        g.retired = true;
        Some(Self::take_old(g, old.p))
    }

    /// Hands over or scans this thread's retired list (the out-of-line
    /// part of a fast write's tail; see `Guard::collect`).
    #[cold]
    #[inline(never)]
    fn collect(&self) {
        // Not while the thread unwinds (as `Guard::collect`): a scan runs
        // deleters, and a panicking `V::drop` during unwinding aborts the
        // process. The objects stay in the private list for the next
        // write's collect (map12wr's F1, test
        // `fast_writes_during_unwinding_run_no_deleter`).
        if std::thread::panicking() {
            return;
        }
        self.domain.collect_at(SCAN_BATCH);
    }

    /// A clone of the key's value; if absent, inserts `make()` first (run
    /// at most once, only when the key was found absent) and returns a
    /// clone of it. If another thread inserts the key first, the made value
    /// is dropped and a clone of theirs is returned.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn get_or_insert_with(&self, hash: u64, key: K, make: impl FnOnce() -> V) -> V
    where
        K: Eq,
        V: Clone,
    {
        if let Some(v) = self.get_with(hash, &key, V::clone) {
            return v;
        }
        let v = make();
        // Clone before publishing: once in, another thread may remove and
        // free it.
        let ret = v.clone();
        match self.put(hash, key, v, false) {
            Put::Inserted => ret,
            Put::Replaced(v) | Put::Present(v) => v,
        }
    }

    /// Inserts `value` for `key`: if the key holds a value, replaces it
    /// (`replace`) or leaves it (then `Present` with a clone of it).
    fn put(&self, hash: u64, key: K, value: V, replace: bool) -> Put<V>
    where
        K: Eq,
        V: Clone,
    {
        let tag = tag_of(hash);
        // The value travels loose, or boxed (`own`) for a value-cell CAS,
        // or inline in a fresh entry for a slot CAS; the key stays loose
        // until a slot CAS and comes back if it fails.
        let mut own = Own::<V>(ptr::null_mut());
        let mut val = Some(value);
        let mut loose = Some(key);
        let mut g = self.guard();
        let (mut t, mut ti) = self.root(&mut g);
        loop {
            let k = loose.as_ref().expect("key held loose");
            match self.find(&mut g, t, tag, |x| x == k) {
                Found::Entry(e) => {
                    if own.0.is_null() {
                        let v = val.take().expect("value held loose");
                        own.0 = super::pool::boxed(v).cast();
                    }
                    let nb = own.0;
                    match self.write_value(&mut g, e, &mut |cur| {
                        (replace || cur.is_none()).then_some(nb)
                    }) {
                        Write::Dead => {} // probe again
                        Write::None(p) => return Put::Present(Self::take_old(g, p)),
                        Write::Wrote(None) => {
                            own.0 = ptr::null_mut();
                            return Put::Inserted;
                        }
                        Write::Wrote(Some(old)) => {
                            own.0 = ptr::null_mut();
                            return Put::Replaced(Self::take_old(g, old));
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
                    let s = t.slots.at(i);
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
                        let v = match val.take() {
                            Some(v) => v,
                            None => {
                                // SAFETY: our unpublished box; cleared.
                                let b = unsafe { Box::from_raw(own.0.cast::<Al<V>>()) };
                                own.0 = ptr::null_mut();
                                b.0
                            }
                        };
                        let ep = Entry::boxed(loose.take().expect("key held loose"), v);
                        // AcqRel: Release publishes the entry and its value;
                        // Acquire (failure) sees the winner's entry.
                        if s.word
                            .compare_exchange(
                                ptr::null_mut(),
                                slot_word(ep, tag),
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok()
                        {
                            // Relaxed: a statistic.
                            self.stripe().fetch_add(1, Ordering::Relaxed);
                            return Put::Inserted;
                        }
                        // SAFETY: the CAS failed, so `ep` was never shared.
                        let (k, v) = unsafe { Entry::unbox(ep) };
                        loose = Some(k);
                        val = Some(v);
                    }
                    t.claims.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Finds the key's entry (protected by hazard 2 of `g`), or `None` if
    /// the key has none.
    fn entry_of<Q>(&self, g: &mut Guard<'_>, tag: u32, key: &Q) -> Option<*mut Entry<K, V>>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (mut t, mut ti) = self.root(g);
        loop {
            match self.find(g, t, tag, |k| k.borrow() == key) {
                Found::Entry(e) => return Some(e),
                Found::Next => match self.advance(g, t, ti) {
                    Some(n) => (t, ti) = n,
                    None => (t, ti) = self.root(g),
                },
                Found::Empty(_) | Found::Full => return None,
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
        if let Some(hp) = CachedSet::<4>::try_new(&self.domain) {
            match self.remove_fast(hp.members(), hash, key) {
                Ok(Some(old)) => return self.finish_cached(hp, old),
                Ok(None) => return None,
                Err(()) => {}
            }
        }
        self.remove_slow(hash, key)
    }

    /// [`remove`](Self::remove) with a per-call guard: the fast write on
    /// the guard's set (so loom explores it), then the general path.
    #[cold]
    #[inline(never)]
    fn remove_slow<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
        V: Clone,
    {
        let mut g = self.guard();
        match self.remove_fast(g.hp.members(), hash, key) {
            Ok(Some(old)) => return self.finish_guarded(g, old),
            Ok(None) => return None,
            Err(()) => {}
        }
        let tag = tag_of(hash);
        loop {
            let e = self.entry_of(&mut g, tag, key)?;
            match self.write_value(&mut g, e, &mut |cur| cur.map(|_| ptr::null_mut())) {
                Write::Dead => {} // probe again
                Write::None(_) | Write::Wrote(None) => return None,
                Write::Wrote(Some(old)) => return Some(Self::take_old(g, old)),
            }
        }
    }

    /// Replaces the key's value with `f(&current)`; returns a clone of the
    /// value it replaced (`None`, `f` not called, if absent). `f` runs again
    /// on the newer value after a lost CAS; the losing result is dropped.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn update<Q>(&self, hash: u64, key: &Q, mut f: impl FnMut(&V) -> V) -> Option<V>
    where
        K: core::borrow::Borrow<Q>,
        Q: Eq + ?Sized,
        V: Clone,
    {
        let tag = tag_of(hash);
        let mut spare = Own::<V>(ptr::null_mut());
        let mut g = self.guard();
        loop {
            let e = self.entry_of(&mut g, tag, key)?;
            let w = self.write_value(&mut g, e, &mut |cur| {
                let new = f(cur?);
                if spare.0.is_null() {
                    spare.0 = super::pool::boxed(new).cast();
                } else {
                    // SAFETY: our unpublished box (a lost attempt's): its
                    // value is dropped and replaced.
                    unsafe { *spare.0 = new };
                }
                Some(spare.0)
            });
            match w {
                Write::Dead => {} // probe again
                Write::None(_) | Write::Wrote(None) => return None,
                Write::Wrote(Some(old)) => {
                    spare.0 = ptr::null_mut();
                    return Some(Self::take_old(g, old));
                }
            }
        }
    }

    /// Visits every key that holds a value, following migrations; removes
    /// the key if `f(&key, &value)` returns `true` and the value is still
    /// the one `f` saw (a check-and-remove on the value cell, so a value
    /// another thread wrote meanwhile is kept). The raw form of iteration,
    /// `retain` and `clear`.
    ///
    /// Weakly consistent: a key that holds a value for the whole walk is
    /// visited exactly once, with a value it held during the walk; a key
    /// inserted or removed meanwhile may or may not be. Entries are matched
    /// across tables by address (migration moves entry pointers), kept in a
    /// set for the walk: O(len) memory. A walk restarts from the root (the
    /// set skips what it saw) only when two migrations finished under it.
    #[cfg_attr(loom, allow(dead_code))]
    ///
    /// `f` also gets the slot's tag and whether the walk has left the table
    /// it started in (followed a migration or restarted): from then on a key
    /// removed and re-inserted under the walk has a new entry, which the
    /// address set cannot tell from the old one, so a caller that must not
    /// see a key twice compares keys of equal tags (as [`Iter`] does).
    ///
    /// [`Iter`]: super::Iter
    pub(crate) fn visit(&self, mut f: impl FnMut(u32, bool, &K, &V) -> bool) {
        let mut crossed = false;
        let mut seen = std::collections::HashSet::new();
        let mut g = self.guard();
        'restart: loop {
            let (mut t, mut ti) = self.root(&mut g);
            loop {
                for i in 0..t.slots.len() {
                    let s = t.slots.at(i);
                    // Acquire: pairs with the CAS that stored the entry.
                    let mut w = s.word.load(Ordering::Acquire);
                    let e = loop {
                        let e = untag(w);
                        if e.is_null() || flags(w) & COPIED != 0 {
                            break None; // empty, or in the next table
                        }
                        g.hp.publish(2, e);
                        // Acquire: validation, as in `find`.
                        let now = s.word.load(Ordering::Acquire);
                        if now == w {
                            break Some(e);
                        }
                        w = now;
                    };
                    let Some(e) = e else { continue };
                    // Relaxed: written before the word, which we read with
                    // Acquire.
                    let tag = s.tag.load(Ordering::Relaxed);
                    if seen.contains(&(e as usize)) {
                        continue;
                    }
                    let mut hit = false;
                    let mut shown: *const V = ptr::null();
                    // SAFETY: `e` is protected by hazard 2 and validated.
                    let key = unsafe { &(*e).key };
                    // One read of the value (`hit` marks that `f` ran), then
                    // a removal only of that same value.
                    let r = self.write_value(&mut g, e, &mut |cur| {
                        // Called again only after the value pointer
                        // changed: the value `f` saw is gone, keep the new
                        // one (never compare addresses, which may be
                        // reused).
                        if hit {
                            return None;
                        }
                        hit = true;
                        let v = cur?;
                        shown = v;
                        f(tag, crossed, key, v).then_some(ptr::null_mut())
                    });
                    // A sealed entry (`Dead`) is skipped: a newer entry
                    // of its key, if any, is in a later slot or table.
                    if hit && !shown.is_null() && !matches!(r, Write::Dead) {
                        seen.insert(e as usize);
                    }
                }
                // Acquire: pairs with `grow`'s CAS.
                if t.next.load(Ordering::Acquire).is_null() {
                    break 'restart;
                }
                crossed = true;
                match self.advance(&mut g, t, ti) {
                    Some(n) => (t, ti) = n,
                    None => continue 'restart,
                }
            }
        }
    }

    /// Starts a migration of `t` if it is the root and has none, then helps.
    fn grow(&self, g: &mut Guard<'_>, t: &Table<K, V>) {
        let tp = ptr::from_ref(t).cast_mut();
        // Acquire: pairs with the root CAS in `help_migrate`.
        if self.root.load(Ordering::Acquire) == tp && t.next.load(Ordering::Acquire).is_null() {
            // Relaxed: a size hint.
            let live = self.len();
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
            g.scan = true;
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
        let s = t.slots.at(i);
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
                let p = untag(v);
                let drop_it = if p.is_null() {
                    // AcqRel: a re-insert's `null → box` CAS and this seal
                    // are ordered; the loser sees the winner. The share
                    // bits stay (a failure on them alone decides again).
                    let seal = tagged(sealed(), flags(v));
                    match cell.compare_exchange(v, seal, Ordering::AcqRel, Ordering::Acquire) {
                        Ok(_) => true,
                        Err(x) => untag(x) == sealed(),
                    }
                } else {
                    p == sealed()
                };
                if !drop_it && p.is_null() {
                    continue; // re-inserted (or a share released) meanwhile: decide again
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
                        // for probes (COPIED); this CAS's winner retires it,
                        // giving up the table's share.
                        unsafe { self.domain.retire_deferred(e, release_table::<K, V>) };
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
fn put_if_absent<K, V>(n: &Table<K, V>, tag: u32, e: *mut Entry<K, V>) {
    let mut i = home(tag, n.mask);
    for _ in 0..n.slots.len() {
        let s = n.slots.at(i);
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
                match s.word.compare_exchange(
                    w,
                    slot_word(e, tag),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
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
                // SAFETY: the table's share is this slot's only; given up
                // once (the entry is freed now, or by the drain of a
                // pending `init` drop when the domain drops).
                unsafe { release(e, OWN_TABLE) };
            }
        }
        if let Some(n) = next {
            for s in n.slots.iter() {
                let e = untag(s.word.load(Ordering::Relaxed));
                if !e.is_null() {
                    // SAFETY: `n` never migrated (the root did not reach
                    // it), so it alone holds the table share of each entry.
                    unsafe { release(e, OWN_TABLE) };
                }
            }
        }
    }
}

/// Whether `n` holds entry `e` on the probe of `tag` (exclusive access).
fn holds<K, V>(n: &Table<K, V>, tag: u32, e: *mut Entry<K, V>) -> bool {
    let mut i = home(tag, n.mask);
    for _ in 0..n.slots.len() {
        let s = n.slots.at(i);
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

#[cfg(all(test, loom))]
mod review_share_loom;
