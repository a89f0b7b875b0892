//! ZooKeeper's liveness goals for the healed phase, usable by any world that holds an
//! ensemble: every server up, one established leader followed by all in BROADCAST, all
//! servers applied what the leader committed; and per client, an operation answered since
//! the heal (a write, for clients that write). The [`ElectionWatch`] says, when the goal is
//! missed, whether the election itself never settled (ZOOKEEPER-1419's symptom).
//!
//! Depends on: zab (server view, client records, the start-up refusal), cluster (the
//! known-behaviour record), node, sim.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hash::Hash;

use super::history::Record;
use super::{server, ZabHost};
use crate::cluster::{KnownBehaviour, Violation};
use crate::node::NodeId;
use crate::sim::Sim;
use crate::zab::epochs::STARTUP_EPOCH_REFUSAL;
use crate::zab::msg::{PeerState, Zxid};
use crate::zab::ZabPhase;

/// The name a liveness failure caused by `QuorumPeer.loadDataBase`'s refusal carries: the
/// JIRA issue that tracks it for ZooKeeper 3.5 and later (unresolved; its 3.4 twin,
/// ZOOKEEPER-1653, was fixed only on branch-3.4, by the `updatingEpoch` marker file).
pub const STARTUP_REFUSAL_NAME: &str = "ZOOKEEPER-2354 start-up refusal";
const STARTUP_REFUSAL_REFERENCE: &str = "ZOOKEEPER-2354 (3.5+, open) and ZOOKEEPER-1653 (3.4): \
     zookeeper fails to start because of inconsistent epoch; ZOOKEEPER-4269 (2021) adopts \
     currentEpoch.tmp, which covers only a tmp written before the process died; \
     apache/zookeeper 3.9 QuorumPeer.loadDataBase and Learner.syncWithLeader (NEWLEADER: \
     log appended and fsynced, then setCurrentEpoch, then the ACK)";

