//! A simulated ZooKeeper server running Zab 1.0 (reference part A): fast leader election,
//! discovery, synchronisation (DIFF / TRUNC / SNAP), broadcast, sessions and the data tree,
//! over the node contract only.
//!
//! Structure: this file holds the server state, the [`Node`] impl that dispatches events,
//! the transitions between peer states (LOOKING / FOLLOWING / LEADING), the periodic tick and
//! the fsync bookkeeping. The phases live in `election`, `discovery`, `sync`, `broadcast`;
//! client connections in `serve`. On the leader every learner connection has its own phase
//! (A.1): a late follower can still be syncing while the leader broadcasts.
//!
//! Protocol invariants are `assert!`s that stay on in release: a panic is a failed seed.
//!
//! May depend on: `node` only (and its own submodules).

pub mod broadcast;
pub mod client;
pub mod config;
pub mod discovery;
pub mod election;
pub mod epochs;
pub mod msg;
pub mod record;
pub mod sendq;
pub mod serve;
pub mod session;
pub mod snapshot;
pub mod sync;
pub mod tree;
pub mod txnlog;

#[cfg(test)]
mod testkit;

use std::collections::BTreeMap;

use crate::node::{ConnId, Context, Event, FsyncId, Node, NodeId, TimerId};

use config::{BugMode, ZabConfig};
use election::Election;
use msg::{Msg, Notification, PeerState, Vote, Zxid};
use sendq::SendQueues;
use tree::{DataTree, Watches};
use txnlog::Storage;

pub use broadcast::LeaderState;
pub use serve::ClientConn;
pub use sync::FollowerState;

/// Names of the invariants and checkers the ZooKeeper system reports (see cluster::zk).
pub fn invariant_names() -> [&'static str; 20] {
    [
        "zab-one-leader-per-epoch",
        "zab-epoch-monotonic",
        "zab-unique-zxid",
        "zab-committed-agreement",
        "zab-committed-truncated",
        "zab-leader-completeness",
        "zab-process-consistency",
        "zab-digest-agreement",
        "zab-ephemeral-session",
        "zab-fle-vote-order",
        "zab-commit-quorum-durable",
        "zab-integrity",
        "zab-primary-order",
        "zab-ack-consistency",
        "zab-memory-disk",
        "zk-acked-write-durable",
        "zk-session-order",
        "zk-session-moved-unseen",
        "zk-sync-read",
        "zk-history",
    ]
}

/// The Zab phase, orthogonal to the peer state (A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZabPhase {
    Election,
    Discovery,
    Synchronization,
    Broadcast,
}

/// What a connection carries, learnt from who opened it and its first message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnRole {
    /// Incoming, first message not seen yet.
    Unknown,
    Election(u32),
    /// On the leader: a learner's quorum connection.
    Learner(u32),
    /// On a follower: its connection to the leader.
    ToLeader,
    Client,
}

/// What an fsync completion unblocks.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FsyncWait {
    /// The log is durable up to `upto` (unless it was truncated since: `trunc_gen`).
    Log {
        upto: Zxid,
        trunc_gen: u64,
    },
    /// The tmp file of an epoch write is durable; `seq` numbers the writes of that file,
    /// and only the latest is renamed over the real name.
    AcceptedEpoch {
        epoch: u32,
        role_gen: u64,
        seq: u64,
    },
    CurrentEpoch {
        epoch: u32,
        role_gen: u64,
        seq: u64,
    },
    Snapshot {
        name: String,
        role_gen: u64,
    },
}

/// The fsyncs in flight and what each unblocks: a handful at most (the log's, an epoch
/// file's, a snapshot's), so a vector searched by id, which keeps its buffer, rather than
/// a map that allocates a node whenever it goes from empty to one entry (every log fsync).
#[derive(Clone, Debug, Default)]
struct FsyncWaits(Vec<(FsyncId, FsyncWait)>);

impl FsyncWaits {
    fn insert(&mut self, id: FsyncId, wait: FsyncWait) {
        debug_assert!(self.0.iter().all(|(f, _)| *f != id), "fsync ids are unique");
        self.0.push((id, wait));
    }

    fn remove(&mut self, id: &FsyncId) -> Option<FsyncWait> {
        let i = self.0.iter().position(|(f, _)| f == id)?;
        Some(self.0.remove(i).1)
    }
}

