//! `faultline check --format FORMAT --model MODEL FILE` as a library function.
//!
//! Models the command's contract: read a history file in one of the accepted formats, run the
//! checker named by the model, print the verdict and a witness summary (text, or one JSON
//! object with `json`), and return the exit code: 0 valid, 1 violation, 3 unknown. Bad input
//! (unknown format or model, an impossible combination, an unreadable file, a malformed line,
//! an operation the model does not know) is an `Err` naming the file, line and problem; the CLI
//! maps it to exit code 2. Output is deterministic (no timings, no hash-ordered collections).
//!
//! JSON output, one object on one line (keys in alphabetical order):
//! - `exit_code`: 0, 1 or 3, as returned;
//! - `file`, `format`, `model`: the request; `ops`: the number of operations read;
//! - `result`: the [`Verdict`], tagged by `verdict`:
//!   - `{"verdict": "valid", "witness": W}` where `W` is
//!     `{"kind": "linearization", "partitions": [{"key", "order", "not_applied"}]}` (operation
//!     ids in linearization order per partition; open operations left out) or
//!     `{"kind": "checked", "summary": "..."}`;
//!   - `{"verdict": "invalid", "violations": [V]}` where each `V` has `kind`, `message`, `op`
//!     (the operation at fault), `window` (its `[invoke, complete]` times, `null` = open),
//!     `ops` (a small set showing it), `key`, `state` (model state at that point) and
//!     `linearized` (for linearizability: the last operations ordered);
//!   - `{"verdict": "unknown", "reason": "..."}`.
//!
//! Depends on: the rest of `check` only.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use super::history::History;
use super::import::{parse_etcd, parse_json, parse_kv};
use super::kafka_log::{check_kafka_log, KafkaLogOptions};
use super::linearizable::{check_linearizable, Budget, ModelError};
use super::spec::{KvSpec, RegisterSpec, ZnodeSpec};
use super::zk_order::{check_zookeeper, ZkOptions};
use super::{Verdict, Violation, Witness};

/// Accepted `--format` values.
pub const FORMATS: &[&str] = &["etcd", "kv", "json"];
/// Accepted `--model` values.
pub const MODELS: &[&str] = &[
    "register",
    "cas-register",
    "kv",
    "znode",
    "zookeeper",
    "zookeeper-strict",
    "kafka-log",
];

/// One `faultline check` invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    /// History format: `etcd`, `kv` or `json`.
    pub format: String,
    /// Model: see [`MODELS`].
    pub model: String,
    /// The history file.
    pub path: PathBuf,
    /// Print one JSON object instead of text.
    pub json: bool,
    /// Search step budget (default: [`Budget::default`]).
    pub max_steps: Option<u64>,
}

/// Bad input: the message names the file, the line (or JSON path) and the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckInputError {
    message: String,
}

impl fmt::Display for CheckInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CheckInputError {}

fn input_error(message: String) -> CheckInputError {
    CheckInputError { message }
}

/// Writes the verdict and a witness summary to `out`; returns the exit code: 0 linearizable /
/// ok, 1 violation, 3 unknown. Bad input (unknown format/model, unreadable file, malformed
/// line) is `Err` -> the CLI exits 2.
pub fn run_check(req: &CheckRequest, out: &mut dyn Write) -> Result<i32, CheckInputError> {
    validate(req)?;
    let source = req.path.display().to_string();
    let text = std::fs::read_to_string(&req.path)
        .map_err(|e| input_error(format!("{source}: cannot read: {e}")))?;
    let history = parse(&req.format, &text, &source)?;
    let mut budget = Budget::default();
    if let Some(steps) = req.max_steps {
        budget.max_steps = steps;
    }
    let verdict = check_model(&req.model, &history, &budget).map_err(|e| {
        let op = history
            .ops
            .get(e.op)
            .map(|op| op.summary())
            .unwrap_or_default();
        input_error(format!(
            "{source}: ops[{}] ({op}): not accepted by the {} model: {}",
            e.op, req.model, e.message
        ))
    })?;
    let written = if req.json {
        write_json(out, req, &history, &verdict)
    } else {
        write_text(out, req, &history, &verdict)
    };
    written.map_err(|e| input_error(format!("cannot write the verdict: {e}")))?;
    Ok(verdict.exit_code())
}

fn validate(req: &CheckRequest) -> Result<(), CheckInputError> {
    if !FORMATS.contains(&req.format.as_str()) {
        let msg = format!(
            "unknown format {:?}; accepted: {}",
            req.format,
            FORMATS.join(", ")
        );
        return Err(input_error(msg));
    }
    if !MODELS.contains(&req.model.as_str()) {
        let msg = format!(
            "unknown model {:?}; accepted: {}",
            req.model,
            MODELS.join(", ")
        );
        return Err(input_error(msg));
    }
    let accepted: &[&str] = match req.format.as_str() {
        "etcd" => &["register", "cas-register"],
        "kv" => &["kv"],
        _ => MODELS,
    };
    if !accepted.contains(&req.model.as_str()) {
        let msg = format!(
            "format {} cannot be checked with model {}; accepted models: {}",
            req.format,
            req.model,
            accepted.join(", ")
        );
        return Err(input_error(msg));
    }
    Ok(())
}

