//! The `kafka` system kind of a scenario: a ZooKeeper ensemble, brokers, topics and workload
//! clients, under the names Kafka users know (`server.properties` keys, producer and consumer
//! config keys), and its semantic validation.
//!
//! Node layout (every part of the world relies on it): ZooKeeper servers `zk0..` are ids
//! `0..Z`, brokers `kafka0..` ids `Z..Z+B` (broker id i is node Z+i), then producers `p0..`,
//! then consumers `c0..`.
//!
//! Depends on: kafka (config), zab (zoo.cfg), scenario.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::kafka::config::{BugMode, ConsumerConfig, ProducerConfig, ServerProperties, TopicSpec};
use crate::zab::config::ZabConfig;

/// A ZooKeeper-mode Kafka cluster with its workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSpec {
    /// The ensemble the brokers coordinate through.
    #[serde(default)]
    pub zookeeper: KafkaZk,
    /// Brokers, 1 to 16 (broker ids 0..).
    pub brokers: u32,
    /// Topics, created by the first controller (`kafka-topics --create`).
    pub topics: Vec<TopicSpec>,
    /// `server.properties` shared by every broker.
    #[serde(default)]
    pub server_properties: ServerProperties,
    #[serde(default)]
    pub producer: ProducerSpec,
    #[serde(default)]
    pub consumer: ConsumerSpec,
}

/// The ensemble of a Kafka world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaZk {
    /// Voting servers, 1 to 7.
    #[serde(default = "default_zk_servers")]
    pub servers: u32,
    /// zoo.cfg settings shared by every server.
    #[serde(default)]
    pub zoo_cfg: ZabConfig,
}

fn default_zk_servers() -> u32 {
    3
}

impl Default for KafkaZk {
    fn default() -> Self {
        KafkaZk {
            servers: default_zk_servers(),
            zoo_cfg: ZabConfig::default(),
        }
    }
}

/// The producers: how many, how fast, over how many keys, and their Kafka config keys
/// (`acks`, `enable.idempotence`, ...) beside those, in one JSON object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerSpec {
    /// Producers `p0..`, 0 to 32.
    pub count: u32,
    /// Sends per simulated second, per producer.
    pub rate: u32,
    /// Distinct record keys (the partitioner hashes the key).
    pub keys: u32,
    pub config: ProducerConfig,
}

impl Default for ProducerSpec {
    fn default() -> Self {
        ProducerSpec {
            count: 2,
            rate: 20,
            keys: 8,
            config: ProducerConfig::default(),
        }
    }
}

/// The consumers (assign mode): how many, how fast, and their Kafka config keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Consumers `c0..`, 0 to 32.
    pub count: u32,
    /// Polls per simulated second, per consumer.
    pub rate: u32,
    pub config: ConsumerConfig,
}

impl Default for ConsumerSpec {
    fn default() -> Self {
        ConsumerSpec {
            count: 1,
            rate: 10,
            config: ConsumerConfig::default(),
        }
    }
}

/// Takes the workload keys (`count`, `rate`, ...) out of a client's JSON object, leaving the
/// Kafka config keys for the config type, which rejects unknown ones by name.
fn split_client_object<'de, D: Deserializer<'de>>(
    d: D,
    ours: &[&str],
) -> Result<(Vec<Option<u32>>, serde_json::Value), D::Error> {
    use serde::de::Error;
    let mut map = serde_json::Map::deserialize(d)?;
    let mut values = Vec::new();
    for key in ours {
        let value = match map.remove(*key) {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| D::Error::custom(format!("`{key}` must be an integer")))?,
            ),
        };
        values.push(value);
    }
    Ok((values, serde_json::Value::Object(map)))
}

fn merge_client_object<S: Serializer, C: Serialize>(
    s: S,
    config: &C,
    ours: &[(&str, u32)],
) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let mut value = serde_json::to_value(config).map_err(S::Error::custom)?;
    if let Some(map) = value.as_object_mut() {
        for (key, n) in ours {
            map.insert(key.to_string(), (*n).into());
        }
    }
    value.serialize(s)
}

