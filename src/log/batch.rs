//! A view over one RecordBatch (magic v2) header: validation and in-place patching.
//!
//! Layout (big-endian), offsets from the start of the batch:
//! 0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 |
//! 17 crc u32 (CRC32C of bytes 21..end) | 21 attributes i16 | 23 lastOffsetDelta i32 |
//! 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16 |
//! 53 baseSequence i32 | 57 recordsCount i32 | 61 records...

pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
pub const CRC_START: usize = 21;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's RecordBatch.NO_TIMESTAMP.
pub const NO_TIMESTAMP: i64 = -1;

/// Why a batch was refused. Mapped to Kafka error codes by the protocol layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchError {
    /// Truncated, bad length, bad magic or CRC mismatch (Kafka: CORRUPT_MESSAGE).
    Corrupt(&'static str),
    /// Structurally fine but not acceptable (Kafka: INVALID_RECORD).
    Invalid(&'static str),
}

#[inline]
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
#[inline]
fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// The fixed header fields of a batch, read from at least `HEADER_LEN` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size on disk, including baseOffset and batchLength.
    pub total_len: usize,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the fixed header. `buf` must hold at least `HEADER_LEN` bytes.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Corrupt("batch shorter than its header"));
        }
        let batch_length = be_i32(buf, 8);
        if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Corrupt("batch length smaller than the header"));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            total_len: batch_length as usize + LOG_OVERHEAD,
            magic: buf[16] as i8,
            crc: u32::from_be_bytes(buf[17..21].try_into().unwrap()),
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Sequence number of the last record (sequences wrap at i32::MAX, like Kafka).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        (last % (i32::MAX as i64 + 1)) as i32
    }
}

/// The partition leader epoch a stored batch carries (bytes 12..16, outside the CRC).
pub fn partition_leader_epoch(buf: &[u8]) -> i32 {
    buf.get(12..16)
        .map_or(-1, |b| i32::from_be_bytes(b.try_into().unwrap()))
}

/// Checks that `buf` is exactly one well-formed v2 batch with a valid CRC.
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    if header.magic != 2 {
        return Err(BatchError::Invalid(
            "only magic v2 record batches are accepted",
        ));
    }
    if header.total_len != buf.len() {
        return Err(if header.total_len > buf.len() {
            BatchError::Corrupt("batch length runs past the end of the records")
        } else {
            BatchError::Invalid("produce requests must contain exactly one record batch")
        });
    }
    if crc32c::crc32c(&buf[CRC_START..]) != header.crc {
        return Err(BatchError::Corrupt("CRC32C mismatch"));
    }
    if header.records_count <= 0 {
        return Err(BatchError::Invalid("record batch holds no records"));
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(BatchError::Invalid(
            "lastOffsetDelta does not match the record count",
        ));
    }
    if header.compression() > 4 {
        return Err(BatchError::Invalid("unknown compression codec"));
    }
    Ok(header)
}

/// The first `HEADER_LEN` bytes of a batch as they go to disk: base offset and leader epoch
/// (outside the CRC) patched. When `max_timestamp` differs from the header's, or the topic
/// uses LogAppendTime, the timestamp fields and the CRC are rewritten as Kafka does.
pub fn patched_header(
    batch: &[u8],
    base_offset: i64,
    leader_epoch: i32,
    max_timestamp: i64,
    log_append_time: bool,
) -> [u8; HEADER_LEN] {
    let mut head: [u8; HEADER_LEN] = batch[..HEADER_LEN].try_into().unwrap();
    head[0..8].copy_from_slice(&base_offset.to_be_bytes());
    head[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    if log_append_time || be_i64(&head, 35) != max_timestamp {
        if log_append_time {
            let attributes = be_i16(&head, 21) | ATTR_LOG_APPEND_TIME;
            head[21..23].copy_from_slice(&attributes.to_be_bytes());
        }
        head[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&head[CRC_START..]), &batch[HEADER_LEN..]);
        head[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    head
}

/// Walks consecutive batches in `buf`, yielding (position, header) for each complete one.
pub fn headers(buf: &[u8]) -> impl Iterator<Item = (usize, BatchHeader)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = BatchHeader::parse(buf.get(pos..)?).ok()?;
        if pos + header.total_len > buf.len() {
            return None;
        }
        let at = pos;
        pos += header.total_len;
        Some((at, header))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal uncompressed batch of `count` empty-ish records: the one batch builder
    /// of the log's unit tests.
    pub fn make_batch(count: i32, timestamp: i64, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            // record: length varint, attributes, ts delta, offset delta, key len -1, value len 1, 'x', headers 0
            // attributes, timestamp delta i, offset delta i, no key, 1-byte value, no headers
            let body = [0u8, (i as u8) << 1, (i as u8) << 1, 1, 2, b'x', 0];
            records.push((body.len() as u8) << 1);
            records.extend_from_slice(&body);
        }
        let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
        let mut b = Vec::new();
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(count - 1).to_be_bytes());
        b.extend_from_slice(&timestamp.to_be_bytes());
        b.extend_from_slice(&(timestamp + count as i64 - 1).to_be_bytes());
        b.extend_from_slice(&pid.to_be_bytes());
        b.extend_from_slice(&epoch.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&records);
        reseal_crc(&mut b);
        b
    }

    /// Recomputes the CRC of a batch a test has edited inside the CRC'd range.
    pub fn reseal_crc(b: &mut [u8]) {
        let crc = crc32c::crc32c(&b[CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn valid_batch_passes() {
        let b = make_batch(3, 1000, None);
        let h = validate(&b).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.total_len, b.len());
    }

    #[test]
    fn corrupt_crc_is_detected() {
        let mut b = make_batch(2, 1000, None);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(validate(&b), Err(BatchError::Corrupt(_))));
    }

    #[test]
    fn truncated_and_trailing_bytes() {
        let b = make_batch(2, 1000, None);
        assert!(matches!(
            validate(&b[..b.len() - 1]),
            Err(BatchError::Corrupt(_))
        ));
        assert!(matches!(validate(&b[..30]), Err(BatchError::Corrupt(_))));
        let mut two = b.clone();
        two.extend_from_slice(&b);
        assert!(matches!(validate(&two), Err(BatchError::Invalid(_))));
    }

    #[test]
    fn bad_magic_is_invalid() {
        let mut b = make_batch(1, 0, None);
        b[16] = 1;
        assert!(matches!(validate(&b), Err(BatchError::Invalid(_))));
    }

    #[test]
    fn patching_keeps_crc_valid() {
        let b = make_batch(2, 1000, None);
        let head = patched_header(&b, 42, 7, 1001, false);
        let mut out = head.to_vec();
        out.extend_from_slice(&b[HEADER_LEN..]);
        let h = validate(&out).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(&out[16..], &b[16..], "nothing inside the CRC changed");
        let head = patched_header(&b, 42, 7, 5555, true);
        let mut out = head.to_vec();
        out.extend_from_slice(&b[HEADER_LEN..]);
        let h = validate(&out).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 5555);
    }

    #[test]
    fn sequence_wraps() {
        let b = make_batch(3, 0, Some((1, 0, i32::MAX - 1)));
        let h = validate(&b).unwrap();
        assert_eq!(h.last_sequence(), 0); // MAX-1, MAX, 0
    }
}
