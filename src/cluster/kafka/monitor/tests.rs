//! Every Kafka online invariant made to fire on hand-built replica states, znodes and
//! producer histories fed to the monitor's entry points (the world's part is a loop over
//! `sim.node(..)` calling them), and the allowed losses recorded instead of reported.

use std::collections::BTreeMap;

use super::*;
use crate::kafka::client::record::{KafkaOp, KafkaOutcome, KafkaRecord};
use crate::kafka::config::Acks as AckMode;
use crate::kafka::log::batch::{Batch, ProducerStamp, Record};
use crate::kafka::log::LogConfig;
use crate::kafka::msg::PartitionState;
use crate::kafka::partition_log::PartitionLog;
use crate::kafka::replica::Replica;
use crate::kafka::zkdata::PartitionStateData;
use crate::node::MemDisk;

pub(super) fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// One batch: (leader epoch, value, producer id or -1, sequence).
pub(super) type B = (u32, u64, i64, i32);

pub(super) fn plain(epoch: u32, value: u64) -> B {
    (epoch, value, -1, -1)
}

fn log_of(me: BrokerId, disk: &mut MemDisk, batches: &[B]) -> PartitionLog {
    let mut log = PartitionLog::new(&format!("b{me}/t-0"), LogConfig::default());
    let batches: Vec<Batch> = batches
        .iter()
        .enumerate()
        .map(|(i, &(e, value, pid, seq))| Batch {
            base_offset: i as u64,
            leader_epoch: e,
            producer: if pid < 0 {
                ProducerStamp::NONE
            } else {
                ProducerStamp {
                    producer_id: pid,
                    producer_epoch: 0,
                    base_sequence: seq,
                }
            },
            records: vec![Record { key: 0, value }].into(),
        })
        .collect();
    log.append_as_follower(disk, &batches).unwrap();
    log
}

pub(super) fn state(leader: BrokerId, epoch: u32, isr: &[BrokerId]) -> PartitionState {
    PartitionState {
        tp: tp(),
        controller_epoch: 1,
        leader: Some(leader),
        leader_epoch: epoch,
        isr: isr.to_vec(),
        zk_version: epoch as i32,
        replicas: vec![0, 1, 2],
    }
}

/// A test world: the monitor, a disk for the replicas, and ZooKeeper's versions.
pub(super) struct World {
    pub(super) mon: KafkaMonitor,
    pub(super) disk: MemDisk,
    version: i32,
    zxid: u64,
    now: u64,
}

impl World {
    pub(super) fn new(min_insync: u32) -> World {
        let topics = [TopicSpec {
            name: "t".into(),
            partitions: 1,
            replication_factor: 3,
        }];
        World {
            mon: KafkaMonitor::new(&topics, min_insync),
            disk: MemDisk::default(),
            version: -1,
            zxid: 0,
            now: 0,
        }
    }

    /// Brokers run with `log.flush.interval.messages=1`: every append is fsynced before it
    /// is answered, so a power loss takes at most the append in flight.
    pub(super) fn flush_each(&mut self) {
        self.mon.flush_each = true;
    }

    /// ZooKeeper's next partition state, written with controller epoch `ce`, while
    /// `/controller_epoch` holds `ce_now`.
    pub(super) fn zk(
        &mut self,
        leader: Option<u32>,
        epoch: u32,
        isr: &[u32],
        ce: u32,
        ce_now: u32,
    ) -> Vec<Finding> {
        self.version += 1;
        self.zxid += 1;
        let data = PartitionStateData::new(leader, epoch, isr, ce);
        let s = ZkState {
            version: self.version,
            mzxid: self.zxid + 100,
            data,
        };
        let mut out = Vec::new();
        self.mon.on_zk(
            Some((ce_now, u64::from(ce_now))),
            &[(tp(), s)],
            self.now,
            &mut out,
        );
        out
    }

    /// A replica of broker `me` holding `batches`, with the HW checkpoint `hw`.
    pub(super) fn replica(&mut self, me: BrokerId, batches: &[B], hw: u64) -> Replica {
        let log = log_of(me, &mut self.disk, batches);
        Replica::new(tp(), me, log, hw, &[])
    }

    pub(super) fn leader(
        &mut self,
        me: BrokerId,
        batches: &[B],
        hw: u64,
        epoch: u32,
        isr: &[u32],
    ) -> Replica {
        let mut r = self.replica(me, batches, hw);
        r.become_leader(&mut self.disk, &state(me, epoch, isr), 0)
            .unwrap();
        r
    }

    pub(super) fn follower(
        &mut self,
        me: BrokerId,
        batches: &[B],
        hw: u64,
        leader: u32,
        epoch: u32,
    ) -> Replica {
        let mut r = self.replica(me, batches, hw);
        r.become_follower(&mut self.disk, &state(leader, epoch, &[leader, me]))
            .unwrap();
        r
    }

    /// Broker `id` (incarnation `inc`) shows `r` after an event.
    pub(super) fn broker(&mut self, id: BrokerId, inc: u32, r: Replica) -> Vec<Finding> {
        self.now += 1;
        let replicas = BTreeMap::from([(tp(), r)]);
        let s = BrokerState {
            id,
            inc,
            now: self.now,
            controller_epoch: None,
            fenced_controller_epoch: 1,
        };
        let mut out = Vec::new();
        self.mon.on_broker_state(&s, &replicas, &mut out);
        out
    }