impl<'de> Deserialize<'de> for ProducerSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (ours, rest) = split_client_object(d, &["count", "rate", "keys"])?;
        let config = ProducerConfig::deserialize(rest).map_err(D::Error::custom)?;
        let default = ProducerSpec::default();
        Ok(ProducerSpec {
            count: ours[0].unwrap_or(default.count),
            rate: ours[1].unwrap_or(default.rate),
            keys: ours[2].unwrap_or(default.keys),
            config,
        })
    }
}

impl Serialize for ProducerSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ours = [
            ("count", self.count),
            ("rate", self.rate),
            ("keys", self.keys),
        ];
        merge_client_object(s, &self.config, &ours)
    }
}

impl<'de> Deserialize<'de> for ConsumerSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (ours, rest) = split_client_object(d, &["count", "rate"])?;
        let config = ConsumerConfig::deserialize(rest).map_err(D::Error::custom)?;
        let default = ConsumerSpec::default();
        Ok(ConsumerSpec {
            count: ours[0].unwrap_or(default.count),
            rate: ours[1].unwrap_or(default.rate),
            config,
        })
    }
}

impl Serialize for ConsumerSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        merge_client_object(
            s,
            &self.config,
            &[("count", self.count), ("rate", self.rate)],
        )
    }
}

/// The static roles of a Kafka world ("@partition-leader:T-P" is checked by
/// [`KafkaSpec::partition_of_role`]).
pub const ROLES: &[&str] = &["@any", "@broker", "@zk", "@controller", "@zk-leader"];

/// The Kafka protocol moments a fault can wait for (resolved in `cluster::kafka::moments`):
/// "@controller-electing", the active controller with a partition-state operation waiting on
/// ZooKeeper; "@rejoining", a follower outside the ISR of a leader whose HW is still below
/// the start of its epoch (right after a leader change); "@new-leader", a partition leader
/// that has appended in its epoch with its HW still below that epoch's start.
/// "@non-controller" is not a moment but is resolved from the brokers' views too: a running
/// broker other than the active controller.
pub const MOMENT_ROLES: &[&str] = &[
    "@controller-electing",
    "@rejoining",
    NEW_LEADER_ROLE,
    NON_CONTROLLER_ROLE,
];

/// A partition's leader that has appended in its epoch, none of it committed yet.
pub const NEW_LEADER_ROLE: &str = "@new-leader";

/// A running broker other than the active controller (whose controlled shutdown the
/// controller handles).
pub const NON_CONTROLLER_ROLE: &str = "@non-controller";

/// The prefix of the role naming the current leader of one partition.
pub const PARTITION_LEADER_ROLE: &str = "@partition-leader:";

/// The Kafka online invariants and end-of-run checks a run can report (reference B.9).
pub const INVARIANTS: &[&str] = &[
    "k-dense",
    "k-epoch-mono",
    "k-one-leader",
    "k-log-match",
    "k-hw-mono",
    "k-isr-superset",
    "k-zk-fencing",
    "k-leader-complete",
    "k-ack-semantics",
    "k-idempotence",
    "k-no-loss",
    "k-consistent-read",
    "k-convergence",
    "kafka-log",
];

impl KafkaSpec {
    /// Names of every node, indexed by node id.
    pub fn node_names(&self) -> Vec<String> {
        let mut names = self.fault_target_names();
        names.extend((0..self.producer.count).map(|i| format!("p{i}")));
        names.extend((0..self.consumer.count).map(|i| format!("c{i}")));
        names
    }

    /// ZooKeeper servers and brokers: what faults aim at.
    pub fn fault_target_names(&self) -> Vec<String> {
        (0..self.zookeeper.servers)
            .map(|i| format!("zk{i}"))
            .chain((0..self.brokers).map(|i| format!("kafka{i}")))
            .collect()
    }

    /// The (topic, partition) a "@partition-leader:T-P" role names, if it is one and the
    /// partition exists.
    pub fn partition_of_role(&self, role: &str) -> Option<(String, u32)> {
        let rest = role.strip_prefix(PARTITION_LEADER_ROLE)?;
        let (topic, partition) = rest.rsplit_once('-')?;
        let partition: u32 = partition.parse().ok()?;
        self.topics
            .iter()
            .any(|t| t.name == topic && partition < t.partitions)
            .then(|| (topic.to_string(), partition))
    }

