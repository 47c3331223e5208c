//! The aborted-transaction index beside a segment (`.txnindex`, Kafka's TransactionIndex):
//! one entry per ABORT marker written into that segment, so read_committed fetches can tell
//! consumers which producers' records in a range to drop without reading the log.
//!
//! File format (Kafka's, big-endian), a sequence of 34-byte entries and nothing else:
//! version i16 (0) | producer id i64 | first offset i64 | last offset i64 (the marker's) |
//! last stable offset i64 (first offset of the oldest other open transaction when the marker
//! was written, else the marker offset + 1).
//!
//! The file exists only once a segment holds an abort. It is appended to under the partition
//! lock and fsynced with the segment by group commit; recovery rebuilds it for every segment it
//! replays and drops a torn tail of the others.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

pub const ENTRY_LEN: usize = 34;
const VERSION: i16 = 0;
/// Entries read per pread while searching (bounds the memory of one search).
const READ_CHUNK_ENTRIES: usize = 1024;

/// One aborted transaction (Kafka's AbortedTxn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    /// None for an entry this broker cannot read (another version: Kafka refuses newer ones;
    /// anything else is corruption) or one whose offsets are out of order.
    pub fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let b: &[u8; ENTRY_LEN] = b.get(..ENTRY_LEN)?.try_into().ok()?;
        if i16::from_be_bytes([b[0], b[1]]) != VERSION {
            return None;
        }
        let long = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        let e = AbortedTxn {
            producer_id: long(2),
            first_offset: long(10),
            last_offset: long(18),
            last_stable_offset: long(26),
        };
        (e.first_offset <= e.last_offset).then_some(e)
    }
}

/// An open `.txnindex` file and how many whole entries it holds.
pub struct TxnIndex {
    file: Arc<File>,
    entries: u64,
}

impl TxnIndex {
    /// Loads `path` if it exists, keeping the longest prefix of readable entries whose last
    /// offsets increase and lie in `markers` (the segment's offsets: Kafka's sanity check),
    /// and cutting the file there (a torn write or garbage after a crash).
    pub fn open(
        path: &Path,
        markers: Range<i64>,
    ) -> io::Result<Option<(TxnIndex, Vec<AbortedTxn>)>> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut entries: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
        for chunk in bytes.chunks_exact(ENTRY_LEN) {
            match AbortedTxn::decode(chunk) {
                Some(e)
                    if markers.contains(&e.last_offset)
                        && entries.last().is_none_or(|p| p.last_offset < e.last_offset) =>
                {
                    entries.push(e)
                }
                _ => break,
            }
        }
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        let valid = (entries.len() * ENTRY_LEN) as u64;
        if valid != bytes.len() as u64 {
            file.set_len(valid)?;
        }
        let index = TxnIndex {
            file: Arc::new(file),
            entries: entries.len() as u64,
        };
        Ok(Some((index, entries)))
    }

    /// Makes `path` hold exactly `entries` (written aside, then renamed over it); with no
    /// entries the file is removed.
    pub fn write(path: &Path, entries: &[AbortedTxn]) -> io::Result<Option<TxnIndex>> {
        if entries.is_empty() {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            return Ok(None);
        }
        let tmp = path.with_extension("txnindex.tmp");
        let mut f = File::create(&tmp)?;
        for e in entries {
            f.write_all(&e.encode())?;
        }
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        Ok(Some(TxnIndex {
            file: Arc::new(file),
            entries: entries.len() as u64,
        }))
    }

    /// A new, empty index file at `path` (replacing a stale one).
    pub fn create(path: &Path) -> io::Result<TxnIndex> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)?;
        // Reopened for appending so every write lands at the end.
        drop(file);
        let file = OpenOptions::new().read(true).append(true).open(path)?;
        Ok(TxnIndex {
            file: Arc::new(file),
            entries: 0,
        })
    }

    /// Appends one entry. A failed write is cut back so the file never holds half an entry.
    pub fn append(&mut self, e: &AbortedTxn) -> io::Result<()> {
        if let Err(err) = (&*self.file).write_all(&e.encode()) {
            let _ = self.file.set_len(self.entries * ENTRY_LEN as u64);
            return Err(err);
        }
        self.entries += 1;
        Ok(())
    }

    /// The file, shared so searches and fsyncs run outside the partition lock.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }
}

/// Kafka's TransactionIndex.collectAbortedTxns over the first `entries` entries of `file`:
/// pushes (producer id, first offset) of every aborted transaction overlapping
/// [`from`, `upto`) and answers whether the search may stop here (an entry's last stable
/// offset reached `upto`, so no later segment holds an abort of a transaction that started
/// below it).
pub fn collect(
    file: &File,
    entries: u64,
    from: i64,
    upto: i64,
    out: &mut Vec<(i64, i64)>,
) -> io::Result<bool> {
    let mut buf = vec![0u8; READ_CHUNK_ENTRIES.min(entries as usize) * ENTRY_LEN];
    let mut done = 0u64;
    while done < entries {
        let n = (entries - done).min(READ_CHUNK_ENTRIES as u64) as usize;
        let chunk = &mut buf[..n * ENTRY_LEN];
        file.read_exact_at(chunk, done * ENTRY_LEN as u64)?;
        for raw in chunk.chunks_exact(ENTRY_LEN) {
            let e = AbortedTxn::decode(raw)
                .ok_or_else(|| io::Error::other("corrupt transaction index entry"))?;
            if search_step(&e, from, upto, out) {
                return Ok(true);
            }
        }
        done += n as u64;
    }
    Ok(false)
}

