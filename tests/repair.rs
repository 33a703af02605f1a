//! `repair` rebuilds the catalog from the packs and the snapshot journals:
//! a lost or damaged catalog comes back with every snapshot (and none that
//! was forgotten); lost or damaged packs mark the snapshots that used them
//! instead of dropping them silently.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// Three rounds of edits over two workspaces; every snapshot's tree is
/// copied aside. Returns id → (workspace, copy of its tree).
fn history(env: &TestEnv) -> BTreeMap<String, (String, PathBuf)> {
    let mut states = BTreeMap::new();
    let a = env.ws("alice", "thesis");
    let b = env.ws("bob", "rna_seq");
    write(&a.join("data.bin"), &random_bytes(1, 700 * KIB));
    write(&a.join("notes/todo.md"), b"- write\n");
    write(&b.join("reads.csv"), &repeated(b"ACGT,0.5\n", 300 * KIB));
    symlink(b"reads.csv", &b.join("latest"), hour_ago_ns());
    let t0 = utc_ns(2026, 11, 1, 12, 0, 0);
    for round in 0..3i64 {
        if round > 0 {
            append(
                &a.join("notes/todo.md"),
                format!("- round {round}\n").as_bytes(),
            );
            write(
                &b.join(format!("run{round}.txt")),
                &random_bytes(10 + round as u64, 50 * KIB),
            );
        }
        wait_out_racy_window(&env.root);
        let report = snapshot_at(env, &[], t0 + round * 300_000_000_000);
        for w in report["workspaces"].as_array().unwrap() {
            let ws = ws_of(w);
            let id = w["id"].as_str().unwrap().to_string();
            let copy = env.path(format!("states/{}", &id[..16]));
            let (user, project) = ws.split_once('/').unwrap();
            copy_tree(&env.ws(user, project), &copy);
            states.insert(id, (ws, copy));
        }
    }
    states
}

fn assert_restores(env: &TestEnv, id: &str, ws: &str, expected: &Path) {
    let target = env.path(format!("restored/{}", &id[..16]));
    let _ = fs::remove_dir_all(&target);
    env.restore(ws, id, &target, &[]);
    assert_trees_equal(expected, &target);
}

#[test]
fn lost_catalog_is_rebuilt_without_forgotten_snapshots() {
    let env = TestEnv::new();
    let mut states = history(&env);
    // Forget one snapshot first (alice's oldest, so the next tick still
    // has its parent): repair must not bring it back.
    let forgotten = list_json(&env)
        .iter()
        .find(|s| ws_of(s) == "alice/thesis")
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap();
    let mut c = env.cmd();
    c.args(["forget", "--snapshot", &forgotten]);
    expect_code(&mut c, 0);
    states.remove(&forgotten);
    let before = listed(&env).by_id();
    assert_eq!(before.len(), 5);

    remove_catalog(&env.store);
    let mut c = env.cmd();
    c.args(["list"]);
    let out = expect_code(&mut c, 3);
    assert!(out.stderr.contains("repair`"), "{out}");

    let r = repair(&env, 0);
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["snapshots"].as_array().unwrap().len(), 5);
    assert_eq!(r["lost"].as_array().unwrap().len(), 0);
    assert_eq!(listed(&env).by_id(), before);
    for (id, (ws, copy)) in &states {
        assert_restores(&env, id, ws, copy);
    }
    let out = check(&env, true);
    assert_eq!(out.code, 0, "{out}");

    // The rebuilt index dedups: an unchanged tick adds nothing.
    let again = env.snapshot(&[]);
    for w in again["workspaces"].as_array().unwrap() {
        assert_eq!(u(w, "added_bytes"), 0, "{again:#}");
    }
    // And gc works on it: nothing is dead, so nothing is freed.
    let mut c = env.cmd();
    c.args(["prune", "--keep-last", "100", "--json"]);
    let p = expect_code(&mut c, 0).json();
    assert_eq!(u(&p, "blobs_deleted"), 0, "{p:#}");
    assert_eq!(check(&env, true).code, 0);
}

