//! Kafka's consumer in assign mode as a workload node: every partition of the scenario's
//! topics is assigned to it (no group, no rebalance), each with a position that the
//! consumer sets with ListOffsets per `auto.offset.reset`, validates after a leader change
//! (KIP-320) and advances as it reads from the leader below the high watermark.
//!
//! Follows the Java client's `Fetcher` and `SubscriptionState` (2.3+): a partition is in
//! one of the fetch states AWAIT_RESET, AWAIT_VALIDATION or FETCHING. A position is an
//! offset, the leader epoch of the last record consumed before it, and the leader (and its
//! epoch) the consumer believes current. Fetches and OffsetsForLeaderEpoch carry that
//! current leader epoch, so a deposed leader answers FENCED_LEADER_EPOCH instead of serving
//! a divergent log. When metadata shows a newer leader epoch, a position that has an epoch
//! goes to AWAIT_VALIDATION: OffsetsForLeaderEpoch asks the new leader for the end offset
//! of the position's epoch; an end offset below the position means the log was truncated
//! under the consumer (records it read are gone), and the position moves back to that end
//! offset (`SubscriptionState.maybeCompleteValidation` with a reset policy), recorded as a
//! `Position` mark with reason `Truncation`.
//!
//! Each fetch of one partition is one `Poll` operation in the history: invoked when the
//! request goes out, completed with the records consumed (possibly none), or failed when
//! nothing was consumed (an error, a lost answer, a position that moved meanwhile).
//!
//! Deviations: `auto.offset.reset=none` resets to the earliest offset (the Java client
//! throws to the application, which has no committed offsets here to fall back on); fetches
//! go out at the poll rate rather than as soon as the previous one returns, so the poll
//! rate paces the workload; the fetch's `lastFetchedEpoch` is not sent (consumers do not
//! send it in 2.x-3.x), but a `divergingEpoch` answer is honoured like a validation.
//!
//! May depend on: `node`, `kafka`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::links::Links;
use super::metadata::Metadata;
use super::record::{KafkaOp, KafkaOutcome, KafkaRecord, PositionReason};
use super::{interval_ns, ClientSetup, NS_PER_MS};
use crate::kafka::config::AutoOffsetReset;
use crate::kafka::msg::{
    BrokerId, EpochEndOffset, ErrorCode, FetchPartition, FetchPartitionResponse, KafkaMsg,
    ListOffsetsPartition, ListOffsetsPartitionResponse, OffsetForLeaderPartition,
    OffsetForLeaderPartitionResponse, OffsetSpec, Request, Response, TopicPartition,
};
use crate::kafka::wire::WireMsg;
use crate::node::{Context, Event, Node, NodeId};

const TAG_POLL: u64 = 1;
/// Requests in flight per broker connection (the Java default of 5).
const MAX_IN_FLIGHT: usize = 5;

/// A partition's fetch state (`SubscriptionState.FetchStates`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchState {
    AwaitReset,
    AwaitValidation,
    Fetching,
}

/// One assigned partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigned {
    pub state: FetchState,
    /// The next offset to read.
    pub position: u64,
    /// The leader epoch of the record before `position` (None: unknown).
    pub offset_epoch: Option<u32>,
    /// The leader and leader epoch the consumer believes current.
    pub current_leader: Option<(BrokerId, u32)>,
    /// A ListOffsets, OffsetsForLeaderEpoch or Fetch for it is in flight.
    pub busy: bool,
    pub retry_at_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Metadata,
    ListOffsets(Vec<TopicPartition>),
    /// Partitions and the position each validation was asked for.
    Validate(Vec<(TopicPartition, u64)>),
    /// Partitions, the poll's op id and the position fetched from.
    Fetch(Vec<(TopicPartition, u64, u64)>),
}

/// Counts of what the consumer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    pub polls: u64,
    pub records: u64,
    pub validations: u64,
    /// Validations (or diverging fetches) that found the log truncated below the position.
    pub truncations: u64,
}

pub struct Consumer {
    index: u32,
    setup: Rc<ClientSetup>,
    history: Vec<KafkaRecord>,
    links: Links<Pending>,
    metadata: Metadata,
    parts: BTreeMap<TopicPartition, Assigned>,
    ops: u64,
    bootstrap_next: usize,
    stats: ConsumerStats,
}

