//! The broker as a ZooKeeper client (Kafka's `KafkaZkClient` over `ZooKeeperClient`): the
//! session, the broker registration whose czxid is the broker epoch (KIP-380), routing of
//! completions between the broker's own operations and the hosted controller's, ISR writes
//! conditional on the partition state's zkVersion, and ISR change notifications.
//!
//! Registration follows `KafkaZkClient.registerBroker`'s checked ephemeral create: a
//! NodeExists (or an uncertain create) is resolved by reading the node: if this session
//! owns it the create had applied; if an older session still owns it (a fast restart
//! before the old session expired) the broker retries each tick until it is gone. Real
//! Kafka fails the start-up there instead; retrying keeps the simulated broker alive.
//!
//! An ISR write whose outcome is uncertain (connection loss, timeout) is written again with
//! the same expected version (the first copy may still be travelling on the old connection:
//! with the same version at most one of them applies), and a BadVersion is resolved the way
//! `ReplicationUtils.updateLeaderAndIsr`'s data checker does: read the state back and
//! compare. Until then the change stays pending, so the ISR the leader counts for the HW
//! stays a superset of the one ZooKeeper may hold. When the read-back finds other data the
//! leader gives up as Kafka 2.7+ does and the change stays pending until the next
//! LeaderAndIsr (a copy may have applied before the controller overwrote it: kafka-nemesis
//! seed 402913); other data of the leader's own epoch is adopted instead.

use std::collections::BTreeMap;

use super::Broker;
use crate::kafka::config::BugMode;
use crate::kafka::msg::{BrokerId, TopicPartition};
use crate::kafka::replica::IsrChange;
use crate::kafka::wire::WireMsg;
use crate::kafka::zkdata::{self, BrokerRegistration, IsrChangeNotification, PartitionStateData};
use crate::node::{Context, Event};
use crate::zab::client::{
    ClientConfig, ClientEvent, Completion, SessionState, ZkClient, ZkError, CLIENT_TAG_BASE,
};
use crate::zab::msg::{ErrCode, Msg as ZkMsg, Op, OpResult};

/// The embedded client's own clock (heartbeats, request timeouts).
const ZK_TICK_NS: u64 = 100_000_000;

/// What a ZooKeeper operation was submitted for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZkPurpose {
    TopLevel,
    Register,
    /// Reading `/brokers/ids/<id>` after a NodeExists or an uncertain create.
    RegisterCheck,
    IsrWrite(IsrChange),
    /// Reading a partition state back after an uncertain ISR write.
    IsrVerify(IsrChange),
    IsrNotify(Vec<TopicPartition>),
    Controller(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// A create or check is in flight.
    InFlight,
    /// Try again on the next tick (`top_level`: recreate the parents first).
    Retry {
        top_level: bool,
    },
    Registered {
        czxid: i64,
    },
}

/// One ZooKeeper session of the broker and what is in flight on it.
#[derive(Clone, Debug)]
pub struct ZkSession {
    pub client: ZkClient,
    pub ops: BTreeMap<u64, ZkPurpose>,
    pub registration: Registration,
}

