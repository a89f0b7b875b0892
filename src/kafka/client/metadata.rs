//! A client's metadata cache (the Java client's `Metadata`): the leader and leader epoch of
//! each partition, refreshed by Metadata requests when an error points at a leadership
//! change, when a partition has no known leader, and every `metadata.max.age.ms`.
//!
//! KIP-320: a partition's entry is replaced only by metadata with a leader epoch at least
//! the cached one (`Metadata.updateLatestMetadata`), so an answer from a broker that has
//! not yet heard of a leader change never moves a client back to a deposed leader.
//!
//! May depend on: `kafka::msg`.

use std::collections::BTreeMap;

use super::super::msg::{BrokerId, ErrorCode, PartitionMetadata, TopicPartition};

/// Kafka's `metadata.max.age.ms` default.
pub const METADATA_MAX_AGE_NS: u64 = 300_000_000_000;

/// What the cache knows of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// None: the partition has no leader (offline) as far as the cache knows.
    pub leader: Option<BrokerId>,
    pub leader_epoch: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Metadata {
    partitions: BTreeMap<TopicPartition, LeaderInfo>,
    /// An update is wanted (an error, a missing leader, or the first fetch).
    need_update: bool,
    /// A Metadata request is in flight.
    pub in_flight: bool,
    /// When the last answer arrived (or the last request failed), for the backoff.
    last_attempt_ns: Option<u64>,
    last_refresh_ns: u64,
}

impl Metadata {
    pub fn new() -> Self {
        Metadata {
            need_update: true,
            ..Metadata::default()
        }
    }

    pub fn leader(&self, tp: &TopicPartition) -> Option<LeaderInfo> {
        self.partitions.get(tp).copied()
    }

    /// The leader broker and epoch of `tp`, when one is known.
    pub fn current_leader(&self, tp: &TopicPartition) -> Option<(BrokerId, u32)> {
        let info = self.partitions.get(tp)?;
        Some((info.leader?, info.leader_epoch))
    }

    pub fn request_update(&mut self) {
        self.need_update = true;
    }

    /// Whether a Metadata request should go out now: wanted (or stale) and not within
    /// `retry.backoff.ms` of the last attempt.
    pub fn due(&self, now_ns: u64, backoff_ns: u64) -> bool {
        if self.in_flight {
            return false;
        }
        let stale = now_ns >= self.last_refresh_ns + METADATA_MAX_AGE_NS;
        let backed_off = self
            .last_attempt_ns
            .is_none_or(|t| now_ns >= t + backoff_ns);
        (self.need_update || stale) && backed_off
    }

    /// The request failed (no answer).
    pub fn failed(&mut self, now_ns: u64) {
        self.in_flight = false;
        self.last_attempt_ns = Some(now_ns);
    }

    /// Applies a Metadata answer. Returns the partitions whose leader epoch went up (for
    /// the consumer's position validation). Partitions in `wanted` with no usable entry
    /// keep the update wanted.
    pub fn update(
        &mut self,
        now_ns: u64,
        answer: &[PartitionMetadata],
        wanted: &[TopicPartition],
    ) -> Vec<(TopicPartition, LeaderInfo)> {
        self.in_flight = false;
        self.last_attempt_ns = Some(now_ns);
        self.last_refresh_ns = now_ns;
        self.need_update = false;
        let mut changed = Vec::new();
        for pm in answer {
            if pm.error != ErrorCode::None && pm.error != ErrorCode::LeaderNotAvailable {
                continue;
            }
            let new = LeaderInfo {
                leader: pm.leader,
                leader_epoch: pm.leader_epoch,
            };
            match self.partitions.get(&pm.tp) {
                // An older epoch: this broker's cache lags the controller; keep ours.
                Some(old) if new.leader_epoch < old.leader_epoch => {}
                Some(old) if *old == new => {}
                old => {
                    if old.is_none_or(|o| o.leader_epoch < new.leader_epoch) {
                        changed.push((pm.tp.clone(), new));
                    }
                    self.partitions.insert(pm.tp.clone(), new);
                }
            }
        }
        if wanted.iter().any(|tp| self.current_leader(tp).is_none()) {
            self.need_update = true;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(leader: Option<BrokerId>, epoch: u32) -> PartitionMetadata {
        PartitionMetadata {
            tp: TopicPartition::new("t", 0),
            error: ErrorCode::None,
            leader,
            leader_epoch: epoch,
            replicas: vec![0, 1, 2],
            isr: vec![0, 1, 2],
            offline_replicas: vec![],
        }
    }

    /// KIP-320: metadata with an older leader epoch never replaces a newer entry.
    #[test]
    fn stale_leader_epochs_are_ignored_and_newer_ones_reported() {
        let tp = TopicPartition::new("t", 0);
        let mut m = Metadata::new();
        assert!(m.due(0, 100));
        let changed = m.update(1, &[pm(Some(1), 3)], std::slice::from_ref(&tp));
        assert_eq!(changed.len(), 1);
        assert_eq!(m.current_leader(&tp), Some((1, 3)));
        assert!(!m.due(2, 100), "nothing wanted");
        let changed = m.update(5, &[pm(Some(0), 2)], std::slice::from_ref(&tp));
        assert!(changed.is_empty());
        assert_eq!(
            m.current_leader(&tp),
            Some((1, 3)),
            "a stale answer is ignored"
        );
        m.update(6, &[pm(None, 4)], std::slice::from_ref(&tp));
        assert_eq!(m.current_leader(&tp), None);
        assert!(m.due(200, 100), "no leader: an update stays wanted");
        assert!(!m.due(50, 100), "but not within the backoff");
    }
}
