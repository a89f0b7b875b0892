//! Message enums of the simulated ZooKeeper: server<->server (fast leader election, the
//! learner protocol of Zab 1.0) and client<->server, plus the transaction and operation
//! types they carry.
//!
//! Every message derives `Clone, Debug, PartialEq, Eq, Hash`: the kernel hashes each
//! delivered message into the run's trace hash.
//!
//! May depend on: `node` (ids) and `zab::tree` (the plain data carried by SNAP).

use super::tree::{Stat, TreeImage};

/// The path and data of a txn, shared rather than copied: one txn is held at once by the
/// leader's outstanding proposals, every PROPOSAL message in flight, each server's log and
/// each follower's pending queue, and a copy of each would cost two allocations. `Hash`,
/// `Eq`, `Ord` and `Debug` are those of the `str` / `[u8]` inside, so trace hashes and
/// reports are the same as with `String` / `Vec<u8>`.
pub type Shared<T> = std::sync::Arc<T>;

/// A ZooKeeper transaction id: `(zab_epoch << 32) | counter` (A.2).
pub type Zxid = u64;

pub fn make_zxid(zab_epoch: u32, counter: u32) -> Zxid {
    ((zab_epoch as u64) << 32) | counter as u64
}

pub fn zxid_epoch(zxid: Zxid) -> u32 {
    (zxid >> 32) as u32
}

pub fn zxid_counter(zxid: Zxid) -> u32 {
    zxid as u32
}

/// The peer state a server advertises in leader election (A.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
}

/// A vote for `leader`, whose last zxid is `zxid` and whose currentEpoch is `peer_epoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vote {
    pub leader: u32,
    pub zxid: Zxid,
    pub peer_epoch: u32,
}

/// An FLE notification (A.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    pub vote: Vote,
    /// The sender's logical clock (election round).
    pub election_epoch: u64,
    pub state: PeerState,
    pub sid: u32,
}

/// Error codes a client can see (a subset of KeeperException.Code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrCode {
    NoNode,
    NodeExists,
    BadVersion,
    NotEmpty,
    NoChildrenForEphemerals,
    SessionExpired,
    /// Multi: this op was not applied because another op of the multi failed.
    RuntimeInconsistency,
    BadArguments,
    /// The session's client is connected to another server now (SessionMovedException):
    /// a write forwarded by the server it left is not applied.
    SessionMoved,
}

/// A client operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral: bool,
        sequential: bool,
    },
    /// `version` -1 matches any version.
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    /// Only inside a multi: asserts the version of a node.
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<Op>),
    GetData {
        path: String,
        watch: bool,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetChildren {
        path: String,
        watch: bool,
    },
    Sync {
        path: String,
    },
}

impl Op {
    /// Writes go through the leader as transactions; reads are served locally.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Create { .. }
                | Op::Delete { .. }
                | Op::SetData { .. }
                | Op::Check { .. }
                | Op::Multi(_)
        )
    }
}

/// What a successful or failed operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OpResult {
    /// The new node's final path (sequential names resolved) and its Stat (czxid: the
    /// zxid that created it, which Kafka uses as a broker epoch).
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    SetStat(Stat),
    Checked,
    Multi(Vec<OpResult>),
    /// A multi that failed, nothing applied: per op, None for an op that would have
    /// succeeded (rolled back), else its error (RUNTIMEINCONSISTENCY after the failing op).
    MultiFailed(Vec<Option<ErrCode>>),
    Data {
        data: Vec<u8>,
        stat: Stat,
    },
    Exists(Option<Stat>),
    Children(Vec<String>),
    Synced,
    Err(ErrCode),
}

/// One idempotent change to the data tree, as the leader's prep stage produced it (A.7).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TxnOp {
    CreateSession {
        timeout_ms: u64,
    },
    /// Closes the session and deletes all its ephemerals, in this one txn (A.9).
    CloseSession,
    Create {
        path: Shared<str>,
        data: Shared<[u8]>,
        ephemeral_owner: u64,
    },
    Delete {
        path: Shared<str>,
    },
    SetData {
        path: Shared<str>,
        data: Shared<[u8]>,
    },
    Check {
        path: Shared<str>,
    },
    /// All or nothing; a failed multi is an `Error` txn instead.
    Multi(Vec<TxnOp>),
    /// A request that failed validation still becomes a txn, so that it is answered in the
    /// session's order (ZooKeeper's error txns). `index` is the failed op of a multi.
    Error {
        code: ErrCode,
        multi_len: u32,
        index: u32,
    },
}

