//! The per-partition manifest: which segments the object store holds. It is written (one PUT,
//! atomic) only after every object it names has been uploaded, and is the only thing that
//! allows a local segment to be deleted.

use crate::log::SealedSegment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegment {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    /// Largest record timestamp in the segment (-1: none).
    pub max_timestamp: i64,
    /// Entries of the segment's aborted-transaction index, stored beside it as
    /// `<stem>.txnindex` when there are any. Left out when 0, so manifests of topics without
    /// aborts read as before (and manifests written before the index was tiered read as 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub aborted_txns: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&SealedSegment> for RemoteSegment {
    fn from(seg: &SealedSegment) -> RemoteSegment {
        RemoteSegment {
            base_offset: seg.base_offset,
            next_offset: seg.next_offset,
            size: seg.size,
            max_timestamp: seg.max_timestamp,
            aborted_txns: seg.txn_index.as_ref().map_or(0, |(_, entries)| *entries),
        }
    }
}

impl RemoteSegment {
    /// Object name stem: base and end offsets, so a repeated upload writes the same names.
    pub fn stem(&self) -> String {
        format!("{:020}-{:020}", self.base_offset, self.next_offset)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Contiguous, oldest first.
    pub segments: Vec<RemoteSegment>,
    /// End of the newest segment ever copied; stays when retention empties `segments`, so
    /// nothing is copied twice.
    pub copied_end: Option<i64>,
}

impl Manifest {
    /// Offsets [start, end) the tier holds; start == end when retention removed them all.
    pub fn range(&self) -> Option<(i64, i64)> {
        let end = self.copied_end?;
        Some((self.segments.first().map_or(end, |s| s.base_offset), end))
    }

    pub fn end(&self) -> Option<i64> {
        self.copied_end
    }

    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// The segment holding `offset`.
    pub fn find(&self, offset: i64) -> Option<&RemoteSegment> {
        self.from(offset)
            .first()
            .filter(|s| s.base_offset <= offset)
    }

    /// The segments from the one holding `offset` on (all of them when `offset` lies below).
    pub fn from(&self, offset: i64) -> &[RemoteSegment] {
        &self.segments[self.segments.partition_point(|s| s.next_offset <= offset)..]
    }

    /// Adds the next segment; refuses one that does not continue the manifest.
    /// Continues the copy at `offset`, past offsets no client can read any more (below a log
    /// start set by DeleteRecords). Never moves back.
    pub fn skip_to(&mut self, offset: i64) {
        if self.copied_end.is_some_and(|end| end < offset) {
            self.copied_end = Some(offset);
        }
    }

    pub fn push(&mut self, segment: RemoteSegment) -> bool {
        if self.end().is_some_and(|end| end != segment.base_offset) {
            return false;
        }
        self.copied_end = Some(segment.next_offset);
        self.segments.push(segment);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, next: i64) -> RemoteSegment {
        RemoteSegment {
            base_offset: base,
            next_offset: next,
            size: 10,
            max_timestamp: base,
            aborted_txns: 0,
        }
    }

    #[test]
    fn manifests_from_before_tiered_txn_indexes_read_and_write_as_before() {
        // Written before segments carried their aborted-transaction index.
        let old = r#"{"segments":[{"base_offset":0,"next_offset":5,"size":10,"max_timestamp":7},{"base_offset":5,"next_offset":9,"size":12,"max_timestamp":8}],"copied_end":9}"#;
        let m: Manifest = serde_json::from_str(old).unwrap();
        assert_eq!(m.segments.len(), 2);
        assert!(m.segments.iter().all(|s| s.aborted_txns == 0));
        assert_eq!(m.range(), Some((0, 9)));
        // Segments without aborts are written exactly as before.
        assert_eq!(serde_json::to_string(&m).unwrap(), old);
        // Segments with some say how many, and read back.
        let mut with = m.clone();
        with.segments[1].aborted_txns = 3;
        let json = serde_json::to_string(&with).unwrap();
        assert!(
            json.contains(r#""max_timestamp":8,"aborted_txns":3}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), with);
        // And a manifest from an empty partition.
        let empty: Manifest = serde_json::from_str(r#"{"segments":[],"copied_end":null}"#).unwrap();
        assert_eq!(empty, Manifest::default());
    }

    #[test]
    fn find_push_and_range() {
        let mut m = Manifest::default();
        assert_eq!(m.range(), None);
        assert!(m.push(seg(5, 10)));
        assert!(m.push(seg(10, 20)));
        assert!(!m.push(seg(25, 30)), "a gap is refused");
        assert_eq!(m.range(), Some((5, 20)));
        assert_eq!(m.find(4), None);
        assert_eq!(m.find(5).unwrap().base_offset, 5);
        assert_eq!(m.find(19).unwrap().base_offset, 10);
        assert_eq!(m.find(20), None);
        assert_eq!(m.from(4).len(), 2);
        assert_eq!(m.from(12)[0].base_offset, 10);
        assert!(m.from(20).is_empty());
        m.segments.clear();
        assert_eq!(
            m.range(),
            Some((20, 20)),
            "emptied by retention, the end stays"
        );
        assert_eq!(
            seg(5, 10).stem(),
            "00000000000000000005-00000000000000000010"
        );
    }
}
