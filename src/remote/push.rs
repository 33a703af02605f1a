//! `push`: bring a remote up to date with the store, in an order that
//! leaves the remote restorable at every instant:
//!
//! 1. packs the remote lacks, without the writer lock (content-named: an
//!    upload is idempotent, an interrupted push re-sends only what the
//!    listing lacks); the readers' lock is held shared from here to the
//!    end, so gc leaves every pack file in place meanwhile;
//! 2. under the writer lock, only long enough for it: a catalog image
//!    (SQLite online backup) and copies of the journal files, staged in
//!    `remotes/NAME.push/`;
//! 3. the packs the image references that are still missing, then the
//!    journal files, then the image (zstd, then sealed);
//! 4. the pointer `latest` naming the image and journals — a reader that
//!    finds it finds everything it names;
//! 5. objects no longer referenced (pruned packs, old images and journal
//!    versions, leftovers of interrupted pushes) are recorded in the
//!    pointer with the time they were first found unreferenced, and
//!    deleted once the grace period has passed since then — always after
//!    a pointer that no longer names them is in place.
//!
//! One push per remote at a time (`remotes/NAME.lock`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::durable;
use crate::error::{Error, Result};
use crate::failpoint::crash_point;
use crate::id::PackId;
use crate::journal;
use crate::layout;
use crate::lock;
use crate::progress::Progress;
use crate::store::Store;
use crate::timespec;

use super::config::PushState;
use super::object::{sealed_len, SEGMENT_BYTES};
use super::pointer::{
    DeltaRef, ImageRef, JournalRef, Pointer, Unreferenced, DATA_DIR, IMAGE_DIR, JOURNAL_DIR,
    POINTER_OBJECT,
};
use super::{parallel, Remote, PARALLEL};
use crate::error::RemoteError;

/// The default grace period before an unreferenced object is deleted: a
/// reader that fetched an older pointer has this long to finish.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// How to push.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// How long an unreferenced object stays before it is deleted.
    pub grace: Duration,
    /// How long to wait for the writer lock (step 2).
    pub lock_wait: Duration,
    /// Push even if the remote holds another store's copy.
    pub force: bool,
}

/// Objects and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub objects: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }
}

/// What a push did.
#[derive(Clone, Debug, Default)]
pub struct PushReport {
    /// Objects written (packs, journals, image, pointer), sealed bytes.
    pub uploaded: Count,
    /// Objects the pointer needs that were there already.
    pub skipped: Count,
    /// Unreferenced objects deleted (grace period over).
    pub deleted: Count,
    /// Unreferenced objects still within the grace period.
    pub pending_deletion: u64,
    pub packs: u64,
    pub snapshots: u64,
    /// Recorded time of the newest snapshot pushed.
    pub newest_snapshot_ns: Option<i64>,
    /// Seconds the writer lock was held.
    pub lock_seconds: f64,
}

/// Record a push of remote `name` that failed before it could start
/// (the remote could not be opened), for `status`.
pub fn record_failure(store: &Store, name: &str, e: &Error) -> Result<()> {
    let mut state = PushState::load(store.dir(), name);
    state.last_failure_ns = Some(timespec::now_ns());
    state.last_error = Some(e.to_string());
    state.save(store.dir(), name)
}

/// Push `store` to `remote`, recording the outcome for `status`.
pub fn push(
    store: &Store,
    remote: &Remote,
    opts: &PushOptions,
    progress: &Progress,
) -> Result<PushReport> {
    let name = remote.cfg.name.clone();
    let lock_path = layout::remote_lock_path(store.dir(), &name);
    let _push_lock = lock::exclusive(
        store.dir(),
        &lock_path,
        Duration::ZERO,
        &format!("push to {name}"),
    )?;
    let r = push_locked(store, remote, opts, progress);
    let mut state = PushState::load(store.dir(), &name);
    let now = timespec::now_ns();
    match &r {
        Ok(rep) => {
            state.last_success_ns = Some(now);
            state.newest_pushed_ns = rep.newest_snapshot_ns;
            state.last_failure_ns = None;
            state.last_error = None;
        }
        Err(e) => {
            state.last_failure_ns = Some(now);
            state.last_error = Some(e.to_string());
        }
    }
    // The state is for monitoring: failing to record it fails the push
    // only if the push itself succeeded.
    match (r, state.save(store.dir(), &name)) {
        (Ok(rep), Ok(())) => Ok(rep),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    }
}

