//! Durable storage of one ZooKeeper server over the node's virtual disk: the transaction
//! log, snapshots, and the `acceptedEpoch` / `currentEpoch` files (A.3), with a CRC-32C on
//! every record.
//!
//! Fault model handled here: a crash loses unsynced writes and may leave a torn tail on the
//! log (a partial last record: truncated on recovery); a read may return corrupted bytes
//! (the media is fine: read again, a few times). A record that stays bad in the middle of
//! the log, or an unreadable epoch file, is corruption: recovery fails and the server halts
//! rather than serve it.
//!
//! Files: `acceptedEpoch`, `currentEpoch` (`[u32 epoch][u32 crc]`); `log.<gen>` (records
//! `[u32 len][u32 crc][payload]`); `snap.<gen>.<zxid>` (`[u32 crc][payload]`). A SNAP sync
//! starts a new log generation: the snapshot names the log that continues it, so stale
//! records of an older history are never replayed.
//!
//! May depend on: `node` (DiskIo, checksum), `zab::msg`, `zab::tree`.

use crate::node::checksum::crc32c;
use crate::node::{DiskIo, FileName};

use super::msg::{ErrCode, Shared, Txn, TxnOp, Zxid};
use super::tree::{DataTree, Stat, TreeImage};

pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";
/// `AtomicFileOutputStream.TMP_EXTENSION`: an epoch file is written here, fsynced, then
/// renamed over the real name.
pub const TMP_EXTENSION: &str = ".tmp";

/// The temporary file an epoch file is written through.
pub fn tmp_file(file: &str) -> String {
    format!("{file}{TMP_EXTENSION}")
}
/// How many times a record that fails its checksum is read again before giving up.
const READ_ATTEMPTS: usize = 5;
/// Snapshots kept on disk (the newest may be torn if a crash hit before its fsync).
const SNAPSHOTS_KEPT: usize = 2;

/// [`log_file`] of generation 0, spelled out: every recovery and every new server starts
/// from it, without a format.
const LOG_FILE_0: &str = "log.00000000";

pub fn log_file(gen: u64) -> String {
    format!("log.{gen:08}")
}

pub fn snap_file(gen: u64, zxid: Zxid) -> String {
    let mut name = String::new();
    write_snap_name(&mut name, gen, zxid).expect("a String takes any text");
    name
}

/// Writes [`snap_file`]'s name into `out`: invariants that look a snapshot up after every
/// commit format it into a buffer on the stack instead of a new String.
pub fn write_snap_name(out: &mut impl std::fmt::Write, gen: u64, zxid: Zxid) -> std::fmt::Result {
    write!(out, "snap.{gen:08}.{zxid:016x}")
}

/// (generation, label) of a snapshot file's name, None for any other file.
pub fn parse_snap_name(name: &str) -> Option<(u64, Zxid)> {
    let rest = name.strip_prefix("snap.")?;
    let (gen, zxid) = rest.split_once('.')?;
    Some((gen.parse().ok()?, Zxid::from_str_radix(zxid, 16).ok()?))
}

