//! The virtual disk: one per node, a set of named files.
//!
//! Durability model (what a crash keeps):
//! - Every write (append, replace, truncate, remove) lands at once in a volatile buffer, the
//!   page cache. Reads see it.
//! - `fsync(file)` completes as an event after a sampled latency (fsyncs of one disk complete
//!   in the order they were issued). When it completes, every write made to that file before
//!   the fsync was issued is durable.
//! - A crash keeps the durable content of every file. Of the writes made since the last
//!   completed fsync, a crash keeps none by default; with `crash_keeps_unsynced_prefix` it
//!   keeps a random prefix of them (the kernel may have flushed some on its own), and with
//!   `torn_writes` the first lost write, if it is an append, may survive partly: a torn tail.
//!   Tearing therefore only ever happens at the end of a file.
//! - A kill (the process dies, the machine stays up) keeps the page cache: appends,
//!   truncations and removals stay readable, still unsynced. A whole-file replacement
//!   (`write_all`) stands for the write-temporary, fsync, rename idiom that both ZooKeeper
//!   (AtomicFileOutputStream: synced snapshots) and Kafka (checkpoint files) use, where
//!   nothing reads the temporary file back: the rename happens only once the fsync
//!   returned, so a replacement whose fsync had not completed when the process died never
//!   took the file's name, and the kill undoes it (with every later write to that file).
//!   Nothing is written back on its own
//!   while the machine runs; a later power loss treats what is still unsynced as above.
//! - A rename moves a file, with its durable content and pending writes, to the new name,
//!   replacing what that name held; the name change itself is durable at once (the
//!   filesystem journal commits it; a power loss before that commit, which would leave
//!   the old name beside the renamed file, is not modelled). ZooKeeper's epoch files are
//!   written this way, tmp file first (`zab::ZabServer::write_epoch_file`).
//! - Fsynced data is never lost or corrupted: that is outside the failure model of both ZAB
//!   and Kafka.
//!
//! Fault model: fsync latency spikes (per node, for a period), and corrupted reads: with
//! probability `read_corruption`, one bit of the returned copy is flipped. The media is not
//! damaged, so a second read may succeed. Every durable format must carry checksums.
//!
//! Depends on: node (the DiskIo contract), rng.

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::node::DiskIo;
use crate::sim::rng::Ratio;
use crate::sim::time::Dur;

/// Disk options of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskOptions {
    /// Mean fsync latency.
    pub fsync_latency_mean: Dur,
    /// Uniform spread around the mean.
    pub fsync_latency_jitter: Dur,
    /// A crash keeps a random prefix of the unsynced writes instead of none of them.
    pub crash_keeps_unsynced_prefix: bool,
    /// The first unsynced append lost in a crash may survive partly (a torn tail).
    pub torn_writes: bool,
    /// Probability that a read returns a copy with one flipped bit (fault phase only).
    pub read_corruption: Ratio,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            fsync_latency_mean: Dur(2_000_000),
            fsync_latency_jitter: Dur(1_000_000),
            crash_keeps_unsynced_prefix: true,
            torn_writes: true,
            read_corruption: Ratio::NEVER,
        }
    }
}

/// File content. Shared between the page-cache view, the durable view and pending writes
/// until one of them changes, so a write is copied once, not once per view.
type Data = Rc<Vec<u8>>;

#[derive(Clone, Debug)]
enum WriteOp {
    /// The caller's buffer itself, moved in (`DiskIo::append_vec`): one allocation per
    /// log record, the encoder's, not a second for a copy.
    Append(Vec<u8>),
    Replace(Data),
    Truncate(u64),
    Remove,
}

