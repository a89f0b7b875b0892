//! A replicated grow-only counter, the kernel's example protocol.
//!
//! Every node counts its own increments and gossips its view of everybody's counts over FIFO
//! connections; views merge by taking the maximum per origin. A node is the only authority on
//! its own count, so the safety rule is: no node may ever have seen a count of origin `o`
//! greater than what `o` itself has durably counted. To keep that across crashes, a node
//! writes its new count to disk (with a checksum) and announces it only once the fsync is
//! done. On restart it reads its count back, re-reading on a bad checksum and halting if
//! the read keeps failing, so corrupted state is never served.
//!
//! Bug mode `gossip-before-fsync` announces the new count as soon as it is written, before
//! the fsync completes; a crash then loses the write while peers already hold the count.
//! Bug mode `merge-overwrites` replaces the view with each received one, so counts can go
//! backwards.
//!
//! Depends on: node.

use std::rc::Rc;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::node::checksum::crc32c;
use crate::node::{ConnId, Context, Event, FileName, FsyncId, Node, NodeId};

const STATE_FILE: &str = "counter.state";
const TIMER_INCREMENT: u64 = 1;
const TIMER_GOSSIP: u64 = 2;
const TIMER_RECONNECT_BASE: u64 = 1 << 32;
const READ_ATTEMPTS: u32 = 4;

/// Bug modes of the counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
pub enum CounterBug {
    /// Announce a new count before it is durable.
    #[serde(rename = "gossip-before-fsync")]
    GossipBeforeFsync,
    /// Replace the view with a received one instead of merging by maximum.
    #[serde(rename = "merge-overwrites")]
    MergeOverwrites,
}

/// Configuration shared by all counter nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterConfig {
    pub nodes: u32,
    pub increment_interval_ns: u64,
    pub gossip_interval_ns: u64,
    pub reconnect_backoff_ns: u64,
    pub bugs: Vec<CounterBug>,
}

/// The gossip message: the sender's view, one count per origin.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Gossip {
    pub view: Rc<[u64]>,
}

pub struct CounterNode {
    config: Rc<CounterConfig>,
    me: NodeId,
    /// Durable own count (what a restart reads back).
    durable: u64,
    /// Highest count written to disk, durable or not.
    written: u64,
    /// The fsync in flight and the count it makes durable.
    syncing: Option<(FsyncId, u64)>,
    view: Vec<u64>,
    /// The payload of the last gossip sent (see `shared_view`).
    sent: Rc<[u64]>,
    /// The connection this node uses to send to each peer.
    out: Vec<Option<ConnId>>,
    up: bool,
    /// `STATE_FILE` as the kernel's shared name, so that an fsync copies no name.
    state_file: FileName,
    /// `CounterBug::MergeOverwrites` is on, read once: the merge asks per message.
    merge_overwrites: bool,
}

impl CounterNode {
    pub fn new(config: Rc<CounterConfig>, me: NodeId) -> Self {
        let n = config.nodes as usize;
        CounterNode {
            me,
            durable: 0,
            written: 0,
            syncing: None,
            view: vec![0; n],
            sent: Rc::from(vec![0; n]),
            out: vec![None; n],
            up: false,
            state_file: FileName::from(STATE_FILE),
            merge_overwrites: config.bugs.contains(&CounterBug::MergeOverwrites),
            config,
        }
    }

    /// This node's view of every origin's count.
    pub fn view(&self) -> &[u64] {
        &self.view
    }

    /// The count this node has durably recorded for itself.
    pub fn durable_count(&self) -> u64 {
        self.durable
    }

    /// False until the node has read its state back after a start.
    pub fn is_serving(&self) -> bool {
        self.up
    }

    fn has_bug(&self, bug: CounterBug) -> bool {
        self.config.bugs.contains(&bug)
    }

    fn start(&mut self, ctx: &mut Context<'_, Gossip>) {
        let Some(count) = self.recover(ctx) else {
            return;
        };
        self.durable = count;
        self.written = count;
        self.view[self.me.index()] = count;
        self.up = true;
        for peer in 0..self.config.nodes {
            if peer != self.me.0 {
                self.out[peer as usize] = Some(ctx.connect(NodeId(peer)));
            }
        }
        let first = ctx.rng().gen_range(1..=self.config.increment_interval_ns);
        ctx.set_timer(first, TIMER_INCREMENT);
        ctx.set_timer(self.config.gossip_interval_ns, TIMER_GOSSIP);
    }

    /// Reads the durable count, re-reading on a bad checksum; halts if it never reads clean.
    fn recover(&mut self, ctx: &mut Context<'_, Gossip>) -> Option<u64> {
        for _ in 0..READ_ATTEMPTS {
            let Some(bytes) = ctx.disk().read(STATE_FILE) else {
                return Some(0);
            };
            if let Some(count) = decode_state(&bytes) {
                return Some(count);
            }
        }
        ctx.halt(format!(
            "{STATE_FILE}: checksum mismatch on {READ_ATTEMPTS} reads"
        ));
        None
    }