#[test]
fn damaged_catalog_is_moved_aside_and_rebuilt() {
    let env = TestEnv::new();
    let states = history(&env);
    let cat = env.store.join("catalog.sqlite");
    let mut bytes = fs::read(&cat).unwrap();
    for b in bytes.iter_mut().skip(100).step_by(7) {
        *b ^= 0x5a;
    }
    remove_catalog(&env.store);
    fs::write(&cat, &bytes).unwrap();
    let mut c = env.cmd();
    c.args(["list"]);
    let out = run(&mut c);
    assert_eq!(out.code, 3, "{out}");

    let r = repair(&env, 0);
    let aside = PathBuf::from(r["moved_aside"].as_str().unwrap());
    assert_eq!(fs::read(aside.join("catalog.sqlite")).unwrap(), bytes);
    assert_eq!(listed(&env).by_id().len(), states.len());
    for (id, (ws, copy)) in &states {
        assert_restores(&env, id, ws, copy);
    }
    assert_eq!(check(&env, true).code, 0);
    // A second repair of a healthy store changes nothing visible.
    repair(&env, 0);
    assert_eq!(listed(&env).by_id().len(), states.len());
    assert_eq!(check(&env, true).code, 0);
}

/// The pack files that appeared since `before`.
fn new_packs(store: &Path, before: &[PathBuf]) -> Vec<PathBuf> {
    pack_files(store)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect()
}

#[test]
fn lost_pack_marks_snapshots_damaged_or_lost() {
    let env = TestEnv::new();
    let a = env.ws("alice", "p");
    write(&a.join("a.bin"), &random_bytes(1, 200 * KIB));
    env.snapshot_ws("alice/p", &[]);
    let b = env.ws("bob", "p");
    write(&b.join("big.bin"), &random_bytes(2, 300 * KIB));
    write(&b.join("keep.txt"), b"bob's notes");
    let p0 = pack_files(&env.store);
    let bob1 = env.snapshot_ws("bob/p", &[]);
    let bob_pack = new_packs(&env.store, &p0);
    assert_eq!(bob_pack.len(), 1);
    write(&b.join("later.txt"), b"added later");
    wait_out_racy_window(&env.root);
    let bob2 = env.snapshot_ws("bob/p", &[]);

    fs::remove_file(&bob_pack[0]).unwrap();
    remove_catalog(&env.store);
    let r = repair(&env, 1);
    let lost: Vec<&str> = r["lost"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(lost, [bob1["id"].as_str().unwrap()], "{r:#}");
    let l = listed(&env).by_id();
    assert_eq!(l.len(), 2);
    assert_eq!(l[bob2["id"].as_str().unwrap()], ("bob/p".to_string(), true));
    assert!(l.values().any(|(ws, d)| ws == "alice/p" && !d));

    // The damaged snapshot restores what it still can, and says what not.
    let target = env.path("bob2");
    let mut c = env.cmd();
    c.args(["restore", "bob/p", "--at", "latest", "--to"])
        .arg(&target);
    let out = expect_code(&mut c, 1);
    assert!(out.stderr.contains("big.bin"), "{out}");
    assert_eq!(fs::read(target.join("later.txt")).unwrap(), b"added later");
    assert!(!target.join("big.bin").exists());
    let out = check(&env, true);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("marked damaged"), "{out}");
    // The lost snapshot's record is kept aside, not deleted.
    let aside = PathBuf::from(r["moved_aside"].as_str().unwrap());
    let kept: Vec<u8> = all_files(&aside.join("journal"))
        .iter()
        .flat_map(|p| fs::read(p).unwrap())
        .collect();
    let bob1_id = wsnap::Id::from_hex(bob1["id"].as_str().unwrap()).unwrap();
    assert!(contains_bytes(&kept, &bob1_id.0));
}

