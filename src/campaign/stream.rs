//! The campaign engine: seeds run on `jobs` threads (whole seeds, never inside a run) and
//! come back to the caller in seed order, with memory that does not depend on how many seeds
//! the campaign runs.
//!
//! Why seed order and not completion order: a line printed for seed S then means that every
//! seed before S is done too, so the output of a killed campaign names one contiguous range
//! ("continue from the last seed printed + 1"), and the output of a campaign does not depend
//! on `--jobs`. The cost is a reorder window: a worker may run ahead of the oldest unfinished
//! seed by at most `WINDOW_PER_JOB * jobs` seeds, which bounds what is buffered. One slow seed
//! stalls the others only once they are a whole window ahead of it.
//!
//! Failing seeds get their report (and shrunk report) written on the worker threads, so that
//! shrinking runs in parallel; a failing seed is reported only once the campaign knows it is
//! part of the result (every earlier seed classified and `max_failures` not yet reached),
//! so no report is written for a seed the summary does not list.
//!
//! Threads share one mutex-protected `State` and one condition variable; every change that
//! another thread may wait for is followed by `notify_all` (two to a few dozen threads, so the
//! wake-ups cost nothing next to a run).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::{run_seed, shrink_and_report, write_report, SeedRun};
use crate::cluster::Violation;
use crate::scenario::Scenario;

/// How far (in seeds, per thread) workers may run ahead of the oldest seed not yet handed to
/// the caller. 64 seeds of the heaviest bundled scenario are about 1 MB.
pub const WINDOW_PER_JOB: u64 = 64;

/// Failing seeds the summary keeps in memory (the first ones, in seed order). Every failing
/// seed is still handed to the caller (its JSON line, its report); only the summary's list
/// stops growing, so that a scenario failing on every seed keeps flat memory too.
pub const FAILING_KEPT: usize = 1000;

/// How a campaign runs and when it stops early.
#[derive(Clone, Debug, Default)]
pub struct FuzzOptions {
    /// Threads; each runs whole seeds. 0 is taken as 1.
    pub jobs: usize,
    /// Wall-clock budget: once spent, no new seed is started; seeds in flight finish.
    pub time_budget: Option<Duration>,
    /// Stop after this many failing seeds (counted in seed order, so the result does not
    /// depend on `jobs`).
    pub max_failures: Option<u64>,
    /// Where failing seeds' reports go; None writes none.
    pub reports: Option<ReportPlan>,
}

impl FuzzOptions {
    /// Options with only a thread count: run every seed, write no report.
    pub fn jobs(jobs: usize) -> FuzzOptions {
        FuzzOptions {
            jobs,
            ..FuzzOptions::default()
        }
    }
}

/// Reports for failing seeds.
#[derive(Clone, Debug)]
pub struct ReportPlan {
    /// The scenario file as the user named it (it goes into the replay command).
    pub scenario_file: String,
    pub dir: PathBuf,
    /// Also shrink each failing seed's schedule and write a `-shrunk` report.
    pub shrink: bool,
}

/// The reports written for one failing seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifacts {
    pub report: PathBuf,
    /// (faults before, faults after, path) when shrinking removed a fault.
    pub shrunk: Option<(usize, usize, PathBuf)>,
}

/// One finished seed as handed to the caller.
pub struct Finished {
    pub run: SeedRun,
    /// For a failing seed when reports are on: its reports, or why they could not be written.
    pub artifacts: Option<Result<Artifacts, String>>,
}

/// Why a campaign ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every seed of the range ran.
    Completed,
    /// The time budget was spent before the range was done.
    TimeBudget,
    /// `max_failures` failing seeds were found.
    MaxFailures,
    /// A report could not be written (disk full, no permission): the campaign stopped.
    ReportError,
}

impl Stop {
    pub fn name(self) -> &'static str {
        match self {
            Stop::Completed => "completed",
            Stop::TimeBudget => "time-budget",
            Stop::MaxFailures => "max-failures",
            Stop::ReportError => "report-error",
        }
    }
}

