//! Tests of the brokers' ZooKeeper histories in the Kafka world: recorded across a broker's
//! incarnations, checked at the end of a run by the ZooKeeper world's checks, and a stale
//! read in them is a `zk-history` violation.

use super::*;
use crate::sim::{SimConfig, Stepped};
use crate::zab::msg::{ErrCode, Op, OpResult, Zxid};
use crate::zab::record::Outcome;

fn spec() -> KafkaSpec {
    serde_json::from_str(
        r#"{"zookeeper": {"servers": 3}, "brokers": 2, "topics": [{"name": "t",
            "partitions": 2, "replication.factor": 2}],
            "server_properties": {"zookeeper.session.timeout.ms": 4000},
            "producer": {"count": 1, "rate": 20}, "consumer": {"count": 1}}"#,
    )
    .unwrap()
}

fn world(system: &KafkaSystem) -> Sim<KafkaNode> {
    let config = SimConfig {
        seed: 3,
        net: Default::default(),
        disk: Default::default(),
        timeline_capture: 0,
        record_checksums: false,
    };
    Sim::new(config, system.names(), system.factory())
}

/// Delivers events up to `until_ns`, with the online invariants after each, as a run does.
fn drive(system: &mut KafkaSystem, sim: &mut Sim<KafkaNode>, until_ns: u64) {
    while sim.next_time().is_some_and(|t| t <= until_ns) {
        if let Some(Stepped::Delivered(node)) = sim.step() {
            let found = system.after_event(sim, node);
            assert!(found.is_empty(), "{found:?}");
        }
    }
}

const S: u64 = 1_000_000_000;

/// A run with a broker crash and restart: the broker's history holds both incarnations'
/// operations with distinct ids, and the end-of-run checks take every broker's history.
#[test]
fn broker_histories_outlive_a_crash_and_are_checked_at_the_end() {
    let mut system = KafkaSystem::new(&spec());
    let mut sim = world(&system);
    drive(&mut system, &mut sim, 3 * S);
    let kafka0 = system.layout().brokers[0];
    let before = system.zk_histories[0].borrow().records().len();
    assert!(
        before > 0,
        "kafka0 registered and campaigned through ZooKeeper"
    );
    sim.crash(kafka0);
    drive(&mut system, &mut sim, 4 * S);
    sim.restart(kafka0);
    drive(&mut system, &mut sim, 12 * S);
    let history = system.zk_histories[0].borrow();
    let invokes: Vec<u64> = (history.records().iter())
        .filter(|r| matches!(r, Record::Invoke { .. }))
        .map(Record::op_id)
        .collect();
    let mut unique = invokes.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        invokes.len(),
        "op ids are unique across incarnations"
    );
    let handles: std::collections::BTreeSet<u64> = invokes.iter().map(|id| id >> 32).collect();
    assert!(handles.len() >= 2, "a session per incarnation: {handles:?}");
    assert!(
        history.records().len() > before,
        "the restarted broker records on"
    );
    drop(history);
    let found = system.finish(&sim);
    assert!(found.is_empty(), "{found:?}");
    let zk = system.zk_checks.clone().expect("checked");
    let recorded: usize = (system.zk_histories.iter())
        .map(|h| h.borrow().records().len())
        .sum();
    let completed = zk.outcomes.ok + zk.outcomes.fail + zk.outcomes.info;
    assert_eq!(
        zk.invoked + completed as usize,
        recorded,
        "every broker's history"
    );
    assert!(zk.history_ran && !zk.unknown, "{zk:?}");
    assert!(
        zk.checked > 0,
        "top-level and topic znodes are in the model"
    );
    let summary = system.summary();
    assert_eq!(summary["broker_zk_history"]["ops"], zk.invoked);
    assert_eq!(
        summary["broker_zk_history"]["history_checked_ops"],
        zk.checked
    );
}

