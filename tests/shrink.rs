//! Shrinking: a failing run shrinks to the few faults its bug needs, keeps its invariant,
//! stays within its budget of re-runs, and is written as a plain scenario file with an
//! explicit schedule that `faultline run` replays to the same violation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline::campaign::{self, shrink};
use faultline::scenario::{Expectation, Scenario, Schedule};

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

fn load(name: &str) -> Scenario {
    Scenario::load(&scenario_path(name)).expect("scenario loads")
}

fn expected_invariant(s: &Scenario) -> String {
    let Expectation::Violation { invariant } = &s.expect else {
        panic!("{} must expect a violation", s.name);
    };
    invariant.clone()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-shrink-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value after `key` on the last line of `text` that starts with it ("scenario   X"):
/// the shrink's lines come after the run's own.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{text}"))
}

#[test]
fn every_zookeeper_bug_mode_shrinks_to_at_most_five_faults_with_its_invariant() {
    // Goal: the essence. Each bug mode's nemesis run (20-odd random faults) shrinks to the
    // few faults the bug needs, and the shrunk run still fails first on the same invariant.
    let files = [
        "zk-bug-ZOOKEEPER-1419.json",
        "zk-bug-ZOOKEEPER-2355.json",
        "zk-bug-ZOOKEEPER-2845.json",
        "zk-bug-ZOOKEEPER-3911.json",
        "zk-bug-ZOOKEEPER-4643.json",
        "zk-bug-ZOOKEEPER-4646.json",
    ];
    for file in files {
        let s = load(file);
        let invariant = expected_invariant(&s);
        let schedule = Schedule::generate(&s, s.seed);
        let shrunk = shrink::shrink(&s, s.seed, &schedule, &invariant, shrink::DEFAULT_MAX_RUNS)
            .unwrap_or_else(|| panic!("{file}: the default seed does not fail"));
        let first = &shrunk.outcome.violations[0].invariant;
        assert_eq!(first, &invariant, "{file}: a different failure");
        assert!(
            schedule.faults.len() > 10,
            "{file}: the nemesis drew {} faults",
            schedule.faults.len()
        );
        assert!(
            shrunk.schedule.faults.len() <= 5,
            "{file}: {} -> {} faults ({:?})",
            schedule.faults.len(),
            shrunk.schedule.faults.len(),
            shrunk.steps
        );
        assert!(shrunk.runs <= shrink::DEFAULT_MAX_RUNS && !shrunk.budget_spent);
        assert!(shrunk.scenario.nemesis.is_none());
        assert_eq!(shrunk.scenario.faults, shrunk.schedule.faults);
        assert_eq!(shrunk.scenario.seed, s.seed);
    }
}

#[test]
fn the_shrunk_scenario_file_replays_to_the_same_violation() {
    // Goal: the shrunk result is a plain scenario a person can run and edit. `faultline run`
    // on it (no --seed, no report needed) gives the shrunk run exactly: same trace, same
    // invariant, and its report replays identically.
    let dir = temp_dir("replay");
    let file = scenario_path("zk-bug-ZOOKEEPER-2355.json");
    let seed = load("zk-bug-ZOOKEEPER-2355.json").seed;
    let o = faultline(&[
        "run",
        file.to_str().unwrap(),
        "--reports",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    let scenario_file = field(&text, "scenario   ");
    let suffix = format!("-shrunk-seed{seed}.scenario.json");
    assert!(scenario_file.ends_with(&suffix), "{text}");
    let run_command = field(&text, "run        ");
    assert_eq!(run_command, format!("faultline run {scenario_file}"));
    let shrunk_report = dir.join(format!("zk-bug-ZOOKEEPER-2355-shrunk-seed{seed}.json"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&shrunk_report).expect("shrunk report"))
            .expect("JSON");
    assert_eq!(
        report["scenario_file"].as_str(),
        Some(scenario_file.as_str())
    );
    let md = std::fs::read_to_string(shrunk_report.with_extension("md")).expect("markdown");
    assert!(
        md.contains(&format!("faultline run {scenario_file}")),
        "{md}"
    );

    // The file is a plain scenario: explicit faults, nemesis off, the seed as default.
    let shrunk = Scenario::load(Path::new(&scenario_file)).expect("a valid scenario");
    assert!(shrunk.nemesis.is_none());
    assert!(!shrunk.faults.is_empty() && shrunk.faults.len() <= 5);
    assert_eq!(shrunk.seed, seed);

    let again = faultline(
        &["run", &scenario_file, "--json", "--no-shrink", "--reports"]
            .into_iter()
            .chain([dir.join("again").to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert_eq!(again.status.code(), Some(1), "{}", stdout(&again));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&again)).expect("JSON");
    assert_eq!(summary["trace_hash"], report["trace_hash"]);
    assert_eq!(
        summary["violations"][0]["invariant"], "zab-process-consistency",
        "{summary}"
    );
    let replay = faultline(&["replay", shrunk_report.to_str().unwrap()]);
    assert!(
        stdout(&replay).contains("replay     identical"),
        "{}",
        stdout(&replay)
    );
}

#[test]
fn the_shrink_command_keeps_the_invariant_and_its_budget() {
    // Goal: `faultline shrink REPORT` works from a report alone, names the scenario file and
    // its run command, and never spends more re-runs than --max-runs.
    let dir = temp_dir("command");
    let file = scenario_path("zk-bug-ZOOKEEPER-4646.json");
    let o = faultline(&[
        "run",
        file.to_str().unwrap(),
        "--no-shrink",
        "--reports",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let seed = load("zk-bug-ZOOKEEPER-4646.json").seed;
    let report = dir.join(format!("zk-bug-ZOOKEEPER-4646-seed{seed}.json"));
    let budget = faultline(&["shrink", report.to_str().unwrap(), "--max-runs", "7"]);
    let text = stdout(&budget);
    assert_eq!(budget.status.code(), Some(1), "{text}");
    assert!(text.contains("re-runs    7 in"), "{text}");
    assert!(text.contains("budget spent"), "{text}");

    let full = faultline(&["shrink", report.to_str().unwrap()]);
    let text = stdout(&full);
    assert_eq!(full.status.code(), Some(1), "{text}");
    assert!(
        text.contains("same violation (zab-commit-quorum-durable)"),
        "{text}"
    );
    let counts = field(&text, "shrunk     ");
    let after: usize = counts
        .split(" -> ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a fault count");
    assert!(after <= 5, "{text}");
    let scenario_file = field(&text, "scenario   ");
    let shrunk = Scenario::load(Path::new(&scenario_file)).expect("valid");
    assert_eq!(shrunk.faults.len(), after);
    assert_eq!(
        field(&text, "run        "),
        format!("faultline run {scenario_file}")
    );
}

#[test]
fn a_run_that_does_not_fail_that_way_is_not_shrunk() {
    // Goal: shrinking never invents a failure: an invariant the run does not violate gives
    // nothing, and so does a passing run.
    let s = load("zk-bug-ZOOKEEPER-2845.json");
    let schedule = Schedule::generate(&s, s.seed);
    assert!(shrink::shrink(&s, s.seed, &schedule, "zk-sync-read", 50).is_none());
    let pass = load("zk-nemesis.json");
    let schedule = Schedule::generate(&pass, 3);
    let dir = temp_dir("none");
    let result =
        campaign::shrink_and_report("x.json", &pass, 3, &schedule, "zab-digest-agreement", &dir)
            .expect("no io error");
    assert!(result.is_none());
}
