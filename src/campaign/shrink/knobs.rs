//! The scalar knobs a shrink lowers after the list of faults: each fault's hold time (how
//! long a node stays down, a partition up, a clog or spike on) and its delay (the extra
//! network delay or fsync latency), and the ZooKeeper workload (clients, rate, keys).
//!
//! Pure: reading and setting knobs, and the order in which values are tried. Depends on:
//! scenario, sim (fault and time types).

use crate::scenario::{Scenario, SystemSpec};
use crate::sim::fault::FaultAction;
use crate::sim::time::{Dur, NS_PER_MS, NS_PER_US};

/// The shortest hold or delay a shrink goes down to: below a millisecond a fault is no
/// longer a fault a person would write.
pub const FAULT_KNOB_MIN_NS: u64 = NS_PER_MS;

/// A duration inside one fault action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKnob {
    /// restart_after, heal_after or duration.
    Hold,
    /// extra_delay or extra_latency.
    Delay,
}

/// The knob's value in `action`, if the action has that knob (a crash without restart_after
/// has no hold: it lasts until the heal).
pub fn fault_knob(action: &FaultAction<String>, knob: FaultKnob) -> Option<Dur> {
    match (action, knob) {
        (
            FaultAction::Crash { restart_after, .. }
            | FaultAction::CrashSet { restart_after, .. }
            | FaultAction::Kill { restart_after, .. }
            | FaultAction::Stop { restart_after, .. },
            FaultKnob::Hold,
        ) => *restart_after,
        (
            FaultAction::Partition { heal_after, .. }
            | FaultAction::Isolate { heal_after, .. }
            | FaultAction::IsolateGroup { heal_after, .. }
            | FaultAction::OneWay { heal_after, .. },
            FaultKnob::Hold,
        ) => *heal_after,
        (
            FaultAction::Clog { duration, .. }
            | FaultAction::DelaySpike { duration, .. }
            | FaultAction::FsyncSpike { duration, .. },
            FaultKnob::Hold,
        ) => Some(*duration),
        (
            FaultAction::Clog { extra_delay, .. } | FaultAction::DelaySpike { extra_delay, .. },
            FaultKnob::Delay,
        ) => Some(*extra_delay),
        (FaultAction::FsyncSpike { extra_latency, .. }, FaultKnob::Delay) => Some(*extra_latency),
        _ => None,
    }
}

/// Sets the knob in `action`; no effect if the action has no such knob.
pub fn set_fault_knob(action: &mut FaultAction<String>, knob: FaultKnob, value: Dur) {
    match (action, knob) {
        (
            FaultAction::Crash { restart_after, .. }
            | FaultAction::CrashSet { restart_after, .. }
            | FaultAction::Kill { restart_after, .. }
            | FaultAction::Stop { restart_after, .. },
            FaultKnob::Hold,
        ) if restart_after.is_some() => {
            *restart_after = Some(value);
        }
        (
            FaultAction::Partition { heal_after, .. }
            | FaultAction::Isolate { heal_after, .. }
            | FaultAction::IsolateGroup { heal_after, .. }
            | FaultAction::OneWay { heal_after, .. },
            FaultKnob::Hold,
        ) if heal_after.is_some() => *heal_after = Some(value),
        (
            FaultAction::Clog { duration, .. }
            | FaultAction::DelaySpike { duration, .. }
            | FaultAction::FsyncSpike { duration, .. },
            FaultKnob::Hold,
        ) => *duration = value,
        (
            FaultAction::Clog { extra_delay, .. } | FaultAction::DelaySpike { extra_delay, .. },
            FaultKnob::Delay,
        ) => *extra_delay = value,
        (FaultAction::FsyncSpike { extra_latency, .. }, FaultKnob::Delay) => {
            *extra_latency = value;
        }
        _ => {}
    }
}

