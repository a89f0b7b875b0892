//! Loading the controller context on failover (initializeControllerContext) and what
//! follows it (the replica and partition state machines' start-up).
//!
//! Order, as in KafkaController.onControllerFailover: the registered brokers with their
//! epochs (and a children watch on `/brokers/ids`); the topics' assignments (creating a
//! scenario topic missing from ZooKeeper, as `kafka-topics --create` would have); the ISR
//! change notifications watch (old notifications are deleted unread: every state is read
//! anyway); every partition state. Then UpdateMetadata to every broker, LeaderAndIsr to
//! every live replica, the replicas of dead brokers taken out of their ISRs, new
//! partitions' states created and offline partitions elected.
//!
//! May depend on: `kafka::{config, msg, zkdata}`, `kafka::controller::*`, `zab::msg`,
//! `zab::client`.

use std::collections::{BTreeMap, BTreeSet};

use super::super::config::TopicSpec;
use super::super::msg::{BrokerId, TopicPartition};
use super::super::zkdata::{self, PartitionStateData, TopicAssignment};
use super::brokers::{BrokerLoad, LoadBrokers};
use super::context::LeaderIsr;
use super::core::{Core, Flow, Key};
use super::isr_notify::IsrNotify;
use super::leader_election::Change;
use super::partition_ops::{CreatePartitions, StateUpdate, Targets};
use super::phase::{Phase, Step};
use crate::zab::client::ZkError;
use crate::zab::msg::{ErrCode, Op, OpResult};

/// The phases of onControllerFailover.
pub fn failover_phases() -> Vec<Phase> {
    vec![
        Phase::LoadBrokers(LoadBrokers::new(BrokerLoad::Failover)),
        Phase::LoadTopics(LoadTopics::default()),
        Phase::IsrNotify(IsrNotify::new(true)),
        Phase::LoadStates(LoadStates::new(Targets::All)),
        Phase::Step(Step::FailoverStart),
    ]
}

/// The context is loaded: tell every broker, then fix what the previous controller left.
pub fn failover_start(core: &mut Core) -> Flow<Phase> {
    let ctx = core.ctx();
    let registered = ctx.registered();
    // Brokers must know the live brokers before they act on LeaderAndIsr.
    core.batch.add_update_metadata(&registered, &[]);
    core.flush();
    // ReplicaStateMachine.startup: OnlineReplica for every live replica...
    online_replicas(core, &registered);
    // ...and OfflineReplica for every replica on a broker that is not registered.
    let ctx = core.ctx();
    let dead: BTreeSet<BrokerId> = ctx
        .assignment
        .values()
        .flatten()
        .copied()
        .filter(|&b| !ctx.is_registered(b))
        .collect();
    let mut next: Vec<Phase> = dead
        .into_iter()
        .map(|b| {
            Phase::Update(StateUpdate::new(
                Change::RemoveReplica(b),
                Targets::OnBroker(b),
            ))
        })
        .collect();
    // PartitionStateMachine.startup: new and offline partitions online.
    next.extend(bring_online(core));
    Flow::Then(next)
}

/// `triggerOnlinePartitionStateChange`: create the states of new partitions, elect leaders
/// for offline ones.
pub fn bring_online(core: &Core) -> Vec<Phase> {
    let unclean = core.setup.props.unclean_leader_election_enable;
    vec![
        Phase::Create(CreatePartitions::default()),
        Phase::Update(StateUpdate::new(
            Change::Offline { unclean },
            Targets::Offline,
        )),
    ]
}

/// LeaderAndIsr with the cached state to each of `brokers` for each of its partitions
/// that has a state (ReplicaStateMachine's transition to OnlineReplica).
pub fn online_replicas(core: &mut Core, brokers: &[BrokerId]) {
    for &b in brokers {
        let ctx = core.ctx.as_ref().expect("active");
        for tp in ctx.partitions_on(b) {
            if ctx.leadership.contains_key(&tp) {
                core.batch.add_leader_and_isr(ctx, &[b], &tp);
            }
        }
    }
    core.flush();
}

/// Reads the assignment of every topic, creating the scenario's missing topics.
#[derive(Clone, Debug, Default)]
pub struct LoadTopics {
    outstanding: BTreeSet<String>,
}

