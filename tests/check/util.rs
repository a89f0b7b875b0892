//! Small builders for hand-written histories.

use faultline::check::{Call, History, OpId, Outcome, Ret};

/// Appends one operation invoked at `invoke` and completed at `end` (`None`: open).
pub fn op(
    h: &mut History,
    process: u64,
    (invoke, end): (u64, Option<u64>),
    call: Call,
    outcome: Outcome,
    ret: Option<Ret>,
) -> OpId {
    let id = h.invoke(process, None, invoke, call);
    if let Some(end) = end {
        h.complete(id, end, outcome, ret, None);
    }
    id
}

pub fn read(key: &str) -> Call {
    Call::Read { key: key.into() }
}

pub fn write(key: &str, value: i64) -> Call {
    Call::Write {
        key: key.into(),
        value,
    }
}

pub fn value(v: Option<i64>) -> Option<Ret> {
    Some(Ret::Value { value: v })
}
