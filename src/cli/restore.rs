//! `restore`: a snapshot, or a path in it, into a directory; the result as
//! one line or `--json`.

use std::ffi::OsString;
use std::path::Path;

use wsnap::escape::{self, Escaped};
use wsnap::restore::{self, RestoreOptions};
use wsnap::select;
use wsnap::{timespec, Result, Store};

use super::flags::{self, Which};
use super::output::{self, exit, lossy, size};
use super::progress;

/// `restore USER/PROJECT (--at TIME | --snapshot ID) --to DIR`.
pub fn run(
    store_dir: &Path,
    workspace: &OsString,
    which: &Which,
    to: &Path,
    path: &Option<OsString>,
    overwrite: bool,
    json: bool,
) -> Result<u8> {
    let ws = flags::workspace(workspace)?;
    let sel = which.selector()?;
    let store = Store::open(store_dir)?;
    let snap = select::select(&store.catalog_for_reading()?, &ws, &sel)?;
    output::note_resolved(&snap, which.given(), &sel);
    let opts = RestoreOptions {
        target: to.to_path_buf(),
        path: flags::path_bytes(path),
        overwrite,
    };
    let t0 = std::time::Instant::now();
    let r = progress::run("restore", "files", |p| {
        restore::restore_with_progress(&store, &snap, &opts, p)
    })?;
    let secs = t0.elapsed().as_secs_f64();
    if json {
        let snapshot = output::selected_json(&snap, which.given(), &sel);
        return Ok(output::emit(
            exit_code(&r),
            report_json(snapshot, to, &r, secs),
        ));
    }
    log_damaged(&r);
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
    Ok(exit_code(&r))
}

/// The `--json` object of a restore of `snapshot` (its snapshot object;
/// the remote one adds its fields).
pub fn report_json(
    snapshot: serde_json::Value,
    to: &Path,
    r: &restore::RestoreReport,
    secs: f64,
) -> serde_json::Value {
    serde_json::json!({
        "snapshot": snapshot,
        "target": to.display().to_string(),
        "files": r.files,
        "dirs": r.dirs,
        "symlinks": r.symlinks,
        "restored_bytes": r.bytes,
        "seconds": secs,
        "damaged": r.damaged.iter().map(|(p, why)| serde_json::json!({"path": lossy(p), "reason": why})).collect::<Vec<_>>(),
    })
}

/// One error line per path a restore could not write whole.
pub fn log_damaged(r: &restore::RestoreReport) {
    for (p, why) in &r.damaged {
        tracing::error!("damaged: {}: {why}", Escaped(p));
    }
}

/// 0, or 1 when some paths were damaged (the rest was restored).
pub fn exit_code(r: &restore::RestoreReport) -> u8 {
    exit::ok_or_partial(r.damaged.is_empty())
}
