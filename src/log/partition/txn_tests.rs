//! Transactions in the partition: transactional appends, markers, the last stable offset, the
//! aborted-transaction index, and their recovery.

use crate::log::batch;
use crate::log::batch::tests::{make_batch, reseal_crc};
use crate::log::control::{self, EndTxnMarker};
use crate::log::flush::Flusher;
use crate::log::partition::tests::config;
use crate::log::partition::{AppendError, Partition, ReadOutcome};
use crate::log::producer_state::SequenceError;
use crate::log::segment::file_name;
use crate::log::txn_index::{AbortedTxn, ENTRY_LEN};
use crate::log::LogConfig;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// A transactional batch of `count` records from producer `pid` (epoch 0).
fn txn_batch(count: i32, pid: i64, seq: i32) -> Vec<u8> {
    let mut b = make_batch(count, crate::log::now_ms(), Some((pid, 0, seq)));
    b[22] |= batch::ATTR_TRANSACTIONAL as u8;
    reseal_crc(&mut b);
    b
}

fn open(dir: &Path, c: LogConfig) -> Arc<Partition> {
    Partition::open("t", 0, dir.join("t-0"), c, Flusher::manual()).unwrap()
}

/// One big segment: nothing rolls unless a test wants it.
fn one_segment() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..config()
    }
}

fn lso(p: &Partition) -> i64 {
    let o = p.offsets();
    assert_eq!(
        o.last_stable_offset,
        p.subscribe().borrow().last_stable_offset
    );
    o.last_stable_offset
}

fn index_entries(dir: &Path, base: i64) -> Option<Vec<AbortedTxn>> {
    let bytes = fs::read(dir.join("t-0").join(file_name(base, "txnindex"))).ok()?;
    Some(
        bytes
            .chunks(ENTRY_LEN)
            .map(|c| AbortedTxn::decode(c).unwrap())
            .collect(),
    )
}

#[test]
fn the_oldest_open_transaction_holds_the_lso_until_its_marker_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), one_segment());
    p.append(&make_batch(2, crate::log::now_ms(), None))
        .unwrap();
    p.flush_now();
    assert_eq!(lso(&p), 2);
    // Producer 5 opens a transaction at 2; nothing changes until the high watermark passes it.
    assert_eq!(
        p.append_transactional(&txn_batch(3, 5, 0))
            .unwrap()
            .base_offset,
        2
    );
    assert_eq!(lso(&p), 2);
    p.flush_now();
    assert_eq!((p.offsets().high_watermark, lso(&p)), (5, 2));
    // More of the same transaction and plain data do not move it.
    assert_eq!(
        p.append_transactional(&txn_batch(1, 5, 3))
            .unwrap()
            .base_offset,
        5
    );
    p.append(&make_batch(1, crate::log::now_ms(), None))
        .unwrap();
    assert_eq!(
        p.append_transactional(&txn_batch(1, 6, 0))
            .unwrap()
            .base_offset,
        7
    );
    p.flush_now();
    assert_eq!((p.offsets().high_watermark, lso(&p)), (8, 2));
    assert_eq!(p.ongoing_transactions(), vec![(5, 2), (6, 7)]);
    // read_committed stops before the open transaction; read_uncommitted does not.
    let ReadOutcome::Records(committed) = p.read_committed(0, 10_000, true).unwrap() else {
        panic!()
    };
    let bases: Vec<i64> = batch::headers(&committed)
        .map(|(_, h)| h.base_offset)
        .collect();
    assert_eq!(bases, vec![0]);
    let ReadOutcome::Records(at_lso) = p.read_committed(2, 10_000, true).unwrap() else {
        panic!()
    };
    assert!(at_lso.is_empty());
    let ReadOutcome::Records(all) = p.read(0, 10_000, true).unwrap() else {
        panic!()
    };
    assert_eq!(batch::headers(&all).count(), 5);

    // COMMIT for 5 at 8: the LSO waits for the marker to be durable, then moves to 6's start.
    assert_eq!(p.append_marker(5, 0, true, 0).unwrap(), 8);
    assert_eq!(lso(&p), 2);
    assert_eq!(p.ongoing_transactions(), vec![(6, 7)]);
    p.flush_now();
    assert_eq!(lso(&p), 7);
    // ABORT for 6 at 9: an index entry; with nothing open the LSO is the high watermark again.
    assert_eq!(p.append_marker(6, 0, false, 0).unwrap(), 9);
    p.flush_now();
    assert_eq!((p.offsets().high_watermark, lso(&p)), (10, 10));
    assert!(p.ongoing_transactions().is_empty());
    assert_eq!(p.aborted_transactions(0, 10).unwrap(), vec![(6, 7)]);
    assert_eq!(
        index_entries(dir.path(), 0).unwrap(),
        vec![AbortedTxn {
            producer_id: 6,
            first_offset: 7,
            last_offset: 9,
            last_stable_offset: 10,
        }]
    );
    // The markers are real control batches in the log, as a consumer reads them.
    let ReadOutcome::Records(data) = p.read(8, 10_000, true).unwrap() else {
        panic!()
    };
    let markers: Vec<_> = batch::headers(&data).collect();
    assert_eq!(markers.len(), 2);
    for (i, (at, h)) in markers.iter().enumerate() {
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(h.base_offset, 8 + i as i64);
        let one = &data[*at..*at + h.total_len];
        batch::validate(one).unwrap();
        assert_eq!(
            control::parse_marker(one),
            Some(EndTxnMarker {
                commit: i == 0,
                coordinator_epoch: 0
            })
        );
    }
    // The producer's sequence continues after its transaction.
    p.append_transactional(&txn_batch(1, 5, 4)).unwrap();
}

