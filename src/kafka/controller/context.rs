//! The active controller's cache of the cluster (ControllerContext): its own epoch and the
//! zkVersion of `/controller_epoch` it checks in every write, the registered brokers with
//! their broker epochs, the brokers shutting down, every partition's assignment and the
//! last leader/ISR it read or wrote.
//!
//! The cache is only ever a hint for whom to tell what: every leader or ISR change re-reads
//! the partition state from ZooKeeper before deciding (as PartitionStateMachine does), so a
//! stale entry costs an extra round trip, never a wrong write.
//!
//! May depend on: `kafka::msg`, `kafka::zkdata`.

use std::collections::{BTreeMap, BTreeSet};

use super::super::msg::{BrokerId, PartitionState, TopicPartition};
use super::super::zkdata::PartitionStateData;

/// A partition's leader, leader epoch and ISR as stored in its state znode
/// (LeaderIsrAndControllerEpoch), with the znode's data version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderIsr {
    pub leader: Option<BrokerId>,
    pub leader_epoch: u32,
    pub isr: Vec<BrokerId>,
    pub controller_epoch: u32,
    pub zk_version: i32,
}

impl LeaderIsr {
    pub fn from_znode(data: &PartitionStateData, zk_version: i32) -> Self {
        LeaderIsr {
            leader: data.leader(),
            leader_epoch: data.leader_epoch,
            isr: data.isr.clone(),
            controller_epoch: data.controller_epoch,
            zk_version,
        }
    }

    /// The znode content a controller of `controller_epoch` writes for this state.
    pub fn to_znode(&self, controller_epoch: u32) -> PartitionStateData {
        PartitionStateData::new(self.leader, self.leader_epoch, &self.isr, controller_epoch)
    }

    /// `LeaderAndIsr.newLeaderAndIsr`: every controller-made change bumps the leader epoch,
    /// an ISR-only change included (ZooKeeper mode), so brokers can order the updates.
    pub fn next(&self, leader: Option<BrokerId>, isr: Vec<BrokerId>) -> Self {
        LeaderIsr {
            leader,
            leader_epoch: self.leader_epoch + 1,
            isr,
            controller_epoch: self.controller_epoch,
            zk_version: self.zk_version,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ControllerContext {
    /// The controller epoch this controller won.
    pub epoch: u32,
    /// The data version of `/controller_epoch` after the win: every write checks it.
    pub epoch_zk_version: i32,
    /// Registered brokers (live or shutting down) and their broker epochs (czxid).
    pub brokers: BTreeMap<BrokerId, i64>,
    /// Brokers in controlled shutdown: still registered, no longer eligible as leaders.
    pub shutting_down: BTreeSet<BrokerId>,
    /// Assigned replicas of every partition, in preference order.
    pub assignment: BTreeMap<TopicPartition, Vec<BrokerId>>,
    /// Last known leader and ISR of every partition that has a state znode.
    pub leadership: BTreeMap<TopicPartition, LeaderIsr>,
}

impl ControllerContext {
    pub fn new(epoch: u32, epoch_zk_version: i32) -> Self {
        ControllerContext {
            epoch,
            epoch_zk_version,
            ..ControllerContext::default()
        }
    }

    /// `isReplicaOnline` without shutting-down brokers: may lead and stay in an ISR.
    pub fn is_live(&self, b: BrokerId) -> bool {
        self.brokers.contains_key(&b) && !self.shutting_down.contains(&b)
    }

    /// Registered at all (`liveOrShuttingDownBrokerIds`): may still receive requests.
    pub fn is_registered(&self, b: BrokerId) -> bool {
        self.brokers.contains_key(&b)
    }

    pub fn registered(&self) -> Vec<BrokerId> {
        self.brokers.keys().copied().collect()
    }

    pub fn broker_epoch(&self, b: BrokerId) -> Option<i64> {
        self.brokers.get(&b).copied()
    }

    pub fn replicas(&self, tp: &TopicPartition) -> &[BrokerId] {
        self.assignment.get(tp).map_or(&[], Vec::as_slice)
    }

    /// Partitions with a replica on `b`.
    pub fn partitions_on(&self, b: BrokerId) -> Vec<TopicPartition> {
        self.assignment
            .iter()
            .filter(|(_, ar)| ar.contains(&b))
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Partitions with a state whose leader may not lead (none, dead or shutting down):
    /// the ones `triggerOnlinePartitionStateChange` tries to bring online.
    pub fn offline_partitions(&self) -> Vec<TopicPartition> {
        self.leadership
            .iter()
            .filter(|(_, li)| !li.leader.is_some_and(|l| self.is_live(l)))
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Assigned partitions without a state znode yet (NewPartition).
    pub fn new_partitions(&self) -> Vec<TopicPartition> {
        self.assignment
            .keys()
            .filter(|tp| !self.leadership.contains_key(*tp))
            .cloned()
            .collect()
    }

    /// Partitions `b` leads whose replication factor is above one: what a broker in
    /// controlled shutdown still has to hand over.
    pub fn replicated_partitions_led_by(&self, b: BrokerId) -> Vec<TopicPartition> {
        self.leadership
            .iter()
            .filter(|(tp, li)| li.leader == Some(b) && self.replicas(tp).len() > 1)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The partition state as a controller request carries it.
    pub fn partition_state(&self, tp: &TopicPartition) -> Option<PartitionState> {
        let li = self.leadership.get(tp)?;
        Some(PartitionState {
            tp: tp.clone(),
            controller_epoch: li.controller_epoch,
            leader: li.leader,
            leader_epoch: li.leader_epoch,
            isr: li.isr.clone(),
            zk_version: li.zk_version,
            replicas: self.replicas(tp).to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ControllerContext {
        let mut c = ControllerContext::new(3, 2);
        c.brokers.insert(0, 10);
        c.brokers.insert(1, 11);
        c.shutting_down.insert(1);
        let tp = TopicPartition::new("t", 0);
        c.assignment.insert(tp.clone(), vec![0, 1, 2]);
        c.assignment.insert(TopicPartition::new("t", 1), vec![1, 2]);
        let li = LeaderIsr {
            leader: Some(1),
            leader_epoch: 4,
            isr: vec![1, 0],
            controller_epoch: 2,
            zk_version: 7,
        };
        c.leadership.insert(tp, li);
        c
    }

    #[test]
    fn shutting_down_brokers_are_registered_but_not_live() {
        let c = ctx();
        assert!(c.is_live(0) && !c.is_live(1) && !c.is_live(2));
        assert!(c.is_registered(1) && !c.is_registered(2));
        // Its leader is shutting down: the partition counts as offline.
        assert_eq!(c.offline_partitions(), vec![TopicPartition::new("t", 0)]);
        assert_eq!(c.new_partitions(), vec![TopicPartition::new("t", 1)]);
        assert_eq!(c.partitions_on(0), vec![TopicPartition::new("t", 0)]);
        assert_eq!(c.replicated_partitions_led_by(1).len(), 1);
    }

    #[test]
    fn a_new_leader_and_isr_bumps_the_leader_epoch_and_keeps_the_version() {
        let c = ctx();
        let li = &c.leadership[&TopicPartition::new("t", 0)];
        let n = li.next(Some(0), vec![0]);
        assert_eq!((n.leader_epoch, n.zk_version), (5, 7));
        let s = c.partition_state(&TopicPartition::new("t", 0)).unwrap();
        assert_eq!(
            (s.leader, s.zk_version, s.replicas),
            (Some(1), 7, vec![0, 1, 2])
        );
        assert_eq!(n.to_znode(3).controller_epoch, 3);
    }
}
