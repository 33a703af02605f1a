//! The off-site copy: a store's packs, journals and catalog images,
//! encrypted and authenticated, on S3-compatible object storage or a
//! `file://` directory, written in an order that leaves the remote
//! restorable at every instant (see `push.rs`), and read back with
//! nothing but the bucket and the key (`pull.rs`, `fetch.rs`).
//!
//! Files: `bucket.rs` (object_store, synchronous), `crypto.rs` (keys),
//! `object.rs` (the encrypted object format), `pointer.rs` (the `latest`
//! object), `image.rs` (catalog image deltas), `config.rs` (a store's
//! remotes), `push.rs`, `pull.rs`,
//! `fetch.rs` (a restore's cache), `check.rs`, `error.rs`.
//!
//! The remote's layout under its prefix (FORMAT.md, *Remote*):
//!
//! ```text
//! config            plaintext JSON: remote format version, key id
//! latest            the pointer (encrypted)
//! data/<hex>        packs (name = keyed hash of the pack id)
//! catalog/<hex>     catalog images, zstd-compressed
//! journal/<hex>     journal files
//! ```

mod bucket;
pub mod check;
mod config;
mod crypto;
pub mod fetch;
mod image;
#[doc(hidden)]
pub mod object;
#[doc(hidden)]
pub mod pointer;
pub mod pull;
pub mod push;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::error::Result;
use crate::id::PackId;

pub use crate::error::{RemoteClass, RemoteError};
pub use bucket::{parse_url, Credentials, Location, Target};
pub use config::{
    credentials, list, load, remove, save, save_env_credentials, validate_name, PushState,
    RemoteConfig, Removed, CREDENTIAL_VARS,
};
pub use crypto::Keys;

use bucket::Bucket;
use object::{ObjectError, Opener, Sealer, HEADER_BYTES, SEGMENT_BYTES, TAG_BYTES};
use pointer::{Pointer, DATA_DIR, POINTER_OBJECT};

/// The remote format version (the `config` object's `version`).
pub const REMOTE_VERSION: u32 = 1;
/// The plaintext object at the remote's root.
pub const CONFIG_OBJECT: &str = "config";
/// Uploads or downloads in flight at once.
pub const PARALLEL: usize = 4;

/// An opened remote: its configuration, bucket and keys.
pub struct Remote {
    pub cfg: RemoteConfig,
    bucket: Bucket,
    keys: Keys,
}

impl Remote {
    /// Open remote `name` of the store at `store` (the only one when
    /// `None`), and check that its key is the remote's.
    pub fn open(store: &Path, name: Option<&str>) -> Result<Remote> {
        let r = Remote::open_unchecked(store, name)?;
        r.check_config()?;
        Ok(r)
    }

    /// Open without reading the remote yet.
    pub fn open_unchecked(store: &Path, name: Option<&str>) -> Result<Remote> {
        let cfg = config::load(store, name)?;
        let keys = Keys::load(&cfg.key_path(store))?;
        Remote::with(store, cfg, keys)
    }

    /// Open `cfg` with `keys` (`remote add`, before the config is saved).
    pub fn with(store: &Path, cfg: RemoteConfig, keys: Keys) -> Result<Remote> {
        let creds = config::credentials(store, &cfg.name)?;
        let bucket = Bucket::open(&cfg.label(), &cfg.location, creds.as_ref())?;
        Ok(Remote { cfg, bucket, keys })
    }

    pub fn label(&self) -> String {
        self.cfg.label()
    }

    fn config_json(&self) -> Value {
        json!({
            "format": "wsnap remote",
            "version": REMOTE_VERSION,
            "key_id": self.keys.key_id(),
            "created": crate::timespec::format_rfc3339(crate::timespec::now_ns()),
        })
    }

