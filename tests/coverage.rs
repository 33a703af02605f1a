//! Coverage that must never vanish quietly (issue 13): an empty root (an
//! unmounted volume), user and project directories that cannot be listed,
//! `status` after a partial manual run, workspaces gone since the previous
//! full run, and a workspace that went from files to none. Each through the
//! real binary; see docs/RELIABILITY.md for the behaviour each pins.
//!
//! Root reads every directory whatever its mode, and these tests run as
//! root: to make a directory unreadable, wsnap runs as nobody (65534) over
//! a temp dir under /tmp handed to nobody, and the unreadable directory is
//! root's with mode 0700. Those tests fail with a clear message when not
//! run as root, never pass silently.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use common::*;

fn require_root(why: &str) {
    assert!(
        is_root(),
        "this test must run as root ({why}); run the suite as root, as CI does"
    );
}

/// An env under /tmp that nobody can walk and write (root and store).
fn nobody_env() -> TestEnv {
    let env = TestEnv::new_in(Path::new("/tmp"));
    set_mode(env.dir.path(), 0o755);
    env
}

/// Hand everything in `env` to nobody, then make each of `locked` (relative
/// to the root) root's with mode 0700: nobody cannot open it.
fn lock_out(env: &TestEnv, locked: &[&str]) {
    chown_r(env.dir.path(), NOBODY, NOBODY);
    for l in locked {
        let p = env.root.join(l);
        lchown(&p, 0, 0);
        set_mode(&p, 0o700);
    }
}

/// `wsnap --store STORE ARGS...` run as nobody.
fn as_nobody(env: &TestEnv, args: &[&str]) -> Command {
    let mut c = env.nobody_std_cmd();
    c.args(args);
    with_timeout(c)
}

fn snapshot_args<'a>(env: &'a TestEnv, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["snapshot", "--root", env.root.to_str().unwrap()];
    v.extend_from_slice(extra);
    v
}

fn status_args<'a>(env: &'a TestEnv, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "status",
        "--min-free",
        "0",
        "--root",
        env.root.to_str().unwrap(),
    ];
    v.extend_from_slice(extra);
    v
}

/// `status --root ROOT --min-free 0 EXTRA...` (as root), asserting the code.
#[track_caller]
fn status(env: &TestEnv, root: &Path, extra: &[&str], code: i32) -> Out {
    let mut c = env.cmd();
    c.args(["status", "--min-free", "0", "--root"])
        .arg(root)
        .args(extra);
    expect_code(&mut c, code)
}

fn problems(v: &Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|p| format!("{} {}", s(p, "level"), s(p, "message")))
        .collect()
}

