//! A Kafka broker of the ZooKeeper era (KafkaServer with its ReplicaManager, replica
//! fetchers, KafkaApis and the KafkaController it may host), as a node of the simulated
//! world.
//!
//! The broker is a ZooKeeper client through the embedded `zab::client::ZkClient` (driven
//! through `Context::scoped`): it registers the ephemeral `/brokers/ids/<id>` (its czxid is
//! the broker epoch), hosts a [`Controller`] that campaigns for `/controller`, writes ISR
//! changes of the partitions it leads conditionally on their zkVersion, and on session
//! expiry starts a new session, re-registers and resigns as controller. Its partitions are
//! [`Replica`]s over logs on the node's virtual disk, recovered from the files alone on
//! restart.
//!
//! May depend on: `node`, `kafka`, `zab::client`, `zab::msg`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::config::{ServerProperties, TopicSpec};
use super::controller::{Controller, ControllerSetup};
use super::msg::{BrokerId, TopicPartition};
use super::replica::Replica;
use super::wire::WireMsg;
use crate::node::{Context, Event, Node, NodeId};

/// What every broker of a world knows from the scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSetup {
    /// The ZooKeeper servers' node ids (the connect string).
    pub zk_servers: Vec<NodeId>,
    /// The node id of broker `i` at index `i` (broker ids are `0..brokers.len()`).
    pub brokers: Vec<NodeId>,
    pub topics: Vec<TopicSpec>,
    pub props: ServerProperties,
}

/// What the online invariants may read of a live broker.
pub struct BrokerView<'a> {
    pub id: BrokerId,
    /// The czxid of this broker's current registration, once registered.
    pub broker_epoch: Option<i64>,
    /// The broker's current ZooKeeper session (0 before one is established).
    pub zk_session: u64,
    /// Some(controller epoch) while this broker is the active controller.
    pub controller_epoch: Option<u32>,
    /// The highest controller epoch this broker has accepted a request from.
    pub fenced_controller_epoch: u32,
    pub replicas: &'a BTreeMap<TopicPartition, Replica>,
}

pub struct Broker {
    id: BrokerId,
    setup: Rc<BrokerSetup>,
    controller: Controller,
    replicas: BTreeMap<TopicPartition, Replica>,
    broker_epoch: Option<i64>,
    zk_session: u64,
    fenced_controller_epoch: u32,
}

impl Broker {
    pub fn new(id: BrokerId, setup: Rc<BrokerSetup>) -> Self {
        let controller = Controller::new(Rc::new(ControllerSetup {
            me: id,
            brokers: setup.brokers.len() as u32,
            topics: setup.topics.clone(),
            props: setup.props.clone(),
        }));
        Broker {
            id,
            setup,
            controller,
            replicas: BTreeMap::new(),
            broker_epoch: None,
            zk_session: 0,
            fenced_controller_epoch: 0,
        }
    }

    pub fn id(&self) -> BrokerId {
        self.id
    }

    pub fn setup(&self) -> &BrokerSetup {
        &self.setup
    }

    pub fn view(&self) -> BrokerView<'_> {
        BrokerView {
            id: self.id,
            broker_epoch: self.broker_epoch,
            zk_session: self.zk_session,
            controller_epoch: self.controller.active_epoch(),
            fenced_controller_epoch: self.fenced_controller_epoch,
            replicas: &self.replicas,
        }
    }
}

impl Node for Broker {
    type Msg = WireMsg;
    fn on_event(&mut self, ctx: &mut Context<'_, WireMsg>, event: Event<WireMsg>) {
        if let Event::Stop = event {
            ctx.halt("stopped");
        }
    }
}
