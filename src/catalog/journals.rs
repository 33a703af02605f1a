//! Journal bookkeeping: which journal file holds each snapshot's record
//! (`snapshots.journal`) and which files still hold records of snapshots a
//! committed gc deleted (`meta.journals_pending`, rewritten after the
//! commit or by the next writer; see `journal.rs`).

use rusqlite::{Connection, OptionalExtension};

use super::{sql_err, Catalog};
use crate::error::Result;
use crate::id::{Id, SnapshotId};

/// `meta` key: the journal files to rewrite, one name a line.
const PENDING: &str = "journals_pending";

impl Catalog {
    /// Journal files that may still hold records of snapshots a committed
    /// gc deleted (named in gc's own transaction).
    pub fn pending_journals(&self) -> Result<Vec<String>> {
        pending_journals_in(&self.conn).map_err(sql_err(&self.path))
    }

    /// The pending journals were rewritten.
    pub fn clear_pending_journals(&self) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [PENDING])
            .map_err(sql_err(&self.path))?;
        Ok(())
    }

    /// Every snapshot's id and the journal file its record is in, in id
    /// order, one row at a time (no list of every snapshot in memory).
    pub fn for_each_snapshot_journal(
        &self,
        f: impl FnMut(SnapshotId, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        self.for_each_snapshot_journal_in(&[], None, f)
    }

    /// [`Catalog::for_each_snapshot_journal`] for the ids from `lo` up to,
    /// not including, `hi` (`None`: to the end): a range of the id index.
    pub fn for_each_snapshot_journal_in(
        &self,
        lo: &[u8],
        hi: Option<&[u8]>,
        mut f: impl FnMut(SnapshotId, Option<&str>) -> Result<()>,
    ) -> Result<()> {
        if self.version < 2 {
            return Ok(());
        }
        let e = sql_err(&self.path);
        let (sql, args): (&str, Vec<&dyn rusqlite::ToSql>) = match &hi {
            Some(hi) => (
                "SELECT snapshot_hash, journal FROM snapshots
                 WHERE snapshot_hash >= ?1 AND snapshot_hash < ?2 ORDER BY snapshot_hash",
                vec![&lo, hi],
            ),
            None => (
                "SELECT snapshot_hash, journal FROM snapshots
                 WHERE snapshot_hash >= ?1 ORDER BY snapshot_hash",
                vec![&lo],
            ),
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(&e)?;
        let mut rows = stmt.query(&args[..]).map_err(&e)?;
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
}

/// Add `names` to the journal files to rewrite, inside the caller's
/// transaction (gc's, which deletes the snapshots whose records they hold:
/// they are rewritten after the commit, or by the next writer if this
/// process dies first).
pub(super) fn add_pending_journals(conn: &Connection, names: &[String]) -> rusqlite::Result<()> {
    let mut all = pending_journals_in(conn)?;
    all.extend(names.iter().cloned());
    all.sort();
    all.dedup();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [PENDING, &all.join("\n")],
    )?;
    Ok(())
}

fn pending_journals_in(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [PENDING], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(v.map(|v| v.lines().map(str::to_string).collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{commit, new_catalog, ws};
    use super::*;

    #[test]
    fn pending_journals_accumulate_until_cleared() {
        let (_dir, cat) = new_catalog();
        assert_eq!(cat.pending_journals().unwrap(), Vec::<String>::new());
        add_pending_journals(&cat.conn, &["b.wsj".into(), "a.wsj".into()]).unwrap();
        add_pending_journals(&cat.conn, &["a.wsj".into(), "c.wsj".into()]).unwrap();
        assert_eq!(cat.pending_journals().unwrap(), ["a.wsj", "b.wsj", "c.wsj"]);
        cat.clear_pending_journals().unwrap();
        assert_eq!(cat.pending_journals().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn every_snapshot_names_its_journal() {
        let (_dir, mut cat) = new_catalog();
        let mut ids = vec![
            commit(&mut cat, &ws("alice", "thesis"), 10, 10, &[], &[]).id,
            commit(&mut cat, &ws("bob", "notes"), 20, 20, &[], &[]).id,
        ];
        ids.sort_by_key(|id| id.0 .0);
        let mut seen = Vec::new();
        cat.for_each_snapshot_journal(|id, journal| {
            seen.push((id, journal.map(str::to_string)));
            Ok(())
        })
        .unwrap();
        let expected: Vec<_> = ids
            .into_iter()
            .map(|id| (id, Some("test.wsj".to_string())))
            .collect();
        assert_eq!(seen, expected);
    }
}
