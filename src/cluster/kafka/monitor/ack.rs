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

/// Bits of a workload value below its producer's number (see `Producer::send_record`).
const COUNTER_BITS: u32 = 40;
/// Producers whose values get a table.
const TABLED_PRODUCERS: u64 = 256;
/// How far past its table's end a value may land and still extend it (values arrive
/// nearly in counter order; one far off goes to the map instead of a huge table).
const TABLE_REACH: u64 = 1 << 16;

/// Places by value. The workload's values are a producer's number above a counter, so
/// nearly all sit in one table per producer, indexed by the counter: a look-up per record
/// appended, committed or acknowledged, without a search of an ordered map that holds
/// every value of the run. Any other value goes to the map. Only looked up, never
/// iterated, so where a value is kept reaches no behaviour.
#[derive(Clone, Debug, Default)]
struct ValuePlaces {
    tables: Vec<Vec<Option<Places>>>,
    other: BTreeMap<u64, Places>,
}

impl ValuePlaces {
    /// The table and the index in it where `value` belongs, if it is a workload value.
    fn slot(value: u64) -> Option<(usize, u64)> {
        let producer = value >> COUNTER_BITS;
        let counter = value & ((1 << COUNTER_BITS) - 1);
        (1..=TABLED_PRODUCERS)
            .contains(&producer)
            .then(|| ((producer - 1) as usize, counter))
    }

    fn get(&self, value: u64) -> Option<&Places> {
        let tabled = Self::slot(value).and_then(|(t, i)| {
            let table = self.tables.get(t)?;
            table.get(usize::try_from(i).ok()?)?.as_ref()
        });
        tabled.or_else(|| self.other.get(&value))
    }

    fn get_or_insert(&mut self, value: u64, fresh: Places) -> &mut Places {
        let at = Self::slot(value).filter(|&(t, i)| {
            let len = self.tables.get(t).map_or(0, Vec::len) as u64;
            // Held in the table, or new and near enough to extend it.
            i < len && self.tables[t][i as usize].is_some()
                || i < len.saturating_add(TABLE_REACH) && !self.other.contains_key(&value)
        });
        let Some((t, i)) = at else {
            return self.other.entry(value).or_insert(fresh);
        };
        if self.tables.len() <= t {
            self.tables.resize_with(t + 1, Vec::new);
        }
        let table = &mut self.tables[t];
        if table.len() <= i as usize {
            table.resize_with(i as usize + 1, || None);
        }
        table[i as usize].get_or_insert(fresh)
    }
}

/// The values seen appended and committed, and each producer's progress.
#[derive(Clone, Debug, Default)]
pub struct Acks {
    seen: ValuePlaces,
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
        let places = self.seen.get_or_insert(
            value,
            Places {
                first: fresh,
                more: Vec::new(),
            },
        );
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
        let places = self.seen.get(value)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(part: usize, offset: u64) -> Places {
        Places {
            first: Seen {
                part,
                offset,
                committed: false,
            },
            more: Vec::new(),
        }
    }

    #[test]
    fn value_places_agree_with_an_ordered_map() {
        let mut places = ValuePlaces::default();
        let mut model: BTreeMap<u64, usize> = BTreeMap::new();
        let w = |p: u64, c: u64| p << COUNTER_BITS | c;
        // Workload values in and out of order, one far past its table, one of a
        // producer past the tabled ones, and values of no producer.
        let values = [
            w(1, 1),
            w(1, 3),
            w(2, 1),
            w(1, 2),
            w(1, 3 + 2 * TABLE_REACH),
            w(1, 4),
            w(TABLED_PRODUCERS + 1, 5),
            7,
            0,
            w(1, 1),
            w(1, 3 + 2 * TABLE_REACH),
        ];
        for (i, &v) in values.iter().enumerate() {
            let first = *model.entry(v).or_insert(i);
            let got = places.get_or_insert(v, seen(i, 0)).first.part;
            assert_eq!(got, first, "value {v:#x}");
        }
        for (&v, &part) in &model {
            assert_eq!(places.get(v).map(|p| p.first.part), Some(part));
        }
        assert!(places.get(w(1, 5)).is_none() && places.get(8).is_none());
        // The far value went to the map and stays found there once the table grows past it.
        for c in 5..3 + 3 * TABLE_REACH {
            if c != 3 + 2 * TABLE_REACH {
                places.get_or_insert(w(1, c), seen(99, c));
            }
        }
        let far = w(1, 3 + 2 * TABLE_REACH);
        assert_eq!(
            places.get_or_insert(far, seen(0, 0)).first.part,
            model[&far]
        );
        assert!(places.tables[0][(3 + 2 * TABLE_REACH) as usize].is_none());
    }
}
