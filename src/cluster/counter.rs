//! The example counter as a system: nodes n0..nK, every one a fault target.
//!
//! Invariants after every event:
//! - `counter-durable`: when a node starts serving (after a restart), its own count is at
//!   least the highest count of it that any node has ever seen. Announcing a count that a
//!   crash can still take back breaks this.
//! - `counter-monotonic`: within one incarnation, no node's view of any origin decreases.
//!
//! Liveness: after the heal, every live node's view reaches, for every origin, the highest
//! count any node knew at the moment of the heal.
//!
//! Depends on: example::counter, sim, cluster.

use std::rc::Rc;

use super::{System, Violation};
use crate::example::counter::{CounterConfig, CounterNode};
use crate::node::NodeId;
use crate::scenario::CounterSpec;
use crate::sim::Sim;

/// `a == b`, compared in place: views are a few counts long, for which a call to `memcmp`
/// (what `==` on slices of integers becomes) costs more than the comparison, once per
/// delivered event.
fn same_counts(a: &[u64], b: &[u64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

pub struct CounterSystem {
    config: Rc<CounterConfig>,
    /// Highest count of each origin seen anywhere, ever.
    seen_max: Vec<u64>,
    /// Per node: the incarnation at its last event, and whether it was serving then.
    last_life: Vec<(u32, bool)>,
    /// Per node, `n` counts each: its view at its last event (one flat buffer, so that the
    /// check after each event reads no per-node vector header).
    last_view: Vec<u64>,
    /// The healed phase's target view.
    target: Option<Vec<u64>>,
}

impl CounterSystem {
    pub fn new(spec: &CounterSpec) -> Self {
        let n = spec.nodes as usize;
        CounterSystem {
            config: Rc::new(CounterConfig {
                nodes: spec.nodes,
                increment_interval_ns: spec.increment_interval.ns(),
                gossip_interval_ns: spec.gossip_interval.ns(),
                reconnect_backoff_ns: spec.reconnect_backoff.ns(),
                bugs: spec.bug_modes.clone(),
            }),
            seen_max: vec![0; n],
            last_life: vec![(0, false); n],
            last_view: vec![0; n * n],
            target: None,
        }
    }
}

impl System for CounterSystem {
    type Node = CounterNode;
    type Msg = crate::example::counter::Gossip;

    fn names(&self) -> Vec<String> {
        (0..self.config.nodes).map(|i| format!("n{i}")).collect()
    }

    fn factory(&self) -> Box<dyn FnMut(NodeId) -> CounterNode> {
        let config = Rc::clone(&self.config);
        Box::new(move |id| CounterNode::new(Rc::clone(&config), id))
    }

    fn resolve_role(&self, _role: &str, _sim: &Sim<CounterNode>) -> Vec<NodeId> {
        Vec::new()
    }

    fn fault_targets(&self) -> Vec<NodeId> {
        (0..self.config.nodes).map(NodeId).collect()
    }

    fn after_event(&mut self, sim: &Sim<CounterNode>, id: NodeId) -> Vec<Violation> {
        let Some(node) = sim.node(id) else {
            return Vec::new();
        };
        let inc = sim.incarnation(id);
        let serving = node.is_serving();
        let view = node.view();
        let n = self.seen_max.len();
        let life = &mut self.last_life[id.index()];
        let same_life = life.0 == inc && life.1;
        let last = &mut self.last_view[id.index() * n..][..n];
        if same_life && same_counts(view, last) {
            // Nothing moved since this node's last event: no count went back, and every
            // count was already folded into `seen_max` then.
            life.1 = serving;
            return Vec::new();
        }
        *life = (inc, serving);
        let mut found = Vec::new();
        if serving && !same_life {
            let own = node.durable_count();
            let seen = self.seen_max[id.index()];
            if own < seen {
                let name = sim.name(id);
                let message = format!(
                    "{name} restarted with count {own}, but count {seen} of it was already seen"
                );
                found.push(super::safety_violation(sim, "counter-durable", id, message));
            }
        }
        let went_back = same_life && view.iter().zip(&*last).any(|(now, before)| now < before);
        if !went_back {
            // The usual case: no violation to word, only the same updates as below, in a
            // loop without per-origin branches or index checks.
            for ((&now, before), max) in view
                .iter()
                .zip(last.iter_mut())
                .zip(self.seen_max.iter_mut())
            {
                *before = now;
                *max = (*max).max(now);
            }
            return found;
        }
        for (origin, (&now, before)) in view.iter().zip(last.iter_mut()).enumerate() {
            if now < *before {
                let message = format!(
                    "{}'s view of n{origin} went from {before} back to {now}",
                    sim.name(id)
                );
                found.push(super::safety_violation(
                    sim,
                    "counter-monotonic",
                    id,
                    message,
                ));
            }
            *before = now;
            let max = &mut self.seen_max[origin];
            *max = (*max).max(now);
        }
        found
    }

    fn begin_liveness(&mut self, _sim: &Sim<CounterNode>) {
        self.target = Some(self.seen_max.clone());
    }

    fn pending(&mut self, sim: &Sim<CounterNode>) -> Option<String> {
        let target = self.target.as_ref()?;
        for i in 0..self.config.nodes {
            let id = NodeId(i);
            let Some(node) = sim.node(id) else {
                return Some(format!("{} is down", sim.name(id)));
            };
            if !node.is_serving() {
                return Some(format!("{} has not recovered its state", sim.name(id)));
            }
            for (origin, (have, need)) in node.view().iter().zip(target).enumerate() {
                if have < need {
                    return Some(format!(
                        "{} sees n{origin} at {have}, needs {need}",
                        sim.name(id)
                    ));
                }
            }
        }
        None
    }

    fn finish(&mut self, _sim: &Sim<CounterNode>) -> Vec<Violation> {
        Vec::new()
    }

    fn summary(&self) -> serde_json::Value {
        serde_json::json!({ "increments": self.seen_max.iter().sum::<u64>() })
    }
}
