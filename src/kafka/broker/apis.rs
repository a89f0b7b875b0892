//! Request handling (Kafka's `KafkaApis` with `ReplicaManager.appendRecords` and
//! `fetchMessages`): the dispatch of every request, and the data-plane requests served
//! from the broker's replicas and metadata cache: Produce, Fetch, OffsetsForLeaderEpoch,
//! ListOffsets, Metadata and InitProducerId. The controller's requests are in `control`.

use super::purgatory::{DelayedFetch, DelayedProduce, PartStatus};
use super::{Broker, Origin};
use crate::kafka::config::{Acks, BugMode};
use crate::kafka::msg::{
    BrokerId, ErrorCode, FetchPartition, FetchPartitionResponse, ListOffsetsPartition,
    ListOffsetsPartitionResponse, OffsetForLeaderPartition, OffsetForLeaderPartitionResponse,
    OffsetSpec, PartitionMetadata, ProducePartition, ProducePartitionResponse, Request, Response,
    TopicPartition,
};
use crate::kafka::replica::leader::ProduceOutcome;
use crate::kafka::wire::WireMsg;
use crate::node::Context;

impl Broker {
    /// Serves one request; the answer goes back to `origin` (now or once held).
    pub(super) fn handle_request(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        origin: Origin,
        request: Request,
    ) {
        match request {
            Request::Produce {
                acks,
                timeout_ms,
                partitions,
            } => self.handle_produce(ctx, origin, acks, timeout_ms, partitions),
            Request::Fetch {
                replica_id,
                max_wait_ms,
                partitions,
            } => self.handle_fetch(ctx, origin, replica_id, max_wait_ms, partitions),
            Request::OffsetsForLeaderEpoch { partitions, .. } => {
                let partitions = partitions
                    .iter()
                    .map(|p| self.offsets_for_epoch(p))
                    .collect();
                self.respond(ctx, origin, Response::OffsetsForLeaderEpoch { partitions });
            }
            Request::ListOffsets {
                replica_id,
                partitions,
            } => {
                let partitions = (partitions.iter())
                    .map(|p| self.list_offsets(p, replica_id))
                    .collect();
                self.respond(ctx, origin, Response::ListOffsets { partitions });
            }
            Request::Metadata { topics } => {
                let resp = self.metadata_response(topics.as_deref());
                self.respond(ctx, origin, resp);
            }
            Request::InitProducerId => {
                let resp = self.init_producer_id();
                self.respond(ctx, origin, resp);
            }
            Request::ControlledShutdown {
                broker_id,
                broker_epoch,
            } => self.handle_controlled_shutdown(ctx, origin, broker_id, broker_epoch),
            r @ (Request::LeaderAndIsr { .. }
            | Request::UpdateMetadata { .. }
            | Request::StopReplica { .. }) => {
                // KafkaServer.startup registers the broker before it starts the request
                // processors: a restarted broker serves no controller request until its new
                // registration (and broker epoch) exists. Served earlier, a request meant
                // for the previous incarnation (its broker epoch not yet fenced) made a
                // process that had lost its unflushed log tail lead that incarnation's
                // leader epoch again (kafka-nemesis-hunt seed 857). Held, it meets the new
                // epoch's KIP-380 fence once registered. Before KIP-380 (KAFKA-2729's mode)
                // there is no such fence, and the old start-up served requests at once.
                let pre_kip380 = self.setup.props.bug(BugMode::Kafka2729);
                if self.fence_broker_epoch < 0 && !pre_kip380 {
                    self.before_registration.push((origin, r));
                    return;
                }
                let resp = self.handle_controller_request(ctx, r);
                self.respond(ctx, origin, resp);
            }
        }
    }

    /// The error for a partition this broker has no replica of: NOT_LEADER_OR_FOLLOWER if
    /// the cluster knows it (a stale client), else UNKNOWN_TOPIC_OR_PARTITION.
    fn missing_partition(&self, tp: &TopicPartition) -> ErrorCode {
        if self.metadata.partitions.contains_key(tp) {
            ErrorCode::NotLeaderOrFollower
        } else {
            ErrorCode::UnknownTopicOrPartition
        }
    }

