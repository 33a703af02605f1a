//! Large directories (issue 18): stored as content-defined pieces under an
//! index, so that an edit costs what it changed, not the whole listing.
//!
//! A directory of 20,000 files, one file edited: the second snapshot adds
//! ≤ 40 KiB of packs and ≤ 1,000 `tree_refs` rows (one whole-listing tree
//! was 810 KiB and 20,000 rows); both snapshots restore byte-identical
//! (whole, one path, `ls`, `diff`); a damaged piece is found by `check`,
//! set aside by `repair`, and made whole again by the next snapshot.

mod common;

use std::fs;
use std::path::Path;

use common::*;

const FILES: usize = 20_000;

fn name(i: usize) -> String {
    format!("sample-{i:05}.txt")
}

/// `ws/big/` with `FILES` small files (distinct contents), and a small
/// neighbour directory.
fn big_workspace(env: &TestEnv) -> std::path::PathBuf {
    let ws = env.ws("alice", "survey");
    let big = ws.join("big");
    fs::create_dir_all(&big).unwrap();
    for i in 0..FILES {
        write(
            &big.join(name(i)),
            format!("sample {i}: {}\n", i * 7919).as_bytes(),
        );
    }
    write(&ws.join("notes/README.md"), b"a survey\n");
    ws
}

