//! `status`, `stats`, `diff` and `log`: library calls in, human lines or
//! `--json` out (schemas in docs/JSON.md).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::{json, Value};

use wsnap::catalog::PinnedCatalog;
use wsnap::diff::{self, Change, ChangeKind, EntryState};
use wsnap::escape::{self, Escaped};
use wsnap::status::{self, Level, MinFree, StatusOptions, StatusReport, WorkspaceState};
use wsnap::{select, timespec, Error, Result, Store, WorkspaceName};

use super::args;
use super::output::{self, exit, lossy, size};

/// `status`: never fails; every error is UNKNOWN (exit 3) with a summary line.
pub fn run_status(
    store_dir: &Path,
    allow_network_fs: bool,
    root: &Path,
    max_age: &str,
    min_free: &str,
    prometheus: Option<&Path>,
    json: bool,
) -> u8 {
    let now_ns = timespec::now_ns();
    let result = (|| -> Result<StatusReport> {
        let max_age = args::parse_duration(max_age).map_err(|e| match e {
            Error::Invalid { detail, .. } => Error::Invalid {
                what: "--max-age",
                detail,
            },
            e => e,
        })?;
        let opts = StatusOptions {
            root: root.to_path_buf(),
            max_age_ns: i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX),
            min_free: MinFree::parse(min_free)?,
            now_ns,
        };
        wsnap::fscheck::require_local(store_dir, allow_network_fs)?;
        let store = Store::open(store_dir)?;
        status::status(&store, &opts)
    })();
    let (mut level, report, error) = match result {
        Ok(r) => (r.level, Some(r), None),
        Err(e) => (Level::Unknown, None, Some(e.to_string())),
    };
    let mut prom_error = None;
    if let Some(file) = prometheus {
        let text = status::prometheus_text(level, report.as_ref(), now_ns);
        if let Err(e) = status::write_prometheus(file, &text) {
            prom_error = Some(format!(
                "cannot write the Prometheus file {}: {e}",
                escape::path(file)
            ));
            level = level.max(Level::Unknown);
        }
    }
    let summary = summary_line(
        level,
        report.as_ref(),
        error.as_deref(),
        prom_error.as_deref(),
    );
    if json {
        output::print_json(&status_json(
            level,
            &summary,
            report.as_ref(),
            error.as_deref(),
            prom_error.as_deref(),
        ));
    } else {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{summary}");
        if let Some(r) = &report {
            print_status_details(&mut out, r);
        }
    }
    level.exit_code()
}

fn summary_line(
    level: Level,
    r: Option<&StatusReport>,
    error: Option<&str>,
    prom_error: Option<&str>,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(e) = error {
        parts.push(e.to_string());
    }
    if let Some(e) = prom_error {
        parts.push(e.to_string());
    }
    let mut perf = String::new();
    if let Some(r) = r {
        parts.extend(r.problems.iter().map(|p| p.message.clone()));
        let under_root = r.workspaces.len() - r.count(WorkspaceState::NotUnderRoot);
        let mut facts = format!("{under_root} workspaces");
        if let Some(run) = &r.last_run {
            facts += &format!(
                ", last {}run {} ({} ok, {} failed)",
                if run.covered_root.is_some() {
                    "full "
                } else {
                    ""
                },
                timespec::format_local(run.finished_ns),
                run.workspaces_ok,
                run.workspaces_failed
            );
        }
        facts += &format!(
            ", store {}, {:.1}% free",
            size(r.store.total()),
            r.space.free_percent()
        );
        parts.push(facts);
        perf = format!(
            " | workspaces={under_root} stale={} missing={} failed={} store={}B free={}B;;{}",
            r.count(WorkspaceState::Stale),
            r.count(WorkspaceState::Missing),
            r.last_run.as_ref().map_or(0, |x| x.workspaces_failed),
            r.store.total(),
            r.space.avail_bytes,
            r.space.min_free_bytes
        );
    }
    format!("WSNAP {} - {}{perf}", level.label(), parts.join("; "))
}

