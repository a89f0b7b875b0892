//! The ZooKeeper system: servers `zk0..` (ZAB, `zab::ZabServer`) and workload clients `c0..`
//! (the embeddable `zab::client::ZkClient` driven by a small generator), in one world.
//!
//! Online invariants after every event a server handles (reference A.11):
//! - `zab-one-leader-per-epoch`: the epoch -> established leader map is a function.
//! - `zab-epoch-monotonic`: acceptedEpoch and currentEpoch never go back (durable copies
//!   across crashes, memory within an incarnation), and currentEpoch <= acceptedEpoch.
//! - `zab-unique-zxid`: no two different txns are ever logged with the same zxid.
//! - `zab-committed-agreement`: leaders never commit different txns at one zxid.
//! - `zab-committed-truncated`: no committed txn is removed from a log by TRUNC.
//! - `zab-leader-completeness`: an established leader holds every committed txn.
//! - `zab-process-consistency`: a synced follower's log is a prefix of its leader's.
//! - `zab-digest-agreement`: servers that applied the same zxid have equal tree digests.
//! - `zab-ephemeral-session`: no ephemeral outlives its session's closeSession.
//! - `zab-fle-vote-order`: within one election round a server's vote only improves under
//!   the true (epoch, zxid, sid) order.
//!
//! End-of-run checks on the client history (until `check::history` lands; see `Record`):
//! - `zk-acked-write-durable`: every write answered ok is committed.
//! - `zk-session-order`: the zxids a client sees never decrease.
//! - `zk-sync-read`: a read right after a sync reflects every write that completed before
//!   the sync was invoked.
//!
//! Liveness after the heal: every server up, one established leader followed by all in
//! BROADCAST, every client got a write answered, and all servers applied what the leader
//! committed.
//!
//! Depends on: zab, node, sim, scenario, cluster.

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::Rng;

use super::capture::{self, ClientOp, Mark, Role, Witness};
use super::{FailureKind, System, Violation};
use crate::check::history::{Call, History, Outcome as HOutcome, Ret, ZkError};
use crate::check::zk_order::{check_zookeeper, ZkOptions};
use crate::check::Verdict;
use crate::node::{Context, Event, Node, NodeId};
use crate::scenario::{ZkWorkload, ZookeeperSpec};
use crate::sim::Sim;
use crate::zab::client::{ClientConfig, Outcome, Record, ZkClient};
use crate::zab::config::ZabConfig;
use crate::zab::election::vote_beats;
use crate::zab::msg::{ErrCode, Msg, Op, OpResult, PeerState, TxnOp, Vote, Zxid};
use crate::zab::{ZabPhase, ZabServer};

/// A node of the ZooKeeper world.
pub enum ZkNode {
    Server(Box<ZabServer>),
    Client(Box<WorkloadClient>),
}

impl Node for ZkNode {
    type Msg = Msg;
    fn on_event(&mut self, ctx: &mut Context<'_, Msg>, event: Event<Msg>) {
        match self {
            ZkNode::Server(s) => s.on_event(ctx, event),
            ZkNode::Client(c) => c.on_event(ctx, event),
        }
    }
}

impl ZkNode {
    pub fn server(&self) -> Option<&ZabServer> {
        match self {
            ZkNode::Server(s) => Some(s),
            ZkNode::Client(_) => None,
        }
    }
    pub fn client(&self) -> Option<&WorkloadClient> {
        match self {
            ZkNode::Client(c) => Some(c),
            ZkNode::Server(_) => None,
        }
    }
}

const TAG_OP: u64 = 7;

/// A workload client: one operation at a time (a sync+get pair counts as one), at a mean
/// rate, drawn from the node's own random stream.
pub struct WorkloadClient {
    index: u32,
    pub zk: ZkClient,
    workload: Rc<ZkWorkload>,
    ops: u64,
    /// Last version seen per path, for compare-and-set.
    versions: BTreeMap<String, i32>,
    paths: BTreeMap<u64, String>,
    scanned: usize,
}

impl WorkloadClient {
    fn new(index: u32, servers: u32, workload: Rc<ZkWorkload>, tick_ns: u64) -> Self {
        let cfg = ClientConfig {
            servers: (0..servers).map(NodeId).collect(),
            session_timeout_ms: workload.session_timeout_ms,
            request_timeout_ns: workload.request_timeout.ns(),
            connect_timeout_ns: 1_000_000_000,
            tick_ns,
        };
        WorkloadClient {
            index,
            zk: ZkClient::new(cfg, index as usize),
            workload,
            ops: 0,
            versions: BTreeMap::new(),
            paths: BTreeMap::new(),
            scanned: 0,
        }
    }

