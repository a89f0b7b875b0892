//! The ZooKeeper client as an embeddable state machine (the workload's clients now, Kafka
//! brokers later, through `Context::scoped`), modelled on ZooKeeper's ClientCnxn.
//!
//! A client is one session handle. It connects to one server of a list, keeps its session
//! across reconnects to other servers, is refused by servers behind its `last_zxid_seen`
//! (and tries the next), sends heartbeats and times requests out. On every reconnect it
//! re-registers its watches with SetWatches relative to its last zxid. `last_zxid_seen`
//! moves only with replies to requests, never with pings or watch events (as in
//! ClientCnxn, which returns before `lastZxid = replyHdr.getZxid()` for those).
//!
//! When the session expires the handle is dead: queued and later operations complete with
//! [`ZkError::SessionExpired`], the embedding node is told, and nothing opens a new session
//! under the old operations. A new session is the embedding node's decision (a new client).
//!
//! The embedding node routes to it every event on a connection the client [`owns`], and
//! every timer whose tag is the client's own ([`ClientConfig::timer_tag`], so several
//! clients can live in one node), and drains what happened with [`ZkClient::drain`]:
//! completions with a typed result, watch events and session state changes, in the order
//! they happened (a watch event before the response that followed it).
//!
//! [`owns`]: ZkClient::owns
//!
//! May depend on: `node`, `zab::msg`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::node::{ConnId, Context, Event, NodeId};

use super::msg::{ErrCode, Msg, Op, OpResult, Shared, WatchKind, Zxid};

/// The timer tags below this are free for embedding nodes; a client's tag is usually
/// `CLIENT_TAG_BASE + n`.
pub const CLIENT_TAG_BASE: u64 = 0xC11E_0000_0000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    pub servers: Vec<NodeId>,
    /// Requested session timeout (the server clamps it to [2, 20] ticks).
    pub session_timeout_ms: u64,
    /// A request without an answer after this long completes with [`ZkError::Timeout`]
    /// and the client moves to another server.
    pub request_timeout_ns: u64,
    /// How long a connection attempt may take.
    pub connect_timeout_ns: u64,
    /// The client's own clock granularity: heartbeats and timeout checks.
    pub tick_ns: u64,
    /// The tag of the client's tick timer: unique among the timers of the embedding node.
    pub timer_tag: u64,
}

/// Why an operation did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ZkError {
    /// The server answered with an error (a write answered so was not applied).
    Server(ErrCode),
    /// A multi failed and nothing of it was applied: per op, None for an op that would
    /// have succeeded, else its error (RUNTIMEINCONSISTENCY after the failing op).
    MultiFailed(Vec<Option<ErrCode>>),
    /// The connection broke with the request in flight: a write may or may not apply.
    ConnectionLoss,
    /// No answer within the request timeout: a write may or may not apply.
    Timeout,
    /// Never sent: the client was not connected before the request timeout.
    NotConnected,
    /// The session expired; the handle is dead. Never sent.
    SessionExpired,
    /// The handle was closed by [`ZkClient::close`]. Never sent.
    Closed,
}

impl ZkError {
    /// Could the operation have been applied anyway?
    pub fn is_uncertain(&self) -> bool {
        matches!(self, ZkError::ConnectionLoss | ZkError::Timeout)
    }
}

/// One completed operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Completion {
    pub op_id: u64,
    pub op: Shared<Op>,
    pub result: Result<OpResult, ZkError>,
    /// The zxid the server reported with its answer (None without an answer).
    pub zxid: Option<Zxid>,
    /// The xid the request went out with: a write's txn carries it as cxid (0 if unsent).
    pub xid: u64,
    /// The session the client held when the operation completed.
    pub session: u64,
    pub at_ns: u64,
}

/// The session as the embedding node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Connected to a server with an established session.
    Connected { session: u64 },
    /// The connection is gone; the client looks for another server. The session lives on.
    Disconnected,
    /// The ensemble expired the session: the handle is dead.
    Expired,
    /// The handle was closed.
    Closed,
}

