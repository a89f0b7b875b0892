//! Example protocols, small enough to test the kernel end to end before ZAB and Kafka.
//!
//! May depend on: node.

pub mod counter;
