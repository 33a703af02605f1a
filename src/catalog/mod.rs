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

mod gc;
mod query;
mod rebuild;
mod schema;

pub use gc::{DeadBlob, GcTx, LiveBlob, PackUsage};
pub use query::{BlobSize, SnapshotRoot, WorkspaceSummary};
pub use rebuild::{ancestors, Rebuild, RefBlob};

pub use schema::FORMAT_VERSION;

use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::chunker::ChunkerParams;
use crate::durable;
use crate::error::{Error, Result};
use crate::id::{Id, PackId, SnapshotId, TreeId};
use crate::pack::{BlobKind, SealedPack};
use crate::workspace::WorkspaceName;

/// Per-store parameters, fixed at `init`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreParams {
    pub chunker: ChunkerParams,
    pub zstd_level: i32,
    pub pack_target_bytes: u64,
}

impl StoreParams {
    pub const DEFAULT: StoreParams = StoreParams {
        chunker: ChunkerParams::DEFAULT,
        // Level 1: on chunks of 8–128 KiB it keeps all but ~0.5 % of level
        // 3's ratio for ~30 % less CPU per new byte (docs/BENCHMARKS.md).
        zstd_level: 1,
        pack_target_bytes: 32 * 1024 * 1024,
    };
}

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub kind: BlobKind,
    pub pack: PackId,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
}

/// Counters kept per snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub size_bytes: u64,
    pub bytes_added: u64,
    pub bytes_read: u64,
    pub skipped: u64,
    pub special: u64,
    pub excluded: u64,
}

/// A committed snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRow {
    pub id: SnapshotId,
    pub workspace: WorkspaceName,
    pub time_ns: i64,
    pub started_ns: i64,
    pub finished_ns: i64,
    pub root: TreeId,
    pub stats: SnapshotStats,
    /// `repair` found blobs of this snapshot missing: it restores only in part.
    pub damaged: bool,
}

/// A blob with references (a tree or a chunk list) written to a sealed
/// pack, waiting to be indexed together with its references at snapshot
/// commit.
#[derive(Clone, Debug)]
pub struct PendingTree {
    pub kind: BlobKind,
    pub id: Id,
    pub pack: PackId,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub refs: Vec<Id>,
}

/// One finished `snapshot` run, for monitoring.
#[derive(Clone, Debug, Default)]
pub struct RunRow {
    pub started_ns: i64,
    pub finished_ns: i64,
    pub workspaces_ok: u64,
    pub workspaces_failed: u64,
    pub entries_skipped: u64,
    /// What failed the run besides its workspaces (an empty root, many
    /// workspaces gone at once); `None` otherwise.
    pub error: Option<String>,
    /// The run covered every workspace under the root (not a run of named
    /// workspaces, not an import): which root, as [`full_run_key`] names
    /// it. Not a column: the newest such run's id is the value of that
    /// `meta` key (see docs/FORMAT.md).
    pub covered_root: Option<String>,
}

