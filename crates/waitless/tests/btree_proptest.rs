//! Differential test: sequences of operations on `LockFreeBTree` and on
//! `std::collections::BTreeMap` give the same answers, for ranges with
//! every kind of bound (std panics on a reversed range; ours yields
//! nothing, which the oracle encodes).
#![cfg(not(loom))]

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use waitless::btree::LockFreeBTree;

#[derive(Debug, Clone)]
enum Op {
    Insert(u16, u32),
    TryInsert(u16, u32),
    Get(u16),
    Remove(u16),
    Range(Bound<u16>, Bound<u16>),
    First,
    Last,
    Len,
}

fn bound() -> impl Strategy<Value = Bound<u16>> {
    prop_oneof![
        (0u16..1100).prop_map(Bound::Included),
        (0u16..1100).prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Keys up to 1000: enough for several levels at fan-out 32 when a case
    // inserts many of them; ranges and gets hit absent keys too.
    let k = 0u16..1000;
    prop_oneof![
        6 => (k.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (k.clone(), any::<u32>()).prop_map(|(k, v)| Op::TryInsert(k, v)),
        2 => k.clone().prop_map(Op::Get),
        3 => k.prop_map(Op::Remove),
        2 => (bound(), bound()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => Just(Op::First),
        1 => Just(Op::Last),
        1 => Just(Op::Len),
    ]
}

fn reversed(a: Bound<u16>, b: Bound<u16>) -> bool {
    use Bound::*;
    match (a, b) {
        (Included(x), Included(y)) => x > y,
        (Included(x) | Excluded(x), Excluded(y)) | (Excluded(x), Included(y)) => x >= y,
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // `PROPTEST_CASES` sets the count (`.ci/fuzz-for`).
        cases: if cfg!(miri) { 2 } else { std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256) },
        ..ProptestConfig::default()
    })]

    #[test]
    fn behaves_like_btreemap(ops in prop::collection::vec(op(), 1..if cfg!(miri) { 40 } else { 3000 })) {
        let m = LockFreeBTree::new();
        let mut r = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => prop_assert_eq!(m.insert(k, v), r.insert(k, v)),
                Op::TryInsert(k, v) => {
                    let want = match r.entry(k) {
                        std::collections::btree_map::Entry::Occupied(_) => Err((k, v)),
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(v);
                            Ok(())
                        }
                    };
                    prop_assert_eq!(m.try_insert(k, v), want);
                }
                Op::Get(k) => {
                    prop_assert_eq!(m.get(&k), r.get(&k).copied());
                    prop_assert_eq!(m.contains_key(&k), r.contains_key(&k));
                }
                Op::Remove(k) => prop_assert_eq!(m.remove(&k), r.remove(&k)),
                Op::Range(a, b) => {
                    let got: Vec<_> = m.range((a, b)).collect();
                    let want: Vec<_> = if reversed(a, b) {
                        Vec::new()
                    } else {
                        r.range((a, b)).map(|(k, v)| (*k, *v)).collect()
                    };
                    prop_assert_eq!(got, want, "range {:?}", (a, b));
                    // Laziness: a prefix of the same scan.
                    let head: Vec<_> = m.range((a, b)).take(3).collect();
                    let want_head: Vec<_> = if reversed(a, b) {
                        Vec::new()
                    } else {
                        r.range((a, b)).take(3).map(|(k, v)| (*k, *v)).collect()
                    };
                    prop_assert_eq!(head, want_head);
                }
                Op::First => prop_assert_eq!(m.first_key_value(), r.first_key_value().map(|(k, v)| (*k, *v))),
                Op::Last => prop_assert_eq!(m.last_key_value(), r.last_key_value().map(|(k, v)| (*k, *v))),
                Op::Len => {
                    prop_assert_eq!(m.len(), r.len());
                    prop_assert_eq!(m.is_empty(), r.is_empty());
                }
            }
        }
        prop_assert!(m.iter().eq(r.iter().map(|(k, v)| (*k, *v))));
    }
}
