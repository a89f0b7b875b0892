//! The controller's side of the broker: the controller requests it serves (LeaderAndIsr,
//! UpdateMetadata, StopReplica: `ReplicaManager.becomeLeaderOrFollower`,
//! `maybeUpdateMetadataCache`, `stopReplicas`), its metadata cache, and the hosting of the
//! [`Controller`](crate::kafka::controller::Controller): carrying out what it asks
//! (ZooKeeper operations on the broker's session, requests to brokers, the replies to
//! ControlledShutdown) and feeding it the answers.
//!
//! Fencing: a request whose broker epoch is older than this broker's registration is
//! answered STALE_BROKER_EPOCH (KIP-380's `isBrokerEpochStale`; a newer one is a race the
//! controller won and is accepted, as in Kafka); then the controller epoch passes the
//! broker's [`ControllerEpochFence`]; then each partition state must carry a newer leader
//! epoch than the replica's.

use std::collections::BTreeMap;

use super::net::{Channel, SOCKET_TIMEOUT_NS};
use super::storage;
use super::{Broker, Origin};
use crate::kafka::config::BugMode;
use crate::kafka::controller::{Controller, ControllerOut};
use crate::kafka::msg::{
    BrokerId, ErrorCode, PartitionState, Request, Response, StopReplicaPartition, TopicPartition,
};
use crate::kafka::partition_log::PartitionLog;
use crate::kafka::replica::Replica;
use crate::kafka::wire::WireMsg;
use crate::node::Context;

/// What the broker knows of the cluster from UpdateMetadata (Kafka's `MetadataCache`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataCache {
    pub controller_id: Option<BrokerId>,
    pub live_brokers: Vec<BrokerId>,
    pub partitions: BTreeMap<TopicPartition, PartitionState>,
}

impl Broker {
    /// Serves a LeaderAndIsr, UpdateMetadata or StopReplica request.
    pub(super) fn handle_controller_request(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        request: Request,
    ) -> Response {
        let fenced = self.fence_controller_request(&request);
        match request {
            Request::LeaderAndIsr { partitions, .. } => {
                if let Err(error) = fenced {
                    return Response::LeaderAndIsr {
                        error,
                        partitions: Vec::new(),
                    };
                }
                let partitions = (partitions.iter())
                    .map(|s| (s.tp.clone(), self.become_leader_or_follower(ctx, s)))
                    .collect();
                Response::LeaderAndIsr {
                    error: ErrorCode::None,
                    partitions,
                }
            }
            Request::UpdateMetadata {
                controller_id,
                partitions,
                live_brokers,
                ..
            } => {
                if let Err(error) = fenced {
                    return Response::UpdateMetadata { error };
                }
                let cache = &mut self.metadata;
                cache.controller_id = Some(controller_id);
                cache.live_brokers = live_brokers;
                for s in partitions {
                    cache.partitions.insert(s.tp.clone(), s);
                }
                Response::UpdateMetadata {
                    error: ErrorCode::None,
                }
            }
            Request::StopReplica { partitions, .. } => {
                if let Err(error) = fenced {
                    return Response::StopReplica {
                        error,
                        partitions: Vec::new(),
                    };
                }
                let partitions = (partitions.iter())
                    .map(|p| (p.tp.clone(), self.stop_replica(ctx, p)))
                    .collect();
                Response::StopReplica {
                    error: ErrorCode::None,
                    partitions,
                }
            }
            other => unreachable!("not a controller request: {}", other.api()),
        }
    }

    fn fence_controller_request(&mut self, request: &Request) -> Result<(), ErrorCode> {
        let (Request::LeaderAndIsr { broker_epoch, .. }
        | Request::UpdateMetadata { broker_epoch, .. }
        | Request::StopReplica { broker_epoch, .. }) = request
        else {
            return Ok(());
        };
        // bug-mode switch point: KAFKA-2729: before KIP-380 requests carried no broker
        // epoch, so a request meant for an earlier registration was processed as well.
        let pre_kip380 = self.setup.props.bug(BugMode::Kafka2729);
        if !pre_kip380 && *broker_epoch < self.fence_broker_epoch {
            return Err(ErrorCode::StaleBrokerEpoch);
        }
        let epoch = request.controller_epoch().expect("a controller request");
        self.fence.admit(epoch)
    }

