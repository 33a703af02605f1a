//! What an [`Error`](super::Error) carries: which versioned structure
//! ([`Format`], [`Location`]), which piece of damaged store data
//! ([`Object`]) with what is wrong with it ([`Problem`]), and what was not
//! found ([`Missing`]); each with the words messages use for it.

use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use crate::escape::{self, Escaped};
use crate::id::{ChunkId, Id, ListId, PackId, SnapshotId, TreeId};
use crate::workspace::{BadName, WorkspaceName};

fn esc(p: &std::path::Path) -> String {
    escape::path(p)
}

/// Which versioned structure [`Error::UnsupportedFormat`](super::Error::UnsupportedFormat) is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    Catalog,
    Pack,
    Journal,
    Tree,
    ChunkList,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Catalog => "catalog",
            Format::Pack => "pack",
            Format::Journal => "journal",
            Format::Tree => "tree",
            Format::ChunkList => "chunk list",
        })
    }
}

/// Where a structure of an unsupported format is, as far as known.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// Not known where the version was read (a decoder of bytes).
    Unknown,
    File(PathBuf),
    Pack(PackId),
    Blob(Id),
}

pub(super) fn unsupported(
    what: Format,
    found: i64,
    supported: &RangeInclusive<i64>,
    at: &Location,
) -> String {
    let thing = match at {
        Location::Unknown => what.to_string(),
        Location::File(p) => format!("{what} {}", esc(p)),
        Location::Pack(id) => format!("{what} {id}"),
        Location::Blob(id) => format!("{what} {id}"),
    };
    let (oldest, newest) = (*supported.start(), *supported.end());
    if supported.contains(&found) {
        return format!(
            "{thing} has format version {found}; this wsnap writes only version {newest}, to which a writer upgrades it first (when it takes the writer lock)"
        );
    }
    let reads = if oldest == newest {
        format!("version {newest}")
    } else {
        format!("versions {oldest} to {newest}")
    };
    let why = if found > newest {
        "it was written by a newer wsnap (upgrade wsnap to read it), or it is damaged"
    } else {
        "it is older than any version this wsnap can upgrade, or it is damaged"
    };
    format!("{thing} has format version {found}; this wsnap reads {reads}: {why}")
}

/// A piece of store data, as a place where damage was found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Object {
    /// A file among the packs, by path.
    PackFile(PathBuf),
    /// A pack the catalog lists, by id.
    Pack(PackId),
    /// The record at byte `offset` of the pack or journal named before it.
    Record {
        offset: u64,
    },
    /// A blob whose kind is not known where the damage was found.
    Blob(Id),
    Chunk(ChunkId),
    Tree(TreeId),
    ChunkList(ListId),
    /// A journal file.
    Journal(PathBuf),
    /// A snapshot: its journal record or its catalog row.
    Snapshot(SnapshotId),
    /// The catalog's contents (SQLite's own errors are
    /// [`Error::Catalog`](super::Error::Catalog)).
    Catalog,
    /// One `meta` value of the catalog.
    CatalogMeta(String),
    /// One row of a catalog table.
    CatalogRow {
        table: &'static str,
        row: i64,
    },
}

impl Object {
    /// As the location of an unsupported format.
    pub(super) fn location(&self) -> Location {
        match self {
            Object::PackFile(p) | Object::Journal(p) => Location::File(p.clone()),
            Object::Pack(id) => Location::Pack(*id),
            Object::Blob(id) => Location::Blob(*id),
            Object::Chunk(id) => Location::Blob(id.0),
            Object::Tree(id) => Location::Blob(id.0),
            Object::ChunkList(id) => Location::Blob(id.0),
            _ => Location::Unknown,
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::PackFile(p) => write!(f, "pack {}", esc(p)),
            Object::Pack(id) => write!(f, "pack {id}"),
            Object::Record { offset } => write!(f, "record at offset {offset}"),
            Object::Blob(id) => write!(f, "blob {id}"),
            Object::Chunk(id) => write!(f, "chunk {id}"),
            Object::Tree(id) => write!(f, "tree {id}"),
            Object::ChunkList(id) => write!(f, "chunk list {id}"),
            Object::Journal(p) => write!(f, "journal {}", esc(p)),
            Object::Snapshot(id) => write!(f, "snapshot {}", id.0.short()),
            Object::Catalog => f.write_str("catalog"),
            Object::CatalogMeta(key) => write!(f, "catalog meta {key}"),
            Object::CatalogRow { table, row } => write!(f, "catalog {table} row {row}"),
        }
    }
}

