//! Directory-relative file-system access: the only way wsnap touches the
//! inside of a workspace or a restore target.
//!
//! wsnap runs as root over directories that users own, and restores as root
//! into directories users may own. A user can swap any directory for a
//! symlink at any instant, so a path-based call (`open("ws/sub/f")`,
//! `chmod("tgt/sub")`) can be redirected anywhere between two system calls.
//! Here every call names **one component relative to a directory we hold
//! open** ([`Dir`]):
//!
//! - directories are opened with `openat(dir, name, O_DIRECTORY|O_NOFOLLOW)`,
//!   files with `openat(dir, name, O_NOFOLLOW|O_NONBLOCK)`: a symlink in the
//!   last (and only) component fails with `ELOOP`, never followed, and a
//!   FIFO swapped in never blocks us;
//! - [`Dir::open_dir_as`] and [`Dir::open_file_as`] check that the object
//!   opened is the one `fstatat` saw (device and inode): a swap between the
//!   stat and the open is an error ([`is_replaced`]), never a read of
//!   something else;
//! - restore creates with `mkdirat`, `openat(O_CREAT|O_EXCL|O_NOFOLLOW)` and
//!   `symlinkat`, and sets metadata only through a file descriptor
//!   (`fchmod`, `fchown`, `futimens`) or with `AT_SYMLINK_NOFOLLOW`.
//!
//! Single components need no `openat2(RESOLVE_BENEATH)`: with no `/` in the
//! name and `O_NOFOLLOW`, there is nothing to resolve. Only the starting
//! points (the workspace root `--root` and the restore target `--to`, both
//! given by the admin) are opened by path, with [`Dir::open_path`]. No path
//! is ever built below them, so neither `PATH_MAX` nor a renamed ancestor
//! limits how deep a tree can be (each level holds one descriptor while it
//! is walked; see [`raise_open_file_limit`]).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, RawDir, Timespec, Timestamps, Uid,
};

/// What `fstat`/`fstatat` said about an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// The kinds of object a walk tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    /// FIFO, socket, device: never opened.
    Special,
}

impl Stat {
    fn of(s: &rfs::Stat) -> Stat {
        let ns = |sec: i64, nsec: i64| sec.saturating_mul(1_000_000_000).saturating_add(nsec);
        Stat {
            dev: s.st_dev,
            ino: s.st_ino,
            mode: s.st_mode,
            uid: s.st_uid,
            gid: s.st_gid,
            size: s.st_size as u64,
            mtime_ns: ns(s.st_mtime, s.st_mtime_nsec as i64),
            ctime_ns: ns(s.st_ctime, s.st_ctime_nsec as i64),
        }
    }

    pub fn kind(&self) -> Kind {
        match FileType::from_raw_mode(self.mode) {
            FileType::Directory => Kind::Dir,
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Special,
        }
    }

    /// Permission bits (with setuid, setgid, sticky).
    pub fn perm(&self) -> u32 {
        self.mode & 0o7777
    }

    /// The same object (device and inode): what an open is checked against.
    pub fn same_object(&self, other: &Stat) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// The same version of a file: same object, size and times.
    pub fn same_version(&self, other: &Stat) -> bool {
        self.same_object(other)
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
    }
}

/// `fstat` of an open file or directory.
pub fn fstat(fd: impl AsFd) -> io::Result<Stat> {
    Ok(Stat::of(&rfs::fstat(fd)?))
}

const REPLACED: &str = "replaced while being read (a different object than the one listed)";

fn replaced() -> io::Error {
    io::Error::other(REPLACED)
}

/// Whether `e` says an object was swapped between its stat and its open.
pub fn is_replaced(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Other && e.to_string() == REPLACED
}

/// Whether `e` is what `O_NOFOLLOW` gives for a symlink (or `O_DIRECTORY`
/// for a non-directory): the entry is not what the caller was promised.
pub fn is_not_followed(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR))
}

/// An open directory: the anchor of every call below it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

