use super::batch::{ProducerStamp, Record};
use super::*;
use crate::node::MemDisk;

const DIR: &str = "t-0";

pub(crate) fn batch(base: u64, epoch: u32, n: u64) -> Batch {
    Batch {
        base_offset: base,
        leader_epoch: epoch,
        producer: ProducerStamp::NONE,
        records: (0..n)
            .map(|i| Record {
                key: 1,
                value: base + i,
            })
            .collect(),
    }
}

/// A log of `sizes.len()` batches of the given record counts, all in `epoch`.
fn build(disk: &mut MemDisk, config: LogConfig, epochs_sizes: &[(u32, u64)]) -> Log {
    let mut log = Log::new(DIR, config, 0);
    for &(epoch, n) in epochs_sizes {
        let base = log.log_end_offset();
        log.append(disk, batch(base, epoch, n));
    }
    log
}

fn small_segments() -> LogConfig {
    // Two 2-record batches (70 bytes each) fit; the third rolls.
    LogConfig { segment_bytes: 200 }
}

fn offsets(log: &Log) -> Vec<(u64, u32)> {
    log.batches()
        .map(|b| (b.base_offset, b.leader_epoch))
        .collect()
}

#[test]
fn append_assigns_dense_offsets_and_rolls_segments() {
    let mut disk = MemDisk::default();
    let log = build(
        &mut disk,
        small_segments(),
        &[(1, 2), (1, 2), (2, 2), (2, 1)],
    );
    assert_eq!(log.log_end_offset(), 7);
    assert_eq!(offsets(&log), vec![(0, 1), (2, 1), (4, 2), (6, 2)]);
    assert_eq!(
        log.segment_files(),
        vec![segment_file(DIR, 0), segment_file(DIR, 4)]
    );
    assert_eq!(disk.list(), log.segment_files());
}

#[test]
#[should_panic(expected = "leader epoch 1 after 2")]
fn append_refuses_an_older_epoch() {
    let mut disk = MemDisk::default();
    let mut log = build(&mut disk, LogConfig::default(), &[(2, 1)]);
    log.append(&mut disk, batch(1, 1, 1));
}

#[test]
fn read_returns_whole_batches_below_the_bound() {
    let mut disk = MemDisk::default();
    let log = build(&mut disk, small_segments(), &[(1, 2), (1, 2), (2, 2)]);
    // From the middle of the first batch: the whole batch comes back, as in Kafka.
    let got: Vec<u64> = log.read(1, 100, 6).iter().map(|b| b.base_offset).collect();
    assert_eq!(got, vec![0, 2, 4]);
    // A consumer bounded by HW = 4 never sees offsets 4 and 5.
    assert_eq!(log.read(0, 100, 4).len(), 2);
    // max_records caps after at least one batch.
    assert_eq!(log.read(0, 1, 6).len(), 1);
    assert!(log.read(6, 100, 6).is_empty());
}

#[test]
fn truncate_to_batch_removes_straddling_batches_and_whole_segments() {
    let mut disk = MemDisk::default();
    let mut log = build(&mut disk, small_segments(), &[(1, 2), (1, 2), (2, 2)]);
    assert_eq!(log.truncate_to_batch(&mut disk, 5), 4);
    assert_eq!(disk.list(), vec![segment_file(DIR, 0)]);
    assert_eq!(log.truncate_to_batch(&mut disk, 3), 2);
    assert_eq!(
        disk.files[&segment_file(DIR, 0)].len(),
        batch(0, 1, 2).frame_len()
    );
    // Appending again continues the same file, and recovery sees exactly the kept log.
    log.append(&mut disk, batch(2, 3, 1));
    let back = Log::recover(&mut disk, DIR, small_segments(), 0, 0).unwrap();
    assert_eq!(offsets(&back.log), vec![(0, 1), (2, 3)]);
    assert_eq!(back.truncated_at, None);
}

/// Kafka's `LocalLog.truncateTo`: the straddling batch goes whole, the LEO is the target,
/// over a hole; reads skip the hole; a restart ends the log at its last batch again.
#[test]
fn truncate_inside_a_batch_leaves_a_hole_up_to_the_target() {
    let mut disk = MemDisk::default();
    let mut log = build(&mut disk, LogConfig::default(), &[(1, 2), (1, 4)]);
    assert_eq!(log.truncate_to(&mut disk, 4), 4);
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.physical_end(), 2);
    assert_eq!(offsets(&log), vec![(0, 1)]);
    assert_eq!(
        disk.files[&segment_file(DIR, 0)].len(),
        batch(0, 1, 2).frame_len()
    );
    // Nothing to cut at or past the LEO, even with a hole below it.
    assert_eq!(log.truncate_to(&mut disk, 9), 4);
    // A restart now: recovery takes the LEO from the last batch (LogLoader).
    let mut copy = disk.clone();
    let back = Log::recover(&mut copy, DIR, LogConfig::default(), 0, 0).unwrap();
    assert_eq!(back.log.log_end_offset(), 2);
    assert_eq!(back.truncated_at, None);
    // The follower resumes at the target: the hole stays inside the log, reads from
    // inside it return the batch after it, and recovery keeps it.
    log.append(&mut disk, batch(4, 2, 2));
    assert_eq!(log.log_end_offset(), 6);
    let read: Vec<u64> = log.read(2, 100, 6).iter().map(|b| b.base_offset).collect();
    assert_eq!(read, vec![4]);
    let back = Log::recover(&mut disk, DIR, LogConfig::default(), 0, 0).unwrap();
    assert_eq!(offsets(&back.log), vec![(0, 1), (4, 2)]);
    assert_eq!(back.log.log_end_offset(), 6);
    assert_eq!(back.truncated_at, None);
}

