//! One partition: its segments, log start offset, high watermark (= durable offset) and
//! producer state. Appends run under the partition's own lock; fsync happens on the flusher.

use super::batch::{self, BatchError, BatchHeader, HEADER_LEN};
use super::flush::{Flushable, FlushedRange, Flusher};
use super::producer_state::{ProducerStates, SequenceCheck, SequenceError};
use super::records;
use super::segment::{drop_cached, file_name, read_exact, SealedSegment, Segment, PAGE_SIZE};
use super::{now_ms, LogConfig};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// Bytes read in one go while looking for the batch that holds a given offset.
const SCAN_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    pub last_offset: i64,
    /// Set when the topic uses LogAppendTime.
    pub log_append_time: Option<i64>,
    pub log_start_offset: i64,
    /// The batch was a retry of one already stored; nothing was written.
    pub duplicate: bool,
}

#[derive(Debug)]
pub enum AppendError {
    Batch(BatchError),
    TooLarge,
    /// A CreateTime timestamp outside message.timestamp.before/after.max.ms.
    InvalidTimestamp,
    Sequence(SequenceError),
    /// A transactional or control batch while transactions are not supported.
    Transactional,
    Deleted,
    /// An earlier write or fsync failed; the partition takes no more writes (Kafka: log dir offline).
    Offline,
    Io(io::Error),
}

#[derive(Debug, Clone)]
pub enum ReadOutcome {
    Records(Bytes),
    OutOfRange,
    /// The offset is below the local log start but held by the tier.
    Remote,
}

#[derive(Debug, Clone, Copy)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub log_end: i64,
}

/// What waiters (acks=all producers, long-poll fetches) watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    /// Offsets below this are fsynced and visible (the high watermark).
    pub offset: i64,
    /// Writes failed; nothing more will become durable.
    pub failed: bool,
}

struct State {
    segments: BTreeMap<i64, Segment>,
    /// First offset readable anywhere: the tier's start when it holds older data.
    log_start: i64,
    /// Offsets [start, end) copied to the tier and named by its manifest.
    remote: Option<(i64, i64)>,
    /// Offsets below this are fsynced and visible to consumers.
    high_watermark: i64,
    /// Where the high watermark falls: (segment base offset, byte position in it).
    hw_segment: i64,
    hw_position: u64,
    producers: ProducerStates,
    config: LogConfig,
    /// Files written since the last fsync.
    unflushed: Vec<Arc<File>>,
    /// (segment base, position) up to which durable bytes were reported to the flusher.
    flushed_mark: (i64, u64),
    dir_dirty: bool,
    /// Base of the newest segment whose file is known to survive a crash (its directory was
    /// fsynced). Until a sealed segment's successor is, a crash could make the sealed one
    /// active again, so it is not offered to the tier.
    durable_segment_base: i64,
    flush_queued: bool,
    deleted: bool,
    failed: bool,
}

impl State {
    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a partition always has a segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a partition always has a segment")
    }
    fn log_end(&self) -> i64 {
        self.active().next_offset()
    }
    fn local_start(&self) -> i64 {
        *self
            .segments
            .keys()
            .next()
            .expect("a partition always has a segment")
    }
    /// The log start follows the local segments, or the tier when it reaches further back.
    fn refresh_log_start(&mut self) {
        let local = self.local_start();
        self.log_start = match self.remote {
            Some((start, end)) if start < local && end >= local => start,
            _ => local,
        };
    }
    /// Byte ranges made durable since the last call, now that the segment at `flushed_base`
    /// is fsynced up to `flushed_size` (and every older one whole).
    fn newly_flushed(&mut self, flushed_base: i64, flushed_size: u64) -> Vec<FlushedRange> {
        let (mark_base, mark_position) = self.flushed_mark;
        if flushed_base < mark_base {
            return Vec::new();
        }
        let ranges = self
            .segments
            .range(mark_base..=flushed_base)
            .map(|(&base, seg)| FlushedRange {
                segment: base,
                from: if base == mark_base { mark_position } else { 0 },
                to: if base == flushed_base {
                    flushed_size.min(seg.size())
                } else {
                    seg.size()
                },
            })
            .filter(|r| r.to > r.from)
            .collect();
        self.flushed_mark = (flushed_base, flushed_size);
        ranges
    }

    /// Byte limit readable in `seg` (everything below the high watermark).
    fn readable_limit(&self, seg: &Segment) -> u64 {
        use std::cmp::Ordering::*;
        match seg.base_offset().cmp(&self.hw_segment) {
            Less => seg.size(),
            Equal => self.hw_position,
            Greater => 0,
        }
    }
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    dir: PathBuf,
    state: Mutex<State>,
    durability: watch::Sender<Durability>,
    /// Serializes flushes (flusher thread vs. shutdown) so the high watermark never passes an
    /// fsync still in progress.
    flush_lock: Mutex<()>,
    flusher: Flusher,
}

