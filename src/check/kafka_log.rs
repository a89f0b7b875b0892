//! Kafka log anomalies over a history of sends and polls, after Jepsen's Kafka workload.
//!
//! Models a set of partitions (the send's key, `""` when absent), each an append-only log
//! whose offsets hold one record each, read by consumers with manual assignment (no group
//! rebalances, so a consumer never legitimately goes backwards or skips). Record values must be
//! unique per partition, as the workload makes them. From acknowledged sends (`ok`, with the
//! offset) and polls (`ok`, with the records returned) the checker reports, each with example
//! operations:
//! - `inconsistent-offsets`: two different values seen at one partition and offset;
//! - `duplicate`: one value seen at two offsets of a partition;
//! - `lost-write`: an acknowledged value, at an offset at or below the highest offset any
//!   poll returned for its partition, that no poll ever returned;
//! - `unseen`: an acknowledged value above that point, never returned by the end (it may be a
//!   late read rather than a loss; a violation unless [`KafkaLogOptions::unseen_is_violation`]
//!   is off);
//! - `nonmonotonic-poll`: a consumer (process) got an offset at or below one it had already
//!   consumed from that partition, in a later poll or within one poll;
//! - `poll-skip`: a consumer's consecutive offsets jumped over an offset known to exist;
//! - `nonmonotonic-send`: a producer's later acknowledged send (in invocation order: the
//!   order of its `send()` calls) got a lower offset;
//! - `aborted-read`: a poll returned a value whose send failed (certainly not applied).
//!
//! Every violation names its partition (`key`), so a caller can judge it against what the
//! run's configuration permits on that partition.
//!
//! Depends on: `check::history` and the verdict types.

use std::collections::{BTreeMap, BTreeSet};

use super::history::{Call, History, OpId, Outcome, Ret};
use super::linearizable::ModelError;
use super::{fill_windows, limit_per_kind, Verdict, Violation, Witness};

/// Options of the Kafka log checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KafkaLogOptions {
    /// Count `unseen` records as a violation (right for histories whose consumers drained the
    /// log after the faults healed, which is how faultline's liveness phase ends).
    pub unseen_is_violation: bool,
}

impl Default for KafkaLogOptions {
    fn default() -> KafkaLogOptions {
        KafkaLogOptions {
            unseen_is_violation: true,
        }
    }
}

/// One observation of a value at a partition and offset: by a send (ack) or a poll.
/// `part` and `val` stand for `key` and `value` in the checks' maps (see [`Names`]); the
/// texts are kept for the messages.
#[derive(Clone, Copy, Debug)]
struct Seen<'a> {
    key: &'a str,
    offset: u64,
    value: &'a str,
    op: OpId,
    part: u32,
    val: Val<'a>,
}

/// A value as the checks' maps hold it: a canonical decimal number (how faultline's
/// workload writes values) as the number, any other text as itself. Two values are equal
/// exactly when their texts are: a canonical decimal text and its number determine each
/// other, and the variants never compare equal. Their order is not the texts' order, and
/// no check depends on it: maps keyed by values are only looked up, never walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Val<'a> {
    Num(u64),
    Text(&'a str),
}

impl<'a> Val<'a> {
    fn of(text: &'a str) -> Val<'a> {
        let canonical = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        match text.parse() {
            Ok(n) if canonical => Val::Num(n),
            _ => Val::Text(text),
        }
    }
}

/// Partition keys as small numbers, for cheap comparisons in the checks' maps (a key's
/// number is its rank of first appearance; nothing walks a map in key order).
#[derive(Default)]
struct Names<'a> {
    ids: BTreeMap<&'a str, u32>,
}

impl<'a> Names<'a> {
    fn seen(&mut self, key: &'a str, offset: u64, value: &'a str, op: OpId) -> Seen<'a> {
        let next = self.ids.len() as u32;
        let part = *self.ids.entry(key).or_insert(next);
        Seen {
            key,
            offset,
            value,
            op,
            part,
            val: Val::of(value),
        }
    }
}

