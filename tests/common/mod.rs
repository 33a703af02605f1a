//! Shared helpers for wsnap's integration tests.
//!
//! Every test drives the real `wsnap` binary against real temporary
//! directories:
//!
//! - [`TestEnv`]: a temp dir holding a workspace root (`root/<user>/<project>`)
//!   and a store path (`store/`, created by the first `init` or `snapshot`);
//! - [`wsnap`] / [`TestEnv::cmd`]: the binary with `--store` set, and
//!   [`Out`] with the exit code and decoded output of a finished run;
//! - file builders that set content, mode and mtime (in ns);
//! - [`assert_trees_equal`]: compares two directory trees on everything a
//!   restore promises to keep (bytes, modes, mtimes, symlink targets, the
//!   exact set of entries including empty directories; owners when root);
//! - [`garage`]: a real 3-node Garage cluster (S3) for the remote tests.
#![allow(dead_code)]

pub mod fuse;
pub mod garage;
pub mod random_tree;
pub mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use assert_cmd::Command;
pub use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wsnap");

/// Generous upper bound for any single wsnap run: a hang fails the test
/// instead of blocking the suite.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Environment and commands
// ---------------------------------------------------------------------------

/// A temporary workspace root and store location.
pub struct TestEnv {
    /// Holds everything; removed on drop.
    pub dir: TempDir,
    /// Workspace root: `<root>/<user>/<project>/` are workspaces.
    pub root: PathBuf,
    /// Store directory (absent until `init` or the first `snapshot`).
    pub store: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::from_tempdir(
            tempfile::Builder::new()
                .prefix("wsnap-test-")
                .tempdir()
                .expect("create temp dir"),
        )
    }

    /// A test env under `parent` (e.g. `/tmp`, when another uid must be
    /// able to walk the whole path).
    pub fn new_in(parent: &Path) -> TestEnv {
        TestEnv::from_tempdir(
            tempfile::Builder::new()
                .prefix("wsnap-test-")
                .tempdir_in(parent)
                .expect("create temp dir"),
        )
    }

    fn from_tempdir(dir: TempDir) -> TestEnv {
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let store = dir.path().join("store");
        TestEnv { dir, root, store }
    }

    /// A path inside the temp dir (outside the root and the store).
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Create (if needed) and return the workspace directory `user/project`.
    pub fn ws(&self, user: &str, project: &str) -> PathBuf {
        let p = self.root.join(user).join(project);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// `wsnap --store STORE` ([`clean_env`], [`RUN_TIMEOUT`]).
    pub fn cmd(&self) -> Command {
        with_timeout(self.std_cmd())
    }

    /// The same as a `std::process::Command`, for tests that need
    /// `CommandExt` (uid, gid, pre_exec) before wrapping it with
    /// `Command::from_std`.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = bare_std_cmd();
        c.arg("--store").arg(&self.store);
        c
    }

    /// `wsnap --store STORE snapshot --root ROOT --json EXTRA...`; asserts
    /// exit 0 and returns the parsed report.
    pub fn snapshot(&self, extra: &[&str]) -> Value {
        let mut c = self.cmd();
        c.arg("snapshot")
            .arg("--root")
            .arg(&self.root)
            .arg("--json");
        c.args(extra);
        expect_code(&mut c, 0).json()
    }

    /// Snapshot the single workspace `user/project`; returns its report
    /// object (from `workspaces[0]`), asserting it committed.
    pub fn snapshot_ws(&self, ws: &str, extra: &[&str]) -> Value {
        let mut args = vec!["--workspace", ws];
        args.extend_from_slice(extra);
        let report = self.snapshot(&args);
        let w = report["workspaces"][0].clone();
        assert_eq!(w["status"], "ok", "snapshot of {ws}: {report:#}");
        w
    }

    /// `restore WS --snapshot ID --to TARGET [EXTRA...]`, asserting exit 0.
    pub fn restore(&self, ws: &str, id: &str, target: &Path, extra: &[&str]) -> Out {
        let mut c = self.cmd();
        c.args(["restore", ws, "--snapshot", id, "--to"])
            .arg(target)
            .args(extra);
        expect_code(&mut c, 0)
    }

    /// `restore WS --at latest --to DIR` into a fresh directory under the
    /// temp dir named `name`, asserting exit 0: that directory.
    pub fn restore_latest(&self, ws: &str, name: &str) -> PathBuf {
        let target = self.path(name);
        let mut c = self.cmd();
        c.args(["restore", ws, "--at", "latest", "--to"])
            .arg(&target);
        expect_code(&mut c, 0);
        target
    }

    /// `ls WS --snapshot ID [PATH] --json`, returning `entries`.
    pub fn ls(&self, ws: &str, id: &str, path: Option<&str>) -> Vec<Value> {
        let mut c = self.cmd();
        c.args(["ls", ws, "--snapshot", id, "--json"]);
        if let Some(p) = path {
            c.arg(p);
        }
        let v = expect_code(&mut c, 0).json();
        v["entries"].as_array().expect("entries array").clone()
    }
}

