//! Importers for peer histories: Jepsen etcd logs and Porcupine's kv histories, plus
//! faultline's own history JSON.
//!
//! Models the formats of `shared/peer-histories/README.md`. Neither peer format has
//! timestamps: line order is real-time order, so the line index (0-based) is used as the time.
//! Pairing: a process has at most one operation outstanding, so a completion belongs to the
//! open invocation of the same process. A Jepsen `:info` completion does not end the window:
//! the operation stays open to the end of the history (its effect may land at any point after
//! its invocation, or never).
//!
//! Depends on: `check::history` only. Errors name the source, the 1-based line and the problem.

use std::collections::BTreeMap;
use std::fmt;

use super::history::{Call, History, OpId, Outcome, Ret};

/// Malformed input: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    /// File name (or any label of the source).
    pub source: String,
    /// 1-based line (0 when the problem is not on one line).
    pub line: usize,
    /// The problem.
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}:{}: {}", self.source, self.line, self.message)
        }
    }
}

impl std::error::Error for ImportError {}

/// Pairs invocations with completions per process while a file is read.
struct Pairing<'a> {
    source: &'a str,
    history: History,
    open: BTreeMap<u64, OpId>,
}

impl<'a> Pairing<'a> {
    fn new(source: &'a str) -> Self {
        Pairing {
            source,
            history: History::new(),
            open: BTreeMap::new(),
        }
    }

    fn error(&self, line: usize, message: String) -> ImportError {
        ImportError {
            source: self.source.to_string(),
            line: line + 1,
            message,
        }
    }

    fn invoke(&mut self, line: usize, process: u64, call: Call) -> Result<(), ImportError> {
        if let Some(&id) = self.open.get(&process) {
            let first = self.history.ops[id].invoke_ns + 1;
            let msg = format!("process {process} invokes again while its line {first} is open");
            return Err(self.error(line, msg));
        }
        let id = self.history.invoke(process, None, line as u64, call);
        self.open.insert(process, id);
        Ok(())
    }

    /// Completes the open operation of `process`; `same_call` checks the completion matches.
    fn complete(
        &mut self,
        line: usize,
        process: u64,
        outcome: Outcome,
        ret: Option<Ret>,
        same_call: impl Fn(&Call) -> bool,
    ) -> Result<(), ImportError> {
        let Some(id) = self.open.remove(&process) else {
            let msg = format!("process {process} completes an operation it never invoked");
            return Err(self.error(line, msg));
        };
        if !same_call(&self.history.ops[id].call) {
            let msg = format!(
                "this completion does not match the invocation on line {}",
                self.history.ops[id].invoke_ns + 1
            );
            return Err(self.error(line, msg));
        }
        self.history.complete(id, line as u64, outcome, ret, None);
        Ok(())
    }
}

/// Parses a Jepsen etcd log (one register: reads, writes and cas on key `""`).
pub fn parse_etcd(text: &str, source: &str) -> Result<History, ImportError> {
    let mut pairing = Pairing::new(source);
    for (line, content) in text.lines().enumerate() {
        if content.trim().is_empty() {
            continue;
        }
        parse_etcd_line(&mut pairing, line, content)?;
    }
    Ok(pairing.history)
}

