//! Admin and deployment: `import-rsync` from old-style backup directories,
//! `completions` and `man`, `-v`/`-q` logging, and the files in `deploy/`,
//! all through the real binary.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use common::*;

/// An old rsync backup tree beside the test's workspace root.
fn old_root(env: &TestEnv) -> PathBuf {
    let p = env.path("old-backups");
    fs::create_dir_all(&p).unwrap();
    p
}

/// Create the backup directory `name` under `old` with `files` (path, bytes).
fn backup(old: &Path, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let dir = old.join(name);
    for (rel, bytes) in files {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        write_file(&p, bytes, 0o640, 1_700_000_000_000_000_000);
    }
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn import(env: &TestEnv, old: &Path, extra: &[&str], code: i32) -> Value {
    let mut c = env.cmd();
    c.arg("import-rsync")
        .arg(old)
        .arg("--root")
        .arg(&env.root)
        .arg("--json")
        .args(extra);
    expect_code(&mut c, code).json()
}

/// `name → status` of an import report.
fn statuses(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (s(b, "name").to_string(), s(b, "status").to_string()))
        .collect();
    v.sort();
    v
}

fn status_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report:#}"))
}

/// A crafted old backup root: names with `_` in user and project, names
/// that only the workspace root can split, two ambiguous ones, a bad time
/// and a stray file.
fn crafted(env: &TestEnv) -> PathBuf {
    env.ws("alice", "thesis");
    env.ws("bob_smith", "data_2024");
    env.ws("x", "y_z");
    env.ws("x_y", "z");
    let old = old_root(env);
    backup(&old, "alice_thesis_20260101_120000", &[("a.txt", b"v1\n")]);
    backup(
        &old,
        "alice_thesis_20260101_120500",
        &[
            ("a.txt", b"v2\n"),
            ("data/big.bin", &random_bytes(7, 300 * KIB)),
        ],
    );
    backup(
        &old,
        "bob_smith_data_2024_20260101_120000",
        &[("results/r.csv", b"1,2,3\n"), ("empty", b"")],
    );
    // One `_`: its only split is taken though no such workspace exists.
    backup(
        &old,
        "carol_notes_20260101_120000",
        &[("n.md", b"# notes\n")],
    );
    // Both x/y_z and x_y/z exist.
    backup(&old, "x_y_z_20260101_120000", &[("f", b"x")]);
    // No split is known and there are several `_`.
    backup(&old, "p_q_r_20260101_120000", &[("f", b"p")]);
    // Month 13.
    backup(&old, "alice_thesis_20261301_120000", &[("f", b"bad")]);
    write(&old.join("README.txt"), b"old backups\n");
    old
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let env = TestEnv::new();
    let old = crafted(&env);
    let r = import(&env, &old, &["--dry-run"], 1);
    assert_eq!(r["dry_run"], true);
    assert_eq!(
        statuses(&r),
        [
            ("README.txt", "ignored"),
            ("alice_thesis_20260101_120000", "would_import"),
            ("alice_thesis_20260101_120500", "would_import"),
            ("alice_thesis_20261301_120000", "invalid"),
            ("bob_smith_data_2024_20260101_120000", "would_import"),
            ("carol_notes_20260101_120000", "would_import"),
            ("p_q_r_20260101_120000", "ambiguous"),
            ("x_y_z_20260101_120000", "ambiguous"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let bob = status_of(&r, "bob_smith_data_2024_20260101_120000");
    assert_eq!(
        (s(bob, "user"), s(bob, "project")),
        ("bob_smith", "data_2024")
    );
    assert!(s(bob, "time").starts_with("2026-01-01T12:00:00"), "{bob:#}");
    let xyz = status_of(&r, "x_y_z_20260101_120000");
    let mut cands: Vec<&str> = xyz["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    cands.sort();
    assert_eq!(cands, ["x/y_z", "x_y/z"]);
    assert!(!env.store.exists(), "a dry run must not create the store");

    // The human plan names each directory, its workspace and time, and
    // what to do about the ambiguous ones.
    let mut c = env.cmd();
    c.arg("import-rsync")
        .arg(&old)
        .arg("--root")
        .arg(&env.root)
        .arg("--dry-run");
    let out = expect_code(&mut c, 1);
    assert!(
        out.stdout.contains(
            "import     bob_smith_data_2024_20260101_120000 -> bob_smith/data_2024 @ 2026-01-01 12:00:00"
        ),
        "{out}"
    );
    assert!(out.stdout.contains("--map x_y_z=USER/PROJECT"), "{out}");
    assert!(out.stdout.contains("dry run: 4 backups to import"), "{out}");
    assert!(!env.store.exists());

    // Against an existing store, a dry run leaves it byte for byte alone.
    expect_code(env.cmd().arg("init"), 0);
    let before = fs::read(env.store.join("catalog.sqlite")).unwrap();
    import(&env, &old, &["--dry-run"], 1);
    assert_eq!(fs::read(env.store.join("catalog.sqlite")).unwrap(), before);
    assert_eq!(pack_bytes(&env.store), 0);
}

#[test]
fn import_restores_each_backup_at_its_time_and_reruns_are_idempotent() {
    let env = TestEnv::new();
    let old = crafted(&env);
    let r = import(&env, &old, &[], 1);
    assert_eq!(r["ok"], false);
    assert_eq!(u(&r["summary"], "imported"), 4, "{r:#}");
    assert_eq!(u(&r["summary"], "ambiguous"), 2, "{r:#}");
    assert_eq!(u(&r["summary"], "invalid"), 1, "{r:#}");
    assert_eq!(u(&r["summary"], "ignored"), 1, "{r:#}");

    // Each imported backup restores byte-identically at its time.
    for (ws, at, dir) in [
        (
            "alice/thesis",
            "20260101_120000",
            "alice_thesis_20260101_120000",
        ),
        (
            "alice/thesis",
            "2026-01-01 12:05",
            "alice_thesis_20260101_120500",
        ),
        (
            "alice/thesis",
            "2026-01-01 12:09",
            "alice_thesis_20260101_120500",
        ),
        (
            "bob_smith/data_2024",
            "20260101_120000",
            "bob_smith_data_2024_20260101_120000",
        ),
        (
            "carol/notes",
            "20260101_120000",
            "carol_notes_20260101_120000",
        ),
    ] {
        let target = env.path(format!("restore-{}-{}", dir, at.replace([' ', ':'], "_")));
        let mut c = env.cmd();
        c.args(["restore", ws, "--at", at, "--to"]).arg(&target);
        expect_code(&mut c, 0);
        assert_trees_equal(&old.join(dir), &target);
    }
    // Nothing before the first backup.
    let mut c = env.cmd();
    c.args(["restore", "alice/thesis", "--at", "20260101_115959", "--to"])
        .arg(env.path("too-early"));
    expect_code(&mut c, 2);

    let list = expect_code(env.cmd().args(["list", "--json"]), 0).json();
    let times: Vec<(&str, &str)> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["user"].as_str().unwrap(),
                &s["time"].as_str().unwrap()[..19],
            )
        })
        .collect();
    assert_eq!(times.len(), 4, "{list:#}");
    assert!(
        times.contains(&("alice", "2026-01-01T12:05:00")),
        "{times:?}"
    );

    // Again: everything is there already; still exit 1 for the ambiguous.
    let packs = pack_bytes(&env.store);
    let r = import(&env, &old, &[], 1);
    assert_eq!(u(&r["summary"], "imported"), 0, "{r:#}");
    assert_eq!(u(&r["summary"], "exists"), 4, "{r:#}");
    assert_eq!(pack_bytes(&env.store), packs);

    // Resolve by hand, drop the bad one: the rest goes in, exit 0.
    fs::remove_dir_all(old.join("alice_thesis_20261301_120000")).unwrap();
    let r = import(
        &env,
        &old,
        &["--map", "x_y_z=x_y/z", "--map", "p_q_r=p_q/r"],
        0,
    );
    assert_eq!(u(&r["summary"], "imported"), 2, "{r:#}");
    assert_eq!(u(&r["summary"], "exists"), 4, "{r:#}");
    let p = status_of(&r, "p_q_r_20260101_120000");
    assert_eq!((s(p, "user"), s(p, "project")), ("p_q", "r"));
    // Without the maps again: what they settled counts as done, exit 0.
    let r = import(&env, &old, &[], 0);
    assert_eq!(u(&r["summary"], "exists"), 6, "{r:#}");
    let x = status_of(&r, "x_y_z_20260101_120000");
    assert_eq!((s(x, "status"), s(x, "user")), ("exists", "x_y"), "{r:#}");
    // A workspace the store knows resolves later names without a map.
    fs::remove_dir_all(env.root.join("x")).unwrap();
    backup(&old, "x_y_z_20260102_000000", &[("f", b"later")]);
    backup(&old, "p_q_r_20260102_000000", &[("f", b"later")]);
    let r = import(&env, &old, &[], 0);
    assert_eq!(u(&r["summary"], "imported"), 2, "{r:#}");
    let p = status_of(&r, "p_q_r_20260102_000000");
    assert_eq!((s(p, "user"), s(p, "project")), ("p_q", "r"), "{r:#}");
    let x = status_of(&r, "x_y_z_20260102_000000");
    assert_eq!((s(x, "user"), s(x, "project")), ("x_y", "z"), "{r:#}");

    expect_code(env.cmd().arg("check").arg("--read-data"), 0);
}

#[test]
fn imported_data_dedups_with_snapshots_and_other_backups() {
    let env = TestEnv::new();
    let ws = env.ws("dana", "sim_runs");
    let content = random_bytes(42, 2 * MIB);
    write(&ws.join("out.bin"), &content);
    write(&ws.join("params.toml"), b"n = 1\n");
    env.snapshot(&[]);
    let after_snapshot = pack_bytes(&env.store);

    let old = old_root(&env);
    let files: &[(&str, &[u8])] = &[("out.bin", &content), ("params.toml", b"n = 1\n")];
    backup(&old, "dana_sim_runs_20260101_120000", files);
    let r = import(&env, &old, &[], 0);
    assert_eq!(u(&r["summary"], "imported"), 1);
    let one = pack_bytes(&env.store) - after_snapshot;
    backup(&old, "dana_sim_runs_20260101_120500", files);
    backup(&old, "dana_sim_runs_20260101_121000", files);
    let r = import(&env, &old, &[], 0);
    assert_eq!(u(&r["summary"], "imported"), 2);
    let three = pack_bytes(&env.store) - after_snapshot;
    // Only trees (different mtimes/inodes) are new: a few hundred bytes,
    // against 2 MiB of content.
    assert!(one < 16 * KIB as u64, "first import added {one} bytes");
    assert!(three < 32 * KIB as u64, "three imports added {three} bytes");
    for b in r["backups"].as_array().unwrap() {
        if b["status"] == "imported" {
            assert!(u(&b["snapshot"], "added_bytes") < 16 * KIB as u64, "{b:#}");
        }
    }
}

/// `rsync --link-dest` backups share inodes: the stat cache (each import's
/// parent is the previous backup) skips reading unchanged files.
#[test]
fn hard_linked_backups_are_read_once() {
    let env = TestEnv::new();
    let old = old_root(&env);
    let first = backup(
        &old,
        "fay_lab_20260101_120000",
        &[("a.bin", &random_bytes(3, 512 * KIB)), ("b.txt", b"b\n")],
    );
    let second = old.join("fay_lab_20260101_120500");
    fs::create_dir(&second).unwrap();
    for name in ["a.bin", "b.txt"] {
        fs::hard_link(first.join(name), second.join(name)).unwrap();
    }
    write(&second.join("new.txt"), b"only in the second\n");
    wait_out_racy_window(&old);
    let r = import(&env, &old, &[], 0);
    let read = |name: &str| u(&status_of(&r, name)["snapshot"], "read_bytes");
    assert_eq!(read("fay_lab_20260101_120000"), 512 * KIB as u64 + 2);
    assert_eq!(read("fay_lab_20260101_120500"), 19, "{r:#}");
    let target = env.path("second");
    let mut c = env.cmd();
    c.args(["restore", "fay/lab", "--at", "20260101_120500", "--to"])
        .arg(&target);
    expect_code(&mut c, 0);
    assert_trees_equal(&second, &target);
}

#[test]
fn import_refuses_a_missing_old_root_and_a_bad_map() {
    let env = TestEnv::new();
    let mut c = env.cmd();
    c.arg("import-rsync")
        .arg(env.path("nope"))
        .arg("--root")
        .arg(&env.root);
    let out = expect_code(&mut c, 2);
    assert!(out.stderr.contains("old backup root"), "{out}");
    let old = old_root(&env);
    let mut c = env.cmd();
    c.arg("import-rsync")
        .arg(&old)
        .args(["--map", "a_b_c"])
        .arg("--root")
        .arg(&env.root);
    let out = expect_code(&mut c, 2);
    assert!(out.stderr.contains("PREFIX=USER/PROJECT"), "{out}");
    assert!(!env.store.exists());
}

/// `import-rsync` in the human form (the plan or the result), asserting
/// the exit code.
fn import_text(env: &TestEnv, old: &Path, extra: &[&str], code: i32) -> Out {
    let mut c = env.cmd();
    c.arg("import-rsync")
        .arg(old)
        .arg("--root")
        .arg(&env.root)
        .args(extra);
    expect_code(&mut c, code)
}

/// A `--map` must match the name it maps (issue 17): its PREFIX must be a
/// backup's, and USER/PROJECT one of the prefix's splits or a workspace
/// that exists. A typo is refused (exit 2, nothing written) instead of
/// importing nothing, or importing into a phantom workspace.
#[test]
fn a_map_must_match_the_name_it_maps() {
    let env = TestEnv::new();
    let old = crafted(&env);

    let out = import_text(&env, &old, &["--map", "x_y_zz=x_y/z"], 2);
    assert!(
        out.stderr.contains(&format!(
            "invalid --map: x_y_zz=…: no directory in {} is named x_y_zz_YYYYmmdd_HHMMSS; \
             close names: x_y_z",
            old.display()
        )),
        "{out}"
    );
    let out = import_text(&env, &old, &["--map", "zzzz=x_y/z"], 2);
    assert!(out.stderr.contains("no name is close"), "{out}");

    // A typo in the workspace: neither a split nor a workspace that exists.
    let out = import_text(&env, &old, &["--map", "p_q_r=p_q/rr", "--dry-run"], 2);
    assert!(
        out.stderr.contains(
            "p_q_r=p_q/rr: p_q/rr is neither a split of p_q_r (p/q_r, p_q/r) nor a \
             workspace under the root or in the store"
        ),
        "{out}"
    );
    assert!(!env.store.exists(), "a refused --map writes nothing");

    // A split, or a workspace that exists (a project renamed since), is taken.
    let r = import(
        &env,
        &old,
        &[
            "--map",
            "p_q_r=p_q/r",
            "--map",
            "x_y_z=alice/thesis",
            "--dry-run",
        ],
        1,
    );
    let p = status_of(&r, "p_q_r_20260101_120000");
    assert_eq!((s(p, "status"), s(p, "project")), ("would_import", "r"));
    let x = status_of(&r, "x_y_z_20260101_120000");
    assert_eq!((s(x, "user"), s(x, "project")), ("alice", "thesis"));
}

/// A directory name with a date that cannot be says what was expected and
/// which part is wrong (not a message about RFC 3339), and `--skip`
/// marks such names as handled, so re-runs exit 0 (issue 17).
#[test]
fn impossible_dates_are_explained_and_skip_marks_them_handled() {
    let env = TestEnv::new();
    let old = crafted(&env);
    let out = import_text(&env, &old, &["--dry-run"], 1);
    assert!(
        out.stdout.contains(
            "invalid    alice_thesis_20261301_120000: expected YYYYmmdd_HHMMSS, but month 13 \
             in 20261301_120000 is not 01..12; not imported (if it is not a backup to import, \
             --skip alice_thesis_20261301_120000 marks it as handled)"
        ),
        "{out}"
    );
    assert!(!out.stdout.contains("RFC 3339"), "{out}");

    let maps = ["--map", "x_y_z=x_y/z", "--map", "p_q_r=p_q/r"];
    let mut args = maps.to_vec();
    args.extend(["--skip", "alice_thesis_2026130?_*", "--skip", "nothing_*"]);
    let mut c = env.cmd();
    c.arg("import-rsync")
        .arg(&old)
        .arg("--root")
        .arg(&env.root)
        .arg("--json")
        .args(&args);
    let out = expect_code(&mut c, 0);
    assert!(
        out.stderr.contains("--skip \"nothing_*\" matches no entry"),
        "{out}"
    );
    let r = out.json();
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(u(&r["summary"], "imported"), 6, "{r:#}");
    assert_eq!(u(&r["summary"], "skipped"), 1, "{r:#}");
    assert_eq!(u(&r["summary"], "invalid"), 0, "{r:#}");
    let bad = status_of(&r, "alice_thesis_20261301_120000");
    assert_eq!(s(bad, "status"), "skipped", "{r:#}");
    assert_eq!(s(bad, "reason"), "matches --skip alice_thesis_2026130?_*");

    // Every re-run with the same --skip: exit 0, the name reported as skipped.
    let out = import_text(&env, &old, &["--skip", "alice_thesis_20261301_120000"], 0);
    assert!(
        out.stdout.contains(
            "skipped    alice_thesis_20261301_120000: matches --skip alice_thesis_20261301_120000"
        ),
        "{out}"
    );
    assert!(out.stdout.contains(", 1 skipped,"), "{out}");
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = expect_code(bare_cmd().args(["completions", shell]), 0);
        for word in ["snapshot", "restore", "import-rsync", "completions"] {
            assert!(out.stdout.contains(word), "{shell} lacks {word}:\n{out}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("wsnap.bash");
    let out = expect_code(bare_cmd().args(["completions", "bash"]), 0);
    fs::write(&script, &out.stdout).unwrap();
    let check = StdCommand::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let out = expect_code(bare_cmd().args(["completions", "tcsh"]), 2);
    assert!(out.stderr.contains("tcsh"), "{out}");

    for cmd in ["man", "man-page"] {
        let out = expect_code(bare_cmd().arg(cmd), 0);
        assert!(
            out.stdout.starts_with(".ie") || out.stdout.contains(".TH wsnap"),
            "{out}"
        );
        for word in ["snapshot", "import\\-rsync", "SCITEX_BACKUP_ROOT"] {
            assert!(out.stdout.contains(word), "man page lacks {word}");
        }
    }
}

/// `snapshot` into a new store: the "created new store" warning on stderr.
fn first_snapshot(env: &TestEnv, flags: &[&str]) -> Out {
    env.ws("eve", "p");
    write(&env.root.join("eve/p/f.txt"), b"hello\n");
    let mut c = env.cmd();
    c.args(flags).arg("snapshot").arg("--root").arg(&env.root);
    expect_code(&mut c, 0)
}

#[test]
fn quiet_drops_warnings_verbose_adds_info_and_results_stay_on_stdout() {
    let plain = first_snapshot(&TestEnv::new(), &[]);
    assert!(
        plain.stderr.contains("warning: created new store"),
        "{plain}"
    );
    assert!(!plain.stderr.contains("info:"), "{plain}");
    // No progress bar off a terminal: no carriage returns, no escapes.
    assert!(
        !plain.stderr.contains('\r') && !plain.stderr.contains('\x1b'),
        "{plain}"
    );
    // Not a terminal: every log line starts with a local timestamp and pid.
    let line = plain.stderr.lines().next().unwrap();
    let (ts, rest) = line.split_once(' ').unwrap();
    assert!(
        ts.len() >= 23 && ts.as_bytes()[4] == b'-' && ts.as_bytes()[10] == b'T',
        "{line}"
    );
    assert!(rest.starts_with("wsnap["), "{line}");

    let quiet = first_snapshot(&TestEnv::new(), &["-q"]);
    assert_eq!(quiet.stderr, "", "{quiet}");
    let verbose = first_snapshot(&TestEnv::new(), &["-v"]);
    assert!(
        verbose.stderr.contains("warning: created new store"),
        "{verbose}"
    );
    assert!(
        verbose.stderr.contains("info: snapshot of 1 workspaces"),
        "{verbose}"
    );
    assert!(
        verbose.stderr.contains("info: snapshot run finished in"),
        "{verbose}"
    );
    assert!(!verbose.stderr.contains("debug:"), "{verbose}");
    let debug = first_snapshot(&TestEnv::new(), &["-vv"]);
    assert!(debug.stderr.contains("debug: eve/p: walking"), "{debug}");
    assert!(debug.stderr.contains("debug: eve/p: snapshot"), "{debug}");

    // The same results on stdout whatever the log level.
    for out in [&plain, &quiet, &verbose, &debug] {
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].starts_with("ok      eve/p  snapshot "), "{out}");
        assert!(
            lines[1].starts_with("summary: 1 workspaces, 1 ok, 0 failed"),
            "{out}"
        );
    }
    // Errors are never silenced.
    let env = TestEnv::new();
    let out = expect_code(env.cmd().args(["-q", "list"]), 3);
    assert!(out.stderr.contains("error: no wsnap store"), "{out}");
    let out = expect_code(env.cmd().args(["-q", "-v", "list"]), 2);
    assert!(out.stderr.contains("--quiet"), "{out}");
}

// ---------------------------------------------------------------------------
// deploy/
// ---------------------------------------------------------------------------

fn deploy(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Whether one cron time field is valid for values `lo..=hi`.
fn cron_field_ok(field: &str, lo: u32, hi: u32) -> bool {
    field.split(',').all(|part| {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => match s.parse::<u32>() {
                Ok(s) if s >= 1 && s <= hi => (r, true),
                _ => return false,
            },
            None => (part, false),
        };
        if range == "*" {
            return true;
        }
        let num = |s: &str| s.parse::<u32>().ok().filter(|n| (lo..=hi).contains(n));
        match range.split_once('-') {
            Some((a, b)) => matches!((num(a), num(b)), (Some(a), Some(b)) if a <= b),
            None => num(range).is_some() && !step,
        }
    })
}

/// The cron file's job line, shipped commented out (`#*/5 * * * * root …`):
/// its shell command, the wsnap arguments in it, and the file's variables.
struct CronJob {
    command: String,
    args: Vec<String>,
    vars: Vec<(String, String)>,
}

fn cron_job() -> CronJob {
    let text = deploy("cron.d/wsnap");
    assert!(
        text.ends_with('\n'),
        "cron ignores a last line without newline"
    );
    let mut vars = Vec::new();
    let mut jobs = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(job) = line.strip_prefix("#*/") {
            jobs.push(format!("*/{job}"));
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=').filter(|(k, _)| !k.contains(' ')) {
            vars.push((k.to_string(), v.to_string()));
            continue;
        }
        panic!("an active job line: installing must not start backups: {line}");
    }
    assert_eq!(jobs.len(), 1, "one commented-out job line: {jobs:?}");
    let fields: Vec<&str> = jobs[0].split_whitespace().collect();
    let bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    for (f, (lo, hi)) in fields.iter().zip(bounds) {
        assert!(
            cron_field_ok(f, lo, hi),
            "bad cron time field {f:?} in {jobs:?}"
        );
    }
    assert_eq!(&fields[..5], ["*/5", "*", "*", "*", "*"], "every 5 minutes");
    assert_eq!(fields[5], "root", "/etc/cron.d lines name the user");
    let command = fields[6..].join(" ");
    assert!(
        command.ends_with(">>/app/logs/workspace-backups.log 2>&1"),
        "log appended with stderr: {command}"
    );
    assert!(!command.contains("flock"), "wsnap locks itself: {command}");
    let args: Vec<String> = fields[6..]
        .iter()
        .skip_while(|a| **a != "wsnap")
        .take_while(|a| !a.starts_with(">>"))
        .map(|s| s.to_string())
        .collect();
    CronJob {
        command,
        args,
        vars,
    }
}

