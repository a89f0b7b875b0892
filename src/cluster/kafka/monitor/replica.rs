//! The monitor's mirror of one replica's log, record by record, kept up to date from the
//! replica's public state after each event, with the checks that need only that log:
//! k-dense, k-epoch-mono (batch epochs and the epoch cache) and k-idempotence.

use std::collections::{BTreeMap, BTreeSet};

use super::gap::AdoptedGap;
use super::values::ValueIndex;
use super::{finding, Finding, K_DENSE, K_EPOCH_MONO, K_IDEMPOTENCE};
use crate::kafka::epoch_cache::EpochEntry;
use crate::kafka::log::batch::Batch;
use crate::kafka::msg::BrokerId;
use crate::kafka::replica::{IsrState, Replica, Role};

/// A record as the monitor mirrors it: its batch's leader epoch, its value (unique per run
/// per send), and the producer id, producer epoch and sequence (-1 when not idempotent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rec {
    pub epoch: u32,
    pub value: u64,
    pub pid: i64,
    pub pepoch: i16,
    pub seq: i32,
}

/// The role as last seen, with the ISRs of a leader (committed, and the one its HW uses).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MonRole {
    #[default]
    None,
    Leader {
        epoch: u32,
        isr: Vec<BrokerId>,
        maximal: Vec<BrokerId>,
    },
    Follower,
}

/// What changes when anything the checks look at changes; equal summaries skip the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    start: u64,
    leo: u64,
    hw: u64,
    leader_epoch: Option<u32>,
    role: u8,
    isr_mask: u64,
    maximal_mask: u64,
    last: Option<(u64, u32, usize)>,
    epochs: (usize, Option<EpochEntry>),
}

fn mask(ids: &[BrokerId]) -> u64 {
    ids.iter().fold(0, |m, &b| m | (1u64 << (b % 64)))
}

impl Summary {
    pub fn of(r: &Replica) -> Summary {
        let (role, isr_mask, maximal_mask) = match r.role() {
            Role::None => (0, 0, 0),
            Role::Follower { .. } => (1, 0, 0),
            Role::Leader(s) => {
                let isr = mask(s.isr.isr());
                // The maximal ISR without its allocation: the committed one plus a member
                // being added.
                let adding = match s.isr {
                    IsrState::PendingExpand { adding, .. } => mask(&[adding]),
                    _ => 0,
                };
                (2, isr, isr | adding)
            }
        };
        let e = r.log.epochs.entries();
        Summary {
            start: r.log.log_start_offset(),
            leo: r.log_end_offset(),
            hw: r.high_watermark(),
            leader_epoch: r.leader_epoch(),
            role,
            isr_mask,
            maximal_mask,
            last: r
                .log
                .log
                .last_batch()
                .map(|b| (b.base_offset, b.leader_epoch, b.records.len())),
            epochs: (e.len(), e.last().copied()),
        }
    }

    /// The replica's HW.
    pub fn hw(&self) -> u64 {
        self.hw
    }
}

/// How the log changed at this event.
#[derive(Clone, Debug, Default)]
pub struct LogDelta {
    /// Entries cut from the end: (their first offset, the records, None for holes).
    pub removed: Option<(u64, Vec<Option<Rec>>)>,
    /// The first offset of records new at this event (== the LEO when none).
    pub added_from: u64,
    /// New records whose producer sequence does not follow the producer's previous record
    /// in this log because a fork junction lies between the two (allowed, reported).
    pub seq_breaks: Vec<SeqBreak>,
    /// The signature of a fork junction this event made ([`Junction`]).
    pub new_junction: Option<Junction>,
}

/// A fork junction as any copy of the log shows it: its offset and the values of the
/// records just below it and at it (values are unique per send, so a log holding both
/// there holds the junction, e.g. a follower that copied a forked leader's log).
pub type Junction = (u64, u64, u64);

/// A producer's sequence that breaks, or a value that repeats, across a fork junction
/// ([`ReplicaMon::junctions`]): the record and the producer's previous one (or the
/// value's first copy) in this log belong to different histories, so k-idempotence and
/// k-dense's uniqueness cannot compare them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqBreak {
    pub pid: i64,
    pub offset: u64,
    pub junction: u64,
    pub why: String,
}

