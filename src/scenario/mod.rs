//! The scenario: one JSON file describing a simulated system, its network and disks, the
//! faults to inject (an explicit schedule and/or a random nemesis), how long the fault phase
//! lasts, the bound on recovery in the healed phase, and the expected outcome.
//!
//! Parsing rejects unknown fields and names the JSON path of any problem; `validate` adds
//! the semantic checks (ranges, node names, times). The schema is documented in README.md.
//!
//! Depends on: sim (option and fault types), example (counter options).

pub mod explicit;
pub mod kafka;
pub mod schedule;
pub mod validate;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::example::counter::CounterBug;
use crate::sim::disk::DiskOptions;
use crate::sim::fault::FaultAction;
use crate::sim::net::NetOptions;
use crate::sim::rng::Ratio;
use crate::sim::time::Dur;
use crate::zab::config::ZabConfig;

pub use kafka::{ConsumerSpec, KafkaSpec, KafkaZk, ProducerSpec};
pub use schedule::{NemesisKind, NemesisOptions, Schedule, TimedFault, Trigger};

/// The version of the scenario format this build reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Format version; must be 1.
    pub version: u32,
    /// Short name, used in report file names.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The simulated system.
    pub system: SystemSpec,
    /// Seed used when the command line gives none.
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub network: NetOptions,
    #[serde(default)]
    pub disk: DiskOptions,
    /// Explicit faults, at fixed times from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<TimedFault>,
    /// The random nemesis, drawn from the seed's "faults" stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<NemesisOptions>,
    /// Length of the fault phase; the healed phase starts right after.
    pub duration: Dur,
    /// After the heal, the system must be done (its liveness goal met) within this bound.
    #[serde(default = "default_liveness_bound")]
    pub liveness_bound: Dur,
    /// Most events one run may deliver before it is stopped as a runaway.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// What a run of this scenario should find.
    #[serde(default)]
    pub expect: Expectation,
    /// Invariants this scenario does not check: their violations are neither reported nor
    /// stop the run. For a scenario that shows a bug's later symptom, past the check that
    /// catches it first (ZOOKEEPER-1419: the vote-order check fires at the first wrong
    /// switch, the election that never settles shows only later, through liveness).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
}

fn default_liveness_bound() -> Dur {
    Dur::from_s(30)
}

fn default_max_events() -> u64 {
    50_000_000
}

/// The expected outcome of every seed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expectation {
    /// No invariant is violated.
    #[default]
    Pass,
    /// The named invariant is violated (for bug-mode and beyond-the-model scenarios). Not
    /// every seed needs to hit it; tests state which seeds do.
    Violation { invariant: String },
}

/// The simulated system, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SystemSpec {
    /// The example replicated counter.
    Counter(CounterSpec),
    /// A ZooKeeper ensemble (ZAB) with workload clients.
    Zookeeper(ZookeeperSpec),
    /// ZooKeeper-mode Kafka: an ensemble, brokers, producers and consumers.
    Kafka(KafkaSpec),
}

/// A ZooKeeper ensemble: servers `zk0..`, workload clients `c0..` (node ids after the
/// servers). Server settings use zoo.cfg names (integer milliseconds and ticks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZookeeperSpec {
    /// Voting servers, 1 to 7.
    pub servers: u32,
    /// Workload clients, 0 to 64.
    #[serde(default = "default_zk_clients")]
    pub clients: u32,
    /// zoo.cfg settings shared by every server (tickTime, initLimit, syncLimit, bugModes..).
    #[serde(default)]
    pub zoo_cfg: ZabConfig,
    #[serde(default)]
    pub workload: ZkWorkload,
}

fn default_zk_clients() -> u32 {
    3
}

/// The workload every client runs: one operation at a time, at a mean rate, over a small
/// key set so that operations contend. Weights are relative integers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZkWorkload {
    /// Mean operations per simulated second, per client.
    pub ops_per_s: u32,
    /// Keys /k0 .. /k{keys-1} (and /e0.. for ephemerals).
    pub keys: u32,
    /// When clients start issuing operations.
    pub start_after: Dur,
    /// Requested session timeout, in ms (the servers clamp it to [2, 20] ticks).
    pub session_timeout_ms: u64,
    /// An operation without an answer after this long completes as unknown (info).
    pub request_timeout: Dur,
    /// Only clients c0 .. c{writers-1} issue writes; the others only read (get, sync+get).
    /// None: every client writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writers: Option<u32>,
    pub create: u32,
    pub set_cas: u32,
    pub delete: u32,
    pub get: u32,
    pub sync_get: u32,
    pub ephemeral: u32,
    /// Sequential creates `/s-NNNNNNNNNN` under the root (half of them ephemeral).
    #[serde(skip_serializing_if = "is_zero")]
    pub sequential: u32,
    /// Multis over two keys: two setData, or a check and a create.
    #[serde(skip_serializing_if = "is_zero")]
    pub multi: u32,
    /// getChildren of the root (every key, ephemeral and sequential znode is its child).
    #[serde(skip_serializing_if = "is_zero")]
    pub get_children: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ZkWorkload {
    /// The operation weights in the order the workload draws them: create, set_cas, delete,
    /// get, sync_get, ephemeral, sequential, multi, get_children.
    pub fn weights(&self) -> [u32; 9] {
        [
            self.create,
            self.set_cas,
            self.delete,
            self.get,
            self.sync_get,
            self.ephemeral,
            self.sequential,
            self.multi,
            self.get_children,
        ]
    }

    /// Does the workload write at all?
    pub fn writes(&self) -> bool {
        self.create + self.set_cas + self.delete + self.ephemeral + self.sequential + self.multi > 0
    }
}

