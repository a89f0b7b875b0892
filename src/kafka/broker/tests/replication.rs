//! The data plane: produce purgatory, delayed fetches, ISR writes, the follower's fetch
//! loop, flushes and recovery.

use super::*;

#[test]
fn acks_all_waits_for_the_followers_fetch_past_the_batch() {
    let mut b = leader_bench(ServerProperties::default());
    b.request(CLIENT, 7, produce(Acks::All, &[10, 11]));
    assert!(b.responses(CLIENT).is_empty(), "held until replicated");
    assert_eq!(b.broker.view().held_requests, 1);
    let follower = ConnId(600);
    // The follower fetches the batch: the HW cannot pass it before its next fetch.
    b.request(follower, 1, fetch(Some(1), 0, None, 500));
    let resp = b.responses(follower).pop().unwrap().1;
    let Response::Fetch { partitions, .. } = resp else {
        panic!()
    };
    assert_eq!(partitions[0].batches.len(), 1);
    assert!(b.responses(CLIENT).is_empty());
    b.request(follower, 2, fetch(Some(1), 2, Some(1), 500));
    let got = b.responses(CLIENT);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 7);
    assert_eq!(produce_result(&got[0].1), (ErrorCode::None, Some(0)));
    assert_eq!(b.broker.view().replicas[&tp()].high_watermark(), 2);
}

#[test]
fn acks_all_times_out_and_acks_one_answers_after_the_append() {
    let mut b = leader_bench(ServerProperties::default());
    b.request(CLIENT, 1, produce(Acks::All, &[1]));
    b.request(CLIENT, 2, produce(Acks::Leader, &[2]));
    let now = b.responses(CLIENT);
    assert_eq!(now.len(), 1);
    assert_eq!(
        (now[0].0, produce_result(&now[0].1)),
        (2, (ErrorCode::None, Some(1)))
    );
    b.advance(1001 * MS);
    let late = b.responses(CLIENT);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].0, 1);
    assert_eq!(produce_result(&late[0].1).0, ErrorCode::RequestTimedOut);
    assert_eq!(b.broker.view().held_requests, 0);
}

#[test]
fn a_lost_leadership_answers_held_produces_not_leader() {
    let mut b = leader_bench(ServerProperties::default());
    b.request(CLIENT, 1, produce(Acks::All, &[1]));
    // The controller moves leadership to broker 1 (epoch 2).
    b.leader_and_isr(state(1, 2, &[1], 1));
    let got = b.responses(CLIENT);
    assert_eq!(got.len(), 1);
    assert_eq!(produce_result(&got[0].1).0, ErrorCode::NotLeaderOrFollower);
    // And a produce to the follower is refused at once.
    b.request(CLIENT, 2, produce(Acks::Leader, &[2]));
    let got = b.responses(CLIENT);
    assert_eq!(produce_result(&got[0].1).0, ErrorCode::NotLeaderOrFollower);
}

#[test]
fn acks_all_below_min_insync_replicas_is_refused_before_the_append() {
    let props = ServerProperties {
        min_insync_replicas: 3,
        ..ServerProperties::default()
    };
    let mut b = leader_bench(props);
    b.request(CLIENT, 1, produce(Acks::All, &[1]));
    let got = b.responses(CLIENT);
    assert_eq!(produce_result(&got[0].1).0, ErrorCode::NotEnoughReplicas);
    assert_eq!(b.broker.view().replicas[&tp()].log_end_offset(), 0);
}

#[test]
fn a_fetch_at_the_end_is_held_until_data_arrives_or_max_wait() {
    let mut b = leader_bench(ServerProperties::default());
    let follower = ConnId(600);
    b.request(follower, 1, fetch(Some(1), 0, None, 500));
    assert!(
        b.responses(follower).is_empty(),
        "nothing to return yet: held"
    );
    b.request(CLIENT, 9, produce(Acks::Leader, &[5]));
    let got = b.responses(follower);
    let Response::Fetch { partitions, .. } = &got[0].1 else {
        panic!()
    };
    assert_eq!(partitions[0].batches[0].records[0].value, 5);
    // Caught up: the next fetch is answered empty after max_wait.
    b.request(follower, 2, fetch(Some(1), 1, Some(1), 500));
    b.advance(499 * MS);
    assert!(b.responses(follower).is_empty());
    b.advance(2 * MS);
    let got = b.responses(follower);
    let Response::Fetch { partitions, .. } = &got[0].1 else {
        panic!()
    };
    assert!(partitions[0].batches.is_empty());
    assert_eq!(partitions[0].high_watermark, 1);
}

