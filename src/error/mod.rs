//! The library's error type.
//!
//! Every variant carries the thing it is about (a path, an id, a name) so the
//! CLI can print one line that names it and says what to do. The CLI maps
//! [`Error::kind`] to exit codes in one place; the library never exits.
//!
//! Two families are kept apart on purpose: a failure *reading a workspace*
//! (a user's file vanished, is unreadable) is data recorded in the run report,
//! never an `Error`; a failure *writing the store* ([`Error::StoreWrite`]) ends
//! the run at once, with nothing half-written referenced by the catalog.
//!
//! Messages say what happened, and what to do where that needs no
//! command-line flag: they never name a flag (`--lock-wait`, `--force`, …).
//! The CLI adds those hints, chosen by variant (`cli/output.rs`).
//!
//! Damaged store data is [`Error::Corrupt`]: *where* it is, a chain of
//! [`Object`]s from the outside in (a pack file, a record in it, the blob
//! that record holds), and *what is wrong* ([`Problem`]). A decoder knows
//! the problem and seldom the object: each caller adds what it knows with
//! [`Error::within`]. A file or blob in a format version this wsnap does not
//! read is [`Error::UnsupportedFormat`], never corruption. Something asked
//! for that does not exist is [`Error::NotFound`], saying what ([`Missing`]).
//!
//! The types carried here (`id`, `workspace`) sit below this module and
//! have small errors of their own, which `From` turns into an `Error`.

use std::io;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::escape;
use crate::id;
use crate::workspace::BadWorkspace;

mod context;
mod remote;

