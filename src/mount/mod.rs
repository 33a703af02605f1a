//! `wsnap mount`: every snapshot as a read-only directory tree (FUSE, the
//! `fuser` crate), without restoring anything.
//!
//! ```text
//! MOUNT/snapshots/<user>_<project>_<YYYYmmdd_HHMMSS>/       the old rsync names (local time)
//! MOUNT/workspaces/<user>/<project>/<YYYY-mm-ddTHH:MM:SS>/  never ambiguous
//! MOUNT/workspaces/<user>/<project>/latest -> <newest>
//! ```
//!
//! Nothing is loaded up front: directories are read when listed, a file's
//! chunk lists when it is read (`reader::FileIndex`). Reads go
//! through the same verified chunk reader as restore, with a bounded cache
//! (`file.rs`). What the mount sees of the catalog, and how new and pruned
//! snapshots show, is `view.rs`; inode numbers are `inodes.rs`; the names
//! are `names.rs`; the FUSE operations `fs.rs`, listing `snapshots/`
//! `snapshots_dir.rs`. The store is only read: the
//! catalog through read-only connections, the packs through
//! `Store::packs()`, the readers' lock shared.
//!
//! The mount ends with `wsnap umount`, `fusermount3 -u` or `umount` (the
//! kernel closes the session), or SIGINT / SIGTERM / SIGHUP (the process
//! unmounts; a busy mount is detached lazily, and served until its last
//! user leaves).

mod file;
mod fs;
mod inodes;
mod names;
mod snapshots_dir;
mod view;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::escape;
use crate::store::Store;
use crate::workspace::WorkspaceName;

pub use file::DEFAULT_CACHE_BYTES;

/// The source the mount shows in `/proc/mounts` (its type is `fuse`, or
/// `fuse.wsnap` when `fusermount3` mounted it).
pub const FS_NAME: &str = "wsnap";

/// How to mount.
#[derive(Clone, Debug)]
pub struct MountOptions {
    pub mountpoint: PathBuf,
    /// Show only these workspaces (all when empty).
    pub workspaces: Vec<WorkspaceName>,
    /// Let other users in (each file's recorded owner and mode apply).
    pub allow_other: bool,
    /// Bound of the chunk cache, in bytes.
    pub cache_bytes: u64,
}

/// What to install or do when FUSE cannot be used.
const INSTALL: &str = "install the fuse3 package (Debian/Ubuntu: apt-get install fuse3), \
                       load the kernel module (modprobe fuse), and in a container give it \
                       the /dev/fuse device";

fn unavailable(reason: impl Into<String>) -> Error {
    Error::FuseUnavailable {
        reason: format!("{}; {INSTALL}", reason.into()),
    }
}

fn bad_mountpoint(path: &Path, reason: impl Into<String>) -> Error {
    Error::Mountpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The first of `names` found on `PATH`.
fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Can FUSE be used here? Root mounts with mount(2) and needs `/dev/fuse`;
/// other users need the setuid helper `fusermount3` (or `fusermount`).
pub fn check_fuse() -> Result<()> {
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        return Err(unavailable("there is no /dev/fuse"));
    }
    if is_root() {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dev)
            .map_err(|e| unavailable(format!("/dev/fuse cannot be opened: {e}")))?;
    } else if on_path(&["fusermount3", "fusermount"]).is_none() {
        return Err(unavailable("fusermount3 is not installed (not on PATH)"));
    }
    Ok(())
}

/// The mount points of this mount namespace with their types and sources
/// (`/proc/self/mountinfo`).
fn mounts() -> Vec<(PathBuf, String, Vec<u8>)> {
    let Ok(text) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if fields.len() < 5 || sep + 2 >= fields.len() {
            continue;
        }
        let point = unescape_octal(fields[4]);
        let fstype = String::from_utf8_lossy(fields[sep + 1]).into_owned();
        let source = unescape_octal(fields[sep + 2]);
        out.push((PathBuf::from(OsStr::from_bytes(&point)), fstype, source));
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as `\NNN`.
fn unescape_octal(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 4 <= s.len() {
            let d = &s[i + 1..i + 4];
            if d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Is a wsnap mount at `path` (canonical)?
pub fn is_wsnap_mount(path: &Path) -> bool {
    mounts()
        .iter()
        .any(|(p, t, src)| p == path && t.starts_with("fuse") && src == FS_NAME.as_bytes())
}

/// The mount point as the kernel will name it: it must exist, be a
/// directory, and not be a mount point already.
pub fn check_mountpoint(path: &Path) -> Result<PathBuf> {
    let canon = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad_mountpoint(
                path,
                "does not exist; create an empty directory there first",
            ))
        }
        Err(e) => return Err(bad_mountpoint(path, e.to_string())),
    };
    if !canon.is_dir() {
        return Err(bad_mountpoint(path, "is not a directory"));
    }
    if let Some((_, t, _)) = mounts().into_iter().find(|(p, _, _)| *p == canon) {
        return Err(bad_mountpoint(
            path,
            format!("is busy: something ({t}) is mounted there already; unmount it or pick another directory"),
        ));
    }
    Ok(canon)
}

