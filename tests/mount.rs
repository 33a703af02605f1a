//! `wsnap mount`: real FUSE mounts of real stores (as root; a machine
//! without /dev/fuse or fusermount3 fails these tests, see
//! `common::fuse::require_fuse`). Every mount is unmounted by its guard.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fuse::{is_mounted, require_fuse, Mounted};
use common::*;

const T0: (i32, u32, u32, u32, u32, u32) = (2025, 11, 15, 9, 0, 0);

fn t0() -> i64 {
    utc_ns(T0.0, T0.1, T0.2, T0.3, T0.4, T0.5)
}

/// `YYYYmmdd_HHMMSS` and `YYYY-mm-ddTHH:MM:SS` of `ns` (tests run wsnap
/// with TZ=UTC).
fn stamps(ns: i64) -> (String, String) {
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    (
        t.format("%Y%m%d_%H%M%S").to_string(),
        t.format("%Y-%m-%dT%H:%M:%S").to_string(),
    )
}

fn bytes_path(p: &Path, rel: &[u8]) -> PathBuf {
    p.join(OsStr::from_bytes(rel))
}

/// Poll `f` until it holds (up to 10 s): listings the kernel cached for
/// the top directories' 1 s lifetime.
#[track_caller]
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "not within 10 s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn names(dir: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    v.sort();
    v
}

