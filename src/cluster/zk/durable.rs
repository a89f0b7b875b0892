//! What a ZooKeeper server's disk holds, read from the kernel's simulated disk rather than
//! from what the server reports: the basis of `zab-commit-quorum-durable` (a committed txn
//! is durable on a quorum) and `zab-memory-disk` (the in-memory tree is the replay of the
//! disk).
//!
//! "Server s durably holds txn z" means: the durable content of s's disk (what every
//! crash keeps) holds z, and so does the page-cache content (no pending truncation or SNAP
//! generation has removed it, which a crash keeping some of the pending writes would make
//! permanent). Holding means z is a record of the log generation a restart would read, or
//! is covered by that generation's base snapshot.
//!
//! Cheap: the record's offsets come from the server's log index and only those bytes are
//! decoded, from both views. Only a server that is down (no index, no page cache) has its
//! durable content replayed (`txnlog::recover`).
//!
//! Depends on: zab (txnlog format, server), node (DiskIo), sim (Disk).

use crate::node::DiskIo;
use crate::sim::disk::Disk;
use crate::sim::trace::hash_of;
use crate::zab::msg::{Txn, Zxid};
use crate::zab::txnlog::{self, Recovered};
use crate::zab::ZabServer;

/// A read-only view of a disk: its durable content, or its page-cache content. Writes
/// (recovery truncates a torn tail) are dropped: the view never changes the disk.
pub struct DiskView<'a> {
    pub disk: &'a Disk,
    pub durable: bool,
}

impl DiskView<'_> {
    fn bytes(&self, file: &str) -> Option<&[u8]> {
        if self.durable {
            self.disk.durable(file)
        } else {
            self.disk.peek(file)
        }
    }
}

impl DiskIo for DiskView<'_> {
    fn append(&mut self, _: &str, _: &[u8]) {}
    fn write_all(&mut self, _: &str, _: &[u8]) {}
    fn truncate(&mut self, _: &str, _: u64) {}
    fn remove(&mut self, _: &str) {}
    fn read(&mut self, file: &str) -> Option<Vec<u8>> {
        self.bytes(file).map(<[u8]>::to_vec)
    }
    fn len(&self, file: &str) -> Option<u64> {
        self.bytes(file).map(|b| b.len() as u64)
    }
    fn list(&self) -> Vec<String> {
        self.disk
            .file_names(self.durable)
            .map(str::to_string)
            .collect()
    }
}

/// What a restart from this view of the disk would rebuild, applying the log up to `last`.
pub fn replay(disk: &Disk, durable: bool, last: Zxid) -> Result<Recovered, String> {
    txnlog::recover_until(&mut DiskView { disk, durable }, last)
}

/// Whether the disk of server `s` holds txn `z` (fingerprint `h`) for good: durably, and
/// in the page cache at the same place, so that no crash, whatever prefix of the pending
/// writes it keeps, can lose it. `s` is None when the server is down: its page cache is gone
/// and what a restart reads is the durable content, replayed.
pub fn holds(disk: &Disk, s: Option<&ZabServer>, z: Zxid, h: u64) -> bool {
    match s {
        Some(s) => holds_up(disk, s, z, h, &mut None),
        None => replay(disk, true, Zxid::MAX).is_ok_and(|r| recovered_holds(&r, z, h)),
    }
}

fn recovered_holds(r: &Recovered, z: Zxid, h: u64) -> bool {
    let e = &r.storage.entries;
    let i = e.partition_point(|x| x.txn.zxid < z);
    match e.get(i).filter(|x| x.txn.zxid == z) {
        Some(x) => hash_of(&x.txn) == h,
        // Covered by the snapshot the generation starts from (or a later one).
        None => z <= r.storage.snapshot_zxid,
    }
}

