//! Replica state machine tests: the divergence cases A-G of reference B.6 (Vanlightly's
//! `3_log_divergence.md`), KIP-279's iteration, fencing, the HW, ISR changes and acks=all.

use super::follower::FetchOutcome;
use super::leader::{AckStatus, ProduceOutcome};
use super::*;
use crate::kafka::config::{Acks, ServerProperties};
use crate::kafka::log::batch::{Batch, ProducerStamp, Record};
use crate::kafka::log::LogConfig;
use crate::kafka::msg::{
    ErrorCode, FetchPartition, FetchPartitionResponse, ListOffsetsPartitionResponse,
    OffsetForLeaderPartition,
};
use crate::node::MemDisk;

const L: BrokerId = 1;
const F: BrokerId = 2;
const G: BrokerId = 3;
const SEC: u64 = 1_000_000_000;

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// A replica whose log holds one single-record batch per entry of `epochs`. The record is a
/// function of (offset, epoch), so replicas built alike agree where their epochs agree.
fn replica(me: BrokerId, disk: &mut MemDisk, epochs: &[u32]) -> Replica {
    let mut log = PartitionLog::new(&format!("b{me}/t-0"), LogConfig::default());
    let batches: Vec<Batch> = epochs
        .iter()
        .enumerate()
        .map(|(i, &e)| Batch {
            base_offset: i as u64,
            leader_epoch: e,
            producer: ProducerStamp::NONE,
            records: vec![Record {
                key: e as u64,
                value: i as u64,
            }]
            .into(),
        })
        .collect();
    log.append_as_follower(disk, &batches).unwrap();
    Replica::new(tp(), me, log, 0, &[])
}

fn state(leader: BrokerId, epoch: u32, isr: &[BrokerId]) -> PartitionState {
    PartitionState {
        tp: tp(),
        controller_epoch: 1,
        leader: Some(leader),
        leader_epoch: epoch,
        isr: isr.to_vec(),
        zk_version: epoch as i32,
        replicas: vec![L, F, G],
    }
}

