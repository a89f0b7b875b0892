//! Fault schedules: the explicit faults of a scenario plus those the random nemesis draws
//! from the seed's "faults" stream, resolved before the run into one concrete, timed list.
//!
//! Because the whole schedule exists before the run starts, it can be stored in a report,
//! replayed without the generator, and shrunk by removing actions. The nemesis never draws
//! from any other stream, so the workload of a seed is the same with or without it.
//!
//! Swarm testing: with `swarm` on, each seed first draws which fault kinds are enabled (each
//! with probability one half, at least one) and scales the mean interval, so that different
//! seeds explore different mixes instead of all seeds the same average mix.
//!
//! Depends on: sim (fault types, rng, time).

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::scenario::kafka::{
    KafkaSpec, NEW_LEADER_ROLE, NON_CONTROLLER_ROLE, PARTITION_LEADER_ROLE,
};
use crate::scenario::{Scenario, SystemSpec};
use crate::sim::fault::FaultAction;
use crate::sim::rng::{self, Ratio};
use crate::sim::time::Dur;

/// A fault action at a time from the start of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct TimedFault {
    pub at: Dur,
    pub action: FaultAction<String>,
    /// When set, the action waits for its protocol moment (see [`Trigger`]); without it a
    /// role with no candidate at `at` makes the action a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
}

/// A protocol-moment trigger: the action's roles are resolved at the first event in
/// `at ..= at + within` after which every role it names has a candidate ("@syncing": a
/// server in the middle of its synchronisation), and the action fires `delay` later on the
/// nodes chosen then. If no such event comes in the window, the action is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    pub within: Dur,
    pub delay: Dur,
}

/// Kinds of fault the nemesis can draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum NemesisKind {
    Crash,
    /// Kill a process (SIGKILL/OOM): its page cache survives.
    Kill,
    /// Stop a process gracefully (it halts itself; killed after the grace period).
    Stop,
    /// A loud partition of the fault targets (crossing connections reset).
    Partition,
    /// Cut one target off, loudly.
    Isolate,
    OneWay,
    /// A silent partition (traffic dropped, no one told).
    SilentPartition,
    /// Cut one target off, silently.
    SilentIsolate,
    /// Slow a node's every message. On Kafka half of the clogs wait, for the rest of the
    /// fault phase, for a follower catching up across a leader change ("@rejoining") and
    /// slow it from that instant.
    Clog,
    DelaySpike,
    Reset,
    FsyncSpike,
    ReadCorruption,
    /// Crash a server in the middle of its synchronisation (between NEWLEADER and UPTODATE).
    CrashSyncing,
    /// Crash the leader and a synchronising follower at the same instant.
    CrashLeaderAndSyncing,
    /// Crash the leader and a server whose log has unsynced writes at the same instant.
    CrashLeaderAndUnflushed,
    /// Cut the leader, with the largest minority of followers and some clients, off from
    /// the rest of the world (the majority and the other clients).
    IsolateLeaderWithClients,
    /// Kafka: cut a running broker (the controller, or the leader of a partition) off from
    /// every ZooKeeper server until its session expires: loudly, or one-way (the ensemble's
    /// answers are held, so its writes land while their answers are lost). Half of the
    /// controller cuts wait for it to be in the middle of a leader or ISR change
    /// ("@controller-electing"); the other half stop another broker ("@non-controller")
    /// while the controller is cut off, so that it is handling a controlled shutdown it
    /// cannot finish when its session expires. The moments of KAFKA-6082's zombie
    /// controller and KAFKA-2729's lost ISR write.
    ExpireSession,
    /// Kafka: a fast second leader change. Waits (for the rest of the fault phase) for a partition
    /// leader that has appended in its new epoch with nothing of it committed yet
    /// ("@new-leader") and takes it down a few round trips later: a graceful stop (its
    /// controlled shutdown moves the leadership at once), a kill or a power loss. The next
    /// leader may hold nothing of that epoch, and the deposed one comes back with a HW that
    /// still lags the previous leader's: KAFKA-6361's moment.
    FastFailover,
}