/// The `meta` key holding the id of the newest run that covered the whole
/// of `root`: `last_full_run ` and the root's canonical path, escaped (one
/// store may take several roots, each with its own full runs).
pub fn full_run_key(root: &Path) -> String {
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    format!("last_full_run {}", crate::escape::path(&root))
}

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
            ] {
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
        use std::os::unix::ffi::OsStrExt;
        let mut uri = String::from("file:");
        for &b in path.as_os_str().as_bytes() {
            if b.is_ascii_alphanumeric() || b"/._-".contains(&b) {
                uri.push(b as char);
            } else {
                uri.push_str(&format!("%{b:02X}"));
            }
        }
        uri.push_str("?immutable=1");
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
            .map_err(|_| Error::corrupt("catalog meta format_version is not a number"))?;
        if !(schema::OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                path: store_dir,
                found: version,
                supported: FORMAT_VERSION,
                hint: if version > FORMAT_VERSION {
                    "Upgrade wsnap to read it"
                } else {
                    "No migration exists for it"
                },
            });
        }
        cat.version = version;
        let num = |k: &str| -> Result<u64> {
            cat.meta_value(k)?
                .parse()
                .map_err(|_| Error::corrupt(format!("catalog meta {k} is not a number")))
        };
        let chunker = ChunkerParams {
            min_bytes: num("chunker_min_bytes")? as u32,
            avg_bytes: num("chunker_avg_bytes")? as u32,
            max_bytes: num("chunker_max_bytes")? as u32,
        };
        chunker
            .validate()
            .map_err(|_| Error::corrupt("catalog chunker parameters are invalid"))?;
        let params = StoreParams {
            chunker,
            zstd_level: num("zstd_level")? as i32,
            pack_target_bytes: num("pack_target_bytes")?,
        };
        cat.params = params;
        Ok(cat)
    }

    fn meta_value(&self, key: &str) -> Result<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(sql_err(&self.path))?
            .ok_or_else(|| Error::corrupt(format!("catalog meta has no {key}")))
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
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'format_version'",
            [FORMAT_VERSION.to_string()],
        )
        .map_err(&e)?;
        tx.pragma_update(None, "user_version", FORMAT_VERSION)
            .map_err(&e)?;
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

    /// Journal files that may still hold records of snapshots a committed
    /// gc deleted (see [`GcTx::set_pending_journals`]).
    pub fn pending_journals(&self) -> Result<Vec<String>> {
        pending_journals_in(&self.conn).map_err(sql_err(&self.path))
    }

    /// The pending journals were rewritten.
    pub fn clear_pending_journals(&self) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = 'journals_pending'", [])
            .map_err(sql_err(&self.path))?;
        Ok(())
    }

    /// Whether the catalog has the snapshot.
    pub fn has_snapshot(&self, id: &SnapshotId) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM snapshots WHERE snapshot_hash = ?1")
            .map_err(sql_err(&self.path))?;
        stmt.exists([&id.0 .0[..]]).map_err(sql_err(&self.path))
    }

    /// Every snapshot's id and the journal file its record is in, in id
    /// order, one row at a time (no list of every snapshot in memory).
    pub fn for_each_snapshot_journal(
        &self,
        mut f: impl FnMut(SnapshotId, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        if self.version < 2 {
            return Ok(());
        }
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare("SELECT snapshot_hash, journal FROM snapshots ORDER BY snapshot_hash")
            .map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let h: &[u8] = r
                .get_ref(0)
                .map_err(&e)?
                .as_blob()
                .map_err(|x| e(x.into()))?;
            let j: Option<&str> = r
                .get_ref(1)
                .map_err(&e)?
                .as_str_or_null()
                .map_err(|x| e(x.into()))?;
            f(SnapshotId(Id::from_slice(h)?), j)?;
        }
        Ok(())
    }

    /// Start a read transaction and take its view now: later reads on this
    /// connection see the catalog as it is at this call, whatever writers
    /// commit meanwhile (WAL). Ends when the connection is dropped.
    pub fn pin_view(&self) -> Result<()> {
        let e = sql_err(&self.path);
        self.conn.execute_batch("BEGIN DEFERRED").map_err(&e)?;
        self.conn
            .query_row("SELECT COUNT(*) FROM meta", [], |_| Ok(()))
            .map_err(&e)
    }

    /// How many snapshots the catalog lists.
    pub fn snapshot_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM snapshots", [], |r| r.get(0))
            .map_err(sql_err(&self.path))?;
        Ok(n.max(0) as u64)
    }

    /// Record what `check` found damaged or missing: `blobs` leave the index
    /// (with their `tree_refs` rows), so the next snapshot that holds them
    /// stores them again instead of reusing a bad copy; `snapshots` (those
    /// reaching any of `blobs`) are marked damaged, so none is a stat-cache
    /// parent. A tree that is some snapshot's root stays indexed (the row
    /// needs it); its snapshots are marked. One transaction; returns how
    /// many blobs left the index.
    pub fn record_damage(&mut self, blobs: &[Id], snapshots: &[SnapshotId]) -> Result<u64> {
        let e = sql_err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        let mut dropped = 0;
        {
            let mut find = tx
                .prepare(
                    "SELECT b.id, EXISTS (SELECT 1 FROM snapshots s WHERE s.root_tree_id = b.id)
                     FROM blobs b WHERE b.hash = ?1",
                )
                .map_err(&e)?;
            let mut refs = tx
                .prepare("DELETE FROM tree_refs WHERE blob_id = ?1 OR tree_id = ?1")
                .map_err(&e)?;
            let mut del = tx.prepare("DELETE FROM blobs WHERE id = ?1").map_err(&e)?;
            for id in blobs {
                let row: Option<(i64, bool)> = find
                    .query_row([&id.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(&e)?;
                if let Some((row, false)) = row {
                    refs.execute([row]).map_err(&e)?;
                    del.execute([row]).map_err(&e)?;
                    dropped += 1;
                }
            }
            let mut mark = tx
                .prepare("UPDATE snapshots SET damaged = 1 WHERE snapshot_hash = ?1")
                .map_err(&e)?;
            for s in snapshots {
                mark.execute([&s.0 .0[..]]).map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)?;
        Ok(dropped)
    }

    /// Whether any snapshot is marked damaged (an index lookup).
    pub fn has_damaged(&self) -> Result<bool> {
        if self.version < 2 {
            return Ok(false);
        }
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM snapshots WHERE damaged = 1)",
                [],
                |r| r.get(0),
            )
            .map_err(sql_err(&self.path))
    }

    /// Snapshots `repair` marked damaged, oldest first.
    pub fn damaged_snapshots(&self) -> Result<Vec<SnapshotRow>> {
        if self.version < 2 {
            return Ok(Vec::new());
        }
        self.select_snapshots(
            "WHERE s.damaged = 1 ORDER BY w.user, w.project, s.time_ns, s.id",
            params![],
        )
    }

    /// Snapshot `id` is whole again: every blob it reaches is indexed, and
    /// `trees` (each with all its references) are linked in `tree_refs`.
    /// Clears its `damaged` flag, in one transaction.
    pub fn mark_whole(&mut self, id: &SnapshotId, trees: &[TreeRefs]) -> Result<()> {
        let e = sql_err(&self.path);
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(&e)?;
        complete_refs(&tx, trees, &path)?;
        tx.execute(
            "UPDATE snapshots SET damaged = 0 WHERE snapshot_hash = ?1",
            [&id.0 .0[..]],
        )
        .map_err(&e)?;
        tx.commit().map_err(&e)
    }

    /// Where blob `id` is stored, if it is indexed.
    pub fn blob_location(&self, id: &Id) -> Result<Option<BlobLocation>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT b.kind, p.pack_hash, b.offset, b.stored_len, b.raw_len
                 FROM blobs b JOIN packs p ON p.id = b.pack_id WHERE b.hash = ?1",
            )
            .map_err(sql_err(&self.path))?;
        let row = stmt
            .query_row([&id.0[..]], |r| {
                Ok((
                    r.get::<_, u8>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(sql_err(&self.path))?;
        let Some((kind, pack, offset, stored_len, raw_len)) = row else {
            return Ok(None);
        };
        let kind = BlobKind::from_code(kind)
            .ok_or_else(|| Error::corrupt(format!("catalog: blob {id} has kind {kind}")))?;
        Ok(Some(BlobLocation {
            kind,
            pack: PackId(Id::from_slice(&pack)?),
            offset: u64::try_from(offset).map_err(|_| Error::corrupt("negative offset"))?,
            stored_len: u32::try_from(stored_len).map_err(|_| Error::corrupt("bad stored_len"))?,
            raw_len: u32::try_from(raw_len).map_err(|_| Error::corrupt("bad raw_len"))?,
        }))
    }

    /// Whether blob `id` is indexed.
    pub fn has_blob(&self, id: &Id) -> Result<bool> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1")
            .map_err(sql_err(&self.path))?;
        stmt.exists([&id.0[..]]).map_err(sql_err(&self.path))
    }

    /// Index a sealed pack and its chunk blobs (trees are indexed later, with
    /// their references, by [`Catalog::commit_snapshot`]). One transaction.
    pub fn insert_pack(&mut self, pack: &SealedPack, now_ns: i64) -> Result<()> {
        let path = self.path.clone();
        let e = sql_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        let pack_row = upsert_pack(
            &tx,
            &pack.id,
            pack.size_bytes,
            pack.records.len() as u64,
            now_ns,
        )
        .map_err(&e)?;
        {
            let mut ins = tx.prepare_cached(INSERT_BLOB).map_err(&e)?;
            for (offset, h) in &pack.records {
                if h.kind.has_refs() {
                    continue; // indexed with its references at snapshot commit
                }
                ins.execute(params![
                    &h.id.0[..],
                    h.kind as u8,
                    pack_row,
                    i64_of(*offset),
                    h.stored_len,
                    h.raw_len
                ])
                .map_err(&e)?;
            }
        }
        tx.commit().map_err(&e)
    }

    /// Commit one snapshot: index its new trees with their references, then
    /// insert the snapshot row and its skip list. One transaction; fails
    /// (and commits nothing) if any reference is not indexed.
    pub fn commit_snapshot(
        &mut self,
        trees: &[PendingTree],
        row: &SnapshotRow,
        skips: &[(Vec<u8>, String)],
        journal: &str,
    ) -> Result<()> {
        self.commit_snapshots(trees, &[], &[(row.clone(), skips.to_vec())], journal, None)
    }

    /// Group commit: index `trees` with their references, insert every
    /// snapshot of `snaps` with its skip list, and the `run` row if given,
    /// in one transaction (one fsync). Fails, committing nothing, if any
    /// reference or root is not indexed.
    pub fn commit_snapshots(
        &mut self,
        trees: &[PendingTree],
        known_trees: &[TreeRefs],
        snaps: &[(SnapshotRow, SkipList)],
        journal: &str,
        run: Option<&RunRow>,
    ) -> Result<()> {
        if self.version != FORMAT_VERSION {
            return Err(Error::corrupt(format!(
                "catalog is version {}; take the writer lock to upgrade it first",
                self.version
            )));
        }
        let path = self.path.clone();
        let e = sql_err(&path);
        let tx = self.conn.transaction().map_err(&e)?;
        index_trees(&tx, trees, &path)?;
        complete_refs(&tx, known_trees, &path)?;
        for (row, skips) in snaps {
            let ws = ensure_workspace(&tx, &row.workspace).map_err(&e)?;
            let root: Option<i64> = tx
                .query_row(
                    "SELECT id FROM blobs WHERE hash = ?1",
                    [&row.root.0 .0[..]],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&e)?;
            let root = root
                .ok_or_else(|| Error::corrupt(format!("root tree {} is not stored", row.root)))?;
            insert_snapshot(&tx, row, ws, root, journal).map_err(&e)?;
            let snap = tx.last_insert_rowid();
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO snapshot_skips (snapshot_id, path, reason) VALUES (?1, ?2, ?3)",
                )
                .map_err(&e)?;
            for (p, reason) in skips {
                ins.execute(params![snap, p, reason]).map_err(&e)?;
            }
        }
        if let Some(run) = run {
            insert_run(&tx, run).map_err(&e)?;
        }
        tx.commit().map_err(&e)
    }

    /// Copy the WAL into the database file and truncate it, waiting (up to
    /// the busy timeout) for readers of older states to finish (`repair`,
    /// which must fold the WAL in before replacing the file).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(sql_err(&self.path))
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

    /// Record a finished run.
    pub fn insert_run(&mut self, run: &RunRow) -> Result<()> {
        insert_run(&self.conn, run).map_err(sql_err(&self.path))
    }

    /// Snapshots, oldest first; of one workspace or of all.
    pub fn snapshots(&self, workspace: Option<&WorkspaceName>) -> Result<Vec<SnapshotRow>> {
        match workspace {
            // Two statements, not one with `?1 IS NULL OR …`: SQLite cannot
            // use an index for that, and scanned every snapshot of the store
            // for each workspace (166 s at 2.9 M snapshots, per workspace).
            Some(w) => self.select_snapshots(
                "WHERE w.user = ?1 AND w.project = ?2 ORDER BY s.time_ns, s.id",
                params![w.user, w.project],
            ),
            None => self.select_snapshots("ORDER BY w.user, w.project, s.time_ns, s.id", params![]),
        }
    }

    /// The user/project pairs that have snapshots.
    pub fn workspaces(&self) -> Result<Vec<WorkspaceName>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT user, project FROM workspaces w
                 WHERE EXISTS (SELECT 1 FROM snapshots s WHERE s.workspace_id = w.id)
                 ORDER BY user, project",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(WorkspaceName {
                    user: r.get(0)?,
                    project: r.get(1)?,
                })
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
    }

    fn select_snapshots(
        &self,
        tail: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<SnapshotRow>> {
        let damaged = if self.version >= 2 { "s.damaged" } else { "0" };
        let sql = format!(
            "SELECT s.snapshot_hash, w.user, w.project, s.time_ns, s.started_ns, s.finished_ns,
                          b.hash, s.files, s.dirs, s.symlinks, s.size_bytes, s.bytes_added,
                          s.bytes_read, s.skipped, s.special, s.excluded, {damaged}
                   FROM snapshots s
                   JOIN workspaces w ON w.id = s.workspace_id
                   JOIN blobs b ON b.id = s.root_tree_id
                   {tail}"
        );
        let mut stmt = self
            .conn
            .prepare_cached(&sql)
            .map_err(sql_err(&self.path))?;
        let rows = stmt
            .query_map(args, |r| {
                let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Vec<u8>>(6)?,
                    SnapshotStats {
                        files: n(7)?,
                        dirs: n(8)?,
                        symlinks: n(9)?,
                        size_bytes: n(10)?,
                        bytes_added: n(11)?,
                        bytes_read: n(12)?,
                        skipped: n(13)?,
                        special: n(14)?,
                        excluded: n(15)?,
                    },
                    r.get::<_, i64>(16)? != 0,
                ))
            })
            .map_err(sql_err(&self.path))?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, user, project, time_ns, started_ns, finished_ns, root, stats, damaged) =
                row.map_err(sql_err(&self.path))?;
            out.push(SnapshotRow {
                id: SnapshotId(Id::from_slice(&hash)?),
                workspace: WorkspaceName { user, project },
                time_ns,
                started_ns,
                finished_ns,
                root: TreeId(Id::from_slice(&root)?),
                stats,
                damaged,
            });
        }
        Ok(out)
    }

    /// The most recently taken snapshot of a workspace that is not marked
    /// damaged: the stat-cache parent. A damaged snapshot references data
    /// the store lacks, so nothing of it (chunk ids of unchanged files,
    /// unchanged subtrees) may be reused; the next snapshot reads its files
    /// again and stores what was lost while the live files still exist.
    pub fn last_taken(&self, workspace: &WorkspaceName) -> Result<Option<SnapshotRow>> {
        let undamaged = if self.version >= 2 {
            "AND s.damaged = 0"
        } else {
            ""
        };
        let mut one = self.select_snapshots(
            &format!(
                "WHERE w.user = ?1 AND w.project = ?2 {undamaged}
                 ORDER BY s.started_ns DESC, s.time_ns DESC, s.id DESC LIMIT 1"
            ),
            params![workspace.user, workspace.project],
        )?;
        Ok(one.pop())
    }

    /// Row ids and times of a workspace's snapshots, oldest first, from the
    /// `snapshots_by_time` index alone (no snapshot row is read): what
    /// retention needs.
    pub fn snapshot_times(&self, workspace: &WorkspaceName) -> Result<Vec<(i64, i64)>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.id, s.time_ns FROM snapshots s
                 JOIN workspaces w ON w.id = s.workspace_id
                 WHERE w.user = ?1 AND w.project = ?2
                 ORDER BY s.time_ns, s.id",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map(params![workspace.user, workspace.project], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(&e)
    }

    /// The snapshot with catalog row id `row`.
    pub fn snapshot_by_row(&self, row: i64) -> Result<SnapshotRow> {
        self.select_snapshots("WHERE s.id = ?1", params![row])?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("snapshot row {row}")))
    }

    /// Skip list of a snapshot.
    pub fn skips(&self, id: &SnapshotId) -> Result<Vec<(Vec<u8>, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT k.path, k.reason FROM snapshot_skips k JOIN snapshots s ON s.id = k.snapshot_id
                 WHERE s.snapshot_hash = ?1",
            )
            .map_err(sql_err(&self.path))?;
        let rows = stmt
            .query_map([&id.0 .0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_err(&self.path))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err(&self.path))
    }

    /// Every pack with its recorded size.
    pub fn all_packs(&self) -> Result<Vec<(PackId, u64)>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare("SELECT pack_hash, size_bytes FROM packs ORDER BY id")
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&e)?;
        let mut out = Vec::new();
        for r in rows {
            let (h, size) = r.map_err(&e)?;
            out.push((PackId(Id::from_slice(&h)?), size.max(0) as u64));
        }
        Ok(out)
    }

    /// Indexed blobs of one pack: (id, kind, offset, stored_len, raw_len).
    #[allow(clippy::type_complexity)]
    pub fn blobs_in_pack(&self, pack: &PackId) -> Result<Vec<(Id, BlobKind, u64, u32, u32)>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT b.hash, b.kind, b.offset, b.stored_len, b.raw_len FROM blobs b
                 JOIN packs p ON p.id = b.pack_id WHERE p.pack_hash = ?1 ORDER BY b.offset",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([&pack.0 .0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(&e)?;
        let mut out = Vec::new();
        for r in rows {
            let (h, k, off, st, raw) = r.map_err(&e)?;
            let id = Id::from_slice(&h)?;
            let kind = BlobKind::from_code(k)
                .ok_or_else(|| Error::corrupt(format!("catalog: blob {id} has kind {k}")))?;
            out.push((
                id,
                kind,
                off.max(0) as u64,
                st.clamp(0, u32::MAX as i64) as u32,
                raw.clamp(0, u32::MAX as i64) as u32,
            ));
        }
        Ok(out)
    }

    /// SQLite's own check of the catalog file: `PRAGMA quick_check`
    /// (O(N), no index contents compared) or, with `full`,
    /// `PRAGMA integrity_check` (also every index against its table). The
    /// problems SQLite names, or the error that stopped it; empty when fine.
    pub fn integrity(&self, full: bool) -> Vec<String> {
        let pragma = if full {
            "PRAGMA integrity_check"
        } else {
            "PRAGMA quick_check"
        };
        let run = || -> rusqlite::Result<Vec<String>> {
            let mut stmt = self.conn.prepare(pragma)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        };
        match run() {
            Ok(rows) if rows.len() == 1 && rows[0] == "ok" => Vec::new(),
            Ok(rows) => rows,
            Err(e) => vec![e.to_string()],
        }
    }

    /// References and roots that point at nothing (should never happen).
    pub fn dangling_references(&self) -> Result<Vec<String>> {
        let e = sql_err(&self.path);
        let mut out = Vec::new();
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM tree_refs r WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = r.blob_id)
                    OR NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = r.tree_id)",
                [],
                |r| r.get(0),
            )
            .map_err(&e)?;
        if n > 0 {
            out.push(format!(
                "catalog: {n} tree references point at unindexed blobs"
            ));
        }
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM snapshots s WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.id = s.root_tree_id)",
                [],
                |r| r.get(0),
            )
            .map_err(&e)?;
        if n > 0 {
            out.push(format!(
                "catalog: {n} snapshots have an unindexed root tree"
            ));
        }
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM packs p WHERE p.id = b.pack_id)",
                [],
                |r| r.get(0),
            )
            .map_err(&e)?;
        if n > 0 {
            out.push(format!("catalog: {n} blobs point at unknown packs"));
        }
        Ok(out)
    }

    /// Sum of pack sizes in bytes.
    pub fn pack_bytes(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COALESCE(SUM(size_bytes), 0) FROM packs", [], |r| {
                r.get(0)
            })
            .map_err(sql_err(&self.path))?;
        Ok(n.max(0) as u64)
    }
}

