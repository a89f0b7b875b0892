//! The event queue: ordered by (time, insertion sequence), so events at the same instant are
//! handled in the order they were scheduled and nothing depends on heap internals.
//!
//! Depends on nothing else in the crate.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A heap key: payloads live in a slab so the heap only moves small keys while sifting, and
/// (time, seq) is packed into one integer so that a comparison is a single `u128` compare.
#[derive(PartialEq, Eq)]
struct Key {
    /// `time_ns << 64 | seq`.
    order: u128,
    slot: u32,
}

impl Key {
    fn time_ns(&self) -> u64 {
        (self.order >> 64) as u64
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    // Reversed: BinaryHeap is a max-heap and we want the earliest (time, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.order.cmp(&self.order)
    }
}

pub struct EventQueue<T> {
    heap: BinaryHeap<Key>,
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
    pub fn push(&mut self, time_ns: u64, item: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(item);
                slot
            }
            None => {
                self.slab.push(Some(item));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 queued events")
            }
        };
        let order = ((time_ns as u128) << 64) | seq as u128;
        self.heap.push(Key { order, slot });
    }

    pub fn pop(&mut self) -> Option<(u64, T)> {
        let key = self.heap.pop()?;
        let item = self.slab[key.slot as usize].take().expect("queued slot");
        self.free.push(key.slot);
        Some((key.time_ns(), item))
    }

    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(Key::time_ns)
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