fn push_locked(
    store: &Store,
    remote: &Remote,
    opts: &PushOptions,
    progress: &Progress,
) -> Result<PushReport> {
    let mut report = PushReport::default();
    let previous = remote.read_pointer()?;
    if let Some(prev) = &previous {
        if !opts.force {
            same_store(store, remote, prev)?;
        }
    }
    // What the remote holds: the listing is the truth (a pointer does not
    // know what an interrupted push left).
    let mut present: HashMap<String, u64> = HashMap::new();
    for dir in [DATA_DIR, IMAGE_DIR, JOURNAL_DIR] {
        present.extend(remote.list(dir)?);
    }
    let initial: HashMap<String, u64> = present.clone();
    let present = Mutex::new(present);
    let uploaded = Mutex::new(Count::default());

    // 1. Packs, without the writer lock.
    let _readers = store.read_guard()?;
    let local = store.catalog_for_reading()?.all_packs()?;
    progress.expect(local.len() as u64, local.iter().map(|p| p.1).sum());
    upload_packs(store, remote, &local, &present, &uploaded, progress, false)?;
    crash_point("push.packs_uploaded");

    // 2. The image and the journals, under the writer lock.
    let stage = layout::remote_push_dir(store.dir(), &remote.cfg.name);
    let image_path = stage.join("catalog.image");
    let t0 = std::time::Instant::now();
    let staged_journals = {
        let _lock = store.lock(
            opts.lock_wait,
            &format!("push to {}: catalog image", remote.cfg.name),
        )?;
        match fs::remove_dir_all(&stage) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store_write(&stage, e)),
        }
        durable::create_private_dir(&stage.join(JOURNAL_DIR))
            .map_err(|e| Error::store_write(&stage, e))?;
        // Private before SQLite writes a byte into it (it holds every
        // workspace's file names).
        drop(
            durable::create_private_file(&image_path)
                .map_err(|e| Error::store_write(&image_path, e))?,
        );
        store.catalog_for_reading()?.backup_to(&image_path)?;
        let mut staged = Vec::new();
        for j in journal::list(store.dir())? {
            let file = j
                .file_name()
                .expect("a journal has a name")
                .to_string_lossy()
                .into_owned();
            let to = stage.join(JOURNAL_DIR).join(&file);
            fs::copy(&j, &to).map_err(|e| Error::store_write(&to, e))?;
            staged.push((file, to));
        }
        staged
    };
    report.lock_seconds = t0.elapsed().as_secs_f64();

    // 3. What the image needs, then journals, then the image.
    let image = Catalog::open_immutable(&image_path)?;
    let needed = image.all_packs()?;
    report.packs = needed.len() as u64;
    report.snapshots = image.snapshot_count()?;
    let newest = image.newest_snapshot()?;
    report.newest_snapshot_ns = newest.map(|(_, t)| t);
    let created_ns = image.created_ns()?;
    drop(image);
    upload_packs(store, remote, &needed, &present, &uploaded, progress, true)?;
    let mut referenced: HashSet<String> = needed
        .iter()
        .map(|(id, _)| remote.pack_object(id))
        .collect();
    let mut skipped = Count::default();
    for (id, size) in &needed {
        let want = sealed_len(*size, SEGMENT_BYTES);
        if initial.get(&remote.pack_object(id)) == Some(&want) {
            skipped.add(want);
        }
    }
    let mut journals = Vec::new();
    for (file, path) in &staged_journals {
        let hash = hash_file(path)?;
        let object = remote.named(JOURNAL_DIR, "journal", &[file.as_bytes(), hash.as_bytes()]);
        let bytes = fs::metadata(path)
            .map_err(|e| Error::store_read(path, e))?
            .len();
        put_if_missing(remote, &object, path, &present, &uploaded, &mut skipped)?;
        referenced.insert(object.clone());
        journals.push(JournalRef {
            object,
            file: file.clone(),
            bytes,
        });
    }
    let image_bytes = fs::metadata(&image_path)
        .map_err(|e| Error::store_read(&image_path, e))?
        .len();
    let image_hash = hash_file(&image_path)?;
    let base_path = layout::remote_base_path(store.dir(), &remote.cfg.name);
    let (image, delta) = match delta_against_base(
        remote,
        previous.as_ref(),
        &base_path,
        &image_path,
        &image_hash,
        &stage,
    )? {
        // A delta against the remote's base image: only what changed.
        Some((base, delta_path, delta_ref)) => {
            put_if_missing(
                remote,
                &delta_ref.object,
                &delta_path,
                &present,
                &uploaded,
                &mut skipped,
            )?;
            referenced.insert(delta_ref.object.clone());
            (base, Some(delta_ref))
        }
        // A new base: the image whole, compressed.
        None => {
            let object = remote.named(IMAGE_DIR, "image", &[image_hash.as_bytes()]);
            let zst = stage.join("catalog.image.zst");
            compress(&image_path, &zst)?;
            put_if_missing(remote, &object, &zst, &present, &uploaded, &mut skipped)?;
            (
                ImageRef {
                    object,
                    bytes: image_bytes,
                },
                None,
            )
        }
    };
    referenced.insert(image.object.clone());
    crash_point("push.image_uploaded");

    // 4. The pointer, with the deletion schedule.
    let now = timespec::now_ns();
    let grace_ns = i64::try_from(opts.grace.as_nanos()).unwrap_or(i64::MAX);
    let since: HashMap<&str, i64> = previous
        .iter()
        .flat_map(|p| {
            p.unreferenced
                .iter()
                .map(|u| (u.object.as_str(), u.since_ns))
        })
        .collect();
    let present = present.into_inner().expect("poisoned");
    let unreferenced: BTreeMap<&String, i64> = present
        .keys()
        .filter(|o| !referenced.contains(*o))
        .map(|o| (o, since.get(o.as_str()).copied().unwrap_or(now)))
        .collect();
    let pointer = Pointer {
        pushed_ns: now,
        store_created_ns: created_ns,
        newest_snapshot: newest.map(|(id, t)| (id.0.to_hex(), t)),
        snapshots: report.snapshots,
        image: image.clone(),
        delta: delta.clone(),
        journals,
        packs: report.packs,
        pack_bytes: needed.iter().map(|p| p.1).sum(),
        grace_ns,
        unreferenced: unreferenced
            .iter()
            .map(|(o, s)| Unreferenced {
                object: (*o).clone(),
                since_ns: *s,
            })
            .collect(),
    };
    let n = remote.put_small(POINTER_OBJECT, &pointer.encode())?;
    let mut uploaded = uploaded.into_inner().expect("poisoned");
    uploaded.add(n);
    crash_point("push.pointer_written");
    if delta.is_none() {
        // The new base, kept for the next pushes' deltas. Compared by
        // content with the pointer's base each time, so a crash on either
        // side of this rename only costs one whole image.
        durable::rename(&image_path, &base_path).map_err(|e| Error::store_write(&base_path, e))?;
    }

    // 5. Deletions whose grace period is over.
    let mut deleted = Count::default();
    for (object, since_ns) in &unreferenced {
        if now.saturating_sub(*since_ns) >= grace_ns {
            remote.delete(object)?;
            deleted.add(present[*object]);
        } else {
            report.pending_deletion += 1;
        }
    }
    crash_point("push.deleted");
    let _ = fs::remove_dir_all(&stage);
    report.uploaded = uploaded;
    report.skipped = skipped;
    report.deleted = deleted;
    Ok(report)
}

