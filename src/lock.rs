//! The store's two locks, each one `flock`, each guard its own type.
//!
//! - `STORE/lock`, the writers' lock: writers (`snapshot`, `prune`,
//!   `forget`, `repair`, `import`) hold it exclusively for the whole run
//!   ([`WriterLock`]); `prune --dry-run` and `forget --dry-run` write
//!   nothing and take no lock (`catalog::GcPreview`). The holder writes its pid and start time into the
//!   file so a second run can say who it is waiting for. A reader opening
//!   a read-only store's catalog without SQLite's locking holds it shared
//!   ([`WritersExcluded`]).
//! - `STORE/readers`, the readers' lock: readers hold it shared while they
//!   read packs ([`ReaderLock`]); gc takes it exclusively, without waiting,
//!   only to delete pack files ([`ReadersExcluded`]).
//!
//! Distinct types, so a readers' guard does not type-check where the writer
//! lock is required. The kernel drops a lock when the process dies, so a
//! crashed run never leaves a stale lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::durable::FILE_MODE;
use crate::error::{Error, LockHolder, Result};

/// One held `flock`; released when the file is closed (on drop).
#[derive(Debug)]
struct Flock {
    /// `None`: a reader of a read-only store that has no `readers` file
    /// (see [`readers_shared`]).
    file: Option<File>,
}

impl Drop for Flock {
    fn drop(&mut self) {
        // Clear the holder note while still holding the lock, so a later
        // holder that writes none (`flock(1)` during a store copy) is not
        // reported as this finished run. (A read-only descriptor of a
        // reader refuses this harmlessly.)
        if let Some(f) = &self.file {
            let _ = f.set_len(0);
        }
    }
}

/// The writers' lock, held exclusively: this process is the store's only
/// writer. Every write of the catalog and of packs requires it; a readers'
/// guard is no substitute:
///
/// ```compile_fail
/// # fn f(store: &wsnap::Store) -> wsnap::Result<()> {
/// let readers = store.read_guard()?;
/// let catalog = store.catalog_for_writing(&readers)?; // expected `&WriterLock`
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WriterLock {
    _flock: Flock,
}

/// The readers' lock, held shared while packs are read (restore, ls,
/// check, diff, log): gc deletes no pack file meanwhile.
#[derive(Debug)]
pub struct ReaderLock {
    _flock: Flock,
}

/// The readers' lock, held exclusively: no reader is active, so pack files
/// the catalog no longer names may be deleted (gc only).
#[derive(Debug)]
pub struct ReadersExcluded {
    _flock: Flock,
}

/// The writers' lock, held shared: no writer runs while it is held (a
/// reader of a read-only store's catalog, see [`writers_shared_now`]).
#[derive(Debug)]
pub struct WritersExcluded {
    _flock: Flock,
}

fn try_flock(file: &File) -> std::io::Result<bool> {
    try_flock_mode(file, libc::LOCK_EX)
}

fn try_flock_mode(file: &File, mode: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: flock on a valid, owned file descriptor.
    let rc = unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Take the exclusive lock on `lock_path`, a lock file of `store`, waiting
/// up to `wait`.
pub fn exclusive(
    store: &Path,
    lock_path: &Path,
    wait: Duration,
    holder_note: &str,
) -> Result<WriterLock> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(lock_path)
        .map_err(|e| Error::store_write(lock_path, e))?;
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        if try_flock(&file).map_err(|e| Error::store_write(lock_path, e))? {
            break;
        }
        if Instant::now() >= deadline {
            return Err(Error::Locked {
                path: store.to_path_buf(),
                lock_file: lock_path.to_path_buf(),
                holder: holder(&mut file),
                waited: wait,
            });
        }
        if !told {
            let who = match holder(&mut file) {
                LockHolder::Run(note) => format!("by another wsnap run: {note}"),
                _ => "by a process that is not a wsnap run".into(),
            };
            tracing::info!(
                "store is locked {who}; waiting up to {}",
                humantime::format_duration(wait)
            );
            told = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Best effort: the note is for people, the flock is the lock.
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = writeln!(file, "pid {} {}", std::process::id(), holder_note);
    Ok(WriterLock {
        _flock: Flock { file: Some(file) },
    })
}

/// Who holds the writers' lock, from the note its holder wrote (none: not
/// a wsnap run).
fn holder(file: &mut File) -> LockHolder {
    let mut note = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.read_to_string(&mut note);
    let _ = file.seek(SeekFrom::Start(0));
    match note.trim() {
        "" => LockHolder::Unknown,
        note => LockHolder::Run(note.to_string()),
    }
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
}

/// Readers' lock (`STORE/readers`): `restore` and `ls` hold it shared while
/// they read, gc takes it exclusive (without waiting) only to delete pack
/// files. A reader therefore never loses a pack its catalog view names;
/// gc leaves such packs for its next run instead of waiting.
///
/// On a store that cannot be written (a read-only mount: a file system
/// snapshot, a read-only backup copy or bind mount) the file is opened
/// read-only, which `flock` accepts: a read-only bind mount of a live store
/// shares its inode with the writable path, so gc there still sees us. If
/// the file is missing and cannot be created there, no wsnap process can
/// write through this path and none has the file open elsewhere (it would
/// exist), so there is nothing to exclude: the read goes on without the lock.
pub fn readers_shared(path: &Path, wait: Duration) -> Result<ReaderLock> {
    let file = match open_lock_file(path) {
        Ok(f) => f,
        Err(e) if is_read_only_error(&e) => match File::open(path) {
            Ok(f) => f,
            Err(e2) if e2.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(
                    "{}: read-only store without a readers file; reading without the lock",
                    crate::escape::path(path)
                );
                return Ok(ReaderLock {
                    _flock: Flock { file: None },
                });
            }
            Err(e2) => return Err(Error::store_read(path, e2)),
        },
        Err(e) => return Err(Error::store_read(path, e)),
    };
    let deadline = Instant::now() + wait;
    loop {
        if try_flock_mode(&file, libc::LOCK_SH).map_err(|e| Error::store_read(path, e))? {
            return Ok(ReaderLock {
                _flock: Flock { file: Some(file) },
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::Locked {
                path: path.parent().map(PathBuf::from).unwrap_or_default(),
                lock_file: path.to_path_buf(),
                holder: LockHolder::Gc,
                waited: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opening for writing failed because the store cannot be written here
/// (read-only mount, or no write permission).
fn is_read_only_error(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::EACCES))
}

/// The writers' lock (`STORE/lock`), shared, if no writer holds it right
/// now; `None` if one does or the file cannot be opened. A reader opening a
/// read-only store's catalog without SQLite's locking holds it, so no
/// writer working through another (writable) path to the same files
/// changes the catalog under it; it is opened read-only (`flock` does not
/// need write access).
pub fn writers_shared_now(path: &Path) -> Option<WritersExcluded> {
    let file = File::open(path).ok()?;
    match try_flock_mode(&file, libc::LOCK_SH) {
        Ok(true) => Some(WritersExcluded {
            _flock: Flock { file: Some(file) },
        }),
        _ => None,
    }
}

/// The readers' lock, exclusive, if no reader holds it right now.
pub fn readers_exclusive_now(path: &Path) -> Result<Option<ReadersExcluded>> {
    let file = open_lock_file(path).map_err(|e| Error::store_write(path, e))?;
    if try_flock(&file).map_err(|e| Error::store_write(path, e))? {
        Ok(Some(ReadersExcluded {
            _flock: Flock { file: Some(file) },
        }))
    } else {
        Ok(None)
    }
}
