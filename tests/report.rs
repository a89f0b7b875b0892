//! Reports with pictures: capturing a run never changes it, the picture of a failing run has
//! the lanes, roles, faults, messages, operations, violating event and witness it should, the
//! HTML explains the invariant, a report re-renders from its JSON alone, and a shrunk report
//! carries the same diagram.

use std::path::{Path, PathBuf};

use faultline::campaign;
use faultline::cluster::capture::Mark;
use faultline::cluster::{self, RunOptions};
use faultline::report::{html, Report};
use faultline::scenario::{Scenario, Schedule};

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&path).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Capture only reads what the kernel decided: the same seed gives the same hash, events and
/// verdict with it on or off, and normal runs carry no capture.
#[test]
fn capture_never_changes_the_run() {
    let cases = [
        ("counter-partition-heal.json", 3),
        ("zk-nemesis.json", 1),
        ("zk-nemesis-5.json", 2),
        ("zk-bug-ZOOKEEPER-1675.json", 1),
        ("zk-one-way-partition.json", 1),
    ];
    for (file, seed) in cases {
        let scenario = load(file);
        let schedule = Schedule::generate(&scenario, seed);
        let plain = cluster::run(&scenario, seed, &schedule, &RunOptions::default());
        let options = RunOptions {
            capture: true,
            ..RunOptions::default()
        };
        let captured = cluster::run(&scenario, seed, &schedule, &options);
        assert_eq!(plain.trace_hash, captured.trace_hash, "{file}");
        assert_eq!(plain.events, captured.events, "{file}");
        assert_eq!(plain.violations, captured.violations, "{file}");
        assert!(plain.capture.is_none(), "{file}: a normal run captured");
        let c = captured.capture.expect("captured");
        let delivered = c
            .kernel
            .messages
            .iter()
            .filter(|m| m.delivered_ns.is_some());
        assert_eq!(
            delivered.count() as u64,
            captured.stats.messages_delivered,
            "{file}: every delivered message is captured once"
        );
    }
}

#[test]
fn the_picture_of_zookeeper_1675_shows_the_stale_read() {
    let scenario = load("zk-bug-ZOOKEEPER-1675.json");
    let dir = temp_dir("1675");
    let run = campaign::run_seed(&scenario, 1, None);
    let path = campaign::write_report("zk-bug-ZOOKEEPER-1675.json", &scenario, &run, &dir).unwrap();
    let report = Report::load(&path).unwrap();
    let p = report
        .picture
        .as_ref()
        .expect("a report re-run is captured");
    let names: Vec<&str> = p.lanes.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names[..5], ["zk0", "zk1", "zk2", "zk3", "zk4"]);
    assert_eq!(p.lanes.iter().filter(|l| l.kind == "client").count(), 8);
    // The stale sync+read of c5 is the violating event, inside the window.
    assert_eq!(p.bad.lane, Some(10), "c5 is lane 10");
    assert!(p.window_from_ns < p.bad.at_ns && p.bad.at_ns <= p.window_to_ns);
    assert!(
        p.bad.at_ns < report.violations[0].at_ns,
        "found at the end, happened before"
    );
    // The partition shades the minority side only.
    let partition = p.faults.iter().find(|f| f.kind == "partition").unwrap();
    let mut cut = partition.lanes.clone();
    cut.sort();
    assert_eq!(cut, vec![3, 4, 10, 11, 12], "zk3 zk4 c5 c6 c7");
    assert_eq!(partition.from_ns, 2_050_000_000);
    assert_eq!(partition.to_ns, 5_050_000_000);
    // Roles: someone leads in epoch 2 inside the majority, and messages fill the window.
    assert!(p
        .roles
        .iter()
        .any(|r| r.role.name == "LEADING" && r.role.epoch == 2));
    assert!(p.messages.len() > 50);
    assert!(p.messages.iter().all(|m| m.summary.len() <= 204));
    assert!(p.ops.iter().all(|o| o.key == "/k1") && !p.ops.is_empty());
    // The witness: the culprit on c5 and the write it missed as evidence.
    let w = p.witness.as_ref().expect("a witness");
    assert_eq!(w.invariant, "zk-sync-read");
    let culprit: Vec<_> = w.ops.iter().filter(|o| o.mark == Mark::Culprit).collect();
    assert_eq!(culprit.len(), 1);
    assert_eq!(culprit[0].op.node, 10);
    let evidence: Vec<_> = w.ops.iter().filter(|o| o.mark == Mark::Evidence).collect();
    assert_eq!(evidence.len(), 1);
    assert!(
        evidence[0].op.label.contains("setData"),
        "{}",
        evidence[0].op.label
    );

    // The HTML explains the invariant and names the active fault, and renders again from
    // the JSON alone.
    let page = std::fs::read_to_string(path.with_extension("html")).unwrap();
    assert!(page.contains("What was violated"));
    assert!(page.contains("A read right after a sync sees every write"));
    assert!(page.contains("partition [zk4 zk3 c5 c6 c7 | zk0"));
    assert!(!page.contains("<script"), "no scripts");
    assert!(
        !page.contains("http://") || !page.contains("src=\"http"),
        "no external files"
    );
    assert_eq!(html::render(&report), page);
}

/// A shrunk report goes through the same captured re-run: it has the diagram too.
#[test]
fn a_shrunk_report_has_the_diagram() {
    let scenario = load("zk-bug-ZOOKEEPER-1675.json");
    let schedule = Schedule::generate(&scenario, scenario.seed);
    let run = campaign::run_seed(&scenario, scenario.seed, Some(schedule.clone()));
    assert!(run.failed());
    let dir = temp_dir("shrunk");
    let invariant = &run.outcome.violations[0].invariant;
    let seed = scenario.seed;
    let (_, _, path) =
        campaign::shrink_and_report("x.json", &scenario, seed, &schedule, invariant, &dir)
            .unwrap()
            .expect("the shrinker writes a report");
    let report = Report::load(&path).unwrap();
    assert!(report.picture.is_some());
    let page = std::fs::read_to_string(path.with_extension("html")).unwrap();
    assert!(page.contains("<svg class=\"spacetime\""));
}

