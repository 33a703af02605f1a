//! Content-defined chunking: FastCDC (2020) from the `fastcdc` crate.
//!
//! The parameters are fixed per store and recorded in the catalog: changing
//! them moves every cut point and breaks dedup against older snapshots.
//! Stores made since catalog version 4 also record [`LargeFileTiers`]: files
//! from a size up are cut with larger chunks (fewer catalog rows per byte);
//! which parameters cut a file is decided once per read, from the size
//! `fstat` gave before reading ([`LargeFileTiers::params_for`]).
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

/// Default read buffer: 16 maximum-size chunks of the base parameters, 4
/// of the first default tier; it grows to two maximum-size chunks (8 MiB)
/// for a file cut with 4 MiB maxima.
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

/// Files of at least `from_bytes` (as `fstat` gave the size before the
/// file is read) are cut with `params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkTier {
    pub from_bytes: u64,
    pub params: ChunkerParams,
}

/// Most tiers a store may record (besides its base parameters).
pub const MAX_TIERS: usize = 2;
/// Largest maximum chunk a tier may set (FastCDC allows 16 MiB): bounds
/// what the snapshot writer's queue holds (`snapshot/writer.rs`).
pub const MAX_TIER_CHUNK_BYTES: u32 = 4 << 20;

/// Version of the text in `meta.chunker_tiers` ([`LargeFileTiers::encode`]).
/// Version 1 (issue 18): `1:<from>=<min>/<avg>/<max>[,…]`, decimal bytes.
pub const TIERS_VERSION: u32 = 1;

/// Larger chunks for larger files: the tiers a store cuts with above its
/// base [`ChunkerParams`]. Empty for every store made before catalog
/// version 4 (and for `init --chunk-tiers none`): every file is then cut
/// with the base parameters, exactly as before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LargeFileTiers {
    tiers: [ChunkTier; MAX_TIERS],
    len: u8,
}

const NO_TIER: ChunkTier = ChunkTier {
    from_bytes: 0,
    params: ChunkerParams::DEFAULT,
};

impl LargeFileTiers {
    /// No tiers: every file is cut with the base parameters.
    pub const NONE: LargeFileTiers = LargeFileTiers {
        tiers: [NO_TIER; MAX_TIERS],
        len: 0,
    };

    /// What `init` records: files from 256 MiB cut into 256 KiB-average
    /// chunks, from 4 GiB into 1 MiB-average ones. Chosen by measurement:
    /// see `docs/FORMAT.md` ("Chunk tiers") and `benches/bigfile/run.sh`.
    pub const DEFAULT: LargeFileTiers = LargeFileTiers {
        tiers: [
            ChunkTier {
                from_bytes: 256 << 20,
                params: ChunkerParams {
                    min_bytes: 64 * 1024,
                    avg_bytes: 256 * 1024,
                    max_bytes: 1024 * 1024,
                },
            },
            ChunkTier {
                from_bytes: 4 << 30,
                params: ChunkerParams {
                    min_bytes: 256 * 1024,
                    avg_bytes: 1024 * 1024,
                    max_bytes: 4 * 1024 * 1024,
                },
            },
        ],
        len: 2,
    };

    /// Tiers in increasing `from_bytes`; checked against `base` by
    /// [`LargeFileTiers::validate`].
    pub fn new(tiers: &[ChunkTier]) -> Result<LargeFileTiers> {
        if tiers.len() > MAX_TIERS {
            return Err(Error::invalid(
                "chunk tiers",
                format!("{} tiers; at most {MAX_TIERS}", tiers.len()),
            ));
        }
        let mut t = LargeFileTiers::NONE;
        t.tiers[..tiers.len()].copy_from_slice(tiers);
        t.len = tiers.len() as u8;
        Ok(t)
    }

