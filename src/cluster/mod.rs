//! Wires a simulated system into one world and drives a run: the fault phase (the schedule
//! applied at its times), then the healed phase (everything healed and restarted) in which
//! the system must reach its liveness goal within the scenario's bound.
//!
//! A system (the counter, ZooKeeper, Kafka) implements [`System`]: it builds its nodes, names
//! them, resolves roles such as "@leader", checks its online invariants after every delivered
//! event, says what it is still waiting for in the healed phase, and runs its end-of-run
//! checkers. The driver stops at the first violation, as the run is then no longer
//! interesting and the timeline around the violation is what a person needs.
//!
//! Depends on: sim, node, scenario, example (and the protocol modules through each system).

pub mod capture;
pub mod counter;
pub mod kafka;
pub mod liveness;
pub mod pacing;
pub mod record;
pub mod zk;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::node::{Node, NodeId};
use crate::scenario::{Scenario, Schedule, SystemSpec, TimedFault};
use crate::sim::fault::FaultAction;
use crate::sim::time::Dur;
use crate::sim::trace::TimelineLine;
use crate::sim::{rng, Sim, SimConfig, SimStats, Stepped};

/// The class of a failure, each with its own meaning in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An invariant or checker found a state or history the protocol promises never happens.
    Safety,
    /// The system did not reach its goal within the bound after the heal.
    Liveness,
    /// Protocol code panicked (an assertion failed).
    Panic,
    /// The run delivered more events than the scenario allows.
    Budget,
}

/// One violation found in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: FailureKind,
    /// The invariant or checker, e.g. "counter-durable".
    pub invariant: String,
    /// What was seen, readable.
    pub message: String,
    /// Virtual time at which it was found.
    pub at_ns: u64,
    /// Index of the delivered event after which it was found (0 for end-of-run checks).
    pub event: u64,
    /// The node concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A behaviour of the real system itself that a run reproduced: documented upstream, not
/// a bug of the testbed, and never hidden. It takes the place of the violation it explains
/// (so far: a liveness failure); the run's verdict names it and a campaign counts such
/// seeds apart from passes and failures. Generic: a name, where the real system does it,
/// and what happened in this run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownBehaviour {
    /// Short name, e.g. "ZOOKEEPER-2354 start-up refusal".
    pub name: String,
    /// Where the real system does it: issue, source.
    pub reference: String,
    /// What happened in this run (nodes, files) and why it is the real system's behaviour.
    pub explanation: String,
    /// The violation it explains, as the check reported it.
    pub explains: Violation,
}

/// A simulated system over the kernel.
pub trait System {
    type Node: Node<Msg = Self::Msg>;
    type Msg: Hash + Debug;

