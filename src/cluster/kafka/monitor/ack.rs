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

/// The places of one value: nearly always one (a send appended once), kept inline; the
/// rest (an append elsewhere after a retry or a lost history) after it.
#[derive(Clone, Debug)]
struct Places {
    first: Seen,
    more: Vec<Seen>,
}

impl Places {
    fn find_mut(&mut self, part: usize, offset: u64) -> Option<&mut Seen> {
        std::iter::once(&mut self.first)
            .chain(self.more.iter_mut())
            .find(|s| s.part == part && s.offset == offset)
    }
}

/// The values seen appended and committed, and each producer's progress.
#[derive(Clone, Debug, Default)]
pub struct Acks {
    seen: BTreeMap<u64, Places>,
    producers: BTreeMap<u32, ProducerMon>,
}

impl Acks {
    /// Where `value` was seen at `offset` of `part`, recorded (not committed) if new.
    fn place_mut(&mut self, part: usize, value: u64, offset: u64) -> &mut Seen {
        let fresh = Seen {
            part,
            offset,
            committed: false,
        };
        let places = self.seen.entry(value).or_insert(Places {
            first: fresh,
            more: Vec::new(),
        });
        if places.find_mut(part, offset).is_none() {
            places.more.push(fresh);
        }
        places.find_mut(part, offset).expect("just recorded")
    }

    /// A leader appended `value` at `offset` of partition `part`.
    pub fn appended(&mut self, part: usize, value: u64, offset: u64) {
        self.place_mut(part, value, offset);
    }

    /// `value` at `offset` of `part` is now below a leader's HW.
    pub fn committed(&mut self, part: usize, value: u64, offset: u64) {
        self.place_mut(part, value, offset).committed = true;
    }

    fn place(&self, part: usize, value: u64, offset: u64) -> Option<Seen> {
        let places = self.seen.get(&value)?;
        std::iter::once(&places.first)
            .chain(places.more.iter())
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
        // Taken out of its entry while the checks read the rest of the monitor (they never
        // read the producers' progress), and put back in place after.
        let mut pm = std::mem::take(self.acks.producers.entry(index).or_default());
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
        *self.acks.producers.get_mut(&index).expect("taken above") = pm;
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
