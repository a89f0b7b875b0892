//! A replica that lost committed records at a restart is excused (as an allowed loss) until
//! it holds them again by content, not by its LEO: kafka-nemesis seed 539030
//! (scenarios/regressions/kafka-nemesis-seed539030.json). Broker 2 came back from a power
//! loss without committed records; a LeaderAndIsr of an epoch ZooKeeper had already moved
//! past reached it late, and as that stale leader it appended producers' records over the
//! offsets it had lost, its LEO passing the committed offset. Then the newer epoch's
//! LeaderAndIsr made it leader from the ISR it had never left: real Kafka elects it so
//! (KIP-966's unflushed-data loss), and the loss is allowed by `log.flush.interval.*`
//! unset, with a flush per append it is not.

use super::*;

/// Values 10 and 11 committed in epoch 1 (broker 0 leading, ISR {0, 1}); broker 1 restarts
/// with 11 lost, then leads epoch 2 late (ZooKeeper already holds epoch 3, broker 1 alone
/// in the ISR) and appends 30 and 31 from offset 1. Returns the findings of its election
/// in epoch 3 on that log.
fn stale_leader_over_its_loss(w: &mut World) -> Vec<Finding> {
    w.committed_two();
    let f = w.replica(1, &[plain(1, 10)], 1);
    assert_eq!(w.broker(1, 1, f), vec![]);
    assert_eq!(w.mon.data_losses().len(), 1);
    assert_eq!(w.zk(Some(1), 2, &[1, 0], 1, 1), vec![]);
    assert_eq!(w.zk(Some(1), 3, &[1], 1, 1), vec![]);
    let own = [plain(1, 10), plain(2, 30), plain(2, 31)];
    let stale = w.leader(1, &own, 1, 2, &[1, 0]);
    assert_eq!(w.broker(1, 1, stale), vec![]);
    // Its LEO (3) passed the committed offset (2) over other records: still owed.
    assert_eq!(w.mon.parts[0].mons.get(&1).unwrap().lost_from, Some(1));
    let l = w.leader(1, &own, 1, 3, &[1]);
    w.broker(1, 1, l)
}

#[test]
fn a_replica_whose_own_records_outgrew_its_loss_is_still_excused_as_having_lost_them() {
    let mut w = World::new(1);
    assert_eq!(stale_leader_over_its_loss(&mut w), vec![]);
    let e = &w.mon.lossy_elections()[0];
    assert_eq!(
        (e.leader, e.leader_epoch, e.lost_from, e.unclean),
        (1, 3, 1, false)
    );
}

#[test]
fn the_same_loss_with_a_flush_per_append_fires() {
    let mut w = World::new(1);
    w.flush_each();
    let out = stale_leader_over_its_loss(&mut w);
    assert!(fired(&out, K_LEADER_COMPLETE), "{out:?}");
    assert!(
        out[0].message.contains("log.flush.interval.messages=1"),
        "{out:?}"
    );
}

#[test]
fn a_replica_that_fetched_its_lost_records_back_is_excused_no_more() {
    let mut w = World::new(1);
    w.committed_two();
    let f = w.replica(1, &[plain(1, 10)], 1);
    assert_eq!(w.broker(1, 1, f), vec![]);
    let f = w.follower(1, &[plain(1, 10), plain(1, 11)], 2, 0, 1);
    assert_eq!(w.broker(1, 1, f), vec![]);
    assert_eq!(w.mon.parts[0].mons.get(&1).unwrap().lost_from, None);
    // Elected again lacking 11 (a log no restart explains): k-leader-complete.
    w.zk(Some(1), 2, &[1], 1, 1);
    let n = w.leader(1, &[plain(1, 10), plain(2, 30)], 2, 2, &[1]);
    let out = w.broker(1, 1, n);
    assert!(fired(&out, K_LEADER_COMPLETE), "{out:?}");
}

