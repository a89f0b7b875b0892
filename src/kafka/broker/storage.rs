//! The broker's log directory (Kafka's `LogManager`): recovery of every partition from its
//! files alone at start-up, the flush policy (`log.flush.interval.messages` / `.ms`; no
//! fsync per write by default), and the three offset checkpoint files written on their
//! intervals.
//!
//! A flush that the message count makes due is synchronous in Kafka (`Log.append` calls
//! `flush()` before returning), so the append that triggered it is not acknowledged, and a
//! follower does not fetch again, before it completes: [`Storage::after_append`] tells the
//! caller so. Time-based flushes run from the scheduler and block nobody.

use std::collections::BTreeMap;

use super::replicas::{self, Marks, Replicas};
use crate::kafka::checkpoint::{self, HIGH_WATERMARK_FILE, LOG_START_FILE, RECOVERY_POINT_FILE};
use crate::kafka::config::ServerProperties;
use crate::kafka::epoch_cache::EpochEntry;
use crate::kafka::log::{FlushPlan, LogConfig};
use crate::kafka::msg::{BrokerId, TopicPartition};
use crate::kafka::partition_log::PartitionLog;
use crate::kafka::replica::Replica;
use crate::kafka::wire::WireMsg;
use crate::node::{Context, DiskIo, FsyncId};

const NS_PER_MS: u64 = 1_000_000;

#[derive(Clone, Debug)]
struct InFlight {
    plan: FlushPlan,
    remaining: usize,
    /// Started by an append that waits for it (a produce's answer, a follower's next fetch).
    sync: bool,
}

#[derive(Clone, Debug, Default)]
struct FlushState {
    /// When the oldest record not yet covered by a flush was appended.
    first_unflushed_ns: Option<u64>,
    in_flight: Option<InFlight>,
    /// Another flush is wanted as soon as this one completes.
    again: bool,
}

/// The broker's flush and checkpoint bookkeeping.
#[derive(Clone, Debug, Default)]
pub struct Storage {
    flushes: BTreeMap<TopicPartition, FlushState>,
    fsyncs: BTreeMap<FsyncId, TopicPartition>,
    last_hw_checkpoint_ns: u64,
    last_recovery_checkpoint_ns: u64,
    /// Each partition's epoch cache as its checkpoint was last fsynced.
    epochs_synced: BTreeMap<TopicPartition, Vec<EpochEntry>>,
    /// Per position in the replica map: the partition there and its epoch cache's change
    /// stamp when [`Self::sync_epoch_checkpoints`] last left `epochs_synced` equal to it.
    /// An equal stamp is an equal cache (see [`crate::kafka::stamp`]), so that partition
    /// needs no look-up; emptied whenever `epochs_synced` changes another way.
    epochs_seen: Vec<Option<(TopicPartition, u64)>>,
}

pub fn log_config(props: &ServerProperties) -> LogConfig {
    LogConfig {
        segment_bytes: props.log_segment_bytes,
    }
}

/// The partition a log directory name (`<topic>-<partition>`) stands for.
pub fn parse_dir(dir: &str) -> Option<TopicPartition> {
    let (topic, partition) = dir.rsplit_once('-')?;
    if topic.is_empty() {
        return None;
    }
    Some(TopicPartition::new(topic, partition.parse().ok()?))
}

/// Rebuilds every partition found on the disk from its files and the checkpoints (Kafka's
/// `LogManager.loadLogs`): the log from its segments (cutting a torn tail), the epoch cache
/// and producer state from the log, the HW from `replication-offset-checkpoint`. Err names
/// the partition whose files are corrupt.
pub fn recover_all(
    disk: &mut dyn DiskIo,
    me: BrokerId,
    props: &ServerProperties,
) -> Result<BTreeMap<TopicPartition, Replica>, String> {
    let recovery_points = checkpoint::read(disk, RECOVERY_POINT_FILE);
    let log_starts = checkpoint::read(disk, LOG_START_FILE);
    let hws = checkpoint::read(disk, HIGH_WATERMARK_FILE);
    let mut dirs: Vec<String> = disk
        .list()
        .iter()
        .filter_map(|f| f.split_once('/').map(|(d, _)| d.to_string()))
        .collect();
    dirs.sort();
    dirs.dedup();
    let mut out = BTreeMap::new();
    for dir in dirs {
        let Some(tp) = parse_dir(&dir) else {
            continue;
        };
        let start = log_starts.get(&tp).copied().unwrap_or(0);
        let rp = recovery_points.get(&tp).copied().unwrap_or(0);
        let (log, _cut) = PartitionLog::recover(disk, &dir, log_config(props), start, rp)
            .map_err(|why| format!("partition {tp}: {why}"))?;
        let hw = hws.get(&tp).copied().unwrap_or(0);
        out.insert(tp.clone(), Replica::new(tp, me, log, hw, &props.bug_modes));
    }
    Ok(out)
}

