//! The znode-based checks, after an event of a ZooKeeper server whose tree moved: every
//! partition-state znode and `/controller_epoch` are read from the server's tree, if it is
//! serving (only the highest version of each any server showed counts; a server behind
//! shows nothing new).
//! k-zk-fencing on the writes, unclean elections, and k-isr-superset on ISR expansions.

use super::partition::{Partition, ZkEpoch, ZkEpochLast, ZkSeen};
use super::{finding, Finding, KafkaMonitor, UncleanElection, K_ISR_SUPERSET, K_ZK_FENCING};
use crate::kafka::msg::BrokerId;
use crate::kafka::zkdata::{self, PartitionStateData};
use crate::zab::msg::Zxid;
use crate::zab::tree::DataTree;

/// One partition-state znode as a server's tree shows it.
#[derive(Clone, Debug)]
pub struct ZkState {
    pub version: i32,
    pub mzxid: Zxid,
    pub data: PartitionStateData,
}

impl KafkaMonitor {
    /// After an event of ZooKeeper server `sid` (`serving`: in the broadcast phase, so it
    /// answers clients): reads its tree if it moved. Only a serving server's tree is what
    /// ZooKeeper holds. A server that left its role (a leader that lost its quorum, a
    /// restarted server before it synced) rebuilds its tree from its whole transaction log
    /// (the ZOOKEEPER-2845 / -3642 fix: memory equals disk on leaving a role, as
    /// `loadDataBase` does at start-up), proposals that never reached a quorum included,
    /// until the new leader's TRUNC or SNAP takes them out. No client can read that tree,
    /// yet it names leaders ZooKeeper never named: the controller whose write it holds
    /// never got an answer, and the next controller writes the same zkVersion anew
    /// (kafka-nemesis seeds 7728 and 8429).
    pub fn on_zk_server(
        &mut self,
        sid: u32,
        serving: bool,
        tree: &DataTree,
        now: u64,
        out: &mut Vec<Finding>,
    ) {
        // Not marked as read while not serving: the same tree is read once it serves.
        if !serving || self.zk_read.get(&sid) == Some(&tree.last_zxid()) {
            return;
        }
        self.zk_read.insert(sid, tree.last_zxid());
        self.on_zk_tree(tree, now, out);
    }

    /// Reads the znodes the checks need from a server's tree.
    fn on_zk_tree(&mut self, tree: &DataTree, now: u64, out: &mut Vec<Finding>) {
        let ce = tree
            .get(zkdata::CONTROLLER_EPOCH)
            .and_then(|(d, s)| Some((zkdata::decode_controller_epoch(&d)?, s.mzxid)));
        let mut states = Vec::new();
        for p in &self.parts {
            let Some((data, stat)) = tree.get(&p.zk_path) else {
                continue;
            };
            if p.zk.as_ref().is_some_and(|z| z.version >= stat.version) {
                continue;
            }
            match zkdata::decode::<PartitionStateData>(&data) {
                Some(data) => states.push((
                    p.tp.clone(),
                    ZkState {
                        version: stat.version,
                        mzxid: stat.mzxid,
                        data,
                    },
                )),
                None => {
                    let msg = format!("{} holds no partition state", p.zk_path);
                    finding(out, K_ZK_FENCING, msg);
                }
            }
        }
        self.on_zk(ce, &states, now, out);
    }

    /// The checks on ZooKeeper's content: `ce` is `/controller_epoch` (value, mzxid) and
    /// `states` the partition states newer than the ones already seen.
    pub fn on_zk(
        &mut self,
        ce: Option<(u32, Zxid)>,
        states: &[(crate::kafka::msg::TopicPartition, ZkState)],
        now: u64,
        out: &mut Vec<Finding>,
    ) {
        if let Some((value, mzxid)) = ce {
            self.saw_controller_epoch(value, mzxid, out);
        }
        for (tp, s) in states {
            let p = self.part_index(tp);
            let at = self.controller_epoch_at(s.mzxid);
            let unclean = self.parts[p].on_zk_state(s, at, now, out);
            self.losses.unclean_elections.extend(unclean);
        }
    }

    /// `/controller_epoch` never decreases in zxid order.
    fn saw_controller_epoch(&mut self, value: u32, mzxid: Zxid, out: &mut Vec<Finding>) {
        let before = self.controller_epochs.range(..mzxid).next_back();
        let after = self.controller_epochs.range(mzxid + 1..).next();
        if before.is_some_and(|(_, &v)| v > value) || after.is_some_and(|(_, &v)| v < value) {
            let msg = format!("/controller_epoch went back: {value} at zxid {mzxid:#x}");
            finding(out, K_ZK_FENCING, msg);
        }
        self.controller_epochs.insert(mzxid, value);
    }

    /// The value `/controller_epoch` had at zxid `z`, when the values seen pin it down: the
    /// last one set at or before `z`, if the next one seen is exactly one epoch later (no
    /// unseen election in between) or there is none.
    fn controller_epoch_at(&self, z: Zxid) -> Option<u32> {
        let (_, &v) = self.controller_epochs.range(..=z).next_back()?;
        match self.controller_epochs.range(z + 1..).next() {
            Some((_, &next)) if next != v + 1 => None,
            _ => Some(v),
        }
    }
}

