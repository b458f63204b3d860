//! Runs the `waitless-bench` binary end to end with tiny durations and checks
//! what it writes: exit code, `results.json`, well-formed SVG, and an
//! `index.html` that links only files that exist.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_waitless-bench"))
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tiny_run(out: &Path, extra: &[&str]) -> Output {
    bin()
        .args([
            "--group",
            "counter",
            "--threads",
            "1,2",
            "--duration",
            "15ms",
            "--warmup",
            "1ms",
            "--repeats",
            "2",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .expect("binary runs")
}

/// Every `href="…"` and `src="…"` value in an HTML text.
fn links(html: &str) -> Vec<String> {
    let mut v = Vec::new();
    for attr in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').expect("closed attribute");
            v.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    v
}

#[test]
fn report_run_writes_json_svgs_and_a_linked_index() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    // Plots of an earlier run in the same folder are removed; other files stay.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("stack-push-pop-pairs.throughput.svg"), "<svg/>").unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = tiny_run(&out, &[]);
    let (stdout, stderr) = text(&o);
    assert!(
        o.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        o.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("counter/increment"), "{stdout}");
    assert!(stdout.contains("vs lock"), "{stdout}");
    assert!(stdout.contains("report:"), "{stdout}");

    // results.json: the expected fields, positive throughputs.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
            .expect("results.json parses");
    assert_eq!(json["tool"], "waitless-bench");
    assert!(json["machine"]["cpu_model"].is_string());
    assert!(json["machine"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(json["machine"]["rustc"].as_str().unwrap().contains("rustc"));
    assert_eq!(json["settings"]["repeats"], 2);
    // Durations are float seconds.
    assert!(json["wall_time"].as_f64().unwrap() > 0.0);
    assert!((json["workloads"][0]["window"].as_f64().unwrap() - 0.015).abs() < 1e-9);
    assert!(!out.join("stack-push-pop-pairs.throughput.svg").exists());
    assert!(out.join("notes.txt").exists());
    let workloads = json["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 1);
    let w = &workloads[0];
    assert_eq!(w["workload"], "counter/increment");
    assert_eq!(w["thread_counts"], serde_json::json!([1, 2]));
    let contenders = w["contenders"].as_array().unwrap();
    assert_eq!(contenders.len(), 3);
    for c in contenders {
        assert!(c["error"].is_null(), "{c}");
        let ms = c["measurements"].as_array().unwrap();
        assert_eq!(ms.len(), 2);
        for m in ms {
            assert!(m["median_ops_per_sec"].as_f64().unwrap() > 0.0, "{m}");
            assert!(
                m["min_ops_per_sec"].as_f64().unwrap() <= m["max_ops_per_sec"].as_f64().unwrap()
            );
            assert_eq!(m["runs"].as_array().unwrap().len(), 2);
            assert!(
                m["latency"]["p50_ns"].as_u64().unwrap()
                    <= m["latency"]["max_ns"].as_u64().unwrap()
            );
        }
    }
    let analysis = &w["analyses"][0]["versus_mutex"];
    assert!(analysis["maximum_improvement_factor"].as_f64().unwrap() > 0.0);
    assert!(analysis.get("crossover_thread_count").is_some());
    assert!(!analysis["recommendations"].as_array().unwrap().is_empty());
    // The waitless contender was contention-profiled: its CAS loop reports
    // when the counters are compiled in (`--features contention`), and the
    // report says which way the binary was built. With neither CAS nor
    // hardware counters the profiled run is skipped: it could say nothing.
    let profile = &contenders[0]["contention"];
    let counters = json["machine"]["contention_counters"].as_bool().unwrap();
    let hardware = json["machine"]["hardware_counters"].as_bool().unwrap();
    assert_eq!(counters, cfg!(feature = "contention"));
    if counters {
        assert!(profile["cas_attempts"].as_u64().unwrap() > 0, "{profile}");
        assert_eq!(profile["hot_spots"][0]["site"], "counter.cas");
    } else if hardware {
        assert_eq!(profile["cas_attempts"].as_u64(), Some(0), "{profile}");
    } else {
        assert!(profile.is_null(), "{profile}");
        // Said once, not on every workload.
        assert_eq!(
            stdout.matches("Note: no contention profiles").count(),
            1,
            "{stdout}"
        );
        assert!(!stdout.contains("contention ("), "{stdout}");
    }

    // Every SVG is well-formed XML with an <svg> root.
    let mut svgs = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "svg") {
            let s = std::fs::read_to_string(&p).unwrap();
            let doc = roxmltree::Document::parse(&s)
                .unwrap_or_else(|e| panic!("{} is not well-formed: {e}", p.display()));
            assert_eq!(doc.root_element().tag_name().name(), "svg");
            svgs += 1;
        }
    }
    assert_eq!(svgs, 2);
    assert_eq!(w["plots"].as_array().unwrap().len(), 2);

    // index.html links only files that exist (in-page anchors aside).
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let ls = links(&html);
    assert!(ls.iter().any(|l| l == "results.json"));
    assert!(ls.iter().any(|l| l.ends_with(".svg")));
    for l in ls.iter().filter(|l| !l.starts_with('#')) {
        assert!(out.join(l).is_file(), "index.html links missing {l}");
    }
    assert!(html.contains("Mutex&lt;u64&gt;"));
}

#[test]
fn json_on_stdout_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let o = tiny_run(&dir.path().join("r"), &["--format", "json", "--no-profile"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is the JSON report");
    assert_eq!(v["workloads"][0]["workload"], "counter/increment");
    let o = bin().args(["completions", "bash"]).output().unwrap();
    assert!(o.status.success());
    assert!(text(&o).0.contains("waitless-bench"));
}

/// The one-thread probes that replaced the map example: the line issue 12
/// asks for (map `get` against std), and a bad map name is bad input.
#[test]
fn micro_probes_print_their_tables() {
    let o = bin()
        .args(["micro", "map-get", "--lookups", "2000"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("| waitless / std | "), "{stdout}");
    assert_rejected(&["micro", "map-memory-one", "nosuch"], "unknown map");
    assert_rejected(&["micro", "map-get", "--lookups", "0"], "--lookups");
}

#[test]
fn list_and_help_succeed() {
    let o = bin().arg("--list").output().unwrap();
    let (stdout, _) = text(&o);
    assert!(o.status.success());
    assert!(stdout.contains("counter/increment"));
    assert!(stdout.contains("lock baseline"));
    let o = bin().arg("--help").output().unwrap();
    assert!(o.status.success());
    assert!(text(&o).0.contains("--threads"));
}

fn assert_rejected(args: &[&str], needle: &str) {
    let o = bin().args(args).output().unwrap();
    let (stdout, stderr) = text(&o);
    assert!(!o.status.success(), "{args:?} succeeded\n{stdout}");
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    assert!(stderr.contains("error"), "{args:?}: {stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: expected `{needle}` in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}

#[test]
fn bad_input_exits_non_zero_with_a_message() {
    assert_rejected(&["--threads", "0"], "at least 1");
    assert_rejected(&["--threads", "1,two"], "not a thread count");
    assert_rejected(&["--duration", "0ms"], "positive");
    assert_rejected(&["--duration", "soon"], "not a duration");
    assert_rejected(&["--workload", "no/such-workload"], "unknown workload");
    assert_rejected(&["--group", "nosuch"], "unknown group");
    assert_rejected(&["--bogus"], "unexpected argument");
    assert_rejected(&["--out"], "a value is required");
    assert_rejected(&["--threads", "1,,2"], "empty item");
}

#[test]
fn unwritable_output_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the folder should go cannot become a folder.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let o = tiny_run(&file.join("report"), &[]);
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(
        stderr.contains("cannot write the report folder"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Nothing was measured: it failed before the first run.
    assert!(!stderr.contains("[1/"), "{stderr}");
}

#[test]
fn prove_queue_and_analyze_orderings_print_reports_that_hold() {
    let o = bin()
        .args(["prove", "queue", "--capacity", "2", "--threads", "2"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("4 of 4 proofs hold"), "{stdout}");
    assert!(stdout.contains("docs/wait-free-queue.md"), "{stdout}");
    let o = bin()
        .args(["analyze", "orderings", "--capacity", "4", "--no-proof"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    for needle in [
        "STAMP_STORE",
        "Optimized",
        "AcquireRelease",
        "SeqCstAll",
        "POWER",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
    assert!(!stdout.contains("NOT SOUND"), "{stdout}");
    let o = bin()
        .args(["prove", "queue", "--capacity", "3"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("power of two"));
}
