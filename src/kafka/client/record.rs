//! The history a Kafka client records: each operation's invocation and completion, with
//! the virtual times, for the end-of-run checkers (`check::kafka_log`) and exports.
//!
//! May depend on: `kafka::msg`.

use super::super::msg::TopicPartition;

/// An operation as invoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaOp {
    /// One record sent to a partition (the partitioner already chose it).
    Send {
        tp: TopicPartition,
        key: u64,
        value: u64,
    },
    /// One poll of an assigned partition.
    Poll { tp: TopicPartition },
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaOutcome {
    /// Acknowledged at this offset (acks=0 sends never are: they end as `Info`).
    Sent { offset: u64 },
    /// Records returned, as (offset, value), in offset order.
    Polled { records: Vec<(u64, u64)> },
    /// Certainly not applied (e.g. a non-retriable error with nothing appended).
    Fail { error: String },
    /// Outcome unknown (timeout, delivery timeout after a send in flight, acks=0).
    Info { error: String },
}

/// One mark of a client's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaRecord {
    Invoke {
        op_id: u64,
        at_ns: u64,
        op: KafkaOp,
    },
    Complete {
        op_id: u64,
        at_ns: u64,
        outcome: KafkaOutcome,
    },
}
