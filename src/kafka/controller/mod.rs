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
//! May depend on: `kafka` (msg, zkdata, config), `zab::msg` (operations and results),
//! `zab::client` (ZkError).

use std::rc::Rc;

use super::config::{ServerProperties, TopicSpec};
use super::msg::{BrokerId, Request, Response};
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
    Send { to: BrokerId, request: Request },
    /// Answer the ControlledShutdown request the broker passed in with `token`.
    Reply { token: u64, response: Response },
}

/// The controller of one broker: an elector always, the active controller sometimes.
#[derive(Clone, Debug)]
pub struct Controller {
    setup: Rc<ControllerSetup>,
    active_epoch: Option<u32>,
}

impl Controller {
    pub fn new(setup: Rc<ControllerSetup>) -> Self {
        Controller {
            setup,
            active_epoch: None,
        }
    }

    /// This broker's id.
    pub fn me(&self) -> BrokerId {
        self.setup.me
    }

    /// Some(controller epoch) while this broker is the active controller.
    pub fn active_epoch(&self) -> Option<u32> {
        self.active_epoch
    }

    /// The broker's ZooKeeper session is established (the first one, or a new one after an
    /// expiry) and the broker is registered: watch `/controller` and campaign.
    pub fn on_session(&mut self, _now_ns: u64) -> Vec<ControllerOut> {
        Vec::new()
    }

    /// The session expired or the broker is stopping: resign at once and forget everything
    /// (KafkaController.onControllerResignation).
    pub fn on_session_lost(&mut self) -> Vec<ControllerOut> {
        self.active_epoch = None;
        Vec::new()
    }

    /// A ZooKeeper operation submitted for `tag` completed.
    pub fn on_zk(
        &mut self,
        _tag: u64,
        _result: &Result<OpResult, ZkError>,
        _now_ns: u64,
    ) -> Vec<ControllerOut> {
        Vec::new()
    }

    /// A watch of the broker's session fired.
    pub fn on_watch(&mut self, _path: &str, _kind: WatchKind, _now_ns: u64) -> Vec<ControllerOut> {
        Vec::new()
    }

    /// A broker answered a controller request.
    pub fn on_response(
        &mut self,
        _from: BrokerId,
        _response: &Response,
        _now_ns: u64,
    ) -> Vec<ControllerOut> {
        Vec::new()
    }

    /// A broker asks to shut down (sent to this broker as the controller).
    pub fn on_controlled_shutdown(
        &mut self,
        _token: u64,
        _broker: BrokerId,
        _broker_epoch: i64,
        _now_ns: u64,
    ) -> Vec<ControllerOut> {
        Vec::new()
    }

    /// The broker's periodic tick (retries of failed ZooKeeper writes and requests).
    pub fn on_tick(&mut self, _now_ns: u64) -> Vec<ControllerOut> {
        Vec::new()
    }
}
