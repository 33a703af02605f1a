//! The command line: environment defaults, workspace selection and naming,
//! `list` / `ls` output, usage errors, the store lock, and the example tree.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

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

/// A lock held by something that is not a wsnap run (a `flock` while the
/// store is copied) is described as such, and a run that waited says so
/// instead of suggesting the `--lock-wait` it was given (issue 17).
#[test]
fn lock_messages_say_who_holds_it_and_how_long_we_waited() {
    let env = TestEnv::new();
    three_workspaces(&env);
    expect_code(env.cmd().arg("init"), 0);
    let lock = hold_flock(&env.store.join("lock"));
    let snapshot = |wait: &str| {
        let mut c = env.cmd();
        c.args(["snapshot", "--lock-wait", wait, "--root"])
            .arg(&env.root);
        expect_code(&mut c, 75)
    };
    let lock_file = env.store.join("lock").display().to_string();
    let out = snapshot("0s");
    assert!(
        out.stderr.contains(
            "is locked by another process that is not a wsnap run (no holder record), e.g. \
             `flock` while the store is copied; pass --lock-wait DURATION to wait for it, or \
             find the holder with `fuser -v"
        ) && out.stderr.contains(&lock_file),
        "{out}"
    );
    assert!(!out.stderr.contains("waited"), "{out}");
    let out = snapshot("1s");
    assert!(
        out.stderr.contains(
            "not a wsnap run (no holder record), e.g. `flock` while the store is copied; \
             waited 1s. Give a longer --lock-wait, or find the holder with `fuser -v"
        ),
        "{out}"
    );
    assert!(!out.stderr.contains("pass --lock-wait"), "{out}");
    drop(lock);
}

/// A missing store: the message says which path was tried and what set
/// it (the default, `SCITEX_BACKUP_ROOT`, `--store`) before suggesting
/// `init` (issue 17).
#[test]
fn a_missing_store_says_which_path_was_tried_and_what_sets_it() {
    let default = Path::new("/app/backups/snapshots");
    assert!(
        !default.exists(),
        "this test needs the default store path {} absent",
        default.display()
    );
    let out = expect_code(bare_cmd().arg("list"), 3);
    assert!(
        out.stderr.contains(
            "no wsnap store at /app/backups/snapshots (the default; set SCITEX_BACKUP_ROOT or \
             --store to use another): create one with `wsnap init`"
        ),
        "{out}"
    );
    let env = TestEnv::new();
    let out = expect_code(
        bare_cmd().env("SCITEX_BACKUP_ROOT", &env.store).arg("list"),
        3,
    );
    assert!(
        out.stderr.contains(&format!(
            "no wsnap store at {} (from SCITEX_BACKUP_ROOT; set it or --store to use another): \
             create one with `wsnap init`",
            env.store.display()
        )),
        "{out}"
    );
    let out = expect_code(env.cmd().arg("list"), 3);
    assert!(
        out.stderr.contains(&format!(
            "no wsnap store at {0}: create it with `wsnap --store {0} init`",
            env.store.display()
        )),
        "{out}"
    );
}

/// The store path holding the old rsync copies (the old script's backup
/// root): every command refuses it, writes nothing, and says to move them
/// aside and import them; doing so works (issue 17).
#[test]
fn old_rsync_copies_at_the_store_path_are_refused_with_the_way_out() {
    let env = TestEnv::new();
    env.ws("alice", "thesis");
    for name in [
        "alice_thesis_20260101_120000",
        "alice_thesis_20260101_120500",
    ] {
        write(&env.store.join(name).join("a.txt"), name.as_bytes());
    }
    let before = store_files(&env.store);
    let store = env.store.display().to_string();
    let mut c = env.cmd();
    c.args(["snapshot", "--root"]).arg(&env.root);
    let out = expect_code(&mut c, 3);
    assert!(
        out.stderr.contains(&format!(
            "{store} holds the old rsync backups (2 directories named like \
             alice_thesis_20260101_120000), not a wsnap store; refusing to touch it. These \
             look like the old rsync copies: move them aside (`mv {store} {store}.rsync`) and \
             import them into a new store here with \
             `wsnap --store {store} import-rsync {store}.rsync`"
        )),
        "{out}"
    );
    // Through SCITEX_BACKUP_ROOT the advice needs no --store.
    let out = expect_code(
        bare_cmd().env("SCITEX_BACKUP_ROOT", &env.store).arg("list"),
        3,
    );
    assert!(
        out.stderr
            .contains(&format!("with `wsnap import-rsync {store}.rsync`")),
        "{out}"
    );
    for cmd in ["init", "list"] {
        expect_code(env.cmd().arg(cmd), 3);
    }
    assert_eq!(store_files(&env.store), before, "nothing written");

    // Following the advice works.
    let aside = PathBuf::from(format!("{store}.rsync"));
    fs::rename(&env.store, &aside).unwrap();
    let mut c = env.cmd();
    c.args(["import-rsync", "--root"])
        .arg(&env.root)
        .arg(&aside);
    expect_code(&mut c, 0);
    assert_eq!(listed(&env).len(), 2);
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

// ---------------------------------------------------------------------------
// The README's synopsis against the real --help
// ---------------------------------------------------------------------------

/// `wsnap PATH... --help`.
fn help_of(path: &[String]) -> String {
    let out = expect_code(bare_cmd().args(path).arg("--help"), 0);
    out.stdout
}

/// The subcommands a help text lists (without `help`).
fn help_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|c| c != "help")
        .collect()
}

