//! A Kafka broker of the ZooKeeper era (KafkaServer with its ReplicaManager, replica
//! fetchers, KafkaApis and the KafkaController it may host), as a node of the simulated
//! world.
//!
//! The broker is a ZooKeeper client through the embedded `zab::client::ZkClient` (driven
//! through `Context::scoped`): it registers the ephemeral `/brokers/ids/<id>` (its czxid is
//! the broker epoch), hosts a [`Controller`] that campaigns for `/controller`, writes ISR
//! changes of the partitions it leads conditionally on their zkVersion, and on session
//! expiry starts a new session, re-registers and resigns as controller. Its partitions are
//! [`Replica`]s over logs on the node's virtual disk, recovered from the files alone on
//! restart.
//!
//! Modules: [`zk`] (session, registration, ISR writes), [`apis`] (request handling),
//! [`control`] (controller requests, metadata cache, hosting the controller),
//! [`purgatory`] (held produces and fetches), [`fetcher`] (replica fetchers), [`net`]
//! (broker-to-broker connections), [`storage`] (recovery, flushes, checkpoints),
//! [`shutdown`] (controlled shutdown).
//!
//! May depend on: `node`, `kafka`, `zab::client`, `zab::msg`.

pub mod apis;
pub mod control;
pub mod fetcher;
pub mod net;
pub mod purgatory;
pub mod replicas;
pub mod shutdown;
pub mod storage;
#[cfg(test)]
mod tests;
pub mod zk;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use super::config::{ServerProperties, TopicSpec};
use super::controller::{Controller, ControllerSetup};
use super::msg::{BrokerId, KafkaMsg, Request, Response, TopicPartition};
use super::replica::{ControllerEpochFence, IsrChange, Replica};
use super::wire::WireMsg;
use crate::node::{ConnId, Context, Event, Node, NodeId};
use crate::zab::record::Recorder;
use control::MetadataCache;
use fetcher::Fetchers;
use net::{Channel, Net};
use purgatory::{Purgatory, TAG_DELAYED_BASE};
use replicas::Replicas;
use shutdown::{Shutdown, TAG_SHUTDOWN};
use storage::Storage;
use zk::{Registration, ZkSession};

/// What every broker of a world knows from the scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSetup {
    /// The ZooKeeper servers' node ids (the connect string).
    pub zk_servers: Vec<NodeId>,
    /// The node id of broker `i` at index `i` (broker ids are `0..brokers.len()`).
    pub brokers: Vec<NodeId>,
    pub topics: Vec<TopicSpec>,
    pub props: ServerProperties,
}

/// What the online invariants may read of a live broker.
pub struct BrokerView<'a> {
    pub id: BrokerId,
    /// The czxid of this broker's current registration, once registered.
    pub broker_epoch: Option<i64>,
    /// The broker's current ZooKeeper session (0 before one is established).
    pub zk_session: u64,
    /// Some(controller epoch) while this broker is the active controller.
    pub controller_epoch: Option<u32>,
    /// Whether the controller here is in the middle of a leader or ISR change (a
    /// partition-state operation waits on ZooKeeper).
    pub controller_changing_state: bool,
    /// The highest controller epoch this broker has accepted a request from.
    pub fenced_controller_epoch: u32,
    pub replicas: &'a BTreeMap<TopicPartition, Replica>,
    /// The cluster as the last UpdateMetadata described it.
    pub metadata: &'a MetadataCache,
    /// Produce and fetch requests held in purgatory.
    pub held_requests: usize,
    /// Whether the broker is in a controlled shutdown.
    pub shutting_down: bool,
}

/// Where a request came from, so its answer can go back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A client or broker connection, with the request's correlation id.
    Remote { conn: ConnId, corr: u64 },
    /// This broker's own controller (requests it sends to its own broker).
    LocalController,
    /// This broker's own controlled shutdown, when the controller is here.
    LocalShutdown,
}

/// The broker's periodic work: ISR shrink checks, flushes by time, checkpoints, retries.
pub const TAG_TICK: u64 = 1;
pub const TICK_NS: u64 = 100 * 1_000_000;

pub struct Broker {
    id: BrokerId,
    setup: Rc<BrokerSetup>,
    controller: Controller,
    replicas: Replicas,
    /// The current registration's czxid (None before registration, and after an expiry
    /// until the new one).
    broker_epoch: Option<i64>,
    /// The latest registration's czxid, for KIP-380's fence (-1 before any).
    fence_broker_epoch: i64,
    zk_session: u64,
    zk_generation: u64,
    zk: Option<ZkSession>,
    /// Where every ZooKeeper operation of the broker and its controller is recorded. The
    /// world's harness holds it, so the history outlives this process (a crash, a restart).
    zk_recorder: Rc<RefCell<Recorder>>,
    /// ISR writes whose outcome is not known yet, to write again (false) or read back
    /// (true) once the session allows.
    uncertain_isr: BTreeMap<TopicPartition, (IsrChange, bool)>,
    /// Partitions whose ISR changed since the last notification.
    isr_changed: BTreeSet<TopicPartition>,
    fence: ControllerEpochFence,
    metadata: MetadataCache,
    net: Net,
    storage: Storage,
    purgatory: Purgatory,
    fetchers: Fetchers,
    /// Answers to requests that came from this broker itself.
    inbox: VecDeque<(Origin, Response)>,
    /// Controller requests that arrived before this process first registered, served once
    /// it has (see `Broker::handle_request`).
    before_registration: Vec<(Origin, Request)>,
    /// ControlledShutdown requests handed to the controller, by token.
    tokens: BTreeMap<u64, Origin>,
    next_token: u64,
    next_producer_seq: i64,
    last_isr_check_ns: u64,
    shutdown: Shutdown,
    stopped: bool,
}

