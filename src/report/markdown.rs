//! A report as Markdown, for people: what broke, how to replay it, the faults, and the
//! timeline just before the stop.
//!
//! Depends on: report.

use std::fmt::Write;

use super::{invariants, Report};
use crate::cluster::Violation;
use crate::sim::time::{fmt_ns, Dur};

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# faultline report: {} seed {}\n",
        r.scenario.name, r.seed
    );
    if !r.scenario.description.is_empty() {
        let _ = writeln!(out, "{}\n", r.scenario.description);
    }
    let _ = writeln!(out, "Replay it exactly:\n\n    {}\n", r.replay);
    let _ = writeln!(
        out,
        "or run the scenario again: `faultline run {} --seed {}`\n",
        r.scenario_file, r.seed
    );
    let _ = writeln!(out, "## Violations\n");
    for v in &r.violations {
        let node = v.node.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "- **{}** ({:?}) at {} s, event #{}, node {}: {}",
            v.invariant,
            v.kind,
            fmt_ns(v.at_ns),
            v.event,
            node,
            v.message
        );
    }
    if let Some(v) = r.violations.first() {
        explain(&mut out, r, v);
    }
    let _ = writeln!(out, "\n## Run\n");
    let _ = writeln!(out, "| field | value |\n| --- | --- |");
    let _ = writeln!(out, "| system | {} |", r.scenario.system.kind());
    let _ = writeln!(out, "| seed | {} |", r.seed);
    let _ = writeln!(out, "| config hash | `{}` |", r.config_hash);
    let _ = writeln!(out, "| trace hash | `{}` |", r.trace_hash);
    let _ = writeln!(out, "| events | {} |", r.events);
    let _ = writeln!(out, "| simulated | {} s |", fmt_ns(r.simulated_ns));
    let _ = writeln!(out, "| fault phase | {} |", r.scenario.duration);
    let _ = writeln!(out, "| liveness bound | {} |", r.scenario.liveness_bound);
    if let Some(n) = &r.schedule.nemesis {
        let kinds: Vec<String> = n
            .kinds
            .iter()
            .map(|k| {
                serde_json::to_string(k)
                    .unwrap_or_default()
                    .replace('"', "")
            })
            .collect();
        let _ = writeln!(
            out,
            "| nemesis | {} every ~{}, held {}..{} |",
            kinds.join(", "),
            n.interval_mean,
            n.hold_min,
            n.hold_max
        );
    }
    let _ = writeln!(out, "\n## Faults applied\n");
    if r.applied_faults.is_empty() {
        let _ = writeln!(out, "none");
    }
    for f in &r.applied_faults {
        let action = serde_json::to_string(&f.action).unwrap_or_default();
        let _ = writeln!(out, "- {} s: `{}`", fmt_ns(f.at_ns), action);
    }
    let _ = writeln!(
        out,
        "\n## Timeline (last {} lines before the stop)\n",
        r.timeline.len()
    );
    let _ = writeln!(out, "```");
    for line in &r.timeline {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "```");
    let _ = writeln!(
        out,
        "\nTimes are virtual seconds since the start of the run; the healed phase began at {}.",
        Dur(r.scenario.duration.ns())
    );
    out
}

/// The first violation explained from the invariant table, with the faults active then.
fn explain(out: &mut String, r: &Report, v: &Violation) {
    let _ = writeln!(out, "\n## What was violated: `{}`\n", v.invariant);
    if let Some(i) = invariants::find(&v.invariant) {
        let _ = writeln!(out, "- promise: {}", i.promise);
        let _ = writeln!(out, "- guaranteed by: {}", i.mechanism);
        let _ = writeln!(out, "- checked: {}", i.checked);
    }
    let Some(p) = &r.picture else { return };
    let _ = writeln!(
        out,
        "- first bad event: {} s, {}",
        fmt_ns(p.bad.at_ns),
        p.bad.label
    );
    let active: Vec<String> = p
        .faults
        .iter()
        .filter(|f| f.from_ns <= p.bad.at_ns && p.bad.at_ns <= f.to_ns && f.kind != "reset")
        .map(|f| format!("{} (since {} s)", f.label, fmt_ns(f.from_ns)))
        .collect();
    let text = if active.is_empty() {
        "none".to_string()
    } else {
        active.join("; ")
    };
    let _ = writeln!(out, "- faults active then: {text}");
    let _ = writeln!(
        out,
        "\nThe HTML report draws the run around it as a space-time diagram."
    );
}
