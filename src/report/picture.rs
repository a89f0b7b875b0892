//! The data behind a report's pictures, chosen from a captured run: lanes, the window that
//! matters, the messages inside it, roles, node and fault intervals, the client operations of
//! the invariant's key, the violating event and the checker's witness. Stored in the JSON
//! report (`picture`), so the HTML can be rendered again from the JSON alone.
//!
//! The window runs from the last fault or leader change before the violating event to that
//! event (with a little margin either side), so the diagram shows the cause and the effect
//! and not the seconds of steady state before them. The whole run is kept for the overview
//! strip, without messages.
//!
//! Depends on: cluster (capture and outcome types), scenario, sim (capture and fault types).

use serde::{Deserialize, Serialize};

use crate::cluster::capture::{ClientOp, RoleChange, RunCapture, Witness};
use crate::cluster::{AppliedFault, Violation};
use crate::scenario::Scenario;
use crate::sim::capture::{MsgRecord, NodeMark};
use crate::sim::fault::FaultAction;

/// Most messages drawn in the window; past it the window starts later (the newest kept).
pub const WINDOW_MESSAGES_MAX: usize = 400;
/// A window never shows less than this much time before the violating event.
pub const WINDOW_MIN_NS: u64 = 50_000_000;

/// One lane: a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    pub name: String,
    /// "server" (a fault target) or "client".
    pub kind: String,
}

/// A fault as an interval across the lanes it cuts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultSpan {
    /// "down" (crashed or halted), "partition", "one_way", "clog", "delay_spike",
    /// "fsync_spike", "read_corruption", "reset".
    pub kind: String,
    pub from_ns: u64,
    /// Equal to `from_ns` for an instant (a reset).
    pub to_ns: u64,
    /// The lanes shaded (indices into `lanes`).
    pub lanes: Vec<u32>,
    pub label: String,
}

/// The violating event: when, where and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadEvent {
    pub at_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<u32>,
    pub label: String,
}

/// Everything the diagrams draw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picture {
    pub lanes: Vec<Lane>,
    pub run_end_ns: u64,
    /// When the healed phase began.
    pub heal_ns: u64,
    pub window_from_ns: u64,
    pub window_to_ns: u64,
    /// Why the window starts where it does.
    pub window_reason: String,
    /// Messages sent or delivered inside the window, in send order.
    pub messages: Vec<MsgRecord>,
    /// Messages of the window left out to keep the picture readable.
    pub messages_left_out: usize,
    pub roles: Vec<RoleChange>,
    pub marks: Vec<NodeMark>,
    pub faults: Vec<FaultSpan>,
    /// The key of the invariant ("" when it concerns no key) and its client operations.
    pub key: String,
    pub ops: Vec<ClientOp>,
    pub bad: BadEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
}

/// Builds the picture of a captured run that violated `violation`.
pub fn build(
    scenario: &Scenario,
    capture: &RunCapture,
    applied: &[AppliedFault],
    violation: &Violation,
    run_end_ns: u64,
) -> Picture {
    let names = scenario.system.node_names();
    let servers = scenario.system.fault_target_names();
    let lanes: Vec<Lane> = names
        .iter()
        .map(|n| Lane {
            name: n.clone(),
            kind: if servers.contains(n) {
                "server"
            } else {
                "client"
            }
            .to_string(),
        })
        .collect();
    let heal_ns = scenario.duration.ns().min(run_end_ns);
    let lane_of = |name: &str| names.iter().position(|n| n == name).map(|i| i as u32);
    let witness = capture.witness.clone();
    let key = witness.as_ref().map(|w| w.key.clone()).unwrap_or_default();
    let bad = bad_event(violation, witness.as_ref(), &lane_of);
    let mut faults = fault_spans(applied, heal_ns, run_end_ns, names.len(), &lane_of);
    faults.extend(down_spans(&capture.kernel.marks, &names, run_end_ns));
    faults.sort_by_key(|f| (f.from_ns, f.to_ns));
    let (from, reason) = window_start(bad.at_ns, &faults, &capture.roles, &names);
    let span = bad.at_ns.saturating_sub(from).max(WINDOW_MIN_NS);
    let mut window_from = bad.at_ns.saturating_sub(span + span / 10);
    let window_to = (bad.at_ns + span / 10).min(run_end_ns.max(bad.at_ns));
    let inside = |m: &MsgRecord| {
        let end = m.delivered_ns.unwrap_or(m.sent_ns);
        end >= window_from && m.sent_ns <= window_to
    };
    let mut messages: Vec<MsgRecord> = capture
        .kernel
        .messages
        .iter()
        .filter(|m| inside(m))
        .cloned()
        .collect();
    let mut left_out = 0;
    if messages.len() > WINDOW_MESSAGES_MAX {
        left_out = messages.len() - WINDOW_MESSAGES_MAX;
        // Keep the messages nearest the violating event; the window starts at the first kept.
        messages.sort_by_key(|m| std::cmp::Reverse(m.sent_ns.min(window_to)));
        messages.truncate(WINDOW_MESSAGES_MAX);
        messages.sort_by_key(|m| m.sent_ns);
        window_from = window_from.max(messages[0].sent_ns);
        messages.retain(|m| m.sent_ns >= window_from);
    }
    let ops = capture
        .ops
        .iter()
        .filter(|o| !key.is_empty() && o.key == key)
        .cloned()
        .collect();
    Picture {
        lanes,
        run_end_ns,
        heal_ns,
        window_from_ns: window_from,
        window_to_ns: window_to,
        window_reason: reason,
        messages,
        messages_left_out: left_out,
        roles: capture.roles.clone(),
        marks: capture.kernel.marks.clone(),
        faults,
        key,
        ops,
        bad,
        witness,
    }
}