impl NemesisKind {
    pub const ALL: [NemesisKind; 13] = [
        NemesisKind::Crash,
        NemesisKind::Kill,
        NemesisKind::Stop,
        NemesisKind::Partition,
        NemesisKind::Isolate,
        NemesisKind::OneWay,
        NemesisKind::SilentPartition,
        NemesisKind::SilentIsolate,
        NemesisKind::Clog,
        NemesisKind::DelaySpike,
        NemesisKind::Reset,
        NemesisKind::FsyncSpike,
        NemesisKind::ReadCorruption,
    ];

    /// The fault shapes aimed at roles and protocol moments. Opt-in: they are never part of
    /// an empty `kinds` (which means [`NemesisKind::ALL`]), so that the schedules existing
    /// scenarios draw do not change.
    pub const TARGETED: [NemesisKind; 4] = [
        NemesisKind::CrashSyncing,
        NemesisKind::CrashLeaderAndSyncing,
        NemesisKind::CrashLeaderAndUnflushed,
        NemesisKind::IsolateLeaderWithClients,
    ];

    /// Kinds that aim at ZooKeeper roles ("@leader", "@syncing"), for validation.
    pub fn needs_zookeeper(self) -> bool {
        NemesisKind::TARGETED.contains(&self)
    }

    /// Kinds that aim at Kafka roles and sessions, for validation (opt-in like
    /// [`NemesisKind::TARGETED`]).
    pub fn needs_kafka(self) -> bool {
        matches!(self, NemesisKind::ExpireSession | NemesisKind::FastFailover)
    }
}

/// The random nemesis of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisOptions {
    /// Fault kinds it may use; empty means all of them.
    #[serde(default)]
    pub kinds: Vec<NemesisKind>,
    /// Draw a per-seed subset of the kinds and a per-seed interval (swarm testing).
    #[serde(default = "yes")]
    pub swarm: bool,
    /// Mean time between two fault actions.
    pub interval_mean: Dur,
    /// Shortest time a fault lasts (a crashed node stays down, a partition stays up).
    pub hold_min: Dur,
    /// Longest time a fault lasts.
    pub hold_max: Dur,
    /// Most fault targets crashed at the same time; default: a minority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_crashed: Option<u32>,
}

fn yes() -> bool {
    true
}

/// The nemesis settings one seed actually ran with (after the swarm draw).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedNemesis {
    pub kinds: Vec<NemesisKind>,
    pub interval_mean: Dur,
    pub hold_min: Dur,
    pub hold_max: Dur,
    pub max_crashed: u32,
}

/// The concrete fault schedule of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Every action, in time order (ties keep scenario order, then nemesis order).
    pub faults: Vec<TimedFault>,
    /// The nemesis settings drawn for this seed, if there was a nemesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<ResolvedNemesis>,
}

impl Schedule {
    /// The scenario's explicit faults plus the nemesis draw for `seed`.
    pub fn generate(scenario: &Scenario, seed: u64) -> Schedule {
        let mut faults = scenario.faults.clone();
        let mut nemesis = None;
        if let Some(options) = &scenario.nemesis {
            let mut rng = rng::stream(seed, "faults");
            let resolved = resolve(options, &mut rng, scenario);
            faults.extend(draw(&resolved, &mut rng, scenario));
            nemesis = Some(resolved);
        }
        faults.sort_by_key(|f| f.at);
        Schedule { faults, nemesis }
    }
}

