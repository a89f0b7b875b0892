//! Helpers shared by the scenario-level test files: load a bundled scenario, run one seed,
//! list its violations, and switch a Kafka bug scenario's modes off. Each test file uses a
//! subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::path::Path;

use faultline::campaign;
use faultline::cluster::RunOutcome;
use faultline::scenario::{Expectation, Scenario, SystemSpec};

/// A scenario of `scenarios/` by file name.
pub fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&path).expect("scenario loads")
}

/// One seed of `s`, as `fuzz` runs it.
pub fn run(s: &Scenario, seed: u64) -> RunOutcome {
    campaign::run_seed(s, seed, None).outcome
}

/// Each violation as "invariant: message".
pub fn violations(o: &RunOutcome) -> Vec<String> {
    o.violations
        .iter()
        .map(|v| format!("{}: {}", v.invariant, v.message))
        .collect()
}

/// A bug scenario with its bug modes off, expected to pass (a Kafka one must have had one).
pub fn without_bugs(mut s: Scenario) -> Scenario {
    match &mut s.system {
        SystemSpec::Zookeeper(z) => z.zoo_cfg.bug_modes.clear(),
        SystemSpec::Kafka(k) => {
            assert!(
                !k.server_properties.bug_modes.is_empty(),
                "a bug scenario switches a mode on"
            );
            k.server_properties.bug_modes.clear();
        }
        _ => panic!("not a zookeeper or kafka scenario"),
    }
    s.expect = Expectation::Pass;
    s
}
