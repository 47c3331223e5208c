//! An encode target that takes large byte fields (fetched record batches) by reference
//! instead of copying them: a Fetch response goes to the socket as a list of chunks, the
//! record bytes straight from the buffer they were read into.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;
use std::ops::Range;

/// Byte fields shorter than this are copied: a separate write costs more than the copy.
const MIN_SHARED: usize = 16 * 1024;

pub struct ChunkedBuf {
    /// Finished chunks, in order.
    chunks: Vec<Bytes>,
    chunks_len: usize,
    current: BytesMut,
    /// Buffers whose bytes may be put by reference when the encoder copies them whole.
    shareable: Vec<Bytes>,
}

impl ChunkedBuf {
    pub fn new(capacity: usize, shareable: Vec<Bytes>) -> ChunkedBuf {
        ChunkedBuf {
            chunks: Vec::with_capacity(2 * shareable.len() + 1),
            chunks_len: 0,
            current: BytesMut::with_capacity(capacity),
            shareable,
        }
    }

    pub fn into_chunks(mut self) -> Vec<Bytes> {
        self.finish_current();
        self.chunks
    }

    fn finish_current(&mut self) {
        if !self.current.is_empty() {
            let chunk = self.current.split().freeze();
            self.chunks_len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    fn shared(&self, src: &[u8]) -> Option<Bytes> {
        if src.len() < MIN_SHARED {
            return None;
        }
        self.shareable
            .iter()
            .find(|b| b.as_ptr() == src.as_ptr() && b.len() == src.len())
            .cloned()
    }

    /// Copies the finished chunks back into `current`, for the rare encoder that rewrites
    /// earlier bytes (gaps); the Fetch encoder never does.
    fn flatten(&mut self) {
        if self.chunks.is_empty() {
            return;
        }
        let mut all = BytesMut::with_capacity(self.chunks_len + self.current.len());
        for chunk in self.chunks.drain(..) {
            all.extend_from_slice(&chunk);
        }
        all.extend_from_slice(&self.current);
        self.current = all;
        self.chunks_len = 0;
    }
}

// SAFETY: every method forwards to `current`, a BytesMut, whose own implementation upholds
// the BufMut contract; `put_slice` only appends whole chunks alongside it.
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialized `cnt` bytes of the chunk `current` handed out.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match self.shared(src) {
            Some(bytes) => {
                self.finish_current();
                self.chunks_len += bytes.len();
                self.chunks.push(bytes);
            }
            None => self.current.extend_from_slice(src),
        }
    }
}

impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.chunks_len + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        if offset < self.chunks_len {
            self.flatten();
        }
        self.current.resize(offset - self.chunks_len, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        if r.start < self.chunks_len {
            self.flatten();
        }
        let base = self.chunks_len;
        &mut self.current[r.start - base..r.end - base]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Encodable;

    fn response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_partitions(partitions)
        ])
    }

    #[test]
    fn large_records_are_shared_and_the_bytes_match_a_plain_encode() {
        let big = Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let small = Bytes::from_static(b"tiny records");
        let records = vec![big.clone(), small.clone(), big.slice(10..50_000)];
        let message = response(&records);
        for version in [4, 11, 12, 16] {
            let mut plain = BytesMut::new();
            message.encode(&mut plain, version).unwrap();
            let mut chunked = ChunkedBuf::new(64, records.clone());
            message.encode(&mut chunked, version).unwrap();
            let chunks = chunked.into_chunks();
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, plain.to_vec(), "v{version}");
            let shared = chunks
                .iter()
                .filter(|c| c.as_ptr() == big.as_ptr() || c.as_ptr() == big[10..].as_ptr())
                .count();
            assert_eq!(shared, 2, "v{version}: both large batches go by reference");
        }
    }

    #[test]
    fn gaps_before_a_shared_chunk_still_work() {
        let big = Bytes::from(vec![7u8; MIN_SHARED]);
        let mut buf = ChunkedBuf::new(8, vec![big.clone()]);
        buf.put_i32(1);
        buf.put_slice(&big);
        buf.put_i32(2);
        buf.range(0..4).copy_from_slice(&9i32.to_be_bytes());
        let joined: Vec<u8> = buf.into_chunks().concat();
        assert_eq!(&joined[..4], &9i32.to_be_bytes());
        assert_eq!(joined.len(), 8 + MIN_SHARED);
        assert_eq!(&joined[joined.len() - 4..], &2i32.to_be_bytes());
    }
}
