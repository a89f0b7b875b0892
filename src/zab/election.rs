//! Fast leader election (A.4): the vote order, the per-round vote tables, termination on a
//! quorum after the finalize wait, and joining an ensemble that already has a leader.
//!
//! Pure state machine: the server feeds it notifications and timer expiries and carries out
//! what it answers (broadcast my vote, arm or disarm the finalize timer, decide).
//!
//! May depend on: `zab::msg` only.

use std::collections::BTreeMap;

use super::msg::{Notification, PeerState, Vote};

/// `totalOrderPredicate`: does `new` beat `cur`? Lexicographic on (peer epoch, zxid, sid).
///
/// With `bug_1419` the (zxid, sid) tie-break sits outside the epoch guard, as in ZooKeeper
/// before ZOOKEEPER-1419 (reference Z1): a vote with a lower epoch but equal zxid and larger
/// sid then beats a higher-epoch vote, and the order has cycles.
pub fn vote_beats(new: &Vote, cur: &Vote, bug_1419: bool) -> bool {
    if bug_1419 {
        return new.peer_epoch > cur.peer_epoch
            || (new.peer_epoch == cur.peer_epoch && new.zxid > cur.zxid)
            || (new.zxid == cur.zxid && new.leader > cur.leader);
    }
    (new.peer_epoch, new.zxid, new.leader) > (cur.peer_epoch, cur.zxid, cur.leader)
}

/// What the server must do after the election handled an input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Send my (new) vote to every voter.
    pub broadcast: bool,
    /// A quorum agrees with my vote: arm the finalize-wait timer (if not armed).
    pub arm_finalize: bool,
    /// A better vote arrived while finalizing: disarm the finalize timer.
    pub disarm_finalize: bool,
    /// The election is over: follow or lead `leader` (ZooKeeper's termination).
    pub decided: Option<Vote>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    vote: Vote,
    election_epoch: u64,
    state: PeerState,
}

/// One server's FLE state across rounds.
#[derive(Clone, Debug)]
pub struct Election {
    me: u32,
    voters: Vec<u32>,
    bug_1419: bool,
    /// The election round (ZooKeeper's `logicalclock`).
    pub logical_clock: u64,
    /// My current vote.
    pub vote: Vote,
    recv: BTreeMap<u32, Seen>,
    out_of_election: BTreeMap<u32, Seen>,
    pub finalizing: bool,
}

impl Election {
    pub fn new(me: u32, voters: Vec<u32>, bug_1419: bool) -> Self {
        Election {
            me,
            voters,
            bug_1419,
            logical_clock: 0,
            vote: Vote {
                leader: me,
                zxid: 0,
                peer_epoch: 0,
            },
            recv: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            finalizing: false,
        }
    }

    fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Starts a new round voting for myself (`own` = my (currentEpoch, lastZxid, sid)).
    pub fn start(&mut self, own: Vote) -> Step {
        assert_eq!(own.leader, self.me);
        self.logical_clock += 1;
        self.vote = own;
        self.recv.clear();
        self.out_of_election.clear();
        self.finalizing = false;
        self.recv.insert(
            self.me,
            Seen {
                vote: own,
                election_epoch: self.logical_clock,
                state: PeerState::Looking,
            },
        );
        Step {
            broadcast: true,
            ..Step::default()
        }
    }

    /// My notification, as sent to the other voters.
    pub fn notification(&self) -> Notification {
        Notification {
            vote: self.vote,
            election_epoch: self.logical_clock,
            state: PeerState::Looking,
            sid: self.me,
        }
    }

    fn agree(&self, table: &BTreeMap<u32, Seen>, vote: &Vote, loose: bool) -> usize {
        table
            .values()
            .filter(|s| {
                // Votes from servers already in an ensemble match on (leader, epoch) only,
                // as in ZooKeeper's Vote.equals: their zxid has moved on.
                if loose || s.state != PeerState::Looking {
                    s.vote.leader == vote.leader && s.vote.peer_epoch == vote.peer_epoch
                } else {
                    s.vote == *vote
                }
            })
            .count()
    }

    /// Handles a notification from a voter while I am LOOKING.
    pub fn on_notification(&mut self, n: Notification, own: Vote) -> Step {
        if !self.voters.contains(&n.sid) {
            return Step::default();
        }
        match n.state {
            PeerState::Looking => self.on_looking(n, own),
            PeerState::Following | PeerState::Leading => self.on_settled(n),
        }
    }

    fn on_looking(&mut self, n: Notification, own: Vote) -> Step {
        let mut step = Step::default();
        if n.election_epoch > self.logical_clock {
            // A newer round: join it, restart my tally, vote for the better of n and me.
            self.logical_clock = n.election_epoch;
            self.recv.clear();
            self.vote = if vote_beats(&n.vote, &own, self.bug_1419) {
                n.vote
            } else {
                own
            };
            self.recv.insert(self.me, self.seen_self());
            step.broadcast = true;
            step.disarm_finalize = self.finalizing;
            self.finalizing = false;
        } else if n.election_epoch < self.logical_clock {
            // An older round: the server answers with its vote so the sender catches up.
            step.broadcast = true;
            return step;
        } else if vote_beats(&n.vote, &self.vote, self.bug_1419) {
            self.vote = n.vote;
            self.recv.insert(self.me, self.seen_self());
            step.broadcast = true;
            step.disarm_finalize = self.finalizing;
            self.finalizing = false;
        }
        self.recv.insert(
            n.sid,
            Seen {
                vote: n.vote,
                election_epoch: n.election_epoch,
                state: n.state,
            },
        );
        if self.agree(&self.recv, &self.vote, false) >= self.quorum() && !self.finalizing {
            self.finalizing = true;
            step.arm_finalize = true;
        }
        step
    }

