//! Semantic checks of a parsed scenario. Each problem is reported with its JSON path
//! ("faults[2].action.node") and a message saying what is wrong and what would be right.
//!
//! Depends on: scenario.

use crate::scenario::{Expectation, Scenario, SystemSpec};
use crate::sim::fault::FaultAction;
use crate::sim::rng::Ratio;

type Problem = (String, String);

fn fail<T>(path: impl Into<String>, message: impl Into<String>) -> Result<T, Problem> {
    Err((path.into(), message.into()))
}

pub fn validate(s: &Scenario) -> Result<(), Problem> {
    if s.version != crate::scenario::FORMAT_VERSION {
        return fail(
            "version",
            format!("unsupported version {} (this build reads 1)", s.version),
        );
    }
    let name_ok = !s.name.is_empty()
        && s.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        return fail(
            "name",
            "must be non-empty and use only letters, digits, '-', '_' and '.'",
        );
    }
    validate_system(&s.system)?;
    validate_network(s)?;
    validate_ratio("disk.read_corruption", s.disk.read_corruption)?;
    if s.duration.ns() == 0 {
        return fail("duration", "the fault phase must last longer than 0");
    }
    if s.liveness_bound.ns() == 0 {
        return fail("liveness_bound", "must be longer than 0");
    }
    if s.max_events == 0 {
        return fail("max_events", "must be at least 1");
    }
    for (i, f) in s.faults.iter().enumerate() {
        let path = format!("faults[{i}]");
        if f.at >= s.duration {
            return fail(
                format!("{path}.at"),
                format!(
                    "{} is not inside the fault phase (duration {})",
                    f.at, s.duration
                ),
            );
        }
        validate_action(&s.system, &f.action, &format!("{path}.action"))?;
    }
    if let Some(n) = &s.nemesis {
        if n.interval_mean.ns() == 0 {
            return fail("nemesis.interval_mean", "must be longer than 0");
        }
        if n.hold_min.ns() == 0 || n.hold_min > n.hold_max {
            return fail(
                "nemesis.hold_min",
                format!(
                    "need 0 < hold_min <= hold_max (got {} and {})",
                    n.hold_min, n.hold_max
                ),
            );
        }
        let zookeeper = matches!(s.system, SystemSpec::Zookeeper(_));
        if let Some(k) = n.kinds.iter().find(|k| k.needs_zookeeper() && !zookeeper) {
            return fail(
                "nemesis.kinds",
                format!("{k:?} aims at ZooKeeper roles; this system is not a ZooKeeper one"),
            );
        }
        let kafka = matches!(s.system, SystemSpec::Kafka(_));
        if let Some(k) = n.kinds.iter().find(|k| k.needs_kafka() && !kafka) {
            return fail(
                "nemesis.kinds",
                format!("{k:?} aims at Kafka brokers' sessions; this system is not a Kafka one"),
            );
        }
        let targets = s.system.fault_target_names().len() as u32;
        if let Some(max) = n.max_crashed {
            if max == 0 || max > targets {
                return fail(
                    "nemesis.max_crashed",
                    format!("must be between 1 and the {targets} fault targets (got {max})"),
                );
            }
        }
    }
    let known = s.system.invariant_names();
    for (i, name) in s.unchecked.iter().enumerate() {
        if !known.contains(&name.as_str()) {
            return fail(
                format!("unchecked[{i}]"),
                format!("unknown invariant {name:?} (known: {})", known.join(", ")),
            );
        }
        if matches!(&s.expect, Expectation::Violation { invariant } if invariant == name) {
            return fail(
                format!("unchecked[{i}]"),
                format!("{name:?} is the expected violation; it cannot also be unchecked"),
            );
        }
    }
    if let Expectation::Violation { invariant } = &s.expect {
        if !known.contains(&invariant.as_str()) {
            return fail(
                "expect.invariant",
                format!(
                    "unknown invariant {invariant:?} (known: {})",
                    known.join(", ")
                ),
            );
        }
    }
    Ok(())
}

