//! Client connections on a server: session establishment (refusing a client that has seen
//! a newer zxid than this server, A.9), per-session FIFO request processing (reads served
//! locally, writes forwarded to the leader as txns, `sync` through the leader), one-shot
//! watches delivered before the response that follows them, heartbeats.
//!
//! May depend on: `node`, and the server's own state (`zab::mod`).

use std::collections::VecDeque;

use crate::node::{ConnId, Context};

use super::broadcast::SyncOrigin;
use super::msg::{ErrCode, Forwarded, Msg, Op, OpResult, Shared, Txn, TxnOp, WatchKind, Zxid};
use super::{ZabPhase, ZabServer};

/// A queued client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Queued {
    Op { xid: u64, op: Shared<Op> },
    Close { xid: u64 },
}

/// One client connection.
#[derive(Clone, Debug, Default)]
pub struct ClientConn {
    /// 0 until the session is established.
    pub session: u64,
    /// The createSession txn for this connection is in flight.
    pub creating: bool,
    pub timeout_ms: u64,
    pub queue: VecDeque<Queued>,
    /// The xid of the write, sync or close in flight (requests behind it wait: FIFO).
    pub busy: Option<u64>,
    /// A reconnect of `session` waits for the leader's word on it.
    pub revalidating: bool,
}

impl ZabServer {
    fn serving(&self) -> bool {
        self.phase == ZabPhase::Broadcast
    }

