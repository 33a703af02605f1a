//! The server's state: the store, the token, the limits, and four caches
//! that keep page work bounded at 10,000 workspaces × 288 snapshots.
//!
//! - *ticks* ([`chart::Ticks`]): bytes added per minute of recorded time,
//!   read once from every snapshot row (streamed; only the last 30 days'
//!   minutes kept), then only from rows committed since (by row number).
//!   Rows that prune forgets stay counted: the chart is history.
//! - *summaries*: every workspace's snapshot count and newest time
//!   (`Catalog::workspace_summaries`), read again only when the catalog
//!   files changed (size or mtime of `catalog.sqlite` and its WAL).
//! - *status*: the `status --json` object ([`App::status`]), made again
//!   when a request finds it older than [`STATUS_FRESH`].
//! - *unique bytes* per workspace (`stats`): a walk of every blob, too
//!   slow for a request at scale; made on a background thread at start
//!   and again when the catalog changed, at most every
//!   [`UNIQUE_REFRESH`]. Pages show when the figures are from.
//!
//! The status object and the unique bytes are each made by one background
//! task at a time, and never both at once (issue #18: `serve`'s peak RSS
//! at 10,000 × 288 is the resident caches plus the larger of the two).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::chart::Ticks;
use super::guard::Token;
use super::{Limits, StatusFn};
use crate::browse::Reading;
use crate::catalog::WorkspaceSummary;
use crate::error::Result;
use crate::status::Level;
use crate::store::Store;
use crate::timespec;
use crate::workspace::WorkspaceName;

/// The status figures are made again in the background when a request
/// finds them older than this (that request gets the older ones)...
pub const STATUS_FRESH: Duration = Duration::from_secs(15);
/// ...and made while the request waits when they are older than this.
pub const STATUS_STALE: Duration = Duration::from_secs(120);

/// How often the unique bytes are made again at most.
pub const UNIQUE_REFRESH: Duration = Duration::from_secs(600);

/// What identifies one state of the catalog: its files' sizes and mtimes.
type Stamp = Vec<(u64, Option<SystemTime>)>;

/// Unique bytes per workspace and when they were made.
#[derive(Default)]
pub struct Unique {
    pub bytes: HashMap<WorkspaceName, u64>,
    pub made_ns: Option<i64>,
    pub error: Option<String>,
    stamp: Stamp,
    running: bool,
    started: Option<Instant>,
}

/// One status object, as the pages use it. At 10,000 workspaces the
/// object takes ~20 MB as a `serde_json::Value` (a map per workspace) and
/// 3 MB as text: it is kept as its text, which `/api/status` answers, and
/// as a `Value` without the per-workspace list, which the dashboard reads;
/// requests share it (`Arc`), never copy it.
pub struct Status {
    /// `serde_json::to_string_pretty` of the whole object.
    pub json: axum::body::Bytes,
    /// The object without its `workspaces` array.
    pub summary: serde_json::Value,
}

impl Status {
    fn new(mut v: serde_json::Value) -> Status {
        let json = serde_json::to_string_pretty(&v).unwrap_or_default().into();
        if let Some(o) = v.as_object_mut() {
            o.remove("workspaces");
        }
        give_back_freed_heap();
        Status { json, summary: v }
    }
}

/// Return the heap pages freed by the status object's ~20 MB of small
/// maps to the system. glibc keeps them otherwise, and the unique-bytes
/// walk's one large table is mapped apart from them, so the two would
/// add up in the server's peak RSS (issue #18).
fn give_back_freed_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator's
    // arenas; it takes no pointer and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The last status object made, and when.
#[derive(Default)]
struct StatusCache {
    made: Option<(Instant, Level, Arc<Status>)>,
    running: bool,
}

pub struct App {
    pub store: Store,
    pub token: Option<Token>,
    pub limits: Limits,
    status_fn: StatusFn,
    status: Arc<Mutex<StatusCache>>,
    ticks: Mutex<Ticks>,
    summaries: Mutex<Option<(Stamp, Arc<Vec<WorkspaceSummary>>)>>,
    unique: Arc<Mutex<Unique>>,
    /// Set while a background task makes the status object or the unique
    /// bytes: the two each take tens of MB at 10,000 workspaces × 288
    /// snapshots, so one starts only while the other is not running (the
    /// status answered meanwhile is at most [`STATUS_STALE`] old; the
    /// unique bytes start with a later request).
    background: Arc<AtomicBool>,
    store_dir: PathBuf,
}

impl App {
    pub fn open(
        store_dir: &Path,
        token: Option<Token>,
        limits: Limits,
        status: StatusFn,
    ) -> Result<App> {
        Ok(App {
            store: Store::open(store_dir)?,
            token,
            limits,
            status_fn: status,
            status: Arc::new(Mutex::new(StatusCache::default())),
            ticks: Mutex::new(Ticks::default()),
            summaries: Mutex::new(None),
            unique: Arc::new(Mutex::new(Unique::default())),
            background: Arc::new(AtomicBool::new(false)),
            store_dir: store_dir.to_path_buf(),
        })
    }

