//! Terminal and log injection (#12, item 4): user, project, directory and
//! file names with a newline, an ESC sequence and invalid UTF-8 are printed
//! escaped (`\n`, `\x1b`, `\xff`) by every text output and in error
//! messages, never raw; the store and what restore writes keep the raw
//! names; `--json` output stays valid JSON.

mod common;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use common::*;

/// A user name that tries to inject a `status` line.
const USER: &[u8] = b"evil\nWSNAP OK - all fine | x=1\n";
/// A project name with an ESC sequence (clear screen).
const PROJECT: &[u8] = b"p\x1b[2Jx";
/// A directory name with ESC, invalid UTF-8 and a newline.
const DIR: &[u8] = b"d\x1b[31m\xffir\n";
/// A file name with invalid UTF-8 and a newline.
const FILE: &[u8] = b"f\xffname\n.txt";

/// How each name must appear in text output.
const USER_SHOWN: &str = r"evil\nWSNAP OK - all fine | x=1\n";
const PROJECT_SHOWN: &str = r"p\x1b[2Jx";
const DIR_SHOWN: &str = r"d\x1b[31m\xffir\n";
const FILE_SHOWN: &str = r"f\xffname\n.txt";

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// `USER/PROJECT` as a command-line argument (raw bytes).
fn ws_arg() -> OsString {
    let mut v = USER.to_vec();
    v.push(b'/');
    v.extend_from_slice(PROJECT);
    OsString::from_vec(v)
}

fn ws_shown() -> String {
    format!("{USER_SHOWN}/{PROJECT_SHOWN}")
}

/// `DIR/FILE` inside the workspace, as a raw path argument.
fn dir_file() -> OsString {
    let mut v = DIR.to_vec();
    v.push(b'/');
    v.extend_from_slice(FILE);
    OsString::from_vec(v)
}

/// Run and return (exit code, stdout, stderr) as raw bytes: the checks must
/// see exactly what a terminal would.
fn run_raw(c: &mut Command) -> (i32, Vec<u8>, Vec<u8>) {
    let o = c.output().expect("run wsnap");
    (o.status.code().unwrap_or(-1), o.stdout, o.stderr)
}

/// Run, expecting `code`; stdout and stderr joined.
fn text(c: &mut Command, code: i32) -> Vec<u8> {
    let (got, out, err) = run_raw(c);
    let mut all = out;
    all.extend_from_slice(&err);
    assert_eq!(
        got,
        code,
        "exit code; output:\n{}",
        String::from_utf8_lossy(&all)
    );
    all
}

/// The output holds no raw control character (but newline) and no invalid
/// UTF-8, no line of its own starting with `WSNAP OK` (`status_line`: the
/// first line is the real status line), and every one of `want`.
fn assert_escaped(what: &str, out: &[u8], status_line: bool, want: &[&str]) {
    let shown = String::from_utf8_lossy(out);
    assert!(
        !out.contains(&0x1b),
        "{what}: raw ESC in the output:\n{shown}"
    );
    assert!(
        !out.contains(&0xff),
        "{what}: raw \\xff in the output:\n{shown}"
    );
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("{what}: output is not valid UTF-8 ({e}):\n{shown}"));
    if let Some(c) = text.chars().find(|&c| c.is_control() && c != '\n') {
        panic!("{what}: raw control character {c:?} in the output:\n{text}");
    }
    let lines: Vec<&str> = text.lines().collect();
    let skip = usize::from(status_line);
    if status_line {
        assert!(
            lines.first().is_some_and(|l| l.starts_with("WSNAP ")),
            "{what}: the first line is not the status line:\n{text}"
        );
    }
    for l in lines.iter().skip(skip) {
        assert!(
            !l.starts_with("WSNAP"),
            "{what}: injected line {l:?}:\n{text}"
        );
    }
    for w in want {
        assert!(text.contains(w), "{what}: {w:?} not shown:\n{text}");
    }
}

/// A root with one hostile workspace: `DIR/FILE`, `FILE` and `plain.txt`;
/// returns the workspace directory.
fn hostile_env() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let ws = env.root.join(os(USER)).join(os(PROJECT));
    fs::create_dir_all(ws.join(os(DIR))).unwrap();
    write(&ws.join(os(FILE)), b"top level\n");
    write(&ws.join(os(DIR)).join(os(FILE)), b"version 1\n");
    write(&ws.join("plain.txt"), b"plain\n");
    (env, ws)
}