#[test]
fn aborted_transactions_by_range_and_the_lso_they_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), one_segment());
    p.append_transactional(&txn_batch(1, 1, 0)).unwrap(); // 0
    p.append_transactional(&txn_batch(1, 2, 0)).unwrap(); // 1
    assert_eq!(p.append_marker(1, 0, false, 0).unwrap(), 2);
    assert_eq!(p.append_marker(2, 0, false, 0).unwrap(), 3);
    p.append_transactional(&txn_batch(2, 3, 0)).unwrap(); // 4..5
    assert_eq!(p.append_marker(3, 0, true, 0).unwrap(), 6);
    // A marker ending nothing is written but decides nothing.
    assert_eq!(p.append_marker(9, 0, false, 0).unwrap(), 7);
    p.flush_now();
    assert_eq!(lso(&p), 8);
    // Producer 1's abort saw producer 2 still open (LSO 1); producer 2's saw nothing (3 + 1).
    let lsos: Vec<i64> = index_entries(dir.path(), 0)
        .unwrap()
        .iter()
        .map(|e| e.last_stable_offset)
        .collect();
    assert_eq!(lsos, vec![1, 4]);
    assert_eq!(p.aborted_transactions(0, 8).unwrap(), vec![(1, 0), (2, 1)]);
    // [0, 1): only producer 1 has records there, and its entry's LSO (1) ends the search.
    assert_eq!(p.aborted_transactions(0, 1).unwrap(), vec![(1, 0)]);
    // From 3: producer 1 ended at 2.
    assert_eq!(p.aborted_transactions(3, 8).unwrap(), vec![(2, 1)]);
    assert!(p.aborted_transactions(4, 8).unwrap().is_empty());
}

#[test]
fn an_abort_in_a_later_segment_covers_records_in_an_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), config());
    p.append_transactional(&txn_batch(1, 4, 0)).unwrap(); // 0
    let mut next = 1;
    while p.lock().segments.len() < 3 {
        next = p
            .append(&make_batch(2, crate::log::now_ms(), None))
            .unwrap()
            .last_offset
            + 1;
    }
    let marker = p.append_marker(4, 0, false, 0).unwrap();
    assert_eq!(marker, next);
    p.flush_now();
    let active = *p.lock().segments.keys().next_back().unwrap();
    assert!(index_entries(dir.path(), 0).is_none());
    assert_eq!(index_entries(dir.path(), active).unwrap().len(), 1);
    assert_eq!(p.aborted_transactions(0, 5).unwrap(), vec![(4, 0)]);
}

#[test]
fn markers_from_an_old_producer_or_coordinator_epoch_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), one_segment());
    let mut b = make_batch(1, crate::log::now_ms(), Some((5, 2, 0)));
    b[22] |= batch::ATTR_TRANSACTIONAL as u8;
    reseal_crc(&mut b);
    p.append_transactional(&b).unwrap();
    assert!(matches!(
        p.append_marker(5, 1, false, 0),
        Err(AppendError::Sequence(SequenceError::StaleEpoch))
    ));
    assert_eq!(p.ongoing_transactions(), vec![(5, 0)]);
    assert_eq!(p.append_marker(5, 2, true, 3).unwrap(), 1);
    assert!(matches!(
        p.append_marker(5, 2, true, 2),
        Err(AppendError::CoordinatorFenced)
    ));
    // A newer producer epoch is taken (the coordinator bumped it, e.g. after a timeout).
    assert_eq!(p.append_marker(5, 3, false, 3).unwrap(), 2);
    assert_eq!(p.offsets().log_end, 3);
}

