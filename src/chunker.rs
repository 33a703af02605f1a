//! Content-defined chunking: FastCDC (2020) from the `fastcdc` crate.
//!
//! The parameters are fixed per store and recorded in the catalog: changing
//! them moves every cut point and breaks dedup against older snapshots.
//! [`StreamChunker`] reads a file through one bounded buffer and hands out
//! batches of cut points into it, so memory per file is the buffer size
//! whatever the file size, and a batch can be hashed and compressed in
//! parallel without copying chunks out. No file I/O decisions live here: the
//! caller passes any `Read`.

use std::io::{self, Read};
use std::ops::Range;

use fastcdc::v2020::{self, Normalization, MASKS};

use crate::error::{Error, Result};

/// FastCDC size parameters, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkerParams {
    pub min_bytes: u32,
    pub avg_bytes: u32,
    pub max_bytes: u32,
}

impl ChunkerParams {
    /// Chosen by measurement: see `docs/FORMAT.md` ("Chunker parameters").
    pub const DEFAULT: ChunkerParams = ChunkerParams {
        min_bytes: 8 * 1024,
        avg_bytes: 32 * 1024,
        max_bytes: 128 * 1024,
    };

    /// Check the parameters against what FastCDC accepts.
    pub fn validate(&self) -> Result<()> {
        let ok = (v2020::MINIMUM_MIN..=v2020::MINIMUM_MAX).contains(&self.min_bytes)
            && (v2020::AVERAGE_MIN..=v2020::AVERAGE_MAX).contains(&self.avg_bytes)
            && (v2020::MAXIMUM_MIN..=v2020::MAXIMUM_MAX).contains(&self.max_bytes)
            && self.min_bytes <= self.avg_bytes
            && self.avg_bytes <= self.max_bytes;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "chunker parameters",
                format!("{self:?} outside FastCDC's limits"),
            ))
        }
    }
}

/// Masks derived from the average size, as `fastcdc::v2020::FastCDC` does
/// with normalization level 1.
#[derive(Clone, Copy)]
struct Masks {
    s: u64,
    l: u64,
}

impl Masks {
    fn new(avg: u32) -> Masks {
        let bits = v2020::logarithm2(avg);
        let n = Normalization::Level1.bits();
        Masks {
            s: MASKS[(bits + n) as usize],
            l: MASKS[(bits - n) as usize],
        }
    }
}

/// Default read buffer: 16 maximum-size chunks.
pub const DEFAULT_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Cuts a byte stream into chunks through one fixed buffer.
pub struct StreamChunker<R> {
    reader: R,
    params: ChunkerParams,
    masks: Masks,
    buf: Vec<u8>,
    /// Bytes `buf[start..end]` are read but not yet handed out.
    start: usize,
    end: usize,
    eof: bool,
    bytes_read: u64,
}

impl<R: Read> StreamChunker<R> {
    /// `buffer_bytes` is the initial buffer (at least 4 KiB); it grows to two
    /// maximum-size chunks when the stream turns out longer. Size it from the
    /// file's length so small files do not pay for a large buffer.
    pub fn new(reader: R, params: ChunkerParams, buffer_bytes: usize) -> StreamChunker<R> {
        let cap = buffer_bytes.max(4096);
        StreamChunker {
            reader,
            params,
            masks: Masks::new(params.avg_bytes),
            buf: vec![0; cap],
            start: 0,
            end: 0,
            eof: false,
            bytes_read: 0,
        }
    }

    /// Total bytes read from the source so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next batch of chunks: the buffer and the ranges of whole chunks in
    /// it, in order. `None` at the end of the stream.
    pub fn next_batch(&mut self, cuts: &mut Vec<Range<usize>>) -> io::Result<Option<&[u8]>> {
        cuts.clear();
        // Move the unfinished tail to the front, then fill the buffer.
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let min_cap = 2 * self.params.max_bytes as usize;
        if self.end == self.buf.len() && self.buf.len() < min_cap {
            // Longer than the first buffer: make room for a whole max chunk.
            self.buf.resize(min_cap, 0);
        }
        while !self.eof && self.end < self.buf.len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.end == 0 {
            return Ok(None);
        }
        let p = self.params;
        let mut pos = 0;
        while pos < self.end {
            let remaining = self.end - pos;
            if !self.eof && remaining < p.max_bytes as usize {
                break; // the next cut may lie beyond what we have read
            }
            let (_, len) = v2020::cut(
                &self.buf[pos..self.end],
                p.min_bytes as usize,
                p.avg_bytes as usize,
                p.max_bytes as usize,
                self.masks.s,
                self.masks.l,
                self.masks.s << 1,
                self.masks.l << 1,
            );
            debug_assert!(len > 0);
            cuts.push(pos..pos + len);
            pos += len;
        }
        self.start = pos;
        Ok(Some(&self.buf[..self.end]))
    }
}

/// Cut points of an in-memory buffer (tests, benchmarks).
pub fn chunk_lengths(data: &[u8], params: ChunkerParams) -> Vec<usize> {
    let mut chunker = StreamChunker::new(data, params, DEFAULT_BUFFER_BYTES);
    let mut cuts = Vec::new();
    let mut out = Vec::new();
    while chunker
        .next_batch(&mut cuts)
        .expect("reading a slice cannot fail")
        .is_some()
    {
        out.extend(cuts.iter().map(|r| r.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn streaming_matches_fastcdc_over_whole_buffer() {
        let p = ChunkerParams::DEFAULT;
        let data = pseudo_random(3_000_000, 7);
        let expected: Vec<usize> =
            v2020::FastCDC::new(&data, p.min_bytes, p.avg_bytes, p.max_bytes)
                .map(|c| c.length)
                .collect();
        // A small buffer forces many refills; the cuts must not move.
        let mut chunker = StreamChunker::new(&data[..], p, 1);
        let mut cuts = Vec::new();
        let mut got = Vec::new();
        while chunker.next_batch(&mut cuts).unwrap().is_some() {
            got.extend(cuts.iter().map(|r| r.len()));
        }
        assert_eq!(got, expected);
        assert_eq!(got.iter().sum::<usize>(), data.len());
        assert_eq!(chunker.bytes_read(), data.len() as u64);
    }

    #[test]
    fn empty_and_tiny_inputs() {
        let p = ChunkerParams::DEFAULT;
        assert!(chunk_lengths(b"", p).is_empty());
        assert_eq!(chunk_lengths(b"abc", p), vec![3]);
    }

    #[test]
    fn default_params_are_valid() {
        ChunkerParams::DEFAULT.validate().unwrap();
        let bad = ChunkerParams {
            min_bytes: 1,
            avg_bytes: 2,
            max_bytes: 3,
        };
        assert!(bad.validate().is_err());
    }
}
