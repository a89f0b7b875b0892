//! The Kafka system's goals in the healed phase (k-convergence, reference B.9), beside the
//! ZooKeeper ensemble's own goal (`zk::liveness::ensemble_pending`):
//! - every broker up and registered, one active controller;
//! - per partition: the leader in ZooKeeper's partition state is live and leads in that
//!   leader epoch, its ISR is not changing and equals ZooKeeper's, every assigned replica is
//!   in it, every replica's LEO equals the leader's and the HW has reached it, and the logs
//!   are equal record by record (compared last, once everything cheaper holds);
//! - every send invoked before the heal answered, every producer and consumer served since
//!   the heal, and the consumers have polled up to the highest acknowledged offset of every
//!   partition (so the end-of-run log check can call an acknowledged record it never saw
//!   lost rather than late).
//!
//! `pending` runs after every event of the healed phase: the client histories are scanned
//! incrementally (a cursor per client), never from the start again.
//!
//! Depends on: kafka, zab, sim, cluster.

use std::collections::BTreeMap;

use super::{partitions, KafkaHost, KafkaNode, Layout};
use crate::cluster::zk::liveness::{ensemble_pending, RefusalWatch};
use crate::cluster::zk::server;
use crate::cluster::{KnownBehaviour, Violation};
use crate::kafka::client::record::{KafkaOp, KafkaOutcome, KafkaRecord};
use crate::kafka::config::Acks;
use crate::kafka::msg::{BrokerId, TopicPartition};
use crate::kafka::replica::Replica;
use crate::kafka::zkdata::{self, PartitionStateData};
use crate::node::NodeId;
use crate::scenario::KafkaSpec;
use crate::sim::Sim;

/// What one client's history showed so far.
#[derive(Clone, Debug, Default)]
struct ClientScan {
    /// Records of the history already looked at.
    cursor: usize,
    /// Invoked and not completed: op id -> (invoke time, partition).
    open: BTreeMap<u64, (u64, TopicPartition)>,
    /// The last completion that served the client (a send acknowledged or answered, a poll).
    last_served_ns: Option<u64>,
    invoked: u64,
    ok: u64,
    fail: u64,
    info: u64,
}

/// Sends or polls by outcome, for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// The healed phase's state: the client scans and per-partition offsets.
pub struct Convergence {
    layout: Layout,
    partitions: Vec<(TopicPartition, Vec<BrokerId>)>,
    acks: Acks,
    heal_ns: Option<u64>,
    producers: Vec<ClientScan>,
    consumers: Vec<ClientScan>,
    /// Offsets acknowledged to a producer / returned to a consumer (the last of a poll),
    /// per partition, with when: (completion time, offset).
    acked: BTreeMap<TopicPartition, Vec<(u64, u64)>>,
    polled: BTreeMap<TopicPartition, Vec<(u64, u64)>>,
    /// ZooKeeper servers halted by their own start-up check (ZOOKEEPER-2354) while the rest
    /// of the world converged: the same known behaviour as in a ZooKeeper run.
    refusals: RefusalWatch,
    /// The latest [`Self::pending`]'s restarts of the committed histories.
    restarts: BTreeMap<TopicPartition, (u64, u64)>,
}

impl Convergence {
    pub fn new(spec: &KafkaSpec, layout: &Layout) -> Self {
        Convergence {
            layout: layout.clone(),
            partitions: partitions(spec),
            acks: spec.producer.config.acks,
            heal_ns: None,
            producers: vec![ClientScan::default(); layout.producers.len()],
            consumers: vec![ClientScan::default(); layout.consumers.len()],
            acked: BTreeMap::new(),
            polled: BTreeMap::new(),
            refusals: RefusalWatch::default(),
            restarts: BTreeMap::new(),
        }
    }

    pub fn begin(&mut self, sim: &Sim<KafkaNode>) {
        self.heal_ns = Some(sim.now());
        self.refusals.begin();
        self.scan(sim);
    }