/// The history, sorted into what the checks need.
#[derive(Default)]
struct Log<'a> {
    /// Acknowledged sends, in history order.
    acked: Vec<Seen<'a>>,
    /// Polled records, in completion order of the polls and order within each poll.
    polled: Vec<(u64, Seen<'a>)>,
    /// Values of failed sends, by partition.
    failed: BTreeMap<(u32, Val<'a>), OpId>,
    sends: usize,
    polls: usize,
}

fn collect(history: &History) -> Result<Log<'_>, ModelError> {
    let mut log = Log::default();
    let mut names = Names::default();
    let mut polls: Vec<(u64, OpId)> = Vec::new();
    for (id, op) in history.ops.iter().enumerate() {
        match (&op.call, op.outcome, &op.ret) {
            (Call::Send { key, value }, outcome, ret) => {
                log.sends += 1;
                let key = key.as_deref().unwrap_or("");
                match (outcome, ret) {
                    (Outcome::Ok, Some(Ret::Offset { offset })) => {
                        log.acked.push(names.seen(key, *offset, value, id))
                    }
                    (Outcome::Ok, other) => {
                        let message = format!("an ok send needs an `offset` result, got {other:?}");
                        return Err(ModelError { op: id, message });
                    }
                    (Outcome::Fail, _) => {
                        let s = names.seen(key, 0, value, id);
                        log.failed.insert((s.part, s.val), id);
                    }
                    (Outcome::Info, _) => {}
                }
            }
            (Call::Poll, Outcome::Ok, Some(Ret::Records { .. })) => {
                log.polls += 1;
                polls.push((op.end_ns().unwrap_or(u64::MAX), id));
            }
            (Call::Poll, Outcome::Ok, other) => {
                let message = format!("an ok poll needs a `records` result, got {other:?}");
                return Err(ModelError { op: id, message });
            }
            (Call::Poll, _, _) => log.polls += 1,
            (call, _, _) => {
                let message = format!("the kafka-log model has no {call:?}");
                return Err(ModelError { op: id, message });
            }
        }
    }
    polls.sort_unstable();
    for (_, id) in polls {
        let op = &history.ops[id];
        if let Some(Ret::Records { records }) = &op.ret {
            for r in records {
                let seen = names.seen(&r.key, r.offset, &r.value, id);
                log.polled.push((op.process, seen));
            }
        }
    }
    Ok(log)
}

/// Checks a Kafka-style history for the anomalies in the module doc.
pub fn check_kafka_log(
    history: &History,
    options: &KafkaLogOptions,
) -> Result<Verdict, ModelError> {
    let log = collect(history)?;
    let mut violations = Vec::new();
    let all: Vec<Seen> = log
        .acked
        .iter()
        .copied()
        .chain(log.polled.iter().map(|p| p.1))
        .collect();
    check_offsets_and_values(&all, &mut violations);
    let unseen = check_lost_and_unseen(&log, options, &mut violations);
    check_polls(&log, &all, &mut violations);
    check_sends(history, &log, &mut violations);
    if !violations.is_empty() {
        let mut violations = limit_per_kind(violations);
        fill_windows(&mut violations, history);
        return Ok(Verdict::Invalid { violations });
    }
    // Partitions observed (a failed send's partition is not an observation).
    let partitions: BTreeSet<u32> = all.iter().map(|s| s.part).collect();
    let summary = format!(
        "{} sends ({} acknowledged) and {} polls ({} records) over {} partition(s): no \
         inconsistent offsets, duplicates, lost writes, aborted reads, nonmonotonic or skipping \
         polls or sends; {unseen} acknowledged records unseen",
        log.sends,
        log.acked.len(),
        log.polls,
        log.polled.len(),
        partitions.len()
    );
    Ok(Verdict::Valid {
        witness: Witness::Checked { summary },
    })
}

/// `inconsistent-offsets` and `duplicate`, over every observation.
fn check_offsets_and_values(all: &[Seen], violations: &mut Vec<Violation>) {
    let mut at_offset: BTreeMap<(u32, u64), Seen> = BTreeMap::new();
    let mut reported_offsets: BTreeSet<(u32, u64)> = BTreeSet::new();
    let mut of_value: BTreeMap<(u32, Val), Seen> = BTreeMap::new();
    let mut reported_values: BTreeSet<(u32, Val)> = BTreeSet::new();
    for &s in all {
        let first = *at_offset.entry((s.part, s.offset)).or_insert(s);
        if first.val != s.val && reported_offsets.insert((s.part, s.offset)) {
            let message = format!(
                "partition {:?} offset {} holds {:?} (op {}) and {:?} (op {}): the log diverged",
                s.key, s.offset, first.value, first.op, s.value, s.op
            );
            let mut v = Violation::new(
                "inconsistent-offsets",
                message,
                Some(s.op),
                vec![first.op, s.op],
            );
            v.key = Some(s.key.to_string());
            violations.push(v);
        }
        let first = *of_value.entry((s.part, s.val)).or_insert(s);
        if first.offset != s.offset && reported_values.insert((s.part, s.val)) {
            let message = format!(
                "value {:?} appears at offsets {} (op {}) and {} (op {}) of partition {:?}: \
                 written twice",
                s.value, first.offset, first.op, s.offset, s.op, s.key
            );
            let mut v = Violation::new("duplicate", message, Some(s.op), vec![first.op, s.op]);
            v.key = Some(s.key.to_string());
            violations.push(v);
        }
    }
}

