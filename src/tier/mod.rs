//! Tiered storage: sealed segments are copied to an object store (S3 or a local directory)
//! and read back from it when a fetch or offset lookup goes below the local log start.
//!
//! Order of operations (so a segment is never in neither place): upload the segment, its
//! index and its aborted-transaction index (if it has one), then write the partition's
//! manifest naming it, then tell the partition, which only then lets local retention delete
//! its copy. Remote retention removes segments from the manifest first and deletes their
//! objects after.

pub mod cache;
pub mod manifest;
mod reader;
pub use reader::REMOTE_READ_SECONDS;
mod uploader;

use crate::config::TierConfig;
use crate::log::segment::IndexEntry;
use crate::log::txn_index::AbortedTxn;
use crate::log::Partition;
use crate::topic::Topic;
use anyhow::{bail, Context};
use cache::ChunkCache;
use dashmap::DashMap;
use futures::StreamExt;
use manifest::Manifest;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Remote reads go through the cache in chunks of this size.
const CHUNK: u64 = 1 << 20;
/// Segments larger than this are uploaded in parts.
const MULTIPART_ABOVE: u64 = 16 << 20;
const PART_SIZE: usize = 8 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

type PartitionKey = (Uuid, i32);
/// A partition's manifest; None until it has been read from the store.
type ManifestCell = Arc<tokio::sync::Mutex<Option<Manifest>>>;

/// Failure classes, each logged with its own message.
#[derive(Debug)]
enum TierError {
    ManifestRead(String),
    ManifestWrite(String),
    Upload(String),
    Purge(String),
    LocalRead(String),
}

impl std::fmt::Display for TierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TierError::ManifestRead(e) => write!(f, "reading the manifest failed: {e}"),
            TierError::ManifestWrite(e) => write!(f, "writing the manifest failed: {e}"),
            TierError::Upload(e) => write!(f, "uploading a segment failed: {e}"),
            TierError::Purge(e) => write!(f, "deleting remote data failed: {e}"),
            TierError::LocalRead(e) => write!(f, "reading the local segment failed: {e}"),
        }
    }
}

#[derive(Default)]
pub struct TierStats {
    pub bytes_uploaded: AtomicU64,
    pub segments_uploaded: AtomicU64,
    pub upload_failures: AtomicU64,
    pub segments_deleted: AtomicU64,
    pub remote_reads: AtomicU64,
    pub remote_read_bytes: AtomicU64,
    pub remote_read_micros: AtomicU64,
}

pub struct Tier {
    store: Arc<dyn ObjectStore>,
    /// For file stores: the directory, so written objects can be fsynced (object_store's
    /// LocalFileSystem renames into place but does not fsync).
    local_root: Option<std::path::PathBuf>,
    prefix: String,
    /// Where the objects go, for logs.
    pub location: String,
    cfg: TierConfig,
    manifests: DashMap<PartitionKey, ManifestCell>,
    indexes: DashMap<String, Arc<Vec<IndexEntry>>>,
    /// Aborted-transaction indexes of remote segments, by object name.
    txn_indexes: DashMap<String, Arc<Vec<AbortedTxn>>>,
    cache: ChunkCache,
    /// Topics deleted while this broker runs: their uploads stop short of the manifest.
    deleted_topics: DashMap<Uuid, ()>,
    /// Failing partitions: (consecutive failures, next attempt).
    backoff: DashMap<PartitionKey, (u32, Instant)>,
    copy_pacer: CopyPacer,
    pub stats: TierStats,
}

/// remote.log.manager.copy.max.bytes.per.second: copies of all partitions together are paced
/// to this rate, so a burst of sealed segments does not take the disk (or the uplink) from
/// producers and consumers.
struct CopyPacer {
    bytes_per_second: u64,
    /// When the bytes admitted so far will have had their time.
    next_free: std::sync::Mutex<Instant>,
}

