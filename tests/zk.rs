//! ZooKeeper system tests: the must-pass fault scenarios over many seeds, every bug mode
//! caught by its invariant with the mode on and not with it off, determinism of a run,
//! and a 1/3/5/7-server ensemble electing a leader and committing writes.

mod common;
use common::{load, run, violations, without_bugs};

use std::path::Path;

use faultline::scenario::{Expectation, Scenario, SystemSpec};

fn assert_passes(name: &str, seeds: std::ops::Range<u64>) {
    let s = load(name);
    assert_eq!(
        s.expect,
        Expectation::Pass,
        "{name} must be a passing scenario"
    );
    for seed in seeds {
        let o = run(&s, seed);
        assert!(
            o.violations.is_empty(),
            "{name} seed {seed}: {:?}",
            violations(&o)
        );
        assert!(
            o.recovered_ns.is_some(),
            "{name} seed {seed} did not recover"
        );
    }
}

/// The bug scenario finds its invariant on some seed of `seeds`, and the same seeds pass
/// with the bug mode switched off (so the invariant is not a false alarm).
fn assert_bug_caught(name: &str, seeds: std::ops::Range<u64>) {
    let on = load(name);
    let Expectation::Violation { invariant } = on.expect.clone() else {
        panic!("{name} must expect a violation");
    };
    let off = without_bugs(on.clone());
    let caught: Vec<u64> = seeds
        .clone()
        .filter(|seed| {
            run(&on, *seed)
                .violations
                .iter()
                .any(|v| v.invariant == invariant)
        })
        .collect();
    assert!(
        !caught.is_empty(),
        "{name}: no seed in {seeds:?} violates {invariant}"
    );
    for seed in caught.iter().take(5) {
        let o = run(&off, *seed);
        assert!(
            o.violations.is_empty(),
            "{name} off, seed {seed}: {:?}",
            violations(&o)
        );
    }
}

// ---- scenarios that must pass for every seed

#[test]
fn zk_leader_crash_mid_broadcast_passes() {
    assert_passes("zk-leader-crash-mid-broadcast.json", 0..10);
}

#[test]
fn zk_leader_isolated_in_minority_does_not_commit() {
    assert_passes("zk-leader-isolated-minority.json", 0..8);
}

#[test]
fn zk_majority_partition_passes() {
    assert_passes("zk-majority-partition.json", 0..8);
}

#[test]
fn zk_one_way_partition_passes() {
    assert_passes("zk-one-way-partition.json", 0..10);
}

#[test]
fn zk_follower_restart_losing_unsynced_writes_passes() {
    assert_passes("zk-follower-restart-unsynced.json", 0..10);
}

#[test]
fn zk_whole_ensemble_restart_passes() {
    assert_passes("zk-whole-ensemble-restart.json", 0..10);
}

#[test]
fn zk_rolling_restarts_pass() {
    assert_passes("zk-rolling-restarts.json", 0..8);
}

#[test]
fn zk_clogged_leader_passes() {
    assert_passes("zk-clogged-leader.json", 0..10);
}

#[test]
fn zk_nemesis_smoke_3_and_5_servers() {
    // The fuzz smoke: 500 seeds with the random nemesis find nothing (a false alarm would
    // be a testbed bug). Run wider with `faultline fuzz scenarios/zk-nemesis*.json`.
    assert_passes("zk-nemesis.json", 0..500);
    assert_passes("zk-nemesis-5.json", 0..50);
    assert_passes("zk-nemesis-heavy.json", 0..20);
}

// ---- regressions: every seed a campaign found, replayed with its explicit fault schedule

/// Each file in scenarios/regressions/ is a failure a deep campaign found, kept with the
/// explicit (shrunk) fault schedule that showed it; its note names the fix. Each must now
/// give its expected outcome on its own seed and stay clean on a few neighbours.
#[test]
fn zk_regressions_stay_fixed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/regressions exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        // The Kafka ones are replayed by tests/kafka.rs.
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("zk-"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no regression scenarios");
    for path in files {
        let s = Scenario::load(&path).expect("regression scenario loads");
        assert_eq!(s.expect, Expectation::Pass, "{}", path.display());
        for seed in [s.seed, s.seed + 1, s.seed + 2] {
            let o = run(&s, seed);
            assert!(
                o.violations.is_empty() && o.recovered_ns.is_some(),
                "{} seed {seed}: {:?}",
                path.display(),
                violations(&o)
            );
        }
    }
}

