//! The Kafka invariants of reference part B.9 that can be judged online, after every
//! delivered event at a broker, a ZooKeeper server or a producer. The monitor keeps its own
//! mirror of every replica's log (record by record: epoch, value, producer id and sequence)
//! and of the partition-state znodes, and recomputes from them what the protocol promises;
//! it never asks the protocol for its conclusions (its quorum, its ISR decisions).
//!
//! - `k-dense`: offsets contiguous from the log start, one record each; a value appears at
//!   most once per log among idempotent batches, except across the junction of a
//!   same-epoch fork (recorded as [`ForkedSequence`]).
//! - `k-epoch-mono`: batch epochs never decrease along a log; the epoch cache is strictly
//!   increasing and agrees with the log; a replica's leader epoch never goes back.
//! - `k-one-leader`: one broker acts as leader per (partition, leader epoch); each record
//!   stamped (epoch e, offset o) was appended by the leader of e and is the same everywhere;
//!   a stale leader never advances its HW over records the newer leader lacks.
//! - `k-log-match`: every replica's log below its HW equals the committed history (the
//!   records below the highest HW any leader exposed), so any two agree below both HWs.
//! - `k-hw-mono`: HW <= LEO; a leader's HW never decreases in its tenure; a leader's HW is
//!   <= the LEO of every member of the ISR it uses; no committed record is truncated.
//! - `k-isr-superset`: the ISR a leader uses for its HW contains ZooKeeper's ISR; a member
//!   ZooKeeper gains had caught up to the HW and the start of the leader's epoch.
//! - `k-zk-fencing`: a partition state's leader and controller epochs never decrease; a
//!   controller write carries the `/controller_epoch` of its time; brokers act only on
//!   partition states ZooKeeper holds; one active controller per controller epoch.
//! - `k-leader-complete`: a cleanly elected leader holds every committed record; every
//!   running ZooKeeper ISR member's LEO reaches the committed history.
//! - `k-ack-semantics`: an acks=all success was committed at its offset by a leader whose
//!   ISR had min.insync.replicas members holding it; an acks=1 success is in a leader's log.
//! - `k-idempotence`: per producer id, sequences in a log are contiguous and never repeat,
//!   except across the junction of a same-epoch fork (recorded as [`ForkedSequence`]).
//!
//! Losses the configuration allows (an unclean election; a leader elected while missing
//! records it lost to a power loss; replicas that lost unflushed records) are recorded for
//! the end-of-run history checks ([`AllowedLosses`]) and start a new committed history at
//! the point of loss instead of being reported.
//!
//! Depends on: kafka, zab, node, sim, cluster.

mod ack;
mod canon;
mod gap;
mod hw;
mod mons;
mod partition;
mod replica;
mod stamps;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gap;
#[cfg(test)]
mod tests_holes;
#[cfg(test)]
mod tests_marks;
#[cfg(test)]
mod tests_stale;
mod values;
mod zk;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use super::KafkaHost;
use crate::cluster::Violation;
use crate::kafka::broker::{replicas, BrokerView};
use crate::kafka::config::TopicSpec;
use crate::kafka::msg::{BrokerId, TopicPartition};
use crate::kafka::replica::Replica;
use crate::node::NodeId;
use crate::sim::Sim;
use crate::zab::msg::Zxid;

use partition::Partition;
pub use zk::ZkState;

pub const K_DENSE: &str = "k-dense";
pub const K_EPOCH_MONO: &str = "k-epoch-mono";
pub const K_ONE_LEADER: &str = "k-one-leader";
pub const K_LOG_MATCH: &str = "k-log-match";
pub const K_HW_MONO: &str = "k-hw-mono";
pub const K_ISR_SUPERSET: &str = "k-isr-superset";
pub const K_ZK_FENCING: &str = "k-zk-fencing";
pub const K_LEADER_COMPLETE: &str = "k-leader-complete";
pub const K_ACK_SEMANTICS: &str = "k-ack-semantics";
pub const K_IDEMPOTENCE: &str = "k-idempotence";

/// One broken invariant, before it becomes a [`Violation`] with the run's time and node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub invariant: &'static str,
    pub message: String,
}

pub(crate) fn finding(out: &mut Vec<Finding>, invariant: &'static str, message: String) {
    out.push(Finding { invariant, message });
}