/// `deploy/default/wsnap` (`/etc/default/wsnap`) as name → value, checked
/// to be plain `NAME=value` lines that both sh and systemd read alike.
fn default_file() -> Vec<(String, String)> {
    let mut vars = Vec::new();
    for line in deploy("default/wsnap").lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = line.split_once('=').expect("NAME=value");
        assert!(
            k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                && !v.is_empty()
                && !v.contains([' ', '"', '\'', '$', '\\']),
            "not a plain NAME=value line: {line:?}"
        );
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

#[test]
fn default_file_holds_the_old_defaults() {
    let vars = default_file();
    let want = [
        ("SCITEX_WORKSPACE_ROOT", "/app/data/users"),
        ("SCITEX_BACKUP_ROOT", "/app/backups/snapshots"),
        ("SCITEX_MAX_SNAPSHOTS", "288"),
    ];
    let got: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    assert_eq!(got, want);
    // The binary's own defaults are the same.
    let help = expect_code(bare_cmd().args(["snapshot", "--help"]), 0);
    for (_, v) in &want[..2] {
        assert!(help.stdout.contains(&format!("[default: {v}]")), "{help}");
    }
}

#[test]
fn cron_file_runs_snapshot_prune_every_five_minutes() {
    let job = cron_job();
    let args = &job.args;
    assert_eq!(&args[..4], ["wsnap", "-v", "snapshot", "--prune"]);
    let wait = args
        .iter()
        .position(|a| a == "--lock-wait")
        .map(|i| args[i + 1].clone())
        .expect("--lock-wait");
    let secs = humantime::parse_duration(&wait).unwrap().as_secs();
    assert!(
        (60..300).contains(&secs),
        "lock wait {wait} should end before the next tick"
    );
    assert!(
        job.command.contains(". /etc/default/wsnap"),
        "the variables come from /etc/default/wsnap: {}",
        job.command
    );
    // The job line itself, run as cron runs it (sh -c, the file's
    // variables, nothing else), with /etc/default/wsnap and the log
    // pointed at temp files and `wsnap` the binary under test.
    let env = TestEnv::new();
    env.ws("u", "p");
    write(&env.root.join("u/p/f"), b"x");
    let defaults = env.path("default-wsnap");
    let log = env.path("workspace-backups.log");
    let text = deploy("default/wsnap")
        .replace("/app/data/users", env.root.to_str().unwrap())
        .replace("/app/backups/snapshots", env.store.to_str().unwrap());
    write(&defaults, text.as_bytes());
    let command = job
        .command
        .replace("/etc/default/wsnap", defaults.to_str().unwrap())
        .replace("/app/logs/workspace-backups.log", log.to_str().unwrap());
    let mut c = StdCommand::new("/bin/sh");
    c.env_clear();
    for (k, v) in &job.vars {
        c.env(k, v);
    }
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = job.vars.iter().find(|(k, _)| k == "PATH").expect("PATH");
    c.env("PATH", format!("{}:{}", bin_dir.display(), path.1));
    let out = c.arg("-c").arg(&command).output().unwrap();
    let logged = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{command}: {out:?}\n{logged}"
    );
    assert!(
        logged.contains("prune: forgot 0 snapshots, kept 1"),
        "{logged}"
    );
    assert!(env.store.join("catalog.sqlite").exists());
}

