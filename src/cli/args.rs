//! Command-line flags (clap derive). Raw flags are turned into checked requests in `cli`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "faultline",
    version,
    about = "Deterministic simulation of ZooKeeper (ZAB) and Kafka-style replication under faults",
    after_help = "Exit codes: 0 clean, 1 violation found, 2 bad input, 3 check verdict unknown, \
                  4 replay diverged."
)]
pub struct Cli {
    /// Print every delivered event (the timeline) to stderr; same as RUST_LOG=debug.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one seed of a scenario and check every invariant.
    Run(RunArgs),
    /// Re-run the exact run a report describes and compare trace hashes.
    Replay(ReplayArgs),
    /// Run many seeds of a scenario across threads.
    Fuzz(FuzzArgs),
    /// Shrink a failing report's run (faults, holds, fault phase, workload) while the same
    /// invariant still fails; writes the shrunk scenario file and its report.
    Shrink(ShrinkArgs),
    /// Check a recorded history (ours, Jepsen's or Porcupine's) against a model.
    Check(CheckArgs),
    /// The bug-finding scoreboard: every bug mode on in a random-nemesis base, N seeds each.
    Hunt(super::hunt::HuntArgs),
    /// Combine the JSON summaries of sharded `fuzz --json` runs into one summary (and JUnit).
    Merge(MergeArgs),
    /// Rebuild a reports directory's campaign index page (index.html): failing seeds
    /// grouped by invariant, with their faults and links. `fuzz` and `hunt` write it too.
    Index(IndexArgs),
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    /// The reports directory.
    #[arg(default_value = "reports")]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Files holding `fuzz --json` output (the last summary line of each is used).
    #[arg(required = true)]
    pub summaries: Vec<PathBuf>,
    /// Print the merged summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write the merged result as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The history file.
    pub file: PathBuf,
    /// History format: etcd (Jepsen etcd logs), kv (Porcupine kv), json (faultline's own).
    #[arg(long)]
    pub format: String,
    /// Model: register, cas-register, kv, znode, zookeeper, zookeeper-strict, kafka-log.
    #[arg(long, required_unless_present = "export")]
    pub model: Option<String>,
    /// Instead of checking, write the history in a peer format: etcd (Jepsen's register
    /// log) or kv (Porcupine's key-value EDN), to --output or stdout.
    #[arg(long, value_name = "FORMAT")]
    pub export: Option<String>,
    /// Where --export writes (default: stdout).
    #[arg(long, value_name = "FILE", requires = "export")]
    pub output: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Search step budget; past it the verdict is "unknown" (exit 3), never a pass.
    #[arg(long)]
    pub max_steps: Option<u64>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The scenario file (JSON).
    pub scenario: PathBuf,
    /// The root seed; defaults to the scenario's `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print exactly one JSON object on stdout instead of the text summary.
    #[arg(long)]
    pub json: bool,
    /// Where violation reports are written.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    /// Run twice, recording a checksum per event, and report the first divergent event.
    #[arg(long)]
    pub check_determinism: bool,
    /// Do not shrink a failing run.
    #[arg(long)]
    pub no_shrink: bool,
    /// Also write the run's events as JSON lines to FILE, and a ShiViz log (vector clocks)
    /// to FILE.shiviz.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Most re-runs shrinking a failing run may spend.
    #[arg(long, default_value_t = crate::campaign::shrink::DEFAULT_MAX_RUNS)]
    pub shrink_max_runs: usize,
}

#[derive(Args, Debug)]
pub struct ShrinkArgs {
    /// A report written by `run` or `fuzz`.
    pub report: PathBuf,
    /// Where the shrunk scenario and its report go (default: beside the report).
    #[arg(long)]
    pub reports: Option<PathBuf>,
    /// Most re-runs the shrink may spend.
    #[arg(long, default_value_t = crate::campaign::shrink::DEFAULT_MAX_RUNS)]
    pub max_runs: usize,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A report written by `run` or `fuzz`.
    pub report: PathBuf,
}

#[derive(Args, Debug)]
pub struct FuzzArgs {
    /// The scenario file (JSON).
    pub scenario: PathBuf,
    /// Seeds to run: "A..B" (B excluded), one seed "A", or "random:N" (N seeds from a start
    /// drawn from the OS; the range is printed first, so `--seeds A..B` repeats it).
    #[arg(long, default_value = "0..100")]
    pub seeds: String,
    /// Threads; each runs whole seeds (a run itself is never threaded).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where violation reports are written.
    #[arg(long, default_value = "reports")]
    pub reports: PathBuf,
    /// Print a campaign line, one JSON object per seed (in seed order, as seeds finish) and a
    /// summary object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Run only part `I/N` of the seed range (for sharding across CI jobs), e.g. "0/4".
    #[arg(long)]
    pub shard: Option<String>,
    /// Wall-clock budget ("90s", "10min", "10m", "2h"): then start no new seed, finish those
    /// running, and report the contiguous range covered.
    #[arg(long)]
    pub time_budget: Option<String>,
    /// Stop after this many failing seeds (counted in seed order).
    #[arg(long)]
    pub max_failures: Option<u64>,
    /// Do not shrink the fault schedules of failing seeds.
    #[arg(long)]
    pub no_shrink: bool,
    /// Also write the result as JUnit XML to this file (a testcase per covered seed range
    /// and per failing seed).
    #[arg(long)]
    pub junit: Option<PathBuf>,
}