impl LoadTopics {
    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        let op = Op::GetChildren {
            path: zkdata::TOPICS.into(),
            watch: false,
        };
        core.submit(Key::Topics, op);
        self.outstanding.insert(String::new());
        Flow::Wait
    }

    pub fn on_result(
        &mut self,
        core: &mut Core,
        key: Key,
        result: Result<OpResult, ZkError>,
    ) -> Flow<Phase> {
        match (key, result) {
            (Key::Topics, r) => {
                self.outstanding.remove("");
                let names = match r {
                    Ok(OpResult::Children(names)) => names,
                    _ => Vec::new(),
                };
                self.list(core, &names);
            }
            (Key::TopicCreate(t), Ok(_) | Err(ZkError::Server(ErrCode::NodeExists))) => {
                read_topic(core, &t);
            }
            // `/brokers/topics` is not there yet (the brokers' own start-up creates of the
            // top-level paths were lost with a ZooKeeper leader change, or are still on
            // their way): the admin's `createTopicAssignment` goes through
            // KafkaZkClient.createRecursive, which creates the missing parents and then
            // the topic. Dropping the topic instead left it uncreated until the next
            // controller failover, for good in a run without one (kafka-nemesis seeds
            // 1393, 1575, 1835).
            (Key::TopicCreate(t), Err(ZkError::Server(ErrCode::NoNode))) => {
                create_recursive(core, &t);
            }
            (Key::TopicCreate(t), Err(_)) => {
                self.outstanding.remove(&t);
            }
            (Key::TopicData(t), r) => {
                self.outstanding.remove(&t);
                if let Ok(OpResult::Data { data, .. }) = r {
                    add_assignment(core, &t, &data);
                }
            }
            _ => {}
        }
        if self.outstanding.is_empty() {
            Flow::Done
        } else {
            Flow::Wait
        }
    }

    fn list(&mut self, core: &mut Core, names: &[String]) {
        let brokers = core.setup.brokers;
        let missing: Vec<_> = core
            .setup
            .topics
            .iter()
            .filter(|t| !names.contains(&t.name))
            .cloned()
            .collect();
        for spec in missing {
            create_topic(core, &spec, brokers);
            self.outstanding.insert(spec.name);
        }
        for t in names {
            read_topic(core, t);
            self.outstanding.insert(t.clone());
        }
    }
}

/// The parents of the topic's znode, then the topic again. One session applies its
/// requests in order, so each create finds its parent; a parent that exists fails with
/// NODEEXISTS, which is ignored (its key belongs to no phase).
fn create_recursive(core: &mut Core, topic: &str) {
    for parent in [zkdata::BROKERS, zkdata::TOPICS] {
        let op = Op::Create {
            path: parent.into(),
            data: Vec::new(),
            ephemeral: false,
            sequential: false,
        };
        core.submit(Key::PathCreate(parent.into()), op);
    }
    if let Some(spec) = core.setup.topics.iter().find(|t| t.name == topic).cloned() {
        create_topic(core, &spec, core.setup.brokers);
    }
}

/// An admin write (AdminZkClient.createTopic), not a controller one: unchecked.
fn create_topic(core: &mut Core, spec: &TopicSpec, brokers: u32) {
    let assignment = TopicAssignment::new(&spec.assignment(brokers));
    let op = Op::Create {
        path: zkdata::topic_path(&spec.name),
        data: zkdata::encode(&assignment),
        ephemeral: false,
        sequential: false,
    };
    core.submit(Key::TopicCreate(spec.name.clone()), op);
}

fn read_topic(core: &mut Core, topic: &str) {
    let op = Op::GetData {
        path: zkdata::topic_path(topic),
        watch: false,
    };
    core.submit(Key::TopicData(topic.to_string()), op);
}

fn add_assignment(core: &mut Core, topic: &str, data: &[u8]) {
    let Some(replicas) = zkdata::decode::<TopicAssignment>(data).and_then(|a| a.replicas()) else {
        return;
    };
    let ctx = core.ctx_mut();
    for (p, ar) in replicas {
        ctx.assignment.insert(TopicPartition::new(topic, p), ar);
    }
}

/// Reads partition states into the cache (updateLeaderAndIsrCache).
#[derive(Clone, Debug)]
pub struct LoadStates {
    targets: Targets,
    outstanding: BTreeSet<TopicPartition>,
}

impl LoadStates {
    pub fn new(targets: Targets) -> Self {
        LoadStates {
            targets,
            outstanding: BTreeSet::new(),
        }
    }

    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        for tp in self.targets.resolve(core.ctx()) {
            read_state(core, &tp);
            self.outstanding.insert(tp);
        }
        self.done()
    }

    pub fn on_result(
        &mut self,
        core: &mut Core,
        key: Key,
        result: Result<OpResult, ZkError>,
    ) -> Flow<Phase> {
        if let Key::StateRead(tp) = key {
            self.outstanding.remove(&tp);
            cache_state(core, &tp, &result);
        }
        self.done()
    }

    fn done(&self) -> Flow<Phase> {
        if self.outstanding.is_empty() {
            Flow::Done
        } else {
            Flow::Wait
        }
    }
}

pub fn read_state(core: &mut Core, tp: &TopicPartition) {
    let op = Op::GetData {
        path: zkdata::partition_state_path(tp),
        watch: false,
    };
    core.submit(Key::StateRead(tp.clone()), op);
}

/// Caches a read partition state; returns it.
pub fn cache_state(
    core: &mut Core,
    tp: &TopicPartition,
    result: &Result<OpResult, ZkError>,
) -> Option<LeaderIsr> {
    let Ok(OpResult::Data { data, stat }) = result else {
        return None;
    };
    let state = zkdata::decode::<PartitionStateData>(data)?;
    let li = LeaderIsr::from_znode(&state, stat.version);
    core.ctx_mut().leadership.insert(tp.clone(), li.clone());
    Some(li)
}

/// Broker epochs read from `/brokers/ids` children.
pub type Epochs = BTreeMap<BrokerId, i64>;
