//! The ZooKeeper data tree: znodes with data and stats, sessions, ephemerals, one-shot
//! watches, the leader's prep stage (validation into idempotent txns) and a digest of the
//! whole tree that is comparable across servers at equal zxid (A.9, A.11 item 15).
//!
//! Pure data: no I/O, no time, no randomness. May depend on: `zab::msg` (types only).

use std::collections::{BTreeMap, BTreeSet};

use super::msg::{ErrCode, Op, OpResult, Shared, Txn, TxnOp, WatchKind, Zxid};

/// The stat structure of a znode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stat {
    pub czxid: Zxid,
    pub mzxid: Zxid,
    /// zxid of the last change to the children.
    pub pzxid: Zxid,
    pub version: i32,
    pub cversion: i32,
    /// Session owning this ephemeral, 0 for a persistent node.
    pub ephemeral_owner: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Znode {
    /// Shared with the txn that wrote it (and every other server's copy of that txn).
    data: Shared<[u8]>,
    stat: Stat,
    /// The children's full paths, shared with their own entries in the tree (children of
    /// one parent sort by path as they do by name: they share the prefix `parent/`).
    children: BTreeSet<Shared<str>>,
    /// `node_hash` of this node as the digest counts it, kept so that an update or a
    /// removal takes the old term out without hashing the old content again. Set by
    /// `insert_node` and `update_node`, the only ways into the tree.
    hash: u64,
}

/// A plain, serialisable copy of a tree (SNAP payload and snapshot file content).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TreeImage {
    pub last_zxid: Zxid,
    /// Every znode, the root first: (path, data, stat), sorted by path.
    pub nodes: Vec<(String, Vec<u8>, Stat)>,
    /// (session id, timeout in ms), sorted.
    pub sessions: Vec<(u64, u64)>,
}

/// The effect of applying one txn: the answer for its client and the watch triggers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub result: OpResult,
    pub events: Vec<(String, WatchKind)>,
}

/// The replicated state of one server.
#[derive(Clone, Debug)]
pub struct DataTree {
    /// Keyed by path, shared with the txn that created the znode (and with every other
    /// server's copy of it): a create allocates no path.
    nodes: BTreeMap<Shared<str>, Znode>,
    sessions: BTreeMap<u64, u64>,
    ephemerals: BTreeMap<u64, BTreeSet<Shared<str>>>,
    last_zxid: Zxid,
    digest: u64,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

fn mix64(mut x: u64) -> u64 {
    // splitmix64 finaliser: a fixed, portable mixing function (never std's RandomState).
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = mix64(seed ^ bytes.len() as u64);
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(word));
    }
    h
}

fn node_hash(path: &str, node: &Znode) -> u64 {
    let s = &node.stat;
    let mut h = hash_bytes(1, path.as_bytes());
    h = hash_bytes(h, &node.data);
    for v in [s.czxid, s.mzxid, s.pzxid, s.ephemeral_owner] {
        h = mix64(h ^ v);
    }
    mix64(h ^ (s.version as u32 as u64) ^ ((s.cversion as u32 as u64) << 32))
}

fn session_hash(session: u64, timeout_ms: u64) -> u64 {
    mix64(mix64(session ^ 0x5e55_1011) ^ timeout_ms)
}

/// The name of `child` (a full path) under `parent`.
fn name_in<'a>(parent: &str, child: &'a str) -> &'a str {
    child[parent.len()..].trim_start_matches('/')
}

pub fn parent_of(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let idx = path.rfind('/')?;
    Some(if idx == 0 { "/" } else { &path[..idx] })
}

fn valid_path(path: &str) -> bool {
    path == "/" || (path.starts_with('/') && !path.ends_with('/') && !path.contains("//"))
}

fn version_ok(expected: i32, actual: i32) -> bool {
    expected == -1 || expected == actual
}

