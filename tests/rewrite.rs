//! Issue 17, "Purge a path, not a history": `rewrite USER/PROJECT
//! --exclude PATTERN... (--snapshot ID... | --all)` takes paths out of stored
//! snapshots, keeps their times and everything else, and purges the removed
//! data from every store file as `forget` does.
//!
//! - the test: a 256 KiB secret in some snapshots of a workspace;
//!   after `rewrite --all --exclude secret.env` no 64-byte window of it is
//!   in any file under the store, every other file of every snapshot
//!   restores byte-identically, times are kept, `check --read-data` is clean;
//! - `--snapshot` rewrites only those; `--dry-run` changes no byte; a
//!   directory pattern takes the directory whole; errors exit 2, a pattern
//!   that matches nothing exits 1;
//! - a kill at every crash point of the rewrite (its own and gc's) leaves
//!   all old or all new snapshots, `check --read-data` clean, and running
//!   it again finishes the purge; with the catalog lost after a kill,
//!   `repair` brings both back and running it again resolves them;
//! - `repair` after a rewrite keeps the new snapshots, not the secret.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::*;

const HOUR: i64 = 3_600_000_000_000;
const ALICE: &str = "alice/thesis";
const BOB: &str = "bob/data";

fn t(i: i64) -> i64 {
    utc_ns(2026, 3, 2, 9, 0, 0) + i * HOUR
}

/// Every place under `dir` where a 64-byte window of `secret` occurs (at
/// most one per file): `path @ offset = secret[at..]`.
fn secret_windows_in(dir: &Path, secret: &[u8]) -> Vec<String> {
    let key = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap());
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    for i in 0..=secret.len() - 64 {
        index.entry(key(&secret[i..])).or_default().push(i);
    }
    let mut hits = Vec::new();
    for f in all_files(dir) {
        let bytes = fs::read(&f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        if bytes.len() < 64 {
            continue;
        }
        'file: for p in 0..=bytes.len() - 64 {
            if let Some(starts) = index.get(&key(&bytes[p..])) {
                for &i in starts {
                    if secret[i..i + 64] == bytes[p..p + 64] {
                        hits.push(format!("{} @ {p} = secret[{i}..]", f.display()));
                        break 'file;
                    }
                }
            }
        }
    }
    hits
}

/// A store with two workspaces and five snapshots of each; `alice/thesis`
/// holds a 256 KiB `secret.env` in snapshots 1–3 (at the root in 1 and 2,
/// as `config/secret.env` in 2 and 3), `bob/data` never.
struct History {
    env: TestEnv,
    secret: Vec<u8>,
    /// (workspace, snapshot id) → a copy of the workspace as snapshotted.
    saved: BTreeMap<(String, String), PathBuf>,
    /// Snapshot ids of alice's workspace, oldest first.
    alice: Vec<String>,
}

fn history() -> History {
    let env = TestEnv::new();
    let secret = random_bytes(0x5EC2E7, 256 * KIB);
    let a = env.ws("alice", "thesis");
    let b = env.ws("bob", "data");
    write_file(
        &a.join("data/big.bin"),
        &random_bytes(7, 300 * KIB),
        0o640,
        t(-1),
    );
    write_file(
        &a.join("config/app.toml"),
        b"[app]\nname = 1\n",
        0o644,
        t(-1),
    );
    mkdir(&a.join("empty"));
    symlink(b"data/big.bin", &a.join("link"), t(-1));
    write_file(
        &b.join("x.csv"),
        &repeated(b"1,2,3\n", 50 * KIB),
        0o644,
        t(-1),
    );
    let mut saved = BTreeMap::new();
    let mut alice = Vec::new();
    for i in 0..5 {
        write_file(
            &a.join("notes.txt"),
            format!("notes as of snapshot {i}\n").as_bytes(),
            0o600,
            t(i) - 1000,
        );
        write_file(
            &b.join("log.txt"),
            format!("bob {i}\n").as_bytes(),
            0o644,
            t(i) - 1000,
        );
        match i {
            1 => write_file(&a.join("secret.env"), &secret, 0o600, t(i) - 2000),
            2 => write_file(&a.join("config/secret.env"), &secret, 0o600, t(i) - 2000),
            3 => fs::remove_file(a.join("secret.env")).unwrap(),
            4 => fs::remove_file(a.join("config/secret.env")).unwrap(),
            _ => {}
        }
        let r = snapshot_at(&env, &[], t(i));
        for w in r["workspaces"].as_array().unwrap() {
            let ws = ws_of(w);
            let id = s(w, "id").to_string();
            let copy = env.path(format!("saved/{i}-{}", ws.replace('/', "-")));
            copy_tree(&env.root.join(&ws), &copy);
            if ws == ALICE {
                alice.push(id.clone());
            }
            saved.insert((ws, id), copy);
        }
    }
    History {
        env,
        secret,
        saved,
        alice,
    }
}

