//! Kafka client records -> `check::History`, and the end-of-run checks of a Kafka run:
//! - `kafka-log`: the client history through `check::kafka_log` (inconsistent offsets,
//!   duplicates, lost writes, aborted reads, non-monotonic or skipping polls, non-monotonic
//!   sends), one partition per key;
//! - `k-no-loss`: every send acknowledged with acks=all is, at the end, at its offset in
//!   the log of the partition's leader and of every replica whose log reaches that offset;
//! - `k-consistent-read`: every record a consumer read at an offset is, at the end, the
//!   record at that offset on every replica whose log reaches it, and is still in the
//!   leader's log (consumers read below the high watermark only, so nothing they read may
//!   be truncated).
//!
//! Losses that the run's configuration permits are not violations: an acknowledgement with
//! acks=0/1, a partition that had an unclean election, or one whose replicas lost unflushed
//! data to power loss ([`Allowances`], filled by the world from the scenario and the
//! monitor). Each such finding is reported as allowed, with the setting that allows it
//! ([`AllowedLoss`]), in the run's summary: visible, not hidden, not called a bug.
//!
//! `unseen` (acknowledged, never read, above everything read) is counted, not judged: a run
//! ends when its liveness goals are met, not when consumers have drained every partition;
//! k-no-loss judges those records against the final logs instead. Sends acknowledged below
//! every consumer's starting position (`auto.offset.reset=latest`) are not expected to be
//! read and go to the checker as unknown; k-no-loss still judges them.
//!
//! Depends on: kafka (client records, msg, config, replica), check, cluster (record,
//! capture, Violation).

use std::collections::BTreeMap;

use serde::Serialize;

use super::monitor::AllowedLosses;
use super::KafkaHost;
use crate::check::history::{Call, History, Outcome as HOutcome, PolledRecord, Ret};
use crate::check::kafka_log::{check_kafka_log, KafkaLogOptions};
use crate::check::Violation as CheckViolation;
use crate::cluster::capture::{self, ClientOp, Witness};
use crate::cluster::record::{pair, Mark, Tally};
use crate::cluster::{FailureKind, Violation};
use crate::kafka::client::record::{KafkaOp, KafkaOutcome, KafkaRecord, PositionReason};
use crate::kafka::config::{Acks, ProducerConfig};
use crate::kafka::msg::{BrokerId, TopicPartition};
use crate::kafka::replica::Replica;
use crate::node::{Node, NodeId};
use crate::sim::Sim;

/// One client's records, with the process number it has in the checked history.
#[derive(Clone, Copy, Debug)]
pub struct ClientHistory<'a> {
    pub process: u64,
    pub node: NodeId,
    pub records: &'a [KafkaRecord],
}

/// Something that happened in the run that the configuration permits to lose
/// acknowledged or read data on a partition (recorded by the monitor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum LossCause {
    /// A leader outside the ISR was elected (`unclean.leader.election.enable=true`).
    UncleanElection {
        at_ns: u64,
        leader: BrokerId,
        leader_epoch: u32,
    },
    /// These replicas lost unflushed data to power loss, enough of them that acknowledged
    /// data may be gone (Kafka does not fsync per write unless `log.flush.interval.*` say
    /// so).
    PowerLoss { at_ns: u64, brokers: Vec<BrokerId> },
    /// A leader lost unflushed records to a power loss and, once restarted, was appointed
    /// to lead the same leader epoch again by a controller that took office after the
    /// restart (ZooKeeper-mode Kafka has no earlier broker epoch to compare with, so
    /// KIP-380's bounce check cannot see it). Followers that kept the lost records can
    /// neither detect the loss nor repair it: KIP-966 describes this loss.
    SameEpochReappointment {
        at_ns: u64,
        leader: BrokerId,
        leader_epoch: u32,
    },
}