/// The uid and gid a test runs wsnap as when something must be unreadable
/// to it (root reads every file whatever its mode).
pub const NOBODY: u32 = 65534;

/// A copy of the wsnap binary that nobody can run wherever the checkout
/// lies: in its own mode-0755 directory under `/tmp` (a checkout under a
/// mode-0700 directory, as `mktemp -d` makes, denies nobody `target/`).
/// Made once per test process; left for the system's `/tmp` cleaning.
pub fn nobody_bin() -> &'static Path {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("wsnap-bin-")
            .tempdir_in("/tmp")
            .expect("temp dir for the binary")
            .keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("wsnap");
        fs::copy(BIN, &bin).expect("copy the wsnap binary");
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        // A process another test thread forked while the copy was open for
        // writing holds that descriptor until it execs: running the copy
        // meanwhile fails with ETXTBSY. Wait until it runs.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match std::process::Command::new(&bin).arg("--version").output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{}: {e}",
                        bin.display()
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("run {}: {e}", bin.display()),
                Ok(_) => break,
            }
        }
        bin
    })
}

impl TestEnv {
    /// `wsnap --store STORE` run as [`NOBODY`] from [`nobody_bin`], in the
    /// env's temp dir, with the environment of [`clean_env`]. The
    /// caller hands nobody what it must reach (e.g. [`chown_r`]).
    pub fn nobody_std_cmd(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut c = clean_env(std::process::Command::new(nobody_bin()));
        c.arg("--store")
            .arg(&self.store)
            .current_dir(self.dir.path())
            .uid(NOBODY)
            .gid(NOBODY);
        c
    }
}

/// Every environment variable wsnap reads: the `SCITEX_*` defaults and the
/// `WSNAP_*` test hooks (`src/failpoint.rs`) and overrides.
const WSNAP_ENV: &[&str] = &[
    "SCITEX_BACKUP_ROOT",
    "SCITEX_WORKSPACE_ROOT",
    "SCITEX_MAX_SNAPSHOTS",
    "WSNAP_CRASH_AT",
    "WSNAP_PAUSE_AT",
    "WSNAP_FLIP_AT",
    "WSNAP_GROUP_ROWS",
    "WSNAP_TEST_FS_MAGIC",
    "WSNAP_UNSAFE_ALLOW_NETWORK_FS",
    "WSNAP_REMOTE_GRACE",
    "WSNAP_REMOTE_CACHE_BYTES",
];

/// The one place a test's wsnap gets its environment: none of
/// [`WSNAP_ENV`] and no `AWS_*` (S3 credentials, region, endpoint, profile)
/// from the caller's (a developer's own settings or a crash point never
/// leak into a test), and `TZ=UTC`, so retention's local-time buckets are
/// the UTC ones. Callers set what they test on top.
pub fn clean_env(mut c: std::process::Command) -> std::process::Command {
    for var in WSNAP_ENV {
        c.env_remove(var);
    }
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("AWS_") {
            c.env_remove(var);
        }
    }
    c.env("TZ", "UTC");
    c
}

/// `wsnap` with no arguments, in the environment of [`clean_env`].
pub fn bare_std_cmd() -> std::process::Command {
    clean_env(std::process::Command::new(BIN))
}

pub fn bare_cmd() -> Command {
    with_timeout(bare_std_cmd())
}

/// Wrap a std command for assert_cmd, with the default [`RUN_TIMEOUT`]
/// (callers may set another with `.timeout(..)`).
pub fn with_timeout(c: std::process::Command) -> Command {
    let mut c = Command::from_std(c);
    c.timeout(RUN_TIMEOUT);
    c
}

