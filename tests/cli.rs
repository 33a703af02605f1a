//! The command line: environment defaults, workspace selection and naming,
//! `list` / `ls` output, usage errors, the store lock, and the example tree.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;

use common::*;

/// Workspaces alice/p, alice/q and bob/r with one file each.
fn three_workspaces(env: &TestEnv) {
    write(&env.ws("alice", "p").join("p.txt"), b"alice p");
    write(&env.ws("alice", "q").join("q.txt"), b"alice q");
    write(&env.ws("bob", "r").join("r.txt"), b"bob r");
}

fn pair(u: &str, p: &str) -> (String, String) {
    (u.to_string(), p.to_string())
}

#[test]
fn environment_variables_give_store_and_root() {
    let env = TestEnv::new();
    three_workspaces(&env);
    let with_env = || {
        let mut c = bare_std_cmd();
        c.env("SCITEX_BACKUP_ROOT", &env.store)
            .env("SCITEX_WORKSPACE_ROOT", &env.root);
        with_timeout(c)
    };
    let out = expect_code(with_env().args(["snapshot", "--json"]), 0);
    assert_eq!(out.json()["workspaces"].as_array().unwrap().len(), 3);
    assert!(
        env.store.join("catalog.sqlite").exists(),
        "store not at $SCITEX_BACKUP_ROOT"
    );
    let list = expect_code(with_env().args(["list", "--json"]), 0).json();
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 3);

    // Flags win over the environment.
    let other_root = env.path("other-root");
    write(&other_root.join("carol/s/s.txt"), b"carol");
    let out = expect_code(
        with_env()
            .args(["snapshot", "--json", "--root"])
            .arg(&other_root),
        0,
    );
    let ws = &out.json()["workspaces"];
    assert_eq!(ws.as_array().unwrap().len(), 1);
    assert_eq!(ws[0]["user"], "carol");
    let elsewhere = env.path("no-store-here");
    let out = expect_code(with_env().arg("--store").arg(&elsewhere).arg("list"), 3);
    assert!(out.stderr.contains("no-store-here"), "{out}");
}

#[test]
fn workspace_flag_selects_only_the_named_workspaces() {
    let env = TestEnv::new();
    three_workspaces(&env);
    let report = env.snapshot(&["--workspace", "bob/r"]);
    let ws = report["workspaces"].as_array().unwrap();
    assert_eq!(ws.len(), 1, "{report:#}");
    assert_eq!((s(&ws[0], "user"), s(&ws[0], "project")), ("bob", "r"));
    assert_eq!(listed(&env).workspaces(), [pair("bob", "r")]);

    env.snapshot(&["--workspace", "alice/q", "--workspace", "alice/p"]);
    assert_eq!(
        listed(&env).workspaces(),
        [pair("alice", "p"), pair("alice", "q"), pair("bob", "r")]
    );
}

#[test]
fn missing_workspace_fails_alone_and_the_others_commit() {
    let env = TestEnv::new();
    three_workspaces(&env);
    write(
        &env.root.join("bob/not-a-dir"),
        b"a file where a project would be",
    );
    let mut c = env.cmd();
    c.args(["snapshot", "--json", "--root"])
        .arg(&env.root)
        .args([
            "--workspace",
            "alice/p",
            "--workspace",
            "ghost/x",
            "--workspace",
            "bob/not-a-dir",
            "--workspace",
            "bob/r",
        ]);
    let report = expect_code(&mut c, 1).json();
    assert_eq!(report["ok"], false);
    let status: BTreeSet<(String, String)> = report["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                format!("{}/{}", s(w, "user"), s(w, "project")),
                s(w, "status").to_string(),
            )
        })
        .collect();
    assert_eq!(
        status,
        BTreeSet::from([
            pair("alice/p", "ok"),
            pair("ghost/x", "failed"),
            pair("bob/not-a-dir", "failed"),
            pair("bob/r", "ok"),
        ])
    );
    for w in report["workspaces"].as_array().unwrap() {
        if w["status"] == "failed" {
            assert!(!s(w, "error").is_empty(), "{w:#}");
        }
    }
    assert_eq!(u(&report["summary"], "ok"), 2);
    assert_eq!(u(&report["summary"], "failed"), 2);
    assert_eq!(
        listed(&env).workspaces(),
        [pair("alice", "p"), pair("bob", "r")]
    );

    // The human report names the failure too.
    let mut c = env.cmd();
    c.args(["snapshot", "--root"]).arg(&env.root).args([
        "--workspace",
        "ghost/x",
        "--workspace",
        "alice/q",
    ]);
    let out = expect_code(&mut c, 1);
    assert!(out.stdout.contains("ghost/x"), "{out}");
    assert!(out.stdout.contains("failed"), "{out}");
    assert!(listed(&env).workspaces().contains(&pair("alice", "q")));
}

