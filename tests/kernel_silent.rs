//! Kernel tests of silent cuts: a silent partition keeps crossing connections up and tells
//! no one; what is sent across (data, a FIN) is held and delivered in order on heal; a peer
//! that dies behind the cut is learned of on heal; TCP's retransmission timeout breaks a
//! connection that held data too long; new connections across the cut time out.

use std::cell::RefCell;
use std::rc::Rc;

use faultline::node::{ConnId, Context, Event, Node, NodeId};
use faultline::sim::disk::DiskOptions;
use faultline::sim::fault::FaultAction;
use faultline::sim::net::NetOptions;
use faultline::sim::time::Dur;
use faultline::sim::{Sim, SimConfig};

const MS: u64 = 1_000_000;
const SEND: u64 = 1;
const CLOSE: u64 = 2;

/// What happened, with times.
#[derive(Default)]
struct Log {
    /// (time, receiver, sender, sequence number).
    received: Vec<(u64, u32, u32, u64)>,
    /// (time, node, peer).
    downs: Vec<(u64, u32, u32)>,
    /// (time, node, peer).
    ups: Vec<(u64, u32, u32)>,
}

/// Nodes other than 0 connect to node 0 at start and send one numbered message every
/// millisecond; node `closer` closes its connection (and stops) at `close_at_ns`. Node 0
/// answers nothing; a node whose connection went down reconnects on its next tick.
struct Probe {
    log: Rc<RefCell<Log>>,
    conn: Option<ConnId>,
    seq: u64,
    close_at: Option<u64>,
}

impl Node for Probe {
    type Msg = u64;
    fn on_event(&mut self, ctx: &mut Context<'_, u64>, event: Event<u64>) {
        let (me, now) = (ctx.me().0, ctx.now());
        match event {
            Event::Start { .. } if me != 0 => {
                self.conn = Some(ctx.connect(NodeId(0)));
                ctx.set_timer(MS, SEND);
                if let Some(at) = self.close_at {
                    ctx.set_timer(at - now, CLOSE);
                }
            }
            Event::Timer { tag: SEND, .. } => {
                match self.conn {
                    Some(conn) => {
                        self.seq += 1;
                        ctx.send(conn, self.seq);
                    }
                    None => self.conn = Some(ctx.connect(NodeId(0))),
                }
                ctx.set_timer(MS, SEND);
            }
            Event::Timer { tag: CLOSE, .. } => {
                if let Some(conn) = self.conn {
                    ctx.close(conn);
                }
                // Stop sending and reconnecting: a closed end stays quiet.
                self.conn = None;
                self.close_at = Some(u64::MAX);
            }
            Event::Message { peer, msg, .. } => {
                self.log.borrow_mut().received.push((now, me, peer.0, msg))
            }
            Event::ConnUp { peer, .. } => self.log.borrow_mut().ups.push((now, me, peer.0)),
            Event::ConnDown { conn, peer } => {
                self.log.borrow_mut().downs.push((now, me, peer.0));
                if self.conn == Some(conn) {
                    self.conn = None;
                }
            }
            _ => {}
        }
    }
}

fn world(close_at: Option<u64>, retransmit: Dur) -> (Sim<Probe>, Rc<RefCell<Log>>) {
    let log = Rc::new(RefCell::new(Log::default()));
    let shared = Rc::clone(&log);
    let config = SimConfig {
        seed: 11,
        net: NetOptions {
            delay_mean: Dur(MS / 2),
            delay_jitter: Dur(MS / 4),
            delay_min: Dur(1),
            connect_timeout: Dur(50 * MS),
            tcp_retransmit_timeout: retransmit,
        },
        disk: DiskOptions::default(),
        timeline_capture: 0,
        record_checksums: false,
    };
    let names = (0..3).map(|i| format!("p{i}")).collect();
    let factory = Box::new(move |id: NodeId| Probe {
        log: Rc::clone(&shared),
        conn: None,
        seq: 0,
        close_at: close_at.filter(|_| id == NodeId(1)),
    });
    (Sim::new(config, names, factory), log)
}

fn run_until(sim: &mut Sim<Probe>, until_ns: u64) {
    while sim.next_time().is_some_and(|t| t <= until_ns) {
        sim.step();
    }
    sim.advance_to(until_ns.max(sim.now()));
}

fn cut(silent: bool) -> FaultAction<NodeId> {
    FaultAction::Partition {
        groups: vec![vec![NodeId(0)], vec![NodeId(1), NodeId(2)]],
        heal_after: None,
        silent,
    }
}

fn received_from(log: &Log, sender: u32, from_ns: u64, to_ns: u64) -> Vec<u64> {
    log.received
        .iter()
        .filter(|r| r.2 == sender && r.0 >= from_ns && r.0 < to_ns)
        .map(|r| r.3)
        .collect()
}