fn names(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v:#}"))
        .iter()
        .map(ws_of)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------
// An empty root
// ---------------------------------------------------------------------------

#[test]
fn an_empty_root_fails_the_run_and_status_is_critical() {
    let env = TestEnv::new();
    write(&env.ws("alice", "thesis").join("a.txt"), b"alice");
    write(&env.ws("bob", "lab").join("b.txt"), b"bob");
    env.snapshot(&[]);
    // What an unmounted volume looks like: the root, empty.
    let away = env.path("away");
    fs::create_dir(&away).unwrap();
    for u in ["alice", "bob"] {
        fs::rename(env.root.join(u), away.join(u)).unwrap();
    }

    let mut c = env.cmd();
    c.args(["snapshot", "--prune", "--root"]).arg(&env.root);
    let out = expect_code(&mut c, 1);
    assert!(
        out.stdout.contains(&format!(
            "error: no workspace under the root {}: is it mounted?",
            env.root.display()
        )),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("prune: skipped because the run failed as a whole"),
        "{out}"
    );
    // Both workspaces were in the previous full run: listed as gone.
    assert!(out.stdout.contains("gone    alice/thesis"), "{out}");
    assert!(out.stdout.contains("gone    bob/lab"), "{out}");
    let mut c = env.cmd();
    c.args(["snapshot", "--json", "--root"]).arg(&env.root);
    let v = expect_code(&mut c, 1).json();
    assert_eq!(v["ok"], false);
    assert_eq!(v["covered_root"], true);
    assert!(s(&v, "error").contains("is it mounted?"), "{v:#}");

    // status: CRITICAL, naming the root; and it judges that failed run.
    let out = status(&env, &env.root, &[], 2);
    assert!(out.stdout.starts_with("WSNAP CRITICAL - "), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "no workspace under the workspace root {}: is it mounted?",
            env.root.display()
        )),
        "{out}"
    );
    let v = status(&env, &env.root, &["--json"], 2).json();
    let p = problems(&v);
    assert!(
        p.iter()
            .any(|p| p.starts_with("CRITICAL last run failed: no workspace under the root")),
        "{v:#}"
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("CRITICAL 2 workspaces left the root in the last 1day")),
        "{v:#}"
    );
    // Any empty root is CRITICAL for status, even one never snapshotted.
    let empty = env.path("mnt");
    fs::create_dir(&empty).unwrap();
    let out = status(&env, &empty, &[], 2);
    assert!(
        out.stdout.contains(&format!(
            "no workspace under the workspace root {}: is it mounted?",
            empty.display()
        )),
        "{out}"
    );

    // Nothing was pruned; once mounted again, the next run clears it.
    assert_eq!(list_json(&env).len(), 2);
    for u in ["alice", "bob"] {
        fs::rename(away.join(u), env.root.join(u)).unwrap();
    }
    env.snapshot(&[]);
    status(&env, &env.root, &[], 0);
}

// ---------------------------------------------------------------------------
// Directories that cannot be listed
// ---------------------------------------------------------------------------

#[test]
fn an_unreadable_user_or_project_directory_is_a_failure_never_absent() {
    require_root("only root can make a directory nobody cannot read");
    let env = nobody_env();
    write(&env.ws("alice", "thesis").join("a.txt"), b"alice");
    write(&env.ws("bob", "lab").join("b.txt"), b"bob");
    write(&env.ws("bob", "notes").join("n.txt"), b"notes");
    write(&env.ws("carol", "x").join("c.txt"), b"carol");
    write(&env.ws("carol", "y").join("c.txt"), b"carol y");
    // A symlinked user stays a rejected entry (WARNING), as before.
    std::os::unix::fs::symlink("/etc", env.root.join("dave")).unwrap();
    lock_out(&env, &["bob", "carol/x"]);

    let out = expect_code(&mut as_nobody(&env, &snapshot_args(&env, &[])), 1);
    assert!(
        out.stdout
            .contains("failed  bob  directory cannot be opened: Permission denied"),
        "{out}"
    );
    assert!(out.stdout.contains("failed  carol/x  "), "{out}");
    assert!(out.stdout.contains("skipped dave  is a symlink"), "{out}");
    assert!(
        out.stdout
            .contains("summary: 3 workspaces, 2 ok, 2 failed, 1 entries skipped"),
        "{out}"
    );
    let v = expect_code(&mut as_nobody(&env, &snapshot_args(&env, &["--json"])), 1).json();
    let unlistable = v["unlistable"].as_array().unwrap();
    assert_eq!(unlistable.len(), 1, "{v:#}");
    assert_eq!(unlistable[0]["path"], "bob");
    assert!(
        s(&unlistable[0], "reason").contains("Permission denied"),
        "{v:#}"
    );
    assert_eq!(u(&v["summary"], "failed"), 2, "{v:#}");
    assert_eq!(u(&v["summary"], "ok"), 2, "{v:#}");

    // status (as the same user as the runs): CRITICAL, naming bob.
    let out = expect_code(&mut as_nobody(&env, &status_args(&env, &["--json"])), 2);
    let v = out.json();
    let p = problems(&v);
    assert!(
        p.iter().any(
            |p| p.starts_with("CRITICAL 1 directory under the workspace root")
                && p.contains("cannot be listed")
                && p.contains("bob (cannot be opened: Permission denied")
        ),
        "{v:#}"
    );
    assert!(
        p.iter()
            .any(|p| p == "CRITICAL last run failed 2 workspaces"),
        "{v:#}"
    );
    // The symlink is a WARNING, not more.
    assert!(
        p.iter()
            .any(|p| p.starts_with("WARNING 1 entry under the workspace root")),
        "{v:#}"
    );
    assert_eq!(v["unlistable"][0]["path"], "bob", "{v:#}");
}