    pub fn tiers(&self) -> &[ChunkTier] {
        &self.tiers[..self.len as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each tier's parameters valid with a maximum of at most
    /// [`MAX_TIER_CHUNK_BYTES`], sizes strictly increasing, and each tier's
    /// average chunk larger than the one below (`base` first).
    pub fn validate(&self, base: &ChunkerParams) -> Result<()> {
        let mut below = (0u64, *base);
        for t in self.tiers() {
            t.params.validate()?;
            if t.from_bytes <= below.0
                || t.params.avg_bytes <= below.1.avg_bytes
                || t.params.max_bytes > MAX_TIER_CHUNK_BYTES
            {
                return Err(Error::invalid(
                    "chunk tiers",
                    format!("tier {t:?} does not grow over {below:?}"),
                ));
            }
            below = (t.from_bytes, t.params);
        }
        Ok(())
    }

    /// The parameters that cut a file of `size` bytes.
    pub fn params_for(&self, base: ChunkerParams, size: u64) -> ChunkerParams {
        self.tiers()
            .iter()
            .rev()
            .find(|t| size >= t.from_bytes)
            .map_or(base, |t| t.params)
    }

    /// The text kept in `meta.chunker_tiers` (see [`TIERS_VERSION`]).
    pub fn encode(&self) -> String {
        let tiers: Vec<String> = self
            .tiers()
            .iter()
            .map(|t| {
                let p = t.params;
                format!(
                    "{}={}/{}/{}",
                    t.from_bytes, p.min_bytes, p.avg_bytes, p.max_bytes
                )
            })
            .collect();
        format!("{TIERS_VERSION}:{}", tiers.join(","))
    }

    /// Parse [`LargeFileTiers::encode`]'s text: only its canonical form
    /// (at least one tier), checked against `base`. Never panics.
    pub fn decode(text: &str, base: &ChunkerParams) -> Result<LargeFileTiers> {
        let bad = |why: &str| Error::invalid("chunk tiers", format!("{why} in {text:?}"));
        let (version, body) = text.split_once(':').ok_or_else(|| bad("no version"))?;
        if version != TIERS_VERSION.to_string() {
            return Err(bad("unknown version"));
        }
        let mut tiers = Vec::new();
        for tier in body.split(',') {
            let (from, sizes) = tier.split_once('=').ok_or_else(|| bad("no '='"))?;
            let n: Vec<&str> = sizes.split('/').collect();
            let [min, avg, max] = n[..] else {
                return Err(bad("not min/avg/max"));
            };
            let u32_of = |s: &str| s.parse::<u32>().map_err(|_| bad("not a number"));
            tiers.push(ChunkTier {
                from_bytes: from.parse().map_err(|_| bad("not a number"))?,
                params: ChunkerParams {
                    min_bytes: u32_of(min)?,
                    avg_bytes: u32_of(avg)?,
                    max_bytes: u32_of(max)?,
                },
            });
            if tiers.len() > MAX_TIERS {
                return Err(bad("too many tiers"));
            }
        }
        let t = LargeFileTiers::new(&tiers)?;
        t.validate(base)?;
        if t.encode() != text {
            return Err(bad("not in canonical form"));
        }
        Ok(t)
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
    fn default_tiers_are_valid_and_pick_by_size() {
        let base = ChunkerParams::DEFAULT;
        let t = LargeFileTiers::DEFAULT;
        t.validate(&base).unwrap();
        let [big, huge] = t.tiers() else {
            panic!("{t:?}")
        };
        assert_eq!(t.params_for(base, big.from_bytes - 1), base);
        assert_eq!(t.params_for(base, big.from_bytes), big.params);
        assert_eq!(t.params_for(base, huge.from_bytes - 1), big.params);
        assert_eq!(t.params_for(base, huge.from_bytes), huge.params);
        assert_eq!(t.params_for(base, u64::MAX), huge.params);
        assert_eq!(LargeFileTiers::NONE.params_for(base, u64::MAX), base);
        let text = t.encode();
        assert_eq!(
            text,
            "1:268435456=65536/262144/1048576,4294967296=262144/1048576/4194304"
        );
        assert_eq!(LargeFileTiers::decode(&text, &base).unwrap(), t);
    }

    #[test]
    fn tiers_decode_refuses_what_encode_never_writes() {
        let base = ChunkerParams::DEFAULT;
        for bad in [
            "",
            "1:",
            "2:268435456=65536/262144/1048576",
            "1:268435456=65536/262144",
            "1:+268435456=65536/262144/1048576",
            "1:268435456=65536/262144/1048576,",
            "1:0=65536/262144/1048576",
            "1:268435456=8192/32768/131072",
            "1:268435456=65536/262144/1048576,1000=65536/1048576/4194304",
            "1:1=65536/131072/1048576,2=65536/262144/1048576,3=65536/524288/1048576",
            "1:268435456=1/2/3",
            "1:268435456=262144/1048576/8388608",
        ] {
            assert!(LargeFileTiers::decode(bad, &base).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn tiers_round_trip(
            froms in proptest::collection::vec(1u64..u64::MAX / 4, 0..=MAX_TIERS),
            shifts in proptest::collection::vec(0u32..2, MAX_TIERS),
        ) {
            let base = ChunkerParams::DEFAULT;
            let mut froms = froms;
            froms.sort_unstable();
            froms.dedup();
            let mut avg = base.avg_bytes;
            let tiers: Vec<ChunkTier> = froms.iter().zip(&shifts).map(|(&from_bytes, &s)| {
                avg <<= s + 1;
                ChunkTier { from_bytes, params: ChunkerParams {
                    min_bytes: avg / 4, avg_bytes: avg, max_bytes: (avg * 4).min(MAX_TIER_CHUNK_BYTES),
                } }
            }).collect();
            let t = LargeFileTiers::new(&tiers).unwrap();
            t.validate(&base).unwrap();
            if !t.is_empty() {
                proptest::prop_assert_eq!(LargeFileTiers::decode(&t.encode(), &base).unwrap(), t);
            }
        }
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
