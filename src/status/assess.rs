//! The rules of `status`: from the facts gathered (catalog, root, disk) to
//! [`Problem`]s, each with its level, and the overall level (the worst).
//! No I/O here; the table of findings and levels is in `status/mod.rs`.
//!
//! Each rule pushes its problems in a fixed order; [`level`] sorts them
//! worst first (stably), so within one level the summary line lists them
//! in the order the rules run.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::catalog::WorkspaceSummary;
use crate::error::Error;
use crate::escape;
use crate::human;
use crate::model::RunRow;
use crate::timespec;
use crate::walk::{Discovery, Rejected};
use crate::workspace::WorkspaceName;

use super::fs_space::{FsSpace, MinFree};
use super::report::{
    HeldRetention, Level, Problem, RunSkip, StatusOptions, WorkspaceState, WorkspaceStatus,
};

pub use crate::snapshot::GONE_AT_ONCE_PERCENT;

/// How long a workspace that left the root (a deleted project) is a
/// WARNING, counted from its newest snapshot: 24 hours.
pub const GONE_WARN_NS: i64 = 24 * 3600 * 1_000_000_000;

/// What the workspace root holds, as far as it could be read.
pub(super) struct RootFacts {
    /// The workspaces under the root.
    pub on_disk: Vec<WorkspaceName>,
    /// User or project directories under the root that cannot be listed.
    pub unlistable: Vec<Rejected>,
    /// False when the root itself could not be listed.
    pub readable: bool,
}

/// Problems with the workspace root: directories that cannot be listed,
/// no workspace at all, entries that are not workspace directories, or the
/// root itself unreadable.
pub(super) fn root(
    root: &Path,
    discovered: Result<Discovery, Error>,
    problems: &mut Vec<Problem>,
) -> RootFacts {
    let found = match discovered {
        Ok(found) => found,
        Err(e) => {
            problems.push(Problem {
                level: Level::Unknown,
                message: format!(
                    "cannot list the workspace root {}: {e}; workspaces without snapshots are unknown",
                    escape::path(root)
                ),
            });
            return RootFacts {
                on_disk: Vec::new(),
                unlistable: Vec::new(),
                readable: false,
            };
        }
    };
    if !found.unlistable.is_empty() {
        let names: Vec<String> = found
            .unlistable
            .iter()
            .take(5)
            .map(|r| format!("{} ({})", escape::escape(&r.path), r.reason))
            .collect();
        problems.push(Problem {
            level: Level::Critical,
            message: format!(
                "{} director{} under the workspace root {} cannot be listed (not backed up): {}{}",
                found.unlistable.len(),
                if found.unlistable.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                escape::path(root),
                names.join(", "),
                if found.unlistable.len() > 5 {
                    ", ..."
                } else {
                    ""
                }
            ),
        });
    }
    if found.workspaces.is_empty() && found.unlistable.is_empty() {
        problems.push(Problem {
            level: Level::Critical,
            message: format!(
                "no workspace under the workspace root {}: is it mounted?",
                escape::path(root)
            ),
        });
    }
    if !found.rejected.is_empty() {
        let names: Vec<String> = found
            .rejected
            .iter()
            .take(5)
            .map(|r| escape::escape(&r.path))
            .collect();
        problems.push(Problem {
            level: Level::Warning,
            message: format!(
                "{} entr{} under the workspace root {} {} not a workspace directory (symlink or file, never followed): {}{}",
                found.rejected.len(),
                if found.rejected.len() == 1 { "y" } else { "ies" },
                escape::path(root),
                if found.rejected.len() == 1 { "is" } else { "are" },
                names.join(", "),
                if found.rejected.len() > 5 { ", ..." } else { "" }
            ),
        });
    }
    RootFacts {
        on_disk: found.workspaces,
        unlistable: found.unlistable,
        readable: true,
    }
}

/// Every workspace of the catalog and of the root, by name, with its state.
/// With the root unreadable, every workspace with snapshots counts as
/// under the root.
pub(super) fn workspace_states(
    summaries: &[WorkspaceSummary],
    root: &RootFacts,
    opts: &StatusOptions,
) -> Vec<WorkspaceStatus> {
    let stale_before = opts.now_ns.saturating_sub(opts.max_age_ns);
    let mut by_name: BTreeMap<&WorkspaceName, (Option<&WorkspaceSummary>, bool)> = BTreeMap::new();
    for s in summaries {
        by_name.entry(&s.workspace).or_default().0 = Some(s);
    }
    for w in &root.on_disk {
        by_name.entry(w).or_default().1 = true;
    }
    by_name
        .into_iter()
        .map(|(ws, (summary, present))| {
            let state = match (summary, present || !root.readable) {
                (None, _) => WorkspaceState::Missing,
                (Some(_), false) => WorkspaceState::NotUnderRoot,
                (Some(s), true) if s.newest_time_ns < stale_before => WorkspaceState::Stale,
                (Some(_), true) => WorkspaceState::Ok,
            };
            WorkspaceStatus {
                workspace: ws.clone(),
                state,
                snapshots: summary.map_or(0, |s| s.snapshots),
                newest_ns: summary.map(|s| s.newest_time_ns),
            }
        })
        .collect()
}