/// `rewrite ARGS`, asserting its exit code.
#[track_caller]
fn rewrite(env: &TestEnv, args: &[&str], code: i32) -> Out {
    let mut c = env.cmd();
    c.arg("rewrite").args(args);
    expect_code(&mut c, code)
}

/// id → (workspace, time_ns) of every listed snapshot.
fn snapshots(env: &TestEnv) -> BTreeMap<String, (String, i64)> {
    list_json(env)
        .iter()
        .map(|v| {
            (
                s(v, "id").to_string(),
                (ws_of(v), v["time_ns"].as_i64().unwrap()),
            )
        })
        .collect()
}

/// Restore snapshot `id` of `ws` and compare it with `saved`, less the
/// paths `removed` (and everything below them).
#[track_caller]
fn assert_restores_as(env: &TestEnv, ws: &str, id: &str, saved: &Path, removed: &[&str]) {
    let target = env.path(format!("restored-{}", &id[..12]));
    let _ = fs::remove_dir_all(&target);
    env.restore(ws, id, &target, &[]);
    let gone = |k: &Vec<u8>| {
        removed
            .iter()
            .any(|r| k == r.as_bytes() || k.starts_with(format!("{r}/").as_bytes()))
    };
    let want: BTreeMap<Vec<u8>, Meta> = listing(saved)
        .into_iter()
        .filter(|(k, _)| !gone(k))
        .collect();
    let got = listing(&target);
    assert_eq!(
        got.keys()
            .map(|k| k.escape_ascii().to_string())
            .collect::<Vec<_>>(),
        want.keys()
            .map(|k| k.escape_ascii().to_string())
            .collect::<Vec<_>>(),
        "paths of {ws} {id}"
    );
    assert_eq!(got, want, "{ws} {id} restores differently");
    fs::remove_dir_all(&target).unwrap();
}

