//! The simulation kernel: virtual time, the event queue, the network, the disks, crashes and
//! the trace. It knows nothing of ZooKeeper or Kafka: it drives any [`Node`] through a
//! [`Context`] and carries out the effects the node records.
//!
//! One `Sim` is one run: single-threaded, with every random choice drawn from named streams
//! of one root seed, so the same seed and inputs give the same run, byte for byte.
//!
//! Depends on: node.

pub mod capture;
mod conns;
pub mod disk;
mod effects;
pub mod fault;
mod faults;
pub mod net;
pub mod queue;
pub mod rng;
pub mod time;
pub mod trace;

use std::fmt::Debug;
use std::hash::Hash;

use rand_chacha::ChaCha8Rng;

use crate::node::{ConnId, Context, Effect, Event, FileName, FsyncId, IdSource, Node, NodeId};
use disk::{Disk, DiskHandle, DiskOptions};
use net::{Conn, ConnState, NetOptions, Network};
use queue::EventQueue;
use rng::Ratio;
use trace::{hash_of, TimelineLine, Trace};

/// Kernel options for one run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub net: NetOptions,
    pub disk: DiskOptions,
    /// Keep the last this-many timeline lines (0: none, the fast path).
    pub timeline_capture: usize,
    /// Record one checksum per delivered event, to locate the first divergence of two runs.
    pub record_checksums: bool,
}

/// What the queue holds.
enum Item<M> {
    /// Deliver `event` to `node` if it is still in incarnation `inc`.
    Event {
        node: NodeId,
        inc: u32,
        event: Event<M>,
    },
    Establish {
        conn: ConnId,
    },
    /// `id` names the message in the capture (0 when not capturing).
    Message {
        conn: ConnId,
        dir: usize,
        id: u64,
        msg: M,
    },
    /// The other end closed: tell `node`, then forget the connection.
    Closed {
        conn: ConnId,
        node: NodeId,
        inc: u32,
    },
    Fsync {
        node: NodeId,
        inc: u32,
        fsync: FsyncId,
        file: FileName,
        target: u64,
    },
    /// The grace period of a stop ends: kill `node` if incarnation `inc` is still up.
    GraceExpired {
        node: NodeId,
        inc: u32,
    },
    /// Direction `dir` of `conn` has held a message for the retransmission timeout, unless
    /// a heal released it in the meantime.
    Retransmit {
        conn: ConnId,
        dir: usize,
    },
    /// Restart `node` if it is still down in incarnation `inc` (a stop's `restart_after`).
    Restart {
        node: NodeId,
        inc: u32,
    },
}

/// A node asked to stop that has not gone down yet.
#[derive(Clone, Copy, Debug)]
struct Stopping {
    /// Restart it this long after it is gone.
    restart_after_ns: Option<u64>,
}

