//! Stores written by older releases stay readable.
//!
//! `tests/fixtures/store-v1/` was written by wsnap 0.1.0 (format version 1)
//! with `tests/fixtures/make-store-v1.sh` and is frozen: a change of format
//! must keep this test passing (read the old version) and add a fixture for
//! the new one.
//!
//! `tests/fixtures/store-v2/` (format version 2) was written with
//! `tests/fixtures/make-store-v2.sh` by the last commit before the #14
//! refactoring, so that moving code cannot change what an existing store
//! reads as: journals, a pruned history, a symlink, an empty directory, an
//! executable and a big file edited in place.
//!
//! `tests/fixtures/store-v2-bigdir/` (catalog version 2, version-1 trees
//! only) was written with `tests/fixtures/make-store-v2-bigdir.sh` by the
//! last commit before large directories became pieces (issue 18): a
//! directory of 1,500 entries stored whole, which this build reads, checks,
//! and takes as the parent of a snapshot that stores it as pieces.
//!
//! `tests/fixtures/store-v3/` (catalog version 3: a directory stored as
//! indexed pieces, version-1 journal headers, no chunk tiers) was written
//! with `tests/fixtures/make-store-v3.sh` by the last commit before chunk
//! tiers made the catalog version 4 (issue 18).

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;

mod common;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn files_with_hashes(root: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        let name = format!("{prefix}/{}", e.file_name().to_str().unwrap());
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files_with_hashes(&e.path(), &name, out);
        } else if t.is_file() {
            let bytes = std::fs::read(e.path()).unwrap();
            out.insert(name, blake3::hash(&bytes).to_hex().to_string());
        }
    }
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A copy of fixture `name` at `tmp/store` (fixtures are frozen: never
/// run a command on them in place).
fn fixture_copy(tmp: &Path, name: &str) -> std::path::PathBuf {
    let store = tmp.join("store");
    copy_dir(&fixtures().join(name), &store);
    store
}

/// `check --read-data` finds nothing wrong.
fn checks_clean(store: &Path) {
    wsnap(store)
        .args(["check", "--read-data"])
        .assert()
        .success();
}

/// The catalog removed and rebuilt by `repair` from the packs and the
/// journals alone; the result checks clean.
fn rebuilt_from_journals(store: &Path) {
    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        match std::fs::remove_file(store.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("{f}: {e}"),
            _ => {}
        }
    }
    wsnap(store).args(["repair"]).assert().success();
    checks_clean(store);
}

