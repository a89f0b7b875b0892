//! The ZooKeeper workload client: one embedded `zab::client::ZkClient` driven by a small
//! generator on the node's own random stream, one operation at a time (a sync+get pair
//! counts as one), paced by `cluster::pacing`. It records every invocation and completion
//! into its history. When its session expires the handle is dead, and the workload (the
//! embedding node) opens a new session with a new handle, as an application would.
//!
//! Depends on: zab (client, msg), node, scenario, cluster (pacing).

use std::collections::BTreeMap;
use std::rc::Rc;

use rand::Rng;

use super::history::{Outcome, Record};
use crate::cluster::pacing;
use crate::node::{Context, Event, NodeId};
use crate::scenario::ZkWorkload;
use crate::zab::client::{ClientConfig, ClientEvent, SessionState, ZkClient, CLIENT_TAG_BASE};
use crate::zab::msg::{Msg, Op, OpResult};

const TAG_OP: u64 = 7;

/// A workload client: one operation at a time, at a mean rate.
pub struct WorkloadClient {
    index: u32,
    pub zk: ZkClient,
    /// Handles opened so far (each new session gets a new handle and timer tag).
    handles: u64,
    /// Every invocation and completion, in order.
    pub history: Vec<Record>,
    /// Sessions that expired.
    pub sessions_expired: u64,
    servers: u32,
    tick_ns: u64,
    workload: Rc<ZkWorkload>,
    ops: u64,
    /// Last version seen per path, for compare-and-set.
    versions: BTreeMap<String, i32>,
    paths: BTreeMap<u64, String>,
    scanned: usize,
}

impl WorkloadClient {
    pub fn new(index: u32, servers: u32, workload: Rc<ZkWorkload>, tick_ns: u64) -> Self {
        WorkloadClient {
            index,
            zk: Self::handle(index, servers, &workload, tick_ns, 0),
            handles: 1,
            history: Vec::new(),
            sessions_expired: 0,
            servers,
            tick_ns,
            workload,
            ops: 0,
            versions: BTreeMap::new(),
            paths: BTreeMap::new(),
            scanned: 0,
        }
    }

    /// A new client handle; handle `n` starts at the n-th server after the client's own.
    fn handle(index: u32, servers: u32, w: &ZkWorkload, tick_ns: u64, n: u64) -> ZkClient {
        let cfg = ClientConfig {
            servers: (0..servers).map(NodeId).collect(),
            session_timeout_ms: w.session_timeout_ms,
            request_timeout_ns: w.request_timeout.ns(),
            connect_timeout_ns: 1_000_000_000,
            tick_ns,
            timer_tag: CLIENT_TAG_BASE + n,
        };
        ZkClient::new(cfg, (u64::from(index) + n) as usize)
    }

    fn interval_ns(&self, ctx: &mut Context<'_, Msg>) -> u64 {
        pacing::interval_ns(ctx.rng(), self.workload.ops_per_s)
    }

    pub fn on_event(&mut self, ctx: &mut Context<'_, Msg>, event: Event<Msg>) {
        match event {
            Event::Start { .. } => {
                self.zk.on_event(ctx, event);
                let first = self.workload.start_after.ns() + self.interval_ns(ctx);
                ctx.set_timer(first, TAG_OP);
            }
            Event::Timer { tag: TAG_OP, .. } => {
                if self.zk.outstanding() == 0 {
                    self.issue(ctx);
                }
                let next = self.interval_ns(ctx);
                ctx.set_timer(next, TAG_OP);
            }
            other => self.zk.on_event(ctx, other),
        }
        self.absorb(ctx);
    }

    /// Records what the client reports; opens a new session when the old one expired.
    fn absorb(&mut self, ctx: &mut Context<'_, Msg>) {
        let mut expired = false;
        for e in self.zk.drain() {
            match e {
                ClientEvent::Completion(mut c) => {
                    c.op_id = self.op_id(c.op_id);
                    self.history.push(Record::complete(&c));
                }
                ClientEvent::State(SessionState::Expired) => expired = true,
                ClientEvent::State(_) | ClientEvent::Watch { .. } => {}
            }
        }
        if expired {
            self.sessions_expired += 1;
            let w = Rc::clone(&self.workload);
            let n = self.handles;
            self.handles += 1;
            self.zk = Self::handle(self.index, self.servers, &w, self.tick_ns, n);
            self.zk.start(ctx);
        }
        self.learn_versions();
    }