/// What the client tells the embedding node, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientEvent {
    Completion(Completion),
    /// A watch fired (each registration at most once).
    Watch {
        path: String,
        kind: WatchKind,
    },
    State(SessionState),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    Down {
        retry_at_ns: u64,
    },
    Connecting {
        conn: ConnId,
        since_ns: u64,
    },
    Connected {
        conn: ConnId,
    },
    /// Expired or closed: never connects again.
    Dead,
}

#[derive(Clone, Debug)]
struct Inflight {
    op_id: u64,
    op: Shared<Op>,
    deadline_ns: u64,
    /// The xid it was sent with (the txn's cxid), 0 until sent.
    xid: u64,
}

/// The kind of a watch registration on the client (ClientCnxn's three watch tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum WatchClass {
    Data,
    Exist,
    Child,
}

/// The client state machine.
#[derive(Clone, Debug)]
pub struct ZkClient {
    cfg: ClientConfig,
    link: Link,
    server_idx: usize,
    session: u64,
    timeout_ms: u64,
    last_zxid_seen: Zxid,
    last_recv_ns: u64,
    last_ping_ns: u64,
    next_xid: u64,
    next_op_id: u64,
    inflight: BTreeMap<u64, Inflight>,
    queued: VecDeque<Inflight>,
    /// Watches registered on the servers, re-registered on every reconnect.
    watches: BTreeSet<(WatchClass, String)>,
    /// The xid of the closeSession in flight, after `close`.
    closing: Option<u64>,
    events: VecDeque<ClientEvent>,
    started: bool,
}

impl ZkClient {
    pub fn new(cfg: ClientConfig, first_server: usize) -> Self {
        assert!(!cfg.servers.is_empty(), "a client needs servers");
        let server_idx = first_server % cfg.servers.len();
        ZkClient {
            cfg,
            link: Link::Down { retry_at_ns: 0 },
            server_idx,
            session: 0,
            timeout_ms: 0,
            last_zxid_seen: 0,
            last_recv_ns: 0,
            last_ping_ns: 0,
            next_xid: 0,
            next_op_id: 0,
            inflight: BTreeMap::new(),
            queued: VecDeque::new(),
            watches: BTreeSet::new(),
            closing: None,
            events: VecDeque::new(),
            started: false,
        }
    }

    pub fn session(&self) -> u64 {
        self.session
    }
    pub fn last_zxid_seen(&self) -> Zxid {
        self.last_zxid_seen
    }
    pub fn is_connected(&self) -> bool {
        matches!(self.link, Link::Connected { .. }) && self.session != 0
    }
    /// The server the client is connected to, if it is.
    pub fn server(&self) -> Option<NodeId> {
        self.is_connected()
            .then(|| self.cfg.servers[self.server_idx])
    }
    /// Expired or closed: every operation fails without being sent.
    pub fn is_dead(&self) -> bool {
        self.link == Link::Dead
    }
    /// Operations invoked and not yet completed.
    pub fn outstanding(&self) -> usize {
        self.inflight.len() + self.queued.len()
    }
    /// Does this connection belong to the client?
    pub fn owns(&self, conn: ConnId) -> bool {
        match self.link {
            Link::Connecting { conn: c, .. } | Link::Connected { conn: c } => c == conn,
            Link::Down { .. } | Link::Dead => false,
        }
    }
    /// Is this timer tag the client's?
    pub fn owns_timer(&self, tag: u64) -> bool {
        tag == self.cfg.timer_tag
    }

    /// Everything that happened since the last drain, in order.
    pub fn drain(&mut self) -> Vec<ClientEvent> {
        self.events.drain(..).collect()
    }

    /// The oldest event not drained yet: [`drain`](Self::drain) one at a time, without
    /// collecting them (a client is drained after every one of its events).
    pub fn next_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Starts the client: its tick timer and the first connection attempt. Idempotent.
    pub fn start(&mut self, ctx: &mut Context<'_, Msg>) {
        if self.started {
            return;
        }
        self.started = true;
        ctx.set_timer(self.cfg.tick_ns, self.cfg.timer_tag);
        self.connect(ctx);
    }

    /// Invokes an operation; it is sent now or once connected. Returns its op id. On a
    /// dead handle it completes at once with the reason.
    pub fn submit(&mut self, ctx: &mut Context<'_, Msg>, op: Op) -> u64 {
        self.submit_shared(ctx, Shared::new(op))
    }

