//! Goal: the linearizability search accepts what it must, rejects every hand-written
//! violation of each model with a witness naming the operation that could not be placed, and
//! never turns an exhausted budget into a pass.

use faultline::check::spec::{KvSpec, RegisterSpec, ZnodeSpec};
use faultline::check::ZkError;
use faultline::check::{check_linearizable, Budget, Call, History, Outcome, Ret, Verdict, Witness};

use super::util::{op, read, value, write};

const REG: RegisterSpec = RegisterSpec { cas: false };
const CAS: RegisterSpec = RegisterSpec { cas: true };

fn verdict<S: faultline::check::spec::SequentialSpec>(spec: &S, h: &History) -> Verdict {
    check_linearizable(spec, h, &Budget::default()).unwrap()
}

#[test]
fn register_concurrent_write_and_read_is_linearizable() {
    let mut h = History::new();
    op(
        &mut h,
        0,
        (0, Some(10)),
        write("x", 1),
        Outcome::Ok,
        Some(Ret::Done),
    );
    op(
        &mut h,
        1,
        (5, Some(8)),
        read("x"),
        Outcome::Ok,
        value(Some(1)),
    );
    op(&mut h, 2, (1, Some(3)), read("x"), Outcome::Ok, value(None));
    let v = verdict(&REG, &h);
    let Verdict::Valid {
        witness: Witness::Linearization { partitions },
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!(partitions[0].order, vec![2, 0, 1]);
}

#[test]
fn register_stale_read_is_rejected_with_witness() {
    // Write 1 completes, then a read that starts afterwards returns nil (the initial value).
    let mut h = History::new();
    op(
        &mut h,
        0,
        (0, Some(10)),
        write("x", 1),
        Outcome::Ok,
        Some(Ret::Done),
    );
    let stale = op(
        &mut h,
        1,
        (20, Some(30)),
        read("x"),
        Outcome::Ok,
        value(None),
    );
    let v = verdict(&REG, &h);
    let violation = &v.violations()[0];
    assert_eq!(violation.kind, "not-linearizable");
    assert_eq!(violation.op, Some(stale));
    assert_eq!(violation.state.as_deref(), Some("Some(1)"));
    assert_eq!(violation.linearized, vec![0]);
}

#[test]
fn register_nil_differs_from_every_integer() {
    let mut h = History::new();
    op(
        &mut h,
        0,
        (0, Some(1)),
        read("x"),
        Outcome::Ok,
        value(Some(0)),
    );
    assert!(verdict(&REG, &h).is_invalid());
}

#[test]
fn register_read_of_a_value_never_written_is_rejected() {
    let mut h = History::new();
    op(
        &mut h,
        0,
        (0, Some(10)),
        write("x", 1),
        Outcome::Ok,
        Some(Ret::Done),
    );
    op(
        &mut h,
        1,
        (2, Some(12)),
        read("x"),
        Outcome::Ok,
        value(Some(7)),
    );
    assert!(verdict(&REG, &h).is_invalid());
}

#[test]
fn register_rejects_cas() {
    let mut h = History::new();
    let cas = Call::Cas {
        key: "x".into(),
        expected: 1,
        new: 2,
    };
    op(&mut h, 0, (0, Some(1)), cas, Outcome::Ok, Some(Ret::Done));
    let err = check_linearizable(&REG, &h, &Budget::default()).unwrap_err();
    assert_eq!(err.op, 0);
}

#[test]
fn info_write_stays_open_to_the_end() {
    // The write crashed (info) at line 1, but its effect may land later: the read at [5, 6]
    // may see it. Closing the window at the info line would wrongly reject this history.
    let mut h = History::new();
    op(&mut h, 0, (0, Some(1)), write("x", 3), Outcome::Info, None);
    op(&mut h, 1, (2, Some(3)), read("x"), Outcome::Ok, value(None));
    op(
        &mut h,
        2,
        (5, Some(6)),
        read("x"),
        Outcome::Ok,
        value(Some(3)),
    );
    assert!(verdict(&REG, &h).is_valid());
    // ... but once seen, it cannot be unseen.
    op(&mut h, 3, (7, Some(8)), read("x"), Outcome::Ok, value(None));
    assert!(verdict(&REG, &h).is_invalid());
}

#[test]
fn info_write_may_never_happen() {
    let mut h = History::new();
    let w = op(&mut h, 0, (0, Some(1)), write("x", 3), Outcome::Info, None);
    op(&mut h, 1, (2, Some(3)), read("x"), Outcome::Ok, value(None));
    let v = verdict(&REG, &h);
    let Verdict::Valid {
        witness: Witness::Linearization { partitions },
    } = v
    else {
        panic!("{v:?}")
    };
    assert_eq!(partitions[0].not_applied, vec![w]);
}

#[test]
fn failed_cas_means_the_compare_ran_and_failed() {
    // cas(0 -> 5) failed while the value was certainly 0: not linearizable (Porcupine's rule).
    let mut h = History::new();
    op(
        &mut h,
        0,
        (0, Some(1)),
        write("x", 0),
        Outcome::Ok,
        Some(Ret::Done),
    );
    let cas = Call::Cas {
        key: "x".into(),
        expected: 0,
        new: 5,
    };
    op(&mut h, 1, (2, Some(3)), cas.clone(), Outcome::Fail, None);
    assert!(verdict(&CAS, &h).is_invalid());
    // A successful cas needs the expected value.
    let mut h = History::new();
    op(
        &mut h,
        0,
        (0, Some(1)),
        write("x", 1),
        Outcome::Ok,
        Some(Ret::Done),
    );
    op(&mut h, 1, (2, Some(3)), cas, Outcome::Ok, Some(Ret::Done));
    assert!(verdict(&CAS, &h).is_invalid());
}

#[test]
fn cas_register_accepts_a_valid_cas_chain() {
    let mut h = History::new();
    op(
        &mut h,
        0,
        (0, Some(1)),
        write("x", 0),
        Outcome::Ok,
        Some(Ret::Done),
    );
    let cas = Call::Cas {
        key: "x".into(),
        expected: 0,
        new: 5,
    };
    op(&mut h, 1, (2, Some(5)), cas, Outcome::Ok, Some(Ret::Done));
    op(
        &mut h,
        2,
        (3, Some(4)),
        read("x"),
        Outcome::Ok,
        value(Some(5)),
    );
    let failed = Call::Cas {
        key: "x".into(),
        expected: 0,
        new: 9,
    };
    op(&mut h, 3, (6, Some(7)), failed, Outcome::Fail, None);
    assert!(verdict(&CAS, &h).is_valid());
}

#[test]
fn failed_write_certainly_did_not_apply() {
    let mut h = History::new();
    op(&mut h, 0, (0, Some(1)), write("x", 1), Outcome::Fail, None);
    op(
        &mut h,
        1,
        (2, Some(3)),
        read("x"),
        Outcome::Ok,
        value(Some(1)),
    );
    assert!(verdict(&REG, &h).is_invalid());
}

#[test]
fn registers_are_partitioned_by_key() {
    let mut h = History::new();
    op(
        &mut h,
        0,
        (0, Some(1)),
        write("a", 1),
        Outcome::Ok,
        Some(Ret::Done),
    );
    op(&mut h, 0, (2, Some(3)), read("b"), Outcome::Ok, value(None));
    op(
        &mut h,
        0,
        (4, Some(5)),
        read("a"),
        Outcome::Ok,
        value(Some(1)),
    );
    let v = verdict(&REG, &h);
    let Verdict::Valid {
        witness: Witness::Linearization { partitions },
    } = v
    else {
        panic!("{v:?}")
    };
    let keys: Vec<&str> = partitions.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["a", "b"]);
}

