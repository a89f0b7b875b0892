//! A fast, exact answer to one question about a Kafka run's client history: would
//! `check::kafka_log` (with `unseen` a violation) find nothing at all in the history that
//! [`super::history::to_check_history`] makes of it? Most runs are clean, and then the
//! end-of-run `kafka-log` check has nothing to report; only a history that may hold an
//! anomaly is converted to text and checked by the checker itself, which then says what
//! and where. This answer is computed from the typed records (numbers, partitions by
//! index), with sorted vectors instead of the checker's maps.
//!
//! Each clause mirrors one of the checker's anomaly kinds on the converted history, so
//! "clean" here is exactly "no violation" there: the conversion's order of operations
//! (invocation time, then process), its `info` for sends below every consumer's starting
//! position, partitions by their key text and values by their number (a value's text is
//! its decimal, so two values are equal exactly when their numbers are). Anything the
//! conversion would hand the checker as a model error (an outcome of the other operation
//! kind) is "not clean" here, so the checker sees it as before. Debug builds run the
//! checker too and assert the two agree.
//!
//! Depends on: kafka (client records), cluster::kafka::history (spans).

use std::collections::BTreeMap;

use super::history::Span;
use crate::kafka::client::record::{KafkaOp, KafkaOutcome};
use crate::kafka::msg::TopicPartition;

/// Partition keys by their text (what the checker compares), numbered.
struct Parts<'a> {
    tps: Vec<(&'a TopicPartition, u32)>,
    keys: BTreeMap<String, u32>,
}

impl<'a> Parts<'a> {
    fn id(&mut self, tp: &'a TopicPartition) -> u32 {
        if let Some(&(_, id)) = self.tps.iter().find(|(t, _)| *t == tp) {
            return id;
        }
        let next = self.keys.len() as u32;
        let id = *self.keys.entry(tp.to_string()).or_insert(next);
        self.tps.push((tp, id));
        id
    }
}

/// Whether the checker would find no anomaly. `ops` are in the conversion's order (their
/// positions are the checker's op ids); `starts` is the lowest starting position per
/// partition key (sends acknowledged below it go to the checker as `info`).
pub fn is_clean(ops: &[&Span], starts: &BTreeMap<String, u64>) -> bool {
    let mut parts = Parts {
        tps: Vec::new(),
        keys: BTreeMap::new(),
    };
    let mut start_of: Vec<Option<u64>> = Vec::new();
    // (part, offset, value, polled?) of every acknowledged send and polled record.
    let mut seen: Vec<(u32, u64, u64, bool)> = Vec::new();
    // Acknowledged sends in history order: (process, part, offset).
    let mut acked: Vec<(u64, u32, u64)> = Vec::new();
    let mut failed: Vec<(u32, u64)> = Vec::new();
    // Ok polls: (end time, op id).
    let mut polls: Vec<(u64, usize)> = Vec::new();
    for (id, o) in ops.iter().enumerate() {
        let tp = match o.op {
            KafkaOp::Send { tp, .. } | KafkaOp::Poll { tp } => tp,
        };
        let part = parts.id(tp);
        if start_of.len() <= part as usize {
            start_of.resize(part as usize + 1, None);
            start_of[part as usize] = starts.get(&tp.to_string()).copied();
        }
        let Some((t1, outcome)) = o.done else {
            continue;
        };
        match (o.op, outcome) {
            (KafkaOp::Send { value, .. }, KafkaOutcome::Sent { offset }) => {
                if start_of[part as usize].is_some_and(|m| *offset < m) {
                    continue;
                }
                seen.push((part, *offset, *value, false));
                acked.push((o.process, part, *offset));
            }
            (KafkaOp::Send { value, .. }, KafkaOutcome::Fail { .. }) => failed.push((part, *value)),
            (KafkaOp::Poll { .. }, KafkaOutcome::Polled { .. }) => {
                polls.push((t1.max(o.t0), id));
            }
            (_, KafkaOutcome::Fail { .. } | KafkaOutcome::Info { .. }) => {}
            // A model error for the checker: let it say so.
            _ => return false,
        }
    }
    polls.sort_unstable();
    // Polled records in the checker's order: (process, part, offset).
    let mut polled: Vec<(u64, u32, u64)> = Vec::new();
    for &(_, id) in &polls {
        let o = ops[id];
        let (KafkaOp::Poll { tp }, Some((_, KafkaOutcome::Polled { records }))) = (o.op, o.done)
        else {
            unreachable!("collected as an ok poll");
        };
        let part = parts.id(tp);
        for &(offset, value) in records {
            seen.push((part, offset, value, true));
            polled.push((o.process, part, offset));
        }
    }
    failed.sort_unstable();
    let logs_clean = match dense_clean(&seen, &failed, &polled, parts.keys.len()) {
        Some(clean) => clean,
        None => offsets_and_values_clean(&mut seen, &failed) && polls_clean(&seen, &polled),
    };
    logs_clean && sends_clean(&acked)
}