/// The two seeds of one mechanism (a learner that gave the NEWLEADER persistence up
/// half-way when its leader connection broke, leaving a durable snapshot ahead of its
/// currentEpoch; the next TRUNC below it halted the server) are among the regressions, and
/// the hunt base's seed once filed as a ZooKeeper finding now recovers on its own seed.
#[test]
fn zk_newleader_persistence_cut_by_a_lost_leader_completes_before_looking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/regressions");
    for name in [
        "zk-nemesis-heavy-seed20403.json",
        "zk-nemesis-hunt-seed4769.json",
    ] {
        let s = Scenario::load(&dir.join(name)).expect("regression scenario loads");
        let o = run(&s, s.seed);
        assert!(
            o.violations.is_empty() && o.recovered_ns.is_some(),
            "{name}: {:?}",
            violations(&o)
        );
    }
}

/// A finding about ZooKeeper itself (issue 13 item 4): with its ACK bookkeeping (a
/// learner's ACKs kept across a re-sync that TRUNCs them away), a commit rests on one
/// durable copy; faultline's default drops those ACKs and the same run is clean.
#[test]
fn zk_finding_stale_ack_after_trunc_commits_on_one_durable_copy() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/findings/zk-stale-ack-after-trunc.json");
    let s = Scenario::load(&path).expect("finding scenario loads");
    let v = violations(&run(&s, s.seed));
    assert!(
        v.first()
            .is_some_and(|m| m.starts_with("zab-commit-quorum-durable:")),
        "{v:?}"
    );
    let off = violations(&run(&without_bugs(s.clone()), s.seed));
    assert!(off.is_empty(), "{off:?}");
}

/// A finding about ZooKeeper itself (the ZOOKEEPER-1549 class; zk-nemesis-hunt seeds
/// 93997, 109894): TRUNC(maxCommittedLog) to a learner whose durable snapshot holds a tail
/// of an epoch that never established. ZooKeeper truncates only the log and reloads that
/// snapshot, so the learner's tree diverges; faultline's default sends a SNAP instead.
#[test]
fn zk_finding_trunc_below_snapshot_diverges_the_learner() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/findings/zk-trunc-below-snapshot.json");
    let s = Scenario::load(&path).expect("finding scenario loads");
    let v = violations(&run(&s, s.seed));
    assert!(
        v.first()
            .is_some_and(|m| m.starts_with("zab-digest-agreement:")),
        "{v:?}"
    );
    let off = run(&without_bugs(s.clone()), s.seed);
    assert!(
        off.violations.is_empty() && off.recovered_ns.is_some(),
        "{:?}",
        violations(&off)
    );
}

// ---- bug modes: caught with the mode on, clean with it off

#[test]
fn zk_bug_1675_stale_sync_read_is_caught() {
    assert_bug_caught("zk-bug-ZOOKEEPER-1675.json", 0..5);
}

#[test]
fn zk_bug_3911_newleader_ack_before_log_is_caught() {
    assert_bug_caught("zk-bug-ZOOKEEPER-3911.json", 0..60);
}

#[test]
fn zk_bug_4646_newleader_ack_overtakes_logger_is_caught() {
    assert_bug_caught("zk-bug-ZOOKEEPER-4646.json", 0..60);
}

#[test]
fn zk_bug_4643_current_epoch_before_txns_is_caught() {
    assert_bug_caught("zk-bug-ZOOKEEPER-4643.json", 0..150);
}

#[test]
fn zk_bug_2355_last_processed_advanced_early_is_caught() {
    assert_bug_caught("zk-bug-ZOOKEEPER-2355.json", 0..20);
}

#[test]
fn zk_bug_2845_retained_database_is_caught() {
    assert_bug_caught("zk-bug-ZOOKEEPER-2845.json", 0..20);
}

#[test]
fn zk_bug_1419_vote_order_cycle_is_caught() {
    assert_bug_caught("zk-bug-ZOOKEEPER-1419.json", 0..40);
}

/// ZOOKEEPER-1419's real symptom, the election that never settles, reported by liveness:
/// the servers stay LOOKING and keep switching votes (counted from their views over the
/// healed phase). The same schedule with the vote-order check on is caught at the first
/// wrong switch; with the mode off the election settles on every seed.
#[test]
fn zk_bug_1419_election_never_settles_and_liveness_reports_it() {
    let on = load("zk-bug-ZOOKEEPER-1419-liveness.json");
    let o = run(&on, on.seed);
    let v = o.violations.first().expect("a violation");
    assert_eq!(v.invariant, "liveness", "{:?}", violations(&o));
    assert!(
        v.message.contains("the election did not settle") && v.message.contains("LOOKING"),
        "{}",
        v.message
    );
    let mut checked = on.clone();
    checked.unchecked.clear();
    let first = run(&checked, on.seed)
        .violations
        .first()
        .map(|v| v.invariant.clone());
    assert_eq!(first.as_deref(), Some("zab-fle-vote-order"));
    let off = without_bugs(on);
    for seed in 0..300 {
        let o = run(&off, seed);
        assert!(
            o.violations.is_empty() && o.recovered_ns.is_some(),
            "mode off, seed {seed}: {:?}",
            violations(&o)
        );
    }
}