impl Partition {
    /// A newer partition state: epochs never decrease, a controller write (a new leader
    /// epoch) carries the controller epoch of its time, the leader changes only with the
    /// leader epoch, and a member the leader adds had caught up. Returns an unclean
    /// election if this write is one.
    fn on_zk_state(
        &mut self,
        s: &ZkState,
        ce_at: Option<u32>,
        now: u64,
        out: &mut Vec<Finding>,
    ) -> Option<UncleanElection> {
        let d = &s.data;
        let prev = self.zk.take().map(|z| z.data);
        let tp = self.tp.clone();
        if let Some(p) = &prev {
            if d.leader_epoch < p.leader_epoch || d.controller_epoch < p.controller_epoch {
                let msg =
                    format!(
                    "{tp}: partition state went from (leader epoch {}, controller epoch {}) to \
                     ({}, {}) at version {}",
                    p.leader_epoch, p.controller_epoch, d.leader_epoch, d.controller_epoch,
                    s.version
                );
                finding(out, K_ZK_FENCING, msg);
            }
        }
        let controller_write = prev
            .as_ref()
            .is_none_or(|p| d.leader_epoch > p.leader_epoch);
        let mut unclean = None;
        if controller_write {
            if let Some(ce) = ce_at.filter(|&ce| ce != d.controller_epoch) {
                let msg = format!(
                    "{tp}: leader epoch {} written with controller epoch {} while \
                     /controller_epoch was {ce}",
                    d.leader_epoch, d.controller_epoch
                );
                finding(out, K_ZK_FENCING, msg);
            }
            let outside = match (d.leader(), &prev) {
                (Some(l), Some(p)) if !p.isr.contains(&l) => Some((l, p.isr.clone())),
                _ => None,
            };
            self.zk_epochs.entry(d.leader_epoch).or_insert(ZkEpoch {
                leader: d.leader(),
                unclean: outside.is_some(),
            });
            unclean = outside.map(|(leader, previous_isr)| UncleanElection {
                tp: tp.clone(),
                leader_epoch: d.leader_epoch,
                leader,
                previous_isr,
                at_ns: now,
            });
        } else if let Some(p) = &prev {
            if p.leader != d.leader {
                let msg = format!(
                    "{tp}: leader changed from {} to {} within leader epoch {}",
                    p.leader, d.leader, d.leader_epoch
                );
                finding(out, K_ZK_FENCING, msg);
            }
            self.check_added(p, d, out);
        }
        self.zk = Some(ZkSeen {
            version: s.version,
            data: d.clone(),
        });
        self.zk_seen += 1;
        self.zk_epoch_last.insert(
            d.leader_epoch,
            ZkEpochLast {
                leader: d.leader(),
                isr: d.isr.clone(),
                seen: self.zk_seen,
            },
        );
        self.check_superset_at_zk(out);
        unclean
    }

    /// k-isr-superset: a member the leader added to ZooKeeper's ISR had caught up to the
    /// leader's HW and to the start of the leader's epoch (KAFKA-7128), by its own log.
    fn check_added(&self, p: &PartitionStateData, d: &PartitionStateData, out: &mut Vec<Finding>) {
        let Some(l) = d.leader() else { return };
        let Some(lm) = self.mons.get(&l) else { return };
        let start = self.epoch_start.get(&d.leader_epoch).copied().unwrap_or(0);
        for m in d.isr.iter().filter(|m| !p.isr.contains(m)) {
            let Some(fm) = self.mons.get(m) else { continue };
            // A member that lost records at a restart is excused: the leader's view of its
            // LEO may predate the loss. Not so for a leader elected after the loss: it only
            // counts fetches of its own epoch, made after the restart (KAFKA-7128 re-admits
            // such a replica on its post-loss LEO).
            let excused =
                fm.lost_from.is_some() && fm.lost_in_epoch.is_none_or(|e| e >= d.leader_epoch);
            if !excused && (fm.leo() < lm.hw || fm.leo() < start) {
                let msg = format!(
                    "{}: ZooKeeper's ISR gained {m} with LEO {}, below leader {l}'s HW {} or \
                     its epoch {}'s start offset {start}",
                    self.tp,
                    fm.leo(),
                    lm.hw,
                    d.leader_epoch
                );
                finding(out, K_ISR_SUPERSET, msg);
            }
        }
    }

    /// k-isr-superset when ZooKeeper's ISR changed: the leader it names, if it leads that
    /// epoch, computes its HW over a superset.
    fn check_superset_at_zk(&self, out: &mut Vec<Finding>) {
        let Some(zk) = &self.zk else { return };
        let d = &zk.data;
        let Some(l) = d.leader() else { return };
        let Some(lm) = self.mons.get(&l) else { return };
        if let super::replica::MonRole::Leader { epoch, maximal, .. } = &lm.role {
            let missing: Vec<BrokerId> = d
                .isr
                .iter()
                .copied()
                .filter(|x| !maximal.contains(x))
                .collect();
            if *epoch == d.leader_epoch && !missing.is_empty() {
                let msg = format!(
                    "{}: ZooKeeper's ISR {:?} has {missing:?}, which leader {l} leaves out of \
                     the ISR {maximal:?} it computes its HW over",
                    self.tp, d.isr
                );
                finding(out, K_ISR_SUPERSET, msg);
            }
        }
    }
}
