use super::*;

fn txn(zxid: Zxid, session: u64, op: TxnOp) -> Txn {
    Txn {
        zxid,
        session,
        cxid: 0,
        op,
    }
}

fn create(path: &str, eph: bool, seq: bool) -> Op {
    Op::Create {
        path: path.into(),
        data: b"x".to_vec(),
        ephemeral: eph,
        sequential: seq,
    }
}

fn run(tree: &mut DataTree, session: u64, op: &Op) -> OpResult {
    let t = tree.prep(session, op);
    let z = tree.last_zxid() + 1;
    tree.apply(&txn(z, session, t)).result
}

fn with_session(session: u64) -> DataTree {
    let mut t = DataTree::new();
    t.apply(&txn(1, session, TxnOp::CreateSession { timeout_ms: 1000 }));
    t
}

/// The multi prep as it was before the overlay, the reference: each op prepped against
/// a copy of the whole tree with the earlier ops applied to it.
fn prep_multi_on_a_copy(tree: &DataTree, session: u64, ops: &[Op]) -> TxnOp {
    let mut scratch = tree.clone();
    let mut txns = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let prepped = if matches!(op, Op::Multi(_)) || !op.is_write() {
            Err(ErrCode::BadArguments)
        } else {
            scratch.prep_one(session, op)
        };
        match prepped {
            Ok(t) => {
                let z = scratch.last_zxid() + 1;
                scratch.apply(&txn(z, session, t.clone()));
                txns.push(t);
            }
            Err(code) => {
                return TxnOp::Error {
                    code,
                    multi_len: ops.len() as u32,
                    index: i as u32,
                }
            }
        }
    }
    TxnOp::Multi(txns)
}

/// The overlay of a multi's earlier ops sees what a copy of the tree with those ops
/// applied would: creations, deletions (and the children they leave), versions,
/// sequence numbers, ephemeral parents.
#[test]
fn multi_prep_over_an_overlay_agrees_with_a_copy_of_the_tree() {
    let mut t = with_session(7);
    for op in [
        create("/a", false, false),
        create("/a/c", false, false),
        create("/e", true, false),
        create("/s-", false, true),
    ] {
        run(&mut t, 7, &op);
    }
    let set = |p: &str, v| Op::SetData {
        path: p.into(),
        data: b"y".to_vec(),
        version: v,
    };
    let check = |p: &str, v| Op::Check {
        path: p.into(),
        version: v,
    };
    let delete = |p: &str| Op::Delete {
        path: p.into(),
        version: -1,
    };
    let get = Op::GetData {
        path: "/a".into(),
        watch: false,
    };
    let multis = [
        vec![create("/b", false, false), create("/b/c", false, false)],
        vec![create("/b", false, false), delete("/b"), delete("/b")],
        vec![
            create("/b", false, false),
            create("/b/c", false, false),
            delete("/b"),
        ],
        vec![delete("/a")],
        vec![delete("/a/c"), delete("/a"), create("/a", false, false)],
        vec![
            create("/s-", false, true),
            create("/s-", false, true),
            check("/", 3),
        ],
        vec![set("/a", 0), set("/a", 1), check("/a", 2), set("/a", 1)],
        vec![create("/e/x", false, false)],
        vec![create("/x", true, false), create("/x/y", false, false)],
        vec![
            delete("/a/c"),
            create("/a/c", false, false),
            check("/a/c", 0),
        ],
        vec![set("/a", -1), get],
        vec![
            delete("/e"),
            create("/e", false, false),
            create("/e/x", false, false),
        ],
    ];
    for ops in multis {
        let want = prep_multi_on_a_copy(&t, 7, &ops);
        assert_eq!(t.prep(7, &Op::Multi(ops.clone())), want, "{ops:?}");
    }
}

