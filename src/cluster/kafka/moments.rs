//! The Kafka protocol moments the nemesis can aim at ("moment roles": a fault that names one
//! waits for a candidate, see `scenario::schedule::Trigger`), read from the brokers' views:
//! - `@controller-electing`: the active controller while a partition-state read or write of
//!   its event waits on ZooKeeper, i.e. in the middle of a leader or ISR change (handling a
//!   broker's death, a controlled shutdown, a failover). A session lost there makes the
//!   KAFKA-3083 zombie of pre-2.2 controllers.
//! - `@rejoining`: a live follower that is not in the ISR of its partition's leader while that
//!   leader has just changed (its HW is still below the start offset of its epoch): a replica
//!   catching up across a leader change, the moment of KAFKA-7128.
//! - `@new-leader`: a partition's leader that has appended in its epoch while its HW is still
//!   below the start of that epoch: nothing of its epoch is committed, its HW still lags the
//!   previous leader's, and a follower that has not fetched since holds nothing of its epoch.
//!   Taking it down now makes a fast second leader change (KAFKA-6361's moment: the next
//!   leader may know neither this epoch nor, before its first append, its own).
//! - `@non-controller` (a role, not a moment, resolved here from the same views): a running
//!   broker other than the active controller, whose controlled shutdown the controller
//!   handles (the nemesis stops one while it cuts the controller off: KAFKA-6082).
//!
//! Depends on: kafka (broker views, replicas), sim.

use std::collections::BTreeSet;

use super::{KafkaHost, KafkaNode, KafkaSystem};
use crate::kafka::replica::Role;
use crate::node::NodeId;
use crate::scenario::kafka::{NEW_LEADER_ROLE, NON_CONTROLLER_ROLE};
use crate::sim::Sim;

impl KafkaSystem {
    /// Candidates for a moment role; None if `role` is not one.
    pub(super) fn resolve_moment(&self, role: &str, sim: &Sim<KafkaNode>) -> Option<Vec<NodeId>> {
        match role {
            "@controller-electing" => Some(
                self.controllers(sim)
                    .into_iter()
                    .filter(|id| {
                        sim.node(*id)
                            .and_then(|n| n.broker())
                            .is_some_and(|b| b.view().controller_changing_state)
                    })
                    .collect(),
            ),
            "@rejoining" => Some(self.rejoining(sim)),
            NEW_LEADER_ROLE => Some(self.new_leaders(sim)),
            NON_CONTROLLER_ROLE => {
                let controllers = self.controllers(sim);
                Some(
                    self.live_brokers(sim)
                        .map(|(id, _)| id)
                        .filter(|id| !controllers.contains(id))
                        .collect(),
                )
            }
            _ => None,
        }
    }

    /// Live followers outside the ISR of a leader that has not yet committed its epoch's
    /// start (each partition's leader is the live one with the highest leader epoch).
    fn rejoining(&self, sim: &Sim<KafkaNode>) -> Vec<NodeId> {
        let mut out = BTreeSet::new();
        for (lid, leader) in self.live_brokers(sim) {
            for (tp, r) in leader.view().replicas.iter() {
                let Some(state) = r.leader_state() else {
                    continue;
                };
                if r.high_watermark() >= state.epoch_start_offset {
                    continue;
                }
                // A deposed leader that does not know yet is not the partition's leader.
                if !self.partition_leaders(sim, tp).contains(&lid) {
                    continue;
                }
                let isr = state.isr.maximal();
                for (id, b) in self.live_brokers(sim) {
                    let following = b.view().replicas.get(tp).is_some_and(|f| {
                        matches!(f.role(), Role::Follower { leader: Some(l) } if *l == leader.id())
                    });
                    if following && !isr.contains(&b.id()) {
                        out.insert(id);
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// Live partition leaders (the live one with the highest leader epoch) that have
    /// appended in their epoch with nothing of it committed yet.
    fn new_leaders(&self, sim: &Sim<KafkaNode>) -> Vec<NodeId> {
        let mut out = BTreeSet::new();
        for (lid, leader) in self.live_brokers(sim) {
            for (tp, r) in leader.view().replicas.iter() {
                let Some(state) = r.leader_state() else {
                    continue;
                };
                let start = state.epoch_start_offset;
                if r.high_watermark() >= start || r.log_end_offset() <= start {
                    continue;
                }
                if self.partition_leaders(sim, tp).contains(&lid) {
                    out.insert(lid);
                }
            }
        }
        out.into_iter().collect()
    }
}
