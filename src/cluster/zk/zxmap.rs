//! Searches of the monitor's zxid-ordered lists, and a map keyed by zxid kept as one.
//!
//! What the monitor looks up after an event is almost always recent: the txn a server just
//! logged, committed or applied, near the end of a log or of the monitor's maps. A
//! `BTreeMap` searched from its root cost about 250 instructions at 20,000 zxids (the zab
//! bench's 300 s run); a sorted list searched from its end finds a recent zxid in a few
//! steps, and zxids arrive almost always in ascending order, so an insert is a push.
//!
//! Depends on: zab (Zxid).

use crate::zab::msg::Zxid;

/// A map keyed by zxid, as a list sorted by zxid (see the module doc).
#[derive(Clone, Debug)]
pub struct ZxidMap<V> {
    entries: Vec<(Zxid, V)>,
}

impl<V> Default for ZxidMap<V> {
    fn default() -> Self {
        ZxidMap {
            entries: Vec::new(),
        }
    }
}

impl<V> ZxidMap<V> {
    /// Where `z` is (Ok) or would go (Err), searched from the end.
    fn find(&self, z: Zxid) -> Result<usize, usize> {
        let i = point_from_end(&self.entries, |e| e.0 < z);
        match self.entries.get(i) {
            Some(e) if e.0 == z => Ok(i),
            _ => Err(i),
        }
    }

    pub fn get(&self, z: Zxid) -> Option<&V> {
        self.find(z).ok().map(|i| &self.entries[i].1)
    }

    /// The value at `z`, inserted by `make` if there was none: (value, whether it was
    /// there before).
    pub fn get_or_insert_with(&mut self, z: Zxid, make: impl FnOnce() -> V) -> (&mut V, bool) {
        match self.find(z) {
            Ok(i) => (&mut self.entries[i].1, true),
            Err(i) => {
                self.entries.insert(i, (z, make()));
                (&mut self.entries[i].1, false)
            }
        }
    }

    /// Inserts or replaces the value at `z`.
    pub fn insert(&mut self, z: Zxid, v: V) {
        match self.find(z) {
            Ok(i) => self.entries[i].1 = v,
            Err(i) => self.entries.insert(i, (z, v)),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries with `from <= zxid < to`, in zxid order.
    pub fn range(&self, from: Zxid, to: Zxid) -> impl Iterator<Item = (Zxid, &V)> + '_ {
        let lo = self.entries.partition_point(|e| e.0 < from);
        let hi = self.entries.partition_point(|e| e.0 < to).max(lo);
        self.entries[lo..hi].iter().map(|(z, v)| (*z, v))
    }
}

/// `partition_point` of `xs` for `pred` (true on a prefix), searched from the end: the
/// point the monitor looks for is usually among the last entries of a log (what was just
/// logged, committed or applied), so this costs O(log distance from the end).
pub(super) fn point_from_end<T>(xs: &[T], mut pred: impl FnMut(&T) -> bool) -> usize {
    // Every element from `hi` on fails `pred`.
    let mut hi = xs.len();
    let mut step = 1;
    while hi > 0 {
        let probe = hi.saturating_sub(step);
        if pred(&xs[probe]) {
            return probe + 1 + xs[probe + 1..hi].partition_point(pred);
        }
        hi = probe;
        step *= 2;
    }
    0
}

/// `partition_point` of `xs` for `pred` (true on a prefix), for a point usually at the
/// start (a log generation's base precedes its entries): O(1) then.
pub(super) fn point_from_start<T>(xs: &[T], mut pred: impl FnMut(&T) -> bool) -> usize {
    match xs.first() {
        Some(x) if pred(x) => xs.partition_point(pred),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The list answers as a `BTreeMap` given the same inserts, in any order.
    #[test]
    fn zxid_map_is_a_btree_map() {
        let mut ours = ZxidMap::default();
        let mut theirs = BTreeMap::new();
        // Ascending, then earlier zxids, then replacements.
        let keys = (1..30).chain([0, 7, 15, 3, 31, 40, 35]).chain([5, 40]);
        for (n, z) in keys.enumerate() {
            let z = z * 3;
            if n % 3 == 0 {
                ours.insert(z, n);
                theirs.insert(z, n);
            } else {
                let (v, there) = ours.get_or_insert_with(z, || n);
                assert_eq!(there, theirs.contains_key(&z));
                assert_eq!(*v, *theirs.entry(z).or_insert(n));
            }
            assert_eq!(ours.len(), theirs.len());
        }
        for z in 0..130 {
            assert_eq!(ours.get(z), theirs.get(&z), "{z}");
            for to in [z, z + 1, z + 10, 200] {
                let a: Vec<_> = ours.range(z, to).map(|(k, v)| (k, *v)).collect();
                let b: Vec<_> = theirs.range(z..to.max(z)).map(|(k, v)| (*k, *v)).collect();
                assert_eq!(a, b);
            }
        }
    }

    /// Both searches find `partition_point`'s answer, wherever the point is.
    #[test]
    fn searches_from_either_end_are_partition_point() {
        for len in 0..40u64 {
            let xs: Vec<u64> = (0..len).map(|i| i * 2).collect();
            for bound in 0..=len * 2 + 1 {
                let want = xs.partition_point(|x| *x <= bound);
                assert_eq!(point_from_end(&xs, |x| *x <= bound), want, "{len} {bound}");
                assert_eq!(
                    point_from_start(&xs, |x| *x <= bound),
                    want,
                    "{len} {bound}"
                );
            }
        }
    }
}
