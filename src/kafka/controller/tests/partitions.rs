//! Context loading, topic and partition creation, and the partition-state write path
//! (epoch-checked multis, re-reads on BadVersion, transient failures, re-sends).

use super::*;
use crate::kafka::zkdata::TopicAssignment;
use crate::zab::msg::ErrCode;

#[test]
fn failover_creates_the_missing_topic_and_the_states_of_its_partitions() {
    let h = Harness::cluster(3, vec![topic("t", 3, 2)], props());
    let (data, _) =
        h.zk.get(&zkdata::topic_path("t"))
            .expect("assignment created");
    let a: TopicAssignment = zkdata::decode(&data).unwrap();
    let ar = a.replicas().unwrap();
    assert_eq!(ar[&0], vec![0, 1]);
    assert_eq!(ar[&2], vec![2, 0]);
    for p in 0..3 {
        let (s, version) = h.state(p);
        // Leader: first live replica in AR; ISR: the live replicas; epoch 0; our epoch.
        assert_eq!(s.leader(), Some(ar[&p][0]));
        assert_eq!(
            (s.isr.clone(), s.leader_epoch, s.controller_epoch),
            (ar[&p].clone(), 0, 1)
        );
        assert_eq!(version, 0);
    }
    // Live brokers first, then each replica learns its role, metadata to everyone.
    assert_eq!(
        &h.apis(0)[..3],
        &[
            (0, "UpdateMetadata"),
            (1, "UpdateMetadata"),
            (2, "UpdateMetadata")
        ]
    );
    let lai = h.leader_and_isr(1, 0, 0);
    assert_eq!(lai.len(), 1);
    assert_eq!(
        (lai[0].leader, lai[0].zk_version, lai[0].replicas.clone()),
        (Some(0), 0, vec![0, 1])
    );
    assert!(
        h.leader_and_isr(2, 0, 0).is_empty(),
        "broker 2 holds no replica of t-0"
    );
    let Request::LeaderAndIsr {
        controller_epoch,
        broker_epoch,
        ..
    } = &h.sent[3].1
    else {
        panic!("{:?}", h.sent[3]);
    };
    let epoch = h.ctl.context().unwrap().broker_epoch(h.sent[3].0).unwrap();
    assert_eq!((*controller_epoch, *broker_epoch), (1, epoch));
}

/// kafka-nemesis seed 1393: `/brokers/topics` is missing when the first controller loads
/// the topics (the brokers' creates of it were lost with a ZooKeeper leader change). The
/// topic's create fails with NONODE; as KafkaZkClient.createRecursive does, the parents are
/// created and the topic with them, so its partitions come online without a failover.
#[test]
fn failover_creates_the_missing_topic_under_a_missing_parent() {
    let mut h = Harness::new(0, 3, vec![topic("t", 2, 2)], props());
    h.zk.delete(zkdata::TOPICS, -1).unwrap();
    for b in 0..3 {
        h.register(b);
    }
    h.start();
    assert!(h.zk.exists(&zkdata::topic_path("t")), "assignment created");
    for p in 0..2 {
        let (s, version) = h.state(p);
        assert_eq!((s.leader_epoch, version), (0, 0));
        assert!(s.leader().is_some());
    }
}

#[test]
fn a_new_partition_without_live_replicas_waits_for_one() {
    let mut h = Harness::new(0, 3, vec![topic("t", 3, 1)], props());
    h.register(0);
    h.register(1);
    h.start();
    assert!(h.zk.get(&zkdata::partition_state_path(&tp(2))).is_none());
    assert_eq!(h.state(1).0.leader(), Some(1));
    h.register(2);
    h.settle();
    assert_eq!(h.state(2).0.leader(), Some(2));
    assert_eq!(h.leader_and_isr(2, 2, 0).len(), 1);
}

#[test]
fn failover_takes_dead_replicas_out_and_elects_for_partitions_they_led() {
    let mut h = Harness::new(0, 3, vec![topic("t", 2, 3)], props());
    h.register(0);
    h.register(1);
    // The previous controller (broker 2) left these; broker 2 is dead now.
    let a = TopicAssignment::new(&[(0, vec![2, 0, 1]), (1, vec![0, 1, 2])]);
    h.zk.create(&zkdata::topic_path("t"), &zkdata::encode(&a), false, false)
        .unwrap();
    h.put_state(0, Some(2), 5, &[2, 0, 1]);
    h.put_state(1, Some(0), 3, &[0, 1, 2]);
    h.start();
    let (s0, _) = h.state(0);
    // Removal (leader -1, epoch 6) then election (epoch 7), as ReplicaStateMachine.startup
    // runs before PartitionStateMachine.startup.
    assert_eq!(
        (s0.leader(), s0.leader_epoch, s0.isr),
        (Some(0), 7, vec![0, 1])
    );
    let (s1, _) = h.state(1);
    assert_eq!(
        (s1.leader(), s1.leader_epoch, s1.isr),
        (Some(0), 4, vec![0, 1])
    );
    assert_eq!(h.leader_and_isr(1, 0, 0).last().unwrap().leader_epoch, 7);
}

