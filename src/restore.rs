//! Choosing a snapshot, browsing it, and restoring it into a directory.
//!
//! Safety rules of restore:
//! - the target must be absent or empty, unless `overwrite`;
//! - every name comes from a decoded, validated tree (no `..`, `/`, NUL,
//!   empty) and is joined to a directory we created or checked with lstat;
//! - files are created with `O_CREAT|O_EXCL|O_NOFOLLOW` and symlinks are
//!   never followed: an existing symlink in the target is removed, not used;
//! - every chunk is verified against its BLAKE3 id before it is written;
//! - a damaged chunk or tree fails only the files under it: they are listed
//!   in the report, everything else is restored.

use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::catalog::{Catalog, PinnedCatalog, SnapshotRow};
use crate::chunklist;
use crate::error::{Error, Result};
use crate::escape::Escaped;
use crate::id::{ChunkId, Id};
use crate::pack::BlobKind;
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec::{self, TimeSpec};
use crate::tree::{validate_name, Entry, EntryKind, FileContent, Tree};
use crate::workspace::WorkspaceName;

/// How the user names a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// Newest snapshot at or before a time (or the newest of all).
    Time(TimeSpec),
    /// Hex id or unique prefix (at least 4 digits).
    Id(String),
}

/// Pick one snapshot of `ws`.
pub fn select(catalog: &Catalog, ws: &WorkspaceName, sel: &Selector) -> Result<SnapshotRow> {
    let all = catalog.snapshots(Some(ws))?;
    if all.is_empty() {
        return Err(Error::NotFound(format!(
            "no snapshots of workspace {ws} in this store (see `wsnap list`)"
        )));
    }
    match sel {
        Selector::Time(TimeSpec::Latest) => Ok(all.last().expect("non-empty").clone()),
        Selector::Time(TimeSpec::At(t)) => {
            // `all` is ordered by (time, id): the last one at or before t.
            match all.iter().rev().find(|s| s.time_ns <= *t) {
                Some(s) => Ok(s.clone()),
                None => {
                    let oldest = &all[0];
                    Err(Error::NotFound(format!(
                        "no snapshot of {ws} at or before {}; the oldest is {} ({})",
                        timespec::format_local(*t),
                        timespec::format_local(oldest.time_ns),
                        oldest.id.0.short()
                    )))
                }
            }
        }
        Selector::Id(prefix) => by_id_prefix(&all, prefix, &format!("of {ws} ")).cloned(),
    }
}

/// The one snapshot among `all` whose id starts with `prefix` (at least 4
/// hex digits). `scope` completes "no snapshot {scope}has id …".
pub fn by_id_prefix<'a>(
    all: &'a [SnapshotRow],
    prefix: &str,
    scope: &str,
) -> Result<&'a SnapshotRow> {
    let p = prefix.to_ascii_lowercase();
    if p.len() < 4 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid(
            "snapshot id",
            format!("{prefix:?}: give at least 4 hex digits, as `wsnap list` shows"),
        ));
    }
    let hits: Vec<&SnapshotRow> = all
        .iter()
        .filter(|s| s.id.0.to_hex().starts_with(&p))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::NotFound(format!(
            "no snapshot {scope}has id {prefix}"
        ))),
        _ => Err(Error::invalid(
            "snapshot id",
            format!(
                "{prefix} matches {} snapshots; give more digits",
                hits.len()
            ),
        )),
    }
}

/// Split a user-given path inside a snapshot into validated components.
pub fn split_path(path: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." {
            continue;
        }
        validate_name(c).map_err(|_| {
            Error::invalid(
                "path",
                format!(
                    "{:?}: components may not be '..' or contain NUL",
                    Escaped(path)
                ),
            )
        })?;
        out.push(c);
    }
    Ok(out)
}

/// What a path inside a snapshot names.
#[derive(Clone, Debug)]
pub enum Node {
    /// The snapshot's root directory.
    Root(Tree),
    /// An entry below the root.
    Entry(Entry),
}

