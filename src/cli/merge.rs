//! `faultline merge`: the JSON summaries of `fuzz --shard I/N` runs (or of any fuzz runs of
//! one scenario) become one summary and, with `--junit`, one JUnit file. Exit code 1 if any
//! input had a failing seed, 0 if none, 2 if the inputs do not fit together (another
//! scenario or configuration, overlapping seeds, a shard missing).
//!
//! The merged summary (`type` "merged") has the summary's counters (`seeds_run`, `passed`,
//! `failed`, `events`), `failing` (every input's list, by seed), `covered_ranges` and
//! `rest_ranges` (seeds not run, e.g. left by a time budget), `complete`, `inputs`, and
//! `wall.elapsed_ms` (the slowest input).
//!
//! Depends on: nothing in the crate but the CLI's own modules.

use std::path::PathBuf;

use serde_json::Value;

use super::{CliError, EXIT_CLEAN, EXIT_VIOLATION};

/// The last `summary` line of a `fuzz --json` output file.
fn load_summary(path: &PathBuf) -> Result<Value, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError(format!("{}: cannot read: {e}", path.display())))?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .ok_or_else(|| {
            CliError(format!(
                "{}: no fuzz summary line (a line of `fuzz --json` with \"type\": \"summary\")",
                path.display()
            ))
        })
}

fn parse_range(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once("..")?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Sorted, adjacent ranges joined; an overlap is an error.
fn join(mut ranges: Vec<(u64, u64)>) -> Result<Vec<(u64, u64)>, CliError> {
    ranges.retain(|(a, b)| a < b);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a < last.1 => {
                return Err(CliError(format!(
                    "the inputs overlap: seeds {}..{} and {a}..{b} both ran",
                    last.0, last.1
                )))
            }
            Some(last) if a == last.1 => last.1 = b,
            _ => out.push((a, b)),
        }
    }
    Ok(out)
}

/// The parts of `whole` not in `covered` (both sorted, disjoint).
fn gaps(whole: &[(u64, u64)], covered: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(a, b) in whole {
        let mut at = a;
        for &(c, d) in covered.iter().filter(|(c, d)| *d > a && *c < b) {
            if c > at {
                out.push((at, c));
            }
            at = at.max(d);
        }
        if at < b {
            out.push((at, b));
        }
    }
    out
}

fn fmt(ranges: &[(u64, u64)]) -> Vec<String> {
    ranges.iter().map(|(a, b)| format!("{a}..{b}")).collect()
}

/// Checks that the inputs are one campaign: same scenario and configuration, and, when they
/// are shards, every shard present once.
fn check_inputs(files: &[PathBuf], inputs: &[Value]) -> Result<(), CliError> {
    let first = &inputs[0];
    for (path, s) in files.iter().zip(inputs) {
        for field in ["scenario", "config_hash"] {
            if s[field] != first[field] {
                return Err(CliError(format!(
                    "{}: {field} {} differs from {}'s {}",
                    path.display(),
                    s[field],
                    files[0].display(),
                    first[field]
                )));
            }
        }
    }
    let shards: Vec<(u64, u64)> = inputs
        .iter()
        .filter_map(|s| s["shard"].as_str())
        .filter_map(|t| {
            let (i, n) = t.split_once('/')?;
            Some((i.parse().ok()?, n.parse().ok()?))
        })
        .collect();
    if let Some(&(_, n)) = shards.first() {
        let mut seen: Vec<u64> = shards.iter().map(|(i, _)| *i).collect();
        seen.sort_unstable();
        seen.dedup();
        let missing: Vec<String> = (0..n)
            .filter(|i| seen.binary_search(i).is_err())
            .map(|i| format!("{i}/{n}"))
            .collect();
        if !missing.is_empty() || shards.iter().any(|(_, m)| *m != n) {
            return Err(CliError(format!(
                "shards missing or of different splits: {} (given {} inputs)",
                missing.join(", "),
                inputs.len()
            )));
        }
    }
    Ok(())
}