fn ws_json(w: &WorkspaceName) -> (String, String) {
    (lossy(&w.user), lossy(&w.project))
}

fn status_json(
    level: Level,
    summary: &str,
    r: Option<&StatusReport>,
    error: Option<&str>,
    prom_error: Option<&str>,
) -> Value {
    let mut problems: Vec<Value> = Vec::new();
    for e in [error, prom_error].into_iter().flatten() {
        problems.push(json!({"level": "UNKNOWN", "message": e}));
    }
    let Some(r) = r else {
        return json!({
            "status": level.label(),
            "exit_code": level.exit_code(),
            "summary": summary,
            "problems": problems,
        });
    };
    problems.extend(
        r.problems
            .iter()
            .map(|p| json!({"level": p.level.label(), "message": p.message})),
    );
    let workspaces: Vec<Value> = r
        .workspaces
        .iter()
        .map(|w| {
            let (u, p) = ws_json(&w.workspace);
            json!({
                "user": u,
                "project": p,
                "state": w.state.label(),
                "snapshots": w.snapshots,
                "newest": w.newest_ns.map(timespec::format_rfc3339),
                "newest_ns": w.newest_ns,
                "age_seconds": w.newest_ns.map(|t| (r.now_ns - t) as f64 / 1e9),
            })
        })
        .collect();
    json!({
        "status": level.label(),
        "exit_code": level.exit_code(),
        "summary": summary,
        "problems": problems,
        "checked_at": timespec::format_rfc3339(r.now_ns),
        "max_age_seconds": r.max_age_ns as f64 / 1e9,
        "root": r.root.display().to_string(),
        "root_readable": r.root_readable,
        "last_run": r.last_run.as_ref().map(|run| json!({
            "started": timespec::format_rfc3339(run.started_ns),
            "finished": timespec::format_rfc3339(run.finished_ns),
            "started_ns": run.started_ns,
            "finished_ns": run.finished_ns,
            "workspaces_ok": run.workspaces_ok,
            "workspaces_failed": run.workspaces_failed,
            "entries_skipped": run.entries_skipped,
            "covered_root": run.covered_root.is_some(),
            "error": run.error,
            "not_in_run": r.not_in_last_run.iter().map(|w| {
                let (u, p) = ws_json(w);
                json!({"user": u, "project": p})
            }).collect::<Vec<_>>(),
            "skips": r.last_run_skips.iter().map(|s| {
                let (u, p) = ws_json(&s.workspace);
                json!({"user": u, "project": p, "path": lossy(&s.path), "reason": s.reason})
            }).collect::<Vec<_>>(),
        })),
        "unlistable": r.unlistable.iter().map(|d| json!({
            "path": lossy(&d.path),
            "reason": d.reason,
        })).collect::<Vec<_>>(),
        "gone": r.recently_gone.iter().map(|w| {
            let (u, p) = ws_json(w);
            json!({"user": u, "project": p})
        }).collect::<Vec<_>>(),
        "retention_held": r.retention_held.iter().map(|h| {
            let (u, p) = ws_json(&h.workspace);
            json!({
                "user": u,
                "project": p,
                "reason": h.reason.label(),
                "since": timespec::format_rfc3339(h.since_ns),
                "since_ns": h.since_ns,
            })
        }).collect::<Vec<_>>(),
        "counts": {
            "ok": r.count(WorkspaceState::Ok),
            "stale": r.count(WorkspaceState::Stale),
            "missing": r.count(WorkspaceState::Missing),
            "not_under_root": r.count(WorkspaceState::NotUnderRoot),
        },
        "workspaces": workspaces,
        "store": {
            "size_bytes": r.store.total(),
            "pack_bytes": r.store.pack_bytes,
            "catalog_bytes": r.store.catalog_bytes,
            "tmp_bytes": r.store.tmp_bytes,
        },
        "filesystem": {
            "size_bytes": r.space.size_bytes,
            "avail_bytes": r.space.avail_bytes,
            "free_percent": r.space.free_percent(),
            "min_free_bytes": r.space.min_free_bytes,
        },
    })
}

