//! The split-ordered list: one lock-free sorted linked list (Harris–Michael,
//! with hazard pointers) and a lazily filled, never-moving bucket directory.
//!
//! # The list
//! Every node has a split-order key `so`: for an element with hash `h`,
//! `reverse_bits(h | 1 << 63)` (odd); for the dummy node that starts bucket
//! `b`, `reverse_bits(b)` (even). Sorting by `so` puts every element right
//! after the dummy of its bucket, for every power-of-two bucket count at
//! once, so doubling the bucket count never moves an element: new buckets
//! are split off by inserting their dummy into the existing list.
//!
//! A `next` word is a pointer with one tag bit:
//!
//! ```text
//! bit 0      : 1 = this node is deleted and about to be unlinked (no insert after it)
//! bits 1..   : the successor's address (nodes are at least 2-aligned)
//! ```
//!
//! The `value` word of an element node is the boxed value, or null once the
//! element was removed. An element is *live* while its value is non-null;
//! the remove that swaps it to null is the linearization point, and a value
//! never becomes non-null again, so a dead node stays dead. Its remover then
//! sets the mark bit and unlinks it (or lets a later walk do it).
//!
//! # Reclamation
//! Walks protect `prev` and `cur` with two hazard pointers and re-validate
//! `prev.next == cur` after publishing (Michael 2002, Fig. 9); a third
//! protects a value while it is read. Unlinked nodes and replaced or removed
//! values are retired into the map's own [`Domain`]. Dummies live inline in
//! the directory segments (a lookup reads its bucket's `next` from the
//! directory itself) and the first value of an element lives inline in its
//! node (see [`Node`]), so a lookup of a never-replaced key touches the
//! directory line and the element's node. Dummies and bucket
//! segments are never freed before the map is dropped.

use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr;

