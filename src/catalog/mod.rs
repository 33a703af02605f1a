//! The SQLite catalog: the only module that speaks SQL.
//!
//! Invariants it keeps:
//! - a `blobs` row exists only once the pack holding the blob is durable;
//! - a tree's `blobs` row is inserted in the same transaction as all its
//!   `tree_refs`, and every reference must already be indexed;
//! - a snapshot row is one transaction: it exists whole or not at all.
//!
//! The file is created under a temporary name and renamed into place once its
//! schema is complete, so a crash during `init` never leaves a half-made
//! catalog. WAL mode lets read-only commands run beside a writer.
//!
//! This file opens, creates and upgrades the catalog and shares connections
//! ([`CatalogPool`], [`PinnedCatalog`]); the queries live with the table
//! they read or write: `blobs` (blob and pack index, tree references),
//! `snapshots` (and `snapshot_ranges`: lookups that must not read every
//! snapshot), `workspaces`, `listing` (what `list`'s filters select),
//! `runs`, `journals` (which journal file holds
//! which snapshot), `damage` (damaged marks), `integrity` (check-only
//! queries), `gc` and `rebuild` (the transactions of gc and `repair`;
//! `gc_preview`, a dry run of gc that writes nothing),
//! `schema` (DDL and migrations), `pool` (connections shared by threads).
//! SQLite row ids are not part of the
//! library's API: every field and method that carries one is `pub(crate)`.

mod blobs;
mod damage;
mod gc;
mod gc_preview;
mod image;
mod integrity;
mod journals;
mod listing;
mod pool;
mod rebuild;
mod runs;
mod schema;
mod snapshot_ranges;
mod snapshots;

/// Record [`FORMAT_VERSION`] in `meta` and `PRAGMA user_version`: the last
/// step of every upgrade, inside its transaction.
fn mark_current_version(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'format_version'",
        [FORMAT_VERSION.to_string()],
    )?;
    tx.pragma_update(None, "user_version", FORMAT_VERSION)
}

#[cfg(test)]
mod testing;
mod workspaces;

pub use blobs::{BlobLocation, BlobSize, PendingTree, TreeRefs};
pub(crate) use gc::{GcStep, GcTx, PackUsage};
pub(crate) use gc_preview::GcPreview;
pub use listing::SnapshotFilter;
pub use pool::{CatalogPool, PinnedCatalog};
pub(crate) use rebuild::ancestors;
pub use runs::full_run_key;
pub use schema::FORMAT_VERSION;
pub use snapshots::SkipList;
pub(crate) use snapshots::SnapshotRoot;
pub use workspaces::WorkspaceSummary;

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::chunker::{ChunkerParams, LargeFileTiers};
use crate::durable;
use crate::error::{Error, Format, Location, Object, Result};
use crate::model::StoreParams;

