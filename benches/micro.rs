//! Microbenchmarks against their physical floors (issue #4, section 2).
//!
//! Run: `nice cargo bench --bench micro` (17 minutes on the 2-core dev
//! machine at load 13 the first time, of which ~4 building the cached data
//! under `target/bench-data/`; later runs reuse it). A filter runs one group:
//! `cargo bench --bench micro -- catalog_lookup`. Groups:
//!
//! - `chunk_hash`: FastCDC + BLAKE3 over a seeded 64 MiB mixed buffer, as
//!   the snapshot pipeline does it (one thread, and batches hashed with
//!   rayon), against BLAKE3 alone in-process and `b3sum` on the same bytes
//!   in a file (page cache warm);
//! - `zstd_csv`, `zstd_floats`: `pack::format::compress` (what wsnap stores)
//!   chunk by chunk at levels 1, 3, 6, 9, 19, against `zstd -b<level> -B32K`
//!   (independent 32 KiB blocks: the same job) on the same bytes;
//! - `catalog_lookup`: `Catalog::has_blob` through a `CatalogPool`, the
//!   pipeline's "is this chunk stored?", in a catalog of 10,000,000 blobs;
//! - `no_change_100k`: `snapshot::run` over 100,000 unchanged files (10
//!   workspaces) against a serial readdir + lstat walk and `find -printf`;
//! - `restore_256m`: `restore::restore` of a 256 MiB workspace against
//!   `cat` of the same files and `cp -a` of the tree.
//!
//! After the groups it prints (and writes to
//! `target/bench-micro/summary.md`) each figure as a ratio to its floor
//! measured in the same run. Under `cargo test --benches` (no `--bench`
//! argument) it does nothing.

mod corpus;

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{black_box, BenchmarkGroup, Criterion, Throughput};
use rayon::prelude::*;
use rusqlite::{params, Connection};

use corpus::Rng;
use wsnap::catalog::CatalogPool;
use wsnap::chunker::{chunk_lengths, ChunkerParams, StreamChunker};
use wsnap::pack::format;
use wsnap::restore::{self, RestoreOptions};
use wsnap::select::{self, Selector};
use wsnap::snapshot::{self, SnapshotOptions};
use wsnap::{Id, Store, TimeSpec, WorkspaceName};

const MIB: usize = 1 << 20;
const LEVELS: [i32; 5] = [1, 3, 6, 9, 19];
const LOOKUP_BLOBS: u64 = 10_000_000;
const LOOKUPS_PER_ITER: u64 = 20_000;

/// One figure of the summary: a criterion bench id and its unit size.
struct Figure {
    group: String,
    id: String,
    /// Bytes or elements per iteration.
    per_iter: f64,
    unit: &'static str,
}

/// A comparison for the summary: `wsnap` over `floor`.
struct Ratio {
    what: String,
    wsnap: String,
    floor: String,
}

#[derive(Default)]
struct Report {
    figures: Vec<Figure>,
    ratios: Vec<Ratio>,
    notes: Vec<String>,
}

impl Report {
    fn figure(&mut self, group: &str, id: &str, per_iter: f64, unit: &'static str) {
        self.figures.push(Figure {
            group: group.into(),
            id: id.into(),
            per_iter,
            unit,
        });
    }
    fn ratio(&mut self, what: &str, group: &str, wsnap: &str, floor: &str) {
        self.ratios.push(Ratio {
            what: what.into(),
            wsnap: format!("{group}/{wsnap}"),
            floor: format!("{group}/{floor}"),
        });
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("micro: benchmarks run only under `cargo bench --bench micro`");
        return;
    }
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let wants = |group: &str| {
        filter
            .as_deref()
            .is_none_or(|f| group.contains(f) || f.contains(group))
    };

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut report = Report::default();
    let load_before = corpus::load_average();
    let out = corpus::target_dir().join("bench-micro");
    fs::create_dir_all(&out).expect("creating target/bench-micro");

