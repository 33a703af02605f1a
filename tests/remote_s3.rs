//! The off-site copy on real S3: every test starts its own 3-node Garage
//! cluster with replication factor 3 on 127.0.0.1 (`tests/common/garage.rs`)
//! and drives the binary as an admin would, with the credentials in
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`:
//!
//! - push, then `restore --remote` and `pull` on fresh store directories
//!   give every snapshot back byte for byte, as a local restore does;
//!   nothing in the bucket is plaintext or named by a local pack;
//! - a Garage node killed while a push is mid-upload (held there by a proxy,
//!   not by timing): the push succeeds, and restore, pull and check work
//!   with the node still down;
//! - a push SIGKILLed mid-upload: the remote restores the previous push,
//!   the next push completes it and leaves no orphan pack;
//! - wrong credentials, a missing bucket, an unreachable endpoint: a clear
//!   error, exit 69, the local store untouched, the remote unharmed;
//! - a bit flipped in a pack, a catalog image or the pointer in the bucket:
//!   detected, exit 3, nothing restored.
//!
//! Needs `garage` 2.x on PATH: without it every test here fails saying how
//! to install it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::garage::{Garage, Proxy, S3Key, REGION};
use common::*;

/// A remote's content is wrong for us (tampered, wrong key): as a damaged
/// store.
const EXIT_DAMAGED: i32 = 3;
/// The remote cannot be used now (unreachable, credentials, no bucket):
/// `EX_UNAVAILABLE`.
const EXIT_UNAVAILABLE: i32 = 69;

/// The prefix the store pushes under, in the harness's bucket.
const PREFIX: &str = "srv1";

/// Two ticks of the workload.
fn tick_times() -> [i64; 2] {
    let t0 = utc_ns(2026, 3, 2, 10, 0, 0);
    [t0, t0 + 300 * 1_000_000_000]
}

/// A Garage cluster and a store with two ticks of three workspaces.
struct Setup {
    g: Garage,
    env: TestEnv,
}

impl Setup {
    fn new() -> Setup {
        let g = Garage::start();
        let env = TestEnv::new();
        let [t0, t1] = tick_times();
        varied_workspaces(&env);
        snapshot_at(&env, &[], t0);
        // Second tick: one file changes, one appears.
        write_file(
            &env.ws("alice", "thesis").join("notes.txt"),
            b"chapter two\n",
            0o600,
            hour_ago_ns(),
        );
        write_file(
            &env.ws("bob", "data").join("new.bin"),
            &random_bytes(9, 700 * KIB),
            0o644,
            hour_ago_ns(),
        );
        snapshot_at(&env, &[], t1);
        Setup { g, env }
    }

    /// `wsnap --store STORE` with [`Garage::key`]'s credentials.
    fn cmd(&self, store: &Path) -> Command {
        self.cmd_as(store, &self.g.key)
    }

    /// `wsnap --store STORE` with `key`'s credentials.
    fn cmd_as(&self, store: &Path, key: &S3Key) -> Command {
        with_timeout(self.std_cmd_as(store, key))
    }

    /// The same as a `std::process::Command` (to kill it).
    fn std_cmd_as(&self, store: &Path, key: &S3Key) -> std::process::Command {
        let mut c = bare_std_cmd();
        c.arg("--store").arg(store);
        for (k, v) in Garage::aws_env_for(key) {
            c.env(k, v);
        }
        c
    }

    /// `remote add NAME s3://BUCKET/PREFIX --endpoint E --region garage`
    /// and `--generate-key`, or `--key-file F`.
    fn add(&self, store: &Path, name: &str, url: &str, endpoint: &str, key: Option<&Path>) -> Out {
        let mut c = self.cmd(store);
        c.args(["remote", "add", name, url, "--endpoint", endpoint])
            .args(["--region", REGION]);
        match key {
            Some(k) => c.arg("--key-file").arg(k),
            None => c.arg("--generate-key"),
        };
        run(&mut c)
    }

    /// Add remote `off` (`PREFIX` of the harness's bucket through
    /// `endpoint`) to the env's store, generating its key.
    fn add_off(&self, endpoint: &str) {
        let out = self.add(&self.env.store, "off", &self.g.url(PREFIX), endpoint, None);
        assert_eq!(out.code, 0, "remote add\n{out}");
        let said = format!("{}{}", out.stdout, out.stderr).to_lowercase();
        assert!(
            said.contains("keep a copy"),
            "the admin is told to keep the key: {out}"
        );
        assert!(
            !said.contains(&self.g.key.secret),
            "a secret in the output: {out}"
        );
    }

    /// The key file of remote `off` of the env's store.
    fn key_file(&self) -> PathBuf {
        let v = expect_code(
            self.cmd(&self.env.store).args(["remote", "list", "--json"]),
            0,
        )
        .json();
        let f = v["remotes"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == "off"))
            .and_then(|r| r["key_file"].as_str())
            .unwrap_or_else(|| panic!("no key_file for off in remote list --json: {v:#}"));
        PathBuf::from(f)
    }

    /// A new directory holding only remote `off`'s configuration, as on a
    /// fresh machine: `remote add off URL --endpoint E --key-file KEY`.
    fn reader(&self, name: &str, endpoint: &str) -> PathBuf {
        let dir = self.env.path(name);
        let out = self.add(
            &dir,
            "off",
            &self.g.url(PREFIX),
            endpoint,
            Some(&self.key_file()),
        );
        assert_eq!(out.code, 0, "remote add on a fresh machine\n{out}");
        dir
    }

    /// `push [NAME] --json` from the env's store, asserting exit 0.
    fn push(&self, name: &str) -> Value {
        expect_code(self.cmd(&self.env.store).args(["push", name, "--json"]), 0).json()
    }

    /// `restore --remote off WS (--snapshot ID | --at TIME) --to DIR` from
    /// `store`.
    fn restore_remote(&self, store: &Path, ws: &str, which: &[&str], to: &Path) -> Out {
        let mut c = self.cmd(store);
        c.args(["restore", "--remote", "off", ws])
            .args(which)
            .arg("--to")
            .arg(to);
        run(&mut c)
    }

    /// `check --remote off [--read-data]` from `store`.
    fn check_remote(&self, store: &Path, read_data: bool) -> Out {
        let mut c = self.cmd(store);
        c.args(["check", "--remote", "off"]);
        if read_data {
            c.arg("--read-data");
        }
        run(&mut c)
    }
}

