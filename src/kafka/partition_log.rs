//! One replica's partition log with the state derived from it (Kafka's `UnifiedLog`): the
//! segment files ([`Log`]), the leader-epoch cache ([`EpochCache`]) and the idempotent
//! producer state ([`ProducerState`]), kept consistent through appends, truncations and
//! recovery.
//!
//! A leader appends client batches stamped with its leader epoch after the producer-state
//! check; a follower appends the leader's batches as they are. Either way each batch with a
//! new epoch adds an epoch-cache entry. A truncation cuts the log, the epoch cache and the
//! producer state together.
//!
//! May depend on: `node` (DiskIo) and the `kafka` log, epoch cache and producer state.

use super::epoch_cache::EpochCache;
use super::log::batch::{Batch, ProducerStamp, Record};
use super::log::{FlushPlan, Log, LogConfig};
use super::producer_state::{ProducerState, SequenceCheck};
use crate::node::DiskIo;

#[derive(Clone, Debug)]
pub struct PartitionLog {
    pub log: Log,
    pub epochs: EpochCache,
    pub producers: ProducerState,
}

/// What a leader append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderAppend {
    Appended {
        base_offset: u64,
        last_offset: u64,
    },
    /// An idempotent retry of a batch already in the log.
    Duplicate {
        base_offset: u64,
        last_offset: u64,
    },
    OutOfOrderSequence,
    InvalidProducerEpoch,
}

impl PartitionLog {
    /// An empty log in `dir`. Writes nothing.
    pub fn new(dir: &str, config: LogConfig) -> PartitionLog {
        PartitionLog {
            log: Log::new(dir, config, 0),
            epochs: EpochCache::new(dir),
            producers: ProducerState::default(),
        }
    }

    /// Rebuilds a replica's log from its files after a restart: the segments (cutting a torn
    /// tail, refusing corruption), then the epoch cache and the producer state from them.
    /// `log_start_offset` and `recovery_point` come from the broker's checkpoint files.
    /// Returns the log and the offset where a tail was cut, if one was.
    pub fn recover(
        disk: &mut dyn DiskIo,
        dir: &str,
        config: LogConfig,
        log_start_offset: u64,
        recovery_point: u64,
    ) -> Result<(PartitionLog, Option<u64>), String> {
        let recovered = Log::recover(disk, dir, config, log_start_offset, recovery_point)?;
        let log = recovered.log;
        let epochs = EpochCache::recover(
            disk,
            dir,
            log.batches().map(|b| (b.leader_epoch, b.base_offset)),
            log.log_start_offset(),
            log.log_end_offset(),
        );
        let producers = ProducerState::rebuild(log.batches());
        Ok((
            PartitionLog {
                log,
                epochs,
                producers,
            },
            recovered.truncated_at,
        ))
    }

    pub fn log_end_offset(&self) -> u64 {
        self.log.log_end_offset()
    }
    pub fn log_start_offset(&self) -> u64 {
        self.log.log_start_offset()
    }
    /// The latest epoch in the epoch cache (a follower's `lastFetchedEpoch`).
    pub fn latest_epoch(&self) -> Option<u32> {
        self.epochs.latest_epoch()
    }
    /// `(largest epoch <= epoch, its end offset)`; see [`EpochCache::end_offset_for`].
    pub fn end_offset_for(&self, epoch: u32) -> Option<(u32, u64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }
    /// The epoch of the record just before `offset` (None at the log start).
    pub fn epoch_before(&self, offset: u64) -> Option<u32> {
        let entries = self.epochs.entries();
        let i = entries.partition_point(|e| e.start_offset < offset);
        i.checked_sub(1).map(|i| entries[i].epoch)
    }

    /// A new leader records that its epoch starts at its LEO (PR #5678), so it can answer
    /// for epochs it never wrote to. Returns whether the checkpoint changed.
    pub fn assign_epoch_start(&mut self, disk: &mut dyn DiskIo, epoch: u32) -> bool {
        let leo = self.log_end_offset();
        self.epochs.assign(disk, epoch, leo)
    }

    /// A leader's append of a client batch: the producer-state check, then the batch at the
    /// LEO stamped with `leader_epoch`.
    pub fn append_as_leader(
        &mut self,
        disk: &mut dyn DiskIo,
        leader_epoch: u32,
        producer: ProducerStamp,
        records: Vec<Record>,
    ) -> LeaderAppend {
        assert!(!records.is_empty(), "a produce carries at least one record");
        let batch = Batch {
            base_offset: self.log_end_offset(),
            leader_epoch,
            producer,
            records: records.into(),
        };
        match self.producers.check(&batch) {
            SequenceCheck::Append => {}
            SequenceCheck::Duplicate {
                first_offset,
                last_offset,
            } => {
                return LeaderAppend::Duplicate {
                    base_offset: first_offset,
                    last_offset,
                }
            }
            SequenceCheck::OutOfOrder { .. } => return LeaderAppend::OutOfOrderSequence,
            SequenceCheck::Fenced { .. } => return LeaderAppend::InvalidProducerEpoch,
        }
        let (base_offset, last_offset) = (batch.base_offset, batch.last_offset());
        self.append_batch(disk, batch);
        LeaderAppend::Appended {
            base_offset,
            last_offset,
        }
    }

