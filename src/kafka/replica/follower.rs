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
//!
//! The older fetchers of the bug modes ([`PendingTruncation`]): before 2.7 a fetch carried
//! no epoch, so the leader could not detect divergence. KIP-101 (0.11) had the follower ask
//! OffsetsForLeaderEpoch before fetching after a leader change; before it (0.10) the
//! follower had already cut its log to its HW, and a fetch past the leader's LEO came back
//! OFFSET_OUT_OF_RANGE, upon which the follower asked the leader's LEO and cut to it
//! (`handleOffsetOutOfRange`).

use super::{Replica, Role};
use crate::kafka::log::batch::Batch;
use crate::kafka::msg::{EpochEndOffset, ErrorCode, FetchPartition, FetchPartitionResponse};
use crate::kafka::msg::{
    ListOffsetsPartition, ListOffsetsPartitionResponse, OffsetForLeaderPartition,
    OffsetForLeaderPartitionResponse, OffsetSpec,
};
use crate::node::DiskIo;

/// A truncation step a pre-2.7 fetcher takes for a partition before fetching it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingTruncation {
    /// KIP-101 as first shipped (`PartitionFetchState.truncatingLog`): ask the leader
    /// OffsetsForLeaderEpoch for the latest epoch in the log, truncate to the answer.
    ByEpoch,
    /// Pre-0.11 `handleOffsetOutOfRange`: the fetch offset was past the leader's log; ask
    /// the leader's LEO and cut the log to it.
    OutOfRange,
}

/// What a fetch response did to the follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Appended `records` (maybe none) and took the leader's HW, bounded by the own LEO.
    Appended { records: u64 },
    /// A fetch without an epoch asked past the leader's LEO (pre-0.11 fetchers): the next
    /// step asks the leader's LEO (`handleOffsetOutOfRange`).
    OutOfRange,
    /// Cut the log to `offset` on a diverging epoch. `complete` is false when the follower
    /// lacked the leader's epoch and the next fetch continues the search (KIP-279).
    Truncated { offset: u64, complete: bool },
    /// The leader refused the fetch: wait for metadata or a LeaderAndIsr, and back off.
    Error(ErrorCode),
    /// The fetched batches cannot be appended (Kafka 2.7+: the first batch starts below
    /// the LEO, `UnexpectedAppendOffsetException`): the fetcher marks the partition failed
    /// and fetches it no more until a LeaderAndIsr adds it again (`markPartitionFailed`).
    Failed(String),
    /// The response no longer matches this replica's state (a stale fetch): dropped.
    Ignored(String),
}

impl Replica {
    /// Cuts the log to `offset` as the fetcher does: the LEO becomes `offset`, over a hole
    /// where a batch straddled it (`UnifiedLog.truncateTo`). The fetchers of the bug modes
    /// cut whole batches instead, as they did before holes were modelled (the pre-0.11 ones
    /// carried an offset per message and never straddled).
    pub(super) fn cut_log(&mut self, disk: &mut dyn DiskIo, offset: u64) -> u64 {
        match self.legacy_fetch() {
            true => self.log.truncate_to_batch(disk, offset),
            false => self.log.truncate_to(disk, offset),
        }
    }

    /// The fetch a follower sends for this partition: from its LEO, with the epoch of its
    /// last batch and the leader epoch it believes current. None unless it is a follower
    /// with a known leader.
    pub fn fetch_request(&self, max_records: u64) -> Option<FetchPartition> {
        if self.pending_truncation.is_some() {
            return None;
        }
        // bug-mode switch point: before 2.7 (all truncation modes) a fetch named no epoch.
        let last_fetched_epoch = match self.legacy_fetch() {
            true => None,
            false => self.log.latest_epoch(),
        };
        match self.role {
            Role::Follower { leader: Some(_) } => Some(FetchPartition {
                tp: self.tp.clone(),
                fetch_offset: self.log.log_end_offset(),
                last_fetched_epoch,
                current_leader_epoch: self.leader_epoch,
                max_records,
            }),
            _ => None,
        }
    }

