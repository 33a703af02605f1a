//! The run table: one row per finished `snapshot` run, for monitoring,
//! and the `meta` keys naming each root's newest full run.

use std::fs;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{i64_of, sql_err, Catalog};
use crate::error::Result;
use crate::model::RunRow;

/// The `meta` key holding the id of the newest run that covered the whole
/// of `root`: `last_full_run ` and the root's canonical path, escaped (one
/// store may take several roots, each with its own full runs).
pub fn full_run_key(root: &Path) -> String {
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    format!("last_full_run {}", crate::escape::path(&root))
}

impl Catalog {
    /// Record a finished run.
    pub fn insert_run(&mut self, run: &RunRow) -> Result<()> {
        insert_run(&self.conn, run).map_err(sql_err(&self.path))
    }

    /// The most recently finished `snapshot` run, if any.
    pub fn last_run(&self) -> Result<Option<RunRow>> {
        self.select_run("ORDER BY finished_ns DESC, id DESC LIMIT 1", [])
    }

    /// The newest run that covered the whole root `key` names (see
    /// [`full_run_key`]); `None` when no such run is recorded.
    pub fn last_full_run(&self, key: &str) -> Result<Option<RunRow>> {
        let e = sql_err(&self.path);
        let id: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        let Some(id) = id else {
            return Ok(None);
        };
        let id: i64 = id
            .parse()
            .map_err(|_| super::bad_meta(key, "not a number"))?;
        let run = self.select_run("WHERE id = ?1", [id])?;
        match run {
            Some(r) => Ok(Some(RunRow {
                covered_root: Some(key.to_string()),
                ..r
            })),
            None => Err(super::bad_meta(
                key,
                &format!("names run {id}, which is not in the runs table"),
            )),
        }
    }

    fn select_run(&self, filter: &str, p: impl rusqlite::Params) -> Result<Option<RunRow>> {
        self.conn
            .query_row(
                &format!(
                    "SELECT started_ns, finished_ns, workspaces_ok, workspaces_failed, entries_skipped, error
                     FROM runs {filter}"
                ),
                p,
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    Ok(RunRow {
                        started_ns: r.get(0)?,
                        finished_ns: r.get(1)?,
                        workspaces_ok: n(2)?,
                        workspaces_failed: n(3)?,
                        entries_skipped: n(4)?,
                        error: r.get(5)?,
                        covered_root: None,
                    })
                },
            )
            .optional()
            .map_err(sql_err(&self.path))
    }

    /// Start of the first recorded run that started after `ns`, if any.
    pub fn first_run_after(&self, ns: i64) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT MIN(started_ns) FROM runs WHERE started_ns > ?1",
                [ns],
                |r| r.get(0),
            )
            .map_err(sql_err(&self.path))
    }
}

/// Insert a finished run's row.
pub(super) fn insert_run(conn: &Connection, run: &RunRow) -> rusqlite::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::super::testing::new_catalog;
    use super::*;
    use crate::error::ErrorKind;

    fn run(started_ns: i64, covered_root: Option<&str>) -> RunRow {
        RunRow {
            started_ns,
            finished_ns: started_ns + 5,
            workspaces_ok: 3,
            workspaces_failed: 1,
            entries_skipped: 2,
            error: Some("2 workspaces gone at once".into()),
            covered_root: covered_root.map(str::to_string),
        }
    }

    #[test]
    fn the_last_run_is_the_last_finished() {
        let (_dir, mut cat) = new_catalog();
        assert_eq!(cat.last_run().unwrap(), None);
        cat.insert_run(&run(100, None)).unwrap();
        cat.insert_run(&run(10, None)).unwrap();
        let last = cat.last_run().unwrap().expect("a run");
        assert_eq!(last, run(100, None));
        assert_eq!(cat.first_run_after(10).unwrap(), Some(100));
        assert_eq!(cat.first_run_after(9).unwrap(), Some(10));
        assert_eq!(cat.first_run_after(100).unwrap(), None);
    }

    #[test]
    fn each_root_has_its_own_last_full_run() {
        let (dir, mut cat) = new_catalog();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        let (key_a, key_b) = (full_run_key(&a), full_run_key(&b));
        assert_ne!(key_a, key_b);
        // The canonical path names the root, however it was spelled.
        assert_eq!(full_run_key(&dir.path().join("a/../a")), key_a);

        assert_eq!(cat.last_full_run(&key_a).unwrap(), None);
        cat.insert_run(&run(10, Some(&key_a))).unwrap();
        cat.insert_run(&run(20, Some(&key_b))).unwrap();
        cat.insert_run(&run(30, None)).unwrap();
        assert_eq!(
            cat.last_full_run(&key_a).unwrap(),
            Some(run(10, Some(&key_a)))
        );
        assert_eq!(
            cat.last_full_run(&key_b).unwrap(),
            Some(run(20, Some(&key_b)))
        );
        assert_eq!(cat.last_run().unwrap(), Some(run(30, None)));

        cat.conn
            .execute("UPDATE meta SET value = '99' WHERE key = ?1", [&key_a])
            .unwrap();
        let err = cat.last_full_run(&key_a).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err}");
    }
}
