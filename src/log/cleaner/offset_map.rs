//! The cleaner's bounded key -> latest offset map (Kafka's SkimpyOffsetMap): keys are kept as
//! 128-bit hashes, so memory depends on the number of keys, not their size. A collision would
//! make the cleaner drop an older record of another key; at 128 bits that is as unlikely as
//! Kafka's MD5 collision.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Bytes one entry costs in the map (hash, offset, table overhead): what the dedupe buffer
/// size is divided by.
pub const BYTES_PER_ENTRY: u64 = 40;

pub struct OffsetMap {
    map: HashMap<u128, i64, BuildHasherDefault<FoldHasher>>,
    capacity: usize,
    /// The largest offset put in the map.
    pub latest_offset: i64,
}

impl OffsetMap {
    /// A map for at most `memory_bytes / BYTES_PER_ENTRY` keys.
    pub fn with_memory(memory_bytes: u64) -> OffsetMap {
        OffsetMap {
            map: HashMap::default(),
            capacity: (memory_bytes / BYTES_PER_ENTRY).max(1) as usize,
            latest_offset: -1,
        }
    }

    pub fn is_full(&self) -> bool {
        self.map.len() >= self.capacity
    }

    /// Records `offset` as the latest of `key` (offsets come in increasing order).
    pub fn put(&mut self, key: &[u8], offset: i64) {
        self.map.insert(hash(key), offset);
        self.latest_offset = self.latest_offset.max(offset);
    }

    /// The latest offset of `key` in the dirty section, if it is there.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&hash(key)).copied()
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.latest_offset = -1;
    }
}

/// Two independent SipHash runs (std's, fixed keys: the same key always hashes the same).
fn hash(key: &[u8]) -> u128 {
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    ((half(0) as u128) << 64) | half(1) as u128
}

/// The map's keys are already hashes: fold them instead of hashing again.
#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64) ^ ((v >> 64) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_and_bounds_its_size() {
        let mut m = OffsetMap::with_memory(3 * BYTES_PER_ENTRY);
        m.put(b"a", 1);
        m.put(b"b", 2);
        m.put(b"a", 5);
        assert_eq!(m.get(b"a"), Some(5));
        assert_eq!(m.get(b"b"), Some(2));
        assert_eq!(m.get(b"c"), None);
        assert!(!m.is_full());
        m.put(b"c", 6);
        assert!(m.is_full());
        assert_eq!(m.latest_offset, 6);
    }
}