/// What a slot of [`dense_clean`] holds: a value seen there, acknowledged, polled.
const FILLED: u8 = 1;
const ACKED: u8 = 2;
const POLLED: u8 = 4;

/// Every clause but `nonmonotonic-send`, over one slot per partition and offset (a Kafka
/// log's offsets are dense): a slot holds one value, and with no value at two slots,
/// "acknowledged but never polled" and "polled though its send failed" are properties of
/// a slot. None when the offsets are too sparse for slots (the sorting path decides).
/// `failed` is sorted.
fn dense_clean(
    seen: &[(u32, u64, u64, bool)],
    failed: &[(u32, u64)],
    polled: &[(u64, u32, u64)],
    parts: usize,
) -> Option<bool> {
    let mut lo = vec![u64::MAX; parts];
    let mut hi = vec![0u64; parts];
    for &(p, o, _, _) in seen {
        lo[p as usize] = lo[p as usize].min(o);
        hi[p as usize] = hi[p as usize].max(o);
    }
    let mut base = vec![0usize; parts + 1];
    let bound = 4 * seen.len() as u64 + 4096;
    let mut total = 0u64;
    for p in 0..parts {
        let len = if lo[p] <= hi[p] {
            (hi[p] - lo[p]).saturating_add(1)
        } else {
            0
        };
        total = total.saturating_add(len);
        if total > bound {
            return None;
        }
        base[p + 1] = total as usize;
    }
    let slot = |p: u32, o: u64| base[p as usize] + (o - lo[p as usize]) as usize;
    let mut slots: Vec<(u64, u8)> = vec![(0, 0); total as usize];
    for &(p, o, v, was_polled) in seen {
        let s = &mut slots[slot(p, o)];
        if s.1 != 0 && s.0 != v {
            return Some(false);
        }
        s.0 = v;
        s.1 |= FILLED | if was_polled { POLLED } else { ACKED };
    }
    let mut values: Vec<(u32, u64)> = Vec::with_capacity(seen.len());
    for p in 0..parts {
        for &(v, flags) in &slots[base[p]..base[p + 1]] {
            if flags == 0 {
                continue;
            }
            if flags & POLLED == 0 {
                return Some(false);
            }
            if !failed.is_empty() && failed.binary_search(&(p as u32, v)).is_ok() {
                return Some(false);
            }
            values.push((p as u32, v));
        }
    }
    values.sort_unstable();
    if values.windows(2).any(|w| w[0] == w[1]) {
        return Some(false);
    }
    let mut last: BTreeMap<(u64, u32), u64> = BTreeMap::new();
    for &(process, part, offset) in polled {
        let Some(prev) = last.insert((process, part), offset) else {
            continue;
        };
        if offset <= prev {
            return Some(false);
        }
        if slots[slot(part, prev) + 1..slot(part, offset)]
            .iter()
            .any(|s| s.1 != 0)
        {
            return Some(false);
        }
    }
    Some(true)
}

/// `inconsistent-offsets`, `duplicate`, `aborted-read`, `lost-write` and `unseen`.
fn offsets_and_values_clean(seen: &mut [(u32, u64, u64, bool)], failed: &[(u32, u64)]) -> bool {
    // One value per (partition, offset).
    seen.sort_unstable_by_key(|&(p, o, v, _)| (p, o, v));
    if seen
        .windows(2)
        .any(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1) && w[0].2 != w[1].2)
    {
        return false;
    }
    // One offset per (partition, value); every acknowledged value polled; no polled value
    // whose send failed.
    let mut by_value: Vec<(u32, u64, u64, bool)> = seen.to_vec();
    by_value.sort_unstable_by_key(|&(p, o, v, polled)| (p, v, o, polled));
    let mut i = 0;
    while i < by_value.len() {
        let (p, o, v, _) = by_value[i];
        let mut j = i;
        let mut any_polled = false;
        let mut any_acked = false;
        while j < by_value.len() && (by_value[j].0, by_value[j].2) == (p, v) {
            if by_value[j].1 != o {
                return false;
            }
            any_polled |= by_value[j].3;
            any_acked |= !by_value[j].3;
            j += 1;
        }
        if any_acked && !any_polled {
            return false;
        }
        if any_polled && failed.binary_search(&(p, v)).is_ok() {
            return false;
        }
        i = j;
    }
    true
}

/// `nonmonotonic-poll` and `poll-skip`: per consumer and partition, each polled offset is
/// above the previous one and no offset known to exist lies between them. `seen` is
/// sorted by (partition, offset).
fn polls_clean(seen: &[(u32, u64, u64, bool)], polled: &[(u64, u32, u64)]) -> bool {
    let mut known: Vec<(u32, u64)> = seen.iter().map(|&(p, o, _, _)| (p, o)).collect();
    known.dedup();
    let mut last: BTreeMap<(u64, u32), u64> = BTreeMap::new();
    for &(process, part, offset) in polled {
        let Some(prev) = last.insert((process, part), offset) else {
            continue;
        };
        if offset <= prev {
            return false;
        }
        if offset > prev + 1 {
            let next = known.partition_point(|&k| k <= (part, prev));
            if known
                .get(next)
                .is_some_and(|&(p, o)| p == part && o < offset)
            {
                return false;
            }
        }
    }
    true
}

