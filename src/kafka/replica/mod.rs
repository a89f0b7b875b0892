//! The per-partition replica state machine of one broker (Kafka's `Partition` plus the
//! follower side of `ReplicaFetcherThread`), as pure state and functions: no timers, no
//! sends. The broker that embeds it feeds it requests, responses and the time, and carries
//! out what it returns (responses, ISR writes to ZooKeeper, fsyncs).
//!
//! - [`Replica::become_leader`] / [`Replica::become_follower`] apply a LeaderAndIsr
//!   partition state whose leader epoch is newer than the replica's.
//! - The leader side ([`leader`]): produce admission (min.insync.replicas, idempotence),
//!   follower fetches with KIP-320 fencing and truncate-on-fetch divergence detection, the
//!   high watermark (min LEO over the ISR, only forward), ISR shrink after
//!   `replica.lag.time.max.ms` and expansion (KAFKA-7128), each ISR change pending until the
//!   broker reports its ZooKeeper write.
//! - The follower side ([`follower`]): the fetch to send, appending fetched batches,
//!   truncating on `divergingEpoch` (with KIP-279's iteration) and the follower HW.
//!
//! Bug-mode switch points (issue 9) are marked `bug-mode switch point` where the historical
//! code path differed; [`Replica::bug`] tells whether a mode is on. The truncation modes
//! bring back the older follower paths whole rather than a flipped check:
//! - KAFKA-1211 and KIP-101-2 are the pre-0.11 follower (`makeFollowers` truncating to the
//!   local HW when the leader changes or after a restart; fetches without an epoch;
//!   `handleOffsetOutOfRange` cutting to the leader's LEO);
//! - KAFKA-6361 is KIP-101 as first shipped (0.11-1.1): a new leader records no epoch entry
//!   until it appends; a new follower asks OffsetsForLeaderEpoch for its latest epoch before
//!   fetching and truncates to the offset alone, which the leader computed without naming an
//!   epoch ([`crate::kafka::epoch_cache::EpochCache::legacy_end_offset_for`]).
//!
//! May depend on: `node` (DiskIo) and the other `kafka` modules.

pub mod follower;
pub mod leader;
#[cfg(test)]
mod tests;

use super::config::BugMode;
use super::msg::{BrokerId, ErrorCode, PartitionState, TopicPartition};
use super::partition_log::PartitionLog;
use super::stamp::Stamp;
use crate::node::DiskIo;
use std::collections::BTreeMap;

/// The ISR as the leader knows it, with at most one change in flight to ZooKeeper (B.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsrState {
    /// The ISR as last written to (or read from) ZooKeeper.
    Committed { isr: Vec<BrokerId> },
    /// Adding `adding`: it counts for the high watermark at once (the HW set must include
    /// every replica the ZooKeeper ISR may already hold) but not for acks=all and
    /// min.insync.replicas until the write succeeds.
    PendingExpand {
        isr: Vec<BrokerId>,
        adding: BrokerId,
    },
    /// Removing `removing`: the HW still waits for them until the write succeeds.
    PendingShrink {
        isr: Vec<BrokerId>,
        removing: Vec<BrokerId>,
    },
}

impl IsrState {
    /// The committed ISR: what ZooKeeper holds (or will hold if a shrink fails), used for
    /// min.insync.replicas.
    pub fn isr(&self) -> &[BrokerId] {
        match self {
            IsrState::Committed { isr }
            | IsrState::PendingExpand { isr, .. }
            | IsrState::PendingShrink { isr, .. } => isr,
        }
    }
    /// The ISR the high watermark is computed over: a superset of every ISR ZooKeeper may
    /// hold while a change is in flight (Vanlightly's ReplicationQuorumSuperset).
    pub fn maximal(&self) -> Vec<BrokerId> {
        self.maximal_iter().collect()
    }
    /// [`Self::maximal`] without its allocation, in the same order.
    pub fn maximal_iter(&self) -> impl Iterator<Item = BrokerId> + '_ {
        let adding = match self {
            IsrState::PendingExpand { adding, .. } => Some(*adding),
            _ => None,
        };
        self.isr().iter().copied().chain(adding)
    }
    pub fn in_flight(&self) -> bool {
        !matches!(self, IsrState::Committed { .. })
    }
}

