//! The channel's reports (`channel::memory_analysis`) on the real
//! strategies: every site sound, the correctness proof holds, and the
//! channel passed in is left alone.
//!
//! `cargo test -p waitless --all-features --test proof_channel -- --nocapture`
//! prints the reports.
#![cfg(not(loom))]

use std::sync::atomic::Ordering;

use waitless::channel::memory_analysis::{analyze_ordering_choices, prove_correctness};
use waitless::channel::{AcquireRelease, Optimized, OptimizedChannel, OrderingStrategy, SeqCstAll};

fn analysis_is_sound<O: OrderingStrategy>() {
    let ch: OptimizedChannel<String, O> = OptimizedChannel::with_strategy(8);
    let a = analyze_ordering_choices(&ch);
    println!("{a}");
    assert_eq!(a.strategy, O::NAME);
    assert!(a.is_sound(), "{a}");
    let row = |site: &str| {
        a.rows
            .iter()
            .find(|r| r.site == site)
            .unwrap_or_else(|| panic!("no row {site}"))
    };
    assert_eq!(row("STAMP_LOAD").ordering, O::STAMP_LOAD);
    assert_eq!(row("STAMP_STORE").ordering, O::STAMP_STORE);
    assert_eq!(row("INDEX_LOAD").ordering, O::INDEX_LOAD);
    for r in &a.rows {
        assert!(!r.pairs_with.is_empty() && !r.why.is_empty(), "{r:?}");
        assert!(
            r.instructions.x86_64 != "invalid" && r.instructions.armv8 != "invalid",
            "{r:?}"
        );
    }
    let text = a.to_string();
    for r in &a.rows {
        assert!(text.contains(r.site), "{text}");
    }
}

#[test]
fn every_strategy_is_sound() {
    analysis_is_sound::<Optimized>();
    analysis_is_sound::<AcquireRelease>();
    analysis_is_sound::<SeqCstAll>();
}

#[test]
fn optimized_publishes_with_release_and_compiles_to_stlr() {
    let a = analyze_ordering_choices(&OptimizedChannel::<u8>::new(2));
    let store = a.rows.iter().find(|r| r.site == "STAMP_STORE").unwrap();
    assert_eq!(store.ordering, Ordering::Release);
    assert_eq!(
        (
            store.instructions.x86_64,
            store.instructions.armv8,
            store.instructions.power
        ),
        ("mov", "stlr", "lwsync; std")
    );
}

fn correctness_holds<O: OrderingStrategy>(capacity: usize) {
    let ch: OptimizedChannel<String, O> = OptimizedChannel::with_strategy(capacity);
    ch.send("kept".to_string()).unwrap();
    let p = prove_correctness(&ch);
    println!("{p}");
    assert!(p.holds, "{p}");
    assert!(p.argument.contains("docs/channel.md"));
    if cfg!(feature = "verify") {
        assert!(p.evidence.contains("linearizable"), "{}", p.evidence);
    } else {
        assert!(p.evidence.contains("NOT CHECKED"), "{}", p.evidence);
    }
    // The channel passed in was not touched.
    assert_eq!(ch.recv().as_deref(), Some("kept"));
    assert_eq!(ch.recv(), None);
}

#[test]
fn correctness_holds_for_every_strategy() {
    correctness_holds::<Optimized>(1);
    correctness_holds::<AcquireRelease>(4);
    correctness_holds::<SeqCstAll>(64);
}
