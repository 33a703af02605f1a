//! What a run snapshots: its [`Source`]s (one directory each, opened
//! without following symlinks below the root the admin named) and what
//! else the root holds (the [`Scan`]: entries that are not workspaces,
//! directories that cannot be listed, workspaces gone since the previous
//! full run).

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::catalog::CatalogPool;
use crate::dirfd::Dir;
use crate::error::Result;
use crate::escape;
use crate::walk::{self, Rejected};
use crate::workspace::WorkspaceName;

use super::SnapshotOptions;

/// One directory to snapshot as a workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub workspace: WorkspaceName,
    /// Where the walk starts: a directory the admin named (`--root`, an
    /// import's old backup root), opened by path.
    pub base: PathBuf,
    /// The components below `base` whose contents become the snapshot
    /// (`[user, project]` for a normal run, `[name]` for an old rsync copy),
    /// each opened with `O_NOFOLLOW`: a symlink there is refused.
    pub below: Vec<Vec<u8>>,
    /// Recorded snapshot time; `None` means when its walk started.
    pub time_ns: Option<i64>,
    /// Take no parent snapshot (no stat cache): read every file.
    pub reread: bool,
}

impl Source {
    /// `<root>/<user>/<project>` of a normal run.
    pub fn workspace(root: &Path, ws: WorkspaceName, time_ns: Option<i64>) -> Source {
        Source {
            base: root.to_path_buf(),
            below: vec![ws.user.clone(), ws.project.clone()],
            workspace: ws,
            time_ns,
            reread: false,
        }
    }

    /// The directory as a path, for messages only (never opened by it).
    pub fn dir(&self) -> PathBuf {
        self.below
            .iter()
            .fold(self.base.clone(), |p, c| p.join(OsStr::from_bytes(c)))
    }

    /// Open `base` by path, as every source of a run with this base may
    /// share it (see [`Source::open_in`]).
    pub(super) fn open_base(&self) -> std::result::Result<Dir, Unopenable> {
        Dir::open_path(&self.base, true).map_err(|source| Unopenable::Base {
            path: self.base.clone(),
            source,
        })
    }

    /// Open the directory: each component below `base` with `O_NOFOLLOW`,
    /// from `base` already opened by the run (`opened`, see
    /// [`Source::open_base`]) or else opened now by path. `Err` says which
    /// one is not a directory, and why.
    pub(super) fn open_in(&self, opened: Option<&Dir>) -> std::result::Result<Dir, Unopenable> {
        let own_base;
        let base = match opened {
            Some(d) => d,
            None => {
                own_base = self.open_base()?;
                &own_base
            }
        };
        let mut at = self.base.clone();
        let mut dir: Option<Dir> = None;
        for c in &self.below {
            at.push(OsStr::from_bytes(c));
            let next =
                walk::open_workspace_dir(dir.as_ref().unwrap_or(base), c).map_err(|why| {
                    Unopenable::Below {
                        path: at.clone(),
                        why,
                    }
                })?;
            dir = Some(next);
        }
        // No component below the base: not made by this crate's callers.
        dir.map_or_else(|| self.open_base(), Ok)
    }
}

/// Why a [`Source`]'s directory cannot be opened: the workspace fails
/// (with this as its reason, paths escaped), the run goes on.
#[derive(Debug)]
pub enum Unopenable {
    /// The directory the admin named.
    Base { path: PathBuf, source: io::Error },
    /// A user or project directory below it.
    Below {
        path: PathBuf,
        why: walk::NotAWorkspaceDir,
    },
}

impl fmt::Display for Unopenable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unopenable::Base { path, source } => write!(f, "{}: {source}", escape::path(path)),
            Unopenable::Below { path, why } => write!(f, "{} {why}", escape::path(path)),
        }
    }
}

/// What a run found under the root besides its workspaces.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    /// The root, when the run covers every workspace under it; `None` for
    /// a run of named workspaces or an import.
    pub root: Option<PathBuf>,
    /// Entries that are not workspace directories (see
    /// [`RunReport::rejected`](super::RunReport::rejected)).
    pub rejected: Vec<Rejected>,
    /// Directories that cannot be listed (see
    /// [`RunReport::unlistable`](super::RunReport::unlistable)).
    pub unlistable: Vec<Rejected>,
}

/// What [`run`](super::run) would snapshot: the named workspaces (or every
/// one under the root), each from `<root>/<user>/<project>` at
/// `opts.time_ns`; and what else the root holds (a [`Scan`] with the root
/// set when no workspace was named).
pub fn sources(opts: &SnapshotOptions) -> Result<(Vec<Source>, Scan)> {
    let (workspaces, scan) = if opts.workspaces.is_empty() {
        let found = walk::discover(&opts.root)?;
        (
            found.workspaces,
            Scan {
                root: Some(opts.root.clone()),
                rejected: found.rejected,
                unlistable: found.unlistable,
            },
        )
    } else {
        (opts.workspaces.clone(), Scan::default())
    };
    let sources = workspaces
        .into_iter()
        .map(|ws| Source {
            reread: opts.reread,
            ..Source::workspace(&opts.root, ws, opts.time_ns)
        })
        .collect();
    Ok((sources, scan))
}

/// When the previous full run finished, and how many workspaces it
/// snapshotted.
type PreviousFullRun = (i64, usize);

/// For a run over the whole of `root`: the workspaces the previous full
/// run of that root snapshotted that are not among `sources` now (those under an
/// unlistable directory are failed, not gone), and when that run finished
/// and how many it snapshotted.
pub(super) fn gone_since_previous_full_run(
    pool: &CatalogPool,
    sources: &[Source],
    unlistable: &[Rejected],
    root: &Path,
) -> Result<(Vec<WorkspaceName>, Option<PreviousFullRun>)> {
    let key = crate::catalog::full_run_key(root);
    let previous = pool.with(|c| match c.last_full_run(&key)? {
        Some(run) => Ok(Some((
            run.finished_ns,
            c.workspaces_started_between(run.started_ns, run.finished_ns)?,
        ))),
        None => Ok(None),
    })?;
    let Some((finished_ns, before)) = previous else {
        return Ok((Vec::new(), None));
    };
    let now: std::collections::HashSet<&WorkspaceName> =
        sources.iter().map(|s| &s.workspace).collect();
    let failed = |w: &WorkspaceName| {
        let full = [&w.user[..], b"/", &w.project[..]].concat();
        unlistable
            .iter()
            .any(|u| u.path == w.user || u.path == full)
    };
    let gone = before
        .iter()
        .filter(|w| !now.contains(w) && !failed(w))
        .cloned()
        .collect();
    Ok((gone, Some((finished_ns, before.len()))))
}
