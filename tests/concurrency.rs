//! Readers beside writers: a restore that is under way when a prune commits
//! finishes from the catalog state it started with, and the prune never
//! deletes a pack under it.
//!
//! The restore is paused at an exact point with `WSNAP_PAUSE_AT`
//! (`src/failpoint.rs`): right after it pinned its catalog view.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn restore_during_prune_sees_one_consistent_snapshot() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    let mut saved = Vec::new();
    let mut ids = Vec::new();
    for t in 0..4u64 {
        write(&ws.join("data.bin"), &random_bytes(100 + t, 300 * KIB));
        write(&ws.join("notes.txt"), format!("tick {t}\n").as_bytes());
        let copy = env.path(format!("copy{t}"));
        copy_tree(&ws, &copy);
        saved.push(copy);
        let w = env.snapshot_ws("u/p", &["--time", &format!("2026-01-01T00:0{t}:00Z")]);
        ids.push(s(&w, "id").to_string());
    }

    // Restore the oldest snapshot, paused once its catalog view is pinned.
    let gate = env.path("gate");
    write(&gate, b"");
    let reached = env.path("gate.reached");
    let target = env.path("restored");
    let mut cmd = env.std_cmd();
    cmd.args(["restore", "u/p", "--snapshot", &ids[0], "--to"])
        .arg(&target)
        .env(
            "WSNAP_PAUSE_AT",
            format!("restore.pinned:{}", gate.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start restore");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached.exists() {
        assert!(
            Instant::now() < deadline,
            "restore never reached its pause point"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Meanwhile a prune forgets that very snapshot and rewrites every pack.
    let mut c = env.cmd();
    c.args(["prune", "--keep-last", "1", "--max-unused", "0", "--json"]);
    let r = expect_code(&mut c, 0).json();
    assert_eq!(r["forgotten"].as_array().unwrap().len(), 3, "{r:#}");
    assert_eq!(
        r["pack_deletion_deferred"], true,
        "a reader was active: {r:#}"
    );

    // The restore goes on from its pinned view, with every pack still there.
    std::fs::remove_file(&gate).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "restore during prune failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_trees_equal(&saved[0], &target);

    // The next gc removes what the reader kept alive; the rest is intact.
    let mut c = env.cmd();
    c.args(["prune", "--keep-last", "1", "--json"]);
    let r = expect_code(&mut c, 0).json();
    assert!(u(&r, "orphan_packs_removed") > 0, "{r:#}");
    assert_eq!(r["pack_deletion_deferred"], false);
    let latest = env.path("latest");
    env.restore("u/p", &ids[3], &latest, &[]);
    assert_trees_equal(&saved[3], &latest);
    let mut c = env.cmd();
    c.args(["check", "--read-data"]);
    expect_code(&mut c, 0);
    // Nothing of the forgotten ticks' data is left on disk.
    let gone = &random_bytes(100, 300 * KIB)[4096..4160];
    for p in pack_files(&env.store) {
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(gone.len()).any(|w| w == gone),
            "{}",
            p.display()
        );
    }
}

/// A file that changes while it is read is read again, and the snapshot
/// holds the new version, never a mix of the two.
#[test]
fn file_changed_during_read_is_read_again() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    let old = random_bytes(1, 2 * MIB);
    write(&ws.join("growing.bin"), &old);

    let gate = env.path("gate");
    write(&gate, b"");
    let reached = env.path("gate.reached");
    let mut cmd = env.std_cmd();
    cmd.args(["snapshot", "--root"])
        .arg(&env.root)
        .arg("--json")
        .env(
            "WSNAP_PAUSE_AT",
            format!("snapshot.file_read:{}", gate.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start snapshot");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached.exists() {
        assert!(Instant::now() < deadline, "snapshot never read the file");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The whole file has been read once; now it changes under the reader.
    let mut new = old.clone();
    new[MIB..MIB + 4096].copy_from_slice(&random_bytes(2, 4096));
    new.extend_from_slice(&random_bytes(3, 100 * KIB));
    write(&ws.join("growing.bin"), &new);
    std::fs::remove_file(&gate).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &report["workspaces"][0];
    assert_eq!(
        u(w, "read_bytes"),
        (old.len() + new.len()) as u64,
        "read twice: {w:#}"
    );
    assert_eq!(
        w["skips"].as_array().unwrap().len(),
        0,
        "second read was stable: {w:#}"
    );

    let target = env.path("restored");
    env.restore("u/p", s(w, "id"), &target, &[]);
    assert_eq!(std::fs::read(target.join("growing.bin")).unwrap(), new);
}

/// Two cron runs overlap: the second exits 75 naming the first's pid, or
/// with `--lock-wait` waits for it and then runs.
#[test]
fn overlapping_snapshots_exit_75_or_wait() {
    let env = TestEnv::new();
    write(&env.ws("u", "p").join("f.txt"), b"data");
    env.snapshot(&[]); // create the store

    let gate = env.path("gate");
    write(&gate, b"");
    let reached = env.path("gate.reached");
    write(
        &env.ws("u", "p").join("g.txt"),
        b"new file, so the first run reads",
    );
    let mut first = env.std_cmd();
    first
        .args(["snapshot", "--root"])
        .arg(&env.root)
        .env(
            "WSNAP_PAUSE_AT",
            format!("snapshot.file_read:{}", gate.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let first = first.spawn().expect("start first run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reached.exists() {
        assert!(Instant::now() < deadline, "first run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut second = env.cmd();
    second.args(["snapshot", "--root"]).arg(&env.root);
    let out = expect_code(&mut second, 75);
    assert!(
        out.stderr.contains(&format!("pid {}", first.id())),
        "names the holder: {out}"
    );

    let mut waiting = env.std_cmd();
    waiting
        .args(["snapshot", "--lock-wait", "60s", "--json", "--root"])
        .arg(&env.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let waiting = waiting.spawn().expect("start waiting run");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::remove_file(&gate).unwrap();
    assert!(first.wait_with_output().unwrap().status.success());
    let out = waiting.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut list = env.cmd();
    list.args(["list", "--json"]);
    assert_eq!(
        expect_code(&mut list, 0).json()["snapshots"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