/// Problems with the workspaces: stale, recently gone from the root (many
/// at once is CRITICAL), never snapshotted. Returns the recently gone.
pub(super) fn workspace_problems(
    workspaces: &[WorkspaceStatus],
    opts: &StatusOptions,
    problems: &mut Vec<Problem>,
) -> Vec<WorkspaceName> {
    let stale = workspaces
        .iter()
        .filter(|w| w.state == WorkspaceState::Stale)
        .count();
    if stale > 0 {
        problems.push(Problem {
            level: Level::Warning,
            message: format!(
                "{stale} workspace{} with no snapshot in the last {}",
                plural(stale),
                human::duration(opts.max_age_ns)
            ),
        });
    }
    let gone_after = opts.now_ns.saturating_sub(GONE_WARN_NS);
    let recently_gone: Vec<WorkspaceName> = workspaces
        .iter()
        .filter(|w| {
            w.state == WorkspaceState::NotUnderRoot && w.newest_ns.is_some_and(|t| t >= gone_after)
        })
        .map(|w| w.workspace.clone())
        .collect();
    if !recently_gone.is_empty() {
        let n = recently_gone.len();
        let under_root = workspaces
            .iter()
            .filter(|w| w.state != WorkspaceState::NotUnderRoot)
            .count();
        let names: Vec<String> = recently_gone
            .iter()
            .take(5)
            .map(|w| w.to_string())
            .collect();
        let many = n > 1 && n * 100 > (under_root + n) * GONE_AT_ONCE_PERCENT;
        problems.push(Problem {
            level: if many { Level::Critical } else { Level::Warning },
            message: format!(
                "{n} workspace{} left the root in the last {}{}: {}{}",
                plural(n),
                human::duration(GONE_WARN_NS),
                if many {
                    format!(" (more than {GONE_AT_ONCE_PERCENT}% of them: is part of the root unmounted?)")
                } else {
                    String::new()
                },
                names.join(", "),
                if n > 5 { ", ..." } else { "" }
            ),
        });
    }
    let missing = workspaces
        .iter()
        .filter(|w| w.state == WorkspaceState::Missing)
        .count();
    if missing > 0 {
        problems.push(Problem {
            level: Level::Warning,
            message: format!("{missing} workspace{} never snapshotted", plural(missing)),
        });
    }
    recently_gone
}

/// What the last run left: its skipped entries, and the workspaces under
/// the root it has no snapshot of.
pub(super) struct LastRunFacts {
    pub skips: Vec<RunSkip>,
    pub not_in_run: Vec<WorkspaceName>,
}

/// Problems with the last run: none recorded, too old, failed as a whole,
/// failed workspaces, skipped entries. `recent` holds the skips of each
/// snapshot started since the run began.
#[allow(clippy::type_complexity)]
pub(super) fn last_run(
    last_run: Option<&RunRow>,
    recent: &[(WorkspaceName, Vec<(Vec<u8>, String)>)],
    on_disk: &[WorkspaceName],
    opts: &StatusOptions,
    problems: &mut Vec<Problem>,
) -> LastRunFacts {
    let mut facts = LastRunFacts {
        skips: Vec::new(),
        not_in_run: Vec::new(),
    };
    let Some(run) = last_run else {
        problems.push(Problem {
            level: Level::Critical,
            message: "no snapshot run recorded in this store".into(),
        });
        return facts;
    };
    let stale_before = opts.now_ns.saturating_sub(opts.max_age_ns);
    if run.finished_ns < stale_before {
        problems.push(Problem {
            level: Level::Critical,
            message: format!(
                "last run finished {} ago (more than {})",
                human::duration(opts.now_ns - run.finished_ns),
                human::duration(opts.max_age_ns)
            ),
        });
    }
    if let Some(e) = &run.error {
        problems.push(Problem {
            level: Level::Critical,
            message: format!("last run failed: {e}"),
        });
    }
    if run.workspaces_failed > 0 {
        problems.push(Problem {
            level: Level::Critical,
            message: format!(
                "last run failed {} workspace{}",
                run.workspaces_failed,
                plural(run.workspaces_failed as usize)
            ),
        });
    }
    if run.entries_skipped > 0 {
        problems.push(Problem {
            level: Level::Warning,
            message: format!(
                "last run skipped {} entr{}",
                run.entries_skipped,
                if run.entries_skipped == 1 { "y" } else { "ies" }
            ),
        });
    }
    for (ws, skips) in recent {
        for (path, reason) in skips {
            facts.skips.push(RunSkip {
                workspace: ws.clone(),
                path: path.clone(),
                reason: reason.clone(),
            });
        }
    }
    let done: HashSet<&WorkspaceName> = recent.iter().map(|(w, _)| w).collect();
    facts.not_in_run = on_disk
        .iter()
        .filter(|w| !done.contains(w))
        .cloned()
        .collect();
    facts
}

