//! ZooKeeper's liveness goals for the healed phase, usable by any world that holds an
//! ensemble: every server up, one established leader followed by all in BROADCAST, all
//! servers applied what the leader committed; and per client, an operation answered since
//! the heal (a write, for clients that write). The [`ElectionWatch`] says, when the goal is
//! missed, whether the election itself never settled (ZOOKEEPER-1419's symptom).
//!
//! Depends on: zab (server view, client records), node, sim.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hash::Hash;

use super::history::Record;
use super::{server, ZabHost};
use crate::node::NodeId;
use crate::sim::Sim;
use crate::zab::msg::{PeerState, Zxid};
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

/// What one server's role did since the heal, as its view shows it.
#[derive(Clone, Debug, Default)]
struct RoleTrack {
    /// The last state and (round, vote) seen; None while the server is down.
    last: Option<(PeerState, u64, (u32, Zxid, u32))>,
    /// Times it went (back) to LOOKING.
    lookings: u64,
    /// Times its vote changed while LOOKING.
    vote_changes: u64,
    /// Times it became an established leader.
    established: u64,
    was_established: bool,
}

/// Watches the servers' roles and votes over the healed phase, from their views only (never
/// the election's code): how often each went LOOKING, changed its vote, became an
/// established leader. An election "settled" when some server is an established leader;
/// when the ensemble's goal is missed and none is, the report says the election did not
/// settle, with these counts, which tell a storm of vote changes (a vote order with
/// cycles) from servers waiting quietly for a quorum.
#[derive(Clone, Debug, Default)]
pub struct ElectionWatch {
    tracks: Vec<RoleTrack>,
}

impl ElectionWatch {
    /// The healed phase begins: count from now.
    pub fn begin<N>(&mut self, sim: &Sim<N>, servers: &[NodeId])
    where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        self.tracks = vec![RoleTrack::default(); servers.len()];
        for &id in servers {
            self.observe(sim, id);
        }
    }

    /// After an event of server `id` in the healed phase.
    pub fn observe<N>(&mut self, sim: &Sim<N>, id: NodeId)
    where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let Some(t) = self.tracks.get_mut(id.0 as usize) else {
            return;
        };
        let Some(s) = server(sim, id) else {
            t.last = None;
            t.was_established = false;
            return;
        };
        let v = s.view();
        let now = (v.state, v.election_round, v.vote);
        match t.last {
            Some((state, ..)) if state != PeerState::Looking && v.state == PeerState::Looking => {
                t.lookings += 1;
            }
            None if v.state == PeerState::Looking => t.lookings += 1,
            Some((PeerState::Looking, round, vote))
                if v.state == PeerState::Looking && round == v.election_round && vote != v.vote =>
            {
                t.vote_changes += 1;
            }
            _ => {}
        }
        t.last = Some(now);
        let established = v.established_epoch.is_some();
        if established && !t.was_established {
            t.established += 1;
        }
        t.was_established = established;
    }

    /// Whether some server is an established leader now.
    pub fn settled(&self) -> bool {
        self.tracks.iter().any(|t| t.was_established)
    }

    /// `reason` (what the ensemble lacks), prefixed, when no server leads, by "the election
    /// did not settle" and what each server's role did since the heal.
    pub fn explain<N>(&self, sim: &Sim<N>, reason: String) -> String
    where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        if self.settled() {
            return reason;
        }
        let each: Vec<String> = self
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let state = match t.last {
                    None => "down",
                    Some((PeerState::Looking, ..)) => "LOOKING",
                    Some((PeerState::Following, ..)) => "FOLLOWING",
                    Some((PeerState::Leading, ..)) => "LEADING (not established)",
                };
                format!(
                    "{} {state}, {} elections, {} vote changes, {} times leader",
                    sim.name(NodeId(i as u32)),
                    t.lookings,
                    t.vote_changes,
                    t.established
                )
            })
            .collect();
        format!(
            "the election did not settle ({reason}); since the heal: {}",
            each.join("; ")
        )
    }
}
