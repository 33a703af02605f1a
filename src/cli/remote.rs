//! The off-site copy's commands: `remote add|list|remove`, `push`,
//! `pull`, `restore --remote`, `check --remote`, and the push of
//! `snapshot --push`. Library calls in, lines or `--json` out.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use wsnap::escape;
use wsnap::remote::{self, fetch, push::PushReport, Location, PushState, Remote, RemoteConfig};
use wsnap::{timespec, Error, Result, Store};

use super::args::RemoteAction;
use super::flags::{self, Which};
use super::output::{self, exit, size};
use super::progress;

/// `remote add|list|remove`.
pub fn remote(store_dir: &Path, action: &RemoteAction) -> Result<u8> {
    match action {
        RemoteAction::Add {
            name,
            url,
            endpoint,
            region,
            key_file,
            generate_key,
            json,
        } => add(
            store_dir,
            name,
            url,
            endpoint,
            region,
            key_file,
            *generate_key,
            *json,
        ),
        RemoteAction::List { json } => list(store_dir, *json),
        RemoteAction::Remove { name } => {
            let r = remote::remove(store_dir, name)?;
            println!("removed remote {name} from this store (nothing on the remote was deleted)");
            if let Some(k) = r.kept_key {
                println!(
                    "kept its key file {}: without it the remote's data is unreadable",
                    escape::path(&k)
                );
            }
            Ok(exit::OK)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn add(
    store_dir: &Path,
    name: &str,
    url: &str,
    endpoint: &Option<String>,
    region: &Option<String>,
    key_file: &Option<PathBuf>,
    generate: bool,
    json: bool,
) -> Result<u8> {
    if key_file.is_none() && !generate {
        return Err(Error::Invalid {
            what: "key",
            detail: "give the remote's key file with --key-file FILE, or make a new key with \
                     --generate-key"
                .into(),
        });
    }
    let key = match key_file {
        Some(k) => std::path::absolute(k).map_err(|e| Error::Invalid {
            what: "--key-file",
            detail: format!("{}: {e}", escape::path(k)),
        })?,
        None => PathBuf::new(),
    };
    let cfg = RemoteConfig::new(
        name,
        Location {
            url: url.to_string(),
            endpoint: endpoint.clone(),
            region: region.clone(),
        },
        key,
    )?;
    let a = remote::add(store_dir, cfg, generate)?;
    if json {
        output::emit(
            exit::OK,
            json!({
                "name": a.cfg.name,
                "url": a.cfg.location.url,
                "key_file": a.key_path.display().to_string(),
                "key_generated": a.generated,
                "existing_copy": a.existing_copy,
                "credentials_saved": a.credentials_saved,
            }),
        );
    } else {
        println!(
            "added remote {} ({}){}",
            a.cfg.name,
            a.cfg.location.url,
            if a.existing_copy {
                ": it holds a copy written with this key"
            } else {
                ": new, ready for `wsnap push`"
            }
        );
        if a.credentials_saved {
            println!(
                "credentials from the environment saved (0600) in {}",
                escape::path(&remote::credentials_path(store_dir, name))
            );
        }
    }
    if a.generated {
        // Once, on stderr too: this is the one thing the admin must do.
        tracing::warn!(
            "a new key was written to {}. Keep a copy of it OFF this server (a password manager, \
             a printed copy in a safe): without it the remote's copy can never be read",
            escape::path(&a.key_path)
        );
    }
    Ok(exit::OK)
}

fn list(store_dir: &Path, json: bool) -> Result<u8> {
    let all = remote::list(store_dir)?;
    let rows: Vec<(RemoteConfig, PushState)> = all
        .into_iter()
        .map(|c| {
            let s = PushState::load(store_dir, &c.name);
            (c, s)
        })
        .collect();
    if json {
        let remotes: Vec<Value> = rows
            .iter()
            .map(|(c, s)| {
                json!({
                    "name": c.name,
                    "url": c.location.url,
                    "endpoint": c.location.endpoint,
                    "region": c.location.region,
                    "key_file": c.key_path(store_dir).display().to_string(),
                    "last_push": output::time_opt(s.last_success_ns),
                    "last_push_ns": s.last_success_ns,
                    "newest_pushed_snapshot": output::time_opt(s.newest_pushed_ns),
                    "newest_pushed_snapshot_ns": s.newest_pushed_ns,
                    "last_error": s.last_error,
                })
            })
            .collect();
        return Ok(output::emit(exit::OK, json!({ "remotes": remotes })));
    }
    for (c, s) in &rows {
        println!(
            "{}  {}{}  last push {}{}",
            c.name,
            c.location.url,
            c.location
                .endpoint
                .as_ref()
                .map(|e| format!(" (endpoint {e})"))
                .unwrap_or_default(),
            s.last_success_ns
                .map(timespec::format_local)
                .unwrap_or_else(|| "never".into()),
            s.last_error
                .as_ref()
                .map(|e| format!("; last attempt failed: {e}"))
                .unwrap_or_default()
        );
    }
    Ok(exit::OK)
}

fn grace(g: Option<&str>) -> Result<Duration> {
    match g {
        None => Ok(remote::push::DEFAULT_GRACE),
        Some(g) => flags::parse_duration(g),
    }
}

/// Push the store to a remote: the report, or the error (for
/// `snapshot --push`, which prints both its own way).
pub fn push_report(
    store: &Store,
    name: Option<&str>,
    lock_wait: Duration,
    force: bool,
    grace_arg: Option<&str>,
) -> Result<(PushReport, String, f64)> {
    let t0 = Instant::now();
    let cfg = remote::load(store.dir(), name)?;
    // A push may start a remote afresh (a wiped bucket): `init_config`.
    let opened = Remote::open_unchecked(store.dir(), Some(&cfg.name))
        .and_then(|r| r.init_config().map(|_| r));
    let remote = match opened {
        Ok(r) => r,
        Err(e) => {
            // Recorded for `status`, as a failed push.
            let _ = remote::push::record_failure(store, &cfg.name, &e);
            return Err(e);
        }
    };
    let opts = remote::push::PushOptions {
        grace: grace(grace_arg)?,
        lock_wait,
        force,
    };
    let r = progress::run("push", "objects", |p| {
        remote::push::push(store, &remote, &opts, p)
    })?;
    Ok((r, remote.label(), t0.elapsed().as_secs_f64()))
}

pub fn push_json(r: &PushReport, label: &str, secs: f64) -> Value {
    json!({
        "remote": label,
        "uploaded": {"objects": r.uploaded.objects, "size_bytes": r.uploaded.bytes},
        "skipped": {"objects": r.skipped.objects, "size_bytes": r.skipped.bytes},
        "deleted": {"objects": r.deleted.objects, "size_bytes": r.deleted.bytes},
        "pending_deletion": r.pending_deletion,
        "packs": r.packs,
        "snapshots": r.snapshots,
        "newest_snapshot": output::time_opt(r.newest_snapshot_ns),
        "newest_snapshot_ns": r.newest_snapshot_ns,
        "lock_seconds": r.lock_seconds,
        "seconds": secs,
    })
}

pub fn print_push(r: &PushReport, label: &str, secs: f64) {
    println!(
        "pushed to {label}: {} objects uploaded ({}), {} already there ({}), {} deleted ({}), {} awaiting deletion; \
         {} snapshots in {} packs, newest {}; writer lock held {:.2} s; {:.1} s",
        r.uploaded.objects,
        size(r.uploaded.bytes),
        r.skipped.objects,
        size(r.skipped.bytes),
        r.deleted.objects,
        size(r.deleted.bytes),
        r.pending_deletion,
        r.snapshots,
        r.packs,
        r.newest_snapshot_ns
            .map(timespec::format_local)
            .unwrap_or_else(|| "none".into()),
        r.lock_seconds,
        secs
    );
}

/// `push [NAME]`.
pub fn push(
    store_dir: &Path,
    name: Option<&str>,
    lock_wait: &str,
    force: bool,
    grace: Option<&str>,
    json: bool,
) -> Result<u8> {
    let store = Store::open(store_dir)?;
    let (r, label, secs) = push_report(
        &store,
        name,
        flags::parse_duration(lock_wait)?,
        force,
        grace,
    )?;
    if json {
        output::emit(exit::OK, push_json(&r, &label, secs));
    } else {
        print_push(&r, &label, secs);
    }
    Ok(exit::OK)
}

/// `pull NAME`.
pub fn pull(store_dir: &Path, name: &str, json: bool) -> Result<u8> {
    let t0 = Instant::now();
    let remote = Remote::open(store_dir, Some(name))?;
    let r = progress::run("pull", "packs", |p| {
        remote::pull::pull(store_dir, &remote, p)
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let code = exit::ok_or_partial(r.check_problems.is_empty());
    if json {
        return Ok(output::emit(
            code,
            json!({
                "remote": remote.label(),
                "store": store_dir.display().to_string(),
                "packs": r.packs,
                "pack_bytes": r.pack_bytes,
                "journals": r.journals,
                "snapshots": r.snapshots,
                "rebuilt_because": r.rebuilt_because,
                "problems": r.check_problems,
                "seconds": secs,
            }),
        ));
    } else {
        if let Some(why) = &r.rebuilt_because {
            println!("note: {why}; the catalog was rebuilt from the packs and journals");
        }
        for p in &r.check_problems {
            println!("problem: {p}");
        }
        println!(
            "pulled {} into {}: {} snapshots, {} packs ({}), {} journals in {:.1} s{}",
            remote.label(),
            escape::path(store_dir),
            r.snapshots,
            r.packs,
            size(r.pack_bytes),
            r.journals,
            secs,
            if r.check_problems.is_empty() {
                "; check found no problems".to_string()
            } else {
                format!("; {} problems (listed above)", r.check_problems.len())
            }
        );
    }
    Ok(code)
}

/// `restore --remote NAME USER/PROJECT (--at|--snapshot) --to DIR [--path P]`.
#[allow(clippy::too_many_arguments)]
pub fn restore(
    store_dir: &Path,
    name: &str,
    workspace: &OsString,
    which: &Which,
    to: &Path,
    path: &Option<OsString>,
    overwrite: bool,
    json: bool,
) -> Result<u8> {
    let t0 = Instant::now();
    let remote = Arc::new(Remote::open(store_dir, Some(name))?);
    let cache_bytes = std::env::var("WSNAP_REMOTE_CACHE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(fetch::DEFAULT_CACHE_BYTES);
    let selector = which.selector()?;
    let opts = fetch::RemoteRestoreOptions {
        workspace: flags::workspace(workspace)?,
        selector: selector.clone(),
        restore: wsnap::restore::RestoreOptions {
            target: to.to_path_buf(),
            path: flags::path_bytes(path),
            overwrite,
        },
        cache_bytes,
    };
    let r = progress::run("restore", "files", |p| {
        fetch::restore(store_dir, remote.clone(), &opts, p)
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let rr = &r.restore;
    output::note_resolved(&r.snapshot, which.given(), &selector);
    if json {
        let snapshot = output::selected_json(&r.snapshot, which.given(), &selector);
        let mut v = super::restore::report_json(snapshot, to, rr, secs);
        v["remote"] = json!(remote.label());
        v["packs_fetched"] = json!(r.packs_fetched);
        v["fetched_bytes"] = json!(r.bytes_fetched);
        v["image_fetched"] = json!(r.image_fetched);
        v["cache_evicted"] = json!(r.evicted);
        return Ok(output::emit(super::restore::exit_code(rr), v));
    }
    super::restore::log_damaged(rr);
    println!(
        "restored {} snapshot {} ({}) from {} into {}: {} files, {} dirs, {} symlinks, {}; fetched {} packs ({}) in {:.1} s",
        r.snapshot.workspace,
        r.snapshot.id.0.short(),
        timespec::format_local(r.snapshot.time_ns),
        remote.label(),
        escape::path(to),
        rr.files,
        rr.dirs,
        rr.symlinks,
        size(rr.bytes),
        r.packs_fetched,
        size(r.bytes_fetched),
        secs
    );
    Ok(super::restore::exit_code(rr))
}

/// `check --remote NAME [--read-data [--subset PERCENT]]`.
pub fn check(
    store_dir: &Path,
    name: &str,
    read_data: bool,
    subset: Option<f64>,
    json: bool,
) -> Result<u8> {
    let subset = subset.unwrap_or(100.0);
    if !(subset > 0.0 && subset <= 100.0) {
        return Err(Error::Invalid {
            what: "--subset",
            detail: format!("{subset} is not a percentage in (0, 100]"),
        });
    }
    let remote = Remote::open(store_dir, Some(name))?;
    let tmp = remote::scratch_dir(store_dir, name);
    let r = progress::run("check", "packs", |p| {
        remote::check::check(&remote, &tmp, read_data, subset, p)
    })?;
    let code = if r.problems.is_empty() {
        exit::OK
    } else {
        exit::STORE
    };
    if json {
        return Ok(output::emit(
            code,
            json!({
                "remote": remote.label(),
                "pushed": output::time(r.pushed_ns),
                "pushed_ns": r.pushed_ns,
                "snapshots": r.snapshots,
                "objects": r.objects,
                "packs_read": r.packs_read,
                "read_bytes": r.bytes_read,
                "journals_read": r.journals_read,
                "problems": r.problems,
            }),
        ));
    } else {
        for p in &r.problems {
            println!("problem: {p}");
        }
        println!(
            "check of {} (pushed {}): {} snapshots, {} objects referenced{}: {}",
            remote.label(),
            timespec::format_local(r.pushed_ns),
            r.snapshots,
            r.objects,
            if read_data {
                format!(
                    ", {} packs ({}) and {} journals read and verified",
                    r.packs_read,
                    size(r.bytes_read),
                    r.journals_read
                )
            } else {
                String::new()
            },
            if r.problems.is_empty() {
                "no problems found".to_string()
            } else {
                format!("{} problems found", r.problems.len())
            }
        );
    }
    Ok(code)
}
