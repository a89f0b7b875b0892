//! A broker's offset checkpoint files, one per log directory (Kafka's `OffsetCheckpointFile`):
//! `recovery-point-offset-checkpoint` (below which each log is fsynced),
//! `replication-offset-checkpoint` (each partition's high watermark) and
//! `log-start-offset-checkpoint`.
//!
//! Format: Kafka's text (`0`, the entry count, one `topic partition offset` line per entry),
//! followed by a `crc <hex>` line over the text because the simulated disk corrupts reads.
//! A file is rewritten whole (the caller fsyncs it when it wants it durable). A file that is
//! absent, or never reads back valid, counts as empty: every offset falls back to 0, which is
//! always safe for these three (recovery validates from 0, the HW restarts low and is learnt
//! again from the leader).
//!
//! May depend on: `node` (DiskIo, checksum), `kafka::msg` (TopicPartition).

use super::msg::TopicPartition;
use crate::node::checksum::crc32c;
use crate::node::DiskIo;
use std::collections::BTreeMap;

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const HIGH_WATERMARK_FILE: &str = "replication-offset-checkpoint";
pub const LOG_START_FILE: &str = "log-start-offset-checkpoint";
const READ_ATTEMPTS: usize = 5;

/// Writes `offsets` to `file` (page cache only).
pub fn write(disk: &mut dyn DiskIo, file: &str, offsets: &BTreeMap<TopicPartition, u64>) {
    let mut text = format!("0\n{}\n", offsets.len());
    for (tp, offset) in offsets {
        text.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, offset));
    }
    let crc = crc32c(text.as_bytes());
    text.push_str(&format!("crc {crc:08x}\n"));
    disk.write_all(file, text.as_bytes());
}

/// Reads `file`, retrying corrupted reads; empty if absent or never valid.
pub fn read(disk: &mut dyn DiskIo, file: &str) -> BTreeMap<TopicPartition, u64> {
    for _ in 0..READ_ATTEMPTS {
        let Some(bytes) = disk.read(file) else {
            return BTreeMap::new();
        };
        if let Some(offsets) = parse(&bytes) {
            return offsets;
        }
    }
    BTreeMap::new()
}

/// The entry lines of a checkpoint text (`0`, the count, the entries, `crc <hex>`), once
/// its checksum and version verify: (declared count, entry lines). Shared with the
/// leader-epoch checkpoint, which uses the same format.
pub(super) fn verified_entries(bytes: &[u8]) -> Option<(usize, std::str::Lines<'_>)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let body_end = text.trim_end_matches('\n').rfind('\n')? + 1;
    let (body, crc_line) = text.split_at(body_end);
    let crc = u32::from_str_radix(crc_line.trim_end().strip_prefix("crc ")?, 16).ok()?;
    if crc32c(body.as_bytes()) != crc {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != "0" {
        return None;
    }
    let count: usize = lines.next()?.parse().ok()?;
    Some((count, lines))
}

fn parse(bytes: &[u8]) -> Option<BTreeMap<TopicPartition, u64>> {
    let (count, lines) = verified_entries(bytes)?;
    let mut out = BTreeMap::new();
    for line in lines {
        let mut parts = line.split(' ');
        let topic = parts.next()?;
        let partition = parts.next()?.parse().ok()?;
        let offset = parts.next()?.parse().ok()?;
        out.insert(TopicPartition::new(topic, partition), offset);
    }
    (out.len() == count).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::MemDisk;

    #[test]
    fn round_trips_and_falls_back_to_empty_when_damaged() {
        let mut disk = MemDisk::default();
        let offsets: BTreeMap<_, _> = [
            (TopicPartition::new("orders", 0), 17),
            (TopicPartition::new("orders", 1), 0),
        ]
        .into();
        write(&mut disk, HIGH_WATERMARK_FILE, &offsets);
        let text = String::from_utf8(disk.files[HIGH_WATERMARK_FILE].clone()).unwrap();
        assert!(
            text.starts_with("0\n2\norders 0 17\norders 1 0\ncrc "),
            "{text}"
        );
        assert_eq!(read(&mut disk, HIGH_WATERMARK_FILE), offsets);
        disk.files.get_mut(HIGH_WATERMARK_FILE).unwrap()[12] ^= 0x02;
        assert!(read(&mut disk, HIGH_WATERMARK_FILE).is_empty());
        assert!(read(&mut disk, RECOVERY_POINT_FILE).is_empty());
    }
}
