//! Issue 13, "Repair and forget leftovers": what `repair` indexes or sets
//! aside must not outlive the snapshots that used it.
//!
//! - `prune` collects every blob no snapshot reaches, whatever its kind
//!   (trees and chunk lists of a run that crashed before its commit, which
//!   `repair` indexes, used to stay forever with everything below them);
//! - `forget` purges the forgotten data from `damaged/` too, or names what
//!   it could not and exits 1;
//! - `repair` salvages a record whose header is damaged when the old
//!   catalog still knows where its intact payload is;
//! - `repair` keeps a bounded number of old catalogs under `damaged/`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

const HOUR: i64 = 3_600_000_000_000;

fn forget(env: &TestEnv, id: &str, code: i32) -> Out {
    let mut c = env.cmd();
    c.args(["forget", "--json", "--snapshot", id]);
    expect_code(&mut c, code)
}

/// Position of `needle` in the store's only pack file.
fn find_in_pack(pack: &Path, needle: &[u8]) -> usize {
    fs::read(pack)
        .unwrap()
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("random data is stored raw")
}

fn flip(path: &Path, pos: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[pos] ^= 0x40;
    fs::write(path, &bytes).unwrap();
}

fn kill_before_commit(env: &TestEnv, time_ns: i64) {
    let mut c = env.std_cmd();
    c.env("WSNAP_CRASH_AT", "snapshot.before_commit")
        .arg("snapshot")
        .arg("--root")
        .arg(&env.root)
        .arg("--time")
        .arg(rfc3339(time_ns));
    let st = c.status().unwrap();
    assert!(!st.success(), "the run should have been killed");
}

/// A run killed before its commit leaves a pack with its new chunks, chunk
/// lists and trees; `repair` indexes all of them. `prune` used to sweep
/// only unreferenced chunks, so the crashed run's trees kept themselves and
/// every chunk below them: 300 KiB stored for a few bytes referenced.
#[test]
fn prune_collects_trees_of_crashed_runs_that_repair_indexed() {
    let env = TestEnv::new();
    let ws = env.ws("dana", "notes");
    write(&ws.join("note.txt"), &[b'n'; 186]);
    let t0 = utc_ns(2026, 3, 2, 10, 0, 0);
    let first = snapshot_at(&env, &[], t0);
    let kept_id = s(&first["workspaces"][0], "id").to_string();
    let saved = env.path("saved");
    copy_tree(&ws, &saved);

    let big = random_bytes(0xB16, 300 * KIB);
    write(&ws.join("sub/deeper/big.bin"), &big);
    write(
        &ws.join("sub/small.txt"),
        b"a small file in a new directory",
    );
    kill_before_commit(&env, t0 + HOUR);
    let needles = windows_of(&big);
    assert!(!files_containing(&env.store.join("packs"), &needles).is_empty());

    // With the catalog still there, and again with catalog and journals
    // gone: either way the crashed run's blobs are collected.
    repair(&env, 0);
    let mut c = env.cmd();
    c.args(["prune", "--json", "--keep-last", "10"]);
    let r = expect_code(&mut c, 0).json();
    assert!(u(&r, "blobs_deleted") >= 4, "{r:#}");
    let left = files_containing(&env.store, &needles);
    assert!(
        left.is_empty(),
        "crashed run's data survives prune: {left:#?}"
    );
    assert!(
        pack_bytes(&env.store) < 16 * KIB as u64,
        "{} pack bytes for a 186-byte workspace",
        pack_bytes(&env.store)
    );
    assert_eq!(listed(&env).flags(), vec![(kept_id.clone(), false)]);
    let target = env.path("restored");
    env.restore("dana/notes", &kept_id, &target, &[]);
    assert_trees_equal(&saved, &target);
    let mut c = env.cmd();
    c.args(["check", "--read-data"]);
    expect_code(&mut c, 0);

    // Catalog and journals gone, another crashed run: repair finds the one
    // committed snapshot in the journal it wrote; prune keeps exactly it.
    kill_before_commit(&env, t0 + 2 * HOUR);
    remove_catalog(&env.store);
    repair(&env, 0);
    let mut c = env.cmd();
    c.args(["prune", "--json", "--keep-last", "10"]);
    expect_code(&mut c, 0);
    assert!(files_containing(&env.store, &needles).is_empty());
    let target = env.path("restored2");
    env.restore("dana/notes", &kept_id, &target, &[]);
    assert_trees_equal(&saved, &target);
}

