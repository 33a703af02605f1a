//! Reading a store back from a remote: the catalog image and packs,
//! fetched, authenticated and put into a store layout; and
//! `restore --remote`, which restores through the normal restore code
//! from a cache store `STORE/cache/NAME/` (the newest image as its
//! catalog, the packs one restore needs, fetched ahead in parallel, any
//! other on first use), kept under a size cap (least recently used packs
//! go first).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::catalog::Catalog;
use crate::durable;
use crate::error::{Error, Result};
use crate::id::PackId;
use crate::layout;
use crate::model::SnapshotRow;
use crate::progress::Progress;
use crate::restore::{RestoreOptions, RestoreReport};
use crate::select::{self, Node, Selector};
use crate::store::Store;
use crate::tree::{EntryKind, FileContent};
use crate::workspace::WorkspaceName;

use super::pointer::Pointer;
use super::{parallel, Remote, PARALLEL};

/// Default size cap of a restore cache's packs: 2 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 2 << 30;

/// A temporary file in `dir` for a download (removed unless committed).
fn temp_in(dir: &Path, what: &str) -> Result<(PathBuf, fs::File)> {
    durable::ensure_private_dir(dir).map_err(|e| Error::store_write(dir, e))?;
    let n: [u8; 8] = super::crypto::random();
    let path = dir.join(format!("{what}-{}.tmp", super::crypto::hex(&n)));
    let f = durable::create_private_file(&path).map_err(|e| Error::store_write(&path, e))?;
    Ok((path, f))
}

/// Download the newest catalog image `pointer` names into `tmp_dir`
/// (the base image, decompressed, and the delta applied to it if there is
/// one), checked to be a wsnap catalog; returns its path (a temporary file
/// the caller renames or removes).
pub fn fetch_image(remote: &Remote, pointer: &Pointer, tmp_dir: &Path) -> Result<PathBuf> {
    let base = fetch_base(remote, pointer, tmp_dir)?;
    let Some(d) = &pointer.delta else {
        return check_catalog(base);
    };
    let r = (|| {
        let (dpath, mut df) = temp_in(tmp_dir, "delta")?;
        let (path, f) = temp_in(tmp_dir, "catalog")?;
        let applied = (|| {
            remote.download(&d.object, &mut df)?;
            let mut w = std::io::BufWriter::new(f);
            let n = super::image::apply(&base, &dpath, &mut w)
                .map_err(|e| remote.tampered(&d.object, e.to_string()))?;
            let f = w
                .into_inner()
                .map_err(|e| Error::store_write(&path, e.into_error()))?;
            durable::sync_file(&f).map_err(|e| Error::store_write(&path, e))?;
            if n != d.bytes {
                return Err(remote.tampered(
                    &d.object,
                    format!("makes {n} bytes, the pointer says {}", d.bytes),
                ));
            }
            Ok(())
        })();
        let _ = fs::remove_file(&dpath);
        match applied {
            Ok(()) => Ok(path),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    })();
    let _ = fs::remove_file(&base);
    check_catalog(r?)
}

/// Keep `path` if it opens as a wsnap catalog, else remove it.
fn check_catalog(path: PathBuf) -> Result<PathBuf> {
    match Catalog::open_immutable(&path) {
        Ok(_) => Ok(path),
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(e)
        }
    }
}

