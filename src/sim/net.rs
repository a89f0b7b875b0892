//! The virtual network: FIFO connections between nodes, as TCP gives ZAB and Kafka.
//!
//! Model:
//! - `connect` succeeds after one sampled delay if the peer is up and no partition separates
//!   the two; otherwise the caller is told the connection is down (after one delay if the
//!   peer process is down, as a reset would arrive; after `connect_timeout` if a partition
//!   swallows the handshake).
//! - Each direction of a connection delivers in send order: a message's delivery time is its
//!   sampled delay, raised to the previous delivery time on that direction when needed.
//!   Messages sent before the connection is up are delivered after it is up.
//! - `close` by one end delivers what that end already sent, then tells the other end.
//! - Partitions come in two kinds. A *loud* partition (`partition`, the default) is what a
//!   firewall rule that rejects with resets does: every connection that crosses it breaks at
//!   once, both live ends are told after one delay, everything in flight is lost. A *silent*
//!   partition (`silent: true`) is what a real network split does: packets are dropped, so
//!   no one is told anything. Connections that cross it stay up; what an end sends across is
//!   held, as TCP keeps retransmitting it, and delivered in order on heal, unless the
//!   receiving end closed the connection in the meantime. A one-way partition from A to B
//!   is silent in the same way, in one direction.
//! - Across a silent cut nothing else gets through either: a FIN (a `close`) is held behind
//!   the data, and an end whose peer process died (crash, kill, halt) learns of it only on
//!   heal, when its retransmissions would meet a reset. Each end learns of a silent cut
//!   only from its own timers (ZooKeeper: syncLimit, pings, the client's read timeout).
//! - TCP gives up on unacknowledged data after `tcp_retransmit_timeout` (Linux: tcp_retries2
//!   = 15, about 15 minutes): a direction that has held a message that long breaks the
//!   connection; the sender is told at once (ETIMEDOUT), the other end on heal.
//! - New connections across either kind of partition fail after `connect_timeout` (the SYN
//!   is swallowed); messages already on the wire when a partition starts still arrive.
//! - Clogging a node adds delay to everything it sends or receives for a while; a delay
//!   spike adds delay to every message for a while.
//!
//! Depends on: node (ids), rng, time.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::node::{ConnId, NodeId};
use crate::sim::rng::Jitter;
use crate::sim::time::Dur;

/// Network options of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetOptions {
    /// Mean one-way delay.
    pub delay_mean: Dur,
    /// Uniform spread around the mean.
    pub delay_jitter: Dur,
    /// No message is faster than this (at least 1ns).
    pub delay_min: Dur,
    /// How long a connection attempt swallowed by a partition takes to fail.
    pub connect_timeout: Dur,
    /// How long TCP retransmits a message held by a silent cut before it breaks the
    /// connection.
    pub tcp_retransmit_timeout: Dur,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            delay_mean: Dur(500_000),
            delay_jitter: Dur(250_000),
            delay_min: Dur(50_000),
            connect_timeout: Dur(200_000_000),
            tcp_retransmit_timeout: Dur(900_000_000_000),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConnState {
    Connecting,
    Up,
}

/// One connection. Index 0 is the initiator, 1 the acceptor; direction d carries messages
/// from `ends[d]` to `ends[1 - d]`.
pub(crate) struct Conn<M> {
    pub ends: [NodeId; 2],
    pub incarnations: [u32; 2],
    pub state: ConnState,
    pub up_at_ns: u64,
    pub last_delivery_ns: [u64; 2],
    /// Held messages with their capture ids.
    pub held: [VecDeque<(u64, M)>; 2],
    /// Since when each direction has held messages (TCP's retransmission clock).
    pub held_since_ns: [Option<u64>; 2],
    /// Each end closed its side (its FIN may still be on its way or held).
    pub closed_by: [bool; 2],
    /// The FIN of that direction is held behind a silent cut.
    pub fin_held: [bool; 2],
}