const TAG_TICK: u64 = 1;
const TAG_NOTIFY: u64 = 2;
const TAG_FINALIZE: u64 = 3;
const TAG_LEADER_RETRY: u64 = 4;
const TAG_SENDQ: u64 = 5;
/// `Learner.connectToLeader` retries a refused connection after this long
/// (`leaderConnectDelayDuringRetryMs`), for as long as initLimit allows.
const LEADER_RETRY_NS: u64 = 100_000_000;

/// Monotone counters for observability (exposed in the snapshot view).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub elections: u64,
    pub txns_applied: u64,
    pub snapshots: u64,
    pub truncations: u64,
}

/// One ZooKeeper server (a voting participant).
pub struct ZabServer {
    pub(crate) cfg: ZabConfig,
    pub(crate) me: u32,
    pub(crate) voters: Vec<u32>,
    // ---- durable state and its in-memory mirrors
    pub(crate) storage: Storage,
    /// Everything in the log up to here is fsynced.
    pub(crate) log_durable_zxid: Zxid,
    log_fsync_inflight: bool,
    /// Bumped on every truncation / new log generation: older log fsyncs prove nothing.
    trunc_gen: u64,
    /// A TRUNC shortened the log file and no log fsync has completed since: until one does,
    /// a crash may bring the truncated tail back.
    pub(crate) log_truncation_unsynced: bool,
    pub(crate) accepted_epoch: u32,
    pub(crate) current_epoch: u32,
    pub(crate) durable_accepted_epoch: u32,
    pub(crate) durable_current_epoch: u32,
    /// Writes issued so far of acceptedEpoch and currentEpoch (see `epochs`).
    epoch_writes: [u64; 2],
    pub(crate) tree: DataTree,
    /// ZooKeeper's lastProcessedZxid. Equal to `tree.last_zxid()` except under the
    /// ZOOKEEPER-2355 bug mode.
    pub(crate) last_processed: Zxid,
    commits_since_snapshot: u64,
    /// The next epoch this server proposes as leader is above this (volatile): raised when
    /// a learner turned up having promised a newer epoch than the one this server led.
    pub(crate) epoch_floor: u32,
    // ---- role
    pub(crate) state: PeerState,
    pub(crate) phase: ZabPhase,
    /// Bumped on every peer-state change: continuations of an older role are dropped.
    pub(crate) role_gen: u64,
    pub(crate) election: Election,
    election_conns: BTreeMap<u32, ConnId>,
    /// Notifications go out through QuorumCnxManager's one-slot queues.
    sendq: SendQueues,
    conns: BTreeMap<ConnId, ConnRole>,
    notify_interval_ns: u64,
    notify_timer: Option<TimerId>,
    finalize_timer: Option<TimerId>,
    pub(crate) leader: Option<Box<LeaderState>>,
    pub(crate) follower: Option<Box<FollowerState>>,
    fsync_waits: FsyncWaits,
    // ---- clients
    pub(crate) clients: BTreeMap<ConnId, ClientConn>,
    pub(crate) session_conns: BTreeMap<u64, ConnId>,
    pub(crate) watches: Watches,
    /// Sessions touched by clients since the last ping answer (followers report them),
    /// sorted and without repeats: the PING answer's list itself, moved into it.
    pub(crate) touched: Vec<u64>,
    session_counter: u64,
    // ---- observability
    pub(crate) halted: Option<String>,
    pub(crate) stats: ServerStats,
    /// Epochs in which this server became an established leader (this incarnation).
    pub(crate) established_epochs: Vec<u32>,
}

impl ZabServer {
    /// A server `me` of an ensemble whose voters are `voters` (node ids = server ids).
    pub fn new(me: NodeId, voters: &[NodeId], cfg: ZabConfig) -> Self {
        let voters: Vec<u32> = voters.iter().map(|v| v.0).collect();
        assert!(voters.contains(&me.0), "a server must be one of the voters");
        let bug_1419 = cfg.bug(BugMode::Zk1419);
        let notify_interval_ns = cfg.finalize_wait_ns().max(1);
        ZabServer {
            election: Election::new(me.0, voters.clone(), bug_1419),
            cfg,
            me: me.0,
            voters,
            storage: Storage::default(),
            log_durable_zxid: 0,
            log_fsync_inflight: false,
            trunc_gen: 0,
            log_truncation_unsynced: false,
            accepted_epoch: 0,
            current_epoch: 0,
            durable_accepted_epoch: 0,
            durable_current_epoch: 0,
            epoch_writes: [0; 2],
            tree: DataTree::new(),
            last_processed: 0,
            commits_since_snapshot: 0,
            epoch_floor: 0,
            state: PeerState::Looking,
            phase: ZabPhase::Election,
            role_gen: 0,
            election_conns: BTreeMap::new(),
            sendq: SendQueues::default(),
            conns: BTreeMap::new(),
            notify_interval_ns,
            notify_timer: None,
            finalize_timer: None,
            leader: None,
            follower: None,
            fsync_waits: FsyncWaits::default(),
            clients: BTreeMap::new(),
            session_conns: BTreeMap::new(),
            watches: Watches::default(),
            touched: Vec::new(),
            session_counter: 0,
            halted: None,
            stats: ServerStats::default(),
            established_epochs: Vec::new(),
        }
    }

    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub(crate) fn bug(&self, mode: BugMode) -> bool {
        self.cfg.bug(mode)
    }