impl Broker {
    /// Opens a new session (ZooKeeper shuffles its connect string: the first server is
    /// drawn) and queues the top-level creates and the registration.
    pub(super) fn start_session(&mut self, ctx: &mut Context<'_, WireMsg>) {
        use rand::Rng;
        self.zk_generation += 1;
        let timeout_ms = self.setup.props.zookeeper_session_timeout_ms;
        let servers = self.setup.zk_servers.clone();
        let cfg = ClientConfig {
            // ClientCnxn's read timeout is 2/3 of the session timeout, its connect timeout
            // the session timeout over the number of servers.
            request_timeout_ns: timeout_ms * 1_000_000 * 2 / 3,
            connect_timeout_ns: timeout_ms * 1_000_000 / servers.len().max(1) as u64,
            servers,
            session_timeout_ms: timeout_ms,
            tick_ns: ZK_TICK_NS,
            timer_tag: CLIENT_TAG_BASE + self.zk_generation,
        };
        let first = ctx.rng().gen_range(0..cfg.servers.len());
        let mut client = ZkClient::new(cfg, first);
        self.zk_recorder.borrow_mut().new_handle();
        ctx.scoped(|inner: &mut Context<'_, ZkMsg>| client.start(inner));
        self.zk = Some(ZkSession {
            client,
            ops: BTreeMap::new(),
            registration: Registration::InFlight,
        });
        self.register(ctx, true);
    }

    pub(super) fn zk_submit(&mut self, ctx: &mut Context<'_, WireMsg>, op: Op, why: ZkPurpose) {
        let Some(zk) = &mut self.zk else {
            return;
        };
        let client = &mut zk.client;
        let mut recorder = self.zk_recorder.borrow_mut();
        let id = ctx.scoped(|inner: &mut Context<'_, ZkMsg>| recorder.submit(inner, client, op));
        zk.ops.insert(id, why);
    }

    fn register(&mut self, ctx: &mut Context<'_, WireMsg>, top_level: bool) {
        if top_level {
            for path in zkdata::TOP_LEVEL {
                let op = create(path, Vec::new(), false, false);
                self.zk_submit(ctx, op, ZkPurpose::TopLevel);
            }
        }
        let data = zkdata::encode(&BrokerRegistration::new(self.id));
        let op = create(&zkdata::broker_path(self.id), data, true, false);
        self.zk_submit(ctx, op, ZkPurpose::Register);
        if let Some(zk) = &mut self.zk {
            zk.registration = Registration::InFlight;
        }
    }

    /// Whether a kernel event belongs to the ZooKeeper client.
    pub(super) fn zk_owns(&self, event: &Event<WireMsg>) -> bool {
        let Some(zk) = &self.zk else {
            return false;
        };
        match event {
            Event::ConnUp { conn, .. }
            | Event::ConnDown { conn, .. }
            | Event::Message { conn, .. } => zk.client.owns(*conn),
            Event::Timer { tag, .. } => zk.client.owns_timer(*tag),
            _ => false,
        }
    }

    pub(super) fn zk_event(&mut self, ctx: &mut Context<'_, WireMsg>, event: Event<WireMsg>) {
        let Some(zk) = &mut self.zk else {
            return;
        };
        let Some(ev) = event.map_msg(WireMsg::into_zk) else {
            return;
        };
        let client = &mut zk.client;
        ctx.scoped(|inner: &mut Context<'_, ZkMsg>| client.on_event(inner, ev));
    }

    /// Handles everything the client reported. Returns whether there was anything.
    pub(super) fn drain_zk(&mut self, ctx: &mut Context<'_, WireMsg>) -> bool {
        let Some(zk) = &mut self.zk else {
            return false;
        };
        // Most settles find nothing: decided without building a list.
        let Some(first) = zk.client.next_event() else {
            return false;
        };
        let mut events = vec![first];
        events.extend(std::iter::from_fn(|| zk.client.next_event()));
        // Into the history first, all of them: handling one may replace the handle.
        let mut recorder = self.zk_recorder.borrow_mut();
        for event in &events {
            if let ClientEvent::Completion(c) = event {
                recorder.complete(c);
            }
        }
        drop(recorder);
        for event in events {
            match event {
                ClientEvent::Completion(c) => self.on_completion(ctx, c),
                ClientEvent::Watch { path, kind } => {
                    let now = ctx.now();
                    self.with_controller(ctx, |c| c.on_watch(&path, kind, now));
                }
                ClientEvent::State(SessionState::Connected { session }) => {
                    self.zk_session = session;
                }
                ClientEvent::State(SessionState::Expired) => {
                    self.on_session_expired(ctx);
                    return true;
                }
                ClientEvent::State(_) => {}
            }
        }
        true
    }

    fn on_completion(&mut self, ctx: &mut Context<'_, WireMsg>, c: Completion) {
        let Some(why) = self.zk.as_mut().and_then(|zk| zk.ops.remove(&c.op_id)) else {
            return;
        };
        match why {
            ZkPurpose::TopLevel => {}
            ZkPurpose::Register => self.on_register_result(ctx, &c.result),
            ZkPurpose::RegisterCheck => self.on_register_check(ctx, &c.result),
            ZkPurpose::IsrWrite(change) => self.on_isr_write(ctx, change, c.result),
            ZkPurpose::IsrVerify(change) => self.on_isr_verify(change, &c.result),
            ZkPurpose::IsrNotify(tps) => {
                if c.result.is_err() {
                    self.isr_changed.extend(tps);
                }
            }
            ZkPurpose::Controller(tag) => {
                let now = ctx.now();
                self.with_controller(ctx, |ctl| ctl.on_zk(tag, &c.result, now));
            }
        }
    }

    fn on_register_result(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        r: &Result<OpResult, ZkError>,
    ) {
        match r {
            Ok(OpResult::Created { stat, .. }) => self.on_registered(ctx, stat.czxid as i64),
            Err(ZkError::Server(ErrCode::NodeExists))
            | Err(ZkError::ConnectionLoss)
            | Err(ZkError::Timeout) => {
                let op = Op::GetData {
                    path: zkdata::broker_path(self.id),
                    watch: false,
                };
                self.zk_submit(ctx, op, ZkPurpose::RegisterCheck);
            }
            Err(ZkError::SessionExpired) | Err(ZkError::Closed) => {}
            Err(e) => {
                let top_level = *e == ZkError::Server(ErrCode::NoNode);
                self.set_registration(Registration::Retry { top_level });
            }
            Ok(_) => self.set_registration(Registration::Retry { top_level: false }),
        }
    }

    fn on_register_check(&mut self, ctx: &mut Context<'_, WireMsg>, r: &Result<OpResult, ZkError>) {
        let session = self.zk.as_ref().map_or(0, |zk| zk.client.session());
        match r {
            Ok(OpResult::Data { stat, .. }) if stat.ephemeral_owner == session => {
                self.on_registered(ctx, stat.czxid as i64)
            }
            Err(ZkError::SessionExpired) | Err(ZkError::Closed) => {}
            // Another (older) session's node, or gone meanwhile: create again next tick.
            _ => self.set_registration(Registration::Retry { top_level: false }),
        }
    }

    fn set_registration(&mut self, reg: Registration) {
        if let Some(zk) = &mut self.zk {
            zk.registration = reg;
        }
    }

    /// Registered with broker epoch `czxid`: the controller campaigns.
    fn on_registered(&mut self, ctx: &mut Context<'_, WireMsg>, czxid: i64) {
        self.set_registration(Registration::Registered { czxid });
        self.broker_epoch = Some(czxid);
        self.fence_broker_epoch = czxid;
        for (origin, request) in std::mem::take(&mut self.before_registration) {
            self.handle_request(ctx, origin, request);
        }
        let now = ctx.now();
        self.with_controller(ctx, |c| c.on_session(now));
    }

    /// Kafka's `SessionExpirationListener`: resign as controller, then a new session and a
    /// new registration (a new broker epoch).
    fn on_session_expired(&mut self, ctx: &mut Context<'_, WireMsg>) {
        self.broker_epoch = None;
        self.with_controller(ctx, |c| c.on_session_lost());
        if self.setup.props.bug(BugMode::Kafka2729) {
            self.abandon_isr_writes();
            if !self.stopping() {
                self.start_session(ctx);
            }
            return;
        }
        // ISR writes of the dead session never reached ZooKeeper after its expiry, but
        // may have before: keep them pending until a read on the new session settles them.
        if let Some(zk) = self.zk.take() {
            for why in zk.ops.into_values() {
                match why {
                    ZkPurpose::IsrWrite(ch) => {
                        self.uncertain_isr.insert(ch.tp.clone(), (ch, false));
                    }
                    ZkPurpose::IsrVerify(ch) => {
                        self.uncertain_isr.insert(ch.tp.clone(), (ch, true));
                    }
                    _ => {}
                }
            }
        }
        if self.stopping() {
            return;
        }
        self.start_session(ctx);
    }

    /// KAFKA-2729 mode: the ISR writes of an expired session, in flight or waiting to be
    /// sent again, are given up as failed.
    fn abandon_isr_writes(&mut self) {
        // bug-mode switch point: KAFKA-2729. KafkaZkClient retried a request only on
        // CONNECTIONLOSS; one failed with SESSIONEXPIRED threw out of
        // `ReplicationUtils.updateLeaderAndIsr`, and `Partition.updateIsr` kept its ISR and
        // cached zkVersion as they were, although the write may have applied before the
        // expiry (its answer lost with the connection). From then on every conditional
        // write fails on its version, and the read-back (`checkLeaderAndIsrZkData`) finds
        // another ISR than the one asked for: "Cached zkVersion not equal to that in
        // zookeeper, skip updating ISR" until a LeaderAndIsr of a newer leader epoch.
        let mut dead: Vec<IsrChange> = Vec::new();
        if let Some(zk) = self.zk.take() {
            for why in zk.ops.into_values() {
                if let ZkPurpose::IsrWrite(ch) | ZkPurpose::IsrVerify(ch) = why {
                    dead.push(ch);
                }
            }
        }
        dead.extend(
            std::mem::take(&mut self.uncertain_isr)
                .into_values()
                .map(|(ch, _)| ch),
        );
        for ch in dead {
            self.isr_settled(&ch, None);
        }
    }

    /// Writes a leader's ISR change, conditional on the zkVersion it knows (B.2).
    pub(super) fn submit_isr_change(&mut self, ctx: &mut Context<'_, WireMsg>, ch: IsrChange) {
        let state = PartitionStateData::new(
            Some(ch.leader),
            ch.leader_epoch,
            &ch.isr,
            ch.controller_epoch,
        );
        let op = Op::SetData {
            path: zkdata::partition_state_path(&ch.tp),
            data: zkdata::encode(&state),
            version: ch.expected_zk_version,
        };
        self.zk_submit(ctx, op, ZkPurpose::IsrWrite(ch));
    }

    fn on_isr_write(
        &mut self,
        ctx: &mut Context<'_, WireMsg>,
        ch: IsrChange,
        r: Result<OpResult, ZkError>,
    ) {
        match r {
            Ok(OpResult::SetStat(stat)) => self.isr_settled(&ch, Some(stat.version)),
            // Applied or not, the first attempt may still be on its way on the old
            // connection: write again with the same expected version, so that at most one
            // of the two can apply (KafkaZkClient retries until connected).
            Err(e) if e.is_uncertain() => {
                if self.still_pending(&ch) {
                    self.submit_isr_change(ctx, ch);
                }
            }
            // The version moved: read back whether it was this change (Kafka's
            // `checkLeaderAndIsrZkData` after a BadVersion).
            Err(ZkError::Server(ErrCode::BadVersion)) => {
                let op = Op::GetData {
                    path: zkdata::partition_state_path(&ch.tp),
                    watch: false,
                };
                self.zk_submit(ctx, op, ZkPurpose::IsrVerify(ch));
            }
            // This copy was never sent, but an earlier one may be in flight; or the session
            // died (ZooKeeper refuses an expired session's requests): write again once a
            // session is connected.
            Err(ZkError::SessionExpired) | Err(ZkError::Closed)
                if self.setup.props.bug(BugMode::Kafka2729) =>
            {
                self.isr_settled(&ch, None)
            }
            Err(ZkError::NotConnected) | Err(ZkError::SessionExpired) | Err(ZkError::Closed) => {
                self.uncertain_isr.insert(ch.tp.clone(), (ch, false));
            }
            _ => self.isr_settled(&ch, None),
        }
    }

    /// Whether the replica still leads in the epoch of `ch` (else its write is moot).
    fn still_pending(&self, ch: &IsrChange) -> bool {
        self.replicas
            .get(&ch.tp)
            .is_some_and(|r| r.is_leader() && r.leader_epoch() == Some(ch.leader_epoch))
    }

    /// The read-back after a BadVersion (`ReplicationUtils.checkLeaderAndIsrZkData`): our
    /// own data means a copy of the write applied (`conditionalUpdatePath` then reports
    /// success with the version read). Other data of this leader's own epoch naming it
    /// leader is adopted (see [`crate::kafka::replica::Replica::isr_write_superseded`]);
    /// anything else (a newer leader epoch: the controller moved the partition on) is a
    /// failure, and the leader keeps its pending change until the LeaderAndIsr that follows.
    fn on_isr_verify(&mut self, ch: IsrChange, r: &Result<OpResult, ZkError>) {
        match r {
            Ok(OpResult::Data { data, stat }) => {
                let ours = PartitionStateData::new(
                    Some(ch.leader),
                    ch.leader_epoch,
                    &ch.isr,
                    ch.controller_epoch,
                );
                let found = zkdata::decode::<PartitionStateData>(data);
                if found.as_ref() == Some(&ours) {
                    return self.isr_settled(&ch, Some(stat.version));
                }
                // bug-mode switch point: KAFKA-2729 (the pre-2.7 leader kept its stale
                // zkVersion: see `Replica::isr_write_failed`).
                let own_epoch = found.filter(|d| {
                    d.leader() == Some(ch.leader)
                        && d.leader_epoch == ch.leader_epoch
                        && !self.setup.props.bug(BugMode::Kafka2729)
                });
                match own_epoch {
                    Some(d) => self.isr_superseded(&ch, &d.isr, stat.version),
                    None => self.isr_settled(&ch, None),
                }
            }
            Err(ZkError::Server(_)) => self.isr_settled(&ch, None),
            // Not read: read again once the session allows (the version has moved past
            // the expected one, so no copy of the write can still apply).
            _ => {
                self.uncertain_isr.insert(ch.tp.clone(), (ch, true));
            }
        }
    }

    /// ZooKeeper holds another ISR of the leader's own epoch: the leader adopts it.
    fn isr_superseded(&mut self, ch: &IsrChange, isr: &[BrokerId], version: i32) {
        self.uncertain_isr.remove(&ch.tp);
        if !self.still_pending(ch) {
            return;
        }
        if let Some(r) = self.replicas.get_mut(&ch.tp) {
            r.isr_write_superseded(isr, version);
        }
    }

    /// The outcome of an ISR write is known: tell the replica if it still leads in the
    /// epoch that asked, and queue the change notification. `None`: the write does not
    /// count as far as the broker can tell (see `Replica::isr_write_failed`).
    fn isr_settled(&mut self, ch: &IsrChange, version: Option<i32>) {
        self.uncertain_isr.remove(&ch.tp);
        let Some(r) = self.replicas.get_mut(&ch.tp) else {
            return;
        };
        if !r.is_leader() || r.leader_epoch() != Some(ch.leader_epoch) {
            return;
        }
        match version {
            Some(v) => {
                r.isr_write_succeeded(v);
                self.isr_changed.insert(ch.tp.clone());
            }
            None => r.isr_write_failed(),
        }
    }

    /// The ZooKeeper part of the broker's tick: a registration to retry, uncertain ISR
    /// writes to read back, ISR change notifications to propagate.
    pub(super) fn zk_tick(&mut self, ctx: &mut Context<'_, WireMsg>) {
        let Some(zk) = &self.zk else {
            return;
        };
        let connected = zk.client.is_connected();
        if let Registration::Retry { top_level } = zk.registration {
            self.register(ctx, top_level);
        }
        if !connected {
            return;
        }
        for (_, (ch, read)) in std::mem::take(&mut self.uncertain_isr) {
            if !self.still_pending(&ch) {
                continue;
            }
            if read {
                let op = Op::GetData {
                    path: zkdata::partition_state_path(&ch.tp),
                    watch: false,
                };
                self.zk_submit(ctx, op, ZkPurpose::IsrVerify(ch));
            } else {
                self.submit_isr_change(ctx, ch);
            }
        }
        // Kafka batches notifications (`isrChangeNotificationPropagation`, every 2.5 s);
        // one per tick with every partition changed since keeps the controller's metadata
        // close behind.
        if !self.isr_changed.is_empty() {
            let tps: Vec<TopicPartition> =
                std::mem::take(&mut self.isr_changed).into_iter().collect();
            let data = zkdata::encode(&IsrChangeNotification::new(&tps));
            let op = create(zkdata::ISR_CHANGE_PREFIX, data, false, true);
            self.zk_submit(ctx, op, ZkPurpose::IsrNotify(tps));
        }
    }
}

fn create(path: &str, data: Vec<u8>, ephemeral: bool, sequential: bool) -> Op {
    Op::Create {
        path: path.to_string(),
        data,
        ephemeral,
        sequential,
    }
}
