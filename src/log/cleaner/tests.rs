//! The cleaner over real partitions in temp dirs: what survives a pass, compressed and
//! transactional batches, producer state, reads across gaps, and each crash point of a swap.

use super::offset_map::OffsetMap;
use super::pass::{clean, PassStats};
use super::Throttle;
use crate::log::batch::{BatchHeader, CRC_START, HEADER_LEN, LOG_OVERHEAD};
use crate::log::compression::{compress, Levels};
use crate::log::flush::Flusher;
use crate::log::partition::Partition;
use crate::log::records::{parse_records, record_section};
use crate::log::segment::file_name;
use crate::log::{now_ms, LogConfig, ReadOutcome};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A batch of keyed records (`None` value: a tombstone), compressed with `codec`.
pub(crate) fn keyed_batch(
    records: &[(Option<&str>, Option<&str>)],
    timestamp: i64,
    codec: i16,
    producer: Option<(i64, i16, i32)>,
) -> Vec<u8> {
    let mut raw = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut r = vec![0u8];
        varint(&mut r, i as i64); // timestamp delta
        varint(&mut r, i as i64); // offset delta
        match key {
            Some(k) => {
                varint(&mut r, k.len() as i64);
                r.extend_from_slice(k.as_bytes());
            }
            None => varint(&mut r, -1),
        }
        match value {
            Some(v) => {
                varint(&mut r, v.len() as i64);
                r.extend_from_slice(v.as_bytes());
            }
            None => varint(&mut r, -1),
        }
        varint(&mut r, 0); // headers
        varint(&mut raw, r.len() as i64);
        raw.extend_from_slice(&r);
    }
    let body = compress(codec, &raw, &Levels::default()).unwrap();
    let count = records.len() as i32;
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&codec.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&(timestamp + count as i64 - 1).to_be_bytes());
    b.extend_from_slice(&pid.to_be_bytes());
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 100,
        timestamp_after_max_ms: i64::MAX,
        compact: true,
        delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::kafka_defaults()
    }
}

pub(crate) fn open(dir: &Path, config: LogConfig) -> Arc<Partition> {
    Partition::open("t", 0, dir.to_path_buf(), config, Flusher::start()).unwrap()
}

pub(crate) fn wait_hw(p: &Partition, at_least: i64) {
    for _ in 0..1000 {
        if p.offsets().high_watermark >= at_least {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    panic!("high watermark never reached {at_least}");
}

/// One cleaning pass as the cleaner thread runs it; None when nothing was cleanable.
fn clean_now(p: &Partition) -> Option<PassStats> {
    let plan = p.compaction_plan(now_ms()).unwrap()?;
    let mut map = OffsetMap::with_memory(1 << 20);
    Some(clean(p, &plan, &mut map, &Throttle::new(f64::MAX), now_ms()).unwrap())
}

/// Every record from the log start: offset -> (key, value).
pub(crate) fn contents(p: &Partition) -> BTreeMap<i64, (Option<String>, Option<String>)> {
    let mut out = BTreeMap::new();
    let mut at = p.offsets().log_start;
    let end = p.offsets().high_watermark;
    while at < end {
        let ReadOutcome::Records(data) = p.read(at, 1 << 20, true).unwrap() else {
            panic!("read at {at}")
        };
        assert!(!data.is_empty(), "empty read at {at} below {end}");
        let mut pos = 0;
        while pos < data.len() {
            let h = BatchHeader::parse(&data[pos..]).unwrap();
            let batch = &data[pos..pos + h.total_len];
            assert_eq!(crc32c::crc32c(&batch[CRC_START..]), h.crc, "crc at {at}");
            if !h.is_control() {
                let section = record_section(batch).unwrap();
                let text = |r: &std::ops::Range<usize>| {
                    String::from_utf8(section[r.clone()].to_vec()).unwrap()
                };
                for r in parse_records(&section).unwrap() {
                    let offset = h.base_offset + r.offset_delta as i64;
                    let value_start = r.key.as_ref().map_or(r.bytes.start, |k| k.end);
                    let value = (!r.tombstone).then(|| {
                        // value: a varint length then the bytes; test values are < 64 bytes.
                        let len = (section[value_start] >> 1) as usize;
                        text(&(value_start + 1..value_start + 1 + len))
                    });
                    out.insert(offset, (r.key.as_ref().map(text), value));
                }
            }
            at = h.last_offset() + 1;
            pos += h.total_len;
        }
    }
    out
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

#[test]
fn keeps_the_latest_record_per_key_and_its_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), compacted());
    let now = now_ms();
    let mut last = 0;
    for round in 0..20 {
        let v = format!("v{round}");
        let b = keyed_batch(
            &[(Some("a"), Some(&v)), (Some("b"), Some(&v))],
            now,
            0,
            None,
        );
        p.append(&b).unwrap();
        let c = keyed_batch(&[(Some(&format!("k{round}")), Some("x"))], now, 4, None);
        last = p.append(&c).unwrap().last_offset;
    }
    wait_hw(&p, last + 1);
    let before = contents(&p);
    assert_eq!(before.len(), 60);
    let stats = clean_now(&p).expect("cleanable");
    assert!(
        stats.segments_swapped > 0 && stats.records_removed > 0,
        "{stats:?}"
    );
    let after = contents(&p);
    // Unique keys all stay, at their offsets; a and b keep only their last value below the
    // active segment's start.
    for (offset, kv) in &after {
        assert_eq!(before.get(offset), Some(kv), "offset {offset} changed");
    }
    for round in 0..20 {
        let k = s(&format!("k{round}"));
        assert!(after.values().any(|(key, _)| *key == k), "{k:?} lost");
    }
    let a_versions = after.values().filter(|(k, _)| *k == s("a")).count();
    assert!((1..20).contains(&a_versions), "a has {a_versions} versions");
    let latest_a = before
        .iter()
        .rev()
        .find(|(_, (k, _))| *k == s("a"))
        .unwrap();
    assert_eq!(
        after.get(latest_a.0),
        Some(latest_a.1),
        "the latest a stays"
    );
    // A second pass over a clean log changes nothing.
    let again = clean_now(&p);
    assert!(again.is_none_or(|st| st.segments_swapped == 0), "{again:?}");
    // Reopened, the log reads the same.
    drop(p);
    let p = open(dir.path(), compacted());
    assert_eq!(contents(&p), after);
}

