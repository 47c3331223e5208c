//! Record batches as a client writes and reads them (kafka-protocol's magic-2 codec).

use super::error::{CliError, Result};
use bytes::Bytes;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};

/// A record to produce.
#[derive(Clone, Debug)]
pub struct NewRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    pub timestamp: i64,
}

/// An idempotent producer's identity and the first sequence number of a batch.
#[derive(Clone, Copy, Debug)]
pub struct Sequenced {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// One batch of `records` (not idempotent: no producer id or sequence).
pub fn encode(records: &[NewRecord], compression: Compression) -> Result<Bytes> {
    encode_sequenced(records, compression, None)
}

/// One batch of `records`, with the idempotent producer's id, epoch and sequence when given.
pub fn encode_sequenced(
    records: &[NewRecord],
    compression: Compression,
    sequenced: Option<Sequenced>,
) -> Result<Bytes> {
    let (producer_id, producer_epoch, base_sequence) = match sequenced {
        Some(s) => (s.producer_id, s.producer_epoch, s.base_sequence),
        None => (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE),
    };
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch when offset - sequence changes: keep it constant.
            sequence: base_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect(),
        })
        .collect();
    let mut buf = Vec::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| CliError::Other(format!("cannot encode the record batch: {e}")))?;
    Ok(Bytes::from(buf))
}

/// A fetched record (control records too: consume drops them after reading their markers).
pub struct FetchedRecord {
    pub control: bool,
    pub transactional: bool,
    pub producer_id: i64,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// The records of fetched batches, and the offset after the last complete batch (the
/// next fetch offset; batches may end past their last record after compaction or be control
/// batches). A partial batch at the end, which a fetch may return, is left for the next fetch.
pub fn decode(data: Bytes) -> Result<(Vec<FetchedRecord>, Option<i64>)> {
    const HEADER: usize = 61;
    let mut out = Vec::new();
    let mut next = None;
    let mut pos = 0;
    while data.len() - pos >= HEADER {
        let b = &data[pos..];
        let base = i64::from_be_bytes(b[0..8].try_into().unwrap());
        let len = i32::from_be_bytes(b[8..12].try_into().unwrap());
        if len < 0 || b.len() < 12 + len as usize {
            break;
        }
        let magic = b[16] as i8;
        let end = pos + 12 + len as usize;
        if magic != 2 {
            return Err(CliError::Other(format!(
                "message format v{magic} at offset {base} is not supported (only record batches v2)"
            )));
        }
        let last_delta = i32::from_be_bytes(b[23..27].try_into().unwrap());
        let mut batch = data.slice(pos..end);
        let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| {
            CliError::Other(format!("cannot decode the batch at offset {base}: {e}"))
        })?;
        for r in set.records {
            out.push(FetchedRecord {
                control: r.control,
                transactional: r.transactional,
                producer_id: r.producer_id,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
        next = Some(base + last_delta as i64 + 1);
        pos = end;
    }
    Ok((out, next))
}

/// Java's murmur2 (the default partitioner's hash of a key), so keys land where Kafka's own
/// clients put them.
pub fn murmur2(data: &[u8]) -> i32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= (tail[2] as u32) << 16;
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        2 => {
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        1 => {
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_java() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn batches_round_trip() {
        let records = vec![NewRecord {
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![("h".into(), Some(Bytes::from_static(b"1")))],
            timestamp: 1234,
        }];
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let batch = encode(&records, c).unwrap();
            let (got, next) = decode(batch).unwrap();
            assert_eq!(next, Some(1));
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].key.as_deref(), Some(&b"k"[..]));
            assert_eq!(got[0].headers[0].0, "h");
            assert_eq!(got[0].timestamp, 1234);
        }
    }
}
