//! `cat`, `find` and `ls -R` against random trees, and their bad inputs.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::*;

fn t0() -> i64 {
    utc_ns(2025, 11, 15, 9, 0, 0)
}

/// A store with two snapshots of a random tree; the tree's state at each.
fn two_snapshots(seed: u64) -> (TestEnv, Vec<(String, std::path::PathBuf)>) {
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    random_tree::build(&ws, seed, 80, true);
    let mut states = Vec::new();
    for i in 0..2u64 {
        if i > 0 {
            random_tree::mutate(&ws, seed + i);
        }
        let r = snapshot_at(&env, &["alice/thesis"], t0() + i as i64 * 300_000_000_000);
        let id = s(&r["workspaces"][0], "id").to_string();
        let copy = env.path(format!("state-{i}"));
        copy_tree(&ws, &copy);
        states.push((id, copy));
    }
    (env, states)
}

fn cat(env: &TestEnv, id: &str, path: &[u8]) -> Out {
    let mut c = env.cmd();
    c.args(["cat", "alice/thesis", "--snapshot", id])
        .arg(OsStr::from_bytes(path));
    run(&mut c)
}

#[test]
fn cat_gives_every_file_of_every_snapshot() {
    let (env, states) = two_snapshots(3);
    for (id, state) in &states {
        for (rel, meta) in listing(state) {
            let mut c = env.std_cmd();
            c.args(["cat", "alice/thesis", "--snapshot", id, "--"])
                .arg(OsStr::from_bytes(&rel));
            let o = c.output().unwrap();
            match meta.kind {
                Kind::File { .. } => {
                    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                    assert_eq!(
                        o.stdout,
                        std::fs::read(state.join(OsStr::from_bytes(&rel))).unwrap(),
                        "{}",
                        rel.escape_ascii()
                    );
                }
                _ => assert_eq!(
                    o.status.code(),
                    Some(2),
                    "{} is no file",
                    rel.escape_ascii()
                ),
            }
        }
    }
}

#[test]
fn ls_recursive_lists_the_whole_tree() {
    let (env, states) = two_snapshots(4);
    for (id, state) in &states {
        let v = expect_code(
            env.cmd()
                .args(["ls", "alice/thesis", "--snapshot", id, "-R", "--json"]),
            0,
        )
        .json();
        let got: BTreeSet<(String, String, u64)> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    s(e, "path").to_string(),
                    s(e, "type").to_string(),
                    if s(e, "type") == "file" {
                        u(e, "size_bytes")
                    } else {
                        0
                    },
                )
            })
            .collect();
        let want: BTreeSet<(String, String, u64)> = listing(state)
            .into_iter()
            .map(|(p, m)| {
                let (t, size) = match m.kind {
                    Kind::File { len, .. } => ("file", len),
                    Kind::Dir => ("dir", 0),
                    Kind::Symlink { .. } => ("symlink", 0),
                    Kind::Other => ("other", 0),
                };
                (
                    String::from_utf8_lossy(&p).into_owned(),
                    t.to_string(),
                    size,
                )
            })
            .collect();
        assert_eq!(got, want);
        // The human form escapes names (one line per entry, whatever
        // newline a name holds).
        let out = expect_code(
            env.cmd()
                .args(["ls", "alice/thesis", "--snapshot", id, "-R"]),
            0,
        );
        assert_eq!(out.stdout.lines().count(), want.len(), "{out}");
    }
}

#[test]
fn find_matches_names_and_paths_in_one_or_all_snapshots() {
    let (env, states) = two_snapshots(5);
    let txt = |state: &std::path::Path| -> BTreeSet<String> {
        listing(state)
            .into_iter()
            .filter(|(p, _)| p.ends_with(b".txt"))
            .map(|(p, m)| {
                let slash = if m.kind == Kind::Dir { "/" } else { "" };
                format!("{}{slash}", Escaped(&p))
            })
            .collect()
    };
    for (id, state) in &states {
        let out = expect_code(
            env.cmd()
                .args(["find", "alice/thesis", "*.txt", "--snapshot", id]),
            0,
        );
        let got: BTreeSet<String> = out.stdout.lines().map(String::from).collect();
        assert_eq!(got, txt(state));
    }
    // Without a scope: the latest.
    let out = expect_code(env.cmd().args(["find", "alice/thesis", "*.txt"]), 0);
    assert_eq!(out.stdout.lines().count(), txt(&states[1].1).len());
    // --all: a file only the first snapshot has is found there only.
    let added = "added-6.txt";
    let out = expect_code(
        env.cmd()
            .args(["find", "alice/thesis", added, "--all", "--json"]),
        0,
    );
    let v = out.json();
    let snaps = v["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{v:#}");
    assert_eq!(s(&snaps[0]["snapshot"], "id"), states[1].0);
    assert_eq!(s(&snaps[0]["matches"][0], "path"), added);
    // A whole-path pattern.
    let out = expect_code(
        env.cmd()
            .args(["find", "alice/thesis", "/**/big.bin", "--all"]),
        0,
    );
    assert_eq!(out.stdout.lines().count(), 2, "{out}");
}

/// The escaping of names printed for a human (as `Escaped` in the crate).
struct Escaped<'a>(&'a [u8]);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&wsnap::escape::escape(self.0))
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    write_file(&ws.join("f"), b"x", 0o644, t0());
    mkdir(&ws.join("d"));
    symlink(b"f", &ws.join("l"), t0());
    snapshot_at(&env, &["alice/thesis"], t0());
    let id = s(&list_json(&env)[0], "id").to_string();
    for (args, says) in [
        (
            vec!["cat", "alice/thesis", "missing", "--at", "latest"],
            "not found",
        ),
        (
            vec!["cat", "alice/thesis", "d", "--at", "latest"],
            "is a directory",
        ),
        (
            vec!["cat", "alice/thesis", "/", "--at", "latest"],
            "root directory",
        ),
        (
            vec!["cat", "alice/thesis", "l", "--at", "latest"],
            "symlink",
        ),
        (
            vec!["cat", "alice/thesis", "f/x", "--at", "latest"],
            "not a directory",
        ),
        (
            vec!["cat", "alice/thesis", "f", "--snapshot", "ffffff"],
            "no snapshot",
        ),
        (vec!["cat", "alice/thesis", "f"], "--at"),
        (
            vec!["cat", "nobody/here", "f", "--at", "latest"],
            "no snapshots",
        ),
        (
            vec!["find", "alice/thesis", "a[", "--all"],
            "invalid pattern",
        ),
        (vec!["find", "alice/thesis", "{a,b"], "invalid pattern"),
        (
            vec!["find", "alice/thesis", "*", "--all", "--at", "latest"],
            "cannot be used",
        ),
        (
            vec!["ls", "alice/thesis", "-R", "missing", "--at", "latest"],
            "not found",
        ),
    ] {
        let out = expect_code(env.cmd().args(&args), 2);
        assert!(
            out.stderr.contains(says),
            "{args:?} should say {says:?}:\n{out}"
        );
    }
    assert_eq!(cat(&env, &id, b"f").stdout, "x");
    // A closed pipe is not an error.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} --store {} cat alice/thesis f --at latest | head -c0; exit ${{PIPESTATUS:-0}}",
            BIN,
            env.store.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
}