    pub fn bug_mode_names() -> Vec<String> {
        BugMode::ALL
            .iter()
            .filter_map(|b| serde_json::to_value(b).ok()?.as_str().map(str::to_string))
            .collect()
    }

    /// Semantic checks; the problem names the field under `system`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |path: &str, message: String| Err((format!("system.{path}"), message));
        if !(1..=7).contains(&self.zookeeper.servers) {
            let got = self.zookeeper.servers;
            return fail(
                "zookeeper.servers",
                format!("must be between 1 and 7 (got {got})"),
            );
        }
        if let Err(problem) = self.zookeeper.zoo_cfg.validate() {
            return fail("zookeeper.zoo_cfg", problem);
        }
        if !(1..=16).contains(&self.brokers) {
            let got = self.brokers;
            return fail("brokers", format!("must be between 1 and 16 (got {got})"));
        }
        if self.topics.is_empty() {
            return fail("topics", "needs at least one topic".into());
        }
        for (i, t) in self.topics.iter().enumerate() {
            t.validate(self.brokers)
                .or_else(|m| fail(&format!("topics[{i}]"), m))?;
            if self.topics[..i].iter().any(|o| o.name == t.name) {
                return fail(&format!("topics[{i}].name"), format!("{:?} twice", t.name));
            }
        }
        if let Err(m) = self.server_properties.validate() {
            return fail("server_properties", m);
        }
        let p = &self.producer;
        if p.count > 32 || p.rate == 0 || p.keys == 0 {
            return fail(
                "producer",
                "count must be at most 32, rate and keys at least 1".into(),
            );
        }
        p.config.validate().or_else(|m| fail("producer", m))?;
        let c = &self.consumer;
        if c.count > 32 || c.rate == 0 {
            return fail(
                "consumer",
                "count must be at most 32, rate at least 1".into(),
            );
        }
        if c.config.max_poll_records == 0 {
            return fail("consumer", "max.poll.records must be >= 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<KafkaSpec, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn client_objects_mix_workload_and_kafka_keys_and_round_trip() {
        let spec = parse(
            r#"{"brokers": 3, "topics": [{"name": "t", "partitions": 2,
                "replication.factor": 3}],
                "producer": {"count": 1, "acks": 1, "enable.idempotence": false},
                "consumer": {"rate": 5, "auto.offset.reset": "earliest"}}"#,
        )
        .unwrap();
        assert_eq!(spec.producer.count, 1);
        assert_eq!(spec.producer.rate, 20, "default rate");
        assert_eq!(
            spec.producer.config.acks,
            crate::kafka::config::Acks::Leader
        );
        assert_eq!(spec.consumer.rate, 5);
        assert_eq!(spec.zookeeper.servers, 3);
        let back: KafkaSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = parse(r#"{"brokers": 1, "topics": [], "producer": {"ack": 1}}"#).unwrap_err();
        assert!(err.contains("ack"), "{err}");
        let err = parse(r#"{"brokers": 1, "topics": [], "consumer": {"count": -1}}"#).unwrap_err();
        assert!(err.contains("count"), "{err}");
        let spec = parse(
            r#"{"brokers": 2, "topics": [{"name": "t", "partitions": 1,
                "replication.factor": 3}]}"#,
        )
        .unwrap();
        let (path, message) = spec.validate().unwrap_err();
        assert_eq!(path, "system.topics[0]");
        assert!(message.contains("replication.factor"), "{message}");
    }

    #[test]
    fn names_and_partition_roles_follow_the_layout() {
        let spec = parse(
            r#"{"zookeeper": {"servers": 1}, "brokers": 2, "topics": [{"name": "my-t",
                "partitions": 2, "replication.factor": 2}],
                "producer": {"count": 1}, "consumer": {"count": 1}}"#,
        )
        .unwrap();
        assert_eq!(spec.node_names(), ["zk0", "kafka0", "kafka1", "p0", "c0"]);
        assert_eq!(
            spec.partition_of_role("@partition-leader:my-t-1"),
            Some(("my-t".to_string(), 1))
        );
        assert_eq!(spec.partition_of_role("@partition-leader:my-t-2"), None);
        assert_eq!(spec.partition_of_role("@partition-leader:t-0"), None);
    }
}
