//! Which file systems a store may live on, and whether it is writable.
//!
//! The store relies on two things a network or FUSE file system does not
//! give reliably: `flock` on `STORE/lock` and `STORE/readers` excluding
//! other processes (NFS emulates it with byte-range locks, or not at all,
//! and locks of a client that lost its lease are silently gone), and
//! SQLite's WAL mode, whose `-shm` index is shared memory through `mmap`
//! (SQLite's documentation: "WAL does not work over a network filesystem").
//! Both fail quietly, as two writers or a torn catalog. So a store on such a
//! file system is refused (by its `statfs` magic number) unless the admin
//! overrides it explicitly, at their own risk.

use std::path::Path;

use crate::error::{Error, Result};

/// File systems a store must not live on: `statfs(2)` `f_type` magic
/// numbers (`linux/magic.h` and the file systems' own headers) and the
/// names used in messages.
const UNSAFE: &[(u32, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    // Also virtiofs, sshfs, glusterfs, s3fs, rclone, …: all report FUSE.
    (0x6573_5546, "FUSE"),
    (0x0102_1997, "9p (v9fs)"),
    (0x00C3_6400, "Ceph"),
    (0x7375_7245, "Coda"),
    (0x5346_414F, "AFS"),
    (0x6B41_4653, "kAFS"),
    (0x564C, "NCP"),
    (0x0BD0_0BD0, "Lustre"),
    (0x4750_4653, "GPFS"),
    (0x2003_0528, "OrangeFS"),
    (0x786F_4256, "vboxsf"),
];

/// The name of the file system with `statfs` magic `magic` if a store must
/// not live on it, `None` if it is a local file system (or unknown, which
/// is taken as local: every network file system Linux ships is listed).
pub fn unsafe_fs_name(magic: u32) -> Option<&'static str> {
    UNSAFE
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// The `statfs` magic of the file system holding `path`, or of its nearest
/// existing ancestor (a store `snapshot` or `init` is about to create).
fn magic_of(path: &Path) -> std::io::Result<u32> {
    if let Some(m) = crate::failpoint::fs_magic() {
        return Ok(m);
    }
    let mut p = path;
    loop {
        match rustix::fs::statfs(p) {
            // `f_type` is a signed word of the platform's width; the magic
            // numbers are 32-bit (CIFS's has the top bit set).
            Ok(st) => return Ok(st.f_type as u32),
            Err(e) if e == rustix::io::Errno::NOENT => match p.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => p = parent,
                _ => {
                    return rustix::fs::statfs(".")
                        .map(|st| st.f_type as u32)
                        .map_err(Into::into)
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// Refuse a store on a network or FUSE file system unless `allow_unsafe`.
/// A file system that cannot be asked is let through (the store's own
/// opening reports a real problem with the path).
pub fn require_local(store_dir: &Path, allow_unsafe: bool) -> Result<()> {
    let Ok(magic) = magic_of(store_dir) else {
        return Ok(());
    };
    match unsafe_fs_name(magic) {
        None => Ok(()),
        Some(name) if allow_unsafe => {
            tracing::warn!(
                "store {} is on {name} (a network or FUSE file system); going on because the \
                 override was given: locks and the catalog may not be safe there",
                crate::escape::path(store_dir)
            );
            Ok(())
        }
        Some(name) => Err(Error::UnsafeFileSystem {
            path: store_dir.to_path_buf(),
            fs: format!("{name} (statfs magic {magic:#x})"),
        }),
    }
}

/// Whether `dir` can be written: false on a read-only mount (even for
/// root) or without write permission. Readers then take the read-only path
/// ([`crate::lock::readers_shared`], [`crate::catalog::Catalog::open`]).
pub fn is_read_only(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_and_fuse_file_systems_are_refused() {
        for (magic, name) in [
            (0x6969, "NFS"),
            (0x517B, "SMB"),
            (0xFF53_4D42, "CIFS"),
            (0xFE53_4D42, "SMB2"),
            (0x6573_5546, "FUSE"),
            (0x0102_1997, "9p (v9fs)"),
            (0x00C3_6400, "Ceph"),
        ] {
            assert_eq!(unsafe_fs_name(magic), Some(name), "{magic:#x}");
        }
    }

    #[test]
    fn local_file_systems_pass() {
        for magic in [
            0xEF53u32,   // ext2/3/4
            0x5846_5342, // XFS
            0x9123_683E, // Btrfs
            0x0102_1994, // tmpfs
            0x2FC1_2FC1, // ZFS
            0x794C_7630, // overlayfs
            0xF2F5_2010, // F2FS
        ] {
            assert_eq!(unsafe_fs_name(magic), None, "{magic:#x}");
        }
    }

    #[test]
    fn signed_f_type_of_cifs_maps_to_its_magic() {
        // On 32-bit targets `f_type` is an i32: CIFS's magic is negative.
        let signed: i32 = 0xFF53_4D42u32 as i32;
        assert_eq!(unsafe_fs_name(signed as u32), Some("CIFS"));
        let wide: i64 = 0xFF53_4D42;
        assert_eq!(unsafe_fs_name(wide as u32), Some("CIFS"));
    }

    #[test]
    fn the_local_test_directory_passes_and_absent_paths_use_their_parent() {
        let t = tempfile::tempdir().unwrap();
        require_local(t.path(), false).unwrap();
        require_local(&t.path().join("not/yet/made"), false).unwrap();
    }
}
