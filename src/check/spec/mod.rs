//! Sequential specifications: the reference models the linearizability search runs against.
//!
//! Models: a single register (read/write), a compare-and-set register (read/write/cas), a
//! key-value map of strings (get/put/append) and a ZooKeeper znode (create/delete/setData with
//! expected versions, getData/exists). Each spec compiles recorded operations into its own
//! compact operation type once, names the independent object each one touches (its partition
//! key: P-compositionality lets the search check each object alone), and steps a state.
//!
//! Depends on: `check::history` only.

pub mod cas_register;
pub mod kv;
pub mod znode;

use std::fmt::Debug;
use std::hash::Hash;

use super::history::Op;

pub use cas_register::RegisterSpec;
pub use kv::KvSpec;
pub use znode::ZnodeSpec;

/// A recorded operation after compilation: its partition key (borrowed from the recorded
/// operation, so that compiling a long history copies no keys) and the spec's operation.
pub type Compiled<'a, T> = (&'a str, T);

/// A sequential specification (in the style of stateright's `SequentialSpec`).
///
/// Contract the search relies on: an operation whose result is unknown (an open `info`
/// operation) must be legal in every state, because the search may place it at the very end,
/// which is the same as "it never happened".
pub trait SequentialSpec {
    /// State of one partition (one object).
    type State: Clone + Eq + Hash + Debug;
    /// A compiled operation: the call together with its observed result.
    type Op: Debug;

    /// Model name as accepted on the command line.
    fn name(&self) -> &'static str;

    /// Initial state of every partition.
    fn init(&self) -> Self::State;

    /// Compiles one recorded operation. `Ok(None)`: it constrains nothing (a failed write that
    /// did not apply, a read with no result) and is left out. `Err`: the model does not accept
    /// it (bad input), with the reason.
    fn compile<'a>(&self, op: &'a Op) -> Result<Option<Compiled<'a, Self::Op>>, String>;

    /// The state after `op`, or `None` when `op` cannot return what it returned in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}
