//! The space-time diagram of a report, as inline SVG: one lane per node (servers, then
//! clients), virtual time downwards, messages as arrows from send to delivery (hover one for
//! its payload), each server's role and epoch along its lane, crashes, partitions and clogs
//! shaded across the lanes they cut, the client operations of the invariant's key, and the
//! violating event marked. Above it, the whole run as an overview strip (time rightwards)
//! with the window the diagram shows outlined.
//!
//! Depends on: report (picture, svg helpers), cluster (capture types).

use std::fmt::Write;

use super::picture::{FaultSpan, Picture};
use super::svg::{esc, fault_colour, role_colour, secs, secs_us, tick_step};
use crate::cluster::capture::Role;

const LEFT: u32 = 84;
const TOP: u32 = 84;
const WINDOW_HEIGHT: u32 = 1300;
const ROW: u32 = 12;

/// Horizontal geometry shared by both pictures.
struct Lanes {
    n: u32,
    width: u32,
}

impl Lanes {
    fn new(n: usize) -> Self {
        let n = n.max(1) as u32;
        let width = (1040 / n).clamp(64, 120);
        Lanes { n, width }
    }
    fn x(&self, lane: u32) -> u32 {
        LEFT + lane * self.width + self.width / 2
    }
    fn total(&self) -> u32 {
        LEFT + self.n * self.width + 24
    }
}

/// The role intervals of a lane over the whole run: (from, to, role).
fn role_intervals(p: &Picture, lane: u32) -> Vec<(u64, u64, &Role)> {
    let changes: Vec<_> = p.roles.iter().filter(|r| r.node == lane).collect();
    let mut out = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let to = changes.get(i + 1).map_or(p.run_end_ns, |n| n.at_ns);
        out.push((c.at_ns, to, &c.role));
    }
    out
}

/// Both pictures and their legend, as one HTML fragment.
pub fn render(p: &Picture) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<section id=\"diagram\"><h2>Space-time diagram</h2><p>The whole run (time \
         rightwards), then the window that matters (time downwards): from {} to {}, \
         starting at {}.</p>",
        secs(p.window_from_ns),
        secs(p.window_to_ns),
        esc(&p.window_reason)
    );
    o.push_str(&overview(p));
    o.push_str(LEGEND);
    if p.messages_left_out > 0 {
        let _ = write!(
            o,
            "<p class=\"note\">{} earlier messages of the window are left out; the diagram \
             keeps the {} nearest the violation.</p>",
            p.messages_left_out,
            p.messages.len()
        );
    }
    o.push_str(&window(p));
    o.push_str("</section>");
    o
}

const LEGEND: &str = "<p class=\"legend\">\
<span style=\"background:#2e6fd8\"></span>LEADING \
<span style=\"background:#3aa35b\"></span>FOLLOWING \
<span style=\"background:#e0a019\"></span>LOOKING \
<span style=\"background:#555\"></span>crashed \
<span style=\"background:#f3c7c6\"></span>partitioned \
<span style=\"background:#fbe3c2\"></span>clogged / delayed \
<span style=\"background:#c0392b\"></span>violation · \
arrows: messages (hover for the payload; dashed with × = lost) · \
outlined bars on client lanes: operations on the invariant's key \
(<b style=\"color:#1a7f37\">ok</b>, <b style=\"color:#d4711c\">failed</b>, \
<b style=\"color:#999\">unknown</b>, <b style=\"color:#c0392b\">the violating one</b>)</p>";

