//! The znodes of a ZooKeeper-mode Kafka cluster (KafkaZkClient's `ZkData`): their paths and
//! their JSON content, in Kafka's own layout, so that a dump of the simulated ensemble reads
//! like a real cluster's.
//!
//! - `/brokers/ids/<id>`: ephemeral registration; its czxid is the broker epoch (KIP-380).
//! - `/controller`: ephemeral, `{"version":1,"brokerid":N,"timestamp":"0"}`.
//! - `/controller_epoch`: persistent, the epoch as a decimal string; a new controller bumps
//!   it conditionally on its version in the same multi that creates `/controller`.
//! - `/brokers/topics/<t>`: the assignment, `{"version":2,"partitions":{"0":[1,2,3]}}`.
//! - `/brokers/topics/<t>/partitions/<p>/state`: leader, leader epoch, ISR and the
//!   controller epoch of the writer; written conditionally on its zkVersion.
//! - `/isr_change_notification/isr_change_<seq>`: a leader's notice that it changed ISRs.
//!
//! May depend on: `kafka::msg`, serde_json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::msg::{BrokerId, TopicPartition};

pub const BROKERS: &str = "/brokers";
pub const BROKER_IDS: &str = "/brokers/ids";
pub const TOPICS: &str = "/brokers/topics";
pub const CONTROLLER: &str = "/controller";
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
pub const ISR_CHANGE: &str = "/isr_change_notification";
/// Prefix of a sequential ISR change notification under [`ISR_CHANGE`].
pub const ISR_CHANGE_PREFIX: &str = "/isr_change_notification/isr_change_";

/// The persistent paths every broker makes sure exist at start-up, parents first
/// (`KafkaZkClient.createTopLevelPaths`).
pub const TOP_LEVEL: [&str; 4] = [BROKERS, BROKER_IDS, TOPICS, ISR_CHANGE];

pub fn broker_path(id: BrokerId) -> String {
    format!("{BROKER_IDS}/{id}")
}

pub fn topic_path(topic: &str) -> String {
    format!("{TOPICS}/{topic}")
}

pub fn partitions_path(topic: &str) -> String {
    format!("{TOPICS}/{topic}/partitions")
}

pub fn partition_path(tp: &TopicPartition) -> String {
    format!("{TOPICS}/{}/partitions/{}", tp.topic, tp.partition)
}

pub fn partition_state_path(tp: &TopicPartition) -> String {
    format!("{}/state", partition_path(tp))
}

/// The partition a `.../partitions/<p>/state` path names.
pub fn parse_partition_state_path(path: &str) -> Option<TopicPartition> {
    let rest = path.strip_prefix(TOPICS)?.strip_prefix('/')?;
    let (topic, rest) = rest.split_once("/partitions/")?;
    let partition = rest.strip_suffix("/state")?.parse().ok()?;
    Some(TopicPartition::new(topic, partition))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub version: u32,
    pub host: String,
    pub port: u16,
}

impl BrokerRegistration {
    pub fn new(id: BrokerId) -> Self {
        BrokerRegistration {
            version: 5,
            host: format!("kafka{id}"),
            port: 9092,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerData {
    pub version: u32,
    pub brokerid: BrokerId,
    pub timestamp: String,
}

impl ControllerData {
    pub fn new(id: BrokerId) -> Self {
        // Kafka writes the wall clock here; a run has none, and nothing reads it.
        ControllerData {
            version: 1,
            brokerid: id,
            timestamp: "0".into(),
        }
    }
}

pub fn encode_controller_epoch(epoch: u32) -> Vec<u8> {
    epoch.to_string().into_bytes()
}

pub fn decode_controller_epoch(data: &[u8]) -> Option<u32> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

/// `/brokers/topics/<t>`: partition -> assigned replicas in preference order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    pub version: u32,
    pub partitions: BTreeMap<String, Vec<BrokerId>>,
}

impl TopicAssignment {
    pub fn new(assignment: &[(u32, Vec<BrokerId>)]) -> Self {
        TopicAssignment {
            version: 2,
            partitions: assignment
                .iter()
                .map(|(p, r)| (p.to_string(), r.clone()))
                .collect(),
        }
    }
    /// Partition -> replicas, numerically ordered; None if a partition key is not a number.
    pub fn replicas(&self) -> Option<BTreeMap<u32, Vec<BrokerId>>> {
        self.partitions
            .iter()
            .map(|(p, r)| Some((p.parse().ok()?, r.clone())))
            .collect()
    }
}

/// `/brokers/topics/<t>/partitions/<p>/state` (`LeaderAndIsr` plus the controller epoch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStateData {
    pub controller_epoch: u32,
    /// -1: no leader (offline).
    pub leader: i64,
    pub version: u32,
    pub leader_epoch: u32,
    pub isr: Vec<BrokerId>,
}

impl PartitionStateData {
    pub fn new(leader: Option<BrokerId>, leader_epoch: u32, isr: &[BrokerId], ce: u32) -> Self {
        PartitionStateData {
            controller_epoch: ce,
            leader: leader.map_or(-1, i64::from),
            version: 1,
            leader_epoch,
            isr: isr.to_vec(),
        }
    }
    pub fn leader(&self) -> Option<BrokerId> {
        BrokerId::try_from(self.leader).ok()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsrChangeNotification {
    pub version: u32,
    pub partitions: Vec<NotifiedPartition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifiedPartition {
    pub topic: String,
    pub partition: u32,
}

impl IsrChangeNotification {
    pub fn new(tps: &[TopicPartition]) -> Self {
        IsrChangeNotification {
            version: 1,
            partitions: tps
                .iter()
                .map(|tp| NotifiedPartition {
                    topic: tp.topic.to_string(),
                    partition: tp.partition,
                })
                .collect(),
        }
    }
}

/// Serialises znode content as Kafka does (compact JSON).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("znode data serialises")
}

/// Parses znode content; None for content that is not this znode's format.
pub fn decode<T: for<'de> Deserialize<'de>>(data: &[u8]) -> Option<T> {
    serde_json::from_slice(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_state_round_trips_in_kafkas_layout() {
        let s = PartitionStateData::new(Some(2), 7, &[2, 0], 3);
        let bytes = encode(&s);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"controller_epoch":3,"leader":2,"version":1,"leader_epoch":7,"isr":[2,0]}"#
        );
        assert_eq!(decode::<PartitionStateData>(&bytes), Some(s));
        let offline = PartitionStateData::new(None, 8, &[2], 3);
        assert_eq!(offline.leader(), None);
        assert_eq!(decode::<PartitionStateData>(b"garbage"), None);
    }

    #[test]
    fn paths_name_the_partition_they_hold() {
        let tp = TopicPartition::new("orders", 4);
        let path = partition_state_path(&tp);
        assert_eq!(path, "/brokers/topics/orders/partitions/4/state");
        assert_eq!(parse_partition_state_path(&path), Some(tp));
        assert_eq!(parse_partition_state_path("/brokers/ids/1"), None);
        assert_eq!(
            decode_controller_epoch(&encode_controller_epoch(12)),
            Some(12)
        );
        let a = TopicAssignment::new(&[(0, vec![0, 1]), (10, vec![1, 2])]);
        let r = a.replicas().unwrap();
        assert_eq!(r.keys().copied().collect::<Vec<_>>(), vec![0, 10]);
    }
}
