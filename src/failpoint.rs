//! Crash, pause and flip points for tests.
//!
//! `WSNAP_CRASH_AT=name` (or `name:n`) makes the process kill itself with
//! SIGKILL the first (n-th) time execution reaches [`crash_point`]`(name)`:
//! no destructor, no flush, exactly as a power cut or the OOM killer would
//! leave things. Points sit between the durability steps of the snapshot
//! writer, gc, rewrite and repair; `tests/crash.rs` and `tests/repair.rs` walk
//! through them. Unset (always, in production), a point costs one cached
//! check.
//!
//! Every point is listed once in [`POINTS`]. A unit test below checks that
//! the calls in `src/` and the list agree, and `tests/failpoints.rs` fails
//! when a point has no test that stops the binary there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What a point does when the environment names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`crash_point`], `WSNAP_CRASH_AT`.
    Crash,
    /// [`pause_point`], `WSNAP_PAUSE_AT`.
    Pause,
    /// [`flip_point`], `WSNAP_FLIP_AT`.
    Flip,
}

/// One named point and what a stop there stands for.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub name: &'static str,
    pub kind: Kind,
    /// What is durable when execution reaches the point.
    pub state: &'static str,
}

const fn p(name: &'static str, kind: Kind, state: &'static str) -> Point {
    Point { name, kind, state }
}

/// Every point, once.
pub const POINTS: &[Point] = &[
    // The snapshot writer (`snapshot/writer.rs`, `pack/writer.rs`).
    p(
        "pack.before_read_back",
        Kind::Flip,
        "a sealed pack, fsynced, not yet read back",
    ),
    p(
        "pack.before_rename",
        Kind::Crash,
        "a sealed pack in tmp/, not yet renamed",
    ),
    p(
        "snapshot.pack_sealed",
        Kind::Crash,
        "a pack renamed into packs/, not indexed",
    ),
    p(
        "snapshot.pack_indexed",
        Kind::Crash,
        "a pack indexed in the uncommitted catalog",
    ),
    p(
        "snapshot.journaled",
        Kind::Crash,
        "the journal records durable, catalog uncommitted",
    ),
    p(
        "snapshot.before_commit",
        Kind::Crash,
        "just before the catalog commit",
    ),
    p("snapshot.committed", Kind::Crash, "the catalog committed"),
    p(
        "snapshot.file_read",
        Kind::Pause,
        "a workspace file read, its chunks not yet stored",
    ),
    p(
        "journal.reconcile_trimmed",
        Kind::Crash,
        "a crashed run's journal trimmed, not renamed",
    ),
    // gc (`prune`, `forget`).
    p(
        "gc.collected",
        Kind::Crash,
        "the plan made, nothing written",
    ),
    p(
        "gc.repack_sealed",
        Kind::Crash,
        "a repacked pack renamed into packs/",
    ),
    p(
        "gc.before_commit",
        Kind::Crash,
        "just before gc's catalog commit",
    ),
    p(
        "gc.committed",
        Kind::Crash,
        "gc's catalog committed, journals not rewritten",
    ),
    p(
        "gc.journal_rewritten",
        Kind::Crash,
        "the journals rewritten, old packs still there",
    ),
    p("gc.old_pack_removed", Kind::Crash, "an old pack deleted"),
    p("gc.orphan_removed", Kind::Crash, "an orphan pack deleted"),
    p(
        "forget.damaged_rewritten",
        Kind::Crash,
        "a damaged pack's records moved aside",
    ),
    // rewrite (then gc's points, then these).
    p(
        "rewrite.trees_sealed",
        Kind::Crash,
        "the rewritten trees sealed in a new pack, nothing journaled",
    ),
    p(
        "rewrite.journaled",
        Kind::Crash,
        "the new snapshots' records durable, catalog uncommitted",
    ),
    p(
        "rewrite.collected",
        Kind::Crash,
        "the new snapshots committed and the old data purged, the journal still .open",
    ),
    // repair.
    p(
        "repair.packs_indexed",
        Kind::Crash,
        "the new catalog has every pack's blobs",
    ),
    p(
        "repair.catalog_built",
        Kind::Crash,
        "the new catalog complete, not yet in place",
    ),
    p(
        "repair.old_catalog_kept",
        Kind::Crash,
        "the old catalog moved aside",
    ),
    p(
        "repair.catalog_replaced",
        Kind::Crash,
        "the new catalog in place, old journals still there",
    ),
    // push (`remote/push.rs`).
    p(
        "push.packs_uploaded",
        Kind::Crash,
        "the packs the local catalog listed are on the remote, no image taken",
    ),
    p(
        "push.image_uploaded",
        Kind::Crash,
        "packs, journals and the image on the remote, the pointer still the old one",
    ),
    p(
        "push.pointer_written",
        Kind::Crash,
        "the new pointer on the remote, unreferenced objects not yet deleted",
    ),
    p(
        "push.deleted",
        Kind::Crash,
        "the objects whose grace period was over deleted",
    ),
    // Readers (to interleave them with a writer).
    p(
        "restore.pinned",
        Kind::Pause,
        "a restore holding its catalog view",
    ),
    p("ls.selected", Kind::Pause, "ls holding its catalog view"),
    p(
        "check.packs_listed",
        Kind::Pause,
        "check having listed the pack files",
    ),
];

fn registered(name: &str, kind: Kind) -> bool {
    POINTS.iter().any(|p| p.name == name && p.kind == kind)
}

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
    debug_assert!(registered(name, Kind::Crash), "unlisted crash point {name}");
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
    debug_assert!(registered(name, Kind::Pause), "unlisted pause point {name}");
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
    debug_assert!(registered(name, Kind::Flip), "unlisted flip point {name}");
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

/// Test hook: `WSNAP_CHECK_RECORDS_HELD=n` makes `check` hold at most
/// about `n` journal records at a time (default 1,000,000), so tests can
/// check a small store in many passes over ranges of the id space.
pub fn check_records_held() -> Option<u64> {
    std::env::var("WSNAP_CHECK_RECORDS_HELD")
        .ok()?
        .parse()
        .ok()
        .filter(|&n| n > 0)
}

/// Test hook: `WSNAP_TEST_FS_MAGIC=0x6969` makes `fscheck.rs` see
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(name, kind)` of every `crash_point("…")`, `pause_point("…")` and
    /// `flip_point("…", …)` call in `src/`.
    fn calls() -> BTreeSet<(String, &'static str)> {
        fn walk(dir: &std::path::Path, out: &mut BTreeSet<(String, &'static str)>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|x| x == "rs")
                    && !path.ends_with("failpoint.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (call, kind) in [
                        ("crash_point(\"", "crash"),
                        ("pause_point(\"", "pause"),
                        ("flip_point(\"", "flip"),
                    ] {
                        for (at, _) in text.match_indices(call) {
                            let rest = &text[at + call.len()..];
                            let name = &rest[..rest.find('"').unwrap()];
                            out.insert((name.to_string(), kind));
                        }
                    }
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut out,
        );
        out
    }

    #[test]
    fn every_call_is_listed_and_every_listed_point_is_called() {
        let listed: BTreeSet<(String, &str)> = POINTS
            .iter()
            .map(|p| {
                let kind = match p.kind {
                    Kind::Crash => "crash",
                    Kind::Pause => "pause",
                    Kind::Flip => "flip",
                };
                (p.name.to_string(), kind)
            })
            .collect();
        assert_eq!(calls(), listed);
        let names: BTreeSet<&str> = POINTS.iter().map(|p| p.name).collect();
        assert_eq!(names.len(), POINTS.len(), "a name is listed twice");
    }
}