fn print_status_details(out: &mut impl Write, r: &StatusReport) {
    match &r.last_run {
        Some(run) => {
            let _ = writeln!(
                out,
                "last {}run: {} to {}, {} workspaces ok, {} failed, {} entries skipped{}",
                if run.covered_root.is_some() {
                    "full "
                } else {
                    ""
                },
                timespec::format_local(run.started_ns),
                timespec::format_local(run.finished_ns),
                run.workspaces_ok,
                run.workspaces_failed,
                run.entries_skipped,
                run.error
                    .as_ref()
                    .map_or(String::new(), |e| format!("; failed: {e}"))
            );
        }
        None => {
            let _ = writeln!(out, "last run: none recorded");
        }
    }
    let _ = writeln!(
        out,
        "store: {} (packs {}, catalog {}, tmp {})",
        size(r.store.total()),
        size(r.store.pack_bytes),
        size(r.store.catalog_bytes),
        size(r.store.tmp_bytes)
    );
    let _ = writeln!(
        out,
        "disk: {} free of {} ({:.1}%), minimum {}",
        size(r.space.avail_bytes),
        size(r.space.size_bytes),
        r.space.free_percent(),
        size(r.space.min_free_bytes)
    );
    let _ = writeln!(
        out,
        "workspaces under {}: {} ok, {} stale, {} never snapshotted; {} with snapshots no longer under the root",
        escape::path(&r.root),
        r.count(WorkspaceState::Ok),
        r.count(WorkspaceState::Stale),
        r.count(WorkspaceState::Missing),
        r.count(WorkspaceState::NotUnderRoot)
    );
    for w in &r.workspaces {
        match (w.state, w.newest_ns) {
            (WorkspaceState::Stale, Some(t)) => {
                let _ = writeln!(
                    out,
                    "stale: {}  newest snapshot {} ({} ago)",
                    w.workspace,
                    timespec::format_local(t),
                    status::human_duration(r.now_ns - t)
                );
            }
            (WorkspaceState::Missing, _) => {
                let _ = writeln!(out, "missing: {}  no snapshot", w.workspace);
            }
            _ => {}
        }
    }
    for d in &r.unlistable {
        let _ = writeln!(out, "cannot list: {}  {}", Escaped(&d.path), d.reason);
    }
    for w in &r.recently_gone {
        let newest = r
            .workspaces
            .iter()
            .find(|x| &x.workspace == w)
            .and_then(|x| x.newest_ns);
        let _ = writeln!(
            out,
            "gone: {w}  no longer under the root{}",
            newest.map_or(String::new(), |t| format!(
                ", newest snapshot {}",
                timespec::format_local(t)
            ))
        );
    }
    if r.last_run.as_ref().is_some_and(|x| x.workspaces_failed > 0) {
        for w in &r.not_in_last_run {
            let _ = writeln!(out, "not in last run: {w}");
        }
    }
    for h in &r.retention_held {
        let _ = writeln!(
            out,
            "retention held: {}  since {} ({})",
            h.workspace,
            timespec::format_local(h.since_ns),
            match h.reason {
                status::HeldReason::Skipped => "its newest snapshots skipped entries",
                status::HeldReason::Failed => "it failed in the last run",
            }
        );
    }
    for s in &r.last_run_skips {
        let _ = writeln!(
            out,
            "skipped in last run: {}: {}: {}",
            s.workspace,
            Escaped(&s.path),
            s.reason
        );
    }
}

fn ratio_json(r: Option<f64>) -> Value {
    r.map_or(Value::Null, |v| json!(v))
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |v| format!("{v:.2}x"))
}

