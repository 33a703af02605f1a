//! The blob index at large-data scale (issue #18, "Large data"): catalog
//! size per blob, the rate of indexing new chunks, and the rate of "is this
//! chunk already stored?" lookups, at up to 100 M blobs.
//!
//! Run: `nice cargo bench --bench blob_scale` (not part of `cargo test`).
//! `BLOB_SCALE_N=2000000` makes a small catalog for a quick check. The
//! catalog lives in `target/bench-data/blob-scale/` (deleted at the end
//! unless `BLOB_SCALE_KEEP=1`); at 100 M blobs it needs ~12 GB of disk.
//!
//! The catalog is a real one (`Catalog::create`, the store's own schema)
//! holding synthetic packs of 1,000 chunks each (a 32 MiB pack of 32 KiB
//! average chunks). Chunk ids are BLAKE3 hashes of a counter, so they are
//! as random as real ones and inserts land all over the `hash` index as a
//! real first snapshot's do. No pack files are written: this measures the
//! catalog alone. The bulk of the rows is written with the same INSERT
//! statements as `Catalog::insert_pack` but in transactions of 10 M rows
//! with a large page cache and without fsync (filling 100 M rows one durable pack at a time would take
//! hours); the insert rate is then measured through `insert_pack` itself,
//! one durable transaction per pack as in a snapshot, over
//! `INSERT_WINDOW` blobs at each checkpoint.
//!
//! At each checkpoint (1 M, 3 M, 10 M, 30 M, 100 M blobs) it prints:
//! catalog bytes per blob, the `insert_pack` rate in blobs per second, and `Catalog::has_blob` lookups per second for ids that are stored
//! (a re-snapshot of unchanged data) and ids that are not (new data), each
//! with the catalog's pages in the page cache (warm) and evicted from it
//! (cold: `posix_fadvise(DONTNEED)` on the catalog files, so each lookup
//! reads the B-tree pages it needs from the disk, as it would once the
//! catalog outgrows RAM).

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use wsnap::catalog::Catalog;
use wsnap::pack::format::{BlobKind, Compression, RecordHeader};
use wsnap::pack::SealedPack;
use wsnap::{Id, PackId, StoreParams};

const CHUNKS_PER_PACK: u64 = 1_000;
const AVG_CHUNK: u64 = 32 * 1024;
const LOOKUPS: u64 = 100_000;
const COLD_LOOKUPS: u64 = 5_000;
const INSERT_WINDOW: u64 = 100_000;
const BULK_TX: u64 = 10_000_000;

fn chunk_id(n: u64) -> Id {
    Id(*blake3::hash(&n.to_le_bytes()).as_bytes())
}

fn pack(p: u64) -> SealedPack {
    let records = (0..CHUNKS_PER_PACK)
        .map(|i| {
            let header = RecordHeader {
                kind: BlobKind::Chunk,
                compression: Compression::Zstd,
                raw_len: AVG_CHUNK as u32,
                stored_len: (AVG_CHUNK / 2) as u32,
                id: chunk_id(p * CHUNKS_PER_PACK + i),
            };
            (16 + i * (AVG_CHUNK / 2 + 48), header)
        })
        .collect();
    SealedPack {
        id: PackId(Id(*blake3::hash(format!("pack {p}").as_bytes()).as_bytes())),
        size_bytes: CHUNKS_PER_PACK * (AVG_CHUNK / 2 + 48),
        records,
    }
}