fn big_content() -> Vec<u8> {
    random_bytes(1, 3 * MIB)
}

/// `(id, user/project, time in ns)` of every snapshot of `store`, in
/// `list` order.
fn snapshots(store: &Path) -> Vec<(String, String, i64)> {
    let mut c = bare_cmd();
    c.arg("--store").arg(store).args(["list", "--json"]);
    expect_code(&mut c, 0).json()["snapshots"]
        .as_array()
        .expect("list --json has a snapshots array")
        .iter()
        .map(|v| {
            (
                s(v, "id").to_string(),
                ws_of(v),
                v["time_ns"].as_i64().expect("time_ns"),
            )
        })
        .collect()
}

/// Local `restore WS --snapshot ID --to DIR` from `store`.
fn restore_local(store: &Path, ws: &str, id: &str, to: &Path) {
    let mut c = bare_cmd();
    c.arg("--store")
        .arg(store)
        .args(["restore", ws, "--snapshot", id, "--to"])
        .arg(to);
    expect_code(&mut c, 0);
}

/// What of the local store a failed remote command must leave as it was:
/// every pack (name, size, hash) and every snapshot.
fn local_state(env: &TestEnv) -> (Vec<(PathBuf, u64, String)>, Listing) {
    (pack_fingerprint(&env.store), listed(env))
}

/// Names of the bucket's objects under `PREFIX/`.
fn objects(g: &Garage) -> Vec<(String, u64)> {
    g.raw().list(PREFIX)
}