fn list_bases(dir: &Path) -> io::Result<Vec<i64>> {
    let mut bases: Vec<i64> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .into_string()
                .ok()?
                .strip_suffix(".log")?
                .parse::<i64>()
                .ok()
        })
        .collect();
    bases.sort_unstable();
    Ok(bases)
}

/// fsyncs every file of the partition and the directory: whatever a killed process left in
/// the page cache becomes durable before it is served as such.
fn sync_everything(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            let _ = fs::remove_file(&path);
            continue;
        }
        File::open(&path)?.sync_all()?;
    }
    File::open(dir)?.sync_all()
}

impl Partition {
    /// Opens (or creates) the partition in `dir`, recovering the tail after a crash.
    pub fn open(
        topic: &str,
        index: i32,
        dir: PathBuf,
        config: LogConfig,
        flusher: Flusher,
    ) -> io::Result<Arc<Partition>> {
        fs::create_dir_all(&dir)?;
        let bases = list_bases(&dir)?;
        let mut segments = BTreeMap::new();
        let mut producers = ProducerStates::default();
        if bases.is_empty() {
            segments.insert(0, Segment::create(&dir, 0)?);
        } else {
            let last = *bases.last().unwrap();
            // The newest producer snapshot at or below the active segment saves replaying old data.
            let snapshot = bases
                .iter()
                .rev()
                .filter_map(|b| {
                    let bytes = fs::read(dir.join(file_name(*b, "snapshot"))).ok()?;
                    Some((*b, ProducerStates::from_json(&bytes)?))
                })
                .next();
            let replay_from = match snapshot {
                Some((at, states)) => {
                    producers = states;
                    at
                }
                None => bases[0],
            };
            let now = now_ms();
            for pair in bases.windows(2) {
                let seg =
                    Segment::open_sealed(&dir, pair[0], pair[1], config.index_interval_bytes)?;
                if seg.base_offset() >= replay_from {
                    replay_headers(&seg, &mut producers, now)?;
                }
                segments.insert(pair[0], seg);
            }
            let (active, truncated) =
                Segment::recover(&dir, last, config.index_interval_bytes, |h, _| {
                    if last >= replay_from {
                        producers.record(h, h.base_offset, now)
                    }
                })?;
            if truncated > 0 {
                tracing::warn!(
                    topic,
                    partition = index,
                    bytes = truncated,
                    "truncated a torn or corrupt log tail"
                );
            }
            segments.insert(last, active);
        }
        sync_everything(&dir)?;
        let log_start = *segments.keys().next().unwrap();
        let (hw_segment, hw_position, high_watermark) = {
            let a = segments.values().next_back().unwrap();
            (a.base_offset(), a.size(), a.next_offset())
        };
        let (durability, _) = watch::channel(Durability {
            offset: high_watermark,
            failed: false,
        });
        Ok(Arc::new(Partition {
            topic: topic.to_string(),
            index,
            dir,
            state: Mutex::new(State {
                segments,
                log_start,
                remote: None,
                high_watermark,
                hw_segment,
                hw_position,
                producers,
                config,
                unflushed: Vec::new(),
                flushed_mark: (hw_segment, hw_position),
                dir_dirty: false,
                durable_segment_base: hw_segment,
                flush_queued: false,
                deleted: false,
                failed: false,
            }),
            durability,
            flush_lock: Mutex::new(()),
            flusher,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Appends undo partial writes or take the partition offline, so a poisoned lock
        // still guards consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_config(&self, config: LogConfig) {
        self.lock().config = config;
    }

    pub fn config(&self) -> LogConfig {
        self.lock().config.clone()
    }

    pub fn offsets(&self) -> Offsets {
        let st = self.lock();
        Offsets {
            log_start: st.log_start,
            high_watermark: st.high_watermark,
            log_end: st.log_end(),
        }
    }

    /// Watches the durable offset: wakes acks=all producers and long-poll fetches.
    pub fn subscribe(&self) -> watch::Receiver<Durability> {
        self.durability.subscribe()
    }

    /// Takes the partition offline after an I/O failure (Kafka's log-dir failure): no more
    /// appends, no further durability, waiting producers fail at once.
    fn fail(&self, st: &mut State, what: &str, e: &io::Error) {
        tracing::error!(topic = %self.topic, partition = self.index, error = %e, "{what} failed; partition is offline until restart");
        st.failed = true;
        self.durability.send_modify(|d| d.failed = true);
    }

    /// Validates and appends one record batch, assigning offsets by patching its header.
    pub fn append(self: &Arc<Self>, batch: &[u8]) -> Result<AppendOutcome, AppendError> {
        let header = batch::validate(batch).map_err(AppendError::Batch)?;
        if header.is_transactional() || header.is_control() {
            return Err(AppendError::Transactional);
        }
        // Size first: the record walk below must never run on an oversized batch.
        if batch.len() > self.lock().config.max_message_bytes {
            return Err(AppendError::TooLarge);
        }
        let stats = records::check_records(batch, &header).map_err(AppendError::Batch)?;
        let mut st = self.lock();
        if st.deleted {
            return Err(AppendError::Deleted);
        }
        if st.failed {
            return Err(AppendError::Offline);
        }
        let now = now_ms();
        let too_old = stats.min_timestamp >= 0
            && now.saturating_sub(stats.min_timestamp) > st.config.timestamp_before_max_ms;
        let too_new = stats.max_timestamp >= 0
            && stats.max_timestamp.saturating_sub(now) > st.config.timestamp_after_max_ms;
        if !st.config.log_append_time && (too_old || too_new) {
            return Err(AppendError::InvalidTimestamp);
        }
        match st.producers.check(&header).map_err(AppendError::Sequence)? {
            SequenceCheck::Duplicate(prev) => {
                return Ok(AppendOutcome {
                    base_offset: prev.base_offset,
                    last_offset: prev.last_offset,
                    log_append_time: st.config.log_append_time.then_some(now),
                    log_start_offset: st.log_start,
                    duplicate: true,
                })
            }
            SequenceCheck::Append => {}
        }
        if let Err(e) = self.maybe_roll(&mut st, batch.len(), now, false) {
            self.fail(&mut st, "segment roll", &e);
            return Err(AppendError::Io(e));
        }
        let base_offset = st.log_end();
        let log_append_time = st.config.log_append_time;
        let max_timestamp = if log_append_time {
            now
        } else {
            stats.max_timestamp
        };
        let head = batch::patched_header(batch, base_offset, 0, max_timestamp, log_append_time);
        let mut stored = header;
        stored.base_offset = base_offset;
        stored.max_timestamp = max_timestamp;
        let interval = st.config.index_interval_bytes;
        if let Err(e) = st
            .active_mut()
            .append(&head, &batch[HEADER_LEN..], &stored, interval)
        {
            self.fail(&mut st, "segment write", &e);
            return Err(AppendError::Io(e));
        }
        st.producers.record(&stored, base_offset, now);
        let file = st.active().file().clone();
        if !st.unflushed.iter().any(|f| Arc::ptr_eq(f, &file)) {
            st.unflushed.push(file);
        }
        let log_start_offset = st.log_start;
        self.queue_flush(&mut st);
        Ok(AppendOutcome {
            base_offset,
            last_offset: stored.last_offset(),
            log_append_time: log_append_time.then_some(now),
            log_start_offset,
            duplicate: false,
        })
    }

    fn queue_flush(self: &Arc<Self>, st: &mut State) {
        if !st.flush_queued {
            st.flush_queued = true;
            self.flusher.request(self.clone());
        }
    }

    /// Starts a new segment when the active one is full or old (or `force`, for retention).
    fn maybe_roll(&self, st: &mut State, incoming: usize, now: i64, force: bool) -> io::Result<()> {
        let active = st.active();
        let full = active.size() + incoming as u64 > st.config.segment_bytes;
        let old = now - active.created_ms() >= st.config.segment_ms;
        // Relative offsets and positions in the index are 32-bit.
        let overflow = active.next_offset() - active.base_offset() >= i32::MAX as i64
            || active.size() + incoming as u64 >= i32::MAX as u64;
        if active.size() == 0 || !(full || old || overflow || force) {
            return Ok(());
        }
        let mut to_sync = active.seal(&self.dir)?;
        let next = active.next_offset();
        // Producer state as of the new segment's start: recovery replays only from here.
        let snapshot = self.dir.join(file_name(next, "snapshot"));
        let tmp = snapshot.with_extension("snapshot.tmp");
        fs::write(&tmp, st.producers.to_json())?;
        fs::rename(&tmp, &snapshot)?;
        to_sync.push(Arc::new(File::open(&snapshot)?));
        let seg = Segment::create(&self.dir, next)?;
        st.segments.insert(next, seg);
        st.unflushed.extend(to_sync);
        st.dir_dirty = true;
        // Keep only the two newest producer snapshots.
        let old_snapshots: Vec<i64> = st.segments.keys().rev().skip(2).copied().collect();
        for base in old_snapshots {
            let _ = fs::remove_file(self.dir.join(file_name(base, "snapshot")));
        }
        Ok(())
    }

    /// Called on the flusher thread: fsync what was written, then publish the durable offset.
    /// Returns the byte ranges that became durable.
    pub fn flush_now(&self) -> Vec<FlushedRange> {
        let _serial = self.flush_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (files, dir_dirty, log_end, active_base, active_size) = {
            let mut st = self.lock();
            st.flush_queued = false;
            if st.failed || st.deleted {
                return Vec::new();
            }
            let a = st.active();
            let (end, base, size) = (a.next_offset(), a.base_offset(), a.size());
            (
                std::mem::take(&mut st.unflushed),
                std::mem::take(&mut st.dir_dirty),
                end,
                base,
                size,
            )
        };
        for f in &files {
            if let Err(e) = f.sync_data() {
                // A failed fsync may have dropped dirty pages; retrying could "succeed" over lost
                // data, so never acknowledge anything written since (Kafka: log dir offline).
                self.fail(&mut self.lock(), "fsync", &e);
                return Vec::new();
            }
        }
        if dir_dirty {
            if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
                self.fail(&mut self.lock(), "directory fsync", &e);
                return Vec::new();
            }
        }
        let mut st = self.lock();
        if dir_dirty {
            st.durable_segment_base = st.durable_segment_base.max(active_base);
        }
        let flushed = st.newly_flushed(active_base, active_size);
        if log_end > st.high_watermark {
            st.high_watermark = log_end;
            st.hw_segment = active_base;
            st.hw_position = active_size;
            drop(st);
            self.durability.send_modify(|d| d.offset = log_end);
        }
        flushed
    }

    /// Drops a durable range from the page cache (the flusher's budget is exceeded); later
    /// reads below it are treated as cold.
    pub fn drop_cached(&self, range: &FlushedRange) {
        let file = {
            let mut st = self.lock();
            let Some(seg) = st.segments.get_mut(&range.segment) else {
                return;
            };
            seg.mark_cache_dropped_to(range.to / PAGE_SIZE * PAGE_SIZE);
            seg.file().clone()
        };
        drop_cached(&file, range.from / PAGE_SIZE * PAGE_SIZE, range.to);
    }

    /// Reads whole batches starting with the one holding `offset`, up to `max_bytes` (but at
    /// least one batch when `min_one`), never past the high watermark. Offsets between the
    /// high watermark and the log end read as empty, as in Kafka.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> io::Result<ReadOutcome> {
        let (file, mut position, limit, cold_below) = {
            let st = self.lock();
            if offset < st.log_start || offset > st.log_end() {
                return Ok(ReadOutcome::OutOfRange);
            }
            if offset < st.local_start() {
                return Ok(ReadOutcome::Remote);
            }
            if offset >= st.high_watermark {
                return Ok(ReadOutcome::Records(Bytes::new()));
            }
            let mut seg = st.segments.range(..=offset).next_back().map(|(_, s)| s);
            if let Some(s) = seg {
                if offset >= s.next_offset() {
                    seg = st.segments.range(offset + 1..).next().map(|(_, s)| s);
                }
            }
            let Some(seg) = seg else {
                return Ok(ReadOutcome::Records(Bytes::new()));
            };
            (
                seg.file().clone(),
                seg.lookup(offset),
                st.readable_limit(seg),
                seg.cache_dropped_to(),
            )
        };
        // Find the first batch whose last offset reaches `offset`.
        let start = loop {
            if position >= limit {
                return Ok(ReadOutcome::Records(Bytes::new()));
            }
            let chunk = read_exact(&file, position, SCAN_CHUNK.min((limit - position) as usize))?;
            let mut found = None;
            let mut walked = 0usize;
            for (at, h) in batch::headers(&chunk) {
                if h.last_offset() >= offset {
                    found = Some(position + at as u64);
                    break;
                }
                walked = at + h.total_len;
            }
            if let Some(found) = found {
                break found;
            }
            if walked == 0 {
                // A batch larger than the chunk: step over it using its header.
                let h = BatchHeader::parse(&chunk)
                    .map_err(|_| io::Error::other("corrupt batch header in segment"))?;
                if h.last_offset() >= offset {
                    break position;
                }
                walked = h.total_len;
            }
            position += walked as u64;
        };
        let available = (limit - start) as usize;
        let mut data = read_exact(&file, start, max_bytes.min(available))?;
        let whole: usize = batch::headers(&data).map(|(_, h)| h.total_len).sum();
        if whole == 0 {
            if !min_one {
                return Ok(ReadOutcome::Records(Bytes::new()));
            }
            let head = read_exact(&file, start, HEADER_LEN.min(available))?;
            let h = BatchHeader::parse(&head)
                .map_err(|_| io::Error::other("corrupt batch header in segment"))?;
            data = read_exact(&file, start, h.total_len.min(available))?;
        } else {
            data.truncate(whole);
        }
        if start < cold_below {
            // A catch-up read of bytes the page-cache budget let go: do not refill the cache.
            let end = (start + data.len() as u64).min(cold_below);
            drop_cached(
                &file,
                start / PAGE_SIZE * PAGE_SIZE,
                end / PAGE_SIZE * PAGE_SIZE,
            );
        }
        Ok(ReadOutcome::Records(data))
    }

    /// Visits readable batches in offset order from the (segment, position) that `start`
    /// picks, until `visit` returns a result. Start and segment list come from one look at the
    /// state, so retention cannot slide a position into another segment.
    fn scan_batches<R>(
        &self,
        start: impl FnOnce(&State) -> Option<(i64, u64)>,
        mut visit: impl FnMut(&BatchHeader, &File, u64) -> io::Result<Option<R>>,
    ) -> io::Result<Option<R>> {
        let (mut position, targets): (u64, Vec<(Arc<File>, u64)>) = {
            let st = self.lock();
            let Some((base, position)) = start(&st) else {
                return Ok(None);
            };
            let targets = st
                .segments
                .range(base..)
                .map(|(_, s)| (s.file().clone(), st.readable_limit(s)))
                .collect();
            (position, targets)
        };
        for (file, limit) in targets {
            while position + HEADER_LEN as u64 <= limit {
                let head = read_exact(&file, position, HEADER_LEN)?;
                let Ok(h) = BatchHeader::parse(&head) else {
                    return Ok(None);
                };
                if h.total_len as u64 > limit - position {
                    return Ok(None);
                }
                if let Some(found) = visit(&h, &file, position)? {
                    return Ok(Some(found));
                }
                position += h.total_len as u64;
            }
            position = 0;
        }
        Ok(None)
    }

    /// (timestamp, offset) of the first record with timestamp >= `ts` (ListOffsets by time).
    pub fn offset_for_timestamp(&self, ts: i64) -> io::Result<Option<(i64, i64)>> {
        let start = |st: &State| {
            st.segments
                .values()
                .find(|s| s.max_timestamp() >= ts)
                .map(|s| (s.base_offset(), s.lookup_time(ts)))
        };
        self.scan_batches(start, |h, file, at| {
            if h.max_timestamp < ts {
                return Ok(None);
            }
            let batch = read_exact(file, at, h.total_len)?;
            // Only this one batch is walked: if its records do not bear out its header (a
            // compressed batch is stored unwalked), the answer is the offset after it rather
            // than an unbounded scan through more batches.
            let found = records::first_at_or_after(&batch, ts).ok().flatten();
            Ok(Some(
                found.unwrap_or((h.max_timestamp, h.last_offset() + 1)),
            ))
        })
    }

    /// (timestamp, offset) of the first record holding the largest timestamp (ListOffsets -3).
    pub fn offset_of_max_timestamp(&self) -> io::Result<Option<(i64, i64)>> {
        let target = std::cell::Cell::new((0i64, 0i64));
        let start = |st: &State| {
            let mut best: Option<&Segment> = None;
            for s in st
                .segments
                .values()
                .filter(|s| st.readable_limit(s) > 0 && s.max_timestamp() >= 0)
            {
                if best.is_none_or(|b| s.max_timestamp() > b.max_timestamp()) {
                    best = Some(s);
                }
            }
            let s = best?;
            target.set((s.max_timestamp(), s.max_timestamp_batch()));
            Some((s.base_offset(), s.lookup(s.max_timestamp_batch())))
        };
        self.scan_batches(start, |h, file, at| {
            let (max_ts, batch_offset) = target.get();
            if h.base_offset < batch_offset {
                return Ok(None);
            }
            let batch = read_exact(file, at, h.total_len)?;
            Ok(records::first_at_or_after(&batch, max_ts)
                .ok()
                .flatten()
                .or(Some((max_ts, h.base_offset))))
        })
    }

    /// Deletes whole segments past retention.ms / retention.bytes (rolling the active segment
    /// first when it is itself past retention.ms, as Kafka does) and forgets idle producers.
    /// With remote storage the local.retention.* limits apply instead, and only to segments
    /// the tier already holds. Returns how many segments were deleted.
    pub fn apply_retention(&self, now: i64) -> usize {
        let mut doomed = Vec::new();
        let mut rolled = false;
        {
            let mut st = self.lock();
            if st.deleted || st.failed {
                return 0;
            }
            let expiration = st.config.producer_expiration_ms;
            st.producers.expire(now, expiration);
            let (retention_ms, retention_bytes) = st.config.local_limits();
            // Without remote storage everything is deletable; with it, only what the tier holds.
            let deletable_below = match (st.config.remote_storage, st.remote) {
                (false, _) => i64::MAX,
                (true, Some((_, end))) => end,
                (true, None) => i64::MIN,
            };
            let active = st.active();
            let active_expired = retention_ms >= 0
                && active.size() > 0
                && active.max_timestamp() >= 0
                && now - active.max_timestamp() > retention_ms
                && st.high_watermark == active.next_offset();
            if active_expired {
                if let Err(e) = self.maybe_roll(&mut st, 0, now, true) {
                    self.fail(&mut st, "segment roll", &e);
                    return 0;
                }
                rolled = true;
            }
            let mut total: i64 = st.segments.values().map(|s| s.size() as i64).sum();
            let candidates: Vec<(i64, i64, u64, i64)> = st
                .segments
                .values()
                .rev()
                .skip(1) // never the active segment
                .rev()
                .map(|s| (s.base_offset(), s.next_offset(), s.size(), s.max_timestamp()))
                .collect();
            for (base, next, size, max_ts) in candidates {
                if next > st.high_watermark || next > deletable_below {
                    break;
                }
                let by_time = retention_ms >= 0 && max_ts >= 0 && now - max_ts > retention_ms;
                let by_size = retention_bytes >= 0 && total - size as i64 >= retention_bytes;
                if !(by_time || by_size) {
                    break;
                }
                st.segments.remove(&base);
                total -= size as i64;
                doomed.push(base);
            }
            st.refresh_log_start();
        }
        if rolled {
            // The new active segment must be durable before the old one's removal can be.
            self.flush_now();
        }
        for base in &doomed {
            Segment::delete_files(&self.dir, *base);
        }
        if !doomed.is_empty() {
            tracing::info!(topic = %self.topic, partition = self.index, segments = doomed.len(), "retention deleted segments");
        }
        doomed.len()
    }

    /// Sealed segments wholly below the high watermark that start at or after `from`, oldest
    /// first: what the tier may copy.
    pub fn segments_to_upload(&self, from: i64) -> Vec<SealedSegment> {
        let st = self.lock();
        if st.deleted {
            return Vec::new();
        }
        let active = st.active().base_offset();
        st.segments
            .values()
            .filter(|s| s.base_offset() != active)
            .filter(|s| s.base_offset() >= from && s.next_offset() <= st.high_watermark)
            .filter(|s| s.next_offset() <= st.durable_segment_base)
            .map(Segment::as_sealed)
            .collect()
    }

    /// What the tier holds, [start, end), as its manifest says (None: nothing copied yet;
    /// start == end: everything copied was since removed by retention). Local segments below
    /// `end` become deletable by local retention; the log start may move back to `start`.
    pub fn set_remote(&self, range: Option<(i64, i64)>) {
        let mut st = self.lock();
        st.remote = range;
        st.refresh_log_start();
    }

    /// The remote range last set.
    pub fn remote(&self) -> Option<(i64, i64)> {
        self.lock().remote
    }

    /// First offset held locally.
    pub fn local_start(&self) -> i64 {
        self.lock().local_start()
    }

    /// Bytes and segments not yet copied to the tier (upload lag).
    pub fn upload_lag(&self) -> (u64, usize) {
        let st = self.lock();
        let end = st.remote.map(|r| r.1).unwrap_or(i64::MIN);
        let active = st.active().base_offset();
        st.segments
            .values()
            .filter(|s| s.base_offset() != active && s.next_offset() > end)
            .fold((0, 0), |(b, n), s| (b + s.size(), n + 1))
    }

    /// Seals the active segment (if it holds anything) so the next append starts a new one.
    pub fn roll(self: &Arc<Self>) -> io::Result<()> {
        let mut st = self.lock();
        if st.deleted || st.failed {
            return Err(io::Error::other("partition is offline or deleted"));
        }
        if let Err(e) = self.maybe_roll(&mut st, 0, now_ms(), true) {
            self.fail(&mut st, "segment roll", &e);
            return Err(e);
        }
        self.queue_flush(&mut st);
        Ok(())
    }

    /// Deletes the sealed, durable segments that lie wholly below `offset`, moving the log
    /// start up to the first offset kept. Returns how many segments were deleted.
    pub fn delete_segments_before(&self, offset: i64) -> usize {
        let mut doomed = Vec::new();
        {
            let mut st = self.lock();
            if st.deleted || st.failed {
                return 0;
            }
            let active = st.active().base_offset();
            let sealed: Vec<(i64, i64)> = st
                .segments
                .values()
                .filter(|s| s.base_offset() != active)
                .map(|s| (s.base_offset(), s.next_offset()))
                .collect();
            for (base, next) in sealed {
                if next > offset || next > st.high_watermark {
                    break;
                }
                st.segments.remove(&base);
                doomed.push(base);
            }
            st.refresh_log_start();
        }
        for base in &doomed {
            Segment::delete_files(&self.dir, *base);
        }
        doomed.len()
    }

    /// Makes everything written durable (graceful shutdown).
    pub fn close(&self) {
        let _ = self.flush_now();
    }

    /// Stops appends and removes the partition's files.
    pub fn delete(&self) -> io::Result<()> {
        let mut st = self.lock();
        st.deleted = true;
        st.unflushed.clear();
        st.dir_dirty = false;
        drop(st);
        // Producers still waiting for durability get an answer now, not a timeout.
        self.durability.send_modify(|d| d.failed = true);
        fs::remove_dir_all(&self.dir)
    }
}

impl Flushable for Partition {
    fn flush_now(&self) -> Vec<FlushedRange> {
        Partition::flush_now(self)
    }
    fn drop_cached(&self, range: &FlushedRange) {
        Partition::drop_cached(self, range)
    }
    fn name(&self) -> (&str, i32) {
        (&self.topic, self.index)
    }
}

fn replay_headers(seg: &Segment, producers: &mut ProducerStates, now: i64) -> io::Result<()> {
    let mut pos = 0u64;
    let mut head = [0u8; HEADER_LEN];
    while pos + HEADER_LEN as u64 <= seg.size() {
        seg.file().read_exact_at(&mut head, pos)?;
        let Ok(h) = BatchHeader::parse(&head) else {
            break;
        };
        producers.record(&h, h.base_offset, now);
        pos += h.total_len as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 1000,
            index_interval_bytes: 100,
            timestamp_after_max_ms: i64::MAX,
            ..LogConfig::default()
        }
    }

