//! The end-of-run checks on hand-built histories and final logs: each check passes a good
//! history, fires on a bad one, and reports a loss the configuration permits as allowed.

use super::*;
use crate::kafka::config::ProducerConfig;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// A producer's records: each (value, outcome) sent in turn.
fn producer(sends: &[(u64, KafkaOutcome)]) -> Vec<KafkaRecord> {
    let mut out = Vec::new();
    for (i, (value, outcome)) in sends.iter().enumerate() {
        let op_id = i as u64 + 1;
        let at = op_id * 10;
        let op = KafkaOp::Send {
            tp: tp(),
            key: 0,
            value: *value,
        };
        out.push(KafkaRecord::Invoke {
            op_id,
            at_ns: at,
            op,
        });
        let outcome = outcome.clone();
        out.push(KafkaRecord::Complete {
            op_id,
            at_ns: at + 5,
            outcome,
        });
    }
    out
}

/// A consumer's records: a reset to `start`, then one poll per slice of (offset, value).
fn consumer(start: u64, polls: &[&[(u64, u64)]]) -> Vec<KafkaRecord> {
    let mut out = vec![KafkaRecord::Position {
        at_ns: 1,
        tp: tp(),
        offset: start,
        reason: PositionReason::Reset,
    }];
    for (i, records) in polls.iter().enumerate() {
        let op_id = i as u64 + 1;
        let at = 1_000 + op_id * 10;
        out.push(KafkaRecord::Invoke {
            op_id,
            at_ns: at,
            op: KafkaOp::Poll { tp: tp() },
        });
        let outcome = KafkaOutcome::Polled {
            records: records.to_vec(),
        };
        out.push(KafkaRecord::Complete {
            op_id,
            at_ns: at + 5,
            outcome,
        });
    }
    out
}

fn replica(broker: BrokerId, is_leader: bool, values: &[u64]) -> ReplicaEnd {
    ReplicaEnd {
        broker,
        tp: tp(),
        is_leader,
        log_start_offset: 0,
        records: values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, *v))
            .collect(),
    }
}

fn sent(offset: u64) -> KafkaOutcome {
    KafkaOutcome::Sent { offset }
}

fn run(
    p: &[KafkaRecord],
    c: &[KafkaRecord],
    finals: &[ReplicaEnd],
    allow: &Allowances,
) -> KafkaChecks {
    let clients = [
        ClientHistory {
            process: 0,
            node: NodeId(6),
            records: p,
        },
        ClientHistory {
            process: 1,
            node: NodeId(7),
            records: c,
        },
    ];
    check_run(99, &clients, finals, allow)
}

fn strict() -> Allowances {
    Allowances::from_producer(&ProducerConfig::default())
}

fn invariants(checks: &KafkaChecks) -> Vec<&str> {
    checks
        .violations
        .iter()
        .map(|v| v.invariant.as_str())
        .collect()
}

#[test]
fn a_clean_history_passes_every_check() {
    let p = producer(&[(100, sent(0)), (101, sent(1))]);
    let c = consumer(0, &[&[(0, 100)], &[(1, 101)]]);
    let finals = [
        replica(0, true, &[100, 101]),
        replica(1, false, &[100, 101]),
    ];
    let checks = run(&p, &c, &finals, &strict());
    assert!(checks.violations.is_empty(), "{:?}", checks.violations);
    assert!(checks.allowed.is_empty());
    assert_eq!(
        (checks.sends.ok, checks.polls, checks.records_read),
        (2, 2, 2)
    );
}

/// A send acknowledged at offset 0 that no poll returned, though polls read past it.
#[test]
fn kafka_log_fires_on_a_lost_write_unless_acks_1_permits_it() {
    let p = producer(&[(100, sent(0)), (101, sent(1))]);
    let c = consumer(0, &[&[(1, 101)]]);
    let finals = [replica(0, true, &[100, 101])];
    let checks = run(&p, &c, &finals, &strict());
    assert_eq!(invariants(&checks), vec!["kafka-log"]);
    assert!(
        checks.violations[0].message.starts_with("lost-write"),
        "{:?}",
        checks.violations
    );
    assert!(checks.witness.is_some());
    let acks1 = Allowances {
        acks: Acks::Leader,
        ..strict()
    };
    let checks = run(&p, &c, &finals, &acks1);
    assert!(checks.violations.is_empty(), "{:?}", checks.violations);
    assert_eq!(checks.allowed[0].check, "lost-write");
    assert_eq!(checks.allowed[0].setting, "acks=1");
}

