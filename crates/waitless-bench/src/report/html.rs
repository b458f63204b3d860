//! The report page, `index.html`.

use super::*;

pub(super) fn esc(s: &str) -> String {
    svg::xml_escape(s)
}

/// The warnings and the headline verdict, first on the page.
pub(super) fn top_of_page(report: &Report) -> String {
    let mut h = String::new();
    for w in crate::verdict::warnings(report) {
        let _ = writeln!(h, "<p class=\"err\">Warning: {}.</p>", esc(&w));
    }
    let lines = crate::verdict::headline(report);
    if !lines.is_empty() {
        h.push_str("<h2>Headline</h2>\n<p class=\"sub\">Each structure's waitless contender against its lock and its best peer, at the largest thread count within the hardware threads, then its worst established loss in the group, if any; \"within noise\" where the runs do not establish a difference.</p>\n<ul class=\"rec\">\n");
        for l in lines {
            let _ = writeln!(h, "<li>{}</li>", esc(&l));
        }
        h.push_str("</ul>\n");
    }
    h
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
<p class="sub">Lock-free versus locks, measured on this machine. Raw numbers: <a href="results.json">results.json</a>. What is proven and was checked on this machine: <a href="proofs-queue.txt">queue proofs</a> (<code>waitless-bench prove queue</code>), <a href="orderings-channel.txt">channel memory orderings</a> (<code>waitless-bench analyze orderings</code>).</p>
{}<h2>Machine and settings</h2>
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
        top_of_page(report),
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
    let _ = write!(h, "<h2>Crossover summary</h2>\n<p class=\"sub\">Ratios are waitless ÷ contender, medians measured in the same run (above 1: waitless is faster); \"paired\" is the median of the per-round ratios (run k of one side ÷ run k of the other, made next to each other) with its sign-test bound (at least {:.0}% confidence from 5 rounds, 75% with 3), prefixed with ~ when it does not establish a difference (the bound contains 1, fewer than 3 rounds, or a disturbed run). The crossover is the smallest thread count from which waitless beats the lock at that count and every larger one measured. \"Within noise\" replaces a ratio the runs do not establish: the two sides' min–max ranges overlap, a side's spread exceeds {:.0}%, or a side was disturbed.</p>\n<table><tr><th>workload</th><th>waitless contender</th><th>vs lock</th><th>crossover</th><th>best vs lock</th><th>vs best peer (largest count)</th></tr>\n", PAIRED_CONFIDENCE * 100.0, crate::analyzer::NOISY_SPREAD * 100.0);
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
                None if v.improvement_by_threads.iter().all(|r| r.within_noise) => {
                    "within noise".to_owned()
                }
                None => "<span class=\"bad\">none</span>".to_owned(),
            };
            let best = v
                .improvement_by_threads
                .iter()
                .filter(|r| !r.within_noise)
                .max_by(|x, y| x.factor.total_cmp(&y.factor))
                .map_or("within noise".to_owned(), |r| {
                    format!("{:.2}x at {}", r.factor, r.threads)
                });
            let peer = a.versus_best_peer.last().map_or("-".to_owned(), |p| {
                format!(
                    "{} vs {} at {}{}",
                    ratio_cell(p.factor, p.within_noise),
                    esc(&p.best_peer),
                    p.threads,
                    p.paired
                        .map_or(String::new(), |q| format!("; paired {}", q.cell()))
                )
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
                            "<td title=\"min {} max {}\">{} <small>±{}</small>{}</td>",
                            human_rate(m.min_ops_per_sec),
                            human_rate(m.max_ops_per_sec),
                            human_rate(m.median_ops_per_sec),
                            esc(&spread_pct(m.spread)),
                            if m.is_disturbed() {
                                " <span class=\"err\" title=\"disturbed: the threads did not get the CPU they needed\">disturbed</span>"
                            } else {
                                ""
                            }
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
                        let _ = write!(
                            h,
                            "<td class=\"{class}\">{}</td>",
                            ratio_cell(r.factor, r.within_noise)
                        );
                    }
                    None => h.push_str("<td>–</td>"),
                }
            }
            h.push_str("<td></td></tr>\n");
            if !a.paired_versus_mutex.is_empty() {
                paired_row(
                    &mut h,
                    &format!("{} ÷ {}, paired", a.contender, a.baseline),
                    &w.thread_counts,
                    |t| a.paired_lock_at(t),
                );
            }
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
                                "<td title=\"{}\">{}</td>",
                                esc(&r.best_peer),
                                ratio_cell(r.factor, r.within_noise)
                            );
                        }
                        None => h.push_str("<td>–</td>"),
                    }
                }
                h.push_str("<td></td></tr>\n");
                if a.versus_best_peer.iter().any(|r| r.paired.is_some()) {
                    paired_row(
                        &mut h,
                        &format!("{} ÷ best peer, paired", a.contender),
                        &w.thread_counts,
                        |t| a.paired_peer_at(t),
                    );
                }
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
            if let Some(p) = c.contention.as_ref().filter(|p| p.has_findings()) {
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
pub(super) fn window_range(report: &Report, f: impl Fn(&WorkloadReport) -> Duration) -> String {
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

pub(super) fn fmt_dur(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// One table row of paired estimates, a cell per thread count (coloured
/// only where established).
fn paired_row(
    h: &mut String,
    label: &str,
    counts: &[usize],
    at: impl Fn(usize) -> Option<PairedRatio>,
) {
    let _ = write!(h, "<tr class=\"ratio\"><td>{}</td><td></td>", esc(label));
    for &t in counts {
        match at(t) {
            Some(p) => {
                let class = if p.within_noise {
                    ""
                } else if p.median > 1.0 {
                    "good"
                } else {
                    "bad"
                };
                let _ = write!(
                    h,
                    "<td class=\"{class}\" title=\"{} rounds, {} won, {:.0}% bound\">{}</td>",
                    p.rounds,
                    p.wins,
                    p.confidence * 100.0,
                    p.cell()
                );
            }
            None => h.push_str("<td>–</td>"),
        }
    }
    h.push_str("<td></td></tr>\n");
}
