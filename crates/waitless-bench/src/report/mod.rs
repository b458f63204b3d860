//! The comparison report: plan the runs of a set of workload entries within a
//! time budget, run them, read the results, print a table and write the
//! report folder (`results.json`, SVG plots, `index.html`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::analyzer::{
    analyze_lock_free_benefits, human_rate, profile_with, ratio, within_noise, BenefitAnalysis,
    ComparisonResults, ContentionProfile,
};
use crate::machine::Machine;
use crate::measure::{run_with_retries, Measurement, RunConfig, RunResult};
use crate::svg::{self, LineChart, Series, YScale};
use crate::workloads::{Entry, Role};

mod analysis;
mod files;
mod html;
mod paired;
mod plots;
mod run;
mod text;

pub use self::analysis::*;
pub use self::files::*;
pub use self::html::*;
pub use self::paired::*;
pub use self::plots::*;
pub use self::run::*;
pub use self::text::*;

/// Shortest measurement window the planner picks.
pub const MIN_WINDOW: Duration = Duration::from_millis(10);
/// Longest measurement window the planner picks.
pub const MAX_WINDOW: Duration = Duration::from_secs(1);
/// Estimated fixed cost of one run (spawning and joining threads, building
/// the structure), used only to fit the plan into the budget.
const RUN_OVERHEAD: Duration = Duration::from_millis(4);
/// Most of a budget the workloads' minimum windows may take together;
/// beyond it they are all scaled down alike, so a short budget (`--quick`)
/// still holds.
const MIN_WINDOWS_SHARE: f64 = 0.5;

/// How a report is run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Thread counts for entries without fixed ones.
    pub thread_counts: Vec<usize>,
    /// Measurement window of one run (with a budget: of the first
    /// workload's runs; later ones adapt, see [`adapted_config`]).
    #[serde(with = "crate::measure::secs")]
    pub window: Duration,
    /// Warm-up before each run's window (with a budget: kept in the same
    /// proportion to the window).
    #[serde(with = "crate::measure::secs")]
    pub warmup: Duration,
    /// Runs per measurement (the median is reported).
    pub repeats: usize,
    /// The time budget the window was computed from (`None` when the
    /// window was given explicitly).
    #[serde(with = "crate::measure::secs::option")]
    pub budget: Option<Duration>,
    /// Whether each waitless contender also gets a contention-profiled run.
    pub profile_contention: bool,
    /// How many times a disturbed run is repeated before it is kept and
    /// its measurement marked disturbed.
    #[serde(default)]
    pub retries: usize,
}

/// One contender of one workload in the plan.
#[derive(Debug)]
pub struct PlannedContender<'a> {
    /// The entry to run.
    pub entry: &'a Entry,
    /// The thread counts it runs at.
    pub thread_counts: Vec<usize>,
}

/// One workload in the plan: its contenders, in the order given.
#[derive(Debug)]
pub struct PlannedWorkload<'a> {
    /// The group (`stack`, `map`, …).
    pub group: &'static str,
    /// The workload name.
    pub workload: &'static str,
    /// What one operation is.
    pub unit: &'static str,
    /// The contenders.
    pub contenders: Vec<PlannedContender<'a>>,
    /// The longest `min_window` of its entries (zero: none), the same for
    /// every contender.
    pub min_window: Duration,
}

impl PlannedWorkload<'_> {
    /// Every thread count any contender runs at, ascending.
    pub fn thread_counts(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .contenders
            .iter()
            .flat_map(|c| c.thread_counts.iter().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Groups `entries` by workload (in first-seen order) and gives each entry
/// its thread counts: its `fixed_threads` when it has them, else `threads`.
pub fn plan<'a>(entries: &'a [Entry], threads: &[usize]) -> Vec<PlannedWorkload<'a>> {
    let mut out: Vec<PlannedWorkload<'a>> = Vec::new();
    for e in entries {
        let counts = match e.fixed_threads {
            Some(f) => f.to_vec(),
            None => threads.to_vec(),
        };
        let c = PlannedContender {
            entry: e,
            thread_counts: counts,
        };
        let min = e.min_window.unwrap_or(Duration::ZERO);
        match out.iter_mut().find(|w| w.workload == e.workload) {
            Some(w) => {
                w.contenders.push(c);
                w.min_window = w.min_window.max(min);
            }
            None => out.push(PlannedWorkload {
                group: e.group,
                workload: e.workload,
                unit: e.unit,
                contenders: vec![c],
                min_window: min,
            }),
        }
    }
    out
}

