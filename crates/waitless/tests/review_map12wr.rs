//! Review tests (map12wr, wave 9) for map12w's write fast path (c8d1054):
//! `insert`/`remove` on the thread's cached hazard set (`probe`, one
//! value-cell CAS in `swap_fast`, a new key's slot claim in `claim_fast`,
//! the old value retired into the cached record, `collect` out of line).
//!
//! What each test guards against (each can fail):
//! - `tokens_are_conserved_*`: every value put into the map comes out
//!   exactly once (returned by an `insert` or a `remove`, or left at the
//!   end), with fast writers, general writers (`get_or_insert_with`, writes
//!   under a live pinned view, which takes the cached set) and migrations
//!   (fresh-key churn from a 2-slot-budget start) racing on few keys, with
//!   full and fully colliding hashes (one tag for every key, so
//!   `claim_fast` and `put` race for the same slots). A fast CAS into a
//!   dead (sealed) entry, a second entry for one key, a lost or doubled
//!   value, or a retire of the wrong pointer breaks the count.
//! - `one_new_key_*`: a fast insert and a general insert of one fresh key
//!   agree on one winner and leave one entry (a second `remove` finds
//!   nothing, `len` is exact).
//! - `values_are_dropped_exactly_once_*`: `Arc` counts after churn through
//!   the fast paths (inline `init` swapped out: `drop_init`; boxes:
//!   `free_box`) and the map's drop: a wrong deleter double-drops or leaks.
//! - `a_scan_inside_the_old_values_clone_*`: `V::clone` of the swapped-out
//!   value runs nested writes of the same key (general path, the cached
//!   set is taken) until the thread's list is handed over and scanned
//!   several times, then re-reads itself: the old value is retired but
//!   must stay protected (member 3) while it is cloned; freed, its block
//!   would be reused by the nested writes' boxes (the value pool), and the
//!   re-read would see another value (or the poison its drop writes).
//! - `fast_writes_during_unwinding_run_no_deleter` (witness, map12wr F1):
//!   a write from a destructor while the thread unwinds must not scan (as
//!   `Guard::collect`), or a panicking `V::drop` aborts the process. Fails
//!   on c8d1054; passes with `RawTable::collect` returning early while
//!   `std::thread::panicking()` (`/work/notes/map12wr.md`).
//!
//! No timing assertions; counts scale down under Miri (passes under
//! `cargo +nightly miri test -p waitless --test review_map12wr`).
#![cfg(not(loom))]

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use waitless::map::LockFreeHashMap;

/// One hash for every key: one tag, one home, every probe compares keys.
#[derive(Default)]
struct Same;
impl Hasher for Same {
    fn finish(&self) -> u64 {
        0x5151_0000_0000_0003
    }
    fn write(&mut self, _: &[u8]) {}
}

/// Three hashes: long shared probe runs, some distinct tags.
#[derive(Default)]
struct Three(u64);
impl Hasher for Three {
    fn finish(&self) -> u64 {
        (self.0 % 3).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.wrapping_mul(131).wrapping_add(u64::from(*b));
        }
    }
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

const THREADS: u64 = if cfg!(miri) { 2 } else { 4 };
const OPS: u64 = if cfg!(miri) { 200 } else { 40_000 };

/// Hot keys are `0..HOT`; churn keys are `1 << 40 | n`, inserted and
/// removed again at once, so tables fill with tombstones and migrate.
const HOT: u64 = 6;