    /// Fill the caches before the first request (the first read of every
    /// snapshot row takes seconds at 2.9 million rows).
    pub fn warm(self: &Arc<Self>) {
        self.status();
        if let Err(e) = self.ticks() {
            tracing::warn!("chart data: {e}");
        }
        if let Err(e) = self.summaries() {
            tracing::warn!("workspace list: {e}");
        }
        self.refresh_unique();
    }

    /// The `status --json` object and its level. Made at most
    /// [`STATUS_FRESH`] ago, or being made again in the background while
    /// the one made before (at most [`STATUS_STALE`] old) is answered; its
    /// `checked_at` says when. At 10,000 workspaces one takes seconds
    /// (every workspace directory is listed), too long for each page.
    pub fn status(&self) -> (Level, Arc<Status>) {
        let mut c = self.status.lock().expect("status poisoned");
        if let Some((made, level, v)) = &c.made {
            let age = made.elapsed();
            if age < STATUS_STALE {
                let answer = (*level, Arc::clone(v));
                if age >= STATUS_FRESH && !c.running {
                    if let Some(busy) = Busy::take(&self.background) {
                        c.running = true;
                        let (f, cache) = (self.status_fn.clone(), self.status.clone());
                        std::thread::spawn(move || {
                            let _busy = busy;
                            let (level, v) = f();
                            let status = Arc::new(Status::new(v));
                            let mut c = cache.lock().expect("status poisoned");
                            c.made = Some((Instant::now(), level, status));
                            c.running = false;
                        });
                    }
                }
                return answer;
            }
        }
        let (level, v) = (self.status_fn)();
        let v = Arc::new(Status::new(v));
        c.made = Some((Instant::now(), level, Arc::clone(&v)));
        (level, v)
    }

    /// A reading view: the readers' lock and one pinned catalog.
    pub fn reading(&self) -> Result<Reading<'_>> {
        Reading::new(&self.store)
    }

    fn stamp(&self) -> Stamp {
        let cat = self.store.catalog_path();
        let mut wal = cat.clone().into_os_string();
        wal.push("-wal");
        [cat, PathBuf::from(wal)]
            .iter()
            .map(|p| match std::fs::metadata(p) {
                Ok(m) => (m.len(), m.modified().ok()),
                Err(_) => (0, None),
            })
            .collect()
    }

    /// The chart's data, brought up to date with the rows committed since
    /// the last call.
    pub fn ticks(&self) -> Result<Ticks> {
        let mut t = self.ticks.lock().expect("ticks poisoned");
        // Before the read: rows older than the chart's longest range are
        // passed over as they stream by, not collected and trimmed after.
        t.trim(timespec::now_ns());
        let reading = self.reading()?;
        let pack_bytes = reading.with_catalog(|cat| {
            cat.snapshot_additions_after(t.last_row, |row, time, added| t.add(row, time, added))?;
            cat.pack_bytes()
        })?;
        t.trim(timespec::now_ns());
        t.pack_bytes = pack_bytes;
        Ok(t.clone())
    }

    /// Every workspace with snapshots: count and newest time.
    pub fn summaries(&self) -> Result<Arc<Vec<WorkspaceSummary>>> {
        let stamp = self.stamp();
        let mut cached = self.summaries.lock().expect("summaries poisoned");
        if let Some((s, v)) = cached.as_ref() {
            if *s == stamp {
                return Ok(v.clone());
            }
        }
        let reading = self.reading()?;
        let v = Arc::new(reading.with_catalog(|cat| cat.workspace_summaries())?);
        *cached = Some((stamp, v.clone()));
        Ok(v)
    }

    /// Unique bytes per workspace as last made; starts a new computation
    /// in the background when the catalog changed and the last one is old.
    pub fn unique(self: &Arc<Self>) -> std::sync::MutexGuard<'_, Unique> {
        self.refresh_unique();
        self.unique.lock().expect("unique poisoned")
    }

    fn refresh_unique(self: &Arc<Self>) {
        let stamp = self.stamp();
        let busy;
        {
            let mut u = self.unique.lock().expect("unique poisoned");
            let due = u.started.is_none_or(|s| s.elapsed() >= UNIQUE_REFRESH);
            if u.running || (u.stamp == stamp && u.made_ns.is_some()) || !due {
                return;
            }
            let Some(taken) = Busy::take(&self.background) else {
                return;
            };
            busy = taken;
            u.running = true;
            u.started = Some(Instant::now());
        }
        let dir = self.store_dir.clone();
        let unique = self.unique.clone();
        std::thread::spawn(move || {
            let _busy = busy;
            let result = Store::open(&dir).and_then(|s| crate::stats::stats(&s, None));
            let mut u = unique.lock().expect("unique poisoned");
            u.running = false;
            match result {
                Ok(r) => {
                    u.bytes = r
                        .workspaces
                        .into_iter()
                        .map(|w| (w.workspace, w.unique_bytes))
                        .collect();
                    u.made_ns = Some(timespec::now_ns());
                    u.error = None;
                    u.stamp = stamp;
                }
                Err(e) => u.error = Some(e.to_string()),
            }
        });
    }
}

/// The mark that one background task runs ([`App`]'s `background`),
/// cleared when dropped (also when the task panics).
struct Busy(Arc<AtomicBool>);

impl Busy {
    fn take(flag: &Arc<AtomicBool>) -> Option<Busy> {
        flag.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            .then(|| Busy(flag.clone()))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}
