//! End-to-end tests of the Kafka world: its scenarios pass for a few seeds, a seed gives the
//! same trace in two processes, and bad Kafka scenario input is refused with the field named
//! and exit code 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline::cluster::{self, RunOptions};
use faultline::scenario::{Expectation, Scenario, Schedule};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
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

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-kafka-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

const GOOD_SYSTEM: &str = r#""kind": "kafka", "brokers": 3,
    "topics": [{"name": "t", "partitions": 2, "replication.factor": 3}]"#;

fn kafka_scenario(system: &str, faults: &str) -> String {
    format!(
        r#"{{"version": 1, "name": "k", "system": {{{system}}}, "faults": [{faults}],
            "duration": "5s"}}"#
    )
}

#[test]
fn bad_kafka_input_names_the_field_and_exits_2() {
    let cases = [
        (
            kafka_scenario(&GOOD_SYSTEM.replace("\"brokers\": 3", "\"brokers\": 0"), ""),
            "system.brokers",
        ),
        (
            kafka_scenario(
                &format!(r#"{GOOD_SYSTEM}, "server_properties": {{"min.isr": 2}}"#),
                "",
            ),
            "min.isr",
        ),
        (
            kafka_scenario(&format!(r#"{GOOD_SYSTEM}, "producer": {{"acks": 1}}"#), ""),
            "enable.idempotence requires acks=all",
        ),
        (
            kafka_scenario(
                GOOD_SYSTEM,
                r#"{"at": "1s", "action": {"type": "crash", "node": "@partition-leader:t-2"}}"#,
            ),
            "faults[0].action",
        ),
        (
            kafka_scenario(
                GOOD_SYSTEM,
                r#"{"at": "1s", "action": {"type": "crash", "node": "p0"}}"#,
            ),
            "unknown node \"p0\"",
        ),
        (
            kafka_scenario(
                &GOOD_SYSTEM.replace("\"replication.factor\": 3", "\"replication.factor\": 4"),
                "",
            ),
            "system.topics[0]",
        ),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let path = temp_file(&format!("bad{i}.json"), text);
        let out = run(&["run", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "case {i}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "case {i}: {needle:?} not in {}",
            stderr(&out)
        );
    }
}

#[test]
fn kafka_roles_and_names_are_accepted() {
    let faults = r#"{"at": "1s", "action": {"type": "crash", "node": "@partition-leader:t-1"}},
        {"at": "2s", "action": {"type": "crash", "node": "@controller"}},
        {"at": "3s", "action": {"type": "crash", "node": "@zk-leader"}},
        {"at": "3s", "action": {"type": "partition", "groups": [["kafka1", "p0"], ["zk0"]]}}"#;
    let s = Scenario::from_json(&kafka_scenario(GOOD_SYSTEM, faults), "k.json").unwrap();
    assert_eq!(s.system.kind(), "kafka");
    assert_eq!(
        s.system.node_names(),
        ["zk0", "zk1", "zk2", "kafka0", "kafka1", "kafka2", "p0", "p1", "c0"]
    );
    assert_eq!(s.system.fault_target_names().len(), 6);
}

#[test]
fn same_seed_in_two_processes_gives_the_same_trace() {
    let s = scenario("kafka-nemesis.json");
    let s = s.to_str().unwrap();
    let a = run(&["run", s, "--seed", "7", "--json", "--no-shrink"]);
    let b = run(&["run", s, "--seed", "7", "--json", "--no-shrink"]);
    assert_eq!(stdout(&a), stdout(&b));
    let v: serde_json::Value = serde_json::from_str(&stdout(&a)).expect("one JSON object");
    assert!(v["events"].as_u64().unwrap() > 1000, "{v}");
    let c = run(&["run", s, "--seed", "8", "--json", "--no-shrink"]);
    let w: serde_json::Value = serde_json::from_str(&stdout(&c)).unwrap();
    assert_ne!(
        v["trace_hash"], w["trace_hash"],
        "another seed, another run"
    );
}

fn kafka_scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("kafka-") && name.ends_with(".json")
        })
        .collect();
    names.sort();
    names
}

/// Runs seeds 1..=3 of each scenario; returns the failures, one line each.
fn failures(paths: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for path in paths {
        let s = Scenario::load(path).unwrap();
        for seed in 1..=3 {
            let schedule = Schedule::generate(&s, seed);
            let run = cluster::run(&s, seed, &schedule, &RunOptions::default());
            if let Some(v) = run.violations.first() {
                out.push(format!(
                    "{} seed {seed}: {}: {}",
                    s.name, v.invariant, v.message
                ));
            } else {
                assert!(
                    run.recovered_ns.is_some(),
                    "{} seed {seed} converged",
                    s.name
                );
            }
        }
    }
    out
}

/// The Kafka scenarios that pass today, each for a few seeds: no violation, converged.
#[test]
fn kafka_scenarios_pass_a_few_seeds() {
    let passing = [
        "kafka-basic",
        "kafka-broker-zk-session-expiry",
        "kafka-nemesis",
        "kafka-power-loss-flushed",
        "kafka-rolling-restarts",
        "kafka-whole-cluster-kill",
        "kafka-zk-leader-crash-during-leader-change",
    ];
    let paths: Vec<PathBuf> = passing
        .iter()
        .map(|n| scenario(&format!("{n}.json")))
        .collect();
    assert_eq!(failures(&paths), Vec::<String>::new());
}

/// Every Kafka scenario of issue 8, each a few seeds. Ignored until the open failures are
/// fixed (the producer completes sends out of order after a request timeout, which
/// `kafka-log` calls nonmonotonic-send; a stale ISR zkVersion after a lost setData answer
/// keeps the ISR from converging in `kafka-isr-churn`).
#[test]
#[ignore = "open failures in kafka-partition-leader-crash, -controller-failover, -isr-churn"]
fn all_kafka_scenarios_pass_a_few_seeds() {
    let paths = kafka_scenario_files();
    assert!(paths.len() >= 10, "{paths:?}");
    assert_eq!(failures(&paths), Vec::<String>::new());
}

/// Each `kafka-*` file in scenarios/regressions/ is a must-pass seed a campaign found
/// failing, kept with the explicit (shrunk) fault schedule that showed it; its description
/// names the mechanism and the fix. Each must now pass on its own seed (the neighbours of a
/// nemesis draw replay the same faults under other timings, which may meet open problems).
#[test]
fn kafka_regressions_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("kafka-") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no Kafka regression scenarios");
    for path in files {
        let s = Scenario::load(&path).unwrap();
        assert_eq!(s.expect, Expectation::Pass, "{}", path.display());
        assert!(!s.faults.is_empty(), "{}: explicit faults", path.display());
        let seed = s.seed;
        let schedule = Schedule::generate(&s, seed);
        let run = cluster::run(&s, seed, &schedule, &RunOptions::default());
        let v: Vec<String> = run
            .violations
            .iter()
            .map(|v| format!("{}: {}", v.invariant, v.message))
            .collect();
        assert!(v.is_empty(), "{} seed {seed}: {v:?}", path.display());
        assert!(
            run.recovered_ns.is_some(),
            "{} seed {seed} did not converge",
            path.display()
        );
    }
}