/// An election of a leader outside the ISR ZooKeeper held before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UncleanElection {
    pub tp: TopicPartition,
    pub leader_epoch: u32,
    pub leader: BrokerId,
    /// The ISR ZooKeeper held before the election.
    pub previous_isr: Vec<BrokerId>,
    pub at_ns: u64,
}

/// A replica that came back from a restart with fewer (or other) records than it had: the
/// page cache was lost with the machine (power loss) and the records were never fsynced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataLoss {
    pub tp: TopicPartition,
    pub broker: BrokerId,
    /// The first offset whose record was lost.
    pub from_offset: u64,
    pub records_lost: u64,
    /// How many of them were committed (below the highest HW any leader exposed).
    pub committed_lost: u64,
    pub at_ns: u64,
}

/// A leader that took office without every committed record, for an allowed reason: the
/// committed history restarts at `lost_from` with its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LossyElection {
    pub tp: TopicPartition,
    pub leader_epoch: u32,
    pub leader: BrokerId,
    /// Elected outside ZooKeeper's previous ISR (else: it had lost unflushed records).
    pub unclean: bool,
    /// It had led this leader epoch before its restart and leads it again (a controller
    /// that took office after the restart appointed it: KIP-966's unflushed-data loss).
    pub again: bool,
    pub lost_from: u64,
    /// Committed records (below the exposed HW) its log lacks or holds differently.
    pub committed_lost: u64,
    pub at_ns: u64,
}

/// A follower that kept records a same-epoch lossy re-appointment abandoned and took the
/// new leader's records on top (the fork KIP-966 describes: Kafka's epoch checks cannot
/// see it, so its log differs from the leader's for good). Allowed by
/// `log.flush.interval.*` unset, like the election that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkedReplica {
    pub tp: TopicPartition,
    pub broker: BrokerId,
    /// Its records from here up to the new history's are of the abandoned one.
    pub from_offset: u64,
    pub leader_epoch: u32,
    pub at_ns: u64,
}

/// A producer's sequence that breaks (a gap or a repeat), or a send's value that repeats,
/// in a replica's log across a fork junction: the two records come from two histories of
/// the same leader epoch (a [`ForkedReplica`]'s abandoned records below, the new leader's
/// above, where the producer's retry of a lost send was appended anew). k-idempotence and
/// k-dense do not compare them; the break is reported as allowed by
/// `log.flush.interval.*` unset, with the fork that allows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkedSequence {
    pub tp: TopicPartition,
    pub broker: BrokerId,
    pub producer_id: i64,
    pub offset: u64,
    /// Where the log passes from the abandoned history to the new one.
    pub junction: u64,
    /// What the check would have said ("sequence 6 after 4", "value 7 also at offset 3").
    pub why: String,
    pub at_ns: u64,
}

/// What makes record losses allowed in this run, for the end-of-run history checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedLosses {
    pub unclean_elections: Vec<UncleanElection>,
    pub data_losses: Vec<DataLoss>,
    pub lossy_elections: Vec<LossyElection>,
    pub forked_replicas: Vec<ForkedReplica>,
    pub forked_sequences: Vec<ForkedSequence>,
}

/// A broker's state apart from its replicas, as the checks read it from its view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerState {
    pub id: BrokerId,
    /// The incarnation (restarts so far) and the time of the event.
    pub inc: u32,
    pub now: u64,
    /// Some(controller epoch) while the broker is the active controller.
    pub controller_epoch: Option<u32>,
    /// The highest controller epoch the broker accepted a request from.
    pub fenced_controller_epoch: u32,
}

/// What the monitor remembers of a broker as a whole.
#[derive(Clone, Copy, Debug, Default)]
struct BrokerMon {
    inc: u32,
    fence: u32,
}

/// The monitor's memory across events.
pub struct KafkaMonitor {
    min_insync: u32,
    /// `log.flush.interval.messages` is 1 (see [`partition::Ctx::flush_each`]).
    flush_each: bool,
    parts: Vec<Partition>,
    index: BTreeMap<TopicPartition, usize>,
    brokers: BTreeMap<BrokerId, BrokerMon>,
    /// Controller epoch -> the broker that was active in it.
    controllers: BTreeMap<u32, BrokerId>,
    /// `/controller_epoch` as seen: mzxid -> value.
    controller_epochs: BTreeMap<Zxid, u32>,
    /// Per ZooKeeper server, the applied zxid at which its tree was last read.
    zk_read: BTreeMap<u32, Zxid>,
    acks: ack::Acks,
    losses: AllowedLosses,
}

