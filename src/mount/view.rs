//! What the mount sees of the catalog: a *generation* ([`Gen`]) is the
//! readers' lock plus one pinned catalog view, as a restore holds; every
//! read goes through one.
//!
//! - Open files keep the generation they were opened in: whatever a prune
//!   commits meanwhile, their chunks stay indexed in that view and gc
//!   deletes no pack while the lock is held (it leaves them for its next
//!   run). A file of a pruned snapshot stays readable to its end.
//! - Listings use the current generation. On every lookup or listing of the
//!   top directories (`/`, `snapshots/`, `workspaces/…` down to a project)
//!   the mount asks SQLite whether anything committed since
//!   (`PRAGMA data_version`, no table read); if so the next operation pins
//!   a new view: new snapshots appear, pruned ones vanish.
//! - An idle mount lets go: after [`IDLE`] without an operation the current
//!   generation is dropped (open files keep theirs), so a mount that nobody
//!   uses does not hold gc's pack deletion back.
//!
//! Snapshot names are computed per generation, on demand, per workspace
//! (one indexed query; for `snapshots/`, the few workspaces that can share
//! a name): no operation reads every snapshot of the store. `snapshots/`
//! is listed workspace by workspace (`snapshots_dir.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::catalog::{Catalog, PinnedCatalog};
use crate::error::Result;
use crate::id::{SnapshotId, TreeId};
use crate::lock::ReaderLock;
use crate::model::SnapshotRow;
use crate::store::Store;
use crate::workspace::WorkspaceName;

use super::names;

/// How long an unused generation is kept.
pub const IDLE: Duration = Duration::from_secs(2);

/// One snapshot as the mount shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapInfo {
    pub id: SnapshotId,
    pub ws: WorkspaceName,
    pub time_ns: i64,
    pub root: TreeId,
}

impl SnapInfo {
    fn of(s: &SnapshotRow) -> SnapInfo {
        SnapInfo {
            id: s.id,
            ws: s.workspace.clone(),
            time_ns: s.time_ns,
            root: s.root,
        }
    }
}

/// Users with snapshots, each with its projects (sorted).
pub type Users = Arc<BTreeMap<Vec<u8>, Vec<Vec<u8>>>>;
/// A workspace's snapshots, oldest first, each with its time name.
pub type Named = Arc<Vec<(Vec<u8>, SnapInfo)>>;

/// The readers' lock and one pinned catalog view, with the names computed
/// from that view.
pub struct Gen {
    _readers: ReaderLock,
    pub catalog: PinnedCatalog,
    only: Arc<Vec<WorkspaceName>>,
    users: OnceLock<Users>,
    per_ws: Mutex<BTreeMap<WorkspaceName, Named>>,
}

impl Gen {
    fn open(store: &Store, only: Arc<Vec<WorkspaceName>>) -> Result<Gen> {
        // Lock first, then the view: gc deletes nothing this view names.
        let readers = store.read_guard()?;
        let catalog = PinnedCatalog::open(&store.catalog_path())?;
        Ok(Gen {
            _readers: readers,
            catalog,
            only,
            users: OnceLock::new(),
            per_ws: Mutex::new(BTreeMap::new()),
        })
    }

    fn shown(&self, ws: &WorkspaceName) -> bool {
        self.only.is_empty() || self.only.contains(ws)
    }

    /// Users with snapshots, each with its projects (sorted).
    pub fn users(&self) -> Result<Users> {
        if let Some(u) = self.users.get() {
            return Ok(u.clone());
        }
        let mut map: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        for ws in self.catalog.with(|c| c.workspaces())? {
            if self.shown(&ws) {
                map.entry(ws.user).or_default().push(ws.project);
            }
        }
        Ok(self.users.get_or_init(|| Arc::new(map)).clone())
    }

    /// The snapshots of `ws`, oldest first, each with its time name.
    pub fn workspace(&self, ws: &WorkspaceName) -> Result<Named> {
        if let Some(v) = self.per_ws.lock().expect("poisoned").get(ws) {
            return Ok(v.clone());
        }
        let rows = if self.shown(ws) {
            self.catalog.with(|c| c.snapshots(Some(ws)))?
        } else {
            Vec::new()
        };
        let named: Vec<names::Named<'_>> = rows
            .iter()
            .map(|s| names::Named {
                base: names::time_name(s.time_ns),
                time_ns: s.time_ns,
                ws: &s.workspace,
                id: s.id,
            })
            .collect();
        let list: Vec<_> = names::disambiguate(&named)
            .into_iter()
            .zip(rows.iter().map(SnapInfo::of))
            .collect();
        let list = Arc::new(list);
        self.per_ws
            .lock()
            .expect("poisoned")
            .insert(ws.clone(), list.clone());
        Ok(list)
    }

