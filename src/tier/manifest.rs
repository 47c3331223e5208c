//! The per-partition manifest: which segments the object store holds. It is written (one PUT,
//! atomic) only after every object it names has been uploaded, and is the only thing that
//! allows a local segment to be deleted.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegment {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    /// Largest record timestamp in the segment (-1: none).
    pub max_timestamp: i64,
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
        let i = self.segments.partition_point(|s| s.next_offset <= offset);
        self.segments.get(i).filter(|s| s.base_offset <= offset)
    }

    /// Adds the next segment; refuses one that does not continue the manifest.
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
        }
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
