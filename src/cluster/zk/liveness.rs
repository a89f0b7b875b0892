//! ZooKeeper's liveness goals for the healed phase, usable by any world that holds an
//! ensemble: every server up, one established leader followed by all in BROADCAST, all
//! servers applied what the leader committed; and per client, an operation answered since
//! the heal (a write, for clients that write).
//!
//! Depends on: zab (server view, client records), node, sim.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hash::Hash;

use super::history::Record;
use super::{server, ZabHost};
use crate::node::NodeId;
use crate::sim::Sim;
use crate::zab::ZabPhase;

/// What the ensemble of `servers` still lacks, or None when it is whole and caught up.
pub fn ensemble_pending<N>(sim: &Sim<N>, servers: &[NodeId]) -> Option<String>
where
    N: ZabHost,
    N::Msg: Hash + Debug,
{
    let mut leader: Option<(u32, NodeId)> = None;
    for &id in servers {
        let Some(s) = server(sim, id) else {
            return Some(format!("{} is down", sim.name(id)));
        };
        if let Some(e) = s.view().established_epoch {
            if leader.is_none_or(|(le, _)| e > le) {
                leader = Some((e, id));
            }
        }
    }
    let Some((_, lid)) = leader else {
        return Some("no established leader".into());
    };
    let lv = server(sim, lid).expect("up").view();
    for &id in servers {
        let v = server(sim, id).expect("up").view();
        if id != lid && (v.leader != Some(lid.0) || v.phase != ZabPhase::Broadcast) {
            return Some(format!(
                "{} is not in BROADCAST under {}",
                sim.name(id),
                sim.name(lid)
            ));
        }
        if v.last_applied != lv.last_committed {
            return Some(format!(
                "{} applied {:#x}, the leader committed {:#x}",
                sim.name(id),
                v.last_applied,
                lv.last_committed
            ));
        }
    }
    None
}

/// Has a client been served since the heal: some operation answered with a zxid, and, when
/// `needs_write`, a write among them.
pub fn client_served(history: &[Record], heal_ns: u64, needs_write: bool) -> bool {
    let answered = history
        .iter()
        .any(|r| matches!(r, Record::Complete { zxid: Some(_), at_ns, .. } if *at_ns >= heal_ns));
    answered && (!needs_write || answered_write_since(history, heal_ns))
}

fn answered_write_since(history: &[Record], heal_ns: u64) -> bool {
    let mut writes = BTreeSet::new();
    for r in history {
        match r {
            Record::Invoke { op_id, op, .. } if op.is_write() => {
                writes.insert(*op_id);
            }
            Record::Complete {
                op_id,
                zxid: Some(_),
                at_ns,
                ..
            } if *at_ns >= heal_ns && writes.contains(op_id) => return true,
            _ => {}
        }
    }
    false
}