/// The test, exactly.
#[test]
fn rewrite_all_purges_a_leaked_secret_from_every_store_file() {
    let h = history();
    let env = &h.env;
    let before = snapshots(env);
    assert!(
        !secret_windows_in(&env.store, &h.secret).is_empty(),
        "the scan must see the secret before the rewrite"
    );

    let listed_before = list_json(env);
    let out = rewrite(
        env,
        &[ALICE, "--all", "--exclude", "secret.env", "--json"],
        0,
    );
    let r = out.json();
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["dry_run"], false);
    // The old → new map: snapshots 1–3 of alice, with their times and what
    // each lost.
    let map: Vec<(String, String, String, Vec<String>)> = r["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                s(m, "old_id").to_string(),
                s(m, "new_id").to_string(),
                s(m, "time").to_string(),
                m["removed_paths"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let olds: Vec<&str> = map.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(olds, [&h.alice[1], &h.alice[2], &h.alice[3]]);
    assert_eq!(map[0].3, ["secret.env"]);
    assert_eq!(map[1].3, ["config/secret.env", "secret.env"]);
    assert_eq!(map[2].3, ["config/secret.env"]);
    for (i, m) in map.iter().enumerate() {
        assert_ne!(m.0, m.1, "a rewritten snapshot gets a new id");
        let was = listed_before.iter().find(|v| s(v, "id") == m.0).unwrap();
        assert_eq!(m.2, s(was, "time"), "time as list shows it");
        assert_eq!(r["snapshots"][i]["time_ns"].as_i64(), Some(t(i as i64 + 1)));
    }
    let unchanged: BTreeSet<&str> = r["unchanged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        unchanged,
        BTreeSet::from([h.alice[0].as_str(), h.alice[4].as_str()])
    );
    assert!(u(&r, "freed_bytes") >= 256 * KIB as u64, "{r:#}");
    assert!(r["unmatched_patterns"].as_array().unwrap().is_empty());

    // Not one 64-byte window of the secret in any file under the store:
    // packs, damaged/, catalog, WAL, journals.
    let left = secret_windows_in(&env.store, &h.secret);
    assert!(
        left.is_empty(),
        "the secret survives the rewrite:\n{left:#?}"
    );

    // Same snapshots at the same times; only the three ids changed.
    let after = snapshots(env);
    let renamed: BTreeMap<&str, &str> = map.iter().map(|m| (m.0.as_str(), m.1.as_str())).collect();
    let expected: BTreeMap<String, (String, i64)> = before
        .iter()
        .map(|(id, v)| {
            (
                renamed
                    .get(id.as_str())
                    .map_or(id.clone(), |n| n.to_string()),
                v.clone(),
            )
        })
        .collect();
    assert_eq!(after, expected);
    let bobs: Vec<&String> = before
        .iter()
        .filter(|(_, v)| v.0 == BOB)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(bobs.len(), 5);
    assert!(
        bobs.iter().all(|id| after.contains_key(*id)),
        "bob's snapshots keep their ids"
    );

    // Every other file of every snapshot restores byte-identically.
    for ((ws, id), saved) in &h.saved {
        let now = renamed.get(id.as_str()).copied().unwrap_or(id);
        assert_restores_as(env, ws, now, saved, &["secret.env", "config/secret.env"]);
    }
    // The counters describe the new trees.
    let listed = list_json(env);
    let one = listed.iter().find(|v| s(v, "id") == map[1].1).unwrap();
    // notes.txt, data/big.bin, config/app.toml (secret.env twice gone).
    assert_eq!(u(one, "files"), 3, "{one:#}");
    assert_eq!((u(one, "dirs"), u(one, "symlinks")), (3, 1), "{one:#}");
    assert_eq!(u(one, "excluded"), 2, "{one:#}");
    let sizes: u64 = ["notes.txt", "data/big.bin", "config/app.toml"]
        .iter()
        .map(|p| {
            fs::metadata(h.saved[&(ALICE.to_string(), map[1].0.clone())].join(p))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(u(one, "size_bytes"), sizes);

    let c = check(env, true);
    assert_eq!(c.code, 0, "{c}");
    assert_eq!(c.json()["ok"], true, "{c}");
    // A second run finds nothing to do, says so and exits 1.
    let again = rewrite(env, &[ALICE, "--all", "--exclude", "secret.env"], 1);
    assert!(
        again.stderr.contains(
            "pattern \"secret.env\" matched nothing in the 5 selected snapshots of alice/thesis"
        ),
        "{again}"
    );
    assert_eq!(snapshots(env), after);
}

/// `--snapshot` rewrites those only; the human output maps old → new.
#[test]
fn rewrite_of_chosen_snapshots_leaves_the_others_alone() {
    let h = history();
    let env = &h.env;
    let before = snapshots(env);
    let out = rewrite(
        env,
        &[
            ALICE,
            "--snapshot",
            &h.alice[1][..8],
            "--snapshot",
            &h.alice[2],
            "--exclude",
            "secret.env",
        ],
        0,
    );
    let after = snapshots(env);
    let new: Vec<&String> = after
        .keys()
        .filter(|id| !before.contains_key(*id))
        .collect();
    assert_eq!(new.len(), 2, "{out}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("rewrote "))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, (i, removed)) in lines.iter().zip([(1, "1 path"), (2, "2 paths")]) {
        let id = &h.alice[i];
        let new_id = after
            .iter()
            .find(|(nid, v)| !before.contains_key(*nid) && v.1 == t(i as i64))
            .unwrap()
            .0;
        // The binary runs with TZ=UTC (`clean_env`).
        let time = chrono::DateTime::from_timestamp(t(i as i64) / 1_000_000_000, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S +00:00");
        let want = format!(
            "rewrote {} → {}  {time}  ({removed} removed)",
            &id[..8],
            &new_id[..8],
        );
        assert_eq!(*line, want, "{out}");
    }
    assert!(out.stdout.contains("    config/secret.env\n"), "{out}");
    // Snapshot 3 still holds config/secret.env, so the secret's chunks
    // stay; every other snapshot kept its id.
    assert!(after.contains_key(&h.alice[3]));
    assert!(!after.contains_key(&h.alice[1]) && !after.contains_key(&h.alice[2]));
    assert!(!secret_windows_in(&env.store, &h.secret).is_empty());
    for ((ws, id), saved) in &h.saved {
        let rewritten = id == &h.alice[1] || id == &h.alice[2];
        let now = if rewritten {
            after
                .iter()
                .find(|(nid, v)| !before.contains_key(*nid) && v.1 == before[id].1)
                .unwrap()
                .0
        } else {
            id
        };
        let removed: &[&str] = if rewritten {
            &["secret.env", "config/secret.env"]
        } else {
            &[]
        };
        assert_restores_as(env, ws, now, saved, removed);
    }
    let c = check(env, true);
    assert_eq!(c.code, 0, "{c}");
}

/// Every byte of every file under the store, by path; but SQLite's
/// shared-memory WAL index (`catalog.sqlite-shm`), where every reader
/// (`list` too) leaves its read marks.
fn store_bytes(store: &Path) -> BTreeMap<PathBuf, String> {
    all_files(store)
        .into_iter()
        .filter(|f| !f.ends_with("catalog.sqlite-shm"))
        .map(|f| {
            let h = blake3::hash(&fs::read(&f).unwrap()).to_hex().to_string();
            (f, h)
        })
        .collect()
}

#[test]
fn dry_run_lists_what_would_change_and_changes_nothing() {
    let h = history();
    let env = &h.env;
    let before = store_bytes(&env.store);
    let out = rewrite(
        env,
        &[ALICE, "--all", "--exclude", "secret.env", "--dry-run"],
        0,
    );
    assert!(
        out.stdout
            .contains(&format!("would rewrite {} → ", &h.alice[2][..8])),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("    config/secret.env\n    secret.env\n"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("dry run: would rewrite 3 of the 5 selected snapshots"),
        "{out}"
    );
    let j = rewrite(
        env,
        &[
            ALICE,
            "--all",
            "--exclude",
            "secret.env",
            "--dry-run",
            "--json",
        ],
        0,
    )
    .json();
    assert_eq!(j["dry_run"], true);
    assert_eq!(j["snapshots"].as_array().unwrap().len(), 3);
    assert_eq!(j["freed_bytes"], Value::Null);
    assert_eq!(
        store_bytes(&env.store),
        before,
        "a dry run wrote to the store"
    );

    // The dry run's new ids are the ones the rewrite makes.
    let planned: Vec<String> = j["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| s(m, "new_id").to_string())
        .collect();
    let r = rewrite(
        env,
        &[ALICE, "--all", "--exclude", "secret.env", "--json"],
        0,
    )
    .json();
    let made: Vec<String> = r["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| s(m, "new_id").to_string())
        .collect();
    assert_eq!(planned, made);
}

#[test]
fn a_directory_pattern_takes_the_directory_whole() {
    let h = history();
    let env = &h.env;
    let r = rewrite(env, &[ALICE, "--all", "--exclude", "config/", "--json"], 0).json();
    // Every alice snapshot has config/ (app.toml): all five are rewritten.
    let snaps = r["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 5, "{r:#}");
    for m in snaps {
        assert_eq!(m["removed_paths"], serde_json::json!(["config/"]), "{r:#}");
    }
    // Snapshot 3 had the secret only in config/: gone with it; 1 and 2
    // still have the root secret.env, so the chunks stay.
    let new3 = s(&snaps[3], "new_id");
    let root: Vec<String> = env
        .ls(ALICE, new3, None)
        .iter()
        .map(|e| s(e, "name").to_string())
        .collect();
    assert_eq!(root, ["data", "empty", "link", "notes.txt"]);
    let listed = list_json(env);
    let v = listed.iter().find(|v| s(v, "id") == new3).unwrap();
    // config/ held app.toml and secret.env: 2 files, 1 directory less.
    assert_eq!(
        (u(v, "files"), u(v, "dirs"), u(v, "excluded")),
        (2, 2, 1),
        "{v:#}"
    );
    assert_restores_as(
        env,
        ALICE,
        new3,
        &h.saved[&(ALICE.to_string(), h.alice[3].clone())],
        &["config"],
    );
    // A pattern anchored elsewhere does not match it.
    let none = rewrite(env, &[ALICE, "--all", "--exclude", "/data/config/"], 1);
    assert!(none.stderr.contains("matched nothing"), "{none}");
    let c = check(env, true);
    assert_eq!(c.code, 0, "{c}");
}

#[test]
fn bad_requests_are_refused_with_a_clear_message() {
    let h = history();
    let env = &h.env;
    let before = store_bytes(&env.store);
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["carol/none", "--all", "--exclude", "x"],
            2,
            "no snapshots of workspace carol/none",
        ),
        (&[ALICE, "--exclude", "x"], 2, "<--snapshot <ID>|--all>"),
        (&[ALICE, "--all"], 2, "--exclude <PATTERN>"),
        (
            &[ALICE, "--all", "--exclude", "[z-a]"],
            2,
            "invalid exclude pattern: \"[z-a]\"",
        ),
        (
            &[ALICE, "--snapshot", "ffffffff", "--exclude", "x"],
            2,
            "no snapshot of alice/thesis has id ffffffff",
        ),
        (
            &[ALICE, "--snapshot", "12", "--exclude", "x"],
            2,
            "give at least 4 hex digits",
        ),
        (&["alice", "--all", "--exclude", "x"], 2, "alice"),
        (
            &[
                ALICE,
                "--all",
                "--exclude",
                "nothing-like-it",
                "--exclude",
                "!keep",
            ],
            1,
            "pattern \"nothing-like-it\" matched nothing",
        ),
    ];
    for (args, code, msg) in cases {
        let out = rewrite(env, args, *code);
        assert!(out.stderr.contains(msg), "{args:?}: want {msg:?}\n{out}");
        assert!(!out.stderr.contains("!keep"), "{out}");
    }
    // Nothing matched: nothing changed, not one byte of any pack.
    for (p, hash) in &before {
        if p.extension().is_some_and(|x| x == "pack") {
            assert_eq!(&store_bytes(&env.store)[p], hash);
        }
    }
    let j = rewrite(
        env,
        &[ALICE, "--all", "--exclude", "nothing-like-it", "--json"],
        1,
    )
    .json();
    assert_eq!(j["ok"], false);
    assert_eq!(
        j["unmatched_patterns"],
        serde_json::json!(["nothing-like-it"])
    );
    // A pattern shadowed by a later one still counts as matching.
    let j = rewrite(
        env,
        &[
            ALICE,
            "--all",
            "--exclude",
            "/secret.env",
            "--exclude",
            "*.env",
            "--dry-run",
            "--json",
        ],
        0,
    )
    .json();
    assert_eq!(j["unmatched_patterns"], serde_json::json!([]), "{j:#}");
}

/// `repair` of a lost catalog after a rewrite: the new snapshots, not the
/// secret.
#[test]
fn repair_after_a_rewrite_keeps_the_new_snapshots_and_not_the_secret() {
    let h = history();
    let env = &h.env;
    rewrite(env, &[ALICE, "--all", "--exclude", "secret.env"], 0);
    let after = snapshots(env);
    remove_catalog(&env.store);
    let r = repair(env, 0);
    assert_eq!(r["lost"].as_array().map(Vec::len), Some(0), "{r:#}");
    assert_eq!(snapshots(env), after);
    assert!(listed(env).flags().iter().all(|(_, damaged)| !damaged));
    let left = secret_windows_in(&env.store, &h.secret);
    assert!(left.is_empty(), "{left:#?}");
    let c = check(env, true);
    assert_eq!(c.code, 0, "{c}");
}

/// A removed name is printed escaped (a hostile name cannot forge a line
/// or move the cursor); `--json` has it as UTF-8.
#[test]
fn removed_names_are_printed_escaped() {
    let env = TestEnv::new();
    let ws = env.ws("eve", "p");
    write(&ws.join("keep.txt"), b"kept\n");
    write(&ws.join("leak\nrewrote 00000000 \x1b[2J.env"), b"token\n");
    snapshot_at(&env, &[], t(0));
    let dry = rewrite(
        &env,
        &[
            "eve/p",
            "--all",
            "--exclude",
            "*.env",
            "--dry-run",
            "--json",
        ],
        0,
    );
    assert_eq!(
        dry.json()["snapshots"][0]["removed_paths"],
        serde_json::json!(["leak\nrewrote 00000000 \u{1b}[2J.env"])
    );
    let out = rewrite(&env, &["eve/p", "--all", "--exclude", "*.env"], 0);
    assert!(
        out.stdout
            .contains("    leak\\nrewrote 00000000 \\x1b[2J.env\n"),
        "{out}"
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with("rewrote"))
            .count(),
        1,
        "{out}"
    );
    assert!(!out.stdout.contains('\x1b'), "{out}");
}

/// A restore reading the store when the rewrite commits keeps the old pack
/// files alive (its pinned view still uses them): the rewrite says the
/// purge is not finished and exits 1; the next prune finishes it.
#[test]
fn a_reader_holds_the_old_packs_and_the_rewrite_says_it_is_not_finished() {
    let h = history();
    let env = &h.env;
    let gate = env.path("gate");
    write(&gate, b"");
    let reached = env.path("gate.reached");
    let target = env.path("restored-during");
    let mut cmd = env.std_cmd();
    cmd.args(["restore", ALICE, "--snapshot", &h.alice[2], "--to"])
        .arg(&target)
        .env(
            "WSNAP_PAUSE_AT",
            format!("restore.pinned:{}", gate.display()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start restore");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !reached.exists() {
        assert!(std::time::Instant::now() < deadline, "restore never paused");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = rewrite(
        env,
        &[ALICE, "--all", "--exclude", "secret.env", "--json"],
        1,
    );
    let r = out.json();
    assert_eq!(r["ok"], false, "{out}");
    assert_eq!(r["gc"]["pack_deletion_deferred"], true, "{out}");
    assert!(out.stderr.contains("not finished"), "{out}");
    assert!(!secret_windows_in(&env.store, &h.secret).is_empty());

    // The restore finishes from its view (the old snapshot, as it was).
    fs::remove_file(&gate).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_trees_equal(&h.saved[&(ALICE.to_string(), h.alice[2].clone())], &target);
    fs::remove_dir_all(&target).unwrap();

    let mut c = env.cmd();
    c.args(["prune", "--keep-last", "100", "--json"]);
    let p = expect_code(&mut c, 0).json();
    assert!(u(&p, "orphan_packs_removed") > 0, "{p:#}");
    let left = secret_windows_in(&env.store, &h.secret);
    assert!(left.is_empty(), "{left:#?}");
    let c = check(env, true);
    assert_eq!(c.code, 0, "{c}");
}

/// The writer lock as `forget` takes it (exit 75, or `--lock-wait`); a dry
/// run needs only a read view and answers while a snapshot runs.
#[test]
fn a_running_snapshot_holds_the_rewrite_but_not_its_dry_run() {
    let h = history();
    let env = &h.env;
    write(&env.ws("alice", "thesis").join("notes.txt"), b"edited\n");
    let gate = env.path("gate");
    write(&gate, b"");
    let reached = env.path("gate.reached");
    let mut cmd = env.std_cmd();
    cmd.args(["snapshot", "--workspace", ALICE, "--root"])
        .arg(&env.root)
        .env(
            "WSNAP_PAUSE_AT",
            format!("snapshot.file_read:{}", gate.display()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start snapshot");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !reached.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "snapshot never paused"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let locked = rewrite(env, &[ALICE, "--all", "--exclude", "secret.env"], 75);
    assert!(
        locked.stderr.contains("locked by another wsnap run"),
        "{locked}"
    );
    let dry = rewrite(
        env,
        &[ALICE, "--all", "--exclude", "secret.env", "--dry-run"],
        0,
    );
    assert!(
        dry.stdout.contains("dry run: would rewrite 3 of the 5"),
        "{dry}"
    );
    // Waiting for the lock: released while this one waits.
    let mut waiting = env.std_cmd();
    waiting
        .args([
            "rewrite",
            ALICE,
            "--all",
            "--exclude",
            "secret.env",
            "--lock-wait",
            "60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let waiting = waiting.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    fs::remove_file(&gate).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = waiting.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(secret_windows_in(&env.store, &h.secret).is_empty());
    let c = check(env, true);
    assert_eq!(c.code, 0, "{c}");
}

// ---------------------------------------------------------------------------
// Crashes
// ---------------------------------------------------------------------------

/// Crash points a rewrite passes, and whether the catalog has committed the
/// new snapshots there.
const POINTS: [(&str, bool); 10] = [
    ("pack.before_rename", false),
    ("rewrite.trees_sealed", false),
    ("rewrite.journaled", false),
    ("gc.collected", false),
    ("gc.repack_sealed", false),
    ("gc.before_commit", false),
    ("gc.committed", true),
    ("gc.journal_rewritten", true),
    ("gc.old_pack_removed", true),
    ("rewrite.collected", true),
];

/// Run `rewrite ARGS` with `WSNAP_CRASH_AT=point`, asserting it was killed.
#[track_caller]
fn killed_at(env: &TestEnv, point: &str, args: &[&str]) {
    let mut c = env.std_cmd();
    c.env("WSNAP_CRASH_AT", point).arg("rewrite").args(args);
    let o = with_timeout(c).output().unwrap();
    assert_eq!(
        o.status.signal(),
        Some(9),
        "WSNAP_CRASH_AT={point}: not killed ({:?})\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A copy of `h`'s store in a fresh env (the saved trees stay `h`'s).
fn copy_of(h: &History) -> TestEnv {
    let env = TestEnv::new();
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&h.env.store)
        .arg(&env.store)
        .status()
        .unwrap();
    assert!(st.success());
    env
}

#[test]
fn a_kill_at_any_point_leaves_all_old_or_all_new_and_a_rerun_finishes() {
    let h = history();
    let args = [ALICE, "--all", "--exclude", "secret.env"];
    let plan = rewrite(
        &h.env,
        &[
            ALICE,
            "--all",
            "--exclude",
            "secret.env",
            "--dry-run",
            "--json",
        ],
        0,
    )
    .json();
    let renamed: BTreeMap<String, String> = plan["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (s(m, "old_id").to_string(), s(m, "new_id").to_string()))
        .collect();
    let old = snapshots(&h.env);
    let new: BTreeMap<String, (String, i64)> = old
        .iter()
        .map(|(id, v)| (renamed.get(id).unwrap_or(id).clone(), v.clone()))
        .collect();
    for (point, committed) in POINTS {
        let env = copy_of(&h);
        killed_at(&env, point, &args);
        let now = snapshots(&env);
        if committed {
            assert_eq!(now, new, "killed at {point}: not the new snapshots");
        } else {
            assert_eq!(now, old, "killed at {point}: not the old snapshots");
        }
        let c = check(&env, true);
        assert_eq!(c.code, 0, "killed at {point}: {c}");
        assert_eq!(
            c.json()["findings"],
            serde_json::json!([]),
            "killed at {point}: {c}"
        );

        // Again, to the end: exit 0, or 1 when the killed run had
        // committed (nothing is left to match).
        let out = rewrite(&env, &args, if committed { 1 } else { 0 });
        assert_eq!(snapshots(&env), new, "after {point} and a rerun\n{out}");
        let left = secret_windows_in(&env.store, &h.secret);
        assert!(left.is_empty(), "after {point} and a rerun: {left:#?}");
        let c = check(&env, true);
        assert_eq!(c.code, 0, "after {point} and a rerun: {c}");
        assert_eq!(c.json()["orphan_packs"], serde_json::json!([]), "{c}");
        for ((ws, id), saved) in &h.saved {
            let id = renamed.get(id).unwrap_or(id);
            assert_restores_as(&env, ws, id, saved, &["secret.env", "config/secret.env"]);
        }
        // And the journals alone rebuild exactly that.
        remove_catalog(&env.store);
        repair(&env, 0);
        assert_eq!(snapshots(&env), new, "repair after {point} and a rerun");
    }
}

/// Killed after its journal, before its commit, and then the catalog is
/// lost: `repair` brings back both the old snapshots (from the old
/// journals) and the new ones (from the rewrite's), two per time. Running
/// the rewrite again resolves them: the new ids are the same, so each old
/// one is only forgotten.
#[test]
fn duplicates_from_a_repair_after_a_kill_are_resolved_by_running_it_again() {
    let h = history();
    let env = &h.env;
    let args = [ALICE, "--all", "--exclude", "secret.env"];
    let old = snapshots(env);
    killed_at(env, "rewrite.journaled", &args);
    remove_catalog(&env.store);
    repair(env, 0);
    let both = snapshots(env);
    assert_eq!(both.len(), old.len() + 3, "{both:#?}");
    let c = check(env, true);
    assert_eq!(c.code, 0, "{c}");

    let r = rewrite(
        env,
        &[ALICE, "--all", "--exclude", "secret.env", "--json"],
        0,
    )
    .json();
    let snaps = r["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 3, "{r:#}");
    assert!(snaps.iter().all(|m| m["merged"] == true), "{r:#}");
    let after = snapshots(env);
    assert_eq!(after.len(), old.len());
    let times = |m: &BTreeMap<String, (String, i64)>| {
        let mut v = m.values().cloned().collect::<Vec<_>>();
        v.sort();
        v
    };
    assert_eq!(times(&after), times(&old));
    assert!(snaps
        .iter()
        .all(|m| after.contains_key(s(m, "new_id")) && both.contains_key(s(m, "new_id"))));
    let left = secret_windows_in(&env.store, &h.secret);
    assert!(left.is_empty(), "{left:#?}");
    let c = check(env, true);
    assert_eq!(c.code, 0, "{c}");
}
