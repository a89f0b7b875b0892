//! The kernel's table of open connections, by id, in id order.
//!
//! Looked up two or three times per delivered message (a send, its delivery), so a lookup
//! must not search: connections live in a slab with stable slots, and a small direct-mapped
//! cache from id to slot answers almost every lookup with one compare. A miss (two live ids
//! that share a cache line, rare as ids are handed out in sequence) falls back to a binary
//! search of the ids kept in order, which also gives iteration in id order, as the
//! `BTreeMap` this replaced did, so nothing downstream can tell the difference (the run's
//! behaviour never depends on the container, only on the id order of iteration).
//!
//! Depends on: node (ids).

use crate::node::ConnId;

/// A cache entry that names no connection (no id is `u64::MAX`).
const EMPTY: (u64, u32) = (u64::MAX, 0);
/// Cache lines at least; it grows to keep at least four lines per live connection.
const MIN_CACHE: usize = 256;

pub(crate) struct ConnTable<C> {
    /// Live ids in order, with the slot of each.
    order: Vec<(ConnId, u32)>,
    /// Connections by slot (None: free).
    slots: Vec<Option<C>>,
    free: Vec<u32>,
    /// `cache[id & mask]`: (id, slot) of the last connection looked up or inserted with
    /// that line; always agrees with `order` (a removal clears its line).
    cache: Vec<(u64, u32)>,
}

impl<C> Default for ConnTable<C> {
    fn default() -> Self {
        ConnTable {
            order: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            cache: vec![EMPTY; MIN_CACHE],
        }
    }
}

impl<C> ConnTable<C> {
    #[inline]
    fn line(&self, id: ConnId) -> usize {
        id.0 as usize & (self.cache.len() - 1)
    }

    /// The slot of `id`, if it is live.
    #[inline]
    fn slot(&mut self, id: ConnId) -> Option<usize> {
        let line = self.line(id);
        let (cached, slot) = self.cache[line];
        if cached == id.0 {
            return Some(slot as usize);
        }
        self.slot_slow(id, line)
    }

    #[cold]
    fn slot_slow(&mut self, id: ConnId, line: usize) -> Option<usize> {
        let i = self.order.binary_search_by_key(&id, |e| e.0).ok()?;
        let slot = self.order[i].1;
        self.cache[line] = (id.0, slot);
        Some(slot as usize)
    }

    /// The slot of `id` without filling the cache (for `&self` lookups).
    #[inline]
    fn slot_ref(&self, id: ConnId) -> Option<usize> {
        let (cached, slot) = self.cache[self.line(id)];
        if cached == id.0 {
            return Some(slot as usize);
        }
        let i = self.order.binary_search_by_key(&id, |e| e.0).ok()?;
        Some(self.order[i].1 as usize)
    }

    pub fn get(&self, id: &ConnId) -> Option<&C> {
        let slot = self.slot_ref(*id)?;
        self.slots[slot].as_ref()
    }

    pub fn get_mut(&mut self, id: &ConnId) -> Option<&mut C> {
        let slot = self.slot(*id)?;
        self.slots[slot].as_mut()
    }

    /// Inserts or replaces the connection `id`.
    pub fn insert(&mut self, id: ConnId, conn: C) {
        assert_ne!(id.0, u64::MAX, "connection id out of range");
        if let Some(slot) = self.slot(id) {
            self.slots[slot] = Some(conn);
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(conn);
                slot
            }
            None => {
                self.slots.push(Some(conn));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 connections")
            }
        };
        match self.order.last() {
            Some((last, _)) if *last > id => {
                let at = self
                    .order
                    .binary_search_by_key(&id, |e| e.0)
                    .expect_err("not live");
                self.order.insert(at, (id, slot));
            }
            _ => self.order.push((id, slot)),
        }
        if self.order.len() * 4 > self.cache.len() {
            self.cache = vec![EMPTY; self.cache.len() * 2];
            for i in 0..self.order.len() {
                let (id, slot) = self.order[i];
                let line = self.line(id);
                self.cache[line] = (id.0, slot);
            }
        } else {
            let line = self.line(id);
            self.cache[line] = (id.0, slot);
        }
    }

    pub fn remove(&mut self, id: &ConnId) -> Option<C> {
        let i = self.order.binary_search_by_key(id, |e| e.0).ok()?;
        let (_, slot) = self.order.remove(i);
        let line = self.line(*id);
        if self.cache[line].0 == id.0 {
            self.cache[line] = EMPTY;
        }
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    /// The ids, in order.
    pub fn keys(&self) -> impl Iterator<Item = &ConnId> + '_ {
        self.order.iter().map(|(id, _)| id)
    }

    /// (id, connection) in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&ConnId, &C)> + '_ {
        self.order.iter().map(|(id, slot)| {
            let conn = self.slots[*slot as usize].as_ref().expect("live slot");
            (id, conn)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table answers as a `BTreeMap` would, whatever the order of inserts and removes,
    /// with ids in sequence, all sharing one cache line, or growing the cache.
    #[test]
    fn the_table_behaves_as_an_ordered_map() {
        for stride in [1, MIN_CACHE as u64, 3, 1 << 20] {
            behaves_as_an_ordered_map(stride);
        }
    }

    fn behaves_as_an_ordered_map(stride: u64) {
        let mut t = ConnTable::default();
        let mut m = std::collections::BTreeMap::new();
        let mut x = 0x9e37_79b9_u64;
        for step in 0..2000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = ConnId((x % 200) * stride + stride / 3);
            match (x >> 8) % 3 {
                0 => {
                    t.insert(id, step);
                    m.insert(id, step);
                }
                1 => assert_eq!(t.remove(&id), m.remove(&id)),
                _ => {
                    if let Some(v) = t.get_mut(&id) {
                        *v += 1;
                    }
                    if let Some(v) = m.get_mut(&id) {
                        *v += 1;
                    }
                }
            }
            assert_eq!(t.get(&id), m.get(&id));
            assert!(t
                .iter()
                .map(|(k, v)| (*k, *v))
                .eq(m.iter().map(|(k, v)| (*k, *v))));
        }
    }
}
