//! Broker death and start-up, ISR change notifications and controlled shutdown.

use super::*;

fn unclean() -> ServerProperties {
    let mut p = props();
    p.unclean_leader_election_enable = true;
    p
}

#[test]
fn a_dead_leader_is_replaced_by_the_first_live_isr_member_in_assignment_order() {
    let mut h = Harness::cluster(4, vec![topic("t", 1, 3)], props());
    // AR [0,1,2]; the ISR lists 2 before 1 (a leader's expansion order).
    h.put_state(0, Some(0), 4, &[0, 2, 1]);
    let mark = h.sent.len();
    h.kill(0);
    h.settle();
    let (s, _) = h.state(0);
    assert_eq!(
        (s.leader(), s.leader_epoch, s.isr.clone()),
        (Some(1), 5, vec![2, 1])
    );
    // LeaderAndIsr to the live replicas, UpdateMetadata to every live broker.
    for b in [1, 2] {
        let lai = h.leader_and_isr(b, 0, mark);
        assert_eq!((lai[0].leader, lai[0].leader_epoch), (Some(1), 5));
    }
    assert!(h.leader_and_isr(3, 0, mark).is_empty());
    let mut um: Vec<BrokerId> = h
        .apis(mark)
        .iter()
        .filter(|a| a.1 == "UpdateMetadata")
        .map(|a| a.0)
        .collect();
    um.sort();
    assert_eq!(um, vec![1, 2, 3]);
    assert!(!h.ctl.context().unwrap().is_registered(0));
}

#[test]
fn with_no_live_isr_member_an_unclean_election_takes_any_live_replica() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], unclean());
    h.put_state(0, Some(0), 2, &[0]);
    h.kill(0);
    h.settle();
    let (s, _) = h.state(0);
    assert_eq!((s.leader(), s.isr, s.leader_epoch), (Some(1), vec![1], 3));
}

#[test]
fn with_no_live_isr_member_and_unclean_off_the_partition_goes_offline() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    h.put_state(0, Some(0), 2, &[0]);
    let mark = h.sent.len();
    h.kill(0);
    h.settle();
    let (s, _) = h.state(0);
    // The last replica standing stays in the ISR; no leader; the epoch still moves.
    assert_eq!((s.leader(), s.isr, s.leader_epoch), (None, vec![0], 3));
    let lai = h.leader_and_isr(1, 0, mark);
    assert_eq!(lai.last().unwrap().leader, None);
    // It comes back (new broker epoch): it is the only clean candidate and leads again.
    let mark = h.sent.len();
    h.register(0);
    h.settle();
    let (s, _) = h.state(0);
    assert_eq!((s.leader(), s.isr, s.leader_epoch), (Some(0), vec![0], 4));
    let apis = h.apis(mark);
    assert_eq!(
        apis[0],
        (1, "UpdateMetadata"),
        "the others learn of it first"
    );
    assert!(apis.contains(&(0, "UpdateMetadata")) && apis.contains(&(0, "LeaderAndIsr")));
    assert_eq!(h.leader_and_isr(0, 0, mark).last().unwrap().leader, Some(0));
}

#[test]
fn a_dead_follower_leaves_the_isr_with_an_epoch_bump() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    let mark = h.sent.len();
    h.kill(2);
    h.settle();
    let (s, version) = h.state(0);
    assert_eq!(
        (s.leader(), s.isr, s.leader_epoch, version),
        (Some(0), vec![0, 1], 1, 1)
    );
    let lai = h.leader_and_isr(0, 0, mark);
    assert_eq!((lai[0].isr.clone(), lai[0].zk_version), (vec![0, 1], 1));
    assert_eq!(h.leader_and_isr(1, 0, mark).len(), 1);
}

