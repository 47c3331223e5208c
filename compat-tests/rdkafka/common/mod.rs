//! Shared helpers for the integration tests: start the real `sluice` binary on a free loopback
//! port with a temp data dir, build rdkafka clients against it, and frame raw Kafka requests
//! (kafka-protocol's encoders) for the raw-socket tests.
//!
//! Every test binary includes this module with `mod common;` and uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// How long a broker gets to accept TCP connections after spawn.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a broker gets to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Broker process
// ---------------------------------------------------------------------------------------------

/// A running `sluice serve` child process. Killed (SIGKILL) on drop; if the test is panicking,
/// the tail of the broker's log is printed first so failures come with the broker's side.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    extra_args: Vec<String>,
    /// Extra environment variables for the broker process (e.g. AWS_* for an S3 object store).
    env: Vec<(String, String)>,
    /// Owns the temp dir (data dir + log) when the broker created it.
    _tmp: Option<tempfile::TempDir>,
    /// Set by tests that provoke ERROR lines on purpose (see `allow_log_errors`).
    log_errors_allowed: bool,
    /// Byte ranges of the log written by start attempts that lost their port (not checked).
    lost_port_logs: Vec<(u64, u64)>,
}

impl Broker {
    /// Start a broker on a fresh temp data dir with extra CLI args (e.g. `["--set", "a=b"]`).
    pub fn start(extra_args: &[&str]) -> Broker {
        Broker::start_with_env(extra_args, &[])
    }

    /// Like `start`, with extra environment variables for the broker process.
    pub fn start_with_env(extra_args: &[&str], env: &[(String, String)]) -> Broker {
        let tmp = tempfile::Builder::new()
            .prefix("sluice-test-")
            .tempdir()
            .expect("create temp dir");
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let log_path = tmp.path().join("broker.log");
        let mut b = Broker {
            child: None,
            port: 0,
            data_dir,
            log_path,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            env: env.to_vec(),
            _tmp: Some(tmp),
            log_errors_allowed: false,
            lost_port_logs: Vec::new(),
        };
        b.spawn();
        b
    }

    /// Start a broker on an existing data dir (not removed by this Broker).
    pub fn start_in(data_dir: &Path, extra_args: &[&str]) -> Broker {
        std::fs::create_dir_all(data_dir).expect("create data dir");
        let log_path = data_dir
            .parent()
            .unwrap_or(data_dir)
            .join("sluice-broker.log");
        let mut b = Broker {
            child: None,
            port: 0,
            data_dir: data_dir.to_path_buf(),
            log_path,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            _tmp: None,
            log_errors_allowed: false,
            lost_port_logs: Vec::new(),
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        // A port free when picked can be taken before the broker binds it (another test's
        // broker or client socket): then start again on another.
        for attempt in 1.. {
            let from = self.log_len();
            self.spawn_once();
            match self.wait_ready() {
                Ok(()) => return,
                Err(log) if attempt < 5 && log.contains("Address already in use") => {
                    self.child = None;
                    self.lost_port_logs.push((from, self.log_len()));
                }
                Err(log) => panic!("{log}"),
            }
        }
    }

    fn spawn_once(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        self.port = free_port();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open broker log");
        writeln!(
            log,
            "===== test harness: starting sluice on 127.0.0.1:{} (data dir {}) =====",
            self.port,
            self.data_dir.display()
        )
        .ok();
        let listen = format!("127.0.0.1:{}", self.port);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(&listen)
            .arg("--data-dir")
            .arg(&self.data_dir);
        if !self.extra_args.iter().any(|a| a == "--node-id") {
            cmd.arg("--node-id").arg("1");
        }
        cmd.args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if !self.extra_args.iter().any(|a| a == "--log-level") {
            let level = std::env::var("SLUICE_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into());
            cmd.arg("--log-level").arg(level);
        }
        // Many brokers run at once: the admin listener only where a test asks for it.
        if !self.extra_args.iter().any(|a| a == "--admin-listen") {
            cmd.arg("--admin-listen").arg("none");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log fd")))
            .stderr(Stdio::from(log));
        let child = cmd.spawn().expect("spawn sluice binary");
        self.child = Some(child);
    }

    /// Waits until the broker accepts connections; `Err` has what to report.
    fn wait_ready(&mut self) -> Result<(), String> {
        let addr: SocketAddr = self.addr();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().expect("try_wait") {
                return Err(format!(
                    "sluice exited during startup with {status}\n{}",
                    self.log_tail(60)
                ));
            }
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                // Connecting to a free port of the ephemeral range can connect the socket to
                // itself (TCP simultaneous open): that is not the broker.
                if s.local_addr().ok() != s.peer_addr().ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "sluice did not accept connections on {addr} within {READY_TIMEOUT:?}\n{}",
                    self.log_tail(60)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log_path).map_or(0, |m| m.len())
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker not running").id()
    }

    /// Panics (with the log tail) if the broker process has exited.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("broker not running");
        if let Some(status) = child.try_wait().expect("try_wait") {
            self.child = None;
            panic!(
                "sluice exited unexpectedly: {status}\n{}",
                self.log_tail(80)
            );
        }
    }

    /// SIGTERM, then wait for exit (panics after 30 s). Returns the exit status.
    pub fn stop_graceful(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker not running");
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill -TERM");
        assert!(st.success(), "kill -TERM failed: {st}");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "sluice did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (kill -9) and reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker not running");
        child.kill().expect("SIGKILL broker");
        child.wait().expect("reap broker");
        if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log_path) {
            writeln!(f, "===== test harness: sent SIGKILL =====").ok();
        }
    }

    /// Sends `signal` (e.g. libc::SIGSTOP / SIGCONT) to the running broker.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("broker not running");
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", child.id());
        if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log_path) {
            writeln!(f, "===== test harness: sent signal {signal} =====").ok();
        }
    }

    /// Waits until the broker exits on its own (a crash point), then reaps it.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("broker not running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                panic!(
                    "the broker did not exit within {timeout:?}\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Replaces the broker's extra environment for the next (re)start.
    pub fn set_env(&mut self, env: &[(String, String)]) {
        self.env = env.to_vec();
    }

    /// Start again on the same data dir and args, on a new free port. The broker must be stopped.
    pub fn restart(&mut self) {
        self.spawn();
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Last `n` lines of the broker log, framed for printing.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("<cannot read {}: {e}>", self.log_path.display()));
        let text = strip_ansi(&text);
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(n);
        format!(
            "----- last {} lines of {} -----\n{}\n----- end of broker log -----",
            lines.len() - start,
            self.log_path.display(),
            lines[start..].join("\n")
        )
    }
}

