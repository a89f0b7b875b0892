//! The shared part of history recording: pairing each recorded invocation with its
//! completion, and tallying outcomes. Every system's clients record invoke and complete
//! marks keyed by an operation id; each system converts the pairs into a `check::History`
//! with its own vocabulary (see `zk::history`).
//!
//! Depends on: nothing of the crate.

use std::collections::BTreeMap;

/// One mark of a recorded client history.
pub enum Mark<I, C> {
    /// Operation `id` was invoked.
    Invoke(u64, I),
    /// Operation `id` completed.
    Complete(u64, C),
}

/// Invocations paired with their completions.
pub struct Paired<I, C> {
    /// Completed operations, in completion order.
    pub done: Vec<(I, C)>,
    /// Operations still in flight at the end, in operation-id order.
    pub open: Vec<I>,
}

/// Pairs marks by operation id. A completion without an invocation is ignored (it cannot
/// be placed in time).
pub fn pair<I, C>(marks: impl IntoIterator<Item = Mark<I, C>>) -> Paired<I, C> {
    let mut invoked: BTreeMap<u64, I> = BTreeMap::new();
    let mut done = Vec::new();
    for mark in marks {
        match mark {
            Mark::Invoke(id, i) => {
                invoked.insert(id, i);
            }
            Mark::Complete(id, c) => {
                if let Some(i) = invoked.remove(&id) {
                    done.push((i, c));
                }
            }
        }
    }
    Paired {
        done,
        open: invoked.into_values().collect(),
    }
}

/// Operations completed ok / fail / info, for a run's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_by_id_in_completion_order_and_keeps_the_open_ones() {
        let marks = vec![
            Mark::Invoke(2, "b"),
            Mark::Invoke(1, "a"),
            Mark::Invoke(3, "c"),
            Mark::Complete(1, 10),
            Mark::Complete(9, 90),
            Mark::Complete(2, 20),
        ];
        let p = pair(marks);
        assert_eq!(p.done, vec![("a", 10), ("b", 20)]);
        assert_eq!(p.open, vec!["c"]);
    }
}
