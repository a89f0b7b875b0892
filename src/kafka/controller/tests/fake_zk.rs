//! A ZooKeeper data tree good enough to answer the controller's operations in unit tests:
//! versions, czxids, ephemerals, sequential names, atomic multis with per-op errors, and
//! one-shot watches that fire as ZooKeeper's do.

use std::collections::{BTreeMap, BTreeSet};

use crate::zab::client::ZkError;
use crate::zab::msg::{ErrCode, Op, OpResult, WatchKind};
use crate::zab::tree::Stat;

#[derive(Clone, Debug)]
struct Node {
    data: Vec<u8>,
    stat: Stat,
}

#[derive(Clone, Debug, Default)]
pub struct FakeZk {
    nodes: BTreeMap<String, Node>,
    zxid: u64,
    data_watches: BTreeSet<String>,
    child_watches: BTreeSet<String>,
    /// Watch events fired and not yet delivered.
    pub events: Vec<(String, WatchKind)>,
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl FakeZk {
    pub fn new() -> Self {
        FakeZk::default()
    }

    pub fn exists(&self, path: &str) -> bool {
        path == "/" || self.nodes.contains_key(path)
    }

    pub fn get(&self, path: &str) -> Option<(Vec<u8>, Stat)> {
        self.nodes.get(path).map(|n| (n.data.clone(), n.stat))
    }

    pub fn children(&self, path: &str) -> Vec<String> {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect()
    }

    fn fire_data(&mut self, path: &str, kind: WatchKind) {
        if self.data_watches.remove(path) {
            self.events.push((path.to_string(), kind));
        }
    }

    fn fire_child(&mut self, path: &str) {
        if self.child_watches.remove(path) {
            self.events
                .push((path.to_string(), WatchKind::NodeChildrenChanged));
        }
    }

    pub fn apply(&mut self, op: &Op) -> Result<OpResult, ZkError> {
        match op {
            Op::Multi(ops) => self.multi(ops),
            _ => match self.apply_one(op) {
                Ok(r) => Ok(r),
                Err(c) => Err(ZkError::Server(c)),
            },
        }
    }

    fn multi(&mut self, ops: &[Op]) -> Result<OpResult, ZkError> {
        let saved = self.clone();
        let mut results = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match self.apply_one(op) {
                Ok(r) => results.push(r),
                Err(c) => {
                    *self = saved;
                    let mut per: Vec<Option<ErrCode>> = vec![None; i];
                    per.push(Some(c));
                    per.resize(ops.len(), Some(ErrCode::RuntimeInconsistency));
                    return Err(ZkError::MultiFailed(per));
                }
            }
        }
        Ok(OpResult::Multi(results))
    }

    fn apply_one(&mut self, op: &Op) -> Result<OpResult, ErrCode> {
        match op {
            Op::Create {
                path,
                data,
                ephemeral,
                sequential,
            } => self.create(path, data, *ephemeral, *sequential),
            Op::Delete { path, version } => self.delete(path, *version),
            Op::SetData {
                path,
                data,
                version,
            } => self.set(path, data, *version),
            Op::Check { path, version } => {
                let n = self.nodes.get(path).ok_or(ErrCode::NoNode)?;
                if *version != -1 && n.stat.version != *version {
                    return Err(ErrCode::BadVersion);
                }
                Ok(OpResult::Checked)
            }
            Op::GetData { path, watch } => {
                let n = self.nodes.get(path).ok_or(ErrCode::NoNode)?.clone();
                if *watch {
                    self.data_watches.insert(path.clone());
                }
                Ok(OpResult::Data {
                    data: n.data,
                    stat: n.stat,
                })
            }
            Op::Exists { path, watch } => {
                if *watch {
                    self.data_watches.insert(path.clone());
                }
                Ok(OpResult::Exists(self.nodes.get(path).map(|n| n.stat)))
            }
            Op::GetChildren { path, watch } => {
                if !self.exists(path) {
                    return Err(ErrCode::NoNode);
                }
                if *watch {
                    self.child_watches.insert(path.clone());
                }
                Ok(OpResult::Children(self.children(path)))
            }
            Op::Sync { .. } => Ok(OpResult::Synced),
            Op::Multi(_) => Err(ErrCode::BadArguments),
        }
    }

    pub fn create(
        &mut self,
        path: &str,
        data: &[u8],
        ephemeral: bool,
        sequential: bool,
    ) -> Result<OpResult, ErrCode> {
        let p = parent(path).to_string();
        if !self.exists(&p) {
            return Err(ErrCode::NoNode);
        }
        let path = if sequential {
            let cversion = self.nodes.get(&p).map_or(0, |n| n.stat.cversion);
            format!("{path}{cversion:010}")
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(&path) {
            return Err(ErrCode::NodeExists);
        }
        self.zxid += 1;
        let stat = Stat {
            czxid: self.zxid,
            mzxid: self.zxid,
            pzxid: self.zxid,
            version: 0,
            cversion: 0,
            ephemeral_owner: u64::from(ephemeral),
        };
        let node = Node {
            data: data.to_vec(),
            stat,
        };
        self.nodes.insert(path.clone(), node);
        if let Some(n) = self.nodes.get_mut(&p) {
            n.stat.cversion += 1;
        }
        self.fire_data(&path, WatchKind::NodeCreated);
        self.fire_child(&p);
        Ok(OpResult::Created { path, stat })
    }

    pub fn delete(&mut self, path: &str, version: i32) -> Result<OpResult, ErrCode> {
        let n = self.nodes.get(path).ok_or(ErrCode::NoNode)?;
        if version != -1 && n.stat.version != version {
            return Err(ErrCode::BadVersion);
        }
        if !self.children(path).is_empty() {
            return Err(ErrCode::NotEmpty);
        }
        self.nodes.remove(path);
        let p = parent(path).to_string();
        if let Some(n) = self.nodes.get_mut(&p) {
            n.stat.cversion += 1;
        }
        self.zxid += 1;
        self.fire_data(path, WatchKind::NodeDeleted);
        self.fire_child(path);
        self.fire_child(&p);
        Ok(OpResult::Deleted)
    }

    pub fn set(&mut self, path: &str, data: &[u8], version: i32) -> Result<OpResult, ErrCode> {
        let n = self.nodes.get_mut(path).ok_or(ErrCode::NoNode)?;
        if version != -1 && n.stat.version != version {
            return Err(ErrCode::BadVersion);
        }
        self.zxid += 1;
        n.data = data.to_vec();
        n.stat.version += 1;
        n.stat.mzxid = self.zxid;
        let stat = n.stat;
        self.fire_data(path, WatchKind::NodeDataChanged);
        Ok(OpResult::SetStat(stat))
    }
}
