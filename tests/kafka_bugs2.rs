//! Kafka bug modes of issue 9 (second half): KAFKA-7128, KAFKA-13141, KAFKA-6082 and
//! KAFKA-2729 (a liveness failure: k-convergence). Each
//! `scenarios/kafka-bug-<ID>.json` is caught by its invariant on its default seed with the
//! mode on, and the same schedule passes a few hundred seeds with the mode off (so the
//! invariant is no false alarm and the mode, not the schedule, is what breaks it).

mod common;
use common::{load, run, violations, without_bugs};

use faultline::campaign;
use faultline::scenario::Expectation;

/// The scenario's default seed violates its expected invariant (and every seed of `on`
/// shows some violation often enough: at least half of them), and `off` seeds pass with
/// the mode switched off.
fn assert_bug_caught(name: &str, on_seeds: u64, off_seeds: u64) {
    let on = load(name);
    let Expectation::Violation { invariant } = on.expect.clone() else {
        panic!("{name} must expect a violation");
    };
    let first = run(&on, on.seed);
    assert!(
        first.violations.iter().any(|v| v.invariant == invariant),
        "{name} seed {}: expected {invariant}, got {:?}",
        on.seed,
        violations(&first)
    );
    let caught = (0..on_seeds)
        .filter(|&seed| !run(&on, seed).violations.is_empty())
        .count() as u64;
    assert!(
        caught * 2 >= on_seeds,
        "{name}: only {caught} of {on_seeds} seeds caught with the mode on"
    );
    let off = without_bugs(on);
    for seed in 0..off_seeds {
        let o = run(&off, seed);
        assert!(
            o.violations.is_empty(),
            "{name} off, seed {seed}: {:?}",
            violations(&o)
        );
        assert!(o.recovered_ns.is_some(), "{name} off, seed {seed} stuck");
    }
}

#[test]
fn kafka_bug_7128_expansion_on_a_lagging_hw_is_caught() {
    assert_bug_caught("kafka-bug-KAFKA-7128.json", 20, 200);
}

#[test]
fn kafka_bug_13141_diverging_fetch_offset_as_leo_is_caught() {
    assert_bug_caught("kafka-bug-KAFKA-13141.json", 20, 200);
}

#[test]
fn kafka_bug_6082_zombie_controller_write_is_caught() {
    assert_bug_caught("kafka-bug-KAFKA-6082.json", 20, 200);
}

#[test]
fn kafka_bug_2729_stale_cached_zk_version_is_caught() {
    assert_bug_caught("kafka-bug-KAFKA-2729.json", 20, 300);
}

#[test]
fn hunt_sets_aside_the_seeds_a_base_fails_on_its_own() {
    // merge-overwrites fails every seed: set three aside and they count as passing.
    let base = load("counter-basic.json");
    let case = campaign::hunt::mode_cases(&base)
        .into_iter()
        .find(|c| c.mode == "merge-overwrites")
        .expect("counter mode");
    let skip = [0, 2, 3].into_iter().collect();
    let s = campaign::hunt::score_excluding(&case, 10, 1, 0, &skip);
    assert_eq!((s.seeds_run, s.seeds_failing, s.base_failing), (10, 7, 3));
    assert_eq!(s.first_failing_seed, Some(1));
    assert!(campaign::hunt::base_failures(&base, 10, 1).is_empty());
}
