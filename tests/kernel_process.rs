//! Kernel tests of the three ways a process goes down: `crash` (power loss), `kill` (the
//! process dies, the page cache survives) and `stop` (graceful shutdown with a grace period),
//! each followed by a restart.

use std::cell::RefCell;
use std::rc::Rc;

use faultline::node::{Context, Event, Node, NodeId};
use faultline::sim::disk::DiskOptions;
use faultline::sim::fault::FaultAction;
use faultline::sim::net::NetOptions;
use faultline::sim::time::Dur;
use faultline::sim::{Sim, SimConfig};

const MS: u64 = 1_000_000;

/// What writers observed, shared with the test.
#[derive(Default)]
struct Seen {
    /// (node, bytes of "log" it read at start, restarted) per start.
    starts: Vec<(u32, u64, bool)>,
    /// (node, time) at which a Stop arrived.
    stops: Vec<(u32, u64)>,
}

/// Appends one byte to "log" every millisecond, never fsyncs. On Stop it halts after
/// `shutdown_ns` (None: ignores the Stop, as a hung shutdown would).
struct Writer {
    seen: Rc<RefCell<Seen>>,
    shutdown_ns: Option<u64>,
}

const TICK: u64 = 1;
const SHUTDOWN: u64 = 2;

impl Node for Writer {
    type Msg = u64;
    fn on_event(&mut self, ctx: &mut Context<'_, u64>, event: Event<u64>) {
        let me = ctx.me().0;
        match event {
            Event::Start { restarted } => {
                let len = ctx.disk().len("log").unwrap_or(0);
                self.seen.borrow_mut().starts.push((me, len, restarted));
                ctx.set_timer(MS, TICK);
            }
            Event::Timer { tag: TICK, .. } => {
                ctx.disk().append("log", b"x");
                ctx.set_timer(MS, TICK);
            }
            Event::Timer { tag: SHUTDOWN, .. } => ctx.halt("stopped"),
            Event::Stop => {
                self.seen.borrow_mut().stops.push((me, ctx.now()));
                if let Some(after) = self.shutdown_ns {
                    ctx.set_timer(after, SHUTDOWN);
                }
            }
            _ => {}
        }
    }
}

fn world(shutdown_ns: Option<u64>) -> (Sim<Writer>, Rc<RefCell<Seen>>) {
    let seen = Rc::new(RefCell::new(Seen::default()));
    let shared = Rc::clone(&seen);
    let config = SimConfig {
        seed: 5,
        net: NetOptions::default(),
        // Power loss keeps nothing unsynced: what survives is exactly the page cache's fate.
        disk: DiskOptions {
            crash_keeps_unsynced_prefix: false,
            torn_writes: false,
            ..DiskOptions::default()
        },
        timeline_capture: 0,
        record_checksums: false,
    };
    let names = vec!["w0".to_string(), "w1".to_string()];
    let factory = Box::new(move |_id: NodeId| Writer {
        seen: Rc::clone(&shared),
        shutdown_ns,
    });
    (Sim::new(config, names, factory), seen)
}

fn run_until(sim: &mut Sim<Writer>, until_ns: u64) {
    while sim.next_time().is_some_and(|t| t <= until_ns) {
        sim.step();
    }
    sim.advance_to(until_ns.max(sim.now()));
}

fn log_len(sim: &Sim<Writer>, node: u32) -> usize {
    sim.disk(NodeId(node)).peek("log").map_or(0, <[u8]>::len)
}

#[test]
fn a_killed_process_finds_every_write_after_restart() {
    let (mut sim, seen) = world(Some(0));
    run_until(&mut sim, 20 * MS);
    let written = log_len(&sim, 0);
    assert!(written >= 19, "the writer wrote: {written}");
    sim.kill(NodeId(0));
    assert!(!sim.is_up(NodeId(0)));
    assert_eq!(sim.stats().kills, 1);
    // The page cache survives, and the kernel writes it back (the machine stays up).
    assert_eq!(log_len(&sim, 0), written);
    assert_eq!(
        sim.disk(NodeId(0)).durable("log").map(<[u8]>::len),
        Some(written)
    );
    run_until(&mut sim, 30 * MS);
    sim.restart(NodeId(0));
    run_until(&mut sim, 31 * MS);
    let starts = seen.borrow().starts.clone();
    assert!(starts.contains(&(0, written as u64, true)), "{starts:?}");
}

#[test]
fn a_crash_loses_the_unsynced_writes_a_kill_keeps() {
    let (mut sim, seen) = world(Some(0));
    run_until(&mut sim, 20 * MS);
    sim.crash(NodeId(0));
    assert_eq!(log_len(&sim, 0), 0);
    sim.restart(NodeId(0));
    run_until(&mut sim, 21 * MS);
    assert!(seen.borrow().starts.contains(&(0, 0, true)));
}

