//! Stale state that real Kafka shows and the monitor must tell from a broken protocol: a
//! LeaderAndIsr of an epoch ZooKeeper has already moved past, taking effect late. Each
//! allowed shape comes with the bad shape next to it that must still fire.

use super::tests::{fired, plain, tp, World};
use std::collections::BTreeMap;

use super::*;

/// Broker 1 leads epoch 1 (ZooKeeper wrote epoch 0 for broker 0 before it) and commits
/// values 10 and 11 with broker 2.
fn epoch_one_committed(w: &mut World) {
    assert_eq!(w.zk(Some(0), 0, &[0, 1, 2], 1, 1), vec![]);
    assert_eq!(w.zk(Some(1), 1, &[1, 2], 1, 1), vec![]);
    let log = [plain(1, 10), plain(1, 11)];
    let l = w.leader(1, &log, 0, 1, &[1, 2]);
    assert_eq!(w.broker(1, 0, l), vec![]);
    let f = w.follower(2, &log, 2, 1, 1);
    assert_eq!(w.broker(2, 0, f), vec![]);
    let l = w.leader(1, &log, 2, 1, &[1, 2]);
    assert_eq!(w.broker(1, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 2);
}

/// kafka-nemesis seed 27662: broker 0's initial LeaderAndIsr (epoch 0), held up behind a
/// connection reset, arrives after epoch 1 committed records. Broker 0 leads epoch 0 with
/// an empty log: a stale leader, not a clean election that lost committed records.
#[test]
fn a_leader_and_isr_overtaken_by_a_newer_epoch_is_a_stale_leader_not_an_election() {
    let mut w = World::new(2);
    epoch_one_committed(&mut w);
    let stale = w.leader(0, &[], 0, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, stale), vec![]);
    // The committed history is untouched and no loss is recorded.
    assert_eq!(w.mon.committed_records(), 2);
    assert_eq!(w.mon.allowed_losses(), &AllowedLosses::default());

    // A leader of the newest epoch, elected cleanly (broker 0 was back in the ISR), is
    // judged as an election.
    let mut w = World::new(2);
    epoch_one_committed(&mut w);
    // (Broker 1's own ISR lags this expansion: k-isr-superset, not this test's concern.)
    let _ = w.zk(Some(1), 1, &[1, 2, 0], 1, 1);
    assert_eq!(w.zk(Some(0), 2, &[0, 1, 2], 1, 1), vec![]);
    let l = w.leader(0, &[], 0, 2, &[0, 1, 2]);
    assert!(fired(&w.broker(0, 0, l), K_LEADER_COMPLETE));

    // A stale leader whose HW covers a record other than the committed one still fires.
    let mut w = World::new(2);
    epoch_one_committed(&mut w);
    let stale = w.leader(0, &[plain(0, 50)], 1, 0, &[0]);
    assert!(fired(&w.broker(0, 0, stale), K_LOG_MATCH));
}

