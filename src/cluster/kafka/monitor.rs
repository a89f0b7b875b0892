//! The Kafka invariants of reference part B.9 that can be judged online, after every
//! delivered event (skeleton).
//!
//! Depends on: kafka, sim, cluster.