impl Dir {
    /// Open a starting point given by the admin (`--root`, `--to`, an
    /// import's old backup root). The path is resolved as written, so
    /// symlinks in its leading components are followed, as `cd` would; its
    /// last component is followed only when `follow_last` (the workspace
    /// root may be a symlink the admin made; a restore target never is).
    pub fn open_path(path: &Path, follow_last: bool) -> io::Result<Dir> {
        let flags = if follow_last {
            DIR_FLAGS.difference(OFlags::NOFOLLOW)
        } else {
            DIR_FLAGS
        };
        let fd = rfs::openat(rfs::CWD, path, flags, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// `openat(self, name, O_DIRECTORY|O_NOFOLLOW)`: a symlink or a
    /// non-directory fails (see [`is_not_followed`]).
    pub fn open_dir(&self, name: &[u8]) -> io::Result<Dir> {
        let fd = rfs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// [`Dir::open_dir`], checked to be the object `seen` describes.
    pub fn open_dir_as(&self, name: &[u8], seen: &Stat) -> io::Result<(Dir, Stat)> {
        let dir = self.open_dir(name)?;
        let now = fstat(&dir)?;
        if !now.same_object(seen) {
            return Err(replaced());
        }
        Ok((dir, now))
    }

    /// `fstat` of this directory.
    pub fn stat(&self) -> io::Result<Stat> {
        fstat(&self.fd)
    }

    /// `fstatat(self, name, AT_SYMLINK_NOFOLLOW)`.
    pub fn stat_at(&self, name: &[u8]) -> io::Result<Stat> {
        Ok(Stat::of(&rfs::statat(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
        )?))
    }

    /// The names in this directory (without `.` and `..`), unsorted.
    pub fn names(&self) -> io::Result<Vec<Vec<u8>>> {
        // getdents reads on from the descriptor's offset: start over.
        rfs::seek(&self.fd, rfs::SeekFrom::Start(0))?;
        let mut buf = Vec::with_capacity(32 * 1024);
        let mut iter = RawDir::new(&self.fd, buf.spare_capacity_mut());
        let mut out = Vec::new();
        while let Some(entry) = iter.next() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(name.to_vec());
            }
        }
        Ok(out)
    }

    /// Open a file for reading: `O_NOFOLLOW` (a symlink swapped in fails),
    /// `O_NONBLOCK` (a FIFO swapped in never blocks), `O_NOATIME` where
    /// permitted (owner or root: reading must not dirty the inode).
    pub fn open_file(&self, name: &[u8]) -> io::Result<File> {
        let base = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rfs::openat(&self.fd, name, base | OFlags::NOATIME, Mode::empty()) {
            Err(rustix::io::Errno::PERM) => rfs::openat(&self.fd, name, base, Mode::empty())?,
            r => r?,
        };
        Ok(File::from(fd))
    }

    /// [`Dir::open_file`], checked to be the regular file `seen` describes.
    pub fn open_file_as(&self, name: &[u8], seen: &Stat) -> io::Result<(File, Stat)> {
        let file = self.open_file(name)?;
        let now = fstat(&file)?;
        if !now.same_object(seen) || now.kind() != Kind::File {
            return Err(replaced());
        }
        Ok((file, now))
    }

    /// `readlinkat(self, name)`.
    pub fn read_link(&self, name: &[u8]) -> io::Result<Vec<u8>> {
        Ok(rfs::readlinkat(&self.fd, name, Vec::new())?.into_bytes())
    }

    /// `openat(self, "..")`: the directory this one is in *now*. Callers
    /// check it against what they expect with [`Stat::same_object`].
    pub fn parent(&self) -> io::Result<Dir> {
        let fd = rfs::openat(&self.fd, c"..", DIR_FLAGS, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// `mkdirat(self, name, mode)`.
    pub fn create_dir(&self, name: &[u8], mode: u32) -> io::Result<()> {
        Ok(rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode))?)
    }

    /// A new file: `openat(O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW)`; anything
    /// already standing at `name`, a symlink included, is an error.
    pub fn create_file(&self, name: &[u8], mode: u32) -> io::Result<File> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// `symlinkat(target, self, name)`.
    pub fn symlink(&self, target: &[u8], name: &[u8]) -> io::Result<()> {
        Ok(rfs::symlinkat(target, &self.fd, name)?)
    }

    /// `unlinkat(self, name, 0)`: removes a file or symlink, never follows.
    pub fn remove_file(&self, name: &[u8]) -> io::Result<()> {
        Ok(rfs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Remove the directory `name` and everything in it, each level opened
    /// with [`Dir::open_dir`] (a symlink inside is unlinked, not followed).
    pub fn remove_tree(&self, name: &[u8]) -> io::Result<()> {
        let sub = self.open_dir(name)?;
        for child in sub.names()? {
            match sub.stat_at(&child) {
                Ok(s) if s.kind() == Kind::Dir => sub.remove_tree(&child)?,
                Ok(_) => sub.remove_file(&child)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        drop(sub);
        Ok(rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    /// `fchownat(self, name, AT_SYMLINK_NOFOLLOW)`: the owner of a symlink.
    pub fn set_owner_at(&self, name: &[u8], uid: u32, gid: u32) -> io::Result<()> {
        Ok(rfs::chownat(
            &self.fd,
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// `utimensat(self, name, AT_SYMLINK_NOFOLLOW)`: the mtime of a symlink.
    pub fn set_mtime_at(&self, name: &[u8], mtime_ns: i64) -> io::Result<()> {
        Ok(rfs::utimensat(
            &self.fd,
            name,
            &timestamps(mtime_ns),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }
}

/// `fchown(fd)`.
pub fn set_owner(fd: impl AsFd, uid: u32, gid: u32) -> io::Result<()> {
    Ok(rfs::fchown(
        fd,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
    )?)
}

/// `fchmod(fd)`.
pub fn set_mode(fd: impl AsFd, mode: u32) -> io::Result<()> {
    Ok(rfs::fchmod(fd, Mode::from_raw_mode(mode))?)
}

/// `futimens(fd)`: access and modification time both set to `mtime_ns`.
pub fn set_mtime(fd: impl AsFd, mtime_ns: i64) -> io::Result<()> {
    Ok(rfs::futimens(fd, &timestamps(mtime_ns))?)
}

fn timestamps(ns: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: ns.div_euclid(1_000_000_000),
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Raise this process's soft limit on open files to its hard limit, and as
/// root the hard limit to `want`: a walk holds one descriptor per level of
/// nesting, so a tree nested 20,000 deep needs 20,000 of them. Failure
/// only means a lower limit: a walk that runs out reports the directories
/// it could not open (`EMFILE`), it never skips them silently.
pub fn raise_open_file_limit(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let cur = getrlimit(Resource::Nofile);
    let hard = cur.maximum;
    let wanted = Rlimit {
        current: Some(want),
        maximum: Some(want.max(hard.unwrap_or(u64::MAX))),
    };
    if hard.is_some_and(|h| h >= want) || setrlimit(Resource::Nofile, wanted).is_err() {
        let soft = Rlimit {
            current: hard.map(|h| h.min(want)),
            maximum: hard,
        };
        let _ = setrlimit(Resource::Nofile, soft);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::fs::write(t.path().join("real/f"), b"x").unwrap();
        symlink("real", t.path().join("link")).unwrap();
        symlink("real/f", t.path().join("flink")).unwrap();
        let d = Dir::open_path(t.path(), false).unwrap();
        assert!(is_not_followed(&d.open_dir(b"link").unwrap_err()));
        assert!(is_not_followed(&d.open_file(b"flink").unwrap_err()));
        assert_eq!(d.stat_at(b"link").unwrap().kind(), Kind::Symlink);
        assert_eq!(d.read_link(b"link").unwrap(), b"real");
        let seen = d.stat_at(b"real").unwrap();
        let (sub, _) = d.open_dir_as(b"real", &seen).unwrap();
        assert!(sub
            .parent()
            .unwrap()
            .stat()
            .unwrap()
            .same_object(&d.stat().unwrap()));
        assert_eq!(sub.names().unwrap(), vec![b"f".to_vec()]);
        // Checked against another object: refused.
        let other = d.stat_at(b"real").map(|mut s| {
            s.ino += 1;
            s
        });
        assert!(is_replaced(
            &d.open_dir_as(b"real", &other.unwrap()).unwrap_err()
        ));
        assert!(is_not_followed(
            &Dir::open_path(&t.path().join("link"), false).unwrap_err()
        ));
        Dir::open_path(&t.path().join("link"), true).unwrap();
    }

    #[test]
    fn creation_never_goes_through_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::create_dir(t.path().join("tgt")).unwrap();
        symlink(&outside, t.path().join("tgt/sub")).unwrap();
        symlink(outside.join("f"), t.path().join("tgt/f")).unwrap();
        let d = Dir::open_path(&t.path().join("tgt"), false).unwrap();
        assert!(d.create_file(b"f", 0o600).is_err());
        assert!(d.create_dir(b"sub", 0o700).is_err());
        assert!(d.open_dir(b"sub").is_err());
        d.remove_file(b"sub").unwrap();
        d.create_dir(b"sub", 0o700).unwrap();
        d.open_dir(b"sub")
            .unwrap()
            .create_file(b"g", 0o600)
            .unwrap();
        d.remove_tree(b"sub").unwrap();
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
