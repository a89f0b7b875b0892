//! The contract between protocol state machines and the simulation kernel.
//!
//! A protocol node (a ZooKeeper server, a client, a Kafka broker, the example counter) is a
//! sans-IO state machine: the kernel hands it one [`Event`] at a time together with a
//! [`Context`], and the node answers only by calling the context. Every context call either
//! returns at once (now, rng, synchronous page-cache disk writes and reads) or records an
//! [`Effect`] that the kernel carries out after the handler returns (send, connect, timers,
//! fsync). A node never sees the event queue, the network or other nodes, so the same node
//! can be driven by the kernel, by a unit test, or in principle by a real transport.
//!
//! May depend on: std, rand, rand_chacha. Nothing else in the crate.
//!
//! Time is virtual: `u64` nanoseconds since the start of the run.

pub mod checksum;

use rand_chacha::ChaCha8Rng;

/// Identifies a node in one simulated world. Dense, starting at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// One direction-agnostic connection between two nodes (a TCP connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// A timer set by a node; ids are unique within a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

/// An fsync request; its completion arrives as [`Event::FsyncDone`] with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FsyncId(pub u64);

/// What the kernel delivers to a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event<M> {
    /// First event of every incarnation. `restarted` is true after a crash: all volatile state
    /// is gone and the node must rebuild itself from its disk.
    Start { restarted: bool },
    /// A connection is established. `initiated` is true on the side that called `connect`.
    ConnUp {
        conn: ConnId,
        peer: NodeId,
        initiated: bool,
    },
    /// A connection is broken or could not be established. Messages in flight are lost.
    /// Delivered at most once per connection, and never after the node closed it itself.
    ConnDown { conn: ConnId, peer: NodeId },
    /// A message arrived on an established connection, in the order it was sent.
    Message { conn: ConnId, peer: NodeId, msg: M },
    /// A timer fired. `tag` is whatever the node passed to `set_timer`.
    Timer { timer: TimerId, tag: u64 },
    /// An fsync completed: everything written to `file` before the fsync call is durable.
    /// The name is shared with the request (see [`FileName`]), not copied.
    FsyncDone { fsync: FsyncId, file: FileName },
    /// The operator asked the process to stop (SIGTERM). A node with a graceful shutdown
    /// (a Kafka broker's controlled shutdown) does its work and then halts itself; others
    /// halt at once. The kernel kills a node that has not halted after the grace period.
    Stop,
}

impl<M> Event<M> {
    /// Converts the message type, for nodes that embed another node (a broker embedding a
    /// ZooKeeper client). Returns `Err(self)`-like `None` when the message does not convert.
    pub fn map_msg<M2>(self, f: impl FnOnce(M) -> Option<M2>) -> Option<Event<M2>> {
        Some(match self {
            Event::Start { restarted } => Event::Start { restarted },
            Event::ConnUp {
                conn,
                peer,
                initiated,
            } => Event::ConnUp {
                conn,
                peer,
                initiated,
            },
            Event::ConnDown { conn, peer } => Event::ConnDown { conn, peer },
            Event::Message { conn, peer, msg } => Event::Message {
                conn,
                peer,
                msg: f(msg)?,
            },
            Event::Timer { timer, tag } => Event::Timer { timer, tag },
            Event::FsyncDone { fsync, file } => Event::FsyncDone { fsync, file },
            Event::Stop => Event::Stop,
        })
    }

    /// A short name for timelines and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Start { restarted: false } => "start",
            Event::Start { restarted: true } => "restart",
            Event::ConnUp { .. } => "conn_up",
            Event::ConnDown { .. } => "conn_down",
            Event::Message { .. } => "message",
            Event::Timer { .. } => "timer",
            Event::FsyncDone { .. } => "fsync_done",
            Event::Stop => "stop",
        }
    }
}

/// What a node asks the kernel to do once its handler returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<M> {
    Connect {
        conn: ConnId,
        peer: NodeId,
    },
    Send {
        conn: ConnId,
        msg: M,
    },
    Close {
        conn: ConnId,
    },
    SetTimer {
        timer: TimerId,
        after_ns: u64,
        tag: u64,
    },
    CancelTimer {
        timer: TimerId,
    },
    Fsync {
        fsync: FsyncId,
        file: FileName,
    },
    /// The node stops itself (for example on detecting corrupted durable data). It behaves as
    /// crashed until the harness restarts it; the reason goes into the trace and report.
    Halt {
        reason: String,
    },
}

