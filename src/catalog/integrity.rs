//! Check-only integrity queries: SQLite's own check of the file and the
//! references that must never dangle. Read-only; `check` reports what they
//! find.

use super::{sql_err, Catalog};
use crate::error::Result;

impl Catalog {
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{add_chunks, blob, commit, new_catalog, ws};

    #[test]
    fn a_healthy_catalog_passes_and_a_dangling_reference_is_named() {
        let (_dir, mut cat) = new_catalog();
        let chunk = blob("chunk");
        add_chunks(&mut cat, &[chunk]);
        commit(&mut cat, &ws("alice", "thesis"), 10, 10, &[chunk], &[]);
        assert_eq!(cat.integrity(false), Vec::<String>::new());
        assert_eq!(cat.integrity(true), Vec::<String>::new());
        assert_eq!(cat.dangling_references().unwrap(), Vec::<String>::new());

        // Damage no wsnap writer makes (its connections enforce foreign keys).
        cat.conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        cat.conn
            .execute("DELETE FROM blobs WHERE hash = ?1", [&chunk.0[..]])
            .unwrap();
        assert_eq!(
            cat.dangling_references().unwrap(),
            ["catalog: 1 tree references point at unindexed blobs"]
        );
    }
}