/// Add packs until `packs` holds `until` blobs: `insert_pack`'s statements,
/// big transactions, no fsync.
fn bulk_fill(path: &Path, packs: &mut u64, until: u64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    // A 6 GiB page cache: the random inserts into the `hash` index then
    // stay in memory until the commit instead of spilling to the WAL.
    conn.pragma_update(None, "cache_size", -6_000_000).unwrap();
    while *packs * CHUNKS_PER_PACK < until {
        let tx = conn.transaction().unwrap();
        {
            let mut pack_ins = tx
                .prepare("INSERT INTO packs (pack_hash, size_bytes, record_count, created_ns) VALUES (?1, ?2, ?3, 0)")
                .unwrap();
            let mut blob_ins = tx
                .prepare(
                    "INSERT OR IGNORE INTO blobs (hash, kind, pack_id, offset, stored_len, raw_len)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .unwrap();
            let end = (*packs + BULK_TX / CHUNKS_PER_PACK).min(until.div_ceil(CHUNKS_PER_PACK));
            while *packs < end {
                let p = pack(*packs);
                pack_ins
                    .execute(rusqlite::params![
                        &p.id.0 .0[..],
                        p.size_bytes as i64,
                        p.records.len() as i64
                    ])
                    .unwrap();
                let row = tx.last_insert_rowid();
                for (offset, h) in &p.records {
                    blob_ins
                        .execute(rusqlite::params![
                            &h.id.0[..],
                            h.kind as u8,
                            row,
                            *offset as i64,
                            h.stored_len,
                            h.raw_len
                        ])
                        .unwrap();
                }
                *packs += 1;
            }
        }
        tx.commit().unwrap();
    }
}

fn catalog_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Evict the catalog's pages from the page cache.
fn evict(dir: &Path) {
    for e in fs::read_dir(dir).unwrap() {
        let f = File::open(e.unwrap().path()).unwrap();
        // SAFETY: a valid open fd; advice only.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
}

/// `has_blob` lookups per second over `count` ids from `id_of`.
fn lookup_rate(cat: &Catalog, count: u64, expect: bool, id_of: impl Fn(u64) -> Id) -> f64 {
    let start = Instant::now();
    for i in 0..count {
        assert_eq!(cat.has_blob(&id_of(i)).unwrap(), expect);
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let target: u64 = std::env::var("BLOB_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/blob-scale");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("catalog.sqlite");
    Catalog::create(&path, &StoreParams::DEFAULT, 0).unwrap();
    let mut cat = Catalog::open(&path, true).unwrap();

    let mut checkpoints: Vec<u64> = [1, 3, 10, 30, 100, 300]
        .iter()
        .map(|m| m * 1_000_000)
        .filter(|&n| n < target)
        .collect();
    checkpoints.push(target);

    println!("blobs\tcat_bytes/blob\tinsert/s\thit/s warm\tmiss/s warm\thit/s cold\tmiss/s cold");
    let mut packs = 0u64;
    for &n in &checkpoints {
        drop(cat);
        bulk_fill(&path, &mut packs, n.saturating_sub(INSERT_WINDOW));
        cat = Catalog::open(&path, true).unwrap();
        let window = Instant::now();
        let window_start = packs * CHUNKS_PER_PACK;
        while packs * CHUNKS_PER_PACK < n {
            cat.insert_pack(&pack(packs), 0).unwrap();
            packs += 1;
        }
        let stored = packs * CHUNKS_PER_PACK;
        let insert_rate = (stored - window_start) as f64 / window.elapsed().as_secs_f64();
        drop(cat);
        // Reopen: checkpoints the WAL, so the size is the catalog's own.
        cat = Catalog::open(&path, true).unwrap();
        let per_blob = catalog_bytes(&dir) as f64 / stored as f64;
        // Spread over the whole key range: every i-th stored id, and ids
        // past the last one.
        let step = stored / LOOKUPS;
        let hit = |i: u64| chunk_id(i * step);
        let miss = |i: u64| chunk_id(u64::MAX - i);
        let _ = lookup_rate(&cat, LOOKUPS, true, hit); // warm the cache
        let hit_warm = lookup_rate(&cat, LOOKUPS, true, hit);
        let miss_warm = lookup_rate(&cat, LOOKUPS, false, miss);
        let cold_step = stored / COLD_LOOKUPS;
        drop(cat);
        evict(&dir);
        cat = Catalog::open(&path, true).unwrap();
        let hit_cold = lookup_rate(&cat, COLD_LOOKUPS, true, |i| chunk_id(i * cold_step + 1));
        drop(cat);
        evict(&dir);
        cat = Catalog::open(&path, true).unwrap();
        let miss_cold = lookup_rate(&cat, COLD_LOOKUPS, false, |i| chunk_id(u64::MAX / 2 - i));
        println!(
            "{stored}\t{per_blob:.1}\t{insert_rate:.0}\t{hit_warm:.0}\t{miss_warm:.0}\t{hit_cold:.0}\t{miss_cold:.0}"
        );
    }
    drop(cat);
    if std::env::var_os("BLOB_SCALE_KEEP").is_none() {
        fs::remove_dir_all(&dir).unwrap();
    }
}