/// How many `chunker_tiers` keys the catalog's `meta` has (0 or 1).
fn tier_keys(store: &Path) -> i64 {
    let c = rusqlite::Connection::open(store.join("catalog.sqlite")).unwrap();
    c.query_row(
        "SELECT count(*) FROM meta WHERE key = 'chunker_tiers'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

fn wsnap(store: &Path) -> Command {
    let mut c = common::bare_cmd();
    c.arg("--store").arg(store);
    c
}

#[test]
fn store_v1_restores_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fixture_copy(tmp.path(), "store-v1");
    // Readers never write: the v1 catalog stays v1.
    let before = std::fs::read(store.join("catalog.sqlite")).unwrap();
    assert_restores_v1(tmp.path(), &store);
    // Nor do dry runs, which read it as it is (issue 17).
    let out = wsnap(&store)
        .args(["prune", "--dry-run", "--json", "--keep-last", "1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["forgotten"].as_array().unwrap().len(), 4, "{r:#}");
    let id = r["forgotten"][0]["id"].as_str().unwrap();
    wsnap(&store)
        .args(["forget", "--dry-run", "--snapshot", id])
        .assert()
        .success();
    assert_eq!(std::fs::read(store.join("catalog.sqlite")).unwrap(), before);
    assert!(!store.join("journal").exists());
}

/// The first writer upgrades a v1 store to v2: every old snapshot gets a
/// journal record, so a lost catalog is rebuilt with all of them.
#[test]
fn store_v1_is_upgraded_by_a_writer_and_then_repairable() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fixture_copy(tmp.path(), "store-v1");
    wsnap(&store)
        .args(["prune", "--keep-last", "100"])
        .assert()
        .success();
    let journals: Vec<_> = std::fs::read_dir(store.join("journal")).unwrap().collect();
    assert_eq!(journals.len(), 1);
    checks_clean(&store);
    assert_restores_v1(tmp.path(), &store);
    rebuilt_from_journals(&store);
    std::fs::remove_dir_all(tmp.path().join("restore")).unwrap();
    std::fs::remove_dir_all(tmp.path().join("older")).unwrap();
    assert_restores_v1(tmp.path(), &store);
}

fn assert_restores_v1(tmp: &Path, store: &Path) {
    let fixtures = fixtures();
    let store = store.to_path_buf();

    let out = wsnap(&store).args(["list", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        list["snapshots"].as_array().unwrap().len(),
        8,
        "4 workspaces × 2 snapshots"
    );

    let mut expected = BTreeMap::new();
    for line in std::fs::read_to_string(fixtures.join("store-v1.b3"))
        .unwrap()
        .lines()
    {
        let (hash, path) = line.split_once("  ").unwrap();
        expected.insert(path.trim_start_matches('.').to_string(), hash.to_string());
    }
    let mut got = BTreeMap::new();
    for ws in [
        "alice/notes",
        "alice/thesis",
        "bob_lab/rna_seq",
        "carol/thesis",
    ] {
        let target = tmp.join("restore").join(ws);
        wsnap(&store)
            .args(["restore", ws, "--at", "2026-11-26T12:05:00Z", "--to"])
            .arg(&target)
            .assert()
            .success();
        files_with_hashes(&target, &format!("/{ws}"), &mut got);
        let link = tmp.join("restore/alice/thesis/latest.csv");
        if ws == "alice/thesis" {
            assert_eq!(
                std::fs::read_link(link).unwrap(),
                Path::new("data/results.csv")
            );
        }
    }
    assert_eq!(got, expected);

    // The older snapshot of alice/notes has the todo list before its edit.
    let older = tmp.join("older");
    wsnap(&store)
        .args([
            "restore",
            "alice/notes",
            "--at",
            "2026-11-26T12:00:00Z",
            "--to",
        ])
        .arg(&older)
        .assert()
        .success();
    let todo = std::fs::read_to_string(older.join("todo.md")).unwrap();
    assert!(!todo.ends_with("ok\n"));
}

/// A version-2 catalog made before the indexes added within version 2
/// (`snapshots_by_started`: the stat-cache parent lookup; `snapshots_skipping`:
/// the skipping workspaces `status` reports, issue #18) reads as it is, and
/// its first writer adds them; snapshots and their parents are unaffected.
#[test]
fn first_writer_adds_an_index_an_older_v2_catalog_lacks() {
    let env = common::TestEnv::new();
    common::write(&env.ws("u", "p").join("f.txt"), b"one");
    common::wait_out_racy_window(&env.root);
    env.snapshot(&[]);
    let cat = env.store.join("catalog.sqlite");
    let indexes = ["snapshots_by_started", "snapshots_skipping"];
    let has_index = |name: &str| {
        let c = rusqlite::Connection::open(&cat).unwrap();
        c.query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    for name in indexes {
        assert_eq!(has_index(name), 1, "new catalogs have {name}");
        let c = rusqlite::Connection::open(&cat).unwrap();
        c.execute_batch(&format!("DROP INDEX {name}")).unwrap();
    }
    // Readers do not need them.
    assert_eq!(common::list_json(&env).len(), 1);
    let mut c = env.cmd();
    c.args(["status", "--min-free", "0", "--root"])
        .arg(&env.root);
    common::expect_code(&mut c, 0);
    for name in indexes {
        assert_eq!(has_index(name), 0, "a reader must not change the catalog");
    }
    // The next writer creates them; the stat cache still finds the parent
    // (nothing is read again).
    let r = env.snapshot(&[]);
    for name in indexes {
        assert_eq!(has_index(name), 1, "{name}");
    }
    assert_eq!(common::u(&r["workspaces"][0], "read_bytes"), 0, "{r:#}");
    assert_eq!(common::list_json(&env).len(), 2);
}

fn expected_hashes(b3: &str) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    for line in std::fs::read_to_string(fixtures().join(b3))
        .unwrap()
        .lines()
    {
        let (hash, path) = line.split_once("  ").unwrap();
        expected.insert(path.trim_start_matches('.').to_string(), hash.to_string());
    }
    expected
}

fn restore_at(store: &Path, ws: &str, at: &str, target: &Path) {
    wsnap(store)
        .args(["restore", ws, "--at", at, "--to"])
        .arg(target)
        .assert()
        .success();
}

/// Every workspace of store-v2 as of its last tick, restored under `into`,
/// has the bytes store-v2.b3 lists.
fn assert_v2_latest_restores(store: &Path, into: &Path) {
    let mut got = BTreeMap::new();
    for ws in [
        "alice/notes",
        "alice/thesis",
        "bob_lab/rna_seq",
        "carol/thesis",
    ] {
        let target = into.join(ws);
        restore_at(store, ws, "2026-11-26T12:10:00Z", &target);
        files_with_hashes(&target, &format!("/{ws}"), &mut got);
    }
    assert_eq!(got, expected_hashes("store-v2.b3"));
}

#[test]
fn store_v2_checks_and_restores_byte_identical() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let store = fixture_copy(tmp.path(), "store-v2");
    let before = std::fs::read(store.join("catalog.sqlite")).unwrap();

    checks_clean(&store);
    let out = wsnap(&store).args(["list", "--json"]).output().unwrap();
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        list["snapshots"].as_array().unwrap().len(),
        8,
        "4 workspaces × 2 snapshots kept by the prune"
    );

    assert_v2_latest_restores(&store, &tmp.path().join("latest"));
    let latest = tmp.path().join("latest");
    assert_eq!(
        std::fs::read_link(latest.join("alice/notes/readme-link")).unwrap(),
        Path::new("../thesis/README.md")
    );
    assert_eq!(
        std::fs::read_link(latest.join("alice/thesis/latest.csv")).unwrap(),
        Path::new("data/results.csv")
    );
    assert!(latest.join("carol/thesis/empty").is_dir());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&latest.join("bob_lab/rna_seq/run.sh")), 0o755);
    let mtime = std::fs::metadata(latest.join("alice/thesis/README.md"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_795_690_800,
        "2026-11-26T11:00:00Z"
    );

    // The 12:05 snapshots: the big file before its edit, the deleted csv
    // still there (the same bytes store-v1 holds for them).
    let v1 = expected_hashes("store-v1.b3");
    let older = tmp.path().join("older");
    restore_at(
        &store,
        "alice/thesis",
        "2026-11-26T12:05:00Z",
        &older.join("t"),
    );
    restore_at(
        &store,
        "bob_lab/rna_seq",
        "2026-11-26T12:05:00Z",
        &older.join("b"),
    );
    let hash = |p: &Path| {
        blake3::hash(&std::fs::read(p).unwrap())
            .to_hex()
            .to_string()
    };
    assert_eq!(
        hash(&older.join("t/data/big.txt")),
        v1["/alice/thesis/data/big.txt"]
    );
    assert_eq!(
        hash(&older.join("b/results/de_genes.csv")),
        v1["/bob_lab/rna_seq/results/de_genes.csv"]
    );
    // The first snapshots were pruned.
    wsnap(&store)
        .args([
            "restore",
            "alice/notes",
            "--at",
            "2026-11-26T12:00:00Z",
            "--to",
        ])
        .arg(tmp.path().join("pruned"))
        .assert()
        .failure();

    // Readers never write.
    assert_eq!(std::fs::read(store.join("catalog.sqlite")).unwrap(), before);
}

/// The journals of a v2 store rebuild its catalog: `repair` after the
/// catalog is lost restores the same bytes.
#[test]
fn store_v2_catalog_is_rebuilt_from_its_journals() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fixture_copy(tmp.path(), "store-v2");
    rebuilt_from_journals(&store);
    assert_v2_latest_restores(&store, &tmp.path().join("r"));
}

