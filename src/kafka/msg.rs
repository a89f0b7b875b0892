//! Request and response messages between Kafka brokers, the controller and clients, as in the
//! Kafka protocol of the ZooKeeper era (2.x-3.x), trimmed to the fields replication and the
//! checks need. Controller requests carry the controller epoch (and the broker epoch of the
//! target, KIP-380); partition states carry the leader epoch and the zkVersion of the
//! partition-state znode; fetches and OffsetsForLeaderEpoch carry `currentLeaderEpoch`
//! (KIP-320) and fetches `lastFetchedEpoch` (KIP-595's truncate-on-fetch, Kafka 2.7+).
//!
//! Every message derives `Clone, Debug, PartialEq, Eq, Hash`: the kernel hashes each
//! delivered message into the run's trace hash.
//!
//! May depend on: `kafka::log::batch`, `kafka::config` (acks).

use std::cell::RefCell;
use std::rc::Rc;

use super::config::Acks;
use super::log::batch::{Batch, ProducerStamp, Record};

/// A broker id (`broker.id`).
pub type BrokerId = u32;

/// A topic partition; its log directory on a broker is `<topic>-<partition>`.
///
/// The topic name is shared (`Rc<str>`, one per name and thread: see [`intern`]):
/// partitions are copied into nearly every request, response, map key and held
/// operation, and a copy is then a count increment rather than an allocation, and two
/// partitions of one topic compare their names by pointer. It compares, orders, hashes
/// and prints exactly as `(topic: String, partition)` does.
#[derive(Clone, Debug)]
pub struct TopicPartition {
    pub topic: Rc<str>,
    pub partition: u32,
}

/// The one shared copy of a topic name on this thread. Topics are few (a scenario's
/// handful), so a short list searched in order does; nothing depends on which copy a
/// partition holds, only how fast names compare.
fn intern(topic: &str) -> Rc<str> {
    thread_local! {
        static TOPICS: RefCell<Vec<Rc<str>>> = const { RefCell::new(Vec::new()) };
    }
    TOPICS.with(|t| {
        let mut t = t.borrow_mut();
        if let Some(name) = t.iter().find(|n| ***n == *topic) {
            return Rc::clone(name);
        }
        let name: Rc<str> = Rc::from(topic);
        t.push(Rc::clone(&name));
        name
    })
}

impl PartialEq for TopicPartition {
    fn eq(&self, other: &Self) -> bool {
        self.partition == other.partition
            && (Rc::ptr_eq(&self.topic, &other.topic) || self.topic == other.topic)
    }
}

impl Eq for TopicPartition {}

impl std::hash::Hash for TopicPartition {
    /// As the derived hash of `(topic: String, partition)`: the run's trace hash covers
    /// every message, partitions included.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.topic.hash(state);
        self.partition.hash(state);
    }
}

impl Ord for TopicPartition {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let topics = if Rc::ptr_eq(&self.topic, &other.topic) {
            std::cmp::Ordering::Equal
        } else {
            self.topic.cmp(&other.topic)
        };
        topics.then(self.partition.cmp(&other.partition))
    }
}