#[test]
fn a_bad_version_on_a_state_write_re_reads_and_decides_again() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    h.hold = Some(|op| matches!(op, Op::Multi(_)));
    h.kill(2);
    h.settle();
    assert_eq!(h.held.len(), 1, "the ISR removal write is held");
    // Meanwhile the leader shrinks the ISR itself (it drops broker 1), bumping the version.
    h.put_state(0, Some(0), 0, &[0, 2]);
    let v = h.state(0).1;
    h.release();
    let (s, version) = h.state(0);
    // Re-read: broker 2 removed from the leader's new ISR, one epoch bump on top of it.
    assert_eq!((s.isr, s.leader_epoch, s.controller_epoch), (vec![0], 1, 1));
    assert_eq!(version, v + 1);
    let cached = &h.ctl.context().unwrap().leadership[&tp(0)];
    assert_eq!((cached.zk_version, cached.isr.clone()), (version, vec![0]));
}

#[test]
fn a_transient_failure_is_retried_on_the_next_tick() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    h.hold = Some(|op| matches!(op, Op::Multi(_)));
    h.kill(2);
    h.settle();
    let (tag, _) = h.held.pop().unwrap();
    h.hold = None;
    h.complete(tag, Err(ZkError::NotConnected));
    h.settle();
    assert_eq!(h.ctl.zk_outstanding(), 1, "parked until the tick");
    assert_eq!(h.state(0).0.isr, vec![0, 1, 2]);
    h.tick(S / 10);
    assert_eq!(h.state(0).0.isr, vec![0, 1]);
    assert!(h.ctl.is_idle() && h.ctl.zk_outstanding() == 0);
}

#[test]
fn an_uncertain_write_that_applied_is_not_applied_twice() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    h.hold = Some(|op| matches!(op, Op::Multi(_)));
    h.kill(2);
    h.settle();
    let (tag, op) = h.held.pop().unwrap();
    h.hold = None;
    h.zk.apply(&op).unwrap();
    h.complete(tag, Err(ZkError::ConnectionLoss));
    let mark = h.sent.len();
    h.tick(S / 10);
    let (s, version) = h.state(0);
    // The retry failed on the version, the re-read found its own write: one bump only...
    assert_eq!((s.isr, s.leader_epoch, version), (vec![0, 1], 1, 1));
    // ...and the replicas are still told, with the version it got.
    for b in [0, 1] {
        let lai = h.leader_and_isr(b, 0, mark);
        assert_eq!((lai[0].isr.clone(), lai[0].zk_version), (vec![0, 1], 1));
    }
}

#[test]
fn every_state_write_checks_the_controller_epoch_version() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    h.hold = Some(|op| matches!(op, Op::Multi(_)));
    h.kill(1);
    h.settle();
    let (_, op) = &h.held[0];
    let Op::Multi(ops) = op else { panic!("{op:?}") };
    assert_eq!(
        ops[0],
        Op::Check {
            path: zkdata::CONTROLLER_EPOCH.into(),
            version: 1
        }
    );
    assert!(matches!(&ops[1], Op::SetData { version: 0, .. }));
    // A state vanished under the write: the partition is left alone, nothing resigns.
    let (tag, _) = h.held.pop().unwrap();
    h.hold = None;
    h.complete(
        tag,
        Err(ZkError::MultiFailed(vec![None, Some(ErrCode::NoNode)])),
    );
    h.settle();
    assert_eq!(h.ctl.active_epoch(), Some(1));
}

#[test]
fn requests_are_resent_until_the_broker_answers_one_at_a_time() {
    let mut h = Harness::new(0, 2, vec![topic("t", 1, 2)], props());
    h.register(0);
    h.register(1);
    h.auto_ack = false;
    h.start();
    let to_one = |h: &Harness| h.sent.iter().filter(|(b, _)| *b == 1).count();
    assert_eq!(to_one(&h), 1, "one in flight to broker 1");
    assert!(h.ctl.request_backlog(1) > 1);
    h.tick(super::super::channel::RESEND_AFTER_NS);
    assert_eq!(to_one(&h), 2, "re-sent after the socket timeout");
    let first = h.sent.iter().find(|(b, _)| *b == 1).unwrap().1.clone();
    let out = h.ctl.on_response(1, &ok_response(&first), h.now);
    h.feed(out);
    assert_eq!(
        to_one(&h),
        3,
        "the next one goes once the first is answered"
    );
    let out = h.ctl.on_send_failed(1, h.now);
    h.feed(out);
    h.tick(super::super::channel::BACKOFF_NS);
    assert_eq!(to_one(&h), 4, "a failed send is retried after the backoff");
}

