//! Finding workspaces under the root, and deciding what to exclude.
//!
//! A workspace is `<root>/<user>/<project>/`: every real directory two levels
//! down. A symlink or a file where a user or project directory should be is
//! never followed: it is reported (see [`Rejected`]). A user or project
//! directory that cannot be opened or listed (permissions, root squash, a
//! FUSE mount, EIO) is a failure, never left out quietly
//! ([`Discovery::unlistable`]). Excludes are gitignore patterns matched
//! with the `ignore` crate against the path relative to the workspace root;
//! the defaults are the old backup script's. Users' own `.gitignore` files are
//! *not* honoured: git-ignored data is often exactly what needs backing up.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

use crate::dirfd::{self, Dir, Kind};
use crate::error::{Error, Result};
use crate::workspace::WorkspaceName;

/// Excluded by default, as the rsync script did.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git/",
    "__pycache__/",
    "*.pyc",
    "node_modules/",
    ".venv/",
    "venv/",
];

/// Compiled exclude patterns.
pub struct Excludes {
    matcher: Gitignore,
    /// The same patterns matched on an entry's own name, when they allow
    /// it (see [`ByName`]): a walk asks once per entry.
    by_name: Option<ByName>,
}

/// Patterns that look only at an entry's own name: each a literal name or
/// `*` then a literal suffix, optionally `/` (directories only), with no
/// `!`, no other `/` and no other glob syntax. Gitignore matches such a
/// pattern at any depth (`**/` before it) against the last component, so
/// `name == literal` or `name.ends_with(suffix)` decides exactly what the
/// glob engine would (bytes, case-sensitive); the defaults are all such.
#[derive(Debug, Default)]
struct ByName {
    /// (literal, directories only)
    names: Vec<(Vec<u8>, bool)>,
    /// (suffix after the `*`, directories only)
    suffixes: Vec<(Vec<u8>, bool)>,
}

impl ByName {
    /// `None` when any pattern needs the glob engine.
    fn of(patterns: &[&str]) -> Option<ByName> {
        let mut by = ByName::default();
        for p in patterns {
            if p.is_empty() || p.starts_with('#') {
                continue; // blank or a comment: gitignore skips it too
            }
            let (body, only_dir) = match p.strip_suffix('/') {
                Some(b) => (b, true),
                None => (*p, false),
            };
            let plain = |s: &str| {
                s.bytes()
                    .all(|c| c > b' ' && c != 0x7f && !b"!/\\*?[]{}".contains(&c))
            };
            match body.strip_prefix('*') {
                Some(suffix) if plain(suffix) => by.suffixes.push((suffix.into(), only_dir)),
                None if !body.is_empty() && plain(body) => by.names.push((body.into(), only_dir)),
                _ => return None,
            }
        }
        Some(by)
    }

    fn matches(&self, name: &[u8], is_dir: bool) -> bool {
        self.names
            .iter()
            .any(|(n, only_dir)| (is_dir || !only_dir) && n == name)
            || self
                .suffixes
                .iter()
                .any(|(s, only_dir)| (is_dir || !only_dir) && name.ends_with(s))
    }
}

impl Excludes {
    /// The defaults plus `extra` (gitignore syntax; `!pat` re-includes):
    /// what `snapshot` leaves out.
    pub fn new(extra: &[String]) -> Result<Excludes> {
        let all: Vec<&str> = DEFAULT_EXCLUDES
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
            .collect();
        Excludes::build(&all)
    }

    /// Exactly `patterns`, without the defaults: what `rewrite --exclude`
    /// removes from stored snapshots. The same syntax and matching as
    /// [`Excludes::new`], so a pattern means the same in both commands.
    pub fn only(patterns: &[String]) -> Result<Excludes> {
        let all: Vec<&str> = patterns.iter().map(String::as_str).collect();
        Excludes::build(&all)
    }

