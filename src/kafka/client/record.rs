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

/// Why a consumer's position of a partition was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PositionReason {
    /// `auto.offset.reset` (no position yet, or the old one was out of range).
    Reset,
    /// KIP-320 validation found the log truncated below the position (the leader's end
    /// offset of the position's epoch): the consumer moves back to it.
    Truncation,
}

/// One mark of a client's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaRecord {
    /// A consumer's position of `tp` was set to `offset` (not an operation: a fact the
    /// checks need, e.g. records below a starting position are not expected to be read).
    Position {
        at_ns: u64,
        tp: TopicPartition,
        offset: u64,
        reason: PositionReason,
    },
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
