//! `status`: the monitoring facts and one Nagios level.
//!
//! Reads the catalog in one read transaction and never takes the writer
//! lock, so it answers while a snapshot or prune runs. It reads no pack
//! (sizes come from `stat`), so it does not take the readers' lock either.
//!
//! "The last run" is the last run that covered the whole root
//! (`meta` key `last_full_run ROOT`, one per root): a later run of named workspaces neither hides
//! its failures nor stands in for it. Levels, worst wins (ordered OK <
//! WARNING < UNKNOWN < CRITICAL); README.md's status section is the full
//! list:
//!
//! | finding | level |
//! |---|---|
//! | a workspace under the root has a newest snapshot older than `max_age` | WARNING |
//! | a workspace under the root has no snapshot at all | WARNING |
//! | the last run skipped entries (unreadable, vanished files, a workspace emptied) | WARNING |
//! | an entry under the root is a symlink or file, not a directory | WARNING |
//! | workspaces left the root within [`GONE_WARN_NS`] (deleted projects) | WARNING |
//! | the workspace root cannot be read (missing workspaces unknown) | UNKNOWN |
//! | no run recorded, or the last run finished more than `max_age` ago | CRITICAL |
//! | the last run failed workspaces (or user directories) | CRITICAL |
//! | the last run failed as a whole (empty root, many workspaces gone) | CRITICAL |
//! | a user or project directory under the root cannot be listed | CRITICAL |
//! | no workspace under the root (not mounted?) | CRITICAL |
//! | more than [`GONE_AT_ONCE_PERCENT`] % of the workspaces (and more than one) left the root within [`GONE_WARN_NS`] | CRITICAL |
//! | free space on the store's file system below `min_free` | CRITICAL |
//! | retention held for a workspace (its newest snapshots skipped entries, or it failed in the last run) | WARNING |
//! | retention held while free space is below `min_free` | CRITICAL |
//!
//! The store itself missing or unreadable is UNKNOWN (the caller turns the
//! error into that level). Workspaces that have snapshots but are no longer
//! under the root (deleted projects) warn for [`GONE_WARN_NS`] after their
//! newest snapshot, then are only listed: their newest snapshot is kept
//! forever by retention and would be stale forever.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::catalog::{PinnedCatalog, RunRow, WorkspaceSummary};
use crate::durable;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::walk::{self, Rejected};
use crate::workspace::WorkspaceName;

pub use crate::snapshot::GONE_AT_ONCE_PERCENT;

/// How long a workspace that left the root (a deleted project) is a
/// WARNING, counted from its newest snapshot: 24 hours.
pub const GONE_WARN_NS: i64 = 24 * 3600 * 1_000_000_000;

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

/// The free-space threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MinFree {
    Bytes(u64),
    /// Percent of the file system's size (as `df` counts: available to
    /// unprivileged users over total).
    Percent(f64),
}

impl MinFree {
    /// The default: 10 % of the file system.
    pub const DEFAULT: MinFree = MinFree::Percent(10.0);