/// The brokers' own ZooKeeper operations go through the ZooKeeper checks: a normal run's
/// summary counts them, and `zk-history` checked some of them.
#[test]
fn a_kafka_run_checks_the_brokers_zookeeper_history() {
    let s = Scenario::load(&scenario("kafka-basic.json")).unwrap();
    let run = cluster::run(&s, 1, &Schedule::generate(&s, 1), &RunOptions::default());
    assert!(run.violations.is_empty(), "{:?}", run.violations);
    let zk = &run.system["broker_zk_history"];
    assert!(zk["ops"].as_u64().unwrap() > 20, "{zk}");
    assert!(zk["ok"].as_u64().unwrap() > 0, "{zk}");
    assert!(zk["history_checked_ops"].as_u64().unwrap() > 0, "{zk}");
    assert_eq!(zk["history_check"], "done", "{zk}");
}

/// ZooKeeper's own start-up refusal (ZOOKEEPER-2354) happens under Kafka too: on
/// kafka-nemesis seed 7309 zk2 halts in `loadDataBase` for good while the brokers, the
/// partitions and the clients converge on the other two servers. The run names the known
/// behaviour instead of a `k-convergence` failure; with a bound too short for the rest to
/// converge, the same refusal explains nothing and the failure stands.
#[test]
fn a_zookeeper_start_up_refusal_under_kafka_is_known_only_if_the_rest_converged() {
    let mut s = Scenario::load(&scenario("kafka-nemesis.json")).unwrap();
    let seed = 7309;
    let run = cluster::run(
        &s,
        seed,
        &Schedule::generate(&s, seed),
        &RunOptions::default(),
    );
    assert!(run.violations.is_empty(), "{:?}", run.violations);
    let k = run
        .known
        .first()
        .expect("the refusal explains the convergence failure");
    assert_eq!(k.name, "ZOOKEEPER-2354 start-up refusal");
    assert_eq!(k.explains.invariant, "k-convergence");
    assert!(
        k.explains.message.contains("zk2 is down"),
        "{}",
        k.explains.message
    );
    assert!(
        k.explanation.contains("zk2: start-up refused"),
        "{}",
        k.explanation
    );

    s.liveness_bound = faultline::sim::time::Dur(1_000_000_000);
    let short = cluster::run(
        &s,
        seed,
        &Schedule::generate(&s, seed),
        &RunOptions::default(),
    );
    assert!(short.known.is_empty(), "{:?}", short.known);
    assert!(
        short
            .violations
            .iter()
            .any(|v| v.invariant == "k-convergence"),
        "{:?}",
        short.violations
    );
}