#[test]
fn list_of_one_workspace_as_json() {
    let env = TestEnv::new();
    three_workspaces(&env);
    env.snapshot(&[]);
    write(&env.root.join("alice/p/p2.txt"), b"second file");
    env.snapshot(&["--workspace", "alice/p"]);

    let v = expect_code(env.cmd().args(["list", "alice/p", "--json"]), 0).json();
    let rows = v["snapshots"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v:#}");
    for r in rows {
        assert_eq!((s(r, "user"), s(r, "project")), ("alice", "p"));
        let id = s(r, "id");
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(id.starts_with(s(r, "short_id")));
        for key in [
            "time_ns",
            "files",
            "dirs",
            "symlinks",
            "size_bytes",
            "added_bytes",
            "read_bytes",
            "skipped",
            "special_skipped",
            "excluded",
        ] {
            u(r, key);
        }
        assert!(
            chrono::DateTime::parse_from_rfc3339(s(r, "time")).is_ok(),
            "{r:#}"
        );
    }
    assert!(u(&rows[0], "time_ns") <= u(&rows[1], "time_ns"));
    assert_eq!((u(&rows[0], "files"), u(&rows[1], "files")), (1, 2));

    // All workspaces, and the human table.
    let all = expect_code(env.cmd().args(["list", "--json"]), 0).json();
    assert_eq!(all["snapshots"].as_array().unwrap().len(), 4);
    let out = expect_code(env.cmd().arg("list"), 0);
    assert!(out.stdout.starts_with("ID"), "{out}");
    assert!(out.stdout.contains(s(&rows[1], "short_id")), "{out}");
    assert!(out.stdout.contains("bob/r"), "{out}");

    // A workspace with no snapshots is an input error.
    expect_code(env.cmd().args(["list", "carol/none"]), 2);
}

#[test]
fn ls_root_subdir_and_file() {
    let env = TestEnv::new();
    let ws = env.ws("u", "p");
    let t = hour_ago_ns();
    write_file(&ws.join("README.md"), b"# readme\n", 0o644, t);
    write_file(&ws.join("src/main.py"), b"print('hi')\n", 0o755, t);
    mkdir(&ws.join("src/lib"));
    symlink(b"README.md", &ws.join("link"), t);
    let snap = env.snapshot_ws("u/p", &[]);
    let id = s(&snap, "id");

    let out = expect_code(env.cmd().args(["ls", "u/p", "--snapshot", id, "--json"]), 0);
    let v = out.json();
    assert_eq!(v["snapshot"]["id"], snap["id"]);
    let entries = v["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (s(e, "name"), s(e, "type")))
        .collect();
    assert_eq!(
        summary,
        [("README.md", "file"), ("link", "symlink"), ("src", "dir")]
    );
    assert_eq!(u(&entries[0], "size_bytes"), 9);
    assert_eq!(s(&entries[0], "mode"), "0644");
    assert_eq!(s(&entries[1], "target"), "README.md");
    assert!(entries[0]["target"].is_null());

    let sub = env.ls("u/p", id, Some("src"));
    let names: Vec<(&str, &str, &str)> = sub
        .iter()
        .map(|e| (s(e, "name"), s(e, "type"), s(e, "mode")))
        .collect();
    assert_eq!(names, [("lib", "dir", "0755"), ("main.py", "file", "0755")]);
    assert!(env.ls("u/p", id, Some("src/lib")).is_empty());
    let one = env.ls("u/p", id, Some("src/main.py"));
    assert_eq!(one.len(), 1);
    assert_eq!(u(&one[0], "size_bytes"), 12);

    // Human output, --at and a short id prefix.
    let out = expect_code(env.cmd().args(["ls", "u/p", "--at", "latest"]), 0);
    assert!(out.stdout.contains("README.md"), "{out}");
    assert!(out.stdout.contains("link -> README.md"), "{out}");
    assert!(out.stdout.contains("src/"), "{out}");
    expect_code(
        env.cmd().args(["ls", "u/p", "--snapshot", &id[..8], "src"]),
        0,
    );

    // Errors: missing path, too short / unknown ids.
    expect_code(env.cmd().args(["ls", "u/p", "--snapshot", id, "nope"]), 2);
    expect_code(
        env.cmd()
            .args(["ls", "u/p", "--snapshot", id, "README.md/x"]),
        2,
    );
    expect_code(env.cmd().args(["ls", "u/p", "--snapshot", &id[..3]]), 2);
    let unknown = if id.starts_with("0000") {
        "ffff"
    } else {
        "0000"
    };
    expect_code(env.cmd().args(["ls", "u/p", "--snapshot", unknown]), 2);
    expect_code(env.cmd().args(["ls", "u/p", "--snapshot", "zzzz"]), 2);
}

#[test]
fn bad_workspace_syntax_is_an_input_error() {
    let env = TestEnv::new();
    three_workspaces(&env);
    env.snapshot(&[]);
    // `list` also takes a USER alone (issue 17).
    let alice = expect_code(env.cmd().args(["list", "alice", "--json"]), 0).json();
    assert_eq!(snapshots_of(&alice).len(), 2, "{alice:#}");
    for bad in ["alice", "a/b/c", "/b", "a/", "../x", "a/..", ""] {
        if bad != "alice" {
            expect_code(env.cmd().args(["list", bad]), 2);
        }
        expect_code(env.cmd().args(["ls", bad, "--at", "latest"]), 2);
        let t = env.path("t");
        expect_code(
            env.cmd()
                .args(["restore", bad, "--at", "latest", "--to"])
                .arg(&t),
            2,
        );
        assert!(!t.exists());
        expect_code(
            env.cmd()
                .args(["snapshot", "--root"])
                .arg(&env.root)
                .args(["--workspace", bad]),
            2,
        );
    }
    assert_eq!(
        listed(&env).workspaces().len(),
        3,
        "a refused run added snapshots"
    );
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    three_workspaces(&env);
    env.snapshot(&[]);
    let t = env.path("t");
    for args in [
        &["ls", "alice/p"][..],
        &["restore", "alice/p", "--to", "T"],
        &["restore", "alice/p", "--at", "latest"],
        &[
            "restore",
            "alice/p",
            "--at",
            "latest",
            "--snapshot",
            "abcd",
            "--to",
            "T",
        ],
        &["no-such-command"],
        &["snapshot", "--lock-wait", "soon"],
        &["snapshot", "--exclude", "[z-a]"],
    ] {
        let mut c = env.cmd();
        c.current_dir(env.dir.path());
        for a in args {
            if *a == "T" {
                c.arg(&t);
            } else {
                c.arg(a);
            }
        }
        if args[0] == "snapshot" {
            c.arg("--root").arg(&env.root);
        }
        expect_code(&mut c, 2);
    }
    assert!(!t.exists());
    let help = expect_code(bare_cmd().arg("--help"), 0);
    assert!(help.stdout.contains("Exit codes"), "{help}");
    expect_code(bare_cmd().arg("--version"), 0);
}

#[test]
fn underscores_in_names_keep_workspaces_apart() {
    // The old `user_project_timestamp` naming could not tell these apart.
    let env = TestEnv::new();
    write(&env.ws("a_b", "c").join("who.txt"), b"user a_b, project c");
    write(&env.ws("a", "b_c").join("who.txt"), b"user a, project b_c");
    env.snapshot(&[]);
    assert_eq!(
        listed(&env).workspaces(),
        [pair("a", "b_c"), pair("a_b", "c")]
    );
    for (ws, want) in [
        ("a_b/c", &b"user a_b, project c"[..]),
        ("a/b_c", &b"user a, project b_c"[..]),
    ] {
        let rows = expect_code(env.cmd().args(["list", ws, "--json"]), 0).json();
        assert_eq!(rows["snapshots"].as_array().unwrap().len(), 1, "{ws}");
        let target = env.path(ws.replace('/', "--"));
        env.restore(ws, s(&rows["snapshots"][0], "id"), &target, &[]);
        assert_eq!(fs::read(target.join("who.txt")).unwrap(), want, "{ws}");
    }
}

#[test]
fn symlinked_user_or_project_directories_are_not_workspaces() {
    let env = TestEnv::new();
    write(&env.ws("alice", "p").join("p.txt"), b"real");
    let outside = env.path("outside");
    write(&outside.join("proj/secret.txt"), b"not under the root");
    std::os::unix::fs::symlink(&outside, env.root.join("linked-user")).unwrap();
    std::os::unix::fs::symlink(outside.join("proj"), env.root.join("alice/linked-project"))
        .unwrap();
    // Not followed, and not silent: each is reported and the run exits 1.
    let out = expect_code(
        env.cmd()
            .args(["snapshot", "--json", "--root"])
            .arg(&env.root),
        1,
    );
    let report = out.json();
    assert_eq!(
        report["workspaces"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    let rejected: Vec<&str> = report["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(r, "path"))
        .collect();
    assert_eq!(rejected, ["alice/linked-project", "linked-user"]);
    assert_eq!(u(&report["summary"], "entries_skipped"), 2);
    assert_eq!(listed(&env).workspaces(), [pair("alice", "p")]);
}

#[test]
fn locked_store_exits_75() {
    let env = TestEnv::new();
    three_workspaces(&env);
    expect_code(env.cmd().arg("init"), 0);
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(env.store.join("lock"))
        .unwrap();
    // SAFETY: flock on an open file descriptor we own.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0);
    let out = expect_code(
        env.cmd()
            .args(["snapshot", "--root"])
            .arg(&env.root)
            .args(["--lock-wait", "0s"]),
        75,
    );
    assert!(out.stderr.contains("locked"), "{out}");
    // Reading does not need the lock.
    expect_code(env.cmd().arg("list"), 0);
    drop(lock); // closing the descriptor releases the flock
    env.snapshot(&[]);
    assert_eq!(listed(&env).workspaces().len(), 3);
}

#[test]
fn example_workspaces_snapshot_cleanly() {
    // Snapshotting only reads the root, so the checked-in example tree is
    // used in place; the store lives in a temp dir.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workspaces");
    let env = TestEnv::new();
    let mut c = env.cmd();
    c.args(["snapshot", "--json", "--root"]).arg(&examples);
    let report = expect_code(&mut c, 0).json();
    assert_eq!(report["ok"], true);
    let ws = report["workspaces"].as_array().unwrap();
    let mut names = BTreeSet::new();
    for w in ws {
        assert_eq!(w["status"], "ok", "{w:#}");
        assert_eq!(u(w, "skipped"), 0, "{w:#}");
        names.insert(format!("{}/{}", s(w, "user"), s(w, "project")));
    }
    assert!(names.contains("alice/thesis"), "{names:?}");
    assert!(names.contains("bob_lab/rna_seq"), "{names:?}");

    // __pycache__ is excluded by default.
    let rna = ws
        .iter()
        .find(|w| w["user"] == "bob_lab" && w["project"] == "rna_seq")
        .unwrap();
    if examples.join("bob_lab/rna_seq/__pycache__").exists() {
        assert!(u(rna, "excluded") >= 1, "{rna:#}");
        let names: Vec<String> = env
            .ls("bob_lab/rna_seq", s(rna, "id"), None)
            .iter()
            .map(|e| s(e, "name").to_string())
            .collect();
        assert!(!names.contains(&"__pycache__".to_string()), "{names:?}");
    }

    // alice/thesis restores exactly.
    let thesis = ws
        .iter()
        .find(|w| w["user"] == "alice" && w["project"] == "thesis")
        .unwrap();
    let target = env.path("thesis");
    env.restore("alice/thesis", s(thesis, "id"), &target, &[]);
    assert_trees_equal(&examples.join("alice/thesis"), &target);
}

/// `init --compression-level` is recorded in the store and used by every
/// snapshot; the default is level 1; re-running `init` keeps the level.
#[test]
fn init_compression_level_is_recorded_and_used() {
    let text: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("{i},sample-{},{:.3}\n", i % 97, f64::from(i) * 0.37).into_bytes())
        .collect();
    let mut stored = Vec::new();
    for level in [None, Some("19")] {
        let env = TestEnv::new();
        write(&env.ws("u", "p").join("table.csv"), &text);
        let mut c = env.cmd();
        c.arg("init");
        if let Some(l) = level {
            c.args(["--compression-level", l]);
        }
        expect_code(&mut c, 0);
        let params = wsnap::Store::open(&env.store).unwrap().params();
        assert_eq!(params.zstd_level, level.map_or(1, |l| l.parse().unwrap()));
        env.snapshot(&[]);
        stored.push(pack_bytes(&env.store));
        // init again, with another level: the store keeps its own.
        let mut c = env.cmd();
        c.args(["init", "--compression-level", "5"]);
        expect_code(&mut c, 0);
        let again = wsnap::Store::open(&env.store).unwrap().params();
        assert_eq!(again.zstd_level, params.zstd_level);
    }
    assert!(
        stored[1] < stored[0],
        "level 19 should store less than level 1: {stored:?}"
    );
    let env = TestEnv::new();
    let mut c = env.cmd();
    c.args(["init", "--compression-level", "0"]);
    let out = expect_code(&mut c, 2);
    assert!(out.stderr.contains("--compression-level"), "{out}");
}
