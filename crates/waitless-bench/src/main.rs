//! `waitless-bench`: the comparison report.
//!
//! Runs every registered workload (each waitless structure against its lock
//! baseline and its crates.io peers) at several thread counts, prints a
//! table and writes a report folder. `waitless-bench --help` lists the flags.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use waitless_bench::report::{self, Progress, Settings};
use waitless_bench::workloads::{self, Entry, Role};

/// Measure when lock-free beats a lock, on this machine.
///
/// Runs every workload (each waitless structure, its Mutex/RwLock baseline
/// and its crates.io peers) at each thread count, prints a table of
/// throughputs and ratios with a headline verdict per structure, and writes
/// a report folder: results.json, one throughput and one latency SVG per
/// workload, and index.html. The default run takes about two minutes
/// (`--quick`: about 15 s); small or shared machines give noisy numbers,
/// which the report marks ("within noise", "disturbed").
#[derive(Debug, Parser)]
#[command(
    name = "waitless-bench",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Durations: 250ms, 2s, 1.5s, 500us, 1m; a bare number means seconds.\n\
                  Methodology and how to read the report: docs/benchmarking.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

/// Subcommands. Without one, `waitless-bench` runs the comparison report.
///
/// To add one: a variant here (its doc comment is its `--help` line, its
/// fields or an `Args` struct its flags) and an arm in [`main`]'s match.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print a shell completion script (e.g. `waitless-bench completions bash
    /// > ~/.local/share/bash-completion/completions/waitless-bench`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the library's proof reports: `waitless-bench prove queue`.
    Prove {
        #[command(subcommand)]
        what: ProveWhat,
    },
    /// Print the library's analyses: `waitless-bench analyze orderings`.
    Analyze {
        #[command(subcommand)]
        what: AnalyzeWhat,
    },
    /// One-thread probes and cost measurements outside the report:
    /// `waitless-bench micro map-get`.
    Micro {
        #[command(subcommand)]
        what: MicroWhat,
    },
}

/// What `micro` measures (wall-clock timings: on a loaded machine run the
/// same command under `valgrind --tool=callgrind` for instruction counts).
#[derive(Debug, Subcommand)]
enum MicroWhat {
    /// One thread: waitless map `get` (plain and through a pinned view)
    /// against std `HashMap::get` behind no lock, random present keys out of
    /// 100,000, median of 3; ends with the ratio against std.
    MapGet {
        /// Lookups per run.
        #[arg(long, default_value_t = 2_000_000, value_parser = count("--lookups", 1, 1 << 30))]
        lookups: usize,
    },
    /// One thread: hazard-pointer protect + read in a tight loop (waitless
    /// in both fence modes, haphazard, crossbeam-epoch pin + load, a plain
    /// load), median of 5.
    HazardProtect {
        /// Iterations per run.
        #[arg(long, default_value_t = 20_000_000, value_parser = count("--iterations", 1, u32::MAX as usize))]
        iterations: usize,
    },
    /// Resident bytes per entry for a million u64 -> u64 entries, each map
    /// in a fresh child process (Linux: /proc/self/statm).
    MapMemory,
    /// One map of `map-memory`, in this process (what map-memory runs in
    /// each child).
    #[command(hide = true)]
    MapMemoryOne {
        /// The map's name, as map-memory prints it.
        name: String,
    },
    /// What the contention counters cost on a CAS retry loop: no record
    /// call, counting off, counting on, at 1 and 2 threads; meaningful with
    /// `--features contention`.
    ContentionOverhead {
        /// Measurement window of each run.
        #[arg(long, value_name = "D", default_value = "200ms", value_parser = |s: &str| positive_duration("--window", s))]
        window: Duration,
        /// Runs per variant; the median is reported.
        #[arg(long, value_name = "N", default_value_t = 5, value_parser = count("--repeats", 1, 1000))]
        repeats: usize,
    },
}

/// Runs a `micro` measurement and prints its report.
fn micro(what: MicroWhat) -> ExitCode {
    use waitless_bench::micro;
    let text = match what {
        MicroWhat::MapGet { lookups } => micro::map_get(lookups),
        MicroWhat::HazardProtect { iterations } => {
            micro::hazard_protect(u32::try_from(iterations).unwrap_or(u32::MAX))
        }
        MicroWhat::MapMemory => match std::env::current_exe() {
            Ok(exe) => micro::map_memory(&exe),
            Err(e) => return fail(&format!("cannot find this program's path: {e}")),
        },
        MicroWhat::MapMemoryOne { name } => {
            match micro::map_memory_one(&name, micro::MEMORY_ENTRIES) {
                Some(b) => format!("{b:.1}\n"),
                None => {
                    return fail(&format!(
                        "unknown map `{name}`; known: {}",
                        micro::MEMORY_CONTENDERS.join(", ")
                    ))
                }
            }
        }
        MicroWhat::ContentionOverhead { window, repeats } => {
            micro::contention_overhead(window, repeats)
        }
    };
    print!("{text}");
    ExitCode::SUCCESS
}