struct Slot<N> {
    node: Option<N>,
    incarnation: u32,
    rng: ChaCha8Rng,
    halted: Option<String>,
    fsync_extra_ns: u64,
    fsync_spike_until_ns: u64,
    /// Set between a stop and the moment the process is gone.
    stopping: Option<Stopping>,
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimStats {
    pub events: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_lost: u64,
    pub connections_opened: u64,
    pub connections_broken: u64,
    pub crashes: u64,
    pub kills: u64,
    pub stops: u64,
    pub restarts: u64,
    pub fsyncs: u64,
    pub unsynced_writes_lost: u64,
    pub corrupted_reads: u64,
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stepped {
    /// An event was delivered to this node.
    Delivered(NodeId),
    /// The kernel did internal work (a dropped message, an establishment).
    Internal,
}

type Factory<N> = Box<dyn FnMut(NodeId) -> N>;

/// One simulated world.
pub struct Sim<N: Node> {
    now_ns: u64,
    queue: EventQueue<Item<N::Msg>>,
    slots: Vec<Slot<N>>,
    disks: Vec<Disk>,
    net: Network<N::Msg>,
    net_rng: ChaCha8Rng,
    disk_rng: ChaCha8Rng,
    disk_options: DiskOptions,
    /// The fsync latency's draw, from `disk_options`.
    fsync_latency: rng::Jitter,
    read_corruption: Ratio,
    ids: IdSource,
    effects: Vec<Effect<N::Msg>>,
    /// Bit per id: the timer with that id was cancelled.
    cancelled_timers: Vec<u64>,
    factory: Factory<N>,
    names: Vec<String>,
    trace: Trace,
    stats: SimStats,
    /// Debug logging of every event was enabled when the run started.
    log_events: bool,
    /// Messages, crashes and restarts recorded for pictures (None: the fast path).
    capture: Option<Box<capture::Capture>>,
}

impl<N> Sim<N>
where
    N: Node,
    N::Msg: Hash + Debug,
{
    /// A world of `names.len()` nodes built by `factory`; each gets `Start` at time 0.
    pub fn new(config: SimConfig, names: Vec<String>, mut factory: Factory<N>) -> Self {
        let n = names.len();
        let seed = config.seed;
        let slots = (0..n as u32)
            .map(|i| Slot {
                node: Some(factory(NodeId(i))),
                incarnation: 0,
                rng: rng::node_stream(seed, i),
                halted: None,
                fsync_extra_ns: 0,
                fsync_spike_until_ns: 0,
                stopping: None,
            })
            .collect();
        let mut sim = Sim {
            now_ns: 0,
            queue: EventQueue::default(),
            slots,
            disks: vec![Disk::default(); n],
            net: Network::new(n, config.net.clone()),
            net_rng: rng::stream(seed, "network"),
            disk_rng: rng::stream(seed, "disk"),
            read_corruption: config.disk.read_corruption,
            fsync_latency: rng::Jitter::new(
                config.disk.fsync_latency_mean.ns(),
                config.disk.fsync_latency_jitter.ns(),
                1,
            ),
            disk_options: config.disk,
            ids: IdSource::new(0),
            effects: Vec::new(),
            cancelled_timers: Vec::new(),
            factory,
            names,
            trace: Trace::new(config.timeline_capture, config.record_checksums),
            stats: SimStats::default(),
            log_events: tracing::enabled!(target: "faultline::event", tracing::Level::DEBUG),
            capture: None,
        };
        for i in 0..n as u32 {
            let event = Event::Start { restarted: false };
            sim.queue.push(
                0,
                Item::Event {
                    node: NodeId(i),
                    inc: 0,
                    event,
                },
            );
        }
        sim
    }

    pub fn now(&self) -> u64 {
        self.now_ns
    }

    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// The node's state machine, or None while it is crashed or halted.
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.slots[id.index()].node.as_ref()
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.slots[id.index()].node.is_some()
    }

    /// How many times the node has restarted.
    pub fn incarnation(&self, id: NodeId) -> u32 {
        self.slots[id.index()].incarnation
    }

    pub fn halted_reason(&self, id: NodeId) -> Option<&str> {
        self.slots[id.index()].halted.as_deref()
    }

    pub fn disk(&self, id: NodeId) -> &Disk {
        &self.disks[id.index()]
    }

    pub fn name(&self, id: NodeId) -> &str {
        &self.names[id.index()]
    }

    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Starts recording messages, crashes and restarts (see [`capture`]); call before the
    /// first step. The trace hash is the same with or without it.
    pub fn enable_capture(&mut self) {
        self.capture = Some(Box::default());
    }

    /// What was captured so far (None unless [`Sim::enable_capture`] was called).
    pub fn capture(&self) -> Option<&capture::Capture> {
        self.capture.as_deref()
    }

    /// Time of the next queued item, if any.
    pub fn next_time(&self) -> Option<u64> {
        self.queue.peek_time()
    }

    /// Moves the clock forward to `time_ns` (for faults that fire between events).
    pub fn advance_to(&mut self, time_ns: u64) {
        assert!(time_ns >= self.now_ns, "time goes backwards");
        if let Some(next) = self.queue.peek_time() {
            assert!(time_ns <= next, "advance past a queued event");
        }
        self.now_ns = time_ns;
    }

    /// Handles the next queued item. Returns None when the queue is empty.
    pub fn step(&mut self) -> Option<Stepped> {
        let (time_ns, item) = self.queue.pop()?;
        debug_assert!(time_ns >= self.now_ns);
        self.now_ns = time_ns;
        Some(match item {
            Item::Event {
                node,
                inc,
                event: Event::Timer { timer, tag },
            } => {
                if self.take_cancelled(timer) {
                    return Some(Stepped::Internal);
                }
                self.deliver_if_alive(node, inc, Event::Timer { timer, tag })
            }
            Item::Event { node, inc, event } => self.deliver_if_alive(node, inc, event),
            Item::Establish { conn } => {
                self.establish(conn);
                Stepped::Internal
            }
            Item::Message { conn, dir, id, msg } => self.deliver_message(conn, dir, id, msg),
            Item::Closed { conn, node, inc } => {
                let peer = self.net.conns.get(&conn).map(|c| {
                    let side = c.side_of(node).expect("endpoint");
                    c.ends[1 - side]
                });
                self.net.conns.remove(&conn);
                match peer {
                    Some(peer) => self.deliver_if_alive(node, inc, Event::ConnDown { conn, peer }),
                    None => Stepped::Internal,
                }
            }
            Item::Fsync {
                node,
                inc,
                fsync,
                file,
                target,
            } => {
                if self.slots[node.index()].incarnation != inc || !self.is_up(node) {
                    return Some(Stepped::Internal);
                }
                self.disks[node.index()].complete_fsync(&file, target);
                self.deliver_if_alive(node, inc, Event::FsyncDone { fsync, file })
            }
            Item::Retransmit { conn, dir } => {
                self.retransmit_timeout(conn, dir);
                Stepped::Internal
            }
            Item::GraceExpired { node, inc } => {
                self.grace_expired(node, inc);
                Stepped::Internal
            }
            Item::Restart { node, inc } => {
                if self.slots[node.index()].incarnation == inc {
                    self.restart(node);
                }
                Stepped::Internal
            }
        })
    }

    fn deliver_if_alive(&mut self, node: NodeId, inc: u32, event: Event<N::Msg>) -> Stepped {
        let slot = &self.slots[node.index()];
        if slot.incarnation != inc || slot.node.is_none() {
            return Stepped::Internal;
        }
        self.deliver(node, event);
        Stepped::Delivered(node)
    }

    fn deliver(&mut self, node: NodeId, event: Event<N::Msg>) {
        let kind = event_kind_code(&event);
        let payload = hash_of(&event);
        let index = self.trace.fold(self.now_ns, node, kind, payload);
        self.stats.events += 1;
        if self.trace.capturing() || self.log_events {
            self.note_event(index, node, &event);
        }
        let Sim {
            slots,
            disks,
            disk_rng,
            ids,
            effects,
            read_corruption,
            stats,
            now_ns,
            ..
        } = self;
        let slot = &mut slots[node.index()];
        let machine = slot.node.as_mut().expect("alive");
        let mut handle = DiskHandle {
            disk: &mut disks[node.index()],
            rng: disk_rng,
            read_corruption: *read_corruption,
            corrupted_reads: &mut stats.corrupted_reads,
        };
        let mut ctx = Context::new(*now_ns, node, &mut slot.rng, &mut handle, ids, effects);
        machine.on_event(&mut ctx, event);
        if self.effects.is_empty() {
            // Most deliveries (a message merged, a timer re-armed elsewhere) record nothing.
            return;
        }
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            self.apply_effect(node, effect);
        }
        self.effects = effects;
    }