/// `lost-write`, `unseen` (when a violation) and `aborted-read`; returns the unseen count.
fn check_lost_and_unseen(
    log: &Log,
    options: &KafkaLogOptions,
    violations: &mut Vec<Violation>,
) -> usize {
    let mut polled_values: BTreeSet<(u32, Val)> = BTreeSet::new();
    let mut max_polled: BTreeMap<u32, (u64, OpId)> = BTreeMap::new();
    for (_, s) in &log.polled {
        polled_values.insert((s.part, s.val));
        let max = max_polled.entry(s.part).or_insert((s.offset, s.op));
        if s.offset > max.0 {
            *max = (s.offset, s.op);
        }
        if let Some(&send) = log.failed.get(&(s.part, s.val)) {
            let message = format!(
                "poll {} returned {:?} at offset {} of partition {:?}, but its send {send} \
                 failed (certainly not applied)",
                s.op, s.value, s.offset, s.key
            );
            let mut v = Violation::new("aborted-read", message, Some(s.op), vec![send, s.op]);
            v.key = Some(s.key.to_string());
            violations.push(v);
        }
    }
    let mut unseen = 0;
    for s in &log.acked {
        if polled_values.contains(&(s.part, s.val)) {
            continue;
        }
        match max_polled.get(&s.part) {
            Some(&(max, poll)) if s.offset <= max => {
                let message = format!(
                    "send {} of {:?} was acknowledged at offset {} of partition {:?}; polls \
                     read up to offset {max} (op {poll}) but never returned it",
                    s.op, s.value, s.offset, s.key
                );
                let mut v = Violation::new("lost-write", message, Some(s.op), vec![s.op, poll]);
                v.key = Some(s.key.to_string());
                violations.push(v);
            }
            _ => {
                unseen += 1;
                if options.unseen_is_violation {
                    let message = format!(
                        "send {} of {:?} was acknowledged at offset {} of partition {:?} and no \
                         poll ever returned it",
                        s.op, s.value, s.offset, s.key
                    );
                    let mut v = Violation::new("unseen", message, Some(s.op), vec![s.op]);
                    v.key = Some(s.key.to_string());
                    violations.push(v);
                }
            }
        }
    }
    unseen
}

/// `nonmonotonic-poll` and `poll-skip`, per consumer and partition.
fn check_polls(log: &Log, all: &[Seen], violations: &mut Vec<Violation>) {
    let mut known: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for s in all {
        known.entry(s.part).or_default().insert(s.offset);
    }
    let mut last: BTreeMap<(u64, u32), Seen> = BTreeMap::new();
    for &(process, s) in &log.polled {
        let Some(prev) = last.insert((process, s.part), s) else {
            continue;
        };
        let within = if prev.op == s.op {
            " within one poll"
        } else {
            ""
        };
        if s.offset <= prev.offset {
            let message = format!(
                "consumer {process} read offset {} of partition {:?} (op {}) and then offset {} \
                 (op {}){within}: it went backwards",
                prev.offset, s.key, prev.op, s.offset, s.op
            );
            let ops = dedup(vec![prev.op, s.op]);
            let mut v = Violation::new("nonmonotonic-poll", message, Some(s.op), ops);
            v.key = Some(s.key.to_string());
            violations.push(v);
        } else if let Some(skipped) = known[&s.part].range(prev.offset + 1..s.offset).next() {
            let message = format!(
                "consumer {process} read offset {} of partition {:?} (op {}) and then offset {} \
                 (op {}){within}, skipping offset {skipped}, which exists",
                prev.offset, s.key, prev.op, s.offset, s.op
            );
            let ops = dedup(vec![prev.op, s.op]);
            let mut v = Violation::new("poll-skip", message, Some(s.op), ops);
            v.key = Some(s.key.to_string());
            violations.push(v);
        }
    }
}

