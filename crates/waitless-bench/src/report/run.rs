//! Running a plan: every contender at every thread count, with retries of disturbed runs and the contention-profiled runs.

use super::*;

pub(super) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".to_owned()
    }
}

/// Whether a contention-profiled run can report anything here: the CAS
/// counters are compiled in (the `contention` feature), or the machine
/// exposes a hardware cache-miss counter. When neither, the CLI skips the
/// profiled runs and says so once ([`crate::verdict::notes`]).
pub fn profiling_can_report() -> bool {
    waitless::contention::is_compiled_in()
        || crate::perf::CacheMissCounter::open_inherited().is_some()
}

/// Runs the plan. At each thread count and repeat (a round) the contenders
/// run one after another, so slow drift of a shared machine hits them
/// alike, in the order given in even rounds and in reverse in odd ones.
pub fn run_plan(
    plan: &[PlannedWorkload<'_>],
    settings: &Settings,
    mut progress: impl FnMut(Progress<'_>),
) -> Vec<WorkloadReport> {
    let total = count_runs(plan, settings.repeats, settings.profile_contention);
    let mins = run_min_windows(
        plan,
        settings.repeats,
        settings.profile_contention,
        settings.budget,
    );
    debug_assert_eq!(mins.len(), total);
    let started = Instant::now();
    let mut done = 0usize;
    // Window + warm-up of the runs made so far: the rest of the time spent
    // is overhead.
    let mut measured = Duration::ZERO;
    let mut reports = Vec::with_capacity(plan.len());
    for w in plan {
        let cfg = adapted_config(
            settings,
            started.elapsed(),
            measured,
            done,
            mins.get(done..).unwrap_or_default(),
        );
        let counts = w.thread_counts();
        // runs[c][t] = results of contender c at thread count t.
        let mut runs: Vec<BTreeMap<usize, Vec<RunResult>>> =
            vec![BTreeMap::new(); w.contenders.len()];
        let mut retries: Vec<BTreeMap<usize, usize>> = vec![BTreeMap::new(); w.contenders.len()];
        let mut errors: Vec<Option<String>> = vec![None; w.contenders.len()];
        for &t in &counts {
            for round in 0..settings.repeats.max(1) {
                // Odd rounds run the contenders in reverse order (A B C, C B
                // A, …): a machine that speeds up or slows down through a
                // round favours no position, and each pair of contenders
                // is in turn run first ([`PairedRatio`] pairs run `k` of
                // one with run `k` of another).
                let mut order: Vec<usize> = (0..w.contenders.len()).collect();
                if round % 2 == 1 {
                    order.reverse();
                }
                for ci in order {
                    let c = &w.contenders[ci];
                    if !c.thread_counts.contains(&t) {
                        continue;
                    }
                    progress(Progress {
                        done,
                        total,
                        workload: w.workload,
                        contender: c.entry.contender,
                        threads: t,
                        profiling: false,
                    });
                    done += 1;
                    if errors[ci].is_some() {
                        continue;
                    }
                    let run = c.entry.run;
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        run_with_retries(&cfg, t, settings.retries, run)
                    }));
                    measured += cfg.window + cfg.warmup;
                    match outcome {
                        Ok((r, n)) => {
                            runs[ci].entry(t).or_default().push(r);
                            *retries[ci].entry(t).or_default() += n;
                        }
                        Err(p) => {
                            errors[ci] = Some(format!(
                                "panicked at {t} threads: {}",
                                panic_message(p.as_ref())
                            ))
                        }
                    }
                }
            }
        }
        let mut contenders = Vec::with_capacity(w.contenders.len());
        for (ci, c) in w.contenders.iter().enumerate() {
            let mut contention = None;
            if settings.profile_contention && c.entry.role == Role::Waitless {
                let t = c.thread_counts.iter().copied().max().unwrap_or(1);
                progress(Progress {
                    done,
                    total,
                    workload: w.workload,
                    contender: c.entry.contender,
                    threads: t,
                    profiling: true,
                });
                done += 1;
                if errors[ci].is_none() {
                    measured += cfg.window + cfg.warmup;
                    let run = c.entry.run;
                    contention =
                        catch_unwind(AssertUnwindSafe(|| profile_with(t, || run(&cfg, t)))).ok();
                    // A panic mid-profile would leave the counters on.
                    waitless::contention::enable(false);
                }
            }
            contenders.push(ContenderReport {
                name: c.entry.contender.to_owned(),
                role: c.entry.role,
                measurements: std::mem::take(&mut runs[ci])
                    .into_iter()
                    .map(|(t, r)| {
                        Measurement::from_runs(r)
                            .with_retries(retries[ci].get(&t).copied().unwrap_or(0))
                    })
                    .collect(),
                contention,
                error: errors[ci].take(),
            });
        }
        let analyses = analyze_workload(&contenders);
        reports.push(WorkloadReport {
            group: w.group.to_owned(),
            workload: w.workload.to_owned(),
            unit: w.unit.to_owned(),
            thread_counts: counts,
            window: cfg.window,
            warmup: cfg.warmup,
            contenders,
            analyses,
            plots: Vec::new(),
        });
    }
    reports
}

/// The run configuration for the next workload, whose runs (and those of
/// every workload after it) have the minimum windows `left` (from
/// [`run_min_windows`]; the first is the next workload's).
///
/// With a budget, the window is recomputed from the time left, the windows
/// the runs left must have, and the per-run overhead observed so far
/// (`spent` minus the `measured` windows and warm-ups: building structures,
/// spawning threads, retries), so a plan whose runs cost more than
/// estimated still ends near its budget, and a stretched workload's longer
/// windows are never taken for overhead. The warm-up keeps its proportion
/// to the planned window; a workload's minimum window only lengthens its
/// measurement window.
pub fn adapted_config(
    settings: &Settings,
    spent: Duration,
    measured: Duration,
    done: usize,
    left: &[Duration],
) -> RunConfig {
    let stretch = |c: RunConfig| RunConfig {
        window: c.window.max(left.first().copied().unwrap_or_default()),
        ..c
    };
    let base = RunConfig {
        warmup: settings.warmup,
        window: settings.window,
    };
    let Some(budget) = settings.budget else {
        return base;
    };
    if done == 0 || left.is_empty() {
        return stretch(base);
    }
    let overhead = (spent.saturating_sub(measured) / done as u32).max(RUN_OVERHEAD);
    // Stay within a factor of two of the planned window, so workloads
    // remain comparable; a badly overloaded machine overruns its budget
    // rather than measuring slivers.
    let window = fit_window(budget.saturating_sub(spent), overhead, left)
        .clamp(settings.window / 2, settings.window * 2)
        .clamp(MIN_WINDOW, MAX_WINDOW);
    let share = settings.warmup.as_secs_f64() / settings.window.as_secs_f64().max(1e-9);
    stretch(RunConfig {
        window,
        warmup: window.mul_f64(share.min(0.2)),
    })
}