fn snapshot_id(env: &TestEnv) -> String {
    let mut c = env.cmd();
    c.arg("snapshot")
        .arg("--root")
        .arg(&env.root)
        .arg("--workspace")
        .arg(ws_arg())
        .arg("--json");
    let v = expect_code(&mut c, 0).json();
    assert_eq!(v["workspaces"][0]["status"], "ok", "{v:#}");
    s(&v["workspaces"][0], "id").to_string()
}

#[test]
fn snapshot_list_ls_and_stats_print_names_escaped() {
    let (env, _ws) = hostile_env();

    // snapshot: text report, and the debug log of the walk (stderr).
    let mut c = env.cmd();
    c.arg("-vv").arg("snapshot").arg("--root").arg(&env.root);
    let out = text(&mut c, 0);
    assert_escaped(
        "snapshot",
        &out,
        false,
        &[&format!("ok      {}  snapshot", ws_shown())],
    );
    let log = String::from_utf8(out).unwrap();
    assert!(
        log.contains(&format!("{}: walking ", ws_shown())),
        "the debug log names the workspace:\n{log}"
    );

    // list
    let mut c = env.cmd();
    c.arg("list");
    assert_escaped("list", &text(&mut c, 0), false, &[&ws_shown()]);
    let mut c = env.cmd();
    c.arg("list").arg(ws_arg());
    assert_escaped("list WS", &text(&mut c, 0), false, &[&ws_shown()]);

    // ls of the root and of the hostile directory: one line per entry.
    let mut c = env.cmd();
    c.arg("ls").arg(ws_arg()).args(["--at", "latest"]);
    let out = text(&mut c, 0);
    assert_escaped(
        "ls",
        &out,
        false,
        &[&format!("  {DIR_SHOWN}/"), &format!("  {FILE_SHOWN}")],
    );
    // Two entries, and on stderr the snapshot 'latest' resolved to.
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 3 + 1);
    let mut c = env.cmd();
    c.arg("ls")
        .arg(ws_arg())
        .args(["--at", "latest"])
        .arg(os(DIR));
    let out = text(&mut c, 0);
    assert_escaped("ls DIR", &out, false, &[FILE_SHOWN]);
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1 + 1);

    // stats
    let mut c = env.cmd();
    c.arg("stats");
    assert_escaped("stats", &text(&mut c, 0), false, &[&ws_shown()]);

    // JSON still parses, and carries the names (invalid UTF-8 as U+FFFD).
    let mut c = env.cmd();
    c.args(["list", "--json"]);
    let v = &expect_code(&mut c, 0).json()["snapshots"];
    assert_eq!(v[0]["user"], String::from_utf8_lossy(USER).as_ref());
    assert_eq!(v[0]["project"], String::from_utf8_lossy(PROJECT).as_ref());
    let mut c = env.cmd();
    c.arg("ls")
        .arg(ws_arg())
        .args(["--at", "latest", "--json"])
        .arg(os(DIR));
    let v = expect_code(&mut c, 0).json();
    assert_eq!(
        v["entries"][0]["name"],
        String::from_utf8_lossy(FILE).as_ref()
    );
    let mut c = env.cmd();
    c.args(["stats", "--json"]);
    expect_code(&mut c, 0).json();
}

#[test]
fn status_long_output_has_no_injected_line() {
    let (env, _ws) = hostile_env();
    snapshot_id(&env);
    // Never snapshotted: listed as `missing:` in the long output.
    fs::create_dir_all(env.root.join(os(USER)).join(os(b"new\x1b]0;title\x07"))).unwrap();

    let status = |extra: &[&str]| {
        let mut c = env.cmd();
        c.arg("status")
            .arg("--min-free")
            .arg("0")
            .arg("--root")
            .arg(&env.root)
            .args(extra);
        let (_, out, err) = run_raw(&mut c);
        let mut all = out;
        all.extend_from_slice(&err);
        all
    };
    assert_escaped(
        "status",
        &status(&[]),
        true,
        &[
            &format!("missing: {USER_SHOWN}/new\\x1b]0;title\\x07"),
            "WSNAP WARNING",
        ],
    );
    // Every workspace stale: the hostile one is named on a `stale:` line.
    assert_escaped(
        "status --max-age 1ns",
        &status(&["--max-age", "1ns"]),
        true,
        &[&format!("stale: {}  newest snapshot", ws_shown())],
    );
    let v: Value = serde_json::from_slice(&status(&["--json"])).expect("status --json parses");
    assert!(v["workspaces"].as_array().unwrap().len() == 2, "{v:#}");
}

