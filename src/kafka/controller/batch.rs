//! The requests one controller step sends (ControllerBrokerRequestBatch): LeaderAndIsr per
//! broker, UpdateMetadata to a set of brokers for a set of partitions, StopReplica per
//! broker. A step adds to the batch and [`RequestBatch::flush`] turns it into requests, in
//! Kafka's order (LeaderAndIsr, UpdateMetadata, StopReplica), to registered brokers only
//! (a request to a dead broker is dropped, as ControllerChannelManager does).
//!
//! UpdateMetadata's partitions are a delta: a broker keeps partitions a request does not
//! name, and replaces its live-broker list with the request's.
//!
//! May depend on: `kafka::msg`, `kafka::controller::context`.

use std::collections::{BTreeMap, BTreeSet};

use super::super::msg::{BrokerId, PartitionState, Request, StopReplicaPartition, TopicPartition};
use super::context::ControllerContext;

#[derive(Clone, Debug, Default)]
pub struct RequestBatch {
    leader_and_isr: BTreeMap<BrokerId, BTreeMap<TopicPartition, PartitionState>>,
    metadata_brokers: BTreeSet<BrokerId>,
    metadata_partitions: BTreeSet<TopicPartition>,
    stop_replica: BTreeMap<BrokerId, BTreeMap<TopicPartition, StopReplicaPartition>>,
}

impl RequestBatch {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.leader_and_isr.is_empty()
            && self.metadata_brokers.is_empty()
            && self.stop_replica.is_empty()
    }

    /// LeaderAndIsr with the partition's cached state to `brokers`; like Kafka, every
    /// partition told to its replicas is also told to every registered broker's metadata.
    pub fn add_leader_and_isr(
        &mut self,
        ctx: &ControllerContext,
        brokers: &[BrokerId],
        tp: &TopicPartition,
    ) {
        let Some(state) = ctx.partition_state(tp) else {
            return;
        };
        for &b in brokers {
            self.leader_and_isr
                .entry(b)
                .or_default()
                .insert(tp.clone(), state.clone());
        }
        self.add_update_metadata(&ctx.registered(), std::slice::from_ref(tp));
    }

    /// UpdateMetadata to `brokers` naming `tps` (none: only the live-broker list).
    pub fn add_update_metadata(&mut self, brokers: &[BrokerId], tps: &[TopicPartition]) {
        self.metadata_brokers.extend(brokers.iter().copied());
        self.metadata_partitions.extend(tps.iter().cloned());
    }

    pub fn add_stop_replica(&mut self, ctx: &ControllerContext, b: BrokerId, tp: &TopicPartition) {
        let leader_epoch = ctx.leadership.get(tp).map_or(0, |li| li.leader_epoch);
        let stop = StopReplicaPartition {
            tp: tp.clone(),
            leader_epoch,
            delete_partition: false,
        };
        self.stop_replica
            .entry(b)
            .or_default()
            .insert(tp.clone(), stop);
    }

    /// The batch as requests `(to, request)`, emptied.
    pub fn flush(&mut self, ctx: &ControllerContext, me: BrokerId) -> Vec<(BrokerId, Request)> {
        let batch = std::mem::take(self);
        let mut out = Vec::new();
        for (b, parts) in batch.leader_and_isr {
            let Some(broker_epoch) = ctx.broker_epoch(b) else {
                continue;
            };
            let partitions: Vec<PartitionState> = parts.into_values().collect();
            let live_leaders: BTreeSet<BrokerId> = partitions
                .iter()
                .filter_map(|p| p.leader)
                .filter(|&l| ctx.is_registered(l))
                .collect();
            let request = Request::LeaderAndIsr {
                controller_id: me,
                controller_epoch: ctx.epoch,
                broker_epoch,
                partitions,
                live_leaders: live_leaders.into_iter().collect(),
            };
            out.push((b, request));
        }
        let partitions: Vec<PartitionState> = batch
            .metadata_partitions
            .iter()
            .filter_map(|tp| ctx.partition_state(tp))
            .collect();
        for b in batch.metadata_brokers {
            let Some(broker_epoch) = ctx.broker_epoch(b) else {
                continue;
            };
            let request = Request::UpdateMetadata {
                controller_id: me,
                controller_epoch: ctx.epoch,
                broker_epoch,
                partitions: partitions.clone(),
                live_brokers: ctx.registered(),
            };
            out.push((b, request));
        }
        for (b, parts) in batch.stop_replica {
            let Some(broker_epoch) = ctx.broker_epoch(b) else {
                continue;
            };
            let request = Request::StopReplica {
                controller_id: me,
                controller_epoch: ctx.epoch,
                broker_epoch,
                partitions: parts.into_values().collect(),
            };
            out.push((b, request));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::context::LeaderIsr;
    use super::*;

    #[test]
    fn a_flush_orders_requests_and_drops_unregistered_brokers() {
        let mut ctx = ControllerContext::new(5, 1);
        ctx.brokers.insert(0, 100);
        ctx.brokers.insert(1, 101);
        let tp = TopicPartition::new("t", 0);
        ctx.assignment.insert(tp.clone(), vec![0, 1, 2]);
        let li = LeaderIsr {
            leader: Some(0),
            leader_epoch: 2,
            isr: vec![0, 1],
            controller_epoch: 5,
            zk_version: 3,
        };
        ctx.leadership.insert(tp.clone(), li);
        let mut b = RequestBatch::default();
        b.add_leader_and_isr(&ctx, &[1, 2], &tp);
        b.add_stop_replica(&ctx, 1, &tp);
        assert!(!b.is_empty());
        let out = b.flush(&ctx, 0);
        assert!(b.is_empty());
        let apis: Vec<(BrokerId, &str)> = out.iter().map(|(b, r)| (*b, r.api())).collect();
        // Broker 2 is not registered: nothing for it.
        assert_eq!(
            apis,
            vec![
                (1, "LeaderAndIsr"),
                (0, "UpdateMetadata"),
                (1, "UpdateMetadata"),
                (1, "StopReplica")
            ]
        );
        let Request::LeaderAndIsr {
            broker_epoch,
            controller_epoch,
            partitions,
            live_leaders,
            ..
        } = &out[0].1
        else {
            panic!()
        };
        assert_eq!((*broker_epoch, *controller_epoch), (101, 5));
        assert_eq!(
            (partitions[0].zk_version, partitions[0].leader_epoch),
            (3, 2)
        );
        assert_eq!(live_leaders, &vec![0]);
    }
}
