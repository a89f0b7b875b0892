//! Shrinking a failing fault schedule: remove actions while the run still violates the same
//! invariant, so the report shows the few faults that matter.
//!
//! Removing an action never reshuffles the workload, because faults draw only from their
//! own streams. Chunks of the schedule are tried first (halves, quarters, ...), then single
//! actions, as in delta debugging; every candidate is a full deterministic re-run, bounded by
//! `max_runs`.
//!
//! Depends on: cluster, scenario.

use crate::cluster::{self, RunOptions, RunOutcome};
use crate::scenario::{Scenario, Schedule};

/// The result of shrinking.
pub struct Shrunk {
    pub schedule: Schedule,
    pub outcome: RunOutcome,
    pub runs: usize,
}

fn still_fails(outcome: &RunOutcome, invariant: &str) -> bool {
    outcome.violations.iter().any(|v| v.invariant == invariant)
}

/// Shrinks `schedule` for `seed` while the run keeps violating `invariant`. Returns None if
/// the original schedule does not violate it.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    schedule: &Schedule,
    invariant: &str,
    max_runs: usize,
) -> Option<Shrunk> {
    let options = RunOptions::default();
    let mut best = schedule.clone();
    let mut outcome = cluster::run(scenario, seed, &best, &options);
    let mut runs = 1;
    if !still_fails(&outcome, invariant) {
        return None;
    }
    let mut chunk = best.faults.len().div_ceil(2).max(1);
    while !best.faults.is_empty() && runs < max_runs {
        let mut removed_any = false;
        let mut start = best.faults.len();
        while start > 0 && runs < max_runs {
            let from = start.saturating_sub(chunk);
            let mut candidate = best.clone();
            candidate.faults.drain(from..start);
            let result = cluster::run(scenario, seed, &candidate, &options);
            runs += 1;
            if still_fails(&result, invariant) {
                best = candidate;
                outcome = result;
                removed_any = true;
            }
            start = from;
        }
        if chunk == 1 && !removed_any {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    Some(Shrunk {
        schedule: best,
        outcome,
        runs,
    })
}
