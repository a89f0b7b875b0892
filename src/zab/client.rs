//! The ZooKeeper client as an embeddable state machine (workload clients use it now, Kafka
//! brokers later, through `Context::scoped`). It connects to one server of a list, keeps its
//! session across reconnects to other servers, is refused by servers behind its
//! `last_zxid_seen` (and then tries the next), sends heartbeats, times requests out, and
//! records every operation with its outcome into a plain history the harness drains:
//! `ok`, `fail` (certainly not applied) or `info` (unknown), plus the zxid the server
//! reported.
//!
//! The embedding node routes to it: every event on a connection the client owns, and every
//! timer whose tag has [`CLIENT_TAG_BASE`] set.
//!
//! May depend on: `node`, `zab::msg`.

use std::collections::{BTreeMap, VecDeque};

use crate::node::{ConnId, Context, Event, NodeId};

use super::msg::{ErrCode, Msg, Op, OpResult, WatchKind, Zxid};

/// Timer tags of the client: `CLIENT_TAG_BASE | n`. Embedding nodes must avoid them.
pub const CLIENT_TAG_BASE: u64 = 0xC11E_0000_0000;
const TAG_TICK: u64 = CLIENT_TAG_BASE | 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    pub servers: Vec<NodeId>,
    /// Requested session timeout (the server clamps it to [2, 20] ticks).
    pub session_timeout_ms: u64,
    /// A request without an answer after this long completes as `info` (or `fail` for a
    /// read) and the client moves to another server.
    pub request_timeout_ns: u64,
    /// How long a connection attempt may take.
    pub connect_timeout_ns: u64,
    /// The client's own clock granularity: heartbeats and timeout checks.
    pub tick_ns: u64,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The server answered (a read may answer "no node": that is an observation).
    Ok(OpResult),
    /// Certainly not applied: a write the server rejected, or a read/sync not answered.
    Fail(String),
    /// Unknown: a write whose answer was lost (connection loss, timeout).
    Info(String),
}

