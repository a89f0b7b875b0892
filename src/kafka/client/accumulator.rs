//! The producer's record accumulator (the Java client's `RecordAccumulator` and
//! `ProducerBatch`) and the idempotent producer's sequence bookkeeping (the idempotent half
//! of `TransactionManager`, as in Kafka 2.1-2.4, before KIP-360's epoch bump).
//!
//! Records go into per-partition queues of batches. A batch gets its producer id, epoch and
//! base sequence the first time it is drained, and keeps them through every retry: a retry
//! under a new sequence could be appended a second time if the first attempt was in fact
//! appended. A retried batch goes back into its queue in sequence order, and a partition
//! whose head batch is a retry drains only when that batch is the first one still in flight
//! (`RecordAccumulator.drain`'s `firstInFlightSequence` rule), so retries go out in order.
//!
//! Sequences (`Sequences`): per partition the next sequence to assign, the last one
//! acknowledged, and the batches holding sequences that have not completed. A batch that
//! fails for good with its sequence possibly used (expired in flight) leaves the partition
//! "unresolved": no new batch drains until the in-flight ones complete, and if the last
//! acknowledged sequence then does not meet the next one, the producer id is reset (a new
//! InitProducerId; sequences start again at 0), as `shouldResetProducerStateAfterResolving
//! Sequences` does. OUT_OF_ORDER_SEQUENCE_NUMBER on the batch that is next in sequence means
//! the broker lost data: the producer id is reset (`Sender.failBatch` in 2.x).
//!
//! May depend on: `kafka::msg`, `kafka::log::batch`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::super::log::batch::{ProducerStamp, Record};
use super::super::msg::TopicPartition;

/// Records a batch holds at most (stands in for `batch.size`).
pub const BATCH_MAX_RECORDS: usize = 16;

/// One batch of records for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    pub id: u64,
    pub tp: TopicPartition,
    /// The records and the history operation id of each.
    pub records: Vec<(u64, Record)>,
    pub created_ns: u64,
    /// Times it was sent.
    pub attempts: u32,
    /// Not to be sent again before this time (`retry.backoff.ms` after a failed attempt).
    pub retry_at_ns: u64,
    /// Producer id, epoch and base sequence, once drained by an idempotent producer.
    pub stamp: Option<ProducerStamp>,
    /// An attempt may have been appended (its answer was lost, or the broker appended but
    /// could not acknowledge): a final failure is then unknown, not a certain one.
    pub maybe_appended: bool,
    /// Its sequence was moved down after an earlier batch failed for good
    /// (`ProducerBatch.sequenceHasBeenReset`).
    pub sequence_reset: bool,
    /// Failed by `delivery.timeout.ms` while in flight: its records are completed; the
    /// answer, when it comes, only settles the sequence bookkeeping.
    pub expired: bool,
}

impl ProducerBatch {
    pub fn base_sequence(&self) -> Option<i32> {
        self.stamp.map(|s| s.base_sequence)
    }
    pub fn last_sequence(&self) -> Option<i32> {
        self.stamp
            .map(|s| s.base_sequence + self.records.len() as i32 - 1)
    }
    pub fn plain_records(&self) -> Vec<Record> {
        self.records.iter().map(|(_, r)| *r).collect()
    }
}

/// Batches waiting to be sent, per partition, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Accumulator {
    queues: BTreeMap<TopicPartition, VecDeque<ProducerBatch>>,
    next_batch_id: u64,
    /// Batches in the queues: the producer asks after every event whether any waits, and
    /// most events find none, so it is counted rather than looked for queue by queue.
    waiting: usize,
    /// No waiting batch was created before this time (a lower bound: a batch drained
    /// since does not raise it). `delivery.timeout.ms` expiry, asked after every event,
    /// needs no look at the queues while the cutoff lies below it.
    oldest_ns: u64,
}

