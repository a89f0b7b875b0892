//! Records a leader of a later epoch made the committed history again: after a same-epoch
//! lossy re-appointment abandoned them, a replica that kept them is elected cleanly in a
//! newer epoch and its HW commits them anew. A follower still in an older epoch, whose
//! leader holds another history there, truncates them at that leader's diverging epoch
//! (Kafka's fetcher acts on any answer of the leader of its current epoch, and it has not
//! heard of the newer one yet), then fetches them back from the newer leader. Kafka-nemesis
//! seed 204772 (scenarios/regressions/kafka-nemesis-seed204772.json).

use super::*;

/// Epoch 1 led by broker 0: 10, 11 and 12 committed on brokers 0, 1 and 2. Broker 0 loses
/// 11 and 12 to a power loss and is appointed to epoch 1 again (the history restarts at
/// offset 1); then it leads epoch 2 (ISR {0, 1}) and appends 20. Broker 1, which kept the
/// abandoned 11 and 12 and never fetched in epoch 2, is elected for epoch 3 and its HW
/// commits them again. Broker 2 holds them too, still following broker 0 in `f_epoch`.
fn readopted_then_cut_by_a_follower_of_epoch(f_epoch: u32) -> Vec<Finding> {
    let mut w = World::new(1);
    assert_eq!(w.zk(Some(0), 1, &[0, 1, 2], 1, 1), vec![]);
    let old = [plain(1, 10), plain(1, 11), plain(1, 12)];
    let l = w.leader(0, &old, 0, 1, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    for b in [1, 2] {
        let f = w.follower(b, &old, 3, 0, 1);
        assert_eq!(w.broker(b, 0, f), vec![]);
    }
    let l = w.leader(0, &old, 3, 1, &[0, 1, 2]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 3);
    // The restart kept only 10; re-appointed to epoch 1, then epoch 2.
    let r = w.replica(0, &[plain(1, 10)], 1);
    assert_eq!(w.broker(0, 1, r), vec![]);
    let l = w.leader(0, &[plain(1, 10)], 1, 1, &[0, 1, 2]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    assert!(w.mon.lossy_elections()[0].again);
    assert_eq!(w.zk(Some(0), 2, &[0, 1], 1, 1), vec![]);
    let l = w.leader(0, &[plain(1, 10), plain(2, 20)], 1, 2, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    // Broker 0 is gone; broker 1 leads epoch 3 with the abandoned records: its HW (3)
    // commits them again.
    assert_eq!(w.zk(Some(1), 3, &[1], 1, 1), vec![]);
    let l = w.leader(1, &old, 3, 3, &[1]);
    assert_eq!(w.broker(1, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 3);
    // Broker 2's fetch answered with a diverging epoch (1, 1) cuts 11 and 12.
    let f = w.follower(
        2,
        &[plain(1, 10)],
        3,
        if f_epoch == 3 { 1 } else { 0 },
        f_epoch,
    );
    w.broker(2, 0, f)
}

#[test]
fn a_follower_of_an_older_epoch_may_cut_records_a_newer_leader_committed_again() {
    assert_eq!(readopted_then_cut_by_a_follower_of_epoch(2), vec![]);
}

/// The same cut by a follower of the epoch that committed them again removes committed
/// records: k-hw-mono still fires.
#[test]
fn a_follower_of_the_readopting_epoch_cutting_them_fires() {
    let out = readopted_then_cut_by_a_follower_of_epoch(3);
    assert!(fired(&out, K_HW_MONO), "{out:?}");
}
