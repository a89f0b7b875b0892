//! Campaigns: one seed with its report, or many seeds across threads (never inside a run),
//! each seed isolated so that a panic is that seed's failure and not the campaign's.
//!
//! When a seed fails, the campaign runs it again with the timeline captured. The second run
//! must give the same trace hash; if it does not, determinism is broken and that is reported
//! as a failure of its own.
//!
//! A campaign streams: each seed's result goes to the caller as soon as every earlier seed
//! is done (seed order, through a bounded reorder window), and only what the summary needs
//! is kept (counters, the first failing seeds, wall-time figures), so memory does not grow
//! with the number of seeds. See `fuzz`.
//!
//! Depends on: cluster, scenario, report.

pub mod hunt;
pub mod shard;
pub mod shrink;
mod stream;

use std::path::{Path, PathBuf};

pub use stream::{
    fuzz, Artifacts, FailingSeed, Finished, FuzzOptions, KnownTally, ReportPlan, Stop, Summary,
    WallStats, FAILING_KEPT, WINDOW_PER_JOB,
};

use crate::cluster::{self, FailureKind, RunOptions, RunOutcome, Violation};
use crate::report::{self, Report};
use crate::scenario::{Scenario, Schedule};

/// Timeline lines kept in a report.
pub const REPORT_TIMELINE_LINES: usize = 80;

/// One seed's result.
pub struct SeedRun {
    pub seed: u64,
    pub schedule: Schedule,
    pub outcome: RunOutcome,
    /// Wall-clock time of the run, measured around it (never inside).
    pub wall_ns: u64,
}

/// Whether a run without violations still has no verdict: a system's history check ran
/// out of budget (its summary says `"history_check": "unknown"`). Such a seed is counted
/// apart, never as a pass.
pub fn verdict_unknown(system: &serde_json::Value) -> bool {
    system.get("history_check").and_then(|v| v.as_str()) == Some("unknown")
}

impl SeedRun {
    pub fn failed(&self) -> bool {
        !self.outcome.violations.is_empty()
    }

    /// No violation, but a known real-system behaviour took the place of one.
    pub fn known(&self) -> bool {
        !self.failed() && !self.outcome.known.is_empty()
    }
}

/// Runs one seed with its own schedule (generated, or given by a replay).
pub fn run_seed(scenario: &Scenario, seed: u64, schedule: Option<Schedule>) -> SeedRun {
    let schedule = schedule.unwrap_or_else(|| Schedule::generate(scenario, seed));
    // Wall time is measured around the run only, for the summary.
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let outcome = cluster::run(scenario, seed, &schedule, &RunOptions::default());
    let wall_ns = started.elapsed().as_nanos() as u64;
    SeedRun {
        seed,
        schedule,
        outcome,
        wall_ns,
    }
}

/// Re-runs a failed seed with the timeline captured and writes its report. Returns the
/// report's path.
pub fn write_report(
    scenario_file: &str,
    scenario: &Scenario,
    run: &SeedRun,
    dir: &Path,
) -> std::io::Result<PathBuf> {
    write_report_for(
        scenario_file,
        scenario,
        run.seed,
        &run.schedule,
        run.outcome.trace_hash,
        dir,
        "",
    )
}

fn write_report_for(
    scenario_file: &str,
    scenario: &Scenario,
    seed: u64,
    schedule: &Schedule,
    expected_hash: u64,
    dir: &Path,
    suffix: &str,
) -> std::io::Result<PathBuf> {
    let options = RunOptions {
        timeline_capture: REPORT_TIMELINE_LINES,
        record_checksums: false,
        capture: true,
    };
    let mut detailed = cluster::run(scenario, seed, schedule, &options);
    if detailed.trace_hash != expected_hash {
        detailed.violations.push(Violation {
            kind: FailureKind::Safety,
            invariant: "determinism".into(),
            message: format!(
                "the same seed gave trace hash {expected_hash:016x}, then {:016x}",
                detailed.trace_hash
            ),
            at_ns: 0,
            event: 0,
            node: None,
        });
    }
    let path = report::report_path(dir, scenario, seed, suffix);
    let report = Report::new(scenario_file, scenario, schedule, &detailed, &path);
    report::write(dir, &report, suffix)
}

/// Most re-runs one shrink may spend.
pub const SHRINK_MAX_RUNS: usize = shrink::DEFAULT_MAX_RUNS;

/// Shrinks the failing run of a seed (faults, their holds and delays, the fault phase, the
/// workload; see `shrink`) and writes the shrunk scenario file and its report into `dir`.
/// Returns (faults before, faults after, the shrunk report's path), or None if the run does
/// not violate `invariant`. `shrink::shrink_and_report_with` gives the whole summary.
pub fn shrink_and_report(
    scenario_file: &str,
    scenario: &Scenario,
    seed: u64,
    schedule: &Schedule,
    invariant: &str,
    dir: &Path,
) -> std::io::Result<Option<(usize, usize, PathBuf)>> {
    let summary = shrink::shrink_and_report_with(
        scenario_file,
        scenario,
        seed,
        schedule,
        invariant,
        dir,
        SHRINK_MAX_RUNS,
    )?;
    Ok(summary.map(|s| (s.faults_before, s.faults_after, s.report)))
}

#[cfg(test)]
mod tests {
    use super::verdict_unknown;

    /// A history check out of budget is no pass: the summary counts it apart.
    #[test]
    fn a_history_check_out_of_budget_is_unknown_not_a_pass() {
        let unknown = serde_json::json!({ "history_check": "unknown", "ops_ok": 3 });
        let done = serde_json::json!({ "history_check": "done" });
        assert!(verdict_unknown(&unknown));
        assert!(!verdict_unknown(&done));
        assert!(!verdict_unknown(&serde_json::Value::Null));
    }
}
