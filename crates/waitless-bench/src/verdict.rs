//! What a report says first: the warnings that qualify every number, and a
//! headline verdict per structure (its waitless contender against its lock
//! and its best peer), written only from established differences.

use crate::analyzer::{human_rate, ratio, within_noise};
use crate::measure::Measurement;
use crate::report::{ContenderReport, Report, WorkloadReport};
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
    if within_noise(a, b) {
        format!("within noise vs {}", other.name)
    } else {
        let f = ratio(a.median_ops_per_sec, b.median_ops_per_sec);
        let word = if f >= 1.0 { "faster" } else { "slower" };
        format!("{f:.2}x vs {} ({word})", other.name)
    }
}

/// One line per group: its first workload's first waitless contender
/// against the lock and the fastest peer at one thread count, e.g.
/// `queue: waitless WaitFreeQueue 3.1x vs Mutex<VecDeque> (faster), within
/// noise vs crossbeam ArrayQueue — queue/pairs, 2 threads, 41.2M/s`.
pub fn headline(report: &Report) -> Vec<String> {
    let cores = report.machine.logical_cores;
    let mut groups: Vec<&str> = Vec::new();
    for w in &report.workloads {
        if !groups.contains(&w.group.as_str()) {
            groups.push(&w.group);
        }
    }
    groups
        .into_iter()
        .filter_map(|g| {
            let w = report.workloads.iter().find(|w| w.group == g)?;
            group_line(w, cores)
        })
        .collect()
}

fn group_line(w: &WorkloadReport, cores: usize) -> Option<String> {
    let has = |c: &&ContenderReport, role| c.role == role && !c.measurements.is_empty();
    let mine = w.contenders.iter().find(|c| has(c, Role::Waitless))?;
    let lock = w.contenders.iter().find(|c| has(c, Role::MutexBaseline));
    let peers: Vec<&ContenderReport> = w.contenders.iter().filter(|c| has(c, Role::Peer)).collect();
    let against = lock.or_else(|| peers.first().copied())?;
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
        assert!(line.contains("vs lock (faster)"), "{line}");
        assert!(line.contains("within noise vs peer"), "{line}");
        assert!(line.contains("2 threads"), "{line}");
        // On one core the headline reads the 1-thread point: within noise.
        let line = group_line(&w, 1).unwrap();
        assert!(line.contains("within noise vs lock"), "{line}");
    }
}