/// Broker 2 held value 20 at offset 1 (epoch 1, never committed), truncated it when broker
/// 1 led epoch 2 and fetched 30 and 31 there, all committed. Then a power loss gives it
/// back its old log: 20 at offset 1 again, under its HW checkpoint (clamped to 2).
fn given_back_after_a_power_loss() -> World {
    let mut w = World::new(2);
    let old = [plain(1, 10), plain(1, 20)];
    assert_eq!(w.zk(Some(0), 1, &[0, 1, 2], 1, 1), vec![]);
    let l = w.leader(0, &old, 0, 1, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &old[..1], 0, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let f = w.follower(2, &old, 0, 0, 1);
    assert_eq!(w.broker(2, 0, f), vec![]);
    let l = w.leader(0, &old, 1, 1, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.zk(Some(1), 2, &[1, 2], 1, 1), vec![]);
    let new = [plain(1, 10), plain(2, 30), plain(2, 31)];
    let l = w.leader(1, &new, 1, 2, &[1, 2]);
    assert_eq!(w.broker(1, 0, l), vec![]);
    let f = w.follower(2, &new, 1, 1, 2);
    assert_eq!(w.broker(2, 0, f), vec![]);
    let l = w.leader(1, &new, 3, 2, &[1, 2]);
    assert_eq!(w.broker(1, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 3);
    let back = w.replica(2, &old, 3);
    assert_eq!(back.high_watermark(), 2);
    assert_eq!(w.broker(2, 1, back), vec![]);
    assert_eq!(w.mon.data_losses().len(), 1);
    w
}

/// kafka-nemesis seed 43467: records a power loss gave back (the truncation that removed
/// them lost with it) are not compared until the replica truncates them again; then its
/// log is judged as usual.
#[test]
fn records_a_power_loss_gave_back_are_suspected_until_truncated_again() {
    let mut w = given_back_after_a_power_loss();
    // Its next fetch finds the divergence: it truncates to offset 1 and fetches anew.
    let f = w.follower(2, &[plain(1, 10), plain(2, 30), plain(2, 31)], 3, 1, 2);
    assert_eq!(w.broker(2, 1, f), vec![]);
    assert_eq!(w.mon.left_behind(), BTreeMap::new());

    // A replica that takes the new epoch's records on top of the given-back ones, without
    // truncating them, holds 20 where 30 is committed: k-log-match fires.
    let mut w = given_back_after_a_power_loss();
    let f = w.follower(2, &[plain(1, 10), plain(1, 20), plain(2, 31)], 3, 1, 2);
    assert!(fired(&w.broker(2, 1, f), K_LOG_MATCH));
}

/// Broker 0 leads epoch 0 and commits values 10 and 11 on all three replicas, loses power
/// and comes back (incarnation 1) with 10 only; then ZooKeeper moves the partition to
/// epoch 1 under broker 1.
fn committed_then_lost_by_its_leader(w: &mut World) {
    assert_eq!(w.zk(Some(0), 0, &[0, 1, 2], 1, 1), vec![]);
    let log = [plain(0, 10), plain(0, 11)];
    let l = w.leader(0, &log, 0, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    for b in [1, 2] {
        let f = w.follower(b, &log, 2, 0, 0);
        assert_eq!(w.broker(b, 0, f), vec![]);
    }
    let l = w.leader(0, &log, 2, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 2);
    let back = w.replica(0, &log[..1], 1);
    assert_eq!(w.broker(0, 1, back), vec![]);
    assert_eq!(w.zk(Some(1), 1, &[1, 2], 1, 1), vec![]);
}

/// kafka-nemesis seeds 86098 and 125796: the failover controller's epoch-0 LeaderAndIsr
/// reaches the restarted broker 0 after ZooKeeper moved to epoch 1. Broker 0 leads epoch 0
/// again and appends value 99 at offset 1, where its earlier incarnation had appended the
/// committed 11: a second history of epoch 0 (KIP-966), left behind, not two leaders.
#[test]
fn a_restarted_leader_reappointed_late_to_its_old_epoch_forks_it_and_is_left_behind() {
    let mut w = World::new(2);
    committed_then_lost_by_its_leader(&mut w);
    let stale = w.leader(0, &[plain(0, 10)], 1, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 1, stale), vec![]);
    let stale = w.leader(0, &[plain(0, 10), plain(0, 99)], 1, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 1, stale), vec![]);
    assert_eq!(w.mon.committed_records(), 2);
    let lossy = &w.mon.allowed_losses().lossy_elections;
    assert!(lossy.len() == 1 && lossy[0].again && lossy[0].lost_from == 1);
    assert!(w
        .mon
        .left_behind()
        .get(&tp())
        .is_some_and(|l| l.contains_key(&0)));

    // After the stale tenure, another replica showing 99 at offset 1 in epoch 0 (a record
    // its leader never appended there) still fires.
    let stale = w.leader(0, &[plain(0, 10), plain(0, 99)], 1, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 1, stale), vec![]);
    let f = w.follower(2, &[plain(0, 10), plain(0, 99)], 1, 1, 1);
    assert!(fired(&w.broker(2, 0, f), K_ONE_LEADER));

    // The same overwrite by a leader that did not restart (it dropped its own record in
    // office) is two histories of one epoch with no loss to explain it.
    let mut w2 = World::new(2);
    assert_eq!(w2.zk(Some(0), 0, &[0, 1, 2], 1, 1), vec![]);
    let l = w2.leader(0, &[plain(0, 10), plain(0, 11)], 0, 0, &[0, 1, 2]);
    assert_eq!(w2.broker(0, 0, l), vec![]);
    let l = w2.leader(0, &[plain(0, 10)], 0, 0, &[0, 1, 2]);
    let _ = w2.broker(0, 0, l);
    let l = w2.leader(0, &[plain(0, 10), plain(0, 99)], 0, 0, &[0, 1, 2]);
    assert!(fired(&w2.broker(0, 0, l), K_ONE_LEADER));
}