impl CopyPacer {
    fn new(bytes_per_second: u64) -> CopyPacer {
        CopyPacer {
            bytes_per_second,
            next_free: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits until `bytes` more may be copied.
    async fn admit(&self, bytes: u64) {
        if self.bytes_per_second >= i64::MAX as u64 {
            return;
        }
        let start = {
            let mut next_free = self.next_free.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*next_free).max(Instant::now());
            *next_free =
                start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl Tier {
    /// Opens the object store named by `--object-store` (default: DATA_DIR/tier).
    pub fn open(cfg: &TierConfig, data_dir: &Path) -> anyhow::Result<Tier> {
        let mut local_root = None;
        let (store, prefix, location): (Arc<dyn ObjectStore>, String, String) =
            match cfg.object_store.as_deref() {
                None => {
                    let dir = data_dir.join("tier");
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)?;
                    local_root = Some(dir.clone());
                    (
                        Arc::new(store),
                        String::new(),
                        format!("file://{}", dir.display()),
                    )
                }
                Some(url) if url.starts_with("file://") => {
                    let dir = Path::new(&url["file://".len()..]);
                    if !dir.is_absolute() {
                        bail!(
                        "--object-store {url}: a file:// URL needs an absolute path (file:///PATH)"
                    );
                    }
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
                    local_root = Some(dir.to_path_buf());
                    (Arc::new(store), String::new(), url.to_string())
                }
                Some(url) if url.starts_with("s3://") => {
                    let rest = &url["s3://".len()..];
                    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                    if bucket.is_empty() {
                        bail!("--object-store {url}: no bucket");
                    }
                    use object_store::aws::AmazonS3ConfigKey;
                    use object_store::ClientConfigKey;
                    // Bounded waits, so a hung store surfaces as an error (and a WARN) within
                    // about a minute instead of object_store's default of minutes.
                    let retry = object_store::RetryConfig {
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(30),
                        ..Default::default()
                    };
                    let store = object_store::aws::AmazonS3Builder::from_env()
                        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "30s")
                        .with_config(
                            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                            "5s",
                        )
                        .with_retry(retry)
                        .with_bucket_name(bucket)
                        .build()
                        .with_context(|| format!("--object-store {url}"))?;
                    (
                        Arc::new(store),
                        prefix.trim_matches('/').to_string(),
                        url.to_string(),
                    )
                }
                Some(other) => {
                    bail!("--object-store {other}: expected s3://BUCKET/PREFIX or file:///PATH")
                }
            };
        let cache = ChunkCache::open(data_dir.join("tier-cache"), cfg.cache_bytes)
            .context("creating the tier read cache")?;
        Ok(Tier {
            store,
            local_root,
            prefix,
            location,
            cfg: cfg.clone(),
            manifests: DashMap::new(),
            indexes: DashMap::new(),
            txn_indexes: DashMap::new(),
            cache,
            deleted_topics: DashMap::new(),
            backoff: DashMap::new(),
            copy_pacer: CopyPacer::new(cfg.copy_max_bytes_per_second),
            stats: TierStats::default(),
        })
    }

    fn object(&self, rel: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// On a file store, makes a written object durable (file and directory) before anything
    /// relies on it; object stores proper are durable once the PUT returns.
    async fn make_durable(&self, object: &ObjectPath) -> io::Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let path = root.join(object.as_ref());
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(&path)?.sync_all()?;
            match path.parent() {
                Some(dir) => std::fs::File::open(dir)?.sync_all(),
                None => Ok(()),
            }
        })
        .await
        .map_err(io_err)?
    }

    fn topic_dir(topic: &str, id: &Uuid) -> String {
        format!("{topic}-{}", id.simple())
    }

    fn segment_object(&self, t: &Topic, partition: i32, stem: &str, ext: &str) -> ObjectPath {
        self.object(&format!(
            "{}/{partition}/{stem}.{ext}",
            Self::topic_dir(&t.name, &t.id)
        ))
    }

    fn manifest_object(&self, t: &Topic, partition: i32) -> ObjectPath {
        self.object(&format!(
            "{}/{partition}/manifest.json",
            Self::topic_dir(&t.name, &t.id)
        ))
    }