// ---------------------------------------------------------------------- codec

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn stat(&mut self, s: &Stat) {
        for v in [s.czxid, s.mzxid, s.pzxid, s.ephemeral_owner] {
            self.u64(v);
        }
        self.u32(s.version as u32);
        self.u32(s.cversion as u32);
    }
    fn txn_op(&mut self, op: &TxnOp) {
        match op {
            TxnOp::CreateSession { timeout_ms } => {
                self.u8(1);
                self.u64(*timeout_ms);
            }
            TxnOp::CloseSession => self.u8(2),
            TxnOp::Create {
                path,
                data,
                ephemeral_owner,
            } => {
                self.u8(3);
                self.bytes(path.as_bytes());
                self.bytes(data);
                self.u64(*ephemeral_owner);
            }
            TxnOp::Delete { path } => {
                self.u8(4);
                self.bytes(path.as_bytes());
            }
            TxnOp::SetData { path, data } => {
                self.u8(5);
                self.bytes(path.as_bytes());
                self.bytes(data);
            }
            TxnOp::Check { path } => {
                self.u8(6);
                self.bytes(path.as_bytes());
            }
            TxnOp::Multi(ops) => {
                self.u8(7);
                self.u32(ops.len() as u32);
                ops.iter().for_each(|o| self.txn_op(o));
            }
            TxnOp::Error {
                code,
                multi_len,
                index,
            } => {
                self.u8(8);
                self.u8(*code as u8);
                self.u32(*multi_len);
                self.u32(*index);
            }
        }
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

type DecResult<T> = Result<T, ()>;

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> DecResult<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(())?;
        let s = self.buf.get(self.pos..end).ok_or(())?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> DecResult<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> DecResult<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> DecResult<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> DecResult<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> DecResult<String> {
        String::from_utf8(self.bytes()?).map_err(|_| ())
    }
    /// A txn's path or data, decoded straight into its shared form (one allocation).
    fn shared_bytes(&mut self) -> DecResult<Shared<[u8]>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.into())
    }
    fn shared_str(&mut self) -> DecResult<Shared<str>> {
        let n = self.u32()? as usize;
        Ok(std::str::from_utf8(self.take(n)?).map_err(|_| ())?.into())
    }
    fn stat(&mut self) -> DecResult<Stat> {
        Ok(Stat {
            czxid: self.u64()?,
            mzxid: self.u64()?,
            pzxid: self.u64()?,
            ephemeral_owner: self.u64()?,
            version: self.u32()? as i32,
            cversion: self.u32()? as i32,
        })
    }
    fn txn_op(&mut self) -> DecResult<TxnOp> {
        Ok(match self.u8()? {
            1 => TxnOp::CreateSession {
                timeout_ms: self.u64()?,
            },
            2 => TxnOp::CloseSession,
            3 => TxnOp::Create {
                path: self.shared_str()?,
                data: self.shared_bytes()?,
                ephemeral_owner: self.u64()?,
            },
            4 => TxnOp::Delete {
                path: self.shared_str()?,
            },
            5 => TxnOp::SetData {
                path: self.shared_str()?,
                data: self.shared_bytes()?,
            },
            6 => TxnOp::Check {
                path: self.shared_str()?,
            },
            7 => {
                let n = self.u32()? as usize;
                let mut ops = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    ops.push(self.txn_op()?);
                }
                TxnOp::Multi(ops)
            }
            8 => TxnOp::Error {
                code: error_code(self.u8()?)?,
                multi_len: self.u32()?,
                index: self.u32()?,
            },
            _ => return Err(()),
        })
    }
}

fn error_code(v: u8) -> DecResult<ErrCode> {
    const ALL: [ErrCode; 9] = [
        ErrCode::NoNode,
        ErrCode::NodeExists,
        ErrCode::BadVersion,
        ErrCode::NotEmpty,
        ErrCode::NoChildrenForEphemerals,
        ErrCode::SessionExpired,
        ErrCode::RuntimeInconsistency,
        ErrCode::BadArguments,
        ErrCode::SessionMoved,
    ];
    ALL.into_iter().find(|c| *c as u8 == v).ok_or(())
}

pub fn encode_txn(txn: &Txn) -> Vec<u8> {
    let mut e = Enc(Vec::with_capacity(88));
    e.u64(txn.zxid);
    e.u64(txn.session);
    e.u64(txn.cxid);
    e.txn_op(&txn.op);
    e.0
}

pub fn decode_txn(bytes: &[u8]) -> Option<Txn> {
    let mut d = Dec { buf: bytes, pos: 0 };
    let txn = (|| -> DecResult<Txn> {
        Ok(Txn {
            zxid: d.u64()?,
            session: d.u64()?,
            cxid: d.u64()?,
            op: d.txn_op()?,
        })
    })()
    .ok()?;
    (d.pos == bytes.len()).then_some(txn)
}

fn encode_image(image: &TreeImage) -> Vec<u8> {
    let mut e = Enc::default();
    e.u64(image.last_zxid);
    e.u32(image.nodes.len() as u32);
    for (path, data, stat) in &image.nodes {
        e.bytes(path.as_bytes());
        e.bytes(data);
        e.stat(stat);
    }
    e.u32(image.sessions.len() as u32);
    for (s, t) in &image.sessions {
        e.u64(*s);
        e.u64(*t);
    }
    e.0
}

