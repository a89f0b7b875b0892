//! Unit tests of the broker: one broker driven by hand-made events, with a small fake
//! ZooKeeper server answering its client (enough of the data tree for registration, ISR
//! writes and notifications), and Kafka requests and responses written by hand.

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Broker, BrokerSetup};
use crate::kafka::config::{Acks, ServerProperties};
use crate::kafka::log::batch::{ProducerStamp, Record};
use crate::kafka::msg::{
    ErrorCode, FetchPartition, KafkaMsg, PartitionState, ProducePartition, Request, Response,
    TopicPartition,
};
use crate::kafka::wire::WireMsg;
use crate::kafka::zkdata::{self, PartitionStateData};
use crate::node::{ConnId, Context, Effect, Event, FsyncId, IdSource, MemDisk, Node, NodeId};
use crate::zab::msg::{ErrCode, Msg as ZkMsg, Op, OpResult};
use crate::zab::tree::Stat;

const ZK: NodeId = NodeId(0);
const MS: u64 = 1_000_000;

fn node_of(b: u32) -> NodeId {
    NodeId(10 + b)
}

/// Enough of a ZooKeeper server for one broker: a flat map of paths, sessions by number.
#[derive(Default)]
struct FakeZk {
    nodes: BTreeMap<String, (Vec<u8>, Stat)>,
    zxid: u64,
    next_session: u64,
    seq: u32,
    /// Refuse the next connect as expired (the session timed out while away).
    expire_next: bool,
    /// Every write op seen, in order.
    writes: Vec<Op>,
}

impl FakeZk {
    fn create(&mut self, path: &str, data: Vec<u8>, owner: u64) -> Stat {
        self.zxid += 1;
        let stat = Stat {
            czxid: self.zxid,
            mzxid: self.zxid,
            ephemeral_owner: owner,
            ..Stat::default()
        };
        self.nodes.insert(path.to_string(), (data, stat));
        stat
    }

    fn apply(&mut self, op: Op, session: u64) -> OpResult {
        if op.is_write() {
            self.writes.push(op.clone());
        }
        match op {
            Op::Create {
                path,
                data,
                ephemeral,
                sequential,
            } => {
                let path = if sequential {
                    self.seq += 1;
                    format!("{path}{:010}", self.seq)
                } else {
                    path
                };
                if self.nodes.contains_key(&path) {
                    return OpResult::Err(ErrCode::NodeExists);
                }
                let owner = if ephemeral { session } else { 0 };
                let stat = self.create(&path, data, owner);
                OpResult::Created { path, stat }
            }
            Op::SetData {
                path,
                data,
                version,
            } => {
                self.zxid += 1;
                let zxid = self.zxid;
                match self.nodes.get_mut(&path) {
                    None => OpResult::Err(ErrCode::NoNode),
                    Some((_, s)) if version != -1 && s.version != version => {
                        OpResult::Err(ErrCode::BadVersion)
                    }
                    Some((d, s)) => {
                        *d = data;
                        s.version += 1;
                        s.mzxid = zxid;
                        OpResult::SetStat(*s)
                    }
                }
            }
            Op::GetData { path, .. } => match self.nodes.get(&path) {
                Some((data, stat)) => OpResult::Data {
                    data: data.clone(),
                    stat: *stat,
                },
                None => OpResult::Err(ErrCode::NoNode),
            },
            Op::Exists { path, .. } => OpResult::Exists(self.nodes.get(&path).map(|n| n.1)),
            Op::Delete { path, .. } => match self.nodes.remove(&path) {
                Some(_) => OpResult::Deleted,
                None => OpResult::Err(ErrCode::NoNode),
            },
            Op::GetChildren { .. } => OpResult::Children(Vec::new()),
            Op::Multi(ops) => {
                OpResult::Multi(ops.into_iter().map(|o| self.apply(o, session)).collect())
            }
            Op::Check { .. } => OpResult::Checked,
            Op::Sync { .. } => OpResult::Synced,
        }
    }

    fn handle(&mut self, msg: ZkMsg, session: &mut u64) -> Vec<ZkMsg> {
        match msg {
            ZkMsg::ConnectReq {
                session: s,
                timeout_ms,
                ..
            } => {
                if std::mem::take(&mut self.expire_next) {
                    return vec![ZkMsg::ConnectRefused { expired: true }];
                }
                if s == 0 {
                    self.next_session += 1;
                    *session = 0x100 + self.next_session;
                } else {
                    *session = s;
                }
                vec![ZkMsg::ConnectResp {
                    session: *session,
                    timeout_ms,
                }]
            }
            ZkMsg::ClientPing => vec![ZkMsg::ClientPong { zxid: self.zxid }],
            ZkMsg::ClientRequest { xid, op } => {
                let result = self.apply((*op).clone(), *session);
                vec![ZkMsg::ClientResponse {
                    xid,
                    zxid: self.zxid,
                    result,
                }]
            }
            ZkMsg::CloseSessionReq { xid } => {
                let s = *session;
                self.nodes.retain(|_, (_, st)| st.ephemeral_owner != s);
                vec![ZkMsg::ClientResponse {
                    xid,
                    zxid: self.zxid,
                    result: OpResult::Deleted,
                }]
            }
            _ => Vec::new(),
        }
    }
}