/// A finished run.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run `cmd` and collect its output.
pub fn run(cmd: &mut Command) -> Out {
    let output: Output = cmd
        .output()
        .expect("run wsnap (timed out or failed to start)");
    Out {
        // A kill by signal (e.g. the timeout) has no code: report -1.
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Run `cmd` and assert its exit code.
#[track_caller]
pub fn expect_code(cmd: &mut Command, code: i32) -> Out {
    let out = run(cmd);
    assert_eq!(
        out.code, code,
        "expected exit code {code} from {cmd:?}\n{out}"
    );
    out
}

/// Field `key` of a JSON object as u64.
#[track_caller]
pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v:#}"))
}

/// Field `key` of a JSON object as &str.
#[track_caller]
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing or not a string in {v:#}"))
}

// ---------------------------------------------------------------------------
// Building files
// ---------------------------------------------------------------------------

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// One hour ago, with a non-zero nanosecond part.
pub fn hour_ago_ns() -> i64 {
    (now_ns() / 1_000_000_000 - 3600) * 1_000_000_000 + 123_456_789
}

/// Write `content` to `path` (creating parent directories).
pub fn write(path: &Path, content: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Write a file and set its mode and mtime.
pub fn write_file(path: &Path, content: &[u8], mode: u32, mtime_ns: i64) {
    write(path, content);
    set_mode(path, mode);
    set_mtime(path, mtime_ns);
}

/// Append `content` to an existing file.
pub fn append(path: &Path, content: &[u8]) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(content).unwrap();
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("no NUL in path")
}

/// Set atime and mtime of `path` (not following a symlink) in ns.
pub fn set_mtime(path: &Path, mtime_ns: i64) {
    let ts = libc::timespec {
        tv_sec: mtime_ns.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: mtime_ns.rem_euclid(1_000_000_000) as libc::c_long,
    };
    let times = [ts, ts];
    let c = cpath(path);
    // SAFETY: NUL-terminated path and a two-element timespec array.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        rc,
        0,
        "utimensat {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Create a symlink at `path` pointing to the raw bytes `target`.
pub fn symlink(target: &[u8], path: &Path, mtime_ns: i64) {
    std::os::unix::fs::symlink(OsStr::from_bytes(target), path)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
    set_mtime(path, mtime_ns);
}

/// Create directory `path` (and parents).
pub fn mkdir(path: &Path) {
    fs::create_dir_all(path).unwrap();
}

/// Create a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let c = cpath(path);
    // SAFETY: NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

/// chown without following symlinks.
pub fn lchown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("lchown {}: {e}", path.display()));
}

/// `chown -R uid:gid path` (symlinks themselves, never followed).
pub fn chown_r(path: &Path, uid: u32, gid: u32) {
    lchown(path, uid, gid);
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for e in fs::read_dir(path).unwrap() {
            chown_r(&e.unwrap().path(), uid, gid);
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Deterministic pseudo-random bytes (SplitMix64): incompressible, and the
/// same seed always gives the same bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `unit` repeated up to `len` bytes (compressible, self-similar content).
pub fn repeated(unit: &[u8], len: usize) -> Vec<u8> {
    assert!(!unit.is_empty());
    unit.iter().copied().cycle().take(len).collect()
}

/// Sleep until every entry under `dir` was last changed (ctime and mtime)
/// more than 2 s ago, plus a margin.
///
/// The stat cache refuses to reuse a file whose mtime or ctime lies within
/// 2 s before the *previous* snapshot started (git's racy-index rule). mtimes
/// can be set into the past, but ctime is always "now" when a file is
/// created, chmod-ed or touched and cannot be set. So a test asserting that
/// a second snapshot reads nothing must first wait until the tree's newest
/// ctime is more than 2 s old, then take the first snapshot. This waits on
/// the files' own timestamps (not a fixed sleep after some other step), so
/// it is reliable however slow the machine is.
pub fn wait_out_racy_window(dir: &Path) {
    let newest = newest_change_ns(dir);
    let ready = newest + 2_300_000_000;
    loop {
        let now = now_ns();
        if now >= ready {
            return;
        }
        std::thread::sleep(Duration::from_nanos((ready - now) as u64));
    }
}

fn newest_change_ns(path: &Path) -> i64 {
    let m = fs::symlink_metadata(path).unwrap();
    let mut newest = (m.ctime() * 1_000_000_000 + m.ctime_nsec())
        .max(m.mtime() * 1_000_000_000 + m.mtime_nsec());
    if m.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            newest = newest.max(newest_change_ns(&e.unwrap().path()));
        }
    }
    newest
}

