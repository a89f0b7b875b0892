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

use crate::cluster::pacing;
use crate::node::{Context, Event, NodeId};
use crate::scenario::ZkWorkload;
use crate::zab::client::{ClientConfig, ClientEvent, SessionState, ZkClient, CLIENT_TAG_BASE};
use crate::zab::msg::{Msg, Op, OpResult};
use crate::zab::record::{Outcome, Record, Recorder};

const TAG_OP: u64 = 7;
/// Key paths formatted ahead (a larger key space formats the rest as they come).
const KEY_PATHS_KEPT: u32 = 4096;

/// A workload client: one operation at a time, at a mean rate.
pub struct WorkloadClient {
    index: u32,
    pub zk: ZkClient,
    /// Every invocation and completion, in order, across the handles opened so far (each
    /// new session gets a new handle and timer tag).
    recorder: Recorder,
    /// Sessions that expired.
    pub sessions_expired: u64,
    servers: u32,
    tick_ns: u64,
    workload: Rc<ZkWorkload>,
    ops: u64,
    /// Last version seen per key (of path `/k<key>`), for compare-and-set.
    versions: BTreeMap<u32, i32>,
    /// The key each open operation was issued for (whatever path the operation names:
    /// its completion teaches that key's version).
    paths: BTreeMap<u64, u32>,
    scanned: usize,
    /// `/k<key>` for the first keys (all of them in any usual workload), formatted once:
    /// an operation clones its path instead of formatting it again.
    key_paths: Rc<[String]>,
}

impl WorkloadClient {
    pub fn new(index: u32, servers: u32, workload: Rc<ZkWorkload>, tick_ns: u64) -> Self {
        let key_paths = (0..workload.keys.min(KEY_PATHS_KEPT))
            .map(|k| format!("/k{k}"))
            .collect();
        WorkloadClient {
            index,
            zk: Self::handle(index, servers, &workload, tick_ns, 0),
            recorder: Recorder::new(),
            sessions_expired: 0,
            servers,
            tick_ns,
            workload,
            ops: 0,
            versions: BTreeMap::new(),
            paths: BTreeMap::new(),
            scanned: 0,
            key_paths,
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

    /// Every invocation and completion, in order.
    pub fn history(&self) -> &[Record] {
        self.recorder.records()
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
        while let Some(e) = self.zk.next_event() {
            match e {
                ClientEvent::Completion(c) => self.recorder.complete(&c),
                ClientEvent::State(SessionState::Expired) => expired = true,
                ClientEvent::State(_) | ClientEvent::Watch { .. } => {}
            }
        }
        if expired {
            self.sessions_expired += 1;
            let w = Rc::clone(&self.workload);
            let n = self.recorder.handles();
            self.recorder.new_handle();
            self.zk = Self::handle(self.index, self.servers, &w, self.tick_ns, n);
            self.zk.start(ctx);
        }
        self.learn_versions();
    }

    /// Submits and records `op`; returns its id in the history.
    fn submit(&mut self, ctx: &mut Context<'_, Msg>, op: Op) -> u64 {
        let id = self.recorder.submit(ctx, &mut self.zk, op);
        self.recorder.history_id(id)
    }

    fn learn_versions(&mut self) {
        let records = self.recorder.records();
        for r in &records[self.scanned..] {
            if let Record::Complete { op_id, outcome, .. } = r {
                let Some(key) = self.paths.remove(op_id) else {
                    continue;
                };
                match outcome {
                    Outcome::Ok(OpResult::Data { stat, .. } | OpResult::SetStat(stat)) => {
                        self.versions.insert(key, stat.version);
                    }
                    Outcome::Ok(OpResult::Created { .. }) => {
                        self.versions.insert(key, 0);
                    }
                    _ => {}
                }
            }
        }
        self.scanned = records.len();
    }

    /// A multi over `path` and another key: two setData (any version), or a check of the
    /// version last seen on `path` and a create.
    fn multi(&mut self, ctx: &mut Context<'_, Msg>, key: u32, path: String, data: Vec<u8>) -> Op {
        let other = self.key_path(ctx.rng().gen_range(0..self.workload.keys));
        let ops = if ctx.rng().gen_range(0..2) == 0 {
            vec![
                Op::SetData {
                    path,
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
                    path,
                    version: self.versions.get(&key).copied().unwrap_or(0),
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

    fn key_path(&self, key: u32) -> String {
        match self.key_paths.get(key as usize) {
            Some(p) => p.clone(),
            None => format!("/k{key}"),
        }
    }

    fn issue(&mut self, ctx: &mut Context<'_, Msg>) {
        let w = Rc::clone(&self.workload);
        let key = ctx.rng().gen_range(0..w.keys);
        self.ops += 1;
        // The data is made only for the writes that carry it (reads and syncs never do).
        let (index, ops) = (self.index, self.ops);
        let data = move || op_data(index, ops);
        let mut weights = w.weights();
        if w.writers.is_some_and(|n| self.index >= n) {
            weights = [0, 0, 0, w.get, w.sync_get, 0, 0, 0, w.get_children];
        }
        let Some(kind) = pacing::pick_weighted(ctx.rng(), &weights) else {
            return;
        };
        // The key's path is made only for the operations that name it, and moved into
        // them: `paths` remembers the key.
        let op = match kind {
            0 => Op::Create {
                path: self.key_path(key),
                data: data(),
                ephemeral: false,
                sequential: false,
            },
            1 => Op::SetData {
                path: self.key_path(key),
                data: data(),
                version: self.versions.get(&key).copied().unwrap_or(0),
            },
            2 => Op::Delete {
                path: self.key_path(key),
                version: -1,
            },
            3 => Op::GetData {
                path: self.key_path(key),
                watch: false,
            },
            4 => {
                let path = self.key_path(key);
                self.submit(ctx, Op::Sync { path: path.clone() });
                Op::GetData { path, watch: true }
            }
            5 => Op::Create {
                path: format!("/e{key}"),
                data: data(),
                ephemeral: true,
                sequential: false,
            },
            6 => Op::Create {
                path: "/s-".into(),
                data: data(),
                ephemeral: ctx.rng().gen_range(0..2) == 0,
                sequential: true,
            },
            7 => {
                let path = self.key_path(key);
                self.multi(ctx, key, path, data())
            }
            _ => Op::GetChildren {
                path: "/".into(),
                watch: false,
            },
        };
        let id = self.submit(ctx, op);
        self.paths.insert(id, key);
    }
}

/// `c<index>-<ops>` as bytes, the data a write carries (written without the formatting
/// machinery: one allocation, the digits by hand).
fn op_data(index: u32, ops: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.push(b'c');
    push_decimal(&mut out, u64::from(index));
    out.push(b'-');
    push_decimal(&mut out, ops);
    out
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    #[test]
    fn op_data_is_the_formatted_text() {
        for (index, ops) in [(0, 0), (3, 1), (12, 907), (u32::MAX, u64::MAX)] {
            assert_eq!(
                super::op_data(index, ops),
                format!("c{index}-{ops}").into_bytes()
            );
        }
    }
}
