//! The campaign index page, `index.html` in a reports directory: every failing seed whose
//! report lies there, grouped by the invariant it broke, each linking its HTML report (and
//! the shrunk one when there is one), with the fault kinds that fired in that run and the
//! command that replays it.
//!
//! The page is rebuilt from the report files alone, so reports gathered from several shards
//! or campaigns into one directory get one index. Reading a report needs only a few of its
//! fields: a file that is not a faultline report is skipped and named on the page, never a
//! reason to fail the campaign that writes the index.
//!
//! Depends on: nothing of the crate but this module's siblings (HTML escaping).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::svg::esc;
use super::FORMAT;

/// One failing seed as the index shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub invariant: String,
    pub scenario: String,
    pub seed: u64,
    /// safety, liveness, panic or budget.
    pub kind: String,
    pub message: String,
    /// The report's JSON file name, inside the directory.
    pub json: String,
    /// The shrunk report's JSON file name, when one lies beside it.
    pub shrunk: Option<String>,
    /// The distinct fault kinds that fired in the run, sorted.
    pub faults: Vec<String>,
    pub replay: String,
}

/// Reads every report in `dir` (shrunk ones are attached to their original). Returns the
/// entries, sorted by invariant, scenario and seed, and the files that were skipped.
pub fn scan(dir: &Path) -> std::io::Result<(Vec<Entry>, Vec<String>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let present: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for name in names.iter().filter(|n| !n.ends_with("-shrunk.json")) {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        match entry(name, &text) {
            Some(mut e) => {
                let shrunk = format!("{}-shrunk.json", name.trim_end_matches(".json"));
                e.shrunk = present.contains(shrunk.as_str()).then_some(shrunk);
                entries.push(e);
            }
            None => skipped.push(name.clone()),
        }
    }
    entries.sort();
    Ok((entries, skipped))
}

/// The index entry of one report file's text, or None when it is not a failing report.
pub fn entry(name: &str, text: &str) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["format"] != FORMAT {
        return None;
    }
    let first = v["violations"].as_array()?.first()?;
    let faults: BTreeSet<String> = v["applied_faults"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["action"]["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Some(Entry {
        invariant: first["invariant"].as_str()?.to_string(),
        scenario: v["scenario"]["name"].as_str()?.to_string(),
        seed: v["seed"].as_u64()?,
        kind: first["kind"].as_str().unwrap_or("").to_string(),
        message: first["message"].as_str().unwrap_or("").to_string(),
        json: name.to_string(),
        shrunk: None,
        faults: faults.into_iter().collect(),
        replay: v["replay"].as_str().unwrap_or("").to_string(),
    })
}