/// A straddling batch that began its segment: the segment stays, emptied (Kafka removes
/// only the segments based past the target), and the next append goes into it.
#[test]
fn truncate_inside_the_first_batch_of_a_segment_keeps_the_segment() {
    let mut disk = MemDisk::default();
    let mut log = build(
        &mut disk,
        small_segments(),
        &[(1, 2), (1, 2), (2, 2), (2, 2)],
    );
    assert_eq!(log.segment_files().len(), 2);
    assert_eq!(log.truncate_to(&mut disk, 5), 5);
    assert_eq!(log.physical_end(), 4);
    assert_eq!(
        log.segment_files(),
        vec![segment_file(DIR, 0), segment_file(DIR, 4)]
    );
    assert_eq!(disk.files[&segment_file(DIR, 4)].len(), 0);
    // No roll across the hole: the batch lands in the emptied segment.
    log.append(&mut disk, batch(5, 3, 2));
    assert_eq!(
        disk.files[&segment_file(DIR, 4)].len(),
        batch(5, 3, 2).frame_len()
    );
    let back = Log::recover(&mut disk, DIR, small_segments(), 0, 0).unwrap();
    assert_eq!(offsets(&back.log), vec![(0, 1), (2, 1), (5, 3)]);
    assert_eq!(back.log.log_end_offset(), 7);
}

#[test]
fn flush_plan_names_dirty_segments_and_moves_the_recovery_point() {
    let mut disk = MemDisk::default();
    let mut log = build(&mut disk, small_segments(), &[(1, 2), (1, 2), (2, 2)]);
    assert_eq!(log.unflushed_messages(), 6);
    let plan = log.flush_plan();
    assert_eq!(plan.files, log.segment_files());
    assert_eq!(plan.offset, 6);
    log.mark_flushed(&plan);
    assert_eq!(log.recovery_point(), 6);
    assert!(log.flush_plan().files.is_empty());
    // A plan overtaken by a truncation does not move the recovery point.
    log.append(&mut disk, batch(6, 2, 1));
    let plan = log.flush_plan();
    log.truncate_to(&mut disk, 5);
    assert_eq!(log.recovery_point(), 4);
    log.mark_flushed(&plan);
    assert_eq!(log.recovery_point(), 4);
}

#[test]
fn recovery_rebuilds_from_files_alone() {
    let mut disk = MemDisk::default();
    let log = build(
        &mut disk,
        small_segments(),
        &[(1, 2), (1, 2), (2, 2), (4, 3)],
    );
    let mut back = Log::recover(&mut disk, DIR, small_segments(), 0, 4).unwrap();
    assert_eq!(offsets(&back.log), offsets(&log));
    assert_eq!(back.log.log_end_offset(), 9);
    assert_eq!(back.log.recovery_point(), 4);
    assert_eq!(back.log.segment_files(), log.segment_files());
    // The segments past the recovery point may be page cache only: the first flush
    // covers them, and only them.
    assert_eq!(back.log.flush_plan().files, vec![segment_file(DIR, 4)]);
    // A recovery point beyond what survived is clamped to the LEO.
    let mut back = Log::recover(&mut disk, DIR, small_segments(), 0, 50).unwrap();
    assert_eq!(back.log.recovery_point(), 9);
    assert!(back.log.flush_plan().files.is_empty());
}

#[test]
fn recovery_cuts_a_torn_tail_at_every_length() {
    let full = batch(2, 1, 3).encode();
    for cut in 1..full.len() {
        let mut disk = MemDisk::default();
        build(&mut disk, LogConfig::default(), &[(1, 2)]);
        disk.append(&segment_file(DIR, 0), &full[..cut]);
        let back = Log::recover(&mut disk, DIR, LogConfig::default(), 0, 0).unwrap();
        assert_eq!(back.log.log_end_offset(), 2, "cut {cut}");
        assert_eq!(back.truncated_at, Some(2));
        // The torn bytes are gone from the file, so the next append continues cleanly.
        assert_eq!(disk.files[&segment_file(DIR, 0)].len(), 70);
    }
}

