//! Retention: deleting whole segments by time and size (retention.* or, with remote storage,
//! local.retention.* over what the tier already holds), and on request below an offset (the
//! group log's compaction). Never the active segment, never above the high watermark.
//! A segment goes with all its files, its `.txnindex` included. As in Kafka, an open
//! transaction does not hold back retention; the last stable offset then follows the log start.

use super::Partition;
use crate::log::segment::Segment;

impl Partition {
    /// Deletes whole segments past retention.ms / retention.bytes (rolling the active segment
    /// first when it is itself past retention.ms, as Kafka does) and forgets idle producers.
    /// With remote storage the local.retention.* limits apply instead, and only to segments
    /// the tier already holds. Returns how many segments were deleted.
    pub fn apply_retention(&self, now: i64) -> usize {
        let mut doomed = Vec::new();
        let mut rolled = false;
        let last_stable_offset;
        {
            let mut st = self.lock();
            if st.deleted || st.failed {
                return 0;
            }
            let expiration = st.config.producer_expiration_ms;
            st.producers.expire(now, expiration);
            let (retention_ms, retention_bytes) = match st.config.local_limits() {
                // cleanup.policy without `delete` keeps every segment (a tiered log still
                // lets go of local copies the tier holds).
                _ if !st.config.delete && !st.config.remote_storage => (-1, -1),
                limits => limits,
            };
            // Without remote storage everything is deletable; with it, only what the tier holds.
            let deletable_below = match (st.config.remote_storage, st.remote) {
                (false, _) => i64::MAX,
                // Nothing more will be copied: local segments go by the whole log's retention.
                (true, _) if st.config.remote_copy_disabled => i64::MAX,
                (true, Some((_, end))) => end,
                (true, None) => i64::MIN,
            };
            let active = st.active();
            let active_expired = retention_ms >= 0
                && active.size() > 0
                && active.max_timestamp() >= 0
                && now - active.max_timestamp() > retention_ms
                && st.high_watermark == active.next_offset();
            if active_expired {
                if let Err(e) = self.maybe_roll(&mut st, 0, now, true) {
                    self.fail(&mut st, "segment roll", &e);
                    return 0;
                }
                rolled = true;
            }
            let mut total: i64 = st.segments.values().map(|s| s.size() as i64).sum();
            let candidates: Vec<(i64, i64, u64, i64)> = st
                .segments
                .values()
                .rev()
                .skip(1) // never the active segment
                .rev()
                .map(|s| {
                    (
                        s.base_offset(),
                        s.next_offset(),
                        s.size(),
                        s.max_timestamp(),
                    )
                })
                .collect();
            for (base, next, size, max_ts) in candidates {
                if next > st.high_watermark || next > deletable_below {
                    break;
                }
                let by_time = retention_ms >= 0 && max_ts >= 0 && now - max_ts > retention_ms;
                let by_size = retention_bytes >= 0 && total - size as i64 >= retention_bytes;
                if !(by_time || by_size) {
                    break;
                }
                st.segments.remove(&base);
                total -= size as i64;
                doomed.push(base);
            }
            st.refresh_log_start();
            last_stable_offset = st.last_stable_offset();
        }
        self.publish_last_stable_offset(last_stable_offset);
        if rolled {
            // The new active segment must be durable before the old one's removal can be.
            self.flush_now();
        }
        for base in &doomed {
            Segment::delete_files(&self.dir, *base);
        }
        if !doomed.is_empty() {
            tracing::info!(topic = %self.topic, partition = self.index, segments = doomed.len(), "retention deleted segments");
        }
        doomed.len()
    }

    /// Deletes the sealed, durable segments that lie wholly below `offset`, moving the log
    /// start up to the first offset kept. Returns how many segments were deleted.
    pub fn delete_segments_before(&self, offset: i64) -> usize {
        let mut doomed = Vec::new();
        let last_stable_offset;
        {
            let mut st = self.lock();
            if st.deleted || st.failed {
                return 0;
            }
            let active = st.active().base_offset();
            let sealed: Vec<(i64, i64)> = st
                .segments
                .values()
                .filter(|s| s.base_offset() != active)
                .map(|s| (s.base_offset(), s.next_offset()))
                .collect();
            for (base, next) in sealed {
                if next > offset || next > st.high_watermark {
                    break;
                }
                st.segments.remove(&base);
                doomed.push(base);
            }
            st.refresh_log_start();
            last_stable_offset = st.last_stable_offset();
        }
        self.publish_last_stable_offset(last_stable_offset);
        for base in &doomed {
            Segment::delete_files(&self.dir, *base);
        }
        doomed.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::log::batch::tests::make_batch;
    use crate::log::flush::Flusher;
    use crate::log::now_ms;
    use crate::log::partition::tests::{config, wait_hw};
    use crate::log::partition::Partition;

    #[test]
    fn time_retention_rolls_and_deletes_an_idle_active_segment() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Partition::open("t", 0, dir.path().join("t-0"), config(), Flusher::start()).unwrap();
        p.append(&make_batch(3, 1000, None)).unwrap();
        wait_hw(&p, 3);
        let mut c = config();
        c.retention_ms = 60_000;
        p.set_config(c);
        assert_eq!(p.apply_retention(now_ms()), 1);
        let o = p.offsets();
        assert_eq!((o.log_start, o.log_end), (3, 3));
        assert_eq!(
            p.append(&make_batch(1, now_ms(), None))
                .unwrap()
                .base_offset,
            3
        );
    }

    #[test]
    fn with_copies_disabled_local_segments_follow_the_whole_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.remote_storage = true;
        c.local_retention_bytes = -2;
        c.retention_bytes = 1;
        let p =
            Partition::open("t", 0, dir.path().join("t-0"), c.clone(), Flusher::start()).unwrap();
        let mut last = 0;
        for _ in 0..40 {
            last = p
                .append(&make_batch(2, now_ms(), None))
                .unwrap()
                .last_offset;
        }
        wait_hw(&p, last + 1);
        // Tiered and nothing copied yet: nothing may go.
        assert_eq!(p.apply_retention(now_ms()), 0);
        c.remote_copy_disabled = true;
        p.set_config(c);
        assert!(p.apply_retention(now_ms()) > 0);
        assert!(p.offsets().log_start > 0);
    }
}
