//! Throughput of the ZooKeeper simulation: delivered events per wall second and simulated
//! seconds per wall second, for 3- and 5-server ensembles under a steady workload of 10
//! clients each issuing 10 operations per simulated second, no faults.
//!
//! Output: one JSON object per line, `{"name": .., "value": .., "unit": ..}`.
//! Also allocations per delivered event (a counting allocator in this bench binary only).
//! Then scaling (`scale_zab{servers}_c{clients}_{duration}s_*`): events/s, events and wall
//! time per simulated second, and peak live heap, for 3, 5 and 7 servers with 3, 16 and 64
//! clients over 60 simulated s, and 3 servers with 10 clients over 10 s, 1 min and 10 min.
//! Run: `cargo bench --bench zab`.

use faultline::campaign;

#[path = "common/alloc.rs"]
mod alloc;

#[global_allocator]
static COUNTING: alloc::Counting = alloc::Counting;
use faultline::scenario::Scenario;

fn scenario(servers: u32, duration_s: u64) -> Scenario {
    sized(servers, 10, duration_s)
}

/// `servers` servers and `clients` clients, each issuing 10 operations per simulated second.
fn sized(servers: u32, clients: u32, duration_s: u64) -> Scenario {
    let text = format!(
        r#"{{
            "version": 1,
            "name": "bench-zab-{servers}",
            "system": {{ "kind": "zookeeper", "servers": {servers}, "clients": {clients},
                        "workload": {{ "ops_per_s": 10 }} }},
            "duration": "{duration_s}s",
            "liveness_bound": "30s"
        }}"#
    );
    Scenario::from_json(&text, "bench").expect("bench scenario is valid")
}

fn line(name: &str, value: f64, unit: &str) {
    println!(r#"{{"name":"{name}","value":{value:.1},"unit":"{unit}"}}"#);
}

/// Seed 1 of `s`, which must pass: the run, its wall seconds and its allocations. Wall
/// time is measured around whole runs only.
fn timed_run(s: &Scenario) -> (campaign::SeedRun, f64, u64) {
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let allocs_before = alloc::allocations();
    let run = campaign::run_seed(s, 1, None);
    let wall_s = started.elapsed().as_secs_f64();
    let allocs = alloc::allocations() - allocs_before;
    let o = &run.outcome;
    assert!(
        o.violations.is_empty(),
        "bench run failed: {:?}",
        o.violations
    );
    (run, wall_s, allocs)
}

/// One scaling point: events/s, simulated s per wall s, events per simulated s, wall
/// microseconds per simulated s, and the peak of live heap bytes during the run (above
/// what was live before it; the run is on this thread alone).
fn scaling_point(servers: u32, clients: u32, duration_s: u64) {
    let s = sized(servers, clients, duration_s);
    alloc::reset_peak();
    let base = alloc::peak_bytes();
    let (run, wall_s, _) = timed_run(&s);
    let o = &run.outcome;
    let sim_s = o.simulated_ns as f64 / 1e9;
    let label = format!("scale_zab{servers}_c{clients}_{duration_s}s");
    line(
        &format!("{label}_events_per_s"),
        o.events as f64 / wall_s,
        "events/s",
    );
    line(
        &format!("{label}_sim_s_per_wall_s"),
        sim_s / wall_s,
        "sim s/wall s",
    );
    line(
        &format!("{label}_events_per_sim_s"),
        o.events as f64 / sim_s,
        "events/sim s",
    );
    line(
        &format!("{label}_wall_us_per_sim_s"),
        wall_s * 1e6 / sim_s,
        "wall us/sim s",
    );
    line(
        &format!("{label}_peak_heap"),
        (alloc::peak_bytes() - base) as f64 / (1024.0 * 1024.0),
        "MiB",
    );
}

/// How cost grows with the ensemble's size, the number of clients and the run's length.
fn scaling(quick: bool) {
    let (grid_s, durations): (u64, &[u64]) = if quick {
        (2, &[1, 3])
    } else {
        (60, &[10, 60, 600])
    };
    for servers in [3u32, 5, 7] {
        for clients in [3u32, 16, 64] {
            scaling_point(servers, clients, grid_s);
        }
    }
    for &d in durations {
        scaling_point(3, 10, d);
    }
}

fn main() {
    faultline::cli::alloc::tune();
    // `cargo bench` passes `--bench`; a `cargo test` of benches passes nothing: run short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let duration_s = if quick { 5 } else { 300 };
    for servers in [3u32, 5] {
        let s = scenario(servers, duration_s);
        let (run, wall_s, allocs) = timed_run(&s);
        let o = &run.outcome;
        let sim_s = o.simulated_ns as f64 / 1e9;
        line(
            &format!("zab{servers}_events_per_s"),
            o.events as f64 / wall_s,
            "events/s",
        );
        line(
            &format!("zab{servers}_sim_s_per_wall_s"),
            sim_s / wall_s,
            "sim s/wall s",
        );
        line(&format!("zab{servers}_events"), o.events as f64, "events");
        line(
            &format!("zab{servers}_allocations_per_event"),
            allocs as f64 / o.events.max(1) as f64,
            "allocs/event",
        );
    }
    // Fuzzing throughput on one thread, the figure a campaign's length follows from.
    let nemesis = std::path::Path::new("scenarios/zk-nemesis.json");
    let s = Scenario::load(nemesis).expect("bundled scenario");
    let seeds = if quick { 50 } else { 2000 };
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let summary = campaign::fuzz(&s, 0..seeds, &campaign::FuzzOptions::jobs(1), &mut |_| {});
    let wall_s = started.elapsed().as_secs_f64();
    assert_eq!(summary.failed, 0, "zk-nemesis must pass");
    line(
        "fuzz_zk_nemesis_seeds_per_s_one_thread",
        seeds as f64 / wall_s,
        "seeds/s",
    );
    scaling(quick);
}
