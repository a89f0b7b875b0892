//! The end-of-run ZooKeeper checks over the recorded histories of a world's ZooKeeper
//! clients: one path for every world that holds an ensemble, the ZooKeeper world (its
//! workload clients) and the Kafka world (its brokers, whose hosted controllers issue their
//! operations through the broker's client). In order, stopping at the first that fails:
//! `zk-session-order` and `zk-acked-write-durable` per client on every recorded operation,
//! `zk-sync-read`, then `zk-history` (`check::zk_order`) on the operations its znode model
//! can follow.
//!
//! The znode model builds its tree from the history alone, so a path that an operation
//! outside the model writes (see [`history::in_model`]: an ephemeral create, which the
//! session's end deletes unrecorded; a sequential create, whose name the server picks; a
//! multi) is left out of `zk-history` altogether: its reads could not be explained.
//!
//! Depends on: zab (records, servers), node, sim, check, cluster (zk history, record).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hash::Hash;

use super::history::{self, HistoryCheck, Record};
use super::monitor::Monitor;
use super::{server, ZabHost};
use crate::cluster::capture::Witness;
use crate::cluster::record::Tally;
use crate::cluster::Violation;
use crate::node::NodeId;
use crate::sim::Sim;
use crate::zab::msg::{Op, Zxid};

/// What the ZooKeeper checks found over a set of client histories.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZkChecks {
    pub violations: Vec<Violation>,
    /// The witness of a failed `zk-sync-read` or `zk-history`, for the report.
    pub witness: Option<Witness>,
    /// Operations completed ok / fail / info.
    pub outcomes: Tally,
    /// Operations invoked.
    pub invoked: usize,
    /// Operations handed to `zk-history` (after conversion; a sync+read counts once).
    pub checked: usize,
    /// Whether `zk-history` ran (it is skipped after an earlier violation).
    pub history_ran: bool,
    /// `zk-history` ran out of budget: never counted as a pass.
    pub unknown: bool,
}

impl ZkChecks {
    /// The figures for a run's summary.
    pub fn summary(&self) -> serde_json::Value {
        let check = match (self.history_ran, self.unknown) {
            (false, _) => "skipped",
            (true, true) => "unknown",
            (true, false) => "done",
        };
        serde_json::json!({
            "ops": self.invoked,
            "ok": self.outcomes.ok,
            "fail": self.outcomes.fail,
            "info": self.outcomes.info,
            "history_checked_ops": self.checked,
            "history_check": check,
        })
    }
}

/// Runs the ZooKeeper checks on `clients` (each client node with its records) of a world
/// whose ZooKeeper servers are the node ids `0..servers`, against the committed txns the
/// online monitor `mon` saw. A client's process number in the checked history is its node
/// id minus `servers`.
pub fn check_clients<N>(
    sim: &Sim<N>,
    mon: &Monitor,
    servers: u32,
    clients: &[(NodeId, &[Record])],
) -> ZkChecks
where
    N: ZabHost,
    N::Msg: Hash + Debug,
{
    let mut out = ZkChecks {
        outcomes: history::tally(clients),
        invoked: clients.iter().map(|(_, h)| invocations(h)).sum(),
        ..ZkChecks::default()
    };
    let servers_up: Vec<NodeId> = (0..servers)
        .map(NodeId)
        .filter(|id| sim.is_up(*id))
        .collect();
    let survivor = |z, session, cxid| write_survives(sim, &servers_up, z, session, cxid);
    let committed = mon.committed_ids();
    for (id, h) in clients {
        let found = history::check_client_history(sim, *id, h, committed, &survivor);
        out.violations.extend(found);
    }
    if !out.violations.is_empty() {
        return out;
    }
    if let Some((v, w)) = history::check_sync_reads(sim, clients, servers) {
        out.violations.push(v);
        out.witness = Some(w);
        return out;
    }
    let modelled = modelled_records(clients);
    let procs: Vec<(u64, &[Record])> = clients
        .iter()
        .zip(&modelled)
        .map(|((id, _), h)| (u64::from(id.0 - servers), &h[..]))
        .collect();
    let converted = history::to_check_history(&procs);
    out.checked = converted.ops.len();
    out.history_ran = true;
    match history::check_converted(sim, &converted, servers) {
        HistoryCheck::Valid => {}
        HistoryCheck::Unknown => out.unknown = true,
        HistoryCheck::Invalid(v, w) => {
            out.violations.push(v);
            out.witness = Some(*w);
        }
    }
    out
}

fn invocations(h: &[Record]) -> usize {
    h.iter()
        .filter(|r| matches!(r, Record::Invoke { .. }))
        .count()
}

/// Paths the znode model cannot follow: written by an operation outside it.
#[derive(Debug, Default)]
struct Unmodelled {
    exact: BTreeSet<String>,
    /// A sequential create's path: every name the server may append to it.
    prefixes: BTreeSet<String>,
}

impl Unmodelled {
    fn of(clients: &[(NodeId, &[Record])]) -> Self {
        let mut u = Unmodelled::default();
        for (_, h) in clients {
            for r in h.iter() {
                if let Record::Invoke { op, .. } = r {
                    if op.is_write() && !history::in_model(op) {
                        u.add_writes(op);
                    }
                }
            }
        }
        u
    }

