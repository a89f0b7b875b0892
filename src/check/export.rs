//! Exporters: a history written back in the peer formats [`super::import`] reads, so that a
//! faultline history can be checked by Jepsen's or Porcupine's own tools.
//!
//! - `etcd`: Jepsen's log lines `INFO  jepsen.util - P\t:TYPE\t:F\tVALUE` for one register
//!   (`read`, `write`, `cas` on the key `""`).
//! - `kv`: Porcupine's EDN maps `{:process P, :type :TYPE, :f :F, :key "K", :value V}` for
//!   `get`, `put` and `append`.
//!
//! Neither format has timestamps: the order of lines is real time. Events are written in
//! time order with, at one instant, invocations before completions, so operations that were
//! concurrent (equal times count as concurrent) stay concurrent. An open operation has no
//! completion line; an `info` one gets an `:info` line. An operation the format cannot carry
//! is an error naming it.
//!
//! Depends on: `check::history` only.

use std::fmt::Write;

use super::history::{Call, History, Op, Outcome, Ret};

/// Accepted `--export` formats.
pub const EXPORT_FORMATS: &[&str] = &["etcd", "kv"];

/// Writes `history` in `format`; the error names the first operation the format cannot carry.
pub fn export(history: &History, format: &str) -> Result<String, String> {
    let line: fn(&Op, Event) -> Result<String, String> = match format {
        "etcd" => etcd_line,
        "kv" => kv_line,
        other => {
            return Err(format!(
                "unknown export format {other:?} (expected one of: {})",
                EXPORT_FORMATS.join(", ")
            ))
        }
    };
    let mut events: Vec<(u64, u8, usize, Event)> = Vec::new();
    for (i, op) in history.ops.iter().enumerate() {
        events.push((op.invoke_ns, 0, i, Event::Invoke));
        let kind = match op.outcome {
            Outcome::Ok => Event::Ok,
            Outcome::Fail => Event::Fail,
            Outcome::Info => Event::Info,
        };
        // An operation without a completion time stays open: no completion line.
        if let Some(t) = op.complete_ns {
            events.push((t, 1, i, kind));
        }
    }
    events.sort_by_key(|(t, order, i, _)| (*t, *order, *i));
    let mut out = String::new();
    for (_, _, i, event) in events {
        let text = line(&history.ops[i], event).map_err(|e| format!("operation {i}: {e}"))?;
        let _ = writeln!(out, "{text}");
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl Event {
    fn keyword(self) -> &'static str {
        match self {
            Event::Invoke => ":invoke",
            Event::Ok => ":ok",
            Event::Fail => ":fail",
            Event::Info => ":info",
        }
    }
}

fn etcd_line(op: &Op, event: Event) -> Result<String, String> {
    let key = match &op.call {
        Call::Read { key } | Call::Write { key, .. } | Call::Cas { key, .. } => key,
        other => {
            return Err(format!(
                "{other:?} is not a register operation (etcd format)"
            ))
        }
    };
    if !key.is_empty() {
        return Err(format!(
            "register key {key:?}: the etcd format has one register only"
        ));
    }
    let (f, value) = match (&op.call, event) {
        (Call::Read { .. }, Event::Ok) => match &op.ret {
            Some(Ret::Value { value: Some(v) }) => ("read", v.to_string()),
            _ => ("read", "nil".to_string()),
        },
        (Call::Read { .. }, _) => ("read", "nil".to_string()),
        (Call::Write { value, .. }, _) => ("write", value.to_string()),
        (Call::Cas { expected, new, .. }, _) => ("cas", format!("[{expected} {new}]")),
        _ => unreachable!("checked above"),
    };
    Ok(format!(
        "INFO  jepsen.util - {}\t{}\t:{f}\t{value}",
        op.process,
        event.keyword()
    ))
}

fn kv_line(op: &Op, event: Event) -> Result<String, String> {
    let (f, key, value) = match &op.call {
        Call::Get { key } => {
            let value = match (&op.ret, event) {
                (Some(Ret::Text { value }), Event::Ok) => Some(value.clone()),
                _ => None,
            };
            ("get", key, value)
        }
        Call::Put { key, value } => ("put", key, Some(value.clone())),
        Call::Append { key, value } => ("append", key, Some(value.clone())),
        other => {
            return Err(format!(
                "{other:?} is not a key-value operation (kv format)"
            ))
        }
    };
    let quoted = |s: &str| {
        if s.contains('"') || s.contains('\\') {
            Err(format!(
                "{s:?}: the kv format cannot carry quotes or backslashes"
            ))
        } else {
            Ok(format!("\"{s}\""))
        }
    };
    let value = match value {
        Some(v) => quoted(&v)?,
        None => "nil".to_string(),
    };
    Ok(format!(
        "{{:process {}, :type {}, :f :{f}, :key {}, :value {value}}}",
        op.process,
        event.keyword(),
        quoted(key)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::import::{parse_etcd, parse_kv};

    #[test]
    fn concurrent_operations_stay_concurrent() {
        let mut h = History::new();
        let a = h.invoke(
            0,
            None,
            10,
            Call::Write {
                key: String::new(),
                value: 1,
            },
        );
        h.complete(a, 20, Outcome::Ok, Some(Ret::Done), None);
        // Invoked at the instant `a` completed: concurrent with it.
        let b = h.invoke(1, None, 20, Call::Read { key: String::new() });
        h.complete(
            b,
            30,
            Outcome::Ok,
            Some(Ret::Value { value: Some(1) }),
            None,
        );
        let c = h.invoke(
            2,
            None,
            25,
            Call::Cas {
                key: String::new(),
                expected: 1,
                new: 2,
            },
        );
        h.complete(c, 26, Outcome::Info, None, None);
        let text = export(&h, "etcd").unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "INFO  jepsen.util - 0\t:invoke\t:write\t1");
        assert_eq!(lines[1], "INFO  jepsen.util - 1\t:invoke\t:read\tnil");
        assert_eq!(lines[2], "INFO  jepsen.util - 0\t:ok\t:write\t1");
        assert_eq!(lines[4], "INFO  jepsen.util - 2\t:info\t:cas\t[1 2]");
        assert_eq!(lines[5], "INFO  jepsen.util - 1\t:ok\t:read\t1");
        let back = parse_etcd(&text, "x").unwrap();
        assert_eq!(back.ops.len(), 3);
        assert_eq!(back.ops[1].ret, Some(Ret::Value { value: Some(1) }));
    }

    #[test]
    fn what_a_format_cannot_carry_is_an_error() {
        let mut h = History::new();
        let a = h.invoke(0, None, 1, Call::GetData { path: "/a".into() });
        h.complete(a, 2, Outcome::Ok, None, None);
        assert!(export(&h, "etcd").unwrap_err().contains("operation 0"));
        assert!(export(&h, "kv").unwrap_err().contains("not a key-value"));
        assert!(export(&h, "edn")
            .unwrap_err()
            .contains("unknown export format"));
        let mut h = History::new();
        let p = h.invoke(
            0,
            None,
            1,
            Call::Put {
                key: "k".into(),
                value: "a\"b".into(),
            },
        );
        h.complete(p, 2, Outcome::Ok, Some(Ret::Done), None);
        assert!(export(&h, "kv").unwrap_err().contains("quotes"));
    }

    /// The peer files read, written and read again give the same history.
    #[test]
    fn peer_histories_round_trip() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/peer-histories/porcupine");
        let cases = [("jepsen/etcd_000.log", "etcd"), ("kv/c10-bad.txt", "kv")];
        for (file, format) in cases {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                panic!("peer history {file} is missing");
            };
            let parse = |t: &str| match format {
                "etcd" => parse_etcd(t, file).unwrap(),
                _ => parse_kv(t, file).unwrap(),
            };
            let first = parse(&text);
            let written = export(&first, format).unwrap();
            let second = parse(&written);
            assert_eq!(first.ops.len(), second.ops.len(), "{file}");
            for (a, b) in first.ops.iter().zip(&second.ops) {
                assert_eq!(
                    (a.process, &a.call, a.outcome),
                    (b.process, &b.call, b.outcome)
                );
                assert_eq!(a.ret, b.ret, "{file}");
            }
        }
    }
}