impl Default for ZkWorkload {
    fn default() -> Self {
        ZkWorkload {
            ops_per_s: 10,
            keys: 4,
            start_after: Dur::from_ms(500),
            session_timeout_ms: 1000,
            request_timeout: Dur::from_s(2),
            writers: None,
            create: 2,
            set_cas: 4,
            delete: 1,
            get: 3,
            sync_get: 2,
            ephemeral: 1,
            sequential: 0,
            multi: 0,
            get_children: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterSpec {
    /// Number of nodes, 1 to 64.
    pub nodes: u32,
    /// Mean time between a node's increments.
    #[serde(default = "default_increment_interval")]
    pub increment_interval: Dur,
    /// Time between full gossip rounds.
    #[serde(default = "default_gossip_interval")]
    pub gossip_interval: Dur,
    /// Wait before reconnecting a broken connection.
    #[serde(default = "default_reconnect_backoff")]
    pub reconnect_backoff: Dur,
    /// Deliberate bugs switched on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bug_modes: Vec<CounterBug>,
}

fn default_increment_interval() -> Dur {
    Dur::from_ms(20)
}
fn default_gossip_interval() -> Dur {
    Dur::from_ms(100)
}
fn default_reconnect_backoff() -> Dur {
    Dur::from_ms(50)
}

impl SystemSpec {
    /// Names of every node, indexed by node id.
    pub fn node_names(&self) -> Vec<String> {
        match self {
            SystemSpec::Counter(c) => (0..c.nodes).map(|i| format!("n{i}")).collect(),
            SystemSpec::Zookeeper(z) => (0..z.servers)
                .map(|i| format!("zk{i}"))
                .chain((0..z.clients).map(|i| format!("c{i}")))
                .collect(),
            SystemSpec::Kafka(k) => k.node_names(),
        }
    }

    /// Names of the nodes faults may target (servers, not clients).
    pub fn fault_target_names(&self) -> Vec<String> {
        match self {
            SystemSpec::Counter(_) => self.node_names(),
            SystemSpec::Zookeeper(z) => (0..z.servers).map(|i| format!("zk{i}")).collect(),
            SystemSpec::Kafka(k) => k.fault_target_names(),
        }
    }

    /// Roles a fault may name instead of a node ("@leader"), resolved when the fault fires.
    pub fn roles(&self) -> &'static [&'static str] {
        match self {
            SystemSpec::Counter(_) => &["@any"],
            SystemSpec::Zookeeper(_) => &["@any", "@leader", "@follower"],
            SystemSpec::Kafka(_) => kafka::ROLES,
        }
    }

    /// The system kind, as scenarios spell it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            SystemSpec::Counter(_) => "counter",
            SystemSpec::Zookeeper(_) => "zookeeper",
            SystemSpec::Kafka(_) => "kafka",
        }
    }

    /// Every bug mode this system knows, by the name scenarios use ("ZOOKEEPER-1675").
    pub fn bug_mode_names(&self) -> Vec<String> {
        match self {
            SystemSpec::Counter(_) => [CounterBug::GossipBeforeFsync, CounterBug::MergeOverwrites]
                .iter()
                .filter_map(|b| serde_json::to_value(b).ok()?.as_str().map(str::to_string))
                .collect(),
            SystemSpec::Zookeeper(_) => crate::zab::config::BugMode::ALL
                .iter()
                .map(|m| m.jira().to_string())
                .collect(),
            SystemSpec::Kafka(_) => KafkaSpec::bug_mode_names(),
        }
    }

    /// Whether any bug mode is switched on.
    pub fn bug_modes_on(&self) -> bool {
        match self {
            SystemSpec::Counter(c) => !c.bug_modes.is_empty(),
            SystemSpec::Zookeeper(z) => !z.zoo_cfg.bug_modes.is_empty(),
            SystemSpec::Kafka(k) => {
                !k.server_properties.bug_modes.is_empty()
                    || !k.zookeeper.zoo_cfg.bug_modes.is_empty()
            }
        }
    }

    /// A copy with exactly the named bug mode switched on; None if the system has no such
    /// mode.
    pub fn with_only_bug_mode(&self, name: &str) -> Option<SystemSpec> {
        let quoted = serde_json::Value::String(name.to_string());
        let mut copy = self.clone();
        match &mut copy {
            SystemSpec::Counter(c) => c.bug_modes = vec![serde_json::from_value(quoted).ok()?],
            SystemSpec::Zookeeper(z) => {
                z.zoo_cfg.bug_modes = vec![serde_json::from_value(quoted).ok()?]
            }
            SystemSpec::Kafka(k) => {
                k.server_properties.bug_modes = vec![serde_json::from_value(quoted).ok()?]
            }
        }
        Some(copy)
    }