fn get(key: &str) -> Call {
    Call::Get { key: key.into() }
}

fn text(s: &str) -> Option<Ret> {
    Some(Ret::Text { value: s.into() })
}

#[test]
fn kv_append_order_must_match_reads() {
    let mut h = History::new();
    let append = |v: &str| Call::Append {
        key: "k".into(),
        value: v.into(),
    };
    op(
        &mut h,
        0,
        (0, Some(10)),
        append("a"),
        Outcome::Ok,
        Some(Ret::Done),
    );
    op(
        &mut h,
        1,
        (0, Some(10)),
        append("b"),
        Outcome::Ok,
        Some(Ret::Done),
    );
    op(&mut h, 2, (11, Some(12)), get("k"), Outcome::Ok, text("ba"));
    assert!(verdict(&KvSpec, &h).is_valid());
    // Both orders cannot be seen.
    op(&mut h, 2, (13, Some(14)), get("k"), Outcome::Ok, text("ab"));
    assert!(verdict(&KvSpec, &h).is_invalid());
}

#[test]
fn kv_missing_key_reads_empty_and_put_replaces() {
    let mut h = History::new();
    op(&mut h, 0, (0, Some(1)), get("k"), Outcome::Ok, text(""));
    let put = Call::Put {
        key: "k".into(),
        value: "v".into(),
    };
    op(&mut h, 0, (2, Some(3)), put, Outcome::Ok, Some(Ret::Done));
    op(&mut h, 0, (4, Some(5)), get("k"), Outcome::Ok, text("v"));
    assert!(verdict(&KvSpec, &h).is_valid());
    op(&mut h, 1, (6, Some(7)), get("k"), Outcome::Ok, text(""));
    let v = verdict(&KvSpec, &h);
    assert_eq!(v.violations()[0].key.as_deref(), Some("k"));
    assert_eq!(v.violations()[0].op, Some(3));
}

