//! Listing `snapshots/`: every snapshot of the store, so never held whole
//! (2.88 M names at 10,000 × 288). The workspaces are taken at `opendir`;
//! each `readdir` reads the names of the workspace it is in
//! ([`Gen::old_names_of`], kept for the next call). An offset past `.` and
//! `..` is (workspace index + 1) << [`POS_BITS`] | (next position in it).
//! Names come workspace by workspace, not sorted (`ls` sorts them).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex};

use fuser::{Errno, FileType, INodeNo, ReplyDirectory};

use crate::workspace::WorkspaceName;

use super::inodes::{self, ROOT, SNAPSHOTS};
use super::view::{Gen, SnapInfo};

/// Bits of a `snapshots/` offset that give the position in a workspace.
const POS_BITS: u32 = 24;

/// One workspace's snapshots under `snapshots/`: (name, snapshot).
type OldNames = Arc<Vec<(Vec<u8>, SnapInfo)>>;

/// An open `snapshots/`.
pub(super) struct SnapshotsDir {
    workspaces: Vec<WorkspaceName>,
    current: Mutex<Option<(usize, OldNames)>>,
}

impl SnapshotsDir {
    /// `snapshots/` as of generation `gen`: its workspaces, by name.
    pub(super) fn open(gen: &Gen) -> Result<SnapshotsDir, Errno> {
        let users = gen.users().map_err(|_| Errno::EIO)?;
        let workspaces = users
            .iter()
            .flat_map(|(u, ps)| {
                ps.iter().map(|p| WorkspaceName {
                    user: u.clone(),
                    project: p.clone(),
                })
            })
            .collect();
        Ok(SnapshotsDir {
            workspaces,
            current: Mutex::new(None),
        })
    }

    /// Add to `reply` the entries after `offset` until it is full; a
    /// workspace's names are read through the generation `gen` gives.
    pub(super) fn read(
        &self,
        gen: impl Fn() -> Result<Arc<Gen>, Errno>,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Result<(), Errno> {
        let dots = [(1, SNAPSHOTS, "."), (2, ROOT, "..")];
        for (off, ino, name) in dots.into_iter().skip(offset as usize) {
            if reply.add(INodeNo(ino), off, FileType::Directory, OsStr::new(name)) {
                return Ok(());
            }
        }
        let (mut wi, mut pos) = match offset {
            0..=2 => (0, 0),
            o => (
                ((o >> POS_BITS) - 1) as usize,
                (o & ((1 << POS_BITS) - 1)) as usize,
            ),
        };
        while wi < self.workspaces.len() {
            let names = {
                let mut cur = self.current.lock().expect("poisoned");
                match &*cur {
                    Some((i, n)) if *i == wi => n.clone(),
                    _ => {
                        let n = Arc::new(
                            gen()?
                                .old_names_of(&self.workspaces[wi])
                                .map_err(|_| Errno::EIO)?,
                        );
                        *cur = Some((wi, n.clone()));
                        n
                    }
                }
            };
            for (n, s) in names.iter().skip(pos) {
                pos += 1;
                if pos >= 1 << POS_BITS {
                    break; // more than 16 M snapshots in one workspace
                }
                let off = ((wi as u64 + 1) << POS_BITS) | pos as u64;
                let ino = inodes::number(SNAPSHOTS, n, &s.id.0 .0);
                if reply.add(INodeNo(ino), off, FileType::Directory, OsStr::from_bytes(n)) {
                    return Ok(());
                }
            }
            wi += 1;
            pos = 0;
        }
        Ok(())
    }
}
