//! The seed's own test of the analyzer, adapted only where its API had to change: the
//! `async`/`.await` are dropped (the analyzer is synchronous: async tasks
//! distort CPU-bound measurement) and the analyzer is built with
//! `LockFreePerformanceAnalyzer::new(..)` (the seed built a struct literal of
//! private counters). The builder keeps the run short so the suite stays
//! fast: a 5 ms window, one run per point.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use waitless::stack::LockFreeStack;
use waitless_bench::{analyze_lock_free_benefits, LockFreePerformanceAnalyzer};

/// The lock-based stack the lock-free one is compared with.
struct MutexStack<T>(Mutex<Vec<T>>);

impl<T> MutexStack<T> {
    fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }
    fn push(&self, value: T) {
        self.0.lock().unwrap().push(value);
    }
}

#[test]
fn test_lock_free_performance() {
    let analyzer = LockFreePerformanceAnalyzer::new(Duration::from_millis(5))
        .warmup(Duration::from_millis(1))
        .repeats(1);

    let lock_free_stack = Arc::new(LockFreeStack::new());
    let mutex_stack = Arc::new(MutexStack::new());

    let results = analyzer.compare_implementations(
        {
            let stack = lock_free_stack.clone();
            move || stack.push(42)
        },
        {
            let stack = mutex_stack.clone();
            move || stack.push(42)
        },
        vec![1, 2, 4, 8, 16],
    );

    let analysis = analyze_lock_free_benefits(&results);

    assert_eq!(
        results.points.iter().map(|p| p.threads).collect::<Vec<_>>(),
        vec![1, 2, 4, 8, 16]
    );
    assert!(results
        .points
        .iter()
        .all(|p| p.lock_free.median_ops_per_sec > 0.0 && p.mutex.median_ops_per_sec > 0.0));
    assert!(analysis.maximum_improvement_factor > 0.0);
    assert!(!analysis.recommendations.is_empty());
    if let Some(t) = analysis.crossover_thread_count {
        assert!([1, 2, 4, 8, 16].contains(&t));
    }
    // Every call was one push: the stacks hold what was measured (and the
    // warm-up's pushes).
    let measured: u64 = results.points.iter().map(|p| p.lock_free.runs[0].ops).sum();
    let mut held = 0u64;
    let guard = lock_free_stack.enter();
    while lock_free_stack.pop(&guard).is_some() {
        held += 1;
    }
    assert!(held >= measured, "{held} values for {measured} pushes");
}