impl Broker {
    /// This test provokes ERROR lines on purpose (a failing object store, say): the log check
    /// at drop still fails on a panic, but not on ERROR lines.
    pub fn allow_log_errors(&mut self) {
        self.log_errors_allowed = true;
    }

    /// Panic and ERROR lines in the broker log. A panicking handler only closes its connection
    /// and clients retry over it, so a test can pass over one unless it reads the log.
    pub fn log_problems(&self) -> Vec<String> {
        let mut bytes = std::fs::read(&self.log_path).unwrap_or_default();
        for &(from, to) in self.lost_port_logs.iter().rev() {
            let end = (to as usize).min(bytes.len());
            bytes.drain(from as usize..end.max(from as usize));
        }
        let text = strip_ansi(&String::from_utf8_lossy(&bytes));
        text.lines()
            .filter(|l| {
                // Text lines have ` ERROR `, --log-format json lines `"level":"ERROR"`.
                let error = l.contains(" ERROR ") || l.contains("\"level\":\"ERROR\"");
                l.contains("panicked") || (!self.log_errors_allowed && error)
            })
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let problems = self.log_problems();
            if !problems.is_empty() {
                panic!(
                    "the broker logged {} panic or ERROR line(s):\n{}\n{}",
                    problems.len(),
                    problems.join("\n"),
                    self.log_tail(60)
                );
            }
        }
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(100));
            if std::env::var_os("SLUICE_KEEP_TEST_DIRS").is_some() {
                if let Some(tmp) = self._tmp.take() {
                    eprintln!("keeping test dir {}", tmp.keep().display());
                }
            }
        }
    }
}

/// Remove ANSI colour sequences (ESC [ ... letter) so log tails read cleanly.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A test that cannot run on this machine fails, unless SLUICE_ALLOW_SKIP names it (or is `all`):
/// a skip that prints and passes hides a lost check. Returns true when the skip is allowed.
pub fn skip_allowed(test: &str, why: &str) -> bool {
    let allowed = std::env::var("SLUICE_ALLOW_SKIP").unwrap_or_default();
    if allowed.split(',').any(|t| t == test || t == "all") {
        eprintln!("SKIPPED {test} (SLUICE_ALLOW_SKIP): {why}");
        return true;
    }
    panic!("{test} cannot run here: {why}; set SLUICE_ALLOW_SKIP={test} to skip it");
}

