//! One log segment: an append-only `.log` file of record batches plus a sparse offset/time index.
//! The index lives in memory and is written to `.index` / `.timeindex` when the segment is sealed.
//! A segment holding ABORT markers also has an aborted-transaction index (`.txnindex`,
//! `log::txn_index`), appended to as the markers are written.

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::now_ms;
use super::txn_index::{AbortedTxn, TxnIndex};
use bytes::{Bytes, BytesMut};
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A sparse index point: the batch starting at `position` has base offset `base + rel_offset`;
/// every record before it has a timestamp <= `max_ts_before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub rel_offset: u32,
    pub position: u32,
    pub max_ts_before: i64,
}

/// Fields are private: the summary (size, next offset, max timestamp, index) changes only
/// through `append` and recovery, so it always describes the bytes in the file.
pub struct Segment {
    base_offset: i64,
    file: Arc<File>,
    log_path: PathBuf,
    /// Bytes in the file that hold whole batches.
    size: u64,
    /// One past the last offset stored here.
    next_offset: i64,
    /// Largest batch max-timestamp in the segment, -1 when empty.
    max_timestamp: i64,
    /// Base offset of the batch holding `max_timestamp`.
    max_timestamp_batch: i64,
    index: Vec<IndexEntry>,
    bytes_since_index: u64,
    /// Wall-clock ms of the first append (for segment.ms).
    created_ms: i64,
    /// Cached pages below this position were dropped (they fell out of the page-cache window).
    cache_dropped_to: u64,
    /// The `.txnindex`, once the segment holds an aborted transaction's marker.
    txn_index: Option<TxnIndex>,
}

/// A sealed, durable segment as the tier copies it.
#[derive(Debug, Clone)]
pub struct SealedSegment {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
    pub log_path: PathBuf,
    pub index: Vec<IndexEntry>,
    /// Bytes below this were dropped from the page cache (log.page.cache.max.bytes): a reader
    /// should not pull them back in.
    pub cold_below: u64,
    /// The `.txnindex` and how many entries it holds, if the segment holds ABORT markers.
    /// Entries go only into the active segment, so a sealed one's stay as they are.
    pub txn_index: Option<(Arc<File>, u64)>,
}

pub fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

impl Segment {
    /// A segment over `file` with an empty index and summary.
    fn blank(
        base_offset: i64,
        file: File,
        log_path: PathBuf,
        size: u64,
        next_offset: i64,
    ) -> Segment {
        Segment {
            base_offset,
            file: Arc::new(file),
            log_path,
            size,
            next_offset,
            max_timestamp: -1,
            max_timestamp_batch: base_offset,
            index: Vec::new(),
            bytes_since_index: 0,
            created_ms: now_ms(),
            cache_dropped_to: 0,
            txn_index: None,
        }
    }