/// `nonmonotonic-send`, per producer and partition, in invocation order.
fn check_sends(history: &History, log: &Log, violations: &mut Vec<Violation>) {
    let mut sends: Vec<(u64, Seen)> = log
        .acked
        .iter()
        .map(|s| (history.ops[s.op].invoke_ns, *s))
        .collect();
    // Program order is the order of `send()` calls (invocations): a producer with several
    // sends in flight may see them acknowledged out of order (a retried batch answered as a
    // duplicate after a later one), while the log still holds them in send order.
    sends.sort_by_key(|(start, s)| (*start, s.op));
    let mut last: BTreeMap<(u64, u32), Seen> = BTreeMap::new();
    for (_, s) in sends {
        let process = history.ops[s.op].process;
        if let Some(prev) = last.insert((process, s.part), s) {
            if s.offset <= prev.offset {
                let message = format!(
                    "producer {process} got offset {} for send {} and then offset {} for the \
                     later send {} on partition {:?}",
                    prev.offset, prev.op, s.offset, s.op, s.key
                );
                let ops = vec![prev.op, s.op];
                let mut v = Violation::new("nonmonotonic-send", message, Some(s.op), ops);
                v.key = Some(s.key.to_string());
                violations.push(v);
            }
        }
    }
}

fn dedup(mut ops: Vec<OpId>) -> Vec<OpId> {
    ops.dedup();
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(h: &mut History, t0: u64, t1: u64, value: &str, offset: u64) -> OpId {
        let call = Call::Send {
            key: Some("k".into()),
            value: value.into(),
        };
        let id = h.invoke(0, None, t0, call);
        h.complete(id, t1, Outcome::Ok, Some(Ret::Offset { offset }), None);
        id
    }

    /// Values are compared as texts: a number and a differently written equal number are
    /// two values (no duplicate), the same text twice is one (a duplicate), and texts that
    /// are not canonical decimals are compared as they stand.
    #[test]
    fn values_are_equal_exactly_when_their_texts_are() {
        let options = KafkaLogOptions {
            unseen_is_violation: false,
        };
        let kinds = |values: [&str; 2]| {
            let mut h = History::new();
            send(&mut h, 0, 1, values[0], 1);
            send(&mut h, 2, 3, values[1], 2);
            let verdict = check_kafka_log(&h, &options).unwrap();
            let kinds: Vec<String> = verdict
                .violations()
                .iter()
                .map(|v| v.kind.clone())
                .collect();
            kinds
        };
        assert!(kinds(["7", "07"]).is_empty());
        assert!(kinds(["0", "00"]).is_empty());
        assert!(kinds(["7", "+7"]).is_empty());
        assert!(kinds(["18446744073709551616", "0"]).is_empty());
        assert_eq!(kinds(["7", "7"]), ["duplicate"]);
        assert_eq!(kinds(["07", "07"]), ["duplicate"]);
        assert_eq!(
            kinds(["18446744073709551616", "18446744073709551616"]),
            ["duplicate"]
        );
        assert_eq!(kinds(["x", "x"]), ["duplicate"]);
        assert_eq!(Val::of("12"), Val::Num(12));
        assert_eq!(Val::of("012"), Val::Text("012"));
        assert_eq!(Val::of(""), Val::Text(""));
    }

    /// Two sends in flight at once: the first one's acknowledgement comes last (a retry
    /// answered as a duplicate) but its offset is lower, as send order promises: fine.
    /// The other way round is a violation.
    #[test]
    fn sends_are_ordered_by_invocation_not_by_acknowledgement() {
        let mut h = History::new();
        send(&mut h, 0, 50, "a", 3);
        send(&mut h, 10, 20, "b", 4);
        let options = KafkaLogOptions {
            unseen_is_violation: false,
        };
        assert!(check_kafka_log(&h, &options).unwrap().is_valid());
        let mut h = History::new();
        send(&mut h, 0, 50, "a", 4);
        let later = send(&mut h, 10, 20, "b", 3);
        let verdict = check_kafka_log(&h, &options).unwrap();
        assert_eq!(verdict.violations()[0].kind, "nonmonotonic-send");
        assert_eq!(verdict.violations()[0].op, Some(later));
        assert_eq!(verdict.violations()[0].key.as_deref(), Some("k"));
    }
}