#[test]
fn push_then_restore_remote_and_pull_on_fresh_machines_give_every_snapshot_back() {
    let s = Setup::new();
    s.add_off(&s.g.endpoint());
    let first = s.push("off");
    let uploaded = u(&first["uploaded"], "size_bytes");
    assert!(uploaded > 3 * MIB as u64, "{first:#}");
    assert_eq!(u(&first["deleted"], "objects"), 0, "{first:#}");

    // Everything is under the prefix, encrypted, and named by nothing the
    // local store names its packs by.
    let all = s.g.raw().list("");
    assert!(!all.is_empty());
    for (name, _) in &all {
        assert!(
            name.starts_with(&format!("{PREFIX}/")),
            "{name} outside the prefix"
        );
    }
    let stored: u64 = all.iter().map(|(_, n)| n).sum();
    assert!(stored >= uploaded / 2, "{stored} bytes stored, {first:#}");
    let needles = windows_of(&big_content());
    let pack_names: Vec<String> = pack_files(&s.env.store)
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let raw = s.g.raw();
    for (name, _) in &all {
        let bytes = raw.get(name);
        for (i, n) in needles.iter().enumerate() {
            assert!(
                !contains_bytes(&bytes, n),
                "{name} holds plaintext window #{i}"
            );
        }
        assert!(
            !contains_bytes(&bytes, b"chapter one"),
            "{name} holds notes.txt"
        );
        for p in &pack_names {
            assert!(!name.contains(p.as_str()), "{name} names local pack {p}");
        }
    }

    // Nothing changed: a second push sends next to nothing.
    let second = s.push("off");
    assert!(
        u(&second["uploaded"], "size_bytes") < uploaded / 10,
        "{second:#}"
    );

    // A fresh machine with the bucket and the key only.
    let local = snapshots(&s.env.store);
    assert_eq!(local.len(), 6);
    let reader = s.reader("reader", &s.g.endpoint());
    for (id, ws, _) in &local {
        let want = s.env.path(format!("local-{id}"));
        restore_local(&s.env.store, ws, id, &want);
        let got = s.env.path(format!("remote-{id}"));
        let out = s.restore_remote(&reader, ws, &["--snapshot", id], &got);
        assert_eq!(out.code, 0, "restore --remote {ws} {id}\n{out}");
        assert_trees_equal(&want, &got);
    }
    // By time, as in the disaster-recovery drill: the first tick.
    let [t0, _] = tick_times();
    let (first_id, _, _) = local
        .iter()
        .find(|(_, ws, t)| ws == "alice/thesis" && *t == t0)
        .expect("alice/thesis at the first tick");
    let got = s.env.path("remote-at");
    let out = s.restore_remote(&reader, "alice/thesis", &["--at", &rfc3339(t0)], &got);
    assert_eq!(out.code, 0, "restore --remote --at\n{out}");
    assert_trees_equal(&s.env.path(format!("local-{first_id}")), &got);
    assert_eq!(fs::read(got.join("notes.txt")).unwrap(), b"chapter one\n");

    // pull: a complete local store with the same snapshots.
    let pulled = s.reader("pulled", &s.g.endpoint());
    let out = expect_code(s.cmd(&pulled).args(["pull", "off", "--json"]), 0);
    assert_eq!(u(&out.json(), "snapshots"), 6, "{out}");
    assert_eq!(snapshots(&pulled), local);
    for (id, ws, _) in &local {
        let got = s.env.path(format!("pulled-{id}"));
        restore_local(&pulled, ws, id, &got);
        assert_trees_equal(&s.env.path(format!("local-{id}")), &got);
    }
    expect_code(
        bare_cmd()
            .arg("--store")
            .arg(&pulled)
            .args(["check", "--read-data"]),
        0,
    );
    let out = s.check_remote(&s.env.store, true);
    assert_eq!(out.code, 0, "check --remote --read-data\n{out}");
}