fn bin(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// `run --trace FILE`: every delivered event as a JSON line, sends linked to deliveries by
/// message id, and a ShiViz log whose vector clocks count each node's events from 1.
#[test]
fn run_trace_writes_json_lines_and_a_shiviz_log() {
    let dir = temp_dir("trace");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.jsonl");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/zk-basic.json");
    let out = bin(&[
        "run",
        scenario.to_str().unwrap(),
        "--json",
        "--trace",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events = rows.iter().filter(|r| r["type"] == "event").count() as u64;
    assert_eq!(
        events,
        summary["events"].as_u64().unwrap(),
        "one line per delivered event"
    );
    // Sends on no connection at all are counted by the kernel but have no destination.
    let sends = rows.iter().filter(|r| r["type"] == "send").count() as u64;
    let delivered = rows
        .iter()
        .filter(|r| r["type"] == "event" && r["msg"].is_u64())
        .count();
    assert_eq!(
        delivered as u64,
        summary["stats"]["messages_delivered"].as_u64().unwrap()
    );
    assert!(sends <= summary["stats"]["messages_sent"].as_u64().unwrap());
    assert!(sends >= delivered as u64 && delivered > 100);
    let times: Vec<u64> = rows.iter().map(|r| r["t_ns"].as_u64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "lines in time order"
    );

    let shiviz = std::fs::read_to_string(format!("{}.shiviz", file.display())).unwrap();
    let lines: Vec<&str> = shiviz.lines().collect();
    assert_eq!(lines[0], faultline::report::export::SHIVIZ_REGEX);
    assert_eq!(lines[1], "");
    // Each node's own clock entry counts 1, 2, 3, ... over its events.
    let mut own: std::collections::BTreeMap<String, u64> = Default::default();
    for pair in lines[2..].chunks(2) {
        let (host, clock) = pair[1].split_once(' ').unwrap();
        let clock: serde_json::Value = serde_json::from_str(clock).unwrap();
        let n = own.entry(host.to_string()).or_insert(0);
        *n += 1;
        assert_eq!(clock[host].as_u64(), Some(*n), "{host}: {}", pair[1]);
    }
}

/// `check --export`: a faultline history written as a Jepsen log gets the same verdict there;
/// an operation the format cannot carry is bad input (exit 2).
#[test]
fn check_export_round_trips_through_the_peer_format() {
    let dir = temp_dir("export");
    std::fs::create_dir_all(&dir).unwrap();
    let history = dir.join("h.json");
    std::fs::write(
        &history,
        r#"{"ops": [
 {"process": 0, "invoke_ns": 10, "complete_ns": 20, "outcome": "ok",
  "call": {"f": "write", "value": 1}, "ret": {"type": "done"}},
 {"process": 1, "invoke_ns": 30, "complete_ns": 40, "outcome": "ok",
  "call": {"f": "read"}, "ret": {"type": "value", "value": null}}]}"#,
    )
    .unwrap();
    let log = dir.join("h.log");
    let h = history.to_str().unwrap();
    let out = bin(&[
        "check",
        h,
        "--format",
        "json",
        "--export",
        "etcd",
        "--output",
        log.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = bin(&["check", h, "--format", "json", "--model", "register"]);
    let theirs = bin(&[
        "check",
        log.to_str().unwrap(),
        "--format",
        "etcd",
        "--model",
        "register",
    ]);
    assert_eq!(ours.status.code(), Some(1), "the stale read is caught");
    assert_eq!(theirs.status.code(), ours.status.code());
    let bad = bin(&["check", h, "--format", "json", "--export", "kv"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a key-value operation"));
}

/// A Kafka run's captured operations include the brokers' own ZooKeeper operations, on the
/// broker lanes, beside the producers' and consumers': a broker ZooKeeper violation's
/// diagram draws the operations on its znode.
#[test]
fn a_kafka_capture_draws_the_brokers_zookeeper_operations() {
    let scenario = load("kafka-basic.json");
    let schedule = Schedule::generate(&scenario, 1);
    let options = RunOptions {
        capture: true,
        ..RunOptions::default()
    };
    let run = cluster::run(&scenario, 1, &schedule, &options);
    let c = run.capture.expect("captured");
    let znode_ops: Vec<_> = c.ops.iter().filter(|o| o.key.starts_with('/')).collect();
    let client_lanes: std::collections::BTreeSet<u32> = c
        .ops
        .iter()
        .filter(|o| !o.key.starts_with('/'))
        .map(|o| o.node)
        .collect();
    assert!(
        znode_ops.iter().any(|o| o.key == "/controller"),
        "every broker tries to create /controller: {znode_ops:?}"
    );
    assert!(
        znode_ops.iter().any(|o| o.key.starts_with("/brokers/ids/")),
        "brokers register"
    );
    assert!(
        !client_lanes.is_empty(),
        "producers and consumers recorded too"
    );
    assert!(
        znode_ops.iter().all(|o| !client_lanes.contains(&o.node)),
        "ZooKeeper operations sit on broker lanes, not client lanes"
    );
    let invoked: Vec<u64> = c.ops.iter().map(|o| o.invoke_ns).collect();
    assert!(
        invoked.windows(2).all(|w| w[0] <= w[1]),
        "in invocation order"
    );
}
