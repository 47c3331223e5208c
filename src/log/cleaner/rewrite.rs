//! Rewrites one stored batch without the records the cleaner drops. Kept records are copied
//! byte for byte; the batch keeps its base offset, last offset delta, producer id, epoch and
//! base sequence (so offsets and idempotence state stay as they were), and gets a new record
//! count, max timestamp, length and CRC. A compressed batch is recompressed with its codec.

use crate::log::batch::{BatchHeader, CRC_START, HEADER_LEN};
use crate::log::compression::{compress, Levels};
use crate::log::records::RecordView;

pub enum Rewritten {
    /// Every record is kept: the stored bytes stay.
    Unchanged,
    /// No record is kept and the batch is not needed for producer state.
    Dropped,
    Replaced(Vec<u8>),
}

const COMPRESSION_BITS: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;

/// The batch `batch` (header `h`, records `records` over the decompressed `section`) with
/// only the records `keep` says. With `keep_empty`, a batch that loses every record stays as
/// an empty batch (Kafka does this for a producer's newest batch).
pub fn filter_batch(
    batch: &[u8],
    h: &BatchHeader,
    section: &[u8],
    records: &[RecordView],
    keep: &[bool],
    keep_empty: bool,
) -> Result<Rewritten, &'static str> {
    let kept: Vec<&RecordView> = records
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(r, _)| r)
        .collect();
    if kept.len() == records.len() {
        return Ok(Rewritten::Unchanged);
    }
    if kept.is_empty() && !keep_empty {
        return Ok(Rewritten::Dropped);
    }
    let mut raw = Vec::with_capacity(section.len());
    for r in &kept {
        raw.extend_from_slice(&section[r.bytes.clone()]);
    }
    let mut attributes = h.attributes;
    let body = if kept.is_empty() {
        // An empty batch carries no compressed stream: clients would fail to inflate one.
        attributes &= !COMPRESSION_BITS;
        Vec::new()
    } else {
        compress(h.compression(), &raw, &Levels::default())?
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    out.extend_from_slice(&body);
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    if attributes & TIMESTAMP_TYPE_BIT == 0 {
        // CreateTime: the newest kept record's timestamp (an empty batch keeps the old one).
        if let Some(max_delta) = kept.iter().map(|r| r.timestamp_delta).max() {
            let max_ts = h.base_timestamp.saturating_add(max_delta);
            out[35..43].copy_from_slice(&max_ts.to_be_bytes());
        }
    }
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(Rewritten::Replaced(out))
}