#[test]
fn a_garage_node_killed_mid_push_the_push_succeeds_and_restore_works_with_it_down() {
    let mut s = Setup::new();
    add_large_files(&s.env);

    // The store pushes through a proxy to node 0; node 2 is the victim.
    let proxy = Proxy::start(&s.g.endpoint());
    s.add_off(&proxy.endpoint());
    proxy.hold_after(proxy.sent() + 2 * MIB as u64);
    let push = {
        let mut c = s.cmd(&s.env.store);
        c.args(["push", "off", "--json"]);
        std::thread::spawn(move || run(&mut c))
    };
    // The push has sent 2 MiB of its uploads and waits for the rest.
    proxy.wait_held(RUN_TIMEOUT);
    assert!(!push.is_finished(), "the push is held mid-upload");
    s.g.kill(2);
    proxy.release();
    let out = push.join().expect("push thread");
    assert_eq!(out.code, 0, "push with node 2 killed mid-upload\n{out}");
    let v = out.json();
    assert!(u(&v["uploaded"], "size_bytes") > 12 * MIB as u64, "{v:#}");
    assert!(!s.g.is_running(2));

    // Node 2 still down: a fresh machine restores every snapshot through
    // node 0, pulls, and checks the remote's data.
    let local = snapshots(&s.env.store);
    let reader = s.reader("reader", &s.g.endpoint());
    for (id, ws, _) in &local {
        let want = s.env.path(format!("local-{id}"));
        restore_local(&s.env.store, ws, id, &want);
        let got = s.env.path(format!("remote-{id}"));
        let out = s.restore_remote(&reader, ws, &["--snapshot", id], &got);
        assert_eq!(out.code, 0, "restore --remote with node 2 down\n{out}");
        assert_trees_equal(&want, &got);
    }
    let out = s.check_remote(&reader, true);
    assert_eq!(
        out.code, 0,
        "check --remote --read-data with node 2 down\n{out}"
    );
    let pulled = s.reader("pulled", &s.g.endpoint());
    expect_code(s.cmd(&pulled).args(["pull", "off"]), 0);
    assert_eq!(snapshots(&pulled), local);

    // Back up, it catches up; the next push has nothing to send again.
    s.g.restart(2);
    let again = s.push("off");
    assert!(
        u(&again["uploaded"], "size_bytes") < MIB as u64,
        "{again:#}"
    );
}

/// Three large files more in alice/thesis, snapshotted a minute after the
/// second tick: 12 MiB to upload, more than a proxy gate lets through.
fn add_large_files(env: &TestEnv) -> i64 {
    let a = env.ws("alice", "thesis");
    for i in 0..3 {
        write_file(
            &a.join(format!("large-{i}.bin")),
            &random_bytes(20 + i, 4 * MIB),
            0o600,
            hour_ago_ns(),
        );
    }
    let t = tick_times()[1] + 60_000_000_000;
    snapshot_at(env, &["alice/thesis"], t);
    t
}

