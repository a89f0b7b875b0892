//! Holes in a replica's log: Kafka's `LocalLog.truncateTo` sets the LEO to the target even
//! when the batch straddling it goes whole, so the log has no records between the end of
//! its last batch kept and the LEO; a follower copying a leader's log across such a hole
//! gets it too. The monitor mirrors holes, lets k-dense accept only those a truncation
//! inside a batch (or a copy, or a restart giving one back) explains, and judges a hole
//! below the HW as the missing record it is. Each allowed shape has its bad twin.

use super::tests::{fired, state, tp, World};
use super::*;
use crate::kafka::log::batch::{Batch, ProducerStamp, Record};
use crate::kafka::log::LogConfig;
use crate::kafka::partition_log::PartitionLog;
use crate::kafka::replica::Replica;

/// Batches of epoch `e`: (base offset, values).
pub(super) type Bs<'a> = &'a [(u64, u32, &'a [u64])];

/// A log of the given batches (gaps between them are holes), then cut to `cut` if given.
pub(super) fn log(w: &mut World, me: BrokerId, batches: Bs, cut: Option<u64>) -> PartitionLog {
    let mut log = PartitionLog::new(&format!("h{me}/t-0"), LogConfig::default());
    let batches: Vec<Batch> = (batches.iter())
        .map(|&(base, e, values)| Batch {
            base_offset: base,
            leader_epoch: e,
            producer: ProducerStamp::NONE,
            records: values
                .iter()
                .map(|&value| Record { key: 0, value })
                .collect(),
        })
        .collect();
    log.append_as_follower(&mut w.disk, &batches).unwrap();
    if let Some(c) = cut {
        log.truncate_to(&mut w.disk, c);
    }
    log
}

fn follower(w: &mut World, me: BrokerId, batches: Bs, cut: Option<u64>, hw: u64) -> Replica {
    let l = log(w, me, batches, cut);
    let mut r = Replica::new(tp(), me, l, hw, &[]);
    r.become_follower(&mut w.disk, &state(0, 1, &[0, me]))
        .unwrap();
    r
}

fn leader(w: &mut World, batches: Bs, hw: u64) -> Replica {
    let l = log(w, 0, batches, None);
    let mut r = Replica::new(tp(), 0, l, hw, &[]);
    r.become_leader(&mut w.disk, &state(0, 1, &[0, 1]), 0)
        .unwrap();
    r
}

/// Broker 0 leads epoch 1 with values 10, 11, 12 in one batch each, nothing committed.
fn led() -> World {
    let mut w = World::new(1);
    assert_eq!(w.zk(Some(0), 1, &[0, 1], 1, 1), vec![]);
    let l = leader(&mut w, &[(0, 1, &[10]), (1, 1, &[11]), (2, 1, &[12])], 0);
    assert_eq!(w.broker(0, 0, l), vec![]);
    w
}

#[test]
fn a_hole_a_truncation_inside_a_batch_leaves_is_legal_and_one_without_fires() {
    let mut w = led();
    // Follower 1 fetched 10 then 11 and 12 in one batch; cut to 2 inside it, the LEO is
    // 2 over a hole at 1, and the next fetch appends 12 at 2.
    let f = follower(&mut w, 1, &[(0, 1, &[10]), (1, 1, &[11, 12])], None, 0);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let f = follower(&mut w, 1, &[(0, 1, &[10]), (1, 1, &[11, 12])], Some(2), 0);
    assert_eq!(f.log_end_offset(), 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let f = follower(&mut w, 1, &[(0, 1, &[10]), (2, 1, &[12])], None, 0);
    assert_eq!(w.broker(1, 0, f), vec![]);
    // A restart gives the hole back inside the log: known, still legal.
    let f = follower(&mut w, 1, &[(0, 1, &[10]), (2, 1, &[12])], None, 0);
    assert_eq!(w.broker(1, 1, f), vec![]);

    // A replica first seen with a hole at its end (no truncation of its own seen).
    let mut w = led();
    let f = follower(&mut w, 2, &[(0, 1, &[10]), (1, 1, &[11, 12])], Some(2), 0);
    assert!(fired(&w.broker(2, 0, f), K_DENSE));
    // A batch past the LEO that copies no hole of the leader's (which holds 11 there).
    let mut w = led();
    let f = follower(&mut w, 2, &[(0, 1, &[10])], None, 0);
    assert_eq!(w.broker(2, 0, f), vec![]);
    let f = follower(&mut w, 2, &[(0, 1, &[10]), (2, 1, &[12])], None, 0);
    assert!(fired(&w.broker(2, 0, f), K_DENSE));
}

/// A follower copying a leader's hole gets the same hole (Kafka's follower append takes a
/// first offset past its LEO).
#[test]
fn a_hole_copied_from_the_leader_is_legal() {
    let mut w = World::new(1);
    let first = [(0, 1, &[10u64][..]), (1, 1, &[11, 12][..])];
    assert_eq!(w.zk(Some(1), 1, &[1, 0], 1, 1), vec![]);
    let l = log(&mut w, 1, &first, None);
    let mut r = Replica::new(tp(), 1, l, 0, &[]);
    r.become_leader(&mut w.disk, &state(1, 1, &[1, 0]), 0)
        .unwrap();
    assert_eq!(w.broker(1, 0, r), vec![]);
    // Broker 0 fetched it, then cut inside the second batch (a hole at 1).
    for cut in [None, Some(2)] {
        let l = log(&mut w, 0, &first, cut);
        let mut r = Replica::new(tp(), 0, l, 0, &[]);
        r.become_follower(&mut w.disk, &state(1, 1, &[1, 0]))
            .unwrap();
        assert_eq!(w.broker(0, 0, r), vec![]);
    }
    // Broker 0 leads epoch 2 with its hole and appends 13 at 2.
    assert_eq!(w.zk(Some(0), 2, &[0, 2], 1, 1), vec![]);
    let l = log(&mut w, 0, &[(0, 1, &[10]), (2, 2, &[13])], None);
    let mut r = Replica::new(tp(), 0, l, 0, &[]);
    r.become_leader(&mut w.disk, &state(0, 2, &[0, 2]), 0)
        .unwrap();
    assert_eq!(w.broker(0, 0, r), vec![]);
    // Broker 2 copies it across the hole.
    for batches in [&[(0, 1, &[10u64][..])][..], &[(0, 1, &[10]), (2, 2, &[13])]] {
        let l = log(&mut w, 2, batches, None);
        let mut r = Replica::new(tp(), 2, l, 0, &[]);
        r.become_follower(&mut w.disk, &state(0, 2, &[0, 2]))
            .unwrap();
        assert_eq!(w.broker(2, 0, r), vec![]);
    }
}

/// A hole below the HW where the committed history holds a record: k-log-match (the
/// truncation that made it removed a committed record: k-hw-mono first).
#[test]
fn a_hole_below_the_hw_over_a_committed_record_fires() {
    let mut w = led();
    let f = follower(&mut w, 1, &[(0, 1, &[10]), (1, 1, &[11, 12])], None, 0);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let l = leader(&mut w, &[(0, 1, &[10]), (1, 1, &[11]), (2, 1, &[12])], 3);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 3);
    let f = follower(&mut w, 1, &[(0, 1, &[10]), (1, 1, &[11, 12])], Some(2), 0);
    assert!(fired(&w.broker(1, 0, f), K_HW_MONO));
    let f = follower(&mut w, 1, &[(0, 1, &[10]), (2, 1, &[12])], None, 3);
    assert!(fired(&w.broker(1, 0, f), K_LOG_MATCH));
}
