//! The Kafka system: a ZooKeeper ensemble (`zk0..`, the same ZAB servers with their own
//! online invariants), brokers (`kafka0..`) and workload clients (producers `p0..`,
//! consumers `c0..`) in one world, laid out as `scenario::kafka` describes.
//!
//! This module holds the wiring: the node enum (a ZooKeeper server speaks
//! `zab::msg::Msg`; it is wrapped so that every node of the world speaks
//! [`WireMsg`]), the factory, roles and fault targets, and the [`System`] impl that ties the
//! parts together:
//! - `monitor`: the Kafka invariants judged online after every event (reference B.9);
//! - `history`: client records -> `check::History`, and the end-of-run checks;
//! - `liveness`: the healed phase's goals (k-convergence and the ensemble's own);
//! - the brokers' ZooKeeper histories (their controllers' operations included) go through
//!   the ZooKeeper world's end-of-run checks (`zk::checks`).
//!
//! Depends on: kafka, zab, node, sim, scenario, check, cluster.

pub mod history;
pub mod liveness;
mod log_clean;
pub mod moments;
pub mod monitor;

use std::cell::RefCell;
use std::rc::Rc;

use super::capture::{self, ClientOp, Role, Witness};
use super::zk::checks::{self as zk_checks, ZkChecks};
use super::zk::monitor::Monitor as ZabMonitor;
use super::zk::{server, ZabHost};
use super::{KnownBehaviour, System, Violation};
use crate::kafka::broker::{Broker, BrokerSetup};
use crate::kafka::client::consumer::Consumer;
use crate::kafka::client::producer::Producer;
use crate::kafka::client::ClientSetup;
use crate::kafka::msg::TopicPartition;
use crate::kafka::wire::WireMsg;
use crate::node::{Context, Event, Node, NodeId};
use crate::scenario::KafkaSpec;
use crate::sim::Sim;
use crate::zab::msg::PeerState;
use crate::zab::record::{Record, Recorder};
use crate::zab::ZabServer;

use history::{Allowances, ClientHistory, KafkaChecks, LossCause, ReplicaEnd};
use liveness::Convergence;
use monitor::KafkaMonitor;

/// A node type of a world that holds Kafka brokers and clients (beside ZooKeeper servers):
/// lets the monitor, the history checks and the liveness goals find them.
pub trait KafkaHost: ZabHost {
    fn broker(&self) -> Option<&Broker>;
    fn producer(&self) -> Option<&Producer>;
    fn consumer(&self) -> Option<&Consumer>;
}

/// A node of the Kafka world.
pub enum KafkaNode {
    Zk(Box<ZabServer>),
    Broker(Box<Broker>),
    Producer(Box<Producer>),
    Consumer(Box<Consumer>),
}

impl Node for KafkaNode {
    type Msg = WireMsg;
    fn on_event(&mut self, ctx: &mut Context<'_, WireMsg>, event: Event<WireMsg>) {
        match self {
            KafkaNode::Zk(s) => {
                // A ZooKeeper server only speaks ZooKeeper's protocol; a Kafka message on a
                // connection to it would be garbage to a real server, and is dropped.
                if let Some(event) = event.map_msg(WireMsg::into_zk) {
                    ctx.scoped(|inner| s.on_event(inner, event));
                }
            }
            KafkaNode::Broker(b) => b.on_event(ctx, event),
            KafkaNode::Producer(p) => p.on_event(ctx, event),
            KafkaNode::Consumer(c) => c.on_event(ctx, event),
        }
    }
}

impl ZabHost for KafkaNode {
    fn zab_server(&self) -> Option<&ZabServer> {
        match self {
            KafkaNode::Zk(s) => Some(s),
            _ => None,
        }
    }
}

impl KafkaHost for KafkaNode {
    fn broker(&self) -> Option<&Broker> {
        match self {
            KafkaNode::Broker(b) => Some(b),
            _ => None,
        }
    }
    fn producer(&self) -> Option<&Producer> {
        match self {
            KafkaNode::Producer(p) => Some(p),
            _ => None,
        }
    }
    fn consumer(&self) -> Option<&Consumer> {
        match self {
            KafkaNode::Consumer(c) => Some(c),
            _ => None,
        }
    }
}

/// Node ids of each part of the world (the layout of `scenario::kafka`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub zk: Vec<NodeId>,
    pub brokers: Vec<NodeId>,
    pub producers: Vec<NodeId>,
    pub consumers: Vec<NodeId>,
}