    /// [`submit`](Self::submit) of an op the caller keeps a handle on (its history's
    /// record): the request, the in-flight entry and the record share one copy.
    pub fn submit_shared(&mut self, ctx: &mut Context<'_, Msg>, op: Shared<Op>) -> u64 {
        self.next_op_id += 1;
        let op_id = self.next_op_id;
        let now = ctx.now();
        let item = Inflight {
            op_id,
            op,
            deadline_ns: now + self.cfg.request_timeout_ns,
            xid: 0,
        };
        match self.link {
            Link::Dead => {
                let why = self.dead_reason();
                self.complete(now, item, Err(why), None);
            }
            Link::Connected { conn } if self.session != 0 && self.closing.is_none() => {
                self.send_request(ctx, conn, item)
            }
            _ => self.queued.push_back(item),
        }
        op_id
    }

    /// Ends the session (controlled shutdown): sends closeSession when connected; queued
    /// operations fail with [`ZkError::Closed`]. The handle is dead once the server answers
    /// or the connection goes (an unanswered close leaves the session to expire).
    pub fn close(&mut self, ctx: &mut Context<'_, Msg>) {
        if self.is_dead() || self.closing.is_some() {
            return;
        }
        let now = ctx.now();
        for item in std::mem::take(&mut self.queued) {
            self.complete(now, item, Err(ZkError::Closed), None);
        }
        match self.link {
            Link::Connected { conn } if self.session != 0 => {
                self.next_xid += 1;
                self.closing = Some(self.next_xid);
                ctx.send(conn, Msg::CloseSessionReq { xid: self.next_xid });
            }
            _ => self.die(ctx, SessionState::Closed),
        }
    }

    fn dead_reason(&self) -> ZkError {
        if self.closing.is_some() {
            ZkError::Closed
        } else {
            ZkError::SessionExpired
        }
    }

    /// The handle dies: in-flight requests are lost, queued ones fail, the node is told.
    fn die(&mut self, ctx: &mut Context<'_, Msg>, state: SessionState) {
        if let Link::Connecting { conn, .. } | Link::Connected { conn } = self.link {
            ctx.close(conn);
        }
        let now = ctx.now();
        self.lose_inflight(now, ZkError::ConnectionLoss);
        let why = if state == SessionState::Closed {
            ZkError::Closed
        } else {
            ZkError::SessionExpired
        };
        for item in std::mem::take(&mut self.queued) {
            self.complete(now, item, Err(why.clone()), None);
        }
        if state == SessionState::Closed && self.closing.is_none() {
            self.closing = Some(0);
        }
        self.link = Link::Dead;
        self.watches.clear();
        self.events.push_back(ClientEvent::State(state));
    }

    fn send_request(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, mut item: Inflight) {
        self.next_xid += 1;
        let xid = self.next_xid;
        item.xid = xid;
        ctx.send(
            conn,
            Msg::ClientRequest {
                xid,
                op: Shared::clone(&item.op),
            },
        );
        self.inflight.insert(xid, item);
    }

    fn complete(
        &mut self,
        now_ns: u64,
        item: Inflight,
        result: Result<OpResult, ZkError>,
        zxid: Option<Zxid>,
    ) {
        self.events.push_back(ClientEvent::Completion(Completion {
            op_id: item.op_id,
            op: item.op,
            result,
            zxid,
            xid: item.xid,
            session: self.session,
            at_ns: now_ns,
        }));
    }

    /// Completes every in-flight request as lost.
    fn lose_inflight(&mut self, now_ns: u64, why: ZkError) {
        let lost = std::mem::take(&mut self.inflight);
        for (_, item) in lost {
            self.complete(now_ns, item, Err(why.clone()), None);
        }
    }

    fn disconnect(&mut self, ctx: &mut Context<'_, Msg>, why: ZkError, close: bool) {
        if close {
            if let Link::Connecting { conn, .. } | Link::Connected { conn } = self.link {
                ctx.close(conn);
            }
        }
        if self.closing.is_some() {
            // The close went unanswered: the session is left to expire.
            return self.die(ctx, SessionState::Closed);
        }
        let was_connected = self.is_connected();
        self.lose_inflight(ctx.now(), why);
        // Try the next server after a short backoff.
        self.server_idx = (self.server_idx + 1) % self.cfg.servers.len();
        self.link = Link::Down {
            retry_at_ns: ctx.now() + self.cfg.tick_ns,
        };
        if was_connected {
            let state = SessionState::Disconnected;
            self.events.push_back(ClientEvent::State(state));
        }
    }

