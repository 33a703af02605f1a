//! Admin commands: `init` (and the store a writer creates when there is
//! none), `import-rsync` (migration from the old backups), `completions`
//! and `man` (generated from the clap definitions).

use std::io::{self, Write};
use std::path::Path;

use clap::CommandFactory;

use wsnap::escape::{self, Escaped};
use wsnap::import::{self, Backup, Known, Verdict};
use wsnap::snapshot::WorkspaceOutcome;
use wsnap::{timespec, Error, InitOutcome, Result, SnapshotRow, Store, StoreParams, WorkspaceName};

use super::args::{Cli, ImportArgs};
use super::output::{self, exit, lossy, size};
use super::progress;

/// `init [--compression-level LEVEL]`.
pub fn init(store_dir: &Path, compression_level: i32) -> Result<u8> {
    let params = StoreParams {
        zstd_level: compression_level,
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
    // What the plan needs of the store: its workspaces, and whether it has
    // a snapshot at each time a backup name could stand for (not every
    // snapshot: millions at 10,000 workspaces).
    let gather = |store: Option<&Store>| -> Result<Known> {
        let (stored, mut times) = (Vec::new(), std::collections::BTreeMap::new());
        let mut k = match store {
            None => Known::gather(root, stored, times)?,
            Some(store) => {
                let cat = store.catalog_for_reading()?;
                for (ws, t) in import::candidates(old_root, &mappings)? {
                    if cat.has_snapshot_at(&ws, t)? {
                        times
                            .entry(ws)
                            .or_insert_with(std::collections::BTreeSet::new)
                            .insert(t);
                    }
                }
                Known::gather(root, cat.workspaces()?, times)?
            }
        };
        k.mappings = mappings.clone();
        Ok(k)
    };

    if a.dry_run {
        // Read only: no store is created, no lock taken.
        let store = match Store::open(store_dir) {
            Ok(store) => Some(store),
            Err(Error::NoStore { .. }) => None,
            Err(e) => return Err(e),
        };
        let plan = import::plan(old_root, &gather(store.as_ref())?)?;
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
    let plan = import::plan(old_root, &gather(Some(&store))?)?;
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

fn ws_time(ws: &WorkspaceName, time_ns: i64) -> String {
    format!("{ws} @ {}", timespec::format_local(time_ns))
}

/// Print the plan or the result; return the exit code.
fn report(plan: &[Backup], done: &[Done], dry_run: bool, json: bool) -> u8 {
    let mut counts = [0u64; 6]; // import, exists, ambiguous, invalid, failed, ignored
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
        };
        counts[slot] += 1;
    }
    let problems = counts[2] + counts[3] + counts[4] + skipped_entries as u64;
    if json {
        let list: Vec<_> = plan
            .iter()
            .zip(done)
            .map(|(b, d)| backup_json(b, d, dry_run))
            .collect();
        output::print_json(&serde_json::json!({
            "dry_run": dry_run,
            "ok": problems == 0,
            "backups": list,
            "summary": {
                "imported": counts[0],
                "exists": counts[1],
                "ambiguous": counts[2],
                "invalid": counts[3],
                "failed": counts[4],
                "ignored": counts[5],
                "entries_skipped": skipped_entries,
            },
        }));
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
                (Verdict::Invalid { reason }, _) => format!("invalid    {name}: {reason}; skipped"),
                (Verdict::Ignored { reason }, _) => format!("ignored    {name}: {reason}"),
            };
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "{}: {} backups {}, {} already present, {} ambiguous, {} invalid, {} failed, {} entries ignored{}",
            if dry_run { "dry run" } else { "import" },
            counts[0],
            if dry_run { "to import" } else { "imported" },
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[5],
            if skipped_entries > 0 {
                format!("; {skipped_entries} files could not be read")
            } else {
                String::new()
            }
        );
    }
    if problems == 0 {
        exit::OK
    } else {
        exit::PARTIAL
    }
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
    };
    v["status"] = status.into();
    if let Some(ws) = ws {
        v["user"] = lossy(&ws.user).into();
        v["project"] = lossy(&ws.project).into();
    }
    if let Some(t) = time_ns {
        v["time"] = timespec::format_rfc3339(t).into();
        v["time_ns"] = t.into();
    }
    v
}

/// `wsnap completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    clap_complete::generate(shell, &mut Cli::command(), "wsnap", &mut io::stdout());
    exit::OK
}

/// `wsnap man`: the roff man page on stdout.
pub fn man() -> u8 {
    // Rendering into memory cannot fail; a closed stdout is not worth a message.
    let mut buf = Vec::new();
    let _ = clap_mangen::Man::new(Cli::command()).render(&mut buf);
    buf.extend_from_slice(MAN_ENVIRONMENT.as_bytes());
    let _ = io::stdout().lock().write_all(&buf);
    exit::OK
}

/// What clap_mangen does not render: the environment, and where the rest is.
const MAN_ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
\fBSCITEX_BACKUP_ROOT\fR
The store directory (\fB\-\-store\fR); default /app/backups/snapshots.
.TP
\fBSCITEX_WORKSPACE_ROOT\fR
The workspace root holding <user>/<project>/ (\fB\-\-root\fR); default /app/data/users.
.TP
\fBSCITEX_MAX_SNAPSHOTS\fR
Snapshots kept per workspace by prune and snapshot \-\-prune when no keep flag is given; default 288.
.SH SEE ALSO
\fBwsnap COMMAND \-\-help\fR for each command's options; docs/ADMIN.md for installation, scheduling, monitoring, restore and migration.
"#;
