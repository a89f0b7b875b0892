//! `faultline hunt`: the bug-finding scoreboard (see `campaign::hunt`). For every bug mode of
//! each base scenario's system, fuzz seeds 0..N with the mode on and print one JSON line per
//! mode, then a Markdown table; with `--expect`, fail if a mode once found is found no more.
//!
//! Depends on: campaign, scenario.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, EXIT_CLEAN, EXIT_VIOLATION};
use crate::campaign::{self, hunt};
use crate::scenario::Scenario;

#[derive(Args, Debug)]
pub struct HuntArgs {
    /// Base scenarios (random nemesis, no explicit faults, every mode off); each of its
    /// system's bug modes is hunted in it. Repeat the flag for several.
    #[arg(
        long = "base",
        default_values = [
            "scenarios/zk-nemesis-hunt.json",
            "scenarios/counter-basic.json",
            "scenarios/kafka-nemesis-hunt.json",
            "scenarios/kafka-nemesis-hunt-failover.json"
        ]
    )]
    pub bases: Vec<PathBuf>,
    /// Seeds per mode: 0..N.
    #[arg(long, default_value_t = 1000)]
    pub seeds: u64,
    /// Threads; each runs whole seeds. Results do not depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Stop a mode after this many failing seeds (0: never). Its figures are then those of
    /// the seed prefix it ran, which `seeds_run` gives.
    #[arg(long, default_value_t = 0)]
    pub stop_after: u64,
    /// Only these modes (repeatable), e.g. --mode ZOOKEEPER-1675.
    #[arg(long = "mode")]
    pub modes: Vec<String>,
    /// Compare with committed expectations (e.g. scenarios/hunt/expected.json): exit 1 if a
    /// mode listed there as found is not found.
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// Print only the JSON lines (no Markdown table).
    #[arg(long)]
    pub json: bool,
    /// Write a report of each mode's first failing seed into this directory.
    #[arg(long)]
    pub reports: Option<PathBuf>,
}

pub fn cmd_hunt(a: HuntArgs) -> Result<u8, CliError> {
    let expected = a.expect.as_deref().map(load_expectations).transpose()?;
    if let Some(e) = &expected {
        if a.seeds < e.seeds {
            return Err(CliError(format!(
                "--seeds {} is fewer than the {} seeds the expectations were measured with",
                a.seeds, e.seeds
            )));
        }
    }
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if jobs == 0 {
        return Err(CliError("--jobs must be at least 1".into()));
    }
    let mut cases = Vec::new();
    for path in &a.bases {
        let base = Scenario::load(path)?;
        hunt::check_base(&base).map_err(|e| CliError(format!("{}: {e}", path.display())))?;
        cases.extend(
            hunt::mode_cases(&base)
                .into_iter()
                .map(|c| (path.clone(), c)),
        );
    }
    if let Some(unknown) = a
        .modes
        .iter()
        .find(|m| !cases.iter().any(|(_, c)| &c.mode == *m))
    {
        return Err(CliError(format!(
            "--mode {unknown}: no base's system has that bug mode"
        )));
    }
    cases.retain(|(_, c)| a.modes.is_empty() || a.modes.contains(&c.mode));
    // Each base once with every mode off: its own failures are not a mode's finds.
    let mut base_failing = std::collections::BTreeMap::new();
    for (path, _) in &cases {
        if !base_failing.contains_key(path) {
            let base = Scenario::load(path)?;
            let failing = hunt::base_failures(&base, a.seeds, jobs);
            if !failing.is_empty() {
                eprintln!(
                    "hunt: {} fails with every mode off on {} of {} seeds (set aside): {:?}",
                    path.display(),
                    failing.len(),
                    a.seeds,
                    failing
                );
            }
            base_failing.insert(path.clone(), failing);
        }
    }
    let mut scores = Vec::new();
    for (path, case) in &cases {
        let score = hunt::score_excluding(case, a.seeds, jobs, a.stop_after, &base_failing[path]);
        println!("{}", serde_json::to_string(&score).expect("serialisable"));
        if let (Some(dir), Some(seed)) = (&a.reports, score.first_failing_seed) {
            write_first_report(path, case, seed, dir)?;
        }
        scores.push(score);
    }
    if let Some(dir) = a.reports.as_ref().filter(|d| d.is_dir()) {
        crate::report::index::write(dir)
            .map_err(|e| CliError(format!("{}: cannot write index.html: {e}", dir.display())))?;
    }
    if !a.json {
        println!();
        print!("{}", hunt::markdown(&scores));
    }
    let Some(expected) = expected else {
        return Ok(EXIT_CLEAN);
    };
    let regressions = hunt::regressions(&expected, &scores);
    for r in &regressions {
        eprintln!("hunt: regression: {r}");
    }
    if regressions.is_empty() {
        eprintln!(
            "hunt: every expected mode found ({} modes)",
            expected.found.len()
        );
        Ok(EXIT_CLEAN)
    } else {
        Ok(EXIT_VIOLATION)
    }
}

fn load_expectations(path: &Path) -> Result<hunt::Expectations, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("{}: cannot read: {e}", path.display())))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| CliError(format!("{}: {}: {}", path.display(), e.path(), e.inner())))
}

fn write_first_report(
    base: &Path,
    case: &hunt::ModeCase,
    seed: u64,
    dir: &Path,
) -> Result<(), CliError> {
    let run = campaign::run_seed(&case.scenario, seed, None);
    let file = base.display().to_string();
    let path = campaign::write_report(&file, &case.scenario, &run, dir)
        .map_err(|e| CliError(format!("cannot write a report: {e}")))?;
    eprintln!(
        "hunt: {} first found at seed {seed}: faultline replay {}",
        case.mode,
        path.display()
    );
    Ok(())
}