impl<M> Effect<M> {
    pub fn map_msg<M2>(self, f: impl FnOnce(M) -> M2) -> Effect<M2> {
        match self {
            Effect::Connect { conn, peer } => Effect::Connect { conn, peer },
            Effect::Send { conn, msg } => Effect::Send { conn, msg: f(msg) },
            Effect::Close { conn } => Effect::Close { conn },
            Effect::SetTimer {
                timer,
                after_ns,
                tag,
            } => Effect::SetTimer {
                timer,
                after_ns,
                tag,
            },
            Effect::CancelTimer { timer } => Effect::CancelTimer { timer },
            Effect::Fsync { fsync, file } => Effect::Fsync { fsync, file },
            Effect::Halt { reason } => Effect::Halt { reason },
        }
    }
}

/// A file name as fsync requests and completions carry it: shared, so that a node that
/// keeps the name of a file it fsyncs often (a log) hands it out without a copy per fsync.
pub type FileName = std::rc::Rc<str>;

/// Synchronous access to the node's own disk, as a process sees its page cache.
///
/// Writes land in a volatile buffer at once; only an fsync (an [`Effect`], completing as
/// [`Event::FsyncDone`]) makes them durable. Reads see the latest writes, but a read may be
/// corrupted by an injected fault: every durable format must carry checksums, and a node
/// that sees a bad checksum may read again (the fault model corrupts the read, not the media).
pub trait DiskIo {
    /// Appends bytes to the end of `file`, creating it if needed.
    fn append(&mut self, file: &str, bytes: &[u8]);
    /// [`append`](Self::append) of a buffer the caller gives up: the simulated disk keeps
    /// it as the pending write instead of copying it (a log append per txn per server).
    fn append_vec(&mut self, file: &str, bytes: Vec<u8>) {
        self.append(file, &bytes);
    }
    /// Replaces the whole content of `file`, creating it if needed.
    fn write_all(&mut self, file: &str, bytes: &[u8]);
    /// Shortens `file` to `len` bytes (no effect if it is already shorter).
    fn truncate(&mut self, file: &str, len: u64);
    /// Deletes `file` (no effect if it does not exist).
    fn remove(&mut self, file: &str);
    /// rename(2): `from` takes the name `to`, replacing what `to` held (no effect if `from`
    /// does not exist). The default copies and removes; the simulated disk moves the file
    /// with its durability (see `sim::disk`).
    fn rename(&mut self, from: &str, to: &str) {
        if let Some(bytes) = self.read(from) {
            self.write_all(to, &bytes);
            self.remove(from);
        }
    }
    /// The current content of `file`, or None if it does not exist.
    fn read(&mut self, file: &str) -> Option<Vec<u8>>;
    /// The current length of `file`, or None if it does not exist.
    fn len(&self, file: &str) -> Option<u64>;
    /// The names of all files, sorted.
    fn list(&self) -> Vec<String>;
}

/// Allocates run-unique ids for connections, timers and fsyncs.
#[derive(Debug, Default)]
pub struct IdSource {
    next: u64,
}

impl IdSource {
    pub fn new(first: u64) -> Self {
        IdSource { next: first }
    }

    pub fn next_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
}

/// The node's handle on the world for the duration of one event.
pub struct Context<'a, M> {
    now_ns: u64,
    node: NodeId,
    rng: &'a mut ChaCha8Rng,
    disk: &'a mut dyn DiskIo,
    ids: &'a mut IdSource,
    effects: &'a mut Vec<Effect<M>>,
}

impl<'a, M> Context<'a, M> {
    pub fn new(
        now_ns: u64,
        node: NodeId,
        rng: &'a mut ChaCha8Rng,
        disk: &'a mut dyn DiskIo,
        ids: &'a mut IdSource,
        effects: &'a mut Vec<Effect<M>>,
    ) -> Self {
        Context {
            now_ns,
            node,
            rng,
            disk,
            ids,
            effects,
        }
    }

    /// Virtual time of the event being handled, in nanoseconds.
    pub fn now(&self) -> u64 {
        self.now_ns
    }

    /// The node handling the event.
    pub fn me(&self) -> NodeId {
        self.node
    }

