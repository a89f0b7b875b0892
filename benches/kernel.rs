//! Kernel benchmark: delivered events per second and simulated seconds per wall second for
//! a message-heavy run of the example counter on 3, 5 and 15 nodes (no faults, so the figure
//! is the kernel's own cost: queue, network, disk, trace hash, dispatch), plus a faulty run,
//! fuzzing throughput in seeds per second, and the process's peak memory.
//! Prints one JSON object per line: {"name": .., "value": .., "unit": ..}.
//!
//! Machines differ, so the bench also runs a bare event loop (`common/bare.rs`) in the same
//! process and prints each kernel figure as a ratio of it, and counts allocations per
//! delivered event with a counting allocator that lives in the bench binary only.
//!
//! Run: cargo bench --bench kernel

// Benchmarks measure wall time around whole runs, never inside one.
#![allow(clippy::disallowed_types)]

use std::time::Instant;

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/bare.rs"]
mod bare;

#[global_allocator]
static COUNTING: alloc::Counting = alloc::Counting;

use faultline::campaign;
use faultline::cluster::{self, RunOptions};
use faultline::scenario::{Scenario, Schedule};

/// `increment` and `gossip` intervals: message-heavy runs gossip every millisecond and
/// increment (write + fsync) every 5ms; disk-heavy runs increment every millisecond.
fn scenario(nodes: u32, seconds: u64, increment: &str, gossip: &str) -> Scenario {
    let text = format!(
        r#"{{"version": 1, "name": "bench-{nodes}",
            "system": {{"kind": "counter", "nodes": {nodes}, "increment_interval": "{increment}",
                        "gossip_interval": "{gossip}"}},
            "duration": "{seconds}s", "liveness_bound": "5s"}}"#
    );
    Scenario::from_json(&text, "bench").expect("valid bench scenario")
}

fn emit(name: &str, value: f64, unit: &str) {
    println!(
        "{}",
        serde_json::json!({"name": name, "value": (value * 100.0).round() / 100.0, "unit": unit})
    );
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bare loop's events per second over `nodes` nodes, measured now: the best of three
/// runs, as a reference is only useful if another process's burst does not lower it.
fn bare_events_per_second(nodes: u64, events: u64) -> f64 {
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let started = Instant::now();
        let hash = bare::run(nodes, events);
        let wall = started.elapsed().as_secs_f64();
        assert_ne!(hash, 0);
        best = best.max(events as f64 / wall);
    }
    best
}

fn measure(label: &str, s: &Scenario) {
    let schedule = Schedule::generate(s, 1);
    let allocs_before = alloc::allocations();
    let started = Instant::now();
    let outcome = cluster::run(s, 1, &schedule, &RunOptions::default());
    let wall = started.elapsed().as_secs_f64();
    let allocs = alloc::allocations() - allocs_before;
    assert!(
        outcome.violations.is_empty(),
        "bench run failed: {:?}",
        outcome.violations
    );
    emit(
        &format!("{label}_events_per_second"),
        outcome.events as f64 / wall,
        "events/s",
    );
    emit(
        &format!("{label}_simulated_seconds_per_wall_second"),
        outcome.simulated_ns as f64 / 1e9 / wall,
        "sim_s/wall_s",
    );
    emit(&format!("{label}_events"), outcome.events as f64, "events");
    emit(
        &format!("{label}_allocations_per_event"),
        allocs as f64 / outcome.events.max(1) as f64,
        "allocs/event",
    );
    let nodes = s.system.node_names().len() as u64;
    let bare = bare_events_per_second(nodes, outcome.events.max(1_000_000));
    emit(
        &format!("bare_loop_{nodes}_nodes_events_per_second"),
        bare,
        "events/s",
    );
    emit(
        &format!("{label}_ratio_to_bare_loop"),
        outcome.events as f64 / wall / bare,
        "ratio",
    );
}

fn main() {
    faultline::cli::alloc::tune();
    for (nodes, seconds) in [(3u32, 60u64), (5, 30), (15, 3)] {
        let s = scenario(nodes, seconds, "5ms", "1ms");
        measure(&format!("counter_{nodes}_nodes_message_heavy"), &s);
    }
    let s = scenario(3, 60, "1ms", "10ms");
    measure("counter_3_nodes_disk_heavy", &s);
    let faulty =
        Scenario::load(std::path::Path::new("scenarios/counter-basic.json")).expect("bundled");
    let started = Instant::now();
    let summary = campaign::fuzz(
        &faulty,
        0..400,
        &campaign::FuzzOptions::jobs(1),
        &mut |_| {},
    );
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(summary.failed, 0);
    emit(
        "fuzz_counter_basic_seeds_per_second_one_thread",
        400.0 / wall,
        "seeds/s",
    );
    if let Some(kib) = peak_rss_kib() {
        emit("peak_memory", kib as f64 / 1024.0, "MiB");
    }
}