    /// Read the plaintext `config` object: the remote's format version and
    /// key id. `Ok(false)`: there is none (a new remote).
    fn read_config(&self) -> Result<bool> {
        let Some(bytes) = self.bucket.get(CONFIG_OBJECT)? else {
            return Ok(false);
        };
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.tampered(CONFIG_OBJECT, e.to_string()))?;
        if v["format"] != "wsnap remote" {
            return Err(self.tampered(CONFIG_OBJECT, "not a wsnap remote config".into()));
        }
        let version = v["version"].as_u64().unwrap_or(0) as u32;
        if version != REMOTE_VERSION {
            return Err(RemoteError::Format {
                remote: self.label(),
                object: CONFIG_OBJECT.into(),
                found: version,
                supported: REMOTE_VERSION,
            }
            .into());
        }
        let found = v["key_id"].as_str().unwrap_or("").to_string();
        if found != self.keys.key_id() {
            return Err(RemoteError::WrongKey {
                remote: self.label(),
                key_file: crate::escape::path(&self.cfg.key_file),
                expected: found,
                found: self.keys.key_id().to_string(),
            }
            .into());
        }
        Ok(true)
    }

    /// Check the remote's `config` object: it exists, has our format
    /// version and our key id.
    pub fn check_config(&self) -> Result<()> {
        if self.read_config()? {
            Ok(())
        } else {
            Err(RemoteError::Empty {
                remote: self.label(),
                detail: String::new(),
            }
            .into())
        }
    }

    /// `remote add`: check an existing remote's `config`, or write one to
    /// a new remote. Returns whether the remote already held a copy.
    pub fn init_config(&self) -> Result<bool> {
        if self.read_config()? {
            return Ok(true);
        }
        let text = serde_json::to_vec_pretty(&self.config_json()).expect("json");
        self.bucket.put(CONFIG_OBJECT, text)?;
        Ok(false)
    }

    pub(crate) fn tampered(&self, object: &str, detail: String) -> crate::Error {
        RemoteError::Tampered {
            remote: self.label(),
            object: object.to_string(),
            detail,
        }
        .into()
    }

    fn object_error(&self, object: &str, e: ObjectError) -> crate::Error {
        match e {
            ObjectError::Version(v) => RemoteError::Format {
                remote: self.label(),
                object: object.to_string(),
                found: u32::from(v),
                supported: u32::from(object::OBJECT_VERSION),
            }
            .into(),
            ObjectError::Damaged(d) => self.tampered(object, d),
        }
    }

    fn missing(&self, object: &str) -> crate::Error {
        RemoteError::Missing {
            remote: self.label(),
            object: object.to_string(),
        }
        .into()
    }

    /// The object name of pack `id`.
    pub fn pack_object(&self, id: &PackId) -> String {
        format!("{DATA_DIR}/{}", self.keys.object_name("pack", &[&id.0 .0]))
    }

    /// A content-named object: `dir/<keyed hash of kind and parts>`.
    pub fn named(&self, dir: &str, kind: &str, parts: &[&[u8]]) -> String {
        format!("{dir}/{}", self.keys.object_name(kind, parts))
    }

    /// Every object under `dir`, (name, size).
    pub fn list(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        self.bucket.list(dir)
    }

    /// Delete an object (gone already is fine).
    pub fn delete(&self, object: &str) -> Result<()> {
        self.bucket.delete(object)
    }

    /// The size of an object, `None` if missing.
    pub fn head(&self, object: &str) -> Result<Option<u64>> {
        self.bucket.head(object)
    }

    /// The newest pointer, `None` before the first push.
    pub fn read_pointer(&self) -> Result<Option<Pointer>> {
        let Some(bytes) = self.bucket.get(POINTER_OBJECT)? else {
            return Ok(None);
        };
        let plain = object::open(&self.keys, POINTER_OBJECT, &bytes)
            .map_err(|e| self.object_error(POINTER_OBJECT, e))?;
        match Pointer::decode(&plain) {
            Ok(p) => Ok(Some(p)),
            Err(Some(v)) => Err(RemoteError::Format {
                remote: self.label(),
                object: POINTER_OBJECT.into(),
                found: v as u32,
                supported: pointer::POINTER_VERSION as u32,
            }
            .into()),
            Err(None) => Err(self.tampered(
                POINTER_OBJECT,
                "authentic but not a pointer this wsnap understands".into(),
            )),
        }
    }

    /// The newest pointer; its absence is an error (nothing pushed yet).
    pub fn require_pointer(&self) -> Result<Pointer> {
        self.read_pointer()?.ok_or_else(|| {
            RemoteError::Empty {
                remote: self.label(),
                detail: ": it has a config but nothing was pushed yet".into(),
            }
            .into()
        })
    }

    /// Seal and write a small object held in memory.
    pub fn put_small(&self, object: &str, plain: &[u8]) -> Result<u64> {
        let sealed = object::seal(&self.keys, object, plain, SEGMENT_BYTES);
        let n = sealed.len() as u64;
        self.bucket.put(object, sealed)?;
        Ok(n)
    }

    /// Read and open a small object whole.
    pub fn get_small(&self, object: &str) -> Result<Vec<u8>> {
        let bytes = self
            .bucket
            .get(object)?
            .ok_or_else(|| self.missing(object))?;
        object::open(&self.keys, object, &bytes).map_err(|e| self.object_error(object, e))
    }

    /// Seal the file at `path` as `object` and upload it, streaming (at
    /// most a few segments and two multipart parts in memory). Returns
    /// the bytes uploaded.
    pub fn upload_file(&self, object: &str, path: &Path) -> Result<u64> {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|e| crate::Error::store_read(path, e))?;
        let len = f
            .metadata()
            .map_err(|e| crate::Error::store_read(path, e))?
            .len();
        let mut sealer = Sealer::new(&self.keys, object, len, SEGMENT_BYTES);
        let total = object::Header::decode(sealer.header())
            .expect("our own header")
            .object_len();
        let mut header = Some(sealer.header().to_vec());
        self.bucket.put_stream(object, total, || {
            if let Some(h) = header.take() {
                return Ok(Some(h));
            }
            let Some(n) = sealer.next_len() else {
                return Ok(None);
            };
            let mut buf = vec![0u8; n];
            f.read_exact(&mut buf)
                .map_err(|e| crate::Error::store_read(path, e))?;
            sealer.seal_next(&mut buf);
            Ok(Some(buf))
        })?;
        Ok(total)
    }

    /// Download `object`, open it segment by segment and write the
    /// plaintext to `out` (bounded memory). Nothing of a segment that
    /// fails authentication is written; the caller discards `out` on any
    /// error. Returns the plaintext length.
    pub fn download(&self, object: &str, out: &mut dyn Write) -> Result<u64> {
        let mut buf: Vec<u8> = Vec::new();
        let mut opener: Option<Opener<'_>> = None;
        let mut seg = 0u64;
        let mut written = 0u64;
        let mut failure: Option<crate::Error> = None;
        let found = self.bucket.get_stream(object, |piece| {
            buf.extend_from_slice(piece);
            loop {
                if opener.is_none() {
                    if buf.len() < HEADER_BYTES {
                        return Ok(());
                    }
                    let o = Opener::new(&self.keys, object, &buf)
                        .map_err(|e| self.object_error(object, e))?;
                    buf.drain(..HEADER_BYTES);
                    opener = Some(o);
                }
                let o = opener.as_ref().expect("set above");
                if seg >= o.header().segments() {
                    if buf.is_empty() {
                        return Ok(());
                    }
                    return Err(self.tampered(object, "bytes after the last segment".into()));
                }
                let n = o.header().plain_len(seg) as usize + TAG_BYTES;
                if buf.len() < n {
                    return Ok(());
                }
                let mut s: Vec<u8> = buf.drain(..n).collect();
                o.open_segment(seg, &mut s)
                    .map_err(|e| self.object_error(object, e))?;
                if let Err(e) = out.write_all(&s) {
                    failure = Some(crate::Error::store_write(PathBuf::from(object), e));
                    return Err(self.tampered(object, "write failed".into()));
                }
                written += s.len() as u64;
                seg += 1;
            }
        });
        if let Some(f) = failure {
            return Err(f);
        }
        if !found? {
            return Err(self.missing(object));
        }
        match &opener {
            Some(o) if seg == o.header().segments() && buf.is_empty() => Ok(written),
            _ => Err(self.tampered(object, "cut short".into())),
        }
    }

    /// Read plaintext bytes `range` of `object` (a range read: only the
    /// segments holding them are fetched and opened).
    pub fn read_range(&self, object: &str, range: std::ops::Range<u64>) -> Result<Vec<u8>> {
        let head = self.bucket.get_range(object, 0..HEADER_BYTES as u64)?;
        let o = Opener::new(&self.keys, object, &head).map_err(|e| self.object_error(object, e))?;
        let h = *o.header();
        if range.end > h.plaintext_len || range.start >= range.end {
            return Err(self.tampered(object, format!("no bytes {range:?} in it")));
        }
        let (segs, bytes) = h.segments_for(&range);
        let data = self.bucket.get_range(object, bytes)?;
        let plain = o
            .open_segments(segs.clone(), &data)
            .map_err(|e| self.object_error(object, e))?;
        let off = (range.start - segs.start * u64::from(h.segment_size)) as usize;
        Ok(plain[off..off + (range.end - range.start) as usize].to_vec())
    }
}

