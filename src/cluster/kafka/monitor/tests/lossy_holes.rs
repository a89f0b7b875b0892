//! A committed history restarted by a lossy election over a leader whose log has a hole:
//! kafka-nemesis seed 500058 (scenarios/regressions/kafka-nemesis-seed500058.json). Epoch 1
//! commits 10 and 11 on brokers 0-2; broker 2 (the leader) and broker 1 lose them at power
//! losses, and broker 2 is appointed to epoch 1 again (KIP-966's same-epoch shape) and
//! writes 20-22 in one batch, which broker 1 copies. Broker 2's controlled shutdown moves
//! the partition to broker 0 in epoch 2 with 10 and 11 (adopted as the history). Broker 1's
//! fetch is answered the diverging epoch (1, 2): it truncates to 2 inside its batch, which
//! goes whole (`LocalLog.truncateTo`), leaving LEO 2 over a hole, and the leader's HW
//! reaches 2 over it. Broker 0 halts and broker 1 leads epoch 3 from the ISR: a lossy
//! election (it held the abandoned history), so the history restarts at 0 with its log,
//! holes included, and broker 0, which keeps 10 and 11 where that log has holes of the same
//! epoch, is a same-epoch fork. Each allowed step has a twin where k-log-match must fire.

use super::super::tests_holes::{log, Bs};
use super::*;

fn replica(w: &mut World, me: BrokerId, batches: Bs, cut: Option<u64>, hw: u64) -> Replica {
    let l = log(w, me, batches, cut);
    Replica::new(tp(), me, l, hw, &[])
}

fn leads(w: &mut World, mut r: Replica, epoch: u32, isr: &[BrokerId]) -> Replica {
    r.become_leader(&mut w.disk, &state(r.me, epoch, isr), 0)
        .unwrap();
    r
}

fn follows(w: &mut World, mut r: Replica, leader: BrokerId, epoch: u32) -> Replica {
    r.become_follower(&mut w.disk, &state(leader, epoch, &[leader, r.me]))
        .unwrap();
    r
}

/// Broker 1's log after the truncation inside its batch: LEO 2, no record below it.
const CUT: (Bs, Option<u64>) = (&[(0, 1, &[20, 21, 22])], Some(2));

