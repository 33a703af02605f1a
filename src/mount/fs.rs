//! The FUSE file system (`fuser::Filesystem`): lookups, attributes,
//! listings, symlinks, open and read, statfs. Everything is read-only: the
//! mount is `ro` (the kernel answers EROFS to writes before they reach us)
//! and an open for writing is refused with EROFS here too.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, Request,
};

use crate::escape::Escaped;
use crate::reader::{Blobs, Unreadable};
use crate::tree::{Entry, EntryKind, Tree};
use crate::workspace::WorkspaceName;

use super::file::{Caches, OpenFile};
use super::inodes::{self, Inodes, Node, ROOT, SNAPSHOTS, WORKSPACES};
use super::snapshots_dir::SnapshotsDir;
use super::view::{Gen, SnapInfo, View};

/// How long the kernel may keep what the top directories say (snapshots
/// come and go).
const TTL_TOP: Duration = Duration::from_secs(1);
/// How long it may keep what is inside a snapshot (immutable).
const TTL_DATA: Duration = Duration::from_secs(300);

/// One child in a listing.
struct DirItem {
    ino: u64,
    kind: FileType,
    name: Vec<u8>,
}

enum Handle {
    File(Arc<OpenFile>),
    Dir(Arc<Vec<DirItem>>),
    Snapshots(Arc<SnapshotsDir>),
}

/// The mounted store.
pub struct WsnapFs {
    view: Arc<View>,
    inodes: Inodes,
    caches: Caches,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    mounted_at: SystemTime,
    /// (inode, blob) pairs already logged as damaged: one line each.
    logged: Mutex<HashSet<(u64, crate::id::Id)>>,
}