    /// `appendToLocalLog` for each partition, then answer now or hold the request.
    fn handle_produce(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        origin: Origin,
        acks: Acks,
        timeout_ms: u64,
        partitions: Vec<ProducePartition>,
    ) {
        let mut parts = Vec::new();
        for p in partitions {
            parts.push(self.append_one(ctx, acks, p));
        }
        let mut op = DelayedProduce {
            origin,
            acks,
            parts,
        };
        if !self.try_complete_produce(ctx, &mut op, false) {
            self.purgatory.hold_produce(ctx, op, timeout_ms);
        }
    }

    fn append_one(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        acks: Acks,
        p: ProducePartition,
    ) -> PartStatus {
        let done = |tp: &TopicPartition, error| {
            PartStatus::Done(ProducePartitionResponse {
                tp: tp.clone(),
                error,
                base_offset: None,
                log_start_offset: 0,
            })
        };
        let missing = self.missing_partition(&p.tp);
        let Some(r) = self.replicas.get_mut(&p.tp) else {
            return done(&p.tp, missing);
        };
        let props = &self.setup.props;
        let outcome = r.append_records(ctx.disk(), acks, p.producer, p.records, props);
        match outcome {
            ProduceOutcome::Rejected(e) => done(&p.tp, e),
            ProduceOutcome::InLog {
                base_offset,
                last_offset,
                leader_epoch,
                duplicate,
            } => {
                let durable = !duplicate && self.storage.after_append(ctx, r, props);
                PartStatus::Waiting {
                    tp: p.tp,
                    leader_epoch,
                    base_offset,
                    last_offset,
                    replicated: acks == Acks::All,
                    durable,
                }
            }
        }
    }

    /// `fetchMessages`: read now; hold the fetch when there is nothing to return and the
    /// fetcher is willing to wait.
    fn handle_fetch(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        origin: Origin,
        replica_id: Option<BrokerId>,
        max_wait_ms: u64,
        partitions: Vec<FetchPartition>,
    ) {
        let resp = self.read_fetch(ctx, replica_id, &partitions);
        let something = resp.iter().any(|r| {
            !r.batches.is_empty() || r.error != ErrorCode::None || r.diverging_epoch.is_some()
        });
        if something || max_wait_ms == 0 || partitions.is_empty() {
            let resp = Response::Fetch {
                error: ErrorCode::None,
                partitions: resp,
            };
            return self.respond(ctx, origin, resp);
        }
        let op = DelayedFetch {
            origin,
            replica_id,
            max_wait_ms,
            partitions,
        };
        self.purgatory.hold_fetch(ctx, op);
    }

    /// Reads every partition of a fetch (a follower's read also moves its state on the
    /// leader: its LEO, the HW, maybe an ISR expansion to write).
    fn read_fetch(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        replica_id: Option<BrokerId>,
        partitions: &[FetchPartition],
    ) -> Vec<FetchPartitionResponse> {
        let now = ctx.now();
        let mut out = Vec::with_capacity(partitions.len());
        for p in partitions {
            let missing = self.missing_partition(&p.tp);
            let Some(r) = self.replicas.get_mut(&p.tp) else {
                out.push(FetchPartitionResponse {
                    tp: p.tp.clone(),
                    error: missing,
                    high_watermark: 0,
                    log_start_offset: 0,
                    diverging_epoch: None,
                    batches: Vec::new(),
                });
                continue;
            };
            match replica_id {
                Some(follower) => {
                    let (resp, change) = r.handle_follower_fetch(follower, p, now);
                    out.push(resp);
                    if let Some(change) = change {
                        self.submit_isr_change(ctx, change);
                    }
                }
                None => out.push(r.handle_consumer_fetch(p)),
            }
        }
        out
    }