/// The monitor's memory of one replica.
#[derive(Clone, Debug, Default)]
pub struct ReplicaMon {
    pub seen: bool,
    pub inc: u32,
    pub start: u64,
    /// The log from `start` to the LEO: None where the log has a hole (a truncation inside
    /// a batch leaves one below the LEO, see `Log::truncate_to`; a follower copies a
    /// leader's).
    recs: Vec<Option<Rec>>,
    /// Holes this replica's log was seen to get legitimately ([`Self::sync_log`]): kept
    /// across restarts, whose recovery gives the holes inside the log back.
    holes: Vec<(u64, u64)>,
    pub hw: u64,
    pub leader_epoch: Option<u32>,
    pub role: MonRole,
    /// (epoch, highest HW) of the current leadership, for the HW's monotonicity.
    pub tenure: Option<(u32, u64)>,
    pub epochs: Vec<EpochEntry>,
    /// Values of idempotent records -> offset (k-dense's uniqueness).
    values: ValueIndex,
    /// Producer id -> (producer epoch, last sequence, its offset) along the log.
    pids: BTreeMap<i64, (i16, i32, u64)>,
    /// Fork junctions, ascending: offsets from which this log holds records of another
    /// history than the records just below (a same-epoch fork, see [`Self::forked_at`]:
    /// the replica took the new history's records on top of abandoned ones). Sequences are
    /// not compared across a junction; kept across restarts below what the disk kept.
    pub junctions: Vec<u64>,
    /// Below this offset the log was found equal to the committed history.
    pub matched: u64,
    /// Records from this offset up may be of a history lost at an allowed election: they
    /// are not compared until the replica has truncated to it.
    pub suspect_above: Option<u64>,
    /// The leader epoch of the election that raised the suspicion: a record of that epoch
    /// or later appended above records still held from the abandoned history means the
    /// replica joined the new history without truncating the old one, and ends it.
    pub suspect_epoch: Option<u32>,
    /// The suspicion was raised by a leader that restarted and was appointed to the same
    /// leader epoch again (a controller that took office after the restart has no earlier
    /// broker epoch to compare with): the abandoned records and the new ones share epochs,
    /// so no fetcher's epoch check can find the fork (KIP-966's unflushed-data loss).
    pub suspect_same_epoch: bool,
    /// From this offset the replica keeps records such a re-appointment abandoned, with
    /// records of the new history appended on top: a fork real Kafka keeps for good.
    pub forked_at: Option<u64>,
    /// The replica lost unflushed records at a restart (from this offset) and has not
    /// caught up since, with the committed history and with the LEO it had before.
    pub lost_from: Option<u64>,
    /// The LEO before that loss.
    pub lost_upto: u64,
    /// ZooKeeper's leader epoch of the partition when the loss was seen: a leader of a
    /// later epoch judged the replica by fetches made after the loss.
    pub lost_in_epoch: Option<u32>,
    /// Records an adopted leader's log holds that this replica lacked then
    /// ([`super::gap`]): kept across restarts, as the loss is.
    pub adopted_gap: Option<AdoptedGap>,
    pub summary: Option<Summary>,
}

impl ReplicaMon {
    pub fn leo(&self) -> u64 {
        self.start + self.recs.len() as u64
    }
    /// The record at `offset`; None past the LEO, below the start, or in a hole.
    pub fn rec(&self, offset: u64) -> Option<&Rec> {
        let i = offset.checked_sub(self.start)?;
        self.recs.get(i as usize)?.as_ref()
    }

    /// The entry at `offset`: None outside the log (below the start, at or past the LEO),
    /// Some(None) in a hole.
    pub fn entry(&self, offset: u64) -> Option<Option<&Rec>> {
        let i = offset.checked_sub(self.start)?;
        self.recs.get(i as usize).map(Option::as_ref)
    }

    /// The leader epoch the epoch cache gives a hole at `offset` (None if it is no hole,
    /// or no entry covers it): the epoch of the batch whose truncation left it, as Kafka's
    /// `truncateFromEnd(target)` keeps the entry of the straddling batch's epoch, and the
    /// one any fetcher's epoch check sees there.
    pub fn hole_epoch(&self, offset: u64) -> Option<u32> {
        if !self.is_hole(offset) {
            return None;
        }
        let e = self.epochs.iter().rev().find(|e| e.start_offset <= offset);
        e.map(|e| e.epoch)
    }

    /// Whether `offset` lies in a hole of the log (between the start and the LEO).
    pub fn is_hole(&self, offset: u64) -> bool {
        let i = offset.checked_sub(self.start);
        i.and_then(|i| self.recs.get(i as usize))
            .is_some_and(Option::is_none)
    }

