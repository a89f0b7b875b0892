//! The Kafka system: a ZooKeeper ensemble (`zk0..`, the same ZAB servers with their own
//! online invariants), brokers (`kafka0..`) and workload clients (producers `p0..`,
//! consumers `c0..`) in one world (skeleton: the wiring comes with issue 8).
//!
//! - `monitor`: the Kafka invariants judged online after every event (reference B.9);
//! - `history`: client records -> `check::History`, and the end-of-run checks;
//! - `liveness`: the healed phase's goals.
//!
//! Depends on: kafka, zab, node, sim, scenario, check, cluster.

pub mod history;
pub mod liveness;
pub mod monitor;

use super::zk::ZabHost;
use crate::kafka::broker::Broker;
use crate::kafka::client::consumer::Consumer;
use crate::kafka::client::producer::Producer;

/// A node type of a world that holds Kafka brokers and clients (beside ZooKeeper servers):
/// lets the monitor, the history checks and the liveness goals find them.
pub trait KafkaHost: ZabHost {
    fn broker(&self) -> Option<&Broker>;
    fn producer(&self) -> Option<&Producer>;
    fn consumer(&self) -> Option<&Consumer>;
}
