//! Applying fault actions to the world: crashes and restarts, partitions (two-way and
//! one-way) and heal, clogs, delay spikes, connection resets, fsync spikes, read corruption.
//! The cluster decides when; this file decides what each one does to the kernel's state.

use std::fmt::Debug;
use std::hash::Hash;

use super::{Item, Sim};
use crate::node::{Event, Node, NodeId};
use crate::sim::fault::FaultAction;
use crate::sim::rng::Ratio;

impl<N> Sim<N>
where
    N: Node,
    N::Msg: Hash + Debug,
{
    /// Applies a resolved action. Actions with a follow-up (`restart_after`, `heal_after`)
    /// only do their first half here; the caller schedules the rest.
    pub fn apply_fault(&mut self, action: &FaultAction<NodeId>) {
        let detail = self.describe(action);
        self.note("fault", detail);
        match action {
            FaultAction::Crash { node, .. } => self.crash(*node),
            FaultAction::CrashSet { nodes, .. } => nodes.iter().for_each(|n| self.crash(*n)),
            FaultAction::Restart { node } => self.restart(*node),
            FaultAction::Partition { groups, .. } => self.partition(groups),
            FaultAction::Isolate { .. } | FaultAction::IsolateGroup { .. } => {
                unreachable!("the cluster expands isolate")
            }
            FaultAction::OneWay { from, to, .. } => self.one_way(from, to),
            FaultAction::Heal => self.heal(),
            FaultAction::Clog {
                node,
                extra_delay,
                duration,
            } => {
                self.net.clog_until_ns[node.index()] = self.now_ns + duration.ns();
                self.net.clog_extra_ns[node.index()] = extra_delay.ns();
            }
            FaultAction::DelaySpike {
                extra_delay,
                duration,
            } => {
                self.net.spike_until_ns = self.now_ns + duration.ns();
                self.net.spike_extra_ns = extra_delay.ns();
            }
            FaultAction::Reset { node } => {
                for conn in self.net.conns_of(*node) {
                    self.break_conn(conn);
                }
            }
            FaultAction::FsyncSpike {
                node,
                extra_latency,
                duration,
            } => {
                let slot = &mut self.slots[node.index()];
                slot.fsync_spike_until_ns = self.now_ns + duration.ns();
                slot.fsync_extra_ns = extra_latency.ns();
            }
            FaultAction::ReadCorruption { ratio } => self.read_corruption = *ratio,
        }
    }

    fn describe(&self, action: &FaultAction<NodeId>) -> String {
        let named = action
            .try_map(|id| Ok::<_, ()>(self.name(*id).to_string()))
            .expect("infallible");
        serde_json::to_string(&named).unwrap_or_else(|_| action.kind().to_string())
    }

    /// Power loss: volatile state, connections, timers and unsynced writes are gone.
    pub fn crash(&mut self, node: NodeId) {
        if !self.is_up(node) {
            return;
        }
        self.stats.crashes += 1;
        if let Some(cap) = &mut self.capture {
            cap.mark(self.now_ns, node.0, "crash", "");
        }
        let slot = &mut self.slots[node.index()];
        slot.node = None;
        slot.incarnation += 1;
        for conn in self.net.conns_of(node) {
            self.break_conn(conn);
        }
        let lost = self.disks[node.index()].crash(&mut self.disk_rng, &self.disk_options);
        self.stats.unsynced_writes_lost += lost;
    }

    /// Restarts a crashed or halted node from its disk alone.
    pub fn restart(&mut self, node: NodeId) {
        if self.is_up(node) {
            return;
        }
        self.stats.restarts += 1;
        if let Some(cap) = &mut self.capture {
            cap.mark(self.now_ns, node.0, "restart", "");
        }
        let fresh = (self.factory)(node);
        let slot = &mut self.slots[node.index()];
        slot.node = Some(fresh);
        slot.halted = None;
        let inc = slot.incarnation;
        let event = Event::Start { restarted: true };
        self.queue
            .push(self.now_ns, Item::Event { node, inc, event });
    }

    fn partition(&mut self, groups: &[Vec<NodeId>]) {
        let n = self.net.n;
        for (i, g) in groups.iter().enumerate() {
            for (j, h) in groups.iter().enumerate() {
                if i == j {
                    continue;
                }
                for a in g {
                    for b in h {
                        if a != b {
                            self.net.blocked[a.index() * n + b.index()] = true;
                        }
                    }
                }
            }
        }
        for conn in self.net.conns_crossing_blocks() {
            self.break_conn(conn);
        }
    }

    fn one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        let n = self.net.n;
        for a in from {
            for b in to {
                if a != b {
                    self.net.held[a.index() * n + b.index()] = true;
                }
            }
        }
    }

    /// Removes every partition and releases held messages in order.
    pub fn heal(&mut self) {
        self.net.blocked.iter_mut().for_each(|b| *b = false);
        self.net.held.iter_mut().for_each(|h| *h = false);
        let now = self.now_ns;
        let conns: Vec<_> = self.net.conns.keys().copied().collect();
        for conn in conns {
            for dir in 0..2 {
                let c = self.net.conns.get_mut(&conn).expect("present");
                let held: Vec<_> = c.held[dir].drain(..).collect();
                let (from, to) = (c.ends[dir], c.ends[1 - dir]);
                for (id, msg) in held {
                    let delay = self.net.sample_delay(&mut self.net_rng, now, from, to);
                    let c = self.net.conns.get_mut(&conn).expect("present");
                    let at = (now + delay).max(c.last_delivery_ns[dir]);
                    c.last_delivery_ns[dir] = at;
                    self.queue.push(at, Item::Message { conn, dir, id, msg });
                }
            }
        }
    }

    /// The start of the healed phase: no partitions, clogs, spikes or read corruption, and
    /// every crashed or halted node restarted.
    pub fn heal_all(&mut self) {
        self.note("fault", "heal all: the healed phase begins".to_string());
        self.heal();
        self.net.clog_until_ns.iter_mut().for_each(|t| *t = 0);
        self.net.spike_until_ns = 0;
        self.read_corruption = Ratio::NEVER;
        for slot in &mut self.slots {
            slot.fsync_spike_until_ns = 0;
        }
        for i in 0..self.slots.len() {
            self.restart(NodeId(i as u32));
        }
    }
}