    /// The first hole at or above `offset`.
    pub fn hole_from(&self, offset: u64) -> Option<u64> {
        (offset.max(self.start)..self.leo()).find(|&o| self.is_hole(o))
    }

    /// Whether the holes [a, b) were seen made legitimately before.
    fn hole_known(&self, a: u64, b: u64) -> bool {
        (a..b).all(|o| self.holes.iter().any(|&(x, y)| x <= o && o < y))
    }

    fn note_hole(&mut self, a: u64, b: u64) {
        if a < b && !self.hole_known(a, b) {
            self.holes.push((a, b));
        }
    }

    /// Forgets the log (a restart reloads it from disk) but keeps what is about content:
    /// the suspicion and the loss.
    pub fn reset(&mut self, inc: u32) {
        *self = ReplicaMon {
            seen: true,
            inc,
            suspect_above: self.suspect_above,
            suspect_epoch: self.suspect_epoch,
            suspect_same_epoch: self.suspect_same_epoch,
            forked_at: self.forked_at,
            lost_from: self.lost_from,
            lost_upto: self.lost_upto,
            lost_in_epoch: self.lost_in_epoch,
            adopted_gap: self.adopted_gap,
            junctions: std::mem::take(&mut self.junctions),
            holes: std::mem::take(&mut self.holes),
            ..ReplicaMon::default()
        };
    }

    /// Brings the mirror up to date with the replica's log, judging every new record.
    /// `junctions` are the fork junctions known in the partition's logs; `leader_hole(a, b)`
    /// says whether the leader this replica follows has no record at offsets [a, b) (a
    /// follower that copies the leader's log across a hole gets the same hole);
    /// `history_hole(o)` whether the committed history has (or may take) a hole at `o`.
    ///
    /// k-dense on holes: a hole is legitimate only as a truncation inside a batch leaves
    /// it (the LEO set to the target, below which the straddling batch went: the log held
    /// entries past the new LEO before the cut), as a copy of the leader's hole, or as a
    /// restart gives back one seen made so. Any other gap fires.
    pub fn sync_log(
        &mut self,
        r: &Replica,
        junctions: &BTreeSet<Junction>,
        leader_hole: &dyn Fn(u64, u64) -> bool,
        history_hole: &dyn Fn(u64) -> bool,
        out: &mut Vec<Finding>,
    ) -> LogDelta {
        let log = &r.log.log;
        let leo = log.log_end_offset();
        let old_leo = self.leo();
        if log.log_start_offset() != self.start {
            self.cut(self.start);
            self.start = log.log_start_offset();
        }
        // The longest prefix still in the log: whole batches are cut (and a hole may be
        // left in their place), so compare the last entry of each candidate end.
        let mut keep = self.leo().min(leo);
        while keep > self.start {
            let b = log.batches_from(keep - 1).next();
            let theirs = b
                .filter(|b| b.base_offset < keep)
                .map(|b| rec_of(b, (keep - 1 - b.base_offset) as usize));
            if theirs.as_ref() == self.rec(keep - 1) && (theirs.is_some() || self.is_hole(keep - 1))
            {
                break;
            }
            keep = match b.filter(|b| b.base_offset < keep) {
                Some(b) => b.base_offset.max(self.start),
                None => keep - 1,
            };
        }
        let mut delta = LogDelta {
            removed: None,
            added_from: keep,
            seq_breaks: Vec::new(),
            new_junction: None,
        };
        if keep < self.leo() {
            delta.removed = Some((keep, self.cut(keep)));
        }
        if leo > keep {
            let fork = self.starts_fork(keep);
            if fork {
                self.add_junction(keep);
            }
            for b in log.batches_from(keep) {
                self.append(b, r.me, junctions, leader_hole, &mut delta.seq_breaks, out);
            }
            let end = self.leo();
            if leo > end {
                // A hole at the end: the LEO past the last batch.
                let cut_inside = delta.removed.is_some() && old_leo > leo;
                if !cut_inside && !self.hole_known(end, leo) {
                    let msg = format!(
                        "replica on broker {}: LEO {leo} past its last record at {}, which \
                         no truncation inside a batch explains",
                        r.me,
                        end.saturating_sub(1)
                    );
                    finding(out, K_DENSE, msg);
                }
                self.note_hole(end, leo);
                self.recs.resize((leo - self.start) as usize, None);
            }
            if fork && keep > self.start {
                let below = self.rec(keep - 1).map(|x| x.value);
                let at = self.rec(keep).map(|x| x.value);
                if let (Some(below), Some(at)) = (below, at) {
                    delta.new_junction = Some((keep, below, at));
                }
            }
        }
        self.end_suspicion(keep, delta.removed.is_some(), history_hole);
        delta
    }