/// What `prove` reports on.
#[derive(Debug, Subcommand)]
enum ProveWhat {
    /// The wait-free queue's four proof obligations (wait-free enqueue and
    /// dequeue with their step bounds, linearizability, system progress),
    /// each with evidence gathered now on a fresh queue (about a second
    /// each). Exits 1 if one does not hold. Step counts need the build
    /// feature `step-count` (`cargo run --release -p waitless-bench
    /// --features step-count -- prove queue`).
    Queue {
        /// Queue capacity (a power of two).
        #[arg(long, default_value_t = 1024, value_parser = power_of_two)]
        capacity: usize,
        /// Thread records the queue is built with (`WaitFreeQueue::with_threads`).
        #[arg(long, default_value_t = 8, value_parser = count("--threads", 1, 4096))]
        threads: usize,
    },
}

/// What `analyze` reports on.
#[derive(Debug, Subcommand)]
enum AnalyzeWhat {
    /// The channel's memory orderings under every strategy, site by site
    /// (ordering, pairing, why, x86-64/ARMv8/POWER instructions), each with
    /// its correctness proof (about a second each). Exits 1 if an analysis
    /// is not sound or a proof does not hold.
    Orderings {
        /// Channel capacity (a power of two).
        #[arg(long, default_value_t = 1024, value_parser = power_of_two)]
        capacity: usize,
        /// Only the analyses, without the correctness proofs.
        #[arg(long)]
        no_proof: bool,
    },
}

fn power_of_two(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n.is_power_of_two() && n <= 1 << 20 => Ok(n),
        _ => Err(format!("`{s}` is not a power of two in 1..=2^20")),
    }
}

/// Prints a report; exit code 1 if it does not hold.
fn print_report((text, ok): (String, bool)) -> ExitCode {
    print!("{text}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What the report prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// The table, warnings and headline.
    Text,
    /// `results.json`'s content.
    Json,
}

/// Thread counts, as given to `--threads`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ThreadList(Vec<usize>);

/// The flags of the comparison report.
#[derive(Debug, Args)]
struct RunArgs {
    /// Only these groups (stack, epoch, hazard, map, queue, channel, rcu, counter…).
    #[arg(long = "group", alias = "groups", value_name = "G[,G...]", value_parser = list_item("--group"), value_delimiter = ',')]
    groups: Vec<String>,
    /// Only these workloads (full name, e.g. counter/increment, or its file name counter-increment).
    #[arg(long = "workload", alias = "workloads", value_name = "W[,W...]", value_parser = list_item("--workload"), value_delimiter = ',')]
    workloads: Vec<String>,
    /// Thread counts; workloads with fixed counts (e.g. SPSC at 2) keep theirs.
    #[arg(long, value_name = "N[,N...]", value_parser = parse_threads, default_value = "1,2,4,8")]
    threads: ThreadList,
    /// Measurement window of each run [default: computed so the whole run fits the budget].
    #[arg(long, value_name = "D", value_parser = |s: &str| positive_duration("--duration", s))]
    duration: Option<Duration>,
    /// Target wall time of the whole run [default: 120s; 15s with --quick].
    #[arg(long, value_name = "D", value_parser = |s: &str| positive_duration("--budget", s))]
    budget: Option<Duration>,
    /// Warm-up before each window [default: a tenth of the window, at most 100ms; at most a fifth of the window].
    #[arg(long, value_name = "D", value_parser = |s: &str| parse_duration("--warmup", s))]
    warmup: Option<Duration>,
    /// Runs per measurement; the median is reported.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = count("--repeats", 1, 1000))]
    repeats: usize,
    /// Repeats of a run whose threads did not get the CPU (another process ran) before it is kept and marked disturbed.
    #[arg(long, value_name = "N", default_value_t = waitless_bench::measure::DEFAULT_RETRIES, value_parser = count("--retries", 0, 100))]
    retries: usize,
    /// Report folder (its earlier plots are replaced).
    #[arg(long, value_name = "DIR", default_value = "waitless-report", value_parser = out_dir)]
    out: PathBuf,
    /// A 15-second run (same workloads, shorter windows).
    #[arg(long)]
    quick: bool,
    /// Skip the contention-profiled run of each waitless contender (skipped anyway when neither the CAS counters, `--features contention`, nor hardware counters are available).
    #[arg(long)]
    no_profile: bool,
    /// List groups, workloads and contenders, then exit.
    #[arg(long)]
    list: bool,
    /// What to print on stdout: the table (text) or the results as JSON.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

fn list_item(flag: &'static str) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |s: &str| {
        let t = s.trim();
        if t.is_empty() {
            Err(format!("{flag}: an empty name in the list"))
        } else {
            Ok(t.to_owned())
        }
    }
}

fn count(
    flag: &'static str,
    lo: usize,
    hi: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone {
    move |s: &str| {
        s.trim()
            .parse()
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| format!("{flag}: `{s}` is not a count between {lo} and {hi}"))
    }
}

fn out_dir(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        Err("--out: the folder name is empty".to_owned())
    } else {
        Ok(PathBuf::from(s))
    }
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

fn parse_threads(s: &str) -> Result<ThreadList, String> {
    let mut v = Vec::new();
    for item in s.split(',').map(str::trim) {
        if item.is_empty() {
            return Err(format!(
                "--threads: `{s}` has an empty item; write counts like 1,2,4"
            ));
        }
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
    Ok(ThreadList(v))
}

fn select(entries: Vec<Entry>, o: &RunArgs) -> Result<Vec<Entry>, String> {
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

/// Progress on stderr: an indicatif bar on a terminal (sized to it), one
/// line per run otherwise.
struct ProgressView {
    bar: Option<ProgressBar>,
}

impl ProgressView {
    fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "[{bar:24}] {pos:>4}/{len:<4} ETA {eta:>4} {wide_msg}",
                )
                .expect("a valid template")
                .progress_chars("#>·"),
            );
            b
        });
        Self { bar }
    }

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
        match &self.bar {
            Some(b) => {
                b.set_position(p.done as u64);
                b.set_message(what);
            }
            None => eprintln!("[{}/{}] {what}", p.done + 1, p.total),
        }
    }

    fn finish(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// How to ask for help: through cargo when cargo started us.
fn help_hint() -> &'static str {
    if std::env::var_os("CARGO").is_some() {
        "cargo run --release -p waitless-bench -- --help"
    } else {
        "waitless-bench --help"
    }
}