    /// A convergence failure that ZooKeeper's own start-up refusal explains: the refused
    /// servers were all that was missing at some point of the healed phase (or they left
    /// fewer than a quorum, so nothing could converge).
    pub fn explain(&self, sim: &Sim<KafkaNode>, v: &Violation) -> Option<KnownBehaviour> {
        let heal_ns = self.heal_ns?;
        self.refusals.explain(sim, &self.layout.zk, heal_ns, v)
    }

    /// Reads the records the clients added since the last scan.
    pub fn scan(&mut self, sim: &Sim<KafkaNode>) {
        for (i, id) in self.layout.producers.iter().enumerate() {
            if let Some(p) = sim.node(*id).and_then(KafkaHost::producer) {
                scan_history(&mut self.producers[i], p.history(), &mut self.acked);
            }
        }
        for (i, id) in self.layout.consumers.iter().enumerate() {
            if let Some(c) = sim.node(*id).and_then(KafkaHost::consumer) {
                scan_history(&mut self.consumers[i], c.history(), &mut self.polled);
            }
        }
    }

    pub fn sends(&self) -> Tally {
        tally(&self.producers)
    }

    pub fn polls(&self) -> Tally {
        tally(&self.consumers)
    }

    /// What the world still lacks, or None when it has converged. `left_behind`: per
    /// partition, replicas the monitor found forked or stuck by a same-epoch lossy
    /// re-appointment (allowed by `log.flush.interval.*` unset, KIP-966), which are not
    /// required to rejoin the ISR or match the leader's log; the rest of the partition is.
    /// `restarts`: per partition, the last restart of its committed history by an allowed
    /// loss, (when, from which offset): acknowledgements of the history it threw away are
    /// not awaited (kafka-nemesis seeds 56937, 59679).
    pub fn pending(
        &mut self,
        sim: &Sim<KafkaNode>,
        left_behind: &BTreeMap<TopicPartition, BTreeMap<BrokerId, String>>,
        restarts: &BTreeMap<TopicPartition, (u64, u64)>,
    ) -> Option<String> {
        self.restarts = restarts.clone();
        self.heal_ns?;
        if let Some(reason) = ensemble_pending(sim, &self.layout.zk) {
            let mut refusals = std::mem::take(&mut self.refusals);
            let zk = self.layout.zk.clone();
            refusals.observe(sim, &zk, || self.beyond_zookeeper(sim, left_behind));
            self.refusals = refusals;
            return Some(format!("ZooKeeper: {reason}"));
        }
        self.beyond_zookeeper(sim, left_behind)
    }

    /// The goal past the ensemble's own: brokers, partitions, logs, clients. A ZooKeeper
    /// leader is found among the servers that are up, so a quorum without a refused server
    /// can meet it.
    fn beyond_zookeeper(
        &mut self,
        sim: &Sim<KafkaNode>,
        left_behind: &BTreeMap<TopicPartition, BTreeMap<BrokerId, String>>,
    ) -> Option<String> {
        let heal_ns = self.heal_ns?;
        if let Some(reason) = self.brokers_pending(sim) {
            return Some(reason);
        }
        let Some(leader_zk) = self
            .layout
            .zk
            .iter()
            .copied()
            .find(|id| server(sim, *id).is_some_and(|s| s.view().established_epoch.is_some()))
        else {
            return Some("ZooKeeper: no established leader".into());
        };
        let none = BTreeMap::new();
        let expected = |tp: &TopicPartition, assigned: &[BrokerId]| -> Vec<BrokerId> {
            let excused = left_behind.get(tp).unwrap_or(&none);
            let keep = assigned.iter().filter(|b| !excused.contains_key(b));
            keep.copied().collect()
        };
        for (tp, assigned) in &self.partitions {
            let expected = expected(tp, assigned);
            if let Some(reason) = self.partition_pending(sim, leader_zk, tp, &expected) {
                return Some(format!("{tp}: {reason}"));
            }
        }
        self.scan(sim);
        if let Some(reason) = self.clients_pending(sim, heal_ns) {
            return Some(reason);
        }
        for (tp, assigned) in &self.partitions {
            let expected = expected(tp, assigned);
            if let Some(reason) = logs_differ(sim, &self.layout, tp, &expected) {
                return Some(format!("{tp}: {reason}"));
            }
        }
        None
    }

