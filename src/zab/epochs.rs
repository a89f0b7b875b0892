//! The epoch files, as ZooKeeper 3.9 writes and reads them.
//!
//! Writing (`QuorumPeer.writeLongToFile`, an `AtomicFileWritingIdiom` over
//! `AtomicFileOutputStream`): the value goes to `NAME.tmp` (opened with truncation), which
//! is flushed and fsynced when the stream closes, then renamed over `NAME`; no directory
//! fsync. So a process killed before the rename leaves `NAME` as it was and `NAME.tmp` with
//! the new value in the page cache (a kill keeps the page cache); a power loss keeps of
//! the tmp only what reached the disk (nothing, an empty file, or the value). Here the
//! rename happens when the tmp's fsync completes (`on_fsync_done`): the real thread does
//! it right after `force()` returns.
//!
//! Reading at start-up (`QuorumPeer.loadDataBase`, 3.9): if the epoch of the last zxid
//! (`lastProcessedZxid` after replaying the snapshot and the log) is above currentEpoch,
//! the server adopts the value of `currentEpoch.tmp` if that file exists, without
//! comparing it with the zxid's epoch (ZOOKEEPER-4269, merged in 2021); else it throws
//! `IOException("The current epoch, E, is older than the last zxid, Z")` and does not
//! start (ZOOKEEPER-2354, open for 3.5 on; its 3.4 twin ZOOKEEPER-1653 was fixed on
//! branch-3.4 only, by an `updatingEpoch` marker file that 3.5+ never had, so it is not
//! modelled). An unreadable tmp fails too (`readLongFromFile`: "Found ... in ..."). Then
//! acceptedEpoch below currentEpoch is the other refusal. A missing currentEpoch file
//! reads as 0 here, where ZooKeeper takes the epoch of the last zxid and writes it: the
//! same thing, because ZooKeeper writes the file at a server's first start, when its log
//! is empty (epoch 0), and renames only fsynced values over it afterwards.
//!
//! A late joiner reaches the refusal with ZooKeeper's own NEWLEADER order (sync.rs): its
//! DIFF may carry txns of the new epoch, which are appended (page cache) and fsynced
//! before `setCurrentEpoch` writes the tmp. A process that dies (kill, stop) during that
//! log fsync keeps the log and has no tmp; a power loss may keep the log writes and lose
//! the tmp. Either way the server never starts again. A kill once the tmp is written
//! leaves it behind, and it is adopted. The cluster reports a refusal as the known
//! real-system behaviour it is (`cluster::zk::liveness`).
//!
//! May depend on: `node`, `zab::txnlog`, `zab::msg`.

use super::msg::{zxid_epoch, Msg};
use super::txnlog::{self, TmpEpoch, ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE};
use super::{FsyncWait, ZabServer};
use crate::node::{Context, FsyncId};

/// Every refusal of `loadDataBase`'s currentEpoch check starts with this (the halt reason,
/// which the trace shows; the cluster classifies a liveness failure it causes by it).
pub const STARTUP_EPOCH_REFUSAL: &str = "start-up refused by QuorumPeer.loadDataBase";

/// Which epoch file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EpochFile {
    Accepted,
    Current,
}

