//! Controller election: winning, losing, racing, verifying a lost answer, resigning.

use super::*;
use crate::kafka::config::BugMode;
use crate::zab::msg::ErrCode;

fn controller_epoch(h: &Harness) -> (u32, i32) {
    let (data, stat) = h.zk.get(zkdata::CONTROLLER_EPOCH).expect("epoch znode");
    (
        zkdata::decode_controller_epoch(&data).unwrap(),
        stat.version,
    )
}

fn holder(h: &Harness) -> Option<BrokerId> {
    let (data, _) = h.zk.get(zkdata::CONTROLLER)?;
    zkdata::decode::<zkdata::ControllerData>(&data).map(|c| c.brokerid)
}

fn other_controller_takes_over(h: &mut Harness, id: BrokerId) {
    let _ = h.zk.delete(zkdata::CONTROLLER, -1);
    let data = zkdata::encode(&zkdata::ControllerData::new(id));
    h.zk.create(zkdata::CONTROLLER, &data, true, false).unwrap();
    let (epoch, version) = controller_epoch(h);
    let data = zkdata::encode_controller_epoch(epoch + 1);
    h.zk.set(zkdata::CONTROLLER_EPOCH, &data, version).unwrap();
}

#[test]
fn the_first_broker_creates_the_epoch_znode_and_wins_epoch_one() {
    let h = Harness::cluster(3, vec![], props());
    assert_eq!(h.ctl.active_epoch(), Some(1));
    assert_eq!(holder(&h), Some(0));
    // Created as "0", bumped once in the winning multi.
    assert_eq!(controller_epoch(&h), (1, 1));
    assert_eq!(h.ctl.known_controller(), Some(0));
    let ctx = h.ctl.context().unwrap();
    assert_eq!((ctx.epoch, ctx.epoch_zk_version), (1, 1));
    assert_eq!(ctx.registered(), vec![0, 1, 2]);
    assert!(h.ctl.is_idle());
}

#[test]
fn a_broker_that_finds_a_controller_stays_standby_and_wins_when_it_goes() {
    let mut h = Harness::new(1, 3, vec![], props());
    for b in 0..3 {
        h.register(b);
    }
    h.zk.create(zkdata::CONTROLLER_EPOCH, b"6", false, false)
        .unwrap();
    let data = zkdata::encode(&zkdata::ControllerData::new(2));
    h.zk.create(zkdata::CONTROLLER, &data, true, false).unwrap();
    h.start();
    assert_eq!(h.ctl.active_epoch(), None);
    assert_eq!(h.ctl.known_controller(), Some(2));
    assert!(h.sent.is_empty(), "a standby broker sends nothing");
    // The controller's session expires: its ephemeral goes, the exists watch fires.
    h.zk.delete(zkdata::CONTROLLER, -1).unwrap();
    h.settle();
    assert_eq!(h.ctl.active_epoch(), Some(7));
    assert_eq!(holder(&h), Some(1));
    assert_eq!(controller_epoch(&h).0, 7);
}

#[test]
fn losing_the_race_in_the_multi_leaves_the_broker_standby_watching() {
    let mut h = Harness::new(0, 3, vec![], props());
    h.register(0);
    h.hold = Some(|op| matches!(op, Op::Multi(_)));
    h.start();
    assert_eq!(h.held.len(), 1, "the campaign multi is held");
    // Broker 2 wins in between: our multi fails on NodeExists (and the epoch version).
    other_controller_takes_over(&mut h, 2);
    h.release();
    assert_eq!(h.ctl.active_epoch(), None);
    assert_eq!(h.ctl.known_controller(), Some(2));
    assert_eq!(holder(&h), Some(2));
    // Broker 2 goes: broker 0 campaigns again and wins the next epoch.
    h.zk.delete(zkdata::CONTROLLER, -1).unwrap();
    h.settle();
    assert_eq!(h.ctl.active_epoch(), Some(2));
}

#[test]
fn a_campaign_whose_answer_was_lost_is_verified_by_reading_back() {
    let mut h = Harness::new(0, 1, vec![], props());
    h.register(0);
    h.hold = Some(|op| matches!(op, Op::Multi(_)));
    h.start();
    let (tag, op) = h.held.pop().unwrap();
    h.hold = None;
    // The multi applied, but the connection broke before the answer came.
    h.zk.apply(&op).unwrap();
    h.complete(tag, Err(ZkError::ConnectionLoss));
    h.settle();
    assert_eq!(h.ctl.active_epoch(), Some(1));
    assert_eq!(h.ctl.context().unwrap().epoch_zk_version, 1);
}

