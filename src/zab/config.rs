//! ZooKeeper server configuration and the named historical bug modes.
//!
//! Models the safety- and liveness-relevant knobs of `zoo.cfg`, under the names its users know
//! (`tickTime`, `initLimit`, `syncLimit`, `snapCount`, ...). Every duration is an integer
//! number of **milliseconds**, as in zoo.cfg; limits are counted in ticks, as in zoo.cfg.
//! Nothing on a decision path is a float.
//!
//! May depend on: serde only.

use serde::{Deserialize, Serialize};

/// Server configuration shared by every server of one ensemble.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZabConfig {
    /// The basic time unit, in ms: ping period, session-expiry bucket width.
    #[serde(rename = "tickTime")]
    pub tick_time_ms: u64,
    /// Ticks a follower may take to connect to and sync with a leader (discovery + sync).
    #[serde(rename = "initLimit")]
    pub init_limit_ticks: u64,
    /// Ticks a follower may lag (no ping answer) before the leader drops it, and that a
    /// follower waits for its leader before going back to LOOKING.
    #[serde(rename = "syncLimit")]
    pub sync_limit_ticks: u64,
    /// Committed transactions between two periodic snapshots.
    #[serde(rename = "snapCount")]
    pub snap_count: u64,
    /// How many committed transactions the leader keeps in memory for DIFF syncs
    /// (ZooKeeper's `commitLogCount`); a follower further behind gets a SNAP.
    #[serde(rename = "commitLogCount")]
    pub commit_log_count: u64,
    /// FLE: how long a server waits for a better vote once a quorum agrees with it, in ms.
    #[serde(rename = "finalizeWait")]
    pub finalize_wait_ms: u64,
    /// FLE: the cap of the doubling notification re-send interval, in ms. ZooKeeper's
    /// default is 60 s; a smaller cap shortens the liveness bound after partitions heal.
    #[serde(rename = "maxNotificationInterval")]
    pub max_notification_interval_ms: u64,
    /// Lower bound of the negotiated session timeout, in ms (default 2 * tickTime).
    #[serde(rename = "minSessionTimeout")]
    pub min_session_timeout_ms: Option<u64>,
    /// Upper bound of the negotiated session timeout, in ms (default 20 * tickTime).
    #[serde(rename = "maxSessionTimeout")]
    pub max_session_timeout_ms: Option<u64>,
    /// Named historical bugs switched on (normally none).
    #[serde(rename = "bugModes")]
    pub bug_modes: Vec<BugMode>,
}

impl Default for ZabConfig {
    fn default() -> Self {
        ZabConfig {
            tick_time_ms: 100,
            init_limit_ticks: 10,
            sync_limit_ticks: 5,
            snap_count: 1000,
            commit_log_count: 500,
            finalize_wait_ms: 200,
            max_notification_interval_ms: 1600,
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            bug_modes: Vec::new(),
        }
    }
}

const NS_PER_MS: u64 = 1_000_000;

impl ZabConfig {
    pub fn bug(&self, mode: BugMode) -> bool {
        self.bug_modes.contains(&mode)
    }
    pub fn tick_ns(&self) -> u64 {
        self.tick_time_ms * NS_PER_MS
    }
    pub fn init_limit_ns(&self) -> u64 {
        self.init_limit_ticks * self.tick_ns()
    }
    pub fn sync_limit_ns(&self) -> u64 {
        self.sync_limit_ticks * self.tick_ns()
    }
    pub fn finalize_wait_ns(&self) -> u64 {
        self.finalize_wait_ms * NS_PER_MS
    }
    pub fn max_notification_interval_ns(&self) -> u64 {
        self.max_notification_interval_ms * NS_PER_MS
    }
    /// Clamps a requested session timeout into [minSessionTimeout, maxSessionTimeout], whose
    /// defaults are 2 and 20 ticks (A.9).
    pub fn negotiate_session_timeout_ms(&self, requested_ms: u64) -> u64 {
        let min = self.min_session_timeout_ms.unwrap_or(2 * self.tick_time_ms);
        let max = self
            .max_session_timeout_ms
            .unwrap_or(20 * self.tick_time_ms);
        requested_ms.clamp(min, max.max(min))
    }
    /// Semantic validation (called by the scenario layer); returns the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.tick_time_ms == 0 {
            return Err("tickTime must be > 0".into());
        }
        if self.init_limit_ticks == 0 || self.sync_limit_ticks == 0 {
            return Err("initLimit and syncLimit must be > 0".into());
        }
        if self.snap_count == 0 || self.commit_log_count == 0 {
            return Err("snapCount and commitLogCount must be > 0".into());
        }
        if self.max_notification_interval_ms == 0 {
            return Err("maxNotificationInterval must be > 0".into());
        }
        if let (Some(min), Some(max)) = (self.min_session_timeout_ms, self.max_session_timeout_ms) {
            if min > max {
                return Err(format!(
                    "minSessionTimeout ({min}) is above maxSessionTimeout ({max})"
                ));
            }
        }
        Ok(())
    }
}