/// Mount `store` and serve it until it is unmounted (or a signal asks to).
/// `mounted` is called once the mount is in place.
pub fn mount(store: Store, opts: &MountOptions, mounted: impl FnOnce(&Path)) -> Result<()> {
    check_fuse()?;
    let point = check_mountpoint(&opts.mountpoint)?;
    let view = Arc::new(view::View::new(Arc::new(store), opts.workspaces.clone()));
    let fs = fs::WsnapFs::new(view.clone(), opts.cache_bytes);
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::FSName(FS_NAME.into()),
        fuser::MountOption::Subtype("wsnap".into()),
        fuser::MountOption::NoSuid,
        fuser::MountOption::NoDev,
        fuser::MountOption::NoAtime,
        // The kernel checks each file's recorded owner and mode.
        fuser::MountOption::DefaultPermissions,
    ];
    config.acl = if opts.allow_other {
        fuser::SessionACL::All
    } else {
        fuser::SessionACL::Owner
    };
    config.n_threads = Some(
        std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(4, 16),
    );
    let session = fuser::Session::new(fs, &point, &config).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => bad_mountpoint(&opts.mountpoint, e.to_string()),
        Some(libc::EBUSY) => bad_mountpoint(&opts.mountpoint, format!("is busy: {e}")),
        _ => unavailable(format!("mounting at {} failed: {e}", escape::path(&point))),
    })?;
    mounted(&point);
    tracing::info!("mounted at {}", escape::path(&point));

    let stop = Arc::new(AtomicBool::new(false));
    let keeper = {
        let (stop, view) = (stop.clone(), view.clone());
        std::thread::Builder::new()
            .name("wsnap-mount-idle".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    view.release_if_idle();
                }
            })
            .map_err(|e| unavailable(format!("starting a thread: {e}")))?
    };
    let signals = on_signals(point.clone())?;
    let served = session.run();
    stop.store(true, Ordering::Relaxed);
    let _ = keeper.join();
    signals.close();
    served.map_err(|e| unavailable(format!("serving the mount failed: {e}")))?;
    tracing::info!("unmounted {}", escape::path(&point));
    Ok(())
}

/// SIGINT, SIGTERM and SIGHUP unmount `point` (the session then ends); a
/// second one while a busy mount drains exits at once.
fn on_signals(point: PathBuf) -> Result<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| unavailable(format!("signal handling: {e}")))?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("wsnap-mount-signals".into())
        .spawn(move || {
            let mut asked = false;
            for sig in signals.forever() {
                if asked {
                    tracing::warn!(
                        "signal {sig} again: exiting; processes still inside get errors"
                    );
                    std::process::exit(130);
                }
                asked = true;
                tracing::info!("signal {sig}: unmounting {}", escape::path(&point));
                if let Err(e) = unmount_now(&point) {
                    tracing::warn!("{e}");
                }
            }
        })
        .map_err(|e| unavailable(format!("starting a thread: {e}")))?;
    Ok(handle)
}

/// Unmount `point`; if it is busy, detach it (it disappears from the tree
/// now, and ends when its last user leaves).
fn unmount_now(point: &Path) -> Result<()> {
    match umount(point, false) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            tracing::warn!(
                "{} is busy (a process works inside): detached, it ends when they leave",
                escape::path(point)
            );
            umount(point, true).map_err(|e| bad_mountpoint(point, e.to_string()))
        }
        r => r.map_err(|e| bad_mountpoint(point, e.to_string())),
    }
}

fn umount(point: &Path, lazy: bool) -> io::Result<()> {
    if is_root() {
        let c = std::ffi::CString::new(point.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let flags = if lazy { libc::MNT_DETACH } else { 0 };
        // SAFETY: a NUL-terminated path; umount2 does not keep it.
        if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
            return Ok(());
        }
        return Err(io::Error::last_os_error());
    }
    let helper = on_path(&["fusermount3", "fusermount"])
        .ok_or_else(|| io::Error::other("fusermount3 is not installed"))?;
    let mut cmd = std::process::Command::new(helper);
    cmd.arg("-u").arg("-q");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd.arg("--").arg(point).output()?;
    if out.status.success() {
        Ok(())
    } else {
        let msg = String::from_utf8_lossy(&out.stderr);
        if msg.contains("busy") {
            Err(io::Error::from_raw_os_error(libc::EBUSY))
        } else {
            Err(io::Error::other(msg.trim().to_string()))
        }
    }
}

/// `wsnap umount`: unmount the wsnap mount at `path`.
pub fn unmount(path: &Path) -> Result<()> {
    let canon = std::fs::canonicalize(path).map_err(|e| bad_mountpoint(path, e.to_string()))?;
    if !is_wsnap_mount(&canon) {
        return Err(bad_mountpoint(path, "is not a wsnap mount"));
    }
    umount(&canon, false).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            bad_mountpoint(
                path,
                "is busy: a process has a file open or its working directory there; \
                 close it, or detach the mount with `umount -l`",
            )
        } else {
            bad_mountpoint(path, e.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_octal(br"/mnt/a\040b"), b"/mnt/a b");
        assert_eq!(unescape_octal(br"/x\134y"), b"/x\\y");
        assert_eq!(unescape_octal(br"/tail\04"), br"/tail\04");
        assert_eq!(unescape_octal(b"/plain"), b"/plain");
    }
}
