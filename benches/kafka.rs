//! Throughput of the Kafka simulation: delivered events per wall second and simulated
//! seconds per wall second, for 3 ZooKeeper servers, 3 brokers and one topic of 6
//! partitions with replication factor 3, under 4 producers (acks=all, idempotent, 50 sends
//! per simulated second each) and 2 consumers (20 polls per simulated second each), no
//! faults. The run must be clean (no violation, converged).
//!
//! Also allocations per delivered event (a counting allocator in this bench binary only).
//!
//! Output: one JSON object per line, `{"name": .., "value": .., "unit": ..}`.
//! Run: `cargo bench --bench kafka`.

use faultline::campaign;
use faultline::scenario::Scenario;

#[path = "common/alloc.rs"]
mod alloc;

#[global_allocator]
static COUNTING: alloc::Counting = alloc::Counting;

fn scenario(duration_s: u64) -> Scenario {
    let text = format!(
        r#"{{
            "version": 1,
            "name": "bench-kafka",
            "system": {{
                "kind": "kafka",
                "zookeeper": {{ "servers": 3, "zoo_cfg": {{ "maxSessionTimeout": 30000 }} }},
                "brokers": 3,
                "topics": [ {{ "name": "bench", "partitions": 6, "replication.factor": 3 }} ],
                "server_properties": {{ "min.insync.replicas": 2,
                                        "zookeeper.session.timeout.ms": 6000 }},
                "producer": {{ "count": 4, "rate": 50, "keys": 64 }},
                "consumer": {{ "count": 2, "rate": 20, "auto.offset.reset": "earliest" }}
            }},
            "duration": "{duration_s}s",
            "liveness_bound": "60s"
        }}"#
    );
    Scenario::from_json(&text, "bench").expect("bench scenario is valid")
}

fn line(name: &str, value: f64, unit: &str) {
    println!(r#"{{"name":"{name}","value":{value:.1},"unit":"{unit}"}}"#);
}

fn main() {
    // The shipped binary's allocator settings, so the figures are the binary's.
    faultline::cli::alloc::tune();
    // `cargo bench` passes `--bench`; a `cargo test` of benches passes nothing: run short.
    let quick = !std::env::args().any(|a| a == "--bench");
    let duration_s = if quick { 5 } else { 300 };
    let s = scenario(duration_s);
    // Wall time is measured around the whole run only.
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let allocs_before = alloc::allocations();
    let run = campaign::run_seed(&s, 1, None);
    let allocs = alloc::allocations() - allocs_before;
    let wall_s = started.elapsed().as_secs_f64();
    let o = &run.outcome;
    let sim_s = o.simulated_ns as f64 / 1e9;
    line("kafka_events_per_s", o.events as f64 / wall_s, "events/s");
    line("kafka_sim_s_per_wall_s", sim_s / wall_s, "sim s/wall s");
    line("kafka_events", o.events as f64, "events");
    line("kafka_simulated_s", sim_s, "s");
    line(
        "kafka_allocations_per_event",
        allocs as f64 / o.events.max(1) as f64,
        "allocs/event",
    );
    // Measured first, judged after: a failing run's figures still say how fast it went.
    assert!(
        o.violations.is_empty(),
        "bench run failed: {:?}",
        o.violations
    );
}