fn bad_event(
    v: &Violation,
    witness: Option<&Witness>,
    lane_of: &dyn Fn(&str) -> Option<u32>,
) -> BadEvent {
    let at_ns = witness.and_then(|w| w.bad_at_ns).unwrap_or(v.at_ns);
    let lane = v.node.as_deref().and_then(lane_of).or_else(|| {
        let w = witness?;
        let op = w
            .ops
            .iter()
            .find(|o| o.mark == crate::cluster::capture::Mark::Culprit)?;
        Some(op.op.node)
    });
    BadEvent {
        at_ns,
        lane,
        label: format!("{}: {}", v.invariant, v.message),
    }
}

/// The last fault or leader change at or before `bad_ns`, and why it was chosen.
fn window_start(
    bad_ns: u64,
    faults: &[FaultSpan],
    roles: &[RoleChange],
    names: &[String],
) -> (u64, String) {
    let fault = faults
        .iter()
        .filter(|f| f.from_ns <= bad_ns && f.from_ns > 0)
        .max_by_key(|f| f.from_ns)
        .map(|f| (f.from_ns, format!("{} ({})", f.label, f.kind)));
    let leader = roles
        .iter()
        .filter(|r| r.at_ns <= bad_ns && r.role.name == "LEADING")
        .max_by_key(|r| r.at_ns)
        .map(|r| {
            let name = names
                .get(r.node as usize)
                .map(String::as_str)
                .unwrap_or("?");
            (
                r.at_ns,
                format!("{name} became leader in epoch {}", r.role.epoch),
            )
        });
    match (fault, leader) {
        (Some(f), Some(l)) => {
            if f.0 >= l.0 {
                (f.0, format!("the last fault before the violation: {}", f.1))
            } else {
                (
                    l.0,
                    format!("the last leader change before the violation: {}", l.1),
                )
            }
        }
        (Some(f), None) => (f.0, format!("the last fault before the violation: {}", f.1)),
        (None, Some(l)) => (
            l.0,
            format!("the last leader change before the violation: {}", l.1),
        ),
        (None, None) => (
            0,
            "no fault or leader change before the violation".to_string(),
        ),
    }
}

/// Crashed or halted intervals, from the kernel's marks.
fn down_spans(marks: &[NodeMark], names: &[String], run_end_ns: u64) -> Vec<FaultSpan> {
    let mut open: Vec<Option<(u64, String)>> = vec![None; names.len()];
    let mut out = Vec::new();
    for m in marks {
        let i = m.node as usize;
        match m.kind.as_str() {
            "crash" | "kill" | "halt" if open[i].is_none() => {
                open[i] = Some((m.at_ns, m.kind.clone()))
            }
            "restart" => {
                if let Some((from, kind)) = open[i].take() {
                    out.push(down(from, m.at_ns, m.node, &names[i], &kind));
                }
            }
            _ => {}
        }
    }
    for (i, o) in open.into_iter().enumerate() {
        if let Some((from, kind)) = o {
            out.push(down(from, run_end_ns, i as u32, &names[i], &kind));
        }
    }
    out
}