impl Accumulator {
    /// Adds a record to the partition's last batch if that batch was never sent and has
    /// room, else to a new batch.
    pub fn append(&mut self, tp: &TopicPartition, op_id: u64, record: Record, now_ns: u64) {
        let queue = self.queues.entry(tp.clone()).or_default();
        if let Some(last) = queue.back_mut() {
            if last.attempts == 0 && last.records.len() < BATCH_MAX_RECORDS {
                last.records.push((op_id, record));
                return;
            }
        }
        self.next_batch_id += 1;
        self.waiting += 1;
        self.oldest_ns = self.oldest_ns.min(now_ns);
        queue.push_back(ProducerBatch {
            id: self.next_batch_id,
            tp: tp.clone(),
            records: vec![(op_id, record)],
            created_ns: now_ns,
            attempts: 0,
            retry_at_ns: 0,
            stamp: None,
            maybe_appended: false,
            sequence_reset: false,
            expired: false,
        });
    }

    /// Puts a batch back for a retry: at the front of its queue, or, when it has a
    /// sequence, before the first batch with a higher one (`insertInSequenceOrder`).
    pub fn reenqueue(&mut self, batch: ProducerBatch) {
        self.waiting += 1;
        self.oldest_ns = self.oldest_ns.min(batch.created_ns);
        let queue = self.queues.entry(batch.tp.clone()).or_default();
        let at = match batch.base_sequence() {
            Some(seq) => queue
                .iter()
                .position(|b| b.base_sequence().is_none_or(|s| s > seq))
                .unwrap_or(queue.len()),
            None => 0,
        };
        queue.insert(at, batch);
    }

    pub fn head(&self, tp: &TopicPartition) -> Option<&ProducerBatch> {
        self.queues.get(tp).and_then(|q| q.front())
    }

    pub fn pop_head(&mut self, tp: &TopicPartition) -> Option<ProducerBatch> {
        let head = self.queues.get_mut(tp).and_then(|q| q.pop_front());
        self.waiting -= usize::from(head.is_some());
        head
    }

    /// Partitions with a batch waiting.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        if self.waiting == 0 {
            return Vec::new();
        }
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        debug_assert_eq!(
            self.waiting,
            self.queues.values().map(VecDeque::len).sum::<usize>()
        );
        self.waiting == 0
    }

    /// The waiting batches of `tp`.
    pub fn waiting(&self, tp: &TopicPartition) -> impl Iterator<Item = &ProducerBatch> {
        self.queues.get(tp).into_iter().flatten()
    }

    /// Removes and returns every waiting batch created at or before `cutoff_ns`
    /// (`delivery.timeout.ms` expiry).
    pub fn expire(&mut self, cutoff_ns: u64) -> Vec<ProducerBatch> {
        let mut out = Vec::new();
        if self.waiting == 0 || cutoff_ns < self.oldest_ns {
            return out;
        }
        for queue in self.queues.values_mut() {
            // Nearly always nothing expires: leave the queue untouched, without the split.
            if !queue.iter().any(|b| b.created_ns <= cutoff_ns) {
                continue;
            }
            let (old, keep): (Vec<_>, Vec<_>) =
                queue.drain(..).partition(|b| b.created_ns <= cutoff_ns);
            out.extend(old);
            queue.extend(keep);
        }
        let left = self.queues.values().flatten();
        self.oldest_ns = left.map(|b| b.created_ns).min().unwrap_or(u64::MAX);
        self.waiting -= out.len();
        out
    }

    /// Moves every waiting batch of `tp` with a sequence at or above `from` down by
    /// `by` (see [`Sequences::adjust_for_failed`]).
    pub fn shift_sequences(&mut self, tp: &TopicPartition, from: i32, by: i32) {
        for b in self.queues.get_mut(tp).into_iter().flatten() {
            shift(b, from, by);
        }
    }
}

/// Moves a batch's sequence down by `by` when it is at or above `from`.
pub fn shift(b: &mut ProducerBatch, from: i32, by: i32) {
    if let Some(s) = b.stamp.as_mut() {
        if s.base_sequence >= from {
            s.base_sequence -= by;
            assert!(s.base_sequence >= 0, "sequence of {} went negative", b.tp);
            b.sequence_reset = true;
        }
    }
}

/// The idempotent producer's id and per-partition sequence state.
#[derive(Clone, Debug, Default)]
pub struct Sequences {
    /// (producer id, producer epoch), once InitProducerId answered.
    pub pid: Option<(i64, i16)>,
    next: BTreeMap<TopicPartition, i32>,
    last_acked: BTreeMap<TopicPartition, i32>,
    /// Base sequences of batches drained and not yet completed, with their batch ids.
    in_flight: BTreeMap<TopicPartition, BTreeMap<i32, u64>>,
    unresolved: BTreeSet<TopicPartition>,
    /// Producer ids given up so far.
    pub resets: u64,
}

