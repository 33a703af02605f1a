//! One directory entry of the walk: stat it, then store what it is (a
//! subdirectory walked with `snap_dir`, a symlink, a file reused from the
//! parent's entry or read and chunked), looking again when it was swapped.

use std::io;
use std::sync::atomic::Ordering;

use crate::chunklist;
use crate::dirfd::{self, Dir, Kind, Stat};
use crate::error::Result;
use crate::id::ChunkId;
use crate::pack::BlobKind;
use crate::tree::{Entry, EntryKind, FileContent, FLAG_CHANGED_DURING_READ};

use super::super::pipeline::{self, BlobSink, Counters};
use super::super::reuse::{self, StatKey};
use super::{entry_from, snap_dir, WalkCtx};

/// What a walk makes of one directory entry: the parent's very entry when
/// the new one would equal it field for field (nothing copied; a directory
/// all of whose entries are `Same` is the parent's tree, see `snap_dir`),
/// or a new entry.
pub(in crate::snapshot) enum Snapped<'p> {
    Same(&'p Entry),
    New(Entry),
}

impl Snapped<'_> {
    pub(in crate::snapshot) fn into_owned(self) -> Entry {
        match self {
            Snapped::Same(e) => e.clone(),
            Snapped::New(e) => e,
        }
    }
}

/// An entry's path relative to the workspace root, as its directory's and
/// its name: joined only when a skip or a subdirectory needs it.
struct Rel<'a> {
    dir: &'a [u8],
    name: &'a [u8],
}

impl Rel<'_> {
    fn path(&self) -> Vec<u8> {
        crate::tree::join_rel(self.dir, self.name)
    }
}

/// What became of one directory entry.
enum Taken<'p> {
    Stored(Snapped<'p>),
    /// Not stored: deleted, excluded, special, or skipped (recorded).
    Nothing,
    /// The object opened was not the one `fstatat` listed (swapped since):
    /// look again.
    Replaced,
}

/// Snapshot entry `name` of `dir` (the parent snapshot's entry of that
/// name is `parent_entry`). An entry whose object keeps being
/// swapped between its `fstatat` and its open is looked at again, up to
/// [`pipeline::READ_ATTEMPTS`] times, then skipped: what is stored is
/// always what was listed, never what a symlink swapped in points to.
pub(super) fn snap_entry<'p>(
    ctx: &WalkCtx<'_>,
    dir: &Dir,
    dir_rel: &[u8],
    name: &[u8],
    parent_entry: Option<&'p Entry>,
    depth: usize,
) -> Result<Option<Snapped<'p>>> {
    if ctx.needs_read.load(Ordering::Relaxed) {
        return Ok(None); // a prewalk that gave up
    }
    // The entry's path, made only when needed (a skip, a subdirectory).
    let rel = Rel { dir: dir_rel, name };
    if crate::workspace::check_name(name).is_err() {
        ctx.skip(&rel.path(), "name cannot be stored".into(), true);
        return Ok(None);
    }
    for _ in 0..pipeline::READ_ATTEMPTS {
        let seen = match dir.stat_at(name) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None), // deleted mid-walk
            Err(e) => {
                ctx.skip(&rel.path(), e.to_string(), true);
                return Ok(None);
            }
        };
        match take_entry(ctx, dir, name, &rel, &seen, parent_entry, depth)? {
            Taken::Stored(e) => return Ok(Some(e)),
            Taken::Nothing => return Ok(None),
            Taken::Replaced => continue,
        }
    }
    ctx.skip(
        &rel.path(),
        format!(
            "replaced by another object while being read ({} tries); not stored",
            pipeline::READ_ATTEMPTS
        ),
        true,
    );
    Ok(None)
}

/// The entry of `name` as `st` describes it, with `size` and `kind`: the
/// parent's own entry `p` when it would be equal to it.
fn made<'p>(
    p: Option<&'p Entry>,
    name: &[u8],
    st: &Stat,
    size: u64,
    kind: EntryKind,
) -> Snapped<'p> {
    match p {
        Some(p) if unchanged(p, st, size, &kind) => Snapped::Same(p),
        _ => Snapped::New(entry_from(name.to_vec(), st, size, kind)),
    }
}

/// Whether `entry_from(p.name, st, size, kind)` would equal `p` (every
/// field: flags, mode, times, inode, owner, size, kind).
fn unchanged(p: &Entry, st: &Stat, size: u64, kind: &EntryKind) -> bool {
    same_fields(p, st, size) && p.kind == *kind
}

/// [`unchanged`] but for the kind.
fn same_fields(p: &Entry, st: &Stat, size: u64) -> bool {
    p.flags == 0
        && p.mode == st.perm()
        && p.mtime_ns == st.mtime_ns
        && p.ctime_ns == st.ctime_ns
        && p.inode == st.ino
        && p.uid == st.uid
        && p.gid == st.gid
        && p.size == size
}