/// The servers halted by `loadDataBase`'s refusal, with the halt reason.
pub fn refused_servers<'a, N>(sim: &'a Sim<N>, servers: &[NodeId]) -> Vec<(NodeId, &'a str)>
where
    N: ZabHost,
    N::Msg: Hash + Debug,
{
    servers
        .iter()
        .filter_map(|&id| {
            let reason = sim.halted_reason(id)?;
            reason
                .starts_with(STARTUP_EPOCH_REFUSAL)
                .then_some((id, reason))
        })
        .collect()
}

/// Whether the healed phase's goal was met with the servers `loadDataBase` refused set
/// aside: watched after every event of the healed phase (as the goal itself is), because a
/// loaded ensemble is caught up only between commits, and a check made once at the
/// deadline would find a commit in flight (hunt seed 1853: healthy for 60 s, yet not
/// caught up at that instant).
#[derive(Clone, Debug, Default)]
pub struct RefusalWatch {
    /// When the others first had their leader, were caught up, and every client had been
    /// served since the heal.
    reached_ns: Option<u64>,
}

impl RefusalWatch {
    pub fn begin(&mut self) {
        self.reached_ns = None;
    }

    /// After an event of the healed phase whose goal is not met: are the refused servers
    /// all that is missing? `clients_pending` is the clients' part of the goal.
    pub fn observe<N>(
        &mut self,
        sim: &Sim<N>,
        servers: &[NodeId],
        clients_pending: impl FnOnce() -> Option<String>,
    ) where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        if self.reached_ns.is_some() {
            return;
        }
        let refused = refused_servers(sim, servers);
        if refused.is_empty() {
            return;
        }
        let others: Vec<NodeId> = servers
            .iter()
            .copied()
            .filter(|id| refused.iter().all(|(r, _)| r != id))
            .collect();
        if others.len() > servers.len() / 2
            && ensemble_lack(sim, &others).is_none()
            && clients_pending().is_none()
        {
            self.reached_ns = Some(sim.now());
        }
    }

    /// Explains a liveness failure as ZooKeeper's own start-up refusal, when that is what
    /// it is: some servers halted with `loadDataBase`'s refusal (the epoch of their last
    /// logged zxid above currentEpoch, no readable currentEpoch.tmp), and everything else
    /// reached the goal at some point of the healed phase: the other servers (a quorum)
    /// had one established leader and were caught up, and every client had been served.
    /// When the others are fewer than a quorum, nothing could have made progress, and the
    /// refusals are the whole story. Anything else (no refusal, or the others never there)
    /// stays a liveness failure.
    pub fn explain<N>(
        &self,
        sim: &Sim<N>,
        servers: &[NodeId],
        heal_ns: u64,
        v: &Violation,
    ) -> Option<KnownBehaviour>
    where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let refused = refused_servers(sim, servers);
        if refused.is_empty() {
            return None;
        }
        let others: Vec<NodeId> = servers
            .iter()
            .copied()
            .filter(|id| refused.iter().all(|(r, _)| r != id))
            .collect();
        let names = |ids: &mut dyn Iterator<Item = NodeId>| {
            ids.map(|id| sim.name(id).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let quorum = servers.len() / 2 + 1;
        let rest = if others.len() < quorum {
            format!(
                "the other servers ({}) are fewer than a quorum ({quorum}): no leader can be \
                 elected without the refused ones",
                names(&mut others.iter().copied())
            )
        } else {
            let at = self.reached_ns?;
            format!(
                "the other servers ({}) had their leader and were caught up, and every \
                 client had been served, {:.3} s after the heal",
                names(&mut others.iter().copied()),
                at.saturating_sub(heal_ns) as f64 / 1e9
            )
        };
        let each: Vec<String> = refused
            .iter()
            .map(|(id, reason)| format!("{}: {reason}", sim.name(*id)))
            .collect();
        Some(KnownBehaviour {
            name: STARTUP_REFUSAL_NAME.into(),
            reference: STARTUP_REFUSAL_REFERENCE.into(),
            explanation: format!(
                "{} never came back: ZooKeeper refuses to start a server whose last logged \
                 zxid has an epoch above its currentEpoch unless currentEpoch.tmp holds one. \
                 A learner reaches that state when it dies after its NEWLEADER log write of a \
                 new epoch's txns (synced by DIFF) reached the page cache and before its \
                 currentEpoch.tmp did (a kill or stop during that log fsync), or when a \
                 power loss keeps those log writes but not the tmp (or only a torn part of \
                 it). Real ZooKeeper stays down the same way until an operator repairs the \
                 files. Meanwhile {rest}. {}",
                names(&mut refused.iter().map(|(id, _)| *id)),
                each.join("; ")
            ),
            explains: v.clone(),
        })
    }
}

/// What the ensemble of `servers` still lacks, or None when it is whole and caught up.
pub fn ensemble_pending<N>(sim: &Sim<N>, servers: &[NodeId]) -> Option<String>
where
    N: ZabHost,
    N::Msg: Hash + Debug,
{
    ensemble_lack(sim, servers).map(|lack| lack.describe(sim))
}

/// What the ensemble lacks, as data: the healed phase asks after every event, and the
/// sentence is only needed once, at the liveness deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lack {
    Down(NodeId),
    NoLeader,
    NotInBroadcast {
        id: NodeId,
        leader: NodeId,
    },
    Behind {
        id: NodeId,
        applied: Zxid,
        committed: Zxid,
    },
}

impl Lack {
    pub fn describe<N>(self, sim: &Sim<N>) -> String
    where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        match self {
            Lack::Down(id) => format!("{} is down", sim.name(id)),
            Lack::NoLeader => "no established leader".into(),
            Lack::NotInBroadcast { id, leader } => format!(
                "{} is not in BROADCAST under {}",
                sim.name(id),
                sim.name(leader)
            ),
            Lack::Behind {
                id,
                applied,
                committed,
            } => format!(
                "{} applied {applied:#x}, the leader committed {committed:#x}",
                sim.name(id)
            ),
        }
    }
}

