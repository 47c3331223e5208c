//! A small etcd v3 client over etcd's JSON gateway (`/v3/...`, part of every etcd server since
//! 3.3): leases, ranges, puts, compare-and-swap transactions and watches. The etcd-client
//! crate speaks gRPC but needs `protoc` at build time, which would break `cargo build` on a
//! fresh machine; the gateway carries the same messages as JSON (bytes base64, int64 as strings).

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Put(KeyValue),
    Delete(String),
}

/// A condition of a transaction, on one key.
#[derive(Debug, Clone)]
pub enum Compare {
    /// The key does not exist.
    Absent(String),
    /// The key was last written at this revision.
    ModRevision(String, i64),
    /// The key holds this value.
    Value(String, Vec<u8>),
}

#[derive(Debug, Clone)]
pub enum Op {
    /// lease 0: none.
    Put {
        key: String,
        value: Vec<u8>,
        lease: i64,
    },
    Delete(String),
    DeletePrefix(String),
}

#[derive(Clone)]
pub struct Etcd {
    http: reqwest::Client,
    endpoints: Vec<String>,
}

fn b64(s: &[u8]) -> String {
    BASE64.encode(s)
}

/// The key after every key that starts with `prefix` (etcd's range_end for a prefix).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// int64 fields arrive as JSON strings; absent means 0.
fn int(v: &Value, field: &str) -> i64 {
    match &v[field] {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn bytes_field(v: &Value, field: &str) -> Result<Vec<u8>> {
    match v[field].as_str() {
        Some(s) => BASE64.decode(s).context("etcd sent bad base64"),
        None => Ok(Vec::new()),
    }
}

fn key_value(v: &Value) -> Result<KeyValue> {
    Ok(KeyValue {
        key: String::from_utf8(bytes_field(v, "key")?).context("etcd key is not UTF-8")?,
        value: bytes_field(v, "value")?,
        create_revision: int(v, "create_revision"),
        mod_revision: int(v, "mod_revision"),
        lease: int(v, "lease"),
    })
}

fn compare_json(c: &Compare) -> Value {
    match c {
        Compare::Absent(key) => json!({
            "key": b64(key.as_bytes()), "target": "CREATE", "result": "EQUAL", "create_revision": "0"
        }),
        Compare::ModRevision(key, rev) => json!({
            "key": b64(key.as_bytes()), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string()
        }),
        Compare::Value(key, value) => json!({
            "key": b64(key.as_bytes()), "target": "VALUE", "result": "EQUAL", "value": b64(value)
        }),
    }
}

fn op_json(op: &Op) -> Value {
    match op {
        Op::Put { key, value, lease } => json!({"request_put": {
            "key": b64(key.as_bytes()), "value": b64(value), "lease": lease.to_string()
        }}),
        Op::Delete(key) => json!({"request_delete_range": {"key": b64(key.as_bytes())}}),
        Op::DeletePrefix(prefix) => json!({"request_delete_range": {
            "key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix))
        }}),
    }
}

impl Etcd {
    /// `endpoints`: "host:port" of etcd members; requests go to the first that answers.
    pub fn new(endpoints: Vec<String>) -> Result<Etcd> {
        if endpoints.is_empty() {
            bail!("no etcd endpoints");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("building the etcd HTTP client")?;
        Ok(Etcd { http, endpoints })
    }

    /// One unary call; tries each endpoint in turn until one answers.
    async fn call(&self, path: &str, body: Value) -> Result<Value> {
        let mut last = anyhow!("no etcd endpoint answered");
        for endpoint in &self.endpoints {
            let url = format!("http://{endpoint}{path}");
            let sent = self
                .http
                .post(&url)
                .timeout(Duration::from_secs(5))
                .body(body.to_string())
                .send()
                .await;
            match sent {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.context("reading etcd's answer")?;
                    let value: Value = serde_json::from_str(&text)
                        .with_context(|| format!("etcd answered {path} with {text}"))?;
                    if !status.is_success() || value.get("error").is_some() {
                        bail!("etcd {path}: {status} {text}");
                    }
                    return Ok(value);
                }
                Err(e) => last = anyhow!("etcd {url}: {e}"),
            }
        }
        Err(last)
    }

    /// A lease of `ttl_secs`; its id.
    pub async fn grant(&self, ttl_secs: i64) -> Result<i64> {
        let v = self
            .call("/v3/lease/grant", json!({"TTL": ttl_secs.to_string()}))
            .await?;
        match int(&v, "ID") {
            0 => bail!("etcd granted no lease: {v}"),
            id => Ok(id),
        }
    }

    /// Renews a lease: its remaining TTL, 0 once it has expired.
    pub async fn keep_alive(&self, lease: i64) -> Result<i64> {
        let v = self
            .call("/v3/lease/keepalive", json!({"ID": lease.to_string()}))
            .await?;
        Ok(int(&v["result"], "TTL"))
    }

    pub async fn revoke(&self, lease: i64) -> Result<()> {
        self.call("/v3/lease/revoke", json!({"ID": lease.to_string()}))
            .await
            .map(|_| ())
    }

    /// Every key under `prefix`, and the store's revision they were read at.
    pub async fn range_prefix(&self, prefix: &str) -> Result<(i64, Vec<KeyValue>)> {
        let v = self
            .call(
                "/v3/kv/range",
                json!({"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix))}),
            )
            .await?;
        let kvs = v["kvs"]
            .as_array()
            .map(|a| a.iter().map(key_value).collect::<Result<Vec<_>>>())
            .transpose()?
            .unwrap_or_default();
        Ok((int(&v["header"], "revision"), kvs))
    }

    /// Runs `success` if every comparison holds, else `failure`: (whether they held, revision).
    pub async fn txn(
        &self,
        compare: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<(bool, i64)> {
        let v = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": compare.iter().map(compare_json).collect::<Vec<_>>(),
                    "success": success.iter().map(op_json).collect::<Vec<_>>(),
                    "failure": failure.iter().map(op_json).collect::<Vec<_>>(),
                }),
            )
            .await?;
        Ok((
            v["succeeded"].as_bool().unwrap_or(false),
            int(&v["header"], "revision"),
        ))
    }

    /// Watches every key under `prefix` from `start_revision`: batches of events with the
    /// revision they bring the store to. The stream ends (or errs) when the connection does, or
    /// when etcd compacted past `start_revision`; the caller re-reads and watches again.
    pub async fn watch_prefix(
        &self,
        prefix: &str,
        start_revision: i64,
    ) -> Result<futures::stream::BoxStream<'static, Result<(i64, Vec<Event>)>>> {
        let body = json!({"create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
        }});
        let mut last = anyhow!("no etcd endpoint answered");
        for endpoint in &self.endpoints {
            let url = format!("http://{endpoint}/v3/watch");
            match self.http.post(&url).body(body.to_string()).send().await {
                Ok(r) if r.status().is_success() => {
                    return Ok(watch_events(r.bytes_stream()).boxed());
                }
                Ok(r) => last = anyhow!("etcd {url}: {}", r.status()),
                Err(e) => last = anyhow!("etcd {url}: {e}"),
            }
        }
        Err(last)
    }
}