/// The leader's final log lacks an acknowledged record: k-no-loss, unless the partition
/// had an unclean election.
#[test]
fn k_no_loss_fires_when_the_leader_lost_an_acked_record_unless_unclean_election() {
    let p = producer(&[(100, sent(0)), (101, sent(1))]);
    let c = consumer(0, &[]);
    let finals = [replica(0, true, &[100]), replica(1, false, &[100])];
    let checks = run(&p, &c, &finals, &strict());
    assert_eq!(invariants(&checks), vec!["k-no-loss"]);
    assert!(
        checks.violations[0].message.contains("offset 1"),
        "{:?}",
        checks.violations
    );
    let mut unclean = strict();
    let cause = LossCause::UncleanElection {
        at_ns: 5,
        leader: 0,
        leader_epoch: 2,
    };
    unclean.losses.insert(tp(), vec![cause]);
    let checks = run(&p, &c, &finals, &unclean);
    assert!(checks.violations.is_empty());
    let allowed = checks
        .allowed
        .iter()
        .find(|a| a.check == "k-no-loss")
        .unwrap();
    assert!(allowed
        .setting
        .contains("unclean.leader.election.enable=true"));
    assert_eq!((allowed.partition.as_str(), allowed.count), ("t-0", 1));
    // A follower holding another record at an acknowledged offset is a loss too.
    let finals = [
        replica(0, true, &[100, 101]),
        replica(1, false, &[100, 999]),
    ];
    assert_eq!(
        invariants(&run(&p, &c, &finals, &strict())),
        vec!["k-no-loss"]
    );
}

/// A record a consumer read is not what the replicas hold at the end: k-consistent-read,
/// unless every replica lost unflushed data to power loss.
#[test]
fn k_consistent_read_fires_when_a_read_record_was_replaced_unless_power_loss() {
    let p = producer(&[]);
    let c = consumer(0, &[&[(0, 555)]]);
    let finals = [replica(0, true, &[100]), replica(1, false, &[100])];
    let checks = run(&p, &c, &finals, &strict());
    assert_eq!(invariants(&checks), vec!["k-consistent-read"]);
    let mut power = strict();
    power.losses.insert(
        tp(),
        vec![LossCause::PowerLoss {
            at_ns: 3,
            brokers: vec![0, 1],
        }],
    );
    let checks = run(&p, &c, &finals, &power);
    assert!(checks.violations.is_empty(), "{:?}", checks.violations);
    assert!(checks
        .allowed
        .iter()
        .all(|a| a.setting.contains("power loss")));
    // A read record the leader no longer has (truncated away) fires too.
    let c = consumer(0, &[&[(0, 100), (1, 101)]]);
    let checks = run(&p, &c, &finals, &strict());
    assert_eq!(invariants(&checks), vec!["k-consistent-read"]);
}

/// One value at two offsets: a violation with idempotence on, permitted without it.
#[test]
fn a_duplicate_is_a_violation_only_with_idempotence() {
    let p = producer(&[(100, sent(0)), (100, sent(1))]);
    let c = consumer(0, &[&[(0, 100), (1, 100)]]);
    let finals = [replica(0, true, &[100, 100])];
    let checks = run(&p, &c, &finals, &strict());
    assert_eq!(invariants(&checks), vec!["kafka-log"]);
    assert!(checks.violations[0].message.starts_with("duplicate"));
    let loose = Allowances {
        enable_idempotence: false,
        acks: Acks::Leader,
        ..strict()
    };
    let checks = run(&p, &c, &finals, &loose);
    assert!(checks.violations.is_empty(), "{:?}", checks.violations);
    assert!(checks.allowed[0]
        .setting
        .contains("enable.idempotence=false"));
}

