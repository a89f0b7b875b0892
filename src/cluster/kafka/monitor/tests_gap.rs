//! A member of ZooKeeper's ISR below the committed offset because a new leader's log was
//! adopted as the history (kafka-nemesis seed 120959, [`super::gap`]): the allowed shape,
//! and next to it the shapes that must still fire k-leader-complete.

use super::tests::{fired, plain, state, tp, World};
use super::tests_holes::{log, Bs};
use super::*;
use crate::kafka::replica::Replica;

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

/// Broker `me`'s replica of the given batches, cut to `cut` if given (a cut inside a batch
/// leaves a hole up to it, as `Log::truncate_to` does).
fn hole_log(w: &mut World, me: BrokerId, batches: Bs, cut: Option<u64>, hw: u64) -> Replica {
    Replica::new(tp(), me, log(w, me, batches, cut), hw, &[])
}

fn hole_follower(
    w: &mut World,
    me: BrokerId,
    batches: Bs,
    cut: Option<u64>,
    leader: BrokerId,
    epoch: u32,
) -> Replica {
    let mut r = hole_log(w, me, batches, cut, 0);
    r.become_follower(&mut w.disk, &state(leader, epoch, &[leader, me]))
        .unwrap();
    r
}

/// Values 10, 11, 12 of epoch 1, one batch each.
const OLD: [(u64, u32, &[u64]); 3] = [(0, 1, &[10]), (1, 1, &[11]), (2, 1, &[12])];
/// Broker 0's log after its re-appointment: 10, then 20-22 in one batch.
const NEW: [(u64, u32, &[u64]); 2] = [(0, 1, &[10]), (1, 1, &[20, 21, 22])];

/// kafka-nemesis seed 159432, shrunk: broker 0 leads epoch 1 (ISR [0, 1, 2]) and commits
/// 10-12 on all three. It restarts having flushed 10 only, is appointed to epoch 1 again
/// and writes 20-22 in one batch, committed to 2 (the followers' fetch offset 3 counts).
/// Under a controlled shutdown broker 2 is elected for epoch 2 (ISR [2, 1]) with 10-12
/// and its HW of 2: 12 is committed again once broker 1 fetches. Broker 0 follows it; its
/// fetch (lastFetchedEpoch 1) is answered the diverging epoch (1, 3), and it cuts its log
/// to 3 inside its batch 20-22: the LEO is 3 over a hole from 1. Its fetch from 3 adds it
/// to ZooKeeper's ISR. Then it restarts: recovery ends its log at 1.
fn dropped_hole() -> (World, Vec<Finding>) {
    let mut w = World::new(1);
    assert_eq!(w.zk(Some(0), 1, &[0, 1, 2], 1, 1), vec![]);
    let l = w.leader(
        0,
        &[plain(1, 10), plain(1, 11), plain(1, 12)],
        0,
        1,
        &[0, 1, 2],
    );
    assert_eq!(w.broker(0, 0, l), vec![]);
    for b in [1, 2] {
        let f = hole_follower(&mut w, b, &OLD, None, 0, 1);
        assert_eq!(w.broker(b, 0, f), vec![]);
    }
    let l = w.leader(
        0,
        &[plain(1, 10), plain(1, 11), plain(1, 12)],
        3,
        1,
        &[0, 1, 2],
    );
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 3);
    // The power loss, the re-appointment to epoch 1 and the new batch, committed to 3.
    let r = hole_log(&mut w, 0, &OLD[..1], None, 1);
    assert_eq!(w.broker(0, 1, r), vec![]);
    for (batches, hw) in [(&NEW[..1], 1), (&NEW[..], 1), (&NEW[..], 3)] {
        let mut r = hole_log(&mut w, 0, batches, None, hw);
        r.become_leader(&mut w.disk, &state(0, 1, &[0, 1, 2]), 0)
            .unwrap();
        assert_eq!(w.broker(0, 1, r), vec![]);
    }
    // Epoch 2: broker 2 leads with 10-12 and its HW of 2; broker 1's fetch commits 12.
    assert_eq!(w.zk(Some(2), 2, &[2, 1], 1, 1), vec![]);
    let old = [plain(1, 10), plain(1, 11), plain(1, 12)];
    let l = w.leader(2, &old, 2, 2, &[2, 1]);
    assert_eq!(w.broker(2, 0, l), vec![]);
    let l = w.leader(2, &old, 3, 2, &[2, 1]);
    assert_eq!(w.broker(2, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 3);
    // Broker 0 follows it, then truncates to 3 inside its batch.
    let f = hole_follower(&mut w, 0, &NEW, None, 2, 2);
    assert_eq!(w.broker(0, 1, f), vec![]);
    let f = hole_follower(&mut w, 0, &NEW, Some(3), 2, 2);
    assert_eq!(f.log_end_offset(), 3);
    assert_eq!(w.broker(0, 1, f), vec![]);
    let l = w.leader(2, &old, 3, 2, &[2, 1, 0]);
    assert_eq!(w.broker(2, 0, l), vec![]);
    assert_eq!(w.zk(Some(2), 2, &[2, 1, 0], 1, 1), vec![]);
    // The restart: its log ends at 1.
    let f = hole_follower(&mut w, 0, &NEW[..1], None, 2, 2);
    let out = w.broker(0, 2, f);
    (w, out)
}

#[test]
fn an_isr_member_whose_restart_dropped_a_hole_at_its_end_is_excused_until_it_fetches_it() {
    let (mut w, out) = dropped_hole();
    assert_eq!(out, vec![]);
    // It fetches 11 and 12 from broker 2: the debt is paid, and a drop again fires.
    let f = hole_follower(&mut w, 0, &OLD, None, 2, 2);
    assert_eq!(w.broker(0, 2, f), vec![]);
    let f = hole_follower(&mut w, 0, &OLD[..1], None, 2, 2);
    assert!(fired(&w.broker(0, 2, f), K_LEADER_COMPLETE));
}

#[test]
fn a_dropped_hole_refilled_with_other_records_or_outgrown_by_the_history_fires() {
    // After the restart broker 0 takes 20 again at 1 (not the committed 11).
    let (mut w, _) = dropped_hole();
    let f = hole_follower(&mut w, 0, &[(0, 1, &[10]), (1, 1, &[20])], None, 2, 2);
    assert!(fired(&w.broker(0, 2, f), K_LEADER_COMPLETE));

    // Broker 2 commits 13 at offset 3, past the LEO the hole reached: its HW may pass it
    // only over a fetch of broker 0's from there, which it never made.
    let (mut w, _) = dropped_hole();
    let log = [plain(1, 10), plain(1, 11), plain(1, 12), plain(2, 13)];
    let l = w.leader(2, &log, 4, 2, &[2, 1, 0]);
    let _ = w.broker(2, 0, l);
    assert_eq!(w.mon.committed_records(), 4);
    let f = hole_follower(&mut w, 0, &[(0, 1, &[10]), (1, 1, &[11])], None, 2, 2);
    assert!(fired(&w.broker(0, 2, f), K_LEADER_COMPLETE));
}
