//! Migration from the old rsync backups: `<user>_<project>_<YYYYmmdd_HHMMSS>/`
//! directories become snapshots of workspace `user/project` at that time.
//!
//! The old names cannot say where the user ends and the project begins when
//! either contains `_`. A split is taken only when it is certain:
//!
//! 1. an explicit mapping (`--map PREFIX=USER/PROJECT`) wins;
//! 2. else exactly one split names a known workspace (one under the
//!    workspace root, or one the store already has snapshots of);
//! 3. else, when the prefix has exactly one `_`, its only split;
//! 4. anything else (several known splits, or none and several `_`) is
//!    ambiguous: reported, never guessed.
//!
//! A backup whose workspace already has a snapshot at exactly that time is
//! skipped, so an import can be run again after a failure; an ambiguous
//! name counts as done when exactly one of its splits has a snapshot at
//! that time (an earlier run was given its `--map`). Imports go
//! through the normal snapshot pipeline (same chunk store, so they dedup
//! with everything), oldest first per workspace so each backup's parent is
//! the one before it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lock::WriterLock;
use crate::progress::Progress;
use crate::snapshot::{self, RunReport, Source};
use crate::store::Store;
use crate::timespec::{self, TimeSpec};
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
    /// The workspaces under `root` (if it is readable) and `stored` (those
    /// the store has snapshots of), and `times`: snapshot times the store
    /// has, per workspace (those of [`candidates`] are enough for a plan).
    pub fn gather(
        root: Option<&Path>,
        stored: Vec<WorkspaceName>,
        times: BTreeMap<WorkspaceName, BTreeSet<i64>>,
    ) -> Result<Known> {
        let mut k = Known::default();
        if let Some(root) = root {
            k.workspaces.extend(crate::walk::discover(root)?.workspaces);
        }
        k.workspaces.extend(stored);
        k.times = times;
        Ok(k)
    }
}

/// Every (workspace, time) a plan of `old_root` can ask the store about:
/// each split of each backup name, and its `--map`ping, at the name's
/// time. The store is asked about these only, not about all its snapshots.
pub fn candidates(
    old_root: &Path,
    mappings: &BTreeMap<Vec<u8>, WorkspaceName>,
) -> Result<BTreeSet<(WorkspaceName, i64)>> {
    let mut out = BTreeSet::new();
    for de in read_old_root(old_root)? {
        let name = de.file_name().as_bytes().to_vec();
        let Some((prefix, ts)) = split_name(&name) else {
            continue;
        };
        let Ok(TimeSpec::At(time_ns)) = timespec::parse(ts) else {
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

/// Split `<prefix>_<YYYYmmdd>_<HHMMSS>` into the prefix and the time text.
pub fn split_name(name: &[u8]) -> Option<(&[u8], &str)> {
    const TS: usize = "YYYYmmdd_HHMMSS".len();
    if name.len() < TS + 2 || name[name.len() - TS - 1] != b'_' {
        return None;
    }
    let (prefix, ts) = (&name[..name.len() - TS - 1], &name[name.len() - TS..]);
    let ok = ts.iter().enumerate().all(|(i, &c)| {
        if i == 8 {
            c == b'_'
        } else {
            c.is_ascii_digit()
        }
    });
    if !ok || prefix.is_empty() {
        return None;
    }
    Some((prefix, std::str::from_utf8(ts).expect("ascii")))
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
pub fn plan(old_root: &Path, known: &Known) -> Result<Vec<Backup>> {
    let entries = read_old_root(old_root)?;
    let mut planned: BTreeSet<(WorkspaceName, i64)> = BTreeSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for de in entries {
        let name = de.file_name().as_bytes().to_vec();
        let is_dir = de.file_type().is_ok_and(|t| t.is_dir());
        let verdict = decide(&name, is_dir, known, &mut planned);
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
    let time_ns = match timespec::parse(ts) {
        Ok(TimeSpec::At(t)) => t,
        Ok(TimeSpec::Latest) => unreachable!("digits are never 'latest'"),
        Err(e) => {
            return Verdict::Invalid {
                reason: e.to_string(),
            }
        }
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
    fn names_split_at_the_timestamp() {
        assert_eq!(
            split_name(b"a_b_c_20260102_030405"),
            Some((&b"a_b_c"[..], "20260102_030405"))
        );
        for bad in [
            &b"ab_20260102_030405x"[..],
            b"_20260102_030405",
            b"a_b_2026010_030405",
            b"a_b_20260102-030405",
            b"20260102_030405",
        ] {
            assert_eq!(split_name(bad), None, "{}", String::from_utf8_lossy(bad));
        }
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
