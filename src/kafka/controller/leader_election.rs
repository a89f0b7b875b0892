//! What a partition-state change decides, as pure functions of the freshly read state
//! (PartitionLeaderElectionAlgorithms, and ReplicaStateMachine's ISR removal of an offline
//! replica). No I/O: [`super::partition_ops`] reads, calls these, and writes.
//!
//! May depend on: `kafka::msg`, `kafka::controller::context`.

use super::super::msg::BrokerId;
use super::context::{ControllerContext, LeaderIsr};

/// Why a partition's state is being rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The leader is gone (or there never was one since a failover): elect from the live ISR
    /// in AR order, else from any live replica when unclean election is enabled.
    Offline { unclean: bool },
    /// The leader is shutting down: elect the first live ISR member in AR order that is not
    /// shutting down, and drop shutting-down brokers from the ISR.
    ControlledShutdown,
    /// `replica` went offline (dead broker, or a follower in controlled shutdown): take it
    /// out of the ISR, and out of the leadership if it led.
    RemoveReplica(BrokerId),
}

/// The decision for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write this state (epoch already bumped) and send LeaderAndIsr to `recipients`.
    Write {
        state: LeaderIsr,
        recipients: Vec<BrokerId>,
    },
    /// Nothing to change (the fresh state already satisfies the change).
    Unchanged,
    /// No legal leader (the partition stays offline until a replica returns).
    NoLeader,
}

/// `offlinePartitionLeaderElection`: first replica in AR order that is live and in the ISR;
/// failing that, with unclean election, first live replica in AR order (whose ISR becomes
/// itself alone: the others may hold records it lacks).
pub fn offline_leader(
    ar: &[BrokerId],
    isr: &[BrokerId],
    live: impl Fn(BrokerId) -> bool,
    unclean: bool,
) -> Option<(BrokerId, Vec<BrokerId>)> {
    if let Some(&l) = ar.iter().find(|&&b| live(b) && isr.contains(&b)) {
        let new_isr = isr.iter().copied().filter(|&b| live(b)).collect();
        return Some((l, new_isr));
    }
    if unclean {
        if let Some(&l) = ar.iter().find(|&&b| live(b)) {
            return Some((l, vec![l]));
        }
    }
    None
}

/// `controlledShutdownPartitionLeaderElection`.
pub fn controlled_shutdown_leader(
    ar: &[BrokerId],
    isr: &[BrokerId],
    registered: impl Fn(BrokerId) -> bool,
    shutting_down: impl Fn(BrokerId) -> bool,
) -> Option<(BrokerId, Vec<BrokerId>)> {
    let leader = *ar
        .iter()
        .find(|&&b| registered(b) && isr.contains(&b) && !shutting_down(b))?;
    let new_isr = isr.iter().copied().filter(|&b| !shutting_down(b)).collect();
    Some((leader, new_isr))
}

/// ReplicaStateMachine's `removeReplicasFromIsr` for one replica: None when it is not in
/// the ISR. An ISR of one is kept as it is, so that a clean election waits for exactly that
/// replica (the "last replica standing" of reference B.3).
pub fn without_replica(
    leader: Option<BrokerId>,
    isr: &[BrokerId],
    replica: BrokerId,
) -> Option<(Option<BrokerId>, Vec<BrokerId>)> {
    if !isr.contains(&replica) {
        return None;
    }
    let new_leader = if leader == Some(replica) {
        None
    } else {
        leader
    };
    let new_isr = if isr.len() == 1 {
        isr.to_vec()
    } else {
        isr.iter().copied().filter(|&b| b != replica).collect()
    };
    Some((new_leader, new_isr))
}

