//! A partition's log: an append-only sequence of record batches in segment files on the
//! node's virtual disk (Kafka's `LocalLog` / `LogSegment`), with the log end offset (LEO), the
//! log start offset and the recovery point (the offset below which everything is fsynced).
//!
//! Files: `<dir>/<base offset, 20 digits>.log`, one per segment, each a run of framed batches
//! (see [`batch`]). A segment is rolled when the next batch would push it past
//! `segment_bytes`. Appends are page-cache writes: the caller decides when to fsync (Kafka's
//! `log.flush.interval.messages` / `.ms`, both "never" by default) through [`Log::flush_plan`]
//! and reports completion with [`Log::mark_flushed`].
//!
//! Fault model handled by [`Log::recover`]: a power loss drops a suffix of the unsynced writes
//! of *each file independently* and may tear the first dropped append; reads may be
//! corrupted (read again: a cut is believed only if every read shows it). So recovery cuts a
//! torn frame at the end of a segment; ends the log at the first segment that starts past
//! the offset reached so far (its predecessor lost its unsynced tail while it kept its own);
//! or whose first batch has an older leader epoch than the log so far (its rewrite was
//! lost); and drops a segment that starts before that offset (an older file whose removal
//! was never synced). A frame that stays bad while more bytes follow it, or batches going
//! backwards inside a file, are corruption: recovery refuses them. A batch past the end of
//! the one before it in a file is the hole a truncation inside a batch leaves (see
//! [`Log::truncate_to`]) and is kept, as Kafka keeps it; the LEO after recovery is the end
//! of the last batch (`LogLoader`), so a hole at the end of the log is gone.
//! Recovery validates every batch, not only those above the recovery point as Kafka does:
//! the batches are read into memory anyway. A broker should run the flush plan right after
//! recovery, so that what recovery removed or cut stays removed across another power loss.
//!
//! May depend on: `node` (DiskIo, checksum), `kafka::stamp`.

pub mod batch;

use crate::kafka::stamp::Stamp;
use crate::node::DiskIo;
use batch::{decode_frame, Batch, Frame};

/// How many times a file that fails its checksums is read again before giving up.
const READ_ATTEMPTS: usize = 5;

/// Per-log settings (Kafka's topic-level `segment.bytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        // Kafka's default is 1 GiB; small segments make rolling and multi-segment recovery
        // happen in simulated runs.
        LogConfig {
            segment_bytes: 64 * 1024,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    base_offset: u64,
    file: String,
    size: u64,
}

/// Files to fsync so that everything below `offset` is durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushPlan {
    pub files: Vec<String>,
    pub offset: u64,
    truncations: u64,
}

/// The log as the broker's page cache shows it.
#[derive(Clone, Debug)]
pub struct Log {
    dir: String,
    config: LogConfig,
    segments: Vec<Segment>,
    /// Every batch, in offset order, with the end position of its frame in its segment.
    batches: Vec<(Batch, u64)>,
    log_start_offset: u64,
    log_end_offset: u64,
    recovery_point: u64,
    /// Segment files written, truncated or removed since the last flush plan.
    dirty: Vec<String>,
    truncations: u64,
    /// Fresh at every change (see [`crate::kafka::stamp`]).
    stamp: Stamp,
}

/// What [`Log::recover`] rebuilt.
#[derive(Debug)]
pub struct Recovered {
    pub log: Log,
    /// The offset at which recovery cut a torn or orphaned tail, if it did.
    pub truncated_at: Option<u64>,
}

pub fn segment_file(dir: &str, base_offset: u64) -> String {
    format!("{dir}/{base_offset:020}.log")
}

fn parse_segment_name(dir: &str, name: &str) -> Option<u64> {
    let rest = name.strip_prefix(dir)?.strip_prefix('/')?;
    let digits = rest.strip_suffix(".log")?;
    (digits.len() == 20).then(|| digits.parse().ok())?
}

