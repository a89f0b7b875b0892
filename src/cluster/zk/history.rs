//! History conversion and end-of-run checks for ZooKeeper clients' records (the workload's
//! clients, and the Kafka brokers' embedded clients; `checks` runs them over a world):
//! - `zk-acked-write-durable`: every write answered ok is committed.
//! - `zk-session-order`: the zxids a client sees never decrease.
//! - `zk-session-moved-unseen`: no client reads a SESSIONMOVED answer.
//! - `zk-sync-read`: a read right after a sync reflects every write that completed before
//!   the sync was invoked.
//! - `zk-history`: the whole history passes `check::zk_order` (linearizable writes, ordered
//!   sequential consistency of reads, strict sync+read).
//!
//! The conversion into a `check::History` is the one point where the client library's
//! records meet the checkers' vocabulary.
//!
//! Depends on: zab (client records, msg), check, node, sim, cluster (record, Violation).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;

use crate::check::history::{Call, History, Outcome as HOutcome, Ret, ZkError};
use crate::check::zk_order::{check_zookeeper, ZkOptions};
use crate::check::Verdict;
use crate::cluster::capture::{self, Witness};
use crate::cluster::record::{pair, Mark, Tally};
use crate::cluster::{safety_violation, FailureKind, Violation};
use crate::node::{Node, NodeId};
use crate::sim::Sim;
use crate::zab::msg::{ErrCode, Op, OpResult, Txn, TxnOp, Zxid};

pub use crate::zab::record::{Outcome, Record};

/// What the history checker concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryCheck {
    Valid,
    /// The checker ran out of budget: never counted as a pass.
    Unknown,
    /// The violation and the checker's witness, for the report.
    Invalid(Violation, Box<Witness>),
}

/// Counts completed operations by outcome.
pub fn tally(histories: &[(NodeId, &[Record])]) -> Tally {
    let mut t = Tally::default();
    for (_, h) in histories {
        for r in h.iter() {
            if let Record::Complete { outcome, .. } = r {
                match outcome {
                    Outcome::Ok(_) => t.ok += 1,
                    Outcome::Fail(_) => t.fail += 1,
                    Outcome::Info(_) => t.info += 1,
                }
            }
        }
    }
    t
}

/// What the history conversion needs of the system's committed txns (the monitor keeps it):
/// the txn each client request became, and the closeSession txns.
#[derive(Clone, Debug, Default)]
pub struct CommitRecord {
    /// (session, cxid) -> (zxid, the txn's op).
    by_request: BTreeMap<(u64, u64), (Zxid, TxnOp)>,
    /// closeSession txns: (zxid, when it committed, session).
    closes: Vec<(Zxid, u64, u64)>,
    /// (session, cxid) of every txn any server ever logged: a request never logged was
    /// never committed (its leader logs it before it can commit).
    logged: BTreeSet<(u64, u64)>,
}

impl CommitRecord {
    /// Records a txn committed at `at_ns` (each zxid once).
    pub fn add(&mut self, txn: &Txn, at_ns: u64) {
        match txn.op {
            TxnOp::CloseSession => self.closes.push((txn.zxid, at_ns, txn.session)),
            TxnOp::CreateSession { .. } => {}
            _ => {
                let op = txn.op.clone();
                self.by_request
                    .insert((txn.session, txn.cxid), (txn.zxid, op));
            }
        }
    }

    /// Records a txn some server logged.
    pub fn logged(&mut self, txn: &Txn) {
        self.logged.insert((txn.session, txn.cxid));
    }

    /// The committed txn of this request, if it committed.
    fn get(&self, session: u64, cxid: u64) -> Option<&(Zxid, TxnOp)> {
        self.by_request.get(&(session, cxid))
    }
}

/// Runs the ZooKeeper history checker (`check::zk_order`) on the recorded histories, one
/// process per client (`procs`: process number and records), with unknown writes resolved
/// by `record`. `servers` maps a process back to its node (process = node id - servers).
pub fn check_history<N>(
    sim: &Sim<N>,
    procs: &[(u64, &[Record])],
    record: &CommitRecord,
    servers: u32,
) -> HistoryCheck
where
    N: Node,
    N::Msg: Hash + Debug,
{
    check_converted(sim, &to_check_history(procs, record), servers)
}

