//! One partition as the monitor sees it: a mirror per replica, the committed history (the
//! records below the highest HW any leader exposed), the leaders seen per leader epoch, the
//! record stamped at each (epoch, offset), and the partition-state znode as ZooKeeper
//! holds it. The checks that compare replicas with each other and with ZooKeeper live here.

use std::collections::{BTreeMap, BTreeSet};

use super::ack::Acks;
use super::canon::Canon;
use super::mons::Mons;
use super::replica::{Junction, LogDelta, MonRole, ReplicaMon, Summary};
use super::stamps::Stamps;
use super::{
    finding, AllowedLosses, DataLoss, Finding, ForkedReplica, ForkedSequence, LossyElection,
    K_HW_MONO, K_LEADER_COMPLETE, K_ONE_LEADER, K_ZK_FENCING,
};
use crate::kafka::msg::{BrokerId, TopicPartition};
use crate::kafka::replica::{Replica, Role};
use crate::kafka::zkdata::PartitionStateData;

/// The event being judged.
pub struct Ctx {
    pub broker: BrokerId,
    pub inc: u32,
    pub now: u64,
    pub min_insync: u32,
    /// `log.flush.interval.messages` is 1: every append is fsynced before it is answered,
    /// so a power loss takes at most the append in flight, never a committed record.
    pub flush_each: bool,
}

/// The partition-state znode as last seen (the highest version any server showed).
#[derive(Clone, Debug)]
pub struct ZkSeen {
    pub version: i32,
    pub data: PartitionStateData,
}

/// What ZooKeeper said of one leader epoch when it first held it.
#[derive(Clone, Debug)]
pub struct ZkEpoch {
    pub leader: Option<BrokerId>,
    pub unclean: bool,
}

/// The last partition state ZooKeeper held in one leader epoch, and the number of states
/// seen up to it ([`Partition::zk_seen`]).
#[derive(Clone, Debug)]
pub struct ZkEpochLast {
    pub leader: Option<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub seen: u64,
}

pub struct Partition {
    pub tp: TopicPartition,
    /// Its index in the monitor's partitions.
    pub idx: usize,
    /// The path of its partition-state znode.
    pub zk_path: String,
    /// Boxed: the mirror is large and is taken out and put back on every changed event.
    pub mons: Mons,
    /// The committed history, from offset 0 (with the holes of a lossy election's leader).
    pub canon: Canon,
    /// Below this offset, records were committed while the leader's ISR had
    /// min.insync.replicas members (k-ack-semantics).
    pub ok_upto: u64,
    pub leaders: BTreeMap<u32, BrokerId>,
    /// The incarnation of the leader of each epoch when it last took office: a leader that
    /// restarts and is told to lead the same epoch again (a controller that never saw it
    /// die) takes office anew, with whatever its disk kept.
    pub leader_inc: BTreeMap<u32, u32>,
    /// The leader's LEO when it was first seen leading the epoch.
    pub epoch_start: BTreeMap<u32, u64>,
    /// Elections that restarted the committed history (allowed losses).
    pub lossy_epochs: BTreeSet<u32>,
    pub stamped: Stamps,
    /// Stamps a restart of the committed history dropped or a new leader's log replaced:
    /// (epoch, offset, value) -> (the leader epoch of that election, whether it re-led its
    /// own epoch). A replica whose restart brings such a record back holds the abandoned
    /// history (see [`Self::resurrected`]).
    pub abandoned: BTreeMap<(u32, u64, u64), (u32, bool)>,
    pub zk: Option<ZkSeen>,
    pub zk_epochs: BTreeMap<u32, ZkEpoch>,
    /// Per leader epoch, its last partition state (k-isr-superset for a leader ZooKeeper
    /// has moved past, see [`Self::check_zk_isr`]).
    pub zk_epoch_last: BTreeMap<u32, ZkEpochLast>,
    /// Partition states seen so far.
    pub zk_seen: u64,
    /// Per leader epoch, `zk_seen` when its leader last took office.
    pub tenure_zk_seen: BTreeMap<u32, u64>,
    /// When the committed history last restarted.
    pub last_reset_ns: Option<u64>,
    /// When and from which offset it last restarted.
    pub last_reset: Option<(u64, u64)>,
    /// Fork junctions seen in any replica's log (see [`ReplicaMon::junctions`]).
    pub junctions: BTreeSet<Junction>,
    /// (leader epoch, from, to): records [from, to) of the log of that epoch's leader
    /// that its election made the committed history after an allowed loss had set them
    /// aside or restarted the history below them ([`Self::adopt_leader_log`]). A
    /// follower still in an older epoch may cut them (see [`Self::check_truncation`]).
    pub adoptions: Vec<(u32, u64, u64)>,
    /// Per broker, the incarnation and change stamps of its replica when the checks last
    /// found it as its mirror's summary says ([`Self::unchanged`]).
    quick: Vec<(BrokerId, u32, [u64; 3])>,
}

