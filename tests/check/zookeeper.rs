//! Goal: the ZooKeeper checker accepts a stale-but-consistent history, and rejects each of its
//! violations: non-linearizable writes, zxids against real time, duplicate zxids, a session
//! going back in time, a session missing its own write, a read from the future, a read that
//! is not the tree at its zxid, and (strict mode only) the ZOOKEEPER-1675 stale sync+read.

use faultline::check::zk_order::{check_zookeeper, ZkOptions};
use faultline::check::{Call, History, OpId, Outcome, Ret, Verdict};

/// Appends a completed operation with a session and a zxid.
fn zk(
    h: &mut History,
    session: u64,
    (invoke, end): (u64, u64),
    call: Call,
    ret: Ret,
    zxid: u64,
) -> OpId {
    let id = h.invoke(session, Some(session), invoke, call);
    let outcome = if matches!(ret, Ret::Error { .. }) {
        Outcome::Fail
    } else {
        Outcome::Ok
    };
    h.complete(id, end, outcome, Some(ret), Some(zxid));
    id
}

fn create(data: &str) -> Call {
    Call::Create {
        path: "/x".into(),
        data: data.into(),
    }
}

fn set(data: &str) -> Call {
    Call::SetData {
        path: "/x".into(),
        data: data.into(),
        version: -1,
    }
}

fn get() -> Call {
    Call::GetData { path: "/x".into() }
}

fn data(d: &str, version: i32) -> Ret {
    Ret::Data {
        data: d.into(),
        version,
    }
}

const Z: u64 = 0x1_0000_0000;

/// Session 1 creates /x (zxid Z+1) and sets it (Z+2); session 2 reads.
fn base() -> History {
    let mut h = History::new();
    zk(&mut h, 1, (0, 10), create("a"), Ret::Done, Z + 1);
    zk(
        &mut h,
        1,
        (20, 30),
        set("b"),
        Ret::Stat { version: 1 },
        Z + 2,
    );
    h
}

fn check(h: &History, strict: bool) -> Verdict {
    check_zookeeper(
        h,
        &ZkOptions {
            strict,
            ..ZkOptions::default()
        },
    )
    .unwrap()
}

fn kinds(v: &Verdict) -> Vec<&str> {
    v.violations().iter().map(|v| v.kind.as_str()).collect()
}

#[test]
fn stale_but_consistent_reads_pass() {
    // Session 2 reads after the set completed but sees the older state at zxid Z+1: allowed
    // (reads are local and sequentially consistent, not linearizable).
    let mut h = base();
    zk(&mut h, 2, (40, 50), get(), data("a", 0), Z + 1);
    zk(&mut h, 2, (60, 70), get(), data("b", 1), Z + 2);
    let v = check(&h, false);
    assert!(v.is_valid(), "{v:?}");
    assert!(check(&h, true).is_valid());
}

#[test]
fn nonlinearizable_writes_are_rejected() {
    let mut h = base();
    // A create that succeeds on an existing znode.
    zk(&mut h, 2, (40, 50), create("c"), Ret::Done, Z + 3);
    // Replaying in zxid order fails at the same write.
    let v = check(&h, false);
    assert_eq!(
        kinds(&v),
        vec!["writes-not-linearizable", "zxid-order-illegal"]
    );
    assert_eq!(v.violations()[0].op, Some(2));
    assert_eq!(v.violations()[1].op, Some(2));
}

#[test]
fn zxid_order_against_real_time_is_rejected() {
    let mut h = History::new();
    zk(&mut h, 1, (0, 10), create("a"), Ret::Done, Z + 5);
    zk(
        &mut h,
        2,
        (20, 30),
        set("b"),
        Ret::Stat { version: 1 },
        Z + 4,
    );
    assert!(kinds(&check(&h, false)).contains(&"zxid-realtime"));
}

#[test]
fn duplicate_zxid_is_rejected() {
    let mut h = History::new();
    zk(&mut h, 1, (0, 10), create("a"), Ret::Done, Z + 1);
    zk(
        &mut h,
        2,
        (20, 30),
        set("b"),
        Ret::Stat { version: 1 },
        Z + 1,
    );
    assert!(kinds(&check(&h, false)).contains(&"duplicate-zxid"));
}

#[test]
fn session_going_back_in_time_is_rejected() {
    let mut h = base();
    zk(&mut h, 2, (40, 50), get(), data("b", 1), Z + 2);
    zk(&mut h, 2, (60, 70), get(), data("a", 0), Z + 1);
    assert_eq!(kinds(&check(&h, false)), vec!["nonmonotonic-zxid"]);
}

