//! Walks the records inside a RecordBatch without materializing them: only each record's
//! offset delta and timestamp delta are read. Bounded memory whatever the batch claims;
//! compressed record sections are decompressed as a stream with a size cap.
//!
//! Everything that looks past the batch header lives here: the record-level checks of an
//! incoming batch (`check_records`) and the timestamp search of ListOffsets. `batch` knows
//! only the fixed header, so this module depends on it and never the other way round.

use super::batch::{BatchError, BatchHeader, HEADER_LEN, NO_TIMESTAMP};
use std::io::{BufRead, BufReader, Read};

/// Decompressed bytes we are willing to walk through for one batch (bounds CPU and time).
const MAX_DECOMPRESSED: u64 = 64 << 20;
/// Snappy expands at most ~32x; a block header claiming more is refused before allocating.
const SNAPPY_MAX_RATIO: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
}

/// Byte source for the walker: an in-memory slice or a decompressing stream.
trait Source {
    fn byte(&mut self) -> Result<Option<u8>, &'static str>;
    fn skip(&mut self, n: u64) -> Result<(), &'static str>;
}

struct SliceSource<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Source for SliceSource<'_> {
    fn byte(&mut self) -> Result<Option<u8>, &'static str> {
        let b = self.buf.get(self.pos).copied();
        self.pos += b.is_some() as usize;
        Ok(b)
    }
    fn skip(&mut self, n: u64) -> Result<(), &'static str> {
        if n > (self.buf.len() - self.pos) as u64 {
            return Err("record runs past the end of the batch");
        }
        self.pos += n as usize;
        Ok(())
    }
}

struct StreamSource<R: BufRead> {
    inner: R,
    consumed: u64,
}

impl<R: BufRead> StreamSource<R> {
    fn count(&mut self, n: u64) -> Result<(), &'static str> {
        self.consumed += n;
        if self.consumed > MAX_DECOMPRESSED {
            return Err("decompressed records exceed the walk limit");
        }
        Ok(())
    }
}

impl<R: BufRead> Source for StreamSource<R> {
    fn byte(&mut self) -> Result<Option<u8>, &'static str> {
        let buf = self
            .inner
            .fill_buf()
            .map_err(|_| "cannot decompress records")?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.inner.consume(1);
        self.count(1)?;
        Ok(Some(b))
    }
    fn skip(&mut self, mut n: u64) -> Result<(), &'static str> {
        self.count(n)?;
        while n > 0 {
            let buf = self
                .inner
                .fill_buf()
                .map_err(|_| "cannot decompress records")?;
            if buf.is_empty() {
                return Err("record runs past the end of the batch");
            }
            let step = (buf.len() as u64).min(n) as usize;
            self.inner.consume(step);
            n -= step as u64;
        }
        Ok(())
    }
}

/// Zigzag varint (up to 64 bits). `Ok(None)` only at a clean end before the first byte.
fn varint<S: Source>(src: &mut S, used: &mut u64) -> Result<Option<i64>, &'static str> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(b) = src.byte()? else {
            return if i == 0 {
                Ok(None)
            } else {
                Err("truncated varint")
            };
        };
        *used += 1;
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some(((value >> 1) as i64) ^ -((value & 1) as i64)));
        }
    }
    Err("varint longer than 10 bytes")
}

fn walk_source<S: Source>(
    src: &mut S,
    mut visit: impl FnMut(RecordMeta) -> bool,
) -> Result<usize, &'static str> {
    let mut count = 0usize;
    loop {
        let mut unused = 0;
        let Some(len) = varint(src, &mut unused)? else {
            return Ok(count);
        };
        if len < 3 {
            return Err("record length too small");
        }
        let mut used = 0u64;
        if src.byte()?.is_none() {
            return Err("truncated record");
        }
        used += 1; // attributes
        let timestamp_delta = varint(src, &mut used)?.ok_or("truncated record")?;
        let offset_delta = varint(src, &mut used)?.ok_or("truncated record")?;
        if used > len as u64 {
            return Err("record fields run past the record length");
        }
        src.skip(len as u64 - used)?;
        count += 1;
        let offset_delta = i32::try_from(offset_delta).map_err(|_| "offset delta out of range")?;
        if !visit(RecordMeta {
            offset_delta,
            timestamp_delta,
        }) {
            return Ok(count);
        }
    }
}

