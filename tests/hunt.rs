//! The hunt: the fault shapes aimed at roles and protocol moments (opt-in, explicit in the
//! schedule, waiting for their moment, on distinct nodes), and the `faultline hunt`
//! scoreboard with its expectations check.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use faultline::campaign;
use faultline::scenario::{NemesisKind, Scenario, Schedule};
use faultline::sim::fault::FaultAction;

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

fn load(name: &str) -> Scenario {
    Scenario::load(&scenario_path(name)).expect("scenario loads")
}

fn hunt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("hunt")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("binary runs")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("faultline-hunt-{}-{name}", std::process::id()));
    std::fs::write(&path, text).expect("temp file");
    path
}

/// The hunt base with only `kinds` in its nemesis, swarm off.
fn hunt_base_with(kinds: &[NemesisKind]) -> Scenario {
    let mut s = load("zk-nemesis-hunt.json");
    let n = s.nemesis.as_mut().expect("nemesis");
    n.kinds = kinds.to_vec();
    n.swarm = false;
    s
}

#[test]
fn targeted_shapes_are_opt_in_and_never_drawn_for_an_empty_kind_list() {
    for k in NemesisKind::TARGETED {
        assert!(!NemesisKind::ALL.contains(&k), "{k:?} is in ALL");
    }
    let s = load("zk-nemesis.json");
    for seed in 0..200 {
        let schedule = Schedule::generate(&s, seed);
        assert!(schedule.faults.iter().all(|f| f.trigger.is_none()));
        let kinds = &schedule.nemesis.as_ref().expect("nemesis").kinds;
        assert!(kinds.iter().all(|k| !k.needs_zookeeper()), "seed {seed}");
    }
}

#[test]
fn targeted_shapes_are_explicit_triggered_and_deterministic() {
    let s = hunt_base_with(&NemesisKind::TARGETED);
    let a = Schedule::generate(&s, 5);
    assert_eq!(a, Schedule::generate(&s, 5));
    assert!(!a.faults.is_empty());
    for f in &a.faults {
        let trigger = f
            .trigger
            .expect("every targeted fault waits for its moment");
        assert_eq!(trigger.within, s.nemesis.as_ref().unwrap().interval_mean);
        match &f.action {
            FaultAction::Crash { node, .. } => assert_eq!(node, "@syncing"),
            FaultAction::CrashSet { nodes, .. } => {
                assert_eq!(nodes[0], "@leader");
                assert!(nodes[1] == "@syncing" || nodes[1] == "@unflushed");
            }
            FaultAction::IsolateGroup { nodes, .. } => {
                assert_eq!(nodes[0], "@leader");
                assert!(nodes[1..].iter().all(|n| n.starts_with('c')), "{nodes:?}");
                assert!(nodes.len() >= 2, "the leader keeps at least one client");
            }
            other => panic!("unexpected action {other:?}"),
        }
    }
}

#[test]
fn a_crash_of_the_leader_and_a_syncing_follower_waits_for_the_sync_and_hits_two_servers() {
    let s = hunt_base_with(&[NemesisKind::CrashLeaderAndSyncing]);
    let (mut fired, mut waited) = (0, 0);
    for seed in 0..6 {
        let run = campaign::run_seed(&s, seed, None);
        let scheduled: Vec<u64> = run.schedule.faults.iter().map(|f| f.at.ns()).collect();
        for a in &run.outcome.applied {
            if let FaultAction::CrashSet { nodes, .. } = &a.action {
                fired += 1;
                assert_eq!(nodes.len(), 2);
                assert_ne!(nodes[0], nodes[1], "seed {seed}: one server twice");
                // It fired at its moment: later than the latest scheduled time before it.
                let at = scheduled.iter().filter(|t| **t <= a.at_ns).max().copied();
                waited += (at.is_some_and(|t| a.at_ns > t)) as u32;
            }
        }
    }
    assert!(fired > 0, "no crash set ever found its moment");
    assert!(
        waited > 0,
        "every crash set fired at its scheduled time: no trigger"
    );
}

