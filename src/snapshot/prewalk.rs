//! Prewalks: a tick's unchanged workspaces walked in parallel, storing
//! nothing, then handed to the writer in source order with no round trip
//! (see `run.rs`). A prewalk uses the full walk's code (`traverse.rs`)
//! without a blob sink: new trees are recorded, and the first file that
//! would have to be read ends it (that workspace then takes the full walk).

use std::sync::atomic::Ordering;

use crate::catalog::CatalogPool;
use crate::dirfd::Dir;
use crate::error::Result;
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;
use crate::walk::Excludes;

use super::pipeline::BlobSink;
use super::traverse::{snap_dir, WalkCtx, Walked};
use super::{writer, Source, WorkspaceOutcome};

/// Walk `src` against its parent snapshot without storing anything, as
/// long as no file needs to be read: the common case of a tick, where most
/// workspaces are unchanged. Runs beside other prewalks (it only reads the
/// catalog and the workspace); the run hands the result to the writer in
/// source order ([`commit_prewalked`]). `None` when the source needs the
/// full walk of `traverse::snapshot_workspace`: no parent (or `reread`), a file
/// changed, anything skipped, or the directory cannot be opened (the full
/// walk looks again and reports it).
pub(super) fn prewalk(
    store: &Store,
    pool: &CatalogPool,
    excludes: &Excludes,
    src: &Source,
    base: Option<&Dir>,
) -> Option<Walked> {
    if src.reread {
        return None;
    }
    let dir = src.open_in(base).ok()?;
    let parent = pool.with(|c| c.last_taken(&src.workspace)).ok()??;
    let started_ns = timespec::now_ns();
    let ctx = WalkCtx::new(store, pool, None, excludes, None, Some(&parent));
    let root = match snap_dir(&ctx, dir, b"", Some(parent.root), 0) {
        Ok((Some(root), _)) => root,
        _ => return None,
    };
    if ctx.needs_read.load(Ordering::Relaxed) || !ctx.skips.lock().ok()?.is_empty() {
        return None;
    }
    Some(ctx.finish(src, root, started_ns, parent.stats.files))
}

/// Hand a prewalked workspace to the writer: its new trees (counted as
/// the bytes it added), then its commit request, whose answer comes on
/// `reply` (several are answered together; see `run.rs`).
pub(super) fn commit_prewalked(
    sink: &BlobSink<'_>,
    writer: &writer::Writer,
    mut walked: Walked,
    progress: &Progress,
    reply: &crossbeam_channel::Sender<Result<()>>,
) -> Result<WorkspaceOutcome> {
    for (id, bytes, refs) in std::mem::take(&mut walked.trees) {
        let added = sink.put(BlobKind::Tree, id.0, &bytes, refs)?;
        walked.row.stats.bytes_added += added;
    }
    progress.add(walked.row.stats.files, walked.row.stats.size_bytes);
    // A prewalk gives up at every skip of the walk, but `finish` may add
    // one of its own (no files left): it is recorded like any other.
    let skip_rows = walked
        .skips
        .iter()
        .map(|k| (k.path.clone(), k.reason.clone()))
        .collect();
    writer.commit_async(walked.row.clone(), skip_rows, reply.clone())?;
    Ok(WorkspaceOutcome::Committed {
        row: Box::new(walked.row),
        skips: walked.skips,
    })
}
