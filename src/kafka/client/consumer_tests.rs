//! The consumer driven by a fake broker: hand-made answers to its requests.

use super::*;
use crate::kafka::client::producer::tests::{metadata, setup, tp};
use crate::kafka::client::testkit::{Net, Sent};
use crate::kafka::config::{ConsumerConfig, ProducerConfig};
use crate::kafka::log::batch::{Batch, ProducerStamp, Record};

fn net() -> Net<Consumer> {
    let mut s = (*setup(ProducerConfig::default())).clone();
    s.consumer = ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        ..ConsumerConfig::default()
    };
    Net::new(Consumer::new(0, Rc::new(s)), NodeId(7))
}

/// A fake broker: metadata (leader, epoch), ListOffsets at offset 0; returns the rest.
fn serve(net: &mut Net<Consumer>, leader: u32, epoch: u32) -> Vec<Sent> {
    let mut rest = Vec::new();
    for _ in 0..4 {
        net.accept_all();
        for r in net.take() {
            match &r.body {
                Request::Metadata { .. } => net.respond(&r, metadata(leader, epoch)),
                Request::ListOffsets { .. } => {
                    let partitions = vec![ListOffsetsPartitionResponse {
                        tp: tp(),
                        error: ErrorCode::None,
                        offset: 0,
                        leader_epoch: Some(epoch),
                    }];
                    net.respond(&r, Response::ListOffsets { partitions });
                }
                _ => rest.push(r),
            }
        }
    }
    rest
}

fn batch(base: u64, epoch: u32, values: &[u64]) -> Batch {
    Batch {
        base_offset: base,
        leader_epoch: epoch,
        producer: ProducerStamp::NONE,
        records: values
            .iter()
            .map(|v| Record { key: 0, value: *v })
            .collect(),
    }
}

fn fetched(error: ErrorCode, batches: Vec<Batch>) -> Response {
    Response::Fetch {
        error: ErrorCode::None,
        partitions: vec![FetchPartitionResponse {
            tp: tp(),
            error,
            high_watermark: 10,
            log_start_offset: 0,
            diverging_epoch: None,
            batches,
        }],
    }
}

fn fetch_of(r: &Sent) -> &FetchPartition {
    match &r.body {
        Request::Fetch { partitions, .. } => &partitions[0],
        other => panic!("not a fetch: {other:?}"),
    }
}