/// `stats [USER/PROJECT]`.
pub fn run_stats(store_dir: &Path, workspace: Option<&OsString>, json: bool) -> Result<u8> {
    let ws = workspace.map(args::workspace).transpose()?;
    let store = Store::open(store_dir)?;
    let r = wsnap::stats::stats(&store, ws.as_ref())?;
    if json {
        output::print_json(&json!({
            "snapshots": r.snapshots,
            "workspace_count": r.workspace_count,
            "logical_bytes": r.logical_bytes,
            "latest_logical_bytes": r.latest_logical_bytes,
            "pack_bytes": r.pack_bytes,
            "referenced_bytes": r.referenced_bytes,
            "chunks": r.chunks,
            "chunk_raw_bytes": r.chunk_raw_bytes,
            "chunk_stored_bytes": r.chunk_stored_bytes,
            "metadata_blobs": r.metadata_blobs,
            "metadata_stored_bytes": r.metadata_stored_bytes,
            "unreferenced_blobs": r.unreferenced_blobs,
            "dedup_ratio": ratio_json(r.dedup_ratio()),
            "compression_ratio": ratio_json(r.compression_ratio()),
            "overall_ratio": ratio_json(r.overall_ratio()),
            "workspaces": r.workspaces.iter().map(|w| {
                let (u, p) = ws_json(&w.workspace);
                json!({
                    "user": u,
                    "project": p,
                    "snapshots": w.snapshots,
                    "latest_size_bytes": w.latest_size_bytes,
                    "total_size_bytes": w.total_size_bytes,
                    "unique_bytes": w.unique_bytes,
                    "unique_content_bytes": w.unique_content_bytes,
                })
            }).collect::<Vec<_>>(),
        }));
        return Ok(exit::OK);
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "snapshots:          {} of {} workspaces",
        r.snapshots, r.workspace_count
    );
    let _ = writeln!(
        out,
        "logical size:       {} (all snapshots), {} (newest of each workspace)",
        size(r.logical_bytes),
        size(r.latest_logical_bytes)
    );
    let _ = writeln!(
        out,
        "distinct content:   {} in {} chunks, stored as {}",
        size(r.chunk_raw_bytes),
        r.chunks,
        size(r.chunk_stored_bytes)
    );
    let _ = writeln!(
        out,
        "stored size:        {} in packs ({} referenced, {} metadata)",
        size(r.pack_bytes),
        size(r.referenced_bytes),
        size(r.metadata_stored_bytes)
    );
    let _ = writeln!(
        out,
        "dedup ratio:        {}   compression ratio: {}   overall: {}",
        ratio_text(r.dedup_ratio()),
        ratio_text(r.compression_ratio()),
        ratio_text(r.overall_ratio())
    );
    let _ = writeln!(
        out,
        "\n{:<28}  {:>9}  {:>10}  {:>10}  {:>10}",
        "WORKSPACE", "SNAPSHOTS", "LATEST", "UNIQUE", "UNIQUE DATA"
    );
    for w in &r.workspaces {
        let _ = writeln!(
            out,
            "{:<28}  {:>9}  {:>10}  {:>10}  {:>10}",
            w.workspace.to_string(),
            w.snapshots,
            size(w.latest_size_bytes),
            size(w.unique_bytes),
            size(w.unique_content_bytes)
        );
    }
    Ok(exit::OK)
}

fn state_json(e: &Option<EntryState>) -> Value {
    match e {
        None => Value::Null,
        Some(e) => json!({
            "type": e.kind.label(),
            "size": e.size,
            "mode": format!("{:04o}", e.mode),
            "mtime": timespec::format_rfc3339(e.mtime_ns),
            "target": e.target.as_deref().map(lossy),
        }),
    }
}

fn change_json(c: &Change) -> Value {
    json!({
        "path": lossy(&c.path),
        "change": c.kind.label(),
        "content_changed": c.content_changed,
        "mode_changed": c.mode_changed,
        "size_change": c.size_change(),
        "old": state_json(&c.old),
        "new": state_json(&c.new),
    })
}