    /// Roles that name a protocol moment ("@syncing": a learner between NEWLEADER and
    /// UPTODATE; "@unflushed": a server with log writes not yet fsynced; the Kafka ones are
    /// in `cluster::kafka::moments`). Only faults that
    /// name them use them, so the nemesis's role draw over [`SystemSpec::roles`] is unchanged.
    pub fn moment_roles(&self) -> &'static [&'static str] {
        match self {
            SystemSpec::Counter(_) => &[],
            SystemSpec::Zookeeper(_) => &["@syncing", "@unflushed"],
            SystemSpec::Kafka(_) => kafka::MOMENT_ROLES,
        }
    }

    /// Whether `role` is a role of this system: a static one, a moment, or one naming a
    /// part of the system ("@partition-leader:orders-0" of an existing partition).
    pub fn knows_role(&self, role: &str) -> bool {
        self.roles().contains(&role)
            || self.moment_roles().contains(&role)
            || matches!(self, SystemSpec::Kafka(k) if k.partition_of_role(role).is_some())
    }

    /// Names of the invariants and checkers a run of this system can report.
    pub fn invariant_names(&self) -> Vec<&'static str> {
        let mut names = vec!["liveness", "panic", "event-budget"];
        match self {
            SystemSpec::Counter(_) => names.extend(["counter-durable", "counter-monotonic"]),
            SystemSpec::Zookeeper(_) => names.extend(crate::zab::invariant_names()),
            SystemSpec::Kafka(_) => {
                names.extend(crate::zab::invariant_names());
                names.extend(kafka::INVARIANTS);
            }
        }
        names
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SystemSpec::Counter(_) => "counter",
            SystemSpec::Zookeeper(_) => "zookeeper",
            SystemSpec::Kafka(_) => "kafka",
        }
    }
}

/// A problem with an input file, naming the file, the JSON path and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: at {}: {}", self.file, self.path, self.message)
        }
    }
}

impl std::error::Error for InputError {}

/// Parses JSON into `T`, naming the JSON path of the first problem.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str, file: &str) -> Result<T, InputError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        InputError {
            file: file.to_string(),
            path,
            message: format!("{inner}"),
        }
    })
}

/// Serde reads an internally tagged enum through a buffer, which loses the path inside it:
/// an error in `system` would only say "at system". Re-read the system's fields as the
/// variant its `kind` names, to report the path inside ("system.zoo_cfg.tickTime").
fn refine_system_error(error: InputError, text: &str) -> InputError {
    if error.path != "system" {
        return error;
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return error;
    };
    let Some(mut fields) = value.get("system").and_then(|s| s.as_object()).cloned() else {
        return error;
    };
    let kind = fields.remove("kind");
    let inner = serde_json::Value::Object(fields).to_string();
    let result = match kind.as_ref().and_then(|k| k.as_str()) {
        Some("counter") => parse_json::<CounterSpec>(&inner, &error.file).err(),
        Some("zookeeper") => parse_json::<ZookeeperSpec>(&inner, &error.file).err(),
        Some("kafka") => parse_json::<KafkaSpec>(&inner, &error.file).err(),
        _ => None,
    };
    match result {
        Some(inner) if !inner.path.is_empty() && inner.path != "." => InputError {
            path: format!("system.{}", inner.path),
            message: inner
                .message
                .split(" at line ")
                .next()
                .unwrap_or("")
                .to_string(),
            ..error
        },
        _ => error,
    }
}

/// Reads an input file; returns its display name and its text.
pub fn read_input(path: &Path) -> Result<(String, String), InputError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InputError {
        file: file.clone(),
        path: String::new(),
        message: format!("cannot read: {e}"),
    })?;
    Ok((file, text))
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, InputError> {
        let (file, text) = read_input(path)?;
        Scenario::from_json(&text, &file)
    }

    pub fn from_json(text: &str, file: &str) -> Result<Scenario, InputError> {
        let scenario: Scenario =
            parse_json(text, file).map_err(|e| refine_system_error(e, text))?;
        validate::validate(&scenario).map_err(|(path, message)| InputError {
            file: file.to_string(),
            path,
            message,
        })?;
        Ok(scenario)
    }

    /// The canonical JSON of the scenario (stable field order), as stored in reports.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("scenario serialises")
    }

    /// A 64-bit hash of the canonical JSON: two runs with the same seed and config hash are
    /// the same run.
    pub fn config_hash(&self) -> u64 {
        crate::sim::trace::hash_of(self.canonical_json().as_bytes())
    }

    /// Read corruption starts at time zero when the disk options ask for it.
    pub fn initial_read_corruption(&self) -> Ratio {
        self.disk.read_corruption
    }
}

/// Helper for explicit faults in tests and generated schedules.
pub fn fault(at: Dur, action: FaultAction<String>) -> TimedFault {
    TimedFault {
        at,
        action,
        trigger: None,
    }
}
