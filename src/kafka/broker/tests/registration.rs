//! The broker as a ZooKeeper client: registration, broker epoch, expiry, fencing of
//! controller requests, controlled shutdown.

use super::*;

#[test]
fn registration_creates_the_top_level_paths_and_takes_the_czxid_as_broker_epoch() {
    let b = Bench::started(1);
    for path in zkdata::TOP_LEVEL {
        assert!(b.zk.nodes.contains_key(path), "{path} created");
    }
    let (_, stat) = &b.zk.nodes["/brokers/ids/1"];
    assert_ne!(stat.ephemeral_owner, 0, "the registration is ephemeral");
    assert_eq!(b.broker.view().broker_epoch, Some(stat.czxid as i64));
    assert_eq!(b.broker.view().zk_session, stat.ephemeral_owner);
}

#[test]
fn an_old_sessions_registration_is_waited_out_then_replaced() {
    // A fast restart: the previous incarnation's ephemeral is still there (another session).
    let mut b = Bench::with_props(1, ServerProperties::default());
    b.zk.create("/brokers", vec![], 0);
    b.zk.create("/brokers/ids", vec![], 0);
    let old = b.zk.create("/brokers/ids/1", vec![], 0x55);
    b.event(Event::Start { restarted: true });
    assert!(!b.broker.registered());
    b.advance(500 * MS);
    assert!(!b.broker.registered(), "still owned by the old session");
    // The old session expires: its ephemeral goes; the next tick registers.
    b.zk.nodes.remove("/brokers/ids/1");
    b.advance(200 * MS);
    assert!(b.broker.registered());
    assert!(b.broker_epoch() > old.czxid as i64, "a new broker epoch");
}

/// A restarted broker serves no controller request before it has registered again
/// (KafkaServer.startup starts its request processors after `registerBroker`): one meant
/// for its previous incarnation waits, then meets the new broker epoch's fence, and is not
/// acted on (kafka-nemesis-hunt seed 857: served at once, a broker that had lost its
/// unflushed log tail led its old leader epoch again).
#[test]
fn a_restarted_broker_serves_controller_requests_only_once_registered() {
    let mut b = Bench::with_props(1, ServerProperties::default());
    b.zk.create("/brokers", vec![], 0);
    b.zk.create("/brokers/ids", vec![], 0);
    let old = b.zk.create("/brokers/ids/1", vec![], 0x55);
    b.event(Event::Start { restarted: true });
    b.advance(300 * MS);
    assert!(!b.broker.registered(), "still owned by the old session");
    // The controller, which has not seen the restart, leads the partition through it.
    let conn = ConnId(503);
    let body = Request::LeaderAndIsr {
        controller_id: 2,
        controller_epoch: 1,
        broker_epoch: old.czxid as i64,
        partitions: vec![state(1, 0, &[1, 0], 0)],
        live_leaders: vec![0, 1, 2],
    };
    b.request(conn, 7, body);
    assert_eq!(b.responses(conn), vec![], "held until registered");
    assert!(b
        .broker
        .view()
        .replicas
        .get(&tp())
        .is_none_or(|r| !r.is_leader()));
    b.zk.nodes.remove("/brokers/ids/1");
    b.advance(200 * MS);
    assert!(b.broker.registered());
    assert_eq!(
        b.responses(conn),
        vec![(
            7,
            Response::LeaderAndIsr {
                error: ErrorCode::StaleBrokerEpoch,
                partitions: vec![]
            }
        )]
    );
    assert!(b
        .broker
        .view()
        .replicas
        .get(&tp())
        .is_none_or(|r| !r.is_leader()));
}

#[test]
fn session_expiry_registers_again_with_a_new_broker_epoch() {
    let mut b = Bench::started(0);
    let first = b.broker_epoch();
    // The connection breaks; the reconnect finds the session expired.
    let (conn, _) = b.zk_conn.expect("connected");
    b.zk.nodes.remove("/brokers/ids/0");
    b.zk.expire_next = true;
    b.event(Event::ConnDown { conn, peer: ZK });
    b.advance(300 * MS);
    assert!(b.broker.registered(), "registered on a new session");
    let second = b.broker_epoch();
    assert!(second > first, "{second} > {first}");
    let (_, stat) = &b.zk.nodes["/brokers/ids/0"];
    assert_eq!(stat.czxid as i64, second);
}

