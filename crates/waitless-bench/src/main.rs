//! `waitless-bench`: the comparison report.
//!
//! Runs every registered workload (each waitless structure against its lock
//! baseline and its crates.io peers) at several thread counts, prints a
//! table and writes a report folder. `waitless-bench --help` lists the flags.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use waitless_bench::report::{self, Progress, Settings};
use waitless_bench::workloads::{self, Entry, Role};

const HELP: &str = "\
waitless-bench — measure when lock-free beats a lock, on this machine

USAGE:
    cargo run --release -p waitless-bench -- [OPTIONS]

Runs every workload (each waitless structure, its Mutex/RwLock baseline and
its crates.io peers) at each thread count, prints a table of throughputs and
ratios, and writes a report folder: results.json, one throughput and one
latency SVG per workload, and index.html.

OPTIONS:
    --group G[,G...]       only these groups (stack, map, queue, channel, rcu, counter…)
    --workload W[,W...]    only these workloads (full name, e.g. counter/increment)
    --threads N[,N...]     thread counts (default 1,2,4,8; workloads with fixed
                           counts, e.g. SPSC at 2, keep theirs)
    --duration D           measurement window of each run (e.g. 200ms, 1s);
                           default: computed so the whole run fits the budget
    --budget D             target wall time of the whole run (default 120s; 15s with --quick)
    --warmup D             warm-up before each window (default a tenth of the window,
                           at most 100ms; at most a fifth of the window)
    --repeats N            runs per measurement, median reported (default 3)
    --out DIR              report folder (default waitless-report)
    --quick                a 15-second run (same workloads, shorter windows)
    --no-profile           skip the contention-profiled run of each waitless contender
    --list                 list groups, workloads and contenders, then exit
    -h, --help             this text

Durations: 250ms, 2s, 1.5s, 500us, 1m; a bare number means seconds.
Methodology and how to read the report: docs/benchmarking.md.
";

#[derive(Debug)]
struct Options {
    groups: Vec<String>,
    workloads: Vec<String>,
    threads: Vec<usize>,
    duration: Option<Duration>,
    budget: Option<Duration>,
    warmup: Option<Duration>,
    repeats: usize,
    out: PathBuf,
    quick: bool,
    profile: bool,
    list: bool,
}

enum Parsed {
    Run(Options),
    Help,
}

