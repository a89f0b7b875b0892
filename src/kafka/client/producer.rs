//! Kafka's producer as a workload node: the application side (a record every so often on
//! the node's own random stream, partitioned by key) and the `Sender` loop (metadata,
//! InitProducerId, draining the accumulator into Produce requests per leader, completing
//! or retrying batches from the answers).
//!
//! Follows the Java client of Kafka 2.1-2.4 (`KafkaProducer`, `Sender`,
//! `RecordAccumulator`, the idempotent half of `TransactionManager`):
//! - metadata is asked of the least loaded broker, again after NOT_LEADER and the other
//!   errors that point at a leadership change, and for partitions with no known leader;
//! - acks=0 batches complete at once with no offset (recorded as unknown), acks=1/all wait
//!   for the answer;
//! - a retriable error (or a lost answer: a broken connection or `request.timeout.ms`)
//!   puts the batch back after `retry.backoff.ms` while `retries` and
//!   `delivery.timeout.ms` allow; every batch, queued or in flight, fails at its delivery
//!   timeout;
//! - with `enable.idempotence` the batches carry producer id, epoch and sequence, with the
//!   bookkeeping of `accumulator::Sequences`;
//! - `max.in.flight.requests.per.connection` caps requests per broker; at 1 a partition
//!   has at most one batch in flight (`guaranteeMessageOrder`).
//!
//! A record's history completion: `Sent` with its offset on acknowledgement; `Fail` when
//! no attempt can have been appended (every answer was a check made before the append:
//! NOT_ENOUGH_REPLICAS, OUT_OF_ORDER_SEQUENCE_NUMBER, a fenced epoch, ...); `Info` when one
//! may have been (a lost answer, or an error a broker also gives after appending:
//! REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER from a
//! delayed produce whose leader moved) or with acks=0.
//!
//! Deviations: the partition count comes from the scenario's topics instead of metadata
//! (the same number; no topic is created later); `batch.size` is a record count; when a
//! batch whose sequence may have been used fails for good, the partition's sequences are
//! marked unresolved instead of moved down (the 2.x client moves them down whenever the
//! batch had retries left, which can reuse a sequence that was appended).
//!
//! May depend on: `node`, `kafka`.

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::Rng;

use super::accumulator::{shift, Accumulator, ProducerBatch, Sequences};
use super::links::Links;
use super::metadata::Metadata;
use super::record::{KafkaOp, KafkaOutcome, KafkaRecord};
use super::{interval_ns, partition_for_key, ClientSetup, NS_PER_MS};
use crate::kafka::config::Acks;
use crate::kafka::log::batch::{ProducerStamp, Record};
use crate::kafka::msg::{
    ErrorCode, KafkaMsg, ProducePartition, ProducePartitionResponse, Request, Response,
    TopicPartition,
};
use crate::kafka::wire::WireMsg;
use crate::node::{Context, Event, Node, NodeId};

const TAG_SEND: u64 = 1;
const TAG_TICK: u64 = 2;
/// The sender loop's wake-up while work is pending (timeouts, backoffs).
const TICK_NS: u64 = 10 * NS_PER_MS;

/// What a request in flight asked.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Metadata,
    InitProducerId,
    /// The ids of the batches it carries (kept in `Producer::in_flight`).
    Produce(Vec<u64>),
}

/// Why an attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendError {
    Broker(ErrorCode),
    /// No answer: the connection broke or the request timed out.
    Network,
}

