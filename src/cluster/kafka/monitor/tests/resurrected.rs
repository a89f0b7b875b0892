//! Records a power loss brings back: a follower truncated records of a history an allowed
//! loss abandoned, never fsynced the truncation (Kafka does not), and lost power; its
//! recovery keeps the old records (their CRCs hold). Kafka-nemesis seeds 22340, 24782,
//! 30602 and 42830. Each shape once as allowed and once with a record no leader appended
//! recovered beside them, where k-one-leader must still fire.

use super::*;

/// Epoch 1 led by broker 0: 10, 11 and 12 on brokers 0 and 1, all three committed.
fn three_committed_in_epoch_1() -> World {
    let mut w = World::new(1);
    w.committed_two();
    let old = [plain(1, 10), plain(1, 11), plain(1, 12)];
    let l = w.leader(0, &old, 2, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &old, 2, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let l = w.leader(0, &old, 3, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    w
}

/// Epoch 1 led by broker 0: 10, 11 and 12 committed on brokers 0 and 1. Broker 0 restarts
/// having lost 12 (unflushed) and leads epoch 2 (a lossy election: the history restarts at
/// offset 2). Follower 1 finds the divergence by its epoch, truncates 12, and copies the
/// new leader's 20.
fn lossy_new_epoch_then_truncation() -> World {
    let mut w = three_committed_in_epoch_1();
    assert_eq!(w.mon.committed_records(), 3);
    let r = w.replica(0, &[plain(1, 10), plain(1, 11)], 2);
    assert_eq!(w.broker(0, 1, r), vec![]);
    assert_eq!(w.zk(Some(0), 2, &[0, 1], 1, 1), vec![]);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 2, 2, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    assert_eq!(w.mon.lossy_elections().len(), 1);
    let f = w.follower(1, &[plain(1, 10), plain(1, 11)], 2, 0, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let new = [plain(1, 10), plain(1, 11), plain(2, 20)];
    let l = w.leader(0, &new, 2, 2, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    let f = w.follower(1, &new, 2, 0, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    w
}

/// Kafka-nemesis seeds 22340 and 30602: broker 1 loses power and its disk still holds 12
/// (the truncation was never synced). It holds the abandoned history from offset 2 until
/// its fetch in epoch 2 truncates it again (epoch 1 ends at 2 on the leader).
#[test]
fn a_truncation_undone_by_a_power_loss_brings_back_abandoned_records_as_suspect() {
    let mut w = lossy_new_epoch_then_truncation();
    let r = w.replica(1, &[plain(1, 10), plain(1, 11), plain(1, 12)], 2);
    assert_eq!(w.broker(1, 1, r), vec![]);
    let loss = w.mon.data_losses().last().expect("a loss");
    assert_eq!((loss.broker, loss.from_offset), (1, 2));
    let f = w.follower(1, &[plain(1, 10), plain(1, 11)], 2, 0, 2);
    assert_eq!(w.broker(1, 1, f), vec![]);
    let f = w.follower(1, &[plain(1, 10), plain(1, 11), plain(2, 20)], 2, 0, 2);
    assert_eq!(w.broker(1, 1, f), vec![]);
    assert!(w.mon.left_behind().is_empty(), "{:?}", w.mon.left_behind());
}

/// The same restart with a record no leader appended: above the abandoned 12 (the new
/// check), or in its place (the record's first sight, as before).
#[test]
fn a_recovered_record_no_leader_appended_fires_one_leader() {
    let mut w = lossy_new_epoch_then_truncation();
    let bad = [plain(1, 10), plain(1, 11), plain(1, 12), plain(1, 13)];
    let r = w.replica(1, &bad, 2);
    let out = w.broker(1, 1, r);
    assert!(fired(&out, K_ONE_LEADER), "{out:?}");
    let mut w = lossy_new_epoch_then_truncation();
    let r = w.replica(1, &[plain(1, 10), plain(1, 11), plain(1, 99)], 2);
    let out = w.broker(1, 1, r);
    assert!(fired(&out, K_ONE_LEADER), "{out:?}");
}

/// Kafka-nemesis seeds 24782 and 42830, a same-epoch re-appointment: broker 0 lost 11
/// and 12 and leads epoch 1 again with only 10; follower 1's fetch from offset 3 lies past
/// the leader's end of epoch 1 (1), so it truncates to 1, then copies 20-22. A power loss
/// undoes that truncation: broker 1 holds 11 and 12 of epoch 1 again, where the leader
/// holds 20 and 21 of the same epoch. Its next fetch (offset 3, epoch 1) finds no
/// divergence and it takes 22 on top: the KIP-966 fork, allowed without flushing.
/// `recovered` is what broker 1's disk gives back.
fn same_epoch_truncation_undone(recovered: &[B]) -> (World, Vec<Finding>) {
    let mut w = three_committed_in_epoch_1();
    let r = w.replica(0, &[plain(1, 10)], 1);
    assert_eq!(w.broker(0, 1, r), vec![]);
    let l = w.leader(0, &[plain(1, 10)], 1, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    assert!(w.mon.lossy_elections()[0].again);
    let f = w.follower(1, &[plain(1, 10)], 1, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let new = [plain(1, 10), plain(1, 20), plain(1, 21), plain(1, 22)];
    let l = w.leader(0, &new, 1, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    let f = w.follower(1, &new, 1, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let r = w.replica(1, recovered, 1);
    let out = w.broker(1, 1, r);
    (w, out)
}

#[test]
fn a_same_epoch_truncation_undone_by_a_power_loss_forks_as_allowed() {
    let (mut w, out) = same_epoch_truncation_undone(&[plain(1, 10), plain(1, 11), plain(1, 12)]);
    assert_eq!(out, vec![]);
    let forked = [plain(1, 10), plain(1, 11), plain(1, 12), plain(1, 22)];
    let f = w.follower(1, &forked, 1, 0, 1);
    assert_eq!(w.broker(1, 1, f), vec![]);
    let fork = &w.mon.allowed_losses().forked_replicas;
    assert_eq!((fork.len(), fork[0].broker, fork[0].from_offset), (1, 1, 1));
    let behind = w.mon.left_behind();
    assert!(behind[&tp()].contains_key(&1), "{behind:?}");
}

#[test]
fn a_same_epoch_recovery_with_a_record_no_leader_appended_fires_one_leader() {
    let (_, out) = same_epoch_truncation_undone(&[plain(1, 10), plain(1, 11), plain(1, 13)]);
    assert!(fired(&out, K_ONE_LEADER), "{out:?}");
}
