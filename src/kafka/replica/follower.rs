//! The follower side of a replica (Kafka's `ReplicaFetcherThread` / `AbstractFetcherThread`
//! for one partition): the fetch to send, appending what the leader returns, the follower
//! HW, and truncation when the leader reports a diverging epoch (truncate-on-fetch, 2.7+) or
//! answers OffsetsForLeaderEpoch (the KIP-101 / KIP-279 path).
//!
//! Truncation rule (`getOffsetTruncationState`): given the leader's `(epoch, end offset)`,
//! look up the same epoch in the follower's own cache. If the follower knows that epoch, cut
//! to min(its own end of it, the leader's end); that is the common point. If it does not
//! (its largest epoch below is older), cut to the end of that older epoch and let the next
//! fetch, whose `lastFetchedEpoch` is now that older epoch, continue the search (KIP-279).

use super::{Replica, Role};
use crate::kafka::msg::OffsetForLeaderPartitionResponse;
use crate::kafka::msg::{EpochEndOffset, ErrorCode, FetchPartition, FetchPartitionResponse};
use crate::node::DiskIo;

/// What a fetch response did to the follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Appended `records` (maybe none) and took the leader's HW, bounded by the own LEO.
    Appended { records: u64 },
    /// Cut the log to `offset` on a diverging epoch. `complete` is false when the follower
    /// lacked the leader's epoch and the next fetch continues the search (KIP-279).
    Truncated { offset: u64, complete: bool },
    /// The leader refused the fetch: wait for metadata or a LeaderAndIsr, and back off.
    Error(ErrorCode),
    /// The response no longer matches this replica's state (a stale fetch): dropped.
    Ignored(String),
}

impl Replica {
    /// The fetch a follower sends for this partition: from its LEO, with the epoch of its
    /// last batch and the leader epoch it believes current. None unless it is a follower
    /// with a known leader.
    pub fn fetch_request(&self, max_records: u64) -> Option<FetchPartition> {
        match self.role {
            Role::Follower { leader: Some(_) } => Some(FetchPartition {
                tp: self.tp.clone(),
                fetch_offset: self.log.log_end_offset(),
                last_fetched_epoch: self.log.latest_epoch(),
                current_leader_epoch: self.leader_epoch,
                max_records,
            }),
            _ => None,
        }
    }

    /// Where to cut the log given the leader's `(epoch, end offset)`, and whether that ends
    /// the search for the common point.
    pub fn truncation_for(&self, leader: EpochEndOffset) -> (u64, bool) {
        let leo = self.log.log_end_offset();
        match self.log.end_offset_for(leader.epoch) {
            Some((epoch, end)) if epoch == leader.epoch => {
                (end.min(leader.end_offset).min(leo), true)
            }
            // The follower never had the leader's epoch: cut to the end of its own largest
            // older epoch and ask again from there (KIP-279).
            Some((_, end)) => (end.min(leo), false),
            // No epochs at all here: trust the leader's end offset.
            None => (leader.end_offset.min(leo), true),
        }
    }

    fn truncate_on_divergence(
        &mut self,
        disk: &mut dyn DiskIo,
        leader: EpochEndOffset,
    ) -> FetchOutcome {
        let (target, complete) = self.truncation_for(leader);
        let offset = self.log.truncate_to(disk, target);
        self.high_watermark = self.high_watermark.min(offset);
        FetchOutcome::Truncated { offset, complete }
    }

    /// Applies the leader's answer to the fetch `sent` (which must still describe this
    /// replica's state: same leader epoch and fetch offset, as Kafka's fetcher checks).
    pub fn handle_fetch_response(
        &mut self,
        disk: &mut dyn DiskIo,
        sent: &FetchPartition,
        resp: &FetchPartitionResponse,
    ) -> FetchOutcome {
        if !matches!(self.role, Role::Follower { .. })
            || sent.current_leader_epoch != self.leader_epoch
            || sent.fetch_offset != self.log.log_end_offset()
        {
            return FetchOutcome::Ignored(format!(
                "{}: fetch from {} in epoch {:?} is stale",
                self.tp, sent.fetch_offset, sent.current_leader_epoch
            ));
        }
        if resp.error != ErrorCode::None {
            return FetchOutcome::Error(resp.error);
        }
        if let Some(diverging) = resp.diverging_epoch {
            // bug-mode switch point: KIP-101-2 (no epoch-based truncation at all).
            return self.truncate_on_divergence(disk, diverging);
        }
        match self.log.append_as_follower(disk, &resp.batches) {
            Ok(records) => {
                self.high_watermark = resp.high_watermark.min(self.log.log_end_offset());
                FetchOutcome::Appended { records }
            }
            Err(why) => FetchOutcome::Ignored(why),
        }
    }

    /// The pre-2.7 path: the leader's OffsetsForLeaderEpoch answer for the follower's latest
    /// epoch. Truncates as for a diverging fetch; an UNDEFINED answer leaves the log alone.
    pub fn handle_offsets_for_leader_epoch_response(
        &mut self,
        disk: &mut dyn DiskIo,
        resp: &OffsetForLeaderPartitionResponse,
    ) -> FetchOutcome {
        if resp.error != ErrorCode::None {
            return FetchOutcome::Error(resp.error);
        }
        match resp.end {
            Some(end) => self.truncate_on_divergence(disk, end),
            None => FetchOutcome::Truncated {
                offset: self.log.log_end_offset(),
                complete: true,
            },
        }
    }
}