fn overview(p: &Picture) -> String {
    let lanes = Lanes::new(p.lanes.len());
    let width = lanes.total();
    let plot = (width - LEFT - 24) as u64;
    let end = p.run_end_ns.max(1);
    let x = |t: u64| LEFT as u64 + t.min(end) * plot / end;
    let height = 24 + lanes.n * ROW + 22;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg class=\"overview\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" \
         font-size=\"10\"><text x=\"4\" y=\"14\" font-weight=\"bold\">whole run</text>"
    );
    let row_y = |lane: u32| 20 + lane * ROW;
    for (i, lane) in p.lanes.iter().enumerate() {
        let y = row_y(i as u32);
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LEFT}\" y=\"{}\" width=\"{plot}\" height=\"{}\" fill=\"#f4f4f4\"/>",
            LEFT - 6,
            y + ROW - 3,
            esc(&lane.name),
            y + 1,
            ROW - 2
        );
        for (from, to, role) in role_intervals(p, i as u32) {
            let _ = write!(
                o,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} {} \
                 epoch {} from {}</title></rect>",
                x(from),
                y + 1,
                (x(to) - x(from)).max(1),
                ROW - 2,
                role_colour(&role.name),
                esc(&lane.name),
                role.name,
                role.epoch,
                secs(from)
            );
        }
    }
    for f in &p.faults {
        for lane in &f.lanes {
            // A crash covers the row; other faults underline it, so the role stays visible.
            let (y, h) = match f.kind.as_str() {
                "down" => (row_y(*lane), ROW),
                _ => (row_y(*lane) + ROW - 4, 4),
            };
            let _ = write!(
                o,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">\
                 <title>{} {}..{}</title></rect>",
                x(f.from_ns),
                y,
                (x(f.to_ns) - x(f.from_ns)).max(2),
                h,
                fault_colour(&f.kind),
                esc(&f.label),
                secs(f.from_ns),
                secs(f.to_ns)
            );
        }
    }
    let bottom = row_y(lanes.n);
    let _ = write!(
        o,
        "<line x1=\"{h}\" x2=\"{h}\" y1=\"16\" y2=\"{bottom}\" stroke=\"#3aa35b\" \
         stroke-dasharray=\"3 2\"><title>healed phase begins at {}</title></line>\
         <rect x=\"{}\" y=\"16\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#000\" \
         stroke-width=\"1.5\"><title>the window shown below</title></rect>\
         <line x1=\"{b}\" x2=\"{b}\" y1=\"16\" y2=\"{bottom}\" stroke=\"#c0392b\" \
         stroke-width=\"2\"><title>violation at {}</title></line>",
        secs(p.heal_ns),
        x(p.window_from_ns),
        (x(p.window_to_ns) - x(p.window_from_ns)).max(2),
        bottom - 16,
        secs(p.bad.at_ns),
        h = x(p.heal_ns),
        b = x(p.bad.at_ns),
    );
    let step = tick_step(end, 10);
    let mut t = 0;
    while t <= end {
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
            x(t),
            bottom + 14,
            secs(t)
        );
        t += step;
    }
    o.push_str("</svg>");
    o
}

/// Maps virtual time in the window to a y coordinate.
struct Clock {
    from: u64,
    to: u64,
}

impl Clock {
    fn y(&self, t: u64) -> u64 {
        let t = t.clamp(self.from, self.to);
        let span = (self.to - self.from).max(1);
        TOP as u64 + (t - self.from) as u128 as u64 * WINDOW_HEIGHT as u64 / span
    }
}

fn window(p: &Picture) -> String {
    let lanes = Lanes::new(p.lanes.len());
    let width = lanes.total();
    let clock = Clock {
        from: p.window_from_ns,
        to: p.window_to_ns.max(p.window_from_ns + 1),
    };
    let height = TOP + WINDOW_HEIGHT + 30;
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg class=\"spacetime\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" \
         font-size=\"10\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" \
         refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#456\"/></marker></defs>"
    );
    time_axis(&mut o, &clock, width);
    fault_shading(&mut o, p, &lanes, &clock);
    for (i, lane) in p.lanes.iter().enumerate() {
        let x = lanes.x(i as u32);
        let colour = if lane.kind == "server" {
            "#223"
        } else {
            "#778"
        };
        let _ = write!(
            o,
            "<g class=\"lane\" data-lane=\"{name}\"><text x=\"{x}\" y=\"{}\" \
             text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\" fill=\"{colour}\">\
             {name}</text><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">{}\
             </text><line x1=\"{x}\" x2=\"{x}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#bbb\"/></g>",
            TOP - 50,
            TOP - 38,
            lane.kind,
            TOP + WINDOW_HEIGHT,
            name = esc(&lane.name),
        );
        role_band(&mut o, p, i as u32, x, &clock);
    }
    messages(&mut o, p, &lanes, &clock);
    operations(&mut o, p, &lanes, &clock);
    violation(&mut o, p, &lanes, &clock, width);
    o.push_str("</svg>");
    o
}

fn time_axis(o: &mut String, clock: &Clock, width: u32) {
    let step = tick_step(clock.to - clock.from, 14);
    let mut t = clock.from.div_ceil(step) * step;
    while t <= clock.to {
        let y = clock.y(t);
        let _ = write!(
            o,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#666\">{}</text>",
            LEFT - 4,
            width - 10,
            LEFT - 8,
            y + 3,
            secs(t)
        );
        t += step;
    }
}