/// Free space on the store's file system below `min_free`: CRITICAL.
pub(super) fn space(space: &FsSpace, min_free: MinFree, problems: &mut Vec<Problem>) {
    if space.is_low() {
        problems.push(Problem {
            level: Level::Critical,
            message: format!(
                "only {} free on the store's file system ({:.1}%), below {}",
                human::size(space.avail_bytes),
                space.free_percent(),
                match min_free {
                    MinFree::Percent(p) => format!("{p}%"),
                    MinFree::Bytes(b) => human::size(b),
                }
            ),
        });
    }
}

/// Retention held for some workspace: WARNING, CRITICAL while free space
/// is low too.
pub(super) fn retention(held: &[HeldRetention], space: &FsSpace, problems: &mut Vec<Problem>) {
    let Some(oldest) = held.iter().min_by_key(|h| h.since_ns) else {
        return;
    };
    let low = space.is_low();
    let n = held.len();
    let names: Vec<String> = held
        .iter()
        .take(5)
        .map(|h| h.workspace.to_string())
        .collect();
    problems.push(Problem {
        level: if low { Level::Critical } else { Level::Warning },
        message: format!(
            "retention held for {n} workspace{} (snapshots not pruned because {} could not be read whole) since {}: {}{}{}",
            plural(n),
            if n == 1 { "it" } else { "they" },
            timespec::format_local(oldest.since_ns),
            names.join(", "),
            if n > 5 { ", ..." } else { "" },
            if low { "; the store's file system is low on space" } else { "" }
        ),
    });
}

/// How long a remote may lag (its newest snapshot behind the store's, or
/// never pushed) before that is CRITICAL rather than a WARNING: 24 hours.
pub const REMOTE_CRITICAL_LAG_NS: i64 = 24 * 3600 * 1_000_000_000;

/// Remotes behind the store: beyond `max_age` a WARNING, beyond
/// [`REMOTE_CRITICAL_LAG_NS`] CRITICAL; never pushed, a WARNING (CRITICAL
/// after that long); a last push that failed, a WARNING even within the
/// lag allowed. The last push's error is quoted.
pub(super) fn remotes(
    remotes: &[super::report::RemoteLag],
    opts: &StatusOptions,
    problems: &mut Vec<Problem>,
) {
    for r in remotes {
        let lag = r.lag_ns(opts.now_ns);
        let why = r
            .last_error
            .as_ref()
            .map(|e| format!("; the last push failed: {e}"))
            .unwrap_or_default();
        let (level, what) = match r.last_push_ns {
            None if r.newest_local_ns.is_none() => continue,
            None => (
                if lag > REMOTE_CRITICAL_LAG_NS {
                    Level::Critical
                } else {
                    Level::Warning
                },
                format!("remote {} ({}) was never pushed to{why}", r.name, r.url),
            ),
            Some(_) if lag > opts.max_age_ns => (
                if lag > REMOTE_CRITICAL_LAG_NS {
                    Level::Critical
                } else {
                    Level::Warning
                },
                format!(
                    "remote {} ({}) lags {} behind the store (last push {}){why}",
                    r.name,
                    r.url,
                    human::duration(lag),
                    r.last_push_ns
                        .map(timespec::format_local)
                        .unwrap_or_default()
                ),
            ),
            Some(_) => match &r.last_error {
                // Within the lag allowed, but failing: said at once.
                Some(e) => (
                    Level::Warning,
                    format!("remote {} ({}): the last push failed: {e}", r.name, r.url),
                ),
                None => continue,
            },
        };
        problems.push(Problem {
            level,
            message: what,
        });
    }
}

/// Sort `problems` worst first (the summary line lists them in this
/// order) and return the worst level, OK when there is none.
pub(super) fn level(problems: &mut [Problem]) -> Level {
    problems.sort_by_key(|p| std::cmp::Reverse(p.level));
    problems.first().map_or(Level::Ok, |p| p.level)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(level: Level, message: &str) -> Problem {
        Problem {
            level,
            message: message.into(),
        }
    }

    #[test]
    fn worst_level_wins_and_order_within_a_level_is_kept() {
        let mut p = vec![
            problem(Level::Warning, "w1"),
            problem(Level::Critical, "c1"),
            problem(Level::Unknown, "u"),
            problem(Level::Warning, "w2"),
            problem(Level::Critical, "c2"),
        ];
        assert_eq!(level(&mut p), Level::Critical);
        let order: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(order, ["c1", "c2", "u", "w1", "w2"]);
        assert_eq!(level(&mut []), Level::Ok);
    }

    #[test]
    fn low_space_is_critical_and_names_the_threshold() {
        let fs = FsSpace {
            size_bytes: 1000,
            avail_bytes: 50,
            min_free_bytes: 100,
        };
        let mut p = Vec::new();
        space(&fs, MinFree::Percent(10.0), &mut p);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].level, Level::Critical);
        assert_eq!(
            p[0].message,
            "only 50 B free on the store's file system (5.0%), below 10%"
        );
        let mut none = Vec::new();
        space(
            &FsSpace {
                avail_bytes: 100,
                ..fs
            },
            MinFree::Bytes(100),
            &mut none,
        );
        assert!(none.is_empty());
    }
}
