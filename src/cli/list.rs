//! `list` (the snapshots) and `ls` (the entries of a directory in one
//! snapshot), as columns or `--json`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;

use serde_json::json;

use wsnap::browse::Reading;
use wsnap::escape::Escaped;
use wsnap::select::{self, Scope, SnapshotFilter};
use wsnap::EntryKind;
use wsnap::{timespec, Error, Result, SnapshotRow, Store, TimeSpec};

use super::flags::{self, Which};
use super::output::{self, exit, lossy, size};

/// `list [USER | USER/PROJECT] [--since TIME] [--until TIME] [--last N]`.
pub fn list(
    store_dir: &Path,
    workspace: Option<&OsString>,
    since: Option<&str>,
    until: Option<&str>,
    last: Option<u64>,
    json: bool,
) -> Result<u8> {
    let scope = match workspace {
        None => Scope::All,
        Some(w) => Scope::parse(w)?,
    };
    let filter = SnapshotFilter {
        since_ns: since
            .map(|t| bound("--since", t, timespec::parse_since(t)))
            .transpose()?,
        until_ns: until
            .map(|t| bound("--until", t, timespec::parse(t)))
            .transpose()?,
        last,
    };
    let store = Store::open(store_dir)?;
    let catalog = store.catalog_for_reading()?;
    // Rows are printed as they are read (the whole store is 2.88 M rows
    // at 10,000 × 288), buffered (see `output::emit`). A closed pipe ends
    // the listing quietly; any other write failure is an error.
    let out = io::BufWriter::new(io::stdout().lock());
    let written = if json {
        let mut stream = output::EmitStream::new(
            out,
            exit::OK,
            json!({
                "filter": {
                    "since": output::time_opt(filter.since_ns),
                    "since_ns": filter.since_ns,
                    "until": output::time_opt(filter.until_ns),
                    "until_ns": filter.until_ns,
                    "last": filter.last,
                },
            }),
            "snapshots",
        );
        select::for_each_listed(&catalog, &scope, &filter, |s| {
            stream.push(&output::snapshot_json(&s)).map_err(stdout_err)
        })
        .and_then(|()| stream.finish().map_err(stdout_err))
    } else {
        let mut table = Table::new(out);
        select::for_each_listed(&catalog, &scope, &filter, |s| {
            table.row(&s).map_err(stdout_err)
        })
        .and_then(|()| table.finish().map_err(stdout_err))
    };
    match written {
        Ok(()) => Ok(exit::OK),
        // `wsnap list | head`: the reader has what it wanted.
        Err(Error::TargetWrite { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
            Ok(exit::OK)
        }
        Err(e) => Err(e),
    }
}

/// A failed write to stdout, for messages.
fn stdout_err(source: io::Error) -> Error {
    Error::TargetWrite {
        path: "<stdout>".into(),
        source,
    }
}

/// `list`'s columns, a row at a time; the header comes with the first row
/// or at the end, so an error found before any row (no such user) prints
/// nothing, and an empty listing the header alone.
struct Table<W: Write> {
    out: W,
    header: bool,
}

impl<W: Write> Table<W> {
    fn new(out: W) -> Table<W> {
        Table { out, header: false }
    }

    fn row(&mut self, s: &SnapshotRow) -> io::Result<()> {
        self.start()?;
        writeln!(
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
        )
    }

    fn finish(mut self) -> io::Result<()> {
        self.start()?;
        self.out.flush()
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.header {
            self.header = true;
            writeln!(
                self.out,
                "{:<8}  {:<26}  {:<24}  {:>8}  {:>10}  {:>10}",
                "ID", "TIME", "WORKSPACE", "FILES", "SIZE", "ADDED"
            )?;
        }
        Ok(())
    }
}

/// A `--since`/`--until` bound: a point in time (`latest` is none).
fn bound(flag: &'static str, given: &str, t: Result<TimeSpec>) -> Result<i64> {
    match t? {
        TimeSpec::At(ns) => Ok(ns),
        TimeSpec::Latest => Err(Error::Invalid {
            what: flag,
            detail: format!(
                "{given:?} is not a point in time; for the newest snapshot of each \
                 workspace use --last 1"
            ),
        }),
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
    output::note_resolved(&snap, which.given(), &sel);
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
    let code = exit::ok_or_partial(damaged.is_empty());
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|(path, e)| {
                let (kind, target) = match &e.kind {
                    EntryKind::File { .. } => ("file", None),
                    EntryKind::Dir { .. } => ("dir", None),
                    EntryKind::Symlink { target } => ("symlink", Some(lossy(target))),
                };
                let mut v = json!({
                    "name": lossy(&e.name),
                    "type": kind,
                    "mode": format!("{:04o}", e.mode),
                    "size_bytes": e.size,
                    "mtime": output::time(e.mtime_ns),
                    "mtime_ns": e.mtime_ns,
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
        return Ok(output::emit(
            code,
            json!({
                "snapshot": output::selected_json(&snap, which.given(), &sel),
                "path": lossy(&p),
                "entries": list,
                "damaged": damaged.iter().map(|(d, why)| json!({
                    "path": lossy(d),
                    "reason": why,
                })).collect::<Vec<_>>(),
            }),
        ));
    }
    let mut out = io::stdout().lock();
    for (path, e) in &entries {
        let (k, sz, suffix) = match &e.kind {
            EntryKind::File { .. } => ('-', size(e.size), String::new()),
            EntryKind::Dir { .. } => ('d', "-".into(), "/".into()),
            EntryKind::Symlink { target } => ('l', "-".into(), format!(" -> {}", Escaped(target))),
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
    Ok(code)
}