impl WriteOp {
    fn apply(&self, data: &mut Option<Data>) {
        match self {
            WriteOp::Append(bytes) => {
                let d = data.get_or_insert_with(Data::default);
                Rc::make_mut(d).extend_from_slice(bytes);
            }
            WriteOp::Replace(bytes) => *data = Some(Rc::clone(bytes)),
            WriteOp::Truncate(len) => {
                if let Some(d) = data {
                    if d.len() > *len as usize {
                        Rc::make_mut(d).truncate(*len as usize);
                    }
                }
            }
            WriteOp::Remove => *data = None,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct File {
    /// What reads see: durable content plus every pending write.
    current: Option<Data>,
    /// What survives a crash for sure.
    durable: Option<Data>,
    /// Writes since the durable point, oldest first; `pending[0]` has number `durable_ops`.
    pending: VecDeque<WriteOp>,
    durable_ops: u64,
}

impl File {
    fn total_ops(&self) -> u64 {
        self.durable_ops + self.pending.len() as u64
    }

    fn push(&mut self, op: WriteOp) {
        op.apply(&mut self.current);
        self.pending.push_back(op);
    }
}

/// One node's disk.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    files: BTreeMap<String, File>,
    /// Completion time of the latest fsync issued, so that fsyncs complete in order.
    pub(crate) last_fsync_done_ns: u64,
    pub(crate) bytes_written: u64,
    spare: Spare,
}

/// Buffers of whole-file contents that nothing references any more (a replaced durable
/// content), kept to hold the next whole-file write: a node that rewrites a small state
/// file and fsyncs it (the counter, ZooKeeper's epoch files) then allocates nothing per
/// write. Memory reuse only: contents are always written in full. A clone of the disk
/// starts with none (a shared buffer could not be reused).
#[derive(Default)]
struct Spare(Vec<Data>);

impl Spare {
    /// Most buffers kept, and the largest kept (bigger ones are freed, not hoarded).
    const MAX: usize = 4;
    const MAX_BYTES: usize = 4096;

    fn keep(&mut self, mut data: Data) {
        if self.0.len() < Self::MAX
            && data.capacity() <= Self::MAX_BYTES
            && Rc::get_mut(&mut data).is_some()
        {
            self.0.push(data);
        }
    }

    /// `bytes` as new file content, in a kept buffer when there is one.
    fn content(&mut self, bytes: &[u8]) -> Data {
        match self.0.pop() {
            Some(mut data) => {
                let buf = Rc::get_mut(&mut data).expect("kept buffers are unshared");
                buf.clear();
                buf.extend_from_slice(bytes);
                data
            }
            None => Rc::new(bytes.to_vec()),
        }
    }
}

impl Clone for Spare {
    fn clone(&self) -> Self {
        Spare::default()
    }
}

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Spare({})", self.0.len())
    }
}

impl Disk {
    /// Marks the fsync of `file` issued now: returns the write count it will make durable.
    pub fn fsync_target(&self, file: &str) -> u64 {
        self.files.get(file).map_or(0, File::total_ops)
    }

    /// Completes an fsync: every write numbered below `target` becomes durable.
    pub fn complete_fsync(&mut self, file: &str, target: u64) {
        let Some(f) = self.files.get_mut(file) else {
            return;
        };
        while f.durable_ops < target {
            let Some(op) = f.pending.pop_front() else {
                break;
            };
            match op {
                // What `apply` does, with the content the replacement ends kept for reuse.
                WriteOp::Replace(bytes) => {
                    if let Some(old) = f.durable.replace(bytes) {
                        self.spare.keep(old);
                    }
                }
                other => other.apply(&mut f.durable),
            }
            f.durable_ops += 1;
        }
    }

    /// A power loss: unsynced writes are lost, except a random prefix and torn tail if the
    /// options allow. Returns how many unsynced writes were dropped in all.
    pub fn crash(&mut self, rng: &mut ChaCha8Rng, options: &DiskOptions) -> u64 {
        let mut dropped = 0;
        for f in self.files.values_mut() {
            let pending = f.pending.len();
            let keep = if options.crash_keeps_unsynced_prefix && pending > 0 {
                rng.gen_range(0..=pending)
            } else {
                0
            };
            let mut survived = f.durable.clone();
            for op in f.pending.iter().take(keep) {
                op.apply(&mut survived);
            }
            if options.torn_writes && keep < pending {
                if let WriteOp::Append(bytes) = &f.pending[keep] {
                    if bytes.len() > 1 {
                        let torn = rng.gen_range(0..bytes.len());
                        WriteOp::Append(bytes[..torn].to_vec()).apply(&mut survived);
                    }
                }
            }
            dropped += (pending - keep) as u64;
            f.durable = survived.clone();
            f.current = survived;
            f.durable_ops += f.pending.len() as u64;
            f.pending.clear();
        }
        self.files.retain(|_, f| f.current.is_some());
        dropped
    }

