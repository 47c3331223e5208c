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
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(MAX_BATCH_RECORDS);
    std::thread::spawn(move || {
        let mut input = input;
        loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
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
        if !send(
            &mut client,
            &args,
            &mut leaders,
            batch,
            compression,
            idempotence.as_mut(),
        )? {
            failed = true;
        }
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