/// Walks the records of an uncompressed record section (the bytes after the batch header).
pub fn walk_uncompressed(
    records: &[u8],
    visit: impl FnMut(RecordMeta) -> bool,
) -> Result<usize, &'static str> {
    walk_source(
        &mut SliceSource {
            buf: records,
            pos: 0,
        },
        visit,
    )
}

/// Walks the records of a whole stored batch, decompressing if needed.
pub fn walk_batch(
    batch: &[u8],
    visit: impl FnMut(RecordMeta) -> bool,
) -> Result<usize, &'static str> {
    let header = BatchHeader::parse(batch).map_err(|_| "bad batch header")?;
    let body = batch
        .get(HEADER_LEN..header.total_len)
        .ok_or("batch shorter than its length")?;
    fn stream<R: Read>(r: R, visit: impl FnMut(RecordMeta) -> bool) -> Result<usize, &'static str> {
        walk_source(
            &mut StreamSource {
                inner: BufReader::with_capacity(32 * 1024, r),
                consumed: 0,
            },
            visit,
        )
    }
    match header.compression() {
        0 => walk_uncompressed(body, visit),
        1 => stream(flate2::read::GzDecoder::new(body), visit),
        2 => stream(SnappyReader::new(body)?, visit),
        3 => stream(lz4::Decoder::new(body).map_err(|_| "bad lz4 frame")?, visit),
        4 => stream(
            zstd::stream::read::Decoder::with_buffer(body).map_err(|_| "bad zstd frame")?,
            visit,
        ),
        _ => Err("unknown compression codec"),
    }
}

/// The record section of a stored batch, decompressed when the batch is (at most
/// `MAX_DECOMPRESSED` bytes). The cleaner and the compacted-topic key check read records whole.
pub fn record_section(batch: &[u8]) -> Result<Vec<u8>, &'static str> {
    let header = BatchHeader::parse(batch).map_err(|_| "bad batch header")?;
    let body = batch
        .get(HEADER_LEN..header.total_len)
        .ok_or("batch shorter than its length")?;
    fn read_all<R: Read>(r: R) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        r.take(MAX_DECOMPRESSED + 1)
            .read_to_end(&mut out)
            .map_err(|_| "cannot decompress records")?;
        if out.len() as u64 > MAX_DECOMPRESSED {
            return Err("decompressed records exceed the walk limit");
        }
        Ok(out)
    }
    match header.compression() {
        0 => Ok(body.to_vec()),
        1 => read_all(flate2::read::GzDecoder::new(body)),
        2 => read_all(SnappyReader::new(body)?),
        3 => read_all(lz4::Decoder::new(body).map_err(|_| "bad lz4 frame")?),
        4 => {
            read_all(zstd::stream::read::Decoder::with_buffer(body).map_err(|_| "bad zstd frame")?)
        }
        _ => Err("unknown compression codec"),
    }
}

/// One record of an uncompressed record section, located by byte ranges into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    /// The whole record, its length varint included: copied as is when the record is kept.
    pub bytes: std::ops::Range<usize>,
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    /// None for a record without a key (key length -1).
    pub key: Option<std::ops::Range<usize>>,
    /// A null value: the record is a tombstone.
    pub tombstone: bool,
}