/// A port that was free a moment ago (bind :0, read it, drop the listener).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Poll `f` every 50 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Deterministic xorshift64* PRNG, so payloads can be regenerated for verification.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_u64() as u8;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// rdkafka clients
// ---------------------------------------------------------------------------------------------

pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", "sluice-compat-test")
        .set("socket.timeout.ms", "30000");
    c
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap)
        .create()
        .expect("create AdminClient")
}

pub fn admin_opts() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .operation_timeout(Some(Duration::from_secs(10)))
}

/// Create a topic and assert it succeeded.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res = admin
        .create_topics(&[t], &admin_opts())
        .await
        .expect("CreateTopics request failed");
    assert_eq!(res.len(), 1, "one result per topic");
    match &res[0] {
        Ok(n) => assert_eq!(n, name),
        Err((n, code)) => panic!("creating topic {n} failed: {code:?}"),
    }
}

/// Like `create_topic` but tolerates TOPIC_ALREADY_EXISTS.
pub async fn ensure_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin = admin(bootstrap);
    let t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = admin
        .create_topics(&[t], &admin_opts())
        .await
        .expect("CreateTopics request failed");
    match &res[0] {
        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
        Err((n, code)) => panic!("creating topic {n} failed: {code:?}"),
    }
}

/// Idempotent, acks=all producer. `extra` overrides/adds settings.
pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = client_config(bootstrap);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create FutureProducer")
}

/// A consumer for `assign()` use only (the broker has no consumer groups yet): group.id is set
/// because librdkafka wants one, but nothing is ever committed.
pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = client_config(bootstrap);
    c.set("group.id", "sluice-compat-test-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "200");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create BaseConsumer")
}

/// (low, high) watermarks of one partition.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    consumer(bootstrap, &[])
        .fetch_watermarks(topic, partition, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("fetch_watermarks({topic}/{partition}) failed: {e}"))
}

/// Read every partition in `ranges` (partition -> (start offset, end offset exclusive)) with an
/// assigned consumer and return the messages with offset < end, in the order received.
/// Panics with a progress summary if not everything arrives within `timeout`.
pub fn consume(
    bootstrap: &str,
    topic: &str,
    ranges: &BTreeMap<i32, (Offset, i64)>,
    timeout: Duration,
) -> BTreeMap<i32, Vec<OwnedMessage>> {
    let c = consumer(bootstrap, &[]);
    let mut tpl = TopicPartitionList::new();
    let mut out: BTreeMap<i32, Vec<OwnedMessage>> = BTreeMap::new();
    let mut remaining = 0usize;
    for (&p, &(start, end)) in ranges {
        out.insert(p, Vec::new());
        if let Offset::Offset(s) = start {
            if s >= end {
                continue;
            }
        }
        if end <= 0 {
            continue;
        }
        tpl.add_partition_offset(topic, p, start)
            .expect("add partition");
        remaining += 1;
    }
    if remaining == 0 {
        return out;
    }
    c.assign(&tpl).expect("assign");
    let mut done: BTreeMap<i32, bool> = BTreeMap::new();
    let deadline = Instant::now() + timeout;
    while remaining > 0 {
        if Instant::now() > deadline {
            let progress: Vec<String> = ranges
                .iter()
                .map(|(p, (_, end))| {
                    let v = &out[p];
                    format!(
                        "partition {p}: got {} records, last offset {:?}, want up to {}",
                        v.len(),
                        v.last().map(|m| m.offset()),
                        end - 1
                    )
                })
                .collect();
            panic!(
                "consuming {topic} timed out after {timeout:?}: {}",
                progress.join("; ")
            );
        }
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => panic!("consumer error on {topic}: {e}"),
            Some(Ok(m)) => {
                let p = m.partition();
                let Some(&(_, end)) = ranges.get(&p) else {
                    panic!("message from unassigned partition {p}");
                };
                if m.offset() < end {
                    out.get_mut(&p).unwrap().push(m.detach());
                }
                if m.offset() >= end - 1 && !done.contains_key(&p) {
                    done.insert(p, true);
                    remaining -= 1;
                }
            }
        }
    }
    out
}

/// Read a whole topic from Beginning up to its current high watermarks.
pub fn consume_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> BTreeMap<i32, Vec<OwnedMessage>> {
    let ranges = (0..partitions)
        .map(|p| (p, (Offset::Beginning, watermarks(bootstrap, topic, p).1)))
        .collect();
    consume(bootstrap, topic, &ranges, timeout)
}

