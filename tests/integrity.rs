//! A snapshot never references data the store lacks (issue 13): after
//! `repair` lost a pack, the next snapshot takes no damaged parent, so it
//! reads the files again and stores what was lost; the damaged snapshot is
//! whole again once nothing it reaches is missing; `--reread` ignores the
//! stat cache for one run.

mod common;

use std::fs;

use common::*;

/// No listed snapshot is marked damaged.
#[track_caller]
fn assert_none_damaged(env: &TestEnv) {
    let flags = damaged_flags(env);
    assert!(flags.iter().all(|(_, d)| !d), "{flags:?}");
}

#[test]
fn after_repair_a_lost_file_is_stored_again_and_the_damaged_snapshot_heals() {
    let env = TestEnv::new();
    let (damaged, copy) = repaired_with_a_lost_file(&env);
    assert_eq!(damaged_flags(&env), [(damaged.clone(), true)]);

    // Nothing changed on disk: the next snapshot must not reuse the damaged
    // parent's chunk ids; it reads big.bin again and stores it.
    let w = env.snapshot_ws("bob/p", &[]);
    assert!(u(&w, "read_bytes") >= 300 * KIB as u64, "{w:#}");
    assert!(u(&w, "added_bytes") > 0, "{w:#}");
    let target = env.path("latest");
    env.restore("bob/p", s(&w, "id"), &target, &[]);
    assert_trees_equal(&copy, &target);

    // The damaged snapshot reaches nothing missing any more: whole again,
    // and it restores big.bin too.
    assert_none_damaged(&env);
    expect_code(env.cmd().args(["check", "--read-data"]), 0);
    // Its trees were linked to the stored-again chunks: forgetting the new
    // snapshot and collecting garbage keeps them.
    expect_code(env.cmd().args(["forget", "--snapshot", s(&w, "id")]), 0);
    expect_code(env.cmd().args(["check", "--read-data"]), 0);
    let old = env.path("old");
    env.restore("bob/p", &damaged, &old, &[]);
    assert_eq!(
        fs::read(old.join("big.bin")).unwrap(),
        fs::read(copy.join("big.bin")).unwrap()
    );
}

#[test]
fn after_repair_an_edit_beside_the_lost_file_commits_and_other_workspaces_too() {
    let env = TestEnv::new();
    let (_, _) = repaired_with_a_lost_file(&env);
    // A sibling edited, and a new workspace: one full run commits both.
    let b = env.root.join("bob/p");
    append(&b.join("keep.txt"), b" and more");
    write(&env.ws("carol", "new").join("c.txt"), b"carol");
    let report = env.snapshot(&[]);
    let ok: Vec<&str> = report["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| s(w, "status"))
        .collect();
    assert_eq!(ok, ["ok", "ok"], "{report:#}");
    let target = env.path("bob");
    let bob = report["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| s(w, "user") == "bob")
        .unwrap();
    env.restore("bob/p", s(bob, "id"), &target, &[]);
    assert_trees_equal(&b, &target);
    // The old snapshot stays damaged: the keep.txt it had was in the lost
    // pack and exists nowhere any more. Those are the problems: the flag,
    // and the reference naming the file.
    let out = expect_code(env.cmd().args(["check", "--read-data"]), 1);
    assert!(out.stdout.contains("2 problems found"), "{out}");
    assert!(out.stdout.contains("is marked damaged"), "{out}");
    assert!(out.stdout.contains("of bob/p: /keep.txt"), "{out}");
}

#[test]
fn reread_ignores_the_stat_cache_for_one_run() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    write(&ws.join("a.bin"), &random_bytes(3, 100 * KIB));
    write(&ws.join("sub/b.txt"), b"b");
    wait_out_racy_window(&env.root);
    env.snapshot_ws("u/p", &[]);
    let cached = env.snapshot_ws("u/p", &[]);
    assert_eq!(u(&cached, "read_bytes"), 0);
    let reread = env.snapshot_ws("u/p", &["--reread"]);
    assert_eq!(u(&reread, "read_bytes"), 100 * KIB as u64 + 1);
    assert_eq!(u(&reread, "added_bytes"), 0, "{reread:#}");
    assert_ne!(s(&reread, "id"), s(&cached, "id"));
    let after = env.snapshot_ws("u/p", &[]);
    assert_eq!(u(&after, "read_bytes"), 0);
}

#[test]
fn check_finds_a_corrupt_catalog_page() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    for i in 0..3000 {
        write(
            &ws.join(format!("d{}/f{i}.txt", i % 30)),
            format!("file {i}").as_bytes(),
        );
    }
    env.snapshot_ws("u/p", &[]);
    let catalog = env.store.join("catalog.sqlite");
    let len = fs::metadata(&catalog).unwrap().len();
    assert!(len > 200_000, "catalog only {len} bytes");
    // 256 bytes overwritten in the middle of the file (the run ended with
    // a checkpoint, so the file holds everything).
    let mut bytes = fs::read(&catalog).unwrap();
    bytes[100_000..100_256].copy_from_slice(&random_bytes(9, 256));
    fs::write(&catalog, &bytes).unwrap();
    for args in [&["check"][..], &["check", "--read-data"][..]] {
        let out = run(env.cmd().args(args));
        assert_eq!(out.code, 1, "{args:?}: {out}");
        assert!(out.stdout.contains("SQLite reports"), "{args:?}: {out}");
        assert!(out.stdout.contains("wsnap repair"), "{args:?}: {out}");
        assert!(!out.stdout.contains("no problems"), "{args:?}: {out}");
    }
}

