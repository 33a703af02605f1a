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
//! - per user ([`stats_by_user`]): *stored*, the record bytes of every blob
//!   reachable from any snapshot of the user's projects, each blob counted
//!   once however many of their projects and snapshots share it; *unique*,
//!   the part of *stored* that no other user's snapshot reaches: what
//!   forgetting every snapshot of that user would free. Data one user's
//!   projects share is unique to that user; data two users share is in
//!   both users' *stored* and in neither's *unique*.
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
//! many snapshots share a tree. Memory is one 32-bit tag per blob (kind
//! and owner, `tags.rs`) found by row number through a bitmap of the rows:
//! about 4.2 bytes per blob, ~43 MB for 10 million (8 bytes more per blob
//! than that only when row numbers are very sparse, see `tags.rs`). Sizes
//! are not held: once the walk is done, one more pass over `blobs` in row
//! order adds each blob's sizes to the figures of its tag. Snapshot rows
//! are streamed, never collected.

use std::collections::HashMap;

use crate::catalog::{Catalog, PinnedCatalog, SnapshotRoot};
use crate::error::{Error, Missing, Object, Result};
use crate::pack::{self, BlobKind};
use crate::store::Store;
use crate::workspace::WorkspaceName;

mod tags;

use tags::{group_tag, Seen, Tags, NONE, SHARED};

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

/// Per-user figures (`stats --by-user`; the module doc defines them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserStats {
    pub user: Vec<u8>,
    /// Its workspaces (projects) with at least one snapshot.
    pub workspace_count: u64,
    pub snapshots: u64,
    /// Logical bytes of the newest snapshot of each of its projects, summed.
    pub latest_size_bytes: u64,
    /// Logical bytes summed over all its snapshots.
    pub total_size_bytes: u64,
    /// Pack bytes (records) of every blob its snapshots reach, each once.
    pub stored_bytes: u64,
    /// The part of `stored_bytes` that is file content (chunks).
    pub stored_content_bytes: u64,
    /// Pack bytes (records) of every blob only its snapshots reach.
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
    /// Per workspace ([`stats`]; empty from [`stats_by_user`]).
    pub workspaces: Vec<WorkspaceStats>,
    /// Per user ([`stats_by_user`]; empty from [`stats`]).
    pub users: Vec<UserStats>,
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

/// Compute the figures; `only` restricts the per-workspace list (the
/// store-wide figures always cover the whole store).
pub fn stats(store: &Store, only: Option<&WorkspaceName>) -> Result<StatsReport> {
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    pinned.with(|cat| compute(cat, only))
}

/// The store-wide figures of the blobs some group reached (owner set),
/// and each group's unique bytes (`unique(group index, record bytes,
/// is content)`): one pass over `blobs` in row order, sizes read as they
/// come, none held.
fn tally(
    cat: &Catalog,
    report: &mut StatsReport,
    tags: &Tags,
    mut unique: impl FnMut(usize, u64, bool),
) -> Result<()> {
    let mut i = 0usize;
    let mut mismatch = None;
    cat.for_each_blob_size(|b| {
        // The same read view as `Tags::load`: the same rows in the same
        // order (checked, not assumed).
        if mismatch.is_some() {
            return;
        }
        if tags.index(b.row).ok() != Some(i) {
            mismatch = Some(b.row);
            return;
        }
        let o = tags.owner(i);
        i += 1;
        if o == NONE {
            report.unreferenced_blobs += 1;
            return;
        }
        let record = pack::record_bytes(u64::from(b.stored_len));
        report.referenced_bytes += record;
        let content = b.kind == BlobKind::Chunk;
        if content {
            report.chunks += 1;
            report.chunk_raw_bytes += u64::from(b.raw_len);
            report.chunk_stored_bytes += u64::from(b.stored_len);
        } else {
            report.metadata_blobs += 1;
            report.metadata_stored_bytes += u64::from(b.stored_len);
        }
        if o != SHARED {
            unique((o - 1) as usize, record, content);
        }
    })?;
    match mismatch {
        None if i == tags.len() => Ok(()),
        row => Err(Error::corrupt_as(
            "the blobs table changed between two reads of one pinned view",
        )
        .within(Object::CatalogRow {
            table: "blobs",
            row: row.unwrap_or(-1),
        })),
    }
}