#[test]
fn a_triggered_fault_whose_moment_never_comes_is_skipped() {
    // "@syncing" never resolves in a run where nothing ever fails: the fault is skipped.
    let mut s = load("zk-basic.json");
    s.nemesis = None;
    s.faults = vec![faultline::scenario::TimedFault {
        at: faultline::sim::time::Dur::from_s(3),
        action: FaultAction::Crash {
            node: "@syncing".into(),
            restart_after: None,
        },
        trigger: Some(faultline::scenario::Trigger {
            within: faultline::sim::time::Dur::from_ms(500),
            delay: faultline::sim::time::Dur(0),
        }),
    }];
    let run = campaign::run_seed(&s, 1, None);
    assert!(run.outcome.applied.is_empty(), "{:?}", run.outcome.applied);
    assert!(run.outcome.violations.is_empty());
}

#[test]
fn targeted_kinds_on_a_counter_are_bad_input() {
    let text = r#"{"version": 1, "name": "c", "system": {"kind": "counter", "nodes": 3},
        "nemesis": {"kinds": ["crash_syncing"], "interval_mean": "1s", "hold_min": "1s",
        "hold_max": "1s"}, "duration": "5s"}"#;
    let path = temp_file("counter-targeted.json", text);
    let err = Scenario::load(&path).expect_err("rejected").to_string();
    assert!(err.contains("nemesis.kinds"), "{err}");
}

