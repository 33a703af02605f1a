//! Finding workspaces under the root, and deciding what to exclude.
//!
//! A workspace is `<root>/<user>/<project>/`: every real directory two levels
//! down (symlinks are not followed). Excludes are gitignore patterns matched
//! with the `ignore` crate against the path relative to the workspace root;
//! the defaults are the old backup script's. Users' own `.gitignore` files are
//! *not* honoured: git-ignored data is often exactly what needs backing up.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;

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
}

impl Excludes {
    /// The defaults plus `extra` (gitignore syntax; `!pat` re-includes).
    pub fn new(extra: &[String]) -> Result<Excludes> {
        let mut b = GitignoreBuilder::new("/");
        for p in DEFAULT_EXCLUDES
            .iter()
            .copied()
            .chain(extra.iter().map(String::as_str))
        {
            b.add_line(None, p)
                .map_err(|e| Error::invalid("exclude pattern", format!("{p:?}: {e}")))?;
        }
        let matcher = b
            .build()
            .map_err(|e| Error::invalid("exclude pattern", e.to_string()))?;
        Ok(Excludes { matcher })
    }

    /// Whether `rel` (relative to the workspace root) is excluded.
    pub fn is_excluded(&self, rel: &[u8], is_dir: bool) -> bool {
        matches!(
            self.matcher
                .matched(Path::new(OsStr::from_bytes(rel)), is_dir),
            Match::Ignore(_)
        )
    }
}

/// Every workspace under `root`, sorted by (user, project).
pub fn discover(root: &Path) -> Result<Vec<WorkspaceName>> {
    let read = |dir: &Path| {
        fs::read_dir(dir).map_err(|e| {
            Error::invalid(
                "workspace root",
                format!(
                    "{}: {e} (set --root or SCITEX_WORKSPACE_ROOT)",
                    crate::escape::path(dir)
                ),
            )
        })
    };
    let mut out = Vec::new();
    for user in read(root)? {
        let Ok(user) = user else { continue };
        if !user.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(projects) = fs::read_dir(user.path()) else {
            continue; // an unreadable user directory: reported as missing by `status`
        };
        for project in projects.flatten() {
            if !project.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if let Ok(w) =
                WorkspaceName::new(user.file_name().as_bytes(), project.file_name().as_bytes())
            {
                out.push(w);
            }
        }
    }
    out.sort();
    Ok(out)
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
}