/// `+ added`, `- removed`, `M modified`, `m mode only`, `T type changed`.
fn change_text(c: &Change) -> String {
    let slash = |e: &Option<EntryState>| {
        if e.as_ref().is_some_and(|e| e.kind == diff::EntryType::Dir) {
            "/"
        } else {
            ""
        }
    };
    let path = Escaped(&c.path);
    let mode = |c: &Change| match (&c.old, &c.new) {
        (Some(o), Some(n)) if c.mode_changed => format!("  mode {:04o} -> {:04o}", o.mode, n.mode),
        _ => String::new(),
    };
    let sz = |e: &EntryState| match e.kind {
        diff::EntryType::File => size(e.size),
        diff::EntryType::Dir => "dir".into(),
        diff::EntryType::Symlink => format!("-> {}", Escaped(e.target.as_deref().unwrap_or(b""))),
    };
    match (c.kind, &c.old, &c.new) {
        (ChangeKind::Added, _, Some(n)) => format!("+ {path}{}  ({})", slash(&c.new), sz(n)),
        (ChangeKind::Removed, Some(o), _) => format!("- {path}{}  ({})", slash(&c.old), sz(o)),
        (ChangeKind::TypeChanged, Some(o), Some(n)) => format!(
            "T {path}  {} -> {}{}",
            o.kind.label(),
            n.kind.label(),
            mode(c)
        ),
        (ChangeKind::Modified, Some(o), Some(n)) if c.content_changed => {
            let delta = c.size_change();
            format!(
                "M {path}{}  ({} -> {}, {}{}){}",
                slash(&c.new),
                sz(o),
                sz(n),
                if delta < 0 { "-" } else { "+" },
                size(delta.unsigned_abs()),
                mode(c)
            )
        }
        _ => format!("m {path}{}{}", slash(&c.new), mode(c)),
    }
}

/// `diff USER/PROJECT FROM TO`.
pub fn run_diff(
    store_dir: &Path,
    workspace: &OsString,
    from: &str,
    to: &str,
    json: bool,
) -> Result<u8> {
    let ws = args::workspace(workspace)?;
    let (sel_from, sel_to) = (diff::parse_selector(from)?, diff::parse_selector(to)?);
    let store = Store::open(store_dir)?;
    // Same read path as restore: readers' lock, then one pinned view.
    let _readers = store.read_guard()?;
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    let (a, b, (changes, trees_read)) = pinned.with(|cat| {
        let a = select::select(cat, &ws, &sel_from)?;
        let b = select::select(cat, &ws, &sel_to)?;
        let d = diff::diff(&store, cat, &a, &b)?;
        Ok((a, b, d))
    })?;
    let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    let file_bytes = |e: &Option<EntryState>| {
        e.as_ref()
            .filter(|e| e.kind == diff::EntryType::File)
            .map_or(0, |e| e.size)
    };
    let added_bytes: u64 = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Removed)
        .map(|c| file_bytes(&c.new).saturating_sub(file_bytes(&c.old)))
        .sum();
    let removed_bytes: u64 = changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Added)
        .map(|c| file_bytes(&c.old).saturating_sub(file_bytes(&c.new)))
        .sum();
    if json {
        output::print_json(&json!({
            "from": output::snapshot_json(&a),
            "to": output::snapshot_json(&b),
            "changes": changes.iter().map(change_json).collect::<Vec<_>>(),
            "summary": {
                "added": count(ChangeKind::Added),
                "removed": count(ChangeKind::Removed),
                "modified": count(ChangeKind::Modified),
                "type_changed": count(ChangeKind::TypeChanged),
                "bytes_grown": added_bytes,
                "bytes_shrunk": removed_bytes,
                "size_change": b.stats.size_bytes as i64 - a.stats.size_bytes as i64,
                "trees_read": trees_read,
            },
        }));
        return Ok(exit::OK);
    }
    let mut out = io::stdout().lock();
    for c in &changes {
        let _ = writeln!(out, "{}", change_text(c));
    }
    let _ = writeln!(
        out,
        "diff {ws} {} ({}) -> {} ({}): {} added, {} removed, {} modified, {} type changes; +{} -{}",
        a.id.0.short(),
        timespec::format_local(a.time_ns),
        b.id.0.short(),
        timespec::format_local(b.time_ns),
        count(ChangeKind::Added),
        count(ChangeKind::Removed),
        count(ChangeKind::Modified),
        count(ChangeKind::TypeChanged),
        size(added_bytes),
        size(removed_bytes)
    );
    Ok(exit::OK)
}

