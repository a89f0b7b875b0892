use super::*;

/// The write's own txn decides, not the zxid: another client's txn committed at the
/// zxid this write was answered with, or this txn gone at the end, is a violation.
#[test]
fn an_acked_write_must_be_its_own_txn_and_survive() {
    let committed = BTreeMap::from([(7, (0xa, 3)), (8, (0xb, 1))]);
    let fine = |_: Zxid, _: u64, _: u64| -> Result<(), String> { Ok(()) };
    assert_eq!(acked_write_survives(&committed, &fine, 7, 0xa, 3), Ok(()));
    let other = acked_write_survives(&committed, &fine, 8, 0xa, 4).unwrap_err();
    assert!(other.contains("session 0xb"), "{other}");
    assert!(acked_write_survives(&committed, &fine, 9, 0xa, 5).is_err());
    let lost = |_: Zxid, _: u64, _: u64| -> Result<(), String> {
        Err("but at the end no server holds it".into())
    };
    assert!(acked_write_survives(&committed, &lost, 7, 0xa, 3).is_err());
}

fn span(op_id: u64, at: u64, op: Op, outcome: Outcome, zxid: Option<Zxid>) -> [Record; 2] {
    let session = 7;
    [
        Record::Invoke {
            op_id,
            session,
            op: op.into(),
            at_ns: at,
        },
        Record::Complete {
            op_id,
            session,
            outcome,
            zxid,
            cxid: op_id,
            at_ns: at + 5,
        },
    ]
}

/// An unknown write is resolved from the system's record: committed, it applied at its
/// zxid (so the read after it is compared with the tree instead of skipped); never
/// logged, it never applied; logged but not seen committed, it stays unknown.
#[test]
fn unknown_writes_are_resolved_by_the_commit_record() {
    let create = Op::Create {
        path: "/k".into(),
        data: b"v".to_vec(),
        ephemeral: false,
        sequential: false,
    };
    let lost = Outcome::Info("Timeout".into());
    let mut records = Vec::new();
    records.extend(span(1, 0, create.clone(), lost.clone(), None));
    let get = Op::GetData {
        path: "/k".into(),
        watch: false,
    };
    records.extend(span(
        2,
        10,
        get,
        Outcome::Ok(OpResult::Err(ErrCode::NoNode)),
        Some(9),
    ));
    let txn = Txn {
        zxid: 9,
        session: 7,
        cxid: 1,
        op: TxnOp::Create {
            path: "/k".into(),
            data: b"v".as_slice().into(),
            ephemeral_owner: 0,
        },
    };
    let mut record = CommitRecord::default();
    record.logged(&txn);
    // Logged, not seen committed: unknown, and the whole tree is not comparable.
    let h = to_check_history(&[(0, &records[..])], &record);
    assert_eq!(h.ops[0].outcome, HOutcome::Info);
    let verdict = check_zookeeper(&h, &ZkOptions::default()).unwrap();
    assert!(verdict.is_valid(), "{verdict:?}");
    // Committed at 9: the create applied at 9, and the read at 9 that missed it fails.
    record.add(&txn, 3);
    let h = to_check_history(&[(0, &records[..])], &record);
    assert_eq!((h.ops[0].outcome, h.ops[0].zxid), (HOutcome::Ok, Some(9)));
    assert!(h.ops[0].is_open(), "its answer is still unknown");
    let verdict = check_zookeeper(&h, &ZkOptions::default()).unwrap();
    let kinds: Vec<&str> = verdict
        .violations()
        .iter()
        .map(|v| v.kind.as_str())
        .collect();
    assert_eq!(kinds, ["read-not-tree-state"], "{verdict:?}");
    // Never logged anywhere: it never applied, and the read of no node is right.
    let h = to_check_history(&[(0, &records[..])], &CommitRecord::default());
    assert_eq!(h.ops[0].outcome, HOutcome::Fail);
    let verdict = check_zookeeper(&h, &ZkOptions::default()).unwrap();
    assert!(verdict.is_valid(), "{verdict:?}");
}

fn invoke(op_id: u64, session: u64, at_ns: u64, op: Op) -> Record {
    Record::Invoke {
        op_id,
        session,
        op: op.into(),
        at_ns,
    }
}

fn create_txn(zxid: Zxid, session: u64, cxid: u64, path: &str) -> Txn {
    Txn {
        zxid,
        session,
        cxid,
        op: TxnOp::Create {
            path: path.into(),
            data: Vec::new().into(),
            ephemeral_owner: 0,
        },
    }
}

fn create(path: &str) -> Op {
    Op::Create {
        path: path.into(),
        data: Vec::new(),
        ephemeral: false,
        sequential: false,
    }
}

fn kinds(h: &History) -> Vec<String> {
    let verdict = check_zookeeper(h, &ZkOptions::default()).unwrap();
    verdict
        .violations()
        .iter()
        .map(|v| v.kind.clone())
        .collect()
}