    /// Parse `10%`, `5GiB`, `500M`, `1024` (bytes). K/M/G/T and KiB/MiB/GiB/TiB
    /// are powers of 1024; KB/MB/GB/TB powers of 1000.
    pub fn parse(s: &str) -> Result<MinFree> {
        let t = s.trim();
        let bad = || {
            Error::invalid(
                "--min-free",
                format!("{s:?}: give a percentage (10%) or a size (5GiB, 500M, 1024)"),
            )
        };
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&v) {
                return Err(Error::invalid(
                    "--min-free",
                    format!("{s:?}: a percentage must be between 0 and 100"),
                ));
            }
            return Ok(MinFree::Percent(v));
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let v: f64 = num.parse().map_err(|_| bad())?;
        let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kib" => 1024.0,
            "m" | "mib" => 1024.0 * 1024.0,
            "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "tb" => 1e12,
            _ => return Err(bad()),
        };
        Ok(MinFree::Bytes((v * mult) as u64))
    }

    /// The threshold in bytes for a file system of `size_bytes`.
    pub fn bytes(self, size_bytes: u64) -> u64 {
        match self {
            MinFree::Bytes(b) => b,
            MinFree::Percent(p) => (size_bytes as f64 * p / 100.0).ceil() as u64,
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

/// Sizes of the store's own files.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreSize {
    pub pack_bytes: u64,
    pub catalog_bytes: u64,
    /// Packs being written (`tmp/`).
    pub tmp_bytes: u64,
}

impl StoreSize {
    pub fn total(&self) -> u64 {
        self.pack_bytes + self.catalog_bytes + self.tmp_bytes
    }
}

/// The store's file system.
#[derive(Clone, Copy, Debug)]
pub struct FsSpace {
    pub size_bytes: u64,
    /// Available to unprivileged users (`df`'s "Avail").
    pub avail_bytes: u64,
    pub min_free_bytes: u64,
}

impl FsSpace {
    pub fn free_percent(&self) -> f64 {
        if self.size_bytes == 0 {
            0.0
        } else {
            self.avail_bytes as f64 * 100.0 / self.size_bytes as f64
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
    /// [`GONE_WARN_NS`].
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
}

impl StatusReport {
    /// Workspaces in `state`.
    pub fn count(&self, state: WorkspaceState) -> usize {
        self.workspaces.iter().filter(|w| w.state == state).count()
    }
}

/// Check `store`.
pub fn status(store: &Store, opts: &StatusOptions) -> Result<StatusReport> {
    let pinned = PinnedCatalog::open(&store.catalog_path())?;
    let (last_run, summaries, recent, skipping) = pinned.with(|cat| {
        // No full run of this root recorded (a catalog from before they
        // were, a root only named workspaces were taken from): the newest
        // run of any kind stands in, as it always did.
        let last = match cat.last_full_run(&crate::catalog::full_run_key(&opts.root))? {
            Some(r) => Some(r),
            None => cat.last_run()?,
        };
        let summaries = cat.workspace_summaries()?;
        let recent = match &last {
            Some(r) => cat.snapshots_started_since(r.started_ns)?,
            None => Vec::new(),
        };
        Ok((last, summaries, recent, cat.skipping_since()?))
    })?;

    let mut problems = Vec::new();
    let mut unlistable = Vec::new();
    let (on_disk, root_readable) = match walk::discover(&opts.root) {
        Ok(found) => {
            if !found.unlistable.is_empty() {
                let names: Vec<String> = found
                    .unlistable
                    .iter()
                    .take(5)
                    .map(|r| format!("{} ({})", crate::escape::escape(&r.path), r.reason))
                    .collect();
                problems.push(Problem {
                    level: Level::Critical,
                    message: format!(
                        "{} director{} under the workspace root {} cannot be listed (not backed up): {}{}",
                        found.unlistable.len(),
                        if found.unlistable.len() == 1 { "y" } else { "ies" },
                        crate::escape::path(&opts.root),
                        names.join(", "),
                        if found.unlistable.len() > 5 { ", ..." } else { "" }
                    ),
                });
            }
            if found.workspaces.is_empty() && found.unlistable.is_empty() {
                problems.push(Problem {
                    level: Level::Critical,
                    message: format!(
                        "no workspace under the workspace root {}: is it mounted?",
                        crate::escape::path(&opts.root)
                    ),
                });
            }
            unlistable = found.unlistable;
            if !found.rejected.is_empty() {
                let names: Vec<String> = found
                    .rejected
                    .iter()
                    .take(5)
                    .map(|r| crate::escape::escape(&r.path))
                    .collect();
                problems.push(Problem {
                    level: Level::Warning,
                    message: format!(
                        "{} entr{} under the workspace root {} {} not a workspace directory (symlink or file, never followed): {}{}",
                        found.rejected.len(),
                        if found.rejected.len() == 1 { "y" } else { "ies" },
                        crate::escape::path(&opts.root),
                        if found.rejected.len() == 1 { "is" } else { "are" },
                        names.join(", "),
                        if found.rejected.len() > 5 { ", ..." } else { "" }
                    ),
                });
            }
            (found.workspaces, true)
        }
        Err(e) => {
            problems.push(Problem {
                level: Level::Unknown,
                message: format!(
                    "cannot list the workspace root {}: {e}; workspaces without snapshots are unknown",
                    crate::escape::path(&opts.root)
                ),
            });
            (Vec::new(), false)
        }
    };

    // The catalog's workspaces and the root's, by name.
    let stale_before = opts.now_ns.saturating_sub(opts.max_age_ns);
    let mut by_name: BTreeMap<&WorkspaceName, (Option<&WorkspaceSummary>, bool)> = BTreeMap::new();
    for s in &summaries {
        by_name.entry(&s.workspace).or_default().0 = Some(s);
    }
    for w in &on_disk {
        by_name.entry(w).or_default().1 = true;
    }
    let workspaces: Vec<WorkspaceStatus> = by_name
        .into_iter()
        .map(|(ws, (summary, present))| {
            let state = match (summary, present || !root_readable) {
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
        .collect();

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
                human_duration(opts.max_age_ns)
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
                human_duration(GONE_WARN_NS),
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

    let mut last_run_skips = Vec::new();
    let mut not_in_last_run = Vec::new();
    match &last_run {
        None => problems.push(Problem {
            level: Level::Critical,
            message: "no snapshot run recorded in this store".into(),
        }),
        Some(run) => {
            if run.finished_ns < stale_before {
                problems.push(Problem {
                    level: Level::Critical,
                    message: format!(
                        "last run finished {} ago (more than {})",
                        human_duration(opts.now_ns - run.finished_ns),
                        human_duration(opts.max_age_ns)
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
            for (ws, skips) in &recent {
                for (path, reason) in skips {
                    last_run_skips.push(RunSkip {
                        workspace: ws.clone(),
                        path: path.clone(),
                        reason: reason.clone(),
                    });
                }
            }
            let done: HashSet<&WorkspaceName> = recent.iter().map(|(w, _)| w).collect();
            not_in_last_run = on_disk
                .iter()
                .filter(|w| !done.contains(w))
                .cloned()
                .collect();
        }
    }

    // Retention held: derived from what the catalog already has (no
    // format change): the newest snapshots' skip counts, and the
    // workspaces the last run failed (under the root, with snapshots, but
    // none from that run: the same set as "not in last run").
    let mut retention_held: Vec<HeldRetention> = skipping
        .into_iter()
        .map(|(workspace, since_ns)| HeldRetention {
            workspace,
            reason: HeldReason::Skipped,
            since_ns,
        })
        .collect();
    if last_run.as_ref().is_some_and(|r| r.workspaces_failed > 0) {
        let has_snapshots: HashSet<&WorkspaceName> =
            summaries.iter().map(|s| &s.workspace).collect();
        for ws in not_in_last_run.iter().filter(|w| has_snapshots.contains(w)) {
            if retention_held.iter().any(|h| &h.workspace == ws) {
                continue;
            }
            let since_ns = pinned.with(|cat| {
                let newest = cat.last_taken(ws)?.map_or(0, |s| s.started_ns);
                Ok(cat.first_run_after(newest)?.unwrap_or(newest))
            })?;
            retention_held.push(HeldRetention {
                workspace: ws.clone(),
                reason: HeldReason::Failed,
                since_ns,
            });
        }
    }
    drop(pinned);
    retention_held.sort_by(|a, b| a.workspace.cmp(&b.workspace));

    let size = store_size(store)?;
    let (fs_size, fs_avail) = fs_space(store.dir())?;
    let space = FsSpace {
        size_bytes: fs_size,
        avail_bytes: fs_avail,
        min_free_bytes: opts.min_free.bytes(fs_size),
    };
    if space.avail_bytes < space.min_free_bytes {
        problems.push(Problem {
            level: Level::Critical,
            message: format!(
                "only {} free on the store's file system ({:.1}%), below {}",
                human_size(space.avail_bytes),
                space.free_percent(),
                match opts.min_free {
                    MinFree::Percent(p) => format!("{p}%"),
                    MinFree::Bytes(b) => human_size(b),
                }
            ),
        });
    }

    if let Some(oldest) = retention_held.iter().min_by_key(|h| h.since_ns) {
        let low = space.avail_bytes < space.min_free_bytes;
        let n = retention_held.len();
        let names: Vec<String> = retention_held
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
                crate::timespec::format_local(oldest.since_ns),
                names.join(", "),
                if n > 5 { ", ..." } else { "" },
                if low { "; the store's file system is low on space" } else { "" }
            ),
        });
    }

    // Worst first; the summary line lists them in this order.
    problems.sort_by_key(|p| std::cmp::Reverse(p.level));
    let level = problems.first().map_or(Level::Ok, |p| p.level);
    Ok(StatusReport {
        level,
        problems,
        now_ns: opts.now_ns,
        max_age_ns: opts.max_age_ns,
        root: opts.root.clone(),
        unlistable,
        recently_gone,
        root_readable,
        last_run,
        not_in_last_run,
        last_run_skips,
        retention_held,
        workspaces,
        store: size,
        space,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Sizes of `packs/`, `tmp/` and the catalog files (from `stat`).
fn store_size(store: &Store) -> Result<StoreSize> {
    let len = |p: &Path| fs::symlink_metadata(p).map_or(0, |m| m.len());
    let mut s = StoreSize::default();
    for p in crate::layout::catalog_files(store.dir()) {
        s.catalog_bytes += len(&p);
    }
    s.pack_bytes = store.packs().list()?.iter().map(|f| f.size_bytes).sum();
    if let Ok(rd) = fs::read_dir(crate::layout::tmp_dir(store.dir())) {
        for f in rd.flatten() {
            s.tmp_bytes += f.metadata().map_or(0, |m| m.len());
        }
    }
    Ok(s)
}

/// (size, available) bytes of the file system holding `dir` (statvfs).
fn fs_space(dir: &Path) -> Result<(u64, u64)> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        Error::store_read(
            dir,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"),
        )
    })?;
    // SAFETY: statvfs fills a plain C struct; zeroed is a valid initial value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: NUL-terminated path and a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(Error::store_read(dir, std::io::Error::last_os_error()));
    }
    // The field types differ between platforms (u32 or u64): widen them all.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let (frsize, blocks, bavail) = (
        u64::from(st.f_frsize),
        u64::from(st.f_blocks),
        u64::from(st.f_bavail),
    );
    Ok((blocks.saturating_mul(frsize), bavail.saturating_mul(frsize)))
}

/// `1.5 KiB`-style sizes, as every command prints them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// `2h 5m`-style durations, to the second.
pub fn human_duration(ns: i64) -> String {
    let secs = (ns.max(0) / 1_000_000_000) as u64;
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

// ---------------------------------------------------------------------------
// Prometheus text exposition format
// ---------------------------------------------------------------------------

/// Escape a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

struct Prom {
    out: String,
}

impl Prom {
    fn metric(&mut self, name: &str, kind: &str, help: &str) {
        self.out.push_str(&format!("# HELP {name} {help}\n"));
        self.out.push_str(&format!("# TYPE {name} {kind}\n"));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            self.out.push('{');
            self.out.push_str(&l.join(","));
            self.out.push('}');
        }
        self.out.push_str(&format!(" {value}\n"));
    }
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// The report in the Prometheus text format (for node_exporter's textfile
/// collector). `report` is `None` when the store could not be read: only
/// `wsnap_status 3` and the time are written then.
pub fn prometheus_text(level: Level, report: Option<&StatusReport>, now_ns: i64) -> String {
    let mut p = Prom { out: String::new() };
    p.metric(
        "wsnap_status",
        "gauge",
        "Overall status as a Nagios code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    );
    p.sample("wsnap_status", &[], f64::from(level.exit_code()));
    p.metric(
        "wsnap_status_time_seconds",
        "gauge",
        "When this status was computed (Unix time).",
    );
    p.sample("wsnap_status_time_seconds", &[], secs(now_ns));
    let Some(r) = report else {
        return p.out;
    };
    p.metric(
        "wsnap_max_age_seconds",
        "gauge",
        "Age beyond which a workspace's newest snapshot counts as stale.",
    );
    p.sample("wsnap_max_age_seconds", &[], secs(r.max_age_ns));
    if let Some(run) = &r.last_run {
        p.metric(
            "wsnap_last_run_start_time_seconds",
            "gauge",
            "Start of the last snapshot run (Unix time).",
        );
        p.sample(
            "wsnap_last_run_start_time_seconds",
            &[],
            secs(run.started_ns),
        );
        p.metric(
            "wsnap_last_run_end_time_seconds",
            "gauge",
            "End of the last snapshot run (Unix time).",
        );
        p.sample(
            "wsnap_last_run_end_time_seconds",
            &[],
            secs(run.finished_ns),
        );
        p.metric(
            "wsnap_last_run_workspaces",
            "gauge",
            "Workspaces of the last snapshot run, by result.",
        );
        p.sample(
            "wsnap_last_run_workspaces",
            &[("result", "ok")],
            run.workspaces_ok as f64,
        );
        p.sample(
            "wsnap_last_run_workspaces",
            &[("result", "failed")],
            run.workspaces_failed as f64,
        );
        p.metric(
            "wsnap_last_run_entries_skipped",
            "gauge",
            "Entries the last snapshot run could not store.",
        );
        p.sample(
            "wsnap_last_run_entries_skipped",
            &[],
            run.entries_skipped as f64,
        );
    }
    p.metric(
        "wsnap_retention_held_workspaces",
        "gauge",
        "Workspaces whose snapshots snapshot --prune keeps whole (failed or skipped entries).",
    );
    p.sample(
        "wsnap_retention_held_workspaces",
        &[],
        r.retention_held.len() as f64,
    );
    p.metric(
        "wsnap_store_size_bytes",
        "gauge",
        "Bytes of the store's files, by part (packs, catalog, tmp).",
    );
    p.sample(
        "wsnap_store_size_bytes",
        &[("part", "packs")],
        r.store.pack_bytes as f64,
    );
    p.sample(
        "wsnap_store_size_bytes",
        &[("part", "catalog")],
        r.store.catalog_bytes as f64,
    );
    p.sample(
        "wsnap_store_size_bytes",
        &[("part", "tmp")],
        r.store.tmp_bytes as f64,
    );
    p.metric(
        "wsnap_filesystem_avail_bytes",
        "gauge",
        "Bytes available on the store's file system.",
    );
    p.sample(
        "wsnap_filesystem_avail_bytes",
        &[],
        r.space.avail_bytes as f64,
    );
    p.metric(
        "wsnap_filesystem_size_bytes",
        "gauge",
        "Size of the store's file system in bytes.",
    );
    p.sample(
        "wsnap_filesystem_size_bytes",
        &[],
        r.space.size_bytes as f64,
    );
    p.metric(
        "wsnap_filesystem_min_free_bytes",
        "gauge",
        "The --min-free threshold in bytes.",
    );
    p.sample(
        "wsnap_filesystem_min_free_bytes",
        &[],
        r.space.min_free_bytes as f64,
    );
    p.metric(
        "wsnap_workspaces",
        "gauge",
        "Workspaces by state (ok, stale, missing, not_under_root).",
    );
    for state in [
        WorkspaceState::Ok,
        WorkspaceState::Stale,
        WorkspaceState::Missing,
        WorkspaceState::NotUnderRoot,
    ] {
        p.sample(
            "wsnap_workspaces",
            &[("state", state.label())],
            r.count(state) as f64,
        );
    }
    let names: Vec<(String, String, &WorkspaceStatus)> = r
        .workspaces
        .iter()
        .map(|w| {
            (
                String::from_utf8_lossy(&w.workspace.user).into_owned(),
                String::from_utf8_lossy(&w.workspace.project).into_owned(),
                w,
            )
        })
        .collect();
    p.metric(
        "wsnap_workspace_last_snapshot_time_seconds",
        "gauge",
        "Recorded time of each workspace's newest snapshot (Unix time).",
    );
    for (u, pr, w) in &names {
        if let Some(t) = w.newest_ns {
            p.sample(
                "wsnap_workspace_last_snapshot_time_seconds",
                &[("user", u.as_str()), ("project", pr.as_str())],
                secs(t),
            );
        }
    }
    p.metric(
        "wsnap_workspace_snapshots",
        "gauge",
        "Snapshots kept of each workspace.",
    );
    for (u, pr, w) in &names {
        p.sample(
            "wsnap_workspace_snapshots",
            &[("user", u.as_str()), ("project", pr.as_str())],
            w.snapshots as f64,
        );
    }
    p.metric(
        "wsnap_workspace_stale",
        "gauge",
        "1 when a workspace under the root has no snapshot within max age (or none at all), else 0.",
    );
    for (u, pr, w) in &names {
        if w.state != WorkspaceState::NotUnderRoot {
            let bad = matches!(w.state, WorkspaceState::Stale | WorkspaceState::Missing);
            p.sample(
                "wsnap_workspace_stale",
                &[("user", u.as_str()), ("project", pr.as_str())],
                if bad { 1.0 } else { 0.0 },
            );
        }
    }
    p.out
}

/// Write `text` to `path` atomically (temporary file in the same directory,
/// fsync, rename), mode 0644 so node_exporter can read it.
pub fn write_prometheus(path: &Path, text: &str) -> std::io::Result<()> {
    durable::replace_file(path, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_free_syntax() {
        assert_eq!(MinFree::parse("10%").unwrap(), MinFree::Percent(10.0));
        assert_eq!(MinFree::parse("0").unwrap(), MinFree::Bytes(0));
        assert_eq!(MinFree::parse("2K").unwrap(), MinFree::Bytes(2048));
        assert_eq!(
            MinFree::parse("1.5GiB").unwrap(),
            MinFree::Bytes(1_610_612_736)
        );
        assert_eq!(MinFree::parse("3 MB").unwrap(), MinFree::Bytes(3_000_000));
        for bad in ["", "%", "101%", "-1%", "ten", "5 parsecs"] {
            assert!(MinFree::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(MinFree::Percent(50.0).bytes(1000), 500);
    }

    #[test]
    fn levels_order_by_severity() {
        assert!(Level::Ok < Level::Warning);
        assert!(Level::Warning < Level::Unknown);
        assert!(Level::Unknown < Level::Critical);
        assert_eq!(Level::Critical.exit_code(), 2);
        assert_eq!(Level::Unknown.exit_code(), 3);
    }

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
