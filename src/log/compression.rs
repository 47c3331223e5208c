//! Compressing record sections the way Kafka's clients frame each codec: for the cleaner's
//! rewritten batches and for topics whose compression.type makes the broker recompress
//! (`recompress_batch`, the one produce-path exception to storing the producer's bytes).

use super::batch::{BatchHeader, CRC_START, HEADER_LEN};
use super::records::record_section;
use std::io::Write;

/// Kafka's compression.gzip.level, compression.lz4.level and compression.zstd.level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    /// -1: the codec's default; 1-9.
    pub gzip: i32,
    pub lz4: i32,
    pub zstd: i32,
}

impl Default for Levels {
    /// Kafka's defaults.
    fn default() -> Levels {
        Levels {
            gzip: -1,
            lz4: 9,
            zstd: 3,
        }
    }
}

const COMPRESSION_BITS: i16 = 0x07;

/// `batch` with its records compressed with `codec` instead (0: uncompressed). Everything else
/// in the header stays; length and CRC are recomputed.
pub fn recompress_batch(
    batch: &[u8],
    h: &BatchHeader,
    codec: i16,
    levels: &Levels,
) -> Result<Vec<u8>, &'static str> {
    let raw = record_section(batch)?;
    let body = compress(codec, &raw, levels)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    out.extend_from_slice(&body);
    let batch_length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (h.attributes & !COMPRESSION_BITS) | codec;
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Compresses a record section as Kafka's clients frame each codec.
pub fn compress(codec: i16, raw: &[u8], levels: &Levels) -> Result<Vec<u8>, &'static str> {
    let failed = |_| "cannot compress records";
    match codec {
        0 => Ok(raw.to_vec()),
        1 => {
            let level = match levels.gzip {
                l @ 1..=9 => flate2::Compression::new(l as u32),
                _ => flate2::Compression::default(),
            };
            let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
            e.write_all(raw).map_err(failed)?;
            e.finish().map_err(failed)
        }
        2 => xerial_snappy(raw),
        3 => {
            let mut e = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .level(levels.lz4.max(0) as u32)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::new())
                .map_err(failed)?;
            e.write_all(raw).map_err(failed)?;
            let (out, result) = e.finish();
            result.map_err(failed)?;
            Ok(out)
        }
        4 => zstd::encode_all(raw, levels.zstd).map_err(failed),
        _ => Err("unknown compression codec"),
    }
}

/// Snappy in xerial's framing (what the Java client writes and every client reads): a
/// 16-byte header, then blocks of at most 32 KiB, each a big-endian length and raw snappy.
fn xerial_snappy(raw: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(raw.len() / 2 + 32);
    out.extend_from_slice(b"\x82SNAPPY\x00");
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in raw.chunks(32 * 1024) {
        let block = encoder
            .compress_vec(chunk)
            .map_err(|_| "cannot compress records")?;
        out.extend_from_slice(&(block.len() as i32).to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::log::batch::BatchHeader;
    use crate::log::cleaner::tests::{contents, keyed_batch, open, wait_hw};
    use crate::log::{now_ms, LogConfig, ReadOutcome};

    /// compression.type=zstd (then uncompressed): batches of every other codec are stored
    /// recompressed, records unchanged; a zstd batch is stored as sent.
    #[test]
    fn a_topic_codec_recompresses_other_codecs() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            compression: Some(4),
            timestamp_after_max_ms: i64::MAX,
            ..LogConfig::kafka_defaults()
        };
        let p = open(dir.path(), config.clone());
        let records = [(Some("k"), Some("value one")), (Some("k2"), None)];
        let mut last = 0;
        for codec in [0, 1, 2, 3, 4] {
            last = p
                .append(&keyed_batch(
                    &records,
                    now_ms(),
                    codec,
                    Some((5, 0, codec as i32 * 2)),
                ))
                .unwrap()
                .last_offset;
        }
        wait_hw(&p, last + 1);
        let ReadOutcome::Records(data) = p.read(0, 1 << 20, true).unwrap() else {
            panic!()
        };
        let codecs: Vec<i16> = crate::log::batch::headers(&data)
            .map(|(_, h)| h.compression())
            .collect();
        assert_eq!(codecs, vec![4; 5]);
        let read = contents(&p);
        assert_eq!(read.len(), 10);
        assert!(read.values().all(|(k, _)| k.is_some()));
        // The idempotent producer's sequences survive: a retry is still a duplicate.
        let retry = p
            .append(&keyed_batch(&records, now_ms(), 1, Some((5, 0, 8))))
            .unwrap();
        assert!(retry.duplicate);
        // Uncompressed: the broker inflates.
        p.set_config(LogConfig {
            compression: Some(0),
            ..config
        });
        let out = p.append(&keyed_batch(&records, now_ms(), 3, None)).unwrap();
        wait_hw(&p, out.last_offset + 1);
        let ReadOutcome::Records(data) = p.read(out.base_offset, 1 << 20, true).unwrap() else {
            panic!()
        };
        assert_eq!(BatchHeader::parse(&data).unwrap().compression(), 0);
    }
}