/// Index one blob (a no-op if its id is indexed already).
const INSERT_BLOB: &str =
    "INSERT OR IGNORE INTO blobs (hash, kind, pack_id, offset, stored_len, raw_len)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// A tree or chunk list with every id it references.
pub type TreeRefs = (Id, Vec<Id>);

/// A snapshot's skipped entries: (path, reason).
pub type SkipList = Vec<(Vec<u8>, String)>;

/// Index pending trees (sealed, so their packs are indexed) with their
/// references, inside the caller's transaction.
fn index_trees(tx: &rusqlite::Transaction<'_>, trees: &[PendingTree], path: &Path) -> Result<()> {
    let e = sql_err(path);
    let mut pack_row = tx
        .prepare_cached("SELECT id FROM packs WHERE pack_hash = ?1")
        .map_err(&e)?;
    let mut ins_tree = tx.prepare_cached(INSERT_BLOB).map_err(&e)?;
    let mut blob_row = tx
        .prepare_cached("SELECT id FROM blobs WHERE hash = ?1")
        .map_err(&e)?;
    let mut ins_ref = tx
        .prepare_cached("INSERT OR IGNORE INTO tree_refs (tree_id, blob_id) VALUES (?1, ?2)")
        .map_err(&e)?;
    for t in trees {
        let pack: i64 = pack_row
            .query_row([&t.pack.0 .0[..]], |r| r.get(0))
            .map_err(&e)?;
        let inserted = ins_tree
            .execute(params![
                &t.id.0[..],
                t.kind as u8,
                pack,
                i64_of(t.offset),
                t.stored_len,
                t.raw_len
            ])
            .map_err(&e)?;
        let tree_row = if inserted == 1 {
            tx.last_insert_rowid()
        } else {
            // Already indexed: a run sends an indexed tree again only when
            // its stored copy did not read back (`BlobSink::put`). The row
            // (which snapshots and trees point to) now names this copy.
            tx.execute(
                "UPDATE blobs SET pack_id = ?2, offset = ?3, stored_len = ?4, raw_len = ?5
                 WHERE hash = ?1",
                params![&t.id.0[..], pack, i64_of(t.offset), t.stored_len, t.raw_len],
            )
            .map_err(&e)?;
            blob_row
                .query_row([&t.id.0[..]], |r| r.get(0))
                .map_err(&e)?
        };
        link_refs(&mut blob_row, &mut ins_ref, tree_row, &t.id, &t.refs, path)?;
    }
    Ok(())
}

