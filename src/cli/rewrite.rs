//! `rewrite USER/PROJECT --exclude PATTERN... (--snapshot ID... | --all)`:
//! take paths out of stored snapshots (a leaked secret) and purge their
//! data; the old → new id map as lines or `--json`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;

use clap::{ArgGroup, Args};

use wsnap::escape::Escaped;
use wsnap::rewrite::{self, RemovedPath, RewriteOptions, RewriteReport, Selection};
use wsnap::{timespec, Result, Store};

use super::flags;
use super::output::{self, exit, lossy, size, JSON_HELP};
use super::progress;
use super::prune::{gc_json, warn_damaged_left};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["snapshots", "all"])))]
pub struct RewriteArgs {
    /// USER/PROJECT
    pub workspace: OsString,
    /// Path to take out, in `snapshot --exclude` syntax (gitignore: `name`
    /// at any depth, `/a/b` from the workspace root, `dir/` a directory
    /// with everything in it); repeatable
    #[arg(long = "exclude", value_name = "PATTERN", required = true)]
    pub excludes: Vec<String>,
    /// Only this snapshot (id or unique prefix); repeatable
    #[arg(long = "snapshot", value_name = "ID")]
    pub snapshots: Vec<String>,
    /// Every snapshot of the workspace
    #[arg(long)]
    pub all: bool,
    /// List the snapshots and paths that would change; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Wait this long for another run's lock, then exit 75
    #[arg(long, default_value = "0s")]
    pub lock_wait: String,
    #[arg(long, help = JSON_HELP)]
    pub json: bool,
}

/// Exit 0 when every pattern removed something and the purge is complete;
/// 1 when a pattern matched nothing in the selected snapshots (a typo, or
/// already purged), when a reader kept the old pack files in place (the
/// next prune deletes them), or when data may be left under `damaged/`
/// (as `forget`).
pub fn run(store_dir: &Path, a: &RewriteArgs) -> Result<u8> {
    let opts = RewriteOptions {
        workspace: flags::workspace(&a.workspace)?,
        excludes: a.excludes.clone(),
        snapshots: if a.all {
            Selection::All
        } else {
            Selection::Ids(a.snapshots.clone())
        },
        dry_run: a.dry_run,
        lock_wait: flags::parse_duration(&a.lock_wait)?,
    };
    let store = Store::open(store_dir)?;
    let r = progress::run("rewrite", "packs", |p| rewrite::rewrite(&store, &opts, p))?;
    // The purge is complete only when no old pack file is left behind for
    // a reader (it still holds the removed data until the next prune).
    let ok = r.unmatched.is_empty() && r.gc.damaged_left.is_empty() && !r.gc.pack_deletion_deferred;
    let code = exit::ok_or_partial(ok);
    if a.json {
        output::emit(code, json(&r));
    } else {
        print(&r, &opts);
    }
    let selected = r.rewritten.len() + r.unchanged.len();
    for p in &r.unmatched {
        eprintln!(
            "wsnap rewrite: pattern {p:?} matched nothing in the {selected} selected snapshots \
             of {}: nothing was removed for it (a typo, or purged already?)",
            opts.workspace
        );
    }
    if r.gc.pack_deletion_deferred {
        eprintln!(
            "wsnap rewrite: not finished: a restore or another reader was using the store, \
             so the old pack files (which still hold the removed data) were left in place; \
             the next `wsnap prune` deletes them"
        );
    }
    warn_damaged_left(
        "rewrite",
        "the rewritten snapshots' removed paths",
        &r.gc.damaged_left,
    );
    Ok(code)
}

/// A removed path as shown: escaped, a directory with a trailing `/`.
fn shown(p: &RemovedPath) -> String {
    format!("{}{}", Escaped(&p.path), if p.is_dir { "/" } else { "" })
}

fn print(r: &RewriteReport, opts: &RewriteOptions) {
    let mut out = io::stdout().lock();
    let verb = if r.dry_run {
        "would rewrite"
    } else {
        "rewrote"
    };
    for w in &r.rewritten {
        let n = w.removed.len();
        let merged = if w.merged {
            format!(
                "; {} was in the store already, {} forgotten",
                w.new.id.0.short(),
                w.old.id.0.short()
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{verb} {} → {}  {}  ({n} {} removed{merged})",
            w.old.id.0.short(),
            w.new.id.0.short(),
            timespec::format_local_offset(w.old.time_ns),
            if n == 1 { "path" } else { "paths" },
        );
        for p in &w.removed {
            let _ = writeln!(out, "    {}", shown(p));
        }
    }
    if r.dry_run {
        let _ = writeln!(
            out,
            "dry run: would rewrite {} of the {} selected snapshots of {} ({} unchanged), writing {} new trees; nothing was changed",
            r.rewritten.len(),
            r.rewritten.len() + r.unchanged.len(),
            opts.workspace,
            r.unchanged.len(),
            r.trees_written,
        );
        return;
    }
    let g = &r.gc;
    let _ = writeln!(
        out,
        "rewrite: {} snapshots of {} rewritten, {} unchanged; {} new trees; {} blobs dead; deleted {} packs, rewrote {} into {}; {} freed",
        r.rewritten.len(),
        opts.workspace,
        r.unchanged.len(),
        r.trees_written,
        g.blobs_deleted,
        g.packs_deleted,
        g.packs_rewritten,
        g.packs_written,
        size(r.freed_bytes()),
    );
    if g.damaged_packs_rewritten > 0 {
        let _ = writeln!(
            out,
            "damaged/: rewrote {} damaged packs, {} of data no snapshot uses zeroed",
            g.damaged_packs_rewritten,
            size(g.damaged_bytes_zeroed)
        );
    }
}

fn json(r: &RewriteReport) -> serde_json::Value {
    let snapshots: Vec<serde_json::Value> = r
        .rewritten
        .iter()
        .map(|w| {
            serde_json::json!({
                "old_id": w.old.id.0.to_hex(),
                "new_id": w.new.id.0.to_hex(),
                "user": lossy(&w.old.workspace.user),
                "project": lossy(&w.old.workspace.project),
                "time": output::time(w.old.time_ns),
                "time_ns": w.old.time_ns,
                "removed_paths": w.removed.iter().map(|p| format!(
                    "{}{}", lossy(&p.path), if p.is_dir { "/" } else { "" }
                )).collect::<Vec<_>>(),
                "merged": w.merged,
                "files": w.new.stats.files,
                "size_bytes": w.new.stats.size_bytes,
            })
        })
        .collect();
    serde_json::json!({
        "dry_run": r.dry_run,
        "snapshots": snapshots,
        "unchanged": r.unchanged.iter().map(|s| s.id.0.to_hex()).collect::<Vec<_>>(),
        "unmatched_patterns": r.unmatched,
        "trees_written": r.trees_written,
        "freed_bytes": if r.dry_run { None } else { Some(r.freed_bytes()) },
        "gc": if r.dry_run { serde_json::Value::Null } else { gc_json(&r.gc) },
    })
}