    /// The zxid this server advertises in elections and FOLLOWERINFO/ACKEPOCH.
    pub(crate) fn advertised_zxid(&self) -> Zxid {
        if self.bug(BugMode::Zk2355) || self.bug(BugMode::Zk2845) {
            // ZooKeeper of that era advertised the in-memory lastProcessedZxid
            // (`QuorumPeer.getLastLoggedZxid` returned the data tree's). With the retained
            // database, a DIFF that advanced it early is believed (Z3); and a tree that
            // lags its log (a txn logged, never committed) advertises the older point, so
            // the next leader DIFFs from there, the learner's log keeps the txn nobody
            // committed, and a restart replays it (Z4, apache/zookeeper PR #310).
            return self.last_processed;
        }
        self.storage.last_zxid().max(self.last_processed)
    }

    pub(crate) fn own_vote(&self) -> Vote {
        Vote {
            leader: self.me,
            zxid: self.advertised_zxid(),
            peer_epoch: self.current_epoch,
        }
    }

    // ------------------------------------------------------------------ start / halt

    fn on_start(&mut self, ctx: &mut Context<'_, Msg>) {
        match txnlog::recover(ctx.disk()) {
            Ok(r) => {
                self.storage = r.storage;
                self.tree = r.tree;
                self.accepted_epoch = r.accepted_epoch;
                self.current_epoch = r.current_epoch;
                self.durable_accepted_epoch = r.accepted_epoch;
                self.durable_current_epoch = r.current_epoch;
                // After a restart the disk holds only what was durable.
                self.log_durable_zxid = self.storage.last_zxid();
                self.last_processed = self.tree.last_zxid();
            }
            Err(reason) => return self.halt(ctx, reason),
        }
        // `QuorumPeer.loadDataBase`'s epoch check: it may refuse to start (see `epochs`).
        if let Err(reason) = self.load_database_epochs(ctx) {
            return self.halt(ctx, reason);
        }
        ctx.set_timer(self.cfg.tick_ns(), TAG_TICK);
        self.connect_election_peers(ctx);
        self.start_looking(ctx);
    }

    pub(crate) fn halt(&mut self, ctx: &mut Context<'_, Msg>, reason: String) {
        self.halted = Some(reason.clone());
        ctx.halt(reason);
    }

    // ------------------------------------------------------------------ peer states

    /// Leaves any role and starts a new election round.
    pub(crate) fn go_looking(&mut self, ctx: &mut Context<'_, Msg>, _why: &str) {
        if let Some(f) = self.follower.take() {
            self.conns.remove(&f.conn);
            ctx.close(f.conn);
        }
        if let Some(l) = self.leader.take() {
            for conn in l.learners.keys() {
                self.conns.remove(conn);
                ctx.close(*conn);
            }
        }
        // A server out of service drops its clients; they reconnect elsewhere.
        let client_conns: Vec<ConnId> = self.clients.keys().copied().collect();
        for conn in client_conns {
            self.drop_client(conn);
            self.conns.remove(&conn);
            ctx.close(conn);
        }
        if self.bug(BugMode::Zk2845) || self.bug(BugMode::Zk2355) {
            // Pre-fix ZooKeeper kept its in-memory database across elections (Z3, Z4).
        } else if let Err(reason) = self.reload_from_page_cache(ctx) {
            return self.halt(ctx, reason);
        }
        self.start_looking(ctx);
    }

