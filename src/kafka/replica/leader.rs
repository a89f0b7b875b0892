//! The leader side of a replica: produce admission and append, follower and consumer
//! fetches, OffsetsForLeaderEpoch and ListOffsets answers, the high watermark and ISR
//! maintenance (reference B.4-B.6; Kafka's `Partition.appendRecordsToLeader`,
//! `fetchRecords`, `updateFollowerFetchState`, `maybeExpandIsr`, `maybeShrinkIsr`,
//! `maybeIncrementLeaderHW`).

use super::{IsrChange, IsrState, Replica, Role};
use crate::kafka::config::{Acks, BugMode, ServerProperties};
use crate::kafka::log::batch::{ProducerStamp, Record};
use crate::kafka::msg::{
    BrokerId, EpochEndOffset, ErrorCode, FetchPartition, FetchPartitionResponse,
    ListOffsetsPartition, ListOffsetsPartitionResponse, OffsetForLeaderPartition,
    OffsetForLeaderPartitionResponse, OffsetSpec,
};
use crate::kafka::partition_log::LeaderAppend;
use crate::node::DiskIo;

/// What a produce to this partition did, for the broker to answer now or park.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProduceOutcome {
    /// Answer now with this error; nothing was appended.
    Rejected(ErrorCode),
    /// The batch is in the log at these offsets (appended now, or `duplicate`: an
    /// idempotent retry answered with the original offsets). acks=0/1 answer at once;
    /// acks=all waits for [`Replica::acks_all_status`], a duplicate too (it may not be
    /// replicated yet).
    InLog {
        base_offset: u64,
        last_offset: u64,
        leader_epoch: u32,
        duplicate: bool,
    },
}

/// Where a parked acks=all produce stands (Kafka's `DelayedProduce`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckStatus {
    Waiting,
    /// Answer with this code (`None` is success).
    Done(ErrorCode),
}

impl Replica {
    /// The acks=all floor: `min.insync.replicas`, or 1 under KAFKA-1555 (0.8 had no such
    /// setting: the ISR alone, even the leader alone, was enough).
    fn min_insync(&self, cfg: &ServerProperties) -> u32 {
        match self.bug(BugMode::Kafka1555) {
            true => 1,
            false => cfg.min_insync_replicas,
        }
    }

    fn leader_epoch_if_leader(&self) -> Result<u32, ErrorCode> {
        match (&self.role, self.leader_epoch) {
            (Role::Leader(_), Some(epoch)) => Ok(epoch),
            _ => Err(ErrorCode::NotLeaderOrFollower),
        }
    }

    /// A produce of one batch: NOT_LEADER_OR_FOLLOWER off the leader; NOT_ENOUGH_REPLICAS for
    /// acks=all while the committed ISR is below min.insync.replicas (nothing appended);
    /// then the idempotence check and the append.
    pub fn append_records(
        &mut self,
        disk: &mut dyn DiskIo,
        acks: Acks,
        producer: ProducerStamp,
        records: Vec<Record>,
        cfg: &ServerProperties,
    ) -> ProduceOutcome {
        self.stamp.bump();
        let epoch = match self.leader_epoch_if_leader() {
            Ok(e) => e,
            Err(e) => return ProduceOutcome::Rejected(e),
        };
        let isr_len = self.isr().map_or(0, <[BrokerId]>::len) as u32;
        // bug-mode switch point: KAFKA-1555. Before min.insync.replicas (0.8.x) acks=all
        // meant "every current ISR member", however few: no floor at admission.
        if acks == Acks::All && isr_len < self.min_insync(cfg) {
            return ProduceOutcome::Rejected(ErrorCode::NotEnoughReplicas);
        }
        let (base_offset, last_offset, duplicate) =
            match self.log.append_as_leader(disk, epoch, producer, records) {
                LeaderAppend::Appended {
                    base_offset,
                    last_offset,
                } => (base_offset, last_offset, false),
                LeaderAppend::Duplicate {
                    base_offset,
                    last_offset,
                } => (base_offset, last_offset, true),
                LeaderAppend::OutOfOrderSequence => {
                    return ProduceOutcome::Rejected(ErrorCode::OutOfOrderSequenceNumber)
                }
                LeaderAppend::InvalidProducerEpoch => {
                    return ProduceOutcome::Rejected(ErrorCode::InvalidProducerEpoch)
                }
            };
        self.maybe_increment_high_watermark();
        ProduceOutcome::InLog {
            base_offset,
            last_offset,
            leader_epoch: epoch,
            duplicate,
        }
    }

