//! `sluice produce TOPIC`: one record per input line (stdin or --file), batched per partition
//! while lines keep coming, sent to each partition's leader.

use super::client::{str, Client};
use super::records::{self, NewRecord};
use super::{key_value, now_ms, CliError, Common, Result};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProduceFormat {
    /// "Produced to partition P at offset O." per record.
    Text,
    /// {"topic","partition","offset","timestamp"} per record.
    Json,
}

/// When to draw the progress line on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// When stderr is a terminal and the input is a file of at least 1 MiB.
    Auto,
    Always,
    Never,
}

#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: Common,
    pub topic: String,
    /// Read records from this file instead of stdin (one per line).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value (no SEP in the line: no key).
    #[arg(short = 'k', long)]
    pub key_separator: Option<String>,
    /// Header KEY=VALUE on every record (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Partition (default: by key hash as Kafka's clients do, round robin without a key).
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
    /// Compression codec.
    #[arg(short = 'z', long, value_enum, default_value_t = Codec::None)]
    pub compression: Codec,
    /// all (or -1: every in-sync replica), 1 (the leader) or 0 (no answer).
    #[arg(long, default_value = "all", value_parser = parse_acks, allow_hyphen_values = true)]
    pub acks: i16,
    /// Record timestamp in ms (default: now).
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Print nothing per record.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Output per record.
    #[arg(long, value_enum, default_value_t = ProduceFormat::Text)]
    pub format: ProduceFormat,
    /// An idempotent producer (InitProducerId, then sequence numbers per partition): a retried
    /// request is written once. Needs --acks all.
    #[arg(long)]
    pub idempotent: bool,
    /// A progress line on stderr (bytes read, records sent, rate; a bar when the input's size
    /// is known).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// Inputs at least this large get a progress line by default (on a terminal).
const PROGRESS_FROM_BYTES: u64 = 1 << 20;
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The progress line of a large produce: redrawn in place at most every 200 ms.
struct Progress {
    total: Option<u64>,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    records: u64,
    started: std::time::Instant,
    drawn: Option<std::time::Instant>,
}

