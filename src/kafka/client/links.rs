//! A client's connections to brokers (the Java client's `NetworkClient` with its
//! `InFlightRequests` and `ClusterConnectionStates`): at most one connection per broker,
//! correlation ids, a cap on requests in flight per connection, request timeouts and a
//! reconnect backoff.
//!
//! A request that times out closes its connection and fails every request in flight on
//! it, as `NetworkClient.handleTimedOutRequests` does: with responses in order on a
//! connection, a later request cannot be answered before the stuck one. A broken
//! connection fails its requests the same way. The owner learns of each failed request by
//! its payload `T` (what it asked), and decides what the failure means.
//!
//! May depend on: `node`, `kafka::msg`, `kafka::wire`.

use std::collections::BTreeMap;

use super::super::msg::{KafkaMsg, Request};
use super::super::wire::WireMsg;
use crate::node::{ConnId, Context, NodeId};

/// Kafka's `reconnect.backoff.ms` default.
pub const RECONNECT_BACKOFF_NS: u64 = 50_000_000;

/// A request waiting for its response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight<T> {
    pub payload: T,
    pub deadline_ns: u64,
}

#[derive(Clone, Debug)]
enum State {
    Connecting(ConnId),
    Up(ConnId),
    /// Broken or closed; no new attempt before `retry_at_ns`.
    Down {
        retry_at_ns: u64,
    },
}

#[derive(Clone, Debug)]
struct Link<T> {
    state: State,
    in_flight: BTreeMap<u64, InFlight<T>>,
}

/// Every connection of one client.
#[derive(Clone, Debug)]
pub struct Links<T> {
    links: BTreeMap<NodeId, Link<T>>,
    next_correlation: u64,
}

impl<T> Default for Links<T> {
    fn default() -> Self {
        Links {
            links: BTreeMap::new(),
            next_correlation: 0,
        }
    }
}

impl<T> Links<T> {
    /// Whether a request may go to `node` now: connected with fewer than `max_in_flight`
    /// requests outstanding. Starts a connection (after the reconnect backoff) when there
    /// is none, as `NetworkClient.ready` does.
    pub fn ready(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        node: NodeId,
        max_in_flight: usize,
    ) -> bool {
        let now = ctx.now();
        let link = self.links.entry(node).or_insert(Link {
            state: State::Down { retry_at_ns: 0 },
            in_flight: BTreeMap::new(),
        });
        match link.state {
            State::Up(_) => link.in_flight.len() < max_in_flight,
            State::Connecting(_) => false,
            State::Down { retry_at_ns } => {
                if retry_at_ns <= now {
                    link.state = State::Connecting(ctx.connect(node));
                }
                false
            }
        }
    }

    /// Whether `node` is connected (whatever its requests in flight).
    pub fn is_up(&self, node: NodeId) -> bool {
        matches!(self.links.get(&node).map(|l| &l.state), Some(State::Up(_)))
    }

    /// The connected node with the fewest requests in flight (`leastLoadedNode`), if any.
    pub fn least_loaded(&self) -> Option<NodeId> {
        self.links
            .iter()
            .filter(|(_, l)| matches!(l.state, State::Up(_)))
            .min_by_key(|(n, l)| (l.in_flight.len(), **n))
            .map(|(n, _)| *n)
    }

    /// Requests in flight to `node`.
    pub fn in_flight(&self, node: NodeId) -> usize {
        self.links.get(&node).map_or(0, |l| l.in_flight.len())
    }

    /// Whether any request is in flight anywhere, or a connection is being made.
    pub fn busy(&self) -> bool {
        self.links
            .values()
            .any(|l| !l.in_flight.is_empty() || matches!(l.state, State::Connecting(_)))
    }

    /// Sends a request that expects a response on a connected `node`; returns its
    /// correlation id.
    pub fn send(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        node: NodeId,
        body: Request,
        payload: T,
        timeout_ns: u64,
    ) -> u64 {
        let correlation_id = self.write(ctx, node, body);
        let deadline_ns = ctx.now() + timeout_ns;
        let link = self.links.get_mut(&node).expect("a link to a ready node");
        link.in_flight.insert(
            correlation_id,
            InFlight {
                payload,
                deadline_ns,
            },
        );
        correlation_id
    }

    /// Sends a request that gets no response (an acks=0 produce).
    pub fn send_one_way(&mut self, ctx: &mut Context<'_, WireMsg>, node: NodeId, body: Request) {
        self.write(ctx, node, body);
    }

    fn write(&mut self, ctx: &mut Context<'_, WireMsg>, node: NodeId, body: Request) -> u64 {
        let link = self.links.get(&node).expect("a link to a ready node");
        let State::Up(conn) = link.state else {
            panic!("send to {node} without a connection");
        };
        self.next_correlation += 1;
        let correlation_id = self.next_correlation;
        ctx.send(
            conn,
            WireMsg::Kafka(KafkaMsg::Request {
                correlation_id,
                body,
            }),
        );
        correlation_id
    }

    /// A connection came up.
    pub fn on_up(&mut self, conn: ConnId) {
        for link in self.links.values_mut() {
            if matches!(link.state, State::Connecting(c) if c == conn) {
                link.state = State::Up(conn);
            }
        }
    }

    /// A connection broke (or could not be made): its requests fail.
    pub fn on_down(&mut self, conn: ConnId, now_ns: u64) -> Vec<T> {
        let mut failed = Vec::new();
        for link in self.links.values_mut() {
            if matches!(link.state, State::Connecting(c) | State::Up(c) if c == conn) {
                link.state = State::Down {
                    retry_at_ns: now_ns + RECONNECT_BACKOFF_NS,
                };
                failed.extend(
                    std::mem::take(&mut link.in_flight)
                        .into_values()
                        .map(|f| f.payload),
                );
            }
        }
        failed
    }

    /// The request a response on `conn` answers (None: unknown, or its connection is gone).
    pub fn on_response(&mut self, conn: ConnId, correlation_id: u64) -> Option<T> {
        let link = self
            .links
            .values_mut()
            .find(|l| matches!(l.state, State::Up(c) if c == conn))?;
        link.in_flight.remove(&correlation_id).map(|f| f.payload)
    }

    /// Closes every connection with a request past its deadline and fails its requests.
    pub fn expire(&mut self, ctx: &mut Context<'_, WireMsg>) -> Vec<T> {
        let now = ctx.now();
        let mut failed = Vec::new();
        for link in self.links.values_mut() {
            let late = link.in_flight.values().any(|f| f.deadline_ns <= now);
            if let (true, State::Up(conn)) = (late, &link.state) {
                ctx.close(*conn);
                link.state = State::Down {
                    retry_at_ns: now + RECONNECT_BACKOFF_NS,
                };
                failed.extend(
                    std::mem::take(&mut link.in_flight)
                        .into_values()
                        .map(|f| f.payload),
                );
            }
        }
        failed
    }
}
