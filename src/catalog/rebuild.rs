//! The catalog side of `repair`: filling a fresh catalog from pack records
//! and journal records, in one transaction.

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, Transaction};

use super::blobs::{upsert_pack, INSERT_BLOB};
use super::snapshots::insert_snapshot;
use super::workspaces::ensure_workspace;
use super::{i64_of, sql_err, Catalog};
use crate::error::{Error, Object, Result};
use crate::id::{Id, PackId};
use crate::model::SnapshotRow;
use crate::pack::{BlobKind, RecordHeader};

/// A tree or chunk list to decode in repair's second pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefBlob {
    pub(crate) row: i64,
    pub(crate) id: Id,
    pub(crate) kind: BlobKind,
    pub(crate) pack: PackId,
    pub(crate) offset: u64,
}

/// An open rebuild transaction. Dropped without `commit`, it rolls back.
pub(crate) struct Rebuild<'a> {
    tx: Transaction<'a>,
    path: std::path::PathBuf,
}

impl Catalog {
    /// Start filling this (fresh) catalog.
    pub(crate) fn begin_rebuild(&mut self) -> Result<Rebuild<'_>> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sql_err(&path))?;
        Ok(Rebuild { tx, path })
    }
}

impl Rebuild<'_> {
    fn e(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        sql_err(&self.path)
    }

    /// Index a verified pack; returns its row.
    pub(crate) fn add_pack(
        &self,
        id: &PackId,
        size: u64,
        records: u64,
        now_ns: i64,
    ) -> Result<i64> {
        upsert_pack(&self.tx, id, size, records, now_ns).map_err(self.e())
    }

    /// Index a verified record (the first copy of a blob wins).
    pub(crate) fn add_blob(&self, pack_row: i64, offset: u64, h: &RecordHeader) -> Result<()> {
        let mut ins = self.tx.prepare_cached(INSERT_BLOB).map_err(self.e())?;
        ins.execute(params![
            &h.id.0[..],
            h.kind as u8,
            pack_row,
            i64_of(offset),
            h.stored_len,
            h.raw_len
        ])
        .map_err(self.e())?;
        Ok(())
    }

    /// Every indexed tree and chunk list, in pack order.
    pub(crate) fn ref_blobs(&self) -> Result<Vec<RefBlob>> {
        let e = self.e();
        let mut stmt = self
            .tx
            .prepare(
                "SELECT b.id, b.hash, b.kind, p.pack_hash, b.offset FROM blobs b
                 JOIN packs p ON p.id = b.pack_id WHERE b.kind IN (2, 3)
                 ORDER BY b.pack_id, b.offset",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(&e)?;
        let mut out = Vec::new();
        for r in rows {
            let (row, hash, kind, pack, offset) = r.map_err(&e)?;
            out.push(RefBlob {
                row,
                id: Id::from_slice(&hash)?,
                kind: BlobKind::from_code(kind).ok_or_else(|| {
                    Error::corrupt_as(format!("unknown blob kind {kind}")).within(
                        Object::CatalogRow {
                            table: "blobs",
                            row,
                        },
                    )
                })?,
                pack: PackId(Id::from_slice(&pack)?),
                offset: offset.max(0) as u64,
            });
        }
        Ok(out)
    }

    /// Record what tree (or list) `tree_row` references; returns how many of
    /// `refs` are not indexed (missing data).
    pub(crate) fn add_refs(&self, tree_row: i64, refs: &[Id]) -> Result<u64> {
        let e = self.e();
        let mut find = self
            .tx
            .prepare_cached("SELECT id FROM blobs WHERE hash = ?1")
            .map_err(&e)?;
        let mut ins = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO tree_refs (tree_id, blob_id) VALUES (?1, ?2)")
            .map_err(&e)?;
        let mut missing = 0;
        for r in refs {
            let row: Option<i64> = find
                .query_row([&r.0[..]], |x| x.get(0))
                .optional()
                .map_err(&e)?;
            match row {
                Some(b) => {
                    ins.execute(params![tree_row, b]).map_err(&e)?;
                }
                None => missing += 1,
            }
        }
        Ok(missing)
    }

    /// Trees and lists that reference any of `rows`.
    pub(crate) fn parents(&self, rows: &[i64]) -> Result<Vec<i64>> {
        let e = self.e();
        let mut stmt = self
            .tx
            .prepare_cached("SELECT tree_id FROM tree_refs WHERE blob_id = ?1")
            .map_err(&e)?;
        let mut out = Vec::new();
        for r in rows {
            let ps = stmt.query_map([r], |x| x.get::<_, i64>(0)).map_err(&e)?;
            for p in ps {
                out.push(p.map_err(&e)?);
            }
        }
        Ok(out)
    }

    /// The blob row of an indexed tree.
    pub(crate) fn tree_row(&self, id: &Id) -> Result<Option<i64>> {
        self.tx
            .query_row(
                "SELECT id FROM blobs WHERE hash = ?1 AND kind = 2",
                [&id.0[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.e())
    }

    /// Insert a recovered snapshot whose root tree is indexed at `root_row`.
    pub(crate) fn add_snapshot(
        &self,
        row: &SnapshotRow,
        root_row: i64,
        journal: &str,
        damaged: bool,
    ) -> Result<()> {
        let e = self.e();
        let ws = ensure_workspace(&self.tx, &row.workspace).map_err(&e)?;
        let row = SnapshotRow {
            damaged,
            ..row.clone()
        };
        insert_snapshot(&self.tx, &row, ws, root_row, journal).map_err(&e)
    }

    pub(crate) fn commit(self) -> Result<()> {
        let e = sql_err(&self.path);
        self.tx.commit().map_err(e)
    }
}

/// Rows reachable upwards from `start` (its ancestors, and itself).
pub(crate) fn ancestors(rb: &Rebuild<'_>, start: HashSet<i64>) -> Result<HashSet<i64>> {
    let mut seen = start.clone();
    let mut frontier: Vec<i64> = start.into_iter().collect();
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for p in rb.parents(&frontier)? {
            if seen.insert(p) {
                next.push(p);
            }
        }
        frontier = next;
    }
    Ok(seen)
}
