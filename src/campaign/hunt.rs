//! The bug-finding scoreboard: for every bug mode a base scenario's system knows, switch the
//! mode on in that base (a random-nemesis scenario with no explicit faults), fuzz seeds
//! 0..N and report how often and how soon the nemesis found the bug blind.
//!
//! "Median seeds to detection" is the median of the gaps between consecutive failing seeds,
//! the first gap counted from seed 0 (failing seeds 4, 10, 11 give gaps 5, 6, 1 and a median
//! of 5): how many seeds a campaign runs, in the median, from one detection to the next. With
//! an even number of gaps it is the lower of the two middle ones (an integer, no float).
//!
//! A mode may stop early after `stop_after` failing seeds: the figures are then those of the
//! seed prefix `0..seeds_run`, exactly (results past the last counted seed are dropped, so
//! they do not depend on the thread count), and `seeds_run` says how many that was.
//!
//! A base that itself fails on some seeds (a bug of ours still open) would credit every
//! mode with those failures: [`base_failures`] finds them and [`score_excluding`] counts
//! such a seed as a pass (without running it), reporting how many it set aside.
//!
//! Depends on: cluster, scenario, sim (wall time is measured around runs only).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// One bug mode switched on in a base scenario.
#[derive(Clone, Debug)]
pub struct ModeCase {
    /// The mode's name as scenarios spell it ("ZOOKEEPER-1675").
    pub mode: String,
    /// The system kind ("zookeeper").
    pub system: String,
    /// The base scenario's name.
    pub base: String,
    /// The base scenario with this mode (and only it) switched on.
    pub scenario: Scenario,
}

/// Why a scenario cannot be a hunt base.
pub fn check_base(base: &Scenario) -> Result<(), String> {
    if !base.faults.is_empty() {
        return Err("a hunt base has no explicit faults (the nemesis must find bugs blind)".into());
    }
    if base.nemesis.is_none() {
        return Err("a hunt base needs a `nemesis`".into());
    }
    if base.system.bug_modes_on() {
        return Err("a hunt base runs with every bug mode off".into());
    }
    Ok(())
}

/// Every bug mode the base's system knows, each switched on alone in a copy of the base.
pub fn mode_cases(base: &Scenario) -> Vec<ModeCase> {
    base.system
        .bug_mode_names()
        .into_iter()
        .filter_map(|mode| {
            let mut scenario = base.clone();
            scenario.system = base.system.with_only_bug_mode(&mode)?;
            scenario.name = format!("{}-{}", base.name, mode);
            Some(ModeCase {
                system: base.system.kind_name().to_string(),
                base: base.name.clone(),
                mode,
                scenario,
            })
        })
        .collect()
}

/// The scoreboard line of one mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeScore {
    pub mode: String,
    pub system: String,
    /// The base scenario's name.
    pub base: String,
    pub seeds_run: u64,
    pub seeds_failing: u64,
    pub first_failing_seed: Option<u64>,
    /// Median gap between consecutive failing seeds, the first from seed 0 (module docs).
    pub median_seeds_to_detection: Option<u64>,
    /// Invariants tripped (the first violation of each failing seed), with seed counts.
    pub invariants: BTreeMap<String, u64>,
    /// Seeds of the run set aside because the base fails them with every mode off.
    #[serde(default)]
    pub base_failing: u64,
    /// Wall-clock seconds spent on this mode, in milliseconds (integer, for stable JSON).
    pub wall_ms: u64,
}

/// The median gap between consecutive failing seeds of a run over `first..`, the first gap
/// counted from `first` (so a failure at `first` is a gap of 1). None without failures.
pub fn median_gap(first: u64, failing: &[u64]) -> Option<u64> {
    let mut gaps: Vec<u64> = Vec::with_capacity(failing.len());
    let mut prev = first;
    for (i, &s) in failing.iter().enumerate() {
        gaps.push(if i == 0 { s - prev + 1 } else { s - prev });
        prev = s;
    }
    gaps.sort_unstable();
    // The lower median: an integer, and a conservative one.
    gaps.get(gaps.len().saturating_sub(1) / 2).copied()
}