/// Copy a tree preserving bytes, modes, mtimes, symlinks (and owners when
/// root): a saved copy of a workspace to compare a later restore with.
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let from = e.path();
        let to = dst.join(e.file_name());
        let m = fs::symlink_metadata(&from).unwrap();
        let ft = m.file_type();
        if ft.is_dir() {
            copy_tree(&from, &to);
        } else if ft.is_symlink() {
            let target = fs::read_link(&from).unwrap();
            std::os::unix::fs::symlink(&target, &to).unwrap();
        } else if ft.is_file() {
            fs::copy(&from, &to).unwrap();
        } else {
            continue; // FIFOs etc. are not snapshotted
        }
        if is_root() {
            lchown(&to, m.uid(), m.gid());
        }
        if !ft.is_symlink() {
            set_mode(&to, m.mode() & 0o7777);
        }
        set_mtime(&to, m.mtime() * 1_000_000_000 + m.mtime_nsec());
    }
}

/// Total size of the store's pack files (`STORE/packs/xx/*.pack`).
pub fn pack_bytes(store: &Path) -> u64 {
    let mut total = 0;
    let packs = store.join("packs");
    for sub in fs::read_dir(&packs).unwrap() {
        let sub = sub.unwrap().path();
        if !sub.is_dir() {
            continue;
        }
        for f in fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            if f.extension() == Some(OsStr::new("pack")) {
                total += fs::metadata(&f).unwrap().len();
            }
        }
    }
    total
}

