//! Load generator for `scripts/bench`: the client side of every broker benchmark, built on
//! librdkafka (the `rdkafka` crate) so that sluice and any peer broker see the same client.
//!
//! Every sub-command prints exactly one JSON line of results on stdout (progress goes to stderr):
//!
//!   loadgen produce --bootstrap B --topic T --record-size 1024 --partitions 3 --acks all \
//!                   --seconds 20 [--rate-mb 20] [--linger-ms 5] [--batch-bytes 262144] [--max-mb N]
//!   loadgen consume --bootstrap B --topic T [--seconds 60]      whole topic from the start
//!   loadgen e2e     --bootstrap B --topic T --partitions 3 --rate-mb 20 --seconds 20
//!   loadgen tcp     [--seconds 5]                               loopback TCP limit
//!   loadgen disk    --dir D [--mb 1024] [--block-kb 256]        sequential write + fdatasync limit
//!
//! `--broker-pid PID` (produce, consume, e2e) adds the broker's CPU use over the measured interval
//! and its RSS / peak RSS (VmHWM) from /proc.
//!
//! Build and locate it with `cargo bench --bench loadgen --no-run --message-format=json`.
//! Run as `cargo bench --bench loadgen` (no sub-command) it only prints this usage.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "librdkafka load generator for scripts/bench"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// Produce for a fixed time (or up to --max-mb), optionally at a fixed rate.
    Produce(ProduceArgs),
    /// Read a topic from the start to the high watermarks seen at start-up.
    Consume(ConsumeArgs),
    /// Produce at a fixed rate and consume at the same time: produce -> receive latency.
    E2e(ProduceArgs),
    /// Loopback TCP throughput (one sender, one receiver).
    Tcp {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Sequential write with fdatasync after every block, then 4 KiB write+fdatasync latency.
    Disk {
        #[arg(long)]
        dir: String,
        #[arg(long, default_value_t = 1024)]
        mb: u64,
        #[arg(long, default_value_t = 256)]
        block_kb: usize,
        #[arg(long, default_value_t = 2000)]
        small_writes: usize,
    },
}

#[derive(Args, Clone)]
struct Common {
    #[arg(long)]
    bootstrap: String,
    #[arg(long)]
    topic: String,
    /// Partitions of the topic; created with this many if missing.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Broker process id, for its CPU and RSS.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Extra librdkafka properties, NAME=VALUE (repeatable).
    #[arg(long = "client-set")]
    client_set: Vec<String>,
}

