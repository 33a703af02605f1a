//! The catalog at 10,000 workspaces × 288 snapshots with 10 M blobs
//! (issue #4, targets): time and peak RSS of a tick and a prune.
//!
//! Run: `nice cargo bench --bench catalog_scale` (not part of `cargo test`).
//! `CATALOG_SCALE_WORKSPACES=200` makes a small store for a quick check;
//! `CATALOG_SCALE_GENERATE_ONLY=1` only generates it (kept under `gen/`).
//! Everything lives under `target/bench-data/catalog-scale-v2-<workspaces>/`:
//! the generated store is built once and reused;
//! each run works on a copy (`work/`: catalog copied, packs hard-linked,
//! which is safe because packs are immutable).
//!
//! The generated store is valid — `wsnap check` passes on it — and built as
//! follows:
//! 1. real workspace directories `root/uNNNNN/pN/` with 4 files and a
//!    subdirectory each (`README.md` identical everywhere, `analysis.py`
//!    shared by a user's projects, `notes.txt` and `data/results.csv`
//!    unique), snapshotted once by the real binary: that is each
//!    workspace's newest snapshot (number 288), with real trees and stat
//!    cache;
//! 2. history by direct SQL in one transaction, with real pack files
//!    written by `wsnap::pack::PackWriter`: snapshots 1–287 of every
//!    workspace use 23 older versions of its root tree (version 0 only in
//!    snapshot 1, then one version per 13 ticks), each the real root tree
//!    plus a `history.bin` file of 43 chunks unique to that version
//!    (8-byte payloads, stored raw), so the store holds
//!    10,000 × 23 × (43 + 1) ≈ 10.1 M blobs and 10.1 M `tree_refs` rows.
//!    Packs are written in time order (all workspaces' version 0 first),
//!    as a real store would be. Each history snapshot has its real id
//!    (`wsnap::snapshot_id`) and its record in the journal of its
//!    synthetic tick, `journal/<time_ns>-gen.wsj` (one file per tick as
//!    one per run, written by `wsnap::journal::rewrite` before the rows
//!    are inserted), which its `snapshots.journal` names;
//! 3. `meta.gc_swept_pack_id` is set to the newest pack, as after the
//!    prune that follows every tick.
//!
//! Shortcuts, none visible to `check`: history chunks are not FastCDC
//! cuts of a real file (restoring an old `history.bin` gives the
//! concatenated payloads, verified like any chunk); old tree entries carry
//! today's stat fields; no `runs` rows for the synthetic ticks; journal
//! files are named by tick time, not by run start and pid.
//!
//! Each run then measures, through the real binary with its peak RSS
//! (`/usr/bin/time`): a full tick of every workspace after editing
//! `notes.txt` in 1 % of them, a prune to 288 per workspace (frees version
//! 0), a second full tick with no edits, a second prune (frees nothing),
//! and `check`, with `status`, `list`, `forget`, `import-rsync
//! --dry-run`, `stats` (per workspace and `--by-user`), `diff`, `restore`,
//! `log` and `find --all` of one workspace between them; the report also
//! lists the generation's first snapshot and `check`.
//! `CATALOG_SCALE_STEPS=stats,diff` runs only the steps whose name
//! contains one of those words (ticks and prunes take minutes). Set `CATALOG_SCALE_TICK_SAMPLE=N` to time the ticks on N named
//! workspaces only (`--workspace`); the other workspaces then get their
//! tick's snapshot by SQL (a copy of their newest row at the tick's time:
//! what a no-change tick commits, recorded in a journal
//! `journal/<time_ns>-sql.wsj`), so the prune still forgets one snapshot
//! of every workspace.

mod corpus;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use corpus::Rng;
use wsnap::journal;
use wsnap::pack::format::{self, RecordHeader};
use wsnap::pack::{BlobKind, Compression, PackWriter};
use wsnap::tree::{Entry, EntryKind, FileContent, Tree};
use wsnap::{ChunkId, Id, SnapshotRow, SnapshotStats, Store, StoreParams, TreeId, WorkspaceName};

const SNAPSHOTS: usize = 288;
const VERSIONS: usize = 23;
const CHUNKS_PER_VERSION: usize = 43;
const TICK_NS: i64 = 300 * 1_000_000_000;
const PACK_TARGET: u64 = 32 << 20;

/// Version of the root tree used by history snapshot `s` (0-based, < 287).
fn version_of(s: usize) -> usize {
    if s == 0 {
        0
    } else {
        1 + (s - 1) / 13
    }
}