/// A transaction: a change with its zxid and the request it answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Txn {
    pub zxid: Zxid,
    pub session: u64,
    pub cxid: u64,
    pub op: TxnOp,
}

/// What a learner forwards to its leader on behalf of a client (ZooKeeper's REQUEST).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Forwarded {
    CreateSession { timeout_ms: u64 },
    CloseSession,
    Write(Shared<Op>),
}

/// Kinds of watch events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchKind {
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
}

/// Every message of the simulated ZooKeeper.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    // ---- fast leader election (on election connections)
    Notification(Notification),

    // ---- learner protocol (on the follower's quorum connection to its leader)
    FollowerInfo {
        sid: u32,
        accepted_epoch: u32,
    },
    LeaderInfo {
        zab_epoch: u32,
    },
    /// `promised` false is ZooKeeper's ACKEPOCH with epoch -1: the follower had already
    /// promised this epoch (A.5 item 3).
    AckEpoch {
        current_epoch: u32,
        last_zxid: Zxid,
        promised: bool,
    },
    Diff {
        zxid: Zxid,
    },
    Trunc {
        zxid: Zxid,
    },
    Snap {
        zxid: Zxid,
        image: Box<TreeImage>,
    },
    Proposal(Txn),
    Commit {
        zxid: Zxid,
    },
    NewLeader {
        zxid: Zxid,
    },
    Ack {
        zxid: Zxid,
    },
    UpToDate,
    /// Leader -> learner every tick; `round` numbers the pings for quorum syncs.
    Ping {
        round: u64,
    },
    /// Learner -> leader: the sessions its clients touched since the last ping (A.9).
    PingAck {
        round: u64,
        touched: Vec<u64>,
    },
    Request {
        session: u64,
        cxid: u64,
        req: Forwarded,
    },
    /// A forwarded `sync`; answered by `SyncDone` behind the COMMITs it waited for.
    SyncReq {
        session: u64,
        cxid: u64,
    },
    SyncDone {
        session: u64,
        cxid: u64,
    },
    /// Learner -> leader: a client reconnected here with `session`; is it alive? Only the
    /// leader expires sessions, and the learner's tree may lag (Learner.validateSession).
    Revalidate {
        session: u64,
    },
    /// Leader -> learner: the session's timeout when it is alive (and now touched), None
    /// when it expired or is closing.
    Revalidated {
        session: u64,
        timeout_ms: Option<u64>,
    },

    // ---- client <-> server
    ConnectReq {
        session: u64,
        last_zxid_seen: Zxid,
        timeout_ms: u64,
    },
    ConnectResp {
        session: u64,
        timeout_ms: u64,
    },
    /// The server refuses: it is behind the client, not serving, or the session expired.
    ConnectRefused {
        expired: bool,
    },
    /// The op is shared with the client's in-flight entry and its history's record
    /// (`zab::record`): one allocation per operation, not a copy of its path and data
    /// for each. Hash and Debug are those of the `Op` inside.
    ClientRequest {
        xid: u64,
        op: Shared<Op>,
    },
    ClientResponse {
        xid: u64,
        zxid: Zxid,
        result: OpResult,
    },
    WatchEvent {
        path: String,
        kind: WatchKind,
        zxid: Zxid,
    },
    ClientPing,
    ClientPong {
        zxid: Zxid,
    },
    CloseSessionReq {
        xid: u64,
    },
    /// Client -> server right after a reconnect, before any request: re-register the
    /// client's watches (ClientCnxn's SetWatches). A watch whose node changed after
    /// `relative_zxid` fires at once instead of being registered.
    SetWatches {
        relative_zxid: Zxid,
        data: Vec<String>,
        exist: Vec<String>,
        child: Vec<String>,
    },
}