/// Lowers a duration `current` (known to fail) toward `min`: the minimum first, then halving
/// the excess over the minimum while the failure stays. Values are rounded down to whole
/// milliseconds (microseconds below 10 ms), so that shrunk files stay readable. `fails` runs
/// a candidate; returns the lowest value that failed.
pub fn lower_duration(current: u64, min: u64, fails: &mut dyn FnMut(u64) -> bool) -> u64 {
    if current <= min {
        return current;
    }
    if fails(min) {
        return min;
    }
    let mut value = current;
    loop {
        let half = min + (value - min) / 2;
        let unit = if half >= 10 * NS_PER_MS {
            NS_PER_MS
        } else {
            NS_PER_US
        };
        let next = (half / unit * unit).max(min);
        if next == min || next >= value || !fails(next) {
            return value;
        }
        value = next;
    }
}

/// Values below `current` to try for a count (clients, rate, keys), smallest first: the
/// minimum, then a quarter, a half and one less. The first that still fails is kept.
pub fn lower_counts(current: u32, min: u32) -> Vec<u32> {
    let mut out: Vec<u32> = [min, current / 4, current / 2, current.saturating_sub(1)]
        .into_iter()
        .filter(|v| *v >= min && *v < current)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A knob of the ZooKeeper workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKnob {
    Clients,
    OpsPerS,
    Keys,
}

impl WorkloadKnob {
    pub const ALL: [WorkloadKnob; 3] = [
        WorkloadKnob::Clients,
        WorkloadKnob::OpsPerS,
        WorkloadKnob::Keys,
    ];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKnob::Clients => "clients",
            WorkloadKnob::OpsPerS => "ops_per_s",
            WorkloadKnob::Keys => "keys",
        }
    }

    /// The knob's value; None for systems without a workload of this shape.
    pub fn get(self, scenario: &Scenario) -> Option<u32> {
        let SystemSpec::Zookeeper(z) = &scenario.system else {
            return None;
        };
        Some(match self {
            WorkloadKnob::Clients => z.clients,
            WorkloadKnob::OpsPerS => z.workload.ops_per_s,
            WorkloadKnob::Keys => z.workload.keys,
        })
    }

    /// `scenario` with the knob at `value`. Fewer clients also means fewer writers and no
    /// removed client left on a side of a partition.
    pub fn set(self, scenario: &Scenario, value: u32) -> Scenario {
        let mut out = scenario.clone();
        let SystemSpec::Zookeeper(z) = &mut out.system else {
            return out;
        };
        match self {
            WorkloadKnob::OpsPerS => z.workload.ops_per_s = value,
            WorkloadKnob::Keys => z.workload.keys = value,
            WorkloadKnob::Clients => {
                let gone: Vec<String> = (value..z.clients).map(|i| format!("c{i}")).collect();
                z.clients = value;
                z.workload.writers = z.workload.writers.map(|w| w.min(value));
                for fault in &mut out.faults {
                    drop_nodes(&mut fault.action, &gone);
                }
            }
        }
        out
    }
}

/// Removes `gone` from the sides of a partition (validation rejects an emptied side).
fn drop_nodes(action: &mut FaultAction<String>, gone: &[String]) {
    match action {
        FaultAction::Partition { groups, .. } => {
            for g in groups.iter_mut() {
                g.retain(|n| !gone.contains(n));
            }
        }
        FaultAction::OneWay { from, to, .. } => {
            from.retain(|n| !gone.contains(n));
            to.retain(|n| !gone.contains(n));
        }
        _ => {}
    }
}

