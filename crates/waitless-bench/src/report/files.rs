//! Writing the report folder: `results.json`, the plots, `index.html`.

use super::*;

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
    remove_old_plots(dir)?;
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

/// The plot files a report writes end with one of these.
pub(super) const PLOT_SUFFIXES: [&str; 2] = [".throughput.svg", ".latency.svg"];

/// Removes the plots an earlier report left in `dir` (files named like the
/// ones [`write_report`] writes; nothing else).
pub(super) fn remove_old_plots(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if PLOT_SUFFIXES.iter().any(|s| name.ends_with(s)) && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