/// Find `path` in snapshot `snap`.
pub fn resolve(store: &Store, catalog: &Catalog, snap: &SnapshotRow, path: &[u8]) -> Result<Node> {
    let parts = split_path(path)?;
    let mut tree = store.read_tree(catalog, &snap.root)?;
    let mut node = Node::Root(tree.clone());
    for (i, part) in parts.iter().enumerate() {
        let entry = tree.find(part).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "{} not found in snapshot {} of {}",
                Escaped(path),
                snap.id.0.short(),
                snap.workspace
            ))
        })?;
        if i + 1 < parts.len() {
            match &entry.kind {
                EntryKind::Dir { tree: t } => tree = store.read_tree(catalog, t)?,
                _ => {
                    return Err(Error::NotFound(format!(
                        "{}: {} is not a directory",
                        Escaped(path),
                        Escaped(part)
                    )))
                }
            }
        }
        node = Node::Entry(entry);
    }
    Ok(node)
}

/// The entries `ls` shows: a directory's listing, or the one entry.
pub fn list_entries(
    store: &Store,
    catalog: &Catalog,
    snap: &SnapshotRow,
    path: &[u8],
) -> Result<Vec<Entry>> {
    match resolve(store, catalog, snap, path)? {
        Node::Root(t) => Ok(t.entries),
        Node::Entry(e) => match &e.kind {
            EntryKind::Dir { tree } => Ok(store.read_tree(catalog, tree)?.entries),
            _ => Ok(vec![e]),
        },
    }
}

/// Where and how to restore.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Restore only this path of the snapshot (created inside `target`
    /// under its last component). `None`: the whole workspace.
    pub path: Option<Vec<u8>>,
    /// Allow a non-empty target; conflicting entries are replaced.
    pub overwrite: bool,
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    /// Paths (relative to the target) that could not be restored, and why.
    pub damaged: Vec<(Vec<u8>, String)>,
}

struct Ctx<'a> {
    store: &'a Store,
    progress: &'a Progress,
    pool: PinnedCatalog,
    overwrite: bool,
    as_root: bool,
    files: AtomicU64,
    dirs: AtomicU64,
    symlinks: AtomicU64,
    bytes: AtomicU64,
    damaged: Mutex<Vec<(Vec<u8>, String)>>,
}

/// Restore `snap` (or a path in it) into `opts.target`.
pub fn restore(store: &Store, snap: &SnapshotRow, opts: &RestoreOptions) -> Result<RestoreReport> {
    restore_with_progress(store, snap, opts, &Progress::default())
}