#[test]
fn a_consumer_reads_only_below_the_high_watermark() {
    let mut b = leader_bench(ServerProperties::default());
    b.request(CLIENT, 1, produce(Acks::Leader, &[1, 2]));
    b.responses(CLIENT);
    let consumer = ConnId(700);
    b.request(consumer, 1, fetch(None, 0, None, 100));
    assert!(b.responses(consumer).is_empty(), "HW 0: held");
    // The follower catches up: the HW moves to 2 and the consumer's fetch completes.
    b.request(ConnId(600), 1, fetch(Some(1), 2, Some(1), 0));
    let got = b.responses(consumer);
    let Response::Fetch { partitions, .. } = &got[0].1 else {
        panic!()
    };
    assert_eq!(partitions[0].batches[0].records.len(), 2);
}

#[test]
fn isr_shrink_is_written_conditionally_then_notified() {
    let props = ServerProperties {
        replica_lag_time_max_ms: 1000,
        ..ServerProperties::default()
    };
    let mut b = leader_bench(props);
    b.request(CLIENT, 1, produce(Acks::Leader, &[1]));
    // Follower 1 never fetches: after the lag it leaves the ISR, through ZooKeeper.
    b.advance(1600 * MS);
    let writes: Vec<&Op> =
        b.zk.writes
            .iter()
            .filter(|op| matches!(op, Op::SetData { path, .. } if path.ends_with("/state")))
            .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let Op::SetData { data, version, .. } = writes[0] else {
        unreachable!()
    };
    assert_eq!(
        *version, 0,
        "conditional on the zkVersion from LeaderAndIsr"
    );
    let written: PartitionStateData = zkdata::decode(data).unwrap();
    assert_eq!((written.isr.clone(), written.leader_epoch), (vec![0], 1));
    let r = &b.broker.view().replicas[&tp()];
    assert_eq!(r.isr(), Some(&[0][..]));
    assert_eq!(r.zk_version(), 1);
    assert_eq!(r.high_watermark(), 1, "the shrink lets the HW move");
    b.advance(200 * MS);
    let notes: Vec<&String> =
        b.zk.nodes
            .keys()
            .filter(|p| p.starts_with(zkdata::ISR_CHANGE_PREFIX))
            .collect();
    assert_eq!(notes.len(), 1, "one ISR change notification");
}

/// A shrink refused on its version, where the read-back finds another ISR of the leader's
/// own epoch: the leader takes ZooKeeper's ISR and version, and its next try applies.
#[test]
fn a_bad_version_within_the_leaders_epoch_adopts_zookeepers_isr_and_version() {
    let props = ServerProperties {
        replica_lag_time_max_ms: 1000,
        ..ServerProperties::default()
    };
    let mut b = leader_bench(props);
    // Another write of epoch 1 moved the version on: the leader's zkVersion is stale.
    let path = zkdata::partition_state_path(&tp());
    b.zk.nodes.get_mut(&path).unwrap().1.version = 5;
    b.request(CLIENT, 1, produce(Acks::Leader, &[1]));
    b.advance(2600 * MS);
    assert_eq!(
        state_write_versions(&b),
        vec![0, 5],
        "refused, adopted, again"
    );
    let r = &b.broker.view().replicas[&tp()];
    assert_eq!((r.isr(), r.zk_version()), (Some(&[0][..]), 6));
    assert_eq!(r.high_watermark(), 1);
}

