//! Kafka-style replicated partitions, as sans-IO state machines (reference part B).
//!
//! This module holds the pieces a broker is built from, each a pure state machine over the
//! node's virtual disk that knows nothing of the scheduler: the partition log in segment
//! files ([`log`]), the leader-epoch cache ([`epoch_cache`]), the idempotent producer state
//! ([`producer_state`]), the three kept together ([`partition_log`]), the offset checkpoint
//! files ([`checkpoint`]), the per-partition replica state machine with its leader and
//! follower sides ([`replica`]), the settings under Kafka's names ([`config`]) and the
//! request/response messages ([`msg`]).
//!
//! May depend on: `node` only.

pub mod checkpoint;
pub mod config;
pub mod epoch_cache;
pub mod log;
pub mod msg;
pub mod partition_log;
pub mod producer_state;
pub mod replica;
