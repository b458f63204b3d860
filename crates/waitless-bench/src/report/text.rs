//! The text table printed at the end of a run, with its `->` verdict lines.

use super::*;

/// The table printed at the end of a run.
pub fn text_table(report: &Report) -> String {
    let mut s = String::new();
    for w in &report.workloads {
        let _ = writeln!(
            s,
            "\n{} ({}/s, median of {} runs of {} ms; ± = (max-min)/median; paired = median of per-round ratios [{:.0} % bound], ~ = within noise)",
            w.workload,
            w.unit,
            report.settings.repeats,
            w.window.as_millis(),
            PAIRED_CONFIDENCE * 100.0
        );
        let name_w = w
            .contenders
            .iter()
            .map(|c| c.name.chars().count())
            .chain(w.analyses.iter().map(|a| a.contender.chars().count() + 19))
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
                        "{} ±{}{}",
                        human_rate(m.median_ops_per_sec),
                        spread_pct(m.spread),
                        if m.is_disturbed() { "!" } else { "" }
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
                    .map_or("-".to_owned(), |r| ratio_cell(r.factor, r.within_noise));
                let _ = write!(s, " {cell:>13}");
            }
            s.push('\n');
            if !a.paired_versus_mutex.is_empty() {
                paired_row(
                    &mut s,
                    &format!("{} paired vs lock", a.contender),
                    name_w,
                    &w.thread_counts,
                    |t| a.paired_lock_at(t),
                );
            }
            if !a.versus_best_peer.is_empty() {
                let label = format!("{} vs peer", a.contender);
                let _ = write!(s, "  {label:<name_w$}  {:<8}", "");
                for &t in &w.thread_counts {
                    let cell = a
                        .versus_best_peer
                        .iter()
                        .find(|r| r.threads == t)
                        .map_or("-".to_owned(), |r| ratio_cell(r.factor, r.within_noise));
                    let _ = write!(s, " {cell:>13}");
                }
                s.push('\n');
                if a.versus_best_peer.iter().any(|r| r.paired.is_some()) {
                    paired_row(
                        &mut s,
                        &format!("{} paired vs peer", a.contender),
                        name_w,
                        &w.thread_counts,
                        |t| a.paired_peer_at(t),
                    );
                }
            }
            let _ = writeln!(s, "  -> {}: {}", a.contender, arrow_line(a));
        }
        for c in &w.contenders {
            if let Some(p) = c.contention.as_ref().filter(|p| p.has_findings()) {
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
    let warnings = crate::verdict::warnings(report);
    if !warnings.is_empty() {
        s.push_str("\nWarnings:\n");
        for w in &warnings {
            let _ = writeln!(s, "  ! {w}");
        }
    }
    for n in crate::verdict::notes(report) {
        let _ = writeln!(s, "\nNote: {n}");
    }
    let headline = crate::verdict::headline(report);
    if !headline.is_empty() {
        s.push_str("\nHeadline (waitless against its lock and its best peer, then its worst established loss in the group; ratios of medians, \"within noise\" where the runs do not establish a difference; \"paired\": the median of the per-round ratios and its sign-test bound, ~ where the bound contains 1 or a run was disturbed):\n");
        for l in &headline {
            let _ = writeln!(s, "  {l}");
        }
    }
    s
}

/// One row of paired estimates, a cell per thread count.
fn paired_row(
    s: &mut String,
    label: &str,
    name_w: usize,
    counts: &[usize],
    at: impl Fn(usize) -> Option<PairedRatio>,
) {
    let _ = write!(s, "  {label:<name_w$}  {:<8}", "");
    for &t in counts {
        let cell = at(t).map_or("-".to_owned(), |p| p.cell());
        let _ = write!(s, " {cell:>13}");
    }
    s.push('\n');
}

/// A ratio as a table cell: `1.85x`, or `within noise`.
pub(super) fn ratio_cell(factor: f64, noise: bool) -> String {
    if noise {
        "within noise".to_owned()
    } else {
        format!("{factor:.2}x")
    }
}

/// The verdict after `->` in the terminal: the crossover and the best ratio
/// against the lock, only from established ratios.
pub fn arrow_line(a: &WorkloadAnalysis) -> String {
    let v = &a.versus_mutex;
    let established = v
        .improvement_by_threads
        .iter()
        .filter(|r| !r.within_noise)
        .max_by(|x, y| x.factor.total_cmp(&y.factor));
    match (v.crossover_thread_count, established) {
        (_, None) => format!("within noise vs {} at every thread count", a.baseline),
        (Some(t), Some(b)) => format!(
            "crossover at {t} thread{}; best {:.2}x vs {} at {}",
            if t == 1 { "" } else { "s" },
            b.factor,
            a.baseline,
            b.threads
        ),
        (None, Some(b)) => format!(
            "no crossover; best established {:.2}x vs {} at {}",
            b.factor, a.baseline, b.threads
        ),
    }
}
