//! What a captured run adds to its outcome, for the report's pictures and `run --trace`:
//! the kernel's messages and crashes ([`crate::sim::capture`]), each node's role and epoch
//! changes, the client operations, and the witness of a failed history check.
//!
//! Captured only when [`super::RunOptions::capture`] is set (a report's re-run, a trace
//! export); a normal run pays one branch per event and its trace hash is unchanged.
//!
//! Depends on: sim (capture types), check (histories, for witnesses).

use serde::{Deserialize, Serialize};

use crate::check::{Call, History, Outcome};
use crate::sim::capture::Capture;

/// A node's role as its protocol names it ("LOOKING", "FOLLOWING", "LEADING") and the epoch
/// it is in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub epoch: u64,
}

/// A role change of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChange {
    pub at_ns: u64,
    pub node: u32,
    pub role: Role,
}

/// One client operation, as the diagram and the witness draw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientOp {
    /// The client node.
    pub node: u32,
    /// The key or path it concerns ("" when none).
    pub key: String,
    pub invoke_ns: u64,
    /// None: still open at the end, or its outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_ns: Option<u64>,
    /// "ok", "fail" or "info".
    pub outcome: String,
    /// One line: call, result, zxid.
    pub label: String,
}

/// How an operation figures in a witness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// Another operation on the key.
    Plain,
    /// In the longest prefix the checker could order.
    Linearized,
    /// Shows the violation together with the culprit.
    Evidence,
    /// The operation that cannot be placed (or the read that is stale).
    Culprit,
}

/// An operation of a witness: a client operation with its mark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessOp {
    pub op: ClientOp,
    pub mark: Mark,
}

/// The checker's witness of a failed history check, ready to draw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    /// The invariant it explains, e.g. "zk-history".
    pub invariant: String,
    /// The key or path concerned.
    pub key: String,
    /// What the checker found, in words.
    pub explanation: String,
    /// When the first bad operation completed (the violating event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_at_ns: Option<u64>,
    /// Every operation on the key, in invocation order.
    pub ops: Vec<WitnessOp>,
}

/// Everything a captured run recorded beyond its outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCapture {
    pub kernel: Capture,
    pub roles: Vec<RoleChange>,
    pub ops: Vec<ClientOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
}

/// The operations of a checked history as client operations; `node_of` maps a process to
/// its node id.
pub fn client_ops(history: &History, node_of: &dyn Fn(u64) -> u32) -> Vec<ClientOp> {
    history
        .ops
        .iter()
        .map(|op| ClientOp {
            node: node_of(op.process),
            key: call_key(&op.call).to_string(),
            invoke_ns: op.invoke_ns,
            complete_ns: op.end_ns(),
            outcome: match op.outcome {
                Outcome::Ok => "ok",
                Outcome::Fail => "fail",
                Outcome::Info => "info",
            }
            .to_string(),
            label: op.summary(),
        })
        .collect()
}

/// The key, path or partition an operation concerns.
pub fn call_key(call: &Call) -> &str {
    match call {
        Call::Read { key }
        | Call::Write { key, .. }
        | Call::Cas { key, .. }
        | Call::Get { key }
        | Call::Put { key, .. }
        | Call::Append { key, .. } => key,
        Call::Create { path, .. }
        | Call::Delete { path, .. }
        | Call::SetData { path, .. }
        | Call::GetData { path }
        | Call::Exists { path }
        | Call::SyncGetData { path }
        | Call::CreateNode { path, .. }
        | Call::GetChildren { path }
        | Call::Check { path, .. } => path,
        Call::Multi { ops } => ops.first().map_or("", call_key),
        Call::CloseSession { .. } => "",
        Call::Send { key, .. } => key.as_deref().unwrap_or(""),
        Call::Poll => "",
    }
}

/// A witness over `history`: every operation on `key`, marked.
pub fn witness(
    invariant: &str,
    explanation: String,
    history: &History,
    key: &str,
    marks: &[(usize, Mark)],
    node_of: &dyn Fn(u64) -> u32,
) -> Witness {
    let all = client_ops(history, node_of);
    let mark_of = |i: usize| {
        marks
            .iter()
            .filter(|(id, _)| *id == i)
            .map(|(_, m)| *m)
            .max_by_key(|m| *m as u8)
            .unwrap_or(Mark::Plain)
    };
    let bad_at_ns = marks
        .iter()
        .find(|(_, m)| *m == Mark::Culprit)
        .and_then(|(i, _)| history.ops.get(*i))
        .map(|op| op.complete_ns.unwrap_or(op.invoke_ns));
    let ops = all
        .into_iter()
        .enumerate()
        .filter(|(_, op)| op.key == key)
        .map(|(i, op)| WitnessOp {
            op,
            mark: mark_of(i),
        })
        .collect();
    Witness {
        invariant: invariant.to_string(),
        key: key.to_string(),
        explanation,
        bad_at_ns,
        ops,
    }
}

/// The witness of a history checker's violation: the culprit, the operations that show it
/// and the longest prefix the search ordered, over every operation on the key.
pub fn checker_witness(
    invariant: &str,
    v: &crate::check::Violation,
    history: &History,
    node_of: &dyn Fn(u64) -> u32,
) -> Witness {
    let mut marks: Vec<(usize, Mark)> = v
        .linearized
        .iter()
        .map(|i| (*i, Mark::Linearized))
        .collect();
    marks.extend(v.ops.iter().map(|i| (*i, Mark::Evidence)));
    marks.extend(v.op.map(|i| (i, Mark::Culprit)));
    let key = v
        .key
        .clone()
        .or_else(|| {
            let op = v.op.or(v.ops.first().copied())?;
            history.ops.get(op).map(|o| call_key(&o.call).to_string())
        })
        .unwrap_or_default();
    let explanation = format!("{}: {}", v.kind, v.message);
    witness(invariant, explanation, history, &key, &marks, node_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::linearizable::{check_linearizable, Budget};
    use crate::check::spec::RegisterSpec;
    use crate::check::{Call, Ret};

    /// A stale read after a completed write: the checker's witness marks the read as the
    /// culprit and the write as ordered.
    #[test]
    fn a_stale_read_is_the_culprit_of_its_witness() {
        let mut h = History::new();
        let key = "x".to_string();
        let w = h.invoke(
            0,
            None,
            10,
            Call::Write {
                key: key.clone(),
                value: 1,
            },
        );
        h.complete(w, 20, Outcome::Ok, Some(Ret::Done), None);
        let r = h.invoke(1, None, 30, Call::Read { key: key.clone() });
        h.complete(r, 40, Outcome::Ok, Some(Ret::Value { value: None }), None);
        let other = h.invoke(2, None, 5, Call::Read { key: "y".into() });
        h.complete(
            other,
            6,
            Outcome::Ok,
            Some(Ret::Value { value: None }),
            None,
        );
        let verdict =
            check_linearizable(&RegisterSpec { cas: false }, &h, &Budget::default()).unwrap();
        let v = &verdict.violations()[0];
        let w = checker_witness("register", v, &h, &|p| p as u32 + 10);
        assert_eq!(w.key, "x");
        assert_eq!(w.ops.len(), 2, "only the operations on the key");
        let culprit: Vec<&WitnessOp> = w.ops.iter().filter(|o| o.mark == Mark::Culprit).collect();
        assert_eq!(culprit.len(), 1);
        assert_eq!(culprit[0].op.node, 11);
        assert_eq!(w.bad_at_ns, Some(40));
    }
}
