//! Partition-state writes (PartitionStateMachine and the ISR side of ReplicaStateMachine).
//!
//! [`StateUpdate`]: for each target partition, read its state from ZooKeeper, decide the
//! change on that fresh state ([`leader_election::decide`]), write it conditionally on the
//! version read, inside a multi that checks `/controller_epoch` (`updateLeaderAndIsr`).
//! BadVersion on the state (someone wrote it since the read: a leader's ISR change):
//! read again and decide again. The epoch check failing: resign. A state last written by a
//! newer controller epoch: leave it (this controller is a zombie). Each written state goes
//! to its recipients in LeaderAndIsr, and to everyone in UpdateMetadata.
//!
//! [`CreatePartitions`]: new partitions' states (`initializeLeaderAndIsrForPartitions`):
//! leader the first live replica in AR, ISR the live replicas, leader epoch 0, created
//! (with the partition paths above them) in epoch-checked multis.
//!
//! [`leader_election::decide`]: super::leader_election::decide
//!
//! May depend on: `kafka::{msg, zkdata}`, `kafka::controller::*`, `zab::msg`, `zab::client`.

use std::collections::{BTreeMap, BTreeSet};

use super::super::msg::{BrokerId, TopicPartition};
use super::super::zkdata::{self, PartitionStateData};
use super::context::{ControllerContext, LeaderIsr};
use super::core::{classify, written_stat, Core, Flow, Key, WriteErr};
use super::leader_election::{decide, Change, Decision};
use super::load::read_state;
use super::phase::Phase;
use crate::zab::client::ZkError;
use crate::zab::msg::{ErrCode, Op, OpResult};

/// Which partitions a phase acts on, resolved when the phase starts (the context may have
/// changed since the phase was planned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Every assigned partition.
    All,
    /// Partitions whose leader cannot lead (`triggerOnlinePartitionStateChange`).
    Offline,
    /// Partitions with a replica on this broker and a known state.
    OnBroker(BrokerId),
    List(Vec<TopicPartition>),
}