#[test]
fn a_marker_is_never_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(
        dir.path(),
        LogConfig {
            max_message_bytes: 40,
            ..one_segment()
        },
    );
    assert!(matches!(
        p.append_transactional(&txn_batch(1, 5, 0)),
        Err(AppendError::TooLarge)
    ));
    assert_eq!(p.append_marker(5, 0, false, 0).unwrap(), 0);
}

#[test]
fn plain_append_still_refuses_transactional_and_control_batches() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), one_segment());
    assert!(matches!(
        p.append(&txn_batch(1, 5, 0)),
        Err(AppendError::Transactional)
    ));
    let marker = control::encode_marker(
        5,
        0,
        EndTxnMarker {
            commit: true,
            coordinator_epoch: 0,
        },
        crate::log::now_ms(),
    );
    assert!(matches!(p.append(&marker), Err(AppendError::Transactional)));
    // Clients never write markers, not even in a transaction.
    assert!(matches!(
        p.append_transactional(&marker),
        Err(AppendError::Transactional)
    ));
    // A transactional batch needs a producer id.
    let mut anonymous = make_batch(1, crate::log::now_ms(), None);
    anonymous[22] |= batch::ATTR_TRANSACTIONAL as u8;
    reseal_crc(&mut anonymous);
    assert!(matches!(
        p.append_transactional(&anonymous),
        Err(AppendError::Batch(_))
    ));
    assert_eq!(p.offsets().log_end, 0);
    // Inside an open transaction the producer may not write outside it.
    p.append_transactional(&txn_batch(1, 5, 0)).unwrap();
    assert!(matches!(
        p.append(&make_batch(1, crate::log::now_ms(), Some((5, 0, 1)))),
        Err(AppendError::InvalidTxnState)
    ));
    // Plain batches of other producers, and with no producer, are unaffected.
    p.append(&make_batch(1, crate::log::now_ms(), Some((6, 0, 0))))
        .unwrap();
    p.append(&make_batch(1, crate::log::now_ms(), None))
        .unwrap();
}

#[test]
fn without_transactions_the_lso_is_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), config());
    for i in 0..40 {
        p.append(&make_batch(2, crate::log::now_ms(), Some((3, 0, i * 2))))
            .unwrap();
        let o = p.offsets();
        assert_eq!(o.last_stable_offset, o.high_watermark);
        p.flush_now();
        let d = *p.subscribe().borrow();
        assert_eq!(d.last_stable_offset, d.high_watermark);
    }
    assert!(p.aborted_transactions(0, 80).unwrap().is_empty());
    let files: Vec<_> = fs::read_dir(dir.path().join("t-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!files.iter().any(|f| f.ends_with(".txnindex")));
}

/// Producer 1 opens a transaction at 0 and keeps it open; producer 2 runs one transaction
/// that is aborted in a later segment; plain data makes the segments roll (so snapshots
/// record the open transaction). Returns (offset of 2's abort marker, log end).
fn history_across_segments(p: &Arc<Partition>) -> (i64, i64) {
    p.append_transactional(&txn_batch(1, 1, 0)).unwrap(); // 0
    p.append_transactional(&txn_batch(2, 2, 0)).unwrap(); // 1..2
    while p.lock().segments.len() < 3 {
        p.append(&make_batch(2, crate::log::now_ms(), None))
            .unwrap();
    }
    let abort = p.append_marker(2, 0, false, 0).unwrap();
    p.append(&make_batch(2, crate::log::now_ms(), None))
        .unwrap();
    p.flush_now();
    (abort, p.offsets().log_end)
}

#[test]
fn reopen_after_a_clean_close_restores_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), config());
    let (abort, end) = history_across_segments(&p);
    assert_eq!(lso(&p), 0);
    let aborted = p.aborted_transactions(0, end).unwrap();
    assert_eq!(aborted, vec![(2, 1)]);
    p.close();
    drop(p);

    let p = open(dir.path(), config());
    assert_eq!(p.ongoing_transactions(), vec![(1, 0)]);
    assert_eq!(lso(&p), 0);
    assert_eq!(p.aborted_transactions(0, end).unwrap(), aborted);
    let active = *p.lock().segments.keys().next_back().unwrap();
    assert!(abort >= active);
    // The transaction still open before the restart ends normally after it.
    p.append_marker(1, 0, true, 0).unwrap();
    p.flush_now();
    assert_eq!(lso(&p), end + 1);
    assert!(p.ongoing_transactions().is_empty());
}