impl Layout {
    pub fn new(spec: &KafkaSpec) -> Layout {
        let mut next = 0u32;
        let mut take = |n: u32| {
            let ids = (next..next + n).map(NodeId).collect();
            next += n;
            ids
        };
        Layout {
            zk: take(spec.zookeeper.servers),
            brokers: take(spec.brokers),
            producers: take(spec.producer.count),
            consumers: take(spec.consumer.count),
        }
    }
}

/// Every partition of the scenario's topics with its assigned replicas, in order.
pub fn partitions(spec: &KafkaSpec) -> Vec<(TopicPartition, Vec<u32>)> {
    spec.topics
        .iter()
        .flat_map(|t| {
            t.assignment(spec.brokers)
                .into_iter()
                .map(|(p, replicas)| (TopicPartition::new(&t.name, p), replicas))
        })
        .collect()
}

pub struct KafkaSystem {
    spec: KafkaSpec,
    layout: Layout,
    broker_setup: Rc<BrokerSetup>,
    client_setup: Rc<ClientSetup>,
    zab_mon: ZabMonitor,
    kafka_mon: KafkaMonitor,
    convergence: Convergence,
    /// Each broker's ZooKeeper history (its controller's operations included), kept here so
    /// that it outlives the broker's incarnations.
    zk_histories: Vec<Rc<RefCell<Recorder>>>,
    /// What the end-of-run checks found (after `finish`).
    checks: Option<KafkaChecks>,
    /// What the ZooKeeper checks found on the brokers' histories (after `finish`).
    zk_checks: Option<ZkChecks>,
}

impl KafkaSystem {
    pub fn new(spec: &KafkaSpec) -> Self {
        let layout = Layout::new(spec);
        let broker_setup = Rc::new(BrokerSetup {
            zk_servers: layout.zk.clone(),
            brokers: layout.brokers.clone(),
            topics: spec.topics.clone(),
            props: spec.server_properties.clone(),
        });
        let client_setup = Rc::new(ClientSetup {
            brokers: layout.brokers.clone(),
            topics: spec.topics.clone(),
            producer: spec.producer.config.clone(),
            consumer: spec.consumer.config.clone(),
            produce_rate: spec.producer.rate,
            keys: spec.producer.keys,
            poll_rate: spec.consumer.rate,
        });
        KafkaSystem {
            zab_mon: ZabMonitor::new(spec.zookeeper.servers as usize),
            kafka_mon: KafkaMonitor::new(&spec.topics, spec.server_properties.min_insync_replicas)
                .with_flush_each(spec.server_properties.log_flush_interval_messages <= 1),
            convergence: Convergence::new(spec, &layout),
            spec: spec.clone(),
            layout,
            broker_setup,
            client_setup,
            zk_histories: (0..spec.brokers).map(|_| Rc::default()).collect(),
            checks: None,
            zk_checks: None,
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Live brokers, with their broker id.
    fn live_brokers<'a>(
        &'a self,
        sim: &'a Sim<KafkaNode>,
    ) -> impl Iterator<Item = (NodeId, &'a Broker)> + 'a {
        self.layout
            .brokers
            .iter()
            .filter_map(|id| Some((*id, sim.node(*id)?.broker()?)))
    }

    /// The live broker(s) acting as controller with the highest controller epoch (a zombie
    /// controller with an older epoch is not "the controller").
    fn controllers(&self, sim: &Sim<KafkaNode>) -> Vec<NodeId> {
        let active: Vec<(NodeId, u32)> = self
            .live_brokers(sim)
            .filter_map(|(id, b)| Some((id, b.view().controller_epoch?)))
            .collect();
        let top = active.iter().map(|(_, e)| *e).max();
        active
            .into_iter()
            .filter(|(_, e)| Some(*e) == top)
            .map(|(id, _)| id)
            .collect()
    }

    /// The established ZooKeeper leader(s) with the highest epoch.
    fn zk_leaders(&self, sim: &Sim<KafkaNode>) -> Vec<NodeId> {
        let leading: Vec<(NodeId, u32)> = self
            .layout
            .zk
            .iter()
            .filter_map(|id| Some((*id, server(sim, *id)?.view().established_epoch?)))
            .collect();
        let top = leading.iter().map(|(_, e)| *e).max();
        leading
            .into_iter()
            .filter(|(_, e)| Some(*e) == top)
            .map(|(id, _)| id)
            .collect()
    }

    /// The live broker(s) leading `tp` in the highest leader epoch any live replica leads.
    fn partition_leaders(&self, sim: &Sim<KafkaNode>, tp: &TopicPartition) -> Vec<NodeId> {
        let leading: Vec<(NodeId, u32)> = self
            .live_brokers(sim)
            .filter_map(|(id, b)| {
                let r = b.view().replicas.get(tp)?;
                r.is_leader().then_some((id, r.leader_epoch()?))
            })
            .collect();
        let top = leading.iter().map(|(_, e)| *e).max();
        leading
            .into_iter()
            .filter(|(_, e)| Some(*e) == top)
            .map(|(id, _)| id)
            .collect()
    }

    /// Runs the ZooKeeper world's end-of-run checks on the brokers' ZooKeeper histories
    /// (`zk-session-order`, `zk-acked-write-durable`, `zk-sync-read`, `zk-history`).
    fn check_broker_zk_histories(&self, sim: &Sim<KafkaNode>) -> ZkChecks {
        let servers = self.layout.zk.len() as u32;
        self.with_broker_zk_records(|h| zk_checks::check_clients(sim, &self.zab_mon, servers, h))
    }

    /// Calls `f` with each broker's recorded ZooKeeper operations.
    fn with_broker_zk_records<R>(&self, f: impl FnOnce(&[(NodeId, &[Record])]) -> R) -> R {
        let recorders: Vec<_> = self.zk_histories.iter().map(|r| r.borrow()).collect();
        let histories: Vec<(NodeId, &[Record])> = (self.layout.brokers.iter())
            .zip(&recorders)
            .map(|(id, r)| (*id, r.records()))
            .collect();
        f(&histories)
    }

    /// Every client's records, producers first, each with its process number.
    fn client_histories<'a>(&self, sim: &'a Sim<KafkaNode>) -> Vec<ClientHistory<'a>> {
        let producers = self
            .layout
            .producers
            .iter()
            .filter_map(|id| Some((*id, sim.node(*id)?.producer()?.history())));
        let consumers = self
            .layout
            .consumers
            .iter()
            .filter_map(|id| Some((*id, sim.node(*id)?.consumer()?.history())));
        producers
            .chain(consumers)
            .enumerate()
            .map(|(process, (node, records))| ClientHistory {
                process: process as u64,
                node,
                records,
            })
            .collect()
    }