#[test]
fn a_starting_broker_gets_metadata_and_the_roles_of_its_replicas() {
    let mut h = Harness::new(0, 3, vec![topic("t", 3, 2)], props());
    h.register(0);
    h.register(1);
    h.start();
    let mark = h.sent.len();
    h.register(2);
    h.settle();
    let apis = h.apis(mark);
    // Others: brokers only; the new one: every partition, then its LeaderAndIsr.
    assert_eq!(
        &apis[..3],
        &[
            (0, "UpdateMetadata"),
            (1, "UpdateMetadata"),
            (2, "UpdateMetadata")
        ]
    );
    let Request::UpdateMetadata {
        partitions,
        live_brokers,
        ..
    } = &h.sent[mark + 2].1
    else {
        panic!()
    };
    assert_eq!((partitions.len(), live_brokers.clone()), (3, vec![0, 1, 2]));
    // t-1 is [1,2] and t-2 is [2,0]: broker 2 hosts both.
    assert_eq!(h.leader_and_isr(2, 1, mark).len(), 1);
    assert_eq!(h.leader_and_isr(2, 2, mark).len(), 1);
    assert!(h.leader_and_isr(2, 0, mark).is_empty());
}

#[test]
fn a_bounced_broker_with_a_new_epoch_is_failed_then_started() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    let old = h.ctl.context().unwrap().broker_epoch(2).unwrap();
    // It restarts and re-registers before the controller handles the change.
    h.kill(2);
    h.register(2);
    let mark = h.sent.len();
    h.settle();
    let new = h.ctl.context().unwrap().broker_epoch(2).unwrap();
    assert!(new > old);
    let (s, _) = h.state(0);
    assert_eq!(s.isr, vec![0, 1], "its old incarnation left the ISR");
    let Some((_, Request::LeaderAndIsr { broker_epoch, .. })) = h.sent[mark..]
        .iter()
        .rev()
        .find(|(b, r)| *b == 2 && r.api() == "LeaderAndIsr")
    else {
        panic!("no LeaderAndIsr to the restarted broker")
    };
    assert_eq!(*broker_epoch, new);
}

#[test]
fn an_isr_change_notification_refreshes_metadata_and_is_deleted() {
    let mut h = Harness::cluster(3, vec![topic("t", 2, 3)], props());
    // The leader of t-1 shrinks its ISR and leaves a notification.
    h.put_state(1, Some(1), 0, &[1, 2]);
    let n = zkdata::IsrChangeNotification::new(&[tp(1)]);
    h.zk.create(zkdata::ISR_CHANGE_PREFIX, &zkdata::encode(&n), false, true)
        .unwrap();
    let mark = h.sent.len();
    h.settle();
    let um: Vec<_> = h.sent[mark..]
        .iter()
        .map(|(b, r)| match r {
            Request::UpdateMetadata { partitions, .. } => (*b, partitions.clone()),
            r => panic!("{r:?}"),
        })
        .collect();
    assert_eq!(um.len(), 3);
    assert_eq!(um[0].1.len(), 1);
    assert_eq!(
        (um[0].1[0].tp.clone(), um[0].1[0].isr.clone()),
        (tp(1), vec![1, 2])
    );
    assert!(
        h.zk.children(zkdata::ISR_CHANGE).is_empty(),
        "notification deleted"
    );
    let cached = &h.ctl.context().unwrap().leadership[&tp(1)];
    assert_eq!((cached.isr.clone(), cached.zk_version), (vec![1, 2], 1));
}

#[test]
fn controlled_shutdown_moves_leaderships_and_leaves_isrs_before_answering() {
    let mut h = Harness::cluster(3, vec![topic("t", 3, 2), topic("solo", 1, 1)], props());
    // t-0 [0,1] led by 0; t-2 [2,0] followed by 0; solo-0 [0] (RF 1: not acted on).
    let epoch = h.ctl.context().unwrap().broker_epoch(0).unwrap();
    let mark = h.sent.len();
    let out = h.ctl.on_controlled_shutdown(77, 0, epoch, h.now);
    h.feed(out);
    h.settle();
    let (s0, _) = h.state(0);
    assert_eq!(
        (s0.leader(), s0.isr, s0.leader_epoch),
        (Some(1), vec![1], 1)
    );
    let (s2, _) = h.state(2);
    assert_eq!(
        (s2.leader(), s2.isr, s2.leader_epoch),
        (Some(2), vec![2], 1)
    );
    // The shutting-down broker is told it follows now, and to stop its t-2 replica.
    assert_eq!(h.leader_and_isr(0, 0, mark)[0].leader, Some(1));
    assert!(h.apis(mark).contains(&(0, "StopReplica")));
    assert_eq!(
        h.replies,
        vec![(
            77,
            Response::ControlledShutdown {
                error: ErrorCode::None,
                remaining: vec![]
            }
        )]
    );
    assert!(h.ctl.context().unwrap().shutting_down.contains(&0));
}