/// `action` aimed at `role` ("@leader") instead of the server it names: a crash, clog,
/// reset or fsync spike of one server, or a partition that cuts one server off from all the
/// others (an isolation). None if the action has no such single target.
pub fn aimed_at_role(
    action: &FaultAction<String>,
    role: &str,
    servers: &[String],
) -> Option<FaultAction<String>> {
    let mut out = action.clone();
    match &mut out {
        FaultAction::Crash { node, .. }
        | FaultAction::Kill { node, .. }
        | FaultAction::Stop { node, .. }
        | FaultAction::Clog { node, .. }
        | FaultAction::Reset { node }
        | FaultAction::FsyncSpike { node, .. }
        | FaultAction::Isolate { node, .. } => {
            if node == role {
                return None;
            }
            *node = role.to_string();
            Some(out)
        }
        FaultAction::Partition {
            groups,
            heal_after,
            silent,
        } if groups.len() == 2 => {
            let alone = groups.iter().position(|g| g.len() == 1)?;
            let mut rest = groups[1 - alone].clone();
            rest.push(groups[alone][0].clone());
            rest.sort();
            let mut all = servers.to_vec();
            all.sort();
            (rest == all).then(|| FaultAction::Isolate {
                node: role.to_string(),
                heal_after: *heal_after,
                silent: *silent,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_tries_the_minimum_then_halves_while_it_fails() {
        let mut tried = Vec::new();
        let got = lower_duration(800 * NS_PER_MS, NS_PER_MS, &mut |v| {
            tried.push(v);
            v >= 150 * NS_PER_MS
        });
        assert_eq!(got, 200 * NS_PER_MS);
        assert_eq!(
            tried,
            [1, 400, 200, 100].map(|ms| ms * NS_PER_MS).to_vec(),
            "minimum first, then halving until it passes"
        );
        assert_eq!(lower_duration(900, NS_PER_MS, &mut |_| true), 900);
        assert_eq!(
            lower_duration(9 * NS_PER_MS, NS_PER_MS, &mut |_| true),
            NS_PER_MS
        );
    }

    #[test]
    fn single_target_faults_can_aim_at_a_role() {
        let servers: Vec<String> = ["zk0", "zk1", "zk2"].map(String::from).to_vec();
        let cut: FaultAction<String> = FaultAction::Partition {
            groups: vec![vec!["zk0".into(), "zk2".into()], vec!["zk1".into()]],
            heal_after: Some(Dur::from_ms(300)),
            silent: true,
        };
        assert_eq!(
            aimed_at_role(&cut, "@leader", &servers),
            Some(FaultAction::Isolate {
                node: "@leader".into(),
                heal_after: Some(Dur::from_ms(300)),
                silent: true,
            })
        );
        let with_client: FaultAction<String> = FaultAction::Partition {
            groups: vec![
                vec!["zk0".into(), "c0".into()],
                vec!["zk1".into(), "zk2".into()],
            ],
            heal_after: None,
            silent: false,
        };
        assert_eq!(aimed_at_role(&with_client, "@leader", &servers), None);
        let crash: FaultAction<String> = FaultAction::Crash {
            node: "@leader".into(),
            restart_after: None,
        };
        assert_eq!(aimed_at_role(&crash, "@leader", &servers), None, "already");
    }

    #[test]
    fn counts_are_tried_smallest_first() {
        assert_eq!(lower_counts(8, 1), vec![1, 2, 4, 7]);
        assert_eq!(lower_counts(3, 1), vec![1, 2]);
        assert_eq!(lower_counts(1, 1), Vec::<u32>::new());
    }

    #[test]
    fn every_timed_action_exposes_its_hold() {
        let mut a: FaultAction<String> = FaultAction::Clog {
            node: "zk1".into(),
            extra_delay: Dur::from_ms(80),
            duration: Dur::from_ms(600),
        };
        set_fault_knob(&mut a, FaultKnob::Hold, Dur::from_ms(5));
        set_fault_knob(&mut a, FaultKnob::Delay, Dur::from_ms(7));
        assert_eq!(fault_knob(&a, FaultKnob::Hold), Some(Dur::from_ms(5)));
        assert_eq!(fault_knob(&a, FaultKnob::Delay), Some(Dur::from_ms(7)));
        let mut crash: FaultAction<String> = FaultAction::Crash {
            node: "zk0".into(),
            restart_after: None,
        };
        set_fault_knob(&mut crash, FaultKnob::Hold, Dur::from_ms(5));
        assert_eq!(
            fault_knob(&crash, FaultKnob::Hold),
            None,
            "down until the heal"
        );
        assert_eq!(fault_knob(&crash, FaultKnob::Delay), None);
    }
}