    fn build(patterns: &[&str]) -> Result<Excludes> {
        let mut b = GitignoreBuilder::new("/");
        for p in patterns {
            b.add_line(None, p)
                .map_err(|e| Error::invalid("exclude pattern", format!("{p:?}: {e}")))?;
        }
        let matcher = b
            .build()
            .map_err(|e| Error::invalid("exclude pattern", e.to_string()))?;
        Ok(Excludes {
            matcher,
            by_name: ByName::of(patterns),
        })
    }

    /// Whether `rel` (relative to the workspace root) is excluded.
    pub fn is_excluded(&self, rel: &[u8], is_dir: bool) -> bool {
        match &self.by_name {
            Some(by) => {
                let name = rel.rsplit(|&c| c == b'/').next().unwrap_or(rel);
                by.matches(name, is_dir)
            }
            None => self.excluded_by(rel, is_dir).is_some(),
        }
    }

    /// [`Excludes::is_excluded`] of `dir_rel/name`, the path joined only
    /// when the patterns need more than the name.
    pub fn is_excluded_at(&self, dir_rel: &[u8], name: &[u8], is_dir: bool) -> bool {
        match &self.by_name {
            Some(by) => by.matches(name, is_dir),
            None => self.is_excluded(&crate::tree::join_rel(dir_rel, name), is_dir),
        }
    }

    /// The pattern (as given) that excludes `rel`, if one does: the last
    /// matching line wins, as in gitignore, so a later `!pattern` keeps it.
    pub fn excluded_by(&self, rel: &[u8], is_dir: bool) -> Option<&str> {
        match self
            .matcher
            .matched(Path::new(OsStr::from_bytes(rel)), is_dir)
        {
            Match::Ignore(glob) => Some(glob.original()),
            Match::None | Match::Whitelist(_) => None,
        }
    }
}

/// Levels of nesting that keep their directory open while its
/// subdirectories are walked (in parallel). Deeper levels walk one entry at a
/// time and take their directory back from each subdirectory's `..`, so a
/// walk holds at most this many descriptors per thread, however deep the
/// tree (see `snap_deep` in `snapshot/traverse.rs` and `restore.rs`).
pub const HELD_LEVELS: usize = 128;

/// Stack of each walk thread. Snapshot and restore recurse once per level
/// of nesting (a few KiB a level, with rayon's frames); this covers trees
/// nested tens of thousands deep. Only touched pages use memory.
const WALK_STACK_BYTES: usize = 256 << 20;

/// The thread pool snapshot and restore walk in: one thread per core, each
/// with 256 MiB of stack (the global pool's threads have 2 MiB).
pub fn pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("wsnap-walk-{i}"))
            .stack_size(WALK_STACK_BYTES)
            .build()
            .expect("cannot start the walk threads")
    })
}

/// What is under the workspace root.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Every workspace, sorted by (user, project).
    pub workspaces: Vec<WorkspaceName>,
    /// Entries where a user or project directory should be and is not one
    /// (a symlink, a file, a name that is not valid): never followed, each
    /// reported by the run as a skipped entry.
    pub rejected: Vec<Rejected>,
    /// User or project directories that cannot be opened, listed or
    /// stat'ed (EACCES, EIO…): whatever they hold is not backed up, so
    /// each is a failure of the run (a failed user or workspace), never
    /// a workspace that quietly vanished.
    pub unlistable: Vec<Rejected>,
}

/// An entry under the root that cannot be a workspace, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// `user` or `user/project`, relative to the root (raw bytes).
    pub path: Vec<u8>,
    pub reason: String,
}