impl DataTree {
    pub fn new() -> Self {
        let mut tree = DataTree {
            nodes: BTreeMap::new(),
            sessions: BTreeMap::new(),
            ephemerals: BTreeMap::new(),
            last_zxid: 0,
            digest: 0,
        };
        let root = Znode {
            data: Shared::from(&[][..]),
            stat: Stat::default(),
            children: BTreeSet::new(),
            hash: 0,
        };
        tree.insert_node(Shared::from("/"), root);
        tree
    }

    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// A hash of the whole replicated state (znodes, stats, sessions). Maintained
    /// incrementally, so reading it is O(1).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    pub fn session_timeout_ms(&self, session: u64) -> Option<u64> {
        self.sessions.get(&session).copied()
    }

    pub fn sessions(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.sessions.iter().map(|(s, t)| (*s, *t))
    }

    /// (path, owner) of every ephemeral, sorted by path.
    pub fn ephemerals(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .ephemerals
            .iter()
            .flat_map(|(s, paths)| paths.iter().map(move |p| (p.to_string(), *s)))
            .collect();
        out.sort();
        out
    }

    /// The sessions that own at least one ephemeral, in id order (no allocation: the
    /// monitor asks after every applied txn).
    pub fn ephemeral_owners(&self) -> impl Iterator<Item = u64> + '_ {
        self.ephemerals
            .iter()
            .filter(|(_, paths)| !paths.is_empty())
            .map(|(s, _)| *s)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn get(&self, path: &str) -> Option<(Vec<u8>, Stat)> {
        self.nodes.get(path).map(|n| (n.data.to_vec(), n.stat))
    }

    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.nodes.get(path).map(|n| child_names(path, n))
    }

    fn insert_node(&mut self, path: Shared<str>, mut node: Znode) {
        node.hash = node_hash(&path, &node);
        self.digest = self.digest.wrapping_add(node.hash);
        let old = self.nodes.insert(path, node);
        assert!(old.is_none(), "insert over an existing znode");
    }

    fn remove_node(&mut self, path: &str) -> Znode {
        let node = self.nodes.remove(path).expect("remove of a missing znode");
        debug_assert_eq!(node.hash, node_hash(path, &node));
        self.digest = self.digest.wrapping_sub(node.hash);
        node
    }

    fn update_node(&mut self, path: &str, f: impl FnOnce(&mut Znode)) {
        let node = self.nodes.get_mut(path).expect("update of a missing znode");
        debug_assert_eq!(node.hash, node_hash(path, node));
        self.digest = self.digest.wrapping_sub(node.hash);
        f(node);
        node.hash = node_hash(path, node);
        self.digest = self.digest.wrapping_add(node.hash);
    }

    // ------------------------------------------------------------------ reads

    /// Serves a read locally (A.10: reads are not linearizable, they see this server's
    /// state). Writes and `sync` are not reads.
    pub fn read(&self, op: &Op) -> OpResult {
        match op {
            Op::GetData { path, .. } => match self.nodes.get(path.as_str()) {
                Some(n) => OpResult::Data {
                    data: n.data.to_vec(),
                    stat: n.stat,
                },
                None => OpResult::Err(ErrCode::NoNode),
            },
            Op::Exists { path, .. } => {
                OpResult::Exists(self.nodes.get(path.as_str()).map(|n| n.stat))
            }
            Op::GetChildren { path, .. } => match self.nodes.get(path.as_str()) {
                Some(n) => OpResult::Children(child_names(path, n)),
                None => OpResult::Err(ErrCode::NoNode),
            },
            _ => panic!("read() called with a non-read op {op:?}"),
        }
    }

    // ------------------------------------------------------------------ prep (leader)

    /// The leader's PrepRequestProcessor: validates a write against this (projected) state
    /// and turns it into an idempotent txn op (final sequential name, error txn on failure).
    pub fn prep(&self, session: u64, op: &Op) -> TxnOp {
        if !self.sessions.contains_key(&session) {
            return TxnOp::Error {
                code: ErrCode::SessionExpired,
                multi_len: 0,
                index: 0,
            };
        }
        match op {
            Op::Multi(ops) => self.prep_multi(session, ops),
            _ => match self.prep_one(session, op) {
                Ok(t) => t,
                Err(code) => TxnOp::Error {
                    code,
                    multi_len: 0,
                    index: 0,
                },
            },
        }
    }

    fn prep_multi(&self, session: u64, ops: &[Op]) -> TxnOp {
        // Each op is validated against the state left by the ops before it: the changes of
        // the ops before it are kept in an overlay over this tree (as ZooKeeper's
        // PrepRequestProcessor keeps its outstanding changes), not in a copy of the tree.
        let mut overlay = Overlay {
            base: self,
            changed: BTreeMap::new(),
        };
        let mut txns = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let prepped = if matches!(op, Op::Multi(_)) || !op.is_write() {
                Err(ErrCode::BadArguments)
            } else {
                prep_op(&|p: &str| overlay.node(p), session, op)
            };
            match prepped {
                Ok(t) => {
                    overlay.apply(&t);
                    txns.push(t);
                }
                Err(code) => {
                    return TxnOp::Error {
                        code,
                        multi_len: ops.len() as u32,
                        index: i as u32,
                    }
                }
            }
        }
        TxnOp::Multi(txns)
    }

    /// What the prep stage reads of a znode.
    fn prep_view(&self, path: &str) -> Option<PrepNode> {
        self.nodes.get(path).map(|n| PrepNode {
            ephemeral_owner: n.stat.ephemeral_owner,
            version: n.stat.version,
            cversion: n.stat.cversion,
            children: n.children.len(),
        })
    }

    fn prep_one(&self, session: u64, op: &Op) -> Result<TxnOp, ErrCode> {
        prep_op(&|p: &str| self.prep_view(p), session, op)
    }

    // ------------------------------------------------------------------ apply

    /// Applies a committed (or, on recovery, logged) txn. Zxids must strictly increase.
    pub fn apply(&mut self, txn: &Txn) -> Applied {
        let mut events = Vec::new();
        let result = self.apply_with(txn, true, &mut |path: &str, kind| {
            events.push((path.to_string(), kind))
        });
        Applied {
            result: result.expect("answer asked for"),
            events,
        }
    }

    /// [`apply`](Self::apply) for callers that need neither the answer nor the watch
    /// triggers (recovery, the leader's projected tree, the monitor's replay): the same
    /// change to the tree, without building them.
    pub fn replay(&mut self, txn: &Txn) {
        self.check_order(txn);
        self.apply_op(txn.zxid, txn.session, &txn.op, None, false);
        self.last_zxid = txn.zxid;
    }

    fn check_order(&self, txn: &Txn) {
        assert!(
            txn.zxid > self.last_zxid,
            "apply out of order: txn {:#x} after {:#x}",
            txn.zxid,
            self.last_zxid
        );
    }

    /// Applies one op. With `events` it reports the watch triggers to it; with `answer`
    /// it returns the answer (None otherwise, and builds none).
    fn apply_op(
        &mut self,
        zxid: Zxid,
        session: u64,
        op: &TxnOp,
        mut events: Events<'_, '_>,
        answer: bool,
    ) -> Option<OpResult> {
        let collect = answer;
        let result = match op {
            TxnOp::CreateSession { timeout_ms } => {
                if let Some(old) = self.sessions.insert(session, *timeout_ms) {
                    self.digest = self.digest.wrapping_sub(session_hash(session, old));
                }
                self.digest = self.digest.wrapping_add(session_hash(session, *timeout_ms));
                OpResult::Synced
            }
            TxnOp::CloseSession => {
                self.close_session(zxid, session, events);
                OpResult::Deleted
            }
            TxnOp::Create {
                path,
                data,
                ephemeral_owner,
            } => {
                let stat = self.create(zxid, path, data, *ephemeral_owner, events);
                if !collect {
                    return None;
                }
                OpResult::Created {
                    path: path.to_string(),
                    stat,
                }
            }
            TxnOp::Delete { path } => {
                self.delete(zxid, path, events);
                OpResult::Deleted
            }
            TxnOp::SetData { path, data } => {
                let mut stat = Stat::default();
                self.update_node(path, |n| {
                    n.data = data.clone();
                    n.stat.version += 1;
                    n.stat.mzxid = zxid;
                    stat = n.stat;
                });
                if let Some(ev) = events {
                    ev(path, WatchKind::NodeDataChanged);
                }
                OpResult::SetStat(stat)
            }
            TxnOp::Check { .. } => OpResult::Checked,
            TxnOp::Multi(ops) => {
                let mut results = Vec::new();
                for t in ops {
                    let r = self.apply_op(zxid, session, t, events.as_deref_mut(), answer);
                    results.extend(r);
                }
                if !collect {
                    return None;
                }
                OpResult::Multi(results)
            }
            TxnOp::Error {
                code,
                multi_len,
                index,
            } if *multi_len > 0 => {
                if !collect {
                    return None;
                }
                // A failed multi answers every op, as ZooKeeper's DataTree does: the ops
                // before the failing one would have succeeded (rolled back), the failing
                // one has its code, those after it RUNTIMEINCONSISTENCY.
                let results = (0..*multi_len)
                    .map(|i| match i.cmp(index) {
                        std::cmp::Ordering::Less => None,
                        std::cmp::Ordering::Equal => Some(*code),
                        std::cmp::Ordering::Greater => Some(ErrCode::RuntimeInconsistency),
                    })
                    .collect();
                OpResult::MultiFailed(results)
            }
            TxnOp::Error { code, .. } => OpResult::Err(*code),
        };
        collect.then_some(result)
    }

    fn create(
        &mut self,
        zxid: Zxid,
        path: &Shared<str>,
        data: &Shared<[u8]>,
        owner: u64,
        events: Events<'_, '_>,
    ) -> Stat {
        let parent = parent_of(path).expect("create of the root");
        self.update_node(parent, |p| {
            let fresh = p.children.insert(Shared::clone(path));
            assert!(fresh, "create of an existing child");
            p.stat.cversion += 1;
            p.stat.pzxid = zxid;
        });
        let stat = Stat {
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            version: 0,
            cversion: 0,
            ephemeral_owner: owner,
        };
        let node = Znode {
            data: data.clone(),
            stat,
            children: BTreeSet::new(),
            hash: 0,
        };
        self.insert_node(Shared::clone(path), node);
        if owner != 0 {
            self.ephemerals
                .entry(owner)
                .or_default()
                .insert(Shared::clone(path));
        }
        if let Some(ev) = events {
            ev(path, WatchKind::NodeCreated);
            ev(parent, WatchKind::NodeChildrenChanged);
        }
        stat
    }

    fn delete(&mut self, zxid: Zxid, path: &str, events: Events<'_, '_>) {
        let node = self.remove_node(path);
        assert!(node.children.is_empty(), "delete of a znode with children");
        let parent = parent_of(path).expect("delete of the root");
        self.update_node(parent, |p| {
            p.children.remove(path);
            p.stat.cversion += 1;
            p.stat.pzxid = zxid;
        });
        let owner = node.stat.ephemeral_owner;
        if owner != 0 {
            if let Some(set) = self.ephemerals.get_mut(&owner) {
                set.remove(path);
                if set.is_empty() {
                    self.ephemerals.remove(&owner);
                }
            }
        }
        if let Some(ev) = events {
            ev(path, WatchKind::NodeDeleted);
            ev(parent, WatchKind::NodeChildrenChanged);
        }
    }

    /// The txn of a closeSession (or of an expiry, which is the same txn): the session's
    /// ephemerals are deleted in path order, each reporting the triggers a delete does
    /// (NodeDeleted, then the parent's NodeChildrenChanged), and the session's timeout is
    /// forgotten; the digest follows every change. Which connections watched what is the
    /// server's business (`Watches`), not the tree's.
    fn close_session(&mut self, zxid: Zxid, session: u64, mut events: Events<'_, '_>) {
        let paths: Vec<Shared<str>> = self
            .ephemerals
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        for path in paths {
            self.delete(zxid, &path, events.as_deref_mut());
        }
        if let Some(timeout) = self.sessions.remove(&session) {
            self.digest = self.digest.wrapping_sub(session_hash(session, timeout));
        }
    }

    // ------------------------------------------------------------------ images

    pub fn image(&self) -> TreeImage {
        TreeImage {
            last_zxid: self.last_zxid,
            nodes: self
                .nodes
                .iter()
                .map(|(p, n)| (p.to_string(), n.data.to_vec(), n.stat))
                .collect(),
            sessions: self.sessions().collect(),
        }
    }

    /// Rebuilds a tree from an image (SNAP sync, snapshot recovery).
    pub fn from_image(image: &TreeImage) -> DataTree {
        let mut tree = DataTree::new();
        // Parents sort before their children, so a parent exists when its child arrives.
        for (path, data, stat) in &image.nodes {
            if path == "/" {
                tree.update_node("/", |root| {
                    root.data = Shared::from(data.as_slice());
                    root.stat = *stat;
                });
                continue;
            }
            let parent = parent_of(path).expect("root in image");
            let path: Shared<str> = Shared::from(path.as_str());
            tree.update_node(parent, |p| {
                p.children.insert(Shared::clone(&path));
            });
            let node = Znode {
                data: Shared::from(data.as_slice()),
                stat: *stat,
                children: BTreeSet::new(),
                hash: 0,
            };
            if stat.ephemeral_owner != 0 {
                tree.ephemerals
                    .entry(stat.ephemeral_owner)
                    .or_default()
                    .insert(Shared::clone(&path));
            }
            tree.insert_node(path, node);
        }
        for (s, t) in &image.sessions {
            tree.sessions.insert(*s, *t);
            tree.digest = tree.digest.wrapping_add(session_hash(*s, *t));
        }
        tree.last_zxid = image.last_zxid;
        tree
    }
}