/// One history event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Record {
    Invoke {
        op_id: u64,
        session: u64,
        op: Op,
        at_ns: u64,
    },
    Complete {
        op_id: u64,
        session: u64,
        outcome: Outcome,
        /// The zxid the server reported with its answer.
        zxid: Option<Zxid>,
        at_ns: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Link {
    Down { retry_at_ns: u64 },
    Connecting { conn: ConnId, since_ns: u64 },
    Connected { conn: ConnId },
}

#[derive(Clone, Debug)]
struct Inflight {
    op_id: u64,
    op: Op,
    deadline_ns: u64,
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
    /// Operations and outcomes, drained by the harness.
    pub history: Vec<Record>,
    /// Watch events received, in order: (path, kind, zxid).
    pub watch_events: Vec<(String, WatchKind, Zxid)>,
    /// Sessions that were found expired.
    pub sessions_expired: u64,
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
            history: Vec::new(),
            watch_events: Vec::new(),
            sessions_expired: 0,
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
    /// Operations invoked and not yet completed.
    pub fn outstanding(&self) -> usize {
        self.inflight.len() + self.queued.len()
    }
    /// Does this connection belong to the client?
    pub fn owns(&self, conn: ConnId) -> bool {
        match self.link {
            Link::Connecting { conn: c, .. } | Link::Connected { conn: c } => c == conn,
            Link::Down { .. } => false,
        }
    }
    pub fn owns_timer_tag(tag: u64) -> bool {
        tag & CLIENT_TAG_BASE == CLIENT_TAG_BASE
    }

    /// Invokes an operation; it is sent now or once connected. Returns its op id.
    pub fn submit(&mut self, ctx: &mut Context<'_, Msg>, op: Op) -> u64 {
        self.next_op_id += 1;
        let op_id = self.next_op_id;
        let now = ctx.now();
        self.history.push(Record::Invoke {
            op_id,
            session: self.session,
            op: op.clone(),
            at_ns: now,
        });
        let item = Inflight {
            op_id,
            op,
            deadline_ns: now + self.cfg.request_timeout_ns,
        };
        match self.link {
            Link::Connected { conn } if self.session != 0 => self.send_request(ctx, conn, item),
            _ => self.queued.push_back(item),
        }
        op_id
    }

    fn send_request(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, item: Inflight) {
        self.next_xid += 1;
        let xid = self.next_xid;
        ctx.send(
            conn,
            Msg::ClientRequest {
                xid,
                op: item.op.clone(),
            },
        );
        self.inflight.insert(xid, item);
    }

    fn complete(&mut self, now_ns: u64, item: Inflight, outcome: Outcome, zxid: Option<Zxid>) {
        self.history.push(Record::Complete {
            op_id: item.op_id,
            session: self.session,
            outcome,
            zxid,
            at_ns: now_ns,
        });
    }

    /// Completes every in-flight request as lost: writes are unknown, reads failed.
    fn lose_inflight(&mut self, now_ns: u64, why: &str) {
        let lost = std::mem::take(&mut self.inflight);
        for (_, item) in lost {
            let outcome = if item.op.is_write() {
                Outcome::Info(why.to_string())
            } else {
                Outcome::Fail(why.to_string())
            };
            self.complete(now_ns, item, outcome, None);
        }
    }

    fn disconnect(&mut self, ctx: &mut Context<'_, Msg>, why: &str, close: bool) {
        if close {
            if let Link::Connecting { conn, .. } | Link::Connected { conn } = self.link {
                ctx.close(conn);
            }
        }
        self.lose_inflight(ctx.now(), why);
        // Try the next server after a short backoff.
        self.server_idx = (self.server_idx + 1) % self.cfg.servers.len();
        self.link = Link::Down {
            retry_at_ns: ctx.now() + self.cfg.tick_ns,
        };
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
            Event::Start { .. } if !self.started => {
                self.started = true;
                ctx.set_timer(self.cfg.tick_ns, TAG_TICK);
                self.connect(ctx);
            }
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
                self.disconnect(ctx, "connection loss", false);
            }
            Event::Message { conn, msg, .. } if self.owns(conn) => self.on_msg(ctx, conn, msg),
            Event::Timer { tag: TAG_TICK, .. } => {
                ctx.set_timer(self.cfg.tick_ns, TAG_TICK);
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
            } => {
                if self.session != session {
                    // A new session: ops invoked under the old one were already completed.
                    self.session = session;
                }
                self.timeout_ms = timeout_ms;
                self.link = Link::Connected { conn };
                while let Some(item) = self.queued.pop_front() {
                    self.send_request(ctx, conn, item);
                }
            }
            Msg::ConnectRefused { expired } => {
                if expired {
                    self.sessions_expired += 1;
                    self.session = 0;
                }
                self.disconnect(ctx, "refused", true);
            }
            Msg::ClientResponse { xid, zxid, result } => {
                self.last_zxid_seen = self.last_zxid_seen.max(zxid);
                let Some(item) = self.inflight.remove(&xid) else {
                    return;
                };
                let outcome = match result {
                    OpResult::Err(code) if item.op.is_write() => Outcome::Fail(err_name(code)),
                    OpResult::Err(ErrCode::SessionExpired) => {
                        Outcome::Fail(err_name(ErrCode::SessionExpired))
                    }
                    r => Outcome::Ok(r),
                };
                self.complete(now, item, outcome, Some(zxid));
            }
            Msg::WatchEvent { path, kind, zxid } => {
                self.last_zxid_seen = self.last_zxid_seen.max(zxid);
                self.watch_events.push((path, kind, zxid));
            }
            Msg::ClientPong { zxid } => {
                self.last_zxid_seen = self.last_zxid_seen.max(zxid);
            }
            _ => {}
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
                let outcome = if item.op.is_write() {
                    Outcome::Info("timeout".into())
                } else {
                    Outcome::Fail("timeout".into())
                };
                self.complete(now, item, outcome, None);
            }
            return self.disconnect(ctx, "timeout", true);
        }
        while self.queued.front().is_some_and(|i| i.deadline_ns <= now) {
            // Never sent: certainly not applied.
            let item = self.queued.pop_front().expect("front");
            self.complete(now, item, Outcome::Fail("not connected".into()), None);
        }
        match self.link {
            Link::Down { retry_at_ns } if now >= retry_at_ns => self.connect(ctx),
            Link::Connecting { since_ns, .. } if now - since_ns > self.cfg.connect_timeout_ns => {
                self.disconnect(ctx, "connect timeout", true)
            }
            Link::Connected { conn } => {
                let timeout_ns = self.timeout_ms * 1_000_000;
                if now.saturating_sub(self.last_recv_ns) > timeout_ns * 2 / 3 {
                    // The server went quiet: look for another before the session expires.
                    return self.disconnect(ctx, "server silent", true);
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

fn err_name(code: ErrCode) -> String {
    format!("{code:?}")
}
