//! Phase 1, discovery (A.5): FOLLOWERINFO / LEADERINFO / ACKEPOCH. The prospective leader
//! proposes `max(acceptedEpoch over a quorum) + 1`; every server persists acceptedEpoch
//! before promising it (A.8), and the leader persists currentEpoch once a quorum promised.
//!
//! May depend on: `node`, and the server's own state (`zab::mod`).

use crate::node::{ConnId, Context};

use super::broadcast::LearnerHandler;
use super::msg::{Msg, Zxid};
use super::{ZabPhase, ZabServer};

impl ZabServer {
    /// Just elected: count myself, then wait for a quorum of FOLLOWERINFO.
    pub(crate) fn leader_start(&mut self, ctx: &mut Context<'_, Msg>) {
        let (me, accepted) = (self.me, self.accepted_epoch);
        let l = self.leader.as_mut().expect("leader state");
        l.follower_infos.insert(me, accepted);
        self.leader_try_decide_epoch(ctx);
    }

    fn leader_try_decide_epoch(&mut self, ctx: &mut Context<'_, Msg>) {
        let quorum = self.quorum();
        let l = self.leader.as_mut().expect("leader state");
        if l.zab_epoch.is_some() || l.follower_infos.len() < quorum {
            return;
        }
        let max_accepted = *l.follower_infos.values().max().expect("non-empty");
        let max_accepted = max_accepted.max(self.epoch_floor);
        let epoch = max_accepted.checked_add(1).expect("zab epoch overflow");
        l.zab_epoch = Some(epoch);
        // LEADERINFO(e) goes out only once the leader's own acceptedEpoch = e is durable.
        self.persist_accepted_epoch(ctx, epoch);
    }

    pub(crate) fn leader_accepted_epoch_durable(&mut self, ctx: &mut Context<'_, Msg>, e: u32) {
        let me = self.me;
        let l = self.leader.as_mut().expect("leader state");
        if l.zab_epoch != Some(e) {
            return;
        }
        l.epoch_persisted = true;
        l.epoch_acks.insert(me);
        for (conn, h) in &l.learners {
            if h.info_seen {
                ctx.send(*conn, Msg::LeaderInfo { zab_epoch: e });
            }
        }
        self.leader_try_epoch_quorum(ctx);
    }

    pub(crate) fn leader_on_follower_info(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        conn: ConnId,
        sid: u32,
        accepted_epoch: u32,
    ) {
        let l = self.leader.as_mut().expect("leader state");
        let h = l
            .learners
            .entry(conn)
            .or_insert_with(|| LearnerHandler::new(sid, ctx.now()));
        h.info_seen = true;
        match l.zab_epoch {
            None => {
                l.follower_infos.insert(sid, accepted_epoch);
                self.leader_try_decide_epoch(ctx);
            }
            Some(e) if accepted_epoch > e => {
                // The learner promised a newer epoch to a leader that never established;
                // it refuses LEADERINFO(e) (A.5 item 3) and would stay locked out for as
                // long as this leader lives. ZooKeeper leaves it so; we step down and lead
                // (or follow) again above its promise, so that every server can rejoin.
                // (Deliberate deviation, listed in the README.) A learner whose promise
                // *equals* e is the common case of a follower that bounced: it gets
                // LEADERINFO(e) like anyone else (`getEpochToPropose` returns the epoch
                // already decided), answers ACKEPOCH(-1) and is synced.
                self.epoch_floor = self.epoch_floor.max(accepted_epoch);
                self.go_looking(ctx, "a learner promised a newer epoch");
            }
            Some(e) if l.epoch_persisted => ctx.send(conn, Msg::LeaderInfo { zab_epoch: e }),
            Some(_) => {}
        }
    }

    pub(crate) fn leader_on_ack_epoch(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        conn: ConnId,
        current_epoch: u32,
        last_zxid: Zxid,
        promised: bool,
    ) {
        let mine = (self.current_epoch, self.advertised_zxid());
        let l = self.leader.as_mut().expect("leader state");
        if promised && !l.epoch_quorum && (current_epoch, last_zxid) > mine {
            // Leader.waitForEpochAck: "Follower is ahead of the leader" is an IOException
            // in that learner's handler thread: it drops this learner, not the leader,
            // which keeps waiting for a quorum until initLimit. Once the epoch has its
            // quorum the check is skipped (`electionFinished`).
            l.learners.remove(&conn);
            self.conns.remove(&conn);
            ctx.close(conn);
            return;
        }
        let Some(h) = l.learners.get_mut(&conn) else {
            return;
        };
        h.peer_last_zxid = Some(last_zxid);
        h.peer_current_epoch = promised.then_some(current_epoch);
        let sid = h.sid;
        if promised {
            l.epoch_acks.insert(sid);
        }
        if l.current_epoch_durable {
            self.start_learner_sync(ctx, conn);
        } else {
            self.leader_try_epoch_quorum(ctx);
        }
    }

