//! Broker, producer and consumer settings under the names Kafka users know from
//! `server.properties` and the client configs, with Kafka's defaults, and the named
//! historical bug modes (reference part C; issue 9).
//!
//! Durations are integer milliseconds (`*.ms`), as in Kafka. Nothing on a decision path is a
//! float. Defaults are Kafka 3.x's (ZooKeeper mode): `replica.lag.time.max.ms` 30 s,
//! `zookeeper.session.timeout.ms` 18 s, no flush by count or time, and on the producer
//! `acks=all` with idempotence on (the defaults since 3.0; 2.x had `acks=1`, no idempotence).
//!
//! May depend on: serde only.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NS_PER_MS: u64 = 1_000_000;
/// Kafka's "never" for the flush intervals (`Long.MAX_VALUE`).
pub const NEVER: u64 = i64::MAX as u64;

/// The safety- and liveness-relevant part of a broker's `server.properties`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerProperties {
    /// Fewest ISR members for an acks=all produce to be accepted (NOT_ENOUGH_REPLICAS) and
    /// acknowledged (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    #[serde(rename = "min.insync.replicas")]
    pub min_insync_replicas: u32,
    /// Whether the controller may elect a replica outside the ISR when no ISR member lives.
    #[serde(rename = "unclean.leader.election.enable")]
    pub unclean_leader_election_enable: bool,
    /// A follower that has not caught up to the leader's LEO for this long leaves the ISR.
    #[serde(rename = "replica.lag.time.max.ms")]
    pub replica_lag_time_max_ms: u64,
    /// The brokers' ZooKeeper session timeout.
    #[serde(rename = "zookeeper.session.timeout.ms")]
    pub zookeeper_session_timeout_ms: u64,
    /// Fsync a partition's log once this many records are unflushed (default: never).
    #[serde(rename = "log.flush.interval.messages")]
    pub log_flush_interval_messages: u64,
    /// Fsync a partition's log once its oldest unflushed record is this old (default: none,
    /// which in Kafka falls back to a scheduler interval of never).
    #[serde(rename = "log.flush.interval.ms")]
    pub log_flush_interval_ms: Option<u64>,
    /// How often the recovery points are written to `recovery-point-offset-checkpoint`.
    #[serde(rename = "log.flush.offset.checkpoint.interval.ms")]
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// How often the high watermarks are written to `replication-offset-checkpoint`.
    #[serde(rename = "replica.high.watermark.checkpoint.interval.ms")]
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// Longest time a leader holds a follower's fetch open waiting for data.
    #[serde(rename = "replica.fetch.wait.max.ms")]
    pub replica_fetch_wait_max_ms: u64,
    /// Pause of a follower's fetcher after a fetch error.
    #[serde(rename = "replica.fetch.backoff.ms")]
    pub replica_fetch_backoff_ms: u64,
    /// Segment size at which a log rolls to a new segment file.
    #[serde(rename = "log.segment.bytes")]
    pub log_segment_bytes: u64,
    /// Whether a stopping broker first asks the controller to move its leaderships away.
    #[serde(rename = "controlled.shutdown.enable")]
    pub controlled_shutdown_enable: bool,
    /// Named historical bugs switched on (normally none).
    #[serde(rename = "bugModes")]
    pub bug_modes: Vec<BugMode>,
}

impl Default for ServerProperties {
    fn default() -> Self {
        ServerProperties {
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            replica_lag_time_max_ms: 30_000,
            zookeeper_session_timeout_ms: 18_000,
            log_flush_interval_messages: NEVER,
            log_flush_interval_ms: None,
            log_flush_offset_checkpoint_interval_ms: 60_000,
            replica_high_watermark_checkpoint_interval_ms: 5_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_backoff_ms: 1_000,
            log_segment_bytes: 1 << 30,
            controlled_shutdown_enable: true,
            bug_modes: Vec::new(),
        }
    }
}