    /// Answers a fetch (held or not) with what the replicas hold now.
    pub(super) fn answer_fetch(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        origin: Origin,
        replica_id: Option<BrokerId>,
        partitions: &[FetchPartition],
    ) {
        let partitions = self.read_fetch(ctx, replica_id, partitions);
        let resp = Response::Fetch {
            error: ErrorCode::None,
            partitions,
        };
        self.respond(ctx, origin, resp);
    }

    fn offsets_for_epoch(&self, p: &OffsetForLeaderPartition) -> OffsetForLeaderPartitionResponse {
        match self.replicas.get(&p.tp) {
            Some(r) => r.handle_offsets_for_leader_epoch(p),
            None => OffsetForLeaderPartitionResponse {
                tp: p.tp.clone(),
                error: self.missing_partition(&p.tp),
                end: None,
            },
        }
    }

    /// ListOffsets; asked by a replica (a pre-0.11 follower after OFFSET_OUT_OF_RANGE), the
    /// latest offset is the LEO, as Kafka answers requests with no isolation level.
    fn list_offsets(
        &self,
        p: &ListOffsetsPartition,
        replica_id: Option<BrokerId>,
    ) -> ListOffsetsPartitionResponse {
        match self.replicas.get(&p.tp) {
            Some(r) => {
                let mut resp = r.handle_list_offsets(p);
                if replica_id.is_some() && p.spec == OffsetSpec::Latest {
                    resp.offset = r.log_end_offset();
                }
                resp
            }
            None => ListOffsetsPartitionResponse {
                tp: p.tp.clone(),
                error: self.missing_partition(&p.tp),
                offset: 0,
                leader_epoch: None,
            },
        }
    }

    /// Metadata from the cache the controller's UpdateMetadata requests keep.
    pub(super) fn metadata_response(&self, topics: Option<&[String]>) -> Response {
        let cache = &self.metadata;
        let wanted =
            |tp: &TopicPartition| topics.is_none_or(|t| t.iter().any(|x| **x == *tp.topic));
        let mut partitions: Vec<PartitionMetadata> = cache
            .partitions
            .values()
            .filter(|s| wanted(&s.tp))
            .map(|s| PartitionMetadata {
                tp: s.tp.clone(),
                error: match s.leader {
                    Some(l) if cache.live_brokers.contains(&l) => ErrorCode::None,
                    _ => ErrorCode::LeaderNotAvailable,
                },
                leader: s.leader,
                leader_epoch: s.leader_epoch,
                replicas: s.replicas.clone(),
                isr: s.isr.clone(),
                offline_replicas: (s.replicas.iter())
                    .filter(|b| !cache.live_brokers.contains(b))
                    .copied()
                    .collect(),
            })
            .collect();
        // A topic the cluster does not know (yet) is reported as such.
        for t in topics.unwrap_or(&[]) {
            if !cache.partitions.keys().any(|tp| *tp.topic == **t) {
                partitions.push(PartitionMetadata {
                    tp: TopicPartition::new(t, 0),
                    error: ErrorCode::UnknownTopicOrPartition,
                    leader: None,
                    leader_epoch: 0,
                    replicas: Vec::new(),
                    isr: Vec::new(),
                    offline_replicas: Vec::new(),
                });
            }
        }
        Response::Metadata {
            brokers: cache.live_brokers.clone(),
            controller_id: cache.controller_id,
            partitions,
        }
    }

    /// An idempotent producer's id: `broker_epoch << 16 | n`. Kafka allocates blocks of ids
    /// through `/latest_producer_id_block`; the broker epoch (a zxid, unique per
    /// registration) makes ids unique without that znode.
    fn init_producer_id(&mut self) -> Response {
        let Some(epoch) = self.broker_epoch else {
            return Response::InitProducerId {
                error: ErrorCode::BrokerNotAvailable,
                producer_id: -1,
                producer_epoch: -1,
            };
        };
        self.next_producer_seq += 1;
        Response::InitProducerId {
            error: ErrorCode::None,
            producer_id: (epoch << 16) | (self.next_producer_seq & 0xffff),
            producer_epoch: 0,
        }
    }
}
