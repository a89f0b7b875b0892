//! Small helpers for writing inline SVG by hand: escaping, time labels, colours. No external
//! fonts or scripts: the page must be one self-contained file.
//!
//! Depends on: nothing in the crate.

/// Escapes text for HTML and SVG (element content and attribute values).
pub fn esc(text: &str) -> String {
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

/// Seconds with millisecond precision, e.g. "2.050 s".
pub fn secs(ns: u64) -> String {
    format!("{}.{:03} s", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
}

/// Seconds with microsecond precision, e.g. "2.050317 s", for hover texts.
pub fn secs_us(ns: u64) -> String {
    format!("{}.{:06} s", ns / 1_000_000_000, (ns / 1_000) % 1_000_000)
}

/// Fill colour of a protocol role.
pub fn role_colour(role: &str) -> &'static str {
    match role {
        "LEADING" => "#2e6fd8",
        "FOLLOWING" => "#3aa35b",
        "LOOKING" => "#e0a019",
        _ => "#999999",
    }
}

/// Fill colour of a fault span.
pub fn fault_colour(kind: &str) -> &'static str {
    match kind {
        "down" => "#555555",
        "partition" | "one_way" => "#d9534f",
        "clog" | "delay_spike" => "#f0ad4e",
        _ => "#9b59b6",
    }
}

/// A "nice" tick step (1, 2 or 5 times a power of ten, in ns) giving about `count` ticks.
pub fn tick_step(span_ns: u64, count: u64) -> u64 {
    let raw = (span_ns / count.max(1)).max(1);
    let mut step = 1u64;
    while step * 10 <= raw {
        step *= 10;
    }
    for m in [1, 2, 5, 10] {
        if step * m >= raw {
            return step * m;
        }
    }
    step * 10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(tick_step(1_000_000_000, 10), 100_000_000);
        assert_eq!(tick_step(3_000_000_000, 10), 500_000_000);
        assert_eq!(tick_step(1_300_000, 10), 200_000);
        assert_eq!(secs(2_050_317_000), "2.050 s");
        assert_eq!(secs_us(2_050_317_000), "2.050317 s");
    }
}
