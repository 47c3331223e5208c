//! CPU-only parts of the produce and fetch paths, so regressions show without a broker:
//! batch validation (+ the uncompressed record walk) and header patching, offset-index lookup,
//! and Produce request decode / Fetch response encode.
//!
//!   cargo bench --bench hot_path

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchResponse, ProduceRequest, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::Compression;
use sluice::api::chunked::ChunkedBuf;
use sluice::log::segment::{self, IndexEntry};
use sluice::log::{batch, records};
use sluice::record_batch::{self, NewRecord, Producer};

/// One record batch of `count` records with `value_len`-byte values, as a producer sends it.
fn record_batch(count: usize, value_len: usize, compression: Compression) -> Bytes {
    let now = 1_700_000_000_000i64;
    let records = (0..count)
        .map(|i| NewRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; value_len])),
            timestamp: now + i as i64,
        })
        .collect();
    let producer = Producer {
        id: 42,
        epoch: 0,
        base_sequence: 0,
    };
    record_batch::encode(records, &producer, compression).expect("encode batch")
}

fn produce_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("produce_batch");
    // 256 KiB of 1 KiB records: librdkafka's batch.size in the benchmarks.
    for (name, compression) in [
        ("uncompressed", Compression::None),
        ("lz4", Compression::Lz4),
    ] {
        let b = record_batch(250, 1024, compression);
        group.throughput(Throughput::Bytes(b.len() as u64));
        group.bench_function(format!("validate_and_patch/{name}"), |bench| {
            bench.iter(|| {
                let h = batch::validate(black_box(&b)).expect("valid");
                let stats = records::check_records(&b, &h).expect("records");
                black_box(batch::patched_header(
                    &b,
                    1_000_000,
                    0,
                    stats.max_timestamp,
                    false,
                ))
            })
        });
    }
    group.finish();
}

fn index_lookup(c: &mut Criterion) {
    // A 1 GiB segment indexed every 4 KiB.
    let index: Vec<IndexEntry> = (0..262_144u32)
        .map(|i| IndexEntry {
            rel_offset: i * 4,
            position: i * 4096,
            max_ts_before: i as i64,
        })
        .collect();
    let mut offset = 0i64;
    c.bench_function("index_lookup/262144_entries", |bench| {
        bench.iter(|| {
            offset = (offset + 7919) % 1_048_576;
            black_box(segment::lookup(black_box(&index), 0, offset))
        })
    });
}

fn wire_codec(c: &mut Criterion) {
    let records = record_batch(250, 1024, Compression::None);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("bench")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records.clone()))])]);
    let mut encoded = BytesMut::new();
    request.encode(&mut encoded, 9).expect("encode produce");
    let encoded = encoded.freeze();
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("produce_v9_decode/256KiB", |bench| {
        bench.iter_batched(
            || encoded.clone(),
            |mut buf| black_box(ProduceRequest::decode(&mut buf, 9).expect("decode")),
            BatchSize::SmallInput,
        )
    });
    let response = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
        .with_topic(TopicName(StrBytes::from_static_str("bench")))
        .with_partitions(
            (0..3)
                .map(|p| {
                    PartitionData::default()
                        .with_partition_index(p)
                        .with_high_watermark(1_000_000)
                        .with_records(Some(records.clone()))
                })
                .collect(),
        )]);
    group.bench_function("fetch_v12_encode/3x256KiB", |bench| {
        bench.iter(|| {
            let size = response.compute_size(12).expect("size");
            let mut out = BytesMut::with_capacity(size);
            response.encode(&mut out, 12).expect("encode");
            black_box(out)
        })
    });
    // What the broker does: record batches go out by reference, only the framing is written.
    let batches = vec![records.clone(); 3];
    group.bench_function("fetch_v12_encode_by_reference/3x256KiB", |bench| {
        bench.iter(|| {
            let mut out = ChunkedBuf::new(1024, batches.clone());
            response.encode(&mut out, 12).expect("encode");
            black_box(out.into_chunks())
        })
    });
    group.finish();
}

/// What metrics add to one request on the hot path: the request counter and latency bucket,
/// the scan of a Produce response's error codes, and a topic's traffic counters. Compared with
/// the request's own work above (decode, validation), this is the whole per-request cost of
/// /metrics; scraping happens elsewhere.
fn metrics_per_request(c: &mut Criterion) {
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{ProduceResponse, ResponseKind};
    use sluice::metrics::METRICS;
    use sluice::topic::Traffic;
    let response = ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
        TopicProduceResponse::default().with_partition_responses(
            (0..3)
                .map(|i| PartitionProduceResponse::default().with_index(i))
                .collect(),
        ),
    ]));
    let traffic = Traffic::default();
    c.bench_function("metrics/produce_request_of_3_partitions", |bench| {
        bench.iter(|| {
            METRICS.request(0, 9, std::time::Duration::from_micros(black_box(180)));
            METRICS.response(0, black_box(&response));
            for _ in 0..3 {
                traffic.produced(black_box(262_144), black_box(256));
            }
        })
    });
}

criterion_group!(
    benches,
    produce_path,
    index_lookup,
    wire_codec,
    metrics_per_request
);
criterion_main!(benches);