#[test]
fn a_silent_partition_tells_no_one_and_delivers_everything_in_order_on_heal() {
    let (mut sim, log) = world(None, Dur(900_000 * MS));
    run_until(&mut sim, 10 * MS);
    sim.apply_fault(&cut(true));
    run_until(&mut sim, 40 * MS);
    {
        let log = log.borrow();
        assert!(log.downs.is_empty(), "no one is told: {:?}", log.downs);
        // Only what was already on the wire when the cut came gets through.
        assert!(received_from(&log, 1, 12 * MS, 40 * MS).is_empty());
    }
    assert_eq!(sim.stats().connections_broken, 0);
    sim.heal();
    run_until(&mut sim, 60 * MS);
    let log = log.borrow();
    assert!(log.downs.is_empty());
    for sender in [1, 2] {
        let all = received_from(&log, sender, 0, 60 * MS);
        let want: Vec<u64> = (1..=all.len() as u64).collect();
        assert_eq!(all, want, "every message of p{sender}, once, in order");
        assert!(
            all.len() >= 55,
            "p{sender} sent through the cut: {}",
            all.len()
        );
    }
}

#[test]
fn a_loud_partition_resets_what_crosses_it() {
    let (mut sim, log) = world(None, Dur(900_000 * MS));
    run_until(&mut sim, 10 * MS);
    sim.apply_fault(&cut(false));
    run_until(&mut sim, 15 * MS);
    let log = log.borrow();
    for node in [0, 1, 2] {
        assert!(
            log.downs.iter().any(|d| d.1 == node),
            "p{node} is told at once"
        );
    }
}

#[test]
fn a_fin_behind_a_silent_cut_follows_the_held_data_on_heal() {
    let (mut sim, log) = world(Some(20 * MS), Dur(900_000 * MS));
    run_until(&mut sim, 10 * MS);
    sim.apply_fault(&cut(true));
    run_until(&mut sim, 40 * MS);
    assert!(log.borrow().downs.is_empty(), "the FIN is held");
    sim.heal();
    run_until(&mut sim, 60 * MS);
    let log = log.borrow();
    let down = log
        .downs
        .iter()
        .find(|d| d.1 == 0 && d.2 == 1)
        .expect("p0 learns p1 closed, on heal");
    assert!(down.0 >= 40 * MS);
    let last_data = log.received.iter().filter(|r| r.2 == 1).map(|r| r.0).max();
    assert!(
        last_data.is_some_and(|t| t <= down.0),
        "data first, then the FIN"
    );
    let from_p1 = received_from(&log, 1, 0, 60 * MS);
    assert_eq!(
        from_p1.len(),
        19,
        "everything sent before the close: {from_p1:?}"
    );
}

#[test]
fn a_peer_that_dies_behind_a_silent_cut_is_learned_of_on_heal() {
    let (mut sim, log) = world(None, Dur(900_000 * MS));
    run_until(&mut sim, 10 * MS);
    sim.apply_fault(&cut(true));
    run_until(&mut sim, 20 * MS);
    sim.crash(NodeId(1));
    sim.kill(NodeId(2));
    run_until(&mut sim, 40 * MS);
    assert!(log.borrow().downs.is_empty(), "no reset crosses the cut");
    sim.heal();
    run_until(&mut sim, 45 * MS);
    let log = log.borrow();
    for peer in [1, 2] {
        assert!(
            log.downs
                .iter()
                .any(|d| d.1 == 0 && d.2 == peer && d.0 >= 40 * MS),
            "p0 learns of p{peer} on heal: {:?}",
            log.downs
        );
    }
    // What the dead processes had sent is not delivered to anyone after their death.
    assert!(received_from(&log, 1, 40 * MS, 45 * MS).is_empty());
}

#[test]
fn tcp_gives_up_on_data_held_past_the_retransmission_timeout() {
    let (mut sim, log) = world(None, Dur(15 * MS));
    run_until(&mut sim, 10 * MS);
    sim.apply_fault(&cut(true));
    run_until(&mut sim, 30 * MS);
    {
        let log = log.borrow();
        for sender in [1, 2] {
            let told = log
                .downs
                .iter()
                .find(|d| d.1 == sender)
                .expect("sender told");
            assert!(
                told.0 >= 25 * MS && told.0 <= 28 * MS,
                "at ~26 ms: {told:?}"
            );
        }
        assert!(
            !log.downs.iter().any(|d| d.1 == 0),
            "the receiver is not told yet"
        );
    }
    sim.heal();
    run_until(&mut sim, 35 * MS);
    let log = log.borrow();
    assert_eq!(
        log.downs.iter().filter(|d| d.1 == 0).count(),
        2,
        "{:?}",
        log.downs
    );
}

#[test]
fn new_connections_across_a_silent_cut_time_out() {
    let (mut sim, log) = world(None, Dur(900_000 * MS));
    run_until(&mut sim, 10 * MS);
    sim.apply_fault(&cut(true));
    // Node 1 loses its connection (a reset of its own) and tries again across the cut.
    sim.apply_fault(&FaultAction::Reset { node: NodeId(1) });
    run_until(&mut sim, 100 * MS);
    let ups_before = log.borrow().ups.iter().filter(|u| u.1 == 1).count();
    {
        let log = log.borrow();
        let downs = log.downs.iter().filter(|d| d.1 == 1).count();
        assert!(
            downs >= 2,
            "the reset, then a connect that timed out: {downs}"
        );
    }
    sim.heal();
    run_until(&mut sim, 200 * MS);
    let ups_after = log.borrow().ups.iter().filter(|u| u.1 == 1).count();
    assert!(ups_after > ups_before, "connects again after the heal");
}