fn decode_image(bytes: &[u8]) -> Option<TreeImage> {
    let mut d = Dec { buf: bytes, pos: 0 };
    let image = (|| -> DecResult<TreeImage> {
        let last_zxid = d.u64()?;
        let n = d.u32()? as usize;
        let mut nodes = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            nodes.push((d.string()?, d.bytes()?, d.stat()?));
        }
        let m = d.u32()? as usize;
        let mut sessions = Vec::with_capacity(m.min(4096));
        for _ in 0..m {
            sessions.push((d.u64()?, d.u64()?));
        }
        Ok(TreeImage {
            last_zxid,
            nodes,
            sessions,
        })
    })()
    .ok()?;
    (d.pos == bytes.len()).then_some(image)
}

// ---------------------------------------------------------------------- epochs

pub fn encode_epoch(epoch: u32) -> Vec<u8> {
    let mut v = epoch.to_le_bytes().to_vec();
    v.extend_from_slice(&crc32c(&epoch.to_le_bytes()).to_le_bytes());
    v
}

/// What `currentEpoch.tmp` holds, as `QuorumPeer.loadDataBase` reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TmpEpoch {
    Absent,
    Epoch(u32),
    /// Present but not a number: empty (its write was lost in a power loss after the
    /// truncating open), torn, or corrupted on every read. ZooKeeper's `readLongFromFile`
    /// throws ("Found ... in ..."), which fails the start-up like a missing file.
    Unreadable {
        len: usize,
    },
}

/// Reads the temporary file of an epoch file, retrying corrupted reads.
pub fn read_tmp_epoch(disk: &mut dyn DiskIo, file: &str) -> TmpEpoch {
    let tmp = tmp_file(file);
    let mut len = 0;
    for _ in 0..READ_ATTEMPTS {
        let Some(bytes) = disk.read(&tmp) else {
            return TmpEpoch::Absent;
        };
        len = bytes.len();
        if let Some(e) = decode_epoch(&bytes) {
            return TmpEpoch::Epoch(e);
        }
        if bytes.is_empty() {
            break;
        }
    }
    TmpEpoch::Unreadable { len }
}

fn decode_epoch(bytes: &[u8]) -> Option<u32> {
    if bytes.len() != 8 {
        return None;
    }
    let (v, c) = bytes.split_at(4);
    (crc32c(v).to_le_bytes() == c).then(|| u32::from_le_bytes(v.try_into().expect("4 bytes")))
}

/// Reads an epoch file: 0 if absent, an error if it stays corrupted.
fn read_epoch(disk: &mut dyn DiskIo, file: &str) -> Result<u32, String> {
    for _ in 0..READ_ATTEMPTS {
        let Some(bytes) = disk.read(file) else {
            return Ok(0);
        };
        // An epoch file is written whole and fsynced before anyone relies on it; an empty
        // file is an unsynced write lost in a crash.
        if bytes.is_empty() {
            return Ok(0);
        }
        if let Some(e) = decode_epoch(&bytes) {
            return Ok(e);
        }
    }
    Err(format!(
        "{file}: checksum mismatch after {READ_ATTEMPTS} reads"
    ))
}

// ---------------------------------------------------------------------- the log

/// One record of the current log generation, with where it ends in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub txn: Txn,
    pub end_offset: u64,
}

/// The server's view of its durable storage. Appends are synchronous page-cache writes;
/// the caller fsyncs [`Storage::log_name`] and tracks what is durable.
#[derive(Clone, Debug)]
pub struct Storage {
    /// Current log generation (change it with `set_gen`, which renames the log file).
    pub gen: u64,
    /// `log.<gen>`, kept formatted and shared: every append and fsync names it.
    name: FileName,
    /// Every record of `log.<gen>`, in zxid order.
    pub entries: Vec<LogEntry>,
    /// Label of the newest snapshot of this generation (0 if none).
    pub snapshot_zxid: Zxid,
    /// The zxid the generation starts after (the label of the SNAP that began it; 0 for
    /// generation 0): the server holds every txn of its history after this one.
    pub gen_base: Zxid,
}

/// What recovery rebuilt from disk.
#[derive(Debug)]
pub struct Recovered {
    pub storage: Storage,
    pub tree: DataTree,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
}

