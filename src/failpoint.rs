//! Crash points for crash tests.
//!
//! `WSNAP_CRASH_AT=name` (or `name:n`) makes the process kill itself with
//! SIGKILL the first (n-th) time execution reaches [`crash_point`]`(name)`:
//! no destructor, no flush, exactly as a power cut or the OOM killer would
//! leave things. Points sit between the durability steps of the snapshot
//! writer and of gc; `tests/crash.rs` walks through them. Unset (always, in
//! production), a point costs one cached check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let v = std::env::var("WSNAP_CRASH_AT").ok()?;
        match v.rsplit_once(':') {
            Some((name, n)) => Some((name.to_string(), n.parse().unwrap_or(1))),
            None => Some((v, 1)),
        }
    })
}

/// Die here if the environment asks for it.
pub fn crash_point(name: &str) {
    if let Some((want, n)) = target() {
        if want == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            // SAFETY: plain syscalls on our own pid.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

/// Wait here if the environment asks for it: `WSNAP_PAUSE_AT=name:FILE`
/// creates `FILE.reached` when execution reaches `pause_point(name)` and
/// waits until `FILE` is removed. Lets tests interleave two processes at an
/// exact point (a restore paused while a prune runs).
pub fn pause_point(name: &str) {
    let Ok(v) = std::env::var("WSNAP_PAUSE_AT") else {
        return;
    };
    let Some((want, file)) = v.split_once(':') else {
        return;
    };
    if want != name {
        return;
    }
    let file = std::path::Path::new(file);
    let _ = std::fs::write(format!("{}.reached", file.display()), b"");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Damage here if the environment asks for it: `WSNAP_FLIP_AT=name` flips
/// one bit in the middle of `file` when execution reaches
/// `flip_point(name)`, standing for a bad disk, controller or page cache
/// between a write and its read-back.
pub fn flip_point(name: &str, file: &std::fs::File) {
    use std::os::unix::fs::FileExt;
    if std::env::var("WSNAP_FLIP_AT").ok().as_deref() != Some(name) {
        return;
    }
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let at = len / 2;
    let mut b = [0u8; 1];
    if file.read_exact_at(&mut b, at).is_ok() {
        b[0] ^= 0x04;
        let _ = file.write_all_at(&b, at);
    }
}

/// Test hook: `WSNAP_GROUP_ROWS=n` writes a run's group commit every `n`
/// snapshots instead of every [`crate::snapshot`] default (1,000), so crash
/// tests can stop a run between two groups.
pub fn group_rows() -> Option<usize> {
    std::env::var("WSNAP_GROUP_ROWS")
        .ok()?
        .parse()
        .ok()
        .filter(|&n| n > 0)
}

/// Test hook: `WSNAP_TEST_FS_MAGIC=0x6969` makes [`crate::fscheck`] see
/// that `statfs` magic for the store's file system (no NFS server or FUSE
/// mount is needed to test the refusal and its override).
pub fn fs_magic() -> Option<u32> {
    let v = std::env::var("WSNAP_TEST_FS_MAGIC").ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}
