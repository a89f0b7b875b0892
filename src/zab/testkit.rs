//! A tiny driver for unit tests of one server without the kernel: hand-built contexts over a
//! fault-free `MemDisk`, fsyncs completed in order on request, sends collected per
//! connection. Only for `#[cfg(test)]`.

use std::collections::VecDeque;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::node::{ConnId, Context, Effect, Event, FsyncId, IdSource, MemDisk, Node, NodeId};

use super::msg::Msg;
use super::ZabServer;

pub struct Harness<N: Node<Msg = Msg>> {
    pub node: N,
    pub now_ns: u64,
    pub disk: MemDisk,
    rng: ChaCha8Rng,
    ids: IdSource,
    fsyncs: VecDeque<(FsyncId, crate::node::FileName)>,
    /// Every message the node sent: (connection, message).
    pub sent: Vec<(ConnId, Msg)>,
    /// Every connection the node closed, in order.
    pub closed: Vec<ConnId>,
    pub halted: Option<String>,
}

impl<N: Node<Msg = Msg>> Harness<N> {
    pub fn new(node: N) -> Self {
        Harness {
            node,
            now_ns: 0,
            disk: MemDisk::default(),
            rng: ChaCha8Rng::seed_from_u64(1),
            ids: IdSource::new(1_000_000),
            fsyncs: VecDeque::new(),
            sent: Vec::new(),
            closed: Vec::new(),
            halted: None,
        }
    }

    pub fn deliver(&mut self, id: NodeId, event: Event<Msg>) {
        let mut effects = Vec::new();
        {
            let mut ctx = Context::new(
                self.now_ns,
                id,
                &mut self.rng,
                &mut self.disk,
                &mut self.ids,
                &mut effects,
            );
            self.node.on_event(&mut ctx, event);
        }
        for e in effects {
            match e {
                Effect::Send { conn, msg } => self.sent.push((conn, msg)),
                Effect::Fsync { fsync, file } => self.fsyncs.push_back((fsync, file)),
                Effect::Halt { reason } => self.halted = Some(reason),
                Effect::Close { conn } => self.closed.push(conn),
                _ => {}
            }
        }
    }

    /// Completes every pending fsync (and those they cause), in issue order.
    pub fn complete_fsyncs(&mut self, id: NodeId) {
        while let Some((fsync, file)) = self.fsyncs.pop_front() {
            self.now_ns += 1_000_000;
            self.deliver(id, Event::FsyncDone { fsync, file });
        }
    }

    /// Messages sent on `conn` since the last call.
    pub fn take_sent(&mut self, conn: ConnId) -> Vec<Msg> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.sent.drain(..).partition(|(c, _)| *c == conn);
        self.sent = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }
}

/// The peer node id test clients connect from.
const CLIENT: NodeId = NodeId(9);

/// A client sends `msg` to the single server `NodeId(0)` on `conn`.
pub fn client_sends(h: &mut Harness<ZabServer>, conn: ConnId, msg: Msg) {
    let peer = CLIENT;
    h.deliver(NodeId(0), Event::Message { conn, peer, msg });
}

/// A client connects to the single server `NodeId(0)` (a leader that commits alone) and
/// opens a session; returns the session id.
pub fn client_connects(h: &mut Harness<ZabServer>, conn: ConnId) -> u64 {
    let (peer, initiated) = (CLIENT, false);
    h.deliver(
        NodeId(0),
        Event::ConnUp {
            conn,
            peer,
            initiated,
        },
    );
    let req = Msg::ConnectReq {
        session: 0,
        last_zxid_seen: 0,
        timeout_ms: 1000,
    };
    client_sends(h, conn, req);
    h.complete_fsyncs(NodeId(0));
    match h.take_sent(conn).as_slice() {
        [Msg::ConnectResp { session, .. }] => *session,
        other => panic!("expected a session, got {other:?}"),
    }
}
