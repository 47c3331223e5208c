//! Object stores for the tiered-storage tests: a moto S3 server (installed on first use into a
//! cached Python venv), a tiny S3 HTTP client for looking into its bucket, and a TCP proxy that
//! can take the store "down" (connection refused) and bring it back on the same port while moto
//! keeps its state.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::free_port;

/// The moto release the tests run against (pinned: its S3 emulation is what we test against).
pub const MOTO_VERSION: &str = "5.2.5";

/// `$SLUICE_TEST_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/sluice-test`.
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("SLUICE_TEST_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
        });
    base.join("sluice-test")
}

/// Exclusive advisory lock on a file, released when dropped (the fd closes).
struct FileLock(File);

impl FileLock {
    fn acquire(path: &Path) -> FileLock {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open lock file {}: {e}", path.display()));
        // SAFETY: flock on a file descriptor we own.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "flock {}: {}",
            path.display(),
            io::Error::last_os_error()
        );
        FileLock(f)
    }
}

fn run_logged(cmd: &mut Command, log: &Path, what: &str) {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open install log");
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .status()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{what} failed ({status}); last lines of {}:\n{}",
            log.display(),
            tail.join("\n")
        );
    }
}

/// The venv's python with `moto[server]==MOTO_VERSION`, installing it on first use.
///
/// The venv lives at CACHE/moto-venv-VERSION and counts as installed once its `.done` marker
/// exists. Installs are serialized by flock on CACHE/moto-venv-VERSION.lock, so concurrent test
/// binaries (or test threads) wait for one install instead of racing; a half-finished venv
/// (no marker, e.g. after a killed run) is removed and rebuilt.
pub fn moto_python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let root = cache_root();
        let venv = root.join(format!("moto-venv-{MOTO_VERSION}"));
        let py = venv.join("bin").join("python");
        let done = venv.join(".done");
        if done.exists() {
            return py;
        }
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
        let _lock = FileLock::acquire(&root.join(format!("moto-venv-{MOTO_VERSION}.lock")));
        if done.exists() {
            return py; // another process installed it while we waited
        }
        eprintln!(
            "objstore: installing moto[server]=={MOTO_VERSION} into {} (once)",
            venv.display()
        );
        let _ = std::fs::remove_dir_all(&venv);
        let log = root.join(format!("moto-venv-{MOTO_VERSION}.install.log"));
        let _ = std::fs::remove_file(&log);
        let python = std::env::var("SLUICE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        run_logged(
            Command::new(&python).arg("-m").arg("venv").arg(&venv),
            &log,
            "creating the moto venv",
        );
        run_logged(
            Command::new(&py).args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--timeout",
                "60",
                "--retries",
                "5",
                &format!("moto[server]=={MOTO_VERSION}"),
            ]),
            &log,
            "pip install moto[server]",
        );
        run_logged(
            Command::new(&py).args(["-c", "import moto.server, boto3"]),
            &log,
            "importing moto",
        );
        std::fs::write(&done, MOTO_VERSION).expect("write .done marker");
        py
    })
    .clone()
}

// ---------------------------------------------------------------------------------------------
// moto server
// ---------------------------------------------------------------------------------------------