/// What is wrong with damaged store data.
#[derive(Debug)]
#[non_exhaustive]
pub enum Problem {
    /// The bytes hash to `found`, not to `expected`, the id they are read as.
    HashMismatch { expected: Id, found: Id },
    /// `what` ends before its fields do: `need` bytes at `offset`, `have` left.
    Truncated {
        what: &'static str,
        offset: u64,
        need: u64,
        have: u64,
    },
    /// Bytes left over after the last field of `what`.
    TrailingBytes { what: &'static str, count: u64 },
    /// `what` does not start with its magic bytes: not wsnap's.
    BadMagic { what: &'static str },
    /// A pack whose end is not its footer (cut short, most likely).
    NoFooter,
    /// The checksum stored with `what` does not match its bytes.
    ChecksumMismatch { what: &'static str },
    /// A count or length of `what` other than the one it must be.
    Length {
        what: &'static str,
        found: u64,
        expected: u64,
    },
    /// A tree entry's name that cannot be a path component (hostile or damaged).
    BadName { name: Vec<u8>, why: BadName },
    /// Named (by the catalog or a tree) but not stored.
    NotStored,
    /// Not in the catalog's index.
    NotIndexed,
    /// A blob of another kind than the one asked for.
    KindMismatch {
        found: &'static str,
        expected: &'static str,
    },
    /// A pack record other than the one the catalog describes (both summed
    /// up by `pack/format.rs`: kind, id, lengths).
    UnlikeCatalog { found: String, expected: String },
    /// Reading it failed (a pack shorter than the catalog says).
    Unreadable(io::Error),
    /// A field of `what` at `offset` that its decoder rejects.
    Malformed {
        what: &'static str,
        offset: u64,
        detail: String,
    },
    /// Anything else, as its checker says it.
    Invalid(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::HashMismatch { found, .. } => write!(f, "hashes to {found}"),
            Problem::Truncated {
                what,
                offset,
                need,
                have,
            } => write!(
                f,
                "{what} truncated: need {need} bytes at offset {offset}, have {have}"
            ),
            Problem::TrailingBytes { what, count } => {
                write!(f, "{what} has {count} trailing bytes")
            }
            Problem::BadMagic { what } => write!(f, "not a wsnap {what} (bad magic)"),
            Problem::NoFooter => f.write_str("pack footer missing (truncated pack?)"),
            Problem::ChecksumMismatch { what } => write!(f, "{what} checksum mismatch"),
            Problem::Length {
                what,
                found,
                expected,
            } => write!(f, "{found} {what}, expected {expected}"),
            Problem::BadName { name, why } => write!(f, "tree entry {:?}: {why}", Escaped(name)),
            Problem::NotStored => f.write_str("not stored"),
            Problem::NotIndexed => f.write_str("not in the catalog"),
            Problem::KindMismatch { found, expected } => {
                write!(f, "is a {found}, expected a {expected}")
            }
            Problem::UnlikeCatalog { found, expected } => {
                write!(f, "holds {found}, the catalog expects {expected}")
            }
            Problem::Unreadable(e) => write!(f, "cannot be read: {e}"),
            Problem::Malformed {
                what,
                offset,
                detail,
            } => write!(f, "{what} at offset {offset}: {detail}"),
            Problem::Invalid(detail) => f.write_str(detail),
        }
    }
}

/// `pack P: record at offset 64: blob B: hashes to X`.
pub(super) fn damage(at: &[Object], problem: &Problem) -> String {
    let mut s = String::new();
    for o in at {
        s.push_str(&format!("{o}: "));
    }
    s.push_str(&problem.to_string());
    s
}

/// What [`Error::NotFound`](super::Error::NotFound) did not find.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// A workspace with no snapshot in the store.
    Snapshots(WorkspaceName),
    /// No snapshot of `workspace` at or before `at_ns`; its oldest is
    /// `oldest` (time, id).
    SnapshotAt {
        workspace: WorkspaceName,
        at_ns: i64,
        oldest: (i64, SnapshotId),
    },
    /// No snapshot (of `workspace`, if given) has an id starting with `prefix`.
    SnapshotId {
        prefix: String,
        workspace: Option<WorkspaceName>,
    },
    /// `path` is not in snapshot `snapshot` of `workspace`.
    Path {
        workspace: WorkspaceName,
        snapshot: SnapshotId,
        path: Vec<u8>,
    },
    /// `component`, on the way to `path`, is not a directory.
    NotADirectory { path: Vec<u8>, component: Vec<u8> },
    /// `path` is in no snapshot (of `workspace`): it has no history.
    History {
        workspace: Option<WorkspaceName>,
        path: Vec<u8>,
    },
    /// A snapshot forgotten (by a prune) since it was selected.
    Forgotten {
        snapshot: SnapshotId,
        workspace: Option<WorkspaceName>,
    },
    /// No snapshot at this catalog row.
    SnapshotRow(i64),
    /// No workspace of this user has a snapshot in the store.
    User(Vec<u8>),
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let of = |ws: &Option<WorkspaceName>| {
            ws.as_ref().map(|w| format!("of {w} ")).unwrap_or_default()
        };
        match self {
            Missing::Snapshots(ws) => write!(
                f,
                "no snapshots of workspace {ws} in this store (see `wsnap list`)"
            ),
            Missing::SnapshotAt {
                workspace,
                at_ns,
                oldest: (oldest_ns, oldest),
            } => write!(
                f,
                "no snapshot of {workspace} at or before {}; the oldest is {} ({})",
                crate::human::local_time(*at_ns),
                crate::human::local_time(*oldest_ns),
                oldest.0.short()
            ),
            Missing::SnapshotId { prefix, workspace } => {
                write!(f, "no snapshot {}has id {prefix}", of(workspace))
            }
            Missing::Path {
                workspace,
                snapshot,
                path,
            } => write!(
                f,
                "{} not found in snapshot {} of {workspace}",
                Escaped(path),
                snapshot.0.short()
            ),
            Missing::NotADirectory { path, component } => write!(
                f,
                "{}: {} is not a directory",
                Escaped(path),
                Escaped(component)
            ),
            Missing::History { workspace, path } => write!(
                f,
                "{} is in no snapshot {}(see `wsnap ls`)",
                Escaped(path),
                of(workspace)
            ),
            Missing::Forgotten {
                snapshot,
                workspace,
            } => write!(
                f,
                "snapshot {} {}was forgotten meanwhile",
                snapshot.0.short(),
                of(workspace)
            ),
            Missing::SnapshotRow(row) => write!(f, "no snapshot at catalog row {row}"),
            Missing::User(user) => write!(
                f,
                "no workspace of user {} has snapshots in this store (see `wsnap list`)",
                Escaped(user)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Error;
    use super::*;

    fn ws() -> WorkspaceName {
        WorkspaceName::new(b"alice", b"thesis").unwrap()
    }

    /// The texts of before the variants were typed (tests and admins grep
    /// for them).
    #[test]
    fn missing_reads_as_before() {
        let id = SnapshotId(Id::of(b"s"));
        let short = id.0.short();
        let cases = [
            (
                Missing::Snapshots(ws()),
                "no snapshots of workspace alice/thesis in this store (see `wsnap list`)"
                    .to_string(),
            ),
            (
                Missing::SnapshotAt {
                    workspace: ws(),
                    at_ns: 0,
                    oldest: (5_000_000_000, id),
                },
                format!(
                    "no snapshot of alice/thesis at or before {}; the oldest is {} ({short})",
                    crate::human::local_time(0),
                    crate::human::local_time(5_000_000_000)
                ),
            ),
            (
                Missing::SnapshotId {
                    prefix: "ffff".into(),
                    workspace: Some(ws()),
                },
                "no snapshot of alice/thesis has id ffff".into(),
            ),
            (
                Missing::SnapshotId {
                    prefix: "ffff".into(),
                    workspace: None,
                },
                "no snapshot has id ffff".into(),
            ),
            (
                Missing::Path {
                    workspace: ws(),
                    snapshot: id,
                    path: b"a/\x1bb".to_vec(),
                },
                format!("a/\\x1bb not found in snapshot {short} of alice/thesis"),
            ),
            (
                Missing::NotADirectory {
                    path: b"a/b/c".to_vec(),
                    component: b"b".to_vec(),
                },
                "a/b/c: b is not a directory".into(),
            ),
            (
                Missing::History {
                    workspace: Some(ws()),
                    path: b"src/x.py".to_vec(),
                },
                "src/x.py is in no snapshot of alice/thesis (see `wsnap ls`)".into(),
            ),
            (
                Missing::Forgotten {
                    snapshot: id,
                    workspace: Some(ws()),
                },
                format!("snapshot {short} of alice/thesis was forgotten meanwhile"),
            ),
        ];
        for (m, text) in cases {
            assert_eq!(Error::NotFound(m).to_string(), text);
        }
    }

    #[test]
    fn damage_names_its_places_outside_in_and_check_drops_the_advice() {
        let (blob, found) = (Id::of(b"b"), Id::of(b"c"));
        let e = Error::corrupt(Problem::HashMismatch {
            expected: blob,
            found,
        })
        .within(Object::Chunk(ChunkId(blob)))
        .within(Object::Record { offset: 64 })
        .within(Object::PackFile("/s/packs/ab/p.pack".into()));
        let detail = format!(
            "pack /s/packs/ab/p.pack: record at offset 64: chunk {blob}: hashes to {found}"
        );
        assert_eq!(e.detail(), detail);
        assert_eq!(
            e.to_string(),
            format!("store data is corrupt: {detail}. Run `wsnap check` to see what it affects")
        );
        // Anything but damage keeps its places to itself.
        let e = Error::invalid("id", "x").within(Object::Catalog);
        assert_eq!(e.to_string(), "invalid id: x");
    }

    #[test]
    fn an_unsupported_format_says_which_way_it_differs() {
        let at = |found, supported| {
            Error::UnsupportedFormat {
                what: Format::Catalog,
                found,
                supported,
                location: Location::File("/s/catalog.sqlite".into()),
            }
            .detail()
        };
        let newer = at(3, 1..=2);
        assert!(newer.starts_with("catalog /s/catalog.sqlite has format version 3; this wsnap reads versions 1 to 2: it was written by a newer wsnap (upgrade wsnap to read it), or it is damaged"), "{newer}");
        assert!(at(0, 1..=2).contains("older than any version this wsnap can upgrade"));
        assert!(at(1, 1..=2).contains("writes only version 2"));
        // Blobs too: a tree or chunk list of a newer wsnap.
        let mut tree = crate::tree::Tree::default().encode();
        tree[4] = 3;
        let id = TreeId(Id::of(&tree));
        let e = crate::tree::decode_blob(&tree)
            .unwrap_err()
            .within(Object::Tree(id));
        assert_eq!(e.kind(), super::super::ErrorKind::Store);
        assert!(
            e.to_string().starts_with(&format!(
                "tree {id} has format version 3; this wsnap reads versions 1 to 2"
            )),
            "{e}"
        );
        let mut list = crate::chunklist::split(&[ChunkId(id.0)]).remove(0).bytes;
        list[4] = 9;
        assert!(matches!(
            crate::chunklist::decode(&list),
            Err(Error::UnsupportedFormat {
                what: Format::ChunkList,
                found: 9,
                ..
            })
        ));
    }
}
