//! Idempotent-producer state of one partition replica (KIP-98; Kafka's
//! `ProducerStateManager` and `ProducerAppendInfo`).
//!
//! Per producer id: the producer epoch and the metadata of its last five batches (first and
//! last sequence, first and last offset). A leader checks every batch from an idempotent
//! producer before appending it: a batch whose sequence range equals a cached one is a
//! duplicate and is answered with the original offsets without appending; an older producer
//! epoch is fenced; a first sequence that does not follow the last one is out of order (a new
//! epoch, or a producer this replica has no state for, must start at 0). Followers apply
//! batches without checks, as Kafka does for replication appends.
//!
//! The state is a function of the log: it is rebuilt from the batches on restart and after
//! every truncation, so it is truncated with the log. (Kafka keeps snapshot files to make that
//! cheap; here the batches are in memory, so the replay is the snapshot.) Sequences do not
//! wrap at i32::MAX, which the workload never reaches.
//!
//! May depend on: `kafka::log::batch` only.

use super::log::batch::Batch;
use std::collections::{BTreeMap, VecDeque};

/// Kafka's `ProducerStateEntry.NumBatchesToRetain`, which is also why at most five requests
/// may be in flight per connection with idempotence.
pub const BATCHES_RETAINED: usize = 5;

/// Where one batch of a producer landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: u64,
    pub last_offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub producer_epoch: i16,
    /// The last `BATCHES_RETAINED` batches, oldest first.
    pub batches: VecDeque<BatchMeta>,
}

impl ProducerEntry {
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// The verdict on a batch a leader is about to append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or in sequence: append it.
    Append,
    /// Already in the log: answer with these offsets, do not append.
    Duplicate { first_offset: u64, last_offset: u64 },
    /// OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder { expected_first_seq: i32 },
    /// INVALID_PRODUCER_EPOCH (ProducerFenced before Kafka 2.7): an older producer epoch.
    Fenced { current_epoch: i16 },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerState {
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerState {
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }
    pub fn producer_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.producers.keys().copied()
    }