/// KAFKA-2729 mode: the pre-2.7 leader keeps its old ISR and its stale zkVersion, and every
/// later try fails the same way ("Cached zkVersion not equal to that in zookeeper").
#[test]
fn kafka_2729_a_failed_isr_write_keeps_the_old_isr_and_the_stale_version() {
    let props = ServerProperties {
        replica_lag_time_max_ms: 1000,
        bug_modes: vec![crate::kafka::config::BugMode::Kafka2729],
        ..ServerProperties::default()
    };
    let mut b = leader_bench(props);
    let path = zkdata::partition_state_path(&tp());
    b.zk.nodes.get_mut(&path).unwrap().1.version = 5;
    b.request(CLIENT, 1, produce(Acks::Leader, &[1]));
    b.advance(2600 * MS);
    let r = &b.broker.view().replicas[&tp()];
    assert_eq!(
        r.isr(),
        Some(&[0, 1][..]),
        "BadVersion: the shrink did not happen"
    );
    assert_eq!(r.high_watermark(), 0, "the HW still waits for follower 1");
    let versions = state_write_versions(&b);
    assert!(
        versions.len() > 1 && versions.iter().all(|&v| v == 0),
        "{versions:?}"
    );
    assert!(!b
        .zk
        .nodes
        .keys()
        .any(|p| p.starts_with(zkdata::ISR_CHANGE_PREFIX)));
}

/// kafka-nemesis seed 402913: ZooKeeper applies the leader's expansion but its answer is
/// lost with the connection; the controller then writes the next leader epoch from it;
/// the leader's second copy gets BadVersion and the read-back finds the controller's
/// state. The member being added may be in ZooKeeper's ISR (it is: [0, 1]), so it stays in
/// the ISR the HW counts, and no other ISR change is tried, until the LeaderAndIsr of the
/// new epoch.
#[test]
fn an_expansion_whose_answer_was_lost_holds_the_hw_after_a_bad_version() {
    let mut b = Bench::started(0);
    let path = zkdata::partition_state_path(&tp());
    let data = zkdata::encode(&PartitionStateData::new(Some(0), 1, &[0, 2], 1));
    b.zk.create(&path, data, 0);
    b.leader_and_isr(state(0, 1, &[0, 2], 0));
    b.request(CLIENT, 1, produce(Acks::Leader, &[1, 2]));
    b.request(ConnId(602), 1, fetch(Some(2), 2, Some(1), 0));
    assert_eq!(b.broker.view().replicas[&tp()].high_watermark(), 2);
    // Follower 1 catches up: the expansion applies, its answer is lost.
    b.zk_up = false;
    b.request(ConnId(601), 1, fetch(Some(1), 2, Some(1), 0));
    let expanded = zkdata::encode(&PartitionStateData::new(Some(0), 1, &[0, 2, 1], 1));
    let node = b.zk.nodes.get_mut(&path).unwrap();
    (node.0, node.1.version) = (expanded, 1);
    // The controller's controlled shutdown of broker 2, from the expanded state.
    let shut = zkdata::encode(&PartitionStateData::new(Some(0), 2, &[0, 1], 1));
    let node = b.zk.nodes.get_mut(&path).unwrap();
    (node.0, node.1.version) = (shut, 2);
    let (conn, _) = b.zk_conn.expect("connected");
    b.event(Event::ConnDown { conn, peer: ZK });
    b.zk_up = true;
    b.advance(500 * MS);
    assert_eq!(
        state_write_versions(&b),
        vec![0],
        "the second copy, refused"
    );
    // Broker 2 fetches on (still in epoch 1 until its StopReplica); broker 1 does not.
    b.request(CLIENT, 2, produce(Acks::Leader, &[3, 4, 5]));
    b.request(ConnId(602), 2, fetch(Some(2), 5, Some(1), 0));
    b.advance(20_000 * MS);
    let r = &b.broker.view().replicas[&tp()];
    let isr = &r.leader_state().unwrap().isr;
    assert!(isr.in_flight(), "given up, not resolved: {isr:?}");
    assert_eq!(isr.maximal(), vec![0, 2, 1]);
    assert_eq!(r.high_watermark(), 2, "not past broker 1's LEO");
    assert_eq!(
        state_write_versions(&b),
        vec![0],
        "no ISR change tried meanwhile"
    );
    // The LeaderAndIsr of epoch 2 settles it.
    b.leader_and_isr(state(0, 2, &[0, 1], 2));
    let r = &b.broker.view().replicas[&tp()];
    assert!(!r.leader_state().unwrap().isr.in_flight());
    assert_eq!((r.isr(), r.zk_version()), (Some(&[0, 1][..]), 2));
}