/// [`check_history`] on a history already converted.
pub fn check_converted<N>(sim: &Sim<N>, history: &History, servers: u32) -> HistoryCheck
where
    N: Node,
    N::Msg: Hash + Debug,
{
    let options = ZkOptions {
        strict: true,
        ..ZkOptions::default()
    };
    match check_zookeeper(history, &options) {
        Ok(Verdict::Invalid { violations }) => {
            let first = &violations[0];
            let ops: Vec<String> = first
                .ops
                .iter()
                .take(4)
                .map(|i| history.ops[*i].summary())
                .collect();
            let message = format!("{}: {} [{}]", first.kind, first.message, ops.join("; "));
            let node_of = move |p: u64| p as u32 + servers;
            let witness = capture::checker_witness("zk-history", first, history, &node_of);
            let violation = Violation {
                kind: FailureKind::Safety,
                invariant: "zk-history".into(),
                message,
                at_ns: sim.now(),
                event: 0,
                node: None,
            };
            HistoryCheck::Invalid(violation, Box::new(witness))
        }
        Ok(Verdict::Unknown { .. }) => HistoryCheck::Unknown,
        Ok(Verdict::Valid { .. }) => HistoryCheck::Valid,
        Err(e) => panic!("history conversion produced an op the checker rejects: {e:?}"),
    }
}

/// Converts the clients' records into a `check::History` (the conversion point between the
/// client library's records and the checkers). A successful sync followed by its getData
/// becomes one `sync_get_data`. Every operation is kept: ephemeral and sequential creates
/// (`create_node`), multi, getChildren; and each closeSession txn the system committed for
/// a client's session (its expiry) becomes a `close_session` of that client, at its zxid and
/// commit time, since it deletes the session's ephemerals.
///
/// A write whose answer the client never had (lost, timed out, open at the end) is resolved
/// by `record`: committed as (session, cxid) at z, it applied (or was refused, for an error
/// txn) at z, its window still open since its answer is unknown; never logged by any server,
/// it never applied. Logged but not seen committed, it stays unknown (a new leader's initial
/// history can hold it under a snapshot the monitor cannot read). A request still open at
/// the end has no cxid in the records: [`infer_open_cxids`] recovers it from the client's
/// order.
pub fn to_check_history(procs: &[(u64, &[Record])], record: &CommitRecord) -> History {
    let paired: Vec<Ops<'_>> = procs.iter().map(|(_, r)| Ops::pair(r)).collect();
    let procs: Vec<(u64, &Ops<'_>)> = procs.iter().map(|(p, _)| *p).zip(&paired).collect();
    convert(&procs, record)
}

/// [`to_check_history`] on records already paired (one [`Ops`] per process).
pub fn convert(procs: &[(u64, &Ops<'_>)], record: &CommitRecord) -> History {
    let mut history = History::new();
    // At most one op per paired operation and per closeSession: no regrowth (an op is
    // large, and a seed converts a few hundred).
    let most = procs.iter().map(|(_, o)| o.list.len()).sum::<usize>() + record.closes.len();
    history.ops.reserve(most);
    let mut session_process: BTreeMap<u64, u64> = BTreeMap::new();
    for (process, ops) in procs {
        let mut spans = ops.spans();
        infer_open_cxids(&mut spans);
        spans.sort_by_key(|s| s.t0);
        for s in &spans {
            session_process.insert(s.session, *process);
        }
        let mut i = 0;
        while i < spans.len() {
            let span = &spans[i];
            if let Op::Sync { .. } = span.op {
                // Only a sync that succeeded makes the read after it a synced read; after a
                // failed one the read is an ordinary (possibly stale) read.
                let synced = matches!(span.outcome, Some(Outcome::Ok(_)));
                if let Some(next) = spans.get(i + 1).filter(|_| synced) {
                    if let Op::GetData { path, .. } = next.op {
                        let call = Call::SyncGetData { path: path.clone() };
                        let merged = Span {
                            t0: span.t0,
                            ..*next
                        };
                        push_op(&mut history, *process, &merged, call);
                        i += 2;
                        continue;
                    }
                }
                i += 1;
                continue;
            }
            if let Some(call) = to_call(span.op) {
                match resolve(span, record) {
                    Some(resolved) => push_resolved(&mut history, *process, span, call, resolved),
                    None => push_op(&mut history, *process, span, call),
                }
            }
            i += 1;
        }
    }
    for (zxid, at_ns, session) in &record.closes {
        let Some(process) = session_process.get(session) else {
            continue;
        };
        let call = Call::CloseSession { session: *session };
        let id = history.invoke(*process, Some(*session), *at_ns, call);
        history.complete(id, *at_ns, HOutcome::Ok, Some(Ret::Done), Some(*zxid));
    }
    history.ops.sort_by_key(|o| (o.invoke_ns, o.process));
    history
}

/// One client's operations, paired once from its records and borrowed from them (nothing
/// is copied): every end-of-run check reads this one pairing.
pub struct Ops<'a> {
    /// The completed operations in completion order, then those still open at the end in
    /// operation-id order.
    list: Vec<Paired<'a>>,
    /// How many of `list` completed.
    done: usize,
}

/// One operation: its invocation and, if it completed, its completion.
#[derive(Clone, Copy)]
struct Paired<'a> {
    op_id: u64,
    t0: u64,
    /// The session the invocation went out on (0 if not known yet).
    s0: u64,
    op: &'a Op,
    done: Option<Done<'a>>,
}

/// A completion as recorded.
#[derive(Clone, Copy)]
struct Done<'a> {
    t1: u64,
    session: u64,
    outcome: &'a Outcome,
    zxid: Option<Zxid>,
    cxid: u64,
}