fn parse_duration(flag: &str, s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us").or_else(|| t.strip_suffix("µs")) {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix("ns") {
        (n, 1e-9)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: `{s}` is not a duration (try 200ms, 2s, 1m)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!(
            "{flag}: `{s}` is not a duration (try 200ms, 2s, 1m)"
        ));
    }
    let secs = v * scale;
    if secs > 24.0 * 3600.0 {
        return Err(format!("{flag}: `{s}` is longer than a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn positive_duration(flag: &str, s: &str) -> Result<Duration, String> {
    let d = parse_duration(flag, s)?;
    if d.is_zero() {
        return Err(format!("{flag}: the duration must be positive, got `{s}`"));
    }
    Ok(d)
}

fn parse_list(flag: &str, s: &str) -> Result<Vec<String>, String> {
    let v: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect();
    if v.is_empty() {
        return Err(format!(
            "{flag}: expected a comma-separated list, got `{s}`"
        ));
    }
    Ok(v)
}

fn parse_threads(s: &str) -> Result<Vec<usize>, String> {
    let mut v = Vec::new();
    for item in parse_list("--threads", s)? {
        let n: usize = item
            .parse()
            .map_err(|_| format!("--threads: `{item}` is not a thread count"))?;
        if n == 0 {
            return Err("--threads: a thread count must be at least 1".to_owned());
        }
        if n > 1024 {
            return Err(format!("--threads: {n} threads is more than 1024"));
        }
        if !v.contains(&n) {
            v.push(n);
        }
    }
    v.sort_unstable();
    Ok(v)
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut o = Options {
        groups: Vec::new(),
        workloads: Vec::new(),
        threads: vec![1, 2, 4, 8],
        duration: None,
        budget: None,
        warmup: None,
        repeats: 3,
        out: PathBuf::from("waitless-report"),
        quick: false,
        profile: true,
        list: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) => Ok(v),
                None => Err(format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--group" | "--groups" => o.groups.extend(parse_list("--group", &value("--group")?)?),
            "--workload" | "--workloads" => o
                .workloads
                .extend(parse_list("--workload", &value("--workload")?)?),
            "--threads" => o.threads = parse_threads(&value("--threads")?)?,
            "--duration" => {
                o.duration = Some(positive_duration("--duration", &value("--duration")?)?)
            }
            "--budget" => o.budget = Some(positive_duration("--budget", &value("--budget")?)?),
            "--warmup" => o.warmup = Some(parse_duration("--warmup", &value("--warmup")?)?),
            "--repeats" => {
                let v = value("--repeats")?;
                o.repeats = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&n: &usize| (1..=1000).contains(&n))
                    .ok_or_else(|| format!("--repeats: `{v}` is not a count between 1 and 1000"))?;
            }
            "--out" => {
                let v = value("--out")?;
                if v.is_empty() {
                    return Err("--out: the folder name is empty".to_owned());
                }
                o.out = PathBuf::from(v);
            }
            "--quick" => o.quick = true,
            "--no-profile" => o.profile = false,
            "--list" => o.list = true,
            other if inline.is_some() => {
                return Err(format!("unknown option `{other}`"));
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Parsed::Run(o))
}

fn select(entries: Vec<Entry>, o: &Options) -> Result<Vec<Entry>, String> {
    let mut groups: Vec<&str> = entries.iter().map(|e| e.group).collect();
    groups.dedup();
    groups.sort_unstable();
    groups.dedup();
    for g in &o.groups {
        if !groups.contains(&g.as_str()) {
            return Err(format!(
                "unknown group `{g}`; known groups: {}",
                if groups.is_empty() {
                    "(none)".to_owned()
                } else {
                    groups.join(", ")
                }
            ));
        }
    }
    let mut names: Vec<&str> = entries.iter().map(|e| e.workload).collect();
    names.sort_unstable();
    names.dedup();
    for w in &o.workloads {
        if !names.iter().any(|n| *n == w || report::slug(n) == *w) {
            return Err(format!(
                "unknown workload `{w}`; known workloads: {} (see --list)",
                if names.is_empty() {
                    "(none)".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
    }
    let chosen: Vec<Entry> = entries
        .into_iter()
        .filter(|e| o.groups.is_empty() || o.groups.iter().any(|g| g == e.group))
        .filter(|e| {
            o.workloads.is_empty()
                || o.workloads
                    .iter()
                    .any(|w| w == e.workload || *w == report::slug(e.workload))
        })
        .collect();
    if chosen.is_empty() {
        return Err("no workload matches the --group/--workload filters together".to_owned());
    }
    Ok(chosen)
}

fn list(entries: &[Entry]) {
    let plan = report::plan(entries, &[]);
    let mut group = "";
    for w in &plan {
        if w.group != group {
            group = w.group;
            println!("{group}");
        }
        println!("  {}  ({})", w.workload, w.unit);
        for c in &w.contenders {
            let role = match c.entry.role {
                Role::Waitless => "waitless",
                Role::MutexBaseline => "lock baseline",
                Role::Peer => "peer",
            };
            match c.entry.fixed_threads {
                Some(f) => println!("    {:<32} {role}, threads {f:?}", c.entry.contender),
                None => println!("    {:<32} {role}", c.entry.contender),
            }
        }
    }
}

/// Draws progress on stderr: a bar redrawn in place on a terminal, one line
/// per run otherwise.
struct ProgressView {
    tty: bool,
    start: Instant,
    est_run: Duration,
    last_len: usize,
}

impl ProgressView {
    fn show(&mut self, p: Progress<'_>) {
        let what = format!(
            "{} · {} · {} thr{}",
            p.workload,
            p.contender,
            p.threads,
            if p.profiling {
                " (contention profile)"
            } else {
                ""
            }
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let width = 24;
            let filled = (p.done * width).checked_div(p.total).unwrap_or(width);
            let left = p.total.saturating_sub(p.done);
            let eta = if p.done > 0 {
                self.start.elapsed().mul_f64(left as f64 / p.done as f64)
            } else {
                self.est_run * left as u32
            };
            let line = format!(
                "[{}{}] {:>4}/{:<4} ETA {:>4}s  {}",
                "#".repeat(filled),
                "·".repeat(width - filled),
                p.done + 1,
                p.total,
                eta.as_secs(),
                what
            );
            // Stay on one line of a narrow terminal ($COLUMNS when exported).
            let cols = std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(100)
                .max(40);
            let line: String = line.chars().take(cols - 1).collect();
            let pad = self.last_len.saturating_sub(line.chars().count());
            let _ = write!(err, "\r{line}{}", " ".repeat(pad));
            self.last_len = line.chars().count();
            let _ = err.flush();
        } else {
            let _ = writeln!(err, "[{}/{}] {what}", p.done + 1, p.total);
        }
    }

    fn finish(&mut self) {
        if self.tty {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(self.last_len));
        }
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("waitless-bench: error: {msg}");
    eprintln!("(waitless-bench --help lists the options)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // A closed stdout (`waitless-bench --list | head`) should end the
    // program quietly, as for any Unix filter, not panic in `println!`.
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE disposition before any thread is
    // spawned; `signal` with SIG_DFL installs no handler code of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(o)) => o,
        Err(e) => return fail(&e),
    };
    let entries = match select(workloads::all(), &o) {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    if o.list {
        list(&entries);
        return ExitCode::SUCCESS;
    }
    if let Err(e) = report::ensure_writable(&o.out) {
        return fail(&format!(
            "cannot write the report folder `{}`: {e}",
            o.out.display()
        ));
    }

    let plan = report::plan(&entries, &o.threads);
    let runs = report::count_runs(&plan, o.repeats, o.profile);
    let budget = o.budget.unwrap_or(if o.quick {
        Duration::from_secs(15)
    } else {
        Duration::from_secs(120)
    });
    let window = o
        .duration
        .unwrap_or_else(|| report::window_for_budget(budget, runs));
    let warmup = o
        .warmup
        .unwrap_or_else(|| (window / 10).min(Duration::from_millis(100)))
        .min(window / 5);
    let settings = Settings {
        thread_counts: o.threads.clone(),
        window,
        warmup,
        repeats: o.repeats,
        budget: o.duration.is_none().then_some(budget),
        profile_contention: o.profile,
        retries: waitless_bench::measure::DEFAULT_RETRIES,
    };
    let est_run = window + warmup + Duration::from_millis(4);
    eprintln!(
        "waitless-bench: {} workload{}, {runs} runs of {} ms (+{} ms warm-up), about {} s",
        plan.len(),
        if plan.len() == 1 { "" } else { "s" },
        window.as_millis(),
        warmup.as_millis(),
        (est_run * runs as u32).as_secs().max(1)
    );
    if cfg!(debug_assertions) {
        eprintln!("waitless-bench: warning: debug build; use --release for meaningful numbers");
    }
    let mut view = ProgressView {
        tty: std::io::stderr().is_terminal(),
        start: Instant::now(),
        est_run,
        last_len: 0,
    };
    let mut rep = report::run_report(&entries, &settings, |p| view.show(p));
    view.finish();
    rep.command = std::iter::once("waitless-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");

    println!("waitless-bench on {}", rep.machine.summary());
    print!("{}", report::text_table(&rep));
    if let Err(e) = report::write_report(&mut rep, &o.out) {
        return fail(&format!(
            "cannot write the report into `{}`: {e}",
            o.out.display()
        ));
    }
    println!(
        "\nreport: {} (results.json, {} plots) in {:.1} s",
        o.out.join("index.html").display(),
        rep.workloads.iter().map(|w| w.plots.len()).sum::<usize>(),
        rep.wall_time.as_secs_f64()
    );
    if rep.has_errors() {
        eprintln!("waitless-bench: some contenders failed (see FAILED above)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Parsed, String> {
        parse_args(s.split_whitespace().map(str::to_owned))
    }

    fn opts(s: &str) -> Options {
        match args(s) {
            Ok(Parsed::Run(o)) => o,
            Ok(Parsed::Help) => panic!("help"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("-", "250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("-", "1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("-", "2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("-", "500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("-", "1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("-", "fast").is_err());
        assert!(parse_duration("-", "-1s").is_err());
        assert!(parse_duration("-", "NaNs").is_err());
        assert!(positive_duration("--duration", "0ms")
            .unwrap_err()
            .contains("positive"));
    }

    #[test]
    fn parses_flags_in_both_spellings() {
        let o = opts(
            "--threads 4,1,2,2 --group=counter --duration 20ms --out /tmp/x --quick --repeats 5",
        );
        assert_eq!(o.threads, vec![1, 2, 4]);
        assert_eq!(o.groups, vec!["counter"]);
        assert_eq!(o.duration, Some(Duration::from_millis(20)));
        assert_eq!(o.out, PathBuf::from("/tmp/x"));
        assert!(o.quick);
        assert_eq!(o.repeats, 5);
        assert!(matches!(args("--help"), Ok(Parsed::Help)));
    }

    #[test]
    fn rejects_bad_input_with_a_message() {
        for (a, needle) in [
            ("--threads 0", "at least 1"),
            ("--threads 1,x", "not a thread count"),
            ("--threads", "needs a value"),
            ("--duration 0", "positive"),
            ("--repeats 0", "between 1 and 1000"),
            ("--frobnicate", "unknown argument"),
            ("--frob=1", "unknown option"),
        ] {
            match args(a) {
                Err(e) => assert!(e.contains(needle), "{a}: {e}"),
                Ok(_) => panic!("{a} accepted"),
            }
        }
    }

    #[test]
    fn select_filters_and_rejects_unknown_names() {
        let o = opts("--group counter");
        assert!(!select(workloads::all(), &o).unwrap().is_empty());
        let o = opts("--workload counter-increment");
        assert!(!select(workloads::all(), &o).unwrap().is_empty());
        let o = opts("--group nosuch");
        assert!(select(workloads::all(), &o)
            .unwrap_err()
            .contains("unknown group"));
        let o = opts("--workload nosuch");
        assert!(select(workloads::all(), &o)
            .unwrap_err()
            .contains("unknown workload"));
    }
}
