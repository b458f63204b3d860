//! The SVG plots of a workload: throughput (lines, or bars at one thread count) and latency.

use super::*;

pub(super) fn colors(contenders: &[ContenderReport]) -> Vec<(String, bool)> {
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
    if w.thread_counts.len() == 1 {
        return throughput_bars(w);
    }
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
        bars: false,
    }
}

/// A workload measured at one thread count: one bar per contender (numbered
/// on the axis and in the legend), on a log scale when the medians span more
/// than a factor of 20, so a slow contender's bar stays readable next to a
/// fast one's.
pub fn throughput_bars(w: &WorkloadReport) -> LineChart {
    let measured: Vec<(&ContenderReport, (String, bool))> = w
        .contenders
        .iter()
        .zip(colors(&w.contenders))
        .filter(|(c, _)| !c.measurements.is_empty())
        .collect();
    let medians: Vec<f64> = measured
        .iter()
        .flat_map(|(c, _)| c.measurements.iter().map(|m| m.median_ops_per_sec))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = medians.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = medians.iter().copied().fold(0.0, f64::max);
    let log = lo.is_finite() && hi / lo > 20.0;
    let series = measured
        .iter()
        .enumerate()
        .map(|(i, (c, (color, dashed)))| Series {
            name: format!("{} {}", i + 1, c.name),
            color: color.clone(),
            dashed: *dashed,
            points: c
                .measurements
                .iter()
                .map(|m| (i as f64, m.median_ops_per_sec))
                .collect(),
            ranges: c
                .measurements
                .iter()
                .map(|m| Some((m.min_ops_per_sec, m.max_ops_per_sec)))
                .collect(),
        })
        .collect();
    let t = w.thread_counts[0];
    LineChart {
        title: format!(
            "{} — throughput at {t} thread{}",
            w.workload,
            if t == 1 { "" } else { "s" }
        ),
        x_label: "contender".to_owned(),
        y_label: format!(
            "{}/s (median, min–max{})",
            w.unit,
            if log { ", log scale" } else { "" }
        ),
        x_ticks: (0..measured.len())
            .map(|i| (i as f64, (i + 1).to_string()))
            .collect(),
        y_scale: if log {
            YScale::Log10
        } else {
            YScale::LinearFromZero
        },
        y_format: human_rate,
        series,
        bars: true,
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
        bars: false,
    }
}