/// A failing seed as the summary keeps it: the first violation and where its reports are.
#[derive(Clone, Debug)]
pub struct FailingSeed {
    pub seed: u64,
    pub violation: Violation,
    pub artifacts: Option<Artifacts>,
}

/// Seeds whose run reproduced one known real-system behaviour (`KnownBehaviour`), by
/// name: counted apart from passes and failures, never hidden.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownTally {
    pub name: String,
    pub reference: String,
    pub seeds: u64,
    /// The first `FAILING_KEPT` such seeds, in seed order.
    pub first_seeds: Vec<u64>,
}

/// Wall-clock time per seed, measured around each run (never inside).
#[derive(Clone, Debug, Default)]
pub struct WallStats {
    pub total_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    /// The seed that took `max_ns` (the first such seed).
    pub slowest_seed: u64,
}

impl WallStats {
    fn add(&mut self, seed: u64, wall_ns: u64, first: bool) {
        if first || wall_ns < self.min_ns {
            self.min_ns = wall_ns;
        }
        if first || wall_ns > self.max_ns {
            self.max_ns = wall_ns;
            self.slowest_seed = seed;
        }
        self.total_ns = self.total_ns.saturating_add(wall_ns);
    }
}

/// Everything a campaign keeps: its size does not depend on the number of seeds.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The range asked for.
    pub requested: Range<u64>,
    /// The seeds that ran and were handed to the caller: always a prefix of `requested`.
    pub covered: Range<u64>,
    pub passed: u64,
    pub failed: u64,
    /// Seeds with no violation whose history check ran out of budget: never passes.
    pub unknown: u64,
    /// Seeds with no violation where a known real-system behaviour took the place of one:
    /// not passes, not failures.
    pub known: u64,
    /// Those seeds by behaviour, in the order first seen.
    pub known_by_name: Vec<KnownTally>,
    /// Events delivered, over all covered seeds.
    pub events: u64,
    /// The first `FAILING_KEPT` failing seeds, in seed order.
    pub failing: Vec<FailingSeed>,
    pub wall: WallStats,
    pub stop: Stop,
    /// The first report that could not be written.
    pub report_error: Option<String>,
}

impl Summary {
    fn new(requested: Range<u64>) -> Summary {
        Summary {
            covered: requested.start..requested.start,
            requested,
            passed: 0,
            failed: 0,
            unknown: 0,
            known: 0,
            known_by_name: Vec::new(),
            events: 0,
            failing: Vec::new(),
            wall: WallStats::default(),
            stop: Stop::Completed,
            report_error: None,
        }
    }

    pub fn seeds_run(&self) -> u64 {
        self.covered.end - self.covered.start
    }

    /// Counts one finished seed (they arrive in seed order).
    fn add(&mut self, finished: &Finished) {
        let run = &finished.run;
        debug_assert_eq!(run.seed, self.covered.end);
        self.wall.add(run.seed, run.wall_ns, self.seeds_run() == 0);
        self.covered.end = run.seed + 1;
        self.events += run.outcome.events;
        if !run.failed() {
            if let Some(k) = run.outcome.known.first() {
                self.known += 1;
                let tally = match self.known_by_name.iter().position(|t| t.name == k.name) {
                    Some(i) => &mut self.known_by_name[i],
                    None => {
                        self.known_by_name.push(KnownTally {
                            name: k.name.clone(),
                            reference: k.reference.clone(),
                            seeds: 0,
                            first_seeds: Vec::new(),
                        });
                        self.known_by_name.last_mut().expect("pushed")
                    }
                };
                tally.seeds += 1;
                if tally.first_seeds.len() < FAILING_KEPT {
                    tally.first_seeds.push(run.seed);
                }
            } else if super::verdict_unknown(&run.outcome.system) {
                self.unknown += 1;
            } else {
                self.passed += 1;
            }
            return;
        }
        self.failed += 1;
        let artifacts = match &finished.artifacts {
            Some(Ok(a)) => Some(a.clone()),
            Some(Err(e)) => {
                self.report_error.get_or_insert_with(|| e.clone());
                None
            }
            None => None,
        };
        if self.failing.len() < FAILING_KEPT {
            self.failing.push(FailingSeed {
                seed: run.seed,
                violation: run.outcome.violations[0].clone(),
                artifacts,
            });
        }
    }
}