    if wants("chunk_hash") {
        chunk_hash(&mut c, &mut report, &out);
    }
    for (name, gen) in [
        (
            "zstd_csv",
            corpus::csv_text as fn(&mut Rng, usize) -> Vec<u8>,
        ),
        ("zstd_floats", corpus::float_array),
    ] {
        if wants(name) {
            compression(&mut c, &mut report, &out, name, gen);
        }
    }
    if wants("catalog_lookup") {
        catalog_lookup(&mut c, &mut report);
    }
    if wants("no_change_100k") {
        no_change(&mut c, &mut report);
    }
    if wants("restore_256m") {
        restore_bench(&mut c, &mut report);
    }
    c.final_summary();
    summary(&report, &out, &load_before);
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    t: Throughput,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(t);
    g
}

/// Time an external command; panics with its stderr if it fails.
fn run_cmd(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let o = cmd.output().expect("starting a floor command");
    let d = t.elapsed();
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    d
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

// ---------------------------------------------------------------- chunk_hash

fn chunk_hash(c: &mut Criterion, report: &mut Report, out: &Path) {
    let data = corpus::mixed(&mut Rng::new(0x5eed), 64 * MIB);
    let file = out.join("mixed-64m.bin");
    corpus::write_file(&file, &data);
    let n = data.len() as u64;
    let params = ChunkerParams::DEFAULT;
    let name = "chunk_hash";
    let mut g = group(c, name, Throughput::Bytes(n));
    g.bench_function("wsnap_chunk_blake3_1thread", |b| {
        b.iter(|| {
            let mut pos = 0;
            let mut x = 0u8;
            for len in chunk_lengths(&data, params) {
                x ^= Id::of(&data[pos..pos + len]).0[0];
                pos += len;
            }
            black_box(x)
        })
    });
    g.bench_function("wsnap_chunk_blake3_rayon", |b| {
        // As `snapshot::pipeline::store_file`: a bounded buffer, each
        // batch's chunks hashed in parallel.
        b.iter(|| {
            let mut chunker = StreamChunker::new(&data[..], params, data.len() + 1);
            let mut cuts = Vec::new();
            let mut x = 0u8;
            while let Some(buf) = chunker.next_batch(&mut cuts).expect("in memory") {
                let ids: Vec<Id> = cuts.par_iter().map(|r| Id::of(&buf[r.clone()])).collect();
                x ^= ids.iter().fold(0, |a, id| a ^ id.0[0]);
            }
            black_box(x)
        })
    });
    g.bench_function("blake3_only_1thread", |b| {
        b.iter(|| black_box(blake3::hash(&data)))
    });
    g.bench_function("fastcdc_only_1thread", |b| {
        b.iter(|| black_box(chunk_lengths(&data, params).len()))
    });
    g.bench_function("b3sum_file", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run_cmd(Command::new("b3sum").arg(&file)))
                .sum()
        })
    });
    g.bench_function("b3sum_file_1thread", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run_cmd(
                        Command::new("b3sum")
                            .args(["--num-threads", "1"])
                            .arg(&file),
                    )
                })
                .sum()
        })
    });
    g.bench_function("cat_file", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run_cmd(&mut sh(&format!("cat '{}' > /dev/null", file.display()))))
                .sum()
        })
    });
    g.finish();
    for id in [
        "wsnap_chunk_blake3_1thread",
        "wsnap_chunk_blake3_rayon",
        "blake3_only_1thread",
        "fastcdc_only_1thread",
        "b3sum_file",
        "b3sum_file_1thread",
        "cat_file",
    ] {
        report.figure(name, id, n as f64, "MB/s");
    }
    report.ratio(
        "chunk+hash, 1 thread / b3sum 1 thread",
        name,
        "wsnap_chunk_blake3_1thread",
        "b3sum_file_1thread",
    );
    report.ratio(
        "chunk+hash, rayon / b3sum (all threads)",
        name,
        "wsnap_chunk_blake3_rayon",
        "b3sum_file",
    );
    report.ratio(
        "chunk+hash, 1 thread / BLAKE3 alone in-process",
        name,
        "wsnap_chunk_blake3_1thread",
        "blake3_only_1thread",
    );
}

// --------------------------------------------------------------- compression

