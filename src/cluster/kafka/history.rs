//! Kafka client records -> `check::History`, and the end-of-run checks (skeleton).
//!
//! Depends on: kafka, check, sim, cluster.
