//! The off-site copy through the real binary, against `file://` remotes
//! (the same code path as S3; the Garage cluster tests are beside this
//! file): push, then `pull` and `restore --remote` give every snapshot back
//! byte for byte; a second push uploads only what is new; a push killed at
//! each crash point leaves the remote restorable and the next push leaves
//! no orphan; pruned packs leave the remote after the grace period, live
//! ones never; a wrong key or a flipped bit is exit 3 and nothing is
//! restored from it; a missing `file://` directory is a clear error.

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::*;

/// A test env with a `file://` remote directory and the `off` remote added
/// to its store (key generated in the store).
struct Setup {
    env: TestEnv,
    remote_dir: PathBuf,
    url: String,
}

impl Setup {
    /// A remote `off` holding one push of [`workload`].
    fn pushed() -> Setup {
        let s = Setup::new();
        varied_workspaces(&s.env);
        s.env.snapshot(&[]);
        s.add();
        s.push(&[]);
        s
    }

    /// `check --remote off --read-data` finds nothing wrong.
    fn check_ok(&self) {
        expect_code(
            self.env
                .cmd()
                .args(["check", "--remote", "off", "--read-data"]),
            0,
        );
    }

    fn new() -> Setup {
        let env = TestEnv::new();
        let remote_dir = env.path("remote");
        fs::create_dir(&remote_dir).unwrap();
        let url = format!("file://{}", remote_dir.display());
        Setup {
            env,
            remote_dir,
            url,
        }
    }

    /// Add remote `off` to the store (generating its key).
    fn add(&self) {
        let mut c = self.env.cmd();
        c.args(["remote", "add", "off", &self.url, "--generate-key"]);
        let out = expect_code(&mut c, 0);
        assert!(out.stderr.contains("OFF this server"), "{out}");
    }

    fn key(&self) -> PathBuf {
        self.env.store.join("remotes/off.key")
    }

    /// `push --json` with `env` on top, asserting exit 0.
    fn push(&self, env: &[(&str, &str)]) -> Value {
        let mut c = self.env.std_cmd();
        c.args(["push", "--json"]);
        for (k, v) in env {
            c.env(k, v);
        }
        expect_code(&mut with_timeout(c), 0).json()
    }

    /// A directory holding only the remote's configuration (a fresh
    /// machine): `remote add off URL --key-file KEY`.
    fn reader(&self, name: &str) -> PathBuf {
        let dir = self.env.path(name);
        let mut c = bare_cmd();
        c.arg("--store")
            .arg(&dir)
            .args(["remote", "add", "off", &self.url, "--key-file"]);
        c.arg(self.key());
        expect_code(&mut c, 0);
        dir
    }

