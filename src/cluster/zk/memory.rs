//! `zab-memory-disk` (reference A.11 item 16): a server's in-memory state is the replay of
//! its disk. The class of ZOOKEEPER-2355, -2845, -3642 and -4712, where the database a
//! server keeps in memory and the history it keeps on disk part ways.
//!
//! The exact property. Whenever a server is outside synchronisation (LOOKING, or in
//! broadcast as an established leader or an up-to-date follower):
//! 1. its data tree equals the replay of its disk, newest snapshot then log, *as written*
//!    (the page cache), up to the tree's own zxid; in particular every txn it applied is
//!    in its log or snapshot;
//! 2. its lastProcessedZxid is not beyond that zxid (what it advertises, it has).
//!
//! Why "as written" and not "as fsynced": a follower applies a COMMIT for a txn it has
//! logged but not yet fsynced (the commit rests on the leader's quorum of durable ACKs, not
//! on its own copy), and the leader applies its own txns the same way once a quorum acked;
//! so the tree legitimately runs ahead of the durable disk, never ahead of the written one.
//! A process kill keeps the page cache, so the written disk is what the server restarts
//! from. During synchronisation the tree legitimately differs from the disk: a SNAP image
//! is loaded in memory and written as a snapshot only at NEWLEADER (A.6), and a DIFF's
//! committed txns are applied at NEWLEADER just before they are logged.
//!
//! Incremental: a shadow tree per server is replayed from its disk once (at a restart, a
//! new log generation or a truncation), then advanced txn by txn from the log as the
//! server applies, so each applied txn is applied once more, no more.
//!
//! Depends on: zab (tree, server, view), sim (Disk), cluster::zk::durable.

use super::durable;
use crate::sim::disk::Disk;
use crate::zab::msg::PeerState;
use crate::zab::snapshot::ServerView;
use crate::zab::tree::DataTree;
use crate::zab::{ZabPhase, ZabServer};

/// The replay of one server's disk up to its applied zxid.
#[derive(Clone, Debug)]
pub struct Shadow {
    /// (log generation, truncations): a change means the disk history was rewritten.
    key: (u64, u64),
    tree: DataTree,
}

/// Checks the property for server `s` (view `v`) after an event; the message on violation.
pub fn check(
    shadow: &mut Option<Shadow>,
    disk: &Disk,
    s: &ZabServer,
    v: &ServerView,
) -> Option<String> {
    if v.phase != ZabPhase::Broadcast && v.state != PeerState::Looking {
        return None;
    }
    let key = (s.log_generation().0, s.stats.truncations);
    let now = v.last_applied;
    let current = shadow
        .as_mut()
        .filter(|sh| sh.key == key && sh.tree.last_zxid() <= now);
    match current {
        Some(sh) if sh.tree.last_zxid() == now => {}
        Some(sh) => {
            let from = sh.tree.last_zxid();
            let entries = s.log_entries();
            let i = super::zxmap::point_from_end(entries, |e| e.txn.zxid <= from);
            for e in entries[i..].iter().take_while(|e| e.txn.zxid <= now) {
                sh.tree.replay(&e.txn);
            }
        }
        None => match durable::replay(disk, false, now) {
            Ok(r) => *shadow = Some(Shadow { key, tree: r.tree }),
            Err(e) => return Some(format!("its disk does not replay: {e}")),
        },
    }
    let replayed = &shadow.as_ref().expect("set above").tree;
    if replayed.last_zxid() != now {
        return Some(format!(
            "its tree is at {now:#x} but its disk holds txns only up to {:#x}",
            replayed.last_zxid()
        ));
    }
    if replayed.digest() != v.digest {
        return Some(format!(
            "its tree at {now:#x} differs from the replay of its snapshot and log"
        ));
    }
    if v.last_processed > now {
        return Some(format!(
            "lastProcessedZxid {:#x} is beyond its tree and disk ({now:#x})",
            v.last_processed
        ));
    }
    None
}
