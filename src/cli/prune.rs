//! `prune` and `forget`: forget snapshots (by retention policy, or by id)
//! and collect the garbage; the gc report as lines or `--json`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;

use wsnap::escape;
use wsnap::gc::DamagedLeft;
use wsnap::{gc, timespec, Result, Store};

use super::flags::{self, RetentionArgs};
use super::output::{self, exit, lossy, size};
use super::progress;

/// `prune [--workspace USER/PROJECT]... [keep flags]`.
pub fn prune(
    store_dir: &Path,
    workspaces: &[OsString],
    retention: &RetentionArgs,
    dry_run: bool,
    lock_wait: &str,
    json: bool,
) -> Result<u8> {
    let ws = workspaces
        .iter()
        .map(flags::workspace)
        .collect::<Result<Vec<_>>>()?;
    let opts = retention.options(ws)?;
    let lock_wait = flags::parse_duration(lock_wait)?;
    let store = Store::open(store_dir)?;
    let r = if dry_run {
        // A read view: no lock, nothing written.
        gc::prune_dry_run(&store, &opts)?
    } else {
        let lock = store.lock(lock_wait, "prune")?;
        progress::run("prune", "packs", |p| gc::prune(&store, &opts, &lock, p))?
    };
    Ok(show_gc(&r, Command::Prune, exit::OK, json))
}

/// `forget --snapshot ID...`.
pub fn forget(
    store_dir: &Path,
    snapshots: &[String],
    dry_run: bool,
    lock_wait: &str,
    json: bool,
) -> Result<u8> {
    let lock_wait = flags::parse_duration(lock_wait)?;
    let store = Store::open(store_dir)?;
    let r = if dry_run {
        gc::forget_dry_run(&store, snapshots)?
    } else {
        gc::forget(&store, snapshots, lock_wait)?
    };
    let code = exit::ok_or_partial(r.damaged_left.is_empty());
    show_gc(&r, Command::Forget, code, json);
    warn_damaged_left("forget", "the forgotten snapshots", &r.damaged_left);
    Ok(code)
}

/// A purge (`forget`, `rewrite`) is incomplete: say exactly what is left
/// under `damaged/`, and how to remove it (on stderr, also with --json).
pub(super) fn warn_damaged_left(command: &str, whose: &str, left: &[DamagedLeft]) {
    for d in left {
        let ranges: Vec<String> = d.ranges.iter().map(|(a, b)| format!("{a}..{b}")).collect();
        eprintln!(
            "wsnap {command}: {} bytes of {} (at {}) may still hold data of {whose}: \
             they cannot be told apart from what a snapshot marked damaged \
             lacks. Forget the damaged snapshots and run {command} again, or, if you need \
             no forensic copy of that pack, remove it: rm -- {}",
            d.bytes(),
            escape::path(&d.path),
            ranges.join(", "),
            escape::path(&d.path),
        );
    }
}

/// Which command a gc report is printed for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    /// `prune`, and `snapshot --prune`: `kept` is what the policy keeps.
    Prune,
    /// `forget`: `kept` is what remains in the forgotten snapshots'
    /// workspaces.
    Forget,
}

/// Print the report; return `code`.
fn show_gc(r: &gc::GcReport, command: Command, code: u8, json: bool) -> u8 {
    if json {
        output::emit(code, gc_json(r))
    } else {
        print_gc_report(r, command);
        code
    }
}

pub(super) fn gc_json(r: &gc::GcReport) -> serde_json::Value {
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
        "freed_bytes": r.bytes_freed,
        "pack_deletion_deferred": r.pack_deletion_deferred,
        "damaged_packs_rewritten": r.damaged_packs_rewritten,
        "damaged_zeroed_bytes": r.damaged_bytes_zeroed,
        "damaged_left": r.damaged_left.iter().map(|d| serde_json::json!({
            "path": d.path.display().to_string(),
            "size_bytes": d.bytes(),
            "ranges": d.ranges,
        })).collect::<Vec<_>>(),
        "held": r.held.iter().map(|(w, n)| serde_json::json!({
            "user": lossy(&w.user),
            "project": lossy(&w.project),
            "snapshots_kept": n,
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn print_gc_report(r: &gc::GcReport, command: Command) {
    let (name, kept) = match command {
        Command::Prune if r.dry_run => ("prune", format!("keep {}", r.kept)),
        Command::Prune => ("prune", format!("kept {}", r.kept)),
        Command::Forget => ("forget", format!("{} left in their workspaces", r.kept)),
    };
    tracing::info!(
        "{name} {}: {} snapshots forgotten, {} packs deleted, {} rewritten, {} freed",
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
            "dry run: would forget {} snapshots, {kept}; would delete {} packs and rewrite {}; about {} freed",
            r.forgotten.len(),
            r.packs_deleted,
            r.packs_rewritten,
            size(r.bytes_freed)
        );
    } else {
        let _ = writeln!(
            out,
            "{name}: forgot {} snapshots, {kept}; {} blobs dead; deleted {} packs, rewrote {} into {}, removed {} orphan packs; {} freed",
            r.forgotten.len(),
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