/// A real ZooKeeper bug re-created as a small deliberate deviation in the protocol code.
/// Serde names are the JIRA ids. See reference part C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BugMode {
    /// Z12: a leader answers `sync` without confirming it still has a quorum, so a deposed
    /// leader serves a stale sync+read. (Off = "quorum sync": the leader answers a sync only
    /// after a quorum answered a ping sent after the sync arrived.)
    #[serde(rename = "ZOOKEEPER-1675")]
    Zk1675,
    /// Z7: a follower acks NEWLEADER before the DIFF-synced transactions are logged; it
    /// logs them only after UPTODATE.
    #[serde(rename = "ZOOKEEPER-3911")]
    Zk3911,
    /// Z8: a follower logs the synced transactions at NEWLEADER but sends the ACK without
    /// waiting for their fsync.
    #[serde(rename = "ZOOKEEPER-4646")]
    Zk4646,
    /// Z9: a follower persists currentEpoch before the synced transactions are durable.
    #[serde(rename = "ZOOKEEPER-4643")]
    Zk4643,
    /// Z3: a follower advances lastProcessedZxid to the leader's zxid on a DIFF before the
    /// diff transactions are applied.
    #[serde(rename = "ZOOKEEPER-2355")]
    Zk2355,
    /// Z1: the vote order compares (zxid, sid) outside the epoch guard: not transitive.
    #[serde(rename = "ZOOKEEPER-1419")]
    Zk1419,
    /// Z4 (apache/zookeeper PR #310): going back to LOOKING keeps the in-memory tree without
    /// fast-forwarding it from the log, and elections and ACKEPOCH advertise the tree's zxid;
    /// a txn logged but never committed stays in the log behind the next DIFF and comes back
    /// at the next restart.
    #[serde(rename = "ZOOKEEPER-2845")]
    Zk2845,
    /// A finding, not a JIRA: the leader keeps counting a learner's ACKs for proposals that
    /// the learner's re-sync (TRUNC above them, or SNAP) removed from its log, as
    /// ZooKeeper's `Leader.processAck` does; a commit can then rest on fewer than a quorum
    /// of durable copies (scenarios/findings/zk-stale-ack-after-trunc.json).
    #[serde(rename = "stale-ack-after-trunc")]
    StaleAckAfterTrunc,
    /// A finding, not a JIRA (the ZOOKEEPER-1549 class): ZooKeeper's sync and truncation
    /// for a learner whose durable snapshot holds txns a later leader lacks. The leader
    /// sends TRUNC(maxCommittedLog) to any learner ahead of it (`LearnerHandler.syncFollower`
    /// checks no epoch on that branch); the learner truncates only its log
    /// (`FileTxnSnapLog.truncateLog`), reloads the newest snapshot, which still holds the
    /// dropped txns, and sets lastProcessedZxid to the TRUNC point (`Learner.syncWithLeader`):
    /// its tree silently diverges (scenarios/findings/zk-trunc-below-snapshot.json).
    #[serde(rename = "trunc-below-snapshot")]
    TruncBelowSnapshot,
}

impl BugMode {
    pub const ALL: [BugMode; 9] = [
        BugMode::Zk1675,
        BugMode::Zk3911,
        BugMode::Zk4646,
        BugMode::Zk4643,
        BugMode::Zk2355,
        BugMode::Zk1419,
        BugMode::Zk2845,
        BugMode::StaleAckAfterTrunc,
        BugMode::TruncBelowSnapshot,
    ];
    pub fn jira(self) -> &'static str {
        match self {
            BugMode::Zk1675 => "ZOOKEEPER-1675",
            BugMode::Zk3911 => "ZOOKEEPER-3911",
            BugMode::Zk4646 => "ZOOKEEPER-4646",
            BugMode::Zk4643 => "ZOOKEEPER-4643",
            BugMode::Zk2355 => "ZOOKEEPER-2355",
            BugMode::Zk1419 => "ZOOKEEPER-1419",
            BugMode::Zk2845 => "ZOOKEEPER-2845",
            BugMode::StaleAckAfterTrunc => "stale-ack-after-trunc",
            BugMode::TruncBelowSnapshot => "trunc-below-snapshot",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_uses_zoo_cfg_names_and_rejects_unknown_keys() {
        let cfg: ZabConfig =
            serde_json::from_str(r#"{"tickTime": 50, "bugModes": ["ZOOKEEPER-4643"]}"#).unwrap();
        assert_eq!(cfg.tick_time_ms, 50);
        assert!(cfg.bug(BugMode::Zk4643));
        assert!(serde_json::from_str::<ZabConfig>(r#"{"tick": 1}"#).is_err());
    }

    #[test]
    fn session_timeout_clamped_to_2_and_20_ticks() {
        let cfg = ZabConfig::default();
        assert_eq!(cfg.negotiate_session_timeout_ms(1), 200);
        assert_eq!(cfg.negotiate_session_timeout_ms(1_000_000), 2000);
        assert_eq!(cfg.negotiate_session_timeout_ms(700), 700);
    }
}
