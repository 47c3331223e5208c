//! Prometheus metrics, served on the admin listener (`admin_http`). The hot path only does
//! relaxed atomic increments on counters that exist from the start (fixed tables per API key
//! and version or error code, latency buckets per API), on the topic it already holds
//! (`Topic::traffic`) and on the log engine's and tier's histograms (`stats`); everything else
//! (partitions, groups, the tier, the cleaner, transactions, the process) is read when
//! /metrics is scraped. prometheus-client encodes the text format.

use crate::api;
use crate::api::errors::ResponseError;
use crate::broker::Broker;
use crate::stats::HistogramSnapshot;
use kafka_protocol::messages::ResponseKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// API keys and versions the table has room for (Kafka's keys are below 100, versions below 20).
const KEYS: usize = 100;
const VERSIONS: usize = 20;
/// Error codes the table has room for: -1 (UNKNOWN_SERVER_ERROR) up to 158 (Kafka 4.1 ends
/// near 130), at index code + 1.
const ERROR_CODES: usize = 160;
/// Upper bounds of the request latency buckets, in seconds (the last bucket is +Inf).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

struct ApiLatency {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// Process-wide request and connection counters.
pub struct Metrics {
    requests: [[AtomicU64; VERSIONS]; KEYS],
    latency: [ApiLatency; KEYS],
    /// Error codes in responses, by API key and code + 1.
    errors: [[AtomicU64; ERROR_CODES]; KEYS],
    /// Connections closed because of a bad request (unknown API, unsupported version,
    /// undecodable or oversized frame).
    requests_refused: AtomicU64,
    connections_open: AtomicI64,
    connections_opened: AtomicU64,
    /// Responses that carried a quota's throttle time, and the sum of those times.
    throttled: AtomicU64,
    throttle_ms: AtomicU64,
    /// Connections closed at accept by max.connections.per.ip or an ip's connection rate.
    connections_rejected: AtomicU64,
}

pub static METRICS: Metrics = Metrics {
    requests: [const { [const { AtomicU64::new(0) }; VERSIONS] }; KEYS],
    latency: [const {
        ApiLatency {
            buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len() + 1],
            sum_micros: AtomicU64::new(0),
        }
    }; KEYS],
    errors: [const { [const { AtomicU64::new(0) }; ERROR_CODES] }; KEYS],
    requests_refused: AtomicU64::new(0),
    connections_open: AtomicI64::new(0),
    connections_opened: AtomicU64::new(0),
    throttled: AtomicU64::new(0),
    throttle_ms: AtomicU64::new(0),
    connections_rejected: AtomicU64::new(0),
};

