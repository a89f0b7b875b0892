//! `cargo bench --bench check`: checker timings as JSON lines `{"name", "value", "unit"}`.
//!
//! Times the linearizability check of every peer history (parsing excluded; the median of
//! several runs), the sum over the 102 etcd logs, and generated 100,000-operation histories.
//! Porcupine's figures on a 2-core machine like ours, for comparison: all etcd logs about
//! 0.9 s, etcd_002 about 0.36 s, kv c50-ok about 0.29 s, c50-bad 8-53 ms.

// Benchmarks measure wall time around whole checks, never inside one.
#![allow(clippy::disallowed_types)]

use std::path::Path;
use std::time::Instant;

use faultline::check::generate::{generate, GenModel, GenOptions};
use faultline::check::import::{parse_etcd, parse_kv};
use faultline::check::spec::{KvSpec, RegisterSpec, SequentialSpec};
use faultline::check::{check_linearizable, Budget, History, Verdict};

fn emit(name: &str, value: f64, unit: &str) {
    println!("{{\"name\":\"{name}\",\"value\":{value:.6},\"unit\":\"{unit}\"}}");
}

/// Median wall time in seconds of checking `history`, and the verdict.
fn time_check<S: SequentialSpec>(spec: &S, history: &History, runs: usize) -> (f64, Verdict) {
    let budget = Budget::default();
    let mut times = Vec::new();
    let mut verdict = None;
    for _ in 0..runs {
        let start = Instant::now();
        let v = check_linearizable(spec, history, &budget).expect("model accepts the history");
        times.push(start.elapsed().as_secs_f64());
        verdict = Some(v);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], verdict.expect("at least one run"))
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Valid { .. } => "linearizable",
        Verdict::Invalid { .. } => "not-linearizable",
        Verdict::Unknown { .. } => "unknown",
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/peer-histories/porcupine");
    bench_etcd(&dir);
    bench_kv(&dir);
    bench_generated();
}

fn bench_etcd(dir: &Path) {
    let spec = RegisterSpec { cas: true };
    let mut etcd_sum = 0.0;
    let mut unknown = 0;
    for n in 0..=102 {
        let name = format!("etcd_{n:03}.log");
        let path = dir.join("jepsen").join(&name);
        let text = std::fs::read_to_string(&path).expect("peer history present");
        if text.is_empty() {
            continue;
        }
        let history = parse_etcd(&text, &name).expect("valid etcd log");
        let (secs, verdict) = time_check(&spec, &history, 5);
        unknown += usize::from(matches!(verdict, Verdict::Unknown { .. }));
        etcd_sum += secs;
        let verdict = verdict_name(&verdict);
        emit(&format!("check/etcd/{name}/{verdict}"), secs, "s");
    }
    emit("check/etcd/sum", etcd_sum, "s");
    emit("check/etcd/unknown_verdicts", unknown as f64, "count");
}

fn bench_kv(dir: &Path) {
    for file in [
        "c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad",
    ] {
        let path = dir.join("kv").join(format!("{file}.txt"));
        let text = std::fs::read_to_string(path).expect("peer history present");
        let history = parse_kv(&text, file).expect("valid kv history");
        let (secs, verdict) = time_check(&KvSpec, &history, 5);
        let verdict = verdict_name(&verdict);
        emit(&format!("check/kv/{file}/{verdict}"), secs, "s");
    }
}

/// Generated 100,000-operation histories: (name, model, keys, clients, crashes per mille).
/// A single key with appends and crashes is left out: every crashed append stays a candidate
/// at every step of its key, which makes that case slow.
const GENERATED: [(&str, GenModel, usize, usize, u32); 5] = [
    (
        "cas_register_100k_ops_1_key_8_procs",
        GenModel::CasRegister,
        1,
        8,
        2,
    ),
    (
        "kv_100k_ops_1_key_8_procs_no_crashes",
        GenModel::Kv,
        1,
        8,
        0,
    ),
    ("kv_100k_ops_100_keys_16_procs", GenModel::Kv, 100, 16, 2),
    ("kv_100k_ops_1000_keys_50_procs", GenModel::Kv, 1000, 50, 2),
    (
        "cas_register_100k_ops_100_keys_16_procs",
        GenModel::CasRegister,
        100,
        16,
        2,
    ),
];

fn bench_generated() {
    for (name, model, keys, processes, info_per_mille) in GENERATED {
        let options = GenOptions {
            processes,
            ops: 100_000,
            keys,
            info_per_mille,
        };
        let history = generate(model, &options, 7);
        let (secs, verdict) = match model {
            GenModel::Kv => time_check(&KvSpec, &history, 3),
            GenModel::CasRegister => time_check(&RegisterSpec { cas: true }, &history, 3),
        };
        let verdict = verdict_name(&verdict);
        emit(&format!("check/generated/{name}/{verdict}"), secs, "s");
    }
}