fn compression(
    c: &mut Criterion,
    report: &mut Report,
    out: &Path,
    name: &str,
    gen: fn(&mut Rng, usize) -> Vec<u8>,
) {
    let data = gen(&mut Rng::new(0xc0ffee), 4 * MIB);
    let file = out.join(format!("{name}.bin"));
    corpus::write_file(&file, &data);
    // Chunks as the store cuts them: compression is per chunk.
    let mut chunks = Vec::new();
    let mut pos = 0;
    for len in chunk_lengths(&data, ChunkerParams::DEFAULT) {
        chunks.push(&data[pos..pos + len]);
        pos += len;
    }
    let n = data.len() as u64;
    let mut g = group(c, name, Throughput::Bytes(n));
    for level in LEVELS {
        let stored: usize = chunks
            .iter()
            .map(|ch| format::compress(ch, level).1.len())
            .sum();
        let ratio = data.len() as f64 / stored as f64;
        g.bench_function(format!("wsnap_L{level}"), |b| {
            b.iter(|| {
                let mut s = 0;
                for ch in &chunks {
                    s += format::compress(ch, level).1.len();
                }
                black_box(s)
            })
        });
        report.figure(name, &format!("wsnap_L{level}"), n as f64, "MB/s");
        let (zratio, zc, zd) = zstd_bench(&file, level);
        report.notes.push(format!(
            "{name} level {level}: wsnap ratio {ratio:.3} ({} chunks of avg {:.1} KiB); \
             `zstd -b{level} -B32K` ratio {zratio:.3}, compress {zc:.1} MB/s, decompress {zd:.1} MB/s",
            chunks.len(),
            data.len() as f64 / chunks.len() as f64 / 1024.0
        ));
        report.ratios.push(Ratio {
            what: format!("{name} L{level} / zstd -b{level} -B32K"),
            wsnap: format!("{name}/wsnap_L{level}"),
            floor: format!("mbps:{zc}"),
        });
    }
    g.finish();
}

/// `zstd -b<level> -B32K -i1 file`: (ratio, compress MB/s, decompress MB/s),
/// the best of its iterations as zstd reports them.
fn zstd_bench(file: &Path, level: i32) -> (f64, f64, f64) {
    let o = Command::new("zstd")
        .arg(format!("-b{level}"))
        .args(["-B32K", "-i1"])
        .arg(file)
        .output()
        .expect("running zstd -b (is zstd installed?)");
    let text = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    let (mut ratio, mut cs, mut ds) = (0.0f64, 0.0f64, 0.0f64);
    for seg in text.split(['\r', '\n']) {
        if let Some(r) = seg.split("(x").nth(1).and_then(|s| s.split(')').next()) {
            ratio = r.trim().parse().unwrap_or(ratio);
        }
        let speeds: Vec<f64> = seg
            .split("MB/s")
            .filter_map(|p| p.rsplit([' ', ',']).find(|w| !w.is_empty())?.parse().ok())
            .collect();
        if let Some(&s) = speeds.first() {
            cs = cs.max(s);
        }
        if let Some(&s) = speeds.get(1) {
            ds = ds.max(s);
        }
    }
    (ratio, cs, ds)
}

// ------------------------------------------------------------ catalog_lookup

fn lookup_hash(i: u64) -> [u8; 32] {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

/// A store whose catalog indexes `LOOKUP_BLOBS` chunk rows (ids = BLAKE3 of
/// the row number), inserted by SQL into a catalog made by `Store::init`.
/// The rows point at one pack row with no file: lookups only, never read.
fn lookup_store() -> PathBuf {
    let dir = corpus::data_dir("catalog-10m");
    corpus::cached(&dir, "catalog with 10 M blobs", |dir| {
        let store = dir.join("store");
        Store::init(&store).expect("Store::init");
        let mut conn = Connection::open(store.join("catalog.sqlite")).expect("open catalog");
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;",
        )
        .expect("pragmas");
        let tx = conn.transaction().expect("begin");
        tx.execute(
            "INSERT INTO packs (pack_hash, size_bytes, record_count, created_ns) VALUES (?1, ?2, ?3, 0)",
            params![&[0xeeu8; 32][..], (16 + 56 * LOOKUP_BLOBS + 48) as i64, LOOKUP_BLOBS as i64],
        )
        .expect("pack row");
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO blobs (hash, kind, pack_id, offset, stored_len, raw_len)
                     VALUES (?1, 1, 1, ?2, 8, 8)",
                )
                .expect("prepare");
            for i in 0..LOOKUP_BLOBS {
                ins.execute(params![&lookup_hash(i)[..], (16 + 56 * i) as i64])
                    .expect("insert blob");
            }
        }
        tx.commit().expect("commit");
        conn.execute_batch("PRAGMA journal_mode = WAL;")
            .expect("back to WAL");
    });
    dir.join("store")
}