use context::{damage, unsupported};
pub use context::{Format, Location, Missing, Object, Problem};
pub use remote::{RemoteClass, RemoteError};

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Coarse classification of errors, for exit codes and scripting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user gave something invalid or asked for something that does not exist.
    Input,
    /// The store is missing, not a store, of another version, or damaged.
    Store,
    /// Writing the store or a restore target failed (full disk, I/O error).
    Write,
    /// Another process holds the store lock.
    Locked,
    /// A remote (object storage) cannot be used now: unreachable, refused
    /// credentials, missing bucket.
    Unavailable,
}

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path exists but is not a wsnap store; we never write into it.
    #[error("{path} exists but is not a wsnap store ({reason}); refusing to touch it. Pick an empty or absent directory for a new store", path = esc(.path))]
    NotAStore { path: PathBuf, reason: String },

    /// A path holding the old rsync script's copies
    /// (`<user>_<project>_<YYYYmmdd_HHMMSS>/`) where a store was expected:
    /// never written into; `import-rsync` reads them.
    #[error(
        "{path} holds the old rsync backups ({count} {} named like {example}), not a wsnap store; refusing to touch it",
        if *.count == 1 { "directory" } else { "directories" },
        path = esc(.path)
    )]
    OldBackups {
        path: PathBuf,
        count: usize,
        example: String,
    },

    /// A store whose catalog is missing or unreadable; `repair` rebuilds it.
    #[error("store {path}: {reason}", path = esc(.path))]
    CatalogDamaged { path: PathBuf, reason: String },

    /// No store at the path.
    #[error("no wsnap store at {path}", path = esc(.path))]
    NoStore { path: PathBuf },

    /// A catalog, pack, journal, tree or chunk list in a format version this
    /// wsnap does not read (written by a newer wsnap, or damaged), or, for
    /// the catalog, one it reads but does not write before a writer has
    /// upgraded it.
    #[error("{}", unsupported(*.what, *.found, .supported, .location))]
    UnsupportedFormat {
        what: Format,
        found: i64,
        /// The versions this wsnap reads.
        supported: RangeInclusive<i64>,
        location: Location,
    },

    /// The store is on a network or FUSE file system, where `flock` and
    /// SQLite's WAL are not safe (see `crate::fscheck`).
    #[error(
        "store {path} is on {fs}: wsnap supports local file systems only (its flock locks and its SQLite WAL catalog are not safe on network or FUSE file systems). Move the store to a local disk",
        path = esc(.path)
    )]
    UnsafeFileSystem { path: PathBuf, fs: String },

    /// Another process holds a lock of store `path`: `lock_file` (its
    /// writers' lock `STORE/lock`, its readers' lock, or a remote's push
    /// lock). `waited`: how long this run waited for it; zero when it did
    /// not wait.
    #[error("{}{}", locked(.path, .holder), waited_for(*.waited))]
    Locked {
        path: PathBuf,
        lock_file: PathBuf,
        holder: LockHolder,
        waited: Duration,
    },

    /// Writing to the store failed. The run stops; nothing half-written is referenced.
    #[error("writing the store failed at {path}: {source}{}", disk_hint(source), path = esc(.path))]
    StoreWrite { path: PathBuf, source: io::Error },

    /// Reading the store's own files failed.
    #[error("reading the store failed at {path}: {source}", path = esc(.path))]
    StoreRead { path: PathBuf, source: io::Error },

    /// Bytes from the store do not decode or do not match their id, or the
    /// catalog names data that is not there.
    #[error(
        "store data is corrupt: {}. Run `wsnap check` to see what it affects",
        damage(.at, .problem)
    )]
    Corrupt {
        /// Where, from the outside in (a pack, a record in it, a blob);
        /// empty where nothing more than the problem is known.
        at: Vec<Object>,
        problem: Problem,
    },

    /// The SQLite catalog reported an error.
    #[error("catalog {path}: {source}{}", catalog_hint(source), path = esc(.path))]
    Catalog {
        path: PathBuf,
        source: rusqlite::Error,
    },

    /// Bad user input: a name, a time, a pattern.
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },

    /// Something the user asked for does not exist (workspace, snapshot, path).
    #[error("{0}")]
    NotFound(Missing),

    /// The restore target cannot be used.
    #[error("restore target {path}: {reason}", path = esc(.path))]
    Target { path: PathBuf, reason: String },

    /// Writing a restored file or directory failed.
    #[error("restoring into {path} failed: {source}{}", disk_hint(source), path = esc(.path))]
    TargetWrite { path: PathBuf, source: io::Error },

    /// The restore target holds entries and overwriting was not asked for.
    #[error("restore target {path}: is not empty", path = esc(.path))]
    TargetNotEmpty { path: PathBuf },

    /// `repair` found nothing wsnap wrote (no catalog, no file with a wsnap
    /// pack or journal header): rebuilding would create a store there.
    #[error(
        "{path} exists but is not a wsnap store (it has no catalog.sqlite and no file in packs/ or journal/ that wsnap wrote, so repair would create a store here); refusing to touch it. Pick an empty or absent directory for a new store",
        path = esc(.path)
    )]
    UnrecognisedStore { path: PathBuf },

    /// The workspace root cannot be opened.
    #[error("invalid workspace root: {path}: {source}", path = esc(.path))]
    WorkspaceRoot { path: PathBuf, source: io::Error },

    /// The off-site copy (`crate::remote`).
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// FUSE cannot be used on this machine (`mount`); says what to install.
    #[error("FUSE is not available: {reason}")]
    FuseUnavailable { reason: String },

    /// A mount point that cannot be used (missing, not a directory, busy),
    /// or a path that is not a wsnap mount (`umount`).
    #[error("mount point {path}: {reason}", path = esc(.path))]
    Mountpoint { path: PathBuf, reason: String },
}

/// Who holds a lock a run could not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockHolder {
    /// A wsnap run, as it describes itself in the lock file (pid, command,
    /// start time).
    Run(String),
    /// Not a wsnap run: the lock file holds no holder record (e.g. a
    /// `flock` taken to copy the store).
    Unknown,
    /// Garbage collection, deleting pack files (the readers' lock).
    Gc,
}

fn locked(path: &std::path::Path, holder: &LockHolder) -> String {
    let path = esc(path);
    match holder {
        LockHolder::Run(note) => format!("store {path} is locked by another wsnap run ({note})"),
        LockHolder::Unknown => format!(
            "store {path} is locked by another process that is not a wsnap run (no holder \
             record), e.g. `flock` while the store is copied"
        ),
        LockHolder::Gc => format!("store {path} is busy: garbage collection is deleting packs"),
    }
}

