//! `status`: the monitoring facts and one Nagios level.
//!
//! Reads the catalog in one read transaction and never takes the writer
//! lock, so it answers while a snapshot or prune runs. It reads no pack
//! (sizes come from `stat`), so it does not take the readers' lock either.
//!
//! Here the facts are gathered; `report.rs` holds the types, `assess.rs`
//! the rules that turn facts into problems and levels, `fs_space.rs` the
//! store's size and free space, `prometheus.rs` the text-file output.
//!
//! "The last run" is the last run that covered the whole root
//! (`meta` key `last_full_run ROOT`, one per root): a later run of named workspaces neither hides
//! its failures nor stands in for it. Levels, worst wins (ordered OK <
//! WARNING < UNKNOWN < CRITICAL); README.md's status section is the full
//! list:
//!
//! | finding | level |
//! |---|---|
//! | a workspace under the root has a newest snapshot older than `max_age` | WARNING |
//! | a workspace under the root has no snapshot at all | WARNING |
//! | the last run skipped entries (unreadable, vanished files, a workspace emptied) | WARNING |
//! | an entry under the root is a symlink or file, not a directory | WARNING |
//! | workspaces left the root within [`GONE_WARN_NS`] (deleted projects) | WARNING |
//! | the workspace root cannot be read (missing workspaces unknown) | UNKNOWN |
//! | no run recorded, or the last run finished more than `max_age` ago | CRITICAL |
//! | the last run failed workspaces (or user directories) | CRITICAL |
//! | the last run failed as a whole (empty root, many workspaces gone) | CRITICAL |
//! | a user or project directory under the root cannot be listed | CRITICAL |
//! | no workspace under the root (not mounted?) | CRITICAL |
//! | more than [`GONE_AT_ONCE_PERCENT`] % of the workspaces (and more than one) left the root within [`GONE_WARN_NS`] | CRITICAL |
//! | free space on the store's file system below `min_free` | CRITICAL |
//! | retention held for a workspace (its newest snapshots skipped entries, or it failed in the last run) | WARNING |
//! | retention held while free space is below `min_free` | CRITICAL |
//! | a remote lags more than `max_age` behind the store, was never pushed to, or its last push failed | WARNING |
//! | a remote lags more than [`REMOTE_CRITICAL_LAG_NS`] (24 h) | CRITICAL |
//!
//! The store itself missing or unreadable is UNKNOWN (the caller turns the
//! error into that level). Workspaces that have snapshots but are no longer
//! under the root (deleted projects) warn for [`GONE_WARN_NS`] after their
//! newest snapshot, then are only listed: their newest snapshot is kept
//! forever by retention and would be stale forever.

mod assess;
mod fs_space;
mod prometheus;
mod report;

use std::collections::HashSet;

use crate::catalog::{PinnedCatalog, WorkspaceSummary};
use crate::error::Result;
use crate::model::RunRow;
use crate::store::Store;
use crate::walk;
use crate::workspace::WorkspaceName;

pub use assess::REMOTE_CRITICAL_LAG_NS;
pub use assess::{GONE_AT_ONCE_PERCENT, GONE_WARN_NS};
pub use fs_space::{FsSpace, MinFree, StoreSize};
pub use prometheus::{prometheus_text, write_prometheus};
pub use report::{
    HeldReason, HeldRetention, Level, Problem, RemoteLag, RunSkip, StatusOptions, StatusReport,
    WorkspaceState, WorkspaceStatus,
};