    fn increment(&mut self, ctx: &mut Context<'_, Gossip>) {
        let next = self.written + 1;
        ctx.disk().write_all(STATE_FILE, &encode_state(next));
        self.written = next;
        if self.has_bug(CounterBug::GossipBeforeFsync) {
            // Deliberately wrong: the count is announced while only in the page cache.
            self.view[self.me.index()] = next;
            self.broadcast(ctx);
        }
        if self.syncing.is_none() {
            let fsync = ctx.fsync_shared(&self.state_file);
            self.syncing = Some((fsync, next));
        }
        let jitter = ctx
            .rng()
            .gen_range(0..=self.config.increment_interval_ns / 2);
        ctx.set_timer(
            self.config.increment_interval_ns / 2 + jitter,
            TIMER_INCREMENT,
        );
    }

    fn fsync_done(&mut self, ctx: &mut Context<'_, Gossip>, fsync: FsyncId) {
        let Some((pending, count)) = self.syncing else {
            return;
        };
        assert_eq!(pending, fsync, "fsyncs complete in order");
        assert!(count >= self.durable, "durable count went backwards");
        self.durable = count;
        self.syncing = None;
        if self.written > self.durable {
            let fsync = ctx.fsync_shared(&self.state_file);
            self.syncing = Some((fsync, self.written));
        }
        if self.durable > self.view[self.me.index()] {
            self.view[self.me.index()] = self.durable;
        }
        self.broadcast(ctx);
    }

    /// The view as a shared message payload. The last one sent is reused while it is
    /// unchanged, and overwritten in place once every copy of it was delivered, so steady
    /// gossip allocates nothing.
    fn shared_view(&mut self) -> Rc<[u64]> {
        // Compared in place: a call to `memcmp` costs more than a few counts.
        let unchanged = self.sent.len() == self.view.len()
            && self.sent.iter().zip(&self.view).all(|(a, b)| a == b);
        if !unchanged {
            match Rc::get_mut(&mut self.sent) {
                Some(buf) if buf.len() == self.view.len() => buf.copy_from_slice(&self.view),
                _ => self.sent = Rc::from(&self.view[..]),
            }
        }
        Rc::clone(&self.sent)
    }

    fn broadcast(&mut self, ctx: &mut Context<'_, Gossip>) {
        let view = self.shared_view();
        for conn in self.out.iter().flatten() {
            ctx.send(
                *conn,
                Gossip {
                    view: Rc::clone(&view),
                },
            );
        }
    }

    fn merge(&mut self, view: &[u64]) {
        if self.merge_overwrites {
            // Deliberately wrong: an older view from another peer can replace a newer one.
            self.view.copy_from_slice(view);
            return;
        }
        for (mine, theirs) in self.view.iter_mut().zip(view) {
            *mine = (*mine).max(*theirs);
        }
    }
}

impl Node for CounterNode {
    type Msg = Gossip;

    fn on_event(&mut self, ctx: &mut Context<'_, Gossip>, event: Event<Gossip>) {
        match event {
            Event::Start { .. } => self.start(ctx),
            Event::Timer { tag, .. } if !self.up => {
                let _ = tag;
            }
            Event::Timer {
                tag: TIMER_INCREMENT,
                ..
            } => self.increment(ctx),
            Event::Timer {
                tag: TIMER_GOSSIP, ..
            } => {
                self.broadcast(ctx);
                ctx.set_timer(self.config.gossip_interval_ns, TIMER_GOSSIP);
            }
            Event::Timer { tag, .. } => {
                let peer = (tag - TIMER_RECONNECT_BASE) as u32;
                self.out[peer as usize] = Some(ctx.connect(NodeId(peer)));
            }
            Event::ConnUp {
                conn,
                initiated: true,
                ..
            } => {
                let view = self.shared_view();
                ctx.send(conn, Gossip { view });
            }
            Event::ConnUp { .. } => {}
            Event::ConnDown { conn, peer } => {
                if self.out[peer.index()] == Some(conn) {
                    self.out[peer.index()] = None;
                    let backoff = self.config.reconnect_backoff_ns;
                    ctx.set_timer(backoff, TIMER_RECONNECT_BASE + peer.0 as u64);
                }
            }
            Event::Message { msg, .. } => self.merge(&msg.view),
            Event::FsyncDone { fsync, .. } => self.fsync_done(ctx, fsync),
            Event::Stop => ctx.halt("stopped"),
        }
    }
}

fn encode_state(count: u64) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&count.to_le_bytes());
    let crc = crc32c(&bytes[..8]);
    bytes[8..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode_state(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != 12 {
        return None;
    }
    let (body, sum) = bytes.split_at(8);
    let expected = u32::from_le_bytes(sum.try_into().ok()?);
    (crc32c(body) == expected).then(|| u64::from_le_bytes(body.try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_encoding_detects_any_single_bit_flip() {
        let good = encode_state(41);
        assert_eq!(decode_state(&good), Some(41));
        for bit in 0..good.len() * 8 {
            let mut bad = good;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(decode_state(&bad), None, "bit {bit}");
        }
    }
}
