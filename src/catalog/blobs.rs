//! The blob and pack index: where each blob is stored (`blobs`, `packs`)
//! and what each tree or chunk list references (`tree_refs`).
//!
//! A pack is indexed once it is durable, with its chunks in the same
//! transaction; trees and chunk lists are indexed at snapshot commit
//! together with all their references, each of which must already be
//! indexed (so gc can mark through `tree_refs` alone).

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{i64_of, sql_err, Catalog};
use crate::error::{Error, Object, Problem, Result};
use crate::id::{Id, PackId};
use crate::pack::{BlobKind, SealedPack};

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub kind: BlobKind,
    pub pack: PackId,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
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

/// A tree or chunk list with every id it references.
pub type TreeRefs = (Id, Vec<Id>);

/// An indexed blob's size, by catalog row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobSize {
    pub(crate) row: i64,
    pub kind: BlobKind,
    pub stored_len: u32,
    pub raw_len: u32,
}

impl Catalog {
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
        let bad = |detail: String| {
            Error::corrupt_as(detail)
                .within(Object::Blob(*id))
                .within(Object::Catalog)
        };
        let kind = BlobKind::from_code(kind).ok_or_else(|| bad(format!("unknown kind {kind}")))?;
        Ok(Some(BlobLocation {
            kind,
            pack: PackId(Id::from_slice(&pack)?),
            offset: u64::try_from(offset).map_err(|_| bad(format!("offset {offset}")))?,
            stored_len: u32::try_from(stored_len)
                .map_err(|_| bad(format!("stored_len {stored_len}")))?,
            raw_len: u32::try_from(raw_len).map_err(|_| bad(format!("raw_len {raw_len}")))?,
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
            let kind = BlobKind::from_code(k).ok_or_else(|| {
                Error::corrupt_as(format!("unknown kind {k}"))
                    .within(Object::Blob(id))
                    .within(Object::Catalog)
            })?;
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

    /// Call `f` with every indexed blob's kind and sizes, in row order
    /// (streamed: nothing is collected here).
    pub fn for_each_blob_size(&self, mut f: impl FnMut(BlobSize)) -> Result<()> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare("SELECT id, kind, stored_len, raw_len FROM blobs ORDER BY id")
            .map_err(&e)?;
        let mut rows = stmt.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let row: i64 = r.get(0).map_err(&e)?;
            let k: u8 = r.get(1).map_err(&e)?;
            let bad = |detail: String| {
                Error::corrupt_as(detail).within(Object::CatalogRow {
                    table: "blobs",
                    row,
                })
            };
            let kind = BlobKind::from_code(k).ok_or_else(|| bad(format!("unknown kind {k}")))?;
            let len = |i: usize| -> Result<u32> {
                let v: i64 = r.get(i).map_err(&e)?;
                u32::try_from(v).map_err(|_| bad(format!("length {v}")))
            };
            f(BlobSize {
                row,
                kind,
                stored_len: len(2)?,
                raw_len: len(3)?,
            });
        }
        Ok(())
    }

    /// Blob rows a tree or chunk list references (primary-key lookup).
    pub(crate) fn referenced_rows(&self, tree_row: i64) -> Result<Vec<i64>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT blob_id FROM tree_refs WHERE tree_id = ?1")
            .map_err(&e)?;
        let rows = stmt.query_map([tree_row], |r| r.get(0)).map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<i64>>>().map_err(e)
    }

    /// The `blobs` rows' span: how many there are, the lowest and the
    /// highest row number (`None` when there is no blob).
    pub(crate) fn blob_row_span(&self) -> Result<Option<(u64, i64, i64)>> {
        let e = sql_err(&self.path);
        // Three queries: min() and max() alone are each one b-tree step;
        // count(*) walks the smallest index.
        let one = |sql: &str| -> Result<Option<i64>> {
            self.conn.query_row(sql, [], |r| r.get(0)).map_err(&e)
        };
        let (Some(lo), Some(hi)) = (
            one("SELECT min(id) FROM blobs")?,
            one("SELECT max(id) FROM blobs")?,
        ) else {
            return Ok(None);
        };
        let n = one("SELECT count(*) FROM blobs")?.unwrap_or(0);
        Ok(Some((n.max(0) as u64, lo, hi)))
    }

    /// The stored length of the blob at `row` (`None`: not indexed).
    pub(crate) fn blob_stored_len(&self, row: i64) -> Result<Option<u32>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT stored_len FROM blobs WHERE id = ?1")
            .map_err(&e)?;
        let v: Option<i64> = stmt.query_row([row], |r| r.get(0)).optional().map_err(&e)?;
        Ok(v.map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX)))
    }

    /// The rows a tree or chunk list references, each with its stored
    /// length (`None`: referenced but not indexed, a damaged catalog).
    pub(crate) fn referenced_rows_sized(&self, tree_row: i64) -> Result<Vec<(i64, Option<u32>)>> {
        let e = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.blob_id, b.stored_len FROM tree_refs t
                 LEFT JOIN blobs b ON b.id = t.blob_id WHERE t.tree_id = ?1",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([tree_row], |r| {
                let len: Option<i64> = r.get(1)?;
                Ok((
                    r.get(0)?,
                    len.map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX)),
                ))
            })
            .map_err(&e)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(e)
    }
}