    /// Objects under `dir` of the remote.
    fn objects(&self, dir: &str) -> Vec<PathBuf> {
        match fs::read_dir(self.remote_dir.join(dir)) {
            Ok(rd) => {
                let mut v: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
    }
}

fn store_cmd(store: &Path) -> Command {
    let mut c = bare_cmd();
    c.arg("--store").arg(store);
    c
}

/// Every snapshot (id, workspace) of a store.
fn snapshots(store: &Path) -> Vec<(String, String)> {
    let v = expect_code(store_cmd(store).args(["list", "--json"]), 0).json();
    v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    s["user"].as_str().unwrap(),
                    s["project"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

/// Restore snapshot `id` of `ws` from `store` (with `extra` flags) into a
/// new directory under `env`.
fn restore_from(
    store: &Path,
    env: &TestEnv,
    ws: &str,
    id: &str,
    extra: &[&str],
    tag: &str,
) -> PathBuf {
    let to = env.path(format!("r-{tag}-{}-{}", ws.replace('/', "_"), &id[..8]));
    let mut c = store_cmd(store);
    c.args(["restore", ws, "--snapshot", id, "--to"])
        .arg(&to)
        .args(extra);
    expect_code(&mut c, 0);
    to
}

fn pack_count(store: &Path) -> usize {
    pack_files(store).len()
}

#[test]
fn push_then_pull_and_restore_remote_give_every_snapshot_back_and_a_second_push_sends_only_what_is_new(
) {
    let s = Setup::new();
    varied_workspaces(&s.env);
    s.env.snapshot(&[]);
    s.add();
    let first = s.push(&[]);
    assert_eq!(u(&first["deleted"], "objects"), 0, "{first:#}");
    let first_bytes = u(&first["uploaded"], "size_bytes");
    assert!(first_bytes > 3 * MIB as u64, "{first:#}");
    assert_eq!(s.objects("data").len(), pack_count(&s.env.store));

    // A second tick: one small file changes.
    write_file(
        &s.env.ws("alice", "thesis").join("notes.txt"),
        b"chapter two\n",
        0o600,
        hour_ago_ns(),
    );
    s.env.snapshot(&[]);
    let packs_before = s.objects("data").len();
    let second = s.push(&[]);
    let new_packs = pack_count(&s.env.store) - packs_before;
    // New packs + journals + the image + the pointer, nothing re-sent.
    assert!(
        u(&second["uploaded"], "objects") <= new_packs as u64 + 4,
        "{second:#}"
    );
    assert!(
        u(&second["uploaded"], "size_bytes") < first_bytes / 10,
        "{second:#}"
    );
    assert!(
        u(&second["skipped"], "objects") >= packs_before as u64,
        "{second:#}"
    );
    // Nothing changed: only the pointer goes up again.
    let third = s.push(&[]);
    assert_eq!(u(&third["uploaded"], "objects"), 1, "{third:#}");

    let local = snapshots(&s.env.store);
    assert_eq!(local.len(), 6);
    // restore --remote from a directory holding nothing but the config.
    let reader = s.reader("reader");
    for (id, ws) in &local {
        let want = restore_from(&s.env.store, &s.env, ws, id, &[], "local");
        let got = restore_from(&reader, &s.env, ws, id, &["--remote", "off"], "remote");
        assert_trees_equal(&want, &got);
    }
    // One path only: fetches no more than the packs it needs.
    let (id, _) = local.iter().find(|(_, w)| w == "bob/data").unwrap();
    let to = s.env.path("one-path");
    let out = expect_code(
        store_cmd(&reader)
            .args([
                "restore",
                "--remote",
                "off",
                "bob/data",
                "--snapshot",
                id,
                "--path",
                "sub",
                "--json",
                "--to",
            ])
            .arg(&to),
        0,
    );
    assert_eq!(out.json()["files"], 1, "{out}");
    assert_trees_equal(&s.env.ws("bob", "data").join("sub"), &to.join("sub"));

    // pull: a complete store, the same snapshots, each restoring the same.
    let pulled = s.reader("pulled");
    let out = expect_code(store_cmd(&pulled).args(["pull", "off", "--json"]), 0);
    let v = out.json();
    assert_eq!(u(&v, "snapshots"), 6, "{out}");
    assert!(v["rebuilt_because"].is_null(), "{out}");
    assert_eq!(snapshots(&pulled), local);
    for (id, ws) in &local {
        let want = restore_from(&s.env.store, &s.env, ws, id, &[], "local2");
        let got = restore_from(&pulled, &s.env, ws, id, &[], "pulled");
        assert_trees_equal(&want, &got);
    }
    expect_code(store_cmd(&pulled).args(["check", "--read-data"]), 0);
    // The pulled store is the same store: it may go on pushing.
    let v = expect_code(store_cmd(&pulled).args(["push", "--json"]), 0).json();
    // No pack again: a new base image (a pulled store keeps no copy of the
    // remote's base to make deltas against) and the pointer.
    assert_eq!(u(&v["uploaded"], "objects"), 2, "{v:#}");
    assert!(
        u(&v["skipped"], "objects") >= u(&v, "packs"),
        "every pack was there: {v:#}"
    );
    // The next push of the pulled store sends a delta and the pointer.
    let v = expect_code(store_cmd(&pulled).args(["push", "--json"]), 0).json();
    assert!(u(&v["uploaded"], "objects") <= 2, "{v:#}");
    // check --remote reads and verifies everything.
    let out = expect_code(
        s.env
            .cmd()
            .args(["check", "--remote", "off", "--read-data", "--json"]),
        0,
    );
    assert_eq!(out.json()["ok"], true, "{out}");
    // A pull into a store that exists is refused.
    let out = expect_code(s.env.cmd().args(["pull", "off"]), 2);
    assert!(out.stderr.contains("empty or absent"), "{out}");
}

#[test]
fn without_images_pull_rebuilds_the_catalog_from_packs_and_journals() {
    let s = Setup::pushed();
    for img in s.objects("catalog") {
        fs::remove_file(img).unwrap();
    }
    let pulled = s.reader("pulled");
    let out = expect_code(store_cmd(&pulled).args(["pull", "off", "--json"]), 0);
    let v = out.json();
    assert!(
        v["rebuilt_because"].as_str().unwrap().contains("missing"),
        "{out}"
    );
    let local = snapshots(&s.env.store);
    assert_eq!(snapshots(&pulled), local);
    for (id, ws) in &local {
        let want = restore_from(&s.env.store, &s.env, ws, id, &[], "local");
        let got = restore_from(&pulled, &s.env, ws, id, &[], "rebuilt");
        assert_trees_equal(&want, &got);
    }
    // restore --remote needs the image: a clear exit 3.
    let reader = s.reader("reader");
    let (id, ws) = &local[0];
    let out = expect_code(
        store_cmd(&reader)
            .args(["restore", "--remote", "off", ws, "--snapshot", id, "--to"])
            .arg(s.env.path("x")),
        3,
    );
    assert!(out.stderr.contains("is missing"), "{out}");
}

/// `push` killed at `point`: true if it was killed there.
fn push_killed_at(s: &Setup, point: &str) -> bool {
    let mut c = s.env.std_cmd();
    c.env("WSNAP_CRASH_AT", point).args(["push"]);
    let o = with_timeout(c).output().unwrap();
    match o.status.signal() {
        Some(9) => true,
        None if o.status.success() => false,
        _ => panic!("{point}: {o:?}"),
    }
}

#[test]
fn a_push_killed_at_each_crash_point_leaves_the_remote_restorable_and_no_orphan_after_the_next() {
    let s = Setup::pushed();
    let reader = s.reader("reader");
    for (i, point) in [
        "push.packs_uploaded",
        "push.image_uploaded",
        "push.pointer_written",
        "push.deleted",
    ]
    .iter()
    .enumerate()
    {
        // New data, and a pruned snapshot whose pack goes dead.
        write_file(
            &s.env.ws("alice", "thesis").join(format!("new-{i}.bin")),
            &random_bytes(100 + i as u64, 300 * KIB),
            0o600,
            hour_ago_ns(),
        );
        s.env.snapshot(&["--prune", "--keep-last", "2"]);
        assert!(push_killed_at(&s, point), "{point} was not reached");
        // Whatever pointer is there names a restorable state.
        let to = s.env.path(format!("after-{point}"));
        let out = expect_code(
            store_cmd(&reader)
                .args([
                    "restore",
                    "--remote",
                    "off",
                    "alice/thesis",
                    "--at",
                    "latest",
                    "--json",
                    "--to",
                ])
                .arg(&to),
            0,
        );
        let id = out.json()["snapshot"]["id"].as_str().unwrap().to_string();
        let want = restore_from(&s.env.store, &s.env, "alice/thesis", &id, &[], point);
        assert_trees_equal(&want, &to);
        expect_code(
            s.env
                .cmd()
                .args(["check", "--remote", "off", "--read-data"]),
            0,
        );
        // The next push completes; with no grace, nothing unreferenced is left.
        s.push(&[("WSNAP_REMOTE_GRACE", "0s")]);
        assert_eq!(
            s.objects("data").len(),
            pack_count(&s.env.store),
            "after {point}"
        );
        assert!(
            s.objects("catalog").len() <= 2,
            "a base and a delta at most, after {point}"
        );
    }
}

#[test]
fn prune_then_push_deletes_dead_packs_after_the_grace_period_and_nothing_live() {
    let s = Setup::new();
    let a = s.env.ws("alice", "thesis");
    write_file(
        &a.join("old.bin"),
        &random_bytes(7, 2 * MIB),
        0o600,
        hour_ago_ns(),
    );
    write_file(&a.join("keep.txt"), b"kept\n", 0o600, hour_ago_ns());
    s.env.snapshot(&[]);
    s.add();
    s.push(&[]);
    let before = s.objects("data");
    fs::remove_file(a.join("old.bin")).unwrap();
    s.env.snapshot(&["--prune", "--keep-last", "1"]);
    // Within the grace period the dead pack stays for readers of the old pointer.
    let v = s.push(&[("WSNAP_REMOTE_GRACE", "3s")]);
    assert!(u(&v, "pending_deletion") >= 1, "{v:#}");
    assert_eq!(u(&v["deleted"], "objects"), 0, "{v:#}");
    assert!(before.iter().all(|p| p.exists()));
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let v = s.push(&[("WSNAP_REMOTE_GRACE", "3s")]);
    assert!(u(&v["deleted"], "objects") >= 1, "{v:#}");
    assert_eq!(s.objects("data").len(), pack_count(&s.env.store));
    // Everything live is there: the remote restores and checks clean.
    let reader = s.reader("reader");
    let to = s.env.path("out");
    expect_code(
        store_cmd(&reader)
            .args([
                "restore",
                "--remote",
                "off",
                "alice/thesis",
                "--at",
                "latest",
                "--to",
            ])
            .arg(&to),
        0,
    );
    assert_trees_equal(&a, &to);
    s.check_ok();
}

#[test]
fn a_wrong_key_is_exit_3_before_anything_is_read_and_the_store_is_untouched() {
    let s = Setup::pushed();
    // A fresh machine with another key: refused, nothing saved.
    let other = s.env.path("other");
    let out = expect_code(
        store_cmd(&other).args(["remote", "add", "off", &s.url, "--generate-key"]),
        3,
    );
    assert!(out.stderr.contains("is not this remote's key"), "{out}");
    assert!(!other.join("remotes/off.json").exists());
    assert!(
        !other.join("remotes/off.key").exists(),
        "the unused key is not left behind"
    );
    // The store's own key replaced by another: push and restore refuse.
    let fingerprint = pack_fingerprint(&s.env.store);
    let listing = snapshots(&s.env.store);
    fs::copy(s.key(), s.env.path("key-copy")).unwrap();
    fs::write(s.key(), format!("{}\n", "ab".repeat(32))).unwrap();
    let out = expect_code(s.env.cmd().args(["push"]), 3);
    assert!(out.stderr.contains("is not this remote's key"), "{out}");
    let out = expect_code(
        s.env
            .cmd()
            .args([
                "restore",
                "--remote",
                "off",
                "alice/thesis",
                "--at",
                "latest",
                "--to",
            ])
            .arg(s.env.path("x")),
        3,
    );
    assert!(out.stderr.contains("is not this remote's key"), "{out}");
    assert!(!s.env.path("x").exists());
    assert_eq!(pack_fingerprint(&s.env.store), fingerprint);
    assert_eq!(snapshots(&s.env.store), listing);
    // Another store with the right key may not push over this copy.
    fs::write(s.key(), fs::read(s.env.path("key-copy")).unwrap()).unwrap();
    let other_store = s.env.path("other-store");
    expect_code(store_cmd(&other_store).arg("init"), 0);
    fs::create_dir_all(other_store.join("remotes")).unwrap();
    let mut c = store_cmd(&other_store);
    c.args(["remote", "add", "off", &s.url, "--key-file"])
        .arg(s.env.path("key-copy"));
    expect_code(&mut c, 0);
    let mut c = store_cmd(&other_store);
    c.args(["snapshot", "--root"]).arg(&s.env.root);
    expect_code(&mut c, 0);
    let out = expect_code(store_cmd(&other_store).arg("push"), 3);
    assert!(
        out.stderr.contains("holds the copy of another store") && out.stderr.contains("--force"),
        "{out}"
    );
    expect_code(s.env.cmd().args(["check", "--remote", "off"]), 0);
    expect_code(store_cmd(&other_store).args(["push", "--force"]), 0);
    // A key file that is no key: bad input.
    fs::write(s.key(), "not a key").unwrap();
    expect_code(s.env.cmd().args(["push"]), 2);
}

fn flip_middle_bit(p: &Path) {
    let mut b = fs::read(p).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x10;
    fs::write(p, b).unwrap();
}

#[test]
fn a_flipped_bit_in_any_remote_object_is_detected_exit_3_and_never_restored() {
    let s = Setup::pushed();
    // A second push: the newest image is the base plus a delta.
    write_file(
        &s.env.ws("alice", "thesis").join("notes.txt"),
        b"chapter three\n",
        0o600,
        hour_ago_ns(),
    );
    s.env.snapshot(&[]);
    s.push(&[]);
    let pristine = s.env.path("pristine");
    copy_tree(&s.remote_dir, &pristine);
    let by_size = |dir: &str| {
        let mut v = s.objects(dir);
        v.sort_by_key(|p| fs::metadata(p).unwrap().len());
        v
    };
    let biggest_pack = by_size("data").pop().unwrap();
    let images = by_size("catalog");
    assert_eq!(images.len(), 2, "a base and a delta");
    let cases: Vec<(&str, PathBuf)> = vec![
        ("pack", biggest_pack),
        ("delta", images[0].clone()),
        ("image", images[1].clone()),
        ("journal", s.objects("journal")[0].clone()),
        ("pointer", s.remote_dir.join("latest")),
    ];
    for (what, object) in cases {
        // Start from the pristine copy each time.
        fs::remove_dir_all(&s.remote_dir).unwrap();
        copy_tree(&pristine, &s.remote_dir);
        flip_middle_bit(&object);
        let name = object
            .strip_prefix(&s.remote_dir)
            .unwrap()
            .display()
            .to_string();
        let reader = s.reader(&format!("reader-{what}"));
        let to = s.env.path(format!("out-{what}"));
        let restore = run(store_cmd(&reader)
            .args([
                "restore",
                "--remote",
                "off",
                "alice/thesis",
                "--at",
                "latest",
                "--to",
            ])
            .arg(&to));
        let check = run(s
            .env
            .cmd()
            .args(["check", "--remote", "off", "--read-data"]));
        let pull = run(store_cmd(&s.env.path(format!("pull-{what}")))
            .args(["pull", "off"])
            .env_remove("X"));
        let _ = pull;
        if what == "journal" {
            // A restore does not read journals; check and pull do.
            assert_eq!(restore.code, 0, "{what}: {restore}");
            assert_eq!(check.code, 3, "{what}: {check}");
            assert!(check.stdout.contains(&name), "{what}: {check}");
            continue;
        }
        assert_eq!(restore.code, 3, "{what}: {restore}");
        assert!(
            restore
                .stderr
                .contains(&format!("tampered or damaged object {name}")),
            "{what}: {restore}"
        );
        assert!(
            !to.exists() || fs::read_dir(&to).unwrap().next().is_none(),
            "{what}: something was restored"
        );
        assert_ne!(check.code, 0, "{what}: {check}");
    }
    // The local store never noticed anything: it checks clean.
    expect_code(s.env.cmd().args(["check", "--read-data"]), 0);
}

#[test]
fn a_missing_file_remote_is_a_clear_error_and_names_are_exact() {
    let s = Setup::new();
    varied_workspaces(&s.env);
    s.env.snapshot(&[]);
    let out = expect_code(
        s.env.cmd().args([
            "remote",
            "add",
            "off",
            &format!("file://{}/absent", s.remote_dir.display()),
            "--generate-key",
        ]),
        69,
    );
    assert!(
        out.stderr.contains("does not exist") && out.stderr.contains("absent"),
        "{out}"
    );
    let out = expect_code(
        s.env
            .cmd()
            .args(["remote", "add", "off", "http://x", "--generate-key"]),
        2,
    );
    assert!(out.stderr.contains("s3://"), "{out}");
    expect_code(s.env.cmd().args(["remote", "add", "off", &s.url]), 2);
    s.add();
    expect_code(
        s.env
            .cmd()
            .args(["remote", "add", "off", &s.url, "--generate-key"]),
        2,
    );
    let v = expect_code(s.env.cmd().args(["remote", "list", "--json"]), 0).json();
    assert_eq!(v["remotes"][0]["name"], "off");
    assert!(!v
        .to_string()
        .contains(&fs::read_to_string(s.key()).unwrap().trim().to_string()));
    expect_code(s.env.cmd().args(["remote", "remove", "of"]), 2);
    // The remote directory disappears (an unmounted disk): a clear error.
    fs::rename(&s.remote_dir, s.env.path("moved")).unwrap();
    let out = expect_code(s.env.cmd().args(["push"]), 69);
    assert!(out.stderr.contains("is not a directory"), "{out}");
    let out = expect_code(s.env.cmd().args(["remote", "remove", "off"]), 0);
    assert!(out.stdout.contains("kept its key file"), "{out}");
    assert!(s.key().exists());
}

#[test]
fn the_cron_line_snapshots_prunes_and_pushes_and_a_failed_push_fails_the_run_and_shows_in_status() {
    let s = Setup::new();
    varied_workspaces(&s.env);
    s.env.snapshot(&[]);
    s.add();
    let mut c = s.env.cmd();
    c.args(["snapshot", "--root"])
        .arg(&s.env.root)
        .args(["--prune", "--push", "--json"]);
    let v = expect_code(&mut c, 0).json();
    assert!(u(&v["push"]["uploaded"], "objects") > 0, "{v:#}");
    let status = |env: &TestEnv| {
        let mut c = env.cmd();
        c.args(["status", "--json", "--min-free", "0", "--root"])
            .arg(&env.root);
        run(&mut c)
    };
    let st = status(&s.env).json();
    assert_eq!(st["remotes"][0]["name"], "off", "{st:#}");
    assert!(st["remotes"][0]["last_push"].is_string(), "{st:#}");
    assert_eq!(st["remotes"][0]["lag_seconds"], 0.0, "{st:#}");
    // The remote goes away: the snapshot commits, the run fails loudly.
    fs::rename(&s.remote_dir, s.env.path("moved")).unwrap();
    write_file(
        &s.env.ws("bob", "data").join("more"),
        b"more",
        0o600,
        hour_ago_ns(),
    );
    let before = snapshots(&s.env.store).len();
    let mut c = s.env.cmd();
    c.args(["snapshot", "--root"])
        .arg(&s.env.root)
        .args(["--prune", "--push"]);
    let out = expect_code(&mut c, 69);
    assert!(out.stdout.contains("push: failed"), "{out}");
    assert!(snapshots(&s.env.store).len() > before);
    let st = status(&s.env).json();
    assert!(
        st["remotes"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("not a directory"),
        "{st:#}"
    );
    assert!(
        st["problems"].to_string().contains("the last push failed"),
        "a failing push is a problem at once: {st:#}"
    );
    // Prometheus gauges for the remote.
    let prom = s.env.path("wsnap.prom");
    let mut c = s.env.cmd();
    c.args(["status", "--min-free", "0", "--root"])
        .arg(&s.env.root)
        .arg("--prometheus")
        .arg(&prom);
    run(&mut c);
    let text = fs::read_to_string(&prom).unwrap();
    assert!(
        text.contains("wsnap_remote_push_failing{remote=\"off\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("wsnap_remote_lag_seconds{remote=\"off\"}"),
        "{text}"
    );
}

#[test]
fn an_object_cut_short_on_the_remote_is_reported_and_sent_again_by_the_next_push() {
    let s = Setup::pushed();
    let pack = s
        .objects("data")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let full = fs::metadata(&pack).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&pack).unwrap();
    f.set_len(full / 2).unwrap();
    drop(f);
    let out = expect_code(s.env.cmd().args(["check", "--remote", "off"]), 3);
    assert!(out.stdout.contains("bytes, expected"), "{out}");
    let v = s.push(&[]);
    assert!(
        u(&v["uploaded"], "objects") >= 2,
        "the pack and the pointer: {v:#}"
    );
    assert_eq!(fs::metadata(&pack).unwrap().len(), full);
    s.check_ok();
}

#[test]
fn an_s3_remote_without_credentials_or_reachable_endpoint_is_exit_69_and_nothing_is_saved() {
    let env = TestEnv::new();
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let add = |creds: bool| {
        let mut c = env.std_cmd();
        c.args([
            "remote",
            "add",
            "s3",
            "s3://bucket/prefix",
            "--endpoint",
            &endpoint,
            "--region",
            "garage",
            "--generate-key",
        ]);
        for v in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            c.env_remove(v);
        }
        if creds {
            c.env("AWS_ACCESS_KEY_ID", "GKtest")
                .env("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-0123456789");
        }
        run(&mut with_timeout(c))
    };
    let out = add(false);
    assert_eq!(out.code, 69, "{out}");
    assert!(out.stderr.contains("credentials"), "{out}");
    let t0 = std::time::Instant::now();
    let out = add(true);
    assert_eq!(out.code, 69, "{out}");
    assert!(out.stderr.contains("unreachable"), "{out}");
    assert!(
        !out.stderr.contains("not-a-real-secret"),
        "a secret in a message: {out}"
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(60),
        "retries took {:?}",
        t0.elapsed()
    );
    assert!(!env.store.join("remotes/s3.json").exists());
    assert!(!env.store.join("remotes/s3.credentials").exists());
}

#[test]
fn a_push_killed_at_random_moments_leaves_the_remote_restorable_and_the_next_push_cleans_up() {
    let s = Setup::new();
    varied_workspaces(&s.env);
    let a = s.env.ws("alice", "thesis");
    s.env.snapshot(&[]);
    s.add();
    let reader = s.reader("reader");
    for round in 0..5u64 {
        write_file(
            &a.join(format!("r{round}.bin")),
            &random_bytes(500 + round, 2 * MIB),
            0o600,
            hour_ago_ns(),
        );
        s.env.snapshot(&["--prune", "--keep-last", "2"]);
        let mut c = s.env.std_cmd();
        c.arg("push");
        let mut child = c.spawn().unwrap();
        // 0–400 ms in: anywhere from listing to deletions.
        let ms = u64::from_le_bytes(
            blake3::hash(&round.to_le_bytes()).as_bytes()[..8]
                .try_into()
                .unwrap(),
        ) % 400;
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        if s.remote_dir.join("latest").exists() {
            let to = s.env.path(format!("kill-{round}"));
            let out = expect_code(
                store_cmd(&reader)
                    .args([
                        "restore",
                        "--remote",
                        "off",
                        "alice/thesis",
                        "--at",
                        "latest",
                        "--json",
                        "--to",
                    ])
                    .arg(&to),
                0,
            );
            let id = out.json()["snapshot"]["id"].as_str().unwrap().to_string();
            let want = restore_from(
                &s.env.store,
                &s.env,
                "alice/thesis",
                &id,
                &[],
                &format!("k{round}"),
            );
            assert_trees_equal(&want, &to);
        }
    }
    s.push(&[("WSNAP_REMOTE_GRACE", "0s")]);
    assert_eq!(s.objects("data").len(), pack_count(&s.env.store));
    s.check_ok();
}

#[test]
fn the_restore_cache_is_bounded_and_a_check_can_read_a_random_subset() {
    let s = Setup::pushed();
    let reader = s.reader("reader");
    let restore = |tag: &str, cap: &str| {
        let mut c = bare_std_cmd();
        c.arg("--store")
            .arg(&reader)
            .env("WSNAP_REMOTE_CACHE_BYTES", cap);
        c.args([
            "restore",
            "--remote",
            "off",
            "alice/thesis",
            "--at",
            "latest",
            "--json",
            "--to",
        ])
        .arg(s.env.path(tag));
        expect_code(&mut with_timeout(c), 0).json()
    };
    let first = restore("a", "100000000000");
    assert!(u(&first, "packs_fetched") >= 1, "{first:#}");
    assert_eq!(first["image_fetched"], true);
    // Everything is cached: nothing fetched again, the image reused.
    let second = restore("b", "100000000000");
    assert_eq!(u(&second, "packs_fetched"), 0, "{second:#}");
    assert_eq!(second["image_fetched"], false);
    // A cap of 1 byte: the cache is emptied after the restore.
    let third = restore("c", "1");
    assert!(u(&third, "cache_evicted") >= 1, "{third:#}");
    assert!(pack_files(&reader.join("cache/off")).is_empty());
    assert_trees_equal(&s.env.path("a"), &s.env.path("c"));
    let v = expect_code(
        s.env.cmd().args([
            "check",
            "--remote",
            "off",
            "--read-data",
            "--subset",
            "50",
            "--json",
        ]),
        0,
    )
    .json();
    let packs = pack_count(&s.env.store) as u64;
    assert!(
        u(&v, "packs_read") >= 1 && u(&v, "packs_read") <= packs.div_ceil(2),
        "{v:#}"
    );
    expect_code(
        s.env
            .cmd()
            .args(["check", "--remote", "off", "--subset", "50"]),
        2,
    );
}
