//! Kafka's workload clients: producers (`producer`, with the record accumulator and the
//! idempotent producer's sequence bookkeeping in `accumulator`) and consumers in assign mode
//! (`consumer`), each a node that speaks only Kafka's protocol (`KafkaMsg` inside `WireMsg`)
//! to the brokers, and the history both record for the end-of-run checks (`record`).
//! `links` is their NetworkClient (one connection per broker, correlation ids, request
//! timeouts) and `metadata` their metadata cache (leaders with leader epochs, KIP-320).
//!
//! Both follow the Java client of Kafka 2.x-3.x (Sender, RecordAccumulator,
//! TransactionManager's idempotent half, Fetcher and SubscriptionState); the module docs
//! of each say where they deviate and why.
//!
//! May depend on: `node`, `kafka`.

pub mod accumulator;
pub mod consumer;
pub mod links;
pub mod metadata;
pub mod producer;
pub mod record;
#[cfg(test)]
mod testkit;

use rand::Rng;

use super::config::{ConsumerConfig, ProducerConfig, TopicSpec};
use super::msg::{BrokerId, TopicPartition};
use crate::node::NodeId;

/// What every client of a world knows from the scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSetup {
    /// The node id of broker `i` at index `i` (the bootstrap servers).
    pub brokers: Vec<NodeId>,
    pub topics: Vec<TopicSpec>,
    pub producer: ProducerConfig,
    pub consumer: ConsumerConfig,
    /// Sends per second of each producer.
    pub produce_rate: u32,
    /// Distinct record keys a producer draws from (the partitioner hashes the key).
    pub keys: u32,
    /// Polls per second of each consumer.
    pub poll_rate: u32,
}

impl ClientSetup {
    /// The node of broker `id`, if the world has it.
    pub fn broker_node(&self, id: BrokerId) -> Option<NodeId> {
        self.brokers.get(id as usize).copied()
    }
    /// The broker id of a node (its index among the brokers).
    pub fn broker_id(&self, node: NodeId) -> Option<BrokerId> {
        self.brokers
            .iter()
            .position(|n| *n == node)
            .map(|i| i as BrokerId)
    }
    /// Every partition of every topic, in topic then partition order.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.topics
            .iter()
            .flat_map(|t| (0..t.partitions).map(|p| TopicPartition::new(&t.name, p)))
            .collect()
    }
}

/// Kafka's murmur2 (the 32-bit MurmurHash2 with Kafka's seed), over the key's bytes.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// The default partitioner for a keyed record: `toPositive(murmur2(key)) % partitions`.
/// The key is serialised as its 8 little-endian bytes.
pub fn partition_for_key(key: u64, partitions: u32) -> u32 {
    (murmur2(&key.to_le_bytes()) & 0x7fff_ffff) % partitions.max(1)
}

/// The gap before the next operation at `per_s` on average: uniform in [mean/2, 3 mean/2],
/// never zero. (The cluster's pacing does the same; `kafka` may not depend on `cluster`.)
pub fn interval_ns(rng: &mut impl Rng, per_s: u32) -> u64 {
    let mean = 1_000_000_000 / u64::from(per_s.max(1));
    rng.gen_range(mean / 2..=mean + mean / 2).max(1)
}

pub(crate) const NS_PER_MS: u64 = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // Values from Kafka's UtilsTest.testMurmur2 (the Java test's expected hashes).
        let cases: [(&[u8], i32); 3] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
        ];
        for (data, want) in cases {
            assert_eq!(
                murmur2(data) as i32,
                want,
                "{:?}",
                std::str::from_utf8(data)
            );
        }
        for key in 0..100 {
            assert!(partition_for_key(key, 6) < 6);
        }
    }
}
