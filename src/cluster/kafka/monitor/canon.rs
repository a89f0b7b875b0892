//! A partition's committed history as the monitor keeps it: the entries below the highest
//! HW any leader exposed, from offset 0, where an entry is a record or a hole.
//!
//! Holes enter it only from a log a lossy election made the history. Kafka's
//! `LocalLog.truncateTo` sets the LEO to the target even when the batch straddling it goes
//! whole (`LogSegment.truncateTo` cuts at the batch's position), so a follower truncated on
//! a diverging epoch inside a batch holds no record between its last batch kept and its LEO.
//! Elected while lacking committed records (an allowed loss: unclean, or a power loss with
//! `log.flush.interval.*` unset), such a leader has nothing at those offsets to serve, and
//! a consumer fetching there gets the records above them: the history from the point of loss
//! has the same holes (kafka-nemesis seed 500058, see
//! scenarios/regressions/kafka-nemesis-seed500058.json). Any other hole below a leader's HW
//! still stands where a record is owed, and k-log-match fires on it.

use super::replica::{Rec, ReplicaMon};

#[derive(Clone, Debug, Default)]
pub struct Canon {
    /// From offset 0: None where the history has a hole.
    entries: Vec<Option<Rec>>,
    /// Offsets [a, b) where the leader the history last restarted with had holes, at or
    /// above the point of loss: the only holes the history may take as it grows.
    holes: Vec<(u64, u64)>,
}

impl Canon {
    /// The committed offsets (records and holes).
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The entry at `o`: None past the end, Some(None) for a hole.
    pub fn get(&self, o: u64) -> Option<Option<&Rec>> {
        self.entries.get(o as usize).map(Option::as_ref)
    }

    /// Whether replica `m` holds at `o` what the history holds there (a hole where it has
    /// one; nothing past the end where it ends).
    pub fn matches(&self, m: &ReplicaMon, o: u64) -> bool {
        m.entry(o) == self.get(o)
    }

    /// The committed records (not holes) at offsets [a, b).
    pub fn records_in(&self, a: u64, b: u64) -> u64 {
        let b = (b.min(self.len())) as usize;
        let a = (a as usize).min(b);
        self.entries[a..b].iter().filter(|e| e.is_some()).count() as u64
    }

    /// The committed records (not holes) from offset `from` up.
    pub fn records_from(&self, from: u64) -> u64 {
        self.records_in(from, u64::MAX)
    }

    /// Whether the history may take a hole at offset `o` (see the module doc).
    pub fn hole_allowed(&self, o: u64) -> bool {
        self.holes.iter().any(|&(a, b)| a <= o && o < b)
    }

    /// Whether the history has a hole at `o`, or may take one there as it grows.
    pub fn has_hole(&self, o: u64) -> bool {
        match self.get(o) {
            Some(entry) => entry.is_none(),
            None => self.hole_allowed(o),
        }
    }

    /// Extends the history by one entry at its end.
    pub fn push(&mut self, entry: Option<Rec>) {
        debug_assert!(entry.is_some() || self.hole_allowed(self.len()));
        self.entries.push(entry);
    }

    /// The history restarts at `at` with the log of leader `m` (a lossy election): what lay
    /// above goes, and the leader's holes from `at` up are the new history's.
    pub fn restart(&mut self, at: u64, m: &ReplicaMon) {
        self.entries.truncate(at as usize);
        self.holes.clear();
        let mut o = at.max(m.start);
        while let Some(a) = m.hole_from(o) {
            let b = (a..m.leo()).find(|&x| !m.is_hole(x)).unwrap_or(m.leo());
            self.holes.push((a, b));
            o = b;
        }
    }
}
