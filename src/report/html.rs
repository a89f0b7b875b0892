//! A report as one self-contained HTML page (no scripts, no external files): the violation
//! first, the replay command, the run's figures, the faults, and the timeline with the
//! violating node's lines highlighted.
//!
//! Depends on: report.

use std::fmt::Write;

use super::Report;
use crate::sim::time::fmt_ns;

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:70em;margin:2em auto;color:#222}\
code,pre,td.mono{font-family:monospace}\
.bad{background:#fde8e8;border-left:4px solid #c0392b;padding:.5em 1em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}\
tr.hit{background:#fff3c4}";

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let title = format!("faultline: {} seed {}", r.scenario.name, r.seed);
    let _ = write!(
        o,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{STYLE}</style></head><body><h1>{}</h1>",
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
    let _ = write!(o, "<h2>Replay</h2><pre>{}</pre>", esc(&r.replay));
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

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
