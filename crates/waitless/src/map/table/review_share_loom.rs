//! Review loom model (map12er, wave 6) of the share bits of an entry's
//! value word: a swapped-out inline value's pending drop (`OWN_INIT`) and
//! the table's share (`OWN_TABLE`, given up by the `DROPPED` retire of a
//! migration) race each other and the value-cell CASes. Values carry a
//! std `Arc` token, so a double drop or a leak shows in its count.

use super::*;
use crate::sync::Arc;
use loom::thread;

/// A value that counts its owners through a std `Arc` (not modeled by
/// loom; only the count at the end is checked).
#[derive(Clone)]
struct Tok(u64, #[allow(dead_code)] std::sync::Arc<()>);

impl PartialEq for Tok {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Tok {}

/// One thread replaces key 1's inline first value with `update` (swapping
/// `init` out: its drop is retired holding `OWN_INIT`) while the other
/// removes key 1 and copies its slot, whose decision seals the tombstone and
/// drops its entry (retired holding `OWN_TABLE`). In every interleaving the
/// results are linearizable and every value and entry is dropped exactly
/// once, in whichever order the two retired deleters run (each guard's drop
/// scans) and whichever of the release CAS, the seal CAS and the value CAS
/// comes first, within one preemption (CI budget; two ran for minutes).
/// `update` (not `insert`) so that a sealed entry makes it
/// return `None` instead of helping the whole migration (which would take
/// minutes under loom).
#[test]
fn inline_drop_and_entry_drop_race_and_free_once() {
    let mut b = loom::model::Builder::new();
    // One preemption keeps it well under a minute on the loaded machine.
    b.preemption_bound = Some(1);
    b.check(|| {
        let token = std::sync::Arc::new(());
        {
            let m = Arc::new(RawTable::<Tok, Tok>::with_capacity(1));
            let k1 = Tok(1, token.clone());
            m.insert(1, k1.clone(), Tok(10, token.clone()));
            let a = {
                let m = m.clone();
                let token = token.clone();
                let k1 = k1.clone();
                thread::spawn(move || m.update(1, &k1, |_| Tok(11, token.clone())).map(|t| t.0))
            };
            let removed = m.remove(1, &k1).map(|t| t.0);
            {
                // A migration begun, and key 1's slot copied (as
                // `loom_tests::copy_1` does): the copy-or-drop decision.
                let mut g = m.guard();
                let (root, ti) = m.root(&mut g);
                root.next.store(Table::new(4), Ordering::Release);
                let (n, _) = m.advance(&mut g, root, ti).expect("root unchanged");
                let i = (0..root.slots.len())
                    .find(|&i| root.slots.at(i).tag.load(Ordering::Relaxed) == tag_of(1))
                    .expect("key 1's slot");
                m.copy_slot(&mut g, root, i, n);
            }
            let updated = a.join().unwrap();
            match (updated, removed) {
                // update, then remove
                (Some(10), Some(11)) => {}
                // remove, then update (of an absent key)
                (None, Some(10)) => {}
                other => panic!("not linearizable: {other:?}"),
            }
            assert_eq!(m.get_with(1, &k1, |v| v.0), None);
            drop(k1);
            m.domain.reclaim();
        }
        assert_eq!(
            std::sync::Arc::strong_count(&token),
            1,
            "a value leaked or was dropped twice"
        );
    });
}