/// Splits the gateway's stream of JSON objects (one per watch response) into event batches.
fn watch_events(
    body: impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
) -> impl futures::Stream<Item = Result<(i64, Vec<Event>)>> + Send + 'static {
    futures::stream::unfold(
        (Box::pin(body), Vec::<u8>::new(), false),
        |(mut body, mut buf, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(end) = object_end(&buf) {
                    let object: Vec<u8> = buf.drain(..end).collect();
                    let parsed = parse_watch_response(&object);
                    let stop = parsed.is_err();
                    return Some((parsed, (body, buf, stop)));
                }
                match body.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        return Some((Err(anyhow!("etcd watch: {e}")), (body, buf, true)))
                    }
                    None => return None,
                }
            }
        },
    )
    .filter_map(|r| async move {
        match r {
            // The first response only confirms the watch.
            Ok((_, events)) if events.is_empty() => None,
            other => Some(other),
        }
    })
}

/// Where the first complete top-level JSON object in `buf` ends (strings may hold braces).
fn object_end(buf: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut started = false;
    for (i, &b) in buf.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => {
                depth += 1;
                started = true;
            }
            b'}' if started => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_watch_response(object: &[u8]) -> Result<(i64, Vec<Event>)> {
    let v: Value = serde_json::from_slice(object).context("etcd watch sent bad JSON")?;
    if let Some(e) = v.get("error") {
        bail!("etcd watch: {e}");
    }
    let result = &v["result"];
    if int(result, "compact_revision") > 0 || result["canceled"].as_bool() == Some(true) {
        bail!(
            "etcd watch canceled (compacted: {})",
            int(result, "compact_revision")
        );
    }
    let revision = int(&result["header"], "revision");
    let events = result["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    let kv = key_value(&e["kv"])?;
                    Ok(if e["type"].as_str() == Some("DELETE") {
                        Event::Delete(kv.key)
                    } else {
                        Event::Put(kv)
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok((revision, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end("a/b/"), b"a/b0".to_vec());
        assert_eq!(prefix_end("\u{7f}"), vec![0x80]);
    }

    #[test]
    fn objects_split_across_braces_in_strings() {
        let buf = br#"{"a":"}{"}{"b":1}"#;
        assert_eq!(object_end(buf), Some(10));
        assert_eq!(object_end(&buf[10..]), Some(7));
        assert_eq!(object_end(br#"{"a":{"#), None);
    }

    #[test]
    fn watch_responses_parse() {
        let put = br#"{"result":{"header":{"revision":"7"},"events":[{"kv":{"key":"YQ==","value":"Yg==","create_revision":"5","mod_revision":"7"}},{"type":"DELETE","kv":{"key":"Yw==","mod_revision":"7"}}]}}"#;
        let (rev, events) = parse_watch_response(put).unwrap();
        assert_eq!(rev, 7);
        assert_eq!(
            events,
            vec![
                Event::Put(KeyValue {
                    key: "a".into(),
                    value: b"b".to_vec(),
                    create_revision: 5,
                    mod_revision: 7,
                    lease: 0
                }),
                Event::Delete("c".into())
            ]
        );
        assert!(parse_watch_response(br#"{"result":{"compact_revision":"3"}}"#).is_err());
    }
}