fn parse_etcd_line(pairing: &mut Pairing, line: usize, content: &str) -> Result<(), ImportError> {
    // The value of a cas is `[a b]`, with a space inside: it is everything after token 6.
    let mut tokens: Vec<&str> = content.split_whitespace().collect();
    let joined = tokens.get(6..).map(|rest| rest.join(" "));
    if let Some(value) = &joined {
        tokens.truncate(6);
        tokens.push(value);
    }
    if tokens.len() != 7 || tokens[0] != "INFO" || tokens[1] != "jepsen.util" || tokens[2] != "-" {
        let msg = "expected `INFO jepsen.util - PROCESS TYPE F VALUE`".to_string();
        return Err(pairing.error(line, msg));
    }
    let (process, kind, f, value) = (tokens[3], tokens[4], tokens[5], tokens[6]);
    let process: u64 = process
        .parse()
        .map_err(|_| pairing.error(line, format!("bad process number {process:?}")))?;
    let bad = |what: &str| pairing.error(line, format!("bad {what} for {kind} {f}: {value:?}"));
    let key = String::new();
    match (kind, f) {
        (":invoke", ":read") => pairing.invoke(line, process, Call::Read { key }),
        (":invoke", ":write") => {
            let value = parse_int(value).ok_or_else(|| bad("value"))?;
            pairing.invoke(line, process, Call::Write { key, value })
        }
        (":invoke", ":cas") => {
            let (expected, new) = parse_pair(value).ok_or_else(|| bad("pair"))?;
            pairing.invoke(line, process, Call::Cas { key, expected, new })
        }
        (":ok", ":read") => {
            let value = match value {
                "nil" => None,
                v => Some(parse_int(v).ok_or_else(|| bad("value"))?),
            };
            let ret = Some(Ret::Value { value });
            let same = |c: &Call| matches!(c, Call::Read { .. });
            pairing.complete(line, process, Outcome::Ok, ret, same)
        }
        (":ok" | ":fail" | ":info", _) => {
            let outcome = match kind {
                ":ok" => Outcome::Ok,
                ":fail" => Outcome::Fail,
                _ => Outcome::Info,
            };
            let ret = (outcome == Outcome::Ok).then_some(Ret::Done);
            let f = f.to_string();
            let same = move |c: &Call| match c {
                Call::Read { .. } => f == ":read",
                Call::Write { .. } => f == ":write",
                Call::Cas { .. } => f == ":cas",
                _ => false,
            };
            pairing.complete(line, process, outcome, ret, same)
        }
        _ => Err(pairing.error(line, format!("unknown operation {kind} {f}"))),
    }
}

fn parse_int(text: &str) -> Option<i64> {
    text.parse().ok()
}

fn parse_pair(text: &str) -> Option<(i64, i64)> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    let (a, b) = inner.split_once(' ')?;
    Some((parse_int(a)?, parse_int(b)?))
}

/// Parses a Porcupine kv history (EDN maps, one per line).
pub fn parse_kv(text: &str, source: &str) -> Result<History, ImportError> {
    let mut pairing = Pairing::new(source);
    for (line, content) in text.lines().enumerate() {
        if content.trim().is_empty() {
            continue;
        }
        let fields = parse_edn_map(content).map_err(|m| pairing.error(line, m))?;
        kv_event(&mut pairing, line, &fields)?;
    }
    Ok(pairing.history)
}

/// The five fields of a kv line, as raw strings (`value` is `None` for `nil`).
struct KvFields {
    process: u64,
    kind: String,
    f: String,
    key: String,
    value: Option<String>,
}

fn kv_event(pairing: &mut Pairing, line: usize, fields: &KvFields) -> Result<(), ImportError> {
    let key = fields.key.clone();
    let value = || {
        fields
            .value
            .clone()
            .ok_or_else(|| pairing.error(line, format!("{} needs a string value", fields.f)))
    };
    let process = fields.process;
    match (fields.kind.as_str(), fields.f.as_str()) {
        (":invoke", ":get") => pairing.invoke(line, process, Call::Get { key }),
        (":invoke", ":put") => {
            let value = value()?;
            pairing.invoke(line, process, Call::Put { key, value })
        }
        (":invoke", ":append") => {
            let value = value()?;
            pairing.invoke(line, process, Call::Append { key, value })
        }
        (":ok", ":get") => {
            let ret = Some(Ret::Text { value: value()? });
            let same = |c: &Call| matches!(c, Call::Get { key: k } if *k == key);
            pairing.complete(line, process, Outcome::Ok, ret, same)
        }
        (":ok" | ":fail" | ":info", ":put" | ":append") => {
            let outcome = match fields.kind.as_str() {
                ":ok" => Outcome::Ok,
                ":fail" => Outcome::Fail,
                _ => Outcome::Info,
            };
            let ret = (outcome == Outcome::Ok).then_some(Ret::Done);
            let put = fields.f == ":put";
            let same = |c: &Call| match c {
                Call::Put { key: k, .. } => put && *k == key,
                Call::Append { key: k, .. } => !put && *k == key,
                _ => false,
            };
            pairing.complete(line, process, outcome, ret, same)
        }
        (":fail" | ":info", ":get") => {
            let same = |c: &Call| matches!(c, Call::Get { key: k } if *k == key);
            let outcome = if fields.kind == ":fail" {
                Outcome::Fail
            } else {
                Outcome::Info
            };
            pairing.complete(line, process, outcome, None, same)
        }
        (kind, f) => Err(pairing.error(line, format!("unknown operation {kind} {f}"))),
    }
}