/// The names of `node`'s children (`node` is at `path`), in order.
fn child_names(path: &str, node: &Znode) -> Vec<String> {
    node.children
        .iter()
        .map(|c| name_in(path, c).to_string())
        .collect()
}

/// One-shot watches of one server: (path -> watching client connections), for data and
/// child watches separately. Fired watches are removed (ZooKeeper watches are one-shot).
#[derive(Clone, Debug, Default)]
pub struct Watches {
    data: BTreeMap<String, BTreeSet<u64>>,
    child: BTreeMap<String, BTreeSet<u64>>,
}

impl Watches {
    pub fn add_data(&mut self, path: &str, watcher: u64) {
        self.data
            .entry(path.to_string())
            .or_default()
            .insert(watcher);
    }
    pub fn add_child(&mut self, path: &str, watcher: u64) {
        self.child
            .entry(path.to_string())
            .or_default()
            .insert(watcher);
    }
    pub fn remove_watcher(&mut self, watcher: u64) {
        for set in self.data.values_mut().chain(self.child.values_mut()) {
            set.remove(&watcher);
        }
        self.data.retain(|_, s| !s.is_empty());
        self.child.retain(|_, s| !s.is_empty());
    }
    /// The watchers triggered by one event, removed (one-shot), sorted.
    pub fn trigger(&mut self, path: &str, kind: WatchKind) -> Vec<u64> {
        let mut out = BTreeSet::new();
        let take = |m: &mut BTreeMap<String, BTreeSet<u64>>, out: &mut BTreeSet<u64>| {
            if let Some(s) = m.remove(path) {
                out.extend(s);
            }
        };
        match kind {
            WatchKind::NodeChildrenChanged => take(&mut self.child, &mut out),
            WatchKind::NodeCreated | WatchKind::NodeDataChanged => take(&mut self.data, &mut out),
            WatchKind::NodeDeleted => {
                take(&mut self.data, &mut out);
                take(&mut self.child, &mut out);
            }
        }
        out.into_iter().collect()
    }
}

