//! `list` at 10,000 workspaces × 288 snapshots (issue 17): the filtered
//! forms (`list USER/PROJECT`, `list USER`, `--since/--until`, `--last`)
//! against the unfiltered wall of every row, through the real binary.
//!
//! Run: `nice cargo bench --bench list_scale` (not part of `cargo test`).
//! `LIST_SCALE_WORKSPACES=1000` makes a smaller catalog. The catalog is
//! built once under `target/bench-data/list-scale-<workspaces>/` and
//! reused: one real snapshot taken by the binary (so the store is a real
//! store with a root tree in a pack), then 288 snapshot rows per workspace
//! inserted by SQL, every one naming that root tree (`list` reads snapshot
//! rows only; `check` would find their journal records missing, which this
//! bench does not need). Users `uNNNN` have 10 projects `p0`…`p9` each,
//! snapshots every 5 minutes.
//!
//! No peer: restic and borg keep snapshots as one file each and list them
//! by reading every one; a store of 2.88 M snapshots is not something they
//! are built for. The ratio reported is against `list` of the whole store.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use rusqlite::{params, Connection};

const SNAPSHOTS: i64 = 288;
const TICK_NS: i64 = 300 * 1_000_000_000;
/// 2026-03-02T00:00:00Z, the first tick.
const START_NS: i64 = 1_772_409_600 * 1_000_000_000;
const RUNS: usize = 5;

fn wsnap(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wsnap"));
    c.arg("--store").arg(store).env("TZ", "UTC");
    c
}

fn workspaces_wanted() -> i64 {
    std::env::var("LIST_SCALE_WORKSPACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Build the store (see the module doc) unless it is there.
fn generate(dir: &Path, workspaces: i64) -> PathBuf {
    let store = dir.join("store");
    let done = dir.join("generated");
    if done.exists() {
        return store;
    }
    let _ = fs::remove_dir_all(dir);
    let root = dir.join("root");
    fs::create_dir_all(root.join("u0000/p0")).unwrap();
    fs::write(root.join("u0000/p0/notes.txt"), b"notes\n").unwrap();
    let ok = wsnap(&store)
        .args(["snapshot", "-q", "--root"])
        .arg(&root)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "first snapshot");
    let t0 = Instant::now();
    let mut conn = Connection::open(store.join("catalog.sqlite")).unwrap();
    let (root_row, journal): (i64, String) = conn
        .query_row("SELECT root_tree_id, journal FROM snapshots", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute("DELETE FROM snapshots", []).unwrap();
    {
        let mut ws = tx
            .prepare("INSERT OR IGNORE INTO workspaces (user, project) VALUES (?1, ?2)")
            .unwrap();
        let mut id = tx
            .prepare("SELECT id FROM workspaces WHERE user = ?1 AND project = ?2")
            .unwrap();
        let mut snap = tx
            .prepare(
                "INSERT INTO snapshots (snapshot_hash, workspace_id, time_ns, started_ns,
                     finished_ns, root_tree_id, files, dirs, symlinks, size_bytes, bytes_added,
                     bytes_read, skipped, special, excluded, journal, damaged)
                 VALUES (?1, ?2, ?3, ?3, ?3, ?4, 1, 0, 0, 6, 0, 0, 0, 0, 0, ?5, 0)",
            )
            .unwrap();
        for w in 0..workspaces {
            let (user, project) = (format!("u{:04}", w / 10), format!("p{}", w % 10));
            ws.execute(params![user.as_bytes(), project.as_bytes()])
                .unwrap();
            let ws_row: i64 = id
                .query_row(params![user.as_bytes(), project.as_bytes()], |r| r.get(0))
                .unwrap();
            for s in 0..SNAPSHOTS {
                let mut hash = [0u8; 32];
                hash[..8].copy_from_slice(&w.to_le_bytes());
                hash[8..16].copy_from_slice(&s.to_le_bytes());
                snap.execute(params![
                    &hash[..],
                    ws_row,
                    START_NS + s * TICK_NS,
                    root_row,
                    journal
                ])
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    eprintln!(
        "generated {} snapshot rows in {:.1} s",
        workspaces * SNAPSHOTS,
        t0.elapsed().as_secs_f64()
    );
    fs::write(&done, b"").unwrap();
    store
}

/// Median wall time of `runs` runs of `list ARGS --json` (stdout parsed,
/// not kept), and the number of snapshots it listed.
fn time_list(store: &Path, args: &[&str], runs: usize) -> (f64, usize) {
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let out = wsnap(store)
            .arg("list")
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        times.push(t.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        rows = v["snapshots"].as_array().unwrap().len();
    }
    times.sort_by(f64::total_cmp);
    (times[runs / 2], rows)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list`, `cargo test --benches`
    }
    let workspaces = workspaces_wanted();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/bench-data/list-scale-{workspaces}"));
    let store = generate(&dir, workspaces);
    let mid = format!("u{:04}", workspaces / 20);
    let one = format!("{mid}/p3");
    // The whole store once: it is the slow case this bench is about.
    let (all_s, all_n) = time_list(&store, &[], 1);
    println!(
        "list at {workspaces} workspaces x {SNAPSHOTS} snapshots, median of {RUNS} runs \
         (`list` alone: one run) \
         ({} binary, --json to a pipe)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "optimised"
        }
    );
    println!("| command | snapshots listed | wall s | vs `list` |");
    println!("|---|---|---|---|");
    println!("| `list` | {all_n} | {all_s:.3} | 1 |");
    let cases: Vec<(String, Vec<String>)> = vec![
        (format!("list {one}"), vec![one.clone()]),
        (format!("list {mid}"), vec![mid.clone()]),
        (
            format!("list {one} --since 10:00 --until 12:00"),
            vec![
                one.clone(),
                "--since".into(),
                "2026-03-02T10:00:00Z".into(),
                "--until".into(),
                "2026-03-02T12:00:00Z".into(),
            ],
        ),
        (
            format!("list {one} --last 1"),
            vec![one.clone(), "--last".into(), "1".into()],
        ),
        ("list --last 1".into(), vec!["--last".into(), "1".into()]),
    ];
    for (name, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (s, n) = time_list(&store, &args, RUNS);
        println!("| `{name}` | {n} | {s:.3} | {:.4} |", s / all_s);
    }
}