impl<'a> Ops<'a> {
    /// Pairs each invocation with its completion by operation id (a completion without an
    /// invocation cannot be placed in time and is dropped).
    pub fn pair(records: &'a [Record]) -> Self {
        let marks = records.iter().map(|r| match r {
            Record::Invoke {
                op_id,
                session,
                op,
                at_ns,
            } => Mark::Invoke(
                *op_id,
                Paired {
                    op_id: *op_id,
                    t0: *at_ns,
                    s0: *session,
                    op,
                    done: None,
                },
            ),
            Record::Complete {
                op_id,
                session,
                outcome,
                zxid,
                cxid,
                at_ns,
            } => Mark::Complete(
                *op_id,
                Done {
                    t1: *at_ns,
                    session: *session,
                    outcome,
                    zxid: *zxid,
                    cxid: *cxid,
                },
            ),
        });
        let paired = pair(marks);
        let done = paired.done.len();
        let mut list: Vec<Paired<'a>> = paired
            .done
            .into_iter()
            .map(|(i, c)| Paired { done: Some(c), ..i })
            .collect();
        list.extend(paired.open);
        Ops { list, done }
    }

    /// The completed operations, in completion order, as (invoke time, op, completion).
    fn completed(&self) -> impl Iterator<Item = (u64, &'a Op, Done<'a>)> + '_ {
        self.list[..self.done]
            .iter()
            .filter_map(|p| Some((p.t0, p.op, p.done?)))
    }

    /// Every operation as a span of the conversion: the completed ones, then the open ones
    /// (unknown outcome, open to the end, cxid still to infer).
    fn spans(&self) -> Vec<Span<'a>> {
        self.list
            .iter()
            .map(|p| match p.done {
                Some(d) => Span {
                    op_id: p.op_id,
                    t0: p.t0,
                    session: if d.session != 0 { d.session } else { p.s0 },
                    op: p.op,
                    t1: d.t1,
                    outcome: Some(d.outcome),
                    zxid: d.zxid,
                    cxid: Some(d.cxid),
                },
                None => Span {
                    op_id: p.op_id,
                    t0: p.t0,
                    session: p.s0,
                    op: p.op,
                    t1: p.t0,
                    outcome: None,
                    zxid: None,
                    cxid: None,
                },
            })
            .collect()
    }
}

