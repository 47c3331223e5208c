//! The `sluice` command line as a Kafka client (`sluice topic|produce|consume|group|cluster`),
//! run as the built binary against a real sluice broker: topic administration, produce with
//! keys and headers read back with a format string and as JSON, consuming from a timestamp,
//! read_committed over aborted transactions, group lag after an rdkafka consumer (classic and
//! KIP-848) committed, group seek, cluster info, health and configs, and the errors and exit
//! codes (1 Kafka error, 2 usage, 3 connection).
//!
//! `SLUICE_CLI_AGAINST=kafka cargo test --test cli -- --test-threads=2` runs the same tests,
//! with the same expected output, against a fresh Apache Kafka 4.4 per test
//! (compat-tests/kafka/refkafka.py; its jars must be installed).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::groups::{CLASSIC_FAST, GROUP_BROKER_ARGS};
use common::Broker;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

/// What one CLI run gave: exit code, stdout, stderr.
struct Run {
    code: i32,
    out: String,
    err: String,
}

/// Runs `sluice ARGS` against `brokers` (SLUICE_BROKERS), with `stdin` on its input.
fn cli_at(brokers: &str, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("SLUICE_BROKERS", brokers)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("wait for sluice");
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The broker a test drives: a sluice started by the harness, or, with
/// `SLUICE_CLI_AGAINST=kafka`, a fresh Apache Kafka 4.4 started by compat-tests/kafka/refkafka.py
/// (the same scenarios and the same expected output against both).
enum Target {
    Sluice(Broker),
    Kafka {
        dir: tempfile::TempDir,
        bootstrap: String,
    },
}

impl Target {
    fn start(sluice_args: &[&str]) -> Target {
        if std::env::var("SLUICE_CLI_AGAINST").as_deref() != Ok("kafka") {
            return Target::Sluice(Broker::start(sluice_args));
        }
        let dir = tempfile::Builder::new()
            .prefix("sluice-cli-kafka-")
            .tempdir()
            .unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/compat-tests/kafka/refkafka.py"
        );
        let out = Command::new(script)
            .arg("start")
            .arg(dir.path())
            .arg("--port")
            .arg(common::free_port().to_string())
            .output()
            .expect("run refkafka.py");
        assert!(
            out.status.success(),
            "refkafka.py start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bootstrap = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("refkafka.py prints the address")
            .trim()
            .to_string();
        Target::Kafka { dir, bootstrap }
    }

    fn bootstrap(&self) -> String {
        match self {
            Target::Sluice(b) => b.bootstrap(),
            Target::Kafka { bootstrap, .. } => bootstrap.clone(),
        }
    }

    fn port(&self) -> u16 {
        self.bootstrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Target::Kafka { dir, .. } = self {
            let script = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/compat-tests/kafka/refkafka.py"
            );
            let _ = Command::new(script).arg("stop").arg(dir.path()).status();
        }
    }
}

fn cli(broker: &Target, args: &[&str]) -> Run {
    cli_at(&broker.bootstrap(), args, "")
}

/// Runs and asserts exit code 0; returns stdout.
fn ok(broker: &Target, args: &[&str], stdin: &str) -> String {
    let r = cli_at(&broker.bootstrap(), args, stdin);
    assert_eq!(
        r.code, 0,
        "sluice {args:?} failed with {}:\nstdout: {}\nstderr: {}",
        r.code, r.out, r.err
    );
    r.out
}

fn json(broker: &Target, args: &[&str]) -> Value {
    let out = ok(broker, args, "");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("sluice {args:?}: not JSON ({e}): {out}"))
}

/// Polls `f` for up to 15 s until it returns `want` (Kafka applies metadata and dynamic
/// configs asynchronously); then asserts.
fn eventually<T, W>(mut f: impl FnMut() -> T, want: W)
where
    T: PartialEq<W> + std::fmt::Debug,
    W: std::fmt::Debug,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let got = f();
        if got == want {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!("still {got:?}, want {want:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config<'a>(described: &'a Value, name: &str) -> &'a Value {
    described["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no config {name} in {described}"))
}