#[test]
fn a_push_killed_mid_upload_leaves_the_last_push_restorable_and_the_next_push_completes_it() {
    let s = Setup::new();
    let proxy = Proxy::start(&s.g.endpoint());
    s.add_off(&proxy.endpoint());
    s.push("off");
    let local = snapshots(&s.env.store);
    let (before_id, _, _) = local
        .iter()
        .filter(|(_, ws, _)| ws == "alice/thesis")
        .max_by_key(|(_, _, t)| *t)
        .unwrap()
        .clone();
    let want_before = s.env.path("local-before");
    restore_local(&s.env.store, "alice/thesis", &before_id, &want_before);

    let t = add_large_files(&s.env);
    proxy.hold_after(proxy.sent() + 2 * MIB as u64);
    let mut push = s
        .std_cmd_as(&s.env.store, &s.g.key)
        .args(["push", "off"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn push");
    proxy.wait_held(RUN_TIMEOUT);
    assert!(
        push.try_wait().unwrap().is_none(),
        "the push is held mid-upload"
    );
    push.kill().unwrap(); // SIGKILL
    push.wait().unwrap();
    proxy.release();

    // The remote is the last complete push: restorable and checking clean.
    let reader = s.reader("reader", &s.g.endpoint());
    let got = s.env.path("remote-before");
    let out = s.restore_remote(&reader, "alice/thesis", &["--at", "latest"], &got);
    assert_eq!(out.code, 0, "restore --remote after a killed push\n{out}");
    assert_trees_equal(&want_before, &got);
    let out = s.check_remote(&reader, true);
    assert_eq!(out.code, 0, "check --remote after a killed push\n{out}");

    // The next push completes it; with no grace period, nothing it does not
    // reference is left (the killed push's uploads are either used or gone).
    let mut c = s.cmd(&s.env.store);
    c.env("WSNAP_REMOTE_GRACE", "0s")
        .args(["push", "off", "--json"]);
    let v = expect_code(&mut c, 0).json();
    assert!(u(&v["uploaded"], "size_bytes") > 0, "{v:#}");
    let data = objects(&s.g)
        .into_iter()
        .filter(|(n, _)| n.starts_with(&format!("{PREFIX}/data/")))
        .count();
    assert_eq!(
        data,
        pack_files(&s.env.store).len(),
        "packs on the remote vs local"
    );
    let (after_id, _, _) = snapshots(&s.env.store)
        .into_iter()
        .find(|(_, ws, tt)| ws == "alice/thesis" && *tt == t)
        .expect("the new snapshot");
    let want = s.env.path("local-after");
    restore_local(&s.env.store, "alice/thesis", &after_id, &want);
    let got = s.env.path("remote-after");
    let out = s.restore_remote(&reader, "alice/thesis", &["--at", "latest"], &got);
    assert_eq!(out.code, 0, "{out}");
    assert_trees_equal(&want, &got);
}

#[test]
fn wrong_credentials_a_missing_bucket_and_an_unreachable_endpoint_are_clear_errors_and_touch_nothing(
) {
    let mut s = Setup::new();
    let mut proxy = Proxy::start(&s.g.endpoint());
    s.add_off(&proxy.endpoint());
    s.push("off");
    let before = local_state(&s.env);
    let bucket_before = objects(&s.g);
    let secret = s.g.key.secret.clone();

    // Runs `args` on the env's store with `key`; asserts exit 69, a message
    // with `words`, no secret in the output and no restore target made.
    let expect_unavailable = |s: &Setup, key: &S3Key, args: &[&str], words: &[&str], case: &str| {
        let to = s.env.path(format!("target-{case}"));
        let mut c = s.cmd_as(&s.env.store, key);
        c.args(args);
        if args.contains(&"restore") {
            c.arg("--to").arg(&to);
        }
        let out = run(&mut c);
        assert_eq!(out.code, EXIT_UNAVAILABLE, "{case}: {args:?}\n{out}");
        let err = out.stderr.to_lowercase();
        for w in words {
            assert!(
                err.contains(w),
                "{case}: {args:?} does not say {w:?}\n{out}"
            );
        }
        assert!(err.contains("off"), "{case}: the remote is named\n{out}");
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains(&secret),
                "{case}: the secret in the output\n{out}"
            );
            assert!(
                !text.contains(&key.secret),
                "{case}: the secret in the output\n{out}"
            );
        }
        assert!(!to.exists(), "{case}: a restore target was made");
    };
    let push: &[&str] = &["push", "off"];
    let restore: &[&str] = &[
        "restore",
        "--remote",
        "off",
        "alice/thesis",
        "--at",
        "latest",
    ];
    let check: &[&str] = &["check", "--remote", "off"];

    // Wrong credentials: a wrong secret, and a key the cluster never made.
    let wrong_secret = S3Key {
        id: s.g.key.id.clone(),
        secret: "0".repeat(64),
    };
    let unknown = S3Key {
        id: "GK0123456789abcdef01234567".to_string(),
        secret: "1".repeat(64),
    };
    for (case, key) in [("wrong-secret", &wrong_secret), ("unknown-key", &unknown)] {
        for args in [push, restore, check] {
            expect_unavailable(&s, key, args, &["credentials"], case);
        }
    }
    // A key with no rights on this bucket.
    let other = s.g.bucket_with_key("wsnap-other");
    for args in [push, restore, check] {
        expect_unavailable(&s, &other, args, &["credentials"], "no-rights");
    }

    // A bucket that does not exist: refused when added…
    let fresh = s.env.path("fresh");
    let out = s.add(
        &fresh,
        "off",
        "s3://wsnap-no-such-bucket/x",
        &s.g.endpoint(),
        None,
    );
    assert_eq!(
        out.code, EXIT_UNAVAILABLE,
        "remote add, no such bucket\n{out}"
    );
    assert!(out.stderr.to_lowercase().contains("bucket"), "{out}");
    // …and when it goes away later.
    let key = s.g.key.clone();
    s.g.create_bucket("wsnap-gone");
    s.g.allow("wsnap-gone", &key);
    let out = s.add(
        &s.env.store,
        "gone",
        "s3://wsnap-gone/x",
        &s.g.endpoint(),
        None,
    );
    assert_eq!(out.code, 0, "remote add gone\n{out}");
    s.g.delete_bucket("wsnap-gone", &key);
    let out = run(s.cmd(&s.env.store).args(["push", "gone"]));
    assert_eq!(
        out.code, EXIT_UNAVAILABLE,
        "push to a deleted bucket\n{out}"
    );
    let err = out.stderr.to_lowercase();
    assert!(err.contains("bucket") && err.contains("gone"), "{out}");

    // The endpoint vanishes.
    proxy.close();
    for args in [push, restore, check] {
        expect_unavailable(&s, &s.g.key, args, &["unreachable"], "unreachable");
    }

    // The local store is as it was and checks clean; the remote too.
    assert_eq!(local_state(&s.env), before);
    expect_code(s.env.cmd().args(["check", "--read-data"]), 0);
    assert_eq!(
        objects(&s.g),
        bucket_before,
        "the failed runs changed the bucket"
    );
    let reader = s.reader("reader", &s.g.endpoint());
    let out = s.check_remote(&reader, true);
    assert_eq!(out.code, 0, "the remote after the failures\n{out}");
}

