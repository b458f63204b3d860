//! The analysis is generated from the code's own orderings and can say "no":
//! a strategy table with a Relaxed publish is flagged, and the correctness
//! proof then does not hold.

use super::*;
use crate::channel::{AcquireRelease, Optimized, SeqCstAll};

/// The source the table must agree with.
const ORDERING_RS: &str = include_str!("../ordering.rs");
const MPMC_RS: &str = include_str!("../mpmc.rs");

/// The associated `Ordering` constants declared by `OrderingStrategy`.
fn trait_constants() -> Vec<String> {
    let start = ORDERING_RS
        .find("pub trait OrderingStrategy")
        .expect("the trait is in ordering.rs");
    let body = &ORDERING_RS[start..];
    let body = &body[..body.find("\n}").expect("the trait ends")];
    body.lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("const ")
                .and_then(|r| r.strip_suffix(": Ordering;"))
                .map(str::to_string)
        })
        .collect()
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a text search of the source; nothing for Miri to check, and slow there"
)]
fn every_trait_constant_has_exactly_one_row_and_is_used_by_the_code() {
    let consts = trait_constants();
    assert!(consts.len() >= 5, "parsed {consts:?}");
    let rows: Vec<&str> = SITES.iter().map(|s| s.site).collect();
    assert_eq!(
        rows, consts,
        "SITES (ordering.rs) must list the trait's constants, in order"
    );
    for c in &consts {
        assert!(
            MPMC_RS.contains(&format!("O::{c}")),
            "{c} has a row but mpmc.rs does not use it"
        );
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a text search of the source; nothing for Miri to check, and slow there"
)]
fn every_fixed_site_is_still_in_the_code() {
    for (site, code) in FIXED_SITES {
        assert!(
            MPMC_RS.contains(code),
            "fixed site {:?}: `{code}` is no longer in mpmc.rs",
            site.site
        );
    }
}

#[test]
fn the_real_strategies_are_sound_and_read_from_their_constants() {
    for o in [
        Orderings::of::<Optimized>(),
        Orderings::of::<AcquireRelease>(),
        Orderings::of::<SeqCstAll>(),
    ] {
        let a = analyze_orderings(&o);
        assert!(a.is_sound(), "{a}");
        assert_eq!(a.rows.len(), SITES.len() + FIXED_SITES.len());
        let stamp_store = a.rows.iter().find(|r| r.site == "STAMP_STORE").unwrap();
        assert_eq!(stamp_store.ordering, o.stamp_store);
        let text = a.to_string();
        assert!(
            text.contains(o.name) && !text.contains("INSUFFICIENT"),
            "{text}"
        );
    }
    // Optimized is the minimal set: no strategy-controlled site is stronger
    // than needed; SeqCstAll pays for several.
    let opt = analyze_orderings(&Orderings::of::<Optimized>());
    assert_eq!(opt.stronger_than_needed().filter(|r| !r.fixed).count(), 0);
    let sc = analyze_orderings(&Orderings::of::<SeqCstAll>());
    assert!(sc.stronger_than_needed().filter(|r| !r.fixed).count() >= 4);
}

fn relaxed_publish() -> Orderings {
    Orderings {
        name: "BrokenRelaxedPublish",
        stamp_store: Ordering::Relaxed,
        ..Orderings::of::<Optimized>()
    }
}

#[test]
fn a_relaxed_publish_is_flagged() {
    let a = analyze_orderings(&relaxed_publish());
    assert!(!a.is_sound());
    let bad: Vec<&str> = a.insufficient().map(|r| r.site).collect();
    assert_eq!(bad, ["STAMP_STORE"]);
    let text = a.to_string();
    assert!(
        text.contains("NOT SOUND") && text.contains("INSUFFICIENT"),
        "{text}"
    );
}

