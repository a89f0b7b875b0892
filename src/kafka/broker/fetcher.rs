//! The replica fetchers (Kafka's `ReplicaFetcherManager` with one `ReplicaFetcherThread`
//! per leader broker): for every broker that leads partitions this broker follows, one
//! connection with at most one fetch in flight, covering every such partition. A response
//! is applied partition by partition (append, or truncate on a diverging epoch) and the
//! next fetch goes out at once; the leader holds it up to `replica.fetch.wait.max.ms` when
//! there is nothing new. A partition whose fetch failed waits `replica.fetch.backoff.ms`
//! (`delayPartitions`). A partition whose append made a flush due waits for the fsync,
//! since Kafka's fetcher thread flushes inside the append.
//!
//! Under the truncation bug modes a partition may first need a truncation step
//! ([`PendingTruncation`]): as `AbstractFetcherThread.doWork` did before 2.7 (`maybeTruncate`
//! then `maybeFetch`), the connection then carries an OffsetsForLeaderEpoch, or the
//! ListOffsets of `handleOffsetOutOfRange`, before the next fetch.

use std::collections::{BTreeMap, BTreeSet};

use super::net::{Channel, Dropped, SOCKET_TIMEOUT_NS};
use super::Broker;
use crate::kafka::msg::{
    BrokerId, ErrorCode, FetchPartition, ListOffsetsPartition, OffsetForLeaderPartition, Request,
    Response, TopicPartition,
};
use crate::kafka::replica::follower::{FetchOutcome, PendingTruncation};
use crate::kafka::replica::Role;
use crate::kafka::wire::WireMsg;
use crate::node::Context;

/// Records per partition per fetch (Kafka bounds bytes: `replica.fetch.max.bytes`).
pub const FETCH_MAX_RECORDS: u64 = 1000;

/// What one fetcher connection has in flight for its partitions.
#[derive(Clone, Debug)]
enum Sent {
    Fetch(Vec<FetchPartition>),
    /// KIP-101's truncation step (KAFKA-6361 mode).
    Epochs(Vec<OffsetForLeaderPartition>),
    /// `handleOffsetOutOfRange`'s question for the leader's LEO (pre-2.7 modes).
    Ends(Vec<ListOffsetsPartition>),
}

impl Sent {
    fn partitions(&self) -> Vec<TopicPartition> {
        match self {
            Sent::Fetch(ps) => ps.iter().map(|p| p.tp.clone()).collect(),
            Sent::Epochs(ps) => ps.iter().map(|p| p.tp.clone()).collect(),
            Sent::Ends(ps) => ps.iter().map(|p| p.tp.clone()).collect(),
        }
    }
}

/// The partitions of one leader, by what they need next.
#[derive(Clone, Debug, Default)]
struct Wanted {
    fetches: Vec<FetchPartition>,
    epochs: Vec<OffsetForLeaderPartition>,
    ends: Vec<ListOffsetsPartition>,
}

impl Wanted {
    /// The truncation steps go first, as `maybeTruncate` before `maybeFetch`.
    fn next(self) -> Option<Sent> {
        if !self.epochs.is_empty() {
            Some(Sent::Epochs(self.epochs))
        } else if !self.ends.is_empty() {
            Some(Sent::Ends(self.ends))
        } else if !self.fetches.is_empty() {
            Some(Sent::Fetch(self.fetches))
        } else {
            None
        }
    }
}

#[derive(Clone, Debug, Default)]
struct FetcherState {
    /// The request in flight: its correlation id and partitions.
    in_flight: Option<(u64, Sent)>,
}

/// The fetchers by leader, in leader order: a sorted vector, as a broker follows a few
/// leaders and every event looks at all of them.
#[derive(Clone, Debug, Default)]
struct ByLeader(Vec<(BrokerId, FetcherState)>);

