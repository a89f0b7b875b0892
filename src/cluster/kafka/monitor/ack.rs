//! k-ack-semantics, judged after an event of a producer on the acknowledgements new in its
//! history: an acks=all success names an offset where the monitor saw the value committed
//! (below a leader's HW) while that leader's ISR had min.insync.replicas members, each
//! holding it by its own log (checked when the HW moved); an acks=1 success names an
//! offset where a leader appended the value.

use std::collections::BTreeMap;

use super::{finding, Finding, KafkaMonitor, K_ACK_SEMANTICS};
use crate::kafka::client::record::{KafkaOp, KafkaOutcome, KafkaRecord};
use crate::kafka::config::Acks as AckMode;

/// Where a value was seen in a log: (partition index, offset, committed there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    part: usize,
    offset: u64,
    committed: bool,
}

#[derive(Clone, Debug, Default)]
struct ProducerMon {
    scanned: usize,
    /// Sends invoked and not yet completed: op id -> (partition, value, invoked at).
    pending: BTreeMap<u64, (usize, u64, u64)>,
}

/// The values seen appended and committed, and each producer's progress.
#[derive(Clone, Debug, Default)]
pub struct Acks {
    seen: BTreeMap<u64, Vec<Seen>>,
    producers: BTreeMap<u32, ProducerMon>,
}

impl Acks {
    /// A leader appended `value` at `offset` of partition `part`.
    pub fn appended(&mut self, part: usize, value: u64, offset: u64) {
        let places = self.seen.entry(value).or_default();
        if !places.iter().any(|s| s.part == part && s.offset == offset) {
            places.push(Seen {
                part,
                offset,
                committed: false,
            });
        }
    }

    /// `value` at `offset` of `part` is now below a leader's HW.
    pub fn committed(&mut self, part: usize, value: u64, offset: u64) {
        let places = self.seen.entry(value).or_default();
        match places
            .iter_mut()
            .find(|s| s.part == part && s.offset == offset)
        {
            Some(s) => s.committed = true,
            None => places.push(Seen {
                part,
                offset,
                committed: true,
            }),
        }
    }

    fn place(&self, part: usize, value: u64, offset: u64) -> Option<Seen> {
        self.seen
            .get(&value)?
            .iter()
            .find(|s| s.part == part && s.offset == offset)
            .copied()
    }
}

impl KafkaMonitor {
    /// The checks on the records new in producer `index`'s history since the last call.
    pub fn on_producer(
        &mut self,
        index: u32,
        mode: AckMode,
        history: &[KafkaRecord],
        out: &mut Vec<Finding>,
    ) {
        let mut pm = self.acks.producers.remove(&index).unwrap_or_default();
        // `if let` rather than `match`: other marks (a consumer's position) are not acks.
        for r in history.get(pm.scanned..).unwrap_or_default() {
            if let KafkaRecord::Invoke {
                op_id,
                at_ns,
                op: KafkaOp::Send { tp, value, .. },
            } = r
            {
                let p = self.part_index(tp);
                pm.pending.insert(*op_id, (p, *value, *at_ns));
            } else if let KafkaRecord::Complete { op_id, outcome, .. } = r {
                let Some((p, value, invoked)) = pm.pending.remove(op_id) else {
                    continue;
                };
                if let KafkaOutcome::Sent { offset } = outcome {
                    self.check_ack(index, mode, p, value, *offset, invoked, out);
                }
            }
        }
        pm.scanned = history.len();
        self.acks.producers.insert(index, pm);
    }

    #[allow(clippy::too_many_arguments)]
    fn check_ack(
        &self,
        producer: u32,
        mode: AckMode,
        p: usize,
        value: u64,
        offset: u64,
        invoked: u64,
        out: &mut Vec<Finding>,
    ) {
        let part = &self.parts[p];
        let place = self.acks.place(p, value, offset);
        let why = match mode {
            AckMode::None => None,
            AckMode::Leader if place.is_none() => Some("no leader appended it there"),
            AckMode::Leader => None,
            AckMode::All if !place.is_some_and(|s| s.committed) => {
                Some("it was never committed there (below a leader's HW)")
            }
            AckMode::All if offset >= part.ok_upto => Some(
                "it was committed there only while the leader's ISR had fewer than \
                 min.insync.replicas members",
            ),
            AckMode::All => None,
        };
        // A history restarted by an allowed loss after the send may have taken the offset
        // (the history checks report that loss as allowed).
        let excused = part.last_reset_ns.is_some_and(|t| t >= invoked);
        if let (Some(why), false) = (why, excused) {
            let msg = format!(
                "p{producer}: {mode:?} success for value {value} at {}:{offset}, but {why}",
                part.tp
            );
            finding(out, K_ACK_SEMANTICS, msg);
        }
    }
}