    fn wait_hw(p: &Partition, at_least: i64) {
        for _ in 0..500 {
            if p.offsets().high_watermark >= at_least {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("high watermark never reached {at_least}");
    }

    #[test]
    fn append_roll_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start();
        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher.clone()).unwrap();
        for i in 0..100 {
            // batch i holds timestamps 1000+i and 1001+i
            let out = p.append(&make_batch(2, 1000 + i, None)).unwrap();
            assert_eq!(out.base_offset, i * 2);
        }
        wait_hw(&p, 200);
        assert!(p.lock().segments.len() > 5, "segments rolled");
        // read from the middle of a batch returns that whole batch first
        let ReadOutcome::Records(data) = p.read(77, 10_000, true).unwrap() else {
            panic!()
        };
        let first = BatchHeader::parse(&data).unwrap();
        assert_eq!(first.base_offset, 76);
        // max_bytes smaller than one batch still returns one batch
        let ReadOutcome::Records(one) = p.read(0, 10, true).unwrap() else {
            panic!()
        };
        assert_eq!(batch::headers(&one).count(), 1);
        assert!(matches!(
            p.read(201, 100, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        let ReadOutcome::Records(empty) = p.read(200, 100, true).unwrap() else {
            panic!()
        };
        assert!(empty.is_empty());
        // by timestamp: 1050 is first reached by the second record of batch 49 (offset 99)
        assert_eq!(p.offset_for_timestamp(1050).unwrap(), Some((1050, 99)));
        assert_eq!(p.offset_for_timestamp(5000).unwrap(), None);
        assert_eq!(p.offset_of_max_timestamp().unwrap(), Some((1100, 199)));
        drop(p);

        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher).unwrap();
        let o = p.offsets();
        assert_eq!((o.log_start, o.high_watermark, o.log_end), (0, 200, 200));
        assert_eq!(p.offset_for_timestamp(1050).unwrap(), Some((1050, 99)));
        assert_eq!(p.append(&make_batch(1, 5, None)).unwrap().base_offset, 200);
        // retention by size keeps at most ~2 segments worth
        let mut c = config();
        c.retention_bytes = 1500;
        c.retention_ms = -1;
        p.set_config(c);
        wait_hw(&p, 201);
        assert!(p.apply_retention(now_ms()) > 0);
        let start = p.offsets().log_start;
        assert!(start > 0);
        assert!(matches!(
            p.read(0, 100, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        let ReadOutcome::Records(d) = p.read(start, 100, true).unwrap() else {
            panic!()
        };
        assert_eq!(BatchHeader::parse(&d).unwrap().base_offset, start);
    }

    /// Pages of `path` in [from, to) that are in the page cache.
    fn resident_pages(path: &Path, from: u64, to: u64) -> usize {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        // SAFETY: a read-only private mapping of a file nobody truncates during the test.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let pages = len.div_ceil(PAGE_SIZE as usize);
            let mut vec = vec![0u8; pages];
            assert_eq!(libc::mincore(map, len, vec.as_mut_ptr()), 0);
            libc::munmap(map, len);
            let (a, b) = ((from / PAGE_SIZE) as usize, (to / PAGE_SIZE) as usize);
            vec[a..b.min(pages)].iter().filter(|v| *v & 1 == 1).count()
        }
    }

    #[test]
    fn a_sealed_segment_goes_to_the_tier_once_its_successor_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Partition::open("t", 0, dir.path().join("t-0"), config(), Flusher::manual()).unwrap();
        // Flush before every append, so the first segment is wholly durable when one rolls.
        loop {
            p.flush_now();
            p.append(&make_batch(2, 1000, None)).unwrap();
            if p.lock().segments.len() == 2 {
                break;
            }
        }
        let sealed_end = *p.lock().segments.keys().next_back().unwrap();
        assert_eq!(p.offsets().high_watermark, sealed_end);
        assert!(
            p.segments_to_upload(i64::MIN).is_empty(),
            "the new segment's file is not durable yet"
        );
        p.flush_now();
        let ready = p.segments_to_upload(i64::MIN);
        assert_eq!(ready.len(), 1);
        assert_eq!(
            (ready[0].base_offset, ready[0].next_offset),
            (0, sealed_end)
        );
    }

    #[test]
    fn fsynced_bytes_beyond_the_budget_leave_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let budget = 64 * 1024;
        let c = LogConfig {
            segment_bytes: 8 << 20,
            ..config()
        };
        let flusher = Flusher::with_page_cache_budget(budget as i64);
        let p = Partition::open("t", 0, dir.path().join("t-0"), c, flusher).unwrap();
        let mut next = 0;
        for _ in 0..2000 {
            next = p.append(&make_batch(60, 1000, None)).unwrap().last_offset + 1;
        }
        wait_hw(&p, next);
        // The flusher drops after publishing the high watermark; give it a moment.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (path, size, dropped_to) = {
            let st = p.lock();
            let a = st.active();
            (a.log_path().to_path_buf(), a.size(), a.cache_dropped_to())
        };
        assert!(size > 1_000_000);
        assert_eq!(dropped_to % PAGE_SIZE, 0);
        // What stays is at most the budget plus the last flush cycle's bytes.
        assert!(dropped_to >= size / 2 && dropped_to <= size - budget);
        assert_eq!(resident_pages(&path, 0, dropped_to), 0, "old pages dropped");
        assert!(
            resident_pages(&path, dropped_to, size) > 0,
            "the newest bytes stay cached"
        );
        // A catch-up read is served from disk and does not refill the cache behind it.
        let ReadOutcome::Records(data) = p.read(0, 200_000, true).unwrap() else {
            panic!()
        };
        let batches: Vec<_> = batch::headers(&data).collect();
        assert_eq!(batches[0].1.base_offset, 0);
        assert!(batches.len() > 300);
        assert!(resident_pages(&path, 0, 196 * 1024) <= 1);
    }

    #[test]
    fn without_a_budget_the_page_cache_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let c = LogConfig {
            segment_bytes: 8 << 20,
            ..config()
        };
        let p = Partition::open("t", 0, dir.path().join("t-0"), c, Flusher::start()).unwrap();
        let mut next = 0;
        for _ in 0..500 {
            next = p.append(&make_batch(60, 1000, None)).unwrap().last_offset + 1;
        }
        wait_hw(&p, next);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(p.lock().active().cache_dropped_to(), 0);
    }