impl LossCause {
    /// The setting that permits the loss, for the summary.
    pub fn setting(&self) -> String {
        match self {
            LossCause::UncleanElection { leader, .. } => {
                format!("unclean.leader.election.enable=true (broker {leader} elected unclean)")
            }
            LossCause::PowerLoss { brokers, .. } => format!(
                "log.flush.interval.messages/ms (no fsync per write): power loss of brokers \
                 {brokers:?} lost unflushed data"
            ),
            LossCause::SameEpochReappointment {
                leader,
                leader_epoch,
                ..
            } => format!(
                "log.flush.interval.messages/ms (no fsync per write): broker {leader} lost \
                 unflushed records to a power loss and was appointed leader of epoch \
                 {leader_epoch} again, which no follower's epoch check can see (KIP-966)"
            ),
        }
    }
}

/// What the run's configuration and events permit to be lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowances {
    pub acks: Acks,
    pub enable_idempotence: bool,
    pub max_in_flight: u32,
    /// Per partition, what happened there that permits losses.
    pub losses: BTreeMap<TopicPartition, Vec<LossCause>>,
}

impl Allowances {
    /// The producer's part; the world adds the monitor's loss causes.
    pub fn from_producer(p: &ProducerConfig) -> Self {
        Allowances {
            acks: p.acks,
            enable_idempotence: p.enable_idempotence,
            max_in_flight: p.max_in_flight_requests_per_connection,
            losses: BTreeMap::new(),
        }
    }

    /// Adds what the monitor saw: unclean elections, and leaders elected without records
    /// they had lost to power loss. (A replica that lost unflushed records but never led
    /// with the loss refetches them: that alone permits nothing.)
    pub fn with_monitor(mut self, losses: &AllowedLosses) -> Self {
        for u in &losses.unclean_elections {
            let cause = LossCause::UncleanElection {
                at_ns: u.at_ns,
                leader: u.leader,
                leader_epoch: u.leader_epoch,
            };
            self.losses.entry(u.tp.clone()).or_default().push(cause);
        }
        for l in losses.lossy_elections.iter().filter(|l| !l.unclean) {
            let brokers: Vec<BrokerId> = losses
                .data_losses
                .iter()
                .filter(|d| d.tp == l.tp && d.at_ns <= l.at_ns)
                .map(|d| d.broker)
                .collect();
            let brokers = if brokers.is_empty() {
                vec![l.leader]
            } else {
                brokers
            };
            let cause = if l.again {
                LossCause::SameEpochReappointment {
                    at_ns: l.at_ns,
                    leader: l.leader,
                    leader_epoch: l.leader_epoch,
                }
            } else {
                LossCause::PowerLoss {
                    at_ns: l.at_ns,
                    brokers,
                }
            };
            self.losses.entry(l.tp.clone()).or_default().push(cause);
        }
        self
    }

    fn cause(&self, partition: &str) -> Option<String> {
        self.losses
            .iter()
            .find(|(tp, _)| tp.to_string() == partition)
            .and_then(|(_, causes)| causes.first())
            .map(LossCause::setting)
    }

    fn acks_setting(&self) -> Option<String> {
        match self.acks {
            Acks::All => None,
            Acks::Leader => Some("acks=1".into()),
            Acks::None => Some("acks=0".into()),
        }
    }

    /// The setting that permits a `kafka-log` anomaly of `kind` on `partition`;
    /// `involves_send` when an acknowledged send is part of it.
    fn permits(&self, kind: &str, partition: &str, involves_send: bool) -> Option<String> {
        let cause = || self.cause(partition);
        let acks = || self.acks_setting().filter(|_| involves_send);
        match kind {
            "lost-write" | "unseen" | "inconsistent-offsets" => cause().or_else(acks),
            "duplicate" if !self.enable_idempotence => {
                Some("enable.idempotence=false (a retry may append a record twice)".into())
            }
            "duplicate" | "poll-skip" | "nonmonotonic-poll" => cause(),
            "nonmonotonic-send" if !self.enable_idempotence && self.max_in_flight > 1 => {
                Some("max.in.flight.requests.per.connection>1 without enable.idempotence".into())
            }
            "nonmonotonic-send" => cause().or_else(acks),
            _ => None,
        }
    }
}

