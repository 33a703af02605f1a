//! `stats`: logical size against stored size, and what each workspace alone
//! holds (what deleting it would free).
//!
//! Figures, all from one pinned catalog view (no pack is read):
//! - *logical*: the sum of file sizes of every snapshot (and of each
//!   workspace's newest snapshot), from the snapshot rows;
//! - *stored*: the packs' bytes;
//! - *reachable*: blobs reachable from some snapshot root through
//!   `tree_refs`; their raw and stored sizes give the dedup ratio (logical /
//!   distinct chunk bytes) and the compression ratio (distinct chunk bytes /
//!   their stored bytes);
//! - *unique* per workspace: blobs reachable from its snapshots and from no
//!   other workspace's, counted as record bytes in packs (payload + 48-byte
//!   header): what `forget` of all its snapshots would free.
//!
//! ## How ownership is computed, and what it costs
//!
//! Every indexed blob gets one owner tag: none, one workspace, or *shared*.
//! Workspaces are walked one after another from their snapshot roots:
//! a blob without owner takes the walking workspace and its children are
//! visited; a blob owned by another workspace becomes shared and *all* its
//! descendants are marked shared (they are reachable from both); a blob
//! already owned by the walker, or shared, is not entered again. A blob's
//! tag only moves none → workspace → shared, and each move lists its
//! children once, so the walk costs O(B + E) (B indexed blobs, E `tree_refs`
//! rows: at most two primary-key lookups per tree or chunk list), however
//! many snapshots share a tree. Memory is O(B): about 21 bytes per blob
//! (row id, sizes, kind, tag), e.g. ~210 MB for 10 million blobs; snapshot
//! rows are streamed, never collected.

use crate::catalog::{Catalog, PinnedCatalog, SnapshotRoot};
use crate::error::{Error, Missing, Object, Result};
use crate::pack::{self, BlobKind};
use crate::store::Store;
use crate::workspace::WorkspaceName;

/// Per-workspace figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceStats {
    pub workspace: WorkspaceName,
    pub snapshots: u64,
    /// Logical bytes of its newest snapshot.
    pub latest_size_bytes: u64,
    /// Logical bytes summed over all its snapshots.
    pub total_size_bytes: u64,
    /// Pack bytes (records) of every blob only it references.
    pub unique_bytes: u64,
    /// The part of `unique_bytes` that is file content (chunks).
    pub unique_content_bytes: u64,
}

/// Store-wide figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsReport {
    pub snapshots: u64,
    /// Workspaces with at least one snapshot.
    pub workspace_count: u64,
    /// Sum of file sizes over every snapshot.
    pub logical_bytes: u64,
    /// Sum of file sizes over each workspace's newest snapshot.
    pub latest_logical_bytes: u64,
    /// Bytes of all pack files the catalog lists.
    pub pack_bytes: u64,
    /// Distinct chunks reachable from some snapshot.
    pub chunks: u64,
    pub chunk_raw_bytes: u64,
    pub chunk_stored_bytes: u64,
    /// Reachable trees and chunk lists.
    pub metadata_blobs: u64,
    pub metadata_stored_bytes: u64,
    /// Pack bytes (records) of every reachable blob.
    pub referenced_bytes: u64,
    /// Indexed blobs no snapshot reaches (left by failed runs until the next prune).
    pub unreferenced_blobs: u64,
    pub workspaces: Vec<WorkspaceStats>,
}

impl StatsReport {
    /// Logical bytes over distinct chunk bytes (`None` if nothing is stored).
    pub fn dedup_ratio(&self) -> Option<f64> {
        ratio(self.logical_bytes, self.chunk_raw_bytes)
    }

    /// Distinct chunk bytes over their stored bytes.
    pub fn compression_ratio(&self) -> Option<f64> {
        ratio(self.chunk_raw_bytes, self.chunk_stored_bytes)
    }

