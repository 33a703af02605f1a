//! Restoring a snapshot (or a path in it) into a directory. Choosing the
//! snapshot and resolving the path is `select.rs`.
//!
//! Safety rules of restore (the target may belong to a hostile user, who
//! can swap any directory in it for a symlink at any instant):
//! - the target must be absent or empty, unless `overwrite`;
//! - every name comes from a decoded, validated tree (no `..`, `/`, NUL,
//!   empty), and every call below the target is relative to a directory
//!   we hold open (`dirfd.rs`): `mkdirat`, then `openat(O_NOFOLLOW)` of what
//!   we made, checked to be a directory we own; files created with
//!   `O_CREAT|O_EXCL|O_NOFOLLOW`; owner, mode and times set through the
//!   descriptor (`fchown`, `fchmod`, `futimens`), or with
//!   `AT_SYMLINK_NOFOLLOW` for symlinks. No path below the target is ever
//!   resolved, so a symlink planted mid-restore is never followed, and no
//!   `PATH_MAX` limits the depth;
//! - an existing symlink in the target is removed, not used;
//! - every chunk is verified against its BLAKE3 id before it is written;
//! - a damaged chunk or tree fails only the files under it: they are listed
//!   in the report, everything else is restored.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::catalog::PinnedCatalog;
use crate::dirfd::{self, Dir, Kind, Stat};
use crate::error::{Error, Missing, Result};
use crate::model::SnapshotRow;
use crate::progress::Progress;
use crate::reader::{self, Blobs};
use crate::select::{resolve, Node};
use crate::store::Store;
use crate::tree::{validate_name, Entry, EntryKind, Tree};
use crate::walk;

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
    /// The target as the admin named it (for messages).
    target: &'a Path,
    overwrite: bool,
    as_root: bool,
    euid: u32,
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
            return Err(Error::NotFound(Missing::Forgotten {
                snapshot: snap.id,
                workspace: Some(snap.workspace.clone()),
            }));
        }
        resolve(store, cat, snap, opts.path.as_deref().unwrap_or(b""))
    })?;
    crate::failpoint::pause_point("restore.pinned");
    let target = prepare_target(&opts.target, opts.overwrite)?;
    match &node {
        Node::Root(_) => progress.expect(snap.stats.files, snap.stats.size_bytes),
        Node::Entry(e) if matches!(e.kind, EntryKind::File { .. }) => progress.expect(1, e.size),
        Node::Entry(_) => {}
    }
    let euid = rustix::process::geteuid().as_raw();
    let ctx = Ctx {
        store,
        progress,
        pool: pinned,
        target: &opts.target,
        overwrite: opts.overwrite,
        as_root: euid == 0,
        euid,
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        symlinks: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        damaged: Mutex::new(Vec::new()),
    };
    // The walk pool: a restore recurses once per level of nesting.
    walk::pool().install(|| match &node {
        Node::Root(tree) => restore_children(&ctx, tree, target, b"", 0).map(drop),
        Node::Entry(e) => restore_entry(&ctx, e, &target, b"", 0),
    })?;
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

/// Open the target directory, creating it (and missing parents, mode
/// 0700) if absent. The path is the admin's: symlinks in its leading
/// components are followed as written, but the target itself must be a real
/// directory, opened with `O_NOFOLLOW`; what is missing is made with
/// `mkdirat` relative to the nearest existing ancestor.
fn prepare_target(target: &Path, overwrite: bool) -> Result<Dir> {
    let terr = |reason: String| Error::Target {
        path: target.to_path_buf(),
        reason,
    };
    let dir = match Dir::open_path(target, false) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_target(target)?,
        Err(e) if dirfd::is_not_followed(&e) => {
            return Err(terr(match fs::symlink_metadata(target) {
                Ok(m) if m.file_type().is_symlink() => "is a symlink; give a real directory".into(),
                _ => "exists and is not a directory".into(),
            }))
        }
        Err(e) => return Err(terr(e.to_string())),
    };
    let names = dir.names().map_err(|e| terr(e.to_string()))?;
    if !names.is_empty() && !overwrite {
        return Err(Error::TargetNotEmpty {
            path: target.to_path_buf(),
        });
    }
    Ok(dir)
}

/// Create the missing tail of `target` below its nearest existing ancestor.
fn create_target(target: &Path) -> Result<Dir> {
    let werr = |source| Error::TargetWrite {
        path: target.to_path_buf(),
        source,
    };
    let mut missing = Vec::new();
    let mut anchor = target;
    let mut dir = loop {
        let (Some(parent), Some(name)) = (anchor.parent(), anchor.file_name()) else {
            return Err(werr(io::Error::from(io::ErrorKind::NotFound)));
        };
        missing.push(name);
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        match Dir::open_path(parent, true) {
            Ok(d) => break d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => anchor = parent,
            Err(e) => return Err(werr(e)),
        }
    };
    for name in missing.into_iter().rev() {
        let name = name.as_bytes();
        match dir.create_dir(name, 0o700) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(werr(e)),
        }
        dir = dir.open_dir(name).map_err(werr)?;
    }
    Ok(dir)
}