/// One replica's log at the end of the run, as the checks read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaEnd {
    pub broker: BrokerId,
    pub tp: TopicPartition,
    /// The replica believes it leads the partition.
    pub is_leader: bool,
    pub log_start_offset: u64,
    /// (offset, value) of every record, in offset order.
    pub records: Vec<(u64, u64)>,
}

impl ReplicaEnd {
    pub fn of(replica: &Replica) -> Self {
        let records = replica
            .log
            .log
            .batches()
            .flat_map(|b| {
                let base = b.base_offset;
                b.records
                    .iter()
                    .enumerate()
                    .map(move |(i, r)| (base + i as u64, r.value))
            })
            .collect();
        ReplicaEnd {
            broker: replica.me,
            tp: replica.tp.clone(),
            is_leader: replica.is_leader(),
            log_start_offset: replica.log.log_start_offset(),
            records,
        }
    }
    fn log_end_offset(&self) -> u64 {
        self.records
            .last()
            .map_or(self.log_start_offset, |r| r.0 + 1)
    }
    /// The value at `offset`: Some(None) when the log reaches it but holds nothing there
    /// (a gap), None when the log does not reach it.
    fn at(&self, offset: u64) -> Option<Option<u64>> {
        if offset < self.log_start_offset || offset >= self.log_end_offset() {
            return None;
        }
        // Offsets are dense from the log start in every log this holds: look there first.
        let dense = (offset - self.log_start_offset) as usize;
        if let Some(&(o, v)) = self.records.get(dense) {
            if o == offset {
                return Some(Some(v));
            }
        }
        let i = self.records.partition_point(|r| r.0 < offset);
        Some(self.records.get(i).filter(|r| r.0 == offset).map(|r| r.1))
    }
}

/// A finding the configuration permits, with the setting (counted per check, partition
/// and setting).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AllowedLoss {
    pub check: String,
    pub partition: String,
    pub setting: String,
    pub count: u64,
    /// The first such finding, in words.
    pub example: String,
}

/// What the end-of-run checks found.
#[derive(Clone, Debug, Default)]
pub struct KafkaChecks {
    pub violations: Vec<Violation>,
    pub allowed: Vec<AllowedLoss>,
    /// The witness of the first `kafka-log` violation, for the report.
    pub witness: Option<Witness>,
    pub sends: Tally,
    pub polls: u64,
    pub records_read: u64,
    /// Acknowledged records no poll returned, above everything read (not judged).
    pub unseen: u64,
    /// Consumer positions moved back by KIP-320 truncation detection.
    pub truncations_detected: u64,
}

impl KafkaChecks {
    /// Figures for the run's summary.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "sends_ok": self.sends.ok,
            "sends_fail": self.sends.fail,
            "sends_info": self.sends.info,
            "polls": self.polls,
            "records_read": self.records_read,
            "unseen": self.unseen,
            "truncations_detected": self.truncations_detected,
            "allowed_losses": self.allowed,
        })
    }

    fn allow(&mut self, check: &str, partition: &str, setting: String, example: String) {
        let found = self
            .allowed
            .iter_mut()
            .find(|a| a.check == check && a.partition == partition && a.setting == setting);
        match found {
            Some(a) => a.count += 1,
            None => self.allowed.push(AllowedLoss {
                check: check.into(),
                partition: partition.into(),
                setting,
                count: 1,
                example,
            }),
        }
    }
}

/// The clients of a world: producers are processes `0..P`, consumers `P..P+C`.
pub fn clients_of<'a, N>(
    sim: &'a Sim<N>,
    producers: &[NodeId],
    consumers: &[NodeId],
) -> Vec<ClientHistory<'a>>
where
    N: Node + KafkaHost,
    N::Msg: std::hash::Hash + std::fmt::Debug,
{
    let mut out = Vec::new();
    for (i, id) in producers.iter().enumerate() {
        if let Some(p) = sim.node(*id).and_then(KafkaHost::producer) {
            let records = p.history();
            out.push(ClientHistory {
                process: i as u64,
                node: *id,
                records,
            });
        }
    }
    for (j, id) in consumers.iter().enumerate() {
        if let Some(c) = sim.node(*id).and_then(KafkaHost::consumer) {
            let process = (producers.len() + j) as u64;
            out.push(ClientHistory {
                process,
                node: *id,
                records: c.history(),
            });
        }
    }
    out
}