/// Run `f` over `items` on `threads` threads; stops handing out items at
/// the first error, which is returned (the others finish theirs).
pub(crate) fn parallel<T: Sync>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let next = Mutex::new(0usize);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<crate::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(items.len().max(1)) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let i = {
                    let mut n = next.lock().expect("poisoned");
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(item) = items.get(i) else {
                    return;
                };
                if let Err(e) = f(item) {
                    stop.store(true, Ordering::Relaxed);
                    first_error.lock().expect("poisoned").get_or_insert(e);
                    return;
                }
            });
        }
    });
    match first_error.into_inner().expect("poisoned") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What `remote add` did.
#[derive(Debug)]
pub struct Added {
    pub cfg: RemoteConfig,
    /// Where the key is (resolved against the store).
    pub key_path: PathBuf,
    /// The key was generated now (the admin must keep a copy elsewhere).
    pub generated: bool,
    /// The remote already held a copy made with this key.
    pub existing_copy: bool,
    /// Credentials from the environment were saved in the store.
    pub credentials_saved: bool,
}

/// `remote add`: check the remote with the key (an existing remote must
/// have been written with it; a new one gets its `config` object), then
/// save the configuration (and the environment's credentials) in the
/// store. `generate`: make a new key at `key_file` first. The store
/// directory is created if absent (a fresh machine restoring from the
/// remote needs no store). Nothing is saved if the remote cannot be used.
pub fn add(store: &Path, mut cfg: RemoteConfig, generate: bool) -> Result<Added> {
    validate_name(&cfg.name)?;
    if crate::layout::remote_config_path(store, &cfg.name).exists() {
        return Err(RemoteError::Config {
            name: cfg.name.clone(),
            detail: "is already configured in this store".into(),
        }
        .into());
    }
    let dir = crate::layout::remotes_dir(store);
    crate::durable::ensure_private_dir(&dir).map_err(|e| crate::Error::store_write(&dir, e))?;
    if cfg.key_file.as_os_str().is_empty() {
        // Relative to the store: the store can move with its key.
        cfg.key_file = crate::layout::remote_key_path(Path::new(""), &cfg.name);
    }
    let key_path = cfg.key_path(store);
    let keys = if generate {
        Keys::generate(&key_path)?
    } else {
        Keys::load(&key_path)?
    };
    let checked = (|| {
        let remote = Remote::with(store, cfg.clone(), keys)?;
        remote.init_config()
    })();
    let existing_copy = match checked {
        Ok(e) => e,
        Err(e) => {
            if generate {
                let _ = crate::durable::remove(&key_path);
            }
            return Err(e);
        }
    };
    save(store, &cfg)?;
    let credentials_saved = save_env_credentials(store, &cfg.name)?;
    Ok(Added {
        cfg,
        key_path,
        generated: generate,
        existing_copy,
        credentials_saved,
    })
}

/// Where the credentials of remote `name` are kept in the store.
pub fn credentials_path(store: &Path, name: &str) -> PathBuf {
    crate::layout::remote_credentials_path(store, name)
}

/// Scratch space for remote `name` (downloads being checked).
pub fn scratch_dir(store: &Path, name: &str) -> PathBuf {
    crate::layout::tmp_dir(&crate::layout::remote_cache_dir(store, name))
}
