//! kcat (Debian's build, librdkafka 2.0.2) against the broker: metadata listing, producing
//! lines from stdin and consuming them back, with and without keys and compression.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;

const KCAT_TIMEOUT: Duration = Duration::from_secs(60);

fn kcat_path() -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg("command -v kcat")
        .output()
        .expect("run sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if path.is_empty() {
        panic!(
            "kcat is not installed: run scripts/test (it installs it) or \
             `apt-get install kcat`"
        );
    }
    path
}

/// Run kcat with `args`, feeding `stdin`, killing it after KCAT_TIMEOUT. Returns stdout;
/// panics with stderr if it fails or times out.
fn kcat(args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new(kcat_path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kcat");
    let mut sin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&input);
        // Dropping closes stdin: EOF ends kcat -P.
    });
    let mut sout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = sout.read_to_end(&mut v);
        v
    });
    let mut serr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = serr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + KCAT_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait kcat") {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    writer.join().ok();
    let out = reader.join().unwrap();
    let err = err_reader.join().unwrap();
    let err = String::from_utf8_lossy(&err);
    match status {
        None => panic!("kcat {args:?} ran over {KCAT_TIMEOUT:?} and was killed; stderr:\n{err}"),
        Some(st) if !st.success() => panic!("kcat {args:?} failed ({st}); stderr:\n{err}"),
        Some(_) => String::from_utf8(out).expect("kcat output is UTF-8"),
    }
}

#[test]
fn kcat_lists_metadata() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    // Create a topic through kcat itself (auto-create on produce).
    kcat(&["-P", "-b", &bs, "-t", "listed"], b"one\n");

    let out = kcat(&["-L", "-b", &bs, "-J"], b"");
    let md: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("kcat -L -J output is not JSON ({e}):\n{out}"));
    let brokers = md["brokers"].as_array().expect("brokers array");
    assert_eq!(brokers.len(), 1, "{out}");
    assert_eq!(brokers[0]["id"], 1, "{out}");
    assert_eq!(brokers[0]["name"], bs.as_str(), "{out}");
    let topics = md["topics"].as_array().expect("topics array");
    let listed = topics
        .iter()
        .find(|t| t["topic"] == "listed")
        .unwrap_or_else(|| panic!("topic 'listed' in kcat -L output:\n{out}"));
    let parts = listed["partitions"].as_array().expect("partitions");
    assert_eq!(parts.len(), 1, "{out}");
    assert_eq!(parts[0]["leader"], 1, "{out}");

    // The plain-text listing names the broker too.
    let text = kcat(&["-L", "-b", &bs], b"");
    assert!(
        text.contains(&format!("broker 1 at {bs}")),
        "kcat -L output:\n{text}"
    );
}

#[test]
fn kcat_produce_and_consume_10k_lines() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let lines: Vec<String> = (0..10_000)
        .map(|i| format!("line {i:05} {}", "k".repeat(i % 97)))
        .collect();
    let input = lines.join("\n") + "\n";
    kcat(&["-P", "-b", &bs, "-t", "lines"], input.as_bytes());

    let out = kcat(
        &[
            "-C",
            "-b",
            &bs,
            "-t",
            "lines",
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        b"",
    );
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), lines.len(), "line count");
    for (i, (g, w)) in got.iter().zip(&lines).enumerate() {
        assert_eq!(g, w, "line {i}");
    }
    assert_eq!(common::watermarks(&bs, "lines", 0), (0, 10_000));
}

#[test]
fn kcat_keys_compression_and_offsets() {
    let broker = Broker::start(&["--set", "num.partitions=3"]);
    let bs = broker.bootstrap();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("keyed-{codec}");
        let input: String = (0..2000)
            .map(|i| format!("key{}:{codec}-value-{i}\n", i % 13))
            .collect();
        kcat(
            &["-P", "-b", &bs, "-t", &topic, "-K", ":", "-z", codec],
            input.as_bytes(),
        );
        let out = kcat(
            &[
                "-C",
                "-b",
                &bs,
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%p %o %k %s\n",
            ],
            b"",
        );
        // Per partition: offsets contiguous from 0, values in produce order, and each key
        // always in the same partition.
        let mut per_part: std::collections::BTreeMap<i32, Vec<(i64, String, String)>> =
            Default::default();
        for line in out.lines() {
            let mut it = line.splitn(4, ' ');
            let p: i32 = it.next().unwrap().parse().unwrap();
            let o: i64 = it.next().unwrap().parse().unwrap();
            let k = it.next().unwrap().to_string();
            let v = it.next().unwrap_or("").to_string();
            per_part.entry(p).or_default().push((o, k, v));
        }
        let total: usize = per_part.values().map(|v| v.len()).sum();
        assert_eq!(total, 2000, "{codec}: records consumed");
        let mut key_part = std::collections::HashMap::new();
        for (p, recs) in &per_part {
            let mut last_i = -1i64;
            for (n, (o, k, v)) in recs.iter().enumerate() {
                assert_eq!(*o, n as i64, "{codec}: partition {p} offsets contiguous");
                let i: i64 = v
                    .strip_prefix(&format!("{codec}-value-"))
                    .unwrap_or_else(|| panic!("{codec}: bad value {v:?}"))
                    .parse()
                    .unwrap();
                assert_eq!(k, &format!("key{}", i % 13), "{codec}: key of value {i}");
                assert!(i > last_i, "{codec}: partition {p} keeps produce order");
                last_i = i;
                if let Some(prev) = key_part.insert(k.clone(), *p) {
                    assert_eq!(prev, *p, "{codec}: key {k} in two partitions");
                }
            }
        }
    }
}