fn epochs_of(r: &Replica) -> Vec<(u64, u32, u64)> {
    r.log
        .log
        .batches()
        .flat_map(|b| {
            b.records
                .iter()
                .enumerate()
                .map(|(i, rec)| (b.base_offset + i as u64, b.leader_epoch, rec.key))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One fetch round trip from `f` to `l`.
fn fetch_once(l: &mut Replica, f: &mut Replica, disk: &mut MemDisk, now: u64) -> FetchOutcome {
    let req = f.fetch_request(100).expect("a follower");
    let (resp, change) = l.handle_follower_fetch(f.me, &req, now);
    if change.is_some() {
        l.isr_write_succeeded(l.zk_version() + 1);
    }
    f.handle_fetch_response(disk, &req, &resp)
}

/// Divergence case: leader log and epoch, follower log; the expected first outcome.
fn divergence_case(leader_log: &[u32], epoch: u32, follower_log: &[u32], first: FetchOutcome) {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, leader_log);
    let mut f = replica(F, &mut disk, follower_log);
    l.become_leader(&mut disk, &state(L, epoch, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, epoch, &[L, F]))
        .unwrap();
    assert_eq!(fetch_once(&mut l, &mut f, &mut disk, 1), first);
    // Fetching on converges to the leader's log, record for record.
    for _ in 0..5 {
        fetch_once(&mut l, &mut f, &mut disk, 2);
    }
    assert_eq!(epochs_of(&f), epochs_of(&l));
    assert_eq!(
        f.log.epochs.entries().len() + 1,
        l.log.epochs.entries().len()
    );
}

#[test]
fn case_a_follower_behind_in_the_same_epoch_just_appends() {
    divergence_case(
        &[1, 1, 1, 1],
        2,
        &[1, 1],
        FetchOutcome::Appended { records: 2 },
    );
}

#[test]
fn case_b_follower_behind_with_a_higher_leader_epoch_just_appends() {
    divergence_case(
        &[1, 1, 2, 2],
        3,
        &[1, 1],
        FetchOutcome::Appended { records: 2 },
    );
}

#[test]
fn case_c_follower_ahead_in_the_same_epoch_truncates_to_the_leaders_end() {
    let cut = FetchOutcome::Truncated {
        offset: 2,
        complete: true,
    };
    divergence_case(&[1, 1], 2, &[1, 1, 1, 1], cut);
}

#[test]
fn case_d_follower_ahead_with_a_higher_epoch_truncates_that_epoch() {
    let cut = FetchOutcome::Truncated {
        offset: 2,
        complete: true,
    };
    divergence_case(&[1, 1], 3, &[1, 1, 2, 2], cut);
}

#[test]
fn case_e_forks_in_different_epochs_truncate_to_the_fork() {
    let cut = FetchOutcome::Truncated {
        offset: 2,
        complete: true,
    };
    divergence_case(&[1, 1, 3, 3], 4, &[1, 1, 2, 2], cut);
}

#[test]
fn case_f_leader_fork_in_the_older_epoch_truncates_to_the_followers_end() {
    let cut = FetchOutcome::Truncated {
        offset: 1,
        complete: true,
    };
    divergence_case(&[1, 1], 3, &[1, 2, 2], cut);
}

#[test]
fn case_g_no_common_epoch_truncates_everything() {
    let cut = FetchOutcome::Truncated {
        offset: 0,
        complete: true,
    };
    divergence_case(&[1], 3, &[2, 2], cut);
}

#[test]
fn kip_279_iterates_when_the_follower_lacks_the_leaders_epoch() {
    // Leader: epochs 1 at 0, 2 at 2, then leader in 4. Follower: epochs 1 at 0, 3 at 2.
    // The leader answers (2, 5); the follower has no epoch 2, so it cuts to the end of its
    // epoch 1 and asks again with lastFetchedEpoch 1, which the leader accepts.
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1, 1, 2, 2, 2]);
    let mut f = replica(F, &mut disk, &[1, 1, 3, 3]);
    l.become_leader(&mut disk, &state(L, 4, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, 4, &[L, F])).unwrap();
    let cut = FetchOutcome::Truncated {
        offset: 2,
        complete: false,
    };
    assert_eq!(fetch_once(&mut l, &mut f, &mut disk, 1), cut);
    assert_eq!(f.fetch_request(1).unwrap().last_fetched_epoch, Some(1));
    assert_eq!(
        fetch_once(&mut l, &mut f, &mut disk, 2),
        FetchOutcome::Appended { records: 3 }
    );
    assert_eq!(epochs_of(&f), epochs_of(&l));
}

#[test]
fn kafka_6361_back_to_back_leader_changes_converge_through_offsets_for_leader_epoch() {
    // Catalogue K4, scaled down: B2 (here L) led epoch 1 to offset 4; B1 (here F) got only
    // offsets 0-1 and then led epoch 2 with 2-4; L is re-elected in epoch 3. F asks about
    // epoch 2, which L never saw: the answer names epoch 1 (KIP-279) and ends at 4 because
    // L recorded (3, 4) on becoming leader (PR #5678). F cuts to min(4, its end of 1 = 2).
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1, 1, 1, 1]);
    let mut f = replica(F, &mut disk, &[1, 1, 2, 2, 2]);
    l.become_leader(&mut disk, &state(L, 3, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, 3, &[L, F])).unwrap();
    assert!(l
        .log
        .epochs
        .entries()
        .iter()
        .any(|e| (e.epoch, e.start_offset) == (3, 4)));
    let req = OffsetForLeaderPartition {
        tp: tp(),
        current_leader_epoch: Some(3),
        leader_epoch: f.log.latest_epoch().unwrap(),
    };
    let resp = l.handle_offsets_for_leader_epoch(&req);
    assert_eq!(
        resp.end,
        Some(crate::kafka::msg::EpochEndOffset {
            epoch: 1,
            end_offset: 4
        })
    );
    let cut = f.handle_offsets_for_leader_epoch_response(&mut disk, &resp);
    assert_eq!(
        cut,
        FetchOutcome::Truncated {
            offset: 2,
            complete: true
        }
    );
    fetch_once(&mut l, &mut f, &mut disk, 1);
    assert_eq!(epochs_of(&f), epochs_of(&l));
}