/// The long flags a help text defines: option lines (indented 2, or 6
/// without a short form), never a flag a description mentions.
fn help_flags(help: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in help.lines() {
        let indent = l.len() - l.trim_start().len();
        let t = l.trim_start();
        if indent > 6 || !t.starts_with('-') {
            continue;
        }
        let t = match t.as_bytes() {
            [b'-', c, b',', b' ', ..] if *c != b'-' => &t[4..],
            _ => t,
        };
        if let Some(rest) = t.strip_prefix("--") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            out.insert(format!("--{name}"));
        }
    }
    out
}

/// The long flags written in `text`.
fn flags_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("--") {
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-') {
            continue;
        }
        let name: String = text[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if !name.is_empty() {
            out.insert(format!("--{name}"));
        }
    }
    out
}

/// The README's synopsis: each `wsnap …` entry (with its continuation
/// lines) as (the words after `wsnap` and a leading `[--store DIR]`, its
/// text), and each definition (`KEEP FLAGS: …`, `Global: …`) as (name, text).
type Synopsis = (Vec<(Vec<String>, String)>, Vec<(String, String)>);

fn readme_synopsis() -> Synopsis {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "## Commands")
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.trim().is_empty() || l.starts_with("    "))
        .collect();
    assert!(!block.is_empty(), "README.md has no `## Commands` block");
    let (mut entries, mut defs) = (Vec::new(), Vec::new());
    // Which list the current line continues: 0 none, 1 entry, 2 definition.
    let mut open = 0;
    for l in block {
        let t = l.trim();
        let indent = l.len() - l.trim_start().len();
        if t.is_empty() {
            open = 0;
        } else if let Some(rest) = t.strip_prefix("wsnap ") {
            let rest = rest.trim_start();
            let rest = match rest.strip_prefix('[') {
                Some(r) if r.starts_with("--store") => &r[r.find(']').unwrap() + 1..],
                _ => rest,
            };
            let words = rest
                .split_whitespace()
                .take_while(|w| {
                    w.starts_with(|c: char| c.is_ascii_lowercase())
                        && w.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                })
                .map(String::from)
                .collect();
            entries.push((words, t.to_string()));
            open = 1;
        } else if indent == 4 && t.contains(": ") {
            let (name, text) = t.split_once(": ").unwrap();
            defs.push((name.to_string(), text.to_string()));
            open = 2;
        } else if open == 1 {
            entries.last_mut().unwrap().1 += &format!(" {t}");
        } else if open == 2 {
            defs.last_mut().unwrap().1 += &format!(" {t}");
        } else {
            panic!("README.md synopsis: cannot place line {l:?}");
        }
    }
    (entries, defs)
}

/// The README's synopsis lists every flag each command takes, and no flag
/// a command does not take: checked against the real `--help` of every
/// command found from `wsnap --help` (and the subcommands of a command
/// that has them), so it stays true as commands and flags are added
/// (issue 17: `--lock-wait` of `prune` and `forget` was missing).
#[test]
fn readme_synopsis_lists_every_flag_of_every_command() {
    let (entries, defs) = readme_synopsis();
    let top = help_of(&[]);
    let globals = help_flags(&top);
    let mut problems = Vec::new();
    for g in &globals {
        let anywhere = entries
            .iter()
            .map(|(_, t)| t)
            .chain(defs.iter().map(|(_, t)| t))
            .any(|t| flags_in(t).contains(g));
        if !anywhere {
            problems.push(format!("global {g} is not in the synopsis"));
        }
    }
    let mut todo: Vec<Vec<String>> = help_commands(&top).into_iter().map(|c| vec![c]).collect();
    assert!(todo.len() >= 20, "commands from `wsnap --help`: {todo:?}");
    let mut checked = 0;
    while let Some(path) = todo.pop() {
        let help = help_of(&path);
        let subs = help_commands(&help);
        if !subs.is_empty() {
            todo.extend(subs.into_iter().map(|s| [path.clone(), vec![s]].concat()));
            continue;
        }
        checked += 1;
        let name = path.join(" ");
        let mut text = String::new();
        for (words, t) in &entries {
            if *words == path {
                text += t;
                text += " ";
            }
        }
        if text.is_empty() {
            problems.push(format!("no synopsis line for `wsnap {name}`"));
            continue;
        }
        // A placeholder (`[KEEP FLAGS]`) stands for its definition.
        for (def, t) in &defs {
            if text.contains(def.as_str()) {
                text += t;
            }
        }
        let takes: BTreeSet<String> = help_flags(&help).difference(&globals).cloned().collect();
        let written = flags_in(&text);
        for f in takes.difference(&written) {
            problems.push(format!(
                "`wsnap {name}` takes {f}: missing from its synopsis"
            ));
        }
        for f in written.difference(&takes) {
            if !globals.contains(f) {
                problems.push(format!(
                    "`wsnap {name}`'s synopsis has {f}, which it does not take"
                ));
            }
        }
    }
    assert!(checked >= 20, "{checked} commands checked");
    assert!(
        problems.is_empty(),
        "README.md `## Commands` vs --help:\n{}",
        problems.join("\n")
    );
}