    /// Epoch 1 led by broker 0 with ISR {0, 1}: values 10 and 11 committed on both.
    fn committed_two(&mut self) {
        assert_eq!(self.zk(Some(0), 1, &[0, 1], 1, 1), vec![]);
        let log = [plain(1, 10), plain(1, 11)];
        let l = self.leader(0, &log, 0, 1, &[0, 1]);
        assert_eq!(self.broker(0, 0, l), vec![]);
        let f = self.follower(1, &log, 2, 0, 1);
        assert_eq!(self.broker(1, 0, f), vec![]);
        let l = self.leader(0, &log, 2, 1, &[0, 1]);
        assert_eq!(self.broker(0, 0, l), vec![]);
        assert_eq!(self.mon.committed_records(), 2);
    }
}

pub(super) fn fired(out: &[Finding], invariant: &str) -> bool {
    assert!(!out.is_empty(), "expected {invariant} to fire");
    out.iter().any(|f| f.invariant == invariant)
}

#[test]
fn a_clean_history_raises_nothing() {
    let mut w = World::new(2);
    w.committed_two();
    let f = w.follower(1, &[plain(1, 10), plain(1, 11)], 2, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    assert_eq!(w.mon.elections(), 1);
    assert_eq!(w.mon.allowed_losses(), &AllowedLosses::default());
}

#[test]
fn dense_fires_on_a_value_twice_in_one_log() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0], 1, 1);
    let l = w.leader(0, &[(1, 5, 7, 0), (1, 5, 7, 1)], 0, 1, &[0]);
    let out = w.broker(0, 0, l);
    assert!(fired(&out, K_DENSE), "{out:?}");
    assert!(!out.iter().any(|f| f.invariant == K_IDEMPOTENCE));
}

#[test]
fn idempotence_fires_on_a_sequence_gap_and_a_repeat() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0], 1, 1);
    let l = w.leader(0, &[(1, 5, 7, 0), (1, 6, 7, 2)], 0, 1, &[0]);
    assert!(fired(&w.broker(0, 0, l), K_IDEMPOTENCE));
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0], 1, 1);
    let l = w.leader(0, &[(1, 5, 7, 0), (1, 6, 7, 0)], 0, 1, &[0]);
    assert!(fired(&w.broker(0, 0, l), K_IDEMPOTENCE));
}

#[test]
fn epoch_mono_fires_on_a_cache_disagreeing_with_the_log_and_an_epoch_going_back() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0], 1, 1);
    let mut l = w.leader(0, &[plain(1, 10), plain(1, 11)], 0, 1, &[0]);
    // The cache claims epoch 5 starts at offset 1, where the log holds an epoch-1 record.
    l.log.epochs.assign(&mut w.disk, 5, 1);
    assert!(fired(&w.broker(0, 0, l), K_EPOCH_MONO));

    let mut w = World::new(1);
    w.zk(Some(0), 3, &[0, 1], 1, 1);
    w.zk(Some(0), 4, &[0, 1], 1, 1);
    let f = w.follower(1, &[], 0, 0, 4);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let f = w.follower(1, &[], 0, 0, 3);
    assert!(fired(&w.broker(1, 0, f), K_EPOCH_MONO));
}

/// A replica whose change stamps are as last seen is skipped (`Partition::unchanged`);
/// a change made afterwards through any part of it (here its epoch cache, directly) takes
/// a fresh stamp and is judged.
#[test]
fn a_change_after_a_clean_observation_is_judged() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0], 1, 1);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 0, 1, &[0]);
    let mut replicas = BTreeMap::from([(tp(), l)]);
    let s = BrokerState {
        id: 0,
        inc: 0,
        now: 1,
        controller_epoch: None,
        fenced_controller_epoch: 1,
    };
    let mut out = Vec::new();
    w.mon.on_broker_state(&s, &replicas, &mut out);
    w.mon.on_broker_state(&s, &replicas, &mut out);
    assert_eq!(out, vec![]);
    let l = replicas.get_mut(&tp()).expect("the replica");
    l.log.epochs.assign(&mut w.disk, 5, 1);
    w.mon.on_broker_state(&s, &replicas, &mut out);
    assert!(fired(&out, K_EPOCH_MONO));
}

#[test]
fn one_leader_fires_on_two_leaders_of_an_epoch_and_a_foreign_record() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0, 1], 1, 1);
    let l = w.leader(0, &[], 0, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let other = w.leader(1, &[], 0, 1, &[0, 1]);
    assert!(fired(&w.broker(1, 0, other), K_ONE_LEADER));

    let mut w = World::new(1);
    w.committed_two();
    // Broker 2 holds a record stamped epoch 1 at offset 1 that the leader never appended.
    let f = w.follower(2, &[plain(1, 10), plain(1, 99)], 0, 0, 1);
    assert!(fired(&w.broker(2, 0, f), K_ONE_LEADER));
}

#[test]
fn one_leader_fires_when_a_stale_leader_commits_what_the_new_one_lacks() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0, 1], 1, 1);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 0, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    w.zk(Some(1), 2, &[1], 1, 1);
    let n = w.leader(1, &[plain(1, 10)], 0, 2, &[1]);
    assert_eq!(w.broker(1, 0, n), vec![]);
    // The deposed leader of epoch 1 still advances its HW over offset 1.
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 2, 1, &[0, 1]);
    assert!(fired(&w.broker(0, 0, l), K_ONE_LEADER));
}