    /// The replicas k-convergence excused, in words with the setting that allows it.
    fn left_behind_summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (tp, brokers) in self.kafka_mon.left_behind() {
            for (b, why) in brokers {
                out.push(format!(
                    "{tp}: kafka{b} {why}: not required to converge, allowed by \
                     log.flush.interval.messages/ms unset (a same-epoch re-appointment of a \
                     leader that lost unflushed records, KIP-966)"
                ));
            }
        }
        out
    }

    /// The monitor's record of what permits losses, per partition. Only elections that
    /// actually put a leader without every committed record in office count (an unclean
    /// one, or a clean one whose leader lost unflushed records to a power loss); a replica
    /// that lost data but never led while lacking it permits nothing.
    fn loss_causes(&self) -> std::collections::BTreeMap<TopicPartition, Vec<LossCause>> {
        let mut out: std::collections::BTreeMap<TopicPartition, Vec<LossCause>> =
            Default::default();
        for u in self.kafka_mon.unclean_elections() {
            out.entry(u.tp.clone())
                .or_default()
                .push(LossCause::UncleanElection {
                    at_ns: u.at_ns,
                    leader: u.leader,
                    leader_epoch: u.leader_epoch,
                });
        }
        for e in self.kafka_mon.lossy_elections() {
            let cause = if e.unclean {
                LossCause::UncleanElection {
                    at_ns: e.at_ns,
                    leader: e.leader,
                    leader_epoch: e.leader_epoch,
                }
            } else if e.again {
                LossCause::SameEpochReappointment {
                    at_ns: e.at_ns,
                    leader: e.leader,
                    leader_epoch: e.leader_epoch,
                }
            } else {
                LossCause::PowerLoss {
                    at_ns: e.at_ns,
                    brokers: vec![e.leader],
                }
            };
            out.entry(e.tp.clone()).or_default().push(cause);
        }
        out
    }

    fn broker_role(&self, b: &Broker) -> Role {
        let v = b.view();
        let led: Vec<String> = v
            .replicas
            .iter()
            .filter(|(_, r)| r.is_leader())
            .map(|(tp, _)| tp.to_string())
            .collect();
        let mut name = match v.controller_epoch {
            Some(_) => "CONTROLLER".to_string(),
            None if led.is_empty() => "BROKER".to_string(),
            None => "LEADER".to_string(),
        };
        if !led.is_empty() {
            name = format!("{name} {}", led.join(","));
        }
        let top_leader_epoch = v
            .replicas
            .values()
            .filter(|r| r.is_leader())
            .filter_map(|r| r.leader_epoch())
            .max();
        let epoch = v.controller_epoch.or(top_leader_epoch).unwrap_or(0);
        Role {
            name,
            epoch: u64::from(epoch),
        }
    }
}