    fn add_writes(&mut self, op: &Op) {
        match op {
            Op::Create {
                path,
                sequential: true,
                ..
            } => {
                self.prefixes.insert(path.clone());
            }
            Op::Create { path, .. } | Op::Delete { path, .. } | Op::SetData { path, .. } => {
                self.exact.insert(path.clone());
            }
            Op::Multi(ops) => ops.iter().for_each(|o| self.add_writes(o)),
            _ => {}
        }
    }

    fn covers(&self, op: &Op) -> bool {
        let path = match op {
            Op::Multi(ops) => return ops.iter().any(|o| self.covers(o)),
            Op::Create { path, .. }
            | Op::Delete { path, .. }
            | Op::SetData { path, .. }
            | Op::Check { path, .. }
            | Op::GetData { path, .. }
            | Op::Exists { path, .. }
            | Op::GetChildren { path, .. }
            | Op::Sync { path } => path,
        };
        self.exact.contains(path) || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }
}

/// Each client's records without the operations on paths the model cannot follow.
fn modelled_records(clients: &[(NodeId, &[Record])]) -> Vec<Vec<Record>> {
    let unmodelled = Unmodelled::of(clients);
    if unmodelled.is_empty() {
        return clients.iter().map(|(_, h)| h.to_vec()).collect();
    }
    clients
        .iter()
        .map(|(_, h)| {
            let mut dropped = BTreeSet::new();
            let mut kept = Vec::with_capacity(h.len());
            for r in h.iter() {
                match r {
                    Record::Invoke { op_id, op, .. } if unmodelled.covers(op) => {
                        dropped.insert(*op_id);
                    }
                    Record::Complete { op_id, .. } if dropped.contains(op_id) => {}
                    _ => kept.push(r.clone()),
                }
            }
            kept
        })
        .collect()
}

/// Whether the txn a client was answered for (zxid `z`, its session and cxid) survives to
/// the end of the run: no server that is up holds another txn at `z` in its log, and one at
/// least holds it (logged, or under the snapshot its log generation starts from; a tree
/// built on a snapshot is judged by the digest agreement). Vacuous when no server is up.
fn write_survives<N: ZabHost>(
    sim: &Sim<N>,
    servers: &[NodeId],
    z: Zxid,
    session: u64,
    cxid: u64,
) -> Result<(), String>
where
    N::Msg: Hash + Debug,
{
    let mut held = servers.is_empty();
    for id in servers {
        let Some(s) = server(sim, *id) else { continue };
        held |= s.log_generation().1 >= z;
        let Some(t) = s.logged_txn(z) else {
            continue;
        };
        held = true;
        if (t.session, t.cxid) != (session, cxid) {
            return Err(format!(
                "but at the end {} logs (session {:#x}, cxid {}) there",
                sim.name(*id),
                t.session,
                t.cxid
            ));
        }
    }
    if held {
        Ok(())
    } else {
        Err("but at the end no server holds it".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::msg::OpResult;
    use crate::zab::record::Outcome;

    fn op(op_id: u64, op: Op) -> [Record; 2] {
        let at_ns = op_id * 10;
        let outcome = Outcome::Ok(OpResult::Synced);
        [
            Record::Invoke {
                op_id,
                session: 1,
                op,
                at_ns,
            },
            Record::Complete {
                op_id,
                session: 1,
                outcome,
                zxid: Some(op_id),
                cxid: op_id,
                at_ns: at_ns + 1,
            },
        ]
    }

    fn create(path: &str, ephemeral: bool, sequential: bool) -> Op {
        let (path, data) = (path.to_string(), Vec::new());
        Op::Create {
            path,
            data,
            ephemeral,
            sequential,
        }
    }

    fn get(path: &str) -> Op {
        let path = path.to_string();
        Op::GetData { path, watch: false }
    }

    /// Paths an ephemeral or sequential create or a multi writes are left out of
    /// `zk-history` entirely (their reads too); every other operation stays.
    #[test]
    fn operations_on_paths_the_model_cannot_follow_are_left_out() {
        let set = |path: &str| Op::SetData {
            path: path.into(),
            data: Vec::new(),
            version: 0,
        };
        let check = Op::Check {
            path: "/controller_epoch".into(),
            version: 1,
        };
        let ops = [
            create("/brokers", false, false),
            create("/brokers/ids/0", true, false),
            get("/brokers/ids/0"),
            create("/isr_change_notification/isr_change_", false, true),
            Op::Delete {
                path: "/isr_change_notification/isr_change_0000000001".into(),
                version: -1,
            },
            Op::Multi(vec![check, set("/state")]),
            get("/state"),
            get("/controller_epoch"),
            get("/brokers"),
        ];
        let records: Vec<Record> = (ops.iter().enumerate())
            .flat_map(|(i, o)| op(i as u64 + 1, o.clone()))
            .collect();
        let kept = modelled_records(&[(NodeId(3), &records[..])]);
        let kept_ops: Vec<&Op> = (kept[0].iter())
            .filter_map(|r| match r {
                Record::Invoke { op, .. } => Some(op),
                Record::Complete { .. } => None,
            })
            .collect();
        let expected = [&ops[0], &ops[7], &ops[8]];
        assert_eq!(kept_ops, expected, "the multi's check alone writes nothing");
        assert_eq!(kept[0].len(), 6, "each kept op keeps its completion");
    }
}