    /// A suspicion ends when the replica cuts its log to the point of the allowed loss (it
    /// dropped the abandoned history), or when it appends records of the new history's
    /// epoch or later while still holding records of the abandoned one above that point:
    /// then it took the new history on top of the old without truncating, and its records
    /// below its HW are compared with the committed history again (K-LOG-MATCH sees the
    /// fork at equal offsets, as a pre-KIP-101 follower leaves it).
    ///
    /// Except after a same-epoch re-appointment ([`Self::suspect_same_epoch`]): there the
    /// follower's `lastFetchedEpoch` is the leader's own epoch, the leader places the fetch
    /// inside its log, and a 2.7+ follower takes the new records on top of the abandoned
    /// ones without any check failing. The replica is then forked ([`Self::forked_at`]):
    /// the suspicion stays (nothing from it up is compared) until the replica cuts its log
    /// to it or a new leader adopts its records.
    ///
    /// A hole the committed history has too (a lossy election's leader's, see `canon`) is
    /// no record lacked: a replica cut to the point of loss over the same hole holds what
    /// the history holds there (kafka-nemesis seed 500058: the leader's other follower,
    /// truncated on the same diverging epoch inside the same batch).
    fn end_suspicion(&mut self, kept: u64, cut: bool, history_hole: &dyn Fn(u64) -> bool) {
        let Some(s) = self.suspect_above else {
            return;
        };
        let joined = self.suspect_epoch.is_some_and(|e| {
            (kept.max(s)..self.leo()).any(|o| self.rec(o).is_some_and(|r| r.epoch >= e))
        });
        // A hole above the suspicion stands where the abandoned history's batch was: the
        // replica lacks the new history's records there for good, as if it kept old ones
        // (kafka-nemesis seed 72965: cut to a leader's batch boundary inside its own
        // batch of the re-appointed epoch).
        let hole = (s.max(self.start)..self.leo()).find(|&o| self.is_hole(o) && !history_hole(o));
        if self.leo() <= s || (cut && kept <= s && hole.is_none()) {
            self.end_suspicion_at(s);
        } else if self.suspect_same_epoch {
            // The abandoned records are of the re-appointed epoch themselves: only new
            // records appended above kept ones (or above the hole) make the fork.
            let top = self.rec(self.leo().saturating_sub(1)).is_some();
            if (kept > s || hole.is_some()) && self.leo() > kept && top {
                self.forked_at.get_or_insert(s);
            }
        } else if joined {
            self.end_suspicion_at(s);
        }
    }

    /// Whether this log and `other` hold different records at one offset from `from` up
    /// in the same leader epoch: two histories of one epoch, as a same-epoch
    /// re-appointment leaves them (its abandoned records on one replica, its new ones on
    /// another). A follower finds a divergence by epochs only (2.7+ Partition.readRecords:
    /// the leader's end offset for the follower's last fetched epoch; KIP-279's
    /// OffsetsForLeaderEpoch before), and every truncation point it can reach is the end
    /// of an epoch at least that offset's, past the offset: the record stays, and once the
    /// follower takes newer records it is forked for good, whichever epoch the new leader
    /// leads.
    pub fn same_epoch_divergence(&self, other: &ReplicaMon, from: u64) -> bool {
        let lo = from.max(self.start).max(other.start);
        let hi = self.leo().min(other.leo());
        (lo..hi).any(|o| match (self.rec(o), other.rec(o)) {
            (Some(a), Some(b)) => a.epoch == b.epoch && a.value != b.value,
            // A record where `other` has a hole its epoch cache gives the record's epoch:
            // the hole carries no epoch of its own, so no check can tell the two apart
            // (kafka-nemesis seed 500058: the records a lossy election's leader had cut
            // inside a batch, kept by the replica that led them).
            (Some(a), None) => other.hole_epoch(o) == Some(a.epoch),
            _ => false,
        })
    }