#[test]
fn controlled_shutdown_reports_what_it_could_not_move() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 2)], props());
    // t-0 [0,1] led by 0 with ISR {0}: no other in-sync replica to take over.
    h.put_state(0, Some(0), 3, &[0]);
    let epoch = h.ctl.context().unwrap().broker_epoch(0).unwrap();
    let out = h.ctl.on_controlled_shutdown(5, 0, epoch, h.now);
    h.feed(out);
    h.settle();
    assert_eq!(h.state(0).0.leader(), Some(0));
    assert_eq!(
        h.replies,
        vec![(
            5,
            Response::ControlledShutdown {
                error: ErrorCode::None,
                remaining: vec![tp(0)]
            }
        )]
    );
}

#[test]
fn controlled_shutdown_of_an_older_incarnation_or_unknown_broker_is_refused() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 2)], props());
    let epoch = h.ctl.context().unwrap().broker_epoch(1).unwrap();
    let out = h.ctl.on_controlled_shutdown(1, 1, epoch - 1, h.now);
    h.feed(out);
    let out = h.ctl.on_controlled_shutdown(2, 7, 1, h.now);
    h.feed(out);
    h.settle();
    let errors: Vec<_> = h
        .replies
        .iter()
        .map(|(t, r)| match r {
            Response::ControlledShutdown { error, .. } => (*t, *error),
            r => panic!("{r:?}"),
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (1, ErrorCode::StaleBrokerEpoch),
            (2, ErrorCode::BrokerNotAvailable)
        ]
    );
    assert!(h.ctl.context().unwrap().shutting_down.is_empty());
}

#[test]
fn a_notification_for_an_unknown_partition_is_only_deleted() {
    let mut h = Harness::cluster(2, vec![topic("t", 1, 2)], props());
    let n = zkdata::IsrChangeNotification::new(&[TopicPartition::new("gone", 0)]);
    h.zk.create(zkdata::ISR_CHANGE_PREFIX, &zkdata::encode(&n), false, true)
        .unwrap();
    let mark = h.sent.len();
    h.settle();
    assert!(h.sent[mark..].is_empty());
    assert!(h.zk.children(zkdata::ISR_CHANGE).is_empty());
}

#[test]
fn after_the_controllers_death_the_next_one_fixes_its_partitions() {
    let mut h = Harness::cluster(3, vec![topic("t", 3, 3)], props());
    // Broker 0, controller and leader of t-0, loses its session: both ephemerals go.
    h.kill(0);
    h.zk.delete(zkdata::CONTROLLER, -1).unwrap();
    h.zk.events.clear();
    let setup = ControllerSetup {
        me: 1,
        brokers: 3,
        topics: vec![topic("t", 3, 3)],
        props: props(),
    };
    h.ctl = Controller::new(Rc::new(setup));
    let mark = h.sent.len();
    h.start();
    assert_eq!(h.ctl.active_epoch(), Some(2));
    let (s0, _) = h.state(0);
    // Taken out (leader -1, epoch 1), then elected (epoch 2), by controller epoch 2.
    assert_eq!(
        (s0.leader(), s0.isr, s0.leader_epoch),
        (Some(1), vec![1, 2], 2)
    );
    assert_eq!(s0.controller_epoch, 2);
    let (s1, _) = h.state(1);
    assert_eq!(
        (s1.leader(), s1.isr, s1.leader_epoch),
        (Some(1), vec![1, 2], 1)
    );
    assert!(h.sent[mark..]
        .iter()
        .all(|(b, r)| *b != 0 && r.controller_epoch() == Some(2)));
    assert_eq!(h.leader_and_isr(2, 0, mark).last().unwrap().leader, Some(1));
}