impl Sequences {
    pub fn has_pid(&self, pid: i64) -> bool {
        self.pid.is_some_and(|(p, _)| p == pid)
    }

    /// Stamps a batch drained for the first time and takes its sequence range.
    pub fn stamp(&mut self, batch: &mut ProducerBatch) {
        let (producer_id, producer_epoch) = self.pid.expect("stamping needs a producer id");
        let next = self.next.entry(batch.tp.clone()).or_insert(0);
        batch.stamp = Some(ProducerStamp {
            producer_id,
            producer_epoch,
            base_sequence: *next,
        });
        *next += batch.records.len() as i32;
        self.track(batch);
    }

    fn track(&mut self, batch: &ProducerBatch) {
        if let Some(seq) = batch.base_sequence() {
            let tp = batch.tp.clone();
            self.in_flight.entry(tp).or_default().insert(seq, batch.id);
        }
    }

    /// The lowest base sequence among the partition's uncompleted batches.
    pub fn first_in_flight(&self, tp: &TopicPartition) -> Option<i32> {
        self.in_flight
            .get(tp)
            .and_then(|m| m.keys().next().copied())
    }

    pub fn is_unresolved(&self, tp: &TopicPartition) -> bool {
        self.unresolved.contains(tp)
    }

    pub fn mark_unresolved(&mut self, tp: &TopicPartition) {
        self.unresolved.insert(tp.clone());
    }

    fn last_acked(&self, tp: &TopicPartition) -> i32 {
        self.last_acked.get(tp).copied().unwrap_or(-1)
    }

    /// Whether `seq` is the one after the last acknowledged (`isNextSequence`).
    pub fn is_next(&self, tp: &TopicPartition, seq: i32) -> bool {
        seq - self.last_acked(tp) == 1
    }

    /// A batch is done (acknowledged, or failed for good): it no longer holds its sequence.
    /// An acknowledgement under the current producer id moves the last acknowledged one.
    pub fn done(&mut self, batch: &ProducerBatch, acked: bool) {
        let Some(stamp) = batch.stamp else { return };
        if !self.has_pid(stamp.producer_id) {
            return;
        }
        if let Some(m) = self.in_flight.get_mut(&batch.tp) {
            m.retain(|_, id| *id != batch.id);
        }
        if acked {
            let last = batch.last_sequence().expect("stamped");
            let entry = self.last_acked.entry(batch.tp.clone()).or_insert(-1);
            *entry = (*entry).max(last);
        }
    }

    /// OUT_OF_ORDER_SEQUENCE_NUMBER is retried when the batch is not the next one in
    /// sequence (an earlier batch is still to land) or its sequence was moved after a
    /// failure (`TransactionManager.canRetry`, 2.x).
    pub fn can_retry_out_of_order(&self, batch: &ProducerBatch) -> bool {
        let Some(stamp) = batch.stamp else {
            return false;
        };
        self.has_pid(stamp.producer_id)
            && !self.is_unresolved(&batch.tp)
            && (batch.sequence_reset || !self.is_next(&batch.tp, stamp.base_sequence))
    }

    /// A batch was rejected for good by the broker (nothing appended): later batches of
    /// the partition move down by its record count so they do not fail as out of order
    /// (`adjustSequencesDueToFailedBatch`). Returns (from, by) for the waiting batches; the
    /// caller shifts them and the ones in flight.
    pub fn adjust_for_failed(&mut self, batch: &ProducerBatch) -> Option<(i32, i32)> {
        let stamp = batch.stamp?;
        if !self.has_pid(stamp.producer_id) {
            return None;
        }
        let next = self.next.get_mut(&batch.tp)?;
        let by = batch.records.len() as i32;
        *next -= by;
        assert!(*next >= 0, "next sequence of {} went negative", batch.tp);
        if let Some(m) = self.in_flight.get_mut(&batch.tp) {
            let moved: Vec<(i32, u64)> = m
                .iter()
                .filter(|(s, _)| **s > stamp.base_sequence)
                .map(|(s, id)| (*s, *id))
                .collect();
            for (s, id) in moved {
                m.remove(&s);
                m.insert(s - by, id);
            }
        }
        Some((stamp.base_sequence + 1, by))
    }

