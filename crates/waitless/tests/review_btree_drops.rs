//! Review test (bt16fr): every key and value object is dropped exactly once
//! when threads that share leaves race splits, replacements, removals that
//! empty leaves (dropped from their parents, separators released) and
//! scans. Keys and values count their live instances; after the map drops,
//! none is left and none was dropped twice (the count would go negative).
#![cfg(not(loom))]

use std::sync::atomic::{AtomicIsize, Ordering};

use waitless::btree::LockFreeBTree;

static LIVE_KEYS: AtomicIsize = AtomicIsize::new(0);
static LIVE_VALS: AtomicIsize = AtomicIsize::new(0);

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u64);

impl Key {
    fn new(k: u64) -> Self {
        LIVE_KEYS.fetch_add(1, Ordering::Relaxed);
        Key(k)
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        Key::new(self.0)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        let before = LIVE_KEYS.fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "a key dropped twice");
    }
}

#[derive(Debug)]
struct Val(u64);

impl Val {
    fn new(v: u64) -> Self {
        LIVE_VALS.fetch_add(1, Ordering::Relaxed);
        Val(v)
    }
}

impl Clone for Val {
    fn clone(&self) -> Self {
        Val::new(self.0)
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        let before = LIVE_VALS.fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "a value dropped twice");
    }
}

#[test]
fn racing_splits_and_drops_drop_every_key_and_value_once() {
    let (n, cycles, threads) = if cfg!(miri) { (12, 1, 3) } else { (200, 6, 3) };
    {
        let m: LockFreeBTree<Key, Val> = LockFreeBTree::new();
        let start = std::sync::Barrier::new(threads as usize);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (m, start) = (&m, &start);
                s.spawn(move || {
                    // Thread `t` owns the keys `k % threads == t`: threads
                    // share every leaf, so updates, splits and drops of the
                    // same leaves race.
                    let mine: Vec<u64> = (0..n).map(|i| ((i * 7) % n) * threads + t).collect();
                    start.wait();
                    for c in 0..cycles {
                        for &k in &mine {
                            assert!(m.insert(Key::new(k), Val::new(c)).is_none());
                        }
                        // Replace every third key (the old key and value go).
                        for &k in mine.iter().step_by(3) {
                            assert_eq!(
                                m.insert(Key::new(k), Val::new(c + 100)).map(|v| v.0),
                                Some(c)
                            );
                        }
                        let seen = m.range(Key::new(0)..Key::new(n * threads)).count();
                        assert!(seen >= mine.len());
                        for (i, &k) in mine.iter().enumerate().rev() {
                            let want = if i % 3 == 0 { c + 100 } else { c };
                            assert_eq!(m.remove(&Key::new(k)).map(|v| v.0), Some(want));
                        }
                    }
                    // Leave some entries in the map for its drop.
                    for &k in mine.iter().take(mine.len() / 2) {
                        m.insert(Key::new(k), Val::new(7));
                    }
                });
            }
        });
        assert_eq!(m.len(), (threads * (n / 2)) as usize);
    }
    // The map and its collector are gone: every deferred release ran.
    assert_eq!(LIVE_KEYS.load(Ordering::Relaxed), 0, "keys leaked");
    assert_eq!(LIVE_VALS.load(Ordering::Relaxed), 0, "values leaked");
}
