//! Phase 3, broadcast (A.7), leader side: establishing the epoch on a quorum of NEWLEADER
//! ACKs, turning client writes into PROPOSALs (prep against the projected tree), counting
//! ACKs (the leader's own only after its fsync), COMMIT strictly in zxid order, pings and
//! the quorum check that makes a leader step down, session expiry, and `sync`.
//!
//! May depend on: `node`, and the server's own state (`zab::mod`).

use std::collections::{BTreeMap, BTreeSet};

use crate::node::{ConnId, Context};

use super::config::BugMode;
use super::msg::{make_zxid, zxid_counter, Forwarded, Msg, Txn, TxnOp, Zxid};
use super::session::{OwnerCheck, SessionTracker};
use super::tree::DataTree;
use super::{ZabPhase, ZabServer};

/// The leader's view of one learner connection (ZooKeeper's LearnerHandler).
#[derive(Clone, Debug)]
pub struct LearnerHandler {
    pub sid: u32,
    pub info_seen: bool,
    pub peer_last_zxid: Option<Zxid>,
    /// The currentEpoch a fresh ACKEPOCH carried (None for ZooKeeper's ACKEPOCH(-1)).
    pub peer_current_epoch: Option<u32>,
    /// Sync packets sent: new proposals and commits go to it too.
    pub forwarding: bool,
    pub newleader_acked: bool,
    pub last_heard_ns: u64,
    pub ping_round_acked: u64,
}

impl LearnerHandler {
    pub fn new(sid: u32, now_ns: u64) -> Self {
        LearnerHandler {
            sid,
            info_seen: false,
            peer_last_zxid: None,
            peer_current_epoch: None,
            forwarding: false,
            newleader_acked: false,
            last_heard_ns: now_ns,
            ping_round_acked: 0,
        }
    }
}

/// Who asked for a `sync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOrigin {
    /// A client connected to the leader itself.
    Local,
    /// A client of the learner on this connection.
    Learner(ConnId),
}

#[derive(Clone, Debug)]
pub struct PendingSync {
    pub origin: SyncOrigin,
    pub session: u64,
    pub cxid: u64,
    /// Answer once this zxid (the last proposed when the sync arrived) is committed.
    pub wait_zxid: Zxid,
    /// ... and a quorum answered a ping of this round (quorum sync, unless ZK-1675).
    pub round: u64,
}

/// The server ids that acked a proposal: a bit per sid (an ensemble has at most 7
/// servers, ids 0..7), so that a proposal's ack set costs no allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SidSet(u64);

impl SidSet {
    pub fn insert(&mut self, sid: u32) {
        assert!(sid < 64, "server id {sid} beyond an ack set");
        self.0 |= 1 << sid;
    }

    pub fn remove(&mut self, sid: &u32) {
        if *sid < 64 {
            self.0 &= !(1 << sid);
        }
    }

    pub fn contains(&self, sid: &u32) -> bool {
        *sid < 64 && self.0 & (1 << sid) != 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
}

/// A leader's state for one epoch.
pub struct LeaderState {
    pub started_ns: u64,
    pub zab_epoch: Option<u32>,
    pub follower_infos: BTreeMap<u32, u32>,
    pub epoch_persisted: bool,
    pub epoch_acks: BTreeSet<u32>,
    pub epoch_quorum: bool,
    /// The epoch has its quorum; currentEpoch is written once the log is durable.
    pub current_epoch_waits_for_log: bool,
    pub current_epoch_durable: bool,
    pub newleader_acks: BTreeSet<u32>,
    pub established: bool,
    pub learners: BTreeMap<ConnId, LearnerHandler>,
    /// Proposed, not yet committed: zxid -> (txn, sids that acked).
    pub outstanding: BTreeMap<Zxid, (Txn, SidSet)>,
    pub last_committed: Zxid,
    pub last_proposed: Zxid,
    /// The projected state: committed tree plus every outstanding proposal.
    pub prep_tree: DataTree,
    pub sessions: SessionTracker,
    pub pending_syncs: Vec<PendingSync>,
    pub ping_round: u64,
    /// Observability for the monitor's ACK consistency check (A.11 item 17): every zxid
    /// sent as a PROPOSAL to each learner sid in this leadership, on any connection...
    pub proposed_to: BTreeMap<u32, BTreeSet<Zxid>>,
    /// ... and the ACKs received so far: how many, and the last one as (sid, zxid).
    pub acks_received: u64,
    pub last_ack: Option<(u32, Zxid)>,
}

impl LeaderState {
    pub fn new(now_ns: u64, tick_ns: u64) -> Self {
        LeaderState {
            started_ns: now_ns,
            zab_epoch: None,
            follower_infos: BTreeMap::new(),
            epoch_persisted: false,
            epoch_acks: BTreeSet::new(),
            epoch_quorum: false,
            current_epoch_waits_for_log: false,
            current_epoch_durable: false,
            newleader_acks: BTreeSet::new(),
            established: false,
            learners: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            last_committed: 0,
            last_proposed: 0,
            prep_tree: DataTree::new(),
            sessions: SessionTracker::new(tick_ns),
            pending_syncs: Vec::new(),
            ping_round: 0,
            proposed_to: BTreeMap::new(),
            acks_received: 0,
            last_ack: None,
        }
    }