fn data(d: &str, version: i32) -> Option<Ret> {
    Some(Ret::Data {
        data: d.into(),
        version,
    })
}

/// create /a, setData(version 0), getData, a second setData(version 0) that failed with
/// BadVersion, a second create that failed with NodeExists: linearizable.
fn znode_base() -> History {
    let mut h = History::new();
    let create = Call::Create {
        path: "/a".into(),
        data: "0".into(),
    };
    op(
        &mut h,
        0,
        (0, Some(1)),
        create.clone(),
        Outcome::Ok,
        Some(Ret::Done),
    );
    let set = Call::SetData {
        path: "/a".into(),
        data: "1".into(),
        version: 0,
    };
    op(
        &mut h,
        0,
        (2, Some(3)),
        set.clone(),
        Outcome::Ok,
        Some(Ret::Stat { version: 1 }),
    );
    let get = Call::GetData { path: "/a".into() };
    op(
        &mut h,
        1,
        (4, Some(5)),
        get.clone(),
        Outcome::Ok,
        data("1", 1),
    );
    // The same conditional set again must fail with BadVersion.
    let bad = Some(Ret::Error {
        code: ZkError::BadVersion,
    });
    op(&mut h, 1, (6, Some(7)), set.clone(), Outcome::Fail, bad);
    let exists = Some(Ret::Error {
        code: ZkError::NodeExists,
    });
    op(&mut h, 1, (8, Some(9)), create, Outcome::Fail, exists);
    h
}

#[test]
fn znode_versions_are_checked() {
    let h = znode_base();
    assert!(verdict(&ZnodeSpec, &h).is_valid());
    let set = Call::SetData {
        path: "/a".into(),
        data: "1".into(),
        version: 0,
    };
    let get = Call::GetData { path: "/a".into() };

    // Rejected: a second setData with version 0 that succeeded.
    let mut h2 = h.clone();
    op(
        &mut h2,
        2,
        (10, Some(11)),
        set,
        Outcome::Ok,
        Some(Ret::Stat { version: 2 }),
    );
    assert!(verdict(&ZnodeSpec, &h2).is_invalid());
    // Rejected: getData returning the wrong version.
    let mut h3 = h.clone();
    op(
        &mut h3,
        2,
        (10, Some(11)),
        get.clone(),
        Outcome::Ok,
        data("1", 0),
    );
    assert!(verdict(&ZnodeSpec, &h3).is_invalid());
}

#[test]
fn znode_delete_and_errors_are_checked() {
    let h = znode_base();
    let get = Call::GetData { path: "/a".into() };
    // Rejected: a delete reported NoNode while the znode exists.
    let mut h4 = h.clone();
    let delete = Call::Delete {
        path: "/a".into(),
        version: -1,
    };
    let no_node = Some(Ret::Error {
        code: ZkError::NoNode,
    });
    op(
        &mut h4,
        2,
        (10, Some(11)),
        delete.clone(),
        Outcome::Fail,
        no_node.clone(),
    );
    assert!(verdict(&ZnodeSpec, &h4).is_invalid());
    // Accepted: delete, then getData says NoNode, exists says absent.
    let mut h5 = h;
    op(
        &mut h5,
        2,
        (10, Some(11)),
        delete,
        Outcome::Ok,
        Some(Ret::Done),
    );
    op(&mut h5, 2, (12, Some(13)), get, Outcome::Fail, no_node);
    let exists = Call::Exists { path: "/a".into() };
    op(
        &mut h5,
        2,
        (14, Some(15)),
        exists,
        Outcome::Ok,
        Some(Ret::Exists { version: None }),
    );
    assert!(verdict(&ZnodeSpec, &h5).is_valid());
}

#[test]
fn tiny_budget_is_unknown_never_linearizable() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/peer-histories/porcupine/jepsen/etcd_002.log"
    ))
    .unwrap();
    let h = faultline::check::import::parse_etcd(&text, "etcd_002.log").unwrap();
    for max_steps in [0, 1, 10, 1000] {
        let budget = Budget {
            max_steps,
            ..Budget::default()
        };
        let v = check_linearizable(&CAS, &h, &budget).unwrap();
        assert!(
            matches!(v, Verdict::Unknown { .. }),
            "{max_steps} steps: {v:?}"
        );
    }
    let budget = Budget {
        max_memo_entries: 10,
        ..Budget::default()
    };
    let v = check_linearizable(&CAS, &h, &budget).unwrap();
    assert!(matches!(v, Verdict::Unknown { .. }), "{v:?}");
    assert!(check_linearizable(&CAS, &h, &Budget::default())
        .unwrap()
        .is_valid());
}
