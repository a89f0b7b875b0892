//! Goal: the Kafka log checker passes a clean history and reports each anomaly (lost-write,
//! duplicate, inconsistent-offsets, nonmonotonic-poll, poll-skip, nonmonotonic-send, unseen,
//! aborted-read) with an example operation.

use faultline::check::kafka_log::{check_kafka_log, KafkaLogOptions};
use faultline::check::{Call, History, OpId, Outcome, PolledRecord, Ret, Verdict};

fn send(h: &mut History, process: u64, t: u64, value: &str, offset: Option<u64>) -> OpId {
    let call = Call::Send {
        key: Some("k".into()),
        value: value.into(),
    };
    let id = h.invoke(process, None, t, call);
    match offset {
        Some(offset) => h.complete(id, t + 1, Outcome::Ok, Some(Ret::Offset { offset }), None),
        None => h.complete(id, t + 1, Outcome::Fail, None, None),
    }
    id
}

fn poll(h: &mut History, process: u64, t: u64, records: &[(u64, &str)]) -> OpId {
    let id = h.invoke(process, None, t, Call::Poll);
    let records = records
        .iter()
        .map(|&(offset, value)| PolledRecord {
            key: "k".into(),
            offset,
            value: value.into(),
        })
        .collect();
    h.complete(id, t + 1, Outcome::Ok, Some(Ret::Records { records }), None);
    id
}

fn check(h: &History) -> Verdict {
    check_kafka_log(h, &KafkaLogOptions::default()).unwrap()
}

fn kinds(v: &Verdict) -> Vec<&str> {
    v.violations().iter().map(|v| v.kind.as_str()).collect()
}

/// Producer 0 sends a, b, c at offsets 0, 1, 2.
fn base() -> History {
    let mut h = History::new();
    send(&mut h, 0, 0, "a", Some(0));
    send(&mut h, 0, 10, "b", Some(1));
    send(&mut h, 0, 20, "c", Some(2));
    h
}

#[test]
fn clean_history_passes() {
    let mut h = base();
    poll(&mut h, 9, 30, &[(0, "a"), (1, "b")]);
    poll(&mut h, 9, 40, &[(2, "c")]);
    let v = check(&h);
    assert!(v.is_valid(), "{v:?}");
}

#[test]
fn lost_write_is_reported() {
    let mut h = base();
    let p = poll(&mut h, 9, 30, &[(0, "a"), (2, "c")]);
    let v = check(&h);
    // The consumer also skipped offset 1, which exists.
    assert_eq!(kinds(&v), vec!["lost-write", "poll-skip"]);
    assert_eq!(v.violations()[0].op, Some(1));
    assert_eq!(v.violations()[0].window, Some((10, Some(11))));
    assert_eq!(v.violations()[0].ops, vec![1, p]);
}

#[test]
fn duplicate_is_reported() {
    let mut h = base();
    poll(&mut h, 9, 30, &[(0, "a"), (1, "b"), (2, "c"), (3, "b")]);
    assert_eq!(kinds(&check(&h)), vec!["duplicate"]);
}

#[test]
fn inconsistent_offsets_are_reported() {
    let mut h = base();
    poll(&mut h, 9, 30, &[(0, "a"), (1, "x"), (2, "c")]);
    let v = check(&h);
    assert!(kinds(&v).contains(&"inconsistent-offsets"), "{v:?}");
    assert_eq!(v.violations()[0].ops, vec![1, 3]);
}

#[test]
fn nonmonotonic_poll_is_reported() {
    let mut h = base();
    poll(&mut h, 9, 30, &[(0, "a"), (1, "b"), (2, "c")]);
    let again = poll(&mut h, 9, 40, &[(1, "b")]);
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["nonmonotonic-poll"]);
    assert_eq!(v.violations()[0].op, Some(again));
}

#[test]
fn nonmonotonic_send_is_reported() {
    let mut h = History::new();
    send(&mut h, 0, 0, "a", Some(1));
    let later = send(&mut h, 0, 10, "b", Some(0));
    poll(&mut h, 9, 30, &[(0, "b"), (1, "a")]);
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["nonmonotonic-send"]);
    assert_eq!(v.violations()[0].op, Some(later));
}

#[test]
fn unseen_is_reported_unless_allowed() {
    let mut h = base();
    poll(&mut h, 9, 30, &[(0, "a"), (1, "b")]);
    let v = check(&h);
    assert_eq!(kinds(&v), vec!["unseen"]);
    assert_eq!(v.violations()[0].op, Some(2));
    let lenient = KafkaLogOptions {
        unseen_is_violation: false,
    };
    assert!(check_kafka_log(&h, &lenient).unwrap().is_valid());
}

#[test]
fn aborted_read_is_reported() {
    let mut h = base();
    send(&mut h, 1, 25, "z", None);
    poll(&mut h, 9, 30, &[(0, "a"), (1, "b"), (2, "c"), (3, "z")]);
    assert_eq!(kinds(&check(&h)), vec!["aborted-read"]);
}
