//! Shrinking a failing run to its essence: the fewest, shortest faults, the shortest fault
//! phase and the smallest workload with which the same seed still violates the same
//! invariant, so that a report shows what the bug needs and nothing else.
//!
//! The failing run is first turned into a scenario with an explicit schedule (its concrete
//! faults listed, the nemesis off); every candidate is a change to that scenario and a full
//! deterministic re-run. The passes, repeated until none makes progress or the budget of
//! re-runs is spent:
//! 1. the faults, by delta debugging (chunks first, then single faults; see `ddmin`);
//! 2. each fault's hold time and delay, lowered toward a millisecond by halving;
//! 3. the fault phase (`duration`), down to just after the last fault;
//! 4. the workload: clients, rate and keys.
//!
//! Faults draw from their own streams, so removing or shortening one does not reshuffle the
//! workload: those candidates perturb the run only where the fault acted. A workload change
//! does reshuffle the whole run (the network stream is shared, every client has its own
//! stream), so it is kept only if the reshuffled run still fails the same way; that is why
//! the passes repeat: a new workload may make more faults unnecessary.
//!
//! "The same way" means the invariant is the first violation the run reports, when it was in
//! the original run (so the shrunk report leads with the same headline); otherwise any
//! violation of that invariant.
//!
//! Depends on: cluster, scenario, sim (types), report (through the parent's report writer).

mod ddmin;
pub mod knobs;

use std::path::{Path, PathBuf};

use crate::cluster::{self, RunOptions, RunOutcome};
use crate::scenario::{explicit, validate, Scenario, Schedule};
use crate::sim::time::{Dur, NS_PER_MS};
use knobs::{FaultKnob, WorkloadKnob};

/// Re-runs one shrink may spend unless told otherwise. A ZooKeeper run of a few simulated
/// seconds takes milliseconds, so this is well under a second of wall time for most runs.
pub const DEFAULT_MAX_RUNS: usize = 600;

/// The result of shrinking.
pub struct Shrunk {
    /// The shrunk run as a scenario: explicit `faults`, nemesis off, the seed as default,
    /// named `<original>-shrunk`.
    pub scenario: Scenario,
    /// Its schedule (the scenario's faults).
    pub schedule: Schedule,
    /// The shrunk run's outcome (it violates the invariant).
    pub outcome: RunOutcome,
    pub faults_before: usize,
    /// Re-runs spent, counting the first one that reproduces the failure.
    pub runs: usize,
    /// The budget ran out before the passes reached a fixed point.
    pub budget_spent: bool,
    /// Wall-clock time of the whole shrink (measured around the runs, never inside).
    pub wall_ns: u64,
    /// What each pass achieved, readable, in order.
    pub steps: Vec<String>,
}

/// The search state: the smallest failing scenario so far and the budget.
struct Search<'a> {
    seed: u64,
    invariant: &'a str,
    first_only: bool,
    runs: usize,
    max_runs: usize,
    budget_spent: bool,
    best: Scenario,
    outcome: RunOutcome,
    steps: Vec<String>,
}

fn run_explicit(scenario: &Scenario, seed: u64) -> RunOutcome {
    let schedule = Schedule {
        faults: scenario.faults.clone(),
        nemesis: None,
    };
    cluster::run(scenario, seed, &schedule, &RunOptions::default())
}

impl Search<'_> {
    fn same_failure(&self, outcome: &RunOutcome) -> bool {
        if self.first_only {
            outcome.violations.first().map(|v| v.invariant.as_str()) == Some(self.invariant)
        } else {
            outcome
                .violations
                .iter()
                .any(|v| v.invariant == self.invariant)
        }
    }

    /// Runs `candidate` (if it is a valid scenario and the budget allows); if it fails the
    /// same way, it becomes the best so far. Returns whether it did.
    fn try_candidate(&mut self, candidate: Scenario) -> bool {
        if validate::validate(&candidate).is_err() {
            return false;
        }
        if self.runs >= self.max_runs {
            self.budget_spent = true;
            return false;
        }
        self.runs += 1;
        let outcome = run_explicit(&candidate, self.seed);
        if !self.same_failure(&outcome) {
            return false;
        }
        self.best = candidate;
        self.outcome = outcome;
        true
    }

    fn note(&mut self, runs_before: usize, what: String) {
        let runs = self.runs - runs_before;
        self.steps.push(format!("{what} ({runs} re-runs)"));
    }
}

