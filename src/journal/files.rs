//! The journal's files: a run's `.wsj.open` file appended to as its
//! snapshots commit, the journal directory listed and read, files rewritten
//! atomically (gc's forgotten snapshots, a repaired catalog) and the `.open`
//! files of crashed runs reconciled with the catalog. The bytes they hold
//! are [`super::format`]'s; every fsync and rename goes through `durable`.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::durable;
use crate::error::{Error, Object, Result};
use crate::id::SnapshotId;
use crate::model::{SnapshotRow, StoreParams};

use super::format::{decode, encode_header, encode_record, Decoded};

/// The journal directory of a store.
pub fn dir(store_dir: &Path) -> PathBuf {
    crate::layout::journal_dir(store_dir)
}

/// A journal file name: `<name>.wsj` or `<name>.wsj.open`.
pub fn is_journal_name(name: &str) -> bool {
    name.ends_with(".wsj") || name.ends_with(".wsj.open")
}

/// Every journal file of a store, sorted by name.
pub fn list(store_dir: &Path) -> Result<Vec<PathBuf>> {
    let d = dir(store_dir);
    let rd = match fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::store_read(&d, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::store_read(&d, e))?;
        if e.file_name().to_str().is_some_and(is_journal_name) {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Read one journal file; its damage, if any, names it.
pub fn read(path: &Path) -> Result<Decoded> {
    let bytes = fs::read(path).map_err(|e| Error::store_read(path, e))?;
    let mut d = decode(&bytes);
    d.damage = d
        .damage
        .map(|e| e.within(Object::Journal(path.to_path_buf())));
    Ok(d)
}

/// The journal of one writer run: created at the first snapshot commit as
/// `<name>.wsj.open`, renamed to `<name>.wsj` when the run finishes.
pub struct RunJournal {
    dir: PathBuf,
    name: String,
    params: StoreParams,
    file: Option<File>,
}

impl RunJournal {
    pub fn new(store_dir: &Path, params: StoreParams, started_ns: i64) -> RunJournal {
        RunJournal {
            dir: dir(store_dir),
            name: format!("{started_ns:020}-{}.wsj", std::process::id()),
            params,
            file: None,
        }
    }

    /// The name the catalog records for this run's snapshots.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn open_path(&self) -> PathBuf {
        self.dir.join(format!("{}.open", self.name))
    }

    /// Append the records of a (group) commit and make them durable with one
    /// `fdatasync`.
    pub fn append_all(&mut self, rows: &[SnapshotRow]) -> Result<()> {
        if self.file.is_none() {
            durable::ensure_private_dir(&self.dir).map_err(|e| Error::store_write(&self.dir, e))?;
            let path = self.open_path();
            let mut f =
                durable::create_private_file(&path).map_err(|e| Error::store_write(&path, e))?;
            f.write_all(&encode_header(&self.params))
                .map_err(|e| Error::store_write(&path, e))?;
            durable::sync_file(&f).map_err(|e| Error::store_write(&path, e))?;
            durable::sync_dir(&self.dir).map_err(|e| Error::store_write(&self.dir, e))?;
            self.file = Some(f);
        }
        let path = self.open_path();
        let f = self.file.as_mut().expect("opened above");
        let mut buf = Vec::new();
        for row in rows {
            buf.extend_from_slice(&encode_record(row));
        }
        f.write_all(&buf)
            .map_err(|e| Error::store_write(&path, e))?;
        durable::sync_data(f).map_err(|e| Error::store_write(&path, e))
    }

    /// Where the next record goes: the length of the open file (`None`
    /// before the first record, when the file does not exist yet).
    pub fn mark(&self) -> Result<Option<u64>> {
        match &self.file {
            None => Ok(None),
            Some(f) => f
                .metadata()
                .map(|m| Some(m.len()))
                .map_err(|e| Error::store_read(self.open_path(), e)),
        }
    }

    /// Take back the records appended since `mark` (the catalog refused
    /// their snapshots): the file is cut there and the cut made durable.
    /// A crash before the cut leaves records the catalog lacks, which the
    /// next writer trims, as after any crash between journal and commit.
    pub fn truncate(&mut self, mark: Option<u64>) -> Result<()> {
        let path = self.open_path();
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let len = mark.unwrap_or(encode_header(&self.params).len() as u64);
        // The next record goes where the cut is, not where writing stopped.
        durable::cut(f, len).map_err(|e| Error::store_write(&path, e))
    }

    /// The run is over: `<name>.wsj.open` becomes `<name>.wsj`.
    pub fn close(&mut self) -> Result<()> {
        if self.file.take().is_none() {
            return Ok(());
        }
        let from = self.open_path();
        let to = self.dir.join(&self.name);
        durable::rename(&from, &to).map_err(|e| Error::store_write(&from, e))
    }
}

/// Replace journal file `path` by one holding `records` (deleted when empty),
/// atomically: tmp → fsync → rename → dir fsync.
pub fn rewrite(path: &Path, params: &StoreParams, records: &[SnapshotRow]) -> Result<()> {
    let d = path.parent().expect("journal file has a directory");
    if records.is_empty() {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::store_write(path, e)),
        }
        return durable::sync_dir(d).map_err(|e| Error::store_write(d, e));
    }
    durable::ensure_private_dir(d).map_err(|e| Error::store_write(d, e))?;
    let tmp = d.join(format!(
        "{}.tmp",
        path.file_name().expect("file name").to_string_lossy()
    ));
    let _ = fs::remove_file(&tmp);
    let mut f = durable::create_private_file(&tmp).map_err(|e| Error::store_write(&tmp, e))?;
    let mut buf = encode_header(params);
    for r in records {
        buf.extend_from_slice(&encode_record(r));
    }
    f.write_all(&buf).map_err(|e| Error::store_write(&tmp, e))?;
    durable::commit_file(&f, &tmp, path).map_err(|e| Error::store_write(path, e))
}

