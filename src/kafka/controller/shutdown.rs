//! Controlled shutdown (KafkaController.doControlledShutdown).
//!
//! A broker about to stop asks the controller to move its leaderships away first. The
//! controller checks the broker epoch (KIP-380: a request of an older incarnation is
//! STALE_BROKER_EPOCH), marks the broker shutting down (no longer eligible as a leader or
//! ISR member), elects a new leader for every replicated partition it leads (first live ISR
//! member in AR order that is not shutting down), takes it out of the ISRs it follows in
//! (with a StopReplica), and answers with the replicated partitions it still leads: the
//! broker retries until that list is empty.
//!
//! May depend on: `kafka::msg`, `kafka::controller::*`.

use super::super::msg::{BrokerId, ErrorCode, TopicPartition};
use super::core::{Core, Flow};
use super::leader_election::Change;
use super::partition_ops::{StateUpdate, Targets};
use super::phase::{not_controller, reply_shutdown, Phase, Step};

pub fn start(core: &mut Core, token: u64, broker: BrokerId, broker_epoch: i64) -> Flow<Phase> {
    let Some(ctx) = core.ctx.as_mut() else {
        not_controller(core, token);
        return Flow::Done;
    };
    let error = match ctx.broker_epoch(broker) {
        None => Some(ErrorCode::BrokerNotAvailable),
        Some(cached) if broker_epoch < cached => Some(ErrorCode::StaleBrokerEpoch),
        Some(_) => None,
    };
    if let Some(error) = error {
        reply_shutdown(core, token, error, Vec::new());
        return Flow::Done;
    }
    ctx.shutting_down.insert(broker);
    let acting: Vec<TopicPartition> = ctx
        .partitions_on(broker)
        .into_iter()
        .filter(|tp| ctx.replicas(tp).len() > 1 && ctx.leadership.contains_key(tp))
        .collect();
    let (led, followed): (Vec<_>, Vec<_>) = acting
        .into_iter()
        .partition(|tp| ctx.leadership[tp].leader == Some(broker));
    Flow::Then(vec![
        Phase::Update(StateUpdate::new(
            Change::ControlledShutdown,
            Targets::List(led),
        )),
        Phase::Update(StateUpdate::new(
            Change::RemoveReplica(broker),
            Targets::List(followed),
        )),
        Phase::Step(Step::ShutdownReply { token, broker }),
    ])
}

pub fn reply(core: &mut Core, token: u64, broker: BrokerId) -> Flow<Phase> {
    let remaining = match core.ctx.as_ref() {
        Some(ctx) => ctx.replicated_partitions_led_by(broker),
        None => {
            not_controller(core, token);
            return Flow::Done;
        }
    };
    reply_shutdown(core, token, ErrorCode::None, remaining);
    Flow::Done
}
