//! The cluster overview (broker, version, features, disk, throughput charts) and the broker
//! configuration page.

use super::html::{self, esc};
use super::{Console, Page};
use crate::config::registry::Source;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use std::sync::Arc;

/// (total, available) bytes of the file system holding `dir`.
fn disk(dir: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs the call fills.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_blocks as u64 * frsize, st.f_bavail as u64 * frsize))
}

pub async fn page(State(c): State<Arc<Console>>) -> Page {
    let broker = c.broker()?;
    let topics = broker.topics();
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
    let local: u64 = topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| p.size_bytes())
        .sum();
    let tiered: Option<u64> = broker.tier.as_ref().map(|tier| {
        topics
            .iter()
            .flat_map(|t| (0..t.partitions.len() as i32).map(move |i| (t, i)))
            .filter_map(|(t, i)| tier.remote_bytes(t, i))
            .sum()
    });
    let groups = broker.groups.list_groups(&[], &[]).len();
    let data_dir = &broker.config.data_dir;
    let disk_text = match disk(data_dir) {
        Some((total, free)) => format!(
            "{} used of {} ({} free)",
            html::bytes(total.saturating_sub(free)),
            html::bytes(total),
            html::bytes(free)
        ),
        None => "unknown".to_string(),
    };
    let listeners: Vec<String> = broker
        .config
        .listeners
        .iter()
        .map(|l| esc(&format!("{} {} {}", l.name, l.protocol.name(), l.bind)))
        .collect();
    let features: Vec<Vec<String>> = crate::api::api_versions::features(&broker)
        .into_iter()
        .map(|(name, min, max, finalized)| {
            vec![esc(name), format!("{min}..{max}"), finalized.to_string()]
        })
        .collect();
    let body = format!(
        "<h1>Overview</h1>{}<h2>Throughput</h2>\
<p class=\"note\">Sampled every 2 s in the broker process from the partitions' log end offsets and local sizes (produced records and bytes; retention and compaction shrink bytes), and from the topics' fetched-bytes counters.</p>\
<div class=\"charts\"><figure><figcaption>records in / s</figcaption><svg id=\"chart-records\" class=\"chart\" viewBox=\"0 0 600 160\" role=\"img\"></svg></figure>\
<figure><figcaption>local bytes in / s</figcaption><svg id=\"chart-bytes\" class=\"chart\" viewBox=\"0 0 600 160\" role=\"img\"></svg></figure>\
<figure><figcaption>bytes fetched / s</figcaption><svg id=\"chart-fetched\" class=\"chart\" viewBox=\"0 0 600 160\" role=\"img\"></svg></figure></div>\
<h2>Features</h2>{}",
        html::pairs(
            "overview",
            &[
                ("Broker id", broker.config.node_id.to_string()),
                ("Cluster id", esc(&broker.cluster_id)),
                ("Version", esc(env!("CARGO_PKG_VERSION"))),
                ("Listeners", listeners.join("<br>")),
                ("Data dir", esc(&data_dir.display().to_string())),
                ("Disk", esc(&disk_text)),
                ("Local log bytes", html::bytes(local)),
                (
                    "Tiered bytes",
                    tiered.map_or("tiering off".into(), html::bytes)
                ),
                (
                    "Topics",
                    format!("<a href=\"/console/topics\">{}</a>", topics.len())
                ),
                ("Partitions", partitions.to_string()),
                (
                    "Consumer groups",
                    format!("<a href=\"/console/groups\">{groups}</a>")
                ),
            ]
        ),
        html::table(
            "features",
            &["feature", "supported", "finalized level"],
            &features
        ),
    );
    Ok(Html(html::layout("Overview", &body)))
}

/// The throughput series as rates between consecutive samples: [[unix ms, records/s,
/// bytes in/s, bytes fetched/s], ...].
pub async fn throughput(State(c): State<Arc<Console>>) -> impl IntoResponse {
    let samples = c.samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let series: Vec<[f64; 4]> = samples
        .iter()
        .zip(samples.iter().skip(1))
        .map(|(a, b)| {
            let secs = ((b.at_ms - a.at_ms) as f64 / 1000.0).max(0.001);
            [
                b.at_ms as f64,
                ((b.records - a.records).max(0) as f64 / secs).round(),
                (b.bytes.saturating_sub(a.bytes) as f64 / secs).round(),
                (b.fetched.saturating_sub(a.fetched) as f64 / secs).round(),
            ]
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&series).unwrap_or_else(|_| "[]".into()),
    )
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        Source::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        Source::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        Source::StaticBroker => "STATIC_BROKER_CONFIG",
        Source::Default => "DEFAULT_CONFIG",
        Source::DynamicBrokerLogger => "DYNAMIC_BROKER_LOGGER_CONFIG",
    }
}

pub fn source(s: Source) -> String {
    esc(source_name(s))
}

/// Every broker setting as DescribeConfigs reports it (sensitive values hidden).
pub async fn broker_config(State(c): State<Arc<Console>>) -> Page {
    let broker = c.broker()?;
    let rows: Vec<Vec<String>> = crate::api::describe_configs::broker_entries(&broker)
        .into_iter()
        .map(|e| {
            let value = match (&e.value, e.sensitive) {
                (_, true) => "<i>(sensitive)</i>".to_string(),
                (Some(v), false) => esc(v),
                (None, false) => "<i>null</i>".to_string(),
            };
            vec![
                format!("<span title=\"{}\">{}</span>", esc(e.doc), esc(&e.name)),
                value,
                source(e.source),
                if e.read_only { "read-only" } else { "dynamic" }.to_string(),
            ]
        })
        .collect();
    let body = format!(
        "<h1>Broker {} configuration</h1><p class=\"note\">Read-only here; change broker settings with <code>sluice cluster config set</code>.</p>{}",
        broker.config.node_id,
        html::table("broker-config", &["name", "value", "source", "mode"], &rows)
    );
    Ok(Html(html::layout("Broker config", &body)))
}
