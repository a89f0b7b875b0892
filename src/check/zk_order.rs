//! ZooKeeper's client consistency model, checked per operation as ZooKeeper promises it.
//!
//! Models the guarantees of the ZooKeeper consistency-guarantees page (protocols.md A.10):
//! - writes (create / delete / setData, including the ones rejected with an error code, which
//!   the leader orders like any other request) are linearizable: checked with the znode spec,
//!   one path at a time;
//! - their zxid order agrees with real time: a write that completed before another was invoked
//!   has the smaller zxid, and no two writes share a zxid;
//! - plain reads are sequentially consistent per session: along a session (in completion
//!   order, since a session's replies come back in FIFO order) reported zxids never go
//!   backwards, a read never reports a zxid older than the session's own completed write (read
//!   your writes), a read never reports a zxid of a write invoked after the read completed, and
//!   a read returns exactly the tree state at the zxid the server reported: the state built by
//!   applying the acknowledged writes with zxid <= that zxid, in zxid order;
//! - in strict mode, sync+read operations (`sync_get_data`) are also checked for
//!   linearizability together with the writes. Real ZooKeeper can fail that check: `sync` is
//!   not a quorum operation (ZOOKEEPER-1675), so a deposed leader can answer it.
//!
//! Ephemeral and sequential creates, multi, getChildren and the closeSession txns (which
//! delete a session's ephemerals) involve more than one path. When every write's fate is
//! known (applied at a zxid, refused, or certainly not applied: the simulation resolves its
//! clients' unknown writes from its record of committed txns), `check::zk_tree` replays the
//! whole tree in zxid order and compares every read with it, and the per-path checks keep
//! only the linearizability search, to which a multi contributes one write per path. When
//! some write's outcome is unknown, the per-path checks below judge the single-path
//! operations on paths no ephemeral, sequential or multi operation touches, and a read is
//! compared with the tree only when its path has no write with an unknown outcome (or
//! without a zxid) invoked before the read completed. Such reads are counted as unchecked in
//! the witness, never failed. Operations without a session id use their process id as the
//! session. The tree is built from the history alone, so every write to a path that is read
//! must be recorded (a path also written by unrecorded clients, such as brokers registering
//! themselves, must be left out of the history).
//!
//! Depends on: `check::history`, `check::linearizable`, `check::spec::znode`,
//! `check::zk_tree`.

use std::collections::{BTreeMap, BTreeSet};

use super::history::{Call, History, Op, OpId, Outcome, Ret, ZkError};
use super::linearizable::{check_linearizable_ops, Budget, ModelError};
use super::spec::znode::Znode;
use super::spec::{SequentialSpec, ZnodeSpec};
use super::zk_tree::{check_tree, is_tree_write};
use super::{fill_windows, limit_per_kind, Verdict, Violation, Witness};

/// Options of the ZooKeeper checker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZkOptions {
    /// Check sync+read operations for linearizability together with the writes.
    pub strict: bool,
    /// Search budget of the linearizability part.
    pub budget: Budget,
}

/// Checks ZooKeeper's client consistency model (see the module doc).
pub fn check_zookeeper(history: &History, options: &ZkOptions) -> Result<Verdict, ModelError> {
    for (id, op) in history.ops.iter().enumerate() {
        if !in_model(&op.call) {
            let message = format!("the zookeeper model has no {:?}", op.call);
            return Err(ModelError { op: id, message });
        }
    }
    let complex = complex_paths(history);
    let mut violations = Vec::new();
    let (linearizable, lin_summary) = check_writes_linearizable(history, options, &complex)?;
    let mut unknown = None;
    match linearizable {
        Verdict::Invalid { violations: v } => violations.extend(v),
        Verdict::Unknown { reason } => unknown = Some(reason),
        Verdict::Valid { .. } => {}
    }
    let zxid_summary = check_zxid_realtime(history, &mut violations);
    let session_summary = check_sessions(history, &mut violations);
    // With every write's fate known, the whole tree is replayed (multi, ephemerals,
    // sequential names, getChildren); otherwise the per-path checks judge what they can.
    let whole_tree = check_tree(history, &mut violations);
    let per_path = whole_tree.is_none();
    let replay_summary = match whole_tree {
        Some(summary) => summary,
        None => check_zxid_replay(history, &complex, &mut violations)?,
    };
    let tree_summary = check_reads_against_tree(history, &complex, per_path, &mut violations);
    if !violations.is_empty() {
        let mut violations = limit_per_kind(violations);
        fill_windows(&mut violations, history);
        return Ok(Verdict::Invalid { violations });
    }
    if let Some(reason) = unknown {
        return Ok(Verdict::Unknown { reason });
    }
    let summary = format!(
        "{lin_summary}; {zxid_summary}; {replay_summary}; {session_summary}; {tree_summary}"
    );
    Ok(Verdict::Valid {
        witness: Witness::Checked { summary },
    })
}