fn resolve(options: &NemesisOptions, rng: &mut ChaCha8Rng, scenario: &Scenario) -> ResolvedNemesis {
    let allowed: Vec<NemesisKind> = if options.kinds.is_empty() {
        NemesisKind::ALL.to_vec()
    } else {
        options.kinds.clone()
    };
    let targets = scenario.system.fault_target_names().len() as u32;
    let max_crashed = options
        .max_crashed
        .unwrap_or((targets.saturating_sub(1) / 2).max(1));
    if !options.swarm {
        return ResolvedNemesis {
            kinds: allowed,
            interval_mean: options.interval_mean,
            hold_min: options.hold_min,
            hold_max: options.hold_max,
            max_crashed,
        };
    }
    let mut kinds: Vec<NemesisKind> = allowed
        .iter()
        .copied()
        .filter(|_| Ratio::new(1, 2).chance(rng))
        .collect();
    if kinds.is_empty() {
        kinds.push(*allowed.choose(rng).expect("at least one kind"));
    }
    // Scale the interval by 1/2, 1 or 2: some seeds are calm, some are storms.
    let interval = match rng.gen_range(0..3) {
        0 => options.interval_mean.ns() / 2,
        1 => options.interval_mean.ns(),
        _ => options.interval_mean.ns() * 2,
    };
    ResolvedNemesis {
        kinds,
        interval_mean: Dur(interval.max(1)),
        hold_min: options.hold_min,
        hold_max: options.hold_max,
        max_crashed,
    }
}