fn record(txn: &Txn) -> Vec<u8> {
    // One buffer: 8 header bytes, then the payload (no second allocation and copy).
    let mut e = Enc(Vec::with_capacity(96));
    e.u64(0);
    e.u64(txn.zxid);
    e.u64(txn.session);
    e.u64(txn.cxid);
    e.txn_op(&txn.op);
    let mut rec = e.0;
    let len = (rec.len() - 8) as u32;
    let crc = crc32c(&rec[8..]);
    rec[..4].copy_from_slice(&len.to_le_bytes());
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    rec
}

/// Decodes exactly one log record (`[len][crc][payload]`), as found at an entry's offsets:
/// for invariants that check what a disk holds without replaying the whole log.
pub fn decode_record(bytes: &[u8]) -> Option<Txn> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let payload = bytes.get(8..)?;
    if payload.len() != len || crc32c(payload) != crc {
        return None;
    }
    decode_txn(payload)
}

/// Parses the valid prefix of a log file: (entries, valid length in bytes).
fn parse_log(bytes: &[u8]) -> (Vec<LogEntry>, u64) {
    let mut entries = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32c(payload) != crc {
            break;
        }
        let Some(txn) = decode_txn(payload) else {
            break;
        };
        pos += 8 + len;
        entries.push(LogEntry {
            txn,
            end_offset: pos as u64,
        });
    }
    (entries, pos as u64)
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            gen: 0,
            name: LOG_FILE_0.into(),
            entries: Vec::new(),
            snapshot_zxid: 0,
            gen_base: 0,
        }
    }
}

impl Storage {
    pub fn log_name(&self) -> &str {
        &self.name
    }

    /// The log's name, shared, for its fsyncs.
    pub fn log_name_shared(&self) -> &FileName {
        &self.name
    }

    fn set_gen(&mut self, gen: u64) {
        self.gen = gen;
        self.name = log_file(gen).into();
    }

    pub fn last_zxid(&self) -> Zxid {
        self.entries
            .last()
            .map(|e| e.txn.zxid)
            .unwrap_or(self.snapshot_zxid)
    }

    /// Appends one txn to the log (page cache only; durable after an fsync of the log).
    pub fn append(&mut self, disk: &mut dyn DiskIo, txn: &Txn) {
        assert!(
            txn.zxid > self.last_zxid(),
            "log append out of order: {:#x} after {:#x}",
            txn.zxid,
            self.last_zxid()
        );
        let rec = record(txn);
        let end = self.entries.last().map(|e| e.end_offset).unwrap_or(0) + rec.len() as u64;
        disk.append_vec(&self.name, rec);
        self.entries.push(LogEntry {
            txn: txn.clone(),
            end_offset: end,
        });
    }

    /// Drops every record after `zxid` (TRUNC). Fails if a snapshot already covers more.
    pub fn truncate_after(&mut self, disk: &mut dyn DiskIo, zxid: Zxid) -> Result<(), String> {
        if self.snapshot_zxid > zxid {
            return Err(format!(
                "cannot truncate to {zxid:#x}: snapshot {:#x} is newer",
                self.snapshot_zxid
            ));
        }
        self.truncate_log(disk, zxid);
        Ok(())
    }

    /// Drops every log record after `zxid` and leaves the snapshots alone, as ZooKeeper's
    /// `FileTxnSnapLog.truncateLog` does (only `FileTxnLog.truncate`); the newest snapshot
    /// may then still hold more than `zxid` (bug mode `trunc-below-snapshot`).
    pub fn truncate_log(&mut self, disk: &mut dyn DiskIo, zxid: Zxid) {
        let keep = self.entries.partition_point(|e| e.txn.zxid <= zxid);
        let len = if keep == 0 {
            0
        } else {
            self.entries[keep - 1].end_offset
        };
        self.entries.truncate(keep);
        disk.truncate(&self.name, len);
    }