    /// Node names, indexed by id.
    fn names(&self) -> Vec<String>;
    /// Builds node `id`, fresh at the start or after a crash (it then recovers from disk).
    fn factory(&self) -> Box<dyn FnMut(NodeId) -> Self::Node>;
    /// The candidates for a role such as "@leader" right now.
    fn resolve_role(&self, role: &str, sim: &Sim<Self::Node>) -> Vec<NodeId>;
    /// The nodes "@any" and isolation refer to (servers, not clients).
    fn fault_targets(&self) -> Vec<NodeId>;
    /// Online invariants, after every delivered event.
    fn after_event(&mut self, sim: &Sim<Self::Node>, node: NodeId) -> Vec<Violation>;
    /// Called once when the healed phase begins.
    fn begin_liveness(&mut self, sim: &Sim<Self::Node>);
    /// In the healed phase: what the system is still waiting for, or None when done.
    fn pending(&mut self, sim: &Sim<Self::Node>) -> Option<String>;
    /// Whether [`System::pending`] would give a reason, without building it: the driver
    /// asks after every event of the healed phase, and needs the sentence only at the
    /// deadline. It must watch what `pending` watches (same side effects); asking
    /// `pending` afterwards in the same state gives the same answer.
    fn still_pending(&mut self, sim: &Sim<Self::Node>) -> bool {
        self.pending(sim).is_some()
    }
    /// The name a liveness failure (goal not reached within the bound) carries.
    fn liveness_invariant(&self) -> &'static str {
        "liveness"
    }
    /// A liveness failure that a known behaviour of the real system explains, if one
    /// does (see [`KnownBehaviour`]). Only when the rest of the system did reach its goal
    /// may it say so: anything else stays a failure.
    fn explain_liveness(
        &mut self,
        _sim: &Sim<Self::Node>,
        _violation: &Violation,
    ) -> Option<KnownBehaviour> {
        None
    }
    /// End-of-run checkers (client histories).
    fn finish(&mut self, sim: &Sim<Self::Node>) -> Vec<Violation>;
    /// The node's role and epoch right now, for the report's diagram (captured runs only).
    fn role(&self, _sim: &Sim<Self::Node>, _node: NodeId) -> Option<capture::Role> {
        None
    }
    /// Every client operation of the run (captured runs only, after `finish`).
    fn client_ops(&self, _sim: &Sim<Self::Node>) -> Vec<capture::ClientOp> {
        Vec::new()
    }
    /// The witness of the history check that failed in `finish`, if one did.
    fn witness(&self) -> Option<capture::Witness> {
        None
    }
    /// System-specific figures for the summary (operations, leaders, ...).
    fn summary(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// How to run: the knobs that are not part of the scenario.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the last this-many timeline lines.
    pub timeline_capture: usize,
    /// Record per-event checksums (for locating the first divergence between two runs).
    pub record_checksums: bool,
    /// Record messages, roles, faults and client operations for pictures and exports
    /// ([`capture::RunCapture`]). Off in normal runs; the trace hash is the same either way.
    pub capture: bool,
}

/// A fault as it was applied, for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedFault {
    pub at_ns: u64,
    pub action: FaultAction<String>,
}

/// Everything one run produced.
#[derive(Clone, Debug, Serialize)]
pub struct RunOutcome {
    pub seed: u64,
    pub trace_hash: u64,
    pub events: u64,
    pub simulated_ns: u64,
    /// When the healed phase reached its goal, if it did.
    pub recovered_ns: Option<u64>,
    pub violations: Vec<Violation>,
    /// Known real-system behaviours that explain what would have been violations.
    pub known: Vec<KnownBehaviour>,
    pub applied: Vec<AppliedFault>,
    pub stats: SimStats,
    pub system: serde_json::Value,
    #[serde(skip)]
    pub timeline: Vec<TimelineLine>,
    #[serde(skip)]
    pub checksums: Vec<u64>,
    /// What a captured run recorded (None unless `RunOptions::capture`).
    #[serde(skip)]
    pub capture: Option<Box<capture::RunCapture>>,
}

/// Runs one seed of a scenario with a given schedule.
pub fn run(
    scenario: &Scenario,
    seed: u64,
    schedule: &Schedule,
    options: &RunOptions,
) -> RunOutcome {
    match &scenario.system {
        SystemSpec::Counter(spec) => {
            let system = counter::CounterSystem::new(spec);
            drive(system, scenario, seed, schedule, options)
        }
        SystemSpec::Zookeeper(spec) => {
            let system = zk::ZkSystem::new(spec);
            drive(system, scenario, seed, schedule, options)
        }
        SystemSpec::Kafka(spec) => {
            let system = kafka::KafkaSystem::new(spec);
            drive(system, scenario, seed, schedule, options)
        }
    }
}

struct Pending {
    /// Resolved actions keyed by (time, order of scheduling).
    queue: BTreeMap<(u64, u64), FaultAction<NodeId>>,
    seq: u64,
}

impl Pending {
    fn push(&mut self, at_ns: u64, action: FaultAction<NodeId>) {
        self.queue.insert((at_ns, self.seq), action);
        self.seq += 1;
    }
}