/// One broker driven by hand, with the fake ZooKeeper answering at once.
struct Bench {
    broker: Broker,
    now: u64,
    rng: ChaCha8Rng,
    disk: MemDisk,
    ids: IdSource,
    zk: FakeZk,
    /// Whether the fake server answers (false: the broker is cut from ZooKeeper).
    zk_up: bool,
    zk_conn: Option<(ConnId, u64)>,
    /// Kafka messages the broker sent, by connection.
    sent: Vec<(ConnId, KafkaMsg)>,
    /// Connections the broker opened to other brokers.
    connects: Vec<(ConnId, NodeId)>,
    timers: Vec<(u64, u64)>,
    fsyncs: Vec<(FsyncId, crate::node::FileName)>,
    halted: Option<String>,
    closed: Vec<ConnId>,
}

const CLIENT: ConnId = ConnId(1_000_000);

impl Bench {
    fn with_props(id: u32, props: ServerProperties) -> Bench {
        let setup = BrokerSetup {
            zk_servers: vec![ZK],
            brokers: (0..3).map(node_of).collect(),
            topics: Vec::new(),
            props,
        };
        Bench {
            broker: Broker::new(id, Rc::new(setup)),
            now: 0,
            rng: ChaCha8Rng::seed_from_u64(7),
            disk: MemDisk::default(),
            ids: IdSource::new(0),
            zk: FakeZk::default(),
            zk_up: true,
            zk_conn: None,
            sent: Vec::new(),
            connects: Vec::new(),
            timers: Vec::new(),
            fsyncs: Vec::new(),
            halted: None,
            closed: Vec::new(),
        }
    }

    /// Broker `id`, started and registered.
    fn started(id: u32) -> Bench {
        Bench::started_with(id, ServerProperties::default())
    }

    fn started_with(id: u32, props: ServerProperties) -> Bench {
        let mut b = Bench::with_props(id, props);
        b.event(Event::Start { restarted: false });
        assert!(
            b.broker.registered(),
            "the fake ZooKeeper registers at once"
        );
        b
    }

    fn event(&mut self, event: Event<WireMsg>) {
        let mut effects = Vec::new();
        {
            let me = node_of(self.broker.id());
            let mut ctx = Context::new(
                self.now,
                me,
                &mut self.rng,
                &mut self.disk,
                &mut self.ids,
                &mut effects,
            );
            self.broker.on_event(&mut ctx, event);
        }
        let mut next = Vec::new();
        for e in effects {
            self.effect(e, &mut next);
        }
        for ev in next {
            self.event(ev);
        }
    }

    fn effect(&mut self, e: Effect<WireMsg>, next: &mut Vec<Event<WireMsg>>) {
        match e {
            Effect::Connect { conn, peer } if peer == ZK => {
                if self.zk_up {
                    self.zk_conn = Some((conn, 0));
                    let initiated = true;
                    next.push(Event::ConnUp {
                        conn,
                        peer,
                        initiated,
                    });
                }
            }
            Effect::Connect { conn, peer } => {
                self.connects.push((conn, peer));
                let initiated = true;
                next.push(Event::ConnUp {
                    conn,
                    peer,
                    initiated,
                });
            }
            Effect::Send {
                conn,
                msg: WireMsg::Zk(m),
            } => {
                let Some((c, mut session)) = self.zk_conn else {
                    return;
                };
                if c != conn || !self.zk_up {
                    return;
                }
                for reply in self.zk.handle(m, &mut session) {
                    let msg = WireMsg::Zk(reply);
                    next.push(Event::Message {
                        conn,
                        peer: ZK,
                        msg,
                    });
                }
                self.zk_conn = Some((c, session));
            }
            Effect::Send {
                conn,
                msg: WireMsg::Kafka(m),
            } => self.sent.push((conn, m)),
            Effect::SetTimer { after_ns, tag, .. } => self.timers.push((self.now + after_ns, tag)),
            Effect::Fsync { fsync, file } => self.fsyncs.push((fsync, file)),
            Effect::Halt { reason } => self.halted = Some(reason),
            Effect::Close { conn } => self.closed.push(conn),
            Effect::CancelTimer { .. } => {}
        }
    }