    /// A follower's append of batches fetched from the leader. They must continue the log at
    /// or past its LEO with non-decreasing epochs; otherwise nothing is appended and the
    /// reason is returned (a stale or out-of-order response; Kafka's
    /// UnexpectedAppendOffsetException for a first batch below the LEO). A batch past the LEO
    /// (or past the batch before it) copies a hole of the leader's log (`UnifiedLog.append`
    /// refuses only a first offset below the LEO).
    pub fn append_as_follower(
        &mut self,
        disk: &mut dyn DiskIo,
        batches: &[Batch],
    ) -> Result<u64, String> {
        let mut next = self.log_end_offset();
        let mut epoch = self.log.last_batch().map_or(0, |b| b.leader_epoch);
        for b in batches {
            if b.base_offset < next || b.records.is_empty() || b.leader_epoch < epoch {
                return Err(format!(
                    "{}: fetched batch at {} (epoch {}) does not continue the log at {} \
                     (epoch {})",
                    self.log.dir(),
                    b.base_offset,
                    b.leader_epoch,
                    next,
                    epoch
                ));
            }
            next = b.next_offset();
            epoch = b.leader_epoch;
        }
        let mut appended = 0;
        for b in batches {
            appended += b.records.len() as u64;
            self.append_batch(disk, b.clone());
        }
        Ok(appended)
    }

    fn append_batch(&mut self, disk: &mut dyn DiskIo, batch: Batch) {
        self.epochs
            .assign(disk, batch.leader_epoch, batch.base_offset);
        self.producers.update(&batch);
        self.log.append(disk, batch);
    }

    /// Cuts the log to `offset` (`UnifiedLog.truncateTo`), with the epoch cache and the
    /// producer state: whole batches go, and the LEO becomes `offset` even when a batch
    /// straddling it leaves a hole below it (see [`Log::truncate_to`]). Returns the new LEO.
    pub fn truncate_to(&mut self, disk: &mut dyn DiskIo, offset: u64) -> u64 {
        self.truncate(disk, offset, true)
    }

    /// Cuts whole batches so the LEO is <= `offset`, without a hole (the pre-0.11 fetchers
    /// of the bug modes, see [`Log::truncate_to_batch`]). Returns the new LEO.
    pub fn truncate_to_batch(&mut self, disk: &mut dyn DiskIo, offset: u64) -> u64 {
        self.truncate(disk, offset, false)
    }

    fn truncate(&mut self, disk: &mut dyn DiskIo, offset: u64, hole: bool) -> u64 {
        if offset >= self.log_end_offset() {
            // Nothing to cut, but an epoch entry at the LEO goes (UnifiedLog.truncateTo): a
            // replica that became leader, recorded (epoch, LEO) and appended nothing before
            // it followed again would otherwise send that epoch as lastFetchedEpoch forever
            // and be told to truncate to its own LEO on every fetch.
            let leo = self.log_end_offset();
            self.epochs.truncate_from_end(disk, leo);
            return leo;
        }
        let leo = match hole {
            true => self.log.truncate_to(disk, offset),
            false => self.log.truncate_to_batch(disk, offset),
        };
        self.epochs.truncate_from_end(disk, leo);
        self.producers = ProducerState::rebuild(self.log.batches());
        leo
    }

    pub fn read(&self, from: u64, max_records: u64, upper_bound: u64) -> Vec<Batch> {
        self.log.read(from, max_records, upper_bound)
    }