use crate::contention::Site;
use crate::hazard::{Domain, HazardSet};
use crate::sync::atomic::{AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use crate::CachePadded;

static LINK: Site = Site::new("map.link");
static UNLINK: Site = Site::new("map.unlink");
static VALUE: Site = Site::new("map.value");

/// Average elements per bucket before the bucket count doubles.
pub(crate) const LOAD_FACTOR: usize = 1;

/// Bucket-count cap: buckets are indexed by `usize`, dummies by the reversed
/// index; the top bit distinguishes elements from dummies, and the next two
/// stay zero so a dummy's key has room for its state (see [`STATE`]).
const MAX_BUCKETS: usize = 1 << (usize::BITS - 3);

/// Cap on the bucket count a capacity hint can ask for up front. A bucket's
/// segment is allocated when a key first lands in it, and the top segment of
/// a table of `n` buckets holds `n / 2` dummies, so an absurd hint
/// (`with_capacity(usize::MAX)`) would otherwise turn the first insert into
/// an impossible allocation. Beyond this the table grows on demand, as it
/// does from an empty map.
const MAX_INITIAL_BUCKETS: usize = 1 << 20;

/// Segment `s` holds buckets `[2^(s-1), 2^s)` (segment 0 holds bucket 0),
/// so the directory grows without moving anything.
const SEGMENTS: usize = usize::BITS as usize;

/// Counter stripes for `len` (a shared counter would be the one hot word
/// every writer touches).
#[cfg(not(loom))]
const STRIPES: usize = 16;
#[cfg(loom)]
const STRIPES: usize = 1;

/// Bits 1..=2 of every `so` word are not part of the key: they are zero in
/// every split-order key (bucket indices stay below 2^61 and a dummy's key is
/// the reversed index; an element's key leaves out hash bits 61 and 62, see
/// [`so_element`]). A dummy keeps its state there: not in the list yet, being
/// linked by one thread, in the list. An element keeps its share count there
/// (in units of [`SHARE`]; see [`Node`]).
const STATE: u64 = 0b110;
/// One owner's share of an element, counted in its `so` word's bits 1..=2.
const SHARE: u64 = 0b010;
const UNLINKED: u64 = 0;
const LINKING: u64 = 0b010;
const LINKED: u64 = 0b100;

/// What the list itself uses of a node. A dummy is just this (16 bytes,
/// inline in the directory); an element starts with it (`#[repr(C)]`), so
/// list pointers are `*mut Link` and an element's is cast to its [`Node`].
#[repr(C)]
pub(crate) struct Link {
    /// Split-order key (odd for elements) in all bits but 1..=2, which hold
    /// a dummy's state or an element's share count (see [`STATE`]). Only
    /// those bits ever change.
    so: AtomicU64,
    /// Tagged successor; see the module docs for the bit layout.
    pub(crate) next: AtomicPtr<Link>,
}

impl Link {
    fn dummy(so: u64) -> Self {
        Link {
            so: AtomicU64::new(so | UNLINKED),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The split-order key, without the state or share bits.
    #[inline]
    pub(crate) fn so(&self) -> u64 {
        // Relaxed: the key bits never change after the node is published
        // (which the load that found it synchronized with); a dummy's state
        // is read with Acquire where it matters (`bucket`).
        self.so.load(Ordering::Relaxed) & !STATE
    }

    #[inline]
    pub(crate) fn is_element(&self) -> bool {
        self.so() & 1 == 1
    }
}

/// An element of the list.
///
/// It carries its first value inline (`init`), so a lookup of a key whose
/// value was never replaced reads one node, not a node and a box: `value`
/// then points at `init`. A replacing value is a separate `Box`.
///
/// The node's owners are counted in bits 1..=2 of its `so` word (units of
/// [`SHARE`], so no separate counter word: 40 bytes for `u64 → u64`, a
/// 48-byte malloc chunk): one share for the list (or the pending insert),
/// plus one while a retired drop of `init` is pending. The last to give its
/// share up frees the node, so `init` is dropped when it is swapped out and
/// no hazard protects it, yet never after the node is freed.
///
/// Under loom the count lives in a word of its own (`shares`), with the
/// same arithmetic: the counting protocol is what the loom models check,
/// and keeping it out of `so` keeps every walker's key load at one store,
/// which kept `insert_remove_one_bucket` inside CI's budget (1.7x the CPU
/// time with the count in `so`). That the count shares the word is shown
/// without loom: the key bits are never written after the node is
/// published, every reader masks bits 1..=2 (`Link::so`), and the unit
/// tests and Miri run this layout.
#[repr(C)]
pub(crate) struct Node<K, V> {
    /// First, so a `*mut Node` is a `*mut Link` to the list.
    pub(crate) link: Link,
    /// The current value: `&init`, a boxed value, or null once removed.
    pub(crate) value: AtomicPtr<V>,
    pub(crate) key: K,
    /// The share count under loom (see the type docs).
    #[cfg(loom)]
    shares: AtomicU64,
    /// The first value; live while `value` points here (or while its
    /// retired drop is pending). In an `UnsafeCell` because its retired
    /// drop writes it (in place, through [`Node::init_ptr`]) while other
    /// threads may still hold a `&Node` (to its links, key or `value`
    /// word): a shared reference does not cover what an `UnsafeCell` holds.
    init: core::cell::UnsafeCell<MaybeUninit<V>>,
}

impl<K, V> Node<K, V> {
    /// A boxed element holding `key` and, inline, `value`.
    pub(crate) fn element(h: u64, key: K, value: V) -> *mut Self {
        let raw = Box::into_raw(Box::new(Node {
            link: Link {
                so: AtomicU64::new(so_element(h) | if cfg!(loom) { 0 } else { SHARE }),
                next: AtomicPtr::new(ptr::null_mut()),
            },
            value: AtomicPtr::new(ptr::null_mut()),
            key,
            #[cfg(loom)]
            shares: AtomicU64::new(SHARE),
            init: core::cell::UnsafeCell::new(MaybeUninit::new(value)),
        }));
        // SAFETY: just allocated, exclusively ours.
        let init = unsafe { Self::init_ptr(raw) };
        // Relaxed: the node is not shared yet.
        // SAFETY: as above.
        unsafe { (*raw).value.store(init, Ordering::Relaxed) };
        raw
    }

    /// The element a list pointer points to.
    ///
    /// # Safety
    /// 1. `l` is non-null, points to a live node of a list, and that node
    ///    is an element (`(*l).is_element()`), valid for `'a`.
    #[inline]
    pub(crate) unsafe fn of<'a>(l: *mut Link) -> &'a Self {
        // SAFETY: precondition 1: elements are `Node`s whose first field is
        // the `Link`, and `l` carries the provenance of the whole node.
        unsafe { &*l.cast::<Self>() }
    }

    /// The address of `init` inside the node `this` (no reference made).
    ///
    /// # Safety
    /// 1. `this` points to a live node.
    #[inline]
    pub(crate) unsafe fn init_ptr(this: *mut Self) -> *mut V {
        // SAFETY: precondition 1; `addr_of_mut!` makes no reference, and
        // `UnsafeCell<MaybeUninit<V>>` has the layout of `V`.
        unsafe { ptr::addr_of_mut!((*this).init) }.cast()
    }

    /// The word holding the node's share count (bits 1..=2, units of
    /// [`SHARE`]): its `so` word, or under loom a word of its own.
    ///
    /// # Safety
    /// 1. `this` points to a live node.
    #[inline]
    unsafe fn shares<'a>(this: *mut Self) -> &'a AtomicU64 {
        #[cfg(not(loom))]
        {
            // SAFETY: precondition 1.
            unsafe { &(*this).link.so }
        }
        #[cfg(loom)]
        {
            // SAFETY: precondition 1.
            unsafe { &(*this).shares }
        }
    }

    /// Gives up one owner's share; frees the node if it was the last.
    ///
    /// # Safety
    /// 1. `this` came from [`Node::element`], and the caller holds one
    ///    share that it does not use again.
    pub(crate) unsafe fn release(this: *mut Self) {
        // AcqRel: Release orders this owner's uses before the free; Acquire
        // (for the last owner) sees every other owner's uses.
        // SAFETY: precondition 1: our share keeps the node alive until here.
        let before = unsafe { Self::shares(this) }.fetch_sub(SHARE, Ordering::AcqRel);
        if before & STATE == SHARE {
            // SAFETY: the last share: nobody else refers to the node.
            drop(unsafe { Box::from_raw(this) });
        }
    }
}

impl<K, V> Drop for Node<K, V> {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means whoever handed us the node (unlink +
        // retire + scan, or the map's drop) already synchronized with every
        // earlier writer.
        let v = self.value.load(Ordering::Relaxed);
        let init: *mut V = self.init.get_mut().as_mut_ptr();
        if v == init {
            // SAFETY: `value` still points at `init`: live, owned here.
            unsafe { self.init.get_mut().assume_init_drop() };
        } else if !v.is_null() {
            // SAFETY: a non-null value other than `init` is a `Box` owned by
            // this node. (A swapped-out `init` was dropped by its retired
            // deleter before the last share was released.)
            drop(unsafe { Box::from_raw(v) });
        }
        // The key is a plain field, dropped after this.
    }
}

/// Deleter for a swapped-out inline value: drops it in place, then gives
/// up the share its retirement held (even if the drop panics).
///
/// # Safety
/// 1. `v` is `Node::init_ptr(node)` of a node whose share count counts this
///    retirement, and `init` is live and no longer reachable through `value`.
unsafe fn drop_init<K, V>(v: *mut V) {
    struct Release<K, V>(*mut Node<K, V>);
    impl<K, V> Drop for Release<K, V> {
        fn drop(&mut self) {
            // SAFETY: the share taken when `init` was retired.
            unsafe { Node::release(self.0) };
        }
    }
    let off = core::mem::offset_of!(Node<K, V>, init);
    // SAFETY: precondition 1: `v` points `off` bytes into the node, and
    // keeps the provenance of the whole allocation it was derived from.
    let node = unsafe { v.cast::<u8>().sub(off) }.cast::<Node<K, V>>();
    let _release = Release(node);
    // SAFETY: precondition 1: live, dropped once here.
    unsafe { ptr::drop_in_place(v) };
}

/// Deleter for an unlinked node: gives up the list's share.
///
/// # Safety
/// 1. `n` was unlinked by the caller of `retire`, whose share this is.
unsafe fn release_node<K, V>(n: *mut Node<K, V>) {
    // SAFETY: precondition 1.
    unsafe { Node::release(n) };
}

/// An element's split-order key: the reversed hash with the top bit set
/// (so it is odd), leaving out hash bits 61 and 62 (they land in bits 1..=2,
/// the share count; they never choose a bucket, as there are at most 2^61,
/// so two hashes that differ only there just share a key, like a
/// collision).
#[inline]
pub(crate) fn so_element(h: u64) -> u64 {
    (h | 1 << 63).reverse_bits() & !STATE
}

/// The hash bits an element's split-order key keeps (the bucket bits; see
/// [`so_element`]).
#[inline]
fn so_element_hash(so: u64) -> u64 {
    so.reverse_bits() & !(0b111 << 61)
}

#[inline]
fn so_dummy(b: usize) -> u64 {
    (b as u64).reverse_bits()
}

#[inline]
fn is_marked<T>(p: *mut T) -> bool {
    (p as usize) & 1 == 1
}

#[inline]
fn marked<T>(p: *mut T) -> *mut T {
    p.cast::<u8>().wrapping_add(1).cast()
}

#[inline]
fn unmarked<T>(p: *mut T) -> *mut T {
    if is_marked(p) {
        p.cast::<u8>().wrapping_sub(1).cast()
    } else {
        p
    }
}

/// The hazard pointers one operation uses: two rotate along the list, one
/// protects a value.
pub(crate) struct Guard<'m> {
    domain: &'m Domain,
    /// Members 0 and 1 rotate along the list, member 2 protects a value.
    hp: HazardSet<'m, 3>,
    /// Index of the hazard pointer protecting the node that owns `prev`.
    p: usize,
    /// Index of the hazard pointer protecting `cur`.
    c: usize,
    /// Whether this operation retired something (then its drop may scan).
    retired: bool,
}

/// Operations retire without scanning (`retire_box_deferred`), so no user
/// `Drop` runs half-way through a multi-step update; the scan happens here,
/// once the operation's changes are complete. The guard's own hazards are
/// still published during this scan, which only delays those objects.
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // Not while unwinding: a panicking deleter would then abort. Only
        // after a retire: a read-only operation has nothing to add.
        if self.retired && !std::thread::panicking() {
            self.domain.collect();
        }
    }
}

