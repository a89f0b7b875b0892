//! The election's send queue per connection, as QuorumCnxManager keeps it: the queue of a
//! peer holds at most one notification (`SEND_CAPACITY` is 1, and `addToSendQueue` drops
//! the older one when a newer comes), and the connection's SendWorker writes one
//! notification at a time.
//!
//! Why it is modelled: a server sends a notification for every vote change, and under a
//! vote order with cycles (ZOOKEEPER-1419) every change provokes more changes. The real
//! queue keeps that storm at the pace of the connection; without it the simulated storm
//! would double with every hop and never reach the liveness bound. With a sane order a
//! connection rarely carries two notifications within one write time, so the queue is
//! invisible there.
//!
//! May depend on: zab::msg, node.

use std::collections::BTreeMap;

use super::msg::{Msg, Notification};
use crate::node::{ConnId, Context, TimerId};

/// How long the SendWorker takes to write one notification to its socket: a connection
/// carries at most one notification per this time.
pub const WRITE_NS: u64 = 100_000;

#[derive(Clone, Debug, Default)]
struct Queue {
    /// The SendWorker is free again at this time.
    free_at_ns: u64,
    /// The notification waiting for the SendWorker (the newest one wins).
    waiting: Option<Notification>,
    /// Fires when the SendWorker is free to write `waiting`.
    timer: Option<TimerId>,
}

/// Every election connection's queue.
#[derive(Clone, Debug, Default)]
pub struct SendQueues {
    queues: BTreeMap<ConnId, Queue>,
}

impl SendQueues {
    /// Sends `n` on `conn` now if its SendWorker is free, else queues it in place of any
    /// notification still waiting there. A new timer tagged `tag` is armed when needed.
    pub fn send(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId, n: Notification, tag: u64) {
        let now = ctx.now();
        let q = self.queues.entry(conn).or_default();
        if q.timer.is_some() {
            q.waiting = Some(n);
        } else if now >= q.free_at_ns {
            ctx.send(conn, Msg::Notification(n));
            q.free_at_ns = now + WRITE_NS;
        } else {
            q.waiting = Some(n);
            q.timer = Some(ctx.set_timer(q.free_at_ns - now, tag));
        }
    }

    /// A timer armed by [`SendQueues::send`] fired: write the waiting notification (a
    /// timer of a queue since forgotten is ignored).
    pub fn on_timer(&mut self, ctx: &mut Context<'_, Msg>, timer: TimerId) {
        let Some((&conn, q)) = self.queues.iter_mut().find(|(_, q)| q.timer == Some(timer)) else {
            return;
        };
        q.timer = None;
        if let Some(n) = q.waiting.take() {
            ctx.send(conn, Msg::Notification(n));
            q.free_at_ns = ctx.now() + WRITE_NS;
        }
    }

    /// The connection is gone: so is its queue (a waiting notification is lost with it).
    pub fn forget(&mut self, ctx: &mut Context<'_, Msg>, conn: ConnId) {
        if let Some(t) = self.queues.remove(&conn).and_then(|q| q.timer) {
            ctx.cancel_timer(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::node::{Effect, IdSource, MemDisk, NodeId};
    use crate::zab::msg::{PeerState, Vote};

    fn n(leader: u32) -> Notification {
        Notification {
            vote: Vote {
                leader,
                zxid: 0,
                peer_epoch: 0,
            },
            election_epoch: 1,
            state: PeerState::Looking,
            sid: 0,
        }
    }

    /// Runs `f` on a context at `now_ns` and returns its effects.
    fn at(now_ns: u64, f: impl FnOnce(&mut Context<'_, Msg>)) -> Vec<Effect<Msg>> {
        let (mut rng, mut disk) = (ChaCha8Rng::seed_from_u64(1), MemDisk::default());
        let mut ids = IdSource::new(now_ns);
        let mut effects = Vec::new();
        let mut ctx = Context::new(
            now_ns,
            NodeId(0),
            &mut rng,
            &mut disk,
            &mut ids,
            &mut effects,
        );
        f(&mut ctx);
        effects
    }

    fn sent(effects: &[Effect<Msg>]) -> Vec<u32> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send {
                    msg: Msg::Notification(n),
                    ..
                } => Some(n.vote.leader),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_notification_per_write_time_and_the_newest_waiting_one_wins() {
        let (mut q, conn) = (SendQueues::default(), ConnId(7));
        assert_eq!(sent(&at(0, |c| q.send(c, conn, n(1), 9))), [1]);
        // Within the write time: queued behind a timer, then replaced by a newer one.
        let e = at(10_000, |c| q.send(c, conn, n(2), 9));
        let timer = match e.as_slice() {
            [Effect::SetTimer {
                timer,
                after_ns: 90_000,
                tag: 9,
            }] => *timer,
            other => panic!("expected one timer, got {other:?}"),
        };
        assert!(at(20_000, |c| q.send(c, conn, n(3), 9)).is_empty());
        assert_eq!(sent(&at(100_000, |c| q.on_timer(c, timer))), [3]);
        // Free again one write time later: sent at once.
        assert_eq!(sent(&at(200_000, |c| q.send(c, conn, n(4), 9))), [4]);
        // A forgotten connection's timer is ignored.
        at(250_000, |c| q.send(c, conn, n(5), 9));
        at(260_000, |c| q.forget(c, conn));
        assert!(sent(&at(300_000, |c| q.on_timer(c, timer))).is_empty());
    }
}