#[test]
fn recovery_drops_segments_after_a_lost_tail() {
    // Power loss kept the second segment's append but lost the first one's last batch:
    // the files are not ordered with each other, so the orphan goes too.
    let mut disk = MemDisk::default();
    build(&mut disk, small_segments(), &[(1, 2), (1, 2), (2, 2)]);
    let first = segment_file(DIR, 0);
    disk.truncate(&first, 70);
    let back = Log::recover(&mut disk, DIR, small_segments(), 0, 0).unwrap();
    assert_eq!(back.log.log_end_offset(), 2);
    assert_eq!(back.truncated_at, Some(2));
    assert_eq!(disk.list(), vec![first]);
}

#[test]
fn recovery_drops_a_resurrected_segment_and_ends_at_an_older_epoch() {
    // segs 0 (offsets 0-3) and 4 (4-5). A stale file at base 2, whose removal was lost,
    // overlaps the log: dropped, and the log goes on with segment 4.
    let mut disk = MemDisk::default();
    build(&mut disk, small_segments(), &[(1, 2), (1, 2), (2, 2)]);
    disk.append(&segment_file(DIR, 2), &batch(2, 1, 1).encode());
    let back = Log::recover(&mut disk, DIR, small_segments(), 0, 0).unwrap();
    assert_eq!(offsets(&back.log), vec![(0, 1), (2, 1), (4, 2)]);
    assert_eq!(back.truncated_at, None);
    assert!(!disk.list().contains(&segment_file(DIR, 2)));
    // Segment 4 rewritten in epoch 3 lost its rewrite, segment 0 kept epoch-3 data: the
    // older-epoch file continues no history and the log ends before it.
    let mut disk = MemDisk::default();
    build(&mut disk, small_segments(), &[(3, 2), (3, 2)]);
    disk.append(&segment_file(DIR, 4), &batch(4, 2, 2).encode());
    let back = Log::recover(&mut disk, DIR, small_segments(), 0, 0).unwrap();
    assert_eq!(back.log.log_end_offset(), 4);
    assert_eq!(back.truncated_at, Some(4));
    let mut log = back.log;
    let plan = log.flush_plan().files;
    assert!(plan.contains(&segment_file(DIR, 4)), "{plan:?}");
}

#[test]
fn recovery_refuses_corruption_in_the_middle() {
    let mut disk = MemDisk::default();
    build(&mut disk, LogConfig::default(), &[(1, 2), (1, 2), (2, 2)]);
    let file = segment_file(DIR, 0);
    disk.files.get_mut(&file).unwrap()[90] ^= 0x10;
    let err = Log::recover(&mut disk, DIR, LogConfig::default(), 0, 0).unwrap_err();
    assert!(err.contains("corrupted batch at byte 70"), "{err}");
}

#[test]
fn recovery_refuses_offsets_out_of_order_in_a_file() {
    let mut disk = MemDisk::default();
    build(&mut disk, LogConfig::default(), &[(1, 2)]);
    disk.append(&segment_file(DIR, 0), &batch(1, 1, 1).encode());
    disk.append(&segment_file(DIR, 0), &batch(2, 1, 1).encode());
    let err = Log::recover(&mut disk, DIR, LogConfig::default(), 0, 0).unwrap_err();
    assert!(err.contains("corrupted batch at byte 70"), "{err}");
}

/// A disk whose first `bad_reads` reads come back with one bit flipped.
struct FlakyDisk {
    inner: MemDisk,
    bad_reads: usize,
}

impl DiskIo for FlakyDisk {
    fn append(&mut self, f: &str, b: &[u8]) {
        self.inner.append(f, b)
    }
    fn write_all(&mut self, f: &str, b: &[u8]) {
        self.inner.write_all(f, b)
    }
    fn truncate(&mut self, f: &str, len: u64) {
        self.inner.truncate(f, len)
    }
    fn remove(&mut self, f: &str) {
        self.inner.remove(f)
    }
    fn read(&mut self, f: &str) -> Option<Vec<u8>> {
        let mut bytes = self.inner.read(f)?;
        if self.bad_reads > 0 && bytes.len() > 20 {
            self.bad_reads -= 1;
            bytes[20] ^= 1;
        }
        Some(bytes)
    }
    fn len(&self, f: &str) -> Option<u64> {
        self.inner.len(f)
    }
    fn list(&self) -> Vec<String> {
        self.inner.list()
    }
}

#[test]
fn recovery_reads_again_past_a_corrupted_read() {
    let mut inner = MemDisk::default();
    build(&mut inner, LogConfig::default(), &[(1, 2), (1, 2)]);
    let mut disk = FlakyDisk {
        inner,
        bad_reads: READ_ATTEMPTS - 1,
    };
    let back = Log::recover(&mut disk, DIR, LogConfig::default(), 0, 0).unwrap();
    assert_eq!(back.log.log_end_offset(), 4);
    disk.bad_reads = READ_ATTEMPTS;
    assert!(Log::recover(&mut disk, DIR, LogConfig::default(), 0, 0).is_err());
}