impl Progress {
    fn new(total: Option<u64>, read: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Progress {
        Progress {
            total,
            read,
            records: 0,
            started: std::time::Instant::now(),
            drawn: None,
        }
    }

    fn line(&self) -> String {
        let read = self.read.load(std::sync::atomic::Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.records as f64 / secs;
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        match self.total.filter(|t| *t > 0) {
            Some(total) => {
                let done = (read.min(total) as f64 / total as f64).clamp(0.0, 1.0);
                let filled = (done * 30.0).round() as usize;
                format!(
                    "[{}{}] {:>3.0}%  {:.1}/{:.1} MiB  {} records  {:.0} records/s",
                    "#".repeat(filled),
                    ".".repeat(30 - filled),
                    done * 100.0,
                    mib(read),
                    mib(total),
                    self.records,
                    rate
                )
            }
            None => format!(
                "{:.1} MiB  {} records  {:.0} records/s",
                mib(read),
                self.records,
                rate
            ),
        }
    }

    fn sent(&mut self, records: usize) {
        self.records += records as u64;
        if self.drawn.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
            self.drawn = Some(std::time::Instant::now());
            eprint!("\r{}", self.line());
        }
    }

    fn finish(&self) {
        eprintln!("\r{}", self.line());
        eprintln!(
            "produced {} records in {:.1} s",
            self.records,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// The input's size when it is a regular file (--file, or stdin redirected from one).
fn input_size(file: Option<&PathBuf>) -> Option<u64> {
    let meta = match file {
        Some(path) => std::fs::metadata(path).ok()?,
        None => {
            use std::os::fd::AsFd;
            let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
            std::fs::File::from(fd).metadata().ok()?
        }
    };
    meta.is_file().then_some(meta.len())
}

/// The idempotent producer's id, epoch and each partition's next sequence number.
struct Idempotence {
    producer_id: i64,
    producer_epoch: i16,
    next_sequence: BTreeMap<i32, i32>,
}

impl Idempotence {
    fn init(client: &mut Client) -> Result<Idempotence> {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(-1)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        let mut attempt = 0;
        loop {
            let (_, response) = client.any()?.send(&request, 5)?;
            match CliError::check(response.error_code, None, || {
                "InitProducerId for an idempotent producer".into()
            }) {
                Ok(()) => {
                    return Ok(Idempotence {
                        producer_id: response.producer_id.0,
                        producer_epoch: response.producer_epoch,
                        next_sequence: BTreeMap::new(),
                    })
                }
                // COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR.
                Err(CliError::Kafka { code: 14..=16, .. }) if attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn sequenced(&self, partition: i32) -> records::Sequenced {
        records::Sequenced {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.next_sequence.get(&partition).copied().unwrap_or(0),
        }
    }

    fn written(&mut self, partition: i32, records: usize) {
        let next = self.next_sequence.entry(partition).or_insert(0);
        // Sequences wrap from i32::MAX to 0, as Kafka's do.
        *next = ((*next as i64 + records as i64) % (i32::MAX as i64 + 1)) as i32;
    }
}

/// Lines still arriving this soon after the last one go into the same request.
const LINGER: Duration = Duration::from_millis(10);
const MAX_BATCH_RECORDS: usize = 10_000;
const MAX_BATCH_BYTES: usize = 512 << 10;

#[derive(Serialize)]
struct Produced<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
}

pub fn run(args: ProduceArgs) -> Result<()> {
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|h| key_value(h).map(|(k, v)| (k, Some(Bytes::from(v)))))
        .collect::<Result<_>>()?;
    let compression = match args.compression {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    };
    if args.idempotent && args.acks != -1 {
        return Err(CliError::Usage("--idempotent needs --acks all".into()));
    }
    let mut client = Client::new(&args.common)?;
    let mut idempotence = if args.idempotent {
        Some(Idempotence::init(&mut client)?)
    } else {
        None
    };
    let mut leaders: BTreeMap<i32, i32> = client.leaders(&args.topic)?.into_iter().collect();
    let partitions = leaders.len() as i32;
    if let Some(p) = args.partition {
        if !leaders.contains_key(&p) {
            return Err(CliError::kafka(
                3,
                format!("Topic '{}' has no partition {p}.", args.topic),
            ));
        }
    }

    let input: Box<dyn BufRead + Send> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
            |e| CliError::Other(format!("cannot open {}: {e}", path.display())),
        )?)),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let size = input_size(args.file.as_ref());
    let show_progress = match args.progress {
        ProgressMode::Always => true,
        ProgressMode::Never => false,
        ProgressMode::Auto => {
            use std::io::IsTerminal;
            std::io::stderr().is_terminal() && size.is_some_and(|s| s >= PROGRESS_FROM_BYTES)
        }
    };
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut progress = show_progress.then(|| Progress::new(size, read.clone()));
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(MAX_BATCH_RECORDS);
    std::thread::spawn(move || {
        let mut input = input;
        loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(n) => {
                    read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });

    let mut round_robin = 0i32;
    let mut done = false;
    let mut failed = false;
    while !done {
        // One request's worth: block for the first line, then take what keeps coming.
        let mut batch: BTreeMap<i32, Vec<(usize, NewRecord)>> = BTreeMap::new();
        let (mut n, mut bytes) = (0usize, 0usize);
        loop {
            let next = if n == 0 {
                rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(LINGER)
            };
            let line = match next {
                Ok(Ok(line)) => line,
                Ok(Err(e)) => return Err(CliError::Other(format!("reading input: {e}"))),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    done = true;
                    break;
                }
            };
            let (key, value) = split_key(&line, args.key_separator.as_deref());
            let partition = match (args.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => records::partition_for_key(k, partitions),
                (None, None) => {
                    let p = round_robin;
                    round_robin = (round_robin + 1) % partitions;
                    p
                }
            };
            bytes += line.len() + 16;
            n += 1;
            let record = NewRecord {
                key,
                value: Some(value),
                headers: headers.clone(),
                timestamp: args.timestamp.unwrap_or_else(now_ms),
            };
            batch.entry(partition).or_default().push((n, record));
            if n >= MAX_BATCH_RECORDS || bytes >= MAX_BATCH_BYTES {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        let records: usize = batch.values().map(Vec::len).sum();
        let sent = send(
            &mut client,
            &args,
            &mut leaders,
            batch,
            compression,
            idempotence.as_mut(),
        )?;
        if let Some(p) = &mut progress {
            p.sent(records);
        }
        if !sent {
            failed = true;
        }
    }
    if let Some(p) = &progress {
        p.finish();
    }
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(())
    }
}

fn parse_acks(s: &str) -> std::result::Result<i16, String> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(format!("want all, -1, 1 or 0, not '{s}'")),
    }
}

fn split_key(line: &[u8], separator: Option<&str>) -> (Option<Bytes>, Bytes) {
    if let Some(sep) = separator.map(str::as_bytes).filter(|s| !s.is_empty()) {
        if let Some(i) = line.windows(sep.len()).position(|w| w == sep) {
            return (
                Some(Bytes::copy_from_slice(&line[..i])),
                Bytes::copy_from_slice(&line[i + sep.len()..]),
            );
        }
    }
    (None, Bytes::copy_from_slice(line))
}

/// Sends one batch per partition, grouped by leader; retries partitions whose leader moved.
/// Ok(false) when some partition failed (reported on stderr).
fn send(
    client: &mut Client,
    args: &ProduceArgs,
    leaders: &mut BTreeMap<i32, i32>,
    mut batch: BTreeMap<i32, Vec<(usize, NewRecord)>>,
    compression: Compression,
    mut idempotence: Option<&mut Idempotence>,
) -> Result<bool> {
    let mut ok = true;
    // (input line, partition, offset, timestamp): printed in input order at the end.
    let mut produced: Vec<(usize, i32, i64, i64)> = Vec::new();
    for attempt in 0..5 {
        if batch.is_empty() {
            break;
        }
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200 * attempt));
            *leaders = client.leaders(&args.topic)?.into_iter().collect();
        }
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in batch.keys() {
            by_leader.entry(leaders[p]).or_default().push(*p);
        }
        let mut retry = BTreeMap::new();
        for (leader, parts) in by_leader {
            let mut data = Vec::new();
            for p in &parts {
                data.push(
                    produce_request::PartitionProduceData::default()
                        .with_index(*p)
                        .with_records(Some(records::encode_sequenced(
                            &batch[p].iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
                            compression,
                            idempotence.as_ref().map(|i| i.sequenced(*p)),
                        )?)),
                );
            }
            let request = ProduceRequest::default()
                .with_acks(args.acks)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(str(&args.topic).into())
                    .with_partition_data(data)]);
            let conn = client.broker(leader)?;
            let v = conn.version::<ProduceRequest>(12)?;
            if args.acks == 0 {
                conn.send_oneway(&request, v)?;
                for p in parts {
                    batch.remove(&p);
                }
                continue;
            }
            let response = conn.send_at(&request, v)?;
            for t in response.responses {
                for r in t.partition_responses {
                    let Some(records) = batch.remove(&r.index) else {
                        continue;
                    };
                    if r.error_code == 0 {
                        if let Some(i) = idempotence.as_mut() {
                            i.written(r.index, records.len());
                        }
                        for (i, (line, rec)) in records.iter().enumerate() {
                            let timestamp = if r.log_append_time_ms >= 0 {
                                r.log_append_time_ms
                            } else {
                                rec.timestamp
                            };
                            produced.push((*line, r.index, r.base_offset + i as i64, timestamp));
                        }
                    } else if matches!(r.error_code, 5 | 6 | 7 | 13 | 19) && attempt < 4 {
                        retry.insert(r.index, records);
                    } else {
                        ok = false;
                        let e = CliError::check(r.error_code, r.error_message.as_deref(), || {
                            format!("producing to {}/{}", args.topic, r.index)
                        })
                        .unwrap_err();
                        eprintln!(
                            "sluice: {} record(s) to {}/{} failed: {e}",
                            records.len(),
                            args.topic,
                            r.index
                        );
                    }
                }
            }
        }
        // Partitions the response did not mention count as failed too.
        for (p, records) in std::mem::take(&mut batch) {
            ok = false;
            eprintln!(
                "sluice: {} record(s) to {}/{p} got no answer",
                records.len(),
                args.topic
            );
        }
        batch = retry;
    }
    produced.sort_unstable();
    if !args.quiet {
        for (_, partition, offset, timestamp) in produced {
            match args.format {
                ProduceFormat::Json => super::output::print_json(&Produced {
                    topic: &args.topic,
                    partition,
                    offset,
                    timestamp,
                }),
                ProduceFormat::Text => println!(
                    "Produced to partition {partition} at offset {offset} with timestamp {timestamp}."
                ),
            }
        }
    }
    Ok(ok)
}