/// Insert `tree_refs` rows from `tree_row` (blob `tree`) to each of `refs`,
/// each of which must be indexed.
fn link_refs(
    blob_row: &mut rusqlite::CachedStatement<'_>,
    ins_ref: &mut rusqlite::CachedStatement<'_>,
    tree_row: i64,
    tree: &Id,
    refs: &[Id],
    path: &Path,
) -> Result<()> {
    let e = sql_err(path);
    for r in refs {
        let blob: Option<i64> = blob_row
            .query_row([&r.0[..]], |row| row.get(0))
            .optional()
            .map_err(&e)?;
        let blob = blob.ok_or_else(|| {
            Error::corrupt(format!(
                "tree {tree} references blob {r} that is not stored"
            ))
        })?;
        ins_ref.execute(params![tree_row, blob]).map_err(&e)?;
    }
    Ok(())
}

/// Make sure trees (and chunk lists) that were already indexed when this
/// run referenced them again have every reference in `tree_refs`: `repair`
/// indexes a tree whose blobs are partly lost with only the references it
/// could find, and a run that stored the lost blobs again must link them,
/// or gc would take them for garbage. A reference to a blob the store lacks
/// is an error, as in [`index_trees`].
fn complete_refs(tx: &rusqlite::Transaction<'_>, known: &[TreeRefs], path: &Path) -> Result<()> {
    let e = sql_err(path);
    let mut blob_row = tx
        .prepare_cached("SELECT id FROM blobs WHERE hash = ?1")
        .map_err(&e)?;
    let mut ins_ref = tx
        .prepare_cached("INSERT OR IGNORE INTO tree_refs (tree_id, blob_id) VALUES (?1, ?2)")
        .map_err(&e)?;
    for (tree, refs) in known {
        let tree_row: i64 = blob_row
            .query_row([&tree.0[..]], |r| r.get(0))
            .optional()
            .map_err(&e)?
            .ok_or_else(|| Error::corrupt(format!("tree {tree} is no longer stored")))?;
        link_refs(&mut blob_row, &mut ins_ref, tree_row, tree, refs, path)?;
    }
    Ok(())
}