/// The versions of the partition-state writes the fake server received, in order.
fn state_write_versions(b: &Bench) -> Vec<i32> {
    (b.zk.writes.iter())
        .filter_map(|op| match op {
            Op::SetData { path, version, .. } if path.ends_with("/state") => Some(*version),
            _ => None,
        })
        .collect()
}

#[test]
fn isr_expansion_counts_for_the_hw_before_it_is_committed() {
    let mut b = Bench::started(0);
    let data = zkdata::encode(&PartitionStateData::new(Some(0), 1, &[0], 1));
    b.zk.create(&zkdata::partition_state_path(&tp()), data, 0);
    b.zk_up = false; // ZooKeeper stops answering: the expansion stays pending.
    b.leader_and_isr(state(0, 1, &[0], 0));
    b.request(CLIENT, 1, produce(Acks::Leader, &[1, 2]));
    b.request(ConnId(600), 1, fetch(Some(1), 2, Some(1), 0));
    let r = &b.broker.view().replicas[&tp()];
    assert_eq!(
        r.isr(),
        Some(&[0][..]),
        "not committed before ZooKeeper has it"
    );
    assert!(r.leader_state().unwrap().isr.in_flight());
    assert_eq!(r.high_watermark(), 2);
}

#[test]
fn the_follower_fetches_appends_and_fetches_again() {
    let mut b = Bench::started(1);
    b.leader_and_isr(state(0, 1, &[0, 1], 0));
    let reqs = b.requests();
    assert_eq!(b.connects.last().map(|c| c.1), Some(node_of(0)));
    let (conn, corr, req) = reqs.last().cloned().expect("a fetch to the leader");
    let Request::Fetch {
        replica_id,
        partitions,
        ..
    } = &req
    else {
        panic!("{req:?}")
    };
    assert_eq!((*replica_id, partitions[0].fetch_offset), (Some(1), 0));
    assert_eq!(partitions[0].current_leader_epoch, Some(1));
    // The leader's answer: one batch of epoch 1, HW 1.
    let mut leader_log = crate::kafka::partition_log::PartitionLog::new("x", Default::default());
    let mut scratch = MemDisk::default();
    leader_log.append_as_leader(
        &mut scratch,
        1,
        ProducerStamp::NONE,
        vec![Record { key: 0, value: 3 }],
    );
    let batches = leader_log.read(0, 10, 1);
    let resp = Response::Fetch {
        error: ErrorCode::None,
        partitions: vec![crate::kafka::msg::FetchPartitionResponse {
            tp: tp(),
            error: ErrorCode::None,
            high_watermark: 1,
            log_start_offset: 0,
            diverging_epoch: None,
            batches,
        }],
    };
    let msg = WireMsg::Kafka(KafkaMsg::Response {
        correlation_id: corr,
        body: resp,
    });
    b.event(Event::Message {
        conn,
        peer: node_of(0),
        msg,
    });
    let r = &b.broker.view().replicas[&tp()];
    assert_eq!((r.log_end_offset(), r.high_watermark()), (1, 1));
    let next = b.requests();
    let Some((_, _, Request::Fetch { partitions, .. })) = next.last() else {
        panic!("{next:?}")
    };
    assert_eq!(partitions[0].fetch_offset, 1);
    assert_eq!(partitions[0].last_fetched_epoch, Some(1));
}

