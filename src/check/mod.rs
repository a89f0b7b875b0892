//! History checkers: recorded client histories in, verdicts with witnesses out.
//!
//! Models: linearizability against small sequential specifications ([`spec`]), ZooKeeper's
//! client consistency model ([`zk_order`]) and Kafka's log anomalies ([`kafka_log`]). Every
//! checker is a pure function `&History -> Verdict`; a verdict always carries a witness (a
//! linearization or what was checked) or the violations with the operations that show them, or
//! says why it is unknown (a search budget ran out). Nothing here is ever a silent pass.
//!
//! Depends on: nothing else in the crate (`check -> nothing`), so it also judges histories that
//! came from elsewhere ([`import`]: Jepsen etcd logs, Porcupine kv histories).

pub mod command;
pub mod export;
pub mod generate;
pub mod history;
pub mod import;
pub mod kafka_log;
pub mod linearizable;
pub mod spec;
pub mod zk_order;
pub mod zk_tree;

pub use history::{Call, History, Op, OpId, Outcome, PolledRecord, Ret, ZkError};
pub use linearizable::{check_linearizable, Budget};

use std::collections::BTreeMap;

use serde::Serialize;

/// The outcome of a checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The history satisfies the model; the witness shows why.
    Valid { witness: Witness },
    /// The history violates the model (at least one violation, in a deterministic order).
    Invalid { violations: Vec<Violation> },
    /// The checker could not decide within its budget. Never a pass.
    Unknown { reason: String },
}

impl Verdict {
    /// Exit code of `faultline check`: 0 valid, 1 violation, 3 unknown.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Valid { .. } => 0,
            Verdict::Invalid { .. } => 1,
            Verdict::Unknown { .. } => 3,
        }
    }

    /// True for [`Verdict::Valid`].
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid { .. })
    }

    /// True for [`Verdict::Invalid`].
    pub fn is_invalid(&self) -> bool {
        matches!(self, Verdict::Invalid { .. })
    }

    /// The violations (empty unless invalid).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Verdict::Invalid { violations } => violations,
            _ => &[],
        }
    }
}

/// Why a history satisfies a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Witness {
    /// One linearization per independent object (partition), in key order.
    Linearization { partitions: Vec<PartitionOrder> },
    /// A checker that is not a search: what it checked, in words and numbers.
    Checked { summary: String },
}

/// The linearization of one partition (one key, register, path or the whole history).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionOrder {
    /// Partition key (`""` when the model has a single object).
    pub key: String,
    /// Operations in linearization order.
    pub order: Vec<OpId>,
    /// Open (`info`) operations left out: they may never have taken effect.
    pub not_applied: Vec<OpId>,
}

/// One violation, with the operations that show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Stable kebab-case name: `not-linearizable`, `lost-write`, `nonmonotonic-zxid`, ...
    pub kind: String,
    /// What went wrong, in one or two sentences.
    pub message: String,
    /// The operation at fault (for linearizability: the one that could not be placed).
    pub op: Option<OpId>,
    /// That operation's window: invocation and completion times (`None`: open).
    pub window: Option<(u64, Option<u64>)>,
    /// A small set of operations that together show the violation (includes `op`).
    pub ops: Vec<OpId>,
    /// Partition key or path, when the violation is about one object.
    pub key: Option<String>,
    /// The model state at that point (for linearizability: after `linearized`).
    pub state: Option<String>,
    /// For linearizability: the longest prefix the search could order before `op` got stuck
    /// (last operations only, oldest first).
    pub linearized: Vec<OpId>,
}

impl Violation {
    /// A violation with only a kind, a message and its operations.
    pub fn new(kind: &str, message: String, op: Option<OpId>, ops: Vec<OpId>) -> Violation {
        Violation {
            kind: kind.to_string(),
            message,
            op,
            window: None,
            ops,
            key: None,
            state: None,
            linearized: Vec::new(),
        }
    }
}

/// At most this many violations of one kind are reported (the count is in the first one).
pub const EXAMPLES_PER_KIND: usize = 5;

/// Keeps the first [`EXAMPLES_PER_KIND`] violations of each kind, in order, and notes in the
/// first of a kind how many there were.
pub fn limit_per_kind(violations: Vec<Violation>) -> Vec<Violation> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in &violations {
        *counts.entry(v.kind.clone()).or_default() += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut kept = Vec::new();
    for mut v in violations {
        let n = seen.entry(v.kind.clone()).or_default();
        *n += 1;
        if *n > EXAMPLES_PER_KIND {
            continue;
        }
        let total = counts[&v.kind];
        if *n == 1 && total > 1 {
            v.message
                .push_str(&format!(" ({total} violations of this kind in all)"));
        }
        kept.push(v);
    }
    kept
}

/// Fills in the window of each violation's operation from the history.
pub fn fill_windows(violations: &mut [Violation], history: &History) {
    for v in violations {
        if let (None, Some(op)) = (v.window, v.op.and_then(|id| history.ops.get(id))) {
            v.window = Some((op.invoke_ns, op.end_ns()));
        }
    }
}