impl<'m> Guard<'m> {
    /// Loads `src` and protects the value it holds with the hazard pointer
    /// reserved for values.
    #[inline]
    pub(crate) fn protect_value<V>(&mut self, src: &AtomicPtr<V>) -> *mut V {
        self.hp.protect(2, src)
    }
}

/// Where a walk stopped: `prev` is the link that held `cur`; `cur` is the
/// first unmarked node the stop predicate accepted, or null at the end.
/// `cur` (if non-null) is protected by the guard until its next walk.
pub(crate) struct Pos<K, V> {
    pub(crate) prev: *const AtomicPtr<Link>,
    pub(crate) cur: *mut Link,
    _kv: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Pos<K, V> {
    fn new(prev: *const AtomicPtr<Link>, cur: *mut Link) -> Self {
        Pos {
            prev,
            cur,
            _kv: PhantomData,
        }
    }

    /// `cur` as an element (meaningful only when `find` reported it found).
    #[inline]
    pub(crate) fn node(&self) -> *mut Node<K, V> {
        self.cur.cast()
    }
}

/// What [`RawMap::search`] found.
pub(crate) enum Search<'g, 'm, K, V> {
    /// A live element with its value, both protected.
    Occupied(Protected<'g, 'm, K, V>),
    /// No live element matched: the place where one would be linked.
    Vacant(Vacant<'g, 'm, K, V>),
}

/// A live element found by a search and its value, both protected by the
/// guard this borrows for `'g`.
///
/// This is the one place where the map turns hazard-protected raw pointers
/// into references, so the argument is made once here: the node is
/// protected by the walk's hazard pointer (published and validated while it
/// was linked), the value by the value hazard pointer (published and
/// validated while it was the node's value); both hazard pointers change
/// only through `&mut Guard`, which this value borrows; an object is retired
/// only after it was unlinked or swapped out, and freed only by a scan that
/// finds no hazard on it.
pub(crate) struct Protected<'g, 'm, K, V> {
    map: &'m RawMap<K, V>,
    g: &'g mut Guard<'m>,
    h: u64,
    pos: Pos<K, V>,
    /// Non-null and protected by `g`'s value hazard pointer.
    value: *mut V,
}

impl<'g, 'm, K, V> Protected<'g, 'm, K, V> {
    #[inline]
    fn node(&self) -> &Node<K, V> {
        // SAFETY: see the type docs: protected by the guard we borrow.
        unsafe { &*self.pos.node() }
    }