/// Bad input: one line on stderr, exit code 2.
fn fail(msg: &str) -> ExitCode {
    eprintln!("waitless-bench: error: {msg} (see `{}`)", help_hint());
    ExitCode::from(2)
}

/// A clap error as one line (its first, without clap's `error: `).
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&clap_message(&e)),
    };
    match cli.command {
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "waitless-bench",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
        Some(Command::Prove {
            what: ProveWhat::Queue { capacity, threads },
        }) => print_report(waitless_bench::proofs::queue_report(capacity, threads)),
        Some(Command::Analyze {
            what: AnalyzeWhat::Orderings { capacity, no_proof },
        }) => print_report(waitless_bench::proofs::orderings_report(
            capacity, !no_proof,
        )),
        Some(Command::Micro { what }) => micro(what),
        None => run(cli.run),
    }
}

/// The comparison report.
fn run(o: RunArgs) -> ExitCode {
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

    let threads = &o.threads.0;
    let plan = report::plan(&entries, threads);
    // A profiled run with neither CAS counters nor hardware counters
    // reports nothing: skip it (the report says so once).
    let profile = !o.no_profile && report::profiling_can_report();
    let runs = report::count_runs(&plan, o.repeats, profile);
    let budget = o.budget.unwrap_or(if o.quick {
        Duration::from_secs(15)
    } else {
        Duration::from_secs(120)
    });
    // Workloads with a minimum window keep it only in a budgeted run; the
    // window of the others is what the rest of the budget allows.
    let budgeted = o.duration.is_none().then_some(budget);
    let mins = report::run_min_windows(&plan, o.repeats, profile, budgeted);
    let window = o
        .duration
        .unwrap_or_else(|| report::window_for_plan(budget, &mins));
    let warmup = o
        .warmup
        .unwrap_or_else(|| (window / 10).min(Duration::from_millis(100)))
        .min(window / 5);
    let settings = Settings {
        thread_counts: threads.clone(),
        window,
        warmup,
        repeats: o.repeats,
        budget: budgeted,
        profile_contention: profile,
        retries: o.retries,
    };
    let est: Duration = mins
        .iter()
        .map(|&m| window.max(m) + warmup + Duration::from_millis(4))
        .sum();
    let stretched = mins.iter().filter(|&&m| m > window).count();
    eprintln!(
        "waitless-bench: {} workload{}, {runs} runs of {} ms (+{} ms warm-up{}), about {} s",
        plan.len(),
        if plan.len() == 1 { "" } else { "s" },
        window.as_millis(),
        warmup.as_millis(),
        if stretched == 0 {
            String::new()
        } else {
            format!("; {stretched} runs of noisy workloads stretched to their minimum window")
        },
        est.as_secs().max(1)
    );
    if cfg!(debug_assertions) {
        eprintln!("waitless-bench: warning: debug build; use --release for meaningful numbers");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(&max) = threads.iter().max().filter(|&&t| t > cores) {
        eprintln!(
            "waitless-bench: warning: {max} threads exceed this machine's {cores} hardware threads: those points measure the scheduler, not parallel scaling"
        );
    }
    let mut view = ProgressView::new(runs);
    let mut rep = report::run_report(&entries, &settings, |p| view.show(p));
    view.finish();
    rep.command = std::iter::once("waitless-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");

    if let Err(e) = report::write_report(&mut rep, &o.out) {
        return fail(&format!(
            "cannot write the report into `{}`: {e}",
            o.out.display()
        ));
    }
    // The library's proof reports, linked from index.html (about 5 s).
    match waitless_bench::proofs::write_proof_files(&o.out) {
        Ok(true) => {}
        Ok(false) => eprintln!(
            "waitless-bench: warning: a proof report does not hold; see {}",
            o.out.display()
        ),
        Err(e) => {
            return fail(&format!(
                "cannot write the proof reports into `{}`: {e}",
                o.out.display()
            ))
        }
    }
    match o.format {
        Format::Json => match serde_json::to_string_pretty(&rep) {
            Ok(j) => println!("{j}"),
            Err(e) => return fail(&format!("cannot serialize the results: {e}")),
        },
        Format::Text => {
            println!("waitless-bench on {}", rep.machine.summary());
            print!("{}", report::text_table(&rep));
            println!(
                "\nreport: {} (results.json, {} plots) in {:.1} s",
                o.out.join("index.html").display(),
                rep.workloads.iter().map(|w| w.plots.len()).sum::<usize>(),
                rep.wall_time.as_secs_f64()
            );
        }
    }
    if rep.has_errors() {
        eprintln!("waitless-bench: some contenders failed (see FAILED in the report)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("waitless-bench").chain(s.split_whitespace()))
    }

    fn opts(s: &str) -> RunArgs {
        args(s).unwrap_or_else(|e| panic!("{s}: {e}")).run
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
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
        assert_eq!(o.threads, ThreadList(vec![1, 2, 4]));
        assert_eq!(o.groups, vec!["counter"]);
        assert_eq!(o.duration, Some(Duration::from_millis(20)));
        assert_eq!(o.out, PathBuf::from("/tmp/x"));
        assert!(o.quick);
        assert_eq!(o.repeats, 5);
        assert_eq!(o.format, Format::Text);
        let o = opts("--groups stack,queue --group map --format json");
        assert_eq!(o.groups, vec!["stack", "queue", "map"]);
        assert_eq!(o.format, Format::Json);
        assert!(matches!(
            args("completions bash").unwrap().command,
            Some(Command::Completions { .. })
        ));
    }

    #[test]
    fn rejects_bad_input_with_a_message() {
        for (a, needle) in [
            ("--threads 0", "at least 1"),
            ("--threads 1,x", "not a thread count"),
            ("--threads 1,,2", "empty item"),
            ("--threads", "a value is required"),
            ("--duration 0", "positive"),
            ("--repeats 0", "between 1 and 1000"),
            ("--group a,,b", "empty name"),
            ("--frobnicate", "unexpected argument"),
            ("--format xml", "invalid value"),
        ] {
            match args(a) {
                Err(e) => {
                    let m = clap_message(&e);
                    assert!(m.contains(needle), "{a}: {m}");
                    assert!(!m.contains('\n'), "{a}: one line: {m}");
                }
                Ok(_) => panic!("{a} accepted"),
            }
        }
    }

    #[test]
    fn select_filters_and_rejects_unknown_names() {
        let o = opts("--group counter");
        assert!(!select(workloads::all(), &o).unwrap().is_empty());
        let o = opts("--group hazard,epoch");
        let chosen = select(workloads::all(), &o).unwrap();
        assert!(chosen
            .iter()
            .all(|e| e.group == "hazard" || e.group == "epoch"));
        assert!(chosen.iter().any(|e| e.group == "hazard"));
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