    /// Logical bytes over pack bytes: both effects together.
    pub fn overall_ratio(&self) -> Option<f64> {
        ratio(self.logical_bytes, self.pack_bytes)
    }
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

const NONE: u32 = 0;
const SHARED: u32 = u32::MAX;

/// Every indexed blob, by position (rows ascending).
struct Blobs {
    rows: Vec<i64>,
    kind: Vec<BlobKind>,
    stored: Vec<u32>,
    raw: Vec<u32>,
    owner: Vec<u32>,
}

impl Blobs {
    fn index(&self, row: i64) -> Result<usize> {
        self.rows.binary_search(&row).map_err(|_| {
            Error::corrupt_as("a snapshot or tree references it, but it is not indexed").within(
                Object::CatalogRow {
                    table: "blobs",
                    row,
                },
            )
        })
    }
}

/// Compute the figures; `only` restricts the per-workspace list (the
/// store-wide figures always cover the whole store).
pub fn stats(store: &Store, only: Option<&WorkspaceName>) -> Result<StatsReport> {
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    pinned.with(|cat| compute(cat, only))
}

fn compute(cat: &Catalog, only: Option<&WorkspaceName>) -> Result<StatsReport> {
    let mut blobs = Blobs {
        rows: Vec::new(),
        kind: Vec::new(),
        stored: Vec::new(),
        raw: Vec::new(),
        owner: Vec::new(),
    };
    cat.for_each_blob_size(|b| {
        blobs.rows.push(b.row);
        blobs.kind.push(b.kind);
        blobs.stored.push(b.stored_len);
        blobs.raw.push(b.raw_len);
        blobs.owner.push(NONE);
    })?;
    let names = cat.workspace_names()?;

    let mut report = StatsReport {
        pack_bytes: cat.pack_bytes()?,
        ..StatsReport::default()
    };
    // Per workspace, in catalog order: (row, figures); tags are index + 1.
    let mut per_ws: Vec<(i64, WorkspaceStats)> = Vec::new();
    let mut group: Vec<SnapshotRoot> = Vec::new();
    let mut stack: Vec<(usize, bool)> = Vec::new();
    let mut finish_group = |group: &mut Vec<SnapshotRoot>,
                            per_ws: &mut Vec<(i64, WorkspaceStats)>,
                            blobs: &mut Blobs|
     -> Result<()> {
        let Some(first) = group.first().copied() else {
            return Ok(());
        };
        let tag = u32::try_from(per_ws.len() + 1)
            .ok()
            .filter(|t| *t != SHARED)
            .ok_or_else(|| Error::corrupt_as("more workspaces than stats can count"))?;
        let name = names.get(&first.workspace_row).cloned().ok_or_else(|| {
            Error::corrupt_as("a snapshot names it, but it is not in the table").within(
                Object::CatalogRow {
                    table: "workspaces",
                    row: first.workspace_row,
                },
            )
        })?;
        let mut ws = WorkspaceStats {
            workspace: name,
            snapshots: group.len() as u64,
            latest_size_bytes: group.last().map_or(0, |s| s.size_bytes),
            total_size_bytes: 0,
            unique_bytes: 0,
            unique_content_bytes: 0,
        };
        for s in group.iter() {
            ws.total_size_bytes += s.size_bytes;
            stack.push((blobs.index(s.root_row)?, false));
        }
        // (blob, propagate_shared): see the module doc.
        while let Some((i, propagate)) = stack.pop() {
            let o = blobs.owner[i];
            let descend = if propagate {
                if o == SHARED {
                    false
                } else {
                    blobs.owner[i] = SHARED;
                    true
                }
            } else if o == NONE {
                blobs.owner[i] = tag;
                true
            } else if o == tag || o == SHARED {
                false
            } else {
                blobs.owner[i] = SHARED;
                stack_children(cat, blobs, i, true, &mut stack)?;
                false
            };
            if descend {
                stack_children(cat, blobs, i, propagate, &mut stack)?;
            }
        }
        per_ws.push((first.workspace_row, ws));
        group.clear();
        Ok(())
    };
    cat.for_each_snapshot_root(|s| {
        report.snapshots += 1;
        report.logical_bytes += s.size_bytes;
        if group
            .first()
            .is_some_and(|g| g.workspace_row != s.workspace_row)
        {
            finish_group(&mut group, &mut per_ws, &mut blobs)?;
        }
        group.push(s);
        Ok(())
    })?;
    finish_group(&mut group, &mut per_ws, &mut blobs)?;

    let record = |i: usize| pack::record_bytes(u64::from(blobs.stored[i]));
    for i in 0..blobs.rows.len() {
        let o = blobs.owner[i];
        if o == NONE {
            report.unreferenced_blobs += 1;
            continue;
        }
        report.referenced_bytes += record(i);
        if blobs.kind[i] == BlobKind::Chunk {
            report.chunks += 1;
            report.chunk_raw_bytes += u64::from(blobs.raw[i]);
            report.chunk_stored_bytes += u64::from(blobs.stored[i]);
        } else {
            report.metadata_blobs += 1;
            report.metadata_stored_bytes += u64::from(blobs.stored[i]);
        }
        if o != SHARED {
            let ws = &mut per_ws[(o - 1) as usize].1;
            ws.unique_bytes += record(i);
            if blobs.kind[i] == BlobKind::Chunk {
                ws.unique_content_bytes += record(i);
            }
        }
    }
    report.workspace_count = per_ws.len() as u64;
    report.latest_logical_bytes = per_ws.iter().map(|(_, w)| w.latest_size_bytes).sum();
    let mut list: Vec<WorkspaceStats> = per_ws.into_iter().map(|(_, w)| w).collect();
    list.sort_by(|a, b| a.workspace.cmp(&b.workspace));
    if let Some(w) = only {
        list.retain(|s| &s.workspace == w);
        if list.is_empty() {
            return Err(Error::NotFound(Missing::Snapshots(w.clone())));
        }
    }
    report.workspaces = list;
    Ok(report)
}

fn stack_children(
    cat: &Catalog,
    blobs: &Blobs,
    i: usize,
    propagate: bool,
    stack: &mut Vec<(usize, bool)>,
) -> Result<()> {
    if !blobs.kind[i].has_refs() {
        return Ok(());
    }
    for child in cat.referenced_rows(blobs.rows[i])? {
        stack.push((blobs.index(child)?, propagate));
    }
    Ok(())
}