impl ServerProperties {
    pub fn bug(&self, mode: BugMode) -> bool {
        self.bug_modes.contains(&mode)
    }
    pub fn replica_lag_time_max_ns(&self) -> u64 {
        self.replica_lag_time_max_ms * NS_PER_MS
    }
    /// Whether a log with `unflushed` records whose oldest unflushed append was at
    /// `oldest_unflushed_ns` must be fsynced at `now_ns` (Kafka's `flush.messages` /
    /// `flush.ms` checks).
    pub fn flush_due(&self, unflushed: u64, oldest_unflushed_ns: Option<u64>, now_ns: u64) -> bool {
        if unflushed == 0 {
            return false;
        }
        let by_count = unflushed >= self.log_flush_interval_messages;
        let by_time = match (self.log_flush_interval_ms, oldest_unflushed_ns) {
            (Some(ms), Some(t)) => now_ns.saturating_sub(t) >= ms.saturating_mul(NS_PER_MS),
            _ => false,
        };
        by_count || by_time
    }
    /// Semantic validation (called by the scenario layer); the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_insync_replicas == 0 {
            return Err("min.insync.replicas must be >= 1".into());
        }
        if self.replica_lag_time_max_ms == 0 || self.zookeeper_session_timeout_ms == 0 {
            return Err(
                "replica.lag.time.max.ms and zookeeper.session.timeout.ms must be > 0".into(),
            );
        }
        if self.log_flush_interval_messages == 0 {
            return Err("log.flush.interval.messages must be >= 1".into());
        }
        if self.log_segment_bytes < 128 {
            return Err("log.segment.bytes must be >= 128".into());
        }
        Ok(())
    }
}

/// A topic as `kafka-topics --create` makes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: u32,
    #[serde(rename = "replication.factor")]
    pub replication_factor: u32,
}

impl TopicSpec {
    /// The assigned replicas of every partition over brokers `0..brokers`, in preference
    /// order. Kafka's rack-unaware assignment with its random start index and replica shift
    /// fixed at zero: partition p gets brokers p, p+1, .. (mod the broker count), so
    /// preferred leaders spread over the brokers and a run needs no randomness for it.
    pub fn assignment(&self, brokers: u32) -> Vec<(u32, Vec<u32>)> {
        (0..self.partitions)
            .map(|p| {
                let replicas = (0..self.replication_factor)
                    .map(|i| (p + i) % brokers)
                    .collect();
                (p, replicas)
            })
            .collect()
    }

    /// Semantic validation against the cluster size; the message names the field.
    pub fn validate(&self, brokers: u32) -> Result<(), String> {
        if self.name.is_empty() || self.name.contains('/') {
            return Err(format!(
                "topic name {:?} is not a valid topic name",
                self.name
            ));
        }
        if self.partitions == 0 {
            return Err(format!("topic {}: partitions must be >= 1", self.name));
        }
        if self.replication_factor == 0 || self.replication_factor > brokers {
            return Err(format!(
                "topic {}: replication.factor {} must be between 1 and the {} brokers",
                self.name, self.replication_factor, brokers
            ));
        }
        Ok(())
    }
}

/// The producer's `acks`: 0, 1 or all (-1). Accepts `0`, `1`, `-1`, `"0"`, `"1"`, `"-1"`
/// and `"all"`, as Kafka's config parser does; written back as `"all"` / `0` / `1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Serialize for Acks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Acks::None => s.serialize_i64(0),
            Acks::Leader => s.serialize_i64(1),
            Acks::All => s.serialize_str("all"),
        }
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Str(String),
        }
        let raw = Raw::deserialize(d)?;
        let text = match raw {
            Raw::Int(i) => i.to_string(),
            Raw::Str(s) => s,
        };
        match text.as_str() {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "-1" | "all" => Ok(Acks::All),
            other => Err(serde::de::Error::custom(format!(
                "acks must be 0, 1, -1 or \"all\", not {other:?}"
            ))),
        }
    }
}

/// Producer settings (Kafka 3.x defaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    pub acks: Acks,
    #[serde(rename = "enable.idempotence")]
    pub enable_idempotence: bool,
    pub retries: u32,
    #[serde(rename = "max.in.flight.requests.per.connection")]
    pub max_in_flight_requests_per_connection: u32,
    #[serde(rename = "request.timeout.ms")]
    pub request_timeout_ms: u64,
    #[serde(rename = "delivery.timeout.ms")]
    pub delivery_timeout_ms: u64,
    #[serde(rename = "retry.backoff.ms")]
    pub retry_backoff_ms: u64,
    #[serde(rename = "linger.ms")]
    pub linger_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            enable_idempotence: true,
            retries: i32::MAX as u32,
            max_in_flight_requests_per_connection: 5,
            request_timeout_ms: 30_000,
            delivery_timeout_ms: 120_000,
            retry_backoff_ms: 100,
            linger_ms: 0,
        }
    }
}

