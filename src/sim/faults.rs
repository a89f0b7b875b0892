//! Applying fault actions to the world: crashes, kills, stops and restarts, partitions
//! (two-way and one-way) and heal, clogs, delay spikes, connection resets, fsync spikes,
//! read corruption. The cluster decides when; this file decides what each one does to the
//! kernel's state.
//!
//! Three ways for a process to go down:
//! - `crash`: power loss of the machine. Volatile state, connections and the unsynced writes
//!   in the page cache are lost (a random prefix may survive, the last one torn, see `disk`).
//! - `kill`: the process dies (SIGKILL, the OOM killer) and the machine stays up. The page
//!   cache survives: every write the process made is readable after the restart, and stays
//!   unsynced until an fsync (except an atomic replacement whose fsync had not completed:
//!   see `disk`). Writeback is modelled simply: nothing is written back on its
//!   own while the machine runs, and a later power loss keeps a random prefix of the
//!   unsynced writes (`crash_keeps_unsynced_prefix`), which stands for whatever the kernel
//!   had written back by then.
//! - `stop`: graceful shutdown. The node gets `Event::Stop` and halts itself when its
//!   shutdown work is done; one still up after the grace period is killed.

use std::fmt::Debug;
use std::hash::Hash;

use super::{Item, Sim, Stopping};
use crate::node::{ConnId, Event, Node, NodeId};
use crate::sim::fault::{FaultAction, DEFAULT_STOP_GRACE};
use crate::sim::rng::Ratio;
use crate::sim::time::Dur;