/// Is the call one of the ZooKeeper model's operations?
fn in_model(call: &Call) -> bool {
    match call {
        Call::Multi { ops } => ops.iter().all(|c| {
            matches!(
                c,
                Call::Create { .. }
                    | Call::CreateNode { .. }
                    | Call::Delete { .. }
                    | Call::SetData { .. }
                    | Call::Check { .. }
            )
        }),
        Call::CreateNode { .. } | Call::GetChildren { .. } | Call::CloseSession { .. } => true,
        call => znode_path(call).is_some(),
    }
}

/// Paths the per-path checks cannot judge alone: ephemeral and sequential znodes (a
/// closeSession deletes the first, the parent's cversion names the second), and paths a
/// multi checks (its ops are split per path for the linearizability search, and a check
/// constrains nothing there). The whole-tree check covers them.
fn complex_paths(history: &History) -> BTreeSet<&str> {
    let mut out = BTreeSet::new();
    for op in &history.ops {
        // A multi's ops, or the one call (no list is built per operation).
        let calls: &[Call] = match &op.call {
            Call::Multi { ops } => ops,
            call => std::slice::from_ref(call),
        };
        for call in calls {
            match call {
                Call::CreateNode { path, .. } => {
                    out.insert(path.as_str());
                }
                Call::Check { path, .. } => {
                    out.insert(path.as_str());
                }
                _ => {}
            }
        }
        if let Some(Ret::Created { path }) = &op.ret {
            out.insert(path.as_str());
        }
    }
    out
}

/// The path of a single-path operation that the per-path checks judge.
fn simple_path<'a>(call: &'a Call, complex: &BTreeSet<&str>) -> Option<&'a str> {
    znode_path(call).filter(|p| !complex.contains(p))
}

fn znode_path(call: &Call) -> Option<&str> {
    match call {
        Call::Create { path, .. }
        | Call::Delete { path, .. }
        | Call::SetData { path, .. }
        | Call::GetData { path }
        | Call::Exists { path }
        | Call::SyncGetData { path } => Some(path),
        _ => None,
    }
}

fn is_write(call: &Call) -> bool {
    matches!(
        call,
        Call::Create { .. } | Call::Delete { .. } | Call::SetData { .. }
    )
}

/// Linearizability of the writes (and of sync+reads in strict mode), path by path.
fn check_writes_linearizable(
    history: &History,
    options: &ZkOptions,
    complex: &BTreeSet<&str>,
) -> Result<(Verdict, String), ModelError> {
    // The selection, in history order: an operation as recorded, or the part of a multi
    // built for one of its writes. Only the parts are built; the rest are referenced.
    let mut selected: Vec<OpId> = Vec::new();
    let mut picks: Vec<Option<usize>> = Vec::new();
    let mut parts: Vec<Op> = Vec::new();
    for (i, op) in history.ops.iter().enumerate() {
        let call = &op.call;
        if let Call::Multi { ops } = call {
            // An applied (or maybe applied) multi is, path by path, one write of each of
            // its paths at its point; a refused one applied nothing. Atomicity itself is
            // the whole-tree check's.
            if op.outcome == Outcome::Fail {
                continue;
            }
            for c in ops.iter().filter(|c| is_write(c)) {
                if simple_path(c, complex).is_some() {
                    let part = Op {
                        process: op.process,
                        session: op.session,
                        invoke_ns: op.invoke_ns,
                        complete_ns: op.complete_ns,
                        outcome: op.outcome,
                        call: c.clone(),
                        ret: None,
                        zxid: op.zxid,
                    };
                    selected.push(i);
                    picks.push(Some(parts.len()));
                    parts.push(part);
                }
            }
            continue;
        }
        if simple_path(call, complex).is_none() {
            continue;
        }
        if is_write(call) || (options.strict && matches!(call, Call::SyncGetData { .. })) {
            selected.push(i);
            picks.push(None);
        }
    }
    let sub: Vec<&Op> = selected
        .iter()
        .zip(&picks)
        .map(|(&i, pick)| pick.map_or(&history.ops[i], |k| &parts[k]))
        .collect();
    let verdict =
        check_linearizable_ops(&ZnodeSpec, &sub, &options.budget).map_err(|e| ModelError {
            op: selected[e.op],
            message: e.message,
        })?;
    let what = if options.strict {
        "writes and sync+reads"
    } else {
        "writes"
    };
    let summary = format!("{} {what} linearizable", sub.len());
    Ok((remap_verdict(verdict, &selected, history), summary))
}

