//! The producer driven by a fake broker: hand-made answers to its requests.

use std::rc::Rc;

use super::*;
use crate::kafka::client::testkit::{Net, Sent};
use crate::kafka::config::{ConsumerConfig, ProducerConfig, TopicSpec};
use crate::kafka::msg::{PartitionMetadata, ProducePartitionResponse};

pub(crate) fn setup(producer: ProducerConfig) -> Rc<ClientSetup> {
    Rc::new(ClientSetup {
        brokers: vec![NodeId(3), NodeId(4), NodeId(5)],
        topics: vec![TopicSpec {
            name: "t".into(),
            partitions: 1,
            replication_factor: 3,
        }],
        producer,
        consumer: ConsumerConfig::default(),
        produce_rate: 10,
        keys: 4,
        poll_rate: 10,
    })
}

pub(crate) fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

pub(crate) fn metadata(leader: u32, epoch: u32) -> Response {
    Response::Metadata {
        brokers: vec![0, 1, 2],
        controller_id: Some(0),
        partitions: vec![PartitionMetadata {
            tp: tp(),
            error: ErrorCode::None,
            leader: Some(leader),
            leader_epoch: epoch,
            replicas: vec![0, 1, 2],
            isr: vec![0, 1, 2],
            offline_replicas: vec![],
        }],
    }
}

fn produced(error: ErrorCode, base: Option<u64>) -> Response {
    Response::Produce {
        partitions: vec![ProducePartitionResponse {
            tp: tp(),
            error,
            base_offset: base,
            log_start_offset: 0,
        }],
    }
}