/// The binary measured: this build's, or `CATALOG_SCALE_WSNAP` (another
/// build, to compare two on the same generated store).
fn wsnap_bin() -> String {
    std::env::var("CATALOG_SCALE_WSNAP").unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsnap").into())
}

fn workspaces_wanted() -> usize {
    std::env::var("CATALOG_SCALE_WORKSPACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn ws_dir(root: &Path, w: usize) -> PathBuf {
    root.join(format!("u{:05}/p{}", w / 10, w % 10))
}

/// What one child process cost.
struct Cost {
    wall_s: f64,
    cpu_s: f64,
    max_rss_mib: f64,
    status: i32,
}

/// Run the wsnap binary under `/usr/bin/time`, its output to `log`.
/// (Not `wait4` from here: a child spawned by this process inherits its
/// high-water RSS mark through vfork + exec, so its `ru_maxrss` would read
/// at least ours; `time` is small, so what it reports is wsnap's own.)
fn measure(args: &[String], log: &Path) -> Cost {
    measure_to(args, log, false)
}

/// [`measure`], with standard output to `/dev/null` when `discard_stdout`
/// (a `list` of every snapshot prints ~300 MB), only errors to `log`.
fn measure_to(args: &[String], log: &Path, discard_stdout: bool) -> Cost {
    let err = fs::File::create(log).expect("log file");
    let out = if discard_stdout {
        fs::File::create("/dev/null").expect("/dev/null")
    } else {
        err.try_clone().expect("log file")
    };
    let timing = log.with_extension("time");
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%e %U %S %M", "-o"])
        .arg(&timing)
        .arg(wsnap_bin())
        .args(args)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .status()
        .expect("starting /usr/bin/time wsnap");
    read_cost(&timing, status.code().unwrap_or(-1))
}

/// The cost `/usr/bin/time` wrote to `timing` (see [`measure`]).
fn read_cost(timing: &Path, status: i32) -> Cost {
    let text = fs::read_to_string(timing).unwrap_or_default();
    // On failure time writes "Command exited with non-zero status N" first.
    let nums: Vec<f64> = text
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    assert_eq!(nums.len(), 4, "unexpected /usr/bin/time output: {text}");
    Cost {
        wall_s: nums[0],
        cpu_s: nums[1] + nums[2],
        max_rss_mib: nums[3] / 1024.0,
        status,
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("bench paths are UTF-8")
}

fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(ns / 1_000_000_000, 0)
        .expect("valid time")
        .to_rfc3339()
}

/// A snapshot row inserted by SQL, with the catalog rows it points to.
struct SqlSnapshot {
    row: SnapshotRow,
    ws_row: i64,
    root_row: i64,
}

/// Record `snaps` in a new journal file `journal/<name>` with the library's
/// journal writer, then insert their catalog rows naming that file: the
/// order a run follows (its records are durable before its catalog commit).
/// Every snapshot is then in exactly one journal, as `check` requires.
fn insert_journaled(
    conn: &Connection,
    store_dir: &Path,
    store_params: &StoreParams,
    name: &str,
    snaps: &[SqlSnapshot],
) {
    let rows: Vec<SnapshotRow> = snaps.iter().map(|s| s.row.clone()).collect();
    journal::rewrite(&journal::dir(store_dir).join(name), store_params, &rows)
        .expect("writing a journal");
    let mut ins = conn
        .prepare_cached(
            "INSERT INTO snapshots (snapshot_hash, workspace_id, time_ns, started_ns, finished_ns,
                 root_tree_id, files, dirs, symlinks, size_bytes, bytes_added, bytes_read,
                 skipped, special, excluded, journal, damaged)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, 0)",
        )
        .expect("prepare");
    for s in snaps {
        let (r, n) = (&s.row, s.row.stats);
        ins.execute(params![
            &r.id.0 .0[..],
            s.ws_row,
            r.time_ns,
            r.started_ns,
            r.finished_ns,
            s.root_row,
            n.files as i64,
            n.dirs as i64,
            n.symlinks as i64,
            n.size_bytes as i64,
            n.bytes_added as i64,
            n.bytes_read as i64,
            n.skipped as i64,
            n.special as i64,
            n.excluded as i64,
            name
        ])
        .expect("snapshot row");
    }
}