fn catalog_lookup(c: &mut Criterion, report: &mut Report) {
    let store_dir = lookup_store();
    let store = Store::open(&store_dir).expect("open lookup store");
    let pool = CatalogPool::new(&store.catalog_path());
    let mut rng = Rng::new(42);
    let existing: Vec<Id> = (0..LOOKUPS_PER_ITER)
        .map(|_| Id(lookup_hash(rng.next() % LOOKUP_BLOBS)))
        .collect();
    let missing: Vec<Id> = (0..LOOKUPS_PER_ITER)
        .map(|_| Id(lookup_hash(LOOKUP_BLOBS + rng.next() % LOOKUP_BLOBS)))
        .collect();
    // Sanity: the catalog answers what we think it holds.
    assert!(pool.with(|c| c.has_blob(&existing[0])).unwrap());
    assert!(!pool.with(|c| c.has_blob(&missing[0])).unwrap());
    // Warm the page cache with one pass (the steady state of a tick).
    for id in existing.iter().chain(&missing) {
        black_box(pool.with(|c| c.has_blob(id)).unwrap());
    }
    let name = "catalog_lookup";
    let mut g = group(c, name, Throughput::Elements(LOOKUPS_PER_ITER));
    for (id, ids) in [
        ("has_blob_existing", &existing),
        ("has_blob_missing", &missing),
    ] {
        g.bench_function(id, |b| {
            b.iter(|| {
                let mut hits = 0;
                for x in ids.iter() {
                    hits += pool.with(|c| c.has_blob(x)).unwrap() as u32;
                }
                black_box(hits)
            })
        });
        report.figure(name, id, LOOKUPS_PER_ITER as f64, "lookups/s");
    }
    g.finish();
    let cat_bytes = fs::metadata(store.catalog_path()).map_or(0, |m| m.len());
    report.notes.push(format!(
        "catalog_lookup: {LOOKUP_BLOBS} blob rows, catalog.sqlite {:.0} MiB, page cache warm, one thread",
        cat_bytes as f64 / MIB as f64
    ));
}

// ------------------------------------------------------------ no_change_100k

const NC_WORKSPACES: usize = 10;
const NC_DIRS: usize = 100;
const NC_FILES: usize = 100;

fn no_change_tree() -> PathBuf {
    let dir = corpus::data_dir("tree-100k");
    corpus::cached(&dir, "100,000-file tree and its first snapshot", |dir| {
        let root = dir.join("root");
        let mut rng = Rng::new(100_000);
        let mut buf = Vec::new();
        for w in 0..NC_WORKSPACES {
            for d in 0..NC_DIRS {
                let sub = root.join(format!("user{w:02}/project/d{d:03}"));
                fs::create_dir_all(&sub).expect("mkdir");
                for f in 0..NC_FILES {
                    buf.clear();
                    let len = 100 + rng.below(1900);
                    rng.fill(&mut buf, len);
                    fs::write(sub.join(format!("f{f:03}.dat")), &buf).expect("write");
                }
            }
        }
        // Past the racy window, so the first snapshot's entries are reusable.
        std::thread::sleep(Duration::from_millis(2100));
        let store = dir.join("store");
        Store::init(&store).expect("init");
        let s = Store::open(&store).expect("open");
        let r = snapshot::run(&s, &nc_options(&root)).expect("first snapshot");
        assert!(r.all_ok());
    });
    dir
}

fn nc_options(root: &Path) -> SnapshotOptions {
    SnapshotOptions {
        root: root.to_path_buf(),
        workspaces: vec![],
        excludes: vec![],
        time_ns: None,
        lock_wait: Duration::ZERO,
        reread: false,
    }
}

