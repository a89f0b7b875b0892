//! Controller election (KafkaController.elect with
//! KafkaZkClient.registerControllerAndIncrementControllerEpoch).
//!
//! Watch `/controller` with an exists watch and read who holds it. When it is absent, read
//! `/controller_epoch` (creating it with "0" when missing), then in one multi create the
//! ephemeral `/controller` and set `/controller_epoch` to epoch+1 conditionally on the
//! version read. Losing (NodeExists or BadVersion) leaves the exists watch to tell when
//! `/controller` goes again. A multi whose answer was lost is verified by reading back
//! `/controller` and the epoch, as Kafka's `checkControllerAndEpoch` does.
//!
//! The same phase handles every change of `/controller` (ControllerChange and Reelect): it
//! re-arms the watch, and an active controller that finds `/controller` gone or someone
//! else's resigns.
//!
//! May depend on: `kafka::zkdata`, `kafka::controller::*`, `zab::msg`, `zab::client`.

use super::super::zkdata::{self, ControllerData};
use super::context::ControllerContext;
use super::core::{written_stat, Core, Flow, Key};
use super::load::failover_phases;
use super::phase::Phase;
use crate::zab::client::ZkError;
use crate::zab::msg::{ErrCode, Op, OpResult};

#[derive(Clone, Debug, Default)]
pub struct Campaign {
    /// The new epoch this campaign tries to win.
    new_epoch: u32,
}

impl Campaign {
    pub fn start(&mut self, core: &mut Core) -> Flow<Phase> {
        let op = Op::Exists {
            path: zkdata::CONTROLLER.into(),
            watch: true,
        };
        core.submit(Key::ControllerExists, op);
        Flow::Wait
    }

    pub fn on_result(
        &mut self,
        core: &mut Core,
        key: Key,
        result: Result<OpResult, ZkError>,
    ) -> Flow<Phase> {
        match (key, result) {
            (Key::ControllerExists, Ok(OpResult::Exists(Some(_)))) => {
                read(core, Key::ControllerData, zkdata::CONTROLLER);
                Flow::Wait
            }
            (Key::ControllerExists, Ok(_)) => {
                // No controller: an active one lost its node (maybeResign), then elect.
                core.active_id = None;
                core.resign();
                read(core, Key::EpochRead, zkdata::CONTROLLER_EPOCH);
                Flow::Wait
            }
            (Key::ControllerData, Ok(OpResult::Data { data, .. })) => {
                let holder = zkdata::decode::<ControllerData>(&data).map(|c| c.brokerid);
                core.active_id = holder;
                if core.ctx.is_some() && holder != Some(core.me()) {
                    core.resign();
                }
                // Held by this broker's previous session, or someone else: the watch will
                // tell when it goes.
                Flow::Done
            }
            (Key::EpochRead, Ok(OpResult::Data { data, stat })) => {
                let epoch = zkdata::decode_controller_epoch(&data).unwrap_or(0);
                self.campaign(core, epoch, stat.version);
                Flow::Wait
            }
            (Key::EpochRead, Err(ZkError::Server(ErrCode::NoNode))) => {
                let op = Op::Create {
                    path: zkdata::CONTROLLER_EPOCH.into(),
                    data: zkdata::encode_controller_epoch(0),
                    ephemeral: false,
                    sequential: false,
                };
                core.submit(Key::EpochCreate, op);
                Flow::Wait
            }
            (Key::EpochCreate, Ok(_) | Err(ZkError::Server(ErrCode::NodeExists))) => {
                read(core, Key::EpochRead, zkdata::CONTROLLER_EPOCH);
                Flow::Wait
            }
            (Key::Campaign, Ok(r)) => match written_stat(&r) {
                Some(stat) => won(core, self.new_epoch, stat.version),
                None => Flow::Done,
            },
            (Key::Campaign, Err(e)) if e.is_uncertain() || e == ZkError::NotConnected => {
                read(core, Key::VerifyController, zkdata::CONTROLLER);
                Flow::Wait
            }
            (key @ (Key::VerifyController | Key::VerifyEpoch), r) => self.verify(core, key, r),
            // NodeExists / BadVersion: another broker won (its node will be watched);
            // anything else: the session is going away.
            _ => Flow::Done,
        }
    }

    /// `checkControllerAndEpoch`: did the campaign whose answer was lost apply?
    fn verify(&mut self, core: &mut Core, key: Key, r: Result<OpResult, ZkError>) -> Flow<Phase> {
        match (key, r) {
            (Key::VerifyController, Ok(OpResult::Data { data, .. })) => {
                let holder = zkdata::decode::<ControllerData>(&data).map(|c| c.brokerid);
                core.active_id = holder;
                if holder != Some(core.me()) {
                    return Flow::Done;
                }
                read(core, Key::VerifyEpoch, zkdata::CONTROLLER_EPOCH);
                Flow::Wait
            }
            (Key::VerifyController, Err(ZkError::Server(ErrCode::NoNode))) => {
                // The multi did not apply and nobody else won: campaign again.
                read(core, Key::EpochRead, zkdata::CONTROLLER_EPOCH);
                Flow::Wait
            }
            (Key::VerifyEpoch, Ok(OpResult::Data { data, stat })) => {
                if zkdata::decode_controller_epoch(&data) == Some(self.new_epoch) {
                    won(core, self.new_epoch, stat.version)
                } else {
                    Flow::Done
                }
            }
            _ => Flow::Done,
        }
    }

    fn campaign(&mut self, core: &mut Core, epoch: u32, version: i32) {
        self.new_epoch = epoch + 1;
        let me = core.me();
        let op = Op::Multi(vec![
            Op::Create {
                path: zkdata::CONTROLLER.into(),
                data: zkdata::encode(&ControllerData::new(me)),
                ephemeral: true,
                sequential: false,
            },
            Op::SetData {
                path: zkdata::CONTROLLER_EPOCH.into(),
                data: zkdata::encode_controller_epoch(self.new_epoch),
                version,
            },
        ]);
        core.submit(Key::Campaign, op);
    }
}

fn read(core: &mut Core, key: Key, path: &str) {
    let op = Op::GetData {
        path: path.into(),
        watch: false,
    };
    core.submit(key, op);
}

/// Won `epoch` (with `/controller_epoch` at `version`): become active and load the context
/// (onControllerFailover).
fn won(core: &mut Core, epoch: u32, version: i32) -> Flow<Phase> {
    core.ctx = Some(ControllerContext::new(epoch, version));
    core.active_id = Some(core.me());
    Flow::Then(failover_phases())
}