/// Merges fuzz summaries into one.
pub fn merge(files: &[PathBuf]) -> Result<Value, CliError> {
    if files.is_empty() {
        return Err(CliError(
            "merge: give the summary files of the shards".into(),
        ));
    }
    let inputs: Vec<Value> = files.iter().map(load_summary).collect::<Result<_, _>>()?;
    check_inputs(files, &inputs)?;
    let field = |s: &Value, f: &str| parse_range(s[f].as_str().unwrap_or(""));
    let covered = join(inputs.iter().filter_map(|s| field(s, "covered")).collect())?;
    // The whole range: what the shards were cut from, else what the inputs asked for.
    let whole: Vec<(u64, u64)> = inputs
        .iter()
        .filter_map(|s| field(s, "shard_of").or_else(|| field(s, "range")))
        .collect();
    let mut whole = whole;
    whole.sort_unstable();
    whole.dedup();
    let whole = join(whole).unwrap_or_default();
    let rest = gaps(&whole, &covered);
    let sum = |f: &str| {
        inputs
            .iter()
            .map(|s| s[f].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let mut failing: Vec<Value> = inputs
        .iter()
        .flat_map(|s| s["failing"].as_array().cloned().unwrap_or_default())
        .collect();
    failing.sort_by_key(|f| f["seed"].as_u64());
    let elapsed = inputs
        .iter()
        .filter_map(|s| s["wall"]["elapsed_ms"].as_u64())
        .max();
    Ok(serde_json::json!({
        "type": "merged",
        "scenario": inputs[0]["scenario"],
        "config_hash": inputs[0]["config_hash"],
        "inputs": inputs.len(),
        "range": fmt(&whole),
        "covered_ranges": fmt(&covered),
        "rest_ranges": fmt(&rest),
        "complete": rest.is_empty(),
        "seeds_run": sum("seeds_run"),
        "passed": sum("passed"),
        "failed": sum("failed"),
        "unknown": sum("unknown"),
        "known": sum("known"),
        "events": sum("events"),
        "failing": failing,
        "wall": { "elapsed_ms": elapsed },
    }))
}

pub fn cmd_merge(a: super::args::MergeArgs) -> Result<u8, CliError> {
    let merged = merge(&a.summaries)?;
    if let Some(path) = &a.junit {
        std::fs::write(path, super::junit::render(&merged))
            .map_err(|e| CliError(format!("{}: cannot write JUnit: {e}", path.display())))?;
    }
    if a.json {
        println!("{merged}");
    } else {
        println!(
            "merged     {} summaries of {}",
            merged["inputs"], merged["scenario"]
        );
        println!(
            "covered    {} ({} seeds){}",
            merged["covered_ranges"],
            merged["seeds_run"],
            if merged["complete"] == true {
                ""
            } else {
                "; not run: see rest"
            }
        );
        if merged["complete"] != true {
            println!("rest       {}", merged["rest_ranges"]);
        }
        if merged["known"].as_u64().unwrap_or(0) > 0 {
            println!(
                "known      {} (known real-system behaviour, not failures)",
                merged["known"]
            );
        }
        println!("failing    {}", merged["failed"]);
        for f in merged["failing"].as_array().into_iter().flatten() {
            println!(
                "  seed {:<8} {}: {}  report {}",
                f["seed"],
                f["invariant"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or(""),
                f["report"].as_str().unwrap_or("-")
            );
        }
    }
    Ok(if merged["failed"].as_u64().unwrap_or(0) > 0 {
        EXIT_VIOLATION
    } else {
        EXIT_CLEAN
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_join_and_gaps_are_found() {
        assert_eq!(
            join(vec![(5, 9), (0, 5), (12, 20)]).unwrap(),
            vec![(0, 9), (12, 20)]
        );
        assert!(join(vec![(0, 5), (4, 9)]).is_err());
        assert_eq!(
            gaps(&[(0, 20)], &[(0, 9), (12, 15)]),
            vec![(9, 12), (15, 20)]
        );
        assert_eq!(gaps(&[(0, 20)], &[(0, 20)]), vec![]);
    }
}