fn errno(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn every_mounted_snapshot_equals_its_restore() {
    require_fuse();
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    random_tree::build(&ws, 16, 120, true);
    let times = [t0(), t0() + 300_000_000_000, t0() + 600_000_000_000];
    for (i, t) in times.iter().enumerate() {
        if i > 0 {
            random_tree::mutate(&ws, i as u64);
        }
        snapshot_at(&env, &["alice/thesis"], *t);
    }
    let m = Mounted::start(&env, "mnt", &[]);
    let snaps = list_json(&env);
    assert_eq!(snaps.len(), 3);
    for (i, snap) in snaps.iter().enumerate() {
        let id = s(snap, "id");
        let restored = env.path(format!("restored-{i}"));
        env.restore("alice/thesis", id, &restored, &[]);
        let (old, iso) = stamps(snap["time_ns"].as_i64().unwrap());
        let by_old = m.path(format!("snapshots/alice_thesis_{old}"));
        let by_ws = m.path(format!("workspaces/alice/thesis/{iso}"));
        assert_trees_equal(&restored, &by_old);
        assert_trees_equal(&restored, &by_ws);
    }
    let (_, newest) = stamps(times[2]);
    let latest = m.path("workspaces/alice/thesis/latest");
    assert_eq!(fs::read_link(&latest).unwrap(), Path::new(&newest));
    assert_trees_equal(&ws, &latest.join("."));

    // Inode numbers stay the same when the kernel forgets and asks again.
    let f = all_files(&m.path(format!("workspaces/alice/thesis/{newest}")))[0].clone();
    let ino = fs::metadata(&f).unwrap().ino();
    fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
    assert_eq!(fs::metadata(&f).unwrap().ino(), ino);
    let st = rustix::fs::statvfs(&m.dir).unwrap();
    assert!(st.f_blocks > 0, "statfs reports the store's size");
    assert_eq!(st.f_namemax, 255);
}

#[test]
fn old_names_keep_underscores_and_raw_bytes() {
    require_fuse();
    let env = TestEnv::new();
    let odd_user = OsStr::from_bytes(b"b\xffob");
    let odd_project = OsStr::from_bytes(b"p\xfe_x");
    for (u, p) in [
        (OsStr::new("al_ice"), OsStr::new("pro_j")),
        (OsStr::new("al"), OsStr::new("ice_pro_j")),
        (odd_user, odd_project),
    ] {
        let dir = env.root.join(u).join(p);
        fs::create_dir_all(&dir).unwrap();
        write_file(&dir.join("who"), dir.as_os_str().as_bytes(), 0o644, t0());
    }
    snapshot_at(&env, &[], t0());
    let m = Mounted::start(&env, "mnt", &[]);
    let (old, iso) = stamps(t0());
    // `al_ice`+`pro_j` and `al`+`ice_pro_j` share the old name: the first by
    // workspace order keeps it, the other gets `.2`.
    let mut want: Vec<Vec<u8>> = vec![
        format!("al_ice_pro_j_{old}").into_bytes(),
        format!("al_ice_pro_j_{old}.2").into_bytes(),
        [&b"b\xffob_p\xfe_x_"[..], old.as_bytes()].concat(),
    ];
    want.sort();
    assert_eq!(names(&m.path("snapshots")), want);
    let who = |p: &Path| fs::read(p.join("who")).unwrap();
    let al = env.root.join("al/ice_pro_j");
    let al_ice = env.root.join("al_ice/pro_j");
    assert_eq!(
        who(&m.path(format!("snapshots/al_ice_pro_j_{old}"))),
        al.as_os_str().as_bytes()
    );
    assert_eq!(
        who(&m.path(format!("snapshots/al_ice_pro_j_{old}.2"))),
        al_ice.as_os_str().as_bytes()
    );
    let odd = bytes_path(&m.path("snapshots"), &want[2]);
    assert_trees_equal(&env.root.join(odd_user).join(odd_project), &odd);
    // The unambiguous view.
    let wsdir = m.path("workspaces").join(odd_user).join(odd_project);
    assert_eq!(names(&wsdir), [iso.as_bytes().to_vec(), b"latest".to_vec()]);
    assert_eq!(
        names(&m.path("workspaces")),
        [b"al".to_vec(), b"al_ice".to_vec(), b"b\xffob".to_vec()]
    );
    // The old notes' glob.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ls -d {}/snapshots/al_ice_pro_j_*",
            m.dir.display()
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

#[test]
fn random_reads_of_a_large_file_with_concurrent_readers() {
    require_fuse();
    let env = TestEnv::new();
    let ws = env.ws("big", "file");
    let len = 256 * MIB;
    let data = random_bytes(2026, len);
    write_file(&ws.join("big.bin"), &data, 0o644, t0());
    snapshot_at(&env, &["big/file"], t0());
    let m = Mounted::start(&env, "mnt", &["--cache-size", "64MiB"]);
    let path = m.path("workspaces/big/file/latest/big.bin");
    assert_eq!(fs::metadata(&path).unwrap().len(), len as u64);
    std::thread::scope(|sc| {
        for reader in 0..8u64 {
            let (path, data) = (&path, &data);
            sc.spawn(move || {
                let f = fs::File::open(path).unwrap();
                let mut rng = random_tree::Rng(reader * 7919 + 1);
                for _ in 0..125 {
                    let off = rng.below(len as u64) as usize;
                    let want = (1 + rng.below(256 * 1024) as usize).min(len - off);
                    let mut buf = vec![0u8; want];
                    let mut got = 0;
                    while got < want {
                        let n = f.read_at(&mut buf[got..], (off + got) as u64).unwrap();
                        assert!(n > 0, "short read at {}", off + got);
                        got += n;
                    }
                    assert!(
                        buf == data[off..off + want],
                        "reader {reader}: bytes differ at {off}+{want}"
                    );
                }
            });
        }
    });
    // And the last byte, and past the end.
    let f = fs::File::open(&path).unwrap();
    let mut b = [0u8; 8];
    assert_eq!(f.read_at(&mut b, len as u64 - 1).unwrap(), 1);
    assert_eq!(b[0], data[len - 1]);
    assert_eq!(f.read_at(&mut b, len as u64).unwrap(), 0);
}

#[test]
fn a_snapshot_pruned_while_mounted_vanishes_and_open_files_stay_readable() {
    require_fuse();
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    let old_data = random_bytes(1, 8 * MIB);
    write_file(&ws.join("old.bin"), &old_data, 0o644, t0());
    snapshot_at(&env, &["alice/thesis"], t0());
    fs::remove_file(ws.join("old.bin")).unwrap();
    write_file(&ws.join("new.txt"), b"new", 0o644, t0());
    let t1 = t0() + 300_000_000_000;
    snapshot_at(&env, &["alice/thesis"], t1);
    let m = Mounted::start(&env, "mnt", &[]);
    let (old, old_iso) = stamps(t0());
    let old_dir = m.path(format!("snapshots/alice_thesis_{old}"));
    let mut f = fs::File::open(old_dir.join("old.bin")).unwrap();
    let mut head = vec![0u8; MIB];
    f.read_exact(&mut head).unwrap();
    assert!(head == old_data[..MIB]);

    expect_code(env.cmd().args(["prune", "--keep-last", "1"]), 0);
    let wsdir = m.path("workspaces/alice/thesis");
    eventually("the pruned snapshot leaves workspaces/", || {
        !names(&wsdir).contains(&old_iso.clone().into_bytes())
    });
    eventually("the pruned snapshot leaves snapshots/", || {
        names(&m.path("snapshots")).len() == 1
    });
    eventually("no stale name lookup either", || !old_dir.exists());
    // The open file reads to its end: its packs are held by its view.
    let mut rest = Vec::new();
    f.read_to_end(&mut rest).unwrap();
    assert!(
        rest == old_data[MIB..],
        "the open file of a pruned snapshot reads whole"
    );
    drop(f);
    // Once nothing is open and the mount idles, gc may delete those packs.
    std::thread::sleep(Duration::from_secs(3));
    expect_code(env.cmd().args(["prune", "--keep-last", "1"]), 0);
    let c = check(&env, true);
    assert_eq!(c.code, 0, "{c}");
}

#[test]
fn a_damaged_chunk_fails_only_its_file() {
    require_fuse();
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    let bad = random_bytes(11, 200_000);
    let good = random_bytes(12, 200_000);
    write_file(&ws.join("bad.bin"), &bad, 0o644, t0());
    write_file(&ws.join("good.bin"), &good, 0o644, t0());
    snapshot_at(&env, &["alice/thesis"], t0());
    // Random bytes are stored raw: flip one inside bad.bin's data.
    let needle = &bad[100_000..100_064];
    let mut hit = false;
    for p in pack_files(&env.store) {
        let mut bytes = fs::read(&p).unwrap();
        if let Some(at) = bytes.windows(64).position(|w| w == needle) {
            bytes[at + 10] ^= 0xff;
            fs::write(&p, &bytes).unwrap();
            hit = true;
        }
    }
    assert!(hit, "bad.bin's bytes are in a pack");
    let m = Mounted::start(&env, "mnt", &[]);
    let dir = m.path("workspaces/alice/thesis/latest");
    assert_eq!(fs::read(dir.join("good.bin")).unwrap(), good);
    let e = fs::read(dir.join("bad.bin")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    assert_eq!(
        fs::read(dir.join("good.bin")).unwrap(),
        good,
        "still readable after"
    );
    let log = m.log_text();
    assert!(
        log.contains("bad.bin") && log.contains("unreadable"),
        "a log line names it:\n{log}"
    );
}

#[test]
fn writes_fail_with_erofs() {
    require_fuse();
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    write_file(&ws.join("f"), b"data", 0o644, t0());
    mkdir(&ws.join("d"));
    snapshot_at(&env, &["alice/thesis"], t0());
    let m = Mounted::start(&env, "mnt", &[]);
    let dir = m.path("workspaces/alice/thesis/latest");
    let erofs = Some(libc::EROFS);
    assert_eq!(
        errno(fs::OpenOptions::new().write(true).open(dir.join("f"))),
        erofs
    );
    assert_eq!(
        errno(fs::OpenOptions::new().append(true).open(dir.join("f"))),
        erofs
    );
    assert_eq!(errno(fs::write(dir.join("new"), b"x")), erofs);
    assert_eq!(errno(fs::create_dir(dir.join("nd"))), erofs);
    assert_eq!(errno(fs::remove_file(dir.join("f"))), erofs);
    assert_eq!(errno(fs::remove_dir(dir.join("d"))), erofs);
    assert_eq!(errno(fs::rename(dir.join("f"), dir.join("g"))), erofs);
    assert_eq!(errno(std::os::unix::fs::symlink("f", dir.join("l"))), erofs);
    assert_eq!(
        errno(fs::set_permissions(
            dir.join("f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600)
        )),
        erofs
    );
    assert_eq!(errno(fs::create_dir(m.path("snapshots/x"))), erofs);
    assert_eq!(fs::read(dir.join("f")).unwrap(), b"data");
}

#[test]
fn new_snapshots_appear_without_remounting() {
    require_fuse();
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    write_file(&ws.join("f"), b"one", 0o644, t0());
    snapshot_at(&env, &["alice/thesis"], t0());
    let m = Mounted::start(&env, "mnt", &[]);
    let wsdir = m.path("workspaces/alice/thesis");
    assert_eq!(names(&wsdir).len(), 2);
    write_file(&ws.join("f"), b"two", 0o644, t0());
    let t1 = t0() + 300_000_000_000;
    snapshot_at(&env, &["alice/thesis"], t1);
    let (old, iso) = stamps(t1);
    eventually("the new snapshot is listed", || {
        names(&wsdir).contains(&iso.clone().into_bytes())
    });
    assert_eq!(
        fs::read(m.path(format!("snapshots/alice_thesis_{old}/f"))).unwrap(),
        b"two"
    );
    eventually("latest follows", || {
        fs::read_link(wsdir.join("latest")).unwrap() == Path::new(&iso)
    });
    // A workspace that is new too.
    write_file(&env.ws("bob", "p").join("g"), b"bob", 0o644, t1);
    snapshot_at(&env, &["bob/p"], t1);
    eventually("a new workspace is listed", || {
        m.path("workspaces/bob/p/latest/g").exists()
    });
}

#[test]
fn signals_and_umount_unmount_cleanly() {
    require_fuse();
    let env = TestEnv::new();
    write_file(&env.ws("alice", "thesis").join("f"), b"x", 0o644, t0());
    snapshot_at(&env, &["alice/thesis"], t0());
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut m = Mounted::start(&env, "mnt", &[]);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(m.pid() as i32, sig) };
        let st = m.wait_exit();
        assert!(st.success(), "signal {sig}: {st}\n{}", m.log_text());
        assert!(!is_mounted(&m.dir), "signal {sig} unmounts");
    }
    let mut m = Mounted::start(&env, "mnt", &[]);
    expect_code(env.cmd().arg("umount").arg(&m.dir), 0);
    assert!(m.wait_exit().success());
    assert!(!is_mounted(&m.dir));
    let mut m = Mounted::start(&env, "mnt", &[]);
    assert!(std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(&m.dir)
        .status()
        .unwrap()
        .success());
    assert!(m.wait_exit().success());

    // Without --foreground: the mount goes to the background and the
    // command returns once it is in place.
    let dir = env.path("bg");
    fs::create_dir(&dir).unwrap();
    let out = expect_code(env.cmd().arg("mount").arg(&dir), 0);
    let guard = BgGuard(dir.clone());
    assert!(is_mounted(&dir), "{out}");
    assert!(dir.join("workspaces/alice/thesis/latest/f").exists());
    expect_code(env.cmd().arg("umount").arg(&dir), 0);
    assert!(!is_mounted(&dir));
    drop(guard);
}

/// Unmounts a background mount if the test failed before it did.
struct BgGuard(PathBuf);

impl Drop for BgGuard {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let _ = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg(&self.0)
                .status();
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

#[test]
fn unusable_mount_points_and_missing_fuse_are_clear_errors() {
    require_fuse();
    let env = TestEnv::new();
    write_file(&env.ws("alice", "thesis").join("f"), b"x", 0o644, t0());
    snapshot_at(&env, &["alice/thesis"], t0());
    let out = expect_code(
        env.cmd()
            .arg("mount")
            .arg(env.path("absent"))
            .arg("--foreground"),
        2,
    );
    assert!(out.stderr.contains("does not exist"), "{out}");
    write_file(&env.path("a-file"), b"", 0o644, t0());
    let out = expect_code(
        env.cmd()
            .arg("mount")
            .arg(env.path("a-file"))
            .arg("--foreground"),
        2,
    );
    assert!(out.stderr.contains("not a directory"), "{out}");
    let m = Mounted::start(&env, "mnt", &[]);
    let out = expect_code(env.cmd().arg("mount").arg(&m.dir).arg("--foreground"), 2);
    assert!(out.stderr.contains("busy"), "{out}");
    let out = expect_code(env.cmd().arg("umount").arg(env.path("absent")), 2);
    assert!(out.stderr.contains("absent"), "{out}");
    let out = expect_code(env.cmd().arg("umount").arg(env.dir.path()), 2);
    assert!(out.stderr.contains("not a wsnap mount"), "{out}");
    let out = expect_code(
        env.cmd()
            .args(["mount", "--cache-size", "lots"])
            .arg(env.path("x")),
        2,
    );
    assert!(out.stderr.contains("--cache-size"), "{out}");
    drop(m);

    // A user without fusermount3 on PATH: exit 3, saying what to install.
    let env = TestEnv::new_in(Path::new("/tmp"));
    write_file(&env.ws("alice", "thesis").join("f"), b"x", 0o644, t0());
    snapshot_at(&env, &["alice/thesis"], t0());
    chown_r(env.dir.path(), NOBODY, NOBODY);
    fs::create_dir(env.path("mnt")).unwrap();
    let mut c = env.nobody_std_cmd();
    c.env("PATH", "/nonexistent")
        .arg("mount")
        .arg(env.path("mnt"))
        .arg("--foreground");
    let out = run(&mut with_timeout(c));
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("fuse3"), "says what to install: {out}");
}

/// `snapshots/` is listed workspace by workspace, over as many `readdir`
/// calls as the kernel's buffer needs (issue 18: it no longer holds every
/// name): 40 workspaces × 5 snapshots, names of 40-odd bytes, so well
/// over one 4 KiB buffer; every snapshot once, each found by lookup.
#[test]
fn snapshots_is_listed_whole_over_many_readdir_calls() {
    require_fuse();
    let env = TestEnv::new();
    let mut want = Vec::new();
    for w in 0..40 {
        let dir = env.ws(&format!("user{w:02}_long_name"), &format!("project{w:02}"));
        write_file(&dir.join("f"), format!("{w}").as_bytes(), 0o644, t0());
    }
    for k in 0..5 {
        let t = t0() + k * 300_000_000_000;
        snapshot_at(&env, &[], t);
        for w in 0..40 {
            let (old, _) = stamps(t);
            want.push(format!("user{w:02}_long_name_project{w:02}_{old}").into_bytes());
        }
    }
    want.sort();
    let m = Mounted::start(&env, "mnt", &[]);
    let got = names(&m.path("snapshots"));
    assert_eq!(got.len(), 200);
    assert_eq!(got, want);
    for n in [&want[0], &want[117], &want[199]] {
        let p = bytes_path(&m.path("snapshots"), n);
        assert!(!fs::read(p.join("f")).unwrap().is_empty());
    }
}