fn catalog_version(store: &Path) -> String {
    let c = rusqlite::Connection::open_with_flags(
        store.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.query_row(
        "SELECT value FROM meta WHERE key = 'format_version'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// A store whose large directory is one version-1 tree (before issue 18)
/// reads as it is: checked, restored byte-identical at both snapshots.
/// Its first writer marks the catalog version 4 (3 before issue 18's chunk
/// tiers) and stores the directory
/// as pieces; the store checks clean with both forms in it.
#[test]
fn store_v2_bigdir_reads_and_takes_pieces_on_top() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fixture_copy(tmp.path(), "store-v2-bigdir");
    let before = std::fs::read(store.join("catalog.sqlite")).unwrap();
    checks_clean(&store);

    let latest = tmp.path().join("latest");
    restore_at(&store, "dana/survey", "2026-11-26T12:05:00Z", &latest);
    let mut got = BTreeMap::new();
    files_with_hashes(&latest, "", &mut got);
    let expected: BTreeMap<String, String> = expected_hashes("store-v2-bigdir.b3")
        .into_iter()
        .map(|(p, h)| (p.trim_start_matches("/dana/survey").to_string(), h))
        .collect();
    assert_eq!(got.len(), 1_501);
    assert_eq!(got, expected);
    let older = tmp.path().join("older");
    restore_at(&store, "dana/survey", "2026-11-26T12:00:00Z", &older);
    assert_eq!(
        std::fs::read(older.join("frames/f0700.txt")).unwrap(),
        b"frame 700\n"
    );
    assert_eq!(
        std::fs::read(older.join("frames/f1499.txt")).unwrap(),
        b"frame 1499\n"
    );
    // One path, through the old whole-directory tree.
    let mut c = wsnap(&store);
    c.args([
        "cat",
        "dana/survey",
        "--at",
        "2026-11-26T12:05:00Z",
        "frames/f0700.txt",
    ]);
    assert_eq!(c.output().unwrap().stdout, b"frame 700, edited\n");
    assert_eq!(std::fs::read(store.join("catalog.sqlite")).unwrap(), before);
    assert_eq!(catalog_version(&store), "2");

    // A writer: the workspace as restored, one more file edited.
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("dana")).unwrap();
    std::fs::rename(&latest, root.join("dana/survey")).unwrap();
    std::fs::write(
        root.join("dana/survey/frames/f0001.txt"),
        b"frame 1, edited\n",
    )
    .unwrap();
    common::wait_out_racy_window(&root);
    let out = wsnap(&store)
        .args(["snapshot", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        catalog_version(&store),
        wsnap::catalog::FORMAT_VERSION.to_string()
    );
    // (Restored files have new inodes: that snapshot read them all.) The
    // next one finds everything in the pieces: nothing read, nothing added.
    let out = wsnap(&store)
        .args(["snapshot", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["workspaces"][0]["read_bytes"], 0, "{r:#}");
    assert_eq!(r["workspaces"][0]["added_bytes"], 0, "{r:#}");
    let tree_blobs = {
        let c = rusqlite::Connection::open(store.join("catalog.sqlite")).unwrap();
        c.query_row("SELECT count(*) FROM blobs WHERE kind = 2", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
    };
    assert!(
        tree_blobs >= 2 + 2 + 3,
        "pieces and an index added: {tree_blobs}"
    );
    checks_clean(&store);
    let now = tmp.path().join("now");
    wsnap(&store)
        .args(["restore", "dana/survey", "--at", "latest", "--to"])
        .arg(&now)
        .assert()
        .success();
    let mut got = BTreeMap::new();
    files_with_hashes(&now, "", &mut got);
    let mut want = expected;
    want.insert(
        "/frames/f0001.txt".into(),
        blake3::hash(b"frame 1, edited\n").to_hex().to_string(),
    );
    assert_eq!(got, want);
}

/// A store made before chunk tiers (store-v2, no `chunker_tiers`) keeps
/// cutting every file, however large, into 32 KiB-average chunks: its
/// first writer marks it catalog version 4 and records no tiers, and its
/// new journal keeps the version-1 header (issue 18).
#[test]
fn an_old_store_cuts_a_large_file_as_before() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fixture_copy(tmp.path(), "store-v2");
    let chunks = || {
        let out = wsnap(&store).args(["stats", "--json"]).output().unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["chunks"].as_u64().unwrap()
    };
    let before = chunks();
    let journals = |store: &Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(store.join("journal"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let old_journals = journals(&store);

    let root = tmp.path().join("root");
    let ws = root.join("erin/big");
    std::fs::create_dir_all(&ws).unwrap();
    // 300 MiB (above the default tier's 256 MiB), 16 MiB of it random.
    let hash = common::sparse_with_random_blocks(&ws.join("large.bin"), 300 << 20, 16);
    wsnap(&store)
        .args(["snapshot", "--root"])
        .arg(&root)
        .assert()
        .success();
    let added = chunks() - before;
    assert!(added > 400, "16 MiB of new data in {added} chunks");

    assert_eq!(
        catalog_version(&store),
        wsnap::catalog::FORMAT_VERSION.to_string()
    );
    let tiers = tier_keys(&store);
    assert_eq!(tiers, 0);
    let new: Vec<_> = journals(&store)
        .into_iter()
        .filter(|p| !old_journals.contains(p))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let header = std::fs::read(&new[0]).unwrap();
    assert_eq!(header[4], 1, "journal header version");

    checks_clean(&store);
    let back = tmp.path().join("back");
    restore_at(&store, "erin/big", "latest", &back);
    assert_eq!(common::file_hash(&back.join("large.bin")), hash);
}

/// The workspace of store-v3 as of `at`, restored under `into`: its files
/// with their hashes (paths from the workspace), and where `first` points.
fn v3_restored(store: &Path, at: &str, into: &Path) -> (BTreeMap<String, String>, Vec<u8>) {
    restore_at(store, "fay/atlas", at, into);
    let mut got = BTreeMap::new();
    files_with_hashes(into, "", &mut got);
    let link = std::fs::read_link(into.join("first")).unwrap();
    (got, link.into_os_string().into_encoded_bytes())
}

/// store-v3.b3 with paths from the workspace.
fn v3_expected() -> BTreeMap<String, String> {
    expected_hashes("store-v3.b3")
        .into_iter()
        .map(|(p, h)| (p.trim_start_matches("/fay/atlas").to_string(), h))
        .collect()
}

/// A catalog-version-3 store (pieces, no tiers) reads as it is: checked
/// without a byte of its catalog changed, restored byte-identical at both
/// snapshots, one path read through its pieces; its catalog rebuilt from
/// its version-1 journals alone gives the same; its first writer marks it
/// version 4 without tiers (issue 18).
#[test]
fn store_v3_reads_repairs_and_takes_snapshots_on_top() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fixture_copy(tmp.path(), "store-v3");
    let before = std::fs::read(store.join("catalog.sqlite")).unwrap();
    assert_eq!(catalog_version(&store), "3");
    checks_clean(&store);

    let expected = v3_expected();
    assert_eq!(expected.len(), 1_501);
    let (latest, link) = v3_restored(&store, "2026-11-29T12:05:00Z", &tmp.path().join("latest"));
    assert_eq!(
        (latest, link.as_slice()),
        (expected.clone(), &b"maps/m0001.txt"[..])
    );
    let older = tmp.path().join("older");
    let (got, _) = v3_restored(&store, "2026-11-29T12:00:00Z", &older);
    assert_eq!(
        std::fs::read(older.join("maps/m0700.txt")).unwrap(),
        b"map 700\n"
    );
    assert_eq!(got.len(), 1_501);
    let mut c = wsnap(&store);
    c.args(["cat", "fay/atlas", "--at", "latest", "maps/m0700.txt"]);
    assert_eq!(c.output().unwrap().stdout, b"map 700, edited\n");
    assert_eq!(std::fs::read(store.join("catalog.sqlite")).unwrap(), before);

    // The catalog rebuilt from the journals alone.
    let rebuilt = tmp.path().join("rebuilt");
    copy_dir(&store, &rebuilt);
    rebuilt_from_journals(&rebuilt);
    let (got, _) = v3_restored(&rebuilt, "latest", &tmp.path().join("r-latest"));
    assert_eq!(got, expected);

    // A writer on top: the workspace with one more file edited.
    let root = tmp.path().join("root");
    let (_, _) = v3_restored(&store, "latest", &root.join("fay/atlas"));
    std::fs::write(root.join("fay/atlas/maps/m0001.txt"), b"map 1, edited\n").unwrap();
    common::wait_out_racy_window(&root);
    wsnap(&store)
        .args(["snapshot", "--root"])
        .arg(&root)
        .assert()
        .success();
    assert_eq!(
        catalog_version(&store),
        wsnap::catalog::FORMAT_VERSION.to_string()
    );
    let tiers = tier_keys(&store);
    assert_eq!(tiers, 0, "an old store records no chunk tiers");
    checks_clean(&store);
    let (got, _) = v3_restored(&store, "latest", &tmp.path().join("now"));
    let mut want = expected;
    want.insert(
        "/maps/m0001.txt".into(),
        blake3::hash(b"map 1, edited\n").to_hex().to_string(),
    );
    assert_eq!(got, want);
}