/// Restore `tree`'s entries into `dir`, `depth` levels below the target;
/// gives the handle back. Below [`walk::HELD_LEVELS`] one entry at a time,
/// letting go of `dir` while a subdirectory is restored and taking it back
/// from the subdirectory's `..`, checked to be the same directory: a tree
/// of any depth needs a bounded number of descriptors.
fn restore_children(ctx: &Ctx<'_>, tree: &Tree, dir: Dir, rel: &[u8], depth: usize) -> Result<Dir> {
    if depth < walk::HELD_LEVELS {
        tree.entries
            .par_iter()
            .try_for_each(|e| restore_entry(ctx, e, &dir, rel, depth))?;
        return Ok(dir);
    }
    let me = dir.stat().map_err(ctx.twrite(rel))?;
    let mut cur = dir;
    for e in &tree.entries {
        if !matches!(e.kind, EntryKind::Dir { .. }) {
            restore_entry(ctx, e, &cur, rel, depth)?;
            continue;
        }
        let child_rel = crate::tree::join_rel(rel, &e.name);
        let (sub, subtree) = make_dir(ctx, e, &cur, &child_rel)?;
        drop(cur);
        let back = finish_dir(ctx, e, sub, subtree, &child_rel, depth + 1)?;
        cur = back
            .parent()
            .ok()
            .filter(|p| p.stat().is_ok_and(|s| s.same_object(&me)))
            .ok_or_else(|| ctx.swapped(rel))?;
    }
    Ok(cur)
}

/// Make directory entry `e` in `dir` (or, with `--overwrite`, reuse the one
/// there) and open it; read its listing (a lost one is recorded as damage).
fn make_dir(ctx: &Ctx<'_>, e: &Entry, dir: &Dir, rel: &[u8]) -> Result<(Dir, Option<Tree>)> {
    let EntryKind::Dir { tree } = &e.kind else {
        unreachable!("make_dir of a non-directory entry")
    };
    validate_name(&e.name)?;
    let kept = match ctx.overwrite {
        true => clear_slot(ctx, dir, &e.name, rel, true)?,
        false => None,
    };
    let sub = match kept {
        // `--overwrite`: merge into the directory that is there, checked
        // to be the one just looked at.
        Some(seen) => dir
            .open_dir_as(&e.name, &seen)
            .map(|(d, _)| d)
            .map_err(|err| ctx.opening(rel, err))?,
        None => {
            dir.create_dir(&e.name, 0o700).map_err(|err| {
                if err.kind() == io::ErrorKind::AlreadyExists && ctx.overwrite {
                    ctx.swapped(rel) // made by someone else since `clear_slot`
                } else {
                    ctx.twrite(rel)(err)
                }
            })?;
            open_made_dir(ctx, dir, &e.name, rel)?
        }
    };
    let listing = ctx.blobs().tree(tree);
    match listing {
        Ok(t) => Ok((sub, Some(t))),
        Err(err) => {
            ctx.damage(rel.to_vec(), format!("directory listing lost: {err}"));
            Ok((sub, None))
        }
    }
}

/// Restore the children of a directory made by [`make_dir`], then set its
/// owner, mode and mtime through its descriptor (the object changed is the
/// one we made). Gives the handle back.
fn finish_dir(
    ctx: &Ctx<'_>,
    e: &Entry,
    sub: Dir,
    listing: Option<Tree>,
    rel: &[u8],
    depth: usize,
) -> Result<Dir> {
    let sub = match listing {
        Some(t) => restore_children(ctx, &t, sub, rel, depth)?,
        None => sub,
    };
    set_metadata(ctx, &sub, e).map_err(ctx.twrite(rel))?;
    ctx.dirs.fetch_add(1, Ordering::Relaxed);
    Ok(sub)
}