fn fault_shading(o: &mut String, p: &Picture, lanes: &Lanes, clock: &Clock) {
    let visible = |f: &&FaultSpan| f.to_ns >= clock.from && f.from_ns <= clock.to;
    for f in p.faults.iter().filter(visible) {
        let (y0, y1) = (clock.y(f.from_ns), clock.y(f.to_ns));
        let opacity = if f.kind == "down" { "0.30" } else { "0.16" };
        for lane in &f.lanes {
            let x = lanes.x(*lane) - lanes.width / 2 + 2;
            let _ = write!(
                o,
                "<rect class=\"fault {}\" x=\"{x}\" y=\"{y0}\" width=\"{}\" height=\"{}\" \
                 fill=\"{}\" fill-opacity=\"{opacity}\"><title>{} from {} to {}</title></rect>",
                f.kind,
                lanes.width - 4,
                (y1 - y0).max(2),
                fault_colour(&f.kind),
                esc(&f.label),
                secs_us(f.from_ns),
                secs_us(f.to_ns)
            );
        }
        if let Some(first) = f.lanes.iter().min() {
            // A fault that began before the window is named in the header band.
            let x = lanes.x(*first) - lanes.width / 2 + 4;
            let y = if f.from_ns < clock.from {
                TOP as u64 - 8
            } else {
                y0 + 11
            };
            let _ = write!(
                o,
                "<text x=\"{x}\" y=\"{y}\" fill=\"{}\" font-weight=\"bold\">{}</text>",
                fault_colour(&f.kind),
                esc(&short(&f.label, 60))
            );
        }
    }
}

/// The role band of a server lane, with a label where the role or epoch changes.
fn role_band(o: &mut String, p: &Picture, lane: u32, x: u32, clock: &Clock) {
    let mut last_label_y = 0;
    for (from, to, role) in role_intervals(p, lane) {
        if to < clock.from || from > clock.to {
            continue;
        }
        let (y0, y1) = (clock.y(from), clock.y(to));
        let _ = write!(
            o,
            "<rect class=\"role\" x=\"{}\" y=\"{y0}\" width=\"8\" height=\"{}\" fill=\"{}\">\
             <title>{} epoch {} from {}</title></rect>",
            x - 4,
            (y1 - y0).max(1),
            role_colour(&role.name),
            role.name,
            role.epoch,
            secs_us(from),
        );
        // Labels closer than a line apart would overprint: the band and its hover say it.
        if last_label_y == 0 || y0 >= last_label_y + 12 {
            last_label_y = y0;
            let _ = write!(
                o,
                "<text x=\"{}\" y=\"{}\" fill=\"{}\" font-size=\"9\" font-weight=\"bold\" \
                 stroke=\"#fff\" stroke-width=\"2\" paint-order=\"stroke\">{} e{}</text>",
                x + 6,
                y0 + 10,
                role_colour(&role.name),
                role.name,
                role.epoch
            );
        }
    }
    for m in p.marks.iter().filter(|m| m.node == lane) {
        if m.at_ns < clock.from || m.at_ns > clock.to {
            continue;
        }
        let y = clock.y(m.at_ns);
        let _ = write!(
            o,
            "<g class=\"mark\"><rect x=\"{}\" y=\"{}\" width=\"40\" height=\"13\" rx=\"3\" \
             fill=\"#555\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"#fff\">{}\
             </text><title>{} {} at {}</title></g>",
            x - 20,
            y.saturating_sub(6),
            y + 4,
            m.kind,
            esc(&p.lanes[lane as usize].name),
            m.kind,
            secs_us(m.at_ns)
        );
    }
}

