//! The record stamped at each (leader epoch, offset) of a partition: the value that
//! epoch's leader appended there (k-one-leader). Looked up for every record a replica
//! takes, so kept by offset: offsets are dense from 0, and an offset is nearly always
//! stamped in one epoch only; the rare second epoch at an offset (after a fork or a lossy
//! election) goes to a small ordered map beside.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct Stamps {
    /// Per offset, one stamp there: (epoch, value).
    at: Vec<Option<(u32, u64)>>,
    /// Stamps at offsets whose slot in `at` holds another epoch's: (epoch, offset) -> value.
    more: BTreeMap<(u32, u64), u64>,
}

impl Stamps {
    fn slot(&self, o: u64) -> Option<(u32, u64)> {
        self.at.get(o as usize).copied().flatten()
    }

    /// The value stamped at (epoch `e`, offset `o`).
    pub fn get(&self, e: u32, o: u64) -> Option<u64> {
        match self.slot(o) {
            Some((x, v)) if x == e => Some(v),
            _ => self.more.get(&(e, o)).copied(),
        }
    }

    /// Stamps `v` at (e, o); returns the value stamped there before.
    pub fn insert(&mut self, e: u32, o: u64, v: u64) -> Option<u64> {
        let i = o as usize;
        match self.slot(o) {
            Some((x, old)) if x == e => {
                self.at[i] = Some((e, v));
                Some(old)
            }
            Some(_) => self.more.insert((e, o), v),
            None if self.more.contains_key(&(e, o)) => self.more.insert((e, o), v),
            None => {
                if self.at.len() <= i {
                    self.at.resize(i + 1, None);
                }
                self.at[i] = Some((e, v));
                None
            }
        }
    }

    /// Whether any offset from `from` up is stamped in epoch `e`.
    pub fn any_from(&self, e: u32, from: u64) -> bool {
        let from_slots = self.at.get(from as usize..).unwrap_or_default();
        from_slots.iter().any(|s| s.is_some_and(|(x, _)| x == e))
            || self.more.range((e, from)..=(e, u64::MAX)).next().is_some()
    }

    /// Removes every stamp at offset `from` and up; returns them as ((epoch, offset),
    /// value), ordered by epoch, then offset.
    pub fn take_from(&mut self, from: u64) -> Vec<((u32, u64), u64)> {
        let mut out: Vec<((u32, u64), u64)> = Vec::new();
        if (from as usize) < self.at.len() {
            for (i, s) in self.at.drain(from as usize..).enumerate() {
                if let Some((e, v)) = s {
                    out.push(((e, from + i as u64), v));
                }
            }
        }
        let above: Vec<(u32, u64)> = (self.more.keys())
            .filter(|&&(_, o)| o >= from)
            .copied()
            .collect();
        for k in above {
            let v = self.more.remove(&k).expect("listed");
            out.push((k, v));
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same operations on the ordered map the stamps replace: every answer agrees.
    #[test]
    fn agrees_with_an_ordered_map() {
        let mut s = Stamps::default();
        let mut m: BTreeMap<(u32, u64), u64> = BTreeMap::new();
        let ops: [(u32, u64, u64); 12] = [
            (0, 0, 10),
            (0, 1, 11),
            (1, 1, 21),
            (0, 1, 12),
            (1, 5, 25),
            (2, 1, 31),
            (1, 1, 22),
            (0, 3, 13),
            (2, 0, 30),
            (1, 0, 20),
            (0, 7, 17),
            (3, 7, 37),
        ];
        for (k, &(e, o, v)) in ops.iter().enumerate() {
            assert_eq!(s.insert(e, o, v), m.insert((e, o), v), "insert {k}");
            for e in 0..4 {
                for o in 0..9 {
                    assert_eq!(s.get(e, o), m.get(&(e, o)).copied(), "get {e} {o}");
                    let any = m.range((e, o)..=(e, u64::MAX)).next().is_some();
                    assert_eq!(s.any_from(e, o), any, "any_from {e} {o}");
                }
            }
        }
        let want: Vec<((u32, u64), u64)> = m
            .iter()
            .filter(|(&(_, o), _)| o >= 1)
            .map(|(&k, &v)| (k, v))
            .collect();
        assert_eq!(s.take_from(1), want);
        m.retain(|&(_, o), _| o < 1);
        for (e, o) in [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (3, 7)] {
            assert_eq!(s.get(e, o), m.get(&(e, o)).copied());
        }
        // Stamped anew after the cut, in another epoch than before.
        assert_eq!(s.insert(4, 1, 41), None);
        assert_eq!(s.get(4, 1), Some(41));
        assert!(s.any_from(4, 1) && !s.any_from(0, 1));
    }
}
