//! Transaction markers: the control batches a transaction coordinator writes into every
//! partition of a transaction to end it (Kafka's EndTransactionMarker / ControlRecordType).
//!
//! A marker is a v2 batch with the transactional and control attribute bits, the producer's
//! id and epoch, base sequence -1 and one uncompressed record:
//! key   = version i16 (0) | type i16 (0 ABORT, 1 COMMIT)
//! value = version i16 (0) | coordinator epoch i32
//! The batch is built here in bytes (base offset 0 and leader epoch -1, patched on append like
//! any producer's batch), with its CRC32C.

use super::batch::{self, BatchHeader, CRC_START, HEADER_LEN, LOG_OVERHEAD};

/// Kafka's ControlRecordType ids of the two transaction markers.
const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;
const ATTRIBUTES: i16 = batch::ATTR_TRANSACTIONAL | batch::ATTR_CONTROL;
/// Kafka's RecordBatch.NO_SEQUENCE: markers carry no sequence number.
const NO_SEQUENCE: i32 = -1;
/// Bytes of one marker record after its length varint: attributes, timestamp delta, offset
/// delta, key length, key, value length, value, header count.
const RECORD_BODY_LEN: u8 = 1 + 1 + 1 + 1 + 4 + 1 + 6 + 1;
/// Whole marker batch: header, the record's length varint, the record.
pub const MARKER_BATCH_LEN: usize = HEADER_LEN + 1 + RECORD_BODY_LEN as usize;

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Builds the control batch ending `producer_id`'s transaction, stamped with `timestamp`.
pub fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTxnMarker,
    timestamp: i64,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(MARKER_BATCH_LEN);
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset, patched on append
    b.extend_from_slice(&((MARKER_BATCH_LEN - LOG_OVERHEAD) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch, patched on append
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // CRC, below
    b.extend_from_slice(&ATTRIBUTES.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta: one record
    b.extend_from_slice(&timestamp.to_be_bytes()); // base timestamp
    b.extend_from_slice(&timestamp.to_be_bytes()); // max timestamp
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&NO_SEQUENCE.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // record count
                                              // The record. Small varints are zigzag: 2 * n.
    b.push(RECORD_BODY_LEN << 1);
    b.push(0); // attributes
    b.push(0); // timestamp delta
    b.push(0); // offset delta
    b.push(4 << 1); // key length
    b.extend_from_slice(&0i16.to_be_bytes());
    let kind = if marker.commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    b.extend_from_slice(&kind.to_be_bytes());
    b.push(6 << 1); // value length
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    b.push(0); // no headers
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(b.len(), MARKER_BATCH_LEN);
    b
}

/// Zigzag varint at `buf[*pos..]` (at most 5 bytes: record fields are 32-bit here).
fn varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

/// The marker in a stored control batch (`batch` starts at its header and holds at least its
/// first record), or None when it is not a transaction marker (another control type, a
/// compressed or malformed batch). Like Kafka, a newer key or value version is read as v0.
pub fn parse_marker(batch: &[u8]) -> Option<EndTxnMarker> {
    let h = BatchHeader::parse(batch).ok()?;
    if !h.is_control() || h.compression() != 0 || h.records_count < 1 {
        return None;
    }
    let end = h.total_len.min(batch.len());
    let rec = batch.get(HEADER_LEN..end)?;
    let mut pos = 0;
    let len = usize::try_from(varint(rec, &mut pos)?).ok()?;
    let rec = rec.get(pos..pos.checked_add(len)?)?;
    let mut pos = 1; // attributes
    varint(rec, &mut pos)?; // timestamp delta
    varint(rec, &mut pos)?; // offset delta
    let key_len = usize::try_from(varint(rec, &mut pos)?).ok()?;
    let key = rec.get(pos..pos.checked_add(key_len)?)?;
    pos += key_len;
    if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) < 0 {
        return None;
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_TYPE_ABORT => false,
        CONTROL_TYPE_COMMIT => true,
        _ => return None,
    };
    let value_len = usize::try_from(varint(rec, &mut pos)?).ok()?;
    let value = rec.get(pos..pos.checked_add(value_len)?)?;
    if value.len() < 6 || i16::from_be_bytes([value[0], value[1]]) < 0 {
        return None;
    }
    Some(EndTxnMarker {
        commit,
        coordinator_epoch: i32::from_be_bytes(value[2..6].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records;

    #[test]
    fn marker_round_trip_and_valid_batch() {
        for commit in [false, true] {
            let m = EndTxnMarker {
                commit,
                coordinator_epoch: 7,
            };
            let b = encode_marker(42, 3, m, 1_700_000_000_000);
            let h = batch::validate(&b).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (42, 3, -1)
            );
            assert_eq!((h.records_count, h.last_offset_delta), (1, 0));
            records::check_records(&b, &h).unwrap();
            assert_eq!(parse_marker(&b), Some(m));
        }
    }

    #[test]
    fn matches_kafkas_bytes() {
        // The record section of Kafka's MemoryRecords.withEndTransactionMarker(COMMIT, epoch 5):
        // length 16, attrs 0, ts delta 0, offset delta 0, key (len 4) 0,1, value (len 6) 0,5, no headers.
        let b = encode_marker(
            1,
            0,
            EndTxnMarker {
                commit: true,
                coordinator_epoch: 5,
            },
            0,
        );
        assert_eq!(
            &b[HEADER_LEN..],
            &[32, 0, 0, 0, 8, 0, 0, 0, 1, 12, 0, 0, 0, 0, 0, 5, 0]
        );
    }

    #[test]
    fn non_markers_are_not_parsed() {
        let data = batch::tests::make_batch(1, 0, None);
        assert_eq!(parse_marker(&data), None);
        let mut b = encode_marker(
            1,
            0,
            EndTxnMarker {
                commit: false,
                coordinator_epoch: 0,
            },
            0,
        );
        b[HEADER_LEN + 8] = 2; // another control type (Kafka's LEADER_CHANGE)
        assert_eq!(parse_marker(&b), None);
        assert_eq!(parse_marker(&b[..HEADER_LEN + 3]), None);
    }
}