#[test]
fn a_state_written_by_a_newer_controller_is_left_to_it() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    // A newer controller (epoch 2) wrote the state; this one has not heard of it yet.
    let newer = zkdata::PartitionStateData::new(Some(0), 3, &[0, 1, 2], 2);
    let path = zkdata::partition_state_path(&tp(0));
    h.zk.set(&path, &zkdata::encode(&newer), -1).unwrap();
    h.kill(2);
    h.settle();
    assert_eq!(
        h.state(0).0,
        newer,
        "aborted: written by another controller"
    );
    // It does not resign for that alone (Kafka fails the partition's change only).
    assert_eq!(h.ctl.active_epoch(), Some(1));
}

#[test]
fn failover_deletes_old_isr_change_notifications_unread() {
    let mut h = Harness::new(0, 2, vec![topic("t", 1, 2)], props());
    h.register(0);
    h.register(1);
    let n = zkdata::IsrChangeNotification::new(&[tp(0)]);
    for _ in 0..2 {
        let data = zkdata::encode(&n);
        h.zk.create(zkdata::ISR_CHANGE_PREFIX, &data, false, true)
            .unwrap();
    }
    h.hold = Some(|op| matches!(op, Op::GetData { path, .. } if path.contains("isr_change_")));
    h.start();
    assert!(h.held.is_empty(), "never read");
    assert!(h.zk.children(zkdata::ISR_CHANGE).is_empty());
    assert_eq!(h.state(0).0.leader(), Some(0));
}

#[test]
fn brokers_dying_together_are_elected_around_then_removed_one_by_one() {
    let mut h = Harness::cluster(4, vec![topic("t", 2, 3)], props());
    // t-0 [0,1,2] led by 0; t-1 [1,2,3] led by 1.
    h.kill(1);
    h.kill(2);
    h.settle();
    let (s0, _) = h.state(0);
    assert_eq!(
        (s0.leader(), s0.isr, s0.leader_epoch),
        (Some(0), vec![0], 2)
    );
    let (s1, _) = h.state(1);
    assert_eq!(
        (s1.leader(), s1.isr, s1.leader_epoch),
        (Some(3), vec![3], 1)
    );
}

#[test]
fn watch_events_during_a_busy_event_are_queued_once_and_handled_after_it() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    h.hold = Some(|op| matches!(op, Op::Multi(_)));
    h.kill(2);
    h.settle();
    assert_eq!(h.held.len(), 1);
    // Two more changes arrive while the first event waits on its write.
    h.kill(1);
    for _ in 0..2 {
        let out = h.ctl.on_watch(
            zkdata::BROKER_IDS,
            crate::zab::msg::WatchKind::NodeChildrenChanged,
            h.now,
        );
        h.feed(out);
    }
    h.settle();
    assert_eq!(
        h.held.len(),
        1,
        "nothing else runs before the event in hand is done"
    );
    h.release();
    let (s, _) = h.state(0);
    assert_eq!((s.leader(), s.isr, s.leader_epoch), (Some(0), vec![0], 2));
    assert!(h.ctl.is_idle());
}

#[test]
fn a_state_create_whose_answer_was_lost_is_read_back_and_told() {
    let mut h = Harness::new(0, 2, vec![topic("t", 1, 2)], props());
    h.register(0);
    h.register(1);
    h.hold = Some(|op| matches!(op, Op::Multi(v) if v.iter().any(creates_a_state)));
    h.start();
    let (tag, op) = h.held.pop().unwrap();
    h.hold = None;
    h.zk.apply(&op).unwrap();
    h.complete(tag, Err(ZkError::Timeout));
    h.tick(S / 10);
    // The retry found it (NodeExists): read back, cached, and its replicas told.
    assert_eq!(h.state(0).0.leader(), Some(0));
    for b in [0, 1] {
        assert_eq!(h.leader_and_isr(b, 0, 0).last().unwrap().leader, Some(0));
    }
    assert!(h.ctl.is_idle());
}

fn creates_a_state(op: &Op) -> bool {
    matches!(op, Op::Create { path, .. } if path.ends_with("/state"))
}