/// Shrinks the failing run of `seed` with `schedule` while it keeps violating `invariant`.
/// Returns None if the run does not violate it in the first place.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    schedule: &Schedule,
    invariant: &str,
    max_runs: usize,
) -> Option<Shrunk> {
    // Wall time is measured around the runs only, for the summary.
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let start = explicit::with_schedule(scenario, seed, &schedule.faults);
    validate::validate(&start).ok()?;
    let outcome = run_explicit(&start, seed);
    let first_only = outcome.violations.first()?.invariant == invariant;
    let mut search = Search {
        seed,
        invariant,
        first_only,
        runs: 1,
        max_runs: max_runs.max(1),
        budget_spent: false,
        best: start,
        outcome,
        steps: Vec::new(),
    };
    if !search.same_failure(&search.outcome) {
        return None;
    }
    loop {
        let mut changed = pass_roles(&mut search);
        changed |= pass_faults(&mut search);
        changed |= pass_fault_knobs(&mut search);
        changed |= pass_duration(&mut search);
        changed |= pass_workload(&mut search);
        if !changed || search.budget_spent {
            break;
        }
    }
    pass_round_times(&mut search);
    let mut shrunk = search.best;
    shrunk.name = format!("{}-shrunk", scenario.name);
    Some(Shrunk {
        schedule: Schedule {
            faults: shrunk.faults.clone(),
            nemesis: None,
        },
        scenario: shrunk,
        outcome: search.outcome,
        faults_before: schedule.faults.len(),
        runs: search.runs,
        budget_spent: search.budget_spent,
        wall_ns: started.elapsed().as_nanos() as u64,
        steps: search.steps,
    })
}

/// Pass 0: faults that name one server are aimed at the leader instead, kept where the run
/// still fails (it is the same run when that server was the leader). A fault that hits "the
/// leader" says more than one that hits "zk1", and it keeps hitting the leader when a later
/// pass perturbs who leads, which is what makes the other passes work on timing-sensitive
/// failures.
fn pass_roles(s: &mut Search) -> bool {
    let runs = s.runs;
    let servers = s.best.system.fault_target_names();
    let roles: Vec<&str> = s
        .best
        .system
        .roles()
        .iter()
        .copied()
        .filter(|r| *r == "@leader")
        .collect();
    let mut aimed = 0;
    for i in 0..s.best.faults.len() {
        for role in &roles {
            let Some(action) = knobs::aimed_at_role(&s.best.faults[i].action, role, &servers)
            else {
                continue;
            };
            let mut candidate = s.best.clone();
            candidate.faults[i].action = action;
            if s.try_candidate(candidate) {
                aimed += 1;
                break;
            }
        }
    }
    if aimed > 0 {
        s.note(runs, format!("{aimed} faults aimed at a role"));
    }
    aimed > 0
}

/// Pass 1: the list of faults: every fault of one kind at once (the noise of delay spikes
/// or clogs often goes as a whole), then delta debugging.
fn pass_faults(s: &mut Search) -> bool {
    let (before, runs) = (s.best.faults.len(), s.runs);
    let mut kinds: Vec<&'static str> = s.best.faults.iter().map(|f| f.action.kind()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    if kinds.len() > 1 {
        for kind in kinds {
            let mut candidate = s.best.clone();
            candidate.faults.retain(|f| f.action.kind() != kind);
            s.try_candidate(candidate);
        }
    }
    let base = s.best.clone();
    ddmin::ddmin(base.faults.len(), &mut |keep| {
        let faults = keep.iter().map(|i| base.faults[*i].clone()).collect();
        s.try_candidate(Scenario {
            faults,
            ..base.clone()
        })
    });
    let after = s.best.faults.len();
    if after < before {
        s.note(runs, format!("faults {before} -> {after}"));
    }
    after < before
}

