//! The whole ZooKeeper tree at every zxid, rebuilt from a history whose every write has a
//! known fate: the checks of [`super::zk_order`] that need more than one path at a time.
//!
//! Models: znodes with data, a data version, a child version (cversion: +1 per child created
//! or deleted) and an ephemeral owner, under a root `/` that always exists. The writes are
//! replayed in zxid order (ZooKeeper applies them in that order on every server):
//! - create (persistent, ephemeral, sequential: a sequential name is the requested path plus
//!   the parent's cversion in ten digits), delete, setData, and multi, whose ops apply
//!   together at one zxid or not at all;
//! - closeSession deletes every ephemeral of its session, in the same txn (A.9).
//!
//! Two checks follow from the replay:
//! - `zxid-order-illegal` (the per-path replay's name too): each write returns what it
//!   returned in the state its zxid finds (an ok write's conditions hold, a rejected one's
//!   error is the one the state gives, a sequential name is the parent's cversion);
//! - `read-not-tree-state`: every read that reported a zxid (getData, exists, getChildren,
//!   sync+getData) returns exactly the tree at that zxid: a getChildren that misses a
//!   committed child, a multi seen half-applied, an ephemeral read after its session's
//!   closeSession, all differ from it.
//!
//! The replay needs every write's fate: applied at a known zxid, rejected, or certainly not
//! applied. A history with a write of unknown outcome (an open write without a zxid) is not
//! comparable here ([`check_tree`] returns `None`) and the per-path checks judge it instead.
//! The simulation resolves its clients' unknown writes from its own record of committed
//! txns before it checks, so its histories always qualify.
//!
//! Depends on: `check::history` and the violation type.

use std::collections::BTreeMap;

use super::history::{Call, History, Op, OpId, Outcome, Ret, ZkError};
use super::Violation;

/// One znode of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    data: String,
    version: i32,
    cversion: i32,
    /// The owning session of an ephemeral, `None` for a persistent znode.
    owner: Option<u64>,
}

/// The tree: every znode by path (the root included).
#[derive(Clone, Debug)]
struct Tree {
    nodes: BTreeMap<String, Node>,
}

/// Why a write cannot apply: the error ZooKeeper would answer, when it has a name here.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Refusal {
    Code(ZkError),
    /// NotEmpty, NoChildrenForEphemerals, a bad path: refused for a reason this model names
    /// only in words.
    Other(String),
}

fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn version_ok(expected: i32, actual: i32) -> bool {
    expected == -1 || expected == actual
}

impl Tree {
    fn new() -> Tree {
        let root = Node {
            data: String::new(),
            version: 0,
            cversion: 0,
            owner: None,
        };
        Tree {
            nodes: BTreeMap::from([("/".to_string(), root)]),
        }
    }

    /// The children's names of `path`, sorted.
    fn children(&self, path: &str) -> Vec<String> {
        self.child_names(path).map(str::to_string).collect()
    }

