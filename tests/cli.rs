//! End-to-end tests of the faultline binary and the run driver: determinism across
//! processes, identical results whatever the thread count, input errors with JSON paths
//! and exit code 2, reports that replay, bug modes that are caught, panics that become a
//! seed's failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline::campaign;
use faultline::cluster::{self, FailureKind, RunOptions, System, Violation};
use faultline::node::{Context, Event, Node, NodeId};
use faultline::scenario::{Expectation, Scenario, Schedule};
use faultline::sim::Sim;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn same_seed_in_two_processes_gives_identical_json() {
    // Goal: determinism is the product. Two processes, same seed, same bytes.
    let s = scenario("counter-basic.json");
    let s = s.to_str().unwrap();
    let a = run(&["run", s, "--seed", "17", "--json"]);
    let b = run(&["run", s, "--seed", "17", "--json"]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    let v: serde_json::Value = serde_json::from_str(&stdout(&a)).expect("one JSON object");
    assert_eq!(v["trace_hash"].as_str().unwrap().len(), 16);
    assert!(v["events"].as_u64().unwrap() > 1000);
    assert!(v["violations"].as_array().unwrap().is_empty());
    let c = run(&["run", s, "--seed", "18", "--json"]);
    let w: serde_json::Value = serde_json::from_str(&stdout(&c)).unwrap();
    assert_ne!(
        v["trace_hash"], w["trace_hash"],
        "different seeds, different runs"
    );
}

/// The JSON lines of a `fuzz --json` run, parsed.
fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The seeds of the `seed` lines, in the order printed.
fn seed_numbers(lines: &[serde_json::Value]) -> Vec<u64> {
    lines
        .iter()
        .filter(|v| v["type"] == "seed")
        .map(|v| v["seed"].as_u64().unwrap())
        .collect()
}

#[test]
fn fuzz_results_do_not_depend_on_the_thread_count() {
    // Goal: seed lines come in seed order whatever the thread count, so the campaign line
    // and every seed line are the same bytes with 1 and 2 threads; only the summary's wall
    // figures differ.
    let s = scenario("counter-basic.json");
    let s = s.to_str().unwrap();
    let one = run(&["fuzz", s, "--seeds", "100..140", "--jobs", "1", "--json"]);
    let two = run(&["fuzz", s, "--seeds", "100..140", "--jobs", "2", "--json"]);
    assert_eq!(one.status.code(), Some(0));
    let (a, b) = (stdout(&one), stdout(&two));
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(a.len(), 42, "campaign line, 40 seeds, summary");
    assert_eq!(a[..41], b[..41]);
    let lines = json_lines(&one);
    assert_eq!(lines[0]["type"], "campaign");
    assert_eq!(lines[0]["range"], "100..140");
    assert_eq!(seed_numbers(&lines), (100..140).collect::<Vec<_>>());
    let (x, y) = (&lines[41], &json_lines(&two)[41]);
    for field in [
        "range", "covered", "stop", "passed", "failed", "events", "failing",
    ] {
        assert_eq!(x[field], y[field], "{field}");
    }
    assert_eq!(x["covered"], "100..140");
    assert_eq!(x["complete"], true);
    assert_eq!(x["passed"], 40);
}

/// A seed whose only finding is ZooKeeper's own start-up refusal (zk-nemesis seed 306:
/// zk1 dies during its NEWLEADER log fsync, before currentEpoch.tmp exists, and
/// `QuorumPeer.loadDataBase` refuses to start it) is counted apart by `fuzz`: neither
/// passed nor failed, named after its JIRA issue, and it does not make the campaign
/// exit 1; `run` says the same of that one seed.
#[test]
fn fuzz_counts_known_real_system_behaviour_apart_by_name() {
    let s = scenario("zk-nemesis.json");
    let s = s.to_str().unwrap();
    let dir = temp_dir("fuzz-known");
    let reports = dir.to_str().unwrap();
    let args = ["fuzz", s, "--seeds", "304..308", "--jobs", "1"];
    let json = run(&[&args[..], &["--json", "--reports", reports]].concat());
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let lines = json_lines(&json);
    let verdicts: Vec<(u64, &str)> = lines
        .iter()
        .filter(|v| v["type"] == "seed")
        .map(|v| (v["seed"].as_u64().unwrap(), v["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [(304, "pass"), (305, "pass"), (306, "known"), (307, "pass")]
    );
    let sum = lines.last().expect("summary");
    assert_eq!(sum["type"], "summary");
    assert_eq!((&sum["passed"], &sum["failed"]), (&3.into(), &0.into()));
    assert_eq!((&sum["known"], &sum["unknown"]), (&1.into(), &0.into()));
    let k = &sum["known_behaviours"][0];
    assert_eq!(k["name"], "ZOOKEEPER-2354 start-up refusal");
    assert_eq!(k["seeds"], 1);
    assert_eq!(k["first_seeds"], serde_json::json!([306]));
    let reference = k["reference"].as_str().unwrap();
    assert!(reference.contains("ZOOKEEPER-1653"), "{reference}");
    assert!(reference.contains("QuorumPeer.loadDataBase"), "{reference}");
    assert!(
        std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none()),
        "no failure report for a known behaviour"
    );
    let text = run(&[&args[..], &["--reports", reports]].concat());
    assert_eq!(text.status.code(), Some(0));
    let out = stdout(&text);
    assert!(
        out.contains("known      1 (known real-system behaviour, not failures)"),
        "{out}"
    );
    assert!(
        out.contains("  ZOOKEEPER-2354 start-up refusal: 1 seeds (306); ZOOKEEPER-2354"),
        "{out}"
    );
    assert!(out.contains("failing    0"), "{out}");
    let one = run(&["run", s, "--seed", "306", "--reports", reports]);
    assert_eq!(one.status.code(), Some(0), "{}", stdout(&one));
    let out = stdout(&one);
    assert!(
        out.contains("verdict    known real-system behaviour: ZOOKEEPER-2354 start-up refusal"),
        "{out}"
    );
    assert!(out.contains("not a bug of ours"), "{out}");
}

#[test]
fn fuzz_random_seeds_print_a_range_that_repeats() {
    // Goal: `--seeds random:N` draws its start outside any run and names the exact range
    // first and in the summary, so `--seeds A..B` repeats the campaign byte for byte.
    let s = scenario("counter-basic.json");
    let s = s.to_str().unwrap();
    let first = run(&["fuzz", s, "--seeds", "random:6", "--jobs", "2", "--json"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let lines = json_lines(&first);
    let head = &lines[0];
    assert_eq!(head["type"], "campaign");
    assert_eq!(head["random"], true);
    let start = head["start"].as_u64().unwrap();
    assert!(start < 1 << 48, "start {start} exact in JSON tools");
    let range = format!("{start}..{}", start + 6);
    assert_eq!(head["range"], range.as_str());
    assert!(head["repeat"]
        .as_str()
        .unwrap()
        .ends_with(&format!("--seeds {range}")));
    assert_eq!(seed_numbers(&lines), (start..start + 6).collect::<Vec<_>>());
    let summary = lines.last().unwrap();
    assert_eq!(summary["range"], range.as_str());
    assert_eq!(summary["covered"], range.as_str());
    let again = run(&["fuzz", s, "--seeds", &range, "--jobs", "1", "--json"]);
    let (a, b) = (stdout(&first), stdout(&again));
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    assert_eq!(a[1..7], b[1..7], "the same seeds, the same runs");
    // A second draw starts elsewhere (two equal draws of 48 bits would be a broken source).
    let other = run(&["fuzz", s, "--seeds", "random:1", "--json"]);
    assert_ne!(json_lines(&other)[0]["start"], head["start"]);
    // Text mode names the range on its first line too.
    let text = run(&["fuzz", s, "--seeds", "random:2"]);
    let first_line = stdout(&text).lines().next().unwrap_or_default().to_string();
    assert!(first_line.starts_with("campaign") && first_line.contains("random start"));
}

#[test]
fn fuzz_time_budget_stops_handing_out_seeds_and_reports_a_contiguous_range() {
    // Goal: a time budget ends a campaign of a million seeds after about a second, with
    // every seed of one contiguous range run and reported, and the rest named.
    let s = scenario("counter-basic.json");
    let o = run(&[
        "fuzz",
        s.to_str().unwrap(),
        "--seeds",
        "0..1000000",
        "--shard",
        "1/2",
        "--time-budget",
        "1s",
        "--jobs",
        "2",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines = json_lines(&o);
    assert_eq!(lines[0]["range"], "500000..1000000");
    let summary = lines.last().unwrap();
    assert_eq!(summary["stop"], "time-budget");
    assert_eq!(summary["complete"], false);
    let end = summary["covered_end"].as_u64().unwrap();
    assert!(end > 500_000 && end < 1_000_000, "covered up to {end}");
    assert_eq!(summary["covered"], format!("500000..{end}").as_str());
    assert_eq!(summary["rest"], format!("{end}..1000000").as_str());
    assert_eq!(seed_numbers(&lines), (500_000..end).collect::<Vec<_>>());
    assert!(summary["wall"]["elapsed_ms"].as_u64().unwrap() >= 1000);
}

#[test]
fn fuzz_max_failures_stops_at_the_kth_failing_seed_whatever_the_threads() {
    // Goal: `--max-failures K` stops at the K-th failing seed in seed order, so the result
    // (and the reports written) are the same with 1 and 2 threads; the exit code says a
    // seed failed.
    let s = scenario("counter-bug-merge-overwrites.json");
    let s = s.to_str().unwrap();
    let mut outputs = Vec::new();
    for jobs in ["1", "2"] {
        let dir = temp_dir(&format!("maxfail{jobs}"));
        let o = run(&[
            "fuzz",
            s,
            "--seeds",
            "0..60",
            "--max-failures",
            "3",
            "--jobs",
            jobs,
            "--no-shrink",
            "--json",
            "--reports",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let lines = json_lines(&o);
        let summary = lines.last().unwrap().clone();
        assert_eq!(summary["stop"], "max-failures");
        assert_eq!(summary["failed"], 3);
        let failing: Vec<u64> = summary["failing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["seed"].as_u64().unwrap())
            .collect();
        assert_eq!(failing.len(), 3);
        assert_eq!(summary["covered_end"].as_u64(), Some(failing[2] + 1));
        let reports: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .collect();
        assert_eq!(reports.len(), 3, "a report for each listed seed, no more");
        // The campaign index lists every failing seed, linking its report.
        let index = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
        for f in summary["failing"].as_array().unwrap() {
            let json = Path::new(f["report"].as_str().unwrap())
                .file_name()
                .unwrap();
            let html = json.to_str().unwrap().replace(".json", ".html");
            assert!(
                index.contains(&format!("href=\"{html}\"")),
                "{html} not in index"
            );
        }
        for f in summary["failing"].as_array().unwrap() {
            assert!(Path::new(f["report"].as_str().unwrap()).exists());
            assert!(f["shrunk_report"].is_null(), "--no-shrink");
        }
        outputs.push((seed_numbers(&lines), failing));
    }
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn index_rebuilds_the_campaign_page_and_refuses_a_missing_directory() {
    let dir = temp_dir("index-empty");
    std::fs::create_dir_all(&dir).unwrap();
    let o = run(&["index", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(page.contains("0 failing seeds"), "{page}");
    let missing = dir.join("no-such-dir");
    let o = run(&["index", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
}

#[test]
fn fuzz_shrinks_every_failing_seed_it_reports() {
    // Goal: without --no-shrink, each failing seed gets a shrunk report beside its report,
    // printed with it (the bug scenario's schedule has faults the violation does not need).
    let dir = temp_dir("fuzz-shrink");
    let s = scenario("counter-bug-gossip-before-fsync.json");
    let o = run(&[
        "fuzz",
        s.to_str().unwrap(),
        "--seeds",
        "0..4",
        "--jobs",
        "2",
        "--reports",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = stdout(&o);
    let shrunk: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("shrunk"))
        .collect();
    assert!(!shrunk.is_empty(), "no shrunk report printed: {text}");
    for line in shrunk {
        let path = line.rsplit(' ').next().unwrap();
        assert!(path.contains("shrunk") && path.ends_with(".json"), "{line}");
        assert!(Path::new(path).exists(), "{path}");
    }
}

#[test]
fn a_killed_campaign_printed_a_contiguous_prefix_of_seeds() {
    // Goal: the JSON lines a campaign printed before it was killed are whole lines naming
    // the seeds from the start of the range up to the last one printed, so a user can go on
    // with `--seeds last+1..B`.
    use std::io::{BufRead, BufReader};
    let s = scenario("counter-basic.json");
    let mut child = bin()
        .args([
            "fuzz",
            s.to_str().unwrap(),
            "--seeds",
            "0..100000",
            "--jobs",
            "2",
        ])
        .arg("--json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("binary runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().take(31) {
        seen.push(line.unwrap());
    }
    child.kill().expect("kill");
    seen.extend(lines.map_while(Result::ok));
    let _ = child.wait();
    let parsed: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(parsed[0]["type"], "campaign");
    let seeds = seed_numbers(&parsed);
    assert!(seeds.len() >= 30);
    assert_eq!(seeds, (0..seeds.len() as u64).collect::<Vec<_>>());
    assert!(
        parsed.iter().all(|v| v["type"] != "summary"),
        "killed before the end"
    );
}

#[test]
fn fuzz_flags_reject_bad_values_with_exit_2() {
    let s = scenario("counter-basic.json");
    let s = s.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--time-budget", "10 fortnights"], "--time-budget"),
        (&["--time-budget", "0s"], "--time-budget"),
        (&["--seeds", "random:0"], "random:N"),
        (&["--seeds", "random:x"], "random:N"),
        (&["--seeds", "random:5", "--shard", "0/2"], "--shard"),
        (&["--shard", "2/2"], "--shard"),
        (&["--max-failures", "0"], "--max-failures"),
    ];
    for (flags, named) in cases {
        let mut args = vec!["fuzz", s];
        args.extend_from_slice(flags);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(named), "{flags:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "nothing runs: {flags:?}");
    }
}

#[test]
fn check_determinism_flag_finds_no_divergence() {
    let s = scenario("counter-partition-heal.json");
    let o = run(&["run", s.to_str().unwrap(), "--check-determinism"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("deterministic"));
}

#[test]
fn bug_mode_is_caught_with_a_report_that_replays() {
    // Goal: the example's bug mode is a red run with a readable report and one command that
    // replays it exactly.
    let dir = temp_dir("bug");
    let s = scenario("counter-bug-gossip-before-fsync.json");
    let o = run(&[
        "run",
        s.to_str().unwrap(),
        "--seed",
        "3",
        "--reports",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("counter-durable"));
    let report = dir.join("counter-bug-gossip-before-fsync-seed3.json");
    let md = std::fs::read_to_string(report.with_extension("md")).expect("markdown report");
    assert!(md.contains("faultline replay"));
    assert!(md.contains("## Timeline"));
    let replay = run(&["replay", report.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(1));
    assert!(
        stdout(&replay).contains("replay     identical"),
        "{}",
        stdout(&replay)
    );
}

#[test]
fn tampered_report_is_reported_as_diverged() {
    let dir = temp_dir("tamper");
    let s = scenario("counter-bug-merge-overwrites.json");
    let o = run(&[
        "run",
        s.to_str().unwrap(),
        "--reports",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let path = dir.join("counter-bug-merge-overwrites-seed1.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["trace_hash"] = "0000000000000000".into();
    std::fs::write(&path, v.to_string()).unwrap();
    let replay = run(&["replay", path.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(4));
    assert!(stdout(&replay).contains("DIVERGED"));
}

/// A scenario text with one field replaced, for input-error tests.
fn bad_scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_scenarios_exit_2_naming_file_and_path() {
    let dir = temp_dir("bad");
    let base = r#"{"version": 1, "name": "x", "system": {"kind": "counter", "nodes": 3},
                   "duration": "1s"}"#;
    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown-field.json", base.replace("\"duration\"", "\"durration\""), "durration"),
        ("nodes.json", base.replace("\"nodes\": 3", "\"nodes\": 0"), "system.nodes"),
        ("kind.json", base.replace("counter", "etcd"), "system"),
        ("dur.json", base.replace("\"1s\"", "\"1 fortnight\""), "duration"),
        (
            "fault-node.json",
            base.replace(
                "\"duration\"",
                r#""faults": [{"at": "1ms", "action": {"type": "crash", "node": "n7"}}], "duration""#,
            ),
            "faults[0].action",
        ),
        (
            "fault-late.json",
            base.replace(
                "\"duration\"",
                r#""faults": [{"at": "5s", "action": {"type": "heal"}}], "duration""#,
            ),
            "faults[0].at",
        ),
        (
            "ratio.json",
            base.replace(
                "\"duration\"",
                r#""disk": {"read_corruption": {"num": 3, "den": 2}}, "duration""#,
            ),
            "disk.read_corruption",
        ),
        ("version.json", base.replace("\"version\": 1", "\"version\": 9"), "version"),
        ("syntax.json", base.replace('}', ""), "x"),
        (
            "expect.json",
            base.replace(
                "\"duration\"",
                r#""expect": {"outcome": "violation", "invariant": "nope"}, "duration""#,
            ),
            "expect.invariant",
        ),
        (
            "unchecked.json",
            base.replace("\"duration\"", r#""unchecked": ["nope"], "duration""#),
            "unchecked[0]",
        ),
        (
            "unchecked-expected.json",
            base.replace(
                "\"duration\"",
                r#""unchecked": ["liveness"], "expect": {"outcome": "violation", "invariant": "liveness"}, "duration""#,
            ),
            "unchecked[0]",
        ),
    ];
    let zk = r#"{"version": 1, "name": "z", "system": {"kind": "zookeeper", "servers": 3,
                 "clients": 2}, "duration": "1s"}"#;
    let zk_cases: Vec<(&str, String, &str)> = vec![
        ("zk-servers.json", zk.replace("\"servers\": 3", "\"servers\": 8"), "system.servers"),
        (
            "zk-typo.json",
            zk.replace("\"clients\": 2", r#""clients": 2, "zoo_cfg": {"tickTim": 5}"#),
            "system.zoo_cfg.tickTim",
        ),
        (
            "zk-bug-mode.json",
            zk.replace(
                "\"clients\": 2",
                r#""clients": 2, "zoo_cfg": {"bugModes": ["ZOOKEEPER-1"]}"#,
            ),
            "system.zoo_cfg.bugModes[0]",
        ),
        (
            "zk-writers.json",
            zk.replace("\"clients\": 2", "\"clients\": 2, \"workload\": {\"writers\": 5}"),
            "system.workload.writers",
        ),
        (
            "zk-session.json",
            zk.replace(
                "\"clients\": 2",
                r#""clients": 2, "zoo_cfg": {"minSessionTimeout": 900, "maxSessionTimeout": 10}"#,
            ),
            "system.zoo_cfg",
        ),
        (
            "zk-client-fault.json",
            zk.replace(
                "\"duration\"",
                r#""faults": [{"at": "1ms", "action": {"type": "crash", "node": "c0"}}], "duration""#,
            ),
            "faults[0].action",
        ),
    ];
    for (file, text, path) in cases.into_iter().chain(zk_cases) {
        let p = bad_scenario(&dir, file, &text);
        let o = run(&["run", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(file), "{file}: message names the file: {err}");
        if file != "syntax.json" {
            assert!(
                err.contains(&format!("at {path}")),
                "{file}: names {path}: {err}"
            );
        }
        assert!(!err.contains("panicked"), "{file}: {err}");
    }
    let missing = run(&["run", "/nonexistent/scenario.json"]);
    assert_eq!(missing.status.code(), Some(2));
    let bad_range = run(&[
        "fuzz",
        scenario("counter-basic.json").to_str().unwrap(),
        "--seeds",
        "9..3",
    ]);
    assert_eq!(bad_range.status.code(), Some(2));
    let bad_report = bad_scenario(&dir, "report.json", "{\"format\": 3}");
    let o = run(&["replay", bad_report.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn every_bundled_scenario_parses() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).unwrap()
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Every seed's run, in seed order (two threads, no reports).
fn fuzz_runs(s: &Scenario, seeds: std::ops::Range<u64>) -> Vec<campaign::SeedRun> {
    let mut runs = Vec::new();
    let summary = campaign::fuzz(
        s,
        seeds.clone(),
        &campaign::FuzzOptions::jobs(2),
        &mut |f| runs.push(f.run),
    );
    assert_eq!(summary.covered, seeds);
    runs
}

#[test]
fn counter_passes_hundreds_of_seeds_and_its_bug_modes_are_caught() {
    // Goal: the correct protocol passes every seed under the nemesis, and each bug mode
    // trips the invariant its scenario names (so the invariants are not vacuous).
    let ok = Scenario::load(&scenario("counter-basic.json")).unwrap();
    let runs = fuzz_runs(&ok, 0..300);
    let failing: Vec<_> = runs.iter().filter(|r| r.failed()).map(|r| r.seed).collect();
    assert!(failing.is_empty(), "false alarms on seeds {failing:?}");
    assert!(runs.iter().map(|r| r.outcome.applied.len()).sum::<usize>() > 1000);
    for file in [
        "counter-bug-gossip-before-fsync.json",
        "counter-bug-merge-overwrites.json",
    ] {
        let bad = Scenario::load(&scenario(file)).unwrap();
        let Expectation::Violation { invariant } = &bad.expect else {
            panic!("{file} expects a violation");
        };
        let runs = fuzz_runs(&bad, 0..20);
        let caught = runs
            .iter()
            .filter(|r| {
                r.outcome
                    .violations
                    .iter()
                    .any(|v| &v.invariant == invariant)
            })
            .count();
        assert!(caught >= 15, "{file}: caught on {caught} of 20 seeds");
        // The same scenario with the bug off passes.
        let mut fixed = bad.clone();
        #[allow(irrefutable_let_patterns)]
        let faultline::scenario::SystemSpec::Counter(c) = &mut fixed.system
        else {
            unreachable!("counter scenarios")
        };
        c.bug_modes.clear();
        let runs = fuzz_runs(&fixed, 0..20);
        assert!(
            runs.iter().all(|r| !r.failed()),
            "{file} without the bug fails"
        );
    }
}

/// A node that panics on its third timer, to show a panic is one seed's failure.
struct Fragile {
    ticks: u32,
}

impl Node for Fragile {
    type Msg = u8;
    fn on_event(&mut self, ctx: &mut Context<'_, u8>, event: Event<u8>) {
        if let Event::Timer { .. } | Event::Start { .. } = event {
            self.ticks += 1;
            assert!(
                self.ticks < 3,
                "fragile node gave up after {} ticks",
                self.ticks
            );
            ctx.set_timer(1_000_000, 0);
        }
    }
}

struct FragileSystem;

impl System for FragileSystem {
    type Node = Fragile;
    type Msg = u8;
    fn names(&self) -> Vec<String> {
        vec!["f0".into()]
    }
    fn factory(&self) -> Box<dyn FnMut(NodeId) -> Fragile> {
        Box::new(|_| Fragile { ticks: 0 })
    }
    fn resolve_role(&self, _: &str, _: &Sim<Fragile>) -> Vec<NodeId> {
        Vec::new()
    }
    fn fault_targets(&self) -> Vec<NodeId> {
        vec![NodeId(0)]
    }
    fn after_event(&mut self, _: &Sim<Fragile>, _: NodeId) -> Vec<Violation> {
        Vec::new()
    }
    fn begin_liveness(&mut self, _: &Sim<Fragile>) {}
    fn pending(&mut self, _: &Sim<Fragile>) -> Option<String> {
        None
    }
    fn finish(&mut self, _: &Sim<Fragile>) -> Vec<Violation> {
        Vec::new()
    }
}

#[test]
fn a_panic_in_a_node_is_that_seeds_failure() {
    cluster::install_panic_hook();
    let s = Scenario::load(&scenario("counter-basic.json")).unwrap();
    let outcome = cluster::drive(
        FragileSystem,
        &s,
        5,
        &Schedule::default(),
        &RunOptions::default(),
    );
    assert_eq!(outcome.violations.len(), 1);
    let v = &outcome.violations[0];
    assert_eq!(v.kind, FailureKind::Panic);
    assert!(v.message.contains("fragile node gave up"), "{}", v.message);
    assert!(
        v.message.contains("tests/cli.rs"),
        "location recorded: {}",
        v.message
    );
    assert_eq!(v.at_ns, 2_000_000);
}

/// Runs `fuzz --json` for one shard and saves its output; returns the file.
fn fuzz_shard(dir: &Path, scenario_file: &str, seeds: &str, shard: &str) -> PathBuf {
    let s = scenario(scenario_file);
    let reports = dir.join("reports");
    let o = run(&[
        "fuzz",
        s.to_str().unwrap(),
        "--seeds",
        seeds,
        "--shard",
        shard,
        "--jobs",
        "1",
        "--no-shrink",
        "--json",
        "--reports",
        reports.to_str().unwrap(),
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let path = dir.join(format!("shard-{}.jsonl", shard.replace('/', "-of-")));
    std::fs::write(&path, &o.stdout).unwrap();
    path
}

#[test]
fn merge_combines_shard_summaries_into_one_summary_and_junit() {
    // Goal: the shards of a range merge into one summary covering it exactly once, with a
    // JUnit file and the exit code of the whole; inputs that do not fit are exit code 2.
    let dir = temp_dir("merge");
    let clean: Vec<PathBuf> = (0..3)
        .map(|i| fuzz_shard(&dir, "counter-basic.json", "0..30", &format!("{i}/3")))
        .collect();
    let junit = dir.join("junit.xml");
    let mut args = vec!["merge", "--json", "--junit", junit.to_str().unwrap()];
    args.extend(clean.iter().map(|p| p.to_str().unwrap()));
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let merged: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(merged["covered_ranges"], serde_json::json!(["0..30"]));
    assert_eq!(merged["complete"], true);
    assert_eq!(merged["seeds_run"], 30);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("name=\"seeds 0..30\""), "{xml}");
    assert!(xml.contains("failures=\"0\""));
    // A missing shard and a shard given twice are input errors.
    let o = run(&[
        "merge",
        clean[0].to_str().unwrap(),
        clean[2].to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("1/3"), "{}", stderr(&o));
    let twice = [&clean[0], &clean[0], &clean[1], &clean[2]].map(|p| p.to_str().unwrap());
    let o = run(&[&["merge"][..], &twice[..]].concat());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("overlap"), "{}", stderr(&o));
    // Failing shards: exit 1, every failing seed listed once, a JUnit failure each.
    let bad: Vec<PathBuf> = (0..2)
        .map(|i| {
            fuzz_shard(
                &dir,
                "counter-bug-gossip-before-fsync.json",
                "0..6",
                &format!("{i}/2"),
            )
        })
        .collect();
    let mut args = vec!["merge", "--json", "--junit", junit.to_str().unwrap()];
    args.extend(bad.iter().map(|p| p.to_str().unwrap()));
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let merged: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let failed = merged["failed"].as_u64().unwrap();
    assert!(failed > 0);
    assert_eq!(merged["failing"].as_array().unwrap().len() as u64, failed);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure ").count() as u64, failed);
    assert!(xml.contains("replay: faultline replay "));
}

/// The word after `flag` in a command line, without quotes.
fn flag_value<'a>(command: &'a str, flag: &str) -> &'a str {
    let at = command
        .find(flag)
        .unwrap_or_else(|| panic!("{flag} in {command}"))
        + flag.len();
    command[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
}

/// Checks that shards `0..count` of `seeds`, as the fuzz command cuts them, cover the range
/// exactly once.
fn assert_shards_cover(seeds: &str, count: u64) {
    let whole = campaign::shard::parse_range(seeds).unwrap();
    let mut next = whole.start;
    for i in 0..count {
        let shard = format!("{i}/{count}");
        let plan = faultline::cli::fuzz::seed_plan(seeds, Some(&shard), || unreachable!())
            .unwrap_or_else(|e| panic!("{shard}: {e}"));
        assert_eq!(
            plan.range.start, next,
            "shard {shard} starts where {i}-1 ended"
        );
        next = plan.range.end;
    }
    assert_eq!(next, whole.end, "the last shard ends the range");
}

#[test]
fn ci_recipes_parse_and_their_shards_cover_the_range_exactly_once() {
    // Goal: the recipes in recipes/ are valid YAML of the right shape, and the shards they
    // start (matrix entries, Indexed Job completions) cover a seed range exactly once.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recipes");
    let read = |name: &str| -> serde_yaml::Value {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let gha = read("github-actions-fuzz.yml");
    let jobs = &gha["jobs"];
    let matrix: Vec<u64> = jobs["fuzz"]["strategy"]["matrix"]["shard"]
        .as_sequence()
        .expect("a shard matrix")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let count = matrix.len() as u64;
    assert_eq!(matrix, (0..count).collect::<Vec<_>>());
    let steps = jobs["fuzz"]["steps"].as_sequence().unwrap();
    let command = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("faultline fuzz"))
        .expect("a fuzz step");
    let shard = format!("--shard ${{{{ matrix.shard }}}}/{count} ");
    assert!(command.contains(&shard), "{shard} in {command}");
    assert!(command.contains("--json") && command.contains("--reports"));
    assert_eq!(jobs["merge"]["needs"], "fuzz");
    assert_eq!(jobs["merge"]["if"], "always()");
    let merge = jobs["merge"]["steps"].as_sequence().unwrap();
    assert!(merge
        .iter()
        .filter_map(|s| s["run"].as_str())
        .any(|r| r.contains("faultline merge") && r.contains("--junit")));
    // The plan job draws the range at run time: check the cut on a few ranges.
    for seeds in ["0..400000", "281474976710000..281474976710655", "7..10"] {
        assert_shards_cover(seeds, count);
    }
    let k8s = read("kubernetes-indexed-job.yaml");
    assert_eq!(k8s["kind"], "Job");
    let spec = &k8s["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let completions = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(completions));
    let container = &spec["template"]["spec"]["containers"][0];
    let command = container["args"][0].as_str().unwrap();
    assert_eq!(
        flag_value(command, "--shard"),
        format!("$JOB_COMPLETION_INDEX/{completions}")
    );
    assert!(command.contains("shard-$JOB_COMPLETION_INDEX.jsonl"));
    assert_shards_cover(flag_value(command, "--seeds"), completions);
}
