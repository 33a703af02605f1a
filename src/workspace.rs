//! Workspace names: `<user>/<project>`, kept as two separate byte strings.
//!
//! The old backup naming `user_project_timestamp` could not tell
//! `a_b/c` from `a/b_c`; here the two names are separate columns and any
//! byte but `/` and NUL is valid in each.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::escape::Escaped;
use crate::tree::validate_name;

/// A workspace: `<root>/<user>/<project>/`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceName {
    pub user: Vec<u8>,
    pub project: Vec<u8>,
}

impl WorkspaceName {
    /// Build from two names; each must be a valid single path component.
    pub fn new(user: &[u8], project: &[u8]) -> Result<WorkspaceName> {
        for part in [user, project] {
            validate_name(part).map_err(|_| {
                Error::invalid(
                    "workspace",
                    format!("{:?} is not a valid user or project name", Escaped(part)),
                )
            })?;
        }
        Ok(WorkspaceName {
            user: user.to_vec(),
            project: project.to_vec(),
        })
    }

    /// Parse `USER/PROJECT` as given on the command line.
    pub fn parse(s: &OsStr) -> Result<WorkspaceName> {
        let b = s.as_bytes();
        let b = b.strip_suffix(b"/").unwrap_or(b);
        match b.iter().position(|&c| c == b'/') {
            Some(i) if !b[i + 1..].contains(&b'/') => WorkspaceName::new(&b[..i], &b[i + 1..]),
            _ => Err(Error::invalid(
                "workspace",
                format!("{:?}: expected USER/PROJECT", Escaped(s.as_bytes())),
            )),
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
