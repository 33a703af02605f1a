//! The domain model: plain values every layer passes around (a snapshot's
//! row and counters, a store's fixed parameters, a run's record, a skipped
//! entry) and the snapshot id computed from them. No I/O here: the catalog
//! stores these values, journals record them, the snapshot engine makes
//! them and the commands read them, so each of those imports this module
//! and none has to import another for a type.

use crate::chunker::{ChunkerParams, LargeFileTiers};
use crate::codec::Writer as Enc;
use crate::id::{Id, SnapshotId, TreeId};
use crate::workspace::WorkspaceName;

/// Per-store parameters, fixed at `init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreParams {
    /// Cuts every file below the first of `large_files`' tiers.
    pub chunker: ChunkerParams,
    /// Larger chunks for larger files (catalog version 4); empty for stores
    /// made before, which cut every file with `chunker`.
    pub large_files: LargeFileTiers,
    pub zstd_level: i32,
    pub pack_target_bytes: u64,
}

impl StoreParams {
    pub const DEFAULT: StoreParams = StoreParams {
        chunker: ChunkerParams::DEFAULT,
        large_files: LargeFileTiers::DEFAULT,
        // Level 1: on chunks of 8–128 KiB it keeps all but ~0.5 % of level
        // 3's ratio for ~30 % less CPU per new byte (docs/BENCHMARKS.md).
        zstd_level: 1,
        pack_target_bytes: 32 * 1024 * 1024,
    };

    /// The chunker parameters for a file of `size` bytes (its size as
    /// `fstat` gave it before it is read).
    pub fn chunker_for(&self, size: u64) -> ChunkerParams {
        self.large_files.params_for(self.chunker, size)
    }
}

/// Counters kept per snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub size_bytes: u64,
    pub bytes_added: u64,
    pub bytes_read: u64,
    pub skipped: u64,
    pub special: u64,
    pub excluded: u64,
}

/// A committed snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRow {
    pub id: SnapshotId,
    pub workspace: WorkspaceName,
    pub time_ns: i64,
    pub started_ns: i64,
    pub finished_ns: i64,
    pub root: TreeId,
    pub stats: SnapshotStats,
    /// `repair` found blobs of this snapshot missing: it restores only in part.
    pub damaged: bool,
}

/// One finished `snapshot` run, for monitoring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRow {
    pub started_ns: i64,
    pub finished_ns: i64,
    pub workspaces_ok: u64,
    pub workspaces_failed: u64,
    pub entries_skipped: u64,
    /// What failed the run besides its workspaces (an empty root, many
    /// workspaces gone at once); `None` otherwise.
    pub error: Option<String>,
    /// The run covered every workspace under the root (not a run of named
    /// workspaces, not an import): which root, as the catalog's
    /// `full_run_key` names it. Not a column: the newest such run's id is
    /// the value of that `meta` key (see docs/FORMAT.md).
    pub covered_root: Option<String>,
}

/// An entry that could not be stored as it is (unreadable, vanished,
/// changed while read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// Path relative to the workspace root.
    pub path: Vec<u8>,
    pub reason: String,
    /// True when the entry is missing from the snapshot; false when it was
    /// stored but is worth a warning (changed while being read).
    pub missing: bool,
}

/// The id of a snapshot: BLAKE3 of its workspace, times and root tree (see
/// *Snapshot id* in `docs/FORMAT.md`). Journal records are checked against
/// it; tools that write snapshot rows and journals themselves (the
/// `catalog_scale` bench's generator) compute it here.
pub fn snapshot_id(
    workspace: &WorkspaceName,
    time_ns: i64,
    started_ns: i64,
    root: &TreeId,
) -> SnapshotId {
    let mut e = Enc::default();
    e.bytes(b"wsnap snapshot v1\0");
    e.u32(workspace.user.len() as u32);
    e.bytes(&workspace.user);
    e.u32(workspace.project.len() as u32);
    e.bytes(&workspace.project);
    e.i64(time_ns);
    e.i64(started_ns);
    e.id(&root.0);
    SnapshotId(Id::of(&e.buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(user: &[u8], project: &[u8]) -> WorkspaceName {
        WorkspaceName {
            user: user.to_vec(),
            project: project.to_vec(),
        }
    }

    #[test]
    fn snapshot_id_depends_on_every_identifying_field() {
        let root = TreeId(Id::of(b"root"));
        let base = snapshot_id(&ws(b"alice", b"thesis"), 10, 9, &root);
        assert_eq!(base, snapshot_id(&ws(b"alice", b"thesis"), 10, 9, &root));
        for other in [
            snapshot_id(&ws(b"bob", b"thesis"), 10, 9, &root),
            snapshot_id(&ws(b"alice", b"notes"), 10, 9, &root),
            snapshot_id(&ws(b"alicet", b"hesis"), 10, 9, &root),
            snapshot_id(&ws(b"alice", b"thesis"), 11, 9, &root),
            snapshot_id(&ws(b"alice", b"thesis"), 10, 8, &root),
            snapshot_id(&ws(b"alice", b"thesis"), 10, 9, &TreeId(Id::of(b"other"))),
        ] {
            assert_ne!(base, other);
        }
    }
}
