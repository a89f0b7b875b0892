//! The broker's outgoing broker-to-broker connections (Kafka's `NetworkClient` as used by
//! the controller's `RequestSendThread`, the `ReplicaFetcherThread`s and the controlled
//! shutdown), each a [`Channel`] to one peer broker with correlation ids.
//!
//! Channels are separate connections, as in Kafka, where each of these owns its own
//! `NetworkClient`: a broken fetcher connection does not lose a controller request.
//! A broken connection drops what was in flight and the owner decides (the controller
//! re-sends, as its RequestSendThread retries until it has an answer). A request unanswered
//! for longer than its deadline breaks the connection (`request.timeout.ms`-style
//! disconnect).

use std::collections::BTreeMap;

use crate::kafka::msg::{BrokerId, KafkaMsg, Request};
use crate::kafka::wire::WireMsg;
use crate::node::{ConnId, Context, NodeId};

/// Kafka's socket request timeouts (`controller.socket.timeout.ms`,
/// `replica.socket.timeout.ms`): 30 s.
pub const SOCKET_TIMEOUT_NS: u64 = 30_000 * 1_000_000;
/// Pause before reconnecting a broken channel (`reconnect.backoff.ms` order of magnitude).
pub const RECONNECT_BACKOFF_NS: u64 = 100 * 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    /// The controller's requests (LeaderAndIsr, UpdateMetadata, StopReplica).
    Controller,
    /// This broker's replica fetcher for partitions the peer leads.
    Fetcher,
    /// ControlledShutdown to the controller.
    Shutdown,
}

#[derive(Clone, Debug)]
struct Pending {
    request: Request,
    sent: bool,
    deadline_ns: u64,
    /// How long an answer may take once sent.
    timeout_ns: u64,
}

#[derive(Clone, Debug, Default)]
struct Outbound {
    conn: Option<ConnId>,
    up: bool,
    retry_at_ns: u64,
    /// Unanswered requests by correlation id (= send order).
    pending: BTreeMap<u64, Pending>,
}

/// A request whose channel broke before it was answered (fetcher and shutdown channels).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub peer: BrokerId,
    pub channel: Channel,
    pub correlation_id: u64,
}

/// Every outgoing channel of one broker.
#[derive(Clone, Debug, Default)]
pub struct Net {
    next_corr: u64,
    out: BTreeMap<(BrokerId, Channel), Outbound>,
    by_conn: BTreeMap<ConnId, (BrokerId, Channel)>,
}

impl Net {
    /// Whether `conn` is one of this broker's outgoing connections.
    pub fn owns(&self, conn: ConnId) -> bool {
        self.by_conn.contains_key(&conn)
    }

    /// Queues `request` for `peer` (node `node`) and sends it as soon as the channel is up;
    /// returns its correlation id.
    pub fn send(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        node: NodeId,
        peer: BrokerId,
        channel: Channel,
        request: Request,
        timeout_ns: u64,
    ) -> u64 {
        self.next_corr += 1;
        let corr = self.next_corr;
        let out = self.out.entry((peer, channel)).or_default();
        out.pending.insert(
            corr,
            Pending {
                request,
                sent: false,
                deadline_ns: 0,
                timeout_ns,
            },
        );
        if out.up {
            let conn = out.conn.expect("an up channel has a connection");
            transmit(ctx, conn, out);
        } else if out.conn.is_none() && ctx.now() >= out.retry_at_ns {
            let conn = ctx.connect(node);
            out.conn = Some(conn);
            self.by_conn.insert(conn, (peer, channel));
        }
        corr
    }

    /// The connection is established: send everything waiting, in order.
    pub fn on_up(&mut self, ctx: &mut Context<'_, WireMsg>, conn: ConnId) {
        let Some(key) = self.by_conn.get(&conn) else {
            return;
        };
        let out = self.out.get_mut(key).expect("indexed channel");
        out.up = true;
        transmit(ctx, conn, out);
    }

    /// The connection broke (or could not be made): its unanswered requests are dropped.
    pub fn on_down(&mut self, now_ns: u64, conn: ConnId) -> Vec<Dropped> {
        let Some((peer, channel)) = self.by_conn.remove(&conn) else {
            return Vec::new();
        };
        let out = self.out.get_mut(&(peer, channel)).expect("indexed channel");
        out.conn = None;
        out.up = false;
        out.retry_at_ns = now_ns + RECONNECT_BACKOFF_NS;
        let pending = std::mem::take(&mut out.pending);
        pending
            .into_keys()
            .map(|correlation_id| Dropped {
                peer,
                channel,
                correlation_id,
            })
            .collect()
    }

    /// The answer to `corr` arrived on `conn`: which request it answers.
    pub fn on_response(&mut self, conn: ConnId, corr: u64) -> Option<(BrokerId, Channel)> {
        let key = *self.by_conn.get(&conn)?;
        let out = self.out.get_mut(&key)?;
        out.pending.remove(&corr).map(|_| key)
    }

    /// Reconnects channels with waiting requests after their backoff, and breaks the
    /// connections with a request past its deadline. Returns what the breaks dropped.
    pub fn tick(&mut self, ctx: &mut Context<'_, WireMsg>, nodes: &[NodeId]) -> Vec<Dropped> {
        let now = ctx.now();
        let late: Vec<ConnId> = self
            .out
            .values()
            .filter(|o| o.up && o.pending.values().any(|p| p.sent && p.deadline_ns <= now))
            .filter_map(|o| o.conn)
            .collect();
        let mut dropped = Vec::new();
        for conn in late {
            ctx.close(conn);
            dropped.extend(self.on_down(now, conn));
        }
        for (&(peer, channel), out) in &mut self.out {
            if out.conn.is_none() && !out.pending.is_empty() && now >= out.retry_at_ns {
                let conn = ctx.connect(nodes[peer as usize]);
                out.conn = Some(conn);
                self.by_conn.insert(conn, (peer, channel));
            }
        }
        dropped
    }

    /// Closes the channel to `peer` and forgets its requests (a fetcher with nothing left to
    /// fetch, a controller that resigned).
    pub fn reset(&mut self, ctx: &mut Context<'_, WireMsg>, peer: BrokerId, channel: Channel) {
        if let Some(out) = self.out.remove(&(peer, channel)) {
            if let Some(conn) = out.conn {
                ctx.close(conn);
                self.by_conn.remove(&conn);
            }
        }
    }

    /// Every peer with an open or pending channel of this kind.
    pub fn peers(&self, channel: Channel) -> Vec<BrokerId> {
        let keys = self.out.keys().filter(|(_, c)| *c == channel);
        keys.map(|(p, _)| *p).collect()
    }

    /// Requests waiting for an answer on a channel (for views and tests).
    pub fn unanswered(&self, peer: BrokerId, channel: Channel) -> usize {
        self.out
            .get(&(peer, channel))
            .map_or(0, |o| o.pending.len())
    }
}

/// Sends every request of `out` not yet sent on its current connection.
fn transmit(ctx: &mut Context<'_, WireMsg>, conn: ConnId, out: &mut Outbound) {
    let now = ctx.now();
    for (&corr, p) in out.pending.iter_mut().filter(|(_, p)| !p.sent) {
        p.sent = true;
        p.deadline_ns = now + p.timeout_ns;
        let msg = KafkaMsg::Request {
            correlation_id: corr,
            body: p.request.clone(),
        };
        ctx.send(conn, WireMsg::Kafka(msg));
    }
}