#[test]
fn hunt_prints_a_json_line_per_mode_and_a_table() {
    let out = hunt(&[
        "--base",
        "scenarios/counter-basic.json",
        "--seeds",
        "20",
        "--jobs",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let modes: Vec<&str> = lines.iter().map(|l| l["mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["gossip-before-fsync", "merge-overwrites"]);
    for l in &lines {
        assert_eq!(l["seeds_run"], 20);
        assert_eq!(l["system"], "counter");
        let failing = l["seeds_failing"].as_u64().unwrap();
        assert_eq!(l["first_failing_seed"].is_null(), failing == 0);
    }
    assert!(text.contains("| mode | system | seeds run |"), "{text}");
}

#[test]
fn hunt_expectations_fail_when_an_expected_mode_is_not_found() {
    let expect = temp_file(
        "expect.json",
        r#"{"seeds": 10, "found": {"merge-overwrites": 0, "gossip-before-fsync": 0}}"#,
    );
    let e = expect.to_str().unwrap();
    let base = [
        "--base",
        "scenarios/counter-basic.json",
        "--seeds",
        "10",
        "--json",
    ];
    let all = hunt(&[&base[..], &["--expect", e]].concat());
    assert_eq!(all.status.code(), Some(0), "{all:?}");
    // Only one mode run: the other expected one is a regression (exit 1, named).
    let one = hunt(&[&base[..], &["--expect", e, "--mode", "merge-overwrites"]].concat());
    assert_eq!(one.status.code(), Some(1), "{one:?}");
    assert!(String::from_utf8_lossy(&one.stderr).contains("gossip-before-fsync"));
    // Fewer seeds than the expectations were measured with: bad input.
    let few = hunt(&[
        "--base",
        "scenarios/counter-basic.json",
        "--seeds",
        "5",
        "--expect",
        e,
    ]);
    assert_eq!(few.status.code(), Some(2), "{few:?}");
}

#[test]
fn hunt_rejects_a_base_with_explicit_faults() {
    let out = hunt(&[
        "--base",
        "scenarios/zk-bug-ZOOKEEPER-1675.json",
        "--seeds",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no explicit faults"));
}

#[test]
fn hunt_figures_do_not_depend_on_threads_and_stop_after_cuts_a_prefix() {
    let s = load("counter-basic.json");
    let case = faultline::campaign::hunt::mode_cases(&s).remove(1);
    let one = campaign::hunt::score(&case, 40, 1, 2);
    let two = campaign::hunt::score(&case, 40, 2, 2);
    assert_eq!(
        (one.seeds_run, one.seeds_failing),
        (two.seeds_run, two.seeds_failing)
    );
    assert_eq!(one.invariants, two.invariants);
    assert_eq!(one.first_failing_seed, two.first_failing_seed);
    // Stopped at the second failing seed: the figures are those of that prefix.
    assert_eq!(one.seeds_failing, 2);
    assert!(one.seeds_run < 40, "{one:?}");
    assert_eq!(one.median_seeds_to_detection, two.median_seeds_to_detection);
}

#[test]
fn kafka_clogs_sometimes_wait_for_a_follower_rejoining_after_a_leader_change() {
    let mut s = Scenario::load(&scenario_path("kafka-nemesis-hunt.json")).expect("kafka base");
    let n = s.nemesis.as_mut().expect("a nemesis");
    n.kinds = vec![NemesisKind::Clog];
    n.swarm = false;
    let (mut plain, mut rejoining) = (0, 0);
    for seed in 0..20 {
        for f in Schedule::generate(&s, seed).faults {
            let FaultAction::Clog { node, .. } = &f.action else {
                panic!("unexpected action {f:?}");
            };
            if node == "@rejoining" {
                let t = f.trigger.expect("a moment's clog waits for it");
                assert_eq!(t.delay.ns(), 0, "it slows the follower from that instant");
                // The moment is rare: it waits for the rest of the fault phase.
                assert_eq!(f.at.ns() + t.within.ns(), s.duration.ns(), "{f:?}");
                rejoining += 1;
            } else {
                assert!(f.trigger.is_none(), "{f:?}");
                plain += 1;
            }
        }
    }
    assert!(plain > 0 && rejoining > 0, "{plain} {rejoining}");
    // A ZooKeeper world's clogs never wait for a Kafka moment.
    let mut z = Scenario::load(&scenario_path("zk-nemesis-hunt.json")).expect("zk base");
    z.nemesis.as_mut().unwrap().kinds = vec![NemesisKind::Clog];
    let moments = (0..20)
        .flat_map(|seed| Schedule::generate(&z, seed).faults)
        .filter(|f| f.trigger.is_some())
        .count();
    assert_eq!(moments, 0);
}

#[test]
fn expire_session_cuts_the_controller_or_a_leader_from_the_ensemble_past_the_session_timeout() {
    let mut s = Scenario::load(&scenario_path("kafka-nemesis-hunt.json")).expect("kafka base");
    let n = s.nemesis.as_mut().expect("a nemesis");
    n.kinds = vec![NemesisKind::ExpireSession];
    n.swarm = false;
    let zk = vec!["zk0".to_string(), "zk1".to_string(), "zk2".to_string()];
    let session_ns = 6_000_000_000u64;
    let (mut shapes, mut stops) = (0, 0);
    for seed in 0..20 {
        let faults = Schedule::generate(&s, seed).faults;
        for f in &faults {
            // A plain controller cut stops another broker while the controller is cut off,
            // before its session expires (KAFKA-6082's zombie handles its controlled
            // shutdown).
            if let FaultAction::Stop { node, .. } = &f.action {
                assert_eq!(node, "@non-controller");
                assert!(f.trigger.is_none());
                let during = faults.iter().any(|c| {
                    let (target, expires) = match &c.action {
                        FaultAction::OneWay { to, .. } => (&to[0], session_ns * 5 / 3),
                        FaultAction::Partition { groups, .. } => (&groups[0][0], session_ns),
                        _ => return false,
                    };
                    target == "@controller"
                        && c.at <= f.at
                        && f.at.ns() - c.at.ns() <= expires * 4 / 5
                });
                assert!(during, "{f:?} in {faults:?}");
                stops += 1;
                continue;
            }
            let f = f.clone();
            let aimed = |n: &str| {
                n == "@controller"
                    || n == "@controller-electing"
                    || n.starts_with("@partition-leader:orders-")
            };
            // The cuts at a controller's leader or ISR change wait for that moment.
            let target = match &f.action {
                FaultAction::OneWay { to, .. } => to[0].clone(),
                FaultAction::Partition { groups, .. } => groups[0][0].clone(),
                _ => String::new(),
            };
            assert_eq!(
                f.trigger.is_some(),
                target == "@controller-electing",
                "{f:?}"
            );
            match f.action {
                FaultAction::OneWay {
                    from,
                    to,
                    heal_after,
                } => {
                    assert_eq!(from, zk);
                    assert!(to.len() == 1 && aimed(&to[0]), "{to:?}");
                    assert!(heal_after.unwrap().ns() > session_ns * 5 / 3);
                }
                FaultAction::Partition {
                    groups,
                    heal_after,
                    silent,
                } => {
                    assert!(!silent);
                    assert_eq!(groups[1], zk);
                    assert!(groups[0].len() == 1 && aimed(&groups[0][0]), "{groups:?}");
                    assert!(heal_after.unwrap().ns() > session_ns);
                }
                other => panic!("unexpected action {other:?}"),
            }
            shapes += 1;
        }
    }
    assert!(shapes > 0, "no expire_session drawn in 20 seeds");
    assert!(
        stops > 0,
        "no controlled shutdown under a controller cut in 20 seeds"
    );
    let at_moment = (0..20)
        .flat_map(|seed| Schedule::generate(&s, seed).faults)
        .filter(|f| f.trigger.is_some())
        .count();
    assert!(
        at_moment > 0,
        "no cut at a controller's leader change in 20 seeds"
    );
    // A ZooKeeper world has no broker sessions to expire: refused with a clear message.
    let mut z = Scenario::load(&scenario_path("zk-nemesis-hunt.json")).expect("zk base");
    z.nemesis.as_mut().unwrap().kinds = vec![NemesisKind::ExpireSession];
    let err = Scenario::from_json(&z.canonical_json(), "zk-expire").expect_err("refused");
    let err = format!("{err:?}");
    assert!(err.contains("Kafka brokers' sessions"), "{err}");
}

/// The Kafka moments resolve in real runs, and only at their moment: a cut aimed at
/// `@controller-electing` waits for the controller (not the broker `@non-controller`
/// stopped) to handle a controlled shutdown, and a clog aimed at `@rejoining` waits, in KAFKA-7128's schedule,
/// for the power-cut leader (restarted at 6 s) to catch up across the leader change.
#[test]
fn kafka_moments_resolve_in_runs_at_their_moment() {
    use faultline::cluster::{self, RunOptions};
    let applied = |mut v: serde_json::Value, extra: serde_json::Value| {
        v.as_object_mut().unwrap().remove("nemesis");
        v["system"]["server_properties"]
            .as_object_mut()
            .unwrap()
            .remove("bugModes");
        v.as_object_mut().unwrap().remove("expect");
        let faults = v["faults"].as_array().cloned().unwrap_or_default();
        let mut all = faults;
        all.extend(extra.as_array().unwrap().iter().cloned());
        v["faults"] = serde_json::Value::Array(all);
        let s = Scenario::from_json(&v.to_string(), "moments").expect("valid");
        let schedule = Schedule::generate(&s, s.seed);
        cluster::run(&s, s.seed, &schedule, &RunOptions::default()).applied
    };
    let load = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(scenario_path(name)).unwrap()).unwrap()
    };
    let cut = serde_json::json!([
        {"at": "2s", "action": {"type": "stop", "node": "@non-controller", "restart_after": "1s"}},
        {"at": "1900ms", "action": {"type": "partition",
            "groups": [["@controller-electing"], ["zk0", "zk1", "zk2"]], "heal_after": "8s"},
         "trigger": {"within": "2s", "delay": "1ms"}}
    ]);
    let got = applied(load("kafka-nemesis-hunt.json"), cut);
    let fired: Vec<_> = got
        .iter()
        .filter_map(|f| match &f.action {
            FaultAction::Partition { groups, .. } if groups[1].len() == 3 => {
                Some((f.at_ns, groups[0].clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(fired.len(), 1, "{got:?}");
    let (at, side) = &fired[0];
    assert!((2_000_000_000..2_100_000_000).contains(at), "{at}");
    // "@non-controller" stopped a broker other than the controller, which then handled
    // its controlled shutdown.
    let stopped: Vec<_> = got
        .iter()
        .filter_map(|f| match &f.action {
            FaultAction::Stop { node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect();
    assert!(
        stopped.len() == 1 && stopped[0].starts_with("kafka"),
        "{got:?}"
    );
    assert!(side.len() == 1 && side[0].starts_with("kafka") && side[0] != stopped[0]);
    let clog = serde_json::json!([
        {"at": "5s", "action": {"type": "clog", "node": "@rejoining", "extra_delay": "1ms",
            "duration": "1ms"}, "trigger": {"within": "10s", "delay": "0ns"}}
    ]);
    let got = applied(load("kafka-bug-KAFKA-7128.json"), clog);
    let fired: Vec<_> = got
        .iter()
        .filter_map(|f| match &f.action {
            FaultAction::Clog { node, duration, .. } if duration.ns() == 1_000_000 => {
                Some((f.at_ns, node.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(fired.len(), 1, "{got:?}");
    assert!(fired[0].0 > 6_000_000_000, "{fired:?}");
    assert_eq!(fired[0].1, "kafka0");
}

#[test]
fn fast_failover_takes_down_a_new_leader_at_its_moment() {
    // The aimed shape lives in its own base, so kafka-nemesis-hunt's draws stay as they were.
    let plain = Scenario::load(&scenario_path("kafka-nemesis-hunt.json")).expect("kafka base");
    let has = |s: &Scenario| {
        s.nemesis
            .as_ref()
            .unwrap()
            .kinds
            .contains(&NemesisKind::FastFailover)
    };
    assert!(!has(&plain));
    let mut s =
        Scenario::load(&scenario_path("kafka-nemesis-hunt-failover.json")).expect("kafka base");
    assert!(has(&s));
    let n = s.nemesis.as_mut().expect("a nemesis");
    n.kinds = vec![NemesisKind::FastFailover];
    n.swarm = false;
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..20 {
        for f in Schedule::generate(&s, seed).faults {
            let t = f.trigger.expect("it waits for its moment");
            assert_eq!(f.at.ns() + t.within.ns(), s.duration.ns(), "{f:?}");
            let node = match &f.action {
                FaultAction::Stop { node, .. } => {
                    kinds.insert("stop");
                    node
                }
                FaultAction::Kill { node, .. } => {
                    kinds.insert("kill");
                    node
                }
                FaultAction::Crash { node, .. } => {
                    kinds.insert("crash");
                    node
                }
                other => panic!("unexpected action {other:?}"),
            };
            assert_eq!(node, "@new-leader");
        }
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    // Only Kafka has partition leaders: refused elsewhere.
    let mut z = Scenario::load(&scenario_path("zk-nemesis-hunt.json")).expect("zk base");
    z.nemesis.as_mut().unwrap().kinds = vec![NemesisKind::FastFailover];
    assert!(Scenario::from_json(&z.canonical_json(), "zk-fast").is_err());
}

/// "@new-leader" resolves in a run only once a leader has appended in a new epoch with its
/// HW below the epoch's start: kafka1 takes over orders-0 from the stopped kafka0 while its
/// other ISR member, kafka2, is silently cut off, so the HW cannot reach the epoch start.
#[test]
fn new_leader_moment_resolves_after_a_leader_change() {
    use faultline::cluster::{self, RunOptions};
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(scenario_path("kafka-nemesis-hunt.json")).unwrap(),
    )
    .unwrap();
    v.as_object_mut().unwrap().remove("nemesis");
    v["faults"] = serde_json::json!([
        {"at": "500ms", "action": {"type": "stop", "node": "@new-leader", "restart_after": "1s"},
         "trigger": {"within": "5s", "delay": "1ms"}},
        {"at": "1900ms", "action": {"type": "isolate", "node": "kafka2", "heal_after": "3s",
            "silent": true}},
        {"at": "2s", "action": {"type": "stop", "node": "kafka0", "restart_after": "1s"}}
    ]);
    let s = Scenario::from_json(&v.to_string(), "new-leader").expect("valid");
    let schedule = Schedule::generate(&s, s.seed);
    let got = cluster::run(&s, s.seed, &schedule, &RunOptions::default()).applied;
    let stops: Vec<_> = got
        .iter()
        .filter_map(|f| match &f.action {
            FaultAction::Stop { node, .. } => Some((f.at_ns, node.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(stops.len(), 2, "{got:?}");
    assert_eq!(stops[0], (2_000_000_000, "kafka0".to_string()));
    let (at, node) = &stops[1];
    assert!(*at > 2_000_000_000 && *at < 4_900_000_000, "{stops:?}");
    assert_eq!(node, "kafka1", "{stops:?}");
}
