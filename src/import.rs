//! Migration from the old rsync backups: `<user>_<project>_<YYYYmmdd_HHMMSS>/`
//! directories become snapshots of workspace `user/project` at that time.
//!
//! The old names cannot say where the user ends and the project begins when
//! either contains `_`. A split is taken only when it is certain:
//!
//! 1. an explicit mapping (`--map PREFIX=USER/PROJECT`) wins. It must name
//!    a prefix some backup directory has, and a workspace that is one of
//!    the prefix's own splits (`a_b_c` → `a/b_c` or `a_b/c`) or one that
//!    exists (under the root or in the store): [`check_mappings`]. So a
//!    typo is refused before anything is imported, never a new workspace
//!    of its own;
//! 2. else exactly one split names a known workspace (one under the
//!    workspace root, or one the store already has snapshots of);
//! 3. else, when the prefix has exactly one `_`, its only split;
//! 4. anything else (several known splits, or none and several `_`) is
//!    ambiguous: reported, never guessed.
//!
//! A backup whose workspace already has a snapshot at exactly that time is
//! skipped, so an import can be run again after a failure; an ambiguous
//! name counts as done when exactly one of its splits has a snapshot at
//! that time (an earlier run was given its `--map`). A name matching a
//! skip pattern (`--skip NAME|GLOB`, e.g. a directory whose date cannot
//! be, month 13) is reported as skipped, not as a problem. Imports go
//! through the normal snapshot pipeline (same chunk store, so they dedup
//! with everything), oldest first per workspace so each backup's parent is
//! the one before it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::lock::WriterLock;
use crate::progress::Progress;
use crate::snapshot::{self, RunReport, Source};
use crate::store::Store;
use crate::workspace::WorkspaceName;

/// One entry directly under the old backup root, and what to do with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// The entry's name (raw bytes).
    pub name: Vec<u8>,
    pub dir: PathBuf,
    pub verdict: Verdict,
}

/// What happens to one old backup directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// To be snapshotted as `workspace` at `time_ns`.
    Import {
        workspace: WorkspaceName,
        time_ns: i64,
    },
    /// The workspace already has a snapshot at this time: skipped.
    Exists {
        workspace: WorkspaceName,
        time_ns: i64,
    },
    /// The user/project split is not certain: skipped, needs a `--map`.
    Ambiguous {
        /// Splits that name known workspaces (empty: none does).
        candidates: Vec<WorkspaceName>,
        reason: String,
    },
    /// Looks like a backup but cannot be one (bad time, invalid name).
    Invalid { reason: String },
    /// Not a `<user>_<project>_<YYYYmmdd_HHMMSS>` directory: left alone.
    Ignored { reason: String },
    /// Matches a skip pattern: handled, not imported.
    Skipped { pattern: String },
}

impl Verdict {
    /// Ambiguous and invalid backups make the import exit non-zero.
    pub fn is_problem(&self) -> bool {
        matches!(self, Verdict::Ambiguous { .. } | Verdict::Invalid { .. })
    }
}

/// What the plan is resolved against.
#[derive(Debug, Default)]
pub struct Known {
    /// Workspaces under the root and in the store.
    pub workspaces: BTreeSet<WorkspaceName>,
    /// Snapshot times already in the store, per workspace.
    pub times: BTreeMap<WorkspaceName, BTreeSet<i64>>,
    /// Explicit `PREFIX → workspace` mappings, by prefix bytes.
    pub mappings: BTreeMap<Vec<u8>, WorkspaceName>,
}

impl Known {
    /// What a plan of `old_root` is resolved against: the workspaces under
    /// `root` (if it is readable) and those `catalog` has snapshots of, the
    /// snapshot times it has among those a backup name of `old_root` can
    /// stand for (`candidates`: not every snapshot of the store, millions
    /// at 10,000 workspaces), and the `mappings`.
    pub fn gather(
        root: Option<&Path>,
        catalog: Option<&Catalog>,
        old_root: &Path,
        mappings: BTreeMap<Vec<u8>, WorkspaceName>,
    ) -> Result<Known> {
        let mut k = Known::default();
        if let Some(root) = root {
            k.workspaces.extend(crate::walk::discover(root)?.workspaces);
        }
        if let Some(cat) = catalog {
            k.workspaces.extend(cat.workspaces()?);
            for (ws, t) in candidates(old_root, &mappings)? {
                if cat.has_snapshot_at(&ws, t)? {
                    k.times.entry(ws).or_default().insert(t);
                }
            }
        }
        k.mappings = mappings;
        Ok(k)
    }
}

