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
//! On top of them, the nodes of a Kafka world: the broker ([`broker`]) embedding the
//! ZooKeeper client and hosting the controller ([`controller`]), whose znodes are described
//! in [`zkdata`], and the workload clients ([`client`]); [`wire`] is the world's message.
//!
//! May depend on: `node`; the broker, controller and wire also on `zab::client` and
//! `zab::msg` (a broker is a ZooKeeper client).

pub mod broker;
pub mod checkpoint;
pub mod client;
pub mod config;
pub mod controller;
pub mod epoch_cache;
pub mod log;
pub mod msg;
pub mod partition_log;
pub mod producer_state;
pub mod replica;
pub mod stamp;
pub mod wire;
pub mod zkdata;