#[test]
fn check_read_data_finds_a_reference_the_index_lacks() {
    let env = TestEnv::new();
    let (damaged, _) = repaired_with_a_lost_file(&env);
    // repair indexed the damaged snapshot's root tree with only the
    // references it found; --read-data decodes it and names the lost file.
    let out = run(env.cmd().args(["check", "--read-data"]));
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains("but not stored"), "{out}");
    assert!(
        out.stdout
            .contains(&format!("snapshot {} of bob/p: /big.bin", &damaged[..8])),
        "{out}"
    );
}

/// A chunk whose stored copy is corrupt (found by `check --read-data`) was
/// reused by every later snapshot of the unchanged file, forever. Now check
/// records it: the chunk leaves the index, the snapshots that reach it are
/// marked damaged, the next snapshot reads the file again and stores a good
/// copy, and the damaged snapshot is whole again.
#[test]
fn a_corrupt_chunk_found_by_check_is_stored_again_by_the_next_snapshot() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    let data = random_bytes(5, 200 * KIB);
    write(&ws.join("random.bin"), &data);
    write(&ws.join("small.txt"), b"hello");
    wait_out_racy_window(&env.root);
    let first = s(&env.snapshot_ws("u/p", &[]), "id").to_string();
    let needle = &data[1000..1064];
    let mut hit = false;
    for p in pack_files(&env.store) {
        let mut bytes = fs::read(&p).unwrap();
        if let Some(pos) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[pos] ^= 0xff;
            fs::write(&p, &bytes).unwrap();
            hit = true;
        }
    }
    assert!(hit, "the random file is stored raw in some pack");
    let out = expect_code(env.cmd().args(["check", "--read-data"]), 1);
    assert!(out.stdout.contains("u/p: /random.bin"), "{out}");
    assert!(
        out.stdout
            .contains("recorded: 1 damaged blobs left the index and 1 snapshots"),
        "{out}"
    );
    assert_eq!(damaged_flags(&env), [(first.clone(), true)]);

    // Unchanged file: read again (no damaged parent), stored again.
    let next = env.snapshot_ws("u/p", &[]);
    assert!(u(&next, "read_bytes") >= 200 * KIB as u64, "{next:#}");
    // Only the damaged chunk is stored again; the file's other chunks are
    // found intact in the index.
    let added = u(&next, "added_bytes");
    assert!(added > 0 && added < 100 * KIB as u64, "{next:#}");
    let target = env.path("restored");
    env.restore("u/p", s(&next, "id"), &target, &[]);
    assert_eq!(fs::read(target.join("random.bin")).unwrap(), data);
    // The first snapshot reaches nothing missing any more: whole again, and
    // its random.bin restores from the good copy.
    assert_none_damaged(&env);
    let old = env.path("old");
    env.restore("u/p", &first, &old, &[]);
    assert_eq!(fs::read(old.join("random.bin")).unwrap(), data);
    // And later ticks reuse the good copy.
    let after = env.snapshot_ws("u/p", &[]);
    assert_eq!(u(&after, "read_bytes"), 0, "{after:#}");
}