/// Up to broker 1 leading epoch 3 with its holes (HW 2), findings asserted empty.
fn elected_over_holes() -> World {
    let mut w = World::new(1);
    let h1 = H1;
    assert_eq!(w.zk(Some(2), 1, &[2, 0, 1], 1, 1), vec![]);
    for hw in [0, 2] {
        let r = replica(&mut w, 2, h1, None, hw);
        let l = leads(&mut w, r, 1, &[2, 0, 1]);
        assert_eq!(w.broker(2, 0, l), vec![]);
        for b in [0, 1] {
            let r = replica(&mut w, b, h1, None, hw);
            let f = follows(&mut w, r, 2, 1);
            assert_eq!(w.broker(b, 0, f), vec![]);
        }
    }
    assert_eq!(w.mon.committed_records(), 2);
    // Power losses: broker 2 comes back empty, broker 1 with 10 only; broker 2 leads epoch
    // 1 again and writes 20-22 in one batch.
    let r = replica(&mut w, 2, &[], None, 0);
    assert_eq!(w.broker(2, 1, r), vec![]);
    let r = replica(&mut w, 1, &h1[..1], None, 1);
    assert_eq!(w.broker(1, 1, r), vec![]);
    let h2: Bs = &[(0, 1, &[20, 21, 22])];
    for batches in [&[][..], h2] {
        let r = replica(&mut w, 2, batches, None, 0);
        let l = leads(&mut w, r, 1, &[2, 0, 1]);
        assert_eq!(w.broker(2, 1, l), vec![]);
    }
    assert_eq!(w.mon.lossy_elections().len(), 1);
    // Broker 1 truncates to 0 (the leader's epoch 1 ends there) and copies the batch.
    for batches in [&[][..], h2] {
        let r = replica(&mut w, 1, batches, None, 0);
        let f = follows(&mut w, r, 2, 1);
        assert_eq!(w.broker(1, 1, f), vec![]);
    }
    // Epoch 2: broker 0 leads with 10 and 11 (adopted), broker 1 cuts inside its batch.
    assert_eq!(w.zk(Some(0), 2, &[0, 1], 1, 1), vec![]);
    let r = replica(&mut w, 0, h1, None, 2);
    let l = leads(&mut w, r, 2, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    for hw in [0, 2] {
        let r = replica(&mut w, 1, CUT.0, CUT.1, hw);
        let f = follows(&mut w, r, 0, 2);
        assert_eq!(w.broker(1, 1, f), vec![]);
    }
    assert_eq!(w.mon.committed_records(), 2);
    // Broker 0 halts; broker 1 is elected for epoch 3 from ZooKeeper's ISR.
    assert_eq!(w.zk(Some(1), 3, &[1], 1, 1), vec![]);
    let r = replica(&mut w, 1, CUT.0, CUT.1, 2);
    let l = leads(&mut w, r, 3, &[1]);
    assert_eq!(w.broker(1, 1, l), vec![]);
    w
}

/// Broker 1 leading epoch 3 (ISR {1, 0}) over its holes with 30 appended at 2, HW `hw`.
fn leading_with_30(w: &mut World, hw: u64) -> Replica {
    let mut l = log(w, 1, CUT.0, CUT.1);
    l.append_as_follower(&mut w.disk, &[batch(2, 3, 30)])
        .unwrap();
    let r = Replica::new(tp(), 1, l, hw, &[]);
    leads(w, r, 3, &[1, 0])
}

fn batch(base: u64, epoch: u32, value: u64) -> Batch {
    Batch {
        base_offset: base,
        leader_epoch: epoch,
        producer: ProducerStamp::NONE,
        records: vec![Record { key: 0, value }].into(),
    }
}

const H1: Bs = &[(0, 1, &[10]), (1, 1, &[11])];

#[test]
fn a_lossy_election_of_a_leader_with_holes_restarts_the_history_with_its_holes() {
    let mut w = elected_over_holes();
    let e = w
        .mon
        .lossy_elections()
        .last()
        .cloned()
        .expect("a lossy election");
    assert_eq!((e.leader, e.leader_epoch, e.lost_from), (1, 3, 0));
    assert_eq!(e.committed_lost, 2);
    assert_eq!(w.mon.parts[0].canon.len(), 2);
    assert_eq!(w.mon.committed_records(), 0);
    // The leader appends 30 at 2; broker 0 comes back (its page cache kept 10 and 11), finds
    // no divergence (the leader's epoch 1 ends at 2, as its own) and copies 30 on top.
    let l = leading_with_30(&mut w, 2);
    assert_eq!(w.broker(1, 1, l), vec![]);
    let forked: Bs = &[(0, 1, &[10]), (1, 1, &[11]), (2, 3, &[30])];
    for (batches, hw) in [(H1, 2), (forked, 3)] {
        let r = replica(&mut w, 0, batches, None, hw);
        let f = follows(&mut w, r, 1, 3);
        assert_eq!(w.broker(0, 1, f), vec![]);
    }
    let fork = &w.mon.allowed_losses().forked_replicas;
    assert!(
        fork.iter().any(|f| (f.broker, f.from_offset) == (0, 0)),
        "{fork:?}"
    );
    let behind = w.mon.left_behind();
    assert!(
        behind[&tp()][&0].contains("forked from offset 0"),
        "{behind:?}"
    );
    // The leader's HW passes 30: committed after the holes.
    let l = leading_with_30(&mut w, 3);
    assert_eq!(w.broker(1, 1, l), vec![]);
    assert_eq!(w.mon.committed_records(), 1);
    assert_eq!(w.mon.parts[0].canon.len(), 3);
    // Broker 2, which kept 20-22, is answered the diverging epoch (1, 2) too and cuts to
    // the same hole: it holds what the history holds, so it is no fork and must converge.
    let h2: Bs = &[(0, 1, &[20, 21, 22])];
    let r = replica(&mut w, 2, h2, Some(2), 0);
    let f = follows(&mut w, r, 1, 3);
    assert_eq!(w.broker(2, 1, f), vec![]);
    let mut l = log(&mut w, 2, h2, Some(2));
    l.append_as_follower(&mut w.disk, &[batch(2, 3, 30)])
        .unwrap();
    let f = follows(&mut w, Replica::new(tp(), 2, l, 3, &[]), 1, 3);
    assert_eq!(w.broker(2, 1, f), vec![]);
    let behind = w.mon.left_behind();
    assert!(!behind[&tp()].contains_key(&2), "{behind:?}");
    assert_eq!(w.mon.allowed_losses().forked_replicas.len(), 1);
}

/// The twin: broker 0 cut to the point of loss (its fetch found the divergence), so it is
/// no fork, then holds 10 and 11 again below its HW where the history has holes.
#[test]
fn records_where_the_history_has_holes_fire_without_a_fork_to_excuse_them() {
    let mut w = elected_over_holes();
    let r = replica(&mut w, 0, &[], None, 0);
    let f = follows(&mut w, r, 1, 3);
    assert_eq!(w.broker(0, 1, f), vec![]);
    let r = replica(&mut w, 0, H1, None, 2);
    let f = follows(&mut w, r, 1, 3);
    let out = w.broker(0, 1, f);
    assert!(fired(&out, K_LOG_MATCH), "{out:?}");
    assert!(
        out.iter().any(|f| f.message.contains("has a hole there")),
        "{out:?}"
    );
}

/// A hole the history may take is a lossy election's leader's: a leader no lossy election
/// made (here broker 1, cut inside a batch of the epoch it followed, and elected cleanly)
/// exposing its HW over a hole still fires, as a record owed there.
#[test]
fn a_hole_below_a_cleanly_elected_leaders_hw_fires() {
    let mut w = World::new(1);
    assert_eq!(w.zk(Some(0), 1, &[0, 1], 1, 1), vec![]);
    let r = replica(
        &mut w,
        0,
        &[(0, 1, &[10]), (1, 1, &[11]), (2, 1, &[12])],
        None,
        0,
    );
    let l = leads(&mut w, r, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let fetched: Bs = &[(0, 1, &[10]), (1, 1, &[11, 12])];
    for cut in [None, Some(2)] {
        let r = replica(&mut w, 1, fetched, cut, 0);
        let f = follows(&mut w, r, 0, 1);
        assert_eq!(w.broker(1, 0, f), vec![]);
    }
    assert_eq!(w.zk(Some(1), 2, &[1, 0], 1, 1), vec![]);
    let r = replica(&mut w, 1, fetched, Some(2), 2);
    let l = leads(&mut w, r, 2, &[1, 0]);
    let out = w.broker(1, 0, l);
    assert!(fired(&out, K_LOG_MATCH), "{out:?}");
    assert!(w.mon.lossy_elections().is_empty());
}
