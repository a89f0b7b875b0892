//! A report as one self-contained HTML page (no scripts, no external files or fonts): the
//! violation first and what it means, the replay command, the space-time diagram, the
//! checker's witness, the run's figures, the faults, and the timeline with the violating
//! node's lines highlighted.
//!
//! Depends on: report.

use std::fmt::Write;

use super::picture::Picture;
use super::svg::{esc, secs_us};
use super::{diagram, invariants, witness, Report};
use crate::cluster::Violation;
use crate::sim::time::fmt_ns;

const STYLE: &str = "body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}\
code,pre,td.mono{font-family:monospace}\
.bad{background:#fde8e8;border-left:4px solid #c0392b;padding:.5em 1em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}\
tr.hit{background:#fff3c4}\
.legend span{display:inline-block;width:12px;height:10px;margin:0 3px 0 8px;\
vertical-align:middle}.note{color:#666;font-size:90%}\
section svg{display:block;margin:.5em 0;border:1px solid #ddd;background:#fff}\
body.wide{max-width:none}";

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let title = format!("faultline: {} seed {}", r.scenario.name, r.seed);
    let _ = write!(
        o,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body class=\"wide\"><h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    if !r.scenario.description.is_empty() {
        let _ = write!(o, "<p>{}</p>", esc(&r.scenario.description));
    }
    for v in &r.violations {
        let _ = write!(
            o,
            "<div class=\"bad\"><b>{}</b> ({:?}) at {} s, event #{}, node {}: {}</div>",
            esc(&v.invariant),
            v.kind,
            fmt_ns(v.at_ns),
            v.event,
            esc(v.node.as_deref().unwrap_or("-")),
            esc(&v.message)
        );
    }
    if let Some(v) = r.violations.first() {
        o.push_str(&explain(v, r.picture.as_ref()));
    }
    let _ = write!(o, "<h2>Replay</h2><pre>{}</pre>", esc(&r.replay));
    if let Some(p) = &r.picture {
        o.push_str(&diagram::render(p));
        if let Some(w) = &p.witness {
            let names: Vec<String> = p.lanes.iter().map(|l| l.name.clone()).collect();
            o.push_str(&witness::render(w, &names));
        }
    }
    let _ = write!(
        o,
        "<h2>Run</h2><table><tr><th>seed</th><td>{}</td></tr><tr><th>config hash</th>\
         <td class=\"mono\">{}</td></tr><tr><th>trace hash</th><td class=\"mono\">{}</td></tr>\
         <tr><th>events</th><td>{}</td></tr><tr><th>simulated</th><td>{} s</td></tr></table>",
        r.seed,
        esc(&r.config_hash),
        esc(&r.trace_hash),
        r.events,
        fmt_ns(r.simulated_ns)
    );
    let _ = write!(o, "<h2>Faults applied</h2><ul>");
    for f in &r.applied_faults {
        let action = serde_json::to_string(&f.action).unwrap_or_default();
        let _ = write!(
            o,
            "<li>{} s: <code>{}</code></li>",
            fmt_ns(f.at_ns),
            esc(&action)
        );
    }
    let _ = write!(
        o,
        "</ul><h2>Timeline</h2><table><tr><th>time (s)</th><th>#</th>\
                       <th>node</th><th>kind</th><th>detail</th></tr>"
    );
    let culprit = r.violations.first().and_then(|v| v.node.clone());
    for l in &r.timeline {
        let class = if culprit.as_deref() == Some(l.node.as_str()) {
            " class=\"hit\""
        } else {
            ""
        };
        let _ = write!(
            o,
            "<tr{class}><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"mono\">{}</td></tr>",
            fmt_ns(l.time_ns),
            l.event,
            esc(&l.node),
            esc(&l.kind),
            esc(&l.detail)
        );
    }
    let _ = writeln!(o, "</table></body></html>");
    o
}

/// The invariant explained: its promise, the mechanism behind it, the first bad event and
/// the faults active at that moment.
fn explain(v: &Violation, picture: Option<&Picture>) -> String {
    let mut o = String::from("<h2>What was violated</h2><table>");
    let row = |o: &mut String, k: &str, v: &str| {
        let _ = write!(o, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row(
        &mut o,
        "invariant",
        &format!("<code>{}</code>", esc(&v.invariant)),
    );
    match invariants::find(&v.invariant) {
        Some(i) => {
            row(&mut o, "promise", &esc(i.promise));
            row(&mut o, "guaranteed by", &esc(i.mechanism));
            row(&mut o, "checked", &esc(i.checked));
        }
        None => row(&mut o, "promise", "(not in the invariant table)"),
    }
    let bad_ns = picture.map_or(v.at_ns, |p| p.bad.at_ns);
    let node = v.node.as_deref().unwrap_or("-");
    let event = if v.event == 0 || bad_ns != v.at_ns {
        format!("found by the end-of-run check at {} s", fmt_ns(v.at_ns))
    } else {
        format!("event #{}", v.event)
    };
    row(
        &mut o,
        "first bad event",
        &format!(
            "{} s, node {}, {}: {}",
            secs_us(bad_ns),
            esc(node),
            event,
            esc(&v.message)
        ),
    );
    if let Some(p) = picture {
        let active: Vec<String> = p
            .faults
            .iter()
            .filter(|f| f.from_ns <= bad_ns && bad_ns <= f.to_ns && f.kind != "reset")
            .map(|f| format!("{} (since {} s)", esc(&f.label), fmt_ns(f.from_ns)))
            .collect();
        let text = if active.is_empty() {
            "none".to_string()
        } else {
            active.join("<br>")
        };
        row(&mut o, "faults active then", &text);
    }
    o.push_str("</table>");
    o
}
