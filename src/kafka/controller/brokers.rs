//! Broker membership (BrokerChange, onBrokerStartup, onBrokerFailure).
//!
//! The registered brokers are the children of `/brokers/ids` (read with a children watch,
//! re-armed on every read) and each one's epoch is its znode's czxid. A child that is gone
//! is a dead broker; a new child a started one; a child whose czxid grew re-registered
//! after a restart faster than the controller saw it go (a bounce: handled as a failure
//! and a start-up).
//!
//! Start-up: UpdateMetadata to the others (live brokers only) and to it (every partition),
//! LeaderAndIsr for its replicas, then new and offline partitions brought online.
//! Failure: offline partitions elected, then the dead replicas taken out of the ISRs (a
//! StopReplica to each, dropped when the broker is gone), and UpdateMetadata to everyone
//! when nothing needed an election.
//!
//! May depend on: `kafka::{msg, zkdata}`, `kafka::controller::*`, `zab::msg`, `zab::client`.

use std::collections::BTreeSet;

use super::super::config::BugMode;
use super::super::msg::BrokerId;
use super::super::zkdata;
use super::core::{Core, Flow, Key};
use super::leader_election::Change;
use super::load::{bring_online, online_replicas, Epochs};
use super::partition_ops::{StateUpdate, Targets};
use super::phase::{Phase, Step};
use crate::zab::client::ZkError;
use crate::zab::msg::{Op, OpResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerLoad {
    /// Fill the context (failover).
    Failover,
    /// Compare with the context and act on the differences (BrokerChange).
    Change,
}

#[derive(Clone, Debug)]
pub struct LoadBrokers {
    mode: BrokerLoad,
    listing: bool,
    outstanding: BTreeSet<BrokerId>,
    epochs: Epochs,
}

impl LoadBrokers {
    pub fn new(mode: BrokerLoad) -> Self {
        LoadBrokers {
            mode,
            listing: false,
            outstanding: BTreeSet::new(),
            epochs: Epochs::new(),
        }
    }

    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        let op = Op::GetChildren {
            path: zkdata::BROKER_IDS.into(),
            watch: true,
        };
        core.submit(Key::BrokerIds, op);
        self.listing = true;
        Flow::Wait
    }

    pub fn on_result(
        &mut self,
        core: &mut Core,
        key: Key,
        result: Result<OpResult, ZkError>,
    ) -> Flow<Phase> {
        match (key, result) {
            (Key::BrokerIds, r) => {
                self.listing = false;
                let names = match r {
                    Ok(OpResult::Children(names)) => names,
                    _ => Vec::new(),
                };
                for id in names.iter().filter_map(|n| n.parse::<BrokerId>().ok()) {
                    let op = Op::GetData {
                        path: zkdata::broker_path(id),
                        watch: false,
                    };
                    core.submit(Key::BrokerData(id), op);
                    self.outstanding.insert(id);
                }
            }
            (Key::BrokerData(id), r) => {
                self.outstanding.remove(&id);
                // Gone again since the listing: the children watch reports it.
                if let Ok(OpResult::Data { stat, .. }) = r {
                    self.epochs.insert(id, stat.czxid as i64);
                }
            }
            _ => {}
        }
        if self.listing || !self.outstanding.is_empty() {
            return Flow::Wait;
        }
        self.finish(core)
    }

    fn finish(&mut self, core: &mut Core) -> Flow<Phase> {
        let epochs = std::mem::take(&mut self.epochs);
        if self.mode == BrokerLoad::Failover {
            for &b in epochs.keys() {
                core.channel.add_broker(b);
            }
            core.ctx_mut().brokers = epochs;
            return Flow::Done;
        }
        let known = core.ctx().brokers.clone();
        let started: Vec<(BrokerId, i64)> = epochs
            .iter()
            .filter(|(b, _)| !known.contains_key(b))
            .map(|(&b, &e)| (b, e))
            .collect();
        // bug-mode switch point: KAFKA-2729 (with KAFKA-1120): before KIP-380 (2.2) there
        // was no broker epoch: the BrokerChange handler compared sets of ids, so a broker
        // that left and re-registered while the event waited in the queue behind a slow
        // one was not seen as bounced. It got no LeaderAndIsr carrying the states' current
        // zkVersions, and a leader whose own ISR write was lost with its old session went
        // on failing its conditional ISR writes.
        let pre_kip380 = core.setup.props.bug(BugMode::Kafka2729);
        let bounced: Vec<(BrokerId, i64)> = epochs
            .iter()
            .filter(|(b, e)| !pre_kip380 && known.get(b).is_some_and(|old| *e > old))
            .map(|(&b, &e)| (b, e))
            .collect();
        let dead: Vec<BrokerId> = known
            .keys()
            .copied()
            .filter(|b| !epochs.contains_key(b))
            .collect();
        let mut next = Vec::new();
        if !started.is_empty() {
            next.extend(startup_phases(core, started));
        }
        if !bounced.is_empty() {
            next.push(Phase::Step(Step::BrokerFailure(
                bounced.iter().map(|b| b.0).collect(),
            )));
            next.extend(startup_phases(core, bounced));
        }
        if !dead.is_empty() {
            next.push(Phase::Step(Step::BrokerFailure(dead)));
        }
        Flow::Then(next)
    }
}

fn startup_phases(core: &Core, brokers: Vec<(BrokerId, i64)>) -> Vec<Phase> {
    let mut v = vec![Phase::Step(Step::BrokerStartup(brokers))];
    v.extend(bring_online(core));
    v
}

/// onBrokerStartup, up to the elections (the phases after it in the list).
pub fn on_startup(core: &mut Core, brokers: &[(BrokerId, i64)]) -> Flow<Phase> {
    let new: Vec<BrokerId> = brokers.iter().map(|b| b.0).collect();
    for &(b, epoch) in brokers {
        core.ctx_mut().brokers.insert(b, epoch);
        core.ctx_mut().shutting_down.remove(&b);
        core.channel.add_broker(b);
    }
    let ctx = core.ctx();
    let existing: Vec<BrokerId> = ctx
        .registered()
        .into_iter()
        .filter(|b| !new.contains(b))
        .collect();
    let with_state: Vec<_> = ctx.leadership.keys().cloned().collect();
    // Two requests: the others need only the new live-broker list, the new ones every
    // partition (two batches, or both would get both).
    core.batch.add_update_metadata(&existing, &[]);
    core.flush();
    core.batch.add_update_metadata(&new, &with_state);
    core.flush();
    online_replicas(core, &new);
    Flow::Done
}

/// onBrokerFailure: forget the brokers, then elect and shrink ISRs.
pub fn on_failure(core: &mut Core, brokers: &[BrokerId]) -> Flow<Phase> {
    for &b in brokers {
        let ctx = core.ctx_mut();
        ctx.brokers.remove(&b);
        ctx.shutting_down.remove(&b);
        core.channel.remove_broker(b);
    }
    let unclean = core.setup.props.unclean_leader_election_enable;
    let without_leader = !core.ctx().offline_partitions().is_empty();
    let mut next = vec![Phase::Update(StateUpdate::new(
        Change::Offline { unclean },
        Targets::Offline,
    ))];
    for &b in brokers {
        let change = Change::RemoveReplica(b);
        next.push(Phase::Update(StateUpdate::new(
            change,
            Targets::OnBroker(b),
        )));
    }
    if !without_leader {
        // Nobody was elected, so no LeaderAndIsr told the others of the death.
        next.push(Phase::Step(Step::UpdateMetadata(Vec::new())));
    }
    Flow::Then(next)
}