impl Consumer {
    pub fn new(index: u32, setup: Rc<ClientSetup>) -> Self {
        let parts = setup
            .partitions()
            .into_iter()
            .map(|tp| {
                let a = Assigned {
                    state: FetchState::AwaitReset,
                    position: 0,
                    offset_epoch: None,
                    current_leader: None,
                    busy: false,
                    retry_at_ns: 0,
                };
                (tp, a)
            })
            .collect();
        Consumer {
            index,
            setup,
            history: Vec::new(),
            links: Links::default(),
            metadata: Metadata::new(),
            parts,
            ops: 0,
            bootstrap_next: 0,
            stats: ConsumerStats::default(),
        }
    }
    pub fn index(&self) -> u32 {
        self.index
    }
    pub fn setup(&self) -> &ClientSetup {
        &self.setup
    }
    /// Everything recorded so far, in order.
    pub fn history(&self) -> &[KafkaRecord] {
        &self.history
    }
    pub fn stats(&self) -> ConsumerStats {
        self.stats
    }
    /// The assigned partitions and their positions.
    pub fn assignment(&self) -> &BTreeMap<TopicPartition, Assigned> {
        &self.parts
    }

    fn backoff_ns(&self) -> u64 {
        self.setup.consumer.retry_backoff_ms * NS_PER_MS
    }
    fn timeout_ns(&self) -> u64 {
        self.setup.consumer.request_timeout_ms * NS_PER_MS
    }

    fn run(&mut self, ctx: &mut Context<'_, WireMsg>) {
        for p in self.links.expire(ctx) {
            self.request_failed(ctx.now(), p);
        }
        self.maybe_update_metadata(ctx);
        self.send_resets(ctx);
        self.send_validations(ctx);
    }

    fn maybe_update_metadata(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if !self.metadata.due(ctx.now(), self.backoff_ns()) {
            return;
        }
        let node = match self.links.least_loaded() {
            Some(n) if self.links.ready(ctx, n, MAX_IN_FLIGHT) => Some(n),
            _ if self.setup.brokers.is_empty() => None,
            _ => {
                let n = self.setup.brokers[self.bootstrap_next % self.setup.brokers.len()];
                self.bootstrap_next += 1;
                self.links.ready(ctx, n, MAX_IN_FLIGHT).then_some(n)
            }
        };
        if let Some(node) = node {
            let topics = self.setup.topics.iter().map(|t| t.name.clone()).collect();
            let body = Request::Metadata {
                topics: Some(topics),
            };
            let timeout = self.timeout_ns();
            self.links.send(ctx, node, body, Pending::Metadata, timeout);
            self.metadata.in_flight = true;
        }
    }

