//! `diff` (what changed between two snapshots) and `log` (every snapshot
//! in which one path changed); as lines or `--json`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::{json, Value};

use wsnap::diff::{self, Change, ChangeKind, DiffSummary, EntryState};
use wsnap::escape::Escaped;
use wsnap::Missing;
use wsnap::PinnedCatalog;
use wsnap::{select, timespec, Error, Result, Store};

use super::flags;
use super::output::{self, exit, lossy, size};

fn state_json(e: &Option<EntryState>) -> Value {
    match e {
        None => Value::Null,
        Some(e) => json!({
            "type": e.kind.label(),
            "size_bytes": e.size,
            "mode": format!("{:04o}", e.mode),
            "mtime": output::time(e.mtime_ns),
            "mtime_ns": e.mtime_ns,
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
        "size_change_bytes": c.size_change(),
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
    let ws = flags::workspace(workspace)?;
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
    output::note_resolved(&a, from, &sel_from);
    output::note_resolved(&b, to, &sel_to);
    let sum = DiffSummary::of(&changes);
    if json {
        return Ok(output::emit(
            exit::OK,
            json!({
                "from": output::selected_json(&a, from, &sel_from),
                "to": output::selected_json(&b, to, &sel_to),
                "changes": changes.iter().map(change_json).collect::<Vec<_>>(),
                "summary": {
                    "added": sum.added,
                    "removed": sum.removed,
                    "modified": sum.modified,
                    "type_changed": sum.type_changed,
                    "grown_bytes": sum.bytes_grown,
                    "shrunk_bytes": sum.bytes_shrunk,
                    "size_change_bytes": b.stats.size_bytes as i64 - a.stats.size_bytes as i64,
                    "trees_read": trees_read,
                },
            }),
        ));
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
        sum.added,
        sum.removed,
        sum.modified,
        sum.type_changed,
        size(sum.bytes_grown),
        size(sum.bytes_shrunk)
    );
    Ok(exit::OK)
}

/// `log USER/PROJECT PATH`.
pub fn run_log(store_dir: &Path, workspace: &OsString, path: &OsString, json: bool) -> Result<u8> {
    let ws = flags::workspace(workspace)?;
    let path = path.as_bytes().to_vec();
    let store = Store::open(store_dir)?;
    let _readers = store.read_guard()?;
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    let (snaps, (events, trees_read)) = pinned.with(|cat| {
        let mut snaps = cat.snapshots(Some(&ws))?;
        if snaps.is_empty() {
            return Err(Error::NotFound(Missing::Snapshots(ws.clone())));
        }
        snaps.sort_by_key(|s| s.time_ns);
        let l = diff::log(&store, cat, &snaps, &path)?;
        Ok((snaps, l))
    })?;
    if json {
        return Ok(output::emit(
            exit::OK,
            json!({
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
            }),
        ));
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