/// Rows of `tree_refs` in the store's catalog (read-only).
fn tree_refs(store: &Path) -> i64 {
    let c = rusqlite::Connection::open_with_flags(
        store.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    c.query_row("SELECT count(*) FROM tree_refs", [], |r| r.get(0))
        .unwrap()
}

/// The id of the snapshot a `snapshot_ws` report describes.
fn id_of(report: &serde_json::Value) -> String {
    s(report, "id").to_string()
}

#[test]
fn an_edit_in_a_directory_of_20000_files_costs_what_it_changed() {
    let env = TestEnv::new();
    let ws = big_workspace(&env);
    wait_out_racy_window(&ws);
    let first = env.snapshot_ws("alice/survey", &[]);
    let before = env.path("before");
    copy_tree(&ws, &before);
    let (bytes0, refs0) = (pack_bytes(&env.store), tree_refs(&env.store));

    // One line of one file in the middle.
    let edited = ws.join("big").join(name(12_345));
    write(&edited, b"sample 12345: edited\n");
    wait_out_racy_window(&ws);
    let second = env.snapshot_ws("alice/survey", &[]);
    let (bytes1, refs1) = (pack_bytes(&env.store), tree_refs(&env.store));
    let added = bytes1 - bytes0;
    let rows = refs1 - refs0;
    assert!(
        added <= 40 * KIB as u64,
        "the edit added {added} bytes of packs"
    );
    assert!(rows <= 1_000, "the edit added {rows} tree_refs rows");
    assert!(u(&second, "added_bytes") <= 40 * KIB as u64, "{second:#}");

    // Unchanged: nothing stored, not a row added.
    let third = env.snapshot_ws("alice/survey", &[]);
    assert_eq!(u(&third, "added_bytes"), 0, "{third:#}");
    assert_eq!(tree_refs(&env.store), refs1);
    assert_eq!(pack_bytes(&env.store), bytes1);

    // Both restore byte-identical.
    let out0 = env.path("out0");
    env.restore("alice/survey", &id_of(&first), &out0, &[]);
    assert_trees_equal(&before, &out0);
    let out1 = env.path("out1");
    env.restore("alice/survey", &id_of(&second), &out1, &[]);
    assert_trees_equal(&ws, &out1);

    // One path: read through one piece.
    let one = env.path("one");
    let mut c = env.cmd();
    c.args(["restore", "alice/survey", "--snapshot", &id_of(&first)])
        .args(["--path", &format!("big/{}", name(12_345)), "--to"])
        .arg(&one);
    expect_code(&mut c, 0);
    let got = fs::read(one.join("big").join(name(12_345)))
        .or_else(|_| fs::read(one.join(name(12_345))))
        .unwrap();
    assert_eq!(got, format!("sample 12345: {}\n", 12_345 * 7919).as_bytes());
    // Names at both ends of the directory and one that is not there.
    for (path, code) in [
        (format!("big/{}", name(0)), 0),
        (format!("big/{}", name(FILES - 1)), 0),
        ("big/sample-00000.txt.gone".to_string(), 4),
        ("big/a-first".to_string(), 4),
    ] {
        let mut c = env.cmd();
        c.args(["cat", "alice/survey", "--snapshot", &id_of(&second), &path]);
        let out = run(&mut c);
        assert_eq!(out.code != 0, code != 0, "cat {path}: {out}");
    }

    // `ls` lists every entry; `diff` sees the one edit.
    let entries = env.ls("alice/survey", &id_of(&second), Some("big"));
    assert_eq!(entries.len(), FILES);
    let mut c = env.cmd();
    c.args([
        "diff",
        "alice/survey",
        &id_of(&first),
        &id_of(&second),
        "--json",
    ]);
    let diff = expect_code(&mut c, 0).stdout;
    assert!(diff.contains(&name(12_345)), "{diff}");
    assert!(!diff.contains(&name(12_346)), "{diff}");

    let out = check(&env, true);
    assert_eq!(out.code, 0, "{out}");
}

/// The index blob of the big directory and one piece of it: the largest
/// tree blobs of the store (the root and `notes/` are tiny). Returns the
/// piece's pack file and the offset of its payload.
fn largest_tree_blob(store: &Path) -> (std::path::PathBuf, u64, u64) {
    let c = rusqlite::Connection::open_with_flags(
        store.join("catalog.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (pack, offset, stored): (Vec<u8>, i64, i64) = c
        .query_row(
            "SELECT p.pack_hash, b.offset, b.stored_len FROM blobs b JOIN packs p ON p.id = b.pack_id
             WHERE b.kind = 2 ORDER BY b.raw_len DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let hex: String = pack.iter().map(|b| format!("{b:02x}")).collect();
    let path = store
        .join("packs")
        .join(&hex[..2])
        .join(format!("{hex}.pack"));
    (path, offset as u64 + 48, stored as u64)
}

#[test]
fn a_damaged_piece_is_found_set_aside_and_stored_again() {
    let env = TestEnv::new();
    let ws = big_workspace(&env);
    wait_out_racy_window(&ws);
    let first = env.snapshot_ws("alice/survey", &[]);
    let saved = env.path("saved");
    copy_tree(&ws, &saved);
    assert_eq!(check(&env, true).code, 0);

    let (pack, payload, len) = largest_tree_blob(&env.store);
    let mut bytes = fs::read(&pack).unwrap();
    bytes[(payload + len / 2) as usize] ^= 0x55;
    fs::write(&pack, &bytes).unwrap();

    // check names the directory whose piece it is.
    let out = check(&env, true);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains("/big (directory)"), "{out}");

    // A restore fails loudly for that directory.
    let mut c = env.cmd();
    c.args([
        "restore",
        "alice/survey",
        "--snapshot",
        &id_of(&first),
        "--to",
    ])
    .arg(env.path("broken"));
    let out = run(&mut c);
    assert_ne!(out.code, 0, "{out}");

    // repair sets the pack aside and marks the snapshot damaged.
    let mut c = env.cmd();
    c.args(["repair", "--json"]);
    let out = run(&mut c);
    assert_eq!(out.code, 1, "{out}");
    let r = out.json();
    let snaps = r["snapshots"].as_array().unwrap();
    assert!(snaps.iter().any(|s| s["damaged"] == true), "{r:#}");

    // The next snapshot stores the piece again: the old snapshot is whole.
    let second = env.snapshot_ws("alice/survey", &[]);
    let out = check(&env, true);
    assert_eq!(out.code, 0, "{out}");
    let out0 = env.path("out0");
    env.restore("alice/survey", &id_of(&first), &out0, &[]);
    assert_trees_equal(&saved, &out0);
    let out1 = env.path("out1");
    env.restore("alice/survey", &id_of(&second), &out1, &[]);
    assert_trees_equal(&ws, &out1);
}

/// Below `walk::HELD_LEVELS` (128) a directory is walked one entry at a
/// time, lending its handle to each subdirectory: a large directory there
/// spans several batches of names, with subdirectories in the first and
/// the last, and still snapshots and restores whole, edit included.
#[test]
fn a_large_directory_below_the_held_levels_spans_batches() {
    let env = TestEnv::new();
    let ws = env.ws("alice", "deep");
    let mut dir = ws.clone();
    for _ in 0..130 {
        dir = dir.join("d");
    }
    fs::create_dir_all(&dir).unwrap();
    for i in 0..5_000 {
        write(&dir.join(name(i)), format!("deep {i}\n").as_bytes());
    }
    write(&dir.join("sample-00100.d/inner.txt"), b"first batch\n");
    write(&dir.join("sample-04900.d/inner.txt"), b"third batch\n");
    wait_out_racy_window(&ws);
    let first = env.snapshot_ws("alice/deep", &[]);
    assert_eq!(u(&first, "files"), 5_002, "{first:#}");
    let out0 = env.path("out0");
    env.restore("alice/deep", &id_of(&first), &out0, &[]);
    assert_trees_equal(&ws, &out0);

    write(&dir.join(name(2_500)), b"edited\n");
    wait_out_racy_window(&ws);
    let second = env.snapshot_ws("alice/deep", &[]);
    // One piece, the index, and the 130 small trees above it.
    assert!(u(&second, "added_bytes") <= 64 * KIB as u64, "{second:#}");
    let out1 = env.path("out1");
    env.restore("alice/deep", &id_of(&second), &out1, &[]);
    assert_trees_equal(&ws, &out1);
}