    fn cell(&self, key: PartitionKey) -> ManifestCell {
        self.manifests
            .entry(key)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(None)))
            .clone()
    }

    /// Bytes of a partition's remote segments as its loaded manifest lists them; None while
    /// the manifest is not loaded or is being changed (the console shows it as unknown).
    /// (hits, misses) of the chunk cache since start.
    pub fn cache_counts(&self) -> (u64, u64) {
        (
            self.cache.hits.load(Ordering::Relaxed),
            self.cache.misses.load(Ordering::Relaxed),
        )
    }

    pub fn remote_bytes(&self, t: &Topic, partition: i32) -> Option<u64> {
        let cell = self.manifests.get(&(t.id, partition))?.clone();
        let guard = cell.try_lock().ok()?;
        guard.as_ref().map(|m| m.bytes())
    }

    async fn read_manifest(&self, t: &Topic, partition: i32) -> Result<Manifest, TierError> {
        match self.store.get(&self.manifest_object(t, partition)).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| TierError::ManifestRead(e.to_string()))?;
                serde_json::from_slice(&bytes).map_err(|e| TierError::ManifestRead(e.to_string()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Manifest::default()),
            Err(e) => Err(TierError::ManifestRead(e.to_string())),
        }
    }

    async fn write_manifest(
        &self,
        t: &Topic,
        partition: i32,
        m: &Manifest,
    ) -> Result<(), TierError> {
        let json = serde_json::to_vec(m).expect("manifests serialize");
        let object = self.manifest_object(t, partition);
        let failed = |e: String| TierError::ManifestWrite(e);
        self.store
            .put(&object, PutPayload::from(json))
            .await
            .map_err(|e| failed(e.to_string()))?;
        self.make_durable(&object)
            .await
            .map_err(|e| failed(e.to_string()))
    }

    /// Reads every partition's manifest (on start, before clients are served): a tiered
    /// partition's, and an untiered one's that a purge (`purge_partition`) did not finish.
    /// A tiered manifest that cannot be read now is read again before the partition's next
    /// upload; an untiered one on the next start.
    pub async fn load(&self, topics: &[Arc<Topic>]) {
        let work: Vec<(Arc<Topic>, Arc<Partition>)> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.clone(), p.clone())))
            .collect();
        let loaded = AtomicU64::new(0);
        let pending = work.len();
        // A hung store must not keep the broker from starting: what cannot be read within the
        // time limits is read by the tier task later (no local deletion happens before).
        let all = futures::stream::iter(work).for_each_concurrent(16, |(t, p)| {
                let loaded = &loaded;
                async move {
                    let cell = self.cell((t.id, p.index));
                    let mut guard = cell.lock().await;
                    let read = tokio::time::timeout(
                        Duration::from_secs(10),
                        self.read_manifest(&t, p.index),
                    )
                    .await
                    .unwrap_or_else(|_| Err(TierError::ManifestRead("timed out".into())));
                    match read {
                        Ok(m) => {
                            p.set_remote(m.range());
                            if !m.segments.is_empty() {
                                loaded.fetch_add(1, Ordering::Relaxed);
                            }
                            *guard = Some(m);
                        }
                        Err(e) => tracing::warn!(topic = %t.name, partition = p.index, "tier: {e}; will retry"),
                    }
                }
            });
        if tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .is_err()
        {
            tracing::warn!(
                partitions = pending,
                "tier: the object store did not answer in time; manifests not read yet are read later"
            );
        }
        tracing::info!(
            store = %self.location,
            partitions_with_remote_data = loaded.load(Ordering::Relaxed),
            "tier ready"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::CopyPacer;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn copies_are_paced_to_the_rate() {
        // 1 MB/s: four 100 kB pieces cannot all be through before 300 ms (the first goes at
        // once, each next one 100 ms after the one before).
        let pacer = CopyPacer::new(1_000_000);
        let started = Instant::now();
        for _ in 0..4 {
            pacer.admit(100_000).await;
        }
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn the_default_rate_does_not_pace() {
        let pacer = CopyPacer::new(i64::MAX as u64);
        let started = Instant::now();
        for _ in 0..1000 {
            pacer.admit(1 << 30).await;
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
