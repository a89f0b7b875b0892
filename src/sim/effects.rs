//! Carrying out the effects a node recorded: connections, messages, timers, fsyncs, halts.
//! See `net.rs` and `disk.rs` for the models these follow.

use std::fmt::Debug;
use std::hash::Hash;

use super::{Conn, ConnState, Item, Sim, Stepped};
use crate::node::{ConnId, Event, FileName, FsyncId, Node, NodeId, TimerId};

impl<N> Sim<N>
where
    N: Node,
    N::Msg: Hash + Debug,
{
    pub(super) fn connect(&mut self, node: NodeId, conn: ConnId, peer: NodeId) {
        let now = self.now_ns;
        let inc = self.slots[node.index()].incarnation;
        self.stats.connections_opened += 1;
        if peer.index() >= self.slots.len() || peer == node || !self.is_up(peer) {
            // Refused: a reset comes back after one trip.
            let delay = self.net.sample_delay(&mut self.net_rng, now, node, node);
            let event = Event::ConnDown { conn, peer };
            self.queue
                .push(now + delay, Item::Event { node, inc, event });
            return;
        }
        if !self.net.reachable(node, peer) {
            let at = now + self.net.options.connect_timeout.ns().max(1);
            let event = Event::ConnDown { conn, peer };
            self.queue.push(at, Item::Event { node, inc, event });
            return;
        }
        let delay = self.net.sample_delay(&mut self.net_rng, now, node, peer);
        let up_at = now + delay;
        let c = Conn {
            ends: [node, peer],
            incarnations: [inc, self.slots[peer.index()].incarnation],
            state: ConnState::Connecting,
            up_at_ns: up_at,
            last_delivery_ns: [up_at, up_at],
            held: Default::default(),
            held_since_ns: [None, None],
            closed_by: [false, false],
            fin_held: [false, false],
        };
        self.net.conns.insert(conn, c);
        self.queue.push(up_at, Item::Establish { conn });
    }

    pub(super) fn establish(&mut self, conn: ConnId) {
        let Some(c) = self.net.conns.get_mut(&conn) else {
            return;
        };
        // Breaking a connection removes it, so one that is still here is good to go.
        c.state = ConnState::Up;
        let [a, b] = c.ends;
        let [inc_a, inc_b] = c.incarnations;
        let now = self.now_ns;
        let acceptor = Event::ConnUp {
            conn,
            peer: a,
            initiated: false,
        };
        self.queue.push(
            now,
            Item::Event {
                node: b,
                inc: inc_b,
                event: acceptor,
            },
        );
        let initiator = Event::ConnUp {
            conn,
            peer: b,
            initiated: true,
        };
        self.queue.push(
            now,
            Item::Event {
                node: a,
                inc: inc_a,
                event: initiator,
            },
        );
    }

    pub(super) fn send(&mut self, node: NodeId, conn: ConnId, msg: N::Msg) {
        self.stats.messages_sent += 1;
        let now = self.now_ns;
        // One lookup per send: the connection is borrowed from the table alone, so the
        // network's other fields, the rng, the capture and the queue stay usable.
        let Sim {
            net,
            net_rng,
            capture,
            trace,
            queue,
            stats,
            ..
        } = self;
        let Some(c) = net.conns.get_mut(&conn) else {
            stats.messages_lost += 1;
            return;
        };
        let Some(dir) = c.side_of(node) else {
            stats.messages_lost += 1;
            return;
        };
        if c.closed_by[dir] {
            stats.messages_lost += 1;
            return;
        }
        let to = c.ends[1 - dir];
        let id = match capture {
            Some(cap) => cap.sent((node.0, to.0), now, trace.events(), &msg),
            None => 0,
        };
        let held = net.held[node.index() * net.n + to.index()];
        if held {
            c.held[dir].push_back((id, msg));
            if c.held_since_ns[dir].is_none() {
                c.held_since_ns[dir] = Some(now);
                let at = now + net.options.tcp_retransmit_timeout.ns().max(1);
                queue.push(at, Item::Retransmit { conn, dir });
            }
            return;
        }
        let delay = super::net::sample_delay(
            &net.delay,
            &net.clog_until_ns,
            &net.clog_extra_ns,
            (net.spike_until_ns, net.spike_extra_ns),
            net_rng,
            now,
            [node, to],
        );
        let at = (now + delay).max(c.last_delivery_ns[dir]).max(c.up_at_ns);
        c.last_delivery_ns[dir] = at;
        queue.push(at, Item::Message { conn, dir, id, msg });
    }

    pub(super) fn deliver_message(
        &mut self,
        conn: ConnId,
        dir: usize,
        id: u64,
        msg: N::Msg,
    ) -> Stepped {
        let Some(c) = self.net.conns.get(&conn) else {
            self.stats.messages_lost += 1;
            return Stepped::Internal;
        };
        let to = c.ends[1 - dir];
        let from = c.ends[dir];
        if c.closed_by[1 - dir] || c.state != ConnState::Up {
            self.stats.messages_lost += 1;
            return Stepped::Internal;
        }
        self.stats.messages_delivered += 1;
        let inc = c.incarnations[1 - dir];
        let event = Event::Message {
            conn,
            peer: from,
            msg,
        };
        let stepped = self.deliver_if_alive(to, inc, event);
        if let (Some(cap), Stepped::Delivered(_)) = (&mut self.capture, stepped) {
            cap.delivered(id, self.now_ns, self.trace.events());
        }
        stepped
    }

    pub(super) fn close(&mut self, node: NodeId, conn: ConnId) {
        let now = self.now_ns;
        let Some(c) = self.net.conns.get_mut(&conn) else {
            // Already broken behind a silent cut: the end that closes it needs no news.
            self.net
                .deferred_downs
                .retain(|d| !(d.0 == node && d.2 == conn));
            return;
        };
        let Some(side) = c.side_of(node) else {
            return;
        };
        if c.closed_by[side] {
            return;
        }
        c.closed_by[side] = true;
        if c.closed_by[1 - side] {
            self.net.conns.remove(&conn);
            return;
        }
        let peer = c.ends[1 - side];
        let inc = c.incarnations[1 - side];
        let last = c.last_delivery_ns[side];
        if self.net.is_held(node, peer) {
            // The FIN waits behind the held data; the heal sends both.
            if let Some(c) = self.net.conns.get_mut(&conn) {
                c.fin_held[side] = true;
            }
            return;
        }
        let delay = self.net.sample_delay(&mut self.net_rng, now, node, peer);
        // The FIN follows the data already sent on that direction.
        let at = (now + delay).max(last);
        if let Some(c) = self.net.conns.get_mut(&conn) {
            c.last_delivery_ns[side] = at;
        }
        self.queue.push(
            at,
            Item::Closed {
                conn,
                node: peer,
                inc,
            },
        );
    }

    /// Breaks a connection loudly (a reset, a loud partition): in-flight messages are lost
    /// and each live end that has not closed it is told after one delay.
    pub(super) fn break_conn(&mut self, conn: ConnId) {
        self.sever(conn, None);
    }

    /// Removes a connection that broke at end `origin` (its process died, or its TCP gave
    /// up; None: a reset both ends see). The origin, if still alive, is told after one
    /// delay; the other end too, or on heal if a silent cut keeps the news from it.
    pub(super) fn sever(&mut self, conn: ConnId, origin: Option<NodeId>) {
        let Some(c) = self.net.conns.remove(&conn) else {
            return;
        };
        self.stats.connections_broken += 1;
        let now = self.now_ns;
        for side in 0..2 {
            let node = c.ends[side];
            let peer = c.ends[1 - side];
            let slot = &self.slots[node.index()];
            if c.closed_by[side] || slot.incarnation != c.incarnations[side] || slot.node.is_none()
            {
                continue;
            }
            let event = Event::ConnDown { conn, peer };
            let inc = c.incarnations[side];
            if origin.is_some_and(|o| o != node) && self.net.silently_cut(node, peer) {
                self.net.deferred_downs.push((node, inc, conn, peer));
                continue;
            }
            let delay = self.net.sample_delay(&mut self.net_rng, now, node, node);
            self.queue
                .push(now + delay, Item::Event { node, inc, event });
        }
    }

    /// TCP's retransmission clock of a held direction ran out: the connection breaks.
    pub(super) fn retransmit_timeout(&mut self, conn: ConnId, dir: usize) {
        let Some(c) = self.net.conns.get(&conn) else {
            return;
        };
        let limit = self.net.options.tcp_retransmit_timeout.ns().max(1);
        let sender = c.ends[dir];
        if c.held_since_ns[dir].is_some_and(|since| since + limit <= self.now_ns) {
            self.sever(conn, Some(sender));
        }
    }

    pub(super) fn set_timer(&mut self, node: NodeId, timer: TimerId, after_ns: u64, tag: u64) {
        let inc = self.slots[node.index()].incarnation;
        let event = Event::Timer { timer, tag };
        self.queue
            .push(self.now_ns + after_ns, Item::Event { node, inc, event });
    }

    pub(super) fn cancel_timer(&mut self, timer: TimerId) {
        let word = (timer.0 / 64) as usize;
        if self.cancelled_timers.len() <= word {
            self.cancelled_timers.resize(word + 1, 0);
        }
        self.cancelled_timers[word] |= 1 << (timer.0 % 64);
    }

    /// True if the timer was cancelled (and forgets that it was).
    pub(super) fn take_cancelled(&mut self, timer: TimerId) -> bool {
        let word = (timer.0 / 64) as usize;
        let bit = 1u64 << (timer.0 % 64);
        match self.cancelled_timers.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                true
            }
            _ => false,
        }
    }

    pub(super) fn fsync(&mut self, node: NodeId, fsync: FsyncId, file: FileName) {
        self.stats.fsyncs += 1;
        let now = self.now_ns;
        let slot = &self.slots[node.index()];
        let inc = slot.incarnation;
        let mut latency = self.fsync_latency.draw(&mut self.disk_rng);
        if now < slot.fsync_spike_until_ns {
            latency += slot.fsync_extra_ns;
        }
        let disk = &mut self.disks[node.index()];
        let target = disk.fsync_target(&file);
        let at = (now + latency).max(disk.last_fsync_done_ns);
        disk.last_fsync_done_ns = at;
        self.queue.push(
            at,
            Item::Fsync {
                node,
                inc,
                fsync,
                file,
                target,
            },
        );
    }

    /// The node stops itself. A process exit keeps the page cache as a kill does (see
    /// `disk`). If it was asked to stop, the restart that stop asked for follows.
    pub(super) fn halt(&mut self, node: NodeId, reason: String) {
        self.note("halt", format!("{} halts: {}", self.name(node), reason));
        if let Some(cap) = &mut self.capture {
            cap.mark(self.now_ns, node.0, "halt", &reason);
        }
        let stopping = self.go_down(node, Some(reason));
        self.stats.unsynced_writes_lost += self.disks[node.index()].kill();
        self.restart_after_stop(node, stopping);
    }
}