    /// The process died, the machine stays up: the page cache survives, except replacements
    /// whose fsync had not completed (the rename of the atomic-replace idiom never
    /// happened) and what followed them in the same file. What survives is written back by
    /// the kernel, which this model does at once: a restarted process treats what it reads
    /// as logged (ZooKeeper does not fsync its log on start-up), and with no power loss the
    /// kernel's writeback makes that true. The real window (a power loss within the
    /// writeback delay after a kill) is not modelled. Returns how many writes were undone.
    pub fn kill(&mut self) -> u64 {
        let mut undone = 0;
        for f in self.files.values_mut() {
            let Some(first) = f
                .pending
                .iter()
                .position(|op| matches!(op, WriteOp::Replace(_)))
            else {
                continue;
            };
            undone += (f.pending.len() - first) as u64;
            f.pending.truncate(first);
            let mut current = f.durable.clone();
            for op in &f.pending {
                op.apply(&mut current);
            }
            f.current = current;
        }
        for f in self.files.values_mut() {
            f.pending.clear();
            f.durable = f.current.clone();
        }
        undone
    }

    /// rename(2) of `from` over `to` (see the module's durability model). No effect if
    /// `from` does not exist.
    pub fn rename(&mut self, from: &str, to: &str) {
        if from == to || self.files.get(from).is_none_or(|f| f.current.is_none()) {
            return;
        }
        let moved = self.files.remove(from).expect("checked");
        self.files.insert(to.to_string(), moved);
    }

    /// The durable content of a file (for tests and invariants).
    pub fn durable(&self, file: &str) -> Option<&[u8]> {
        self.files
            .get(file)
            .and_then(|f| f.durable.as_deref())
            .map(Vec::as_slice)
    }

    /// The files with durable content (`durable`) or page-cache content (else), in name
    /// order: invariants that judge what a crash would keep list them with this.
    pub fn file_names(&self, durable: bool) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(move |(_, f)| {
                if durable {
                    f.durable.is_some()
                } else {
                    f.current.is_some()
                }
            })
            .map(|(name, _)| name.as_str())
    }

    /// The current (page-cache) content of a file, without read faults.
    pub fn peek(&self, file: &str) -> Option<&[u8]> {
        self.files
            .get(file)
            .and_then(|f| f.current.as_deref())
            .map(Vec::as_slice)
    }

    /// Queues `op` on file `name`, creating the file if it does not exist. An existing file
    /// (the common case: a log segment takes an append per record batch) costs one search.
    fn push_op(&mut self, name: &str, op: WriteOp) {
        match self.files.get_mut(name) {
            Some(f) => f.push(op),
            None => {
                let mut f = File::default();
                f.push(op);
                self.files.insert(name.to_string(), f);
            }
        }
    }
}

/// A node's view of its disk during one event: the disk plus the fault stream.
pub struct DiskHandle<'a> {
    pub disk: &'a mut Disk,
    pub rng: &'a mut ChaCha8Rng,
    pub read_corruption: Ratio,
    pub corrupted_reads: &'a mut u64,
}