/// How many runs a plan takes: every contender at each of its thread counts,
/// `repeats` times, plus one profiled run per waitless contender.
pub fn count_runs(plan: &[PlannedWorkload<'_>], repeats: usize, profile: bool) -> usize {
    plan.iter()
        .flat_map(|w| &w.contenders)
        .map(|c| {
            c.thread_counts.len() * repeats.max(1)
                + usize::from(profile && c.entry.role == Role::Waitless)
        })
        .sum()
}

/// The window that fits `runs` runs (each with a warm-up of a tenth of its
/// window and a fixed overhead) into `budget`, clamped to
/// [`MIN_WINDOW`]..=[`MAX_WINDOW`].
pub fn window_for_budget(budget: Duration, runs: usize) -> Duration {
    window_for_plan(budget, &vec![Duration::ZERO; runs])
}

/// The window that fits the runs whose minimum windows are `mins` (one per
/// run, from [`run_min_windows`]) into `budget`: each run measures
/// `max(window, its minimum)` after a warm-up of a tenth of the window, plus
/// a fixed overhead. Clamped to [`MIN_WINDOW`]..=[`MAX_WINDOW`].
pub fn window_for_plan(budget: Duration, mins: &[Duration]) -> Duration {
    if mins.is_empty() {
        return MAX_WINDOW;
    }
    fit_window(budget, RUN_OVERHEAD, mins).clamp(MIN_WINDOW, MAX_WINDOW)
}

/// The window `w` with `Σ (max(w, m) + w/10 + overhead) = time` over the
/// runs' minimum windows `m` (zero when even the overheads do not fit).
fn fit_window(time: Duration, overhead: Duration, mins: &[Duration]) -> Duration {
    let n = mins.len() as f64;
    let avail = time.as_secs_f64() - n * overhead.as_secs_f64();
    if mins.is_empty() || avail <= 0.0 {
        return Duration::ZERO;
    }
    let cost = |w: f64| -> f64 { mins.iter().map(|m| w.max(m.as_secs_f64()) + w / 10.0).sum() };
    // cost(w) ≥ 1.1·n·w, so the answer is at most avail / (1.1·n), which is
    // exact when no run has a minimum. cost is increasing: bisect.
    let (mut lo, mut hi) = (0.0_f64, avail / (1.1 * n));
    if cost(hi) > avail {
        for _ in 0..64 {
            let mid = (lo + hi) / 2.0;
            if cost(mid) > avail {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi = lo;
    }
    Duration::from_secs_f64(hi)
}

/// The minimum window of every run of `plan`, in the order [`run_plan`]
/// runs them (one per run counted by [`count_runs`]; zero where the
/// workload has none). Only a budgeted run stretches windows: without a
/// budget (an explicit `--duration`) every entry is zero. When the
/// minimums would take more than half the budget, or more than the budget
/// leaves once every run has [`MIN_WINDOW`], they are scaled down alike.
pub fn run_min_windows(
    plan: &[PlannedWorkload<'_>],
    repeats: usize,
    profile: bool,
    budget: Option<Duration>,
) -> Vec<Duration> {
    let mut mins = Vec::new();
    for w in plan {
        let runs = count_runs(std::slice::from_ref(w), repeats, profile);
        let m = if budget.is_some() {
            w.min_window
        } else {
            Duration::ZERO
        };
        mins.extend(std::iter::repeat(m).take(runs));
    }
    if let Some(budget) = budget {
        let total: Duration = mins.iter().sum();
        // Never more than what is left once every run has its shortest
        // window, warm-up and overhead: a budget too short for the plan
        // (`--quick`) stretches nothing.
        let floor = (MIN_WINDOW.mul_f64(1.1) + RUN_OVERHEAD) * mins.len() as u32;
        let cap = budget
            .mul_f64(MIN_WINDOWS_SHARE)
            .min(budget.saturating_sub(floor));
        if total > cap {
            let f = cap.as_secs_f64() / total.as_secs_f64();
            for m in &mut mins {
                *m = m.mul_f64(f);
            }
        }
    }
    mins
}

/// Progress of a report run, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Runs finished before this one.
    pub done: usize,
    /// Runs in the plan.
    pub total: usize,
    /// Workload being measured.
    pub workload: &'a str,
    /// Contender being measured.
    pub contender: &'a str,
    /// Threads of this run.
    pub threads: usize,
    /// `true` for the contention-profiled run.
    pub profiling: bool,
}

/// Results of one contender on one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContenderReport {
    /// The contender's name.
    pub name: String,
    /// Who it is.
    pub role: Role,
    /// One measurement per thread count, ascending.
    pub measurements: Vec<Measurement>,
    /// The contention profile at the largest thread count (waitless
    /// contenders only).
    pub contention: Option<ContentionProfile>,
    /// Set when a run panicked; the contender's remaining runs were skipped.
    pub error: Option<String>,
}

impl ContenderReport {
    /// The measurement at `threads`, if any.
    pub fn at(&self, threads: usize) -> Option<&Measurement> {
        self.measurements.iter().find(|m| m.threads == threads)
    }
}

/// The best peer at one thread count, and how a waitless contender compares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRatio {
    /// Threads that ran.
    pub threads: usize,
    /// The fastest peer at this count (by median).
    pub best_peer: String,
    /// `waitless / best_peer` by median.
    pub factor: f64,
    /// The difference is not established (see [`within_noise`]).
    #[serde(default)]
    pub within_noise: bool,
    /// The same two contenders' runs paired round by round (see
    /// [`PairedRatio`]); `None` where their run counts differ (and in
    /// results written before it existed).
    #[serde(default)]
    pub paired: Option<PairedRatio>,
}

/// A waitless contender read against the lock and the peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadAnalysis {
    /// The waitless contender.
    pub contender: String,
    /// The lock baseline it was compared with.
    pub baseline: String,
    /// Crossover, best factor, recommendations (against the baseline).
    pub versus_mutex: BenefitAnalysis,
    /// Against the best peer at each thread count (empty without peers).
    pub versus_best_peer: Vec<PeerRatio>,
    /// Against the lock baseline at each thread count both measured, runs
    /// paired round by round (see [`PairedRatio`]; empty in results written
    /// before it existed).
    #[serde(default)]
    pub paired_versus_mutex: Vec<PairedAt>,
}