/// Two snapshots; the first alone holds `secret.bin`. Returns
/// (first id, second id, copy of the second state, the only pack).
fn secret_history(env: &TestEnv, secret: &[u8]) -> (String, String, PathBuf, PathBuf) {
    let ws = env.ws("carol", "lab");
    write(&ws.join("secret.bin"), secret);
    write(&ws.join("shared.bin"), &random_bytes(77, 60 * KIB));
    let t0 = utc_ns(2026, 3, 2, 10, 0, 0);
    let r1 = snapshot_at(env, &[], t0);
    let packs = pack_files(&env.store);
    assert_eq!(packs.len(), 1);
    fs::remove_file(ws.join("secret.bin")).unwrap();
    let r2 = snapshot_at(env, &[], t0 + HOUR);
    let saved = env.path("saved2");
    copy_tree(&ws, &saved);
    (
        s(&r1["workspaces"][0], "id").to_string(),
        s(&r2["workspaces"][0], "id").to_string(),
        saved,
        packs[0].clone(),
    )
}

/// One byte of the secret itself is damaged: `repair` copies the rest of
/// the pack out, marks the secret's snapshot damaged and moves the file to
/// `damaged/`. `forget` of that snapshot used to report success with all of
/// the secret still in `damaged/…/*.pack`.
#[test]
fn forget_purges_the_secret_from_damaged_packs() {
    let env = TestEnv::new();
    let secret = random_bytes(0x5EC2E7, 200 * KIB);
    let (id1, id2, saved2, pack) = secret_history(&env, &secret);
    // Away from every window the test looks for.
    flip(&pack, find_in_pack(&pack, &secret[10_000..10_064]));
    let r = repair(&env, 1);
    assert_eq!(r["damaged_packs"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(
        listed(&env).flags(),
        vec![(id1.clone(), true), (id2.clone(), false)]
    );
    let needles = windows_of(&secret);
    let before = files_containing(&env.store.join("damaged"), &needles);
    assert_eq!(before.len(), needles.len(), "{before:#?}");

    let out = forget(&env, &id1, 0);
    let left = files_containing(&env.store, &needles);
    assert!(left.is_empty(), "after forget: {left:#?}\n{out}");
    // The damaged file is kept (rewritten), not deleted.
    let damaged: Vec<PathBuf> = all_files(&env.store.join("damaged"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    assert_eq!(damaged.len(), 1);
    let target = env.path("restored2");
    env.restore("carol/lab", &id2, &target, &[]);
    assert_trees_equal(&saved2, &target);
    let mut c = env.cmd();
    c.args(["check", "--read-data"]);
    expect_code(&mut c, 0);
}

/// The secret's own record header is damaged and the catalog is gone, so
/// nothing can say which bytes of the damaged pack are the secret's. While
/// another snapshot is damaged those bytes may be the only trace of what it
/// lacks: `forget` leaves them, names the file and how to remove it, and
/// exits 1. Once no damaged snapshot remains, the next `forget` purges them.
#[test]
fn forget_names_what_it_cannot_attribute_in_damaged_packs() {
    let env = TestEnv::new();
    let secret = random_bytes(0x5EC2E8, 200 * KIB);
    let (id1, _id2, _saved2, pack) = secret_history(&env, &secret);
    // bob's snapshot, in its own pack, which is then damaged in a payload.
    let bob = env.ws("bob", "p");
    let bob_data = random_bytes(0xB0B, 50 * KIB);
    write(&bob.join("data.bin"), &bob_data);
    let before = pack_files(&env.store);
    let rb = snapshot_at(&env, &["bob/p"], utc_ns(2026, 3, 2, 12, 0, 0));
    let bob_id = s(&rb["workspaces"][0], "id").to_string();
    let bob_pack: Vec<PathBuf> = pack_files(&env.store)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(bob_pack.len(), 1);
    flip(
        &bob_pack[0],
        find_in_pack(&bob_pack[0], &bob_data[1000..1064]),
    );
    // One byte of the id in the secret's record header.
    let payload_at = find_in_pack(&pack, &secret[..64]);
    flip(&pack, payload_at - 20);
    remove_catalog(&env.store);
    repair(&env, 1);
    let damaged: Vec<String> = listed(&env)
        .flags()
        .into_iter()
        .filter(|(_, d)| *d)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(damaged.len(), 2, "secret's and bob's snapshots");
    assert!(damaged.contains(&id1) && damaged.contains(&bob_id));
    let needles = windows_of(&secret);

    let out = forget(&env, &id1, 1);
    assert!(out.stderr.contains("damaged/"), "{out}");
    assert!(out.stderr.contains("rm "), "{out}");
    assert!(!files_containing(&env.store.join("damaged"), &needles).is_empty());
    let r = out.json();
    assert!(!r["damaged_left"].as_array().unwrap().is_empty(), "{r:#}");

    // bob's damaged snapshot forgotten too: nothing can need those bytes.
    forget(&env, &bob_id, 0);
    let left = files_containing(&env.store, &needles);
    assert!(left.is_empty(), "{left:#?}");
}

/// One flipped byte in a record header (the payload intact) while the old
/// catalog still opens and knows the record: `repair` reads the payload at
/// the offset the old catalog gives and keeps it if it hashes to its id.
#[test]
fn repair_salvages_a_record_with_a_damaged_header_from_the_old_catalog() {
    let env = TestEnv::new();
    let ws = env.ws("erin", "p");
    let data = random_bytes(0xE41, 120 * KIB);
    write(&ws.join("data.bin"), &data);
    write(&ws.join("other.txt"), b"other");
    let t0 = utc_ns(2026, 3, 2, 10, 0, 0);
    let r = snapshot_at(&env, &[], t0);
    let id = s(&r["workspaces"][0], "id").to_string();
    let saved = env.path("saved");
    copy_tree(&ws, &saved);
    let pack = pack_files(&env.store).remove(0);
    let payload_at = find_in_pack(&pack, &data[..64]);
    flip(&pack, payload_at - 20);

    let r = repair(&env, 1);
    assert_eq!(r["damaged_packs"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(u(&r, "missing_refs"), 0, "{r:#}");
    assert_eq!(listed(&env).flags(), vec![(id.clone(), false)]);
    let target = env.path("restored");
    env.restore("erin/p", &id, &target, &[]);
    assert_trees_equal(&saved, &target);
    let mut c = env.cmd();
    c.args(["check", "--read-data"]);
    expect_code(&mut c, 0);
}

/// Every `repair` sets the old catalog aside; only the 3 newest copies are
/// kept. Damaged packs and old journals are never deleted.
#[test]
fn repair_keeps_only_the_three_newest_old_catalogs() {
    let env = TestEnv::new();
    let ws = env.ws("fay", "p");
    write(&ws.join("a.bin"), &random_bytes(3, 30 * KIB));
    snapshot_at(&env, &[], utc_ns(2026, 3, 2, 10, 0, 0));
    let data = random_bytes(4, 30 * KIB);
    write(&ws.join("b.bin"), &data);
    wait_out_racy_window(&env.root);
    snapshot_at(&env, &[], utc_ns(2026, 3, 2, 11, 0, 0));
    let pack = pack_files(&env.store)
        .into_iter()
        .find(|p| contains_bytes(&fs::read(p).unwrap(), &data[..64]))
        .unwrap();
    flip(&pack, find_in_pack(&pack, &data[100..164]));
    // The second snapshot stays damaged: every repair exits 1.
    for _ in 0..5 {
        repair(&env, 1);
    }
    let files = all_files(&env.store.join("damaged"));
    let catalogs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.file_name().unwrap() == "catalog.sqlite")
        .collect();
    assert_eq!(catalogs.len(), 3, "{files:#?}");
    let packs = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .count();
    assert_eq!(packs, 1, "{files:#?}");
    let journals = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wsj"))
        .count();
    // The two runs' journals (moved by the first repair) and the journal
    // each of the first four repairs wrote (moved by the next one).
    assert_eq!(journals, 6, "{files:#?}");
}

/// Only the footer of a pack is damaged, so every record is saved and the
/// salvage pack is the intact original, with its very name. `repair` used
/// to write it over the damaged file and then move it to `damaged/`: the new
/// catalog pointed at a pack that was gone (the snapshot marked damaged,
/// and lost by the next repair).
#[test]
fn repair_keeps_a_salvage_pack_that_has_the_damaged_pack_s_name() {
    let env = TestEnv::new();
    let ws = env.ws("gus", "p");
    write(&ws.join("a.bin"), &random_bytes(5, 30 * KIB));
    let r = snapshot_at(&env, &[], utc_ns(2026, 3, 2, 10, 0, 0));
    let id = s(&r["workspaces"][0], "id").to_string();
    let saved = env.path("saved");
    copy_tree(&ws, &saved);
    let pack = pack_files(&env.store).remove(0);
    let original = fs::read(&pack).unwrap();
    let len = original.len();
    flip(&pack, len - 10);
    let r = repair(&env, 1);
    assert_eq!(r["damaged_packs"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(
        fs::read(&pack).unwrap(),
        original,
        "the intact pack is back"
    );
    let aside = PathBuf::from(r["damaged_packs"][0]["moved_to"].as_str().unwrap());
    assert_eq!(
        fs::read(&aside).unwrap().len(),
        len,
        "the damaged file is kept"
    );
    assert_ne!(fs::read(&aside).unwrap(), original);
    assert_eq!(listed(&env).flags(), vec![(id.clone(), false)]);
    repair(&env, 0);
    assert_eq!(listed(&env).flags(), vec![(id.clone(), false)]);
    let target = env.path("restored");
    env.restore("gus/p", &id, &target, &[]);
    assert_trees_equal(&saved, &target);
}

/// A `forget` killed right after it rewrote a damaged pack (the catalog
/// committed, the forgotten bytes zeroed) leaves a consistent store: the
/// snapshot is gone, the secret too, the next prune has nothing left to do
/// in `damaged/`, and the kept snapshot restores.
#[test]
fn a_kill_after_a_damaged_pack_is_rewritten_leaves_a_consistent_store() {
    let env = TestEnv::new();
    let secret = random_bytes(0x5EC2E8, 200 * KIB);
    let (id1, id2, saved2, pack) = secret_history(&env, &secret);
    flip(&pack, find_in_pack(&pack, &secret[10_000..10_064]));
    repair(&env, 1);
    let mut c = env.std_cmd();
    c.env("WSNAP_CRASH_AT", "forget.damaged_rewritten").args([
        "forget",
        "--json",
        "--snapshot",
        &id1,
    ]);
    let st = c.status().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(9),
        "forget was not killed after rewriting the damaged pack"
    );
    assert_eq!(listed(&env).flags(), vec![(id2.clone(), false)]);
    let needles = windows_of(&secret);
    let left = files_containing(&env.store, &needles);
    assert!(left.is_empty(), "{left:#?}");
    let mut c = env.cmd();
    c.args(["prune", "--keep-last", "100", "--json"]);
    let p = expect_code(&mut c, 0).json();
    assert_eq!(
        p["damaged"]["packs_rewritten"].as_u64().unwrap_or(0),
        0,
        "{p:#}"
    );
    let target = env.path("restored2");
    env.restore("carol/lab", &id2, &target, &[]);
    assert_trees_equal(&saved2, &target);
    let mut c = env.cmd();
    c.args(["check", "--read-data"]);
    expect_code(&mut c, 0);
}