fn make_root(root: &Path, workspaces: usize) {
    let mut rng = Rng::new(10_000);
    let readme = corpus::csv_text(&mut Rng::new(1), 1500);
    for w in 0..workspaces {
        let d = ws_dir(root, w);
        fs::create_dir_all(d.join("data")).expect("mkdir");
        fs::write(d.join("README.md"), &readme).expect("write");
        let analysis = corpus::csv_text(&mut Rng::new(1000 + (w / 10) as u64), 3000);
        fs::write(d.join("analysis.py"), analysis).expect("write");
        let n = 500 + rng.below(1500);
        fs::write(d.join("notes.txt"), corpus::csv_text(&mut rng, n)).expect("write");
        fs::write(d.join("data/results.csv"), corpus::csv_text(&mut rng, 4096)).expect("write");
    }
}

struct RealWs {
    name: WorkspaceName,
    ws_row: i64,
    tree: Tree,
    ref_rows: Vec<i64>,
    files: i64,
    dirs: i64,
    size: i64,
}

struct BlobRow {
    id: i64,
    hash: Id,
    kind: u8,
    offset: u64,
    stored_len: u32,
    raw_len: u32,
}

struct PackBuf {
    writer: PackWriter,
    blobs: Vec<BlobRow>,
    refs: Vec<(i64, i64)>,
    next_pack: i64,
    packs: u64,
    bytes: u64,
}

impl PackBuf {
    fn append(&mut self, row_id: i64, kind: BlobKind, raw: &[u8]) -> Id {
        let id = Id::of(raw);
        let (compression, payload) = match kind {
            BlobKind::Chunk => (Compression::None, raw.to_vec()),
            _ => format::compress(raw, 3),
        };
        let header = RecordHeader {
            kind,
            compression,
            raw_len: raw.len() as u32,
            stored_len: payload.len() as u32,
            id,
        };
        let offset = self.writer.append(header, &payload).expect("pack append");
        self.blobs.push(BlobRow {
            id: row_id,
            hash: id,
            kind: kind as u8,
            offset,
            stored_len: header.stored_len,
            raw_len: header.raw_len,
        });
        id
    }