#[test]
fn diff_and_log_of_a_hostile_file_print_it_escaped() {
    let (env, ws) = hostile_env();
    let a = snapshot_id(&env);
    write(&ws.join(os(DIR)).join(os(FILE)), b"version 2, longer\n");
    symlink(
        b"/tmp/\x1b[31mtarget\xff",
        &ws.join(os(b"l\xffink\n")),
        now_ns(),
    );
    let b = snapshot_id(&env);

    let mut c = env.cmd();
    c.arg("diff").arg(ws_arg()).arg(&a).arg(&b);
    assert_escaped(
        "diff",
        &text(&mut c, 0),
        false,
        &[
            &format!("M {DIR_SHOWN}/{FILE_SHOWN}  ("),
            r"+ l\xffink\n  (-> /tmp/\x1b[31mtarget\xff)",
            &format!("diff {} ", ws_shown()),
        ],
    );
    let mut c = env.cmd();
    c.arg("diff").arg(ws_arg()).arg(&a).arg(&b).arg("--json");
    let v = expect_code(&mut c, 0).json();
    assert_eq!(v["summary"]["modified"], 1, "{v:#}");

    let mut c = env.cmd();
    c.arg("log").arg(ws_arg()).arg(dir_file());
    let out = text(&mut c, 0);
    assert_escaped("log", &out, false, &["added", "modified"]);
    let mut c = env.cmd();
    c.arg("log").arg(ws_arg()).arg(dir_file()).arg("--json");
    let v = expect_code(&mut c, 0).json();
    assert_eq!(v["events"].as_array().unwrap().len(), 2, "{v:#}");

    // `log` of a path that was never there: the error names it escaped.
    let mut c = env.cmd();
    c.arg("log").arg(ws_arg()).arg(os(b"gone\x1b[31m\xff\n"));
    assert_escaped(
        "log of a missing path",
        &text(&mut c, 2),
        false,
        &[&format!(
            r"gone\x1b[31m\xff\n is in no snapshot of {}",
            ws_shown()
        )],
    );
}

