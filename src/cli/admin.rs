//! Admin commands: `init` (and the store a writer creates when there is
//! none), `import-rsync` (migration from the old backups), `completions`
//! (generated from the clap definitions; the man pages are `man.rs`).

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;

use wsnap::chunker::LargeFileTiers;
use wsnap::escape::{self, Escaped};
use wsnap::import::{self, Backup, BadMapping, Known, Verdict};
use wsnap::snapshot::WorkspaceOutcome;
use wsnap::{timespec, Error, InitOutcome, Result, SnapshotRow, Store, StoreParams, WorkspaceName};

use super::args::{Cli, ImportArgs};
use super::output::{self, exit, lossy, size};
use super::progress;

/// `init [--compression-level LEVEL] [--chunk-tiers TIERS]`.
pub fn init(store_dir: &Path, compression_level: i32, chunk_tiers: &str) -> Result<u8> {
    let chunker = StoreParams::DEFAULT.chunker;
    let large_files = match chunk_tiers {
        "none" => LargeFileTiers::NONE,
        text => LargeFileTiers::decode(text, &chunker)?,
    };
    let params = StoreParams {
        zstd_level: compression_level,
        large_files,
        ..StoreParams::DEFAULT
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

/// Open the store, creating it (with a warning) if there is none yet:
/// writers that import data start a store the way `init` would.
pub fn open_or_create(store_dir: &Path) -> Result<Store> {
    match Store::open(store_dir) {
        Err(Error::NoStore { .. }) => {
            Store::init(store_dir)?;
            tracing::warn!("created new store {}", escape::path(store_dir));
            Store::open(store_dir)
        }
        r => r,
    }
}

/// What became of one backup: its verdict, and after an import its outcome.
enum Done {
    Planned,
    Imported(Box<SnapshotRow>, usize),
    Failed(String),
}

pub fn import_rsync(store_dir: &Path, a: &ImportArgs) -> Result<u8> {
    let old_root = &a.old_backup_root;
    if !old_root.is_dir() {
        return Err(Error::Invalid {
            what: "old backup root",
            detail: format!(
                "{} is not a directory (give the directory holding the old rsync backups)",
                escape::path(old_root)
            ),
        });
    }
    let mappings = a.mappings()?;
    let lock_wait = super::flags::parse_duration(&a.lock_wait)?;
    let root = if a.root.is_dir() {
        Some(a.root.as_path())
    } else {
        tracing::warn!(
            "workspace root {} is not a directory: names with several '_' resolve only \
             against the store's workspaces and --map (set --root or SCITEX_WORKSPACE_ROOT)",
            escape::path(&a.root)
        );
        None
    };
    let skips = import::Skips::new(&a.skips)?;
    // The store is asked only about what the plan needs (its workspaces,
    // and snapshots at the times the backup names give), never for every
    // snapshot.
    let gather = |store: Option<&Store>| -> Result<Known> {
        let catalog = store.map(Store::catalog_for_reading).transpose()?;
        Known::gather(root, catalog.as_ref(), old_root, mappings.clone())
    };

    // First read only (no store is created, no lock taken): the plan
    // against the store as it is, so a wrong --map is refused before
    // anything is written.
    let existing = match Store::open(store_dir) {
        Ok(store) => Some(store),
        Err(Error::NoStore { .. }) => None,
        Err(e) => return Err(e),
    };
    let known = gather(existing.as_ref())?;
    drop(existing);
    let plan = import::plan(old_root, &known, &skips)?;
    check_mappings(&plan, &known, old_root)?;
    for p in skips.unused(&plan) {
        tracing::warn!(
            "--skip {p:?} matches no entry of {}",
            escape::path(old_root)
        );
    }
    if a.dry_run {
        let done: Vec<Done> = plan.iter().map(|_| Done::Planned).collect();
        return Ok(report(&plan, &done, true, a.json));
    }

    let store = open_or_create(store_dir)?;
    let note = format!(
        "import-rsync started {}",
        timespec::format_local(timespec::now_ns())
    );
    // One lock for the plan and the import: nothing can add a snapshot at
    // one of the planned times in between.
    let lock = store.lock(lock_wait, &note)?;
    let plan = import::plan(old_root, &gather(Some(&store))?, &skips)?;
    let order = import::sources(&plan);
    tracing::info!(
        "import: {} backup directories to import from {}",
        order.len(),
        escape::path(old_root)
    );
    let run = progress::run("import", "files", |p| {
        import::import_locked(&store, &plan, &lock, p)
    })?;
    drop(lock);
    let mut done: Vec<Done> = plan.iter().map(|_| Done::Planned).collect();
    for ((i, _), w) in order.iter().zip(run.workspaces) {
        done[*i] = match w.outcome {
            WorkspaceOutcome::Committed { row, skips } => {
                for s in &skips {
                    tracing::warn!(
                        "{}: {} {}: {}",
                        Escaped(&plan[*i].name),
                        if s.missing { "skipped" } else { "warning" },
                        Escaped(&s.path),
                        s.reason
                    );
                }
                Done::Imported(row, skips.iter().filter(|s| s.missing).count())
            }
            WorkspaceOutcome::Failed { reason } => Done::Failed(reason),
        };
    }
    Ok(report(&plan, &done, false, a.json))
}

/// Refuse `--map`s that cannot be meant (exit 2): a prefix no backup
/// directory has, or a workspace that is neither a split of its prefix nor
/// one that exists (see `import::check_mappings`).
fn check_mappings(plan: &[Backup], known: &Known, old_root: &Path) -> Result<()> {
    let names = |ws: &[WorkspaceName]| {
        ws.iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let problems: Vec<String> = import::check_mappings(plan, known)
        .into_iter()
        .map(|bad| match bad {
            BadMapping::NoSuchPrefix { prefix, close } => {
                let p = escape::escape(&prefix);
                let close = if close.is_empty() {
                    format!(
                        "no name is close (`wsnap import-rsync {} --dry-run` lists them)",
                        escape::path(old_root)
                    )
                } else {
                    let c: Vec<String> = close.iter().map(|c| escape::escape(c)).collect();
                    format!("close names: {}", c.join(", "))
                };
                format!(
                    "{p}=…: no directory in {} is named {p}_YYYYmmdd_HHMMSS; {close}",
                    escape::path(old_root)
                )
            }
            BadMapping::UnknownWorkspace {
                prefix,
                workspace,
                splits,
            } => {
                let p = escape::escape(&prefix);
                format!(
                    "{p}={workspace}: {workspace} is neither a split of {p} ({}) nor a \
                     workspace under the root or in the store, so a typo would import the \
                     backups into a workspace of its own; map to one of those, or create \
                     the workspace under the root first",
                    if splits.is_empty() {
                        "it has none".to_string()
                    } else {
                        names(&splits)
                    }
                )
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: "--map",
            detail: problems.join("; "),
        })
    }
}

fn ws_time(ws: &WorkspaceName, time_ns: i64) -> String {
    format!("{ws} @ {}", timespec::format_local(time_ns))
}

/// Print the plan or the result; return the exit code.
fn report(plan: &[Backup], done: &[Done], dry_run: bool, json: bool) -> u8 {
    let mut counts = [0u64; 7]; // import, exists, ambiguous, invalid, failed, ignored, skipped
    let mut skipped_entries = 0;
    for (b, d) in plan.iter().zip(done) {
        let slot = match (&b.verdict, d) {
            (_, Done::Failed(_)) => 4,
            (_, Done::Imported(_, n)) => {
                skipped_entries += n;
                0
            }
            (Verdict::Import { .. }, _) => 0,
            (Verdict::Exists { .. }, _) => 1,
            (Verdict::Ambiguous { .. }, _) => 2,
            (Verdict::Invalid { .. }, _) => 3,
            (Verdict::Ignored { .. }, _) => 5,
            (Verdict::Skipped { .. }, _) => 6,
        };
        counts[slot] += 1;
    }
    let problems = counts[2] + counts[3] + counts[4] + skipped_entries as u64;
    let code = exit::ok_or_partial(problems == 0);
    if json {
        let list: Vec<_> = plan
            .iter()
            .zip(done)
            .map(|(b, d)| backup_json(b, d, dry_run))
            .collect();
        output::emit(
            code,
            serde_json::json!({
                "dry_run": dry_run,
                "backups": list,
                "summary": {
                    "imported": counts[0],
                    "exists": counts[1],
                    "ambiguous": counts[2],
                    "invalid": counts[3],
                    "failed": counts[4],
                    "ignored": counts[5],
                    "skipped": counts[6],
                    "entries_skipped": skipped_entries,
                },
            }),
        );
    } else {
        let mut out = io::stdout().lock();
        for (b, d) in plan.iter().zip(done) {
            let name = Escaped(&b.name);
            let line = match (&b.verdict, d) {
                (_, Done::Failed(why)) => format!("failed     {name}: {why}"),
                (Verdict::Import { workspace, time_ns }, Done::Imported(row, _)) => format!(
                    "imported   {name} -> {}  snapshot {}  files {}  size {}  new {}",
                    ws_time(workspace, *time_ns),
                    row.id.0.short(),
                    row.stats.files,
                    size(row.stats.size_bytes),
                    size(row.stats.bytes_added)
                ),
                (Verdict::Import { workspace, time_ns }, _) => {
                    format!("import     {name} -> {}", ws_time(workspace, *time_ns))
                }
                (Verdict::Exists { workspace, time_ns }, _) => format!(
                    "exists     {name} -> {} (already in the store; skipped)",
                    ws_time(workspace, *time_ns)
                ),
                (Verdict::Ambiguous { reason, .. }, _) => {
                    let prefix = import::split_name(&b.name)
                        .map(|(p, _)| escape::escape(p))
                        .unwrap_or_default();
                    format!(
                        "ambiguous  {name}: {reason}; skipped. Rerun with --map {prefix}=USER/PROJECT"
                    )
                }
                (Verdict::Invalid { reason }, _) => format!(
                    "invalid    {name}: {reason}; not imported (if it is not a backup to \
                     import, --skip {name} marks it as handled)"
                ),
                (Verdict::Ignored { reason }, _) => format!("ignored    {name}: {reason}"),
                (Verdict::Skipped { pattern }, _) => {
                    format!("skipped    {name}: matches --skip {pattern}")
                }
            };
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "{}: {} backups {}, {} already present, {} ambiguous, {} invalid, {} failed, {} skipped, {} entries ignored{}",
            if dry_run { "dry run" } else { "import" },
            counts[0],
            if dry_run { "to import" } else { "imported" },
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[6],
            counts[5],
            if skipped_entries > 0 {
                format!("; {skipped_entries} files could not be read")
            } else {
                String::new()
            }
        );
    }
    code
}

fn backup_json(b: &Backup, d: &Done, dry_run: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": lossy(&b.name),
        "dir": b.dir.display().to_string(),
    });
    let (status, ws, time_ns) = match (&b.verdict, d) {
        (_, Done::Failed(why)) => {
            v["reason"] = why.clone().into();
            ("failed", None, None)
        }
        (Verdict::Import { workspace, time_ns }, Done::Imported(row, _)) => {
            v["snapshot"] = output::snapshot_json(row);
            ("imported", Some(workspace), Some(*time_ns))
        }
        (Verdict::Import { workspace, time_ns }, _) => (
            if dry_run { "would_import" } else { "imported" },
            Some(workspace),
            Some(*time_ns),
        ),
        (Verdict::Exists { workspace, time_ns }, _) => ("exists", Some(workspace), Some(*time_ns)),
        (Verdict::Ambiguous { reason, candidates }, _) => {
            v["reason"] = reason.clone().into();
            v["candidates"] = candidates
                .iter()
                .map(|w| serde_json::Value::from(w.to_string()))
                .collect();
            ("ambiguous", None, None)
        }
        (Verdict::Invalid { reason }, _) => {
            v["reason"] = reason.clone().into();
            ("invalid", None, None)
        }
        (Verdict::Ignored { reason }, _) => {
            v["reason"] = reason.clone().into();
            ("ignored", None, None)
        }
        (Verdict::Skipped { pattern }, _) => {
            v["reason"] = format!("matches --skip {pattern}").into();
            ("skipped", None, None)
        }
    };
    v["status"] = status.into();
    if let Some(ws) = ws {
        v["user"] = lossy(&ws.user).into();
        v["project"] = lossy(&ws.project).into();
    }
    if let Some(t) = time_ns {
        v["time"] = output::time(t);
        v["time_ns"] = t.into();
    }
    v
}

/// `wsnap completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    clap_complete::generate(shell, &mut Cli::command(), "wsnap", &mut io::stdout());
    exit::OK
}