#[test]
fn power_loss_after_a_kill_keeps_what_the_kernel_wrote_back() {
    let (mut sim, _) = world(Some(0));
    run_until(&mut sim, 20 * MS);
    sim.kill(NodeId(0));
    let written = log_len(&sim, 0);
    assert!(written > 0);
    // The machine loses power while the process is down: the kill's page cache was
    // written back (writeback is modelled as immediate), so nothing of it is lost.
    sim.crash(NodeId(0));
    assert_eq!(log_len(&sim, 0), written);
    assert_eq!(sim.stats().unsynced_writes_lost, 0);
    assert_eq!(sim.stats().crashes, 0, "the process was not up to crash");
}

#[test]
fn a_stopped_node_shuts_down_itself_and_restarts_after_it_is_gone() {
    let (mut sim, seen) = world(Some(5 * MS));
    run_until(&mut sim, 10 * MS);
    sim.apply_fault(&FaultAction::Stop {
        node: NodeId(1),
        restart_after: Some(Dur(20 * MS)),
        grace: Some(Dur(1_000 * MS)),
    });
    run_until(&mut sim, 14 * MS);
    assert!(sim.is_up(NodeId(1)), "still doing its shutdown work");
    assert_eq!(seen.borrow().stops, vec![(1, 10 * MS)]);
    run_until(&mut sim, 16 * MS);
    assert!(!sim.is_up(NodeId(1)), "halted itself 5 ms after the stop");
    assert_eq!(sim.halted_reason(NodeId(1)), Some("stopped"));
    run_until(&mut sim, 34 * MS);
    assert!(!sim.is_up(NodeId(1)), "restart_after counts from the halt");
    run_until(&mut sim, 36 * MS);
    assert!(sim.is_up(NodeId(1)));
    assert_eq!(sim.stats().kills, 0);
    assert_eq!(sim.stats().stops, 1);
    assert!(seen.borrow().starts.iter().any(|s| s.0 == 1 && s.2));
}

#[test]
fn a_node_that_does_not_stop_within_the_grace_period_is_killed() {
    let (mut sim, seen) = world(None);
    run_until(&mut sim, 10 * MS);
    sim.apply_fault(&FaultAction::Stop {
        node: NodeId(0),
        restart_after: Some(Dur(10 * MS)),
        grace: Some(Dur(50 * MS)),
    });
    run_until(&mut sim, 59 * MS);
    assert!(sim.is_up(NodeId(0)));
    let written = log_len(&sim, 0);
    run_until(&mut sim, 61 * MS);
    assert!(
        !sim.is_up(NodeId(0)),
        "killed at the end of the grace period"
    );
    assert_eq!(sim.stats().kills, 1);
    // A kill keeps the page cache.
    assert!(log_len(&sim, 0) >= written);
    run_until(&mut sim, 75 * MS);
    assert!(sim.is_up(NodeId(0)));
    assert_eq!(sim.incarnation(NodeId(0)), 1);
    assert_eq!(seen.borrow().stops.len(), 1);
}

#[test]
fn a_second_stop_or_a_stop_of_a_down_node_does_nothing() {
    let (mut sim, seen) = world(None);
    run_until(&mut sim, 10 * MS);
    sim.stop(NodeId(0), Dur(50 * MS), None);
    sim.stop(NodeId(0), Dur(5 * MS), None);
    sim.kill(NodeId(1));
    sim.stop(NodeId(1), Dur(5 * MS), Some(Dur(MS)));
    run_until(&mut sim, 40 * MS);
    assert!(
        sim.is_up(NodeId(0)),
        "the second stop's shorter grace was ignored"
    );
    assert!(
        !sim.is_up(NodeId(1)),
        "no restart for a stop of a down node"
    );
    assert_eq!(seen.borrow().stops.len(), 1);
    assert_eq!(sim.stats().stops, 1);
}

#[test]
fn the_healed_phase_kills_and_restarts_a_node_still_stopping() {
    let (mut sim, _) = world(None);
    run_until(&mut sim, 10 * MS);
    sim.stop(NodeId(0), Dur(10_000 * MS), None);
    run_until(&mut sim, 20 * MS);
    sim.heal_all();
    assert!(sim.is_up(NodeId(0)));
    assert_eq!(sim.incarnation(NodeId(0)), 1, "a fresh process");
    // The old grace deadline does not kill the new incarnation.
    run_until(&mut sim, 10_100 * MS);
    assert!(sim.is_up(NodeId(0)));
    assert_eq!(sim.stats().kills, 1);
}
