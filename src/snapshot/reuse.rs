//! The stat cache: may a file's chunks be taken from the parent snapshot
//! without reading it?
//!
//! Pure, so it is tested with tables. Reuse needs the same size, mtime (ns),
//! ctime (ns) and inode as recorded, and the recorded entry must not be
//! "racy": a file modified within [`RACY_WINDOW_NS`] of the moment the parent
//! run started could have been written again after we read it without its
//! timestamps moving (coarse file system clocks), so it is read again. This
//! is git's racy-index rule.

#[cfg(test)]
use crate::tree::FileContent;
use crate::tree::{Entry, EntryKind, FLAG_CHANGED_DURING_READ};

/// Two seconds covers the coarsest timestamp granularity in use (FAT).
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// What `lstat` says about a file now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatKey {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
}

/// True when `parent` (recorded by a run that started at
/// `parent_started_ns`) still describes the file whose stat is `now`.
pub fn can_reuse(parent: &Entry, now: &StatKey, parent_started_ns: i64) -> bool {
    matches!(parent.kind, EntryKind::File { .. })
        && parent.flags & FLAG_CHANGED_DURING_READ == 0
        && parent.size == now.size
        && parent.mtime_ns == now.mtime_ns
        && parent.ctime_ns == now.ctime_ns
        && parent.inode == now.inode
        && parent.mtime_ns.max(parent.ctime_ns) < parent_started_ns.saturating_sub(RACY_WINDOW_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(flags: u8, kind: EntryKind) -> Entry {
        Entry {
            name: b"f".to_vec(),
            flags,
            mode: 0o644,
            mtime_ns: 100,
            ctime_ns: 200,
            inode: 7,
            uid: 0,
            gid: 0,
            size: 10,
            kind,
        }
    }

    #[test]
    fn reuse_table() {
        let file = EntryKind::File {
            content: FileContent::Chunks(vec![]),
        };
        let same = StatKey {
            size: 10,
            mtime_ns: 100,
            ctime_ns: 200,
            inode: 7,
        };
        let later = 10 * RACY_WINDOW_NS;
        let cases: &[(&str, Entry, StatKey, i64, bool)] = &[
            ("unchanged", entry(0, file.clone()), same, later, true),
            (
                "size",
                entry(0, file.clone()),
                StatKey { size: 11, ..same },
                later,
                false,
            ),
            (
                "mtime",
                entry(0, file.clone()),
                StatKey {
                    mtime_ns: 101,
                    ..same
                },
                later,
                false,
            ),
            (
                "ctime",
                entry(0, file.clone()),
                StatKey {
                    ctime_ns: 201,
                    ..same
                },
                later,
                false,
            ),
            (
                "inode",
                entry(0, file.clone()),
                StatKey { inode: 8, ..same },
                later,
                false,
            ),
            (
                "racy",
                entry(0, file.clone()),
                same,
                200 + RACY_WINDOW_NS,
                false,
            ),
            (
                "just not racy",
                entry(0, file.clone()),
                same,
                201 + RACY_WINDOW_NS,
                true,
            ),
            (
                "changed during read",
                entry(FLAG_CHANGED_DURING_READ, file),
                same,
                later,
                false,
            ),
            (
                "was a symlink",
                entry(
                    0,
                    EntryKind::Symlink {
                        target: b"x".to_vec(),
                    },
                ),
                same,
                later,
                false,
            ),
        ];
        for (name, parent, now, started, want) in cases {
            assert_eq!(can_reuse(parent, now, *started), *want, "{name}");
        }
    }
}