#[test]
fn kafka_6361_leader_answers_offsets_for_leader_epoch_with_the_legacy_offset() {
    // The leader's path through `legacy_end_offset_for`: L (epochs 1 to offset 4, then 3)
    // is asked about epoch 2, which only F had (offsets 2-4). The pre-KIP-279 answer is the
    // start of L's epoch 3, 4, with the requested epoch echoed; F, taking it as the end of
    // its epoch 2, keeps offsets 2-3 of epoch 2 where L has epoch 1: the logs fork at equal
    // offsets. With the mode off the same leader names epoch 1 and F cuts to 2.
    let answer = |modes: &[BugMode]| {
        let mut disk = MemDisk::default();
        let base = replica(L, &mut disk, &[1, 1, 1, 1, 3, 3]);
        let mut l = Replica::new(tp(), L, base.log, 0, modes);
        let mut f = replica(F, &mut disk, &[1, 1, 2, 2, 2]);
        f.bug_modes = modes.to_vec();
        l.become_leader(&mut disk, &state(L, 3, &[L, F]), 0)
            .unwrap();
        f.become_follower(&mut disk, &state(L, 3, &[L, F])).unwrap();
        let ask = |epoch: u32| OffsetForLeaderPartition {
            tp: tp(),
            current_leader_epoch: Some(3),
            leader_epoch: epoch,
        };
        let latest = l.handle_offsets_for_leader_epoch(&ask(3)).end;
        let older = l.handle_offsets_for_leader_epoch(&ask(0)).end;
        let resp = l.handle_offsets_for_leader_epoch(&ask(2));
        let cut = f.handle_offsets_for_leader_epoch_response(&mut disk, &resp);
        (latest, older, resp.end, cut)
    };
    let end = |epoch, end_offset| Some(crate::kafka::msg::EpochEndOffset { epoch, end_offset });
    let (latest, older, asked, cut) = answer(&[BugMode::Kafka6361]);
    assert_eq!(latest, end(3, 6), "the latest epoch: the LEO");
    assert_eq!(older, None, "older than the first entry: UNDEFINED");
    assert_eq!(asked, end(2, 4));
    assert_eq!(
        cut,
        FetchOutcome::Truncated {
            offset: 4,
            complete: true
        }
    );
    let (latest, older, asked, cut) = answer(&[]);
    assert_eq!(latest, end(3, 6));
    assert_eq!(older, end(0, 0));
    assert_eq!(asked, end(1, 4));
    assert_eq!(
        cut,
        FetchOutcome::Truncated {
            offset: 2,
            complete: true
        }
    );
}

#[test]
fn fetches_with_a_stale_or_future_leader_epoch_are_fenced() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1]);
    l.become_leader(&mut disk, &state(L, 5, &[L, F]), 0)
        .unwrap();
    for (epoch, error) in [
        (4, ErrorCode::FencedLeaderEpoch),
        (6, ErrorCode::UnknownLeaderEpoch),
    ] {
        let req = FetchPartition {
            tp: tp(),
            fetch_offset: 1,
            last_fetched_epoch: Some(1),
            current_leader_epoch: Some(epoch),
            max_records: 10,
        };
        let (resp, _) = l.handle_follower_fetch(F, &req, 1);
        assert_eq!(resp.error, error);
        assert!(resp.batches.is_empty());
    }
    // A broker that does not lead answers NOT_LEADER_OR_FOLLOWER.
    let mut f = replica(F, &mut disk, &[1]);
    f.become_follower(&mut disk, &state(L, 5, &[L, F])).unwrap();
    let req = f.fetch_request(10).unwrap();
    let (resp, _) = f.handle_follower_fetch(G, &req, 1);
    assert_eq!(resp.error, ErrorCode::NotLeaderOrFollower);
    assert_eq!(
        f.handle_fetch_response(&mut disk, &req, &resp),
        FetchOutcome::Error(ErrorCode::NotLeaderOrFollower)
    );
}