#[test]
fn reopen_after_a_crash_rebuilds_transactions_and_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), config());
    let (abort, end) = history_across_segments(&p);
    let active = *p.lock().segments.keys().next_back().unwrap();
    drop(p);
    let part = dir.path().join("t-0");
    let index_path = part.join(file_name(active, "txnindex"));
    let log_path = part.join(file_name(active, "log"));

    // 1. The index entry was torn by the crash (and a torn batch follows the log's end).
    OpenOptions::new()
        .write(true)
        .open(&index_path)
        .unwrap()
        .set_len(20)
        .unwrap();
    let f = OpenOptions::new().append(true).open(&log_path).unwrap();
    (&f).write_all(&make_batch(2, 0, None)[..40]).unwrap();
    let p = open(dir.path(), config());
    assert_eq!(p.offsets().log_end, end);
    assert_eq!(p.ongoing_transactions(), vec![(1, 0)]);
    assert_eq!(lso(&p), 0);
    assert_eq!(p.aborted_transactions(0, end).unwrap(), vec![(2, 1)]);
    assert_eq!(fs::metadata(&index_path).unwrap().len(), ENTRY_LEN as u64);
    drop(p);

    // 2. The index file is gone altogether: rebuilt the same.
    fs::remove_file(&index_path).unwrap();
    let p = open(dir.path(), config());
    assert_eq!(p.aborted_transactions(0, end).unwrap(), vec![(2, 1)]);
    assert_eq!(
        index_entries(dir.path(), active).unwrap()[0].last_offset,
        abort
    );
    drop(p);

    // 3. The crash took the abort marker itself: producer 2's transaction is open again and
    // its index entry, which outlived the marker, is dropped.
    let marker_at = {
        let bytes = fs::read(&log_path).unwrap();
        let found = batch::headers(&bytes).find(|(_, h)| h.base_offset == abort);
        found.unwrap().0
    };
    OpenOptions::new()
        .write(true)
        .open(&log_path)
        .unwrap()
        .set_len(marker_at as u64 + 30)
        .unwrap();
    let p = open(dir.path(), config());
    assert_eq!(p.offsets().log_end, abort);
    assert_eq!(p.ongoing_transactions(), vec![(1, 0), (2, 1)]);
    assert!(p.aborted_transactions(0, end).unwrap().is_empty());
    assert!(!index_path.exists());
    // The coordinator writes the marker again (it is still in PrepareAbort).
    assert_eq!(p.append_marker(2, 0, false, 0).unwrap(), abort);
    p.flush_now();
    assert_eq!(p.aborted_transactions(0, abort + 1).unwrap(), vec![(2, 1)]);
    assert_eq!(lso(&p), 0);
}

#[test]
fn recovery_without_snapshots_replays_transactions_from_the_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), config());
    let (_, end) = history_across_segments(&p);
    drop(p);
    for e in fs::read_dir(dir.path().join("t-0")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "snapshot") {
            fs::remove_file(path).unwrap();
        }
    }
    let p = open(dir.path(), config());
    assert_eq!(p.ongoing_transactions(), vec![(1, 0)]);
    assert_eq!(p.aborted_transactions(0, end).unwrap(), vec![(2, 1)]);
}

#[test]
fn retention_deletes_the_txnindex_with_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), config());
    p.append_transactional(&txn_batch(1, 1, 0)).unwrap();
    p.append_marker(1, 0, false, 0).unwrap();
    while p.lock().segments.len() < 3 {
        p.append(&make_batch(2, crate::log::now_ms(), None))
            .unwrap();
    }
    p.flush_now();
    let path = dir.path().join("t-0").join(file_name(0, "txnindex"));
    assert!(path.exists());
    let second = *p.lock().segments.keys().nth(1).unwrap();
    assert_eq!(p.delete_segments_before(second), 1);
    assert!(!path.exists());
    assert!(p.aborted_transactions(0, 100).unwrap().is_empty());
    let o = p.offsets();
    assert_eq!(o.last_stable_offset, o.high_watermark);
}

#[test]
fn the_lso_never_falls_below_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), config());
    p.append_transactional(&txn_batch(1, 1, 0)).unwrap();
    while p.lock().segments.len() < 3 {
        p.append(&make_batch(2, crate::log::now_ms(), None))
            .unwrap();
    }
    p.flush_now();
    assert_eq!(lso(&p), 0);
    let second = *p.lock().segments.keys().nth(1).unwrap();
    p.delete_segments_before(second);
    // Retention passed the open transaction's start (as Kafka's may).
    assert_eq!(lso(&p), second);
}