/// The page: one section per invariant (most failing seeds first), a row per seed.
pub fn render(title: &str, entries: &[Entry], skipped: &[String]) -> String {
    let mut groups: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        groups.entry(&e.invariant).or_default().push(e);
    }
    let mut order: Vec<(&str, Vec<&Entry>)> = groups.into_iter().collect();
    order.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>{STYLE}\
         </style></head><body>\n<h1>{t}</h1>\n<p>{n} failing seeds, {g} invariants.</p>\n",
        t = esc(title),
        n = entries.len(),
        g = order.len(),
    );
    out.push_str("<ul class=\"toc\">\n");
    for (inv, list) in &order {
        let _ = writeln!(
            out,
            "<li><a href=\"#{a}\">{i}</a>: {n}</li>",
            a = anchor(inv),
            i = esc(inv),
            n = list.len()
        );
    }
    out.push_str("</ul>\n");
    for (inv, list) in &order {
        section(&mut out, inv, list);
    }
    if !skipped.is_empty() {
        out.push_str("<h2>Skipped files</h2>\n<ul>\n");
        for s in skipped {
            let _ = writeln!(out, "<li>{} (not a failing faultline report)</li>", esc(s));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn section(out: &mut String, invariant: &str, list: &[&Entry]) {
    let _ = write!(
        out,
        "<h2 id=\"{a}\">{i} <small>({n} seeds)</small></h2>\n<table>\n<tr><th>scenario</th>\
         <th>seed</th><th>kind</th><th>faults that fired</th><th>first violation</th>\
         <th>reports</th><th>replay</th></tr>\n",
        a = anchor(invariant),
        i = esc(invariant),
        n = list.len()
    );
    for e in list {
        let html = e.json.trim_end_matches(".json").to_string() + ".html";
        let mut links = format!("<a href=\"{}\">report</a>", esc(&html));
        if let Some(s) = &e.shrunk {
            let shrunk = s.trim_end_matches(".json").to_string() + ".html";
            let _ = write!(links, " <a href=\"{}\">shrunk</a>", esc(&shrunk));
        }
        let faults = if e.faults.is_empty() {
            "none".to_string()
        } else {
            e.faults.join(", ")
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{links}</td>\
             <td><code>{}</code></td></tr>",
            esc(&e.scenario),
            e.seed,
            esc(&e.kind),
            esc(&faults),
            esc(&e.message),
            esc(&e.replay)
        );
    }
    out.push_str("</table>\n");
}

fn anchor(invariant: &str) -> String {
    invariant
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#eee}code{font-size:.85em}small{color:#666}";

/// Rebuilds `dir/index.html` from the reports in `dir`; returns its path.
pub fn write(dir: &Path) -> std::io::Result<PathBuf> {
    let (entries, skipped) = scan(dir)?;
    let path = dir.join("index.html");
    let title = format!("faultline reports: {}", dir.display());
    std::fs::write(&path, render(&title, &entries, &skipped))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: &str, seed: u64, invariant: &str, faults: &[&str]) -> String {
        let applied: Vec<serde_json::Value> = faults
            .iter()
            .map(|f| serde_json::json!({"at_ns": 1, "action": {"type": f}}))
            .collect();
        serde_json::json!({
            "format": FORMAT,
            "scenario": {"name": scenario},
            "seed": seed,
            "violations": [{"kind": "safety", "invariant": invariant, "message": "m<1>"}],
            "applied_faults": applied,
            "replay": format!("faultline replay reports/{scenario}-seed{seed}.json"),
        })
        .to_string()
    }

    #[test]
    fn failing_seeds_are_grouped_by_invariant_with_their_faults_and_links() {
        let dir = std::env::temp_dir().join(format!("faultline-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let put = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        put(
            "a-seed3.json",
            report("a", 3, "zab-digest-agreement", &["crash", "partition"]),
        );
        put(
            "a-seed3-shrunk.json",
            report("a", 3, "zab-digest-agreement", &["crash"]),
        );
        put(
            "a-seed9.json",
            report("a", 9, "zab-digest-agreement", &["crash", "crash"]),
        );
        put("b-seed1.json", report("b", 1, "liveness", &[]));
        put("summary.json", "{\"type\":\"summary\"}".to_string());
        let path = write(&dir).unwrap();
        let (entries, skipped) = scan(&dir).unwrap();
        assert_eq!(skipped, vec!["summary.json".to_string()]);
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert_eq!(
            entries[1].faults,
            vec!["crash".to_string(), "partition".to_string()]
        );
        assert_eq!(entries[1].shrunk.as_deref(), Some("a-seed3-shrunk.json"));
        let page = std::fs::read_to_string(path).unwrap();
        // The invariant with more failing seeds comes first, and both sections exist.
        let digest = page.find("<h2 id=\"zab-digest-agreement\"").unwrap();
        let live = page.find("<h2 id=\"liveness\"").unwrap();
        assert!(digest < live);
        assert!(page.contains("<a href=\"a-seed3.html\">report</a>"));
        assert!(page.contains("<a href=\"a-seed3-shrunk.html\">shrunk</a>"));
        assert!(page.contains("m&lt;1&gt;"), "messages are escaped");
        assert!(page.contains("crash, partition"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