/// Insert a finished run's row.
fn insert_run(conn: &Connection, run: &RunRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO runs (started_ns, finished_ns, workspaces_ok, workspaces_failed, entries_skipped, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            run.started_ns,
            run.finished_ns,
            i64_of(run.workspaces_ok),
            i64_of(run.workspaces_failed),
            i64_of(run.entries_skipped),
            run.error
        ],
    )?;
    if let Some(key) = &run.covered_root {
        // The run `status` judges: written with the row, in its transaction.
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![key, conn.last_insert_rowid().to_string()],
        )?;
    }
    Ok(())
}

/// Insert a snapshot row (its workspace and root tree rows are known).
fn insert_snapshot(
    conn: &Connection,
    row: &SnapshotRow,
    workspace_row: i64,
    root_row: i64,
    journal: &str,
) -> rusqlite::Result<()> {
    let s = row.stats;
    conn.execute(
        "INSERT INTO snapshots (snapshot_hash, workspace_id, time_ns, started_ns, finished_ns,
             root_tree_id, files, dirs, symlinks, size_bytes, bytes_added, bytes_read,
             skipped, special, excluded, journal, damaged)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            &row.id.0 .0[..],
            workspace_row,
            row.time_ns,
            row.started_ns,
            row.finished_ns,
            root_row,
            i64_of(s.files),
            i64_of(s.dirs),
            i64_of(s.symlinks),
            i64_of(s.size_bytes),
            i64_of(s.bytes_added),
            i64_of(s.bytes_read),
            i64_of(s.skipped),
            i64_of(s.special),
            i64_of(s.excluded),
            journal,
            row.damaged
        ],
    )?;
    Ok(())
}