/// Decides `change` for a partition with assignment `ar` whose fresh state is `cur`.
pub fn decide(
    change: &Change,
    ar: &[BrokerId],
    cur: &LeaderIsr,
    ctx: &ControllerContext,
) -> Decision {
    let live = |b| ctx.is_live(b);
    let registered = |b| ctx.is_registered(b);
    let live_replicas =
        |f: &dyn Fn(BrokerId) -> bool| ar.iter().copied().filter(|&b| f(b)).collect::<Vec<_>>();
    match change {
        Change::Offline { unclean } => {
            // Another event brought it online since it was found offline (or our own write
            // whose answer was lost applied): electing again would only bump the epoch.
            if cur.leader.is_some_and(live) {
                return Decision::Unchanged;
            }
            match offline_leader(ar, &cur.isr, live, *unclean) {
                Some((l, isr)) => Decision::Write {
                    state: cur.next(Some(l), isr),
                    recipients: live_replicas(&live),
                },
                None => Decision::NoLeader,
            }
        }
        Change::ControlledShutdown => {
            let sd = |b| ctx.shutting_down.contains(&b);
            if !cur.leader.is_some_and(sd) {
                return Decision::Unchanged;
            }
            match controlled_shutdown_leader(ar, &cur.isr, registered, sd) {
                Some((l, isr)) => Decision::Write {
                    state: cur.next(Some(l), isr),
                    recipients: live_replicas(&registered),
                },
                None => Decision::NoLeader,
            }
        }
        Change::RemoveReplica(r) => match without_replica(cur.leader, &cur.isr, *r) {
            Some((l, isr)) => Decision::Write {
                state: cur.next(l, isr),
                recipients: ar.iter().copied().filter(|b| b != r).collect(),
            },
            None => Decision::Unchanged,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_election_takes_the_first_live_isr_member_in_assignment_order() {
        let live = |b| b != 1;
        // AR order decides, not ISR order.
        assert_eq!(
            offline_leader(&[1, 2, 0], &[0, 1, 2], live, false),
            Some((2, vec![0, 2]))
        );
        // No live ISR member: offline unless unclean, then any live replica, ISR alone.
        assert_eq!(offline_leader(&[1, 2, 0], &[1], live, false), None);
        assert_eq!(
            offline_leader(&[1, 2, 0], &[1], live, true),
            Some((2, vec![2]))
        );
        assert_eq!(offline_leader(&[1], &[1], live, true), None);
    }

    #[test]
    fn controlled_shutdown_skips_shutting_down_brokers_and_drops_them_from_the_isr() {
        let reg = |b| b != 3;
        let sd = |b| b == 0;
        assert_eq!(
            controlled_shutdown_leader(&[0, 3, 1, 2], &[0, 3, 1, 2], reg, sd),
            Some((1, vec![3, 1, 2]))
        );
        assert_eq!(controlled_shutdown_leader(&[0, 1], &[0], reg, sd), None);
    }

    #[test]
    fn removing_a_replica_keeps_a_lone_isr_and_clears_its_leadership() {
        assert_eq!(
            without_replica(Some(1), &[1, 2], 2),
            Some((Some(1), vec![1]))
        );
        assert_eq!(without_replica(Some(1), &[1, 2], 1), Some((None, vec![2])));
        assert_eq!(without_replica(Some(1), &[1], 1), Some((None, vec![1])));
        assert_eq!(without_replica(Some(1), &[1], 2), None);
    }

    #[test]
    fn decisions_bump_the_epoch_and_name_the_recipients() {
        let mut ctx = ControllerContext::new(1, 0);
        ctx.brokers.insert(0, 5);
        ctx.brokers.insert(2, 6);
        let cur = LeaderIsr {
            leader: Some(1),
            leader_epoch: 3,
            isr: vec![1, 2],
            controller_epoch: 1,
            zk_version: 4,
        };
        let d = decide(&Change::Offline { unclean: false }, &[0, 1, 2], &cur, &ctx);
        let Decision::Write { state, recipients } = d else {
            panic!("{d:?}")
        };
        assert_eq!((state.leader, state.leader_epoch), (Some(2), 4));
        assert_eq!((state.isr, recipients), (vec![2], vec![0, 2]));
        let d = decide(&Change::RemoveReplica(0), &[0, 1, 2], &cur, &ctx);
        assert_eq!(d, Decision::Unchanged);
        let live_leader = LeaderIsr {
            leader: Some(2),
            ..cur
        };
        let d = decide(
            &Change::Offline { unclean: true },
            &[0, 1, 2],
            &live_leader,
            &ctx,
        );
        assert_eq!(d, Decision::Unchanged);
    }
}