/// Store the object `seen` (what `fstatat(dir, name)` said).
fn take_entry<'p>(
    ctx: &WalkCtx<'_>,
    dir: &Dir,
    name: &[u8],
    rel: &Rel<'_>,
    seen: &Stat,
    parent_entry: Option<&'p Entry>,
    depth: usize,
) -> Result<Taken<'p>> {
    let kind = seen.kind();
    if ctx
        .excludes
        .is_excluded_at(rel.dir, name, kind == Kind::Dir)
    {
        ctx.stats.excluded.fetch_add(1, Ordering::Relaxed);
        return Ok(Taken::Nothing);
    }
    // An open or read that failed: gone, swapped, or unreadable (skipped).
    let failed = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            Taken::Nothing // deleted mid-walk
        } else if dirfd::is_replaced(&e) || dirfd::is_not_followed(&e) {
            Taken::Replaced
        } else {
            ctx.skip(&rel.path(), e.to_string(), true);
            Taken::Nothing
        }
    };
    match kind {
        Kind::Dir => {
            let (sub, now) = match dir.open_dir_as(name, seen) {
                Ok(x) => x,
                Err(e) => return Ok(failed(e)),
            };
            let parent_sub = parent_entry.and_then(|e| match e.kind {
                EntryKind::Dir { tree } => Some(tree),
                _ => None,
            });
            Ok(
                match snap_dir(ctx, sub, &rel.path(), parent_sub, depth + 1)?.0 {
                    Some(tree) => {
                        ctx.stats.dirs.fetch_add(1, Ordering::Relaxed);
                        Taken::Stored(made(parent_entry, name, &now, 0, EntryKind::Dir { tree }))
                    }
                    None => Taken::Nothing,
                },
            )
        }
        Kind::Symlink => {
            let target = match dir.read_link(name) {
                Ok(t) => t,
                // EINVAL: no longer a symlink.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(Taken::Replaced),
                Err(e) => return Ok(failed(e)),
            };
            if target.is_empty() || target.len() > crate::tree::MAX_TARGET_BYTES {
                ctx.skip(&rel.path(), "symlink target too long".into(), true);
                return Ok(Taken::Nothing);
            }
            ctx.stats.symlinks.fetch_add(1, Ordering::Relaxed);
            let size = target.len() as u64;
            Ok(Taken::Stored(made(
                parent_entry,
                name,
                seen,
                size,
                EntryKind::Symlink { target },
            )))
        }
        Kind::Special => {
            // FIFOs, sockets, devices: counted, never opened.
            ctx.stats.special.fetch_add(1, Ordering::Relaxed);
            Ok(Taken::Nothing)
        }
        Kind::File => {
            let key = StatKey {
                size: seen.size,
                mtime_ns: seen.mtime_ns,
                ctime_ns: seen.ctime_ns,
                inode: seen.ino,
            };
            if let Some(p) =
                parent_entry.filter(|p| reuse::can_reuse(p, &key, ctx.parent_started_ns))
            {
                ctx.stats.files.fetch_add(1, Ordering::Relaxed);
                ctx.stats.size_bytes.fetch_add(p.size, Ordering::Relaxed);
                ctx.progress(1, p.size);
                // The parent's entry itself when mode and owner are the
                // same too: nothing copied.
                if same_fields(p, seen, p.size) {
                    return Ok(Taken::Stored(Snapped::Same(p)));
                }
                return Ok(Taken::Stored(Snapped::New(entry_from(
                    name.to_vec(),
                    seen,
                    p.size,
                    p.kind.clone(),
                ))));
            }
            let Some(sink) = ctx.sink else {
                // A prewalk reads no file: the full walk will.
                ctx.needs_read.store(true, Ordering::Relaxed);
                return Ok(Taken::Nothing);
            };
            let content =
                match pipeline::store_file(dir, name, seen, &ctx.params, sink, &ctx.counters)? {
                    Ok(c) => c,
                    Err(e) => return Ok(failed(e)),
                };
            ctx.stats.files.fetch_add(1, Ordering::Relaxed);
            ctx.stats
                .size_bytes
                .fetch_add(content.size, Ordering::Relaxed);
            ctx.progress(1, content.size);
            let file_content = file_content(sink, &ctx.counters, content.chunks)?;
            let mut e = entry_from(
                name.to_vec(),
                &content.stat,
                content.size,
                EntryKind::File {
                    content: file_content,
                },
            );
            if content.changed_during_read {
                e.flags |= FLAG_CHANGED_DURING_READ;
                ctx.skip(
                    &rel.path(),
                    format!(
                        "changed while being read ({} tries); stored as last read",
                        pipeline::READ_ATTEMPTS
                    ),
                    false,
                );
            }
            Ok(Taken::Stored(Snapped::New(e)))
        }
    }
}

/// Inline chunk ids for small files; chunk lists for large ones.
fn file_content(
    sink: &BlobSink<'_>,
    counters: &Counters,
    chunks: Vec<ChunkId>,
) -> Result<FileContent> {
    if chunks.len() <= chunklist::INLINE_MAX_CHUNKS {
        return Ok(FileContent::Chunks(chunks));
    }
    let mut lists = Vec::new();
    for l in chunklist::split(&chunks) {
        let added = sink.put(BlobKind::ChunkList, l.id.0, &l.bytes, l.chunks)?;
        counters.bytes_added.fetch_add(added, Ordering::Relaxed);
        lists.push(l.id);
    }
    Ok(FileContent::Lists(lists))
}