/// Index a pack, or find its row if a byte-identical pack (same id) is
/// indexed already: after crashed runs the same never-committed trees are
/// written again into the same bytes, and the rename replaced the file
/// with itself.
fn upsert_pack(
    conn: &Connection,
    id: &PackId,
    size: u64,
    records: u64,
    now_ns: i64,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO packs (pack_hash, size_bytes, record_count, created_ns) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(pack_hash) DO NOTHING",
        params![&id.0 .0[..], i64_of(size), i64_of(records), now_ns],
    )?;
    conn.query_row(
        "SELECT id FROM packs WHERE pack_hash = ?1",
        [&id.0 .0[..]],
        |r| r.get(0),
    )
}

fn pending_journals_in(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let v: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'journals_pending'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.map(|v| v.lines().map(str::to_string).collect())
        .unwrap_or_default())
}

fn ensure_workspace(tx: &rusqlite::Transaction<'_>, w: &WorkspaceName) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT OR IGNORE INTO workspaces (user, project) VALUES (?1, ?2)",
        params![w.user, w.project],
    )?;
    tx.query_row(
        "SELECT id FROM workspaces WHERE user = ?1 AND project = ?2",
        params![w.user, w.project],
        |r| r.get(0),
    )
}

/// A small pool of read-only connections, one per concurrent user, for the
/// rayon workers of a run (a `Connection` is not `Sync`). In WAL mode they
/// see every committed transaction of the writer.
pub struct CatalogPool {
    path: PathBuf,
    idle: std::sync::Mutex<Vec<Catalog>>,
}

