//! A ZooKeeper znode: create / delete / setData with expected versions, getData / exists.
//!
//! Models one persistent, non-sequential znode per path (the partition key is the path): it
//! is absent, or present with data and a data version (0 at create, +1 per setData). A
//! conditional write's error code is an observation: `NodeExists` says the znode existed,
//! `BadVersion` that the version differed, `NoNode` that it was absent, each at some point
//! inside the operation's window (the leader orders error results like any other request). A
//! create that failed with `NoNode` (missing parent) involves another path and is left out, as
//! are children and sequential znodes, which this model does not cover.
//!
//! Depends on: `check::history` and the [`SequentialSpec`] trait.

use std::rc::Rc;

use super::{Compiled, SequentialSpec};
use crate::check::history::{Call, Op, Outcome, Ret, ZkError};

/// A present znode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Znode {
    /// The data, shared: the search copies states at every step and memo entry, and a
    /// compiled write's data becomes the state's (prints and hashes as the string would).
    pub data: Rc<str>,
    /// The data version.
    pub version: i32,
}

/// State of one path: `None` when the znode does not exist.
pub type ZnodeState = Option<Znode>;

/// How a write ended, as far as the model is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteResult {
    /// Applied.
    Ok,
    /// Rejected with this error code.
    Err(ZkError),
    /// Unknown (open): applies wherever its condition holds, is legal everywhere.
    Unknown,
}

/// Compiled znode operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZnodeOp {
    /// create with data.
    Create { data: Rc<str>, result: WriteResult },
    /// delete with an expected version (-1 = any).
    Delete { version: i32, result: WriteResult },
    /// setData with an expected version; `new_version` as returned, when it was.
    SetData {
        data: Rc<str>,
        version: i32,
        result: WriteResult,
        new_version: Option<i32>,
    },
    /// getData or sync+getData that saw this (`None`: NoNode).
    Read(Option<Znode>),
    /// exists that saw this version (`None`: absent).
    Exists(Option<i32>),
}

/// The znode spec.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZnodeSpec;

fn write_result(op: &Op) -> Result<Option<WriteResult>, String> {
    Ok(match (op.outcome, &op.ret) {
        (Outcome::Info, _) => Some(WriteResult::Unknown),
        (_, Some(Ret::Error { code })) => Some(WriteResult::Err(*code)),
        (Outcome::Ok, _) => Some(WriteResult::Ok),
        // Failed without saying what the server saw: it did not apply, nothing observed.
        (Outcome::Fail, _) => None,
    })
}

fn compile_read(op: &Op) -> Result<Option<ZnodeOp>, String> {
    if op.outcome == Outcome::Info {
        return Ok(None);
    }
    let read = match (&op.call, &op.ret) {
        (Call::Exists { .. }, Some(Ret::Exists { version })) => ZnodeOp::Exists(*version),
        (
            Call::Exists { .. },
            Some(Ret::Error {
                code: ZkError::NoNode,
            }),
        ) => ZnodeOp::Exists(None),
        (_, Some(Ret::Data { data, version })) => ZnodeOp::Read(Some(Znode {
            data: Rc::from(data.as_str()),
            version: *version,
        })),
        (
            _,
            Some(Ret::Error {
                code: ZkError::NoNode,
            }),
        ) => ZnodeOp::Read(None),
        (_, None) if op.outcome == Outcome::Fail => return Ok(None),
        (call, ret) => return Err(format!("{call:?} cannot return {ret:?}")),
    };
    Ok(Some(read))
}

impl SequentialSpec for ZnodeSpec {
    type State = ZnodeState;
    type Op = ZnodeOp;

    fn name(&self) -> &'static str {
        "znode"
    }

    fn init(&self) -> ZnodeState {
        None
    }

    fn compile<'a>(&self, op: &'a Op) -> Result<Option<Compiled<'a, ZnodeOp>>, String> {
        let (path, compiled) = match &op.call {
            Call::Create { path, data } => {
                let result = match write_result(op)? {
                    None | Some(WriteResult::Err(ZkError::NoNode)) => return Ok(None),
                    Some(r) => r,
                };
                let data = Rc::from(data.as_str());
                (path, Some(ZnodeOp::Create { data, result }))
            }
            Call::Delete { path, version } => {
                let result = write_result(op)?;
                let version = *version;
                (
                    path,
                    result.map(|result| ZnodeOp::Delete { version, result }),
                )
            }
            Call::SetData {
                path,
                data,
                version,
            } => {
                let new_version = match &op.ret {
                    Some(Ret::Stat { version }) => Some(*version),
                    _ => None,
                };
                let result = write_result(op)?;
                let make = |result| ZnodeOp::SetData {
                    data: Rc::from(data.as_str()),
                    version: *version,
                    result,
                    new_version,
                };
                (path, result.map(make))
            }
            Call::GetData { path } | Call::SyncGetData { path } | Call::Exists { path } => {
                (path, compile_read(op)?)
            }
            call => return Err(format!("the znode model has no {call:?}")),
        };
        Ok(compiled.map(|c| (path.as_str(), c)))
    }

    fn step(&self, state: &ZnodeState, op: &ZnodeOp) -> Option<ZnodeState> {
        match op {
            ZnodeOp::Create { data, result } => {
                let created = Znode {
                    data: data.clone(),
                    version: 0,
                };
                conditional(state, state.is_none(), *result, || Some(created))
            }
            ZnodeOp::Delete { version, result } => {
                let matches = version_matches(state, *version);
                conditional(state, matches, *result, || None)
            }
            ZnodeOp::SetData {
                data,
                version,
                result,
                new_version,
            } => {
                let matches = version_matches(state, *version);
                let next = state.as_ref().map(|z| Znode {
                    data: data.clone(),
                    version: z.version + 1,
                });
                let reported_ok = match (&next, new_version) {
                    (Some(z), Some(v)) => z.version == *v || !matches,
                    _ => true,
                };
                if !reported_ok && *result == WriteResult::Ok {
                    return None;
                }
                conditional(state, matches, *result, || next)
            }
            ZnodeOp::Read(seen) => (state == seen).then(|| state.clone()),
            ZnodeOp::Exists(seen) => {
                let version = state.as_ref().map(|z| z.version);
                (version == *seen).then(|| state.clone())
            }
        }
    }
}

/// True when the znode exists and `version` is -1 or its version.
fn version_matches(state: &ZnodeState, version: i32) -> bool {
    match state {
        Some(z) => version == -1 || z.version == version,
        None => false,
    }
}

/// Steps a conditional write: `ok` says whether its condition holds in `state`.
fn conditional(
    state: &ZnodeState,
    ok: bool,
    result: WriteResult,
    apply: impl FnOnce() -> ZnodeState,
) -> Option<ZnodeState> {
    match result {
        WriteResult::Ok => ok.then(apply),
        WriteResult::Unknown => Some(if ok { apply() } else { state.clone() }),
        // The error names which part of the condition failed.
        WriteResult::Err(ZkError::NoNode) => state.is_none().then(|| state.clone()),
        WriteResult::Err(ZkError::NodeExists) => state.is_some().then(|| state.clone()),
        WriteResult::Err(ZkError::BadVersion) => (state.is_some() && !ok).then(|| state.clone()),
    }
}
