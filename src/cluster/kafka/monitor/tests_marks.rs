//! The broker's change marks (`kafka::broker::replicas`) as the monitor uses them: a
//! marked replica is judged, an unmarked one skipped, and debug builds catch a replica
//! that changed without its mark (the marks would then hide a change from the checks).

use std::collections::BTreeMap;

use super::tests::{fired, plain, tp, World};
use super::*;
use crate::kafka::broker::replicas::mark;

fn state() -> BrokerState {
    BrokerState {
        id: 0,
        inc: 0,
        now: 1,
        controller_epoch: None,
        fenced_controller_epoch: 1,
    }
}

#[test]
fn a_marked_change_is_judged() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0], 1, 1);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 0, 1, &[0]);
    let mut replicas = BTreeMap::from([(tp(), l)]);
    let mut out = Vec::new();
    w.mon
        .on_broker_replicas(&state(), &replicas, replicas::ALL, &mut out);
    // Nothing marked, nothing changed: skipped.
    w.mon.on_broker_replicas(&state(), &replicas, 0, &mut out);
    assert_eq!(out, vec![]);
    let l = replicas.get_mut(&tp()).expect("the replica");
    l.log.epochs.assign(&mut w.disk, 5, 1);
    w.mon
        .on_broker_replicas(&state(), &replicas, mark(&tp()), &mut out);
    assert!(fired(&out, K_EPOCH_MONO));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "changed an unmarked replica")]
fn an_unmarked_change_is_caught_in_debug_builds() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0], 1, 1);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 0, 1, &[0]);
    let mut replicas = BTreeMap::from([(tp(), l)]);
    let mut out = Vec::new();
    w.mon
        .on_broker_replicas(&state(), &replicas, replicas::ALL, &mut out);
    let l = replicas.get_mut(&tp()).expect("the replica");
    l.log.epochs.assign(&mut w.disk, 5, 1);
    // Another partition's mark only.
    let other = mark(&TopicPartition::new("t", 1));
    w.mon
        .on_broker_replicas(&state(), &replicas, other, &mut out);
}
