//! The ZooKeeper client library against a real simulated ensemble, embedded the way a Kafka
//! broker embeds it: inside another node with its own message type, through
//! `Context::scoped`, two client handles in one node (each with its own timer tag).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use faultline::node::{Context, Event, Node, NodeId};
use faultline::sim::fault::FaultAction;
use faultline::sim::{Sim, SimConfig};
use faultline::zab::client::{
    ClientConfig, ClientEvent, SessionState, ZkClient, ZkError, CLIENT_TAG_BASE,
};
use faultline::zab::config::ZabConfig;
use faultline::zab::msg::{ErrCode, Msg, Op, OpResult, WatchKind};
use faultline::zab::ZabServer;

/// The world's messages: ZooKeeper's, and the applications' own (unused on the wire, but
/// it makes the embedding real: the client speaks `Msg`, the world `World`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum World {
    Zk(Msg),
    #[allow(dead_code)]
    App(u32),
}

impl From<Msg> for World {
    fn from(m: Msg) -> World {
        World::Zk(m)
    }
}

fn inward(event: Event<World>) -> Option<Event<Msg>> {
    event.map_msg(|m| match m {
        World::Zk(m) => Some(m),
        World::App(_) => None,
    })
}

/// What a test asks an application node to do, and what it saw.
#[derive(Default)]
struct Script {
    todo: VecDeque<(usize, Command)>,
    seen: Vec<(usize, ClientEvent)>,
}

enum Command {
    Submit(Op),
    Close,
}

/// An application node with two ZooKeeper client handles.
struct App {
    clients: Vec<ZkClient>,
    script: Rc<RefCell<Script>>,
}

const TAG_SCRIPT: u64 = 1;
const TAG_START: u64 = 2;
/// Clients start once the ensemble has had time to elect a leader, so that each connects
/// first to the server it names (client k of app a: server a + k).
const CLIENTS_START_NS: u64 = 1_500_000_000;

