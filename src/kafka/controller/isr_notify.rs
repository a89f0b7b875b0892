//! ISR change notifications (IsrChangeNotification, KafkaController 2.x).
//!
//! A leader that changed an ISR in ZooKeeper leaves a sequential
//! `/isr_change_notification/isr_change_<seq>` naming the partitions. The controller watches
//! the children, reads the named partitions' states into its cache, sends UpdateMetadata for
//! them to every broker (so clients see the new ISR) and deletes the notifications, each in
//! an epoch-checked multi. On failover the old ones are deleted unread, since every state is
//! read anyway.
//!
//! May depend on: `kafka::{msg, zkdata}`, `kafka::controller::*`, `zab::msg`, `zab::client`.

use std::collections::BTreeSet;

use super::super::msg::TopicPartition;
use super::super::zkdata::{self, IsrChangeNotification};
use super::core::{classify, Core, Flow, Key, WriteErr};
use super::load::LoadStates;
use super::partition_ops::Targets;
use super::phase::{Phase, Step};
use crate::zab::client::ZkError;
use crate::zab::msg::{Op, OpResult};

fn notification_path(name: &str) -> String {
    format!("{}/{name}", zkdata::ISR_CHANGE)
}

#[derive(Clone, Debug)]
pub struct IsrNotify {
    /// Failover: delete without reading.
    discard: bool,
    listing: bool,
    names: Vec<String>,
    outstanding: BTreeSet<String>,
    partitions: BTreeSet<TopicPartition>,
}

impl IsrNotify {
    pub fn new(discard: bool) -> Self {
        IsrNotify {
            discard,
            listing: false,
            names: Vec::new(),
            outstanding: BTreeSet::new(),
            partitions: BTreeSet::new(),
        }
    }

    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        let op = Op::GetChildren {
            path: zkdata::ISR_CHANGE.into(),
            watch: true,
        };
        core.submit(Key::IsrChildren, op);
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
            (Key::IsrChildren, r) => {
                self.listing = false;
                if let Ok(OpResult::Children(names)) = r {
                    self.names = names;
                }
                if !self.discard {
                    for name in &self.names {
                        let op = Op::GetData {
                            path: notification_path(name),
                            watch: false,
                        };
                        core.submit(Key::IsrData(name.clone()), op);
                        self.outstanding.insert(name.clone());
                    }
                }
            }
            (Key::IsrData(name), r) => {
                self.outstanding.remove(&name);
                let n = match r {
                    Ok(OpResult::Data { data, .. }) => {
                        zkdata::decode::<IsrChangeNotification>(&data)
                    }
                    _ => None,
                };
                for p in n.map(|n| n.partitions).unwrap_or_default() {
                    self.partitions
                        .insert(TopicPartition::new(&p.topic, p.partition));
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
        let ctx = core.ctx();
        let known: Vec<TopicPartition> = std::mem::take(&mut self.partitions)
            .into_iter()
            .filter(|tp| ctx.assignment.contains_key(tp))
            .collect();
        let mut next = Vec::new();
        if !known.is_empty() {
            next.push(Phase::LoadStates(LoadStates::new(Targets::List(
                known.clone(),
            ))));
            next.push(Phase::Step(Step::UpdateMetadata(known)));
        }
        if !self.names.is_empty() {
            let names = std::mem::take(&mut self.names);
            next.push(Phase::DeleteNotifications(DeleteNotifications::new(names)));
        }
        Flow::Then(next)
    }
}

#[derive(Clone, Debug)]
pub struct DeleteNotifications {
    names: Vec<String>,
    outstanding: BTreeSet<String>,
}

impl DeleteNotifications {
    pub fn new(names: Vec<String>) -> Self {
        DeleteNotifications {
            names,
            outstanding: BTreeSet::new(),
        }
    }

    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        for name in std::mem::take(&mut self.names) {
            let op = Op::Delete {
                path: notification_path(&name),
                version: -1,
            };
            let op = core.epoch_checked(op);
            core.submit(Key::IsrDelete(name.clone()), op);
            self.outstanding.insert(name);
        }
        self.done()
    }

    pub fn on_result(
        &mut self,
        _core: &mut Core,
        key: Key,
        op: &Op,
        result: Result<OpResult, ZkError>,
    ) -> Flow<Phase> {
        if let Key::IsrDelete(name) = key {
            if let Err(e) = &result {
                if classify(op, e) == WriteErr::EpochMoved {
                    return Flow::Resign;
                }
            }
            // Deleted, or gone already (NoNode): either way done.
            self.outstanding.remove(&name);
        }
        self.done()
    }

    fn done(&self) -> Flow<Phase> {
        if self.outstanding.is_empty() {
            Flow::Done
        } else {
            Flow::Wait
        }
    }
}