#[test]
fn topic_create_list_describe_alter_grow_trim_delete() {
    let broker = Target::start(&[]);
    let out = ok(
        &broker,
        &[
            "topic",
            "create",
            "orders",
            "-p",
            "3",
            "-r",
            "1",
            "-c",
            "retention.ms=3600000",
        ],
        "",
    );
    assert_eq!(out, "TOPIC   STATUS\norders  OK\n");
    ok(&broker, &["topic", "create", "audit", "-p", "1"], "");

    let again = cli(&broker, &["topic", "create", "orders"]);
    assert_eq!(again.code, 1, "{}", again.err);
    assert!(
        again
            .err
            .contains("TOPIC_ALREADY_EXISTS: Topic 'orders' already exists."),
        "stderr: {}",
        again.err
    );

    // Kafka's brokers learn of new topics a moment after CreateTopics answers.
    eventually(
        || ok(&broker, &["topic", "list"], ""),
        "NAME    PARTITIONS  REPLICAS\naudit   1           1\norders  3           1\n",
    );
    assert_eq!(
        json(&broker, &["topic", "list", "--format", "json"]),
        serde_json::json!([
            {"name": "audit", "partitions": 1, "replicas": 1, "internal": false},
            {"name": "orders", "partitions": 3, "replicas": 1, "internal": false},
        ])
    );

    let d = &json(
        &broker,
        &["topic", "describe", "orders", "--format", "json"],
    )[0];
    assert_eq!(d["name"], "orders");
    let parts = d["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(p["leader"], 1);
        assert_eq!(p["replicas"], serde_json::json!([1]));
        assert_eq!(p["isr"], serde_json::json!([1]));
        assert_eq!(p["log_start_offset"], 0);
        assert_eq!(p["high_watermark"], 0);
    }
    assert_eq!(config(d, "retention.ms")["value"], "3600000");
    assert_eq!(config(d, "retention.ms")["source"], "DYNAMIC_TOPIC_CONFIG");
    let text = ok(&broker, &["topic", "describe", "orders"], "");
    assert!(text.contains("PARTITION  LEADER  EPOCH  REPLICAS  ISR  LOG-START-OFFSET  HIGH-WATERMARK\n0          1       0      [1]       [1]  0                 0\n"), "{text}");

    let out = ok(
        &broker,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "cleanup.policy=compact",
            "--set",
            "segment.ms=600000",
            "--delete",
            "retention.ms",
        ],
        "",
    );
    assert_eq!(out, "altered 3 config(s) of topic 'orders'\n");
    let d = &json(
        &broker,
        &["topic", "describe", "orders", "--format", "json"],
    )[0];
    assert_eq!(config(d, "cleanup.policy")["value"], "compact");
    assert_eq!(config(d, "segment.ms")["value"], "600000");
    assert_eq!(config(d, "retention.ms")["source"], "DEFAULT_CONFIG");
    assert_eq!(config(d, "retention.ms")["value"], "604800000");
    assert_eq!(
        ok(
            &broker,
            &[
                "topic",
                "alter-config",
                "orders",
                "--set",
                "segment.ms=1234567",
                "--dry-run"
            ],
            ""
        ),
        "validated 1 config(s) of topic 'orders'\n"
    );
    let d = &json(
        &broker,
        &["topic", "describe", "orders", "--format", "json"],
    )[0];
    assert_eq!(
        config(d, "segment.ms")["value"],
        "600000",
        "a dry run changes nothing"
    );
    let bad = cli(
        &broker,
        &["topic", "alter-config", "orders", "--set", "segment.ms=x"],
    );
    assert_eq!(bad.code, 1, "{}", bad.out);
    assert!(bad.err.contains("INVALID_CONFIG"), "{}", bad.err);

    assert_eq!(
        ok(
            &broker,
            &["topic", "add-partitions", "orders", "-n", "2"],
            ""
        ),
        "TOPIC   STATUS\norders  OK (5 partitions)\n"
    );
    let d = &json(
        &broker,
        &["topic", "describe", "orders", "--format", "json"],
    )[0];
    assert_eq!(d["partitions"].as_array().unwrap().len(), 5);

    // trim-prefix: DeleteRecords up to an offset.
    ok(&broker, &["produce", "audit", "-q"], "1\n2\n3\n4\n5\n");
    assert_eq!(
        ok(&broker, &["topic", "trim-prefix", "audit", "-o", "3"], ""),
        "PARTITION  LOG-START-OFFSET  ERROR\n0          3\n"
    );
    assert_eq!(
        ok(&broker, &["consume", "audit", "-e"], ""),
        "4\n5\n",
        "records before the new log start are gone"
    );

    assert_eq!(
        ok(&broker, &["topic", "delete", "orders"], ""),
        "TOPIC   STATUS\norders  OK\n"
    );
    let gone = common::wait_for(Duration::from_secs(10), || {
        let r = cli(&broker, &["topic", "describe", "orders"]);
        (r.code == 1).then_some(r)
    })
    .expect("describe of a deleted topic fails");
    assert!(
        gone.err
            .contains("UNKNOWN_TOPIC_OR_PARTITION: Topic 'orders' does not exist."),
        "{}",
        gone.err
    );
    assert_eq!(
        ok(&broker, &["topic", "list"], ""),
        "NAME   PARTITIONS  REPLICAS\naudit  1           1\n"
    );
    let again = cli(&broker, &["topic", "delete", "orders"]);
    assert_eq!(again.code, 1);
    assert!(
        again.err.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{}",
        again.err
    );
}