    /// The leader's check of a batch from a client (Kafka's duplicate lookup, then
    /// `checkProducerEpoch`, then `checkSequence`). `batch.base_offset` is not used.
    pub fn check(&self, batch: &Batch) -> SequenceCheck {
        let p = batch.producer;
        if !p.is_idempotent() {
            return SequenceCheck::Append;
        }
        let first_seq = p.base_sequence;
        let last_seq = batch.last_sequence();
        let Some(entry) = self.producers.get(&p.producer_id) else {
            return if first_seq == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder {
                    expected_first_seq: 0,
                }
            };
        };
        if p.producer_epoch == entry.producer_epoch {
            let dup = entry
                .batches
                .iter()
                .find(|b| b.first_seq == first_seq && b.last_seq == last_seq);
            if let Some(d) = dup {
                return SequenceCheck::Duplicate {
                    first_offset: d.first_offset,
                    last_offset: d.last_offset,
                };
            }
        }
        if p.producer_epoch < entry.producer_epoch {
            return SequenceCheck::Fenced {
                current_epoch: entry.producer_epoch,
            };
        }
        let expected = if p.producer_epoch > entry.producer_epoch {
            0
        } else {
            entry.last_seq().map_or(0, |s| s + 1)
        };
        if first_seq != expected {
            return SequenceCheck::OutOfOrder {
                expected_first_seq: expected,
            };
        }
        SequenceCheck::Append
    }

    /// Records a batch that is now in the log (leader after `check`, or follower).
    pub fn update(&mut self, batch: &Batch) {
        let p = batch.producer;
        if !p.is_idempotent() {
            return;
        }
        let entry = self
            .producers
            .entry(p.producer_id)
            .or_insert_with(|| ProducerEntry {
                producer_epoch: p.producer_epoch,
                batches: VecDeque::new(),
            });
        if p.producer_epoch != entry.producer_epoch {
            entry.producer_epoch = p.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: p.base_sequence,
            last_seq: batch.last_sequence(),
            first_offset: batch.base_offset,
            last_offset: batch.last_offset(),
        });
        if entry.batches.len() > BATCHES_RETAINED {
            entry.batches.pop_front();
        }
    }

    /// The state the given log (its batches in order) implies.
    pub fn rebuild<'a>(batches: impl IntoIterator<Item = &'a Batch>) -> ProducerState {
        let mut state = ProducerState::default();
        for b in batches {
            state.update(b);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::log::batch::{ProducerStamp, Record};

    fn b(base: u64, pid: i64, epoch: i16, seq: i32, n: u64) -> Batch {
        Batch {
            base_offset: base,
            leader_epoch: 1,
            producer: ProducerStamp {
                producer_id: pid,
                producer_epoch: epoch,
                base_sequence: seq,
            },
            records: (0..n).map(|i| Record { key: 0, value: i }).collect(),
        }
    }

    /// Appends like a leader: check, then update if it may append.
    fn lead(state: &mut ProducerState, batch: Batch) -> SequenceCheck {
        let verdict = state.check(&batch);
        if verdict == SequenceCheck::Append {
            state.update(&batch);
        }
        verdict
    }

    #[test]
    fn in_sequence_batches_append_and_a_retry_gets_the_original_offset() {
        let mut s = ProducerState::default();
        assert_eq!(lead(&mut s, b(0, 9, 0, 0, 2)), SequenceCheck::Append);
        assert_eq!(lead(&mut s, b(2, 9, 0, 2, 3)), SequenceCheck::Append);
        // The retry of the first batch, as the leader would see it at LEO 5.
        assert_eq!(
            lead(&mut s, b(5, 9, 0, 0, 2)),
            SequenceCheck::Duplicate {
                first_offset: 0,
                last_offset: 1
            }
        );
        assert_eq!(s.entry(9).unwrap().last_seq(), Some(4));
    }

    #[test]
    fn gaps_and_unknown_producers_are_out_of_order() {
        let mut s = ProducerState::default();
        assert_eq!(
            lead(&mut s, b(0, 9, 0, 3, 1)),
            SequenceCheck::OutOfOrder {
                expected_first_seq: 0
            }
        );
        lead(&mut s, b(0, 9, 0, 0, 1));
        assert_eq!(
            lead(&mut s, b(1, 9, 0, 2, 1)),
            SequenceCheck::OutOfOrder {
                expected_first_seq: 1
            }
        );
        // A non-idempotent batch is never checked.
        assert_eq!(
            lead(
                &mut s,
                Batch {
                    producer: ProducerStamp::NONE,
                    ..b(1, 9, 0, 0, 1)
                }
            ),
            SequenceCheck::Append
        );
    }

    #[test]
    fn an_older_producer_epoch_is_fenced_and_a_new_one_restarts_at_zero() {
        let mut s = ProducerState::default();
        lead(&mut s, b(0, 9, 1, 0, 3));
        assert_eq!(
            lead(&mut s, b(3, 9, 0, 3, 1)),
            SequenceCheck::Fenced { current_epoch: 1 }
        );
        assert_eq!(
            lead(&mut s, b(3, 9, 2, 3, 1)),
            SequenceCheck::OutOfOrder {
                expected_first_seq: 0
            }
        );
        assert_eq!(lead(&mut s, b(3, 9, 2, 0, 1)), SequenceCheck::Append);
        // The bump forgot the old epoch's batches: its retry is now fenced, not a duplicate.
        assert_eq!(
            lead(&mut s, b(4, 9, 1, 0, 3)),
            SequenceCheck::Fenced { current_epoch: 2 }
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            assert_eq!(lead(&mut s, b(i, 9, 0, i as i32, 1)), SequenceCheck::Append);
        }
        assert_eq!(s.entry(9).unwrap().batches.len(), BATCHES_RETAINED);
        // Batch 2 is still cached; batch 1 is not, so its retry is out of order.
        assert!(matches!(
            s.check(&b(7, 9, 0, 2, 1)),
            SequenceCheck::Duplicate {
                first_offset: 2,
                ..
            }
        ));
        assert!(matches!(
            s.check(&b(7, 9, 0, 1, 1)),
            SequenceCheck::OutOfOrder {
                expected_first_seq: 7
            }
        ));
    }

    #[test]
    fn rebuilt_from_a_truncated_log_forgets_the_cut_batches() {
        let log = [b(0, 9, 0, 0, 2), b(2, 4, 0, 0, 1), b(3, 9, 0, 2, 2)];
        let full = ProducerState::rebuild(&log);
        assert_eq!(full.entry(9).unwrap().last_seq(), Some(3));
        let cut = ProducerState::rebuild(&log[..2]);
        assert_eq!(cut.entry(9).unwrap().last_seq(), Some(1));
        // After the cut the batch at 3 is not a duplicate any more: it may be appended again.
        assert_eq!(cut.check(&log[2]), SequenceCheck::Append);
        assert_eq!(full.producer_ids().collect::<Vec<_>>(), vec![4, 9]);
    }
}
