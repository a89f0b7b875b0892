//! The ZAB online monitor: invariants checked after every event a ZooKeeper server handles
//! (reference A.11). It recomputes what the protocol should have done from its own mirror of
//! every server's log, never from the protocol's own conclusions. It is generic over the
//! world's node type ([`ZabHost`]), so a Kafka world's ensemble is watched by the same code.
//!
//! - `zab-one-leader-per-epoch`: the epoch -> established leader map is a function.
//! - `zab-epoch-monotonic`: acceptedEpoch and currentEpoch never go back (durable copies
//!   across crashes, memory within an incarnation), and currentEpoch <= acceptedEpoch.
//! - `zab-unique-zxid`: no two different txns are ever logged with the same zxid.
//! - `zab-committed-agreement`: leaders never commit different txns at one zxid.
//! - `zab-committed-truncated`: no committed txn is removed from a log by TRUNC.
//! - `zab-leader-completeness`: an established leader holds every committed txn.
//! - `zab-process-consistency`: a synced follower's log is a prefix of its leader's,
//!   compared entry by entry above the snapshots they start from.
//! - `zab-digest-agreement`: servers that applied the same zxid have equal tree digests.
//! - `zab-ephemeral-session`: no ephemeral outlives its session's closeSession.
//! - `zab-fle-vote-order`: within one election round a server's vote only improves under
//!   the true (epoch, zxid, sid) order.
//! - `zab-commit-quorum-durable`: when a txn commits, a quorum of servers' disks hold it
//!   for good, read from the kernel's disks (`durable`), not from what servers report.
//! - `zab-integrity`, `zab-primary-order`: every txn a server delivers (applies) was
//!   broadcast by a primary, and in the order that primary broadcast them (`order`).
//! - `zab-ack-consistency`: a leader receives ACKs only for zxids it proposed to that
//!   learner (or NEWLEADER's).
//! - `zab-memory-disk`: outside synchronisation, a server's tree is the replay of its disk
//!   (snapshot + log, as written) up to the tree's zxid, and lastProcessedZxid is not
//!   beyond it (`memory`).
//!
//! Depends on: zab, node, sim, cluster.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use super::order::{ack_legal, integrity_ok, primary_order_ok};
use super::zxmap::{point_from_end, point_from_start, ZxidMap};
use super::{durable, server, ZabHost};
use crate::cluster::Violation;
use crate::node::NodeId;
use crate::sim::Sim;
use crate::zab::msg::{zxid_epoch, PeerState, TxnOp, Vote, Zxid};
use crate::zab::snapshot::ServerView;
use crate::zab::{ZabPhase, ZabServer};

/// What the monitor remembers of one server.
#[derive(Clone, Debug, Default)]
struct ServerMon {
    inc: u32,
    durable_epochs_max: (u32, u32),
    mem_epochs: (u32, u32),
    /// The server's log as last seen: (zxid, fingerprint), and its generation.
    mirror: Vec<(Zxid, u64)>,
    mirror_gen: u64,
    /// The log is durable up to here (as last seen).
    durable: Zxid,
    commit_upto: Zxid,
    established: Option<u32>,
    vote: Option<(u64, Vote)>,
    /// The applied zxid at which digest and ephemerals were last checked.
    checked_applied: Option<Zxid>,
    /// Process consistency: ((leader, epoch, base), entries above base found to match).
    checked_process: Option<((u32, u32, Zxid), usize)>,
    /// The view after the last checked event: most events (pings, timers, reads) change
    /// nothing the invariants look at, and are skipped.
    last_view: Option<ServerView>,
    /// The last txn delivered (applied), when the monitor followed it txn by txn; None
    /// after a jump it cannot follow (a restart, a snapshot).
    delivered: Option<Zxid>,
    /// ACKs received by this server as leader that were checked: (leader epoch, count).
    acks_seen: (Option<u32>, u64),
    /// The replay of this server's disk, for `zab-memory-disk`.
    pub(super) shadow: Option<super::memory::Shadow>,
}

