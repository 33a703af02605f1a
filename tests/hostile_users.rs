//! A workspace owner racing root: symlinks swapped in while `snapshot`
//! walks a workspace or `restore` writes into a target the user owns, and
//! trees nested deeper than `PATH_MAX` allows a path to name. Each race is
//! a bounded, seeded loop of a few seconds; the attacker runs as a thread of
//! this (root) process, which can do everything a user can and more.
//! See *Hostile users* in `docs/RELIABILITY.md`.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use wsnap::dirfd::{Dir, Kind};

fn require_root(why: &str) {
    assert!(
        is_root(),
        "this test must run as root ({why}); run the suite as root, as CI does"
    );
}

/// A tiny seeded generator for the attackers' timing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pause(&mut self) {
        std::thread::sleep(Duration::from_micros(self.next() % 300));
    }
}

/// `renameat2(a, b, RENAME_EXCHANGE)`: swap two names atomically.
fn exchange(a: &Path, b: &Path) -> bool {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let (ca, cb) = (c(a), c(b));
    // SAFETY: two NUL-terminated paths.
    unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        ) == 0
    }
}

/// Runs `attack` in a loop on another thread until dropped; counts rounds.
struct Attacker {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Attacker {
    fn start(seed: u64, mut attack: impl FnMut(&mut Rng) + Send + 'static) -> Attacker {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let (s, r) = (stop.clone(), rounds.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        let thread = std::thread::spawn(move || {
            let mut rng = Rng(seed);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                attack(&mut rng);
                r.fetch_add(1, Ordering::Relaxed);
            }
        });
        Attacker {
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.rounds.load(Ordering::Relaxed)
    }
}

/// Every path below `root` (never following symlinks), with what it is.
fn inventory(root: &Path) -> BTreeMap<PathBuf, (u32, u32, u32, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        out.insert(
            p.clone(),
            (m.mode(), m.uid(), m.gid(), m.mtime(), m.mtime_nsec()),
        );
        if m.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out
}

