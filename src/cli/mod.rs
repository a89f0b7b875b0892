//! The commands: run, replay, fuzz, check. Each returns an exit code (0 clean, 1 violation,
//! 3 unknown check verdict, 4 replay diverged) or an input error, which `main` turns into
//! exit code 2 with the message.
//!
//! Depends on: campaign, cluster, scenario, report, sim (formatting).

pub mod alloc;
pub mod args;
pub mod fuzz;
pub mod hunt;
pub mod junit;
pub mod merge;
pub mod progress;

use std::io::Write;
use std::path::Path;

use args::{CheckArgs, Cli, Command, ReplayArgs, RunArgs, ShrinkArgs};

use crate::campaign::{self, shrink, SeedRun};
use crate::cluster::{self, RunOptions};
use crate::report::Report;
use crate::scenario::{Expectation, InputError, Scenario};
use crate::sim::time::{fmt_ns, NS_PER_S};
use crate::sim::trace::fmt_hash;

pub const EXIT_CLEAN: u8 = 0;
pub const EXIT_VIOLATION: u8 = 1;
pub const EXIT_DIVERGED: u8 = 4;

/// A failure that is the user's input, not the system under test: exit code 2.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<InputError> for CliError {
    fn from(e: InputError) -> Self {
        CliError(e.to_string())
    }
}

pub fn run(cli: Cli) -> Result<u8, CliError> {
    init_tracing(cli.verbose);
    cluster::install_panic_hook();
    match cli.command {
        Command::Run(a) => cmd_run(a),
        Command::Replay(a) => cmd_replay(a),
        Command::Fuzz(a) => fuzz::cmd_fuzz(a),
        Command::Check(a) => cmd_check(a),
        Command::Shrink(a) => cmd_shrink(a),
        Command::Hunt(a) => hunt::cmd_hunt(a),
        Command::Merge(a) => merge::cmd_merge(a),
        Command::Index(a) => cmd_index(a),
    }
}

