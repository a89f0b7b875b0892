//! Goal: every peer history in tests/data gets the verdict of expected.tsv (102 etcd logs, 6 kv
//! histories), through the same path as `faultline check`.

use std::path::{Path, PathBuf};

use faultline::check::command::{run_check, CheckRequest};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/peer-histories/porcupine")
}

/// (file, model, expected) rows of expected.tsv.
fn expected() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(data_dir().join("expected.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (
                cols[0].to_string(),
                cols[1].to_string(),
                cols[2].to_string(),
            )
        })
        .collect()
}

fn check_file(file: &str, format: &str, model: &str) -> (i32, String) {
    let req = CheckRequest {
        format: format.to_string(),
        model: model.to_string(),
        path: data_dir().join(file),
        json: false,
        max_steps: None,
    };
    let mut out = Vec::new();
    let code = run_check(&req, &mut out).unwrap_or_else(|e| panic!("{file}: {e}"));
    (code, String::from_utf8(out).unwrap())
}

fn check_rows(filter: &str) -> usize {
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for (file, model, expected) in expected() {
        // etcd_095.log is empty: the cluster never started; no verdict to compare.
        if !file.starts_with(filter) || expected == "skip" {
            continue;
        }
        let (format, model) = match model.as_str() {
            "etcd-register" => ("etcd", "cas-register"),
            "kv-append" => ("kv", "kv"),
            other => panic!("unknown model {other} in expected.tsv"),
        };
        let want = match expected.as_str() {
            "linearizable" => 0,
            "not-linearizable" => 1,
            other => panic!("unknown verdict {other} in expected.tsv"),
        };
        let (code, out) = check_file(&file, format, model);
        if code != want {
            mismatches.push(format!("{file}: exit {code}, want {want}\n{out}"));
        }
        checked += 1;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    checked
}

#[test]
fn peer_etcd_logs_match_expected_verdicts() {
    assert_eq!(check_rows("jepsen/"), 102);
}

#[test]
fn peer_kv_histories_match_expected_verdicts() {
    assert_eq!(check_rows("kv/"), 6);
}