fn allow_others_to_walk(env: &TestEnv) {
    fs::set_permissions(env.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn snapshot_never_follows_a_directory_swapped_for_a_symlink_mid_walk() {
    require_root("the secret directory is root-only, and root must not read it for a user");
    let env = TestEnv::new();
    allow_others_to_walk(&env);
    // Root's secrets, outside every workspace.
    let secret = env.path("secret");
    mkdir(&secret);
    for i in 0..200 {
        write(&secret.join(format!("SECRET-{i:03}")), b"root only");
    }
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    // The user's workspace: `sub` and `link -> secret`, swapped all the time.
    let ws = env.ws("mallory", "p");
    let sub = ws.join("sub");
    mkdir(&sub);
    for i in 0..100 {
        write(&sub.join(format!("ok-{i:03}")), format!("{i}").as_bytes());
    }
    write(&ws.join("top.txt"), b"top");
    std::os::unix::fs::symlink(&secret, ws.join("link")).unwrap();
    chown_r(&env.root.join("mallory"), 65534, 65534);

    let (a, b) = (sub.clone(), ws.join("link"));
    let attacker = Attacker::start(12, move |rng| {
        assert!(exchange(&a, &b), "renameat2 RENAME_EXCHANGE failed");
        rng.pause();
    });
    let mut ids = Vec::new();
    for _ in 0..20 {
        let out = run(env
            .cmd()
            .args(["snapshot", "--workspace", "mallory/p", "--json", "--root"])
            .arg(&env.root));
        assert!(out.code == 0 || out.code == 1, "{out}");
        let report = out.json();
        let w = &report["workspaces"][0];
        assert_eq!(w["status"], "ok", "{report:#}");
        ids.push(s(w, "id").to_string());
    }
    let swaps = attacker.stop();
    assert!(swaps > 20, "the attacker swapped only {swaps} times");

    // No snapshot holds anything from outside the workspace: `sub` and
    // `link` are each either the real directory (its own files) or the
    // symlink, recorded as a symlink.
    let mut shapes = std::collections::BTreeSet::new();
    for (n, id) in ids.iter().enumerate() {
        let target = env.path(format!("restored-{n}"));
        env.restore("mallory/p", id, &target, &[]);
        for name in ["sub", "link"] {
            let p = target.join(name);
            let Ok(m) = fs::symlink_metadata(&p) else {
                shapes.insert(format!("{name}: skipped"));
                continue;
            };
            if m.file_type().is_symlink() {
                assert_eq!(fs::read_link(&p).unwrap(), secret, "snapshot {id}");
                shapes.insert(format!("{name}: symlink"));
            } else {
                assert!(m.is_dir(), "snapshot {id}: {name} is {m:?}");
                for e in fs::read_dir(&p).unwrap() {
                    let e = e.unwrap().file_name();
                    assert!(
                        e.as_bytes().starts_with(b"ok-"),
                        "snapshot {id} holds {e:?} from outside the workspace"
                    );
                }
                shapes.insert(format!("{name}: dir"));
            }
        }
        assert!(target.join("top.txt").exists());
    }
    // Not a race that never happened: both names were seen both ways.
    assert!(shapes.len() >= 3, "the swap was never seen: {shapes:?}");
}

#[test]
fn restore_never_writes_or_chmods_through_a_symlink_planted_mid_restore() {
    require_root("the outside directory is root-owned and the target is a user's");
    let env = TestEnv::new();
    allow_others_to_walk(&env);
    let ws = env.ws("u", "p");
    let names: Vec<String> = (0..40).map(|i| format!("d{i:02}")).collect();
    for n in &names {
        for j in 0..8 {
            write(&ws.join(n).join(format!("f{j}")), b"data");
        }
        write(&ws.join(n).join("inner/deep.txt"), b"deep");
        set_mode(&ws.join(n), 0o777);
    }
    let id = s(&env.snapshot_ws("u/p", &[]), "id").to_string();

    // A root-owned 0755 directory the user would love to own.
    let outside = env.path("outside");
    mkdir(&outside);
    write(&outside.join("existing"), b"root's");
    set_mode(&outside, 0o755);
    set_mtime(&outside, 1_000_000_000_000_000_000);
    let before = inventory(&outside);

    for (round, overwrite) in [false, false, false, true, true, true].iter().enumerate() {
        let target = env.path(format!("tgt-{round}"));
        mkdir(&target);
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        chown_r(&target, 65534, 65534);
        if *overwrite {
            // A user-owned target with content: restore replaces entries.
            write(&target.join("d00/old"), b"old");
            chown_r(&target, 65534, 65534);
        }
        // The user keeps replacing each freshly made `tgt/dNN` with a
        // symlink to `outside` (moving the real one aside).
        let (t, o, ns) = (target.clone(), outside.clone(), names.clone());
        let attacker = Attacker::start(round as u64, move |rng| {
            let n = &ns[(rng.next() % ns.len() as u64) as usize];
            let (slot, aside) = (t.join(n), t.join(format!(".aside-{}", rng.next())));
            if fs::rename(&slot, &aside).is_ok() {
                let _ = std::os::unix::fs::symlink(&o, &slot);
            }
            rng.pause();
        });
        let mut c = env.cmd();
        c.args(["restore", "u/p", "--snapshot", &id, "--to"])
            .arg(&target);
        if *overwrite {
            c.arg("--overwrite");
        }
        let out = run(&mut c);
        let swaps = attacker.stop();
        assert!(swaps > 0);
        // Either restored, or stopped with a write error naming the swap.
        assert!(out.code == 0 || out.code == 4, "{out}");
        if out.code == 4 {
            assert!(out.stderr.contains("replaced while restoring"), "{out}");
        }
        assert_eq!(
            inventory(&outside),
            before,
            "round {round}: something outside the target changed"
        );
    }
}

/// `depth` nested directories `d/d/d/...`, each holding `f` (its level as
/// text): created relative to directory descriptors, as no path can name
/// the deep ones.
fn make_deep(top: &Path, depth: usize) {
    let mut dir = Dir::open_path(top, false).unwrap();
    for level in 0..depth {
        let mut f = dir.create_file(b"f", 0o644).unwrap();
        std::io::Write::write_all(&mut f, level.to_string().as_bytes()).unwrap();
        dir.create_dir(b"d", 0o755).unwrap();
        dir = dir.open_dir(b"d").unwrap();
    }
}

/// Remove a `d/d/...` chain under `top` level by level, without recursion
/// (the temp dir's recursive removal would overflow the test's stack).
fn remove_deep(top: &Path) {
    let dir = Dir::open_path(top, false).unwrap();
    while dir.stat_at(b"d").is_ok() {
        let sub = dir.open_dir(b"d").unwrap();
        if sub.stat_at(b"d").is_ok() {
            rustix::fs::renameat(&sub, "d", &dir, "next").unwrap();
        }
        for n in sub.names().unwrap() {
            sub.remove_file(&n).unwrap();
        }
        rustix::fs::unlinkat(&dir, "d", rustix::fs::AtFlags::REMOVEDIR).unwrap();
        if dir.stat_at(b"next").is_ok() {
            rustix::fs::renameat(&dir, "next", &dir, "d").unwrap();
        }
    }
}

/// Walk two `d/d/...` chains side by side and assert they hold the same
/// names, kinds, modes, mtimes and file contents at every level; returns
/// the depth.
fn assert_deep_equal(a: &Path, b: &Path) -> usize {
    let (mut da, mut db) = (
        Dir::open_path(a, false).unwrap(),
        Dir::open_path(b, false).unwrap(),
    );
    let mut depth = 0;
    loop {
        let (mut na, mut nb) = (da.names().unwrap(), db.names().unwrap());
        na.sort();
        nb.sort();
        assert_eq!(na, nb, "level {depth}");
        for n in &na {
            let (sa, sb) = (da.stat_at(n).unwrap(), db.stat_at(n).unwrap());
            assert_eq!(
                (sa.kind(), sa.perm(), sa.mtime_ns),
                (sb.kind(), sb.perm(), sb.mtime_ns),
                "level {depth} {:?}",
                OsStr::from_bytes(n)
            );
            if sa.kind() == Kind::File {
                let read = |d: &Dir| std::io::read_to_string(d.open_file(n).unwrap()).unwrap();
                assert_eq!(read(&da), read(&db), "level {depth}");
            }
        }
        if !na.contains(&b"d".to_vec()) {
            return depth;
        }
        da = da.open_dir(b"d").unwrap();
        db = db.open_dir(b"d").unwrap();
        depth += 1;
    }
}

#[test]
fn a_tree_nested_20000_deep_snapshots_and_restores_identically() {
    const DEPTH: usize = 20_000;
    let env = TestEnv::new();
    let ws = env.ws("u", "deep");
    make_deep(&ws, DEPTH);
    // Out of the racy window (see `reuse.rs`), so the second snapshot may
    // reuse everything: `wait_out_racy_window` walks by path, which cannot
    // reach this deep.
    std::thread::sleep(Duration::from_millis(2_300));
    let w = env.snapshot_ws("u/deep", &[]);
    assert_eq!(u(&w, "files"), DEPTH as u64);
    assert_eq!(u(&w, "skipped"), 0, "{w:#}");
    let id = s(&w, "id").to_string();
    // Under a long target path: no PATH_MAX anywhere below it.
    let target = env
        .path("t".repeat(100))
        .join("x".repeat(60))
        .join("restored");
    assert!(target.as_os_str().len() > 150);
    env.restore("u/deep", &id, &target, &[]);
    assert_eq!(assert_deep_equal(&ws, &target), DEPTH);
    // An unchanged second snapshot reuses everything.
    let again = env.snapshot_ws("u/deep", &[]);
    assert_eq!(u(&again, "read_bytes"), 0, "{again:#}");
    remove_deep(&ws);
    remove_deep(&target);
}

#[test]
fn symlinked_or_file_users_and_projects_are_reported_never_followed() {
    let env = TestEnv::new();
    write(&env.ws("alice", "real").join("a.txt"), b"a");
    // A user entry that is a symlink to /etc, a project that is a symlink,
    // and a user entry that is a file.
    std::os::unix::fs::symlink("/etc", env.root.join("u2link")).unwrap();
    std::os::unix::fs::symlink(env.ws("alice", "real"), env.root.join("alice/plink")).unwrap();
    write(&env.root.join("stray.txt"), b"not a user");

    let out = run(env.cmd().args(["snapshot", "--root"]).arg(&env.root));
    assert_eq!(out.code, 1, "{out}");
    for (name, what) in [
        ("u2link", "is a symlink, not followed"),
        ("alice/plink", "is a symlink, not followed"),
        ("stray.txt", "is not a directory"),
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("skipped") && l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}: {out}"));
        assert!(line.contains(what), "{line}");
    }
    assert!(
        out.stdout.contains("1 ok, 0 failed, 3 entries skipped"),
        "{out}"
    );
    let list = run(env.cmd().args(["list", "--json"]));
    let all: Vec<String> = list.json()["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{}/{}", s(v, "user"), s(v, "project")))
        .collect();
    assert!(all.iter().all(|w| w == "alice/real"), "{all:?}");

    // `status` counts them (WARNING), and names them (`--min-free 0`: the
    // level must not depend on the free space of the machine's disk).
    let st = run(env
        .cmd()
        .args(["status", "--min-free", "0", "--root"])
        .arg(&env.root));
    assert_eq!(st.code, 1, "{st}");
    assert!(
        st.stdout.contains("3 entries under the workspace root"),
        "{st}"
    );
    assert!(st.stdout.contains("u2link"), "{st}");

    // `--workspace` through a symlinked user: refused, not followed.
    let out = run(env
        .cmd()
        .args(["snapshot", "--workspace", "u2link/ssl", "--json", "--root"])
        .arg(&env.root));
    assert_eq!(out.code, 1, "{out}");
    let w = &out.json()["workspaces"][0];
    assert_eq!(w["status"], "failed");
    assert!(
        s(w, "error").contains("u2link is a symlink, not followed"),
        "{w:#}"
    );
    let list = run(env.cmd().args(["list", "--json"]));
    assert!(!list.stdout.contains("u2link"), "{list}");
}
