//! Tiered storage: sealed segments are copied to an object store (S3 or a local directory)
//! and read back from it when a fetch or offset lookup goes below the local log start.
//!
//! Order of operations (so a segment is never in neither place): upload the segment and its
//! index, then write the partition's manifest naming it, then tell the partition, which only
//! then lets local retention delete its copy. Remote retention removes segments from the
//! manifest first and deletes their objects after.

pub mod cache;
pub mod manifest;

use crate::broker::Topic;
use crate::config::TierConfig;
use crate::log::batch::{BatchHeader, HEADER_LEN};
use crate::log::segment::{self, IndexEntry};
use crate::log::{records, Partition, SealedSegment};
use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use cache::ChunkCache;
use dashmap::DashMap;
use futures::{StreamExt, TryStreamExt};
use manifest::{Manifest, RemoteSegment};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
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
    LocalRead(String),
}

impl std::fmt::Display for TierError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TierError::ManifestRead(e) => write!(f, "reading the manifest failed: {e}"),
            TierError::ManifestWrite(e) => write!(f, "writing the manifest failed: {e}"),
            TierError::Upload(e) => write!(f, "uploading a segment failed: {e}"),
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
    cache: ChunkCache,
    /// Failing partitions: (consecutive failures, next attempt).
    backoff: DashMap<PartitionKey, (u32, Instant)>,
    pub stats: TierStats,
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
                    let store = object_store::aws::AmazonS3Builder::from_env()
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
            cache,
            backoff: DashMap::new(),
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

    /// Reads every tiered partition's manifest (on start, before clients are served).
    /// A manifest that cannot be read now is read again before that partition's next upload.
    pub async fn load(&self, topics: &[Arc<Topic>]) {
        let work: Vec<(Arc<Topic>, Arc<Partition>)> = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.clone(), p.clone())))
            .filter(|(_, p)| p.config().remote_storage)
            .collect();
        let loaded = AtomicU64::new(0);
        futures::stream::iter(work)
            .for_each_concurrent(16, |(t, p)| {
                let loaded = &loaded;
                async move {
                    let cell = self.cell((t.id, p.index));
                    let mut guard = cell.lock().await;
                    match self.read_manifest(&t, p.index).await {
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
            })
            .await;
        tracing::info!(
            store = %self.location,
            partitions_with_remote_data = loaded.load(Ordering::Relaxed),
            "tier ready"
        );
    }

    /// The background task: copies sealed segments and applies remote retention every
    /// remote.log.manager.task.interval.ms, and logs a summary now and then.
    pub async fn run(self: Arc<Self>, topics: impl Fn() -> Vec<Arc<Topic>> + Send + 'static) {
        let mut every = tokio::time::interval(Duration::from_millis(self.cfg.task_interval_ms));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_summary = Instant::now();
        let mut last_uploaded = 0;
        loop {
            every.tick().await;
            let work: Vec<(Arc<Topic>, Arc<Partition>)> = topics()
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.clone(), p.clone())))
                .filter(|(_, p)| p.config().remote_storage)
                .collect();
            let lag = work.iter().fold((0u64, 0usize), |(b, n), (_, p)| {
                let (pb, pn) = p.upload_lag();
                (b + pb, n + pn)
            });
            futures::stream::iter(work)
                .for_each_concurrent(self.cfg.copy_concurrency, |(t, p)| {
                    let tier = self.clone();
                    async move { tier.maintain(&t, &p).await }
                })
                .await;
            let uploaded = self.stats.bytes_uploaded.load(Ordering::Relaxed);
            if last_summary.elapsed() >= Duration::from_secs(60)
                && (uploaded != last_uploaded || lag.0 > 0)
            {
                self.log_summary(lag);
                last_summary = Instant::now();
                last_uploaded = uploaded;
            }
        }
    }

    fn log_summary(&self, lag: (u64, usize)) {
        let s = &self.stats;
        let reads = s.remote_reads.load(Ordering::Relaxed);
        let (hits, misses) = (
            self.cache.hits.load(Ordering::Relaxed),
            self.cache.misses.load(Ordering::Relaxed),
        );
        tracing::info!(
            bytes_uploaded = s.bytes_uploaded.load(Ordering::Relaxed),
            segments_uploaded = s.segments_uploaded.load(Ordering::Relaxed),
            upload_failures = s.upload_failures.load(Ordering::Relaxed),
            upload_lag_bytes = lag.0,
            upload_lag_segments = lag.1,
            remote_segments_deleted = s.segments_deleted.load(Ordering::Relaxed),
            remote_reads = reads,
            remote_read_bytes = s.remote_read_bytes.load(Ordering::Relaxed),
            remote_read_avg_ms = if reads == 0 {
                0.0
            } else {
                s.remote_read_micros.load(Ordering::Relaxed) as f64 / reads as f64 / 1000.0
            },
            cache_hit_ratio = if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
            "tier"
        );
    }

    /// One partition's turn, with exponential backoff after failures.
    async fn maintain(&self, t: &Topic, p: &Partition) {
        let key = (t.id, p.index);
        if self.backoff.get(&key).is_some_and(|b| b.1 > Instant::now()) {
            return;
        }
        match self.sync_partition(t, p).await {
            Ok(()) => {
                if self.backoff.remove(&key).is_some() {
                    tracing::info!(topic = %t.name, partition = p.index, "tier: uploads recovered");
                }
            }
            Err(e) => {
                self.stats.upload_failures.fetch_add(1, Ordering::Relaxed);
                let failures = self.backoff.get(&key).map_or(0, |b| b.0) + 1;
                let base = Duration::from_millis(self.cfg.task_interval_ms);
                let wait = base.saturating_mul(1 << failures.min(16)).min(MAX_BACKOFF);
                self.backoff.insert(key, (failures, Instant::now() + wait));
                if failures == 1 || failures.is_multiple_of(10) {
                    let (lag_bytes, lag_segments) = p.upload_lag();
                    tracing::warn!(
                        topic = %t.name,
                        partition = p.index,
                        failures,
                        lag_bytes,
                        lag_segments,
                        retry_in_ms = wait.as_millis() as u64,
                        "tier: {e}; local segments are kept until uploaded"
                    );
                }
            }
        }
    }

    /// Copies what is new and applies remote retention. Only this task changes manifests (one
    /// turn per partition at a time), so the cell is locked just to read or publish one, never
    /// across an upload: remote reads of the partition carry on meanwhile.
    async fn sync_partition(&self, t: &Topic, p: &Partition) -> Result<(), TierError> {
        let cell = self.cell((t.id, p.index));
        let mut m = {
            let mut guard = cell.lock().await;
            if guard.is_none() {
                let m = self.read_manifest(t, p.index).await?;
                p.set_remote(m.range());
                *guard = Some(m);
            }
            guard.clone().expect("loaded above")
        };
        let from = m.end().unwrap_or(i64::MIN);
        for seg in p.segments_to_upload(from) {
            if m.end().is_some_and(|end| end != seg.base_offset) {
                tracing::error!(topic = %t.name, partition = p.index, expected = m.end(), found = seg.base_offset, "tier: local segments do not continue the manifest; not copying");
                break;
            }
            self.upload_segment(t, p.index, &seg).await?;
            m.push(RemoteSegment {
                base_offset: seg.base_offset,
                next_offset: seg.next_offset,
                size: seg.size,
                max_timestamp: seg.max_timestamp,
            });
            self.write_manifest(t, p.index, &m).await?;
            *cell.lock().await = Some(m.clone());
            p.set_remote(m.range());
            self.stats
                .bytes_uploaded
                .fetch_add(seg.size, Ordering::Relaxed);
            self.stats.segments_uploaded.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(topic = %t.name, partition = p.index, base = seg.base_offset, bytes = seg.size, "tier: segment copied");
        }
        self.apply_remote_retention(t, p, &cell, m).await
    }

    async fn upload_segment(
        &self,
        t: &Topic,
        partition: i32,
        seg: &SealedSegment,
    ) -> Result<(), TierError> {
        let stem = RemoteSegment {
            base_offset: seg.base_offset,
            next_offset: seg.next_offset,
            size: seg.size,
            max_timestamp: seg.max_timestamp,
        }
        .stem();
        let log_object = self.segment_object(t, partition, &stem, "log");
        let upload = |e: object_store::Error| TierError::Upload(e.to_string());
        let local = |e: io::Error| TierError::LocalRead(format!("{}: {e}", seg.log_path.display()));
        if seg.size <= MULTIPART_ABOVE {
            let mut data = tokio::fs::read(&seg.log_path).await.map_err(local)?;
            if (data.len() as u64) < seg.size {
                return Err(TierError::LocalRead(format!(
                    "{} is shorter than the segment",
                    seg.log_path.display()
                )));
            }
            data.truncate(seg.size as usize);
            self.store
                .put(&log_object, PutPayload::from(data))
                .await
                .map_err(upload)?;
        } else {
            use tokio::io::AsyncReadExt;
            let mut file = tokio::fs::File::open(&seg.log_path).await.map_err(local)?;
            let multipart = self
                .store
                .put_multipart(&log_object)
                .await
                .map_err(upload)?;
            let mut writer = WriteMultipart::new_with_chunk_size(multipart, PART_SIZE);
            let mut left = seg.size;
            let mut buf = vec![0u8; PART_SIZE];
            while left > 0 {
                let want = (left as usize).min(PART_SIZE);
                if let Err(e) = file.read_exact(&mut buf[..want]).await {
                    writer.abort().await.ok();
                    return Err(local(e));
                }
                if let Err(e) = writer.wait_for_capacity(4).await {
                    writer.abort().await.ok();
                    return Err(upload(e));
                }
                writer.write(&buf[..want]);
                left -= want as u64;
            }
            writer.finish().await.map_err(upload)?;
        }
        let index_object = self.segment_object(t, partition, &stem, "index");
        self.store
            .put(
                &index_object,
                PutPayload::from(segment::encode_index(&seg.index)),
            )
            .await
            .map_err(upload)?;
        for object in [&log_object, &index_object] {
            self.make_durable(object)
                .await
                .map_err(|e| TierError::Upload(format!("fsync of {object}: {e}")))?;
        }
        Ok(())
    }

    /// retention.ms / retention.bytes over everything (remote and not yet copied): the
    /// oldest remote segments leave the manifest, then their objects are deleted.
    async fn apply_remote_retention(
        &self,
        t: &Topic,
        p: &Partition,
        cell: &ManifestCell,
        m: Manifest,
    ) -> Result<(), TierError> {
        let cfg = p.config();
        let now = crate::log::now_ms();
        let mut total = m.bytes() + p.upload_lag().0;
        let mut next = m;
        let mut doomed = Vec::new();
        while let Some(first) = next.segments.first() {
            let by_time = cfg.retention_ms >= 0
                && first.max_timestamp >= 0
                && now - first.max_timestamp > cfg.retention_ms;
            let by_size =
                cfg.retention_bytes >= 0 && total - first.size >= cfg.retention_bytes as u64;
            if !(by_time || by_size) {
                break;
            }
            total -= first.size;
            doomed.push(next.segments.remove(0));
        }
        if doomed.is_empty() {
            return Ok(());
        }
        self.write_manifest(t, p.index, &next).await?;
        p.set_remote(next.range());
        *cell.lock().await = Some(next);
        for seg in &doomed {
            for ext in ["log", "index"] {
                let object = self.segment_object(t, p.index, &seg.stem(), ext);
                if let Err(e) = self.store.delete(&object).await {
                    tracing::warn!(%object, error = %e, "tier: deleting an expired object failed; it stays as garbage");
                }
                self.indexes.remove(object.as_ref());
            }
        }
        self.stats
            .segments_deleted
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
        tracing::info!(topic = %t.name, partition = p.index, segments = doomed.len(), "tier: retention deleted remote segments");
        Ok(())
    }

    /// The remote segment holding `offset`, if the tier has it.
    async fn remote_segment(
        &self,
        t: &Topic,
        partition: i32,
        offset: i64,
    ) -> Option<RemoteSegment> {
        let cell = self.cell((t.id, partition));
        let guard = cell.lock().await;
        guard.as_ref()?.find(offset).cloned()
    }

    async fn index(
        &self,
        t: &Topic,
        partition: i32,
        seg: &RemoteSegment,
    ) -> io::Result<Arc<Vec<IndexEntry>>> {
        let object = self.segment_object(t, partition, &seg.stem(), "index");
        if let Some(found) = self.indexes.get(object.as_ref()) {
            return Ok(found.clone());
        }
        let bytes = self
            .store
            .get(&object)
            .await
            .map_err(io_err)?
            .bytes()
            .await
            .map_err(io_err)?;
        let index = Arc::new(
            segment::decode_index(&bytes)
                .ok_or_else(|| io_err(format!("{object}: malformed index")))?,
        );
        if self.indexes.len() > 4096 {
            self.indexes.clear();
        }
        self.indexes.insert(object.to_string(), index.clone());
        Ok(index)
    }

    async fn chunk(&self, object: &ObjectPath, k: u64, size: u64) -> io::Result<Bytes> {
        let key = format!("{object}#{k}");
        if let Some(data) = self.cache.get(&key).await {
            return Ok(data);
        }
        let range = k * CHUNK..((k + 1) * CHUNK).min(size);
        let data = self.store.get_range(object, range).await.map_err(io_err)?;
        self.cache.put(&key, &data).await;
        Ok(data)
    }

    /// Bytes [from, to) of a remote segment, through the chunk cache.
    async fn read_range(
        &self,
        object: &ObjectPath,
        size: u64,
        from: u64,
        to: u64,
    ) -> io::Result<Bytes> {
        if to > size || from >= to {
            return Err(io_err(format!(
                "{object}: range {from}..{to} outside the segment ({size} bytes)"
            )));
        }
        let (first, last) = (from / CHUNK, (to - 1) / CHUNK);
        if first == last {
            let chunk = self.chunk(object, first, size).await?;
            return Ok(chunk.slice((from - first * CHUNK) as usize..(to - first * CHUNK) as usize));
        }
        let mut out = BytesMut::with_capacity((to - from) as usize);
        for k in first..=last {
            let chunk = self.chunk(object, k, size).await?;
            let start = from.max(k * CHUNK) - k * CHUNK;
            let end = to.min((k + 1) * CHUNK) - k * CHUNK;
            out.extend_from_slice(&chunk[start as usize..end as usize]);
        }
        Ok(out.freeze())
    }

    async fn header_at(&self, object: &ObjectPath, size: u64, pos: u64) -> io::Result<BatchHeader> {
        let head = self
            .read_range(object, size, pos, pos + HEADER_LEN as u64)
            .await?;
        BatchHeader::parse(&head).map_err(|e| io_err(format!("{object} at {pos}: {e:?}")))
    }

    /// Whole batches from the remote segment holding `offset`, starting with the batch that
    /// contains it, up to `max_bytes` (at least one batch). None: the tier does not hold it.
    pub async fn read(
        self: &Arc<Self>,
        t: &Topic,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> io::Result<Option<Bytes>> {
        let started = Instant::now();
        let Some(seg) = self.remote_segment(t, partition, offset).await else {
            return Ok(None);
        };
        let object = self.segment_object(t, partition, &seg.stem(), "log");
        let index = self.index(t, partition, &seg).await?;
        let mut pos = segment::lookup(&index, seg.base_offset, offset);
        let mut out = BytesMut::new();
        while pos + (HEADER_LEN as u64) <= seg.size {
            let h = self.header_at(&object, seg.size, pos).await?;
            let end = pos + h.total_len as u64;
            if h.last_offset() < offset {
                pos = end;
                continue;
            }
            if !out.is_empty() && out.len() + h.total_len > max_bytes {
                break;
            }
            out.extend_from_slice(&self.read_range(&object, seg.size, pos, end).await?);
            pos = end;
            if out.len() >= max_bytes {
                break;
            }
        }
        // Sequential consumers read on from here: fetch the next chunk ahead of them.
        let next_chunk = pos / CHUNK + 1;
        if next_chunk * CHUNK < seg.size && !self.cache.contains(&format!("{object}#{next_chunk}"))
        {
            let tier = self.clone();
            let object = object.clone();
            tokio::spawn(async move {
                let _ = tier.chunk(&object, next_chunk, seg.size).await;
            });
        }
        self.stats.remote_reads.fetch_add(1, Ordering::Relaxed);
        self.stats
            .remote_read_bytes
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        self.stats
            .remote_read_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(Some(out.freeze()))
    }

    /// (timestamp, offset) of the first remote record with timestamp >= `ts`.
    pub async fn offset_for_timestamp(
        &self,
        t: &Topic,
        partition: i32,
        ts: i64,
    ) -> io::Result<Option<(i64, i64)>> {
        let segments = {
            let cell = self.cell((t.id, partition));
            let guard = cell.lock().await;
            guard
                .as_ref()
                .map(|m| m.segments.clone())
                .unwrap_or_default()
        };
        for seg in segments.iter().filter(|s| s.max_timestamp >= ts) {
            let object = self.segment_object(t, partition, &seg.stem(), "log");
            let index = self.index(t, partition, seg).await?;
            let mut pos = segment::lookup_time(&index, ts);
            while pos + (HEADER_LEN as u64) <= seg.size {
                let h = self.header_at(&object, seg.size, pos).await?;
                let end = pos + h.total_len as u64;
                if h.max_timestamp >= ts {
                    let batch = self.read_range(&object, seg.size, pos, end).await?;
                    if let Some(found) = records::first_at_or_after(&batch, ts).ok().flatten() {
                        return Ok(Some(found));
                    }
                }
                pos = end;
            }
        }
        Ok(None)
    }

    /// Removes a deleted topic's objects, in the background.
    pub fn delete_topic(self: &Arc<Self>, name: &str, id: Uuid) {
        self.manifests.retain(|(topic_id, _), _| *topic_id != id);
        let prefix = self.object(&Self::topic_dir(name, &id));
        let tier = self.clone();
        let name = name.to_string();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            for attempt in 0..10u32 {
                let listed: Result<Vec<ObjectPath>, _> = tier
                    .store
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location)
                    .try_collect()
                    .await;
                let result = match listed {
                    Ok(objects) => {
                        let mut failed = None;
                        for object in &objects {
                            if let Err(e) = tier.store.delete(object).await {
                                failed = Some(e);
                            }
                        }
                        failed.map_or(Ok(objects.len()), Err)
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(n) => {
                        tracing::info!(topic = %name, objects = n, "tier: deleted the topic's objects");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(topic = %name, attempt, error = %e, "tier: deleting the topic's objects failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1 << attempt.min(6))).await;
                    }
                }
            }
        });
    }
}