/// Pass 2: each fault's hold time and delay.
fn pass_fault_knobs(s: &mut Search) -> bool {
    let runs = s.runs;
    let mut lowered = 0;
    for i in 0..s.best.faults.len() {
        for knob in [FaultKnob::Hold, FaultKnob::Delay] {
            let Some(current) = knobs::fault_knob(&s.best.faults[i].action, knob) else {
                continue;
            };
            let base = s.best.clone();
            let min = knobs::FAULT_KNOB_MIN_NS;
            let got = knobs::lower_duration(current.ns(), min, &mut |v| {
                let mut candidate = base.clone();
                knobs::set_fault_knob(&mut candidate.faults[i].action, knob, Dur(v));
                s.try_candidate(candidate)
            });
            lowered += usize::from(got < current.ns());
        }
    }
    if lowered > 0 {
        s.note(runs, format!("{lowered} hold times and delays lowered"));
    }
    lowered > 0
}

/// Pass 3: the fault phase, down to the first whole millisecond after the last fault. If
/// the violation came inside the fault phase, ending the phase just after it gives the same
/// run up to the violation, so that is tried first.
fn pass_duration(s: &mut Search) -> bool {
    let runs = s.runs;
    let before = s.best.duration;
    let last_at = s.best.faults.iter().map(|f| f.at.ns()).max().unwrap_or(0);
    let min = (last_at / NS_PER_MS + 1) * NS_PER_MS;
    let at_ns = s.outcome.violations.first().map_or(u64::MAX, |v| v.at_ns);
    let just_after = (at_ns / NS_PER_MS + 1) * NS_PER_MS;
    if just_after.max(min) < before.ns() {
        let base = s.best.clone();
        s.try_candidate(Scenario {
            duration: Dur(just_after.max(min)),
            ..base
        });
    }
    let base = s.best.clone();
    knobs::lower_duration(s.best.duration.ns(), min, &mut |v| {
        s.try_candidate(Scenario {
            duration: Dur(v),
            ..base.clone()
        })
    });
    let after = s.best.duration;
    if after < before {
        s.note(runs, format!("fault phase {before} -> {after}"));
    }
    after < before
}

/// Pass 4: the workload, each knob to the smallest tried value that still fails.
fn pass_workload(s: &mut Search) -> bool {
    let mut changed = false;
    for knob in WorkloadKnob::ALL {
        let Some(current) = knob.get(&s.best) else {
            continue;
        };
        // Without clients the rate and the keys mean nothing: lowering them is no progress.
        if knob != WorkloadKnob::Clients && WorkloadKnob::Clients.get(&s.best) == Some(0) {
            continue;
        }
        let runs = s.runs;
        // A run with no clients at all still elects leaders (enough for election bugs).
        let min = u32::from(knob != WorkloadKnob::Clients);
        for value in knobs::lower_counts(current, min) {
            let candidate = knob.set(&s.best, value);
            if s.try_candidate(candidate) {
                s.note(runs, format!("{} {current} -> {value}", knob.name()));
                changed = true;
                break;
            }
        }
    }
    changed
}