#[test]
fn systemd_units_match_cron_and_verify() {
    let service = deploy("systemd/wsnap-snapshot.service");
    let timer = deploy("systemd/wsnap-snapshot.timer");
    let job = cron_job();
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let exec_args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(exec_args[0], "/usr/bin/wsnap", "the packaged binary");
    assert_eq!(
        exec_args[1..],
        job.args[1..],
        "service and cron run the same command"
    );
    assert!(
        service.contains("\nEnvironmentFile=/etc/default/wsnap\n"),
        "the unit reads the variables the cron line reads"
    );
    assert!(
        !service.contains("Environment=SCITEX"),
        "one place for the variables: /etc/default/wsnap"
    );
    assert!(service.contains("StandardOutput=append:/app/logs/workspace-backups.log"));
    assert!(service.contains("ReadWritePaths=/app/backups /app/logs"));
    assert!(timer.contains("OnCalendar=*:0/5") && timer.contains("Persistent=true"));

    let have = StdCommand::new("systemd-analyze").arg("--version").output();
    assert!(
        have.is_ok_and(|o| o.status.success()),
        "systemd-analyze is not installed: `apt-get install systemd` (.ci/run does) to verify the units"
    );
    // Verify copies whose ExecStart is the binary under test, whose
    // environment file is a copy of deploy/default/wsnap, and whose man
    // pages are the generated ones.
    let dir = tempfile::tempdir().unwrap();
    let units = dir.path().join("units");
    let man1 = dir.path().join("man/man1");
    fs::create_dir_all(&units).unwrap();
    expect_code(bare_cmd().arg("man").arg("--dir").arg(&man1), 0);
    let defaults = dir.path().join("default-wsnap");
    fs::write(&defaults, deploy("default/wsnap")).unwrap();
    fs::write(
        units.join("wsnap-snapshot.service"),
        service
            .replace("/usr/bin/wsnap", BIN)
            .replace("/etc/default/wsnap", defaults.to_str().unwrap()),
    )
    .unwrap();
    fs::write(units.join("wsnap-snapshot.timer"), &timer).unwrap();
    let out = StdCommand::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("wsnap-snapshot.service"))
        .arg(units.join("wsnap-snapshot.timer"))
        .env("MANPATH", dir.path().join("man"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify:\n{err}"
    );
    let cal = StdCommand::new("systemd-analyze")
        .args(["calendar", "--iterations=2", "*:0/5"])
        .output()
        .unwrap();
    assert!(cal.status.success());
}