    /// Partitions in `state`, idle and past their backoff, grouped by their leader's node
    /// when that node can take a request.
    fn ready_by_leader(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        state: FetchState,
    ) -> BTreeMap<NodeId, Vec<(TopicPartition, u32)>> {
        let now = ctx.now();
        let mut out: BTreeMap<NodeId, Vec<(TopicPartition, u32)>> = BTreeMap::new();
        let mut ready: BTreeMap<NodeId, bool> = BTreeMap::new();
        let candidates: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, a)| a.state == state && !a.busy && a.retry_at_ns <= now)
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in candidates {
            let Some((leader, epoch)) = self.metadata.current_leader(&tp) else {
                self.metadata.request_update();
                continue;
            };
            let Some(node) = self.setup.broker_node(leader) else {
                continue;
            };
            let ok = match ready.get(&node) {
                Some(r) => *r,
                None => {
                    let r = self.links.ready(ctx, node, MAX_IN_FLIGHT);
                    ready.insert(node, r);
                    r
                }
            };
            if ok {
                self.parts.get_mut(&tp).expect("assigned").current_leader = Some((leader, epoch));
                out.entry(node).or_default().push((tp, epoch));
            }
        }
        out
    }

    /// ListOffsets for partitions without a position (`resetPositionsAsync`).
    fn send_resets(&mut self, ctx: &mut Context<'_, WireMsg>) {
        let spec = match self.setup.consumer.auto_offset_reset {
            AutoOffsetReset::Latest => OffsetSpec::Latest,
            AutoOffsetReset::Earliest | AutoOffsetReset::None => OffsetSpec::Earliest,
        };
        for (node, tps) in self.ready_by_leader(ctx, FetchState::AwaitReset) {
            let partitions = tps
                .iter()
                .map(|(tp, epoch)| ListOffsetsPartition {
                    tp: tp.clone(),
                    current_leader_epoch: Some(*epoch),
                    spec,
                })
                .collect();
            let body = Request::ListOffsets {
                replica_id: None,
                partitions,
            };
            let tps: Vec<TopicPartition> = tps.into_iter().map(|(tp, _)| tp).collect();
            self.mark_busy(&tps);
            let timeout = self.timeout_ns();
            self.links
                .send(ctx, node, body, Pending::ListOffsets(tps), timeout);
        }
    }

    /// OffsetsForLeaderEpoch for positions to validate (`validateOffsetsAsync`).
    fn send_validations(&mut self, ctx: &mut Context<'_, WireMsg>) {
        for (node, tps) in self.ready_by_leader(ctx, FetchState::AwaitValidation) {
            let mut partitions = Vec::new();
            let mut asked = Vec::new();
            for (tp, epoch) in tps {
                let a = &self.parts[&tp];
                let Some(offset_epoch) = a.offset_epoch else {
                    // Nothing to validate against: the position stands.
                    self.parts.get_mut(&tp).expect("assigned").state = FetchState::Fetching;
                    continue;
                };
                partitions.push(OffsetForLeaderPartition {
                    tp: tp.clone(),
                    current_leader_epoch: Some(epoch),
                    leader_epoch: offset_epoch,
                });
                asked.push((tp, a.position));
            }
            if asked.is_empty() {
                continue;
            }
            let tps: Vec<TopicPartition> = asked.iter().map(|(tp, _)| tp.clone()).collect();
            self.mark_busy(&tps);
            self.stats.validations += asked.len() as u64;
            let body = Request::OffsetsForLeaderEpoch {
                replica_id: None,
                partitions,
            };
            let timeout = self.timeout_ns();
            self.links
                .send(ctx, node, body, Pending::Validate(asked), timeout);
        }
    }

    /// The application polls: one Fetch per leader for its fetchable partitions, each
    /// partition's fetch one `Poll` operation.
    fn poll(&mut self, ctx: &mut Context<'_, WireMsg>) {
        for (node, tps) in self.ready_by_leader(ctx, FetchState::Fetching) {
            let mut partitions = Vec::new();
            let mut polls = Vec::new();
            for (tp, epoch) in tps {
                let position = self.parts[&tp].position;
                partitions.push(FetchPartition {
                    tp: tp.clone(),
                    fetch_offset: position,
                    last_fetched_epoch: None,
                    current_leader_epoch: Some(epoch),
                    max_records: u64::from(self.setup.consumer.max_poll_records),
                });
                self.ops += 1;
                self.stats.polls += 1;
                self.history.push(KafkaRecord::Invoke {
                    op_id: self.ops,
                    at_ns: ctx.now(),
                    op: KafkaOp::Poll { tp: tp.clone() },
                });
                polls.push((tp, self.ops, position));
            }
            let tps: Vec<TopicPartition> = polls.iter().map(|p| p.0.clone()).collect();
            self.mark_busy(&tps);
            let body = Request::Fetch {
                replica_id: None,
                max_wait_ms: self.setup.consumer.fetch_max_wait_ms,
                partitions,
            };
            let timeout = self.timeout_ns();
            self.links
                .send(ctx, node, body, Pending::Fetch(polls), timeout);
        }
    }

    fn mark_busy(&mut self, tps: &[TopicPartition]) {
        for tp in tps {
            self.parts.get_mut(tp).expect("assigned").busy = true;
        }
    }

    /// Ends a request's hold on a partition; after an error, with a backoff.
    fn release(&mut self, now_ns: u64, tp: &TopicPartition, error: Option<ErrorCode>) {
        let backoff = self.backoff_ns();
        let a = self.parts.get_mut(tp).expect("assigned");
        a.busy = false;
        if let Some(code) = error {
            a.retry_at_ns = now_ns + backoff;
            if code.needs_metadata_refresh() || code == ErrorCode::ReplicaNotAvailable {
                self.metadata.request_update();
            }
        }
    }

    fn complete_poll(&mut self, now_ns: u64, op_id: u64, outcome: KafkaOutcome) {
        self.history.push(KafkaRecord::Complete {
            op_id,
            at_ns: now_ns,
            outcome,
        });
    }

    fn request_failed(&mut self, now_ns: u64, p: Pending) {
        let lost = ErrorCode::RequestTimedOut;
        match p {
            Pending::Metadata => self.metadata.failed(now_ns),
            Pending::ListOffsets(tps) => {
                for tp in tps {
                    self.release(now_ns, &tp, Some(lost));
                }
            }
            Pending::Validate(asked) => {
                for (tp, _) in asked {
                    self.release(now_ns, &tp, Some(lost));
                }
            }
            Pending::Fetch(polls) => {
                self.metadata.request_update();
                for (tp, op_id, _) in polls {
                    self.release(now_ns, &tp, Some(lost));
                    let error = "NetworkException".to_string();
                    self.complete_poll(now_ns, op_id, KafkaOutcome::Fail { error });
                }
            }
        }
    }

    fn on_response(&mut self, now_ns: u64, p: Pending, body: Response) {
        match (p, body) {
            (Pending::Metadata, Response::Metadata { partitions, .. }) => {
                let wanted: Vec<TopicPartition> = self.parts.keys().cloned().collect();
                let changed = self.metadata.update(now_ns, &partitions, &wanted);
                for (tp, info) in changed {
                    self.leader_changed(&tp, info.leader.map(|l| (l, info.leader_epoch)));
                }
            }
            (Pending::ListOffsets(tps), Response::ListOffsets { partitions }) => {
                for tp in tps {
                    let answer = partitions.iter().find(|a| a.tp == tp);
                    self.reset_answered(now_ns, &tp, answer);
                }
            }
            (Pending::Validate(asked), Response::OffsetsForLeaderEpoch { partitions }) => {
                for (tp, position) in asked {
                    let answer = partitions.iter().find(|a| a.tp == tp);
                    self.validation_answered(now_ns, &tp, position, answer);
                }
            }
            (Pending::Fetch(polls), Response::Fetch { error, partitions }) => {
                for (tp, op_id, position) in polls {
                    let answer = partitions.iter().find(|a| a.tp == tp);
                    let answer = if error == ErrorCode::None {
                        answer
                    } else {
                        None
                    };
                    self.fetch_answered(now_ns, &tp, op_id, position, answer, error);
                }
            }
            (p, _) => self.request_failed(now_ns, p),
        }
    }

    /// A newer leader epoch in the metadata: a position with an epoch is validated
    /// against the new leader (`maybeValidatePositionForCurrentLeader`).
    fn leader_changed(&mut self, tp: &TopicPartition, leader: Option<(BrokerId, u32)>) {
        let Some(a) = self.parts.get_mut(tp) else {
            return;
        };
        if a.current_leader == leader {
            return;
        }
        a.current_leader = leader;
        if a.state == FetchState::Fetching && a.offset_epoch.is_some() {
            a.state = FetchState::AwaitValidation;
        }
    }

    fn set_position(
        &mut self,
        now_ns: u64,
        tp: &TopicPartition,
        at: EpochEndOffset,
        why: PositionReason,
    ) {
        let a = self.parts.get_mut(tp).expect("assigned");
        a.position = at.end_offset;
        a.offset_epoch = Some(at.epoch);
        a.state = FetchState::Fetching;
        if why == PositionReason::Truncation {
            self.stats.truncations += 1;
        }
        self.history.push(KafkaRecord::Position {
            at_ns: now_ns,
            tp: tp.clone(),
            offset: at.end_offset,
            reason: why,
        });
    }

    fn reset_answered(
        &mut self,
        now_ns: u64,
        tp: &TopicPartition,
        answer: Option<&ListOffsetsPartitionResponse>,
    ) {
        match answer {
            Some(a) if a.error == ErrorCode::None => {
                self.release(now_ns, tp, None);
                let at = EpochEndOffset {
                    epoch: a.leader_epoch.unwrap_or(0),
                    end_offset: a.offset,
                };
                self.set_position(now_ns, tp, at, PositionReason::Reset);
                if a.leader_epoch.is_none() {
                    self.parts.get_mut(tp).expect("assigned").offset_epoch = None;
                }
            }
            Some(a) => self.release(now_ns, tp, Some(a.error)),
            None => self.release(now_ns, tp, Some(ErrorCode::UnknownTopicOrPartition)),
        }
    }

    fn validation_answered(
        &mut self,
        now_ns: u64,
        tp: &TopicPartition,
        asked_at: u64,
        answer: Option<&OffsetForLeaderPartitionResponse>,
    ) {
        let error = answer.map_or(ErrorCode::UnknownTopicOrPartition, |a| a.error);
        if error != ErrorCode::None {
            self.release(now_ns, tp, Some(error));
            return;
        }
        self.release(now_ns, tp, None);
        let a = &self.parts[tp];
        if a.state != FetchState::AwaitValidation || a.position != asked_at {
            return; // the position moved meanwhile: this answer is about another one
        }
        match answer.and_then(|a| a.end) {
            Some(end) => self.validated(now_ns, tp, end),
            // The leader knows no epoch at or below ours: start over per the reset policy.
            None => self.parts.get_mut(tp).expect("assigned").state = FetchState::AwaitReset,
        }
    }

    /// The leader's end offset for the position's epoch: below the position means the
    /// log was truncated under us.
    fn validated(&mut self, now_ns: u64, tp: &TopicPartition, end: EpochEndOffset) {
        let a = self.parts.get_mut(tp).expect("assigned");
        if end.end_offset < a.position {
            self.set_position(now_ns, tp, end, PositionReason::Truncation);
        } else {
            a.state = FetchState::Fetching;
        }
    }

    fn fetch_answered(
        &mut self,
        now_ns: u64,
        tp: &TopicPartition,
        op_id: u64,
        fetched_at: u64,
        answer: Option<&FetchPartitionResponse>,
        top_error: ErrorCode,
    ) {
        let error = match answer {
            Some(a) => a.error,
            None if top_error != ErrorCode::None => top_error,
            None => ErrorCode::UnknownTopicOrPartition,
        };
        let a = &self.parts[tp];
        let moved = a.state != FetchState::Fetching || a.position != fetched_at;
        if error != ErrorCode::None || moved {
            self.release(now_ns, tp, (error != ErrorCode::None).then_some(error));
            if error == ErrorCode::OffsetOutOfRange && !moved {
                self.parts.get_mut(tp).expect("assigned").state = FetchState::AwaitReset;
            }
            let error = if moved {
                "position moved".into()
            } else {
                format!("{error:?}")
            };
            self.complete_poll(now_ns, op_id, KafkaOutcome::Fail { error });
            return;
        }
        self.release(now_ns, tp, None);
        let answer = answer.expect("no error without an answer");
        if let Some(diverging) = answer.diverging_epoch {
            self.validated(now_ns, tp, diverging);
            self.complete_poll(now_ns, op_id, KafkaOutcome::Polled { records: vec![] });
            return;
        }
        let records = self.consume(tp, answer);
        self.stats.records += records.len() as u64;
        self.complete_poll(now_ns, op_id, KafkaOutcome::Polled { records });
    }

    /// Takes the records at and after the position, in order, and moves the position.
    fn consume(&mut self, tp: &TopicPartition, answer: &FetchPartitionResponse) -> Vec<(u64, u64)> {
        let a = self.parts.get_mut(tp).expect("assigned");
        let mut out = Vec::new();
        for batch in &answer.batches {
            for (i, r) in batch.records.iter().enumerate() {
                let offset = batch.base_offset + i as u64;
                if offset < a.position {
                    continue;
                }
                out.push((offset, r.value));
                a.position = offset + 1;
                a.offset_epoch = Some(batch.leader_epoch);
            }
        }
        out
    }
}