fn draw(n: &ResolvedNemesis, rng: &mut ChaCha8Rng, scenario: &Scenario) -> Vec<TimedFault> {
    let targets = scenario.system.fault_target_names();
    let roles: Vec<&str> = scenario.system.roles().to_vec();
    let end = scenario.duration.ns();
    let mut out = Vec::new();
    let mut partition_until = 0u64;
    let mut crashed_until: Vec<u64> = Vec::new();
    let mut t = 0u64;
    if n.kinds.contains(&NemesisKind::ReadCorruption) {
        let den = rng.gen_range(20..=500);
        let ratio = Ratio::new(1, den);
        out.push(TimedFault {
            at: Dur(0),
            action: FaultAction::ReadCorruption { ratio },
            trigger: None,
        });
    }
    let active: Vec<NemesisKind> = n
        .kinds
        .iter()
        .copied()
        .filter(|k| *k != NemesisKind::ReadCorruption)
        .collect();
    if active.is_empty() || targets.is_empty() {
        return out;
    }
    loop {
        let mean = n.interval_mean.ns();
        t += rng::jittered(rng, mean, mean / 2, 1);
        // Whole microseconds keep schedules readable in reports.
        let hold = rng.gen_range(n.hold_min.ns()..=n.hold_max.ns()) / 1_000 * 1_000;
        let hold = hold.max(n.hold_min.ns());
        if t + hold >= end {
            break;
        }
        let kind = *active.choose(rng).expect("non-empty");
        let pick = |rng: &mut ChaCha8Rng| -> String {
            // A third of the time aim at a role ("@leader"), if the system has any.
            if roles.len() > 1 && rng.gen_range(0..3) == 0 {
                roles.choose(rng).expect("roles").to_string()
            } else {
                targets.choose(rng).expect("targets").clone()
            }
        };
        let action = match kind {
            NemesisKind::Crash | NemesisKind::Kill | NemesisKind::Stop => {
                crashed_until.retain(|until| *until > t);
                if crashed_until.len() as u32 >= n.max_crashed {
                    continue;
                }
                crashed_until.push(t + hold);
                down_action(kind, pick(rng), Dur(hold))
            }
            NemesisKind::Partition
            | NemesisKind::Isolate
            | NemesisKind::OneWay
            | NemesisKind::SilentPartition
            | NemesisKind::SilentIsolate => {
                if t < partition_until || targets.len() < 2 {
                    continue;
                }
                partition_until = t + hold + 1;
                let node = pick(rng);
                partition_action(kind, &targets, rng, node, Dur(hold))
            }
            NemesisKind::Clog => {
                let delay_mean = scenario.network.delay_mean.ns();
                if !matches!(scenario.system, SystemSpec::Kafka(_)) {
                    FaultAction::Clog {
                        node: pick(rng),
                        extra_delay: Dur(delay_mean * rng.gen_range(10..=200)),
                        duration: Dur(hold),
                    }
                } else {
                    let extra_delay = Dur(delay_mean * rng.gen_range(10..=200));
                    // On Kafka, half of the clogs wait, for the rest of the fault phase, for a
                    // follower catching up across a leader change (a slow replica rejoining
                    // the ISR: KAFKA-7128's moment, rare and short) and slow it from that
                    // instant.
                    if rng.gen_bool(0.5) {
                        out.push(TimedFault {
                            at: Dur(t),
                            action: FaultAction::Clog {
                                node: "@rejoining".to_string(),
                                extra_delay,
                                duration: Dur(hold),
                            },
                            trigger: Some(Trigger {
                                within: Dur(end - t),
                                delay: Dur(0),
                            }),
                        });
                        continue;
                    }
                    FaultAction::Clog {
                        node: pick(rng),
                        extra_delay,
                        duration: Dur(hold),
                    }
                }
            }
            NemesisKind::DelaySpike => FaultAction::DelaySpike {
                extra_delay: Dur(scenario.network.delay_mean.ns() * rng.gen_range(5..=50)),
                duration: Dur(hold),
            },
            NemesisKind::Reset => FaultAction::Reset { node: pick(rng) },
            NemesisKind::FsyncSpike => FaultAction::FsyncSpike {
                node: pick(rng),
                extra_latency: Dur(scenario.disk.fsync_latency_mean.ns() * rng.gen_range(10..=100)),
                duration: Dur(hold),
            },
            NemesisKind::ReadCorruption => unreachable!("drawn once at the start"),
            NemesisKind::ExpireSession => {
                let SystemSpec::Kafka(k) = &scenario.system else {
                    continue;
                };
                if t < partition_until {
                    continue;
                }
                let cut = expire_session(k, rng);
                if !cut.at_moment {
                    // A plain controller cut also stops another broker while the controller
                    // is cut off, before its session expires: that broker's controlled
                    // shutdown reaches a controller whose partition-state operations cannot
                    // complete, so the event is still in progress when the session expires
                    // (KAFKA-6082's zombie, whose writes land on the partitions the next
                    // controller's failover leaves alone). Like the cuts at a moment, it only
                    // needs the session to expire within the fault phase (it may outlast it).
                    let needs = if cut.controller {
                        cut.expires_after + cut.expires_after / 10
                    } else {
                        cut.lasts
                    };
                    if t + needs >= end {
                        continue;
                    }
                    partition_until = t + cut.lasts + 1;
                    if cut.controller {
                        let before = cut.expires_after * 4 / 5;
                        let stop_at = t + rng.gen_range(0..=before) / 1_000 * 1_000;
                        crashed_until.retain(|until| *until > stop_at);
                        if (crashed_until.len() as u32) < n.max_crashed {
                            crashed_until.push(stop_at + hold);
                            out.push(TimedFault {
                                at: Dur(stop_at),
                                action: down_action(
                                    NemesisKind::Stop,
                                    NON_CONTROLLER_ROLE.to_string(),
                                    Dur(hold),
                                ),
                                trigger: None,
                            });
                        }
                    }
                    cut.action
                } else {
                    // Aimed at a controller in the middle of a leader or ISR change: waits up
                    // to two mean intervals for one, and fires within a few round trips of
                    // it. The session must expire within the fault phase (the heal at its end
                    // lets the zombie back in); the cut may outlast it.
                    let within = 2 * n.interval_mean.ns();
                    if t + within + cut.expires_after >= end {
                        continue;
                    }
                    partition_until = t + within + cut.lasts + 1;
                    let reach = 2 * scenario.disk.fsync_latency_mean.ns()
                        + 4 * scenario.network.delay_mean.ns();
                    let delay = rng.gen_range(0..=reach) / 1_000 * 1_000;
                    out.push(TimedFault {
                        at: Dur(t),
                        action: cut.action,
                        trigger: Some(Trigger {
                            within: Dur(within),
                            delay: Dur(delay),
                        }),
                    });
                    continue;
                }
            }
            NemesisKind::FastFailover => {
                if !matches!(scenario.system, SystemSpec::Kafka(_)) {
                    continue;
                }
                // The moment needs a lagging follower during a new epoch, which only the
                // other faults make: it waits for the rest of the fault phase, and counts
                // for `max_crashed` as if it fired at once (it may exceed it by one).
                let within = end - t;
                crashed_until.retain(|until| *until > t);
                if crashed_until.len() as u32 >= n.max_crashed {
                    continue;
                }
                crashed_until.push(t + hold);
                let down = [NemesisKind::Stop, NemesisKind::Kill, NemesisKind::Crash];
                let kind = *down.choose(rng).expect("three");
                let reach = 2 * scenario.disk.fsync_latency_mean.ns()
                    + 4 * scenario.network.delay_mean.ns();
                let delay = rng.gen_range(0..=reach) / 1_000 * 1_000;
                out.push(TimedFault {
                    at: Dur(t),
                    action: down_action(kind, NEW_LEADER_ROLE.to_string(), Dur(hold)),
                    trigger: Some(Trigger {
                        within: Dur(within),
                        delay: Dur(delay),
                    }),
                });
                continue;
            }
            targeted => {
                // A targeted shape waits up to one mean interval for its protocol moment;
                // the bookkeeping assumes it fired as late as that.
                let within = n.interval_mean.ns();
                let busy_until = t + within + hold;
                let action = if targeted == NemesisKind::IsolateLeaderWithClients {
                    if t < partition_until || targets.len() < 2 {
                        continue;
                    }
                    partition_until = busy_until + 1;
                    leader_minority(scenario, rng, Dur(hold))
                } else {
                    // The targeted crashes may take down a majority together (they are meant
                    // to); they only keep the random crashes within `max_crashed`.
                    let (action, count) = targeted_crash(targeted, Dur(hold));
                    crashed_until.extend(std::iter::repeat_n(busy_until, count));
                    action
                };
                // Fire a little after the moment (up to a few fsyncs and round trips), so that
                // the messages of that moment are delivered and its writes are in flight.
                let reach = 2 * scenario.disk.fsync_latency_mean.ns()
                    + 4 * scenario.network.delay_mean.ns();
                let delay = rng.gen_range(0..=reach) / 1_000 * 1_000;
                out.push(TimedFault {
                    at: Dur(t),
                    action,
                    trigger: Some(Trigger {
                        within: Dur(within),
                        delay: Dur(delay),
                    }),
                });
                continue;
            }
        };
        out.push(TimedFault {
            at: Dur(t),
            action,
            trigger: None,
        });
    }
    out
}