    /// [`children`](Self::children) without copying the names: the znodes after `path/`
    /// in path order whose parent is `path`.
    fn child_names<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let mut prefix = String::with_capacity(path.len() + 1);
        prefix.push_str(path);
        if path != "/" {
            prefix.push('/');
        }
        self.nodes
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(p, _)| p.as_str())
            .take_while(move |p| p.starts_with(&prefix))
            .filter(move |p| parent_of(p) == Some(path))
            .map(name_of)
    }

    fn bump_parent(&mut self, path: &str) {
        if let Some(parent) = parent_of(path).and_then(|p| self.nodes.get_mut(p)) {
            parent.cversion += 1;
        }
    }

    /// Applies one write as ZooKeeper's prep stage and DataTree would: `Err` says why it
    /// is refused (and nothing changed). `created`: a sequential create's reported name.
    fn apply(
        &mut self,
        session: Option<u64>,
        call: &Call,
        created: Option<&str>,
    ) -> Result<(), Refusal> {
        self.apply_or_judge(session, call, created, true)
    }

    /// Whether the write would apply, without changing the tree: the verdict of
    /// [`apply`](Self::apply), through the same code, which stops short of every change
    /// (a refused write is judged this way instead of on a copy of the whole tree).
    fn judge(
        &mut self,
        session: Option<u64>,
        call: &Call,
        created: Option<&str>,
    ) -> Result<(), Refusal> {
        self.apply_or_judge(session, call, created, false)
    }

    /// [`apply`](Self::apply) when `commit`, else [`judge`](Self::judge).
    fn apply_or_judge(
        &mut self,
        session: Option<u64>,
        call: &Call,
        created: Option<&str>,
        commit: bool,
    ) -> Result<(), Refusal> {
        match call {
            Call::Create { path, data } => self.create(path, data, None, None, commit),
            Call::CreateNode {
                path,
                data,
                ephemeral,
                sequential,
            } => {
                let owner = if *ephemeral {
                    Some(session.ok_or_else(|| {
                        Refusal::Other("an ephemeral create without a session".into())
                    })?)
                } else {
                    None
                };
                let seq = sequential.then_some(created);
                self.create(path, data, owner, seq, commit)
            }
            Call::Delete { path, version } => {
                let node = self.nodes.get(path).ok_or(Refusal::Code(ZkError::NoNode))?;
                if !version_ok(*version, node.version) {
                    return Err(Refusal::Code(ZkError::BadVersion));
                }
                if self.child_names(path).next().is_some() {
                    return Err(Refusal::Other("NotEmpty".into()));
                }
                if !commit {
                    return Ok(());
                }
                self.nodes.remove(path);
                self.bump_parent(path);
                Ok(())
            }
            Call::SetData {
                path,
                data,
                version,
            } => {
                let node = self
                    .nodes
                    .get_mut(path)
                    .ok_or(Refusal::Code(ZkError::NoNode))?;
                if !version_ok(*version, node.version) {
                    return Err(Refusal::Code(ZkError::BadVersion));
                }
                if !commit {
                    return Ok(());
                }
                node.data = data.clone();
                node.version += 1;
                Ok(())
            }
            Call::Check { path, version } => {
                let node = self.nodes.get(path).ok_or(Refusal::Code(ZkError::NoNode))?;
                if !version_ok(*version, node.version) {
                    return Err(Refusal::Code(ZkError::BadVersion));
                }
                Ok(())
            }
            Call::Multi { ops } => {
                // Each op sees the ones before it: on a copy, kept only if all apply.
                let mut scratch = self.clone();
                for op in ops {
                    scratch.apply(session, op, None)?;
                }
                if commit {
                    *self = scratch;
                }
                Ok(())
            }
            Call::CloseSession { session } => {
                if !commit {
                    return Ok(());
                }
                let owned: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.owner == Some(*session))
                    .map(|(p, _)| p.clone())
                    .collect();
                for path in owned {
                    self.nodes.remove(&path);
                    self.bump_parent(&path);
                }
                Ok(())
            }
            other => Err(Refusal::Other(format!("{other:?} is not a write"))),
        }
    }

    /// `sequential`: `Some(reported name)` for a sequential create.
    fn create(
        &mut self,
        path: &str,
        data: &str,
        owner: Option<u64>,
        sequential: Option<Option<&str>>,
        commit: bool,
    ) -> Result<(), Refusal> {
        let parent_path = parent_of(path).ok_or(Refusal::Code(ZkError::NodeExists))?;
        let parent = self
            .nodes
            .get(parent_path)
            .ok_or(Refusal::Code(ZkError::NoNode))?;
        if parent.owner.is_some() {
            return Err(Refusal::Other("NoChildrenForEphemerals".into()));
        }
        let actual = match sequential {
            None => path.to_string(),
            Some(reported) => {
                let named = format!("{path}{:010}", parent.cversion);
                if let Some(r) = reported.filter(|r| *r != named) {
                    return Err(Refusal::Other(format!(
                        "the parent's cversion names it {named}, not {r}"
                    )));
                }
                named
            }
        };
        if self.nodes.contains_key(&actual) {
            return Err(Refusal::Code(ZkError::NodeExists));
        }
        if !commit {
            return Ok(());
        }
        let node = Node {
            data: data.to_string(),
            version: 0,
            cversion: 0,
            owner,
        };
        self.nodes.insert(actual.clone(), node);
        self.bump_parent(&actual);
        Ok(())
    }
}

