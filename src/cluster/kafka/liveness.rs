//! The Kafka system's goals in the healed phase (skeleton).
//!
//! Depends on: kafka, sim, cluster.