/// The late re-appointment of seeds 86098 and 125796 with `log.flush.interval.messages=1`:
/// broker 0 fsynced 11 before answering its append, so the power loss cannot have taken
/// that committed record, and leading epoch 0 again without it is k-leader-complete, not
/// the allowed lossy tenure it is without flushing (its twin below). A flush per append
/// still lets a power loss take the append in flight, never committed: that one is allowed.
#[test]
fn a_late_reappointment_without_a_committed_record_fires_with_a_flush_per_append() {
    let mut w = World::new(2);
    w.flush_each();
    committed_then_lost_by_its_leader(&mut w);
    let stale = w.leader(0, &[plain(0, 10)], 1, 0, &[0, 1, 2]);
    let out = w.broker(0, 1, stale);
    assert!(fired(&out, K_LEADER_COMPLETE), "{out:?}");

    // Without flushing: the allowed lossy tenure, recorded.
    let mut w = World::new(2);
    committed_then_lost_by_its_leader(&mut w);
    let stale = w.leader(0, &[plain(0, 10)], 1, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 1, stale), vec![]);
    assert_eq!(w.mon.allowed_losses().lossy_elections.len(), 1);

    // With flushing, a loss of the uncommitted append in flight (12 at offset 2; 10 and 11
    // committed) is allowed: broker 0 leads epoch 0 again with 10 and 11.
    let mut w = World::new(2);
    w.flush_each();
    assert_eq!(w.zk(Some(0), 0, &[0, 1, 2], 1, 1), vec![]);
    let log = [plain(0, 10), plain(0, 11), plain(0, 12)];
    let l = w.leader(0, &log[..2], 0, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    for b in [1, 2] {
        let f = w.follower(b, &log[..2], 2, 0, 0);
        assert_eq!(w.broker(b, 0, f), vec![]);
    }
    let l = w.leader(0, &log, 2, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 2);
    let back = w.replica(0, &log[..2], 2);
    assert_eq!(w.broker(0, 1, back), vec![]);
    assert_eq!(w.zk(Some(1), 1, &[1, 2], 1, 1), vec![]);
    let stale = w.leader(0, &log[..2], 2, 0, &[0, 1, 2]);
    assert_eq!(w.broker(0, 1, stale), vec![]);
    let lossy = &w.mon.allowed_losses().lossy_elections;
    assert!(lossy.len() == 1 && lossy[0].again && lossy[0].committed_lost == 0);
}

/// kafka-nemesis seed 402913: broker 1 leads epoch 1 with ISR {1, 2}; its expansion to
/// {1, 2, 0} applies in ZooKeeper (the answer lost), then the controller writes epoch 2
/// with {1, 0} from it. Broker 1, still in epoch 1, must keep 0 in the ISR it computes its
/// HW over: held to the last state of its own epoch, although ZooKeeper's newest state is
/// of epoch 2 (comparing with the newest state only, when its epoch is the leader's, was
/// blind to it).
#[test]
fn isr_superset_holds_a_leader_to_its_own_epochs_last_state_after_zookeeper_moved_on() {
    let mut w = World::new(2);
    let log = [plain(1, 10), plain(1, 11)];
    assert_eq!(w.zk(Some(1), 1, &[1, 2], 1, 1), vec![]);
    let mut l = w.leader(1, &log, 2, 1, &[1, 2]);
    let f = w.follower(0, &log, 2, 1, 1);
    let req = f.fetch_request(100).unwrap();
    assert!(l.handle_follower_fetch(0, &req, 1).1.is_some(), "expanding");
    assert_eq!(w.broker(1, 0, l.clone()), vec![]);
    assert_eq!(w.zk(Some(1), 1, &[1, 2, 0], 1, 1), vec![]);
    assert_eq!(w.zk(Some(1), 2, &[1, 0], 1, 1), vec![]);
    // The fixed leader: the resent write's BadVersion leaves the expansion pending.
    l.isr_write_failed();
    assert_eq!(w.broker(1, 0, l), vec![]);
    // A leader that drops the member it was adding.
    let dropped = w.leader(1, &log, 2, 1, &[1, 2]);
    let out = w.broker(1, 0, dropped);
    assert!(fired(&out, K_ISR_SUPERSET), "{out:?}");

    // A LeaderAndIsr of epoch 1 taking effect after ZooKeeper moved on is held to what it
    // said, not to states of its epoch written before it took office.
    let mut w = World::new(2);
    assert_eq!(w.zk(Some(1), 1, &[1, 2], 1, 1), vec![]);
    assert_eq!(w.zk(Some(1), 1, &[1, 2, 0], 1, 1), vec![]);
    assert_eq!(w.zk(Some(0), 2, &[0, 2], 1, 1), vec![]);
    let stale = w.leader(1, &[], 0, 1, &[1, 2]);
    let out = w.broker(1, 0, stale);
    assert!(
        !out.iter().any(|f| f.invariant == K_ISR_SUPERSET),
        "{out:?}"
    );
}