fn conserve<S: BuildHasher + Sync>(m: &LockFreeHashMap<u64, u64, S>) {
    let outs = Mutex::new(Vec::new());
    let ins = Mutex::new(Vec::new());
    let churn = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (outs, ins, churn) = (&outs, &ins, &churn);
            s.spawn(move || {
                let mut my_out = Vec::new();
                let mut my_in = Vec::new();
                let mut x = 0x9abc_def1_2345_6789 ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                for i in 0..OPS {
                    let r = xorshift(&mut x);
                    let k = r % HOT;
                    let tok = (t + 1) << 48 | i;
                    match (r >> 20) % 16 {
                        // Fast insert (cached set free).
                        0..=4 => {
                            my_in.push(tok);
                            my_out.extend(m.insert(k, tok));
                        }
                        // Fast remove.
                        5..=8 => my_out.extend(m.remove(&k)),
                        // General insert: the pinned view holds the cached
                        // set, so this goes `insert_slow` (a guard's set).
                        9 => {
                            let mut view = m.pin();
                            let _ = view.get(&k);
                            my_in.push(tok);
                            my_out.extend(m.insert(k, tok));
                            drop(view);
                        }
                        // General remove, the same way.
                        10 => {
                            let view = m.pin();
                            my_out.extend(m.remove(&k));
                            drop(view);
                        }
                        // `put` without replace: inserted iff our token
                        // comes back (tokens are unique).
                        11 | 12 => {
                            if m.get_or_insert_with(k, || tok) == tok {
                                my_in.push(tok);
                            }
                        }
                        // Churn: a fresh key in and out (migrations,
                        // tombstones sealed and dropped by them).
                        _ => {
                            let c = 1 << 40 | churn.fetch_add(1, Ordering::Relaxed);
                            my_in.push(tok);
                            assert_eq!(m.insert(c, tok), None, "fresh key {c:#x} present");
                            assert_eq!(m.remove(&c), Some(tok), "fresh key {c:#x} lost");
                            my_out.push(tok);
                            assert_eq!(m.remove(&c), None, "fresh key {c:#x} twice");
                        }
                    }
                }
                outs.lock().unwrap().extend(my_out);
                ins.lock().unwrap().extend(my_in);
            });
        }
    });
    let mut outs = outs.into_inner().unwrap();
    for k in 0..HOT {
        outs.extend(m.remove(&k));
        assert_eq!(m.remove(&k), None, "key {k}: a second entry");
        assert_eq!(m.get(&k), None, "key {k}: a second entry");
    }
    assert_eq!(m.len(), 0, "live count after removing every key");
    let mut ins = ins.into_inner().unwrap();
    ins.sort_unstable();
    outs.sort_unstable();
    let mut seen = HashMap::new();
    for o in &outs {
        *seen.entry(*o).or_insert(0u32) += 1;
    }
    for (o, n) in &seen {
        assert_eq!(*n, 1, "value {o:#x} came out {n} times");
        assert!(
            ins.binary_search(o).is_ok(),
            "value {o:#x} came out, never went in"
        );
    }
    for i in &ins {
        assert!(
            seen.contains_key(i),
            "value {i:#x} went in, never came out (lost)"
        );
    }
    assert_eq!(ins.len(), outs.len());
}

#[test]
fn tokens_are_conserved_full_hash() {
    let m: LockFreeHashMap<u64, u64> = LockFreeHashMap::with_capacity(0);
    conserve(&m);
}

#[test]
fn tokens_are_conserved_three_hashes() {
    let m = LockFreeHashMap::with_capacity_and_hasher(0, BuildHasherDefault::<Three>::default());
    conserve(&m);
}

#[test]
fn tokens_are_conserved_one_hash() {
    let m = LockFreeHashMap::with_capacity_and_hasher(0, BuildHasherDefault::<Same>::default());
    conserve(&m);
}

/// One fresh key per round: thread A inserts it on the fast path, thread B
/// with `get_or_insert_with` (`put`) or under a pinned view (`insert_slow`).
fn one_new_key<S: BuildHasher + Sync>(m: &LockFreeHashMap<u64, u64, S>, rounds: u64) {
    let bar = Barrier::new(2);
    for r in 0..rounds {
        let k = r.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let (a, b) = (2 * r + 1, 2 * r + 2);
        let (ra, rb) = std::thread::scope(|s| {
            let bar = &bar;
            let ha = s.spawn(move || {
                bar.wait();
                m.insert(k, a)
            });
            let hb = s.spawn(move || {
                if r % 2 == 0 {
                    bar.wait();
                    let v = m.get_or_insert_with(k, || b);
                    (v, true)
                } else {
                    let mut view = m.pin();
                    let _ = view.get(&0);
                    bar.wait();
                    (m.insert(k, b).unwrap_or(0), false)
                }
            });
            (ha.join().unwrap(), hb.join().unwrap())
        });
        match rb {
            // `get_or_insert_with`: B first (A replaces b), or A first (B
            // sees a).
            (v, true) => assert!(
                (v == b && ra == Some(b)) || (v == a && ra.is_none()),
                "round {r}: A got {ra:?}, B's get_or_insert_with got {v}"
            ),
            // Two inserts: exactly one saw the other's value.
            (v, false) => assert!(
                (v == 0 && ra == Some(b)) || (v == a && ra.is_none()),
                "round {r}: A got {ra:?}, B's insert got {v}"
            ),
        }
        // `get_or_insert_with` never replaces: `a` stays either way; of two
        // inserts the later one's value stays.
        let want = if rb.1 || ra.is_some() { a } else { b };
        assert_eq!(m.get(&k), Some(want), "round {r}");
    }
    assert_eq!(m.len() as u64, rounds);
    for r in 0..rounds {
        let k = r.wrapping_mul(0x2545_F491_4F6C_DD1D);
        assert!(m.remove(&k).is_some(), "round {r}: key lost");
        assert_eq!(m.remove(&k), None, "round {r}: a second entry for one key");
    }
    assert_eq!(m.len(), 0);
}