/// Maps operation ids of a sub-history back to the full history, and names the violation
/// after the operation that could not be placed: a write, or (strict mode) a sync+read.
fn remap_verdict(verdict: Verdict, ids: &[OpId], history: &History) -> Verdict {
    let map = |v: &mut Vec<OpId>| v.iter_mut().for_each(|i| *i = ids[*i]);
    match verdict {
        Verdict::Valid {
            witness: Witness::Linearization { mut partitions },
        } => {
            for p in &mut partitions {
                map(&mut p.order);
                map(&mut p.not_applied);
            }
            Verdict::Valid {
                witness: Witness::Linearization { partitions },
            }
        }
        Verdict::Invalid { mut violations } => {
            for v in &mut violations {
                v.op = v.op.map(|i| ids[i]);
                map(&mut v.ops);
                map(&mut v.linearized);
                let sync_read = v.op.map(|id| &history.ops[id].call);
                v.kind = match sync_read {
                    Some(Call::SyncGetData { .. }) => "sync-read-not-linearizable".to_string(),
                    _ => "writes-not-linearizable".to_string(),
                };
            }
            Verdict::Invalid { violations }
        }
        other => other,
    }
}

/// Writes with a zxid must be numbered in real-time order, each with its own zxid.
fn check_zxid_realtime(history: &History, violations: &mut Vec<Violation>) -> String {
    // Writes with a zxid; an applied write whose answer was lost (open, its zxid known from
    // the system's record) constrains only through its invocation.
    let mut writes: Vec<(u64, OpId)> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| is_tree_write(&op.call) && op.outcome != Outcome::Info)
        .filter_map(|(i, op)| op.zxid.map(|z| (z, i)))
        .collect();
    writes.sort_unstable();
    for pair in writes.windows(2) {
        if pair[0].0 == pair[1].0 {
            let message = format!(
                "writes {} and {} both got zxid {:#x}",
                pair[0].1, pair[1].1, pair[0].0
            );
            let ops = vec![pair[0].1, pair[1].1];
            violations.push(Violation::new(
                "duplicate-zxid",
                message,
                Some(pair[1].1),
                ops,
            ));
        }
    }
    // Walk the writes in invocation order; `done` holds the writes completed before the
    // current invocation, so the largest zxid among them must be below the current zxid.
    let mut by_invoke: Vec<(u64, u64, OpId)> = writes
        .iter()
        .map(|&(z, i)| (history.ops[i].invoke_ns, z, i))
        .collect();
    by_invoke.sort_unstable();
    let mut by_end: Vec<(u64, u64, OpId)> = writes
        .iter()
        .filter_map(|&(z, i)| history.ops[i].end_ns().map(|end| (end, z, i)))
        .collect();
    by_end.sort_unstable();
    let mut done = 0;
    let mut max_done: Option<(u64, OpId)> = None;
    for &(invoke, zxid, id) in &by_invoke {
        while done < by_end.len() && by_end[done].0 < invoke {
            let (_, z, i) = by_end[done];
            if max_done.is_none_or(|(m, _)| z > m) {
                max_done = Some((z, i));
            }
            done += 1;
        }
        if let Some((m, earlier)) = max_done {
            if m > zxid {
                let message = format!(
                    "write {earlier} (zxid {m:#x}) completed before write {id} was invoked, yet \
                     {id} got the smaller zxid {zxid:#x}: the zxid order contradicts real time"
                );
                violations.push(Violation::new(
                    "zxid-realtime",
                    message,
                    Some(id),
                    vec![earlier, id],
                ));
            }
        }
    }
    format!(
        "{} writes numbered by zxid in real-time order",
        writes.len()
    )
}