    /// Kafka's `checkEnoughReplicasReachOffset` for an acks=all produce appended in
    /// `appended_epoch` ending at `last_offset`: done once the HW passes it (with
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR is then below min.insync.replicas), and
    /// NOT_LEADER_OR_FOLLOWER once this replica no longer leads that epoch (its log may have
    /// been truncated under the batch).
    pub fn acks_all_status(
        &self,
        appended_epoch: u32,
        last_offset: u64,
        cfg: &ServerProperties,
    ) -> AckStatus {
        if self.leader_epoch_if_leader() != Ok(appended_epoch) {
            return AckStatus::Done(ErrorCode::NotLeaderOrFollower);
        }
        if self.high_watermark <= last_offset {
            return AckStatus::Waiting;
        }
        let isr_len = self.isr().map_or(0, <[BrokerId]>::len) as u32;
        // bug-mode switch point: KAFKA-1555 (nor at acknowledgement).
        if isr_len < self.min_insync(cfg) {
            AckStatus::Done(ErrorCode::NotEnoughReplicasAfterAppend)
        } else {
            AckStatus::Done(ErrorCode::None)
        }
    }

    /// The truncate-on-fetch check (Kafka 2.7+): the fetcher's `lastFetchedEpoch` is unknown
    /// here, or its fetch offset lies past the end of that epoch in this log. Err is
    /// OFFSET_OUT_OF_RANGE when the epoch cannot be placed at all.
    fn diverging_epoch(&self, req: &FetchPartition) -> Result<Option<EpochEndOffset>, ErrorCode> {
        let Some(fetch_epoch) = req.last_fetched_epoch else {
            return Ok(None);
        };
        let Some((epoch, end_offset)) = self.log.end_offset_for(fetch_epoch) else {
            return Err(ErrorCode::OffsetOutOfRange);
        };
        if epoch < fetch_epoch || end_offset < req.fetch_offset {
            return Ok(Some(EpochEndOffset { epoch, end_offset }));
        }
        Ok(None)
    }

    fn fetch_error(&self, error: ErrorCode) -> FetchPartitionResponse {
        FetchPartitionResponse {
            tp: self.tp.clone(),
            error,
            high_watermark: self.high_watermark,
            log_start_offset: self.log.log_start_offset(),
            diverging_epoch: None,
            batches: Vec::new(),
        }
    }

    /// Checks shared by follower and consumer fetches; Ok(Some) is a diverging answer.
    fn admit_fetch(
        &self,
        req: &FetchPartition,
    ) -> Result<Option<FetchPartitionResponse>, FetchPartitionResponse> {
        if let Err(e) = self.leader_epoch_if_leader() {
            return Err(self.fetch_error(e));
        }
        if let Err(e) = self.check_leader_epoch(req.current_leader_epoch) {
            return Err(self.fetch_error(e));
        }
        if req.fetch_offset < self.log.log_start_offset() {
            return Err(self.fetch_error(ErrorCode::OffsetOutOfRange));
        }
        match self.diverging_epoch(req) {
            Err(e) => Err(self.fetch_error(e)),
            Ok(Some(d)) => {
                let mut resp = self.fetch_error(ErrorCode::None);
                resp.diverging_epoch = Some(d);
                Ok(Some(resp))
            }
            Ok(None) if req.fetch_offset > self.log.log_end_offset() => {
                Err(self.fetch_error(ErrorCode::OffsetOutOfRange))
            }
            Ok(None) => Ok(None),
        }
    }

    /// A follower's fetch. Returns the response and, when the fetch brought the follower
    /// into sync, the ISR expansion for the broker to write to ZooKeeper.
    pub fn handle_follower_fetch(
        &mut self,
        follower: BrokerId,
        req: &FetchPartition,
        now_ns: u64,
    ) -> (FetchPartitionResponse, Option<IsrChange>) {
        // No fresh stamp here: the follower's view is outside the stamp (see
        // `Replica::stamps`), and the ISR and the HW take one when they change.
        let known = self
            .leader_state()
            .is_some_and(|s| s.followers.contains_key(&follower));
        if self.is_leader() && !known {
            return (self.fetch_error(ErrorCode::NotLeaderOrFollower), None);
        }
        match self.admit_fetch(req) {
            Err(resp) => return (resp, None),
            // bug-mode switch point: KAFKA-13141. The fix: a diverging fetch leaves the
            // follower state alone. Before it (2.7-3.0), `ReplicaManager.fetchMessages`
            // passed every follower read result to `updateFollowerFetchState`, a diverging
            // one too, so the follower's fetch offset (the end of its divergent log) became
            // its LEO: it could join the ISR and count for the HW over records it lacks.
            Ok(Some(diverging)) if self.bug(BugMode::Kafka13141) => {
                let leader_leo = self.log.log_end_offset();
                self.update_follower_state(follower, req.fetch_offset, leader_leo, now_ns);
                let change = self.maybe_expand_isr(follower);
                self.maybe_increment_high_watermark();
                return (diverging, change);
            }
            Ok(Some(diverging)) => return (diverging, None),
            Ok(None) => {}
        }
        let leader_leo = self.log.log_end_offset();
        let resp = FetchPartitionResponse {
            tp: self.tp.clone(),
            error: ErrorCode::None,
            // As in Kafka, the HW read with the records: this fetch's own progress reaches
            // the follower with its next fetch.
            high_watermark: self.high_watermark,
            log_start_offset: self.log.log_start_offset(),
            diverging_epoch: None,
            batches: self.log.read(req.fetch_offset, req.max_records, leader_leo),
        };
        self.update_follower_state(follower, req.fetch_offset, leader_leo, now_ns);
        let change = self.maybe_expand_isr(follower);
        self.maybe_increment_high_watermark();
        (resp, change)
    }

    /// Kafka's `updateFetchState`: the follower's LEO is its fetch offset; it was caught up
    /// now if it reached the leader's LEO, or at its previous fetch if it reached the
    /// leader's LEO as of that fetch.
    fn update_follower_state(
        &mut self,
        follower: BrokerId,
        fetch_offset: u64,
        leader_leo: u64,
        now_ns: u64,
    ) {
        // Changes the follower's view only: no fresh stamp (see `Replica::stamps`).
        let Role::Leader(state) = &mut self.role else {
            unreachable!("checked by admit_fetch");
        };
        let view = state.followers.get_mut(&follower).expect("known follower");
        if fetch_offset >= leader_leo {
            view.last_caught_up_ns = view.last_caught_up_ns.max(now_ns);
        } else if view
            .last_fetch_leader_leo
            .is_some_and(|l| fetch_offset >= l)
        {
            view.last_caught_up_ns = view.last_caught_up_ns.max(view.last_fetch_ns);
        }
        view.last_fetch_leader_leo = Some(leader_leo);
        view.last_fetch_ns = now_ns;
        view.log_end_offset = Some(fetch_offset);
    }

    /// Kafka's `isFollowerInSync`: the follower's LEO has reached the HW and the start of
    /// this leader's epoch (KAFKA-7128: right after a leader change the HW may lag the
    /// previous leader's, so the HW alone would admit a replica missing committed records).
    pub fn follower_in_sync(&self, follower: BrokerId) -> bool {
        let Some(state) = self.leader_state() else {
            return false;
        };
        let Some(leo) = state
            .followers
            .get(&follower)
            .and_then(|v| v.log_end_offset)
        else {
            return false;
        };
        // bug-mode switch point: KAFKA-7128. Before the fix (2.0.1/2.1) `maybeExpandIsr`
        // compared the follower's LEO with the leader's HW alone.
        if self.bug(BugMode::Kafka7128) {
            return leo >= self.high_watermark;
        }
        leo >= self.high_watermark && leo >= state.epoch_start_offset
    }

    fn maybe_expand_isr(&mut self, follower: BrokerId) -> Option<IsrChange> {
        // Changes the replica through `set_isr_state` only, which takes a fresh stamp.
        let state = self.leader_state()?;
        if state.isr.in_flight() || state.isr.isr().contains(&follower) {
            return None;
        }
        if !self.follower_in_sync(follower) {
            return None;
        }
        let isr = state.isr.isr().to_vec();
        let mut new_isr = isr.clone();
        new_isr.push(follower);
        self.set_isr_state(IsrState::PendingExpand {
            isr,
            adding: follower,
        });
        Some(self.isr_change(new_isr))
    }

    /// Kafka's `maybeShrinkIsr`: ISR followers that have not been caught up to the leader's
    /// LEO for longer than `replica.lag.time.max.ms` leave the ISR, once the broker writes
    /// the change to ZooKeeper. None while another change is in flight.
    pub fn maybe_shrink_isr(&mut self, now_ns: u64, cfg: &ServerProperties) -> Option<IsrChange> {
        // Changes the replica through `set_isr_state` only, which takes a fresh stamp.
        let state = self.leader_state()?;
        if state.isr.in_flight() {
            return None;
        }
        let leo = self.log.log_end_offset();
        let lag = cfg.replica_lag_time_max_ns();
        let removing: Vec<BrokerId> = state
            .isr
            .isr()
            .iter()
            .copied()
            .filter(|&r| r != self.me)
            .filter(|r| {
                let v = state.followers.get(r).copied().unwrap_or_default();
                v.log_end_offset != Some(leo) && now_ns.saturating_sub(v.last_caught_up_ns) > lag
            })
            .collect();
        if removing.is_empty() {
            return None;
        }
        let isr = state.isr.isr().to_vec();
        let new_isr: Vec<BrokerId> = isr
            .iter()
            .copied()
            .filter(|r| !removing.contains(r))
            .collect();
        self.set_isr_state(IsrState::PendingShrink { isr, removing });
        Some(self.isr_change(new_isr))
    }

    fn set_isr_state(&mut self, isr: IsrState) {
        self.stamp.bump();
        if let Role::Leader(state) = &mut self.role {
            state.isr = isr;
        }
    }

    fn isr_change(&self, isr: Vec<BrokerId>) -> IsrChange {
        IsrChange {
            tp: self.tp.clone(),
            leader: self.me,
            leader_epoch: self.leader_epoch.expect("a leader has an epoch"),
            isr,
            controller_epoch: self.controller_epoch,
            expected_zk_version: self.zk_version,
        }
    }

    /// The pending ISR change is in ZooKeeper with data version `zk_version`: it takes
    /// effect (an expansion now counts for min.insync.replicas; a shrink stops holding the
    /// HW back). Returns whether the HW advanced.
    pub fn isr_write_succeeded(&mut self, zk_version: i32) -> bool {
        self.stamp.bump();
        let Role::Leader(state) = &mut self.role else {
            return false;
        };
        let isr = match &state.isr {
            IsrState::Committed { .. } => return false,
            IsrState::PendingExpand { isr, adding } => {
                let mut isr = isr.clone();
                isr.push(*adding);
                isr
            }
            IsrState::PendingShrink { isr, removing } => isr
                .iter()
                .copied()
                .filter(|r| !removing.contains(r))
                .collect(),
        };
        state.isr = IsrState::Committed { isr };
        self.zk_version = zk_version;
        self.maybe_increment_high_watermark()
    }

    /// The write did not take effect as far as the broker can tell (ZooKeeper refused it
    /// and the read-back found other data: Kafka's `ZkIsrManager` answers
    /// INVALID_UPDATE_VERSION). Kafka 2.7+ gives up (`Partition.handleAlterIsrResponse`):
    /// the pending state stays until the next LeaderAndIsr, so no further ISR change is
    /// tried in this leader epoch and the maximal ISR keeps a member being added. That
    /// member may well be in ZooKeeper: a copy of the write that applied while its answer
    /// was lost, then overwritten by the controller (kafka-nemesis seed 402913). Dropping it
    /// from the ISR the HW counts would let the HW pass its LEO while ZooKeeper's ISR, and
    /// the controller's next one derived from it, still hold it.
    pub fn isr_write_failed(&mut self) {
        self.stamp.bump();
        // bug-mode switch point: KAFKA-2729. Before 2.7, `Partition.updateIsr` changed the
        // ISR only on success and kept the old one and its cached zkVersion otherwise
        // ("Cached zkVersion not equal to that in zookeeper, skip updating ISR").
        if !self.bug(BugMode::Kafka2729) {
            return;
        }
        let Role::Leader(state) = &mut self.role else {
            return;
        };
        let isr = state.isr.isr().to_vec();
        state.isr = IsrState::Committed { isr };
    }

    /// The read-back after a BadVersion found another state of this leader's own epoch
    /// naming it leader: the ISR and zkVersion ZooKeeper holds become the committed ones.
    /// Kafka would give up and wait for a LeaderAndIsr, but in ZooKeeper mode the
    /// controller only sends one with a new leader epoch, so a leader whose cached
    /// zkVersion went stale within its epoch would never change its ISR again (the
    /// "Cached zkVersion not equal" stall); adopting what ZooKeeper holds keeps the ISR the
    /// HW counts equal to ZooKeeper's. No copy of the refused write can still apply: the
    /// version moved past the one it expects. Returns whether the HW advanced.
    pub fn isr_write_superseded(&mut self, isr: &[BrokerId], zk_version: i32) -> bool {
        self.stamp.bump();
        let me = self.me;
        let Role::Leader(state) = &mut self.role else {
            return false;
        };
        if !isr.contains(&me) {
            return false;
        }
        state.isr = IsrState::Committed { isr: isr.to_vec() };
        self.zk_version = zk_version;
        self.maybe_increment_high_watermark()
    }

    /// HW = min LEO over the maximal ISR, only forward; a follower that has not fetched in
    /// this epoch holds it where it is. Returns whether it advanced.
    pub(super) fn maybe_increment_high_watermark(&mut self) -> bool {
        // Most calls (one per follower fetch) leave the HW where it is: a fresh stamp only
        // when it moves.
        let Some(state) = self.leader_state() else {
            return false;
        };
        let mut hw = self.log.log_end_offset();
        for r in state.isr.maximal_iter() {
            if r == self.me {
                continue;
            }
            match state.followers.get(&r).and_then(|v| v.log_end_offset) {
                Some(leo) => hw = hw.min(leo),
                None => return false,
            }
        }
        if hw <= self.high_watermark {
            return false;
        }
        assert!(
            hw <= self.log.log_end_offset(),
            "HW beyond the leader's LEO"
        );
        self.stamp.bump();
        self.high_watermark = hw;
        true
    }

    /// A consumer's fetch: only records below the HW (read_uncommitted).
    pub fn handle_consumer_fetch(&self, req: &FetchPartition) -> FetchPartitionResponse {
        match self.admit_fetch(req) {
            Err(resp) | Ok(Some(resp)) => resp,
            Ok(None) => FetchPartitionResponse {
                batches: self
                    .log
                    .read(req.fetch_offset, req.max_records, self.high_watermark),
                ..self.fetch_error(ErrorCode::None)
            },
        }
    }

    /// OffsetsForLeaderEpoch on the leader: `(largest epoch <= requested, its end offset)`
    /// (KIP-279), after the KIP-320 epoch check.
    pub fn handle_offsets_for_leader_epoch(
        &self,
        req: &OffsetForLeaderPartition,
    ) -> OffsetForLeaderPartitionResponse {
        let error = self
            .leader_epoch_if_leader()
            .and_then(|_| self.check_leader_epoch(req.current_leader_epoch))
            .err();
        // bug-mode switch point: KAFKA-6361. Before KIP-279 the answer was an offset only,
        // computed without the largest epoch <= the requested one that this log knows: the
        // start of the next higher epoch in this cache, whatever lies in between. The
        // requested epoch is echoed in the field the old format lacked; such a follower
        // ignores it.
        let end = match error {
            Some(_) => None,
            None if self.pre_kip279() => self
                .log
                .epochs
                .legacy_end_offset_for(req.leader_epoch, self.log.log_end_offset())
                .map(|end_offset| EpochEndOffset {
                    epoch: req.leader_epoch,
                    end_offset,
                }),
            None => self
                .log
                .end_offset_for(req.leader_epoch)
                .map(|(epoch, end_offset)| EpochEndOffset { epoch, end_offset }),
        };
        OffsetForLeaderPartitionResponse {
            tp: self.tp.clone(),
            error: error.unwrap_or(ErrorCode::None),
            end,
        }
    }

    /// ListOffsets on the leader: the log start, or the HW as the latest offset a
    /// read_uncommitted consumer may read.
    pub fn handle_list_offsets(&self, req: &ListOffsetsPartition) -> ListOffsetsPartitionResponse {
        let error = self
            .leader_epoch_if_leader()
            .and_then(|_| self.check_leader_epoch(req.current_leader_epoch))
            .err();
        let offset = match req.spec {
            OffsetSpec::Earliest => self.log.log_start_offset(),
            OffsetSpec::Latest => self.high_watermark,
        };
        ListOffsetsPartitionResponse {
            tp: self.tp.clone(),
            error: error.unwrap_or(ErrorCode::None),
            offset,
            leader_epoch: self.log.epoch_before(offset),
        }
    }
}