#[test]
fn tombstones_go_after_delete_retention_and_keyless_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = compacted();
    config.delete_retention_ms = 60_000;
    let p = open(dir.path(), config.clone());
    let keyless = keyed_batch(&[(None, Some("x"))], now_ms(), 1, None);
    assert!(
        p.append(&keyless).is_err(),
        "a keyless record on a compacted log"
    );
    let old = now_ms() - 3_600_000;
    for i in 0..30 {
        let key = format!("k{}", i % 3);
        let value = (i % 3 != 0).then_some("live");
        let b = keyed_batch(&[(Some(&key), value)], old, [0, 1, 2, 3, 4][i % 5], None);
        p.append(&b).unwrap();
    }
    let mut last = 0;
    // A fresh tombstone at the end, then roll past it with a new key.
    for i in 0..10 {
        let b = keyed_batch(&[(Some(&format!("fresh{i}")), None)], now_ms(), 0, None);
        last = p.append(&b).unwrap().last_offset;
    }
    wait_hw(&p, last + 1);
    clean_now(&p).expect("cleanable");
    let after = contents(&p);
    // k0 was only ever tombstones, an hour old: gone. k1 and k2 keep their latest value.
    assert!(!after.values().any(|(k, _)| *k == s("k0")), "{after:?}");
    for k in ["k1", "k2"] {
        let versions: Vec<_> = after.values().filter(|(key, _)| *key == s(k)).collect();
        assert_eq!(versions.len(), 1, "{k}: {versions:?}");
        assert_eq!(versions[0].1, s("live"));
    }
    // Fresh tombstones in cleaned segments stay (consumers still have to see them).
    let fresh = after
        .values()
        .filter(|(k, v)| k.as_ref().is_some_and(|k| k.starts_with("fresh")) && v.is_none())
        .count();
    assert!(fresh > 0, "{after:?}");
}

