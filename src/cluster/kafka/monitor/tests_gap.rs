//! A member of ZooKeeper's ISR below the committed offset because a new leader's log was
//! adopted as the history (kafka-nemesis seed 120959, [`super::gap`]): the allowed shape,
//! and next to it the shapes that must still fire k-leader-complete.

use super::tests::{fired, plain, World};
use super::*;

/// Epoch-0 records 10..13 of leader 2, committed on all three brokers.
const E0: [(u32, u64, i64, i32); 4] = [
    (0, 10, -1, -1),
    (0, 11, -1, -1),
    (0, 12, -1, -1),
    (0, 13, -1, -1),
];

/// kafka-nemesis seed 120959, shrunk: broker 2 leads epoch 0 and commits 10..13 on all
/// three replicas. Brokers 2 and 1 lose 12 and 13 to a power loss; broker 2 leads epoch 1
/// (ISR [2, 0], a lossy election: the history restarts at 2) and appends 20 and 21, which
/// broker 1 fetches and rejoins the ISR with; broker 0 never fetches in epoch 1 and keeps
/// 12 and 13 under its HW of 4. Broker 0 is elected for epoch 2 (ISR [0, 1]) with them:
/// its HW commits 12 and 13 again, which broker 1 lacks (it holds 20 and 21 there).
fn adopted() -> World {
    let mut w = World::new(2);
    assert_eq!(w.zk(Some(2), 0, &[2, 0, 1], 1, 1), vec![]);
    let l = w.leader(2, &E0, 0, 0, &[2, 0, 1]);
    assert_eq!(w.broker(2, 0, l), vec![]);
    for b in [0, 1] {
        let f = w.follower(b, &E0, 0, 2, 0);
        assert_eq!(w.broker(b, 0, f), vec![]);
    }
    let l = w.leader(2, &E0, 4, 0, &[2, 0, 1]);
    assert_eq!(w.broker(2, 0, l), vec![]);
    let f = w.follower(0, &E0, 4, 2, 0);
    assert_eq!(w.broker(0, 0, f), vec![]);
    assert_eq!(w.mon.committed_records(), 4);
    // The power losses.
    for b in [2, 1] {
        let back = w.replica(b, &E0[..2], 2);
        assert_eq!(w.broker(b, 1, back), vec![]);
    }
    // Epoch 1: broker 2 leads without 12 and 13 (allowed: lost at its restart).
    assert_eq!(w.zk(Some(2), 1, &[2, 0], 1, 1), vec![]);
    let e1 = [E0[0], E0[1], plain(1, 20), plain(1, 21)];
    let l = w.leader(2, &e1[..2], 2, 1, &[2, 0]);
    assert_eq!(w.broker(2, 1, l), vec![]);
    assert_eq!(w.mon.committed_records(), 2);
    let l = w.leader(2, &e1, 2, 1, &[2, 0, 1]);
    assert_eq!(w.broker(2, 1, l), vec![]);
    let f = w.follower(1, &e1, 2, 2, 1);
    assert_eq!(w.broker(1, 1, f), vec![]);
    assert_eq!(w.zk(Some(2), 1, &[2, 0, 1], 1, 1), vec![]);
    // Epoch 2: broker 0 leads with its epoch-0 records and its HW of 4.
    assert_eq!(w.zk(Some(0), 2, &[0, 1], 1, 1), vec![]);
    let l = w.leader(0, &E0, 4, 2, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 4);
    // Broker 1 follows it, still holding 20 and 21 (its LEO reaches the committed offset).
    let f = w.follower(1, &e1, 2, 0, 2);
    assert_eq!(w.broker(1, 1, f), vec![]);
    w
}

/// Broker 1's first fetch in epoch 2 (lastFetchedEpoch 1) is answered the diverging epoch
/// (0, 4): it truncates to its own end of epoch 0, offset 2, below the committed 4.
fn truncated(w: &mut World) -> Vec<Finding> {
    let f = w.follower(1, &E0[..2], 2, 0, 2);
    w.broker(1, 1, f)
}

