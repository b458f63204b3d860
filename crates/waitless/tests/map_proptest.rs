//! Differential test: sequences of operations on `LockFreeHashMap` and on
//! `std::collections::HashMap` give the same answers.
#![cfg(not(loom))]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use proptest::prelude::*;
use waitless::map::LockFreeHashMap;

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u32),
    Get(u16),
    Remove(u16),
    Update(u16),
    GetOrInsert(u16, u32),
    Len,
    Iter,
}

fn op() -> impl Strategy<Value = Op> {
    // A small key space so operations hit the same keys often.
    let k = 0u16..64;
    prop_oneof![
        3 => (k.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => k.clone().prop_map(Op::Get),
        2 => k.clone().prop_map(Op::Remove),
        1 => k.clone().prop_map(Op::Update),
        1 => (k, any::<u32>()).prop_map(|(k, v)| Op::GetOrInsert(k, v)),
        1 => Just(Op::Len),
        1 => Just(Op::Iter),
    ]
}

/// Few distinct hashes: exercises collisions within one split-order key.
#[derive(Default)]
struct Coarse(u64);
impl Hasher for Coarse {
    fn finish(&self) -> u64 {
        self.0 % 7
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.wrapping_mul(131).wrapping_add(u64::from(*b));
        }
    }
}

fn run<S: std::hash::BuildHasher>(m: LockFreeHashMap<u16, u32, S>, ops: Vec<Op>) {
    let mut model = HashMap::new();
    for op in ops {
        match op {
            Op::Insert(k, v) => assert_eq!(m.insert(k, v), model.insert(k, v)),
            Op::Get(k) => {
                assert_eq!(m.get(&k), model.get(&k).copied());
                assert_eq!(m.contains_key(&k), model.contains_key(&k));
            }
            Op::Remove(k) => assert_eq!(m.remove(&k), model.remove(&k)),
            Op::Update(k) => {
                let want = model.get_mut(&k).map(|v| {
                    let old = *v;
                    *v = v.wrapping_mul(3);
                    old
                });
                assert_eq!(m.update(&k, |v| v.wrapping_mul(3)), want);
            }
            Op::GetOrInsert(k, v) => {
                assert_eq!(m.get_or_insert_with(k, || v), *model.entry(k).or_insert(v))
            }
            Op::Len => {
                assert_eq!(m.len(), model.len());
                assert_eq!(m.is_empty(), model.is_empty());
            }
            Op::Iter => {
                let mut got: Vec<_> = m.iter().collect();
                got.sort_unstable();
                let mut want: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
                want.sort_unstable();
                assert_eq!(got, want);
            }
        }
    }
}

proptest! {
    // `PROPTEST_CASES` sets the count (`.ci/fuzz-for`).
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) {
        4
    } else {
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    }))]

    #[test]
    fn matches_std_hashmap(ops in proptest::collection::vec(op(), 0..400)) {
        run(LockFreeHashMap::new(), ops);
    }

    #[test]
    fn matches_std_hashmap_with_colliding_hashes(ops in proptest::collection::vec(op(), 0..400)) {
        run(LockFreeHashMap::with_hasher(BuildHasherDefault::<Coarse>::default()), ops);
    }
}