/// Splits an uncompressed record section into its records.
pub fn parse_records(section: &[u8]) -> Result<Vec<RecordView>, &'static str> {
    let mut out = Vec::new();
    let mut src = SliceSource {
        buf: section,
        pos: 0,
    };
    loop {
        let start = src.pos;
        let mut unused = 0;
        let Some(len) = varint(&mut src, &mut unused)? else {
            return Ok(out);
        };
        if len < 3 || len as u64 > (section.len() - src.pos) as u64 {
            return Err("bad record length");
        }
        let end = src.pos + len as usize;
        src.skip(1)?; // attributes
        let mut used = 0;
        let timestamp_delta = varint(&mut src, &mut used)?.ok_or("truncated record")?;
        let offset_delta = varint(&mut src, &mut used)?.ok_or("truncated record")?;
        let offset_delta = i32::try_from(offset_delta).map_err(|_| "offset delta out of range")?;
        let key_len = varint(&mut src, &mut used)?.ok_or("truncated record")?;
        let key = if key_len < 0 {
            None
        } else {
            let k = src.pos..src.pos + key_len as usize;
            src.skip(key_len as u64)?;
            Some(k)
        };
        let value_len = varint(&mut src, &mut used)?.ok_or("truncated record")?;
        if src.pos > end || key.as_ref().is_some_and(|k| k.end > end) {
            return Err("record fields run past the record length");
        }
        src.pos = end;
        out.push(RecordView {
            bytes: start..end,
            offset_delta,
            timestamp_delta,
            key,
            tombstone: value_len < 0,
        });
    }
}

/// Whether a batch holds a record without a key (refused on compacted topics, as Kafka does).
pub fn has_keyless_record(batch: &[u8]) -> Result<bool, &'static str> {
    let section = record_section(batch)?;
    Ok(parse_records(&section)?.iter().any(|r| r.key.is_none()))
}

/// What the records inside a batch say, as far as the broker needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordStats {
    /// Smallest record timestamp, ignoring records without one; -1 when none has one.
    pub min_timestamp: i64,
    pub max_timestamp: i64,
}

/// Min and max record timestamps seen so far; records without one (-1) are exempt from the
/// bounds, as in Kafka.
struct TimestampRange {
    min: i64,
    max: i64,
}

impl TimestampRange {
    fn new() -> TimestampRange {
        TimestampRange {
            min: i64::MAX,
            max: NO_TIMESTAMP,
        }
    }

    fn add(&mut self, ts: i64) {
        if ts != NO_TIMESTAMP {
            self.min = self.min.min(ts);
        }
        self.max = self.max.max(ts);
    }

    fn stats(self) -> RecordStats {
        RecordStats {
            min_timestamp: if self.min == i64::MAX {
                NO_TIMESTAMP
            } else {
                self.min
            },
            max_timestamp: self.max,
        }
    }
}

/// Checks the record framing of a validated batch. Uncompressed batches are walked record by
/// record (count, offset deltas, timestamps: as Kafka's LogValidator). Compressed batches are
/// passed through without decompression unless they claim more records than they have bytes,
/// which is how a tiny batch could otherwise burn billions of offsets.
pub fn check_records(batch: &[u8], h: &BatchHeader) -> Result<RecordStats, BatchError> {
    let body = &batch[HEADER_LEN..];
    if h.compression() != 0 {
        if h.records_count as usize > body.len() {
            let claimed = h.records_count as usize;
            let mut n = 0usize;
            walk_batch(batch, |_| {
                n += 1;
                n <= claimed
            })
            .map_err(BatchError::Invalid)?;
            if n != claimed {
                return Err(BatchError::Invalid(
                    "record count does not match the records in the batch",
                ));
            }
        }
        if h.max_timestamp < h.base_timestamp {
            // Some producers (Sarama before 1.27) leave the header's max timestamp at -1. Kafka
            // recomputes it from the records; so do we, with a bounded streaming walk.
            let mut range = TimestampRange::new();
            walk_batch(batch, |r| {
                range.add(h.base_timestamp.saturating_add(r.timestamp_delta));
                true
            })
            .map_err(BatchError::Invalid)?;
            return Ok(range.stats());
        }
        return Ok(RecordStats {
            min_timestamp: h.base_timestamp,
            max_timestamp: h.max_timestamp,
        });
    }
    let mut expected = 0i32;
    let mut in_order = true;
    let mut range = TimestampRange::new();
    let n = walk_uncompressed(body, |r| {
        in_order &= r.offset_delta == expected;
        expected = expected.wrapping_add(1);
        range.add(h.base_timestamp.saturating_add(r.timestamp_delta));
        in_order
    })
    .map_err(BatchError::Corrupt)?;
    if !in_order {
        return Err(BatchError::Invalid(
            "record offset deltas are not consecutive",
        ));
    }
    if n != h.records_count as usize {
        return Err(BatchError::Invalid(
            "record count does not match the records in the batch",
        ));
    }
    Ok(range.stats())
}

