//! The one table of invariants: what each promises and which mechanism of the real system
//! guarantees it. Reports explain a violation from it; the README's invariant table is
//! rendered from it ([`markdown_table`]) and a test keeps the two equal.
//!
//! Depends on: nothing in the crate.

/// One invariant or checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invariant {
    /// The name violations carry.
    pub name: &'static str,
    /// The system it belongs to: "counter", "zookeeper", "kafka" or "any".
    pub system: &'static str,
    /// When it is checked: "every event", "end of run" or "after the heal".
    pub checked: &'static str,
    /// What it promises.
    pub promise: &'static str,
    /// Which mechanism of the protocol guarantees it.
    pub mechanism: &'static str,
}

const fn inv(
    name: &'static str,
    system: &'static str,
    checked: &'static str,
    promise: &'static str,
    mechanism: &'static str,
) -> Invariant {
    Invariant {
        name,
        system,
        checked,
        promise,
        mechanism,
    }
}

/// Every invariant, in the order reports and the README list them.
pub const INVARIANTS: &[Invariant] = &[
    inv(
        "counter-durable",
        "counter",
        "every event",
        "A node never restarts below a count of it that another node already saw.",
        "A node fsyncs its count before it gossips it, so whatever left the node survives \
         a crash.",
    ),
    inv(
        "counter-monotonic",
        "counter",
        "every event",
        "Within one incarnation no node's view of any origin goes back.",
        "Merging takes the maximum of the two views per origin.",
    ),
    inv(
        "zab-one-leader-per-epoch",
        "zookeeper",
        "every event",
        "At most one leader is ever established in an epoch.",
        "Discovery: a prospective leader needs a quorum to accept its new epoch, and a \
         follower accepts each epoch once (acceptedEpoch is persisted before it answers).",
    ),
    inv(
        "zab-epoch-monotonic",
        "zookeeper",
        "every event",
        "acceptedEpoch and currentEpoch never go back, and currentEpoch <= acceptedEpoch.",
        "Both epochs are written to disk (acceptedEpoch, currentEpoch files) before the \
         server acts on them, and are read back on restart.",
    ),
    inv(
        "zab-unique-zxid",
        "zookeeper",
        "every event",
        "No two different transactions are ever logged with the same zxid.",
        "A zxid is (epoch, counter); only the one leader of an epoch assigns counters in it.",
    ),
    inv(
        "zab-committed-agreement",
        "zookeeper",
        "every event",
        "Leaders never commit different transactions at one zxid.",
        "A proposal commits after a quorum logged it; quorums intersect, so a later leader \
         (elected by the highest zxid) holds it.",
    ),
    inv(
        "zab-committed-truncated",
        "zookeeper",
        "every event",
        "No committed transaction is removed from a log by a TRUNC.",
        "Synchronisation truncates a follower only past the new leader's history, which \
         contains every committed transaction.",
    ),
    inv(
        "zab-leader-completeness",
        "zookeeper",
        "every event",
        "An established leader holds every committed transaction.",
        "Fast leader election picks the server with the highest (epoch, zxid) among a \
         quorum, and a quorum saw every commit.",
    ),
    inv(
        "zab-process-consistency",
        "zookeeper",
        "every event",
        "A synced follower's log is a prefix of its leader's.",
        "DIFF, TRUNC or SNAP synchronisation before NEWLEADER, then proposals in zxid \
         order over one FIFO connection.",
    ),
    inv(
        "zab-digest-agreement",
        "zookeeper",
        "every event",
        "Servers that applied the same zxid have equal data-tree digests.",
        "Every server applies the same committed transactions in zxid order \
         (ZooKeeper's digest check, ZOOKEEPER-3114).",
    ),
    inv(
        "zab-ephemeral-session",
        "zookeeper",
        "every event",
        "No ephemeral znode outlives its session's closeSession.",
        "closeSession is a transaction that deletes the session's ephemerals atomically.",
    ),
    inv(
        "zab-fle-vote-order",
        "zookeeper",
        "every event",
        "Within one election round a server's vote only improves in (epoch, zxid, sid) order.",
        "Fast leader election replaces a vote only by a better one (totalOrderPredicate).",
    ),
    inv(
        "zab-commit-quorum-durable",
        "zookeeper",
        "every event",
        "When a transaction commits, the disks of a quorum hold it for good (read from the \
         simulated disks: fsynced, and not about to be truncated away).",
        "A follower ACKs a proposal only after its fsync, the leader counts its own ACK only \
         after its own, and NEWLEADER is ACKed only once the synced history is durable (A.8).",
    ),
    inv(
        "zab-integrity",
        "zookeeper",
        "every event",
        "Every transaction a server delivers was broadcast by a primary.",
        "Servers log and apply only PROPOSALs of their leader, whose log is the proposal \
         log; logs carry checksums.",
    ),
    inv(
        "zab-primary-order",
        "zookeeper",
        "every event",
        "A server delivers each primary's transactions in the order it broadcast them, \
         skipping none, and epochs in increasing order.",
        "FIFO connections, COMMITs matched to the head of the pending proposals, and sync \
         from the follower's last logged zxid.",
    ),
    inv(
        "zab-ack-consistency",
        "zookeeper",
        "every event",
        "A leader receives ACKs only for NEWLEADER or for zxids it proposed to that learner.",
        "A learner ACKs only what it logged from its leader's PROPOSALs, after NEWLEADER.",
    ),
    inv(
        "zab-memory-disk",
        "zookeeper",
        "every event",
        "Outside synchronisation, a server's tree is the replay of its snapshot and log (as \
         written) up to the tree's zxid, and lastProcessedZxid is not beyond it.",
        "A server logs a txn before applying it, writes a SNAP image to disk at NEWLEADER, \
         and reloads its database from disk when it leaves a role (the fix of \
         ZOOKEEPER-2845).",
    ),
    inv(
        "zk-acked-write-durable",
        "zookeeper",
        "end of run",
        "Every write answered ok is this write's own transaction, committed at the zxid it \
         was answered with, and still held there at the end of the run.",
        "A leader answers a write only after a quorum logged and fsynced it and it committed.",
    ),
    inv(
        "zk-session-order",
        "zookeeper",
        "end of run",
        "The zxids one client sees never decrease.",
        "A session reconnects only to a server at least as up to date as its last zxid, and \
         each server answers in order.",
    ),
    inv(
        "zk-session-moved-unseen",
        "zookeeper",
        "end of run",
        "No client reads a SESSIONMOVED answer.",
        "A write forwarded by a server the session has left is refused with SESSIONMOVED, \
         and that server closes the client's connection instead of answering \
         (FinalRequestProcessor, ZOOKEEPER-710): the client reconnects and the server it \
         reaches becomes the session's owner.",
    ),
    inv(
        "zk-sync-read",
        "zookeeper",
        "end of run",
        "A read right after a sync sees every write that completed before the sync.",
        "sync is forwarded to the leader, which answers it in its commit order after \
         confirming it is still leader with a quorum (the fix of ZOOKEEPER-1675).",
    ),
    inv(
        "zk-history",
        "zookeeper",
        "end of run",
        "The client history satisfies ZooKeeper's model: linearizable writes (and sync+read), \
         sequentially consistent reads per session.",
        "Writes go through the leader's ZAB pipeline in zxid order; reads are served \
         locally by a server that is never behind the session's last zxid.",
    ),
    inv(
        "k-dense",
        "kafka",
        "every event",
        "Within any replica's log, offsets are contiguous from the log start with one record \
         each, and a value appears at most once among idempotent batches within one history \
         (a retry held on both sides of a same-epoch fork's junction is reported as allowed).",
        "A leader appends at its LEO only; a follower appends fetched batches only where they \
         continue its log; the producer state turns idempotent retries into duplicates answered \
         with the original offset.",
    ),
    inv(
        "k-epoch-mono",
        "kafka",
        "every event",
        "Batch leader epochs never decrease along a log, the leader-epoch cache is strictly \
         increasing and agrees with the log, and a replica's leader epoch never goes back.",
        "Only a newer leader epoch is applied (LeaderAndIsr); a leader stamps its own epoch; the \
         cache is appended at each new epoch and cut with the log (KIP-101, KIP-279).",
    ),
    inv(
        "k-one-leader",
        "kafka",
        "every event",
        "One broker acts as leader per partition and leader epoch; a record stamped (epoch, \
         offset) was appended by that epoch's leader and is the same everywhere; a stale leader \
         commits nothing the newer leader lacks.",
        "The controller bumps the leader epoch at every leader change and writes it \
         conditionally; followers and producers are fenced by epoch (KIP-320), so a deposed \
         leader's HW cannot pass what its ISR fetched.",
    ),
    inv(
        "k-log-match",
        "kafka",
        "every event",
        "Every replica's log below its HW equals the committed history, so any two replicas agree \
         below both HWs.",
        "A follower copies the leader's batches and takes min(leader HW, own LEO); divergence is \
         cut by epoch (truncate-on-fetch, KIP-279), never below the HW.",
    ),
    inv(
        "k-hw-mono",
        "kafka",
        "every event",
        "HW <= LEO; a leader's HW never decreases in its tenure and is <= the LEO of every member \
         of the ISR it uses; no truncation removes a committed record.",
        "The HW is min LEO over the maximal ISR and only moves forward; new leaders come from the \
         ISR, which holds every committed record.",
    ),
    inv(
        "k-isr-superset",
        "kafka",
        "every event",
        "The ISR a leader computes its HW over contains ZooKeeper's ISR, and a member ZooKeeper \
         gains had reached the HW and the leader epoch's start offset.",
        "ISR changes are written to ZooKeeper before they count (expansions count for the HW at \
         once, shrinks only after the write); KAFKA-7128's epoch-start condition.",
    ),
    inv(
        "k-zk-fencing",
        "kafka",
        "every event",
        "A partition state's leader and controller epochs never decrease, a controller write \
         carries the /controller_epoch of its time, brokers act only on states ZooKeeper holds, \
         one active controller per epoch.",
        "Controller election bumps /controller_epoch conditionally; every controller write is a \
         multi checking its version (KAFKA-6082); brokers fence stale controller epochs.",
    ),
    inv(
        "k-leader-complete",
        "kafka",
        "every event",
        "A cleanly elected leader holds every committed record, and every running ZooKeeper ISR \
         member's log reaches the committed history.",
        "Clean election picks from ZooKeeper's ISR, whose members all hold the HW; unclean \
         elections and power-lost replicas are recorded as allowed losses instead.",
    ),
    inv(
        "k-ack-semantics",
        "kafka",
        "every event",
        "An acks=all success was committed at its offset while the leader's ISR had \
         min.insync.replicas members holding it; an acks=1 success is in a leader's log there.",
        "A parked acks=all produce completes only when the HW passes it, checking the ISR size \
         (NOT_ENOUGH_REPLICAS_AFTER_APPEND otherwise).",
    ),
    inv(
        "k-idempotence",
        "kafka",
        "every event",
        "Per producer id and epoch, sequences along a log are contiguous and never repeat, \
         within one history: a break across the junction of a same-epoch fork (allowed by \
         log.flush.interval.* unset, KIP-966) is reported as allowed instead.",
        "The leader's producer state (last five batches per producer id) rejects out-of-order \
         sequences and answers duplicates; it is rebuilt and cut with the log.",
    ),
    inv(
        "kafka-log",
        "kafka",
        "end of run",
        "The client history passes the kafka-log model: no acknowledged send lost, duplicated \
         or at an offset holding another record, sends and polls monotonic per partition, no \
         poll skips an offset, unless the configuration allows the loss.",
        "Offsets are assigned once by the leader and committed by the HW; consumers read below \
         the HW and validate their position after a leader change (KIP-320).",
    ),
    inv(
        "k-no-loss",
        "kafka",
        "end of run",
        "Every send acknowledged with acks=all is at its offset in the final log of the \
         partition's leader and of every replica whose log reaches it, unless an unclean \
         election or a power loss of unflushed data allows the loss.",
        "acks=all answers only once the HW passed the record with min.insync.replicas in the \
         ISR; clean elections pick from the ISR, and divergence is cut above the HW only.",
    ),
    inv(
        "k-consistent-read",
        "kafka",
        "end of run",
        "A record a consumer read at an offset is, at the end, the record there on every \
         replica whose log reaches it, and still in the leader's log.",
        "Consumers read below the HW only, and nothing below the HW is ever truncated by a \
         clean leader change.",
    ),
    inv(
        "k-convergence",
        "kafka",
        "after the heal",
        "Once every fault is healed, within the bound: the ensemble is whole, every broker \
         registered under one controller, every replica in the ISR with the leader's log, \
         ZooKeeper's ISR equal to the leader's, and every send answered.",
        "Controller failover, broker re-registration, LeaderAndIsr, follower fetching and ISR \
         expansion written to ZooKeeper resume progress after faults.",
    ),
    inv(
        "liveness",
        "any",
        "after the heal",
        "Once every fault is healed, the system reaches its goal within the bound.",
        "Timeouts (tickTime, syncLimit, session and request timeouts) detect failures and \
         leader election and reconnection resume progress.",
    ),
    inv(
        "panic",
        "any",
        "every event",
        "No assertion in protocol code fails.",
        "Assertions at handler entry and exit state what the protocol relies on.",
    ),
    inv(
        "event-budget",
        "any",
        "every event",
        "A run delivers at most the scenario's max_events events.",
        "Timers back off and retries are bounded, so no event storm is ever needed.",
    ),
    inv(
        "determinism",
        "any",
        "report re-run",
        "The same seed and schedule give the same trace hash.",
        "Virtual time, seeded named random streams and ordered collections only.",
    ),
];