    /// The node's own seeded random stream.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng
    }

    /// The node's own disk.
    pub fn disk(&mut self) -> &mut dyn DiskIo {
        self.disk
    }

    /// Opens a connection to `peer`. Both ends get [`Event::ConnUp`] when it is established;
    /// the caller gets [`Event::ConnDown`] if it cannot be.
    pub fn connect(&mut self, peer: NodeId) -> ConnId {
        let conn = ConnId(self.ids.next_id());
        self.effects.push(Effect::Connect { conn, peer });
        conn
    }

    /// Sends on an established connection. Sending on a closed or broken connection is
    /// allowed and the message is lost, as writing to a dead socket would be.
    pub fn send(&mut self, conn: ConnId, msg: M) {
        self.effects.push(Effect::Send { conn, msg });
    }

    /// Closes a connection; the peer gets [`Event::ConnDown`].
    pub fn close(&mut self, conn: ConnId) {
        self.effects.push(Effect::Close { conn });
    }

    /// Sets a one-shot timer `after_ns` from now.
    pub fn set_timer(&mut self, after_ns: u64, tag: u64) -> TimerId {
        let timer = TimerId(self.ids.next_id());
        self.effects.push(Effect::SetTimer {
            timer,
            after_ns,
            tag,
        });
        timer
    }

    /// Cancels a timer; cancelling a fired or unknown timer does nothing.
    pub fn cancel_timer(&mut self, timer: TimerId) {
        self.effects.push(Effect::CancelTimer { timer });
    }

    /// Makes everything written to `file` so far durable; completes as [`Event::FsyncDone`].
    pub fn fsync(&mut self, file: &str) -> FsyncId {
        self.fsync_shared(&FileName::from(file))
    }

    /// [`fsync`](Self::fsync) of a name the node keeps shared: no copy of the name.
    pub fn fsync_shared(&mut self, file: &FileName) -> FsyncId {
        let fsync = FsyncId(self.ids.next_id());
        self.effects.push(Effect::Fsync {
            fsync,
            file: FileName::clone(file),
        });
        fsync
    }

    /// Stops this node: it behaves as crashed (volatile state gone) until restarted.
    pub fn halt(&mut self, reason: impl Into<String>) {
        self.effects.push(Effect::Halt {
            reason: reason.into(),
        });
    }

    /// Runs an embedded state machine that speaks another message type `M2` (a broker's
    /// ZooKeeper client) with the same clock, rng, disk and id space; its effects are
    /// converted into this node's message type.
    pub fn scoped<M2, R>(&mut self, f: impl FnOnce(&mut Context<'_, M2>) -> R) -> R
    where
        M: From<M2>,
    {
        let mut inner_effects: Vec<Effect<M2>> = Vec::new();
        let result = {
            let mut inner = Context {
                now_ns: self.now_ns,
                node: self.node,
                rng: &mut *self.rng,
                disk: &mut *self.disk,
                ids: &mut *self.ids,
                effects: &mut inner_effects,
            };
            f(&mut inner)
        };
        self.effects
            .extend(inner_effects.into_iter().map(|e| e.map_msg(M::from)));
        result
    }
}

/// A protocol state machine.
pub trait Node {
    type Msg;
    fn on_event(&mut self, ctx: &mut Context<'_, Self::Msg>, event: Event<Self::Msg>);
}

/// A disk with no faults, for driving nodes in unit tests without the kernel.
#[derive(Debug, Default, Clone)]
pub struct MemDisk {
    pub files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl DiskIo for MemDisk {
    fn append(&mut self, file: &str, bytes: &[u8]) {
        self.files
            .entry(file.to_string())
            .or_default()
            .extend_from_slice(bytes);
    }
    fn write_all(&mut self, file: &str, bytes: &[u8]) {
        self.files.insert(file.to_string(), bytes.to_vec());
    }
    fn truncate(&mut self, file: &str, len: u64) {
        if let Some(f) = self.files.get_mut(file) {
            f.truncate(len as usize);
        }
    }
    fn remove(&mut self, file: &str) {
        self.files.remove(file);
    }
    fn read(&mut self, file: &str) -> Option<Vec<u8>> {
        self.files.get(file).cloned()
    }
    fn len(&self, file: &str) -> Option<u64> {
        self.files.get(file).map(|f| f.len() as u64)
    }
    fn list(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
}
