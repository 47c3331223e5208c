//! `sluice consume TOPIC`: fetch from each partition's leader and print each record with a
//! format string or as JSON lines; optionally commit the positions for a group (a simple
//! committer: no group membership, no rebalancing).

use super::client::{str, Client, Offsets};
use super::records::{self, FetchedRecord};
use super::{partition_list, CliError, Common, Result};
use bytes::Bytes;
use clap::Args;
use kafka_protocol::messages::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub common: Common,
    pub topic: String,
    /// Where to start: start, end, an offset, -N (N records before the end), or
    /// @TIMESTAMP_MS (the first record at or after it). Default: start, or the group's
    /// committed offsets with -g.
    #[arg(short = 'o', long, allow_hyphen_values = true)]
    pub offset: Option<String>,
    /// Partitions (default: all), e.g. 0,2,4-6.
    #[arg(short = 'p', long = "partitions")]
    pub partitions: Vec<String>,
    /// Stop after this many records.
    #[arg(short = 'n', long = "num")]
    pub num: Option<u64>,
    /// Stop at the end of each partition (its high watermark when consuming began).
    #[arg(short = 'e', long = "exit")]
    pub exit: bool,
    /// Output: a format string (%k key, %v value, %o offset, %p partition, %t timestamp,
    /// %h headers as k=v,k=v, %T topic, %% a percent sign; \n \t \\ escapes), or `json`
    /// for one JSON object per record.
    #[arg(short = 'f', long = "format", default_value = "%v\\n")]
    pub format: String,
    /// Commit the positions for this group (OffsetCommit; the group must have no active
    /// members) and start from its committed offsets unless -o says otherwise.
    #[arg(short = 'g', long)]
    pub group: Option<String>,
    /// Only records of committed transactions (and non-transactional ones), up to the last
    /// stable offset.
    #[arg(long)]
    pub read_committed: bool,
    /// The longest the broker may hold an empty fetch.
    #[arg(long, default_value_t = 500)]
    pub fetch_max_wait_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Key,
    Value,
    Offset,
    Partition,
    Timestamp,
    Headers,
    Topic,
}

fn parse_format(f: &str) -> Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let piece = match chars.next() {
                    Some('k') => Piece::Key,
                    Some('v') => Piece::Value,
                    Some('o') => Piece::Offset,
                    Some('p') => Piece::Partition,
                    Some('t') => Piece::Timestamp,
                    Some('h') => Piece::Headers,
                    Some('T') => Piece::Topic,
                    Some('%') => {
                        text.push('%');
                        continue;
                    }
                    other => {
                        return Err(CliError::Usage(format!(
                            "unknown format directive '%{}' (want %k %v %o %p %t %h %T %%)",
                            other.map(String::from).unwrap_or_default()
                        )))
                    }
                };
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(piece);
            }
            '\\' => match chars.next() {
                Some('n') => text.push('\n'),
                Some('t') => text.push('\t'),
                Some('r') => text.push('\r'),
                Some('\\') => text.push('\\'),
                Some(o) => {
                    text.push('\\');
                    text.push(o);
                }
                None => text.push('\\'),
            },
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

fn bytes_or_empty(b: &Option<Bytes>) -> &[u8] {
    b.as_deref().unwrap_or_default()
}

fn render(pieces: &[Piece], topic: &str, partition: i32, r: &FetchedRecord, out: &mut Vec<u8>) {
    for p in pieces {
        match p {
            Piece::Text(t) => out.extend_from_slice(t.as_bytes()),
            Piece::Key => out.extend_from_slice(bytes_or_empty(&r.key)),
            Piece::Value => out.extend_from_slice(bytes_or_empty(&r.value)),
            Piece::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
            Piece::Partition => out.extend_from_slice(partition.to_string().as_bytes()),
            Piece::Timestamp => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
            Piece::Topic => out.extend_from_slice(topic.as_bytes()),
            Piece::Headers => {
                for (i, (k, v)) in r.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    out.extend_from_slice(bytes_or_empty(v));
                }
            }
        }
    }
}

