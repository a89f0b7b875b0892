//! The ZooKeeper system: servers `zk0..` (ZAB, `zab::ZabServer`) and workload clients `c0..`
//! (the embeddable `zab::client::ZkClient` driven by a small generator), in one world.
//!
//! This module holds the wiring: the node enum, the node ids, roles and fault targets, and
//! the [`System`] impl that ties the parts together. The parts, each reusable by another
//! world that holds a ZooKeeper ensemble (Kafka's), live beside it:
//! - `workload`: the workload client (generator over an embedded client);
//! - `monitor`: the ZAB online invariants after every server event (reference A.11);
//! - `history`: records -> `check::History`, and the end-of-run history checks;
//! - `checks`: those checks run over a world's client histories (brokers' too);
//! - `liveness`: the healed phase's goals for the ensemble and for clients.
//!
//! Depends on: zab, node, sim, scenario, check, cluster.

pub mod checks;
pub mod durable;
pub mod history;
pub mod liveness;
pub mod memory;
pub mod monitor;
pub mod order;
pub mod workload;
pub mod zxmap;

use std::rc::Rc;

use super::capture::{ClientOp, Role, Witness};
use super::liveness::ClientGoals;
use super::record::Tally;
use super::{KnownBehaviour, System, Violation};
use crate::node::{Context, Event, Node, NodeId};
use crate::scenario::{ZkWorkload, ZookeeperSpec};
use crate::sim::Sim;
use crate::zab::config::ZabConfig;
use crate::zab::msg::{Msg, PeerState};
use crate::zab::ZabServer;

pub use history::to_check_history;
pub use workload::WorkloadClient;

use history::Record;
use monitor::Monitor;

/// A node type of a world that holds ZooKeeper servers: lets the monitor and the liveness
/// goals find the servers without knowing the rest of the world.
pub trait ZabHost: Node {
    /// The ZAB server, when this node is one.
    fn zab_server(&self) -> Option<&ZabServer>;
}

/// The server at `id`, when it is up and is one.
pub fn server<N: ZabHost>(sim: &Sim<N>, id: NodeId) -> Option<&ZabServer>
where
    N::Msg: std::hash::Hash + std::fmt::Debug,
{
    sim.node(id).and_then(N::zab_server)
}

/// A node of the ZooKeeper world.
pub enum ZkNode {
    Server(Box<ZabServer>),
    Client(Box<WorkloadClient>),
}

impl Node for ZkNode {
    type Msg = Msg;
    fn on_event(&mut self, ctx: &mut Context<'_, Msg>, event: Event<Msg>) {
        match self {
            ZkNode::Server(s) => s.on_event(ctx, event),
            ZkNode::Client(c) => c.on_event(ctx, event),
        }
    }
}

impl ZabHost for ZkNode {
    fn zab_server(&self) -> Option<&ZabServer> {
        self.server()
    }
}

impl ZkNode {
    pub fn server(&self) -> Option<&ZabServer> {
        match self {
            ZkNode::Server(s) => Some(s),
            ZkNode::Client(_) => None,
        }
    }
    pub fn client(&self) -> Option<&WorkloadClient> {
        match self {
            ZkNode::Client(c) => Some(c),
            ZkNode::Server(_) => None,
        }
    }
}

pub struct ZkSystem {
    spec: ZookeeperSpec,
    cfg: ZabConfig,
    workload: Rc<ZkWorkload>,
    mon: Monitor,
    /// Operations completed ok / fail / info, counted at the end of the run.
    outcomes: Tally,
    /// Clients that met their liveness goal since the heal.
    goals: ClientGoals,
    /// Per client, the incremental scan of its history for that goal.
    served: Vec<liveness::ServedScan>,
    /// The servers' roles over the healed phase: did the election settle.
    election: liveness::ElectionWatch,
    /// Was the goal met but for servers ZooKeeper's start-up check refused.
    refusals: liveness::RefusalWatch,
    /// The history checker ran out of budget (never counted as a pass in the summary).
    history_unknown: bool,
    /// The witness of a failed history check, for the report.
    witness: Option<Witness>,
    /// The server ids, shared rather than collected per call.
    servers: Rc<[NodeId]>,
}