/// What the threads share.
struct State {
    /// The next seed to hand out.
    next: u64,
    /// False once the budget is spent, `max_failures` is reached or a report failed.
    handing_out: bool,
    stop: Stop,
    /// Finished runs not yet classified, keyed by seed.
    done: BTreeMap<u64, SeedRun>,
    /// Seeds below this are classified: dropped (past the cut), ready, or waiting for reports.
    classified: u64,
    failures_classified: u64,
    /// Seeds at or after the cut are dropped unseen (they ran past `max_failures`).
    cut: Option<u64>,
    /// Failing seeds whose reports a worker should write, in seed order.
    tasks: VecDeque<SeedRun>,
    /// Classified seeds by seed: None while a worker writes the reports.
    ready: BTreeMap<u64, Option<Finished>>,
    /// Seeds below this were handed to the caller.
    emitted: u64,
    /// Set by the caller's thread when it is done: workers exit.
    finished: bool,
    /// A worker panicked outside a run (a bug of ours): stop waiting for it.
    worker_died: bool,
}

struct Shared<'a> {
    scenario: &'a Scenario,
    end: u64,
    window: u64,
    options: &'a FuzzOptions,
    state: Mutex<State>,
    wake: Condvar,
    #[allow(clippy::disallowed_types)] // wall clock around runs only, for the budget
    started: std::time::Instant,
}

impl Shared<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a worker died; `worker_died` tells the caller.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'g>(&self, guard: MutexGuard<'g, State>) -> MutexGuard<'g, State> {
        self.wake.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    fn budget_spent(&self) -> bool {
        self.options
            .time_budget
            .is_some_and(|b| self.started.elapsed() >= b)
    }
}

/// Sets `worker_died` if a worker unwinds, so the caller's thread stops waiting for it.
struct DeathNotice<'a, 'b>(&'a Shared<'b>);

impl Drop for DeathNotice<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().worker_died = true;
            self.0.wake.notify_all();
        }
    }
}

/// Ends the campaign for the workers when the caller's thread leaves `consume`, normally or
/// by a panic in the sink (so that the scope's join cannot hang).
struct FinishOnDrop<'a, 'b>(&'a Shared<'b>);

impl Drop for FinishOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.lock().finished = true;
        self.0.wake.notify_all();
    }
}

/// Runs `seeds` on `options.jobs` threads and hands each finished seed to `sink`, in seed
/// order, on the calling thread. Stops early on the time budget or `max_failures`; the
/// summary says which contiguous range was covered. Memory stays flat: at most a window of
/// runs is buffered, and the summary keeps counters and the first `FAILING_KEPT` failures.
pub fn fuzz(
    scenario: &Scenario,
    seeds: Range<u64>,
    options: &FuzzOptions,
    sink: &mut dyn FnMut(Finished),
) -> Summary {
    let jobs = options.jobs.max(1);
    let shared = Shared {
        scenario,
        end: seeds.end.max(seeds.start),
        window: WINDOW_PER_JOB * jobs as u64,
        options,
        state: Mutex::new(State {
            next: seeds.start,
            handing_out: true,
            stop: Stop::Completed,
            done: BTreeMap::new(),
            classified: seeds.start,
            failures_classified: 0,
            cut: None,
            tasks: VecDeque::new(),
            ready: BTreeMap::new(),
            emitted: seeds.start,
            finished: false,
            worker_died: false,
        }),
        wake: Condvar::new(),
        #[allow(clippy::disallowed_types)] // wall clock around runs only
        started: std::time::Instant::now(),
    };
    let mut summary = Summary::new(seeds);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| work(&shared));
        }
        consume(&shared, &mut summary, sink);
    });
    summary.stop = shared.lock().stop;
    summary
}

