//! `stats`: logical vs stored size, dedup and compression ratios, the
//! bytes only each workspace (or with `--by-user` each user) references;
//! as lines or `--json`. The columns are explained in `stats --help`
//! (`args.rs`).

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::Path;

use serde_json::{json, Value};

use wsnap::escape::Escaped;
use wsnap::select::Scope;
use wsnap::{Error, Result, Store};

use super::flags;
use super::output::{self, exit, lossy, size, ws_json};

fn ratio_json(r: Option<f64>) -> Value {
    r.map_or(Value::Null, |v| json!(v))
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |v| format!("{v:.2}x"))
}

/// `stats [USER/PROJECT | --by-user [USER]]`.
pub fn run(
    store_dir: &Path,
    workspace: Option<&OsString>,
    by_user: bool,
    json: bool,
) -> Result<u8> {
    let store = Store::open(store_dir)?;
    let r = if by_user {
        let user = match workspace.map(|w| Scope::parse(w)).transpose()? {
            None => None,
            Some(Scope::User(u)) => Some(u),
            Some(_) => {
                return Err(Error::Invalid {
                    what: "user",
                    detail: "with --by-user give a USER (without /PROJECT), or none".into(),
                })
            }
        };
        wsnap::stats::stats_by_user(&store, user.as_deref())?
    } else {
        let ws = workspace.map(flags::workspace).transpose()?;
        wsnap::stats::stats(&store, ws.as_ref())?
    };
    if json {
        let mut v = json!({
            "snapshots": r.snapshots,
            "workspace_count": r.workspace_count,
            "logical_bytes": r.logical_bytes,
            "latest_logical_bytes": r.latest_logical_bytes,
            "pack_bytes": r.pack_bytes,
            "referenced_bytes": r.referenced_bytes,
            "chunks": r.chunks,
            "chunk_raw_bytes": r.chunk_raw_bytes,
            "chunk_stored_bytes": r.chunk_stored_bytes,
            "metadata_blobs": r.metadata_blobs,
            "metadata_stored_bytes": r.metadata_stored_bytes,
            "unreferenced_blobs": r.unreferenced_blobs,
            "dedup_ratio": ratio_json(r.dedup_ratio()),
            "compression_ratio": ratio_json(r.compression_ratio()),
            "overall_ratio": ratio_json(r.overall_ratio()),
        });
        if by_user {
            v["users"] = r
                .users
                .iter()
                .map(|u| {
                    json!({
                        "user": lossy(&u.user),
                        "workspace_count": u.workspace_count,
                        "snapshots": u.snapshots,
                        "latest_size_bytes": u.latest_size_bytes,
                        "total_size_bytes": u.total_size_bytes,
                        "stored_bytes": u.stored_bytes,
                        "stored_content_bytes": u.stored_content_bytes,
                        "unique_bytes": u.unique_bytes,
                        "unique_content_bytes": u.unique_content_bytes,
                    })
                })
                .collect();
        } else {
            v["workspaces"] = r
                .workspaces
                .iter()
                .map(|w| {
                    let (u, p) = ws_json(&w.workspace);
                    json!({
                        "user": u,
                        "project": p,
                        "snapshots": w.snapshots,
                        "latest_size_bytes": w.latest_size_bytes,
                        "total_size_bytes": w.total_size_bytes,
                        "unique_bytes": w.unique_bytes,
                        "unique_content_bytes": w.unique_content_bytes,
                    })
                })
                .collect();
        }
        return Ok(output::emit(exit::OK, v));
    }
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "snapshots:          {} of {} workspaces",
        r.snapshots, r.workspace_count
    );
    let _ = writeln!(
        out,
        "logical size:       {} (all snapshots), {} (newest of each workspace)",
        size(r.logical_bytes),
        size(r.latest_logical_bytes)
    );
    let _ = writeln!(
        out,
        "distinct content:   {} in {} chunks, stored as {}",
        size(r.chunk_raw_bytes),
        r.chunks,
        size(r.chunk_stored_bytes)
    );
    let _ = writeln!(
        out,
        "stored size:        {} in packs ({} referenced, {} metadata)",
        size(r.pack_bytes),
        size(r.referenced_bytes),
        size(r.metadata_stored_bytes)
    );
    let _ = writeln!(
        out,
        "dedup ratio:        {}   compression ratio: {}   overall: {}",
        ratio_text(r.dedup_ratio()),
        ratio_text(r.compression_ratio()),
        ratio_text(r.overall_ratio())
    );
    if by_user {
        let _ = writeln!(
            out,
            "\n{:<20}  {:>8}  {:>9}  {:>10}  {:>10}  {:>10}  {:>11}",
            "USER", "PROJECTS", "SNAPSHOTS", "LATEST", "STORED", "UNIQUE", "UNIQUE DATA"
        );
        for u in &r.users {
            let _ = writeln!(
                out,
                "{:<20}  {:>8}  {:>9}  {:>10}  {:>10}  {:>10}  {:>11}",
                Escaped(&u.user).to_string(),
                u.workspace_count,
                u.snapshots,
                size(u.latest_size_bytes),
                size(u.stored_bytes),
                size(u.unique_bytes),
                size(u.unique_content_bytes)
            );
        }
        return Ok(exit::OK);
    }
    let _ = writeln!(
        out,
        "\n{:<28}  {:>9}  {:>10}  {:>10}  {:>10}",
        "WORKSPACE", "SNAPSHOTS", "LATEST", "UNIQUE", "UNIQUE DATA"
    );
    for w in &r.workspaces {
        let _ = writeln!(
            out,
            "{:<28}  {:>9}  {:>10}  {:>10}  {:>10}",
            w.workspace.to_string(),
            w.snapshots,
            size(w.latest_size_bytes),
            size(w.unique_bytes),
            size(w.unique_content_bytes)
        );
    }
    Ok(exit::OK)
}
