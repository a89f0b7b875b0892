//! The leader-epoch cache of one partition replica and its `leader-epoch-checkpoint` file
//! (KIP-101, KIP-279; Kafka's `LeaderEpochFileCache`).
//!
//! The cache maps each leader epoch to the first offset written in it. Epochs and start
//! offsets are both strictly increasing (`apache/kafka` PR #5678): assigning an entry that
//! conflicts with later ones removes them first. A new leader assigns (its new epoch, its LEO)
//! at once, so it can answer for epochs it never wrote to. `end_offset_for` answers
//! OffsetsForLeaderEpoch and the divergence check of a fetch as after KIP-279: the largest
//! epoch <= the requested one and the start of the next epoch (or the LEO for the latest).
//!
//! File: Kafka's text format (`0`, the entry count, one `epoch startOffset` line per entry)
//! followed by one `crc <hex>` line over the text, because the simulated disk corrupts reads.
//! It is rewritten whole on every change (page cache); the broker fsyncs it after every
//! change, as Kafka's `CheckpointFile.write` does (`broker::storage`). On recovery the cache
//! is rebuilt from the checkpoint and the log's batches, then cut to the log's range: a lost
//! checkpoint costs only an entry no batch begins (one over a hole at the log's start or
//! inside it), which is why the broker keeps it synced.
//!
//! May depend on: `node` (DiskIo, checksum), `kafka::stamp`.

use crate::kafka::stamp::Stamp;
use crate::node::checksum::crc32c;
use crate::node::DiskIo;
use serde::{Deserialize, Serialize};

const READ_ATTEMPTS: usize = 5;
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// The first offset written in a leader epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EpochEntry {
    pub epoch: u32,
    pub start_offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochCache {
    file: String,
    entries: Vec<EpochEntry>,
    /// Fresh at every change (see [`crate::kafka::stamp`]).
    stamp: Stamp,
}

impl EpochCache {
    /// An empty cache for the partition directory `dir`. Writes nothing.
    pub fn new(dir: &str) -> EpochCache {
        EpochCache {
            file: format!("{dir}/{CHECKPOINT_FILE}"),
            entries: Vec::new(),
            stamp: Stamp::fresh(),
        }
    }