/// One seed's verdict, kept small (a hunt runs thousands).
struct Verdict {
    seed: u64,
    invariant: Option<String>,
}

/// Fuzzes seeds `0..seeds` of one mode on `jobs` threads; with `stop_after` > 0 stops once
/// that many seeds failed (module docs). Results do not depend on `jobs`.
pub fn score(case: &ModeCase, seeds: u64, jobs: usize, stop_after: u64) -> ModeScore {
    score_excluding(case, seeds, jobs, stop_after, &BTreeSet::new())
}

/// The seeds of `0..seeds` on which `base` (every mode off) fails, on `jobs` threads.
pub fn base_failures(base: &Scenario, seeds: u64, jobs: usize) -> BTreeSet<u64> {
    let next = AtomicU64::new(0);
    let failing: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds {
                    break;
                }
                if !super::run_seed(base, seed, None)
                    .outcome
                    .violations
                    .is_empty()
                {
                    failing.lock().expect("no poisoned lock").insert(seed);
                }
            });
        }
    });
    failing.into_inner().expect("no poisoned lock")
}

/// As [`score`], with the seeds of `skip` (the base's own failures) counted as passing
/// without being run.
pub fn score_excluding(
    case: &ModeCase,
    seeds: u64,
    jobs: usize,
    stop_after: u64,
    skip: &BTreeSet<u64>,
) -> ModeScore {
    // Wall time is measured around the runs only, for the scoreboard.
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let next = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let verdicts: Mutex<Vec<Verdict>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds {
                    break;
                }
                let invariant = if skip.contains(&seed) {
                    None
                } else {
                    let run = super::run_seed(&case.scenario, seed, None);
                    run.outcome.violations.first().map(|v| v.invariant.clone())
                };
                if invariant.is_some() {
                    let found = failures.fetch_add(1, Ordering::Relaxed) + 1;
                    if stop_after > 0 && found >= stop_after {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                let mut all = verdicts.lock().expect("no poisoned lock");
                all.push(Verdict { seed, invariant });
            });
        }
    });
    let mut all = verdicts.into_inner().expect("no poisoned lock");
    all.sort_by_key(|v| v.seed);
    // Seeds are handed out in order and every handed-out seed finishes, so `all` is a prefix
    // 0..M. Cut it at the stop_after-th failure so that the figures are exactly those of a
    // prefix, whatever the threads did past it.
    if stop_after > 0 {
        let mut seen = 0;
        if let Some(cut) = all.iter().position(|v| {
            seen += v.invariant.is_some() as u64;
            seen == stop_after
        }) {
            all.truncate(cut + 1);
        }
    }
    let wall_ms = started.elapsed().as_millis() as u64;
    let mut score = tally(case, &all, wall_ms);
    score.base_failing = all.iter().filter(|v| skip.contains(&v.seed)).count() as u64;
    score
}

fn tally(case: &ModeCase, all: &[Verdict], wall_ms: u64) -> ModeScore {
    let failing: Vec<u64> = all
        .iter()
        .filter(|v| v.invariant.is_some())
        .map(|v| v.seed)
        .collect();
    let mut invariants = BTreeMap::new();
    for inv in all.iter().filter_map(|v| v.invariant.as_ref()) {
        *invariants.entry(inv.clone()).or_insert(0) += 1;
    }
    ModeScore {
        mode: case.mode.clone(),
        system: case.system.clone(),
        base: case.base.clone(),
        seeds_run: all.len() as u64,
        seeds_failing: failing.len() as u64,
        first_failing_seed: failing.first().copied(),
        median_seeds_to_detection: median_gap(0, &failing),
        invariants,
        base_failing: 0,
        wall_ms,
    }
}

