//! A bounded on-disk cache of chunks fetched from the object store, least recently used out
//! first. Emptied on start: it only ever holds copies.

use bytes::Bytes;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub struct ChunkCache {
    dir: PathBuf,
    /// Makes every temporary file name unique: the same chunk may be written twice at once
    /// (a prefetch and a reader).
    writes: AtomicU64,
    capacity: u64,
    state: Mutex<State>,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
}

#[derive(Default)]
struct State {
    /// key -> (bytes, last use)
    entries: HashMap<String, (u64, u64)>,
    total: u64,
    clock: u64,
}

impl ChunkCache {
    pub fn open(dir: PathBuf, capacity: u64) -> std::io::Result<ChunkCache> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(ChunkCache {
            dir,
            writes: AtomicU64::new(0),
            capacity,
            state: Mutex::new(State::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        self.dir.join(format!("{:016x}.chunk", h.finish()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn get(&self, key: &str) -> Option<Bytes> {
        {
            let mut st = self.lock();
            st.clock += 1;
            let now = st.clock;
            match st.entries.get_mut(key) {
                Some(e) => e.1 = now,
                None => {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        match tokio::fs::read(self.path(key)).await {
            Ok(data) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Bytes::from(data))
            }
            Err(_) => {
                let mut st = self.lock();
                if let Some((size, _)) = st.entries.remove(key) {
                    st.total -= size;
                }
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub async fn remove(&self, key: &str) {
        let removed = {
            let mut st = self.lock();
            st.entries.remove(key).map(|(size, _)| st.total -= size)
        };
        if removed.is_some() {
            let _ = tokio::fs::remove_file(self.path(key)).await;
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// Stores a chunk, evicting the least recently used ones beyond the capacity.
    pub async fn put(&self, key: &str, data: &Bytes) {
        let size = data.len() as u64;
        if size > self.capacity {
            return;
        }
        let path = self.path(key);
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("{n}.tmp"));
        if tokio::fs::write(&tmp, data).await.is_err()
            || tokio::fs::rename(&tmp, &path).await.is_err()
        {
            let _ = tokio::fs::remove_file(&tmp).await;
            return;
        }
        let doomed = {
            let mut st = self.lock();
            st.clock += 1;
            let now = st.clock;
            if let Some((old, _)) = st.entries.insert(key.to_string(), (size, now)) {
                st.total -= old;
            }
            st.total += size;
            let mut doomed = Vec::new();
            while st.total > self.capacity {
                let Some(victim) = st
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                let (victim_size, _) = st.entries.remove(&victim).expect("just found");
                st.total -= victim_size;
                doomed.push(self.path(&victim));
            }
            doomed
        };
        for path in doomed {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::open(dir.path().join("c"), 25).unwrap();
        let chunk = |b: u8| Bytes::from(vec![b; 10]);
        cache.put("a", &chunk(1)).await;
        cache.put("b", &chunk(2)).await;
        assert_eq!(cache.get("a").await, Some(chunk(1)));
        cache.put("c", &chunk(3)).await; // over 25 bytes: "b" is the least recently used
        assert_eq!(cache.get("b").await, None);
        assert_eq!(cache.get("a").await, Some(chunk(1)));
        assert_eq!(cache.get("c").await, Some(chunk(3)));
        assert_eq!(cache.hits.load(Ordering::Relaxed), 3);
    }
}
