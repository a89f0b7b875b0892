//! The history of one ZooKeeper client process, as the harness records it: every operation's
//! invocation (with the session it went out on) and its completion (ok, fail or info, with
//! the zxid and the cxid), across the session handles the process opens one after another.
//!
//! Every embedder of [`ZkClient`] records through a [`Recorder`]: the ZooKeeper workload's
//! clients and the Kafka brokers (whose controller's operations go through the broker's
//! client too). The end-of-run ZooKeeper checks (`cluster::zk::history`) read these records.
//! A process may keep several operations in flight on one session (a broker does); ZooKeeper
//! answers a session's requests in order, which the checks rely on, not the process.
//!
//! May depend on: `node`, `zab::client`, `zab::msg`.

use crate::node::Context;

use super::client::{self, Completion, ZkClient};
use super::msg::{ErrCode, Msg, Op, OpResult, Shared, Zxid};

/// How an operation ended, as the history records it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The server answered (a read may answer "no node": that is an observation).
    Ok(OpResult),
    /// Certainly not applied: a write the server rejected, or a read/sync not answered.
    Fail(String),
    /// Unknown: a write whose answer was lost (connection loss, timeout).
    Info(String),
}

/// One history event of a ZooKeeper client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Record {
    Invoke {
        op_id: u64,
        session: u64,
        /// Shared with the client's request (`ZkClient::submit_shared`).
        op: Shared<Op>,
        at_ns: u64,
    },
    Complete {
        op_id: u64,
        session: u64,
        outcome: Outcome,
        /// The zxid the server reported with its answer.
        zxid: Option<Zxid>,
        /// The xid the request went out with: a write's txn carries it as its cxid.
        cxid: u64,
        at_ns: u64,
    },
}

impl Record {
    /// The record of a client's completion: a read's error answer (no node) is an
    /// observation; a write's is a certain failure; a lost answer leaves a write unknown
    /// and a read failed (reads change nothing).
    pub fn complete(c: &Completion) -> Record {
        let write = c.op.is_write();
        let outcome = match &c.result {
            Ok(r) => Outcome::Ok(r.clone()),
            Err(client::ZkError::Server(ErrCode::SessionExpired)) => {
                Outcome::Fail(format!("{:?}", ErrCode::SessionExpired))
            }
            Err(client::ZkError::Server(code)) if !write => Outcome::Ok(OpResult::Err(*code)),
            // A refused multi is answered (an error txn, at its zxid): what each op met.
            Err(client::ZkError::MultiFailed(per_op)) => {
                Outcome::Ok(OpResult::MultiFailed(per_op.clone()))
            }
            Err(client::ZkError::Server(code)) => Outcome::Fail(format!("{code:?}")),
            Err(e) if e.is_uncertain() && write => Outcome::Info(format!("{e:?}")),
            Err(e) => Outcome::Fail(format!("{e:?}")),
        };
        Record::Complete {
            op_id: c.op_id,
            session: c.session,
            outcome,
            zxid: c.zxid,
            cxid: c.xid,
            at_ns: c.at_ns,
        }
    }

    /// The operation's id in the history.
    pub fn op_id(&self) -> u64 {
        match self {
            Record::Invoke { op_id, .. } | Record::Complete { op_id, .. } => *op_id,
        }
    }
}

/// Records one process's operations across its session handles. Each handle numbers its
/// operations from 1; the history's op id puts the handle's number above them, so that ids
/// stay unique when an expired session is replaced by a new handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorder {
    records: Vec<Record>,
    /// Handles opened so far (the current one is `handles - 1`).
    handles: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            records: Vec::new(),
            handles: 1,
        }
    }

    /// A new handle replaces the last one: its operation ids start again.
    pub fn new_handle(&mut self) {
        self.handles += 1;
    }

    /// Handles opened so far.
    pub fn handles(&self) -> u64 {
        self.handles
    }

    /// Submits `op` on the current handle `client` and records its invocation. Returns the
    /// client's own op id (the one its completion will carry).
    pub fn submit(&mut self, ctx: &mut Context<'_, Msg>, client: &mut ZkClient, op: Op) -> u64 {
        let at_ns = ctx.now();
        let session = client.session();
        let op = Shared::new(op);
        let id = client.submit_shared(ctx, Shared::clone(&op));
        self.records.push(Record::Invoke {
            op_id: self.history_id(id),
            session,
            op,
            at_ns,
        });
        id
    }

    /// Records the completion of an operation of the current handle.
    pub fn complete(&mut self, c: &Completion) {
        let mut record = Record::complete(c);
        if let Record::Complete { op_id, .. } = &mut record {
            *op_id = self.history_id(c.op_id);
        }
        self.records.push(record);
    }

    /// The history's id of the current handle's operation `id`.
    pub fn history_id(&self, id: u64) -> u64 {
        ((self.handles - 1) << 32) | id
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Appends a record as it is (hand-built histories in tests and tools).
    pub fn push(&mut self, record: Record) {
        self.records.push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{IdSource, MemDisk, NodeId};
    use crate::zab::client::{ClientConfig, ClientEvent, CLIENT_TAG_BASE};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Each handle numbers its operations from 1: the history keeps them apart, and a
    /// completion is recorded under the id of its own invocation.
    #[test]
    fn op_ids_stay_unique_across_handles() {
        let (mut rng, mut disk) = (ChaCha8Rng::seed_from_u64(1), MemDisk::default());
        let (mut ids, mut effects) = (IdSource::new(0), Vec::new());
        let mut ctx = Context::new(0, NodeId(5), &mut rng, &mut disk, &mut ids, &mut effects);
        let cfg = ClientConfig {
            servers: vec![NodeId(0)],
            session_timeout_ms: 3000,
            request_timeout_ns: 1_000_000_000,
            connect_timeout_ns: 1_000_000_000,
            tick_ns: 100_000_000,
            timer_tag: CLIENT_TAG_BASE,
        };
        let mut recorder = Recorder::new();
        let get = Op::GetData {
            path: "/a".into(),
            watch: false,
        };
        let mut first = ZkClient::new(cfg.clone(), 0);
        let a = recorder.submit(&mut ctx, &mut first, get.clone());
        recorder.new_handle();
        let mut second = ZkClient::new(cfg, 0);
        let b = recorder.submit(&mut ctx, &mut second, get.clone());
        assert_eq!((a, b), (1, 1), "each handle starts at 1");
        second.close(&mut ctx);
        for e in second.drain() {
            if let ClientEvent::Completion(c) = e {
                recorder.complete(&c);
            }
        }
        let ids: Vec<u64> = recorder.records().iter().map(Record::op_id).collect();
        assert_eq!(ids, vec![1, (1 << 32) | 1, (1 << 32) | 1]);
        let Record::Complete { outcome, .. } = &recorder.records()[2] else {
            panic!("a completion");
        };
        assert_eq!(
            *outcome,
            Outcome::Fail("Closed".into()),
            "a read never sent failed"
        );
    }
}
