//! The controller's work as a sequence of phases. Kafka's controller handles one event at a
//! time on its event thread, each with blocking ZooKeeper calls; here an event becomes a
//! list of phases run one after the other, each waiting for its own ZooKeeper results, so
//! events stay serialised exactly as on the event thread while nothing blocks.
//!
//! May depend on: `kafka::msg`, `kafka::controller::*`, `zab::msg`, `zab::client`.

use super::super::msg::{BrokerId, ErrorCode, Response, TopicPartition};
use super::brokers::{self, LoadBrokers};
use super::core::{Core, Flow, Key};
use super::election::Campaign;
use super::isr_notify::{DeleteNotifications, IsrNotify};
use super::load::{self, LoadStates, LoadTopics};
use super::partition_ops::{CreatePartitions, StateUpdate};
use super::shutdown;
use super::ControllerOut;
use crate::zab::client::ZkError;
use crate::zab::msg::{Op, OpResult};

/// A step without ZooKeeper operations: it decides and sends at once.
#[derive(Clone, Debug)]
pub enum Step {
    /// After the context is loaded on failover: metadata to everyone, LeaderAndIsr to every
    /// live replica, then the offline replicas and partitions.
    FailoverStart,
    /// Brokers registered (or re-registered with a new epoch).
    BrokerStartup(Vec<(BrokerId, i64)>),
    /// Brokers gone (or re-registered: their old incarnation is gone).
    BrokerFailure(Vec<BrokerId>),
    /// UpdateMetadata to every registered broker naming `partitions` (maybe none).
    UpdateMetadata(Vec<TopicPartition>),
    ShutdownStart {
        token: u64,
        broker: BrokerId,
        broker_epoch: i64,
    },
    ShutdownReply {
        token: u64,
        broker: BrokerId,
    },
}

#[derive(Clone, Debug)]
pub enum Phase {
    Campaign(Campaign),
    LoadBrokers(LoadBrokers),
    LoadTopics(LoadTopics),
    LoadStates(LoadStates),
    Update(StateUpdate),
    Create(CreatePartitions),
    IsrNotify(IsrNotify),
    DeleteNotifications(DeleteNotifications),
    Step(Step),
}

impl Phase {
    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        match self {
            Phase::Campaign(p) => p.start(core),
            Phase::LoadBrokers(p) => p.start(core),
            Phase::LoadTopics(p) => p.start(core),
            Phase::LoadStates(p) => p.start(core),
            Phase::Update(p) => p.start(core),
            Phase::Create(p) => p.start(core),
            Phase::IsrNotify(p) => p.start(core),
            Phase::DeleteNotifications(p) => p.start(core),
            Phase::Step(s) => run_step(s.clone(), core),
        }
    }

    pub fn on_result(
        &mut self,
        core: &mut Core,
        key: Key,
        op: &Op,
        result: Result<OpResult, ZkError>,
    ) -> Flow<Phase> {
        match self {
            Phase::Campaign(p) => p.on_result(core, key, result),
            Phase::LoadBrokers(p) => p.on_result(core, key, result),
            Phase::LoadTopics(p) => p.on_result(core, key, result),
            Phase::LoadStates(p) => p.on_result(core, key, result),
            Phase::Update(p) => p.on_result(core, key, op, result),
            Phase::Create(p) => p.on_result(core, key, op, result),
            Phase::IsrNotify(p) => p.on_result(core, key, result),
            Phase::DeleteNotifications(p) => p.on_result(core, key, op, result),
            Phase::Step(_) => Flow::Wait,
        }
    }

    /// The phase is dropped unfinished (resignation): answer what waits on it.
    pub fn abandon(&self, core: &mut Core) {
        if let Phase::Step(Step::ShutdownReply { token, .. }) = self {
            not_controller(core, *token);
        }
    }
}

/// Answers a controlled shutdown that this broker cannot handle as the controller.
pub fn not_controller(core: &mut Core, token: u64) {
    reply_shutdown(core, token, ErrorCode::NotController, Vec::new());
}

pub fn reply_shutdown(
    core: &mut Core,
    token: u64,
    error: ErrorCode,
    remaining: Vec<TopicPartition>,
) {
    let response = Response::ControlledShutdown { error, remaining };
    core.out.push(ControllerOut::Reply { token, response });
}

fn run_step(step: Step, core: &mut Core) -> Flow<Phase> {
    match step {
        Step::FailoverStart => load::failover_start(core),
        Step::BrokerStartup(brokers) => brokers::on_startup(core, &brokers),
        Step::BrokerFailure(brokers) => brokers::on_failure(core, &brokers),
        Step::UpdateMetadata(tps) => {
            let to = core.ctx().registered();
            core.batch.add_update_metadata(&to, &tps);
            core.flush();
            Flow::Done
        }
        Step::ShutdownStart {
            token,
            broker,
            broker_epoch,
        } => shutdown::start(core, token, broker, broker_epoch),
        Step::ShutdownReply { token, broker } => shutdown::reply(core, token, broker),
    }
}