impl ZkSystem {
    pub fn new(spec: &ZookeeperSpec) -> Self {
        ZkSystem {
            cfg: spec.zoo_cfg.clone(),
            workload: Rc::new(spec.workload.clone()),
            mon: Monitor::new(spec.servers as usize),
            spec: spec.clone(),
            outcomes: Tally::default(),
            goals: ClientGoals::new(spec.clients as usize),
            served: vec![liveness::ServedScan::default(); spec.clients as usize],
            election: liveness::ElectionWatch::default(),
            refusals: liveness::RefusalWatch::default(),
            history_unknown: false,
            witness: None,
            servers: (0..spec.servers).map(NodeId).collect(),
        }
    }

    fn server_ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.spec.servers).map(NodeId)
    }

    fn client_ids(&self) -> impl Iterator<Item = NodeId> {
        let s = self.spec.servers;
        (s..s + self.spec.clients).map(NodeId)
    }

    /// The first client not served since the heal, if any.
    fn clients_unmet(&mut self, sim: &Sim<ZkNode>) -> Option<NodeId> {
        let mut goals = std::mem::take(&mut self.goals);
        let mut served = std::mem::take(&mut self.served);
        let unmet = goals.first_unmet(|index, heal_ns| {
            self.client_served(&mut served[index], sim, index, heal_ns)
        });
        self.goals = goals;
        self.served = served;
        Some(NodeId(self.spec.servers + unmet? as u32))
    }

    /// What the healed phase still lacks, as data (the sentence is built only when the
    /// liveness deadline needs it): the ensemble's lack first, then an unserved client.
    /// Watches the start-up refusals on the way, as every call of `pending` must.
    fn lack(&mut self, sim: &Sim<ZkNode>) -> Option<Result<liveness::Lack, NodeId>> {
        self.goals.heal_ns()?;
        let servers = Rc::clone(&self.servers);
        if let Some(lack) = liveness::ensemble_lack(sim, &servers) {
            let mut refusals = std::mem::take(&mut self.refusals);
            // Only whether some client is unserved matters here: no sentence is built.
            refusals.observe(sim, &servers, || {
                self.clients_unmet(sim).map(|_| String::new())
            });
            self.refusals = refusals;
            return Some(Ok(lack));
        }
        self.clients_unmet(sim).map(Err)
    }

    /// The healed phase's goal of client `index`: an answer since the heal, and a write
    /// answered when the workload writes and this client is a writer.
    fn client_served(
        &self,
        scan: &mut liveness::ServedScan,
        sim: &Sim<ZkNode>,
        index: usize,
        heal_ns: u64,
    ) -> bool {
        let id = NodeId(self.spec.servers + index as u32);
        let Some(c) = sim.node(id).and_then(ZkNode::client) else {
            return true;
        };
        let w = &self.workload;
        let writes = w.writes();
        let writer = w.writers.is_none_or(|n| (index as u32) < n);
        scan.served(sim.incarnation(id), c.history(), heal_ns, writes && writer)
    }
}

impl System for ZkSystem {
    type Node = ZkNode;
    type Msg = Msg;

    fn names(&self) -> Vec<String> {
        crate::scenario::SystemSpec::Zookeeper(self.spec.clone()).node_names()
    }

    fn factory(&self) -> Box<dyn FnMut(NodeId) -> ZkNode> {
        let servers = self.spec.servers;
        let voters: Vec<NodeId> = self.server_ids().collect();
        let cfg = self.cfg.clone();
        let workload = Rc::clone(&self.workload);
        // The client's own clock: heartbeats, timeouts and reconnect backoff every 100 ms.
        let tick_ns = 100_000_000;
        Box::new(move |id| {
            if id.0 < servers {
                ZkNode::Server(Box::new(ZabServer::new(id, &voters, cfg.clone())))
            } else {
                let index = id.0 - servers;
                let w = Rc::clone(&workload);
                ZkNode::Client(Box::new(WorkloadClient::new(index, servers, w, tick_ns)))
            }
        })
    }