/// `nonmonotonic-send`: per producer and partition, in invocation order, offsets rise.
fn sends_clean(acked: &[(u64, u32, u64)]) -> bool {
    let mut last: BTreeMap<(u64, u32), u64> = BTreeMap::new();
    for &(process, part, offset) in acked {
        if let Some(prev) = last.insert((process, part), offset) {
            if offset <= prev {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::kafka_log::{check_kafka_log, KafkaLogOptions};
    use crate::cluster::kafka::history::{check_history_of, in_history_order};

    fn tp(p: u32) -> TopicPartition {
        TopicPartition::new("t", p)
    }
    fn send(p: u32, value: u64) -> KafkaOp {
        KafkaOp::Send {
            tp: tp(p),
            key: 0,
            value,
        }
    }
    fn poll(p: u32) -> KafkaOp {
        KafkaOp::Poll { tp: tp(p) }
    }
    fn sent(offset: u64) -> KafkaOutcome {
        KafkaOutcome::Sent { offset }
    }
    fn polled(records: &[(u64, u64)]) -> KafkaOutcome {
        KafkaOutcome::Polled {
            records: records.to_vec(),
        }
    }

    /// `is_clean` on (process, op, outcome) triples in time order, checked against the
    /// kafka-log checker on the converted history.
    fn clean(ops: &[(u64, KafkaOp, KafkaOutcome)]) -> bool {
        let spans: Vec<Vec<Span>> = vec![ops
            .iter()
            .enumerate()
            .map(|(i, (process, op, outcome))| Span {
                process: *process,
                t0: 10 * i as u64,
                op,
                done: Some((10 * i as u64 + 5, outcome)),
            })
            .collect()];
        let fast = is_clean(&in_history_order(&spans), &BTreeMap::new());
        let history = check_history_of(&[], &spans);
        let options = KafkaLogOptions {
            unseen_is_violation: true,
        };
        let verdict = check_kafka_log(&history, &options).expect("a valid history");
        assert_eq!(fast, verdict.violations().is_empty(), "{ops:?}");
        fast
    }

    /// Each anomaly kind makes the history unclean, on dense offsets (slots) and on sparse
    /// ones (the sorting path), and agrees with the checker.
    #[test]
    fn every_anomaly_kind_is_unclean_and_agrees_with_the_checker() {
        for far in [0, 1 << 40] {
            let ok = vec![
                (0, send(0, 1), sent(far)),
                (0, send(0, 2), sent(far + 1)),
                (1, poll(0), polled(&[(far, 1), (far + 1, 2)])),
            ];
            assert!(clean(&ok));
            let mut inconsistent = ok.clone();
            inconsistent[2].2 = polled(&[(far, 1), (far + 1, 3)]);
            let mut duplicate = ok.clone();
            duplicate.push((1, poll(0), polled(&[(far + 2, 2)])));
            let mut lost = ok.clone();
            lost[2].2 = polled(&[(far, 1)]);
            let mut aborted = ok.clone();
            aborted.insert(0, (0, send(0, 9), KafkaOutcome::Fail { error: "x".into() }));
            aborted.push((1, poll(0), polled(&[(far + 2, 9)])));
            let mut backwards = ok.clone();
            backwards.push((1, poll(0), polled(&[(far + 1, 2)])));
            let mut skip = ok.clone();
            skip[2].2 = polled(&[(far, 1)]);
            skip.push((2, poll(0), polled(&[(far + 1, 2)])));
            skip.push((1, poll(0), polled(&[(far + 2, 4)])));
            skip.push((0, send(0, 4), sent(far + 2)));
            let mut skip_only = skip.clone();
            skip_only.insert(3, (1, poll(0), polled(&[(far + 1, 2)])));
            assert!(clean(&skip_only));
            let send_back = vec![
                (0, send(0, 1), sent(far + 1)),
                (0, send(0, 2), sent(far)),
                (1, poll(0), polled(&[(far, 2), (far + 1, 1)])),
            ];
            let model_error = [(0, poll(0), sent(far))];
            for bad in [
                inconsistent,
                duplicate,
                lost,
                aborted,
                backwards,
                skip,
                send_back,
            ] {
                assert!(!clean(&bad), "{bad:?}");
            }
            let spans: Vec<Vec<Span>> = vec![model_error
                .iter()
                .map(|(process, op, outcome)| Span {
                    process: *process,
                    t0: 0,
                    op,
                    done: Some((1, outcome)),
                })
                .collect()];
            assert!(!is_clean(&in_history_order(&spans), &BTreeMap::new()));
        }
    }
}