#[derive(Args, Clone)]
struct ProduceArgs {
    #[command(flatten)]
    c: Common,
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// all | 1 | 0
    #[arg(long, default_value = "all")]
    acks: String,
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Fixed rate in MB/s (10^6 bytes of record values); unlimited when absent.
    #[arg(long)]
    rate_mb: Option<f64>,
    /// Stop after this many MB (10^6 bytes) of record values.
    #[arg(long)]
    max_mb: Option<f64>,
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    #[arg(long, default_value_t = 262144)]
    batch_bytes: u32,
    /// Latency samples of records sent in the first N seconds are dropped (warm-up).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

#[derive(Args, Clone)]
struct ConsumeArgs {
    #[command(flatten)]
    c: Common,
    /// Upper bound on the run; the throughput is of what was read until then.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        None => {
            eprintln!("loadgen: no sub-command (produce | consume | e2e | tcp | disk); see --help");
            return;
        }
        Some(Cmd::Produce(a)) => produce(&a, false),
        Some(Cmd::E2e(a)) => produce(&a, true),
        Some(Cmd::Consume(a)) => consume(&a),
        Some(Cmd::Tcp { seconds }) => tcp(seconds),
        Some(Cmd::Disk {
            dir,
            mb,
            block_kb,
            small_writes,
        }) => disk(&dir, mb, block_kb, small_writes),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            println!("{}", json!({ "error": format!("{e:#}") }));
            std::process::exit(1);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear buckets (64 per power of two, < 1.6% error), values in µs
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    n: u64,
    max: u64,
    sum: u128,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; 64 * 66],
            n: 0,
            max: 0,
            sum: 0,
        }
    }
    fn index(v: u64) -> usize {
        if v < 128 {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - 6;
        (shift as usize) * 64 + (v >> shift) as usize
    }
    fn value(i: usize) -> u64 {
        if i < 128 {
            return i as u64;
        }
        let shift = (i / 64 - 1) as u32;
        let top = (i % 64 + 64) as u64;
        // middle of the bucket
        (top << shift) + ((1u64 << shift) >> 1)
    }
    fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.n += 1;
        self.max = self.max.max(v);
        self.sum += v as u128;
    }
    fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }
    fn to_json(&self) -> Value {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        json!({
            "samples": self.n,
            "mean_ms": if self.n > 0 { ms((self.sum / self.n as u128) as u64) } else { 0.0 },
            "p50_ms": ms(self.quantile(0.50)),
            "p90_ms": ms(self.quantile(0.90)),
            "p99_ms": ms(self.quantile(0.99)),
            "p999_ms": ms(self.quantile(0.999)),
            "max_ms": ms(self.max),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Broker process stats (/proc)
// ---------------------------------------------------------------------------------------------

struct ProcSample {
    cpu_s: f64,
    at: Instant,
}

fn proc_cpu(pid: u32) -> Option<ProcSample> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // fields after the ")" of the command name: state is field 3; utime 14, stime 15
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ProcSample {
        cpu_s: (utime + stime) / hz,
        at: Instant::now(),
    })
}

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn broker_stats(pid: Option<u32>, start: &Option<ProcSample>) -> Value {
    let Some(pid) = pid else { return Value::Null };
    let end = proc_cpu(pid);
    let cpu_pct = match (start, &end) {
        (Some(a), Some(b)) => {
            let wall = b.at.duration_since(a.at).as_secs_f64();
            if wall > 0.0 {
                round2((b.cpu_s - a.cpu_s) / wall * 100.0)
            } else {
                0.0
            }
        }
        _ => -1.0,
    };
    json!({
        "cpu_pct": cpu_pct,
        "rss_mb": proc_status_kb(pid, "VmRSS:").map(|k| round2(k as f64 / 1024.0)),
        "peak_rss_mb": proc_status_kb(pid, "VmHWM:").map(|k| round2(k as f64 / 1024.0)),
    })
}

/// CPU seconds used by this (client) process so far.
fn self_cpu_s() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

fn base_config(c: &Common) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &c.bootstrap)
        .set("client.id", "sluice-loadgen")
        .set("log_level", "3");
    cfg
}

fn apply_overrides(cfg: &mut ClientConfig, c: &Common) -> anyhow::Result<()> {
    for kv in &c.client_set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--client-set wants NAME=VALUE, got {kv}"))?;
        cfg.set(k, v);
    }
    Ok(())
}