    /// The snapshots of `ws` as `snapshots/` names them (old-script
    /// names), oldest first. A name can be shared only by snapshots of
    /// the workspaces whose `<user>_<project>` is the same (`a_b` + `c`
    /// beside `a` + `b_c`), so only those workspaces are read: the cost is
    /// a few workspaces' snapshots, never the store's (2.88 M at 10,000 ×
    /// 288). Names longer than the kernel passes are left out (and logged:
    /// those snapshots are under `workspaces/`).
    pub fn old_names_of(&self, ws: &WorkspaceName) -> Result<Vec<(Vec<u8>, SnapInfo)>> {
        let prefix = old_prefix(ws);
        let users = self.users()?;
        let mut rows: Vec<SnapshotRow> = Vec::new();
        for w in names_sharing(&prefix, ws) {
            let known = users.get(&w.user).is_some_and(|p| p.contains(&w.project));
            if known {
                rows.extend(self.catalog.with(|c| c.snapshots(Some(&w)))?);
            }
        }
        let named: Vec<names::Named<'_>> = rows
            .iter()
            .map(|s| names::Named {
                base: names::old_name(&s.workspace, s.time_ns),
                time_ns: s.time_ns,
                ws: &s.workspace,
                id: s.id,
            })
            .collect();
        let mut out = Vec::new();
        let mut too_long = 0usize;
        for (name, s) in names::disambiguate(&named).into_iter().zip(&rows) {
            if s.workspace != *ws {
                continue;
            }
            if name.len() > names::NAME_MAX {
                too_long += 1;
                continue;
            }
            out.push((name, SnapInfo::of(s)));
        }
        if too_long > 0 {
            tracing::warn!(
                "{too_long} snapshots of {ws} have a user and project too long for one name \
                 under snapshots/ ({} bytes at most); they are under workspaces/",
                names::NAME_MAX
            );
        }
        Ok(out)
    }

    /// The snapshot shown as `name` under `snapshots/`, if any: read from
    /// the workspaces its `<user>_<project>` can stand for.
    pub fn old_name(&self, name: &[u8]) -> Result<Option<SnapInfo>> {
        // `<prefix>_<YYYYmmdd_HHMMSS>`, maybe with `.N`.
        let base = match name.iter().rposition(|&c| c == b'.') {
            Some(dot) if name[dot + 1..].iter().all(u8::is_ascii_digit) => &name[..dot],
            _ => name,
        };
        let Some((prefix, _)) = crate::old_backup::split_name(base) else {
            return Ok(None);
        };
        let users = self.users()?;
        for ws in crate::import::splits(prefix) {
            let known = users.get(&ws.user).is_some_and(|p| p.contains(&ws.project));
            if !known {
                continue;
            }
            if let Some((_, s)) = self.old_names_of(&ws)?.into_iter().find(|(n, _)| n == name) {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// Whether snapshot `id` is still in the catalog (a fresh look, not
    /// this generation's view).
    pub fn still_there(store: &Store, id: &SnapshotId) -> bool {
        store
            .catalog_for_reading()
            .and_then(|c| c.has_snapshot(id))
            .unwrap_or(true)
    }
}

struct Current {
    gen: Option<Arc<Gen>>,
    /// `data_version` read just before `gen` was pinned.
    version: i64,
    used: Instant,
}

/// The mount's current generation, renewed when the catalog changes and
/// dropped when idle.
pub struct View {
    store: Arc<Store>,
    only: Arc<Vec<WorkspaceName>>,
    current: Mutex<Current>,
    /// An unpinned connection, asked only `data_version`.
    probe: Mutex<Option<Catalog>>,
}

impl View {
    pub fn new(store: Arc<Store>, only: Vec<WorkspaceName>) -> View {
        View {
            store,
            only: Arc::new(only),
            current: Mutex::new(Current {
                gen: None,
                version: 0,
                used: Instant::now(),
            }),
            probe: Mutex::new(None),
        }
    }

    /// The current generation (a new one if there is none).
    pub fn gen(&self) -> Result<Arc<Gen>> {
        self.get(false)
    }

    /// The current generation, renewed first if the catalog changed since
    /// it was pinned (the top directories ask for this one).
    pub fn fresh_gen(&self) -> Result<Arc<Gen>> {
        self.get(true)
    }

    fn get(&self, fresh: bool) -> Result<Arc<Gen>> {
        let mut cur = self.current.lock().expect("poisoned");
        cur.used = Instant::now();
        if let Some(g) = &cur.gen {
            if !fresh || self.version()? == cur.version {
                return Ok(g.clone());
            }
        }
        // Read the version before pinning: a commit in between makes the
        // next check renew once more, never miss a change.
        let version = self.version()?;
        let g = Arc::new(Gen::open(&self.store, self.only.clone())?);
        cur.gen = Some(g.clone());
        cur.version = version;
        Ok(g)
    }

    fn version(&self) -> Result<i64> {
        let mut probe = self.probe.lock().expect("poisoned");
        if probe.is_none() {
            *probe = Some(self.store.catalog_for_reading()?);
        }
        probe.as_ref().expect("just set").data_version()
    }

    /// Drop the current generation if unused for [`IDLE`] (called by the
    /// mount's housekeeping thread).
    pub fn release_if_idle(&self) {
        let mut cur = self.current.lock().expect("poisoned");
        if cur.gen.is_some() && cur.used.elapsed() >= IDLE {
            cur.gen = None;
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// `<user>_<project>`, the part of an old-script name before the time.
fn old_prefix(ws: &WorkspaceName) -> Vec<u8> {
    let mut p = ws.user.clone();
    p.push(b'_');
    p.extend_from_slice(&ws.project);
    p
}

/// The workspaces whose old-script names can equal those of `ws`
/// (`prefix` is its `<user>_<project>`): every split of the prefix, and
/// `ws` itself.
fn names_sharing(prefix: &[u8], ws: &WorkspaceName) -> Vec<WorkspaceName> {
    let mut all = crate::import::splits(prefix);
    if !all.contains(ws) {
        all.push(ws.clone());
    }
    all.sort();
    all
}