    fn submit(&mut self, ctx: &mut Context<'_, Msg>, op: Op) -> u64 {
        let at_ns = ctx.now();
        let session = self.zk.session();
        let id = self.zk.submit(ctx, op.clone());
        let op_id = self.op_id(id);
        self.history.push(Record::Invoke {
            op_id,
            session,
            op,
            at_ns,
        });
        op_id
    }

    /// The history's id of the current handle's operation `id`: handles number their
    /// operations from 1 each, the history needs them unique across handles.
    fn op_id(&self, id: u64) -> u64 {
        ((self.handles - 1) << 32) | id
    }

    fn learn_versions(&mut self) {
        for r in &self.history[self.scanned..] {
            if let Record::Complete { op_id, outcome, .. } = r {
                let Some(path) = self.paths.remove(op_id) else {
                    continue;
                };
                match outcome {
                    Outcome::Ok(OpResult::Data { stat, .. } | OpResult::SetStat(stat)) => {
                        self.versions.insert(path, stat.version);
                    }
                    Outcome::Ok(OpResult::Created { .. }) => {
                        self.versions.insert(path, 0);
                    }
                    _ => {}
                }
            }
        }
        self.scanned = self.history.len();
    }

    /// A multi over `path` and another key: two setData (any version), or a check of the
    /// version last seen on `path` and a create.
    fn multi(&mut self, ctx: &mut Context<'_, Msg>, path: &str, data: Vec<u8>) -> Op {
        let other = format!("/k{}", ctx.rng().gen_range(0..self.workload.keys));
        let ops = if ctx.rng().gen_range(0..2) == 0 {
            vec![
                Op::SetData {
                    path: path.to_string(),
                    data: data.clone(),
                    version: -1,
                },
                Op::SetData {
                    path: other,
                    data,
                    version: -1,
                },
            ]
        } else {
            vec![
                Op::Check {
                    path: path.to_string(),
                    version: self.versions.get(path).copied().unwrap_or(0),
                },
                Op::Create {
                    path: other,
                    data,
                    ephemeral: false,
                    sequential: false,
                },
            ]
        };
        Op::Multi(ops)
    }

    fn issue(&mut self, ctx: &mut Context<'_, Msg>) {
        let w = Rc::clone(&self.workload);
        let key = ctx.rng().gen_range(0..w.keys);
        let path = format!("/k{key}");
        self.ops += 1;
        let data = format!("c{}-{}", self.index, self.ops).into_bytes();
        let mut weights = w.weights();
        if w.writers.is_some_and(|n| self.index >= n) {
            weights = [0, 0, 0, w.get, w.sync_get, 0, 0, 0, w.get_children];
        }
        let Some(kind) = pacing::pick_weighted(ctx.rng(), &weights) else {
            return;
        };
        let op = match kind {
            0 => Op::Create {
                path: path.clone(),
                data,
                ephemeral: false,
                sequential: false,
            },
            1 => Op::SetData {
                path: path.clone(),
                data,
                version: self.versions.get(&path).copied().unwrap_or(0),
            },
            2 => Op::Delete {
                path: path.clone(),
                version: -1,
            },
            3 => Op::GetData {
                path: path.clone(),
                watch: false,
            },
            4 => {
                self.submit(ctx, Op::Sync { path: path.clone() });
                Op::GetData {
                    path: path.clone(),
                    watch: true,
                }
            }
            5 => Op::Create {
                path: format!("/e{key}"),
                data,
                ephemeral: true,
                sequential: false,
            },
            6 => Op::Create {
                path: "/s-".into(),
                data,
                ephemeral: ctx.rng().gen_range(0..2) == 0,
                sequential: true,
            },
            7 => self.multi(ctx, &path, data),
            _ => Op::GetChildren {
                path: "/".into(),
                watch: false,
            },
        };
        let id = self.submit(ctx, op);
        self.paths.insert(id, path);
    }
}