    fn connect(&mut self, ctx: &mut Context<'_, Msg>) {
        let server = self.cfg.servers[self.server_idx];
        let conn = ctx.connect(server);
        self.link = Link::Connecting {
            conn,
            since_ns: ctx.now(),
        };
    }

    /// Handles an event routed to the client.
    pub fn on_event(&mut self, ctx: &mut Context<'_, Msg>, event: Event<Msg>) {
        match event {
            Event::Start { .. } => self.start(ctx),
            Event::ConnUp { conn, .. } if self.owns(conn) => {
                self.last_recv_ns = ctx.now();
                let req = Msg::ConnectReq {
                    session: self.session,
                    last_zxid_seen: self.last_zxid_seen,
                    timeout_ms: self.cfg.session_timeout_ms,
                };
                ctx.send(conn, req);
            }
            Event::ConnDown { conn, .. } if self.owns(conn) => {
                self.disconnect(ctx, ZkError::ConnectionLoss, false);
            }
            Event::Message { conn, msg, .. } if self.owns(conn) => self.on_msg(ctx, conn, msg),
            Event::Timer { tag, .. } if self.owns_timer(tag) && !self.is_dead() => {
                ctx.set_timer(self.cfg.tick_ns, self.cfg.timer_tag);
                self.on_tick(ctx);
            }
            _ => {}
        }
    }

    fn on_msg(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, msg: Msg) {
        let now = ctx.now();
        self.last_recv_ns = now;
        match msg {
            Msg::ConnectResp {
                session,
                timeout_ms,
            } => self.on_connected(ctx, conn, session, timeout_ms),
            Msg::ConnectRefused { expired: true } => self.die(ctx, SessionState::Expired),
            Msg::ConnectRefused { expired: false } => {
                self.disconnect(ctx, ZkError::ConnectionLoss, true)
            }
            Msg::ClientResponse { xid, zxid, result } => {
                self.last_zxid_seen = self.last_zxid_seen.max(zxid);
                if self.closing == Some(xid) {
                    return self.die(ctx, SessionState::Closed);
                }
                let Some(item) = self.inflight.remove(&xid) else {
                    return;
                };
                let result = match result {
                    OpResult::Err(code) => Err(ZkError::Server(code)),
                    OpResult::MultiFailed(per_op) => Err(ZkError::MultiFailed(per_op)),
                    r => {
                        self.learn_watch(&item.op, &r);
                        Ok(r)
                    }
                };
                self.complete(now, item, result, Some(zxid));
            }
            Msg::WatchEvent { path, kind, .. } => self.on_watch_event(path, kind),
            _ => {}
        }
    }

    fn on_connected(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        conn: ConnId,
        session: u64,
        timeout_ms: u64,
    ) {
        assert!(
            self.session == 0 || self.session == session,
            "a server answered a reconnect with another session"
        );
        self.session = session;
        self.timeout_ms = timeout_ms;
        self.link = Link::Connected { conn };
        self.events
            .push_back(ClientEvent::State(SessionState::Connected { session }));
        if !self.watches.is_empty() {
            // Before any request, so that a watch that fires here fires before the
            // responses that follow (ClientCnxn.primeConnection).
            let list = |class: WatchClass| -> Vec<String> {
                let w = self.watches.iter().filter(|(c, _)| *c == class);
                w.map(|(_, p)| p.clone()).collect()
            };
            let msg = Msg::SetWatches {
                relative_zxid: self.last_zxid_seen,
                data: list(WatchClass::Data),
                exist: list(WatchClass::Exist),
                child: list(WatchClass::Child),
            };
            ctx.send(conn, msg);
        }
        while let Some(item) = self.queued.pop_front() {
            self.send_request(ctx, conn, item);
        }
    }