/// A moto S3 server on a free loopback port, in memory. Killed on drop.
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    pub log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let py = moto_python();
        let dir = tempfile::Builder::new()
            .prefix("sluice-moto-")
            .tempdir()
            .expect("temp dir");
        let log_path = dir.path().join("moto.log");
        for attempt in 0..5 {
            let port = free_port();
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("moto log");
            let mut child = Command::new(&py)
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .expect("spawn moto");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(st) = child.try_wait().unwrap() {
                    eprintln!("objstore: moto exited at start ({st}), attempt {attempt}");
                    break;
                }
                if let Ok((status, _)) = http_once(port, "GET", "/", b"") {
                    if status < 500 {
                        return Moto {
                            child: Some(child),
                            port,
                            log_path,
                            _dir: dir,
                        };
                    }
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "moto did not answer on port {port} within 60 s; log:\n{}",
                        std::fs::read_to_string(&log_path).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!(
            "moto did not start; log:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) =
            http(self.port, "PUT", &format!("/{bucket}"), b"").expect("PUT bucket");
        assert!(
            status == 200,
            "creating bucket {bucket}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGSTOP / SIGCONT the server (a hung store: connections are accepted, never answered).
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling our own child.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({sig}) moto: {}", io::Error::last_os_error());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 + S3 client
// ---------------------------------------------------------------------------------------------

/// One HTTP/1.1 request to 127.0.0.1:port with `Connection: close`; (status, body).
/// Transport errors are retried a few times: moto (one Python process) can be slow to accept
/// while the broker keeps it busy, and every request the tests send is idempotent.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let mut attempt = 0;
    loop {
        match http_once(port, method, path, body) {
            Err(e) if attempt < 3 => {
                attempt += 1;
                eprintln!("[objstore] {method} {path}: {e}; retrying ({attempt})");
                std::thread::sleep(Duration::from_millis(500 * attempt));
            }
            other => return other,
        }
    }
}

fn http_once(port: u16, method: &str, path: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    // moto does not check signatures, but treats requests without credentials as anonymous
    // (403 on private objects): a well-formed but unsigned Authorization header will do.
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=sluice-test/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of HTTP headers"))?;
    let headers = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line: {headers}")))?;
    let mut payload = resp[split + 4..].to_vec();
    let chunked = headers.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &payload[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| io::Error::other("bad chunk"))?;
            let size_str = String::from_utf8_lossy(&rest[..nl]).to_string();
            let n = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16)
                .map_err(|e| io::Error::other(format!("bad chunk size {size_str:?}: {e}")))?;
            rest = &rest[nl + 2..];
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n + 2..];
        }
        payload = out;
    }
    Ok((status, payload))
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Text of every `<tag>...</tag>` in `xml`, in order.
fn xml_all<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// Every (key, size) in `bucket` under `prefix` (ListObjectsV2, following continuation tokens).
pub fn s3_list(port: u16, bucket: &str, prefix: &str) -> io::Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/{bucket}?list-type=2&prefix={}", url_encode(prefix));
        if let Some(t) = &token {
            path.push_str(&format!("&continuation-token={}", url_encode(t)));
        }
        let (status, body) = http(port, "GET", &path, b"")?;
        let xml = String::from_utf8_lossy(&body).to_string();
        if status != 200 {
            return Err(io::Error::other(format!(
                "list {bucket}/{prefix}: HTTP {status}: {xml}"
            )));
        }
        for c in xml_all(&xml, "Contents") {
            let key = xml_all(c, "Key").first().map(|k| xml_unescape(k));
            let size = xml_all(c, "Size").first().and_then(|s| s.parse().ok());
            if let (Some(k), Some(sz)) = (key, size) {
                out.push((k, sz));
            }
        }
        let truncated = xml_all(&xml, "IsTruncated").first() == Some(&"true");
        token = xml_all(&xml, "NextContinuationToken")
            .first()
            .map(|t| xml_unescape(t));
        if !truncated || token.is_none() {
            return Ok(out);
        }
    }
}

/// One object's bytes; None if it does not exist.
pub fn s3_get(port: u16, bucket: &str, key: &str) -> io::Result<Option<Vec<u8>>> {
    let path = format!(
        "/{bucket}/{}",
        key.split('/').map(url_encode).collect::<Vec<_>>().join("/")
    );
    let (status, body) = http(port, "GET", &path, b"")?;
    match status {
        200 => Ok(Some(body)),
        404 => Ok(None),
        other => Err(io::Error::other(format!(
            "GET {path}: HTTP {other}: {}",
            String::from_utf8_lossy(&body)
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// A switchable TCP proxy
// ---------------------------------------------------------------------------------------------

struct ProxyShared {
    upstream: SocketAddr,
    port: u16,
    /// Wanted state.
    up: AtomicBool,
    /// Actual state of the listening socket.
    listening: AtomicBool,
    stop: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

/// Forwards 127.0.0.1:port to `upstream`. `set_up(false)` closes the listening socket (new
/// connections are refused) and resets every open connection, like a server going away;
/// `set_up(true)` listens on the same port again.
pub struct Proxy {
    shared: Arc<ProxyShared>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let shared = Arc::new(ProxyShared {
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            port,
            up: AtomicBool::new(true),
            listening: AtomicBool::new(true),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let sh = shared.clone();
        let thread = std::thread::spawn(move || accept_loop(sh, listener));
        Proxy {
            shared,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    pub fn set_up(&self, up: bool) {
        self.shared.up.store(up, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.shared.listening.load(Ordering::SeqCst) != up {
            assert!(
                Instant::now() < deadline,
                "proxy did not switch to up={up} (port {} busy?)",
                self.shared.port
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        if !up {
            for c in self.shared.conns.lock().unwrap().drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(sh: Arc<ProxyShared>, first: TcpListener) {
    let mut listener = Some(first);
    while !sh.stop.load(Ordering::SeqCst) {
        if !sh.up.load(Ordering::SeqCst) {
            listener = None;
            sh.listening.store(false, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        if listener.is_none() {
            // std sets SO_REUSEADDR, so the port can be taken again despite TIME_WAIT.
            match TcpListener::bind(("127.0.0.1", sh.port)) {
                Ok(l) => {
                    l.set_nonblocking(true).unwrap();
                    listener = Some(l);
                    sh.listening.store(true, Ordering::SeqCst);
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        match listener.as_ref().unwrap().accept() {
            Ok((client, _)) => {
                client.set_nonblocking(false).ok();
                let Ok(server) = TcpStream::connect_timeout(&sh.upstream, Duration::from_secs(5))
                else {
                    continue; // upstream gone: the client sees its connection close
                };
                client.set_nodelay(true).ok();
                server.set_nodelay(true).ok();
                {
                    let mut conns = sh.conns.lock().unwrap();
                    conns.retain(|c| c.peer_addr().is_ok());
                    conns.push(client.try_clone().unwrap());
                    conns.push(server.try_clone().unwrap());
                }
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
        let _ = from.shutdown(Shutdown::Read);
    });
}