/// Kafka's snappy: xerial framing (magic header, then length-prefixed snappy blocks), or a
/// single raw snappy block from clients that do not frame.
struct SnappyReader<'a> {
    input: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    pos: usize,
    total: u64,
}

const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

impl<'a> SnappyReader<'a> {
    fn new(input: &'a [u8]) -> Result<Self, &'static str> {
        let framed = input.starts_with(XERIAL_MAGIC);
        let input = if framed {
            input.get(16..).ok_or("truncated snappy header")?
        } else {
            input
        };
        Ok(SnappyReader {
            input,
            framed,
            block: Vec::new(),
            pos: 0,
            total: 0,
        })
    }

    fn next_block(&mut self) -> std::io::Result<bool> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        if self.input.is_empty() {
            return Ok(false);
        }
        let compressed = if self.framed {
            let len = self
                .input
                .get(..4)
                .ok_or_else(|| bad("truncated snappy block length"))?;
            let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
            let block = self
                .input
                .get(4..4 + len)
                .ok_or_else(|| bad("truncated snappy block"))?;
            self.input = &self.input[4 + len..];
            block
        } else {
            std::mem::take(&mut self.input)
        };
        let n = snap::raw::decompress_len(compressed).map_err(|_| bad("bad snappy block"))?;
        if n > compressed.len().saturating_mul(SNAPPY_MAX_RATIO) + SNAPPY_MAX_RATIO {
            return Err(bad("snappy block claims an impossible size"));
        }
        self.total += n as u64;
        if self.total > MAX_DECOMPRESSED {
            return Err(bad("snappy records exceed the walk limit"));
        }
        self.block.resize(n, 0);
        snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(|_| bad("bad snappy block"))?;
        self.pos = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.block.len() - self.pos);
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// (timestamp, offset) of the first record with timestamp >= `target` in a stored batch.
pub fn first_at_or_after(batch: &[u8], target: i64) -> Result<Option<(i64, i64)>, &'static str> {
    first_at_or_after_from(batch, target, i64::MIN)
}