/// Check `store`: gather the facts (one pinned catalog view, the root, the
/// disk), then let `assess.rs` judge them.
pub fn status(store: &Store, opts: &StatusOptions) -> Result<StatusReport> {
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    let (last_run, summaries, recent, skipping) = pinned.with(|cat| {
        // No full run of this root recorded (a catalog from before they
        // were, a root only named workspaces were taken from): the newest
        // run of any kind stands in, as it always did.
        let last = match cat.last_full_run(&crate::catalog::full_run_key(&opts.root))? {
            Some(r) => Some(r),
            None => cat.last_run()?,
        };
        let summaries = cat.workspace_summaries()?;
        let recent = match &last {
            Some(r) => cat.snapshots_started_since(r.started_ns)?,
            None => Vec::new(),
        };
        Ok((last, summaries, recent, cat.skipping_since()?))
    })?;

    let mut problems = Vec::new();
    let root = assess::root(&opts.root, walk::discover(&opts.root), &mut problems);
    let workspaces = assess::workspace_states(&summaries, &root, opts);
    let recently_gone = assess::workspace_problems(&workspaces, opts, &mut problems);
    let run = assess::last_run(
        last_run.as_ref(),
        &recent,
        &root.on_disk,
        opts,
        &mut problems,
    );
    let retention_held = retention_held(
        &pinned,
        skipping,
        last_run.as_ref(),
        &summaries,
        &run.not_in_run,
    )?;
    drop(pinned);

    // The store's newest snapshot time: the newest of the workspaces'.
    let newest = summaries.iter().map(|s| s.newest_time_ns).max();
    let remotes = remote_lags(store, &newest)?;
    assess::remotes(&remotes, opts, &mut problems);

    let size = fs_space::store_size(store)?;
    let space = fs_space::fs_space(store.dir(), opts.min_free)?;
    assess::space(&space, opts.min_free, &mut problems);
    assess::retention(&retention_held, &space, &mut problems);

    let level = assess::level(&mut problems);
    Ok(StatusReport {
        level,
        problems,
        now_ns: opts.now_ns,
        max_age_ns: opts.max_age_ns,
        root: opts.root.clone(),
        unlistable: root.unlistable,
        recently_gone,
        root_readable: root.readable,
        last_run,
        not_in_last_run: run.not_in_run,
        last_run_skips: run.skips,
        retention_held,
        workspaces,
        store: size,
        space,
        remotes,
    })
}

/// Each configured remote with what its last push recorded.
fn remote_lags(store: &Store, newest_local_ns: &Option<i64>) -> Result<Vec<RemoteLag>> {
    let mut out = Vec::new();
    for cfg in crate::remote::list(store.dir())? {
        let s = crate::remote::PushState::load(store.dir(), &cfg.name);
        let failed_since = match (s.last_failure_ns, s.last_success_ns) {
            (Some(f), Some(ok)) => f > ok,
            (Some(_), None) => true,
            _ => false,
        };
        out.push(RemoteLag {
            url: cfg.location.url.clone(),
            name: cfg.name,
            last_push_ns: s.last_success_ns,
            newest_pushed_ns: s.newest_pushed_ns,
            newest_local_ns: *newest_local_ns,
            last_error: s.last_error.filter(|_| failed_since),
        });
    }
    Ok(out)
}

/// The workspaces whose retention is held, sorted by name. Derived from
/// what the catalog already has (no format change): the newest snapshots'
/// skip counts (`skipping`), and the workspaces the last run failed (under
/// the root, with snapshots, but none from that run: the same set as "not
/// in last run").
fn retention_held(
    pinned: &PinnedCatalog,
    skipping: Vec<(WorkspaceName, i64)>,
    last_run: Option<&RunRow>,
    summaries: &[WorkspaceSummary],
    not_in_last_run: &[WorkspaceName],
) -> Result<Vec<HeldRetention>> {
    let mut held: Vec<HeldRetention> = skipping
        .into_iter()
        .map(|(workspace, since_ns)| HeldRetention {
            workspace,
            reason: HeldReason::Skipped,
            since_ns,
        })
        .collect();
    if last_run.is_some_and(|r| r.workspaces_failed > 0) {
        let has_snapshots: HashSet<&WorkspaceName> =
            summaries.iter().map(|s| &s.workspace).collect();
        for ws in not_in_last_run.iter().filter(|w| has_snapshots.contains(w)) {
            if held.iter().any(|h| &h.workspace == ws) {
                continue;
            }
            let since_ns = pinned.with(|cat| {
                let newest = cat.last_taken(ws)?.map_or(0, |s| s.started_ns);
                Ok(cat.first_run_after(newest)?.unwrap_or(newest))
            })?;
            held.push(HeldRetention {
                workspace: ws.clone(),
                reason: HeldReason::Failed,
                since_ns,
            });
        }
    }
    held.sort_by(|a, b| a.workspace.cmp(&b.workspace));
    Ok(held)
}