    pub(crate) fn on_client_msg(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, msg: Msg) {
        self.clients.entry(conn).or_default();
        match msg {
            Msg::ConnectReq {
                session,
                last_zxid_seen,
                timeout_ms,
            } => self.on_connect_req(ctx, conn, session, last_zxid_seen, timeout_ms),
            Msg::ClientRequest { xid, op } => {
                let c = self.clients.get_mut(&conn).expect("client");
                c.queue.push_back(Queued::Op { xid, op });
                self.pump(ctx, conn);
            }
            Msg::CloseSessionReq { xid } => {
                let c = self.clients.get_mut(&conn).expect("client");
                c.queue.push_back(Queued::Close { xid });
                self.pump(ctx, conn);
            }
            Msg::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
            } => self.set_watches(ctx, conn, relative_zxid, [data, exist, child]),
            Msg::ClientPing => {
                let session = self.clients[&conn].session;
                self.touch_session(ctx, session);
                ctx.send(
                    conn,
                    Msg::ClientPong {
                        zxid: self.last_processed,
                    },
                );
            }
            _ => {}
        }
    }

    /// Re-registers a reconnected client's watches (DataTree.setWatches): a watch whose
    /// node changed after `relative_zxid` (the client's last zxid) fires at once, before
    /// any response that follows on this connection, instead of being registered.
    fn set_watches(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        conn: ConnId,
        relative_zxid: Zxid,
        [data, exist, child]: [Vec<String>; 3],
    ) {
        let stat = |tree: &super::tree::DataTree, path: &str| match tree.read(&Op::Exists {
            path: path.to_string(),
            watch: false,
        }) {
            OpResult::Exists(stat) => stat,
            _ => None,
        };
        let mut fired = Vec::new();
        for path in data {
            match stat(&self.tree, &path) {
                None => fired.push((path, WatchKind::NodeDeleted)),
                Some(s) if s.mzxid > relative_zxid => {
                    fired.push((path, WatchKind::NodeDataChanged))
                }
                Some(_) => self.watches.add_data(&path, conn.0),
            }
        }
        for path in exist {
            match stat(&self.tree, &path) {
                Some(_) => fired.push((path, WatchKind::NodeCreated)),
                None => self.watches.add_data(&path, conn.0),
            }
        }
        for path in child {
            match stat(&self.tree, &path) {
                None => fired.push((path, WatchKind::NodeDeleted)),
                Some(s) if s.pzxid > relative_zxid => {
                    fired.push((path, WatchKind::NodeChildrenChanged))
                }
                Some(_) => self.watches.add_child(&path, conn.0),
            }
        }
        let zxid = self.last_processed;
        for (path, kind) in fired {
            ctx.send(conn, Msg::WatchEvent { path, kind, zxid });
        }
    }

    fn refuse(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, expired: bool) {
        ctx.send(conn, Msg::ConnectRefused { expired });
        self.close_client(ctx, conn);
    }

    /// Ends a client connection from the server's side: its queued requests go with it,
    /// and the client sees the connection drop after whatever was sent before.
    fn close_client(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId) {
        self.drop_client(conn);
        self.conns.remove(&conn);
        ctx.close(conn);
    }

    fn on_connect_req(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        conn: ConnId,
        session: u64,
        last_zxid_seen: u64,
        timeout_ms: u64,
    ) {
        if !self.serving() || last_zxid_seen > self.last_processed {
            // "Refusing session request for client as it has seen zxid X, our last zxid is
            // Y": the client must never go back in time (A.9).
            return self.refuse(ctx, conn, false);
        }
        if session != 0 {
            // The leader decides whether the session lives (ZooKeeperServer.reopenSession
            // -> Learner.validateSession): not this server's tree, which may lag behind a
            // createSession or a closeSession.
            if self.leader_established() {
                let me = self.me;
                let timeout_ms = self.revalidate_at_leader(ctx.now(), session, me);
                return self.finish_reconnect(ctx, conn, session, timeout_ms);
            }
            let Some(f) = self.follower.as_ref() else {
                return self.refuse(ctx, conn, false);
            };
            ctx.send(f.conn, Msg::Revalidate { session });
            let c = self.clients.get_mut(&conn).expect("client");
            c.session = session;
            c.revalidating = true;
            return;
        }
        let timeout_ms = self.cfg.negotiate_session_timeout_ms(timeout_ms);
        let session = self.next_session_id(ctx.now());
        let c = self.clients.get_mut(&conn).expect("client");
        c.session = session;
        c.creating = true;
        c.timeout_ms = timeout_ms;
        self.session_conns.insert(session, conn);
        self.submit_write(ctx, session, 0, Forwarded::CreateSession { timeout_ms });
    }

    /// On the leader: is `session` alive? Touches it when it is (the reconnect is a sign
    /// of life) and makes `owner`, the server the client reconnected through, its owner
    /// (`revalidateSession` -> `setOwner`). Returns its timeout in ms.
    pub(crate) fn revalidate_at_leader(
        &mut self,
        now_ns: u64,
        session: u64,
        owner: u32,
    ) -> Option<u64> {
        let l = self.leader.as_mut()?;
        let timeout_ns = l.sessions.timeout_ns(session)?;
        l.sessions.touch(session, now_ns);
        l.sessions.set_owner(session, owner);
        Some(timeout_ns / 1_000_000)
    }

    /// The leader's answer to a reconnect forwarded by this learner.
    pub(crate) fn on_revalidated(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        session: u64,
        timeout_ms: Option<u64>,
    ) {
        let waiting = self
            .clients
            .iter()
            .find(|(_, c)| c.revalidating && c.session == session)
            .map(|(conn, _)| *conn);
        if let Some(conn) = waiting {
            self.finish_reconnect(ctx, conn, session, timeout_ms);
        }
    }

    fn finish_reconnect(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        conn: ConnId,
        session: u64,
        timeout_ms: Option<u64>,
    ) {
        let Some(timeout_ms) = timeout_ms else {
            return self.refuse(ctx, conn, true);
        };
        if let Some(old) = self.session_conns.insert(session, conn) {
            if old != conn {
                self.close_client(ctx, old);
                self.session_conns.insert(session, conn);
            }
        }
        let c = self.clients.get_mut(&conn).expect("client");
        c.session = session;
        c.timeout_ms = timeout_ms;
        c.revalidating = false;
        self.touch_session(ctx, session);
        ctx.send(
            conn,
            Msg::ConnectResp {
                session,
                timeout_ms,
            },
        );
    }

    fn touch_session(&mut self, ctx: &mut Context<'_, Msg>, session: u64) {
        if session == 0 {
            return;
        }
        let now = ctx.now();
        match self.leader.as_mut() {
            Some(l) => l.sessions.touch(session, now),
            None => {
                if let Err(i) = self.touched.binary_search(&session) {
                    self.touched.insert(i, session);
                }
            }
        }
    }

    fn submit_write(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        session: u64,
        cxid: u64,
        req: Forwarded,
    ) {
        if self.leader_established() {
            let me = self.me;
            self.propose(ctx, session, cxid, req, me);
        } else if let Some(f) = self.follower.as_ref() {
            ctx.send(f.conn, Msg::Request { session, cxid, req });
        }
    }

    /// Processes queued requests of one connection in order until one must wait.
    fn pump(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId) {
        loop {
            let Some(c) = self.clients.get_mut(&conn) else {
                return;
            };
            if c.busy.is_some() || c.creating || c.revalidating || c.session == 0 {
                return;
            }
            let Some(item) = c.queue.pop_front() else {
                return;
            };
            let session = c.session;
            match item {
                Queued::Close { xid } => {
                    c.busy = Some(xid);
                    self.submit_write(ctx, session, xid, Forwarded::CloseSession);
                }
                Queued::Op { xid, op } if matches!(*op, Op::Sync { .. }) => {
                    c.busy = Some(xid);
                    if self.leader_established() {
                        self.leader_sync(ctx, SyncOrigin::Local, session, xid);
                    } else if let Some(f) = self.follower.as_ref() {
                        ctx.send(f.conn, Msg::SyncReq { session, cxid: xid });
                    }
                }
                Queued::Op { xid, op } if op.is_write() => {
                    c.busy = Some(xid);
                    self.submit_write(ctx, session, xid, Forwarded::Write(op));
                }
                Queued::Op { xid, op } => self.serve_read(ctx, conn, xid, &op),
            }
        }
    }

    fn serve_read(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, xid: u64, op: &Op) {
        let result = self.tree.read(op);
        let exists = !matches!(result, OpResult::Err(_));
        match op {
            Op::GetData { path, watch: true } if exists => self.watches.add_data(path, conn.0),
            Op::Exists { path, watch: true } => self.watches.add_data(path, conn.0),
            Op::GetChildren { path, watch: true } if exists => self.watches.add_child(path, conn.0),
            _ => {}
        }
        let zxid = self.last_processed;
        ctx.send(conn, Msg::ClientResponse { xid, zxid, result });
    }

    /// The leader answered a `sync` of a local client.
    pub(crate) fn sync_done(&mut self, ctx: &mut Context<'_, Msg>, session: u64, cxid: u64) {
        let Some(&conn) = self.session_conns.get(&session) else {
            return;
        };
        let c = self.clients.get_mut(&conn).expect("client");
        if c.busy != Some(cxid) {
            return;
        }
        c.busy = None;
        let zxid = self.last_processed;
        ctx.send(
            conn,
            Msg::ClientResponse {
                xid: cxid,
                zxid,
                result: OpResult::Synced,
            },
        );
        self.pump(ctx, conn);
    }

    /// After applying a committed txn: fire watches, then answer the waiting client.
    /// Answers the client of an applied txn, if it is connected here (the watch events
    /// went out while the txn was applied: `ZabServer::apply_committed`). `result` is
    /// built whenever the session has its connection here.
    pub(crate) fn deliver_applied(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        txn: &Txn,
        result: Option<OpResult>,
    ) {
        let Some(&conn) = self.session_conns.get(&txn.session) else {
            return;
        };
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        match &txn.op {
            TxnOp::CreateSession { timeout_ms } if c.creating => {
                c.creating = false;
                let msg = Msg::ConnectResp {
                    session: txn.session,
                    timeout_ms: *timeout_ms,
                };
                ctx.send(conn, msg);
                self.pump(ctx, conn);
            }
            TxnOp::CloseSession => {
                if c.busy == Some(txn.cxid) && txn.cxid != 0 {
                    let resp = Msg::ClientResponse {
                        xid: txn.cxid,
                        zxid: txn.zxid,
                        result: result.expect("built for a session connected here"),
                    };
                    ctx.send(conn, resp);
                }
                // Closed or expired: the connection is over either way.
                self.close_client(ctx, conn);
            }
            // The leader refused this connection's write because the session now belongs
            // to another server. ZooKeeper treats that as a connection-level error
            // (FinalRequestProcessor on SessionMovedException, ZOOKEEPER-710): no answer,
            // the connection is closed, and the client reconnects (with its in-flight
            // requests lost as ConnectionLoss) through a server that the leader then makes
            // the owner. Answering it instead left a client whose session a stale connect
            // had moved retrying on a connection whose every write the leader refuses,
            // while its pings kept the session alive (kafka-nemesis seed 73589).
            TxnOp::Error {
                code: ErrCode::SessionMoved,
                ..
            } if c.busy == Some(txn.cxid) => self.close_client(ctx, conn),
            _ if c.busy == Some(txn.cxid) => {
                c.busy = None;
                let resp = Msg::ClientResponse {
                    xid: txn.cxid,
                    zxid: txn.zxid,
                    result: result.expect("built for a session connected here"),
                };
                ctx.send(conn, resp);
                self.pump(ctx, conn);
            }
            _ => {}
        }
    }

    pub(crate) fn drop_client(&mut self, conn: ConnId) {
        if let Some(c) = self.clients.remove(&conn) {
            if self.session_conns.get(&c.session) == Some(&conn) {
                self.session_conns.remove(&c.session);
            }
        }
        self.watches.remove_watcher(conn.0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{client_connects, client_sends, Harness};
    use super::*;
    use crate::node::{Event, NodeId};
    use crate::zab::config::ZabConfig;

    fn create(path: &str) -> Op {
        Op::Create {
            path: path.into(),
            data: vec![],
            ephemeral: false,
            sequential: false,
        }
    }

    /// ZOOKEEPER-710: a write on a connection whose session the leader now gives to another
    /// server is not answered; the server closes the connection (the requests queued behind
    /// it go too), the session lives on, and the client's reconnect through this server
    /// makes it the owner again, so the same write then applies.
    #[test]
    fn a_request_on_a_connection_whose_session_moved_closes_the_connection() {
        let me = NodeId(0);
        let mut h = Harness::new(ZabServer::new(me, &[me], ZabConfig::default()));
        h.deliver(me, Event::Start { restarted: false });
        h.complete_fsyncs(me);
        let (old, new) = (ConnId(3), ConnId(4));
        let session = client_connects(&mut h, old);
        // A stale connect of this session through server 4 reached the leader.
        assert!(h.node.revalidate_at_leader(h.now_ns, session, 4).is_some());

        let write = Msg::ClientRequest {
            xid: 1,
            op: create("/x").into(),
        };
        client_sends(&mut h, old, write);
        let read = Op::Exists {
            path: "/".into(),
            watch: false,
        };
        client_sends(
            &mut h,
            old,
            Msg::ClientRequest {
                xid: 2,
                op: read.into(),
            },
        );
        h.complete_fsyncs(me);
        assert_eq!(h.take_sent(old), vec![], "answered on a moved session");
        assert_eq!(h.closed, vec![old]);
        assert!(h.node.tree.get("/x").is_none());
        let l = h.node.leader.as_ref().expect("leading");
        assert!(l.sessions.is_live(session), "the session itself lives on");

        let peer = NodeId(9);
        let initiated = false;
        h.deliver(
            me,
            Event::ConnUp {
                conn: new,
                peer,
                initiated,
            },
        );
        let reconnect = Msg::ConnectReq {
            session,
            last_zxid_seen: 0,
            timeout_ms: 1000,
        };
        client_sends(&mut h, new, reconnect);
        let write = Msg::ClientRequest {
            xid: 3,
            op: create("/x").into(),
        };
        client_sends(&mut h, new, write);
        h.complete_fsyncs(me);
        let sent = h.take_sent(new);
        assert!(
            matches!(
                &sent[..],
                [
                    Msg::ConnectResp { .. },
                    Msg::ClientResponse {
                        xid: 3,
                        result: OpResult::Created { .. },
                        ..
                    }
                ]
            ),
            "{sent:?}"
        );
        assert_eq!(h.closed, vec![old]);
    }
}
