//! Recorded client histories: what every checker reads.
//!
//! Models: a history is the list of client operations of one run (or of a peer history file),
//! each with its invocation, its completion (or none: still open at the end) and the values it
//! carried. Operation ids are positions in [`History::ops`]. Times are virtual nanoseconds; peer
//! histories without timestamps use the line index. Two operations are concurrent unless one's
//! completion is strictly before the other's invocation (equal times count as concurrent, so a
//! recorder that stamps both at one instant never creates a false "happens before").
//!
//! Depends on: nothing in the crate (serde only). The cluster's recorder is its only writer.
//!
//! JSON format (`--format json`), one object with an `ops` array; field by field:
//! ```json
//! {"ops": [
//!   {"process": 3,              // client / thread id (u64); one outstanding op per process
//!    "session": 7,              // optional ZooKeeper session id (u64)
//!    "invoke_ns": 1000,         // invocation time, virtual ns
//!    "complete_ns": 2500,       // completion time; absent or null = open to the end (info)
//!    "outcome": "ok",           // "ok" | "fail" (did not apply) | "info" (unknown)
//!    "call": {"f": "cas", "key": "x", "expected": 1, "new": 2},
//!    "ret": {"type": "done"},   // observed result; absent when none was observed
//!    "zxid": 12}                // optional zxid the ZooKeeper server reported
//! ]}
//! ```
//! `call.f` is one of `read write cas get put append create delete set_data get_data exists
//! sync_get_data create_node get_children check multi close_session send poll`; `ret.type` one
//! of `value done text data stat exists created children error offset records` (see [`Call`]
//! and [`Ret`] for their fields).
//!
//! Recording, as the cluster's recorder does it (one `invoke` when the client sends, one
//! `complete` when the reply arrives; a timeout is an `info` completion; never completing is
//! the same as `info`):
//! ```
//! use faultline::check::{Call, History, Outcome, Ret, ZkError};
//! use faultline::check::zk_order::{check_zookeeper, ZkOptions};
//!
//! let mut history = History::new();
//! let set = Call::SetData { path: "/a".into(), data: "v1".into(), version: 0 };
//! let id = history.invoke(3, Some(0x51), 1_000, set);
//! let bad = Some(Ret::Error { code: ZkError::NoNode });
//! history.complete(id, 2_500, Outcome::Fail, bad, Some(0x1_0000_0004));
//! let verdict = check_zookeeper(&history, &ZkOptions::default()).unwrap();
//! assert!(verdict.is_valid());
//! ```

use serde::{Deserialize, Serialize};

/// Index of an operation in [`History::ops`].
pub type OpId = usize;

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Completed and took effect; `ret` holds what it returned.
    Ok,
    /// Completed without taking effect. If `ret` says what the server saw (a failed compare:
    /// `cas`, or a ZooKeeper error code), checkers use it as an observation made at some point
    /// inside the operation's window; otherwise the operation is ignored.
    Fail,
    /// Unknown: it may take effect at any point after its invocation, or never. Its window
    /// stays open to the end of the history whatever `complete_ns` says.
    Info,
}

/// ZooKeeper error codes that say what the server saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZkError {
    /// The znode does not exist.
    NoNode,
    /// `create` of a znode that exists.
    NodeExists,
    /// The expected version did not match.
    BadVersion,
}