/// Refuse to push over another store's copy: the remote's newest pointer
/// must come from this catalog (same creation time) or name a snapshot
/// this store has (a catalog rebuilt by `repair` keeps snapshot ids).
fn same_store(store: &Store, remote: &Remote, prev: &Pointer) -> Result<()> {
    let cat = store.catalog_for_reading()?;
    let ours = cat.created_ns()?;
    if ours == prev.store_created_ns {
        return Ok(());
    }
    if let Some((id, _)) = &prev.newest_snapshot {
        if let Ok(id) = crate::id::Id::from_hex(id) {
            if cat.has_snapshot(&crate::id::SnapshotId(id))? {
                return Ok(());
            }
        }
    }
    if prev.snapshots == 0 {
        return Ok(());
    }
    Err(RemoteError::OtherStore {
        remote: remote.label(),
        theirs: timespec::format_rfc3339(prev.store_created_ns),
        ours: timespec::format_rfc3339(ours),
    }
    .into())
}

#[allow(clippy::too_many_arguments)]
fn upload_packs(
    store: &Store,
    remote: &Remote,
    packs: &[(PackId, u64)],
    present: &Mutex<HashMap<String, u64>>,
    uploaded: &Mutex<Count>,
    progress: &Progress,
    required: bool,
) -> Result<()> {
    // Missing, or not the size its pack makes (cut short on a remote
    // without atomic writes): sent (again).
    let todo: Vec<(PackId, String)> = {
        let p = present.lock().expect("poisoned");
        packs
            .iter()
            .map(|(id, size)| {
                (
                    *id,
                    remote.pack_object(id),
                    sealed_len(*size, SEGMENT_BYTES),
                )
            })
            .filter(|(_, o, want)| p.get(o) != Some(want))
            .map(|(id, o, _)| (id, o))
            .collect()
    };
    let done = AtomicU64::new(0);
    parallel(&todo, PARALLEL, |(id, object)| {
        let path = store.packs().path_of(id);
        if !required && !path.exists() {
            // Not in the image this push takes (gone before it): step 3
            // decides.
            return Ok(());
        }
        let n = remote.upload_file(object, &path)?;
        present.lock().expect("poisoned").insert(object.clone(), n);
        uploaded.lock().expect("poisoned").add(n);
        progress.add(1, n);
        done.fetch_add(1, Ordering::Relaxed);
        Ok(())
    })
}