impl Broker {
    pub fn new(id: BrokerId, setup: Rc<BrokerSetup>) -> Self {
        let controller = Controller::new(Rc::new(ControllerSetup {
            me: id,
            brokers: setup.brokers.len() as u32,
            topics: setup.topics.clone(),
            props: setup.props.clone(),
        }));
        Broker {
            id,
            setup,
            controller,
            replicas: Replicas::default(),
            broker_epoch: None,
            fence_broker_epoch: -1,
            zk_session: 0,
            zk_generation: 0,
            zk: None,
            zk_recorder: Rc::default(),
            uncertain_isr: BTreeMap::new(),
            isr_changed: BTreeSet::new(),
            fence: ControllerEpochFence::default(),
            metadata: MetadataCache::default(),
            net: Net::default(),
            storage: Storage::default(),
            purgatory: Purgatory::default(),
            before_registration: Vec::new(),
            fetchers: Fetchers::default(),
            inbox: VecDeque::new(),
            tokens: BTreeMap::new(),
            next_token: 0,
            next_producer_seq: 0,
            last_isr_check_ns: 0,
            shutdown: Shutdown::Running,
            stopped: false,
        }
    }

    /// Records the broker's ZooKeeper operations into `recorder` (the harness's, shared by
    /// every incarnation of this broker) instead of a private one.
    pub fn recording_zk_into(mut self, recorder: Rc<RefCell<Recorder>>) -> Self {
        self.zk_recorder = recorder;
        self
    }