    pub fn create(dir: &Path, base_offset: i64) -> io::Result<Segment> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&log_path)?;
        let seg = Self::blank(base_offset, file, log_path, 0, base_offset);
        // A leftover of a segment a crash took back must not describe this one.
        match fs::remove_file(seg.txn_index_path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(seg)
    }

    fn open_file(dir: &Path, base_offset: i64) -> io::Result<(File, PathBuf)> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new().read(true).append(true).open(&log_path)?;
        Ok((file, log_path))
    }

    /// Opens a sealed segment, trusting its index files when they are consistent.
    /// `next_offset` is the base offset of the following segment.
    pub fn open_sealed(
        dir: &Path,
        base_offset: i64,
        next_offset: i64,
        index_interval: u64,
    ) -> io::Result<Segment> {
        let (file, log_path) = Self::open_file(dir, base_offset)?;
        let size = file.metadata()?.len();
        let mut seg = Self::blank(base_offset, file, log_path, size, next_offset);
        if !seg.load_index_files(dir) {
            seg.rebuild(index_interval, false, |_, _| {})?;
        }
        Ok(seg)
    }

    /// Opens the active (last) segment after a possible crash: validates every batch, truncates
    /// a torn or corrupt tail, rebuilds the index. `on_batch` sees every valid batch in order.
    pub fn recover(
        dir: &Path,
        base_offset: i64,
        index_interval: u64,
        on_batch: impl FnMut(&BatchHeader, u64),
    ) -> io::Result<(Segment, u64)> {
        let (file, log_path) = Self::open_file(dir, base_offset)?;
        let size = file.metadata()?.len();
        let mut seg = Self::blank(base_offset, file, log_path, size, base_offset);
        let valid = seg.rebuild(index_interval, true, on_batch)?;
        let truncated = size - valid;
        if truncated > 0 {
            seg.file.set_len(valid)?;
            seg.file.sync_all()?;
            seg.size = valid;
        }
        Ok((seg, truncated))
    }

    /// Scans the log file from the start, rebuilding the in-memory index and summary.
    /// Returns the length of the valid prefix.
    fn rebuild(
        &mut self,
        index_interval: u64,
        check_crc: bool,
        mut on_batch: impl FnMut(&BatchHeader, u64),
    ) -> io::Result<u64> {
        self.index.clear();
        self.bytes_since_index = 0;
        self.max_timestamp = -1;
        self.max_timestamp_batch = self.base_offset;
        let file_len = self.file.metadata()?.len();
        let mut pos = 0u64;
        let mut expected_next = self.base_offset;
        let mut head = [0u8; HEADER_LEN];
        let mut body = Vec::new();
        while pos + HEADER_LEN as u64 <= file_len {
            self.file.read_exact_at(&mut head, pos)?;
            let Ok(h) = BatchHeader::parse(&head) else {
                break;
            };
            if h.magic != 2 || pos + h.total_len as u64 > file_len || h.base_offset < expected_next
            {
                break;
            }
            if check_crc {
                body.resize(h.total_len - batch::CRC_START, 0);
                self.file
                    .read_exact_at(&mut body, pos + batch::CRC_START as u64)?;
                if crc32c::crc32c(&body) != h.crc {
                    break;
                }
            }
            if pos == 0 && h.max_timestamp >= 0 {
                // Age for segment.ms survives restarts: the first batch's timestamp, as in Kafka.
                self.created_ms = h.max_timestamp.min(now_ms());
            }
            self.note_batch(&h, pos, index_interval);
            on_batch(&h, pos);
            expected_next = h.last_offset() + 1;
            pos += h.total_len as u64;
        }
        self.size = pos;
        if expected_next > self.next_offset {
            self.next_offset = expected_next;
        }
        Ok(pos)
    }

    /// Updates index and summary for a batch now stored at `position`.
    fn note_batch(&mut self, h: &BatchHeader, position: u64, index_interval: u64) {
        if self.index.is_empty() || self.bytes_since_index >= index_interval {
            self.index.push(IndexEntry {
                rel_offset: (h.base_offset - self.base_offset) as u32,
                position: position as u32,
                max_ts_before: self.max_timestamp,
            });
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.total_len as u64;
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.max_timestamp_batch = h.base_offset;
        }
        self.next_offset = h.last_offset() + 1;
    }

    /// Appends one batch: `head` is its patched header, `rest` the bytes after the header.
    /// `h` describes the batch as stored (patched base offset and timestamps).
    pub fn append(
        &mut self,
        head: &[u8; HEADER_LEN],
        rest: &[u8],
        h: &BatchHeader,
        index_interval: u64,
    ) -> io::Result<()> {
        if self.size == 0 {
            self.created_ms = now_ms();
        }
        let mut file = &*self.file;
        let mut slices = [IoSlice::new(head), IoSlice::new(rest)];
        let mut bufs: &mut [IoSlice] = &mut slices;
        let total = head.len() + rest.len();
        let mut written = 0usize;
        while written < total {
            match file.write_vectored(bufs) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "short write to segment",
                    ))
                }
                Ok(n) => {
                    written += n;
                    IoSlice::advance_slices(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Drop a partial write so the file never holds half a batch we acknowledged.
                    let _ = self.file.set_len(self.size);
                    return Err(e);
                }
            }
        }
        let position = self.size;
        self.size += total as u64;
        self.note_batch(h, position, index_interval);
        Ok(())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// One past the last offset stored here.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes in the file that hold whole batches.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Largest batch max-timestamp in the segment, -1 when empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// Base offset of the batch holding `max_timestamp`.
    pub fn max_timestamp_batch(&self) -> i64 {
        self.max_timestamp_batch
    }

    /// Wall-clock ms of the first append (for segment.ms).
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// The `.log` file, shared so reads and fsyncs can run outside the partition lock.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Cached pages below this position were dropped from the page cache.
    pub fn cache_dropped_to(&self) -> u64 {
        self.cache_dropped_to
    }

    /// Records that the pages below `position` left the page cache (it never moves back).
    pub fn mark_cache_dropped_to(&mut self, position: u64) {
        self.cache_dropped_to = self.cache_dropped_to.max(position);
    }

    fn txn_index_path(&self) -> PathBuf {
        self.log_path.with_extension("txnindex")
    }

    /// Records an aborted transaction whose ABORT marker was just appended here, creating the
    /// `.txnindex` on the first one. Returns the file to fsync with the segment and whether it
    /// was created (its directory entry then needs an fsync too).
    pub fn append_aborted(&mut self, txn: &AbortedTxn) -> io::Result<(Arc<File>, bool)> {
        let created = self.txn_index.is_none();
        if created {
            self.txn_index = Some(TxnIndex::create(&self.txn_index_path())?);
        }
        let index = self.txn_index.as_mut().expect("created above");
        index.append(txn)?;
        Ok((index.file().clone(), created))
    }

    /// Loads the `.txnindex` left on disk (a torn tail cut off), for a segment recovery does
    /// not replay.
    pub fn load_txn_index(&mut self) -> io::Result<()> {
        let markers = self.base_offset..self.next_offset;
        self.txn_index = TxnIndex::open(&self.txn_index_path(), markers)?.map(|(index, _)| index);
        Ok(())
    }

    /// Makes the `.txnindex` hold exactly `entries` (what replaying the segment found),
    /// rewriting it only when the file says otherwise. Returns whether it was rewritten.
    pub fn restore_txn_index(&mut self, entries: &[AbortedTxn]) -> io::Result<bool> {
        let path = self.txn_index_path();
        match TxnIndex::open(&path, self.base_offset..self.next_offset)? {
            Some((index, found)) if found == entries && !entries.is_empty() => {
                self.txn_index = Some(index);
                Ok(false)
            }
            None if entries.is_empty() => {
                self.txn_index = None;
                Ok(false)
            }
            // Includes a file left with no valid entry: it is removed.
            _ => {
                self.txn_index = TxnIndex::write(&path, entries)?;
                Ok(true)
            }
        }
    }

    /// The `.txnindex` file and how many entries it holds, if the segment has one.
    pub fn txn_index(&self) -> Option<(Arc<File>, u64)> {
        self.txn_index
            .as_ref()
            .map(|i| (i.file().clone(), i.entries()))
    }

    /// What the tier needs to copy this segment once it is sealed.
    pub fn as_sealed(&self) -> SealedSegment {
        SealedSegment {
            base_offset: self.base_offset,
            next_offset: self.next_offset,
            size: self.size,
            max_timestamp: self.max_timestamp,
            log_path: self.log_path.clone(),
            index: self.index.clone(),
            cold_below: self.cache_dropped_to,
            txn_index: self.txn_index(),
        }
    }

    /// Position of the last indexed batch at or before `offset`.
    pub fn lookup(&self, offset: i64) -> u64 {
        lookup(&self.index, self.base_offset, offset)
    }

    /// Position from which to scan for the first record with timestamp >= `ts`.
    pub fn lookup_time(&self, ts: i64) -> u64 {
        lookup_time(&self.index, ts)
    }

    /// Writes the index files of a segment that will receive no more appends.
    /// Returns the files to fsync.
    pub fn seal(&self, dir: &Path) -> io::Result<Vec<Arc<File>>> {
        let mut offsets = Vec::with_capacity(self.index.len() * 8);
        let mut times = Vec::with_capacity((self.index.len() + 1) * 12);
        for e in &self.index {
            offsets.extend_from_slice(&e.rel_offset.to_be_bytes());
            offsets.extend_from_slice(&e.position.to_be_bytes());
            times.extend_from_slice(&e.max_ts_before.to_be_bytes());
            times.extend_from_slice(&e.rel_offset.to_be_bytes());
        }
        // Trailer: the segment's max timestamp and the batch holding it.
        times.extend_from_slice(&self.max_timestamp.to_be_bytes());
        times.extend_from_slice(
            &((self.max_timestamp_batch - self.base_offset) as u32).to_be_bytes(),
        );
        let mut out = Vec::new();
        for (ext, data) in [("index", offsets), ("timeindex", times)] {
            let mut f = File::create(dir.join(file_name(self.base_offset, ext)))?;
            f.write_all(&data)?;
            out.push(Arc::new(f));
        }
        out.push(self.file.clone());
        Ok(out)
    }

    fn load_index_files(&mut self, dir: &Path) -> bool {
        let (Ok(offsets), Ok(times)) = (
            fs::read(dir.join(file_name(self.base_offset, "index"))),
            fs::read(dir.join(file_name(self.base_offset, "timeindex"))),
        ) else {
            return false;
        };
        if offsets.len() % 8 != 0 || times.len() != offsets.len() / 8 * 12 + 12 {
            return false;
        }
        let n = offsets.len() / 8;
        let mut index = Vec::with_capacity(n);
        for i in 0..n {
            let o = &offsets[i * 8..];
            let t = &times[i * 12..];
            let entry = IndexEntry {
                rel_offset: u32::from_be_bytes(o[0..4].try_into().unwrap()),
                position: u32::from_be_bytes(o[4..8].try_into().unwrap()),
                max_ts_before: i64::from_be_bytes(t[0..8].try_into().unwrap()),
            };
            if entry.position as u64 >= self.size.max(1) {
                return false;
            }
            index.push(entry);
        }
        let t = &times[n * 12..];
        self.max_timestamp = i64::from_be_bytes(t[0..8].try_into().unwrap());
        self.max_timestamp_batch =
            self.base_offset + u32::from_be_bytes(t[8..12].try_into().unwrap()) as i64;
        self.index = index;
        true
    }

    /// A cleaned segment keeps the offset range of the one it replaces, even when its last
    /// records were compacted away (offsets are never reused).
    pub fn keep_offsets_until(&mut self, next_offset: i64) {
        self.next_offset = self.next_offset.max(next_offset);
    }

    /// After the segment's files were renamed into `dir` (a cleaned segment's swap).
    pub fn moved_to(&mut self, dir: &Path) {
        self.log_path = dir.join(file_name(self.base_offset, "log"));
    }

    pub fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes> {
        read_exact(&self.file, position, len)
    }

    pub fn delete_files(dir: &Path, base_offset: i64) {
        for ext in ["log", "index", "timeindex", "snapshot", "txnindex"] {
            let _ = fs::remove_file(dir.join(file_name(base_offset, ext)));
        }
    }
}