impl Node for Consumer {
    type Msg = WireMsg;
    fn on_event(&mut self, ctx: &mut Context<'_, WireMsg>, event: Event<WireMsg>) {
        match event {
            Event::Start { .. } => {
                if self.setup.poll_rate > 0 {
                    let first = interval_ns(ctx.rng(), self.setup.poll_rate);
                    ctx.set_timer(first, TAG_POLL);
                }
            }
            Event::Stop => {
                ctx.halt("stopped");
                return;
            }
            Event::ConnUp { conn, .. } => self.links.on_up(conn),
            Event::ConnDown { conn, .. } => {
                for p in self.links.on_down(conn, ctx.now()) {
                    self.request_failed(ctx.now(), p);
                }
            }
            Event::Message { conn, msg, .. } => {
                if let WireMsg::Kafka(KafkaMsg::Response {
                    correlation_id,
                    body,
                }) = msg
                {
                    if let Some(p) = self.links.on_response(conn, correlation_id) {
                        self.on_response(ctx.now(), p, body);
                    }
                }
            }
            Event::Timer { tag: TAG_POLL, .. } => {
                self.run(ctx);
                self.poll(ctx);
                let next = interval_ns(ctx.rng(), self.setup.poll_rate);
                ctx.set_timer(next, TAG_POLL);
                return;
            }
            Event::Timer { .. } | Event::FsyncDone { .. } => {}
        }
        self.run(ctx);
    }
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;