/// A worker: writes reports when asked (first, since the caller waits for them), else runs
/// the next seed if it is inside the window, else waits.
fn work(shared: &Shared<'_>) {
    let _notice = DeathNotice(shared);
    let mut st = shared.lock();
    loop {
        if st.finished {
            return;
        }
        if let Some(run) = st.tasks.pop_front() {
            drop(st);
            let artifacts = write_reports(shared, &run);
            st = shared.lock();
            if artifacts.is_err() {
                st.handing_out = false;
                st.stop = Stop::ReportError;
            }
            let finished = Finished {
                run,
                artifacts: Some(artifacts),
            };
            st.ready.insert(finished.run.seed, Some(finished));
            shared.wake.notify_all();
            continue;
        }
        if st.handing_out && st.next < shared.end && shared.budget_spent() {
            st.handing_out = false;
            st.stop = Stop::TimeBudget;
            shared.wake.notify_all();
            continue;
        }
        if st.handing_out && st.next < shared.end && st.next < st.emitted + shared.window {
            let seed = st.next;
            st.next += 1;
            drop(st);
            let run = run_seed(shared.scenario, seed, None);
            st = shared.lock();
            st.done.insert(seed, run);
            shared.wake.notify_all();
            continue;
        }
        st = shared.wait(st);
    }
}

fn write_reports(shared: &Shared<'_>, run: &SeedRun) -> Result<Artifacts, String> {
    let plan = shared
        .options
        .reports
        .as_ref()
        .expect("tasks are queued only with a report plan");
    let report = write_report(&plan.scenario_file, shared.scenario, run, &plan.dir)
        .map_err(|e| format!("cannot write the report of seed {}: {e}", run.seed))?;
    let shrunk = if plan.shrink {
        let invariant = &run.outcome.violations[0].invariant;
        shrink_and_report(
            &plan.scenario_file,
            shared.scenario,
            run.seed,
            &run.schedule,
            invariant,
            &plan.dir,
        )
        .map_err(|e| format!("cannot write the shrunk report of seed {}: {e}", run.seed))?
    } else {
        None
    };
    Ok(Artifacts { report, shrunk })
}

/// The caller's thread: classifies finished seeds in order, hands them to `sink` in order,
/// and ends the campaign when every seed handed out has been dealt with.
fn consume(shared: &Shared<'_>, summary: &mut Summary, sink: &mut dyn FnMut(Finished)) {
    let _finish = FinishOnDrop(shared);
    let mut st = shared.lock();
    loop {
        classify(shared, &mut st);
        let head = st.emitted;
        if let Some(Some(_)) = st.ready.get(&head) {
            let finished = st.ready.remove(&head).flatten().expect("checked above");
            st.emitted += 1;
            shared.wake.notify_all();
            drop(st);
            summary.add(&finished);
            sink(finished);
            st = shared.lock();
            continue;
        }
        let last = match st.cut {
            Some(cut) => cut,
            None if st.handing_out && st.next < shared.end => u64::MAX,
            None => st.next,
        };
        if st.emitted >= last || st.worker_died {
            return;
        }
        st = shared.wait(st);
    }
}

/// Moves finished seeds, in seed order, from `done` to `ready` (or to the report queue, or
/// drops them if they lie past the `max_failures` cut).
fn classify(shared: &Shared<'_>, st: &mut State) {
    while let Some(run) = st.done.remove(&st.classified) {
        let seed = st.classified;
        st.classified += 1;
        if st.cut.is_some_and(|cut| seed >= cut) {
            continue;
        }
        if run.failed() {
            st.failures_classified += 1;
            if shared.options.max_failures == Some(st.failures_classified) {
                st.cut = Some(seed + 1);
                st.handing_out = false;
                st.stop = Stop::MaxFailures;
            }
            if shared.options.reports.is_some() {
                st.tasks.push_back(run);
                st.ready.insert(seed, None);
                shared.wake.notify_all();
                continue;
            }
        }
        let finished = Finished {
            run,
            artifacts: None,
        };
        st.ready.insert(seed, Some(finished));
    }
}