/// The entry of `name`, if the table has one.
pub fn find(name: &str) -> Option<&'static Invariant> {
    INVARIANTS.iter().find(|i| i.name == name)
}

/// The table as Markdown, as the README carries it.
pub fn markdown_table() -> String {
    let mut out = String::from("| invariant | system | checked | promise | guaranteed by |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for i in INVARIANTS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            i.name, i.system, i.checked, i.promise, i.mechanism
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_kebab_case() {
        let mut names: Vec<&str> = INVARIANTS.iter().map(|i| i.name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "an invariant is listed twice");
        for n in names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{n}");
        }
    }

    /// Every invariant name a system emits has an entry: a violation is always explained.
    #[test]
    fn every_invariant_in_the_sources_is_in_the_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cluster");
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        assert!(files.len() > 5, "the cluster sources were not found");
        let mut missing = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for piece in text.split('"').skip(1).step_by(2) {
                let named = ["zab-", "zk-", "counter-", "k-", "kafka-"]
                    .iter()
                    .any(|p| piece.starts_with(p));
                let word = piece.chars().all(|c| c.is_ascii_lowercase() || c == '-');
                if named && word && find(piece).is_none() {
                    missing.push(piece.to_string());
                }
            }
        }
        assert!(missing.is_empty(), "not in INVARIANTS: {missing:?}");
    }

    #[test]
    fn the_readme_carries_the_table() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let text = std::fs::read_to_string(readme).unwrap();
        let table = markdown_table();
        assert!(
            text.contains(&table),
            "README.md must contain the invariant table exactly as \
             report::invariants::markdown_table renders it:\n{table}"
        );
    }
}
