//! Requests the broker holds before answering (Kafka's `DelayedOperationPurgatory`):
//! acks=all produces until the HW passes them (`DelayedProduce`), produces whose append
//! made a flush due until it is durable, and fetches with nothing new until there is, or
//! until `max_wait_ms` (`DelayedFetch`).
//!
//! Kafka completes held requests through watchers keyed by partition
//! (`tryCompleteDelayedRequests`); here, after each event, a held request is re-checked
//! when one of its partitions was handed out for change since the last check (the marks of
//! [`super::replicas`]), and the others are left as they are: whether a request is done
//! depends only on its partitions' replicas.

use std::collections::BTreeMap;

use super::{replicas, Broker, Origin};
use crate::kafka::config::{Acks, ServerProperties};
use crate::kafka::msg::{
    BrokerId, ErrorCode, FetchPartition, ProducePartitionResponse, Response, TopicPartition,
};
use crate::kafka::replica::leader::AckStatus;
use crate::kafka::replica::Replica;
use crate::kafka::wire::WireMsg;
use crate::node::{ConnId, Context};

/// Timer tags of held requests' expiries: base + the request's id.
pub const TAG_DELAYED_BASE: u64 = 1 << 40;

/// One partition of a held produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartStatus {
    Done(ProducePartitionResponse),
    Waiting {
        tp: TopicPartition,
        leader_epoch: u32,
        base_offset: u64,
        last_offset: u64,
        /// Waits for the HW (acks=all).
        replicated: bool,
        /// Waits for the local flush its append made due.
        durable: bool,
    },
}

#[derive(Clone, Debug)]
pub struct DelayedProduce {
    pub origin: Origin,
    pub acks: Acks,
    pub parts: Vec<PartStatus>,
}

#[derive(Clone, Debug)]
pub struct DelayedFetch {
    pub origin: Origin,
    pub replica_id: Option<BrokerId>,
    pub max_wait_ms: u64,
    pub partitions: Vec<FetchPartition>,
}

/// Held requests by id, in id order: a vector, as ids only grow (a new request goes at
/// the end) and a broker holds a few requests at a time, which every re-check walks.
#[derive(Clone, Debug)]
pub struct Held<T>(Vec<(u64, T)>);

impl<T> Default for Held<T> {
    fn default() -> Self {
        Held(Vec::new())
    }
}

impl<T> Held<T> {
    fn insert(&mut self, id: u64, op: T) {
        assert!(self.0.last().is_none_or(|l| l.0 < id), "held ids grow");
        self.0.push((id, op));
    }
    fn remove(&mut self, id: u64) -> Option<T> {
        let i = self.0.binary_search_by_key(&id, |e| e.0).ok()?;
        Some(self.0.remove(i).1)
    }
    fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.0.retain(|e| keep(&e.1));
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.0.iter().map(|e| (e.0, &e.1))
    }
    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        self.0.iter_mut().map(|e| (e.0, &mut e.1))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Purgatory {
    next_id: u64,
    pub produces: Held<DelayedProduce>,
    pub fetches: Held<DelayedFetch>,
    /// The ids a re-check found done, kept to reuse its allocation.
    scratch: Vec<u64>,
}