    /// The element's key.
    #[inline]
    pub(crate) fn key(&self) -> &K {
        &self.node().key
    }

    /// The element's split-order key.
    #[inline]
    pub(crate) fn so(&self) -> u64 {
        self.node().link.so()
    }

    /// The value this element had when it was found (or last re-read).
    #[inline]
    pub(crate) fn value(&self) -> &V {
        // SAFETY: see the type docs: non-null and protected.
        unsafe { &*self.value }
    }

    /// Re-reads the element's value after a failed CAS: `Some(self)` if it is
    /// still live (with its current value), `None` if it was removed.
    fn reload(mut self) -> Option<Self> {
        // SAFETY: the node is protected (see the type docs).
        self.value = self.g.protect_value(unsafe { &(*self.pos.node()).value });
        if self.value.is_null() {
            None
        } else {
            Some(self)
        }
    }

    /// Replaces the value seen (`value()`) with `new` by one CAS. `Ok(old)`:
    /// replaced; `old` is retired but stays protected (readable) while the
    /// guard is borrowed. `Err((new, rest))`: the value had changed; `rest`
    /// is the element with its current value, or `None` if it was removed.
    pub(crate) fn replace(self, new: Box<V>) -> Result<&'g V, (Box<V>, Option<Self>)> {
        let new = Box::into_raw(new);
        let node = self.pos.node();
        // SAFETY: the node is protected.
        if unsafe { self.map.cas_value(node, self.value, new) } {
            // SAFETY: our CAS swapped `self.value` out of the protected node.
            unsafe { self.map.retire_value(self.g, node, self.value) };
            // SAFETY: still protected by the value hazard pointer, which
            // changes only through the guard, borrowed for `'g`.
            return Ok(unsafe { &*self.value });
        }
        // SAFETY: the CAS failed, so `new` was never shared.
        let new = unsafe { Box::from_raw(new) };
        Err((new, self.reload()))
    }

    /// Removes the element: CASes its value to null (the linearization
    /// point), retires the value and unlinks the node. `Ok(old)` as for
    /// [`replace`](Self::replace); `Err(rest)` if the value had changed
    /// (`rest` as there).
    pub(crate) fn remove(self) -> Result<&'g V, Option<Self>> {
        let node = self.pos.node();
        // SAFETY: the node is protected.
        if unsafe { self.map.cas_value(node, self.value, ptr::null_mut()) } {
            let Protected {
                map,
                g,
                h,
                pos,
                value,
            } = self;
            // SAFETY: our CAS swapped `value` out of the protected node; it
            // stays protected by the value hazard pointer (which walks do
            // not use) while the guard is borrowed.
            unsafe { map.retire_value(g, node, value) };
            // SAFETY: our CAS nulled the value of the node at `pos`, which
            // came from the last walk with `g`.
            unsafe { map.finish_remove(g, h, pos) };
            // SAFETY: protected, as above.
            return Ok(unsafe { &*value });
        }
        Err(self.reload())
    }
}

/// Where a search found no live match: links a new element there.
pub(crate) struct Vacant<'g, 'm, K, V> {
    map: &'m RawMap<K, V>,
    /// Keeps the guard (which protects `pos.prev`'s node) borrowed.
    _g: &'g mut Guard<'m>,
    pos: Pos<K, V>,
}

impl<K, V> Vacant<'_, '_, K, V> {
    /// Links `node` here if nothing changed since the search; `Err(node)`
    /// otherwise (search again).
    pub(crate) fn insert(self, node: Pending<K, V>) -> Result<(), Pending<K, V>> {
        // Relaxed: published by the Release CAS in `link`.
        node.get().link.next.store(self.pos.cur, Ordering::Relaxed);
        // SAFETY: `prev` is a dummy's field or the field of the node the
        // guard (borrowed by `self`) protects.
        if unsafe { self.map.link(self.pos.prev, self.pos.cur, node.ptr.cast()) } {
            core::mem::forget(node);
            self.map.add_count(1);
            Ok(())
        } else {
            Err(node)
        }
    }
}

/// A node built for insertion and not linked yet: freed (key and value
/// dropped) unless it is linked, so a panic in a user `Eq` or `Clone`
/// leaks nothing.
pub(crate) struct Pending<K, V> {
    ptr: *mut Node<K, V>,
}

impl<K, V> Pending<K, V> {
    /// A new element holding `key` and, inline, `value`.
    pub(crate) fn new(h: u64, key: K, value: V) -> Self {
        Pending {
            ptr: Node::element(h, key, value),
        }
    }

    fn get(&self) -> &Node<K, V> {
        // SAFETY: owned by `self` until linked.
        unsafe { &*self.ptr }
    }

    /// The key the node carries.
    pub(crate) fn key(&self) -> &K {
        &self.get().key
    }