/// Every live broker's replica logs at the end of the run.
pub fn finals_of<N>(sim: &Sim<N>, brokers: &[NodeId]) -> Vec<ReplicaEnd>
where
    N: Node + KafkaHost,
    N::Msg: std::hash::Hash + std::fmt::Debug,
{
    let mut out = Vec::new();
    for id in brokers {
        if let Some(b) = sim.node(*id).and_then(KafkaHost::broker) {
            out.extend(b.view().replicas.values().map(ReplicaEnd::of));
        }
    }
    out
}

/// The end-of-run checks of a finished world (what `System::finish` calls): the client
/// histories of `producers` and `consumers` against the final logs of `brokers`.
pub fn check_world<N>(
    sim: &Sim<N>,
    brokers: &[NodeId],
    producers: &[NodeId],
    consumers: &[NodeId],
    allow: &Allowances,
) -> KafkaChecks
where
    N: Node + KafkaHost,
    N::Msg: std::hash::Hash + std::fmt::Debug,
{
    let clients = clients_of(sim, producers, consumers);
    let finals = finals_of(sim, brokers);
    check_run(sim.now(), &clients, &finals, allow)
}

/// The clients' operations for a captured run's diagram and exports.
pub fn client_ops(clients: &[ClientHistory]) -> Vec<ClientOp> {
    let history = to_check_history(clients);
    let nodes: BTreeMap<u64, u32> = clients.iter().map(|c| (c.process, c.node.0)).collect();
    capture::client_ops(&history, &|p| nodes.get(&p).copied().unwrap_or(u32::MAX))
}

/// A completed (or still open) operation of one client.
pub(super) struct Span<'a> {
    pub process: u64,
    pub t0: u64,
    pub op: &'a KafkaOp,
    /// None: open at the end.
    pub done: Option<(u64, &'a KafkaOutcome)>,
}

fn spans<'a>(client: &ClientHistory<'a>) -> Vec<Span<'a>> {
    let marks = client.records.iter().filter_map(|r| match r {
        KafkaRecord::Invoke { op_id, at_ns, op } => Some(Mark::Invoke(*op_id, (*at_ns, op))),
        KafkaRecord::Complete {
            op_id,
            at_ns,
            outcome,
        } => Some(Mark::Complete(*op_id, (*at_ns, outcome))),
        KafkaRecord::Position { .. } => None,
    });
    let paired = pair(marks);
    let process = client.process;
    let mut out: Vec<Span> = paired
        .done
        .into_iter()
        .map(|((t0, op), (t1, outcome))| Span {
            process,
            t0,
            op,
            done: Some((t1, outcome)),
        })
        .collect();
    out.extend(paired.open.into_iter().map(|(t0, op)| Span {
        process,
        t0,
        op,
        done: None,
    }));
    out
}

/// Per partition, the lowest position any consumer started from (`auto.offset.reset`).
fn start_positions(clients: &[ClientHistory]) -> BTreeMap<String, u64> {
    let mut first: BTreeMap<(u64, String), u64> = BTreeMap::new();
    for c in clients {
        for r in c.records {
            if let KafkaRecord::Position {
                tp,
                offset,
                reason: PositionReason::Reset,
                ..
            } = r
            {
                first.entry((c.process, tp.to_string())).or_insert(*offset);
            }
        }
    }
    let mut min: BTreeMap<String, u64> = BTreeMap::new();
    for ((_, tp), offset) in first {
        let m = min.entry(tp).or_insert(offset);
        *m = (*m).min(offset);
    }
    min
}

/// Converts the clients' records into a `check::History` for `check --model kafka-log`:
/// sends and polls keyed by partition (`topic-partition`), values as decimal text.
pub fn to_check_history(clients: &[ClientHistory]) -> History {
    let spans: Vec<Vec<Span>> = clients.iter().map(spans).collect();
    check_history_of(clients, &spans)
}

