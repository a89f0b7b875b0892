//! A captured run for other tools: every event as JSON lines, and a ShiViz log with vector
//! clocks (`faultline run --trace FILE`).
//!
//! JSON lines (`FILE`), one object per line, ordered by virtual time and, within one instant,
//! by event index (kernel notes such as faults first, then each event followed by the messages
//! its handler sent):
//! - `{"type":"event","t_ns","event","node","kind","detail"}` for every delivered event
//!   (`kind` start, restart, conn_up, conn_down, message, timer, fsync_done) with `"msg": ID`
//!   on a message delivery;
//! - `{"type":"note","t_ns","kind","detail"}` for a kernel note (a fault, a halt);
//! - `{"type":"send","t_ns","event","node","to","msg","payload"}` for every message sent
//!   (`event`: the event whose handler sent it; `delivered_ns` when it arrived, absent when
//!   it was lost).
//!
//! ShiViz (`FILE.shiviz`): the first line is the parsing regular expression, the second the
//! (empty) execution delimiter, then two lines per event: `<what>` and
//! `<node> {"node": n, ...}`. Events are the sends, the deliveries, crashes, restarts and halts;
//! each node's own clock entry counts its events from 1, a send carries the sender's clock
//! and a delivery merges it (the usual vector-clock rule), so ShiViz draws each message as an
//! edge from its send to its delivery.
//!
//! Depends on: sim (capture and timeline types).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::json;

use crate::sim::capture::{Capture, Step};
use crate::sim::trace::TimelineLine;

/// ShiViz's parsing expression for the log this module writes.
pub const SHIVIZ_REGEX: &str = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})";

/// The run's events as JSON lines.
pub fn json_lines(names: &[String], timeline: &[TimelineLine], capture: &Capture) -> String {
    let name = |i: u32| names.get(i as usize).map_or("?", String::as_str);
    let delivered: BTreeMap<u64, usize> = capture
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.delivery_event > 0)
        .map(|(id, m)| (m.delivery_event, id))
        .collect();
    // (time, event index, 0 note / 1 event / 2 send, sequence) keeps a stable total order.
    let mut rows: Vec<((u64, u64, u8, usize), serde_json::Value)> = Vec::new();
    for (seq, l) in timeline.iter().enumerate() {
        if l.event == 0 {
            let v = json!({"type": "note", "t_ns": l.time_ns, "kind": l.kind, "detail": l.detail});
            rows.push(((l.time_ns, 0, 0, seq), v));
            continue;
        }
        let mut v = json!({"type": "event", "t_ns": l.time_ns, "event": l.event,
            "node": l.node, "kind": l.kind, "detail": l.detail});
        if let Some(id) = delivered.get(&l.event) {
            v["msg"] = json!(id);
        }
        rows.push(((l.time_ns, l.event, 1, seq), v));
    }
    for (id, m) in capture.messages.iter().enumerate() {
        let mut v = json!({"type": "send", "t_ns": m.sent_ns, "event": m.sent_by_event,
            "node": name(m.from), "to": name(m.to), "msg": id, "payload": m.summary});
        if let Some(t) = m.delivered_ns {
            v["delivered_ns"] = json!(t);
        }
        rows.push(((m.sent_ns, m.sent_by_event, 2, id), v));
    }
    rows.sort_by_key(|(k, _)| *k);
    let mut out = String::new();
    for (_, v) in rows {
        let _ = writeln!(out, "{v}");
    }
    out
}

/// The run as a ShiViz log with vector clocks.
pub fn shiviz(names: &[String], capture: &Capture) -> String {
    let mut clocks: Vec<BTreeMap<&str, u64>> = vec![BTreeMap::new(); names.len()];
    let mut sent: Vec<BTreeMap<&str, u64>> = vec![BTreeMap::new(); capture.messages.len()];
    let mut out = format!("{SHIVIZ_REGEX}\n\n");
    let name = |i: u32| names[i as usize].as_str();
    for step in &capture.order {
        let (node, text) = match *step {
            Step::Send(id) => {
                let m = &capture.messages[id as usize];
                let text = format!(
                    "{} send to {}: {}",
                    crate::sim::time::fmt_ns(m.sent_ns),
                    name(m.to),
                    m.summary
                );
                (m.from, text)
            }
            Step::Deliver(id) => {
                let m = &capture.messages[id as usize];
                for (host, t) in &sent[id as usize] {
                    let mine = clocks[m.to as usize].entry(host).or_insert(0);
                    *mine = (*mine).max(*t);
                }
                let at = m.delivered_ns.unwrap_or(m.sent_ns);
                let text = format!(
                    "{} receive from {}: {}",
                    crate::sim::time::fmt_ns(at),
                    name(m.from),
                    m.summary
                );
                (m.to, text)
            }
            Step::Mark(i) => {
                let k = &capture.marks[i as usize];
                let text = format!(
                    "{} {} {}",
                    crate::sim::time::fmt_ns(k.at_ns),
                    k.kind,
                    k.detail
                );
                (k.node, text)
            }
        };
        let me = name(node);
        *clocks[node as usize].entry(me).or_insert(0) += 1;
        if let Step::Send(id) = step {
            sent[*id as usize] = clocks[node as usize].clone();
        }
        let clock = serde_json::to_string(&clocks[node as usize]).expect("a map of numbers");
        let text = text.replace('\n', " ");
        let _ = write!(out, "{}\n{me} {clock}\n", text.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    /// a sends m0 to b, b replies m1; the reply's delivery knows both of a's events before it.
    #[test]
    fn vector_clocks_follow_the_messages() {
        let mut c = Capture::default();
        let m0 = c.sent((0, 1), 10, 1, &"hello");
        c.delivered(m0, 20, 2);
        let m1 = c.sent((1, 0), 20, 2, &"reply");
        c.delivered(m1, 30, 3);
        let log = shiviz(&names(), &c);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines[0], SHIVIZ_REGEX);
        assert_eq!(lines[1], "");
        assert_eq!(lines[3], "a {\"a\":1}");
        assert_eq!(lines[5], "b {\"a\":1,\"b\":1}");
        assert_eq!(lines[7], "b {\"a\":1,\"b\":2}");
        assert_eq!(lines[9], "a {\"a\":2,\"b\":2}");
        assert!(lines[8].contains("receive from b: \"reply\""));
    }

    #[test]
    fn json_lines_link_sends_and_deliveries() {
        let mut c = Capture::default();
        let m0 = c.sent((0, 1), 10, 1, &"hello");
        c.delivered(m0, 20, 2);
        let line = |t, e, node: &str, kind: &str| TimelineLine {
            time_ns: t,
            event: e,
            node: node.into(),
            kind: kind.into(),
            detail: String::new(),
        };
        let timeline = vec![
            line(10, 1, "a", "timer"),
            line(15, 0, "world", "fault"),
            line(20, 2, "b", "message"),
        ];
        let text = json_lines(&names(), &timeline, &c);
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = rows.iter().map(|r| r["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["event", "send", "note", "event"]);
        assert_eq!(rows[1]["msg"], 0);
        assert_eq!(rows[1]["to"], "b");
        assert_eq!(rows[1]["delivered_ns"], 20);
        assert_eq!(rows[3]["msg"], 0);
    }
}