/// ZooKeeper applies writes in zxid order, so on every path whose writes all carry a zxid
/// (none open, none without one) that order must itself be a legal execution: each write,
/// replayed in zxid order from an absent znode, returns what it returned.
fn check_zxid_replay(
    history: &History,
    complex: &BTreeSet<&str>,
    violations: &mut Vec<Violation>,
) -> Result<String, ModelError> {
    let mut paths: BTreeMap<&str, Option<Vec<(u64, OpId)>>> = BTreeMap::new();
    for (id, op) in history.ops.iter().enumerate() {
        if let Call::Multi { ops } = &op.call {
            // A multi's effect on a path is not replayed here: leave its paths out.
            for c in ops {
                if let Some(path) = znode_path(c) {
                    paths.insert(path, None);
                }
            }
            continue;
        }
        if !is_write(&op.call) {
            continue;
        }
        let Some(path) = simple_path(&op.call, complex) else {
            continue;
        };
        let writes = paths.entry(path).or_insert_with(|| Some(Vec::new()));
        match (op.end_ns(), op.zxid) {
            (Some(_), Some(zxid)) => {
                if let Some(w) = writes.as_mut() {
                    w.push((zxid, id));
                }
            }
            // An open write, or one without a zxid: its place in the order is unknown.
            _ if op.outcome != Outcome::Fail || op.ret.is_some() => *writes = None,
            _ => {}
        }
    }
    let spec = ZnodeSpec;
    let mut replayed = 0;
    for (path, writes) in paths {
        let Some(mut writes) = writes else { continue };
        writes.sort_unstable();
        replayed += 1;
        let mut state = spec.init();
        for (zxid, id) in writes {
            let compiled = spec
                .compile(&history.ops[id])
                .map_err(|message| ModelError { op: id, message })?;
            let Some((_, compiled)) = compiled else {
                continue;
            };
            match spec.step(&state, &compiled) {
                Some(next) => state = next,
                None => {
                    let message = format!(
                        "replaying the writes of {path} in zxid order, write {id} (zxid \
                         {zxid:#x}: {}) cannot return what it returned in state {state:?}",
                        history.ops[id].summary()
                    );
                    let mut v = Violation::new("zxid-order-illegal", message, Some(id), vec![id]);
                    v.key = Some(path.to_string());
                    v.state = Some(format!("{state:?}"));
                    violations.push(v);
                    break;
                }
            }
        }
    }
    Ok(format!("{replayed} paths replay legally in zxid order"))
}

/// Per session, in completion order: zxids never go backwards; reads see the session's own
/// completed writes.
fn check_sessions(history: &History, violations: &mut Vec<Violation>) -> String {
    let mut sessions: BTreeMap<u64, Vec<(u64, OpId)>> = BTreeMap::new();
    for (i, op) in history.ops.iter().enumerate() {
        // A closeSession is the system's txn, not an operation of the session's client.
        if matches!(op.call, Call::CloseSession { .. }) {
            continue;
        }
        if let (Some(end), Some(_)) = (op.end_ns(), op.zxid) {
            let session = op.session.unwrap_or(op.process);
            sessions.entry(session).or_default().push((end, i));
        }
    }
    for (session, ops) in &mut sessions {
        ops.sort_unstable();
        check_session(history, *session, ops, violations);
    }
    format!(
        "{} sessions: zxids monotonic, reads see their own writes",
        sessions.len()
    )
}

