//! The mirrors of one partition's replicas, by broker: a vector kept sorted by broker id.
//! A partition has a few replicas, and the monitor takes one mirror out and puts it back
//! at every changed event: a short sorted vector does that without a tree's node walks,
//! and iterates in the same (ascending broker) order a `BTreeMap` would.

use super::replica::ReplicaMon;
use crate::kafka::msg::BrokerId;

#[derive(Default)]
pub struct Mons(Vec<(BrokerId, Box<ReplicaMon>)>);

impl Mons {
    fn find(&self, b: BrokerId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&b, |e| e.0)
    }
    pub fn get(&self, b: &BrokerId) -> Option<&ReplicaMon> {
        self.find(*b).ok().map(|i| &*self.0[i].1)
    }
    pub fn remove(&mut self, b: &BrokerId) -> Option<Box<ReplicaMon>> {
        self.find(*b).ok().map(|i| self.0.remove(i).1)
    }
    pub fn insert(&mut self, b: BrokerId, m: Box<ReplicaMon>) {
        match self.find(b) {
            Ok(i) => self.0[i].1 = m,
            Err(i) => self.0.insert(i, (b, m)),
        }
    }
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut ReplicaMon> {
        self.0.iter_mut().map(|e| &mut *e.1)
    }
    /// (broker, mirror) in ascending broker order.
    pub fn iter(&self) -> impl Iterator<Item = (&BrokerId, &ReplicaMon)> {
        self.0.iter().map(|e| (&e.0, &*e.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_brokers_in_order_and_replaces_on_insert() {
        let mut m = Mons::default();
        for b in [2, 0, 1] {
            m.insert(b, Box::default());
        }
        let mut one = Box::<ReplicaMon>::default();
        one.inc = 7;
        m.insert(1, one);
        assert_eq!(m.iter().map(|(b, _)| *b).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(m.get(&1).map(|x| x.inc), Some(7));
        assert_eq!(m.remove(&1).map(|x| x.inc), Some(7));
        assert!(m.get(&1).is_none() && m.remove(&1).is_none());
        assert_eq!(m.values_mut().count(), 2);
    }
}