/// The base image, decompressed, into a temporary file of `tmp_dir`.
fn fetch_base(remote: &Remote, pointer: &Pointer, tmp_dir: &Path) -> Result<PathBuf> {
    let (path, f) = temp_in(tmp_dir, "base")?;
    let r = (|| {
        let mut dec =
            zstd::stream::write::Decoder::new(f).map_err(|e| Error::store_write(&path, e))?;
        remote.download(&pointer.image.object, &mut dec)?;
        dec.flush().map_err(|e| Error::store_write(&path, e))?;
        let f = dec.into_inner();
        durable::sync_file(&f).map_err(|e| Error::store_write(&path, e))?;
        let n = f.metadata().map_err(|e| Error::store_read(&path, e))?.len();
        if n != pointer.image.bytes {
            return Err(remote.tampered(
                &pointer.image.object,
                format!(
                    "{n} bytes once decompressed, the pointer says {}",
                    pointer.image.bytes
                ),
            ));
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Download `object` (a pack), check it is a whole pack (its footer's id
/// is the hash of its body, and `expected` if given), and put it at its
/// place in `store_dir` durably. Returns its id and size.
pub fn fetch_pack(
    remote: &Remote,
    object: &str,
    expected: Option<&PackId>,
    store_dir: &Path,
) -> Result<(PackId, u64)> {
    let tmp = layout::tmp_dir(store_dir);
    let (path, mut f) = temp_in(&tmp, "pack")?;
    let r = (|| {
        let n = remote.download(object, &mut f)?;
        let bad = |d: String| remote.tampered(object, d);
        let pack_id =
            crate::pack::verify::whole_pack_id(&mut f, n, &path).map_err(|e| match e {
                Error::StoreRead { .. } => e,
                e => bad(e.detail()),
            })?;
        if expected.is_some_and(|x| *x != pack_id) || remote.pack_object(&pack_id) != object {
            return Err(bad("it holds another pack".into()));
        }
        let dest = layout::pack_path(store_dir, &pack_id);
        let dir = dest.parent().expect("a pack has a directory");
        durable::ensure_private_dir(dir).map_err(|e| Error::store_write(dir, e))?;
        durable::commit_file(&f, &path, &dest).map_err(|e| Error::store_write(&dest, e))?;
        Ok((pack_id, n))
    })();
    if r.is_err() {
        let _ = fs::remove_file(&path);
    }
    r
}

/// Where `restore --remote` restores from, and how.
#[derive(Clone, Debug)]
pub struct RemoteRestoreOptions {
    pub workspace: WorkspaceName,
    pub selector: Selector,
    pub restore: RestoreOptions,
    /// Packs kept in the cache after the restore (least recently used
    /// go first).
    pub cache_bytes: u64,
}

/// What `restore --remote` did.
#[derive(Debug)]
pub struct RemoteRestoreReport {
    pub snapshot: SnapshotRow,
    pub restore: RestoreReport,
    /// Packs fetched from the remote for this restore, and their bytes.
    pub packs_fetched: u64,
    pub bytes_fetched: u64,
    /// Whether the cache's catalog image was fetched (or reused).
    pub image_fetched: bool,
    /// Packs evicted from the cache afterwards.
    pub evicted: u64,
}

/// Make `STORE/cache/NAME/` a read-only store holding the remote's newest
/// catalog image. Returns its directory and whether the image was fetched.
fn prepare_cache(store_dir: &Path, remote: &Remote, pointer: &Pointer) -> Result<(PathBuf, bool)> {
    let dir = layout::remote_cache_dir(store_dir, &remote.cfg.name);
    durable::ensure_private_dir(&dir).map_err(|e| Error::store_write(&dir, e))?;
    for d in layout::init_dirs(&dir) {
        durable::ensure_private_dir(&d).map_err(|e| Error::store_write(&d, e))?;
    }
    for l in layout::init_lock_files(&dir) {
        if !l.exists() {
            drop(durable::create_private_file(&l).map_err(|e| Error::store_write(&l, e))?);
        }
    }
    let marker = dir.join("image");
    let catalog = layout::catalog_path(&dir);
    let current = fs::read_to_string(&marker).unwrap_or_default();
    if current.trim() == pointer.newest_image_object() && catalog.exists() {
        return Ok((dir, false));
    }
    let img = fetch_image(remote, pointer, &layout::tmp_dir(&dir))?;
    // The cache's catalog is only ever read, in rollback mode: no -wal to
    // pair with a replaced file; remove any left by another build.
    for p in &layout::catalog_files(&dir)[1..] {
        let _ = fs::remove_file(p);
    }
    durable::rename(&img, &catalog).map_err(|e| Error::store_write(&catalog, e))?;
    durable::replace_file(
        &marker,
        pointer.newest_image_object().as_bytes(),
        durable::FILE_MODE,
    )
    .map_err(|e| Error::store_write(&marker, e))?;
    Ok((dir, true))
}

/// `restore --remote`: restore a snapshot (or a path in it) from the
/// remote alone, through a bounded cache under `store_dir`.
pub fn restore(
    store_dir: &Path,
    remote: Arc<Remote>,
    opts: &RemoteRestoreOptions,
    progress: &Progress,
) -> Result<RemoteRestoreReport> {
    let pointer = remote.require_pointer()?;
    let (dir, image_fetched) = prepare_cache(store_dir, &remote, &pointer)?;
    let fetched = Arc::new(std::sync::Mutex::new((0u64, 0u64)));
    let lazy = {
        let remote = remote.clone();
        let fetched = fetched.clone();
        let dir = dir.clone();
        Box::new(move |id: &PackId, _path: &Path| -> Result<()> {
            let (_, n) = fetch_pack(&remote, &remote.pack_object(id), Some(id), &dir)?;
            let mut f = fetched.lock().expect("poisoned");
            f.0 += 1;
            f.1 += n;
            Ok(())
        })
    };
    let store = Store::open_with_fetcher(&dir, lazy)?;
    let catalog = store.catalog_for_reading()?;
    let snap = select::select(&catalog, &opts.workspace, &opts.selector)?;
    // The packs this restore reads: from the catalog's references alone
    // (the trees on the way to `path` are fetched on first use).
    let roots = match &opts.restore.path {
        None => vec![snap.root.0],
        Some(p) => match select::resolve(&store, &catalog, &snap, p)? {
            Node::Root(_) => vec![snap.root.0],
            Node::Entry(e) => match &e.kind {
                EntryKind::Dir { tree } => vec![tree.0],
                EntryKind::File { content } => match content {
                    FileContent::Chunks(c) => c.iter().map(|c| c.0).collect(),
                    FileContent::Lists(l) => l.iter().map(|l| l.0).collect(),
                },
                EntryKind::Symlink { .. } => vec![],
            },
        },
    };
    let packs = catalog.packs_reachable(&roots)?;
    drop(catalog);
    let missing: Vec<PackId> = packs
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !layout::pack_path(&dir, id).exists())
        .collect();
    parallel(&missing, PARALLEL, |id| {
        let (_, n) = fetch_pack(&remote, &remote.pack_object(id), Some(id), &dir)?;
        let mut f = fetched.lock().expect("poisoned");
        f.0 += 1;
        f.1 += n;
        Ok(())
    })?;
    // Used now: the newest in the cache's LRU order.
    let now = SystemTime::now();
    for (id, _) in &packs {
        if let Ok(f) = fs::File::options()
            .append(true)
            .open(layout::pack_path(&dir, id))
        {
            let _ = f.set_modified(now);
        }
    }
    let report = crate::restore::restore_with_progress(&store, &snap, &opts.restore, progress)?;
    let keep: std::collections::HashSet<PackId> = packs.iter().map(|(id, _)| *id).collect();
    drop(store);
    let evicted = evict(&dir, opts.cache_bytes, &keep)?;
    let (packs_fetched, bytes_fetched) = *fetched.lock().expect("poisoned");
    Ok(RemoteRestoreReport {
        snapshot: snap,
        restore: report,
        packs_fetched,
        bytes_fetched,
        image_fetched,
        evicted,
    })
}

/// Delete the least recently used packs of a cache until its packs fit in
/// `cap` bytes (those of the restore just done only if they alone exceed it).
fn evict(dir: &Path, cap: u64, keep: &std::collections::HashSet<PackId>) -> Result<u64> {
    let mut files: Vec<(SystemTime, u64, PathBuf, bool)> = layout::list_packs(dir)?
        .into_iter()
        .map(|f| {
            let t = fs::metadata(&f.path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let kept = f.id.is_some_and(|id| keep.contains(&id));
            (t, f.size_bytes, f.path, kept)
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    // Oldest first; this restore's packs last.
    files.sort_by_key(|f| (f.3, f.0));
    let mut n = 0;
    for (_, size, path, _) in files {
        if total <= cap {
            break;
        }
        durable::remove(&path).map_err(|e| Error::store_write(&path, e))?;
        total -= size;
        n += 1;
    }
    Ok(n)
}