    /// The broker's ZooKeeper history so far (every incarnation's, when shared).
    pub fn zk_history(&self) -> std::cell::Ref<'_, Recorder> {
        self.zk_recorder.borrow()
    }

    pub fn id(&self) -> BrokerId {
        self.id
    }

    pub fn setup(&self) -> &BrokerSetup {
        &self.setup
    }

    pub fn view(&self) -> BrokerView<'_> {
        BrokerView {
            id: self.id,
            broker_epoch: self.broker_epoch,
            zk_session: self.zk_session,
            controller_epoch: self.controller.active_epoch(),
            controller_changing_state: self.controller.changing_partition_state(),
            fenced_controller_epoch: self.fence.highest,
            replicas: &self.replicas,
            metadata: &self.metadata,
            held_requests: self.purgatory.len(),
            shutting_down: self.shutdown != Shutdown::Running,
        }
    }

    /// The online monitor's marks of the replicas handed out for change since it last
    /// took them (see [`replicas`]); taking them changes nothing the broker does.
    pub fn take_monitor_marks(&self) -> replicas::Marks {
        self.replicas.take_monitor_marks()
    }

    /// Whether the broker holds a registration (tests and views).
    pub fn registered(&self) -> bool {
        matches!(
            self.zk.as_ref().map(|z| z.registration),
            Some(Registration::Registered { .. })
        )
    }

    /// `KafkaServer.startup`: recover the logs, then the ZooKeeper session. A log that
    /// cannot be recovered halts the broker (Kafka fails its start-up).
    fn start(&mut self, ctx: &mut Context<'_, WireMsg>) {
        match storage::recover_all(ctx.disk(), self.id, &self.setup.props) {
            Ok(replicas) => self.replicas.set_all(replicas),
            Err(why) => {
                self.stopped = true;
                return ctx.halt(format!("log recovery failed: {why}"));
            }
        }
        // Make what recovery cut or removed durable before anything new is written.
        for r in self.replicas.values_mut() {
            self.storage.start_flush(ctx, r, false);
        }
        self.storage.epochs_recovered(&self.replicas);
        ctx.set_timer(TICK_NS, TAG_TICK);
        self.start_session(ctx);
    }

    fn tick(&mut self, ctx: &mut Context<'_, WireMsg>) {
        ctx.set_timer(TICK_NS, TAG_TICK);
        let now = ctx.now();
        for d in self.net.tick(ctx, &self.setup.brokers) {
            self.on_dropped(ctx, &d);
        }
        self.zk_tick(ctx);
        // ReplicaManager's `isr-expiration` task runs every replica.lag.time.max.ms / 2.
        let every = self.setup.props.replica_lag_time_max_ns() / 2;
        if now.saturating_sub(self.last_isr_check_ns) >= every {
            self.last_isr_check_ns = now;
            self.maybe_shrink_isrs(ctx);
        }
        self.storage
            .tick(ctx, &mut self.replicas, &self.setup.props);
        self.with_controller(ctx, |c| c.on_tick(now));
    }

    fn maybe_shrink_isrs(&mut self, ctx: &mut Context<'_, WireMsg>) {
        let now = ctx.now();
        let props = &self.setup.props;
        let changes: Vec<IsrChange> = (self.replicas.values_mut())
            .filter_map(|r| r.maybe_shrink_isr(now, props))
            .collect();
        for ch in changes {
            self.submit_isr_change(ctx, ch);
        }
    }

    /// Sends an answer back where its request came from.
    pub(crate) fn respond(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        origin: Origin,
        body: Response,
    ) {
        match origin {
            Origin::Remote { conn, corr } => {
                let msg = KafkaMsg::Response {
                    correlation_id: corr,
                    body,
                };
                ctx.send(conn, WireMsg::Kafka(msg));
            }
            Origin::LocalController | Origin::LocalShutdown => {
                self.inbox.push_back((origin, body));
            }
        }
    }

    /// A message on a connection: a request to serve, or the answer to one of ours.
    fn on_kafka_msg(&mut self, ctx: &mut Context<'_, WireMsg>, conn: ConnId, msg: KafkaMsg) {
        match msg {
            KafkaMsg::Request {
                correlation_id,
                body,
            } => {
                let origin = Origin::Remote {
                    conn,
                    corr: correlation_id,
                };
                self.handle_request(ctx, origin, body);
            }
            KafkaMsg::Response {
                correlation_id,
                body,
            } => {
                let Some((peer, channel)) = self.net.on_response(conn, correlation_id) else {
                    return;
                };
                match channel {
                    Channel::Controller => {
                        let now = ctx.now();
                        self.with_controller(ctx, |c| c.on_response(peer, &body, now));
                    }
                    Channel::Fetcher => self.on_fetch_response(ctx, peer, correlation_id, body),
                    Channel::Shutdown => self.on_shutdown_response(ctx, body),
                }
            }
        }
    }

    /// After every event: everything the ZooKeeper client reported and every local answer
    /// (each may cause more), then the held requests and the fetchers.
    fn settle(&mut self, ctx: &mut Context<'_, WireMsg>) {
        loop {
            let zk = self.drain_zk(ctx);
            let local = self.inbox.pop_front();
            match local {
                Some((Origin::LocalController, resp)) => {
                    let (now, me) = (ctx.now(), self.id);
                    self.with_controller(ctx, |c| c.on_response(me, &resp, now));
                }
                Some((Origin::LocalShutdown, resp)) => self.on_shutdown_response(ctx, resp),
                Some((Origin::Remote { .. }, _)) => unreachable!("remote answers are sent"),
                None if !zk => break,
                None => {}
            }
        }
        if self.stopped {
            return;
        }
        let marks = self.replicas.purgatory_marks();
        (self.storage).sync_epoch_checkpoints(ctx, &self.replicas, marks);
        self.check_purgatory(ctx);
        self.pump_fetchers(ctx);
    }

    /// A request of ours lost with its connection: its sender decides what next.
    fn on_dropped(&mut self, ctx: &mut Context<'_, WireMsg>, d: &net::Dropped) {
        match d.channel {
            Channel::Fetcher => self.fetchers.on_dropped(d),
            Channel::Shutdown => self.on_shutdown_dropped(ctx, d),
            Channel::Controller => {
                let now = ctx.now();
                self.with_controller(ctx, |c| c.on_send_failed(d.peer, now));
            }
        }
    }

    fn on_conn_event(&mut self, ctx: &mut Context<'_, WireMsg>, event: Event<WireMsg>) {
        match event {
            Event::ConnUp { conn, .. } => self.net.on_up(ctx, conn),
            Event::ConnDown { conn, .. } => {
                for d in self.net.on_down(ctx.now(), conn) {
                    self.on_dropped(ctx, &d);
                }
                self.purgatory.drop_conn(conn);
            }
            Event::Message { conn, msg, .. } => {
                if let Some(msg) = msg.into_kafka() {
                    self.on_kafka_msg(ctx, conn, msg);
                }
            }
            _ => {}
        }
    }
}

impl Node for Broker {
    type Msg = WireMsg;
    fn on_event(&mut self, ctx: &mut Context<'_, WireMsg>, event: Event<WireMsg>) {
        if self.stopped {
            return;
        }
        if self.zk_owns(&event) {
            self.zk_event(ctx, event);
        } else {
            match event {
                Event::Start { .. } => self.start(ctx),
                Event::Stop => self.begin_shutdown(ctx),
                Event::Timer { tag: TAG_TICK, .. } => self.tick(ctx),
                Event::Timer {
                    tag: TAG_SHUTDOWN, ..
                } => self.shutdown_attempt(ctx),
                Event::Timer { tag, .. } if tag > TAG_DELAYED_BASE => {
                    self.expire_delayed(ctx, tag - TAG_DELAYED_BASE)
                }
                Event::Timer { .. } => {}
                Event::FsyncDone { fsync, .. } => {
                    self.storage.on_fsync_done(ctx, fsync, &mut self.replicas);
                }
                ev => self.on_conn_event(ctx, ev),
            }
        }
        self.settle(ctx);
    }
}