#[test]
fn produce_keys_and_headers_then_consume_with_format_and_json() {
    let broker = Target::start(&[]);
    ok(&broker, &["topic", "create", "events", "-p", "2"], "");
    let out = ok(
        &broker,
        &[
            "produce",
            "events",
            "-p",
            "1",
            "-k",
            ":",
            "-H",
            "source=cli",
            "-H",
            "n=1",
            "--acks",
            "all",
            "--timestamp",
            "1700000000000",
            "-z",
            "zstd",
        ],
        "alice:hello\nbob:world\nno key here\n",
    );
    assert_eq!(
        out,
        "Produced to partition 1 at offset 0 with timestamp 1700000000000.\n\
         Produced to partition 1 at offset 1 with timestamp 1700000000000.\n\
         Produced to partition 1 at offset 2 with timestamp 1700000000000.\n"
    );
    let out = ok(
        &broker,
        &[
            "consume",
            "events",
            "-p",
            "1",
            "-e",
            "-f",
            "%T %p %o %t key=%k value=%v headers=%h\\n",
        ],
        "",
    );
    assert_eq!(
        out,
        "events 1 0 1700000000000 key=alice value=hello headers=source=cli,n=1\n\
         events 1 1 1700000000000 key=bob value=world headers=source=cli,n=1\n\
         events 1 2 1700000000000 key= value=no key here headers=source=cli,n=1\n"
    );
    let out = ok(
        &broker,
        &["consume", "events", "-e", "-n", "2", "-f", "json"],
        "",
    );
    let h = r#""headers":[{"key":"source","value":"cli"},{"key":"n","value":"1"}]"#;
    assert_eq!(
        out,
        format!(
            "{{\"topic\":\"events\",\"partition\":1,\"offset\":0,\"timestamp\":1700000000000,\"key\":\"alice\",\"value\":\"hello\",{h}}}\n\
             {{\"topic\":\"events\",\"partition\":1,\"offset\":1,\"timestamp\":1700000000000,\"key\":\"bob\",\"value\":\"world\",{h}}}\n"
        )
    );

    // Every codec, from a file, keyed records placed by Kafka's partitioner (murmur2).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "k1=a\nk2=b\nk3=c\n").unwrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let out = ok(
            &broker,
            &[
                "produce",
                "events",
                "--file",
                file.to_str().unwrap(),
                "-k",
                "=",
                "-z",
                codec,
                "--format",
                "json",
            ],
            "",
        );
        let partitions: Vec<i64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["partition"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        // Java: Utils.toPositive(Utils.murmur2("k1"/"k2"/"k3")) % 2.
        assert_eq!(partitions, [1, 1, 0], "{codec}");
    }
    let out = ok(
        &broker,
        &["consume", "events", "-p", "0", "-e", "-f", "%k=%v,"],
        "",
    );
    assert_eq!(out, "k3=c,".repeat(5));

    // Without a key: round robin over the partitions.
    let out = ok(
        &broker,
        &["produce", "events", "--format", "json"],
        "x\ny\nz\n",
    );
    let partitions: Vec<i64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["partition"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(partitions, [0, 1, 0]);

    // A large file with a progress line (on stderr; forced, as stderr is not a terminal here).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.txt");
    let lines: String = (0..30_000)
        .map(|i| format!("line-{i:06}-{}\n", "x".repeat(60)))
        .collect();
    std::fs::write(&file, &lines).unwrap();
    ok(&broker, &["topic", "create", "bulk", "-p", "3"], "");
    let r = cli_at(
        &broker.bootstrap(),
        &[
            "produce",
            "bulk",
            "--file",
            file.to_str().unwrap(),
            "-q",
            "--progress",
            "always",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "", "-q prints nothing on stdout");
    // Redrawn in place: the last drawing, then the summary line.
    let last = r.err.rsplit('\r').next().unwrap_or_default();
    let last_bar = last.lines().next().unwrap_or_default();
    assert!(
        last_bar.contains("100%") && last_bar.contains("30000 records"),
        "{:?}",
        r.err
    );
    assert!(
        r.err.ends_with(" s\n") && r.err.contains("produced 30000 records in "),
        "{:?}",
        r.err
    );
    // Without --progress (stderr is no terminal here): nothing on stderr.
    let r = cli_at(
        &broker.bootstrap(),
        &["produce", "bulk", "--file", file.to_str().unwrap(), "-q"],
        "",
    );
    assert_eq!((r.code, r.err.as_str()), (0, ""));
}

#[test]
fn consume_from_a_timestamp() {
    let broker = Target::start(&[]);
    ok(&broker, &["topic", "create", "ticks", "-p", "1"], "");
    ok(
        &broker,
        &["produce", "ticks", "-q", "--timestamp", "1000"],
        "early-1\nearly-2\n",
    );
    ok(
        &broker,
        &["produce", "ticks", "-q", "--timestamp", "2000"],
        "late-1\nlate-2\n",
    );
    let c = |o: &str| {
        ok(
            &broker,
            &["consume", "ticks", "-o", o, "-e", "-f", "%o %t %v\\n"],
            "",
        )
    };
    assert_eq!(c("@1500"), "2 2000 late-1\n3 2000 late-2\n");
    assert_eq!(
        c("@1000"),
        "0 1000 early-1\n1 1000 early-2\n2 2000 late-1\n3 2000 late-2\n"
    );
    assert_eq!(c("@3000"), "", "no record that late: starts at the end");
    assert_eq!(c("start").lines().count(), 4);
    assert_eq!(c("end"), "");
    assert_eq!(c("1"), "1 1000 early-2\n2 2000 late-1\n3 2000 late-2\n");
    assert_eq!(c("-1"), "3 2000 late-2\n", "-N: N records before the end");
    assert_eq!(c("-9").lines().count(), 4, "never before the log start");
    assert_eq!(
        ok(&broker, &["consume", "ticks", "-n", "1", "-o", "@1500"], ""),
        "late-1\n"
    );
}

fn group_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    let mut c = common::client_config(bootstrap);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for (k, v) in CLASSIC_FAST {
        c.set(*k, *v);
    }
    c.create().expect("group consumer")
}