    #[test]
    fn time_retention_rolls_and_deletes_an_idle_active_segment() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Partition::open("t", 0, dir.path().join("t-0"), config(), Flusher::start()).unwrap();
        p.append(&make_batch(3, 1000, None)).unwrap();
        wait_hw(&p, 3);
        let mut c = config();
        c.retention_ms = 60_000;
        p.set_config(c);
        assert_eq!(p.apply_retention(now_ms()), 1);
        let o = p.offsets();
        assert_eq!((o.log_start, o.log_end), (3, 3));
        assert_eq!(
            p.append(&make_batch(1, now_ms(), None))
                .unwrap()
                .base_offset,
            3
        );
    }

    #[test]
    fn segment_ms_rolls_an_old_segment_on_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let c = LogConfig {
            segment_bytes: 1 << 20,
            segment_ms: 20,
            ..config()
        };
        let p = Partition::open("t", 0, dir.path().join("t-0"), c, Flusher::start()).unwrap();
        p.append(&make_batch(1, now_ms(), None)).unwrap();
        p.append(&make_batch(1, now_ms(), None)).unwrap();
        assert_eq!(
            p.lock().segments.len(),
            1,
            "young segment keeps taking appends"
        );
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            p.append(&make_batch(1, now_ms(), None))
                .unwrap()
                .base_offset,
            2
        );
        assert_eq!(
            p.lock().segments.keys().copied().collect::<Vec<_>>(),
            vec![0, 2]
        );
    }

    #[test]
    fn timestamps_out_of_bounds_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = LogConfig {
            timestamp_after_max_ms: 3_600_000,
            timestamp_before_max_ms: 60_000,
            ..config()
        };
        let p = Partition::open("t", 0, dir.path().join("t-0"), c, Flusher::start()).unwrap();
        let now = now_ms();
        assert!(matches!(
            p.append(&make_batch(1, now + 7_200_000, None)),
            Err(AppendError::InvalidTimestamp)
        ));
        assert!(matches!(
            p.append(&make_batch(1, now - 120_000, None)),
            Err(AppendError::InvalidTimestamp)
        ));
        assert!(p.append(&make_batch(1, now, None)).is_ok());
    }

    #[test]
    fn fetch_between_high_watermark_and_log_end_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Partition::open("t", 0, dir.path().join("t-0"), config(), Flusher::start()).unwrap();
        // Hold the flush lock so the high watermark cannot move.
        let guard = p.flush_lock.lock().unwrap();
        p.append(&make_batch(2, 1000, None)).unwrap();
        let ReadOutcome::Records(r) = p.read(1, 1000, true).unwrap() else {
            panic!("offset below log end is in range")
        };
        assert!(r.is_empty());
        assert!(matches!(
            p.read(3, 1000, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        drop(guard);
        wait_hw(&p, 2);
    }

    #[test]
    fn idempotent_duplicates_and_recovery_of_producer_state() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start();
        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher.clone()).unwrap();
        let mut seq = 0;
        for _ in 0..20 {
            let b = make_batch(3, 1, Some((9, 0, seq)));
            let first = p.append(&b).unwrap();
            let again = p.append(&b).unwrap();
            assert!(again.duplicate);
            assert_eq!(first.base_offset, again.base_offset);
            seq += 3;
        }
        assert!(matches!(
            p.append(&make_batch(1, 1, Some((9, 0, seq + 5)))),
            Err(AppendError::Sequence(SequenceError::OutOfOrder))
        ));
        wait_hw(&p, 60);
        drop(p);
        let p = Partition::open("t", 0, dir.path().join("t-0"), config(), flusher).unwrap();
        let retry = p.append(&make_batch(3, 1, Some((9, 0, seq - 3)))).unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, 57);
        assert_eq!(
            p.append(&make_batch(1, 1, Some((9, 0, seq))))
                .unwrap()
                .base_offset,
            60
        );
    }
}