    /// Writes a snapshot of `tree` (page cache only); returns the file to fsync. With
    /// `new_gen` the snapshot starts a new, empty log generation (SNAP sync).
    pub fn write_snapshot(
        &mut self,
        disk: &mut dyn DiskIo,
        tree: &DataTree,
        new_gen: bool,
    ) -> String {
        if new_gen {
            self.set_gen(self.gen + 1);
            self.entries.clear();
            self.gen_base = tree.last_zxid();
            disk.remove(&self.name);
        }
        self.snapshot_zxid = tree.last_zxid();
        let mut payload = self.gen_base.to_le_bytes().to_vec();
        payload.extend_from_slice(&encode_image(&tree.image()));
        let mut bytes = crc32c(&payload).to_le_bytes().to_vec();
        bytes.extend_from_slice(&payload);
        let name = snap_file(self.gen, tree.last_zxid());
        disk.write_all(&name, &bytes);
        name
    }

    /// Once the snapshot `name` is durable: forget older snapshots and older log
    /// generations. (A removal that a crash undoes is harmless: recovery reads only the
    /// generation named by the newest valid snapshot.)
    pub fn snapshot_durable(&mut self, disk: &mut dyn DiskIo, name: &str) {
        let Some((gen, _)) = parse_snap_name(name) else {
            return;
        };
        let snaps = snapshot_files(disk);
        let excess = snaps.len().saturating_sub(SNAPSHOTS_KEPT);
        for (g, _, f) in snaps.into_iter().take(excess) {
            if g <= gen && f != name {
                disk.remove(&f);
            }
        }
        for g in 0..gen {
            if disk.len(&log_file(g)).is_some() {
                disk.remove(&log_file(g));
            }
        }
    }
}

/// Reads a snapshot file, retrying corrupted reads; None if it never verifies (torn).
/// Returns (generation base, image).
fn read_snapshot(disk: &mut dyn DiskIo, name: &str) -> Option<(Zxid, TreeImage)> {
    for _ in 0..READ_ATTEMPTS {
        let bytes = disk.read(name)?;
        if bytes.len() < 12 {
            continue;
        }
        let (c, payload) = bytes.split_at(4);
        if crc32c(payload).to_le_bytes() == c {
            let base = u64::from_le_bytes(payload[..8].try_into().unwrap());
            if let Some(image) = decode_image(&payload[8..]) {
                return Some((base, image));
            }
        }
    }
    None
}

/// Reads a log file, retrying while a record fails its checksum; truncates a torn tail.
fn read_log(disk: &mut dyn DiskIo, name: &str) -> Result<Vec<LogEntry>, String> {
    let mut best: Option<(Vec<LogEntry>, u64, u64)> = None;
    for _ in 0..READ_ATTEMPTS {
        let Some(bytes) = disk.read(name) else {
            return Ok(Vec::new());
        };
        let (entries, valid_len) = parse_log(&bytes);
        let total = bytes.len() as u64;
        if valid_len == total {
            return Ok(entries);
        }
        if best.as_ref().is_none_or(|b| valid_len > b.1) {
            best = Some((entries, valid_len, total));
        }
    }
    let (entries, valid_len, total) = best.expect("at least one read");
    // The same bad record on every read. A torn append is the last record of the file:
    // its declared length runs to or past the end. Anything else is corruption.
    let bytes = disk.read(name).unwrap_or_default();
    let at = valid_len as usize;
    let declared_end = bytes
        .get(at..at + 4)
        .map(|l| at + 8 + u32::from_le_bytes(l.try_into().unwrap()) as usize);
    let torn = declared_end.is_none_or(|end| end >= total as usize);
    if !torn {
        return Err(format!("{name}: corrupted record at offset {valid_len}"));
    }
    disk.truncate(name, valid_len);
    Ok(entries)
}

/// The snapshot files on disk as (generation, zxid, name), oldest first.
fn snapshot_files(disk: &dyn DiskIo) -> Vec<(u64, Zxid, String)> {
    let mut snaps: Vec<(u64, Zxid, String)> = disk
        .list()
        .into_iter()
        .filter_map(|f| parse_snap_name(&f).map(|(g, z)| (g, z, f)))
        .collect();
    snaps.sort();
    snaps
}

/// Rebuilds a server from its disk: epochs, newest valid snapshot, then every logged txn
/// after it (A.3: restart treats every logged txn as part of the history).
pub fn recover(disk: &mut dyn DiskIo) -> Result<Recovered, String> {
    recover_until(disk, Zxid::MAX)
}

