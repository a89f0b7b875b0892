//! Register and compare-and-set register, one independent register per key.
//!
//! Models Jepsen's etcd "register" test as Porcupine checks it: the initial value is nil (no
//! value), which differs from every integer; a `cas` that completed `fail` means the compare ran
//! and saw another value (stricter than Knossos, which drops it); a timed-out read constrains
//! nothing; an open write or cas may take effect at any point after its invocation, or never.
//!
//! Depends on: `check::history` and the [`SequentialSpec`] trait.

use super::{Compiled, SequentialSpec};
use crate::check::history::{Call, Op, Outcome, Ret};

/// A register value: `None` = never written (nil).
pub type RegisterValue = Option<i64>;

/// Compiled register operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// A read that returned this value.
    Read(RegisterValue),
    /// A write (completed or open: a write is legal in every state).
    Write(i64),
    /// A cas that succeeded: the value was `expected` and became `new`.
    CasOk { expected: i64, new: i64 },
    /// A cas whose compare failed: the value was not `expected`.
    CasFail { expected: i64 },
    /// An open cas: legal anywhere; applies only where the value equals `expected`.
    CasMaybe { expected: i64, new: i64 },
}

/// Register (`cas: false`) or compare-and-set register (`cas: true`).
#[derive(Clone, Copy, Debug)]
pub struct RegisterSpec {
    /// Accept `cas` operations.
    pub cas: bool,
}

impl SequentialSpec for RegisterSpec {
    type State = RegisterValue;
    type Op = RegisterOp;

    fn name(&self) -> &'static str {
        if self.cas {
            "cas-register"
        } else {
            "register"
        }
    }

    fn init(&self) -> RegisterValue {
        None
    }

    fn compile<'a>(&self, op: &'a Op) -> Result<Option<Compiled<'a, RegisterOp>>, String> {
        let compiled = match (&op.call, op.outcome) {
            (Call::Read { key }, Outcome::Ok) => match &op.ret {
                Some(Ret::Value { value }) => Some((key.as_str(), RegisterOp::Read(*value))),
                other => return Err(format!("an ok read needs a `value` result, got {other:?}")),
            },
            // A failed or timed-out read observed nothing.
            (Call::Read { .. }, _) => None,
            // A failed write certainly did not apply.
            (Call::Write { .. }, Outcome::Fail) => None,
            (Call::Write { key, value }, _) => Some((key.as_str(), RegisterOp::Write(*value))),
            (Call::Cas { key, expected, new }, outcome) if self.cas => {
                let (expected, new) = (*expected, *new);
                let op = match outcome {
                    Outcome::Ok => RegisterOp::CasOk { expected, new },
                    Outcome::Fail => RegisterOp::CasFail { expected },
                    Outcome::Info => RegisterOp::CasMaybe { expected, new },
                };
                Some((key.as_str(), op))
            }
            (call, _) => return Err(format!("the {} model has no {call:?}", self.name())),
        };
        Ok(compiled)
    }

    fn step(&self, state: &RegisterValue, op: &RegisterOp) -> Option<RegisterValue> {
        match *op {
            RegisterOp::Read(v) => (*state == v).then_some(*state),
            RegisterOp::Write(v) => Some(Some(v)),
            RegisterOp::CasOk { expected, new } => (*state == Some(expected)).then_some(Some(new)),
            RegisterOp::CasFail { expected } => (*state != Some(expected)).then_some(*state),
            RegisterOp::CasMaybe { expected, new } => Some(if *state == Some(expected) {
                Some(new)
            } else {
                *state
            }),
        }
    }
}