impl App {
    fn on_event(&mut self, ctx: &mut Context<'_, World>, event: Event<World>) {
        match &event {
            Event::Start { .. } => {
                ctx.set_timer(1_000_000, TAG_SCRIPT);
                ctx.set_timer(CLIENTS_START_NS, TAG_START);
            }
            Event::Timer { tag: TAG_START, .. } => {
                for zk in &mut self.clients {
                    ctx.scoped(|inner: &mut Context<'_, Msg>| zk.start(inner));
                }
            }
            Event::Timer {
                tag: TAG_SCRIPT, ..
            } => {
                ctx.set_timer(1_000_000, TAG_SCRIPT);
                let todo: Vec<(usize, Command)> = self.script.borrow_mut().todo.drain(..).collect();
                for (i, cmd) in todo {
                    let zk = &mut self.clients[i];
                    ctx.scoped(|inner: &mut Context<'_, Msg>| match cmd {
                        Command::Submit(op) => {
                            zk.submit(inner, op);
                        }
                        Command::Close => zk.close(inner),
                    });
                }
            }
            _ => {}
        }
        if let Some(ev) = inward(event) {
            for zk in &mut self.clients {
                let mine = match &ev {
                    Event::Start { .. } => false,
                    Event::ConnUp { conn, .. }
                    | Event::ConnDown { conn, .. }
                    | Event::Message { conn, .. } => zk.owns(*conn),
                    Event::Timer { tag, .. } => zk.owns_timer(*tag),
                    Event::FsyncDone { .. } | Event::Stop => false,
                };
                if mine {
                    ctx.scoped(|inner: &mut Context<'_, Msg>| zk.on_event(inner, ev.clone()));
                }
            }
        }
        let mut script = self.script.borrow_mut();
        for (i, zk) in self.clients.iter_mut().enumerate() {
            script.seen.extend(zk.drain().into_iter().map(|e| (i, e)));
        }
    }
}

enum Member {
    Server(Box<ZabServer>),
    App(App),
}

impl Node for Member {
    type Msg = World;
    fn on_event(&mut self, ctx: &mut Context<'_, World>, event: Event<World>) {
        match self {
            Member::Server(s) => {
                if let Some(ev) = inward(event) {
                    ctx.scoped(|inner: &mut Context<'_, Msg>| s.on_event(inner, ev));
                }
            }
            Member::App(a) => a.on_event(ctx, event),
        }
    }
}

const SERVERS: u32 = 3;
const SECOND: u64 = 1_000_000_000;

/// zk0..zk2 and applications a0..a{apps-1}, each with two clients.
fn world(seed: u64, apps: u32, session_timeout_ms: u64) -> (Sim<Member>, Vec<Rc<RefCell<Script>>>) {
    let scripts: Vec<Rc<RefCell<Script>>> = (0..apps).map(|_| Rc::default()).collect();
    let shared = scripts.clone();
    let voters: Vec<NodeId> = (0..SERVERS).map(NodeId).collect();
    let factory = Box::new(move |id: NodeId| {
        if id.0 < SERVERS {
            return Member::Server(Box::new(ZabServer::new(id, &voters, ZabConfig::default())));
        }
        let app = (id.0 - SERVERS) as usize;
        let clients = (0..2)
            .map(|k| {
                let cfg = ClientConfig {
                    servers: voters.clone(),
                    session_timeout_ms,
                    request_timeout_ns: 2 * SECOND,
                    connect_timeout_ns: SECOND,
                    tick_ns: 100_000_000,
                    timer_tag: CLIENT_TAG_BASE + k,
                };
                ZkClient::new(cfg, app + k as usize)
            })
            .collect();
        let script = Rc::clone(&shared[app]);
        Member::App(App { clients, script })
    });
    let mut names: Vec<String> = (0..SERVERS).map(|i| format!("zk{i}")).collect();
    names.extend((0..apps).map(|i| format!("a{i}")));
    let config = SimConfig {
        seed,
        net: Default::default(),
        disk: Default::default(),
        timeline_capture: 0,
        record_checksums: false,
    };
    (Sim::new(config, names, factory), scripts)
}

fn run_until(sim: &mut Sim<Member>, until_ns: u64) {
    while sim.next_time().is_some_and(|t| t <= until_ns) {
        sim.step();
    }
    sim.advance_to(until_ns.max(sim.now()));
}

fn submit(script: &Rc<RefCell<Script>>, client: usize, op: Op) {
    script
        .borrow_mut()
        .todo
        .push_back((client, Command::Submit(op)));
}

/// The results client `client` got, in order.
fn results(script: &Rc<RefCell<Script>>, client: usize) -> Vec<Result<OpResult, ZkError>> {
    let s = script.borrow();
    let done = s.seen.iter().filter(|(i, _)| *i == client);
    done.filter_map(|(_, e)| match e {
        ClientEvent::Completion(c) => Some(c.result.clone()),
        _ => None,
    })
    .collect()
}

fn create(path: &str) -> Op {
    Op::Create {
        path: path.into(),
        data: b"v".to_vec(),
        ephemeral: false,
        sequential: false,
    }
}

fn leader(sim: &Sim<Member>) -> Option<NodeId> {
    (0..SERVERS).map(NodeId).find(|id| match sim.node(*id) {
        Some(Member::Server(s)) => s.view().established_epoch.is_some(),
        _ => false,
    })
}

#[test]
fn two_embedded_clients_get_their_own_sessions_and_create_returns_stat() {
    // Goal: the client works inside another node through Context::scoped, two handles in
    // one node do not steal each other's timers, and create answers the new node's Stat.
    let (mut sim, scripts) = world(1, 1, 1000);
    run_until(&mut sim, 2 * SECOND);
    submit(&scripts[0], 0, create("/a"));
    submit(&scripts[0], 1, create("/b"));
    run_until(&mut sim, 3 * SECOND);
    let s = scripts[0].borrow();
    let sessions: Vec<u64> = s
        .seen
        .iter()
        .filter_map(|(_, e)| match e {
            ClientEvent::State(SessionState::Connected { session }) => Some(*session),
            _ => None,
        })
        .collect();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_ne!(sessions[0], sessions[1]);
    for (client, path) in [(0, "/a"), (1, "/b")] {
        let done = s.seen.iter().find_map(|(i, e)| match e {
            ClientEvent::Completion(c) if *i == client => Some(c.clone()),
            _ => None,
        });
        let c = done.expect("answered");
        let Ok(OpResult::Created { path: p, stat }) = &c.result else {
            panic!("create answered {:?}", c.result);
        };
        assert_eq!(p, path);
        assert_eq!(Some(stat.czxid), c.zxid, "czxid is the creating txn's zxid");
        assert_eq!(stat.ephemeral_owner, 0);
    }
}

#[test]
fn a_multi_with_a_stale_check_reports_every_op() {
    // Goal: a controller's write guarded by a /controller_epoch version check tells a stale
    // epoch apart from a bad version on its own write (KAFKA-6082's shape).
    let (mut sim, scripts) = world(2, 1, 1000);
    run_until(&mut sim, 2 * SECOND);
    submit(&scripts[0], 0, create("/controller_epoch"));
    submit(&scripts[0], 0, create("/state"));
    run_until(&mut sim, 3 * SECOND);
    let guarded = |epoch_version: i32, state_version: i32| {
        Op::Multi(vec![
            Op::Check {
                path: "/controller_epoch".into(),
                version: epoch_version,
            },
            Op::SetData {
                path: "/state".into(),
                data: b"leader=1".to_vec(),
                version: state_version,
            },
        ])
    };
    submit(&scripts[0], 0, guarded(4, 0));
    submit(&scripts[0], 0, guarded(0, 7));
    submit(&scripts[0], 0, guarded(0, 0));
    run_until(&mut sim, 4 * SECOND);
    let got = results(&scripts[0], 0);
    assert_eq!(got.len(), 5, "{got:?}");
    let bad = Some(ErrCode::BadVersion);
    let inconsistent = Some(ErrCode::RuntimeInconsistency);
    assert_eq!(got[2], Err(ZkError::MultiFailed(vec![bad, inconsistent])));
    assert_eq!(got[3], Err(ZkError::MultiFailed(vec![None, bad])));
    assert!(
        matches!(&got[4], Ok(OpResult::Multi(r)) if r.len() == 2),
        "{:?}",
        got[4]
    );
}

#[test]
fn a_session_expired_during_a_partition_leaves_a_dead_handle() {
    // Goal: cut off from every server for longer than the session timeout, the client
    // learns of the expiry on reconnect; queued and later operations fail with
    // SESSIONEXPIRED and no new session is opened behind the node's back.
    let (mut sim, scripts) = world(3, 1, 1000);
    run_until(&mut sim, 2 * SECOND);
    let app = NodeId(SERVERS);
    let servers: Vec<NodeId> = (0..SERVERS).map(NodeId).collect();
    sim.apply_fault(&FaultAction::Partition {
        groups: vec![vec![app], servers],
        heal_after: None,
        silent: false,
    });
    // Queued while cut off (the session is already gone), still waiting at the heal.
    run_until(&mut sim, 4 * SECOND + 500_000_000);
    submit(&scripts[0], 0, create("/queued"));
    run_until(&mut sim, 5 * SECOND);
    sim.heal_all();
    run_until(&mut sim, 7 * SECOND);
    submit(&scripts[0], 0, create("/later"));
    run_until(&mut sim, 8 * SECOND);
    let s = scripts[0].borrow();
    let mine: Vec<&ClientEvent> = s
        .seen
        .iter()
        .filter(|(i, _)| *i == 0)
        .map(|(_, e)| e)
        .collect();
    let expired_at = mine
        .iter()
        .position(|e| **e == ClientEvent::State(SessionState::Expired))
        .expect("the session expired");
    let reconnected = mine[expired_at..]
        .iter()
        .any(|e| matches!(e, ClientEvent::State(SessionState::Connected { .. })));
    assert!(!reconnected, "a dead handle opened a session: {mine:?}");
    drop(s);
    let got = results(&scripts[0], 0);
    let expired = Err(ZkError::SessionExpired);
    assert!(
        got.ends_with(&[expired.clone(), expired]),
        "queued and later ops fail with SESSIONEXPIRED: {got:?}"
    );
}

#[test]
fn a_watch_survives_a_leader_change_and_fires_once() {
    // Goal: a data watch set before the leader crashes fires exactly once for a change
    // made under the next leader, whether the watcher's connection survived (the server
    // fires it) or moved (SetWatches on the reconnect fires it).
    for seed in 0..6 {
        let (mut sim, scripts) = world(10 + seed, 2, 1000);
        run_until(&mut sim, 2 * SECOND);
        submit(&scripts[1], 0, create("/w"));
        run_until(&mut sim, 3 * SECOND);
        let watch = Op::GetData {
            path: "/w".into(),
            watch: true,
        };
        submit(&scripts[0], 0, watch);
        run_until(&mut sim, 4 * SECOND);
        let old = leader(&sim).expect("a leader");
        sim.apply_fault(&FaultAction::Crash {
            node: old,
            restart_after: None,
        });
        run_until(&mut sim, 8 * SECOND);
        let new = leader(&sim).expect("a new leader");
        assert_ne!(new, old, "seed {seed}");
        let set = Op::SetData {
            path: "/w".into(),
            data: b"changed".to_vec(),
            version: -1,
        };
        submit(&scripts[1], 0, set);
        run_until(&mut sim, 11 * SECOND);
        let writes = results(&scripts[1], 0);
        assert!(
            matches!(writes.last(), Some(Ok(OpResult::SetStat(_)))),
            "{writes:?}"
        );
        let s = scripts[0].borrow();
        let fired: Vec<&ClientEvent> = s
            .seen
            .iter()
            .filter(|(i, e)| *i == 0 && matches!(e, ClientEvent::Watch { .. }))
            .map(|(_, e)| e)
            .collect();
        let want = ClientEvent::Watch {
            path: "/w".into(),
            kind: WatchKind::NodeDataChanged,
        };
        assert_eq!(fired, vec![&want], "seed {seed}");
    }
}

#[test]
fn a_watch_change_missed_while_disconnected_fires_on_reconnect() {
    // Goal: the watcher's server (a follower) crashes; the change commits while the
    // watcher looks for another server; on reconnect (same session) SetWatches relative to
    // its last zxid makes the new server fire the watch, once.
    let watched = |sim: &Sim<Member>| -> Option<NodeId> {
        let Some(Member::App(a0)) = sim.node(NodeId(SERVERS)) else {
            panic!("a0 is up");
        };
        a0.clients[0].server()
    };
    // The first seed whose watcher sits on a follower (a crashed leader would delay the
    // write past the reconnect, and the watch would fire the ordinary way).
    let (mut sim, scripts, held_by) = (4..24)
        .find_map(|seed| {
            let (mut sim, scripts) = world(seed, 2, 2000);
            run_until(&mut sim, 2 * SECOND);
            submit(&scripts[1], 0, create("/w"));
            run_until(&mut sim, 3 * SECOND);
            let watch = Op::GetData {
                path: "/w".into(),
                watch: true,
            };
            submit(&scripts[0], 0, watch);
            run_until(&mut sim, 4 * SECOND);
            let held_by = watched(&sim).expect("connected");
            (leader(&sim) != Some(held_by)).then_some((sim, scripts, held_by))
        })
        .expect("a seed with the watcher on a follower");
    sim.apply_fault(&FaultAction::Crash {
        node: held_by,
        restart_after: None,
    });
    let set = Op::SetData {
        path: "/w".into(),
        data: b"changed".to_vec(),
        version: -1,
    };
    submit(&scripts[1], 0, set);
    run_until(&mut sim, 8 * SECOND);
    let s = scripts[0].borrow();
    let mine: Vec<&ClientEvent> = s
        .seen
        .iter()
        .filter(|(i, _)| *i == 0)
        .map(|(_, e)| e)
        .collect();
    let want = ClientEvent::Watch {
        path: "/w".into(),
        kind: WatchKind::NodeDataChanged,
    };
    let fired = mine.iter().filter(|e| ***e == want).count();
    assert_eq!(fired, 1, "{mine:?}");
    // It fired on the new connection: the server that held the watch is down.
    let connected: Vec<usize> = (0..mine.len())
        .filter(|i| matches!(mine[*i], ClientEvent::State(SessionState::Connected { .. })))
        .collect();
    let at = mine.iter().position(|e| **e == want).expect("fired");
    assert!(connected.len() == 2 && at > connected[1], "{mine:?}");
    assert!(
        !mine.contains(&&ClientEvent::State(SessionState::Expired)),
        "{mine:?}"
    );
}

#[test]
fn close_ends_the_session_and_its_ephemerals() {
    // Goal: controlled shutdown: close() ends the session at once (not after the timeout),
    // so its ephemeral node (a broker's registration) is gone for everyone else.
    let (mut sim, scripts) = world(5, 1, 2000);
    run_until(&mut sim, 2 * SECOND);
    let eph = Op::Create {
        path: "/eph".into(),
        data: vec![],
        ephemeral: true,
        sequential: false,
    };
    submit(&scripts[0], 0, eph);
    run_until(&mut sim, 3 * SECOND);
    scripts[0].borrow_mut().todo.push_back((0, Command::Close));
    run_until(&mut sim, 3 * SECOND + 300_000_000);
    let exists = Op::Exists {
        path: "/eph".into(),
        watch: false,
    };
    submit(&scripts[0], 1, Op::Sync { path: "/".into() });
    submit(&scripts[0], 1, exists);
    submit(&scripts[0], 0, create("/after-close"));
    run_until(&mut sim, 4 * SECOND);
    let closed = ClientEvent::State(SessionState::Closed);
    assert!(scripts[0].borrow().seen.contains(&(0, closed)));
    assert!(matches!(
        results(&scripts[0], 0)[..],
        [Ok(_), Err(ZkError::Closed)]
    ));
    let other = results(&scripts[0], 1);
    assert_eq!(other.last(), Some(&Ok(OpResult::Exists(None))), "{other:?}");
}

#[test]
fn a_reconnect_never_lands_on_a_follower_behind_what_the_client_saw() {
    // Goal: a client that saw zxid X and loses its server never connects to a server
    // whose last processed zxid is below X ("Refusing session request for client as it
    // has seen zxid ..."; here the lagging follower is also cut from the quorum, so it
    // would refuse as a non-serving server too), stays disconnected while that server is
    // all it can reach, and after the heal reads nothing older than what it saw.
    // The ensemble's tickTime is 100 ms, so sessions live at most 2 s without a server.
    let (mut sim, scripts) = world(21, 1, 2000);
    run_until(&mut sim, 2 * SECOND);
    let app = NodeId(SERVERS);
    let lead = leader(&sim).expect("a leader");
    let client_server = |sim: &Sim<Member>, k: usize| match sim.node(app) {
        Some(Member::App(a)) => a.clients[k].server(),
        _ => None,
    };
    // The lagging follower: one that neither client of the app is connected to, if any.
    let servers: Vec<NodeId> = (0..SERVERS).map(NodeId).collect();
    let lagging = *servers
        .iter()
        .find(|s| **s != lead && client_server(&sim, 0) != Some(**s))
        .expect("a follower without client 0");
    let rest: Vec<NodeId> = servers.iter().copied().filter(|s| *s != lagging).collect();
    sim.apply_fault(&FaultAction::Partition {
        groups: vec![vec![lagging], rest.clone()],
        heal_after: None,
        silent: false,
    });
    submit(&scripts[0], 0, create("/seen"));
    run_until(&mut sim, 3 * SECOND);
    assert!(matches!(results(&scripts[0], 0).last(), Some(Ok(_))));
    let seen = match sim.node(app) {
        Some(Member::App(a)) => a.clients[0].last_zxid_seen(),
        _ => unreachable!("the app runs"),
    };
    // Cut the app from every server but the lagging one.
    sim.apply_fault(&FaultAction::Partition {
        groups: vec![vec![app], rest],
        heal_after: None,
        silent: false,
    });
    // Healed within the session timeout, counting the client's 1 s connect timeout.
    let until = 3 * SECOND + 600_000_000;
    while sim.next_time().is_some_and(|t| t <= until) {
        sim.step();
        if client_server(&sim, 0) == Some(lagging) {
            let behind = match sim.node(lagging) {
                Some(Member::Server(s)) => s.view().last_processed,
                _ => 0,
            };
            assert!(
                behind >= seen,
                "connected to {lagging} at {behind:#x} < {seen:#x}"
            );
        }
    }
    assert_eq!(
        client_server(&sim, 0),
        None,
        "only a lagging server was reachable"
    );
    sim.heal_all();
    run_until(&mut sim, 5 * SECOND);
    submit(
        &scripts[0],
        0,
        Op::Exists {
            path: "/seen".into(),
            watch: false,
        },
    );
    run_until(&mut sim, 6 * SECOND);
    let got = results(&scripts[0], 0);
    assert!(
        matches!(got.last(), Some(Ok(OpResult::Exists(Some(_))))),
        "the read after the heal went back in time: {got:?}"
    );
}
