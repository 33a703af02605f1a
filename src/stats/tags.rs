//! One 32-bit tag per indexed blob, found by catalog row: the blob's kind
//! and its owner during the walks of [`super`] (about 4 bytes per blob).
//!
//! Row numbers of `blobs` are ascending but not dense (prune deletes rows,
//! new blobs take numbers above the highest), so a tag is found through
//! [`RowIndex`]: a bitmap of the rows present over the span lowest–highest
//! with the count of set bits before each word (1.5 bits per row number
//! of the span), or, when the span is more than 16 times the blob count,
//! the sorted row numbers (8 bytes per blob) searched by bisection.

use crate::catalog::Catalog;
use crate::error::{Error, Object, Result};
use crate::pack::BlobKind;

/// A tag's owner field: no group has reached the blob...
pub const NONE: u32 = 0;
/// ...or more than one has. Any other value is a group's index + 1.
pub const SHARED: u32 = (1 << 30) - 1;
/// The largest group number a tag holds.
pub const MAX_GROUP: u32 = SHARED - 1;

/// Position of each indexed row among all rows in ascending order.
enum RowIndex {
    Bitmap {
        first: i64,
        bits: Vec<u64>,
        /// Set bits in `bits[..w]`, for each word `w`.
        before: Vec<u32>,
    },
    Sorted(Vec<i64>),
}

impl RowIndex {
    fn index(&self, row: i64) -> Option<usize> {
        match self {
            RowIndex::Bitmap {
                first,
                bits,
                before,
            } => {
                let off = usize::try_from(row.checked_sub(*first)?).ok()?;
                let (w, b) = (off / 64, off % 64);
                let word = *bits.get(w)?;
                (word >> b & 1 == 1)
                    .then(|| before[w] as usize + (word & ((1u64 << b) - 1)).count_ones() as usize)
            }
            RowIndex::Sorted(rows) => rows.binary_search(&row).ok(),
        }
    }
}

/// Makes a [`RowIndex`] from rows in ascending order.
struct Builder {
    dense: bool,
    first: i64,
    bits: Vec<u64>,
    rows: Vec<i64>,
}

impl Builder {
    /// For `count` rows from `lo` to `hi`.
    fn new(count: u64, lo: i64, hi: i64) -> Builder {
        let span = u64::try_from(hi.saturating_sub(lo))
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let dense = span / 16 <= count.max(1);
        let words = if dense { span.div_ceil(64) as usize } else { 0 };
        Builder {
            dense,
            first: lo,
            bits: vec![0; words],
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: i64) {
        if !self.dense {
            self.rows.push(row);
            return;
        }
        // A row outside [lo, hi] cannot come from the same read view; left
        // out, it is reported as not indexed if anything references it.
        let words = self.bits.len();
        if let Some(off) = usize::try_from(row.wrapping_sub(self.first))
            .ok()
            .filter(|o| o / 64 < words)
        {
            self.bits[off / 64] |= 1 << (off % 64);
        }
    }

    fn finish(self) -> RowIndex {
        if !self.dense {
            return RowIndex::Sorted(self.rows);
        }
        let mut before = Vec::with_capacity(self.bits.len());
        let mut n = 0u32;
        for w in &self.bits {
            before.push(n);
            n += w.count_ones();
        }
        RowIndex::Bitmap {
            first: self.first,
            bits: self.bits,
            before,
        }
    }
}

/// Every indexed blob's tag: kind (low 2 bits) and owner (high 30 bits).
pub struct Tags {
    index: RowIndex,
    tags: Vec<u32>,
}

impl Tags {
    /// Every indexed blob, without owner (one pass over `blobs`).
    pub fn load(cat: &Catalog) -> Result<Tags> {
        let Some((count, lo, hi)) = cat.blob_row_span()? else {
            return Ok(Tags {
                index: RowIndex::Sorted(Vec::new()),
                tags: Vec::new(),
            });
        };
        let mut build = Builder::new(count, lo, hi);
        let mut tags = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        cat.for_each_blob_size(|b| {
            build.push(b.row);
            tags.push(b.kind as u32);
        })?;
        let index = build.finish();
        Ok(Tags { index, tags })
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// The position of `row` (an error naming it if it is not indexed).
    pub fn index(&self, row: i64) -> Result<usize> {
        self.index
            .index(row)
            .filter(|&i| i < self.tags.len())
            .ok_or_else(|| {
                Error::corrupt_as("a snapshot or tree references it, but it is not indexed").within(
                    Object::CatalogRow {
                        table: "blobs",
                        row,
                    },
                )
            })
    }

    pub fn owner(&self, i: usize) -> u32 {
        self.tags[i] >> 2
    }

    pub fn set_owner(&mut self, i: usize, owner: u32) {
        self.tags[i] = (owner << 2) | (self.tags[i] & 3);
    }

    /// Whether the blob references others (a tree or a chunk list).
    pub fn has_refs(&self, i: usize) -> bool {
        self.tags[i] & 3 != BlobKind::Chunk as u32
    }
}

/// The group tag of group index `g` (an error past [`MAX_GROUP`]).
pub fn group_tag(g: usize, what: &'static str) -> Result<u32> {
    u32::try_from(g + 1)
        .ok()
        .filter(|t| *t <= MAX_GROUP)
        .ok_or_else(|| Error::corrupt_as(format!("more {what} than stats can count")))
}

/// A set of positions, emptied in time proportional to what was added.
pub struct Seen {
    bits: Vec<u64>,
    touched: Vec<u32>,
}

impl Seen {
    pub fn new(len: usize) -> Seen {
        Seen {
            bits: vec![0; len.div_ceil(64)],
            touched: Vec::new(),
        }
    }

    /// Add `i`; false if it was there.
    pub fn insert(&mut self, i: usize) -> bool {
        let (w, b) = (i / 64, 1u64 << (i % 64));
        if self.bits[w] & b != 0 {
            return false;
        }
        if self.bits[w] == 0 {
            self.touched.push(w as u32);
        }
        self.bits[w] |= b;
        true
    }

    pub fn clear(&mut self) {
        for w in self.touched.drain(..) {
            self.bits[w as usize] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both representations find every row at its position and nothing else.
    #[test]
    fn row_index_finds_positions_dense_and_sparse() {
        let dense: Vec<i64> = (5..2_000).filter(|r| r % 7 != 0 && r % 64 != 3).collect();
        let sparse: Vec<i64> = (0..300).map(|i| 1_000 + i * i * 40).collect();
        for (rows, want_bitmap) in [(dense, true), (sparse, false)] {
            let (lo, hi) = (rows[0], *rows.last().unwrap());
            let mut b = Builder::new(rows.len() as u64, lo, hi);
            for &r in &rows {
                b.push(r);
            }
            let index = b.finish();
            assert_eq!(matches!(index, RowIndex::Bitmap { .. }), want_bitmap);
            for r in lo - 70..hi + 70 {
                assert_eq!(index.index(r), rows.binary_search(&r).ok(), "row {r}");
            }
        }
    }
}