/// A fake broker: answers metadata (leader `leader`, epoch `epoch`) and InitProducerId
/// (producer id `pid`), and returns the Produce requests for the test to answer.
fn serve(net: &mut Net<Producer>, leader: u32, epoch: u32, pid: i64) -> Vec<Sent> {
    let mut produce = Vec::new();
    for _ in 0..4 {
        net.accept_all();
        for r in net.take() {
            match &r.body {
                Request::Metadata { .. } => net.respond(&r, metadata(leader, epoch)),
                Request::InitProducerId => net.respond(
                    &r,
                    Response::InitProducerId {
                        error: ErrorCode::None,
                        producer_id: pid,
                        producer_epoch: 0,
                    },
                ),
                Request::Produce { .. } => produce.push(r),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    produce
}

fn stamp_of(r: &Sent) -> ProducerStamp {
    match &r.body {
        Request::Produce { partitions, .. } => partitions[0].producer,
        other => panic!("not a produce: {other:?}"),
    }
}

fn outcomes(p: &Producer) -> Vec<KafkaOutcome> {
    p.history()
        .iter()
        .filter_map(|r| match r {
            KafkaRecord::Complete { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
        .collect()
}

fn net(cfg: ProducerConfig) -> Net<Producer> {
    Net::new(Producer::new(0, setup(cfg)), NodeId(6))
}

/// The first send: InitProducerId and metadata from a bootstrap broker, then a Produce to
/// the leader with sequence 0, and the acknowledged offset in the history.
#[test]
fn producer_sends_to_the_leader_with_a_sequence_and_records_the_offset() {
    let mut net = net(ProducerConfig::default());
    net.advance(150_000_000);
    let produce = serve(&mut net, 1, 0, 42);
    assert_eq!(produce.len(), 1);
    assert_eq!(produce[0].peer, NodeId(4), "broker 1 leads");
    let stamp = stamp_of(&produce[0]);
    assert_eq!((stamp.producer_id, stamp.base_sequence), (42, 0));
    net.respond(&produce[0], produced(ErrorCode::None, Some(7)));
    assert_eq!(outcomes(&net.node), vec![KafkaOutcome::Sent { offset: 7 }]);
    let KafkaRecord::Invoke {
        op: KafkaOp::Send { value, .. },
        ..
    } = &net.node.history()[0]
    else {
        panic!("an invoke first")
    };
    assert_eq!(
        *value,
        1 << 40 | 1,
        "values are unique per producer and send"
    );
    assert_eq!(net.node.open_sends(), 0);
}

/// NOT_LEADER_OR_FOLLOWER: metadata is refreshed and the same batch (same sequence) goes
/// to the new leader after the backoff.
#[test]
fn not_leader_refreshes_metadata_and_retries_the_same_sequence_at_the_new_leader() {
    let mut net = net(ProducerConfig::default());
    net.advance(150_000_000);
    let produce = serve(&mut net, 1, 0, 42);
    net.respond(&produce[0], produced(ErrorCode::NotLeaderOrFollower, None));
    assert!(outcomes(&net.node).is_empty(), "retried, not failed");
    net.advance(120_000_000);
    // The retry may beat the metadata answer to the old leader, as in the Java client.
    for r in serve(&mut net, 2, 1, 42) {
        net.respond(&r, produced(ErrorCode::NotLeaderOrFollower, None));
    }
    net.advance(120_000_000);
    let produce: Vec<Sent> = serve(&mut net, 2, 1, 42)
        .into_iter()
        .filter(|r| r.peer == NodeId(5))
        .collect();
    assert!(!produce.is_empty(), "the retry goes to broker 2");
    assert_eq!(stamp_of(&produce[0]).base_sequence, 0);
    net.respond(&produce[0], produced(ErrorCode::None, Some(3)));
    assert_eq!(outcomes(&net.node)[0], KafkaOutcome::Sent { offset: 3 });
    assert!(net.node.stats().retries >= 1);
}

/// A lost answer (broken connection) may hide an append: the retry keeps its sequence so
/// the broker can answer it as a duplicate with the original offset.
#[test]
fn a_lost_answer_is_retried_with_the_same_sequence() {
    let mut net = net(ProducerConfig::default());
    net.advance(150_000_000);
    let first = serve(&mut net, 1, 0, 42);
    net.break_link(NodeId(4));
    net.advance(200_000_000);
    let retry: Vec<Sent> = serve(&mut net, 1, 0, 42)
        .into_iter()
        .filter(|r| stamp_of(r) == stamp_of(&first[0]))
        .collect();
    assert_eq!(retry.len(), 1, "the batch goes again, under its sequence");
    net.respond(&retry[0], produced(ErrorCode::None, Some(0)));
    assert_eq!(outcomes(&net.node), vec![KafkaOutcome::Sent { offset: 0 }]);
}

/// OUT_OF_ORDER_SEQUENCE_NUMBER on the batch next in sequence: the broker lost data; the
/// batch fails (nothing appended) and the producer takes a new producer id.
#[test]
fn out_of_order_on_the_next_sequence_fails_the_batch_and_resets_the_producer_id() {
    let mut net = net(ProducerConfig::default());
    net.advance(150_000_000);
    let produce = serve(&mut net, 1, 0, 42);
    net.respond(
        &produce[0],
        produced(ErrorCode::OutOfOrderSequenceNumber, None),
    );
    assert!(matches!(outcomes(&net.node)[0], KafkaOutcome::Fail { .. }));
    assert_eq!(net.node.producer_id_resets(), 1);
    net.advance(100_000_000);
    let produce = serve(&mut net, 1, 0, 43);
    let stamp = stamp_of(&produce[0]);
    assert_eq!(
        (stamp.producer_id, stamp.base_sequence),
        (43, 0),
        "sequences restart"
    );
}

/// After a new producer id, a new batch waits until every batch stamped with the old one
/// has completed (KIP-360's drain rule): stamped from sequence 0 under the new id it
/// would otherwise be appended before them (kafka-nemesis seed 100: nonmonotonic-send).
#[test]
fn new_batches_wait_for_the_old_producer_ids_batches_after_a_reset() {
    let mut net = net(ProducerConfig::default());
    net.advance(150_000_000);
    let a = serve(&mut net, 1, 0, 42);
    net.respond(&a[0], produced(ErrorCode::None, Some(0)));
    net.advance(200_000_000);
    let b = serve(&mut net, 1, 0, 42);
    assert!(b.len() >= 2, "several batches in flight: {b:?}");
    // b[0] was the next sequence: the broker lost acknowledged data, a new producer id.
    net.respond(&b[0], produced(ErrorCode::OutOfOrderSequenceNumber, None));
    assert_eq!(net.node.producer_id_resets(), 1);
    net.advance(200_000_000);
    let d = serve(&mut net, 1, 0, 43);
    assert!(
        d.is_empty(),
        "batches of producer id 42 are in flight: {d:?}"
    );
    // The old batches land (the broker still knew producer id 42 up to them).
    for (i, r) in b[1..].iter().enumerate() {
        net.respond(r, produced(ErrorCode::None, Some(5 + i as u64)));
    }
    net.advance(10_000_000);
    let d = serve(&mut net, 1, 0, 43);
    let stamp = stamp_of(&d[0]);
    assert_eq!((stamp.producer_id, stamp.base_sequence), (43, 0));
}

/// A second batch waits while the first is retried, then follows it in sequence order.
#[test]
fn retries_go_out_in_sequence_order() {
    let mut net = net(ProducerConfig::default());
    net.advance(150_000_000);
    let a = serve(&mut net, 1, 0, 42);
    net.advance(200_000_000);
    let b = serve(&mut net, 1, 0, 42);
    assert_eq!(stamp_of(&b[0]).base_sequence, 1);
    net.respond(&a[0], produced(ErrorCode::NotEnoughReplicas, None));
    net.respond(&b[0], produced(ErrorCode::OutOfOrderSequenceNumber, None));
    assert!(
        outcomes(&net.node).is_empty(),
        "b is not next in sequence: retried"
    );
    net.advance(110_000_000);
    let retry = serve(&mut net, 1, 0, 42);
    let seqs: Vec<i32> = retry.iter().map(|r| stamp_of(r).base_sequence).collect();
    assert_eq!(seqs, vec![0], "only the first in flight goes");
    net.respond(&retry[0], produced(ErrorCode::None, Some(0)));
    net.advance(10_000_000);
    let retry = serve(&mut net, 1, 0, 42);
    assert_eq!(stamp_of(&retry[0]).base_sequence, 1);
}

/// Without idempotence and with retries=0: a definite rejection fails the record, an
/// answer that may hide an append leaves it unknown.
#[test]
fn definite_errors_fail_and_ambiguous_ones_are_unknown() {
    let cfg = ProducerConfig {
        acks: Acks::Leader,
        enable_idempotence: false,
        retries: 0,
        ..ProducerConfig::default()
    };
    let mut net = net(cfg);
    net.advance(150_000_000);
    let a = serve(&mut net, 1, 0, 42);
    assert_eq!(stamp_of(&a[0]), ProducerStamp::NONE);
    net.respond(&a[0], produced(ErrorCode::NotEnoughReplicas, None));
    net.advance(200_000_000);
    let b = serve(&mut net, 1, 0, 42);
    net.respond(
        &b[0],
        produced(ErrorCode::NotEnoughReplicasAfterAppend, None),
    );
    // A delayed produce whose leader moved is answered NOT_LEADER after the append.
    net.advance(200_000_000);
    let c = serve(&mut net, 1, 0, 42);
    net.respond(&c[0], produced(ErrorCode::NotLeaderOrFollower, None));
    let got = outcomes(&net.node);
    assert!(matches!(got[0], KafkaOutcome::Fail { .. }), "{got:?}");
    assert!(matches!(got[1], KafkaOutcome::Info { .. }), "{got:?}");
    assert!(matches!(got[2], KafkaOutcome::Info { .. }), "{got:?}");
}

/// acks=0: the record completes as unknown as soon as it is written.
#[test]
fn acks_zero_completes_unknown_without_an_answer() {
    let cfg = ProducerConfig {
        acks: Acks::None,
        enable_idempotence: false,
        ..ProducerConfig::default()
    };
    let mut net = net(cfg);
    net.advance(150_000_000);
    let a = serve(&mut net, 1, 0, 42);
    assert_eq!(a.len(), 1);
    assert!(matches!(outcomes(&net.node)[0], KafkaOutcome::Info { .. }));
}

/// `request.timeout.ms` closes the connection; `delivery.timeout.ms` then ends the send
/// as unknown (its first attempt may have been appended).
#[test]
fn request_timeout_closes_the_connection_and_delivery_timeout_ends_as_unknown() {
    let cfg = ProducerConfig {
        request_timeout_ms: 1_000,
        delivery_timeout_ms: 3_000,
        ..ProducerConfig::default()
    };
    let mut net = net(cfg);
    net.advance(150_000_000);
    assert_eq!(serve(&mut net, 1, 0, 42).len(), 1);
    net.advance(1_100_000_000);
    assert_eq!(net.closed.len(), 1, "the timed-out connection is closed");
    net.refuse(NodeId(4));
    net.advance(3_000_000_000);
    let got = outcomes(&net.node);
    assert!(matches!(got[0], KafkaOutcome::Info { .. }), "{got:?}");
}
