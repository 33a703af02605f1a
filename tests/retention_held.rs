//! Retention that never stops for everyone (issue 13): `snapshot --prune`
//! holds only the workspaces a run could not read whole, collects the
//! orphan packs of failed runs, and on a full store prunes the others and
//! snapshots what was not written yet, in the same run; `status` says whose
//! retention is held and since when.
//!
//! Reading must fail for one file, and root reads everything: as root the
//! runs are made as nobody (65534) over a temp dir under `/tmp` handed to
//! nobody, with the unreadable file root's and 0600. The full-store test
//! mounts a small tmpfs. Both need root: without it they fail and say so.

mod common;

use common::*;
use std::path::Path;

#[track_caller]
fn require_root(test: &str) {
    assert!(
        is_root(),
        "{test} needs root (to make a file unreadable to the binary run as uid 65534, or to mount a tmpfs); run the tests as root, as CI does"
    );
}

/// `wsnap --store STORE ARGS` run as nobody.
fn as_nobody(env: &TestEnv, args: &[&str]) -> Command {
    let mut c = env.nobody_std_cmd();
    c.args(args);
    with_timeout(c)
}

fn snapshots_of(env: &TestEnv, ws: &str) -> usize {
    list_json(env).iter().filter(|s| ws_of(s) == ws).count()
}

fn status_json(env: &TestEnv, min_free: &str, code: i32) -> Value {
    let mut c = env.cmd();
    c.args([
        "status",
        "--json",
        "--max-age",
        "1d",
        "--min-free",
        min_free,
        "--root",
    ])
    .arg(&env.root);
    expect_code(&mut c, code).json()
}

fn held_names(status: &Value) -> Vec<(String, String)> {
    status["retention_held"]
        .as_array()
        .unwrap_or_else(|| panic!("no retention_held in {status:#}"))
        .iter()
        .map(|h| (ws_of(h), s(h, "reason").to_string()))
        .collect()
}

