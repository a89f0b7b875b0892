//! Leader-side session expiry (A.9): the leader is the sole authority on expiry. Sessions
//! are kept in expiry buckets of one tick; a touch (a client heartbeat seen by the leader
//! or reported by a follower in its ping answer) moves a session to a later bucket.
//!
//! It also knows each session's owner: the server the client is connected to, as the leader
//! last heard it (SessionTrackerImpl's `owner`). A write forwarded by any other server is
//! refused with SESSIONMOVED (`checkSession`), so a request that a server the client has
//! left still forwards is never applied after the client reconnected elsewhere.
//!
//! May depend on: nothing (pure bookkeeping over integer nanoseconds).

use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Default)]
pub struct SessionTracker {
    tick_ns: u64,
    /// session -> (timeout in ns, bucket deadline in ns)
    sessions: BTreeMap<u64, (u64, u64)>,
    /// deadline -> sessions expiring then
    buckets: BTreeMap<u64, BTreeSet<u64>>,
    /// sessions whose closeSession was proposed: never touched again.
    closing: BTreeSet<u64>,
    /// session -> the server id its client is connected to, as last set.
    owners: BTreeMap<u64, u32>,
}

/// The outcome of [`SessionTracker::check_owner`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerCheck {
    Ok,
    /// Another server owns the session: the client moved (SessionMovedException).
    Moved,
}

impl SessionTracker {
    pub fn new(tick_ns: u64) -> Self {
        assert!(tick_ns > 0);
        SessionTracker {
            tick_ns,
            ..SessionTracker::default()
        }
    }

    /// Rounds up to the next tick boundary, like ZooKeeper's ExpiryQueue.
    fn bucket(&self, at_ns: u64) -> u64 {
        (at_ns / self.tick_ns + 1) * self.tick_ns
    }

    /// Adds `session` (or moves it to a later bucket). Its owner stays: a touch is no
    /// reconnect. Dropping the owner here let the next write from ANY server adopt the
    /// session (`check_owner` of an unowned session), so after a client moved to the
    /// leader and pinged, a write the old server still forwarded applied and the client's
    /// own retry through the leader came back SESSIONMOVED: the reverse of ZooKeeper
    /// (kafka-isr-churn seed 0, scenarios/regressions/kafka-isr-churn-seed0.json).
    pub fn add(&mut self, session: u64, timeout_ns: u64, now_ns: u64) {
        self.unbucket(session);
        let deadline = self.bucket(now_ns + timeout_ns);
        self.sessions.insert(session, (timeout_ns, deadline));
        self.buckets.entry(deadline).or_default().insert(session);
    }

    fn unbucket(&mut self, session: u64) {
        if let Some((_, d)) = self.sessions.remove(&session) {
            if let Some(b) = self.buckets.get_mut(&d) {
                b.remove(&session);
                if b.is_empty() {
                    self.buckets.remove(&d);
                }
            }
        }
    }

    pub fn remove(&mut self, session: u64) {
        self.unbucket(session);
        self.closing.remove(&session);
        self.owners.remove(&session);
    }

    /// The client of `session` is now connected through `owner` (createSession, or a
    /// reconnect the leader revalidated).
    pub fn set_owner(&mut self, session: u64, owner: u32) {
        if self.sessions.contains_key(&session) {
            self.owners.insert(session, owner);
        }
    }

    /// ZooKeeper's `checkSession(id, owner)` for a write: a session without a known owner
    /// (one a new leader loaded from its tree) takes this one; another owner means the
    /// client has moved on and the request must not apply.
    pub fn check_owner(&mut self, session: u64, owner: u32) -> OwnerCheck {
        if !self.sessions.contains_key(&session) {
            // Expired or closing: the prep stage answers for those.
            return OwnerCheck::Ok;
        }
        match self.owners.get(&session) {
            Some(&o) if o != owner => OwnerCheck::Moved,
            Some(_) => OwnerCheck::Ok,
            None => {
                self.owners.insert(session, owner);
                OwnerCheck::Ok
            }
        }
    }

    pub fn touch(&mut self, session: u64, now_ns: u64) {
        if self.closing.contains(&session) {
            return;
        }
        if let Some(&(timeout, _)) = self.sessions.get(&session) {
            self.add(session, timeout, now_ns);
        }
    }

    /// Sessions whose deadline passed; they are marked closing (the caller proposes
    /// closeSession for each) and are not returned again.
    pub fn expired(&mut self, now_ns: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let due: Vec<u64> = self.buckets.range(..=now_ns).map(|(d, _)| *d).collect();
        for d in due {
            for s in self.buckets.remove(&d).unwrap_or_default() {
                self.sessions.remove(&s);
                self.owners.remove(&s);
                self.closing.insert(s);
                out.push(s);
            }
        }
        out
    }

    pub fn mark_closing(&mut self, session: u64) {
        if let Some((_, d)) = self.sessions.remove(&session) {
            if let Some(b) = self.buckets.get_mut(&d) {
                b.remove(&session);
            }
        }
        self.closing.insert(session);
    }

    /// The session's timeout, when it is alive (not expired, not closing).
    pub fn timeout_ns(&self, session: u64) -> Option<u64> {
        self.sessions.get(&session).map(|(timeout, _)| *timeout)
    }

    pub fn is_live(&self, session: u64) -> bool {
        self.sessions.contains_key(&session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_postpones_expiry_and_expiry_is_reported_once() {
        let mut t = SessionTracker::new(100);
        t.add(1, 1000, 0);
        t.add(2, 1000, 0);
        t.touch(1, 900);
        assert_eq!(t.expired(1100), vec![2]);
        assert!(t.expired(1100).is_empty());
        assert_eq!(t.expired(2000), vec![1]);
        t.touch(1, 2000);
        assert!(!t.is_live(1));
    }

    #[test]
    fn a_write_through_a_server_the_client_left_is_a_moved_session() {
        let mut t = SessionTracker::new(100);
        t.add(7, 1000, 0);
        // Loaded by a new leader without an owner: the first forwarder takes it.
        assert_eq!(t.check_owner(7, 2), OwnerCheck::Ok);
        assert_eq!(t.check_owner(7, 2), OwnerCheck::Ok);
        // The client reconnected through server 3, which revalidated it.
        t.set_owner(7, 3);
        assert_eq!(t.check_owner(7, 2), OwnerCheck::Moved);
        assert_eq!(t.check_owner(7, 3), OwnerCheck::Ok);
        // Unknown sessions are the prep stage's business (SESSIONEXPIRED there).
        assert_eq!(t.check_owner(8, 2), OwnerCheck::Ok);
        t.set_owner(8, 1);
        assert_eq!(t.check_owner(8, 2), OwnerCheck::Ok);
    }

    /// A heartbeat moves the session to a later bucket but keeps its owner: the server the
    /// client left cannot adopt it again (SessionTrackerImpl.touchSession leaves the owner).
    #[test]
    fn a_touch_keeps_the_owner() {
        let mut t = SessionTracker::new(100);
        t.add(7, 1000, 0);
        t.set_owner(7, 2);
        t.touch(7, 500);
        assert_eq!(t.check_owner(7, 0), OwnerCheck::Moved);
        assert_eq!(t.check_owner(7, 2), OwnerCheck::Ok);
    }
}
