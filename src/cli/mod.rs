//! Subcommand dispatch: options in, library calls, results out, one exit code.

mod admin;
mod args;
mod logging;
mod output;
mod progress;
mod query;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use wsnap::escape::{self, Escaped};
use wsnap::restore::{self, RestoreOptions};
use wsnap::select;
use wsnap::snapshot::{self, WorkspaceOutcome};
use wsnap::tree::EntryKind;
use wsnap::{gc, timespec, Error, InitOutcome, Result, Store};

use args::{Cli, Command};
use output::{exit, lossy, size};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    progress::set_enabled(!cli.quiet);
    // Snapshot and restore hold one descriptor per level of nesting.
    wsnap::dirfd::raise_open_file_limit(1 << 20);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(output::code_for(e.kind()))
        }
    }
}

fn run(cli: Cli) -> Result<u8> {
    let store_dir = cli.store.as_path();
    match &cli.command {
        Command::Completions { .. } | Command::Man => {}
        // `status` reports it as UNKNOWN itself.
        Command::Status { .. } => {}
        _ => wsnap::fscheck::require_local(store_dir, cli.unsafe_allow_network_fs)?,
    }
    match &cli.command {
        Command::Init { compression_level } => {
            let params = wsnap::StoreParams {
                zstd_level: *compression_level,
                ..wsnap::StoreParams::DEFAULT
            };
            match Store::init_with(store_dir, &params)? {
                InitOutcome::Created => println!("created store {}", escape::path(store_dir)),
                InitOutcome::AlreadyExists => {
                    println!(
                        "store {} already exists; nothing to do",
                        escape::path(store_dir)
                    )
                }
            }
            Ok(exit::OK)
        }
        Command::Snapshot(a) => {
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
                Some(a.retention.options(opts.workspaces.clone(), false)?)
            } else {
                None
            };
            let t0 = std::time::Instant::now();
            let note = format!(
                "snapshot started {}",
                timespec::format_local(timespec::now_ns())
            );
            let lock = store.lock(opts.lock_wait, &note)?;
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
                        tracing::error!("prune after the failed write failed too: {e}")
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
                    tracing::warn!(
                        "{first_error}; prune freed {}: snapshotting the {} workspaces not yet written again",
                        size(gc.as_ref().map_or(0, |g| g.bytes_freed)),
                        report.unwritten.len()
                    );
                    let again = report.unwritten.len();
                    report = progress::run("snapshot", "files", |pr| {
                        snapshot::run_again_locked(&store, report, &opts.excludes, &lock, pr)
                    })?;
                    recovered = Some((first_error.to_string(), again));
                }
            }
            let secs = t0.elapsed().as_secs_f64();
            log_snapshot_problems(&report);
            drop(lock);
            if a.json {
                let mut v = snapshot_report_json(&report, secs);
                if let Some(g) = &gc {
                    v["prune"] = gc_json(g);
                }
                v["recovered_from"] = match &recovered {
                    Some((e, n)) => serde_json::json!({"error": e, "workspaces_retried": n}),
                    None => serde_json::Value::Null,
                };
                output::print_json(&v);
            } else {
                print_snapshot_report(&report, secs);
                if let Some((e, n)) = &recovered {
                    println!(
                        "note: {e}; the prune made room and the {n} workspaces not yet written were snapshotted again"
                    );
                }
                if let Some(g) = &gc {
                    print_gc_report(g);
                } else if a.prune && report.error.is_some() {
                    println!(
                        "prune: skipped because the run failed as a whole; nothing was forgotten"
                    );
                } else if a.prune {
                    println!("prune: failed (see the error above); nothing was forgotten");
                }
            }
            // Last, so in a log it closes the run's lines.
            let t = Totals::of(&report);
            tracing::info!(
                "snapshot run finished in {secs:.1} s: {} ok, {} failed, {} entries skipped, {} new",
                t.ok,
                t.failed,
                t.skipped,
                size(t.added)
            );
            if let Some(e) = &report.store_error {
                // Printed last, after the report that names the workspaces
                // not snapshotted.
                tracing::error!("{e}");
                return Ok(output::code_for(e.kind()));
            }
            Ok(if report.all_ok() {
                exit::OK
            } else {
                exit::PARTIAL
            })
        }
        Command::Prune {
            workspaces,
            retention,
            dry_run,
            lock_wait,
            json,
        } => {
            let ws = workspaces
                .iter()
                .map(args::workspace)
                .collect::<Result<Vec<_>>>()?;
            let opts = retention.options(ws, *dry_run)?;
            let store = Store::open(store_dir)?;
            let lock = store.lock(args::parse_duration(lock_wait)?, "prune")?;
            let r = progress::run("prune", "packs", |p| gc::prune(&store, &opts, &lock, p))?;
            drop(lock);
            show_gc(&r, *json);
            Ok(exit::OK)
        }
        Command::Repair {
            lock_wait,
            force,
            json,
        } => {
            let r = wsnap::repair::repair(store_dir, args::parse_duration(lock_wait)?, *force)?;
            let damaged = r.snapshots.iter().filter(|s| s.damaged).count();
            if *json {
                output::print_json(&serde_json::json!({
                    "ok": r.damaged_packs.is_empty() && r.lost.is_empty() && damaged == 0 && r.journal_problems.is_empty(),
                    "packs": r.packs,
                    "blobs": r.blobs,
                    "missing_refs": r.missing_refs,
                    "damaged_packs": r.damaged_packs.iter().map(|d| serde_json::json!({
                        "path": d.path.display().to_string(),
                        "problem": d.problem,
                        "records_saved": d.records_saved,
                        "moved_to": d.moved_to.display().to_string(),
                    })).collect::<Vec<_>>(),
                    "snapshots": r.snapshots.iter().map(output::snapshot_json).collect::<Vec<_>>(),
                    "lost": r.lost.iter().map(output::snapshot_json).collect::<Vec<_>>(),
                    "journal_problems": r.journal_problems,
                    "moved_aside": r.moved_aside.as_ref().map(|p| p.display().to_string()),
                    "params_from": r.params_from,
                    "salvaged_by_old_catalog": r.salvaged_by_old_catalog,
                    "old_catalogs_removed": r.old_catalogs_removed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                }));
            } else {
                let mut out = io::stdout().lock();
                for d in &r.damaged_packs {
                    let _ = writeln!(
                        out,
                        "damaged pack {}: {}; {} intact records copied to a new pack; file moved to {}",
                        escape::path(&d.path),
                        d.problem,
                        d.records_saved,
                        escape::path(&d.moved_to)
                    );
                }
                for p in &r.journal_problems {
                    let _ = writeln!(out, "damaged journal {p}");
                }
                for s in r.snapshots.iter().filter(|s| s.damaged) {
                    let _ = writeln!(
                        out,
                        "DAMAGED snapshot {} of {} at {}: some of its data is in no pack; restore recovers the rest",
                        s.id.0.short(),
                        s.workspace,
                        timespec::format_local(s.time_ns)
                    );
                }
                for s in &r.lost {
                    let _ = writeln!(
                        out,
                        "LOST snapshot {} of {} at {}: its root tree is in no pack (its journal record is kept under damaged/)",
                        s.id.0.short(),
                        s.workspace,
                        timespec::format_local(s.time_ns)
                    );
                }
                if let Some(p) = &r.moved_aside {
                    let _ = writeln!(
                        out,
                        "old catalog, journals and damaged files kept in {}",
                        escape::path(p)
                    );
                }
                if r.salvaged_by_old_catalog > 0 {
                    let _ = writeln!(
                        out,
                        "{} records with a damaged header saved at the offsets the old catalog gave",
                        r.salvaged_by_old_catalog
                    );
                }
                for p in &r.old_catalogs_removed {
                    let _ = writeln!(
                        out,
                        "removed old catalog copy {} (the newest {} are kept)",
                        escape::path(p),
                        wsnap::repair::KEPT_CATALOG_COPIES
                    );
                }
                let _ = writeln!(
                    out,
                    "repair: {} packs, {} blobs indexed; {} snapshots recovered ({} damaged), {} lost; parameters from {}",
                    r.packs,
                    r.blobs,
                    r.snapshots.len(),
                    damaged,
                    r.lost.len(),
                    r.params_from
                );
            }
            Ok(
                if r.lost.is_empty() && damaged == 0 && r.damaged_packs.is_empty() {
                    exit::OK
                } else {
                    exit::PARTIAL
                },
            )
        }
        Command::Check { read_data, json } => {
            let store = Store::open(store_dir)?;
            let r = progress::run("check", "packs", |p| {
                wsnap::check::check_with_progress(&store, *read_data, p)
            })?;
            if *json {
                output::print_json(&serde_json::json!({
                    "ok": r.findings.is_empty(),
                    "packs": r.packs,
                    "blobs": r.blobs,
                    "snapshots": r.snapshots,
                    "bytes_read": r.bytes_read,
                    "findings": r.findings.iter().map(|f| serde_json::json!({"problem": f.problem, "affects": f.affects})).collect::<Vec<_>>(),
                    "orphan_packs": r.orphan_packs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    "recorded": match &r.recorded {
                        None => serde_json::Value::Null,
                        Some(wsnap::check::Recorded::Done { blobs_unindexed, snapshots_marked }) => serde_json::json!({
                            "blobs_unindexed": blobs_unindexed,
                            "snapshots_marked_damaged": snapshots_marked,
                        }),
                        Some(wsnap::check::Recorded::NotRecorded(why)) => serde_json::json!({"error": why}),
                    },
                }));
            } else {
                let mut out = io::stdout().lock();
                for f in &r.findings {
                    let _ = writeln!(out, "damaged: {}", f.problem);
                    for a in &f.affects {
                        let _ = writeln!(out, "  breaks {a}");
                    }
                }
                for o in &r.orphan_packs {
                    let _ = writeln!(
                        out,
                        "note: pack file unknown to the catalog (removed by the next prune): {}",
                        escape::path(o)
                    );
                }
                match &r.recorded {
                    None => {}
                    Some(wsnap::check::Recorded::Done {
                        blobs_unindexed,
                        snapshots_marked,
                    }) => {
                        let _ = writeln!(
                            out,
                            "recorded: {blobs_unindexed} damaged blobs left the index and {snapshots_marked} snapshots are marked damaged; \
                             the next snapshot reads the files that held them again and stores them (while the files exist)"
                        );
                    }
                    Some(wsnap::check::Recorded::NotRecorded(why)) => {
                        let _ = writeln!(
                            out,
                            "not recorded ({why}): later snapshots may still reuse the damaged data; run check again"
                        );
                    }
                }
                let _ = writeln!(
                    out,
                    "check: {} packs, {} blobs, {} snapshots{}: {}",
                    r.packs,
                    r.blobs,
                    r.snapshots,
                    if *read_data {
                        format!(", {} read and verified", size(r.bytes_read))
                    } else {
                        String::new()
                    },
                    if r.findings.is_empty() {
                        "no problems found".to_string()
                    } else {
                        format!("{} problems found", r.findings.len())
                    }
                );
            }
            Ok(if r.findings.is_empty() {
                exit::OK
            } else {
                exit::PARTIAL
            })
        }
        Command::Forget {
            snapshots,
            dry_run,
            lock_wait,
            json,
        } => {
            let store = Store::open(store_dir)?;
            let r = gc::forget(
                &store,
                snapshots,
                *dry_run,
                args::parse_duration(lock_wait)?,
            )?;
            show_gc(&r, *json);
            // The purge is incomplete: say exactly what is left, and how to
            // remove it (on stderr, also with --json).
            for d in &r.damaged_left {
                let ranges: Vec<String> =
                    d.ranges.iter().map(|(a, b)| format!("{a}..{b}")).collect();
                eprintln!(
                    "wsnap forget: {} bytes of {} (at {}) may still hold data of the forgotten \
                     snapshots: they cannot be told apart from what a snapshot marked damaged \
                     lacks. Forget the damaged snapshots and run forget again, or, if you need \
                     no forensic copy of that pack, remove it: rm -- {}",
                    d.bytes(),
                    escape::path(&d.path),
                    ranges.join(", "),
                    escape::path(&d.path),
                );
            }
            Ok(if r.damaged_left.is_empty() {
                exit::OK
            } else {
                exit::PARTIAL
            })
        }
        Command::List { workspace, json } => {
            let store = Store::open(store_dir)?;
            let ws = workspace.as_ref().map(args::workspace).transpose()?;
            let rows = store.catalog_for_reading()?.snapshots(ws.as_ref())?;
            if let (Some(ws), true) = (&ws, rows.is_empty()) {
                return Err(Error::NotFound(format!("no snapshots of workspace {ws}")));
            }
            if *json {
                output::print_json(&serde_json::Value::Array(
                    rows.iter().map(output::snapshot_json).collect(),
                ));
            } else {
                let mut out = io::stdout().lock();
                let _ = writeln!(
                    out,
                    "{:<8}  {:<26}  {:<24}  {:>8}  {:>10}  {:>10}",
                    "ID", "TIME", "WORKSPACE", "FILES", "SIZE", "ADDED"
                );
                for s in &rows {
                    let _ = writeln!(
                        out,
                        "{:<8}  {:<26}  {:<24}  {:>8}  {:>10}  {:>10}{}",
                        s.id.0.short(),
                        // With the offset: the two passes of a repeated
                        // hour (DST) look alike without it.
                        timespec::format_local_offset(s.time_ns),
                        s.workspace.to_string(),
                        s.stats.files,
                        size(s.stats.size_bytes),
                        size(s.stats.bytes_added),
                        if s.damaged { "  DAMAGED" } else { "" }
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Ls {
            workspace,
            which,
            path,
            json,
        } => {
            let ws = args::workspace(workspace)?;
            let sel = which.selector()?;
            let store = Store::open(store_dir)?;
            // Same read path as restore: readers' lock, then one pinned
            // view, so a prune committing meanwhile changes nothing we read.
            let _readers = store.read_guard()?;
            let cat = store.catalog_for_reading()?;
            cat.pin_view()?;
            let snap = select::select(&cat, &ws, &sel)?;
            wsnap::failpoint::pause_point("ls.selected");
            let p = args::path_bytes(path).unwrap_or_default();
            let entries = select::list_entries(&store, &cat, &snap, &p)?;
            if *json {
                let list: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        let (kind, target) = match &e.kind {
                            EntryKind::File { .. } => ("file", None),
                            EntryKind::Dir { .. } => ("dir", None),
                            EntryKind::Symlink { target } => ("symlink", Some(lossy(target))),
                        };
                        serde_json::json!({
                            "name": lossy(&e.name),
                            "type": kind,
                            "mode": format!("{:04o}", e.mode),
                            "size": e.size,
                            "mtime": timespec::format_rfc3339(e.mtime_ns),
                            "uid": e.uid,
                            "gid": e.gid,
                            "target": target,
                        })
                    })
                    .collect();
                output::print_json(&serde_json::json!({
                    "snapshot": output::snapshot_json(&snap),
                    "path": lossy(&p),
                    "entries": list,
                }));
            } else {
                let mut out = io::stdout().lock();
                for e in &entries {
                    let (k, sz, suffix) = match &e.kind {
                        EntryKind::File { .. } => ('-', size(e.size), String::new()),
                        EntryKind::Dir { .. } => ('d', "-".into(), "/".into()),
                        EntryKind::Symlink { target } => {
                            ('l', "-".into(), format!(" -> {}", Escaped(target)))
                        }
                    };
                    let _ = writeln!(
                        out,
                        "{}  {:>10}  {}  {}{}",
                        output::mode_string(k, e.mode),
                        sz,
                        timespec::format_local(e.mtime_ns),
                        Escaped(&e.name),
                        suffix
                    );
                }
            }
            Ok(exit::OK)
        }
        Command::Status {
            root,
            max_age,
            min_free,
            prometheus,
            json,
        } => Ok(query::run_status(
            store_dir,
            cli.unsafe_allow_network_fs,
            root,
            max_age,
            min_free,
            prometheus.as_deref(),
            *json,
        )),
        Command::Stats { workspace, json } => {
            query::run_stats(store_dir, workspace.as_ref(), *json)
        }
        Command::Diff {
            workspace,
            from,
            to,
            json,
        } => query::run_diff(store_dir, workspace, from, to, *json),
        Command::Log {
            workspace,
            path,
            json,
        } => query::run_log(store_dir, workspace, path, *json),
        Command::Restore {
            workspace,
            which,
            to,
            path,
            overwrite,
            json,
        } => {
            let ws = args::workspace(workspace)?;
            let sel = which.selector()?;
            let store = Store::open(store_dir)?;
            let snap = select::select(&store.catalog_for_reading()?, &ws, &sel)?;
            let opts = RestoreOptions {
                target: to.clone(),
                path: args::path_bytes(path),
                overwrite: *overwrite,
            };
            let t0 = std::time::Instant::now();
            let r = progress::run("restore", "files", |p| {
                restore::restore_with_progress(&store, &snap, &opts, p)
            })?;
            let secs = t0.elapsed().as_secs_f64();
            if *json {
                output::print_json(&serde_json::json!({
                    "snapshot": output::snapshot_json(&snap),
                    "target": to.display().to_string(),
                    "files": r.files,
                    "dirs": r.dirs,
                    "symlinks": r.symlinks,
                    "bytes": r.bytes,
                    "seconds": secs,
                    "damaged": r.damaged.iter().map(|(p, why)| serde_json::json!({"path": lossy(p), "reason": why})).collect::<Vec<_>>(),
                }));
            } else {
                for (p, why) in &r.damaged {
                    tracing::error!("damaged: {}: {why}", Escaped(p));
                }
                println!(
                    "restored {} snapshot {} ({}) into {}: {} files, {} dirs, {} symlinks, {} in {:.1} s{}",
                    ws,
                    snap.id.0.short(),
                    timespec::format_local(snap.time_ns),
                    escape::path(to),
                    r.files,
                    r.dirs,
                    r.symlinks,
                    size(r.bytes),
                    secs,
                    if r.damaged.is_empty() {
                        String::new()
                    } else {
                        format!("; {} paths damaged (listed above)", r.damaged.len())
                    }
                );
            }
            Ok(if r.damaged.is_empty() {
                exit::OK
            } else {
                exit::PARTIAL
            })
        }
        Command::ImportRsync(a) => admin::import_rsync(store_dir, a),
        Command::Completions { shell } => Ok(admin::completions(*shell)),
        Command::Man => Ok(admin::man()),
    }
}