    fn interval_ns(&self, ctx: &mut Context<'_, Msg>) -> u64 {
        let mean = 1_000_000_000 / self.workload.ops_per_s.max(1) as u64;
        ctx.rng().gen_range(mean / 2..=mean + mean / 2).max(1)
    }

    fn on_event(&mut self, ctx: &mut Context<'_, Msg>, event: Event<Msg>) {
        match event {
            Event::Start { .. } => {
                self.zk.on_event(ctx, event);
                let first = self.workload.start_after.ns() + self.interval_ns(ctx);
                ctx.set_timer(first, TAG_OP);
            }
            Event::Timer { tag: TAG_OP, .. } => {
                if self.zk.outstanding() == 0 {
                    self.issue(ctx);
                }
                let next = self.interval_ns(ctx);
                ctx.set_timer(next, TAG_OP);
            }
            other => self.zk.on_event(ctx, other),
        }
        self.learn_versions();
    }

    fn learn_versions(&mut self) {
        for r in &self.zk.history[self.scanned..] {
            if let Record::Complete { op_id, outcome, .. } = r {
                let Some(path) = self.paths.remove(op_id) else {
                    continue;
                };
                match outcome {
                    Outcome::Ok(OpResult::Data { stat, .. } | OpResult::SetStat(stat)) => {
                        self.versions.insert(path, stat.version);
                    }
                    Outcome::Ok(OpResult::Created { .. }) => {
                        self.versions.insert(path, 0);
                    }
                    _ => {}
                }
            }
        }
        self.scanned = self.zk.history.len();
    }

    fn issue(&mut self, ctx: &mut Context<'_, Msg>) {
        let w = Rc::clone(&self.workload);
        let key = ctx.rng().gen_range(0..w.keys);
        let path = format!("/k{key}");
        self.ops += 1;
        let data = format!("c{}-{}", self.index, self.ops).into_bytes();
        let mut weights = w.weights();
        if w.writers.is_some_and(|n| self.index >= n) {
            weights = [0, 0, 0, w.get, w.sync_get, 0];
        }
        let total: u32 = weights.iter().sum();
        if total == 0 {
            return;
        }
        let mut pick = ctx.rng().gen_range(0..total);
        let mut kind = 0;
        while pick >= weights[kind] {
            pick -= weights[kind];
            kind += 1;
        }
        let op = match kind {
            0 => Op::Create {
                path: path.clone(),
                data,
                ephemeral: false,
                sequential: false,
            },
            1 => Op::SetData {
                path: path.clone(),
                data,
                version: self.versions.get(&path).copied().unwrap_or(0),
            },
            2 => Op::Delete {
                path: path.clone(),
                version: -1,
            },
            3 => Op::GetData {
                path: path.clone(),
                watch: false,
            },
            4 => {
                self.zk.submit(ctx, Op::Sync { path: path.clone() });
                Op::GetData {
                    path: path.clone(),
                    watch: true,
                }
            }
            _ => Op::Create {
                path: format!("/e{key}"),
                data,
                ephemeral: true,
                sequential: false,
            },
        };
        let id = self.zk.submit(ctx, op);
        self.paths.insert(id, path);
    }
}

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
    /// The (last log zxid, leader epoch) at which process consistency was last checked.
    checked_process: Option<(Zxid, u32)>,
    /// The view after the last checked event: most events (pings, timers, reads) change
    /// nothing the invariants look at, and are skipped.
    last_view: Option<crate::zab::snapshot::ServerView>,
}

#[derive(Default)]
struct Monitor {
    servers: Vec<ServerMon>,
    leaders: BTreeMap<u32, u32>,
    txns: BTreeMap<Zxid, u64>,
    committed: BTreeMap<Zxid, u64>,
    closed_sessions: BTreeMap<u64, Zxid>,
    digests: BTreeMap<Zxid, (u64, u32)>,
    elections: u64,
}