fn compute(cat: &Catalog, only: Option<&WorkspaceName>) -> Result<StatsReport> {
    let mut tags = Tags::load(cat)?;
    let names = cat.workspace_names()?;

    let mut report = StatsReport {
        pack_bytes: cat.pack_bytes()?,
        ..StatsReport::default()
    };
    // Per workspace, in catalog order; tags are index + 1.
    let mut per_ws: Vec<WorkspaceStats> = Vec::new();
    let mut group: Vec<SnapshotRoot> = Vec::new();
    // (blob row, propagate_shared): see the module doc.
    let mut stack: Vec<(i64, bool)> = Vec::new();
    let mut finish_group = |group: &mut Vec<SnapshotRoot>,
                            per_ws: &mut Vec<WorkspaceStats>,
                            tags: &mut Tags|
     -> Result<()> {
        let Some(first) = group.first().copied() else {
            return Ok(());
        };
        let tag = group_tag(per_ws.len(), "workspaces")?;
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
            stack.push((s.root_row, false));
        }
        while let Some((row, propagate)) = stack.pop() {
            let i = tags.index(row)?;
            let o = tags.owner(i);
            let descend = if propagate {
                if o == SHARED {
                    false
                } else {
                    tags.set_owner(i, SHARED);
                    true
                }
            } else if o == NONE {
                tags.set_owner(i, tag);
                true
            } else if o == tag || o == SHARED {
                false
            } else {
                tags.set_owner(i, SHARED);
                stack_children(cat, tags, row, i, true, &mut stack)?;
                false
            };
            if descend {
                stack_children(cat, tags, row, i, propagate, &mut stack)?;
            }
        }
        per_ws.push(ws);
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
            finish_group(&mut group, &mut per_ws, &mut tags)?;
        }
        group.push(s);
        Ok(())
    })?;
    finish_group(&mut group, &mut per_ws, &mut tags)?;

    tally(cat, &mut report, &tags, |w, record, content| {
        let ws = &mut per_ws[w];
        ws.unique_bytes += record;
        if content {
            ws.unique_content_bytes += record;
        }
    })?;
    report.workspace_count = per_ws.len() as u64;
    report.latest_logical_bytes = per_ws.iter().map(|w| w.latest_size_bytes).sum();
    let mut list = per_ws;
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

/// The store-wide figures and, per user, what its snapshots store and what
/// only they reach (the module doc defines both); `only` restricts the
/// per-user list.
///
/// Each user's snapshots are walked from their roots (each distinct root
/// once), entering every blob once per user: a blob is added to the user's
/// *stored* on its first visit and takes the user as owner, or becomes
/// shared when another user owned it. The cost is O(Σ reachable blobs of
/// each user): every blob once, plus once more for each further user that
/// reaches it. The user's *stored* needs each entered blob's size during
/// the walk: it comes with the child's row from `tree_refs` joined to
/// `blobs`, so memory stays [`stats`]' tags plus one bit per blob (the
/// blobs the walking user entered, emptied after each user).
pub fn stats_by_user(store: &Store, only: Option<&[u8]>) -> Result<StatsReport> {
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    pinned.with(|cat| compute_by_user(cat, only))
}