fn messages(o: &mut String, p: &Picture, lanes: &Lanes, clock: &Clock) {
    o.push_str("<g class=\"messages\">");
    for m in &p.messages {
        let (x0, x1) = (lanes.x(m.from) as i64, lanes.x(m.to) as i64);
        let y0 = clock.y(m.sent_ns) as i64;
        let from = &p.lanes[m.from as usize].name;
        let to = &p.lanes[m.to as usize].name;
        let server_to_server =
            p.lanes[m.from as usize].kind == "server" && p.lanes[m.to as usize].kind == "server";
        let colour = if server_to_server { "#345" } else { "#8aa0b8" };
        let (x_end, y_end, fate) = match m.delivered_ns {
            Some(t) => (x1, clock.y(t) as i64, format!("delivered {}", secs_us(t))),
            None => (x0 + (x1 - x0) / 3, y0 + 6, "lost".to_string()),
        };
        let title = format!(
            "{from} → {to}: {}\nsent {}, {fate}",
            m.summary,
            secs_us(m.sent_ns)
        );
        let dash = if m.delivered_ns.is_none() {
            " stroke-dasharray=\"3 2\""
        } else {
            " marker-end=\"url(#arrow)\""
        };
        let _ = write!(
            o,
            "<g class=\"msg\"><title>{}</title><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x_end}\" \
             y2=\"{y_end}\" stroke=\"{colour}\" stroke-width=\"1\"{dash}/><line x1=\"{x0}\" \
             y1=\"{y0}\" x2=\"{x_end}\" y2=\"{y_end}\" stroke=\"transparent\" \
             stroke-width=\"6\"/>",
            esc(&title)
        );
        if m.delivered_ns.is_none() {
            let _ = write!(
                o,
                "<text x=\"{x_end}\" y=\"{}\" text-anchor=\"middle\" fill=\"#c0392b\" \
                 font-size=\"11\">×</text>",
                y_end + 4
            );
        }
        o.push_str("</g>");
    }
    o.push_str("</g>");
}

/// The client operations of the invariant's key as bars on their lanes.
fn operations(o: &mut String, p: &Picture, lanes: &Lanes, clock: &Clock) {
    let culprit = p.witness.as_ref().and_then(|w| {
        w.ops
            .iter()
            .find(|op| op.mark == crate::cluster::capture::Mark::Culprit)
            .map(|op| (op.op.node, op.op.invoke_ns))
    });
    for op in &p.ops {
        let end = op.complete_ns.unwrap_or(clock.to);
        if end < clock.from || op.invoke_ns > clock.to {
            continue;
        }
        let (y0, y1) = (clock.y(op.invoke_ns), clock.y(end));
        let x = lanes.x(op.node);
        let is_culprit = culprit == Some((op.node, op.invoke_ns));
        // Outlined bars, so an operation never looks like a role band.
        let outline = match op.outcome.as_str() {
            "ok" => "#1a7f37",
            "fail" => "#d4711c",
            _ => "#999999",
        };
        let (fill, stroke) = if is_culprit {
            (
                "#c0392b",
                " stroke=\"#7a1d14\" stroke-width=\"2\"".to_string(),
            )
        } else {
            (
                "#ffffff",
                format!(" stroke=\"{outline}\" stroke-width=\"2\""),
            )
        };
        let text = short(op_text(&op.label), (lanes.width / 5) as usize);
        let _ = write!(
            o,
            "<g class=\"op\"><rect x=\"{}\" y=\"{y0}\" width=\"10\" height=\"{}\" \
             fill=\"{fill}\"{stroke}/><text x=\"{}\" y=\"{}\" font-size=\"9\" fill=\"#222\" \
             stroke=\"#fff\" stroke-width=\"2\" paint-order=\"stroke\">{}</text>\
             <title>{}</title></g>",
            x - 5,
            (y1 - y0).max(3),
            x + 7,
            (y0 + y1) / 2 + 3,
            esc(&text),
            esc(&op.label)
        );
    }
}

fn violation(o: &mut String, p: &Picture, lanes: &Lanes, clock: &Clock, width: u32) {
    let y = clock.y(p.bad.at_ns);
    let _ = write!(
        o,
        "<g class=\"violation\"><line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" \
         stroke=\"#c0392b\" stroke-width=\"1.5\" stroke-dasharray=\"6 3\"/>",
        width - 10
    );
    if let Some(lane) = p.bad.lane {
        let _ = write!(
            o,
            "<circle cx=\"{}\" cy=\"{y}\" r=\"7\" fill=\"none\" stroke=\"#c0392b\" \
             stroke-width=\"3\"/>",
            lanes.x(lane)
        );
    }
    let _ = write!(
        o,
        "<text x=\"{LEFT}\" y=\"{}\" fill=\"#c0392b\" font-weight=\"bold\" font-size=\"11\">\
         ✗ {} at {}</text><title>{}</title></g>",
        y + 14,
        esc(&short(&p.bad.label, 140)),
        secs_us(p.bad.at_ns),
        esc(&p.bad.label)
    );
}

/// An operation's label without its trailing "[invoke, complete]" times.
fn op_text(label: &str) -> &str {
    label.rsplit_once(" [").map_or(label, |(head, _)| head)
}

/// Cuts `text` to at most `max` characters, marking the cut.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