/// `log USER/PROJECT PATH`.
pub fn run_log(store_dir: &Path, workspace: &OsString, path: &OsString, json: bool) -> Result<u8> {
    let ws = args::workspace(workspace)?;
    let path = path.as_bytes().to_vec();
    let store = Store::open(store_dir)?;
    let _readers = store.read_guard()?;
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    let (snaps, (events, trees_read)) = pinned.with(|cat| {
        let mut snaps = cat.snapshots(Some(&ws))?;
        if snaps.is_empty() {
            return Err(Error::NotFound(format!(
                "no snapshots of workspace {ws} in this store (see `wsnap list`)"
            )));
        }
        snaps.sort_by_key(|s| s.time_ns);
        let l = diff::log(&store, cat, &snaps, &path)?;
        Ok((snaps, l))
    })?;
    if json {
        output::print_json(&json!({
            "user": lossy(&ws.user),
            "project": lossy(&ws.project),
            "path": lossy(&path),
            "snapshots_examined": snaps.len(),
            "trees_read": trees_read,
            "events": events.iter().map(|e| {
                let mut v = change_json(&e.change);
                v["snapshot"] = output::snapshot_json(&e.snapshot);
                v
            }).collect::<Vec<_>>(),
        }));
        return Ok(exit::OK);
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<19}  {:<8}  {:<12}  {:>10}  {:<4}  DETAIL",
        "TIME", "SNAPSHOT", "CHANGE", "SIZE", "MODE"
    );
    for e in &events {
        let c = &e.change;
        let now = c.new.as_ref();
        let detail = match c.kind {
            ChangeKind::Modified if c.content_changed => {
                let d = c.size_change();
                let mut s = format!(
                    "{}{}",
                    if d < 0 { "-" } else { "+" },
                    size(d.unsigned_abs())
                );
                if c.mode_changed {
                    s += &format!(
                        ", mode {:04o} -> {:04o}",
                        c.old.as_ref().map_or(0, |o| o.mode),
                        now.map_or(0, |n| n.mode)
                    );
                }
                s
            }
            ChangeKind::Modified => format!(
                "mode {:04o} -> {:04o}",
                c.old.as_ref().map_or(0, |o| o.mode),
                now.map_or(0, |n| n.mode)
            ),
            ChangeKind::TypeChanged => format!(
                "{} -> {}",
                c.old.as_ref().map_or("", |o| o.kind.label()),
                now.map_or("", |n| n.kind.label())
            ),
            ChangeKind::Added | ChangeKind::Removed => String::new(),
        };
        let change = match (c.kind, c.content_changed) {
            (ChangeKind::Modified, false) => "mode",
            (k, _) => k.label(),
        };
        let _ = writeln!(
            out,
            "{:<19}  {:<8}  {:<12}  {:>10}  {:<4}  {}",
            timespec::format_local(e.snapshot.time_ns),
            e.snapshot.id.0.short(),
            change,
            now.map_or_else(|| "-".into(), |n| size(n.size)),
            now.map_or_else(|| "-".into(), |n| format!("{:04o}", n.mode)),
            detail
        );
    }
    Ok(exit::OK)
}