/// Remove forgotten snapshots from their journals (gc, right *after* its
/// catalog commit, which names these files in `meta.journals_pending`; a
/// crash before this finishes is completed by [`keep_committed`]).
/// `by_file`: journal file name → ids to drop.
pub fn drop_records(
    store_dir: &Path,
    params: &StoreParams,
    by_file: &std::collections::BTreeMap<String, HashSet<SnapshotId>>,
) -> Result<()> {
    let d = dir(store_dir);
    for (name, ids) in by_file {
        let path = d.join(name);
        if !path.exists() {
            continue;
        }
        let decoded = read(&path)?;
        if let Some(e) = decoded.damage {
            return Err(e);
        }
        let keep: Vec<SnapshotRow> = decoded
            .records
            .into_iter()
            .filter(|r| !ids.contains(&r.id))
            .collect();
        rewrite(&path, params, &keep)?;
    }
    Ok(())
}

/// Rewrite the journal files `names` keeping only the records the catalog
/// has (a gc that died between its commit and its journal rewrite).
pub fn keep_committed(
    store_dir: &Path,
    params: &StoreParams,
    names: &[String],
    committed: impl Fn(&SnapshotId) -> Result<bool>,
) -> Result<()> {
    let d = dir(store_dir);
    for name in names {
        let path = d.join(name);
        if !path.exists() {
            continue;
        }
        trim_to(&path, params, &committed)?;
    }
    Ok(())
}

/// Rewrite journal `path` keeping only the records `committed` accepts;
/// returns them.
fn trim_to(
    path: &Path,
    params: &StoreParams,
    committed: &impl Fn(&SnapshotId) -> Result<bool>,
) -> Result<Vec<SnapshotRow>> {
    let mut keep = Vec::new();
    for r in read(path)?.records {
        if committed(&r.id)? {
            keep.push(r);
        }
    }
    rewrite(path, params, &keep)?;
    Ok(keep)
}

/// Finish the `.open` journals of crashed runs: keep the records whose
/// snapshot the catalog has (`committed`), write them as `<name>.wsj`, and
/// delete the `.open` file. Called by every writer under the lock.
pub fn reconcile(
    store_dir: &Path,
    params: &StoreParams,
    committed: impl Fn(&SnapshotId) -> Result<bool>,
) -> Result<u64> {
    let d = dir(store_dir);
    if let Ok(rd) = fs::read_dir(&d) {
        for e in rd.flatten() {
            if e.file_name().to_str().is_some_and(|n| n.ends_with(".tmp")) {
                // A rewrite that died before its rename.
                fs::remove_file(e.path()).map_err(|err| Error::store_write(e.path(), err))?;
            }
        }
    }
    let mut n = 0;
    for path in list(store_dir)? {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let Some(final_name) = name.strip_suffix(".open") else {
            continue;
        };
        // Two atomic steps, so at every instant exactly one file holds the
        // run's records: trim the `.open` file in place, then rename it.
        let keep = trim_to(&path, params, &committed)?;
        crate::failpoint::crash_point("journal.reconcile_trimmed");
        if !keep.is_empty() {
            let to = path.with_file_name(final_name);
            durable::rename(&path, &to).map_err(|e| Error::store_write(&path, e))?;
        }
        n += 1;
    }
    Ok(n)
}

/// Open for appending without truncation (tests that tear a journal).
#[doc(hidden)]
pub fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().append(true).open(path)
}