/// What the leader knows of one follower (Kafka's `Replica` state on the leader).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowerView {
    /// The follower's LEO, as its last non-diverging fetch offset; None until it fetched
    /// in this leader epoch.
    pub log_end_offset: Option<u64>,
    /// The last time the follower was caught up to the leader's LEO.
    pub last_caught_up_ns: u64,
    /// The leader's LEO at the follower's previous fetch, and that fetch's time.
    pub last_fetch_leader_leo: Option<u64>,
    pub last_fetch_ns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    /// The leader's LEO when it became leader in its epoch (Kafka's
    /// `leaderEpochStartOffsetOpt`).
    pub epoch_start_offset: u64,
    pub isr: IsrState,
    /// Every other assigned replica.
    pub followers: BTreeMap<BrokerId, FollowerView>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not (yet) told its role by a controller, or stopped.
    None,
    Leader(LeaderState),
    Follower {
        leader: Option<BrokerId>,
    },
}

/// An ISR change the leader asks its broker to write to the partition-state znode,
/// conditionally on `expected_zk_version` (B.2). The broker reports the outcome with
/// [`Replica::isr_write_succeeded`], [`Replica::isr_write_superseded`] or
/// [`Replica::isr_write_failed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    pub tp: TopicPartition,
    pub leader: BrokerId,
    pub leader_epoch: u32,
    pub isr: Vec<BrokerId>,
    pub controller_epoch: u32,
    pub expected_zk_version: i32,
}

/// One replica of one partition on one broker.
#[derive(Clone, Debug)]
pub struct Replica {
    pub tp: TopicPartition,
    pub me: BrokerId,
    pub log: PartitionLog,
    high_watermark: u64,
    leader_epoch: Option<u32>,
    zk_version: i32,
    controller_epoch: u32,
    replicas: Vec<BrokerId>,
    role: Role,
    /// The broker's `bugModes`, consulted at the switch points.
    bug_modes: Vec<BugMode>,
    /// A truncation step of a pre-2.7 fetcher that must happen before the next fetch (bug
    /// modes only; the fixed follower truncates on a fetch's diverging epoch).
    pending_truncation: Option<follower::PendingTruncation>,
    /// Fresh at every change of the replica's own fields but the followers' views (see
    /// [`Replica::stamps`]).
    stamp: Stamp,
}

impl Replica {
    /// A replica over `log` (new or recovered), with the high watermark read from
    /// `replication-offset-checkpoint` (bounded by the LEO), not yet told its role.
    pub fn new(
        tp: TopicPartition,
        me: BrokerId,
        log: PartitionLog,
        hw_checkpoint: u64,
        bug_modes: &[BugMode],
    ) -> Self {
        let high_watermark = hw_checkpoint.clamp(log.log_start_offset(), log.log_end_offset());
        Replica {
            tp,
            me,
            log,
            high_watermark,
            leader_epoch: None,
            zk_version: -1,
            controller_epoch: 0,
            replicas: Vec::new(),
            role: Role::None,
            bug_modes: bug_modes.to_vec(),
            pending_truncation: None,
            stamp: Stamp::fresh(),
        }
    }

    /// Whether a named historical bug is switched on for this broker.
    pub fn bug(&self, mode: BugMode) -> bool {
        self.bug_modes.contains(&mode)
    }
    /// The follower of Kafka before KIP-101 (0.10): HW truncation, no epochs in fetches.
    pub fn pre_kip101(&self) -> bool {
        self.bug(BugMode::Kafka1211) || self.bug(BugMode::Kip101Scenario2)
    }
    /// The follower of KIP-101 as first shipped, before KIP-279 (0.11-1.1).
    pub fn pre_kip279(&self) -> bool {
        self.bug(BugMode::Kafka6361)
    }
    /// Whether fetches go out without `lastFetchedEpoch` (any follower before 2.7 here: the
    /// leader then checks no divergence and a fetch past its LEO is OFFSET_OUT_OF_RANGE).
    pub fn legacy_fetch(&self) -> bool {
        self.pre_kip101() || self.pre_kip279()
    }
    pub fn pending_truncation(&self) -> Option<follower::PendingTruncation> {
        self.pending_truncation
    }

