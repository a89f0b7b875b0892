//! Phase 2, synchronisation (A.6). Leader side: choose DIFF, TRUNC(+DIFF) or SNAP for a
//! learner exactly as `LearnerHandler.syncFollower` does, send the packets, start
//! forwarding, queue NEWLEADER. Follower side: buffer the sync, then at NEWLEADER persist
//! in ZooKeeper 3.9's order (snapshot if SNAP, log + fsync the committed txns, currentEpoch,
//! then ACK) and serve after UPTODATE. The bug modes ZOOKEEPER-3911 / -4646 / -4643 /
//! -2355 are deviations from this order, each marked where it happens.
//!
//! May depend on: `node`, and the server's own state (`zab::mod`).

use std::collections::VecDeque;

use crate::node::{ConnId, Context};

use super::config::BugMode;
use super::msg::{make_zxid, zxid_epoch, Msg, Txn, Zxid};
use super::tree::DataTree;
use super::{ZabPhase, ZabServer};

/// How the leader brings one learner up to date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncPlan {
    /// Send these committed txns (possibly none).
    Diff { txns: Vec<Txn> },
    /// Truncate the learner's log after `zxid`, then send these committed txns.
    Trunc { zxid: Zxid, txns: Vec<Txn> },
    /// Send a snapshot of the leader's committed tree.
    Snap,
}

/// `LearnerHandler.syncFollower`, as a pure function.
///
/// `committed` is the leader's in-memory window of committed txns (in zxid order) and
/// `window_base` the zxid just before its first entry (the leader has every txn after
/// `window_base`); `last_committed` is the leader's last committed zxid. `peer_epoch` is
/// the learner's currentEpoch from a fresh ACKEPOCH (None for ACKEPOCH(-1)); `zk_trunc`
/// (bug mode `trunc-below-snapshot`) is ZooKeeper's unconditional TRUNC for a learner
/// ahead of the leader.
pub fn choose_sync(
    peer_last: Zxid,
    peer_epoch: Option<u32>,
    committed: &[Txn],
    window_base: Zxid,
    last_committed: Zxid,
    zk_trunc: bool,
) -> SyncPlan {
    let after = |z: Zxid| -> Vec<Txn> {
        let i = committed.partition_point(|t| t.zxid <= z);
        committed[i..].to_vec()
    };
    if peer_last == last_committed {
        return SyncPlan::Diff { txns: Vec::new() };
    }
    if peer_last > last_committed {
        // The learner has txns the leader never committed (an old leader's tail).
        // ZooKeeper (`syncFollower`, `peerLastZxid > maxCommittedLog`) always answers
        // TRUNC(maxCommittedLog) here, with no epoch check. The learner can only truncate
        // its log: if that tail sits in a durable snapshot -- the SNAP a leader of an epoch
        // that never established sent it, persisted at NEWLEADER before currentEpoch and the
        // ACK (ZOOKEEPER-3642) -- ZooKeeper reloads that snapshot and diverges, and our
        // learner could not apply the TRUNC at all (zk-nemesis-hunt seeds 93997, 109894).
        // Deviation (README): TRUNC only when the learner's last zxid, its currentEpoch and
        // the truncation point are of one epoch -- the learner logged that tail itself while
        // following that epoch, so it is in its log; in any other case the tail may be a
        // sync snapshot's and the learner gets a SNAP. This extends ZooKeeper's own rule of
        // the other branch (`queueCommittedProposals`: "We cannot send TRUNC that cross
        // epoch boundary") and costs a snapshot transfer where a TRUNC might have sufficed.
        let e = zxid_epoch(peer_last);
        let one_epoch = e == zxid_epoch(last_committed) && peer_epoch.is_none_or(|c| c == e);
        if !zk_trunc && !one_epoch {
            return SyncPlan::Snap;
        }
        return SyncPlan::Trunc {
            zxid: last_committed,
            txns: Vec::new(),
        };
    }
    if peer_last < window_base {
        return SyncPlan::Snap;
    }
    if peer_last == window_base || committed.iter().any(|t| t.zxid == peer_last) {
        return SyncPlan::Diff {
            txns: after(peer_last),
        };
    }
    // The learner's last zxid is not in the leader's history: it holds txns the leader
    // never committed. `LearnerHandler.queueCommittedProposals` truncates it to the last
    // common point and diffs from there only if the leader's next txn is of the same epoch
    // as the learner's last one; a TRUNC across an epoch boundary is refused ("We cannot
    // send TRUNC that cross epoch boundary") and the learner gets a snapshot instead.
    let i = committed.partition_point(|t| t.zxid < peer_last);
    let next_epoch = committed.get(i).map(|t| zxid_epoch(t.zxid));
    if next_epoch != Some(zxid_epoch(peer_last)) {
        return SyncPlan::Snap;
    }
    let common = if i == 0 {
        window_base
    } else {
        committed[i - 1].zxid
    };
    SyncPlan::Trunc {
        zxid: common,
        txns: after(common),
    }
}

/// Where a follower stands in the NEWLEADER persistence sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewLeaderStage {
    NotYet,
    /// SNAP sync: waiting for the received snapshot to be durable.
    Snapshot,
    /// Waiting for the committed sync txns to be durable in the log.
    Log,
    /// Waiting for currentEpoch to be durable.
    Epoch,
    /// ACK sent; waiting for UPTODATE.
    Acked,
    /// UPTODATE received: broadcast.
    Done,
}