    /// A successful read with `watch` set leaves a registration on the server (an exists
    /// of a missing node too: it waits for the creation).
    fn learn_watch(&mut self, op: &Op, result: &OpResult) {
        let class = match (op, result) {
            (Op::GetData { watch: true, .. }, _) => WatchClass::Data,
            (Op::Exists { watch: true, .. }, OpResult::Exists(Some(_))) => WatchClass::Data,
            (Op::Exists { watch: true, .. }, _) => WatchClass::Exist,
            (Op::GetChildren { watch: true, .. }, _) => WatchClass::Child,
            _ => return,
        };
        let (Op::GetData { path, .. } | Op::Exists { path, .. } | Op::GetChildren { path, .. }) =
            op
        else {
            return;
        };
        self.watches.insert((class, path.clone()));
    }

    /// Delivers a watch event once per registration it triggers; an event that triggers
    /// none (already delivered, e.g. again after SetWatches) is dropped.
    fn on_watch_event(&mut self, path: String, kind: WatchKind) {
        let classes: &[WatchClass] = match kind {
            WatchKind::NodeCreated | WatchKind::NodeDataChanged => {
                &[WatchClass::Data, WatchClass::Exist]
            }
            WatchKind::NodeDeleted => &[WatchClass::Data, WatchClass::Exist, WatchClass::Child],
            WatchKind::NodeChildrenChanged => &[WatchClass::Child],
        };
        let mut fired = false;
        for class in classes {
            fired |= self.watches.remove(&(*class, path.clone()));
        }
        if fired {
            self.events.push_back(ClientEvent::Watch { path, kind });
        }
    }