/// The driver: fault phase, heal, healed phase, end-of-run checks.
pub fn drive<S: System>(
    mut system: S,
    scenario: &Scenario,
    seed: u64,
    schedule: &Schedule,
    options: &RunOptions,
) -> RunOutcome {
    let names = system.names();
    let config = SimConfig {
        seed,
        net: scenario.network.clone(),
        disk: scenario.disk.clone(),
        timeline_capture: options.timeline_capture,
        record_checksums: options.record_checksums,
    };
    let mut sim = Sim::new(config, names.clone(), system.factory());
    let mut roles = options.capture.then(|| RoleLog::new(names.len()));
    if options.capture {
        sim.enable_capture();
    }
    // Roles are resolved with their own stream, so they never disturb the nemesis draw.
    let mut role_rng = rng::stream(seed, "faults/roles");
    let mut scheduled = schedule.faults.iter().peekable();
    let mut pending = Pending {
        queue: BTreeMap::new(),
        seq: 0,
    };
    // Faults with a trigger window whose roles had no candidate yet, with their deadline.
    let mut waiting: Vec<(u64, &TimedFault)> = Vec::new();
    let mut applied = Vec::new();
    let mut violations = Vec::new();
    let mut known = Vec::new();
    let fault_end = scenario.duration.ns();
    let deadline = fault_end + scenario.liveness_bound.ns();
    let mut healed = false;
    let mut recovered_ns = None;

    'run: loop {
        if !healed && waiting.is_empty() {
            // Until the next fault (scheduled or resolved) or the end of the fault phase,
            // an iteration below does nothing but the step: run those steps back to back,
            // without re-reading the fault queues per event.
            let next_fault = pending.queue.keys().next().map_or(u64::MAX, |k| k.0);
            let next_scheduled = scheduled.peek().map_or(u64::MAX, |f| f.at.ns());
            let bound = fault_end.min(next_fault).min(next_scheduled);
            while sim.next_time().is_some_and(|t| t < bound) {
                if !step_and_check(&mut sim, &mut system, &mut roles, scenario, &mut violations) {
                    break 'run;
                }
            }
        }
        // Move scheduled faults whose time has come into the resolved queue.
        let next_event = sim.next_time().unwrap_or(u64::MAX);
        // A waiting fault fires after the first event that gives its roles a candidate.
        if !waiting.is_empty() {
            let now = sim.now();
            waiting.retain(|(deadline, f)| {
                now <= *deadline
                    && !resolve_into(&system, &sim, &mut role_rng, f, &mut pending, &names)
            });
        }
        while let Some(f) = scheduled.next_if(|f| f.at.ns() <= next_event.min(fault_end)) {
            if !resolve_into(&system, &sim, &mut role_rng, f, &mut pending, &names) {
                if let Some(trigger) = f.trigger {
                    waiting.push(((f.at.ns() + trigger.within.ns()).min(fault_end), f));
                }
            }
        }
        let next_fault = pending.queue.keys().next().map(|k| k.0);
        if !healed && next_event.min(next_fault.unwrap_or(u64::MAX)) >= fault_end {
            sim.advance_to(fault_end.max(sim.now()));
            sim.heal_all();
            pending.queue.clear();
            waiting.clear();
            healed = true;
            system.begin_liveness(&sim);
            continue;
        }
        if let Some(at) = next_fault.filter(|at| *at <= next_event) {
            let (_, action) = pending.queue.pop_first().expect("peeked");
            sim.advance_to(at.max(sim.now()));
            apply(&mut sim, &mut pending, &action, &mut applied, &names);
            continue;
        }
        if healed {
            if system.still_pending(&sim) {
                if sim.now() > deadline || next_event == u64::MAX {
                    let reason = system
                        .pending(&sim)
                        .expect("still pending in the same state");
                    let name = system.liveness_invariant();
                    let v = liveness_violation(&sim, scenario, name, reason);
                    if !unchecked(scenario, &v) {
                        match system.explain_liveness(&sim, &v) {
                            Some(k) => known.push(k),
                            None => violations.push(v),
                        }
                    }
                    break;
                }
            } else {
                recovered_ns = Some(sim.now());
                break;
            }
        }
        if !step_and_check(&mut sim, &mut system, &mut roles, scenario, &mut violations) {
            break;
        }
    }
    if violations.is_empty() {
        let found = system.finish(&sim);
        violations.extend(found.into_iter().filter(|v| !unchecked(scenario, v)));
    }
    let capture = roles.map(|log| {
        Box::new(capture::RunCapture {
            kernel: sim.capture().cloned().unwrap_or_default(),
            roles: log.changes,
            ops: system.client_ops(&sim),
            witness: system.witness(),
        })
    });
    RunOutcome {
        seed,
        trace_hash: sim.trace().hash(),
        events: sim.trace().events(),
        simulated_ns: sim.now(),
        recovered_ns,
        violations,
        known,
        applied,
        stats: sim.stats().clone(),
        system: system.summary(),
        timeline: sim.trace().lines(),
        checksums: sim
            .trace()
            .checksums()
            .map(<[u64]>::to_vec)
            .unwrap_or_default(),
        capture,
    }
}