#[test]
fn log_match_fires_on_a_different_record_below_the_hw() {
    let mut w = World::new(1);
    w.committed_two();
    let f = w.follower(2, &[plain(1, 10)], 0, 0, 1);
    assert_eq!(w.broker(2, 0, f), vec![]);
    // A follower restarted from a bad copy: value 12 at offset 1 under its HW 2.
    let mut log = log_of(2, &mut w.disk, &[plain(1, 10)]);
    let b = Batch {
        base_offset: 1,
        leader_epoch: 1,
        producer: ProducerStamp::NONE,
        records: vec![Record { key: 0, value: 12 }].into(),
    };
    log.append_as_follower(&mut w.disk, &[b]).unwrap();
    let mut f = Replica::new(tp(), 2, log, 2, &[]);
    f.become_follower(&mut w.disk, &state(0, 1, &[0, 1, 2]))
        .unwrap();
    let out = w.broker(2, 0, f);
    assert!(fired(&out, K_LOG_MATCH), "{out:?}");
}

#[test]
fn hw_mono_fires_on_a_falling_hw_a_lagging_isr_member_and_a_committed_truncation() {
    let mut w = World::new(1);
    w.committed_two();
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 1, 1, &[0, 1]);
    assert!(fired(&w.broker(0, 0, l), K_HW_MONO));

    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0, 1], 1, 1);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 0, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &[plain(1, 10)], 0, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 2, 1, &[0, 1]);
    assert!(fired(&w.broker(0, 0, l), K_HW_MONO));

    let mut w = World::new(1);
    w.committed_two();
    let f = w.follower(1, &[plain(1, 10)], 1, 0, 1);
    assert!(fired(&w.broker(1, 0, f), K_HW_MONO));
}

#[test]
fn isr_superset_fires_on_a_smaller_leader_isr_and_an_early_expansion() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0, 1, 2], 1, 1);
    let l = w.leader(0, &[], 0, 1, &[0, 1]);
    assert!(fired(&w.broker(0, 0, l), K_ISR_SUPERSET));

    let mut w = World::new(1);
    w.committed_two();
    let f = w.follower(2, &[plain(1, 10)], 0, 0, 1);
    assert_eq!(w.broker(2, 0, f), vec![]);
    // The leader's expansion to {0, 1, 2} lands in ZooKeeper while 2 is behind the HW.
    let out = w.zk(Some(0), 1, &[0, 1, 2], 1, 1);
    assert!(fired(&out, K_ISR_SUPERSET), "{out:?}");
}

#[test]
fn zk_fencing_fires_on_epochs_going_back_a_zombie_write_and_an_unknown_epoch() {
    let mut w = World::new(1);
    w.zk(Some(0), 2, &[0], 1, 1);
    assert!(fired(&w.zk(Some(0), 1, &[0], 1, 1), K_ZK_FENCING));

    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0], 1, 1);
    // A new leader epoch written by controller epoch 1 after /controller_epoch became 2
    // (the KAFKA-6082 check missing).
    assert!(fired(&w.zk(Some(0), 2, &[0], 1, 2), K_ZK_FENCING));

    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0, 1], 1, 1);
    let f = w.follower(1, &[], 0, 0, 7);
    assert!(fired(&w.broker(1, 0, f), K_ZK_FENCING));
}

#[test]
fn zk_fencing_fires_on_two_active_controllers_in_one_epoch() {
    let mut w = World::new(1);
    let none = BTreeMap::new();
    let mut out = Vec::new();
    for id in [0, 1] {
        let s = BrokerState {
            id,
            inc: 0,
            now: 1,
            controller_epoch: Some(3),
            fenced_controller_epoch: 3,
        };
        w.mon.on_broker_state(&s, &none, &mut out);
    }
    assert!(fired(&out, K_ZK_FENCING));
}

#[test]
fn leader_complete_fires_on_a_clean_leader_missing_committed_records_and_a_lagging_candidate() {
    let mut w = World::new(1);
    w.committed_two();
    w.zk(Some(1), 2, &[1], 1, 1);
    let n = w.leader(1, &[plain(1, 10)], 0, 2, &[1]);
    assert!(fired(&w.broker(1, 0, n), K_LEADER_COMPLETE));

    let mut w = World::new(1);
    w.committed_two();
    w.zk(Some(0), 1, &[0, 1, 2], 1, 1);
    let f = w.follower(2, &[plain(1, 10)], 0, 0, 1);
    assert!(fired(&w.broker(2, 0, f), K_LEADER_COMPLETE));
}