impl<M> Conn<M> {
    pub fn side_of(&self, node: NodeId) -> Option<usize> {
        if self.ends[0] == node {
            Some(0)
        } else if self.ends[1] == node {
            Some(1)
        } else {
            None
        }
    }
}

pub(crate) struct Network<M> {
    pub n: usize,
    pub options: NetOptions,
    /// The one-way delay's draw, from `options`.
    pub delay: Jitter,
    pub conns: super::conns::ConnTable<Conn<M>>,
    /// `blocked[from * n + to]`: a two-way partition separates the pair.
    pub blocked: Vec<bool>,
    /// `held[from * n + to]`: a one-way partition holds messages from `from` to `to`.
    pub held: Vec<bool>,
    pub clog_until_ns: Vec<u64>,
    pub clog_extra_ns: Vec<u64>,
    pub spike_until_ns: u64,
    pub spike_extra_ns: u64,
    /// Ends to tell on heal that their connection is gone: (node, incarnation, conn, peer).
    pub deferred_downs: Vec<(NodeId, u32, ConnId, NodeId)>,
}

impl<M> Network<M> {
    pub fn new(n: usize, options: NetOptions) -> Self {
        let delay = Jitter::new(
            options.delay_mean.ns(),
            options.delay_jitter.ns(),
            options.delay_min.ns().max(1),
        );
        Network {
            n,
            delay,
            options,
            conns: Default::default(),
            blocked: vec![false; n * n],
            held: vec![false; n * n],
            clog_until_ns: vec![0; n],
            clog_extra_ns: vec![0; n],
            spike_until_ns: 0,
            spike_extra_ns: 0,
            deferred_downs: Vec::new(),
        }
    }

    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked[from.index() * self.n + to.index()]
    }

    pub fn is_held(&self, from: NodeId, to: NodeId) -> bool {
        self.held[from.index() * self.n + to.index()]
    }

    /// True when a silent cut drops packets between the pair in either direction, so that
    /// neither a FIN nor a reset gets through.
    pub fn silently_cut(&self, a: NodeId, b: NodeId) -> bool {
        self.is_held(a, b) || self.is_held(b, a)
    }

    /// True when no partition of either kind separates the pair in either direction.
    pub fn reachable(&self, a: NodeId, b: NodeId) -> bool {
        !(self.is_blocked(a, b)
            || self.is_blocked(b, a)
            || self.is_held(a, b)
            || self.is_held(b, a))
    }

    /// One sampled one-way delay from `from` to `to` at `now_ns`, with clogs and spikes.
    pub fn sample_delay(&self, rng: &mut ChaCha8Rng, now_ns: u64, from: NodeId, to: NodeId) -> u64 {
        sample_delay(
            &self.delay,
            &self.clog_until_ns,
            &self.clog_extra_ns,
            (self.spike_until_ns, self.spike_extra_ns),
            rng,
            now_ns,
            [from, to],
        )
    }

    /// The connections of `node`, in id order.
    pub fn conns_of(&self, node: NodeId) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.side_of(node).is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The connections that a blocked pair now separates, in id order.
    pub fn conns_crossing_blocks(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| {
                self.is_blocked(c.ends[0], c.ends[1]) || self.is_blocked(c.ends[1], c.ends[0])
            })
            .map(|(id, _)| *id)
            .collect()
    }
}

/// [`Network::sample_delay`] over the fields it reads, so that a caller holding a
/// connection of the same network borrowed mutably can still draw a delay.
#[inline]
pub(crate) fn sample_delay(
    delay: &Jitter,
    clog_until_ns: &[u64],
    clog_extra_ns: &[u64],
    (spike_until_ns, spike_extra_ns): (u64, u64),
    rng: &mut ChaCha8Rng,
    now_ns: u64,
    ends: [NodeId; 2],
) -> u64 {
    let mut delay = delay.draw(rng);
    for node in ends {
        if now_ns < clog_until_ns[node.index()] {
            delay += clog_extra_ns[node.index()];
        }
    }
    if now_ns < spike_until_ns {
        delay += spike_extra_ns;
    }
    delay
}