#[test]
fn leader_and_isr_applies_only_newer_leader_epochs_and_controllers_are_fenced() {
    let mut disk = MemDisk::default();
    let mut r = replica(F, &mut disk, &[]);
    r.become_follower(&mut disk, &state(L, 5, &[L, F])).unwrap();
    assert_eq!(
        r.become_leader(&mut disk, &state(F, 4, &[F]), 0),
        Err(ErrorCode::StaleControllerEpoch)
    );
    assert_eq!(
        r.become_follower(&mut disk, &state(G, 5, &[G])),
        Err(ErrorCode::FencedLeaderEpoch)
    );
    assert!(r.become_leader(&mut disk, &state(F, 6, &[F]), 0).is_ok());
    assert!(r.is_leader());
    let mut fence = ControllerEpochFence::default();
    assert!(fence.admit(3).is_ok() && fence.admit(3).is_ok());
    assert_eq!(fence.admit(2), Err(ErrorCode::StaleControllerEpoch));
}

fn produce(
    l: &mut Replica,
    disk: &mut MemDisk,
    acks: Acks,
    cfg: &ServerProperties,
) -> ProduceOutcome {
    let records = vec![Record { key: 0, value: 9 }];
    l.append_records(disk, acks, ProducerStamp::NONE, records, cfg)
}

#[test]
fn high_watermark_is_min_leo_over_the_isr_and_only_moves_forward() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1, 1]);
    let mut f = replica(F, &mut disk, &[1, 1]);
    let mut g = replica(G, &mut disk, &[1]);
    let isr = [L, F, G];
    l.become_leader(&mut disk, &state(L, 2, &isr), 0).unwrap();
    f.become_follower(&mut disk, &state(L, 2, &isr)).unwrap();
    g.become_follower(&mut disk, &state(L, 2, &isr)).unwrap();
    let cfg = ServerProperties::default();
    produce(&mut l, &mut disk, Acks::All, &cfg);
    // Nobody has fetched in epoch 2: the HW stays at the replica's own (0).
    assert_eq!(l.high_watermark(), 0);
    fetch_once(&mut l, &mut f, &mut disk, 1);
    fetch_once(&mut l, &mut f, &mut disk, 1);
    assert_eq!(l.high_watermark(), 0, "G has not fetched yet");
    fetch_once(&mut l, &mut g, &mut disk, 1);
    assert_eq!(l.high_watermark(), 1, "G's LEO is 1");
    fetch_once(&mut l, &mut g, &mut disk, 1);
    assert_eq!(l.high_watermark(), 3);
    // Followers learn the HW one fetch later, bounded by their own LEO.
    assert_eq!(f.high_watermark(), 0);
    fetch_once(&mut l, &mut f, &mut disk, 1);
    assert_eq!(f.high_watermark(), 3);
    // A follower's own fetch offset going back (after a restart) never lowers the HW.
    let stale = FetchPartition {
        fetch_offset: 1,
        last_fetched_epoch: Some(1),
        ..f.fetch_request(10).unwrap()
    };
    l.handle_follower_fetch(F, &stale, 2);
    assert_eq!(l.high_watermark(), 3);
}

#[test]
fn kafka_13141_a_diverging_fetch_does_not_count_as_the_followers_leo() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1, 1]);
    let mut f = replica(F, &mut disk, &[1, 1, 1, 1, 1]);
    l.become_leader(&mut disk, &state(L, 2, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, 2, &[L, F])).unwrap();
    for _ in 0..3 {
        produce(&mut l, &mut disk, Acks::All, &ServerProperties::default());
    }
    // F fetches from 5 in epoch 1: diverging. Counting 5 as its LEO would put the HW at 5
    // over records F does not have (its offsets 2-4 are epoch-1 records the leader lacks).
    let req = f.fetch_request(10).unwrap();
    let (resp, _) = l.handle_follower_fetch(F, &req, 1);
    assert!(resp.diverging_epoch.is_some());
    assert_eq!(l.leader_state().unwrap().followers[&F].log_end_offset, None);
    assert_eq!(l.high_watermark(), 0);
    f.handle_fetch_response(&mut disk, &req, &resp);
    fetch_once(&mut l, &mut f, &mut disk, 2);
    fetch_once(&mut l, &mut f, &mut disk, 2);
    assert_eq!(l.high_watermark(), 5);
    assert_eq!(epochs_of(&f), epochs_of(&l));
}

