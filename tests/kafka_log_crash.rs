//! Goal: a Kafka partition log survives power loss on the kernel's own virtual disk. Random
//! appends (with rising leader epochs), truncations, fsyncs and crashes, over many seeds;
//! after every crash, recovery from the files alone must succeed (a torn tail or an orphaned
//! segment is never mistaken for corruption), must keep everything that was fsynced, must
//! yield a prefix of the log as it was before the crash, and must rebuild an epoch cache and
//! producer state consistent with the recovered batches.

use faultline::kafka::log::batch::{ProducerStamp, Record};
use faultline::kafka::log::LogConfig;
use faultline::kafka::partition_log::PartitionLog;
use faultline::kafka::producer_state::ProducerState;
use faultline::node::DiskIo;
use faultline::sim::disk::{Disk, DiskHandle, DiskOptions};
use faultline::sim::rng::{stream, Ratio};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

const DIR: &str = "orders-0";

fn config() -> LogConfig {
    // Three or four batches per segment: crashes often hit several unsynced segments.
    LogConfig { segment_bytes: 300 }
}

fn handle<'a>(disk: &'a mut Disk, rng: &'a mut ChaCha8Rng, n: &'a mut u64) -> DiskHandle<'a> {
    DiskHandle {
        disk,
        rng,
        read_corruption: Ratio::new(1, 40),
        corrupted_reads: n,
    }
}

type Snapshot = Vec<(u64, u32, Vec<Record>)>;

fn snapshot(log: &PartitionLog) -> Snapshot {
    log.log
        .batches()
        .map(|b| (b.base_offset, b.leader_epoch, b.records.to_vec()))
        .collect()
}

/// Fsyncs every file of the plan at once (as if all fsyncs completed).
fn flush(log: &mut PartitionLog, disk: &mut Disk) {
    let plan = log.flush_plan();
    for f in &plan.files {
        let target = disk.fsync_target(f);
        disk.complete_fsync(f, target);
    }
    log.log.mark_flushed(&plan);
}

fn check_recovered(seed: u64, log: &PartitionLog, before: &Snapshot, durable: Option<&Snapshot>) {
    let got = snapshot(log);
    if let Some(durable) = durable {
        assert!(
            got.len() <= before.len(),
            "seed {seed}: recovered more than was written"
        );
        assert_eq!(
            got[..],
            before[..got.len()],
            "seed {seed}: not a prefix of the log"
        );
        assert!(
            got.len() >= durable.len(),
            "seed {seed}: fsynced batches lost: got {} of {}: {:?}",
            got.len(),
            durable.len(),
            got.iter().map(|b| b.0).collect::<Vec<_>>()
        );
    }
    // The epoch cache agrees with every batch; the producer state is the log's.
    for (base, epoch, _) in &got {
        assert_eq!(log.epoch_before(base + 1), Some(*epoch), "seed {seed}");
    }
    let entries = log.epochs.entries();
    assert!(entries
        .windows(2)
        .all(|w| w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset));
    assert_eq!(log.producers, ProducerState::rebuild(log.log.batches()));
}

fn run(seed: u64) -> u64 {
    let mut rng = stream(seed, "kafka-log-test");
    let mut faults = stream(seed, "disk");
    let mut disk = Disk::default();
    let options = DiskOptions::default();
    let mut corrupted = 0;
    let mut log = PartitionLog::new(DIR, config());
    let mut epoch = 1;
    let mut seq = 0;
    // The log as of the last flush, if nothing was truncated since (then a crash must keep
    // a prefix of the current log that contains it).
    let mut durable: Option<Snapshot> = Some(Vec::new());
    let mut crashes = 0;
    for _ in 0..300 {
        let mut io = handle(&mut disk, &mut faults, &mut corrupted);
        match rng.gen_range(0..100) {
            0..=59 => {
                let n = rng.gen_range(1..4);
                let records = (0..n)
                    .map(|i| Record {
                        key: 3,
                        value: seq + i,
                    })
                    .collect();
                let stamp = ProducerStamp {
                    producer_id: 1,
                    producer_epoch: 0,
                    base_sequence: seq as i32,
                };
                log.append_as_leader(&mut io, epoch, stamp, records);
                seq += n;
            }
            60..=64 => epoch += 1,
            65..=71 => {
                let to = rng.gen_range(0..=log.log_end_offset());
                log.truncate_to(&mut io, to);
                durable = None;
                // Keep the producer's sequences in step with the log it now has.
                seq = log
                    .producers
                    .entry(1)
                    .and_then(|e| e.last_seq())
                    .map_or(0, |s| s as u64 + 1);
            }
            72..=89 => {
                flush(&mut log, &mut disk);
                durable = Some(snapshot(&log));
            }
            _ => {
                let before = snapshot(&log);
                disk.crash(&mut faults, &options);
                crashes += 1;
                let rp = log.log.recovery_point();
                let mut io = handle(&mut disk, &mut faults, &mut corrupted);
                let (back, _) = PartitionLog::recover(&mut io, DIR, config(), 0, rp)
                    .unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
                check_recovered(seed, &back, &before, durable.as_ref());
                log = back;
                // As a broker does before serving: make recovery's cuts durable.
                flush(&mut log, &mut disk);
                epoch = epoch.max(log.latest_epoch().unwrap_or(0));
                seq = log
                    .producers
                    .entry(1)
                    .and_then(|e| e.last_seq())
                    .map_or(0, |s| s as u64 + 1);
                // What survived a crash is durable now.
                durable = Some(snapshot(&log));
            }
        }
    }
    assert!(io_files_consistent(&mut disk, &mut faults, &log));
    crashes
}

/// The segment files on disk are exactly the log's segments.
fn io_files_consistent(disk: &mut Disk, rng: &mut ChaCha8Rng, log: &PartitionLog) -> bool {
    let mut n = 0;
    let io = handle(disk, rng, &mut n);
    let mut listed = io.list();
    listed.retain(|f| f.ends_with(".log"));
    listed == log.log.segment_files()
}

#[test]
fn kafka_log_recovers_from_every_power_loss_over_500_seeds() {
    let crashes: u64 = (0..500).map(run).sum();
    // The schedule really crashed (about 10% of 300 steps per seed).
    assert!(crashes > 500 * 15, "only {crashes} crashes");
}
