//! Invariant-violation reports: what a person needs to understand a failing seed and replay
//! it with one command. Written as JSON (for `faultline replay`), Markdown and one-file HTML.
//!
//! The JSON report, field by field:
//! - `format`: "faultline-report/1".
//! - `scenario_file`: the path the scenario was loaded from (informational).
//! - `scenario`: the whole scenario, so a replay needs nothing else.
//! - `config_hash`: 16 hex digits, hash of the scenario's canonical JSON.
//! - `seed`: the root seed.
//! - `schedule`: the concrete fault schedule the run used (explicit + nemesis draw).
//! - `trace_hash`: 16 hex digits; a replay must reproduce it.
//! - `events`, `simulated_ns`: size of the run.
//! - `violations`: kind (safety, liveness, panic, budget), invariant, message, at_ns, event, node.
//! - `applied_faults`: every fault as it fired, with node names resolved.
//! - `timeline`: the last events before the stop (time_ns, event, node, kind, detail).
//! - `stats`: kernel counters; `system`: system-specific figures.
//! - `replay`: the command that replays this run.
//! - `picture`: what the HTML diagrams draw (see [`picture::Picture`]); absent when the run
//!   was not captured.
//!
//! Depends on: cluster (outcome types), scenario, sim (timeline types).

pub mod diagram;
pub mod export;
pub mod html;
pub mod index;
pub mod invariants;
pub mod markdown;
pub mod picture;
mod svg;
pub mod witness;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cluster::{AppliedFault, RunOutcome, Violation};
use crate::scenario::{InputError, Scenario, Schedule};
use crate::sim::trace::{fmt_hash, TimelineLine};
use crate::sim::SimStats;

pub const FORMAT: &str = "faultline-report/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub format: String,
    pub scenario_file: String,
    pub scenario: Scenario,
    pub config_hash: String,
    pub seed: u64,
    pub schedule: Schedule,
    pub trace_hash: String,
    pub events: u64,
    pub simulated_ns: u64,
    pub violations: Vec<Violation>,
    pub applied_faults: Vec<AppliedFault>,
    pub timeline: Vec<TimelineLine>,
    #[serde(default)]
    pub stats: serde_json::Value,
    #[serde(default)]
    pub system: serde_json::Value,
    pub replay: String,
    /// What the diagrams draw (present when the run was captured, as report re-runs are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<picture::Picture>,
}

impl Report {
    pub fn new(
        scenario_file: &str,
        scenario: &Scenario,
        schedule: &Schedule,
        outcome: &RunOutcome,
        path: &Path,
    ) -> Report {
        Report {
            format: FORMAT.to_string(),
            scenario_file: scenario_file.to_string(),
            scenario: scenario.clone(),
            config_hash: fmt_hash(scenario.config_hash()),
            seed: outcome.seed,
            schedule: schedule.clone(),
            trace_hash: fmt_hash(outcome.trace_hash),
            events: outcome.events,
            simulated_ns: outcome.simulated_ns,
            violations: outcome.violations.clone(),
            applied_faults: outcome.applied.clone(),
            timeline: outcome.timeline.clone(),
            stats: serde_json::to_value(&outcome.stats).unwrap_or_default(),
            system: outcome.system.clone(),
            replay: format!("faultline replay {}", path.display()),
            picture: outcome.capture.as_ref().and_then(|c| {
                let v = outcome.violations.first()?;
                Some(picture::build(
                    scenario,
                    c,
                    &outcome.applied,
                    v,
                    outcome.simulated_ns,
                ))
            }),
        }
    }

    pub fn load(path: &Path) -> Result<Report, InputError> {
        let (file, text) = crate::scenario::read_input(path)?;
        let report: Report = crate::scenario::parse_json(&text, &file)?;
        if report.format != FORMAT {
            return Err(InputError {
                file,
                path: "format".into(),
                message: format!(
                    "unsupported report format {:?} (expected {FORMAT:?})",
                    report.format
                ),
            });
        }
        crate::scenario::validate::validate(&report.scenario).map_err(|(p, message)| {
            InputError {
                file: file.clone(),
                path: format!("scenario.{p}"),
                message,
            }
        })?;
        Ok(report)
    }
}

/// Where the report of `scenario` at `seed` goes inside `dir` (`suffix` "" or "-shrunk").
pub fn report_path(dir: &Path, scenario: &Scenario, seed: u64, suffix: &str) -> PathBuf {
    dir.join(format!("{}-seed{}{}.json", scenario.name, seed, suffix))
}

/// Writes the JSON and Markdown reports; returns the JSON path.
pub fn write(dir: &Path, report: &Report, suffix: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let json_path = report_path(dir, &report.scenario, report.seed, suffix);
    let json = serde_json::to_string_pretty(report).expect("report serialises");
    std::fs::write(&json_path, json + "\n")?;
    std::fs::write(json_path.with_extension("md"), markdown::render(report))?;
    std::fs::write(json_path.with_extension("html"), html::render(report))?;
    Ok(json_path)
}

/// The stats as a value, for summaries.
pub fn stats_value(stats: &SimStats) -> serde_json::Value {
    serde_json::to_value(stats).unwrap_or_default()
}
