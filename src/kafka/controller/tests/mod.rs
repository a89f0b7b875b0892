//! Unit tests of the controller: a harness drives it with completions from a small fake
//! ZooKeeper tree ([`fake_zk`]) and watch events, and answers its requests, with no kernel.
//! A test can hold back chosen operations to answer them by hand, change the tree between
//! two steps (another controller, a leader's ISR write), or drop watch events.

mod brokers;
mod election;
mod fake_zk;
mod partitions;

use std::collections::VecDeque;
use std::rc::Rc;

use self::fake_zk::FakeZk;
use super::super::config::{ServerProperties, TopicSpec};
use super::super::msg::{BrokerId, ErrorCode, PartitionState, Request, Response, TopicPartition};
use super::super::zkdata::{self, PartitionStateData};
use super::{Controller, ControllerOut, ControllerSetup};
use crate::zab::client::ZkError;
use crate::zab::msg::{Op, OpResult};

pub const S: u64 = 1_000_000_000;

pub struct Harness {
    pub ctl: Controller,
    pub zk: FakeZk,
    pub now: u64,
    inbox: VecDeque<(u64, Op)>,
    acks: VecDeque<(BrokerId, Request)>,
    /// Every request sent, in order.
    pub sent: Vec<(BrokerId, Request)>,
    pub replies: Vec<(u64, Response)>,
    /// Operations matching this are held in `held` instead of being applied.
    pub hold: Option<fn(&Op) -> bool>,
    pub held: Vec<(u64, Op)>,
    /// Whether brokers answer requests at once.
    pub auto_ack: bool,
}

pub fn topic(name: &str, partitions: u32, rf: u32) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        partitions,
        replication_factor: rf,
    }
}

pub fn tp(p: u32) -> TopicPartition {
    TopicPartition::new("t", p)
}

impl Harness {
    /// Broker `me` of `brokers`, with the ZooKeeper top-level paths in place.
    pub fn new(
        me: BrokerId,
        brokers: u32,
        topics: Vec<TopicSpec>,
        props: ServerProperties,
    ) -> Self {
        let setup = ControllerSetup {
            me,
            brokers,
            topics,
            props,
        };
        let mut zk = FakeZk::new();
        for p in zkdata::TOP_LEVEL {
            zk.create(p, b"", false, false).unwrap();
        }
        Harness {
            ctl: Controller::new(Rc::new(setup)),
            zk,
            now: 0,
            inbox: VecDeque::new(),
            acks: VecDeque::new(),
            sent: Vec::new(),
            replies: Vec::new(),
            hold: None,
            held: Vec::new(),
            auto_ack: true,
        }
    }

    /// A cluster of `brokers` registered brokers whose broker 0 starts its session.
    pub fn cluster(brokers: u32, topics: Vec<TopicSpec>, props: ServerProperties) -> Self {
        let mut h = Harness::new(0, brokers, topics, props);
        for b in 0..brokers {
            h.register(b);
        }
        h.start();
        h
    }

    pub fn register(&mut self, b: BrokerId) {
        let data = zkdata::encode(&zkdata::BrokerRegistration::new(b));
        self.zk
            .create(&zkdata::broker_path(b), &data, true, false)
            .unwrap();
    }

    /// The broker's session expires: its registration goes.
    pub fn kill(&mut self, b: BrokerId) {
        self.zk.delete(&zkdata::broker_path(b), -1).unwrap();
    }

    pub fn start(&mut self) {
        let out = self.ctl.on_session(self.now);
        self.feed(out);
        self.settle();
    }

    pub fn feed(&mut self, out: Vec<ControllerOut>) {
        for o in out {
            match o {
                ControllerOut::Zk { tag, op } => self.inbox.push_back((tag, op)),
                ControllerOut::Send { to, request } => {
                    self.sent.push((to, request.clone()));
                    if self.auto_ack {
                        self.acks.push_back((to, request));
                    }
                }
                ControllerOut::Reply { token, response } => self.replies.push((token, response)),
            }
        }
    }