fn check_session(
    history: &History,
    session: u64,
    ops: &[(u64, OpId)],
    violations: &mut Vec<Violation>,
) {
    let mut max_seen: Option<(u64, OpId)> = None;
    // The session's acknowledged writes in completion order, as (end, largest zxid so far,
    // its write): the writes completed before a read's invocation are a prefix.
    let mut own_writes: Vec<(u64, u64, OpId)> = Vec::new();
    for &(_, id) in ops {
        let op = &history.ops[id];
        let zxid = op.zxid.expect("filtered");
        if !is_tree_write(&op.call) {
            let before = own_writes.partition_point(|w| w.0 < op.invoke_ns);
            let own = before.checked_sub(1).map(|i| own_writes[i]);
            if let Some((_, wz, w)) = own.filter(|w| w.1 > zxid) {
                let message = format!(
                    "session {session:#x} read at zxid {zxid:#x} after its own write {w} \
                     completed at zxid {wz:#x}: it did not read its own write"
                );
                violations.push(Violation::new(
                    "read-your-writes",
                    message,
                    Some(id),
                    vec![w, id],
                ));
                continue;
            }
        }
        if let Some((m, earlier)) = max_seen.filter(|m| m.0 > zxid) {
            let message = format!(
                "session {session:#x} saw zxid {m:#x} (op {earlier}) and later zxid {zxid:#x}: \
                 its view went back in time"
            );
            violations.push(Violation::new(
                "nonmonotonic-zxid",
                message,
                Some(id),
                vec![earlier, id],
            ));
        }
        if max_seen.is_none_or(|m| zxid > m.0) {
            max_seen = Some((zxid, id));
        }
        if is_tree_write(&op.call) && op.outcome == Outcome::Ok {
            let end = op.end_ns().expect("completed");
            let prior = own_writes.last().copied().filter(|w| w.1 >= zxid);
            own_writes.push(prior.map_or((end, zxid, id), |(_, z, w)| (end, z, w)));
        }
    }
}

/// What the tree knows about one path: acknowledged writes with zxids, in zxid order, and the
/// invocation times of writes whose effect is unknown.
#[derive(Default)]
struct PathLog {
    /// (zxid, state after the write, write id).
    states: Vec<(u64, Option<Znode>, OpId)>,
    /// Invocation times of writes with an unknown effect or no zxid.
    uncertain_invokes: Vec<u64>,
}

fn build_tree<'a>(history: &'a History, complex: &BTreeSet<&str>) -> BTreeMap<&'a str, PathLog> {
    let mut paths: BTreeMap<&str, PathLog> = BTreeMap::new();
    let mut writes: Vec<(u64, OpId)> = Vec::new();
    for (i, op) in history.ops.iter().enumerate() {
        if let Call::Multi { ops } = &op.call {
            // Not replayed per path: its paths' reads are not comparable here.
            for c in ops {
                if let Some(path) = znode_path(c) {
                    paths.entry(path).or_default().uncertain_invokes.push(0);
                }
            }
            continue;
        }
        if !is_write(&op.call) {
            continue;
        }
        let Some(path) = simple_path(&op.call, complex) else {
            continue;
        };
        let log = paths.entry(path).or_default();
        let rejected = matches!(op.ret, Some(Ret::Error { .. }));
        match (op.outcome, op.zxid) {
            (Outcome::Ok, Some(z)) if !rejected => writes.push((z, i)),
            (Outcome::Ok, None) | (Outcome::Info, _) if !rejected => {
                log.uncertain_invokes.push(op.invoke_ns)
            }
            _ => {}
        }
    }
    writes.sort_unstable();
    for (zxid, i) in writes {
        let op = &history.ops[i];
        let log = paths
            .entry(znode_path(&op.call).expect("checked"))
            .or_default();
        let before = log.states.last().and_then(|s| s.1.clone());
        let after = apply_write(&op.call, &op.ret, before);
        log.states.push((zxid, after, i));
    }
    paths
}

/// The path's state after an acknowledged write (applied blindly: legality is the
/// linearizability check's job).
fn apply_write(call: &Call, ret: &Option<Ret>, before: Option<Znode>) -> Option<Znode> {
    match call {
        Call::Create { data, .. } => Some(Znode {
            data: std::rc::Rc::from(data.as_str()),
            version: 0,
        }),
        Call::Delete { .. } => None,
        Call::SetData { data, .. } => {
            let version = match ret {
                Some(Ret::Stat { version }) => *version,
                _ => before.map_or(0, |z| z.version + 1),
            };
            Some(Znode {
                data: std::rc::Rc::from(data.as_str()),
                version,
            })
        }
        _ => before,
    }
}