/// [`to_check_history`] from each client's spans (computed once for all the checks).
pub(super) fn check_history_of(clients: &[ClientHistory], spans: &[Vec<Span>]) -> History {
    let starts = start_positions(clients);
    let mut history = History::new();
    for s in in_history_order(spans) {
        let (call, key) = match s.op {
            KafkaOp::Send { tp, value, .. } => {
                let key = tp.to_string();
                let call = Call::Send {
                    key: Some(key.clone()),
                    value: value.to_string(),
                };
                (call, key)
            }
            KafkaOp::Poll { tp } => (Call::Poll, tp.to_string()),
        };
        let id = history.invoke(s.process, None, s.t0, call);
        let Some((t1, outcome)) = s.done else {
            continue;
        };
        let (outcome, ret) = match outcome {
            KafkaOutcome::Sent { offset } if starts.get(&key).is_some_and(|m| offset < m) => {
                (HOutcome::Info, None)
            }
            KafkaOutcome::Sent { offset } => (HOutcome::Ok, Some(Ret::Offset { offset: *offset })),
            KafkaOutcome::Polled { records } => {
                let records = records
                    .iter()
                    .map(|(offset, value)| PolledRecord {
                        key: key.clone(),
                        offset: *offset,
                        value: value.to_string(),
                    })
                    .collect();
                (HOutcome::Ok, Some(Ret::Records { records }))
            }
            KafkaOutcome::Fail { .. } => (HOutcome::Fail, None),
            KafkaOutcome::Info { .. } => (HOutcome::Info, None),
        };
        history.complete(id, t1.max(s.t0), outcome, ret, None);
    }
    history
}

/// Every client's operations in the converted history's order (its op ids): by
/// invocation time, then process.
pub(super) fn in_history_order<'s, 'a>(spans: &'s [Vec<Span<'a>>]) -> Vec<&'s Span<'a>> {
    let mut all: Vec<&Span> = spans.iter().flatten().collect();
    all.sort_by_key(|s| (s.t0, s.process));
    all
}

/// Sends completed ok / fail / info.
pub fn tally(clients: &[ClientHistory]) -> Tally {
    let spans: Vec<Vec<Span>> = clients.iter().map(spans).collect();
    tally_of(&spans)
}

fn tally_of(spans: &[Vec<Span>]) -> Tally {
    let mut t = Tally::default();
    for c in spans {
        for s in c {
            if let (KafkaOp::Send { .. }, Some((_, outcome))) = (s.op, s.done) {
                match outcome {
                    KafkaOutcome::Sent { .. } => t.ok += 1,
                    KafkaOutcome::Fail { .. } => t.fail += 1,
                    _ => t.info += 1,
                }
            }
        }
    }
    t
}

fn end_violation(now_ns: u64, invariant: &str, message: String) -> Violation {
    Violation {
        kind: FailureKind::Safety,
        invariant: invariant.into(),
        message,
        at_ns: now_ns,
        event: 0,
        node: None,
    }
}

/// Runs every end-of-run check. `finals` holds every live replica's log at the end.
pub fn check_run(
    now_ns: u64,
    clients: &[ClientHistory],
    finals: &[ReplicaEnd],
    allow: &Allowances,
) -> KafkaChecks {
    // Each client's operations, paired once for every check below.
    let spans: Vec<Vec<Span>> = clients.iter().map(spans).collect();
    let mut out = KafkaChecks {
        sends: tally_of(&spans),
        ..KafkaChecks::default()
    };
    for c in clients {
        for r in c.records {
            match r {
                KafkaRecord::Position {
                    reason: PositionReason::Truncation,
                    ..
                } => out.truncations_detected += 1,
                KafkaRecord::Complete {
                    outcome: KafkaOutcome::Polled { records },
                    ..
                } => {
                    out.polls += 1;
                    out.records_read += records.len() as u64;
                }
                _ => {}
            }
        }
    }
    check_log(now_ns, clients, &spans, allow, &mut out);
    check_no_loss(now_ns, clients, &spans, finals, allow, &mut out);
    check_consistent_read(now_ns, clients, &spans, finals, allow, &mut out);
    out
}