#[test]
fn a_relaxed_acquire_side_is_flagged_too() {
    let a = analyze_orderings(&Orderings {
        name: "BrokenRelaxedConsume",
        stamp_load: Ordering::Relaxed,
        ..Orderings::of::<Optimized>()
    });
    let bad: Vec<&str> = a.insufficient().map(|r| r.site).collect();
    assert_eq!(bad, ["STAMP_LOAD"]);
}

#[test]
fn the_correctness_proof_fails_on_a_relaxed_publish() {
    let p = correctness_with::<Optimized>(4, &relaxed_publish());
    assert!(!p.holds, "{p}");
    assert!(
        p.evidence.contains("STAMP_STORE is Relaxed") && p.evidence.contains("needs Release"),
        "{}",
        p.evidence
    );
    assert!(p.to_string().contains("CONTRADICTED"));
}

#[test]
fn the_correctness_proof_holds_for_the_real_strategy() {
    // Small enough for Miri (the run shrinks under cfg(miri)).
    let p = correctness_with::<Optimized>(2, &Orderings::of::<Optimized>());
    assert!(p.holds, "{p}");
    assert_eq!((p.bound, p.observed), (None, None));
}

#[test]
fn instructions_follow_the_standard_mappings() {
    use AccessKind::*;
    use Ordering::*;
    assert_eq!(
        instructions(Load, Relaxed),
        Instructions {
            x86_64: "mov",
            armv8: "ldr",
            power: "ld"
        }
    );
    assert_eq!(instructions(Store, Release).armv8, "stlr");
    assert_eq!(instructions(Store, Release).power, "lwsync; std");
    assert!(instructions(Store, SeqCst).x86_64.starts_with("xchg"));
    assert!(instructions(Load, SeqCst).power.starts_with("hwsync"));
    assert_eq!(instructions(Fence, SeqCst).x86_64, "mfence");
    assert_eq!(instructions(Fence, SeqCst).armv8, "dmb ish");
    assert_eq!(instructions(CasSuccess, AcqRel).x86_64, "lock cmpxchg");
    assert_eq!(instructions(Load, Release).x86_64, "invalid");
}

#[test]
fn at_least_is_the_strength_order() {
    use Ordering::*;
    assert!(at_least(AcqRel, Release) && at_least(AcqRel, Acquire));
    assert!(at_least(SeqCst, AcqRel) && at_least(SeqCst, SeqCst));
    assert!(!at_least(Acquire, Release) && !at_least(Release, Acquire));
    assert!(!at_least(Relaxed, Acquire) && !at_least(AcqRel, SeqCst));
    assert!(at_least(Relaxed, Relaxed));
}

#[test]
fn exactly_once_finds_loss_duplication_and_disorder() {
    let log = |ids: &[u64]| ConsumerLog {
        ids: ids.to_vec(),
        ..ConsumerLog::default()
    };
    let id = |p: u64, i: u64| p << ID_BITS | i;
    assert_eq!(
        exactly_once(&[2, 1], &[log(&[id(0, 0), id(1, 0)]), log(&[id(0, 1)])]),
        None
    );
    let lost = exactly_once(&[2], &[log(&[id(0, 1)])]).unwrap();
    assert!(lost.contains("lost"), "{lost}");
    let dup = exactly_once(&[1], &[log(&[id(0, 0)]), log(&[id(0, 0)])]).unwrap();
    assert!(dup.contains("received"), "{dup}");
    let order = exactly_once(&[2], &[log(&[id(0, 1), id(0, 0)])]).unwrap();
    assert!(order.contains("FIFO"), "{order}");
}

#[test]
fn the_blocking_handles_strategy_is_sound_and_pays_for_its_seqcst_claim() {
    let a = analyze_orderings(&Orderings::of::<crate::channel::ordering::Blocking>());
    assert!(a.is_sound(), "{a}");
    let stronger: Vec<&str> = a
        .stronger_than_needed()
        .filter(|r| !r.fixed)
        .map(|r| r.site)
        .collect();
    assert_eq!(stronger, ["CLAIM_SUCCESS"], "{a}");
}