/// Parses `{:process 4, :type :ok, :f :get, :key "3", :value ""}`.
fn parse_edn_map(content: &str) -> Result<KvFields, String> {
    let inner = content
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or("expected an EDN map `{...}`")?;
    let mut rest = inner;
    let mut fields: BTreeMap<&str, Option<String>> = BTreeMap::new();
    while !rest.trim_start().is_empty() {
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        let (name, after) = rest.split_once(' ').ok_or("expected `:name value`")?;
        let after = after.trim_start();
        let (value, tail) = if let Some(s) = after.strip_prefix('"') {
            let end = s.find('"').ok_or("unterminated string")?;
            (Some(s[..end].to_string()), &s[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            let token = after[..end].trim();
            let value = (token != "nil").then(|| token.to_string());
            (value, &after[end..])
        };
        fields.insert(name, value);
        rest = tail;
    }
    let mut take = |name: &str| -> Result<Option<String>, String> {
        fields.remove(name).ok_or(format!("missing {name}"))
    };
    let process = take(":process")?.ok_or("nil :process")?;
    let process = process
        .parse()
        .map_err(|_| format!("bad :process {process:?}"))?;
    let kind = take(":type")?.ok_or("nil :type")?;
    let f = take(":f")?.ok_or("nil :f")?;
    let key = take(":key")?.ok_or("nil :key")?;
    let value = take(":value")?;
    if let Some(name) = fields.keys().next() {
        return Err(format!("unexpected field {name}"));
    }
    Ok(KvFields {
        process,
        kind,
        f,
        key,
        value,
    })
}

/// Parses faultline's history JSON ([`History`]); errors name the line and column.
pub fn parse_json(text: &str, source: &str) -> Result<History, ImportError> {
    let history: History = serde_json::from_str(text).map_err(|e| ImportError {
        source: source.to_string(),
        line: e.line(),
        message: format!("{e}"),
    })?;
    for (id, op) in history.ops.iter().enumerate() {
        if let Some(end) = op.complete_ns {
            if end < op.invoke_ns {
                return Err(ImportError {
                    source: source.to_string(),
                    line: 0,
                    message: format!("ops[{id}]: complete_ns {end} < invoke_ns {}", op.invoke_ns),
                });
            }
        }
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_tab_and_space_separated_lines_parse_alike() {
        let tabs = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\n";
        let spaces = "INFO  jepsen.util - 2   :invoke :cas    [3 0]\n\
                      INFO  jepsen.util - 2   :fail   :cas    [3 0]\n";
        let a = parse_etcd(tabs, "a").unwrap();
        assert_eq!(a, parse_etcd(spaces, "b").unwrap());
        let op = &a.ops[0];
        let cas = Call::Cas {
            key: String::new(),
            expected: 3,
            new: 0,
        };
        assert_eq!(
            (op.call.clone(), op.outcome, op.end_ns()),
            (cas, Outcome::Fail, Some(1))
        );
    }

    #[test]
    fn etcd_info_stays_open_and_nil_is_no_value() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:write\t4\n\
                    INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 0\t:info\t:write\t:timed-out\n\
                    INFO  jepsen.util - 1\t:ok\t:read\tnil\n";
        let h = parse_etcd(text, "x").unwrap();
        assert!(h.ops[0].is_open());
        assert_eq!(h.ops[1].ret, Some(Ret::Value { value: None }));
        assert_eq!(h.ops[1].end_ns(), Some(3));
    }

    #[test]
    fn etcd_errors_name_the_line() {
        let text = "INFO  jepsen.util - 0\t:ok\t:read\t1\n";
        let err = parse_etcd(text, "f.log").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.log:1: process 0 completes an operation it never invoked"
        );
        let text =
            "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:write\t1\n";
        let err = parse_etcd(text, "f.log").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn kv_lines_parse_with_long_and_empty_strings() {
        let text = "{:process 4, :type :invoke, :f :get, :key \"3\", :value nil}\n\
                    {:process 4, :type :ok, :f :get, :key \"3\", :value \"\"}\n\
                    {:process 9, :type :invoke, :f :append, :key \"6\", \
                     :value \"x 9 3 yx 1 2 y\"}\n\
                    {:process 9, :type :ok, :f :append, :key \"6\", :value \"x 9 3 yx 1 2 y\"}\n";
        let h = parse_kv(text, "kv").unwrap();
        assert_eq!(
            h.ops[0].ret,
            Some(Ret::Text {
                value: String::new()
            })
        );
        let append = Call::Append {
            key: "6".into(),
            value: "x 9 3 yx 1 2 y".into(),
        };
        assert_eq!(h.ops[1].call, append);
    }
}
