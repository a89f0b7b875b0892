//! Scenarios with an explicit schedule: a run's concrete faults written back as a plain
//! scenario file (the `faults` list, nemesis off, the seed as default), so that
//! `faultline run FILE` replays the run and a person can read and edit every fault.
//!
//! The run is the same because the nemesis draws only from the "faults" stream, which a run
//! never reads again: with the drawn faults listed explicitly and the nemesis off, every
//! other stream (network, disk, nodes, roles) sees the same draws.
//!
//! Depends on: scenario.

use crate::scenario::{Scenario, TimedFault};

/// `scenario` with `faults` as its whole schedule, the nemesis off and `seed` as default.
/// `faults` must be in time order (a schedule's order), so that the file's schedule is
/// exactly that list.
pub fn with_schedule(scenario: &Scenario, seed: u64, faults: &[TimedFault]) -> Scenario {
    debug_assert!(faults.windows(2).all(|w| w[0].at <= w[1].at));
    Scenario {
        seed,
        faults: faults.to_vec(),
        nemesis: None,
        ..scenario.clone()
    }
}

/// The scenario as a file's text: pretty JSON, every field explicit, ending in a newline.
pub fn to_file_text(scenario: &Scenario) -> String {
    serde_json::to_string_pretty(scenario).expect("scenario serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Schedule;

    #[test]
    fn the_file_parses_back_to_the_same_schedule() {
        let text = r#"{"version": 1, "name": "t", "seed": 3,
            "system": {"kind": "zookeeper", "servers": 3, "clients": 2},
            "nemesis": {"interval_mean": "300ms", "hold_min": "50ms", "hold_max": "1s"},
            "duration": "6s"}"#;
        let scenario = Scenario::from_json(text, "t.json").expect("valid");
        let schedule = Schedule::generate(&scenario, 99);
        assert!(schedule.faults.len() > 3, "the nemesis drew faults");
        let explicit = with_schedule(&scenario, 99, &schedule.faults);
        let back = Scenario::from_json(&to_file_text(&explicit), "back.json").expect("valid");
        assert_eq!(back.seed, 99);
        assert!(back.nemesis.is_none());
        assert_eq!(Schedule::generate(&back, 99).faults, schedule.faults);
    }
}