/// One operation of one client, paired: invocation and completion.
#[derive(Clone, Copy, Debug)]
struct Span<'a> {
    /// The history's op id: the handle's number in the high 32 bits (see `Recorder`).
    op_id: u64,
    t0: u64,
    session: u64,
    op: &'a Op,
    t1: u64,
    /// None: still in flight when the run ended (an unknown outcome, open to the end).
    outcome: Option<&'a Outcome>,
    zxid: Option<Zxid>,
    /// The request's xid (its txn's cxid); `None` while open at the end.
    cxid: Option<u64>,
}

/// Gives each request still open at the end the cxid it went out with. The records hold a
/// cxid for completed requests only, but the client's order fixes the rest: a handle (one
/// session) numbers its requests as it sends them, sends them in the order they were invoked
/// (queued ones in order on connect), and the server answers a session's requests in
/// order. A request sent after an open one cannot have been answered, and a lost answer
/// (timeout, connection loss) completes every request in flight. So the open requests of a
/// handle are the last ones it sent, in op-id order: the k-th took cxid max + k, where max is
/// the highest cxid among the handle's completed requests. One still queued (never sent)
/// gets a cxid no server ever logged, and so resolves as never applied. Open requests of a
/// handle invoked before its session was known (a broker queues its first creates before it
/// connects) take the handle's session, from any of its records that names it.
fn infer_open_cxids(spans: &mut [Span<'_>]) {
    let handle = |s: &Span| s.op_id >> 32;
    // Per handle: its session (from any record that knows it) and its highest known cxid.
    let mut handles: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for s in spans.iter() {
        let h = handles.entry(handle(s)).or_default();
        if s.session != 0 {
            h.0 = s.session;
        }
        h.1 = h.1.max(s.cxid.unwrap_or(0));
    }
    // `Ops::spans` lists the open ones last, in op-id order.
    for s in spans.iter_mut().filter(|s| s.cxid.is_none()) {
        let h = handles
            .get_mut(&handle(s))
            .expect("every span's handle was counted");
        h.1 += 1;
        s.cxid = Some(h.1);
        s.session = h.0;
    }
}

/// The fate of an unknown write, from the system's record: `Some(Some(txn))` committed,
/// `Some(None)` certainly not committed by the end of the run, `None` not decidable.
fn resolve<'a>(span: &Span<'_>, record: &'a CommitRecord) -> Option<Option<&'a (Zxid, TxnOp)>> {
    if !matches!(span.outcome, None | Some(Outcome::Info(_))) || !span.op.is_write() {
        return None;
    }
    match span.cxid {
        // Never sent: never applied.
        Some(0) | None => Some(None),
        // An open request of a handle whose session no record names (none of its requests
        // completed): whether it was sent, and as what, is unknown.
        Some(_) if span.session == 0 => None,
        Some(cxid) => match record.get(span.session, cxid) {
            Some(txn) => Some(Some(txn)),
            None if !record.logged.contains(&(span.session, cxid)) => Some(None),
            // Logged somewhere, not seen committed: a new leader's initial history may hold
            // it under its snapshot, where the monitor cannot see it.
            None => None,
        },
    }
}

/// A resolved unknown write: applied (or refused) at its zxid with its window open, or
/// certainly not applied.
fn push_resolved(
    history: &mut History,
    process: u64,
    span: &Span<'_>,
    call: Call,
    resolved: Option<&(Zxid, TxnOp)>,
) {
    let session = (span.session != 0).then_some(span.session);
    let id = history.invoke(process, session, span.t0, call);
    let op = &mut history.ops[id];
    let Some((zxid, txn)) = resolved else {
        op.complete_ns = Some(span.t1.max(span.t0));
        op.outcome = HOutcome::Fail;
        return;
    };
    op.zxid = Some(*zxid);
    let (outcome, ret) = match txn {
        TxnOp::Error { code, .. } => (
            HOutcome::Fail,
            error_code(code).map(|code| Ret::Error { code }),
        ),
        TxnOp::Create { path, .. } if matches!(op.call, Call::CreateNode { .. }) => (
            HOutcome::Ok,
            Some(Ret::Created {
                path: path.to_string(),
            }),
        ),
        TxnOp::SetData { .. } => (HOutcome::Ok, None),
        _ => (HOutcome::Ok, Some(Ret::Done)),
    };
    op.outcome = outcome;
    op.ret = ret;
}

fn error_code(c: &ErrCode) -> Option<ZkError> {
    match c {
        ErrCode::NoNode => Some(ZkError::NoNode),
        ErrCode::NodeExists => Some(ZkError::NodeExists),
        ErrCode::BadVersion => Some(ZkError::BadVersion),
        _ => None,
    }
}

fn to_call(op: &Op) -> Option<Call> {
    let text = |d: &[u8]| String::from_utf8_lossy(d).into_owned();
    Some(match op {
        Op::Create {
            path,
            data,
            ephemeral: false,
            sequential: false,
        } => Call::Create {
            path: path.clone(),
            data: text(data),
        },
        Op::Create {
            path,
            data,
            ephemeral,
            sequential,
        } => Call::CreateNode {
            path: path.clone(),
            data: text(data),
            ephemeral: *ephemeral,
            sequential: *sequential,
        },
        Op::Delete { path, version } => Call::Delete {
            path: path.clone(),
            version: *version,
        },
        Op::SetData {
            path,
            data,
            version,
        } => Call::SetData {
            path: path.clone(),
            data: text(data),
            version: *version,
        },
        Op::Check { path, version } => Call::Check {
            path: path.clone(),
            version: *version,
        },
        Op::Multi(ops) => Call::Multi {
            ops: ops.iter().map(to_call).collect::<Option<Vec<Call>>>()?,
        },
        Op::GetData { path, .. } => Call::GetData { path: path.clone() },
        Op::Exists { path, .. } => Call::Exists { path: path.clone() },
        Op::GetChildren { path, .. } => Call::GetChildren { path: path.clone() },
        Op::Sync { .. } => return None,
    })
}

fn push_op(history: &mut History, process: u64, span: &Span<'_>, call: Call) {
    let Some(outcome) = span.outcome else {
        // Open at the end: unknown.
        return push_completed(history, process, span, call, HOutcome::Info, None);
    };
    let (outcome, ret) = match outcome {
        Outcome::Ok(OpResult::Err(c)) => (
            HOutcome::Fail,
            error_code(c).map(|code| Ret::Error { code }),
        ),
        Outcome::Ok(OpResult::MultiFailed(per_op)) => {
            // The failing op's code (those after it answer RUNTIMEINCONSISTENCY).
            let code = per_op.iter().flatten().next().and_then(error_code);
            (HOutcome::Fail, code.map(|code| Ret::Error { code }))
        }
        Outcome::Ok(OpResult::Created { path, .. }) if matches!(call, Call::CreateNode { .. }) => (
            HOutcome::Ok,
            Some(Ret::Created {
                path: path.to_string(),
            }),
        ),
        Outcome::Ok(r) => (HOutcome::Ok, to_ret(r)),
        Outcome::Fail(name) => {
            // The record names the code as its Debug form does (`Record::complete`).
            let parsed = match name.as_str() {
                "NoNode" => Some(ErrCode::NoNode),
                "NodeExists" => Some(ErrCode::NodeExists),
                "BadVersion" => Some(ErrCode::BadVersion),
                _ => None,
            };
            (
                HOutcome::Fail,
                parsed
                    .as_ref()
                    .and_then(error_code)
                    .map(|code| Ret::Error { code }),
            )
        }
        Outcome::Info(_) => (HOutcome::Info, None),
    };
    push_completed(history, process, span, call, outcome, ret);
}

fn push_completed(
    history: &mut History,
    process: u64,
    span: &Span<'_>,
    call: Call,
    outcome: HOutcome,
    ret: Option<Ret>,
) {
    let session = (span.session != 0).then_some(span.session);
    let id = history.invoke(process, session, span.t0, call);
    let zxid = if outcome == HOutcome::Info {
        None
    } else {
        span.zxid
    };
    history.complete(id, span.t1.max(span.t0), outcome, ret, zxid);
}

fn to_ret(r: &OpResult) -> Option<Ret> {
    Some(match r {
        OpResult::Created { .. }
        | OpResult::Deleted
        | OpResult::Synced
        | OpResult::Multi(_)
        | OpResult::Checked => Ret::Done,
        OpResult::SetStat(stat) => Ret::Stat {
            version: stat.version,
        },
        OpResult::Data { data, stat } => Ret::Data {
            data: String::from_utf8_lossy(data).into_owned(),
            version: stat.version,
        },
        OpResult::Exists(stat) => Ret::Exists {
            version: stat.map(|s| s.version),
        },
        OpResult::Children(names) => {
            let mut children = names.clone();
            children.sort();
            Ret::Children { children }
        }
        OpResult::MultiFailed(_) | OpResult::Err(_) => return None,
    })
}

/// Session order and durability of acknowledged writes for one client, against the
/// monitor's record of committed txns (`committed`: zxid -> the (session, cxid) of the txn
/// committed there) and `survivor`, which answers whether the txn with this (zxid,
/// session, cxid) is still the one the servers hold at the end of the run.
pub fn check_client_history<N>(
    sim: &Sim<N>,
    id: NodeId,
    ops: &Ops<'_>,
    committed: &BTreeMap<Zxid, (u64, u64)>,
    survivor: &dyn Fn(Zxid, u64, u64) -> Result<(), String>,
) -> Vec<Violation>
where
    N: Node,
    N::Msg: Hash + Debug,
{
    let mut out = Vec::new();
    if let Some((op, session)) = ops.completed().find_map(|(_, op, d)| {
        let moved = session_moved_answer(d.outcome);
        moved.then_some((op, d.session))
    }) {
        let msg = format!(
            "{op:?} (session {session:#x}) was answered SESSIONMOVED on an open connection"
        );
        out.push(safety_violation(sim, "zk-session-moved-unseen", id, msg));
    }
    // (session, highest zxid it saw): as with the real client, a new session (a new
    // handle) starts from zero.
    let mut seen: (u64, Zxid) = (0, 0);
    for (_, op, d) in ops.completed() {
        let (session, cxid) = (d.session, d.cxid);
        let (Outcome::Ok(_), Some(z)) = (d.outcome, d.zxid) else {
            continue;
        };
        if session != seen.0 {
            seen = (session, 0);
        }
        let seen = &mut seen.1;
        if z < *seen {
            let msg = format!("{op:?} answered with zxid {z:#x} after the client saw {seen:#x}");
            out.push(safety_violation(sim, "zk-session-order", id, msg));
            break;
        }
        *seen = z;
        if !op.is_write() {
            continue;
        }
        if let Err(why) = acked_write_survives(committed, survivor, z, session, cxid) {
            let msg = format!(
                "{op:?} (session {session:#x}, cxid {cxid}) was answered ok at zxid {z:#x}, {why}"
            );
            out.push(safety_violation(sim, "zk-acked-write-durable", id, msg));
            break;
        }
    }
    out
}

/// How `Record::complete` writes a SESSIONMOVED failure (`{:?}` of the code; a test below
/// holds them equal): compared as text, so the check formats nothing per operation.
const SESSION_MOVED: &str = "SessionMoved";

/// `zk-session-moved-unseen`: did the client read a SESSIONMOVED answer? A ZooKeeper server
/// whose request fails so closes the connection instead of answering (ZOOKEEPER-710), so a
/// client only ever sees its connection drop: an answer means the client can be left
/// retrying on a connection whose every write the leader refuses.
fn session_moved_answer(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Fail(why) => why == SESSION_MOVED,
        Outcome::Ok(OpResult::Err(code)) => *code == ErrCode::SessionMoved,
        Outcome::Ok(OpResult::MultiFailed(per_op)) => per_op.contains(&Some(ErrCode::SessionMoved)),
        Outcome::Ok(_) | Outcome::Info(_) => false,
    }
}