/// A process taken down for `hold`: power loss, kill, or a graceful stop with the default
/// grace period (a node that does not halt itself stays down longer: up to the grace
/// period plus `hold`).
fn down_action(kind: NemesisKind, node: String, hold: Dur) -> FaultAction<String> {
    let restart_after = Some(hold);
    match kind {
        NemesisKind::Kill => FaultAction::Kill {
            node,
            restart_after,
        },
        NemesisKind::Stop => FaultAction::Stop {
            node,
            restart_after,
            grace: None,
        },
        _ => FaultAction::Crash {
            node,
            restart_after,
        },
    }
}

/// A broker cut from the ensemble until its session expires.
struct SessionCut {
    action: FaultAction<String>,
    /// How long the cut lasts.
    lasts: u64,
    /// When, from the cut, the session has expired (the cut outlasts it).
    expires_after: u64,
    /// Whether it waits for "@controller-electing" (a controller in the middle of a leader
    /// or ISR change) instead of firing at its time.
    at_moment: bool,
    /// Whether it cuts the controller (rather than a partition's leader).
    controller: bool,
}

/// A broker cut from the ensemble until its session expires: the controller (half of those
/// at the moment it is changing a partition's leader or ISR), or the leader of a partition.
/// A loud cut closes its connections at once, so the session expires one session timeout
/// later; behind a one-way cut the client first waits out its read timeout (2/3 of the
/// session timeout) before it drops the connection. The cut outlasts the expiry by up to
/// half a session timeout (the server notices on its tick, the client on reconnecting).
fn expire_session(k: &KafkaSpec, rng: &mut ChaCha8Rng) -> SessionCut {
    let session = k.server_properties.zookeeper_session_timeout_ms * 1_000_000;
    let mut at_moment = false;
    let controller = rng.gen_bool(0.5) || k.topics.is_empty();
    let node = if controller {
        at_moment = rng.gen_bool(0.5);
        if at_moment {
            "@controller-electing"
        } else {
            "@controller"
        }
        .to_string()
    } else {
        let topic = k.topics.choose(rng).expect("topics");
        let p = rng.gen_range(0..topic.partitions.max(1));
        format!("{PARTITION_LEADER_ROLE}{}-{p}", topic.name)
    };
    let zk: Vec<String> = (0..k.zookeeper.servers).map(|i| format!("zk{i}")).collect();
    let over = rng.gen_range(session / 10..=session / 2);
    if rng.gen_bool(0.5) {
        let lasts = (session * 5 / 3 + over) / 1_000 * 1_000;
        let action = FaultAction::OneWay {
            from: zk,
            to: vec![node],
            heal_after: Some(Dur(lasts)),
        };
        SessionCut {
            action,
            lasts,
            expires_after: session * 5 / 3,
            at_moment,
            controller,
        }
    } else {
        let lasts = (session + over) / 1_000 * 1_000;
        let action = FaultAction::Partition {
            groups: vec![vec![node], zk],
            heal_after: Some(Dur(lasts)),
            silent: false,
        };
        SessionCut {
            action,
            lasts,
            expires_after: session,
            at_moment,
            controller,
        }
    }
}

