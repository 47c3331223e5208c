//! A real etcd server for the cluster tests: Debian's etcd-server (scripts/test installs it),
//! one member on loopback with a temp data dir, killed on drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct Etcd {
    child: Child,
    pub client_port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

/// The etcd binary, if installed.
pub fn etcd_path() -> Option<PathBuf> {
    std::env::var_os("SLUICE_TEST_ETCD")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/bin/etcd", "/usr/local/bin/etcd"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
}

impl Etcd {
    pub fn start() -> Etcd {
        let bin = etcd_path().expect("etcd is not installed (scripts/test installs etcd-server)");
        let dir = tempfile::Builder::new()
            .prefix("sluice-etcd-")
            .tempdir()
            .unwrap();
        let client_port = free_port();
        let peer_port = free_port();
        let log = dir.path().join("etcd.log");
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(bin)
            .arg("--name")
            .arg("test")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("test={peer}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("spawn etcd");
        let etcd = Etcd {
            child,
            client_port,
            _dir: dir,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", client_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd did not start: {}",
                std::fs::read_to_string(&etcd.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        etcd
    }

    /// `--cluster` for brokers of a cluster under `prefix`.
    pub fn cluster_url(&self, prefix: &str) -> String {
        format!("etcd://127.0.0.1:{}/{prefix}", self.client_port)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