impl ByLeader {
    fn find(&self, leader: BrokerId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&leader, |e| e.0)
    }
    fn get_mut(&mut self, leader: &BrokerId) -> Option<&mut FetcherState> {
        self.find(*leader).ok().map(|i| &mut self.0[i].1)
    }
    fn get_or_default(&mut self, leader: BrokerId) -> &mut FetcherState {
        let i = match self.find(leader) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (leader, FetcherState::default()));
                i
            }
        };
        &mut self.0[i].1
    }
    fn remove(&mut self, leader: &BrokerId) {
        if let Ok(i) = self.find(*leader) {
            self.0.remove(i);
        }
    }
    fn keys(&self) -> impl Iterator<Item = &BrokerId> {
        self.0.iter().map(|e| &e.0)
    }
    fn iter(&self) -> impl Iterator<Item = (&BrokerId, &FetcherState)> {
        self.0.iter().map(|e| (&e.0, &e.1))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Fetchers {
    by_leader: ByLeader,
    /// Partitions backing off after an error, until the given time.
    delayed: BTreeMap<TopicPartition, u64>,
    /// Partitions marked failed (`failedPartitions`): not fetched until a LeaderAndIsr
    /// gives them a role again (`addPartitions` clears the mark).
    failed: BTreeSet<TopicPartition>,
    /// Scratch space for the followed leaders (kept to spare an allocation per event).
    leaders: Vec<BrokerId>,
}

impl Fetchers {
    /// The partition's role changed: no backoff or failure carries over.
    pub fn forget(&mut self, tp: &TopicPartition) {
        self.delayed.remove(tp);
        self.failed.remove(tp);
    }
    /// Partitions the fetchers gave up on (for the view and tests).
    pub fn failed(&self) -> &BTreeSet<TopicPartition> {
        &self.failed
    }
    /// The leaders with a fetch in flight (for the view and tests).
    pub fn in_flight(&self) -> Vec<BrokerId> {
        let busy = self.by_leader.iter().filter(|(_, s)| s.in_flight.is_some());
        busy.map(|(l, _)| *l).collect()
    }
    /// A fetch's connection broke: its fetch is gone.
    pub fn on_dropped(&mut self, d: &Dropped) {
        if d.channel != Channel::Fetcher {
            return;
        }
        if let Some(s) = self.by_leader.get_mut(&d.peer) {
            if s.in_flight
                .as_ref()
                .is_some_and(|(c, _)| *c == d.correlation_id)
            {
                s.in_flight = None;
            }
        }
    }
}

impl Broker {
    /// The leaders of the partitions this broker follows, in order: one fetcher each. Kept
    /// sorted and free of repeats as it is built (a broker follows a few leaders): no sort
    /// per event.
    fn followed_leaders(&self, out: &mut Vec<BrokerId>) {
        out.clear();
        for r in self.replicas.values() {
            if let Role::Follower {
                leader: Some(leader),
            } = r.role()
            {
                if let Err(i) = out.binary_search(leader) {
                    out.insert(i, *leader);
                }
            }
        }
    }

    /// What the fetcher of `leader` should send now: its partitions this broker should
    /// fetch (or truncate), none yet when a flush blocks it.
    ///
    /// A fetcher whose last response made a flush due sends nothing until every such
    /// flush is done: Kafka's fetcher thread flushes inside the append
    /// (`log.flush.interval.messages`), so it builds its next fetch, for all of its
    /// partitions, only afterwards. Leaving just the flushing partition out instead sent a
    /// fetch without it that the leader held up to `replica.fetch.wait.max.ms` when the
    /// other partitions had nothing new: with a flush after every append the partition
    /// was fetched once per long poll and never caught up with the producers
    /// (kafka-power-loss-flushed seeds 40 and 177, scenarios/regressions/).
    fn wanted_from(&self, leader: BrokerId, now_ns: u64) -> Wanted {
        let mut out = Wanted::default();
        for (tp, r) in self.replicas.iter() {
            if !matches!(r.role(), Role::Follower { leader: Some(l) } if *l == leader) {
                continue;
            }
            if self.storage.sync_flush_running(tp) {
                return Wanted::default();
            }
            if self.fetchers.delayed.get(tp).is_some_and(|&t| t > now_ns)
                || self.fetchers.failed.contains(tp)
            {
                continue;
            }
            match r.pending_truncation() {
                Some(PendingTruncation::ByEpoch) => out.epochs.extend(r.epoch_request()),
                Some(PendingTruncation::OutOfRange) => out.ends.extend(r.leader_end_request()),
                None => out.fetches.extend(r.fetch_request(FETCH_MAX_RECORDS)),
            }
        }
        out
    }

    /// Sends a fetch to every leader without one in flight; closes the fetchers of brokers
    /// that lead nothing here any more (`shutdownIdleFetcherThreads`). The requests of a
    /// fetcher with one in flight are not even built: most events find every fetcher busy.
    pub(super) fn pump_fetchers(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if self.stopped {
            return;
        }
        let mut leaders = std::mem::take(&mut self.fetchers.leaders);
        // The followed leaders depend on the replicas' roles alone: with no replica handed
        // out for change since the last pump, the list kept from it still holds.
        if self.replicas.take_fetcher_marks() != 0 {
            self.followed_leaders(&mut leaders);
        }
        debug_assert!({
            let mut fresh = Vec::new();
            self.followed_leaders(&mut fresh);
            fresh == leaders
        });
        // Most events leave the set of followed leaders as it was: then no fetcher is idle.
        if !self.fetchers.by_leader.keys().eq(leaders.iter()) {
            let idle: Vec<BrokerId> = (self.fetchers.by_leader.keys())
                .filter(|l| leaders.binary_search(l).is_err())
                .copied()
                .collect();
            for leader in idle {
                self.fetchers.by_leader.remove(&leader);
                self.net.reset(ctx, leader, Channel::Fetcher);
            }
        }
        for &leader in &leaders {
            // Most events find the fetcher there and busy.
            let busy = (self.fetchers.by_leader.get_or_default(leader))
                .in_flight
                .is_some();
            if busy {
                continue;
            }
            let Some(sent) = self.wanted_from(leader, ctx.now()).next() else {
                continue;
            };
            let Some(&node) = self.setup.brokers.get(leader as usize) else {
                continue;
            };
            let max_wait_ms = self.setup.props.replica_fetch_wait_max_ms;
            let replica_id = Some(self.id);
            let (request, timeout) = match &sent {
                Sent::Fetch(ps) => (
                    Request::Fetch {
                        replica_id,
                        max_wait_ms,
                        partitions: ps.clone(),
                    },
                    max_wait_ms * 1_000_000 + SOCKET_TIMEOUT_NS,
                ),
                Sent::Epochs(ps) => (
                    Request::OffsetsForLeaderEpoch {
                        replica_id,
                        partitions: ps.clone(),
                    },
                    SOCKET_TIMEOUT_NS,
                ),
                Sent::Ends(ps) => (
                    Request::ListOffsets {
                        replica_id,
                        partitions: ps.clone(),
                    },
                    SOCKET_TIMEOUT_NS,
                ),
            };
            let corr = self
                .net
                .send(ctx, node, leader, Channel::Fetcher, request, timeout);
            let state = self.fetchers.by_leader.get_or_default(leader);
            state.in_flight = Some((corr, sent));
        }
        self.fetchers.leaders = leaders;
    }

    /// The leader answered a fetch (`processFetchRequest`) or a truncation step.
    pub(super) fn on_fetch_response(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        leader: BrokerId,
        corr: u64,
        resp: Response,
    ) {
        let Some(state) = self.fetchers.by_leader.get_mut(&leader) else {
            return;
        };
        let Some((c, sent)) = state.in_flight.take() else {
            return;
        };
        if c != corr {
            state.in_flight = Some((c, sent));
            return;
        }
        let backoff = ctx.now() + self.setup.props.replica_fetch_backoff_ms * 1_000_000;
        let outcomes: Vec<(TopicPartition, FetchOutcome)> = match (sent, resp) {
            (Sent::Fetch(sent), Response::Fetch { error, partitions }) => {
                if error != ErrorCode::None {
                    for p in &sent {
                        self.fetchers.delayed.insert(p.tp.clone(), backoff);
                    }
                    return;
                }
                self.apply_fetched(ctx, &sent, partitions)
            }
            (Sent::Epochs(_), Response::OffsetsForLeaderEpoch { partitions }) => (partitions
                .into_iter())
            .filter_map(|pr| {
                let r = self.replicas.get_mut(&pr.tp)?;
                Some((
                    pr.tp.clone(),
                    r.handle_legacy_epoch_response(ctx.disk(), &pr),
                ))
            })
            .collect(),
            (Sent::Ends(_), Response::ListOffsets { partitions }) => (partitions.into_iter())
                .filter_map(|pr| {
                    let r = self.replicas.get_mut(&pr.tp)?;
                    Some((pr.tp.clone(), r.handle_leader_end_offset(ctx.disk(), &pr)))
                })
                .collect(),
            (sent, _) => {
                for tp in sent.partitions() {
                    self.fetchers.delayed.insert(tp, backoff);
                }
                return;
            }
        };
        for (tp, outcome) in outcomes {
            match outcome {
                FetchOutcome::Error(_) => {
                    self.fetchers.delayed.insert(tp, backoff);
                }
                FetchOutcome::Failed(_) => {
                    self.fetchers.failed.insert(tp);
                }
                _ => {}
            }
        }
    }

    /// Applies a fetch response partition by partition.
    fn apply_fetched(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        sent: &[FetchPartition],
        partitions: Vec<crate::kafka::msg::FetchPartitionResponse>,
    ) -> Vec<(TopicPartition, FetchOutcome)> {
        let mut out = Vec::new();
        for pr in partitions {
            let Some(fp) = sent.iter().find(|p| p.tp == pr.tp) else {
                continue;
            };
            let Some(r) = self.replicas.get_mut(&pr.tp) else {
                continue;
            };
            let outcome = r.handle_fetch_response(ctx.disk(), fp, &pr);
            if let FetchOutcome::Appended { records } = outcome {
                if records > 0 {
                    self.storage.after_append(ctx, r, &self.setup.props);
                }
            }
            out.push((pr.tp, outcome));
        }
        out
    }
}
