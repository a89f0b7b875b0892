//! JUnit XML for CI systems (GitHub Actions, GitLab, Jenkins show it as test results), built
//! from a campaign summary (`fuzz --json`'s last line, or the one `merge` makes).
//!
//! One `testsuite` per scenario; a passing `testcase` per covered seed range (named
//! `seeds A..B`), a failing `testcase` per failing seed (named `seed N`, the failure carrying
//! the invariant, the message, the report path and the replay command), and a `skipped`
//! testcase for seeds a budget left unrun. Depends on nothing in the crate.

use serde_json::Value;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The covered ranges of a summary: `covered_ranges` (merged) or `covered` (one process).
fn strings(summary: &Value, many: &str, one: &str) -> Vec<String> {
    match summary[many].as_array() {
        Some(list) => list
            .iter()
            .filter_map(|v| v.as_str())
            .map(String::from)
            .collect(),
        None => summary[one]
            .as_str()
            .map(String::from)
            .into_iter()
            .collect(),
    }
}

/// Renders a campaign summary as a JUnit XML document.
pub fn render(summary: &Value) -> String {
    let scenario = escape(summary["scenario"].as_str().unwrap_or("faultline"));
    let failing = summary["failing"].as_array().cloned().unwrap_or_default();
    let covered: Vec<String> = strings(summary, "covered_ranges", "covered")
        .into_iter()
        .filter(|r| r.split_once("..").is_some_and(|(a, b)| a != b))
        .collect();
    let rest = strings(summary, "rest_ranges", "rest");
    let tests = covered.len() + failing.len() + rest.len();
    let seconds = summary["wall"]["elapsed_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml += &format!(
        "<testsuites name=\"faultline fuzz\" tests=\"{tests}\" failures=\"{}\" \
         skipped=\"{}\">\n",
        failing.len(),
        rest.len()
    );
    xml += &format!(
        "  <testsuite name=\"{scenario}\" tests=\"{tests}\" failures=\"{}\" skipped=\"{}\" \
         time=\"{seconds:.3}\">\n",
        failing.len(),
        rest.len()
    );
    for range in &covered {
        let range = escape(range);
        xml += &format!("    <testcase classname=\"{scenario}\" name=\"seeds {range}\"/>\n");
    }
    for f in &failing {
        xml += &failing_case(&scenario, f);
    }
    for range in &rest {
        let range = escape(range);
        xml += &format!(
            "    <testcase classname=\"{scenario}\" name=\"seeds {range}\">\
             <skipped message=\"not run: the campaign stopped early\"/></testcase>\n"
        );
    }
    xml += "  </testsuite>\n</testsuites>\n";
    xml
}

fn failing_case(scenario: &str, f: &Value) -> String {
    let seed = f["seed"].as_u64().unwrap_or(0);
    let invariant = escape(f["invariant"].as_str().unwrap_or("?"));
    let message = escape(f["message"].as_str().unwrap_or(""));
    let kind = escape(f["kind"].as_str().unwrap_or("safety"));
    let mut body = format!("{invariant} ({kind}): {message}\n");
    if let Some(report) = f["report"].as_str() {
        body += &format!(
            "report: {}\nreplay: faultline replay {}\n",
            escape(report),
            escape(report)
        );
    }
    if let Some(shrunk) = f["shrunk_report"].as_str() {
        body += &format!("shrunk: {}\n", escape(shrunk));
    }
    format!(
        "    <testcase classname=\"{scenario}\" name=\"seed {seed}\">\
         <failure message=\"{invariant}: {message}\" type=\"{invariant}\">{body}</failure>\
         </testcase>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_seeds_are_failures_and_text_is_escaped() {
        let summary = serde_json::json!({
            "scenario": "zk<x>",
            "covered": "0..10",
            "rest": "10..20",
            "failing": [{"seed": 3, "invariant": "zk-sync-read", "kind": "safety",
                         "message": "saw \"a\" & <b>", "report": "r/x-seed3.json",
                         "shrunk_report": null}],
        });
        let xml = render(&summary);
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"seeds 0..10\"/>"));
        assert!(xml.contains("name=\"seed 3\"><failure message=\"zk-sync-read: saw &quot;a"));
        assert!(xml.contains("replay: faultline replay r/x-seed3.json"));
        assert!(xml.contains("<testsuite name=\"zk&lt;x&gt;\""));
        assert!(!xml.contains("<b>"));
        assert!(xml.contains("<skipped"));
    }
}