/// Serial readdir + lstat of every entry, as cheap as a walk gets in Rust.
fn stat_walk(dir: &Path) -> u64 {
    let mut n = 0;
    let mut acc = 0u64;
    for e in fs::read_dir(dir).expect("readdir") {
        let e = e.expect("dirent");
        let m = e.metadata().expect("lstat"); // fstatat(AT_SYMLINK_NOFOLLOW)
        acc ^= m.size() ^ m.mtime_nsec() as u64 ^ m.ctime_nsec() as u64 ^ m.ino();
        n += 1;
        if m.is_dir() {
            n += stat_walk(&e.path());
        }
    }
    black_box(acc);
    n
}

fn no_change(c: &mut Criterion, report: &mut Report) {
    let dir = no_change_tree();
    let root = dir.join("root");
    let store = Store::open(&dir.join("store")).expect("open");
    let opts = nc_options(&root);
    let files = (NC_WORKSPACES * NC_DIRS * NC_FILES) as u64;
    // One untimed run: the steady state (stat cache from a non-racy parent).
    let r = snapshot::run(&store, &opts).expect("snapshot");
    let read: u64 = r
        .workspaces
        .iter()
        .map(|w| match &w.outcome {
            snapshot::WorkspaceOutcome::Committed { row, .. } => row.stats.bytes_read,
            snapshot::WorkspaceOutcome::Failed { reason } => panic!("{reason}"),
        })
        .sum();
    let name = "no_change_100k";
    let mut g = group(c, name, Throughput::Elements(files));
    g.bench_function("wsnap_snapshot_run", |b| {
        b.iter(|| black_box(snapshot::run(&store, &opts).expect("snapshot")))
    });
    g.bench_function("stat_walk_readdir_lstat_1thread", |b| {
        b.iter(|| black_box(stat_walk(&root)))
    });
    g.bench_function("find_printf", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run_cmd(&mut sh(&format!(
                        "find '{}' -printf '%s %T@ %C@ %i\\n' > /dev/null",
                        root.display()
                    )))
                })
                .sum()
        })
    });
    g.finish();
    for id in [
        "wsnap_snapshot_run",
        "stat_walk_readdir_lstat_1thread",
        "find_printf",
    ] {
        report.figure(name, id, files as f64, "files/s");
    }
    report.ratio(
        "no-change snapshot / find -printf",
        name,
        "wsnap_snapshot_run",
        "find_printf",
    );
    report.ratio(
        "no-change snapshot / readdir+lstat (1 thread)",
        name,
        "wsnap_snapshot_run",
        "stat_walk_readdir_lstat_1thread",
    );
    report.notes.push(format!(
        "no_change_100k: {files} files in {NC_WORKSPACES} workspaces; the untimed warm-up \
         snapshot read {read} bytes (0 = all from the stat cache); wsnap uses rayon (2 cores), \
         the walks one thread"
    ));
}

// -------------------------------------------------------------- restore_256m

fn restore_workspace() -> PathBuf {
    let dir = corpus::data_dir("restore-256m");
    corpus::cached(&dir, "256 MiB workspace and its snapshot", |dir| {
        let ws = dir.join("root/user/project");
        let mut rng = Rng::new(256);
        // 48 files of 4 MiB (CSV, float arrays, random/mixed) and 1024
        // files of 64 KiB: 256 MiB.
        for i in 0..48 {
            let data = match i % 3 {
                0 => corpus::csv_text(&mut rng, 4 * MIB),
                1 => corpus::float_array(&mut rng, 4 * MIB),
                _ => corpus::mixed(&mut rng, 4 * MIB),
            };
            corpus::write_file(&ws.join(format!("big/f{i:02}.dat")), &data);
        }
        for i in 0..1024 {
            let data = if i % 2 == 0 {
                corpus::csv_text(&mut rng, 64 * 1024)
            } else {
                corpus::mixed(&mut rng, 64 * 1024)
            };
            corpus::write_file(&ws.join(format!("small/s{:02}/f{i:04}.csv", i / 64)), &data);
        }
        let store = dir.join("store");
        Store::init(&store).expect("init");
        let s = Store::open(&store).expect("open");
        let r = snapshot::run(&s, &nc_options(&dir.join("root"))).expect("snapshot");
        assert!(r.all_ok());
    });
    dir
}