    /// Whether records appended at `keep` make a fork junction: they land on top of records
    /// a same-epoch re-appointment abandoned (from the suspicion up to `keep`), and no
    /// junction above the suspicion exists yet (later appends continue the new history).
    /// The same condition as [`Self::end_suspicion`]'s fork, judged before the append so
    /// that the new records' sequences are not compared with the abandoned ones.
    fn starts_fork(&self, keep: u64) -> bool {
        let Some(s) = self.suspect_above else {
            return false;
        };
        self.suspect_same_epoch && s < keep && !self.junctions.iter().any(|&j| j > s)
    }

    fn add_junction(&mut self, offset: u64) {
        if let Err(i) = self.junctions.binary_search(&offset) {
            self.junctions.insert(i, offset);
        }
    }

    /// The highest fork junction above offset `a` and at or below offset `b`: records at
    /// the two are of different histories.
    fn junction_between(&self, a: u64, b: u64) -> Option<u64> {
        self.junctions
            .iter()
            .rev()
            .find(|&&j| a < j && j <= b)
            .copied()
    }

    /// Forgets junctions at or above `offset` (the records above them are gone).
    pub fn drop_junctions_from(&mut self, offset: u64) {
        self.junctions.retain(|&j| j < offset);
    }

    /// The replica no longer holds records of an abandoned history from `s` up.
    pub fn end_suspicion_at(&mut self, s: u64) {
        self.suspect_above = None;
        self.suspect_epoch = None;
        self.suspect_same_epoch = false;
        self.forked_at = None;
        self.matched = self.matched.min(s);
    }

    /// Cuts the mirror to `offset`, returning the entries cut.
    fn cut(&mut self, offset: u64) -> Vec<Option<Rec>> {
        let i = (offset.saturating_sub(self.start) as usize).min(self.recs.len());
        let removed = self.recs.split_off(i);
        self.values.retain_offsets(|o| o < offset);
        self.matched = self.matched.min(offset);
        self.drop_junctions_from(offset);
        self.pids.clear();
        for (i, rec) in self.recs.iter().enumerate() {
            let Some(rec) = rec else { continue };
            if rec.pid >= 0 {
                let o = self.start + i as u64;
                self.pids.insert(rec.pid, (rec.pepoch, rec.seq, o));
            }
        }
        removed
    }

    fn append(
        &mut self,
        b: &Batch,
        me: BrokerId,
        junctions: &BTreeSet<Junction>,
        leader_hole: &dyn Fn(u64, u64) -> bool,
        breaks: &mut Vec<SeqBreak>,
        out: &mut Vec<Finding>,
    ) {
        let next = self.leo();
        let copied_hole = b.base_offset > next
            && (self.hole_known(next, b.base_offset) || leader_hole(next, b.base_offset));
        if copied_hole {
            self.note_hole(next, b.base_offset);
            self.recs
                .resize((b.base_offset - self.start) as usize, None);
        }
        if (b.base_offset != next && !copied_hole) || b.records.is_empty() {
            let msg = format!(
                "replica on broker {me}: batch at offset {} with {} records follows LEO {next}",
                b.base_offset,
                b.records.len()
            );
            finding(out, K_DENSE, msg);
        }
        if let Some(last) = self.recs.iter().rev().find_map(|r| r.as_ref()) {
            if b.leader_epoch < last.epoch {
                let msg = format!(
                    "replica on broker {me}: batch of epoch {} at offset {} after epoch {}",
                    b.leader_epoch, b.base_offset, last.epoch
                );
                finding(out, K_EPOCH_MONO, msg);
            }
        }
        for i in 0..b.records.len() {
            let rec = rec_of(b, i);
            let offset = self.leo();
            // A copy of a forked log holds its junction too.
            if let Some(Some(below)) = self.recs.last() {
                if junctions.contains(&(offset, below.value, rec.value)) {
                    self.add_junction(offset);
                }
            }
            self.check_producer(&rec, offset, me, breaks, out);
            self.recs.push(Some(rec));
        }
    }

