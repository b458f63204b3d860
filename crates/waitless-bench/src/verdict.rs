//! What a report says first: the warnings that qualify every number, and a
//! headline verdict per structure (its waitless contender against its lock
//! and its best peer), written only from established differences.

use crate::analyzer::{human_rate, ratio, within_noise};
use crate::measure::Measurement;
use crate::report::{ContenderReport, PairedRatio, Report, WorkloadReport};
use crate::workloads::Role;

/// Warnings about the whole run: oversubscribed thread counts, disturbed
/// measurements, a debug build.
pub fn warnings(report: &Report) -> Vec<String> {
    let cores = report.machine.logical_cores;
    let mut w = Vec::new();
    if report.machine.profile != "release" {
        w.push(
            "this binary was not built with --release: the numbers measure debug code".to_owned(),
        );
    }
    let mut over: Vec<usize> = report
        .workloads
        .iter()
        .flat_map(|w| w.thread_counts.iter().copied())
        .filter(|&t| t > cores)
        .collect();
    over.sort_unstable();
    over.dedup();
    if !over.is_empty() {
        w.push(format!(
            "thread count{} {} exceed{} this machine's {cores} hardware thread{}: those results are real but measure the scheduler (preemption), not parallel scaling",
            if over.len() == 1 { "" } else { "s" },
            list(&over),
            if over.len() == 1 { "s" } else { "" },
            if cores == 1 { "" } else { "s" }
        ));
    }
    let all: Vec<&Measurement> = report
        .workloads
        .iter()
        .flat_map(|w| &w.contenders)
        .flat_map(|c| &c.measurements)
        .collect();
    let disturbed = all.iter().filter(|m| m.is_disturbed()).count();
    if disturbed > 0 {
        w.push(format!(
            "{disturbed} of {} measurements were disturbed (marked !): their threads did not get the CPU they needed, even after retries, because other processes ran; no verdict is drawn from them",
            all.len()
        ));
    }
    w
}

/// Remarks said once instead of on every workload: contention profiles
/// that had nothing to report (no CAS counters compiled in, no hardware
/// counters exposed), or were not run for that reason.
pub fn notes(report: &Report) -> Vec<String> {
    let m = &report.machine;
    let why = match (m.contention_counters, m.hardware_counters) {
        (false, false) => "the CAS counters are not compiled in (build with --features contention) and this machine exposes no hardware counters",
        (true, false) => "they report no CAS site and this machine exposes no hardware counters",
        _ => "they report no CAS site",
    };
    let profiles: Vec<&ContenderReport> = report
        .workloads
        .iter()
        .flat_map(|w| &w.contenders)
        .filter(|c| c.contention.is_some())
        .collect();
    let empty = profiles
        .iter()
        .filter(|c| c.contention.as_ref().is_some_and(|p| !p.has_findings()))
        .count();
    let mut n = Vec::new();
    if profiles.is_empty() && !m.contention_counters && !m.hardware_counters {
        n.push(format!("no contention profiles: {why}"));
    } else if empty == profiles.len() && empty > 0 {
        n.push(format!(
            "the contention profiles have nothing to show: {why}"
        ));
    } else if empty > 0 {
        n.push(format!(
            "{empty} of {} contention profiles have nothing to show and are left out: {why}",
            profiles.len()
        ));
    }
    n
}