/// Two pipelined requests of one session still open at the end (kafka-nemesis-hunt
/// seeds 66, 477, 717: a controller's two multis, the first committed, the second never
/// logged). Each is the request it was, in the order the client sent it: the first at
/// its own zxid, the second never applied. Matching both to "the one committed request
/// above the answered ones" gave both the same zxid (`duplicate-zxid`).
#[test]
fn open_pipelined_requests_resolve_to_their_own_cxids() {
    let multi = |path: &str| {
        Op::Multi(vec![
            Op::Check {
                path: "/e".into(),
                version: 0,
            },
            create(path),
        ])
    };
    let mut records = Vec::new();
    records.extend(span(
        1,
        0,
        create("/e"),
        Outcome::Ok(OpResult::Checked),
        Some(8),
    ));
    records.push(invoke(2, 7, 10, multi("/a")));
    records.push(invoke(3, 7, 10, multi("/b")));
    let mut record = CommitRecord::default();
    let first = Txn {
        op: TxnOp::Multi(vec![TxnOp::Create {
            path: "/a".into(),
            data: Vec::new().into(),
            ephemeral_owner: 0,
        }]),
        ..create_txn(9, 7, 2, "/a")
    };
    record.logged(&first);
    record.add(&first, 12);
    let h = to_check_history(&[(0, &records[..])], &record);
    let fates: Vec<(HOutcome, Option<Zxid>)> = h.ops.iter().map(|o| (o.outcome, o.zxid)).collect();
    assert_eq!(
        fates,
        [
            (HOutcome::Ok, Some(8)),
            (HOutcome::Ok, Some(9)),
            (HOutcome::Fail, None)
        ]
    );
    assert!(kinds(&h).is_empty(), "{:?}", kinds(&h));
    // The resolution still feeds the checker: another client's later read that misses
    // the first multi's create is caught.
    let get = Op::Exists {
        path: "/a".into(),
        watch: false,
    };
    let absent = Outcome::Ok(OpResult::Exists(None));
    let reader = [
        invoke(1, 8, 20, get),
        Record::Complete {
            op_id: 1,
            session: 8,
            outcome: absent,
            zxid: Some(9),
            cxid: 1,
            at_ns: 25,
        },
    ];
    let h = to_check_history(&[(0, &records[..]), (1, &reader[..])], &record);
    assert_eq!(kinds(&h), ["read-not-tree-state"]);
}

/// A broker queues its first creates before its session exists (invoked with session 0)
/// and may crash before the answer: the request takes the handle's session, named by
/// the handle's other records, and resolves by its txn (kafka-nemesis-hunt seeds 123 and
/// 555: such a create was committed, and treating it as never applied made the reads
/// and the other brokers' NodeExists unexplainable). A handle whose session no record
/// names stays unknown.
#[test]
fn requests_invoked_before_the_session_take_the_handles_session() {
    let records = [
        invoke(1, 0, 0, create("/brokers")),
        invoke(2, 0, 0, create("/brokers/ids")),
        Record::Complete {
            op_id: 1,
            session: 7,
            outcome: Outcome::Ok(OpResult::Created {
                path: "/brokers".into(),
                stat: crate::zab::tree::Stat::default(),
            }),
            zxid: Some(5),
            cxid: 1,
            at_ns: 5,
        },
    ];
    let mut record = CommitRecord::default();
    let txn = create_txn(6, 7, 2, "/brokers/ids");
    record.logged(&txn);
    record.add(&txn, 6);
    let h = to_check_history(&[(0, &records[..])], &record);
    assert_eq!((h.ops[1].outcome, h.ops[1].zxid), (HOutcome::Ok, Some(6)));
    // Another client's NodeExists right after is explained by it.
    let other = [
        invoke(1, 8, 10, create("/brokers/ids")),
        Record::Complete {
            op_id: 1,
            session: 8,
            outcome: Outcome::Fail("NodeExists".into()),
            zxid: Some(7),
            cxid: 1,
            at_ns: 12,
        },
    ];
    let both = [(0, &records[..]), (1, &other[..])];
    let h = to_check_history(&both, &record);
    assert!(kinds(&h).is_empty(), "{:?}", kinds(&h));
    // Without it committed (never logged), that NodeExists cannot be placed.
    let h = to_check_history(&both, &CommitRecord::default());
    assert!(
        !kinds(&h).is_empty(),
        "a NodeExists with no create must fail"
    );
    // No record names the handle's session: the open create stays unknown.
    let lone = [invoke(1, 0, 0, create("/brokers/ids"))];
    let h = to_check_history(&[(0, &lone[..])], &record);
    assert_eq!(h.ops[0].outcome, HOutcome::Info);
}

#[test]
fn only_a_successful_sync_makes_the_next_read_a_synced_read() {
    let get = || Op::GetData {
        path: "/k".into(),
        watch: false,
    };
    let data = Outcome::Ok(OpResult::Data {
        data: b"v".to_vec(),
        stat: crate::zab::tree::Stat::default(),
    });
    let sync = Op::Sync { path: "/k".into() };
    let mut records = Vec::new();
    records.extend(span(
        1,
        0,
        sync.clone(),
        Outcome::Ok(OpResult::Synced),
        Some(3),
    ));
    records.extend(span(2, 10, get(), data.clone(), Some(3)));
    records.extend(span(3, 20, sync, Outcome::Fail("Timeout".into()), None));
    records.extend(span(4, 30, get(), data, Some(3)));
    let h = to_check_history(&[(0, &records[..])], &CommitRecord::default());
    let calls: Vec<&Call> = h.ops.iter().map(|o| &o.call).collect();
    assert!(matches!(calls[0], Call::SyncGetData { .. }), "{calls:?}");
    assert!(matches!(calls[1], Call::GetData { .. }), "{calls:?}");
    assert_eq!(calls.len(), 2);
}

/// The check compares a failure's text with `SESSION_MOVED`: it must be what
/// `Record::complete` writes for a SESSIONMOVED answer, or the check could never fire.
#[test]
fn session_moved_text_is_the_recorded_one() {
    assert_eq!(format!("{:?}", ErrCode::SessionMoved), SESSION_MOVED);
    assert!(session_moved_answer(&Outcome::Fail(format!(
        "{:?}",
        ErrCode::SessionMoved
    ))));
    assert!(!session_moved_answer(&Outcome::Fail("NoNode".into())));
}
