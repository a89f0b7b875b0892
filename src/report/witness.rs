//! The checker's witness as a picture, in the style of Jepsen's and Porcupine's history
//! views: one row per client, time rightwards, each operation on the key a bar from its
//! invocation to its completion; the longest prefix the checker could order in blue, the
//! operations that show the violation outlined, and the one that cannot be placed in red.
//!
//! Depends on: report (svg helpers), cluster (witness types).

use std::fmt::Write;

use super::svg::{esc, secs, secs_us, tick_step};
use crate::cluster::capture::{Mark, Witness, WitnessOp};

/// Most operations drawn: those nearest the marked ones.
pub const OPS_MAX: usize = 60;

const LEFT: u64 = 70;
const WIDTH: u64 = 1100;
const ROW: u64 = 34;

/// The operations worth drawing: every marked one and the plain ones overlapping their span.
fn chosen(w: &Witness) -> Vec<&WitnessOp> {
    let marked: Vec<&WitnessOp> = w.ops.iter().filter(|o| o.mark != Mark::Plain).collect();
    let Some(from) = marked.iter().map(|o| o.op.invoke_ns).min() else {
        return w.ops.iter().take(OPS_MAX).collect();
    };
    let to = marked
        .iter()
        .map(|o| o.op.complete_ns.unwrap_or(o.op.invoke_ns))
        .max()
        .unwrap_or(from);
    let margin = (to - from) / 4 + 1;
    let mut ops: Vec<&WitnessOp> = w
        .ops
        .iter()
        .filter(|o| {
            let end = o.op.complete_ns.unwrap_or(u64::MAX);
            o.mark != Mark::Plain
                || (end.saturating_add(margin) >= from && o.op.invoke_ns <= to + margin)
        })
        .collect();
    if ops.len() > OPS_MAX {
        // Keep every marked operation and the plain ones nearest the culprit.
        let centre = to;
        ops.sort_by_key(|o| (o.mark == Mark::Plain, o.op.invoke_ns.abs_diff(centre)));
        ops.truncate(OPS_MAX);
        ops.sort_by_key(|o| o.op.invoke_ns);
    }
    ops
}

/// The time range drawn: the marked operations with a margin (all operations if none is
/// marked); longer operations are cut at its edges.
fn range(ops: &[&WitnessOp]) -> (u64, u64) {
    let marked: Vec<&&WitnessOp> = ops.iter().filter(|o| o.mark != Mark::Plain).collect();
    let pool: Vec<&WitnessOp> = if marked.is_empty() {
        ops.to_vec()
    } else {
        marked.into_iter().copied().collect()
    };
    let from = pool.iter().map(|o| o.op.invoke_ns).min().unwrap_or(0);
    let to = pool
        .iter()
        .map(|o| o.op.complete_ns.unwrap_or(o.op.invoke_ns))
        .max()
        .unwrap_or(from)
        .max(from + 1);
    let margin = (to - from) / 3 + 1;
    (from.saturating_sub(margin), to + margin)
}

/// The witness section: an explanation and the picture.
pub fn render(w: &Witness, lane_names: &[String]) -> String {
    let ops = chosen(w);
    let mut o = String::new();
    let _ = write!(
        o,
        "<section id=\"witness\"><h2>The checker's witness</h2><p>{}</p>\
         <p class=\"legend\"><span style=\"background:#c0392b\"></span>cannot be placed / \
         stale <span style=\"background:#fff;border:2px solid #222\"></span>shows the \
         violation <span style=\"background:#7fa7e8\"></span>ordered by the checker \
         <span style=\"background:#ddd\"></span>other operations on {}</p>",
        esc(&w.explanation),
        esc(&w.key)
    );
    if ops.is_empty() {
        o.push_str("<p>No operation on the key was recorded.</p></section>");
        return o;
    }
    let (from, to) = range(&ops);
    let x = |t: u64| LEFT + (t.clamp(from, to) - from) * (WIDTH - LEFT - 20) / (to - from);
    let mut rows: Vec<u32> = ops.iter().map(|o| o.op.node).collect();
    rows.sort();
    rows.dedup();
    let height = 30 + rows.len() as u64 * ROW + 24;
    let _ = write!(
        o,
        "<svg class=\"witness\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" \
         font-size=\"10\">"
    );
    let row_y = |node: u32| 24 + rows.iter().position(|r| *r == node).unwrap_or(0) as u64 * ROW;
    for r in &rows {
        let name = lane_names.get(*r as usize).map_or("?", String::as_str);
        let y = row_y(*r);
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-weight=\"bold\">{}</text>\
             <line x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#eee\"/>",
            LEFT - 6,
            y + 16,
            esc(name),
            WIDTH - 10,
            y + 12,
            y + 12
        );
    }
    for op in &ops {
        let y = row_y(op.op.node);
        let (x0, x1) = (x(op.op.invoke_ns), x(op.op.complete_ns.unwrap_or(to)));
        let (fill, stroke) = match op.mark {
            Mark::Culprit => ("#c0392b", "#7a1d14"),
            Mark::Evidence => ("#f7f7f7", "#222"),
            Mark::Linearized => ("#7fa7e8", "#2e6fd8"),
            Mark::Plain => ("#dddddd", "#bbbbbb"),
        };
        if op.op.invoke_ns > to || op.op.complete_ns.is_some_and(|c| c < from) {
            continue;
        }
        let width = if op.mark == Mark::Plain { 1 } else { 2 };
        let text_fill = if op.mark == Mark::Culprit {
            "#fff"
        } else {
            "#222"
        };
        let label = op
            .op
            .label
            .rsplit_once(" [")
            .map_or(&op.op.label[..], |(h, _)| h);
        // A marked operation always carries its label, beside the bar when it is too short.
        let inside = (x1 - x0) as usize / 6 >= label.chars().count().min(24);
        let room_right = (WIDTH - 10).saturating_sub(x1 + 4) as usize / 6;
        let (text_x, anchor, text, text_fill) = if inside || op.mark == Mark::Plain {
            (
                x0 + 3,
                "start",
                fit(label, (x1 - x0) as usize / 6),
                text_fill,
            )
        } else if room_right >= label.chars().count() || x0 < WIDTH / 2 {
            (x1 + 4, "start", fit(label, room_right), "#222")
        } else {
            (x0 - 4, "end", label.to_string(), "#222")
        };
        let _ = write!(
            o,
            "<g class=\"wop {:?}\"><rect x=\"{x0}\" y=\"{}\" width=\"{}\" height=\"22\" \
             rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{width}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"{text_fill}\">{}</text>\
             <title>{}\n{} .. {}</title>\
             </g>",
            op.mark,
            y + 1,
            (x1 - x0).max(3),
            text_x,
            y + 15,
            esc(&text),
            esc(&op.op.label),
            secs_us(op.op.invoke_ns),
            op.op.complete_ns.map_or("open".to_string(), secs_us)
        );
    }
    let bottom = 24 + rows.len() as u64 * ROW;
    let step = tick_step(to - from, 8);
    let mut t = from.div_ceil(step) * step;
    while t <= to {
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
            x(t),
            bottom + 14,
            secs(t)
        );
        t += step;
    }
    let _ = write!(
        o,
        "</svg><p class=\"note\">{} of {} operations on {} shown; hover a bar for the whole \
         operation.</p></section>",
        ops.len(),
        w.ops.len(),
        esc(&w.key)
    );
    o
}

/// Cuts a label to `max` characters (none when the bar is too short).
fn fit(text: &str, max: usize) -> String {
    if max < 4 {
        return String::new();
    }
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}
