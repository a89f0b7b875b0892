//! Kafka's workload clients: producers (`producer`) and consumers in assign mode
//! (`consumer`), each a node that speaks only Kafka's protocol to the brokers, and the
//! history both record for the end-of-run checks (`record`).
//!
//! May depend on: `node`, `kafka`.

pub mod consumer;
pub mod producer;
pub mod record;

use super::config::{ConsumerConfig, ProducerConfig, TopicSpec};
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