/// Handles the next event and checks the invariants after it; false when the run ends
/// there (a violation, a panic, the event budget), with the reason in `violations`.
/// Inlined into both of its callers: it runs once per event.
#[inline]
fn step_and_check<S: System>(
    sim: &mut Sim<S::Node>,
    system: &mut S,
    roles: &mut Option<RoleLog>,
    scenario: &Scenario,
    violations: &mut Vec<Violation>,
) -> bool {
    // A panic in protocol code (a failed assertion) is that seed's failure, reported
    // with the time and event at which it happened.
    let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match sim.step() {
        Some(Stepped::Delivered(node)) => {
            if let Some(log) = roles {
                log.observe(sim.now(), node, system.role(sim, node));
            }
            system.after_event(sim, node)
        }
        _ => Vec::new(),
    }));
    match step {
        Ok(found) if found.iter().all(|v| unchecked(scenario, v)) => {}
        Ok(found) => {
            violations.extend(found.into_iter().filter(|v| !unchecked(scenario, v)));
            return false;
        }
        Err(payload) => {
            violations.push(Violation {
                kind: FailureKind::Panic,
                invariant: "panic".into(),
                message: panic_message(payload.as_ref()),
                at_ns: sim.now(),
                event: sim.trace().events(),
                node: None,
            });
            return false;
        }
    }
    if sim.trace().events() >= scenario.max_events {
        violations.push(Violation {
            kind: FailureKind::Budget,
            invariant: "event-budget".into(),
            message: format!("more than {} events delivered", scenario.max_events),
            at_ns: sim.now(),
            event: sim.trace().events(),
            node: None,
        });
        return false;
    }
    true
}

/// The role changes of a captured run: one entry each time a node's role or epoch differs
/// from the last one seen.
struct RoleLog {
    last: Vec<Option<capture::Role>>,
    changes: Vec<capture::RoleChange>,
}

impl RoleLog {
    fn new(nodes: usize) -> Self {
        RoleLog {
            last: vec![None; nodes],
            changes: Vec::new(),
        }
    }

    fn observe(&mut self, at_ns: u64, node: NodeId, role: Option<capture::Role>) {
        let Some(role) = role else { return };
        if self.last[node.index()].as_ref() != Some(&role) {
            self.last[node.index()] = Some(role.clone());
            self.changes.push(capture::RoleChange {
                at_ns,
                node: node.0,
                role,
            });
        }
    }
}

thread_local! {
    /// Where the last panic on this thread happened, filled by [`install_panic_hook`].
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces the default panic printout with a silent hook that remembers the location, so
/// that a panicking seed becomes one line in its report instead of noise on stderr.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        PANIC_LOCATION.with(|p| *p.borrow_mut() = Some(location));
    }));
}

/// The message of a caught panic, with its location when the hook recorded it.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic with a non-string payload".to_string());
    match PANIC_LOCATION.with(|p| p.borrow_mut().take()) {
        Some(location) if !location.is_empty() => format!("panicked at {location}: {text}"),
        _ => format!("panicked: {text}"),
    }
}

/// A safety violation found at the current event, concerning `node`.
pub fn safety_violation<N>(
    sim: &Sim<N>,
    invariant: &str,
    node: NodeId,
    message: String,
) -> Violation
where
    N: Node,
    N::Msg: Hash + Debug,
{
    Violation {
        kind: FailureKind::Safety,
        invariant: invariant.to_string(),
        message,
        at_ns: sim.now(),
        event: sim.trace().events(),
        node: Some(sim.name(node).to_string()),
    }
}