pub struct ZkSystem {
    spec: ZookeeperSpec,
    cfg: ZabConfig,
    workload: Rc<ZkWorkload>,
    mon: Monitor,
    heal_ns: Option<u64>,
    /// Operations completed ok / fail / info, counted at the end of the run.
    outcomes: [u64; 3],
    /// Clients that met their liveness goal since the heal (checked once, then cached:
    /// `pending` runs after every event of the healed phase).
    satisfied: Vec<bool>,
    /// The history checker ran out of budget (never counted as a pass in the summary).
    history_unknown: bool,
    /// The witness of a failed history check, for the report.
    witness: Option<Witness>,
}

impl ZkSystem {
    pub fn new(spec: &ZookeeperSpec) -> Self {
        ZkSystem {
            cfg: spec.zoo_cfg.clone(),
            workload: Rc::new(spec.workload.clone()),
            mon: Monitor {
                servers: vec![ServerMon::default(); spec.servers as usize],
                ..Monitor::default()
            },
            spec: spec.clone(),
            heal_ns: None,
            outcomes: [0; 3],
            satisfied: vec![false; spec.clients as usize],
            history_unknown: false,
            witness: None,
        }
    }

    fn server_ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.spec.servers).map(NodeId)
    }

    fn client_ids(&self) -> impl Iterator<Item = NodeId> {
        let s = self.spec.servers;
        (s..s + self.spec.clients).map(NodeId)
    }
}

fn violation(sim: &Sim<ZkNode>, invariant: &str, node: NodeId, message: String) -> Violation {
    super::safety_violation(sim, invariant, node, message)
}

fn server(sim: &Sim<ZkNode>, id: NodeId) -> Option<&ZabServer> {
    sim.node(id).and_then(ZkNode::server)
}

impl Monitor {
    fn check(&mut self, sim: &Sim<ZkNode>, id: NodeId) -> Vec<Violation> {
        let Some(s) = server(sim, id) else {
            return Vec::new();
        };
        let v = s.view();
        if v.halted.is_some() {
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
        }
        if self.servers[id.index()].last_view.as_ref() == Some(&v) {
            return out;
        }
        self.check_epochs(sim, id, &v, &mut out);
        self.scan_log(sim, id, s, fresh, v.log_durable_zxid, &mut out);
        self.check_leader(sim, id, s, &v, &mut out);
        self.check_process(sim, id, s, &v, &mut out);
        self.check_state(sim, id, s, &v, &mut out);
        self.servers[id.index()].last_view = Some(v);
        out
    }