/// What a client asked for (the invocation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Call {
    /// Register read (one register per `key`; `""` for a single register).
    Read {
        #[serde(default)]
        key: String,
    },
    /// Register write.
    Write {
        #[serde(default)]
        key: String,
        value: i64,
    },
    /// Register compare-and-set: if the value is `expected`, set it to `new`.
    Cas {
        #[serde(default)]
        key: String,
        expected: i64,
        new: i64,
    },
    /// Key-value get; a missing key reads as `""`.
    Get { key: String },
    /// Key-value put.
    Put { key: String, value: String },
    /// Key-value append (string concatenation).
    Append { key: String, value: String },
    /// ZooKeeper create (persistent, non-sequential).
    Create { path: String, data: String },
    /// ZooKeeper delete with an expected version (-1 = any).
    Delete { path: String, version: i32 },
    /// ZooKeeper setData with an expected version (-1 = any).
    SetData {
        path: String,
        data: String,
        version: i32,
    },
    /// ZooKeeper getData (a plain, local read).
    GetData { path: String },
    /// ZooKeeper exists.
    Exists { path: String },
    /// ZooKeeper create of an ephemeral and/or sequential znode. `path` is the requested
    /// path; a sequential create's actual name (the path plus the parent's cversion, ten
    /// digits) comes back in `ret` as `created`.
    CreateNode {
        path: String,
        data: String,
        #[serde(default)]
        ephemeral: bool,
        #[serde(default)]
        sequential: bool,
    },
    /// ZooKeeper getChildren: the names of the znode's children.
    GetChildren { path: String },
    /// ZooKeeper check (only inside a multi): the znode's version is `version`.
    Check { path: String, version: i32 },
    /// ZooKeeper multi: its ops (create, create_node, delete, set_data, check) apply
    /// atomically, all at one zxid, or none does.
    Multi { ops: Vec<Call> },
    /// The closeSession txn of `session` (its expiry or its close), which deletes every
    /// ephemeral znode the session owns, in the same txn. Recorded from the system's log.
    CloseSession { session: u64 },
    /// ZooKeeper `sync(path)` followed by getData, recorded as one operation from the sync's
    /// invocation to the read's completion.
    SyncGetData { path: String },
    /// Kafka produce of `value` to partition `key` (`None`: the single partition `""`).
    Send {
        #[serde(default)]
        key: Option<String>,
        value: String,
    },
    /// Kafka consumer poll.
    Poll,
}

/// One record a poll returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolledRecord {
    /// Partition key (`""` for the single partition).
    #[serde(default)]
    pub key: String,
    /// Offset in that partition.
    pub offset: u64,
    /// The record's value.
    pub value: String,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Ret {
    /// Register read result: `None` = never written (nil), which differs from every integer.
    Value { value: Option<i64> },
    /// A write that returns nothing: register write/cas, put, append, create, delete.
    Done,
    /// Key-value get result.
    Text { value: String },
    /// getData (or sync+getData) result: the data and the znode's data version.
    Data { data: String, version: i32 },
    /// setData result: the znode's new data version.
    Stat { version: i32 },
    /// exists result: the version, or `None` when the znode does not exist.
    Exists { version: Option<i32> },
    /// create (create_node) result: the created znode's actual path.
    Created { path: String },
    /// getChildren result: the children's names, sorted.
    Children { children: Vec<String> },
    /// ZooKeeper error code (the request was evaluated and rejected).
    Error { code: ZkError },
    /// Kafka send acknowledged at this offset.
    Offset { offset: u64 },
    /// Kafka poll result.
    Records { records: Vec<PolledRecord> },
}

/// One client operation: an invocation and, unless open, its completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Client (thread) id.
    pub process: u64,
    /// ZooKeeper session id, when the client has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    /// Invocation time (virtual ns, or line index for peer histories).
    pub invoke_ns: u64,
    /// Completion time; `None` while open (and for `info` operations, which stay open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_ns: Option<u64>,
    /// How it ended (`info` while still open).
    pub outcome: Outcome,
    /// The invocation.
    pub call: Call,
    /// The observed result, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<Ret>,
    /// The zxid the ZooKeeper server reported with the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<u64>,
}

impl Op {
    /// True when the operation's window stays open to the end of the history.
    pub fn is_open(&self) -> bool {
        self.outcome == Outcome::Info || self.complete_ns.is_none()
    }

    /// Completion time as seen by checkers: `None` when open.
    pub fn end_ns(&self) -> Option<u64> {
        if self.is_open() {
            None
        } else {
            self.complete_ns
        }
    }

    /// One-line human description, e.g. `p3 cas x 1->2 fail [10, 25]`.
    pub fn summary(&self) -> String {
        let end = match self.end_ns() {
            Some(t) => t.to_string(),
            None => "open".to_string(),
        };
        let ret = match &self.ret {
            Some(r) => format!(" -> {}", ret_text(r)),
            None => String::new(),
        };
        let zxid = self
            .zxid
            .map(|z| format!(" zxid={z:#x}"))
            .unwrap_or_default();
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        let call = call_text(&self.call);
        let p = self.process;
        format!(
            "p{p} {call}{ret} {outcome}{zxid} [{}, {end}]",
            self.invoke_ns
        )
    }
}