    /// The learners a proposal, commit or ping goes to, in connection order (an iterator:
    /// the leader sends to them after every proposal and commit, so no list is built).
    fn forwarding_conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        forwarding(&self.learners)
    }

    fn synced_voters(&self) -> usize {
        self.learners.values().filter(|h| h.newleader_acked).count()
    }
}

fn forwarding(learners: &BTreeMap<ConnId, LearnerHandler>) -> impl Iterator<Item = ConnId> + '_ {
    learners
        .iter()
        .filter(|(_, h)| h.forwarding)
        .map(|(c, _)| *c)
}

impl ZabServer {
    fn leader_mut(&mut self) -> &mut LeaderState {
        self.leader.as_mut().expect("leader state")
    }

    /// Every message on a learner connection.
    pub(crate) fn on_learner_msg(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        conn: ConnId,
        sid: u32,
        msg: Msg,
    ) {
        if self.leader.is_none() {
            // Not leading (yet): ZooKeeper's learner port is not listening, so the
            // connection is refused; the learner retries (see `retry_leader_connection`).
            self.conns.remove(&conn);
            ctx.close(conn);
            return;
        }
        let now = ctx.now();
        if let Some(h) = self.leader_mut().learners.get_mut(&conn) {
            h.last_heard_ns = now;
        }
        match msg {
            Msg::FollowerInfo { accepted_epoch, .. } => {
                self.leader_on_follower_info(ctx, conn, sid, accepted_epoch)
            }
            Msg::AckEpoch {
                current_epoch,
                last_zxid,
                promised,
            } => self.leader_on_ack_epoch(ctx, conn, current_epoch, last_zxid, promised),
            Msg::Ack { zxid } => self.leader_on_ack(ctx, conn, sid, zxid),
            Msg::PingAck { round, touched } => {
                let l = self.leader_mut();
                if let Some(h) = l.learners.get_mut(&conn) {
                    h.ping_round_acked = h.ping_round_acked.max(round);
                }
                for s in touched {
                    l.sessions.touch(s, now);
                }
                self.check_pending_syncs(ctx);
            }
            Msg::Request { session, cxid, req } => self.propose(ctx, session, cxid, req, sid),
            Msg::SyncReq { session, cxid } => {
                self.leader_sync(ctx, SyncOrigin::Learner(conn), session, cxid)
            }
            Msg::Revalidate { session } if self.leader_established() => {
                let timeout_ms = self.revalidate_at_leader(now, session, sid);
                ctx.send(
                    conn,
                    Msg::Revalidated {
                        session,
                        timeout_ms,
                    },
                );
            }
            _ => {}
        }
    }

    fn leader_on_ack(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, sid: u32, zxid: Zxid) {
        let l = self.leader_mut();
        l.acks_received += 1;
        l.last_ack = Some((sid, zxid));
        let Some(e) = l.zab_epoch else { return };
        let Some(h) = l.learners.get_mut(&conn) else {
            return;
        };
        if !h.newleader_acked {
            // ackConsistent (A.11 item 17): the first ACK is the NEWLEADER ACK; anything
            // else is a protocol error and the learner is dropped (ZOOKEEPER-4685).
            if zxid != make_zxid(e, 0) || !h.forwarding {
                l.learners.remove(&conn);
                self.conns.remove(&conn);
                ctx.close(conn);
                return;
            }
            h.newleader_acked = true;
            l.newleader_acks.insert(sid);
            if l.established {
                ctx.send(conn, Msg::UpToDate);
            } else {
                self.try_establish(ctx);
            }
            return;
        }
        if let Some((_, acks)) = l.outstanding.get_mut(&zxid) {
            acks.insert(sid);
            self.try_commit(ctx);
        }
    }