    fn check_epochs(
        &mut self,
        sim: &Sim<ZkNode>,
        id: NodeId,
        v: &crate::zab::snapshot::ServerView,
        out: &mut Vec<Violation>,
    ) {
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
    fn scan_log(
        &mut self,
        sim: &Sim<ZkNode>,
        id: NodeId,
        s: &ZabServer,
        fresh: bool,
        durable_zxid: Zxid,
        out: &mut Vec<Violation>,
    ) {
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
        let removed: Vec<(Zxid, u64)> = m.mirror.drain(keep..).collect();
        m.durable = durable_zxid;
        // CommittedLogDurability (A.11 item 11): a TRUNC may remove a committed txn from
        // one server (the leader truncates to its lastCommitted, then re-sends what it
        // committed since), but never so that fewer than a quorum still hold it durably.
        let quorum = self.servers.len() / 2 + 1;
        for (z, h) in removed {
            if self.committed.get(&z) != Some(&h) {
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
            match self.txns.get(&z) {
                Some(old) if *old != h => {
                    let msg = format!("two different txns logged with zxid {z:#x}");
                    out.push(violation(sim, "zab-unique-zxid", id, msg));
                }
                Some(_) => {}
                None => {
                    self.txns.insert(z, h);
                }
            }
            m.mirror.push((z, h));
        }
    }

    fn check_leader(
        &mut self,
        sim: &Sim<ZkNode>,
        id: NodeId,
        s: &ZabServer,
        v: &crate::zab::snapshot::ServerView,
        out: &mut Vec<Violation>,
    ) {
        let Some(e) = v.established_epoch else {
            return;
        };
        let prev = *self.leaders.entry(e).or_insert(id.0);
        if prev != id.0 {
            let msg = format!(
                "zk{prev} and zk{} both established leaders of epoch {e}",
                id.0
            );
            out.push(violation(sim, "zab-one-leader-per-epoch", id, msg));
        }
        let gen_base = s.log_generation().1;
        let m = &mut self.servers[id.index()];
        if m.established != Some(e) {
            m.established = Some(e);
            m.commit_upto = 0;
            self.elections += 1;
            // LeaderLogCompleteness: every committed txn is in the new leader's history.
            for (z, h) in self.committed.range(gen_base + 1..) {
                let i = m.mirror.partition_point(|x| x.0 < *z);
                if m.mirror.get(i) != Some(&(*z, *h)) {
                    let msg = format!("established leader of epoch {e} lacks committed {z:#x}");
                    out.push(violation(sim, "zab-leader-completeness", id, msg));
                    break;
                }
            }
        }
        let start = m.mirror.partition_point(|x| x.0 <= m.commit_upto);
        for &(z, h) in &m.mirror[start..] {
            if z > v.last_committed {
                break;
            }
            match self.committed.get(&z) {
                Some(old) if *old != h => {
                    let msg = format!("a different txn was already committed at {z:#x}");
                    out.push(violation(sim, "zab-committed-agreement", id, msg));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(z, h);
                    if let Some(t) = s.logged_txn(z) {
                        if matches!(t.op, TxnOp::CloseSession) {
                            self.closed_sessions.insert(t.session, z);
                        }
                    }
                }
            }
        }
        m.commit_upto = m.commit_upto.max(v.last_committed);
    }

    fn check_process(
        &mut self,
        sim: &Sim<ZkNode>,
        id: NodeId,
        s: &ZabServer,
        v: &crate::zab::snapshot::ServerView,
        out: &mut Vec<Violation>,
    ) {
        if v.state != PeerState::Following || v.phase != ZabPhase::Broadcast {
            return;
        }
        let Some(l) = v.leader.and_then(|l| server(sim, NodeId(l))) else {
            return;
        };
        if l.established_epoch() != Some(v.current_epoch) {
            return;
        }
        let Some(last) = s.log_entries().last() else {
            return;
        };
        let z = last.txn.zxid;
        let m = &mut self.servers[id.index()];
        if m.checked_process == Some((z, v.current_epoch)) {
            return;
        }
        m.checked_process = Some((z, v.current_epoch));
        let l_last = l.log_entries().last().map_or(0, |e| e.txn.zxid);
        if z <= l.log_generation().1 || z > l_last {
            return;
        }
        if l.logged_txn(z) != Some(&last.txn) {
            let msg = format!("synced follower's log has {z:#x}, which its leader's log lacks");
            out.push(violation(sim, "zab-process-consistency", id, msg));
        }
    }

    fn check_state(
        &mut self,
        sim: &Sim<ZkNode>,
        id: NodeId,
        s: &ZabServer,
        v: &crate::zab::snapshot::ServerView,
        out: &mut Vec<Violation>,
    ) {
        self.check_votes(sim, id, v, out);
        // The tree only changes when the applied zxid does (or on a SNAP/TRUNC reload, which
        // also moves it): check digest and ephemerals then.
        let m = &mut self.servers[id.index()];
        if m.checked_applied == Some(v.last_applied) {
            return;
        }
        m.checked_applied = Some(v.last_applied);
        match self.digests.get(&v.last_applied) {
            Some((d, other)) if *d != v.digest => {
                let msg = format!(
                    "tree digest at zxid {:#x} differs from zk{other}'s",
                    v.last_applied
                );
                out.push(violation(sim, "zab-digest-agreement", id, msg));
            }
            Some(_) => {}
            None => {
                self.digests.insert(v.last_applied, (v.digest, id.0));
            }
        }
        let tree = s.tree();
        for (path, owner) in tree.ephemerals() {
            let closed = self
                .closed_sessions
                .get(&owner)
                .is_some_and(|z| *z <= v.last_applied);
            if closed || tree.session_timeout_ms(owner).is_none() {
                let msg = format!("ephemeral {path} outlives its session {owner:#x}");
                out.push(violation(sim, "zab-ephemeral-session", id, msg));
            }
        }
    }

    fn check_votes(
        &mut self,
        sim: &Sim<ZkNode>,
        id: NodeId,
        v: &crate::zab::snapshot::ServerView,
        out: &mut Vec<Violation>,
    ) {
        let m = &mut self.servers[id.index()];
        if v.state == PeerState::Looking {
            let vote = Vote {
                peer_epoch: v.vote.0,
                zxid: v.vote.1,
                leader: v.vote.2,
            };
            if let Some((round, old)) = m.vote {
                if round == v.election_round && vote_beats(&old, &vote, false) {
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

impl System for ZkSystem {
    type Node = ZkNode;
    type Msg = Msg;

    fn names(&self) -> Vec<String> {
        crate::scenario::SystemSpec::Zookeeper(self.spec.clone()).node_names()
    }

    fn factory(&self) -> Box<dyn FnMut(NodeId) -> ZkNode> {
        let servers = self.spec.servers;
        let voters: Vec<NodeId> = self.server_ids().collect();
        let cfg = self.cfg.clone();
        let workload = Rc::clone(&self.workload);
        // The client's own clock: heartbeats, timeouts and reconnect backoff every 100 ms.
        let tick_ns = 100_000_000;
        Box::new(move |id| {
            if id.0 < servers {
                ZkNode::Server(Box::new(ZabServer::new(id, &voters, cfg.clone())))
            } else {
                let index = id.0 - servers;
                let w = Rc::clone(&workload);
                ZkNode::Client(Box::new(WorkloadClient::new(index, servers, w, tick_ns)))
            }
        })
    }

    fn resolve_role(&self, role: &str, sim: &Sim<ZkNode>) -> Vec<NodeId> {
        self.server_ids()
            .filter(|id| {
                let Some(s) = server(sim, *id) else {
                    return false;
                };
                let v = s.view();
                match role {
                    "@leader" => v.established_epoch.is_some(),
                    "@follower" => v.state == PeerState::Following,
                    _ => false,
                }
            })
            .collect()
    }

    fn fault_targets(&self) -> Vec<NodeId> {
        self.server_ids().collect()
    }

    fn after_event(&mut self, sim: &Sim<ZkNode>, node: NodeId) -> Vec<Violation> {
        if node.0 >= self.spec.servers {
            return Vec::new();
        }
        self.mon.check(sim, node)
    }

    fn begin_liveness(&mut self, sim: &Sim<ZkNode>) {
        self.heal_ns = Some(sim.now());
        self.satisfied.iter_mut().for_each(|s| *s = false);
    }

    fn pending(&mut self, sim: &Sim<ZkNode>) -> Option<String> {
        let heal_ns = self.heal_ns?;
        let mut leader: Option<(u32, NodeId)> = None;
        for id in self.server_ids() {
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
        for id in self.server_ids() {
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
        let w = &self.workload;
        let writes = w.create + w.set_cas + w.delete + w.ephemeral > 0;
        for id in self.client_ids() {
            let index = (id.0 - self.spec.servers) as usize;
            if self.satisfied[index] {
                continue;
            }
            let Some(c) = sim.node(id).and_then(ZkNode::client) else {
                continue;
            };
            let answered = c.zk.history.iter().any(
                |r| matches!(r, Record::Complete { zxid: Some(_), at_ns, .. } if *at_ns >= heal_ns),
            );
            let writer = self
                .workload
                .writers
                .is_none_or(|n| id.0 - self.spec.servers < n);
            let write_answered = !writes || !writer || answered_write_since(&c.zk.history, heal_ns);
            if !answered || !write_answered {
                return Some(format!(
                    "{} has no op answered since the heal",
                    sim.name(id)
                ));
            }
            self.satisfied[index] = true;
        }
        None
    }

    fn finish(&mut self, sim: &Sim<ZkNode>) -> Vec<Violation> {
        let mut out = Vec::new();
        let histories: Vec<(NodeId, &[Record])> = self
            .client_ids()
            .filter_map(|id| {
                sim.node(id)
                    .and_then(ZkNode::client)
                    .map(|c| (id, &c.zk.history[..]))
            })
            .collect();
        for (_, h) in &histories {
            for r in h.iter() {
                if let Record::Complete { outcome, .. } = r {
                    let i = match outcome {
                        Outcome::Ok(_) => 0,
                        Outcome::Fail(_) => 1,
                        Outcome::Info(_) => 2,
                    };
                    self.outcomes[i] += 1;
                }
            }
        }
        for (id, h) in &histories {
            out.extend(check_client_history(sim, *id, h, &self.mon.committed));
        }
        if out.is_empty() {
            if let Some(stale) = check_sync_reads(&histories) {
                out.push(violation(
                    sim,
                    "zk-sync-read",
                    stale.client,
                    stale.message(),
                ));
                let history = self.history_of(&histories);
                self.witness = Some(stale.witness(&history, self.spec.servers));
            }
        }
        if out.is_empty() {
            out.extend(self.check_history(sim, &histories));
        }
        out
    }

    fn role(&self, sim: &Sim<ZkNode>, node: NodeId) -> Option<Role> {
        let v = server(sim, node)?.view();
        let name = match v.state {
            PeerState::Looking => "LOOKING",
            PeerState::Following => "FOLLOWING",
            PeerState::Leading => "LEADING",
        };
        Some(Role {
            name: name.to_string(),
            epoch: v.current_epoch as u64,
        })
    }

    fn client_ops(&self, sim: &Sim<ZkNode>) -> Vec<ClientOp> {
        let histories: Vec<(NodeId, &[Record])> = self
            .client_ids()
            .filter_map(|id| {
                sim.node(id)
                    .and_then(ZkNode::client)
                    .map(|c| (id, &c.zk.history[..]))
            })
            .collect();
        let servers = self.spec.servers;
        capture::client_ops(&self.history_of(&histories), &|p| p as u32 + servers)
    }

    fn witness(&self) -> Option<Witness> {
        self.witness.clone()
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "leaders_established": self.mon.elections,
            "committed_txns": self.mon.committed.len(),
            "ops_ok": self.outcomes[0],
            "ops_fail": self.outcomes[1],
            "ops_info": self.outcomes[2],
            "history_check": if self.history_unknown { "unknown" } else { "done" },
        })
    }
}

impl ZkSystem {
    /// The clients' records as one `check::History` (process = client index).
    fn history_of(&self, histories: &[(NodeId, &[Record])]) -> History {
        let servers = self.spec.servers;
        let procs: Vec<(u64, &[Record])> = histories
            .iter()
            .map(|(id, h)| ((id.0 - servers) as u64, *h))
            .collect();
        to_check_history(&procs)
    }

    /// Runs the ZooKeeper history checker (`check::zk_order`) on the recorded history.
    fn check_history(
        &mut self,
        sim: &Sim<ZkNode>,
        histories: &[(NodeId, &[Record])],
    ) -> Vec<Violation> {
        let history = self.history_of(histories);
        let options = ZkOptions {
            strict: true,
            ..ZkOptions::default()
        };
        match check_zookeeper(&history, &options) {
            Ok(Verdict::Invalid { violations }) => {
                let first = &violations[0];
                let ops: Vec<String> = first
                    .ops
                    .iter()
                    .take(4)
                    .map(|i| history.ops[*i].summary())
                    .collect();
                let message = format!("{}: {} [{}]", first.kind, first.message, ops.join("; "));
                let servers = self.spec.servers;
                let node_of = move |p: u64| p as u32 + servers;
                self.witness = Some(capture::checker_witness(
                    "zk-history",
                    first,
                    &history,
                    &node_of,
                ));
                vec![Violation {
                    kind: FailureKind::Safety,
                    invariant: "zk-history".into(),
                    message,
                    at_ns: sim.now(),
                    event: 0,
                    node: None,
                }]
            }
            Ok(Verdict::Unknown { .. }) => {
                self.history_unknown = true;
                Vec::new()
            }
            Ok(Verdict::Valid { .. }) => Vec::new(),
            Err(e) => panic!("history conversion produced an op the checker rejects: {e:?}"),
        }
    }
}

/// Converts the clients' records into a `check::History` (the conversion point between the
/// client library's records and the checkers). A sync followed by its getData becomes one
/// `sync_get_data`; ephemeral creates are left out (their deletion by session expiry is not
/// in the checker's znode model, and they use their own paths).
pub fn to_check_history(procs: &[(u64, &[Record])]) -> History {
    let mut history = History::new();
    for (process, records) in procs {
        let mut spans = spans_with_session(records);
        spans.sort_by_key(|s| s.0);
        let mut i = 0;
        while i < spans.len() {
            let (t0, session, op, t1, outcome, zxid) = spans[i].clone();
            if let Op::Sync { .. } = op {
                if let Some(next) = spans.get(i + 1) {
                    if let Op::GetData { path, .. } = &next.2 {
                        let call = Call::SyncGetData { path: path.clone() };
                        push_op(
                            &mut history,
                            *process,
                            session,
                            t0,
                            call,
                            next.3,
                            &next.4,
                            next.5,
                        );
                        i += 2;
                        continue;
                    }
                }
                i += 1;
                continue;
            }
            if let Some(call) = to_call(&op) {
                push_op(
                    &mut history,
                    *process,
                    session,
                    t0,
                    call,
                    t1,
                    &outcome,
                    zxid,
                );
            }
            i += 1;
        }
    }
    history.ops.sort_by_key(|o| (o.invoke_ns, o.process));
    history
}

type SessionSpan = (u64, u64, Op, u64, Outcome, Option<Zxid>);

fn spans_with_session(history: &[Record]) -> Vec<SessionSpan> {
    let mut invoked: BTreeMap<u64, (u64, u64, Op)> = BTreeMap::new();
    let mut out = Vec::new();
    for r in history {
        match r {
            Record::Invoke {
                op_id,
                session,
                op,
                at_ns,
            } => {
                invoked.insert(*op_id, (*at_ns, *session, op.clone()));
            }
            Record::Complete {
                op_id,
                session,
                outcome,
                zxid,
                at_ns,
            } => {
                if let Some((t0, s0, op)) = invoked.remove(op_id) {
                    let s = if *session != 0 { *session } else { s0 };
                    out.push((t0, s, op, *at_ns, outcome.clone(), *zxid));
                }
            }
        }
    }
    // Still in flight when the run ended: unknown outcome, open to the end.
    for (_, (t0, s0, op)) in invoked {
        out.push((
            t0,
            s0,
            op,
            t0,
            Outcome::Info("open at the end".into()),
            None,
        ));
    }
    out
}

fn to_call(op: &Op) -> Option<Call> {
    let text = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
    Some(match op {
        Op::Create {
            path,
            data,
            ephemeral: false,
            sequential: false,
        } => Call::Create {
            path: path.clone(),
            data: text(data),
        },
        Op::Delete { path, version } => Call::Delete {
            path: path.clone(),
            version: *version,
        },
        Op::SetData {
            path,
            data,
            version,
        } => Call::SetData {
            path: path.clone(),
            data: text(data),
            version: *version,
        },
        Op::GetData { path, .. } => Call::GetData { path: path.clone() },
        Op::Exists { path, .. } => Call::Exists { path: path.clone() },
        _ => return None,
    })
}

#[allow(clippy::too_many_arguments)]
fn push_op(
    history: &mut History,
    process: u64,
    session: u64,
    t0: u64,
    call: Call,
    t1: u64,
    outcome: &Outcome,
    zxid: Option<Zxid>,
) {
    let code = |c: &ErrCode| match c {
        ErrCode::NoNode => Some(ZkError::NoNode),
        ErrCode::NodeExists => Some(ZkError::NodeExists),
        ErrCode::BadVersion => Some(ZkError::BadVersion),
        _ => None,
    };
    let (outcome, ret) = match outcome {
        Outcome::Ok(OpResult::Err(c)) => match code(c) {
            Some(code) => (HOutcome::Fail, Some(Ret::Error { code })),
            None => (HOutcome::Fail, None),
        },
        Outcome::Ok(r) => (HOutcome::Ok, to_ret(r)),
        Outcome::Fail(name) => {
            let parsed = [ErrCode::NoNode, ErrCode::NodeExists, ErrCode::BadVersion]
                .into_iter()
                .find(|c| format!("{c:?}") == *name);
            match parsed.as_ref().and_then(code) {
                Some(code) => (HOutcome::Fail, Some(Ret::Error { code })),
                None => (HOutcome::Fail, None),
            }
        }
        Outcome::Info(_) => (HOutcome::Info, None),
    };
    let session = (session != 0).then_some(session);
    let id = history.invoke(process, session, t0, call);
    let zxid = if outcome == HOutcome::Info {
        None
    } else {
        zxid
    };
    history.complete(id, t1.max(t0), outcome, ret, zxid);
}

fn to_ret(r: &OpResult) -> Option<Ret> {
    Some(match r {
        OpResult::Created { .. } | OpResult::Deleted | OpResult::Synced => Ret::Done,
        OpResult::SetStat(stat) => Ret::Stat {
            version: stat.version,
        },
        OpResult::Data { data, stat } => Ret::Data {
            data: String::from_utf8_lossy(data).into_owned(),
            version: stat.version,
        },
        OpResult::Exists(stat) => Ret::Exists {
            version: stat.map(|s| s.version),
        },
        _ => return None,
    })
}

fn answered_write_since(history: &[Record], heal_ns: u64) -> bool {
    let mut writes = std::collections::BTreeSet::new();
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

/// (invoke time, op, completion time, outcome, zxid) per operation of one client.
type OpSpan<'a> = (u64, &'a Op, u64, &'a Outcome, Option<Zxid>);

fn spans(history: &[Record]) -> Vec<OpSpan<'_>> {
    let mut invoked: BTreeMap<u64, (u64, &Op)> = BTreeMap::new();
    let mut out = Vec::new();
    for r in history {
        match r {
            Record::Invoke {
                op_id, op, at_ns, ..
            } => {
                invoked.insert(*op_id, (*at_ns, op));
            }
            Record::Complete {
                op_id,
                outcome,
                zxid,
                at_ns,
                ..
            } => {
                if let Some((t0, op)) = invoked.remove(op_id) {
                    out.push((t0, op, *at_ns, outcome, *zxid));
                }
            }
        }
    }
    out
}

fn check_client_history(
    sim: &Sim<ZkNode>,
    id: NodeId,
    history: &[Record],
    committed: &BTreeMap<Zxid, u64>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut seen: Zxid = 0;
    for (_, op, _, outcome, zxid) in spans(history) {
        let (Outcome::Ok(_), Some(z)) = (outcome, zxid) else {
            continue;
        };
        if z < seen {
            let msg = format!("{op:?} answered with zxid {z:#x} after the client saw {seen:#x}");
            out.push(violation(sim, "zk-session-order", id, msg));
            break;
        }
        seen = z;
        if op.is_write() && !committed.contains_key(&z) {
            let msg = format!("{op:?} was answered ok at zxid {z:#x}, which was never committed");
            out.push(violation(sim, "zk-acked-write-durable", id, msg));
            break;
        }
    }
    out
}

/// A sync+read that missed a write completed before the sync was invoked.
struct StaleRead {
    client: NodeId,
    sync_t0: u64,
    path: String,
    read_zxid: Zxid,
    write_zxid: Zxid,
}

/// A sync then a read of one client: the read must see every write that completed (ok)
/// before the sync was invoked, anywhere.
fn check_sync_reads(histories: &[(NodeId, &[Record])]) -> Option<StaleRead> {
    let mut writes: Vec<(u64, Zxid)> = Vec::new();
    for (_, h) in histories {
        for (_, op, t1, outcome, zxid) in spans(h) {
            if let (true, Outcome::Ok(_), Some(z)) = (op.is_write(), outcome, zxid) {
                writes.push((t1, z));
            }
        }
    }
    writes.sort();
    let mut prefix_max = Vec::with_capacity(writes.len());
    let mut m = 0;
    for (_, z) in &writes {
        m = m.max(*z);
        prefix_max.push(m);
    }
    for (id, h) in histories {
        let s = spans(h);
        for pair in s.windows(2) {
            let (sync_t0, Op::Sync { .. }, _, Outcome::Ok(_), _) = pair[0] else {
                continue;
            };
            let (_, Op::GetData { path, .. }, _, Outcome::Ok(_), Some(read_z)) = pair[1] else {
                continue;
            };
            let i = writes.partition_point(|(t1, _)| *t1 < sync_t0);
            if i > 0 && prefix_max[i - 1] > read_z {
                return Some(StaleRead {
                    client: *id,
                    sync_t0,
                    path: path.clone(),
                    read_zxid: read_z,
                    write_zxid: prefix_max[i - 1],
                });
            }
        }
    }
    None
}

impl StaleRead {
    fn message(&self) -> String {
        format!(
            "sync+read of {} saw zxid {:#x}, but {:#x} completed before the sync",
            self.path, self.read_zxid, self.write_zxid
        )
    }

    /// The witness: every operation on the path, the stale read and the write it missed.
    fn witness(&self, history: &History, servers: u32) -> Witness {
        let process = (self.client.0 - servers) as u64;
        let mut marks = Vec::new();
        for (i, op) in history.ops.iter().enumerate() {
            let culprit = op.process == process
                && op.invoke_ns == self.sync_t0
                && matches!(op.call, Call::SyncGetData { .. });
            if culprit {
                marks.push((i, Mark::Culprit));
            } else if op.zxid == Some(self.write_zxid)
                && op.outcome == HOutcome::Ok
                && matches!(
                    op.call,
                    Call::Create { .. } | Call::SetData { .. } | Call::Delete { .. }
                )
            {
                marks.push((i, Mark::Evidence));
            }
        }
        let explanation = format!(
            "{}: the write at zxid {:#x} (evidence) completed before the sync was invoked, \
             so the sync+read (culprit) must see it",
            self.message(),
            self.write_zxid
        );
        capture::witness(
            "zk-sync-read",
            explanation,
            history,
            &self.path,
            &marks,
            &|p| p as u32 + servers,
        )
    }
}