    /// The checkpoint file (to fsync after a change, if the caller wants it durable now).
    pub fn file(&self) -> &str {
        &self.file
    }
    /// Fresh at every change (see [`crate::kafka::stamp`]).
    pub fn stamp(&self) -> u64 {
        self.stamp.get()
    }
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }
    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }
    pub fn latest_epoch(&self) -> Option<u32> {
        self.entries.last().map(|e| e.epoch)
    }
    pub fn earliest(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Records that `epoch` starts at `start_offset`, removing later entries that would break
    /// the strict order. A repeat of the latest epoch at the same or a later offset changes
    /// nothing. Returns whether the cache (and its file) changed.
    /// The stamp stays when nothing changed (every append of a leader epoch's later
    /// batches): the broker's checkpoint sync and the monitor then skip the cache.
    pub fn assign(&mut self, disk: &mut dyn DiskIo, epoch: u32, start_offset: u64) -> bool {
        let changed = self.assign_in_memory(epoch, start_offset);
        if changed {
            self.write(disk);
        }
        changed
    }

    fn assign_in_memory(&mut self, epoch: u32, start_offset: u64) -> bool {
        if let Some(last) = self.latest() {
            if last.epoch == epoch && start_offset >= last.start_offset {
                return false;
            }
        }
        self.stamp.bump();
        while let Some(last) = self.latest() {
            if last.epoch >= epoch || last.start_offset >= start_offset {
                self.entries.pop();
            } else {
                break;
            }
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// OffsetsForLeaderEpoch: `(largest known epoch <= requested, end offset of that epoch)`,
    /// where the end offset is the start of the next larger epoch, or `log_end_offset` if the
    /// requested epoch is the latest. For an epoch older than every entry, the answer is the
    /// requested epoch and the first entry's start (the data before it is gone). `None` is
    /// Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET: an empty cache, or an epoch newer
    /// than the latest.
    pub fn end_offset_for(&self, requested: u32, log_end_offset: u64) -> Option<(u32, u64)> {
        let latest = self.latest()?;
        if latest.epoch == requested {
            return Some((requested, log_end_offset));
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let next = self.entries.get(higher)?;
        match higher.checked_sub(1).map(|i| self.entries[i]) {
            None => Some((requested, next.start_offset)),
            Some(floor) => Some((floor.epoch, next.start_offset)),
        }
    }

    /// OffsetsForLeaderEpoch as KIP-101 first shipped it (0.11-1.1, before KIP-279 and
    /// KAFKA-6361), an offset only: the LEO for the latest epoch; the start of the first
    /// epoch above the requested one; UNDEFINED (None) when the requested epoch is older
    /// than every entry or newer than the latest. Kept for the KAFKA-6361 bug mode: a leader
    /// that never had the requested epoch answers with the start of a later epoch of its
    /// own, past the point where the logs forked.
    pub fn legacy_end_offset_for(&self, requested: u32, log_end_offset: u64) -> Option<u64> {
        let first = self.earliest()?;
        if self.latest_epoch() == Some(requested) {
            return Some(log_end_offset);
        }
        if requested < first.epoch {
            return None;
        }
        self.entries
            .iter()
            .find(|e| e.epoch > requested)
            .map(|e| e.start_offset)
    }

    /// The log was truncated to `end_offset`: entries starting at or after it go.
    pub fn truncate_from_end(&mut self, disk: &mut dyn DiskIo, end_offset: u64) {
        self.stamp.bump();
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.write(disk);
        }
    }

    /// The log now starts at `start_offset`: entries wholly before it go, and the epoch that
    /// covers it is moved to start there (exclusive of later entries, as in Kafka).
    pub fn truncate_from_start(&mut self, disk: &mut dyn DiskIo, start_offset: u64) {
        self.stamp.bump();
        let covered = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if covered == 0 {
            return;
        }
        let epoch = self.entries[covered - 1].epoch;
        self.entries.drain(..covered);
        self.entries.insert(
            0,
            EpochEntry {
                epoch,
                start_offset,
            },
        );
        self.write(disk);
    }

    fn encode(&self) -> Vec<u8> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        let crc = crc32c(text.as_bytes());
        text.push_str(&format!("crc {crc:08x}\n"));
        text.into_bytes()
    }

    fn write(&self, disk: &mut dyn DiskIo) {
        disk.write_all(&self.file, &self.encode());
    }

    /// Rebuilds the cache of `dir` on restart: the checkpoint's entries (if it reads back
    /// valid), then an entry for every batch (epoch, base offset), then cut to the log's
    /// `[log_start_offset, log_end_offset)`. Rewrites the file if that changed anything.
    pub fn recover(
        disk: &mut dyn DiskIo,
        dir: &str,
        batches: impl IntoIterator<Item = (u32, u64)>,
        log_start_offset: u64,
        log_end_offset: u64,
    ) -> EpochCache {
        let mut cache = EpochCache::new(dir);
        let stored = read_checkpoint(disk, &cache.file).unwrap_or_default();
        for e in &stored {
            cache.assign_in_memory(e.epoch, e.start_offset);
        }
        for (epoch, base) in batches {
            cache.assign_in_memory(epoch, base);
        }
        let keep = cache
            .entries
            .partition_point(|e| e.start_offset < log_end_offset);
        cache.entries.truncate(keep);
        if cache.entries != stored {
            cache.write(disk);
        }
        if log_start_offset > 0 {
            cache.truncate_from_start(disk, log_start_offset);
        }
        cache
    }
}

/// Reads a checkpoint, retrying corrupted reads. None if absent or never valid (then the
/// log alone rebuilds the cache), or if its entries are not strictly increasing.
fn read_checkpoint(disk: &mut dyn DiskIo, file: &str) -> Option<Vec<EpochEntry>> {
    for _ in 0..READ_ATTEMPTS {
        let bytes = disk.read(file)?;
        if let Some(entries) = parse_checkpoint(&bytes) {
            return Some(entries);
        }
    }
    None
}

fn parse_checkpoint(bytes: &[u8]) -> Option<Vec<EpochEntry>> {
    let (count, lines) = super::checkpoint::verified_entries(bytes)?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for line in lines {
        let (e, o) = line.split_once(' ')?;
        entries.push(EpochEntry {
            epoch: e.parse().ok()?,
            start_offset: o.parse().ok()?,
        });
    }
    let increasing = entries
        .windows(2)
        .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
    (entries.len() == count && increasing).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::MemDisk;

    fn cache(entries: &[(u32, u64)]) -> (EpochCache, MemDisk) {
        let mut disk = MemDisk::default();
        let mut c = EpochCache::new("t-0");
        for &(e, o) in entries {
            assert!(c.assign(&mut disk, e, o));
        }
        (c, disk)
    }

    fn pairs(c: &EpochCache) -> Vec<(u32, u64)> {
        c.entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_strictly_increasing() {
        let (mut c, mut disk) = cache(&[(1, 0), (2, 5), (4, 9)]);
        // The same epoch at the same or a later offset is a repeat: nothing changes.
        assert!(!c.assign(&mut disk, 4, 9));
        assert!(!c.assign(&mut disk, 4, 12));
        // The latest epoch at an earlier offset moves its start (after a truncation).
        assert!(c.assign(&mut disk, 4, 7));
        assert_eq!(pairs(&c), vec![(1, 0), (2, 5), (4, 7)]);
        // A lower epoch, or one at an offset not above later entries, removes them (#5678).
        assert!(c.assign(&mut disk, 3, 6));
        assert_eq!(pairs(&c), vec![(1, 0), (2, 5), (3, 6)]);
        assert!(c.assign(&mut disk, 5, 5));
        assert_eq!(pairs(&c), vec![(1, 0), (5, 5)]);
    }

    #[test]
    fn end_offset_for_follows_kip_279() {
        // Epochs 1 at 0, 2 at 5, 4 at 9; LEO 12. Epoch 3 was never written by this replica.
        let (c, _) = cache(&[(1, 0), (2, 5), (4, 9)]);
        assert_eq!(c.end_offset_for(4, 12), Some((4, 12)), "latest: the LEO");
        assert_eq!(c.end_offset_for(2, 12), Some((2, 9)));
        assert_eq!(c.end_offset_for(1, 12), Some((1, 5)));
        // An unknown epoch answers with the largest epoch below it (KIP-279) and the start
        // of the next one.
        assert_eq!(c.end_offset_for(3, 12), Some((2, 9)));
        assert_eq!(c.end_offset_for(9, 12), None, "newer than anything known");
        let (c, _) = cache(&[(3, 10), (5, 20)]);
        // Older than the first entry: that entry's start (#5678).
        assert_eq!(c.end_offset_for(1, 30), Some((1, 10)));
        assert_eq!(EpochCache::new("x").end_offset_for(1, 0), None);
    }

    #[test]
    fn legacy_end_offset_for_answers_as_kip_101_first_shipped() {
        // Epochs 1 at 0, 2 at 5, 4 at 9; LEO 12; epoch 3 never written here.
        let (c, _) = cache(&[(1, 0), (2, 5), (4, 9)]);
        assert_eq!(c.legacy_end_offset_for(4, 12), Some(12), "latest: the LEO");
        assert_eq!(c.legacy_end_offset_for(2, 12), Some(9));
        assert_eq!(c.legacy_end_offset_for(1, 12), Some(5));
        // An epoch this replica never had: the start of the next higher one, not the end
        // of the largest epoch below it (KIP-279 answers (2, 9) with the epoch it means,
        // the old format only 9). Here both offsets agree; the next case shows where not.
        assert_eq!(c.legacy_end_offset_for(3, 12), Some(9));
        assert_eq!(c.end_offset_for(3, 12), Some((2, 9)));
        // Newer than the latest, older than the first entry, an empty cache: UNDEFINED.
        assert_eq!(c.legacy_end_offset_for(9, 12), None);
        let (c, _) = cache(&[(3, 10), (5, 20)]);
        assert_eq!(c.legacy_end_offset_for(1, 30), None);
        assert_eq!(c.end_offset_for(1, 30), Some((1, 10)), "#5678 answers it");
        assert_eq!(EpochCache::new("x").legacy_end_offset_for(1, 0), None);
        // The K4 shape: a leader that wrote epochs 1 (to 4) and 3 is asked about epoch 2,
        // which only the asker had: the old answer is 4, past the fork at 2; the fixed
        // answer names epoch 1, so the asker cuts to its own end of epoch 1.
        let (c, _) = cache(&[(1, 0), (3, 4)]);
        assert_eq!(c.legacy_end_offset_for(2, 6), Some(4));
        assert_eq!(c.end_offset_for(2, 6), Some((1, 4)));
    }

    #[test]
    fn new_leader_entry_answers_for_epochs_it_never_wrote() {
        // A leader that wrote only epoch 1 (to offset 21) becomes leader in epoch 3: with
        // (3, 21) assigned at once, a follower asking about epoch 2 learns (1, 21).
        let (mut c, mut disk) = cache(&[(1, 0)]);
        assert_eq!(c.end_offset_for(2, 21), None);
        c.assign(&mut disk, 3, 21);
        assert_eq!(c.end_offset_for(2, 21), Some((1, 21)));
    }

    #[test]
    fn truncation_from_end_and_from_start() {
        let (mut c, mut disk) = cache(&[(1, 0), (2, 5), (4, 9)]);
        c.truncate_from_end(&mut disk, 9);
        assert_eq!(pairs(&c), vec![(1, 0), (2, 5)]);
        c.truncate_from_end(&mut disk, 6);
        assert_eq!(pairs(&c), vec![(1, 0), (2, 5)]);
        let (mut c, mut disk) = cache(&[(1, 0), (2, 5), (4, 9)]);
        c.truncate_from_start(&mut disk, 6);
        assert_eq!(pairs(&c), vec![(2, 6), (4, 9)]);
        c.truncate_from_start(&mut disk, 9);
        assert_eq!(pairs(&c), vec![(4, 9)]);
    }

    #[test]
    fn checkpoint_round_trips_and_recovery_merges_the_log() {
        let (c, mut disk) = cache(&[(1, 0), (2, 5), (4, 9)]);
        let text = String::from_utf8(disk.files["t-0/leader-epoch-checkpoint"].clone()).unwrap();
        assert!(text.starts_with("0\n3\n1 0\n2 5\n4 9\ncrc "), "{text}");
        // The log holds epochs 1, 2 and a batch of epoch 4 at 9; LEO 12.
        let batches = [(1, 0), (1, 3), (2, 5), (4, 9)];
        let back = EpochCache::recover(&mut disk, "t-0", batches, 0, 12);
        assert_eq!(back, c);
        // Lost checkpoint: the log alone rebuilds it.
        disk.remove("t-0/leader-epoch-checkpoint");
        let back = EpochCache::recover(&mut disk, "t-0", batches, 0, 12);
        assert_eq!(pairs(&back), pairs(&c));
        // A stale checkpoint beyond a shorter log is cut to it; an entry at the LEO (a
        // leader's new epoch with no data yet) goes too, as in Kafka's load.
        let (_, mut disk) = cache(&[(1, 0), (2, 5), (4, 9), (6, 12)]);
        let back = EpochCache::recover(&mut disk, "t-0", [(1, 0), (2, 5)], 0, 7);
        assert_eq!(pairs(&back), vec![(1, 0), (2, 5)]);
    }

    /// Our recovery re-assigns every batch's epoch over the stored entries (the first
    /// batch's assign replaces them all), so for a log whose every entry begins at a batch
    /// whether the last write survived changes nothing: a new epoch's entry comes back from
    /// its first batch, or goes with it. An entry kept over a hole (epoch 5's first batch,
    /// 10..13, cut whole by a truncation to 12, then epoch 6 from 12) is dropped by the
    /// re-assignment, file or not, where Kafka's recovery keeps it (the third case); one over
    /// a hole at the log's start comes back only from the file, hence the broker's fsync.
    #[test]
    fn recovery_does_not_depend_on_the_checkpoint_surviving() {
        for (entries, batches, leo) in [
            (&[(4, 0), (5, 10)][..], &[(4, 0), (5, 10)][..], 12),
            (&[(4, 0), (5, 10)][..], &[(4, 0)][..], 10),
            (&[(4, 0), (5, 10), (6, 12)][..], &[(4, 0), (6, 12)][..], 15),
        ] {
            let (_, mut disk) = cache(entries);
            let kept = EpochCache::recover(&mut disk, "t-0", batches.iter().copied(), 0, leo);
            disk.remove("t-0/leader-epoch-checkpoint");
            let lost = EpochCache::recover(&mut disk, "t-0", batches.iter().copied(), 0, leo);
            assert_eq!(pairs(&kept), pairs(&lost), "{entries:?}");
            let from_batches: Vec<(u32, u64)> = batches.to_vec();
            assert_eq!(pairs(&lost), from_batches);
        }
    }

    #[test]
    fn a_corrupted_checkpoint_is_ignored_not_trusted() {
        let (_, mut disk) = cache(&[(1, 0), (7, 5)]);
        let file = "t-0/leader-epoch-checkpoint";
        disk.files.get_mut(file).unwrap()[6] ^= 0x01;
        assert_eq!(read_checkpoint(&mut disk, file), None);
        let back = EpochCache::recover(&mut disk, "t-0", [(1, 0), (2, 3)], 0, 4);
        assert_eq!(pairs(&back), vec![(1, 0), (2, 3)]);
    }
}