/// The scoreboard as a Markdown table.
pub fn markdown(scores: &[ModeScore]) -> String {
    let mut out = String::from(
        "| mode | system | seeds run | failing | first failing seed | median seeds to \
         detection | invariants tripped | wall s |\n| --- | --- | ---: | ---: | ---: | ---: | \
         --- | ---: |\n",
    );
    let dash = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for s in scores {
        let invariants: Vec<String> = s
            .invariants
            .iter()
            .map(|(k, v)| format!("{k} ({v})"))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {}.{:02} |\n",
            s.mode,
            s.system,
            s.seeds_run,
            s.seeds_failing,
            dash(s.first_failing_seed),
            dash(s.median_seeds_to_detection),
            if invariants.is_empty() {
                "-".to_string()
            } else {
                invariants.join(", ")
            },
            s.wall_ms / 1000,
            s.wall_ms % 1000 / 10
        ));
    }
    out
}

/// The committed expectations a CI hunt compares against: the modes that were found within
/// `seeds` seeds when the file was written (with the first failing seed then, for people).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// The seed count the expectations were measured with; a hunt compared against them
    /// must run at least as many.
    pub seeds: u64,
    /// Mode -> first failing seed when measured. Each listed mode must still be found.
    pub found: BTreeMap<String, u64>,
}

/// The regressions: modes the expectations list that this hunt did not find, or did not
/// run. Empty when every expected mode was found.
pub fn regressions(expected: &Expectations, scores: &[ModeScore]) -> Vec<String> {
    let mut out = Vec::new();
    // A mode hunted in several bases (Kafka's two) is found when any of them finds it.
    for (mode, first) in &expected.found {
        let runs: Vec<&ModeScore> = scores.iter().filter(|s| &s.mode == mode).collect();
        match runs.iter().map(|s| s.seeds_run).max() {
            None => out.push(format!(
                "{mode}: expected found, but the hunt did not run it"
            )),
            Some(seeds_run) if runs.iter().all(|s| s.seeds_failing == 0) => out.push(format!(
                "{mode}: no longer found within {seeds_run} seeds (first failing seed was {first})"
            )),
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_gap_counts_the_first_gap_from_the_start() {
        assert_eq!(median_gap(0, &[]), None);
        assert_eq!(median_gap(0, &[0]), Some(1));
        // Gaps 5, 6, 1 -> sorted 1, 5, 6 -> median 5.
        assert_eq!(median_gap(0, &[4, 10, 11]), Some(5));
        // Gaps 10, 2, 2, 30 -> lower median of 2, 2, 10, 30 is 2.
        assert_eq!(median_gap(0, &[9, 11, 13, 43]), Some(2));
    }

    #[test]
    fn regressions_name_a_mode_that_is_no_longer_found() {
        let score = |mode: &str, failing: u64| ModeScore {
            mode: mode.into(),
            system: "zookeeper".into(),
            base: "b".into(),
            seeds_run: 100,
            seeds_failing: failing,
            first_failing_seed: (failing > 0).then_some(3),
            median_seeds_to_detection: None,
            invariants: BTreeMap::new(),
            base_failing: 0,
            wall_ms: 0,
        };
        let expected = Expectations {
            seeds: 100,
            found: [
                ("A".to_string(), 3),
                ("B".to_string(), 7),
                ("C".to_string(), 1),
            ]
            .into_iter()
            .collect(),
        };
        let got = regressions(&expected, &[score("A", 2), score("B", 0)]);
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("B: no longer found within 100 seeds"));
        assert!(got[1].starts_with("C: expected found, but the hunt did not run it"));
        assert!(regressions(&expected, &[score("A", 1), score("B", 1), score("C", 9)]).is_empty());
        // Hunted in two bases: found when either finds it, lost only when neither does.
        let two = [
            score("A", 0),
            score("A", 4),
            score("B", 0),
            score("B", 0),
            score("C", 1),
        ];
        let got = regressions(&expected, &two);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("B: no longer found within 100 seeds"));
    }
}
