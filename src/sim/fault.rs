//! Fault actions: what a schedule or the nemesis can do to the world at an instant.
//!
//! Actions name nodes with a generic reference so that a scenario can write names ("zk1")
//! or roles ("@leader") and the cluster resolves them to ids when the action fires.
//!
//! Depends on: time.

use serde::{Deserialize, Serialize};

use crate::sim::rng::Ratio;
use crate::sim::time::Dur;

/// How long a stopped node may take to shut down before it is killed, unless the action
/// says otherwise (systemd's default stop timeout is 90 s; orchestrators often use 30 s).
pub const DEFAULT_STOP_GRACE: Dur = Dur(30_000_000_000);

fn is_false(b: &bool) -> bool {
    !*b
}

/// One fault action. `R` is how nodes are named: a string in scenario files, a `NodeId` once
/// resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction<R> {
    /// Power loss: volatile state, connections and unsynced writes are lost.
    Crash {
        node: R,
        /// Restart the same node this long after the crash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after: Option<Dur>,
    },
    /// The process is killed (SIGKILL, the OOM killer) while the machine stays up: volatile
    /// state and connections are lost, the page cache survives (every write stays readable
    /// and still reaches the disk unless a later power loss comes first).
    Kill {
        node: R,
        /// Restart the same node this long after the kill.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after: Option<Dur>,
    },
    /// Graceful shutdown (SIGTERM): the node gets `Event::Stop`, does its shutdown work and
    /// halts itself; if it is still up after `grace` (default [`DEFAULT_STOP_GRACE`]), it is
    /// killed. `restart_after` counts from the moment the process is gone.
    Stop {
        node: R,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after: Option<Dur>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace: Option<Dur>,
    },
    /// Restart a crashed, killed or halted node from its disk (no effect if it is up).
    Restart { node: R },
    /// Split the listed nodes into groups that cannot talk to each other. Nodes not listed
    /// (clients, say) keep talking to everyone. Loud by default (crossing connections are
    /// reset); `silent` drops the traffic instead, and no one is told (see `net`).
    Partition {
        groups: Vec<Vec<R>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heal_after: Option<Dur>,
        #[serde(default, skip_serializing_if = "is_false")]
        silent: bool,
    },
    /// Power loss of several nodes at the same instant (a leader and a follower together,
    /// say); roles among `nodes` resolve to distinct nodes where they can.
    CrashSet {
        nodes: Vec<R>,
        /// Restart each of them this long after the crash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after: Option<Dur>,
    },
    /// Cut one node off from every other fault target (loudly, or `silent`ly).
    Isolate {
        node: R,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heal_after: Option<Dur>,
        #[serde(default, skip_serializing_if = "is_false")]
        silent: bool,
    },
    /// Cut `nodes` (servers, roles and clients) off from every other node of the world,
    /// clients included: a minority that keeps its own clients. Roles resolve to distinct
    /// nodes where they can. Loud, or `silent`.
    IsolateGroup {
        nodes: Vec<R>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heal_after: Option<Dur>,
        #[serde(default, skip_serializing_if = "is_false")]
        silent: bool,
    },
    /// Hold every message from `from` to `to` (one-way partition; always silent).
    OneWay {
        from: Vec<R>,
        to: Vec<R>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heal_after: Option<Dur>,
    },
    /// Remove every partition and release held messages.
    Heal,
    /// Add `extra_delay` to every message from or to `node` for `duration`.
    Clog {
        node: R,
        extra_delay: Dur,
        duration: Dur,
    },
    /// Add `extra_delay` to every message for `duration`.
    DelaySpike { extra_delay: Dur, duration: Dur },
    /// Break every connection of `node` (both ends are told).
    Reset { node: R },
    /// Add `extra_latency` to every fsync of `node` for `duration`.
    FsyncSpike {
        node: R,
        extra_latency: Dur,
        duration: Dur,
    },
    /// Corrupt reads with this probability from now on (until the healed phase).
    ReadCorruption { ratio: Ratio },
}