#[test]
fn an_isr_member_lacking_what_an_adopted_leader_log_commits_is_excused_until_it_fetches_it() {
    let mut w = adopted();
    assert_eq!(truncated(&mut w), vec![]);
    // It fetches 12 and 13 back: the gap is closed.
    let f = w.follower(1, &E0, 4, 0, 2);
    assert_eq!(w.broker(1, 1, f), vec![]);
    assert_eq!(w.mon.committed_records(), 4);
}

#[test]
fn an_isr_member_below_the_committed_offset_without_an_adoption_fires() {
    // A clean election with nothing adopted: broker 1 of ISR [0, 1] drops 12 and 13.
    let mut w = World::new(2);
    assert_eq!(w.zk(Some(0), 0, &[0, 1], 1, 1), vec![]);
    let l = w.leader(0, &E0, 0, 0, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &E0, 4, 0, 0);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let l = w.leader(0, &E0, 4, 0, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.zk(Some(0), 1, &[0, 1], 1, 1), vec![]);
    let l = w.leader(0, &E0, 4, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &E0[..2], 2, 0, 1);
    assert!(fired(&w.broker(1, 0, f), K_LEADER_COMPLETE));

    // After the adoption, a truncation below the first record broker 1 lacked (it held 11
    // at offset 1 in common with the new leader) is no divergence's.
    let mut w = adopted();
    let f = w.follower(1, &E0[..1], 1, 0, 2);
    assert!(fired(&w.broker(1, 1, f), K_LEADER_COMPLETE));
}

#[test]
fn an_adopted_gap_refilled_with_other_records_than_the_committed_ones_fires() {
    // After the truncation broker 1 takes its old epoch-1 record 20 at offset 2 again (a
    // fetch from the deposed epoch-1 leader): it is not refilling the adopted history.
    let mut w = adopted();
    assert_eq!(truncated(&mut w), vec![]);
    let f = w.follower(1, &[E0[0], E0[1], plain(1, 20)], 2, 0, 2);
    assert!(fired(&w.broker(1, 1, f), K_LEADER_COMPLETE));

    // Broker 1 fetches 12 back, then takes epoch-1 record 21 at offset 3 where 13 is
    // committed: its LEO reaches the committed offset, but the gap is not closed (the
    // records differ) and the excuse is gone. Dropping 21 again leaves it below.
    let mut w = adopted();
    assert_eq!(truncated(&mut w), vec![]);
    let f = w.follower(1, &E0[..3], 2, 0, 2);
    assert_eq!(w.broker(1, 1, f), vec![]);
    let f = w.follower(1, &[E0[0], E0[1], E0[2], plain(1, 21)], 2, 0, 2);
    let out = w.broker(1, 1, f);
    assert!(
        out.iter().all(|f| f.invariant != K_LEADER_COMPLETE),
        "{out:?}"
    );
    let f = w.follower(1, &E0[..3], 2, 0, 2);
    assert!(fired(&w.broker(1, 1, f), K_LEADER_COMPLETE));
}

#[test]
fn an_adopted_gap_closed_then_reopened_without_an_adoption_fires() {
    let mut w = adopted();
    assert_eq!(truncated(&mut w), vec![]);
    let f = w.follower(1, &E0, 4, 0, 2);
    assert_eq!(w.broker(1, 1, f), vec![]);
    // Broker 1 drops 12 and 13 again: nothing was adopted since.
    let f = w.follower(1, &E0[..2], 2, 0, 2);
    assert!(fired(&w.broker(1, 1, f), K_LEADER_COMPLETE));
}

#[test]
fn an_adopted_gap_does_not_cover_a_history_grown_past_the_adopted_hw() {
    // Broker 0 commits 14 at offset 4 while broker 1 still lacks 12 and 13: its HW
    // passed what the adoption exposed, which a leader of epoch 2 may do only over fetches
    // of epoch 2 (KAFKA-13141: a diverging fetch's offset taken as the follower's LEO).
    let mut w = adopted();
    assert_eq!(truncated(&mut w), vec![]);
    let mut log = E0.to_vec();
    log.push(plain(2, 14));
    let l = w.leader(0, &log, 5, 2, &[0, 1]);
    let _ = w.broker(0, 0, l);
    assert_eq!(w.mon.committed_records(), 5);
    let f = w.follower(1, &E0[..3], 2, 0, 2);
    assert!(fired(&w.broker(1, 1, f), K_LEADER_COMPLETE));
}