/// Every pack file of the store.
pub fn pack_files(store: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in fs::read_dir(store.join("packs")).unwrap() {
        let sub = sub.unwrap().path();
        if sub.is_dir() {
            for f in fs::read_dir(&sub).unwrap() {
                out.push(f.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Comparing trees
// ---------------------------------------------------------------------------

/// What we compare of one entry.
#[derive(Clone, PartialEq, Eq)]
pub enum Kind {
    File { len: u64, blake3: String },
    Dir,
    Symlink { target: Vec<u8> },
    Other,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// `st_mode & 0o7777` (symlinks: whatever lstat says, 0777 on Linux).
    pub mode: u32,
    pub mtime_ns: i64,
    /// Owners are only compared when running as root (restore keeps them
    /// only then).
    pub owner: Option<(u32, u32)>,
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::File { len, blake3 } => write!(f, "file len={len} blake3={}", &blake3[..16])?,
            Kind::Dir => write!(f, "dir")?,
            Kind::Symlink { target } => write!(f, "symlink -> {}", target.escape_ascii())?,
            Kind::Other => write!(f, "special")?,
        }
        write!(f, " mode={:04o} mtime_ns={}", self.mode, self.mtime_ns)?;
        if let Some((uid, gid)) = self.owner {
            write!(f, " owner={uid}:{gid}")?;
        }
        Ok(())
    }
}

/// Metadata of one path (lstat: symlinks are not followed).
pub fn meta(path: &Path) -> Meta {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let ft = m.file_type();
    let kind = if ft.is_file() {
        let bytes = fs::read(path).unwrap();
        Kind::File {
            len: bytes.len() as u64,
            blake3: blake3::hash(&bytes).to_hex().to_string(),
        }
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink {
            target: fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec(),
        }
    } else {
        Kind::Other
    };
    Meta {
        kind,
        mode: m.mode() & 0o7777,
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        owner: is_root().then(|| (m.uid(), m.gid())),
    }
}

/// Every entry below `root` (not `root` itself), keyed by its relative path
/// in bytes.
pub fn listing(root: &Path) -> BTreeMap<Vec<u8>, Meta> {
    fn walk(dir: &Path, rel: &[u8], out: &mut BTreeMap<Vec<u8>, Meta>) {
        for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let e = e.unwrap();
            let mut r = rel.to_vec();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(e.file_name().as_bytes());
            let p = e.path();
            let m = meta(&p);
            let is_dir = m.kind == Kind::Dir;
            out.insert(r.clone(), m);
            if is_dir {
                walk(&p, &r, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, b"", &mut out);
    out
}

/// Relative paths of every entry below `root`, as lossy strings (for
/// simple membership checks).
pub fn paths(root: &Path) -> Vec<String> {
    listing(root)
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// Assert that the trees below `a` and `b` hold the same entries with the
/// same bytes, modes, mtimes (ns), symlink targets (and owners when root).
/// The two roots' own metadata is not compared.
#[track_caller]
pub fn assert_trees_equal(a: &Path, b: &Path) {
    let la = listing(a);
    let lb = listing(b);
    if la == lb {
        return;
    }
    let mut report = String::new();
    for (k, ma) in &la {
        match lb.get(k) {
            None => report += &format!("  only in a: {} ({ma:?})\n", k.escape_ascii()),
            Some(mb) if mb != ma => {
                report += &format!(
                    "  differs:   {}\n      a: {ma:?}\n      b: {mb:?}\n",
                    k.escape_ascii()
                )
            }
            Some(_) => {}
        }
    }
    for (k, mb) in &lb {
        if !la.contains_key(k) {
            report += &format!("  only in b: {} ({mb:?})\n", k.escape_ascii());
        }
    }
    panic!(
        "trees differ\n  a = {}\n  b = {}\n{report}",
        a.display(),
        b.display()
    );
}

/// Assert that two single entries (not their children) have equal metadata.
#[track_caller]
pub fn assert_entries_equal(a: &Path, b: &Path) {
    assert_eq!(meta(a), meta(b), "{} vs {}", a.display(), b.display());
}

// ---------------------------------------------------------------------------
// Prune, forget and crash tests
// ---------------------------------------------------------------------------

/// A UTC instant in ns.
pub fn utc_ns(y: i32, mo: u32, d: u32, h: u32, mi: u32, sec: u32) -> i64 {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(y, mo, d, h, mi, sec)
        .single()
        .expect("valid UTC time")
        .timestamp_nanos_opt()
        .expect("in range")
}

/// `ns` as RFC 3339 in UTC (`2026-03-02T10:20:00Z`), for `--time`.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .expect("in range")
    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `snapshot --root ROOT --json --time TIME [--workspace W]...` (every
/// workspace when `workspaces` is empty), asserting exit 0: the report.
#[track_caller]
pub fn snapshot_at(env: &TestEnv, workspaces: &[&str], time_ns: i64) -> Value {
    let mut c = env.cmd();
    c.arg("snapshot")
        .arg("--root")
        .arg(&env.root)
        .arg("--json")
        .arg("--time")
        .arg(rfc3339(time_ns));
    for w in workspaces {
        c.args(["--workspace", w]);
    }
    expect_code(&mut c, 0).json()
}

/// 64-byte windows of `bytes` at several offsets (start, end, middle, odd):
/// what must not be found in any store file after a purge.
pub fn windows_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    let n = bytes.len();
    [
        0,
        1,
        4096 + 13,
        n / 3,
        n / 2 + 7,
        2 * n / 3 + 101,
        n - 4000,
        n - 64,
    ]
    .iter()
    .map(|&o| bytes[o..o + 64].to_vec())
    .collect()
}

/// `check --json [--read-data]` of `env`'s store; the caller asserts the
/// exit code (0 clean, 1 damage found).
pub fn check(env: &TestEnv, read_data: bool) -> Out {
    let mut c = env.cmd();
    c.args(["check", "--json"]);
    if read_data {
        c.arg("--read-data");
    }
    run(&mut c)
}

/// Three workspaces with a bit of everything a restore keeps: in
/// `alice/thesis` a 3 MiB random `big.bin` (`random_bytes(1, 3 MiB)`, 0640),
/// a 0600 text file, an empty directory and a symlink; in `bob/data` a
/// nested 200 KiB CSV and an executable; `carol/empty` with nothing.
pub fn varied_workspaces(env: &TestEnv) {
    let a = env.ws("alice", "thesis");
    write_file(
        &a.join("big.bin"),
        &random_bytes(1, 3 * MIB),
        0o640,
        hour_ago_ns(),
    );
    write_file(&a.join("notes.txt"), b"chapter one\n", 0o600, hour_ago_ns());
    mkdir(&a.join("empty"));
    symlink(b"notes.txt", &a.join("link"), hour_ago_ns());
    let b = env.ws("bob", "data");
    write_file(
        &b.join("sub/deeper/x.csv"),
        &repeated(b"1,2,3\n", 200 * KIB),
        0o644,
        hour_ago_ns(),
    );
    write_file(
        &b.join("script.sh"),
        b"#!/bin/sh\necho hi\n",
        0o755,
        hour_ago_ns(),
    );
    env.ws("carol", "empty");
}

/// Delete a store's catalog (and its WAL and shared-memory files), as a
/// lost disk block or an admin's mistake would.
pub fn remove_catalog(store: &Path) {
    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = fs::remove_file(store.join(f));
    }
}

/// `repair --json` of `env`'s store, asserting its exit code: the report.
#[track_caller]
pub fn repair(env: &TestEnv, code: i32) -> Value {
    let mut c = env.cmd();
    c.args(["repair", "--json"]);
    expect_code(&mut c, code).json()
}

/// `list --json`: every snapshot of the store, as JSON objects.
pub fn list_json(env: &TestEnv) -> Vec<Value> {
    let mut c = env.cmd();
    c.args(["list", "--json"]);
    snapshots_of(&expect_code(&mut c, 0).json())
}

/// The `snapshots` array of a `list --json` object.
#[track_caller]
pub fn snapshots_of(list: &Value) -> Vec<Value> {
    list["snapshots"]
        .as_array()
        .unwrap_or_else(|| panic!("list --json has no snapshots array: {list:#}"))
        .clone()
}

/// One row of `list --json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub user: String,
    pub project: String,
    pub damaged: bool,
}

/// Every snapshot `list --json` shows, in its order; the views below are
/// what tests compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing(pub Vec<Listed>);

/// `list --json` of `env`'s store (asserting exit 0).
pub fn listed(env: &TestEnv) -> Listing {
    Listing(
        list_json(env)
            .iter()
            .map(|v| Listed {
                id: s(v, "id").to_string(),
                user: s(v, "user").to_string(),
                project: s(v, "project").to_string(),
                damaged: v["damaged"].as_bool().expect("damaged flag"),
            })
            .collect(),
    )
}

impl Listing {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Ids of one workspace (`user/project`) or of all.
    pub fn ids(&self, ws: Option<&str>) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|l| ws.is_none_or(|w| format!("{}/{}", l.user, l.project) == w))
            .map(|l| l.id.clone())
            .collect()
    }

    /// `(id, damaged)` in list order.
    pub fn flags(&self) -> Vec<(String, bool)> {
        self.0.iter().map(|l| (l.id.clone(), l.damaged)).collect()
    }

    /// `(user, project)` in list order.
    pub fn workspaces(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|l| (l.user.clone(), l.project.clone()))
            .collect()
    }

    /// id → (`user/project`, damaged).
    pub fn by_id(&self) -> BTreeMap<String, (String, bool)> {
        self.0
            .iter()
            .map(|l| {
                (
                    l.id.clone(),
                    (format!("{}/{}", l.user, l.project), l.damaged),
                )
            })
            .collect()
    }
}

/// `(id, damaged)` of every listed snapshot.
pub fn damaged_flags(env: &TestEnv) -> Vec<(String, bool)> {
    listed(env).flags()
}

/// `user/project` of a snapshot object (from `list --json` or a report).
pub fn ws_of(snap: &Value) -> String {
    format!("{}/{}", s(snap, "user"), s(snap, "project"))
}

/// Every regular file below `dir` (recursively), sorted.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("read_dir {}: {e}", d.display())) {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p);
            } else if m.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// True when `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// For every regular file below `dir` and every needle it contains: a line