fn parse(format: &str, text: &str, source: &str) -> Result<History, CheckInputError> {
    let parsed = match format {
        "etcd" => parse_etcd(text, source),
        "kv" => parse_kv(text, source),
        _ => parse_json(text, source),
    };
    parsed.map_err(|e| input_error(e.to_string()))
}

/// Runs the checker named `model` (one of [`MODELS`]) on `history`.
pub fn check_model(model: &str, history: &History, budget: &Budget) -> Result<Verdict, ModelError> {
    match model {
        "register" => check_linearizable(&RegisterSpec { cas: false }, history, budget),
        "cas-register" => check_linearizable(&RegisterSpec { cas: true }, history, budget),
        "kv" => check_linearizable(&KvSpec, history, budget),
        "znode" => check_linearizable(&ZnodeSpec, history, budget),
        "zookeeper" | "zookeeper-strict" => {
            let options = ZkOptions {
                strict: model == "zookeeper-strict",
                budget: *budget,
            };
            check_zookeeper(history, &options)
        }
        "kafka-log" => check_kafka_log(history, &KafkaLogOptions::default()),
        other => Err(ModelError {
            op: 0,
            message: format!("unknown model {other:?}"),
        }),
    }
}

fn verdict_word(model: &str, verdict: &Verdict) -> &'static str {
    let linearizability = matches!(model, "register" | "cas-register" | "kv" | "znode");
    match (verdict, linearizability) {
        (Verdict::Valid { .. }, true) => "linearizable",
        (Verdict::Valid { .. }, false) => "ok",
        (Verdict::Invalid { .. }, true) => "NOT linearizable",
        (Verdict::Invalid { .. }, false) => "VIOLATION",
        (Verdict::Unknown { .. }, _) => "UNKNOWN",
    }
}

fn write_text(
    out: &mut dyn Write,
    req: &CheckRequest,
    history: &History,
    verdict: &Verdict,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} (format {}, model {}): {} operations",
        req.path.display(),
        req.format,
        req.model,
        history.ops.len()
    )?;
    writeln!(out, "verdict: {}", verdict_word(&req.model, verdict))?;
    match verdict {
        Verdict::Valid { witness } => write_witness(out, history, witness),
        Verdict::Invalid { violations } => {
            for violation in violations {
                write_violation(out, history, violation)?;
            }
            Ok(())
        }
        Verdict::Unknown { reason } => writeln!(out, "reason: {reason}"),
    }
}

fn write_witness(out: &mut dyn Write, history: &History, witness: &Witness) -> std::io::Result<()> {
    match witness {
        Witness::Checked { summary } => writeln!(out, "witness: {summary}"),
        Witness::Linearization { partitions } => {
            let ordered: usize = partitions.iter().map(|p| p.order.len()).sum();
            let open: usize = partitions.iter().map(|p| p.not_applied.len()).sum();
            writeln!(
                out,
                "witness: a linearization of {ordered} operations in {} partition(s); {open} \
                 open operations left out (never took effect)",
                partitions.len()
            )?;
            for partition in partitions.iter().take(3) {
                let shown: Vec<String> = partition
                    .order
                    .iter()
                    .take(8)
                    .map(|id| id.to_string())
                    .collect();
                let more = if partition.order.len() > 8 {
                    " ..."
                } else {
                    ""
                };
                writeln!(out, "  {:?}: {}{more}", partition.key, shown.join(" "))?;
                for &id in partition.order.iter().take(3) {
                    writeln!(out, "    #{id} {}", history.ops[id].summary())?;
                }
            }
            Ok(())
        }
    }
}

fn write_violation(
    out: &mut dyn Write,
    history: &History,
    violation: &Violation,
) -> std::io::Result<()> {
    let key = violation
        .key
        .as_ref()
        .map(|k| format!(" [key {k:?}]"))
        .unwrap_or_default();
    writeln!(
        out,
        "violation {}{key}: {}",
        violation.kind, violation.message
    )?;
    if let Some(state) = &violation.state {
        writeln!(out, "  state: {state}")?;
    }
    if !violation.linearized.is_empty() {
        let ids: Vec<String> = violation.linearized.iter().map(|i| i.to_string()).collect();
        writeln!(
            out,
            "  linearized just before (last ones): {}",
            ids.join(" ")
        )?;
    }
    for &id in &violation.ops {
        let mark = if Some(id) == violation.op {
            "  <- this one"
        } else {
            ""
        };
        writeln!(out, "  #{id} {}{mark}", history.ops[id].summary())?;
    }
    Ok(())
}

fn write_json(
    out: &mut dyn Write,
    req: &CheckRequest,
    history: &History,
    verdict: &Verdict,
) -> std::io::Result<()> {
    let value = serde_json::json!({
        "file": req.path.display().to_string(),
        "format": req.format,
        "model": req.model,
        "ops": history.ops.len(),
        "exit_code": verdict.exit_code(),
        "result": verdict,
    });
    writeln!(out, "{value}")
}
