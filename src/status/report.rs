//! What `status` is asked and what it answers: the options, the Nagios
//! [`Level`], and the [`StatusReport`] with everything found. Plain data;
//! the rules that set the level are in `assess.rs`.

use std::path::PathBuf;

use crate::model::RunRow;
use crate::walk::Rejected;
use crate::workspace::WorkspaceName;

use super::fs_space::{FsSpace, MinFree, StoreSize};

/// A Nagios plugin level. `Ord` is by severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Ok,
    Warning,
    Unknown,
    Critical,
}

impl Level {
    /// The Nagios exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub fn exit_code(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
            Level::Unknown => 3,
        }
    }

    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn label(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }
}

/// What to check.
#[derive(Clone, Debug)]
pub struct StatusOptions {
    /// The workspace root (`$SCITEX_WORKSPACE_ROOT`).
    pub root: PathBuf,
    /// A workspace's newest snapshot may be this old (and the last run must
    /// have finished this recently).
    pub max_age_ns: i64,
    pub min_free: MinFree,
    /// "Now", in ns since the epoch.
    pub now_ns: i64,
}

/// One workspace's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkspaceState {
    /// Under the root, newest snapshot within `max_age`.
    Ok,
    /// Under the root, newest snapshot older than `max_age`.
    Stale,
    /// Under the root, no snapshot at all.
    Missing,
    /// Has snapshots but is no longer under the root (informational).
    NotUnderRoot,
}

impl WorkspaceState {
    pub fn label(self) -> &'static str {
        match self {
            WorkspaceState::Ok => "ok",
            WorkspaceState::Stale => "stale",
            WorkspaceState::Missing => "missing",
            WorkspaceState::NotUnderRoot => "not_under_root",
        }
    }
}

/// One workspace in the report.
#[derive(Clone, Debug)]
pub struct WorkspaceStatus {
    pub workspace: WorkspaceName,
    pub state: WorkspaceState,
    pub snapshots: u64,
    /// Recorded time of the newest snapshot.
    pub newest_ns: Option<i64>,
}

/// A finding that lowers the level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub level: Level,
    pub message: String,
}

/// An entry the last run could not store.
#[derive(Clone, Debug)]
pub struct RunSkip {
    pub workspace: WorkspaceName,
    pub path: Vec<u8>,
    pub reason: String,
}

/// Why `snapshot --prune` keeps every snapshot of a workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldReason {
    /// Its newest snapshots are missing entries (unreadable, vanished).
    Skipped,
    /// It is under the root, has snapshots, and the last run did not
    /// snapshot it (it could not be read).
    Failed,
}

impl HeldReason {
    pub fn label(self) -> &'static str {
        match self {
            HeldReason::Skipped => "skipped",
            HeldReason::Failed => "failed",
        }
    }
}

/// A workspace whose retention is held, and since when.
#[derive(Clone, Debug)]
pub struct HeldRetention {
    pub workspace: WorkspaceName,
    pub reason: HeldReason,
    /// Skipped: the time of the first snapshot of the current streak that
    /// skipped entries. Failed: the start of the first run after its newest
    /// snapshot (its newest snapshot's time if no run is recorded since).
    pub since_ns: i64,
}

/// An off-site copy and how far it lags behind the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteLag {
    pub name: String,
    pub url: String,
    /// When the last successful push wrote its pointer.
    pub last_push_ns: Option<i64>,
    /// The newest snapshot that push carried.
    pub newest_pushed_ns: Option<i64>,
    /// The newest snapshot of the store.
    pub newest_local_ns: Option<i64>,
    /// The last push's error, if it failed after the last success.
    pub last_error: Option<String>,
}

impl RemoteLag {
    /// How far the remote's newest snapshot is behind the store's (0 when
    /// it has the newest; the store's newest's age when never pushed).
    pub fn lag_ns(&self, now_ns: i64) -> i64 {
        match (self.newest_local_ns, self.newest_pushed_ns) {
            (None, _) => 0,
            (Some(l), Some(p)) => (l - p).max(0),
            (Some(l), None) => (now_ns - l).max(0),
        }
    }
}

/// Everything `status` found.
#[derive(Clone, Debug)]
pub struct StatusReport {
    pub level: Level,
    pub problems: Vec<Problem>,
    pub now_ns: i64,
    pub max_age_ns: i64,
    pub root: PathBuf,
    /// User or project directories under the root that cannot be listed.
    pub unlistable: Vec<Rejected>,
    /// Workspaces no longer under the root whose newest snapshot is within
    /// [`GONE_WARN_NS`](super::GONE_WARN_NS).
    pub recently_gone: Vec<WorkspaceName>,
    /// False when the root could not be listed.
    pub root_readable: bool,
    pub last_run: Option<RunRow>,
    /// Workspaces under the root with no snapshot from the last run.
    pub not_in_last_run: Vec<WorkspaceName>,
    pub last_run_skips: Vec<RunSkip>,
    /// Workspaces `snapshot --prune` keeps whole (see [`HeldReason`]).
    pub retention_held: Vec<HeldRetention>,
    pub workspaces: Vec<WorkspaceStatus>,
    pub store: StoreSize,
    pub space: FsSpace,
    /// The store's remotes (`remote add`), with their lag.
    pub remotes: Vec<RemoteLag>,
}

impl StatusReport {
    /// Workspaces in `state`.
    pub fn count(&self, state: WorkspaceState) -> usize {
        self.workspaces.iter().filter(|w| w.state == state).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_by_severity() {
        assert!(Level::Ok < Level::Warning);
        assert!(Level::Warning < Level::Unknown);
        assert!(Level::Unknown < Level::Critical);
        assert_eq!(Level::Critical.exit_code(), 2);
        assert_eq!(Level::Unknown.exit_code(), 3);
    }
}