/// The leader's prep of one write against a state read through `node` (the tree, or the
/// tree under a multi's earlier ops).
fn prep_op(
    node: &dyn Fn(&str) -> Option<PrepNode>,
    session: u64,
    op: &Op,
) -> Result<TxnOp, ErrCode> {
    match op {
        Op::Create {
            path,
            data,
            ephemeral,
            sequential,
        } => {
            let parent_path = parent_of(path).ok_or(ErrCode::NodeExists)?;
            if !valid_path(path) {
                return Err(ErrCode::BadArguments);
            }
            let parent = node(parent_path).ok_or(ErrCode::NoNode)?;
            if parent.ephemeral_owner != 0 {
                return Err(ErrCode::NoChildrenForEphemerals);
            }
            let final_path: Shared<str> = if *sequential {
                // The sequence number is the parent's cversion, as in ZooKeeper.
                format!("{path}{:010}", parent.cversion).into()
            } else {
                path.as_str().into()
            };
            if node(&final_path).is_some() {
                return Err(ErrCode::NodeExists);
            }
            Ok(TxnOp::Create {
                path: final_path,
                data: data.as_slice().into(),
                ephemeral_owner: if *ephemeral { session } else { 0 },
            })
        }
        Op::Delete { path, version } => {
            let n = node(path).ok_or(ErrCode::NoNode)?;
            if path == "/" {
                return Err(ErrCode::BadArguments);
            }
            if !version_ok(*version, n.version) {
                return Err(ErrCode::BadVersion);
            }
            if n.children != 0 {
                return Err(ErrCode::NotEmpty);
            }
            Ok(TxnOp::Delete {
                path: path.as_str().into(),
            })
        }
        Op::SetData {
            path,
            data,
            version,
        } => {
            let n = node(path).ok_or(ErrCode::NoNode)?;
            if !version_ok(*version, n.version) {
                return Err(ErrCode::BadVersion);
            }
            Ok(TxnOp::SetData {
                path: path.as_str().into(),
                data: data.as_slice().into(),
            })
        }
        Op::Check { path, version } => {
            let n = node(path).ok_or(ErrCode::NoNode)?;
            if !version_ok(*version, n.version) {
                return Err(ErrCode::BadVersion);
            }
            Ok(TxnOp::Check {
                path: path.as_str().into(),
            })
        }
        _ => Err(ErrCode::BadArguments),
    }
}