    /// The leader's log fsync advanced: its own ACKs (NEWLEADER and proposals).
    pub(crate) fn leader_log_durable(&mut self, ctx: &mut Context<'_, Msg>) {
        let (me, durable, last) = (self.me, self.log_durable_zxid, self.storage.last_zxid());
        let log_synced = durable >= last && !self.log_truncation_unsynced;
        let l = self.leader_mut();
        if l.current_epoch_waits_for_log && log_synced {
            l.current_epoch_waits_for_log = false;
            let e = l.zab_epoch.expect("decided");
            return self.persist_current_epoch(ctx, e);
        }
        if l.current_epoch_durable && !l.established && durable >= last {
            l.newleader_acks.insert(me);
            self.try_establish(ctx);
            return;
        }
        if !l.established {
            return;
        }
        for (_, (_, acks)) in l.outstanding.range_mut(..=durable) {
            acks.insert(me);
        }
        self.try_commit(ctx);
    }

    /// A quorum (me included) acked NEWLEADER: the epoch is established (A.6).
    fn try_establish(&mut self, ctx: &mut Context<'_, Msg>) {
        let (quorum, me, now) = (self.quorum(), self.me, ctx.now());
        let l = self.leader.as_mut().expect("leader state");
        if l.established || l.newleader_acks.len() < quorum || !l.newleader_acks.contains(&me) {
            return;
        }
        let e = l.zab_epoch.expect("epoch");
        l.established = true;
        l.last_committed = self.tree.last_zxid();
        l.last_proposed = make_zxid(e, 0);
        l.prep_tree = self.tree.clone();
        for (s, timeout_ms) in self.tree.sessions() {
            l.sessions.add(s, timeout_ms * 1_000_000, now);
        }
        for (conn, h) in &l.learners {
            if h.newleader_acked {
                ctx.send(*conn, Msg::UpToDate);
            }
        }
        self.phase = ZabPhase::Broadcast;
        self.established_epochs.push(e);
    }

    /// PrepRequestProcessor + ProposalRequestProcessor: validate against the projected
    /// state, assign the next zxid, log, and send the PROPOSAL to forwarding learners.
    /// `owner` is the server the request came through (the leader itself for its own
    /// clients): a write from a server the session has left is a SESSIONMOVED error txn.
    pub(crate) fn propose(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        session: u64,
        cxid: u64,
        req: Forwarded,
        owner: u32,
    ) {
        let now = ctx.now();
        let l = self.leader.as_mut().expect("leader state");
        if !l.established {
            return;
        }
        let op = match req {
            Forwarded::CreateSession { timeout_ms } => {
                l.sessions.add(session, timeout_ms * 1_000_000, now);
                l.sessions.set_owner(session, owner);
                TxnOp::CreateSession { timeout_ms }
            }
            Forwarded::CloseSession if l.prep_tree.session_timeout_ms(session).is_some() => {
                l.sessions.mark_closing(session);
                TxnOp::CloseSession
            }
            Forwarded::CloseSession => TxnOp::Error {
                code: super::msg::ErrCode::SessionExpired,
                multi_len: 0,
                index: 0,
            },
            Forwarded::Write(_) if l.sessions.check_owner(session, owner) == OwnerCheck::Moved => {
                // Answered to a connection the client has left; nothing is applied.
                TxnOp::Error {
                    code: super::msg::ErrCode::SessionMoved,
                    multi_len: 0,
                    index: 0,
                }
            }
            Forwarded::Write(op) => l.prep_tree.prep(session, &op),
        };
        let e = l.zab_epoch.expect("epoch");
        let counter = zxid_counter(l.last_proposed) + 1;
        assert!(
            counter < u32::MAX,
            "zxid counter rollover (ZOOKEEPER-1277) not modelled"
        );
        let zxid = make_zxid(e, counter);
        let txn = Txn {
            zxid,
            session,
            cxid,
            op,
        };
        l.prep_tree.replay(&txn);
        l.last_proposed = zxid;
        l.outstanding.insert(zxid, (txn.clone(), SidSet::default()));
        for conn in forwarding(&l.learners) {
            let sid = l.learners[&conn].sid;
            l.proposed_to.entry(sid).or_default().insert(zxid);
            ctx.send(conn, Msg::Proposal(txn.clone()));
        }
        self.storage.append(ctx.disk(), &txn);
        self.request_log_fsync(ctx);
    }

    /// Commits the longest prefix of outstanding proposals that each have a quorum of
    /// durable ACKs: COMMIT is strictly in zxid order (`Leader.tryToCommit`).
    fn try_commit(&mut self, ctx: &mut Context<'_, Msg>) {
        let quorum = self.quorum();
        loop {
            let l = self.leader.as_mut().expect("leader state");
            let Some(entry) = l.outstanding.first_entry() else {
                break;
            };
            if entry.get().1.len() < quorum {
                break;
            }
            let (zxid, (txn, _)) = entry.remove_entry();
            assert!(zxid > l.last_committed, "commit goes back");
            l.last_committed = zxid;
            for conn in l.forwarding_conns() {
                ctx.send(conn, Msg::Commit { zxid });
            }
            if matches!(txn.op, TxnOp::CloseSession) {
                l.sessions.remove(txn.session);
            }
            self.apply_committed(ctx, &txn);
        }
        self.check_pending_syncs(ctx);
    }

