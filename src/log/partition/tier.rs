//! The partition's bookkeeping for tiered storage (`crate::tier`): which sealed segments may
//! be copied, what the tier holds (which moves the log start back and makes local segments
//! deletable), and how far the copy lags behind. A sealed segment goes with its
//! aborted-transaction index (`SealedSegment::txn_index`), so read_committed reads of it from
//! the tier still know its aborts once local retention removed it.

use super::Partition;
use crate::log::segment::{SealedSegment, Segment};

impl Partition {
    /// Sealed segments wholly below the high watermark that start at or after `from`, oldest
    /// first: what the tier may copy.
    pub fn segments_to_upload(&self, from: i64) -> Vec<SealedSegment> {
        let st = self.lock();
        if st.deleted {
            return Vec::new();
        }
        let active = st.active().base_offset();
        st.segments
            .values()
            .filter(|s| s.base_offset() != active)
            .filter(|s| s.base_offset() >= from && s.next_offset() <= st.high_watermark)
            .filter(|s| s.next_offset() <= st.dir_synced_segment_base)
            .map(Segment::as_sealed)
            .collect()
    }

    /// What the tier holds, [start, end), as its manifest says (None: nothing copied yet;
    /// start == end: everything copied was since removed by retention). Local segments below
    /// `end` become deletable by local retention; the log start may move back to `start`.
    pub fn set_remote(&self, range: Option<(i64, i64)>) {
        let mut st = self.lock();
        st.remote = range;
        st.refresh_log_start();
    }

    /// The remote range last set.
    pub fn remote(&self) -> Option<(i64, i64)> {
        self.lock().remote
    }

    /// First offset held locally.
    pub fn local_start(&self) -> i64 {
        self.lock().local_start()
    }

    /// Bytes and segments not yet copied to the tier (upload lag).
    pub fn upload_lag(&self) -> (u64, usize) {
        let st = self.lock();
        let end = st.remote.map(|r| r.1).unwrap_or(i64::MIN);
        let active = st.active().base_offset();
        st.segments
            .values()
            .filter(|s| s.base_offset() != active && s.next_offset() > end)
            .fold((0, 0), |(b, n), s| (b + s.size(), n + 1))
    }
}

#[cfg(test)]
mod tests {
    use crate::log::batch::tests::make_batch;
    use crate::log::flush::Flusher;
    use crate::log::partition::tests::config;
    use crate::log::partition::Partition;

    #[test]
    fn a_sealed_segment_goes_to_the_tier_once_its_successor_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Partition::open("t", 0, dir.path().join("t-0"), config(), Flusher::manual()).unwrap();
        // Flush before every append, so the first segment is wholly durable when one rolls.
        loop {
            p.flush_now();
            p.append(&make_batch(2, 1000, None)).unwrap();
            if p.lock().segments.len() == 2 {
                break;
            }
        }
        let sealed_end = *p.lock().segments.keys().next_back().unwrap();
        assert_eq!(p.offsets().high_watermark, sealed_end);
        assert!(
            p.segments_to_upload(i64::MIN).is_empty(),
            "the new segment's file is not durable yet"
        );
        p.flush_now();
        let ready = p.segments_to_upload(i64::MIN);
        assert_eq!(ready.len(), 1);
        assert_eq!(
            (ready[0].base_offset, ready[0].next_offset),
            (0, sealed_end)
        );
    }
}
