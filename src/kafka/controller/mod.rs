//! The controller (KafkaController of the ZooKeeper era) as a sans-IO state machine hosted
//! by a broker: it campaigns for `/controller`, and while active it elects partition
//! leaders, keeps the ISR of dead brokers out, and tells brokers their roles.
//!
//! It never touches the scheduler nor the ZooKeeper client: it asks its broker to submit
//! ZooKeeper operations on the broker's session ([`ControllerOut::Zk`], answered through
//! [`Controller::on_zk`] with the same tag) and to send controller requests to brokers
//! ([`ControllerOut::Send`], answered through [`Controller::on_response`]). Every watch event
//! of the broker's session is passed to [`Controller::on_watch`], which ignores paths it does
//! not watch.
//!
//! Kafka's controller handles one event at a time on its event thread with blocking
//! ZooKeeper calls. Here the events (campaign, broker change, ISR change notification,
//! controlled shutdown) wait in a queue and each runs as a list of [`phase`]s that submit
//! operations and continue on their results, so events stay serialised as in Kafka while
//! nothing blocks. Modules: [`election`] (campaign), [`load`] (failover: context loading),
//! [`partition_ops`] and [`leader_election`] (partition state machine), [`brokers`] (broker
//! start-up and failure), [`isr_notify`], [`shutdown`] (controlled shutdown), [`batch`]
//! (ControllerBrokerRequestBatch) and [`channel`] (ControllerChannelManager).
//!
//! Operations that fail for a transient reason (connection loss, timeout, not connected) are
//! re-submitted on the next [`Controller::on_tick`]; operations of a dead session are
//! dropped (the broker calls [`Controller::on_session_lost`]).
//!
//! What the hosting broker must do (the contract of this interface):
//! - call [`Controller::on_session`] once registered on a session, and
//!   [`Controller::on_session_lost`] when it expires or the broker stops;
//! - route to [`Controller::on_zk`] every completion of a [`ControllerOut::Zk`] operation and
//!   to [`Controller::on_watch`] every watch event of its session;
//! - carry each [`ControllerOut::Send`] (at most one outstanding per target: the next comes
//!   with the answer) and pass the answer to [`Controller::on_response`]; a delivery that
//!   failed may be reported to [`Controller::on_send_failed`] (else it is re-sent after the
//!   request timeout);
//! - call [`Controller::on_tick`] periodically (retries), e.g. every 100 ms.
//!
//! UpdateMetadata's `partitions` are a delta (a broker keeps the partitions a request does
//! not name); its `live_brokers` is the full list of registered brokers.
//!
//! May depend on: `kafka` (msg, zkdata, config), `zab::msg` (operations and results),
//! `zab::client` (ZkError), `zab::tree` (Stat).

mod batch;
mod brokers;
mod channel;
mod context;
mod core;
mod election;
mod isr_notify;
mod leader_election;
mod load;
mod partition_ops;
mod phase;
mod shutdown;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::rc::Rc;

pub use self::context::{ControllerContext, LeaderIsr};
use self::core::{Core, Flow, Key};
use self::phase::{not_controller, Phase, Step};
use super::config::{BugMode, ServerProperties, TopicSpec};
use super::msg::{BrokerId, Request, Response};
use super::zkdata;
use crate::zab::client::ZkError;
use crate::zab::msg::{Op, OpResult, WatchKind};

/// What every controller of a cluster knows from its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerSetup {
    pub me: BrokerId,
    /// Broker ids are `0..brokers`.
    pub brokers: u32,
    /// The scenario's topics; a controller that finds one missing in ZooKeeper creates its
    /// assignment, as `kafka-topics --create` would have.
    pub topics: Vec<TopicSpec>,
    pub props: ServerProperties,
}

/// What the controller asks its broker to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerOut {
    /// Submit `op` on the broker's ZooKeeper session; the completion comes back to
    /// [`Controller::on_zk`] with `tag`.
    Zk { tag: u64, op: Op },
    /// Send a controller request (LeaderAndIsr, UpdateMetadata, StopReplica) to a broker,
    /// this broker included; the response comes back to [`Controller::on_response`].
    /// At most one request per target is outstanding; the controller re-sends it when no
    /// answer came (see [`Controller::on_send_failed`]).
    Send { to: BrokerId, request: Request },
    /// Answer the ControlledShutdown request the broker passed in with `token`.
    Reply { token: u64, response: Response },
}

/// An event of the controller's queue (ControllerEventManager).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    /// `/controller` changed (or the session started): check it, campaign if absent.
    Campaign,
    BrokerChange,
    IsrChange,
    ControlledShutdown {
        token: u64,
        broker: BrokerId,
        broker_epoch: i64,
    },
    /// Before Kafka 2.2 (KAFKA-6082 mode): resign, then campaign, queued on the new session
    /// behind the event a zombie controller is still handling (KafkaController's `Reelect`).
    Reelect,
}

/// The controller of one broker: an elector always, the active controller sometimes.
#[derive(Clone, Debug)]
pub struct Controller {
    setup: Rc<ControllerSetup>,
    core: Core,
    queue: VecDeque<Event>,
    /// The phases of the event being handled; the front one runs.
    current: VecDeque<Phase>,
    /// Whether the front phase has been started.
    started: bool,
}