// ---------------------------------------------------------------------------
// status after a partial manual run
// ---------------------------------------------------------------------------

#[test]
fn status_judges_the_last_full_run_not_a_later_manual_one() {
    require_root("only root can make a directory nobody cannot read");
    let env = nobody_env();
    write(&env.ws("alice", "thesis").join("a.txt"), b"alice");
    write(&env.ws("bob", "lab").join("b.txt"), b"bob");
    lock_out(&env, &["bob/lab"]);
    // The full run fails bob/lab: CRITICAL.
    let full = expect_code(&mut as_nobody(&env, &snapshot_args(&env, &["--json"])), 1).json();
    let out = expect_code(&mut as_nobody(&env, &status_args(&env, &[])), 2);
    assert!(
        out.stdout
            .starts_with("WSNAP CRITICAL - last run failed 1 workspace"),
        "{out}"
    );
    // A manual run of the other workspace succeeds...
    expect_code(
        &mut as_nobody(&env, &snapshot_args(&env, &["--workspace", "alice/thesis"])),
        0,
    );
    // ...and status still judges the full run, and says when it was.
    let out = expect_code(&mut as_nobody(&env, &status_args(&env, &[])), 2);
    assert!(
        out.stdout
            .starts_with("WSNAP CRITICAL - last run failed 1 workspace"),
        "{out}"
    );
    assert!(out.stdout.contains(", last full run "), "{out}");
    assert!(out.stdout.contains("\nlast full run: "), "{out}");
    let v = expect_code(&mut as_nobody(&env, &status_args(&env, &["--json"])), 2).json();
    let run = &v["last_run"];
    assert_eq!(run["covered_root"], true, "{v:#}");
    assert_eq!(run["started"], full["started"], "{v:#}");
    assert_eq!(
        (u(run, "workspaces_ok"), u(run, "workspaces_failed")),
        (1, 1)
    );

    // Once a full run succeeds, OK.
    set_mode(&env.root.join("bob/lab"), 0o755);
    expect_code(&mut as_nobody(&env, &snapshot_args(&env, &[])), 0);
    expect_code(&mut as_nobody(&env, &status_args(&env, &[])), 0);
}

// ---------------------------------------------------------------------------
// Workspaces gone since the previous full run
// ---------------------------------------------------------------------------