/// Failed workspaces and skipped files, as log lines (with a timestamp in
/// the cron log); the report on stdout lists them too.
fn log_snapshot_problems(report: &snapshot::RunReport) {
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
            wsnap::escape::Escaped(&r.path),
            r.reason
        );
    }
    for r in &report.unlistable {
        tracing::error!(
            "{}: failed, directory {}",
            wsnap::escape::Escaped(&r.path),
            r.reason
        );
    }
    for w in &report.gone {
        tracing::warn!("{w}: no longer under the root (in the previous full run)");
    }
    if let Some(e) = &report.error {
        tracing::error!("snapshot run failed: {e}");
    }
}

/// The workspaces whose retention this run holds: those it could not read
/// whole ([`snapshot::RunReport::held`]), and every workspace of the store
/// under an entry of the root that was rejected (a user or project that is
/// now a symlink or a file: its snapshots may be all that is left of it).
fn held_workspaces(
    store: &Store,
    report: &snapshot::RunReport,
) -> Result<Vec<wsnap::WorkspaceName>> {
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

fn show_gc(r: &gc::GcReport, json: bool) {
    if json {
        output::print_json(&gc_json(r));
    } else {
        print_gc_report(r);
    }
}

fn gc_json(r: &gc::GcReport) -> serde_json::Value {
    serde_json::json!({
        "dry_run": r.dry_run,
        "forgotten": r.forgotten.iter().map(output::snapshot_json).collect::<Vec<_>>(),
        "kept": r.kept,
        "blobs_deleted": r.blobs_deleted,
        "dead_bytes": r.dead_bytes,
        "packs_deleted": r.packs_deleted,
        "packs_rewritten": r.packs_rewritten,
        "packs_written": r.packs_written,
        "orphan_packs_removed": r.orphan_packs_removed,
        "bytes_freed": r.bytes_freed,
        "pack_deletion_deferred": r.pack_deletion_deferred,
        "damaged_packs_rewritten": r.damaged_packs_rewritten,
        "damaged_bytes_zeroed": r.damaged_bytes_zeroed,
        "damaged_left": r.damaged_left.iter().map(|d| serde_json::json!({
            "path": d.path.display().to_string(),
            "bytes": d.bytes(),
            "ranges": d.ranges,
        })).collect::<Vec<_>>(),
        "held": r.held.iter().map(|(w, n)| serde_json::json!({
            "user": lossy(&w.user),
            "project": lossy(&w.project),
            "snapshots_kept": n,
        })).collect::<Vec<_>>(),
    })
}

fn print_gc_report(r: &gc::GcReport) {
    tracing::info!(
        "prune {}: {} snapshots forgotten, {} packs deleted, {} rewritten, {} freed",
        if r.dry_run { "(dry run)" } else { "finished" },
        r.forgotten.len(),
        r.packs_deleted,
        r.packs_rewritten,
        size(r.bytes_freed)
    );
    let mut out = io::stdout().lock();
    for (w, n) in &r.held {
        let _ = writeln!(
            out,
            "held    {w}  retention held: the run could not read it whole; all {n} snapshots kept"
        );
    }
    let verb = if r.dry_run { "would forget" } else { "forgot" };
    for s in &r.forgotten {
        let _ = writeln!(
            out,
            "{verb}  {}  {}  {}",
            s.workspace,
            s.id.0.short(),
            timespec::format_local(s.time_ns)
        );
    }
    if r.dry_run {
        let _ = writeln!(
            out,
            "dry run: would forget {} snapshots, keep {}; would delete {} packs and rewrite {}; about {} freed",
            r.forgotten.len(),
            r.kept,
            r.packs_deleted,
            r.packs_rewritten,
            size(r.bytes_freed)
        );
    } else {
        let _ = writeln!(
            out,
            "prune: forgot {} snapshots, kept {}; {} blobs dead; deleted {} packs, rewrote {} into {}, removed {} orphan packs; {} freed",
            r.forgotten.len(),
            r.kept,
            r.blobs_deleted,
            r.packs_deleted,
            r.packs_rewritten,
            r.packs_written,
            r.orphan_packs_removed,
            size(r.bytes_freed)
        );
    }
    if r.damaged_packs_rewritten > 0 {
        let _ = writeln!(
            out,
            "damaged/: rewrote {} damaged packs, {} of data no snapshot uses zeroed",
            r.damaged_packs_rewritten,
            size(r.damaged_bytes_zeroed)
        );
    }
    if r.pack_deletion_deferred {
        let _ = writeln!(
            out,
            "note: a restore was reading the store; old pack files stay until the next prune"
        );
    }
}

/// The summary line's figures.
struct Totals {
    ok: u64,
    failed: u64,
    files: u64,
    bytes: u64,
    added: u64,
    skipped: usize,
}

impl Totals {
    fn of(report: &snapshot::RunReport) -> Totals {
        let mut t = Totals {
            ok: 0,
            failed: 0,
            files: 0,
            bytes: 0,
            added: 0,
            skipped: report.rejected.len(),
        };
        t.failed += report.unlistable.len() as u64;
        for w in &report.workspaces {
            match &w.outcome {
                WorkspaceOutcome::Committed { row, skips } => {
                    t.ok += 1;
                    t.files += row.stats.files;
                    t.bytes += row.stats.size_bytes;
                    t.added += row.stats.bytes_added;
                    t.skipped += skips.iter().filter(|s| s.missing).count();
                }
                WorkspaceOutcome::Failed { .. } => t.failed += 1,
            }
        }
        t
    }
}

fn snapshot_report_json(report: &snapshot::RunReport, secs: f64) -> serde_json::Value {
    let t = Totals::of(report);
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
        "ok": report.all_ok(),
        "store_error": report.store_error.as_ref().map(|e| e.to_string()),
        "started": timespec::format_rfc3339(report.started_ns),
        "finished": timespec::format_rfc3339(report.finished_ns),
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
            "finished": timespec::format_rfc3339(at),
            "workspaces": n,
        })),
        "error": report.error,
        "summary": {
            "workspaces": report.workspaces.len(),
            "ok": t.ok,
            "failed": t.failed,
            "entries_skipped": t.skipped,
            "files": t.files,
            "size_bytes": t.bytes,
            "bytes_added": t.added,
        },
    })
}

fn print_snapshot_report(report: &snapshot::RunReport, secs: f64) {
    let t = Totals::of(report);
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
        let _ = writeln!(
            out,
            "skipped {}  {}",
            wsnap::escape::Escaped(&r.path),
            r.reason
        );
    }
    for r in &report.unlistable {
        let _ = writeln!(
            out,
            "failed  {}  directory {}",
            wsnap::escape::Escaped(&r.path),
            r.reason
        );
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
        t.skipped,
        t.files,
        size(t.bytes),
        size(t.added),
        secs
    );
}

/// Open the store, creating it (with a warning) if there is none yet:
/// writers that import data start a store the way `init` would.
pub(crate) fn open_or_create(store_dir: &std::path::Path) -> Result<Store> {
    match Store::open(store_dir) {
        Err(Error::NoStore { .. }) => {
            Store::init(store_dir)?;
            tracing::warn!("created new store {}", escape::path(store_dir));
            Store::open(store_dir)
        }
        r => r,
    }
}