/// One workspace whose snapshot references a blob the store lacks (here: a
/// chunk row deleted behind wsnap's back, so nothing marks it damaged) used
/// to fail the whole group commit: every workspace of the run got no
/// snapshot, exit 3, every tick. Now only that workspace fails.
#[test]
fn a_refused_snapshot_fails_only_its_workspace_in_a_group_commit() {
    let env = TestEnv::new();
    let a = env.ws("alice", "p");
    write(&a.join("a.txt"), b"alice's unique content");
    write(&a.join("b.txt"), b"b");
    let b = env.ws("bob", "p");
    write(&b.join("x.txt"), b"bob");
    wait_out_racy_window(&env.root);
    env.snapshot(&[]);
    let chunk = wsnap::Id::of(b"alice's unique content");
    let db = rusqlite::Connection::open(env.store.join("catalog.sqlite")).unwrap();
    db.execute(
        "DELETE FROM tree_refs WHERE blob_id = (SELECT id FROM blobs WHERE hash = ?1)",
        [&chunk.0[..]],
    )
    .unwrap();
    assert_eq!(
        db.execute("DELETE FROM blobs WHERE hash = ?1", [&chunk.0[..]])
            .unwrap(),
        1
    );
    drop(db);
    // Both change; alice's new tree reuses a.txt's (lost) chunk id.
    append(&a.join("b.txt"), b" more");
    append(&b.join("x.txt"), b" more");
    let out = run(env
        .cmd()
        .args(["snapshot", "--json", "--root"])
        .arg(&env.root));
    assert_eq!(out.code, 1, "{out}");
    let report = out.json();
    let status = |user: &str| {
        report["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| s(w, "user") == user)
            .cloned()
            .unwrap()
    };
    assert_eq!(status("alice")["status"], "failed", "{report:#}");
    assert!(
        s(&status("alice"), "error").contains("not stored"),
        "{report:#}"
    );
    let bob = status("bob");
    assert_eq!(bob["status"], "ok", "{report:#}");
    // Bob's snapshot is really there, and restores; the journal holds no
    // record of alice's refused one.
    let target = env.path("bob");
    env.restore("bob/p", s(&bob, "id"), &target, &[]);
    assert_trees_equal(&b, &target);
    let ids: Vec<String> = list_json(&env)
        .iter()
        .map(|v| s(v, "id").to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let check = run(env.cmd().arg("check"));
    assert!(!check.stdout.contains("journal"), "{check}");
}

/// A snapshot's root tree whose stored copy is corrupt stays indexed (the
/// snapshot row needs it), and the workspace is unchanged, so the next
/// snapshot builds a tree with the same id: that run finds the stored copy
/// does not read back and stores its own, and the index row names it.
#[test]
fn a_corrupt_root_tree_is_replaced_by_the_next_snapshot() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    write(&ws.join("a.txt"), b"alpha");
    write(&ws.join("b.txt"), b"beta");
    wait_out_racy_window(&env.root);
    let first = s(&env.snapshot_ws("u/p", &[]), "id").to_string();
    let db = rusqlite::Connection::open(env.store.join("catalog.sqlite")).unwrap();
    let (pack, offset): (Vec<u8>, i64) = db
        .query_row(
            "SELECT p.pack_hash, b.offset FROM snapshots s
             JOIN blobs b ON b.id = s.root_tree_id JOIN packs p ON p.id = b.pack_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(db);
    let hex: String = pack.iter().map(|b| format!("{b:02x}")).collect();
    let path = env
        .store
        .join("packs")
        .join(&hex[..2])
        .join(format!("{hex}.pack"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[offset as usize + wsnap::pack::format::RECORD_HEADER_BYTES + 2] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    // check finds it and marks the snapshot damaged; the root stays indexed.
    let out = expect_code(env.cmd().args(["check", "--read-data"]), 1);
    assert!(out.stdout.contains("(directory)"), "{out}");
    assert_eq!(damaged_flags(&env), [(first.clone(), true)]);
    // Unchanged workspace, same root tree id: stored again, index re-pointed.
    let next = env.snapshot_ws("u/p", &[]);
    let target = env.path("next");
    env.restore("u/p", s(&next, "id"), &target, &[]);
    assert_trees_equal(&ws, &target);
    // The first snapshot reads back through the same row: whole again.
    assert_none_damaged(&env);
    let old = env.path("old");
    env.restore("u/p", &first, &old, &[]);
    assert_trees_equal(&ws, &old);
}
