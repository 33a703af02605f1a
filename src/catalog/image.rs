//! Catalog images for the off-site copy: a consistent single-file copy of
//! the catalog (SQLite's online backup), what an image says about itself
//! (newest snapshot, which packs it needs), and an image made the catalog
//! of a pulled store.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::Result;
use crate::id::SnapshotId;

use super::{sql_err, Catalog};

impl Catalog {
    /// Copy this catalog, as this connection sees it, into a new file
    /// `dest` (SQLite's online backup, all pages in one step: a consistent
    /// copy, WAL content included). The copy is left in rollback-journal
    /// mode, one self-contained file. The caller holds the writer lock, so
    /// nothing changes meanwhile, and `dest` is a private file it made.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        let e = sql_err(dest);
        let mut out = Connection::open_with_flags(
            dest,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(&e)?;
        {
            let b = rusqlite::backup::Backup::new(&self.conn, &mut out).map_err(&e)?;
            loop {
                match b.step(-1).map_err(&e)? {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More => continue,
                    rusqlite::backup::StepResult::Busy | rusqlite::backup::StepResult::Locked => {
                        std::thread::sleep(std::time::Duration::from_millis(50))
                    }
                    _ => continue,
                }
            }
        }
        out.pragma_update(None, "journal_mode", "DELETE")
            .map_err(&e)?;
        Ok(())
    }

    /// Make the image at `path` a store's catalog: back to WAL mode (the
    /// file is already where it belongs; the caller fsyncs and renames).
    pub fn adopt_image(path: &Path) -> Result<()> {
        let e = sql_err(path);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(&e)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(&e)?;
        // Fold the mode change in and leave one file.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(&e)?;
        Ok(())
    }

    /// When the catalog was created (`meta.created_ns`): the store's
    /// identity as far as a remote can tell.
    pub fn created_ns(&self) -> Result<i64> {
        self.meta_value("created_ns")?
            .parse()
            .map_err(|_| super::bad_meta("created_ns", "not a number"))
    }

    /// The newest snapshot (by recorded time), if any.
    pub fn newest_snapshot(&self) -> Result<Option<(SnapshotId, i64)>> {
        use rusqlite::OptionalExtension;
        let e = sql_err(&self.path);
        let row: Option<(Vec<u8>, i64)> = self
            .conn
            .query_row(
                "SELECT snapshot_hash, time_ns FROM snapshots ORDER BY time_ns DESC, id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&e)?;
        match row {
            None => Ok(None),
            Some((h, t)) => Ok(Some((SnapshotId(crate::id::Id::from_slice(&h)?), t))),
        }
    }
}

impl Catalog {
    /// The packs holding every blob reachable from `roots` (trees, chunk
    /// lists or chunks) through `tree_refs`: what a restore of those
    /// roots reads, found without reading a pack.
    pub fn packs_reachable(
        &self,
        roots: &[crate::id::Id],
    ) -> Result<Vec<(crate::id::PackId, u64)>> {
        let e = sql_err(&self.path);
        self.conn
            .execute_batch("CREATE TEMP TABLE IF NOT EXISTS reach_roots (hash BLOB PRIMARY KEY); DELETE FROM reach_roots;")
            .map_err(&e)?;
        for r in roots {
            self.conn
                .execute(
                    "INSERT OR IGNORE INTO reach_roots (hash) VALUES (?1)",
                    [&r.0[..]],
                )
                .map_err(&e)?;
        }
        let mut stmt = self
            .conn
            .prepare(
                "WITH RECURSIVE r(id) AS (
                     SELECT b.id FROM blobs b JOIN reach_roots x ON x.hash = b.hash
                     UNION
                     SELECT t.blob_id FROM tree_refs t JOIN r ON t.tree_id = r.id)
                 SELECT DISTINCT p.pack_hash, p.size_bytes
                 FROM r JOIN blobs b ON b.id = r.id JOIN packs p ON p.id = b.pack_id
                 ORDER BY p.id",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
            .map_err(&e)?;
        let mut out = Vec::new();
        for row in rows {
            let (h, n) = row.map_err(&e)?;
            out.push((
                crate::id::PackId(crate::id::Id::from_slice(&h)?),
                n.max(0) as u64,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, new_catalog, ws};
    use super::*;

    #[test]
    fn an_image_is_one_file_with_every_commit_and_opens_as_a_catalog() {
        let (dir, mut cat) = new_catalog();
        let a = ws("alice", "thesis");
        commit(&mut cat, &a, 10, 10, &[], &[]);
        let newest = commit(&mut cat, &a, 20, 20, &[], &[]);
        let img = dir.path().join("image");
        cat.backup_to(&img).unwrap();
        assert!(!dir.path().join("image-wal").exists());
        let copy = Catalog::open_immutable(&img).unwrap();
        assert_eq!(copy.snapshot_count().unwrap(), 2);
        assert_eq!(copy.newest_snapshot().unwrap(), Some((newest.id, 20)));
        assert_eq!(copy.created_ns().unwrap(), cat.created_ns().unwrap());
        drop(copy);
        Catalog::adopt_image(&img).unwrap();
        assert_eq!(
            Catalog::open(&img, false)
                .unwrap()
                .snapshot_count()
                .unwrap(),
            2
        );
    }
}