fn init_tracing(verbose: bool) {
    let filter = if verbose {
        tracing_subscriber::EnvFilter::new("debug")
    } else {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_level(false)
        .try_init();
}

fn io_error(what: &str, e: std::io::Error) -> CliError {
    CliError(format!("{what}: {e}"))
}

fn cmd_run(a: RunArgs) -> Result<u8, CliError> {
    let scenario = Scenario::load(&a.scenario)?;
    let seed = a.seed.unwrap_or(scenario.seed);
    let file = a.scenario.display().to_string();
    if a.check_determinism {
        return check_determinism(&scenario, seed);
    }
    let run = campaign::run_seed(&scenario, seed, None);
    if let Some(path) = &a.trace {
        write_trace(&scenario, &run, path)?;
    }
    let mut shrunk = None;
    let report = if run.failed() {
        let path = campaign::write_report(&file, &scenario, &run, &a.reports)
            .map_err(|e| io_error("cannot write the report", e))?;
        if !a.no_shrink {
            let invariant = &run.outcome.violations[0].invariant;
            shrunk = shrink::shrink_and_report_with(
                &file,
                &scenario,
                seed,
                &run.schedule,
                invariant,
                &a.reports,
                a.shrink_max_runs,
            )
            .map_err(|e| io_error("cannot write the shrunk report", e))?;
        }
        Some(path.display().to_string())
    } else {
        None
    };
    if a.json {
        let mut summary = summary_json(&scenario, &run);
        summary["report"] = report.clone().into();
        summary["shrunk_report"] = shrunk
            .as_ref()
            .map(|s| s.report.display().to_string())
            .into();
        summary["shrunk_scenario"] = shrunk
            .as_ref()
            .map(|s| s.scenario_file.display().to_string())
            .into();
        summary["shrunk_faults"] = shrunk.as_ref().map(|s| s.faults_after).into();
        println!("{summary}");
    } else {
        print_summary(&file, &scenario, &run);
        if let Some(path) = &report {
            println!("report     {path}");
            println!("replay     faultline replay {path}");
        }
        if let Some(s) = &shrunk {
            print_shrunk(s);
        }
    }
    Ok(if run.failed() {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

/// `run --trace FILE`: runs the seed again with everything captured and writes the events
/// as JSON lines and a ShiViz log (`report::export`).
fn write_trace(scenario: &Scenario, run: &SeedRun, path: &Path) -> Result<(), CliError> {
    let options = RunOptions {
        timeline_capture: usize::MAX,
        record_checksums: false,
        capture: true,
    };
    let traced = cluster::run(scenario, run.seed, &run.schedule, &options);
    if traced.trace_hash != run.outcome.trace_hash {
        return Err(CliError(
            "--trace: the traced re-run diverged (determinism bug)".into(),
        ));
    }
    let capture = traced
        .capture
        .as_deref()
        .cloned()
        .unwrap_or_default()
        .kernel;
    let names = scenario.system.node_names();
    let lines = crate::report::export::json_lines(&names, &traced.timeline, &capture);
    let shiviz_path = format!("{}.shiviz", path.display());
    std::fs::write(path, lines).map_err(|e| io_error(&format!("--trace {}", path.display()), e))?;
    std::fs::write(
        &shiviz_path,
        crate::report::export::shiviz(&names, &capture),
    )
    .map_err(|e| io_error(&format!("--trace {shiviz_path}"), e))?;
    eprintln!("trace      {} and {shiviz_path} (ShiViz)", path.display());
    Ok(())
}

/// The deterministic summary of a run: no wall-clock figures, so that two processes running
/// the same seed print the same bytes.
pub fn summary_json(scenario: &Scenario, run: &SeedRun) -> serde_json::Value {
    let o = &run.outcome;
    serde_json::json!({
        "scenario": scenario.name,
        "seed": run.seed,
        "config_hash": fmt_hash(scenario.config_hash()),
        "trace_hash": fmt_hash(o.trace_hash),
        "events": o.events,
        "simulated_ns": o.simulated_ns,
        "recovered_ns": o.recovered_ns,
        "verdict": if run.failed() {
            "violation"
        } else if run.known() {
            "known"
        } else {
            "pass"
        },
        "violations": o.violations,
        "known": o.known,
        "faults_applied": o.applied.len(),
        "stats": o.stats,
        "system": o.system,
    })
}

fn print_summary(file: &str, scenario: &Scenario, run: &SeedRun) {
    let o = &run.outcome;
    let wall_s = run.wall_ns as f64 / NS_PER_S as f64;
    let sim_s = o.simulated_ns as f64 / NS_PER_S as f64;
    let out = &mut std::io::stdout().lock();
    let _ = writeln!(out, "scenario   {} ({file})", scenario.name);
    let _ = writeln!(out, "seed       {}", run.seed);
    let _ = writeln!(out, "events     {}", o.events);
    let _ = writeln!(out, "simulated  {} s", fmt_ns(o.simulated_ns));
    let _ = writeln!(
        out,
        "wall       {:.3} s ({:.0} simulated s per wall s, {:.2} M events/s)",
        wall_s,
        sim_s / wall_s.max(1e-9),
        o.events as f64 / wall_s.max(1e-9) / 1e6
    );
    let _ = writeln!(out, "faults     {} applied", o.applied.len());
    let _ = writeln!(out, "trace      {}", fmt_hash(o.trace_hash));
    if run.failed() {
        for v in &o.violations {
            let _ = writeln!(
                out,
                "violation  {} ({:?}) at {} s: {}",
                v.invariant,
                v.kind,
                fmt_ns(v.at_ns),
                v.message
            );
        }
    } else if run.known() {
        for k in &o.known {
            let _ = writeln!(out, "verdict    known real-system behaviour: {}", k.name);
            let _ = writeln!(
                out,
                "  explains {} ({:?}): {}",
                k.explains.invariant, k.explains.kind, k.explains.message
            );
            let _ = writeln!(out, "  what     {}", k.explanation);
            let _ = writeln!(out, "  see      {}", k.reference);
        }
    } else {
        let recovered = o
            .recovered_ns
            .map(|t| fmt_ns(t.saturating_sub(scenario.duration.ns())))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "verdict    pass (recovered {recovered} s after the heal)"
        );
    }
    match (&scenario.expect, run.failed()) {
        (Expectation::Pass, true) => {
            let _ = writeln!(
                out,
                "expected   pass: this is a bug (of the system or the testbed)"
            );
        }
        (Expectation::Pass, false) if run.known() => {
            let _ = writeln!(
                out,
                "expected   pass: not a bug of ours, the real system does this (not a failure)"
            );
        }
        (Expectation::Violation { invariant }, failed) => {
            let hit = failed && o.violations.iter().any(|v| &v.invariant == invariant);
            let verdict = if hit {
                "found"
            } else {
                "not found with this seed"
            };
            let _ = writeln!(out, "expected   violation of {invariant}: {verdict}");
        }
        _ => {}
    }
}

fn check_determinism(scenario: &Scenario, seed: u64) -> Result<u8, CliError> {
    let schedule = crate::scenario::Schedule::generate(scenario, seed);
    let options = RunOptions {
        timeline_capture: 0,
        record_checksums: true,
        capture: false,
    };
    let first = cluster::run(scenario, seed, &schedule, &options);
    let second = cluster::run(scenario, seed, &schedule, &options);
    let diverged = first
        .checksums
        .iter()
        .zip(&second.checksums)
        .position(|(a, b)| a != b)
        .or((first.checksums.len() != second.checksums.len())
            .then(|| first.checksums.len().min(second.checksums.len())));
    match diverged {
        None => {
            println!(
                "deterministic: {} events, trace {} both times",
                first.events,
                fmt_hash(first.trace_hash)
            );
            Ok(EXIT_CLEAN)
        }
        Some(i) => {
            println!("NOT deterministic: the runs diverge at event #{}", i + 1);
            Ok(EXIT_DIVERGED)
        }
    }
}

fn cmd_check(a: CheckArgs) -> Result<u8, CliError> {
    if let Some(format) = &a.export {
        return export_history(&a, format);
    }
    let request = crate::check::command::CheckRequest {
        format: a.format,
        model: a.model.unwrap_or_default(),
        path: a.file,
        json: a.json,
        max_steps: a.max_steps,
    };
    let mut out = std::io::stdout().lock();
    let code = crate::check::command::run_check(&request, &mut out)
        .map_err(|e| CliError(e.to_string()))?;
    Ok(u8::try_from(code).unwrap_or(EXIT_VIOLATION))
}

/// `check --export FORMAT`: reads the history like `check` does and writes it in a peer
/// format (`check::export`).
fn export_history(a: &CheckArgs, format: &str) -> Result<u8, CliError> {
    use crate::check::import::{parse_etcd, parse_json, parse_kv};
    let source = a.file.display().to_string();
    let text = std::fs::read_to_string(&a.file)
        .map_err(|e| CliError(format!("{source}: cannot read: {e}")))?;
    let history = match a.format.as_str() {
        "etcd" => parse_etcd(&text, &source),
        "kv" => parse_kv(&text, &source),
        "json" => parse_json(&text, &source),
        other => {
            return Err(CliError(format!(
                "unknown format {other:?}; accepted: etcd, kv, json"
            )))
        }
    }
    .map_err(|e| CliError(e.to_string()))?;
    let text = crate::check::export::export(&history, format)
        .map_err(|e| CliError(format!("--export {format}: {}: {e}", a.file.display())))?;
    match &a.output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| io_error(&format!("--output {}", path.display()), e))?,
        None => print!("{text}"),
    }
    Ok(EXIT_CLEAN)
}

fn cmd_shrink(a: ShrinkArgs) -> Result<u8, CliError> {
    let report = Report::load(&a.report)?;
    let Some(first) = report.violations.first() else {
        return Err(CliError(format!(
            "{}: the report has no violation",
            a.report.display()
        )));
    };
    if a.max_runs == 0 {
        return Err(CliError("--max-runs must be at least 1".into()));
    }
    let dir = a
        .reports
        .unwrap_or_else(|| a.report.parent().map(Path::to_path_buf).unwrap_or_default());
    let result = shrink::shrink_and_report_with(
        &report.scenario_file,
        &report.scenario,
        report.seed,
        &report.schedule,
        &first.invariant,
        &dir,
        a.max_runs,
    )
    .map_err(|e| io_error("cannot write the shrunk report", e))?;
    match result {
        Some(summary) => {
            print_shrunk(&summary);
            Ok(EXIT_VIOLATION)
        }
        None => {
            println!(
                "shrunk     nothing: the run no longer violates {}",
                first.invariant
            );
            Ok(EXIT_CLEAN)
        }
    }
}

/// The lines a shrink adds to a command's output.
fn print_shrunk(s: &shrink::ShrinkSummary) {
    let out = &mut std::io::stdout().lock();
    let _ = writeln!(
        out,
        "shrunk     {} -> {} faults, same violation ({})",
        s.faults_before, s.faults_after, s.invariant
    );
    for step in &s.steps {
        let _ = writeln!(out, "           {step}");
    }
    let budget = if s.budget_spent {
        ", budget spent (raise it with --max-runs / --shrink-max-runs)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "re-runs    {} in {:.2} s{budget}",
        s.runs,
        s.wall_ns as f64 / NS_PER_S as f64
    );
    let _ = writeln!(out, "scenario   {}", s.scenario_file.display());
    let _ = writeln!(out, "run        {}", s.run_command());
    let _ = writeln!(out, "report     {}", s.report.display());
    let _ = writeln!(out, "replay     faultline replay {}", s.report.display());
}

fn cmd_replay(a: ReplayArgs) -> Result<u8, CliError> {
    let report = Report::load(&a.report)?;
    let run = campaign::run_seed(&report.scenario, report.seed, Some(report.schedule.clone()));
    let hash = fmt_hash(run.outcome.trace_hash);
    println!("scenario   {} seed {}", report.scenario.name, report.seed);
    println!("trace      {hash} (report: {})", report.trace_hash);
    for v in &run.outcome.violations {
        println!(
            "violation  {} ({:?}) at {} s: {}",
            v.invariant,
            v.kind,
            fmt_ns(v.at_ns),
            v.message
        );
    }
    if hash != report.trace_hash {
        println!("replay     DIVERGED: the run is not the one the report describes");
        return Ok(EXIT_DIVERGED);
    }
    println!("replay     identical");
    Ok(if run.failed() {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

/// `faultline index DIR`: rebuilds the campaign index page from the reports in DIR.
fn cmd_index(a: args::IndexArgs) -> Result<u8, CliError> {
    if !a.dir.is_dir() {
        return Err(CliError(format!("{}: not a directory", a.dir.display())));
    }
    let path = crate::report::index::write(&a.dir)
        .map_err(|e| CliError(format!("{}: cannot write index.html: {e}", a.dir.display())))?;
    println!("index      {}", path.display());
    Ok(EXIT_CLEAN)
}