impl Log {
    /// An empty log whose first offset will be `start_offset`. Writes nothing.
    pub fn new(dir: &str, config: LogConfig, start_offset: u64) -> Log {
        Log {
            dir: dir.to_string(),
            config,
            segments: Vec::new(),
            batches: Vec::new(),
            log_start_offset: start_offset,
            log_end_offset: start_offset,
            recovery_point: start_offset,
            dirty: Vec::new(),
            truncations: 0,
            stamp: Stamp::fresh(),
        }
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }
    pub fn log_end_offset(&self) -> u64 {
        self.log_end_offset
    }
    pub fn log_start_offset(&self) -> u64 {
        self.log_start_offset
    }
    /// Fresh at every change (see [`crate::kafka::stamp`]).
    pub fn stamp(&self) -> u64 {
        self.stamp.get()
    }
    pub fn recovery_point(&self) -> u64 {
        self.recovery_point
    }
    /// Every batch, in offset order.
    pub fn batches(&self) -> impl DoubleEndedIterator<Item = &Batch> + ExactSizeIterator {
        self.batches.iter().map(|(b, _)| b)
    }
    pub fn last_batch(&self) -> Option<&Batch> {
        self.batches.last().map(|(b, _)| b)
    }
    /// Records appended since the recovery point (for `log.flush.interval.messages`).
    pub fn unflushed_messages(&self) -> u64 {
        self.log_end_offset - self.recovery_point
    }
    /// The segment files, oldest first.
    pub fn segment_files(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.file.clone()).collect()
    }

    /// Appends a batch at or past the LEO (page cache only; past it only for a follower
    /// copying a leader's log across a hole, as Kafka's follower append allows any first
    /// offset not below the LEO). The batch must not carry an older leader epoch than the
    /// last batch (k-epoch-mono).
    pub fn append(&mut self, disk: &mut dyn DiskIo, batch: Batch) {
        self.stamp.bump();
        assert!(
            batch.base_offset >= self.log_end_offset,
            "{}: append must start at the log end offset",
            self.dir
        );
        if let Some(last) = self.last_batch() {
            assert!(
                batch.leader_epoch >= last.leader_epoch,
                "{}: leader epoch {} after {}",
                self.dir,
                batch.leader_epoch,
                last.leader_epoch
            );
        }
        let bytes = batch.encode();
        // No roll across a hole at the end: recovery takes a segment based past its
        // predecessor's last batch for one whose predecessor lost its tail (Kafka rolls at
        // the LEO there; keeping the batch in the current file reads back the same).
        let hole_at_end = self.physical_end() < self.log_end_offset;
        let roll = match self.segments.last() {
            None => true,
            Some(s) => {
                !hole_at_end
                    && s.size > 0
                    && s.size + bytes.len() as u64 > self.config.segment_bytes
            }
        };
        if roll {
            self.segments.push(Segment {
                base_offset: batch.base_offset,
                file: segment_file(&self.dir, batch.base_offset),
                size: 0,
            });
        }
        let seg = self.segments.last_mut().expect("a segment");
        seg.size += bytes.len() as u64;
        // Handed over, not copied: the simulated disk keeps the buffer as the pending write.
        disk.append_vec(&seg.file, bytes);
        let end = seg.size;
        if !self.dirty.contains(&seg.file) {
            self.dirty.push(seg.file.clone());
        }
        self.log_end_offset = batch.next_offset();
        self.batches.push((batch, end));
    }

    /// Kafka's `LocalLog.truncateTo`: removes every batch that holds an offset >= `offset`
    /// (a batch straddling `offset` goes whole: `LogSegment.truncateTo` cuts the file at the
    /// start of the batch holding it) and sets the LEO to `offset` itself
    /// (`updateLogEndOffset(targetOffset)`), so a straddling batch leaves a hole between the
    /// end of the last batch kept and the LEO. The fetcher resumes at the LEO, which is the
    /// leader's batch boundary it was told to truncate to; the hole stays in the log (reads
    /// skip it, as Kafka's segment reads return the first batch past an offset) until a
    /// restart's recovery ends the log at its last batch again. Returns the new LEO.
    pub fn truncate_to(&mut self, disk: &mut dyn DiskIo, offset: u64) -> u64 {
        self.truncate(disk, offset, true)
    }

    /// Like [`Log::truncate_to`], but the LEO ends at the last batch kept, below `offset`
    /// when a batch straddled it: the pre-0.11 followers of the bug modes, whose messages
    /// carried their own offsets, never left a hole.
    pub fn truncate_to_batch(&mut self, disk: &mut dyn DiskIo, offset: u64) -> u64 {
        self.truncate(disk, offset, false)
    }

    /// The end of the last batch (the log start when there is none): below the LEO when a
    /// truncation left a hole at the end.
    pub fn physical_end(&self) -> u64 {
        self.last_batch()
            .map_or(self.log_start_offset, Batch::next_offset)
    }

    fn truncate(&mut self, disk: &mut dyn DiskIo, offset: u64, hole: bool) -> u64 {
        self.stamp.bump();
        if offset >= self.log_end_offset {
            return self.log_end_offset;
        }
        if offset < self.log_start_offset {
            // Kafka's truncateFullyAndStartAt: nothing of the old log is kept.
            for s in self.segments.drain(..) {
                disk.remove(&s.file);
            }
            self.batches.clear();
            self.log_start_offset = offset;
            self.log_end_offset = offset;
            self.recovery_point = offset;
            self.truncations += 1;
            return offset;
        }
        let keep = self.first_batch_from(offset);
        self.batches.truncate(keep);
        let end = self.physical_end();
        self.log_end_offset = if hole { offset } else { end };
        let last_end = self.batches.last().map(|(_, end)| *end);
        // The segments based past the new LEO go (`segments.filter(_.baseOffset > target)`);
        // the last one left is cut after its last batch kept, to nothing if it holds none
        // (the segment of the straddling batch, based at or below the target, stays).
        while let Some(seg) = self.segments.last_mut() {
            let gone = match hole {
                true => seg.base_offset > offset,
                false => seg.base_offset >= end,
            };
            if gone {
                // The removal stays in the flush plan: fsyncing a removed file makes the
                // removal durable (what a directory fsync does on a real file system).
                disk.remove(&seg.file);
                if !self.dirty.contains(&seg.file) {
                    self.dirty.push(seg.file.clone());
                }
                self.segments.pop();
                continue;
            }
            let new_size = match last_end {
                Some(pos) if seg.base_offset < end => pos,
                _ => 0,
            };
            if new_size < seg.size {
                disk.truncate(&seg.file, new_size);
                seg.size = new_size;
                if !self.dirty.contains(&seg.file) {
                    self.dirty.push(seg.file.clone());
                }
            }
            break;
        }
        let leo = self.log_end_offset;
        self.recovery_point = self.recovery_point.min(end);
        self.truncations += 1;
        leo
    }

    /// Whole batches from the one holding `from`, stopping before `upper_bound` (the HW for a
    /// consumer, the LEO for a follower) and after at least one batch once `max_records` is
    /// reached.
    pub fn read(&self, from: u64, max_records: u64, upper_bound: u64) -> Vec<Batch> {
        let first = self.first_batch_from(from);
        // Most reads return one batch or none: room for the one, grown past it if need be.
        let mut out = Vec::with_capacity(usize::from(first < self.batches.len()));
        let mut records = 0u64;
        for (b, _) in &self.batches[first..] {
            if b.last_offset() >= upper_bound || (!out.is_empty() && records >= max_records) {
                break;
            }
            records += b.records.len() as u64;
            out.push(b.clone());
        }
        out
    }

    /// Whole batches from the one holding `from` (or the first one after it) to the end,
    /// borrowed: what [`Log::read`] returns without an upper bound, without the copies.
    pub fn batches_from(&self, from: u64) -> impl Iterator<Item = &Batch> {
        self.batches[self.first_batch_from(from)..]
            .iter()
            .map(|(b, _)| b)
    }

    /// The index of the first batch whose last offset is >= `offset`. Readers (fetches,
    /// the monitor) nearly always ask for the last few batches of a long log, so this
    /// gallops back from the end before a binary search: the same answer as a
    /// `partition_point` over the whole log, in a few probes near the tail.
    fn first_batch_from(&self, offset: u64) -> usize {
        let below = |i: usize| self.batches[i].0.last_offset() < offset;
        // Invariant: every batch from `hi` on holds offsets >= `offset`.
        let mut hi = self.batches.len();
        let mut step = 1;
        while hi > 0 {
            let probe = hi.saturating_sub(step);
            if below(probe) {
                let lo = probe + 1;
                return lo
                    + self.batches[lo..hi].partition_point(|(b, _)| b.last_offset() < offset);
            }
            hi = probe;
            step *= 2;
        }
        0
    }

    /// The segment files to fsync to make the whole current log durable. Call
    /// [`Log::mark_flushed`] with the plan once every fsync completed.
    pub fn flush_plan(&mut self) -> FlushPlan {
        self.stamp.bump();
        FlushPlan {
            files: std::mem::take(&mut self.dirty),
            offset: self.log_end_offset,
            truncations: self.truncations,
        }
    }

    /// Every fsync of `plan` completed: the recovery point moves up to its offset, unless the
    /// log was truncated meanwhile (the flushed bytes may no longer be the log's).
    pub fn mark_flushed(&mut self, plan: &FlushPlan) {
        self.stamp.bump();
        if plan.truncations == self.truncations {
            self.recovery_point = self
                .recovery_point
                .max(plan.offset.min(self.log_end_offset));
        }
    }

    /// Rebuilds the log of `dir` from its segment files alone. `log_start_offset` and
    /// `recovery_point` come from their checkpoint files (0 when absent): the first segment
    /// must start at the former, and the latter only bounds the result's recovery point.
    /// See the module doc for what is cut and what is refused. The removals and truncations
    /// recovery makes are in the next flush plan.
    pub fn recover(
        disk: &mut dyn DiskIo,
        dir: &str,
        config: LogConfig,
        log_start_offset: u64,
        recovery_point: u64,
    ) -> Result<Recovered, String> {
        let mut bases: Vec<(u64, String)> = disk
            .list()
            .into_iter()
            .filter_map(|f| parse_segment_name(dir, &f).map(|b| (b, f)))
            .collect();
        bases.sort();
        let mut log = Log::new(dir, config, log_start_offset);
        let mut truncated_at = None;
        for (base, file) in bases {
            if truncated_at.is_some() || base > log.log_end_offset {
                // A gap: a predecessor lost its unsynced tail while this file kept its own
                // writes. The log ends before it.
                truncated_at.get_or_insert(log.log_end_offset);
                log.discard(disk, &file);
                continue;
            }
            if base < log.log_end_offset {
                // Overlaps the log so far: an older file whose removal was never synced.
                log.discard(disk, &file);
                continue;
            }
            let (batches, valid_len, cut) = read_segment(disk, &file, base)?;
            let last_epoch = log.last_batch().map_or(0, |b| b.leader_epoch);
            if batches
                .first()
                .is_some_and(|(b, _)| b.leader_epoch < last_epoch)
            {
                // An older history than the segment before it: this file's rewrite (after a
                // truncation) was lost while its predecessor's was not.
                truncated_at = Some(log.log_end_offset);
                log.discard(disk, &file);
                continue;
            }
            let Some((last, _)) = batches.last() else {
                log.discard(disk, &file);
                if cut {
                    truncated_at = Some(log.log_end_offset);
                }
                continue;
            };
            log.log_end_offset = last.next_offset();
            if cut {
                disk.truncate(&file, valid_len);
                log.dirty.push(file.clone());
                truncated_at = Some(log.log_end_offset);
            }
            log.segments.push(Segment {
                base_offset: base,
                file,
                size: valid_len,
            });
            log.batches.extend(batches);
        }
        log.recovery_point = recovery_point.clamp(log.log_start_offset, log.log_end_offset);
        // Segments holding offsets past the recovery point may live only in the page cache
        // (a killed process): the next flush must fsync them before the recovery point
        // moves past them (Kafka's `flush` covers every segment from the recovery point).
        let ends: Vec<u64> = (log.segments.iter().skip(1))
            .map(|s| s.base_offset)
            .chain([log.log_end_offset])
            .collect();
        for (seg, end) in log.segments.iter().zip(ends) {
            if end > log.recovery_point && !log.dirty.contains(&seg.file) {
                log.dirty.push(seg.file.clone());
            }
        }
        Ok(Recovered { log, truncated_at })
    }
}