#[test]
fn aborted_transactions_go_and_a_producers_last_batch_stays() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), compacted());
    let now = now_ms();
    // An aborted transaction of producer 7, then committed data.
    let mut txn = keyed_batch(&[(Some("t"), Some("aborted"))], now, 0, Some((7, 0, 0)));
    txn[21..23].copy_from_slice(&0x10i16.to_be_bytes()); // transactional
    let crc = crc32c::crc32c(&txn[CRC_START..]);
    txn[17..21].copy_from_slice(&crc.to_be_bytes());
    p.append_transactional(&txn).unwrap();
    p.append_marker(7, 0, false, 0).unwrap();
    // Idempotent producer 9 writes key "p" twice; its second batch is superseded later by a
    // plain record, but stays (empty) as its newest batch.
    p.append(&keyed_batch(
        &[(Some("p"), Some("1"))],
        now,
        0,
        Some((9, 0, 0)),
    ))
    .unwrap();
    let newest = p
        .append(&keyed_batch(
            &[(Some("p"), Some("2"))],
            now,
            0,
            Some((9, 0, 1)),
        ))
        .unwrap();
    let mut last = 0;
    for i in 0..12 {
        let b = keyed_batch(
            &[(Some("p"), Some("3")), (Some(&format!("f{i}")), Some("x"))],
            now,
            0,
            None,
        );
        last = p.append(&b).unwrap().last_offset;
    }
    wait_hw(&p, last + 1);
    clean_now(&p).expect("cleanable");
    let after = contents(&p);
    assert!(
        !after.values().any(|(k, _)| *k == s("t")),
        "aborted records stay: {after:?}"
    );
    // The producer's newest batch is still there (empty): a retry of it is a duplicate,
    // after a restart too.
    drop(p);
    let p = open(dir.path(), compacted());
    let retry = p
        .append(&keyed_batch(
            &[(Some("p"), Some("2"))],
            now,
            0,
            Some((9, 0, 1)),
        ))
        .unwrap();
    assert!(retry.duplicate, "{retry:?}");
    assert_eq!(retry.base_offset, newest.base_offset);
}

#[test]
fn reads_step_over_a_segment_emptied_by_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), compacted());
    let now = now_ms();
    // Fill several segments with one key, then write it again: whole segments empty out.
    let mut last = 0;
    for _ in 0..30 {
        last = p
            .append(&keyed_batch(
                &[(Some("same"), Some("old value"))],
                now,
                0,
                None,
            ))
            .unwrap()
            .last_offset;
    }
    for i in 0..12 {
        last = p
            .append(&keyed_batch(
                &[
                    (Some("same"), Some("new")),
                    (Some(&format!("o{i}")), Some("x")),
                ],
                now,
                0,
                None,
            ))
            .unwrap()
            .last_offset;
    }
    wait_hw(&p, last + 1);
    clean_now(&p).expect("cleanable");
    // Offset 0 now lies in a gap: the first read returns the first batch kept.
    let ReadOutcome::Records(data) = p.read(0, 1 << 20, true).unwrap() else {
        panic!()
    };
    let first = BatchHeader::parse(&data).unwrap();
    assert!(
        first.base_offset >= 30,
        "old batches are gone: {}",
        first.base_offset
    );
    let after = contents(&p);
    assert!(!after.values().any(|(_, v)| *v == s("old value")));
}

/// A copy of a partition directory (its files, not subdirectories).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Builds, for each crash point of a swap, the directory a crash there leaves (from the
/// files before and after one real pass) and checks what reopening it gives.
#[test]
fn a_swap_interrupted_anywhere_recovers_to_one_side() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    let p = open(&live, compacted());
    let now = now_ms();
    let mut last = 0;
    for i in 0..40 {
        let b = keyed_batch(
            &[(Some(&format!("k{}", i % 4)), Some(&format!("v{i}")))],
            now,
            0,
            None,
        );
        last = p.append(&b).unwrap().last_offset;
    }
    wait_hw(&p, last + 1);
    let original = contents(&p);
    p.close();
    let before = root.path().join("before");
    copy_dir(&live, &before);
    let stats = clean_now(&p).unwrap();
    assert!(stats.segments_swapped > 0);
    let cleaned = contents(&p);
    p.close();
    // The first segment the pass rewrote, and the next one's base.
    let base = 0i64;
    let mut bases: Vec<i64> = std::fs::read_dir(&before)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    bases.sort();
    let next_base = bases[1];
    let cleaned_file = |ext: &str| live.join(file_name(base, ext));
    assert_ne!(
        std::fs::read(cleaned_file("log")).unwrap(),
        std::fs::read(before.join(file_name(base, "log"))).unwrap()
    );
    let crash = |name: &str, marker: bool, moved: &[&str], drop_original: bool| -> PathBuf {
        let dir = root.path().join(name);
        copy_dir(&before, &dir);
        let scratch = dir.join(".cleaning");
        std::fs::create_dir_all(&scratch).unwrap();
        for ext in ["log", "index", "timeindex"] {
            let target = if moved.contains(&ext) {
                dir.clone()
            } else {
                scratch.clone()
            };
            std::fs::copy(cleaned_file(ext), target.join(file_name(base, ext))).unwrap();
        }
        if marker {
            std::fs::write(scratch.join(file_name(base, "swap")), b"").unwrap();
        }
        if drop_original {
            std::fs::remove_file(dir.join(file_name(base, "log"))).unwrap();
        }
        dir
    };
    let reopened = |dir: &Path| {
        let p = open(dir, compacted());
        assert!(
            !dir.join(".cleaning").exists(),
            "leftovers in {}",
            dir.display()
        );
        let c = contents(&p);
        p.close();
        c
    };
    // Before the marker: the cleaning never decided; the original segment stays.
    let c = reopened(&crash("unmarked", false, &[], false));
    assert_eq!(c, original);
    // Marker written, nothing moved yet / .log moved / all moved: the swap is finished.
    for (name, moved) in [
        ("marked", &[][..]),
        ("log_moved", &["log"][..]),
        ("all_moved", &["log", "index", "timeindex"][..]),
    ] {
        let c = reopened(&crash(name, true, moved, false));
        // Only the first segment is swapped in these directories: it reads as cleaned, the
        // rest as before.
        assert_eq!(
            c.range(..next_base).collect::<Vec<_>>(),
            cleaned.range(..next_base).collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(
            c.range(next_base..).collect::<Vec<_>>(),
            original.range(next_base..).collect::<Vec<_>>(),
            "{name}"
        );
    }
    // Marker, but retention deleted the original meanwhile: the cleaned copy is not
    // resurrected.
    let dir = crash("deleted", true, &[], true);
    let p = open(&dir, compacted());
    assert!(p.offsets().log_start > 0);
    assert!(!dir.join(file_name(base, "log")).exists());
}

