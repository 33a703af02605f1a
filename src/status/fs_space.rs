//! The disk facts `status` reports: the size of the store's own files (from
//! `stat`, no pack is opened) and the free space of its file system
//! (`statvfs`), against the [`MinFree`] threshold.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::store::Store;

/// The free-space threshold (the CLI parses `--min-free` into it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinFree {
    Bytes(u64),
    /// Percent of the file system's size (as `df` counts: available to
    /// unprivileged users over total).
    Percent(f64),
}

impl MinFree {
    /// The default: 10 % of the file system.
    pub const DEFAULT: MinFree = MinFree::Percent(10.0);

    /// The threshold in bytes for a file system of `size_bytes`.
    pub fn bytes(self, size_bytes: u64) -> u64 {
        match self {
            MinFree::Bytes(b) => b,
            MinFree::Percent(p) => (size_bytes as f64 * p / 100.0).ceil() as u64,
        }
    }
}

/// Sizes of the store's own files.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreSize {
    pub pack_bytes: u64,
    pub catalog_bytes: u64,
    /// Packs being written (`tmp/`).
    pub tmp_bytes: u64,
}

impl StoreSize {
    pub fn total(&self) -> u64 {
        self.pack_bytes + self.catalog_bytes + self.tmp_bytes
    }
}

/// The store's file system.
#[derive(Clone, Copy, Debug)]
pub struct FsSpace {
    pub size_bytes: u64,
    /// Available to unprivileged users (`df`'s "Avail").
    pub avail_bytes: u64,
    pub min_free_bytes: u64,
}

impl FsSpace {
    pub fn free_percent(&self) -> f64 {
        if self.size_bytes == 0 {
            0.0
        } else {
            self.avail_bytes as f64 * 100.0 / self.size_bytes as f64
        }
    }

    /// True when less than the threshold is available.
    pub fn is_low(&self) -> bool {
        self.avail_bytes < self.min_free_bytes
    }
}

/// Sizes of `packs/`, `tmp/` and the catalog files (from `stat`).
pub(super) fn store_size(store: &Store) -> Result<StoreSize> {
    let len = |p: &Path| fs::symlink_metadata(p).map_or(0, |m| m.len());
    let mut s = StoreSize::default();
    for p in crate::layout::catalog_files(store.dir()) {
        s.catalog_bytes += len(&p);
    }
    s.pack_bytes = store.packs().list()?.iter().map(|f| f.size_bytes).sum();
    if let Ok(rd) = fs::read_dir(crate::layout::tmp_dir(store.dir())) {
        for f in rd.flatten() {
            s.tmp_bytes += f.metadata().map_or(0, |m| m.len());
        }
    }
    Ok(s)
}

/// The file system holding `dir`, with `min_free` in bytes.
pub(super) fn fs_space(dir: &Path, min_free: MinFree) -> Result<FsSpace> {
    let (size_bytes, avail_bytes) = statvfs(dir)?;
    Ok(FsSpace {
        size_bytes,
        avail_bytes,
        min_free_bytes: min_free.bytes(size_bytes),
    })
}

/// (size, available) bytes of the file system holding `dir` (statvfs).
fn statvfs(dir: &Path) -> Result<(u64, u64)> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        Error::store_read(
            dir,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"),
        )
    })?;
    // SAFETY: statvfs fills a plain C struct; zeroed is a valid initial value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated path and a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(Error::store_read(dir, std::io::Error::last_os_error()));
    }
    // The field types differ between platforms (u32 or u64): widen them all.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let (frsize, blocks, bavail) = (
        u64::from(st.f_frsize),
        u64::from(st.f_blocks),
        u64::from(st.f_bavail),
    );
    Ok((blocks.saturating_mul(frsize), bavail.saturating_mul(frsize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_free_in_bytes() {
        assert_eq!(MinFree::Percent(50.0).bytes(1000), 500);
        assert_eq!(MinFree::Percent(10.0).bytes(1001), 101);
        assert_eq!(MinFree::Bytes(7).bytes(1000), 7);
    }
}
