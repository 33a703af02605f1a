//! One JSON shape for every command (issue 17, docs/JSON.md): `--json`
//! prints one object on stdout with `schema_version` and `ok`, and `ok` is
//! true exactly when the exit code is 0; byte counts are keys ending in
//! `_bytes`; every `*_ns` time has its RFC 3339 string beside it (UTC, nine
//! digits of fraction, equal to the integer); with `--json` an error is one
//! JSON object on stderr that carries the exit code and the kind.

mod common;

use common::*;

const SCHEMA_VERSION: u64 = 2;

/// Every place in `v` that breaks the conventions.
fn breaches(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let here = format!("{at}.{k}");
                if let Some(base) = k.strip_suffix("_ns") {
                    match (m.get(base), x) {
                        (Some(Value::String(t)), Value::Number(n)) => {
                            let parsed = chrono::DateTime::parse_from_rfc3339(t)
                                .ok()
                                .and_then(|d| d.timestamp_nanos_opt());
                            if parsed != n.as_i64() {
                                out.push(format!("{here}: {n} but {base} is {t:?}"));
                            }
                            if !(t.ends_with('Z') && t.len() == 30) {
                                out.push(format!("{at}.{base}: {t:?} is not UTC with 9 digits"));
                            }
                        }
                        (Some(Value::Null), Value::Null) => {}
                        _ => out.push(format!("{here}: no RFC 3339 string `{base}` beside it")),
                    }
                }
                let lower = k.to_ascii_lowercase();
                let byte_count = lower.contains("byte")
                    || lower == "size"
                    || lower.starts_with("size_")
                    || lower.ends_with("_size");
                if byte_count && !k.ends_with("_bytes") {
                    out.push(format!("{here}: a byte count not named *_bytes"));
                }
                breaches(x, &here, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                breaches(x, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Run `c`, expect exit `code`, and check its stdout is one object of the
/// shared shape; the object.
#[track_caller]
fn shaped(what: &str, c: &mut Command, code: i32) -> Value {
    let out = expect_code(c, code);
    // `from_str` refuses anything after the one value.
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not one JSON value: {e}\n{out}"));
    assert!(v.is_object(), "{what}: not an object: {v:#}");
    assert_eq!(v["schema_version"], SCHEMA_VERSION, "{what}: {v:#}");
    assert_eq!(v["ok"], code == 0, "{what}: ok against exit {code}: {v:#}");
    let mut found = Vec::new();
    breaches(&v, what, &mut found);
    assert!(found.is_empty(), "{what}: {found:#?}\n{v:#}");
    v
}

/// The walker finds what it is there to find (a test of the test).
#[test]
fn the_convention_walker_finds_breaches() {
    let bad = serde_json::json!({
        "time_ns": 5,
        "size": 3,
        "bytes_added": 1,
        "nested": [{"mtime_ns": 1, "mtime": "1970-01-01T00:00:00.000000002Z"}],
        "when_ns": 1, "when": "1970-01-01T00:00:00Z",
    });
    let mut found = Vec::new();
    breaches(&bad, "x", &mut found);
    assert_eq!(found.len(), 6, "{found:#?}");
    let good = serde_json::json!({
        "time_ns": 1_800_000_000_123_456_789_i64,
        "time": "2027-01-15T08:00:00.123456789Z",
        "size_bytes": 3,
        "never_ns": null, "never": null,
        "free_percent": 1.5,
    });
    let mut none = Vec::new();
    breaches(&good, "x", &mut none);
    assert!(none.is_empty(), "{none:#?}");
}

/// Every command with `--json`, on a store with two snapshots per
/// workspace, a `file://` remote and an old rsync backup: one object each,
/// of the one shape, `ok` agreeing with the exit code (also where it is not
/// 0: `status` with stale workspaces).
#[test]
fn every_command_prints_one_object_of_the_one_shape() {
    let env = TestEnv::new();
    varied_workspaces(&env);
    let t1 = utc_ns(2026, 3, 2, 10, 0, 0);
    let t2 = utc_ns(2026, 3, 2, 11, 0, 0) + 123_456_789;
    let mut c = env.cmd();
    c.args(["snapshot", "--json", "--root"])
        .arg(&env.root)
        .args(["--time", &rfc3339(t1)]);
    shaped("snapshot", &mut c, 0);
    write(&env.root.join("alice/thesis/notes.txt"), b"chapter two\n");
    let mut c = env.cmd();
    c.args(["snapshot", "--json", "--root"])
        .arg(&env.root)
        .args(["--time", &rfc3339(t2)]);
    let report = shaped("snapshot", &mut c, 0);
    assert_eq!(report["workspaces"][0]["time_ns"], t2, "{report:#}");
    assert_eq!(
        report["workspaces"][0]["time"], "2026-03-02T11:00:00.123456789Z",
        "{report:#}"
    );

    let cmd = |args: &[&str]| {
        let mut c = env.cmd();
        c.args(args);
        c
    };
    let list = shaped("list", &mut cmd(&["list", "--json"]), 0);
    let first = s(&snapshots_of(&list)[0], "id").to_string();
    shaped("list USER", &mut cmd(&["list", "alice", "--json"]), 0);
    shaped(
        "list filtered",
        &mut cmd(&[
            "list",
            "alice/thesis",
            "--since",
            "2026-03-02",
            "--last",
            "1",
            "--json",
        ]),
        0,
    );
    let ws = "alice/thesis";
    shaped("ls", &mut cmd(&["ls", ws, "--at", "latest", "--json"]), 0);
    shaped(
        "ls -R",
        &mut cmd(&["ls", ws, "--at", "latest", "-R", "--json"]),
        0,
    );
    shaped("find", &mut cmd(&["find", ws, "*.txt", "--json"]), 0);
    shaped("find --all", &mut cmd(&["find", ws, "--all", "--json"]), 0);
    shaped("log", &mut cmd(&["log", ws, "notes.txt", "--json"]), 0);
    let diff = shaped(
        "diff",
        &mut cmd(&["diff", ws, &first, "latest", "--json"]),
        0,
    );
    assert_eq!(diff["summary"]["size_change_bytes"], 0, "{diff:#}");
    shaped("stats", &mut cmd(&["stats", "--json"]), 0);
    shaped(
        "stats --by-user",
        &mut cmd(&["stats", "--by-user", "--json"]),
        0,
    );
    shaped("check", &mut cmd(&["check", "--json"]), 0);
    shaped(
        "check --read-data",
        &mut cmd(&["check", "--read-data", "--json"]),
        0,
    );
    let mut c = cmd(&["restore", ws, "--at", "latest", "--json", "--to"]);
    c.arg(env.path("restored"));
    shaped("restore", &mut c, 0);
    shaped(
        "forget --dry-run",
        &mut cmd(&["forget", "--snapshot", &first, "--dry-run", "--json"]),
        0,
    );
    let dry = shaped(
        "rewrite --dry-run",
        &mut cmd(&[
            "rewrite",
            "alice/thesis",
            "--exclude",
            "notes.txt",
            "--all",
            "--dry-run",
            "--json",
        ]),
        0,
    );
    assert!(!dry["snapshots"].as_array().unwrap().is_empty(), "{dry:#}");
    shaped(
        "rewrite (a pattern that matches nothing: exit 1)",
        &mut cmd(&[
            "rewrite",
            "alice/thesis",
            "--exclude",
            "no-such-file",
            "--all",
            "--json",
        ]),
        1,
    );

    // The off-site copy.
    let remote_dir = env.path("remote");
    std::fs::create_dir(&remote_dir).unwrap();
    let url = format!("file://{}", remote_dir.display());
    shaped(
        "remote add",
        &mut cmd(&["remote", "add", "off", &url, "--generate-key", "--json"]),
        0,
    );
    let push = shaped("push", &mut cmd(&["push", "--json"]), 0);
    assert!(u(&push["uploaded"], "size_bytes") > 0, "{push:#}");
    let remotes = shaped("remote list", &mut cmd(&["remote", "list", "--json"]), 0);
    assert_eq!(remotes["remotes"][0]["name"], "off", "{remotes:#}");
    shaped(
        "check --remote",
        &mut cmd(&["check", "--remote", "off", "--json"]),
        0,
    );
    let mut c = cmd(&["status", "--json", "--min-free", "0", "--root"]);
    c.arg(&env.root);
    // Snapshots recorded in March are stale now: WARNING, exit 1, ok false.
    let status = shaped("status", &mut c, 1);
    assert_eq!(status["remotes"][0]["name"], "off", "{status:#}");
    assert_eq!(
        (&status["status"], &status["exit_code"]),
        (&"WARNING".into(), &1.into())
    );
    let mut c = cmd(&[
        "restore", "--remote", "off", ws, "--at", "latest", "--json", "--to",
    ]);
    c.arg(env.path("from-remote"));
    shaped("restore --remote", &mut c, 0);
    let pulled = env.path("pulled");
    let mut c = bare_cmd();
    c.arg("--store")
        .arg(&pulled)
        .args(["remote", "add", "off", &url, "--key-file"])
        .arg(env.store.join("remotes/off.key"));
    expect_code(&mut c, 0);
    let mut c = bare_cmd();
    c.arg("--store")
        .arg(&pulled)
        .args(["pull", "off", "--json"]);
    shaped("pull", &mut c, 0);
    let mut c = cmd(&[
        "snapshot",
        "--prune",
        "--keep-last",
        "1",
        "--push",
        "--json",
        "--root",
    ]);
    c.arg(&env.root);
    let v = shaped("snapshot --prune --push", &mut c, 0);
    assert!(v["prune"].is_object() && v["push"].is_object(), "{v:#}");
    shaped(
        "prune",
        &mut cmd(&["prune", "--keep-last", "1", "--json"]),
        0,
    );

    // Migration from the old backups.
    let old = env.path("old");
    write(&old.join("alice_thesis_20260101_120000/a.txt"), b"old");
    let mut c = cmd(&["import-rsync", "--json", "--dry-run", "--root"]);
    c.arg(&env.root).arg(&old);
    shaped("import-rsync --dry-run", &mut c, 0);
    let mut c = cmd(&["import-rsync", "--json", "--root"]);
    c.arg(&env.root).arg(&old);
    shaped("import-rsync", &mut c, 0);

    remove_catalog(&env.store);
    shaped("repair", &mut cmd(&["repair", "--json"]), 0);
}

/// The error object of `wsnap ARGS --json`, the last line of stderr;
/// asserts the exit code and that stdout is empty.
#[track_caller]
fn error_of(c: &mut Command, code: i32) -> Value {
    let out = expect_code(c, code);
    assert_eq!(out.stdout, "", "{out}");
    // The last line (notes and warnings may come before it).
    let line = out.stderr.trim().lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("stderr is not one JSON object: {e}\n{out}"));
    assert_eq!(v["ok"], false, "{v:#}");
    assert_eq!(v["schema_version"], SCHEMA_VERSION, "{v:#}");
    assert_eq!(v["error"]["exit_code"], code, "{v:#}");
    assert!(!s(&v["error"], "message").is_empty(), "{v:#}");
    v["error"].clone()
}

/// With `--json` every failure is a JSON object on stderr, with the exit
/// code, the kind and the fields a script needs; without it, the text line.
#[test]
fn errors_with_json_are_json_objects_on_stderr() {
    let env = TestEnv::new();
    write(&env.ws("alice", "thesis").join("a.txt"), b"a");
    env.snapshot(&[]);
    let cmd = |args: &[&str]| {
        let mut c = env.cmd();
        c.args(args);
        c
    };

    let e = error_of(&mut cmd(&["list", "alice/none", "--json"]), 2);
    assert_eq!(
        (s(&e, "kind"), s(&e, "user"), s(&e, "project")),
        ("input", "alice", "none"),
        "{e:#}"
    );
    let e = error_of(&mut cmd(&["list", "carol", "--json"]), 2);
    assert_eq!((s(&e, "kind"), s(&e, "user")), ("input", "carol"), "{e:#}");
    assert!(s(&e, "message").contains("carol"), "{e:#}");
    let e = error_of(
        &mut cmd(&["ls", "alice/thesis", "--at", "soon", "--json"]),
        2,
    );
    assert_eq!((s(&e, "kind"), s(&e, "what")), ("input", "time"), "{e:#}");

    // Not a store: exit 3, with the path and the hint.
    let nowhere = env.path("nowhere");
    let mut c = bare_cmd();
    c.arg("--store").arg(&nowhere).args(["stats", "--json"]);
    let e = error_of(&mut c, 3);
    assert_eq!(s(&e, "kind"), "store", "{e:#}");
    assert_eq!(s(&e, "path"), nowhere.to_str().unwrap(), "{e:#}");
    assert!(
        s(&e, "message").contains("wsnap --store"),
        "the hint: {e:#}"
    );

    // A target that is not empty.
    let target = env.path("target");
    write(&target.join("x"), b"x");
    let mut c = cmd(&[
        "restore",
        "alice/thesis",
        "--at",
        "latest",
        "--json",
        "--to",
    ]);
    c.arg(&target);
    let e = error_of(&mut c, 2);
    assert_eq!(s(&e, "path"), target.to_str().unwrap(), "{e:#}");
    assert!(s(&e, "message").contains("--overwrite"), "{e:#}");

    // The writers' lock held elsewhere: exit 75, kind locked.
    let holder = HeldLock::new(&env);
    let e = error_of(&mut cmd(&["prune", "--json"]), 75);
    assert_eq!(s(&e, "kind"), "locked", "{e:#}");
    drop(holder);

    // A command line clap refuses: exit 2, kind input, clap's message.
    let e = error_of(&mut cmd(&["list", "--json", "--bogus"]), 2);
    assert_eq!(s(&e, "kind"), "input", "{e:#}");
    assert!(s(&e, "message").contains("--bogus"), "{e:#}");
    let e = error_of(&mut cmd(&["list", "--last", "0", "--json"]), 2);
    assert!(s(&e, "message").contains("--last"), "{e:#}");
    // `cat` has no --json: asking for it is a usage error, as JSON.
    error_of(
        &mut cmd(&["cat", "alice/thesis", "a.txt", "--at", "latest", "--json"]),
        2,
    );

    // Without --json: the text line, and help is still help.
    let out = expect_code(&mut cmd(&["list", "alice/none"]), 2);
    assert!(
        out.stderr
            .contains("error: no snapshots of workspace alice/none"),
        "{out}"
    );
    assert!(!out.stderr.contains('{'), "{out}");
    let out = expect_code(&mut cmd(&["list", "--help", "--json"]), 0);
    assert!(out.stdout.contains("Usage:"), "{out}");
    // An argument after `--` is not the flag.
    let mut c = cmd(&["snapshot", "--root"]);
    c.arg(&env.root)
        .args(["--workspace", "alice/none", "--", "--json"]);
    let out = expect_code(&mut c, 2);
    assert!(!out.stderr.contains("schema_version"), "{out}");
}

/// The writers' lock (`STORE/lock`) held by this test process until
/// dropped, as another run would hold it.
struct HeldLock(#[allow(dead_code)] std::fs::File);

impl HeldLock {
    fn new(env: &TestEnv) -> HeldLock {
        use std::os::fd::AsRawFd;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(env.store.join("lock"))
            .expect("the store's lock file");
        // SAFETY: flock on a descriptor this File owns.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        HeldLock(f)
    }
}