impl ProducerConfig {
    /// Kafka's own ConfigException rules for these keys.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_in_flight_requests_per_connection == 0 {
            return Err("max.in.flight.requests.per.connection must be >= 1".into());
        }
        if self.enable_idempotence {
            if self.acks != Acks::All {
                return Err("enable.idempotence requires acks=all".into());
            }
            if self.retries == 0 {
                return Err("enable.idempotence requires retries > 0".into());
            }
            if self.max_in_flight_requests_per_connection > 5 {
                return Err(
                    "enable.idempotence requires max.in.flight.requests.per.connection <= 5".into(),
                );
            }
        }
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms {
            return Err("delivery.timeout.ms must be >= linger.ms + request.timeout.ms".into());
        }
        Ok(())
    }
}

/// Where a consumer with no valid position starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoOffsetReset {
    Earliest,
    Latest,
    None,
}

/// Consumer settings (Kafka defaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    #[serde(rename = "fetch.max.wait.ms")]
    pub fetch_max_wait_ms: u64,
    #[serde(rename = "max.poll.records")]
    pub max_poll_records: u32,
    #[serde(rename = "auto.offset.reset")]
    pub auto_offset_reset: AutoOffsetReset,
    #[serde(rename = "request.timeout.ms")]
    pub request_timeout_ms: u64,
    #[serde(rename = "retry.backoff.ms")]
    pub retry_backoff_ms: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            fetch_max_wait_ms: 500,
            max_poll_records: 500,
            auto_offset_reset: AutoOffsetReset::Latest,
            request_timeout_ms: 30_000,
            retry_backoff_ms: 100,
        }
    }
}

/// A real Kafka bug re-created as a deliberate deviation at one point of the replication
/// code (issue 9). Serde names are the JIRA / KIP ids. Only the switch points exist so far:
/// each variant names the function that will consult it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BugMode {
    /// K1: acks=all acknowledges with whatever ISR there is, with no min.insync floor
    /// (0.8; shown with unclean election on). Switch: `replica` produce admission and
    /// `acks_all_status`.
    #[serde(rename = "KAFKA-1555")]
    Kafka1555,
    /// K2: truncate to the local HW on restart and on becoming a follower. Switch:
    /// `replica::Replica::become_follower`.
    #[serde(rename = "KAFKA-1211")]
    Kafka1211,
    /// K3: HW-based truncation after a simultaneous power loss (no epoch check). Switch:
    /// `replica::Replica::become_follower` and the follower's divergence handling.
    #[serde(rename = "KIP-101-2")]
    Kip101Scenario2,
    /// K4: OffsetsForLeaderEpoch answered without the epoch, and no epoch entry at
    /// become-leader. Switch: `replica::Replica::become_leader` and
    /// `replica::Replica::end_offset_for_epoch`.
    #[serde(rename = "KAFKA-6361")]
    Kafka6361,
    /// K5: ISR expansion on follower LEO >= HW alone. Switch:
    /// `replica::Replica::follower_in_sync`.
    #[serde(rename = "KAFKA-7128")]
    Kafka7128,
    /// K6: follower LEO updated from a diverging fetch. Switch: the leader's fetch handling.
    #[serde(rename = "KAFKA-13141")]
    Kafka13141,
    /// K7: controller writes without the `/controller_epoch` version check (zombie
    /// controller, KAFKA-3083). Switch: the controller (not in this module yet).
    #[serde(rename = "KAFKA-6082")]
    Kafka6082,
    /// K8: stale cached zkVersion after a session re-establishment (a liveness failure):
    /// an ISR write cut off by the session's expiry is given up as failed though it may
    /// have applied, and, before KIP-380, neither the controller (ids only) nor the broker
    /// (no broker epoch) tells a re-registration from the registration before it, so no
    /// LeaderAndIsr brings the leader the current zkVersion. Switches: the broker's ISR
    /// write path (`broker::zk`) and the leader's answer to a failed write
    /// (`replica::Replica::isr_write_failed`), its controller-request fence, and the
    /// controller's BrokerChange handling.
    #[serde(rename = "KAFKA-2729")]
    Kafka2729,
    /// Zombie follower or consumer on a deposed leader (pre-KIP-320 fencing). Switch:
    /// `replica::Replica::check_leader_epoch`.
    #[serde(rename = "KAFKA-6880")]
    Kafka6880,
}