impl DiskIo for DiskHandle<'_> {
    fn append(&mut self, file: &str, bytes: &[u8]) {
        self.append_vec(file, bytes.to_vec());
    }
    fn append_vec(&mut self, file: &str, bytes: Vec<u8>) {
        self.disk.bytes_written += bytes.len() as u64;
        self.disk.push_op(file, WriteOp::Append(bytes));
    }
    fn write_all(&mut self, file: &str, bytes: &[u8]) {
        self.disk.bytes_written += bytes.len() as u64;
        let content = self.disk.spare.content(bytes);
        self.disk.push_op(file, WriteOp::Replace(content));
    }
    fn truncate(&mut self, file: &str, len: u64) {
        if self.disk.files.contains_key(file) {
            self.disk.push_op(file, WriteOp::Truncate(len));
        }
    }
    fn remove(&mut self, file: &str) {
        if self.disk.files.contains_key(file) {
            self.disk.push_op(file, WriteOp::Remove);
        }
    }
    fn rename(&mut self, from: &str, to: &str) {
        self.disk.rename(from, to);
    }
    fn read(&mut self, file: &str) -> Option<Vec<u8>> {
        let mut data = self.disk.files.get(file)?.current.as_deref()?.clone();
        if !data.is_empty() && self.read_corruption.chance(self.rng) {
            let bit = self.rng.gen_range(0..data.len() * 8);
            data[bit / 8] ^= 1 << (bit % 8);
            *self.corrupted_reads += 1;
        }
        Some(data)
    }
    fn len(&self, file: &str) -> Option<u64> {
        self.disk
            .files
            .get(file)
            .and_then(|f| f.current.as_ref())
            .map(|d| d.len() as u64)
    }
    fn list(&self) -> Vec<String> {
        self.disk
            .files
            .iter()
            .filter(|(_, f)| f.current.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::stream;

    fn handle<'a>(disk: &'a mut Disk, rng: &'a mut ChaCha8Rng, n: &'a mut u64) -> DiskHandle<'a> {
        DiskHandle {
            disk,
            rng,
            read_corruption: Ratio::NEVER,
            corrupted_reads: n,
        }
    }

    /// Rewriting a small file reuses the buffer of the content two replacements back, and
    /// no view ever sees a reused buffer's old bytes: durable, pending and page-cache
    /// contents stay what was written.
    #[test]
    fn whole_file_writes_reuse_released_buffers_without_changing_content() {
        let mut disk = Disk::default();
        let mut rng = stream(5, "disk");
        let mut n = 0;
        let mut reused = 0;
        for i in 0..50u32 {
            let text = format!("state {i}");
            let kept = disk.spare.0.len();
            handle(&mut disk, &mut rng, &mut n).write_all("state", text.as_bytes());
            if kept > 0 {
                assert_eq!(disk.spare.0.len(), kept - 1, "a kept buffer was used");
                reused += 1;
            }
            assert_eq!(disk.peek("state"), Some(text.as_bytes()));
            if i % 3 != 0 {
                let target = disk.fsync_target("state");
                disk.complete_fsync("state", target);
                assert_eq!(disk.durable("state"), Some(text.as_bytes()));
            }
        }
        assert!(reused > 20, "buffers were reused ({reused})");
        let copy = disk.clone();
        assert!(copy.spare.0.is_empty(), "a clone shares no spare buffer");
        assert_eq!(copy.peek("state"), disk.peek("state"));
    }

    #[test]
    fn synced_survives_and_unsynced_is_lost_without_prefix_option() {
        let mut disk = Disk::default();
        let mut rng = stream(1, "disk");
        let mut n = 0;
        handle(&mut disk, &mut rng, &mut n).append("log", b"aaaa");
        let target = disk.fsync_target("log");
        disk.complete_fsync("log", target);
        handle(&mut disk, &mut rng, &mut n).append("log", b"bbbb");
        let options = DiskOptions {
            crash_keeps_unsynced_prefix: false,
            torn_writes: false,
            ..DiskOptions::default()
        };
        disk.crash(&mut rng, &options);
        assert_eq!(disk.peek("log"), Some(&b"aaaa"[..]));
    }

    #[test]
    fn a_kill_keeps_appends_but_undoes_an_unsynced_replacement() {
        let mut disk = Disk::default();
        let mut rng = stream(3, "disk");
        let mut n = 0;
        handle(&mut disk, &mut rng, &mut n).write_all("epoch", b"1");
        let target = disk.fsync_target("epoch");
        disk.complete_fsync("epoch", target);
        handle(&mut disk, &mut rng, &mut n).write_all("epoch", b"2");
        handle(&mut disk, &mut rng, &mut n).append("epoch", b"+");
        handle(&mut disk, &mut rng, &mut n).append("log", b"unsynced");
        handle(&mut disk, &mut rng, &mut n).write_all("fresh", b"never synced");
        assert_eq!(disk.kill(), 3);
        assert_eq!(disk.peek("epoch"), Some(&b"1"[..]));
        assert_eq!(disk.peek("log"), Some(&b"unsynced"[..]));
        assert_eq!(disk.durable("log"), Some(&b"unsynced"[..]), "written back");
        assert_eq!(disk.peek("fresh"), None);
        // A synced replacement survives a kill.
        handle(&mut disk, &mut rng, &mut n).write_all("epoch", b"3");
        let target = disk.fsync_target("epoch");
        disk.complete_fsync("epoch", target);
        assert_eq!(disk.kill(), 0);
        assert_eq!(disk.peek("epoch"), Some(&b"3"[..]));
    }

    /// ZooKeeper's epoch-file idiom: the tmp file's plain writes survive a kill (page
    /// cache), a power loss keeps only what was fsynced, and the rename after the fsync
    /// carries the durable content to the real name.
    #[test]
    fn a_renamed_fsynced_file_keeps_its_durability_and_a_tmp_survives_a_kill() {
        let mut disk = Disk::default();
        let mut rng = stream(4, "disk");
        let mut n = 0;
        handle(&mut disk, &mut rng, &mut n).append("e.tmp", b"1");
        let target = disk.fsync_target("e.tmp");
        disk.complete_fsync("e.tmp", target);
        handle(&mut disk, &mut rng, &mut n).rename("e.tmp", "e");
        assert_eq!(disk.peek("e.tmp"), None);
        assert_eq!(disk.durable("e"), Some(&b"1"[..]));
        // An unsynced tmp write: a kill keeps it, the real name keeps its old content.
        handle(&mut disk, &mut rng, &mut n).truncate("e.tmp", 0);
        handle(&mut disk, &mut rng, &mut n).append("e.tmp", b"2");
        assert_eq!(disk.kill(), 0);
        assert_eq!(disk.peek("e.tmp"), Some(&b"2"[..]));
        assert_eq!(disk.peek("e"), Some(&b"1"[..]));
        // A power loss without the prefix option loses an unsynced tmp write.
        handle(&mut disk, &mut rng, &mut n).truncate("e.tmp", 0);
        handle(&mut disk, &mut rng, &mut n).append("e.tmp", b"3");
        let options = DiskOptions {
            crash_keeps_unsynced_prefix: false,
            torn_writes: false,
            ..DiskOptions::default()
        };
        disk.crash(&mut rng, &options);
        assert_eq!(
            disk.peek("e.tmp"),
            Some(&b"2"[..]),
            "the kill wrote it back"
        );
        assert_eq!(disk.peek("e"), Some(&b"1"[..]));
        // Renaming a file that does not exist changes nothing.
        handle(&mut disk, &mut rng, &mut n).rename("nothing", "e");
        assert_eq!(disk.peek("e"), Some(&b"1"[..]));
    }

    #[test]
    fn fsync_covers_only_writes_before_it_was_issued() {
        let mut disk = Disk::default();
        let mut rng = stream(2, "disk");
        let mut n = 0;
        handle(&mut disk, &mut rng, &mut n).append("log", b"one");
        let target = disk.fsync_target("log");
        handle(&mut disk, &mut rng, &mut n).append("log", b"two");
        disk.complete_fsync("log", target);
        assert_eq!(disk.durable("log"), Some(&b"one"[..]));
        assert_eq!(disk.peek("log"), Some(&b"onetwo"[..]));
    }
}
