//! `faultline fuzz`: the seed plan (a fixed range, fresh random seeds, a shard of a range),
//! budgets, and the streamed output: a campaign line first, then seeds as they finish (in
//! seed order), then the summary.
//!
//! Output, stdout, `--json` (one object per line, each with a `type`):
//! - `campaign`: `scenario`, `config_hash`, `range` ("A..B", the seeds this process runs),
//!   `start`, `end`, `random` (the start was drawn from the OS), `shard` ("I/N" or null),
//!   `shard_of` (the range the shard was cut from), `repeat` (the command that runs the same
//!   seeds again).
//! - `seed`: the deterministic `run --json` object of the seed, plus `report`,
//!   `shrunk_report` and `replay` for a failing seed. Seed lines come in seed order, so a
//!   killed campaign completed exactly the seeds printed: `range.start ..= last seed`.
//! - `summary`: see `summary_json`.
//!
//! Without `--json`: the campaign line, each failing seed as it is found, then the summary;
//! progress goes to stderr.
//!
//! Depends on: campaign, scenario, sim (formatting).

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use super::args::FuzzArgs;
use super::progress::Progress;
use super::{summary_json as seed_json, CliError, EXIT_CLEAN, EXIT_VIOLATION};
use crate::campaign::{self, shard, Finished, FuzzOptions, ReportPlan, Stop, Summary};
use crate::scenario::Scenario;
use crate::sim::time::{Dur, NS_PER_S};
use crate::sim::trace::fmt_hash;

/// Random starts stay below 2^48: far apart between nights, yet exact in JSON tools that
/// read numbers as doubles (jq, JavaScript), and short enough to type.
pub const RANDOM_START_BITS: u32 = 48;

/// The seeds one `fuzz` process runs, and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedPlan {
    /// The seeds this process runs.
    pub range: Range<u64>,
    /// The start was drawn from the OS (`random:N`).
    pub random: bool,
    /// `(I, N)` of `--shard I/N`, with the range it was cut from.
    pub shard: Option<((u64, u64), Range<u64>)>,
}

/// Parses `--seeds` and `--shard`. `draw` gives a random start for `random:N`.
pub fn seed_plan(
    seeds: &str,
    shard_spec: Option<&str>,
    draw: impl FnOnce() -> u64,
) -> Result<SeedPlan, CliError> {
    let (range, random) = match seeds.trim().strip_prefix("random:") {
        Some(n) => {
            let n: u64 = n
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0 && *n <= 1 << 40)
                .ok_or_else(|| {
                    CliError(format!(
                        "--seeds: {seeds:?}: random:N needs a count N between 1 and 2^40"
                    ))
                })?;
            let start = draw() % (1 << RANDOM_START_BITS);
            (start..start + n, true)
        }
        None => (
            shard::parse_range(seeds).map_err(|e| CliError(format!("--seeds: {e}")))?,
            false,
        ),
    };
    let Some(spec) = shard_spec else {
        return Ok(SeedPlan {
            range,
            random,
            shard: None,
        });
    };
    if random {
        return Err(CliError(format!(
            "--shard {spec} with --seeds {seeds}: each shard would draw its own start; draw \
             one range and give every shard --seeds A..B"
        )));
    }
    let (i, n) = spec
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
        .filter(|(i, n)| *n > 0 && i < n)
        .ok_or_else(|| CliError(format!("--shard: expected I/N with I < N, got {spec:?}")))?;
    Ok(SeedPlan {
        range: shard::shard(range.clone(), i, n),
        random: false,
        shard: Some(((i, n), range)),
    })
}

/// A start drawn from the operating system's entropy, outside any run.
pub fn os_random_start() -> u64 {
    use rand::RngCore;
    rand::rngs::OsRng.next_u64()
}

/// Parses `--time-budget`: a duration as scenarios write it ("90s", "10min"), or whole
/// minutes "10m" and hours "2h", the way people write a CI budget.
pub fn parse_budget(text: &str) -> Result<Duration, CliError> {
    let t = text.trim();
    let whole = |s: &str, scale: u64| {
        s.parse::<u64>()
            .ok()
            .and_then(|v| v.checked_mul(scale))
            .map(Dur)
    };
    let dur = match (t.strip_suffix('h'), t.strip_suffix('m')) {
        (Some(h), _) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_digit()) => {
            whole(h, 3600 * NS_PER_S)
        }
        (_, Some(m)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => {
            whole(m, 60 * NS_PER_S)
        }
        _ => Dur::parse(t).ok(),
    };
    match dur {
        Some(d) if d.ns() > 0 => Ok(Duration::from_nanos(d.ns())),
        _ => Err(CliError(format!(
            "--time-budget: {text:?} is not a positive duration (e.g. \"90s\", \"10min\", \
             \"10m\", \"2h\")"
        ))),
    }
}