/// `first_at_or_after` among the records at or after offset `from` (the log start, which a
/// client may have set inside the batch).
pub fn first_at_or_after_from(
    batch: &[u8],
    target: i64,
    from: i64,
) -> Result<Option<(i64, i64)>, &'static str> {
    let h = BatchHeader::parse(batch).map_err(|_| "bad batch header")?;
    if h.is_log_append_time() {
        // Every record carries the batch's append time.
        return Ok((h.max_timestamp >= target && h.last_offset() >= from)
            .then_some((h.max_timestamp, h.base_offset.max(from))));
    }
    let mut found = None;
    let mut seen = 0i32;
    let last_delta = h.last_offset_delta.max(0) as i64;
    walk_batch(batch, |r| {
        let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
        // Consumers place records at base + delta; keep that inside the batch's range.
        let offset = h.base_offset + (r.offset_delta as i64).clamp(0, last_delta);
        if ts >= target && offset >= from {
            found = Some((ts, offset));
        }
        seen += 1;
        found.is_none() && seen < h.records_count
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::{make_batch, reseal_crc};
    use crate::log::batch::{patched_header, validate, LOG_OVERHEAD};

    #[test]
    fn walks_uncompressed_records() {
        let b = make_batch(5, 1000, None);
        let mut seen = Vec::new();
        let n = walk_batch(&b, |r| {
            seen.push(r.offset_delta);
            true
        })
        .unwrap();
        assert_eq!(n, 5);
        assert_eq!(seen, vec![0, 1, 2, 3, 4]);
        // make_batch uses timestamp delta == index
        assert_eq!(first_at_or_after(&b, 1003).unwrap(), Some((1003, 3)));
        assert_eq!(first_at_or_after(&b, 2000).unwrap(), None);
    }

    #[test]
    fn hostile_lengths_fail_cleanly() {
        assert!(walk_uncompressed(&[0x7f], |_| true).is_err());
        // a record claiming a huge length
        assert!(walk_uncompressed(&[0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0], |_| true).is_err());
        // an endless varint
        assert!(walk_uncompressed(&[0xff; 20], |_| true).is_err());
    }

    #[test]
    fn record_checks() {
        let b = make_batch(4, 1000, None);
        let h = validate(&b).unwrap();
        assert_eq!(
            check_records(&b, &h).unwrap(),
            RecordStats {
                min_timestamp: 1000,
                max_timestamp: 1003
            }
        );
        // a header claiming more records than the batch holds
        let mut lying = b.clone();
        lying[57..61].copy_from_slice(&5i32.to_be_bytes());
        lying[23..27].copy_from_slice(&4i32.to_be_bytes());
        reseal_crc(&mut lying);
        let h = validate(&lying).unwrap();
        assert!(check_records(&lying, &h).is_err());
    }

    /// A zstd batch of `count` identical small records whose header claims `claimed` records.
    fn zstd_batch(count: usize, claimed: i32) -> Vec<u8> {
        let record = [14u8, 0, 0, 0, 1, 2, b'x', 0]; // length 7, then the 7 bytes (deltas 0)
        let plain: Vec<u8> = record
            .iter()
            .copied()
            .cycle()
            .take(record.len() * count)
            .collect();
        let compressed = zstd::encode_all(&plain[..], 3).unwrap();
        let mut b = make_batch(1, 1000, None)[..HEADER_LEN].to_vec();
        b.extend_from_slice(&compressed);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[21..23].copy_from_slice(&4i16.to_be_bytes());
        b[23..27].copy_from_slice(&(claimed - 1).to_be_bytes());
        b[57..61].copy_from_slice(&claimed.to_be_bytes());
        reseal_crc(&mut b);
        b
    }

    #[test]
    fn compressed_batches_cannot_claim_records_they_lack() {
        let honest = zstd_batch(5000, 5000);
        let h = validate(&honest).unwrap();
        assert!(
            h.records_count as usize > honest.len() - HEADER_LEN,
            "small enough to be walked"
        );
        assert!(check_records(&honest, &h).is_ok());
        let lying = zstd_batch(5000, i32::MAX);
        let h = validate(&lying).unwrap();
        assert!(matches!(
            check_records(&lying, &h),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn compressed_batch_without_max_timestamp_gets_it_from_the_records() {
        // Three records with timestamp deltas 0, 5 and 2 (zigzag varints), offset deltas 0..2.
        let plain: Vec<u8> = [0u8, 10, 4]
            .iter()
            .enumerate()
            .flat_map(|(i, ts)| [14u8, 0, *ts, (2 * i) as u8, 1, 2, b'x', 0])
            .collect();
        let mut b = zstd_batch(1, 3)[..HEADER_LEN].to_vec();
        b.extend_from_slice(&zstd::encode_all(&plain[..], 3).unwrap());
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[35..43].copy_from_slice(&(-1i64).to_be_bytes()); // Sarama < 1.27 leaves it at -1
        reseal_crc(&mut b);
        let h = validate(&b).unwrap();
        let stats = check_records(&b, &h).unwrap();
        assert_eq!((stats.min_timestamp, stats.max_timestamp), (1000, 1005));
        let head = patched_header(&b, 7, 0, stats.max_timestamp, false);
        let mut stored = head.to_vec();
        stored.extend_from_slice(&b[HEADER_LEN..]);
        assert_eq!(
            validate(&stored).unwrap().max_timestamp,
            1005,
            "CRC rewritten"
        );
    }

    #[test]
    fn records_without_timestamps_are_not_bounded() {
        let b = make_batch(2, -1, None);
        let mut b = b;
        // make every record's timestamp -1: base -1, both deltas 0
        let body_start = HEADER_LEN;
        b[body_start + 2] = 0;
        let second = body_start + 8;
        b[second + 2] = 0;
        b[35..43].copy_from_slice(&(-1i64).to_be_bytes());
        reseal_crc(&mut b);
        let h = validate(&b).unwrap();
        assert_eq!(
            check_records(&b, &h).unwrap(),
            RecordStats {
                min_timestamp: -1,
                max_timestamp: -1
            }
        );
    }
}