    fn flush(&mut self, tx: &rusqlite::Transaction<'_>) {
        let Some(sealed) = self.writer.seal().expect("seal") else {
            return;
        };
        let pack_row = self.next_pack;
        self.next_pack += 1;
        self.packs += 1;
        self.bytes += sealed.size_bytes;
        tx.execute(
            "INSERT INTO packs (id, pack_hash, size_bytes, record_count, created_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![pack_row, &sealed.id.0 .0[..], sealed.size_bytes as i64, sealed.records.len() as i64, wsnap::timespec::now_ns()],
        )
        .expect("pack row");
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO blobs (id, hash, kind, pack_id, offset, stored_len, raw_len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare");
        for b in self.blobs.drain(..) {
            ins.execute(params![
                b.id,
                &b.hash.0[..],
                b.kind,
                pack_row,
                b.offset as i64,
                b.stored_len,
                b.raw_len
            ])
            .expect("blob row");
        }
        let mut r = tx
            .prepare_cached("INSERT OR IGNORE INTO tree_refs (tree_id, blob_id) VALUES (?1, ?2)")
            .expect("prepare");
        for (t, b) in self.refs.drain(..) {
            r.execute([t, b]).expect("ref row");
        }
    }
}

/// Build the store (see the module doc). Writes `generated.md` beside it.
fn generate(dir: &Path, workspaces: usize) {
    let mut notes = String::new();
    let root = dir.join("root");
    let store_dir = dir.join("store");
    let t = Instant::now();
    make_root(&root, workspaces);
    let _ = writeln!(
        notes,
        "- workspace dirs: {workspaces} × 4 files + 1 subdir, written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(2100)); // past the racy window
    Store::init(&store_dir).expect("init");

    let now_s = wsnap::timespec::now_ns() / 1_000_000_000;
    let t_last = (now_s - 3600) * 1_000_000_000;
    let t0 = t_last - (SNAPSHOTS as i64 - 1) * TICK_NS;
    let first = measure(
        &[
            "--store".into(),
            store_dir.display().to_string(),
            "snapshot".into(),
            "--root".into(),
            root.display().to_string(),
            "--time".into(),
            rfc3339(t_last),
        ],
        &dir.join("first-snapshot.log"),
    );
    assert_eq!(
        first.status, 0,
        "first snapshot failed: see first-snapshot.log"
    );
    let _ = writeln!(
        notes,
        "- first snapshot of all {workspaces} workspaces (real binary): {:.1} s wall, {:.1} s CPU, peak RSS {:.0} MiB",
        first.wall_s, first.cpu_s, first.max_rss_mib
    );

    // The real newest snapshot of every workspace, its tree and references.
    let store = Store::open(&store_dir).expect("open");
    let cat = store.catalog_for_reading().expect("catalog");
    let mut conn = Connection::open(store.catalog_path()).expect("open catalog");
    let mut real: Vec<RealWs> = Vec::with_capacity(workspaces);
    {
        let mut q = conn
            .prepare(
                "SELECT w.user, w.project, w.id, b.hash, s.files, s.dirs, s.size_bytes
                 FROM snapshots s JOIN workspaces w ON w.id = s.workspace_id
                 JOIN blobs b ON b.id = s.root_tree_id ORDER BY w.user, w.project",
            )
            .expect("prepare");
        let rows = q
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .expect("query");
        let mut row_of = conn
            .prepare("SELECT id FROM blobs WHERE hash = ?1")
            .expect("prepare");
        for r in rows {
            let (user, project, ws_row, root, files, dirs, size) = r.expect("row");
            let tree = store
                .read_tree(&cat, &TreeId(Id::from_slice(&root).expect("id")))
                .expect("read root tree");
            let ref_rows = tree
                .references()
                .iter()
                .map(|id| {
                    row_of
                        .query_row([&id.0[..]], |r| r.get(0))
                        .expect("ref row")
                })
                .collect();
            real.push(RealWs {
                name: WorkspaceName::new(&user, &project).expect("workspace name"),
                ws_row,
                tree,
                ref_rows,
                files,
                dirs,
                size,
            });
        }
    }
    drop(cat);
    assert_eq!(real.len(), workspaces, "one real snapshot per workspace");

    let t = Instant::now();
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -1500000;",
    )
    .expect("pragmas");
    let tx = conn.transaction().expect("begin");
    let max_id = |sql: &str| -> i64 { tx.query_row(sql, [], |r| r.get(0)).expect("max") };
    let mut next_blob = max_id("SELECT COALESCE(MAX(id), 0) FROM blobs") + 1;
    let mut pb = PackBuf {
        writer: store.packs().writer(),
        blobs: Vec::new(),
        refs: Vec::new(),
        next_pack: max_id("SELECT COALESCE(MAX(id), 0) FROM packs") + 1,
        packs: 0,
        bytes: 0,
    };
    let mut tree_rows = vec![(0i64, Id([0; 32])); workspaces * VERSIONS];
    let mut counter: u64 = 0;
    for v in 0..VERSIONS {
        let version_time = t0 + (if v == 0 { 0 } else { 1 + (v as i64 - 1) * 13 }) * TICK_NS;
        for (w, ws) in real.iter().enumerate() {
            let mut chunk_ids = Vec::with_capacity(CHUNKS_PER_VERSION);
            let mut chunk_rows = Vec::with_capacity(CHUNKS_PER_VERSION);
            for _ in 0..CHUNKS_PER_VERSION {
                let payload = counter.to_le_bytes();
                counter += 1;
                chunk_ids.push(ChunkId(pb.append(next_blob, BlobKind::Chunk, &payload)));
                chunk_rows.push(next_blob);
                next_blob += 1;
            }
            let proto = ws.tree.entries.first().expect("non-empty workspace");
            let mut entries = ws.tree.entries.clone();
            entries.push(Entry {
                name: b"history.bin".to_vec(),
                flags: 0,
                mode: 0o644,
                mtime_ns: version_time,
                ctime_ns: version_time,
                inode: 1 << 40 | (w * VERSIONS + v) as u64,
                uid: proto.uid,
                gid: proto.gid,
                size: (CHUNKS_PER_VERSION * 8) as u64,
                kind: EntryKind::File {
                    content: FileContent::Chunks(chunk_ids),
                },
            });
            let tree = Tree::from_unsorted(entries);
            let (tid, bytes) = tree.encode_with_id();
            pb.append(next_blob, BlobKind::Tree, &bytes);
            for b in chunk_rows.iter().chain(&ws.ref_rows) {
                pb.refs.push((next_blob, *b));
            }
            tree_rows[w * VERSIONS + v] = (next_blob, tid.0);
            next_blob += 1;
            if pb.writer.len_bytes() >= PACK_TARGET {
                pb.flush(&tx);
            }
        }
    }
    pb.flush(&tx);
    let packs_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let store_params = store.params();
    for s in 0..SNAPSHOTS - 1 {
        let time = t0 + s as i64 * TICK_NS;
        let v = version_of(s);
        let new_version = s == 0 || version_of(s - 1) != v;
        let snaps: Vec<SqlSnapshot> = real
            .iter()
            .enumerate()
            .map(|(w, ws)| {
                let (root_row, root_id) = tree_rows[w * VERSIONS + v];
                let root = TreeId(root_id);
                SqlSnapshot {
                    row: SnapshotRow {
                        id: wsnap::snapshot_id(&ws.name, time, time, &root),
                        workspace: ws.name.clone(),
                        time_ns: time,
                        started_ns: time,
                        finished_ns: time + 40_000_000,
                        root,
                        stats: SnapshotStats {
                            files: ws.files as u64 + 1,
                            dirs: ws.dirs as u64,
                            size_bytes: (ws.size + (CHUNKS_PER_VERSION * 8) as i64) as u64,
                            bytes_added: if new_version { 2500 } else { 0 },
                            bytes_read: if new_version { 344 } else { 0 },
                            ..SnapshotStats::default()
                        },
                        damaged: false,
                    },
                    ws_row: ws.ws_row,
                    root_row,
                }
            })
            .collect();
        // One journal per synthetic tick, as one per real run.
        insert_journaled(
            &tx,
            &store_dir,
            &store_params,
            &format!("{time:020}-gen.wsj"),
            &snaps,
        );
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('gc_swept_pack_id', (SELECT MAX(id) FROM packs))
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [],
    )
    .expect("watermark");
    tx.commit().expect("commit");
    conn.execute_batch("PRAGMA journal_mode = WAL;")
        .expect("back to WAL");
    drop(conn);
    let _ = writeln!(
        notes,
        "- history: {} packs ({:.0} MiB) with {counter} chunks and {} trees in {packs_s:.1} s; \
         {} snapshot rows in {:.1} s",
        pb.packs,
        pb.bytes as f64 / 1048576.0,
        workspaces * VERSIONS,
        workspaces * (SNAPSHOTS - 1),
        t.elapsed().as_secs_f64()
    );
    let check = measure(
        &[
            "--store".into(),
            store_dir.display().to_string(),
            "check".into(),
        ],
        &dir.join("check-generated.log"),
    );
    let _ = writeln!(
        notes,
        "- `wsnap check` of the generated store: exit {}, {:.1} s wall, peak RSS {:.0} MiB",
        check.status, check.wall_s, check.max_rss_mib
    );
    assert_eq!(
        check.status, 0,
        "generated store fails check: see check-generated.log"
    );
    let _ = writeln!(notes, "- t_last_ns = {t_last}");
    fs::write(dir.join("generated.md"), notes).expect("generated.md");
}

fn copy_store(from: &Path, to: &Path) {
    if to.exists() {
        fs::remove_dir_all(to).expect("remove old work store");
    }
    fs::create_dir_all(to).expect("mkdir work");
    for e in fs::read_dir(from).expect("readdir store") {
        let e = e.expect("entry");
        let flag = if e.file_name() == "packs" {
            "-al"
        } else {
            "-a"
        };
        let st = Command::new("cp")
            .arg(flag)
            .arg(e.path())
            .arg(to)
            .status()
            .expect("cp");
        assert!(st.success(), "copying {}", e.path().display());
    }
}

/// (workspace row, user, project, root row, root id, files, dirs, size bytes)
type LatestRow = (i64, Vec<u8>, Vec<u8>, i64, Vec<u8>, i64, i64, i64);

/// Give every workspace without a snapshot at `time_ns` one, by SQL: a copy
/// of its newest snapshot row (same root tree), as a no-change tick makes.
fn complete_tick(store: &Path, time_ns: i64) -> (usize, f64) {
    let t = Instant::now();
    let mut c = Connection::open(store.join("catalog.sqlite")).expect("open");
    let tx = c.transaction().expect("begin");
    let rows: Vec<LatestRow> = {
        let mut q = tx
            .prepare(
                "SELECT w.id, w.user, w.project, s.root_tree_id, b.hash, s.files, s.dirs, s.size_bytes
                 FROM workspaces w
                 JOIN snapshots s ON s.id = (SELECT id FROM snapshots x WHERE x.workspace_id = w.id
                                             ORDER BY x.time_ns DESC LIMIT 1)
                 JOIN blobs b ON b.id = s.root_tree_id
                 WHERE s.time_ns < ?1",
            )
            .expect("prepare");
        let rows = q
            .query_map([time_ns], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    };
    let snaps: Vec<SqlSnapshot> = rows
        .iter()
        .map(
            |(ws_row, user, project, root_row, root, files, dirs, size)| {
                let workspace = WorkspaceName::new(user, project).expect("workspace name");
                let root = TreeId(Id::from_slice(root).expect("id"));
                SqlSnapshot {
                    row: SnapshotRow {
                        id: wsnap::snapshot_id(&workspace, time_ns, time_ns, &root),
                        workspace,
                        time_ns,
                        started_ns: time_ns,
                        finished_ns: time_ns + 40_000_000,
                        root,
                        stats: SnapshotStats {
                            files: *files as u64,
                            dirs: *dirs as u64,
                            size_bytes: *size as u64,
                            ..SnapshotStats::default()
                        },
                        damaged: false,
                    },
                    ws_row: *ws_row,
                    root_row: *root_row,
                }
            },
        )
        .collect();
    let store_params = Store::open(store).expect("open store").params();
    insert_journaled(
        &tx,
        store,
        &store_params,
        &format!("{time_ns:020}-sql.wsj"),
        &snaps,
    );
    tx.commit().expect("commit");
    (rows.len(), t.elapsed().as_secs_f64())
}

fn catalog_counts(store: &Path) -> String {
    let c = Connection::open(store.join("catalog.sqlite")).expect("open");
    let n = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    let size = fs::metadata(store.join("catalog.sqlite")).map_or(0, |m| m.len());
    let wm: Option<String> = c
        .query_row(
            "SELECT value FROM meta WHERE key='gc_swept_pack_id'",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap_or(None);
    format!(
        "{} workspaces, {} snapshots, {} blobs, {} tree_refs, {} packs; catalog.sqlite {:.0} MiB; gc watermark {}",
        n("SELECT COUNT(*) FROM workspaces"),
        n("SELECT COUNT(*) FROM snapshots"),
        n("SELECT COUNT(*) FROM blobs"),
        n("SELECT COUNT(*) FROM tree_refs"),
        n("SELECT COUNT(*) FROM packs"),
        size as f64 / 1048576.0,
        wm.unwrap_or_default()
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("catalog_scale: runs only under `cargo bench --bench catalog_scale`");
        return;
    }
    let workspaces = workspaces_wanted();
    let sample: Option<usize> = std::env::var("CATALOG_SCALE_TICK_SAMPLE")
        .ok()
        .and_then(|v| v.parse().ok());
    // `-v2`: stores generated before the journals (catalog v1 rows, no
    // journal records) fail `check` and must not be reused.
    let dir = corpus::data_dir(&format!("catalog-scale-v2-{workspaces}"));
    let gen_dir = dir.join("gen");
    corpus::cached(&gen_dir, "catalog-scale store", |d| generate(d, workspaces));
    let generated = fs::read_to_string(gen_dir.join("generated.md")).unwrap_or_default();
    let t_last: i64 = generated
        .lines()
        .find_map(|l| l.strip_prefix("- t_last_ns = "))
        .and_then(|v| v.trim().parse().ok())
        .expect("t_last_ns in generated.md");
    // `CATALOG_SCALE_GENERATE_ONLY=1`: stop once the store exists (issue
    // #20 measures `wsnap serve` on `gen/store`, read-only).
    if std::env::var_os("CATALOG_SCALE_GENERATE_ONLY").is_some() {
        eprintln!("generated store: {}", gen_dir.join("store").display());
        return;
    }

    let work = dir.join("work");
    let store = work.join("store");
    let t = Instant::now();
    copy_store(&gen_dir.join("store"), &store);
    eprintln!("work copy in {:.1} s", t.elapsed().as_secs_f64());
    let root = gen_dir.join("root");
    let load_before = corpus::load_average();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "catalog_scale: {workspaces} workspaces, {} UTC, load before {load_before}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M")
    );
    let _ = writeln!(report, "generated store:\n{generated}");
    let _ = writeln!(report, "before: {}\n", catalog_counts(&store));

    // Edit notes.txt in 1 % of the workspaces.
    let edited: Vec<usize> = (0..workspaces).step_by(100).collect();
    let mut rng = Rng::new(wsnap::timespec::now_ns() as u64);
    for &w in &edited {
        let p = ws_dir(&root, w).join("notes.txt");
        let mut text = fs::read(&p).expect("read notes");
        text.extend_from_slice(&corpus::csv_text(&mut rng, 200));
        fs::write(&p, text).expect("edit notes");
    }
    let store_arg = store.display().to_string();
    let mut scope: Vec<String> = Vec::new();
    if let Some(n) = sample {
        // The edited workspaces first, then others, up to n.
        let mut picked: Vec<usize> = edited.clone();
        picked.extend((0..workspaces).filter(|w| w % 100 == 50));
        picked.truncate(n);
        for w in picked {
            scope.push("--workspace".into());
            scope.push(format!("u{:05}/p{}", w / 10, w % 10));
        }
    }
    let with_store = |args: &[String]| -> Vec<String> {
        [vec!["--store".into(), store_arg.clone()], args.to_vec()].concat()
    };
    let tick = |name: String, k: i64| -> (String, Vec<String>, Option<i64>) {
        let t = t_last + k * TICK_NS;
        let args = [
            vec![
                "snapshot".into(),
                "--root".into(),
                root.display().to_string(),
                "--time".into(),
                rfc3339(t),
            ],
            scope.clone(),
        ]
        .concat();
        (name, with_store(&args), Some(t))
    };
    let prune = |k: i64| -> (String, Vec<String>, Option<i64>) {
        let args = ["prune", "--keep-last", "288"].map(String::from);
        (
            format!("prune {k} (keep-last 288)"),
            with_store(&args),
            None,
        )
    };
    // A fresh store of the same root: the tick at 2 and 3 snapshots per
    // workspace, beside the ticks at 288 (issue #18: no growth with history).
    let fresh = work.join("fresh-store");
    let fresh_tick = |name: &str| -> (String, Vec<String>, Option<i64>) {
        let args = [
            "--store",
            path_str(&fresh),
            "snapshot",
            "--root",
            path_str(&root),
        ];
        (name.into(), args.map(String::from).to_vec(), None)
    };
    // The id prefix of the `nth` snapshot (oldest first) of `u00000/p5`.
    let prefix_of = |nth: i64| -> String {
        let c = Connection::open(store.join("catalog.sqlite")).expect("open");
        let (user, project) = (b"u00000".to_vec(), b"p5".to_vec());
        let hash: Vec<u8> = c
            .query_row(
                "SELECT s.snapshot_hash FROM snapshots s JOIN workspaces w ON w.id = s.workspace_id
                 WHERE w.user = ?1 AND w.project = ?2 ORDER BY s.time_ns LIMIT 1 OFFSET ?3",
                params![user, project, nth],
                |r| r.get(0),
            )
            .expect("a snapshot of u00000/p5");
        Id::from_slice(&hash).expect("id").to_hex()[..12].to_string()
    };
    // A snapshot in the middle of a run of one root tree version: forgetting
    // it frees nothing, so `forget` costs its lookup and transaction.
    let forget_prefix = prefix_of(100);
    // Two snapshots of one workspace with different root trees (history
    // versions 1 and 22: each has its own `history.bin`) for `diff`, both
    // kept by the prunes that run before it (each forgets the oldest
    // snapshot of every workspace, version 0's among them), and the newest,
    // which `restore` writes out.
    let (diff_from, diff_to) = (prefix_of(10), prefix_of(280));
    let restore_target = work.join("restore-target");
    let _ = fs::remove_dir_all(&restore_target);
    // An old rsync backup root of two directories (`import-rsync --dry-run`).
    let old_root = work.join("old-backups");
    for name in ["u00005_p5_20260101_000000", "u00007_p1_20260101_000500"] {
        fs::create_dir_all(old_root.join(name)).expect("mkdir old backup");
        fs::write(old_root.join(name).join("notes.txt"), b"old").expect("write");
    }
    let cmd = |name: &str, args: &[&str]| -> (String, Vec<String>, Option<i64>) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        (name.into(), with_store(&args), None)
    };
    let root_s = path_str(&root);
    let steps: Vec<(String, Vec<String>, Option<i64>)> = vec![
        tick(format!("tick 1 ({} workspaces edited)", edited.len()), 1),
        prune(1),
        tick("tick 2 (no edits; 288 snapshots per workspace)".into(), 2),
        fresh_tick("fresh store of the same root: first snapshot"),
        fresh_tick("fresh store: no-change tick (2 snapshots per workspace)"),
        prune(2),
        (
            "prune 3 (keep-last 288, nothing to forget)".into(),
            with_store(&["prune", "--keep-last", "288"].map(String::from)),
            None,
        ),
        tick("tick 3 (no edits; 289 snapshots per workspace)".into(), 3),
        fresh_tick("fresh store: no-change tick (3 snapshots per workspace)"),
        cmd(
            "status",
            &[
                "status",
                "--root",
                root_s,
                "--min-free",
                "0",
                "--max-age",
                "100000d",
            ],
        ),
        cmd("list u00005/p5", &["list", "u00005/p5"]),
        cmd("list (all, to /dev/null)", &["list"]),
        cmd("list --json (all, to /dev/null)", &["list", "--json"]),
        cmd(
            &format!("forget --snapshot {forget_prefix} (frees nothing)"),
            &["forget", "--snapshot", &forget_prefix],
        ),
        cmd(
            "import-rsync --dry-run (2 old backups)",
            &[
                "import-rsync",
                "--dry-run",
                "--root",
                root_s,
                path_str(&old_root),
            ],
        ),
        cmd("stats", &["stats"]),
        cmd("stats --by-user", &["stats", "--by-user"]),
        cmd(
            "diff u00000/p5 (snapshots 11 and 281 of 288)",
            &["diff", "u00000/p5", &diff_from, &diff_to],
        ),
        cmd(
            "restore u00000/p5 (newest, to a new directory)",
            &[
                "restore",
                "u00000/p5",
                "--at",
                "latest",
                "--to",
                path_str(&restore_target),
            ],
        ),
        cmd(
            "log u00000/p5 notes.txt (every snapshot)",
            &["log", "u00000/p5", "notes.txt"],
        ),
        cmd(
            "find u00000/p5 --all '*.csv'",
            &["find", "u00000/p5", "*.csv", "--all"],
        ),
        (
            "check (no --read-data)".into(),
            with_store(&["check".into()]),
            None,
        ),
    ];
    // `CATALOG_SCALE_STEPS=stats,diff`: only the steps whose name contains
    // one of these words (the others take minutes at 10,000 workspaces).
    let only: Option<Vec<String>> = std::env::var("CATALOG_SCALE_STEPS")
        .ok()
        .map(|v| v.split(',').map(|w| w.trim().to_string()).collect());
    let steps: Vec<_> = steps
        .into_iter()
        .filter(|(name, _, _)| {
            only.as_ref()
                .is_none_or(|words| words.iter().any(|w| name.contains(w.as_str())))
        })
        .collect();
    if let Some(words) = &only {
        let _ = writeln!(
            report,
            "only the steps named with {words:?} (CATALOG_SCALE_STEPS)\n"
        );
    }
    if let Some(n) = sample {
        let _ = writeln!(
            report,
            "ticks limited to {n} named workspaces (CATALOG_SCALE_TICK_SAMPLE)\n"
        );
    }
    let _ = writeln!(
        report,
        "| step | exit | wall s | CPU s | peak RSS MiB |\n|---|---:|---:|---:|---:|"
    );
    for (name, file) in [
        ("first snapshot (generation)", "first-snapshot.time"),
        ("check of the generated store", "check-generated.time"),
    ] {
        let c = read_cost(&gen_dir.join(file), 0);
        let _ = writeln!(
            report,
            "| {name} | | {:.2} | {:.2} | {:.1} |",
            c.wall_s, c.cpu_s, c.max_rss_mib
        );
    }
    let mut outputs = Vec::new();
    for (i, (name, args, tick_time)) in steps.iter().enumerate() {
        eprintln!(
            "{name}: wsnap {}",
            args.join(" ").chars().take(200).collect::<String>()
        );
        let log = work.join(format!("step{i}.log"));
        let c = measure_to(args, &log, name.contains("/dev/null"));
        let line = format!(
            "| {name} | {} | {:.2} | {:.2} | {:.1} |",
            c.status, c.wall_s, c.cpu_s, c.max_rss_mib
        );
        eprintln!("{line}");
        let _ = writeln!(report, "{line}");
        let text = fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail: Vec<String> = lines[lines.len().saturating_sub(3)..]
            .iter()
            .map(|l| l.to_string())
            .collect();
        eprintln!("  log tail: {}", tail.join(" / "));
        outputs.push(format!("- {name}: {}", tail.join(" / ")));
        if let (Some(time), Some(_)) = (tick_time, sample) {
            let (n, secs) = complete_tick(&store, *time);
            let line =
                format!("| (SQL: tick rows for the {n} other workspaces) | | {secs:.2} | | |");
            eprintln!("{line}");
            let _ = writeln!(report, "{line}");
        }
    }
    let _ = writeln!(
        report,
        "\nlast lines of each step's output:\n{}",
        outputs.join("\n")
    );
    let _ = writeln!(report, "\nafter: {}", catalog_counts(&store));
    let _ = writeln!(report, "load after: {}", corpus::load_average());
    println!("\n{report}");
    let path = dir.join("report.md");
    fs::write(&path, &report).expect("report.md");
    println!("written to {}", path.display());
}