#[test]
fn a_lost_campaign_answer_that_did_not_apply_campaigns_again() {
    let mut h = Harness::new(0, 1, vec![], props());
    h.register(0);
    h.hold = Some(|op| matches!(op, Op::Multi(_)));
    h.start();
    let (tag, _) = h.held.pop().unwrap();
    h.hold = None;
    h.complete(tag, Err(ZkError::Timeout));
    h.settle();
    assert_eq!(h.ctl.active_epoch(), Some(1));
    assert_eq!(holder(&h), Some(0));
}

#[test]
fn a_failed_epoch_check_makes_a_zombie_controller_resign_without_writing() {
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], props());
    assert_eq!(h.ctl.active_epoch(), Some(1));
    let before = h.state(0);
    // Broker 2 wins while broker 0 misses the watch event (a zombie).
    other_controller_takes_over(&mut h, 2);
    h.zk.events.clear();
    // Broker 1, a follower, is seen dying by the zombie: its ISR write must fail.
    h.kill(1);
    h.settle();
    assert_eq!(
        h.ctl.active_epoch(),
        None,
        "resigned on ControllerMovedException"
    );
    assert_eq!(h.ctl.known_controller(), Some(2));
    assert_eq!(h.state(0), before, "no write of the zombie landed");
}

#[test]
fn kafka_6082_bug_mode_lets_a_zombie_controller_write() {
    let mut p = props();
    p.bug_modes.push(BugMode::Kafka6082);
    let mut h = Harness::cluster(3, vec![topic("t", 1, 3)], p);
    other_controller_takes_over(&mut h, 2);
    h.zk.events.clear();
    h.kill(1);
    h.settle();
    let (state, _) = h.state(0);
    // The zombie's ISR shrink landed with its stale controller epoch 1 (2 is current).
    assert_eq!((state.isr, state.controller_epoch), (vec![0, 2], 1));
    assert!(h.sent.iter().all(|(_, r)| r.controller_epoch() != Some(2)));
}

#[test]
fn a_resigned_or_standby_controller_refuses_controlled_shutdown() {
    let mut h = Harness::new(1, 2, vec![], props());
    h.register(1);
    let data = zkdata::encode(&zkdata::ControllerData::new(0));
    h.zk.create(zkdata::CONTROLLER, &data, true, false).unwrap();
    h.start();
    let out = h.ctl.on_controlled_shutdown(9, 1, 1, h.now);
    h.feed(out);
    assert_eq!(
        h.replies,
        vec![(
            9,
            Response::ControlledShutdown {
                error: ErrorCode::NotController,
                remaining: vec![]
            }
        )]
    );
}

#[test]
fn losing_the_session_resigns_and_answers_a_pending_shutdown() {
    let mut h = Harness::cluster(2, vec![topic("t", 1, 2)], props());
    h.hold = Some(|op| matches!(op, Op::GetData { .. }));
    let epoch = h.ctl.context().unwrap().broker_epoch(1).unwrap();
    let out = h.ctl.on_controlled_shutdown(4, 1, epoch, h.now);
    h.feed(out);
    h.settle();
    assert!(!h.held.is_empty(), "the shutdown waits on its state reads");
    let out = h.ctl.on_session_lost();
    h.feed(out);
    assert_eq!(h.ctl.active_epoch(), None);
    let err = match &h.replies[..] {
        [(4, Response::ControlledShutdown { error, .. })] => *error,
        r => panic!("{r:?}"),
    };
    assert_eq!(err, ErrorCode::NotController);
    // Completions of the old session are ignored.
    let (tag, _) = h.held.pop().unwrap();
    h.hold = None;
    h.complete(tag, Err(ZkError::Server(ErrCode::NoNode)));
    assert!(h.ctl.is_idle());
}

#[test]
fn the_controller_resigns_when_its_node_is_taken_and_watches_on() {
    let mut h = Harness::cluster(3, vec![], props());
    other_controller_takes_over(&mut h, 1);
    h.settle();
    assert_eq!(h.ctl.active_epoch(), None);
    assert_eq!(h.ctl.known_controller(), Some(1));
}