/// Headers as comparable owned data.
pub type HeaderList = Vec<(String, Option<Vec<u8>>)>;

pub fn header_list<M: Message>(m: &M) -> HeaderList {
    match m.headers() {
        None => Vec::new(),
        Some(h) => h
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec())))
            .collect(),
    }
}

/// Topic names present in a full Metadata response.
pub fn topic_names(bootstrap: &str) -> Vec<String> {
    let md = consumer(bootstrap, &[])
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("fetch_metadata");
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// Assert that the broker process is alive and a normal rdkafka client can fetch metadata,
/// produce (acks=all) and consume back what it produced.
pub async fn assert_broker_serves_clients(broker: &mut Broker) {
    broker.assert_alive();
    let bs = broker.bootstrap();
    let md = consumer(&bs, &[])
        .fetch_metadata(None, Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("metadata after bad input failed: {e}"));
    assert!(
        md.brokers().iter().any(|b| b.id() == 1),
        "metadata lists broker 1"
    );
    ensure_topic(&bs, "health-check", 1).await;
    let payload = format!("health-{}", now_ms());
    let p = producer(&bs, &[]);
    let d = p
        .send(
            rdkafka::producer::FutureRecord::<(), _>::to("health-check")
                .payload(payload.as_bytes()),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce after bad input failed: {e}"));
    let ranges = BTreeMap::from([(d.partition, (Offset::Offset(d.offset), d.offset + 1))]);
    let got = consume(&bs, "health-check", &ranges, Duration::from_secs(30));
    let msgs = &got[&d.partition];
    assert_eq!(msgs.len(), 1, "consumed the health record back");
    assert_eq!(msgs[0].payload(), Some(payload.as_bytes()));
    broker.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Raw wire protocol (kafka-protocol's client encoders and decoders on a plain socket)
// ---------------------------------------------------------------------------------------------

pub mod etcd;
pub mod groups;
pub mod objstore;
pub mod pki;

/// The kcat binary (Debian's package), if installed.
pub fn kcat_path() -> Option<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg("command -v kcat")
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!p.is_empty()).then_some(p)
}

/// Runs kcat with the connection args `conn` (-b, -X ...) and `args`, feeding `input`; asserts
/// success and returns its stdout.
pub fn kcat_run(kcat: &str, conn: &[String], args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new(kcat)
        .args(conn)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// One IncrementalAlterConfigs v1 request for one resource: (error code, message).
pub fn incremental_alter(
    addr: std::net::SocketAddr,
    ty: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    let request = kafka_protocol::messages::IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(ty)
            .with_resource_name(kafka_protocol::protocol::StrBytes::from_string(name.into()))
            .with_configs(
                ops.iter()
                    .map(|(n, op, v)| {
                        kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(kafka_protocol::protocol::StrBytes::from_string(n.to_string()))
                            .with_config_operation(*op)
                            .with_value(v.map(|v| kafka_protocol::protocol::StrBytes::from_string(v.into())))
                    })
                    .collect(),
            )]);
    let mut s = wire::connect(addr, Duration::from_secs(15));
    std::io::Write::write_all(&mut s, &wire::request(1, 7, &request)).unwrap();
    let (_, response) = wire::response::<kafka_protocol::messages::IncrementalAlterConfigsRequest>(
        1,
        wire::read_frame(&mut s).expect("IncrementalAlterConfigs response"),
    );
    assert_eq!(response.responses.len(), 1);
    let r = &response.responses[0];
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or_default().to_string(),
    )
}