impl<N> Sim<N>
where
    N: Node,
    N::Msg: Hash + Debug,
{
    /// Applies a resolved action. Actions with a follow-up (`restart_after`, `heal_after`)
    /// only do their first half here; the caller schedules the rest.
    pub fn apply_fault(&mut self, action: &FaultAction<NodeId>) {
        if self.noting() {
            let detail = self.describe(action);
            self.note("fault", detail);
        }
        match action {
            FaultAction::Crash { node, .. } => self.crash(*node),
            FaultAction::CrashSet { nodes, .. } => nodes.iter().for_each(|n| self.crash(*n)),
            FaultAction::Kill { node, .. } => self.kill(*node),
            FaultAction::Stop {
                node,
                restart_after,
                grace,
            } => {
                let grace = grace.unwrap_or(DEFAULT_STOP_GRACE);
                self.stop(*node, grace, *restart_after);
            }
            FaultAction::Restart { node } => self.restart(*node),
            FaultAction::Partition { groups, silent, .. } => self.partition(groups, *silent),
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

    /// Power loss: volatile state, connections, timers and unsynced writes are gone. A
    /// machine whose process is already down (killed or halted) still loses its page cache.
    pub fn crash(&mut self, node: NodeId) {
        if self.is_up(node) {
            self.stats.crashes += 1;
            if let Some(cap) = &mut self.capture {
                cap.mark(self.now_ns, node.0, "crash", "");
            }
            // A stop in progress is overtaken: no restart on its behalf.
            self.go_down(node, None);
        }
        let lost = self.disks[node.index()].crash(&mut self.disk_rng, &self.disk_options);
        self.stats.unsynced_writes_lost += lost;
    }

    /// The process dies, the machine stays up: the disk, page cache included, is untouched.
    pub fn kill(&mut self, node: NodeId) {
        if !self.is_up(node) {
            return;
        }
        self.stats.kills += 1;
        if let Some(cap) = &mut self.capture {
            cap.mark(self.now_ns, node.0, "kill", "");
        }
        self.go_down(node, None);
        self.stats.unsynced_writes_lost += self.disks[node.index()].kill();
    }

    /// Asks the node to shut down: `Event::Stop` now, a kill if it is still up after
    /// `grace`, and a restart `restart_after` after it is gone. A node already stopping or
    /// down is left alone.
    pub fn stop(&mut self, node: NodeId, grace: Dur, restart_after: Option<Dur>) {
        let slot = &mut self.slots[node.index()];
        if slot.node.is_none() || slot.stopping.is_some() {
            return;
        }
        slot.stopping = Some(Stopping {
            restart_after_ns: restart_after.map(Dur::ns),
        });
        let inc = slot.incarnation;
        self.stats.stops += 1;
        if let Some(cap) = &mut self.capture {
            cap.mark(self.now_ns, node.0, "stop", "");
        }
        let now = self.now_ns;
        let event = Event::Stop;
        self.queue.push(now, Item::Event { node, inc, event });
        let deadline = now + grace.ns();
        self.queue.push(deadline, Item::GraceExpired { node, inc });
    }

    /// The grace period of a stop is over: a node still up in that incarnation is killed.
    pub(super) fn grace_expired(&mut self, node: NodeId, inc: u32) {
        if self.slots[node.index()].incarnation != inc || !self.is_up(node) {
            return;
        }
        self.note(
            "fault",
            format!("{} killed: stop grace period over", self.name(node)),
        );
        self.stats.kills += 1;
        if let Some(cap) = &mut self.capture {
            cap.mark(self.now_ns, node.0, "kill", "grace period over");
        }
        let stopping = self.go_down(node, None);
        self.stats.unsynced_writes_lost += self.disks[node.index()].kill();
        self.restart_after_stop(node, stopping);
    }

    /// The process of `node` is gone: no state machine, a new incarnation (so that its
    /// queued events and timers are dropped), its connections broken. Returns the stop that
    /// was in progress, if any.
    pub(super) fn go_down(&mut self, node: NodeId, halted: Option<String>) -> Option<Stopping> {
        let slot = &mut self.slots[node.index()];
        slot.node = None;
        slot.halted = halted;
        slot.incarnation += 1;
        let stopping = slot.stopping.take();
        for conn in self.net.conns_of(node) {
            self.sever(conn, Some(node));
        }
        stopping
    }

    /// Schedules the restart a stop asked for, once its process is gone.
    pub(super) fn restart_after_stop(&mut self, node: NodeId, stopping: Option<Stopping>) {
        let Some(after) = stopping.and_then(|s| s.restart_after_ns) else {
            return;
        };
        let inc = self.slots[node.index()].incarnation;
        self.queue
            .push(self.now_ns + after, Item::Restart { node, inc });
    }

    /// Restarts a crashed, killed or halted node from its disk alone.
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

    /// Cuts every pair of nodes in different groups: loudly (crossing connections break,
    /// both ends told) or silently (crossing traffic is held both ways, no one is told).
    fn partition(&mut self, groups: &[Vec<NodeId>], silent: bool) {
        let n = self.net.n;
        for (i, g) in groups.iter().enumerate() {
            for (j, h) in groups.iter().enumerate() {
                if i == j {
                    continue;
                }
                for a in g {
                    for b in h {
                        if a == b {
                            continue;
                        }
                        let cell = a.index() * n + b.index();
                        if silent {
                            self.net.held[cell] = true;
                        } else {
                            self.net.blocked[cell] = true;
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

    /// Removes every partition. What silent cuts held goes out in order: each direction's
    /// messages, then its FIN if the sender closed; then the ends whose peer died meanwhile
    /// learn it (their retransmissions meet a reset).
    pub fn heal(&mut self) {
        self.net.blocked.iter_mut().for_each(|b| *b = false);
        self.net.held.iter_mut().for_each(|h| *h = false);
        let conns: Vec<_> = self.net.conns.keys().copied().collect();
        for conn in conns {
            for dir in 0..2 {
                self.release_held(conn, dir);
            }
        }
        let now = self.now_ns;
        for (node, inc, conn, peer) in std::mem::take(&mut self.net.deferred_downs) {
            let delay = self.net.sample_delay(&mut self.net_rng, now, peer, node);
            let event = Event::ConnDown { conn, peer };
            self.queue
                .push(now + delay, Item::Event { node, inc, event });
        }
    }

    fn release_held(&mut self, conn: ConnId, dir: usize) {
        let now = self.now_ns;
        let c = self.net.conns.get_mut(&conn).expect("present");
        c.held_since_ns[dir] = None;
        let held: Vec<_> = c.held[dir].drain(..).collect();
        let fin = std::mem::take(&mut c.fin_held[dir]);
        let (from, to) = (c.ends[dir], c.ends[1 - dir]);
        let inc = c.incarnations[1 - dir];
        for (id, msg) in held {
            let delay = self.net.sample_delay(&mut self.net_rng, now, from, to);
            let c = self.net.conns.get_mut(&conn).expect("present");
            let at = (now + delay).max(c.last_delivery_ns[dir]);
            c.last_delivery_ns[dir] = at;
            self.queue.push(at, Item::Message { conn, dir, id, msg });
        }
        if fin {
            let delay = self.net.sample_delay(&mut self.net_rng, now, from, to);
            let c = self.net.conns.get_mut(&conn).expect("present");
            let at = (now + delay).max(c.last_delivery_ns[dir]);
            c.last_delivery_ns[dir] = at;
            let item = Item::Closed {
                conn,
                node: to,
                inc,
            };
            self.queue.push(at, item);
        }
    }

    /// The start of the healed phase: no partitions, clogs, spikes or read corruption, and
    /// every crashed or halted node restarted. A node still in its stop grace period is
    /// killed and restarted too, so that every node starts the healed phase up and fresh.
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
            let node = NodeId(i as u32);
            if self.is_up(node) && self.slots[i].stopping.is_some() {
                self.kill(node);
            }
            self.restart(node);
        }
    }
}