/// Create the topic with `c.partitions` partitions unless it exists, then wait until metadata
/// shows it with all its partitions.
fn ensure_topic(c: &Common) -> anyhow::Result<()> {
    let cfg = base_config(c);
    let admin: AdminClient<DefaultClientContext> = cfg.create()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Does it exist already? (Metadata for all topics: asking for this one by name could
    // auto-create it with the broker's default partition count.)
    let md = admin.inner().fetch_metadata(None, Duration::from_secs(10));
    let existing = md.ok().and_then(|md| {
        md.topics()
            .iter()
            .find(|t| t.name() == c.topic && t.error().is_none())
            .map(|t| t.partitions().len() as i32)
    });
    if existing.unwrap_or(0) == 0 {
        let nt = NewTopic::new(&c.topic, c.partitions, TopicReplication::Fixed(1));
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let res = futures::executor::block_on(admin.create_topics([&nt], &opts))?;
        for r in res {
            if let Err((name, code)) = r {
                if code != RDKafkaErrorCode::TopicAlreadyExists {
                    anyhow::bail!("CreateTopics {name}: {code:?}");
                }
            }
        }
    }
    if let Some(n) = existing.filter(|&n| n > 0 && n < c.partitions) {
        anyhow::bail!(
            "topic {} exists with {n} partitions, want {}",
            c.topic,
            c.partitions
        );
    }
    loop {
        let md = admin.inner().fetch_metadata(None, Duration::from_secs(10));
        if let Ok(md) = md {
            if let Some(t) = md.topics().iter().find(|t| t.name() == c.topic) {
                if t.error().is_none() && t.partitions().len() as i32 >= c.partitions {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "topic {} not visible with {} partitions",
                c.topic,
                c.partitions
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Metadata of `topic`, retried for up to 60 s while the broker answers with an error: Apache
/// Kafka lists a new topic before all its partitions have leaders (NOT_LEADER_OR_FOLLOWER
/// meanwhile, for seconds with 1,000 partitions).
fn metadata_when_led<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
) -> anyhow::Result<rdkafka::metadata::Metadata> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.fetch_metadata(Some(topic), Duration::from_secs(10)) {
            Ok(md) => return Ok(md),
            Err(e) if Instant::now() < deadline => {
                eprintln!("metadata of {topic}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Watermarks of one partition, retried like `metadata_when_led`: Kafka answers ListOffsets
/// for a new partition with NOT_LEADER_OR_FOLLOWER until its log exists.
fn watermarks_when_led(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> anyhow::Result<(i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok(w) => return Ok(w),
            Err(e) if Instant::now() < deadline => {
                eprintln!("watermarks of {topic}/{partition}: {e}; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

struct ProduceCtx {
    base: Instant,
    warmup_ns: u64,
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    hist: Mutex<Histogram>,
    stats: Mutex<ClientStats>,
}

/// What librdkafka's statistics (`statistics.interval.ms`) say about the produce path: request
/// count, broker round trip, batching, and the deepest in-flight / unsent queues seen.
#[derive(Default)]
struct ClientStats {
    last: Option<Value>,
    max_waitresp: i64,
    max_outbuf: i64,
}

impl ClientStats {
    fn update(&mut self, raw: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(raw) else {
            return;
        };
        for b in brokers(&v) {
            self.max_waitresp = self
                .max_waitresp
                .max(b["waitresp_cnt"].as_i64().unwrap_or(0));
            self.max_outbuf = self.max_outbuf.max(b["outbuf_cnt"].as_i64().unwrap_or(0));
        }
        self.last = Some(v);
    }

    fn to_json(&self, topic: &str) -> Value {
        let Some(v) = &self.last else {
            return Value::Null;
        };
        let ms = |x: &Value| round2(x.as_f64().unwrap_or(0.0) / 1000.0);
        let mut produce_requests = 0i64;
        let mut rtt = Value::Null;
        let mut int_latency = Value::Null;
        for b in brokers(v) {
            let n = b["req"]["Produce"].as_i64().unwrap_or(0);
            if n > produce_requests {
                produce_requests = n;
                rtt = json!({"p50_ms": ms(&b["rtt"]["p50"]), "p99_ms": ms(&b["rtt"]["p99"])});
                int_latency = json!({"p50_ms": ms(&b["int_latency"]["p50"]), "p99_ms": ms(&b["int_latency"]["p99"])});
            }
        }
        let t = &v["topics"][topic];
        json!({
            "produce_requests": produce_requests,
            "broker_rtt_last_window": rtt,
            "client_queue_latency_last_window": int_latency,
            "max_in_flight_requests": self.max_waitresp,
            "max_unsent_requests": self.max_outbuf,
            "batch_bytes_avg": t["batchsize"]["avg"],
            "batch_records_avg": t["batchcnt"]["avg"],
        })
    }
}

fn brokers(v: &Value) -> Vec<&Value> {
    v["brokers"]
        .as_object()
        .map(|m| {
            m.values()
                .filter(|b| b["nodeid"].as_i64().unwrap_or(-1) >= 0)
                .collect()
        })
        .unwrap_or_default()
}

impl ClientContext for ProduceCtx {
    fn stats_raw(&self, statistics: &[u8]) {
        self.stats.lock().unwrap().update(statistics);
    }
}

impl ProducerContext for ProduceCtx {
    /// Send time in ns since `base`.
    type DeliveryOpaque = usize;

    fn delivery(&self, r: &DeliveryResult<'_>, sent_ns: usize) {
        let now = self.base.elapsed().as_nanos() as u64;
        match r {
            Ok(m) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                self.delivered_bytes
                    .fetch_add(m.payload_len() as u64, Ordering::Relaxed);
                if sent_ns as u64 >= self.warmup_ns {
                    let us = now.saturating_sub(sent_ns as u64) / 1000;
                    self.hist.lock().unwrap().record(us);
                }
            }
            Err((e, _)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let mut fe = self.first_error.lock().unwrap();
                if fe.is_none() {
                    *fe = Some(e.to_string());
                }
            }
        }
    }
}

fn payload(size: usize) -> Vec<u8> {
    // Incompressible-looking bytes (xorshift), so no layer can cheat with compression.
    let mut x: u64 = 0x9E3779B97F4A7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Consumer side of `e2e`: receive times minus the send time stamped in the value.
struct E2eConsumer {
    hist: Histogram,
    received: u64,
    received_bytes: u64,
}

fn produce(a: &ProduceArgs, e2e: bool) -> anyhow::Result<Value> {
    if e2e && a.record_size < 8 {
        anyhow::bail!("e2e needs --record-size >= 8 (the send time is stamped in the value)");
    }
    ensure_topic(&a.c)?;
    let base = Instant::now();
    let ctx = ProduceCtx {
        base,
        warmup_ns: (a.warmup * 1e9) as u64,
        delivered: AtomicU64::new(0),
        delivered_bytes: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: Mutex::new(None),
        hist: Mutex::new(Histogram::new()),
        stats: Mutex::new(ClientStats::default()),
    };
    let mut cfg = base_config(&a.c);
    cfg.set("acks", &a.acks)
        .set("linger.ms", a.linger_ms.to_string())
        .set("batch.size", a.batch_bytes.to_string())
        .set("batch.num.messages", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        // 64 MiB of queue: enough to keep every partition's batches full, small enough that an
        // unlimited run measures the steady state, not a queue of seconds to drain.
        .set("queue.buffering.max.kbytes", "65536")
        .set("compression.type", "none")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "120000")
        .set("statistics.interval.ms", "1000");
    apply_overrides(&mut cfg, &a.c)?;
    let producer: ThreadedProducer<ProduceCtx> = cfg.create_with_context(ctx)?;
    // Fetch metadata once so the first sends are not queued behind the metadata request.
    metadata_when_led(producer.client(), &a.c.topic)?;

    // e2e: a consumer positioned at the current ends of all partitions, receiving in a thread.
    let stop = Arc::new(AtomicBool::new(false));
    let received_count = Arc::new(AtomicU64::new(0));
    let consumer_thread = if e2e {
        let mut ccfg = base_config(&a.c);
        ccfg.set("group.id", "sluice-loadgen-e2e")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", "100");
        apply_overrides(&mut ccfg, &a.c)?;
        let consumer: BaseConsumer = ccfg.create()?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..a.c.partitions {
            let (_, high) = watermarks_when_led(&consumer, &a.c.topic, p)?;
            tpl.add_partition_offset(&a.c.topic, p, Offset::Offset(high))?;
        }
        consumer.assign(&tpl)?;
        // Give the consumer a moment to connect and issue its first fetches.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_millis(1000) {
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(50)) {
                eprintln!("loadgen e2e: consumer error before start: {e}");
            }
        }
        let stop = stop.clone();
        let received_count = received_count.clone();
        let warmup_ns = (a.warmup * 1e9) as u64;
        Some(std::thread::spawn(move || {
            let mut st = E2eConsumer {
                hist: Histogram::new(),
                received: 0,
                received_bytes: 0,
            };
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let now = base.elapsed().as_nanos() as u64;
                        if let Some(v) = m.payload() {
                            if v.len() >= 8 {
                                let sent = u64::from_le_bytes(v[..8].try_into().unwrap());
                                if sent >= warmup_ns {
                                    st.hist.record(now.saturating_sub(sent) / 1000);
                                }
                            }
                            st.received += 1;
                            received_count.fetch_add(1, Ordering::Relaxed);
                            st.received_bytes += v.len() as u64;
                        }
                    }
                    Some(Err(_)) => errors += 1,
                    None => {}
                }
            }
            (st, errors)
        }))
    } else {
        None
    };

    let mut value = payload(a.record_size);
    let rate_bps = a.rate_mb.map(|r| r * 1e6);
    let max_bytes = a.max_mb.map(|m| (m * 1e6) as u64).unwrap_or(u64::MAX);
    let parts = a.c.partitions.max(1) as u64;
    let broker0 = a.c.broker_pid.and_then(proc_cpu);
    let client0 = self_cpu_s();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let mut sent: u64 = 0;
    let mut sent_bytes: u64 = 0;
    let mut queue_full: u64 = 0;
    let mut send_errors: u64 = 0;
    let mut first_send_error: Option<String> = None;
    loop {
        let now = Instant::now();
        if now >= deadline || sent_bytes >= max_bytes {
            break;
        }
        if let Some(bps) = rate_bps {
            let allowed = (now.duration_since(start).as_secs_f64() * bps) as u64;
            if sent_bytes >= allowed {
                let ahead = (sent_bytes - allowed) as f64 / bps;
                std::thread::sleep(Duration::from_secs_f64(ahead.clamp(50e-6, 1e-3)));
                continue;
            }
        }
        let ts_ns = now.duration_since(base).as_nanos() as u64;
        if e2e {
            value[..8].copy_from_slice(&ts_ns.to_le_bytes());
        }
        let part = (sent % parts) as i32;
        let rec = BaseRecord::<(), [u8], usize>::with_opaque_to(&a.c.topic, ts_ns as usize)
            .payload(&value[..])
            .partition(part);
        match producer.send(rec) {
            Ok(()) => {
                sent += 1;
                sent_bytes += a.record_size as u64;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                queue_full += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err((e, _)) => {
                send_errors += 1;
                if first_send_error.is_none() {
                    first_send_error = Some(e.to_string());
                }
                if send_errors > 1000 {
                    break;
                }
            }
        }
    }
    let send_end = Instant::now();
    let flush = producer.flush(Duration::from_secs(120));
    let end = Instant::now();
    let elapsed = end.duration_since(start).as_secs_f64();
    let broker = broker_stats(a.c.broker_pid, &broker0);
    let client_cpu = round2((self_cpu_s() - client0) / elapsed * 100.0);
    let ctx = producer.context();
    let delivered = ctx.delivered.load(Ordering::Relaxed);
    let delivered_bytes = ctx.delivered_bytes.load(Ordering::Relaxed);

    let mut out = json!({
        "workload": if e2e { "e2e" } else { "produce" },
        "topic": a.c.topic,
        "partitions": a.c.partitions,
        "record_size": a.record_size,
        "acks": a.acks,
        "linger_ms": a.linger_ms,
        "batch_bytes": a.batch_bytes,
        "rate_mb_target": a.rate_mb,
        "seconds": round2(elapsed),
        "send_seconds": round2(send_end.duration_since(start).as_secs_f64()),
        "sent": sent,
        "delivered": delivered,
        "delivery_errors": ctx.errors.load(Ordering::Relaxed),
        "first_delivery_error": ctx.first_error.lock().unwrap().clone(),
        "send_errors": send_errors,
        "first_send_error": first_send_error,
        "queue_full": queue_full,
        "flush_ok": flush.is_ok(),
        "mb_per_s": round2(delivered_bytes as f64 / 1e6 / elapsed),
        "records_per_s": (delivered as f64 / elapsed).round(),
        "delivery_latency": ctx.hist.lock().unwrap().to_json(),
        "client_cpu_pct": client_cpu,
        "client_stats": ctx.stats.lock().unwrap().to_json(&a.c.topic),
        "broker": broker,
    });
    drop(producer);

    if let Some(t) = consumer_thread {
        // Let the consumer catch up with everything delivered (bounded).
        let catch_up = Instant::now() + Duration::from_secs(15);
        while received_count.load(Ordering::Relaxed) < delivered && Instant::now() < catch_up {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        let (st, errors) = t.join().expect("consumer thread");
        out["received"] = json!(st.received);
        out["received_mb"] = json!(round2(st.received_bytes as f64 / 1e6));
        out["consumer_errors"] = json!(errors);
        out["e2e_latency"] = st.hist.to_json();
    }
    Ok(out)
}

fn consume(a: &ConsumeArgs) -> anyhow::Result<Value> {
    let mut cfg = base_config(&a.c);
    cfg.set("group.id", "sluice-loadgen-consume")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    apply_overrides(&mut cfg, &a.c)?;
    let consumer: BaseConsumer = cfg.create()?;
    let md = metadata_when_led(consumer.client(), &a.c.topic)?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == a.c.topic)
        .ok_or_else(|| anyhow::anyhow!("topic {} not found", a.c.topic))?;
    if let Some(e) = t.error() {
        anyhow::bail!("topic {}: {e:?}", a.c.topic);
    }
    let nparts = t.partitions().len() as i32;
    let mut targets: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    let mut total_records: i64 = 0;
    for p in 0..nparts {
        let (low, high) = watermarks_when_led(&consumer, &a.c.topic, p)?;
        if high > low {
            targets.insert(p, high);
            total_records += high - low;
            tpl.add_partition_offset(&a.c.topic, p, Offset::Offset(low))?;
        }
    }
    if targets.is_empty() {
        anyhow::bail!("topic {} is empty", a.c.topic);
    }
    let broker0 = a.c.broker_pid.and_then(proc_cpu);
    let client0 = self_cpu_s();
    let start = Instant::now();
    consumer.assign(&tpl)?;
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let mut records: u64 = 0;
    let mut bytes: u64 = 0;
    let mut errors: u64 = 0;
    let mut first_error: Option<String> = None;
    let mut first_record_at: Option<Instant> = None;
    let mut done_parts = 0usize;
    let mut timed_out = false;
    while done_parts < targets.len() {
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if first_record_at.is_none() {
                    first_record_at = Some(Instant::now());
                }
                records += 1;
                bytes += m.payload_len() as u64;
                if let Some(high) = targets.get(&m.partition()) {
                    if m.offset() + 1 == *high {
                        done_parts += 1;
                    }
                }
            }
            Some(Err(e)) => {
                errors += 1;
                if first_error.is_none() {
                    first_error = Some(e.to_string());
                }
            }
            None => {}
        }
    }
    let end = Instant::now();
    let elapsed = end.duration_since(start).as_secs_f64();
    let broker = broker_stats(a.c.broker_pid, &broker0);
    let client_cpu = round2((self_cpu_s() - client0) / elapsed * 100.0);
    Ok(json!({
        "workload": "consume",
        "topic": a.c.topic,
        "partitions": nparts,
        "seconds": round2(elapsed),
        "first_record_s": first_record_at.map(|t| round2(t.duration_since(start).as_secs_f64())),
        "records": records,
        "records_expected": total_records,
        "timed_out": timed_out,
        "errors": errors,
        "first_error": first_error,
        "mb": round2(bytes as f64 / 1e6),
        "mb_per_s": round2(bytes as f64 / 1e6 / elapsed),
        "records_per_s": (records as f64 / elapsed).round(),
        "client_cpu_pct": client_cpu,
        "broker": broker,
    }))
}

// ---------------------------------------------------------------------------------------------
// Machine limits
// ---------------------------------------------------------------------------------------------

fn tcp(seconds: f64) -> anyhow::Result<Value> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let receiver = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let buf = payload(1 << 20);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut sent = 0u64;
    while Instant::now() < deadline {
        s.write_all(&buf)?;
        sent += buf.len() as u64;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let received = receiver.join().expect("receiver")?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(json!({
        "workload": "tcp",
        "seconds": round2(elapsed),
        "bytes": sent.max(received),
        "mb_per_s": round2(received as f64 / 1e6 / elapsed),
    }))
}

fn disk(dir: &str, mb: u64, block_kb: usize, small_writes: usize) -> anyhow::Result<Value> {
    std::fs::create_dir_all(dir)?;
    let path = std::path::Path::new(dir).join("loadgen-disk.tmp");
    let block = payload(block_kb * 1024);
    let total = mb * 1_000_000;
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o644)
        .open(&path)?;
    let start = Instant::now();
    let mut written = 0u64;
    while written < total {
        f.write_all(&block)?;
        f.sync_data()?;
        written += block.len() as u64;
    }
    let seq_s = start.elapsed().as_secs_f64();
    drop(f);
    // Small appends, each followed by fdatasync: the floor under an acks=all round trip.
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)?;
    let small = payload(4096);
    let mut h = Histogram::new();
    for _ in 0..small_writes {
        let t = Instant::now();
        f.write_all(&small)?;
        f.sync_data()?;
        h.record(t.elapsed().as_micros() as u64);
    }
    drop(f);
    std::fs::remove_file(&path).ok();
    Ok(json!({
        "workload": "disk",
        "tool": "loadgen",
        "block_kb": block_kb,
        "mb": round2(written as f64 / 1e6),
        "seq_write_fdatasync_mb_per_s": round2(written as f64 / 1e6 / seq_s),
        "fdatasync_4k_latency": h.to_json(),
    }))
}