impl Storage {
    /// Records an append to `tp` and starts the flush the policy makes due. Returns true
    /// when the appender must wait for a flush (one started now or already running).
    pub fn after_append(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        replica: &mut Replica,
        props: &ServerProperties,
    ) -> bool {
        let now = ctx.now();
        let st = self.flushes.entry(replica.tp.clone()).or_default();
        st.first_unflushed_ns.get_or_insert(now);
        let unflushed = replica.log.log.unflushed_messages();
        let by_count = unflushed >= props.log_flush_interval_messages;
        if !by_count {
            return false;
        }
        if st.in_flight.is_some() {
            st.again = true;
            if let Some(f) = &mut st.in_flight {
                f.sync = true;
            }
            return true;
        }
        self.start_flush(ctx, replica, true);
        true
    }

    /// Whether an append-triggered flush of `tp` is still running.
    pub fn sync_flush_running(&self, tp: &TopicPartition) -> bool {
        self.flushes
            .get(tp)
            .and_then(|s| s.in_flight.as_ref())
            .is_some_and(|f| f.sync)
    }

    /// Fsyncs every file of the log written since the last flush (Kafka's `Log.flush`).
    pub fn start_flush(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        replica: &mut Replica,
        sync: bool,
    ) {
        let st = self.flushes.entry(replica.tp.clone()).or_default();
        if st.in_flight.is_some() {
            st.again = true;
            return;
        }
        let plan = replica.log.flush_plan();
        st.first_unflushed_ns = None;
        st.again = false;
        if plan.files.is_empty() {
            replica.log.log.mark_flushed(&plan);
            return;
        }
        for file in &plan.files {
            let id = ctx.fsync(file);
            self.fsyncs.insert(id, replica.tp.clone());
        }
        let remaining = plan.files.len();
        st.in_flight = Some(InFlight {
            plan,
            remaining,
            sync,
        });
    }

    /// An fsync completed. Returns the partition whose flush it finished, if it did; the
    /// recovery point has then moved and a wanted follow-up flush has started.
    pub fn on_fsync_done(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        fsync: FsyncId,
        replicas: &mut Replicas,
    ) -> Option<TopicPartition> {
        let tp = self.fsyncs.remove(&fsync)?;
        let st = self.flushes.get_mut(&tp)?;
        let f = st.in_flight.as_mut()?;
        f.remaining -= 1;
        if f.remaining > 0 {
            return None;
        }
        let done = st.in_flight.take().expect("in flight");
        let again = st.again;
        if let Some(replica) = replicas.get_mut(&tp) {
            replica.log.log.mark_flushed(&done.plan);
            if again {
                self.start_flush(ctx, replica, done.sync);
            }
        }
        Some(tp)
    }