    fn note_event(&mut self, index: u64, node: NodeId, event: &Event<N::Msg>) {
        let mut detail = match event {
            Event::Message { peer, msg, .. } => format!("from {} {:?}", self.name(*peer), msg),
            Event::ConnUp { peer, .. } | Event::ConnDown { peer, .. } => {
                format!("{} ({:?})", self.name(*peer), event)
            }
            other => format!("{other:?}"),
        };
        if detail.len() > 240 {
            let mut cut = 240;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push('…');
        }
        tracing::debug!(
            target: "faultline::event",
            "{} #{} {} {} {}",
            time::fmt_ns(self.now_ns),
            index,
            self.name(node),
            event.kind(),
            detail
        );
        let line = TimelineLine {
            time_ns: self.now_ns,
            event: index,
            node: self.name(node).to_string(),
            kind: event.kind().to_string(),
            detail,
        };
        self.trace.push_line(line);
    }

    /// Whether a note goes anywhere: the timeline is captured or the debug log is on. A
    /// fuzz run has neither, and builds no note (a fault's JSON, its time) at all.
    pub(crate) fn noting(&self) -> bool {
        self.trace.capturing()
            || tracing::enabled!(target: "faultline::fault", tracing::Level::DEBUG)
    }

    /// Records a kernel note (a fault) in the timeline and the debug log.
    pub fn note(&mut self, kind: &str, detail: String) {
        if !self.noting() {
            return;
        }
        let at = time::fmt_ns(self.now_ns);
        tracing::debug!(target: "faultline::fault", "{at} {kind} {detail}");
        self.trace.push_line(TimelineLine {
            time_ns: self.now_ns,
            event: 0,
            node: "world".to_string(),
            kind: kind.to_string(),
            detail,
        });
    }

    fn apply_effect(&mut self, node: NodeId, effect: Effect<N::Msg>) {
        if !self.is_up(node) {
            // An earlier effect of the same handler halted the node.
            return;
        }
        match effect {
            Effect::Connect { conn, peer } => self.connect(node, conn, peer),
            Effect::Send { conn, msg } => self.send(node, conn, msg),
            Effect::Close { conn } => self.close(node, conn),
            Effect::SetTimer {
                timer,
                after_ns,
                tag,
            } => self.set_timer(node, timer, after_ns, tag),
            Effect::CancelTimer { timer } => self.cancel_timer(timer),
            Effect::Fsync { fsync, file } => self.fsync(node, fsync, file),
            Effect::Halt { reason } => self.halt(node, reason),
        }
    }
}

fn event_kind_code<M>(event: &Event<M>) -> u64 {
    match event {
        Event::Start { restarted: false } => 1,
        Event::Start { restarted: true } => 2,
        Event::ConnUp { .. } => 3,
        Event::ConnDown { .. } => 4,
        Event::Message { .. } => 5,
        Event::Timer { .. } => 6,
        Event::FsyncDone { .. } => 7,
        Event::Stop => 8,
    }
}
