//! Change stamps: a cheap, exact "nothing changed" test for the online monitor, which looks
//! after each event of a broker at every replica the event handed out for change (see
//! `kafka::broker::replicas`), while most of those come out unchanged.
//!
//! Every object the monitor reads a replica's state from (the [`crate::kafka::replica::Replica`]
//! itself, its `PartitionLog`, the `Log` and the `EpochCache`) holds a [`Stamp`] and takes a
//! fresh one at construction and at the start of every method that takes `&mut self`: those
//! methods are the only way to change their private fields. Two exceptions: a leader's
//! views of its followers, which change at every follower fetch and which the monitor does
//! not read, are left out of the replica's stamp (`Replica::stamps` says how); and
//! `EpochCache::assign` takes a fresh stamp only when it changes an entry, as most calls
//! (an append in the epoch the cache ends with) change nothing. A stamp is
//! never handed out twice on a thread (a run stays on one thread: its topic names are
//! `Rc`), and a clone copies the stamp with the state it stands for, so two equal stamps
//! mean the same state.
//!
//! A stamp is not part of the value: it compares equal to every other stamp and hashes to
//! nothing, so the types keep their equality. Use [`Stamp::get`] to compare stamps.
//!
//! May depend on: nothing.

use std::cell::Cell;
use std::hash::{Hash, Hasher};

thread_local! {
    static NEXT: Cell<u64> = const { Cell::new(0) };
}

#[derive(Clone, Copy, Debug)]
pub struct Stamp(u64);

impl Stamp {
    /// A stamp no object on this thread has held.
    pub fn fresh() -> Stamp {
        Stamp(NEXT.with(|n| {
            let v = n.get() + 1;
            n.set(v);
            v
        }))
    }
    /// Marks a change: the holder's state is new.
    pub fn bump(&mut self) {
        *self = Stamp::fresh();
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

impl Default for Stamp {
    fn default() -> Self {
        Stamp::fresh()
    }
}

/// Not part of the value (see the module doc).
impl PartialEq for Stamp {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Stamp {}
impl Hash for Stamp {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_fresh_and_not_part_of_the_value() {
        let a = Stamp::fresh();
        let mut b = a;
        assert_eq!(a.get(), b.get());
        b.bump();
        assert_ne!(a.get(), b.get());
        assert_eq!(a, b);
    }
}