impl Log {
    /// Removes a file recovery does not keep, and remembers to make that durable.
    fn discard(&mut self, disk: &mut dyn DiskIo, file: &str) {
        self.stamp.bump();
        disk.remove(file);
        self.dirty.push(file.to_string());
    }
}

/// One segment's batches with their end positions, the valid length, and whether a torn
/// tail follows it. Retries reads that fail their checksums.
type SegmentRead = (Vec<(Batch, u64)>, u64, bool);

fn read_segment(disk: &mut dyn DiskIo, file: &str, base: u64) -> Result<SegmentRead, String> {
    // A corrupted read of the last frame looks exactly like a torn tail, so a cut is only
    // believed when every read shows it; the longest valid parse wins.
    let mut best: Option<SegmentRead> = None;
    let mut last_err = String::new();
    for _ in 0..READ_ATTEMPTS {
        let bytes = disk.read(file).unwrap_or_default();
        match parse_segment(&bytes, base) {
            Ok((batches, valid_len)) => {
                let cut = valid_len < bytes.len() as u64;
                if !cut {
                    return Ok((batches, valid_len, false));
                }
                if best.as_ref().is_none_or(|b| valid_len > b.1) {
                    best = Some((batches, valid_len, true));
                }
            }
            Err(at) => last_err = format!("{file}: corrupted batch at byte {at}"),
        }
    }
    best.ok_or(last_err)
}