/// What the prep stage reads of a znode: its owner, versions and number of children.
#[derive(Clone, Copy, Debug)]
struct PrepNode {
    ephemeral_owner: u64,
    version: i32,
    cversion: i32,
    children: usize,
}

/// A tree under the changes of a multi's earlier ops, as the prep stage sees it: a changed
/// znode's view (None: deleted) over the unchanged tree.
struct Overlay<'a> {
    base: &'a DataTree,
    changed: BTreeMap<String, Option<PrepNode>>,
}

impl Overlay<'_> {
    fn node(&self, path: &str) -> Option<PrepNode> {
        match self.changed.get(path) {
            Some(n) => *n,
            None => self.base.prep_view(path),
        }
    }

    fn update(&mut self, path: &str, f: impl FnOnce(&mut PrepNode)) {
        let mut n = self.node(path).expect("prep checked the znode exists");
        f(&mut n);
        self.changed.insert(path.to_string(), Some(n));
    }

    /// What applying a prepped op changes of the prep's view (as `DataTree::apply_op`
    /// does to the znodes).
    fn apply(&mut self, t: &TxnOp) {
        match t {
            TxnOp::Create {
                path,
                ephemeral_owner,
                ..
            } => {
                let parent = parent_of(path).expect("create of the root");
                self.update(parent, |p| {
                    p.children += 1;
                    p.cversion += 1;
                });
                let fresh = PrepNode {
                    ephemeral_owner: *ephemeral_owner,
                    version: 0,
                    cversion: 0,
                    children: 0,
                };
                self.changed.insert(path.to_string(), Some(fresh));
            }
            TxnOp::Delete { path } => {
                self.changed.insert(path.to_string(), None);
                let parent = parent_of(path).expect("delete of the root");
                self.update(parent, |p| {
                    p.children -= 1;
                    p.cversion += 1;
                });
            }
            TxnOp::SetData { path, .. } => self.update(path, |n| n.version += 1),
            // Prep makes no other op inside a multi.
            _ => {}
        }
    }
}

/// Where `apply_op` reports watch triggers, if anywhere: `(path, kind)` as each happens.
type Events<'a, 'f> = Option<&'a mut (dyn FnMut(&str, WatchKind) + 'f)>;

// Kept after the code above so that its panic messages keep their line numbers (fuzz
// output quotes them, and it stays byte-identical across speed changes).
impl DataTree {
    /// [`apply`](Self::apply) that hands each watch trigger to `on_event` as it happens
    /// (the same triggers in the same order) instead of collecting them, and builds the
    /// answer only when `answer`: a server applies every txn, but answers only its own
    /// clients, and most triggers find no watcher, so neither is built for nothing.
    pub fn apply_with(
        &mut self,
        txn: &Txn,
        answer: bool,
        on_event: &mut (dyn FnMut(&str, WatchKind) + '_),
    ) -> Option<OpResult> {
        self.check_order(txn);
        let result = self.apply_op(txn.zxid, txn.session, &txn.op, Some(on_event), answer);
        self.last_zxid = txn.zxid;
        result
    }
}

#[cfg(test)]
mod tests;