    /// Moves the inline value out into a box (the node then has none).
    pub(crate) fn take_value(&self) -> Box<V> {
        // SAFETY: owned by `self`.
        let init = unsafe { Node::init_ptr(self.ptr) };
        // Relaxed: not shared.
        debug_assert_eq!(self.get().value.load(Ordering::Relaxed), init);
        // Relaxed: not shared. Cleared first, so the node's drop will not
        // drop the value we move out.
        self.get().value.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: `value` pointed at `init`, so it was live; it is read once
        // and the node no longer owns it.
        Box::new(unsafe { init.read() })
    }

    /// Moves `v` back in as the inline value (after [`take_value`]).
    ///
    /// [`take_value`]: Self::take_value
    pub(crate) fn put_value(&self, v: V) {
        // SAFETY: owned by `self`; `init` is dead after `take_value`.
        let init = unsafe { Node::init_ptr(self.ptr) };
        // SAFETY: as above: writing a dead slot, no drop.
        unsafe { init.write(v) };
        // Relaxed: not shared.
        self.get().value.store(init, Ordering::Relaxed);
    }
}

impl<K, V> Drop for Pending<K, V> {
    fn drop(&mut self) {
        // SAFETY: never linked (`Vacant::insert` forgets it when it links),
        // so still exclusively ours, with its one share.
        unsafe { Node::release(self.ptr) };
    }
}

pub(crate) struct RawMap<K, V> {
    /// The map owns its elements (through the list).
    _kv: PhantomData<fn() -> (K, V)>,
    /// Bucket directory: segment `s` is an array of the 16-byte dummies of
    /// buckets `[2^(s-1), 2^s)`, inline (a lookup reads the dummy's `next` straight
    /// from the directory, no pointer to chase). Segment pointers are set
    /// once and never change; dummies never move and are never freed while
    /// the map lives.
    segments: Box<[AtomicPtr<Link>]>,
    /// Current bucket count, a power of two; only ever doubles.
    size: CachePadded<AtomicUsize>,
    counts: Box<[CachePadded<AtomicIsize>]>,
    /// Declared last: dropped after `Drop::drop` freed the list, it frees
    /// everything still retired.
    pub(crate) domain: Domain,
}

/// Number of dummies in segment `s`.
#[inline]
fn seg_len(s: usize) -> usize {
    if s == 0 {
        1
    } else {
        1 << (s - 1)
    }
}

impl<K, V> RawMap<K, V> {
    pub(crate) fn with_buckets(buckets: usize) -> Self {
        let size = buckets.clamp(1, MAX_INITIAL_BUCKETS).next_power_of_two();
        let map = RawMap {
            _kv: PhantomData,
            segments: (0..SEGMENTS)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            size: CachePadded::new(AtomicUsize::new(size)),
            counts: (0..STRIPES)
                .map(|_| CachePadded::new(AtomicIsize::new(0)))
                .collect(),
            domain: Domain::new(),
        };
        // Relaxed: the map is not shared yet. Bucket 0's dummy heads the
        // list from the start (its key is 0).
        map.dummy(0).so.store(LINKED, Ordering::Relaxed);
        map
    }