impl KafkaMonitor {
    /// A monitor for the scenario's topics; `min_insync` is `min.insync.replicas`.
    pub fn new(topics: &[TopicSpec], min_insync: u32) -> Self {
        let mut mon = KafkaMonitor {
            min_insync,
            flush_each: false,
            parts: Vec::new(),
            index: BTreeMap::new(),
            brokers: BTreeMap::new(),
            controllers: BTreeMap::new(),
            controller_epochs: BTreeMap::new(),
            zk_read: BTreeMap::new(),
            acks: ack::Acks::default(),
            losses: AllowedLosses::default(),
        };
        for t in topics {
            for p in 0..t.partitions {
                mon.part_index(&TopicPartition::new(&t.name, p));
            }
        }
        mon
    }

    /// The brokers fsync every append (`log.flush.interval.messages=1`): a power loss
    /// then excuses no committed record.
    pub fn with_flush_each(mut self, flush_each: bool) -> Self {
        self.flush_each = flush_each;
        self
    }

    /// Replicas the healed phase cannot expect to converge, with why: a fork that a
    /// same-epoch lossy re-appointment left ([`ForkedReplica`]), or a follower still
    /// holding records that re-appointment abandoned while the partition stays in that
    /// leader epoch (Kafka's follower cannot append the leader's batches over them and
    /// marks the partition failed until a LeaderAndIsr of a newer epoch). Recomputed from
    /// the monitor's mirrors, not from the brokers' view of themselves.
    pub fn left_behind(&self) -> BTreeMap<TopicPartition, BTreeMap<BrokerId, String>> {
        let mut out: BTreeMap<TopicPartition, BTreeMap<BrokerId, String>> = BTreeMap::new();
        for p in &self.parts {
            for (b, m) in p.mons.iter() {
                let why = match (m.forked_at, m.suspect_above) {
                    (Some(f), _) => format!("forked from offset {f}"),
                    (None, Some(s)) if m.suspect_same_epoch => {
                        format!(
                            "holds records from offset {s} that leader epoch {} abandoned",
                            m.suspect_epoch.unwrap_or_default()
                        )
                    }
                    _ => continue,
                };
                out.entry(p.tp.clone()).or_default().insert(*b, why);
            }
        }
        out
    }

    /// Per partition, the last restart of its committed history by an allowed loss: (when,
    /// the offset it restarted from).
    pub fn history_restarts(&self) -> BTreeMap<TopicPartition, (u64, u64)> {
        (self.parts.iter())
            .filter_map(|p| Some((p.tp.clone(), p.last_reset?)))
            .collect()
    }

    /// Unclean elections, lossy elections and replicas that lost unflushed data so far.
    pub fn allowed_losses(&self) -> &AllowedLosses {
        &self.losses
    }
    pub fn unclean_elections(&self) -> &[UncleanElection] {
        &self.losses.unclean_elections
    }
    pub fn data_losses(&self) -> &[DataLoss] {
        &self.losses.data_losses
    }
    pub fn lossy_elections(&self) -> &[LossyElection] {
        &self.losses.lossy_elections
    }
    /// Leaders seen taking office, one per (partition, leader epoch).
    pub fn elections(&self) -> usize {
        self.parts.iter().map(Partition::elections).sum()
    }
    /// Records committed so far (the committed histories' lengths).
    pub fn committed_records(&self) -> u64 {
        self.parts.iter().map(Partition::committed_len).sum()
    }

    fn part_index(&mut self, tp: &TopicPartition) -> usize {
        if let Some(&i) = self.index.get(tp) {
            return i;
        }
        self.parts
            .push(Partition::new(tp.clone(), self.parts.len()));
        self.index.insert(tp.clone(), self.parts.len() - 1);
        self.parts.len() - 1
    }

    /// The invariants after an event of node `id` (a broker, a ZooKeeper server or a
    /// producer; other nodes are ignored).
    pub fn check<N>(&mut self, sim: &Sim<N>, id: NodeId) -> Vec<Violation>
    where
        N: KafkaHost,
        N::Msg: Hash + Debug,
    {
        let Some(node) = sim.node(id) else {
            return Vec::new();
        };
        let now = sim.now();
        let mut out = Vec::new();
        if let Some(b) = node.broker() {
            // Only the replicas the broker handed out for change since the last look can
            // have changed (see `kafka::broker::replicas`); the others are as last judged.
            let marks = b.take_monitor_marks();
            self.on_broker_marked(sim.incarnation(id), now, &b.view(), marks, &mut out);
        } else if let Some(s) = node.zab_server() {
            self.on_zk_server(id.0, s.is_serving(), s.tree(), now, &mut out);
        } else if let Some(p) = node.producer() {
            let acks = p.setup().producer.acks;
            self.on_producer(p.index(), acks, p.history(), &mut out);
        }
        out.into_iter()
            .map(|f| crate::cluster::safety_violation(sim, f.invariant, id, f.message))
            .collect()
    }