/// What a read observed, in the tree's terms: `Some(state)` or `None` when not comparable.
fn observed(op: &Op) -> Option<(bool, Option<Znode>)> {
    // (is_exists, state) - exists only observes presence and version.
    match (&op.call, &op.ret) {
        (Call::Exists { .. }, Some(Ret::Exists { version })) => Some((
            true,
            version.map(|version| Znode {
                data: std::rc::Rc::from(""),
                version,
            }),
        )),
        (_, Some(Ret::Data { data, version })) => Some((
            false,
            Some(Znode {
                data: std::rc::Rc::from(data.as_str()),
                version: *version,
            }),
        )),
        (
            _,
            Some(Ret::Error {
                code: ZkError::NoNode,
            }),
        ) => Some((false, None)),
        _ => None,
    }
}

/// Every read with a zxid returns exactly the tree at that zxid, and never a zxid from the
/// future.
/// `per_path`: compare reads with the per-path tree too (when the whole-tree check could
/// not run); the check for reads from the future runs either way.
fn check_reads_against_tree(
    history: &History,
    complex: &BTreeSet<&str>,
    per_path: bool,
    violations: &mut Vec<Violation>,
) -> String {
    let tree = build_tree(history, complex);
    let future = future_index(history);
    let (mut checked, mut unchecked) = (0usize, 0usize);
    for (id, op) in history.ops.iter().enumerate() {
        if is_tree_write(&op.call) || op.outcome == Outcome::Info {
            continue;
        }
        let (Some(zxid), Some(end)) = (op.zxid, op.end_ns()) else {
            unchecked += 1;
            continue;
        };
        let covered = future.partition_point(|f| f.0 <= zxid);
        let latest = covered.checked_sub(1).map(|i| future[i]);
        if let Some((_, invoke, w)) = latest.filter(|f| f.1 > end) {
            let message = format!(
                "read {id} reported zxid {zxid:#x}, which covers write {w} invoked at {invoke}, \
                 after the read completed: a read from the future"
            );
            violations.push(Violation::new(
                "read-from-future",
                message,
                Some(id),
                vec![w, id],
            ));
            continue;
        }
        if !per_path {
            continue;
        }
        let (Some(path), Some((exists, seen))) = (simple_path(&op.call, complex), observed(op))
        else {
            unchecked += 1;
            continue;
        };
        let log = tree.get(path);
        if log.is_some_and(|l| l.uncertain_invokes.iter().any(|&t| t <= end)) {
            unchecked += 1;
            continue;
        }
        checked += 1;
        let (expected, source) = state_at(log, zxid);
        let matches = match (&expected, &seen) {
            (Some(e), Some(s)) if exists => e.version == s.version,
            _ => expected == seen,
        };
        if !matches {
            let message = format!(
                "read {id} of {path} at zxid {zxid:#x} returned {seen:?}, but the tree at that \
                 zxid holds {expected:?}"
            );
            let mut ops: Vec<OpId> = source.into_iter().collect();
            ops.push(id);
            let mut v = Violation::new("read-not-tree-state", message, Some(id), ops);
            v.key = Some(path.to_string());
            v.state = Some(format!("{expected:?}"));
            violations.push(v);
        }
    }
    if !per_path {
        return "no read from the future".to_string();
    }
    format!("{checked} reads equal the tree at their zxid ({unchecked} not comparable)")
}

/// The state of a path at `zxid` and the write that made it.
fn state_at(log: Option<&PathLog>, zxid: u64) -> (Option<Znode>, Option<OpId>) {
    let Some(log) = log else {
        return (None, None);
    };
    let n = log.states.partition_point(|s| s.0 <= zxid);
    match n {
        0 => (None, None),
        n => (log.states[n - 1].1.clone(), Some(log.states[n - 1].2)),
    }
}

/// Acknowledged writes sorted by zxid, as (zxid, latest invocation time among the writes of
/// zxid <= this one, that write): its last entry with zxid <= z answers "was a write of zxid
/// <= z invoked after t?".
fn future_index(history: &History) -> Vec<(u64, u64, OpId)> {
    let mut writes: Vec<(u64, u64, OpId)> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| is_tree_write(&op.call) && op.outcome == Outcome::Ok)
        .filter_map(|(i, op)| op.zxid.map(|z| (z, op.invoke_ns, i)))
        .collect();
    writes.sort_unstable();
    for i in 1..writes.len() {
        if writes[i - 1].1 > writes[i].1 {
            (writes[i].1, writes[i].2) = (writes[i - 1].1, writes[i - 1].2);
        }
    }
    writes
}