/// Index one blob (a no-op if its id is indexed already).
pub(super) const INSERT_BLOB: &str =
    "INSERT OR IGNORE INTO blobs (hash, kind, pack_id, offset, stored_len, raw_len)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Index pending trees (sealed, so their packs are indexed) with their
/// references, inside the caller's transaction.
pub(super) fn index_trees(
    tx: &rusqlite::Transaction<'_>,
    trees: &[PendingTree],
    path: &Path,
) -> Result<()> {
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
            Error::corrupt(Problem::NotStored)
                .within(Object::Blob(*r))
                .within(Object::Blob(*tree))
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
pub(super) fn complete_refs(
    tx: &rusqlite::Transaction<'_>,
    known: &[TreeRefs],
    path: &Path,
) -> Result<()> {
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
            .ok_or_else(|| Error::corrupt(Problem::NotStored).within(Object::Blob(*tree)))?;
        link_refs(&mut blob_row, &mut ins_ref, tree_row, tree, refs, path)?;
    }
    Ok(())
}

/// Index a pack, or find its row if a byte-identical pack (same id) is
/// indexed already: after crashed runs the same never-committed trees are
/// written again into the same bytes, and the rename replaced the file
/// with itself.
pub(super) fn upsert_pack(
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

#[cfg(test)]
mod tests {
    use super::super::testing::{add_chunks, blob, commit, new_catalog, sealed, ws};
    use super::*;

    #[test]
    fn a_chunk_is_found_where_its_pack_put_it() {
        let (_dir, mut cat) = new_catalog();
        let (x, y) = (blob("x"), blob("y"));
        assert_eq!(cat.blob_location(&x).unwrap(), None);
        assert!(!cat.has_blob(&x).unwrap());

        let pack = add_chunks(&mut cat, &[x, y]);
        let (offset, h) = pack.records[1];
        assert_eq!(
            cat.blob_location(&y).unwrap(),
            Some(BlobLocation {
                kind: BlobKind::Chunk,
                pack: pack.id,
                offset,
                stored_len: h.stored_len,
                raw_len: h.raw_len,
            })
        );
        assert!(cat.has_blob(&x).unwrap());
        assert_eq!(cat.all_packs().unwrap(), [(pack.id, pack.size_bytes)]);
        assert_eq!(cat.pack_bytes().unwrap(), pack.size_bytes);
        let listed = cat.blobs_in_pack(&pack.id).unwrap();
        assert_eq!(
            listed.iter().map(|b| (b.0, b.2)).collect::<Vec<_>>(),
            [(x, pack.records[0].0), (y, offset)]
        );
    }

    #[test]
    fn the_same_pack_indexed_twice_is_one_pack() {
        let (_dir, mut cat) = new_catalog();
        let pack = add_chunks(&mut cat, &[blob("x")]);
        cat.insert_pack(&pack, 2).unwrap();
        assert_eq!(cat.all_packs().unwrap().len(), 1);
        assert_eq!(cat.blobs_in_pack(&pack.id).unwrap().len(), 1);
    }

    #[test]
    fn trees_are_indexed_with_their_references_at_commit_only() {
        let (_dir, mut cat) = new_catalog();
        let chunk = blob("chunk");
        add_chunks(&mut cat, &[chunk]);
        // A sealed tree is not indexed with its pack.
        let early = sealed(&[(blob("tree"), BlobKind::Tree)]);
        cat.insert_pack(&early, 1).unwrap();
        assert!(!cat.has_blob(&blob("tree")).unwrap());

        let row = commit(&mut cat, &ws("alice", "thesis"), 10, 10, &[chunk], &[]);
        let loc = cat
            .blob_location(&row.root.0)
            .unwrap()
            .expect("root indexed");
        assert_eq!(loc.kind, BlobKind::Tree);

        let mut sizes = Vec::new();
        cat.for_each_blob_size(|b| sizes.push(b)).unwrap();
        assert_eq!(sizes.len(), 2);
        let (chunk_row, tree_row) = (sizes[0].row, sizes[1].row);
        assert_eq!(sizes[1].kind, BlobKind::Tree);
        assert_eq!(cat.referenced_rows(tree_row).unwrap(), [chunk_row]);
        assert_eq!(cat.referenced_rows(chunk_row).unwrap(), Vec::<i64>::new());
    }
}