    /// Partitions whose unresolved state can now be settled: with nothing in flight, a
    /// partition whose last acknowledged sequence meets the next one is resolved; one where
    /// it does not needs a new producer id (returns true).
    pub fn resolve(&mut self) -> bool {
        let mut reset = false;
        let unresolved: Vec<TopicPartition> = self.unresolved.iter().cloned().collect();
        for tp in unresolved {
            if self.in_flight.get(&tp).is_some_and(|m| !m.is_empty()) {
                continue;
            }
            let next = self.next.get(&tp).copied().unwrap_or(0);
            if self.is_next(&tp, next) {
                self.unresolved.remove(&tp);
            } else {
                reset = true;
            }
        }
        reset
    }

    /// Gives up the producer id and every sequence (`resetProducerId`).
    pub fn reset(&mut self) {
        *self = Sequences {
            resets: self.resets + 1,
            ..Sequences::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: u64) -> Record {
        Record { key: 0, value: v }
    }

    #[test]
    fn records_join_an_unsent_batch_and_retries_go_back_in_sequence_order() {
        let tp = TopicPartition::new("t", 0);
        let mut acc = Accumulator::default();
        let mut seqs = Sequences {
            pid: Some((7, 0)),
            ..Sequences::default()
        };
        acc.append(&tp, 1, rec(1), 0);
        acc.append(&tp, 2, rec(2), 0);
        let mut a = acc.pop_head(&tp).unwrap();
        assert_eq!(a.records.len(), 2, "two records share the unsent batch");
        seqs.stamp(&mut a);
        a.attempts = 1;
        acc.append(&tp, 3, rec(3), 1);
        let mut b = acc.pop_head(&tp).unwrap();
        seqs.stamp(&mut b);
        b.attempts = 1;
        assert_eq!((a.base_sequence(), b.base_sequence()), (Some(0), Some(2)));
        acc.append(&tp, 4, rec(4), 2);
        acc.reenqueue(b.clone());
        acc.reenqueue(a.clone());
        assert_eq!(acc.head(&tp).unwrap().id, a.id, "the lower sequence first");
        assert_eq!(seqs.first_in_flight(&tp), Some(0));
        seqs.done(&a, true);
        assert_eq!(seqs.first_in_flight(&tp), Some(2));
        assert!(seqs.is_next(&tp, 2));
        assert!(
            !seqs.can_retry_out_of_order(&b),
            "next in line: the broker lost data"
        );
    }

    #[test]
    fn a_failed_batch_moves_later_sequences_down_and_unresolved_ones_reset_the_pid() {
        let tp = TopicPartition::new("t", 0);
        let mut acc = Accumulator::default();
        let mut seqs = Sequences {
            pid: Some((7, 0)),
            ..Sequences::default()
        };
        let mut batches = Vec::new();
        for v in 0..3 {
            acc.append(&tp, v, rec(v), 0);
            let mut b = acc.pop_head(&tp).unwrap();
            b.attempts = 1;
            seqs.stamp(&mut b);
            batches.push(b);
        }
        let (from, by) = seqs.adjust_for_failed(&batches[0]).unwrap();
        seqs.done(&batches[0], false);
        for b in &mut batches[1..] {
            shift(b, from, by);
        }
        assert_eq!(batches[1].base_sequence(), Some(0));
        assert!(batches[1].sequence_reset);
        assert_eq!(seqs.first_in_flight(&tp), Some(0));
        assert!(
            seqs.can_retry_out_of_order(&batches[1]),
            "its sequence was reset"
        );
        // Batch 2 expires in flight: unresolved until batch 1 completes.
        seqs.mark_unresolved(&tp);
        assert!(!seqs.resolve(), "batches still in flight");
        seqs.done(&batches[1], true);
        seqs.done(&batches[2], false);
        assert!(
            seqs.resolve(),
            "seq 1 was never acknowledged: reset the producer id"
        );
        seqs.reset();
        assert_eq!((seqs.pid, seqs.resets), (None, 1));
    }
}