impl Purgatory {
    pub fn hold_produce(&mut self, ctx: &mut Context<'_, WireMsg>, op: DelayedProduce, ms: u64) {
        self.next_id += 1;
        ctx.set_timer(ms * 1_000_000, TAG_DELAYED_BASE + self.next_id);
        self.produces.insert(self.next_id, op);
    }
    pub fn hold_fetch(&mut self, ctx: &mut Context<'_, WireMsg>, op: DelayedFetch) {
        self.next_id += 1;
        let after = op.max_wait_ms * 1_000_000;
        ctx.set_timer(after, TAG_DELAYED_BASE + self.next_id);
        self.fetches.insert(self.next_id, op);
    }
    /// Forgets the requests of a closed connection.
    pub fn drop_conn(&mut self, conn: ConnId) {
        let on = |o: &Origin| matches!(o, Origin::Remote { conn: c, .. } if *c == conn);
        self.produces.retain(|p| !on(&p.origin));
        self.fetches.retain(|f| !on(&f.origin));
    }
    /// Requests held (for the view).
    pub fn len(&self) -> usize {
        self.produces.len() + self.fetches.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn produce_response(tp: &TopicPartition, error: ErrorCode, base: Option<u64>) -> PartStatus {
    PartStatus::Done(ProducePartitionResponse {
        tp: tp.clone(),
        error,
        base_offset: if error == ErrorCode::None { base } else { None },
        log_start_offset: 0,
    })
}

/// Where a held produce partition stands now (`DelayedProduce.tryComplete`), on a broker
/// holding `replicas`.
fn produce_part_status(
    replicas: &BTreeMap<TopicPartition, Replica>,
    props: &ServerProperties,
    part: &PartStatus,
) -> PartStatus {
    let PartStatus::Waiting {
        tp,
        leader_epoch,
        base_offset,
        last_offset,
        replicated,
        durable,
    } = part
    else {
        return part.clone();
    };
    let Some(r) = replicas.get(tp) else {
        return produce_response(tp, ErrorCode::NotLeaderOrFollower, None);
    };
    if !r.is_leader() || r.leader_epoch() != Some(*leader_epoch) {
        return produce_response(tp, ErrorCode::NotLeaderOrFollower, None);
    }
    if *durable && r.log.log.recovery_point() <= *last_offset {
        return part.clone();
    }
    if !*replicated {
        return produce_response(tp, ErrorCode::None, Some(*base_offset));
    }
    match r.acks_all_status(*leader_epoch, *last_offset, props) {
        AckStatus::Waiting => part.clone(),
        AckStatus::Done(e) => produce_response(tp, e, Some(*base_offset)),
    }
}

impl Broker {
    /// Answers a produce whose partitions are all done; returns whether it was.
    pub(super) fn try_complete_produce(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        op: &mut DelayedProduce,
        expired: bool,
    ) -> bool {
        for i in 0..op.parts.len() {
            op.parts[i] = produce_part_status(&self.replicas, &self.setup.props, &op.parts[i]);
            if expired {
                if let PartStatus::Waiting { tp, .. } = &op.parts[i] {
                    op.parts[i] = produce_response(tp, ErrorCode::RequestTimedOut, None);
                }
            }
        }
        let mut partitions = Vec::new();
        for p in &op.parts {
            match p {
                PartStatus::Done(r) => partitions.push(r.clone()),
                PartStatus::Waiting { .. } => return false,
            }
        }
        if op.acks == Acks::None {
            // acks=0: no answer; on an error Kafka closes the connection so that the
            // producer notices.
            if let (Origin::Remote { conn, .. }, true) = (
                op.origin,
                partitions.iter().any(|p| p.error != ErrorCode::None),
            ) {
                ctx.close(conn);
            }
            return true;
        }
        self.respond(ctx, op.origin, Response::Produce { partitions });
        true
    }

    /// Whether a held fetch can be answered now (`DelayedFetch.tryComplete`): new data for
    /// a follower (past its fetch offset), a HW past a consumer's position, or an error.
    fn fetch_ready(&self, op: &DelayedFetch) -> bool {
        op.partitions.iter().any(|p| {
            let Some(r) = self.replicas.get(&p.tp) else {
                return true;
            };
            if !r.is_leader() || r.check_leader_epoch(p.current_leader_epoch).is_err() {
                return true;
            }
            match op.replica_id {
                Some(_) => r.log_end_offset() != p.fetch_offset,
                None => r.high_watermark() > p.fetch_offset,
            }
        })
    }

    /// Re-checks the held requests of the partitions handed out for change since the last
    /// check (Kafka's `tryCompleteDelayedRequests`, keyed by partition); answers those
    /// that are done. Whether a held request is done depends only on its partitions'
    /// replicas (and the fixed properties), so one whose partitions are all as they were
    /// at its last check is still not done: a request is held only after a read of all
    /// its partitions, which marks them, so its first re-check is never skipped.
    pub(super) fn check_purgatory(&mut self, ctx: &mut Context<'_, WireMsg>) {
        let changed = self.replicas.take_purgatory_marks();
        if changed == 0 {
            return;
        }
        let touched = |tp: &TopicPartition| changed & replicas::mark(tp) != 0;
        // Follower fetches first: they move the HW, which may complete produces.
        let mut ready = std::mem::take(&mut self.purgatory.scratch);
        ready.clear();
        for (id, f) in self.purgatory.fetches.iter() {
            if f.partitions.iter().any(|p| touched(&p.tp)) && self.fetch_ready(f) {
                ready.push(id);
            }
        }
        for &id in &ready {
            let op = self.purgatory.fetches.remove(id).expect("held");
            self.answer_fetch(ctx, op.origin, op.replica_id, &op.partitions);
        }
        // Answering those fetches may have changed partitions too: their produces are
        // re-checked now, their fetches at the next check (the marks stay for it).
        let changed = changed | self.replicas.purgatory_marks();
        let touched = |tp: &TopicPartition| changed & replicas::mark(tp) != 0;
        // Each held produce's partitions are brought up to date in place (a partition once
        // done keeps its answer); those now done in every partition are answered, in order.
        // Answering sends only, so it changes no other produce's status.
        let mut done = ready;
        done.clear();
        for (id, op) in self.purgatory.produces.iter_mut() {
            let mut waiting = false;
            for part in op.parts.iter_mut() {
                if let PartStatus::Waiting { tp, .. } = part {
                    if touched(tp) {
                        *part = produce_part_status(&self.replicas, &self.setup.props, part);
                    }
                }
                waiting |= matches!(part, PartStatus::Waiting { .. });
            }
            if !waiting {
                done.push(id);
            }
        }
        for &id in &done {
            let mut op = self.purgatory.produces.remove(id).expect("held");
            let answered = self.try_complete_produce(ctx, &mut op, false);
            assert!(answered, "a produce done in every partition is answered");
        }
        self.purgatory.scratch = done;
    }

    /// A held request's deadline passed: answer with what there is.
    pub(super) fn expire_delayed(&mut self, ctx: &mut Context<'_, WireMsg>, id: u64) {
        if let Some(op) = self.purgatory.fetches.remove(id) {
            self.answer_fetch(ctx, op.origin, op.replica_id, &op.partitions);
        }
        if let Some(mut op) = self.purgatory.produces.remove(id) {
            self.try_complete_produce(ctx, &mut op, true);
        }
    }
}
