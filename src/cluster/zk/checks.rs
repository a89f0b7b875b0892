//! The end-of-run ZooKeeper checks over the recorded histories of a world's ZooKeeper
//! clients: one path for every world that holds an ensemble, the ZooKeeper world (its
//! workload clients) and the Kafka world (its brokers, whose hosted controllers issue their
//! operations through the broker's client). In order, stopping at the first that fails:
//! `zk-session-order` and `zk-acked-write-durable` per client on every recorded operation,
//! `zk-sync-read`, then `zk-history` (`check::zk_order`) on the operations its znode model
//! can follow.
//!
//! Every recorded operation goes to the checks, ephemeral, sequential and multi ones
//! included: the conversion resolves writes whose outcome the client never learned from the
//! monitor's commit record, and `check::zk_order` itself decides which paths its per-path
//! search can follow (the whole-tree replay covers the rest).
//!
//! Depends on: zab (records, servers), node, sim, check, cluster (zk history, record).

use std::fmt::Debug;
use std::hash::Hash;

use super::history::{self, HistoryCheck, Record};
use super::monitor::Monitor;
use super::{server, ZabHost};
use crate::cluster::capture::{self, ClientOp, Witness};
use crate::cluster::record::Tally;
use crate::cluster::Violation;
use crate::node::NodeId;
use crate::sim::Sim;
use crate::zab::msg::Zxid;

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
    // Each client's records are paired once; every check below reads that pairing.
    let paired: Vec<history::Ops<'_>> =
        clients.iter().map(|(_, h)| history::Ops::pair(h)).collect();
    let clients: Vec<(NodeId, &history::Ops<'_>)> =
        clients.iter().map(|(id, _)| *id).zip(&paired).collect();
    for (id, h) in &clients {
        let found = history::check_client_history(sim, *id, h, committed, &survivor);
        out.violations.extend(found);
    }
    if !out.violations.is_empty() {
        return out;
    }
    let record = mon.commit_record();
    if let Some((v, w)) = history::check_sync_reads(sim, &clients, record, servers) {
        out.violations.push(v);
        out.witness = Some(w);
        return out;
    }
    let procs: Vec<(u64, &history::Ops<'_>)> = clients
        .iter()
        .map(|(id, h)| (u64::from(id.0 - servers), *h))
        .collect();
    let converted = history::convert(&procs, record);
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

/// The operations of `clients` (as [`check_clients`] takes them) for a report's diagram:
/// the same conversion the checks see, each operation on its client's lane.
pub fn client_ops(mon: &Monitor, servers: u32, clients: &[(NodeId, &[Record])]) -> Vec<ClientOp> {
    let procs: Vec<(u64, &[Record])> = clients
        .iter()
        .map(|(id, h)| (u64::from(id.0 - servers), *h))
        .collect();
    let history = history::to_check_history(&procs, mon.commit_record());
    capture::client_ops(&history, &|p| p as u32 + servers)
}

fn invocations(h: &[Record]) -> usize {
    h.iter()
        .filter(|r| matches!(r, Record::Invoke { .. }))
        .count()
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
