//! Scenario-level tests of the process faults: `kill` (the page cache survives) against
//! `crash` (power loss), and `stop` (graceful shutdown), on the counter and on ZooKeeper.

use std::path::Path;

use faultline::campaign;
use faultline::cluster::RunOutcome;
use faultline::scenario::schedule::NemesisKind;
use faultline::scenario::{Expectation, Scenario};

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&path).expect("scenario loads")
}

fn run(s: &Scenario, seed: u64) -> RunOutcome {
    campaign::run_seed(s, seed, None).outcome
}

fn clean(o: &RunOutcome) -> bool {
    o.violations.is_empty() && o.recovered_ns.is_some()
}

/// The counter's gossip-before-fsync bug announces counts that only the page cache holds:
/// power loss takes them back (caught), a kill does not (the restarted node reads them).
#[test]
fn a_kill_keeps_what_power_loss_takes_back() {
    let crashing = load("counter-bug-gossip-before-fsync.json");
    let mut killing = crashing.clone();
    killing.nemesis.as_mut().expect("nemesis").kinds = vec![NemesisKind::Kill];
    killing.expect = Expectation::Pass;
    let mut caught = 0;
    for seed in 0..10 {
        let crashed = run(&crashing, seed);
        if crashed
            .violations
            .iter()
            .any(|v| v.invariant == "counter-durable")
        {
            caught += 1;
            let killed = run(&killing, seed);
            assert!(clean(&killed), "seed {seed}: {:?}", killed.violations);
            assert!(killed.stats.kills > 0, "seed {seed}: no kill drawn");
            assert_eq!(killed.stats.crashes, 0);
        }
    }
    assert!(
        caught >= 3,
        "power loss caught the bug on {caught} of 10 seeds"
    );
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