#[test]
fn isr_shrinks_after_the_lag_time_and_the_hw_waits_for_the_zookeeper_write() {
    let mut disk = MemDisk::default();
    let cfg = ServerProperties {
        min_insync_replicas: 2,
        ..ServerProperties::default()
    };
    let mut l = replica(L, &mut disk, &[]);
    let mut f = replica(F, &mut disk, &[]);
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, 1, &[L, F])).unwrap();
    fetch_once(&mut l, &mut f, &mut disk, SEC);
    let ProduceOutcome::InLog { last_offset, .. } = produce(&mut l, &mut disk, Acks::All, &cfg)
    else {
        panic!("appended")
    };
    assert_eq!(l.acks_all_status(1, last_offset, &cfg), AckStatus::Waiting);
    // F stops fetching. Within replica.lag.time.max.ms nothing happens.
    assert_eq!(l.maybe_shrink_isr(30 * SEC, &cfg), None);
    let change = l.maybe_shrink_isr(32 * SEC, &cfg).expect("F lags");
    assert_eq!(change.isr, vec![L]);
    assert_eq!(change.expected_zk_version, 1);
    // Until the write lands, the ISR used for the HW still holds F.
    assert_eq!(l.high_watermark(), 0);
    assert_eq!(
        l.maybe_shrink_isr(40 * SEC, &cfg),
        None,
        "one change in flight"
    );
    assert!(l.isr_write_succeeded(2));
    assert_eq!(l.isr(), Some(&[L][..]));
    assert_eq!(l.zk_version(), 2);
    assert_eq!(l.high_watermark(), 1);
    // Committed, but the ISR is now below min.insync.replicas.
    assert_eq!(
        l.acks_all_status(1, last_offset, &cfg),
        AckStatus::Done(ErrorCode::NotEnoughReplicasAfterAppend)
    );
    assert_eq!(
        produce(&mut l, &mut disk, Acks::All, &cfg),
        ProduceOutcome::Rejected(ErrorCode::NotEnoughReplicas)
    );
    assert!(matches!(
        produce(&mut l, &mut disk, Acks::Leader, &cfg),
        ProduceOutcome::InLog { .. }
    ));
}

#[test]
fn a_failed_isr_write_is_given_up_and_stays_pending_until_the_next_leader_and_isr() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[]);
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    let cfg = ServerProperties::default();
    assert!(l.maybe_shrink_isr(31 * SEC, &cfg).is_some());
    l.isr_write_failed();
    assert_eq!(l.isr(), Some(&[L, F][..]));
    assert!(l.leader_state().unwrap().isr.in_flight());
    assert_eq!(l.maybe_shrink_isr(40 * SEC, &cfg), None, "no retry");
    l.become_leader(&mut disk, &state(L, 2, &[L]), 41 * SEC)
        .unwrap();
    assert!(!l.leader_state().unwrap().isr.in_flight());
    assert_eq!(l.isr(), Some(&[L][..]));

    // KAFKA-2729 mode: the pre-2.7 leader keeps its old ISR and tries again later.
    let mut l = Replica::new(
        tp(),
        L,
        PartitionLog::new("b1/t-0", LogConfig::default()),
        0,
        &[BugMode::Kafka2729],
    );
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    assert!(l.maybe_shrink_isr(31 * SEC, &cfg).is_some());
    l.isr_write_failed();
    assert!(!l.leader_state().unwrap().isr.in_flight());
    assert!(l.maybe_shrink_isr(31 * SEC, &cfg).is_some(), "tried again");
}

