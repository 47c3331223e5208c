//! Builds magic-2 record batches with kafka-protocol's encoder: the state logs' batches and the
//! producer-like batches of unit tests and benchmarks, so there is one builder for all of them.
//! (The log engine's own unit tests hand-build bytes: the engine knows no protocol crate.)

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One record to put in a batch.
pub struct NewRecord {
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub timestamp: i64,
}

/// Who writes the batch: an idempotent producer's id, epoch and first sequence, or nobody.
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl Producer {
    /// Not idempotent: no producer id, epoch or sequence.
    pub const NONE: Producer = Producer {
        id: -1,
        epoch: -1,
        base_sequence: -1,
    };
}

/// One batch holding `records` in order (offsets relative to 0; the log assigns real ones).
pub fn encode(
    records: Vec<NewRecord>,
    producer: &Producer,
    compression: Compression,
) -> anyhow::Result<Bytes> {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.id,
            producer_epoch: producer.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence stays constant.
            sequence: producer.base_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp,
            key: r.key,
            value: r.value,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)?;
    Ok(buf.freeze())
}