#[test]
fn a_follower_truncates_on_a_diverging_epoch() {
    let mut b = Bench::started(1);
    // Broker 1 led epoch 1 and wrote 3 records the others never got.
    let data = zkdata::encode(&PartitionStateData::new(Some(1), 1, &[1], 1));
    b.zk.create(&zkdata::partition_state_path(&tp()), data, 0);
    b.leader_and_isr(PartitionState {
        replicas: vec![0, 1, 2],
        ..state(1, 1, &[1], 0)
    });
    for v in 1..=3 {
        b.request(CLIENT, v, produce(Acks::Leader, &[v]));
    }
    assert_eq!(b.broker.view().replicas[&tp()].log_end_offset(), 3);
    // Broker 0 now leads epoch 2 from offset 1.
    b.leader_and_isr(state(0, 2, &[0], 1));
    let (conn, corr, req) = b.requests().pop().expect("a fetch");
    let Request::Fetch { partitions, .. } = req else {
        panic!()
    };
    assert_eq!(partitions[0].last_fetched_epoch, Some(1));
    let resp = Response::Fetch {
        error: ErrorCode::None,
        partitions: vec![crate::kafka::msg::FetchPartitionResponse {
            tp: tp(),
            error: ErrorCode::None,
            high_watermark: 1,
            log_start_offset: 0,
            diverging_epoch: Some(crate::kafka::msg::EpochEndOffset {
                epoch: 1,
                end_offset: 1,
            }),
            batches: vec![],
        }],
    };
    let msg = WireMsg::Kafka(KafkaMsg::Response {
        correlation_id: corr,
        body: resp,
    });
    b.event(Event::Message {
        conn,
        peer: node_of(0),
        msg,
    });
    assert_eq!(b.broker.view().replicas[&tp()].log_end_offset(), 1);
}

#[test]
fn flush_interval_messages_holds_the_ack_until_the_fsync() {
    let props = ServerProperties {
        log_flush_interval_messages: 1,
        ..ServerProperties::default()
    };
    let mut b = leader_bench(props);
    b.fsyncs.clear();
    b.request(CLIENT, 1, produce(Acks::Leader, &[1]));
    assert!(b.responses(CLIENT).is_empty(), "held for the flush");
    assert!(!b.fsyncs.is_empty());
    b.complete_fsyncs();
    let got = b.responses(CLIENT);
    assert_eq!(produce_result(&got[0].1), (ErrorCode::None, Some(0)));
    assert_eq!(b.broker.view().replicas[&tp()].log.log.recovery_point(), 1);
}

#[test]
fn a_restarted_broker_recovers_its_logs_and_high_watermarks_from_disk() {
    let mut b = leader_bench(ServerProperties::default());
    b.request(CLIENT, 1, produce(Acks::Leader, &[1, 2]));
    b.request(CLIENT, 2, produce(Acks::Leader, &[3]));
    b.request(ConnId(600), 1, fetch(Some(1), 3, Some(1), 0));
    assert_eq!(b.broker.view().replicas[&tp()].high_watermark(), 3);
    // The HW checkpoint interval passes; then the process is killed (page cache kept).
    b.advance(5_100 * MS);
    let disk = b.disk.clone();
    let mut again = Bench::with_props(0, ServerProperties::default());
    again.disk = disk;
    again.zk = std::mem::take(&mut b.zk);
    again.event(Event::Start { restarted: true });
    let r = &again.broker.view().replicas[&tp()];
    assert_eq!(r.log_end_offset(), 3);
    assert_eq!(r.high_watermark(), 3);
    assert_eq!(r.log.latest_epoch(), Some(1));
    assert_eq!(r.leader_epoch(), None, "no role until a LeaderAndIsr");
}

#[test]
fn an_isr_write_whose_answer_was_lost_is_read_back_before_it_counts() {
    let props = ServerProperties {
        replica_lag_time_max_ms: 1000,
        ..ServerProperties::default()
    };
    let mut b = leader_bench(props);
    b.request(CLIENT, 1, produce(Acks::Leader, &[1]));
    // ZooKeeper applies the shrink but the answer is lost with the connection.
    b.zk_up = false;
    b.advance(1600 * MS);
    let path = zkdata::partition_state_path(&tp());
    let applied = zkdata::encode(&PartitionStateData::new(Some(0), 1, &[0], 1));
    let node = b.zk.nodes.get_mut(&path).unwrap();
    node.0 = applied;
    node.1.version = 1;
    let (conn, _) = b.zk_conn.expect("connected");
    b.event(Event::ConnDown { conn, peer: ZK });
    let r = &b.broker.view().replicas[&tp()];
    assert!(
        r.leader_state().unwrap().isr.in_flight(),
        "unknown: still pending"
    );
    assert_eq!(
        r.high_watermark(),
        0,
        "the pending shrink still holds the HW"
    );
    b.zk_up = true;
    b.advance(500 * MS);
    let r = &b.broker.view().replicas[&tp()];
    assert_eq!(r.isr(), Some(&[0][..]), "read back: it had applied");
    assert_eq!((r.zk_version(), r.high_watermark()), (1, 1));
}