/// The completed create of `path` in the brokers' histories: (its zxid).
fn created_at(system: &KafkaSystem, path: &str) -> Option<Zxid> {
    for h in &system.zk_histories {
        let h = h.borrow();
        let ids: Vec<u64> = (h.records().iter())
            .filter_map(|r| match r {
                Record::Invoke { op_id, op, .. } => match &**op {
                    Op::Create { path: p, .. } if p == path => Some(*op_id),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        for r in h.records() {
            if let Record::Complete {
                op_id,
                outcome: Outcome::Ok(OpResult::Created { .. }),
                zxid,
                ..
            } = r
            {
                if ids.contains(op_id) {
                    return *zxid;
                }
            }
        }
    }
    None
}

/// A broker that reads "no node" for a topic at a zxid past the topic's creation saw a
/// state the ensemble never had: the ZooKeeper history check of the Kafka world rejects it.
#[test]
fn a_stale_read_in_a_broker_history_is_a_zk_history_violation() {
    let mut system = KafkaSystem::new(&spec());
    let mut sim = world(&system);
    drive(&mut system, &mut sim, 4 * S);
    let path = crate::kafka::zkdata::topic_path("t");
    let created = created_at(&system, &path).expect("the controller created the topic");
    let mut h = system.zk_histories[1].borrow_mut();
    // The broker's current session and the highest zxid it saw on it: the stale read keeps
    // the session's order, so only the read's content is wrong.
    let (session, seen) = (h.records().iter().rev())
        .find_map(|r| match r {
            Record::Complete {
                session,
                zxid: Some(z),
                ..
            } if *session != 0 => Some((*session, *z)),
            _ => None,
        })
        .expect("kafka1 was answered");
    let at_ns = sim.now();
    let op_id = u64::MAX;
    h.push(Record::Invoke {
        op_id,
        session,
        op: Op::GetData {
            path: path.clone(),
            watch: false,
        }
        .into(),
        at_ns,
    });
    h.push(Record::Complete {
        op_id,
        session,
        outcome: Outcome::Ok(OpResult::Err(ErrCode::NoNode)),
        zxid: Some(seen.max(created)),
        cxid: 0,
        at_ns: at_ns + 1,
    });
    drop(h);
    let found = system.finish(&sim);
    let names: Vec<&str> = found.iter().map(|v| v.invariant.as_str()).collect();
    assert_eq!(names, ["zk-history"], "{found:?}");
    assert!(found[0].message.contains(&path), "{}", found[0].message);
    let witness = system.witness().expect("the checker's witness");
    assert_eq!(witness.invariant, "zk-history");
}

/// The old server answered a write on a connection whose session had moved with
/// SESSIONMOVED (ZooKeeper closes the connection instead, ZOOKEEPER-710): a broker history
/// holding such an answer, recorded as the client library records it, is a
/// `zk-session-moved-unseen` violation, and only that.
#[test]
fn a_session_moved_answer_in_a_broker_history_is_a_violation() {
    let mut system = KafkaSystem::new(&spec());
    let mut sim = world(&system);
    drive(&mut system, &mut sim, 4 * S);
    let mut h = system.zk_histories[1].borrow_mut();
    let session = (h.records().iter().rev())
        .find_map(|r| match r {
            Record::Complete { session, .. } if *session != 0 => Some(*session),
            _ => None,
        })
        .expect("kafka1 was answered");
    let op = Op::SetData {
        path: "/moved".into(),
        data: vec![],
        version: -1,
    };
    let at_ns = sim.now();
    let op_id = u64::MAX;
    h.push(Record::Invoke {
        op_id,
        session,
        op: op.clone().into(),
        at_ns,
    });
    let answered = crate::zab::client::Completion {
        op_id,
        op: op.into(),
        result: Err(crate::zab::client::ZkError::Server(ErrCode::SessionMoved)),
        zxid: None,
        xid: 0,
        session,
        at_ns: at_ns + 1,
    };
    h.push(Record::complete(&answered));
    drop(h);
    let found = system.finish(&sim);
    let names: Vec<&str> = found.iter().map(|v| v.invariant.as_str()).collect();
    assert_eq!(names, ["zk-session-moved-unseen"], "{found:?}");
    assert!(found[0].message.contains("/moved"), "{}", found[0].message);
}