impl EpochFile {
    fn name(self) -> &'static str {
        match self {
            EpochFile::Accepted => ACCEPTED_EPOCH_FILE,
            EpochFile::Current => CURRENT_EPOCH_FILE,
        }
    }

    /// `name()` with [`txnlog::TMP_EXTENSION`], spelled out: an epoch write names its tmp
    /// file three times (truncate, append, fsync) and the rename once, without a format.
    fn tmp_name(self) -> &'static str {
        match self {
            EpochFile::Accepted => "acceptedEpoch.tmp",
            EpochFile::Current => "currentEpoch.tmp",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl ZabServer {
    pub(crate) fn persist_accepted_epoch(&mut self, ctx: &mut Context<'_, Msg>, epoch: u32) {
        assert!(epoch >= self.accepted_epoch, "acceptedEpoch goes back");
        self.accepted_epoch = epoch;
        let (f, seq) = self.write_epoch_file(ctx, EpochFile::Accepted, epoch);
        let role_gen = self.role_gen;
        let wait = FsyncWait::AcceptedEpoch {
            epoch,
            role_gen,
            seq,
        };
        self.fsync_waits.insert(f, wait);
    }

    pub(crate) fn persist_current_epoch(&mut self, ctx: &mut Context<'_, Msg>, epoch: u32) {
        assert!(epoch >= self.current_epoch, "currentEpoch goes back");
        self.set_current_epoch(ctx, epoch);
    }

    /// `QuorumPeer.setCurrentEpoch`: the value in memory, then the file.
    fn set_current_epoch(&mut self, ctx: &mut Context<'_, Msg>, epoch: u32) {
        assert!(
            epoch <= self.accepted_epoch,
            "currentEpoch above acceptedEpoch"
        );
        self.current_epoch = epoch;
        let (f, seq) = self.write_epoch_file(ctx, EpochFile::Current, epoch);
        let role_gen = self.role_gen;
        let wait = FsyncWait::CurrentEpoch {
            epoch,
            role_gen,
            seq,
        };
        self.fsync_waits.insert(f, wait);
    }

    /// The first half of `writeLongToFile`: truncate and write the tmp file, fsync it.
    /// Returns the fsync and the write's number.
    fn write_epoch_file(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        file: EpochFile,
        epoch: u32,
    ) -> (FsyncId, u64) {
        let tmp = file.tmp_name();
        let disk = ctx.disk();
        disk.truncate(tmp, 0);
        disk.append(tmp, &txnlog::encode_epoch(epoch));
        self.epoch_writes[file.index()] += 1;
        (ctx.fsync(tmp), self.epoch_writes[file.index()])
    }

    /// The second half: the tmp is durable, it is renamed over the real name; returns
    /// whether it was. A write that a newer one of the same file overtook (the tmp was
    /// truncated and rewritten since this fsync was issued) is neither renamed nor
    /// durable: the newer one's completion does both. (The real thread writes one value
    /// at a time; here a second write can start before the first one's fsync is back.)
    pub(crate) fn epoch_tmp_durable(
        &mut self,
        ctx: &mut Context<'_, Msg>,
        file: EpochFile,
        seq: u64,
    ) -> bool {
        if seq != self.epoch_writes[file.index()] {
            return false;
        }
        ctx.disk().rename(file.tmp_name(), file.name());
        true
    }

    /// `QuorumPeer.loadDataBase`'s epoch check, on the state `txnlog::recover` rebuilt.
    /// Err is the refusal: the server does not start.
    pub(crate) fn load_database_epochs(
        &mut self,
        ctx: &mut Context<'_, Msg>,
    ) -> Result<(), String> {
        let last = self.tree.last_zxid();
        let epoch_of_zxid = zxid_epoch(last);
        if epoch_of_zxid <= self.current_epoch {
            return Ok(());
        }
        let tmp = txnlog::tmp_file(CURRENT_EPOCH_FILE);
        let files = |tmp_state: &str| {
            format!(
                "{CURRENT_EPOCH_FILE} {}, {ACCEPTED_EPOCH_FILE} {}, {tmp} {tmp_state}, last \
                 logged zxid {last:#x} ({}, snapshot at {:#x})",
                self.current_epoch,
                self.accepted_epoch,
                self.storage.log_name(),
                self.storage.snapshot_zxid,
            )
        };
        let refuse = |cause: String, tmp_state: &str| {
            format!(
                "{STARTUP_EPOCH_REFUSAL}: java.io.IOException: {cause} [{}]",
                files(tmp_state)
            )
        };
        match txnlog::read_tmp_epoch(ctx.disk(), CURRENT_EPOCH_FILE) {
            TmpEpoch::Absent => Err(refuse(
                format!(
                    "The current epoch, {:#x}, is older than the last zxid, {last}",
                    self.current_epoch
                ),
                "absent",
            )),
            TmpEpoch::Unreadable { len } => Err(refuse(
                format!("Found an unreadable value ({len} bytes) in {tmp}"),
                "unreadable",
            )),
            TmpEpoch::Epoch(e) if e > self.accepted_epoch => {
                // The next check of loadDataBase, on the adopted value.
                Err(format!(
                    "start-up refused: java.io.IOException: The accepted epoch, {:#x} is less \
                     than the current epoch, {e:#x} (adopted from {tmp}) [{}]",
                    self.accepted_epoch,
                    files(&format!("holds {e}"))
                ))
            }
            TmpEpoch::Epoch(e) => {
                // "currentEpoch.tmp found. Setting current epoch to e." The value is taken
                // as it is (loadDataBase does not compare it with the zxid's epoch), and
                // written back through the same idiom.
                self.set_current_epoch(ctx, e);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{DiskIo, Event, NodeId};
    use crate::zab::config::ZabConfig;
    use crate::zab::msg::{make_zxid, Txn, TxnOp};
    use crate::zab::testkit::Harness;
    use crate::zab::txnlog::{encode_epoch, Storage};

    #[test]
    fn spelled_tmp_names_are_the_formatted_ones() {
        for f in [EpochFile::Accepted, EpochFile::Current] {
            assert_eq!(f.tmp_name(), txnlog::tmp_file(f.name()));
        }
    }

    /// A server's disk as a learner leaves it when it dies after the NEWLEADER log fsync of
    /// a DIFF carrying a txn of epoch 3, before its currentEpoch write reached the disk:
    /// acceptedEpoch 3, currentEpoch 2, the log ending in 0x300000001; `tmp` is what
    /// currentEpoch.tmp holds, if anything.
    fn disk_after_newleader_log_fsync(tmp: Option<&[u8]>) -> Harness<ZabServer> {
        let me = NodeId(1);
        let voters = [NodeId(0), me, NodeId(2)];
        let mut h = Harness::new(ZabServer::new(me, &voters, ZabConfig::default()));
        let mut log = Storage::default();
        for zxid in [make_zxid(2, 1), make_zxid(3, 1)] {
            let op = TxnOp::Check { path: "/".into() };
            let txn = Txn {
                zxid,
                session: 0,
                cxid: 0,
                op,
            };
            log.append(&mut h.disk, &txn);
        }
        h.disk.write_all(ACCEPTED_EPOCH_FILE, &encode_epoch(3));
        h.disk.write_all(CURRENT_EPOCH_FILE, &encode_epoch(2));
        if let Some(bytes) = tmp {
            h.disk
                .write_all(&txnlog::tmp_file(CURRENT_EPOCH_FILE), bytes);
        }
        h.deliver(me, Event::Start { restarted: true });
        h
    }

    #[test]
    fn a_last_zxid_above_current_epoch_without_the_tmp_refuses_to_start() {
        let h = disk_after_newleader_log_fsync(None);
        let reason = h.halted.expect("refused to start");
        assert!(reason.starts_with(STARTUP_EPOCH_REFUSAL), "{reason}");
        assert!(
            reason.contains("The current epoch, 0x2, is older than the last zxid"),
            "{reason}"
        );
        assert!(reason.contains("currentEpoch.tmp absent"), "{reason}");
    }

    #[test]
    fn an_unreadable_tmp_refuses_too() {
        let h = disk_after_newleader_log_fsync(Some(b""));
        let reason = h.halted.expect("refused to start");
        assert!(reason.starts_with(STARTUP_EPOCH_REFUSAL), "{reason}");
        assert!(reason.contains("currentEpoch.tmp unreadable"), "{reason}");
    }

    #[test]
    fn the_tmp_left_by_a_kill_is_adopted_and_renamed_into_place() {
        let mut h = disk_after_newleader_log_fsync(Some(&encode_epoch(3)));
        assert_eq!(h.halted, None);
        assert_eq!(h.node.current_epoch, 3);
        h.complete_fsyncs(NodeId(1));
        assert_eq!(h.node.durable_current_epoch, 3);
        assert_eq!(h.disk.read(CURRENT_EPOCH_FILE), Some(encode_epoch(3)));
        assert_eq!(h.disk.read(&txnlog::tmp_file(CURRENT_EPOCH_FILE)), None);
    }

    /// Without a zxid above currentEpoch the tmp is not even read (and stays).
    #[test]
    fn a_tmp_is_ignored_when_the_log_is_not_ahead() {
        let me = NodeId(1);
        let voters = [NodeId(0), me, NodeId(2)];
        let mut h = Harness::new(ZabServer::new(me, &voters, ZabConfig::default()));
        h.disk.write_all(ACCEPTED_EPOCH_FILE, &encode_epoch(3));
        h.disk.write_all(CURRENT_EPOCH_FILE, &encode_epoch(2));
        let tmp = txnlog::tmp_file(CURRENT_EPOCH_FILE);
        h.disk.write_all(&tmp, &encode_epoch(3));
        h.deliver(me, Event::Start { restarted: true });
        assert_eq!(h.halted, None);
        assert_eq!(h.node.current_epoch, 2);
        assert_eq!(h.disk.read(&tmp), Some(encode_epoch(3)));
    }
}
