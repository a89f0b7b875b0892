//! Random concurrent histories that are linearizable by construction, for tests and benchmarks.
//!
//! Models: clients of one sequential object (a cas register, or a key-value map of strings).
//! Each operation goes through three stages, invoke -> take effect -> complete, and every
//! event advances one randomly chosen client by one stage; the effect is computed by executing
//! the sequential model at that moment, so the recorded history is linearizable (the effect
//! points are a linearization), with real overlap between clients. A client may also crash
//! (`info`) before or after its effect; as in Jepsen, it then continues under a new process
//! number. Seeded ChaCha8: the same arguments give the same history.
//!
//! Depends on: `check::history` only (plus rand / rand_chacha).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::history::{Call, History, OpId, Outcome, Ret};

/// Shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct GenOptions {
    /// Concurrent clients.
    pub processes: usize,
    /// Operations to generate.
    pub ops: usize,
    /// Keys (independent objects).
    pub keys: usize,
    /// Per-mille chance that an operation ends `info` (crash) instead of `ok`.
    pub info_per_mille: u32,
}

/// Which sequential object the clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenModel {
    /// Register reads, writes and cas on small integers.
    CasRegister,
    /// Key-value get, put and append.
    Kv,
}

/// A client's operation in flight.
struct InFlight {
    id: OpId,
    applied: Option<(Outcome, Option<Ret>)>,
}

/// Sequential state: register values or strings, by key.
#[derive(Default)]
struct Model {
    registers: BTreeMap<String, Option<i64>>,
    strings: BTreeMap<String, String>,
}

/// Generates a linearizable history (see the module doc).
pub fn generate(model: GenModel, options: &GenOptions, seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut history = History::new();
    let mut state = Model::default();
    let mut clients: Vec<(u64, Option<InFlight>)> =
        (0..options.processes as u64).map(|p| (p, None)).collect();
    let mut next_process = options.processes as u64;
    let mut time = 0u64;
    let mut invoked = 0;
    while invoked < options.ops || clients.iter().any(|c| c.1.is_some()) {
        time += 1;
        let c = rng.gen_range(0..clients.len());
        let process = clients[c].0;
        match clients[c].1.take() {
            None if invoked < options.ops => {
                let call = random_call(model, options, &mut rng, process, time);
                let id = history.invoke(process, None, time, call);
                invoked += 1;
                clients[c].1 = Some(InFlight { id, applied: None });
            }
            None => {}
            Some(mut flight) => {
                let crash = rng.gen_range(0..1000) < options.info_per_mille;
                if crash {
                    // Crashed before or after its effect: either way the outcome is unknown.
                    if flight.applied.is_none() && rng.gen_bool(0.5) {
                        apply(&mut state, &history.ops[flight.id].call);
                    }
                    history.complete(flight.id, time, Outcome::Info, None, None);
                    clients[c].0 = next_process;
                    next_process += 1;
                } else if let Some((outcome, ret)) = flight.applied.take() {
                    history.complete(flight.id, time, outcome, ret, None);
                } else {
                    flight.applied = Some(apply(&mut state, &history.ops[flight.id].call));
                    clients[c].1 = Some(flight);
                }
            }
        }
    }
    history
}

fn random_call(
    model: GenModel,
    options: &GenOptions,
    rng: &mut ChaCha8Rng,
    process: u64,
    time: u64,
) -> Call {
    let key = rng.gen_range(0..options.keys.max(1)).to_string();
    match (model, rng.gen_range(0..3)) {
        (GenModel::CasRegister, 0) => Call::Read { key },
        (GenModel::CasRegister, 1) => Call::Write {
            key,
            value: rng.gen_range(0..5),
        },
        (GenModel::CasRegister, _) => Call::Cas {
            key,
            expected: rng.gen_range(0..5),
            new: rng.gen_range(0..5),
        },
        (GenModel::Kv, 0) => Call::Get { key },
        (GenModel::Kv, 1) => Call::Put {
            key,
            value: format!("x {process} {time} y"),
        },
        (GenModel::Kv, _) => Call::Append {
            key,
            value: format!("x {process} {time} y"),
        },
    }
}

/// Executes `call` on the sequential model: the outcome and result it returns.
fn apply(state: &mut Model, call: &Call) -> (Outcome, Option<Ret>) {
    match call {
        Call::Read { key } => {
            let value = state.registers.get(key).copied().flatten();
            (Outcome::Ok, Some(Ret::Value { value }))
        }
        Call::Write { key, value } => {
            state.registers.insert(key.clone(), Some(*value));
            (Outcome::Ok, Some(Ret::Done))
        }
        Call::Cas { key, expected, new } => {
            let current = state.registers.entry(key.clone()).or_default();
            if *current == Some(*expected) {
                *current = Some(*new);
                (Outcome::Ok, Some(Ret::Done))
            } else {
                (Outcome::Fail, None)
            }
        }
        Call::Get { key } => {
            let value = state.strings.get(key).cloned().unwrap_or_default();
            (Outcome::Ok, Some(Ret::Text { value }))
        }
        Call::Put { key, value } => {
            state.strings.insert(key.clone(), value.clone());
            (Outcome::Ok, Some(Ret::Done))
        }
        Call::Append { key, value } => {
            state
                .strings
                .entry(key.clone())
                .or_default()
                .push_str(value);
            (Outcome::Ok, Some(Ret::Done))
        }
        other => unreachable!("the generator never makes {other:?}"),
    }
}