pub mod wire {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
    };

    /// The client id of every raw request.
    pub const CLIENT_ID: &str = "sluice-raw-test";

    /// The one request framer: 4-byte size + request header + `body`. `header_version` is 1
    /// (api key, version, correlation id, client id) or 2 (adds tagged fields). The body is
    /// raw bytes so that tests can also frame what the crate refuses to encode (unknown api
    /// keys, unsupported versions, random or truncated bodies); well-formed requests go
    /// through `request`.
    pub fn frame(
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
        header_version: i16,
        body: &[u8],
    ) -> Vec<u8> {
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(api_version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut f = vec![0u8; 4];
        header
            .encode(&mut f, header_version)
            .expect("encode request header");
        f.extend_from_slice(body);
        let size = (f.len() - 4) as i32;
        f[..4].copy_from_slice(&size.to_be_bytes());
        f
    }

    /// `request` encoded at `version` by kafka-protocol (panics if the crate refuses it).
    pub fn body<R: Encodable>(version: i16, request: &R) -> Vec<u8> {
        let mut b = Vec::new();
        request
            .encode(&mut b, version)
            .unwrap_or_else(|e| panic!("encode {} v{version}: {e}", std::any::type_name::<R>()));
        b
    }

    /// A well-formed request frame: kafka-protocol's encoding of `request` at `version`.
    pub fn request<R: Request>(version: i16, correlation_id: i32, request: &R) -> Vec<u8> {
        frame(
            R::KEY,
            version,
            correlation_id,
            R::header_version(version),
            &body(version, request),
        )
    }

    /// Decode a response frame (as `read_frame` returns it) to a request of type `R` answered
    /// at `version`: (correlation id, response). Panics unless the frame is consumed exactly.
    pub fn response<R: Request>(version: i16, frame: Vec<u8>) -> (i32, R::Response) {
        let mut buf = Bytes::from(frame);
        let header = ResponseHeader::decode(&mut buf, R::Response::header_version(version))
            .expect("decodable response header");
        let response = R::Response::decode(&mut buf, version).expect("decodable response");
        assert!(
            buf.is_empty(),
            "response fully consumed ({} bytes left)",
            buf.len()
        );
        (header.correlation_id, response)
    }

    /// Connect with read/write timeouts so a hang fails the test instead of hanging it.
    pub fn connect(addr: SocketAddr, read_timeout: Duration) -> TcpStream {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(read_timeout)).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Read one response frame (without the 4-byte size).
    pub fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let n = i32::from_be_bytes(len);
        assert!(
            (0..=256 << 20).contains(&n),
            "implausible response size {n}"
        );
        let mut buf = vec![0u8; n as usize];
        s.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// What the broker did with a connection after bad input.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Closed {
        /// Clean EOF after `n` response bytes.
        Eof(usize),
        /// Connection reset after `n` response bytes.
        Reset(usize),
    }

    /// Read until the broker closes the connection. Panics if it stays open (read timeout).
    pub fn expect_closed(s: &mut TcpStream, what: &str) -> Closed {
        let mut total = 0usize;
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Closed::Eof(total),
                Ok(n) => total += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                    ) =>
                {
                    return Closed::Reset(total)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("{what}: broker kept the connection open (read timed out after {total} response bytes); it must close it")
                }
                Err(e) => panic!("{what}: unexpected read error {e:?}"),
            }
        }
    }

    /// Write, tolerating the broker closing early (it may reset before we finish writing).
    pub fn write_lenient(s: &mut TcpStream, data: &[u8]) {
        match s.write_all(data) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => panic!("write failed: {e:?}"),
        }
    }

    /// One record for `record_batch`: only what the tests vary.
    pub struct RawRecord<'a> {
        pub key: Option<&'a [u8]>,
        pub value: Option<&'a [u8]>,
        pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    }

    /// One uncompressed magic-2 RecordBatch (kafka-protocol's encoder, so a correct CRC32C):
    /// base offset 0, every record at `timestamp`, no producer id, leader epoch -1.
    pub fn record_batch(timestamp: i64, records: &[RawRecord]) -> Vec<u8> {
        assert!(!records.is_empty());
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch when offset - sequence changes and writes the
                // first record's sequence as the base sequence: NO_SEQUENCE, then counting up
                // (as its decoder numbers them), keeps one batch with "no sequence".
                sequence: NO_SEQUENCE + i as i32,
                timestamp,
                key: r.key.map(Bytes::copy_from_slice),
                value: r.value.map(Bytes::copy_from_slice),
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            StrBytes::from_string(k.to_string()),
                            v.map(Bytes::copy_from_slice),
                        )
                    })
                    .collect(),
            })
            .collect();
        let mut b = Vec::new();
        RecordBatchEncoder::encode(
            &mut b,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode record batch");
        b
    }

    /// Offset of the CRC-covered area inside a batch (first byte of `attributes`), for tests
    /// that corrupt a batch on purpose.
    pub const BATCH_CRC_START: usize = 8 + 4 + 4 + 1 + 4;

    /// The records of fetched magic-2 batches (the crate checks each batch's CRC32C). A partial
    /// trailing batch, which a fetch response may end with, is skipped.
    pub fn decode_batches(mut data: Bytes) -> Vec<Record> {
        let mut out = Vec::new();
        while data.len() >= 12 {
            let len = i32::from_be_bytes(data[8..12].try_into().unwrap());
            if len < 0 || data.len() < 12 + len as usize {
                break;
            }
            let set = RecordBatchDecoder::decode(&mut data).expect("fetched record batch");
            out.extend(set.records);
        }
        out
    }
}