#[test]
fn group_describe_shows_lag_and_seek_moves_offsets() {
    let broker = Target::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    ok(&broker, &["topic", "create", "work", "-p", "2"], "");
    ok(
        &broker,
        &["produce", "work", "-q", "-p", "0"],
        "a\nb\nc\nd\ne\nf\n",
    );
    ok(
        &broker,
        &["produce", "work", "-q", "-p", "1"],
        "g\nh\ni\nj\n",
    );

    // An rdkafka group member consumes and commits 4 of partition 0 and 1 of partition 1.
    let consumer = group_consumer(&bs, "workers");
    consumer.subscribe(&["work"]).unwrap();
    let mut seen = 0;
    common::wait_for(Duration::from_secs(30), || {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(100)) {
            seen += 1;
        }
        (seen >= 1).then_some(())
    })
    .expect("the group consumer gets records");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("work", 0, Offset::Offset(4))
        .unwrap();
    tpl.add_partition_offset("work", 1, Offset::Offset(1))
        .unwrap();
    consumer.commit(&tpl, CommitMode::Sync).unwrap();

    let d = &json(
        &broker,
        &["group", "describe", "workers", "--format", "json"],
    )[0];
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["protocol_type"], "consumer");
    assert_eq!(d["members"].as_array().unwrap().len(), 1);
    assert_eq!(d["total_lag"], 2 + 3);
    let member = d["members"][0]["member_id"].clone();
    let parts = d["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    for (p, (committed, end, lag)) in [(4, 6, 2), (1, 4, 3)].into_iter().enumerate() {
        assert_eq!(parts[p]["topic"], "work");
        assert_eq!(parts[p]["partition"], p);
        assert_eq!(parts[p]["committed_offset"], committed);
        assert_eq!(parts[p]["log_end_offset"], end);
        assert_eq!(parts[p]["lag"], lag);
        assert_eq!(
            parts[p]["member_id"], member,
            "the member owns both partitions"
        );
    }
    let text = ok(&broker, &["group", "describe", "workers"], "");
    assert!(text.contains("STATE          Stable\n"), "{text}");
    assert!(text.contains("TOTAL-LAG      5\n"), "{text}");
    assert!(
        text.contains("TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  MEMBER-ID"),
        "{text}"
    );
    let listed = ok(&broker, &["group", "list"], "");
    assert!(
        listed.contains("workers  1            Stable  consumer"),
        "{listed}"
    );

    // Seek refuses while the member is active.
    let busy = cli(&broker, &["group", "seek", "workers", "--to", "start"]);
    assert_eq!(busy.code, 1, "{}", busy.out);
    assert!(busy.err.contains("active member"), "{}", busy.err);

    drop(consumer); // leaves the group
    common::wait_for(Duration::from_secs(30), || {
        let d = json(
            &broker,
            &["group", "describe", "workers", "--format", "json"],
        );
        (d[0]["state"] == "Empty").then_some(())
    })
    .expect("the group empties after its member leaves");

    let lags = |broker: &Target| -> Vec<(i64, i64)> {
        let d = &json(
            broker,
            &["group", "describe", "workers", "--format", "json"],
        )[0];
        d["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["committed_offset"].as_i64().unwrap(),
                    p["lag"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        ok(&broker, &["group", "seek", "workers", "--to", "start"], ""),
        "TOPIC  PARTITION  PRIOR-OFFSET  CURRENT-OFFSET\nwork   0          4             0\nwork   1          1             0\n"
    );
    assert_eq!(lags(&broker), [(0, 6), (0, 4)]);
    ok(&broker, &["group", "seek", "workers", "--to", "end"], "");
    assert_eq!(lags(&broker), [(6, 0), (4, 0)]);
    ok(
        &broker,
        &["group", "seek", "workers", "--to", "5", "--topics", "work"],
        "",
    );
    assert_eq!(
        lags(&broker),
        [(5, 1), (4, 0)],
        "an offset past the end is clamped to it"
    );
    ok(&broker, &["group", "seek", "workers", "--to", "@0"], "");
    assert_eq!(lags(&broker), [(0, 6), (0, 4)]);

    // The CLI consumes as the group (simple committer), from its committed offsets.
    ok(&broker, &["group", "seek", "workers", "--to", "3"], "");
    let out = ok(
        &broker,
        &["consume", "work", "-g", "workers", "-e", "-f", "%p:%v "],
        "",
    );
    assert_eq!(out, "0:d 0:e 0:f 1:j ");
    assert_eq!(lags(&broker), [(6, 0), (4, 0)]);

    assert_eq!(
        ok(&broker, &["group", "delete", "workers"], ""),
        "GROUP    STATUS\nworkers  OK\n"
    );
    let gone = cli(&broker, &["group", "describe", "workers"]);
    assert_eq!(gone.code, 1);
    assert!(gone.err.contains("GROUP_ID_NOT_FOUND"), "{}", gone.err);
}

#[test]
fn cluster_info_health_and_broker_configs() {
    let broker = Target::start(&[]);
    let info = json(&broker, &["cluster", "info", "--format", "json"]);
    assert_eq!(info["controller_id"], 1);
    assert!(info["cluster_id"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(info["brokers"][0]["id"], 1);
    assert_eq!(info["brokers"][0]["port"], broker.port());
    let apis = info["apis"].as_array().unwrap();
    assert!(apis
        .iter()
        .any(|a| a["name"] == "Metadata" && a["max_version"].as_i64() >= Some(12)));
    let text = ok(&broker, &["cluster", "info"], "");
    assert!(
        text.contains("BROKERS\n=======\nID  HOST       PORT"),
        "{text}"
    );

    let health = json(&broker, &["cluster", "health", "--format", "json"]);
    assert_eq!(health["healthy"], true, "{health}");
    assert_eq!(health["brokers"], serde_json::json!([1]));

    let get = |broker: &Target, args: &[&str]| -> Value {
        let mut a = vec![
            "cluster",
            "config",
            "get",
            "log.retention.ms",
            "--format",
            "json",
        ];
        a.extend_from_slice(args);
        json(broker, &a)[0].clone()
    };
    assert_eq!(get(&broker, &[])["source"], "DEFAULT_CONFIG");
    assert_eq!(
        ok(
            &broker,
            &["cluster", "config", "set", "log.retention.ms=7200000"],
            ""
        ),
        "altered 1 broker config(s) cluster-wide\n"
    );
    eventually(|| get(&broker, &[])["value"].clone(), "7200000");
    eventually(
        || get(&broker, &[])["source"].clone(),
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    );
    ok(
        &broker,
        &[
            "cluster",
            "config",
            "set",
            "log.retention.ms=3600000",
            "--broker",
            "1",
        ],
        "",
    );
    eventually(|| get(&broker, &[])["value"].clone(), "3600000");
    eventually(
        || get(&broker, &[])["source"].clone(),
        "DYNAMIC_BROKER_CONFIG",
    );
    eventually(
        || get(&broker, &["--broker", "default"])["value"].clone(),
        "7200000",
    );
    ok(
        &broker,
        &[
            "cluster",
            "config",
            "set",
            "--delete",
            "log.retention.ms",
            "--broker",
            "1",
        ],
        "",
    );
    eventually(|| get(&broker, &[])["value"].clone(), "7200000");
}

#[test]
fn errors_and_exit_codes() {
    let broker = Target::start(&[]);
    // 1: a Kafka error.
    for args in [
        &["consume", "missing", "-e"][..],
        &["produce", "missing"][..],
        &["topic", "describe", "missing"][..],
        &["topic", "trim-prefix", "missing", "-o", "1"][..],
    ] {
        let r = cli(&broker, args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.err);
        assert!(
            r.err
                .contains("UNKNOWN_TOPIC_OR_PARTITION: Topic 'missing' does not exist."),
            "{args:?}: {}",
            r.err
        );
    }
    ok(&broker, &["topic", "create", "small", "-p", "1"], "");
    let r = cli(&broker, &["consume", "small", "-o", "5", "-n", "1"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("OFFSET_OUT_OF_RANGE"), "{}", r.err);
    let r = cli(&broker, &["topic", "create", "bad", "-p", "0"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("INVALID_PARTITIONS"), "{}", r.err);
    let r = cli(&broker, &["consume", "small", "-p", "7"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("has no partition 7"), "{}", r.err);

    // 2: usage.
    for args in [
        &["topic", "frobnicate"][..],
        &["consume", "small", "-o", "soon"][..],
        &["consume", "small", "-f", "%q"][..],
        &["topic", "create", "x", "-c", "novalue"][..],
        &["produce", "small", "-z", "brotli"][..],
        &["produce", "small", "--acks", "2"][..],
    ] {
        let r = cli(&broker, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
    }

    // 3: no broker reachable.
    let dead = format!("127.0.0.1:{}", common::free_port());
    for args in [
        &["topic", "list"][..],
        &["consume", "small"][..],
        &["cluster", "info"][..],
        &["group", "list"][..],
    ] {
        let r = cli_at(&dead, args, "");
        assert_eq!(r.code, 3, "{args:?}: {}", r.err);
        assert!(
            r.err.contains(&format!("cannot connect to broker {dead}")),
            "{args:?}: {}",
            r.err
        );
    }
    let r = cli_at("no-such-host.invalid:9092", &["topic", "list"], "");
    assert_eq!(r.code, 3, "{}", r.err);
    assert!(r.err.contains("cannot resolve broker address"), "{}", r.err);
    // The first bootstrap broker that answers is used.
    let both = format!("{dead},{}", broker.bootstrap());
    let r = cli_at(&both, &["topic", "list"], "");
    assert_eq!(r.code, 0, "{}", r.err);
    // -b overrides SLUICE_BROKERS, after the command group.
    let r = cli_at(&dead, &["topic", "list", "-b", &broker.bootstrap()], "");
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(r.out, "NAME   PARTITIONS  REPLICAS\nsmall  1           1\n");

    // 3 also when the broker goes away mid-command (a following consumer).
    let mut broker = broker;
    if let Target::Sluice(b) = &mut broker {
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["consume", "small", "-o", "end", "-b", &b.bootstrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        b.kill9();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        // Lost mid-fetch, or (on a machine too loaded to get there in time) never connected.
        assert!(
            err.contains("connection to broker") || err.contains("cannot connect to broker"),
            "{err}"
        );
    }
}

#[test]
fn group_describe_of_a_kip848_consumer_group() {
    let broker = Target::start(GROUP_BROKER_ARGS);
    let bs = broker.bootstrap();
    ok(&broker, &["topic", "create", "work", "-p", "2"], "");
    ok(&broker, &["produce", "work", "-q", "-p", "0"], "a\nb\nc\n");
    let mut c = common::client_config(&bs);
    c.set("group.id", "new-protocol")
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = c.create().unwrap();
    consumer.subscribe(&["work"]).unwrap();
    common::wait_for(Duration::from_secs(30), || {
        matches!(consumer.poll(Duration::from_millis(100)), Some(Ok(_))).then_some(())
    })
    .expect("the KIP-848 consumer gets a record");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("work", 0, Offset::Offset(1))
        .unwrap();
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
    let d = &json(
        &broker,
        &["group", "describe", "new-protocol", "--format", "json"],
    )[0];
    assert_eq!(d["state"], "Stable", "{d}");
    assert_eq!(d["protocol_type"], "consumer");
    assert_eq!(d["members"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(
        d["members"][0]["assignment"],
        serde_json::json!({"work": [0, 1]}),
        "{d}"
    );
    assert_eq!(d["partitions"][0]["committed_offset"], 1);
    assert_eq!(d["partitions"][0]["lag"], 2);
    assert_eq!(d["partitions"][1]["lag"], 0);
    let busy = cli(&broker, &["group", "seek", "new-protocol", "--to", "start"]);
    assert_eq!(busy.code, 1, "{}", busy.out);
}

#[test]
fn consume_read_committed_skips_aborted_transactions() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let broker = Target::start(&[]);
    let bs = broker.bootstrap();
    ok(&broker, &["topic", "create", "txns", "-p", "1"], "");
    let mut c = common::client_config(&bs);
    c.set("transactional.id", "cli-test-txn");
    let producer: BaseProducer = c.create().unwrap();
    let t = Duration::from_secs(30);
    producer.init_transactions(t).unwrap();
    for (value, commit) in [
        ("committed-1", true),
        ("aborted-1", false),
        ("committed-2", true),
    ] {
        producer.begin_transaction().unwrap();
        producer
            .send(BaseRecord::<(), _>::to("txns").payload(value))
            .unwrap();
        producer.flush(t).unwrap();
        if commit {
            producer.commit_transaction(t).unwrap();
        } else {
            producer.abort_transaction(t).unwrap();
        }
    }
    ok(&broker, &["produce", "txns", "-q"], "plain\n");
    let f = ["-e", "-f", "%v\\n"];
    let committed = ok(
        &broker,
        &[&["consume", "txns", "--read-committed"][..], &f[..]].concat(),
        "",
    );
    assert_eq!(committed, "committed-1\ncommitted-2\nplain\n");
    let all = ok(&broker, &[&["consume", "txns"][..], &f[..]].concat(), "");
    assert_eq!(
        all, "committed-1\naborted-1\ncommitted-2\nplain\n",
        "read_uncommitted: aborted records too, never the markers"
    );
}
