//! What every controller phase shares: the ZooKeeper operations in flight (by tag), the
//! operations parked after a transient failure until the next tick, the outputs for the
//! broker, the active controller's context, its request batch and its channel.
//!
//! A phase never blocks: it submits operations through [`Core::submit`] and is handed their
//! results one by one, with the [`Key`] it submitted them under.
//!
//! May depend on: `kafka::{msg, zkdata, config}`, `kafka::controller::*`, `zab::msg`,
//! `zab::client`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::super::config::BugMode;
use super::super::msg::{BrokerId, Request, TopicPartition};
use super::super::zkdata;
use super::batch::RequestBatch;
use super::channel::Channel;
use super::context::ControllerContext;
use super::{ControllerOut, ControllerSetup};
use crate::zab::client::ZkError;
use crate::zab::msg::{ErrCode, Op, OpResult};
use crate::zab::tree::Stat;

/// What an outstanding ZooKeeper operation is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    ControllerExists,
    ControllerData,
    EpochRead,
    EpochCreate,
    /// The multi [create `/controller`, bump `/controller_epoch`].
    Campaign,
    VerifyController,
    VerifyEpoch,
    BrokerIds,
    BrokerData(BrokerId),
    Topics,
    TopicCreate(String),
    TopicData(String),
    StateRead(TopicPartition),
    StateWrite(TopicPartition),
    StateCreate(TopicPartition),
    PathCreate(String),
    IsrChildren,
    IsrData(String),
    IsrDelete(String),
}

/// What a phase tells the controller after a step.
#[derive(Debug)]
pub enum Flow<P> {
    /// Operations are in flight: call again with their results.
    Wait,
    /// Finished.
    Done,
    /// Finished; run these phases next, before anything else.
    Then(Vec<P>),
    /// `/controller_epoch` moved under a write (ControllerMovedException): resign.
    Resign,
}

/// How a failed controller write failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteErr {
    /// The `/controller_epoch` check of the multi failed: another controller won.
    EpochMoved,
    /// The operation itself failed with this code.
    Op(ErrCode),
    /// Anything else (the session is gone).
    Other,
}

/// Whether `op` is a write wrapped with the `/controller_epoch` check.
pub fn is_epoch_checked(op: &Op) -> bool {
    matches!(op, Op::Multi(ops) if matches!(ops.first(), Some(Op::Check { .. })))
}

pub fn classify(op: &Op, err: &ZkError) -> WriteErr {
    match err {
        ZkError::MultiFailed(per)
            if is_epoch_checked(op) && per.first().is_some_and(Option::is_some) =>
        {
            WriteErr::EpochMoved
        }
        ZkError::MultiFailed(per) => per
            .iter()
            .flatten()
            .find(|c| **c != ErrCode::RuntimeInconsistency)
            .map_or(WriteErr::Other, |c| WriteErr::Op(*c)),
        ZkError::Server(c) => WriteErr::Op(*c),
        _ => WriteErr::Other,
    }
}

/// The Stat of the (last) data write of a successful write or multi.
pub fn written_stat(r: &OpResult) -> Option<&Stat> {
    match r {
        OpResult::SetStat(s) => Some(s),
        OpResult::Multi(rs) => rs.iter().rev().find_map(written_stat),
        _ => None,
    }
}

#[derive(Clone, Debug)]
pub struct Core {
    pub setup: Rc<ControllerSetup>,
    next_tag: u64,
    pending: BTreeMap<u64, (Key, Op)>,
    parked: Vec<(Key, Op)>,
    pub out: Vec<ControllerOut>,
    pub now_ns: u64,
    /// Some while this broker is the active controller.
    pub ctx: Option<ControllerContext>,
    pub batch: RequestBatch,
    pub channel: Channel,
    /// The active controller as last read from `/controller`.
    pub active_id: Option<BrokerId>,
}

impl Core {
    pub fn new(setup: Rc<ControllerSetup>) -> Self {
        Core {
            setup,
            next_tag: 1,
            pending: BTreeMap::new(),
            parked: Vec::new(),
            out: Vec::new(),
            now_ns: 0,
            ctx: None,
            batch: RequestBatch::default(),
            channel: Channel::default(),
            active_id: None,
        }
    }

    pub fn me(&self) -> BrokerId {
        self.setup.me
    }