impl Controller {
    pub fn new(setup: Rc<ControllerSetup>) -> Self {
        Controller {
            core: Core::new(setup.clone()),
            setup,
            queue: VecDeque::new(),
            current: VecDeque::new(),
            started: false,
        }
    }

    /// This broker's id.
    pub fn me(&self) -> BrokerId {
        self.setup.me
    }

    /// Some(controller epoch) while this broker is the active controller.
    pub fn active_epoch(&self) -> Option<u32> {
        self.core.ctx.as_ref().map(|c| c.epoch)
    }

    /// The active controller's cache, while this broker is it.
    pub fn context(&self) -> Option<&ControllerContext> {
        self.core.ctx.as_ref()
    }

    /// The controller as this broker last read it from `/controller`.
    pub fn known_controller(&self) -> Option<BrokerId> {
        self.core.active_id
    }

    /// ZooKeeper operations in flight or parked for a retry.
    pub fn zk_outstanding(&self) -> usize {
        self.core.in_flight()
    }

    /// Requests to `to` queued or in flight (0 when `to` is unknown).
    pub fn request_backlog(&self, to: BrokerId) -> usize {
        self.core.channel.backlog(to)
    }

    /// Whether this broker is the active controller in the middle of a leader or ISR change
    /// (a partition-state read or write of its event waits on ZooKeeper): the moment a
    /// session loss makes a zombie of it (KAFKA-3083), which the nemesis can aim at.
    pub fn changing_partition_state(&self) -> bool {
        self.core.ctx.is_some() && self.core.state_ops_in_flight()
    }