impl WorkloadAnalysis {
    /// The paired estimate against the lock baseline at `threads`.
    pub fn paired_lock_at(&self, threads: usize) -> Option<PairedRatio> {
        self.paired_versus_mutex
            .iter()
            .find(|p| p.threads == threads)
            .map(|p| p.paired)
    }

    /// The paired estimate against the best peer at `threads`.
    pub fn paired_peer_at(&self, threads: usize) -> Option<PairedRatio> {
        self.versus_best_peer
            .iter()
            .find(|r| r.threads == threads)
            .and_then(|r| r.paired)
    }
}

/// One workload's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadReport {
    /// The group.
    pub group: String,
    /// The workload name.
    pub workload: String,
    /// What one operation is.
    pub unit: String,
    /// Every thread count measured, ascending.
    pub thread_counts: Vec<usize>,
    /// Measurement window of each run of this workload (with a budget, the
    /// planner adapts it workload by workload).
    #[serde(with = "crate::measure::secs")]
    pub window: Duration,
    /// Warm-up before each run of this workload.
    #[serde(with = "crate::measure::secs")]
    pub warmup: Duration,
    /// Every contender.
    pub contenders: Vec<ContenderReport>,
    /// One analysis per waitless contender when a baseline exists.
    pub analyses: Vec<WorkloadAnalysis>,
    /// File names of this workload's plots inside the report folder.
    pub plots: Vec<String>,
}