/// `zk-acked-write-durable` for one write answered ok at `z`: this write's own txn (its
/// session and cxid) must be the one committed at z and still be there at the end; that
/// some txn was committed at z proves nothing.
pub fn acked_write_survives(
    committed: &BTreeMap<Zxid, (u64, u64)>,
    survivor: &dyn Fn(Zxid, u64, u64) -> Result<(), String>,
    z: Zxid,
    session: u64,
    cxid: u64,
) -> Result<(), String> {
    match committed.get(&z) {
        None => Err("which was never committed".to_string()),
        Some(ids) if *ids != (session, cxid) => Err(format!(
            "but the txn committed there is (session {:#x}, cxid {})",
            ids.0, ids.1
        )),
        Some(_) => survivor(z, session, cxid),
    }
}

/// A sync then a read of one client: the read must see every write that completed (ok)
/// before the sync was invoked, anywhere. Returns the violation and its witness (the stale
/// read and the write it missed among the operations on the path).
pub fn check_sync_reads<N>(
    sim: &Sim<N>,
    histories: &[(NodeId, &Ops<'_>)],
    record: &CommitRecord,
    servers: u32,
) -> Option<(Violation, Witness)>
where
    N: Node,
    N::Msg: Hash + Debug,
{
    let mut writes: Vec<(u64, Zxid)> = Vec::new();
    for (_, h) in histories {
        for (_, op, d) in h.completed() {
            if let (true, Outcome::Ok(_), Some(z)) = (op.is_write(), d.outcome, d.zxid) {
                writes.push((d.t1, z));
            }
        }
    }
    writes.sort();
    let mut prefix_max = Vec::with_capacity(writes.len());
    let mut m = 0;
    for (_, z) in &writes {
        m = m.max(*z);
        prefix_max.push(m);
    }
    for (id, h) in histories {
        let s: Vec<(u64, &Op, Done<'_>)> = h.completed().collect();
        for pair in s.windows(2) {
            let (sync_t0, Op::Sync { .. }, Done { outcome, .. }) = pair[0] else {
                continue;
            };
            let (_, Op::GetData { path, .. }, next) = pair[1] else {
                continue;
            };
            let (Outcome::Ok(_), Outcome::Ok(_), Some(read_z)) = (outcome, next.outcome, next.zxid)
            else {
                continue;
            };
            let i = writes.partition_point(|(t1, _)| *t1 < sync_t0);
            if i > 0 && prefix_max[i - 1] > read_z {
                let stale = StaleRead {
                    client: *id,
                    sync_t0,
                    path: path.clone(),
                    read_zxid: read_z,
                    write_zxid: prefix_max[i - 1],
                };
                let msg = stale.message();
                let violation = safety_violation(sim, "zk-sync-read", *id, msg);
                let procs: Vec<(u64, &Ops<'_>)> = histories
                    .iter()
                    .map(|(id, h)| (u64::from(id.0 - servers), *h))
                    .collect();
                let history = convert(&procs, record);
                return Some((violation, stale.witness(&history, servers)));
            }
        }
    }
    None
}

/// A sync+read that missed a write completed before the sync was invoked.
struct StaleRead {
    client: NodeId,
    sync_t0: u64,
    path: String,
    read_zxid: Zxid,
    write_zxid: Zxid,
}

impl StaleRead {
    fn message(&self) -> String {
        format!(
            "sync+read of {} saw zxid {:#x}, but {:#x} completed before the sync",
            self.path, self.read_zxid, self.write_zxid
        )
    }

    /// The witness: every operation on the path, the stale read and the write it missed.
    fn witness(&self, history: &History, servers: u32) -> Witness {
        let process = u64::from(self.client.0 - servers);
        let mut marks = Vec::new();
        for (i, op) in history.ops.iter().enumerate() {
            let culprit = op.process == process
                && op.invoke_ns == self.sync_t0
                && matches!(op.call, Call::SyncGetData { .. });
            let write = matches!(
                op.call,
                Call::Create { .. } | Call::SetData { .. } | Call::Delete { .. }
            );
            if culprit {
                marks.push((i, capture::Mark::Culprit));
            } else if write && op.zxid == Some(self.write_zxid) && op.outcome == HOutcome::Ok {
                marks.push((i, capture::Mark::Evidence));
            }
        }
        let explanation = format!(
            "{}: the write at zxid {:#x} (evidence) completed before the sync was invoked, \
             so the sync+read (culprit) must see it",
            self.message(),
            self.write_zxid
        );
        let node_of = move |p: u64| p as u32 + servers;
        capture::witness(
            "zk-sync-read",
            explanation,
            history,
            &self.path,
            &marks,
            &node_of,
        )
    }
}

#[cfg(test)]
mod tests;
