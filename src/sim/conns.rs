//! The kernel's table of open connections, by id, in id order.
//!
//! Looked up two or three times per delivered message, so it is two parallel sorted
//! vectors rather than a `BTreeMap`: the ids are searched in one contiguous array, and a new
//! connection, whose id is the newest the run has handed out, is appended at the end.
//! Iteration is in id order, as the map's was, so nothing downstream can tell the
//! difference (the run's behaviour never depends on the container).
//!
//! Depends on: node (ids).

use crate::node::ConnId;

pub(crate) struct ConnTable<C> {
    ids: Vec<ConnId>,
    conns: Vec<C>,
}

impl<C> Default for ConnTable<C> {
    fn default() -> Self {
        ConnTable {
            ids: Vec::new(),
            conns: Vec::new(),
        }
    }
}

impl<C> ConnTable<C> {
    fn find(&self, id: &ConnId) -> Result<usize, usize> {
        // New connections are the newest ids and messages mostly use recent ones: the
        // binary search over a few dozen ids is a handful of compares.
        self.ids.binary_search(id)
    }

    pub fn get(&self, id: &ConnId) -> Option<&C> {
        self.find(id).ok().map(|i| &self.conns[i])
    }

    pub fn get_mut(&mut self, id: &ConnId) -> Option<&mut C> {
        self.find(id).ok().map(|i| &mut self.conns[i])
    }

    /// Inserts or replaces the connection `id`.
    pub fn insert(&mut self, id: ConnId, conn: C) {
        if self.ids.last().is_none_or(|last| *last < id) {
            self.ids.push(id);
            self.conns.push(conn);
            return;
        }
        match self.find(&id) {
            Ok(i) => self.conns[i] = conn,
            Err(i) => {
                self.ids.insert(i, id);
                self.conns.insert(i, conn);
            }
        }
    }

    pub fn remove(&mut self, id: &ConnId) -> Option<C> {
        let i = self.find(id).ok()?;
        self.ids.remove(i);
        Some(self.conns.remove(i))
    }

    /// The ids, in order.
    pub fn keys(&self) -> impl Iterator<Item = &ConnId> + '_ {
        self.ids.iter()
    }

    /// (id, connection) in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&ConnId, &C)> + '_ {
        self.ids.iter().zip(self.conns.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table answers as a `BTreeMap` would, whatever the order of inserts and removes.
    #[test]
    fn the_table_behaves_as_an_ordered_map() {
        let mut t = ConnTable::default();
        let mut m = std::collections::BTreeMap::new();
        let mut x = 0x9e37_79b9_u64;
        for step in 0..2000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = ConnId(x % 64);
            match x % 3 {
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