    fn seen_self(&self) -> Seen {
        Seen {
            vote: self.vote,
            election_epoch: self.logical_clock,
            state: PeerState::Looking,
        }
    }

    /// `checkLeader`: never elect a leader that has not itself said it leads (unless it is
    /// me, in my own round). Stops servers from "electing" a crashed leader again.
    fn check_leader(&self, table: &BTreeMap<u32, Seen>, leader: u32, round: u64) -> bool {
        if leader == self.me {
            return round == self.logical_clock;
        }
        table
            .get(&leader)
            .is_some_and(|s| s.state == PeerState::Leading)
    }

    fn on_settled(&mut self, n: Notification) -> Step {
        let seen = Seen {
            vote: n.vote,
            election_epoch: n.election_epoch,
            state: n.state,
        };
        if n.election_epoch == self.logical_clock {
            self.recv.insert(n.sid, seen);
            if self.agree(&self.recv, &n.vote, true) >= self.quorum()
                && self.check_leader(&self.recv, n.vote.leader, n.election_epoch)
            {
                return self.decide(n.vote);
            }
        }
        self.out_of_election.insert(n.sid, seen);
        if self.agree(&self.out_of_election, &n.vote, true) >= self.quorum()
            && self.check_leader(&self.out_of_election, n.vote.leader, n.election_epoch)
        {
            self.logical_clock = n.election_epoch;
            return self.decide(n.vote);
        }
        Step::default()
    }

    fn decide(&mut self, vote: Vote) -> Step {
        self.vote = vote;
        self.finalizing = false;
        Step {
            decided: Some(vote),
            disarm_finalize: true,
            ..Step::default()
        }
    }

    /// The finalize wait passed with no better vote: decide if a quorum still agrees.
    pub fn on_finalize_timer(&mut self) -> Step {
        if !self.finalizing {
            return Step::default();
        }
        self.finalizing = false;
        if self.agree(&self.recv, &self.vote, false) >= self.quorum() {
            let v = self.vote;
            return self.decide(v);
        }
        Step::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::msg::PeerState;

    fn v(leader: u32, zxid: u64, peer_epoch: u32) -> Vote {
        Vote {
            leader,
            zxid,
            peer_epoch,
        }
    }

    fn looking(sid: u32, vote: Vote, round: u64) -> Notification {
        Notification {
            vote,
            election_epoch: round,
            state: PeerState::Looking,
            sid,
        }
    }

    #[test]
    fn vote_order_is_epoch_then_zxid_then_sid() {
        assert!(vote_beats(&v(1, 0, 2), &v(3, 100, 1), false));
        assert!(vote_beats(&v(1, 5, 1), &v(3, 4, 1), false));
        assert!(vote_beats(&v(3, 5, 1), &v(2, 5, 1), false));
        assert!(!vote_beats(&v(2, 5, 1), &v(2, 5, 1), false));
    }

    #[test]
    fn bug_1419_order_has_a_cycle() {
        let a = v(1, 0, 1);
        let b = v(2, 0, 0);
        // The true order is antisymmetric ...
        assert!(vote_beats(&a, &b, false) && !vote_beats(&b, &a, false));
        // ... the buggy one lets each beat the other.
        assert!(vote_beats(&a, &b, true) && vote_beats(&b, &a, true));
    }

    #[test]
    fn three_servers_agree_on_the_most_up_to_date() {
        let mut e = Election::new(0, vec![0, 1, 2], false);
        let own = v(0, 5, 1);
        assert!(e.start(own).broadcast);
        let s = e.on_notification(looking(1, v(1, 7, 1), 1), own);
        assert!(s.broadcast);
        assert_eq!(e.vote.leader, 1);
        // A quorum (me + 1) now votes for 1: finalize wait, then decide.
        assert!(s.arm_finalize);
        let d = e.on_finalize_timer();
        assert_eq!(d.decided.map(|v| v.leader), Some(1));
    }

    #[test]
    fn a_better_vote_during_finalize_wait_restarts_the_wait() {
        let mut e = Election::new(0, vec![0, 1, 2], false);
        let own = v(0, 5, 1);
        e.start(own);
        let s = e.on_notification(looking(1, v(0, 5, 1), 1), own);
        assert!(s.arm_finalize);
        let s = e.on_notification(looking(2, v(2, 9, 1), 1), own);
        assert!(s.disarm_finalize && s.broadcast);
        // Me and 2 now agree on 2: a fresh finalize wait, then 2 wins.
        assert!(s.arm_finalize);
        assert_eq!(e.on_finalize_timer().decided.map(|v| v.leader), Some(2));
    }

    #[test]
    fn a_newcomer_joins_an_established_leader() {
        let mut e = Election::new(2, vec![0, 1, 2], false);
        let own = v(2, 0, 0);
        e.start(own);
        let settled = |sid, state| Notification {
            vote: v(0, 9, 3),
            election_epoch: 7,
            state,
            sid,
        };
        // A follower alone is not enough: the leader itself must say it leads.
        let s = e.on_notification(settled(1, PeerState::Following), own);
        assert_eq!(s.decided, None);
        let s = e.on_notification(settled(0, PeerState::Leading), own);
        assert_eq!(s.decided.map(|v| v.leader), Some(0));
        assert_eq!(e.logical_clock, 7);
    }
}