fn fmt_range(r: &Range<u64>) -> String {
    format!("{}..{}", r.start, r.end)
}

pub fn cmd_fuzz(a: FuzzArgs) -> Result<u8, CliError> {
    let scenario = Scenario::load(&a.scenario)?;
    let file = a.scenario.display().to_string();
    let plan = seed_plan(&a.seeds, a.shard.as_deref(), os_random_start)?;
    let jobs = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if jobs == 0 {
        return Err(CliError("--jobs must be at least 1".into()));
    }
    if a.max_failures == Some(0) {
        return Err(CliError("--max-failures must be at least 1".into()));
    }
    let options = FuzzOptions {
        jobs,
        time_budget: a.time_budget.as_deref().map(parse_budget).transpose()?,
        max_failures: a.max_failures,
        reports: Some(ReportPlan {
            scenario_file: file.clone(),
            dir: a.reports.clone(),
            shrink: !a.no_shrink,
        }),
    };
    let header = campaign_json(&file, &scenario, &plan);
    if a.json {
        println!("{header}");
    } else {
        print_campaign_line(&file, &scenario, &plan);
    }
    let bar = Progress::new(plan.range.clone());
    #[allow(clippy::disallowed_types)] // wall clock around the campaign, for the summary
    let started = std::time::Instant::now();
    let summary = campaign::fuzz(&scenario, plan.range.clone(), &options, &mut |f| {
        bar.tick(f.run.seed, f.run.failed());
        if a.json {
            println!("{}", seed_line(&scenario, &f));
        } else if f.run.failed() {
            bar.suspend(|| print_failing(&f));
        }
    });
    bar.finish();
    let elapsed = started.elapsed();
    let out = summary_json(&scenario, &plan, &summary, jobs, elapsed);
    if let Some(path) = &a.junit {
        std::fs::write(path, super::junit::render(&out))
            .map_err(|e| CliError(format!("{}: cannot write JUnit: {e}", path.display())))?;
    }
    if a.json {
        println!("{out}");
    } else {
        print_summary(&scenario, &plan, &summary, jobs, elapsed, &a);
    }
    if let Some(e) = &summary.report_error {
        return Err(CliError(e.clone()));
    }
    if summary.failed > 0 {
        // The campaign index: every report in the directory, this campaign's and earlier.
        crate::report::index::write(&a.reports).map_err(|e| {
            CliError(format!(
                "{}: cannot write index.html: {e}",
                a.reports.display()
            ))
        })?;
    }
    Ok(if summary.failed > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

/// The command that runs the same seeds again.
fn repeat_command(file: &str, plan: &SeedPlan) -> String {
    match &plan.shard {
        Some(((i, n), whole)) => {
            format!(
                "faultline fuzz {file} --seeds {} --shard {i}/{n}",
                fmt_range(whole)
            )
        }
        None => format!("faultline fuzz {file} --seeds {}", fmt_range(&plan.range)),
    }
}

fn campaign_json(file: &str, scenario: &Scenario, plan: &SeedPlan) -> serde_json::Value {
    serde_json::json!({
        "type": "campaign",
        "scenario": scenario.name,
        "config_hash": fmt_hash(scenario.config_hash()),
        "range": fmt_range(&plan.range),
        "start": plan.range.start,
        "end": plan.range.end,
        "random": plan.random,
        "shard": plan.shard.as_ref().map(|((i, n), _)| format!("{i}/{n}")),
        "shard_of": plan.shard.as_ref().map(|(_, whole)| fmt_range(whole)),
        "repeat": repeat_command(file, plan),
    })
}

fn print_campaign_line(file: &str, scenario: &Scenario, plan: &SeedPlan) {
    let origin = match (&plan.shard, plan.random) {
        (Some(((i, n), whole)), _) => format!("shard {i}/{n} of {}", fmt_range(whole)),
        (None, true) => format!("random start, {} seeds", plan.range.end - plan.range.start),
        (None, false) => "fixed".to_string(),
    };
    println!(
        "campaign   {} seeds {} ({origin}); repeat: {}",
        scenario.name,
        fmt_range(&plan.range),
        repeat_command(file, plan)
    );
}

/// One seed's JSON line: the deterministic run summary plus its reports.
fn seed_line(scenario: &Scenario, f: &Finished) -> serde_json::Value {
    let mut v = seed_json(scenario, &f.run);
    v["type"] = "seed".into();
    if let Some(Ok(artifacts)) = &f.artifacts {
        let report = artifacts.report.display().to_string();
        v["replay"] = format!("faultline replay {report}").into();
        v["report"] = report.into();
        v["shrunk_report"] = artifacts
            .shrunk
            .as_ref()
            .map(|(_, _, p)| p.display().to_string())
            .into();
    }
    v
}

fn print_failing(f: &Finished) {
    let run = &f.run;
    let v = &run.outcome.violations[0];
    let out = &mut std::io::stdout().lock();
    let _ = writeln!(
        out,
        "FAIL       seed {} {} ({:?}): {}",
        run.seed, v.invariant, v.kind, v.message
    );
    match &f.artifacts {
        Some(Ok(artifacts)) => {
            let report = artifacts.report.display();
            let _ = writeln!(out, "  report   {report}");
            if let Some((before, after, path)) = &artifacts.shrunk {
                let _ = writeln!(
                    out,
                    "  shrunk   {before} -> {after} faults: {}",
                    path.display()
                );
            }
            let _ = writeln!(out, "  replay   faultline replay {report}");
        }
        Some(Err(e)) => {
            let _ = writeln!(out, "  report   NOT WRITTEN: {e}");
        }
        None => {}
    }
}

/// The seeds still to run after a campaign that stopped early, if any.
fn rest(plan: &SeedPlan, summary: &Summary) -> Option<Range<u64>> {
    (summary.covered.end < plan.range.end).then_some(summary.covered.end..plan.range.end)
}

/// The summary object (`type` "summary"): `scenario`, `config_hash`, `range`, `random`,
/// `shard`, `shard_of` (as in the campaign line); `covered` ("A..C", the contiguous seeds
/// that ran), `covered_start`, `covered_end`, `complete`, `stop` (completed, time-budget,
/// max-failures, report-error), `rest` (the seeds not run, or null); `seeds_run`, `passed`,
/// `failed`, `unknown` (no violation, but a history check out of budget: not a pass),
/// `known` (no violation, but a known real-system behaviour took the place of one: neither
/// a pass nor a failure), `known_behaviours` (per behaviour: `name`, `reference`, `seeds`,
/// `first_seeds`), `events`; `failing` (the first 1000 failing seeds: `seed`, `invariant`, `kind`,
/// `message`, `report`, `shrunk_report`); `wall` (figures that vary with the machine).
pub fn summary_json(
    scenario: &Scenario,
    plan: &SeedPlan,
    s: &Summary,
    jobs: usize,
    elapsed: Duration,
) -> serde_json::Value {
    let failing: Vec<_> = s
        .failing
        .iter()
        .map(|f| {
            let a = f.artifacts.as_ref();
            serde_json::json!({
                "seed": f.seed,
                "invariant": f.violation.invariant,
                "kind": f.violation.kind,
                "message": f.violation.message,
                "report": a.map(|a| a.report.display().to_string()),
                "shrunk_report": a.and_then(|a| a.shrunk.as_ref())
                    .map(|(_, _, p)| p.display().to_string()),
            })
        })
        .collect();
    let runs = s.seeds_run().max(1);
    serde_json::json!({
        "type": "summary",
        "scenario": scenario.name,
        "config_hash": fmt_hash(scenario.config_hash()),
        "range": fmt_range(&plan.range),
        "random": plan.random,
        "shard": plan.shard.as_ref().map(|((i, n), _)| format!("{i}/{n}")),
        "shard_of": plan.shard.as_ref().map(|(_, whole)| fmt_range(whole)),
        "covered": fmt_range(&s.covered),
        "covered_start": s.covered.start,
        "covered_end": s.covered.end,
        "complete": s.covered == plan.range,
        "stop": s.stop.name(),
        "rest": rest(plan, s).map(|r| fmt_range(&r)),
        "seeds_run": s.seeds_run(),
        "passed": s.passed,
        "failed": s.failed,
        "unknown": s.unknown,
        "known": s.known,
        "known_behaviours": s.known_by_name.iter().map(|k| serde_json::json!({
            "name": k.name,
            "reference": k.reference,
            "seeds": k.seeds,
            "first_seeds": k.first_seeds,
        })).collect::<Vec<_>>(),
        "events": s.events,
        "failing": failing,
        "wall": {
            "jobs": jobs,
            "elapsed_ms": elapsed.as_millis() as u64,
            "seed_mean_us": s.wall.total_ns / runs / 1000,
            "seed_min_us": s.wall.min_ns / 1000,
            "seed_max_us": s.wall.max_ns / 1000,
            "slowest_seed": s.wall.slowest_seed,
        },
    })
}

fn print_summary(
    scenario: &Scenario,
    plan: &SeedPlan,
    s: &Summary,
    jobs: usize,
    elapsed: Duration,
    a: &FuzzArgs,
) {
    let wall_s = elapsed.as_secs_f64().max(1e-9);
    let out = &mut std::io::stdout().lock();
    let _ = writeln!(
        out,
        "fuzz       {} seeds of {} on {} threads in {:.2} s ({:.1} seeds/s, {:.2} M events/s)",
        s.seeds_run(),
        scenario.name,
        jobs,
        wall_s,
        s.seeds_run() as f64 / wall_s,
        s.events as f64 / wall_s / 1e6
    );
    let why = match s.stop {
        Stop::Completed => "complete".to_string(),
        Stop::TimeBudget => format!(
            "time budget {} spent",
            a.time_budget.as_deref().unwrap_or("")
        ),
        Stop::MaxFailures => format!("stopped at {} failing seeds", s.failed),
        Stop::ReportError => "stopped: a report could not be written".to_string(),
    };
    let _ = writeln!(
        out,
        "covered    {} of {} ({why})",
        fmt_range(&s.covered),
        fmt_range(&plan.range)
    );
    if let Some(rest) = rest(plan, s) {
        let _ = writeln!(
            out,
            "rest       --seeds {} runs the seeds not run",
            fmt_range(&rest)
        );
    }
    let mean_ms = s.wall.total_ns as f64 / s.seeds_run().max(1) as f64 / 1e6;
    let _ = writeln!(
        out,
        "per seed   mean {mean_ms:.1} ms, max {:.1} ms (seed {})",
        s.wall.max_ns as f64 / 1e6,
        s.wall.slowest_seed
    );
    if s.unknown > 0 {
        // A history check out of budget proves nothing: shown, never folded into a pass.
        let _ = writeln!(
            out,
            "unknown    {} (history check out of budget)",
            s.unknown
        );
    }
    if s.known > 0 {
        // Real-system behaviour, not a bug of ours: counted apart, shown, never a pass.
        let _ = writeln!(
            out,
            "known      {} (known real-system behaviour, not failures)",
            s.known
        );
        for k in &s.known_by_name {
            let shown: Vec<String> = k.first_seeds.iter().take(20).map(u64::to_string).collect();
            let more = if k.seeds as usize > shown.len() {
                ", ..."
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {}: {} seeds ({}{more}); {}",
                k.name,
                k.seeds,
                shown.join(", "),
                k.reference
            );
        }
    }
    let _ = writeln!(out, "failing    {}", s.failed);
    for f in &s.failing {
        let v = &f.violation;
        let _ = writeln!(
            out,
            "  seed {:<8} {} ({:?}): {}",
            f.seed, v.invariant, v.kind, v.message
        );
        if let Some(artifacts) = &f.artifacts {
            let report = artifacts.report.display();
            let _ = writeln!(out, "             replay: faultline replay {report}");
            if let Some((_, _, shrunk)) = &artifacts.shrunk {
                let _ = writeln!(out, "             shrunk: {}", shrunk.display());
            }
        }
    }
    if s.failed as usize > s.failing.len() {
        let more = s.failed as usize - s.failing.len();
        let dir = Path::new(&a.reports).display();
        let _ = writeln!(
            out,
            "  ... and {more} more failing seeds (reports in {dir})"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_read_scenario_durations_and_ci_minutes() {
        let secs = |t: &str| parse_budget(t).map(|d| d.as_secs()).map_err(|e| e.0);
        assert_eq!(secs("10m"), Ok(600));
        assert_eq!(secs("10min"), Ok(600));
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(parse_budget("250ms").map(|d| d.as_millis()).ok(), Some(250));
        for bad in [
            "0s",
            "m",
            "h",
            "10",
            "ten minutes",
            "-5s",
            "99999999999999999999h",
        ] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_plans_random_fixed_and_sharded() {
        let plan = seed_plan("random:10", None, || u64::MAX).unwrap();
        assert!(plan.random);
        assert_eq!(plan.range, (1 << 48) - 1..(1 << 48) + 9);
        let plan = seed_plan("0..100", Some("3/4"), || unreachable!()).unwrap();
        assert_eq!(plan.range, 75..100);
        assert_eq!(plan.shard, Some(((3, 4), 0..100)));
        assert!(seed_plan("random:10", Some("0/2"), || 7).is_err());
        assert!(seed_plan("random:0", None, || 7).is_err());
        assert!(seed_plan("0..100", Some("4/4"), || 7).is_err());
    }
}