fn validate_system(system: &SystemSpec) -> Result<(), Problem> {
    match system {
        SystemSpec::Zookeeper(z) => {
            if !(1..=7).contains(&z.servers) {
                return fail(
                    "system.servers",
                    format!("must be between 1 and 7 (got {})", z.servers),
                );
            }
            if z.clients > 64 {
                return fail(
                    "system.clients",
                    format!("must be at most 64 (got {})", z.clients),
                );
            }
            if let Err(problem) = z.zoo_cfg.validate() {
                return fail("system.zoo_cfg", problem);
            }
            let w = &z.workload;
            if w.ops_per_s == 0 || w.keys == 0 {
                return fail("system.workload", "ops_per_s and keys must be at least 1");
            }
            if w.weights().iter().all(|x| *x == 0) {
                return fail(
                    "system.workload",
                    "at least one operation weight must be > 0",
                );
            }
            if w.request_timeout.ns() == 0 {
                return fail("system.workload.request_timeout", "must be longer than 0");
            }
            if let Some(writers) = w.writers.filter(|n| *n > z.clients) {
                return fail(
                    "system.workload.writers",
                    format!("{writers} writers but only {} clients", z.clients),
                );
            }
        }
        SystemSpec::Kafka(k) => k.validate()?,
        SystemSpec::Counter(c) => {
            if !(1..=64).contains(&c.nodes) {
                return fail(
                    "system.nodes",
                    format!("must be between 1 and 64 (got {})", c.nodes),
                );
            }
            for (field, d) in [
                ("increment_interval", c.increment_interval),
                ("gossip_interval", c.gossip_interval),
                ("reconnect_backoff", c.reconnect_backoff),
            ] {
                if d.ns() < 2 {
                    return fail(format!("system.{field}"), "must be at least 2ns");
                }
            }
        }
    }
    Ok(())
}

fn validate_network(s: &Scenario) -> Result<(), Problem> {
    let n = &s.network;
    if n.delay_mean.ns() == 0 {
        return fail("network.delay_mean", "must be longer than 0");
    }
    if n.delay_jitter > n.delay_mean {
        return fail(
            "network.delay_jitter",
            format!(
                "must not exceed delay_mean ({} > {})",
                n.delay_jitter, n.delay_mean
            ),
        );
    }
    if n.delay_min.ns() > n.delay_mean.ns() + n.delay_jitter.ns() {
        return fail(
            "network.delay_min",
            "is above the largest delay that can be drawn (delay_mean + delay_jitter)",
        );
    }
    if n.connect_timeout.ns() == 0 {
        return fail("network.connect_timeout", "must be longer than 0");
    }
    if s.disk.fsync_latency_jitter > s.disk.fsync_latency_mean {
        return fail(
            "disk.fsync_latency_jitter",
            "must not exceed fsync_latency_mean",
        );
    }
    Ok(())
}

fn validate_ratio(path: &str, r: Ratio) -> Result<(), Problem> {
    if !r.is_valid() {
        return fail(
            path,
            format!(
                "a ratio needs den > 0 and num <= den (got {}/{})",
                r.num, r.den
            ),
        );
    }
    Ok(())
}

fn validate_action(
    system: &SystemSpec,
    a: &FaultAction<String>,
    path: &str,
) -> Result<(), Problem> {
    let names = system.fault_target_names();
    let roles: Vec<&str> = system
        .roles()
        .iter()
        .chain(system.moment_roles())
        .copied()
        .collect();
    // A partition may also place clients (by name) on a side; other faults target servers.
    let all_names = system.node_names();
    let partition = matches!(
        a,
        FaultAction::Partition { .. }
            | FaultAction::OneWay { .. }
            | FaultAction::IsolateGroup { .. }
    );
    for r in a.node_refs() {
        let known = names.contains(r) || (partition && all_names.contains(r));
        if !known && !system.knows_role(r) {
            return fail(
                path,
                format!(
                    "unknown node {r:?} (fault targets: {}; roles: {}{})",
                    names.join(", "),
                    roles.join(", "),
                    if matches!(system, SystemSpec::Kafka(_)) {
                        ", @partition-leader:TOPIC-P"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    match a {
        FaultAction::Partition { groups, .. } => {
            if groups.len() < 2 || groups.iter().any(Vec::is_empty) {
                return fail(
                    format!("{path}.groups"),
                    "a partition needs at least two non-empty groups",
                );
            }
            let mut all: Vec<&String> = groups.iter().flatten().collect();
            let len = all.len();
            all.sort();
            all.dedup();
            if all.len() != len {
                return fail(format!("{path}.groups"), "a node appears in two groups");
            }
        }
        FaultAction::CrashSet { nodes, .. } | FaultAction::IsolateGroup { nodes, .. }
            if nodes.is_empty() =>
        {
            return fail(format!("{path}.nodes"), "needs at least one node");
        }
        FaultAction::OneWay { from, to, .. }
            if (from.is_empty() || to.is_empty() || from.iter().any(|f| to.contains(f))) =>
        {
            return fail(path, "one_way needs non-empty, disjoint `from` and `to`");
        }
        FaultAction::ReadCorruption { ratio } => {
            validate_ratio(&format!("{path}.ratio"), *ratio)?;
        }
        FaultAction::Clog { duration, .. }
        | FaultAction::DelaySpike { duration, .. }
        | FaultAction::FsyncSpike { duration, .. }
            if duration.ns() == 0 =>
        {
            return fail(format!("{path}.duration"), "must be longer than 0");
        }
        _ => {}
    }
    Ok(())
}