fn down(from_ns: u64, to_ns: u64, lane: u32, name: &str, how: &str) -> FaultSpan {
    let verb = match how {
        "halt" => "halted",
        "kill" => "killed",
        _ => "crashed",
    };
    FaultSpan {
        kind: "down".into(),
        from_ns,
        to_ns,
        lanes: vec![lane],
        label: format!("{name} {verb}"),
    }
}

/// Network and disk faults as intervals: a partition lasts until the next heal (or the
/// healed phase), a clog or spike for its duration.
fn fault_spans(
    applied: &[AppliedFault],
    heal_ns: u64,
    run_end_ns: u64,
    nodes: usize,
    lane_of: &dyn Fn(&str) -> Option<u32>,
) -> Vec<FaultSpan> {
    let lanes = |v: &[String]| v.iter().filter_map(|n| lane_of(n)).collect::<Vec<u32>>();
    let next_heal = |at: u64| {
        applied
            .iter()
            .filter(|f| f.at_ns >= at && matches!(f.action, FaultAction::Heal))
            .map(|f| f.at_ns)
            .min()
            .unwrap_or(heal_ns)
            .max(at)
    };
    let mut out = Vec::new();
    for f in applied {
        let at = f.at_ns;
        let span = |kind: &str, to: u64, lanes: Vec<u32>, label: String| FaultSpan {
            kind: kind.to_string(),
            from_ns: at,
            to_ns: to.min(run_end_ns.max(at)),
            lanes,
            label,
        };
        match &f.action {
            FaultAction::Partition { groups, .. } => {
                // Shade every group but the largest: the sides cut off from the majority.
                let largest = (0..groups.len()).max_by_key(|i| (groups[*i].len(), usize::MAX - i));
                let text: Vec<String> = groups.iter().map(|g| g.join(" ")).collect();
                let cut: Vec<u32> = groups
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != largest)
                    .flat_map(|(_, g)| lanes(g))
                    .collect();
                let label = format!("partition [{}]", text.join(" | "));
                out.push(span("partition", next_heal(at), cut, label));
            }
            FaultAction::OneWay { from, to, .. } => {
                let label = format!("one-way: {} -/-> {}", from.join(" "), to.join(" "));
                out.push(span("one_way", next_heal(at), lanes(from), label));
            }
            FaultAction::Clog {
                node,
                extra_delay,
                duration,
            } => {
                let label = format!("{node} clogged (+{extra_delay})");
                out.push(span(
                    "clog",
                    at + duration.ns(),
                    lanes(std::slice::from_ref(node)),
                    label,
                ));
            }
            FaultAction::DelaySpike {
                extra_delay,
                duration,
            } => {
                let all = (0..nodes as u32).collect();
                let label = format!("delay spike (+{extra_delay})");
                out.push(span("delay_spike", at + duration.ns(), all, label));
            }
            FaultAction::FsyncSpike {
                node,
                extra_latency,
                duration,
            } => {
                let label = format!("{node} fsync spike (+{extra_latency})");
                let l = lanes(std::slice::from_ref(node));
                out.push(span("fsync_spike", at + duration.ns(), l, label));
            }
            FaultAction::ReadCorruption { ratio } => {
                let all = (0..nodes as u32).collect();
                let label = format!("read corruption {}/{}", ratio.num, ratio.den);
                out.push(span("read_corruption", heal_ns.max(at), all, label));
            }
            FaultAction::Reset { node } => {
                let label = format!("{node}: connections reset");
                out.push(span("reset", at, lanes(std::slice::from_ref(node)), label));
            }
            FaultAction::IsolateGroup { nodes: group, .. } => {
                let label = format!("isolated group: {}", group.join(" "));
                out.push(span("partition", next_heal(at), lanes(group), label));
            }
            // Crashes and restarts come from the kernel's marks (they include halts and the
            // restarts of the healed phase); a heal ends the spans above.
            FaultAction::Crash { .. }
            | FaultAction::CrashSet { .. }
            | FaultAction::Kill { .. }
            | FaultAction::Stop { .. }
            | FaultAction::Restart { .. }
            | FaultAction::Isolate { .. }
            | FaultAction::Heal => {}
        }
    }
    out
}