#[derive(Serialize)]
struct JsonHeader {
    key: String,
    value: Option<String>,
}

#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<JsonHeader>,
}

fn lossy(b: &Option<Bytes>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Where to start reading.
enum Start {
    Earliest,
    Latest,
    Offset(i64),
    FromEnd(i64),
    Timestamp(i64),
}

fn parse_start(s: &str) -> Result<Start> {
    match s {
        "start" | "beginning" | "oldest" => Ok(Start::Earliest),
        "end" | "newest" => Ok(Start::Latest),
        s => {
            let bad = || {
                CliError::Usage(format!(
                    "bad --offset '{s}' (want start, end, OFFSET, -N or @TIMESTAMP_MS)"
                ))
            };
            if let Some(ts) = s.strip_prefix('@') {
                ts.parse().map(Start::Timestamp).map_err(|_| bad())
            } else if let Some(n) = s.strip_prefix('-') {
                n.parse()
                    .ok()
                    .filter(|n: &i64| *n > 0)
                    .map(Start::FromEnd)
                    .ok_or_else(bad)
            } else {
                s.parse()
                    .ok()
                    .filter(|o: &i64| *o >= 0)
                    .map(Start::Offset)
                    .ok_or_else(bad)
            }
        }
    }
}

pub fn run(args: ConsumeArgs) -> Result<()> {
    let json = args.format == "json";
    let pieces = if json {
        Vec::new()
    } else {
        parse_format(&args.format)?
    };
    let start = match &args.offset {
        Some(s) => Some(parse_start(s)?),
        None if args.group.is_some() => None,
        None => Some(Start::Earliest),
    };
    let topic = args.topic.as_str();
    let mut client = Client::new(&args.common)?;
    let mut leaders: BTreeMap<i32, i32> = client.leaders(topic)?.into_iter().collect();
    if !args.partitions.is_empty() {
        let want = partition_list(&args.partitions)?;
        for p in &want {
            if !leaders.contains_key(p) {
                return Err(CliError::kafka(
                    3,
                    format!("Topic '{topic}' has no partition {p}."),
                ));
            }
        }
        leaders.retain(|p, _| want.contains(p));
    }
    let parts: Vec<(i32, i32)> = leaders.iter().map(|(&p, &l)| (p, l)).collect();

    // Starting positions.
    let resolve = |client: &mut Client, ts: i64| -> Result<BTreeMap<i32, i64>> {
        client
            .list_offsets_isolated(topic, &parts, ts, args.read_committed as i8)?
            .into_iter()
            .map(|(p, r)| r.map(|o| (p, o)))
            .collect()
    };
    let mut positions: BTreeMap<i32, i64> = match start {
        Some(Start::Earliest) => resolve(&mut client, -2)?,
        Some(Start::Latest) => resolve(&mut client, -1)?,
        Some(Start::Offset(o)) => parts.iter().map(|&(p, _)| (p, o)).collect(),
        Some(Start::FromEnd(n)) => {
            let starts = resolve(&mut client, -2)?;
            let ends = resolve(&mut client, -1)?;
            ends.into_iter()
                .map(|(p, e)| (p, (e - n).max(starts[&p])))
                .collect()
        }
        Some(Start::Timestamp(ts)) => {
            let at = resolve(&mut client, ts)?;
            let ends = resolve(&mut client, -1)?;
            at.into_iter()
                .map(|(p, o)| (p, if o < 0 { ends[&p] } else { o }))
                .collect()
        }
        None => {
            let group = args.group.as_deref().unwrap();
            let committed = client.committed(group, Some(&[topic.to_string()]))?;
            let earliest = resolve(&mut client, -2)?;
            earliest
                .into_iter()
                .map(|(p, o)| {
                    let c = committed.get(topic).and_then(|m| m.get(&p)).copied();
                    (p, c.unwrap_or(o))
                })
                .collect()
        }
    };
    let stop_at: Option<BTreeMap<i32, i64>> = if args.exit {
        Some(resolve(&mut client, -1)?)
    } else {
        None
    };

    let stdout = std::io::stdout();
    let mut printed: u64 = 0;
    let mut committed_positions = positions.clone();
    let mut buf = Vec::with_capacity(64 << 10);
    'rounds: loop {
        if args.num.is_some_and(|n| printed >= n) {
            break;
        }
        let active: Vec<i32> = positions
            .iter()
            .filter(|(p, pos)| stop_at.as_ref().is_none_or(|s| **pos < s[*p]))
            .map(|(p, _)| *p)
            .collect();
        if active.is_empty() {
            break;
        }
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in active {
            by_leader.entry(leaders[&p]).or_default().push(p);
        }
        let mut refresh = false;
        for (leader, ps) in by_leader {
            if leader < 0 {
                refresh = true;
                continue;
            }
            let request = FetchRequest::default()
                .with_replica_id((-1).into())
                .with_max_wait_ms(args.fetch_max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(50 << 20)
                .with_isolation_level(args.read_committed as i8)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(str(topic).into())
                    .with_partitions(
                        ps.iter()
                            .map(|p| {
                                fetch_request::FetchPartition::default()
                                    .with_partition(*p)
                                    .with_current_leader_epoch(-1)
                                    .with_fetch_offset(positions[p])
                                    .with_last_fetched_epoch(-1)
                                    .with_log_start_offset(-1)
                                    .with_partition_max_bytes(1 << 20)
                            })
                            .collect(),
                    )]);
            let conn = client.broker(leader)?;
            let (_, response) = conn.send(&request, 12)?;
            CliError::check(response.error_code, None, || "Fetch failed".into())?;
            for t in response.responses {
                for pd in t.partitions {
                    let p = pd.partition_index;
                    match pd.error_code {
                        0 => {}
                        5 | 6 | 3 | 74 | 75 => {
                            refresh = true;
                            continue;
                        }
                        1 => {
                            return Err(CliError::kafka(
                                1,
                                format!("offset {} is out of range for {topic}/{p}", positions[&p]),
                            ))
                        }
                        code => {
                            CliError::check(code, None, || format!("fetching {topic}/{p}"))?;
                        }
                    }
                    let Some(data) = pd.records else { continue };
                    let (mut recs, next) = records::decode(data)?;
                    let aborted = pd.aborted_transactions.unwrap_or_default();
                    drop_aborted_and_control(
                        &mut recs,
                        aborted
                            .iter()
                            .map(|a| (a.producer_id.0, a.first_offset))
                            .collect(),
                    );
                    let pos = positions.get_mut(&p).unwrap();
                    let limit = stop_at.as_ref().map(|s| s[&p]);
                    for r in recs {
                        if r.offset < *pos || limit.is_some_and(|l| r.offset >= l) {
                            continue;
                        }
                        if args.num.is_some_and(|n| printed >= n) {
                            break;
                        }
                        if json {
                            let j = JsonRecord {
                                topic,
                                partition: p,
                                offset: r.offset,
                                timestamp: r.timestamp,
                                key: lossy(&r.key),
                                value: lossy(&r.value),
                                headers: r
                                    .headers
                                    .iter()
                                    .map(|(k, v)| JsonHeader {
                                        key: k.clone(),
                                        value: lossy(v),
                                    })
                                    .collect(),
                            };
                            serde_json::to_writer(&mut buf, &j)
                                .map_err(|e| CliError::Other(e.to_string()))?;
                            buf.push(b'\n');
                        } else {
                            render(&pieces, topic, p, &r, &mut buf);
                        }
                        printed += 1;
                        *pos = r.offset + 1;
                    }
                    if args.num.is_none_or(|n| printed < n) {
                        if let Some(next) = next {
                            *pos = (*pos).max(next);
                        }
                    }
                }
            }
            let mut out = stdout.lock();
            if let Err(e) = out.write_all(&buf).and_then(|()| out.flush()) {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    break 'rounds;
                }
                return Err(e.into());
            }
            buf.clear();
        }
        if let Some(group) = &args.group {
            if positions != committed_positions {
                commit(&mut client, group, topic, &positions)?;
                committed_positions = positions.clone();
            }
        }
        if refresh {
            std::thread::sleep(Duration::from_millis(200));
            let fresh: BTreeMap<i32, i32> = client.leaders(topic)?.into_iter().collect();
            for (p, l) in leaders.iter_mut() {
                if let Some(n) = fresh.get(p) {
                    *l = *n;
                }
            }
        }
    }
    if let Some(group) = &args.group {
        if positions != committed_positions {
            commit(&mut client, group, topic, &positions)?;
        }
    }
    Ok(())
}