/// Parses a segment's frames. Ok((batches, valid length)) when the bytes are whole frames
/// followed by at most one torn frame; Err(position) when a frame is bad while more bytes
/// follow it, or the offsets inside the file go backwards (below `base` or the end of the
/// batch before). A batch starting past the end of the one before is kept: the hole a
/// truncation inside a batch left (`LogSegment.recover` does not ask for dense offsets).
fn parse_segment(bytes: &[u8], base: u64) -> Result<(Vec<(Batch, u64)>, u64), usize> {
    let mut batches = Vec::new();
    let mut pos = 0usize;
    let mut next = base;
    while pos < bytes.len() {
        match decode_frame(&bytes[pos..]) {
            Frame::Batch(b, len) => {
                let epoch_back = batches
                    .last()
                    .is_some_and(|(p, _): &(Batch, u64)| b.leader_epoch < p.leader_epoch);
                if b.base_offset < next || epoch_back {
                    return Err(pos);
                }
                next = b.next_offset();
                pos += len;
                batches.push((b, pos as u64));
            }
            Frame::Short => break,
            Frame::Bad => {
                // A torn append whose header survived: its declared length runs to (or past)
                // the end of the file. Anything shorter with bytes after it is corruption.
                let declared = bytes
                    .get(pos..pos + 4)
                    .map(|l| u32::from_le_bytes(l.try_into().expect("4 bytes")) as usize);
                let torn =
                    declared.is_none_or(|len| pos + batch::FRAME_HEADER + len >= bytes.len());
                if !torn {
                    return Err(pos);
                }
                break;
            }
        }
    }
    Ok((batches, pos as u64))
}

#[cfg(test)]
mod tests;
