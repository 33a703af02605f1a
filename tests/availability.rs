//! Availability (issue 13): reading a read-only store, a run's checkpoint
//! beside a long reader, stores on network or FUSE file systems, `ls` and
//! `check` beside a prune, and the store directory's entry for `journal/`.
//!
//! Read-only stores are made really read-only (the tests run as root, which
//! ignores permission bits): a tmpfs remounted `ro`, or a read-only bind
//! mount. Those tests need root and `mount`; without them they fail with a
//! message saying so, never pass silently. Every mount is undone by a drop
//! guard, also when the test fails.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------

/// A mount point, unmounted (lazily, so a process still inside cannot keep
/// it) when dropped.
struct Mount {
    at: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.at)
            .status();
    }
}

fn sh(args: &[&str], what: &str) {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{what}: cannot run {}: {e} (this test needs root and mount(8))",
                args[0]
            )
        });
    assert!(
        out.status.success(),
        "{what}: `{}` failed: {} (this test needs root and mount(8))",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A copy of `store` on a fresh tmpfs at `at`, remounted read-only.
fn read_only_copy(store: &Path, at: &Path) -> Mount {
    std::fs::create_dir_all(at).unwrap();
    sh(
        &["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", p(at)],
        "mount a tmpfs",
    );
    let m = Mount {
        at: at.to_path_buf(),
    };
    sh(
        &["cp", "-a", &format!("{}/.", p(store)), p(at)],
        "copy the store",
    );
    sh(
        &["mount", "-o", "remount,ro", p(at)],
        "remount it read-only",
    );
    assert_read_only(at);
    m
}

/// `store` itself, seen read-only at `at` (a read-only bind mount).
fn read_only_bind(store: &Path, at: &Path) -> Mount {
    std::fs::create_dir_all(at).unwrap();
    sh(
        &["mount", "--bind", p(store), p(at)],
        "bind-mount the store",
    );
    let m = Mount {
        at: at.to_path_buf(),
    };
    sh(
        &["mount", "-o", "remount,ro,bind", p(at)],
        "remount the bind mount read-only",
    );
    assert_read_only(at);
    m
}

#[track_caller]
fn assert_read_only(dir: &Path) {
    let e = std::fs::write(dir.join("probe"), b"x").expect_err("mount is writable");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
}

/// `wsnap --store STORE` with another store path.
fn cmd_on(store: &Path) -> Command {
    let mut c = bare_cmd();
    c.arg("--store").arg(store);
    c
}

/// Two snapshots of u/p (a tree with a subdirectory), with the workspace
/// copied after each; returns (ids, copies).
fn two_snapshots(env: &TestEnv) -> (Vec<String>, Vec<PathBuf>) {
    let ws = env.ws("u", "p");
    let mut ids = Vec::new();
    let mut copies = Vec::new();
    for t in 0..2u64 {
        write(&ws.join("data.bin"), &random_bytes(10 + t, 200 * KIB));
        write(
            &ws.join("sub/notes.txt"),
            format!("version {t}\n").as_bytes(),
        );
        let w = env.snapshot_ws("u/p", &["--time", &format!("2026-01-01T00:0{t}:00Z")]);
        ids.push(s(&w, "id").to_string());
        let copy = env.path(format!("copy{t}"));
        copy_tree(&ws, &copy);
        copies.push(copy);
    }
    (ids, copies)
}

/// Every read command works on the read-only store at `ro`.
fn reads_work(env: &TestEnv, ro: &Path, ids: &[String], copies: &[PathBuf], tag: &str) {
    let target = env.path(format!("restored-{tag}"));
    let mut c = cmd_on(ro);
    c.args(["restore", "u/p", "--at", "latest", "--to"])
        .arg(&target);
    expect_code(&mut c, 0);
    assert_trees_equal(&copies[1], &target);
    let old = env.path(format!("restored-old-{tag}"));
    let mut c = cmd_on(ro);
    c.args(["restore", "u/p", "--snapshot", &ids[0], "--to"])
        .arg(&old);
    expect_code(&mut c, 0);
    assert_trees_equal(&copies[0], &old);

    let mut c = cmd_on(ro);
    c.args(["ls", "u/p", "--at", "latest", "sub", "--json"]);
    let v = expect_code(&mut c, 0).json();
    assert_eq!(v["entries"][0]["name"], "notes.txt", "{v:#}");

    let mut c = cmd_on(ro);
    c.args(["check", "--read-data", "--json"]);
    let v = expect_code(&mut c, 0).json();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(u(&v, "snapshots"), 2, "{v:#}");

    let mut c = cmd_on(ro);
    c.args(["diff", "u/p", &ids[0], &ids[1], "--json"]);
    let v = expect_code(&mut c, 0).json();
    assert_eq!(u(&v["summary"], "modified"), 2, "{v:#}");

    let mut c = cmd_on(ro);
    c.args(["list", "--json"]);
    let v = expect_code(&mut c, 0).json();
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 2, "{v:#}");

    let mut c = cmd_on(ro);
    c.args(["log", "u/p", "sub/notes.txt"]);
    expect_code(&mut c, 0);

    let mut c = cmd_on(ro);
    c.args(["stats", "--json"]);
    expect_code(&mut c, 0);

    // Old snapshots make it WARNING or CRITICAL, never UNKNOWN (exit 3).
    let mut c = cmd_on(ro);
    c.args(["status", "--root"]).arg(&env.root);
    let out = run(&mut c);
    assert!(
        !out.stdout.starts_with("WSNAP UNKNOWN") && out.code != 3,
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// Read-only stores
// ---------------------------------------------------------------------------

/// A copy of the store taken after a run (the catalog's WAL folded in, as
/// the last connection leaves it), on a read-only file system: every read
/// command works; a snapshot into it fails as a write failure (exit 4)
/// without touching it.
#[test]
fn read_only_copy_of_a_store_restores() {
    let env = TestEnv::new();
    let (ids, copies) = two_snapshots(&env);
    let ro = env.path("ro");
    let _m = read_only_copy(&env.store, &ro);
    let wal = std::fs::metadata(ro.join("catalog.sqlite-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "a run leaves the WAL folded in");
    reads_work(&env, &ro, &ids, &copies, "copy");

    let mut c = cmd_on(&ro);
    c.args(["snapshot", "--root"]).arg(&env.root);
    let out = expect_code(&mut c, 4);
    assert!(out.stderr.contains("Read-only file system"), "{out}");
}

/// The live store seen through a read-only bind mount reads the same; its
/// writers (through the writable path) keep working afterwards.
#[test]
fn read_only_bind_mount_of_a_store_restores() {
    let env = TestEnv::new();
    let (ids, copies) = two_snapshots(&env);
    let ro = env.path("ro");
    let m = read_only_bind(&env.store, &ro);
    reads_work(&env, &ro, &ids, &copies, "bind");
    drop(m);
    env.snapshot(&[]);
    let mut c = env.cmd();
    c.args(["check"]);
    expect_code(&mut c, 0);
}

/// A read transaction on the catalog, open: the end-of-run checkpoint
/// cannot fold later commits into the main file while it lives.
fn reader_holding_a_view(env: &TestEnv) -> rusqlite::Connection {
    let reader = rusqlite::Connection::open_with_flags(
        env.store.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))
        .unwrap();
    reader
}

/// A copy taken while the catalog's WAL still held commits (a reader kept
/// the end-of-run checkpoint from folding them in), copied with its
/// `-wal` and `-shm`: the read-only copy still shows the newest snapshot.
#[test]
fn read_only_copy_with_a_live_wal_shows_every_commit() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    write(&ws.join("a.txt"), b"first\n");
    env.snapshot(&[]);
    let reader = reader_holding_a_view(&env);
    write(&ws.join("a.txt"), b"second, only in the WAL\n");
    env.snapshot(&[]);
    let wal = std::fs::metadata(env.store.join("catalog.sqlite-wal")).unwrap();
    assert!(wal.len() > 0, "the reader kept the commit in the WAL");
    let ro = env.path("ro");
    let _m = read_only_copy(&env.store, &ro);
    drop(reader);

    let target = env.path("restored");
    let mut c = cmd_on(&ro);
    c.args(["restore", "u/p", "--at", "latest", "--to"])
        .arg(&target);
    expect_code(&mut c, 0);
    assert_eq!(
        std::fs::read(target.join("a.txt")).unwrap(),
        b"second, only in the WAL\n"
    );
    let mut c = cmd_on(&ro);
    c.args(["list", "--json"]);
    assert_eq!(
        expect_code(&mut c, 0).json()["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// A copy whose WAL holds commits but whose `-shm` was not copied cannot
/// be read on a read-only mount (SQLite needs the shared-memory index):
/// the command says why and what to do, exit 3, and does not pretend the
/// store is damaged.
#[test]
fn read_only_copy_with_a_wal_but_no_shm_is_refused_clearly() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    write(&ws.join("a.txt"), b"first\n");
    env.snapshot(&[]);
    let reader = reader_holding_a_view(&env);
    write(&ws.join("a.txt"), b"second\n");
    env.snapshot(&[]);
    // The copy without `-shm`, made by hand.
    let staged = env.path("staged");
    sh(&["cp", "-a", p(&env.store), p(&staged)], "copy the store");
    drop(reader);
    std::fs::remove_file(staged.join("catalog.sqlite-shm")).unwrap();
    let ro = env.path("ro");
    let _m = read_only_copy(&staged, &ro);

    let mut c = cmd_on(&ro);
    c.args(["list"]);
    let out = run(&mut c);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("read-only"), "{out}");
    assert!(out.stderr.contains("catalog.sqlite-wal"), "{out}");
    assert!(!out.stderr.contains("repair"), "not damage: {out}");
}

// ---------------------------------------------------------------------------
// Checkpoint beside a reader
// ---------------------------------------------------------------------------

fn wal_len(store: &Path) -> u64 {
    std::fs::metadata(store.join("catalog.sqlite-wal")).map_or(0, |m| m.len())
}

/// A reader holding an old view of the catalog (a restore running for
/// hours) does not delay a tick by the 10 s busy timeout of the end-of-run
/// checkpoint; the WAL grows only by what those ticks write, and the first
/// tick after the reader is gone folds it in and truncates it.
#[test]
fn tick_beside_a_long_reader_is_not_delayed_and_the_wal_stays_bounded() {
    let env = TestEnv::new();
    for p in 0..3 {
        let ws = env.ws("u", &format!("p{p}"));
        write(&ws.join("a.txt"), format!("project {p}\n").as_bytes());
    }
    env.snapshot(&[]);
    let alone = Instant::now();
    env.snapshot(&[]);
    let alone = alone.elapsed();

    let reader = rusqlite::Connection::open_with_flags(
        env.store.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let before: i64 = reader
        .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))
        .unwrap();
    let mut wal = Vec::new();
    for tick in 0..4 {
        let t = Instant::now();
        env.snapshot(&[]);
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "tick {tick} beside a reader took {took:?} (alone: {alone:?}): it waited for the reader"
        );
        wal.push(wal_len(&env.store));
    }
    // The reader's view did not move.
    let still: i64 = reader
        .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(before, still);
    // A few pages per no-change tick, not megabytes.
    assert!(
        *wal.last().unwrap() < 2 * MIB as u64,
        "WAL sizes while a reader is pinned: {wal:?}"
    );
    drop(reader);
    env.snapshot(&[]);
    assert_eq!(
        wal_len(&env.store),
        0,
        "the first tick without a reader truncates the WAL"
    );
}

// ---------------------------------------------------------------------------
// Network and FUSE file systems
// ---------------------------------------------------------------------------

/// A store on NFS (its `statfs` magic stood in by the test hook
/// `WSNAP_TEST_FS_MAGIC`) is refused by every command, exit 3, naming the
/// file system; `--unsafe-allow-network-fs` or its environment variable
/// overrides it.
#[test]
fn store_on_a_network_file_system_is_refused_unless_overridden() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    write(&ws.join("a.txt"), b"a\n");
    let nfs = |c: &mut Command| {
        c.env("WSNAP_TEST_FS_MAGIC", "0x6969");
    };

    // Refused before a store is even created.
    let mut c = env.cmd();
    c.args(["snapshot", "--root"]).arg(&env.root);
    nfs(&mut c);
    let out = expect_code(&mut c, 3);
    assert!(out.stderr.contains("NFS"), "{out}");
    assert!(out.stderr.contains("local file systems only"), "{out}");
    assert!(out.stderr.contains("--unsafe-allow-network-fs"), "{out}");
    assert!(!env.store.exists(), "nothing was created");

    // The override, as a flag and as an environment variable.
    let mut c = env.cmd();
    c.args(["snapshot", "--unsafe-allow-network-fs", "--root"])
        .arg(&env.root);
    nfs(&mut c);
    let out = expect_code(&mut c, 0);
    assert!(out.stderr.contains("NFS"), "the override warns: {out}");
    let mut c = env.cmd();
    c.args(["list", "--json"])
        .env("WSNAP_UNSAFE_ALLOW_NETWORK_FS", "1");
    nfs(&mut c);
    assert_eq!(
        expect_code(&mut c, 0).json()["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Every other command refuses too.
    let target = env.path("t");
    for (args, what) in [
        (vec!["list"], "list"),
        (vec!["check"], "check"),
        (vec!["prune"], "prune"),
        (vec!["ls", "u/p", "--at", "latest"], "ls"),
    ] {
        let mut c = env.cmd();
        c.args(&args);
        nfs(&mut c);
        let out = expect_code(&mut c, 3);
        assert!(out.stderr.contains("NFS"), "{what}: {out}");
    }
    let mut c = env.cmd();
    c.args(["restore", "u/p", "--at", "latest", "--to"])
        .arg(&target);
    nfs(&mut c);
    expect_code(&mut c, 3);
    assert!(!target.exists());
    // `status` says UNKNOWN (its exit 3).
    let mut c = env.cmd();
    c.args(["status", "--root"]).arg(&env.root);
    c.env("WSNAP_TEST_FS_MAGIC", "0x65735546");
    let out = expect_code(&mut c, 3);
    assert!(out.stdout.starts_with("WSNAP UNKNOWN"), "{out}");
    assert!(out.stdout.contains("FUSE"), "{out}");
}

// ---------------------------------------------------------------------------
// ls and check beside a prune
// ---------------------------------------------------------------------------

/// Start `wsnap ARGS` paused at `point`; returns the child and the gate
/// file to remove to let it go on.
fn start_paused(env: &TestEnv, args: &[&str], point: &str) -> (std::process::Child, PathBuf) {
    let gate = env.path(format!("gate-{point}"));
    write(&gate, b"");
    let reached = PathBuf::from(format!("{}.reached", gate.display()));
    let mut cmd = env.std_cmd();
    cmd.args(args)
        .env("WSNAP_PAUSE_AT", format!("{point}:{}", gate.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start wsnap");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reached.exists() {
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "wsnap {args:?} never reached pause point {point}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, gate)
}

/// Four snapshots of u/p, each with new data; returns their ids.
fn four_snapshots(env: &TestEnv) -> Vec<String> {
    let ws = env.ws("u", "p");
    (0..4u64)
        .map(|t| {
            write(&ws.join("data.bin"), &random_bytes(200 + t, 100 * KIB));
            let w = env.snapshot_ws("u/p", &["--time", &format!("2026-01-01T00:0{t}:00Z")]);
            s(&w, "id").to_string()
        })
        .collect()
}

/// `ls` of a snapshot that a prune forgets (and whose blobs it drops from
/// the index) while the `ls` is between choosing the snapshot and reading
/// its trees: the `ls` finishes from the view it started with, instead of
/// failing with a message that sounds like corruption.
#[test]
fn ls_beside_a_prune_reads_one_view() {
    let env = TestEnv::new();
    let ids = four_snapshots(&env);
    let (child, gate) = start_paused(
        &env,
        &["ls", "u/p", "--snapshot", &ids[0], "--json"],
        "ls.selected",
    );
    let mut c = env.cmd();
    c.args(["prune", "--keep-last", "1", "--max-unused", "0", "--json"]);
    let r = expect_code(&mut c, 0).json();
    assert_eq!(r["forgotten"].as_array().unwrap().len(), 3, "{r:#}");
    std::fs::remove_file(&gate).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ls beside a prune failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entries"][0]["name"], "data.bin", "{v:#}");
}

/// `check` that lists the packs, then sees a prune forget snapshots and
/// rewrite every pack, reports the state it started with: the counts of
/// that state and no problem.
#[test]
fn check_beside_a_prune_reads_one_view() {
    let env = TestEnv::new();
    four_snapshots(&env);
    let mut c = env.cmd();
    c.args(["check", "--json"]);
    let before = expect_code(&mut c, 0).json();
    let (child, gate) = start_paused(&env, &["check", "--json"], "check.packs_listed");
    let mut c = env.cmd();
    c.args(["prune", "--keep-last", "1", "--max-unused", "0", "--json"]);
    let r = expect_code(&mut c, 0).json();
    assert_eq!(r["forgotten"].as_array().unwrap().len(), 3, "{r:#}");
    std::fs::remove_file(&gate).unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert!(out.status.success(), "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    for k in ["packs", "blobs", "snapshots"] {
        assert_eq!(v[k], before[k], "{k}: {v:#} vs {before:#}");
    }
}

// ---------------------------------------------------------------------------
// journal/ made durable
// ---------------------------------------------------------------------------

/// The first run creates `STORE/journal/` and fsyncs the store directory
/// after it (through strace: the new entry must be durable before the
/// snapshots journaled inside it are committed).
#[test]
fn journal_directory_entry_is_fsynced_in_the_store_directory() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    write(&ws.join("a.txt"), b"a\n");
    let mut c = env.cmd();
    c.arg("init");
    expect_code(&mut c, 0);
    assert!(!env.store.join("journal").exists());
    let trace = env.path("trace");
    let out = clean_env(std::process::Command::new("strace"))
        .args([
            "-f",
            "-qq",
            "-e",
            "trace=mkdir,mkdirat,openat,open,fsync,fdatasync,close",
        ])
        .arg("-o")
        .arg(&trace)
        .arg(BIN)
        .arg("--store")
        .arg(&env.store)
        .args(["snapshot", "--root"])
        .arg(&env.root)
        .output()
        .expect("this test needs strace(1)");
    assert!(
        out.status.success(),
        "snapshot under strace failed (this test needs strace(1) and ptrace):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let journal = format!("\"{}\"", env.store.join("journal").display());
    let store = format!("\"{}\"", env.store.display());
    let lines: Vec<&str> = text.lines().collect();
    let made = lines
        .iter()
        .position(|l| l.contains("mkdir") && l.contains(&journal) && l.ends_with("= 0"))
        .unwrap_or_else(|| panic!("no mkdir of {journal} in the trace:\n{text}"));
    // After it: the store directory opened (fd N) and fsynced.
    let mut open_fds = Vec::new();
    let mut synced = false;
    for l in &lines[made..] {
        // `strace -f` starts each line with the pid.
        let body = match l.split_once(' ') {
            Some((pid, b)) if pid.bytes().all(|c| c.is_ascii_digit()) => b.trim_start(),
            _ => *l,
        };
        if body.starts_with("openat(") && body.contains(&format!("{store},")) {
            if let Some(fd) = body
                .rsplit("= ")
                .next()
                .and_then(|f| f.trim().parse::<i32>().ok())
            {
                open_fds.push(fd);
            }
        }
        if let Some(fd) = body
            .strip_prefix("fsync(")
            .and_then(|r| r.split(')').next())
            .and_then(|f| f.parse::<i32>().ok())
        {
            if open_fds.contains(&fd) {
                synced = true;
                break;
            }
        }
        if let Some(fd) = body
            .strip_prefix("close(")
            .and_then(|r| r.split(')').next())
            .and_then(|f| f.parse::<i32>().ok())
        {
            open_fds.retain(|x| *x != fd);
        }
    }
    assert!(
        synced,
        "the store directory was not fsynced after {journal} was made:\n{}",
        lines[made..].join("\n")
    );
}