/// Is this call a write (a txn) of the tree model?
pub fn is_tree_write(call: &Call) -> bool {
    matches!(
        call,
        Call::Create { .. }
            | Call::CreateNode { .. }
            | Call::Delete { .. }
            | Call::SetData { .. }
            | Call::Multi { .. }
            | Call::CloseSession { .. }
    )
}

/// A write's fate, when the history knows it.
enum Fate {
    /// Applied at this zxid.
    Applied(u64),
    /// Evaluated at this zxid and refused with this code.
    Refused(u64),
    /// Did not apply; nothing observed.
    None,
}

fn fate(op: &Op) -> Option<Fate> {
    match (op.outcome, op.zxid, &op.ret) {
        (Outcome::Ok, Some(z), _) => Some(Fate::Applied(z)),
        (Outcome::Fail, Some(z), Some(Ret::Error { .. })) => Some(Fate::Refused(z)),
        (Outcome::Fail, _, _) => Some(Fate::None),
        _ => None,
    }
}

/// Replays the writes in zxid order and compares every read that reported a zxid with the
/// tree at that zxid. `None` when some write's fate is unknown (see the module doc);
/// otherwise the summary of what was checked, violations pushed to `violations`.
pub fn check_tree(history: &History, violations: &mut Vec<Violation>) -> Option<String> {
    let mut writes: Vec<(u64, OpId, bool)> = Vec::new();
    for (id, op) in history.ops.iter().enumerate() {
        if !is_tree_write(&op.call) {
            continue;
        }
        match fate(op)? {
            Fate::Applied(z) => writes.push((z, id, true)),
            Fate::Refused(z) => writes.push((z, id, false)),
            Fate::None => {}
        }
    }
    writes.sort_unstable();
    let mut reads: Vec<(u64, OpId)> = history
        .ops
        .iter()
        .enumerate()
        .filter(|(_, op)| op.outcome != Outcome::Info && comparable_read(op))
        .filter_map(|(id, op)| op.zxid.map(|z| (z, id)))
        .collect();
    reads.sort_unstable();
    let mut tree = Tree::new();
    let mut next = 0;
    let mut replay_failed = false;
    let mut checked = 0usize;
    // The last applied write per path (replay position, op): it explains a read's mismatch.
    let mut last_writer: BTreeMap<&str, (usize, OpId)> = BTreeMap::new();
    for read in reads.iter().copied().map(Some).chain([None]) {
        let upto = read.map_or(u64::MAX, |r| r.0);
        while next < writes.len() && writes[next].0 <= upto {
            let (wz, wid, applied) = writes[next];
            next += 1;
            if replay_failed {
                continue;
            }
            if let Err(why) = replay_write(&mut tree, &history.ops[wid], applied) {
                let message = format!(
                    "replaying every write in zxid order, write {wid} (zxid {wz:#x}: {}) \
                     cannot return what it returned: {why}",
                    history.ops[wid].summary()
                );
                violations.push(Violation::new(
                    "zxid-order-illegal",
                    message,
                    Some(wid),
                    vec![wid],
                ));
                // The tree is no longer the servers' tree: later comparisons would only
                // repeat this violation.
                replay_failed = true;
            } else if applied {
                let op = &history.ops[wid];
                for path in written_paths(&op.call, created_path(op)) {
                    last_writer.insert(path, (next, wid));
                }
            }
        }
        let Some((z, rid)) = read else {
            break;
        };
        if replay_failed {
            continue;
        }
        checked += 1;
        if let Some(msg) = read_mismatch(&tree, &history.ops[rid]) {
            let op = &history.ops[rid];
            let message = format!("read {rid} at zxid {z:#x}: {msg}");
            let path = read_path(&op.call);
            let writer = path.and_then(|p| {
                let child_of = format!("{}/", p.trim_end_matches('/'));
                (last_writer.iter())
                    .filter(|(k, _)| **k == p || k.starts_with(&child_of))
                    .map(|(_, w)| *w)
                    .max()
            });
            let mut ops: Vec<OpId> = writer.map(|(_, w)| w).into_iter().collect();
            ops.push(rid);
            let mut v = Violation::new("read-not-tree-state", message, Some(rid), ops);
            v.key = path.map(str::to_string);
            violations.push(v);
        }
    }
    Some(format!(
        "{} writes replay legally in zxid order over the whole tree; {checked} reads equal \
         the tree at their zxid",
        writes.len()
    ))
}