fn call_text(call: &Call) -> String {
    // A single register has the key "": leave it out rather than print a double space.
    let with_key = |f: &str, key: &str| {
        if key.is_empty() {
            f.to_string()
        } else {
            format!("{f} {key}")
        }
    };
    match call {
        Call::Read { key } => with_key("read", key),
        Call::Write { key, value } => format!("{} {value}", with_key("write", key)),
        Call::Cas { key, expected, new } => format!("{} {expected}->{new}", with_key("cas", key)),
        Call::Get { key } => format!("get {key:?}"),
        Call::Put { key, value } => format!("put {key:?} {value:?}"),
        Call::Append { key, value } => format!("append {key:?} {value:?}"),
        Call::Create { path, data } => format!("create {path} {data:?}"),
        Call::Delete { path, version } => format!("delete {path} v{version}"),
        Call::SetData {
            path,
            data,
            version,
        } => format!("setData {path} {data:?} v{version}"),
        Call::GetData { path } => format!("getData {path}"),
        Call::Exists { path } => format!("exists {path}"),
        Call::SyncGetData { path } => format!("sync+getData {path}"),
        Call::CreateNode {
            path,
            data,
            ephemeral,
            sequential,
        } => {
            let e = if *ephemeral { "e" } else { "" };
            let s = if *sequential { "s" } else { "" };
            format!("create-{e}{s} {path} {data:?}")
        }
        Call::GetChildren { path } => format!("getChildren {path}"),
        Call::Check { path, version } => format!("check {path} v{version}"),
        Call::Multi { ops } => {
            let parts: Vec<String> = ops.iter().map(call_text).collect();
            format!("multi [{}]", parts.join("; "))
        }
        Call::CloseSession { session } => format!("closeSession {session:#x}"),
        Call::Send { key, value } => format!("send {:?} {value:?}", key.as_deref().unwrap_or("")),
        Call::Poll => "poll".to_string(),
    }
}

fn ret_text(ret: &Ret) -> String {
    match ret {
        Ret::Value { value: Some(v) } => v.to_string(),
        Ret::Value { value: None } => "nil".to_string(),
        Ret::Done => "done".to_string(),
        Ret::Text { value } => format!("{value:?}"),
        Ret::Data { data, version } => format!("{data:?} v{version}"),
        Ret::Stat { version } => format!("v{version}"),
        Ret::Exists { version: Some(v) } => format!("exists v{v}"),
        Ret::Exists { version: None } => "absent".to_string(),
        Ret::Created { path } => format!("created {path}"),
        Ret::Children { children } => format!("[{}]", children.join(" ")),
        Ret::Error { code } => format!("{code:?}"),
        Ret::Offset { offset } => format!("offset {offset}"),
        Ret::Records { records } => {
            let parts: Vec<String> = records
                .iter()
                .map(|r| format!("{}@{}={:?}", r.key, r.offset, r.value))
                .collect();
            format!("[{}]", parts.join(" "))
        }
    }
}

/// A recorded history. Build it incrementally with [`History::invoke`] and
/// [`History::complete`]; operations never completed stay open (like `info`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Operations in invocation order (their ids are their positions).
    pub ops: Vec<Op>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Records an invocation and returns its id. The operation stays open (`info`) until
    /// [`History::complete`] is called.
    pub fn invoke(&mut self, process: u64, session: Option<u64>, at_ns: u64, call: Call) -> OpId {
        self.ops.push(Op {
            process,
            session,
            invoke_ns: at_ns,
            complete_ns: None,
            outcome: Outcome::Info,
            call,
            ret: None,
            zxid: None,
        });
        self.ops.len() - 1
    }

    /// Records a completion. An `info` outcome keeps the window open to the end.
    pub fn complete(
        &mut self,
        id: OpId,
        at_ns: u64,
        outcome: Outcome,
        ret: Option<Ret>,
        zxid: Option<u64>,
    ) {
        let op = &mut self.ops[id];
        assert!(op.complete_ns.is_none(), "operation {id} completed twice");
        assert!(
            at_ns >= op.invoke_ns,
            "operation {id} completes before it was invoked"
        );
        op.complete_ns = Some(at_ns);
        op.outcome = outcome;
        op.ret = ret;
        op.zxid = zxid;
    }

    /// Parses faultline's history JSON.
    pub fn from_json(text: &str) -> Result<History, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Writes faultline's history JSON (stable field order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a history always serialises")
    }
}