fn time(ns: i64) -> SystemTime {
    let d = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

fn kind_of(e: &Entry) -> FileType {
    match e.kind {
        EntryKind::File { .. } => FileType::RegularFile,
        EntryKind::Dir { .. } => FileType::Directory,
        EntryKind::Symlink { .. } => FileType::Symlink,
    }
}

type Res<T> = Result<T, Errno>;

impl WsnapFs {
    pub fn new(view: Arc<View>, cache_bytes: u64) -> WsnapFs {
        WsnapFs {
            view,
            inodes: Inodes::new(),
            caches: Caches::new(cache_bytes),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            mounted_at: SystemTime::now(),
            logged: Mutex::new(HashSet::new()),
        }
    }

    fn gen(&self, fresh: bool) -> Res<Arc<Gen>> {
        let g = if fresh {
            self.view.fresh_gen()
        } else {
            self.view.gen()
        };
        g.map_err(|e| {
            tracing::error!("reading the catalog: {e}");
            Errno::EIO
        })
    }

    fn node(&self, ino: u64) -> Res<Arc<Node>> {
        self.inodes.get(ino).ok_or(Errno::ENOENT)
    }

    /// A listing of snapshot `snap`, read through the current generation.
    /// A snapshot pruned since is gone (ENOENT); other damage is EIO and
    /// a log line naming it.
    fn tree(&self, snap: &SnapInfo, id: &crate::id::TreeId, ino: u64) -> Res<Arc<Tree>> {
        let gen = self.gen(false)?;
        let blobs = Blobs::new(self.view.store(), &gen.catalog);
        self.caches
            .tree(&blobs, id)
            .map_err(|e| self.damaged(snap, ino, e))
    }

    fn damaged(&self, snap: &SnapInfo, ino: u64, e: Unreadable) -> Errno {
        if !Gen::still_there(self.view.store(), &snap.id) {
            return Errno::ENOENT;
        }
        if self.logged.lock().expect("poisoned").insert((ino, e.id)) {
            tracing::error!(
                "{} (snapshot {} of {}): {e}",
                Escaped(&self.inodes.path(ino)),
                snap.id.0.short(),
                snap.ws
            );
        }
        Errno::EIO
    }

    fn dir_attr(&self, ino: u64, perm: u16, uid: u32, gid: u32, t: SystemTime) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: t,
            mtime: t,
            ctime: t,
            crtime: t,
            kind: FileType::Directory,
            perm,
            nlink: 1,
            uid,
            gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }

    fn attr(&self, ino: u64, node: &Node) -> Res<FileAttr> {
        let top = |ino| self.dir_attr(ino, 0o555, 0, 0, self.mounted_at);
        Ok(match node {
            Node::Root | Node::Snapshots | Node::Workspaces | Node::User(_) | Node::Project(_) => {
                top(ino)
            }
            Node::Latest(ws) => {
                let (target, t) = self.latest(ws)?.ok_or(Errno::ENOENT)?;
                let mut a = top(ino);
                a.kind = FileType::Symlink;
                a.perm = 0o777;
                a.size = target.len() as u64;
                (a.atime, a.mtime, a.ctime) = (time(t), time(t), time(t));
                a
            }
            Node::SnapRoot(s) => {
                let (uid, gid) = self.root_owner(s, ino);
                self.dir_attr(ino, 0o755, uid, gid, time(s.time_ns))
            }
            Node::Entry { entry: e, .. } => FileAttr {
                ino: INodeNo(ino),
                size: e.size,
                blocks: e.size.div_ceil(512),
                atime: time(e.mtime_ns),
                mtime: time(e.mtime_ns),
                ctime: time(e.ctime_ns),
                crtime: time(e.mtime_ns),
                kind: kind_of(e),
                perm: (e.mode & 0o7777) as u16,
                nlink: 1,
                uid: e.uid,
                gid: e.gid,
                rdev: 0,
                blksize: 4096,
                flags: 0,
            },
        })
    }

    /// The workspace directory's owner is not recorded: the owner most of
    /// the root's entries have (so `rsync -a MOUNT/snapshots/X/ WS/` gives
    /// the workspace back to its user, not to root).
    fn root_owner(&self, s: &SnapInfo, ino: u64) -> (u32, u32) {
        let Ok(t) = self.tree(s, &s.root, ino) else {
            return (0, 0);
        };
        let mut count: HashMap<(u32, u32), usize> = HashMap::new();
        for e in &t.entries {
            *count.entry((e.uid, e.gid)).or_default() += 1;
        }
        count
            .into_iter()
            .max_by_key(|&(owner, n)| (n, std::cmp::Reverse(owner)))
            .map_or((0, 0), |(o, _)| o)
    }

    /// `latest`'s target and the newest snapshot's time.
    fn latest(&self, ws: &WorkspaceName) -> Res<Option<(Vec<u8>, i64)>> {
        let list = self.gen(true)?.workspace(ws).map_err(|_| Errno::EIO)?;
        Ok(list.last().map(|(n, s)| (n.clone(), s.time_ns)))
    }

    /// The child `name` of `parent`, and the salt of its number.
    fn child(&self, parent: u64, name: &[u8]) -> Res<Option<(Node, Vec<u8>)>> {
        let node = self.node(parent)?;
        let snap_root = |s: &SnapInfo| Some((Node::SnapRoot(s.clone()), s.id.0 .0.to_vec()));
        let io = |_| Errno::EIO;
        Ok(match &*node {
            Node::Root => None, // the fixed two, answered by `lookup`
            Node::Snapshots => self
                .gen(true)?
                .old_name(name)
                .map_err(io)?
                .as_ref()
                .and_then(snap_root),
            Node::Workspaces => self
                .gen(true)?
                .users()
                .map_err(io)?
                .contains_key(name)
                .then(|| (Node::User(name.to_vec()), Vec::new())),
            Node::User(u) => {
                let users = self.gen(true)?.users().map_err(io)?;
                let known = users.get(u).is_some_and(|p| p.iter().any(|p| p == name));
                known.then(|| {
                    let ws = WorkspaceName {
                        user: u.clone(),
                        project: name.to_vec(),
                    };
                    (Node::Project(ws), Vec::new())
                })
            }
            Node::Project(ws) => {
                let list = self.gen(true)?.workspace(ws).map_err(io)?;
                if name == b"latest" {
                    (!list.is_empty()).then(|| (Node::Latest(ws.clone()), Vec::new()))
                } else {
                    list.iter()
                        .find(|(n, _)| n == name)
                        .and_then(|(_, s)| snap_root(s))
                }
            }
            Node::Latest(_) => return Err(Errno::ENOTDIR),
            Node::SnapRoot(s) => {
                let t = self.tree(s, &s.root, parent)?;
                t.find(name).map(|e| {
                    let node = Node::Entry {
                        snap: Arc::new(s.clone()),
                        entry: e.clone(),
                    };
                    (node, Vec::new())
                })
            }
            Node::Entry { snap, entry } => match &entry.kind {
                EntryKind::Dir { tree } => {
                    let t = self.tree(snap, tree, parent)?;
                    t.find(name).map(|e| {
                        let node = Node::Entry {
                            snap: snap.clone(),
                            entry: e.clone(),
                        };
                        (node, Vec::new())
                    })
                }
                _ => return Err(Errno::ENOTDIR),
            },
        })
    }

    /// Every child of `ino`, with `.` and `..`.
    fn listing(&self, ino: u64) -> Res<Vec<DirItem>> {
        let node = self.node(ino)?;
        let mut items = vec![
            DirItem {
                ino,
                kind: FileType::Directory,
                name: b".".to_vec(),
            },
            DirItem {
                ino: self.inodes.parent(ino),
                kind: FileType::Directory,
                name: b"..".to_vec(),
            },
        ];
        let dir = |name: &[u8], salt: &[u8]| DirItem {
            ino: inodes::number(ino, name, salt),
            kind: FileType::Directory,
            name: name.to_vec(),
        };
        let io = |_| Errno::EIO;
        match &*node {
            Node::Root => {
                for (n, name) in [(SNAPSHOTS, "snapshots"), (WORKSPACES, "workspaces")] {
                    items.push(DirItem {
                        ino: n,
                        kind: FileType::Directory,
                        name: name.into(),
                    });
                }
            }
            // Listed workspace by workspace as read (`SnapshotsDir`).
            Node::Snapshots => {}
            Node::Workspaces => {
                let users = self.gen(true)?.users().map_err(io)?;
                items.extend(users.keys().map(|u| dir(u, b"")));
            }
            Node::User(u) => {
                let users = self.gen(true)?.users().map_err(io)?;
                if let Some(projects) = users.get(u) {
                    items.extend(projects.iter().map(|p| dir(p, b"")));
                }
            }
            Node::Project(ws) => {
                let list = self.gen(true)?.workspace(ws).map_err(io)?;
                items.extend(list.iter().map(|(n, s)| dir(n, &s.id.0 .0)));
                if !list.is_empty() {
                    items.push(DirItem {
                        ino: inodes::number(ino, b"latest", b""),
                        kind: FileType::Symlink,
                        name: b"latest".to_vec(),
                    });
                }
            }
            Node::Latest(_) => return Err(Errno::ENOTDIR),
            Node::SnapRoot(_) | Node::Entry { .. } => {
                let t = match &*node {
                    Node::SnapRoot(s) => self.tree(s, &s.root, ino)?,
                    Node::Entry {
                        snap,
                        entry:
                            Entry {
                                kind: EntryKind::Dir { tree },
                                ..
                            },
                    } => self.tree(snap, tree, ino)?,
                    _ => return Err(Errno::ENOTDIR),
                };
                items.extend(t.entries.iter().map(|e| DirItem {
                    ino: inodes::number(ino, &e.name, b""),
                    kind: kind_of(e),
                    name: e.name.clone(),
                }));
            }
        }
        Ok(items)
    }

    fn new_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().expect("poisoned").insert(fh, h);
        fh
    }

    fn open_file(&self, ino: u64) -> Res<OpenFile> {
        let node = self.node(ino)?;
        let Node::Entry { snap, entry } = &*node else {
            return Err(Errno::EISDIR);
        };
        let EntryKind::File { .. } = entry.kind else {
            return Err(Errno::EISDIR);
        };
        let gen = self.gen(false)?;
        let there = gen.catalog.with(|c| c.has_snapshot(&snap.id));
        if !there.map_err(|_| Errno::EIO)? {
            return Err(Errno::ENOENT); // pruned before it was opened
        }
        let index = self.inodes.file_index(ino).ok_or(Errno::ENOENT)?;
        Ok(OpenFile {
            gen,
            index,
            size: entry.size,
            ino,
        })
    }
}