fn replay_write(tree: &mut Tree, op: &Op, applied: bool) -> Result<(), String> {
    let created = match &op.ret {
        Some(Ret::Created { path }) => Some(path.as_str()),
        _ => None,
    };
    let result = if applied {
        tree.apply(op.session, &op.call, created)
    } else {
        // A refused write changes nothing: judged without applying it.
        tree.judge(op.session, &op.call, created)
    };
    match (applied, result, &op.ret) {
        (true, Ok(()), ret) => check_stat(tree, op, ret),
        (true, Err(r), _) => Err(format!("it was applied, but the state refuses it ({r:?})")),
        (false, Err(Refusal::Code(c)), Some(Ret::Error { code })) if c == *code => Ok(()),
        // A refused multi answers with its failing op's code; which op fails first is the
        // tree's business, that one does is what the replay can hold it to.
        (false, Err(_), _) if matches!(op.call, Call::Multi { .. }) => Ok(()),
        (false, Err(r), ret) => Err(format!(
            "it was refused with {ret:?}, the state gives {r:?}"
        )),
        (false, Ok(()), ret) => Err(format!("it was refused with {ret:?}, the state allows it")),
    }
}

/// An applied setData that reported its new version must report the tree's.
fn check_stat(tree: &Tree, op: &Op, ret: &Option<Ret>) -> Result<(), String> {
    if let (Call::SetData { path, .. }, Some(Ret::Stat { version })) = (&op.call, ret) {
        let now = tree.nodes.get(path).map(|n| n.version);
        if now != Some(*version) {
            return Err(format!(
                "it reported version {version}, the tree has {now:?}"
            ));
        }
    }
    Ok(())
}

/// The name a create was given (a sequential one's differs from the requested path).
fn created_path(op: &Op) -> Option<&str> {
    match &op.ret {
        Some(Ret::Created { path }) => Some(path.as_str()),
        _ => None,
    }
}

/// The paths an applied write changes (a multi's ops all together).
fn written_paths<'a>(call: &'a Call, created: Option<&'a str>) -> Vec<&'a str> {
    match call {
        Call::Create { path, .. } | Call::CreateNode { path, .. } => {
            vec![created.unwrap_or(path.as_str())]
        }
        Call::Delete { path, .. } | Call::SetData { path, .. } => vec![path.as_str()],
        Call::Multi { ops } => ops.iter().flat_map(|o| written_paths(o, None)).collect(),
        _ => Vec::new(),
    }
}

fn read_path(call: &Call) -> Option<&str> {
    match call {
        Call::GetData { path }
        | Call::SyncGetData { path }
        | Call::Exists { path }
        | Call::GetChildren { path } => Some(path),
        _ => None,
    }
}

fn comparable_read(op: &Op) -> bool {
    let nonode = matches!(
        op.ret,
        Some(Ret::Error {
            code: ZkError::NoNode
        })
    );
    match (&op.call, &op.ret) {
        (Call::GetData { .. } | Call::SyncGetData { .. }, Some(Ret::Data { .. })) => true,
        (Call::Exists { .. }, Some(Ret::Exists { .. })) => true,
        (Call::GetChildren { .. }, Some(Ret::Children { .. })) => true,
        (call, _) => nonode && read_path(call).is_some(),
    }
}