    /// The invariants after an event of a broker in incarnation `inc`, from its view.
    pub fn on_broker(&mut self, inc: u32, now: u64, v: &BrokerView<'_>, out: &mut Vec<Finding>) {
        self.on_broker_marked(inc, now, v, replicas::ALL, out);
    }

    /// [`Self::on_broker`] where only the replicas under `marks` may have changed since
    /// this broker's last check (the others are skipped: see `kafka::broker::replicas`).
    fn on_broker_marked(
        &mut self,
        inc: u32,
        now: u64,
        v: &BrokerView<'_>,
        marks: replicas::Marks,
        out: &mut Vec<Finding>,
    ) {
        let state = BrokerState {
            id: v.id,
            inc,
            now,
            controller_epoch: v.controller_epoch,
            fenced_controller_epoch: v.fenced_controller_epoch,
        };
        self.on_broker_replicas(&state, v.replicas, marks, out);
    }

    /// [`Self::on_broker`] on the parts of the view the checks read.
    pub fn on_broker_state(
        &mut self,
        s: &BrokerState,
        replicas: &BTreeMap<TopicPartition, Replica>,
        out: &mut Vec<Finding>,
    ) {
        self.on_broker_replicas(s, replicas, replicas::ALL, out);
    }

    fn on_broker_replicas(
        &mut self,
        s: &BrokerState,
        replicas: &BTreeMap<TopicPartition, Replica>,
        marks: replicas::Marks,
        out: &mut Vec<Finding>,
    ) {
        self.check_broker_epochs(s, out);
        // No replica handed out: each would be skipped below (debug builds still visit
        // them all, to check the marks).
        if marks == 0 && !cfg!(debug_assertions) {
            return;
        }
        for (i, (tp, r)) in replicas.iter().enumerate() {
            let marked = marks & replicas::mark(tp) != 0;
            if !marked && !cfg!(debug_assertions) {
                continue;
            }
            // A broker holding every partition lists them in the monitor's order.
            let p = match self.parts.get(i) {
                Some(part) if part.tp == *tp => i,
                _ => self.part_index(tp),
            };
            if self.parts[p].unchanged(s.id, s.inc, r) {
                continue;
            }
            // Debug builds check the marks: an unmarked replica is as last judged.
            assert!(marked, "{tp}: broker {} changed an unmarked replica", s.id);
            let ctx = partition::Ctx {
                broker: s.id,
                inc: s.inc,
                now: s.now,
                min_insync: self.min_insync,
                flush_each: self.flush_each,
            };
            self.parts[p].observe(&ctx, r, &mut self.acks, &mut self.losses, out);
        }
    }

    /// k-zk-fencing on the broker as a whole: its controller-epoch fence never goes back
    /// within an incarnation, and one broker is active per controller epoch.
    fn check_broker_epochs(&mut self, v: &BrokerState, out: &mut Vec<Finding>) {
        let inc = v.inc;
        // Looked up before any insert: every broker but the first event's is there.
        let m = match self.brokers.get_mut(&v.id) {
            Some(m) => m,
            None => self.brokers.entry(v.id).or_default(),
        };
        if m.inc != inc {
            *m = BrokerMon { inc, fence: 0 };
        }
        if v.fenced_controller_epoch < m.fence {
            let msg = format!(
                "broker {} accepted controller epoch {} after {}",
                v.id, v.fenced_controller_epoch, m.fence
            );
            finding(out, K_ZK_FENCING, msg);
        }
        m.fence = m.fence.max(v.fenced_controller_epoch);
        if let Some(ce) = v.controller_epoch {
            let prev = match self.controllers.get(&ce) {
                Some(&prev) => prev,
                None => *self.controllers.entry(ce).or_insert(v.id),
            };
            if prev != v.id {
                let msg = format!(
                    "brokers {prev} and {} both active controllers in controller epoch {ce}",
                    v.id
                );
                finding(out, K_ZK_FENCING, msg);
            }
        }
    }
}