impl Partition {
    pub fn new(tp: TopicPartition, idx: usize) -> Self {
        Partition {
            zk_path: crate::kafka::zkdata::partition_state_path(&tp),
            tp,
            idx,
            mons: Mons::default(),
            canon: Canon::default(),
            ok_upto: 0,
            leaders: BTreeMap::new(),
            leader_inc: BTreeMap::new(),
            epoch_start: BTreeMap::new(),
            lossy_epochs: BTreeSet::new(),
            stamped: Stamps::default(),
            abandoned: BTreeMap::new(),
            zk: None,
            zk_epochs: BTreeMap::new(),
            zk_epoch_last: BTreeMap::new(),
            zk_seen: 0,
            tenure_zk_seen: BTreeMap::new(),
            last_reset_ns: None,
            last_reset: None,
            junctions: BTreeSet::new(),
            adoptions: Vec::new(),
            quick: Vec::new(),
        }
    }

    pub fn elections(&self) -> usize {
        self.leaders.len()
    }
    pub fn committed_len(&self) -> u64 {
        self.canon.records_from(0)
    }

    /// Whether broker `b`'s replica `r` in incarnation `inc` is exactly as the checks last
    /// saw it: equal change stamps mean an equal replica (every change takes a fresh one,
    /// see [`crate::kafka::stamp`]), so [`Self::observe`] would find its summary unchanged
    /// and return. Checked in debug builds.
    #[inline]
    pub fn unchanged(&self, b: BrokerId, inc: u32, r: &Replica) -> bool {
        let same = self
            .quick
            .iter()
            .any(|q| q.0 == b && q.1 == inc && q.2 == r.stamps());
        if same && cfg!(debug_assertions) {
            let m = self.mons.get(&b).expect("a quick entry has a mirror");
            assert!(
                m.seen && m.inc == inc,
                "{}: quick entry of broker {b}",
                self.tp
            );
            assert_eq!(
                m.summary,
                Some(Summary::of(r)),
                "{}: change stamps",
                self.tp
            );
        }
        same
    }

    fn note_stamps(&mut self, b: BrokerId, inc: u32, stamps: [u64; 3]) {
        match self.quick.iter_mut().find(|q| q.0 == b) {
            Some(q) => *q = (b, inc, stamps),
            None => self.quick.push((b, inc, stamps)),
        }
    }

    /// The invariants after an event of the broker holding replica `r`.
    pub fn observe(
        &mut self,
        ctx: &Ctx,
        r: &Replica,
        acks: &mut Acks,
        losses: &mut AllowedLosses,
        out: &mut Vec<Finding>,
    ) {
        let b = ctx.broker;
        let stamps = r.stamps();
        // Most events leave the replica as it was: decided in place, without moving the
        // mirror ([`Self::unchanged`] first, then an equal summary says nothing the checks
        // read changed).
        let summary = Summary::of(r);
        let same = self
            .mons
            .get(&b)
            .is_some_and(|m| m.seen && m.inc == ctx.inc && m.summary == Some(summary));
        if same {
            self.note_stamps(b, ctx.inc, stamps);
            return;
        }
        let mut m = self.mons.remove(&b).unwrap_or_default();
        let recovered_from = if !m.seen || m.inc != ctx.inc {
            self.restart(ctx, r, &mut m, losses, out)
        } else {
            None
        };
        m.summary = Some(summary);
        self.note_stamps(b, ctx.inc, stamps);
        let forked = m.forked_at;
        let first = out.len();
        // The leader this replica follows, as the monitor mirrors it: a follower copying
        // its log across a hole gets the same hole.
        let leader_mon = role_leader(r)
            .filter(|&l| l != b)
            .and_then(|l| self.mons.get(&l));
        let leader_hole = |a: u64, z: u64| {
            leader_mon.is_some_and(|lm| (a..z).all(|o| lm.is_hole(o) || o < lm.start))
        };
        let history_hole = |o: u64| self.canon.has_hole(o);
        let delta = m.sync_log(r, &self.junctions, &leader_hole, &history_hole, out);
        // After a restart the mirror is rebuilt from the log start: only what the disk gave
        // back differently from what the replica held is new.
        m.note_rewrite(recovered_from.unwrap_or(delta.added_from));
        if let Some(j) = delta.new_junction {
            self.junctions.insert(j);
        }
        // The mirror's own findings name the broker only.
        for f in &mut out[first..] {
            f.message = format!("{}: {}", self.tp, f.message);
        }
        for s in &delta.seq_breaks {
            let seen = losses.forked_sequences.iter().any(|x| {
                (&x.tp, x.broker, x.producer_id, x.offset) == (&self.tp, b, s.pid, s.offset)
            });
            if !seen {
                losses.forked_sequences.push(ForkedSequence {
                    tp: self.tp.clone(),
                    broker: b,
                    producer_id: s.pid,
                    offset: s.offset,
                    junction: s.junction,
                    why: s.why.clone(),
                    at_ns: ctx.now,
                });
            }
        }
        if let (None, Some(from)) = (forked, m.forked_at) {
            losses.forked_replicas.push(ForkedReplica {
                tp: self.tp.clone(),
                broker: b,
                from_offset: from,
                leader_epoch: m.suspect_epoch.unwrap_or_default(),
                at_ns: ctx.now,
            });
        }
        m.check_epoch_cache(r, out);
        self.check_truncation(b, r.leader_epoch(), &delta, out);
        self.observe_role(ctx, r, &mut m, losses, out);
        self.check_stamps(b, &m, &delta, acks, out);
        self.observe_hw(ctx, r, &mut m, acks, out);
        self.check_zk_isr(b, &mut m, out);
        self.mons.insert(b, m);
    }