    /// One partition of a LeaderAndIsr: create the replica if absent (an empty log), then
    /// make it leader or follower if the leader epoch is newer.
    fn become_leader_or_follower(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        s: &PartitionState,
    ) -> ErrorCode {
        if !s.replicas.contains(&self.id) {
            return ErrorCode::UnknownTopicOrPartition;
        }
        let leading = s.leader == Some(self.id);
        if leading && !s.isr.contains(&self.id) {
            // A controller never elects a leader outside the ISR it writes.
            return ErrorCode::NotLeaderOrFollower;
        }
        let props = &self.setup.props;
        let me = self.id;
        let r = self.replicas.get_or_insert_with(&s.tp, || {
            let log = PartitionLog::new(&s.tp.dir(), storage::log_config(props));
            Replica::new(s.tp.clone(), me, log, 0, &props.bug_modes)
        });
        let now = ctx.now();
        let dead_leader = s
            .leader
            .is_some_and(|l| !self.metadata.live_brokers.contains(&l));
        let result = if leading {
            r.become_leader(ctx.disk(), s, now)
        } else if dead_leader && r.legacy_fetch() {
            // bug-mode switch point (the truncation modes): `makeFollowers` before 2.7 left
            // a partition whose leader the metadata cache did not list as alive untouched
            // (no new epoch, no truncation) until a LeaderAndIsr naming a live leader.
            Ok(())
        } else {
            r.become_follower(ctx.disk(), s)
        };
        match result {
            Ok(()) => {
                // A new role: the fetcher's backoff for the partition no longer applies.
                self.fetchers.forget(&s.tp);
                ErrorCode::None
            }
            Err(e) => e,
        }
    }

    /// One partition of a StopReplica (KIP-570: an older leader epoch is fenced).
    fn stop_replica(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        p: &StopReplicaPartition,
    ) -> ErrorCode {
        let Some(r) = self.replicas.get_mut(&p.tp) else {
            return ErrorCode::None;
        };
        if !p.delete_partition && r.leader_epoch().is_some_and(|e| p.leader_epoch < e) {
            return ErrorCode::FencedLeaderEpoch;
        }
        r.stop();
        self.fetchers.forget(&p.tp);
        if p.delete_partition {
            self.replicas.remove(&p.tp);
            self.storage.forget(&p.tp);
            storage::delete_dir(ctx.disk(), &p.tp);
        }
        ErrorCode::None
    }

    /// ControlledShutdown arriving at this broker: the controller's if it is active here.
    pub(super) fn handle_controlled_shutdown(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        origin: Origin,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) {
        if self.controller.active_epoch().is_none() {
            let resp = Response::ControlledShutdown {
                error: ErrorCode::NotController,
                remaining: Vec::new(),
            };
            return self.respond(ctx, origin, resp);
        }
        self.next_token += 1;
        let token = self.next_token;
        self.tokens.insert(token, origin);
        let now = ctx.now();
        self.with_controller(ctx, |c| {
            c.on_controlled_shutdown(token, broker_id, broker_epoch, now)
        });
    }

    /// Calls the controller and carries out what it asks. A controller that resigned or
    /// took office drops the old controller's connections and unanswered shutdowns (Kafka
    /// shuts its `ControllerChannelManager` down on resignation).
    pub(super) fn with_controller(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        f: impl FnOnce(&mut Controller) -> Vec<ControllerOut>,
    ) {
        let before = self.controller.active_epoch();
        let outs = f(&mut self.controller);
        if self.controller.active_epoch() != before {
            for peer in self.net.peers(Channel::Controller) {
                self.net.reset(ctx, peer, Channel::Controller);
            }
            self.inbox.retain(|(o, _)| *o != Origin::LocalController);
            for (_, origin) in std::mem::take(&mut self.tokens) {
                let resp = Response::ControlledShutdown {
                    error: ErrorCode::NotController,
                    remaining: Vec::new(),
                };
                self.respond(ctx, origin, resp);
            }
        }
        for out in outs {
            self.run_controller_out(ctx, out);
        }
    }

    fn run_controller_out(&mut self, ctx: &mut Context<'_, WireMsg>, out: ControllerOut) {
        match out {
            ControllerOut::Zk { tag, op } => {
                self.zk_submit(ctx, op, super::zk::ZkPurpose::Controller(tag));
            }
            // To itself: served at once, without the network; the answer reaches the
            // controller through the inbox after this call.
            ControllerOut::Send { to, request } if to == self.id => {
                self.handle_request(ctx, Origin::LocalController, request);
            }
            ControllerOut::Send { to, request } => {
                let Some(&node) = self.setup.brokers.get(to as usize) else {
                    return;
                };
                self.net.send(
                    ctx,
                    node,
                    to,
                    Channel::Controller,
                    request,
                    SOCKET_TIMEOUT_NS,
                );
            }
            ControllerOut::Reply { token, response } => {
                if let Some(origin) = self.tokens.remove(&token) {
                    self.respond(ctx, origin, response);
                }
            }
        }
    }
}