/// `path holds needle #i`. Empty when no file holds any needle.
pub fn files_containing(dir: &Path, needles: &[Vec<u8>]) -> Vec<String> {
    let mut hits = Vec::new();
    for f in all_files(dir) {
        let bytes = fs::read(&f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        for (i, n) in needles.iter().enumerate() {
            if contains_bytes(&bytes, n) {
                hits.push(format!("{} holds needle #{i}", f.display()));
            }
        }
    }
    hits
}

/// Name, size and BLAKE3 of every pack file: equal before and after means
/// the packs were not touched.
pub fn pack_fingerprint(store: &Path) -> Vec<(PathBuf, u64, String)> {
    pack_files(store)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (
                p,
                bytes.len() as u64,
                blake3::hash(&bytes).to_hex().to_string(),
            )
        })
        .collect()
}

/// Every file below `store` (lock files, catalog and its `-wal`, packs,
/// journals…) with its BLAKE3: equal before and after means the command
/// wrote nothing. Left out: `catalog.sqlite-shm`, SQLite's shared-memory
/// index, where every reader (`list` too) marks what it reads; it holds
/// nothing persistent (SQLite rebuilds it).
pub fn store_files(store: &Path) -> BTreeMap<PathBuf, String> {
    all_files(store)
        .into_iter()
        .filter(|p| p.file_name() != Some(OsStr::new("catalog.sqlite-shm")))
        .map(|p| {
            let hash = blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string();
            (p, hash)
        })
        .collect()
}