fn put_if_missing(
    remote: &Remote,
    object: &str,
    path: &Path,
    present: &Mutex<HashMap<String, u64>>,
    uploaded: &Mutex<Count>,
    skipped: &mut Count,
) -> Result<()> {
    let there = present.lock().expect("poisoned").get(object).copied();
    let len = fs::metadata(path)
        .map_err(|e| Error::store_read(path, e))?
        .len();
    match there {
        Some(n) if n == sealed_len(len, SEGMENT_BYTES) => skipped.add(n),
        _ => {
            let n = remote.upload_file(object, path)?;
            present
                .lock()
                .expect("poisoned")
                .insert(object.to_string(), n);
            uploaded.lock().expect("poisoned").add(n);
        }
    }
    Ok(())
}

/// The image as a delta against the remote's base image, if the local
/// copy of that base is the pointer's and the delta is worth it (at most a
/// third of the base's compressed size): the base's reference, the delta
/// file and its reference.
fn delta_against_base(
    remote: &Remote,
    previous: Option<&Pointer>,
    base_path: &Path,
    image_path: &Path,
    image_hash: &str,
    stage: &Path,
) -> Result<Option<(ImageRef, std::path::PathBuf, DeltaRef)>> {
    let Some(prev) = previous else {
        return Ok(None);
    };
    if !base_path.exists() {
        return Ok(None);
    }
    let base_hash = hash_file(base_path)?;
    if remote.named(IMAGE_DIR, "image", &[base_hash.as_bytes()]) != prev.image.object {
        return Ok(None);
    }
    let delta_path = stage.join("catalog.delta");
    let n = super::image::encode(base_path, image_path, &delta_path)
        .map_err(|e| Error::store_write(&delta_path, e))?;
    let base_sealed = remote.head(&prev.image.object)?.unwrap_or(0);
    if n.saturating_mul(3) > base_sealed {
        return Ok(None);
    }
    let bytes = fs::metadata(image_path)
        .map_err(|e| Error::store_read(image_path, e))?
        .len();
    let object = remote.named(
        IMAGE_DIR,
        "delta",
        &[base_hash.as_bytes(), image_hash.as_bytes()],
    );
    Ok(Some((
        prev.image.clone(),
        delta_path,
        DeltaRef { object, bytes },
    )))
}

fn hash_file(path: &Path) -> Result<String> {
    let mut h = blake3::Hasher::new();
    let f = fs::File::open(path).map_err(|e| Error::store_read(path, e))?;
    h.update_reader(f).map_err(|e| Error::store_read(path, e))?;
    Ok(h.finalize().to_hex().to_string())
}

fn compress(from: &Path, to: &Path) -> Result<()> {
    let src = fs::File::open(from).map_err(|e| Error::store_read(from, e))?;
    let dst = durable::create_private_file(to).map_err(|e| Error::store_write(to, e))?;
    zstd::stream::copy_encode(src, dst, 3).map_err(|e| Error::store_write(to, e))
}