/// Drops control records, and (read_committed) the records of aborted transactions, as
/// Kafka's consumer does: a producer's records count as aborted from the first offset the
/// fetch response lists for it until its ABORT marker.
fn drop_aborted_and_control(recs: &mut Vec<FetchedRecord>, mut aborted: Vec<(i64, i64)>) {
    aborted.sort_by_key(|&(_, first)| std::cmp::Reverse(first));
    let mut open: std::collections::HashSet<i64> = Default::default();
    recs.retain(|r| {
        while aborted.last().is_some_and(|&(_, first)| first <= r.offset) {
            open.insert(aborted.pop().unwrap().0);
        }
        if r.control {
            // The control record's key: version (i16), type (i16; 0 ABORT, 1 COMMIT).
            let is_abort = r
                .key
                .as_deref()
                .is_some_and(|k| k.len() >= 4 && k[2..4] == [0, 0]);
            if is_abort {
                open.remove(&r.producer_id);
            }
            return false;
        }
        !(r.transactional && open.contains(&r.producer_id))
    });
}

fn commit(
    client: &mut Client,
    group: &str,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> Result<()> {
    let mut offsets = Offsets::new();
    offsets.insert(topic.to_string(), positions.clone());
    client.commit(group, &offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_strings() {
        let pieces = parse_format("%k=%v @%o/%p %t [%h] %T 100%%\\n").unwrap();
        let r = FetchedRecord {
            control: false,
            transactional: false,
            producer_id: -1,
            offset: 7,
            timestamp: 42,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                ("a".into(), Some(Bytes::from_static(b"1"))),
                ("b".into(), None),
            ],
        };
        let mut out = Vec::new();
        render(&pieces, "t", 3, &r, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "k=v @7/3 42 [a=1,b=] t 100%\n"
        );
        assert!(parse_format("%x").is_err());
    }

    fn rec(offset: i64, pid: i64, transactional: bool, control: Option<i16>) -> FetchedRecord {
        FetchedRecord {
            control: control.is_some(),
            transactional,
            producer_id: pid,
            offset,
            timestamp: 0,
            key: control.map(|t| {
                let mut k = 0i16.to_be_bytes().to_vec();
                k.extend_from_slice(&t.to_be_bytes());
                Bytes::from(k)
            }),
            value: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn aborted_transactions_and_markers_are_dropped() {
        // Producer 7 aborts offsets 0-1 (marker at 2), producer 8 commits 3 (marker at 4),
        // producer 7 writes 5 in a new transaction that is not listed as aborted.
        let mut recs = vec![
            rec(0, 7, true, None),
            rec(1, 7, true, None),
            rec(2, 7, true, Some(0)),
            rec(3, 8, true, None),
            rec(4, 8, true, Some(1)),
            rec(5, 7, true, None),
            rec(6, -1, false, None),
        ];
        drop_aborted_and_control(&mut recs, vec![(7, 0)]);
        let offsets: Vec<i64> = recs.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [3, 5, 6]);
    }

    #[test]
    fn start_positions() {
        assert!(matches!(parse_start("start"), Ok(Start::Earliest)));
        assert!(matches!(parse_start("end"), Ok(Start::Latest)));
        assert!(matches!(parse_start("42"), Ok(Start::Offset(42))));
        assert!(matches!(parse_start("-3"), Ok(Start::FromEnd(3))));
        assert!(matches!(parse_start("@1700"), Ok(Start::Timestamp(1700))));
        for bad in ["soon", "-0", "@x", "--1"] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
    }
}