#[test]
fn workspaces_gone_since_the_previous_full_run_are_listed_and_many_at_once_fail() {
    let env = TestEnv::new();
    for i in 0..12 {
        write(
            &env.ws(&format!("u{i:02}"), "p").join("f.txt"),
            format!("{i}").as_bytes(),
        );
    }
    env.snapshot(&[]);
    // A workspace whose newest snapshot is two days old, then deleted: it
    // left long ago as far as status can tell, so it raises nothing.
    write(&env.ws("old", "p").join("f.txt"), b"old");
    snapshot_at(&env, &["old/p"], now_ns() - 48 * 3600 * 1_000_000_000);
    fs::remove_dir_all(env.root.join("old")).unwrap();

    // One deleted project: listed by the run (exit 0) and a WARNING.
    fs::remove_dir_all(env.root.join("u03")).unwrap();
    let mut c = env.cmd();
    c.args(["snapshot", "--root"]).arg(&env.root);
    let out = expect_code(&mut c, 0);
    assert!(
        out.stdout
            .contains("gone    u03/p  no longer under the root"),
        "{out}"
    );
    assert!(!out.stdout.contains("old/p"), "{out}");
    let v = status(&env, &env.root, &["--json"], 1).json();
    assert_eq!(names(&v["gone"]), set(&["u03/p"]), "{v:#}");
    assert_eq!(
        problems(&v),
        ["WARNING 1 workspace left the root in the last 1day: u03/p"],
        "{v:#}"
    );
    let out = status(&env, &env.root, &[], 1);
    assert!(
        out.stdout
            .contains("\ngone: u03/p  no longer under the root"),
        "{out}"
    );
    // The next full run does not list it again.
    let v = env.snapshot(&[]);
    assert!(v["gone"].as_array().unwrap().is_empty(), "{v:#}");

    // Three of the eleven at once (more than 10%): the run fails, and
    // status is CRITICAL.
    for u in ["u05", "u07", "u09"] {
        fs::remove_dir_all(env.root.join(u)).unwrap();
    }
    let mut c = env.cmd();
    c.args(["snapshot", "--json", "--root"]).arg(&env.root);
    let v = expect_code(&mut c, 1).json();
    assert_eq!(names(&v["gone"]), set(&["u05/p", "u07/p", "u09/p"]));
    assert_eq!(u(&v["previous_full_run"], "workspaces"), 11, "{v:#}");
    assert!(
        s(&v, "error").starts_with("3 of the 11 workspaces of the previous full run"),
        "{v:#}"
    );
    let v = status(&env, &env.root, &["--json"], 2).json();
    let p = problems(&v);
    assert!(
        p.iter().any(|p| p.starts_with(
            "CRITICAL 4 workspaces left the root in the last 1day (more than 10% of them"
        )),
        "{v:#}"
    );
    assert!(
        p.iter()
            .any(|p| p.starts_with("CRITICAL last run failed: 3 of the 11 workspaces")),
        "{v:#}"
    );
}

// ---------------------------------------------------------------------------
// From many files to none
// ---------------------------------------------------------------------------

#[test]
fn a_snapshot_that_went_from_files_to_none_warns() {
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    for i in 0..20 {
        write(&ws.join(format!("f{i}.txt")), b"data");
    }
    write(&env.ws("bob", "lab").join("b.txt"), b"bob");
    env.snapshot(&[]);

    let mut c = env.cmd();
    c.args(["snapshot", "--json", "--exclude", "*", "--root"])
        .arg(&env.root);
    let v = expect_code(&mut c, 1).json();
    assert_eq!(v["ok"], false);
    let alice = &v["workspaces"][0];
    assert_eq!(ws_of(alice), "alice/thesis");
    assert_eq!(alice["status"], "ok", "committed as it is: {v:#}");
    assert_eq!(u(alice, "files"), 0);
    let skips = alice["skips"].as_array().unwrap();
    assert_eq!(skips.len(), 1, "{v:#}");
    assert_eq!(skips[0]["path"], ".");
    assert_eq!(skips[0]["missing"], true);
    assert!(
        s(&skips[0], "reason").starts_with("no files left (the previous snapshot had 20;"),
        "{v:#}"
    );
    assert_eq!(u(&v["summary"], "entries_skipped"), 2, "{v:#}");

    let v = status(&env, &env.root, &["--json"], 1).json();
    let found = problems(&v);
    assert_eq!(found[0], "WARNING last run skipped 2 entries", "{v:#}");
    // Retention is held for both (their newest snapshot is missing entries).
    assert_eq!(found.len(), 2, "{v:#}");
    assert!(
        found[1].starts_with("WARNING retention held for 2 workspaces"),
        "{v:#}"
    );
    let out = status(&env, &env.root, &[], 1);
    assert!(
        out.stdout
            .contains("skipped in last run: alice/thesis: .: no files left"),
        "{out}"
    );
}