    fn brokers_pending(&self, sim: &Sim<KafkaNode>) -> Option<String> {
        let mut controllers = Vec::new();
        for id in &self.layout.brokers {
            let Some(b) = sim.node(*id).and_then(KafkaHost::broker) else {
                return Some(format!("{} is down", sim.name(*id)));
            };
            let v = b.view();
            if v.broker_epoch.is_none() {
                return Some(format!("{} is not registered", sim.name(*id)));
            }
            if v.controller_epoch.is_some() {
                controllers.push(sim.name(*id).to_string());
            }
        }
        match controllers.len() {
            1 => None,
            0 => Some("no active controller".into()),
            _ => Some(format!(
                "several active controllers: {}",
                controllers.join(", ")
            )),
        }
    }

    fn partition_pending(
        &self,
        sim: &Sim<KafkaNode>,
        zk: NodeId,
        tp: &TopicPartition,
        assigned: &[BrokerId],
    ) -> Option<String> {
        let tree = server(sim, zk).expect("established").tree();
        let Some((data, _)) = tree.get(&zkdata::partition_state_path(tp)) else {
            return Some("no partition state in ZooKeeper".into());
        };
        let Some(state) = zkdata::decode::<PartitionStateData>(&data) else {
            return Some("unreadable partition state in ZooKeeper".into());
        };
        let Some(leader) = state.leader() else {
            return Some(format!("offline in ZooKeeper (ISR {:?})", state.isr));
        };
        let leader_replica = replica(sim, &self.layout, leader, tp);
        let Some(lr) = leader_replica.filter(|r| r.is_leader()) else {
            return Some(format!(
                "kafka{leader} (leader in ZooKeeper) does not lead it"
            ));
        };
        if lr.leader_epoch() != Some(state.leader_epoch) {
            return Some(format!(
                "kafka{leader} leads in epoch {:?}, ZooKeeper says {}",
                lr.leader_epoch(),
                state.leader_epoch
            ));
        }
        let ls = lr.leader_state().expect("leader");
        if ls.isr.in_flight() {
            return Some(format!("kafka{leader} has an ISR change in flight"));
        }
        if sorted(ls.isr.isr()) != sorted(&state.isr) {
            return Some(format!(
                "ISR {:?} at the leader, {:?} in ZooKeeper",
                ls.isr.isr(),
                state.isr
            ));
        }
        if let Some(out) = assigned.iter().find(|b| !state.isr.contains(b)) {
            return Some(format!("kafka{out} is not in the ISR {:?}", state.isr));
        }
        let leo = lr.log_end_offset();
        for b in assigned {
            let Some(r) = replica(sim, &self.layout, *b, tp) else {
                return Some(format!("kafka{b} has no replica"));
            };
            if r.log_end_offset() != leo {
                return Some(format!(
                    "kafka{b} LEO {}, the leader's {leo}",
                    r.log_end_offset()
                ));
            }
        }
        if lr.high_watermark() != leo {
            return Some(format!("HW {} below the LEO {leo}", lr.high_watermark()));
        }
        None
    }

    fn clients_pending(&self, sim: &Sim<KafkaNode>, heal_ns: u64) -> Option<String> {
        for (i, scan) in self.producers.iter().enumerate() {
            let name = sim.name(self.layout.producers[i]);
            if let Some((op, (at, tp))) = scan.open.iter().find(|(_, (at, _))| *at < heal_ns) {
                return Some(format!(
                    "{name}'s send {op} to {tp} (invoked at {at} ns) is not answered"
                ));
            }
            if scan.last_served_ns.is_none_or(|t| t < heal_ns) {
                return Some(format!("{name} has no send answered since the heal"));
            }
        }
        for (i, scan) in self.consumers.iter().enumerate() {
            if scan.last_served_ns.is_none_or(|t| t < heal_ns) {
                let name = sim.name(self.layout.consumers[i]);
                return Some(format!("{name} has no poll answered since the heal"));
            }
        }
        if self.consumers.is_empty() || self.acks == Acks::None {
            return None;
        }
        for (tp, acks) in &self.acked {
            let restart = self.restarts.get(tp).copied();
            let Some(acked) = current_top(acks, restart) else {
                continue;
            };
            // Polls count whatever history they read: a consumer whose position passed
            // an offset in the abandoned history does not read it again when a same-epoch
            // re-appointment writes it anew (no KIP-320 validation finds that fork), as
            // real Kafka's does not (kafka-nemesis seed 56638).
            let polled = self.polled.get(tp).and_then(|p| current_top(p, None));
            if polled.is_none_or(|p| p < acked) {
                return Some(format!(
                    "{tp}: offset {acked} acknowledged, consumers polled up to {polled:?}"
                ));
            }
        }
        None
    }
}

