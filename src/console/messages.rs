//! The message browser: records of one partition from an offset, or from the first record at
//! or after a timestamp; keys and values as text, JSON or hex; headers. Reads the partition's
//! log (and the tier below the local log start) as Fetch does, never past the high watermark.

use super::html::{self, esc, url};
use super::{bad_request, int_param, not_found, Console, Page, Params, Problem};
use crate::broker::Broker;
use crate::cli::records::{decode, FetchedRecord};
use crate::log::{Partition, ReadOutcome};
use crate::topic::Topic;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use std::fmt::Write;
use std::sync::Arc;

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 200;
/// Bytes read per step (whole batches; at least one).
const READ_BYTES: usize = 1 << 20;
/// Steps per page: bounds the work of a page over a log of tiny or control-only batches.
const MAX_STEPS: usize = 64;

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Text,
    Json,
    Hex,
}

fn storage(e: impl std::fmt::Display) -> Problem {
    Problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("reading the log failed: {e}"),
    )
}

/// Up to `limit` data records from `offset` (control records skipped).
async fn read(
    broker: &Broker,
    t: &Topic,
    log: &Arc<Partition>,
    offset: i64,
    limit: usize,
) -> Result<Vec<FetchedRecord>, Problem> {
    let hw = log.offsets().high_watermark;
    let mut out = Vec::new();
    let mut at = offset;
    for _ in 0..MAX_STEPS {
        if out.len() >= limit || at >= hw {
            break;
        }
        let outcome =
            tokio::task::block_in_place(|| log.read(at, READ_BYTES, true)).map_err(storage)?;
        let data = match outcome {
            ReadOutcome::Records(b) => b,
            ReadOutcome::OutOfRange => break,
            ReadOutcome::Remote => match &broker.tier {
                Some(tier) => match tier
                    .read(t, log.index, at, READ_BYTES)
                    .await
                    .map_err(storage)?
                {
                    Some(b) => b,
                    None => break,
                },
                None => break,
            },
        };
        if data.is_empty() {
            break;
        }
        let (records, next) = decode(data).map_err(storage)?;
        out.extend(
            records
                .into_iter()
                .filter(|r| !r.control && r.offset >= offset && r.offset < hw),
        );
        match next {
            Some(n) if n > at => at = n,
            _ => break,
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// The offset of the first record with a timestamp at or after `ts` (the tier's first when
/// it holds offsets below the local log), as ListOffsets finds it.
async fn offset_for_timestamp(
    broker: &Broker,
    t: &Topic,
    log: &Arc<Partition>,
    ts: i64,
) -> Result<Option<i64>, Problem> {
    let log_start = log.offsets().log_start;
    if let (Some(tier), Some((start, _))) = (&broker.tier, log.remote()) {
        if start < log.local_start() {
            if let Some((_, o)) = tier
                .offset_for_timestamp(t, log.index, ts)
                .await
                .map_err(storage)?
                .filter(|&(_, o)| o >= log_start)
            {
                return Ok(Some(o));
            }
        }
    }
    let found = tokio::task::block_in_place(|| log.offset_for_timestamp(ts)).map_err(storage)?;
    Ok(found.map(|(_, o)| o))
}

fn hex(b: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in b.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}  ", i * 16);
        for x in chunk {
            let _ = write!(out, "{x:02x} ");
        }
        for _ in chunk.len()..16 {
            out.push_str("   ");
        }
        out.push(' ');
        out.extend(chunk.iter().map(|&x| {
            if x.is_ascii_graphic() || x == b' ' {
                x as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    esc(&out)
}

/// Bytes as the chosen format, escaped.
fn show(b: Option<&[u8]>, format: Format) -> String {
    let Some(b) = b else {
        return "<i class=\"null\">null</i>".to_string();
    };
    match format {
        Format::Hex => format!("<pre class=\"hex\">{}</pre>", hex(b)),
        Format::Json => match serde_json::from_slice::<serde_json::Value>(b) {
            Ok(v) => format!(
                "<pre class=\"json\">{}</pre>",
                esc(&serde_json::to_string_pretty(&v).unwrap_or_default())
            ),
            Err(_) => format!(
                "<span class=\"warn\">not JSON:</span> <pre class=\"text\">{}</pre>",
                esc(&String::from_utf8_lossy(b))
            ),
        },
        Format::Text => format!(
            "<pre class=\"text\">{}</pre>",
            esc(&String::from_utf8_lossy(b))
        ),
    }
}

pub async fn page(
    State(c): State<Arc<Console>>,
    Path(name): Path<String>,
    Query(q): Query<Params>,
) -> Page {
    let broker = c.broker()?;
    let t = broker
        .topic(&name)
        .ok_or_else(|| not_found(format!("no topic '{name}'")))?;
    let partition = int_param(&q, "partition")?.unwrap_or(0);
    let log = usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .cloned()
        .ok_or_else(|| not_found(format!("topic '{name}' has no partition {partition}")))?;
    let offset = int_param(&q, "offset")?;
    let timestamp = int_param(&q, "timestamp")?;
    let limit = int_param(&q, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad_request(format!("limit must be 1..{MAX_LIMIT}")));
    }
    let format = match q.get("format").map(String::as_str) {
        None | Some("") | Some("text") => Format::Text,
        Some("json") => Format::Json,
        Some("hex") => Format::Hex,
        Some(f) => {
            return Err(bad_request(format!(
                "format must be text, json or hex, not '{f}'"
            )))
        }
    };
    let offsets = log.offsets();
    let mut notes = Vec::new();
    let from = match (offset, timestamp) {
        (Some(_), Some(_)) => return Err(bad_request("give an offset or a timestamp, not both")),
        (Some(o), None) if o < 0 => return Err(bad_request("offset must not be negative")),
        (Some(o), None) if o < offsets.log_start => {
            notes.push(format!(
                "Offset {o} is below the log start; showing from {}.",
                offsets.log_start
            ));
            Some(offsets.log_start)
        }
        (Some(o), None) => Some(o),
        (None, Some(ts)) if ts < 0 => return Err(bad_request("timestamp must not be negative")),
        (None, Some(ts)) => {
            let found = offset_for_timestamp(&broker, &t, &log, ts).await?;
            if found.is_none() {
                notes.push(format!(
                    "No record has a timestamp at or after {ts} ({} UTC).",
                    html::utc(ts)
                ));
            }
            found
        }
        (None, None) => Some(offsets.log_start),
    };
    let records = match from {
        Some(from) => read(&broker, &t, &log, from, limit as usize).await?,
        None => Vec::new(),
    };

    let mut body = format!(
        "<h1>Messages of <a href=\"/console/topics/{}\">{}</a></h1>",
        url(&t.name),
        esc(&t.name)
    );
    let sel = |f: Format| if f == format { " selected" } else { "" };
    let _ = write!(
        body,
        "<form class=\"browse\" method=\"get\" id=\"browse\">\
<label>partition <input name=\"partition\" type=\"number\" min=\"0\" max=\"{}\" value=\"{partition}\"></label>\
<label>offset <input name=\"offset\" type=\"number\" min=\"0\" value=\"{}\"></label>\
<label>or timestamp (ms) <input name=\"timestamp\" type=\"number\" min=\"0\" value=\"{}\"></label>\
<label>format <select name=\"format\"><option value=\"text\"{}>text</option><option value=\"json\"{}>JSON</option><option value=\"hex\"{}>hex</option></select></label>\
<label>limit <input name=\"limit\" type=\"number\" min=\"1\" max=\"{MAX_LIMIT}\" value=\"{limit}\"></label>\
<button type=\"submit\">Show</button></form>",
        t.partitions.len().saturating_sub(1),
        offset.map_or(String::new(), |o| o.to_string()),
        timestamp.map_or(String::new(), |o| o.to_string()),
        sel(Format::Text),
        sel(Format::Json),
        sel(Format::Hex),
    );
    let _ = write!(
        body,
        "<p class=\"note\">Partition {partition}: log start {}, high watermark {}, log end {}.</p>",
        offsets.log_start, offsets.high_watermark, offsets.log_end
    );
    for n in &notes {
        let _ = write!(body, "<p class=\"warn\">{}</p>", esc(n));
    }
    body.push_str(
        "<table id=\"records\"><thead><tr><th>offset</th><th>timestamp</th><th>key</th><th>value</th><th>headers</th></tr></thead><tbody>",
    );
    for r in &records {
        let mut headers = String::new();
        for (k, v) in &r.headers {
            let _ = write!(
                headers,
                "<div class=\"header\"><b>{}</b>: {}</div>",
                esc(k),
                show(v.as_deref(), format)
            );
        }
        let _ = write!(
            body,
            "<tr class=\"record\" data-offset=\"{}\" data-timestamp=\"{}\"><td class=\"offset\">{}</td>\
<td class=\"timestamp\">{}<br><small>{} UTC</small></td><td class=\"key\">{}</td><td class=\"value\">{}</td><td class=\"headers\">{}</td></tr>",
            r.offset,
            r.timestamp,
            r.offset,
            r.timestamp,
            html::utc(r.timestamp),
            show(r.key.as_deref(), format),
            show(r.value.as_deref(), format),
            headers
        );
    }
    if records.is_empty() {
        body.push_str("<tr><td colspan=\"5\" class=\"empty\">no records</td></tr>");
    }
    body.push_str("</tbody></table>");
    if let Some(last) = records.last() {
        let _ = write!(
            body,
            "<p><a id=\"next\" href=\"/console/topics/{}/messages?partition={partition}&amp;offset={}&amp;format={}&amp;limit={limit}\">next →</a></p>",
            url(&t.name),
            last.offset + 1,
            match format {
                Format::Text => "text",
                Format::Json => "json",
                Format::Hex => "hex",
            }
        );
    }
    Ok(Html(html::layout(&format!("Messages of {name}"), &body)))
}