/// Every workspace under `root`: real directories two levels down, found
/// through directory descriptors (see `dirfd.rs`) so a symlinked user or
/// project is seen as one and never followed.
pub fn discover(root: &Path) -> Result<Discovery> {
    let root_dir = Dir::open_path(root, true).map_err(|source| Error::WorkspaceRoot {
        path: root.to_path_buf(),
        source,
    })?;
    let list = |dir: &Dir| -> std::io::Result<Vec<Vec<u8>>> {
        let mut names = dir.names()?;
        names.sort_unstable();
        Ok(names)
    };
    let mut found = Discovery::default();
    let users = list(&root_dir).map_err(|e| {
        Error::invalid(
            "workspace root",
            format!("{}: {e}", crate::escape::path(root)),
        )
    })?;
    for user in users {
        let user_dir = match root_dir.open_dir(&user) {
            Ok(d) => d,
            Err(e) if dirfd::is_not_followed(&e) => {
                let reason = match root_dir.stat_at(&user) {
                    Ok(s) => NotAWorkspaceDir::of_kind(s.kind()).to_string(),
                    Err(_) => e.to_string(),
                };
                found.rejected.push(Rejected { path: user, reason });
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // deleted meanwhile
            Err(e) => {
                found.unlistable.push(Rejected {
                    path: user,
                    reason: format!("cannot be opened: {e}"),
                });
                continue;
            }
        };
        let projects = match list(&user_dir) {
            Ok(p) => p,
            Err(e) => {
                found.unlistable.push(Rejected {
                    path: user,
                    reason: format!("cannot be listed: {e}"),
                });
                continue;
            }
        };
        for project in projects {
            let path = [&user[..], b"/", &project[..]].concat();
            match user_dir.stat_at(&project) {
                Ok(s) if s.kind() == Kind::Dir => {}
                Ok(s) => {
                    found.rejected.push(Rejected {
                        path,
                        reason: NotAWorkspaceDir::of_kind(s.kind()).to_string(),
                    });
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // deleted meanwhile
                Err(e) => {
                    found.unlistable.push(Rejected {
                        path,
                        reason: format!("cannot be examined: {e}"),
                    });
                    continue;
                }
            }
            match WorkspaceName::new(&user, &project) {
                Ok(w) => found.workspaces.push(w),
                Err(e) => found.rejected.push(Rejected {
                    path,
                    reason: Error::from(e).to_string(),
                }),
            }
        }
    }
    Ok(found)
}

/// Open `name` in `dir` as a user or project directory: a real directory,
/// never a symlink followed. `Err` says what it is instead.
pub fn open_workspace_dir(dir: &Dir, name: &[u8]) -> std::result::Result<Dir, NotAWorkspaceDir> {
    match dir.open_dir(name) {
        Ok(d) => Ok(d),
        Err(e) if dirfd::is_not_followed(&e) => Err(match dir.stat_at(name) {
            Ok(s) => NotAWorkspaceDir::of_kind(s.kind()),
            Err(_) => NotAWorkspaceDir::Unopenable(e),
        }),
        Err(e) => Err(NotAWorkspaceDir::Unopenable(e)),
    }
}

/// Why a user or project entry cannot be opened as a workspace directory
/// (shown after its path: "… is a symlink, not followed").
#[derive(Debug)]
pub enum NotAWorkspaceDir {
    Symlink,
    /// A file, a FIFO, a device: anything but a directory.
    NotADirectory,
    /// Opening it failed (permissions, an I/O error).
    Unopenable(std::io::Error),
}

impl NotAWorkspaceDir {
    fn of_kind(kind: Kind) -> NotAWorkspaceDir {
        match kind {
            Kind::Symlink => NotAWorkspaceDir::Symlink,
            _ => NotAWorkspaceDir::NotADirectory,
        }
    }
}

impl std::fmt::Display for NotAWorkspaceDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAWorkspaceDir::Symlink => {
                f.write_str("is a symlink, not followed (a workspace must be a real directory)")
            }
            NotAWorkspaceDir::NotADirectory => {
                f.write_str("is not a directory (a workspace must be a real directory)")
            }
            NotAWorkspaceDir::Unopenable(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_extra_excludes() {
        let ex = Excludes::new(&["*.tmp".into(), "/build/".into(), "!keep.pyc".into()]).unwrap();
        assert!(ex.is_excluded(b".git", true));
        assert!(!ex.is_excluded(b".git", false));
        assert!(ex.is_excluded(b"src/__pycache__", true));
        assert!(ex.is_excluded(b"a/b.pyc", false));
        assert!(!ex.is_excluded(b"a/keep.pyc", false));
        assert!(ex.is_excluded(b"x/y.tmp", false));
        assert!(ex.is_excluded(b"build", true));
        assert!(!ex.is_excluded(b"src/build", true));
        assert!(ex.is_excluded(b"node_modules", true));
        assert!(ex.is_excluded(b"venv", true));
        assert!(!ex.is_excluded(b"main.py", false));
    }

    /// Matching on the name alone decides as the glob engine does, for
    /// every pattern it takes; any other pattern leaves it to the engine.
    #[test]
    fn matching_by_name_agrees_with_the_glob_engine() {
        let sets: &[&[&str]] = &[
            &[],
            &[
                "*.tmp", "build/", "data.bin", "# note", "", "*.tar.gz", "é.txt",
            ],
            &["*"],
            &["*/"],
        ];
        let names: &[&[u8]] = &[
            b".git",
            b"x.git",
            b".gitx",
            b"a.pyc",
            b".pyc",
            b"pyc",
            b"b.PYC",
            b"venv",
            b"venvs",
            b"node_modules",
            b"\xff.pyc",
            b"a.tar.gz",
            b"tar.gz",
            b".tar.gz",
            b"x.tmp",
            b"build",
            b"data.bin",
            b"data.bin.x",
            b"\xc3\xa9.txt",
            b"e.txt",
            b"# note",
        ];
        for extra in sets {
            let extra: Vec<String> = extra.iter().map(|p| p.to_string()).collect();
            let ex = Excludes::new(&extra).unwrap();
            assert!(ex.by_name.is_some(), "{extra:?}");
            for name in names {
                for rel in [name.to_vec(), [b"d/e/", *name].concat()] {
                    for is_dir in [false, true] {
                        let by_engine = ex.excluded_by(&rel, is_dir).is_some();
                        assert_eq!(ex.is_excluded_at(b"d/e", name, is_dir), {
                            let deep = [b"d/e/", *name].concat();
                            ex.excluded_by(&deep, is_dir).is_some()
                        });
                        assert_eq!(
                            ex.is_excluded(&rel, is_dir),
                            by_engine,
                            "{extra:?} {} dir {is_dir}",
                            rel.escape_ascii()
                        );
                    }
                }
            }
        }
        for p in [
            "!keep.pyc",
            "/build/",
            "a/b",
            "*.{a,b}",
            "x?",
            "[ab]",
            "a b",
            "\\#x",
            "**",
            "*a*",
            "/",
        ] {
            let ex = Excludes::new(&[p.to_string()]).unwrap();
            assert!(ex.by_name.is_none(), "{p:?}");
        }
    }

    #[test]
    fn only_the_given_patterns_and_which_one_matched() {
        let ex = Excludes::only(&[
            "secret.env".into(),
            "keys/".into(),
            "!keep/secret.env".into(),
        ])
        .unwrap();
        assert!(!ex.is_excluded(b".git", true), "no defaults");
        assert_eq!(ex.excluded_by(b"secret.env", false), Some("secret.env"));
        assert_eq!(ex.excluded_by(b"a/b/secret.env", false), Some("secret.env"));
        assert_eq!(ex.excluded_by(b"keep/secret.env", false), None);
        assert_eq!(ex.excluded_by(b"conf/keys", true), Some("keys/"));
        assert_eq!(
            ex.excluded_by(b"conf/keys", false),
            None,
            "dir-only pattern"
        );
        assert!(Excludes::only(&["[z-a]".into()]).is_err());
    }
}