    /// k-dense's uniqueness of values among idempotent records and k-idempotence's
    /// contiguous, never repeated sequences per producer id and epoch. Two records of a
    /// producer with a fork junction between them are of different histories: a break
    /// there is recorded as allowed ([`SeqBreak`]), not reported.
    fn check_producer(
        &mut self,
        rec: &Rec,
        offset: u64,
        me: BrokerId,
        breaks: &mut Vec<SeqBreak>,
        out: &mut Vec<Finding>,
    ) {
        if rec.pid < 0 {
            return;
        }
        if let Some(first) = self.values.insert(rec.value, offset) {
            // The same send in both histories of a fork (a retry the re-appointed leader
            // appended anew, at another offset): allowed and recorded like a sequence
            // break there (kafka-nemesis seed 9404).
            let junction = self.junction_between(first, offset);
            let why = format!("value {} at offsets {first} and {offset}", rec.value);
            match junction {
                Some(junction) => breaks.push(SeqBreak {
                    pid: rec.pid,
                    offset,
                    junction,
                    why,
                }),
                None => finding(out, K_DENSE, format!("replica on broker {me}: {why}")),
            }
        }
        if let Some(&(pepoch, last, at)) = self.pids.get(&rec.pid) {
            let bad = if rec.pepoch < pepoch {
                Some(format!("producer epoch {} after {pepoch}", rec.pepoch))
            } else if rec.pepoch == pepoch && rec.seq != last.wrapping_add(1) {
                Some(format!("sequence {} after {last}", rec.seq))
            } else {
                None
            };
            let junction = self.junction_between(at, offset);
            match (bad, junction) {
                (Some(why), Some(junction)) => breaks.push(SeqBreak {
                    pid: rec.pid,
                    offset,
                    junction,
                    why,
                }),
                (Some(why), None) => {
                    let msg = format!(
                        "replica on broker {me}: producer {} at offset {offset}: {why}",
                        rec.pid
                    );
                    finding(out, K_IDEMPOTENCE, msg);
                }
                (None, _) => {}
            }
        }
        self.pids.insert(rec.pid, (rec.pepoch, rec.seq, offset));
    }

    /// k-epoch-mono on the epoch cache, when it changed: strictly increasing epochs and
    /// start offsets, none past the LEO, and each entry's epoch on exactly the records from
    /// its start to the next entry's.
    pub fn check_epoch_cache(&mut self, r: &Replica, out: &mut Vec<Finding>) {
        let entries = r.log.epochs.entries();
        if entries == self.epochs.as_slice() {
            return;
        }
        self.epochs = entries.to_vec();
        let me = r.me;
        let leo = self.leo();
        let mut bad = None;
        for (i, e) in entries.iter().enumerate() {
            let next = entries.get(i + 1);
            if next.is_some_and(|n| n.epoch <= e.epoch || n.start_offset <= e.start_offset) {
                bad = Some(format!(
                    "entries {e:?} then {:?} do not increase",
                    next.unwrap()
                ));
            } else if e.start_offset > leo {
                bad = Some(format!("entry {e:?} starts past the LEO {leo}"));
            } else if e.start_offset < leo {
                let end = next.map_or(leo, |n| n.start_offset.min(leo));
                // Holes carry no epoch: the entry's records are the ones around them. An
                // entry over a hole alone is what Kafka's `truncateFromEnd(target)` keeps
                // when the straddling batch began the epoch.
                let lo = e.start_offset.max(self.start);
                let first = (lo..end).find_map(|o| self.rec(o)).map(|x| x.epoch);
                let last = (lo..end).rev().find_map(|o| self.rec(o)).map(|x| x.epoch);
                let all_hole = first.is_none() && (lo..end).all(|o| self.is_hole(o));
                if !all_hole && (first != Some(e.epoch) || last != Some(e.epoch)) {
                    bad = Some(format!(
                        "entry {e:?} disagrees with the log: records {}..{end} have epochs \
                         {first:?}..{last:?}",
                        e.start_offset
                    ));
                }
            }
            if bad.is_some() {
                break;
            }
        }
        if bad.is_none()
            && leo > self.start
            && entries.first().is_none_or(|e| e.start_offset > self.start)
        {
            bad = Some(format!("no entry covers the log start {}", self.start));
        }
        if let Some(why) = bad {
            finding(
                out,
                K_EPOCH_MONO,
                format!("epoch cache on broker {me}: {why}"),
            );
        }
    }
}

fn rec_of(b: &Batch, i: usize) -> Rec {
    let seq = if b.producer.is_idempotent() {
        b.producer.base_sequence.wrapping_add(i as i32)
    } else {
        -1
    };
    Rec {
        epoch: b.leader_epoch,
        value: b.records[i].value,
        pid: b.producer.producer_id,
        pepoch: b.producer.producer_epoch,
        seq,
    }
}