/// kafka-nemesis seed 402913, the leader's side: the expansion adding G applied in
/// ZooKeeper, its answer was lost, the resent copy got BadVersion and the read-back found
/// the controller's newer epoch. G may be in ZooKeeper's ISR, so it keeps holding the HW.
#[test]
fn an_expansion_whose_write_failed_still_holds_the_hw_at_the_members_leo() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1, 1]);
    let mut f = replica(F, &mut disk, &[1, 1]);
    let mut g = replica(G, &mut disk, &[1, 1]);
    l.high_watermark = 2;
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, 1, &[L, F])).unwrap();
    g.become_follower(&mut disk, &state(L, 1, &[L, F])).unwrap();
    let req = f.fetch_request(100).unwrap();
    assert_eq!(l.handle_follower_fetch(F, &req, 1).1, None);
    let req = g.fetch_request(100).unwrap();
    let change = l.handle_follower_fetch(G, &req, 1).1.expect("G caught up");
    assert_eq!(change.isr, vec![L, F, G]);
    l.isr_write_failed();
    let cfg = ServerProperties::default();
    for _ in 2..5 {
        produce(&mut l, &mut disk, Acks::Leader, &cfg);
    }
    for _ in 0..2 {
        let req = f.fetch_request(100).unwrap();
        let (resp, _) = l.handle_follower_fetch(F, &req, 2);
        f.handle_fetch_response(&mut disk, &req, &resp);
    }
    assert_eq!(f.log_end_offset(), 5);
    assert_eq!(l.leader_state().unwrap().isr.maximal(), vec![L, F, G]);
    assert_eq!(l.high_watermark(), 2, "G's LEO");
    assert_eq!(l.isr(), Some(&[L, F][..]), "not for min.insync.replicas");
}

/// A refused write whose read-back finds another ISR of the leader's own epoch: ZooKeeper's
/// ISR and version become the leader's.
#[test]
fn a_superseded_isr_write_adopts_zookeepers_isr_and_version() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1]);
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    let cfg = ServerProperties::default();
    assert!(l.maybe_shrink_isr(31 * SEC, &cfg).is_some());
    assert!(l.isr_write_superseded(&[L], 7), "F no longer holds the HW");
    assert_eq!((l.isr(), l.zk_version()), (Some(&[L][..]), 7));
    assert!(!l.leader_state().unwrap().isr.in_flight());
    assert_eq!(l.high_watermark(), 1);
    // An ISR without the leader is not taken.
    assert!(!l.isr_write_superseded(&[F], 8));
    assert_eq!(l.zk_version(), 7);
}

#[test]
fn kafka_7128_expansion_needs_the_start_of_the_leaders_epoch_not_just_the_hw() {
    // Catalogue K5: the new leader has LEO 10 but its HW lags at 5 (F is still in the ISR
    // and has not fetched in the new epoch, so the HW cannot move). G at offset 5 is at the
    // HW but misses offsets 5-9, which the previous leader may have committed.
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1; 10]);
    l.high_watermark = 5;
    let mut g = replica(G, &mut disk, &[1; 5]);
    l.become_leader(&mut disk, &state(L, 2, &[L, F]), 0)
        .unwrap();
    g.become_follower(&mut disk, &state(L, 2, &[L, F])).unwrap();
    assert_eq!(l.high_watermark(), 5);
    let req = g.fetch_request(1).unwrap();
    let (resp, change) = l.handle_follower_fetch(G, &req, 1);
    assert_eq!(change, None, "LEO 5 >= HW 5, but < epoch start 10");
    assert!(!l.follower_in_sync(G));
    g.handle_fetch_response(&mut disk, &req, &resp);
    for _ in 0..4 {
        let req = g.fetch_request(1).unwrap();
        let (resp, change) = l.handle_follower_fetch(G, &req, 1);
        assert_eq!(change, None);
        g.handle_fetch_response(&mut disk, &req, &resp);
    }
    let req = g.fetch_request(1).unwrap();
    let (_, change) = l.handle_follower_fetch(G, &req, 1);
    let change = change.expect("G reached offset 10");
    assert_eq!(change.isr, vec![L, F, G]);
    // Pending: G counts for the HW at once, not for min.insync.replicas.
    assert_eq!(l.leader_state().unwrap().isr.maximal(), vec![L, F, G]);
    assert_eq!(l.isr(), Some(&[L, F][..]));
    assert!(!l.isr_write_succeeded(3), "F still holds the HW");
    assert_eq!(l.isr(), Some(&[L, F, G][..]));
    assert_eq!(l.high_watermark(), 5);
}