/// Position of the last indexed batch at or before `offset` in a segment starting at `base`.
pub fn lookup(index: &[IndexEntry], base: i64, offset: i64) -> u64 {
    let rel = (offset - base).max(0) as u32;
    match index.partition_point(|e| e.rel_offset <= rel) {
        0 => 0,
        i => index[i - 1].position as u64,
    }
}

/// Position from which to scan for the first record with timestamp >= `ts`.
pub fn lookup_time(index: &[IndexEntry], ts: i64) -> u64 {
    match index.partition_point(|e| e.max_ts_before < ts) {
        0 => 0,
        i => index[i - 1].position as u64,
    }
}

/// The index as one byte string (the tier stores it next to the segment): 16 bytes per entry.
pub fn encode_index(index: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(index.len() * 16);
    for e in index {
        out.extend_from_slice(&e.rel_offset.to_be_bytes());
        out.extend_from_slice(&e.position.to_be_bytes());
        out.extend_from_slice(&e.max_ts_before.to_be_bytes());
    }
    out
}

pub fn decode_index(bytes: &[u8]) -> Option<Vec<IndexEntry>> {
    if !bytes.len().is_multiple_of(16) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(16)
            .map(|c| IndexEntry {
                rel_offset: u32::from_be_bytes(c[0..4].try_into().unwrap()),
                position: u32::from_be_bytes(c[4..8].try_into().unwrap()),
                max_ts_before: i64::from_be_bytes(c[8..16].try_into().unwrap()),
            })
            .collect(),
    )
}