/// The monitor's memory across events: a mirror per server and what was committed.
#[derive(Default)]
pub struct Monitor {
    servers: Vec<ServerMon>,
    leaders: BTreeMap<u32, u32>,
    /// Every logged txn by zxid: its fingerprint and its request (session, cxid).
    txns: ZxidMap<(u64, (u64, u64))>,
    committed: ZxidMap<u64>,
    /// The (session, cxid) of every committed txn: which client request it was.
    committed_ids: BTreeMap<Zxid, (u64, u64)>,
    /// The proposal log: every txn a leader logged in its own epoch (A.11 `proposalLog`).
    proposals: ZxidMap<u64>,
    closed_sessions: BTreeMap<u64, Zxid>,
    /// What the history conversion needs of the committed txns.
    record: super::history::CommitRecord,
    digests: ZxidMap<(u64, u32)>,
    elections: u64,
    /// Scratch list of the txns one event found newly committed (kept for its capacity).
    fresh: Vec<(Zxid, u64)>,
}

fn violation<N>(sim: &Sim<N>, invariant: &str, node: NodeId, message: String) -> Violation
where
    N: ZabHost,
    N::Msg: Hash + Debug,
{
    crate::cluster::safety_violation(sim, invariant, node, message)
}

impl Monitor {
    pub fn new(servers: usize) -> Self {
        Monitor {
            servers: vec![ServerMon::default(); servers],
            ..Monitor::default()
        }
    }

    /// Every txn seen committed, by zxid, with its fingerprint.
    pub fn committed(&self) -> &ZxidMap<u64> {
        &self.committed
    }

    /// The (session, cxid) of every committed txn, by zxid.
    pub fn committed_ids(&self) -> &BTreeMap<Zxid, (u64, u64)> {
        &self.committed_ids
    }

    /// The committed txns by client request, and the closeSession txns.
    pub fn commit_record(&self) -> &super::history::CommitRecord {
        &self.record
    }

    /// Leaders established so far (one per leader and epoch).
    pub fn elections(&self) -> u64 {
        self.elections
    }