fn polls(c: &Consumer) -> Vec<KafkaOutcome> {
    c.history()
        .iter()
        .filter_map(|r| match r {
            KafkaRecord::Complete { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
        .collect()
}

/// Polls until the consumer sends a fetch, serving metadata and resets on the way.
fn next_fetch(net: &mut Net<Consumer>, leader: u32, epoch: u32) -> Sent {
    for _ in 0..20 {
        net.advance(100_000_000);
        if let Some(f) = serve(net, leader, epoch)
            .into_iter()
            .find(|r| matches!(r.body, Request::Fetch { .. }))
        {
            return f;
        }
    }
    panic!("no fetch");
}

/// The position starts at the earliest offset; a fetch carries the current leader epoch;
/// records before the position are skipped and the position moves past the last one.
#[test]
fn consumer_resets_by_policy_and_reads_in_order_from_its_position() {
    let mut net = net();
    let f = next_fetch(&mut net, 1, 0);
    assert_eq!(f.peer, NodeId(4), "from the leader");
    assert_eq!(fetch_of(&f).fetch_offset, 0);
    assert_eq!(fetch_of(&f).current_leader_epoch, Some(0));
    net.respond(
        &f,
        fetched(
            ErrorCode::None,
            vec![batch(0, 0, &[10, 11]), batch(2, 0, &[12])],
        ),
    );
    let want = vec![(0, 10), (1, 11), (2, 12)];
    assert_eq!(
        polls(&net.node),
        vec![KafkaOutcome::Polled { records: want }]
    );
    let f = next_fetch(&mut net, 1, 0);
    assert_eq!(fetch_of(&f).fetch_offset, 3);
    // A batch that starts before the position: only the new records are consumed.
    net.respond(&f, fetched(ErrorCode::None, vec![batch(2, 0, &[12, 13])]));
    assert_eq!(
        polls(&net.node)[1],
        KafkaOutcome::Polled {
            records: vec![(3, 13)]
        }
    );
}

/// KIP-320: a fenced fetch refreshes metadata; the new leader epoch makes the consumer
/// validate its position; an end offset below it is a truncation and the position moves
/// back to it (recorded).
#[test]
fn a_leader_change_validates_the_position_and_detects_truncation() {
    let mut net = net();
    let f = next_fetch(&mut net, 1, 0);
    net.respond(
        &f,
        fetched(ErrorCode::None, vec![batch(0, 0, &[10, 11, 12])]),
    );
    let f = next_fetch(&mut net, 1, 0);
    net.respond(&f, fetched(ErrorCode::FencedLeaderEpoch, vec![]));
    assert!(matches!(polls(&net.node)[1], KafkaOutcome::Fail { .. }));
    let mut validation = None;
    for _ in 0..10 {
        net.advance(100_000_000);
        validation = serve(&mut net, 2, 1)
            .into_iter()
            .find(|r| matches!(r.body, Request::OffsetsForLeaderEpoch { .. }));
        if validation.is_some() {
            break;
        }
    }
    let v = validation.expect("a validation");
    assert_eq!(v.peer, NodeId(5), "asked of the new leader");
    let Request::OffsetsForLeaderEpoch { partitions, .. } = &v.body else {
        unreachable!()
    };
    assert_eq!(
        (
            partitions[0].current_leader_epoch,
            partitions[0].leader_epoch
        ),
        (Some(1), 0)
    );
    let end = Some(EpochEndOffset {
        epoch: 0,
        end_offset: 2,
    });
    let partitions = vec![OffsetForLeaderPartitionResponse {
        tp: tp(),
        error: ErrorCode::None,
        end,
    }];
    net.respond(&v, Response::OffsetsForLeaderEpoch { partitions });
    assert_eq!(net.node.stats().truncations, 1);
    assert!(net.node.history().iter().any(|r| matches!(
        r,
        KafkaRecord::Position {
            offset: 2,
            reason: PositionReason::Truncation,
            ..
        }
    )));
    let f = next_fetch(&mut net, 2, 1);
    assert_eq!(
        (fetch_of(&f).fetch_offset, fetch_of(&f).current_leader_epoch),
        (2, Some(1))
    );
}

/// A validation whose end offset is at or past the position keeps it.
#[test]
fn a_validation_without_truncation_keeps_the_position() {
    let mut net = net();
    let f = next_fetch(&mut net, 1, 0);
    net.respond(&f, fetched(ErrorCode::None, vec![batch(0, 0, &[10, 11])]));
    let f = next_fetch(&mut net, 1, 0);
    net.respond(&f, fetched(ErrorCode::NotLeaderOrFollower, vec![]));
    let mut validation = None;
    for _ in 0..10 {
        net.advance(100_000_000);
        validation = serve(&mut net, 2, 1)
            .into_iter()
            .find(|r| matches!(r.body, Request::OffsetsForLeaderEpoch { .. }));
        if validation.is_some() {
            break;
        }
    }
    let v = validation.expect("a validation");
    let end = Some(EpochEndOffset {
        epoch: 0,
        end_offset: 5,
    });
    let partitions = vec![OffsetForLeaderPartitionResponse {
        tp: tp(),
        error: ErrorCode::None,
        end,
    }];
    net.respond(&v, Response::OffsetsForLeaderEpoch { partitions });
    assert_eq!(net.node.stats().truncations, 0);
    let f = next_fetch(&mut net, 2, 1);
    assert_eq!(fetch_of(&f).fetch_offset, 2);
}

/// A fetch whose answer is lost fails its poll and leaves the position where it was.
#[test]
fn a_lost_fetch_fails_the_poll_and_keeps_the_position() {
    let mut net = net();
    let f = next_fetch(&mut net, 1, 0);
    net.break_link(NodeId(4));
    assert!(matches!(polls(&net.node)[0], KafkaOutcome::Fail { .. }));
    let f2 = next_fetch(&mut net, 1, 0);
    assert_eq!(fetch_of(&f2).fetch_offset, fetch_of(&f).fetch_offset);
}
