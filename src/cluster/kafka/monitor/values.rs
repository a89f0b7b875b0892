//! An index from record values to offsets for one replica's mirror (k-dense's uniqueness
//! among idempotent records): one insert per record a replica takes. Open addressing over
//! a table of a power-of-two size, hashed with a fixed function (no random seed): only
//! looked up and rebuilt, never iterated into anything the run reports, so its layout
//! reaches no behaviour. The hash is MurmurHash3's 64-bit finaliser, which spreads every
//! bit of the value over the slot index.

use crate::check::linearizable::mix;

#[derive(Clone, Debug, Default)]
pub struct ValueIndex {
    /// (value, offset) slots; at most half are used.
    slots: Vec<Option<(u64, u64)>>,
    len: usize,
}

impl ValueIndex {
    /// The slot holding `value`, or the free slot where it would go.
    fn find(&self, value: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = mix(value) as usize & mask;
        loop {
            match self.slots[i] {
                Some((v, _)) if v != value => i = (i + 1) & mask,
                _ => return i,
            }
        }
    }

    /// Maps `value` to `offset`; returns the offset it had before.
    pub fn insert(&mut self, value: u64, offset: u64) -> Option<u64> {
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let i = self.find(value);
        let old = self.slots[i].map(|(_, o)| o);
        if old.is_none() {
            self.len += 1;
        }
        self.slots[i] = Some((value, offset));
        old
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![None; size]);
        for (v, o) in old.into_iter().flatten() {
            let i = self.find(v);
            self.slots[i] = Some((v, o));
        }
    }

    /// Keeps the values whose offset passes `keep`.
    pub fn retain_offsets(&mut self, keep: impl Fn(u64) -> bool) {
        let old = std::mem::take(&mut self.slots);
        self.len = 0;
        for (v, o) in old.into_iter().flatten().filter(|&(_, o)| keep(o)) {
            self.insert(v, o);
        }
    }

    #[cfg(test)]
    pub fn get(&self, value: u64) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        self.slots[self.find(value)].map(|(_, o)| o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The same inserts and cuts on the ordered map it replaces: every answer agrees.
    #[test]
    fn agrees_with_an_ordered_map() {
        let mut ix = ValueIndex::default();
        let mut m: BTreeMap<u64, u64> = BTreeMap::new();
        for k in 0..3000u64 {
            // Values collide on purpose (every 7th repeats an earlier one).
            let v = if k % 7 == 6 { k / 2 } else { k * 1_000_003 };
            assert_eq!(ix.insert(v, k), m.insert(v, k), "insert {k}");
            if k % 1000 == 999 {
                ix.retain_offsets(|o| o < k - 300);
                m.retain(|_, o| *o < k - 300);
            }
        }
        for v in (0..3_000_000_000u64)
            .step_by(999_983)
            .chain(m.keys().copied())
        {
            assert_eq!(ix.get(v), m.get(&v).copied(), "get {v}");
        }
        assert_eq!(ix.len, m.len());
    }
}
