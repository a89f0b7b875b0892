//! A plain-data view of one server's state for the online invariants (A.11): peer state,
//! Zab phase, epochs (memory and durable), the epochs it established as leader, its log,
//! what it committed and applied, the tree digest, sessions and ephemerals.
//!
//! The cluster layer converts this into `check` snapshot types; nothing here imports the
//! checker. May depend on: `zab` types only.

use super::msg::{PeerState, Zxid};
use super::{ZabPhase, ZabServer};

/// One server, as the invariants see it after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerView {
    pub sid: u32,
    pub halted: Option<String>,
    pub state: PeerState,
    pub phase: ZabPhase,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    pub durable_accepted_epoch: u32,
    pub durable_current_epoch: u32,
    /// The epoch this server currently leads as an established leader, if any.
    pub established_epoch: Option<u32>,
    /// The leader this server follows (or is), once decided.
    pub leader: Option<u32>,
    /// The election round and vote, for the vote-order sanity check.
    pub election_round: u64,
    pub vote: (u32, Zxid, u32),
    /// zxids in the log (written, maybe not synced), in order.
    pub log_zxids_len: usize,
    pub log_last_zxid: Zxid,
    pub log_durable_zxid: Zxid,
    /// Highest zxid known committed by this server (leader: committed; follower: applied
    /// commits) and the applied tree's zxid.
    pub last_committed: Zxid,
    pub last_applied: Zxid,
    /// ZooKeeper's lastProcessedZxid (differs from `last_applied` only under ZK-2355).
    pub last_processed: Zxid,
    pub digest: u64,
}

impl ZabServer {
    /// The epoch this server leads as an established leader, if any (cheap).
    pub fn established_epoch(&self) -> Option<u32> {
        self.leader
            .as_ref()
            .filter(|l| l.established)
            .and_then(|l| l.zab_epoch)
    }

    /// A learner between NEWLEADER and UPTODATE: it is persisting (or has acknowledged) the
    /// synchronised history, the moment a crash tests the sync's durability (cheap).
    pub fn mid_sync(&self) -> bool {
        self.state == PeerState::Following
            && self.follower.as_ref().is_some_and(|f| {
                !matches!(
                    f.stage,
                    super::sync::NewLeaderStage::NotYet | super::sync::NewLeaderStage::Done
                )
            })
    }

    /// Log writes not yet durable (an fsync pending): what a power loss now would lose.
    pub fn log_unflushed(&self) -> bool {
        self.storage.last_zxid() > self.log_durable_zxid
    }

    /// The leader this server follows (or is), once decided: [`ServerView::leader`].
    pub fn leader_sid(&self) -> Option<u32> {
        match self.state {
            PeerState::Leading => Some(self.me),
            PeerState::Following => self.follower.as_ref().map(|f| f.leader),
            PeerState::Looking => None,
        }
    }

    /// [`ServerView::last_committed`], without the rest of the view.
    pub fn last_committed_zxid(&self) -> Zxid {
        match (&self.leader, &self.follower) {
            (Some(l), _) if l.established => l.last_committed,
            _ => self.tree.last_zxid(),
        }
    }

    /// [`ServerView::phase`].
    pub fn zab_phase(&self) -> ZabPhase {
        self.phase
    }

    /// Cheap by design (no allocation): the invariants call it after every event.
    pub fn view(&self) -> ServerView {
        let established_epoch = self.established_epoch();
        let leader = self.leader_sid();
        let last_committed = self.last_committed_zxid();
        let v = self.election.vote;
        ServerView {
            sid: self.me,
            halted: self.halted.clone(),
            state: self.state,
            phase: self.phase,
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            durable_accepted_epoch: self.durable_accepted_epoch,
            durable_current_epoch: self.durable_current_epoch,
            established_epoch,
            leader,
            election_round: self.election.logical_clock,
            vote: (v.peer_epoch, v.zxid, v.leader),
            log_zxids_len: self.storage.entries.len(),
            log_last_zxid: self.storage.last_zxid(),
            log_durable_zxid: self.log_durable_zxid,
            last_committed,
            last_applied: self.tree.last_zxid(),
            last_processed: self.last_processed,
            digest: self.tree.digest(),
        }
    }