#[test]
fn a_bit_flipped_in_the_bucket_is_detected_exit_3_and_nothing_is_restored() {
    let s = Setup::new();
    s.add_off(&s.g.endpoint());
    s.push("off");
    let all = objects(&s.g);
    let under = |dir: &str| -> Vec<(String, u64)> {
        let p = format!("{PREFIX}/{dir}/");
        all.iter()
            .filter(|(n, _)| n.starts_with(&p))
            .cloned()
            .collect()
    };
    let pack = under("data")
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .unwrap_or_else(|| panic!("no pack under {PREFIX}/data/: {all:?}"))
        .0;
    let image = under("catalog")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no catalog image under {PREFIX}/catalog/: {all:?}"))
        .0;
    let pointer = format!("{PREFIX}/latest");
    assert!(
        all.iter().any(|(n, _)| *n == pointer),
        "no {pointer}: {all:?}"
    );

    let raw = s.g.raw();
    for (what, name) in [("pack", &pack), ("image", &image), ("pointer", &pointer)] {
        let pristine = raw.get(name);
        raw.flip_bit(name, pristine.len() / 2, 4);
        let reader = s.reader(&format!("reader-{what}"), &s.g.endpoint());
        let to = s.env.path(format!("out-{what}"));
        let out = s.restore_remote(&reader, "alice/thesis", &["--at", "latest"], &to);
        assert_eq!(out.code, EXIT_DAMAGED, "{what} {name}: restore\n{out}");
        assert!(
            out.stderr.contains("tampered"),
            "{what}: the error says so\n{out}"
        );
        assert!(
            !to.exists() || fs::read_dir(&to).unwrap().next().is_none(),
            "{what}: something was restored from a tampered object"
        );
        let out = s.check_remote(&s.env.store, true);
        assert_eq!(
            out.code, EXIT_DAMAGED,
            "{what} {name}: check --remote\n{out}"
        );
        raw.put(name, &pristine);
    }

    // Put back, the remote restores; the local store never changed.
    let reader = s.reader("reader-ok", &s.g.endpoint());
    let to = s.env.path("out-ok");
    let out = s.restore_remote(&reader, "alice/thesis", &["--at", "latest"], &to);
    assert_eq!(out.code, 0, "{out}");
    assert_trees_equal(&s.env.ws("alice", "thesis"), &to);
    expect_code(s.env.cmd().args(["check", "--read-data"]), 0);
}