impl System for KafkaSystem {
    type Node = KafkaNode;
    type Msg = WireMsg;

    fn names(&self) -> Vec<String> {
        self.spec.node_names()
    }

    fn factory(&self) -> Box<dyn FnMut(NodeId) -> KafkaNode> {
        let layout = self.layout.clone();
        let zab_cfg = self.spec.zookeeper.zoo_cfg.clone();
        let brokers = Rc::clone(&self.broker_setup);
        let zk_histories = self.zk_histories.clone();
        let clients = Rc::clone(&self.client_setup);
        Box::new(move |id| {
            let index_in = |ids: &[NodeId]| ids.iter().position(|x| *x == id).map(|i| i as u32);
            if index_in(&layout.zk).is_some() {
                KafkaNode::Zk(Box::new(ZabServer::new(id, &layout.zk, zab_cfg.clone())))
            } else if let Some(i) = index_in(&layout.brokers) {
                let broker = Broker::new(i, Rc::clone(&brokers))
                    .recording_zk_into(Rc::clone(&zk_histories[i as usize]));
                KafkaNode::Broker(Box::new(broker))
            } else if let Some(i) = index_in(&layout.producers) {
                KafkaNode::Producer(Box::new(Producer::new(i, Rc::clone(&clients))))
            } else {
                let i = index_in(&layout.consumers).expect("every node id has a part");
                KafkaNode::Consumer(Box::new(Consumer::new(i, Rc::clone(&clients))))
            }
        })
    }

    fn resolve_role(&self, role: &str, sim: &Sim<KafkaNode>) -> Vec<NodeId> {
        if let Some(ids) = self.resolve_moment(role, sim) {
            return ids;
        }
        let up = |ids: &[NodeId]| ids.iter().copied().filter(|id| sim.is_up(*id)).collect();
        match role {
            "@broker" => up(&self.layout.brokers),
            "@zk" => up(&self.layout.zk),
            "@controller" => self.controllers(sim),
            "@zk-leader" => self.zk_leaders(sim),
            _ => match self.spec.partition_of_role(role) {
                Some((topic, p)) => self.partition_leaders(sim, &TopicPartition::new(&topic, p)),
                None => Vec::new(),
            },
        }
    }

    fn fault_targets(&self) -> Vec<NodeId> {
        let mut targets = self.layout.zk.clone();
        targets.extend(&self.layout.brokers);
        targets
    }

    fn after_event(&mut self, sim: &Sim<KafkaNode>, node: NodeId) -> Vec<Violation> {
        // The ensemble's own invariants first: a broken ZooKeeper explains a broken Kafka.
        if self.layout.zk.contains(&node) {
            let found = self.zab_mon.check(sim, node);
            if !found.is_empty() {
                return found;
            }
        }
        if self.layout.consumers.contains(&node) {
            return Vec::new();
        }
        self.kafka_mon.check(sim, node)
    }

    fn begin_liveness(&mut self, sim: &Sim<KafkaNode>) {
        self.convergence.begin(sim);
    }

    fn pending(&mut self, sim: &Sim<KafkaNode>) -> Option<String> {
        let left_behind = self.kafka_mon.left_behind();
        let restarts = self.kafka_mon.history_restarts();
        self.convergence.pending(sim, &left_behind, &restarts)
    }