/// Kafka-nemesis seed 467083 (scenarios/regressions/kafka-nemesis-seed467083.json): broker
/// 2 held 20 and 21 at offsets 1 and 2 (epoch 1, never committed), truncated them when
/// broker 1 led epoch 2 and fetched 30 and 31 there, all committed. A power loss undoes the
/// truncation (never fsynced) and loses the fetched records: its log is back to its old
/// one, LEO 3 as the committed history's but other records. Its next fetch truncates it to
/// 1, below the committed offset, while it is in ZooKeeper's ISR (the leader counted it at
/// its last fetch offset): excused as the restart's loss until it fetches them back.
fn given_back_up_to_the_committed_offset() -> World {
    let mut w = World::new(2);
    let old = [plain(1, 10), plain(1, 20), plain(1, 21)];
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
    assert_eq!(w.broker(2, 1, back), vec![]);
    assert_eq!(w.mon.data_losses().len(), 1);
    w
}

#[test]
fn an_isr_member_a_power_loss_gave_old_records_back_is_excused_until_it_fetches_the_committed_ones()
{
    let mut w = given_back_up_to_the_committed_offset();
    let f = w.follower(2, &[plain(1, 10)], 1, 1, 2);
    assert_eq!(w.broker(2, 1, f), vec![]);
    let f = w.follower(2, &[plain(1, 10), plain(2, 30), plain(2, 31)], 3, 1, 2);
    assert_eq!(w.broker(2, 1, f), vec![]);
    assert_eq!(w.mon.parts[0].mons.get(&2).unwrap().lost_from, None);
    // Caught up by content, the excuse is gone: below the committed offset again, it fires.
    let f = w.follower(2, &[plain(1, 10)], 3, 1, 2);
    let out = w.broker(2, 1, f);
    assert!(fired(&out, K_LEADER_COMPLETE), "{out:?}");
}

/// Kafka-nemesis seed 718133 (scenarios/regressions/kafka-nemesis-seed718133.json): broker
/// 1 held 20 and 21 at offsets 1 and 2 (epoch 1, never committed), truncated them under
/// broker 2's epoch 2 and fetched 20 anew there (the producer's retry), not yet committed.
/// A power loss undoes the truncation and loses the fetched record: its log is its old one,
/// LEO 3, with the committed history at 1. Broker 2 then commits offset 1 counting broker
/// 1 at its last fetch offset, 2, and broker 1's next fetch truncates it to 1, below the
/// committed offset, while it is in ZooKeeper's ISR: the restart's loss, allowed by
/// `log.flush.interval.*` unset. Its loss was cleared at the restart itself, when nothing
/// from its loss up was committed yet, and this fired k-leader-complete.
#[test]
fn a_loss_of_records_committed_only_after_the_restart_stays_excused_until_they_are_back() {
    let mut w = World::new(2);
    let old = [plain(1, 10), plain(1, 20), plain(1, 21)];
    assert_eq!(w.zk(Some(0), 1, &[0, 1, 2], 1, 1), vec![]);
    let l = w.leader(0, &old, 0, 1, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &old, 0, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let f = w.follower(2, &old[..1], 0, 0, 1);
    assert_eq!(w.broker(2, 0, f), vec![]);
    let l = w.leader(0, &old, 1, 1, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.zk(Some(2), 2, &[2, 1], 1, 1), vec![]);
    let new = [plain(1, 10), plain(2, 20)];
    let l = w.leader(2, &new, 1, 2, &[2, 1]);
    assert_eq!(w.broker(2, 0, l), vec![]);
    let f = w.follower(1, &new, 1, 2, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    assert_eq!(w.mon.committed_records(), 1);
    let back = w.replica(1, &old, 1);
    assert_eq!(w.broker(1, 1, back), vec![]);
    assert_eq!(w.mon.data_losses().len(), 1);
    // Nothing from the loss up is committed yet: no content says it caught up.
    assert_eq!(w.mon.parts[0].mons.get(&1).unwrap().lost_from, Some(1));
    let l = w.leader(2, &new, 2, 2, &[2, 1]);
    assert_eq!(w.broker(2, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 2);
    let f = w.follower(1, &new[..1], 1, 2, 2);
    assert_eq!(w.broker(1, 1, f), vec![]);
    let f = w.follower(1, &new, 2, 2, 2);
    assert_eq!(w.broker(1, 1, f), vec![]);
    assert_eq!(w.mon.parts[0].mons.get(&1).unwrap().lost_from, None);
    // Caught up by content, the excuse is gone: below the committed offset again, it fires.
    let f = w.follower(1, &new[..1], 2, 2, 2);
    let out = w.broker(1, 1, f);
    assert!(fired(&out, K_LEADER_COMPLETE), "{out:?}");
}
