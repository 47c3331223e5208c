//! The web console on the admin listener, over plain HTTP/1.1 against a real broker process
//! that real rdkafka clients produced to and committed offsets in: pages and status codes,
//! escaping of record contents, 404s, oversized queries, malformed offsets, and that every
//! change (create topic, edit config, reset offsets) needs its confirm page's token.

mod common;

use common::Broker;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One request: (status code, body).
fn http(port: u16, method: &str, path: &str, form: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the admin listener");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = form.unwrap_or("");
    let extra = match form {
        Some(_) => format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ),
        None => String::new(),
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n{body}"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

fn get(port: u16, path: &str) -> (u16, String) {
    http(port, "GET", path, None)
}

/// Form-encodes one value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The hidden fields of the confirm page's form, form-encoded, and its token.
fn confirm_form(page: &str) -> (String, String) {
    let form = &page[page.find("id=\"confirm\"").expect("a confirm form")..];
    let mut fields = Vec::new();
    let mut token = String::new();
    for part in form.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| {
            let start = part.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            let end = start + part[start..].find('"').unwrap();
            part[start..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&")
        };
        let (name, value) = (attr("name"), attr("value"));
        if name == "token" {
            token = value.clone();
        }
        fields.push(format!("{}={}", enc(&name), enc(&value)));
    }
    (fields.join("&"), token)
}

#[tokio::test(flavor = "multi_thread")]
async fn console_pages_escaping_limits_and_confirmed_changes() {
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut broker = Broker::start(&["--admin-listen", &listen]);
    let bs = broker.bootstrap();
    common::create_topic(&bs, "web.events", 2, &[]).await;
    let producer = common::producer(&bs, &[]);
    let evil = "<script>alert(1)</script>";
    let sends: [(Option<&str>, &str, Option<&str>); 3] = [
        (Some("k0"), "hello console", None),
        (None, "{\"a\":1,\"b\":[true,null]}", None),
        (Some("<b>key</b>"), evil, Some("<i>h</i>")),
    ];
    for (key, value, header) in sends {
        let mut r = FutureRecord::<str, str>::to("web.events")
            .partition(0)
            .payload(value);
        if let Some(k) = key {
            r = r.key(k);
        }
        if let Some(h) = header {
            r = r.headers(OwnedHeaders::new().insert(Header {
                key: "origin",
                value: Some(h),
            }));
        }
        producer
            .send(r, Duration::from_secs(10))
            .await
            .expect("delivered");
    }
    assert_eq!(common::watermarks(&bs, "web.events", 0), (0, 3));

    // Pages load and show broker state.
    let (status, overview) = get(port, "/");
    assert_eq!(status, 200, "{overview}");
    assert!(overview.contains("Broker id") && overview.contains("chart-records"));
    assert!(
        overview.contains("chart-fetched"),
        "the fetch throughput chart"
    );
    assert_eq!(get(port, "/console").0, 200);
    let (status, topics) = get(port, "/console/topics");
    assert_eq!(status, 200);
    assert!(topics.contains("/console/topics/web.events"), "{topics}");
    let (status, detail) = get(port, "/console/topics/web.events");
    assert_eq!(status, 200);
    assert!(detail.contains("id=\"partitions\"") && detail.contains("retention.ms"));
    let (status, cfg) = get(port, "/console/broker");
    assert_eq!(status, 200);
    assert!(cfg.contains("log.retention.hours"), "broker config listed");
    let (status, js) = get(port, "/console/assets/console.js");
    assert_eq!(status, 200);
    assert!(js.contains("/console/api/throughput"));
    let (status, series) = get(port, "/console/api/throughput");
    assert_eq!(status, 200);
    assert!(series.starts_with('['), "{series}");
    let parsed: Vec<Vec<f64>> = serde_json::from_str(&series).unwrap();
    assert!(
        parsed.iter().all(|s| s.len() == 4),
        "[ms, records/s, bytes in/s, bytes fetched/s]: {series}"
    );

    // The message browser: by offset, records rendered as escaped text.
    let (status, page) = get(
        port,
        "/console/topics/web.events/messages?partition=0&offset=2",
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("data-offset=\"2\""), "{page}");
    assert!(
        !page.contains("data-offset=\"1\""),
        "starts at the offset asked"
    );
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the value is shown as text: {page}"
    );
    assert!(!page.contains(evil), "no record markup reaches the page");
    assert!(page.contains("&lt;b&gt;key&lt;/b&gt;") && !page.contains("<b>key</b>"));
    assert!(page.contains("&lt;i&gt;h&lt;/i&gt;") && !page.contains("<i>h</i>"));
    let (_, json) = get(
        port,
        "/console/topics/web.events/messages?partition=0&offset=1&limit=1&format=json",
    );
    assert!(json.contains("&quot;b&quot;: [\n"), "pretty JSON: {json}");
    let (_, hex) = get(
        port,
        "/console/topics/web.events/messages?partition=0&offset=0&limit=1&format=hex",
    );
    assert!(hex.contains("68 65 6c 6c 6f"), "hex of 'hello': {hex}");
    // By timestamp: everything was produced after this test started.
    let (_, by_ts) = get(
        port,
        "/console/topics/web.events/messages?partition=0&timestamp=0&limit=1",
    );
    assert!(by_ts.contains("data-offset=\"0\"") && by_ts.contains("hello console"));
    let (_, future) = get(
        port,
        &format!(
            "/console/topics/web.events/messages?partition=0&timestamp={}",
            common::now_ms() + 3_600_000
        ),
    );
    assert!(future.contains("No record has a timestamp") && !future.contains("data-offset="));

    // Bad input.
    assert_eq!(get(port, "/console/no-such-page").0, 404);
    assert_eq!(get(port, "/console/topics/missing").0, 404);
    assert_eq!(get(port, "/console/groups/missing").0, 404);
    assert_eq!(
        get(port, "/console/topics/web.events/messages?partition=7").0,
        404
    );
    for bad in [
        "offset=abc",
        "offset=-1",
        "offset=99999999999999999999",
        "partition=x",
        "limit=0",
        "format=xml",
        "offset=1&timestamp=1",
    ] {
        let (status, body) = get(port, &format!("/console/topics/web.events/messages?{bad}"));
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let huge = "x".repeat(20_000);
    let (status, _) = get(
        port,
        &format!("/console/topics/web.events/messages?offset=0&pad={huge}"),
    );
    assert_eq!(status, 414, "a huge query is refused");
    assert_eq!(
        get(port, "/v1/health"),
        (200, "ok\n".to_string()),
        "the listener still answers"
    );

    // Create topic: refused without the confirm page's token, or with other values than it showed.
    let (status, _) = http(
        port,
        "POST",
        "/console/create-topic",
        Some("name=made.here&partitions=3&configs="),
    );
    assert_eq!(status, 403);
    let (status, confirm) = get(
        port,
        "/console/create-topic/confirm?name=made.here&partitions=3&configs=retention.ms%3D60000",
    );
    assert_eq!(status, 200, "{confirm}");
    assert!(!common::topic_names(&bs).contains(&"made.here".to_string()));
    let (form, token) = confirm_form(&confirm);
    let tampered = form.replace("partitions=3", "partitions=9");
    assert_eq!(
        http(port, "POST", "/console/create-topic", Some(&tampered)).0,
        403
    );
    let (status, done) = http(port, "POST", "/console/create-topic", Some(&form));
    assert_eq!(status, 200, "{done}");
    assert!(!token.is_empty());
    let md = common::consumer(&bs, &[])
        .fetch_metadata(Some("made.here"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 3, "created as confirmed");
    // A second confirmation of the same creation: the topic exists now.
    assert_eq!(
        http(port, "POST", "/console/create-topic", Some(&form)).0,
        409
    );
    assert_eq!(
        get(
            port,
            "/console/create-topic/confirm?name=bad%2Fname&partitions=1"
        )
        .0,
        400
    );

    // Edit a topic config: validated on the confirm page, applied only by its POST.
    assert_eq!(
        get(
            port,
            "/console/topics/web.events/config/confirm?op=set&name=retention.ms&value=soon"
        )
        .0,
        400
    );
    let (status, confirm) = get(
        port,
        "/console/topics/web.events/config/confirm?op=set&name=retention.ms&value=123456",
    );
    assert_eq!(status, 200, "{confirm}");
    let (form, _) = confirm_form(&confirm);
    assert_eq!(
        http(
            port,
            "POST",
            "/console/topics/web.events/config",
            Some("op=set&name=retention.ms&value=123456&token=00")
        )
        .0,
        403
    );
    assert_eq!(
        http(
            port,
            "POST",
            "/console/topics/web.events/config",
            Some(&form)
        )
        .0,
        200
    );
    let admin = common::admin(&bs);
    let described = admin
        .describe_configs(
            &[rdkafka::admin::ResourceSpecifier::Topic("web.events")],
            &common::admin_opts(),
        )
        .await
        .unwrap();
    let cfg = described[0].as_ref().unwrap();
    assert_eq!(
        cfg.get("retention.ms").and_then(|e| e.value.clone()),
        Some("123456".to_string())
    );

    // Group lag, and resetting offsets.
    let group_consumer = common::consumer(&bs, &[("group.id", "web-group")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("web.events", 0, Offset::Offset(1))
        .unwrap();
    group_consumer.commit(&tpl, CommitMode::Sync).unwrap();
    let (status, g) = get(port, "/console/groups/web-group");
    assert_eq!(status, 200, "{g}");
    assert!(
        g.contains("data-topic=\"web.events\" data-partition=\"0\" data-lag=\"2\""),
        "lag = high watermark 3 - committed 1: {g}"
    );
    let (_, groups) = get(port, "/console/groups");
    assert!(groups.contains("/console/groups/web-group"));
    let reset = "topic=web.events&partition=0&to=start&value=";
    assert_eq!(
        http(port, "POST", "/console/groups/web-group/reset", Some(reset)).0,
        403
    );
    let (status, confirm) = get(
        port,
        "/console/groups/web-group/reset/confirm?topic=web.events&partition=0&to=start&value=",
    );
    assert_eq!(status, 200, "{confirm}");
    let (form, _) = confirm_form(&confirm);
    let (status, done) = http(port, "POST", "/console/groups/web-group/reset", Some(&form));
    assert_eq!(status, 200, "{done}");
    let committed = group_consumer
        .committed_offsets(tpl.clone(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed.find_partition("web.events", 0).unwrap().offset(),
        Offset::Offset(0),
        "reset to the start"
    );
    let (_, g) = get(port, "/console/groups/web-group");
    assert!(g.contains("data-partition=\"0\" data-lag=\"3\""), "{g}");
    broker.assert_alive();
}