    /// KAFKA-6361 mode, at a leader change: a log without epochs falls back to the HW at
    /// once (as 1.x did for `partitionsWithoutEpochs`); otherwise the fetcher first asks
    /// OffsetsForLeaderEpoch.
    pub(super) fn begin_epoch_truncation(&mut self, disk: &mut dyn DiskIo) {
        self.stamp.bump();
        if self.log.latest_epoch().is_none() {
            self.truncate_to_high_watermark(disk);
        } else {
            self.pending_truncation = Some(PendingTruncation::ByEpoch);
        }
    }

    /// The OffsetsForLeaderEpoch a KIP-101 follower sends before fetching: its latest epoch.
    pub fn epoch_request(&self) -> Option<OffsetForLeaderPartition> {
        let waiting = self.pending_truncation == Some(PendingTruncation::ByEpoch);
        match (&self.role, self.log.latest_epoch()) {
            (Role::Follower { leader: Some(_) }, Some(epoch)) if waiting => {
                Some(OffsetForLeaderPartition {
                    tp: self.tp.clone(),
                    current_leader_epoch: self.leader_epoch,
                    leader_epoch: epoch,
                })
            }
            _ => None,
        }
    }

    /// The ListOffsets(latest) a pre-0.11 follower sends after OFFSET_OUT_OF_RANGE; asked
    /// by a replica, the leader answers its LEO, not its HW.
    pub fn leader_end_request(&self) -> Option<ListOffsetsPartition> {
        let waiting = self.pending_truncation == Some(PendingTruncation::OutOfRange);
        match self.role {
            Role::Follower { leader: Some(_) } if waiting => Some(ListOffsetsPartition {
                tp: self.tp.clone(),
                current_leader_epoch: self.leader_epoch,
                spec: OffsetSpec::Latest,
            }),
            _ => None,
        }
    }

    /// KIP-101 as first shipped (`ReplicaFetcherThread.maybeTruncate` of 1.x): the leader's
    /// answer is an offset only (any epoch in it is ignored; v0 had none). UNDEFINED falls
    /// back to the HW; an offset at or past the LEO cuts nothing; otherwise cut there.
    pub fn handle_legacy_epoch_response(
        &mut self,
        disk: &mut dyn DiskIo,
        resp: &OffsetForLeaderPartitionResponse,
    ) -> FetchOutcome {
        self.stamp.bump();
        if self.pending_truncation != Some(PendingTruncation::ByEpoch) {
            return FetchOutcome::Ignored(format!("{}: no epoch truncation pending", self.tp));
        }
        if resp.error != ErrorCode::None {
            return FetchOutcome::Error(resp.error);
        }
        self.pending_truncation = None;
        let leo = self.log.log_end_offset();
        let target = match resp.end {
            None => self.high_watermark,
            Some(end) if end.end_offset >= leo => leo,
            Some(end) => end.end_offset,
        };
        let offset = self.cut_log(disk, target);
        self.high_watermark = self.high_watermark.min(offset);
        FetchOutcome::Truncated {
            offset,
            complete: true,
        }
    }