fn waited_for(waited: Duration) -> String {
    if waited.is_zero() {
        String::new()
    } else {
        format!("; waited {}", humantime::format_duration(waited))
    }
}

/// A path as printed in messages: escaped (see [`crate::escape`]).
fn esc(p: &std::path::Path) -> String {
    escape::path(p)
}

fn catalog_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase) => {
            " (the catalog is damaged: `wsnap repair` rebuilds it from the packs)"
        }
        _ => "",
    }
}

fn disk_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => " (disk full: free space and run again)",
        Some(libc::EROFS) => " (read-only file system)",
        _ => "",
    }
}

impl Error {
    /// Writing the store failed because its file system is full (or the
    /// quota is reached): freeing space first may let the same write fit.
    pub(crate) fn is_disk_full(&self) -> bool {
        matches!(self, Error::StoreWrite { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)))
    }

    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. }
            | Error::NotFound(_)
            | Error::Target { .. }
            | Error::TargetNotEmpty { .. }
            | Error::WorkspaceRoot { .. }
            | Error::Mountpoint { .. } => ErrorKind::Input,
            Error::NotAStore { .. }
            | Error::OldBackups { .. }
            | Error::NoStore { .. }
            | Error::CatalogDamaged { .. }
            | Error::UnsupportedFormat { .. }
            | Error::UnrecognisedStore { .. }
            | Error::StoreRead { .. }
            | Error::UnsafeFileSystem { .. }
            | Error::Corrupt { .. }
            | Error::Catalog { .. }
            | Error::FuseUnavailable { .. } => ErrorKind::Store,
            Error::StoreWrite { .. } | Error::TargetWrite { .. } => ErrorKind::Write,
            Error::Locked { .. } => ErrorKind::Locked,
            Error::Remote(r) => match r.class() {
                RemoteClass::Content => ErrorKind::Store,
                RemoteClass::Unavailable => ErrorKind::Unavailable,
                RemoteClass::Input => ErrorKind::Input,
            },
        }
    }

    /// The message without the advice to run `check` (for `check` itself).
    pub fn detail(&self) -> String {
        match self {
            Error::Corrupt { at, problem } => damage(at, problem),
            e => e.to_string(),
        }
    }

    /// This error found inside `object`: damage gets it as its outermost
    /// place, an unsupported format gets it as its location if it had none;
    /// any other error is returned as it is.
    pub fn within(mut self, object: Object) -> Error {
        match &mut self {
            Error::Corrupt { at, .. } => at.insert(0, object),
            Error::UnsupportedFormat { location, .. } if *location == Location::Unknown => {
                *location = object.location();
            }
            _ => {}
        }
        self
    }

    /// Damage of a known kind, where the caller adds the place ([`Error::within`]).
    pub(crate) fn corrupt(problem: Problem) -> Error {
        Error::Corrupt {
            at: Vec::new(),
            problem,
        }
    }

    /// Damage with free text (a decoder's or the catalog's own check).
    pub(crate) fn corrupt_as(detail: impl Into<String>) -> Error {
        Error::corrupt(Problem::Invalid(detail.into()))
    }

    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Error {
        Error::Invalid {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn store_write(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::StoreWrite {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn store_read(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::StoreRead {
            path: path.into(),
            source,
        }
    }
}

/// The small errors of the types below this module, as `Error`s.
impl From<id::BadHex> for Error {
    fn from(e: id::BadHex) -> Error {
        Error::invalid("id", e.to_string())
    }
}

/// An id column of the catalog that is not 32 bytes.
impl From<id::BadLength> for Error {
    fn from(e: id::BadLength) -> Error {
        Error::corrupt_as(format!("id of {} bytes, expected 32", e.len)).within(Object::Catalog)
    }
}

impl From<id::HashMismatch> for Error {
    fn from(e: id::HashMismatch) -> Error {
        Error::corrupt(Problem::HashMismatch {
            expected: e.expected,
            found: e.found,
        })
        .within(Object::Blob(e.expected))
    }
}

impl From<BadWorkspace> for Error {
    fn from(e: BadWorkspace) -> Error {
        Error::invalid("workspace", e.to_string())
    }
}
