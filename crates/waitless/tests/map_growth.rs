//! Growth from one bucket to a million keys under four threads of churn.
#![cfg(not(loom))]

use std::sync::Arc;

use waitless::map::LockFreeHashMap;

const THREADS: u64 = 4;

#[test]
fn grows_from_capacity_one_to_a_million_keys_under_churn() {
    let per_thread: u64 = if cfg!(miri) { 500 } else { 250_000 };
    let token = Arc::new(());
    {
        let m: LockFreeHashMap<u64, (u64, Arc<()>)> = LockFreeHashMap::with_capacity(1);
        assert_eq!(m.buckets(), 8, "the smallest table");
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (m, token) = (&m, &token);
                s.spawn(move || {
                    let base = t * per_thread;
                    for i in 0..per_thread {
                        let k = base + i;
                        assert!(m.insert(k, (k, token.clone())).is_none());
                        // Churn: every 4th step remove an earlier key of this
                        // thread and put it back, and read a key of another.
                        if i % 4 == 3 {
                            let old = base + i / 2;
                            let (v, _) = m.remove(&old).expect("own key present");
                            assert_eq!(v, old);
                            assert!(m.insert(old, (old, token.clone())).is_none());
                            let other = ((t + 1) % THREADS) * per_thread + i / 3;
                            if let Some((v, _)) = m.get(&other) {
                                assert_eq!(v, other);
                            }
                        }
                    }
                });
            }
        });
        let total = THREADS * per_thread;
        assert_eq!(m.len() as u64, total);
        assert!(
            m.buckets() as u64 >= total,
            "only {} slots for {total} keys",
            m.buckets()
        );
        for k in 0..total {
            assert_eq!(m.get(&k).map(|(v, _)| v), Some(k), "key {k} lost");
        }
        assert_eq!(m.iter().count() as u64, total);
    }
    assert_eq!(Arc::strong_count(&token), 1, "keys or values leaked");
}