/// [`restore`], counting files and bytes written into `progress`.
pub fn restore_with_progress(
    store: &Store,
    snap: &SnapshotRow,
    opts: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreReport> {
    // Readers' lock first, then one pinned catalog view: gc cannot delete a
    // pack this view names until we are done.
    let _readers = store.read_guard()?;
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    let node = pinned.with(|cat| {
        let still_there = cat
            .snapshots(Some(&snap.workspace))?
            .iter()
            .any(|s| s.id == snap.id);
        if !still_there {
            return Err(Error::NotFound(format!(
                "snapshot {} of {} was forgotten meanwhile",
                snap.id.0.short(),
                snap.workspace
            )));
        }
        resolve(store, cat, snap, opts.path.as_deref().unwrap_or(b""))
    })?;
    crate::failpoint::pause_point("restore.pinned");
    prepare_target(&opts.target, opts.overwrite)?;
    match &node {
        Node::Root(_) => progress.expect(snap.stats.files, snap.stats.size_bytes),
        Node::Entry(e) if matches!(e.kind, EntryKind::File { .. }) => progress.expect(1, e.size),
        Node::Entry(_) => {}
    }
    let ctx = Ctx {
        store,
        progress,
        pool: pinned,
        overwrite: opts.overwrite,
        // SAFETY: geteuid has no preconditions.
        as_root: unsafe { libc::geteuid() } == 0,
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        symlinks: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        damaged: Mutex::new(Vec::new()),
    };
    match &node {
        Node::Root(tree) => restore_children(&ctx, tree, &opts.target, b"")?,
        Node::Entry(e) => restore_entry(&ctx, e, &opts.target, b"")?,
    }
    let mut damaged = ctx.damaged.into_inner().expect("damaged poisoned");
    damaged.sort();
    Ok(RestoreReport {
        files: ctx.files.into_inner(),
        dirs: ctx.dirs.into_inner(),
        symlinks: ctx.symlinks.into_inner(),
        bytes: ctx.bytes.into_inner(),
        damaged,
    })
}

fn prepare_target(target: &Path, overwrite: bool) -> Result<()> {
    let terr = |reason: String| Error::Target {
        path: target.to_path_buf(),
        reason,
    };
    match fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(terr("is a symlink; give a real directory".into()))
        }
        Ok(m) if !m.is_dir() => Err(terr("exists and is not a directory".into())),
        Ok(_) => {
            let mut rd = fs::read_dir(target).map_err(|e| terr(e.to_string()))?;
            if rd.next().is_some() && !overwrite {
                Err(terr(
                    "is not empty; pick an empty directory or pass --overwrite".into(),
                ))
            } else {
                Ok(())
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(target)
            .map_err(|e| Error::TargetWrite {
                path: target.to_path_buf(),
                source: e,
            }),
        Err(e) => Err(terr(e.to_string())),
    }
}

fn twrite(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::TargetWrite {
        path: path.to_path_buf(),
        source,
    }
}

fn restore_children(ctx: &Ctx<'_>, tree: &Tree, dir: &Path, rel: &[u8]) -> Result<()> {
    tree.entries
        .par_iter()
        .try_for_each(|e| restore_entry(ctx, e, dir, rel))
}

fn join_rel(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = rel.to_vec();
    if !v.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

/// Remove whatever stands at `path` unless it is a real directory and we
/// want one. Only called in overwrite mode.
fn clear_slot(path: &Path, want_dir: bool) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && want_dir => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(twrite(path)),
        Ok(_) => fs::remove_file(path).map_err(twrite(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(twrite(path)(e)),
    }
}

fn restore_entry(ctx: &Ctx<'_>, e: &Entry, dir: &Path, rel: &[u8]) -> Result<()> {
    validate_name(&e.name)?;
    let path = dir.join(OsStr::from_bytes(&e.name));
    let rel = join_rel(rel, &e.name);
    if ctx.overwrite {
        clear_slot(&path, matches!(e.kind, EntryKind::Dir { .. }))?;
    }
    match &e.kind {
        EntryKind::Dir { tree } => {
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists && ctx.overwrite => {}
                Err(err) => return Err(twrite(&path)(err)),
            }
            let sub = ctx
                .read(&tree.0, BlobKind::Tree)
                .and_then(|raw| Tree::decode(&raw).map_err(|e| e.to_string()));
            match sub {
                Ok(sub) => restore_children(ctx, &sub, &path, &rel)?,
                Err(err) => ctx.damage(rel.clone(), format!("directory listing lost: {err}")),
            }
            set_metadata(ctx, &path, e)?;
            ctx.dirs.fetch_add(1, Ordering::Relaxed);
        }
        EntryKind::File { content } => {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(twrite(&path))?;
            let mut written = 0u64;
            let fed = for_each_chunk(ctx, content, |data| {
                f.write_all(data).map_err(twrite(&path))?;
                written += data.len() as u64;
                ctx.progress.add(0, data.len() as u64);
                Ok(())
            });
            match fed {
                Ok(r) => r?,
                Err(why) => {
                    drop(f);
                    fs::remove_file(&path).map_err(twrite(&path))?;
                    ctx.damage(rel, why);
                    return Ok(());
                }
            }
            if written != e.size {
                drop(f);
                fs::remove_file(&path).map_err(twrite(&path))?;
                ctx.damage(
                    rel,
                    format!("restored {written} bytes, snapshot says {}", e.size),
                );
                return Ok(());
            }
            if ctx.as_root {
                std::os::unix::fs::fchown(&f, Some(e.uid), Some(e.gid)).map_err(twrite(&path))?;
            }
            f.set_permissions(fs::Permissions::from_mode(e.mode))
                .map_err(twrite(&path))?;
            set_mtime(&f, e.mtime_ns).map_err(twrite(&path))?;
            ctx.files.fetch_add(1, Ordering::Relaxed);
            ctx.bytes.fetch_add(written, Ordering::Relaxed);
            ctx.progress.add(1, 0);
        }
        EntryKind::Symlink { target } => {
            std::os::unix::fs::symlink(OsStr::from_bytes(target), &path).map_err(twrite(&path))?;
            if ctx.as_root {
                std::os::unix::fs::lchown(&path, Some(e.uid), Some(e.gid))
                    .map_err(twrite(&path))?;
            }
            set_times_nofollow(&path, e.mtime_ns).map_err(twrite(&path))?;
            ctx.symlinks.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Feed a file's chunks, verified, to `write` in order. `Err(why)` means a
/// damaged blob (this file is lost, the restore goes on); `Ok(Err)` is a
/// failure of `write` (ends the restore).
fn for_each_chunk(
    ctx: &Ctx<'_>,
    content: &FileContent,
    mut write: impl FnMut(&[u8]) -> Result<()>,
) -> std::result::Result<Result<()>, String> {
    let read = |id: &Id, kind: BlobKind| ctx.read(id, kind);
    let mut feed = |chunks: &[ChunkId]| -> std::result::Result<Result<()>, String> {
        // Read, decompress and verify a few chunks in parallel, write in order.
        for batch in chunks.chunks(RESTORE_BATCH) {
            let data: Vec<_> = if batch.len() == 1 {
                vec![read(&batch[0].0, BlobKind::Chunk)]
            } else {
                batch
                    .par_iter()
                    .map(|c| read(&c.0, BlobKind::Chunk))
                    .collect()
            };
            for d in data {
                if let Err(e) = write(&d?) {
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(()))
    };
    match content {
        FileContent::Chunks(chunks) => feed(chunks),
        FileContent::Lists(lists) => {
            for l in lists {
                let bytes = read(&l.0, BlobKind::ChunkList)?;
                let chunks = chunklist::decode(&bytes)
                    .map_err(|e| format!("chunk list {}: {e}", l.0.short()))?;
                if let Err(e) = feed(&chunks)? {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(()))
        }
    }
}

/// Chunks of one file read in parallel (at most 8 × 128 KiB in memory).
const RESTORE_BATCH: usize = 8;

impl Ctx<'_> {
    /// Look the blob up under the catalog lock, read it outside it.
    fn read(&self, id: &Id, kind: BlobKind) -> std::result::Result<Vec<u8>, String> {
        self.pool
            .with(|cat| cat.blob_location(id))
            .and_then(|loc| self.store.read_blob_at(id, kind, loc))
            .map_err(|e| format!("{kind:?} {} unreadable: {e}", id.short()))
    }

    fn damage(&self, path: Vec<u8>, why: String) {
        self.damaged
            .lock()
            .expect("damaged poisoned")
            .push((path, why));
    }
}

/// Owner, mode and mtime of a directory we created (after its children).
fn set_metadata(ctx: &Ctx<'_>, path: &Path, e: &Entry) -> Result<()> {
    if ctx.as_root {
        std::os::unix::fs::lchown(path, Some(e.uid), Some(e.gid)).map_err(twrite(path))?;
    }
    // The path was created by us as a directory and checked with lstat, so
    // following it cannot leave the target.
    fs::set_permissions(path, fs::Permissions::from_mode(e.mode)).map_err(twrite(path))?;
    set_times_nofollow(path, e.mtime_ns).map_err(twrite(path))
}

fn timespec_of(ns: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: ns.rem_euclid(1_000_000_000) as libc::c_long,
    }
}

fn set_mtime(f: &File, mtime_ns: i64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let t = [timespec_of(mtime_ns), timespec_of(mtime_ns)];
    // SAFETY: valid fd and a two-element timespec array.
    let rc = unsafe { libc::futimens(f.as_raw_fd(), t.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_times_nofollow(path: &Path, mtime_ns: i64) -> io::Result<()> {
    let c =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("NUL in path"))?;
    let t = [timespec_of(mtime_ns), timespec_of(mtime_ns)];
    // SAFETY: NUL-terminated path and a two-element timespec array.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            t.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
