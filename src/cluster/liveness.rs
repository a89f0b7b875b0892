//! The shared part of the healed phase's goals: per client, "has it been served since the
//! heal?". `System::pending` runs after every event of the healed phase, so a goal once met
//! is cached rather than recomputed from the client's whole history.
//!
//! Depends on: nothing of the crate.

/// Per-client liveness goals of the healed phase.
#[derive(Clone, Debug, Default)]
pub struct ClientGoals {
    heal_ns: Option<u64>,
    met: Vec<bool>,
}

impl ClientGoals {
    pub fn new(clients: usize) -> Self {
        ClientGoals {
            heal_ns: None,
            met: vec![false; clients],
        }
    }

    /// The healed phase begins now: every goal is open again.
    pub fn begin(&mut self, now_ns: u64) {
        self.heal_ns = Some(now_ns);
        self.met.iter_mut().for_each(|m| *m = false);
    }

    /// When the healed phase began, if it has.
    pub fn heal_ns(&self) -> Option<u64> {
        self.heal_ns
    }

    /// The first client whose goal is not met, asking `met(index, heal_ns)` only for those
    /// not met before; None when all are met.
    pub fn first_unmet(&mut self, mut met: impl FnMut(usize, u64) -> bool) -> Option<usize> {
        let heal_ns = self.heal_ns?;
        for (index, done) in self.met.iter_mut().enumerate() {
            if *done {
                continue;
            }
            if !met(index, heal_ns) {
                return Some(index);
            }
            *done = true;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_met_goal_is_not_asked_again_until_the_next_heal() {
        let mut goals = ClientGoals::new(2);
        assert_eq!(
            goals.first_unmet(|_, _| true),
            None,
            "no heal yet: nothing to wait for"
        );
        goals.begin(5);
        assert_eq!(goals.first_unmet(|i, heal| heal == 5 && i == 0), Some(1));
        let mut asked = Vec::new();
        assert_eq!(
            goals.first_unmet(|i, _| {
                asked.push(i);
                true
            }),
            None
        );
        assert_eq!(asked, vec![1]);
        goals.begin(9);
        assert_eq!(goals.first_unmet(|_, _| false), Some(0));
    }
}
