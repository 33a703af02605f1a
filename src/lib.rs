//! wsnap: a content-addressed, deduplicating snapshot store for research
//! workspaces (`<root>/<user>/<project>/`).
//!
//! Files are cut into content-defined chunks (FastCDC), named by BLAKE3,
//! compressed with zstd and appended to immutable pack files; each directory
//! becomes a canonically encoded tree blob, so an unchanged workspace adds
//! nothing. A SQLite catalog indexes blobs, trees' references and snapshots.
//! See `docs/FORMAT.md` for the bytes on disk and `docs/DESIGN.md` for the
//! data flow and crash order.
//!
//! ```no_run
//! use std::path::Path;
//! use wsnap::{restore, select, snapshot, Store, TimeSpec};
//!
//! # fn main() -> wsnap::Result<()> {
//! let store_dir = Path::new("/app/backups/snapshots");
//! Store::init(store_dir)?;
//! let store = Store::open(store_dir)?;
//! let report = snapshot::run(&store, &snapshot::SnapshotOptions {
//!     root: "/app/data/users".into(),
//!     workspaces: vec![],
//!     excludes: vec![],
//!     time_ns: None,
//!     lock_wait: std::time::Duration::ZERO,
//!     reread: false,
//! })?;
//! assert!(report.all_ok());
//!
//! let ws = wsnap::WorkspaceName::new(b"alice", b"thesis")?;
//! let snap = select::select(&store.catalog_for_reading()?, &ws, &select::Selector::Time(TimeSpec::Latest))?;
//! restore::restore(&store, &snap, &restore::RestoreOptions {
//!     target: "/tmp/thesis".into(),
//!     path: None,
//!     overwrite: false,
//! })?;
//! # Ok(()) }
//! ```

// The building blocks: private to the library.
mod codec;
mod damaged;
mod durable;
mod error;
mod fscheck;
mod heal;
mod id;
mod layout;
mod lock;
mod model;
mod old_backup;
mod reader;
mod store;
mod walk;
mod workspace;

// The operations, one module each: what the `wsnap` binary calls.
pub mod browse;
pub mod check;
pub mod diff;
pub mod gc;
pub mod import;
pub mod mount;
pub mod remote;
pub mod repair;
pub mod restore;
pub mod rewrite;
pub mod select;
pub mod serve;
pub mod snapshot;
pub mod stats;
pub mod status;

// Small vocabularies the operations and their callers share.
pub mod escape;
pub mod human;
pub mod progress;
pub mod retention;
pub mod timespec;

// Formats and storage internals, public only for the fuzz targets, the
// benches and the integration tests (decoders of bytes from disk, a
// catalog to damage on purpose, the failpoint list). Not an API.
#[doc(hidden)]
pub mod catalog;
#[doc(hidden)]
pub mod chunker;
#[doc(hidden)]
pub mod chunklist;
#[doc(hidden)]
pub mod dirfd;
#[doc(hidden)]
pub mod failpoint;
#[doc(hidden)]
pub mod journal;
#[doc(hidden)]
pub mod pack;
#[doc(hidden)]
pub mod tree;

pub use catalog::PinnedCatalog;
pub use dirfd::raise_open_file_limit;
pub use error::{Error, ErrorKind, Format, Location, LockHolder, Missing, Object, Problem, Result};
pub use fscheck::require_local;
pub use id::{ChunkId, Id, ListId, PackId, SnapshotId, TreeId};
pub use lock::{ReaderLock, WriterLock};
pub use model::{snapshot_id, RunRow, Skip, SnapshotRow, SnapshotStats, StoreParams};
pub use store::{InitOutcome, Store};
pub use timespec::TimeSpec;
pub use tree::EntryKind;
pub use workspace::WorkspaceName;
