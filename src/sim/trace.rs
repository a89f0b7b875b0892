//! The trace: a 64-bit hash folded over every delivered event, and an optional timeline of
//! readable lines kept for reports.
//!
//! The hash uses its own fixed mixing function rather than `std`'s `DefaultHasher`, whose
//! algorithm may change between Rust releases: a pinned trace hash must mean the same run on
//! every toolchain. The timeline is only captured on request (a replay for a report), because
//! formatting every message would dominate the cost of a run.
//!
//! Depends on: node (ids), time.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use crate::node::NodeId;

/// A fixed, portable 64-bit hasher for trace payloads.
pub struct TraceHasher {
    state: u64,
}

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher {
            state: 0x243F_6A88_85A3_08D3,
        }
    }
}

impl TraceHasher {
    #[inline]
    fn fold(&mut self, word: u64) {
        self.state = (self.state ^ word)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(31);
    }
}

impl Hasher for TraceHasher {
    #[inline]
    fn finish(&self) -> u64 {
        crate::sim::rng::mix64(self.state)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.fold(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.fold(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.fold(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.fold(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.fold(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.fold(i as u64);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.fold(i as u64);
    }
}

/// The hash of one value with [`TraceHasher`].
#[inline]
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = TraceHasher::default();
    value.hash(&mut h);
    h.finish()
}

/// One line of a timeline.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimelineLine {
    /// Virtual time of the event, nanoseconds.
    pub time_ns: u64,
    /// Index of the event among delivered events (1-based) or 0 for kernel notes (faults).
    pub event: u64,
    /// Node name ("zk1", "n0") or "world" for faults.
    pub node: String,
    /// Event kind: start, restart, conn_up, conn_down, message, timer, fsync_done, fault.
    pub kind: String,
    /// What happened, readable.
    pub detail: String,
}

impl std::fmt::Display for TimelineLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} #{:<7} {:<8} {:<10} {}",
            crate::sim::time::fmt_ns(self.time_ns),
            self.event,
            self.node,
            self.kind,
            self.detail
        )
    }
}

/// The running fold, the event counter, and (when enabled) the last lines of the timeline.
pub struct Trace {
    hash: u64,
    events: u64,
    capture: usize,
    lines: VecDeque<TimelineLine>,
    /// Per-event checksums, for finding the first divergent event between two runs.
    checksums: Option<Vec<u64>>,
}

impl Trace {
    pub fn new(capture: usize, record_checksums: bool) -> Trace {
        Trace {
            hash: 0x1357_9BDF_2468_ACE0,
            events: 0,
            capture,
            lines: VecDeque::new(),
            checksums: record_checksums.then(Vec::new),
        }
    }

    /// Folds one delivered event; returns its index (1-based).
    #[inline]
    pub fn fold(&mut self, time_ns: u64, node: NodeId, kind: u64, payload: u64) -> u64 {
        let mut h = TraceHasher { state: self.hash };
        h.fold(time_ns);
        h.fold(((node.0 as u64) << 8) | kind);
        h.fold(payload);
        self.hash = h.state;
        self.events += 1;
        if let Some(sums) = &mut self.checksums {
            sums.push(self.hash);
        }
        self.events
    }

    pub fn capturing(&self) -> bool {
        self.capture > 0
    }

    pub fn push_line(&mut self, line: TimelineLine) {
        if self.capture == 0 {
            return;
        }
        if self.lines.len() == self.capture {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    pub fn hash(&self) -> u64 {
        crate::sim::rng::mix64(self.hash ^ self.events)
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn lines(&self) -> Vec<TimelineLine> {
        self.lines.iter().cloned().collect()
    }

    pub fn checksums(&self) -> Option<&[u64]> {
        self.checksums.as_deref()
    }
}

/// Formats a trace hash as 16 hex digits.
pub fn fmt_hash(hash: u64) -> String {
    format!("{hash:016x}")
}