#[test]
fn every_bug_scenario_is_caught_with_its_default_seed() {
    // Goal: a catch no seed is hiding. `faultline run scenarios/X-bug-Y.json` with no --seed
    // shows the named violation, for every bug scenario of every system, and it is the first
    // violation the run reports (not a side effect of some other failure).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-bug-") && n.ends_with(".json"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "bug scenarios found: {files:?}");
    assert!(files.contains(&"zk-bug-ZOOKEEPER-1419-liveness.json".to_string()));
    let mut missed = Vec::new();
    for file in &files {
        let s = load(file);
        let Expectation::Violation { invariant } = s.expect.clone() else {
            panic!("{file} must expect a violation");
        };
        let o = run(&s, s.seed);
        let first = o.violations.first().map(|v| v.invariant.clone());
        if first.as_deref() != Some(invariant.as_str()) {
            missed.push(format!("{file} seed {}: {:?}", s.seed, violations(&o)));
        }
    }
    assert!(missed.is_empty(), "not caught:\n{}", missed.join("\n"));
}

// ---- fidelity: what the real ensemble does on a follower bounce

/// A follower that crashes and restarts, or whose connections are reset, rejoins the
/// leader it had: its acceptedEpoch equals the leader's epoch, so it answers LEADERINFO
/// with ACKEPOCH(-1) and is synced (ZooKeeper's getEpochToPropose returns the decided
/// epoch). Before the fix each bounce deposed the leader: five leaders for four crashes.
#[test]
fn zk_follower_bounce_leaves_the_leader_in_place() {
    let crashes = load("zk-follower-restart-unsynced.json");
    let mut resets = load("zk-basic.json");
    resets.faults = crashes
        .faults
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f.action = serde_json::from_value(serde_json::json!(
                { "type": "reset", "node": "@follower" }
            ))
            .expect("reset action");
            f
        })
        .collect();
    for (s, what) in [(&crashes, "crash"), (&resets, "reset")] {
        for seed in 1..4 {
            let o = run(s, seed);
            assert!(
                o.violations.is_empty(),
                "{what} seed {seed}: {:?}",
                violations(&o)
            );
            assert_eq!(
                o.system["leaders_established"], 1,
                "{what} seed {seed}: a follower bounce changed the leader: {}",
                o.system
            );
        }
    }
}

// ---- ensembles and determinism

#[test]
fn zk_ensembles_of_1_3_5_7_elect_and_commit() {
    for servers in [1u32, 3, 5, 7] {
        let mut s = load("zk-basic.json");
        let SystemSpec::Zookeeper(z) = &mut s.system else {
            unreachable!()
        };
        z.servers = servers;
        let o = run(&s, 1);
        assert!(
            o.violations.is_empty(),
            "{servers} servers: {:?}",
            violations(&o)
        );
        let committed = o.system["committed_txns"].as_u64().unwrap_or(0);
        let ok = o.system["ops_ok"].as_u64().unwrap_or(0);
        assert!(committed > 20 && ok > 50, "{servers} servers: {}", o.system);
    }
}

#[test]
fn zk_same_seed_same_trace() {
    let s = load("zk-nemesis.json");
    let a = run(&s, 7);
    let b = run(&s, 7);
    assert_eq!((a.trace_hash, a.events), (b.trace_hash, b.events));
}

/// Golden runs: exact trace hash, event count and verdict at fixed seeds. They change only
/// when behaviour does; re-pin deliberately with the values the failure prints.
#[test]
fn zk_golden_runs() {
    let cases = [
        (
            "zk-leader-crash-mid-broadcast.json",
            1,
            "0aafc81e8cdf5540",
            10736,
            None,
        ),
        (
            "zk-bug-ZOOKEEPER-1675.json",
            0,
            "6e5c2ba522da8032",
            17269,
            Some("zk-sync-read"),
        ),
    ];
    for (file, seed, hash, events, invariant) in cases {
        let o = run(&load(file), seed);
        let got = (
            format!("{:016x}", o.trace_hash),
            o.events,
            o.violations.first().map(|v| v.invariant.clone()),
        );
        let want = (hash.to_string(), events, invariant.map(str::to_string));
        assert_eq!(got, want, "{file} seed {seed}");
    }
}