impl BugMode {
    pub const ALL: [BugMode; 9] = [
        BugMode::Kafka1555,
        BugMode::Kafka1211,
        BugMode::Kip101Scenario2,
        BugMode::Kafka6361,
        BugMode::Kafka7128,
        BugMode::Kafka13141,
        BugMode::Kafka6082,
        BugMode::Kafka2729,
        BugMode::Kafka6880,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_properties_use_kafka_names_defaults_and_reject_unknown_keys() {
        let p: ServerProperties = serde_json::from_str(
            r#"{"min.insync.replicas": 2, "unclean.leader.election.enable": true,
                "log.flush.interval.messages": 1, "bugModes": ["KAFKA-7128", "KIP-101-2"]}"#,
        )
        .unwrap();
        assert_eq!(p.min_insync_replicas, 2);
        assert!(p.unclean_leader_election_enable);
        assert!(p.bug(BugMode::Kafka7128) && p.bug(BugMode::Kip101Scenario2));
        assert!(!p.bug(BugMode::Kafka13141));
        assert_eq!(p.replica_lag_time_max_ms, 30_000);
        assert!(ServerProperties::default().bug_modes.is_empty());
        let err = serde_json::from_str::<ServerProperties>(r#"{"min.isr": 2}"#).unwrap_err();
        assert!(err.to_string().contains("min.isr"), "{err}");
        assert!(serde_json::from_str::<ServerProperties>(r#"{"bugModes": ["KAFKA-1"]}"#).is_err());
    }

    #[test]
    fn every_bug_mode_round_trips_by_its_id() {
        for mode in BugMode::ALL {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(serde_json::from_str::<BugMode>(&json).unwrap(), mode);
        }
        assert_eq!(
            serde_json::to_string(&BugMode::Kafka6082).unwrap(),
            "\"KAFKA-6082\""
        );
    }

    #[test]
    fn flush_policy_by_count_and_by_time() {
        let never = ServerProperties::default();
        assert!(!never.flush_due(1_000_000, Some(0), u64::MAX / 2));
        let every = ServerProperties {
            log_flush_interval_messages: 1,
            ..ServerProperties::default()
        };
        assert!(every.flush_due(1, Some(5), 5));
        assert!(!every.flush_due(0, None, 5));
        let timed = ServerProperties {
            log_flush_interval_ms: Some(100),
            ..ServerProperties::default()
        };
        assert!(!timed.flush_due(3, Some(0), 99 * NS_PER_MS));
        assert!(timed.flush_due(3, Some(0), 100 * NS_PER_MS));
    }

    #[test]
    fn acks_parse_like_kafka_and_idempotence_needs_acks_all() {
        for (text, acks) in [
            ("0", Acks::None),
            ("\"1\"", Acks::Leader),
            ("-1", Acks::All),
            ("\"all\"", Acks::All),
        ] {
            assert_eq!(serde_json::from_str::<Acks>(text).unwrap(), acks, "{text}");
        }
        assert!(serde_json::from_str::<Acks>("2").is_err());
        let p: ProducerConfig = serde_json::from_str(r#"{"acks": 1}"#).unwrap();
        assert_eq!(
            p.validate().unwrap_err(),
            "enable.idempotence requires acks=all"
        );
        let p: ProducerConfig =
            serde_json::from_str(r#"{"acks": 1, "enable.idempotence": false}"#).unwrap();
        assert!(p.validate().is_ok());
        assert!(ProducerConfig::default().validate().is_ok());
        let p = ProducerConfig {
            delivery_timeout_ms: 10,
            ..ProducerConfig::default()
        };
        assert!(p.validate().unwrap_err().contains("delivery.timeout.ms"));
        let c: ConsumerConfig =
            serde_json::from_str(r#"{"auto.offset.reset": "earliest"}"#).unwrap();
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Earliest);
    }
}