/// A whole report, as written to `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `waitless-bench`.
    pub tool: String,
    /// Version of the tool.
    pub version: String,
    /// The machine.
    pub machine: Machine,
    /// How it was run.
    pub settings: Settings,
    /// The command line that produced it (empty when run as a library).
    #[serde(default)]
    pub command: String,
    /// Start time, seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// Wall-clock time of the whole run.
    #[serde(with = "crate::measure::secs")]
    pub wall_time: Duration,
    /// Every workload, in plan order.
    pub workloads: Vec<WorkloadReport>,
}

impl Report {
    /// `true` when any contender failed.
    pub fn has_errors(&self) -> bool {
        self.workloads
            .iter()
            .flat_map(|w| &w.contenders)
            .any(|c| c.error.is_some())
    }
}

/// A file-name-safe form of a workload name (`stack/push-pop` → `stack-push-pop`).
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() {
        "workload".to_owned()
    } else {
        s
    }
}

pub(super) fn role_label(role: Role) -> &'static str {
    match role {
        Role::Waitless => "waitless",
        Role::MutexBaseline => "lock",
        Role::Peer => "peer",
    }
}

/// Runs `entries` with `settings` and assembles the report (without writing
/// it).
pub fn run_report(
    entries: &[Entry],
    settings: &Settings,
    progress: impl FnMut(Progress<'_>),
) -> Report {
    let started = Instant::now();
    let started_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let machine = Machine::detect();
    let plan = plan(entries, &settings.thread_counts);
    let workloads = run_plan(&plan, settings, progress);
    Report {
        tool: "waitless-bench".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        machine,
        settings: settings.clone(),
        command: String::new(),
        started_unix_s,
        wall_time: started.elapsed(),
        workloads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Percentiles;

    fn fast(cfg: &RunConfig, threads: usize) -> RunResult {
        let _ = cfg;
        RunResult {
            threads,
            ops: 1000 * threads as u64,
            elapsed: Duration::from_millis(1),
            ops_per_sec: 1e6 * threads as f64,
            latency: Percentiles {
                p50_ns: 10,
                p99_ns: 100,
                p999_ns: 1000,
                max_ns: 5000,
                samples: 10,
            },
            cpu: None,
        }
    }
    fn slow(_: &RunConfig, threads: usize) -> RunResult {
        RunResult {
            ops_per_sec: 2e6 / threads as f64,
            ..fast(
                &RunConfig {
                    warmup: Duration::ZERO,
                    window: Duration::ZERO,
                },
                threads,
            )
        }
    }
    fn broken(_: &RunConfig, threads: usize) -> RunResult {
        assert!(threads < 2, "broken at {threads}");
        fast(
            &RunConfig {
                warmup: Duration::ZERO,
                window: Duration::ZERO,
            },
            threads,
        )
    }
    const SPSC: &[usize] = &[2];

    fn entries() -> Vec<Entry> {
        let e = |workload, contender, role, fixed_threads, run| Entry {
            group: "g",
            workload,
            unit: "ops",
            contender,
            role,
            fixed_threads,
            min_window: None,
            run,
        };
        vec![
            e(
                "g/a",
                "mine",
                Role::Waitless,
                None,
                fast as fn(&RunConfig, usize) -> RunResult,
            ),
            e("g/a", "Mutex<X>", Role::MutexBaseline, None, slow),
            e("g/a", "peer1", Role::Peer, None, slow),
            e("g/a", "peer2", Role::Peer, None, broken),
            e("g/b", "spsc", Role::Waitless, Some(SPSC), fast),
        ]
    }

    fn settings() -> Settings {
        Settings {
            thread_counts: vec![1, 2, 4],
            window: Duration::from_millis(1),
            warmup: Duration::ZERO,
            repeats: 3,
            budget: None,
            profile_contention: false,
            retries: 0,
        }
    }

    #[test]
    fn plan_groups_by_workload_and_respects_fixed_threads() {
        let es = entries();
        let p = plan(&es, &[1, 2, 4]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].contenders.len(), 4);
        assert_eq!(p[1].thread_counts(), vec![2]);
        assert_eq!(count_runs(&p, 3, false), (4 * 3 + 1) * 3);
        assert_eq!(count_runs(&p, 3, true), (4 * 3 + 1) * 3 + 2);
    }

    #[test]
    fn window_fits_the_budget_within_limits() {
        let w = window_for_budget(Duration::from_secs(120), 120);
        assert!(
            w < Duration::from_secs(1) && w > Duration::from_millis(800),
            "{w:?}"
        );
        assert_eq!(window_for_budget(Duration::from_secs(1), 1000), MIN_WINDOW);
        assert_eq!(window_for_budget(Duration::from_secs(1000), 1), MAX_WINDOW);
    }

    #[test]
    fn run_plan_measures_analyses_and_survives_a_panicking_contender() {
        let es = entries();
        let p = plan(&es, &[1, 2, 4]);
        let mut seen = 0;
        let reports = run_plan(&p, &settings(), |pr| {
            assert_eq!(pr.done, seen);
            seen += 1;
        });
        assert_eq!(seen, count_runs(&p, 3, false));
        let a = &reports[0];
        assert_eq!(a.thread_counts, vec![1, 2, 4]);
        assert_eq!(a.contenders[0].measurements.len(), 3);
        let broken = &a.contenders[3];
        assert!(broken.error.as_deref().unwrap().contains("broken at 2"));
        assert_eq!(broken.measurements.len(), 1);
        assert_eq!(a.analyses.len(), 1);
        let an = &a.analyses[0];
        assert_eq!(an.baseline, "Mutex<X>");
        // fast: 1M·t, slow: 2M/t → crossover at 2 (1.0x at... 0.5x, 2x, 8x).
        assert_eq!(an.versus_mutex.crossover_thread_count, Some(2));
        assert!((an.versus_mutex.maximum_improvement_factor - 8.0).abs() < 1e-9);
        // At 1 thread the broken peer (1M) loses to peer1 (2M).
        assert_eq!(an.versus_best_peer[0].best_peer, "peer1");
        assert!((an.versus_best_peer[0].factor - 0.5).abs() < 1e-9);
        // No baseline in g/b: no analysis, but measured.
        assert!(reports[1].analyses.is_empty());
        assert_eq!(reports[1].contenders[0].measurements[0].threads, 2);
    }

    #[test]
    fn report_files_are_written_and_linked() {
        let es = entries();
        let s = settings();
        let mut r = run_report(&es, &s, |_| {});
        assert!(r.has_errors());
        let dir = std::env::temp_dir().join(format!("waitless-report-unit-{}", std::process::id()));
        let files = write_report(&mut r, &dir).unwrap();
        assert_eq!(files.len(), 2 * 2 + 2);
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        for w in &r.workloads {
            for p in &w.plots {
                assert!(dir.join(p).exists());
                assert!(html.contains(&format!("src=\"{p}\"")));
            }
        }
        assert!(html.contains("Mutex&lt;X&gt;"));
        let text = text_table(&r);
        assert!(text.contains("crossover at 2 threads"), "{text}");
        // Each workload's own window (a stretched one differs from the plan's).
        let win = format!(
            "median of 3 runs of {} ms",
            r.workloads[0].window.as_millis()
        );
        assert!(text.contains(&win), "{text}");
        assert!(text.contains("FAILED"));
        let back: Report =
            serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(back.workloads.len(), r.workloads.len());
        assert_eq!(back.workloads[0].contenders[0].name, "mine");
        assert_eq!(back.settings, r.settings);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn budget_adapts_the_window_to_what_is_left() {
        let mut s = settings();
        s.window = Duration::from_millis(100);
        s.warmup = Duration::from_millis(10);
        // No budget: fixed.
        let left = [Duration::ZERO; 10];
        let measured = Duration::from_millis(1100);
        let c = adapted_config(&s, Duration::from_secs(100), measured, 10, &left);
        assert_eq!(c.window, s.window);
        s.budget = Some(Duration::from_millis(2400));
        // On schedule: 10 runs took 1.2 s (10 ms overhead each), 10 left in 1.2 s.
        let c = adapted_config(&s, Duration::from_millis(1200), measured, 10, &left);
        assert!(
            c.window > Duration::from_millis(90) && c.window < Duration::from_millis(110),
            "{c:?}"
        );
        assert!(c.warmup <= c.window / 5);
        // Runs cost more than planned: shrink, but not below half the plan.
        let c = adapted_config(&s, Duration::from_millis(1600), measured, 10, &left);
        assert!(c.window < Duration::from_millis(90), "{c:?}");
        let c = adapted_config(&s, Duration::from_secs(60), measured, 10, &left);
        assert_eq!(c.window, Duration::from_millis(50));
        // Far ahead of schedule: grow, but at most to twice the plan.
        let c = adapted_config(&s, Duration::from_millis(100), Duration::ZERO, 10, &left);
        assert_eq!(c.window, Duration::from_millis(200));
        // A workload with a minimum window gets it; the warm-up stays.
        let mut stretched = left;
        stretched[..3].fill(Duration::from_millis(150));
        let c = adapted_config(&s, Duration::from_millis(1200), measured, 10, &stretched);
        assert_eq!(c.window, Duration::from_millis(150));
        assert!(c.warmup <= Duration::from_millis(20), "{c:?}");
    }

    /// Eight workloads of 3 contenders × 4 thread counts × 3 repeats; the
    /// ones at `noisy` have a minimum window of 400 ms.
    fn noisy_entries(noisy: &[usize]) -> Vec<Entry> {
        const NAMES: [&str; 8] = [
            "g/w0", "g/w1", "g/w2", "g/w3", "g/w4", "g/w5", "g/w6", "g/w7",
        ];
        let mut v = Vec::new();
        for (i, name) in NAMES.into_iter().enumerate() {
            for (contender, role) in [
                ("mine", Role::Waitless),
                ("Mutex<X>", Role::MutexBaseline),
                ("peer", Role::Peer),
            ] {
                v.push(Entry {
                    group: "g",
                    workload: name,
                    unit: "ops",
                    contender,
                    role,
                    fixed_threads: None,
                    min_window: noisy.contains(&i).then_some(Duration::from_millis(400)),
                    run: fast,
                });
            }
        }
        v
    }

    /// Replays `run_plan`'s scheduling on a simulated clock where every run
    /// costs its window, its warm-up and `overhead`: the time the plan takes
    /// and each workload's configuration.
    fn simulate(
        p: &[PlannedWorkload<'_>],
        budget: Duration,
        overhead: Duration,
    ) -> (Duration, Vec<RunConfig>) {
        let mins = run_min_windows(p, 3, false, Some(budget));
        assert_eq!(mins.len(), count_runs(p, 3, false));
        let window = window_for_plan(budget, &mins);
        let mut s = settings();
        s.window = window;
        s.warmup = window / 10;
        s.budget = Some(budget);
        let (mut spent, mut measured, mut done) = (Duration::ZERO, Duration::ZERO, 0);
        let mut cfgs = Vec::new();
        for w in p {
            let cfg = adapted_config(&s, spent, measured, done, &mins[done..]);
            for _ in 0..count_runs(std::slice::from_ref(w), 3, false) {
                spent += cfg.window + cfg.warmup + overhead;
                measured += cfg.window + cfg.warmup;
                done += 1;
            }
            cfgs.push(cfg);
        }
        (spent, cfgs)
    }

    #[test]
    fn min_windows_stretch_their_workloads_and_the_budget_holds() {
        let plain = noisy_entries(&[]);
        let es = noisy_entries(&[2, 5]);
        let p = plan(&es, &[1, 2, 4, 8]);
        assert_eq!(p[2].min_window, Duration::from_millis(400));
        assert_eq!(p[0].min_window, Duration::ZERO);
        // Without a budget (an explicit --duration) nothing is stretched.
        assert!(run_min_windows(&p, 3, false, None)
            .iter()
            .all(|m| m.is_zero()));
        let budget = Duration::from_secs(120);
        let (_, before) = simulate(&plan(&plain, &[1, 2, 4, 8]), budget, RUN_OVERHEAD);
        for overhead in [RUN_OVERHEAD, Duration::from_millis(6)] {
            let (spent, cfgs) = simulate(&p, budget, overhead);
            // The budget holds (the planner's margin is the warm-up's).
            let off = spent.as_secs_f64() / budget.as_secs_f64();
            assert!((0.95..=1.01).contains(&off), "{off} {cfgs:?}");
            for (i, c) in cfgs.iter().enumerate() {
                if i == 2 || i == 5 {
                    assert_eq!(c.window, Duration::from_millis(400), "{i}: {c:?}");
                } else {
                    // The others pay for the stretch alike, and the
                    // workloads after a stretched one are not shrunk by it
                    // (its long windows are not taken for overhead).
                    let r = c.window.as_secs_f64() / cfgs[0].window.as_secs_f64();
                    assert!((0.97..=1.03).contains(&r), "{i}: {cfgs:?}");
                    assert!(c.window < before[i].window, "{i}: {c:?} {before:?}");
                }
            }
        }
        // A short budget: the minimums are scaled down to half of it, and
        // it still holds.
        let budget = Duration::from_secs(15);
        let mins = run_min_windows(&p, 3, false, Some(budget));
        // (to rounding: a nanosecond per run at most)
        let taken = mins.iter().sum::<Duration>();
        assert!(taken <= budget / 2 + Duration::from_micros(1), "{taken:?}");
        assert!(taken >= budget / 2 - Duration::from_micros(1), "{taken:?}");
        let (spent, cfgs) = simulate(&p, budget, RUN_OVERHEAD);
        let off = spent.as_secs_f64() / budget.as_secs_f64();
        assert!((0.95..=1.01).contains(&off), "{off} {cfgs:?}");
        assert!(cfgs[2].window > cfgs[0].window, "{cfgs:?}");
        // Too short for the plan even at MIN_WINDOW: nothing is stretched.
        let mins = run_min_windows(&p, 3, false, Some(Duration::from_secs(4)));
        assert!(mins.iter().all(|m| m.is_zero()), "{mins:?}");
    }

    #[test]
    fn run_plan_gives_every_contender_of_a_stretched_workload_its_window() {
        fn window_as_ops(cfg: &RunConfig, threads: usize) -> RunResult {
            RunResult {
                ops_per_sec: cfg.window.as_micros() as f64,
                ..fast(cfg, threads)
            }
        }
        let mut es = entries();
        for e in &mut es {
            e.run = window_as_ops;
        }
        es.push(Entry {
            contender: "spsc-peer",
            role: Role::Peer,
            ..es[4]
        });
        for e in &mut es[4..] {
            e.min_window = Some(Duration::from_millis(30));
        }
        let p = plan(&es, &[1, 2, 4]);
        let mut s = settings();
        s.budget = Some(Duration::from_secs(10));
        let reports = run_plan(&p, &s, |_| {});
        assert_eq!(reports[0].window, s.window);
        let b = &reports[1];
        assert_eq!(b.window, Duration::from_millis(30));
        assert_eq!(b.contenders.len(), 2);
        for c in &b.contenders {
            let m = &c.measurements[0];
            assert_eq!(
                (m.min_ops_per_sec, m.max_ops_per_sec),
                (30e3, 30e3),
                "{}",
                c.name
            );
        }
        // Without a budget the explicit window holds everywhere.
        s.budget = None;
        let reports = run_plan(&p, &s, |_| {});
        assert_eq!(reports[1].window, s.window);
    }

    #[test]
    fn rounds_alternate_their_order_and_pairs_cancel_the_drift() {
        // Three contenders whose rates all follow the machine's drift,
        // which changes 6x between rounds: `mine` is 1.1x the peer and 2x
        // the lock in every round. The fakes count their calls to know
        // the round (three runs per round) and log the order they ran in.
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        use std::sync::Mutex;
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        static ORDER: Mutex<Vec<&str>> = Mutex::new(Vec::new());
        const DRIFT: [f64; 5] = [1.0, 3.0, 0.7, 2.0, 4.0];
        fn at(name: &'static str, rate: f64, cfg: &RunConfig, t: usize) -> RunResult {
            let round = CALLS.fetch_add(1, SeqCst) / 3;
            ORDER.lock().unwrap().push(name);
            RunResult {
                ops_per_sec: rate * DRIFT[round % DRIFT.len()],
                ..fast(cfg, t)
            }
        }
        fn mine(cfg: &RunConfig, t: usize) -> RunResult {
            at("mine", 110.0, cfg, t)
        }
        fn lock(cfg: &RunConfig, t: usize) -> RunResult {
            at("lock", 55.0, cfg, t)
        }
        fn peer(cfg: &RunConfig, t: usize) -> RunResult {
            at("peer", 100.0, cfg, t)
        }
        let e = |contender, role, run| Entry {
            group: "g",
            workload: "g/drift",
            unit: "ops",
            contender,
            role,
            fixed_threads: Some(SPSC),
            min_window: None,
            run,
        };
        let es = vec![
            e(
                "mine",
                Role::Waitless,
                mine as fn(&RunConfig, usize) -> RunResult,
            ),
            e("lock", Role::MutexBaseline, lock),
            e("peer", Role::Peer, peer),
        ];
        let mut s = settings();
        s.repeats = 5;
        let report = run_report(&es, &s, |_| {});
        let order = ORDER.lock().unwrap().clone();
        let fwd = ["mine", "lock", "peer"];
        let rev = ["peer", "lock", "mine"];
        let expected: Vec<&str> = [fwd, rev, fwd, rev, fwd].concat();
        assert_eq!(order, expected);
        let a = &report.workloads[0].analyses[0];
        // By medians the drift hides the difference: the ranges overlap.
        let pr = &a.versus_best_peer[0];
        assert!(pr.within_noise, "{pr:?}");
        let paired = pr.paired.expect("five runs each");
        assert!((paired.median - 1.1).abs() < 1e-9, "{paired:?}");
        assert!(!paired.within_noise && paired.rounds == 5 && paired.wins == 5);
        assert_eq!(a.paired_versus_mutex.len(), 1);
        let lockp = &a.paired_versus_mutex[0];
        assert_eq!((lockp.threads, lockp.against.as_str()), (2, "lock"));
        assert!((lockp.paired.median - 2.0).abs() < 1e-9);
        // The text table shows both paired rows.
        let t = text_table(&report);
        assert!(t.contains("mine paired vs peer"), "{t}");
        assert!(t.contains("1.10x [1.10-1.10]"), "{t}");
        assert!(t.contains("mine paired vs lock"), "{t}");
        assert!(t.contains("2.00x [2.00-2.00]"), "{t}");
        assert!(html(&report).contains("1.10x [1.10-1.10]"));
        // Results written before the paired fields existed still read.
        let mut v = serde_json::to_value(&report).unwrap();
        let an = &mut v["workloads"][0]["analyses"][0];
        an.as_object_mut().unwrap().remove("paired_versus_mutex");
        an["versus_best_peer"][0]
            .as_object_mut()
            .unwrap()
            .remove("paired");
        let old: Report = serde_json::from_value(v).unwrap();
        assert!(old.workloads[0].analyses[0].paired_versus_mutex.is_empty());
        assert!(old.workloads[0].analyses[0].versus_best_peer[0]
            .paired
            .is_none());
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slug("stack/push-pop pairs"), "stack-push-pop-pairs");
        assert_eq!(slug("Map: 90% reads"), "map-90-reads");
        assert_eq!(slug("///"), "workload");
    }
}