impl SendError {
    fn text(self) -> String {
        match self {
            SendError::Broker(code) => format!("{code:?}"),
            SendError::Network => "NetworkException".into(),
        }
    }
    /// The attempt may have been appended even though it failed: a lost answer, or any
    /// error a broker can give after the append (a delayed acks=all produce is answered
    /// REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND, or NOT_LEADER_OR_FOLLOWER when
    /// the leadership moved while it waited). Only the checks made before the append are
    /// certain: min.insync, sequence, producer epoch, leader epoch, CRC.
    fn maybe_appended(self) -> bool {
        match self {
            SendError::Network => true,
            SendError::Broker(code) => !matches!(
                code,
                ErrorCode::NotEnoughReplicas
                    | ErrorCode::OutOfOrderSequenceNumber
                    | ErrorCode::InvalidProducerEpoch
                    | ErrorCode::CorruptMessage
                    | ErrorCode::InvalidRequiredAcks
                    | ErrorCode::FencedLeaderEpoch
                    | ErrorCode::UnknownLeaderEpoch
            ),
        }
    }
    /// A `RetriableException` in the Java client.
    fn retriable(self) -> bool {
        match self {
            SendError::Network => true,
            SendError::Broker(code) => matches!(
                code,
                ErrorCode::CorruptMessage
                    | ErrorCode::UnknownTopicOrPartition
                    | ErrorCode::LeaderNotAvailable
                    | ErrorCode::NotLeaderOrFollower
                    | ErrorCode::RequestTimedOut
                    | ErrorCode::NotEnoughReplicas
                    | ErrorCode::NotEnoughReplicasAfterAppend
                    | ErrorCode::FencedLeaderEpoch
                    | ErrorCode::UnknownLeaderEpoch
                    | ErrorCode::ReplicaNotAvailable
                    | ErrorCode::BrokerNotAvailable
            ),
        }
    }
    fn refresh_metadata(self) -> bool {
        match self {
            SendError::Network => true,
            SendError::Broker(code) => code.needs_metadata_refresh(),
        }
    }
}

/// Counts of the producer's record completions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProducerStats {
    pub acked: u64,
    pub failed: u64,
    pub unknown: u64,
    /// Batches sent again.
    pub retries: u64,
}

pub struct Producer {
    index: u32,
    setup: Rc<ClientSetup>,
    history: Vec<KafkaRecord>,
    links: Links<Pending>,
    metadata: Metadata,
    acc: Accumulator,
    /// Batches in a request awaiting its answer, by batch id.
    in_flight: BTreeMap<u64, ProducerBatch>,
    seqs: Sequences,
    init_pid_in_flight: bool,
    init_pid_retry_at_ns: u64,
    /// Records created so far (the last value's counter).
    records: u64,
    bootstrap_next: usize,
    tick_armed: bool,
    stats: ProducerStats,
}

