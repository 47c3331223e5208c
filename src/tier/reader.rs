//! Reads below the local log start: the segment's index, then range reads of 1 MiB chunks
//! through the on-disk cache, with the next chunk fetched ahead for sequential consumers; and
//! the aborted transactions of such a read, from the segments' aborted-transaction indexes.

use super::manifest::RemoteSegment;
use super::{io_err, Tier, CHUNK};
use crate::log::batch::{BatchHeader, HEADER_LEN};
use crate::log::records;
use crate::log::segment::{self, IndexEntry};
use crate::log::txn_index::{self, AbortedTxn};
use crate::log::Partition;
use crate::stats::{Histogram, SECONDS_BUCKETS};
use crate::topic::Topic;
use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use object_store::path::Path as ObjectPath;
use std::collections::HashSet;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// How long each read of records from the tier took (index, chunks, cache), for /metrics.
pub static REMOTE_READ_SECONDS: Histogram = Histogram::new(&SECONDS_BUCKETS);

impl Tier {
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

    /// A small object read whole and decoded once: from `cache`, else from the store (the
    /// cache is emptied when it holds more than 4,096 objects).
    async fn cached_object<T>(
        &self,
        cache: &DashMap<String, Arc<T>>,
        object: ObjectPath,
        decode: impl FnOnce(&[u8]) -> io::Result<T>,
    ) -> io::Result<Arc<T>> {
        if let Some(found) = cache.get(object.as_ref()) {
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
        let decoded = Arc::new(decode(&bytes)?);
        if cache.len() > 4096 {
            cache.clear();
        }
        cache.insert(object.to_string(), decoded.clone());
        Ok(decoded)
    }

    async fn index(
        &self,
        t: &Topic,
        partition: i32,
        seg: &RemoteSegment,
    ) -> io::Result<Arc<Vec<IndexEntry>>> {
        let object = self.segment_object(t, partition, &seg.stem(), "index");
        let name = object.to_string();
        self.cached_object(&self.indexes, object, |bytes| {
            segment::decode_index(bytes).ok_or_else(|| io_err(format!("{name}: malformed index")))
        })
        .await
    }

    /// The aborted-transaction index of a remote segment that has one (`aborted_txns` > 0).
    async fn txn_index(
        &self,
        t: &Topic,
        partition: i32,
        seg: &RemoteSegment,
    ) -> io::Result<Arc<Vec<AbortedTxn>>> {
        let object = self.segment_object(t, partition, &seg.stem(), "txnindex");
        let name = object.to_string();
        self.cached_object(&self.txn_indexes, object, |bytes| {
            txn_index::decode_all(bytes, seg.base_offset..seg.next_offset)
                .filter(|e| e.len() as u64 == seg.aborted_txns)
                .ok_or_else(|| {
                    io_err(format!(
                        "{name}: malformed aborted-transaction index ({} bytes, {} entries expected)",
                        bytes.len(),
                        seg.aborted_txns
                    ))
                })
        })
        .await
    }

    /// (producer id, first offset) of every aborted transaction with records in [`from`,
    /// `upto`), for a read_committed fetch of records that came from the tier: Kafka's
    /// collectAbortedTransactions over the remote segments, then the local ones. The search
    /// starts at the segment holding `from` (an abort's entry is in its marker's segment, at
    /// or after `from`) and stops at the first entry whose last stable offset reaches `upto`.
    ///
    /// The local `.txnindex` files are searched first and the tier after, for the segments
    /// below the local start seen then: a segment local retention deletes in between is still
    /// found in the tier (it is deleted only once the manifest names it), and one held in both
    /// places counts once.
    pub async fn aborted_transactions(
        &self,
        t: &Topic,
        p: &Partition,
        from: i64,
        upto: i64,
    ) -> io::Result<Vec<(i64, i64)>> {
        let local = p.aborted_transactions(from, upto)?;
        let local_start = p.local_start();
        let segments: Vec<RemoteSegment> = {
            let cell = self.cell((t.id, p.index));
            let guard = cell.lock().await;
            guard.as_ref().map_or_else(Vec::new, |m| {
                m.from(from)
                    .iter()
                    .take_while(|s| s.base_offset < local_start)
                    .filter(|s| s.aborted_txns > 0)
                    .cloned()
                    .collect()
            })
        };
        let mut out = Vec::new();
        for seg in &segments {
            let entries = self.txn_index(t, p.index, seg).await?;
            if txn_index::collect_entries(&entries, from, upto, &mut out) {
                // Nothing later has records in the range, the local segments included.
                return Ok(out);
            }
        }
        let remote: HashSet<(i64, i64)> = out.iter().copied().collect();
        out.extend(local.into_iter().filter(|e| !remote.contains(e)));
        Ok(out)
    }

    /// Chunk `k` of a remote segment of `size` bytes; always exactly the chunk's length.
    async fn chunk(&self, object: &ObjectPath, k: u64, size: u64) -> io::Result<Bytes> {
        let key = format!("{object}#{k}");
        let range = k * CHUNK..((k + 1) * CHUNK).min(size);
        let expected = (range.end - range.start) as usize;
        if let Some(data) = self.cache.get(&key).await {
            if data.len() == expected {
                return Ok(data);
            }
            // A cache file that is not what we wrote: drop it and read the store.
            self.cache.remove(&key).await;
        }
        let data = self.store.get_range(object, range).await.map_err(io_err)?;
        if data.len() != expected {
            return Err(io_err(format!(
                "{object}: chunk {k} has {} bytes, expected {expected}",
                data.len()
            )));
        }
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
        REMOTE_READ_SECONDS.observe(started.elapsed().as_secs_f64());
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
}