/// Every batch from the log start: (base offset, control?, producer id).
fn batches(p: &Partition) -> Vec<(i64, bool, i64)> {
    let mut out = Vec::new();
    let mut at = p.offsets().log_start;
    while at < p.offsets().high_watermark {
        let ReadOutcome::Records(data) = p.read(at, 1 << 20, true).unwrap() else {
            panic!("read at {at}")
        };
        let mut pos = 0;
        while pos < data.len() {
            let h = BatchHeader::parse(&data[pos..]).unwrap();
            out.push((h.base_offset, h.is_control(), h.producer_id));
            at = h.last_offset() + 1;
            pos += h.total_len;
        }
    }
    out
}

fn transactional(mut b: Vec<u8>) -> Vec<u8> {
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn markers_of_emptied_transactions_go_with_their_txnindex_entries() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        delete_retention_ms: 0,
        ..compacted()
    };
    let p = open(dir.path(), config.clone());
    let old = now_ms() - 60_000;
    let txn = |k: &str, v: &str, pid: i64, seq: i32| {
        transactional(keyed_batch(
            &[(Some(k), Some(v))],
            old,
            0,
            Some((pid, 0, seq)),
        ))
    };
    // Producer 7: an aborted transaction, then a committed one it still has data of.
    p.append_transactional(&txn("t", "aborted", 7, 0)).unwrap();
    let abort = p.append_marker(7, 0, false, 0).unwrap();
    p.append_transactional(&txn("u", "kept", 7, 1)).unwrap();
    let kept_commit = p.append_marker(7, 0, true, 0).unwrap();
    // Producer 8: a committed transaction whose only record is superseded below, then a
    // second one (its newest batch, which stays).
    p.append_transactional(&txn("v", "old", 8, 0)).unwrap();
    let emptied_commit = p.append_marker(8, 0, true, 0).unwrap();
    p.append_transactional(&txn("w", "w", 8, 1)).unwrap();
    p.append_marker(8, 0, true, 0).unwrap();
    let mut last = 0;
    for i in 0..12 {
        let b = keyed_batch(
            &[
                (Some("v"), Some("new")),
                (Some(&format!("f{i}")), Some("x")),
            ],
            old,
            0,
            None,
        );
        last = p.append(&b).unwrap().last_offset;
    }
    wait_hw(&p, last + 1);
    assert_eq!(p.aborted_transactions(0, last + 1).unwrap(), vec![(7, 0)]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    clean_now(&p).expect("cleanable");
    let check = |p: &Partition| {
        let markers: Vec<i64> = batches(p)
            .into_iter()
            .filter(|b| b.1)
            .map(|b| b.0)
            .collect();
        assert!(
            !markers.contains(&abort),
            "the abort marker stays: {markers:?}"
        );
        assert!(!markers.contains(&emptied_commit), "{markers:?}");
        assert!(markers.contains(&kept_commit), "{markers:?}");
        // Its index entry went with the abort marker.
        assert_eq!(p.aborted_transactions(0, last + 1).unwrap(), vec![]);
        let after = contents(p);
        assert!(after.values().any(|(k, v)| *k == s("u") && *v == s("kept")));
        assert!(after.values().any(|(k, v)| *k == s("w") && *v == s("w")));
        assert!(!after.values().any(|(k, _)| *k == s("t")));
    };
    check(&p);
    drop(p);
    check(&open(dir.path(), config));
}