    /// The invariants after an event of server `id`.
    pub fn check<N>(&mut self, sim: &Sim<N>, id: NodeId) -> Vec<Violation>
    where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let Some(s) = server(sim, id) else {
            return Vec::new();
        };
        if s.halted.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let inc = sim.incarnation(id);
        let fresh = self.servers[id.index()].inc != inc;
        if fresh {
            let m = &mut self.servers[id.index()];
            m.inc = inc;
            m.mem_epochs = (0, 0);
            m.commit_upto = 0;
            m.established = None;
            m.vote = None;
            m.checked_applied = None;
            m.checked_process = None;
            m.last_view = None;
            m.delivered = None;
            m.acks_seen = (None, 0);
            m.shadow = None;
        }
        // An ACK may change nothing the view shows: checked before the skip below.
        self.check_acks(sim, id, s, &mut out);
        // Compared in place: a view is built only for an event that changed it.
        let last = self.servers[id.index()].last_view.as_ref();
        if last.is_some_and(|l| s.view_unchanged(l)) {
            return out;
        }
        let v = s.view();
        self.check_epochs(sim, id, &v, &mut out);
        self.scan_log(sim, id, s, fresh, &v, &mut out);
        self.check_leader(sim, id, s, &v, &mut out);
        self.check_process(sim, id, s, &v, &mut out);
        self.check_state(sim, id, s, &v, &mut out);
        self.check_delivery(sim, id, &v, &mut out);
        let shadow = &mut self.servers[id.index()].shadow;
        if let Some(msg) = super::memory::check(shadow, sim.disk(id), s, &v) {
            out.push(violation(sim, "zab-memory-disk", id, msg));
        }
        self.servers[id.index()].last_view = Some(v);
        out
    }

    /// Leader-side ACK consistency (A.11 item 17): the ACK this event brought, if any, is
    /// for NEWLEADER's zxid or for a zxid this leader sent that learner as a PROPOSAL.
    fn check_acks<N>(&mut self, sim: &Sim<N>, id: NodeId, s: &ZabServer, out: &mut Vec<Violation>)
    where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let m = &mut self.servers[id.index()];
        let Some(l) = s.leader.as_ref() else {
            m.acks_seen = (None, 0);
            return;
        };
        if m.acks_seen.0 != l.zab_epoch {
            m.acks_seen = (l.zab_epoch, 0);
        }
        if m.acks_seen.1 == l.acks_received {
            return;
        }
        m.acks_seen.1 = l.acks_received;
        let (Some(e), Some((sid, z))) = (l.zab_epoch, l.last_ack) else {
            return;
        };
        if !ack_legal(e, z, l.proposed_to.get(&sid)) {
            let msg =
                format!("leader of epoch {e} got ACK {z:#x} from zk{sid}, never proposed to it");
            out.push(violation(sim, "zab-ack-consistency", id, msg));
        }
    }

    /// Integrity and primary order (A.11 items 1, 4, 5) on the txns this server delivered
    /// since the last check: the log entries between the last delivered zxid and the
    /// tree's. A jump the log does not explain (a restart, a SNAP image, a TRUNC reload)
    /// restarts the following there.
    fn check_delivery<N>(
        &mut self,
        sim: &Sim<N>,
        id: NodeId,
        v: &ServerView,
        out: &mut Vec<Violation>,
    ) where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let m = &mut self.servers[id.index()];
        let now = v.last_applied;
        let prev = match m.delivered {
            Some(p) if p < now => p,
            Some(p) if p == now => return,
            _ => {
                m.delivered = Some(now);
                return;
            }
        };
        m.delivered = Some(now);
        let j = point_from_end(&m.mirror, |x| x.0 <= now);
        let i = point_from_end(&m.mirror[..j], |x| x.0 <= prev);
        if j == 0 || m.mirror[j - 1].0 != now {
            return;
        }
        let mut last = prev;
        for &(z, h) in &m.mirror[i..j] {
            if !integrity_ok(self.proposals.get(z), h) {
                let msg = format!("delivered txn {z:#x} was never broadcast by a primary");
                out.push(violation(sim, "zab-integrity", id, msg));
                return;
            }
            if !primary_order_ok(last, z) {
                let msg = format!(
                    "delivered {z:#x} right after {last:#x}: its primary broadcast other txns \
                     between them"
                );
                out.push(violation(sim, "zab-primary-order", id, msg));
                return;
            }
            last = z;
        }
    }

    fn check_epochs<N>(
        &mut self,
        sim: &Sim<N>,
        id: NodeId,
        v: &ServerView,
        out: &mut Vec<Violation>,
    ) where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let m = &mut self.servers[id.index()];
        let durable = (v.durable_accepted_epoch, v.durable_current_epoch);
        let mem = (v.accepted_epoch, v.current_epoch);
        let back = |new: (u32, u32), old: (u32, u32)| new.0 < old.0 || new.1 < old.1;
        if back(durable, m.durable_epochs_max) || back(mem, m.mem_epochs) {
            let msg = format!(
                "epochs (accepted, current) went back: durable {:?} after {:?}, memory {:?} \
                 after {:?}",
                durable, m.durable_epochs_max, mem, m.mem_epochs
            );
            out.push(violation(sim, "zab-epoch-monotonic", id, msg));
        }
        if v.current_epoch > v.accepted_epoch {
            let msg = format!(
                "currentEpoch {} > acceptedEpoch {}",
                v.current_epoch, v.accepted_epoch
            );
            out.push(violation(sim, "zab-epoch-monotonic", id, msg));
        }
        m.durable_epochs_max = (
            durable.0.max(m.durable_epochs_max.0),
            durable.1.max(m.durable_epochs_max.1),
        );
        m.mem_epochs = mem;
    }

    /// Keeps a mirror of the server's log: checks zxid uniqueness on every new record and
    /// that no truncation within an incarnation removes a committed txn.
    fn scan_log<N>(
        &mut self,
        sim: &Sim<N>,
        id: NodeId,
        s: &ZabServer,
        fresh: bool,
        v: &ServerView,
        out: &mut Vec<Violation>,
    ) where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let entries = s.log_entries();
        let gen = s.log_generation().0;
        let m = &mut self.servers[id.index()];
        let mut keep = m.mirror.len().min(entries.len());
        if fresh || m.mirror_gen != gen {
            // A restart reloads the durable log (lost unsynced writes are no truncation);
            // a SNAP sync starts a new generation whose snapshot holds the history.
            keep = 0;
            m.mirror.clear();
            m.mirror_gen = gen;
        }
        while keep > 0 && m.mirror[keep - 1].0 != entries[keep - 1].txn.zxid {
            keep -= 1;
        }
        // Usually nothing was removed: no list is built then.
        let removed: Vec<(Zxid, u64)> = if keep < m.mirror.len() {
            m.mirror.drain(keep..).collect()
        } else {
            Vec::new()
        };
        m.durable = v.log_durable_zxid;
        // CommittedLogDurability (A.11 item 11): a TRUNC may remove a committed txn from
        // one server (the leader truncates to its lastCommitted, then re-sends what it
        // committed since), but never so that fewer than a quorum still hold it durably.
        let quorum = self.servers.len() / 2 + 1;
        for (z, h) in removed {
            if self.committed.get(z) != Some(&h) {
                continue;
            }
            let holders = self
                .servers
                .iter()
                .enumerate()
                .filter(|(i, o)| *i != id.index() && o.durable >= z)
                .filter(|(_, o)| o.mirror.binary_search(&(z, h)).is_ok())
                .count();
            if holders < quorum {
                let msg = format!(
                    "committed txn {z:#x} was truncated from the log; {holders} other servers \
                     hold it durably, fewer than a quorum"
                );
                out.push(violation(sim, "zab-committed-truncated", id, msg));
            }
        }
        let m = &mut self.servers[id.index()];
        for e in &entries[keep..] {
            let h = crate::sim::trace::hash_of(&e.txn);
            let z = e.txn.zxid;
            // What a leader logs in its own epoch is its proposal (A.11 `proposalLog`).
            if v.established_epoch == Some(zxid_epoch(z)) {
                self.proposals.insert(z, h);
            }
            let request = (e.txn.session, e.txn.cxid);
            // The first copy of a txn records its request as logged; a later copy of the
            // same request at the same zxid finds it recorded already.
            let known = match self.txns.get_or_insert_with(z, || (h, request)) {
                (&mut (old, old_request), true) => {
                    if old != h {
                        let msg = format!("two different txns logged with zxid {z:#x}");
                        out.push(violation(sim, "zab-unique-zxid", id, msg));
                    }
                    old_request == request
                }
                (_, false) => false,
            };
            m.mirror.push((z, h));
            if !known {
                self.record.logged(&e.txn);
            }
        }
    }

    fn check_leader<N>(
        &mut self,
        sim: &Sim<N>,
        id: NodeId,
        s: &ZabServer,
        v: &ServerView,
        out: &mut Vec<Violation>,
    ) where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let Some(e) = v.established_epoch else {
            return;
        };
        let gen_base = s.log_generation().1;
        let m = &mut self.servers[id.index()];
        if m.established != Some(e) {
            // Checked once per establishment: the map only ever gains entries, so a later
            // event of this leadership finds what this one found, and a second leader of
            // e is caught at its own establishment.
            let prev = *self.leaders.entry(e).or_insert(id.0);
            if prev != id.0 {
                let msg = format!(
                    "zk{prev} and zk{} both established leaders of epoch {e}",
                    id.0
                );
                out.push(violation(sim, "zab-one-leader-per-epoch", id, msg));
            }
            m.established = Some(e);
            m.commit_upto = 0;
            self.elections += 1;
            // LeaderLogCompleteness: every txn committed in an earlier epoch is in the new
            // leader's history. Txns of later epochs are not owed: a leader of epoch e can
            // become established late (NEWLEADER ACKs from a quorum that has since moved on,
            // delivered after a partition heals) while a leader of e+1 already commits; it
            // can commit nothing itself, and steps down at its next quorum check
            // (zk-nemesis-heavy seed 22031 and six others of 100,000).
            let own_epoch_start = crate::zab::msg::make_zxid(e, 0);
            for (z, h) in self.committed.range(gen_base + 1, own_epoch_start) {
                let i = m.mirror.partition_point(|x| x.0 < z);
                if m.mirror.get(i) != Some(&(z, *h)) {
                    let msg = format!("established leader of epoch {e} lacks committed {z:#x}");
                    out.push(violation(sim, "zab-leader-completeness", id, msg));
                    break;
                }
            }
        }
        if v.last_committed <= m.commit_upto {
            // Nothing committed since the last check: the scan below would find no entry.
            return;
        }
        let start = point_from_end(&m.mirror, |x| x.0 <= m.commit_upto);
        // A list kept across events, so that a commit costs no allocation.
        let mut fresh = std::mem::take(&mut self.fresh);
        for &(z, h) in &m.mirror[start..] {
            if z > v.last_committed {
                break;
            }
            match self.committed.get_or_insert_with(z, || h) {
                (old, true) if *old != h => {
                    let msg = format!("a different txn was already committed at {z:#x}");
                    out.push(violation(sim, "zab-committed-agreement", id, msg));
                }
                (_, true) => {}
                (_, false) => {
                    fresh.push((z, h));
                    if let Some(t) = logged_near_end(s, z) {
                        self.committed_ids.insert(z, (t.session, t.cxid));
                        if matches!(t.op, TxnOp::CloseSession) {
                            self.closed_sessions.insert(t.session, z);
                        }
                        self.record.add(t, sim.now());
                    }
                }
            }
        }
        m.commit_upto = m.commit_upto.max(v.last_committed);
        for &(z, h) in &fresh {
            self.check_commit_durable(sim, id, z, h, out);
        }
        fresh.clear();
        self.fresh = fresh;
    }

    /// When z commits, a quorum of servers hold it for good on their disks (A.8: every ACK
    /// counted, the leader's own included, stands for a durable copy). Judged from the
    /// kernel's disks (`durable::holds`); the servers that are up are asked first, and the
    /// search stops at a quorum, so a correct run decodes about a quorum of records.
    fn check_commit_durable<N>(
        &self,
        sim: &Sim<N>,
        leader: NodeId,
        z: Zxid,
        h: u64,
        out: &mut Vec<Violation>,
    ) where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let quorum = self.servers.len() / 2 + 1;
        let n = self.servers.len() as u32;
        let order = std::iter::once(leader.0).chain((0..n).filter(|i| *i != leader.0));
        // Counted, not listed: a commit costs no allocation. The list is built only for
        // the message, by asking the same (read-only) question again.
        let mut held = 0;
        let mut any_down = false;
        // The record bytes found right so far: the next server's are compared to them.
        let mut known = None;
        for i in order {
            let id = NodeId(i);
            match server(sim, id) {
                Some(s) if durable::holds_up(sim.disk(id), s, z, h, &mut known) => held += 1,
                Some(_) => {}
                None => any_down = true,
            }
            if held >= quorum {
                return;
            }
        }
        if any_down {
            held += (0..n)
                .filter(|i| server(sim, NodeId(*i)).is_none())
                .filter(|i| durable::holds(sim.disk(NodeId(*i)), None, z, h))
                .count();
        }
        if held < quorum {
            // Those up first, then those down, each in the order asked above.
            let order = std::iter::once(leader.0).chain((0..n).filter(|i| *i != leader.0));
            let (up, down): (Vec<u32>, Vec<u32>) =
                order.partition(|i| server(sim, NodeId(*i)).is_some());
            let holders: Vec<u32> = up
                .into_iter()
                .chain(down)
                .filter(|i| {
                    let id = NodeId(*i);
                    durable::holds(sim.disk(id), server(sim, id), z, h)
                })
                .collect();
            let msg = format!(
                "txn {z:#x} committed while only {holders:?} hold it durably, fewer than a \
                 quorum of {quorum}"
            );
            out.push(violation(sim, "zab-commit-quorum-durable", leader, msg));
        }
    }

    /// ProcessConsistency (A.11 item 14): a follower synced by an established leader holds
    /// a prefix of that leader's log (above the snapshots both start from). Compared entry
    /// by entry on the monitor's own mirrors, incrementally: entries already found to match
    /// are not compared again while leader, epoch and base stay the same.
    fn check_process<N>(
        &mut self,
        sim: &Sim<N>,
        id: NodeId,
        s: &ZabServer,
        v: &ServerView,
        out: &mut Vec<Violation>,
    ) where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        if v.state != PeerState::Following || v.phase != ZabPhase::Broadcast {
            return;
        }
        let Some(lid) = v.leader else { return };
        let Some(l) = server(sim, NodeId(lid)) else {
            return;
        };
        if l.established_epoch() != Some(v.current_epoch) {
            return;
        }
        let base = s.log_generation().1.max(l.log_generation().1);
        let key = (lid, v.current_epoch, base);
        let (f, lm) = (&self.servers[id.index()], &self.servers[lid as usize]);
        let fs = &f.mirror[point_from_start(&f.mirror, |x| x.0 <= base)..];
        let ls = &lm.mirror[point_from_start(&lm.mirror, |x| x.0 <= base)..];
        let from = match f.checked_process {
            Some((k, n)) if k == key && n <= fs.len() => n,
            _ => 0,
        };
        let bad = fs[from..]
            .iter()
            .enumerate()
            .find(|(i, e)| ls.get(from + i) != Some(e))
            .map(|(_, e)| e.0);
        let n = fs.len();
        self.servers[id.index()].checked_process = Some((key, n));
        if let Some(z) = bad {
            let msg = format!(
                "synced follower's log is not a prefix of its leader zk{lid}'s: they differ \
                 at {z:#x}"
            );
            out.push(violation(sim, "zab-process-consistency", id, msg));
        }
    }

    fn check_state<N>(
        &mut self,
        sim: &Sim<N>,
        id: NodeId,
        s: &ZabServer,
        v: &ServerView,
        out: &mut Vec<Violation>,
    ) where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        self.check_votes(sim, id, v, out);
        // The tree only changes when the applied zxid does (or on a SNAP/TRUNC reload, which
        // also moves it): check digest and ephemerals then.
        let m = &mut self.servers[id.index()];
        if m.checked_applied == Some(v.last_applied) {
            return;
        }
        m.checked_applied = Some(v.last_applied);
        match self
            .digests
            .get_or_insert_with(v.last_applied, || (v.digest, id.0))
        {
            (&mut (d, other), true) if d != v.digest => {
                let msg = format!(
                    "tree digest at zxid {:#x} differs from zk{other}'s",
                    v.last_applied
                );
                out.push(violation(sim, "zab-digest-agreement", id, msg));
            }
            _ => {}
        }
        let tree = s.tree();
        let closed = |owner: u64| {
            self.closed_sessions
                .get(&owner)
                .is_some_and(|z| *z <= v.last_applied)
        };
        let outlives = |owner: u64| closed(owner) || tree.session_timeout_ms(owner).is_none();
        // The same judgement per owner first, without listing (and copying) every path;
        // the paths are listed only to name them once one outlives its session. Owners
        // and sessions both ascend: each owner's session is found by walking the
        // sessions alongside, not by a search per owner.
        let mut sessions = tree.sessions().map(|(session, _)| session).peekable();
        let any_outlives = tree.ephemeral_owners().any(|owner| {
            while sessions.next_if(|s| *s < owner).is_some() {}
            sessions.peek() != Some(&owner) || closed(owner)
        });
        if any_outlives {
            for (path, owner) in tree.ephemerals() {
                if outlives(owner) {
                    let msg = format!("ephemeral {path} outlives its session {owner:#x}");
                    out.push(violation(sim, "zab-ephemeral-session", id, msg));
                }
            }
        }
    }

    fn check_votes<N>(&mut self, sim: &Sim<N>, id: NodeId, v: &ServerView, out: &mut Vec<Violation>)
    where
        N: ZabHost,
        N::Msg: Hash + Debug,
    {
        let m = &mut self.servers[id.index()];
        if v.state == PeerState::Looking {
            let vote = Vote {
                peer_epoch: v.vote.0,
                zxid: v.vote.1,
                leader: v.vote.2,
            };
            if let Some((round, old)) = m.vote {
                // The true order, recomputed here rather than asked of the election code
                // (whose bug mode it judges): lexicographic on (peer epoch, zxid, sid).
                let key = |v: &Vote| (v.peer_epoch, v.zxid, v.leader);
                if round == v.election_round && key(&old) > key(&vote) {
                    let msg =
                        format!("vote went from {old:?} to the worse {vote:?} in round {round}");
                    out.push(violation(sim, "zab-fle-vote-order", id, msg));
                }
            }
            m.vote = Some((v.election_round, vote));
        } else {
            m.vote = None;
        }
    }
}

/// [`ZabServer::logged_txn`], searched from the end of the log (a txn just committed).
fn logged_near_end(s: &ZabServer, z: Zxid) -> Option<&crate::zab::msg::Txn> {
    let entries = s.log_entries();
    let i = point_from_end(entries, |e| e.txn.zxid < z);
    entries.get(i).filter(|e| e.txn.zxid == z).map(|e| &e.txn)
}
