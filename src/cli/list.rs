//! `list` (the snapshots) and `ls` (the entries of a directory in one
//! snapshot), as columns or `--json`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;

use wsnap::browse::Reading;
use wsnap::escape::Escaped;
use wsnap::EntryKind;
use wsnap::Missing;
use wsnap::{timespec, Error, Result, SnapshotRow, Store};

use super::flags::{self, Which};
use super::output::{self, exit, lossy, size};

/// `list [USER/PROJECT]`. Every snapshot (no workspace named) is printed
/// as it is read: memory stays the same at any number of snapshots.
pub fn list(store_dir: &Path, workspace: Option<&OsString>, json: bool) -> Result<u8> {
    let store = Store::open(store_dir)?;
    let ws = workspace.map(flags::workspace).transpose()?;
    let catalog = store.catalog_for_reading()?;
    let out = io::BufWriter::new(io::stdout().lock());
    let Some(ws) = ws else {
        if json {
            let mut arr = output::JsonArray::new(out);
            catalog.for_each_snapshot(|s| {
                arr.push(&output::snapshot_json(&s));
                Ok(())
            })?;
            arr.finish();
        } else {
            let mut table = Table::new(out);
            catalog.for_each_snapshot(|s| {
                table.row(&s);
                Ok(())
            })?;
        }
        return Ok(exit::OK);
    };
    // One workspace: its retained snapshots (bounded by retention).
    let rows = catalog.snapshots(Some(&ws))?;
    if rows.is_empty() {
        return Err(Error::NotFound(Missing::Snapshots(ws.clone())));
    }
    if json {
        output::print_json(&serde_json::Value::Array(
            rows.iter().map(output::snapshot_json).collect(),
        ));
    } else {
        let mut table = Table::new(out);
        for s in &rows {
            table.row(s);
        }
    }
    Ok(exit::OK)
}

/// `list`'s columns, written as rows come.
struct Table<W: Write> {
    out: W,
}

impl<W: Write> Table<W> {
    fn new(mut out: W) -> Table<W> {
        let _ = writeln!(
            out,
            "{:<8}  {:<26}  {:<24}  {:>8}  {:>10}  {:>10}",
            "ID", "TIME", "WORKSPACE", "FILES", "SIZE", "ADDED"
        );
        Table { out }
    }

    fn row(&mut self, s: &SnapshotRow) {
        let _ = writeln!(
            self.out,
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

/// `ls USER/PROJECT (--at TIME | --snapshot ID) [PATH] [-R]`.
pub fn ls(
    store_dir: &Path,
    workspace: &OsString,
    which: &Which,
    path: &Option<OsString>,
    recursive: bool,
    json: bool,
) -> Result<u8> {
    let ws = flags::workspace(workspace)?;
    let sel = which.selector()?;
    let store = Store::open(store_dir)?;
    // Same read path as restore: readers' lock, then one pinned
    // view, so a prune committing meanwhile changes nothing we read.
    let reading = Reading::new(&store)?;
    let snap = reading.select(&ws, &sel)?;
    wsnap::failpoint::pause_point("ls.selected");
    let p = flags::path_bytes(path).unwrap_or_default();
    let listing = if recursive {
        reading.list_recursive(&snap, &p)?
    } else {
        reading.list(&snap, &p)?
    };
    let (entries, damaged) = (listing.entries, listing.damaged);
    for (d, why) in &damaged {
        tracing::error!("directory {} unreadable: {why}", Escaped(d));
    }
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|(path, e)| {
                let (kind, target) = match &e.kind {
                    EntryKind::File { .. } => ("file", None),
                    EntryKind::Dir { .. } => ("dir", None),
                    EntryKind::Symlink { target } => ("symlink", Some(lossy(target))),
                };
                let mut v = serde_json::json!({
                    "name": lossy(&e.name),
                    "type": kind,
                    "mode": format!("{:04o}", e.mode),
                    "size": e.size,
                    "mtime": timespec::format_rfc3339(e.mtime_ns),
                    "uid": e.uid,
                    "gid": e.gid,
                    "target": target,
                });
                if recursive {
                    v["path"] = lossy(path).into();
                }
                v
            })
            .collect();
        output::print_json(&serde_json::json!({
            "snapshot": output::snapshot_json(&snap),
            "path": lossy(&p),
            "entries": list,
        }));
    } else {
        let mut out = io::stdout().lock();
        for (path, e) in &entries {
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
                Escaped(path),
                suffix
            );
        }
    }
    Ok(if damaged.is_empty() {
        exit::OK
    } else {
        exit::PARTIAL
    })
}