#[test]
fn acks_all_fails_with_not_leader_once_the_leadership_is_gone() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[]);
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    let cfg = ServerProperties::default();
    let ProduceOutcome::InLog {
        last_offset,
        leader_epoch,
        ..
    } = produce(&mut l, &mut disk, Acks::All, &cfg)
    else {
        panic!("appended")
    };
    l.become_follower(&mut disk, &state(F, 2, &[F])).unwrap();
    assert_eq!(
        l.acks_all_status(leader_epoch, last_offset, &cfg),
        AckStatus::Done(ErrorCode::NotLeaderOrFollower)
    );
    assert_eq!(
        produce(&mut l, &mut disk, Acks::Leader, &cfg),
        ProduceOutcome::Rejected(ErrorCode::NotLeaderOrFollower)
    );
}

#[test]
fn idempotent_retry_is_answered_with_the_original_offset_and_still_waits_for_the_hw() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[]);
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    let cfg = ServerProperties::default();
    let stamp = ProducerStamp {
        producer_id: 11,
        producer_epoch: 0,
        base_sequence: 0,
    };
    let records = vec![Record { key: 1, value: 1 }, Record { key: 1, value: 2 }];
    let first = l.append_records(&mut disk, Acks::All, stamp, records.clone(), &cfg);
    let again = l.append_records(&mut disk, Acks::All, stamp, records, &cfg);
    let expected = ProduceOutcome::InLog {
        base_offset: 0,
        last_offset: 1,
        leader_epoch: 1,
        duplicate: true,
    };
    assert_eq!(again, expected);
    assert!(matches!(
        first,
        ProduceOutcome::InLog {
            duplicate: false,
            ..
        }
    ));
    assert_eq!(l.log_end_offset(), 2);
    assert_eq!(l.acks_all_status(1, 1, &cfg), AckStatus::Waiting);
    let gap = ProducerStamp {
        base_sequence: 5,
        ..stamp
    };
    let rec = vec![Record { key: 1, value: 3 }];
    assert_eq!(
        l.append_records(&mut disk, Acks::All, gap, rec, &cfg),
        ProduceOutcome::Rejected(ErrorCode::OutOfOrderSequenceNumber)
    );
}

#[test]
fn consumers_read_below_the_hw_and_list_offsets_reports_it() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1, 1, 1]);
    l.high_watermark = 2;
    l.become_leader(&mut disk, &state(L, 2, &[L]), 0).unwrap();
    assert_eq!(l.high_watermark(), 3, "alone in the ISR: HW = LEO");
    l.high_watermark = 2;
    let req = FetchPartition {
        tp: tp(),
        fetch_offset: 0,
        last_fetched_epoch: None,
        current_leader_epoch: Some(2),
        max_records: 100,
    };
    let resp: FetchPartitionResponse = l.handle_consumer_fetch(&req);
    assert_eq!(resp.batches.len(), 2);
    assert_eq!(resp.high_watermark, 2);
    let beyond = FetchPartition {
        fetch_offset: 7,
        ..req.clone()
    };
    assert_eq!(
        l.handle_consumer_fetch(&beyond).error,
        ErrorCode::OffsetOutOfRange
    );
    let latest = crate::kafka::msg::ListOffsetsPartition {
        tp: tp(),
        current_leader_epoch: Some(2),
        spec: crate::kafka::msg::OffsetSpec::Latest,
    };
    let listed = l.handle_list_offsets(&latest);
    assert_eq!((listed.offset, listed.leader_epoch), (2, Some(1)));
    let fenced = crate::kafka::msg::ListOffsetsPartition {
        current_leader_epoch: Some(1),
        ..latest
    };
    assert_eq!(
        l.handle_list_offsets(&fenced).error,
        ErrorCode::FencedLeaderEpoch
    );
}

#[test]
fn a_stale_fetch_response_is_ignored() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1, 1]);
    let mut f = replica(F, &mut disk, &[]);
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, 1, &[L, F])).unwrap();
    let req = f.fetch_request(10).unwrap();
    let (resp, _) = l.handle_follower_fetch(F, &req, 1);
    assert!(matches!(
        f.handle_fetch_response(&mut disk, &req, &resp),
        FetchOutcome::Appended { records: 2 }
    ));
    // The same response delivered twice (a retried fetch) must not append again.
    assert!(matches!(
        f.handle_fetch_response(&mut disk, &req, &resp),
        FetchOutcome::Ignored(_)
    ));
    assert_eq!(f.log_end_offset(), 2);
}