/// `collect` over entries in memory (a tiered segment's index, fetched from the store).
pub fn collect_entries(
    entries: &[AbortedTxn],
    from: i64,
    upto: i64,
    out: &mut Vec<(i64, i64)>,
) -> bool {
    entries.iter().any(|e| search_step(e, from, upto, out))
}

/// One entry of the search: pushes it when its transaction overlaps [`from`, `upto`) and
/// answers whether the search ends with it, which is safe once its last stable offset
/// reaches `upto`: the transaction of any later entry was either open when this marker was
/// written (so it began at or after that last stable offset) or began after the marker; either
/// way at or after `upto`, so it has no records in the range.
fn search_step(e: &AbortedTxn, from: i64, upto: i64, out: &mut Vec<(i64, i64)>) -> bool {
    if e.last_offset >= from && e.first_offset < upto {
        out.push((e.producer_id, e.first_offset));
    }
    e.last_stable_offset >= upto
}

/// The first `entries` entries of an index file, decoded (what the tier uploads). Fails on
/// an entry that does not decode.
pub fn read_entries(file: &File, entries: u64) -> io::Result<Vec<AbortedTxn>> {
    let mut bytes = vec![0u8; entries as usize * ENTRY_LEN];
    file.read_exact_at(&mut bytes, 0)?;
    decode_all(&bytes, i64::MIN..i64::MAX)
        .ok_or_else(|| io::Error::other("corrupt transaction index entry"))
}

/// Entries in the file format, as one byte string (the tier's `.txnindex` object).
pub fn encode_all(entries: &[AbortedTxn]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.encode()).collect()
}

/// The entries of a whole index in the file format; None unless every entry decodes, their
/// markers lie in `markers` and come in offset order.
pub fn decode_all(bytes: &[u8], markers: Range<i64>) -> Option<Vec<AbortedTxn>> {
    if !bytes.len().is_multiple_of(ENTRY_LEN) {
        return None;
    }
    let mut entries: Vec<AbortedTxn> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for raw in bytes.chunks_exact(ENTRY_LEN) {
        let e = AbortedTxn::decode(raw)?;
        if !markers.contains(&e.last_offset)
            || entries
                .last()
                .is_some_and(|p| p.last_offset >= e.last_offset)
        {
            return None;
        }
        entries.push(e);
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn entry_format_is_kafkas() {
        let e = txn(0x0102, 5, 9, 10);
        let b = e.encode();
        assert_eq!(b.len(), 34);
        assert_eq!(&b[0..2], &[0, 0]);
        assert_eq!(&b[2..10], &0x0102i64.to_be_bytes());
        assert_eq!(AbortedTxn::decode(&b), Some(e));
        let mut newer = b;
        newer[1] = 1;
        assert_eq!(AbortedTxn::decode(&newer), None);
    }

    #[test]
    fn append_reopen_drops_torn_tail_and_search() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.txnindex");
        let mut index = TxnIndex::create(&path).unwrap();
        index.append(&txn(1, 0, 4, 5)).unwrap();
        index.append(&txn(2, 3, 8, 20)).unwrap();
        index.append(&txn(3, 10, 12, 13)).unwrap();
        drop(index);
        // A crash mid-write leaves part of a fourth entry.
        let f = OpenOptions::new().append(true).open(&path).unwrap();
        (&f).write_all(&txn(4, 13, 14, 15).encode()[..20]).unwrap();
        let (index, entries) = TxnIndex::open(&path, 0..i64::MAX).unwrap().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(index.entries(), 3);
        assert_eq!(fs::metadata(&path).unwrap().len(), 3 * 34);

        let mut out = Vec::new();
        // [5, 9): txn 1 ended at 4, txn 2 overlaps; txn 2's LSO (20) >= 9 ends the search.
        assert!(collect(index.file(), 3, 5, 9, &mut out).unwrap());
        assert_eq!(out, vec![(2, 3)]);
        out.clear();
        // [0, 100): everything, and later segments may hold more.
        assert!(!collect(index.file(), 3, 0, 100, &mut out).unwrap());
        assert_eq!(out, vec![(1, 0), (2, 3), (3, 10)]);
        // The tier's copy: the same bytes, searched in memory with the same answers.
        let copy = encode_all(&entries);
        assert_eq!(copy, fs::read(&path).unwrap());
        assert_eq!(read_entries(index.file(), 3).unwrap(), entries);
        let decoded = decode_all(&copy, 0..13).unwrap();
        assert_eq!(decoded, entries);
        out.clear();
        assert!(collect_entries(&decoded, 5, 9, &mut out));
        assert_eq!(out, vec![(2, 3)]);
        out.clear();
        assert!(!collect_entries(&decoded, 0, 100, &mut out));
        assert_eq!(out, vec![(1, 0), (2, 3), (3, 10)]);
        assert_eq!(decode_all(&copy[..40], 0..13), None, "a torn entry");
        assert_eq!(
            decode_all(&copy, 0..12),
            None,
            "a marker outside the segment"
        );
        let mut swapped = copy[ENTRY_LEN..2 * ENTRY_LEN].to_vec();
        swapped.extend_from_slice(&copy[..ENTRY_LEN]);
        assert_eq!(decode_all(&swapped, 0..13), None, "markers out of order");
        assert_eq!(decode_all(&[], 0..13), Some(vec![]));
        assert!(
            TxnIndex::open(&dir.path().join("none.txnindex"), 0..i64::MAX)
                .unwrap()
                .is_none()
        );
        // An entry whose marker lies outside the segment ends what is trusted.
        let (_, inside) = TxnIndex::open(&path, 0..12).unwrap().unwrap();
        assert_eq!(inside.len(), 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), 2 * 34);
        // Rewriting with nothing removes the file.
        assert!(TxnIndex::write(&path, &[]).unwrap().is_none());
        assert!(!path.exists());
    }
}