    pub(crate) fn guard(&self) -> Guard<'_> {
        Guard {
            domain: &self.domain,
            hp: HazardSet::new_in(&self.domain),
            p: 0,
            c: 1,
            retired: false,
        }
    }

    /// The dummy of bucket `b` (linked or not), allocating its segment if
    /// needed.
    #[inline]
    fn dummy(&self, b: usize) -> &Link {
        let s = (usize::BITS - b.leading_zeros()) as usize;
        let idx = if s == 0 { 0 } else { b - (1 << (s - 1)) };
        // Acquire: pairs with the AcqRel CAS in `new_segment`.
        let mut seg = self.segments[s].load(Ordering::Acquire);
        if seg.is_null() {
            seg = self.new_segment(s);
        }
        // SAFETY: segments are never freed while the map lives and
        // `idx < seg_len(s)`.
        unsafe { &*seg.add(idx) }
    }

    #[cold]
    fn new_segment(&self, s: usize) -> *mut Link {
        let base = if s == 0 { 0 } else { 1usize << (s - 1) };
        let fresh: Box<[Link]> = (0..seg_len(s))
            .map(|i| Link::dummy(so_dummy(base + i)))
            .collect();
        let fresh = Box::into_raw(fresh).cast::<Link>();
        // AcqRel: Release publishes the initialised dummies; Acquire (also
        // on failure) sees the winner's.
        match self.segments[s].compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(winner) => {
                // SAFETY: `fresh` was never shared; rebuild its Box to free it.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, seg_len(s))) });
                winner
            }
        }
    }

    #[inline]
    pub(crate) fn size(&self) -> usize {
        // Relaxed: any bucket count the map ever had is a correct place to
        // start a search (a smaller one only means a longer walk).
        self.size.load(Ordering::Relaxed)
    }

    /// A dummy from which a search for keys of bucket `b` may start: `b`'s
    /// own, linking it first if needed, or an ancestor's while another
    /// thread is linking `b`'s (an ancestor precedes every key of `b` in
    /// split order, so the walk is only longer; nobody waits).
    #[inline]
    pub(crate) fn bucket(&self, g: &mut Guard<'_>, b: usize) -> *mut Link {
        let d = self.dummy(b);
        // Acquire: pairs with the Release store of LINKED in `init_bucket`,
        // so the dummy's position in the list is visible.
        if d.so.load(Ordering::Acquire) & STATE == LINKED {
            return ptr::from_ref(d).cast_mut();
        }
        self.init_bucket(g, b, d)
    }

    #[cold]
    fn init_bucket(&self, g: &mut Guard<'_>, b: usize, d: &Link) -> *mut Link {
        debug_assert!(b != 0, "bucket 0 is linked from the start");
        let parent = b & !(1 << (usize::BITS - 1 - b.leading_zeros()));
        let pd = self.bucket(g, parent);
        let so = so_dummy(b);
        // Relaxed: the winner only needs exclusivity (it writes the dummy's
        // `next` and publishes it with the Release link CAS); a loser only
        // falls back to the parent.
        if d.so
            .compare_exchange(
                so | UNLINKED,
                so | LINKING,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // Another thread links it (or just did): start from the parent.
            return pd;
        }
        let dp = ptr::from_ref(d).cast_mut();
        loop {
            // SAFETY: `pd` is a dummy, never freed while the map lives; the
            // walk passes the closure protected, live nodes.
            let pos = unsafe { self.walk(g, &(*pd).next, |n| (*n).so() >= so) };
            // SAFETY: `cur` is protected by the guard.
            debug_assert!(pos.cur.is_null() || unsafe { (*pos.cur).so() } != so);
            // Relaxed: published by the Release CAS in `link`; only this
            // thread (which won LINKING) writes an unlinked dummy's `next`.
            d.next.store(pos.cur, Ordering::Relaxed);
            // SAFETY: `prev` belongs to a protected node or a dummy.
            if unsafe { self.link(pos.prev, pos.cur, dp) } {
                break;
            }
        }
        // Release: pairs with the Acquire load in `bucket`.
        d.so.store(so | LINKED, Ordering::Release);
        dp
    }

    /// Links `node` between `prev` and `cur` if `prev` still holds `cur`.
    ///
    /// # Safety
    /// 1. `prev` is the `next` field of a dummy or of a protected node.
    pub(crate) unsafe fn link(
        &self,
        prev: *const AtomicPtr<Link>,
        cur: *mut Link,
        node: *mut Link,
    ) -> bool {
        // AcqRel: Release publishes the node's fields to walkers (pairs with
        // their Acquire loads of `next`); Acquire is for the failure reload.
        // SAFETY: precondition 1.
        let ok = unsafe { &*prev }
            .compare_exchange(cur, node, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        LINK.record(ok);
        ok
    }

    /// Walks from `start` (a dummy's `next`), unlinking and retiring marked
    /// nodes on the way, to the first unmarked node `stop` accepts.
    ///
    /// # Safety
    /// 1. `start` is the `next` field of a dummy of this map.
    pub(crate) unsafe fn walk(
        &self,
        g: &mut Guard<'_>,
        start: *const AtomicPtr<Link>,
        mut stop: impl FnMut(*mut Link) -> bool,
    ) -> Pos<K, V> {
        'retry: loop {
            let mut prev = start;
            // Acquire: pairs with the Release CAS in `link`/unlink that
            // stored this pointer. A dummy's `next` is never marked.
            // SAFETY: precondition 1: dummies live as long as the map.
            let mut cur = unsafe { &*prev }.load(Ordering::Acquire);
            loop {
                if cur.is_null() {
                    return Pos::new(prev, cur);
                }
                g.hp.publish(g.c, cur);
                // Re-validate: `prev` still unmarked and pointing at `cur`
                // after the publication means `cur` was reachable then, so
                // no scan that could free it has missed our hazard.
                // Acquire: as above.
                // SAFETY: `prev` is a dummy's field or the field of the node
                // protected by `g.hp[g.p]`.
                if unsafe { &*prev }.load(Ordering::Acquire) != cur {
                    continue 'retry;
                }
                // SAFETY: protected and validated just above.
                let c = unsafe { &*cur };
                // Acquire: pairs with the Release CAS that linked the successor.
                let next = c.next.load(Ordering::Acquire);
                if is_marked(next) {
                    let succ = unmarked(next);
                    // AcqRel: Release makes our view of `succ` visible to the
                    // next walker; Acquire for the failure path.
                    // SAFETY: as for the load above.
                    let ok = unsafe { &*prev }
                        .compare_exchange(cur, succ, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                    UNLINK.record(ok);
                    if !ok {
                        continue 'retry;
                    }
                    // SAFETY: we unlinked `cur` (exactly one CAS can), so it
                    // is unreachable and retired once; a node's drop is sound
                    // on any thread because the map is Sync only when K and V
                    // are Send.
                    unsafe { self.retire_node(g, cur) };
                    cur = succ;
                } else {
                    if stop(cur) {
                        return Pos::new(prev, cur);
                    }
                    prev = &c.next;
                    core::mem::swap(&mut g.p, &mut g.c);
                    cur = next;
                }
            }
        }
    }

    /// Finds the first live element with hash `h` whose key satisfies `eq`.
    /// Returns its position (`found`), or the insertion point at the end of
    /// the run of nodes with the same split-order key.
    #[inline]
    pub(crate) fn find(
        &self,
        g: &mut Guard<'_>,
        h: u64,
        mut eq: impl FnMut(&K) -> bool,
    ) -> (Pos<K, V>, bool) {
        let so = so_element(h);
        let d = self.bucket(g, (h as usize) & (self.size() - 1));
        let stop = |p: *mut Link| {
            // SAFETY: the walk passes protected, live nodes.
            let n_so = unsafe { (*p).so() };
            n_so > so
                || (n_so == so && {
                    // SAFETY: as above, and an odd `so` (equal to ours) means
                    // an element.
                    let e = unsafe { Node::<K, V>::of(p) };
                    // Relaxed: only null-ness matters here; the value itself
                    // is read later through a hazard pointer with Acquire.
                    !e.value.load(Ordering::Relaxed).is_null() && eq(&e.key)
                })
        };
        // SAFETY: `d` is a dummy of this map.
        let pos = unsafe { self.walk(g, &(*d).next, stop) };
        // SAFETY: protected by the guard.
        let found = !pos.cur.is_null() && unsafe { (*pos.cur).so() } == so;
        (pos, found)
    }

    /// Searches for the first live element with hash `h` whose key
    /// satisfies `eq`: [`Search::Occupied`] with the element and its value
    /// protected by `g`, or [`Search::Vacant`] with the place to link a new
    /// element. Either borrows `g` for `'g`, so nothing else can reuse its
    /// hazard pointers meanwhile.
    #[inline]
    pub(crate) fn search<'g, 'm>(
        &'m self,
        g: &'g mut Guard<'m>,
        h: u64,
        mut eq: impl FnMut(&K) -> bool,
    ) -> Search<'g, 'm, K, V> {
        loop {
            let (pos, found) = self.find(g, h, &mut eq);
            if !found {
                return Search::Vacant(Vacant {
                    map: self,
                    _g: g,
                    pos,
                });
            }
            // SAFETY: `pos.cur` is protected by the guard (found: an element).
            let value = g.protect_value(unsafe { &(*pos.node()).value });
            if !value.is_null() {
                return Search::Occupied(Protected {
                    map: self,
                    g,
                    h,
                    pos,
                    value,
                });
            }
            // Removed since the walk: search again.
        }
    }

    /// The live value of the first element with hash `h` whose key
    /// satisfies `eq`, protected by `g`'s value hazard pointer for as long
    /// as `g` stays borrowed.
    pub(crate) fn lookup<'g, 'm>(
        &'m self,
        g: &'g mut Guard<'m>,
        h: u64,
        eq: impl FnMut(&K) -> bool,
    ) -> Option<&'g V> {
        // `search(..).into_value()` without building the `Protected` (the
        // read path is the hot one; this saves ~10 instructions a call).
        let mut eq = eq;
        loop {
            let (pos, found) = self.find(g, h, &mut eq);
            if !found {
                return None;
            }
            // SAFETY: `pos.cur` is protected by the guard (found: an element).
            let v = g.protect_value(unsafe { &(*pos.node()).value });
            if !v.is_null() {
                // SAFETY: as for `Protected::into_value`: non-null, protected
                // by the value hazard pointer, which changes only through the
                // guard, borrowed for `'g`.
                return Some(unsafe { &*v });
            }
        }
    }

    /// The first live element (in split order) at or after split-order key
    /// `from` that `accept(so, key)` takes, protected by `g`; `None` at the
    /// end of the list. For weakly consistent iteration.
    pub(crate) fn first_from<'g, 'm>(
        &'m self,
        g: &'g mut Guard<'m>,
        from: u64,
        mut accept: impl FnMut(u64, &K) -> bool,
    ) -> Option<Protected<'g, 'm, K, V>> {
        loop {
            // The bucket holding `from` under the current size; its dummy
            // precedes every node with split-order key >= its own.
            let b = (from.reverse_bits() as usize) & (self.size() - 1);
            let d = self.bucket(g, b);
            let stop = |p: *mut Link| {
                // SAFETY: the walk passes protected, live nodes.
                let l = unsafe { &*p };
                let so = l.so();
                so >= from && l.is_element() && {
                    // SAFETY: as above, and an element.
                    let n = unsafe { Node::<K, V>::of(p) };
                    // Relaxed: null-ness only; the value is read through
                    // a hazard pointer below.
                    !n.value.load(Ordering::Relaxed).is_null() && accept(so, &n.key)
                }
            };
            // SAFETY: `d` is a dummy of this map.
            let pos = unsafe { self.walk(g, &(*d).next, stop) };
            if pos.cur.is_null() {
                return None;
            }
            // SAFETY: protected by the guard; the stop predicate accepts
            // only elements.
            let n = unsafe { &*pos.node() };
            let value = g.protect_value(&n.value);
            if !value.is_null() {
                let h = so_element_hash(n.link.so());
                return Some(Protected {
                    map: self,
                    g,
                    h,
                    pos,
                    value,
                });
            }
            // Removed meanwhile: look again from the same place.
        }
    }

    /// Marks, counts and unlinks `cur`, whose value this thread just
    /// swapped to null.
    ///
    /// # Safety
    /// 1. `pos` came from the last walk with `g`, and `cur` is non-null.
    /// 2. This thread's CAS set `cur`'s value to null.
    pub(crate) unsafe fn finish_remove(&self, g: &mut Guard<'_>, h: u64, pos: Pos<K, V>) {
        // SAFETY: precondition 1: protected.
        let c = unsafe { &*pos.cur };
        // Only the thread that nulled the value marks the node, so this loop
        // ends at our first successful CAS (it fails only on new successors).
        // Relaxed: the CAS below re-checks.
        let mut next = c.next.load(Ordering::Relaxed);
        loop {
            debug_assert!(!is_marked(next));
            // AcqRel: Release orders the value's removal before the mark for
            // walkers that see the mark; Acquire for the failure reload.
            match c.next.compare_exchange_weak(
                next,
                marked(next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(n) => next = n,
            }
        }
        self.add_count(-1);
        // One attempt to unlink directly; otherwise a walk over the run does it.
        // AcqRel: as in `walk`.
        // SAFETY: precondition 1: `prev` is a dummy's or a protected node's field.
        let ok = unsafe { &*pos.prev }
            .compare_exchange(pos.cur, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        UNLINK.record(ok);
        if ok {
            // SAFETY: we unlinked it; retired once (see `walk`).
            unsafe { self.retire_node(g, pos.cur) };
        } else {
            let _ = self.find(g, h, |_| false);
        }
    }

    /// Retires an unlinked node (the list's share of it).
    ///
    /// # Safety
    /// 1. This thread's CAS unlinked `n`; it is retired once.
    unsafe fn retire_node(&self, g: &mut Guard<'_>, n: *mut Link) {
        // Only elements are ever unlinked (dummies never are).
        let n = n.cast::<Node<K, V>>();
        g.retired = true;
        // SAFETY: precondition 1 gives `retire`'s 1 and 2; the deleter gives
        // up the list's share, and dropping a node is sound on any thread
        // (the map is shared only when `K` and `V` are `Send`).
        unsafe {
            self.domain
                .retire_deferred(n, release_node::<K, V> as unsafe fn(*mut Node<K, V>))
        };
    }

    /// Retires `old`, a value this thread's CAS swapped out of `node`.
    ///
    /// # Safety
    /// 1. This thread's CAS on `node.value` replaced `old` (non-null), and
    ///    `node` is protected by `g` or otherwise alive.
    pub(crate) unsafe fn retire_value(
        &self,
        g: &mut Guard<'_>,
        node: *mut Node<K, V>,
        old: *mut V,
    ) {
        g.retired = true;
        // SAFETY: precondition 1: `node` is alive.
        if old == unsafe { Node::init_ptr(node) } {
            // The inline value: keep the node alive until its drop ran.
            // Relaxed: we hold a protected reference; the release in
            // `Node::release` orders the decrement.
            // SAFETY: precondition 1. At most one such share is ever added
            // (the value never points at `init` again), so the count stays
            // at most 2 and never carries out of bits 1..=2.
            unsafe { Node::shares(node) }.fetch_add(SHARE, Ordering::Relaxed);
            // SAFETY: `old` is unreachable (swapped out by us), retired
            // once; the share just taken keeps the node alive for
            // `drop_init`, whose precondition this establishes.
            unsafe {
                self.domain
                    .retire_deferred(old, drop_init::<K, V> as unsafe fn(*mut V))
            };
        } else {
            // SAFETY: a value other than `init` is a `Box`; unreachable,
            // retired once, `V: Send` whenever the map is shared.
            unsafe { self.domain.retire_box_deferred(old) };
        }
    }

    /// Swaps `cur`'s value from `old` to `new`.
    ///
    /// # Safety
    /// 1. `cur` is protected by the caller's guard.
    pub(crate) unsafe fn cas_value(&self, cur: *mut Node<K, V>, old: *mut V, new: *mut V) -> bool {
        // AcqRel: Release publishes the new value's contents (pairs with the
        // Acquire load in `protect`); Acquire orders our later retire of `old`
        // after every earlier writer of the slot.
        // SAFETY: precondition 1.
        let ok = unsafe { &*cur }
            .value
            .compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        VALUE.record(ok);
        ok
    }

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

    /// Adjusts the element count; after an insert, doubles the bucket count
    /// once the load factor is exceeded (one CAS: the new buckets are filled
    /// lazily by `init_bucket`, so growth never blocks and never moves a node).
    pub(crate) fn add_count(&self, delta: isize) {
        // Relaxed: the count is statistics and a growth trigger, not a
        // synchronization point.
        let c = self.stripe().fetch_add(delta, Ordering::Relaxed) + delta;
        if delta > 0 {
            let size = self.size();
            // Sum the stripes only every `interval` inserts on this stripe.
            let interval = size.min(64) as isize;
            if c % interval == 0 && self.len() > size * LOAD_FACTOR && size < MAX_BUCKETS {
                // Relaxed: readers may use any size (see `size`); losing the
                // race means another thread already doubled it.
                let _ = self.size.compare_exchange(
                    size,
                    size * 2,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        let n: isize = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        n.max(0) as usize
    }

    /// Frees every element still linked and the directory (from `drop`).
    pub(crate) fn free_list(&mut self) {
        // Relaxed: `&mut self`.
        let mut p = self.dummy(0).next.load(Ordering::Relaxed);
        while !p.is_null() {
            // Relaxed: `&mut self`.
            // SAFETY: `&mut self`: no concurrent access; nodes in the list
            // are not retired (only unlinked nodes are).
            let next = unmarked(unsafe { &*p }.next.load(Ordering::Relaxed));
            // SAFETY: as above.
            if unsafe { &*p }.is_element() {
                let p = p.cast::<Node<K, V>>();
                // SAFETY: every element in the list came from
                // `Node::element` and the list holds one share of it, given
                // up once here (a pending retired `init` drop may hold the
                // other; the domain, dropped after this, runs it). Dummies
                // belong to the segments, freed below.
                unsafe { Node::release(p) };
            }
            p = next;
        }
        for (s, seg) in self.segments.iter().enumerate() {
            let seg = seg.load(Ordering::Relaxed);
            if !seg.is_null() {
                // SAFETY: allocated in `new_segment` as a boxed slice of
                // `seg_len(s)` dummies (plain atomics).
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(seg, seg_len(s))) });
            }
        }
    }
}

impl<K, V> Drop for RawMap<K, V> {
    fn drop(&mut self) {
        self.free_list();
    }
}