impl Producer {
    pub fn new(index: u32, setup: Rc<ClientSetup>) -> Self {
        Producer {
            index,
            setup,
            history: Vec::new(),
            links: Links::default(),
            metadata: Metadata::new(),
            acc: Accumulator::default(),
            in_flight: BTreeMap::new(),
            seqs: Sequences::default(),
            init_pid_in_flight: false,
            init_pid_retry_at_ns: 0,
            records: 0,
            bootstrap_next: 0,
            tick_armed: false,
            stats: ProducerStats::default(),
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
    pub fn stats(&self) -> ProducerStats {
        self.stats
    }
    /// Producer ids given up after data loss or unresolved sequences.
    pub fn producer_id_resets(&self) -> u64 {
        self.seqs.resets
    }
    /// Sends whose outcome is still open (queued or in flight).
    pub fn open_sends(&self) -> u64 {
        let completed = self
            .history
            .iter()
            .filter(|r| matches!(r, KafkaRecord::Complete { .. }))
            .count() as u64;
        self.records - completed
    }

    fn idempotent(&self) -> bool {
        self.setup.producer.enable_idempotence
    }
    fn max_in_flight(&self) -> usize {
        self.setup
            .producer
            .max_in_flight_requests_per_connection
            .max(1) as usize
    }
    fn backoff_ns(&self) -> u64 {
        self.setup.producer.retry_backoff_ms * NS_PER_MS
    }

    /// The application calls `send`: one record with a random key, to the key's partition.
    fn send_record(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if self.setup.topics.is_empty() {
            return;
        }
        let t = ctx.rng().gen_range(0..self.setup.topics.len());
        let key = u64::from(ctx.rng().gen_range(0..self.setup.keys.max(1)));
        let topic = &self.setup.topics[t];
        let tp = TopicPartition::new(&topic.name, partition_for_key(key, topic.partitions));
        self.records += 1;
        let op_id = self.records;
        // Unique per run: the producer in the high bits, its counter below.
        let value = (u64::from(self.index) + 1) << 40 | self.records;
        self.history.push(KafkaRecord::Invoke {
            op_id,
            at_ns: ctx.now(),
            op: KafkaOp::Send {
                tp: tp.clone(),
                key,
                value,
            },
        });
        self.acc
            .append(&tp, op_id, Record { key, value }, ctx.now());
    }

    fn complete(
        &mut self,
        now_ns: u64,
        batch: &ProducerBatch,
        outcome: impl Fn(usize) -> KafkaOutcome,
    ) {
        for (i, (op_id, _)) in batch.records.iter().enumerate() {
            let outcome = outcome(i);
            match outcome {
                KafkaOutcome::Sent { .. } => self.stats.acked += 1,
                KafkaOutcome::Fail { .. } => self.stats.failed += 1,
                _ => self.stats.unknown += 1,
            }
            self.history.push(KafkaRecord::Complete {
                op_id: *op_id,
                at_ns: now_ns,
                outcome,
            });
        }
    }

    /// One pass of the `Sender` loop.
    fn run(&mut self, ctx: &mut Context<'_, WireMsg>) {
        for p in self.links.expire(ctx) {
            self.request_failed(ctx.now(), p);
        }
        self.expire_batches(ctx.now());
        if self.idempotent() {
            if self.seqs.resolve() {
                self.seqs.reset();
            }
            self.maybe_init_producer_id(ctx);
        }
        self.maybe_update_metadata(ctx);
        self.drain(ctx);
    }

    /// A connected broker that can take a request, else a connection started to the next
    /// bootstrap broker.
    fn any_ready_node(&mut self, ctx: &mut Context<'_, WireMsg>) -> Option<NodeId> {
        let max = self.max_in_flight();
        if let Some(n) = self.links.least_loaded() {
            if self.links.ready(ctx, n, max) {
                return Some(n);
            }
        }
        if self.setup.brokers.is_empty() {
            return None;
        }
        let node = self.setup.brokers[self.bootstrap_next % self.setup.brokers.len()];
        self.bootstrap_next += 1;
        self.links.ready(ctx, node, max).then_some(node)
    }

    fn maybe_update_metadata(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if !self.metadata.due(ctx.now(), self.backoff_ns()) {
            return;
        }
        if let Some(node) = self.any_ready_node(ctx) {
            let topics = self.setup.topics.iter().map(|t| t.name.clone()).collect();
            let body = Request::Metadata {
                topics: Some(topics),
            };
            let timeout = self.setup.producer.request_timeout_ms * NS_PER_MS;
            self.links.send(ctx, node, body, Pending::Metadata, timeout);
            self.metadata.in_flight = true;
        }
    }

    fn maybe_init_producer_id(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if self.seqs.pid.is_some() || self.init_pid_in_flight {
            return;
        }
        if ctx.now() < self.init_pid_retry_at_ns {
            return;
        }
        if let Some(node) = self.any_ready_node(ctx) {
            let timeout = self.setup.producer.request_timeout_ms * NS_PER_MS;
            let body = Request::InitProducerId;
            self.links
                .send(ctx, node, body, Pending::InitProducerId, timeout);
            self.init_pid_in_flight = true;
        }
    }

    /// Whether the head batch of `tp` may be sent now (`RecordAccumulator.drain`).
    fn drainable(&self, tp: &TopicPartition, now_ns: u64) -> bool {
        let Some(head) = self.acc.head(tp) else {
            return false;
        };
        if head.retry_at_ns > now_ns {
            return false;
        }
        if self.max_in_flight() == 1 && self.in_flight.values().any(|b| b.tp == *tp) {
            return false;
        }
        if !self.idempotent() {
            return true;
        }
        let Some((pid, _)) = self.seqs.pid else {
            return false;
        };
        match head.stamp {
            // New batches wait while earlier sequences are unresolved, and while a batch
            // stamped with an older producer id is still to complete: stamped with the new
            // id (sequence 0 on) they could be appended before it
            // (`shouldStopDrainBatchesForPartition`, KIP-360, 2.5+).
            None => !self.seqs.is_unresolved(tp) && !self.has_stale_batches(tp, pid),
            // A retry goes only when it is the first of its partition still in flight.
            Some(s) if s.producer_id == pid => self
                .seqs
                .first_in_flight(tp)
                .is_none_or(|first| first == s.base_sequence),
            Some(_) => true,
        }
    }

    /// Whether `tp` has an uncompleted batch (in flight or waiting for a retry) stamped
    /// with a producer id other than `pid`.
    fn has_stale_batches(&self, tp: &TopicPartition, pid: i64) -> bool {
        let stale =
            |b: &ProducerBatch| b.tp == *tp && b.stamp.is_some_and(|s| s.producer_id != pid);
        self.in_flight.values().any(stale) || self.acc.waiting(tp).any(stale)
    }

    /// Drains one batch per partition into one Produce request per ready leader.
    fn drain(&mut self, ctx: &mut Context<'_, WireMsg>) {
        let now = ctx.now();
        let max = self.max_in_flight();
        let mut ready: BTreeMap<NodeId, bool> = BTreeMap::new();
        let mut by_node: BTreeMap<NodeId, Vec<ProducerBatch>> = BTreeMap::new();
        for tp in self.acc.partitions() {
            let Some((leader, _)) = self.metadata.current_leader(&tp) else {
                self.metadata.request_update();
                continue;
            };
            let Some(node) = self.setup.broker_node(leader) else {
                continue;
            };
            if !self.drainable(&tp, now) {
                continue;
            }
            let is_ready = match ready.get(&node) {
                Some(r) => *r,
                None => {
                    let r = self.links.ready(ctx, node, max);
                    ready.insert(node, r);
                    r
                }
            };
            if !is_ready {
                continue;
            }
            let mut batch = self.acc.pop_head(&tp).expect("drainable has a head");
            if self.idempotent() && batch.stamp.is_none() {
                self.seqs.stamp(&mut batch);
            }
            if batch.attempts > 0 {
                self.stats.retries += 1;
            }
            batch.attempts += 1;
            by_node.entry(node).or_default().push(batch);
        }
        for (node, batches) in by_node {
            self.send_produce(ctx, node, batches);
        }
    }

    fn send_produce(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        node: NodeId,
        batches: Vec<ProducerBatch>,
    ) {
        let cfg = &self.setup.producer;
        let partitions = batches
            .iter()
            .map(|b| ProducePartition {
                tp: b.tp.clone(),
                producer: b.stamp.unwrap_or(ProducerStamp::NONE),
                records: b.plain_records(),
            })
            .collect();
        let body = Request::Produce {
            acks: cfg.acks,
            timeout_ms: cfg.request_timeout_ms,
            partitions,
        };
        if cfg.acks == Acks::None {
            // No answer will come: the batch is done as soon as it is written.
            self.links.send_one_way(ctx, node, body);
            for b in batches {
                let info = || KafkaOutcome::Info {
                    error: "acks=0: no acknowledgement".into(),
                };
                self.complete(ctx.now(), &b, |_| info());
            }
            return;
        }
        let timeout = cfg.request_timeout_ms * NS_PER_MS;
        let ids = batches.iter().map(|b| b.id).collect();
        self.links
            .send(ctx, node, body, Pending::Produce(ids), timeout);
        for b in batches {
            self.in_flight.insert(b.id, b);
        }
    }

    /// `delivery.timeout.ms`: queued batches fail; in-flight ones complete as unknown and
    /// wait for their answer only to settle their sequences.
    fn expire_batches(&mut self, now_ns: u64) {
        let timeout = self.setup.producer.delivery_timeout_ms * NS_PER_MS;
        let Some(cutoff) = now_ns.checked_sub(timeout) else {
            return;
        };
        for b in self.acc.expire(cutoff) {
            if b.stamp.is_some() {
                self.seqs.done(&b, false);
                self.seqs.mark_unresolved(&b.tp);
            }
            self.complete(now_ns, &b, |_| expired_outcome(&b));
        }
        // Batch ids follow creation order, so the batches created by the cutoff come
        // first: the walk stops at the first younger one (nearly always the first).
        let mut expired: Vec<u64> = Vec::new();
        for b in self.in_flight.values() {
            if b.created_ns > cutoff {
                break;
            }
            if !b.expired {
                expired.push(b.id);
            }
        }
        debug_assert!(self.in_flight.values().is_sorted_by_key(|b| b.created_ns));
        for id in expired {
            let mut b = self.in_flight.remove(&id).expect("listed");
            b.expired = true;
            b.maybe_appended = true;
            if b.stamp.is_some() {
                self.seqs.mark_unresolved(&b.tp);
            }
            self.complete(now_ns, &b, |_| expired_outcome(&b));
            self.in_flight.insert(id, b);
        }
    }

    fn request_failed(&mut self, now_ns: u64, p: Pending) {
        match p {
            Pending::Metadata => self.metadata.failed(now_ns),
            Pending::InitProducerId => {
                self.init_pid_in_flight = false;
                self.init_pid_retry_at_ns = now_ns + self.backoff_ns();
            }
            Pending::Produce(ids) => {
                for id in ids {
                    if let Some(b) = self.in_flight.remove(&id) {
                        self.batch_failed(now_ns, b, SendError::Network);
                    }
                }
            }
        }
    }

    fn on_response(&mut self, ctx: &mut Context<'_, WireMsg>, p: Pending, body: Response) {
        let now = ctx.now();
        match (p, body) {
            (Pending::Metadata, Response::Metadata { partitions, .. }) => {
                let wanted = self.acc.partitions();
                self.metadata.update(now, &partitions, &wanted);
            }
            (
                Pending::InitProducerId,
                Response::InitProducerId {
                    error,
                    producer_id,
                    producer_epoch,
                },
            ) => {
                self.init_pid_in_flight = false;
                if error == ErrorCode::None && producer_id >= 0 {
                    self.seqs.pid = Some((producer_id, producer_epoch));
                } else {
                    self.init_pid_retry_at_ns = now + self.backoff_ns();
                }
            }
            (Pending::Produce(ids), Response::Produce { partitions }) => {
                for id in ids {
                    let Some(b) = self.in_flight.remove(&id) else {
                        continue;
                    };
                    self.produce_answered(now, b, &partitions);
                }
            }
            // A response of the wrong kind: the request is as good as unanswered.
            (p, _) => self.request_failed(now, p),
        }
    }

    fn produce_answered(
        &mut self,
        now_ns: u64,
        b: ProducerBatch,
        answers: &[ProducePartitionResponse],
    ) {
        let answer = answers.iter().find(|a| a.tp == b.tp);
        match answer.map(|a| (a.error, a.base_offset)) {
            Some((ErrorCode::None, Some(base))) => {
                if self.idempotent() {
                    self.seqs.done(&b, true);
                }
                if !b.expired {
                    self.complete(now_ns, &b, |i| KafkaOutcome::Sent {
                        offset: base + i as u64,
                    });
                }
            }
            Some((ErrorCode::None, None)) => self.give_up(now_ns, b, SendError::Network),
            Some((code, _)) => self.batch_failed(now_ns, b, SendError::Broker(code)),
            None => self.batch_failed(
                now_ns,
                b,
                SendError::Broker(ErrorCode::UnknownTopicOrPartition),
            ),
        }
    }

    /// An attempt failed: retry it (`Sender.canRetry`) or fail it for good.
    fn batch_failed(&mut self, now_ns: u64, mut b: ProducerBatch, err: SendError) {
        b.maybe_appended |= err.maybe_appended();
        if err.refresh_metadata() {
            self.metadata.request_update();
        }
        if b.expired {
            self.seqs.done(&b, false);
            return;
        }
        let cfg = &self.setup.producer;
        let in_time = now_ns < b.created_ns + cfg.delivery_timeout_ms * NS_PER_MS;
        let retries_left = b.attempts <= cfg.retries;
        let out_of_order = err == SendError::Broker(ErrorCode::OutOfOrderSequenceNumber);
        let retriable = err.retriable()
            || (self.idempotent() && out_of_order && self.seqs.can_retry_out_of_order(&b));
        if in_time && retries_left && retriable {
            b.retry_at_ns = now_ns + self.backoff_ns();
            self.acc.reenqueue(b);
            return;
        }
        self.give_up(now_ns, b, err);
    }

    /// Fails a batch for good (`Sender.failBatch`).
    fn give_up(&mut self, now_ns: u64, b: ProducerBatch, err: SendError) {
        if self.idempotent() && b.stamp.is_some() {
            let current = b.stamp.is_some_and(|s| self.seqs.has_pid(s.producer_id));
            self.seqs.done(&b, false);
            if err == SendError::Broker(ErrorCode::OutOfOrderSequenceNumber) && current {
                // The broker has a gap before this batch's sequence: it lost acknowledged
                // data. Nothing about earlier sequences can be trusted: new producer id.
                self.seqs.reset();
            } else if b.maybe_appended {
                self.seqs.mark_unresolved(&b.tp);
            } else if let Some((from, by)) = self.seqs.adjust_for_failed(&b) {
                self.acc.shift_sequences(&b.tp, from, by);
                for other in self.in_flight.values_mut().filter(|o| o.tp == b.tp) {
                    shift(other, from, by);
                }
            }
        }
        let error = err.text();
        let maybe = b.maybe_appended;
        self.complete(now_ns, &b, |_| {
            if maybe {
                KafkaOutcome::Info {
                    error: error.clone(),
                }
            } else {
                KafkaOutcome::Fail {
                    error: error.clone(),
                }
            }
        });
    }

    fn has_work(&self) -> bool {
        !self.acc.is_empty() || !self.in_flight.is_empty() || self.links.busy()
    }

    fn arm_tick(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if !self.tick_armed && self.has_work() {
            self.tick_armed = true;
            ctx.set_timer(TICK_NS, TAG_TICK);
        }
    }
}

fn expired_outcome(b: &ProducerBatch) -> KafkaOutcome {
    let error = "delivery.timeout.ms expired".to_string();
    if b.maybe_appended {
        KafkaOutcome::Info { error }
    } else {
        KafkaOutcome::Fail { error }
    }
}

impl Node for Producer {
    type Msg = WireMsg;
    fn on_event(&mut self, ctx: &mut Context<'_, WireMsg>, event: Event<WireMsg>) {
        match event {
            Event::Start { .. } => {
                if self.setup.produce_rate > 0 {
                    let first = interval_ns(ctx.rng(), self.setup.produce_rate);
                    ctx.set_timer(first, TAG_SEND);
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
                // As the Java client's `handleServerDisconnect`: a lost or refused connection
                // may mean stale metadata (a leader that died), so refresh it; otherwise a
                // batch for a dead leader waits on reconnects until the metadata max age.
                self.metadata.request_update();
            }
            Event::Message { conn, msg, .. } => {
                if let WireMsg::Kafka(KafkaMsg::Response {
                    correlation_id,
                    body,
                }) = msg
                {
                    if let Some(p) = self.links.on_response(conn, correlation_id) {
                        self.on_response(ctx, p, body);
                    }
                }
            }
            Event::Timer { tag: TAG_SEND, .. } => {
                self.send_record(ctx);
                let next = interval_ns(ctx.rng(), self.setup.produce_rate);
                ctx.set_timer(next, TAG_SEND);
            }
            Event::Timer { tag: TAG_TICK, .. } => self.tick_armed = false,
            Event::Timer { .. } | Event::FsyncDone { .. } => {}
        }
        self.run(ctx);
        self.arm_tick(ctx);
    }
}

#[cfg(test)]
#[path = "producer_tests.rs"]
pub(crate) mod tests;