fn sorted(ids: &[BrokerId]) -> Vec<BrokerId> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v
}

/// The replica of `tp` on broker `b`, when the broker is up and has one.
fn replica<'a>(
    sim: &'a Sim<KafkaNode>,
    layout: &Layout,
    b: BrokerId,
    tp: &TopicPartition,
) -> Option<&'a Replica> {
    let id = *layout.brokers.get(b as usize)?;
    sim.node(id)?.broker()?.view().replicas.get(tp)
}

/// The highest offset of `seen` ((completion time, offset) pairs) that belongs to the
/// current history: all of them without a restart; after a restart at (time, offset),
/// those completed since and those below the offset it kept.
fn current_top(seen: &[(u64, u64)], restart: Option<(u64, u64)>) -> Option<u64> {
    let current = |&&(at, o): &&(u64, u64)| restart.is_none_or(|(t, from)| at >= t || o < from);
    seen.iter().filter(current).map(|&(_, o)| o).max()
}

/// Folds the new records of one history into its scan and the per-partition offsets
/// (`offsets`: acknowledged offsets for a producer, polled ones for a consumer, with
/// their completion times).
fn scan_history(
    scan: &mut ClientScan,
    history: &[KafkaRecord],
    offsets: &mut BTreeMap<TopicPartition, Vec<(u64, u64)>>,
) {
    for r in &history[scan.cursor.min(history.len())..] {
        match r {
            KafkaRecord::Position { .. } => {}
            KafkaRecord::Invoke { op_id, at_ns, op } => {
                let tp = match op {
                    KafkaOp::Send { tp, .. } | KafkaOp::Poll { tp } => tp.clone(),
                };
                scan.open.insert(*op_id, (*at_ns, tp));
                scan.invoked += 1;
            }
            KafkaRecord::Complete {
                op_id,
                at_ns,
                outcome,
            } => {
                let tp = scan.open.remove(op_id).map(|(_, tp)| tp);
                let mut raise = |tp: Option<TopicPartition>, offset: u64| {
                    if let Some(tp) = tp {
                        offsets.entry(tp).or_default().push((*at_ns, offset));
                    }
                };
                match outcome {
                    KafkaOutcome::Sent { offset } => {
                        raise(tp, *offset);
                        scan.ok += 1;
                    }
                    KafkaOutcome::Polled { records } => {
                        if let Some((offset, _)) = records.last() {
                            raise(tp, *offset);
                        }
                        scan.ok += 1;
                    }
                    KafkaOutcome::Fail { .. } => scan.fail += 1,
                    KafkaOutcome::Info { .. } => scan.info += 1,
                }
                // An acks=0 send only ever ends as info: being answered is all it gets.
                scan.last_served_ns = Some(*at_ns);
            }
        }
    }
    scan.cursor = history.len();
}

fn tally(scans: &[ClientScan]) -> Tally {
    scans.iter().fold(Tally::default(), |t, s| Tally {
        invoked: t.invoked + s.invoked,
        ok: t.ok + s.ok,
        fail: t.fail + s.fail,
        info: t.info + s.info,
    })
}