impl<R> FaultAction<R> {
    /// Converts the node references, failing on the first that does not resolve.
    pub fn try_map<S, E>(
        &self,
        mut f: impl FnMut(&R) -> Result<S, E>,
    ) -> Result<FaultAction<S>, E> {
        let mut all = |v: &Vec<R>| v.iter().map(&mut f).collect::<Result<Vec<S>, E>>();
        Ok(match self {
            FaultAction::Crash {
                node,
                restart_after,
            } => FaultAction::Crash {
                node: f(node)?,
                restart_after: *restart_after,
            },
            FaultAction::CrashSet {
                nodes,
                restart_after,
            } => FaultAction::CrashSet {
                nodes: all(nodes)?,
                restart_after: *restart_after,
            },
            FaultAction::Kill {
                node,
                restart_after,
            } => FaultAction::Kill {
                node: f(node)?,
                restart_after: *restart_after,
            },
            FaultAction::Stop {
                node,
                restart_after,
                grace,
            } => FaultAction::Stop {
                node: f(node)?,
                restart_after: *restart_after,
                grace: *grace,
            },
            FaultAction::Restart { node } => FaultAction::Restart { node: f(node)? },
            FaultAction::Partition {
                groups,
                heal_after,
                silent,
            } => FaultAction::Partition {
                groups: groups.iter().map(&mut all).collect::<Result<_, E>>()?,
                heal_after: *heal_after,
                silent: *silent,
            },
            FaultAction::Isolate {
                node,
                heal_after,
                silent,
            } => FaultAction::Isolate {
                node: f(node)?,
                heal_after: *heal_after,
                silent: *silent,
            },
            FaultAction::IsolateGroup {
                nodes,
                heal_after,
                silent,
            } => FaultAction::IsolateGroup {
                nodes: all(nodes)?,
                heal_after: *heal_after,
                silent: *silent,
            },
            FaultAction::OneWay {
                from,
                to,
                heal_after,
            } => FaultAction::OneWay {
                from: all(from)?,
                to: all(to)?,
                heal_after: *heal_after,
            },
            FaultAction::Heal => FaultAction::Heal,
            FaultAction::Clog {
                node,
                extra_delay,
                duration,
            } => FaultAction::Clog {
                node: f(node)?,
                extra_delay: *extra_delay,
                duration: *duration,
            },
            FaultAction::DelaySpike {
                extra_delay,
                duration,
            } => FaultAction::DelaySpike {
                extra_delay: *extra_delay,
                duration: *duration,
            },
            FaultAction::Reset { node } => FaultAction::Reset { node: f(node)? },
            FaultAction::FsyncSpike {
                node,
                extra_latency,
                duration,
            } => FaultAction::FsyncSpike {
                node: f(node)?,
                extra_latency: *extra_latency,
                duration: *duration,
            },
            FaultAction::ReadCorruption { ratio } => FaultAction::ReadCorruption { ratio: *ratio },
        })
    }

    /// Every node reference in the action, in order.
    pub fn node_refs(&self) -> Vec<&R> {
        match self {
            FaultAction::Crash { node, .. }
            | FaultAction::Kill { node, .. }
            | FaultAction::Stop { node, .. }
            | FaultAction::Restart { node }
            | FaultAction::Isolate { node, .. }
            | FaultAction::Clog { node, .. }
            | FaultAction::Reset { node }
            | FaultAction::FsyncSpike { node, .. } => vec![node],
            FaultAction::Partition { groups, .. } => groups.iter().flatten().collect(),
            FaultAction::CrashSet { nodes, .. } | FaultAction::IsolateGroup { nodes, .. } => {
                nodes.iter().collect()
            }
            FaultAction::OneWay { from, to, .. } => from.iter().chain(to.iter()).collect(),
            FaultAction::Heal
            | FaultAction::DelaySpike { .. }
            | FaultAction::ReadCorruption { .. } => vec![],
        }
    }

    /// The snake_case name of the action kind, as in scenario files.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultAction::Crash { .. } => "crash",
            FaultAction::CrashSet { .. } => "crash_set",
            FaultAction::Kill { .. } => "kill",
            FaultAction::Stop { .. } => "stop",
            FaultAction::Restart { .. } => "restart",
            FaultAction::Partition { .. } => "partition",
            FaultAction::Isolate { .. } => "isolate",
            FaultAction::IsolateGroup { .. } => "isolate_group",
            FaultAction::OneWay { .. } => "one_way",
            FaultAction::Heal => "heal",
            FaultAction::Clog { .. } => "clog",
            FaultAction::DelaySpike { .. } => "delay_spike",
            FaultAction::Reset { .. } => "reset",
            FaultAction::FsyncSpike { .. } => "fsync_spike",
            FaultAction::ReadCorruption { .. } => "read_corruption",
        }
    }
}
