//! The one excuse k-leader-complete's candidate clause (a running member of ZooKeeper's ISR
//! has a LEO reaching the committed history) owes a replica that did not lose records: a
//! new leader's log was adopted as the history, and the member lacked part of it; or a
//! restart ended the member's log below a hole at its end, which the leader had counted.
//!
//! Real Kafka shows this shape (kafka-nemesis seed 120959, see
//! scenarios/regressions/kafka-nemesis-seed120959.json): after power losses, broker 0 keeps
//! epoch-0 records 5..9 under an HW of 9 which the others lost; broker 1 rejoins the ISR in
//! epoch 1 with other records from 5 up (KAFKA-7128's rule holds: the epoch-1 leader's HW
//! never passed 5). Broker 0 is then elected for epoch 2 from that ISR and keeps its HW of
//! 9 (`Partition.makeLeader` never lowers it). Broker 1's first fetch carries
//! lastFetchedEpoch 1, is answered the diverging epoch (0, 10), and it truncates to its own
//! end of epoch 0, 5 (`LeaderEpochFileCache.endOffsetFor`,
//! `AbstractFetcherThread`'s truncation on fetch): for one fetch round trip an ISR member
//! sits below the committed offset, then fetches 5..9 back. `Partition.isFollowerInSync`
//! does not remove it, nor should it.
//!
//! The same debt after a restart (kafka-nemesis seed 159432, see
//! scenarios/regressions/kafka-nemesis-seed159432.json): broker 1, re-appointed to epoch 0
//! after a power loss (KIP-966's shape), wrote one batch from 37 past 47 over the records
//! it lost. Under broker 2's epoch 1 (whose epoch 0 ends at 47) its fetch is answered the
//! diverging epoch (0, 47) and it truncates to 47 inside that batch: the batch goes whole
//! and the LEO is 47 over a hole from 37 (`LocalLog.truncateTo`). Its fetch from 47 brings
//! it into the ISR (`Partition.maybeExpandIsr`: the leader knows its fetch offset only).
//! It stops cleanly and restarts: recovery ends the log at its last batch, 37
//! (`LogLoader`, `LogSegment.readNextOffset`), and it is in the ISR below the committed 47
//! until it fetches 37..47 from the leader. The leader's HW stays within 47 meanwhile: it
//! still counts the replica at its last fetch offset.
//!
//! The excuse is narrow, so that protocol bugs with the same symptom still fire (KAFKA-13141:
//! a leader counting a diverging fetch's offset as the follower's LEO):
//! - it is made only by an adoption, for a replica whose log then differed from the new
//!   leader's (or ended before it) below the leader's HW, or by a restart that dropped
//!   nothing but a hole at the log's end (covered up to the LEO the hole reached);
//! - it covers the committed history only up to that HW: a leader of the new epoch starts
//!   with every follower's LEO unknown (`Replica.resetReplicaState`), so its HW passes that
//!   point only over fetches of its own epoch;
//! - it covers a LEO down to the first record the replica lacked, not below (a truncation
//!   by epochs stops at the divergence);
//! - it ends at the first record the replica took since the adoption that is not the
//!   committed one, and is cleared once the replica holds the committed history again by
//!   content (never by a count: a log of the right length with other records does not
//!   close the gap).

use super::canon::Canon;
use super::replica::ReplicaMon;

/// What a replica owes of the committed history: what it lacked of a leader's log when
/// that log was adopted as the history, or the hole a restart dropped from its log's end
/// ([`ReplicaMon::note_dropped_hole`]: `from` is then the recovered LEO, `upto` and `cap`
/// the LEO it had).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdoptedGap {
    /// The first offset where the replica's log differed from the leader's, or its LEO if
    /// it was a shorter copy.
    pub from: u64,
    /// The leader's LEO then: the gap closes only once the replica holds that much.
    pub upto: u64,
    /// The leader's HW then: the committed history the adoption exposed at once.
    pub cap: u64,
    /// The lowest offset the replica's log has been rewritten from since (a truncation, a
    /// fetch, a restart's recovery): records from here up came after the adoption and must
    /// be the committed ones.
    pub rewritten_from: u64,
}

impl ReplicaMon {
    /// A leader took office and its log (mirrored in `leader`) is the history from `from`
    /// up, with HW `hw`: if this replica lacks any of the records below that HW, it owes
    /// them from now on, excused.
    pub fn note_adoption(&mut self, leader: &ReplicaMon, from: u64, hw: u64) {
        let top = leader.leo();
        let cap = hw.min(top);
        let first = from.max(self.start);
        let d = (first..self.leo().min(top))
            .find(|&o| self.rec(o) != leader.rec(o))
            .or((self.leo() < top).then_some(self.leo()));
        let Some(d) = d.filter(|&d| d < cap) else {
            return;
        };
        let leo = self.leo();
        self.owe(AdoptedGap {
            from: d,
            upto: top,
            cap,
            rewritten_from: leo,
        });
    }

    /// A restart's recovery ended the log at `from`, below a hole at its end up to the
    /// LEO `upto` it had (a truncation inside a batch left it, see `Log::truncate_to`):
    /// the leader counted the replica at `upto`, its last fetch offset, so until the
    /// replica fetches from `from` again the leader's HW stays within `upto` while the
    /// replica stays in the ISR. It owes the committed records from `from` to `upto`.
    pub fn note_dropped_hole(&mut self, from: u64, upto: u64) {
        self.owe(AdoptedGap {
            from,
            upto,
            cap: upto,
            rewritten_from: from,
        });
    }

    /// Merged with a gap already owed (the committed history did not restart in between:
    /// [`Self::forget_gap`] is called when it does).
    fn owe(&mut self, new: AdoptedGap) {
        self.adopted_gap = Some(match self.adopted_gap {
            Some(g) => AdoptedGap {
                from: g.from.min(new.from),
                upto: g.upto.max(new.upto),
                cap: g.cap.max(new.cap),
                rewritten_from: g.rewritten_from.min(new.rewritten_from),
            },
            None => new,
        });
    }

    /// The committed history restarted: what an earlier adoption exposed is no longer it.
    pub fn forget_gap(&mut self) {
        self.adopted_gap = None;
    }

    /// The replica's log holds new entries from `offset` up after this event.
    pub fn note_rewrite(&mut self, offset: u64) {
        if let Some(g) = &mut self.adopted_gap {
            g.rewritten_from = g.rewritten_from.min(offset);
        }
    }

    /// Whether an adopted gap excuses a LEO below the committed history `canon` now. Ends
    /// the gap when a record taken since the adoption differs from the committed one, and
    /// clears it when the replica holds the committed history (and the adopted leader's
    /// LEO) again.
    pub fn gap_excuses(&mut self, canon: &Canon) -> bool {
        let Some(g) = self.adopted_gap else {
            return false;
        };
        let committed = canon.len();
        let differs = |o: u64| !canon.matches(self, o);
        let taken = g.from.max(g.rewritten_from).max(self.start);
        let wrong = (taken..self.leo().min(committed)).any(differs);
        let closed = self.leo() >= committed.max(g.upto)
            && !(g.from.max(self.start)..committed).any(differs);
        if wrong || closed {
            self.adopted_gap = None;
            return false;
        }
        // Below the gap's start the replica dropped records it held in common with the
        // adopted leader: no divergence explains that.
        self.leo() >= g.from && committed <= g.cap
    }
}
