//! The copier: every remote.log.manager.task.interval.ms, each tiered partition uploads its
//! new sealed segments, publishes its manifest and applies remote retention; failures back off.

use super::manifest::{Manifest, RemoteSegment};
use super::{ManifestCell, Tier, TierError, MAX_BACKOFF, MULTIPART_ABOVE, PART_SIZE};
use crate::log::{segment, txn_index};
use crate::log::{Partition, SealedSegment};
use crate::topic::Topic;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{PutPayload, WriteMultipart};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

impl Tier {
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
                // A partition whose topic stopped tiering while the tier holds some of it:
                // that data is purged (`purge_partition`).
                .filter(|(_, p)| p.config().remote_storage || p.remote().is_some())
                // Cluster mode: only the leader copies to the shared store.
                .filter(|(_, p)| !p.is_follower())
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
        let turn = match p.config().remote_storage {
            true => self.sync_partition(t, p).await,
            false => self.purge_partition(t, p).await,
        };
        match turn {
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
        // remote.log.copy.disable: what the tier holds stays readable and under remote
        // retention; nothing new is copied.
        let to_upload = match p.config().remote_copy_disabled {
            true => Vec::new(),
            false => p.segments_to_upload(from),
        };
        for seg in to_upload {
            if m.end().is_some_and(|end| {
                end < seg.base_offset && seg.base_offset <= p.offsets().log_start
            }) {
                // DeleteRecords removed the local segments in between: gone for clients,
                // nothing to copy. The copies below the log start go with remote retention.
                m.skip_to(seg.base_offset);
            }
            if m.end().is_some_and(|end| end != seg.base_offset) {
                tracing::error!(topic = %t.name, partition = p.index, expected = m.end(), found = seg.base_offset, "tier: local segments do not continue the manifest; not copying");
                break;
            }
            self.upload_segment(t, p.index, &seg).await?;
            if self.deleted_topics.contains_key(&t.id) {
                // Deleted meanwhile: no manifest; the deletion sweep removes what was written.
                return Ok(());
            }
            m.push(RemoteSegment::from(&seg));
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

    /// Tiered storage was turned off for the partition's topic (remote.storage.enable=false
    /// with remote.log.delete.on.disable=true, or cleanup.policy compact; the config change is
    /// refused without the consent while the tier holds data): the remote copies are deleted,
    /// as Kafka's RemoteLogManager does, then the manifest, last, so a purge cut short is
    /// picked up again after a restart (`Tier::load` reads such a manifest too). Only then does
    /// the log start move up to the local start.
    async fn purge_partition(&self, t: &Topic, p: &Partition) -> Result<(), TierError> {
        let cell = self.cell((t.id, p.index));
        let mut guard = cell.lock().await;
        let m = match guard.take() {
            Some(m) => m,
            None => self.read_manifest(t, p.index).await?,
        };
        for seg in &m.segments {
            let txn_index = (seg.aborted_txns > 0).then_some("txnindex");
            for ext in ["log", "index"].into_iter().chain(txn_index) {
                let object = self.segment_object(t, p.index, &seg.stem(), ext);
                match self.store.delete(&object).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        *guard = Some(m.clone());
                        return Err(TierError::Purge(format!("{object}: {e}")));
                    }
                }
                self.indexes.remove(object.as_ref());
                self.txn_indexes.remove(object.as_ref());
            }
        }
        match self.store.delete(&self.manifest_object(t, p.index)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                *guard = Some(Manifest::default());
                return Err(TierError::Purge(e.to_string()));
            }
        }
        *guard = None;
        p.set_remote(None);
        self.stats
            .segments_deleted
            .fetch_add(m.segments.len() as u64, Ordering::Relaxed);
        tracing::info!(topic = %t.name, partition = p.index, segments = m.segments.len(), "tier: remote storage disabled; deleted the partition's remote data");
        Ok(())
    }

    async fn upload_segment(
        &self,
        t: &Topic,
        partition: i32,
        seg: &SealedSegment,
    ) -> Result<(), TierError> {
        let stem = RemoteSegment::from(seg).stem();
        let log_object = self.segment_object(t, partition, &stem, "log");
        let upload = |e: object_store::Error| TierError::Upload(e.to_string());
        let local = |e: io::Error| TierError::LocalRead(format!("{}: {e}", seg.log_path.display()));
        if self.link_sealed_segment(&log_object, seg).await {
            // Same filesystem: the object is the sealed file itself, nothing to copy.
        } else {
            let file = Arc::new(std::fs::File::open(&seg.log_path).map_err(local)?);
            if seg.size <= MULTIPART_ABOVE {
                let data = self
                    .read_for_copy(&file, seg, 0, seg.size as usize)
                    .await
                    .map_err(local)?;
                self.store
                    .put(&log_object, PutPayload::from(data))
                    .await
                    .map_err(upload)?;
            } else {
                let multipart = self
                    .store
                    .put_multipart(&log_object)
                    .await
                    .map_err(upload)?;
                let mut writer = WriteMultipart::new_with_chunk_size(multipart, PART_SIZE);
                let mut position = 0;
                while position < seg.size {
                    let want = ((seg.size - position) as usize).min(PART_SIZE);
                    let part = match self.read_for_copy(&file, seg, position, want).await {
                        Ok(part) => part,
                        Err(e) => {
                            writer.abort().await.ok();
                            return Err(local(e));
                        }
                    };
                    if let Err(e) = writer.wait_for_capacity(4).await {
                        writer.abort().await.ok();
                        return Err(upload(e));
                    }
                    writer.put(part);
                    position += want as u64;
                }
                writer.finish().await.map_err(upload)?;
            }
        }
        let index_object = self.segment_object(t, partition, &stem, "index");
        self.store
            .put(
                &index_object,
                PutPayload::from(segment::encode_index(&seg.index)),
            )
            .await
            .map_err(upload)?;
        let mut objects = vec![log_object, index_object];
        if let Some((file, entries)) = &seg.txn_index {
            // The aborted transactions whose markers are in this segment: a read_committed
            // read of it from the tier needs them once the local copy is gone.
            let (file, entries) = (file.clone(), *entries);
            let txn_path = seg.log_path.with_extension("txnindex");
            let read = tokio::task::spawn_blocking(move || txn_index::read_entries(&file, entries))
                .await
                .map_err(|e| io::Error::other(e.to_string()))
                .and_then(|read| read)
                .map_err(|e| TierError::LocalRead(format!("{}: {e}", txn_path.display())))?;
            let txn_object = self.segment_object(t, partition, &stem, "txnindex");
            self.store
                .put(&txn_object, PutPayload::from(txn_index::encode_all(&read)))
                .await
                .map_err(upload)?;
            objects.push(txn_object);
        }
        for object in &objects {
            self.make_durable(object)
                .await
                .map_err(|e| TierError::Upload(format!("fsync of {object}: {e}")))?;
        }
        Ok(())
    }

    /// One piece of a sealed segment to copy, paced by remote.log.manager.copy.max.bytes.per.second.
    /// Bytes the page-cache budget already let go are dropped behind, as catch-up reads do.
    async fn read_for_copy(
        &self,
        file: &Arc<std::fs::File>,
        seg: &SealedSegment,
        position: u64,
        len: usize,
    ) -> io::Result<bytes::Bytes> {
        self.copy_pacer.admit(len as u64).await;
        let (file, cold_below) = (file.clone(), seg.cold_below);
        tokio::task::spawn_blocking(move || {
            let data = segment::read_exact(&file, position, len)?;
            if position < cold_below {
                let end = (position + len as u64).min(cold_below);
                segment::drop_cached(
                    &file,
                    position / segment::PAGE_SIZE * segment::PAGE_SIZE,
                    end / segment::PAGE_SIZE * segment::PAGE_SIZE,
                );
            }
            Ok(data)
        })
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
    }

    /// On a file store on the segment's own filesystem, the object is made a hard link to the
    /// sealed segment file: sealed segments are never written again, so the link is as good as
    /// a copy and costs no I/O (a copy would write the whole segment a second time, on the same
    /// disk as the produce path's fsyncs). False when a link cannot be made (another
    /// filesystem, a file longer than the segment, no links): then the segment is copied.
    async fn link_sealed_segment(&self, object: &ObjectPath, seg: &SealedSegment) -> bool {
        let Some(root) = &self.local_root else {
            return false;
        };
        let target = root.join(object.as_ref());
        let source = seg.log_path.clone();
        let size = seg.size;
        let linked = tokio::task::spawn_blocking(move || -> io::Result<bool> {
            if std::fs::metadata(&source)?.len() != size {
                return Ok(false);
            }
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Left by an attempt that stopped before its manifest: replace it.
            match std::fs::remove_file(&target) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            std::fs::hard_link(&source, &target)?;
            Ok(true)
        })
        .await;
        match linked {
            Ok(Ok(linked)) => linked,
            Ok(Err(e)) => {
                tracing::debug!(segment = %seg.log_path.display(), error = %e, "tier: no hard link; copying");
                false
            }
            Err(_) => false,
        }
    }

    /// retention.ms / retention.bytes over everything (remote and not yet copied), and the
    /// log start: the oldest remote segments leave the manifest, then their objects are deleted.
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
        let log_start = p.offsets().log_start;
        let mut next = m;
        let mut doomed = Vec::new();
        while let Some(first) = next.segments.first() {
            let by_time = cfg.retention_ms >= 0
                && first.max_timestamp >= 0
                && now - first.max_timestamp > cfg.retention_ms;
            let by_size =
                cfg.retention_bytes >= 0 && total - first.size >= cfg.retention_bytes as u64;
            // Wholly below a log start a client set (DeleteRecords), as Kafka's
            // RemoteLogManager deletes them.
            let below_start = first.next_offset <= log_start;
            if !(by_time || by_size || below_start) {
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
            let txn_index = (seg.aborted_txns > 0).then_some("txnindex");
            for ext in ["log", "index"].into_iter().chain(txn_index) {
                let object = self.segment_object(t, p.index, &seg.stem(), ext);
                if let Err(e) = self.store.delete(&object).await {
                    tracing::warn!(%object, error = %e, "tier: deleting an expired object failed; it stays as garbage");
                }
                self.indexes.remove(object.as_ref());
                self.txn_indexes.remove(object.as_ref());
            }
        }
        self.stats
            .segments_deleted
            .fetch_add(doomed.len() as u64, Ordering::Relaxed);
        tracing::info!(topic = %t.name, partition = p.index, segments = doomed.len(), "tier: retention deleted remote segments");
        Ok(())
    }

    /// Removes a deleted topic's objects, in the background.
    pub fn delete_topic(self: &Arc<Self>, name: &str, id: Uuid) {
        self.deleted_topics.insert(id, ());
        self.manifests.retain(|(topic_id, _), _| *topic_id != id);
        let prefix = self.object(&Self::topic_dir(name, &id));
        let tier = self.clone();
        let name = name.to_string();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // An upload already under way when the topic went may still land: sweep until the
        // prefix has been seen empty after the copier had time to notice the deletion.
        let settle = Duration::from_millis(self.cfg.task_interval_ms.saturating_mul(2))
            .max(Duration::from_secs(1));
        runtime.spawn(async move {
            let mut deleted = 0;
            let mut failures = 0u32;
            let mut clean_sweeps = 0;
            while clean_sweeps < 2 && failures < 10 {
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
                    Ok(0) => clean_sweeps += 1,
                    Ok(n) => deleted += n,
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(topic = %name, attempt = failures, error = %e, "tier: deleting the topic's objects failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1 << failures.min(6))).await;
                        continue;
                    }
                }
                tokio::time::sleep(settle).await;
            }
            tracing::info!(topic = %name, objects = deleted, "tier: deleted the topic's objects");
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::config::TierConfig;
    use crate::log::batch::tests::{make_batch, reseal_crc};
    use crate::log::batch::ATTR_TRANSACTIONAL;
    use crate::log::flush::Flusher;
    use crate::log::{now_ms, LogConfig, Partition};
    use crate::metadata::PartitionState;
    use crate::tier::Tier;
    use crate::topic::Topic;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;
    use uuid::Uuid;

    fn txn_batch(count: i32, pid: i64, seq: i32) -> Vec<u8> {
        let mut b = make_batch(count, now_ms(), Some((pid, 0, seq)));
        b[22] |= ATTR_TRANSACTIONAL as u8;
        reseal_crc(&mut b);
        b
    }

    /// Stems of the partition's objects with extension `ext`.
    fn objects(root: &Path, t: &Topic, ext: &str) -> BTreeSet<String> {
        let dir = root.join(Tier::topic_dir(&t.name, &t.id)).join("0");
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().to_string();
                Some(name.strip_suffix(&format!(".{ext}"))?.to_string())
            })
            .collect()
    }

    #[tokio::test]
    async fn aborted_transactions_of_tiered_segments_outlive_their_local_copies() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1000,
            index_interval_bytes: 100,
            timestamp_after_max_ms: i64::MAX,
            remote_storage: true,
            retention_ms: -1,
            retention_bytes: -1,
            local_retention_ms: -1,
            local_retention_bytes: 1,
            ..LogConfig::kafka_defaults()
        };
        let p = Partition::open(
            "t",
            0,
            dir.path().join("t-0"),
            config.clone(),
            Flusher::manual(),
        )
        .unwrap();
        let t = Topic {
            name: "t".into(),
            id: Uuid::new_v4(),
            partitions: vec![p.clone()],
            states: vec![PartitionState::sole_replica(0)],
            configs: BTreeMap::new(),
            min_insync_replicas: 1,
            traffic: Default::default(),
        };
        let tier = Tier::open(&TierConfig::default(), dir.path()).unwrap();
        let root = dir.path().join("tier");

        // Producer 100's transaction starts in the first segment and is aborted many segments
        // later; in between, producers 1..=40 each commit or abort one, with plain records,
        // and a few segments of plain records alone.
        p.append_transactional(&txn_batch(1, 100, 0)).unwrap();
        for pid in 1..=40 {
            p.append_transactional(&txn_batch(3, pid, 0)).unwrap();
            p.append(&make_batch(2, now_ms(), None)).unwrap();
            p.append_marker(pid, 0, pid % 3 == 0, 0).unwrap();
            p.flush_now();
            if pid == 20 {
                let segments = p.segments_to_upload(i64::MIN).len();
                while p.segments_to_upload(i64::MIN).len() < segments + 3 {
                    p.append(&make_batch(4, now_ms(), None)).unwrap();
                    p.flush_now();
                }
            }
        }
        p.append_marker(100, 0, false, 0).unwrap();
        // Seal the segment holding that marker.
        p.roll().unwrap();
        p.append(&make_batch(2, now_ms(), None)).unwrap();
        p.flush_now();
        p.flush_now();
        let end = p.offsets().high_watermark;
        let ranges: Vec<(i64, i64)> = [(0, end), (0, 3), (5, 40), (end / 3, end / 2)]
            .into_iter()
            .chain((0..end).step_by(17).map(|from| (from, from + 9)))
            .collect();
        let expected: Vec<Vec<(i64, i64)>> = ranges
            .iter()
            .map(|&(from, upto)| p.aborted_transactions(from, upto).unwrap())
            .collect();
        assert_eq!(
            expected[0].len(),
            1 + (1..=40).filter(|pid| pid % 3 != 0).count()
        );
        assert!(expected[0].contains(&(100, 0)));

        tier.sync_partition(&t, &p).await.unwrap();
        let m = tier.cell((t.id, 0)).lock().await.clone().unwrap();
        assert!(m.segments.len() > 5, "{} segments", m.segments.len());
        let with_aborts: BTreeSet<String> = m
            .segments
            .iter()
            .filter(|s| s.aborted_txns > 0)
            .map(|s| s.stem())
            .collect();
        assert!(with_aborts.len() > 3 && with_aborts.len() < m.segments.len());
        assert_eq!(
            m.segments.iter().map(|s| s.aborted_txns).sum::<u64>(),
            expected[0].len() as u64
        );
        assert_eq!(objects(&root, &t, "txnindex"), with_aborts);

        let check = |what: &'static str| {
            let (tier, t, p, ranges, expected) = (&tier, &t, &p, &ranges, &expected);
            async move {
                for (&(from, upto), want) in ranges.iter().zip(expected) {
                    let got = tier.aborted_transactions(t, p, from, upto).await.unwrap();
                    assert_eq!(&got, want, "{what}: [{from}, {upto})");
                }
            }
        };
        check("all local").await;
        // Half the segments only in the tier, then all but the active one.
        let bases: Vec<i64> = m.segments.iter().map(|s| s.base_offset).collect();
        assert!(p.delete_segments_before(bases[bases.len() / 2]) > 0);
        check("half local").await;
        assert!(p.apply_retention(now_ms()) > 0);
        assert_eq!(p.local_start(), m.end().unwrap());
        assert!(
            p.aborted_transactions(0, end).unwrap().len() < expected[0].len(),
            "the local indexes alone no longer know every abort"
        );
        check("all remote").await;

        // Remote retention takes the txn indexes with their segments.
        p.set_config(LogConfig {
            retention_bytes: 2000,
            ..config
        });
        tier.sync_partition(&t, &p).await.unwrap();
        let kept = tier.cell((t.id, 0)).lock().await.clone().unwrap();
        assert!(kept.segments.len() < m.segments.len());
        let kept_with_aborts: BTreeSet<String> = kept
            .segments
            .iter()
            .filter(|s| s.aborted_txns > 0)
            .map(|s| s.stem())
            .collect();
        assert!(kept_with_aborts.len() < with_aborts.len());
        assert_eq!(objects(&root, &t, "txnindex"), kept_with_aborts);
        assert_eq!(
            objects(&root, &t, "log").len(),
            kept.segments.len(),
            "the segments' other objects went too"
        );
    }
}