/// `kafka-log`: the checker's anomalies, each judged against the allowances.
fn check_log(
    now_ns: u64,
    clients: &[ClientHistory],
    spans: &[Vec<Span>],
    allow: &Allowances,
    out: &mut KafkaChecks,
) {
    let options = KafkaLogOptions {
        unseen_is_violation: true,
    };
    // A clean history (the common case) has nothing to report: decided from the typed
    // records without converting them (see `log_clean`); in debug builds the checker
    // confirms it.
    let clean = super::log_clean::is_clean(&in_history_order(spans), &start_positions(clients));
    if clean && !cfg!(debug_assertions) {
        return;
    }
    let history = check_history_of(clients, spans);
    let verdict = check_kafka_log(&history, &options)
        .expect("the conversion only produces sends and polls with their results");
    debug_assert_eq!(
        clean,
        verdict.violations().is_empty(),
        "log_clean disagrees with the kafka-log checker"
    );
    let nodes: BTreeMap<u64, u32> = clients.iter().map(|c| (c.process, c.node.0)).collect();
    let node_of = move |p: u64| nodes.get(&p).copied().unwrap_or(u32::MAX);
    let mut reported: Vec<String> = Vec::new();
    for v in all_violations(&history, &options, verdict.violations()) {
        let partition = v.key.clone().unwrap_or_default();
        let involves_send = v
            .ops
            .iter()
            .any(|i| matches!(history.ops[*i].call, Call::Send { .. }));
        if v.kind == "unseen" {
            match allow.permits("unseen", &partition, true) {
                Some(setting) => out.allow("unseen", &partition, setting, v.message.clone()),
                None => out.unseen += 1,
            }
            continue;
        }
        if let Some(setting) = allow.permits(&v.kind, &partition, involves_send) {
            out.allow(&v.kind, &partition, setting, v.message.clone());
            continue;
        }
        if reported.contains(&v.kind) {
            continue;
        }
        reported.push(v.kind.clone());
        let ops: Vec<String> = v
            .ops
            .iter()
            .take(4)
            .map(|i| history.ops[*i].summary())
            .collect();
        let message = format!("{}: {} [{}]", v.kind, v.message, ops.join("; "));
        out.violations
            .push(end_violation(now_ns, "kafka-log", message));
        if out.witness.is_none() {
            out.witness = Some(capture::checker_witness(
                "kafka-log",
                &v,
                &history,
                &node_of,
            ));
        }
    }
}

