//! Golden runs: the exact trace hash, event count and verdict of bundled scenarios at fixed
//! seeds. The runs are deterministic, so these numbers only change when behaviour does, and
//! changing them is a deliberate act shown in the diff (re-pin with the printed values).

use std::path::Path;

use faultline::campaign;
use faultline::scenario::Scenario;

fn pinned(file: &str, seed: u64) -> (String, u64, Option<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(file);
    let scenario = Scenario::load(&path).unwrap();
    let run = campaign::run_seed(&scenario, seed, None);
    let invariant = run.outcome.violations.first().map(|v| v.invariant.clone());
    let hash = format!("{:016x}", run.outcome.trace_hash);
    println!(
        "{file} seed {seed}: {hash} {} {invariant:?}",
        run.outcome.events
    );
    (hash, run.outcome.events, invariant)
}

#[test]
fn golden_counter_runs() {
    let cases: [(&str, u64, &str, u64, Option<&str>); 4] = [
        ("counter-basic.json", 1, "48d4efe103014fa0", 7819, None),
        (
            "counter-partition-heal.json",
            3,
            "abb39bfac81c9466",
            6245,
            None,
        ),
        (
            "counter-bug-gossip-before-fsync.json",
            1,
            "20012f5e3670d9f8",
            1048,
            Some("counter-durable"),
        ),
        (
            "counter-bug-merge-overwrites.json",
            1,
            "87b2c5dfc5188770",
            149,
            Some("counter-monotonic"),
        ),
    ];
    let mut mismatches = Vec::new();
    for (file, seed, hash, events, invariant) in cases {
        let got = pinned(file, seed);
        let want = (hash.to_string(), events, invariant.map(str::to_string));
        if got != want {
            mismatches.push(format!("{file} seed {seed}: got {got:?}, pinned {want:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
