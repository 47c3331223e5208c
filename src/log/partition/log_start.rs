//! A log start offset set by a client (Kafka's DeleteRecords), which may fall inside a segment.
//! It is kept in the partition's `log-start-offset` file (Kafka keeps the same fact in its
//! log-start-offset-checkpoint), written to a temp file, fsynced and renamed over the old one
//! (then the directory fsynced) before the new start is published: after kill -9 the log
//! start never goes back and nothing below it is served again. Kafka checkpoints it once a
//! minute; doing it at once costs two fsyncs per DeleteRecords, which is rare.
//!
//! Below the new start whole segments are deleted at once (with remote storage too: they are
//! gone for clients, and the tier drops its copies below the log start on its next pass), the
//! segment holding it stays and reads below it are refused as out of range.

use super::Partition;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

const CHECKPOINT: &str = "log-start-offset";

#[derive(Debug)]
pub enum LogStartError {
    /// Above the high watermark (Kafka: OFFSET_OUT_OF_RANGE).
    OutOfRange {
        high_watermark: i64,
    },
    Deleted,
    /// The checkpoint could not be written; nothing changed.
    Io(io::Error),
}

/// The persisted client log start of the partition in `dir`, if one was ever set.
pub(super) fn read_checkpoint(dir: &Path) -> io::Result<Option<i64>> {
    match fs::read_to_string(dir.join(CHECKPOINT)) {
        Ok(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| io::Error::other(format!("{CHECKPOINT}: not an offset: {s:?}"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_checkpoint(dir: &Path, offset: i64) -> io::Result<()> {
    let tmp = dir.join(format!("{CHECKPOINT}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{offset}\n").as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(CHECKPOINT))?;
    File::open(dir)?.sync_all()
}

impl Partition {
    /// Moves the log start up to `offset` (-1: the high watermark), as Kafka's DeleteRecords:
    /// an offset at or below the current start changes nothing, one above the high watermark
    /// is refused. Returns the log start after the call (Kafka's low watermark).
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogStartError> {
        // One change of the log start at a time, so checkpoints are written in order.
        let _serial = self
            .log_start_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let target = {
            let st = self.lock();
            if st.deleted {
                return Err(LogStartError::Deleted);
            }
            let target = if offset == -1 {
                st.high_watermark
            } else {
                offset
            };
            if target < 0 || target > st.high_watermark {
                return Err(LogStartError::OutOfRange {
                    high_watermark: st.high_watermark,
                });
            }
            if target <= st.log_start {
                return Ok(st.log_start);
            }
            target
        };
        // Durable before anyone sees it: a crash after this cannot bring the records back.
        write_checkpoint(&self.dir, target).map_err(LogStartError::Io)?;
        {
            let mut st = self.lock();
            st.log_start_floor = st.log_start_floor.max(target);
            st.refresh_log_start();
        }
        let deleted = self.delete_segments_before(target);
        tracing::info!(topic = %self.topic, partition = self.index, log_start = target, segments_deleted = deleted, "log start moved by a client");
        Ok(self.offsets().log_start)
    }

    /// After opening: the segments wholly below a persisted client log start, left by a
    /// crash between the checkpoint and their deletion.
    pub(super) fn drop_segments_below_log_start(&self) {
        let floor = self.lock().log_start_floor;
        if floor > i64::MIN {
            self.delete_segments_before(floor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;
    use crate::log::batch::BatchHeader;
    use crate::log::flush::Flusher;
    use crate::log::partition::tests::{config, wait_hw};
    use crate::log::partition::ReadOutcome;

    #[test]
    fn a_client_log_start_inside_a_segment_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let pdir = dir.path().join("t-0");
        let flusher = Flusher::start();
        let p = Partition::open("t", 0, pdir.clone(), config(), flusher.clone()).unwrap();
        for i in 0..100 {
            p.append(&make_batch(2, 1000 + i, None)).unwrap();
        }
        wait_hw(&p, 200);
        let segments = p.lock().segments.len();
        assert!(segments > 5);
        assert!(matches!(
            p.delete_records_before(201),
            Err(LogStartError::OutOfRange {
                high_watermark: 200
            })
        ));
        // 77 is the second record of the batch at 76.
        assert_eq!(p.delete_records_before(77).unwrap(), 77);
        assert!(p.lock().segments.len() < segments, "segments below deleted");
        assert!(*p.lock().segments.keys().next().unwrap() <= 77);
        assert_eq!(p.offsets().log_start, 77);
        assert!(matches!(
            p.read(76, 1000, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        let ReadOutcome::Records(d) = p.read(77, 1000, true).unwrap() else {
            panic!()
        };
        // The whole batch holding 77 comes back; the client skips 76.
        assert_eq!(BatchHeader::parse(&d).unwrap().base_offset, 76);
        // Lower or equal: no change, the current start answers.
        assert_eq!(p.delete_records_before(10).unwrap(), 77);
        // Retention and the tier do not move it back.
        p.set_remote(Some((0, 40)));
        assert_eq!(p.offsets().log_start, 77);
        drop(p);

        let p = Partition::open("t", 0, pdir.clone(), config(), flusher.clone()).unwrap();
        assert_eq!(p.offsets().log_start, 77);
        assert!(matches!(
            p.read(0, 1000, true).unwrap(),
            ReadOutcome::OutOfRange
        ));
        // -1: the high watermark; everything but the active segment goes.
        assert_eq!(p.delete_records_before(-1).unwrap(), 200);
        assert_eq!(p.lock().segments.len(), 1);
        assert_eq!(p.append(&make_batch(1, 5, None)).unwrap().base_offset, 200);
        drop(p);
        let p = Partition::open("t", 0, pdir, config(), flusher).unwrap();
        let o = p.offsets();
        assert_eq!((o.log_start, o.log_end), (200, 201));
    }

    #[test]
    fn lookups_by_timestamp_answer_nothing_below_the_log_start() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            Partition::open("t", 0, dir.path().join("t-0"), config(), Flusher::start()).unwrap();
        // One batch: offsets 0-4 at timestamps 1000-1004.
        p.append(&make_batch(5, 1000, None)).unwrap();
        wait_hw(&p, 5);
        assert_eq!(p.offset_for_timestamp(1000).unwrap(), Some((1000, 0)));
        assert_eq!(p.delete_records_before(3).unwrap(), 3);
        assert_eq!(p.offset_for_timestamp(1000).unwrap(), Some((1003, 3)));
        assert_eq!(p.offset_for_timestamp(1004).unwrap(), Some((1004, 4)));
        assert_eq!(p.offset_for_timestamp(1005).unwrap(), None);
    }

    #[test]
    fn segments_left_below_the_checkpoint_by_a_crash_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let pdir = dir.path().join("t-0");
        let flusher = Flusher::start();
        let p = Partition::open("t", 0, pdir.clone(), config(), flusher.clone()).unwrap();
        for i in 0..50 {
            p.append(&make_batch(2, 1000 + i, None)).unwrap();
        }
        wait_hw(&p, 100);
        p.close();
        let segments = p.lock().segments.len();
        drop(p);
        // As if the process died right after the checkpoint.
        write_checkpoint(&pdir, 90).unwrap();
        let p = Partition::open("t", 0, pdir, config(), flusher).unwrap();
        assert_eq!(p.offsets().log_start, 90);
        assert!(p.lock().segments.len() < segments);
    }
}