/// The crash shapes aimed at protocol moments, and how many servers each takes down.
fn targeted_crash(kind: NemesisKind, hold: Dur) -> (FaultAction<String>, usize) {
    let restart_after = Some(hold);
    let set = |second: &str| FaultAction::CrashSet {
        nodes: vec!["@leader".to_string(), second.to_string()],
        restart_after,
    };
    match kind {
        NemesisKind::CrashSyncing => (
            FaultAction::Crash {
                node: "@syncing".to_string(),
                restart_after,
            },
            1,
        ),
        NemesisKind::CrashLeaderAndSyncing => (set("@syncing"), 2),
        _ => (set("@unflushed"), 2),
    }
}

/// The leader with the largest minority of followers and a random non-empty subset of the
/// clients on its side (on a 3-server ensemble, the leader alone with its clients).
fn leader_minority(scenario: &Scenario, rng: &mut ChaCha8Rng, hold: Dur) -> FaultAction<String> {
    let servers = scenario.system.fault_target_names();
    let mut nodes = vec!["@leader".to_string()];
    let minority = servers.len().saturating_sub(1) / 2;
    nodes.extend(std::iter::repeat_n(
        "@follower".to_string(),
        minority.saturating_sub(1),
    ));
    let clients: Vec<String> = scenario
        .system
        .node_names()
        .into_iter()
        .filter(|n| !servers.contains(n))
        .collect();
    let mut side: Vec<String> = clients
        .iter()
        .filter(|_| Ratio::new(1, 2).chance(rng))
        .cloned()
        .collect();
    if side.is_empty() && !clients.is_empty() {
        side.push(clients.choose(rng).expect("clients").clone());
    }
    nodes.extend(side);
    FaultAction::IsolateGroup {
        nodes,
        heal_after: Some(hold),
        silent: false,
    }
}

fn partition_action(
    kind: NemesisKind,
    targets: &[String],
    rng: &mut ChaCha8Rng,
    node: String,
    hold: Dur,
) -> FaultAction<String> {
    let silent = matches!(
        kind,
        NemesisKind::SilentPartition | NemesisKind::SilentIsolate
    );
    if matches!(kind, NemesisKind::Isolate | NemesisKind::SilentIsolate) {
        return FaultAction::Isolate {
            node,
            heal_after: Some(hold),
            silent,
        };
    }
    let mut shuffled = targets.to_vec();
    shuffled.shuffle(rng);
    let cut = rng.gen_range(1..shuffled.len());
    let (a, b) = shuffled.split_at(cut);
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    if kind == NemesisKind::OneWay {
        FaultAction::OneWay {
            from: a,
            to: b,
            heal_after: Some(hold),
        }
    } else {
        FaultAction::Partition {
            groups: vec![a, b],
            heal_after: Some(hold),
            silent,
        }
    }
}