impl CatalogPool {
    pub fn new(path: &Path) -> CatalogPool {
        CatalogPool {
            path: path.to_path_buf(),
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Run `f` with a connection from the pool.
    pub fn with<T>(&self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().expect("catalog pool poisoned").pop();
        let conn = match conn {
            Some(c) => c,
            None => Catalog::open(&self.path, false)?,
        };
        let out = f(&conn);
        self.idle.lock().expect("catalog pool poisoned").push(conn);
        out
    }
}

/// One read-only connection held in a single read transaction, shared by
/// the threads of a restore: every lookup sees the same catalog state, even
/// while a prune commits beside it.
pub struct PinnedCatalog {
    inner: std::sync::Mutex<Catalog>,
}

impl PinnedCatalog {
    /// Open and pin the catalog's current state.
    pub fn open(path: &Path) -> Result<PinnedCatalog> {
        let cat = Catalog::open(path, false)?;
        cat.conn.execute_batch("BEGIN").map_err(sql_err(path))?;
        // The read transaction (and its snapshot of the WAL) starts at the
        // first read.
        cat.conn
            .query_row("SELECT COUNT(*) FROM meta", [], |_| Ok(()))
            .map_err(sql_err(path))?;
        Ok(PinnedCatalog {
            inner: std::sync::Mutex::new(cat),
        })
    }

    /// Run `f` with the pinned connection.
    pub fn with<T>(&self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        f(&self.inner.lock().expect("catalog lock poisoned"))
    }
}
