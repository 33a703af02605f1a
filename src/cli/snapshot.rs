//! `snapshot`: one run over the workspaces, with `--prune` a prune in the
//! same lock, and the report as lines or `--json` (schema in docs/JSON.md).

use std::io::{self, Write};
use std::path::Path;

use wsnap::escape::{self, Escaped};
use wsnap::snapshot::{self, RunReport, WorkspaceOutcome};
use wsnap::{gc, timespec, Error, Result, Store, WorkspaceName};

use super::admin::open_or_create;
use super::flags::SnapshotArgs;
use super::output::{self, exit, lossy, size};
use super::progress;
use super::prune::{gc_json, print_gc_report, Command};

/// `snapshot [--prune]`.
pub fn run(store_dir: &Path, a: &SnapshotArgs) -> Result<u8> {
    let opts = a.options()?;
    // Refuse a bad root before creating a store for it.
    if !opts.root.is_dir() {
        return Err(Error::Invalid {
            what: "workspace root",
            detail: format!(
                "{} is not a directory (set --root or SCITEX_WORKSPACE_ROOT)",
                escape::path(&opts.root)
            ),
        });
    }
    let store = open_or_create(store_dir)?;
    let prune_opts = if a.prune {
        Some(a.retention.options(opts.workspaces.clone())?)
    } else {
        None
    };
    let t0 = std::time::Instant::now();
    let lock = snapshot::lock(&store, opts.lock_wait)?;
    let (sources, scan) = snapshot::sources(&opts)?;
    tracing::info!(
        "snapshot of {} workspaces into {}",
        sources.len(),
        escape::path(store_dir)
    );
    let mut report = progress::run("snapshot", "files", |p| {
        snapshot::run_sources_locked(&store, &sources, &scan, &opts.excludes, &lock, p)
    })?;
    // Retention per workspace: one that failed or skipped entries
    // keeps its snapshots; every other one is pruned as usual.
    let mut gc = None;
    let mut recovered = None;
    // A run that failed as a whole (no workspace under the root, or
    // many gone at once: an unmounted volume) prunes nothing.
    let prune_opts = prune_opts.filter(|_| report.error.is_none());
    if let Some(p) = &prune_opts {
        let p = gc::PruneOptions {
            held: held_workspaces(&store, &report)?,
            ..p.clone()
        };
        let pruned = progress::run("prune", "packs", |pr| gc::prune(&store, &p, &lock, pr));
        match pruned {
            Ok(g) => gc = Some(g),
            // The disk is full: gc may fail too; the first error
            // is the one reported.
            Err(e) if report.store_error.is_some() => {
                tracing::error!(
                    "prune after the failed write failed too: {}",
                    output::message(&e)
                )
            }
            Err(e) => return Err(e),
        }
        // The store filled up and the prune made room: the
        // workspaces not written yet get a fresh writer (nothing
        // failed is retried; see `snapshot::run_again_locked`).
        let freed = gc
            .as_ref()
            .is_some_and(|g| g.bytes_freed > 0 || g.orphan_packs_removed > 0);
        if report.store_error.is_some() && freed && !report.unwritten.is_empty() {
            let first_error = report.store_error.take().expect("checked");
            let first_error = output::message(&first_error);
            tracing::warn!(
                "{first_error}; prune freed {}: snapshotting the {} workspaces not yet written again",
                size(gc.as_ref().map_or(0, |g| g.bytes_freed)),
                report.unwritten.len()
            );
            let again = report.unwritten.len();
            report = progress::run("snapshot", "files", |pr| {
                snapshot::run_again_locked(&store, report, &opts.excludes, &lock, pr)
            })?;
            recovered = Some((first_error, again));
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    log_snapshot_problems(&report);
    drop(lock);
    // The push, after the prune and outside the run's lock (the push
    // takes it only for its catalog image). A store that failed to write
    // still has its committed snapshots to push.
    let pushed = a.push.as_ref().map(|name| {
        let name = Some(name.as_str()).filter(|n| !n.is_empty());
        let grace = std::env::var("WSNAP_REMOTE_GRACE").ok();
        super::remote::push_report(
            &store,
            name,
            opts.lock_wait.max(std::time::Duration::from_secs(600)),
            false,
            grace.as_deref(),
        )
    });
    if let Some(Err(e)) = &pushed {
        tracing::error!("push failed: {}", output::message(e));
    }
    // The exit code, decided before anything is printed: `ok` in the
    // JSON report is true exactly when it is 0.
    let code = if let Some(e) = &report.store_error {
        output::code_for(e.kind())
    } else if !report.all_ok() {
        exit::PARTIAL
    } else if let Some(Err(e)) = &pushed {
        // The snapshot is committed; a failed push still fails the run.
        output::code_for(e.kind())
    } else {
        exit::OK
    };
    if a.json {
        let mut v = snapshot_report_json(&report, secs);
        if let Some(g) = &gc {
            v["prune"] = gc_json(g);
        }
        match &pushed {
            None => {}
            Some(Ok((r, label, s))) => v["push"] = super::remote::push_json(r, label, *s),
            Some(Err(e)) => v["push"] = serde_json::json!({"error": output::error_json(e)}),
        }
        v["recovered_from"] = match &recovered {
            Some((e, n)) => serde_json::json!({"error": e, "workspaces_retried": n}),
            None => serde_json::Value::Null,
        };
        output::emit(code, v);
    } else {
        print_snapshot_report(&report, secs);
        if let Some((e, n)) = &recovered {
            println!(
                "note: {e}; the prune made room and the {n} workspaces not yet written were snapshotted again"
            );
        }
        if let Some(g) = &gc {
            print_gc_report(g, Command::Prune);
        } else if a.prune && report.error.is_some() {
            println!("prune: skipped because the run failed as a whole; nothing was forgotten");
        } else if a.prune {
            println!("prune: failed (see the error above); nothing was forgotten");
        }
        match &pushed {
            Some(Ok((r, label, s))) => super::remote::print_push(r, label, *s),
            Some(Err(e)) => println!("push: failed: {}", output::message(e)),
            None => {}
        }
    }
    // Last, so in a log it closes the run's lines.
    let t = report.totals();
    tracing::info!(
        "snapshot run finished in {secs:.1} s: {} ok, {} failed, {} entries skipped, {} new",
        t.ok,
        t.failed,
        t.entries_skipped,
        size(t.bytes_added)
    );
    if let Some(e) = &report.store_error {
        // Printed last, after the report that names the workspaces
        // not snapshotted.
        tracing::error!("{}", output::message(e));
    }
    Ok(code)
}

/// Failed workspaces and skipped files, as log lines (with a timestamp in
/// the cron log); the report on stdout lists them too.
fn log_snapshot_problems(report: &RunReport) {
    for w in &report.workspaces {
        match &w.outcome {
            WorkspaceOutcome::Committed { row, skips } => {
                tracing::debug!(
                    "{}: snapshot {} committed, {} files, {} new",
                    w.workspace,
                    row.id.0.short(),
                    row.stats.files,
                    size(row.stats.bytes_added)
                );
                for s in skips {
                    tracing::warn!(
                        "{}: {} {}: {}",
                        w.workspace,
                        if s.missing { "skipped" } else { "warning" },
                        Escaped(&s.path),
                        s.reason
                    );
                }
            }
            WorkspaceOutcome::Failed { reason } => {
                tracing::error!("{}: snapshot failed: {reason}", w.workspace)
            }
        }
    }
    for r in &report.rejected {
        tracing::warn!(
            "{}: skipped, not a workspace: {}",
            Escaped(&r.path),
            r.reason
        );
    }
    for r in &report.unlistable {
        tracing::error!("{}: failed, directory {}", Escaped(&r.path), r.reason);
    }
    for w in &report.gone {
        tracing::warn!("{w}: no longer under the root (in the previous full run)");
    }
    if let Some(e) = &report.error {
        tracing::error!("snapshot run failed: {e}");
    }
}

/// The workspaces whose retention this run holds: those it could not read
/// whole ([`RunReport::held`]), and every workspace of the store
/// under an entry of the root that was rejected (a user or project that is
/// now a symlink or a file: its snapshots may be all that is left of it).
fn held_workspaces(store: &Store, report: &RunReport) -> Result<Vec<WorkspaceName>> {
    let mut held = report.held();
    if !report.rejected.is_empty() {
        for ws in store.catalog_for_reading()?.workspaces()? {
            let covered = report.rejected.iter().any(|r| {
                let mut parts = r.path.splitn(2, |&b| b == b'/');
                let user = parts.next().unwrap_or_default();
                user == ws.user.as_slice()
                    && parts
                        .next()
                        .is_none_or(|project| project == ws.project.as_slice())
            });
            if covered {
                held.push(ws);
            }
        }
        held.sort();
        held.dedup();
    }
    Ok(held)
}

fn snapshot_report_json(report: &RunReport, secs: f64) -> serde_json::Value {
    let t = report.totals();
    let list: Vec<_> = report
            .workspaces
            .iter()
            .map(|w| match &w.outcome {
                WorkspaceOutcome::Committed { row, skips } => {
                    let mut v = output::snapshot_json(row);
                    v["status"] = "ok".into();
                    v["skips"] = skips
                        .iter()
                        .map(|s| serde_json::json!({"path": lossy(&s.path), "reason": s.reason, "missing": s.missing}))
                        .collect::<Vec<_>>()
                        .into();
                    v
                }
                WorkspaceOutcome::Failed { reason } => serde_json::json!({
                    "user": lossy(&w.workspace.user),
                    "project": lossy(&w.workspace.project),
                    "status": "failed",
                    "error": reason,
                }),
            })
            .collect();
    serde_json::json!({
        "store_error": report.store_error.as_ref().map(output::error_json),
        "started": output::time(report.started_ns),
        "started_ns": report.started_ns,
        "finished": output::time(report.finished_ns),
        "finished_ns": report.finished_ns,
        "seconds": secs,
        "workspaces": list,
        "rejected": report.rejected.iter().map(|r| serde_json::json!({
            "path": lossy(&r.path),
            "reason": r.reason,
        })).collect::<Vec<_>>(),
        "unlistable": report.unlistable.iter().map(|r| serde_json::json!({
            "path": lossy(&r.path),
            "reason": r.reason,
        })).collect::<Vec<_>>(),
        "covered_root": report.covered_root,
        "gone": report.gone.iter().map(|w| serde_json::json!({
            "user": lossy(&w.user),
            "project": lossy(&w.project),
        })).collect::<Vec<_>>(),
        "previous_full_run": report.previous_full_run.map(|(at, n)| serde_json::json!({
            "finished": output::time(at),
            "finished_ns": at,
            "workspaces": n,
        })),
        "error": report.error,
        "summary": {
            "workspaces": report.workspaces.len(),
            "ok": t.ok,
            "failed": t.failed,
            "entries_skipped": t.entries_skipped,
            "files": t.files,
            "size_bytes": t.size_bytes,
            "added_bytes": t.bytes_added,
        },
    })
}

fn print_snapshot_report(report: &RunReport, secs: f64) {
    let t = report.totals();
    let mut out = io::stdout().lock();
    for w in &report.workspaces {
        match &w.outcome {
            WorkspaceOutcome::Committed { row, skips } => {
                let _ = writeln!(
                    out,
                    "ok      {}  snapshot {}  files {}  size {}  new {}  read {}{}",
                    w.workspace,
                    row.id.0.short(),
                    row.stats.files,
                    size(row.stats.size_bytes),
                    size(row.stats.bytes_added),
                    size(row.stats.bytes_read),
                    if row.stats.special > 0 {
                        format!("  special files skipped {}", row.stats.special)
                    } else {
                        String::new()
                    }
                );
                for s in skips {
                    let _ = writeln!(
                        out,
                        "  {} {}: {}",
                        if s.missing { "skipped" } else { "warning" },
                        Escaped(&s.path),
                        s.reason
                    );
                }
            }
            WorkspaceOutcome::Failed { reason } => {
                let _ = writeln!(out, "failed  {}  {}", w.workspace, reason);
            }
        }
    }
    for r in &report.rejected {
        let _ = writeln!(out, "skipped {}  {}", Escaped(&r.path), r.reason);
    }
    for r in &report.unlistable {
        let _ = writeln!(out, "failed  {}  directory {}", Escaped(&r.path), r.reason);
    }
    if let Some((at, _)) = report.previous_full_run {
        for w in &report.gone {
            let _ = writeln!(
                out,
                "gone    {w}  no longer under the root (was in the full run of {})",
                timespec::format_local(at)
            );
        }
    }
    if let Some(e) = &report.error {
        let _ = writeln!(out, "error: {e}");
    }
    let _ = writeln!(
        out,
        "summary: {} workspaces, {} ok, {} failed, {} entries skipped; {} files, {}, {} new, {:.2} s",
        report.workspaces.len(),
        t.ok,
        t.failed,
        t.entries_skipped,
        t.files,
        size(t.size_bytes),
        size(t.bytes_added),
        secs
    );
}