const ROUNDS: u64 = if cfg!(miri) { 20 } else { 600 };

#[test]
fn one_new_key_fast_and_general_make_one_entry() {
    let m: LockFreeHashMap<u64, u64> = LockFreeHashMap::with_capacity(0);
    one_new_key(&m, ROUNDS);
}

#[test]
fn one_new_key_fast_and_general_make_one_entry_one_hash() {
    let m = LockFreeHashMap::with_capacity_and_hasher(0, BuildHasherDefault::<Same>::default());
    one_new_key(&m, ROUNDS / 4);
}

/// A value holding a drop-counted token.
#[derive(Clone)]
#[allow(dead_code)]
struct Tok(u64, Arc<()>);

fn drops_exactly_once<S: BuildHasher + Sync>(m: LockFreeHashMap<u64, Tok, S>) {
    let proto = Arc::new(());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (m, proto) = (&m, &proto);
            s.spawn(move || {
                let mut x = 0x1357_9bdf_2468_ace1 ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                for i in 0..OPS / 4 {
                    let r = xorshift(&mut x);
                    let k = r % 64;
                    match (r >> 24) % 8 {
                        0..=3 => drop(m.insert(k, Tok(i, proto.clone()))),
                        4 | 5 => drop(m.remove(&k)),
                        6 => {
                            let view = m.pin();
                            drop(m.insert(k, Tok(i, proto.clone())));
                            drop(m.remove(&(k ^ 1)));
                            drop(view);
                        }
                        _ => drop(m.get_or_insert_with(k, || Tok(i, proto.clone()))),
                    }
                }
            });
        }
    });
    // Some values are still retired (not scanned yet); the map's drop
    // frees those too.
    drop(m);
    assert_eq!(
        Arc::strong_count(&proto),
        1,
        "values leaked or dropped twice"
    );
}

#[test]
fn values_are_dropped_exactly_once_full_hash() {
    drops_exactly_once(LockFreeHashMap::with_capacity(0));
}

#[test]
fn values_are_dropped_exactly_once_one_hash() {
    drops_exactly_once(LockFreeHashMap::with_capacity_and_hasher(
        0,
        BuildHasherDefault::<Same>::default(),
    ));
}

/// A 32-byte value (a pool class): its `Clone` runs nested writes of key
/// `key` on the map in `MAP` (if set), then checks it still reads itself.
#[derive(Debug)]
struct Nested {
    key: u64,
    id: u64,
    check: u64,
    _pad: u64,
}

impl Nested {
    fn new(key: u64, id: u64) -> Self {
        Nested {
            key,
            id,
            check: id ^ 0xA5A5_A5A5_5A5A_5A5A,
            _pad: 0,
        }
    }
}

/// Poisons the value, so a clone that outlives its value's drop sees it
/// (with or without the block being reused).
impl Drop for Nested {
    fn drop(&mut self) {
        // SAFETY: `&mut self` is valid for writes (volatile: not a dead
        // store before the block goes back to the pool or allocator).
        unsafe { std::ptr::write_volatile(&mut self.check, 0xDEAD) };
    }
}

type NestedMap = LockFreeHashMap<u64, Nested>;

thread_local! {
    static MAP: Cell<*const NestedMap> = const { Cell::new(std::ptr::null()) };
    static DEPTH: Cell<u32> = const { Cell::new(1) };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1 << 32);
static CLONES_CHECKED: AtomicUsize = AtomicUsize::new(0);

/// Nested writes per outer clone: enough for a few hand-overs and scans
/// (512 retires a thread natively, 2 under Miri).
const NESTED: u64 = if cfg!(miri) { 6 } else { 1200 };

