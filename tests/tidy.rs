//! Tidy: reads src/**.rs and enforces the layering of STYLE.md (which module may `use`
//! which), the determinism bans outside cli/ and campaign/, and the 100-column limit.
//! In the spirit of TigerBeetle's tidy.zig: cheap rules, checked on every test run.

use std::path::{Path, PathBuf};

/// For each top-level module, the crate modules it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("main", &["cli"]),
    ("lib", &[]),
    (
        "cli",
        &["campaign", "cluster", "scenario", "report", "check", "sim"],
    ),
    (
        "campaign",
        &["cluster", "scenario", "check", "report", "sim"],
    ),
    ("report", &["check", "scenario", "sim", "cluster"]),
    ("scenario", &["sim", "zab", "kafka", "example", "scenario"]),
    (
        "cluster",
        &[
            "sim", "zab", "kafka", "example", "node", "check", "scenario", "cluster",
        ],
    ),
    ("zab", &["node", "zab"]),
    ("kafka", &["node", "kafka", "zab"]),
    ("example", &["node", "example"]),
    ("node", &["node"]),
    ("sim", &["node", "sim"]),
    ("check", &["check"]),
];

/// Modules where wall clock, hash maps and threads are allowed (around runs, not in them).
const UNRESTRICTED: &[&str] = &["cli", "campaign", "main"];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("non-empty");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// Crate modules named in `use crate::x` or `crate::x::` paths on one line.
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + 7..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
        rest = after;
    }
    out
}

#[test]
fn layering_bans_and_line_length() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let module = top_module(&src, file);
        let allowed = ALLOWED
            .iter()
            .find(|(m, _)| *m == module)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("module {module} is not in tidy's layering table"));
        let text = std::fs::read_to_string(file).expect("readable");
        let name = file.strip_prefix(&src).unwrap().display().to_string();
        let mut in_tests = false;
        for (i, line) in text.lines().enumerate() {
            let at = format!("src/{name}:{}", i + 1);
            if line.chars().count() > 100 {
                problems.push(format!("{at}: longer than 100 columns"));
            }
            if line.trim_start().starts_with("mod tests") {
                in_tests = true;
            }
            let code = line.split("//").next().unwrap_or("");
            for used in crate_refs(code) {
                if used != module && !allowed.contains(&used.as_str()) {
                    problems.push(format!("{at}: {module} may not use crate::{used}"));
                }
            }
            if UNRESTRICTED.contains(&module.as_str()) || in_tests {
                continue;
            }
            for banned in [
                "HashMap",
                "HashSet",
                "Instant::now",
                "SystemTime",
                "thread_rng",
            ] {
                if code.contains(banned) && !line.contains("determinism: membership only") {
                    problems.push(format!("{at}: {banned} outside cli/campaign"));
                }
            }
            if code.contains("thread::spawn") || code.contains("rand::random") {
                problems.push(format!("{at}: threads or unseeded randomness inside a run"));
            }
        }
    }
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}

#[test]
fn tidy_catches_a_forbidden_use() {
    // The rule above must be able to fail: a protocol module reaching into the kernel.
    let refs = crate_refs("use crate::sim::Sim; let x = crate::node::NodeId(1);");
    assert_eq!(refs, vec!["sim".to_string(), "node".to_string()]);
    let zab = ALLOWED.iter().find(|(m, _)| *m == "zab").unwrap().1;
    assert!(!zab.contains(&"sim"));
}