#[test]
fn an_unclean_election_is_recorded_not_reported_and_the_history_restarts() {
    let mut w = World::new(1);
    w.committed_two();
    w.zk(Some(0), 1, &[0], 1, 1);
    assert_eq!(w.zk(Some(2), 2, &[2], 1, 1), vec![]);
    let n = w.leader(2, &[plain(1, 10), plain(2, 20)], 0, 2, &[2]);
    assert_eq!(w.broker(2, 0, n), vec![]);
    let n = w.leader(2, &[plain(1, 10), plain(2, 20)], 2, 2, &[2]);
    assert_eq!(w.broker(2, 0, n), vec![]);
    let losses = w.mon.allowed_losses();
    assert_eq!(losses.unclean_elections.len(), 1);
    assert_eq!(losses.unclean_elections[0].previous_isr, vec![0]);
    assert_eq!(losses.lossy_elections.len(), 1);
    assert!(losses.lossy_elections[0].unclean);
    assert_eq!(losses.lossy_elections[0].lost_from, 1);
    // The old follower's divergent record above the new history is not compared until it
    // truncates; after it fetched the new leader's log it agrees again.
    let f = w.follower(1, &[plain(1, 10), plain(1, 11)], 2, 2, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let f = w.follower(1, &[plain(1, 10), plain(2, 20)], 2, 2, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
}

#[test]
fn a_suspect_replica_that_takes_the_new_history_on_top_of_the_old_is_compared_again() {
    // The KIP-101-2 excuse change: after an unclean election the old follower's record
    // above the new history (11 at offset 1) is set aside until the follower drops it. A
    // pre-KIP-101 follower may instead append the new leader's epoch-2 record after it
    // without truncating (its HW-based truncation kept offset 1): the suspicion then ends
    // and its log is judged again, so the fork at offset 1 under its HW is k-log-match.
    let unclean = || {
        let mut w = World::new(1);
        w.committed_two();
        w.zk(Some(0), 1, &[0], 1, 1);
        assert_eq!(w.zk(Some(2), 2, &[2], 1, 1), vec![]);
        let n = w.leader(2, &[plain(1, 10), plain(2, 20)], 2, 2, &[2]);
        assert_eq!(w.broker(2, 0, n), vec![]);
        w
    };
    let mut w = unclean();
    let f = w.follower(1, &[plain(1, 10), plain(1, 11), plain(2, 20)], 3, 2, 2);
    let out = w.broker(1, 0, f);
    assert!(fired(&out, K_LOG_MATCH), "{out:?}");
    // Still holding only the abandoned record (not yet fetched): nothing to judge.
    let mut w = unclean();
    let f = w.follower(1, &[plain(1, 10), plain(1, 11)], 2, 2, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    // An appended record of the old epoch does not end the suspicion either.
    let f = w.follower(1, &[plain(1, 10), plain(1, 11), plain(1, 12)], 3, 2, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
}

#[test]
fn a_power_loss_is_recorded_and_excuses_the_leader_that_suffered_it() {
    let mut w = World::new(1);
    w.committed_two();
    // Broker 1 restarts (incarnation 1) with its unflushed record gone.
    let f = w.replica(1, &[plain(1, 10)], 1);
    assert_eq!(w.broker(1, 1, f), vec![]);
    let loss = &w.mon.data_losses()[0];
    assert_eq!(
        (loss.broker, loss.from_offset, loss.committed_lost),
        (1, 1, 1)
    );
    w.zk(Some(1), 2, &[1], 1, 1);
    let n = w.leader(1, &[plain(1, 10)], 1, 2, &[1]);
    assert_eq!(w.broker(1, 1, n), vec![]);
    assert!(!w.mon.lossy_elections()[0].unclean);
}

fn send(op_id: u64, value: u64) -> KafkaRecord {
    KafkaRecord::Invoke {
        op_id,
        at_ns: 0,
        op: KafkaOp::Send {
            tp: tp(),
            key: 0,
            value,
        },
    }
}

fn sent(op_id: u64, offset: u64) -> KafkaRecord {
    KafkaRecord::Complete {
        op_id,
        at_ns: 1,
        outcome: KafkaOutcome::Sent { offset },
    }
}

#[test]
fn ack_semantics_fires_on_an_uncommitted_or_under_replicated_ack() {
    let mut w = World::new(2);
    w.committed_two();
    let mut out = Vec::new();
    let h = [send(1, 10), sent(1, 0), send(2, 11), sent(2, 1)];
    w.mon.on_producer(0, AckMode::All, &h, &mut out);
    assert_eq!(out, vec![]);
    let h = [send(3, 12), sent(3, 2)];
    w.mon.on_producer(1, AckMode::All, &h, &mut out);
    assert!(fired(&out, K_ACK_SEMANTICS));
    let mut out = Vec::new();
    w.mon.on_producer(2, AckMode::Leader, &h, &mut out);
    assert!(fired(&out, K_ACK_SEMANTICS));

    // Committed with the ISR down to the leader alone while min.insync.replicas is 2.
    let mut w = World::new(2);
    w.zk(Some(0), 1, &[0], 1, 1);
    let l = w.leader(0, &[plain(1, 10)], 1, 1, &[0]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let mut out = Vec::new();
    w.mon
        .on_producer(0, AckMode::Leader, &[send(1, 10), sent(1, 0)], &mut out);
    assert_eq!(out, vec![]);
    w.mon
        .on_producer(1, AckMode::All, &[send(1, 10), sent(1, 0)], &mut out);
    assert!(fired(&out, K_ACK_SEMANTICS));
}

#[test]
fn a_leader_restarted_after_a_power_loss_and_leading_the_same_epoch_again_is_a_lossy_tenure() {
    // kafka-partition-leader-crash seed 15: the leader loses power, its session expires
    // just as it registers again, and the new controller (which never saw it die) tells it
    // to lead the same epoch: it appends new records where the lost ones were.
    let mut w = World::new(1);
    w.committed_two();
    let r = w.replica(0, &[plain(1, 10)], 1);
    assert_eq!(w.broker(0, 1, r), vec![]);
    let l = w.leader(0, &[plain(1, 10), plain(1, 12)], 1, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    let lossy = &w.mon.lossy_elections()[0];
    assert_eq!(
        (lossy.leader, lossy.lost_from, lossy.unclean),
        (0, 1, false)
    );
    // The follower still holds the lost record until it truncates; then it agrees again.
    let f = w.follower(1, &[plain(1, 10), plain(1, 11)], 2, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let f = w.follower(1, &[plain(1, 10), plain(1, 12)], 2, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    // After a kill (the page cache kept every record) the same re-appointment just goes on.
    let mut w = World::new(1);
    w.committed_two();
    let r = w.replica(0, &[plain(1, 10), plain(1, 11)], 2);
    assert_eq!(w.broker(0, 1, r), vec![]);
    let l = w.leader(
        0,
        &[plain(1, 10), plain(1, 11), plain(1, 12)],
        2,
        1,
        &[0, 1],
    );
    assert_eq!(w.broker(0, 1, l), vec![]);
}

#[test]
fn a_restarted_leader_that_lost_uncommitted_records_of_its_epoch_restarts_the_history() {
    let mut w = World::new(1);
    w.zk(Some(0), 1, &[0, 1], 1, 1);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11)], 0, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let r = w.replica(0, &[plain(1, 10)], 0);
    assert_eq!(w.broker(0, 1, r), vec![]);
    let l = w.leader(0, &[plain(1, 10)], 0, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    assert_eq!(w.mon.lossy_elections()[0].committed_lost, 0);
    let l = w.leader(0, &[plain(1, 10), plain(1, 12)], 0, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
}

/// A same-epoch lossy re-appointment (KIP-966): broker 0 leads epoch 1, values 10-12 are
/// committed on brokers 0 and 1; broker 0 restarts having lost 11 and 12 (not flushed),
/// and a controller that took office after the restart appoints it to epoch 1 again. It
/// writes 20-22 at offsets 1-3; follower 1 (fetching in epoch 1, no epoch check can see
/// the loss) appends 22 at offset 3 above its own 11 and 12. With flushing off that fork
/// is allowed and recorded, and the follower is not required to converge.
fn same_epoch_reappointment(flush_each: bool) -> (World, Vec<Finding>) {
    let mut w = World::new(1);
    if flush_each {
        w.flush_each();
    }
    w.committed_two();
    let log = [plain(1, 10), plain(1, 11), plain(1, 12)];
    let l = w.leader(0, &log, 2, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &log, 2, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let l = w.leader(0, &log, 3, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    assert_eq!(w.mon.committed_records(), 3);
    // The restart: only offset 0 was flushed.
    let r = w.replica(0, &[plain(1, 10)], 1);
    assert_eq!(w.broker(0, 1, r), vec![]);
    // Appointed to epoch 1 again (ZooKeeper's state is unchanged).
    let l = w.leader(0, &[plain(1, 10)], 1, 1, &[0, 1]);
    let mut out = w.broker(0, 1, l);
    let new_log = [plain(1, 10), plain(1, 20), plain(1, 21), plain(1, 22)];
    let l = w.leader(0, &new_log, 1, 1, &[0, 1]);
    out.extend(w.broker(0, 1, l));
    let forked = [plain(1, 10), plain(1, 11), plain(1, 12), plain(1, 22)];
    let f = w.follower(1, &forked, 4, 0, 1);
    out.extend(w.broker(1, 0, f));
    (w, out)
}

#[test]
fn a_same_epoch_lossy_reappointment_is_allowed_without_flushing() {
    let (w, out) = same_epoch_reappointment(false);
    assert_eq!(out, vec![]);
    let e = &w.mon.lossy_elections()[0];
    assert!(e.again && !e.unclean, "{e:?}");
    let fork = &w.mon.allowed_losses().forked_replicas;
    assert_eq!((fork.len(), fork[0].broker, fork[0].from_offset), (1, 1, 1));
    let behind = w.mon.left_behind();
    assert!(behind[&tp()].contains_key(&1), "{behind:?}");
    assert!(!behind[&tp()].contains_key(&0));
}

/// The same events with `log.flush.interval.messages=1`: every append was fsynced, so
/// the restart cannot have lost committed records, and leading without them is reported.
#[test]
fn a_same_epoch_lossy_reappointment_is_not_excused_with_a_flush_per_append() {
    let (_, out) = same_epoch_reappointment(true);
    assert!(fired(&out, K_LEADER_COMPLETE), "{out:?}");
}

/// kafka-nemesis seed 561: after a same-epoch lossy re-appointment the follower cannot
/// append the leader's batch over the records it kept (2.7+ marks the partition failed)
/// and stays out of the ISR. A later epoch does not free it: the leader's end of the
/// re-appointed epoch lies past the follower's end, so no fetch finds a divergence and
/// the leader keeps answering with the straddling batch. It stays excused (visibly) while
/// it holds the abandoned records, and is required again once it has cut them.
#[test]
fn a_follower_stuck_on_abandoned_records_stays_excused_after_the_epoch_moves_on() {
    let mut w = World::new(1);
    w.committed_two();
    let log = [plain(1, 10), plain(1, 11), plain(1, 12)];
    let l = w.leader(0, &log, 2, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &log, 2, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    // The restart lost 11 and 12; appointed to epoch 1 again, the leader writes 20-22.
    let r = w.replica(0, &[plain(1, 10)], 1);
    assert_eq!(w.broker(0, 1, r), vec![]);
    let l = w.leader(0, &[plain(1, 10)], 1, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    let new_log = [plain(1, 10), plain(1, 20), plain(1, 21), plain(1, 22)];
    let l = w.leader(0, &new_log, 1, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    // The follower drops out of the ISR; a new epoch follows (the same leader).
    assert_eq!(w.zk(Some(0), 2, &[0], 1, 1), vec![]);
    let l = w.leader(0, &new_log, 4, 2, &[0]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    let f = w.follower(1, &log, 2, 0, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let behind = w.mon.left_behind();
    assert!(behind[&tp()][&1].contains("from offset 1"), "{behind:?}");
    assert!(!behind[&tp()].contains_key(&0));
    // Once it has cut the abandoned records it is required to converge again.
    let f = w.follower(1, &[plain(1, 10)], 1, 0, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    assert!(w.mon.left_behind().is_empty(), "{:?}", w.mon.left_behind());
}

/// A lossy election to a new epoch is not a same-epoch one: a follower still holding the
/// records the new leader lacks finds the divergence by its epoch and must truncate, so
/// it is never excused from converging.
#[test]
fn a_follower_behind_a_new_epochs_lossy_leader_is_not_excused() {
    let mut w = World::new(1);
    w.committed_two();
    let r = w.replica(0, &[plain(1, 10)], 1);
    assert_eq!(w.broker(0, 1, r), vec![]);
    assert_eq!(w.zk(Some(0), 2, &[0, 1], 1, 1), vec![]);
    let l = w.leader(0, &[plain(1, 10), plain(2, 20)], 1, 2, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    assert_eq!(w.mon.lossy_elections().len(), 1);
    let f = w.follower(1, &[plain(1, 10), plain(1, 11)], 2, 0, 2);
    assert_eq!(w.broker(1, 0, f), vec![]);
    assert!(w.mon.left_behind().is_empty(), "{:?}", w.mon.left_behind());
}

/// A tree holding `/controller_epoch` = 1 and t-0's partition state (leader 0, epoch 0),
/// then each of `writes` (leader, leader epoch) as the next version.
fn zk_tree(writes: &[(u32, u32)]) -> crate::zab::tree::DataTree {
    use crate::kafka::zkdata;
    use crate::zab::msg::{Op, OpResult, Txn, TxnOp};
    let mut tree = crate::zab::tree::DataTree::new();
    tree.apply(&Txn {
        zxid: 1,
        session: 1,
        cxid: 0,
        op: TxnOp::CreateSession { timeout_ms: 6000 },
    });
    let apply = |tree: &mut crate::zab::tree::DataTree, op: Op| {
        let t = tree.prep(1, &op);
        let zxid = tree.last_zxid() + 1;
        let r = tree.apply(&Txn {
            zxid,
            session: 1,
            cxid: 0,
            op: t,
        });
        let ok = matches!(r.result, OpResult::Created { .. } | OpResult::SetStat(_));
        assert!(ok, "{op:?}: {:?}", r.result);
    };
    let create = |path: String, data: Vec<u8>| Op::Create {
        path,
        data,
        ephemeral: false,
        sequential: false,
    };
    apply(
        &mut tree,
        create(
            zkdata::CONTROLLER_EPOCH.into(),
            zkdata::encode_controller_epoch(1),
        ),
    );
    for path in [
        zkdata::BROKERS.to_string(),
        zkdata::TOPICS.into(),
        zkdata::topic_path("t"),
        zkdata::partitions_path("t"),
        zkdata::partition_path(&tp()),
    ] {
        apply(&mut tree, create(path, Vec::new()));
    }
    let path = zkdata::partition_state_path(&tp());
    let data = |l: u32, e: u32| zkdata::encode(&PartitionStateData::new(Some(l), e, &[0, 1, 2], 1));
    apply(&mut tree, create(path.clone(), data(0, 0)));
    for (v, &(l, e)) in writes.iter().enumerate() {
        let op = Op::SetData {
            path: path.clone(),
            data: data(l, e),
            version: v as i32,
        };
        apply(&mut tree, op);
    }
    tree
}

/// Only a serving ZooKeeper server's tree is what ZooKeeper holds: a server out of the
/// broadcast phase may hold a proposal that never reached a quorum (its tree rebuilt from
/// its log on leaving its role). Kafka-nemesis seeds 7728 and 8429: controller 2's write
/// of leader epoch 1 with leader 2 reached one server's log only; controller 1 then wrote
/// leader 1 for epoch 1 at the same zkVersion, and broker 0 follows it. The same trees
/// read as serving make the check fire.
#[test]
fn zk_fencing_reads_only_serving_servers_trees() {
    for stale_serving in [false, true] {
        let mut w = World::new(1);
        let mut out = Vec::new();
        w.mon.on_zk_server(0, true, &zk_tree(&[]), 1, &mut out);
        w.mon
            .on_zk_server(2, stale_serving, &zk_tree(&[(2, 1)]), 2, &mut out);
        w.mon
            .on_zk_server(1, true, &zk_tree(&[(1, 1)]), 3, &mut out);
        assert_eq!(out, vec![]);
        let f = w.follower(0, &[], 0, 1, 1);
        let out = w.broker(0, 0, f);
        if stale_serving {
            assert!(fired(&out, K_ZK_FENCING), "{out:?}");
        } else {
            assert_eq!(out, vec![]);
        }
    }
}

/// kafka-nemesis seed 9404: two histories of one epoch, then a new epoch. Broker 0 leads
/// epoch 1 and appends A (producer 7) and B (producer 8) above the committed 10 and 11;
/// follower 1 copies them. Broker 0 restarts without them (unflushed), is appointed to
/// epoch 1 again and appends producer 8's retry of B first. Broker 1, still holding A and
/// B, is elected for epoch 2. Broker 0, following it, fetches from offset 3 in epoch 1:
/// broker 1's epoch 1 ends at 4, so no divergence shows, and broker 0 takes B again on top
/// of its own B (Kafka checks no sequence on a follower's append). Its log holds B twice,
/// across the fork's junction: allowed without flushing and recorded (forked_replicas,
/// forked_sequences), not a k-dense or k-idempotence finding.
#[test]
fn a_fork_between_two_histories_of_one_epoch_is_allowed_under_a_new_epoch() {
    let mut w = World::new(1);
    w.committed_two();
    let a = (1, 20, 7, 0);
    let b = (1, 21, 8, 0);
    let old = [plain(1, 10), plain(1, 11), a, b];
    let l = w.leader(0, &old, 2, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &old, 2, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let kept = [plain(1, 10), plain(1, 11)];
    let r = w.replica(0, &kept, 2);
    assert_eq!(w.broker(0, 1, r), vec![]);
    let l = w.leader(0, &kept, 2, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    let l = w.leader(0, &[plain(1, 10), plain(1, 11), b], 2, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    // Broker 1 is elected for epoch 2 with the records the re-appointment abandoned.
    assert_eq!(w.zk(Some(1), 2, &[1, 0], 1, 1), vec![]);
    let l = w.leader(1, &old, 2, 2, &[1, 0]);
    assert_eq!(w.broker(1, 0, l), vec![]);
    let forked = [plain(1, 10), plain(1, 11), b, b];
    let f = w.follower(0, &forked, 2, 1, 2);
    assert_eq!(w.broker(0, 1, f), vec![]);
    let fork = &w.mon.allowed_losses().forked_replicas;
    assert_eq!((fork.len(), fork[0].broker, fork[0].from_offset), (1, 0, 2));
    let behind = w.mon.left_behind();
    assert!(
        behind[&tp()][&0].contains("forked from offset 2"),
        "{behind:?}"
    );
    // The repeat is recorded as allowed, with the fork junction at offset 3.
    let seqs = &w.mon.allowed_losses().forked_sequences;
    assert!(
        seqs.iter().any(|x| x.broker == 0 && x.junction == 3),
        "{seqs:?}"
    );
}
/// Producer 7's sends 10, 11, 12 (sequences 0-2) committed in epoch 1 on brokers 0
/// (leader) and 1; broker 0 restarts having flushed only 10, is appointed to epoch 1 again
/// and writes at offsets 1-3 (the lossy re-appointment of
/// kafka-nemesis seeds 2283, 3073, 5817, 6121 and 8738): producer 8's 20, then producer
/// 7's sequences 1 and 2 again as new sends 21 and 22, with its HW at `hw`.
fn reappointed_with_producers(hw: u64) -> World {
    let mut w = World::new(1);
    assert_eq!(w.zk(Some(0), 1, &[0, 1], 1, 1), vec![]);
    let old = [(1, 10, 7, 0), (1, 11, 7, 1), (1, 12, 7, 2)];
    let l = w.leader(0, &old, 0, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let f = w.follower(1, &old, 0, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let l = w.leader(0, &old, 3, 1, &[0, 1]);
    assert_eq!(w.broker(0, 0, l), vec![]);
    let r = w.replica(0, &old[..1], 1);
    assert_eq!(w.broker(0, 1, r), vec![]);
    let new = [(1, 10, 7, 0), (1, 20, 8, 0), (1, 21, 7, 1), (1, 22, 7, 2)];
    let l = w.leader(0, &old[..1], 1, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    let l = w.leader(0, &new, hw, 1, &[0, 1]);
    assert_eq!(w.broker(0, 1, l), vec![]);
    assert!(w.mon.lossy_elections()[0].again);
    w
}

/// kafka-nemesis seeds 3073, 5817, 6121: the follower fetching in the re-appointed epoch
/// takes the new history's records on top of the abandoned ones (no epoch check can see
/// the fork). Producer 7's sequence 2 then repeats: 12 (abandoned, offset 2), 22 (new,
/// offset 3). Across the fork junction at offset 3 that is no idempotence failure of the
/// brokers, and it is recorded as allowed with the fork. A break above the junction, in
/// the new history alone, still fires.
#[test]
fn a_sequence_break_across_a_same_epoch_fork_is_allowed_and_recorded() {
    let mut w = reappointed_with_producers(1);
    let forked = [(1, 10, 7, 0), (1, 11, 7, 1), (1, 12, 7, 2), (1, 22, 7, 2)];
    let f = w.follower(1, &forked, 1, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let losses = w.mon.allowed_losses();
    assert_eq!(losses.forked_replicas[0].from_offset, 1);
    let s = &losses.forked_sequences;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].broker, s[0].producer_id, s[0].offset), (1, 7, 3));
    assert_eq!(
        (s[0].junction, s[0].why.as_str()),
        (3, "sequence 2 after 2")
    );
    // Producer 7's 24 with sequence 4 follows its 22 (sequence 2) above the junction.
    let mut bad = forked.to_vec();
    bad.push((1, 24, 7, 4));
    let f = w.follower(1, &bad, 1, 0, 1);
    let out = w.broker(1, 0, f);
    assert!(fired(&out, K_IDEMPOTENCE), "{out:?}");
    assert!(
        out[0].message.starts_with("t-0: replica on broker 1"),
        "{out:?}"
    );
}

/// kafka-nemesis seed 2283: the forked replica later leads, and a third replica copies its
/// log, junction and all. The copy holds the same two records around the junction, so the
/// same sequence break there is allowed on it too; another break at that offset is not.
#[test]
fn a_copy_of_a_forked_log_carries_its_junction() {
    let mut w = reappointed_with_producers(1);
    let forked = [(1, 10, 7, 0), (1, 11, 7, 1), (1, 12, 7, 2), (1, 22, 7, 2)];
    let f = w.follower(1, &forked, 1, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    // Broker 1 leads epoch 2 with its forked log and appends producer 7's 30.
    assert_eq!(w.zk(Some(1), 2, &[1, 2], 1, 1), vec![]);
    let mut led = forked.to_vec();
    led.push((2, 30, 7, 3));
    let l = w.leader(1, &led, 1, 2, &[1, 2]);
    assert_eq!(w.broker(1, 0, l), vec![]);
    let f = w.follower(2, &led, 1, 1, 2);
    assert_eq!(w.broker(2, 0, f), vec![]);
    let on_copy = w.mon.allowed_losses().forked_sequences.iter();
    assert!(on_copy.clone().any(|s| (s.broker, s.offset) == (2, 3)));
    // A log with another record at the junction's offset does not hold the junction.
    let mut w2 = reappointed_with_producers(1);
    let other = [(1, 10, 7, 0), (1, 11, 7, 1), (1, 12, 7, 2), (1, 25, 7, 2)];
    let f = w2.follower(2, &other, 1, 0, 1);
    let out = w2.broker(2, 0, f);
    assert!(fired(&out, K_IDEMPOTENCE), "{out:?}");
}

/// kafka-nemesis seed 8738: the re-appointed leader commits part of its new history, then
/// the follower that kept the abandoned history (stuck, not forked) is elected to a new
/// epoch. The old leader, truncated by epoch to where its epoch-1 records end on the new
/// leader, keeps its epoch-1 records of the re-appointed tenure under the new leader's:
/// both hold epoch 1 where they first differ, so no fetcher's epoch check can cut it
/// there. It is a same-epoch fork (allowed, not required to converge, its sequence break
/// recorded), where a difference of epochs would have been cut (see
/// a_follower_behind_a_new_epochs_lossy_leader_is_not_excused).
#[test]
fn a_replica_forked_inside_a_reappointed_epoch_under_a_new_epoch_is_a_same_epoch_fork() {
    let mut w = reappointed_with_producers(3);
    assert_eq!(w.zk(Some(1), 2, &[1], 1, 1), vec![]);
    let old = [(1, 10, 7, 0), (1, 11, 7, 1), (1, 12, 7, 2), (2, 30, 7, 3)];
    let l = w.leader(1, &old, 3, 2, &[1]);
    assert_eq!(w.broker(1, 0, l), vec![]);
    assert_eq!(w.mon.lossy_elections().len(), 2);
    // Broker 0 cuts to 3 (its epoch 1 ends at 4, the leader's at 3) and fetches 30.
    let cut = [(1, 10, 7, 0), (1, 20, 8, 0), (1, 21, 7, 1), (2, 30, 7, 3)];
    let f = w.follower(0, &cut, 4, 1, 2);
    assert_eq!(w.broker(0, 1, f), vec![]);
    let losses = w.mon.allowed_losses();
    let fork = losses.forked_replicas.iter().find(|f| f.broker == 0);
    assert_eq!(fork.map(|f| f.from_offset), Some(1), "{losses:?}");
    let s = &losses.forked_sequences;
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0].broker, s[0].offset, s[0].junction), (0, 3, 3));
    assert!(w.mon.left_behind()[&tp()].contains_key(&0));
}

/// kafka-nemesis seeds 24633, 25747 (and 9404): the re-appointed leader appends the
/// producer's retry of a send it lost, which the forked follower still holds among the
/// abandoned records: the follower's log holds the value twice, once on each side of the
/// fork junction. That is recorded as allowed with the fork; a value twice inside the new
/// history still fires k-dense.
#[test]
fn a_value_repeated_across_a_same_epoch_fork_is_allowed_and_recorded() {
    let mut w = reappointed_with_producers(1);
    // Producer 7's retry of 11 (sequence 3 here) lands at offset 4 in the new history.
    let forked = [
        (1, 10, 7, 0),
        (1, 11, 7, 1),
        (1, 12, 7, 2),
        (1, 22, 7, 2),
        (1, 11, 7, 3),
    ];
    let f = w.follower(1, &forked, 1, 0, 1);
    assert_eq!(w.broker(1, 0, f), vec![]);
    let s = &w.mon.allowed_losses().forked_sequences;
    let repeat = s.iter().find(|s| s.offset == 4).expect("recorded");
    assert_eq!(
        (repeat.junction, repeat.why.as_str()),
        (3, "value 11 at offsets 1 and 4")
    );
    let mut bad = forked.to_vec();
    bad.push((1, 11, 7, 4));
    let f = w.follower(1, &bad, 1, 0, 1);
    let out = w.broker(1, 0, f);
    assert!(fired(&out, K_DENSE), "{out:?}");
}

mod adopted;
mod lossy_holes;
mod lost;
mod resurrected;
