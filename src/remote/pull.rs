//! `pull`: a complete local store from a remote, into an empty or absent
//! directory (which may hold the remote's configuration). The packs and
//! journals come first, the catalog (the newest image) last, renamed into
//! place: until then the directory is no store. If the image is missing or
//! does not authenticate, the catalog is rebuilt from the packs and
//! journals instead (`repair`: packs describe themselves, journals hold
//! every snapshot's row). Then a quick `check`.

use std::fs;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::durable;
use crate::error::{Error, Result};
use crate::id::PackId;
use crate::layout;
use crate::lock;
use crate::progress::Progress;

use super::fetch::{fetch_image, fetch_pack};
use super::pointer::{Pointer, DATA_DIR, JOURNAL_DIR};
use super::{parallel, Remote, PARALLEL};

/// What `pull` did.
#[derive(Debug, Default)]
pub struct PullReport {
    pub packs: u64,
    pub pack_bytes: u64,
    pub journals: u64,
    pub snapshots: u64,
    /// Why the catalog was rebuilt from packs and journals instead of
    /// taken from the image (`None`: the image was used).
    pub rebuilt_because: Option<String>,
    /// What the quick check after it found.
    pub check_problems: Vec<String>,
}

/// Refuse a directory that holds anything but a remote's configuration.
fn require_empty(dir: &Path) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::store_read(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::store_read(dir, e))?;
        if !layout::is_remote_entry(&e.file_name()) {
            return Err(Error::invalid(
                "pull target",
                format!(
                    "{}: a pull needs an empty or absent store directory (it may hold the \
                     remote's configuration), and this one holds {}",
                    crate::escape::path(dir),
                    crate::escape::escape(std::os::unix::ffi::OsStrExt::as_bytes(
                        e.file_name().as_os_str()
                    ))
                ),
            ));
        }
    }
    Ok(())
}

/// Pull `remote` into the store directory `dir`.
pub fn pull(dir: &Path, remote: &Remote, progress: &Progress) -> Result<PullReport> {
    require_empty(dir)?;
    let w = |p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::store_write(p, e)
    };
    durable::ensure_private_dir(dir).map_err(w(dir))?;
    for d in layout::init_dirs(dir) {
        durable::ensure_private_dir(&d).map_err(w(&d))?;
    }
    for l in layout::init_lock_files(dir) {
        if !l.exists() {
            drop(durable::create_private_file(&l).map_err(w(&l))?);
        }
    }
    let _lock = lock::exclusive(dir, &layout::lock_path(dir), Duration::ZERO, "pull")?;
    let mut report = PullReport::default();
    let pointer = match remote.read_pointer() {
        Ok(Some(p)) => Some(p),
        Ok(None) => return Err(remote.require_pointer().expect_err("no pointer")),
        Err(e) => {
            report.rebuilt_because = Some(format!("the pointer cannot be used: {e}"));
            None
        }
    };
    let tmp = layout::tmp_dir(dir);
    let image = match &pointer {
        Some(p) => match fetch_image(remote, p, &tmp) {
            Ok(path) => Some(path),
            Err(e) => {
                report.rebuilt_because = Some(format!("the catalog image cannot be used: {e}"));
                None
            }
        },
        None => None,
    };
    // The packs: those the image names, or every data object.
    let objects: Vec<(String, Option<PackId>)> = match &image {
        Some(path) => Catalog::open_immutable(path)?
            .all_packs()?
            .into_iter()
            .map(|(id, _)| (remote.pack_object(&id), Some(id)))
            .collect(),
        None => remote
            .list(DATA_DIR)?
            .into_iter()
            .map(|(o, _)| (o, None))
            .collect(),
    };
    progress.expect(objects.len() as u64, 0);
    let counts = Mutex::new((0u64, 0u64));
    parallel(&objects, PARALLEL, |(object, id)| {
        let (_, n) = fetch_pack(remote, object, id.as_ref(), dir)?;
        let mut c = counts.lock().expect("poisoned");
        c.0 += 1;
        c.1 += n;
        progress.add(1, n);
        Ok(())
    })?;
    (report.packs, report.pack_bytes) = counts.into_inner().expect("poisoned");
    fetch_journals(remote, pointer.as_ref(), dir, &mut report)?;
    match image {
        Some(img) => {
            Catalog::adopt_image(&img)?;
            let f = fs::File::open(&img).map_err(|e| Error::store_read(&img, e))?;
            let cat = layout::catalog_path(dir);
            // Last: the catalog appearing makes the directory a store.
            durable::commit_file(&f, &img, &cat).map_err(|e| Error::store_write(&cat, e))?;
        }
        None => {
            drop(_lock);
            let r = crate::repair::repair(dir, Duration::ZERO, true)?;
            report.check_problems.extend(r.lost.iter().map(|s| {
                format!(
                    "snapshot {} of {} lost: its root tree is in no pack",
                    s.id.0.short(),
                    s.workspace
                )
            }));
        }
    }
    let store = crate::store::Store::open(dir)?;
    report.snapshots = store.catalog_for_reading()?.snapshot_count()?;
    let check = crate::check::check(&store, false)?;
    report
        .check_problems
        .extend(check.findings.iter().map(|f| f.problem.clone()));
    Ok(report)
}

/// The journals the pointer names, under their names; without a pointer,
/// every journal object, under a name made of its object name.
fn fetch_journals(
    remote: &Remote,
    pointer: Option<&Pointer>,
    dir: &Path,
    report: &mut PullReport,
) -> Result<()> {
    let jdir = layout::journal_dir(dir);
    durable::ensure_private_dir(&jdir).map_err(|e| Error::store_write(&jdir, e))?;
    let list: Vec<(String, String)> = match pointer {
        Some(p) => p
            .journals
            .iter()
            .map(|j| (j.object.clone(), j.file.clone()))
            .collect(),
        None => remote
            .list(JOURNAL_DIR)?
            .into_iter()
            .map(|(o, _)| {
                let file = format!("{}.wsj", o.trim_start_matches("journal/"));
                (o, file)
            })
            .collect(),
    };
    for (object, file) in list {
        let tmp = layout::tmp_dir(dir).join(format!("{file}.tmp"));
        let mut f = durable::create_private_file(&tmp).map_err(|e| Error::store_write(&tmp, e))?;
        if let Err(e) = remote.download(&object, &mut f) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let to = jdir.join(&file);
        durable::commit_file(&f, &tmp, &to).map_err(|e| Error::store_write(&to, e))?;
        report.journals += 1;
    }
    Ok(())
}