/// [`recover`], applying logged txns to the tree only up to `last` (the storage still lists
/// every record): the state a server that applied up to `last` should hold.
pub fn recover_until(disk: &mut dyn DiskIo, last: Zxid) -> Result<Recovered, String> {
    let accepted_epoch = read_epoch(disk, ACCEPTED_EPOCH_FILE)?;
    let current_epoch = read_epoch(disk, CURRENT_EPOCH_FILE)?;
    let snaps = snapshot_files(disk);
    let mut tree = DataTree::new();
    let mut storage = Storage::default();
    for (gen, zxid, name) in snaps.into_iter().rev() {
        if let Some((base, image)) = read_snapshot(disk, &name) {
            if image.last_zxid != zxid {
                return Err(format!("{name}: label does not match content"));
            }
            tree = DataTree::from_image(&image);
            storage.set_gen(gen);
            storage.gen_base = base;
            storage.snapshot_zxid = zxid;
            break;
        }
    }
    let name = FileName::clone(&storage.name);
    storage.entries = read_log(disk, &name)?;
    for w in storage.entries.windows(2) {
        if w[0].txn.zxid >= w[1].txn.zxid {
            return Err(format!("{}: zxids out of order", storage.log_name()));
        }
    }
    for entry in &storage.entries {
        if entry.txn.zxid > last {
            break;
        }
        if entry.txn.zxid > tree.last_zxid() {
            tree.replay(&entry.txn);
        }
    }
    if current_epoch > accepted_epoch {
        return Err(format!(
            "currentEpoch {current_epoch} > acceptedEpoch {accepted_epoch}"
        ));
    }
    Ok(Recovered {
        storage,
        tree,
        accepted_epoch,
        current_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::MemDisk;

    fn txn(zxid: Zxid) -> Txn {
        let op = if zxid & 0xffff_ffff == 1 {
            TxnOp::CreateSession { timeout_ms: 500 }
        } else {
            TxnOp::Create {
                path: format!("/n{zxid:x}").into(),
                data: vec![1, 2, 3].into(),
                ephemeral_owner: 0,
            }
        };
        Txn {
            zxid,
            session: 9,
            cxid: zxid,
            op,
        }
    }

    fn write_log(disk: &mut MemDisk, zxids: &[Zxid]) -> Storage {
        let mut s = Storage::default();
        for z in zxids {
            s.append(disk, &txn(*z));
        }
        s
    }

    #[test]
    fn spelled_log_name_is_the_formatted_one() {
        assert_eq!(LOG_FILE_0, log_file(0));
        assert_eq!(Storage::default().log_name(), log_file(0));
    }

    #[test]
    fn txn_codec_round_trips() {
        let t = Txn {
            zxid: 5,
            session: 1,
            cxid: 2,
            op: TxnOp::Multi(vec![
                TxnOp::Check { path: "/a".into() },
                TxnOp::Error {
                    code: ErrCode::NotEmpty,
                    multi_len: 2,
                    index: 1,
                },
            ]),
        };
        assert_eq!(decode_txn(&encode_txn(&t)), Some(t));
    }

    #[test]
    fn recovery_replays_log_after_snapshot() {
        let mut disk = MemDisk::default();
        let mut s = write_log(&mut disk, &[1, 2, 3]);
        let mut tree = DataTree::new();
        for e in &s.entries {
            tree.apply(&e.txn);
        }
        s.write_snapshot(&mut disk, &tree, false);
        s.append(&mut disk, &txn(4));
        tree.apply(&txn(4));
        let r = recover(&mut disk).unwrap();
        assert_eq!(r.tree.digest(), tree.digest());
        assert_eq!(r.storage.last_zxid(), 4);
        assert_eq!(r.storage.snapshot_zxid, 3);
    }

    #[test]
    fn recovery_truncates_a_torn_tail() {
        let mut disk = MemDisk::default();
        write_log(&mut disk, &[1, 2, 3]);
        let len = disk.len(&log_file(0)).unwrap();
        disk.truncate(&log_file(0), len - 3);
        let r = recover(&mut disk).unwrap();
        assert_eq!(r.storage.last_zxid(), 2);
        assert_eq!(r.tree.last_zxid(), 2);
        // The torn bytes are gone, so the next append lands after record 2.
        let mut s = r.storage;
        s.append(&mut disk, &txn(3));
        assert_eq!(recover(&mut disk).unwrap().storage.last_zxid(), 3);
    }

    #[test]
    fn recovery_refuses_corruption_in_the_middle() {
        let mut disk = MemDisk::default();
        write_log(&mut disk, &[1, 2, 3]);
        disk.files.get_mut(&log_file(0)).unwrap()[12] ^= 0xff;
        let err = recover(&mut disk).unwrap_err();
        assert!(err.contains("corrupted"), "{err}");
    }

    /// A disk whose first reads of every file are corrupted: a re-read must fix it.
    struct FlakyDisk {
        inner: MemDisk,
        bad_reads_left: u32,
    }

    impl DiskIo for FlakyDisk {
        fn append(&mut self, f: &str, b: &[u8]) {
            self.inner.append(f, b)
        }
        fn write_all(&mut self, f: &str, b: &[u8]) {
            self.inner.write_all(f, b)
        }
        fn truncate(&mut self, f: &str, l: u64) {
            self.inner.truncate(f, l)
        }
        fn remove(&mut self, f: &str) {
            self.inner.remove(f)
        }
        fn read(&mut self, f: &str) -> Option<Vec<u8>> {
            let mut b = self.inner.read(f)?;
            if self.bad_reads_left > 0 && !b.is_empty() {
                self.bad_reads_left -= 1;
                let mid = b.len() / 2;
                b[mid] ^= 0x5a;
            }
            Some(b)
        }
        fn len(&self, f: &str) -> Option<u64> {
            self.inner.len(f)
        }
        fn list(&self) -> Vec<String> {
            self.inner.list()
        }
    }

    #[test]
    fn corrupted_reads_are_retried() {
        let mut mem = MemDisk::default();
        write_log(&mut mem, &[1, 2, 3]);
        mem.write_all(CURRENT_EPOCH_FILE, &encode_epoch(1));
        mem.write_all(ACCEPTED_EPOCH_FILE, &encode_epoch(2));
        let mut disk = FlakyDisk {
            inner: mem,
            bad_reads_left: 3,
        };
        let r = recover(&mut disk).unwrap();
        assert_eq!(r.storage.last_zxid(), 3);
        assert_eq!((r.accepted_epoch, r.current_epoch), (2, 1));
    }

    #[test]
    fn truncate_after_then_snap_generation() {
        let mut disk = MemDisk::default();
        let mut s = write_log(&mut disk, &[1, 2, 3, 4]);
        s.truncate_after(&mut disk, 2).unwrap();
        assert_eq!(recover(&mut disk).unwrap().storage.last_zxid(), 2);
        // A SNAP starts generation 1: the old log is never replayed on top of it.
        let mut tree = DataTree::new();
        tree.apply(&txn(1));
        let name = s.write_snapshot(&mut disk, &tree, true);
        s.snapshot_durable(&mut disk, &name);
        s.append(&mut disk, &txn(make(1, 9)));
        let r = recover(&mut disk).unwrap();
        assert_eq!(r.storage.gen, 1);
        assert_eq!(r.storage.last_zxid(), make(1, 9));
        assert!(r.tree.get("/n2").is_none());
    }

    /// ZooKeeper's truncation (`FileTxnSnapLog.truncateLog`) touches only the log: a
    /// snapshot above the point survives and recovery reloads it (bug mode
    /// trunc-below-snapshot); `truncate_after`, the default, refuses instead.
    #[test]
    fn truncate_log_leaves_a_newer_snapshot_that_recovery_reloads() {
        let mut disk = MemDisk::default();
        let mut s = write_log(&mut disk, &[1, 2, 3]);
        let mut tree = DataTree::new();
        for e in &s.entries {
            tree.apply(&e.txn);
        }
        s.write_snapshot(&mut disk, &tree, false);
        s.append(&mut disk, &txn(4));
        assert!(s.truncate_after(&mut disk, 2).is_err());
        s.truncate_log(&mut disk, 2);
        let r = recover(&mut disk).unwrap();
        assert_eq!(r.tree.last_zxid(), 3, "the snapshot still holds txn 3");
        assert_eq!(r.storage.snapshot_zxid, 3);
        assert_eq!(r.storage.last_zxid(), 2, "the log's last record");
    }

    fn make(e: u32, c: u32) -> Zxid {
        super::super::msg::make_zxid(e, c)
    }
}