/// [`ensemble_pending`] without the sentence.
pub fn ensemble_lack<N>(sim: &Sim<N>, servers: &[NodeId]) -> Option<Lack>
where
    N: ZabHost,
    N::Msg: Hash + Debug,
{
    let mut leader: Option<(u32, NodeId)> = None;
    for &id in servers {
        let Some(s) = server(sim, id) else {
            return Some(Lack::Down(id));
        };
        if let Some(e) = s.established_epoch() {
            if leader.is_none_or(|(le, _)| e > le) {
                leader = Some((e, id));
            }
        }
    }
    let Some((_, lid)) = leader else {
        return Some(Lack::NoLeader);
    };
    // The few fields of the view this needs, read one by one (asked after every event of
    // the healed phase).
    let committed = server(sim, lid).expect("up").last_committed_zxid();
    for &id in servers {
        let s = server(sim, id).expect("up");
        if id != lid && (s.leader_sid() != Some(lid.0) || s.zab_phase() != ZabPhase::Broadcast) {
            return Some(Lack::NotInBroadcast { id, leader: lid });
        }
        let applied = s.tree().last_zxid();
        if applied != committed {
            return Some(Lack::Behind {
                id,
                applied,
                committed,
            });
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

/// [`client_served`], computed incrementally: `System::pending` asks after every event of
/// the healed phase until the goal is met, and a history only grows, so each record is
/// read once. Starts over when the client restarted (a new history) or a new heal began.
#[derive(Clone, Debug, Default)]
pub struct ServedScan {
    /// (client incarnation, heal time) the scan belongs to.
    key: Option<(u32, u64)>,
    /// Records read so far.
    pos: usize,
    /// Ids of the writes invoked so far.
    writes: BTreeSet<u64>,
    answered: bool,
    answered_write: bool,
}

impl ServedScan {
    /// Whether the client (in incarnation `inc`, with `history`) has been served since
    /// `heal_ns`: the same answer as [`client_served`] on the whole history.
    pub fn served(
        &mut self,
        inc: u32,
        history: &[Record],
        heal_ns: u64,
        needs_write: bool,
    ) -> bool {
        if self.key != Some((inc, heal_ns)) || history.len() < self.pos {
            *self = ServedScan {
                key: Some((inc, heal_ns)),
                ..ServedScan::default()
            };
        }
        for r in &history[self.pos..] {
            match r {
                Record::Invoke { op_id, op, .. } if op.is_write() => {
                    self.writes.insert(*op_id);
                }
                Record::Complete {
                    op_id,
                    zxid: Some(_),
                    at_ns,
                    ..
                } if *at_ns >= heal_ns => {
                    self.answered = true;
                    self.answered_write |= self.writes.contains(op_id);
                }
                _ => {}
            }
        }
        self.pos = history.len();
        self.answered && (!needs_write || self.answered_write)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::msg::{Op, OpResult};
    use crate::zab::record::Outcome;

    fn invoke(op_id: u64, write: bool) -> Record {
        let op = if write {
            Op::Delete {
                path: "/k".into(),
                version: -1,
            }
        } else {
            Op::GetData {
                path: "/k".into(),
                watch: false,
            }
        };
        Record::Invoke {
            op_id,
            session: 1,
            op: op.into(),
            at_ns: 0,
        }
    }

    fn complete(op_id: u64, zxid: Option<u64>, at_ns: u64) -> Record {
        Record::Complete {
            op_id,
            session: 1,
            outcome: Outcome::Ok(OpResult::Deleted),
            zxid,
            cxid: op_id,
            at_ns,
        }
    }

    /// The incremental scan answers what the whole-history function answers on every
    /// prefix, for writers and readers, and starts over on a new heal or incarnation.
    #[test]
    fn the_incremental_scan_agrees_with_the_whole_history() {
        let h = vec![
            invoke(1, true),
            invoke(2, false),
            complete(2, Some(5), 10),
            complete(1, None, 11),
            invoke(3, true),
            complete(3, Some(6), 4),
            invoke(4, true),
            complete(4, Some(7), 20),
        ];
        for heal in [0, 5, 15, 30] {
            for needs_write in [false, true] {
                let mut scan = ServedScan::default();
                for n in 0..=h.len() {
                    let want = client_served(&h[..n], heal, needs_write);
                    assert_eq!(
                        scan.served(0, &h[..n], heal, needs_write),
                        want,
                        "{heal} {n}"
                    );
                }
            }
        }
        let mut scan = ServedScan::default();
        assert!(scan.served(0, &h, 0, true));
        assert!(!scan.served(0, &h, 30, false), "a new heal starts over");
        assert!(scan.served(1, &h[..3], 0, false), "a restarted client too");
        assert!(!scan.served(1, &h[..3], 0, true));
    }
}