impl Filesystem for WsnapFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.as_bytes();
        if parent.0 == ROOT {
            let fixed = match name {
                b"snapshots" => SNAPSHOTS,
                b"workspaces" => WORKSPACES,
                _ => return reply.error(Errno::ENOENT),
            };
            let attr = self.dir_attr(fixed, 0o555, 0, 0, self.mounted_at);
            return reply.entry(&TTL_TOP, &attr, Generation(0));
        }
        let found = self.child(parent.0, name).and_then(|c| {
            let (node, salt) = c.ok_or(Errno::ENOENT)?;
            let data = matches!(node, Node::Entry { .. });
            let ino = self.inodes.remember(parent.0, name, &salt, node);
            let node = self.node(ino)?;
            let attr = self.attr(ino, &node);
            if attr.is_err() {
                self.inodes.forget(ino, 1);
            }
            Ok((attr?, data))
        });
        match found {
            Ok((attr, data)) => {
                let ttl = if data { TTL_DATA } else { TTL_TOP };
                reply.entry(&ttl, &attr, Generation(0))
            }
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.node(ino.0).and_then(|n| {
            let ttl = match &*n {
                Node::Entry { .. } => TTL_DATA,
                _ => TTL_TOP,
            };
            self.attr(ino.0, &n).map(|a| (a, ttl))
        }) {
            Ok((a, ttl)) => reply.attr(&ttl, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = self.node(ino.0).and_then(|n| match &*n {
            Node::Latest(ws) => Ok(self.latest(ws)?.ok_or(Errno::ENOENT)?.0),
            Node::Entry {
                entry:
                    Entry {
                        kind: EntryKind::Symlink { target },
                        ..
                    },
                ..
            } => Ok(target.clone()),
            _ => Err(Errno::EINVAL),
        });
        match target {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY
            || flags.0 & (libc::O_TRUNC | libc::O_APPEND) != 0
        {
            return reply.error(Errno::EROFS);
        }
        match self.open_file(ino.0) {
            Ok(f) => {
                let fh = self.new_handle(Handle::File(Arc::new(f)));
                // Contents never change: the page cache may keep them.
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE)
            }
            Err(e) => reply.error(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let f = match self.handles.lock().expect("poisoned").get(&fh.0) {
            Some(Handle::File(f)) => f.clone(),
            _ => return reply.error(Errno::EBADF),
        };
        match f.read(self.view.store(), &self.caches, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => {
                let node = self.node(f.ino);
                let snap = node.as_ref().ok().and_then(|n| n.snapshot().cloned());
                if self.logged.lock().expect("poisoned").insert((f.ino, e.id)) {
                    tracing::error!(
                        "{}{}: {e}",
                        Escaped(&self.inodes.path(f.ino)),
                        snap.map(|s| format!(" (snapshot {} of {})", s.id.0.short(), s.ws))
                            .unwrap_or_default()
                    );
                }
                reply.error(Errno::EIO)
            }
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.handles.lock().expect("poisoned").remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino.0 == SNAPSHOTS {
            return match self.gen(true).and_then(|g| SnapshotsDir::open(&g)) {
                Ok(dir) => {
                    let fh = self.new_handle(Handle::Snapshots(Arc::new(dir)));
                    reply.opened(FileHandle(fh), FopenFlags::empty())
                }
                Err(e) => reply.error(e),
            };
        }
        match self.listing(ino.0) {
            Ok(items) => {
                let fh = self.new_handle(Handle::Dir(Arc::new(items)));
                reply.opened(FileHandle(fh), FopenFlags::empty())
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let items = match self.handles.lock().expect("poisoned").get(&fh.0) {
            Some(Handle::Dir(d)) => d.clone(),
            Some(Handle::Snapshots(d)) => {
                let d = d.clone();
                return match d.read(|| self.gen(false), offset, &mut reply) {
                    Ok(()) => reply.ok(),
                    Err(e) => reply.error(e),
                };
            }
            _ => return reply.error(Errno::EBADF),
        };
        for (i, it) in items.iter().enumerate().skip(offset as usize) {
            let full = reply.add(
                INodeNo(it.ino),
                i as u64 + 1,
                it.kind,
                OsStr::from_bytes(&it.name),
            );
            if full {
                break;
            }
        }
        reply.ok()
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.handles.lock().expect("poisoned").remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let counts = self.gen(false).and_then(|g| {
            g.catalog
                .with(|c| Ok((c.pack_bytes()?, c.snapshot_count()?)))
                .map_err(|_| Errno::EIO)
        });
        match counts {
            Ok((bytes, snaps)) => {
                reply.statfs(bytes.div_ceil(4096), 0, 0, snaps, 0, 4096, 255, 4096)
            }
            Err(e) => reply.error(e),
        }
    }
}