    /// The fix of ZOOKEEPER-2845 / -3642: memory equals disk when leaving a role. Rebuilds
    /// the tree from the snapshot and log as written (synced or not), so logged-but-
    /// unapplied txns are applied and a half-done SNAP is forgotten.
    fn reload_from_page_cache(&mut self, ctx: &mut Context<'_, Msg>) -> Result<(), String> {
        let r = txnlog::recover(ctx.disk())?;
        assert_eq!(
            r.storage.last_zxid(),
            self.storage.last_zxid(),
            "log view diverged"
        );
        self.tree = r.tree;
        self.last_processed = self.tree.last_zxid();
        Ok(())
    }

    fn start_looking(&mut self, ctx: &mut Context<'_, Msg>) {
        self.state = PeerState::Looking;
        self.phase = ZabPhase::Election;
        self.role_gen += 1;
        self.stats.elections += 1;
        let own = self.own_vote();
        let step = self.election.start(own);
        self.notify_interval_ns = self.cfg.finalize_wait_ns().max(1);
        self.apply_election_step(ctx, step);
        self.notify_timer = Some(ctx.set_timer(self.notify_interval_ns, TAG_NOTIFY));
        if self.voters.len() == 1 {
            let v = self.election.vote;
            self.decided(ctx, v);
        }
    }

    fn apply_election_step(&mut self, ctx: &mut Context<'_, Msg>, step: election::Step) {
        if step.broadcast {
            self.broadcast_notification(ctx);
        }
        if step.disarm_finalize {
            if let Some(t) = self.finalize_timer.take() {
                ctx.cancel_timer(t);
            }
        }
        if step.arm_finalize {
            self.finalize_timer = Some(ctx.set_timer(self.cfg.finalize_wait_ns(), TAG_FINALIZE));
        }
        if let Some(v) = step.decided {
            self.decided(ctx, v);
        }
    }

    /// FLE terminated: lead or follow `vote.leader`.
    fn decided(&mut self, ctx: &mut Context<'_, Msg>, vote: Vote) {
        if let Some(t) = self.notify_timer.take() {
            ctx.cancel_timer(t);
        }
        self.role_gen += 1;
        if vote.leader == self.me {
            self.state = PeerState::Leading;
            self.phase = ZabPhase::Discovery;
            self.leader = Some(Box::new(LeaderState::new(ctx.now(), self.cfg.tick_ns())));
            self.leader_start(ctx);
        } else {
            self.state = PeerState::Following;
            self.phase = ZabPhase::Discovery;
            let conn = ctx.connect(NodeId(vote.leader));
            self.conns.insert(conn, ConnRole::ToLeader);
            self.follower = Some(Box::new(FollowerState::new(vote.leader, conn, ctx.now())));
        }
        // Tell LOOKING peers about the outcome.
        self.broadcast_notification(ctx);
    }

    /// The retry timer of a refused leader connection fired: connect again.
    fn retry_leader_connection(&mut self, ctx: &mut Context<'_, Msg>, timer: TimerId) {
        let Some(f) = self.follower.as_mut() else {
            return;
        };
        if f.retry_timer != Some(timer) {
            return;
        }
        f.retry_timer = None;
        let conn = ctx.connect(NodeId(f.leader));
        f.conn = conn;
        self.conns.insert(conn, ConnRole::ToLeader);
    }

    /// My notification: my vote while LOOKING, else the leader I follow or am.
    fn notification(&self) -> Notification {
        if self.state == PeerState::Looking {
            return self.election.notification();
        }
        let mut n = self.election.notification();
        n.state = self.state;
        n.vote.zxid = self.advertised_zxid();
        // ZOOKEEPER-1732: advertise the epoch of the ensemble once synced.
        n.vote.peer_epoch = self.current_epoch.max(n.vote.peer_epoch);
        n
    }

    fn broadcast_notification(&mut self, ctx: &mut Context<'_, Msg>) {
        let n = self.notification();
        for conn in self.election_conns.values() {
            self.sendq.send(ctx, *conn, n, TAG_SENDQ);
        }
    }