/// An open catalog connection.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
    params: StoreParams,
    version: i64,
    /// The writers' lock, shared, held by a connection that reads a
    /// read-only store with SQLite's locking off (see
    /// [`open_read_only_store`]).
    _writers: Option<crate::lock::WritersExcluded>,
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |source| {
        // A full disk while committing is a store write failure, not corruption.
        if let rusqlite::Error::SqliteFailure(e, _) = &source {
            if e.code == rusqlite::ErrorCode::DiskFull {
                return Error::store_write(path, std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        Error::Catalog {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Open the catalog of a store this process cannot write (a read-only
/// mount: a file system snapshot, a read-only copy or bind mount).
///
/// SQLite reads a WAL database only if it can use (or create) the
/// `-wal` and `-shm` files beside it, which a read-only directory forbids
/// when they are absent — and they are absent in every store copied while
/// no wsnap process ran (the last connection folds the WAL in and deletes
/// both). So:
///
/// - no WAL content (`-wal` absent or empty: everything committed is in
///   `catalog.sqlite` itself): open with `immutable=1`, which reads the
///   file without locks or `-shm`. A read-only mount may still show a live
///   store (a read-only bind mount) whose writer would change the file
///   under such a connection, so this holds the writers' lock shared for
///   the connection's life (on a frozen copy nobody else takes it; beside a
///   live store, writers wait for it as for any run);
/// - otherwise (a copy taken while a run or a reader was active, with its
///   `-wal` and `-shm`): SQLite's own read-only WAL support reads the WAL
///   through the existing `-shm`. If that fails too the store must be
///   copied again after a run (or mounted writable): the error says so.
fn open_read_only_store(
    path: &Path,
    writers: &mut Option<crate::lock::WritersExcluded>,
) -> Result<Connection> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let wal = dir.join("catalog.sqlite-wal");
    let wal_empty = || match fs::metadata(&wal) {
        Ok(m) => m.len() == 0,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    if wal_empty() {
        if let Some(guard) = crate::lock::writers_shared_now(&dir.join("lock")) {
            // Checked again under the lock: a writer that ran meanwhile may
            // have left WAL content.
            if wal_empty() {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                let conn = Connection::open_with_flags(
                    &uri,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_URI
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sql_err(path))?;
                *writers = Some(guard);
                return Ok(conn);
            }
        }
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err(path))?;
    match conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(())) {
        Ok(()) => Ok(conn),
        Err(e) => Err(Error::store_read(
            path,
            std::io::Error::other(format!(
                "{e}: the store is read-only here and its catalog has a write-ahead log \
                 (catalog.sqlite-wal) that SQLite cannot read without a usable catalog.sqlite-shm \
                 or while a writer uses it; copy the store again after a snapshot run has \
                 finished (e.g. under `flock STORE/lock`), or mount it writable"
            )),
        )),
    }
}

/// `path` percent-encoded for an SQLite URI filename.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How long a statement waits for a lock another connection holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `meta` value of the catalog that is missing or does not parse.
fn bad_meta(key: &str, detail: &str) -> Error {
    Error::corrupt_as(detail).within(Object::CatalogMeta(key.to_string()))
}

impl Catalog {
    /// Create a new catalog file at `path` (must not exist).
    pub fn create(path: &Path, params: &StoreParams, now_ns: i64) -> Result<()> {
        let dir = path.parent().expect("catalog path has a parent");
        let tmp = dir.join("catalog.sqlite.tmp");
        let _ = fs::remove_file(&tmp);
        // Created empty with 0600 first so SQLite (and its -wal/-shm, which
        // copy the database's mode) never exist with wider permissions.
        drop(durable::create_private_file(&tmp).map_err(|e| Error::store_write(&tmp, e))?);
        {
            let mut conn = Connection::open(&tmp).map_err(sql_err(&tmp))?;
            conn.pragma_update(None, "journal_mode", "DELETE")
                .map_err(sql_err(&tmp))?;
            let tx = conn.transaction().map_err(sql_err(&tmp))?;
            tx.execute_batch(schema::SCHEMA_V1).map_err(sql_err(&tmp))?;
            tx.execute_batch(schema::MIGRATE_V1_TO_V2)
                .map_err(sql_err(&tmp))?;
            tx.execute_batch(schema::INDEXES_V2)
                .map_err(sql_err(&tmp))?;
            let c = params.chunker;
            for (k, v) in [
                ("format_version", FORMAT_VERSION.to_string()),
                ("chunker", "fastcdc-v2020".to_string()),
                ("chunker_min_bytes", c.min_bytes.to_string()),
                ("chunker_avg_bytes", c.avg_bytes.to_string()),
                ("chunker_max_bytes", c.max_bytes.to_string()),
                ("zstd_level", params.zstd_level.to_string()),
                ("pack_target_bytes", params.pack_target_bytes.to_string()),
                ("created_ns", now_ns.to_string()),
            ]
            .into_iter()
            .chain(
                // No key at all for a store without tiers: it reads as every
                // store made before version 4 does.
                (!params.large_files.is_empty())
                    .then(|| ("chunker_tiers", params.large_files.encode())),
            ) {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )
                .map_err(sql_err(&tmp))?;
            }
            tx.pragma_update(None, "application_id", schema::APPLICATION_ID)
                .map_err(sql_err(&tmp))?;
            tx.pragma_update(None, "user_version", FORMAT_VERSION)
                .map_err(sql_err(&tmp))?;
            tx.commit().map_err(sql_err(&tmp))?;
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(sql_err(&tmp))?;
        }
        let file = fs::File::open(&tmp).map_err(|e| Error::store_write(&tmp, e))?;
        // Crash order: complete file fsynced → renamed → dir fsynced. Before the
        // rename there is no catalog (the store does not exist yet).
        durable::commit_file(&file, &tmp, path).map_err(|e| Error::store_write(path, e))
    }

    /// Open an existing catalog; `writable` for the single writer.
    pub fn open(path: &Path, writable: bool) -> Result<Catalog> {
        let flags = if writable {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let store_dir = path.parent().unwrap_or(Path::new("."));
        let mut writers = None;
        let conn = if !writable && crate::fscheck::is_read_only(store_dir) {
            open_read_only_store(path, &mut writers)?
        } else {
            Connection::open_with_flags(path, flags).map_err(sql_err(path))?
        };
        Catalog::from_conn(conn, path, writable, writers)
    }

    /// Open a copy of a catalog that nothing writes (an old catalog kept
    /// under `damaged/`) as SQLite's `immutable`: no lock, no `-wal` or
    /// `-shm` file is read or created beside it.
    pub fn open_immutable(path: &Path) -> Result<Catalog> {
        let uri = format!("file:{}?immutable=1", uri_path(path));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&uri, flags).map_err(sql_err(path))?;
        Catalog::from_conn(conn, path, false, None)
    }

    fn from_conn(
        conn: Connection,
        path: &Path,
        writable: bool,
        writers: Option<crate::lock::WritersExcluded>,
    ) -> Result<Catalog> {
        let store_dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let not_store = |reason: String| {
            if crate::layout::holds_store_data(&store_dir) {
                Error::CatalogDamaged {
                    path: store_dir.clone(),
                    reason,
                }
            } else {
                Error::NotAStore {
                    path: store_dir.clone(),
                    reason,
                }
            }
        };
        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| not_store(format!("catalog.sqlite unreadable: {e}")))?;
        if app_id != schema::APPLICATION_ID {
            return Err(not_store("catalog.sqlite is not a wsnap catalog".into()));
        }
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err(path))?;
        if writable {
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(sql_err(path))?;
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(sql_err(path))?;
            conn.pragma_update(None, "cache_size", -32768)
                .map_err(sql_err(path))?;
        }
        let mut cat = Catalog {
            conn,
            path: path.to_path_buf(),
            params: StoreParams::DEFAULT,
            version: FORMAT_VERSION,
            _writers: writers,
        };
        let version: i64 = cat
            .meta_value("format_version")?
            .parse()
            .map_err(|_| bad_meta("format_version", "not a number"))?;
        if !(schema::OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedFormat {
                what: Format::Catalog,
                found: version,
                supported: schema::OLDEST_READABLE..=FORMAT_VERSION,
                location: Location::File(path.to_path_buf()),
            });
        }
        cat.version = version;
        let num = |k: &str| -> Result<u64> {
            cat.meta_value(k)?
                .parse()
                .map_err(|_| bad_meta(k, "not a number"))
        };
        let chunker = ChunkerParams {
            min_bytes: num("chunker_min_bytes")? as u32,
            avg_bytes: num("chunker_avg_bytes")? as u32,
            max_bytes: num("chunker_max_bytes")? as u32,
        };
        chunker
            .validate()
            .map_err(|_| Error::corrupt_as("invalid chunker parameters").within(Object::Catalog))?;
        let large_files = match cat.meta_optional("chunker_tiers")? {
            None => LargeFileTiers::NONE,
            Some(text) => LargeFileTiers::decode(&text, &chunker)
                .map_err(|e| bad_meta("chunker_tiers", &e.to_string()))?,
        };
        let params = StoreParams {
            chunker,
            large_files,
            zstd_level: num("zstd_level")? as i32,
            pack_target_bytes: num("pack_target_bytes")?,
        };
        cat.params = params;
        Ok(cat)
    }

    fn meta_value(&self, key: &str) -> Result<String> {
        self.meta_optional(key)?
            .ok_or_else(|| bad_meta(key, "missing"))
    }

    fn meta_optional(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(sql_err(&self.path))
    }

    pub fn params(&self) -> StoreParams {
        self.params
    }

    /// The catalog's format version (older ones are upgraded by the next writer).
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Upgrade a version-1 catalog to the current version. The caller holds
    /// the writer lock and has made `journal` (holding every snapshot of the
    /// catalog) durable first.
    pub fn migrate_v1(&mut self, journal: &str) -> Result<()> {
        if self.version != 1 {
            return Ok(());
        }
        let path = self.path.clone();
        let e = sql_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        tx.execute_batch(schema::MIGRATE_V1_TO_V2).map_err(&e)?;
        tx.execute_batch(schema::INDEXES_V2).map_err(&e)?;
        tx.execute("UPDATE snapshots SET journal = ?1", [journal])
            .map_err(&e)?;
        mark_current_version(&tx).map_err(&e)?;
        tx.commit().map_err(&e)?;
        self.version = FORMAT_VERSION;
        Ok(())
    }

    /// Mark a version-2 or -3 catalog version 4 (writer lock held): the
    /// store may now get indexed trees (`tree::index`), which builds reading
    /// up to version 2 must not meet. No data changes, and no chunk tiers
    /// are recorded: the store keeps its chunker as it was.
    pub fn upgrade_v2(&mut self) -> Result<()> {
        if !(2..FORMAT_VERSION).contains(&self.version) {
            return Ok(());
        }
        let path = self.path.clone();
        let e = sql_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        mark_current_version(&tx).map_err(&e)?;
        tx.commit().map_err(&e)?;
        self.version = FORMAT_VERSION;
        Ok(())
    }

    /// Create the indexes added within version 2 (`schema::INDEXES_V2`) a catalog made by an
    /// older build lacks (writer lock held; a few seconds once, at
    /// millions of snapshots).
    pub fn ensure_indexes(&mut self) -> Result<()> {
        if self.version < 2 {
            return Ok(());
        }
        self.conn
            .execute_batch(schema::INDEXES_V2)
            .map_err(sql_err(&self.path))
    }

    /// Start a read transaction and take its view now: later reads on this
    /// connection see the catalog as it is at this call, whatever writers
    /// commit meanwhile (WAL). Ends when the connection is dropped.
    pub fn pin_view(&self) -> Result<()> {
        let e = sql_err(&self.path);
        self.conn.execute_batch("BEGIN DEFERRED").map_err(&e)?;
        // The read transaction (and its snapshot of the WAL) starts at the
        // first read.
        self.conn
            .query_row("SELECT COUNT(*) FROM meta", [], |_| Ok(()))
            .map_err(&e)
    }

    /// End the read transaction [`Catalog::pin_view`] started (if any):
    /// later reads see the latest commits again.
    pub fn unpin_view(&self) -> Result<()> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn
            .execute_batch("COMMIT")
            .map_err(sql_err(&self.path))
    }

    /// SQLite's `data_version`: it changes when another connection commits
    /// (a cheap "has anything changed?" for a long-running reader, the
    /// mount, without reading any table).
    pub fn data_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(sql_err(&self.path))
    }

    /// Copy the WAL into the database file and truncate it, waiting (up to
    /// the busy timeout) for readers of older states to finish (`repair`,
    /// which must fold the WAL in before replacing the file).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql_err(&self.path))
    }

    /// Stop SQLite's automatic checkpoint at each commit of this
    /// connection: a run's writer, whose checkpoints a thread beside it
    /// does ([`Catalog::checkpoint_passive`], see `snapshot/writer.rs`).
    pub fn without_auto_checkpoints(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))
            .map_err(sql_err(&self.path))
    }

    /// Copy into the database the WAL frames no reader needs, beside the
    /// writer (a PASSIVE checkpoint: it waits for no one and blocks no
    /// one). What a writer's commit would do itself with its automatic
    /// checkpoint on.
    pub fn checkpoint_passive(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(sql_err(&self.path))
    }

    /// The catalog file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The end-of-run checkpoint: never waits for readers. A TRUNCATE
    /// checkpoint with no busy timeout copies every frame no reader still
    /// needs and, if no reader is in the WAL, truncates it to zero bytes;
    /// when a reader holds an older view (a restore running for hours, a
    /// `status`) it stops at once instead of waiting out the 10 s busy
    /// timeout on every tick. The frames that reader pins are copied by the
    /// first run after it ends, and SQLite rewinds the WAL from its start
    /// whenever it is fully copied, so the file grows only by what runs
    /// write while one reader stays pinned. Returns whether it was complete.
    pub fn checkpoint_without_waiting(&self) -> Result<bool> {
        let e = sql_err(&self.path);
        self.conn
            .busy_timeout(std::time::Duration::ZERO)
            .map_err(&e)?;
        let r = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            });
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(&e)?;
        match r {
            Ok(busy) => Ok(busy == 0),
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                Ok(false)
            }
            Err(x) => Err(e(x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{commit, new_catalog, ws};
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_created_catalog_opens_with_its_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        let params = StoreParams {
            zstd_level: 7,
            pack_target_bytes: 1 << 20,
            ..StoreParams::DEFAULT
        };
        Catalog::create(&path, &params, 1).unwrap();
        assert!(!dir.path().join("catalog.sqlite.tmp").exists());
        for cat in [
            Catalog::open(&path, true).unwrap(),
            Catalog::open(&path, false).unwrap(),
            Catalog::open_immutable(&path).unwrap(),
        ] {
            assert_eq!(cat.params(), params);
            assert_eq!(cat.version(), FORMAT_VERSION);
        }
    }

    #[test]
    fn a_file_that_is_no_catalog_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.sqlite");
        fs::write(&path, b"not a database, not even close").unwrap();
        let err = Catalog::open(&path, false).err().expect("refused");
        assert_eq!(err.kind(), ErrorKind::Store, "{err}");
    }

    #[test]
    fn a_pinned_view_does_not_see_later_commits() {
        let (dir, mut cat) = new_catalog();
        let path = dir.path().join("catalog.sqlite");
        let a = ws("alice", "thesis");
        let first = commit(&mut cat, &a, 10, 10, &[], &[]);
        let pinned = PinnedCatalog::open(&path).unwrap();
        let pinned_conn = Catalog::open(&path, false).unwrap();
        pinned_conn.pin_view().unwrap();
        let pool = CatalogPool::new(&path);
        pool.with(|c| c.snapshot_count()).unwrap();

        let second = commit(&mut cat, &a, 20, 20, &[], &[]);
        let only_first = vec![first.clone()];
        assert_eq!(pinned.with(|c| c.snapshots(Some(&a))).unwrap(), only_first);
        assert_eq!(pinned_conn.snapshots(Some(&a)).unwrap(), only_first);
        // The pool's idle connection holds no view: it sees the commit.
        assert_eq!(
            pool.with(|c| c.snapshots(Some(&a))).unwrap(),
            [first, second]
        );
    }
}