    /// Forgets a deleted partition's flush state.
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.flushes.remove(tp);
        self.epochs_synced.remove(tp);
        self.epochs_seen.clear();
    }

    /// Start-up: every recovered cache is in the flush [`Broker::start`] begins.
    pub fn epochs_recovered(&mut self, replicas: &Replicas) {
        self.epochs_synced = (replicas.iter())
            .map(|(tp, r)| (tp.clone(), r.log.epochs.entries().to_vec()))
            .collect();
        self.epochs_seen.clear();
    }

    /// Kafka writes `leader-epoch-checkpoint` through `CheckpointFile.write`, which fsyncs
    /// the new file before its atomic rename, at every change of the cache
    /// (`LeaderEpochFileCache.assign` and, before 3.7, its truncations): a stop or a kill
    /// then keeps it, and recovery trusts its entries, among them one over a hole at the
    /// start of the log that no batch re-derives. Fsyncs the checkpoint of each partition
    /// in `marks` whose cache changed since its last fsync; nobody waits for it (the
    /// write is in the page cache already, and a kill before the fsync completes loses the
    /// replacement, as an unrenamed temporary file).
    pub fn sync_epoch_checkpoints(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        replicas: &Replicas,
        marks: Marks,
    ) {
        if marks == 0 {
            return;
        }
        for (i, (tp, r)) in replicas.iter().enumerate() {
            if marks & replicas::mark(tp) == 0 {
                continue;
            }
            let stamp = r.log.epochs.stamp();
            if let Some(Some((seen, s))) = self.epochs_seen.get(i) {
                if *s == stamp && seen == tp {
                    continue;
                }
            }
            let entries = r.log.epochs.entries();
            let synced = match self.epochs_synced.get_mut(tp) {
                Some(synced) => synced,
                None => self.epochs_synced.entry(tp.clone()).or_default(),
            };
            if synced.as_slice() != entries {
                synced.clear();
                synced.extend_from_slice(entries);
                ctx.fsync(r.log.epochs.file());
            }
            if self.epochs_seen.len() <= i {
                self.epochs_seen.resize(i + 1, None);
            }
            self.epochs_seen[i] = Some((tp.clone(), stamp));
        }
    }

    /// The scheduler's part: time-based flushes (`log.flush.interval.ms`) and the HW and
    /// recovery-point checkpoints on their intervals.
    pub fn tick(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        replicas: &mut Replicas,
        props: &ServerProperties,
    ) {
        let now = ctx.now();
        // Read first, handed out for change only when a flush is due: most ticks flush
        // nothing, and a replica handed out is one the monitor and the purgatory re-check.
        // A flush started changes no other partition's state, so deciding them all first
        // starts the same flushes in the same order.
        let mut due = Vec::new();
        for (tp, replica) in replicas.iter() {
            let st = self.flushes.entry(replica.tp.clone()).or_default();
            let unflushed = replica.log.log.unflushed_messages();
            if st.in_flight.is_none() && props.flush_due(unflushed, st.first_unflushed_ns, now) {
                due.push(tp.clone());
            }
        }
        for tp in due {
            let replica = replicas.get_mut(&tp).expect("listed");
            self.start_flush(ctx, replica, false);
        }
        let hw_every = props.replica_high_watermark_checkpoint_interval_ms * NS_PER_MS;
        if now.saturating_sub(self.last_hw_checkpoint_ns) >= hw_every {
            self.last_hw_checkpoint_ns = now;
            write_hw_checkpoint(ctx, replicas);
        }
        let rp_every = props.log_flush_offset_checkpoint_interval_ms * NS_PER_MS;
        if now.saturating_sub(self.last_recovery_checkpoint_ns) >= rp_every {
            self.last_recovery_checkpoint_ns = now;
            write_recovery_checkpoints(ctx, replicas);
        }
    }
}

/// `replication-offset-checkpoint`: every partition's HW, written and fsynced as Kafka's
/// `OffsetCheckpointFile.write` does.
pub fn write_hw_checkpoint(
    ctx: &mut Context<'_, WireMsg>,
    replicas: &BTreeMap<TopicPartition, Replica>,
) {
    let hws = replicas
        .iter()
        .map(|(tp, r)| (tp.clone(), r.high_watermark()))
        .collect();
    checkpoint::write(ctx.disk(), HIGH_WATERMARK_FILE, &hws);
    ctx.fsync(HIGH_WATERMARK_FILE);
}

/// `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint`.
pub fn write_recovery_checkpoints(
    ctx: &mut Context<'_, WireMsg>,
    replicas: &BTreeMap<TopicPartition, Replica>,
) {
    let rps = replicas
        .iter()
        .map(|(tp, r)| (tp.clone(), r.log.log.recovery_point()))
        .collect();
    checkpoint::write(ctx.disk(), RECOVERY_POINT_FILE, &rps);
    ctx.fsync(RECOVERY_POINT_FILE);
    let starts = replicas
        .iter()
        .map(|(tp, r)| (tp.clone(), r.log.log_start_offset()))
        .collect();
    checkpoint::write(ctx.disk(), LOG_START_FILE, &starts);
    ctx.fsync(LOG_START_FILE);
}

/// Deletes a partition's directory (StopReplica with deletePartition).
pub fn delete_dir(disk: &mut dyn DiskIo, tp: &TopicPartition) {
    let prefix = format!("{}/", tp.dir());
    for f in disk.list().into_iter().filter(|f| f.starts_with(&prefix)) {
        disk.remove(&f);
    }
}