    /// Forgets every operation in flight (their completions will be ignored) and the whole
    /// active state.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.parked.clear();
        self.resign();
    }

    /// Drops the active controller's state (onControllerResignation).
    pub fn resign(&mut self) {
        self.ctx = None;
        self.batch = RequestBatch::default();
        self.channel = Channel::default();
        if self.active_id == Some(self.me()) {
            self.active_id = None;
        }
    }

    pub fn submit(&mut self, key: Key, op: Op) {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.pending.insert(tag, (key, op.clone()));
        self.out.push(ControllerOut::Zk { tag, op });
    }

    /// Takes the operation submitted under `tag`; None for a stale or unknown tag.
    pub fn take_pending(&mut self, tag: u64) -> Option<(Key, Op)> {
        self.pending.remove(&tag)
    }

    /// Retries `op` on the next tick (it failed for a transient reason).
    pub fn park(&mut self, key: Key, op: Op) {
        self.parked.push((key, op));
    }

    /// Parks every operation in flight (KAFKA-6082 mode: their session died; they are run
    /// again on the next one), in the order they were submitted.
    pub fn park_pending(&mut self) {
        for (_, (key, op)) in std::mem::take(&mut self.pending) {
            self.parked.push((key, op));
        }
    }

    /// Re-submits the parked operations, in the order they were parked.
    pub fn unpark(&mut self) {
        for (key, op) in std::mem::take(&mut self.parked) {
            self.submit(key, op);
        }
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.parked.len()
    }

    /// Whether a partition-state read or write of this controller is in flight or parked:
    /// it is in the middle of a leader or ISR change.
    pub fn state_ops_in_flight(&self) -> bool {
        let state = |k: &Key| {
            matches!(
                k,
                Key::StateRead(_) | Key::StateWrite(_) | Key::StateCreate(_)
            )
        };
        self.pending.values().any(|(k, _)| state(k)) || self.parked.iter().any(|(k, _)| state(k))
    }

    pub fn ctx(&self) -> &ControllerContext {
        self.ctx.as_ref().expect("phase of an active controller")
    }

    pub fn ctx_mut(&mut self) -> &mut ControllerContext {
        self.ctx.as_mut().expect("phase of an active controller")
    }

    /// A controller write, wrapped in a multi with the check of `/controller_epoch`'s version
    /// (KAFKA-6082's fix, Kafka 2.2), so that a controller that lost its election cannot
    /// write any more.
    pub fn epoch_checked(&self, op: Op) -> Op {
        // bug-mode switch point: KAFKA-6082 (before 2.2 the write was conditional on the
        // partition state's zkVersion alone; a zombie controller's writes could land).
        if self.setup.props.bug(BugMode::Kafka6082) {
            return op;
        }
        let version = self.ctx().epoch_zk_version;
        let check = Op::Check {
            path: zkdata::CONTROLLER_EPOCH.into(),
            version,
        };
        Op::Multi(vec![check, op])
    }

    /// Queues `request` for `to` on the channel.
    pub fn send(&mut self, to: BrokerId, request: Request) {
        if let Some(request) = self.channel.enqueue(to, request, self.now_ns) {
            self.out.push(ControllerOut::Send { to, request });
        }
    }

    /// Sends what the batch collected.
    pub fn flush(&mut self) {
        let Some(ctx) = self.ctx.as_ref() else {
            return;
        };
        let requests = self.batch.flush(ctx, self.setup.me);
        for (to, request) in requests {
            self.send(to, request);
        }
    }

    pub fn take_out(&mut self) -> Vec<ControllerOut> {
        std::mem::take(&mut self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_ops_in_flight_sees_partition_state_reads_and_writes_pending_or_parked() {
        let setup = Rc::new(ControllerSetup {
            me: 0,
            brokers: 1,
            topics: vec![],
            props: Default::default(),
        });
        let mut core = Core::new(setup);
        let op = Op::Check {
            path: zkdata::CONTROLLER_EPOCH.into(),
            version: 0,
        };
        let tp = TopicPartition::new("t", 0);
        core.submit(Key::BrokerIds, op.clone());
        assert!(
            !core.state_ops_in_flight(),
            "a broker list read is no state change"
        );
        core.submit(Key::StateRead(tp.clone()), op.clone());
        assert!(core.state_ops_in_flight());
        let tag = core.next_tag - 1;
        let (key, taken) = core.take_pending(tag).unwrap();
        assert!(!core.state_ops_in_flight(), "answered");
        core.park(key, taken);
        assert!(core.state_ops_in_flight(), "parked for a retry");
        core.unpark();
        assert!(core.state_ops_in_flight(), "re-submitted");
        core.reset();
        assert!(!core.state_ops_in_flight());
        core.submit(Key::StateWrite(tp), op);
        assert!(core.state_ops_in_flight());
    }

    #[test]
    fn a_failed_epoch_check_is_told_apart_from_a_bad_version_on_the_state() {
        let set = Op::SetData {
            path: "/s".into(),
            data: vec![],
            version: 3,
        };
        let checked = Op::Multi(vec![
            Op::Check {
                path: zkdata::CONTROLLER_EPOCH.into(),
                version: 1,
            },
            set.clone(),
        ]);
        let bad = ErrCode::BadVersion;
        let epoch = ZkError::MultiFailed(vec![Some(bad), Some(ErrCode::RuntimeInconsistency)]);
        assert_eq!(classify(&checked, &epoch), WriteErr::EpochMoved);
        let state = ZkError::MultiFailed(vec![None, Some(bad)]);
        assert_eq!(classify(&checked, &state), WriteErr::Op(bad));
        assert_eq!(classify(&set, &ZkError::Server(bad)), WriteErr::Op(bad));
        assert_eq!(classify(&set, &ZkError::SessionExpired), WriteErr::Other);
        let stat = Stat {
            czxid: 1,
            mzxid: 2,
            pzxid: 1,
            version: 9,
            cversion: 0,
            ephemeral_owner: 0,
        };
        let multi = OpResult::Multi(vec![OpResult::Checked, OpResult::SetStat(stat)]);
        assert_eq!(written_stat(&multi).map(|s| s.version), Some(9));
    }
}
