//! A fake network for unit tests of the clients without the kernel: connections come up
//! when the test says so, requests are collected with their connection and correlation id,
//! and the test answers them by hand (a fake broker). Timers fire when the test advances
//! the clock. Only for `#[cfg(test)]`.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::kafka::msg::{KafkaMsg, Request, Response};
use crate::kafka::wire::WireMsg;
use crate::node::{ConnId, Context, Effect, Event, IdSource, MemDisk, Node, NodeId, TimerId};

/// A request the client sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub conn: ConnId,
    pub peer: NodeId,
    pub correlation_id: u64,
    pub body: Request,
}

pub struct Net<N: Node<Msg = WireMsg>> {
    pub node: N,
    pub now_ns: u64,
    me: NodeId,
    disk: MemDisk,
    rng: ChaCha8Rng,
    ids: IdSource,
    /// Connections asked for and not yet answered: conn -> peer.
    pub connecting: BTreeMap<ConnId, NodeId>,
    pub open: BTreeMap<ConnId, NodeId>,
    timers: BTreeMap<(u64, TimerId), u64>,
    cancelled: Vec<TimerId>,
    pub requests: Vec<Sent>,
    pub closed: Vec<ConnId>,
    pub halted: bool,
}

impl<N: Node<Msg = WireMsg>> Net<N> {
    pub fn new(node: N, me: NodeId) -> Self {
        let mut net = Net {
            node,
            now_ns: 0,
            me,
            disk: MemDisk::default(),
            rng: ChaCha8Rng::seed_from_u64(9),
            ids: IdSource::new(1_000),
            connecting: BTreeMap::new(),
            open: BTreeMap::new(),
            timers: BTreeMap::new(),
            cancelled: Vec::new(),
            requests: Vec::new(),
            closed: Vec::new(),
            halted: false,
        };
        net.deliver(Event::Start { restarted: false });
        net
    }

    pub fn deliver(&mut self, event: Event<WireMsg>) {
        let mut effects = Vec::new();
        {
            let mut ctx = Context::new(
                self.now_ns,
                self.me,
                &mut self.rng,
                &mut self.disk,
                &mut self.ids,
                &mut effects,
            );
            self.node.on_event(&mut ctx, event);
        }
        for e in effects {
            self.apply(e);
        }
    }

    fn apply(&mut self, e: Effect<WireMsg>) {
        match e {
            Effect::Connect { conn, peer } => {
                self.connecting.insert(conn, peer);
            }
            Effect::Send { conn, msg } => {
                let Some(&peer) = self.open.get(&conn) else {
                    return;
                };
                if let WireMsg::Kafka(KafkaMsg::Request {
                    correlation_id,
                    body,
                }) = msg
                {
                    self.requests.push(Sent {
                        conn,
                        peer,
                        correlation_id,
                        body,
                    });
                }
            }
            Effect::Close { conn } => {
                self.open.remove(&conn);
                self.closed.push(conn);
            }
            Effect::SetTimer {
                timer,
                after_ns,
                tag,
            } => {
                self.timers.insert((self.now_ns + after_ns, timer), tag);
            }
            Effect::CancelTimer { timer } => self.cancelled.push(timer),
            Effect::Halt { .. } => self.halted = true,
            Effect::Fsync { .. } => {}
        }
    }

    /// Accepts every pending connection (the brokers are up).
    pub fn accept_all(&mut self) {
        let pending: Vec<(ConnId, NodeId)> =
            std::mem::take(&mut self.connecting).into_iter().collect();
        for (conn, peer) in pending {
            self.open.insert(conn, peer);
            self.deliver(Event::ConnUp {
                conn,
                peer,
                initiated: true,
            });
        }
    }

    /// Refuses every pending connection to `peer` (the broker is down).
    pub fn refuse(&mut self, peer: NodeId) {
        let refused: Vec<ConnId> = self
            .connecting
            .iter()
            .filter(|(_, p)| **p == peer)
            .map(|(c, _)| *c)
            .collect();
        for conn in refused {
            self.connecting.remove(&conn);
            self.deliver(Event::ConnDown { conn, peer });
        }
    }

    /// Breaks the open connection to `peer`.
    pub fn break_link(&mut self, peer: NodeId) {
        let conns: Vec<ConnId> = self
            .open
            .iter()
            .filter(|(_, p)| **p == peer)
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            self.open.remove(&conn);
            self.deliver(Event::ConnDown { conn, peer });
        }
    }

    /// Requests sent since the last call.
    pub fn take(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.requests)
    }

    pub fn respond(&mut self, to: &Sent, body: Response) {
        if !self.open.contains_key(&to.conn) {
            return;
        }
        self.deliver(Event::Message {
            conn: to.conn,
            peer: to.peer,
            msg: WireMsg::Kafka(KafkaMsg::Response {
                correlation_id: to.correlation_id,
                body,
            }),
        });
    }

    /// Advances the clock by `ns`, firing the timers that fall due, in order.
    pub fn advance(&mut self, ns: u64) {
        let until = self.now_ns + ns;
        while let Some((&(at, timer), &tag)) = self.timers.iter().next() {
            if at > until {
                break;
            }
            self.timers.remove(&(at, timer));
            if self.cancelled.contains(&timer) {
                continue;
            }
            self.now_ns = at.max(self.now_ns);
            self.deliver(Event::Timer { timer, tag });
        }
        self.now_ns = until;
    }
}
