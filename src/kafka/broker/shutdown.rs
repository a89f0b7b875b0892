//! Graceful stop (Kafka's `KafkaServer.controlledShutdown`): with
//! `controlled.shutdown.enable`, ask the controller (found in the metadata cache) to move
//! this broker's leaderships away, up to `controlled.shutdown.max.retries` attempts with
//! `controlled.shutdown.retry.backoff.ms` between them, until it answers with no partition
//! remaining; then write the checkpoints, close the ZooKeeper session (the registration and
//! any `/controller` go at once, not after the session timeout) and halt. Kafka proceeds
//! with an unclean shutdown when the attempts run out, and so does this broker.

use super::net::{Channel, Dropped, SOCKET_TIMEOUT_NS};
use super::storage;
use super::{Broker, Origin};
use crate::kafka::msg::{ErrorCode, Request, Response};
use crate::kafka::wire::WireMsg;
use crate::node::Context;
use crate::zab::msg::Msg as ZkMsg;

/// Kafka's defaults: `controlled.shutdown.max.retries` 3,
/// `controlled.shutdown.retry.backoff.ms` 5000.
pub const MAX_ATTEMPTS: u32 = 3;
pub const RETRY_BACKOFF_NS: u64 = 5_000 * 1_000_000;
/// Timer tag of the next attempt.
pub const TAG_SHUTDOWN: u64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Running,
    /// Controlled shutdown in progress: attempts made, and whether one awaits its answer.
    Controlled {
        attempts: u32,
        waiting: bool,
    },
}

impl Broker {
    pub(super) fn stopping(&self) -> bool {
        self.shutdown != Shutdown::Running || self.stopped
    }

    /// SIGTERM.
    pub(super) fn begin_shutdown(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if self.stopping() {
            return;
        }
        if !self.setup.props.controlled_shutdown_enable || self.broker_epoch.is_none() {
            return self.finish_shutdown(ctx);
        }
        self.shutdown = Shutdown::Controlled {
            attempts: 0,
            waiting: false,
        };
        self.shutdown_attempt(ctx);
    }

    /// One ControlledShutdown request to the controller the metadata cache names.
    pub(super) fn shutdown_attempt(&mut self, ctx: &mut Context<'_, WireMsg>) {
        let Shutdown::Controlled { attempts, waiting } = self.shutdown else {
            return;
        };
        if waiting {
            return;
        }
        if attempts >= MAX_ATTEMPTS {
            return self.finish_shutdown(ctx);
        }
        self.shutdown = Shutdown::Controlled {
            attempts: attempts + 1,
            waiting: true,
        };
        let request = Request::ControlledShutdown {
            broker_id: self.id,
            broker_epoch: self.broker_epoch.unwrap_or(-1),
        };
        match self.metadata.controller_id {
            Some(c) if c == self.id => self.handle_request(ctx, Origin::LocalShutdown, request),
            Some(c) if (c as usize) < self.setup.brokers.len() => {
                let node = self.setup.brokers[c as usize];
                let net = &mut self.net;
                net.send(ctx, node, c, Channel::Shutdown, request, SOCKET_TIMEOUT_NS);
            }
            _ => self.shutdown_retry_later(ctx),
        }
    }

    fn shutdown_retry_later(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if let Shutdown::Controlled { attempts, .. } = self.shutdown {
            self.shutdown = Shutdown::Controlled {
                attempts,
                waiting: false,
            };
            ctx.set_timer(RETRY_BACKOFF_NS, TAG_SHUTDOWN);
        }
    }

    /// The controller answered: done when nothing is left to move.
    pub(super) fn on_shutdown_response(&mut self, ctx: &mut Context<'_, WireMsg>, resp: Response) {
        match resp {
            Response::ControlledShutdown {
                error: ErrorCode::None,
                remaining,
            } if remaining.is_empty() => self.finish_shutdown(ctx),
            _ => self.shutdown_retry_later(ctx),
        }
    }

    /// The shutdown request's connection broke before an answer.
    pub(super) fn on_shutdown_dropped(&mut self, ctx: &mut Context<'_, WireMsg>, d: &Dropped) {
        if d.channel == Channel::Shutdown {
            self.shutdown_retry_later(ctx);
        }
    }

    /// Checkpoints, close the session, halt.
    pub(super) fn finish_shutdown(&mut self, ctx: &mut Context<'_, WireMsg>) {
        if self.stopped {
            return;
        }
        // The controller resigns before the session closes (KafkaServer.shutdown).
        self.with_controller(ctx, |c| c.on_session_lost());
        self.stopped = true;
        storage::write_hw_checkpoint(ctx, &self.replicas);
        storage::write_recovery_checkpoints(ctx, &self.replicas);
        if let Some(zk) = &mut self.zk {
            let client = &mut zk.client;
            ctx.scoped(|inner: &mut Context<'_, ZkMsg>| client.close(inner));
        }
        ctx.halt("stopped");
    }
}