    pub(crate) fn leader_sync(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        origin: SyncOrigin,
        session: u64,
        cxid: u64,
    ) {
        let l = self.leader.as_mut().expect("leader state");
        if !l.established {
            return;
        }
        // Quorum sync: a fresh ping round proves that a quorum still follows this leader
        // after the sync arrived, so no newer leader can have committed anything before.
        l.ping_round += 1;
        let round = l.ping_round;
        for conn in l.forwarding_conns() {
            ctx.send(conn, Msg::Ping { round });
        }
        l.pending_syncs.push(PendingSync {
            origin,
            session,
            cxid,
            wait_zxid: l.last_proposed,
            round,
        });
        self.check_pending_syncs(ctx);
    }

    fn quorum_acked_round(&self, round: u64) -> bool {
        let l = self.leader.as_ref().expect("leader state");
        let acked = l
            .learners
            .values()
            .filter(|h| h.newleader_acked && h.ping_round_acked >= round)
            .count();
        acked + 1 >= self.quorum()
    }

    fn check_pending_syncs(&mut self, ctx: &mut Context<'_, Msg>) {
        let bug_1675 = self.bug(BugMode::Zk1675);
        let l = self.leader.as_ref().expect("leader state");
        if l.pending_syncs.is_empty() {
            return;
        }
        let last_committed = l.last_committed;
        // The waiting syncs stay in their vector, in order (no copy per commit); only the
        // answered ones move out.
        let mut waiting = std::mem::take(&mut self.leader_mut().pending_syncs);
        let mut ready = Vec::new();
        waiting.retain(|s| {
            // ZOOKEEPER-1675 (Z12): ZooKeeper answers once the earlier proposals
            // committed, without asking whether it still leads a quorum.
            let confirmed = bug_1675 || self.quorum_acked_round(s.round);
            let answered = s.wait_zxid <= last_committed && confirmed;
            if answered {
                ready.push(s.clone());
            }
            !answered
        });
        self.leader_mut().pending_syncs = waiting;
        for s in ready {
            match s.origin {
                SyncOrigin::Local => self.sync_done(ctx, s.session, s.cxid),
                SyncOrigin::Learner(conn) => ctx.send(
                    conn,
                    Msg::SyncDone {
                        session: s.session,
                        cxid: s.cxid,
                    },
                ),
            }
        }
    }

    pub(crate) fn learner_lost(&mut self, _ctx: &mut Context<'_, Msg>, conn: ConnId) {
        if let Some(l) = self.leader.as_mut() {
            l.learners.remove(&conn);
            l.pending_syncs
                .retain(|s| s.origin != SyncOrigin::Learner(conn));
        }
    }

    /// Every tick: ping, drop silent learners, step down without a quorum, expire sessions.
    pub(crate) fn leader_tick(&mut self, ctx: &mut Context<'_, Msg>) {
        let (now, sync_limit_ns, quorum) = (ctx.now(), self.cfg.sync_limit_ns(), self.quorum());
        let init_limit_ns = self.cfg.init_limit_ns();
        let l = self.leader.as_mut().expect("leader state");
        l.ping_round += 1;
        let round = l.ping_round;
        let limit = if l.established {
            sync_limit_ns
        } else {
            init_limit_ns
        };
        let silent: Vec<ConnId> = l
            .learners
            .iter()
            .filter(|(_, h)| now.saturating_sub(h.last_heard_ns) > limit)
            .map(|(c, _)| *c)
            .collect();
        for conn in silent {
            l.learners.remove(&conn);
            self.conns.remove(&conn);
            ctx.close(conn);
        }
        let l = self.leader.as_mut().expect("leader state");
        for conn in l.forwarding_conns() {
            ctx.send(conn, Msg::Ping { round });
        }
        if !l.established {
            if now.saturating_sub(l.started_ns) > init_limit_ns {
                self.go_looking(ctx, "no quorum within initLimit");
            }
            return;
        }
        if l.synced_voters() + 1 < quorum {
            // isQuorumSynced failed: step down (A.7 item 6).
            return self.go_looking(ctx, "lost the quorum");
        }
        let expired = l.sessions.expired(now);
        for s in expired {
            let me = self.me;
            self.propose(ctx, s, 0, Forwarded::CloseSession, me);
        }
    }

    pub(crate) fn leader_established(&self) -> bool {
        self.leader.as_ref().is_some_and(|l| l.established)
    }
}
