//! Chunker parameter study: what each FastCDC size triple costs and buys.
//!
//! Run: `cargo bench --bench chunk_params` (prints a Markdown table).
//!
//! For each candidate (min, avg, max) it stores a seeded synthetic corpus
//! once, then applies the edits research workspaces see, and counts what a
//! content-addressed store would add: the zstd-3 bytes of chunks not seen
//! before, plus a fixed per-chunk metadata cost (48 B pack record header,
//! ~120 B catalog row and index entry, 32 B id in the tree). Edits:
//! - 100-byte overwrites inside a 64 MiB mixed binary file (in-place edit);
//! - 100-byte insertions in the same file (shifts everything after);
//! - 4 KiB appended to a 2 MiB log;
//! - one changed line in each of 200 text/CSV files of 2–300 KiB.
//!
//! Throughput is chunk + BLAKE3 over the corpus, single thread.

use std::collections::HashSet;
use std::time::Instant;

use wsnap::chunker::{chunk_lengths, ChunkerParams};
use wsnap::Id;

const META_BYTES_PER_CHUNK: u64 = 48 + 120 + 32;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mixed_binary(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let run = 4096 + rng.below(60_000);
        match rng.below(3) {
            0 => (0..run).for_each(|_| v.push(rng.next() as u8)), // random
            1 => (0..run).for_each(|i| v.push((i as u64 * 31 % 251) as u8)), // structured
            _ => {
                // float-like text
                while v.len() < n && run > 0 {
                    let s = format!("{:.6},", (rng.next() % 1_000_000) as f64 / 7.0);
                    v.extend_from_slice(s.as_bytes());
                    if s.len() > run {
                        break;
                    }
                    if v.len() % run < s.len() {
                        break;
                    }
                }
            }
        }
    }
    v.truncate(n);
    v
}

fn text_file(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 100);
    let mut line = 0;
    while v.len() < n {
        line += 1;
        let s = format!(
            "row{line},{},{:.4},{}\n",
            rng.below(1000),
            (rng.next() % 100_000) as f64 / 3.0,
            ["alpha", "beta", "gamma", "delta"][rng.below(4)]
        );
        v.extend_from_slice(s.as_bytes());
    }
    v
}

struct Store {
    params: ChunkerParams,
    seen: HashSet<Id>,
    chunks: u64,
}

impl Store {
    /// Store `data`; returns (new compressed bytes, new chunks).
    fn put(&mut self, data: &[u8]) -> (u64, u64) {
        let mut added = 0;
        let mut new = 0;
        let mut pos = 0;
        for len in chunk_lengths(data, self.params) {
            let c = &data[pos..pos + len];
            pos += len;
            self.chunks += 1;
            if self.seen.insert(Id::of(c)) {
                added += zstd::bulk::compress(c, 3)
                    .map(|z| z.len().min(c.len()))
                    .unwrap() as u64;
                new += 1;
            }
        }
        (added, new)
    }
}

fn main() {
    let candidates = [
        (4, 16, 64),
        (8, 32, 128),
        (16, 64, 256),
        (32, 128, 512),
        (64, 256, 1024),
        (512, 1024, 8192),
    ];
    println!("| min/avg/max KiB | initial store MiB | chunks | overwrite KiB/edit | insert KiB/edit | log append KiB/tick | small-file edit KiB/file | chunk+hash MB/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (min, avg, max) in candidates {
        let params = ChunkerParams {
            min_bytes: min * 1024,
            avg_bytes: avg * 1024,
            max_bytes: max * 1024,
        };
        let mut rng = Rng(0x5eed);
        let big = mixed_binary(&mut rng, 64 << 20);
        let log = text_file(&mut rng, 2 << 20);
        let smalls: Vec<Vec<u8>> = (0..200)
            .map(|_| {
                let n = 2048 + rng.below(300 * 1024);
                text_file(&mut rng, n)
            })
            .collect();
        let mut s = Store {
            params,
            seen: HashSet::new(),
            chunks: 0,
        };
        let t0 = Instant::now();
        let mut initial = 0;
        let mut initial_chunks = 0;
        for d in std::iter::once(&big)
            .chain(std::iter::once(&log))
            .chain(smalls.iter())
        {
            let (b, n) = s.put(d);
            initial += b + n * META_BYTES_PER_CHUNK;
            initial_chunks += n;
        }
        let total_bytes = big.len() + log.len() + smalls.iter().map(Vec::len).sum::<usize>();
        // Throughput: chunk + hash only (no compression), measured separately.
        let t1 = Instant::now();
        let mut h = 0u64;
        for d in std::iter::once(&big).chain(smalls.iter()) {
            let mut pos = 0;
            for len in chunk_lengths(d, params) {
                h ^= Id::of(&d[pos..pos + len]).0[0] as u64;
                pos += len;
            }
        }
        let hashed = big.len() + smalls.iter().map(Vec::len).sum::<usize>();
        let mbps = hashed as f64 / t1.elapsed().as_secs_f64() / 1e6;
        let _ = (t0, h);

        let edits = 20;
        let mut cur = big.clone();
        let mut over = 0;
        for _ in 0..edits {
            let at = rng.below(cur.len() - 100);
            for b in &mut cur[at..at + 100] {
                *b = rng.next() as u8;
            }
            let (b, n) = s.put(&cur);
            over += b + n * META_BYTES_PER_CHUNK;
        }
        let mut ins = 0;
        for _ in 0..edits {
            let at = rng.below(cur.len());
            let patch: Vec<u8> = (0..100).map(|_| rng.next() as u8).collect();
            cur.splice(at..at, patch);
            let (b, n) = s.put(&cur);
            ins += b + n * META_BYTES_PER_CHUNK;
        }
        let mut log_cur = log.clone();
        let mut app = 0;
        for _ in 0..edits {
            log_cur.extend_from_slice(&text_file(&mut rng, 4096));
            let (b, n) = s.put(&log_cur);
            app += b + n * META_BYTES_PER_CHUNK;
        }
        let mut small_cost = 0;
        for f in &smalls {
            let mut f = f.clone();
            let at = rng.below(f.len() - 20);
            f[at..at + 8].copy_from_slice(b"EDITED!!");
            let (b, n) = s.put(&f);
            small_cost += b + n * META_BYTES_PER_CHUNK;
        }
        println!(
            "| {min}/{avg}/{max} | {:.1} (of {:.1} raw) | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
            initial as f64 / 1048576.0,
            total_bytes as f64 / 1048576.0,
            initial_chunks,
            over as f64 / 1024.0 / edits as f64,
            ins as f64 / 1024.0 / edits as f64,
            app as f64 / 1024.0 / edits as f64,
            small_cost as f64 / 1024.0 / smalls.len() as f64,
            mbps
        );
    }
}