#[test]
fn a_new_session_of_the_same_client_starts_its_order_from_zero() {
    // The real client's lastZxid belongs to the session: after an expiry, the process's new
    // session may connect to a lagging server and read an older state. Not a violation;
    // the same step back within one session is.
    let mut h = base();
    zk(&mut h, 2, (40, 50), get(), data("b", 1), Z + 2);
    let id = h.invoke(2, Some(3), 60, get());
    h.complete(id, 70, Outcome::Ok, Some(data("a", 0)), Some(Z + 1));
    let v = check(&h, false);
    assert!(v.is_valid(), "{v:?}");
    let id = h.invoke(2, Some(3), 80, get());
    h.complete(id, 90, Outcome::Ok, Some(data("b", 1)), Some(Z + 2));
    let id = h.invoke(2, Some(3), 100, get());
    h.complete(id, 110, Outcome::Ok, Some(data("a", 0)), Some(Z + 1));
    assert_eq!(kinds(&check(&h, false)), vec!["nonmonotonic-zxid"]);
}

#[test]
fn missing_own_write_is_rejected() {
    let mut h = base();
    // Session 1 wrote at Z+2 and then reads the state at Z+1.
    let read = zk(&mut h, 1, (40, 50), get(), data("a", 0), Z + 1);
    let v = check(&h, false);
    assert_eq!(kinds(&v), vec!["read-your-writes"]);
    assert_eq!(v.violations()[0].op, Some(read));
}

#[test]
fn read_from_the_future_is_rejected() {
    let mut h = History::new();
    zk(&mut h, 1, (0, 10), create("a"), Ret::Done, Z + 1);
    // The read completes at 15 but reports zxid Z+2, whose write is invoked only at 20.
    zk(&mut h, 2, (12, 15), get(), data("b", 1), Z + 2);
    zk(
        &mut h,
        1,
        (20, 30),
        set("b"),
        Ret::Stat { version: 1 },
        Z + 2,
    );
    assert!(kinds(&check(&h, false)).contains(&"read-from-future"));
}

#[test]
fn read_that_is_not_the_tree_at_its_zxid_is_rejected() {
    let mut h = base();
    // Reports zxid Z+2 (data "b", version 1) but returns the older data.
    let read = zk(&mut h, 2, (40, 50), get(), data("a", 0), Z + 2);
    let v = check(&h, false);
    assert_eq!(kinds(&v), vec!["read-not-tree-state"]);
    assert_eq!(v.violations()[0].op, Some(read));
    assert_eq!(v.violations()[0].ops, vec![1, read]);
}

#[test]
fn unknown_write_makes_a_read_not_comparable_instead_of_failing() {
    let mut h = base();
    let id = h.invoke(3, Some(3), 35, set("c"));
    h.complete(id, 36, Outcome::Info, None, None);
    zk(&mut h, 2, (40, 50), get(), data("c", 2), Z + 3);
    let v = check(&h, false);
    assert!(v.is_valid(), "{v:?}");
}

#[test]
fn zookeeper_1675_stale_sync_read_fails_only_in_strict_mode() {
    // The majority committed setData("b") (completed at 30). A client on the deposed leader's
    // side then syncs and reads at [40, 50]: the old leader answers the sync, so the read
    // misses the write.
    let mut h = base();
    let sync_read = Call::SyncGetData { path: "/x".into() };
    let stale = zk(&mut h, 2, (40, 50), sync_read, data("a", 0), Z + 1);
    assert!(check(&h, false).is_valid());
    let v = check(&h, true);
    assert_eq!(kinds(&v), vec!["sync-read-not-linearizable"]);
    assert_eq!(v.violations()[0].op, Some(stale));
}

#[test]
fn non_zookeeper_operation_is_bad_input() {
    let mut h = base();
    h.invoke(1, None, 40, Call::Poll);
    assert_eq!(
        check_zookeeper(&h, &ZkOptions::default()).unwrap_err().op,
        2
    );
}

#[test]
fn zxid_order_that_is_not_a_legal_execution_is_rejected() {
    // Two concurrent creates: one succeeds, the other sees NodeExists. Linearizable (success
    // first), but ZooKeeper numbered the NodeExists before the successful create.
    let mut h = History::new();
    zk(&mut h, 1, (0, 10), create("a"), Ret::Done, Z + 2);
    let exists = Ret::Error {
        code: faultline::check::ZkError::NodeExists,
    };
    let early = zk(&mut h, 2, (0, 10), create("b"), exists, Z + 1);
    let v = check(&h, false);
    assert_eq!(kinds(&v), vec!["zxid-order-illegal"]);
    assert_eq!(v.violations()[0].op, Some(early));
}