    fn leader_try_epoch_quorum(&mut self, ctx: &mut Context<'_, Msg>) {
        let quorum = self.quorum();
        let l = self.leader.as_mut().expect("leader state");
        if l.epoch_quorum || !l.epoch_persisted || l.epoch_acks.len() < quorum {
            return;
        }
        l.epoch_quorum = true;
        let e = l.zab_epoch.expect("decided");
        // currentEpoch = e says "my history is the initial history of epoch e": it must not
        // reach the disk before that history does. Written together, a power loss can keep
        // the small epoch file and lose the log's unflushed tail (files flush separately),
        // and the server restarts with a new epoch over an old log, wins FLE on that epoch
        // and truncates committed txns from the others (the leader-side twin of
        // ZOOKEEPER-4643; zk-nemesis-heavy seed 92772). ZooKeeper never gets there: a
        // server going back to LOOKING shuts its SyncRequestProcessor down, which flushes
        // and fsyncs the log before the election starts.
        if self.log_durable_zxid >= self.storage.last_zxid() && !self.log_truncation_unsynced {
            return self.persist_current_epoch(ctx, e);
        }
        l.current_epoch_waits_for_log = true;
        self.request_log_fsync(ctx);
    }

    pub(crate) fn leader_current_epoch_durable(&mut self, ctx: &mut Context<'_, Msg>, e: u32) {
        let l = self.leader.as_mut().expect("leader state");
        if l.zab_epoch != Some(e) || l.current_epoch_durable {
            return;
        }
        l.current_epoch_durable = true;
        // Everything the leader holds becomes the initial history of epoch e (A.6).
        l.last_committed = self.tree.last_zxid();
        self.phase = ZabPhase::Synchronization;
        let ready: Vec<ConnId> = l
            .learners
            .iter()
            .filter(|(_, h)| h.peer_last_zxid.is_some())
            .map(|(c, _)| *c)
            .collect();
        for conn in ready {
            self.start_learner_sync(ctx, conn);
        }
        self.leader_log_durable(ctx);
    }

    // ------------------------------------------------------------------ follower side

    pub(crate) fn follower_connected(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId) {
        let f = self.follower.as_mut().expect("follower state");
        if f.conn != conn {
            return;
        }
        f.last_heard_ns = ctx.now();
        let info = Msg::FollowerInfo {
            sid: self.me,
            accepted_epoch: self.accepted_epoch,
        };
        ctx.send(conn, info);
    }

    pub(crate) fn follower_on_leader_info(&mut self, ctx: &mut Context<'_, Msg>, e: u32) {
        let f = self.follower.as_mut().expect("follower state");
        if f.zab_epoch.is_some() {
            return;
        }
        f.zab_epoch = Some(e);
        if e > self.accepted_epoch {
            // Promise only once acceptedEpoch = e is durable (A.8).
            f.promise = true;
            self.persist_accepted_epoch(ctx, e);
        } else if e == self.accepted_epoch && self.durable_accepted_epoch >= e {
            // Already promised this epoch: ACKEPOCH with epoch -1 (A.5 item 3).
            self.send_ack_epoch(ctx, false);
        } else if e == self.accepted_epoch {
            // Promised in an earlier role whose write is not durable yet: a crash could
            // lose it while a later currentEpoch write survives (files flush separately).
            // Write it again and answer once it is durable.
            f.promise = false;
            self.persist_accepted_epoch(ctx, e);
        } else {
            self.go_looking(ctx, "LEADERINFO below my acceptedEpoch");
        }
    }

    pub(crate) fn follower_accepted_epoch_durable(&mut self, ctx: &mut Context<'_, Msg>, e: u32) {
        let f = self.follower.as_ref().expect("follower state");
        if f.zab_epoch == Some(e) {
            let promised = f.promise;
            self.send_ack_epoch(ctx, promised);
        }
    }

    fn send_ack_epoch(&mut self, ctx: &mut Context<'_, Msg>, promised: bool) {
        let ack = Msg::AckEpoch {
            current_epoch: self.current_epoch,
            last_zxid: self.advertised_zxid(),
            promised,
        };
        let f = self.follower.as_mut().expect("follower state");
        ctx.send(f.conn, ack);
        self.phase = ZabPhase::Synchronization;
    }
}
