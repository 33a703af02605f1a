//! Fixtures for the catalog's unit tests: a real SQLite catalog in a
//! temporary directory, filled through the catalog's own API (packs as the
//! pack writer reports them, snapshots as the snapshot writer commits them),
//! so a test reads what a run would have left.

use tempfile::TempDir;

use super::{Catalog, PendingTree};
use crate::id::{Id, PackId, TreeId};
use crate::model::{snapshot_id, SnapshotRow, SnapshotStats, StoreParams};
use crate::pack::format::{Compression, RecordHeader};
use crate::pack::{BlobKind, SealedPack};
use crate::workspace::WorkspaceName;

/// A fresh writable catalog (created as `init` does) in a temporary
/// directory that lives as long as the returned guard.
pub(super) fn new_catalog() -> (TempDir, Catalog) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("catalog.sqlite");
    Catalog::create(&path, &StoreParams::DEFAULT, 1).expect("create catalog");
    let cat = Catalog::open(&path, true).expect("open catalog");
    (dir, cat)
}

pub(super) fn ws(user: &str, project: &str) -> WorkspaceName {
    WorkspaceName {
        user: user.as_bytes().to_vec(),
        project: project.as_bytes().to_vec(),
    }
}

/// The id of a made-up blob named `name`.
pub(super) fn blob(name: &str) -> Id {
    Id::of(name.as_bytes())
}

/// A sealed pack holding `blobs`, 100 bytes of payload each, one after the
/// other from offset 16.
pub(super) fn sealed(blobs: &[(Id, BlobKind)]) -> SealedPack {
    let mut pack_name = Vec::new();
    let records = blobs
        .iter()
        .enumerate()
        .map(|(i, (id, kind))| {
            pack_name.extend_from_slice(&id.0);
            let header = RecordHeader {
                kind: *kind,
                compression: Compression::None,
                raw_len: 100,
                stored_len: 100,
                id: *id,
            };
            (16 + 200 * i as u64, header)
        })
        .collect::<Vec<_>>();
    SealedPack {
        id: PackId(Id::of(&pack_name)),
        size_bytes: 16 + 200 * blobs.len() as u64,
        records,
    }
}

/// Index a pack holding `chunks` (as a run does when the pack is sealed).
pub(super) fn add_chunks(cat: &mut Catalog, chunks: &[Id]) -> SealedPack {
    let kinds: Vec<_> = chunks.iter().map(|c| (*c, BlobKind::Chunk)).collect();
    let pack = sealed(&kinds);
    cat.insert_pack(&pack, 1).expect("insert pack");
    pack
}

/// A snapshot of `workspace` ready to commit: its root tree, stored in a
/// new indexed pack and referencing `chunks` and nothing else, and its row.
/// The root tree is named after the workspace and both times.
pub(super) fn snapshot_of(
    cat: &mut Catalog,
    workspace: &WorkspaceName,
    time_ns: i64,
    started_ns: i64,
    chunks: &[Id],
) -> (PendingTree, SnapshotRow) {
    let tree = Id::of(format!("tree {workspace} {time_ns} {started_ns}").as_bytes());
    let pack = sealed(&[(tree, BlobKind::Tree)]);
    cat.insert_pack(&pack, 1).expect("insert tree pack");
    let (offset, header) = pack.records[0];
    let pending = PendingTree {
        kind: BlobKind::Tree,
        id: tree,
        pack: pack.id,
        offset,
        stored_len: header.stored_len,
        raw_len: header.raw_len,
        refs: chunks.to_vec(),
    };
    let root = TreeId(tree);
    let row = SnapshotRow {
        id: snapshot_id(workspace, time_ns, started_ns, &root),
        workspace: workspace.clone(),
        time_ns,
        started_ns,
        finished_ns: started_ns + 1,
        root,
        stats: SnapshotStats {
            files: chunks.len() as u64,
            ..SnapshotStats::default()
        },
        damaged: false,
    };
    (pending, row)
}

/// Commit a snapshot made by [`snapshot_of`] with `skips` as its skip list.
pub(super) fn commit(
    cat: &mut Catalog,
    workspace: &WorkspaceName,
    time_ns: i64,
    started_ns: i64,
    chunks: &[Id],
    skips: &[(Vec<u8>, String)],
) -> SnapshotRow {
    let (pending, mut row) = snapshot_of(cat, workspace, time_ns, started_ns, chunks);
    row.stats.skipped = skips.len() as u64;
    cat.commit_snapshot(&[pending], &row, skips, "test.wsj")
        .expect("commit snapshot");
    row
}