pub const PAGE_SIZE: u64 = 4096;

/// Drops the cached pages of `file` wholly inside [from, to). Only for fsynced bytes: the
/// kernel would otherwise start writeback. Recycling pages this way keeps a broker writing at
/// full speed on machines where touching fresh memory is slow (VMs with free page reporting).
pub fn drop_cached(file: &File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    if to > from {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on a file descriptor we own; it reads no memory of ours.
        unsafe {
            libc::posix_fadvise(
                file.as_raw_fd(),
                from as libc::off_t,
                (to - from) as libc::off_t,
                libc::POSIX_FADV_DONTNEED,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, from, to);
}

/// Reads `len` bytes at `position` into a fresh buffer (not zeroed first: fetches read
/// megabytes, and clearing them would cost as much as the read).
pub fn read_exact(file: &File, position: u64, len: usize) -> io::Result<Bytes> {
    use std::os::fd::AsRawFd;
    let mut buf = BytesMut::with_capacity(len);
    let spare = buf.spare_capacity_mut();
    let mut filled = 0usize;
    while filled < len {
        let at = libc::off_t::try_from(position + filled as u64)
            .map_err(|_| io::Error::other("read position out of range"))?;
        // SAFETY: pread writes at most `len - filled` bytes into the spare capacity, which
        // holds at least `len` bytes.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare[filled..].as_mut_ptr().cast(),
                len - filled,
                at,
            )
        };
        match n {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => filled += n as usize,
        }
    }
    // SAFETY: the loop above initialized all `len` bytes.
    unsafe { buf.set_len(len) };
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{patched_header, tests::make_batch, validate};

    fn append(seg: &mut Segment, offset: i64, ts: i64, count: i32) {
        let b = make_batch(count, ts, None);
        let head = patched_header(&b, offset, 0, ts + count as i64 - 1, false);
        let mut h = validate(&b).unwrap();
        h.base_offset = offset;
        seg.append(&head, &b[HEADER_LEN..], &h, 100).unwrap();
    }

    #[test]
    fn append_seal_reopen_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0).unwrap();
        let mut offset = 0;
        for i in 0..50 {
            append(&mut seg, offset, 1000 + i, 3);
            offset += 3;
        }
        assert_eq!(seg.next_offset, 150);
        assert!(seg.index.len() > 5);
        let pos = seg.lookup(77);
        let data = seg.read_at(pos, HEADER_LEN).unwrap();
        let h = BatchHeader::parse(&data).unwrap();
        assert!(h.base_offset <= 77 && h.base_offset > 60);
        seg.seal(dir.path()).unwrap();
        let index = seg.index.clone();
        let size = seg.size;
        drop(seg);

        let reopened = Segment::open_sealed(dir.path(), 0, 150, 100).unwrap();
        assert_eq!(reopened.index, index);
        assert_eq!(reopened.max_timestamp, 1051);
        assert_eq!(reopened.size, size);

        // torn tail: append half a batch of garbage, recovery truncates it
        let f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(file_name(0, "log")))
            .unwrap();
        (&f).write_all(&make_batch(2, 5, None)[..30]).unwrap();
        let mut seen = 0;
        let (rec, truncated) = Segment::recover(dir.path(), 0, 100, |_, _| seen += 1).unwrap();
        assert_eq!(seen, 50);
        assert_eq!(truncated, 30);
        assert_eq!(rec.size, size);
        assert_eq!(rec.next_offset, 150);
        assert_eq!(rec.index, index);
    }

    #[test]
    fn recover_stops_at_corrupt_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 10).unwrap();
        append(&mut seg, 10, 1, 2);
        append(&mut seg, 12, 2, 2);
        let first_len = seg.index.len();
        let size = seg.size;
        drop(seg);
        // flip a byte in the second batch's records
        let path = dir.path().join(file_name(10, "log"));
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x55;
        fs::write(&path, &bytes).unwrap();
        let (rec, truncated) = Segment::recover(dir.path(), 10, 100, |_, _| {}).unwrap();
        assert_eq!(rec.next_offset, 12);
        assert_eq!(truncated, size / 2);
        assert_eq!(rec.index.len(), first_len);
    }
}