impl Clone for Nested {
    fn clone(&self) -> Self {
        let (key, id, check) = (self.key, self.id, self.check);
        let m = MAP.with(Cell::get);
        if !m.is_null() && DEPTH.with(Cell::get) == 0 {
            DEPTH.with(|d| d.set(1));
            // SAFETY: the test keeps the map alive while `MAP` is set.
            let m = unsafe { &*m };
            for _ in 0..NESTED {
                let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                drop(m.insert(key, Nested::new(key, n)));
                if n % 3 == 0 {
                    drop(m.remove(&key));
                }
            }
            DEPTH.with(|d| d.set(0));
            CLONES_CHECKED.fetch_add(1, Ordering::Relaxed);
        }
        // Re-read ourselves after the nested writes' scans (volatile: `&self`
        // lets the compiler assume the fields unchanged and drop the reads).
        // SAFETY: `self` is valid for reads (unless the map freed it, which
        // is what this checks).
        let now = unsafe {
            (
                std::ptr::read_volatile(&self.key),
                std::ptr::read_volatile(&self.id),
                std::ptr::read_volatile(&self.check),
            )
        };
        assert_eq!(
            now,
            (key, id, check),
            "the value being cloned was dropped (poisoned) or its block reused"
        );
        assert_eq!(check, id ^ 0xA5A5_A5A5_5A5A_5A5A, "torn value");
        Nested::new(key, id)
    }
}

fn nested_clone_run(remove: bool) {
    let m: NestedMap = LockFreeHashMap::with_capacity(0);
    MAP.with(|c| c.set(&m));
    let before = CLONES_CHECKED.load(Ordering::Relaxed);
    for round in 0..(if cfg!(miri) { 3 } else { 8 }) {
        let key = round % 2;
        // The first value of a key is inline (`init`, `drop_init`); after
        // the nested writes it is a box (`free_box`).
        let mine = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let prev = m.insert(key, Nested::new(key, mine));
        drop(prev);
        let mine2 = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        // Outer fast write (nesting on for its clone only): its old value
        // is `mine` (no other thread).
        DEPTH.with(|d| d.set(0));
        let old = if remove {
            m.remove(&key)
        } else {
            m.insert(key, Nested::new(key, mine2))
        };
        DEPTH.with(|d| d.set(1));
        let old = old.expect("the value just inserted");
        assert_eq!(old.id, mine, "round {round}");
    }
    MAP.with(|c| c.set(std::ptr::null()));
    assert!(
        CLONES_CHECKED.load(Ordering::Relaxed) > before,
        "no nested clone ran"
    );
    drop(m);
}

#[test]
fn a_scan_inside_the_old_values_clone_keeps_it_fast_insert() {
    nested_clone_run(false);
}

#[test]
fn a_scan_inside_the_old_values_clone_keeps_it_fast_remove() {
    nested_clone_run(true);
}

/// A value whose drop panics while `ARMED` is set.
#[derive(Clone)]
struct Bomb(#[allow(dead_code)] u64);

static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Drop for Bomb {
    fn drop(&mut self) {
        if ARMED.load(Ordering::Relaxed) {
            panic!("Bomb dropped while armed");
        }
    }
}

/// The child process of `fast_writes_during_unwinding_run_no_deleter`.
fn unwinding_writer_child() {
    let m: LockFreeHashMap<u64, Bomb> = LockFreeHashMap::new();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            struct Writer<'a>(&'a LockFreeHashMap<u64, Bomb>);
            impl Drop for Writer<'_> {
                fn drop(&mut self) {
                    assert!(std::thread::panicking());
                    // Writes from a destructor while the thread unwinds:
                    // enough replaces (4 keys) for several hand-overs of the
                    // thread's list (512 retires natively).
                    ARMED.store(true, Ordering::Relaxed);
                    for i in 0..2000 {
                        // The returned clone is a `Bomb` too: keep it.
                        std::mem::forget(self.0.insert(i % 4, Bomb(i)));
                    }
                    ARMED.store(false, Ordering::Relaxed);
                }
            }
            // The fast path needs the map's record cached for this thread.
            drop(m.insert(99, Bomb(0)));
            let _w = Writer(&m);
            panic!("the outer panic (expected)");
        })
        .join()
    });
    assert!(r.is_err());
    drop(m);
}

/// `Guard::collect` does nothing while the thread panics (a scan's
/// deleter that panicked then would abort the process), so a write made by
/// a destructor during unwinding never runs a `V::drop`. The fast path's
/// `collect` (after `finish_cached`) has no such check: a replace in a
/// destructor during unwinding scans, a value's panicking drop is a panic
/// while panicking, and the process aborts. Run in a child process (this
/// test's own binary) so that the abort is seen as a failure.
#[test]
#[cfg_attr(miri, ignore = "spawns a process")]
fn fast_writes_during_unwinding_run_no_deleter() {
    const CHILD: &str = "WAITLESS_MAP12WR_CHILD";
    if std::env::var_os(CHILD).is_some() {
        unwinding_writer_child();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fast_writes_during_unwinding_run_no_deleter",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the child aborted ({:?}): a write during unwinding ran a deleter\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
