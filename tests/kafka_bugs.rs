//! Kafka bug modes of issue 9 (KAFKA-1555, KAFKA-1211, KIP-101-2, KAFKA-6361): each bug
//! scenario shows its named violation first on its default seed with the mode on, and the
//! same scenario with the mode off passes a range of seeds (no false alarm).

mod common;
use common::{load, run, violations, without_bugs};

use faultline::scenario::Expectation;

/// Caught on the default seed (as the first violation), and clean with the mode off.
fn assert_bug(id: &str, off_seeds: std::ops::Range<u64>) {
    let file = format!("kafka-bug-{id}.json");
    let on = load(&file);
    let Expectation::Violation { invariant } = on.expect.clone() else {
        panic!("{file} must expect a violation");
    };
    let o = run(&on, on.seed);
    let first = o.violations.first().map(|v| v.invariant.clone());
    assert_eq!(
        first.as_deref(),
        Some(invariant.as_str()),
        "{file} seed {}: {:?}",
        on.seed,
        violations(&o)
    );
    let off = without_bugs(on);
    for seed in off_seeds {
        let o = run(&off, seed);
        assert!(
            o.violations.is_empty(),
            "{file} without the mode, seed {seed}: {:?}",
            violations(&o)
        );
    }
}

#[test]
fn kafka_1555_acks_all_without_min_insync_floor() {
    assert_bug("KAFKA-1555", 1..31);
}

#[test]
fn kafka_1211_truncation_to_the_high_watermark() {
    assert_bug("KAFKA-1211", 1..31);
}

#[test]
fn kip_101_scenario_2_divergence_after_power_loss() {
    assert_bug("KIP-101-2", 1..31);
}

#[test]
fn kafka_6361_epoch_answer_without_the_epoch() {
    assert_bug("KAFKA-6361", 1..31);
}
