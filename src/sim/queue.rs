//! The event queue: ordered by (time, insertion sequence), so events at the same instant are
//! handled in the order they were scheduled and nothing depends on heap internals.
//!
//! Depends on nothing else in the crate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Bits of a key that hold the slab slot; the insertion sequence sits above them.
const SLOT_BITS: u32 = 24;
const SEQ_BITS: u32 = 64 - SLOT_BITS;

/// A heap key is one `u128`: `time_ns << 64 | seq << 24 | slot`. The payload lives in a
/// slab, so the heap only moves 16-byte keys while sifting and a comparison is one `u128`
/// compare. Ordering by the key is ordering by (time, seq), since seqs are unique: the slot
/// below them never decides. 2^40 insertions and 2^24 items queued at once are far beyond
/// any run's event budget; both are checked.
fn key(time_ns: u64, seq: u64, slot: u32) -> u128 {
    ((time_ns as u128) << 64) | ((seq as u128) << SLOT_BITS) | slot as u128
}

fn key_time(key: u128) -> u64 {
    (key >> 64) as u64
}

fn key_slot(key: u128) -> usize {
    (key as u64 & ((1 << SLOT_BITS) - 1)) as usize
}

pub struct EventQueue<T> {
    heap: BinaryHeap<Reverse<u128>>,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<T> EventQueue<T> {
    #[inline]
    pub fn push(&mut self, time_ns: u64, item: T) {
        let seq = self.next_seq;
        assert!(seq < 1 << SEQ_BITS, "fewer than 2^40 queued events per run");
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(item);
                slot
            }
            None => {
                self.slab.push(Some(item));
                let slot = self.slab.len() - 1;
                assert!(
                    slot < 1 << SLOT_BITS,
                    "fewer than 2^24 events queued at once"
                );
                slot as u32
            }
        };
        self.heap.push(Reverse(key(time_ns, seq, slot)));
    }

    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let Reverse(key) = self.heap.pop()?;
        let slot = key_slot(key);
        let item = self.slab[slot].take().expect("queued slot");
        self.free.push(slot as u32);
        Some((key_time(key), item))
    }

    #[inline]
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|k| key_time(k.0))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_break_by_insertion_order() {
        let mut q = EventQueue::default();
        q.push(5, "b");
        q.push(3, "a");
        q.push(5, "c");
        q.push(5, "d");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(3, "a"), (5, "b"), (5, "c"), (5, "d")]);
    }
}