    fn resolve_role(&self, role: &str, sim: &Sim<ZkNode>) -> Vec<NodeId> {
        self.server_ids()
            .filter(|id| {
                let Some(s) = server(sim, *id) else {
                    return false;
                };
                let v = s.view();
                match role {
                    "@leader" => v.established_epoch.is_some(),
                    "@follower" => v.state == PeerState::Following,
                    "@syncing" => s.mid_sync(),
                    "@unflushed" => s.log_unflushed(),
                    _ => false,
                }
            })
            .collect()
    }

    fn fault_targets(&self) -> Vec<NodeId> {
        self.server_ids().collect()
    }

    fn after_event(&mut self, sim: &Sim<ZkNode>, node: NodeId) -> Vec<Violation> {
        if node.0 >= self.spec.servers {
            return Vec::new();
        }
        if self.goals.heal_ns().is_some() {
            self.election.observe(sim, node);
        }
        self.mon.check(sim, node)
    }

    fn begin_liveness(&mut self, sim: &Sim<ZkNode>) {
        self.goals.begin(sim.now());
        let servers: Vec<NodeId> = self.server_ids().collect();
        self.election.begin(sim, &servers);
        self.refusals.begin();
    }

    fn pending(&mut self, sim: &Sim<ZkNode>) -> Option<String> {
        Some(match self.lack(sim)? {
            Ok(lack) => self.election.explain(sim, lack.describe(sim)),
            Err(client) => format!("{} has no op answered since the heal", sim.name(client)),
        })
    }

    fn still_pending(&mut self, sim: &Sim<ZkNode>) -> bool {
        self.lack(sim).is_some()
    }

    fn explain_liveness(&mut self, sim: &Sim<ZkNode>, v: &Violation) -> Option<KnownBehaviour> {
        let servers: Vec<NodeId> = self.server_ids().collect();
        let heal_ns = self.goals.heal_ns()?;
        self.refusals.explain(sim, &servers, heal_ns, v)
    }

    fn finish(&mut self, sim: &Sim<ZkNode>) -> Vec<Violation> {
        let histories: Vec<(NodeId, &[Record])> = self
            .client_ids()
            .filter_map(|id| {
                sim.node(id)
                    .and_then(ZkNode::client)
                    .map(|c| (id, c.history()))
            })
            .collect();
        let checks = checks::check_clients(sim, &self.mon, self.spec.servers, &histories);
        self.outcomes = checks.outcomes;
        self.history_unknown = checks.unknown;
        self.witness = checks.witness;
        checks.violations
    }

    fn role(&self, sim: &Sim<ZkNode>, node: NodeId) -> Option<Role> {
        let v = server(sim, node)?.view();
        let name = match v.state {
            PeerState::Looking => "LOOKING",
            PeerState::Following => "FOLLOWING",
            PeerState::Leading => "LEADING",
        };
        Some(Role {
            name: name.to_string(),
            epoch: u64::from(v.current_epoch),
        })
    }

    fn client_ops(&self, sim: &Sim<ZkNode>) -> Vec<ClientOp> {
        let clients: Vec<(NodeId, &[Record])> = self
            .client_ids()
            .filter_map(|id| Some((id, sim.node(id).and_then(ZkNode::client)?.history())))
            .collect();
        checks::client_ops(&self.mon, self.spec.servers, &clients)
    }

    fn witness(&self) -> Option<Witness> {
        self.witness.clone()
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "leaders_established": self.mon.elections(),
            "committed_txns": self.mon.committed().len(),
            "ops_ok": self.outcomes.ok,
            "ops_fail": self.outcomes.fail,
            "ops_info": self.outcomes.info,
            "history_check": if self.history_unknown { "unknown" } else { "done" },
        })
    }
}