fn restore_bench(c: &mut Criterion, report: &mut Report) {
    let dir = restore_workspace();
    let src = dir.join("root/user/project");
    let store = Store::open(&dir.join("store")).expect("open");
    let ws = WorkspaceName::new(b"user", b"project").expect("name");
    let snap = select::select(
        &store.catalog_for_reading().expect("catalog"),
        &ws,
        &Selector::Time(TimeSpec::Latest),
    )
    .expect("select");
    let bytes = snap.stats.size_bytes;
    let scratch = dir.join("out");
    let _ = fs::remove_dir_all(&scratch);
    let name = "restore_256m";
    let mut g = group(c, name, Throughput::Bytes(bytes));
    g.bench_function("wsnap_restore", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let r = restore::restore(
                    &store,
                    &snap,
                    &RestoreOptions {
                        target: scratch.clone(),
                        path: None,
                        overwrite: false,
                    },
                )
                .expect("restore");
                total += t.elapsed();
                assert_eq!(r.bytes, bytes);
                fs::remove_dir_all(&scratch).expect("clean up");
            }
            total
        })
    });
    g.bench_function("cat_files", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    run_cmd(&mut sh(&format!(
                        "find '{}' -type f -print0 | xargs -0 cat > /dev/null",
                        src.display()
                    )))
                })
                .sum()
        })
    });
    g.bench_function("cp_a", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += run_cmd(Command::new("cp").arg("-a").arg(&src).arg(&scratch));
                fs::remove_dir_all(&scratch).expect("clean up");
            }
            total
        })
    });
    g.finish();
    for id in ["wsnap_restore", "cat_files", "cp_a"] {
        report.figure(name, id, bytes as f64, "MB/s");
    }
    report.ratio("restore / cat", name, "wsnap_restore", "cat_files");
    report.ratio("restore / cp -a", name, "wsnap_restore", "cp_a");
    report.notes.push(format!(
        "restore_256m: {bytes} bytes, {} files; restore verifies every chunk, does not fsync (nor does cp)",
        snap.stats.files
    ));
}

// ------------------------------------------------------------------- summary

/// Mean seconds per iteration, from criterion's `estimates.json`.
fn mean_secs(id: &str) -> Option<f64> {
    let p = corpus::target_dir()
        .join("criterion")
        .join(id)
        .join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&fs::read(p).ok()?).ok()?;
    Some(v["mean"]["point_estimate"].as_f64()? / 1e9)
}

fn rate_of(report: &Report, key: &str) -> Option<f64> {
    if let Some(mbps) = key.strip_prefix("mbps:") {
        return mbps.parse().ok();
    }
    let f = report
        .figures
        .iter()
        .find(|f| format!("{}/{}", f.group, f.id) == key)?;
    let per_sec = f.per_iter / mean_secs(key)?;
    Some(if f.unit == "MB/s" {
        per_sec / 1e6
    } else {
        per_sec
    })
}

fn summary(report: &Report, out: &Path, load_before: &str) {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "micro benchmarks, {} UTC, load before {load_before}, after {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        corpus::load_average()
    );
    let _ = writeln!(s, "\n| benchmark | mean s/iter | rate |\n|---|---:|---:|");
    for f in &report.figures {
        let key = format!("{}/{}", f.group, f.id);
        if let (Some(t), Some(r)) = (mean_secs(&key), rate_of(report, &key)) {
            let _ = writeln!(s, "| {key} | {t:.4} | {r:.1} {} |", f.unit);
        }
    }
    let _ = writeln!(
        s,
        "\n| ratio | wsnap | floor | wsnap/floor |\n|---|---:|---:|---:|"
    );
    for r in &report.ratios {
        if let (Some(a), Some(b)) = (rate_of(report, &r.wsnap), rate_of(report, &r.floor)) {
            let _ = writeln!(s, "| {} | {a:.1} | {b:.1} | {:.2} |", r.what, a / b);
        }
    }
    let _ = writeln!(s);
    for n in &report.notes {
        let _ = writeln!(s, "- {n}");
    }
    println!("\n{s}");
    let path = out.join("summary.md");
    fs::write(&path, s).expect("writing summary.md");
    println!("written to {}", path.display());
}