/// [`holds`] for a server that is up, given `known`: record bytes (from any server's
/// disk) already decoded and found to be z with fingerprint h, or None. Decoding is a
/// function of the bytes alone, so a record with the very same bytes is judged by
/// comparing them, not by decoding them again: asking a quorum of servers about one
/// commit decodes one record, not one per server. The first record this call decodes
/// and finds right becomes `known` for the next call.
///
/// It reads the record of z at the offsets the server's log index gives it, from both the
/// durable and the page-cache bytes. The index only says where to look: a server whose
/// index lacks z (or misplaces it) is judged not to hold it, which can only make the
/// invariant stricter, never hide a missing copy.
pub fn holds_up<'d>(
    disk: &'d Disk,
    s: &ZabServer,
    z: Zxid,
    h: u64,
    known: &mut Option<&'d [u8]>,
) -> bool {
    let (gen, base) = s.log_generation();
    // The name the server keeps formatted for its own appends; the same `log.<gen>` a
    // restart reads (checked in the tests below), without formatting it per call.
    let log = s.storage.log_name();
    debug_assert_eq!(log, txnlog::log_file(gen));
    let views = [disk.durable(log), disk.peek(log)];
    // A restart reads this generation only if a snapshot of it is there (generation 0
    // needs none).
    if gen > 0 && !generation_snapshot_kept(disk, gen, base) {
        return false;
    }
    if z <= base {
        return gen > 0;
    }
    let entries = s.log_entries();
    // A commit's txn is among the last logged: searched from the end.
    let i = super::zxmap::point_from_end(entries, |e| e.txn.zxid < z);
    let Some(entry) = entries.get(i).filter(|e| e.txn.zxid == z) else {
        return false;
    };
    let start = if i == 0 { 0 } else { entries[i - 1].end_offset } as usize;
    let end = entry.end_offset as usize;
    let mut same = |bytes: Option<&'d [u8]>| {
        let Some(b) = bytes else {
            return false;
        };
        if *known == Some(b) {
            return true;
        }
        let txn: Option<Txn> = txnlog::decode_record(b);
        let right = txn.is_some_and(|t| t.zxid == z && hash_of(&t) == h);
        if right {
            *known = Some(b);
        }
        right
    };
    let [durable, cached] = views.map(|v| v.and_then(|b| b.get(start..end)));
    // Both views usually hold the very same bytes there (the page cache is the durable
    // content plus pending writes): decoding equal bytes twice gives the same answer.
    match (durable, cached) {
        (Some(d), Some(c)) if d == c => same(Some(d)),
        _ => same(durable) && same(cached),
    }
}

/// Whether some snapshot of log generation `gen` (> 0) is durable and not pending removal,
/// so that every crash leaves one: a restart reads the newest valid snapshot and then the
/// log of that snapshot's generation, whatever the snapshot's label. Usually that is the
/// generation's base snapshot (the SNAP that began it), looked up first without an
/// allocation. Retention keeps only the newest `SNAPSHOTS_KEPT` snapshots, so once two
/// periodic snapshots of the generation are durable the base is gone and a later one
/// stands for it (zk-nemesis-heavy seed 1869: the leader's base snapshot removed, its own
/// durable copy of a commit was not counted).
fn generation_snapshot_kept(disk: &Disk, gen: u64, base: Zxid) -> bool {
    let kept = |name: &str| disk.durable(name).is_some() && disk.peek(name).is_some();
    let mut snap = NameBuf::default();
    let base_kept = if txnlog::write_snap_name(&mut snap, gen, base).is_err() {
        // Longer than any name a u64 generation and zxid give: look it up the slow way.
        kept(&txnlog::snap_file(gen, base))
    } else {
        kept(snap.as_str())
    };
    base_kept
        || disk
            .file_names(true)
            .filter(|name| txnlog::parse_snap_name(name).is_some_and(|(g, _)| g == gen))
            .any(kept)
}

/// A file name formatted on the stack (no allocation per lookup).
struct NameBuf {
    buf: [u8; 64],
    len: usize,
}

impl Default for NameBuf {
    fn default() -> Self {
        NameBuf {
            buf: [0; 64],
            len: 0,
        }
    }
}

impl NameBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("written from &str")
    }
}