    /// Whether no event is queued or being handled (nothing waits on ZooKeeper).
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.current.is_empty()
    }

    /// The broker's ZooKeeper session is established (the first one, or a new one after an
    /// expiry) and the broker is registered: watch `/controller` and campaign.
    pub fn on_session(&mut self, now_ns: u64) -> Vec<ControllerOut> {
        self.core.now_ns = now_ns;
        if self.zombie() {
            // The zombie finishes its event first; the resignation waits behind it.
            self.enqueue(Event::Reelect);
            return self.run();
        }
        self.reset();
        self.enqueue(Event::Campaign);
        self.run()
    }

    /// KAFKA-6082 mode: an active controller whose session expired in the middle of an
    /// event goes on with it (see [`Controller::on_session_lost`]).
    fn zombie(&self) -> bool {
        self.setup.props.bug(BugMode::Kafka6082)
            && self.core.ctx.is_some()
            && !self.current.is_empty()
    }

    /// The session expired or the broker is stopping: resign at once and forget everything
    /// (KafkaController.onControllerResignation).
    pub fn on_session_lost(&mut self) -> Vec<ControllerOut> {
        // bug-mode switch point: KAFKA-6082 (the KAFKA-3083 zombie): before 2.2 a controller
        // whose session expired went on with the event it was handling: ZkClient's
        // `retryUntilConnected` re-ran its operations on the next session, where writes
        // conditional on the partition state's zkVersion alone still landed, and its
        // requests still went out. It resigned only after that event (`Reelect`, queued
        // behind it once the new session was up). Since 2.2 the event queue is cleared and
        // every write checks `/controller_epoch`.
        if self.zombie() {
            for ev in std::mem::take(&mut self.queue) {
                if let Event::ControlledShutdown { token, .. } = ev {
                    not_controller(&mut self.core, token);
                }
            }
            self.core.park_pending();
            return self.core.take_out();
        }
        self.reset();
        self.core.active_id = None;
        self.core.take_out()
    }

    /// A ZooKeeper operation submitted for `tag` completed.
    pub fn on_zk(
        &mut self,
        tag: u64,
        result: &Result<OpResult, ZkError>,
        now_ns: u64,
    ) -> Vec<ControllerOut> {
        self.core.now_ns = now_ns;
        let Some((key, op)) = self.core.take_pending(tag) else {
            return self.core.take_out();
        };
        match result {
            // KAFKA-6082 mode: a zombie's operation is run again on the next session.
            Err(ZkError::SessionExpired | ZkError::Closed) if self.zombie() => {
                self.core.park(key, op);
                return self.core.take_out();
            }
            // The session is gone: on_session_lost follows.
            Err(ZkError::SessionExpired | ZkError::Closed) => return self.core.take_out(),
            // Retried as it is on the next tick: a write that did apply then fails on its
            // version or existence, which every phase already handles. The campaign alone
            // must verify instead (its retry would find its own /controller).
            Err(e) if (e.is_uncertain() || *e == ZkError::NotConnected) && key != Key::Campaign => {
                self.core.park(key, op);
                return self.core.take_out();
            }
            _ => {}
        }
        if let (Some(front), true) = (self.current.front_mut(), self.started) {
            let flow = front.on_result(&mut self.core, key, &op, result.clone());
            self.apply(flow);
        }
        self.run()
    }

    /// A watch of the broker's session fired.
    pub fn on_watch(&mut self, path: &str, kind: WatchKind, now_ns: u64) -> Vec<ControllerOut> {
        self.core.now_ns = now_ns;
        let children = kind == WatchKind::NodeChildrenChanged;
        match path {
            zkdata::CONTROLLER => self.enqueue(Event::Campaign),
            zkdata::BROKER_IDS if children => self.enqueue(Event::BrokerChange),
            zkdata::ISR_CHANGE if children => self.enqueue(Event::IsrChange),
            _ => {}
        }
        self.run()
    }

    /// A broker answered a controller request.
    pub fn on_response(
        &mut self,
        from: BrokerId,
        response: &Response,
        now_ns: u64,
    ) -> Vec<ControllerOut> {
        self.core.now_ns = now_ns;
        if let Some(request) = self.core.channel.on_response(from, response, now_ns) {
            self.core
                .out
                .push(ControllerOut::Send { to: from, request });
        }
        self.core.take_out()
    }

    /// The broker could not deliver the request in flight to `to` (no connection): it is
    /// re-sent after a short backoff instead of the full request timeout.
    pub fn on_send_failed(&mut self, to: BrokerId, now_ns: u64) -> Vec<ControllerOut> {
        self.core.now_ns = now_ns;
        self.core.channel.on_send_failed(to, now_ns);
        self.core.take_out()
    }

    /// A broker asks to shut down (sent to this broker as the controller).
    pub fn on_controlled_shutdown(
        &mut self,
        token: u64,
        broker: BrokerId,
        broker_epoch: i64,
        now_ns: u64,
    ) -> Vec<ControllerOut> {
        self.core.now_ns = now_ns;
        self.enqueue(Event::ControlledShutdown {
            token,
            broker,
            broker_epoch,
        });
        self.run()
    }

    /// The broker's periodic tick (retries of failed ZooKeeper writes and requests).
    pub fn on_tick(&mut self, now_ns: u64) -> Vec<ControllerOut> {
        self.core.now_ns = now_ns;
        self.core.unpark();
        for (to, request) in self.core.channel.on_tick(now_ns) {
            self.core.out.push(ControllerOut::Send { to, request });
        }
        self.run()
    }

    /// Queues `ev`; a watch event already waiting in the queue is not queued twice (its
    /// handler re-reads everything anyway).
    fn enqueue(&mut self, ev: Event) {
        let repeatable = matches!(ev, Event::ControlledShutdown { .. });
        if repeatable || !self.queue.contains(&ev) {
            self.queue.push_back(ev);
        }
    }

    /// Runs phases until one waits for ZooKeeper or nothing is left; returns the outputs.
    fn run(&mut self) -> Vec<ControllerOut> {
        loop {
            if self.current.is_empty() {
                let Some(ev) = self.queue.pop_front() else {
                    break;
                };
                self.current = self.phases_for(ev).into();
                self.started = false;
                continue;
            }
            if self.started {
                break;
            }
            self.started = true;
            let flow = self.current[0].start(&mut self.core);
            self.apply(flow);
        }
        self.core.take_out()
    }

    fn apply(&mut self, flow: Flow<Phase>) {
        match flow {
            Flow::Wait => {}
            Flow::Done => {
                self.current.pop_front();
                self.started = false;
            }
            Flow::Then(next) => {
                self.current.pop_front();
                for p in next.into_iter().rev() {
                    self.current.push_front(p);
                }
                self.started = false;
            }
            Flow::Resign => {
                // ControllerMovedException: resign, then see who holds /controller now.
                self.abandon_current();
                self.core.reset();
                self.queue.push_front(Event::Campaign);
            }
        }
    }

    fn phases_for(&mut self, ev: Event) -> Vec<Phase> {
        let active = self.core.ctx.is_some();
        match ev {
            Event::Campaign => vec![Phase::Campaign(Default::default())],
            Event::BrokerChange if active => {
                vec![Phase::LoadBrokers(brokers::LoadBrokers::new(
                    brokers::BrokerLoad::Change,
                ))]
            }
            Event::IsrChange if active => vec![Phase::IsrNotify(isr_notify::IsrNotify::new(false))],
            Event::ControlledShutdown {
                token,
                broker,
                broker_epoch,
            } => vec![Phase::Step(Step::ShutdownStart {
                token,
                broker,
                broker_epoch,
            })],
            Event::BrokerChange | Event::IsrChange => Vec::new(),
            Event::Reelect => {
                // onControllerResignation, then elect.
                self.core.reset();
                vec![Phase::Campaign(Default::default())]
            }
        }
    }

    /// Drops the phases being run, answering the shutdown waiting on them.
    fn abandon_current(&mut self) {
        for p in std::mem::take(&mut self.current) {
            p.abandon(&mut self.core);
        }
        self.started = false;
    }

    /// Forgets everything (a session ended or began), answering pending shutdowns.
    fn reset(&mut self) {
        self.abandon_current();
        for ev in std::mem::take(&mut self.queue) {
            if let Event::ControlledShutdown { token, .. } = ev {
                not_controller(&mut self.core, token);
            }
        }
        self.core.reset();
    }
}