impl Targets {
    pub fn resolve(&self, ctx: &ControllerContext) -> Vec<TopicPartition> {
        match self {
            Targets::All => ctx.assignment.keys().cloned().collect(),
            Targets::Offline => ctx.offline_partitions(),
            Targets::OnBroker(b) => ctx
                .partitions_on(*b)
                .into_iter()
                .filter(|tp| ctx.leadership.contains_key(tp))
                .collect(),
            Targets::List(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct StateUpdate {
    change: Change,
    targets: Targets,
    /// Partitions with a read or a write in flight.
    outstanding: BTreeSet<TopicPartition>,
    /// The state being written and who to tell once it is.
    writing: BTreeMap<TopicPartition, (LeaderIsr, Vec<BrokerId>)>,
    /// Writes that failed on the version, being re-read: if the re-read finds exactly the
    /// state written by this controller, the write had applied (its answer was lost and its
    /// retry found its own version), and it only remains to tell the replicas.
    retrying: BTreeMap<TopicPartition, (LeaderIsr, Vec<BrokerId>)>,
}

impl StateUpdate {
    pub fn new(change: Change, targets: Targets) -> Self {
        StateUpdate {
            change,
            targets,
            outstanding: BTreeSet::new(),
            writing: BTreeMap::new(),
            retrying: BTreeMap::new(),
        }
    }

    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        let tps = self.targets.resolve(core.ctx());
        for tp in tps {
            if let Change::RemoveReplica(b) = self.change {
                // OfflineReplica: the replica stops fetching (dropped if b is gone).
                let ctx = core.ctx.as_ref().expect("active");
                core.batch.add_stop_replica(ctx, b, &tp);
            }
            read_state(core, &tp);
            self.outstanding.insert(tp);
        }
        self.done(core)
    }

    pub fn on_result(
        &mut self,
        core: &mut Core,
        key: Key,
        op: &Op,
        result: Result<OpResult, ZkError>,
    ) -> Flow<Phase> {
        match key {
            Key::StateRead(tp) => self.on_read(core, tp, &result),
            Key::StateWrite(tp) => match result {
                Ok(r) => self.on_written(core, tp, &r),
                Err(e) => match classify(op, &e) {
                    WriteErr::EpochMoved => return Flow::Resign,
                    // The state moved since the read: read it again and decide again.
                    WriteErr::Op(ErrCode::BadVersion) => {
                        if let Some(w) = self.writing.remove(&tp) {
                            self.retrying.insert(tp.clone(), w);
                        }
                        read_state(core, &tp);
                    }
                    _ => {
                        self.writing.remove(&tp);
                        self.outstanding.remove(&tp);
                    }
                },
            },
            _ => {}
        }
        self.done(core)
    }

    fn on_read(&mut self, core: &mut Core, tp: TopicPartition, r: &Result<OpResult, ZkError>) {
        let Some(cur) = fresh_state(core, r) else {
            self.outstanding.remove(&tp);
            return;
        };
        let ctx = core.ctx();
        if cur.controller_epoch > ctx.epoch {
            // Written by a newer controller: this one lost its election and does not know
            // yet. Leave the partition to the new one.
            self.outstanding.remove(&tp);
            return;
        }
        if let Some((intended, recipients)) = self.retrying.remove(&tp) {
            let ours = cur.controller_epoch == ctx.epoch
                && (cur.leader, cur.leader_epoch, &cur.isr)
                    == (intended.leader, intended.leader_epoch, &intended.isr);
            if ours {
                self.outstanding.remove(&tp);
                core.ctx_mut().leadership.insert(tp.clone(), cur);
                let ctx = core.ctx.as_ref().expect("active");
                core.batch.add_leader_and_isr(ctx, &recipients, &tp);
                return;
            }
        }
        let decision = decide(&self.change, ctx.replicas(&tp), &cur, ctx);
        core.ctx_mut().leadership.insert(tp.clone(), cur.clone());
        let Decision::Write { state, recipients } = decision else {
            self.outstanding.remove(&tp);
            return;
        };
        let epoch = core.ctx().epoch;
        // bug-mode switch point: KAFKA-2729: this write moves the zkVersion a leader has
        // cached; the LeaderAndIsr below is its only way to learn the new one (a leader that
        // misses it fails every conditional ISR write until it restarts).
        let set = Op::SetData {
            path: zkdata::partition_state_path(&tp),
            data: zkdata::encode(&state.to_znode(epoch)),
            version: cur.zk_version,
        };
        let op = core.epoch_checked(set);
        core.submit(Key::StateWrite(tp.clone()), op);
        self.writing.insert(tp, (state, recipients));
    }

    fn on_written(&mut self, core: &mut Core, tp: TopicPartition, r: &OpResult) {
        self.outstanding.remove(&tp);
        let (Some((mut state, recipients)), Some(stat)) =
            (self.writing.remove(&tp), written_stat(r))
        else {
            return;
        };
        state.zk_version = stat.version;
        state.controller_epoch = core.ctx().epoch;
        core.ctx_mut().leadership.insert(tp.clone(), state);
        let ctx = core.ctx.as_ref().expect("active");
        core.batch.add_leader_and_isr(ctx, &recipients, &tp);
    }

    fn done(&self, core: &mut Core) -> Flow<Phase> {
        if !self.outstanding.is_empty() {
            return Flow::Wait;
        }
        core.flush();
        Flow::Done
    }
}

/// The state a read returned, if it is one.
fn fresh_state(core: &Core, r: &Result<OpResult, ZkError>) -> Option<LeaderIsr> {
    let _ = core;
    let Ok(OpResult::Data { data, stat }) = r else {
        return None;
    };
    let state = zkdata::decode::<PartitionStateData>(data)?;
    Some(LeaderIsr::from_znode(&state, stat.version))
}

#[derive(Clone, Debug, Default)]
pub struct CreatePartitions {
    outstanding: BTreeSet<Key>,
    creating: BTreeMap<TopicPartition, LeaderIsr>,
}

impl CreatePartitions {
    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        let ctx = core.ctx();
        let mut states = Vec::new();
        for tp in ctx.new_partitions() {
            let live: Vec<BrokerId> = ctx
                .replicas(&tp)
                .iter()
                .copied()
                .filter(|&b| ctx.is_live(b))
                .collect();
            // No live replica: it stays new until one registers.
            let Some(&leader) = live.first() else {
                continue;
            };
            let state = LeaderIsr {
                leader: Some(leader),
                leader_epoch: 0,
                isr: live,
                controller_epoch: ctx.epoch,
                zk_version: 0,
            };
            states.push((tp, state));
        }
        // The session applies them in order, so parents exist before children (a parent
        // that already exists fails alone, in its own multi).
        let topics: BTreeSet<String> = states.iter().map(|(tp, _)| tp.topic.to_string()).collect();
        for t in topics {
            self.create(
                core,
                Key::PathCreate(zkdata::partitions_path(&t)),
                Vec::new(),
            );
        }
        for (tp, state) in states {
            self.create(
                core,
                Key::PathCreate(zkdata::partition_path(&tp)),
                Vec::new(),
            );
            let data = zkdata::encode(&state.to_znode(state.controller_epoch));
            self.create(core, Key::StateCreate(tp.clone()), data);
            self.creating.insert(tp, state);
        }
        self.done(core)
    }

    fn create(&mut self, core: &mut Core, key: Key, data: Vec<u8>) {
        let path = match &key {
            Key::PathCreate(p) => p.clone(),
            Key::StateCreate(tp) => zkdata::partition_state_path(tp),
            _ => return,
        };
        let op = Op::Create {
            path,
            data,
            ephemeral: false,
            sequential: false,
        };
        let op = core.epoch_checked(op);
        core.submit(key.clone(), op);
        self.outstanding.insert(key);
    }

    pub fn on_result(
        &mut self,
        core: &mut Core,
        key: Key,
        op: &Op,
        result: Result<OpResult, ZkError>,
    ) -> Flow<Phase> {
        let err = result.as_ref().err().map(|e| classify(op, e));
        match (&key, err) {
            (_, Some(WriteErr::EpochMoved)) => return Flow::Resign,
            // A parent not created yet (its create was retried): retry after it.
            (Key::PathCreate(_) | Key::StateCreate(_), Some(WriteErr::Op(ErrCode::NoNode))) => {
                core.park(key, op.clone());
                return Flow::Wait;
            }
            (Key::StateCreate(tp), None) => {
                if let Some(state) = self.creating.remove(tp) {
                    core.ctx_mut().leadership.insert(tp.clone(), state.clone());
                    let ctx = core.ctx.as_ref().expect("active");
                    core.batch.add_leader_and_isr(ctx, &state.isr, tp);
                }
            }
            (Key::StateCreate(tp), Some(WriteErr::Op(ErrCode::NodeExists))) => {
                // Created by an earlier controller (or our create whose answer was lost):
                // take what is there; an offline election follows.
                self.creating.remove(tp);
                read_state(core, tp);
                self.outstanding.insert(Key::StateRead(tp.clone()));
            }
            (Key::StateRead(tp), _) => tell_read_back(core, tp, &result),
            _ => {}
        }
        self.outstanding.remove(&key);
        self.done(core)
    }

    fn done(&self, core: &mut Core) -> Flow<Phase> {
        if !self.outstanding.is_empty() {
            return Flow::Wait;
        }
        core.flush();
        Flow::Done
    }
}

/// A new partition's state found already there (NodeExists), read back: nobody told its
/// replicas yet (the failover's LeaderAndIsr went out before this state was known),
/// whoever created it, so tell them now.
fn tell_read_back(core: &mut Core, tp: &TopicPartition, result: &Result<OpResult, ZkError>) {
    if super::load::cache_state(core, tp, result).is_none() {
        return;
    }
    let ctx = core.ctx.as_ref().expect("active");
    let live: Vec<BrokerId> = ctx
        .replicas(tp)
        .iter()
        .copied()
        .filter(|&b| ctx.is_live(b))
        .collect();
    core.batch.add_leader_and_isr(ctx, &live, tp);
}