impl PartialOrd for TopicPartition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl TopicPartition {
    pub fn new(topic: &str, partition: u32) -> Self {
        TopicPartition {
            topic: intern(topic),
            partition,
        }
    }
    /// The partition's log directory name, as Kafka names it.
    pub fn dir(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Kafka error codes that replication and its clients can see (`Errors`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorCode {
    None,
    OffsetOutOfRange,
    CorruptMessage,
    UnknownTopicOrPartition,
    LeaderNotAvailable,
    /// NOT_LEADER_FOR_PARTITION before Kafka 2.6.
    NotLeaderOrFollower,
    RequestTimedOut,
    BrokerNotAvailable,
    ReplicaNotAvailable,
    StaleControllerEpoch,
    NotEnoughReplicas,
    NotEnoughReplicasAfterAppend,
    InvalidRequiredAcks,
    OutOfOrderSequenceNumber,
    /// ProducerFenced before Kafka 2.7.
    InvalidProducerEpoch,
    /// KIP-320: the request's leader epoch is older than the replica's.
    FencedLeaderEpoch,
    /// KIP-320: the request's leader epoch is newer than the replica's.
    UnknownLeaderEpoch,
    StaleBrokerEpoch,
    /// The request went to a broker that is not (or no longer) the active controller
    /// (NOT_CONTROLLER; a ControlledShutdown pending when the controller resigned).
    NotController,
}

impl ErrorCode {
    /// Whether a client should refresh metadata and retry (Kafka's retriable errors that
    /// point at a leadership change).
    pub fn needs_metadata_refresh(self) -> bool {
        matches!(
            self,
            ErrorCode::NotLeaderOrFollower
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::UnknownLeaderEpoch
                | ErrorCode::UnknownTopicOrPartition
        )
    }
}

/// `(epoch, end offset)`: the answer to OffsetsForLeaderEpoch, and a fetch's
/// `divergingEpoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EpochEndOffset {
    pub epoch: u32,
    pub end_offset: u64,
}

/// One partition's records in a produce request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProducePartition {
    pub tp: TopicPartition,
    pub producer: ProducerStamp,
    pub records: Vec<Record>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProducePartitionResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    /// Offset of the batch's first record (the original one for a duplicate).
    pub base_offset: Option<u64>,
    pub log_start_offset: u64,
}

/// One partition of a fetch, from a follower (`replica_id` set) or a consumer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FetchPartition {
    pub tp: TopicPartition,
    pub fetch_offset: u64,
    /// Epoch of the last batch in the fetcher's log (followers; consumers since KIP-320).
    pub last_fetched_epoch: Option<u32>,
    /// The leader epoch the fetcher believes current (KIP-320).
    pub current_leader_epoch: Option<u32>,
    pub max_records: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FetchPartitionResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    /// Set instead of records when the fetcher's log diverges from the leader's.
    pub diverging_epoch: Option<EpochEndOffset>,
    pub batches: Vec<Batch>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetForLeaderPartition {
    pub tp: TopicPartition,
    pub current_leader_epoch: Option<u32>,
    pub leader_epoch: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OffsetForLeaderPartitionResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    /// None is UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET.
    pub end: Option<EpochEndOffset>,
}

/// The controller's view of one partition, as written in
/// `/brokers/topics/<t>/partitions/<p>/state` plus the assignment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionState {
    pub tp: TopicPartition,
    /// The controller epoch that last wrote the partition state.
    pub controller_epoch: u32,
    pub leader: Option<BrokerId>,
    pub leader_epoch: u32,
    pub isr: Vec<BrokerId>,
    /// The partition-state znode's data version.
    pub zk_version: i32,
    /// The assigned replicas (AR), in preference order.
    pub replicas: Vec<BrokerId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StopReplicaPartition {
    pub tp: TopicPartition,
    pub leader_epoch: u32,
    pub delete_partition: bool,
}

/// Where ListOffsets looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OffsetSpec {
    Earliest,
    Latest,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListOffsetsPartition {
    pub tp: TopicPartition,
    pub current_leader_epoch: Option<u32>,
    pub spec: OffsetSpec,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListOffsetsPartitionResponse {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    pub offset: u64,
    pub leader_epoch: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionMetadata {
    pub tp: TopicPartition,
    pub error: ErrorCode,
    pub leader: Option<BrokerId>,
    pub leader_epoch: u32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub offline_replicas: Vec<BrokerId>,
}

/// A request; every one travels with a correlation id in [`KafkaMsg`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    Produce {
        acks: Acks,
        timeout_ms: u64,
        partitions: Vec<ProducePartition>,
    },
    Fetch {
        /// The fetching follower; None for a consumer (which reads below the HW only).
        replica_id: Option<BrokerId>,
        max_wait_ms: u64,
        partitions: Vec<FetchPartition>,
    },
    OffsetsForLeaderEpoch {
        replica_id: Option<BrokerId>,
        partitions: Vec<OffsetForLeaderPartition>,
    },
    LeaderAndIsr {
        controller_id: BrokerId,
        controller_epoch: u32,
        /// The target broker's epoch (czxid of its registration), KIP-380.
        broker_epoch: i64,
        partitions: Vec<PartitionState>,
        live_leaders: Vec<BrokerId>,
    },
    UpdateMetadata {
        controller_id: BrokerId,
        controller_epoch: u32,
        broker_epoch: i64,
        partitions: Vec<PartitionState>,
        live_brokers: Vec<BrokerId>,
    },
    StopReplica {
        controller_id: BrokerId,
        controller_epoch: u32,
        broker_epoch: i64,
        partitions: Vec<StopReplicaPartition>,
    },
    ControlledShutdown {
        broker_id: BrokerId,
        broker_epoch: i64,
    },
    Metadata {
        /// None: every topic.
        topics: Option<Vec<String>>,
    },
    ListOffsets {
        replica_id: Option<BrokerId>,
        partitions: Vec<ListOffsetsPartition>,
    },
    /// An idempotent producer asks for its producer id and epoch (no transactional id).
    InitProducerId,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Response {
    Produce {
        partitions: Vec<ProducePartitionResponse>,
    },
    Fetch {
        error: ErrorCode,
        partitions: Vec<FetchPartitionResponse>,
    },
    OffsetsForLeaderEpoch {
        partitions: Vec<OffsetForLeaderPartitionResponse>,
    },
    LeaderAndIsr {
        error: ErrorCode,
        partitions: Vec<(TopicPartition, ErrorCode)>,
    },
    UpdateMetadata {
        error: ErrorCode,
    },
    StopReplica {
        error: ErrorCode,
        partitions: Vec<(TopicPartition, ErrorCode)>,
    },
    ControlledShutdown {
        error: ErrorCode,
        /// Partitions the broker still leads (the shutdown may proceed when empty).
        remaining: Vec<TopicPartition>,
    },
    Metadata {
        brokers: Vec<BrokerId>,
        controller_id: Option<BrokerId>,
        partitions: Vec<PartitionMetadata>,
    },
    ListOffsets {
        partitions: Vec<ListOffsetsPartitionResponse>,
    },
    InitProducerId {
        error: ErrorCode,
        producer_id: i64,
        producer_epoch: i16,
    },
}

/// What travels on a connection to or from a broker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KafkaMsg {
    Request { correlation_id: u64, body: Request },
    Response { correlation_id: u64, body: Response },
}

impl Request {
    /// Kafka's API key name, for timelines.
    pub fn api(&self) -> &'static str {
        match self {
            Request::Produce { .. } => "Produce",
            Request::Fetch { .. } => "Fetch",
            Request::OffsetsForLeaderEpoch { .. } => "OffsetsForLeaderEpoch",
            Request::LeaderAndIsr { .. } => "LeaderAndIsr",
            Request::UpdateMetadata { .. } => "UpdateMetadata",
            Request::StopReplica { .. } => "StopReplica",
            Request::ControlledShutdown { .. } => "ControlledShutdown",
            Request::Metadata { .. } => "Metadata",
            Request::ListOffsets { .. } => "ListOffsets",
            Request::InitProducerId => "InitProducerId",
        }
    }

    /// The controller epoch of a controller request (LeaderAndIsr, UpdateMetadata,
    /// StopReplica), which a broker compares with the highest it has seen.
    pub fn controller_epoch(&self) -> Option<u32> {
        match self {
            Request::LeaderAndIsr {
                controller_epoch, ..
            }
            | Request::UpdateMetadata {
                controller_epoch, ..
            }
            | Request::StopReplica {
                controller_epoch, ..
            } => Some(*controller_epoch),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_requests_expose_their_epoch_and_others_do_not() {
        let lai = Request::LeaderAndIsr {
            controller_id: 1,
            controller_epoch: 7,
            broker_epoch: 40,
            partitions: vec![],
            live_leaders: vec![1],
        };
        assert_eq!(lai.controller_epoch(), Some(7));
        assert_eq!(lai.api(), "LeaderAndIsr");
        let meta = Request::Metadata { topics: None };
        assert_eq!(meta.controller_epoch(), None);
        assert_eq!(TopicPartition::new("t", 3).dir(), "t-3");
        assert!(ErrorCode::FencedLeaderEpoch.needs_metadata_refresh());
        assert!(!ErrorCode::NotEnoughReplicas.needs_metadata_refresh());
    }
}
