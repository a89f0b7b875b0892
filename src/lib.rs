//! faultline: a deterministic simulation testbed for ZooKeeper-style ZAB ensembles and
//! Kafka-style replicated partitions.
//!
//! Layering (dependencies point downwards only; `tests/tidy.rs` enforces it):
//! `cli -> campaign -> cluster -> {zab, kafka, example} -> node <- sim`,
//! `cluster -> sim`, `report -> check`, `scenario -> sim`, `check -> nothing`.

pub mod check;
pub mod node;
pub mod zab;