fn compute_by_user(cat: &Catalog, only: Option<&[u8]>) -> Result<StatsReport> {
    let mut tags = Tags::load(cat)?;
    let names = cat.workspace_names()?;
    let mut report = StatsReport {
        pack_bytes: cat.pack_bytes()?,
        ..StatsReport::default()
    };
    let mut users: Vec<UserStats> = Vec::new();
    let mut user_index: HashMap<Vec<u8>, usize> = HashMap::new();
    // (user index, root row): every root once per user after the dedup.
    let mut roots: Vec<(usize, i64)> = Vec::new();
    let mut previous: Option<(usize, SnapshotRoot)> = None;
    cat.for_each_snapshot_root(|s| {
        report.snapshots += 1;
        report.logical_bytes += s.size_bytes;
        let name = names.get(&s.workspace_row).ok_or_else(|| {
            Error::corrupt_as("a snapshot names it, but it is not in the table").within(
                Object::CatalogRow {
                    table: "workspaces",
                    row: s.workspace_row,
                },
            )
        })?;
        let u = *user_index.entry(name.user.clone()).or_insert_with(|| {
            users.push(UserStats {
                user: name.user.clone(),
                workspace_count: 0,
                snapshots: 0,
                latest_size_bytes: 0,
                total_size_bytes: 0,
                stored_bytes: 0,
                stored_content_bytes: 0,
                unique_bytes: 0,
                unique_content_bytes: 0,
            });
            users.len() - 1
        });
        // Ordered by workspace then time: the row before a new workspace
        // is the newest snapshot of the one before.
        let new_workspace = previous.is_none_or(|(_, p)| p.workspace_row != s.workspace_row);
        if new_workspace {
            add_latest(previous, &mut users, &mut report);
            report.workspace_count += 1;
            users[u].workspace_count += 1;
        }
        let user = &mut users[u];
        user.snapshots += 1;
        user.total_size_bytes += s.size_bytes;
        // An unchanged workspace keeps its root tree: walked once.
        if new_workspace || previous.is_some_and(|(_, p)| p.root_row != s.root_row) {
            roots.push((u, s.root_row));
        }
        previous = Some((u, s));
        Ok(())
    })?;
    add_latest(previous, &mut users, &mut report);
    roots.sort_unstable();
    roots.dedup();

    // The blobs the walking user entered; (row, stored length) to enter.
    let mut seen = Seen::new(tags.len());
    let mut stack: Vec<(i64, u32)> = Vec::new();
    let not_indexed = |row: i64| {
        Error::corrupt_as("a snapshot or tree references it, but it is not indexed").within(
            Object::CatalogRow {
                table: "blobs",
                row,
            },
        )
    };
    for group in roots.chunk_by(|a, b| a.0 == b.0) {
        let u = group[0].0;
        let tag = group_tag(u, "users")?;
        for (_, root) in group {
            let len = cat
                .blob_stored_len(*root)?
                .ok_or_else(|| not_indexed(*root))?;
            stack.push((*root, len));
        }
        while let Some((row, stored)) = stack.pop() {
            let i = tags.index(row)?;
            if !seen.insert(i) {
                continue;
            }
            let record = pack::record_bytes(u64::from(stored));
            users[u].stored_bytes += record;
            if !tags.has_refs(i) {
                users[u].stored_content_bytes += record;
            }
            let owner = match tags.owner(i) {
                NONE => tag,
                o if o == tag => tag,
                _ => SHARED,
            };
            tags.set_owner(i, owner);
            if tags.has_refs(i) {
                for (child, len) in cat.referenced_rows_sized(row)? {
                    stack.push((child, len.ok_or_else(|| not_indexed(child))?));
                }
            }
        }
        seen.clear();
    }
    tally(cat, &mut report, &tags, |u, record, content| {
        let user = &mut users[u];
        user.unique_bytes += record;
        if content {
            user.unique_content_bytes += record;
        }
    })?;
    users.sort_by(|a, b| a.user.cmp(&b.user));
    if let Some(user) = only {
        users.retain(|u| u.user == user);
        if users.is_empty() {
            return Err(Error::NotFound(Missing::User(user.to_vec())));
        }
    }
    report.users = users;
    Ok(report)
}

/// Count `newest`, a workspace's newest snapshot (of user index `.0`), in
/// the latest logical sizes.
fn add_latest(
    newest: Option<(usize, SnapshotRoot)>,
    users: &mut [UserStats],
    report: &mut StatsReport,
) {
    if let Some((u, s)) = newest {
        users[u].latest_size_bytes += s.size_bytes;
        report.latest_logical_bytes += s.size_bytes;
    }
}

/// Push the children of the blob at `row` (position `i`) with `propagate`.
fn stack_children(
    cat: &Catalog,
    tags: &Tags,
    row: i64,
    i: usize,
    propagate: bool,
    stack: &mut Vec<(i64, bool)>,
) -> Result<()> {
    if tags.has_refs(i) {
        stack.extend(
            cat.referenced_rows(row)?
                .into_iter()
                .map(|child| (child, propagate)),
        );
    }
    Ok(())
}