impl std::fmt::Write for NameBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeId;
    use crate::sim::disk::DiskHandle;
    use crate::sim::rng::{stream, Ratio};
    use crate::zab::config::ZabConfig;
    use crate::zab::msg::TxnOp;

    fn txn(zxid: Zxid) -> Txn {
        Txn {
            zxid,
            session: 1,
            cxid: zxid,
            op: TxnOp::Check { path: "/".into() },
        }
    }

    /// A disk handle that never corrupts a read.
    fn handle<'a>(
        disk: &'a mut Disk,
        rng: &'a mut rand_chacha::ChaCha8Rng,
        corrupted_reads: &'a mut u64,
    ) -> DiskHandle<'a> {
        DiskHandle {
            disk,
            rng,
            read_corruption: Ratio::NEVER,
            corrupted_reads,
        }
    }

    fn fsync(disk: &mut Disk, file: &str) {
        let target = disk.fsync_target(file);
        disk.complete_fsync(file, target);
    }

    /// A server holds a txn only once it is fsynced and still in the page cache: written
    /// but unsynced does not count, and neither does a synced copy a pending truncation
    /// has removed (a crash keeping that write would lose it).
    #[test]
    fn stack_names_are_the_file_names() {
        for (gen, zxid) in [(1, 0), (7, 0x1_0000_0003), (u64::MAX, Zxid::MAX)] {
            let mut b = NameBuf::default();
            txnlog::write_snap_name(&mut b, gen, zxid).unwrap();
            assert_eq!(b.as_str(), txnlog::snap_file(gen, zxid));
        }
        let s = ZabServer::new(NodeId(0), &[NodeId(0)], ZabConfig::default());
        assert_eq!(s.storage.log_name(), txnlog::log_file(s.log_generation().0));
    }

    #[test]
    fn a_txn_is_held_once_fsynced_and_not_while_a_truncation_is_pending() {
        let me = NodeId(0);
        let mut s = ZabServer::new(me, &[me], ZabConfig::default());
        let mut disk = Disk::default();
        let (mut rng, mut n) = (stream(3, "disk"), 0);
        let log = txnlog::log_file(0);
        {
            let mut h = handle(&mut disk, &mut rng, &mut n);
            s.storage.append(&mut h, &txn(1));
            s.storage.append(&mut h, &txn(2));
        }
        let h2 = hash_of(&txn(2));
        assert!(!holds(&disk, Some(&s), 2, h2), "written, not fsynced");
        fsync(&mut disk, &log);
        assert!(holds(&disk, Some(&s), 2, h2));
        assert!(
            !holds(&disk, Some(&s), 2, hash_of(&txn(3))),
            "another txn at 2"
        );
        assert!(
            holds(&disk, None, 2, h2),
            "a down server's durable log is replayed"
        );
        {
            let mut h = handle(&mut disk, &mut rng, &mut n);
            s.storage.truncate_after(&mut h, 1).unwrap();
        }
        assert!(!holds(&disk, Some(&s), 2, h2), "a truncation is pending");
        assert!(holds(&disk, Some(&s), 1, hash_of(&txn(1))));
    }

    /// Bytes known to be the right record stand for decoding only when they are equal:
    /// another txn at the same zxid is still decoded and refused, and the first record
    /// decoded and found right becomes the known bytes.
    #[test]
    fn known_record_bytes_are_compared_and_other_bytes_decoded() {
        let me = NodeId(0);
        let (mut rng, mut n) = (stream(4, "disk"), 0);
        let log = txnlog::log_file(0);
        let other = Txn { cxid: 99, ..txn(2) };
        let mut servers = Vec::new();
        for t in [txn(2), txn(2), other.clone()] {
            let mut s = ZabServer::new(me, &[me], ZabConfig::default());
            let mut disk = Disk::default();
            let mut h = handle(&mut disk, &mut rng, &mut n);
            s.storage.append(&mut h, &txn(1));
            s.storage.append(&mut h, &t);
            fsync(&mut disk, &log);
            servers.push((s, disk));
        }
        let h2 = hash_of(&txn(2));
        let mut known = None;
        assert!(holds_up(&servers[0].1, &servers[0].0, 2, h2, &mut known));
        assert!(known.is_some(), "the decoded record is remembered");
        assert!(holds_up(&servers[1].1, &servers[1].0, 2, h2, &mut known));
        assert!(
            !holds_up(&servers[2].1, &servers[2].0, 2, h2, &mut known),
            "another txn at 2 is not held"
        );
        let mut fresh = None;
        assert!(!holds_up(&servers[2].1, &servers[2].0, 2, h2, &mut fresh));
        assert_eq!(fresh, None, "a wrong record is never remembered");
        assert!(holds_up(
            &servers[2].1,
            &servers[2].0,
            2,
            hash_of(&other),
            &mut None
        ));
    }

    /// A generation begun by a SNAP is read back from any durable snapshot of it: once
    /// retention has removed its base snapshot (two periodic snapshots made durable since),
    /// the log's txns are still held; before any snapshot of it is durable, none is.
    #[test]
    fn a_generation_whose_base_snapshot_was_retired_still_holds_its_log() {
        let me = NodeId(0);
        let mut s = ZabServer::new(me, &[me], ZabConfig::default());
        let mut disk = Disk::default();
        let (mut rng, mut n) = (stream(5, "disk"), 0);
        let mut tree = crate::zab::tree::DataTree::new();
        let mut with_disk = |disk: &mut Disk, f: &mut dyn FnMut(&mut DiskHandle<'_>)| {
            f(&mut handle(disk, &mut rng, &mut n));
        };
        tree.replay(&txn(1));
        let mut base = String::new();
        with_disk(&mut disk, &mut |h| {
            base = s.storage.write_snapshot(h, &tree, true);
            s.storage.append(h, &txn(2));
        });
        let log = txnlog::log_file(1);
        fsync(&mut disk, &log);
        let h2 = hash_of(&txn(2));
        assert!(
            !holds(&disk, Some(&s), 2, h2),
            "no snapshot of generation 1 is durable: a restart reads generation 0"
        );
        fsync(&mut disk, &base);
        assert!(holds(&disk, Some(&s), 2, h2));
        for z in [3, 4] {
            tree.replay(&txn(z - 1));
            let mut snap = String::new();
            with_disk(&mut disk, &mut |h| {
                snap = s.storage.write_snapshot(h, &tree, false);
                s.storage.append(h, &txn(z));
            });
            fsync(&mut disk, &log);
            fsync(&mut disk, &snap);
            with_disk(&mut disk, &mut |h| s.storage.snapshot_durable(h, &snap));
        }
        assert_eq!(
            disk.peek(&base),
            None,
            "retention removed the base snapshot"
        );
        assert!(holds(&disk, Some(&s), 2, h2));
        assert!(holds(&disk, Some(&s), 4, hash_of(&txn(4))));
        assert!(
            holds(&disk, None, 4, hash_of(&txn(4))),
            "and a restart agrees"
        );
    }
}
