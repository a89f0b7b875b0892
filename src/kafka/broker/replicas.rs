//! The broker's replicas, with a record of which of them were handed out for change.
//!
//! Three readers care which replicas an event could have changed: the purgatory, which
//! re-checks only the held requests of those partitions (Kafka completes a `DelayedFetch`
//! or `DelayedProduce` through `tryCompleteDelayedRequests` keyed by the partition that
//! changed), the online monitor, which re-judges only those replicas after the event, and
//! the fetchers, which recompute the leaders they follow only when a replica may have
//! changed role.
//! The map is private: every `&mut Replica` comes from a method here that marks its
//! partition first, so a partition left unmarked since a reader last took its marks is
//! exactly as that reader last saw it. Reads go through `Deref` to the map.
//!
//! A mark is one bit per partition number modulo 64 (partitions of different topics may
//! share a bit): a superset of the partitions handed out, never a subset. A reader that
//! finds a bit set re-checks every replica under it; an extra check changes nothing.
//!
//! May depend on: `kafka::replica`, `kafka::msg`.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ops::Deref;

use crate::kafka::msg::TopicPartition;
use crate::kafka::replica::Replica;

/// A set of partitions as marks (see the module doc).
pub type Marks = u64;

/// Every partition.
pub const ALL: Marks = u64::MAX;

/// The mark of partition `tp`.
#[inline]
pub fn mark(tp: &TopicPartition) -> Marks {
    1u64 << (tp.partition % 64)
}

#[derive(Debug)]
pub struct Replicas {
    map: BTreeMap<TopicPartition, Replica>,
    /// Handed out since the purgatory last took its marks.
    purgatory: Marks,
    /// Handed out since the monitor last took its marks: a `Cell`, as the monitor reads
    /// the broker through a shared reference. It changes nothing the broker does.
    monitor: Cell<Marks>,
    /// Handed out since the fetchers last took their marks.
    fetcher: Marks,
}

impl Default for Replicas {
    fn default() -> Self {
        Replicas {
            map: BTreeMap::new(),
            purgatory: ALL,
            monitor: Cell::new(ALL),
            fetcher: ALL,
        }
    }
}

impl Deref for Replicas {
    type Target = BTreeMap<TopicPartition, Replica>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Replicas {
    fn touch(&mut self, m: Marks) {
        self.purgatory |= m;
        self.fetcher |= m;
        self.monitor.set(self.monitor.get() | m);
    }

    /// Replaces every replica (recovery at start-up).
    pub fn set_all(&mut self, map: BTreeMap<TopicPartition, Replica>) {
        self.touch(ALL);
        self.map = map;
    }

    pub fn get_mut(&mut self, tp: &TopicPartition) -> Option<&mut Replica> {
        self.touch(mark(tp));
        self.map.get_mut(tp)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Replica> {
        self.touch(ALL);
        self.map.values_mut()
    }

    /// The replica of `tp`, made by `make` if there is none.
    pub fn get_or_insert_with(
        &mut self,
        tp: &TopicPartition,
        make: impl FnOnce() -> Replica,
    ) -> &mut Replica {
        self.touch(mark(tp));
        self.map.entry(tp.clone()).or_insert_with(make)
    }

    pub fn remove(&mut self, tp: &TopicPartition) -> Option<Replica> {
        self.touch(mark(tp));
        self.map.remove(tp)
    }

    /// The purgatory's marks since it last took them; clears them.
    pub fn take_purgatory_marks(&mut self) -> Marks {
        std::mem::take(&mut self.purgatory)
    }

    /// The purgatory's marks since it last took them, left in place.
    pub fn purgatory_marks(&self) -> Marks {
        self.purgatory
    }

    /// The monitor's marks since it last took them; clears them.
    pub fn take_monitor_marks(&self) -> Marks {
        self.monitor.take()
    }

    /// The fetchers' marks since they last took them; clears them.
    pub fn take_fetcher_marks(&mut self) -> Marks {
        std::mem::take(&mut self.fetcher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::partition_log::PartitionLog;

    fn replica(tp: &TopicPartition) -> Replica {
        let log = PartitionLog::new(&tp.dir(), Default::default());
        Replica::new(tp.clone(), 0, log, 0, &[])
    }

    #[test]
    fn every_mutable_access_marks_its_partition_for_both_readers() {
        let (a, b) = (TopicPartition::new("t", 1), TopicPartition::new("t", 2));
        let mut rs = Replicas::default();
        // A fresh map is all marked: nothing has been seen yet.
        assert_eq!(rs.take_monitor_marks(), ALL);
        assert_eq!(rs.take_purgatory_marks(), ALL);
        assert_eq!(rs.take_fetcher_marks(), ALL);
        rs.get_or_insert_with(&a, || replica(&a));
        rs.get_or_insert_with(&b, || replica(&b));
        assert_eq!(rs.take_monitor_marks(), mark(&a) | mark(&b));
        assert_eq!(rs.take_purgatory_marks(), mark(&a) | mark(&b));
        assert_eq!(rs.take_fetcher_marks(), mark(&a) | mark(&b));
        // Reads mark nothing.
        assert!(rs.get(&a).is_some() && rs.values().count() == 2);
        assert_eq!((rs.take_monitor_marks(), rs.purgatory_marks()), (0, 0));
        assert_eq!(rs.take_fetcher_marks(), 0);
        rs.get_mut(&b);
        assert_eq!(rs.take_fetcher_marks(), mark(&b));
        assert_eq!(rs.purgatory_marks(), mark(&b));
        assert_eq!(rs.take_monitor_marks(), mark(&b));
        assert_eq!(rs.take_monitor_marks(), 0);
        // Each reader takes its own marks.
        assert_eq!(rs.take_purgatory_marks(), mark(&b));
        rs.remove(&a);
        assert_eq!(rs.take_monitor_marks(), mark(&a));
        rs.values_mut().count();
        assert_eq!(rs.take_purgatory_marks(), ALL);
        assert_eq!(rs.take_monitor_marks(), ALL);
        rs.set_all(BTreeMap::new());
        assert_eq!(rs.take_monitor_marks(), ALL);
        // Partition numbers share a bit modulo 64: a superset, never a subset.
        assert_eq!(mark(&TopicPartition::new("u", 65)), mark(&a));
    }
}