/// Remove whatever stands at `name` in `dir` unless it is a real directory
/// and we want one; that one's stat is returned. Only in overwrite mode.
fn clear_slot(
    ctx: &Ctx<'_>,
    dir: &Dir,
    name: &[u8],
    rel: &[u8],
    want_dir: bool,
) -> Result<Option<Stat>> {
    match dir.stat_at(name) {
        Ok(s) if s.kind() == Kind::Dir && want_dir => Ok(Some(s)),
        Ok(s) if s.kind() == Kind::Dir => dir.remove_tree(name).map(|()| None),
        Ok(_) => dir.remove_file(name).map(|()| None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
    .map_err(ctx.twrite(rel))
}

/// Open directory `name` of `dir` that we just made with `mkdirat`:
/// `O_NOFOLLOW`, and it must still be ours, owned by us and empty. A
/// symlink or another directory swapped in since (say a root-owned one the
/// user could move) is an error, never a place we write into or change.
fn open_made_dir(ctx: &Ctx<'_>, dir: &Dir, name: &[u8], rel: &[u8]) -> Result<Dir> {
    let sub = dir.open_dir(name).map_err(|e| ctx.opening(rel, e))?;
    let st = sub.stat().map_err(ctx.twrite(rel))?;
    let empty = sub.names().map_err(ctx.twrite(rel))?.is_empty();
    if st.uid != ctx.euid || !empty {
        return Err(ctx.swapped(rel));
    }
    Ok(sub)
}

fn restore_entry(ctx: &Ctx<'_>, e: &Entry, dir: &Dir, rel: &[u8], depth: usize) -> Result<()> {
    validate_name(&e.name)?;
    let name = &e.name[..];
    let rel = crate::tree::join_rel(rel, name);
    if let EntryKind::Dir { .. } = e.kind {
        let (sub, listing) = make_dir(ctx, e, dir, &rel)?;
        finish_dir(ctx, e, sub, listing, &rel, depth + 1)?;
        return Ok(());
    }
    if ctx.overwrite {
        clear_slot(ctx, dir, name, &rel, false)?;
    }
    match &e.kind {
        EntryKind::Dir { .. } => unreachable!("handled above"),
        EntryKind::File { content } => {
            let mut f = dir.create_file(name, 0o600).map_err(ctx.twrite(&rel))?;
            let mut written = 0u64;
            let fed = reader::for_each_chunk(&ctx.blobs(), content, |data| {
                f.write_all(data).map_err(ctx.twrite(&rel))?;
                written += data.len() as u64;
                ctx.progress.add(0, data.len() as u64);
                Ok(())
            });
            let lost = match fed {
                Ok(r) => {
                    r?;
                    (written != e.size)
                        .then(|| format!("restored {written} bytes, snapshot says {}", e.size))
                }
                Err(why) => Some(why.to_string()),
            };
            if let Some(why) = lost {
                drop(f);
                dir.remove_file(name).map_err(ctx.twrite(&rel))?;
                ctx.damage(rel, why);
                return Ok(());
            }
            set_metadata(ctx, &f, e).map_err(ctx.twrite(&rel))?;
            ctx.files.fetch_add(1, Ordering::Relaxed);
            ctx.bytes.fetch_add(written, Ordering::Relaxed);
            ctx.progress.add(1, 0);
        }
        EntryKind::Symlink { target } => {
            dir.symlink(target, name).map_err(ctx.twrite(&rel))?;
            if ctx.as_root {
                dir.set_owner_at(name, e.uid, e.gid)
                    .map_err(ctx.twrite(&rel))?;
            }
            dir.set_mtime_at(name, e.mtime_ns)
                .map_err(ctx.twrite(&rel))?;
            ctx.symlinks.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

impl Ctx<'_> {
    /// `rel` is not the directory restore made: someone swapped it.
    fn swapped(&self, rel: &[u8]) -> Error {
        self.twrite(rel)(io::Error::other(
            "replaced while restoring (not the directory restore made); the target is being changed by someone else",
        ))
    }

    /// A failure opening directory `rel`, just made or just looked at: a
    /// symlink, another object than the one expected, or nothing there
    /// (moved away before the symlink was planted) is a swap.
    fn opening(&self, rel: &[u8], e: io::Error) -> Error {
        let gone = e.kind() == io::ErrorKind::NotFound;
        if gone || dirfd::is_not_followed(&e) || dirfd::is_replaced(&e) {
            self.swapped(rel)
        } else {
            self.twrite(rel)(e)
        }
    }

    /// A failure writing `rel` (relative to the target).
    fn twrite<'r>(&'r self, rel: &'r [u8]) -> impl Fn(io::Error) -> Error + 'r {
        move |source| Error::TargetWrite {
            path: self.target.join(OsStr::from_bytes(rel)),
            source,
        }
    }

    /// Verified blobs through the restore's pinned view.
    fn blobs(&self) -> Blobs<'_> {
        Blobs::new(self.store, &self.pool)
    }

    fn damage(&self, path: Vec<u8>, why: String) {
        self.damaged
            .lock()
            .expect("damaged poisoned")
            .push((path, why));
    }
}

/// Owner (as root), mode and mtime of a file or directory we made, set
/// through its descriptor.
fn set_metadata(ctx: &Ctx<'_>, fd: impl AsFd, e: &Entry) -> io::Result<()> {
    if ctx.as_root {
        dirfd::set_owner(fd.as_fd(), e.uid, e.gid)?;
    }
    dirfd::set_mode(fd.as_fd(), e.mode)?;
    dirfd::set_mtime(fd.as_fd(), e.mtime_ns)
}
