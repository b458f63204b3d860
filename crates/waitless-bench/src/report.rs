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
    analyze_lock_free_benefits, human_rate, profile_with, ratio, BenefitAnalysis,
    ComparisonResults, ContentionProfile,
};
use crate::machine::Machine;
use crate::measure::{Measurement, RunConfig, RunResult};
use crate::svg::{self, LineChart, Series, YScale};
use crate::workloads::{Entry, Role};

/// Shortest measurement window the planner picks.
pub const MIN_WINDOW: Duration = Duration::from_millis(10);
/// Longest measurement window the planner picks.
pub const MAX_WINDOW: Duration = Duration::from_secs(1);
/// Estimated fixed cost of one run (spawning and joining threads, building
/// the structure), used only to fit the plan into the budget.
const RUN_OVERHEAD: Duration = Duration::from_millis(4);

/// How a report is run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Thread counts for entries without fixed ones.
    pub thread_counts: Vec<usize>,
    /// Measurement window of one run (with a budget: of the first
    /// workload's runs; later ones adapt, see [`adapted_config`]).
    pub window: Duration,
    /// Warm-up before each run's window (with a budget: kept in the same
    /// proportion to the window).
    pub warmup: Duration,
    /// Runs per measurement (the median is reported).
    pub repeats: usize,
    /// The time budget the window was computed from (`None` when the
    /// window was given explicitly).
    pub budget: Option<Duration>,
    /// Whether each waitless contender also gets a contention-profiled run.
    pub profile_contention: bool,
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
        match out.iter_mut().find(|w| w.workload == e.workload) {
            Some(w) => w.contenders.push(c),
            None => out.push(PlannedWorkload {
                group: e.group,
                workload: e.workload,
                unit: e.unit,
                contenders: vec![c],
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
    if runs == 0 {
        return MAX_WINDOW;
    }
    let per_run = budget / runs as u32;
    let w = per_run.saturating_sub(RUN_OVERHEAD).mul_f64(1.0 / 1.1);
    w.clamp(MIN_WINDOW, MAX_WINDOW)
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
    pub window: Duration,
    /// Warm-up before each run of this workload.
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

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".to_owned()
    }
}

/// Runs the plan. At each thread count and repeat the contenders run one
/// after another, so slow drift of a shared machine hits them alike.
pub fn run_plan(
    plan: &[PlannedWorkload<'_>],
    settings: &Settings,
    mut progress: impl FnMut(Progress<'_>),
) -> Vec<WorkloadReport> {
    let total = count_runs(plan, settings.repeats, settings.profile_contention);
    let started = Instant::now();
    let mut done = 0usize;
    let mut reports = Vec::with_capacity(plan.len());
    for w in plan {
        let cfg = adapted_config(settings, started.elapsed(), done, total);
        let counts = w.thread_counts();
        // runs[c][t] = results of contender c at thread count t.
        let mut runs: Vec<BTreeMap<usize, Vec<RunResult>>> =
            vec![BTreeMap::new(); w.contenders.len()];
        let mut errors: Vec<Option<String>> = vec![None; w.contenders.len()];
        for &t in &counts {
            for _ in 0..settings.repeats.max(1) {
                for (ci, c) in w.contenders.iter().enumerate() {
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
                    match catch_unwind(AssertUnwindSafe(|| run(&cfg, t))) {
                        Ok(r) => runs[ci].entry(t).or_default().push(r),
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
                    .into_values()
                    .map(Measurement::from_runs)
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

/// The run configuration for the next workload. With a budget, the window
/// is recomputed from the time and runs left and the per-run overhead
/// observed so far (building structures, spawning threads), so a plan whose
/// runs cost more than estimated still ends near its budget; the warm-up
/// keeps its proportion to the window.
pub fn adapted_config(
    settings: &Settings,
    spent: Duration,
    done: usize,
    total: usize,
) -> RunConfig {
    let base = RunConfig {
        warmup: settings.warmup,
        window: settings.window,
    };
    let Some(budget) = settings.budget else {
        return base;
    };
    if done == 0 || total <= done {
        return base;
    }
    let nominal = (settings.window + settings.warmup) * done as u32;
    let overhead = (spent.saturating_sub(nominal) / done as u32).max(RUN_OVERHEAD);
    let left = total - done;
    let per_run = budget.saturating_sub(spent) / left as u32;
    // Stay within a factor of two of the planned window, so workloads
    // remain comparable; a badly overloaded machine overruns its budget
    // rather than measuring slivers.
    let window = per_run
        .saturating_sub(overhead)
        .mul_f64(1.0 / 1.1)
        .clamp(settings.window / 2, settings.window * 2)
        .clamp(MIN_WINDOW, MAX_WINDOW);
    let share = settings.warmup.as_secs_f64() / settings.window.as_secs_f64().max(1e-9);
    RunConfig {
        window,
        warmup: window.mul_f64(share.min(0.2)),
    }
}

/// Compares every waitless contender with the first lock baseline (at the
/// thread counts both measured) and with the best peer at each count.
pub fn analyze_workload(contenders: &[ContenderReport]) -> Vec<WorkloadAnalysis> {
    let Some(baseline) = contenders
        .iter()
        .find(|c| c.role == Role::MutexBaseline && !c.measurements.is_empty())
    else {
        return Vec::new();
    };
    let peers: Vec<&ContenderReport> = contenders.iter().filter(|c| c.role == Role::Peer).collect();
    contenders
        .iter()
        .filter(|c| c.role == Role::Waitless && !c.measurements.is_empty())
        .filter_map(|c| {
            let (lf, mx): (Vec<Measurement>, Vec<Measurement>) = c
                .measurements
                .iter()
                .filter_map(|m| baseline.at(m.threads).map(|b| (m.clone(), b.clone())))
                .unzip();
            let cmp = ComparisonResults::from_measurements(&c.name, &baseline.name, lf, mx)?;
            let versus_best_peer = c
                .measurements
                .iter()
                .filter_map(|m| {
                    let (name, best) = peers
                        .iter()
                        .filter_map(|p| p.at(m.threads).map(|pm| (&p.name, pm)))
                        .max_by(|a, b| a.1.median_ops_per_sec.total_cmp(&b.1.median_ops_per_sec))?;
                    Some(PeerRatio {
                        threads: m.threads,
                        best_peer: name.clone(),
                        factor: ratio(m.median_ops_per_sec, best.median_ops_per_sec),
                    })
                })
                .collect();
            Some(WorkloadAnalysis {
                contender: c.name.clone(),
                baseline: baseline.name.clone(),
                versus_mutex: analyze_lock_free_benefits(&cmp),
                versus_best_peer,
            })
        })
        .collect()
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

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Waitless => "waitless",
        Role::MutexBaseline => "lock",
        Role::Peer => "peer",
    }
}

/// The table printed at the end of a run.
pub fn text_table(report: &Report) -> String {
    let mut s = String::new();
    for w in &report.workloads {
        let _ = writeln!(
            s,
            "\n{} ({}/s, median of {}; ± = (max-min)/median)",
            w.workload, w.unit, report.settings.repeats
        );
        let name_w = w
            .contenders
            .iter()
            .map(|c| c.name.chars().count())
            .chain(w.analyses.iter().map(|a| a.contender.chars().count() + 12))
            .max()
            .unwrap_or(10)
            .max(10);
        let _ = write!(s, "  {:<name_w$}  {:<8}", "contender", "role");
        for t in &w.thread_counts {
            let _ = write!(s, " {:>13}", format!("{t} thr"));
        }
        s.push('\n');
        for c in &w.contenders {
            let _ = write!(s, "  {:<name_w$}  {:<8}", c.name, role_label(c.role));
            for &t in &w.thread_counts {
                let cell = match c.at(t) {
                    Some(m) => format!(
                        "{} ±{}",
                        human_rate(m.median_ops_per_sec),
                        spread_pct(m.spread)
                    ),
                    None => "-".to_owned(),
                };
                let _ = write!(s, " {cell:>13}");
            }
            if let Some(e) = &c.error {
                let _ = write!(s, "  FAILED: {e}");
            }
            s.push('\n');
        }
        for a in &w.analyses {
            let label = format!("{} vs lock", a.contender);
            let _ = write!(s, "  {label:<name_w$}  {:<8}", "");
            for &t in &w.thread_counts {
                let cell = a
                    .versus_mutex
                    .improvement_by_threads
                    .iter()
                    .find(|r| r.threads == t)
                    .map_or("-".to_owned(), |r| format!("{:.2}x", r.factor));
                let _ = write!(s, " {cell:>13}");
            }
            s.push('\n');
            if !a.versus_best_peer.is_empty() {
                let label = format!("{} vs peer", a.contender);
                let _ = write!(s, "  {label:<name_w$}  {:<8}", "");
                for &t in &w.thread_counts {
                    let cell = a
                        .versus_best_peer
                        .iter()
                        .find(|r| r.threads == t)
                        .map_or("-".to_owned(), |r| format!("{:.2}x", r.factor));
                    let _ = write!(s, " {cell:>13}");
                }
                s.push('\n');
            }
            let cross = match a.versus_mutex.crossover_thread_count {
                Some(t) => format!("crossover at {t} thread{}", if t == 1 { "" } else { "s" }),
                None => "no crossover".to_owned(),
            };
            let _ = writeln!(
                s,
                "  -> {}: {cross}; best {:.2}x vs {}",
                a.contender, a.versus_mutex.maximum_improvement_factor, a.baseline
            );
        }
        for c in &w.contenders {
            if let Some(p) = &c.contention {
                let _ = writeln!(
                    s,
                    "  contention ({}, {} threads): {}",
                    c.name,
                    p.threads,
                    p.summary()
                );
            }
        }
    }
    s
}

/// Checks that `dir` can be created and written, before any measuring.
pub fn ensure_writable(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".waitless-write-probe");
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}

/// Writes `results.json`, the plots and `index.html` into `dir`, filling in
/// each workload's `plots`. Returns the paths written.
pub fn write_report(report: &mut Report, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut used = std::collections::HashSet::new();
    for w in &mut report.workloads {
        let mut base = slug(&w.workload);
        let mut n = 2;
        while !used.insert(base.clone()) {
            base = format!("{}-{n}", slug(&w.workload));
            n += 1;
        }
        w.plots.clear();
        for (suffix, chart) in [
            ("throughput", throughput_chart(w)),
            ("latency", latency_chart(w)),
        ] {
            let name = format!("{base}.{suffix}.svg");
            let path = dir.join(&name);
            std::fs::write(&path, svg::render(&chart))?;
            written.push(path);
            w.plots.push(name);
        }
    }
    let json = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    let path = dir.join("results.json");
    std::fs::write(&path, json)?;
    written.push(path);
    let path = dir.join("index.html");
    std::fs::write(&path, html(report))?;
    written.push(path);
    Ok(written)
}

fn colors(contenders: &[ContenderReport]) -> Vec<(String, bool)> {
    let (mut wi, mut pi) = (0, 0);
    contenders
        .iter()
        .map(|c| match c.role {
            Role::Waitless => {
                wi += 1;
                (
                    svg::WAITLESS_COLORS[(wi - 1) % svg::WAITLESS_COLORS.len()].to_owned(),
                    false,
                )
            }
            Role::MutexBaseline => (svg::MUTEX_COLOR.to_owned(), true),
            Role::Peer => {
                pi += 1;
                (
                    svg::PEER_COLORS[(pi - 1) % svg::PEER_COLORS.len()].to_owned(),
                    false,
                )
            }
        })
        .collect()
}

/// Throughput (median, min–max bars) against threads, one line per contender.
/// Thread counts are placed on a log2 axis.
pub fn throughput_chart(w: &WorkloadReport) -> LineChart {
    let x = |t: usize| (t.max(1) as f64).log2();
    let series = w
        .contenders
        .iter()
        .zip(colors(&w.contenders))
        .filter(|(c, _)| !c.measurements.is_empty())
        .map(|(c, (color, dashed))| Series {
            name: c.name.clone(),
            color,
            dashed,
            points: c
                .measurements
                .iter()
                .map(|m| (x(m.threads), m.median_ops_per_sec))
                .collect(),
            ranges: c
                .measurements
                .iter()
                .map(|m| Some((m.min_ops_per_sec, m.max_ops_per_sec)))
                .collect(),
        })
        .collect();
    LineChart {
        title: format!("{} — throughput", w.workload),
        x_label: "threads".to_owned(),
        y_label: format!("{}/s (median, min–max)", w.unit),
        x_ticks: w
            .thread_counts
            .iter()
            .map(|&t| (x(t), t.to_string()))
            .collect(),
        y_scale: YScale::LinearFromZero,
        y_format: human_rate,
        series,
    }
}

/// Formats nanoseconds for an axis (`850ns`, `12µs`, `3ms`).
pub fn human_ns(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.0}s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.0}ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}µs", v / 1e3)
    } else {
        format!("{v:.0}ns")
    }
}

/// The thread count a workload's latency plot shows: the largest count at
/// which at least two contenders were measured (else the largest count).
pub fn latency_threads(w: &WorkloadReport) -> Option<usize> {
    w.thread_counts
        .iter()
        .rev()
        .copied()
        .find(|&t| w.contenders.iter().filter(|c| c.at(t).is_some()).count() >= 2)
        .or_else(|| w.thread_counts.last().copied())
}

/// Sampled latency percentiles (log scale) at [`latency_threads`], one line
/// per contender.
pub fn latency_chart(w: &WorkloadReport) -> LineChart {
    let t = latency_threads(w).unwrap_or(1);
    let series = w
        .contenders
        .iter()
        .zip(colors(&w.contenders))
        .filter_map(|(c, (color, dashed))| {
            let m = c.at(t)?;
            let l = m.latency;
            if l.samples == 0 {
                return None;
            }
            let ys = [l.p50_ns, l.p99_ns, l.p999_ns, l.max_ns];
            Some(Series {
                name: c.name.clone(),
                color,
                dashed,
                points: ys
                    .iter()
                    .enumerate()
                    .map(|(i, &y)| (i as f64, y.max(1) as f64))
                    .collect(),
                ranges: Vec::new(),
            })
        })
        .collect();
    LineChart {
        title: format!(
            "{} — latency at {t} thread{}",
            w.workload,
            if t == 1 { "" } else { "s" }
        ),
        x_label: "percentile (sampled, one op in 64)".to_owned(),
        y_label: "latency per operation (log scale)".to_owned(),
        x_ticks: ["p50", "p99", "p99.9", "max"]
            .iter()
            .enumerate()
            .map(|(i, l)| (i as f64, (*l).to_owned()))
            .collect(),
        y_scale: YScale::Log10,
        y_format: human_ns,
        series,
    }
}

fn esc(s: &str) -> String {
    svg::xml_escape(s)
}

/// The report page. Links only files that [`write_report`] writes.
pub fn html(report: &Report) -> String {
    let m = &report.machine;
    let st = &report.settings;
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>waitless-bench report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px; padding: 24px 32px; color: #1d1d1f; background: #fafafa; }}
h1 {{ margin-bottom: 4px; }} h2 {{ margin-top: 40px; border-bottom: 2px solid #1f5fd1; padding-bottom: 4px; }}
.sub {{ color: #555; margin-top: 0; }}
table {{ border-collapse: collapse; margin: 12px 0; background: #fff; }}
th, td {{ border: 1px solid #ddd; padding: 5px 10px; text-align: right; font-variant-numeric: tabular-nums; }}
th:first-child, td:first-child, td.l {{ text-align: left; }}
th {{ background: #f0f3f8; }}
tr.waitless td:first-child {{ color: #1f5fd1; font-weight: 600; }} tr.lock td:first-child {{ color: #d23c2a; }}
tr.ratio td {{ color: #444; font-style: italic; }}
.good {{ color: #17813f; font-weight: 600; }} .bad {{ color: #b3261e; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 12px; }} .plots img {{ width: 560px; max-width: 100%; border: 1px solid #ddd; background: #fff; }}
ul.rec li {{ margin: 4px 0; }} .err {{ color: #b3261e; font-weight: 600; }}
code {{ background: #eef; padding: 1px 4px; border-radius: 3px; }}
</style></head><body>
<h1>waitless-bench report</h1>
<p class="sub">Lock-free versus locks, measured on this machine. Raw numbers: <a href="results.json">results.json</a>.</p>
<h2>Machine and settings</h2>
<table>
<tr><td>CPU</td><td class="l">{}</td></tr>
<tr><td>Hardware threads</td><td class="l">{}</td></tr>
<tr><td>OS</td><td class="l">{} ({})</td></tr>
<tr><td>Compiler</td><td class="l">{} ({} build)</td></tr>
<tr><td>Hardware counters</td><td class="l">{}</td></tr>
<tr><td>Contention counters</td><td class="l">{}</td></tr>
<tr><td>Threads</td><td class="l">{}</td></tr>
<tr><td>Window / warm-up / repeats</td><td class="l">{} / {} / {} (median reported)</td></tr>
<tr><td>Wall time</td><td class="l">{:.1} s</td></tr>
<tr><td>Command</td><td class="l"><code>{}</code></td></tr>
</table>
"#,
        esc(&m.cpu_model),
        m.logical_cores,
        esc(&m.os),
        esc(&m.arch),
        esc(&m.rustc),
        esc(&m.profile),
        if m.hardware_counters {
            "available (cache misses reported)"
        } else {
            "not exposed here (no cache-miss numbers)"
        },
        if m.contention_counters {
            "compiled in (<code>--features contention</code>): CAS numbers reported, every waitless CAS pays a counter increment"
        } else {
            "not compiled in (build with <code>--features contention</code> for CAS numbers)"
        },
        st.thread_counts
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        window_range(report, |w| w.window),
        window_range(report, |w| w.warmup),
        st.repeats,
        report.wall_time.as_secs_f64(),
        if report.command.is_empty() {
            "(library call)".to_owned()
        } else {
            esc(&report.command)
        }
    );
    if m.profile != "release" {
        h.push_str("<p class=\"err\">This binary was not built with --release: the numbers measure debug code.</p>\n");
    }
    if report
        .workloads
        .iter()
        .any(|w| w.thread_counts.iter().any(|&t| t > m.logical_cores))
    {
        let _ = writeln!(
            h,
            "<p>Thread counts above {} oversubscribe this machine: those points show how each contender copes with preemption, not parallel scaling.</p>",
            m.logical_cores
        );
    }

    // Summary of every workload.
    h.push_str("<h2>Crossover summary</h2>\n<p class=\"sub\">Ratios are waitless ÷ contender, medians measured in the same run (above 1: waitless is faster). The crossover is the smallest thread count from which waitless beats the lock at that count and every larger one measured. Uncoloured ratios are within noise (the two sides' min–max ranges overlap).</p>\n<table><tr><th>workload</th><th>waitless contender</th><th>vs lock</th><th>crossover</th><th>best vs lock</th><th>vs best peer (largest count)</th></tr>\n");
    for w in &report.workloads {
        if w.analyses.is_empty() {
            let _ = writeln!(
                h,
                "<tr><td><a href=\"#{}\">{}</a></td><td class=\"l\" colspan=\"5\">no waitless-vs-lock pair measured</td></tr>",
                slug(&w.workload),
                esc(&w.workload)
            );
        }
        for a in &w.analyses {
            let v = &a.versus_mutex;
            let cross = match v.crossover_thread_count {
                Some(t) => format!(
                    "<span class=\"good\">{t} thread{}</span>",
                    if t == 1 { "" } else { "s" }
                ),
                None => "<span class=\"bad\">none</span>".to_owned(),
            };
            let best = match v.best_thread_count {
                Some(t) => format!("{:.2}x at {t}", v.maximum_improvement_factor),
                None => "-".to_owned(),
            };
            let peer = a.versus_best_peer.last().map_or("-".to_owned(), |p| {
                format!("{:.2}x vs {} at {}", p.factor, esc(&p.best_peer), p.threads)
            });
            let _ = writeln!(
                h,
                "<tr><td><a href=\"#{}\">{}</a></td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{cross}</td><td>{best}</td><td>{peer}</td></tr>",
                slug(&w.workload),
                esc(&w.workload),
                esc(&a.contender),
                esc(&a.baseline)
            );
        }
    }
    h.push_str("</table>\n");

    let mut current_group = "";
    for w in &report.workloads {
        if w.group != current_group {
            current_group = &w.group;
            let _ = writeln!(h, "<h2>{}</h2>", esc(&w.group));
        }
        let _ = writeln!(
            h,
            "<h3 id=\"{}\">{}</h3>\n<p class=\"sub\">{}/s, median of {} run{} of {} (+{} warm-up) per cell, ± is (max−min)/median.</p>",
            slug(&w.workload),
            esc(&w.workload),
            esc(&w.unit),
            st.repeats,
            if st.repeats == 1 { "" } else { "s" },
            fmt_dur(w.window),
            fmt_dur(w.warmup)
        );
        h.push_str("<table><tr><th>contender</th><th>role</th>");
        for t in &w.thread_counts {
            let _ = write!(h, "<th>{t} thr</th>");
        }
        let lt = latency_threads(w).unwrap_or(1);
        let _ = writeln!(h, "<th>p50 / p99 / p99.9 at {lt} thr</th></tr>");
        for c in &w.contenders {
            let _ = write!(
                h,
                "<tr class=\"{}\"><td>{}</td><td class=\"l\">{}</td>",
                role_label(c.role),
                esc(&c.name),
                role_label(c.role)
            );
            for &t in &w.thread_counts {
                match c.at(t) {
                    Some(m) => {
                        let _ = write!(
                            h,
                            "<td title=\"min {} max {}\">{} <small>±{}</small></td>",
                            human_rate(m.min_ops_per_sec),
                            human_rate(m.max_ops_per_sec),
                            human_rate(m.median_ops_per_sec),
                            esc(&spread_pct(m.spread))
                        );
                    }
                    None => h.push_str("<td>–</td>"),
                }
            }
            match c.at(lt) {
                Some(m) if m.latency.samples > 0 => {
                    let _ = write!(
                        h,
                        "<td>{} / {} / {}</td>",
                        human_ns(m.latency.p50_ns as f64),
                        human_ns(m.latency.p99_ns as f64),
                        human_ns(m.latency.p999_ns as f64)
                    );
                }
                _ => h.push_str("<td>–</td>"),
            }
            h.push_str("</tr>\n");
            if let Some(e) = &c.error {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"l err\" colspan=\"{}\">{} failed: {}</td></tr>",
                    w.thread_counts.len() + 3,
                    esc(&c.name),
                    esc(e)
                );
            }
        }
        for a in &w.analyses {
            let _ = write!(
                h,
                "<tr class=\"ratio\"><td>{} ÷ {}</td><td></td>",
                esc(&a.contender),
                esc(&a.baseline)
            );
            for &t in &w.thread_counts {
                match a
                    .versus_mutex
                    .improvement_by_threads
                    .iter()
                    .find(|r| r.threads == t)
                {
                    Some(r) => {
                        let class = if r.within_noise {
                            ""
                        } else if r.factor > 1.0 {
                            "good"
                        } else {
                            "bad"
                        };
                        let _ = write!(h, "<td class=\"{class}\">{:.2}x</td>", r.factor);
                    }
                    None => h.push_str("<td>–</td>"),
                }
            }
            h.push_str("<td></td></tr>\n");
            if !a.versus_best_peer.is_empty() {
                let _ = write!(
                    h,
                    "<tr class=\"ratio\"><td>{} ÷ best peer</td><td></td>",
                    esc(&a.contender)
                );
                for &t in &w.thread_counts {
                    match a.versus_best_peer.iter().find(|r| r.threads == t) {
                        Some(r) => {
                            let _ = write!(
                                h,
                                "<td title=\"{}\">{:.2}x</td>",
                                esc(&r.best_peer),
                                r.factor
                            );
                        }
                        None => h.push_str("<td>–</td>"),
                    }
                }
                h.push_str("<td></td></tr>\n");
            }
        }
        h.push_str("</table>\n");
        for a in &w.analyses {
            let _ = writeln!(
                h,
                "<p><b>{} vs {}</b>:</p>\n<ul class=\"rec\">",
                esc(&a.contender),
                esc(&a.baseline)
            );
            for r in &a.versus_mutex.recommendations {
                let _ = writeln!(h, "<li>{}</li>", esc(r));
            }
            h.push_str("</ul>\n");
        }
        for c in &w.contenders {
            if let Some(p) = &c.contention {
                let _ = write!(
                    h,
                    "<p><b>Contention</b> ({}, {} threads): {}",
                    esc(&c.name),
                    p.threads,
                    esc(&p.summary())
                );
                if !p.hot_spots.is_empty() {
                    h.push_str(". Sites: ");
                    let sites: Vec<String> = p
                        .hot_spots
                        .iter()
                        .map(|s| {
                            format!(
                                "<code>{}</code> {} attempts, {:.1}% failed",
                                esc(&s.site),
                                s.attempts,
                                s.failure_rate * 100.0
                            )
                        })
                        .collect();
                    h.push_str(&sites.join("; "));
                }
                h.push_str("</p>\n");
            }
        }
        h.push_str("<div class=\"plots\">\n");
        for p in &w.plots {
            let _ = writeln!(
                h,
                "<a href=\"{0}\"><img src=\"{0}\" alt=\"{1}\"></a>",
                esc(p),
                esc(&format!("{} plot", w.workload))
            );
        }
        h.push_str("</div>\n");
    }
    let _ = writeln!(
        h,
        "<p class=\"sub\">Generated by waitless-bench {} in {:.1} s. Methodology: docs/benchmarking.md in the waitless repository.</p>\n</body></html>",
        esc(&report.version),
        report.wall_time.as_secs_f64()
    );
    h
}

/// `"82 ms"`, or `"41 ms – 82 ms"` when workloads used different values.
fn window_range(report: &Report, f: impl Fn(&WorkloadReport) -> Duration) -> String {
    let v: Vec<Duration> = report.workloads.iter().map(f).collect();
    match (v.iter().min(), v.iter().max()) {
        (Some(a), Some(b)) if a != b => format!("{} – {}", fmt_dur(*a), fmt_dur(*b)),
        (Some(a), _) => fmt_dur(*a),
        _ => fmt_dur(report.settings.window),
    }
}

/// A spread as a percentage, capped for display (`>999%`).
pub fn spread_pct(spread: f64) -> String {
    if spread > 9.99 {
        ">999%".to_owned()
    } else {
        format!("{:.0}%", spread * 100.0)
    }
}

fn fmt_dur(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
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
        let c = adapted_config(&s, Duration::from_secs(100), 10, 20);
        assert_eq!(c.window, s.window);
        s.budget = Some(Duration::from_millis(2400));
        // On schedule: 10 runs took 1.2 s (10 ms overhead each), 10 left in 1.2 s.
        let c = adapted_config(&s, Duration::from_millis(1200), 10, 20);
        assert!(
            c.window > Duration::from_millis(90) && c.window < Duration::from_millis(110),
            "{c:?}"
        );
        assert!(c.warmup <= c.window / 5);
        // Runs cost more than planned: shrink, but not below half the plan.
        let c = adapted_config(&s, Duration::from_millis(1600), 10, 20);
        assert!(c.window < Duration::from_millis(90), "{c:?}");
        let c = adapted_config(&s, Duration::from_secs(60), 10, 20);
        assert_eq!(c.window, Duration::from_millis(50));
        // Far ahead of schedule: grow, but at most to twice the plan.
        let c = adapted_config(&s, Duration::from_millis(100), 10, 20);
        assert_eq!(c.window, Duration::from_millis(200));
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slug("stack/push-pop pairs"), "stack-push-pop-pairs");
        assert_eq!(slug("Map: 90% reads"), "map-90-reads");
        assert_eq!(slug("///"), "workload");
    }
}
