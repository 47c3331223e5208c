//! The web console on the admin listener: `/` (and /console/...) shows the cluster overview,
//! topics, a message browser, consumer groups with lag, and the broker configuration, all
//! read straight from the broker's seams (topics, partition logs, the group coordinator, the
//! config layers), not through the Kafka protocol. Server-rendered HTML; the only script
//! (charts) and the style sheet are embedded in the binary, so nothing is fetched at run time.
//!
//! Changes (create a topic, edit a topic config, reset a group's offsets) go form -> confirm
//! page -> POST; the POST carries a token the confirm page got, an HMAC over exactly the
//! change it showed, so a forged or replayed-with-other-values form is refused.

mod changes;
pub(crate) mod groups;
mod html;
mod messages;
mod overview;
mod topics;

use crate::broker::Broker;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// Longest query string accepted (a message browser query is well under 200 bytes).
const MAX_QUERY: usize = 4096;
/// Longest path accepted (a topic name is at most 249 characters).
const MAX_PATH: usize = 1024;
/// Throughput samples kept: one every SAMPLE_EVERY, five minutes' worth.
const SAMPLES: usize = 150;
const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// Totals over every partition at one instant, for the throughput charts.
#[derive(Clone, Copy)]
struct Sample {
    at_ms: i64,
    /// Sum of log end offsets: records (and control records) appended so far.
    records: i64,
    /// Sum of local segment bytes.
    bytes: u64,
    /// Bytes clients fetched so far (the topics' traffic counters).
    fetched: u64,
}

pub struct Console {
    broker: &'static OnceLock<Weak<Broker>>,
    /// Per-process key of the confirmation tokens.
    secret: ring::hmac::Key,
    samples: Mutex<VecDeque<Sample>>,
}

/// An error page: its status and a message (shown escaped).
pub struct Problem(pub StatusCode, pub String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = self.0.canonical_reason().unwrap_or("Error");
        let body = format!(
            "<h1>{} {}</h1><p class=\"problem\">{}</p>",
            self.0.as_u16(),
            html::esc(title),
            html::esc(&self.1)
        );
        (self.0, Html(html::layout(title, &body))).into_response()
    }
}

pub type Page = Result<Html<String>, Problem>;

fn bad_request(m: impl Into<String>) -> Problem {
    Problem(StatusCode::BAD_REQUEST, m.into())
}

fn not_found(m: impl Into<String>) -> Problem {
    Problem(StatusCode::NOT_FOUND, m.into())
}

/// Query parameters, as given.
pub type Params = BTreeMap<String, String>;

/// An optional integer parameter: 400 when present but not an integer.
fn int_param(q: &Params, name: &str) -> Result<Option<i64>, Problem> {
    match q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad_request(format!("{name} must be an integer, not '{v}'"))),
    }
}

impl Console {
    fn broker(&self) -> Result<Arc<Broker>, Problem> {
        self.broker.get().and_then(Weak::upgrade).ok_or_else(|| {
            Problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the broker is still recovering its logs".into(),
            )
        })
    }

    /// The token that authorizes `action` with exactly these fields.
    fn token(&self, action: &str, fields: &[(&str, &str)]) -> String {
        let mut msg = action.as_bytes().to_vec();
        for (k, v) in fields {
            // Lengths first: no two different field lists give the same bytes.
            for part in [k.as_bytes(), v.as_bytes()] {
                msg.extend_from_slice(&(part.len() as u64).to_be_bytes());
                msg.extend_from_slice(part);
            }
        }
        let tag = ring::hmac::sign(&self.secret, &msg);
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `given` is the token of `action` with these fields (constant-time compare).
    fn token_ok(&self, action: &str, fields: &[(&str, &str)], given: &str) -> bool {
        let want = self.token(action, fields);
        want.len() == given.len()
            && want
                .bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn sample(&self) {
        let Ok(broker) = self.broker() else { return };
        let (mut records, mut bytes, mut fetched) = (0i64, 0u64, 0u64);
        for t in broker.topics() {
            fetched += t.traffic.counts().bytes_out;
            for p in &t.partitions {
                records += p.offsets().log_end;
                bytes += p.size_bytes();
            }
        }
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(Sample {
            at_ms: crate::log::now_ms(),
            records,
            bytes,
            fetched,
        });
    }
}

/// The console's routes, to merge into the admin listener's router. Starts the sampler of
/// the throughput charts.
pub fn router(broker: &'static OnceLock<Weak<Broker>>) -> Router {
    let rng = ring::rand::SystemRandom::new();
    let secret = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).unwrap_or_else(|_| {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, uuid::Uuid::new_v4().as_bytes())
    });
    let console = Arc::new(Console {
        broker,
        secret,
        samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
    });
    let weak = Arc::downgrade(&console);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            let Some(c) = weak.upgrade() else { return };
            c.sample();
        }
    });
    Router::new()
        .route("/", get(overview::page))
        .route("/console", get(overview::page))
        .route("/console/", get(overview::page))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/api/throughput", get(overview::throughput))
        .route("/console/broker", get(overview::broker_config))
        .route("/console/topics", get(topics::list))
        .route("/console/topics/{topic}", get(topics::detail))
        .route("/console/topics/{topic}/messages", get(messages::page))
        .route(
            "/console/topics/{topic}/config",
            get(changes::config_form).post(changes::config_apply),
        )
        .route(
            "/console/topics/{topic}/config/confirm",
            get(changes::config_confirm),
        )
        .route(
            "/console/create-topic",
            get(changes::create_form).post(changes::create_apply),
        )
        .route(
            "/console/create-topic/confirm",
            get(changes::create_confirm),
        )
        .route("/console/groups", get(groups::list))
        .route("/console/groups/{group}", get(groups::detail))
        .route(
            "/console/groups/{group}/reset",
            get(changes::reset_form).post(changes::reset_apply),
        )
        .route(
            "/console/groups/{group}/reset/confirm",
            get(changes::reset_confirm),
        )
        .fallback(|| async { not_found("no such page") })
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(guard))
        .with_state(console)
}

/// Refuses oversized request lines before any handler parses them, and sets the headers that
/// keep the pages from running foreign script or being framed (the confirm forms).
async fn guard(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let query_len = uri.query().map_or(0, str::len);
    if query_len > MAX_QUERY || uri.path().len() > MAX_PATH {
        return Problem(
            StatusCode::URI_TOO_LONG,
            format!("request line too long (query at most {MAX_QUERY} bytes)"),
        )
        .into_response();
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/console.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/console.js"),
    )
}