    /// Election connections go from the larger sid to the smaller, as in ZooKeeper's
    /// QuorumCnxManager, so each pair has one.
    fn connect_election_peers(&mut self, ctx: &mut Context<'_, Msg>) {
        // By index: the voters are read while the connection maps change (no copy).
        for i in 0..self.voters.len() {
            let peer = self.voters[i];
            if peer >= self.me {
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = self.election_conns.entry(peer) {
                let conn = ctx.connect(NodeId(peer));
                e.insert(conn);
                self.conns.insert(conn, ConnRole::Election(peer));
            }
        }
    }

    fn on_notification(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, n: Notification) {
        if self.state == PeerState::Looking {
            let own = self.own_vote();
            let step = self.election.on_notification(n, own);
            self.apply_election_step(ctx, step);
        } else if n.state == PeerState::Looking {
            // Someone is looking while we have a leader: tell it whom we follow.
            let n = self.notification();
            self.sendq.send(ctx, conn, n, TAG_SENDQ);
        }
    }

    // ------------------------------------------------------------------ connections

    fn on_conn_up(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, peer: NodeId, init: bool) {
        if !init {
            let role = if self.voters.contains(&peer.0) {
                ConnRole::Unknown
            } else {
                ConnRole::Client
            };
            self.conns.insert(conn, role);
            return;
        }
        match self.conns.get(&conn).copied() {
            Some(ConnRole::Election(_)) => {
                let n = self.notification();
                self.sendq.send(ctx, conn, n, TAG_SENDQ);
            }
            Some(ConnRole::ToLeader) => self.follower_connected(ctx, conn),
            _ => {}
        }
    }

    fn on_conn_down(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId) {
        let Some(role) = self.conns.remove(&conn) else {
            return;
        };
        match role {
            ConnRole::Election(peer) => {
                self.sendq.forget(ctx, conn);
                if self.election_conns.get(&peer) == Some(&conn) {
                    self.election_conns.remove(&peer);
                }
            }
            ConnRole::ToLeader => {
                let Some(f) = self.follower.as_mut().filter(|f| f.conn == conn) else {
                    return;
                };
                // A connection refused or lost before LEADERINFO (the chosen leader is not
                // listening yet: it has not finished its own election) is retried, as the
                // real learner does, until initLimit; after that, LOOKING again.
                if f.stage.persisting() {
                    // Noticed only when the NEWLEADER persistence is done, as in ZooKeeper
                    // (sync.rs, `newleader_persisted`).
                    f.lost = Some("lost the leader connection");
                    return;
                }
                let waited_ns = ctx.now().saturating_sub(f.started_ns);
                if f.zab_epoch.is_none() && waited_ns + LEADER_RETRY_NS < self.cfg.init_limit_ns() {
                    f.retry_timer = Some(ctx.set_timer(LEADER_RETRY_NS, TAG_LEADER_RETRY));
                } else {
                    self.go_looking(ctx, "lost the leader connection");
                }
            }
            ConnRole::Learner(_) => self.learner_lost(ctx, conn),
            ConnRole::Client => self.drop_client(conn),
            ConnRole::Unknown => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, peer: NodeId, msg: Msg) {
        let role = match self.conns.get(&conn).copied() {
            Some(ConnRole::Unknown) => {
                let role = match &msg {
                    Msg::Notification(_) => ConnRole::Election(peer.0),
                    Msg::FollowerInfo { .. } => ConnRole::Learner(peer.0),
                    _ => ConnRole::Client,
                };
                if let ConnRole::Election(p) = role {
                    self.election_conns.insert(p, conn);
                }
                self.conns.insert(conn, role);
                role
            }
            Some(role) => role,
            None => return, // closed by us; late message
        };
        match role {
            ConnRole::Election(_) => {
                if let Msg::Notification(n) = msg {
                    self.on_notification(ctx, conn, n);
                }
            }
            ConnRole::Learner(sid) => self.on_learner_msg(ctx, conn, sid, msg),
            ConnRole::ToLeader => self.on_leader_msg(ctx, conn, msg),
            ConnRole::Client => self.on_client_msg(ctx, conn, msg),
            ConnRole::Unknown => unreachable!(),
        }
    }

    // ------------------------------------------------------------------ timers

    fn on_timer(&mut self, ctx: &mut Context<'_, Msg>, timer: TimerId, tag: u64) {
        match tag {
            TAG_TICK => {
                ctx.set_timer(self.cfg.tick_ns(), TAG_TICK);
                self.connect_election_peers(ctx);
                if self.leader.is_some() {
                    self.leader_tick(ctx);
                } else if self.follower.is_some() {
                    self.follower_tick(ctx);
                }
            }
            TAG_NOTIFY if self.notify_timer == Some(timer) && self.state == PeerState::Looking => {
                self.broadcast_notification(ctx);
                self.notify_interval_ns = (self.notify_interval_ns * 2)
                    .min(self.cfg.max_notification_interval_ns().max(1));
                self.notify_timer = Some(ctx.set_timer(self.notify_interval_ns, TAG_NOTIFY));
            }
            TAG_LEADER_RETRY => self.retry_leader_connection(ctx, timer),
            TAG_SENDQ => self.sendq.on_timer(ctx, timer),
            TAG_FINALIZE if self.finalize_timer == Some(timer) => {
                self.finalize_timer = None;
                if self.state == PeerState::Looking {
                    let step = self.election.on_finalize_timer();
                    self.apply_election_step(ctx, step);
                }
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------------ durability

    /// Makes sure an fsync of the log covering everything appended so far is on its way.
    pub(crate) fn request_log_fsync(&mut self, ctx: &mut Context<'_, Msg>) {
        let appended = self.storage.last_zxid() > self.log_durable_zxid;
        if self.log_fsync_inflight || !(appended || self.log_truncation_unsynced) {
            return;
        }
        self.log_fsync_inflight = true;
        let f = ctx.fsync_shared(self.storage.log_name_shared());
        let wait = FsyncWait::Log {
            upto: self.storage.last_zxid(),
            trunc_gen: self.trunc_gen,
        };
        self.fsync_waits.insert(f, wait);
    }

    /// The log was truncated or replaced: nothing beyond `zxid` is known durable, and
    /// fsyncs issued before are about content that is gone.
    pub(crate) fn log_truncated(&mut self, zxid: Zxid) {
        self.trunc_gen += 1;
        self.log_durable_zxid = self.log_durable_zxid.min(zxid);
        self.log_fsync_inflight = false;
        self.stats.truncations += 1;
    }

    pub(crate) fn persist_snapshot(&mut self, ctx: &mut Context<'_, Msg>, new_gen: bool) {
        let name = self.storage.write_snapshot(ctx.disk(), &self.tree, new_gen);
        if new_gen {
            self.log_truncated(self.tree.last_zxid());
            self.log_durable_zxid = self.tree.last_zxid();
        }
        self.stats.snapshots += 1;
        self.commits_since_snapshot = 0;
        let f = ctx.fsync(&name);
        let role_gen = self.role_gen;
        self.fsync_waits
            .insert(f, FsyncWait::Snapshot { name, role_gen });
    }

    fn on_fsync_done(&mut self, ctx: &mut Context<'_, Msg>, fsync: FsyncId) {
        let Some(wait) = self.fsync_waits.remove(&fsync) else {
            return;
        };
        match wait {
            FsyncWait::Log { upto, trunc_gen } => {
                if trunc_gen == self.trunc_gen {
                    self.log_fsync_inflight = false;
                    self.log_durable_zxid = self.log_durable_zxid.max(upto);
                    self.log_truncation_unsynced = false;
                }
                self.request_log_fsync(ctx);
                self.log_durable(ctx);
            }
            FsyncWait::AcceptedEpoch {
                epoch,
                role_gen,
                seq,
            } => {
                if !self.epoch_tmp_durable(ctx, epochs::EpochFile::Accepted, seq) {
                    return;
                }
                self.durable_accepted_epoch = self.durable_accepted_epoch.max(epoch);
                if role_gen == self.role_gen {
                    self.accepted_epoch_durable(ctx, epoch);
                }
            }
            FsyncWait::CurrentEpoch {
                epoch,
                role_gen,
                seq,
            } => {
                if !self.epoch_tmp_durable(ctx, epochs::EpochFile::Current, seq) {
                    return;
                }
                self.durable_current_epoch = self.durable_current_epoch.max(epoch);
                if role_gen == self.role_gen {
                    self.current_epoch_durable(ctx, epoch);
                }
            }
            FsyncWait::Snapshot { name, role_gen } => {
                self.storage.snapshot_durable(ctx.disk(), &name);
                if role_gen == self.role_gen {
                    self.snapshot_durable(ctx);
                }
            }
        }
    }

    /// Log durability advanced: leaders count their own ACKs, followers send theirs.
    fn log_durable(&mut self, ctx: &mut Context<'_, Msg>) {
        if self.leader.is_some() {
            self.leader_log_durable(ctx);
        } else if self.follower.is_some() {
            self.follower_log_durable(ctx);
        }
    }

    fn accepted_epoch_durable(&mut self, ctx: &mut Context<'_, Msg>, epoch: u32) {
        if self.leader.is_some() {
            self.leader_accepted_epoch_durable(ctx, epoch);
        } else if self.follower.is_some() {
            self.follower_accepted_epoch_durable(ctx, epoch);
        }
    }

    fn current_epoch_durable(&mut self, ctx: &mut Context<'_, Msg>, epoch: u32) {
        if self.leader.is_some() {
            self.leader_current_epoch_durable(ctx, epoch);
        } else if self.follower.is_some() {
            self.follower_current_epoch_durable(ctx, epoch);
        }
    }

    fn snapshot_durable(&mut self, ctx: &mut Context<'_, Msg>) {
        if self.follower.is_some() {
            self.follower_snapshot_durable(ctx);
        }
    }

    /// Applies a committed txn everywhere it matters: tree, watches, waiting clients.
    pub(crate) fn apply_committed(&mut self, ctx: &mut Context<'_, Msg>, txn: &msg::Txn) {
        if txn.zxid <= self.tree.last_zxid() {
            // Only under ZOOKEEPER-2355 can a commit be at or below the applied state.
            assert!(
                self.bug(BugMode::Zk2355),
                "commit {:#x} already applied",
                txn.zxid
            );
            return;
        }
        // The answer is built only where the txn's session has its client; the watch
        // triggers fire as the tree changes, each to its watchers (in the order the
        // changes happen, as `Applied::events` lists them).
        let answer = (self.session_conns.get(&txn.session))
            .is_some_and(|conn| self.clients.contains_key(conn));
        let (watches, clients) = (&mut self.watches, &self.clients);
        let result = self.tree.apply_with(txn, answer, &mut |path, kind| {
            for watcher in watches.trigger(path, kind) {
                let conn = ConnId(watcher);
                if clients.contains_key(&conn) {
                    let ev = Msg::WatchEvent {
                        path: path.to_string(),
                        kind,
                        zxid: txn.zxid,
                    };
                    ctx.send(conn, ev);
                }
            }
        });
        self.last_processed = self.last_processed.max(txn.zxid);
        self.stats.txns_applied += 1;
        self.commits_since_snapshot += 1;
        self.deliver_applied(ctx, txn, result);
        if self.commits_since_snapshot >= self.cfg.snap_count && self.phase == ZabPhase::Broadcast {
            // Periodic snapshot of committed state only (a snapshot cannot be truncated).
            self.persist_snapshot(ctx, false);
        }
    }

    /// A fresh, globally unique session id: server id in the top byte, then time and a
    /// counter (ZooKeeper's SessionTrackerImpl.initializeNextSession does the same).
    pub(crate) fn next_session_id(&mut self, now_ns: u64) -> u64 {
        self.session_counter += 1;
        let ms = (now_ns / 1_000_000) & 0xff_ffff_ffff;
        ((self.me as u64 + 1) << 56) | (ms << 16) | (self.session_counter & 0xffff)
    }
}

impl Node for ZabServer {
    type Msg = Msg;

    fn on_event(&mut self, ctx: &mut Context<'_, Msg>, event: Event<Msg>) {
        if self.halted.is_some() {
            return;
        }
        match event {
            Event::Start { .. } => self.on_start(ctx),
            Event::ConnUp {
                conn,
                peer,
                initiated,
            } => self.on_conn_up(ctx, conn, peer, initiated),
            Event::ConnDown { conn, .. } => self.on_conn_down(ctx, conn),
            Event::Message { conn, peer, msg } => self.on_message(ctx, conn, peer, msg),
            Event::Timer { timer, tag } => self.on_timer(ctx, timer, tag),
            Event::FsyncDone { fsync, .. } => self.on_fsync_done(ctx, fsync),
            // A ZooKeeper server has no graceful shutdown worth modelling: it stops at once.
            Event::Stop => ctx.halt("stopped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::msg::{Forwarded, Msg, Op, OpResult, PeerState};
    use super::testkit::{client_connects, Harness};
    use super::*;
    use crate::node::{ConnId, Event, NodeId};

    /// A one-server ensemble elects itself, establishes epoch 1 (acceptedEpoch, then
    /// currentEpoch durable), commits a client's create after its own fsync, and a restart
    /// from the same disk recovers the znode and both epochs.
    #[test]
    fn single_server_elects_itself_commits_and_recovers() {
        let me = NodeId(0);
        let mut h = Harness::new(ZabServer::new(me, &[me], ZabConfig::default()));
        h.deliver(me, Event::Start { restarted: false });
        h.complete_fsyncs(me);
        assert_eq!(h.node.state, PeerState::Leading);
        assert_eq!(h.node.phase, ZabPhase::Broadcast);
        assert_eq!(
            (h.node.durable_accepted_epoch, h.node.durable_current_epoch),
            (1, 1)
        );

        let conn = ConnId(77);
        let session = client_connects(&mut h, conn);
        assert_ne!(session, 0);
        let create = Op::Create {
            path: "/a".into(),
            data: b"v".to_vec(),
            ephemeral: false,
            sequential: false,
        };
        let msg = Msg::ClientRequest {
            xid: 1,
            op: create.into(),
        };
        h.deliver(
            me,
            Event::Message {
                conn,
                peer: NodeId(9),
                msg,
            },
        );
        // Not answered before the leader's own fsync: its ACK counts only once durable.
        assert!(h.take_sent(conn).is_empty());
        h.complete_fsyncs(me);
        let sent = h.take_sent(conn);
        assert!(
            matches!(
                &sent[..],
                [Msg::ClientResponse {
                    xid: 1,
                    result: OpResult::Created { .. },
                    ..
                }]
            ),
            "{sent:?}"
        );

        let disk = h.disk.clone();
        let mut h2 = Harness::new(ZabServer::new(me, &[me], ZabConfig::default()));
        h2.disk = disk;
        h2.deliver(me, Event::Start { restarted: true });
        assert!(h2.node.tree.get("/a").is_some());
        h2.complete_fsyncs(me);
        assert_eq!(h2.node.current_epoch, 2, "a new epoch after the restart");
    }

    /// ZooKeeper's session-moved check: a write that a server the client has left still
    /// forwards is an error txn (SESSIONMOVED) once the client's session belongs to another
    /// server; the same write through the owner applies.
    #[test]
    fn a_write_forwarded_by_a_server_the_session_left_is_not_applied() {
        let me = NodeId(0);
        let mut h = Harness::new(ZabServer::new(me, &[me], ZabConfig::default()));
        h.deliver(me, Event::Start { restarted: false });
        h.complete_fsyncs(me);
        let session = client_connects(&mut h, ConnId(3));
        let create = |path: &str| {
            Forwarded::Write(
                Op::Create {
                    path: path.into(),
                    data: vec![],
                    ephemeral: false,
                    sequential: false,
                }
                .into(),
            )
        };
        let propose = |h: &mut Harness<ZabServer>, req: Forwarded, owner: u32| {
            let (mut effects, mut ids) = (Vec::new(), crate::node::IdSource::new(5_000));
            let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(2);
            let mut ctx =
                crate::node::Context::new(0, me, &mut rng, &mut h.disk, &mut ids, &mut effects);
            h.node.propose(&mut ctx, session, 9, req, owner);
        };
        // The session was created through the leader itself (owner 0): server 4 is stale.
        propose(&mut h, create("/moved"), 4);
        propose(&mut h, create("/owned"), 0);
        let projected = &h.node.leader.as_ref().expect("leading").prep_tree;
        assert!(projected.get("/owned").is_some());
        assert!(
            projected.get("/moved").is_none(),
            "a moved session's write applied"
        );
    }

    /// Reads are served locally and a watch fires before the response that follows it.
    #[test]
    fn watch_event_precedes_the_response_of_the_write_that_fires_it() {
        let me = NodeId(0);
        let mut h = Harness::new(ZabServer::new(me, &[me], ZabConfig::default()));
        h.deliver(me, Event::Start { restarted: false });
        h.complete_fsyncs(me);
        let conn = ConnId(5);
        client_connects(&mut h, conn);
        let peer = NodeId(9);
        let watch = Op::Exists {
            path: "/w".into(),
            watch: true,
        };
        h.deliver(
            me,
            Event::Message {
                conn,
                peer,
                msg: Msg::ClientRequest {
                    xid: 1,
                    op: watch.into(),
                },
            },
        );
        let create = Op::Create {
            path: "/w".into(),
            data: vec![],
            ephemeral: true,
            sequential: false,
        };
        h.deliver(
            me,
            Event::Message {
                conn,
                peer,
                msg: Msg::ClientRequest {
                    xid: 2,
                    op: create.into(),
                },
            },
        );
        h.complete_fsyncs(me);
        let sent = h.take_sent(conn);
        assert!(
            matches!(sent[0], Msg::ClientResponse { xid: 1, .. }),
            "{sent:?}"
        );
        assert!(matches!(sent[1], Msg::WatchEvent { .. }), "{sent:?}");
        assert!(
            matches!(sent[2], Msg::ClientResponse { xid: 2, .. }),
            "{sent:?}"
        );
    }
}