/// Hold an exclusive `flock` on `path` (as `flock STORE/lock cp -a …`
/// does while an admin copies the store) until the file is dropped.
pub fn hold_flock(path: &Path) -> fs::File {
    use std::os::fd::AsRawFd;
    let f = fs::OpenOptions::new().read(true).open(path).unwrap();
    // SAFETY: flock on an open file descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock {}", path.display());
    f
}

/// A small tmpfs mounted for a test (a file system to fill), unmounted on
/// drop. Mounting needs root with CAP_SYS_ADMIN: without it the test fails
/// saying so, it never passes silently.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    #[track_caller]
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "cannot mount a tmpfs at {} (needs root with CAP_SYS_ADMIN): this test needs a small file system to fill; run the tests as root, as CI does",
            path.display()
        );
        Tmpfs(path.to_path_buf())
    }

    /// Grow (or shrink) it in place.
    #[track_caller]
    pub fn resize(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "remount tmpfs {} to {size}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// bob/p with `big.bin` and `keep.txt` in the first snapshot's pack,
/// then `later.txt` in a second snapshot; the first pack is lost and
/// `repair` (exit 1) marks the snapshots that reach it damaged. Returns the
/// second snapshot's id (damaged) and a copy of the workspace as it is.
pub fn repaired_with_a_lost_file(env: &TestEnv) -> (String, PathBuf) {
    let b = env.ws("bob", "p");
    write(&b.join("big.bin"), &random_bytes(2, 300 * KIB));
    write(&b.join("keep.txt"), b"bob's notes");
    env.snapshot_ws("bob/p", &[]);
    let lost_pack = pack_files(&env.store);
    assert_eq!(lost_pack.len(), 1);
    write(&b.join("later.txt"), b"added later");
    wait_out_racy_window(&env.root);
    let damaged = s(&env.snapshot_ws("bob/p", &[]), "id").to_string();
    fs::remove_file(&lost_pack[0]).unwrap();
    remove_catalog(&env.store);
    let out = expect_code(env.cmd().args(["repair", "--json"]), 1);
    assert_eq!(out.json()["lost"].as_array().unwrap().len(), 1, "{out}");
    let copy = env.path("bob-copy");
    copy_tree(&b, &copy);
    (damaged, copy)
}

/// A sparse file of `size` bytes whose only data is `pieces` blocks of
/// 1 MiB of `random_bytes` (seeds 1..=pieces), spread evenly: a large size
/// that is cheap to make, with content that does not dedup (its zeros do,
/// into a few chunks). Returns the file's BLAKE3 for comparing a restore.
pub fn sparse_with_random_blocks(path: &Path, size: u64, pieces: u64) -> blake3::Hash {
    use std::os::unix::fs::FileExt;
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let step = size / pieces;
    for i in 0..pieces {
        f.write_all_at(&random_bytes(i + 1, MIB), i * step + 4321)
            .unwrap();
    }
    drop(f);
    file_hash(path)
}

/// BLAKE3 of a file's bytes, read in blocks (for large files).
pub fn file_hash(path: &Path) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path).unwrap()).unwrap();
    h.finalize()
}

/// `stats --json`'s count of distinct chunks in the store.
pub fn chunk_count(env: &TestEnv) -> u64 {
    let mut c = env.cmd();
    c.args(["stats", "--json"]);
    u(&expect_code(&mut c, 0).json(), "chunks")
}