#[test]
fn create_set_delete_with_versions() {
    let mut t = with_session(7);
    let r = run(&mut t, 7, &create("/a", false, false));
    let OpResult::Created { path, stat } = r else {
        panic!("create answered {r:?}");
    };
    assert_eq!(path, "/a");
    assert_eq!((stat.czxid, stat.version), (t.last_zxid(), 0));
    assert_eq!(
        run(&mut t, 7, &create("/a", false, false)),
        OpResult::Err(ErrCode::NodeExists)
    );
    let set = |v| Op::SetData {
        path: "/a".into(),
        data: b"y".to_vec(),
        version: v,
    };
    assert_eq!(run(&mut t, 7, &set(3)), OpResult::Err(ErrCode::BadVersion));
    let OpResult::SetStat(stat) = run(&mut t, 7, &set(0)) else {
        panic!()
    };
    assert_eq!(stat.version, 1);
    assert_eq!(stat.czxid, 2);
    let del = |v| Op::Delete {
        path: "/a".into(),
        version: v,
    };
    assert_eq!(run(&mut t, 7, &del(0)), OpResult::Err(ErrCode::BadVersion));
    assert_eq!(run(&mut t, 7, &del(1)), OpResult::Deleted);
    assert_eq!(
        t.read(&Op::Exists {
            path: "/a".into(),
            watch: false
        }),
        OpResult::Exists(None)
    );
}

#[test]
fn sequential_names_use_parent_cversion() {
    let mut t = with_session(7);
    run(&mut t, 7, &create("/q", false, false));
    let a = run(&mut t, 7, &create("/q/n-", false, true));
    let b = run(&mut t, 7, &create("/q/n-", false, true));
    assert!(matches!(a, OpResult::Created { path, .. } if path == "/q/n-0000000000"));
    assert!(matches!(b, OpResult::Created { path, .. } if path == "/q/n-0000000001"));
}

#[test]
fn close_session_deletes_its_ephemerals_and_they_cannot_have_children() {
    let mut t = with_session(7);
    t.apply(&txn(2, 8, TxnOp::CreateSession { timeout_ms: 1000 }));
    run(&mut t, 7, &create("/e", true, false));
    run(&mut t, 8, &create("/f", true, false));
    assert_eq!(
        run(&mut t, 7, &create("/e/c", false, false)),
        OpResult::Err(ErrCode::NoChildrenForEphemerals)
    );
    let z = t.last_zxid() + 1;
    t.apply(&txn(z, 7, TxnOp::CloseSession));
    assert_eq!(t.ephemerals(), vec![("/f".to_string(), 8)]);
    // A closed session can no longer create.
    assert_eq!(
        run(&mut t, 7, &create("/g", true, false)),
        OpResult::Err(ErrCode::SessionExpired)
    );
}

#[test]
fn multi_is_atomic() {
    let mut t = with_session(7);
    let ok = Op::Multi(vec![
        create("/a", false, false),
        create("/a/b", false, false),
    ]);
    assert!(matches!(run(&mut t, 7, &ok), OpResult::Multi(_)));
    let bad = Op::Multi(vec![create("/c", false, false), create("/a", false, false)]);
    let per_op = vec![None, Some(ErrCode::NodeExists)];
    assert_eq!(run(&mut t, 7, &bad), OpResult::MultiFailed(per_op));
    let bad3 = Op::Multi(vec![
        create("/a", false, false),
        create("/d", false, false),
        create("/e", false, false),
    ]);
    let per_op = vec![
        Some(ErrCode::NodeExists),
        Some(ErrCode::RuntimeInconsistency),
        Some(ErrCode::RuntimeInconsistency),
    ];
    assert_eq!(run(&mut t, 7, &bad3), OpResult::MultiFailed(per_op));
    assert!(t.get("/c").is_none());
}

#[test]
fn digest_is_history_independent_and_survives_images() {
    let mut a = with_session(7);
    run(&mut a, 7, &create("/x", false, false));
    run(&mut a, 7, &create("/y", true, false));
    let b = DataTree::from_image(&a.image());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.image(), b.image());
    let mut c = a.clone();
    run(
        &mut c,
        7,
        &Op::SetData {
            path: "/x".into(),
            data: vec![],
            version: -1,
        },
    );
    assert_ne!(a.digest(), c.digest());
}

#[test]
fn watches_are_one_shot() {
    let mut w = Watches::default();
    w.add_data("/a", 1);
    w.add_child("/", 2);
    assert_eq!(w.trigger("/a", WatchKind::NodeDataChanged), vec![1]);
    assert!(w.trigger("/a", WatchKind::NodeDataChanged).is_empty());
    assert_eq!(w.trigger("/", WatchKind::NodeChildrenChanged), vec![2]);
}