impl NewLeaderStage {
    /// Between NEWLEADER and its ACK: the learner's one thread is inside the persistence.
    pub fn persisting(self) -> bool {
        matches!(
            self,
            NewLeaderStage::Snapshot | NewLeaderStage::Log | NewLeaderStage::Epoch
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    Diff,
    Trunc,
    Snap,
}

/// A follower's state for its current leader.
#[derive(Clone, Debug)]
pub struct FollowerState {
    pub leader: u32,
    pub conn: ConnId,
    pub zab_epoch: Option<u32>,
    /// Whether the ACKEPOCH will be a fresh promise (else ZooKeeper's epoch -1).
    pub promise: bool,
    pub started_ns: u64,
    pub last_heard_ns: u64,
    pub mode: Option<SyncMode>,
    /// PROPOSALs received during sync, in order, and the last COMMITted among them.
    pub sync_txns: Vec<Txn>,
    pub sync_committed: Zxid,
    pub stage: NewLeaderStage,
    pub newleader_zxid: Zxid,
    /// Committed sync txns not yet logged (the ZOOKEEPER-3911 mode logs them late).
    pub unlogged: Vec<Txn>,
    /// currentEpoch = the new epoch is durable (NEWLEADER processing).
    pub epoch_persisted: bool,
    /// Packets received between NEWLEADER and UPTODATE, handled after UPTODATE.
    pub deferred: Vec<Msg>,
    /// Logged proposals awaiting their COMMIT, in zxid order.
    pub pending: VecDeque<Txn>,
    /// Logged proposals whose ACK waits for the fsync.
    pub unacked: VecDeque<Zxid>,
    pub last_committed: Zxid,
    /// A refused leader connection is retried when this timer fires.
    pub retry_timer: Option<crate::node::TimerId>,
    /// The leader connection broke (or a sync timeout fired) while the NEWLEADER
    /// persistence was in flight: finish it, then go LOOKING for this reason.
    pub lost: Option<&'static str>,
}

impl FollowerState {
    pub fn new(leader: u32, conn: ConnId, now_ns: u64) -> Self {
        FollowerState {
            leader,
            conn,
            zab_epoch: None,
            promise: false,
            started_ns: now_ns,
            last_heard_ns: now_ns,
            mode: None,
            sync_txns: Vec::new(),
            sync_committed: 0,
            stage: NewLeaderStage::NotYet,
            newleader_zxid: 0,
            unlogged: Vec::new(),
            epoch_persisted: false,
            deferred: Vec::new(),
            pending: VecDeque::new(),
            unacked: VecDeque::new(),
            last_committed: 0,
            retry_timer: None,
            lost: None,
        }
    }
}

impl ZabServer {
    /// The leader's committed window for DIFF: (txns, zxid before the first one).
    fn committed_window(&self, last_committed: Zxid) -> (Vec<Txn>, Zxid) {
        let entries = &self.storage.entries;
        let end = entries.partition_point(|e| e.txn.zxid <= last_committed);
        let start = end.saturating_sub(self.cfg.commit_log_count as usize);
        let base = if start == 0 {
            self.storage.gen_base
        } else {
            entries[start - 1].txn.zxid
        };
        let txns = entries[start..end].iter().map(|e| e.txn.clone()).collect();
        (txns, base)
    }

    /// Sends one learner its sync packets, starts forwarding to it, then queues NEWLEADER.
    pub(crate) fn start_learner_sync(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId) {
        let l = self.leader.as_ref().expect("leader state");
        let h = l.learners.get(&conn).expect("learner");
        if h.forwarding {
            return;
        }
        let peer_last = h.peer_last_zxid.expect("ACKEPOCH seen");
        let peer_epoch = h.peer_current_epoch;
        let e = l.zab_epoch.expect("epoch");
        let last_committed = l.last_committed;
        let (window, base) = self.committed_window(last_committed);
        let zk_trunc = self.bug(BugMode::TruncBelowSnapshot);
        let plan = choose_sync(
            peer_last,
            peer_epoch,
            &window,
            base,
            last_committed,
            zk_trunc,
        );
        // The learner's log keeps everything up to here; what it ACKed above is removed.
        let kept_upto = match &plan {
            SyncPlan::Diff { .. } => Zxid::MAX,
            SyncPlan::Trunc { zxid, .. } => *zxid,
            SyncPlan::Snap => last_committed,
        };
        let (txns, head) = match plan {
            SyncPlan::Diff { txns } => (
                txns,
                Msg::Diff {
                    zxid: last_committed,
                },
            ),
            SyncPlan::Trunc { zxid, txns } => (txns, Msg::Trunc { zxid }),
            SyncPlan::Snap => {
                assert_eq!(
                    self.tree.last_zxid(),
                    last_committed,
                    "leader tree != committed"
                );
                let image = Box::new(self.tree.image());
                (
                    Vec::new(),
                    Msg::Snap {
                        zxid: last_committed,
                        image,
                    },
                )
            }
        };
        ctx.send(conn, head);
        let l = self.leader.as_mut().expect("leader state");
        let sid = l.learners.get(&conn).expect("learner").sid;
        let sent = l.proposed_to.entry(sid).or_default();
        for t in txns {
            let zxid = t.zxid;
            sent.insert(zxid);
            ctx.send(conn, Msg::Proposal(t));
            ctx.send(conn, Msg::Commit { zxid });
        }
        // startForwarding: outstanding proposals, then everything new, behind the sync.
        // ACKs this learner gave on an earlier connection keep counting, as in ZooKeeper
        // (`Leader.processAck` adds the sid to the proposal's ack set and nothing removes it
        // when a LearnerHandler goes away) -- except, by default, the ACKs of proposals this
        // very sync removes from the learner's log (a TRUNC above its point, or a SNAP).
        // ZooKeeper keeps those too, and then a commit can rest on a copy that is gone:
        // the learner ACKs z, reconnects, is TRUNCed below z (outstanding, so above
        // maxCommittedLog), makes the truncation durable at NEWLEADER, and the leader
        // commits z on its own fsync plus that stale ACK before the re-sent z is logged
        // again: one durable copy of a committed txn (zab-commit-quorum-durable, zk-nemesis
        // seed 10440). Bug mode `stale-ack-after-trunc` restores ZooKeeper's behaviour.
        let keep_stale = self.bug(BugMode::StaleAckAfterTrunc);
        let l = self.leader.as_mut().expect("leader state");
        let sid = l.learners.get(&conn).expect("learner").sid;
        let sent = l.proposed_to.entry(sid).or_default();
        for (txn, acks) in l.outstanding.values_mut() {
            if txn.zxid > kept_upto && !keep_stale {
                acks.remove(&sid);
            }
            sent.insert(txn.zxid);
            ctx.send(conn, Msg::Proposal(txn.clone()));
        }
        let h = l.learners.get_mut(&conn).expect("learner");
        h.forwarding = true;
        ctx.send(
            conn,
            Msg::NewLeader {
                zxid: make_zxid(e, 0),
            },
        );
    }

    // ------------------------------------------------------------------ follower side

    /// Every message from the leader, by phase.
    pub(crate) fn on_leader_msg(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, msg: Msg) {
        let now = ctx.now();
        let f = self.follower.as_mut().expect("follower state");
        if f.conn != conn {
            return;
        }
        f.last_heard_ns = now;
        if (f.stage == NewLeaderStage::Acked || f.stage.persisting())
            && matches!(msg, Msg::Proposal(_) | Msg::Commit { .. })
        {
            f.deferred.push(msg);
            return;
        }
        match msg {
            Msg::LeaderInfo { zab_epoch } => self.follower_on_leader_info(ctx, zab_epoch),
            Msg::Diff { zxid } => self.follower_on_diff(zxid),
            Msg::Trunc { zxid } => self.follower_on_trunc(ctx, zxid),
            Msg::Snap { zxid, image } => {
                let f = self.follower.as_mut().expect("follower state");
                f.mode = Some(SyncMode::Snap);
                assert_eq!(image.last_zxid, zxid, "SNAP label");
                self.tree = DataTree::from_image(&image);
                self.last_processed = zxid;
            }
            Msg::Proposal(txn) => self.follower_on_proposal(ctx, txn),
            Msg::Commit { zxid } => self.follower_on_commit(ctx, zxid),
            Msg::NewLeader { zxid } => self.follower_on_newleader(ctx, zxid),
            Msg::UpToDate => self.follower_on_uptodate(ctx),
            Msg::Ping { round } => {
                let touched = std::mem::take(&mut self.touched);
                ctx.send(conn, Msg::PingAck { round, touched });
            }
            Msg::SyncDone { session, cxid } => self.sync_done(ctx, session, cxid),
            Msg::Revalidated {
                session,
                timeout_ms,
            } => self.on_revalidated(ctx, session, timeout_ms),
            _ => {}
        }
    }

    fn follower_on_diff(&mut self, zxid: Zxid) {
        let f = self.follower.as_mut().expect("follower state");
        f.mode = Some(SyncMode::Diff);
        if self.cfg.bug(BugMode::Zk2355) {
            // ZOOKEEPER-2355 (reference Z3): lastProcessedZxid jumps to the leader's zxid
            // before the diff txns arrive. If the sync breaks now, the retained database
            // advertises a zxid it never applied, and the next DIFF skips those txns.
            self.last_processed = self.last_processed.max(zxid);
        }
    }

    fn follower_on_trunc(&mut self, ctx: &mut Context<'_, Msg>, zxid: Zxid) {
        let f = self.follower.as_mut().expect("follower state");
        f.mode = Some(SyncMode::Trunc);
        let below_snapshot = self.storage.snapshot_zxid > zxid;
        if below_snapshot && self.bug(BugMode::TruncBelowSnapshot) {
            // ZooKeeper's learner (`Learner.syncWithLeader`, case TRUNC):
            // `ZKDatabase.truncateLog` clears the tree, `FileTxnSnapLog.truncateLog`
            // truncates only the txn log, and `loadDataBase` restores from the newest
            // snapshot -- which still holds the txns above `zxid` -- plus the log; then
            // `setlastProcessedZxid(zxid)`. The tree keeps txns the leader's history lacks
            // and everything applied on top diverges. (`FileTxnLog.truncate` throws, and
            // the learner exits, only when no log file exists at all: not modelled.)
            self.storage.truncate_log(ctx.disk(), zxid);
            self.log_truncated(zxid);
            self.log_truncation_unsynced = true;
            self.request_log_fsync(ctx);
            return match super::txnlog::recover(ctx.disk()) {
                Ok(r) => {
                    self.tree = r.tree;
                    self.last_processed = zxid;
                }
                Err(reason) => self.halt(ctx, reason),
            };
        }
        if let Err(reason) = self.storage.truncate_after(ctx.disk(), zxid) {
            // ZooKeeper exits when it cannot truncate. By default the leader no longer
            // sends a TRUNC below a learner's sync snapshot (`choose_sync`).
            return self.halt(ctx, reason);
        }
        self.log_truncated(zxid);
        // The truncation is a page-cache change like any write: a power loss before the
        // next log fsync brings the dropped tail back. ZooKeeper's `FileTxnLog.truncate`
        // does not fsync either; the shortened file becomes durable through the
        // filesystem's ordered journal, which commits the size change with the next fsync
        // the learner makes before its NEWLEADER ACK (the committed txns' flush or the
        // atomic currentEpoch write). Our disk is per file, so the same guarantee is an
        // explicit log fsync that NEWLEADER waits for before currentEpoch. Without it a
        // learner could persist the new currentEpoch over a log that, after a crash, still
        // holds the truncated uncommitted txn, then win FLE with it (currentEpoch ranks
        // first) and re-propose it as committed: the 100,000-seed divergence of
        // zk-nemesis seed 46856 (scenarios/regressions/zk-nemesis-seed46856.json).
        self.log_truncation_unsynced = true;
        self.request_log_fsync(ctx);
        match super::txnlog::recover(ctx.disk()) {
            Ok(r) => {
                self.tree = r.tree;
                self.last_processed = self.tree.last_zxid();
            }
            Err(reason) => self.halt(ctx, reason),
        }
    }

    /// A PROPOSAL: buffered during sync, logged and acked (after fsync) in broadcast.
    pub(crate) fn follower_on_proposal(&mut self, ctx: &mut Context<'_, Msg>, txn: Txn) {
        let f = self.follower.as_mut().expect("follower state");
        if self.phase != ZabPhase::Broadcast {
            if let Some(prev) = f.sync_txns.last() {
                assert!(txn.zxid > prev.zxid, "sync proposals out of order");
            }
            f.sync_txns.push(txn);
            return;
        }
        if txn.zxid <= self.storage.last_zxid() {
            // Already logged (a duplicate of a sync packet): ACK it again once durable.
            f.unacked.push_back(txn.zxid);
            f.pending.push_back(txn);
            return self.follower_log_durable(ctx);
        }
        f.unacked.push_back(txn.zxid);
        f.pending.push_back(txn.clone());
        self.storage.append(ctx.disk(), &txn);
        self.request_log_fsync(ctx);
    }

    /// A COMMIT: must match the head of the pending proposals (A.7 item 5).
    pub(crate) fn follower_on_commit(&mut self, ctx: &mut Context<'_, Msg>, zxid: Zxid) {
        let f = self.follower.as_mut().expect("follower state");
        if self.phase != ZabPhase::Broadcast {
            let next = f
                .sync_txns
                .iter()
                .find(|t| t.zxid > f.sync_committed)
                .map(|t| t.zxid);
            assert_eq!(next, Some(zxid), "sync COMMIT without its PROPOSAL");
            f.sync_committed = zxid;
            return;
        }
        let head = f.pending.pop_front();
        let Some(txn) = head else {
            panic!("COMMIT {zxid:#x} with no pending proposal");
        };
        assert_eq!(
            txn.zxid, zxid,
            "Committing zxid {zxid:#x} but next pending txn is other"
        );
        f.last_committed = zxid;
        self.apply_committed(ctx, &txn);
    }

    fn follower_on_newleader(&mut self, ctx: &mut Context<'_, Msg>, zxid: Zxid) {
        let f = self.follower.as_mut().expect("follower state");
        assert_eq!(
            Some(zxid_epoch(zxid)),
            f.zab_epoch,
            "NEWLEADER of another epoch"
        );
        assert_eq!(f.stage, NewLeaderStage::NotYet, "second NEWLEADER");
        f.newleader_zxid = zxid;
        let k = f.sync_txns.partition_point(|t| t.zxid <= f.sync_committed);
        let rest: Vec<Txn> = f.sync_txns.split_off(k);
        let committed = std::mem::take(&mut f.sync_txns);
        // Outstanding proposals are handled after UPTODATE, through the normal pipeline.
        f.deferred.extend(rest.into_iter().map(Msg::Proposal));
        // Apply the committed sync txns in memory now (a TRUNC/SNAP sync applies them
        // straight away in ZooKeeper too); they are logged below, before the ACK.
        for txn in &committed {
            self.apply_committed(ctx, txn);
        }
        if self.bug(BugMode::Zk2355) {
            self.last_processed = self.last_processed.max(self.tree.last_zxid());
        }
        let f = self.follower.as_mut().expect("follower state");
        f.unlogged = committed;
        if f.mode == Some(SyncMode::Snap) {
            f.stage = NewLeaderStage::Snapshot;
            // The received snapshot must be durable before the ACK (ZOOKEEPER-3642).
            self.persist_snapshot(ctx, true);
            return;
        }
        self.newleader_after_snapshot(ctx);
    }

    pub(crate) fn follower_snapshot_durable(&mut self, ctx: &mut Context<'_, Msg>) {
        if self.follower.as_ref().map(|f| f.stage) == Some(NewLeaderStage::Snapshot) {
            self.newleader_after_snapshot(ctx);
        }
    }

    /// NEWLEADER, after any SNAP snapshot: log the sync txns and persist currentEpoch, in
    /// the order the bug mode dictates, then ACK.
    ///
    /// Correct order, ZooKeeper 3.9's `Learner.syncWithLeader` (case NEWLEADER, the fix of
    /// ZOOKEEPER-4646): append every committed sync txn to the log
    /// (`FollowerZooKeeperServer.appendRequest`), flush and fsync it
    /// (`ZKDatabase.commit`), only then `setCurrentEpoch` (an atomic file write), then ACK.
    /// Everything is durable before the ACK. A late joiner's DIFF may carry txns of the new
    /// epoch itself, so between the log's fsync and the durable currentEpoch the log does
    /// hold a txn of an epoch above currentEpoch: a crash there is ZooKeeper's own start-up
    /// refusal (ZOOKEEPER-2354, `QuorumPeer.loadDataBase`), unless currentEpoch.tmp exists.
    fn newleader_after_snapshot(&mut self, ctx: &mut Context<'_, Msg>) {
        let f = self.follower.as_mut().expect("follower state");
        let e = f.zab_epoch.expect("epoch");
        if self.cfg.bug(BugMode::Zk3911) {
            // ZOOKEEPER-3911 (Z7): the synced txns are logged only after UPTODATE, yet
            // NEWLEADER is acked now: a quorum "has" a history it holds only in memory.
            f.stage = NewLeaderStage::Epoch;
            return self.persist_current_epoch(ctx, e);
        }
        if self.cfg.bug(BugMode::Zk4643) {
            // ZOOKEEPER-4643 (Z9): currentEpoch is persisted before the synced txns are
            // durable; a crash in between leaves a new epoch over an old log.
            f.stage = NewLeaderStage::Epoch;
            return self.persist_current_epoch(ctx, e);
        }
        if self.cfg.bug(BugMode::Zk4646) {
            // ZOOKEEPER-4646 (Z8): the txns are handed to the asynchronous logger, and the
            // ACK (sent once currentEpoch is written) overtakes the logger's write + fsync.
            f.stage = NewLeaderStage::Epoch;
            return self.persist_current_epoch(ctx, e);
        }
        self.log_unlogged(ctx);
        let f = self.follower.as_mut().expect("follower state");
        f.stage = NewLeaderStage::Log;
        self.follower_log_durable(ctx);
    }

    /// Appends the buffered committed sync txns to the log and asks for its fsync.
    fn log_unlogged(&mut self, ctx: &mut Context<'_, Msg>) {
        let f = self.follower.as_mut().expect("follower state");
        let txns = std::mem::take(&mut f.unlogged);
        for txn in &txns {
            if txn.zxid > self.storage.last_zxid() {
                self.storage.append(ctx.disk(), txn);
            }
        }
        self.request_log_fsync(ctx);
    }

    pub(crate) fn follower_current_epoch_durable(&mut self, ctx: &mut Context<'_, Msg>, e: u32) {
        let f = self.follower.as_mut().expect("follower state");
        if f.stage != NewLeaderStage::Epoch || f.zab_epoch != Some(e) {
            return;
        }
        f.epoch_persisted = true;
        if self.cfg.bug(BugMode::Zk4646) {
            // 4646: the ACK goes first; the logger's append and fsync land after it.
            if f.lost.is_some() {
                // The logger got the txns before the (failing) ACK write.
                self.log_unlogged(ctx);
                return self.newleader_persisted(ctx);
            }
            self.newleader_persisted(ctx);
            return self.log_unlogged(ctx);
        }
        if !f.unlogged.is_empty() && !self.cfg.bug(BugMode::Zk3911) {
            // ZOOKEEPER-4643 mode: the txns go to the log only now; ACK once durable.
            self.log_unlogged(ctx);
            let f = self.follower.as_mut().expect("follower state");
            f.stage = NewLeaderStage::Log;
            return self.follower_log_durable(ctx);
        }
        self.newleader_persisted(ctx);
    }

    /// The NEWLEADER persistence ran to its end: ACK it, or, if the leader connection
    /// broke (or a sync timeout fired) meanwhile, go LOOKING only now.
    ///
    /// Why not at once: ZooKeeper's `Learner.syncWithLeader` does the whole NEWLEADER
    /// case (take the snapshot, log and flush the txns, `setCurrentEpoch`, then
    /// `writePacket(ACK)`) synchronously on the one QuorumPeer thread. A broken socket or
    /// an expired read timeout surfaces only at the next socket call, the ACK's write
    /// (or the read after it), so the persistence always completes -- unless the process
    /// dies -- before the learner shuts down and goes back to LOOKING; no other sync can
    /// start meanwhile. Giving it up half-way instead leaves a durable snapshot ahead of
    /// currentEpoch: the next leader's TRUNC below that snapshot is then impossible and
    /// the learner halts ("cannot truncate", zk-nemesis-heavy seed 20403,
    /// scenarios/regressions/zk-nemesis-heavy-seed20403.json).
    fn newleader_persisted(&mut self, ctx: &mut Context<'_, Msg>) {
        let f = self.follower.as_mut().expect("follower state");
        if let Some(why) = f.lost {
            return self.go_looking(ctx, why);
        }
        self.send_newleader_ack(ctx);
    }

    fn send_newleader_ack(&mut self, ctx: &mut Context<'_, Msg>) {
        let f = self.follower.as_mut().expect("follower state");
        f.stage = NewLeaderStage::Acked;
        ctx.send(
            f.conn,
            Msg::Ack {
                zxid: f.newleader_zxid,
            },
        );
    }

    /// Log durability advanced: continue NEWLEADER, or ACK durable proposals in order.
    pub(crate) fn follower_log_durable(&mut self, ctx: &mut Context<'_, Msg>) {
        let durable = self.log_durable_zxid;
        let f = self.follower.as_mut().expect("follower state");
        if f.stage == NewLeaderStage::Log {
            if durable < self.storage.last_zxid() || self.log_truncation_unsynced {
                return;
            }
            if f.epoch_persisted {
                return self.newleader_persisted(ctx);
            }
            let e = f.zab_epoch.expect("epoch");
            f.stage = NewLeaderStage::Epoch;
            return self.persist_current_epoch(ctx, e);
        }
        if self.phase != ZabPhase::Broadcast {
            return;
        }
        while f.unacked.front().is_some_and(|z| *z <= durable) {
            let zxid = f.unacked.pop_front().expect("front");
            ctx.send(f.conn, Msg::Ack { zxid });
        }
    }

    fn follower_on_uptodate(&mut self, ctx: &mut Context<'_, Msg>) {
        let f = self.follower.as_mut().expect("follower state");
        assert_eq!(
            f.stage,
            NewLeaderStage::Acked,
            "UPTODATE before the NEWLEADER ACK"
        );
        self.phase = ZabPhase::Broadcast;
        f.stage = NewLeaderStage::Done;
        f.last_committed = self.tree.last_zxid();
        if !f.unlogged.is_empty() {
            // ZOOKEEPER-3911 mode: the synced txns reach the log only now.
            self.log_unlogged(ctx);
        }
        let f = self.follower.as_mut().expect("follower state");
        let deferred = std::mem::take(&mut f.deferred);
        for msg in deferred {
            match msg {
                Msg::Proposal(txn) => self.follower_on_proposal(ctx, txn),
                Msg::Commit { zxid } => self.follower_on_commit(ctx, zxid),
                _ => unreachable!("only proposals and commits are deferred"),
            }
        }
    }

    pub(crate) fn follower_tick(&mut self, ctx: &mut Context<'_, Msg>) {
        let now = ctx.now();
        let f = self.follower.as_ref().expect("follower state");
        if f.stage.persisting() {
            // The learner's thread is inside the NEWLEADER persistence, not reading the
            // socket: a read timeout can only fire after it (see `newleader_persisted`);
            // the next tick after the ACK applies it.
            return;
        }
        let silent_ns = now.saturating_sub(f.last_heard_ns);
        if self.phase == ZabPhase::Broadcast {
            if silent_ns > self.cfg.sync_limit_ns() {
                self.go_looking(ctx, "leader silent for syncLimit");
            }
        } else if now.saturating_sub(f.started_ns) > self.cfg.init_limit_ns() {
            self.go_looking(ctx, "sync not done within initLimit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Event, NodeId};
    use crate::zab::config::ZabConfig;
    use crate::zab::msg::{PeerState, TxnOp};
    use crate::zab::testkit::Harness;

    fn t(zxid: Zxid) -> Txn {
        Txn {
            zxid,
            session: 0,
            cxid: 0,
            op: TxnOp::Check { path: "/".into() },
        }
    }

    fn z(e: u32, c: u32) -> Zxid {
        make_zxid(e, c)
    }

    fn window() -> Vec<Txn> {
        vec![t(z(1, 1)), t(z(1, 2)), t(z(1, 3)), t(z(3, 1)), t(z(3, 2))]
    }

    #[test]
    fn equal_zxid_gets_an_empty_diff() {
        let p = choose_sync(z(3, 2), None, &window(), 0, z(3, 2), false);
        assert_eq!(p, SyncPlan::Diff { txns: vec![] });
    }

    #[test]
    fn a_follower_in_the_window_gets_a_diff() {
        let p = choose_sync(z(1, 3), None, &window(), 0, z(3, 2), false);
        assert_eq!(
            p,
            SyncPlan::Diff {
                txns: vec![t(z(3, 1)), t(z(3, 2))]
            }
        );
    }

    #[test]
    fn a_follower_ahead_of_the_leader_is_truncated() {
        let p = choose_sync(z(3, 5), None, &window(), 0, z(3, 2), false);
        assert_eq!(
            p,
            SyncPlan::Trunc {
                zxid: z(3, 2),
                txns: vec![]
            }
        );
    }

    /// zk-nemesis-hunt seeds 93997 and 109894: a learner whose last zxid came with the
    /// SNAP of a leader whose epoch never established (its durable snapshot holds it, and
    /// its currentEpoch is older, or newer, than that zxid's epoch) is ahead of the next
    /// leader's maxCommittedLog. ZooKeeper sends TRUNC(maxCommittedLog), below the
    /// learner's snapshot; by default it gets a SNAP unless last zxid, currentEpoch and
    /// the truncation point share one epoch.
    #[test]
    fn a_follower_ahead_gets_a_snapshot_unless_all_in_one_epoch() {
        let trunc = SyncPlan::Trunc {
            zxid: z(3, 2),
            txns: vec![],
        };
        // Seed 109894's shape: last zxid of epoch 4, leader's last committed of epoch 3.
        assert_eq!(
            choose_sync(z(4, 1), Some(2), &window(), 0, z(3, 2), false),
            SyncPlan::Snap
        );
        assert_eq!(
            choose_sync(z(4, 1), Some(4), &window(), 0, z(3, 2), false),
            SyncPlan::Snap
        );
        // Seed 93997's shape: one epoch (3) for both zxids, but currentEpoch 2.
        assert_eq!(
            choose_sync(z(3, 5), Some(2), &window(), 0, z(3, 2), false),
            SyncPlan::Snap
        );
        // A learner that completed a later sync (currentEpoch 5) over that tail.
        assert_eq!(
            choose_sync(z(3, 5), Some(5), &window(), 0, z(3, 2), false),
            SyncPlan::Snap
        );
        // The tail it logged itself while following epoch 3: TRUNC, as ZooKeeper.
        assert_eq!(
            choose_sync(z(3, 5), Some(3), &window(), 0, z(3, 2), false),
            trunc
        );
        // ACKEPOCH(-1) (it had already promised this leader's epoch) carries no epoch.
        assert_eq!(
            choose_sync(z(3, 5), None, &window(), 0, z(3, 2), false),
            trunc
        );
        // Bug mode trunc-below-snapshot: ZooKeeper's TRUNC whatever the epochs.
        assert_eq!(
            choose_sync(z(4, 1), Some(2), &window(), 0, z(3, 2), true),
            trunc
        );
        assert_eq!(
            choose_sync(z(3, 5), Some(2), &window(), 0, z(3, 2), true),
            trunc
        );
    }

    #[test]
    fn a_follower_with_a_skipped_epoch_gets_a_snapshot_not_a_trunc_across_epochs() {
        // The follower logged (2,1), (2,2) under a leader of epoch 2 that never committed;
        // the leader's next txn after them is (3,1): no TRUNC across an epoch boundary.
        assert_eq!(
            choose_sync(z(2, 2), None, &window(), 0, z(3, 2), false),
            SyncPlan::Snap
        );
        // Likewise an uncommitted tail of epoch 1 that the leader replaced in epoch 3.
        assert_eq!(
            choose_sync(z(1, 5), None, &window(), 0, z(3, 2), false),
            SyncPlan::Snap
        );
    }

    #[test]
    fn a_follower_off_the_leader_history_within_one_epoch_is_truncated_then_diffed() {
        // The leader skipped (3,3) (it never reached it); the learner's last is (3,3) and
        // the leader's next is (3,4), of the same epoch: TRUNC to (3,2), then DIFF.
        let w = vec![t(z(3, 1)), t(z(3, 2)), t(z(3, 4)), t(z(3, 5))];
        assert_eq!(
            choose_sync(z(3, 3), None, &w, 0, z(3, 5), false),
            SyncPlan::Trunc {
                zxid: z(3, 2),
                txns: vec![t(z(3, 4)), t(z(3, 5))]
            }
        );
    }

    /// A follower of `leader` in epoch 2's synchronisation, as discovery leaves it: the
    /// leader connection `conn` is up, acceptedEpoch 2 is durable, currentEpoch is 1.
    fn syncing_follower(conn: ConnId) -> Harness<ZabServer> {
        let me = NodeId(1);
        let voters = [NodeId(0), me, NodeId(2)];
        let mut h = Harness::new(ZabServer::new(me, &voters, ZabConfig::default()));
        h.deliver(me, Event::Start { restarted: false });
        h.complete_fsyncs(me);
        use crate::node::DiskIo;
        use crate::zab::txnlog::{encode_epoch, ACCEPTED_EPOCH_FILE};
        h.disk.write_all(ACCEPTED_EPOCH_FILE, &encode_epoch(2));
        let n = &mut h.node;
        n.accepted_epoch = 2;
        n.durable_accepted_epoch = 2;
        n.current_epoch = 1;
        n.durable_current_epoch = 1;
        n.state = PeerState::Following;
        n.phase = ZabPhase::Synchronization;
        n.conns.insert(conn, super::super::ConnRole::ToLeader);
        let mut f = FollowerState::new(0, conn, 0);
        f.zab_epoch = Some(2);
        n.follower = Some(Box::new(f));
        h
    }

    fn from_leader(h: &mut Harness<ZabServer>, conn: ConnId, msg: Msg) {
        let peer = NodeId(0);
        h.deliver(NodeId(1), Event::Message { conn, peer, msg });
    }

    /// ZooKeeper's learner persists NEWLEADER on one thread and sees a broken socket only
    /// when it writes the ACK: the leader connection lost mid-persistence (here during the
    /// SNAP's snapshot fsync, the seed-20403 moment) leaves it FOLLOWING until the
    /// snapshot and currentEpoch are durable, and only then LOOKING, with no ACK sent.
    #[test]
    fn a_lost_leader_mid_snap_persistence_finishes_it_before_looking() {
        let conn = ConnId(500);
        let mut h = syncing_follower(conn);
        let mut tree = DataTree::new();
        for c in 1..=3 {
            tree.apply(&t(z(1, c)));
        }
        let image = Box::new(tree.image());
        from_leader(
            &mut h,
            conn,
            Msg::Snap {
                zxid: z(1, 3),
                image,
            },
        );
        from_leader(&mut h, conn, Msg::NewLeader { zxid: z(2, 0) });
        assert_eq!(
            h.node.follower.as_ref().map(|f| f.stage),
            Some(NewLeaderStage::Snapshot)
        );
        lose_leader_then_finish_persisting(&mut h, conn);
        assert!(h.node.follower.is_none());
        assert_eq!(
            h.node.durable_current_epoch, 2,
            "currentEpoch not persisted"
        );
        assert_eq!(h.node.storage.snapshot_zxid, z(1, 3));
        let acks: Vec<Msg> = h.take_sent(conn);
        assert!(
            !acks.iter().any(|m| matches!(m, Msg::Ack { .. })),
            "{acks:?}"
        );
    }

    /// The leader connection breaks mid-persistence: the learner stays FOLLOWING until its
    /// pending disk writes complete, then goes LOOKING without halting.
    fn lose_leader_then_finish_persisting(h: &mut Harness<ZabServer>, conn: ConnId) {
        let peer = NodeId(0);
        h.deliver(NodeId(1), Event::ConnDown { conn, peer });
        assert_eq!(
            h.node.state,
            PeerState::Following,
            "gave the persistence up"
        );
        h.complete_fsyncs(NodeId(1));
        assert_eq!(h.node.halted, None);
        assert_eq!(h.node.state, PeerState::Looking);
    }

    /// The same in a DIFF sync cut during the log flush, and with the read timeout
    /// (initLimit) passing meanwhile: the txns are logged and currentEpoch written first.
    #[test]
    fn a_lost_leader_mid_diff_persistence_logs_and_writes_the_epoch_before_looking() {
        let conn = ConnId(501);
        let mut h = syncing_follower(conn);
        from_leader(&mut h, conn, Msg::Diff { zxid: z(1, 2) });
        for c in 1..=2 {
            from_leader(&mut h, conn, Msg::Proposal(t(z(1, c))));
            from_leader(&mut h, conn, Msg::Commit { zxid: z(1, c) });
        }
        from_leader(&mut h, conn, Msg::NewLeader { zxid: z(2, 0) });
        assert_eq!(
            h.node.follower.as_ref().map(|f| f.stage),
            Some(NewLeaderStage::Log)
        );
        h.now_ns += h.node.cfg.init_limit_ns() * 2;
        let timer = crate::node::TimerId(9_999);
        let tag = super::super::TAG_TICK;
        h.deliver(NodeId(1), Event::Timer { timer, tag });
        assert_eq!(
            h.node.state,
            PeerState::Following,
            "timed out mid-persistence"
        );
        lose_leader_then_finish_persisting(&mut h, conn);
        assert_eq!(h.node.durable_current_epoch, 2);
        assert_eq!(h.node.log_durable_zxid, z(1, 2));
    }

    /// ZooKeeper 3.9's NEWLEADER order: every committed sync txn, of old epochs and of the
    /// new one alike (a late joiner's DIFF carries both), is appended and fsynced before
    /// currentEpoch is written, and the ACK goes once currentEpoch is durable.
    #[test]
    fn newleader_logs_and_flushes_every_synced_txn_before_writing_current_epoch() {
        let conn = ConnId(502);
        let mut h = syncing_follower(conn);
        from_leader(&mut h, conn, Msg::Diff { zxid: z(2, 1) });
        for zxid in [z(1, 1), z(2, 1)] {
            from_leader(&mut h, conn, Msg::Proposal(t(zxid)));
            from_leader(&mut h, conn, Msg::Commit { zxid });
        }
        from_leader(&mut h, conn, Msg::NewLeader { zxid: z(2, 0) });
        assert_eq!(h.node.storage.last_zxid(), z(2, 1), "not all appended");
        assert_eq!(
            h.node.current_epoch, 1,
            "currentEpoch before the log's fsync"
        );
        assert!(h.take_sent(conn).is_empty());
        h.complete_fsyncs(NodeId(1));
        assert_eq!(h.node.log_durable_zxid, z(2, 1));
        assert_eq!(h.node.durable_current_epoch, 2);
        let sent = h.take_sent(conn);
        assert!(
            matches!(sent[..], [Msg::Ack { zxid }] if zxid == z(2, 0)),
            "{sent:?}"
        );
    }

    #[test]
    fn a_follower_below_the_window_gets_a_snapshot() {
        let w = window()[2..].to_vec();
        assert_eq!(
            choose_sync(z(1, 1), None, &w, z(1, 2), z(3, 2), false),
            SyncPlan::Snap
        );
        // Right at the window base a DIFF still works.
        assert!(matches!(
            choose_sync(z(1, 2), None, &w, z(1, 2), z(3, 2), false),
            SyncPlan::Diff { .. }
        ));
    }
}
