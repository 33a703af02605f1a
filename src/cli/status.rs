//! `status`: the monitoring check. The library's report as one Nagios
//! summary line (with performance data) and details, or `--json`; the
//! Prometheus text file on request.

use std::io::{self, Write};
use std::path::Path;

use serde_json::{json, Value};

use wsnap::escape::{self, Escaped};
use wsnap::human;
use wsnap::status::{self, HeldReason, Level, StatusOptions, StatusReport, WorkspaceState};
use wsnap::{timespec, Error, Result, Store};

use super::flags;
use super::output::{self, lossy, size, ws_json};

/// `status`: never fails; every error is UNKNOWN (exit 3) with a summary line.
pub fn run(
    store_dir: &Path,
    allow_network_fs: bool,
    root: &Path,
    max_age: &str,
    min_free: &str,
    prometheus: Option<&Path>,
    json: bool,
) -> u8 {
    let now_ns = timespec::now_ns();
    let result = report(store_dir, allow_network_fs, root, max_age, min_free, now_ns);
    let (mut level, report, error) = match result {
        Ok(r) => (r.level, Some(r), None),
        Err(e) => (Level::Unknown, None, Some(output::message(&e))),
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
        output::emit(
            level.exit_code(),
            status_json(
                level,
                &summary,
                report.as_ref(),
                error.as_deref(),
                prom_error.as_deref(),
            ),
        );
    } else {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{summary}");
        if let Some(r) = &report {
            print_status_details(&mut out, r);
        }
    }
    level.exit_code()
}

/// The object `status --json` prints (with `schema_version` and `ok`) and
/// its level: what `serve`'s dashboard shows and `/api/status` answers.
pub fn json_object(
    store_dir: &Path,
    allow_network_fs: bool,
    root: &Path,
    max_age: &str,
    min_free: &str,
) -> (Level, Value) {
    let now_ns = timespec::now_ns();
    let (level, report, error) =
        match report(store_dir, allow_network_fs, root, max_age, min_free, now_ns) {
            Ok(r) => (r.level, Some(r), None),
            Err(e) => (Level::Unknown, None, Some(output::message(&e))),
        };
    let summary = summary_line(level, report.as_ref(), error.as_deref(), None);
    let mut v = status_json(level, &summary, report.as_ref(), error.as_deref(), None);
    output::envelope(level.exit_code(), &mut v);
    (level, v)
}

/// The library's report with the flags' values parsed.
fn report(
    store_dir: &Path,
    allow_network_fs: bool,
    root: &Path,
    max_age: &str,
    min_free: &str,
    now_ns: i64,
) -> Result<StatusReport> {
    (|| -> Result<StatusReport> {
        let max_age = flags::parse_duration(max_age).map_err(|e| match e {
            Error::Invalid { detail, .. } => Error::Invalid {
                what: "--max-age",
                detail,
            },
            e => e,
        })?;
        let opts = StatusOptions {
            root: root.to_path_buf(),
            max_age_ns: i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX),
            min_free: flags::parse_min_free(min_free)?,
            now_ns,
        };
        wsnap::require_local(store_dir, allow_network_fs)?;
        let store = Store::open(store_dir)?;
        status::status(&store, &opts)
    })()
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
                "newest": output::time_opt(w.newest_ns),
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
        "checked_at": output::time(r.now_ns),
        "checked_at_ns": r.now_ns,
        "max_age_seconds": r.max_age_ns as f64 / 1e9,
        "root": r.root.display().to_string(),
        "root_readable": r.root_readable,
        "last_run": r.last_run.as_ref().map(|run| json!({
            "started": output::time(run.started_ns),
            "finished": output::time(run.finished_ns),
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
                "since": output::time(h.since_ns),
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
        "remotes": r.remotes.iter().map(|x| json!({
            "name": x.name,
            "url": x.url,
            "last_push": output::time_opt(x.last_push_ns),
            "last_push_ns": x.last_push_ns,
            "newest_pushed_snapshot": output::time_opt(x.newest_pushed_ns),
            "newest_pushed_snapshot_ns": x.newest_pushed_ns,
            "lag_seconds": x.lag_ns(r.now_ns) as f64 / 1e9,
            "last_error": x.last_error,
        })).collect::<Vec<_>>(),
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
                    human::duration(r.now_ns - t)
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
    for x in &r.remotes {
        let _ = writeln!(
            out,
            "remote {}: {}, last push {}, lag {}{}",
            x.name,
            x.url,
            x.last_push_ns
                .map(timespec::format_local)
                .unwrap_or_else(|| "never".into()),
            human::duration(x.lag_ns(r.now_ns)),
            x.last_error
                .as_ref()
                .map(|e| format!(", failing: {e}"))
                .unwrap_or_default()
        );
    }
    for h in &r.retention_held {
        let _ = writeln!(
            out,
            "retention held: {}  since {} ({})",
            h.workspace,
            timespec::format_local(h.since_ns),
            match h.reason {
                HeldReason::Skipped => "its newest snapshots skipped entries",
                HeldReason::Failed => "it failed in the last run",
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
