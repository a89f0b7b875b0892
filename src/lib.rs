//! faultline: a deterministic simulation testbed for ZooKeeper-style ZAB ensembles and
//! Kafka-style replicated partitions.
//!
//! Layering (dependencies point downwards only; `tests/tidy.rs` enforces it):
//! `cli -> campaign -> cluster -> {zab, kafka, example} -> node <- sim`,
//! `cluster -> sim`, `report -> check`, `scenario -> sim`, `check -> nothing`.

pub mod campaign;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod example;
pub mod kafka;
pub mod node;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod zab;
