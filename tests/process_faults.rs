//! Scenario-level tests of the newer fault kinds: `kill` (the page cache survives) against
//! `crash` (power loss), `stop` (graceful shutdown), on the counter and on ZooKeeper; and
//! silent partitions, which ZooKeeper must notice through its own timers only.

mod common;
use common::{load, run};

use faultline::cluster::{self, RunOptions, RunOutcome};
use faultline::scenario::schedule::NemesisKind;
use faultline::scenario::Schedule;
use faultline::scenario::{Expectation, Scenario};
use faultline::sim::fault::FaultAction;

fn clean(o: &RunOutcome) -> bool {
    o.violations.is_empty() && o.recovered_ns.is_some()
}

/// The counter's gossip-before-fsync bug announces a count whose atomic replacement
/// (temporary file, fsync, rename) has not completed: power loss takes it back, and so does
/// a kill, since the rename never happened. Both are caught.
#[test]
fn a_kill_undoes_an_unfinished_atomic_replacement_as_power_loss_does() {
    let crashing = load("counter-bug-gossip-before-fsync.json");
    let mut killing = crashing.clone();
    killing.nemesis.as_mut().expect("nemesis").kinds = vec![NemesisKind::Kill];
    let caught = |s: &Scenario| {
        (0..10)
            .filter(|seed| {
                let o = run(s, *seed);
                o.violations
                    .iter()
                    .any(|v| v.invariant == "counter-durable")
            })
            .count()
    };
    assert!(caught(&crashing) >= 3);
    assert!(caught(&killing) >= 3);
}

#[test]
fn zk_kill_and_stop_passes() {
    let s = load("zk-kill-and-stop.json");
    for seed in 0..20 {
        let o = run(&s, seed);
        assert!(clean(&o), "seed {seed}: {:?}", o.violations);
        assert_eq!(o.stats.stops, 3, "seed {seed}");
        assert!(o.stats.kills >= 7, "seed {seed}: {} kills", o.stats.kills);
        assert_eq!(o.stats.crashes, 0);
    }
}

/// The nemesis draws kills and stops (and only those when told so), and ZooKeeper passes.
#[test]
fn the_nemesis_draws_kills_and_stops() {
    let mut s = load("zk-nemesis.json");
    s.nemesis.as_mut().expect("nemesis").kinds = vec![NemesisKind::Kill, NemesisKind::Stop];
    let (mut kills, mut stops) = (0, 0);
    for seed in 0..10 {
        let o = run(&s, seed);
        assert!(clean(&o), "seed {seed}: {:?}", o.violations);
        kills += o.stats.kills;
        stops += o.stats.stops;
        let kinds: Vec<&str> = o.applied.iter().map(|f| f.action.kind()).collect();
        assert!(!kinds.contains(&"crash"), "seed {seed}: {kinds:?}");
    }
    assert!(kills > 0 && stops > 0, "kills {kills}, stops {stops}");
}

/// When the server leading at `at_ns` stopped leading, from a captured run's role log.
fn leader_step_down(s: &Scenario, seed: u64, at_ns: u64) -> (u32, u64, RunOutcome) {
    let schedule = Schedule::generate(s, seed);
    let options = RunOptions {
        capture: true,
        ..RunOptions::default()
    };
    let o = cluster::run(s, seed, &schedule, &options);
    let roles = &o.capture.as_ref().expect("captured").roles;
    let leader = roles
        .iter()
        .rfind(|r| r.at_ns < at_ns && r.role.name == "LEADING")
        .expect("a leader before the cut")
        .node;
    let down = roles
        .iter()
        .find(|r| r.at_ns >= at_ns && r.node == leader && r.role.name != "LEADING")
        .expect("the isolated leader steps down")
        .at_ns;
    (leader, down, o)
}

/// A silently isolated leader keeps leading until its own syncLimit check finds its
/// learners silent (tickTime 100 ms * syncLimit 5 = 500 ms, checked every tick); a loudly
/// isolated one learns from the resets within a tick.
#[test]
fn a_silently_isolated_leader_learns_only_from_its_sync_limit() {
    const CUT_NS: u64 = 2_000_000_000;
    let silent = load("zk-silent-partition.json");
    let mut loud = silent.clone();
    loud.faults.truncate(1);
    let FaultAction::IsolateGroup { silent: flag, .. } = &mut loud.faults[0].action else {
        panic!("the first fault isolates the leader");
    };
    *flag = false;
    for seed in 0..5 {
        let (leader, down, o) = leader_step_down(&silent, seed, CUT_NS);
        assert!(clean(&o), "seed {seed}: {:?}", o.violations);
        assert!(
            (CUT_NS + 500_000_000..=CUT_NS + 700_000_000).contains(&down),
            "seed {seed}: zk{leader} stepped down at {down} ns"
        );
        let (_, down, o) = leader_step_down(&loud, seed, CUT_NS);
        assert!(clean(&o), "seed {seed} loud: {:?}", o.violations);
        assert!(
            down <= CUT_NS + 100_000_000,
            "seed {seed} loud: at {down} ns"
        );
    }
}

#[test]
fn zk_silent_partition_passes() {
    let s = load("zk-silent-partition.json");
    assert_eq!(s.expect, Expectation::Pass);
    for seed in 0..20 {
        let o = run(&s, seed);
        assert!(clean(&o), "seed {seed}: {:?}", o.violations);
        assert_eq!(
            o.stats.connections_broken, 0,
            "seed {seed}: silent cuts reset nothing"
        );
    }
}