impl Metrics {
    /// One request answered (or, without a response, handled) after `took`.
    pub fn request(&self, api_key: i16, api_version: i16, took: Duration) {
        let (Ok(key), Ok(version)) = (usize::try_from(api_key), usize::try_from(api_version))
        else {
            return;
        };
        if key >= KEYS || version >= VERSIONS {
            return;
        }
        self.requests[key][version].fetch_add(1, Relaxed);
        let secs = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        let l = &self.latency[key];
        l.buckets[bucket].fetch_add(1, Relaxed);
        l.sum_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// Counts the error codes of a response about to be sent.
    pub fn response(&self, api_key: i16, response: &ResponseKind) {
        let Some(row) = usize::try_from(api_key)
            .ok()
            .and_then(|k| self.errors.get(k))
        else {
            return;
        };
        api::errors::response_errors(response, |code| {
            if let Some(n) = usize::try_from(i32::from(code) + 1)
                .ok()
                .and_then(|i| row.get(i))
            {
                n.fetch_add(1, Relaxed);
            }
        });
    }

    pub fn request_refused(&self) {
        self.requests_refused.fetch_add(1, Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections_opened.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
    }

    /// A request over its client's quota, throttled for `ms`.
    pub fn throttled(&self, ms: u64) {
        self.throttled.fetch_add(1, Relaxed);
        self.throttle_ms.fetch_add(ms, Relaxed);
    }

    pub fn connection_rejected(&self) {
        self.connections_rejected.fetch_add(1, Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }
}

/// Encodes everything on a scrape: the counters above, each partition's offsets and size,
/// and the process.
#[derive(Debug)]
pub struct Scrape {
    pub broker: &'static OnceLock<Weak<Broker>>,
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&'static str, String)>, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    if let [(labels, v)] = series {
        if labels.is_empty() {
            return ConstCounter::new(*v).encode(family);
        }
    }
    for (labels, v) in series {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ConstCounter::new(*v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&'static str, String)>, i64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    if let [(labels, v)] = series {
        if labels.is_empty() {
            return ConstGauge::new(*v).encode(family);
        }
    }
    for (labels, v) in series {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ConstGauge::new(*v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn api_name(key: usize) -> Option<String> {
    api::lookup(key as i16).map(|e| format!("{:?}", e.key))
}

/// Kafka's name of an error code (UNKNOWN_TOPIC_OR_PARTITION), from the protocol crate's
/// variant name; a code it does not know is `CODE_<n>`.
fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("CODE_{c}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        }
    }
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &HistogramSnapshot,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    family.encode_histogram::<Vec<(String, String)>>(h.sum, h.count, &h.buckets, None)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &METRICS;
        let mut requests = Vec::new();
        for (key, versions) in m.requests.iter().enumerate() {
            for (version, n) in versions.iter().enumerate() {
                let n = n.load(Relaxed);
                if let (Some(api), true) = (api_name(key), n > 0) {
                    requests.push((vec![("api", api), ("version", version.to_string())], n));
                }
            }
        }
        counter(
            &mut encoder,
            "sluice_requests",
            "Requests handled, by API and version.",
            &requests,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "sluice_request_latency_seconds",
                "Time from a request's arrival to its response's write, by API.",
                None,
                MetricType::Histogram,
            )?;
            for (key, l) in m.latency.iter().enumerate() {
                let Some(api) = api_name(key) else { continue };
                let counts: Vec<u64> = l.buckets.iter().map(|b| b.load(Relaxed)).collect();
                let total: u64 = counts.iter().sum();
                if total == 0 {
                    continue;
                }
                // Per-bucket counts: the encoder makes them cumulative.
                let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                    .iter()
                    .copied()
                    .chain([f64::INFINITY])
                    .zip(counts)
                    .collect();
                let sum = l.sum_micros.load(Relaxed) as f64 / 1e6;
                family
                    .encode_family(&[("api", api.as_str())])?
                    .encode_histogram::<Vec<(String, String)>>(sum, total, &buckets, None)?;
            }
        }
        let mut errors = Vec::new();
        for (key, codes) in m.errors.iter().enumerate() {
            for (i, n) in codes.iter().enumerate() {
                let n = n.load(Relaxed);
                if let (Some(api), true) = (api_name(key), n > 0) {
                    let error = error_name(i as i16 - 1);
                    errors.push((vec![("api", api), ("error", error)], n));
                }
            }
        }
        counter(
            &mut encoder,
            "sluice_request_errors",
            "Error codes in responses (top level, per group, topic and partition), by API and Kafka error name.",
            &errors,
        )?;
        counter(
            &mut encoder,
            "sluice_requests_refused",
            "Requests that closed their connection (unknown API, unsupported version, undecodable).",
            &[(vec![], m.requests_refused.load(Relaxed))],
        )?;
        gauge(
            &mut encoder,
            "sluice_connections_open",
            "Client connections open now.",
            &[(vec![], m.connections_open.load(Relaxed))],
        )?;
        counter(
            &mut encoder,
            "sluice_connections_opened",
            "Client connections accepted since start.",
            &[(vec![], m.connections_opened.load(Relaxed))],
        )?;
        counter(
            &mut encoder,
            "sluice_connections_rejected",
            "Connections closed at accept by max.connections.per.ip or an ip's connection_creation_rate.",
            &[(vec![], m.connections_rejected.load(Relaxed))],
        )?;
        counter(
            &mut encoder,
            "sluice_quota_throttled_requests",
            "Requests over their client's quota (throttle time in the response, connection muted).",
            &[(vec![], m.throttled.load(Relaxed))],
        )?;
        counter(
            &mut encoder,
            "sluice_quota_throttle_time_ms",
            "Sum of the throttle times of those requests, in milliseconds.",
            &[(vec![], m.throttle_ms.load(Relaxed))],
        )?;
        encode_storage(&mut encoder)?;
        if let Some(broker) = self.broker.get().and_then(Weak::upgrade) {
            encode_partitions(&mut encoder, &broker)?;
            encode_topics(&mut encoder, &broker)?;
            encode_groups(&mut encoder, &broker)?;
            encode_tier(&mut encoder, &broker)?;
            encode_cleaner_and_transactions(&mut encoder, &broker)?;
        }
        encode_process(&mut encoder)
    }
}

fn encode_partitions(
    encoder: &mut DescriptorEncoder,
    broker: &Arc<Broker>,
) -> Result<(), std::fmt::Error> {
    let mut start = Vec::new();
    let mut end = Vec::new();
    let mut hw = Vec::new();
    let mut size = Vec::new();
    for t in broker.topics() {
        for p in &t.partitions {
            let labels = vec![
                ("topic", t.name.clone()),
                ("partition", p.index.to_string()),
            ];
            let o = p.offsets();
            start.push((labels.clone(), o.log_start));
            end.push((labels.clone(), o.log_end));
            hw.push((labels.clone(), o.high_watermark));
            size.push((labels, p.size_bytes() as i64));
        }
    }
    let per_partition = [
        (
            "sluice_partition_log_start_offset",
            "First offset of the log.",
            start,
        ),
        (
            "sluice_partition_log_end_offset",
            "Offset the next record gets.",
            end,
        ),
        (
            "sluice_partition_high_watermark",
            "Offsets below it are readable (durable).",
            hw,
        ),
        (
            "sluice_partition_size_bytes",
            "Bytes of the partition's local segments.",
            size,
        ),
    ];
    for (name, help, series) in per_partition {
        gauge(encoder, name, help, &series)?;
    }
    Ok(())
}

/// Client traffic per topic (`Topic::traffic`).
fn encode_topics(
    encoder: &mut DescriptorEncoder,
    broker: &Arc<Broker>,
) -> Result<(), std::fmt::Error> {
    let (mut bytes_in, mut records_in, mut bytes_out, mut records_out) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in broker.topics() {
        let c = t.traffic.counts();
        let labels = vec![("topic", t.name.clone())];
        bytes_in.push((labels.clone(), c.bytes_in));
        records_in.push((labels.clone(), c.records_in));
        bytes_out.push((labels.clone(), c.bytes_out));
        records_out.push((labels, c.records_out));
    }
    let per_topic = [
        (
            "sluice_topic_bytes_in",
            "Record batch bytes produced to the topic (duplicates of retried batches left out).",
            bytes_in,
        ),
        (
            "sluice_topic_records_in",
            "Records produced to the topic.",
            records_in,
        ),
        (
            "sluice_topic_bytes_out",
            "Record batch bytes fetched from the topic.",
            bytes_out,
        ),
        (
            "sluice_topic_records_out",
            "Records fetched from the topic (transaction markers left out).",
            records_out,
        ),
    ];
    for (name, help, series) in per_topic {
        counter(encoder, name, help, &series)?;
    }
    Ok(())
}

/// Members, state and per-partition lag of every group, from the coordinator. Lag is what
/// `sluice group describe` and the console show (`console::groups::lag`).
fn encode_groups(
    encoder: &mut DescriptorEncoder,
    broker: &Arc<Broker>,
) -> Result<(), std::fmt::Error> {
    let (mut members, mut states, mut lags) = (Vec::new(), Vec::new(), Vec::new());
    for g in broker.groups.list_groups(&[], &[]) {
        let described = crate::console::groups::describe(broker, &g.group_id);
        let group_members = described.map_or(Vec::new(), |d| d.members);
        members.push((
            vec![("group", g.group_id.clone())],
            group_members.len() as i64,
        ));
        states.push((
            vec![
                ("group", g.group_id.clone()),
                ("state", g.state.to_string()),
            ],
            1,
        ));
        for p in crate::console::groups::lag(broker, &g.group_id, &group_members) {
            if let Some(lag) = p.lag {
                lags.push((
                    vec![
                        ("group", g.group_id.clone()),
                        ("topic", p.topic),
                        ("partition", p.partition.to_string()),
                    ],
                    lag,
                ));
            }
        }
    }
    gauge(
        encoder,
        "sluice_group_members",
        "Members of the group.",
        &members,
    )?;
    gauge(
        encoder,
        "sluice_group_state",
        "1 for the group's current state.",
        &states,
    )?;
    gauge(
        encoder,
        "sluice_group_lag",
        "High watermark minus the group's committed offset (the whole high watermark when nothing is committed), per partition it committed for or owns.",
        &lags,
    )
}

/// The log engine's group commit and page-cache figures (process-wide).
fn encode_storage(encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    histogram(
        encoder,
        "sluice_fsync_seconds",
        "Time each partition flush spent in fsync (files and, after a new file, the directory).",
        &crate::log::FSYNC_SECONDS.snapshot(),
    )?;
    histogram(
        encoder,
        "sluice_fsync_appends",
        "Appends each partition flush made durable (group commit batch size).",
        &crate::log::APPENDS_PER_FSYNC.snapshot(),
    )?;
    gauge(
        encoder,
        "sluice_page_cache_bytes",
        "Bytes of recently fsynced log kept in the page cache under log.page.cache.max.bytes (0 without a budget).",
        &[(vec![], crate::log::flush::PAGE_CACHE_BYTES.load(Relaxed) as i64)],
    )
}

/// Tiered storage: copies, what is still to copy, remote reads and the chunk cache.
fn encode_tier(
    encoder: &mut DescriptorEncoder,
    broker: &Arc<Broker>,
) -> Result<(), std::fmt::Error> {
    let Some(tier) = &broker.tier else {
        return Ok(());
    };
    let (mut lag_bytes, mut lag_segments) = (0u64, 0usize);
    for t in broker.topics() {
        for p in t.partitions.iter().filter(|p| p.config().remote_storage) {
            let (b, n) = p.upload_lag();
            lag_bytes += b;
            lag_segments += n;
        }
    }
    gauge(
        encoder,
        "sluice_tier_upload_lag_bytes",
        "Bytes of sealed local segments not yet copied to the tier.",
        &[(vec![], lag_bytes as i64)],
    )?;
    gauge(
        encoder,
        "sluice_tier_upload_lag_segments",
        "Sealed local segments not yet copied to the tier.",
        &[(vec![], lag_segments as i64)],
    )?;
    let s = &tier.stats;
    let (hits, misses) = tier.cache_counts();
    let counters = [
        (
            "sluice_tier_uploaded_bytes",
            "Segment bytes copied to the tier.",
            s.bytes_uploaded.load(Relaxed),
        ),
        (
            "sluice_tier_uploaded_segments",
            "Segments copied to the tier.",
            s.segments_uploaded.load(Relaxed),
        ),
        (
            "sluice_tier_upload_errors",
            "Failed upload turns of a partition (retried with backoff).",
            s.upload_failures.load(Relaxed),
        ),
        (
            "sluice_tier_remote_segments_deleted",
            "Remote segments deleted by remote retention.",
            s.segments_deleted.load(Relaxed),
        ),
        (
            "sluice_tier_remote_read_bytes",
            "Record bytes read from the tier.",
            s.remote_read_bytes.load(Relaxed),
        ),
        (
            "sluice_tier_cache_hits",
            "Chunk reads served by the local chunk cache.",
            hits,
        ),
        (
            "sluice_tier_cache_misses",
            "Chunk reads that went to the object store.",
            misses,
        ),
    ];
    for (name, help, v) in counters {
        counter(encoder, name, help, &[(vec![], v)])?;
    }
    histogram(
        encoder,
        "sluice_tier_remote_read_seconds",
        "Time of each read of records from the tier.",
        &crate::tier::REMOTE_READ_SECONDS.snapshot(),
    )
}

fn encode_cleaner_and_transactions(
    encoder: &mut DescriptorEncoder,
    broker: &Arc<Broker>,
) -> Result<(), std::fmt::Error> {
    {
        let c = &broker.cleaner_totals;
        let counters = [
            ("sluice_cleaner_passes", "Log cleaner passes.", &c.passes),
            (
                "sluice_cleaner_bytes_read",
                "Bytes the cleaner read.",
                &c.bytes_read,
            ),
            (
                "sluice_cleaner_bytes_written",
                "Bytes the cleaner wrote (the cleaned segments).",
                &c.bytes_written,
            ),
            (
                "sluice_cleaner_records_removed",
                "Records compaction removed.",
                &c.records_removed,
            ),
            (
                "sluice_cleaner_errors",
                "Cleaner passes that failed.",
                &c.errors,
            ),
        ];
        for (name, help, v) in counters {
            counter(encoder, name, help, &[(vec![], v.load(Relaxed))])?;
        }
    }
    let (committed, aborted) = broker.transactions.completed();
    gauge(
        encoder,
        "sluice_transactions_ongoing",
        "Transactions open now (ongoing, or their markers being written).",
        &[(vec![], broker.transactions.ongoing() as i64)],
    )?;
    counter(
        encoder,
        "sluice_transactions_committed",
        "Transactions committed (markers written).",
        &[(vec![], committed)],
    )?;
    counter(
        encoder,
        "sluice_transactions_aborted",
        "Transactions aborted (markers written), timed-out ones included.",
        &[(vec![], aborted)],
    )
}

/// RSS, CPU time and open files from /proc/self (Linux; nothing elsewhere).
fn encode_process(encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let page = 4096i64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok())
        .map(|pages| pages * page);
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second).
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(") ")?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let ticks =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        });
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .ok();
    if let Some(rss) = rss {
        gauge(
            encoder,
            "process_resident_memory_bytes",
            "Resident memory.",
            &[(vec![], rss)],
        )?;
    }
    if let Some(cpu) = cpu {
        let family = encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(cpu).encode(family)?;
    }
    if let Some(fds) = open_fds {
        gauge(
            encoder,
            "process_open_fds",
            "Open file descriptors.",
            &[(vec![], fds)],
        )?;
    }
    Ok(())
}