#[test]
fn corrupted_pack_is_salvaged_record_by_record() {
    let env = TestEnv::new();
    let a = env.ws("alice", "p");
    let secret = random_bytes(7, 100 * KIB);
    write(&a.join("victim.bin"), &secret);
    for i in 0..5 {
        write(
            &a.join(format!("f{i}.bin")),
            &random_bytes(20 + i, 40 * KIB),
        );
    }
    let snap = env.snapshot_ws("alice/p", &[]);
    let packs = pack_files(&env.store);
    assert_eq!(packs.len(), 1);
    let mut bytes = fs::read(&packs[0]).unwrap();
    let pos = bytes
        .windows(64)
        .position(|w| w == &secret[5000..5064])
        .expect("random data is stored raw");
    bytes[pos] ^= 1;
    fs::write(&packs[0], &bytes).unwrap();

    remove_catalog(&env.store);
    let r = repair(&env, 1);
    let d = &r["damaged_packs"][0];
    assert!(Path::new(d["moved_to"].as_str().unwrap()).exists(), "{r:#}");
    assert!(!packs[0].exists());
    let snaps = r["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["damaged"], true);
    assert!(u(d, "records_saved") >= 6, "{r:#}");

    let target = env.path("out");
    let mut c = env.cmd();
    c.args([
        "restore",
        "alice/p",
        "--snapshot",
        snap["id"].as_str().unwrap(),
        "--to",
    ])
    .arg(&target);
    let out = expect_code(&mut c, 1);
    assert!(out.stderr.contains("victim.bin"), "{out}");
    for i in 0..5 {
        assert_eq!(
            fs::read(target.join(format!("f{i}.bin"))).unwrap(),
            random_bytes(20 + i, 40 * KIB)
        );
    }
}

#[test]
fn repair_refuses_what_is_not_a_store() {
    let env = TestEnv::new();
    fs::create_dir_all(&env.store).unwrap();
    fs::write(env.store.join("thesis.tex"), b"not a store").unwrap();
    let mut c = env.cmd();
    c.args(["repair"]);
    let out = expect_code(&mut c, 3);
    assert!(out.stderr.contains("packs"), "{out}");
    assert_eq!(fs::read_dir(&env.store).unwrap().count(), 1);
}

/// Issue 12: a directory that merely has a `packs/` folder (of files wsnap
/// never wrote) is not a store: `repair` creates nothing and moves nothing,
/// unless told `--force`.
#[test]
fn repair_refuses_a_directory_that_only_has_a_packs_folder() {
    let env = TestEnv::new();
    let theirs = env.store.join("packs/ab/their-data.pack");
    write(&theirs, b"someone else's pack file, not wsnap's");
    write(&env.store.join("notes.txt"), b"theirs");
    let before = paths(&env.store);
    let out = expect_code(env.cmd().arg("repair"), 3);
    assert!(out.stderr.contains("--force"), "{out}");
    assert!(out.stderr.contains("not a wsnap store"), "{out}");
    assert_eq!(paths(&env.store), before, "repair wrote into a non-store");
    // Nor does any other command take it for a damaged store.
    let out = expect_code(env.cmd().arg("list"), 3);
    assert!(out.stderr.contains("not a wsnap store"), "{out}");
    assert_eq!(paths(&env.store), before);

    // Forced, it rebuilds (and keeps the foreign pack aside, never deletes it).
    let forced = run(env.cmd().args(["repair", "--force"]));
    assert!(forced.code == 0 || forced.code == 1, "{forced}");
    assert!(env.store.join("catalog.sqlite").exists());
    assert!(!theirs.exists());
    let kept: Vec<String> = paths(&env.store)
        .into_iter()
        .filter(|p| p.ends_with("their-data.pack"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
}

#[test]
fn crashed_run_journal_is_reconciled_by_the_next_writer() {
    let env = TestEnv::new();
    let a = env.ws("alice", "p");
    write(&a.join("x.txt"), b"one");
    env.snapshot(&[]);
    write(&a.join("x.txt"), b"two");
    // Killed after the journal record is durable, before the catalog commit.
    let mut c = env.std_cmd();
    c.env("WSNAP_CRASH_AT", "snapshot.journaled")
        .arg("snapshot")
        .arg("--root")
        .arg(&env.root);
    let st = c.status().unwrap();
    assert!(!st.success());
    let open: Vec<PathBuf> = all_files(&env.store.join("journal"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".open"))
        .collect();
    assert_eq!(open.len(), 1);
    // check sees no committed snapshot missing and ignores the open journal.
    assert_eq!(check(&env, true).code, 0);
    // The next writer drops the uncommitted record.
    write(&a.join("x.txt"), b"three");
    env.snapshot(&[]);
    assert!(!open[0].exists());
    assert_eq!(check(&env, true).code, 0);
    remove_catalog(&env.store);
    repair(&env, 0);
    assert_eq!(listed(&env).by_id().len(), 2);
}

/// Reconciling a crashed run's journal used to write `<run>.wsj` and then
/// delete `<run>.wsj.open`: a kill in between left every record twice
/// (found by `tests/crash_random.rs`: "recorded in 2 journals"). Now the
/// `.open` file is trimmed in place and then renamed.
#[test]
fn a_kill_while_reconciling_never_duplicates_records() {
    let env = TestEnv::new();
    write(&env.ws("a", "p").join("x.txt"), b"one");
    write(&env.ws("b", "p").join("y.txt"), b"two");
    env.snapshot(&[]);
    write(&env.ws("a", "p").join("x.txt"), b"one, changed");
    write(&env.ws("b", "p").join("y.txt"), b"two, changed");
    let crash = |spec: &str| {
        let mut c = env.std_cmd();
        c.env("WSNAP_CRASH_AT", spec)
            .arg("snapshot")
            .arg("--root")
            .arg(&env.root);
        let st = c.status().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(9),
            "{spec}"
        );
    };
    // Both records are journaled (one group commit), then the run dies.
    crash("snapshot.journaled");
    assert_eq!(listed(&env).by_id().len(), 2);
    // The next writer dies while reconciling that journal.
    crash("journal.reconcile_trimmed");
    assert_eq!(check(&env, true).code, 0, "{}", check(&env, true));
    env.snapshot(&[]);
    let out = check(&env, true);
    assert_eq!(out.code, 0, "{out}");
    let n = listed(&env).by_id().len();
    assert_eq!(n, 4);
    remove_catalog(&env.store);
    repair(&env, 0);
    assert_eq!(listed(&env).by_id().len(), n);
}

/// `wsnap::snapshot_id` is the id the binary commits, so a tool that writes
/// snapshot records itself (the `catalog_scale` bench's generator) makes
/// journals that `repair` accepts: a record for an older snapshot of the
/// same tree, written with `journal::rewrite`, comes back as a snapshot,
/// and the rebuilt store passes `check`.
#[test]
fn records_written_with_the_public_snapshot_id_are_repaired() {
    use wsnap::{journal, SnapshotRow, Store};

    let env = TestEnv::new();
    let states = history(&env);
    let store = Store::open(&env.store).unwrap();
    let rows: Vec<SnapshotRow> = store
        .catalog_for_reading()
        .unwrap()
        .snapshots(None)
        .unwrap();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        assert_eq!(
            wsnap::snapshot_id(&r.workspace, r.time_ns, r.started_ns, &r.root),
            r.id,
            "{r:?}"
        );
    }
    let mut older = rows[0].clone();
    older.time_ns -= 3_600_000_000_000;
    older.started_ns -= 3_600_000_000_000;
    older.finished_ns = older.started_ns + 1;
    assert_ne!(
        wsnap::snapshot_id(
            &older.workspace,
            older.time_ns,
            older.started_ns,
            &older.root
        ),
        older.id,
        "the id covers the times"
    );
    older.id = wsnap::snapshot_id(
        &older.workspace,
        older.time_ns,
        older.started_ns,
        &older.root,
    );
    let path = journal::dir(&env.store).join("00000000000000000001-tool.wsj");
    journal::rewrite(&path, &store.params(), std::slice::from_ref(&older)).unwrap();
    drop(store);

    remove_catalog(&env.store);
    let r = repair(&env, 0);
    assert_eq!(r["snapshots"].as_array().unwrap().len(), 7, "{r:#}");
    let after = listed(&env).by_id();
    assert_eq!(after.len(), 7);
    assert!(after.contains_key(&older.id.0.to_hex()), "{after:?}");
    assert!(states.keys().all(|id| after.contains_key(id)));
    let out = check(&env, true);
    assert_eq!(out.code, 0, "{out}");
}

/// A kill at any step of `repair` (each point in `wsnap::failpoint::POINTS`
/// that starts with `repair.`) leaves a store the next `repair` finishes:
/// every snapshot comes back with the same bytes and `check` passes.
#[test]
fn a_kill_at_any_repair_step_is_finished_by_the_next_repair() {
    let base = TestEnv::new();
    let states = history(&base);
    let before = listed(&base).by_id();
    assert_eq!(before.len(), 6);
    for point in [
        "repair.packs_indexed",
        "repair.catalog_built",
        "repair.old_catalog_kept",
        "repair.catalog_replaced",
    ] {
        let env = TestEnv::new();
        copy_tree(&base.store, &env.store);
        copy_tree(&base.root, &env.root);
        remove_catalog(&env.store);
        let mut c = env.std_cmd();
        c.env("WSNAP_CRASH_AT", point).args(["repair", "--json"]);
        let st = c.status().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(9),
            "repair was not killed at {point}"
        );
        let r = repair(&env, 0);
        assert_eq!(r["ok"], true, "{point}: {r:#}");
        assert_eq!(listed(&env).by_id(), before, "{point}");
        for (id, (ws, copy)) in &states {
            assert_restores(&env, id, ws, copy);
        }
        let out = check(&env, true);
        assert_eq!(out.code, 0, "{point}: {out}");
        // And the store takes the next tick.
        env.snapshot(&[]);
    }
}