/// Every anomaly of the history, not only the first few of each kind: the allowed ones
/// are counted, and an allowed example must not hide a real one of the same kind.
fn all_violations(
    history: &History,
    options: &KafkaLogOptions,
    first: &[CheckViolation],
) -> Vec<CheckViolation> {
    if first.is_empty() {
        return Vec::new();
    }
    // The checker keeps a few examples per kind; judge them per partition by re-checking
    // each partition's operations alone.
    let mut keys: Vec<String> = history
        .ops
        .iter()
        .filter_map(|op| match (&op.call, &op.ret) {
            (Call::Send { key, .. }, _) => key.clone(),
            (Call::Poll, Some(Ret::Records { records })) => records.first().map(|r| r.key.clone()),
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let (sub, ids) = partition_history(history, &key);
        let verdict = check_kafka_log(&sub, options).expect("a sub-history of a valid one");
        for mut v in verdict.violations().iter().cloned() {
            v.op = v.op.map(|i| ids[i]);
            v.ops = v.ops.iter().map(|i| ids[*i]).collect();
            v.window = None;
            out.push(v);
        }
    }
    out
}

/// The operations of one partition (polls filtered to its records), with their ids in
/// the whole history.
fn partition_history(history: &History, key: &str) -> (History, Vec<usize>) {
    let mut sub = History::new();
    let mut ids = Vec::new();
    for (i, op) in history.ops.iter().enumerate() {
        let mine = match (&op.call, &op.ret) {
            (Call::Send { key: k, .. }, _) => k.as_deref() == Some(key),
            (Call::Poll, Some(Ret::Records { records })) => {
                records.is_empty() || records.iter().any(|r| r.key == key)
            }
            _ => false,
        };
        if mine {
            let mut op = op.clone();
            if let Some(Ret::Records { records }) = &mut op.ret {
                records.retain(|r| r.key == key);
            }
            sub.ops.push(op);
            ids.push(i);
        }
    }
    (sub, ids)
}

/// The final replicas of each partition.
fn by_partition(finals: &[ReplicaEnd]) -> BTreeMap<TopicPartition, Vec<&ReplicaEnd>> {
    let mut m: BTreeMap<TopicPartition, Vec<&ReplicaEnd>> = BTreeMap::new();
    for r in finals {
        m.entry(r.tp.clone()).or_default().push(r);
    }
    m
}

/// Where a record should be and is not: the leader lacks it, or a replica reaching its
/// offset holds something else.
fn missing(replicas: &[&ReplicaEnd], offset: u64, value: u64) -> Option<String> {
    for r in replicas {
        match r.at(offset) {
            Some(Some(v)) if v == value => {}
            Some(found) => {
                return Some(format!(
                    "broker {} holds {found:?} at offset {offset} instead",
                    r.broker
                ))
            }
            None if r.is_leader => {
                return Some(format!(
                    "the leader (broker {}) ends at offset {}",
                    r.broker,
                    r.log_end_offset()
                ))
            }
            None => {}
        }
    }
    None
}

/// `k-no-loss`: acknowledged sends are in the final logs at their offsets.
fn check_no_loss(
    now_ns: u64,
    clients: &[ClientHistory],
    spans: &[Vec<Span>],
    finals: &[ReplicaEnd],
    allow: &Allowances,
    out: &mut KafkaChecks,
) {
    let replicas = by_partition(finals);
    for (c, spans) in clients.iter().zip(spans) {
        for s in spans {
            let (KafkaOp::Send { tp, value, .. }, Some((_, KafkaOutcome::Sent { offset }))) =
                (s.op, s.done)
            else {
                continue;
            };
            let Some(rs) = replicas.get(tp) else {
                continue;
            };
            let Some(why) = missing(rs, *offset, *value) else {
                continue;
            };
            // Named only for a finding: most acknowledged sends are where they belong.
            let partition = tp.to_string();
            let message = format!(
                "producer {} had value {value} acknowledged at offset {offset} of {partition}, \
                 but {why}",
                c.node
            );
            let setting = allow.cause(&partition).or_else(|| allow.acks_setting());
            match setting {
                Some(setting) => out.allow("k-no-loss", &partition, setting, message),
                None if out.violations.iter().any(|v| v.invariant == "k-no-loss") => {}
                None => out
                    .violations
                    .push(end_violation(now_ns, "k-no-loss", message)),
            }
        }
    }
}

/// `k-consistent-read`: what consumers read is, at the end, what every replica holds.
fn check_consistent_read(
    now_ns: u64,
    clients: &[ClientHistory],
    spans: &[Vec<Span>],
    finals: &[ReplicaEnd],
    allow: &Allowances,
    out: &mut KafkaChecks,
) {
    let replicas = by_partition(finals);
    for (c, spans) in clients.iter().zip(spans) {
        for s in spans {
            let (KafkaOp::Poll { tp }, Some((_, KafkaOutcome::Polled { records }))) =
                (s.op, s.done)
            else {
                continue;
            };
            let Some(rs) = replicas.get(tp) else {
                continue;
            };
            for (offset, value) in records {
                let Some(why) = missing(rs, *offset, *value) else {
                    continue;
                };
                let partition = tp.to_string();
                let message = format!(
                    "consumer {} read value {value} at offset {offset} of {partition}, but {why}",
                    c.node
                );
                match allow.cause(&partition) {
                    Some(setting) => out.allow("k-consistent-read", &partition, setting, message),
                    None if out
                        .violations
                        .iter()
                        .any(|v| v.invariant == "k-consistent-read") => {}
                    None => {
                        out.violations
                            .push(end_violation(now_ns, "k-consistent-read", message))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