fn list(v: &[usize]) -> String {
    v.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The thread count a group's headline reads: the largest one measured by
/// both sides that does not exceed the hardware threads (else the smallest).
fn headline_threads(a: &ContenderReport, b: &ContenderReport, cores: usize) -> Option<usize> {
    let both: Vec<usize> = a
        .measurements
        .iter()
        .map(|m| m.threads)
        .filter(|&t| b.at(t).is_some())
        .collect();
    both.iter()
        .copied()
        .filter(|&t| t <= cores)
        .max()
        .or_else(|| both.iter().copied().min())
}

fn versus(w: &ContenderReport, other: &ContenderReport, t: usize) -> String {
    let (Some(a), Some(b)) = (w.at(t), other.at(t)) else {
        return format!("not measured vs {}", other.name);
    };
    // The runs paired round by round, when both sides have them all.
    let paired = PairedRatio::of(a, b).map(|p| format!("paired {}", p.cell()));
    if within_noise(a, b) {
        match paired {
            Some(p) => format!("within noise vs {} ({p})", other.name),
            None => format!("within noise vs {}", other.name),
        }
    } else {
        let f = ratio(a.median_ops_per_sec, b.median_ops_per_sec);
        let word = if f >= 1.0 { "faster" } else { "slower" };
        match paired {
            Some(p) => format!("{f:.2}x vs {} ({word}; {p})", other.name),
            None => format!("{f:.2}x vs {} ({word})", other.name),
        }
    }
}

/// Groups that are not structures of their own: `counter` demonstrates the
/// harness and stays out of the headline.
const NOT_IN_HEADLINE: &[&str] = &["counter"];

/// The reclamation schemes share one headline line, so the headline stays
/// at one line per structure (at most 8 with every group of the library).
const RECLAMATION: &[&str] = &["epoch", "hazard"];

/// One line per structure: its group's first workload's first waitless
/// contender against the lock and the fastest peer at one thread count, e.g.
/// `queue: waitless WaitFreeQueue 3.1x vs Mutex<VecDeque> (faster), within
/// noise vs crossbeam ArrayQueue — queue/pairs, 2 threads, 41.2M/s`, then,
/// when the structure loses clearly somewhere else in its group (at a thread
/// count within the hardware threads), its worst established ratio: `;
/// worst established: 0.29x vs RwLock<HashMap> on map/grow-from-empty, 1
/// thread`. The
/// `counter` demonstration is left out and the `epoch` and `hazard` lines
/// are joined into one `reclamation` line.
pub fn headline(report: &Report) -> Vec<String> {
    headline_of(&report.workloads, report.machine.logical_cores)
}

fn headline_of(workloads: &[WorkloadReport], cores: usize) -> Vec<String> {
    let mut groups: Vec<&str> = Vec::new();
    for w in workloads {
        if !groups.contains(&w.group.as_str()) && !NOT_IN_HEADLINE.contains(&w.group.as_str()) {
            groups.push(&w.group);
        }
    }
    let line_of = |g: &str| {
        let in_group: Vec<&WorkloadReport> = workloads.iter().filter(|w| w.group == g).collect();
        let first = in_group.first()?;
        let line = group_line(first, cores)?;
        let Some(l) = worst_loss(&in_group, cores) else {
            return Some(line);
        };
        let ratio = format!("{:.2}x vs {}", l.factor, l.against);
        let already_shown = l.workload == first.workload
            && headline_threads_of(first, cores) == Some(l.threads)
            && line.contains(&ratio);
        if already_shown {
            return Some(line);
        }
        // Name the contender when it is not the one the line is about.
        let who = match headline_pair(first) {
            Some((mine, _)) if mine.name == l.contender => String::new(),
            _ => format!("{} ", l.contender),
        };
        Some(format!(
            "{line}; worst established: {who}{ratio} on {}, {} thread{}",
            l.workload,
            l.threads,
            if l.threads == 1 { "" } else { "s" }
        ))
    };
    let mut lines = Vec::new();
    let mut reclamation: Vec<String> = Vec::new();
    let mut reclamation_at = None;
    for g in groups {
        let Some(line) = line_of(g) else { continue };
        if RECLAMATION.contains(&g) {
            reclamation_at.get_or_insert(lines.len());
            reclamation.push(line);
        } else {
            lines.push(line);
        }
    }
    if let Some(at) = reclamation_at {
        lines.insert(at, format!("reclamation — {}", reclamation.join("; ")));
    }
    lines
}

/// An established ratio below 1: where a waitless contender loses.
#[derive(Debug, Clone, PartialEq)]
struct Loss {
    workload: String,
    contender: String,
    threads: usize,
    against: String,
    factor: f64,
}

/// The lowest established ratio below 1 of each workload's first waitless
/// contender against any lock or peer of that workload, over `workloads`
/// (one group's) at thread counts within the hardware threads: a headline
/// that reads one workload at one thread count must not hide where the
/// structure clearly loses.
fn worst_loss(workloads: &[&WorkloadReport], cores: usize) -> Option<Loss> {
    let mut worst: Option<Loss> = None;
    for w in workloads {
        let Some((mine, _)) = headline_pair(w) else {
            continue;
        };
        let others = w
            .contenders
            .iter()
            .filter(|c| matches!(c.role, Role::MutexBaseline | Role::Peer));
        for other in others {
            for m in mine.measurements.iter().filter(|m| m.threads <= cores) {
                let Some(o) = other.at(m.threads) else {
                    continue;
                };
                let factor = ratio(m.median_ops_per_sec, o.median_ops_per_sec);
                if within_noise(m, o) || !factor.is_finite() || factor >= 1.0 {
                    continue;
                }
                if worst.as_ref().map_or(true, |l| factor < l.factor) {
                    worst = Some(Loss {
                        workload: w.workload.clone(),
                        contender: mine.name.clone(),
                        threads: m.threads,
                        against: other.name.clone(),
                        factor,
                    });
                }
            }
        }
    }
    worst
}

/// The thread count [`group_line`] reads for `w`.
fn headline_threads_of(w: &WorkloadReport, cores: usize) -> Option<usize> {
    let (mine, against) = headline_pair(w)?;
    headline_threads(mine, against, cores)
}

/// `w`'s first waitless contender and what its headline compares it with
/// first (the lock, else the first peer).
fn headline_pair(w: &WorkloadReport) -> Option<(&ContenderReport, &ContenderReport)> {
    let has = |c: &&ContenderReport, role| c.role == role && !c.measurements.is_empty();
    let mine = w.contenders.iter().find(|c| has(c, Role::Waitless))?;
    let against = w
        .contenders
        .iter()
        .find(|c| has(c, Role::MutexBaseline))
        .or_else(|| w.contenders.iter().find(|c| has(c, Role::Peer)))?;
    Some((mine, against))
}

fn group_line(w: &WorkloadReport, cores: usize) -> Option<String> {
    let has = |c: &&ContenderReport, role| c.role == role && !c.measurements.is_empty();
    let (mine, against) = headline_pair(w)?;
    let lock = w.contenders.iter().find(|c| has(c, Role::MutexBaseline));
    let peers: Vec<&ContenderReport> = w.contenders.iter().filter(|c| has(c, Role::Peer)).collect();
    let t = headline_threads(mine, against, cores)?;
    let mut parts = Vec::new();
    if let Some(l) = lock {
        parts.push(versus(mine, l, t));
    }
    let best_peer = peers.iter().filter(|p| p.at(t).is_some()).max_by(|a, b| {
        let rate = |c: &&&ContenderReport| c.at(t).map_or(0.0, |m| m.median_ops_per_sec);
        rate(a).total_cmp(&rate(b))
    });
    if let Some(p) = best_peer {
        parts.push(versus(mine, p, t));
    }
    let rate = mine.at(t).map_or(0.0, |m| m.median_ops_per_sec);
    Some(format!(
        "{}: {} {} — {}, {t} thread{}, {}/s",
        w.group,
        mine.name,
        parts.join(", "),
        w.workload,
        if t == 1 { "" } else { "s" },
        human_rate(rate)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Percentiles, RunResult};
    use std::time::Duration;

    fn meas(threads: usize, rates: &[f64]) -> Measurement {
        Measurement::from_runs(
            rates
                .iter()
                .map(|&v| RunResult {
                    threads,
                    ops: v as u64,
                    elapsed: Duration::from_secs(1),
                    ops_per_sec: v,
                    latency: Percentiles::default(),
                    cpu: None,
                })
                .collect(),
        )
    }

    fn contender(name: &str, role: Role, m: Vec<Measurement>) -> ContenderReport {
        ContenderReport {
            name: name.to_owned(),
            role,
            measurements: m,
            contention: None,
            error: None,
        }
    }

    #[test]
    fn headline_says_faster_only_when_established_and_stays_within_the_cores() {
        let w = WorkloadReport {
            group: "stack".to_owned(),
            workload: "stack/x".to_owned(),
            unit: "ops".to_owned(),
            thread_counts: vec![1, 2, 4],
            window: Duration::from_millis(1),
            warmup: Duration::ZERO,
            contenders: vec![
                contender(
                    "wl",
                    Role::Waitless,
                    vec![
                        meas(1, &[10.0, 11.0]),
                        meas(2, &[40.0, 41.0]),
                        meas(4, &[1.0]),
                    ],
                ),
                contender(
                    "lock",
                    Role::MutexBaseline,
                    vec![meas(1, &[10.5]), meas(2, &[20.0, 20.5]), meas(4, &[9.0])],
                ),
                contender(
                    "peer",
                    Role::Peer,
                    vec![meas(1, &[1.0]), meas(2, &[35.0, 45.0]), meas(4, &[9.0])],
                ),
            ],
            analyses: Vec::new(),
            plots: Vec::new(),
        };
        let line = group_line(&w, 2).unwrap();
        assert!(line.starts_with("stack: wl "), "{line}");
        assert!(line.contains("vs lock (faster"), "{line}");
        assert!(line.contains("within noise vs peer"), "{line}");
        assert!(line.contains("2 threads"), "{line}");
        // On one core the headline reads the 1-thread point: within noise.
        let line = group_line(&w, 1).unwrap();
        assert!(line.contains("within noise vs lock"), "{line}");
    }

    #[test]
    fn headline_has_one_line_per_structure() {
        let mk = |group: &str| WorkloadReport {
            group: group.to_owned(),
            workload: format!("{group}/x"),
            unit: "ops".to_owned(),
            thread_counts: vec![1],
            window: Duration::from_millis(1),
            warmup: Duration::ZERO,
            contenders: vec![
                contender("wl", Role::Waitless, vec![meas(1, &[10.0])]),
                contender("lock", Role::MutexBaseline, vec![meas(1, &[1.0])]),
            ],
            analyses: Vec::new(),
            plots: Vec::new(),
        };
        let groups = [
            "stack", "epoch", "hazard", "map", "queue", "channel", "rcu", "counter", "btree",
            "numa",
        ];
        let workloads: Vec<WorkloadReport> = groups.iter().map(|g| mk(g)).collect();
        let lines = headline_of(&workloads, 2);
        assert_eq!(lines.len(), 8, "{lines:#?}");
        assert!(lines[0].starts_with("stack: "), "{lines:#?}");
        assert!(lines[1].starts_with("reclamation — epoch: "), "{lines:#?}");
        assert!(lines[1].contains("; hazard: "), "{lines:#?}");
        assert!(
            lines.iter().all(|l| !l.starts_with("counter")),
            "{lines:#?}"
        );
    }

    #[test]
    fn headline_names_the_worst_established_loss_once() {
        let contenders = vec![
            contender(
                "wl",
                Role::Waitless,
                vec![meas(1, &[10.0, 10.5]), meas(2, &[40.0, 41.0])],
            ),
            contender(
                "lock",
                Role::MutexBaseline,
                vec![meas(1, &[40.0, 41.0]), meas(2, &[20.0, 20.5])],
            ),
        ];
        let w = WorkloadReport {
            group: "stack".to_owned(),
            workload: "stack/x".to_owned(),
            unit: "ops".to_owned(),
            thread_counts: vec![1, 2],
            window: Duration::from_millis(1),
            warmup: Duration::ZERO,
            analyses: crate::report::analyze_workload(&contenders),
            contenders,
            plots: Vec::new(),
        };
        // The headline reads 2 threads (a win); the loss at 1 thread is
        // named after it.
        let lines = headline_of(std::slice::from_ref(&w), 2);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("2.00x vs lock (faster"), "{lines:?}");
        assert!(
            lines[0].ends_with("; worst established: 0.25x vs lock on stack/x, 1 thread"),
            "{lines:?}"
        );
        // On one core the headline reads that loss itself: said once.
        let lines = headline_of(std::slice::from_ref(&w), 1);
        assert!(lines[0].contains("0.25x vs lock (slower"), "{lines:?}");
        assert!(!lines[0].contains("worst established"), "{lines:?}");
    }
}