/// Every (workspace, time) a plan of `old_root` can ask about: each split
/// of each backup name, and its `--map`ping, at the name's time.
fn candidates(
    old_root: &Path,
    mappings: &BTreeMap<Vec<u8>, WorkspaceName>,
) -> Result<BTreeSet<(WorkspaceName, i64)>> {
    let mut out = BTreeSet::new();
    for de in read_old_root(old_root)? {
        let name = de.file_name().as_bytes().to_vec();
        let Some((prefix, ts)) = split_name(&name) else {
            continue;
        };
        let Ok(time_ns) = crate::old_backup::parse_time(ts) else {
            continue;
        };
        for ws in splits(prefix)
            .into_iter()
            .chain(mappings.get(prefix).cloned())
        {
            out.insert((ws, time_ns));
        }
    }
    Ok(out)
}

/// The entries of `old_root`, sorted by name.
fn read_old_root(old_root: &Path) -> Result<Vec<fs::DirEntry>> {
    let rd = fs::read_dir(old_root).map_err(|e| {
        Error::invalid(
            "old backup root",
            format!(
                "{}: {e} (give the directory holding the old rsync backups)",
                crate::escape::path(old_root)
            ),
        )
    })?;
    let mut entries: Vec<fs::DirEntry> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

pub use crate::old_backup::split_name;

/// Names to mark as handled without importing them (`--skip NAME|GLOB`):
/// each pattern is a glob (`*`, `?`, `[…]`) matched against the whole
/// entry name, or the exact name.
#[derive(Clone, Debug, Default)]
pub struct Skips {
    patterns: Vec<(String, GlobMatcher)>,
}

impl Skips {
    pub fn new(patterns: &[String]) -> Result<Skips> {
        let mut out = Skips::default();
        for p in patterns {
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::invalid("skip pattern", format!("{p:?}: {e}")))?;
            out.patterns.push((p.clone(), glob.compile_matcher()));
        }
        Ok(out)
    }

    /// The first pattern `name` matches.
    pub fn matching(&self, name: &[u8]) -> Option<&str> {
        let path = Path::new(std::ffi::OsStr::from_bytes(name));
        self.patterns
            .iter()
            .find(|(p, g)| p.as_bytes() == name || g.is_match(path))
            .map(|(p, _)| p.as_str())
    }

    /// The patterns no entry of `plan` matched.
    pub fn unused(&self, plan: &[Backup]) -> Vec<&str> {
        self.patterns
            .iter()
            .map(|(p, _)| p.as_str())
            .filter(|p| {
                !plan
                    .iter()
                    .any(|b| matches!(&b.verdict, Verdict::Skipped { pattern } if pattern == p))
            })
            .collect()
    }
}

/// A `--map PREFIX=USER/PROJECT` that cannot be meant (see
/// [`check_mappings`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadMapping {
    /// No backup directory is named `PREFIX_YYYYmmdd_HHMMSS`; `close`: the
    /// prefixes that are, nearest first (at most three, none if none is
    /// near).
    NoSuchPrefix {
        prefix: Vec<u8>,
        close: Vec<Vec<u8>>,
    },
    /// The workspace is neither one of the prefix's splits (`splits`) nor
    /// one that exists: the backups would go to a workspace of their own.
    UnknownWorkspace {
        prefix: Vec<u8>,
        workspace: WorkspaceName,
        splits: Vec<WorkspaceName>,
    },
}