/// Whether the replicas of `tp` hold different records up to the leader's LEO (checked only
/// once their LEOs are equal): (offset, leader epoch, key, value) compared one by one.
fn logs_differ(
    sim: &Sim<KafkaNode>,
    layout: &Layout,
    tp: &TopicPartition,
    assigned: &[BrokerId],
) -> Option<String> {
    let flat = |r: &Replica| -> Vec<(u64, u32, u64, u64)> {
        r.log
            .log
            .batches()
            .flat_map(|b| {
                let (base, epoch) = (b.base_offset, b.leader_epoch);
                b.records
                    .iter()
                    .enumerate()
                    .map(move |(i, rec)| (base + i as u64, epoch, rec.key, rec.value))
            })
            .collect()
    };
    let (first, rest) = assigned.split_first()?;
    let reference = flat(replica(sim, layout, *first, tp)?);
    for b in rest {
        let other = flat(replica(sim, layout, *b, tp)?);
        let start = reference.first().max(other.first()).map(|r| r.0);
        let from = |v: &[(u64, u32, u64, u64)]| {
            let skip = start.map_or(0, |s| v.partition_point(|r| r.0 < s));
            v[skip..].to_vec()
        };
        if let Some((a, b2)) = from(&reference)
            .iter()
            .zip(from(&other).iter())
            .find(|(a, b2)| a != b2)
        {
            return Some(format!(
                "kafka{first} and kafka{b} differ at offset {}: {a:?} vs {b2:?}",
                a.0
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(op_id: u64, at_ns: u64, partition: u32) -> KafkaRecord {
        KafkaRecord::Invoke {
            op_id,
            at_ns,
            op: KafkaOp::Send {
                tp: TopicPartition::new("t", partition),
                key: 0,
                value: op_id,
            },
        }
    }

    fn done(op_id: u64, at_ns: u64, outcome: KafkaOutcome) -> KafkaRecord {
        KafkaRecord::Complete {
            op_id,
            at_ns,
            outcome,
        }
    }

    #[test]
    fn scans_are_incremental_and_track_open_sends_and_top_offsets() {
        let mut scan = ClientScan::default();
        let mut acked = BTreeMap::new();
        let mut history = vec![send(1, 10, 0), send(2, 11, 1)];
        scan_history(&mut scan, &history, &mut acked);
        assert_eq!(scan.open.len(), 2);
        assert!(acked.is_empty());
        history.push(done(2, 20, KafkaOutcome::Sent { offset: 7 }));
        history.push(done(1, 21, KafkaOutcome::Sent { offset: 3 }));
        scan_history(&mut scan, &history, &mut acked);
        assert!(scan.open.is_empty());
        let top = |acked: &BTreeMap<TopicPartition, Vec<(u64, u64)>>, p| {
            current_top(&acked[&TopicPartition::new("t", p)], None)
        };
        assert_eq!(top(&acked, 1), Some(7));
        assert_eq!(top(&acked, 0), Some(3));
        assert_eq!(
            (scan.invoked, scan.ok, scan.last_served_ns),
            (2, 2, Some(21))
        );
        // Already-scanned records are not counted twice.
        scan_history(&mut scan, &history, &mut acked);
        assert_eq!(scan.ok, 2);
        history.push(send(3, 30, 0));
        history.push(done(
            3,
            31,
            KafkaOutcome::Info {
                error: "timeout".into(),
            },
        ));
        scan_history(&mut scan, &history, &mut acked);
        assert_eq!((scan.info, scan.invoked), (1, 3));
        assert_eq!(top(&acked, 0), Some(3));
        let t = tally(&[scan.clone(), scan]);
        assert_eq!((t.invoked, t.ok, t.info, t.fail), (6, 4, 2, 0));
    }

    /// kafka-nemesis seeds 56937 and 59679: offset 137 was acknowledged, then a lossy
    /// same-epoch re-appointment restarted the history at offset 4. Only the current
    /// history's acknowledgements are awaited, and a restart does not hide one the
    /// consumers never reached.
    #[test]
    fn acknowledgements_an_allowed_loss_threw_away_are_not_awaited() {
        let seen = [(10, 3), (20, 137), (40, 9)];
        assert_eq!(current_top(&seen, None), Some(137));
        // Restarted at time 30 from offset 4: 3 (kept) and 9 (since) are current.
        assert_eq!(current_top(&seen, Some((30, 4))), Some(9));
        assert_eq!(current_top(&[(20, 137)], Some((30, 4))), None);
        // The check still fires: 9 acknowledged in the current history, polled up to 8.
        let polled = [(25, 2), (45, 8)];
        assert!(current_top(&polled, None) < current_top(&seen, Some((30, 4))));
    }
}
