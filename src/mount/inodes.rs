//! Inode numbers: stable while mounted, without a table of everything seen.
//!
//! An entry's number is a hash of its parent's number and its name (and,
//! for a snapshot's root, the snapshot's id, so a name that comes to mean
//! another snapshot gets another number). The same path always gets the
//! same number, also after the kernel forgot it and looks it up again, so
//! the table only holds what the kernel holds (lookups minus forgets).
//! Two paths hashing to one number (2⁻⁶³ each) are told apart by probing
//! the next numbers; `readdir`'s numbers are the unprobed hashes, which only
//! `ls -i` of such a pair would show.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::reader::FileIndex;
use crate::tree::{Entry, EntryKind, FileContent};
use crate::workspace::WorkspaceName;

use super::view::SnapInfo;

/// `/`.
pub const ROOT: u64 = 1;
/// `/snapshots`.
pub const SNAPSHOTS: u64 = 2;
/// `/workspaces`.
pub const WORKSPACES: u64 = 3;
/// Numbers below this are fixed ones.
const FIRST_HASHED: u64 = 16;

/// What an inode is.
#[derive(Debug)]
pub enum Node {
    Root,
    Snapshots,
    Workspaces,
    /// `workspaces/<user>`.
    User(Vec<u8>),
    /// `workspaces/<user>/<project>`.
    Project(WorkspaceName),
    /// `workspaces/<user>/<project>/latest`.
    Latest(WorkspaceName),
    /// A snapshot's root directory (under either view).
    SnapRoot(SnapInfo),
    /// An entry inside a snapshot.
    Entry {
        snap: Arc<SnapInfo>,
        entry: Entry,
    },
}

impl Node {
    /// The snapshot this node belongs to.
    pub fn snapshot(&self) -> Option<&SnapInfo> {
        match self {
            Node::SnapRoot(s) => Some(s),
            Node::Entry { snap, .. } => Some(snap),
            _ => None,
        }
    }
}

struct Slot {
    parent: u64,
    name: Vec<u8>,
    salt: Vec<u8>,
    node: Arc<Node>,
    lookups: u64,
    /// A file's chunk offsets, shared by its readers while it is known.
    index: Option<Arc<FileIndex>>,
}

/// The inodes the kernel knows.
pub struct Inodes {
    slots: Mutex<HashMap<u64, Slot>>,
}

/// The number `name` under `parent` gets (before probing).
pub fn number(parent: u64, name: &[u8], salt: &[u8]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&parent.to_le_bytes());
    h.update(&(name.len() as u64).to_le_bytes());
    h.update(name);
    h.update(salt);
    let b = h.finalize();
    let n = u64::from_le_bytes(b.as_bytes()[..8].try_into().expect("8 bytes")) >> 1;
    n.max(FIRST_HASHED)
}

impl Default for Inodes {
    fn default() -> Self {
        Self::new()
    }
}

impl Inodes {
    pub fn new() -> Inodes {
        let mut slots = HashMap::new();
        for (ino, node, name) in [
            (ROOT, Node::Root, &b""[..]),
            (SNAPSHOTS, Node::Snapshots, b"snapshots"),
            (WORKSPACES, Node::Workspaces, b"workspaces"),
        ] {
            slots.insert(
                ino,
                Slot {
                    parent: ROOT,
                    name: name.to_vec(),
                    salt: Vec::new(),
                    node: Arc::new(node),
                    lookups: u64::MAX / 2, // never forgotten
                    index: None,
                },
            );
        }
        Inodes {
            slots: Mutex::new(slots),
        }
    }

    /// The kernel looked `name` up under `parent` and gets `node`: its
    /// number, with one more lookup counted.
    pub fn remember(&self, parent: u64, name: &[u8], salt: &[u8], node: Node) -> u64 {
        let mut slots = self.slots.lock().expect("inodes poisoned");
        let mut ino = number(parent, name, salt);
        loop {
            match slots.get_mut(&ino) {
                Some(s) if s.parent == parent && s.name == name && s.salt == salt => {
                    s.lookups += 1;
                    return ino;
                }
                Some(_) => ino = ino.checked_add(1).unwrap_or(FIRST_HASHED),
                None => {
                    slots.insert(
                        ino,
                        Slot {
                            parent,
                            name: name.to_vec(),
                            salt: salt.to_vec(),
                            node: Arc::new(node),
                            lookups: 1,
                            index: None,
                        },
                    );
                    return ino;
                }
            }
        }
    }

    pub fn get(&self, ino: u64) -> Option<Arc<Node>> {
        let slots = self.slots.lock().expect("inodes poisoned");
        slots.get(&ino).map(|s| s.node.clone())
    }

    /// The parent of `ino` (`/` for the top).
    pub fn parent(&self, ino: u64) -> u64 {
        let slots = self.slots.lock().expect("inodes poisoned");
        slots.get(&ino).map_or(ROOT, |s| s.parent)
    }

    /// The kernel dropped `n` lookups of `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut slots = self.slots.lock().expect("inodes poisoned");
        if let Some(s) = slots.get_mut(&ino) {
            s.lookups = s.lookups.saturating_sub(n);
            if s.lookups == 0 {
                slots.remove(&ino);
            }
        }
    }

    /// The path of `ino` from the mount's root (for log lines).
    pub fn path(&self, ino: u64) -> Vec<u8> {
        let slots = self.slots.lock().expect("inodes poisoned");
        let mut parts = Vec::new();
        let mut at = ino;
        while at != ROOT {
            let Some(s) = slots.get(&at) else { break };
            parts.push(s.name.clone());
            at = s.parent;
        }
        parts.reverse();
        parts.join(&b'/')
    }

    /// The chunk offsets of file `ino`, made once and shared.
    pub fn file_index(&self, ino: u64) -> Option<Arc<FileIndex>> {
        let mut slots = self.slots.lock().expect("inodes poisoned");
        let s = slots.get_mut(&ino)?;
        if let Some(i) = &s.index {
            return Some(i.clone());
        }
        let Node::Entry { entry, .. } = &*s.node else {
            return None;
        };
        let EntryKind::File { content } = &entry.kind else {
            return None;
        };
        let i = Arc::new(FileIndex::new(FileContent::clone(content)));
        s.index = Some(i.clone());
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_and_forgetting_keeps_them() {
        let t = Inodes::new();
        let a = t.remember(SNAPSHOTS, b"a", b"", Node::User(b"a".to_vec()));
        let a2 = t.remember(SNAPSHOTS, b"a", b"", Node::User(b"a".to_vec()));
        assert_eq!(a, a2);
        assert_eq!(a, number(SNAPSHOTS, b"a", b""));
        assert_ne!(a, number(WORKSPACES, b"a", b""));
        assert_ne!(a, number(SNAPSHOTS, b"a", b"salt"));
        t.forget(a, 1);
        assert!(t.get(a).is_some(), "one lookup left");
        t.forget(a, 1);
        assert!(t.get(a).is_none());
        let again = t.remember(SNAPSHOTS, b"a", b"", Node::User(b"a".to_vec()));
        assert_eq!(again, a, "the same path gets the same number again");
        assert_eq!(t.path(a), b"snapshots/a");
        assert!(t.get(ROOT).is_some() && t.get(SNAPSHOTS).is_some());
    }
}