    fn on_tick(&mut self, ctx: &mut Context<'_, Msg>) {
        let now = ctx.now();
        // Requests past their deadline: unknown outcome, and leave this server (a lost
        // answer on a FIFO session means the session's order can no longer be trusted).
        let late = self.inflight.values().any(|i| i.deadline_ns <= now);
        if late {
            let (late, keep): (BTreeMap<u64, Inflight>, BTreeMap<u64, Inflight>) =
                std::mem::take(&mut self.inflight)
                    .into_iter()
                    .partition(|(_, i)| i.deadline_ns <= now);
            self.inflight = keep;
            for (_, item) in late {
                self.complete(now, item, Err(ZkError::Timeout), None);
            }
            return self.disconnect(ctx, ZkError::Timeout, true);
        }
        while self.queued.front().is_some_and(|i| i.deadline_ns <= now) {
            // Never sent: certainly not applied.
            let item = self.queued.pop_front().expect("front");
            self.complete(now, item, Err(ZkError::NotConnected), None);
        }
        match self.link {
            Link::Down { retry_at_ns } if now >= retry_at_ns => self.connect(ctx),
            Link::Connecting { since_ns, .. } if now - since_ns > self.cfg.connect_timeout_ns => {
                self.disconnect(ctx, ZkError::ConnectionLoss, true)
            }
            Link::Connected { conn } => {
                let timeout_ns = self.timeout_ms * 1_000_000;
                if now.saturating_sub(self.last_recv_ns) > timeout_ns * 2 / 3 {
                    // The server went quiet: look for another before the session expires.
                    return self.disconnect(ctx, ZkError::ConnectionLoss, true);
                }
                if now.saturating_sub(self.last_ping_ns) >= timeout_ns / 3 {
                    self.last_ping_ns = now;
                    ctx.send(conn, Msg::ClientPing);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{Effect, IdSource, MemDisk, TimerId};
    use crate::zab::tree::Stat;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Drives one client by hand: every effect is kept for inspection.
    struct Bench {
        zk: ZkClient,
        now_ns: u64,
        rng: ChaCha8Rng,
        disk: MemDisk,
        ids: IdSource,
        effects: Vec<Effect<Msg>>,
        /// The connection of the last connect.
        last_conn: Option<ConnId>,
    }

    const TAG: u64 = CLIENT_TAG_BASE + 3;

    impl Bench {
        fn new() -> Self {
            let cfg = ClientConfig {
                servers: vec![NodeId(0), NodeId(1)],
                session_timeout_ms: 3000,
                request_timeout_ns: 2_000_000_000,
                connect_timeout_ns: 1_000_000_000,
                tick_ns: 100_000_000,
                timer_tag: TAG,
            };
            Bench {
                zk: ZkClient::new(cfg, 0),
                now_ns: 0,
                rng: ChaCha8Rng::seed_from_u64(1),
                disk: MemDisk::default(),
                ids: IdSource::new(0),
                effects: Vec::new(),
                last_conn: None,
            }
        }
        fn with<R>(&mut self, f: impl FnOnce(&mut ZkClient, &mut Context<'_, Msg>) -> R) -> R {
            let mut ctx = Context::new(
                self.now_ns,
                NodeId(9),
                &mut self.rng,
                &mut self.disk,
                &mut self.ids,
                &mut self.effects,
            );
            let r = f(&mut self.zk, &mut ctx);
            for e in &self.effects {
                if let Effect::Connect { conn, .. } = e {
                    self.last_conn = Some(*conn);
                }
            }
            r
        }
        fn event(&mut self, event: Event<Msg>) {
            self.with(|zk, ctx| zk.on_event(ctx, event));
        }
        /// The connection of the last connect.
        fn conn(&self) -> ConnId {
            self.last_conn.expect("a connect")
        }
        fn msg(&mut self, msg: Msg) {
            let conn = self.conn();
            let peer = NodeId(0);
            self.event(Event::Message { conn, peer, msg });
        }
        fn sent(&mut self) -> Vec<Msg> {
            let sent = self.effects.iter().filter_map(|e| match e {
                Effect::Send { msg, .. } => Some(msg.clone()),
                _ => None,
            });
            let out = sent.collect();
            self.effects.clear();
            out
        }
        fn tick(&mut self) {
            self.now_ns += 100_000_000;
            let timer = TimerId(0);
            self.event(Event::Timer { timer, tag: TAG });
        }
        /// Started, connected to zk0 and in session 5.
        fn connected() -> Self {
            let mut b = Bench::new();
            b.event(Event::Start { restarted: false });
            let conn = b.conn();
            let peer = NodeId(0);
            b.event(Event::ConnUp {
                conn,
                peer,
                initiated: true,
            });
            b.msg(Msg::ConnectResp {
                session: 5,
                timeout_ms: 3000,
            });
            b
        }
    }

    fn get(path: &str, watch: bool) -> Op {
        let path = path.to_string();
        Op::GetData { path, watch }
    }

    fn data(version: i32) -> OpResult {
        let stat = Stat {
            version,
            ..Stat::default()
        };
        OpResult::Data { data: vec![], stat }
    }

    #[test]
    fn last_zxid_moves_with_replies_only_not_pings_or_watch_events() {
        // ClientCnxn returns before `lastZxid = replyHdr.getZxid()` for pings and watch
        // notifications: only a reply to a request advances it.
        let mut b = Bench::connected();
        b.msg(Msg::ClientPong { zxid: 0x50 });
        let path = "/a".to_string();
        let kind = WatchKind::NodeDataChanged;
        b.msg(Msg::WatchEvent {
            path,
            kind,
            zxid: 0x60,
        });
        assert_eq!(b.zk.last_zxid_seen(), 0);
        b.with(|zk, ctx| zk.submit(ctx, get("/a", false)));
        b.msg(Msg::ClientResponse {
            xid: 1,
            zxid: 0x40,
            result: data(0),
        });
        assert_eq!(b.zk.last_zxid_seen(), 0x40);
    }

    #[test]
    fn a_watch_fires_at_most_once_and_is_re_registered_on_reconnect() {
        let mut b = Bench::connected();
        b.with(|zk, ctx| zk.submit(ctx, get("/w", true)));
        let result = data(0);
        b.msg(Msg::ClientResponse {
            xid: 1,
            zxid: 0x7,
            result,
        });
        b.zk.drain();
        // The connection breaks: on the next server, SetWatches precedes queued requests.
        let conn = b.conn();
        b.event(Event::ConnDown {
            conn,
            peer: NodeId(0),
        });
        b.with(|zk, ctx| zk.submit(ctx, get("/x", false)));
        b.tick();
        let conn = b.conn();
        let peer = NodeId(1);
        b.event(Event::ConnUp {
            conn,
            peer,
            initiated: true,
        });
        b.sent();
        b.msg(Msg::ConnectResp {
            session: 5,
            timeout_ms: 3000,
        });
        let sent = b.sent();
        let set = Msg::SetWatches {
            relative_zxid: 0x7,
            data: vec!["/w".into()],
            exist: vec![],
            child: vec![],
        };
        assert_eq!(sent.first(), Some(&set), "{sent:?}");
        assert!(
            matches!(sent.get(1), Some(Msg::ClientRequest { .. })),
            "{sent:?}"
        );
        // The same change reported twice (say by the old server and by SetWatches): once.
        for _ in 0..2 {
            let path = "/w".to_string();
            let kind = WatchKind::NodeDataChanged;
            b.msg(Msg::WatchEvent {
                path,
                kind,
                zxid: 9,
            });
        }
        let watches: Vec<ClientEvent> =
            b.zk.drain()
                .into_iter()
                .filter(|e| matches!(e, ClientEvent::Watch { .. }))
                .collect();
        assert_eq!(watches.len(), 1, "{watches:?}");
    }

    #[test]
    fn an_expired_session_is_a_dead_handle() {
        let mut b = Bench::connected();
        let conn = b.conn();
        b.event(Event::ConnDown {
            conn,
            peer: NodeId(0),
        });
        let queued = b.with(|zk, ctx| zk.submit(ctx, get("/q", false)));
        b.tick();
        let conn = b.conn();
        let peer = NodeId(1);
        b.event(Event::ConnUp {
            conn,
            peer,
            initiated: true,
        });
        b.msg(Msg::ConnectRefused { expired: true });
        let later = b.with(|zk, ctx| zk.submit(ctx, get("/r", false)));
        let events = b.zk.drain();
        let failed: Vec<(u64, Result<OpResult, ZkError>)> = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Completion(c) => Some((c.op_id, c.result.clone())),
                _ => None,
            })
            .collect();
        let expired = Err(ZkError::SessionExpired);
        assert_eq!(failed, vec![(queued, expired.clone()), (later, expired)]);
        assert!(events.contains(&ClientEvent::State(SessionState::Expired)));
        // Nothing reconnects: no connect effect on later ticks, and no new session.
        b.effects.clear();
        for _ in 0..20 {
            b.tick();
        }
        let connects = b
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::Connect { .. }));
        assert_eq!(connects.count(), 0);
        assert!(b.zk.is_dead() && b.zk.drain().is_empty());
    }

    #[test]
    fn close_sends_close_session_and_kills_the_handle_on_its_answer() {
        let mut b = Bench::connected();
        b.sent();
        b.with(|zk, ctx| zk.close(ctx));
        assert_eq!(b.sent(), vec![Msg::CloseSessionReq { xid: 1 }]);
        let op = b.with(|zk, ctx| zk.submit(ctx, get("/a", false)));
        b.msg(Msg::ClientResponse {
            xid: 1,
            zxid: 0x9,
            result: OpResult::Deleted,
        });
        let events = b.zk.drain();
        assert!(
            events.contains(&ClientEvent::State(SessionState::Closed)),
            "{events:?}"
        );
        let closed = events.iter().any(|e| {
            matches!(e, ClientEvent::Completion(c) if c.op_id == op
                && c.result == Err(ZkError::Closed))
        });
        assert!(closed, "{events:?}");
        assert!(b.zk.is_dead());
    }

    #[test]
    fn a_failed_multi_reports_every_op() {
        let mut b = Bench::connected();
        let check = Op::Check {
            path: "/controller_epoch".into(),
            version: 3,
        };
        let op = Op::Multi(vec![check, get("/x", false)]);
        b.with(|zk, ctx| zk.submit(ctx, op));
        let per_op = vec![
            Some(ErrCode::BadVersion),
            Some(ErrCode::RuntimeInconsistency),
        ];
        let result = OpResult::MultiFailed(per_op.clone());
        b.msg(Msg::ClientResponse {
            xid: 1,
            zxid: 0x3,
            result,
        });
        let got = b.zk.drain().into_iter().find_map(|e| match e {
            ClientEvent::Completion(c) => Some(c.result),
            _ => None,
        });
        assert_eq!(got, Some(Err(ZkError::MultiFailed(per_op))));
    }
}