/// The scenario does not check `v`'s invariant (`Scenario::unchecked`).
fn unchecked(scenario: &Scenario, v: &Violation) -> bool {
    scenario.unchecked.contains(&v.invariant)
}

fn liveness_violation<N>(
    sim: &Sim<N>,
    scenario: &Scenario,
    invariant: &str,
    reason: String,
) -> Violation
where
    N: Node,
    N::Msg: Hash + Debug,
{
    Violation {
        kind: FailureKind::Liveness,
        invariant: invariant.into(),
        message: format!(
            "not recovered {} after the heal: {reason}",
            Dur(sim.now().saturating_sub(scenario.duration.ns()))
        ),
        at_ns: sim.now(),
        event: sim.trace().events(),
        node: None,
    }
}

/// Resolves names and roles of a scheduled fault into ids; a role with no candidate (no
/// leader right now) makes the fault a no-op, which the timeline records, or, for a fault
/// with a trigger window, leaves it waiting. Returns whether the fault was resolved.
fn resolve_into<S: System>(
    system: &S,
    sim: &Sim<S::Node>,
    role_rng: &mut ChaCha8Rng,
    fault: &TimedFault,
    pending: &mut Pending,
    names: &[String],
) -> bool {
    let targets = system.fault_targets();
    // The multi-node shapes name distinct nodes ("@leader" and "@unflushed": two servers).
    let distinct = matches!(
        fault.action,
        FaultAction::CrashSet { .. } | FaultAction::IsolateGroup { .. }
    );
    let mut chosen: Vec<NodeId> = Vec::new();
    let resolved = fault.action.try_map(|r| {
        let id = if let Some(i) = names.iter().position(|n| n == r) {
            NodeId(i as u32)
        } else {
            let mut candidates = if r == "@any" {
                targets.clone()
            } else {
                system.resolve_role(r, sim)
            };
            if distinct {
                candidates.retain(|c| !chosen.contains(c));
            }
            *candidates.choose(role_rng).ok_or(())?
        };
        chosen.push(id);
        Ok::<NodeId, ()>(id)
    });
    let Ok(action) = resolved else {
        return false;
    };
    let action = match action {
        FaultAction::Isolate {
            node,
            heal_after,
            silent,
        } => {
            let rest: Vec<NodeId> = targets.iter().copied().filter(|t| *t != node).collect();
            FaultAction::Partition {
                groups: vec![vec![node], rest],
                heal_after,
                silent,
            }
        }
        FaultAction::IsolateGroup {
            nodes,
            heal_after,
            silent,
        } => {
            let rest: Vec<NodeId> = (0..names.len() as u32)
                .map(NodeId)
                .filter(|t| !nodes.contains(t))
                .collect();
            FaultAction::Partition {
                groups: vec![nodes, rest],
                heal_after,
                silent,
            }
        }
        other => other,
    };
    let delay = fault.trigger.map_or(0, |t| t.delay.ns());
    pending.push(fault.at.ns().max(sim.now()) + delay, action);
    true
}

fn apply<N>(
    sim: &mut Sim<N>,
    pending: &mut Pending,
    action: &FaultAction<NodeId>,
    applied: &mut Vec<AppliedFault>,
    names: &[String],
) where
    N: Node,
    N::Msg: Hash + Debug,
{
    sim.apply_fault(action);
    let now = sim.now();
    match action {
        FaultAction::Crash {
            node,
            restart_after: Some(after),
        }
        | FaultAction::Kill {
            node,
            restart_after: Some(after),
        } => pending.push(now + after.ns(), FaultAction::Restart { node: *node }),
        FaultAction::CrashSet {
            nodes,
            restart_after: Some(after),
        } => {
            for node in nodes {
                pending.push(now + after.ns(), FaultAction::Restart { node: *node });
            }
        }
        FaultAction::Partition {
            heal_after: Some(after),
            ..
        }
        | FaultAction::OneWay {
            heal_after: Some(after),
            ..
        } => pending.push(now + after.ns(), FaultAction::Heal),
        _ => {}
    }
    let named = action
        .try_map(|id| Ok::<_, ()>(names[id.index()].clone()))
        .expect("infallible");
    applied.push(AppliedFault {
        at_ns: now,
        action: named,
    });
}