    /// The files to fsync for the whole log to be durable: the segments written since the
    /// last plan and the epoch checkpoint. See [`Log::flush_plan`].
    pub fn flush_plan(&mut self) -> FlushPlan {
        let mut plan = self.log.flush_plan();
        plan.files.push(self.epochs.file().to_string());
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::MemDisk;

    fn recs(n: u64) -> Vec<Record> {
        (0..n).map(|v| Record { key: 0, value: v }).collect()
    }

    fn stamp(seq: i32) -> ProducerStamp {
        ProducerStamp {
            producer_id: 3,
            producer_epoch: 0,
            base_sequence: seq,
        }
    }

    #[test]
    fn leader_appends_stamp_epochs_and_detect_duplicates() {
        let mut disk = MemDisk::default();
        let mut p = PartitionLog::new("t-0", LogConfig::default());
        p.assign_epoch_start(&mut disk, 1);
        let a = p.append_as_leader(&mut disk, 1, stamp(0), recs(2));
        assert_eq!(
            a,
            LeaderAppend::Appended {
                base_offset: 0,
                last_offset: 1
            }
        );
        p.assign_epoch_start(&mut disk, 3);
        p.append_as_leader(&mut disk, 3, stamp(2), recs(1));
        assert_eq!(
            p.append_as_leader(&mut disk, 3, stamp(0), recs(2)),
            LeaderAppend::Duplicate {
                base_offset: 0,
                last_offset: 1
            }
        );
        assert_eq!(
            p.append_as_leader(&mut disk, 3, stamp(9), recs(1)),
            LeaderAppend::OutOfOrderSequence
        );
        assert_eq!(p.log_end_offset(), 3);
        assert_eq!(p.end_offset_for(1), Some((1, 2)));
        assert_eq!(p.end_offset_for(2), Some((1, 2)));
        assert_eq!(p.epoch_before(3), Some(3));
        assert_eq!(p.epoch_before(2), Some(1));
        assert_eq!(p.epoch_before(0), None);
    }

    #[test]
    fn truncation_cuts_epochs_and_producer_state_and_recovery_agrees() {
        let mut disk = MemDisk::default();
        let mut p = PartitionLog::new("t-0", LogConfig::default());
        p.append_as_leader(&mut disk, 1, stamp(0), recs(2));
        p.append_as_leader(&mut disk, 2, stamp(2), recs(2));
        assert_eq!(p.truncate_to(&mut disk, 2), 2);
        assert_eq!(p.latest_epoch(), Some(1));
        assert_eq!(p.producers.entry(3).unwrap().last_seq(), Some(1));
        // The cut batch may now be appended again (a new leader's log took its place).
        assert!(matches!(
            p.append_as_leader(&mut disk, 4, stamp(2), recs(1)),
            LeaderAppend::Appended { base_offset: 2, .. }
        ));
        let (back, cut) =
            PartitionLog::recover(&mut disk, "t-0", LogConfig::default(), 0, 0).unwrap();
        assert_eq!(cut, None);
        assert_eq!(back.epochs, p.epochs);
        assert_eq!(back.producers, p.producers);
        assert_eq!(back.log_end_offset(), 3);
    }

    #[test]
    fn a_truncation_at_the_leo_drops_an_epoch_that_holds_no_batch() {
        // Led epoch 3 without appending, then follows again: the (3, LEO) entry must go, or
        // every fetch names epoch 3 as the last fetched one.
        let mut disk = MemDisk::default();
        let mut p = PartitionLog::new("t-0", LogConfig::default());
        p.append_as_leader(&mut disk, 1, stamp(0), recs(2));
        p.assign_epoch_start(&mut disk, 3);
        assert_eq!(p.latest_epoch(), Some(3));
        assert_eq!(p.truncate_to(&mut disk, 5), 2);
        assert_eq!(p.latest_epoch(), Some(1));
        assert_eq!(p.log_end_offset(), 2);
    }

    #[test]
    fn follower_appends_must_continue_the_log() {
        let mut disk = MemDisk::default();
        let mut leader = PartitionLog::new("l", LogConfig::default());
        leader.append_as_leader(&mut disk, 1, ProducerStamp::NONE, recs(2));
        leader.append_as_leader(&mut disk, 2, ProducerStamp::NONE, recs(1));
        let batches = leader.read(0, 100, 3);
        let mut f = PartitionLog::new("f", LogConfig::default());
        assert_eq!(f.append_as_follower(&mut disk, &batches), Ok(3));
        assert_eq!(f.epochs.entries(), leader.epochs.entries());
        // A first batch below the LEO: UnexpectedAppendOffsetException, nothing appended.
        assert!(f.append_as_follower(&mut disk, &batches).is_err());
        assert!(f.append_as_follower(&mut disk, &batches[1..]).is_err());
        assert_eq!(f.log_end_offset(), 3);
        // Past the LEO: the copy of a leader's hole (UnifiedLog.append refuses only below).
        let mut g = PartitionLog::new("g", LogConfig::default());
        assert_eq!(g.append_as_follower(&mut disk, &batches[1..]), Ok(1));
        assert_eq!(g.log_end_offset(), 3);
        // Batches out of order inside one response are refused.
        let mut h = PartitionLog::new("h", LogConfig::default());
        let backwards = [batches[1].clone(), batches[0].clone()];
        assert!(h.append_as_follower(&mut disk, &backwards).is_err());
    }

    /// A truncation inside a batch keeps the epoch entries below the target (Kafka's
    /// `truncateFromEnd(target)`), even one whose batch went whole into the hole.
    #[test]
    fn truncation_inside_a_batch_keeps_the_epochs_below_the_target() {
        let mut disk = MemDisk::default();
        let mut p = PartitionLog::new("t-0", LogConfig::default());
        p.append_as_leader(&mut disk, 1, ProducerStamp::NONE, recs(2));
        p.append_as_leader(&mut disk, 2, ProducerStamp::NONE, recs(4));
        assert_eq!(p.truncate_to(&mut disk, 4), 4);
        assert_eq!(p.log.physical_end(), 2);
        assert_eq!(p.latest_epoch(), Some(2));
        assert_eq!(p.end_offset_for(2), Some((2, 4)));
        let mut q = PartitionLog::new("t-1", LogConfig::default());
        q.append_as_leader(&mut disk, 1, ProducerStamp::NONE, recs(2));
        q.append_as_leader(&mut disk, 2, ProducerStamp::NONE, recs(4));
        assert_eq!(q.truncate_to_batch(&mut disk, 4), 2);
        assert_eq!(q.latest_epoch(), Some(1));
    }
}