    /// `handleOffsetOutOfRange` (pre-0.11) / `fetchOffsetAndTruncate` (2.7+) with the
    /// leader's LEO: a shorter leader log (an unclean election, or a leader that lost what
    /// this follower kept) is cut to; else fetching resumes from the LEO (2.7+ would also
    /// start over at the leader's log start if that were past this LEO; no log here is
    /// ever cut from the front). (0.8.2-0.10 halted the broker here when unclean election
    /// was off; 0.8.1 cut regardless, as here.)
    pub fn handle_leader_end_offset(
        &mut self,
        disk: &mut dyn DiskIo,
        resp: &ListOffsetsPartitionResponse,
    ) -> FetchOutcome {
        self.stamp.bump();
        if self.pending_truncation != Some(PendingTruncation::OutOfRange) {
            return FetchOutcome::Ignored(format!("{}: no out-of-range pending", self.tp));
        }
        if resp.error != ErrorCode::None {
            return FetchOutcome::Error(resp.error);
        }
        self.pending_truncation = None;
        let offset = self.cut_log(disk, resp.offset);
        self.high_watermark = self.high_watermark.min(offset);
        FetchOutcome::Truncated {
            offset,
            complete: true,
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
        self.stamp.bump();
        let (target, complete) = self.truncation_for(leader);
        let offset = self.cut_log(disk, target);
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
        self.stamp.bump();
        if !matches!(self.role, Role::Follower { .. })
            || sent.current_leader_epoch != self.leader_epoch
            || sent.fetch_offset != self.log.log_end_offset()
        {
            return FetchOutcome::Ignored(format!(
                "{}: fetch from {} in epoch {:?} is stale",
                self.tp, sent.fetch_offset, sent.current_leader_epoch
            ));
        }
        // Every fetcher version handles OFFSET_OUT_OF_RANGE by asking the leader's LEO
        // (`handleOutOfRangeError` -> `fetchOffsetAndTruncate`): a leader whose log ends
        // below this one's is cut to (2.7+ answers a fetch whose `lastFetchedEpoch` this
        // leader cannot place at all, e.g. a leader that lost its whole log to a power loss,
        // with it). Retrying the fetch unchanged instead looped forever.
        if resp.error == ErrorCode::OffsetOutOfRange {
            self.pending_truncation = Some(PendingTruncation::OutOfRange);
            return FetchOutcome::OutOfRange;
        }
        if resp.error != ErrorCode::None {
            return FetchOutcome::Error(resp.error);
        }
        if let Some(diverging) = resp.diverging_epoch {
            // A legacy fetch names no epoch, so no leader answers it with a diverging epoch.
            return self.truncate_on_divergence(disk, diverging);
        }
        let trimmed;
        let batches = if self.pre_kip101() {
            trimmed = self.per_message(&resp.batches);
            &trimmed
        } else {
            &resp.batches
        };
        match self.log.append_as_follower(disk, batches) {
            Ok(records) => {
                self.high_watermark = resp.high_watermark.min(self.log.log_end_offset());
                FetchOutcome::Appended { records }
            }
            // Before 2.x's `markPartitionFailed` an append error killed the fetcher; the
            // truncation bug modes keep retrying the fetch, as they did before this change.
            Err(why) if self.legacy_fetch() => FetchOutcome::Ignored(why),
            // Kafka 2.7+: `Log.append` of a follower throws UnexpectedAppendOffsetException
            // when the first fetched batch starts below the LEO (the leader's batch straddles
            // the follower's end: a leader re-appointed to the same epoch after losing
            // unflushed records wrote other batches there, KIP-966), and
            // `processFetchRequest` marks the partition failed on it.
            Err(why) => FetchOutcome::Failed(why),
        }
    }

    /// Before 0.11 (message format v0/v1) every record carried its own offset, so a fetch
    /// from the middle of what is here one batch returned the records from the fetch offset
    /// on. The pre-KIP-101 modes therefore drop the part of a first batch below the LEO
    /// (with its producer sequences), which a fork at equal offsets can make necessary.
    fn per_message(&self, batches: &[Batch]) -> Vec<Batch> {
        let leo = self.log.log_end_offset();
        let mut out = batches.to_vec();
        if let Some(first) = out.first_mut() {
            if first.base_offset < leo && first.next_offset() > leo {
                let skip = (leo - first.base_offset) as usize;
                first.records = first.records[skip..].into();
                first.base_offset = leo;
                if first.producer.is_idempotent() {
                    first.producer.base_sequence =
                        first.producer.base_sequence.wrapping_add(skip as i32);
                }
            }
        }
        out
    }

    /// The pre-2.7 path: the leader's OffsetsForLeaderEpoch answer for the follower's latest
    /// epoch. Truncates as for a diverging fetch; an UNDEFINED answer leaves the log alone.
    pub fn handle_offsets_for_leader_epoch_response(
        &mut self,
        disk: &mut dyn DiskIo,
        resp: &OffsetForLeaderPartitionResponse,
    ) -> FetchOutcome {
        self.stamp.bump();
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