/// What a read returned that the tree at its zxid does not hold, in words.
fn read_mismatch(tree: &Tree, op: &Op) -> Option<String> {
    let path = read_path(&op.call)?;
    let node = tree.nodes.get(path);
    match (&op.ret, node) {
        (
            Some(Ret::Error {
                code: ZkError::NoNode,
            }),
            None,
        ) => None,
        (
            Some(Ret::Error {
                code: ZkError::NoNode,
            }),
            Some(n),
        ) => Some(format!("{path} reads as absent, the tree holds it ({n:?})")),
        (Some(Ret::Exists { version: None }), None) => None,
        (Some(Ret::Exists { version: None }), Some(n)) => Some(format!(
            "exists {path} says absent, the tree holds it ({n:?})"
        )),
        (_, None) => Some(format!(
            "{path} reads as present, the tree has no such znode"
        )),
        (Some(Ret::Data { data, version }), Some(n)) => (n.data != *data || n.version != *version)
            .then(|| {
                format!(
                    "{path} reads {data:?} v{version}, the tree holds {:?} v{}",
                    n.data, n.version
                )
            }),
        (Some(Ret::Exists { version }), Some(n)) => (*version != Some(n.version)).then(|| {
            format!(
                "exists {path} says {version:?}, the tree has v{}",
                n.version
            )
        }),
        (Some(Ret::Children { children }), Some(_)) => {
            // Compared in order without copying when the answer is sorted (the conversion
            // sorts it); the copies are made only to sort an unsorted one or to explain.
            let sorted = children.windows(2).all(|w| w[0] <= w[1]);
            let same = |seen: &[String]| seen.iter().map(String::as_str).eq(tree.child_names(path));
            if sorted && same(children) {
                return None;
            }
            let want = tree.children(path);
            let mut seen = children.clone();
            seen.sort();
            (seen != want)
                .then(|| format!("children of {path} read as {seen:?}, the tree holds {want:?}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history built op by op: (process, invoke, complete, call, outcome, ret, zxid).
    struct H(History);

    impl H {
        fn op(&mut self, t: (u64, u64), call: Call, ret: Option<Ret>, zxid: u64) -> &mut H {
            let session = Some(0x51);
            let id = self.0.invoke(1, session, t.0, call);
            let outcome = match ret {
                Some(Ret::Error { .. }) => Outcome::Fail,
                _ => Outcome::Ok,
            };
            self.0.complete(id, t.1, outcome, ret, Some(zxid));
            self
        }

        fn verdict(&self) -> (Option<String>, Vec<Violation>) {
            let mut v = Vec::new();
            let summary = check_tree(&self.0, &mut v);
            (summary, v)
        }
    }

    fn h() -> H {
        H(History::new())
    }

    fn create(path: &str) -> Call {
        Call::CreateNode {
            path: path.into(),
            data: "d".into(),
            ephemeral: false,
            sequential: false,
        }
    }

    fn children(names: &[&str]) -> Option<Ret> {
        let children = names.iter().map(|n| n.to_string()).collect();
        Some(Ret::Children { children })
    }

    fn root_children() -> Call {
        Call::GetChildren { path: "/".into() }
    }

    #[test]
    fn a_get_children_that_misses_a_committed_child_fails() {
        let mut ok = h();
        ok.op((0, 1), create("/a"), Some(Ret::Done), 1)
            .op((2, 3), create("/b"), Some(Ret::Done), 2)
            .op((4, 5), root_children(), children(&["a", "b"]), 2);
        assert!(ok.verdict().1.is_empty(), "{:?}", ok.verdict());
        let mut bad = h();
        bad.op((0, 1), create("/a"), Some(Ret::Done), 1)
            .op((2, 3), create("/b"), Some(Ret::Done), 2)
            .op((4, 5), root_children(), children(&["a"]), 2);
        let (_, v) = bad.verdict();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].kind, "read-not-tree-state");
        assert!(v[0].message.contains("children of /"), "{}", v[0].message);
    }

    #[test]
    fn a_multi_seen_half_applied_fails() {
        let set = |p: &str| Call::SetData {
            path: p.into(),
            data: "m".into(),
            version: -1,
        };
        let multi = Call::Multi {
            ops: vec![set("/a"), set("/b")],
        };
        let get = |p: &str| Call::GetData { path: p.into() };
        let seen = |d: &str, v| {
            Some(Ret::Data {
                data: d.into(),
                version: v,
            })
        };
        let mut ok = h();
        ok.op((0, 1), create("/a"), Some(Ret::Done), 1)
            .op((0, 1), create("/b"), Some(Ret::Done), 2)
            .op((2, 3), multi.clone(), Some(Ret::Done), 3)
            .op((4, 5), get("/a"), seen("m", 1), 3)
            .op((4, 5), get("/b"), seen("m", 1), 3);
        assert!(ok.verdict().1.is_empty(), "{:?}", ok.verdict());
        // /b at the multi's zxid still holds its old data: half the multi.
        let mut bad = h();
        bad.op((0, 1), create("/a"), Some(Ret::Done), 1)
            .op((0, 1), create("/b"), Some(Ret::Done), 2)
            .op((2, 3), multi, Some(Ret::Done), 3)
            .op((4, 5), get("/a"), seen("m", 1), 3)
            .op((4, 5), get("/b"), seen("d", 0), 3);
        let (_, v) = bad.verdict();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].key.as_deref(), Some("/b"));
    }

    #[test]
    fn an_ephemeral_read_after_its_session_closed_fails() {
        let eph = Call::CreateNode {
            path: "/e".into(),
            data: "d".into(),
            ephemeral: true,
            sequential: false,
        };
        let close = Call::CloseSession { session: 0x51 };
        let exists = Call::Exists { path: "/e".into() };
        let mut ok = h();
        ok.op((0, 1), eph.clone(), Some(Ret::Done), 1)
            .op((2, 2), close.clone(), Some(Ret::Done), 2)
            .op(
                (3, 4),
                exists.clone(),
                Some(Ret::Exists { version: Some(0) }),
                1,
            )
            .op(
                (3, 4),
                exists.clone(),
                Some(Ret::Exists { version: None }),
                2,
            );
        assert!(ok.verdict().1.is_empty(), "{:?}", ok.verdict());
        let mut bad = h();
        bad.op((0, 1), eph, Some(Ret::Done), 1)
            .op((2, 2), close, Some(Ret::Done), 2)
            .op((3, 4), exists, Some(Ret::Exists { version: Some(0) }), 2);
        let (_, v) = bad.verdict();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("/e"), "{}", v[0].message);
    }

    #[test]
    fn a_sequential_name_must_be_the_parents_cversion() {
        let seq = Call::CreateNode {
            path: "/s-".into(),
            data: "d".into(),
            ephemeral: false,
            sequential: true,
        };
        let named = |p: &str| Some(Ret::Created { path: p.into() });
        let mut ok = h();
        ok.op((0, 1), create("/a"), Some(Ret::Done), 1)
            .op((2, 3), seq.clone(), named("/s-0000000001"), 2)
            .op((4, 5), root_children(), children(&["a", "s-0000000001"]), 2);
        assert!(ok.verdict().1.is_empty(), "{:?}", ok.verdict());
        let mut bad = h();
        bad.op((0, 1), create("/a"), Some(Ret::Done), 1)
            .op((2, 3), seq, named("/s-0000000000"), 2);
        let (_, v) = bad.verdict();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].kind, "zxid-order-illegal");
    }

    #[test]
    fn a_refused_write_must_be_refused_by_the_state() {
        let mut bad = h();
        bad.op((0, 1), create("/a"), Some(Ret::Done), 1).op(
            (2, 3),
            create("/b"),
            Some(Ret::Error {
                code: ZkError::NodeExists,
            }),
            2,
        );
        let (_, v) = bad.verdict();
        assert_eq!(v[0].kind, "zxid-order-illegal", "{v:?}");
    }

    /// A refused write is judged without changing the tree: a refused multi whose first op
    /// alone would apply leaves no trace, nor does a refused delete; a read that shows the
    /// refused multi's create is caught.
    #[test]
    fn a_refused_write_leaves_the_tree_as_it_was() {
        let multi = Call::Multi {
            ops: vec![create("/x"), create("/a")],
        };
        let delete = Call::Delete {
            path: "/a".into(),
            version: 7,
        };
        let refused = |code| Some(Ret::Error { code });
        let run = |seen: &[&str]| {
            let mut hist = h();
            hist.op((0, 1), create("/a"), Some(Ret::Done), 1)
                .op((2, 3), multi.clone(), refused(ZkError::NodeExists), 2)
                .op((4, 5), delete.clone(), refused(ZkError::BadVersion), 3)
                .op((6, 7), root_children(), children(seen), 3);
            hist.verdict().1
        };
        assert!(run(&["a"]).is_empty(), "{:?}", run(&["a"]));
        let v = run(&["a", "x"]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].kind, "read-not-tree-state");
    }

    /// A write of unknown fate makes the whole tree unknowable: not comparable, not a pass.
    #[test]
    fn an_unknown_write_leaves_the_tree_to_the_per_path_checks() {
        let mut history = History::new();
        history.invoke(1, None, 0, create("/a"));
        assert_eq!(check_tree(&history, &mut Vec::new()), None);
    }
}
