//! Key-value map of strings with get / put / append, checked one key at a time.
//!
//! Models Porcupine's kv histories: a missing key reads as `""`; `put` replaces; `append`
//! concatenates. Each key is an independent object (the partition key is the key), so by
//! locality the map is linearizable iff every key is.
//!
//! Depends on: `check::history` and the [`SequentialSpec`] trait.

use super::{Compiled, SequentialSpec};
use crate::check::history::{Call, Op, Outcome, Ret};

/// Compiled key-value operation (on the key given by the partition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// A get that returned this string.
    Get(String),
    /// A put (completed or open).
    Put(String),
    /// An append (completed or open).
    Append(String),
}

/// The key-value map spec.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvSpec;

impl SequentialSpec for KvSpec {
    type State = String;
    type Op = KvOp;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn init(&self) -> String {
        String::new()
    }

    fn compile<'a>(&self, op: &'a Op) -> Result<Option<Compiled<'a, KvOp>>, String> {
        let compiled = match (&op.call, op.outcome) {
            (Call::Get { key }, Outcome::Ok) => match &op.ret {
                Some(Ret::Text { value }) => Some((key.as_str(), KvOp::Get(value.clone()))),
                other => return Err(format!("an ok get needs a `text` result, got {other:?}")),
            },
            (Call::Get { .. }, _) => None,
            (Call::Put { .. } | Call::Append { .. }, Outcome::Fail) => None,
            (Call::Put { key, value }, _) => Some((key.as_str(), KvOp::Put(value.clone()))),
            (Call::Append { key, value }, _) => Some((key.as_str(), KvOp::Append(value.clone()))),
            (call, _) => return Err(format!("the kv model has no {call:?}")),
        };
        Ok(compiled)
    }

    fn step(&self, state: &String, op: &KvOp) -> Option<String> {
        match op {
            KvOp::Get(v) => (state == v).then(|| state.clone()),
            KvOp::Put(v) => Some(v.clone()),
            KvOp::Append(v) => {
                let mut next = String::with_capacity(state.len() + v.len());
                next.push_str(state);
                next.push_str(v);
                Some(next)
            }
        }
    }
}