    fn liveness_invariant(&self) -> &'static str {
        "k-convergence"
    }

    fn explain_liveness(&mut self, sim: &Sim<KafkaNode>, v: &Violation) -> Option<KnownBehaviour> {
        self.convergence.explain(sim, v)
    }

    fn finish(&mut self, sim: &Sim<KafkaNode>) -> Vec<Violation> {
        self.convergence.scan(sim);
        let clients = self.client_histories(sim);
        let finals: Vec<ReplicaEnd> = self
            .live_brokers(sim)
            .flat_map(|(_, b)| {
                b.view()
                    .replicas
                    .values()
                    .map(ReplicaEnd::of)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut allow = Allowances::from_producer(&self.spec.producer.config);
        allow.losses = self.loss_causes();
        let checks = history::check_run(sim.now(), &clients, &finals, &allow);
        // The ensemble's own checks first: a broken ZooKeeper explains a broken Kafka.
        let zk = self.check_broker_zk_histories(sim);
        let mut found = zk.violations.clone();
        found.extend(checks.violations.iter().cloned());
        self.checks = Some(checks);
        self.zk_checks = Some(zk);
        found
    }

    fn client_ops(&self, sim: &Sim<KafkaNode>) -> Vec<ClientOp> {
        let clients = self.client_histories(sim);
        let nodes: Vec<u32> = clients.iter().map(|c| c.node.0).collect();
        let history = history::to_check_history(&clients);
        let mut ops =
            capture::client_ops(&history, &|p| nodes.get(p as usize).copied().unwrap_or(0));
        // The brokers' own ZooKeeper operations, on the broker lanes: a broker ZooKeeper
        // violation's witness names a znode, and the diagram draws the ops on it.
        let servers = self.layout.zk.len() as u32;
        ops.extend(
            self.with_broker_zk_records(|h| zk_checks::client_ops(&self.zab_mon, servers, h)),
        );
        ops.sort_by_key(|o| (o.invoke_ns, o.node));
        ops
    }

    fn witness(&self) -> Option<Witness> {
        let zk = self.zk_checks.as_ref().and_then(|c| c.witness.clone());
        zk.or_else(|| self.checks.as_ref()?.witness.clone())
    }

    fn role(&self, sim: &Sim<KafkaNode>, node: NodeId) -> Option<Role> {
        if let Some(b) = sim.node(node)?.broker() {
            return Some(self.broker_role(b));
        }
        let v = server(sim, node)?.view();
        let name = match v.state {
            PeerState::Looking => "LOOKING",
            PeerState::Following => "FOLLOWING",
            PeerState::Leading => "LEADING",
        };
        Some(Role {
            name: name.to_string(),
            epoch: u64::from(v.current_epoch),
        })
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "zk_leaders_established": self.zab_mon.elections(),
            "zk_committed_txns": self.zab_mon.committed().len(),
            "partition_leaders_elected": self.kafka_mon.elections(),
            "committed_records": self.kafka_mon.committed_records(),
            "unclean_elections": self.kafka_mon.unclean_elections().len(),
            "lossy_elections": self.kafka_mon.lossy_elections().len(),
            "replica_data_losses": self.kafka_mon.data_losses().len(),
            // Allowed by log.flush.interval.* unset (KIP-966): followers forked, and
            // replicas the healed phase did not require back (see `left_behind`).
            "forked_replicas": self.kafka_mon.allowed_losses().forked_replicas.iter().map(|f| {
                format!(
                    "{}: kafka{} forked from offset {} in leader epoch {} at {} ns",
                    f.tp, f.broker, f.from_offset, f.leader_epoch, f.at_ns
                )
            }).collect::<Vec<_>>(),
            // Allowed by the same setting: a producer's sequence broken, or a send's value
            // repeated, in a forked log where it passes from the abandoned history to the
            // new one.
            "forked_sequences": self.kafka_mon.allowed_losses().forked_sequences.iter().map(|f| {
                format!(
                    "{}: kafka{} producer {} at offset {}: {} across the fork junction at \
                     offset {} (k-idempotence and k-dense not judged across it; allowed by \
                     log.flush.interval.messages/ms unset, KIP-966) at {} ns",
                    f.tp, f.broker, f.producer_id, f.offset, f.why, f.junction, f.at_ns
                )
            }).collect::<Vec<_>>(),
            "left_behind": self.left_behind_summary(),
            "sends": self.convergence.sends(),
            "polls": self.convergence.polls(),
            "history": self.checks.as_ref().map(KafkaChecks::summary),
            "broker_zk_history": self.zk_checks.as_ref().map(ZkChecks::summary),
        })
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod zk_history_tests;
