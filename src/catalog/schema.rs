//! Catalog schema, version 4, and the checks made when opening one.
//!
//! `PRAGMA application_id` marks the file as a wsnap catalog; `meta` holds the
//! format version and the per-store parameters that must never change
//! (chunker sizes: changing them would break dedup against old snapshots).
//! Migrations are numbered; an older catalog is upgraded in one transaction,
//! a newer one is refused with a message.

/// `PRAGMA application_id`: "wsnp".
pub const APPLICATION_ID: i32 = 0x7773_6e70;

/// Version 1: the first catalog format (packs, blobs, tree_refs,
/// workspaces, snapshots, snapshot_skips, runs).
/// Version 2: snapshots name their journal file (`journal/`, read by
/// `repair`) and carry a `damaged` mark set by `repair`.
/// Version 3 (issue 18): no schema change; the store may hold trees of
/// version 2 (large directories as pieces, `tree::index`), which builds
/// that read catalogs up to version 2 do not know: the version makes them
/// refuse the store with a clear message rather than report its large
/// directories as damage. A version-2 catalog is read as it is and marked
/// version 3 by its first writer.
/// Version 4 (issue 18): no schema change; `meta.chunker_tiers` may hold
/// larger chunk sizes for large files (`chunker::LargeFileTiers`), recorded
/// by `init`. Builds that read up to version 3 would cut those files with
/// the base sizes (a silent loss of dedup), so the version makes them
/// refuse the store. An older catalog is marked version 4 by its first
/// writer and records no tiers: it keeps cutting every file as before.
pub const FORMAT_VERSION: i64 = 4;

/// The oldest version this build reads (and upgrades when it writes).
pub const OLDEST_READABLE: i64 = 1;

/// From version 1 to 2, in the upgrading writer's transaction (the journal
/// file holding the existing snapshots is written before it commits).
pub const MIGRATE_V1_TO_V2: &str = r#"
ALTER TABLE snapshots ADD COLUMN journal TEXT;           -- journal file name
ALTER TABLE snapshots ADD COLUMN damaged INTEGER NOT NULL DEFAULT 0;
                                                        -- 1: repair found data missing
"#;

/// Indexes added within version 2: they change no data and every SQLite
/// maintains them, so older builds read and write a catalog that has them.
/// Created with the catalog, and by the first writer of an older one.
pub const INDEXES_V2: &str = r#"
-- The stat-cache parent of each workspace's next snapshot (last started):
-- one index step instead of sorting all of the workspace's snapshots.
CREATE INDEX IF NOT EXISTS snapshots_by_started
    ON snapshots(workspace_id, started_ns, time_ns);
-- The damaged snapshots (usually none): found without a scan, so every
-- run can look whether one became whole again (`heal.rs`).
CREATE INDEX IF NOT EXISTS snapshots_damaged
    ON snapshots(workspace_id) WHERE damaged = 1;
-- The snapshots that skipped entries (usually few): `status` and
-- `snapshot --prune` find whose retention is held without reading every
-- snapshot row (issue #18).
CREATE INDEX IF NOT EXISTS snapshots_skipping
    ON snapshots(workspace_id, time_ns) WHERE skipped > 0;
"#;

pub const SCHEMA_V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per sealed pack file packs/xx/<pack_hash>.pack.
CREATE TABLE packs (
    id           INTEGER PRIMARY KEY,
    pack_hash    BLOB NOT NULL UNIQUE,
    size_bytes   INTEGER NOT NULL,
    record_count INTEGER NOT NULL,
    created_ns   INTEGER NOT NULL
);

-- Where each blob lives. offset = start of its record header in the pack.
CREATE TABLE blobs (
    id         INTEGER PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    kind       INTEGER NOT NULL,       -- 1 chunk, 2 tree
    pack_id    INTEGER NOT NULL REFERENCES packs(id),
    offset     INTEGER NOT NULL,
    stored_len INTEGER NOT NULL,
    raw_len    INTEGER NOT NULL
);
CREATE INDEX blobs_by_pack ON blobs(pack_id);

-- Every blob a tree references (chunks, subtrees). A tree row is inserted
-- in the same transaction as all of its references: gc marks through this
-- table alone.
CREATE TABLE tree_refs (
    tree_id INTEGER NOT NULL REFERENCES blobs(id),
    blob_id INTEGER NOT NULL REFERENCES blobs(id),
    PRIMARY KEY (tree_id, blob_id)
) WITHOUT ROWID;
-- "Is anything still referencing blob X?" is gc's question: answered by index.
CREATE INDEX tree_refs_by_blob ON tree_refs(blob_id);

CREATE TABLE workspaces (
    id      INTEGER PRIMARY KEY,
    user    BLOB NOT NULL,
    project BLOB NOT NULL,
    UNIQUE (user, project)
);

CREATE TABLE snapshots (
    id            INTEGER PRIMARY KEY,
    snapshot_hash BLOB NOT NULL UNIQUE,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces(id),
    time_ns       INTEGER NOT NULL,     -- recorded time (--time or start)
    started_ns    INTEGER NOT NULL,     -- wall clock when the walk began
    finished_ns   INTEGER NOT NULL,
    root_tree_id  INTEGER NOT NULL REFERENCES blobs(id),
    files         INTEGER NOT NULL,
    dirs          INTEGER NOT NULL,
    symlinks      INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,     -- logical bytes of all files
    bytes_added   INTEGER NOT NULL,     -- pack bytes this snapshot added
    bytes_read    INTEGER NOT NULL,     -- workspace bytes read to make it
    skipped       INTEGER NOT NULL,     -- unreadable / vanished entries
    special       INTEGER NOT NULL,     -- FIFOs, sockets, devices skipped
    excluded      INTEGER NOT NULL      -- entries matched by an exclude
);
CREATE INDEX snapshots_by_time ON snapshots(workspace_id, time_ns);
CREATE INDEX snapshots_by_root ON snapshots(root_tree_id);

CREATE TABLE snapshot_skips (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    path        BLOB NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX snapshot_skips_by_snapshot ON snapshot_skips(snapshot_id);

-- One row per `wsnap snapshot` run, for monitoring.
CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    started_ns         INTEGER NOT NULL,
    finished_ns        INTEGER NOT NULL,
    workspaces_ok      INTEGER NOT NULL,
    workspaces_failed  INTEGER NOT NULL,
    entries_skipped    INTEGER NOT NULL,
    error              TEXT
);
"#;
