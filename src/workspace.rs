//! Workspace names: `<user>/<project>`, kept as two separate byte strings.
//!
//! The old backup naming `user_project_timestamp` could not tell
//! `a_b/c` from `a/b_c`; here the two names are separate columns and any
//! byte but `/` and NUL is valid in each.
//!
//! Also the rule every name read from anywhere obeys before it is joined to
//! a path ([`check_name`]: users, projects, tree entries, paths asked for).
//! This module sits below `error` (whose variants name workspaces): its
//! errors are its own, and `error.rs` turns them into an `Error`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::escape::Escaped;

/// Longest name accepted (Linux allows 255 bytes; we leave room).
pub const MAX_NAME_BYTES: usize = 1024;

/// Why bytes cannot be one path component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadName {
    Empty,
    /// `.` or `..`.
    Dot,
    Slash,
    Nul,
    /// Longer than [`MAX_NAME_BYTES`].
    TooLong,
}

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadName::Empty => "empty name",
            BadName::Dot => "name is . or ..",
            BadName::Slash => "name contains /",
            BadName::Nul => "name contains NUL",
            BadName::TooLong => "name too long",
        })
    }
}

/// Whether `name` can be one path component: not empty, not `.` or `..`,
/// no `/` or NUL, at most [`MAX_NAME_BYTES`].
pub fn check_name(name: &[u8]) -> Result<(), BadName> {
    if name.is_empty() {
        Err(BadName::Empty)
    } else if name == b"." || name == b".." {
        Err(BadName::Dot)
    } else if name.contains(&b'/') {
        Err(BadName::Slash)
    } else if name.contains(&0) {
        Err(BadName::Nul)
    } else if name.len() > MAX_NAME_BYTES {
        Err(BadName::TooLong)
    } else {
        Ok(())
    }
}

/// Bytes that do not name a workspace ([`WorkspaceName::new`],
/// [`WorkspaceName::parse`]); an `Error::Invalid` as an `Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadWorkspace {
    /// A user or project that is not one valid path component.
    Name(Vec<u8>),
    /// Not of the form `USER/PROJECT`.
    NotAPair(Vec<u8>),
}

impl fmt::Display for BadWorkspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadWorkspace::Name(n) => {
                write!(f, "{:?} is not a valid user or project name", Escaped(n))
            }
            BadWorkspace::NotAPair(s) => write!(f, "{:?}: expected USER/PROJECT", Escaped(s)),
        }
    }
}

/// A workspace: `<root>/<user>/<project>/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceName {
    pub user: Vec<u8>,
    pub project: Vec<u8>,
}

impl WorkspaceName {
    /// Build from two names; each must be a valid single path component.
    pub fn new(user: &[u8], project: &[u8]) -> Result<WorkspaceName, BadWorkspace> {
        for part in [user, project] {
            check_name(part).map_err(|_| BadWorkspace::Name(part.to_vec()))?;
        }
        Ok(WorkspaceName {
            user: user.to_vec(),
            project: project.to_vec(),
        })
    }

    /// Parse `USER/PROJECT` as given on the command line.
    pub fn parse(s: &OsStr) -> Result<WorkspaceName, BadWorkspace> {
        let b = s.as_bytes();
        let b = b.strip_suffix(b"/").unwrap_or(b);
        match b.iter().position(|&c| c == b'/') {
            Some(i) if !b[i + 1..].contains(&b'/') => WorkspaceName::new(&b[..i], &b[i + 1..]),
            _ => Err(BadWorkspace::NotAPair(s.as_bytes().to_vec())),
        }
    }

    /// `<root>/<user>/<project>`.
    pub fn dir_under(&self, root: &Path) -> PathBuf {
        root.join(OsStr::from_bytes(&self.user))
            .join(OsStr::from_bytes(&self.project))
    }

    pub fn to_os_string(&self) -> OsString {
        let mut v = self.user.clone();
        v.push(b'/');
        v.extend_from_slice(&self.project);
        OsString::from_vec(v)
    }
}

impl fmt::Display for WorkspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Escaped(&self.user), Escaped(&self.project))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        let w = WorkspaceName::parse(OsStr::new("a_b/c_d")).unwrap();
        assert_eq!(
            (w.user.as_slice(), w.project.as_slice()),
            (&b"a_b"[..], &b"c_d"[..])
        );
        assert!(WorkspaceName::parse(OsStr::new("a/b/")).is_ok());
        for bad in ["ab", "/b", "a/", "a/b/c", "../x", "a/.."] {
            assert!(WorkspaceName::parse(OsStr::new(bad)).is_err(), "{bad}");
        }
        let raw = OsStr::from_bytes(b"\xffu/p\xfe");
        assert_eq!(WorkspaceName::parse(raw).unwrap().user, b"\xffu");
    }
}
