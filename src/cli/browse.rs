//! `cat` (one file of a snapshot to stdout) and `find` (paths matching a
//! glob in one snapshot or in every snapshot of a workspace).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use clap::Args;
use serde_json::json;

use wsnap::browse::{Pattern, Reading};
use wsnap::escape::Escaped;
use wsnap::select::Selector;
use wsnap::{timespec, EntryKind, Error, Result, Store};

use super::flags::{self, Which};
use super::output::{self, exit, lossy};

#[derive(Args, Debug)]
pub struct CatArgs {
    /// USER/PROJECT
    pub workspace: OsString,
    /// File inside the snapshot
    pub path: OsString,
    #[command(flatten)]
    pub which: Which,
}

#[derive(Args, Debug)]
pub struct FindArgs {
    /// USER/PROJECT
    pub workspace: OsString,
    /// Glob: without '/' it matches names at any depth (like `find -name`);
    /// with '/' the whole path from the snapshot's root ('*' stays within a
    /// directory, '**' crosses them). Quote it. Without one: every path
    pub pattern: Option<String>,
    #[command(flatten)]
    pub scope: Scope,
    #[arg(long, help = super::output::JSON_HELP)]
    pub json: bool,
}

/// Which snapshots `find` searches: one (default: the latest) or all.
#[derive(Args, Debug)]
#[group(multiple = false)]
pub struct Scope {
    /// Newest snapshot at or before TIME (formats as for `ls --at`)
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Snapshot id (or unique prefix of at least 4 hex digits)
    #[arg(long, value_name = "ID")]
    pub snapshot: Option<String>,
    /// Every snapshot of the workspace in which a matching path exists
    #[arg(long)]
    pub all: bool,
}

/// Where `cat` writes, for messages.
const STDOUT: &str = "<stdout>";

/// `cat USER/PROJECT PATH (--at TIME | --snapshot ID)`.
pub fn cat(store_dir: &Path, a: &CatArgs) -> Result<u8> {
    let ws = flags::workspace(&a.workspace)?;
    let sel = a.which.selector()?;
    let store = Store::open(store_dir)?;
    let reading = Reading::new(&store)?;
    let snap = reading.select(&ws, &sel)?;
    output::note_resolved(&snap, a.which.given(), &sel);
    let mut out = io::stdout().lock();
    match reading.cat(&snap, a.path.as_bytes(), &mut out, Path::new(STDOUT)) {
        Ok(_) => Ok(exit::OK),
        // `wsnap cat … | head`: the reader has what it wanted.
        Err(Error::TargetWrite { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
            Ok(exit::OK)
        }
        Err(e) => Err(e),
    }
}

/// `find USER/PROJECT [PATTERN] [--at TIME | --snapshot ID | --all]`.
pub fn find(store_dir: &Path, a: &FindArgs) -> Result<u8> {
    let ws = flags::workspace(&a.workspace)?;
    let pattern = a.pattern.as_deref().map(Pattern::new).transpose()?;
    let one = match (&a.scope.at, &a.scope.snapshot, a.scope.all) {
        (_, _, true) => None,
        (Some(t), _, _) => Some(Selector::Time(timespec::parse(t)?)),
        (None, Some(id), _) => Some(Selector::Id(id.clone())),
        (None, None, false) => Some(Selector::Time(timespec::TimeSpec::Latest)),
    };
    let store = Store::open(store_dir)?;
    let reading = Reading::new(&store)?;
    let given = a.scope.at.as_deref().or(a.scope.snapshot.as_deref());
    let snaps = match &one {
        Some(sel) => {
            let snap = reading.select(&ws, sel)?;
            if let Some(g) = given {
                output::note_resolved(&snap, g, sel);
            }
            vec![snap]
        }
        None => reading.snapshots(&ws)?,
    };
    let report = reading.find(&snaps, pattern.as_ref())?;
    for (snap, p, why) in &report.damaged {
        tracing::error!(
            "snapshot {}: directory {} unreadable: {why}",
            snap.id.0.short(),
            Escaped(p)
        );
    }
    let code = exit::ok_or_partial(report.damaged.is_empty());
    if a.json {
        let found: Vec<_> = report
            .found
            .iter()
            .map(|(snap, l)| {
                let snapshot = match (&one, given) {
                    (Some(sel), Some(g)) => output::selected_json(snap, g, sel),
                    _ => output::snapshot_json(snap),
                };
                json!({
                    "snapshot": snapshot,
                    "matches": l.entries.iter().map(|(p, e)| json!({
                        "path": lossy(p),
                        "type": kind_name(&e.kind),
                        "mode": format!("{:04o}", e.mode),
                        "size_bytes": e.size,
                        "mtime": output::time(e.mtime_ns),
                        "mtime_ns": e.mtime_ns,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return Ok(output::emit(
            code,
            json!({
                "user": lossy(&ws.user),
                "project": lossy(&ws.project),
                "workspace": ws.to_string(),
                "pattern": a.pattern,
                "snapshots": found,
                "damaged": report.damaged.iter().map(|(s, p, why)| json!({
                    "snapshot": s.id.0.to_hex(), "path": lossy(p), "reason": why,
                })).collect::<Vec<_>>(),
            }),
        ));
    }
    let mut out = io::stdout().lock();
    for (snap, l) in &report.found {
        for (p, e) in &l.entries {
            let slash = if matches!(e.kind, EntryKind::Dir { .. }) {
                "/"
            } else {
                ""
            };
            let r = if one.is_some() {
                writeln!(out, "{}{slash}", Escaped(p))
            } else {
                writeln!(
                    out,
                    "{}  {}  {}{slash}",
                    snap.id.0.short(),
                    timespec::format_local(snap.time_ns),
                    Escaped(p)
                )
            };
            if r.is_err() {
                return Ok(exit::OK); // closed pipe
            }
        }
    }
    Ok(code)
}

pub fn kind_name(k: &EntryKind) -> &'static str {
    match k {
        EntryKind::File { .. } => "file",
        EntryKind::Dir { .. } => "dir",
        EntryKind::Symlink { .. } => "symlink",
    }
}