/// Last, for the reader: fault times and durations rounded to whole milliseconds, kept if
/// the run still fails the same way (one re-run).
fn pass_round_times(s: &mut Search) {
    let round = |ns: u64| (ns + NS_PER_MS / 2) / NS_PER_MS * NS_PER_MS;
    let mut candidate = s.best.clone();
    for f in &mut candidate.faults {
        // Rounding is monotone, so the faults stay in time order.
        f.at = Dur(round(f.at.ns()));
        for knob in [FaultKnob::Hold, FaultKnob::Delay] {
            if let Some(d) = knobs::fault_knob(&f.action, knob) {
                let rounded = Dur(round(d.ns()).max(NS_PER_MS));
                knobs::set_fault_knob(&mut f.action, knob, rounded);
            }
        }
    }
    let last_at = candidate
        .faults
        .iter()
        .map(|f| f.at.ns())
        .max()
        .unwrap_or(0);
    let duration = round(candidate.duration.ns()).max(last_at + NS_PER_MS);
    candidate.duration = Dur(duration);
    if candidate != s.best {
        let runs = s.runs;
        if s.try_candidate(candidate) {
            s.note(runs, "times rounded to milliseconds".into());
        }
    }
}

/// What differs between the original scenario and the shrunk one, readable.
fn changes(original: &Scenario, shrunk: &Scenario, faults_before: usize) -> Vec<String> {
    let mut out = vec![format!("{faults_before} -> {} faults", shrunk.faults.len())];
    if shrunk.duration != original.duration {
        out.push(format!(
            "fault phase {} -> {}",
            original.duration, shrunk.duration
        ));
    }
    for knob in WorkloadKnob::ALL {
        if let (Some(a), Some(b)) = (knob.get(original), knob.get(shrunk)) {
            if a != b {
                out.push(format!("{} {a} -> {b}", knob.name()));
            }
        }
    }
    out
}

/// What `shrink_and_report` produced, for the command line and campaigns.
pub struct ShrinkSummary {
    pub invariant: String,
    pub faults_before: usize,
    pub faults_after: usize,
    pub runs: usize,
    pub budget_spent: bool,
    pub wall_ns: u64,
    pub steps: Vec<String>,
    /// The shrunk scenario file (explicit schedule), which `faultline run` replays.
    pub scenario_file: PathBuf,
    /// The shrunk run's report.
    pub report: PathBuf,
}

impl ShrinkSummary {
    /// The command that re-runs the shrunk scenario.
    pub fn run_command(&self) -> String {
        format!("faultline run {}", self.scenario_file.display())
    }
}

/// Shrinks a failed seed, writes the shrunk scenario file `<name>-shrunk-seed<N>.scenario.json`
/// and the shrunk run's report `<name>-shrunk-seed<N>.json` (the report `faultline run` of
/// that file writes) into `dir`. None if the run does not violate `invariant`.
pub fn shrink_and_report_with(
    scenario_file: &str,
    scenario: &Scenario,
    seed: u64,
    schedule: &Schedule,
    invariant: &str,
    dir: &Path,
    max_runs: usize,
) -> std::io::Result<Option<ShrinkSummary>> {
    let Some(mut shrunk) = shrink(scenario, seed, schedule, invariant, max_runs) else {
        return Ok(None);
    };
    let path = dir.join(format!("{}-seed{seed}.scenario.json", shrunk.scenario.name));
    let after = shrunk.schedule.faults.len();
    shrunk.scenario.description = format!(
        "Shrunk by faultline from {scenario_file} seed {seed}, which violates {invariant}: {}. \
         Replay: faultline run {}",
        changes(scenario, &shrunk.scenario, shrunk.faults_before).join(", "),
        path.display()
    );
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, explicit::to_file_text(&shrunk.scenario))?;
    let report = super::write_report_for(
        &path.display().to_string(),
        &shrunk.scenario,
        seed,
        &shrunk.schedule,
        shrunk.outcome.trace_hash,
        dir,
        "",
    )?;
    Ok(Some(ShrinkSummary {
        invariant: invariant.to_string(),
        faults_before: shrunk.faults_before,
        faults_after: after,
        runs: shrunk.runs,
        budget_spent: shrunk.budget_spent,
        wall_ns: shrunk.wall_ns,
        steps: shrunk.steps,
        scenario_file: path,
        report,
    }))
}