    /// Moves the clock, firing due timers in time order.
    fn advance(&mut self, ns: u64) {
        let end = self.now + ns;
        loop {
            self.timers.sort();
            let Some(&(at, tag)) = self.timers.first() else {
                break;
            };
            if at > end {
                break;
            }
            self.timers.remove(0);
            self.now = self.now.max(at);
            let timer = crate::node::TimerId(0);
            self.event(Event::Timer { timer, tag });
        }
        self.now = end;
    }

    fn request(&mut self, conn: ConnId, corr: u64, body: Request) {
        let msg = WireMsg::Kafka(KafkaMsg::Request {
            correlation_id: corr,
            body,
        });
        self.event(Event::Message {
            conn,
            peer: NodeId(99),
            msg,
        });
    }

    /// Responses sent on `conn` since the last call.
    fn responses(&mut self, conn: ConnId) -> Vec<(u64, Response)> {
        let mut out = Vec::new();
        self.sent.retain(|(c, m)| match m {
            KafkaMsg::Response {
                correlation_id,
                body,
            } if *c == conn => {
                out.push((*correlation_id, body.clone()));
                false
            }
            _ => true,
        });
        out
    }

    /// Requests the broker sent (to other brokers) since the last call.
    fn requests(&mut self) -> Vec<(ConnId, u64, Request)> {
        let mut out = Vec::new();
        self.sent.retain(|(c, m)| match m {
            KafkaMsg::Request {
                correlation_id,
                body,
            } => {
                out.push((*c, *correlation_id, body.clone()));
                false
            }
            _ => true,
        });
        out
    }

    fn complete_fsyncs(&mut self) {
        for (fsync, file) in std::mem::take(&mut self.fsyncs) {
            self.event(Event::FsyncDone { fsync, file });
        }
    }

    fn broker_epoch(&self) -> i64 {
        self.broker.view().broker_epoch.expect("registered")
    }

    /// LeaderAndIsr from controller epoch 1 for `tp` over brokers 0..3.
    fn leader_and_isr(&mut self, state: PartitionState) -> Response {
        let body = Request::LeaderAndIsr {
            controller_id: 2,
            controller_epoch: state.controller_epoch,
            broker_epoch: self.broker_epoch(),
            partitions: vec![state],
            live_leaders: vec![0, 1, 2],
        };
        let conn = ConnId(500);
        self.request(conn, 1, body);
        self.responses(conn).pop().expect("answered").1
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

fn state(leader: u32, epoch: u32, isr: &[u32], zk_version: i32) -> PartitionState {
    PartitionState {
        tp: tp(),
        controller_epoch: 1,
        leader: Some(leader),
        leader_epoch: epoch,
        isr: isr.to_vec(),
        zk_version,
        replicas: vec![0, 1, 2],
    }
}

fn produce(acks: Acks, values: &[u64]) -> Request {
    Request::Produce {
        acks,
        timeout_ms: 1000,
        partitions: vec![ProducePartition {
            tp: tp(),
            producer: ProducerStamp::NONE,
            records: values
                .iter()
                .map(|&v| Record { key: 0, value: v })
                .collect(),
        }],
    }
}

fn fetch(replica: Option<u32>, offset: u64, epoch: Option<u32>, wait_ms: u64) -> Request {
    Request::Fetch {
        replica_id: replica,
        max_wait_ms: wait_ms,
        partitions: vec![FetchPartition {
            tp: tp(),
            fetch_offset: offset,
            last_fetched_epoch: epoch,
            current_leader_epoch: Some(1),
            max_records: 100,
        }],
    }
}

fn produce_result(resp: &Response) -> (ErrorCode, Option<u64>) {
    let Response::Produce { partitions } = resp else {
        panic!("not a produce response: {resp:?}");
    };
    (partitions[0].error, partitions[0].base_offset)
}

/// Broker 0 leads t-0 in epoch 1 with ISR [0, 1] (partition state at zkVersion 0 in the
/// fake ZooKeeper).
fn leader_bench(props: ServerProperties) -> Bench {
    let mut b = Bench::started_with(0, props);
    let data = zkdata::encode(&PartitionStateData::new(Some(0), 1, &[0, 1], 1));
    b.zk.create(&zkdata::partition_state_path(&tp()), data, 0);
    let resp = b.leader_and_isr(state(0, 1, &[0, 1], 0));
    assert_eq!(
        resp,
        Response::LeaderAndIsr {
            error: ErrorCode::None,
            partitions: vec![(tp(), ErrorCode::None)]
        }
    );
    b
}

mod registration;
mod replication;