#[test]
fn a_workspace_that_skips_or_fails_keeps_its_snapshots_and_the_others_are_pruned() {
    require_root("a_workspace_that_skips_or_fails_keeps_its_snapshots_and_the_others_are_pruned");
    let env = TestEnv::new_in(Path::new("/tmp"));
    write(&env.ws("a", "p").join("f.txt"), b"a's file");
    let b = env.ws("b", "p");
    write(&b.join("ok.txt"), b"b's file");
    let secret = b.join("secret.txt");
    write(&secret, b"readable for now");
    set_mode(env.dir.path(), 0o755);
    chown_r(env.dir.path(), NOBODY, NOBODY);
    let root = env.root.to_str().unwrap().to_string();
    let now = now_ns();
    for h in [3, 2, 1] {
        let t = rfc3339(now - h * 3_600_000_000_000);
        expect_code(
            &mut as_nobody(&env, &["snapshot", "--root", &root, "--time", &t]),
            0,
        );
    }

    // b/p skips a file: its 3 older snapshots may be the only copy of it.
    lchown(&secret, 0, 0);
    set_mode(&secret, 0o600);
    let out = expect_code(
        &mut as_nobody(
            &env,
            &[
                "snapshot",
                "--root",
                &root,
                "--prune",
                "--keep-last",
                "1",
                "--json",
            ],
        ),
        1,
    );
    let v = out.json();
    assert_eq!(
        snapshots_of(&env, "a/p"),
        1,
        "a/p must be pruned although b/p skipped a file:\n{out}"
    );
    assert_eq!(
        snapshots_of(&env, "b/p"),
        4,
        "b/p's retention is held:\n{out}"
    );
    let held = v["prune"]["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{v:#}");
    assert_eq!(ws_of(&held[0]), "b/p");
    assert_eq!(u(&held[0], "snapshots_kept"), 4);
    let skipped_at = v["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| ws_of(w) == "b/p")
        .map(|w| u(w, "time_ns"))
        .unwrap();

    // status: WARNING, naming b/p and since when.
    let st = status_json(&env, "0", 1);
    assert_eq!(
        held_names(&st),
        [("b/p".to_string(), "skipped".to_string())]
    );
    assert_eq!(
        u(&st["retention_held"][0], "since_ns"),
        skipped_at,
        "{st:#}"
    );
    let problem = st["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| s(p, "message").contains("retention held"))
        .unwrap_or_else(|| panic!("no retention problem: {st:#}"))
        .clone();
    assert_eq!(problem["level"], "WARNING", "{st:#}");
    assert!(s(&problem, "message").contains("b/p"), "{problem}");
    // ...CRITICAL once the disk is low.
    let st = status_json(&env, "100%", 2);
    let problem = st["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| s(p, "message").contains("retention held"))
        .unwrap_or_else(|| panic!("no retention problem: {st:#}"))
        .clone();
    assert_eq!(problem["level"], "CRITICAL", "{st:#}");
    let mut text = env.cmd();
    text.args([
        "status",
        "--max-age",
        "1d",
        "--min-free",
        "0",
        "--root",
        &root,
    ]);
    let out = expect_code(&mut text, 1);
    assert!(out.stdout.contains("retention held: b/p  since "), "{out}");

    // Readable again: b/p is pruned as usual, nothing is held any more.
    set_mode(&secret, 0o644);
    expect_code(
        &mut as_nobody(
            &env,
            &["snapshot", "--root", &root, "--prune", "--keep-last", "1"],
        ),
        0,
    );
    assert_eq!(snapshots_of(&env, "b/p"), 1);
    let st = status_json(&env, "0", 0);
    assert!(held_names(&st).is_empty(), "{st:#}");

    // b/p cannot be read at all (a failed workspace): held too.
    expect_code(&mut as_nobody(&env, &["snapshot", "--root", &root]), 0);
    assert_eq!(snapshots_of(&env, "a/p"), 2);
    assert_eq!(snapshots_of(&env, "b/p"), 2);
    lchown(&b, 0, 0);
    set_mode(&b, 0o700);
    let out = expect_code(
        &mut as_nobody(
            &env,
            &["snapshot", "--root", &root, "--prune", "--keep-last", "1"],
        ),
        1,
    );
    assert!(out.stdout.contains("failed  b/p"), "{out}");
    assert!(out.stdout.contains("held    b/p  retention held"), "{out}");
    assert_eq!(snapshots_of(&env, "a/p"), 1, "{out}");
    assert_eq!(snapshots_of(&env, "b/p"), 2, "{out}");
    let st = status_json(&env, "0", 2); // a failed workspace is CRITICAL
    assert_eq!(held_names(&st), [("b/p".to_string(), "failed".to_string())]);
    set_mode(&b, 0o755);
}

#[test]
fn orphan_packs_of_failed_runs_are_collected_by_the_next_snapshot_prune() {
    let env = TestEnv::new();
    write(&env.ws("a", "p").join("f.txt"), b"first");
    let root = env.root.to_str().unwrap().to_string();
    expect_code(env.cmd().args(["snapshot", "--root", &root]), 0);
    let known = pack_files(&env.store);
    // A run that dies after its pack is in place and before the catalog
    // row that names it (what a full disk at the catalog commit leaves
    // too): an orphan pack.
    write(&env.ws("a", "p").join("g.bin"), &random_bytes(1, 200 * KIB));
    let mut c = env.std_cmd();
    c.args(["snapshot", "--root", &root])
        .env("WSNAP_CRASH_AT", "snapshot.pack_sealed");
    let out = run(&mut with_timeout(c));
    assert_ne!(out.code, 0, "the crash point was not reached:\n{out}");
    let orphans: Vec<_> = pack_files(&env.store)
        .into_iter()
        .filter(|p| !known.contains(p))
        .collect();
    assert_eq!(orphans.len(), 1, "expected one orphan pack");
    let ck = expect_code(env.cmd().args(["check", "--json"]), 0).json();
    assert_eq!(ck["orphan_packs"].as_array().unwrap().len(), 1, "{ck:#}");

    // The next `snapshot --prune`, even with an entry under the root that
    // is not a workspace (exit 1: a skipped entry), collects it.
    // (g.bin is gone by then: the same data would give the same pack,
    // whose rename would adopt the orphan.)
    std::fs::remove_file(env.root.join("a/p/g.bin")).unwrap();
    std::os::unix::fs::symlink("/etc", env.root.join("evil")).unwrap();
    let out = expect_code(
        env.cmd()
            .args(["snapshot", "--root", &root, "--prune", "--json"]),
        1,
    );
    let v = out.json();
    assert!(u(&v["prune"], "orphan_packs_removed") >= 1, "{v:#}");
    assert!(!orphans[0].exists(), "orphan pack still there:\n{out}");
    let ck = expect_code(env.cmd().args(["check", "--read-data", "--json"]), 0).json();
    assert!(ck["orphan_packs"].as_array().unwrap().is_empty(), "{ck:#}");
}

#[test]
fn a_full_store_names_what_was_not_snapshotted_and_prune_makes_room_in_the_same_run() {
    require_root(
        "a_full_store_names_what_was_not_snapshotted_and_prune_makes_room_in_the_same_run",
    );
    let env = TestEnv::new();
    let fs = Tmpfs::mount(&env.path("small-fs"), "3m");
    let store = fs.0.join("store");
    let wsnap = |args: &[&str]| {
        let mut c = bare_std_cmd();
        c.arg("--store").arg(&store).args(args);
        with_timeout(c)
    };
    let root = env.root.to_str().unwrap().to_string();
    let a = env.ws("a", "p");
    let b = env.ws("b", "p");
    write(&env.ws("c", "p").join("small"), b"c");
    write(&b.join("small"), b"b");
    // Four old versions of a/p, 500 KB of incompressible data each: 2 MB
    // of the 3 MB file system.
    let now = now_ns();
    for h in 0..4i64 {
        write(&a.join("v.bin"), &random_bytes(h as u64, 500_000));
        let t = rfc3339(now - (10 - h) * 3_600_000_000_000);
        expect_code(&mut wsnap(&["snapshot", "--root", &root, "--time", &t]), 0);
    }
    write(&a.join("v.bin"), b"small now");
    write(&b.join("big.bin"), &random_bytes(99, 1_300_000));

    // Without --prune: exit 4, every workspace named as not snapshotted,
    // the store consistent.
    let out = expect_code(&mut wsnap(&["snapshot", "--root", &root, "--json"]), 4);
    assert!(out.stderr.contains("No space left on device"), "{out}");
    let v = out.json();
    assert!(
        s(&v["store_error"], "message").contains("disk full"),
        "{v:#}"
    );
    assert_eq!(v["store_error"]["kind"], "write", "{v:#}");
    assert_eq!(v["store_error"]["exit_code"], 4, "{v:#}");
    let ws = v["workspaces"].as_array().unwrap();
    assert_eq!(ws.len(), 3, "{v:#}");
    for w in ws {
        assert_eq!(w["status"], "failed", "{v:#}");
        assert!(s(w, "error").contains("writing the store failed"), "{v:#}");
    }
    expect_code(&mut wsnap(&["check", "--read-data"]), 0);
    let listed = expect_code(&mut wsnap(&["list", "--json"]), 0).json();
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 12);

    // With --prune: the others are pruned, which makes room, and the
    // workspaces not written yet are snapshotted in the same run.
    let out = expect_code(
        &mut wsnap(&[
            "snapshot",
            "--root",
            &root,
            "--prune",
            "--keep-last",
            "1",
            "--json",
        ]),
        0,
    );
    let v = out.json();
    assert!(v["store_error"].is_null(), "{v:#}");
    assert!(
        s(&v["recovered_from"], "error").contains("No space left on device"),
        "{v:#}"
    );
    assert_eq!(u(&v["recovered_from"], "workspaces_retried"), 3, "{v:#}");
    assert_eq!(u(&v["summary"], "ok"), 3, "{v:#}");
    assert!(u(&v["prune"], "freed_bytes") > 1_000_000, "{v:#}");
    expect_code(&mut wsnap(&["check", "--read-data"]), 0);
    let target = env.path("restored");
    let mut c = wsnap(&["restore", "b/p", "--at", "latest", "--to"]);
    c.arg(&target);
    expect_code(&mut c, 0);
    assert_trees_equal(&b, &target);
    // The journals agree with the catalog (the failed writer's was trimmed).
    expect_code(&mut wsnap(&["check"]), 0);
    drop(fs);
}