#[test]
fn controller_requests_with_a_stale_controller_or_broker_epoch_are_refused() {
    let mut b = Bench::started(0);
    assert_eq!(
        b.leader_and_isr(state(0, 1, &[0, 1], 0)),
        Response::LeaderAndIsr {
            error: ErrorCode::None,
            partitions: vec![(tp(), ErrorCode::None)]
        }
    );
    // A newer controller (epoch 3) speaks; then the old one (epoch 1) is fenced.
    let mut newer = state(1, 2, &[1, 0], 1);
    newer.controller_epoch = 3;
    b.leader_and_isr(newer);
    assert_eq!(b.broker.view().fenced_controller_epoch, 3);
    let stale = b.leader_and_isr(state(0, 9, &[0], 2));
    assert_eq!(
        stale,
        Response::LeaderAndIsr {
            error: ErrorCode::StaleControllerEpoch,
            partitions: vec![]
        }
    );
    assert_eq!(b.broker.view().replicas[&tp()].leader_epoch(), Some(2));
    // A request for an older registration of this broker (KIP-380).
    let old_epoch = b.broker_epoch() - 1;
    let conn = ConnId(501);
    let body = Request::UpdateMetadata {
        controller_id: 2,
        controller_epoch: 3,
        broker_epoch: old_epoch,
        partitions: vec![],
        live_brokers: vec![0, 1, 2],
    };
    b.request(conn, 4, body);
    assert_eq!(
        b.responses(conn),
        vec![(
            4,
            Response::UpdateMetadata {
                error: ErrorCode::StaleBrokerEpoch
            }
        )]
    );
    assert_eq!(b.broker.view().metadata.controller_id, None);
}

#[test]
fn metadata_and_producer_ids_come_from_the_cache_and_the_broker_epoch() {
    let mut b = Bench::started(0);
    let epoch = b.broker_epoch();
    let conn = ConnId(502);
    let body = Request::UpdateMetadata {
        controller_id: 2,
        controller_epoch: 1,
        broker_epoch: epoch,
        partitions: vec![state(1, 4, &[1, 2], 3)],
        live_brokers: vec![1, 2],
    };
    b.request(conn, 1, body);
    b.request(CLIENT, 2, Request::Metadata { topics: None });
    let resp = b.responses(CLIENT).pop().unwrap().1;
    let Response::Metadata {
        brokers,
        controller_id,
        partitions,
    } = resp
    else {
        panic!("{resp:?}")
    };
    assert_eq!((brokers, controller_id), (vec![1, 2], Some(2)));
    assert_eq!(partitions[0].leader, Some(1));
    assert_eq!(partitions[0].offline_replicas, vec![0]);
    b.request(CLIENT, 3, Request::InitProducerId);
    b.request(CLIENT, 4, Request::InitProducerId);
    let ids: Vec<i64> = b
        .responses(CLIENT)
        .into_iter()
        .map(|(_, r)| match r {
            Response::InitProducerId { producer_id, .. } => producer_id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![(epoch << 16) | 1, (epoch << 16) | 2]);
}

#[test]
fn controlled_shutdown_asks_the_controller_then_closes_the_session_and_halts() {
    let mut b = Bench::started(0);
    let epoch = b.broker_epoch();
    let body = Request::UpdateMetadata {
        controller_id: 2,
        controller_epoch: 1,
        broker_epoch: epoch,
        partitions: vec![],
        live_brokers: vec![0, 1, 2],
    };
    b.request(ConnId(503), 1, body);
    b.event(Event::Stop);
    let reqs = b.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let (conn, corr, req) = reqs[0].clone();
    assert_eq!(
        req,
        Request::ControlledShutdown {
            broker_id: 0,
            broker_epoch: epoch
        }
    );
    assert_eq!(b.connects.last().map(|c| c.1), Some(node_of(2)));
    assert!(b.halted.is_none());
    // Leaderships remain: retry after the backoff.
    let msg = KafkaMsg::Response {
        correlation_id: corr,
        body: Response::ControlledShutdown {
            error: ErrorCode::None,
            remaining: vec![tp()],
        },
    };
    let peer = node_of(2);
    b.event(Event::Message {
        conn,
        peer,
        msg: WireMsg::Kafka(msg),
    });
    assert!(b.halted.is_none());
    b.advance(shutdown_backoff());
    let (conn, corr, _) = b.requests().pop().expect("a second attempt");
    let msg = KafkaMsg::Response {
        correlation_id: corr,
        body: Response::ControlledShutdown {
            error: ErrorCode::None,
            remaining: vec![],
        },
    };
    b.event(Event::Message {
        conn,
        peer,
        msg: WireMsg::Kafka(msg),
    });
    assert_eq!(b.halted.as_deref(), Some("stopped"));
    assert!(
        !b.zk.nodes.contains_key("/brokers/ids/0"),
        "the session was closed: its registration is gone at once"
    );
}

fn shutdown_backoff() -> u64 {
    super::super::shutdown::RETRY_BACKOFF_NS
}

#[test]
fn without_controlled_shutdown_a_stop_halts_at_once() {
    let props = ServerProperties {
        controlled_shutdown_enable: false,
        ..ServerProperties::default()
    };
    let mut b = Bench::started_with(0, props);
    b.event(Event::Stop);
    assert_eq!(b.halted.as_deref(), Some("stopped"));
    assert!(b.requests().is_empty());
}
