//! A record batch, the unit a Kafka log stores, replicates and checksums (message format v2,
//! KIP-98 / KIP-101), and its on-disk frame.
//!
//! A batch holds one or more records at consecutive offsets, all appended by one leader in one
//! leader epoch, and (for an idempotent producer) stamped with the producer id, producer epoch
//! and the sequence number of its first record. A record here is a key and a value id: the
//! workload only needs to recognise values, not carry payloads.
//!
//! Frame on disk: `[u32 len][u32 crc32c][payload]`, payload = base offset, leader epoch,
//! producer id, producer epoch, base sequence, record count, records. Kafka's v2 format leaves
//! the partition leader epoch outside the CRC so a leader can stamp it in place; here nothing
//! rewrites a batch after it is framed, and the simulated disk flips random bits on reads, so
//! the CRC covers every field, the epoch included.
//!
//! May depend on: `node::checksum`.

use std::rc::Rc;

use crate::node::checksum::crc32c;
use serde::{Deserialize, Serialize};

/// Kafka's `RecordBatch.NO_PRODUCER_ID`: the batch is not from an idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's `RecordBatch.NO_PRODUCER_EPOCH`.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka's `RecordBatch.NO_SEQUENCE`.
pub const NO_SEQUENCE: i32 = -1;
/// Bytes of the frame header (`len`, `crc`).
pub const FRAME_HEADER: usize = 8;
const PAYLOAD_FIXED: usize = 8 + 4 + 8 + 2 + 4 + 4;
const RECORD_BYTES: usize = 16;

/// One record: a key (it picks the partition) and a value id (unique per send in the workload).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Record {
    pub key: u64,
    pub value: u64,
}

/// The producer fields of a batch (all "none" for a non-idempotent producer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProducerStamp {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerStamp {
    pub const NONE: ProducerStamp = ProducerStamp {
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        base_sequence: NO_SEQUENCE,
    };
    pub fn is_idempotent(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }
}

/// A record batch at its place in a log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Batch {
    pub base_offset: u64,
    /// The leader epoch in which the leader appended the batch (KIP-101).
    pub leader_epoch: u32,
    pub producer: ProducerStamp,
    /// Never empty. Shared: a batch is written once and then only read, by every fetch
    /// that returns it and every replica that copies it, so a copy of a batch shares its
    /// records instead of copying them.
    pub records: Rc<[Record]>,
}

impl Batch {
    /// Offset of the last record.
    pub fn last_offset(&self) -> u64 {
        assert!(
            !self.records.is_empty(),
            "a batch holds at least one record"
        );
        self.base_offset + self.records.len() as u64 - 1
    }
    /// Offset after the last record.
    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }
    /// Sequence number of the last record (Kafka wraps at i32::MAX; the workload never
    /// gets near it, so this does not).
    pub fn last_sequence(&self) -> i32 {
        if self.producer.base_sequence == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        self.producer.base_sequence + self.records.len() as i32 - 1
    }
    /// Size of the batch's frame on disk, in bytes.
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER + PAYLOAD_FIXED + RECORD_BYTES * self.records.len()
    }

    /// The batch framed for the disk: header, CRC-32C, payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.frame_len());
        out.extend_from_slice(&[0u8; FRAME_HEADER]);
        out.extend_from_slice(&self.base_offset.to_le_bytes());
        out.extend_from_slice(&self.leader_epoch.to_le_bytes());
        out.extend_from_slice(&self.producer.producer_id.to_le_bytes());
        out.extend_from_slice(&self.producer.producer_epoch.to_le_bytes());
        out.extend_from_slice(&self.producer.base_sequence.to_le_bytes());
        out.extend_from_slice(&(self.records.len() as u32).to_le_bytes());
        for r in self.records.iter() {
            out.extend_from_slice(&r.key.to_le_bytes());
            out.extend_from_slice(&r.value.to_le_bytes());
        }
        let len = (out.len() - FRAME_HEADER) as u32;
        let crc = crc32c(&out[FRAME_HEADER..]);
        out[..4].copy_from_slice(&len.to_le_bytes());
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

/// What reading one frame at a position found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A valid batch and the frame's length in bytes.
    Batch(Batch, usize),
    /// The bytes end before the frame does (a torn append, or the end of the file).
    Short,
    /// The frame is complete but its CRC or its content is wrong.
    Bad,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the frame that starts at `bytes[0]`.
pub fn decode_frame(bytes: &[u8]) -> Frame {
    if bytes.len() < FRAME_HEADER {
        return Frame::Short;
    }
    let len = le_u32(bytes, 0) as usize;
    let Some(payload) = bytes.get(FRAME_HEADER..FRAME_HEADER.saturating_add(len)) else {
        return Frame::Short;
    };
    if crc32c(payload) != le_u32(bytes, 4) || len < PAYLOAD_FIXED {
        return Frame::Bad;
    }
    let count = le_u32(payload, 26) as usize;
    if count == 0 || PAYLOAD_FIXED + count * RECORD_BYTES != len {
        return Frame::Bad;
    }
    let records = (0..count)
        .map(|i| {
            let at = PAYLOAD_FIXED + i * RECORD_BYTES;
            Record {
                key: le_u64(payload, at),
                value: le_u64(payload, at + 8),
            }
        })
        .collect();
    let batch = Batch {
        base_offset: le_u64(payload, 0),
        leader_epoch: le_u32(payload, 8),
        producer: ProducerStamp {
            producer_id: le_u64(payload, 12) as i64,
            producer_epoch: i16::from_le_bytes([payload[20], payload[21]]),
            base_sequence: le_u32(payload, 22) as i32,
        },
        records,
    };
    Frame::Batch(batch, FRAME_HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn batch(base: u64, epoch: u32, n: u64) -> Batch {
        Batch {
            base_offset: base,
            leader_epoch: epoch,
            producer: ProducerStamp {
                producer_id: 7,
                producer_epoch: 2,
                base_sequence: 40,
            },
            records: (0..n)
                .map(|i| Record {
                    key: i,
                    value: base + i,
                })
                .collect(),
        }
    }

    #[test]
    fn frame_round_trips_every_field() {
        let b = batch(100, 3, 4);
        let bytes = b.encode();
        assert_eq!(bytes.len(), b.frame_len());
        assert_eq!(decode_frame(&bytes), Frame::Batch(b.clone(), bytes.len()));
        assert_eq!(b.last_offset(), 103);
        assert_eq!(b.last_sequence(), 43);
    }

    #[test]
    fn any_flipped_bit_is_caught_and_a_cut_frame_is_short() {
        let bytes = batch(5, 1, 2).encode();
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            // A flip in the length field may make the frame look longer than the bytes.
            let frame = decode_frame(&bad);
            assert!(
                frame == Frame::Bad || frame == Frame::Short,
                "bit {bit} went unnoticed"
            );
        }
        for cut in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..cut]), Frame::Short, "cut at {cut}");
        }
    }
}