#[test]
fn restore_writes_raw_names_and_errors_name_paths_escaped() {
    let (env, ws) = hostile_env();
    let id = snapshot_id(&env);

    // Restore into a fresh target with a hostile name: the report line
    // names it escaped, and the names on disk are the raw bytes.
    let target = env.path(os(b"out\x1b[31m\xff\n"));
    let mut c = env.cmd();
    c.arg("restore")
        .arg(ws_arg())
        .args(["--snapshot", &id, "--to"])
        .arg(&target);
    assert_escaped(
        "restore",
        &text(&mut c, 0),
        false,
        &[
            &format!("restored {} snapshot", ws_shown()),
            r"out\x1b[31m\xff\n",
        ],
    );
    assert_trees_equal(&ws, &target);
    assert_eq!(
        fs::read(target.join(os(DIR)).join(os(FILE))).unwrap(),
        b"version 1\n"
    );
    assert!(target.join(os(FILE)).is_file());

    // Into the same (now non-empty) target: refused, the path escaped.
    let mut c = env.cmd();
    c.arg("restore")
        .arg(ws_arg())
        .args(["--snapshot", &id, "--to"])
        .arg(&target);
    assert_escaped(
        "restore into a non-empty target",
        &text(&mut c, 2),
        false,
        &[r"restore target ", r"out\x1b[31m\xff\n: is not empty"],
    );

    // A path inside the snapshot that is not there.
    let mut missing = dir_file().into_vec();
    missing.extend_from_slice(b"/\x1b[2Jnope\xff");
    let mut c = env.cmd();
    c.arg("ls")
        .arg(ws_arg())
        .args(["--at", "latest"])
        .arg(OsString::from_vec(missing));
    assert_escaped(
        "ls of a missing path",
        &text(&mut c, 2),
        false,
        &[&format!(
            r"{DIR_SHOWN}/{FILE_SHOWN}/\x1b[2Jnope\xff: {FILE_SHOWN} is not a directory"
        )],
    );
    let mut c = env.cmd();
    c.arg("ls")
        .arg(ws_arg())
        .args(["--at", "latest"])
        .arg(os(b"\x1b[2Jnope\xff"));
    assert_escaped(
        "ls of a missing name",
        &text(&mut c, 2),
        false,
        &[&format!(
            r"\x1b[2Jnope\xff not found in snapshot {} of {}",
            &id[..8],
            ws_shown()
        )],
    );

    // A workspace that has no snapshots.
    let mut c = env.cmd();
    c.arg("list").arg(os(b"\x1b[31mu\xff/p\n"));
    assert_escaped(
        "list of an unknown workspace",
        &text(&mut c, 2),
        false,
        &[r"no snapshots of workspace \x1b[31mu\xff/p\n"],
    );

    // The store path given by the admin, in an error message.
    let mut c = bare_cmd();
    c.arg("--store")
        .arg(env.path(os(b"no\x1b[31mstore\xff\n")))
        .arg("list");
    assert_escaped(
        "list of a missing store",
        &text(&mut c, 3),
        false,
        &[r"no wsnap store at ", r"no\x1b[31mstore\xff\n"],
    );

    // `--json` restore report still parses.
    let target2 = env.path("out2");
    let mut c = env.cmd();
    c.arg("restore")
        .arg(ws_arg())
        .args(["--snapshot", &id, "--json", "--to"])
        .arg(&target2);
    let v = expect_code(&mut c, 0).json();
    assert_eq!(v["files"], 3, "{v:#}");
    assert_trees_equal(&ws, &target2);
}

#[test]
fn import_rsync_prints_backup_names_escaped() {
    let env = TestEnv::new();
    let old = env.path("old");
    // One importable backup `<user>_<project>_<time>` with hostile names,
    // one entry that is not a backup name at all.
    let backup = old.join(os(b"u\x1b[31m_p\xff\n_20260102_030405"));
    fs::create_dir_all(backup.join(os(DIR))).unwrap();
    write(&backup.join(os(DIR)).join(os(FILE)), b"old\n");
    fs::create_dir_all(old.join(os(b"junk\nWSNAP OK\x1b[2J"))).unwrap();

    for dry_run in [true, false] {
        let mut c = env.cmd();
        c.arg("import-rsync").arg(&old).arg("--root").arg(&env.root);
        if dry_run {
            c.arg("--dry-run");
        }
        let (_, out, err) = run_raw(&mut c);
        let mut all = out;
        all.extend_from_slice(&err);
        assert_escaped(
            "import-rsync",
            &all,
            false,
            &[
                r"u\x1b[31m_p\xff\n_20260102_030405 -> u\x1b[31m/p\xff\n @ ",
                r"junk\nWSNAP OK\x1b[2J: not named",
            ],
        );
    }
    let mut c = env.cmd();
    c.arg("import-rsync")
        .arg(&old)
        .arg("--root")
        .arg(&env.root)
        .args(["--dry-run", "--json"]);
    let (_, out, _) = run_raw(&mut c);
    serde_json::from_slice::<Value>(&out).expect("import-rsync --json parses");

    // The store holds the raw names: restore writes them back.
    let target = env.path("restored");
    let mut c = env.cmd();
    c.arg("restore")
        .arg(os(b"u\x1b[31m/p\xff\n"))
        .args(["--at", "latest", "--to"])
        .arg(&target);
    text(&mut c, 0);
    assert_eq!(
        fs::read(target.join(os(DIR)).join(os(FILE))).unwrap(),
        b"old\n"
    );
}

/// The escaped forms are what `wsnap::escape` produces (the tests above
/// spell them out by hand).
#[test]
fn shown_forms_match_the_library() {
    for (raw, shown) in [
        (USER, USER_SHOWN),
        (PROJECT, PROJECT_SHOWN),
        (DIR, DIR_SHOWN),
        (FILE, FILE_SHOWN),
    ] {
        assert_eq!(wsnap::escape::escape(raw), shown);
    }
}