/// The mappings of `known` that cannot be right for the backups of
/// `plan`: a prefix no backup directory has (a typo imports nothing), or a
/// workspace that is not a split of its prefix and does not exist (a typo
/// would import into a phantom workspace).
pub fn check_mappings(plan: &[Backup], known: &Known) -> Vec<BadMapping> {
    let prefixes: BTreeSet<&[u8]> = plan
        .iter()
        .filter(|b| !matches!(b.verdict, Verdict::Ignored { .. }))
        .filter_map(|b| split_name(&b.name).map(|(p, _)| p))
        .collect();
    let mut bad = Vec::new();
    for (prefix, workspace) in &known.mappings {
        if !prefixes.contains(prefix.as_slice()) {
            bad.push(BadMapping::NoSuchPrefix {
                prefix: prefix.clone(),
                close: close_names(prefix, &prefixes),
            });
            continue;
        }
        let own = splits(prefix);
        if !own.contains(workspace) && !known.workspaces.contains(workspace) {
            bad.push(BadMapping::UnknownWorkspace {
                prefix: prefix.clone(),
                workspace: workspace.clone(),
                splits: own,
            });
        }
    }
    bad
}

/// Up to three of `names` nearest to `name` by edit distance, nearest
/// first; only those a typo away (at most a third of the name's length
/// differs, at least 2 edits allowed).
fn close_names(name: &[u8], names: &BTreeSet<&[u8]>) -> Vec<Vec<u8>> {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let want = lossy(name);
    let limit = (want.chars().count() / 3).max(2);
    let mut near: Vec<(usize, &[u8])> = names
        .iter()
        .map(|n| (strsim::levenshtein(&want, &lossy(n)), *n))
        .filter(|(d, _)| *d <= limit)
        .collect();
    near.sort();
    near.into_iter().take(3).map(|(_, n)| n.to_vec()).collect()
}

/// Every split of `prefix` at one `_` into two non-empty, valid names.
pub fn splits(prefix: &[u8]) -> Vec<WorkspaceName> {
    prefix
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c == b'_')
        .filter_map(|(i, _)| WorkspaceName::new(&prefix[..i], &prefix[i + 1..]).ok())
        .collect()
}

/// Decide the workspace of a backup prefix (see the module doc for the rules).
pub fn resolve(prefix: &[u8], known: &Known) -> std::result::Result<WorkspaceName, Verdict> {
    if let Some(ws) = known.mappings.get(prefix) {
        return Ok(ws.clone());
    }
    let all = splits(prefix);
    let matching: Vec<WorkspaceName> = all
        .iter()
        .filter(|w| known.workspaces.contains(w))
        .cloned()
        .collect();
    let underscores = prefix.iter().filter(|&&c| c == b'_').count();
    match (matching.len(), all.len()) {
        (1, _) => Ok(matching.into_iter().next().expect("one")),
        (0, 1) if underscores == 1 => Ok(all.into_iter().next().expect("one")),
        (0, 0) => Err(Verdict::Invalid {
            reason: "no valid <user>_<project> split".into(),
        }),
        (0, _) => Err(Verdict::Ambiguous {
            reason: format!(
                "none of the {} possible splits ({}) is a known workspace",
                all.len(),
                names(&all)
            ),
            candidates: Vec::new(),
        }),
        (_, _) => Err(Verdict::Ambiguous {
            reason: format!("several known workspaces match: {}", names(&matching)),
            candidates: matching,
        }),
    }
}