    /// Whether [`ZabServer::view`] would now equal `last`, compared field by field in place:
    /// the monitor asks this after every event, and most events (pings, timers, reads)
    /// change nothing, so building and comparing a whole view each time was wasted. The
    /// fields most events change come first. Debug builds check the answer against
    /// `self.view() == *last`.
    pub fn view_unchanged(&self, last: &ServerView) -> bool {
        // Destructured without `..`: a field added to the view must be compared here too.
        let ServerView {
            log_zxids_len,
            log_durable_zxid,
            last_applied,
            state,
            phase,
            election_round,
            vote,
            last_committed,
            log_last_zxid,
            last_processed,
            digest,
            accepted_epoch,
            current_epoch,
            durable_accepted_epoch,
            durable_current_epoch,
            established_epoch,
            leader,
            sid,
            halted,
        } = last;
        let v = &self.election.vote;
        let same = *log_zxids_len == self.storage.entries.len()
            && *log_durable_zxid == self.log_durable_zxid
            && *last_applied == self.tree.last_zxid()
            && *state == self.state
            && *phase == self.phase
            && *election_round == self.election.logical_clock
            && *vote == (v.peer_epoch, v.zxid, v.leader)
            && *last_committed == self.last_committed_zxid()
            && *log_last_zxid == self.storage.last_zxid()
            && *last_processed == self.last_processed
            && *digest == self.tree.digest()
            && *accepted_epoch == self.accepted_epoch
            && *current_epoch == self.current_epoch
            && *durable_accepted_epoch == self.durable_accepted_epoch
            && *durable_current_epoch == self.durable_current_epoch
            && *established_epoch == self.established_epoch()
            && *leader == self.leader_sid()
            && *sid == self.me
            && halted == &self.halted;
        debug_assert_eq!(same, self.view() == *last, "view_unchanged disagrees");
        same
    }

    /// The zxids of the log, in order (O(n): for invariants that compare histories).
    pub fn log_zxids(&self) -> impl Iterator<Item = Zxid> + '_ {
        self.storage.entries.iter().map(|e| e.txn.zxid)
    }

    /// Every record of the current log generation, in zxid order.
    pub fn log_entries(&self) -> &[super::txnlog::LogEntry] {
        &self.storage.entries
    }

    /// (log generation, zxid the generation starts after).
    pub fn log_generation(&self) -> (u64, Zxid) {
        (self.storage.gen, self.storage.gen_base)
    }

    /// The logged txn with this zxid, if any (binary search).
    pub fn logged_txn(&self, zxid: Zxid) -> Option<&super::msg::Txn> {
        let e = &self.storage.entries;
        let i = e.partition_point(|x| x.txn.zxid < zxid);
        e.get(i).filter(|x| x.txn.zxid == zxid).map(|x| &x.txn)
    }

    pub fn tree(&self) -> &super::tree::DataTree {
        &self.tree
    }

    pub fn is_serving(&self) -> bool {
        self.phase == ZabPhase::Broadcast && self.halted.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeId;
    use crate::zab::config::ZabConfig;

    /// The in-place comparison agrees with building and comparing a view: unchanged right
    /// after the view is taken, changed by any field the view shows (one of each kind).
    #[test]
    fn view_unchanged_is_the_view_comparison() {
        let me = NodeId(1);
        let mut s = ZabServer::new(me, &[NodeId(0), me, NodeId(2)], ZabConfig::default());
        let last = s.view();
        assert!(s.view_unchanged(&last));
        s.log_durable_zxid = 7;
        assert!(!s.view_unchanged(&last));
        let last = s.view();
        s.current_epoch += 1;
        assert!(!s.view_unchanged(&last));
        let last = s.view();
        s.election.logical_clock += 1;
        assert!(!s.view_unchanged(&last));
        let last = s.view();
        s.last_processed = 3;
        assert!(!s.view_unchanged(&last));
        let last = s.view();
        s.halted = Some("halt".into());
        assert!(!s.view_unchanged(&last));
        assert!(s.view_unchanged(&s.view()));
    }
}
