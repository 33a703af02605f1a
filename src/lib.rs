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

mod codec;
mod durable;
#[doc(hidden)]
pub mod failpoint;
pub mod lock;

pub mod catalog;
pub mod check;
pub mod chunker;
pub mod chunklist;
pub mod damaged;
pub mod diff;
pub mod dirfd;
pub mod error;
pub mod escape;
pub mod fscheck;
pub mod gc;
pub mod heal;
pub mod human;
pub mod id;
pub mod import;
pub mod journal;
pub mod layout;
pub mod model;
pub mod pack;
pub mod progress;
pub mod repair;
pub mod restore;
pub mod retention;
pub mod select;
pub mod snapshot;
pub mod stats;
pub mod status;
pub mod store;
pub mod timespec;
pub mod tree;
pub mod walk;
pub mod workspace;

pub use error::{Error, ErrorKind, Result};
pub use id::{ChunkId, Id, ListId, PackId, SnapshotId, TreeId};
pub use model::{snapshot_id, RunRow, Skip, SnapshotRow, SnapshotStats, StoreParams};
pub use store::{InitOutcome, Store};
pub use timespec::TimeSpec;
pub use workspace::WorkspaceName;