/// Kafka 2.7+ (`processFetchRequest`): a fetched batch that starts below the follower's
/// LEO makes the follower's append throw UnexpectedAppendOffsetException and the fetcher
/// marks the partition failed. The case: a leader re-appointed to the same epoch after a
/// power loss wrote one batch over offsets the follower holds one record at a time.
#[test]
fn a_batch_straddling_the_followers_end_fails_the_partition() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1]);
    let straddling = Batch {
        base_offset: 1,
        leader_epoch: 1,
        producer: ProducerStamp::NONE,
        records: (0..3)
            .map(|v| Record {
                key: 1,
                value: 100 + v,
            })
            .collect(),
    };
    l.log.append_as_follower(&mut disk, &[straddling]).unwrap();
    let mut f = replica(F, &mut disk, &[1, 1]);
    l.become_leader(&mut disk, &state(L, 1, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, 1, &[L, F])).unwrap();
    let outcome = fetch_once(&mut l, &mut f, &mut disk, 1);
    assert!(matches!(outcome, FetchOutcome::Failed(_)), "{outcome:?}");
    assert_eq!(f.log_end_offset(), 2, "nothing appended");
}

/// Kafka 2.7+ answers a fetch whose `lastFetchedEpoch` its epoch cache cannot place
/// (UNDEFINED: newer than its latest epoch, or an empty cache) with OFFSET_OUT_OF_RANGE;
/// the follower asks the leader's LEO and cuts its log to it (`fetchOffsetAndTruncate`)
/// instead of retrying the same fetch for ever. (An epoch older than the leader's first
/// one is placed, at that first epoch's start: a diverging answer, not this.)
#[test]
fn offset_out_of_range_cuts_to_a_shorter_leaders_end() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[]);
    let mut f = replica(F, &mut disk, &[3, 3]);
    l.become_leader(&mut disk, &state(L, 2, &[L, F]), 0)
        .unwrap();
    f.become_follower(&mut disk, &state(L, 2, &[L, F])).unwrap();
    assert_eq!(
        fetch_once(&mut l, &mut f, &mut disk, 1),
        FetchOutcome::OutOfRange
    );
    assert!(
        f.fetch_request(10).is_none(),
        "no fetch before the LEO is known"
    );
    let ask = f.leader_end_request().expect("asks the leader's LEO");
    let resp = ListOffsetsPartitionResponse {
        tp: ask.tp,
        error: ErrorCode::None,
        offset: l.log_end_offset(),
        leader_epoch: None,
    };
    let cut = FetchOutcome::Truncated {
        offset: 0,
        complete: true,
    };
    assert_eq!(f.handle_leader_end_offset(&mut disk, &resp), cut);
    assert!(f.fetch_request(10).is_some());
}

/// The monitor skips a replica whose stamps are unchanged: a follower fetch that moves only
/// the leader's view of the follower takes no fresh stamp; one that moves the HW does.
#[test]
fn a_follower_fetch_takes_a_fresh_stamp_only_when_the_hw_moves() {
    let mut disk = MemDisk::default();
    let mut l = replica(L, &mut disk, &[1, 1]);
    let mut f = replica(F, &mut disk, &[1, 1]);
    let mut g = replica(G, &mut disk, &[1]);
    let isr = [L, F, G];
    l.become_leader(&mut disk, &state(L, 2, &isr), 0).unwrap();
    f.become_follower(&mut disk, &state(L, 2, &isr)).unwrap();
    g.become_follower(&mut disk, &state(L, 2, &isr)).unwrap();
    let before = l.stamps();
    fetch_once(&mut l, &mut f, &mut disk, 1);
    assert_eq!(l.high_watermark(), 0, "G has not fetched yet");
    assert_eq!(l.stamps(), before, "only F's view moved");
    fetch_once(&mut l, &mut g, &mut disk, 1);
    assert_eq!(l.high_watermark(), 1);
    assert_ne!(l.stamps(), before, "the HW moved");
}
