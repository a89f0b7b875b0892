//! ZooKeeper consistency (stub, being written).
use super::history::History;
use super::linearizable::{Budget, ModelError};
use super::Verdict;

/// Options of the ZooKeeper checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct ZkOptions {
    /// Check sync+read operations for linearizability with the writes.
    pub strict: bool,
    /// Search budget of the linearizability part.
    pub budget: Budget,
}

/// Checks ZooKeeper's client consistency model.
pub fn check_zookeeper(_history: &History, _options: &ZkOptions) -> Result<Verdict, ModelError> {
    Ok(Verdict::Unknown {
        reason: "todo".into(),
    })
}