    /// A new incarnation (or a first sight): records the records the restart lost, then
    /// mirrors the recovered log from scratch. Returns the first offset at which the
    /// recovered log differs from what the replica held before (None at a first sight).
    fn restart(
        &mut self,
        ctx: &Ctx,
        r: &Replica,
        m: &mut ReplicaMon,
        losses: &mut AllowedLosses,
        out: &mut Vec<Finding>,
    ) -> Option<u64> {
        let mut recovered_from = None;
        if m.seen {
            let mut from = r.log_end_offset().min(m.leo());
            'outer: for b in r.log.log.batches_from(m.start) {
                for (i, rec) in b.records.iter().enumerate() {
                    let o = b.base_offset + i as u64;
                    // The epoch too: a value can be both an abandoned record and its
                    // producer's retry, appended anew at the same offset in a later epoch.
                    let mine = m.rec(o).map(|x| (x.epoch, x.value));
                    if o >= from || mine != Some((b.leader_epoch, rec.value)) {
                        from = from.min(o);
                        break 'outer;
                    }
                }
            }
            // Junctions above what the disk kept are gone with the records.
            m.drop_junctions_from(from);
            self.resurrected(ctx.broker, r, from, m, out);
            if from < r.log_end_offset() {
                Self::suspect_given_back(r, from, m);
            }
            // Holes are no records: a restart that ends the log below a hole at its end
            // (recovery takes the LEO from the last batch, as Kafka's LogLoader) lost none.
            let lost_any = (from..m.leo()).any(|o| m.rec(o).is_some());
            if from < m.leo() && lost_any {
                let committed = self.canon.records_in(from, m.leo());
                losses.data_losses.push(DataLoss {
                    tp: self.tp.clone(),
                    broker: ctx.broker,
                    from_offset: from,
                    records_lost: m.leo() - from,
                    committed_lost: committed,
                    at_ns: ctx.now,
                });
                m.lost_from = Some(m.lost_from.map_or(from, |f| f.min(from)));
                m.lost_upto = m.lost_upto.max(m.leo());
                m.lost_in_epoch = self.zk.as_ref().map(|z| z.data.leader_epoch);
            } else if from < m.leo() {
                // Only a hole went: the leader counted this replica at the LEO above it
                // (its fetch offset), so it may sit in ZooKeeper's ISR below the committed
                // history until it fetches the hole's offsets (kafka-nemesis seed 159432).
                m.note_dropped_hole(from, m.leo());
            }
            recovered_from = Some(from);
        }
        m.reset(ctx.inc);
        recovered_from
    }

    /// The records a restart recovered from `from` up, which the replica no longer held
    /// when it went down: a power loss undid a truncation that was never fsynced, and
    /// the records it had cut are back. Kafka never syncs a truncation
    /// (`FileRecords.truncateTo` only truncates the channel; `LogManager.truncateTo`
    /// checkpoints the recovery point alone) and its recovery keeps every batch whose CRC
    /// holds, so the broker serves them again until a fetch truncates them. Each such
    /// record was stamped when it was first appended; one whose stamp an allowed loss
    /// dropped ([`Self::abandoned`]) belongs to the abandoned history: the replica is
    /// suspected from the first of them, as the lossy election suspected the replicas
    /// holding that history then (kafka-nemesis seeds 22340, 24782, 30602 and 42830; see
    /// scenarios/regressions/kafka-nemesis-seed22340.json). Same-epoch if that election
    /// re-led its epoch or the record's epoch holds another record there now: the
    /// follower's fetch cannot find the divergence by epochs and it forks. Any other
    /// recovered record whose stamp differs is one no leader appended (k-one-leader),
    /// unless this broker led its epoch (as [`Self::check_stamps`] allows a leader's
    /// first copy): judged here because [`Self::suspect_given_back`] exempts every
    /// given-back record from `check_stamps`.
    fn resurrected(
        &self,
        b: BrokerId,
        r: &Replica,
        from: u64,
        m: &mut ReplicaMon,
        out: &mut Vec<Finding>,
    ) {
        let mut suspect: Option<(u64, u32, bool)> = None;
        for batch in r.log.log.batches_from(from) {
            let e = batch.leader_epoch;
            for (i, rec) in batch.records.iter().enumerate() {
                let o = batch.base_offset + i as u64;
                let stamp = self.stamped.get(e, o);
                if o < from || stamp == Some(rec.value) {
                    continue;
                }
                match (self.abandoned.get(&(e, o, rec.value)), &mut suspect) {
                    (Some(&(le, again)), s) => {
                        let same = again || stamp.is_some();
                        let (at, le0, same0) = s.unwrap_or((o, le, same));
                        *s = Some((at, le0.max(le), same0 || same));
                    }
                    // Judged here, not left to `check_stamps`: `suspect_given_back`
                    // suspects every given-back record, which exempts it from that check.
                    (None, _) if self.leaders.get(&e) != Some(&b) => {
                        let msg = format!(
                            "{}: broker {b} recovered value {} at offset {o} stamped epoch {e}, \
                             which no leader of that epoch appended",
                            self.tp, rec.value
                        );
                        finding(out, K_ONE_LEADER, msg);
                    }
                    (None, _) => {}
                }
            }
        }
        let Some((at, le, same)) = suspect else {
            return;
        };
        // As a lossy election suspects a replica (see `restart_history`).
        m.suspect_same_epoch = same && (m.suspect_above.is_none() || m.suspect_same_epoch);
        m.suspect_above = Some(m.suspect_above.map_or(at, |s| s.min(at)));
        m.suspect_epoch = Some(m.suspect_epoch.map_or(le, |x| x.max(le)));
    }

    /// The disk gave back, from offset `from`, other records than the replica held there
    /// before the restart: a power loss kept older unsynced writes (records the replica
    /// had since truncated as a diverging tail) and lost the truncation with the records
    /// fetched after it. The HW checkpoint, fsynced on its own, may cover them: real Kafka
    /// too starts the HW at `min(checkpoint, LEO)` (UnifiedLog.updateHighWatermark), over
    /// records that were never committed (kafka-nemesis seed 43467: broker 2 came back
    /// with its epoch-0 tail at offsets 25..29 under an HW of 30, where the committed
    /// history holds epoch 1's records). They belong to an abandoned history, as after
    /// a lossy election: suspected from `from` (not compared with the committed history)
    /// until the replica truncates them, as its next fetch's divergence check makes it
    /// do; if it appends the newer epoch's records on top of them instead, the
    /// suspicion ends and k-log-match judges them. Given back in the epoch they were
    /// replaced in, no fetch can find them: a same-epoch fork, like a re-appointment's.
    fn suspect_given_back(r: &Replica, from: u64, m: &mut ReplicaMon) {
        let back = r.log.log.batches_from(from).next().map(|b| b.leader_epoch);
        let replaced = m.rec(from).map(|x| x.epoch);
        m.matched = m.matched.min(from);
        if let Some(s) = m.suspect_above {
            m.suspect_above = Some(s.min(from));
            return;
        }
        m.suspect_above = Some(from);
        m.suspect_epoch = replaced;
        m.suspect_same_epoch = back.is_some() && back == replaced;
    }

    /// k-hw-mono across tenures: no truncation removes a committed record, except one
    /// made committed again by the election of a leader of a newer epoch than the one the
    /// replica follows (`epoch`): that leader adopted records an allowed loss had set
    /// aside, and the older epoch's leader holds another history there, so its diverging
    /// epoch cuts them; Kafka's fetcher acts on it, as it has not yet heard of the newer
    /// leader, and fetches them back from it then (kafka-nemesis seed 204772, see
    /// scenarios/regressions/kafka-nemesis-seed204772.json).
    fn check_truncation(
        &self,
        b: BrokerId,
        epoch: Option<u32>,
        delta: &LogDelta,
        out: &mut Vec<Finding>,
    ) {
        let Some((from, removed)) = &delta.removed else {
            return;
        };
        let readopted = |o: u64| {
            (self.adoptions.iter())
                .any(|&(e, a, z)| a <= o && o < z && epoch.is_some_and(|x| x < e))
        };
        for (i, rec) in removed.iter().enumerate() {
            let o = from + i as u64;
            if rec.is_some() && self.canon.get(o) == Some(rec.as_ref()) && !readopted(o) {
                let msg = format!(
                    "{}: broker {b} truncated committed offset {o} (committed up to {})",
                    self.tp,
                    self.canon.len()
                );
                finding(out, K_HW_MONO, msg);
                return;
            }
        }
    }

    /// The role: leader epochs never go back (k-epoch-mono), brokers act only on partition
    /// states ZooKeeper holds (k-zk-fencing), one leader per epoch (k-one-leader), and a
    /// new leader's completeness (k-leader-complete).
    fn observe_role(
        &mut self,
        ctx: &Ctx,
        r: &Replica,
        m: &mut ReplicaMon,
        losses: &mut AllowedLosses,
        out: &mut Vec<Finding>,
    ) {
        let b = ctx.broker;
        let le = r.leader_epoch();
        if let (Some(old), Some(new)) = (m.leader_epoch, le) {
            if new < old {
                let msg = format!(
                    "{}: broker {b}'s leader epoch went from {old} to {new}",
                    self.tp
                );
                finding(out, super::K_EPOCH_MONO, msg);
            }
        }
        m.leader_epoch = le;
        m.role = match (r.role(), le) {
            (Role::Leader(s), Some(e)) => {
                // The previous role's lists are refilled: no allocation per event.
                let (mut isr, mut maximal) = match std::mem::take(&mut m.role) {
                    MonRole::Leader { isr, maximal, .. } => (isr, maximal),
                    _ => (Vec::new(), Vec::new()),
                };
                isr.clear();
                isr.extend_from_slice(s.isr.isr());
                maximal.clear();
                maximal.extend(s.isr.maximal_iter());
                MonRole::Leader {
                    epoch: e,
                    isr,
                    maximal,
                }
            }
            (Role::Follower { .. }, _) => MonRole::Follower,
            _ => MonRole::None,
        };
        let (Some(e), named) = (le, role_leader(r)) else {
            return;
        };
        if !matches!(r.role(), Role::None) {
            match self.zk_epochs.get(&e) {
                Some(z) if z.leader == named => {}
                Some(z) => {
                    let msg = format!(
                        "{}: broker {b} acts on leader epoch {e} with leader {named:?}; \
                         ZooKeeper named {:?}",
                        self.tp, z.leader
                    );
                    finding(out, K_ZK_FENCING, msg);
                }
                None => {
                    let msg = format!(
                        "{}: broker {b} acts on leader epoch {e}, which ZooKeeper never held",
                        self.tp
                    );
                    finding(out, K_ZK_FENCING, msg);
                }
            }
        }
        if !r.is_leader() {
            return;
        }
        match self.leaders.get(&e) {
            Some(&other) if other != b => {
                let msg = format!(
                    "{}: brokers {other} and {b} both acted as leader of epoch {e}",
                    self.tp
                );
                finding(out, K_ONE_LEADER, msg);
            }
            Some(_) if self.leader_inc.get(&e) == Some(&ctx.inc) => {}
            seen => {
                // Some: this broker led the epoch in an earlier incarnation and leads it
                // again (appointed by a controller that never saw it restart).
                let again = seen.is_some();
                self.leaders.insert(e, b);
                self.leader_inc.insert(e, ctx.inc);
                self.tenure_zk_seen.insert(e, self.zk_seen);
                self.epoch_start.insert(e, m.leo());
                if self.superseded(e) {
                    if again {
                        self.stale_again(ctx, e, m, losses, out);
                    }
                    return;
                }
                self.elected(ctx, e, again, m, losses, out);
            }
        }
    }

    /// A broker takes office in epoch `e` after ZooKeeper already held a newer leader epoch
    /// (or a newer epoch's leader acted): a stale LeaderAndIsr, not an election. The
    /// controller queues requests per broker and re-sends the one in flight until it is
    /// answered (ControllerChannelManager's RequestSendThread), so a LeaderAndIsr held up
    /// behind a broken connection reaches its broker after the controller has moved the
    /// partition on; the broker accepts it, as its own epoch is older
    /// (ReplicaManager.becomeLeaderOrFollower takes any `requestLeaderEpoch >
    /// currentLeaderEpoch`), and leads the old epoch until the newer request that follows
    /// in the queue (kafka-nemesis seed 27662: broker 0's initial epoch-0 LeaderAndIsr,
    /// re-sent after a connection reset, arrived after its controlled shutdown had moved
    /// the partition to broker 1 in epoch 1, which had committed 41 records). Such a leader
    /// owes nothing committed after its epoch was decided, and its log does not become the
    /// history: it cannot commit (the followers fetch in the newer epoch and fence it,
    /// KIP-320; its ISR writes fail on the zkVersion), which k-one-leader's stale clause
    /// and k-log-match still check through its HW.
    fn superseded(&self, e: u32) -> bool {
        self.zk_epochs.range(e + 1..).next().is_some()
            || self.leaders.range(e + 1..).next().is_some()
    }

    /// A broker that restarted takes office again, late, in an epoch it led before the
    /// restart, after ZooKeeper moved on: a failover controller sends every live replica
    /// the state ZooKeeper holds (ReplicaStateMachine.startup, OnlineReplica), that
    /// request waits behind a cut connection while the controller writes the next epoch,
    /// and the restarted broker accepts it (its leader epoch starts at -1). If the power
    /// loss took records it had appended in that epoch, the produce requests it now takes
    /// (they carry no leader epoch) are stamped with the same epoch at the same offsets: a
    /// second history of one epoch, KIP-966's unflushed-data loss (kafka-nemesis seeds
    /// 86098, 125796). A follower still in that epoch fetches from it without finding the
    /// fork, so its HW may pass records consumers then read, and which differ from the
    /// committed ones: a loss allowed as the same-epoch re-appointment's. Its records from
    /// its LEO up are suspected as such a re-appointment's are; the committed history
    /// stays (the next leader holds it), and k-log-match judges the replica again once it
    /// cuts back to its LEO.
    fn stale_again(
        &mut self,
        ctx: &Ctx,
        e: u32,
        m: &mut ReplicaMon,
        losses: &mut AllowedLosses,
        out: &mut Vec<Finding>,
    ) {
        let leo = m.leo();
        if !self.stamped.any_from(e, leo) {
            return;
        }
        let committed = self.canon.len();
        if ctx.flush_each && m.lost_from.is_some_and(|f| f < committed) {
            let msg = format!(
                "{}: broker {} leads epoch {e} again without committed offset {leo} (committed \
                 up to {committed}), lost at a restart though log.flush.interval.messages=1 \
                 fsyncs every append",
                self.tp, ctx.broker
            );
            finding(out, K_LEADER_COMPLETE, msg);
        }
        losses.lossy_elections.push(LossyElection {
            tp: self.tp.clone(),
            leader_epoch: e,
            leader: ctx.broker,
            unclean: false,
            again: true,
            lost_from: leo,
            committed_lost: self.canon.records_from(leo),
            at_ns: ctx.now,
        });
        m.suspect_above = Some(m.suspect_above.map_or(leo, |s| s.min(leo)));
        m.suspect_epoch = Some(e);
        m.suspect_same_epoch = true;
        m.matched = m.matched.min(leo);
    }

    /// k-leader-complete for a leader taking office: it must hold the committed history.
    /// If it does not and the election was unclean, or it lost those records to a power
    /// loss, the loss is allowed: recorded, and the committed history restarts with its log.
    /// A leader that restarted and leads the same epoch again may also have lost records it
    /// had appended in that epoch and not yet committed: the same restart, from its LEO.
    fn elected(
        &mut self,
        ctx: &Ctx,
        e: u32,
        again: bool,
        m: &mut ReplicaMon,
        losses: &mut AllowedLosses,
        out: &mut Vec<Finding>,
    ) {
        let leo = m.leo();
        let missing = (m.start..self.canon.len()).find(|&o| !self.canon.matches(m, o));
        let own_lost = self.stamped.any_from(e, leo);
        let at = match (missing, own_lost) {
            (None, false) => {
                if let Some(s) = m.suspect_above {
                    self.adopt_leader_log(s, e, m);
                }
                return;
            }
            (Some(a), _) => a.min(if own_lost { leo } else { u64::MAX }),
            (None, true) => leo,
        };
        let unclean = self.zk_epochs.get(&e).is_some_and(|z| z.unclean);
        // Lost at a restart, or a copy of a history an earlier allowed loss abandoned (a
        // follower that kept fetching in the same epoch from a leader that had lost records
        // never noticed the fork).
        let lost = m.lost_from.is_some_and(|f| f <= at) || m.suspect_above.is_some_and(|f| f <= at);
        // With a flush per append, a power loss may take the append in flight, which no
        // leader has exposed below its HW yet: a committed record lost is not excused.
        let flushed_away =
            ctx.flush_each && !unclean && m.lost_from.is_some_and(|f| f < self.canon.len());
        if flushed_away {
            let msg = format!(
                "{}: broker {} leads epoch {e} without committed offset {at} (committed up \
                 to {}), lost at a restart though log.flush.interval.messages=1 fsyncs \
                 every append",
                self.tp,
                ctx.broker,
                self.canon.len()
            );
            finding(out, K_LEADER_COMPLETE, msg);
        } else if unclean || lost {
            losses.lossy_elections.push(LossyElection {
                tp: self.tp.clone(),
                leader_epoch: e,
                leader: ctx.broker,
                unclean,
                again,
                lost_from: at,
                committed_lost: self.canon.records_from(at),
                at_ns: ctx.now,
            });
        } else if missing.is_some() {
            let msg = format!(
                "{}: broker {} elected cleanly in epoch {e} lacks committed offset {at} \
                 (LEO {leo}, committed up to {})",
                self.tp,
                ctx.broker,
                self.canon.len()
            );
            finding(out, K_LEADER_COMPLETE, msg);
        } else {
            let msg = format!(
                "{}: broker {} leads epoch {e} again without the records it appended in it \
                 from offset {leo}, and lost none at a restart",
                self.tp, ctx.broker
            );
            finding(out, K_ONE_LEADER, msg);
        }
        let suspect = m.suspect_above;
        self.restart_history(ctx, e, at, again, m);
        self.adopt_leader_log(suspect.map_or(at, |s| s.min(at)), e, m);
    }

    /// A leader took office holding records from `from` up that the monitor had set
    /// aside: a copy of a history an allowed loss abandoned (its suspicion), or records
    /// above the point where the committed history just restarted. They are the
    /// partition's history from now on, as the followers will fetch them: they lose the
    /// suspicion and are stamped as they stand, so K-ONE-LEADER judges later copies
    /// against them. Left aside, they were never stamped and a follower fetching them
    /// was taken for a second leader of their epoch, and the leader's own HW was never
    /// compared past the suspicion (kafka-nemesis seed 14: a broker that kept epoch-0
    /// records past a power-loss election led the next epoch with them; see
    /// scenarios/regressions/kafka-nemesis-seed14.json). Other replicas lose their
    /// suspicion up to where their records equal the new leader's. A replica without one
    /// whose records differ from the new leader's above `from` held the history this
    /// adoption abandons (a same-epoch re-appointment's own records, never committed):
    /// it is suspected from there, as a lossy election suspects the others, same-epoch if
    /// the two hold one epoch's two histories (kafka-nemesis seed 9404: the re-appointed
    /// leader, restarted as a follower, kept its own epoch-0 records under the next
    /// leader, which led epoch 1 with the epoch-0 records the re-appointment abandoned).
    ///
    /// A replica lacking records of the new leader's log below its HW is owed them
    /// ([`ReplicaMon::note_adoption`]): it may sit in ZooKeeper's ISR below the committed
    /// history for a fetch round trip (kafka-nemesis seed 120959).
    fn adopt_leader_log(&mut self, from: u64, e: u32, m: &mut ReplicaMon) {
        if from.max(m.start) < m.leo() {
            self.adoptions.push((e, from.max(m.start), m.leo()));
        }
        if let Some(s) = m.suspect_above {
            m.end_suspicion_at(s);
        }
        // The leader holds the history it leads with.
        m.forget_gap();
        let hw = m.summary.map_or(0, |s| s.hw());
        for o in from.max(m.start)..m.leo() {
            let Some(&rec) = m.rec(o) else { continue };
            if let Some(old) = self.stamped.insert(rec.epoch, o, rec.value) {
                if old != rec.value {
                    self.abandoned.insert((rec.epoch, o, old), (e, false));
                }
            }
        }
        for om in self.mons.values_mut() {
            om.note_adoption(m, from, hw);
            let Some(s) = om.suspect_above else {
                let first = from.max(om.start);
                if let Some(d) = (first..om.leo()).find(|&o| om.rec(o) != m.rec(o)) {
                    om.suspect_same_epoch = om.same_epoch_divergence(m, d);
                    om.suspect_above = Some(d);
                    om.suspect_epoch = Some(e);
                    om.matched = om.matched.min(d);
                }
                continue;
            };
            match (s..om.leo()).find(|&o| om.rec(o) != m.rec(o)) {
                Some(d) => {
                    om.suspect_above = Some(d);
                    // Both hold records of one leader epoch that differ from d up: that
                    // epoch was led twice (a same-epoch re-appointment), and no fetcher's
                    // epoch check can cut below them (every end offset it can be answered
                    // lies past them), so the replica keeps its records there for good.
                    om.suspect_same_epoch |= om.same_epoch_divergence(m, d);
                }
                None => om.end_suspicion_at(s),
            }
        }
    }

    /// The history goes on from the new leader's log at `at` (after a violation too: it is
    /// reported once, not again at every later record).
    /// `again`: the leader leads epoch `e` again after a restart, so the other replicas'
    /// records above `at` share its epochs (see [`ReplicaMon::suspect_same_epoch`]).
    fn restart_history(&mut self, ctx: &Ctx, e: u32, at: u64, again: bool, m: &mut ReplicaMon) {
        self.canon.restart(at, m);
        // Offsets from `at` up will be written anew (even in an epoch already used, when a
        // restarted leader leads it again): the old stamps there belong to the lost history.
        for ((epoch, o), v) in self.stamped.take_from(at) {
            self.abandoned.insert((epoch, o, v), (e, again));
        }
        // Except the new leader's own records there: they are the history now, stamped by
        // the leaders that appended them (a follower fetching them is not their author).
        for o in at..m.leo() {
            if let Some(r) = m.rec(o) {
                self.stamped.insert(r.epoch, o, r.value);
            }
        }
        self.ok_upto = self.ok_upto.min(at);
        self.last_reset_ns = Some(ctx.now);
        self.last_reset = Some((ctx.now, at));
        self.lossy_epochs.insert(e);
        m.matched = m.matched.min(at);
        m.suspect_above = None;
        m.suspect_epoch = None;
        m.suspect_same_epoch = false;
        m.forked_at = None;
        // The loss is accounted for: this leader's log is the history from here on.
        m.lost_from = None;
        m.lost_upto = 0;
        for om in self.mons.values_mut() {
            // What an earlier adoption exposed is no longer the history; the adoption that
            // follows this restart owes each replica what it lacks of the new one.
            om.forget_gap();
            if om.leo() > at {
                // Same-epoch if this leader re-leads its epoch (and every suspicion the
                // replica holds is same-epoch), or if the replica and this leader hold two
                // histories of one epoch: a replica that kept what a same-epoch
                // re-appointment appended, under a new leader that kept the records that
                // re-appointment abandoned, forks whatever the new epoch (kafka-nemesis
                // seed 9404, scenarios/regressions/kafka-nemesis-seed9404.json).
                let from = om.suspect_above.map_or(at, |s| s.min(at));
                let reled = again && (om.suspect_above.is_none() || om.suspect_same_epoch);
                om.suspect_same_epoch = reled || om.same_epoch_divergence(m, from);
                om.suspect_above = Some(om.suspect_above.map_or(at, |s| s.min(at)));
                om.suspect_epoch = Some(om.suspect_epoch.map_or(e, |x| x.max(e)));
                om.matched = om.matched.min(at);
            }
        }
    }

    /// k-one-leader on new records: the record stamped (e, o) is the one the leader of e
    /// appended, and it first appears in that leader's log.
    fn check_stamps(
        &mut self,
        b: BrokerId,
        m: &ReplicaMon,
        delta: &LogDelta,
        acks: &mut Acks,
        out: &mut Vec<Finding>,
    ) {
        // Records above a suspicion belong to a lost history (their stamps are gone).
        let to = m.leo().min(m.suspect_above.unwrap_or(u64::MAX));
        for o in delta.added_from..to {
            let Some(&rec) = m.rec(o) else { continue };
            match self.stamped.get(rec.epoch, o) {
                Some(v) if v != rec.value => {
                    let msg = format!(
                        "{}: broker {b} holds value {} at offset {o} stamped epoch {}; the \
                         leader of that epoch appended {v}",
                        self.tp, rec.value, rec.epoch
                    );
                    finding(out, K_ONE_LEADER, msg);
                }
                Some(_) => {}
                None => {
                    if self.leaders.get(&rec.epoch) != Some(&b) {
                        let msg = format!(
                            "{}: record at offset {o} stamped epoch {} first appeared on \
                             broker {b}, not on that epoch's leader {:?}",
                            self.tp,
                            rec.epoch,
                            self.leaders.get(&rec.epoch)
                        );
                        finding(out, K_ONE_LEADER, msg);
                    }
                    self.stamped.insert(rec.epoch, o, rec.value);
                    acks.appended(self.idx, rec.value, o);
                }
            }
        }
    }
}

/// The leader a replica believes in (itself when leading).
fn role_leader(r: &Replica) -> Option<BrokerId> {
    match r.role() {
        Role::Leader(_) => Some(r.me),
        Role::Follower { leader } => *leader,
        Role::None => None,
    }
}