    /// Delivers watch events, completions and answers until nothing is left.
    pub fn settle(&mut self) {
        loop {
            if !self.zk.events.is_empty() {
                let events = std::mem::take(&mut self.zk.events);
                for (path, kind) in events {
                    let out = self.ctl.on_watch(&path, kind, self.now);
                    self.feed(out);
                }
                continue;
            }
            if let Some((tag, op)) = self.inbox.pop_front() {
                if self.hold.is_some_and(|f| f(&op)) {
                    self.held.push((tag, op));
                    continue;
                }
                let result = self.zk.apply(&op);
                self.complete(tag, result);
                continue;
            }
            if let Some((from, request)) = self.acks.pop_front() {
                let out = self.ctl.on_response(from, &ok_response(&request), self.now);
                self.feed(out);
                continue;
            }
            break;
        }
    }

    pub fn complete(&mut self, tag: u64, result: Result<OpResult, ZkError>) {
        let out = self.ctl.on_zk(tag, &result, self.now);
        self.feed(out);
    }

    /// Applies the held operations now, in order, and settles.
    pub fn release(&mut self) {
        self.hold = None;
        for (tag, op) in std::mem::take(&mut self.held) {
            let result = self.zk.apply(&op);
            self.complete(tag, result);
        }
        self.settle();
    }

    pub fn tick(&mut self, dt: u64) {
        self.now += dt;
        let out = self.ctl.on_tick(self.now);
        self.feed(out);
        self.settle();
    }

    pub fn state(&self, p: u32) -> (PartitionStateData, i32) {
        let (data, stat) = self
            .zk
            .get(&zkdata::partition_state_path(&tp(p)))
            .expect("state");
        (zkdata::decode(&data).expect("state json"), stat.version)
    }

    /// Writes a partition state as a leader or an earlier controller would.
    pub fn put_state(&mut self, p: u32, leader: Option<BrokerId>, epoch: u32, isr: &[BrokerId]) {
        let data = zkdata::encode(&PartitionStateData::new(leader, epoch, isr, 1));
        let path = zkdata::partition_state_path(&tp(p));
        if self.zk.exists(&path) {
            self.zk.set(&path, &data, -1).unwrap();
        } else {
            for dir in [zkdata::partitions_path("t"), zkdata::partition_path(&tp(p))] {
                let _ = self.zk.create(&dir, b"", false, false);
            }
            self.zk.create(&path, &data, false, false).unwrap();
        }
    }

    /// The partition states of every LeaderAndIsr sent to `to` since `from`, for `p`.
    pub fn leader_and_isr(&self, to: BrokerId, p: u32, from: usize) -> Vec<PartitionState> {
        self.sent[from..]
            .iter()
            .filter(|(b, _)| *b == to)
            .filter_map(|(_, r)| match r {
                Request::LeaderAndIsr { partitions, .. } => {
                    partitions.iter().find(|s| s.tp == tp(p)).cloned()
                }
                _ => None,
            })
            .collect()
    }

    /// `(to, api)` of the requests sent since `from`.
    pub fn apis(&self, from: usize) -> Vec<(BrokerId, &'static str)> {
        self.sent[from..]
            .iter()
            .map(|(b, r)| (*b, r.api()))
            .collect()
    }
}

pub fn ok_response(request: &Request) -> Response {
    match request {
        Request::LeaderAndIsr { partitions, .. } => Response::LeaderAndIsr {
            error: ErrorCode::None,
            partitions: partitions
                .iter()
                .map(|p| (p.tp.clone(), ErrorCode::None))
                .collect(),
        },
        Request::StopReplica { partitions, .. } => Response::StopReplica {
            error: ErrorCode::None,
            partitions: partitions
                .iter()
                .map(|p| (p.tp.clone(), ErrorCode::None))
                .collect(),
        },
        _ => Response::UpdateMetadata {
            error: ErrorCode::None,
        },
    }
}

pub fn props() -> ServerProperties {
    ServerProperties::default()
}