#[test]
fn stop_replica_with_delete_removes_the_log_directory() {
    let mut b = leader_bench(ServerProperties::default());
    b.request(CLIENT, 1, produce(Acks::Leader, &[1]));
    assert!(b.disk.files.keys().any(|f| f.starts_with("t-0/")));
    let body = Request::StopReplica {
        controller_id: 2,
        controller_epoch: 1,
        broker_epoch: b.broker_epoch(),
        partitions: vec![crate::kafka::msg::StopReplicaPartition {
            tp: tp(),
            leader_epoch: 1,
            delete_partition: true,
        }],
    };
    let conn = ConnId(504);
    b.request(conn, 1, body);
    assert_eq!(
        b.responses(conn),
        vec![(
            1,
            Response::StopReplica {
                error: ErrorCode::None,
                partitions: vec![(tp(), ErrorCode::None)]
            }
        )]
    );
    assert!(!b.broker.view().replicas.contains_key(&tp()));
    assert!(!b.disk.files.keys().any(|f| f.starts_with("t-0/")));
}

#[test]
fn an_isr_write_lost_in_flight_is_written_again_with_the_same_version() {
    // The first copy may still be travelling on the dead connection: a second copy with the
    // same expected version makes sure at most one applies.
    let props = ServerProperties {
        replica_lag_time_max_ms: 1000,
        ..ServerProperties::default()
    };
    let mut b = leader_bench(props);
    b.request(CLIENT, 1, produce(Acks::Leader, &[1]));
    b.zk_up = false;
    b.advance(1600 * MS);
    let (conn, _) = b.zk_conn.expect("connected");
    b.event(Event::ConnDown { conn, peer: ZK });
    b.zk_up = true;
    b.advance(500 * MS);
    let state_writes: Vec<i32> = (b.zk.writes.iter())
        .filter_map(|op| match op {
            Op::SetData { path, version, .. } if path.ends_with("/state") => Some(*version),
            _ => None,
        })
        .collect();
    assert_eq!(
        state_writes,
        vec![0],
        "only the second copy reached the fake server"
    );
    let r = &b.broker.view().replicas[&tp()];
    assert_eq!((r.isr(), r.zk_version()), (Some(&[0][..]), 1));
    // The first copy arriving now cannot apply: its version is gone.
    let path = zkdata::partition_state_path(&tp());
    let late = Op::SetData {
        path,
        data: vec![],
        version: 0,
    };
    assert_eq!(b.zk.apply(late, 0), OpResult::Err(ErrCode::BadVersion));
}

/// Kafka's `CheckpointFile.write` fsyncs `leader-epoch-checkpoint` before its atomic rename
/// at every change of the cache, so a stop or a kill keeps it: a new leader's epoch is
/// synced at once, not with the next log flush, and an unchanged cache is not synced again
/// (seed 660623: a lost checkpoint dropped the entry over a hole at the log start).
#[test]
fn an_epoch_change_fsyncs_the_leader_epoch_checkpoint() {
    let mut b = Bench::started_with(0, ServerProperties::default());
    let data = zkdata::encode(&PartitionStateData::new(Some(0), 1, &[0, 1], 1));
    b.zk.create(&zkdata::partition_state_path(&tp()), data, 0);
    b.fsyncs.clear();
    b.leader_and_isr(state(0, 1, &[0, 1], 0));
    let file = b.broker.view().replicas[&tp()]
        .log
        .epochs
        .file()
        .to_string();
    let synced = |b: &Bench| b.fsyncs.iter().filter(|(_, f)| **f == *file).count();
    assert_eq!(synced(&b), 1, "the new epoch's entry is fsynced at once");
    b.complete_fsyncs();
    b.request(CLIENT, 1, produce(Acks::Leader, &[1, 2]));
    assert_eq!(synced(&b), 0, "appends in the same epoch change no entry");
    // A newer epoch from the controller: its entry is synced again.
    b.leader_and_isr(state(0, 2, &[0, 1], 1));
    assert_eq!(synced(&b), 1);
}