#[test]
fn logrotate_entry() {
    let conf = deploy("logrotate.d/wsnap");
    assert!(conf.starts_with('#') || conf.contains("/app/logs/workspace-backups.log {"));
    for d in ["daily", "rotate 14", "compress", "missingok", "notifempty"] {
        assert!(
            conf.lines().any(|l| l.trim() == d),
            "logrotate entry lacks {d}"
        );
    }
    assert!(conf
        .lines()
        .any(|l| l.trim() == "copytruncate" || l.trim().starts_with("create")));
    let have = StdCommand::new("logrotate").arg("--version").output();
    assert!(
        have.is_ok_and(|o| o.status.success()),
        "logrotate is not installed: `apt-get install logrotate` (.ci/run does) to check the shipped entry with `logrotate -d`"
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("workspace-backups.log");
    fs::write(&log, "line\n").unwrap();
    let conf_path = dir.path().join("wsnap.conf");
    fs::write(
        &conf_path,
        conf.replace("/app/logs/workspace-backups.log", log.to_str().unwrap()),
    )
    .unwrap();
    let out = StdCommand::new("logrotate")
        .arg("-d")
        .arg("-s")
        .arg(dir.path().join("state"))
        .arg(&conf_path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("error"),
        "logrotate -d:\n{err}"
    );
}