/// A consumer that went backwards (its position moved back) is a violation without a
/// loss cause on the partition.
#[test]
fn a_nonmonotonic_poll_is_a_violation_without_a_loss_cause() {
    let p = producer(&[(100, sent(0)), (101, sent(1))]);
    let c = consumer(0, &[&[(0, 100), (1, 101)], &[(1, 101)]]);
    let finals = [replica(0, true, &[100, 101])];
    let checks = run(&p, &c, &finals, &strict());
    assert_eq!(invariants(&checks), vec!["kafka-log"]);
    assert!(checks.violations[0]
        .message
        .starts_with("nonmonotonic-poll"));
}

/// Sends acknowledged below the consumers' starting position (`latest`) are not expected
/// to be read: no lost-write, and k-no-loss still holds them to the logs.
#[test]
fn sends_below_every_consumer_start_are_not_expected_to_be_read() {
    let p = producer(&[(100, sent(0)), (101, sent(1)), (102, sent(2))]);
    let c = consumer(2, &[&[(2, 102)]]);
    let finals = [replica(0, true, &[100, 101, 102])];
    let checks = run(&p, &c, &finals, &strict());
    assert!(checks.violations.is_empty(), "{:?}", checks.violations);
    let finals = [replica(0, true, &[100])];
    let checks = run(&p, &c, &finals, &strict());
    assert!(invariants(&checks).contains(&"k-no-loss"));
}

/// The converted history is keyed by partition and passes `check --model kafka-log`.
#[test]
fn the_converted_history_is_keyed_by_partition() {
    let p = producer(&[
        (100, sent(0)),
        (101, KafkaOutcome::Fail { error: "x".into() }),
    ]);
    let c = consumer(0, &[&[(0, 100)]]);
    let clients = [
        ClientHistory {
            process: 0,
            node: NodeId(6),
            records: &p,
        },
        ClientHistory {
            process: 1,
            node: NodeId(7),
            records: &c,
        },
    ];
    let h = to_check_history(&clients);
    assert_eq!(h.ops.len(), 3);
    assert_eq!(
        h.ops[0].call,
        Call::Send {
            key: Some("t-0".into()),
            value: "100".into()
        }
    );
    assert_eq!(h.ops[1].outcome, HOutcome::Fail);
    let Some(Ret::Records { records }) = &h.ops[2].ret else {
        panic!("a poll")
    };
    assert_eq!(records[0].key, "t-0");
    let verdict = check_kafka_log(&h, &KafkaLogOptions::default()).unwrap();
    assert!(verdict.is_valid(), "{verdict:?}");
}

/// The monitor's findings become loss causes: an unclean election, and a clean election
/// of a leader that had lost unflushed records (power loss); a replica's own data loss
/// alone permits nothing.
#[test]
fn monitor_findings_become_loss_causes_with_their_setting() {
    use crate::cluster::kafka::monitor::{AllowedLosses, DataLoss, LossyElection, UncleanElection};
    let other = TopicPartition::new("t", 1);
    let losses = AllowedLosses {
        unclean_elections: vec![UncleanElection {
            tp: tp(),
            leader_epoch: 3,
            leader: 2,
            previous_isr: vec![0],
            at_ns: 10,
        }],
        data_losses: vec![DataLoss {
            tp: other.clone(),
            broker: 1,
            from_offset: 4,
            records_lost: 2,
            committed_lost: 2,
            at_ns: 20,
        }],
        lossy_elections: vec![LossyElection {
            tp: other.clone(),
            leader_epoch: 5,
            leader: 1,
            unclean: false,
            again: false,
            lost_from: 4,
            committed_lost: 2,
            at_ns: 30,
        }],
        forked_replicas: Vec::new(),
        forked_sequences: Vec::new(),
    };
    let allow = strict().with_monitor(&losses);
    assert!(allow
        .cause("t-0")
        .unwrap()
        .contains("unclean.leader.election.enable=true"));
    let power = allow.cause("t-1").unwrap();
    assert!(power.contains("power loss of brokers [1]"), "{power}");
    let only_loss = AllowedLosses {
        data_losses: losses.data_losses.clone(),
        ..AllowedLosses::default()
    };
    assert!(strict().with_monitor(&only_loss).losses.is_empty());
}