    /// Equal stamps mean an equal replica: its own fields, its log and its epoch cache
    /// (see [`crate::kafka::stamp`]). Not covered: the producer state, and a leader's views
    /// of its followers (`LeaderState::followers`), which change at every follower fetch
    /// and which the online monitor does not read; the follower-fetch path takes a fresh
    /// stamp only when the ISR or the HW changes (debug builds check, at every skip, that
    /// equal stamps still mean an unchanged summary).
    pub fn stamps(&self) -> [u64; 3] {
        [
            self.stamp.get(),
            self.log.log.stamp(),
            self.log.epochs.stamp(),
        ]
    }

    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }
    pub fn log_end_offset(&self) -> u64 {
        self.log.log_end_offset()
    }
    pub fn leader_epoch(&self) -> Option<u32> {
        self.leader_epoch
    }
    pub fn zk_version(&self) -> i32 {
        self.zk_version
    }
    pub fn controller_epoch(&self) -> u32 {
        self.controller_epoch
    }
    pub fn replicas(&self) -> &[BrokerId] {
        &self.replicas
    }
    pub fn role(&self) -> &Role {
        &self.role
    }
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }
    pub fn leader_state(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(s) => Some(s),
            _ => None,
        }
    }
    /// The ISR a leader holds as committed (None on a follower).
    pub fn isr(&self) -> Option<&[BrokerId]> {
        self.leader_state().map(|s| s.isr.isr())
    }

    /// KIP-320: a request naming an older leader epoch is fenced, a newer one is unknown.
    pub fn check_leader_epoch(&self, current: Option<u32>) -> Result<(), ErrorCode> {
        // bug-mode switch point: KAFKA-6880 (no fencing of zombie fetchers before KIP-320).
        let (Some(requested), Some(mine)) = (current, self.leader_epoch) else {
            return Ok(());
        };
        match requested.cmp(&mine) {
            std::cmp::Ordering::Less => Err(ErrorCode::FencedLeaderEpoch),
            std::cmp::Ordering::Greater => Err(ErrorCode::UnknownLeaderEpoch),
            std::cmp::Ordering::Equal => Ok(()),
        }
    }

    /// The leader-epoch rule for a LeaderAndIsr partition state: only a newer leader epoch
    /// is applied (an older one is a stale controller's, an equal one already applied).
    fn accept_partition_state(&self, state: &PartitionState) -> Result<(), ErrorCode> {
        assert_eq!(state.tp, self.tp, "partition state for another partition");
        if let Some(mine) = self.leader_epoch {
            if state.leader_epoch < mine {
                return Err(ErrorCode::StaleControllerEpoch);
            }
            if state.leader_epoch == mine {
                return Err(ErrorCode::FencedLeaderEpoch);
            }
        }
        if !state.replicas.contains(&self.me) {
            return Err(ErrorCode::UnknownTopicOrPartition);
        }
        Ok(())
    }

    fn apply_partition_state(&mut self, state: &PartitionState) {
        self.stamp.bump();
        self.leader_epoch = Some(state.leader_epoch);
        self.zk_version = state.zk_version;
        self.controller_epoch = state.controller_epoch;
        self.replicas = state.replicas.clone();
    }

    /// Kafka's `makeLeader`: the new epoch starts at the LEO and goes into the epoch cache
    /// at once; every follower must fetch in this epoch before it counts for the HW; ISR
    /// members start as caught up now. The HW stays where this replica had it.
    pub fn become_leader(
        &mut self,
        disk: &mut dyn DiskIo,
        state: &PartitionState,
        now_ns: u64,
    ) -> Result<(), ErrorCode> {
        self.stamp.bump();
        self.accept_partition_state(state)?;
        assert_eq!(
            state.leader,
            Some(self.me),
            "become_leader for another leader"
        );
        assert!(state.isr.contains(&self.me), "a leader is in its own ISR");
        self.apply_partition_state(state);
        self.pending_truncation = None;
        let epoch = state.leader_epoch;
        // bug-mode switch point: KAFKA-6361. Before PR #5678 `makeLeader` recorded nothing in
        // the epoch cache: the entry came with the first batch appended in the epoch, so a
        // leader that has not appended yet cannot answer for the epochs it skipped.
        if !self.pre_kip279() {
            self.log.assign_epoch_start(disk, epoch);
        }
        let followers = state
            .replicas
            .iter()
            .filter(|&&r| r != self.me)
            .map(|&r| {
                let caught_up = if state.isr.contains(&r) { now_ns } else { 0 };
                let view = FollowerView {
                    log_end_offset: None,
                    last_caught_up_ns: caught_up,
                    last_fetch_leader_leo: None,
                    last_fetch_ns: 0,
                };
                (r, view)
            })
            .collect();
        self.role = Role::Leader(LeaderState {
            epoch_start_offset: self.log.log_end_offset(),
            isr: IsrState::Committed {
                isr: state.isr.clone(),
            },
            followers,
        });
        self.maybe_increment_high_watermark();
        Ok(())
    }

    /// Kafka's `makeFollower` (2.7+): record the new leader and epoch; no truncation here,
    /// the first fetch detects any divergence. Pending acks=all produces of an earlier
    /// leadership are the broker's to fail (see `leader::Replica::acks_all_status`).
    pub fn become_follower(
        &mut self,
        disk: &mut dyn DiskIo,
        state: &PartitionState,
    ) -> Result<(), ErrorCode> {
        self.stamp.bump();
        self.accept_partition_state(state)?;
        assert_ne!(state.leader, Some(self.me), "become_follower of itself");
        // Before 2.7, `Partition.makeFollower` reported a change only when the leader
        // changed (or the replica had none, as after a restart): only then did
        // `makeFollowers` truncate and restart the fetcher.
        let leader_changed =
            !matches!(self.role, Role::Follower { leader } if leader == state.leader);
        self.apply_partition_state(state);
        self.role = Role::Follower {
            leader: state.leader,
        };
        self.pending_truncation = None;
        self.high_watermark = self.high_watermark.min(self.log.log_end_offset());
        // bug-mode switch point: KAFKA-1211 and KIP-101-2 (truncate to the local HW here, and
        // so after a restart, instead of by epoch) and KAFKA-6361 (ask the leader for the end
        // of the latest epoch before fetching). `makeFollowers` skipped a partition whose
        // leader was not alive (none here) without truncating it.
        let leader_changed = leader_changed && state.leader.is_some();
        if leader_changed && self.pre_kip101() {
            self.truncate_to_high_watermark(disk);
        } else if leader_changed && self.pre_kip279() {
            self.begin_epoch_truncation(disk);
        }
        Ok(())
    }

    /// The pre-KIP-101 truncation (`logManager.truncateTo(HW)`): whatever lies above the
    /// local HW goes, committed or not, since a follower's HW lags the leader's.
    fn truncate_to_high_watermark(&mut self, disk: &mut dyn DiskIo) {
        self.stamp.bump();
        let hw = self.high_watermark;
        let leo = self.cut_log(disk, hw);
        self.high_watermark = self.high_watermark.min(leo);
    }

    /// StopReplica: the replica stops serving and fetching (its log stays unless the
    /// broker deletes it).
    pub fn stop(&mut self) {
        self.stamp.bump();
        self.role = Role::None;
        self.pending_truncation = None;
    }
}

/// A broker's fence against stale controllers: the highest controller epoch it has seen
/// (B.2). Every controller request passes through it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerEpochFence {
    pub highest: u32,
}

impl ControllerEpochFence {
    /// Accepts a request from controller epoch `epoch` (raising the fence) or answers
    /// STALE_CONTROLLER_EPOCH.
    pub fn admit(&mut self, epoch: u32) -> Result<(), ErrorCode> {
        if epoch < self.highest {
            return Err(ErrorCode::StaleControllerEpoch);
        }
        self.highest = epoch;
        Ok(())
    }
}