fn names(ws: &[WorkspaceName]) -> String {
    ws.iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Look at every entry directly under `old_root` and decide what to do
/// with it. Reads nothing but directory listings.
pub fn plan(old_root: &Path, known: &Known, skips: &Skips) -> Result<Vec<Backup>> {
    let entries = read_old_root(old_root)?;
    let mut planned: BTreeSet<(WorkspaceName, i64)> = BTreeSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for de in entries {
        let name = de.file_name().as_bytes().to_vec();
        let is_dir = de.file_type().is_ok_and(|t| t.is_dir());
        let verdict = match skips.matching(&name) {
            Some(pattern) => Verdict::Skipped {
                pattern: pattern.to_string(),
            },
            None => decide(&name, is_dir, known, &mut planned),
        };
        out.push(Backup {
            dir: de.path(),
            name,
            verdict,
        });
    }
    Ok(out)
}

fn decide(
    name: &[u8],
    is_dir: bool,
    known: &Known,
    planned: &mut BTreeSet<(WorkspaceName, i64)>,
) -> Verdict {
    let Some((prefix, ts)) = split_name(name) else {
        return Verdict::Ignored {
            reason: "not named <user>_<project>_<YYYYmmdd_HHMMSS>".into(),
        };
    };
    if !is_dir {
        return Verdict::Ignored {
            reason: "not a directory".into(),
        };
    }
    let time_ns = match crate::old_backup::parse_time(ts) {
        Ok(t) => t,
        Err(reason) => return Verdict::Invalid { reason },
    };
    let has = |w: &WorkspaceName| known.times.get(w).is_some_and(|t| t.contains(&time_ns));
    let workspace = match resolve(prefix, known) {
        Ok(w) => w,
        Err(v) => {
            // Settled by an earlier run (with --map): exactly one split
            // already has a snapshot at this very time.
            let done: Vec<WorkspaceName> = splits(prefix).into_iter().filter(has).collect();
            return match <[WorkspaceName; 1]>::try_from(done) {
                Ok([workspace]) => Verdict::Exists { workspace, time_ns },
                Err(_) => v,
            };
        }
    };
    let exists = has(&workspace);
    if exists || !planned.insert((workspace.clone(), time_ns)) {
        Verdict::Exists { workspace, time_ns }
    } else {
        Verdict::Import { workspace, time_ns }
    }
}

/// The snapshot sources for a plan's imports: per workspace, oldest first.
/// Each comes with the index of its backup in `plan`.
pub fn sources(plan: &[Backup]) -> Vec<(usize, Source)> {
    let mut v: Vec<(usize, Source)> = plan
        .iter()
        .enumerate()
        .filter_map(|(i, b)| match &b.verdict {
            Verdict::Import { workspace, time_ns } => Some((
                i,
                Source {
                    workspace: workspace.clone(),
                    base: b
                        .dir
                        .parent()
                        .expect("an entry of the backup root")
                        .to_path_buf(),
                    below: vec![b.name.clone()],
                    reread: false,
                    time_ns: Some(*time_ns),
                },
            )),
            _ => None,
        })
        .collect();
    v.sort_by(|(_, a), (_, b)| (&a.workspace, a.time_ns).cmp(&(&b.workspace, b.time_ns)));
    v
}

/// Snapshot every `Import` of `plan` under the lock the caller holds. The
/// report's workspaces are in the order of [`sources`].
pub fn import_locked(
    store: &Store,
    plan: &[Backup],
    lock: &WriterLock,
    progress: &Progress,
) -> Result<RunReport> {
    let sources: Vec<Source> = sources(plan).into_iter().map(|(_, s)| s).collect();
    snapshot::run_sources_locked(
        store,
        &sources,
        &snapshot::Scan::default(),
        &[],
        lock,
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(s: &str) -> WorkspaceName {
        WorkspaceName::parse(std::ffi::OsStr::new(s)).unwrap()
    }

    #[test]
    fn splits_resolve_only_when_certain() {
        let mut k = Known::default();
        k.workspaces.insert(ws("a_b/c"));
        k.workspaces.insert(ws("x/y_z"));
        k.workspaces.insert(ws("x_y/z"));
        assert_eq!(resolve(b"a_b_c", &k), Ok(ws("a_b/c")));
        assert_eq!(resolve(b"alice_thesis", &k), Ok(ws("alice/thesis")));
        assert!(matches!(
            resolve(b"x_y_z", &k),
            Err(Verdict::Ambiguous { candidates, .. }) if candidates.len() == 2
        ));
        assert!(matches!(
            resolve(b"p_q_r", &k),
            Err(Verdict::Ambiguous { candidates, .. }) if candidates.is_empty()
        ));
        assert!(matches!(resolve(b"_x", &k), Err(Verdict::Invalid { .. })));
        k.mappings.insert(b"x_y_z".to_vec(), ws("x/y_z"));
        assert_eq!(resolve(b"x_y_z", &k), Ok(ws("x/y_z")));
    }
}
