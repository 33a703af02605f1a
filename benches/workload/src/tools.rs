//! The tools under test and how each one snapshots, restores and prunes the
//! workspace root. Every tool gets the same excludes (wsnap's defaults).

use crate::proc::{self, run, Du, Usage};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Wsnap,
    OldScript,
    LinkDest,
    Restic,
    Borg,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "wsnap" => Kind::Wsnap,
            "old-script" => Kind::OldScript,
            "link-dest" => Kind::LinkDest,
            "restic" => Kind::Restic,
            "borg" => Kind::Borg,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Wsnap => "wsnap",
            Kind::OldScript => "old-script",
            Kind::LinkDest => "link-dest",
            Kind::Restic => "restic",
            Kind::Borg => "borg",
        }
    }
}

/// Whether restic and borg back up the whole root per tick or each workspace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Granularity {
    Root,
    Workspace,
}

/// What every tool shares.
pub struct Env {
    pub root: PathBuf,
    pub logs: PathBuf,
    pub cache: PathBuf,
    pub wsnap: PathBuf,
    pub granularity: Granularity,
    pub keep: usize,
    pub base_time: i64,
    /// Workspace names `user/project`.
    pub ws: Vec<String>,
}

impl Env {
    pub fn time(&self, t: u64) -> i64 {
        self.base_time + 300 * t as i64
    }
}

const EXCL: &[&str] = &[
    ".git",
    "__pycache__",
    "*.pyc",
    "node_modules",
    ".venv",
    "venv",
];

/// One full copy (old script) or hard-linked copy (link-dest) of a workspace.
struct Copy {
    tick: u64,
    dir: PathBuf,
    du: Du,
    on_disk: bool,
}

/// A verified restore: (files, bytes) compared, or what differed.
pub type Verified = Result<(u64, u64), String>;

pub struct TickRec {
    pub tick: u64,
    pub usage: Usage,
}

/// A tool, its store and everything measured for it.
pub struct Tool {
    pub kind: Kind,
    pub store: PathBuf,
    pub version: String,
    pub first: Usage,
    pub ticks: Vec<TickRec>,
    pub du: Vec<(u64, Du)>,
    pub notes: Vec<String>,
    pub restore: Option<(Usage, Verified)>,
    pub prune: Vec<(String, Usage)>,
    pub du_after_prune: Option<Du>,
    pub snapshots_after_prune: Option<usize>,
    ids: HashMap<(u64, usize), String>,
    copies: Vec<Vec<Copy>>,
    /// Old script: keep copies of these ticks on disk, account the rest.
    pub keep_on_disk: Option<Box<dyn Fn(u64) -> bool>>,
    link_seen: HashSet<(u64, u64)>,
    link_du: Du,
}

fn excl_args(kind: Kind) -> Vec<String> {
    let mut v = Vec::new();
    for e in EXCL {
        match kind {
            Kind::Restic => v.extend(["--exclude".to_string(), (*e).to_string()]),
            Kind::Borg => v.extend(["--exclude".to_string(), format!("sh:**/{e}")]),
            Kind::OldScript | Kind::LinkDest => {
                let p = if e.starts_with('*') {
                    (*e).to_string()
                } else {
                    format!("{e}/")
                };
                v.extend(["--exclude".to_string(), p]);
            }
            Kind::Wsnap => {}
        }
    }
    v
}

/// The version line of a tool, or None when it is not installed.
pub fn version(kind: Kind, wsnap: &Path) -> Option<String> {
    let (prog, arg) = match kind {
        Kind::Wsnap => (wsnap.as_os_str().to_owned(), "--version"),
        Kind::OldScript | Kind::LinkDest => ("rsync".into(), "--version"),
        Kind::Restic => ("restic".into(), "version"),
        Kind::Borg => ("borg".into(), "--version"),
    };
    let o = Command::new(prog).arg(arg).output().ok()?;
    o.status.success().then(|| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
}

fn ws_flat(ws: &str) -> String {
    ws.replace('/', "_")
}

impl Tool {
    pub fn new(kind: Kind, store: PathBuf, version: String, nws: usize) -> Tool {
        Tool {
            kind,
            store,
            version,
            first: Usage::default(),
            ticks: Vec::new(),
            du: Vec::new(),
            notes: Vec::new(),
            restore: None,
            prune: Vec::new(),
            du_after_prune: None,
            snapshots_after_prune: None,
            ids: HashMap::new(),
            copies: (0..nws).map(|_| Vec::new()).collect(),
            keep_on_disk: None,
            link_seen: HashSet::new(),
            link_du: Du::default(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn cmd(&self, env: &Env, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("RESTIC_PASSWORD", "wsnap-bench")
            .env("RESTIC_CACHE_DIR", env.cache.join("restic"))
            .env("BORG_BASE_DIR", env.cache.join("borg"))
            .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
            .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes")
            .env("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "YES")
            .env("TZ", "UTC");
        c
    }

    fn exec(&mut self, env: &Env, c: &mut Command, what: &str) -> Usage {
        let out = env.logs.join(format!("{}.out", self.name()));
        let err = env.logs.join(format!("{}.err", self.name()));
        let (u, e) = run(c, &out, &err);
        if let Some(e) = e {
            let msg = format!("{what}: {e}");
            eprintln!("[wsnap-bench] {}: {msg}", self.name());
            if self.notes.len() < 20 {
                self.notes.push(msg);
            }
        }
        u
    }

    /// Creates the empty store.
    pub fn init(&mut self, env: &Env) -> Result<(), String> {
        let _ = fs::remove_dir_all(&self.store);
        match self.kind {
            Kind::Restic => {
                let mut c = self.cmd(env, "restic");
                c.arg("-r")
                    .arg(&self.store)
                    .args(["init", "--repository-version", "2"]);
                let u = self.exec(env, &mut c, "restic init");
                if u.failures > 0 {
                    return Err("restic init failed".into());
                }
            }
            Kind::Borg => {
                let mut c = self.cmd(env, "borg");
                c.args(["init", "-e", "none"]).arg(&self.store);
                let u = self.exec(env, &mut c, "borg init");
                if u.failures > 0 {
                    return Err("borg init failed".into());
                }
            }
            Kind::OldScript | Kind::LinkDest => {
                fs::create_dir_all(&self.store).map_err(|e| e.to_string())?
            }
            Kind::Wsnap => {}
        }
        Ok(())
    }

    /// Snapshots every workspace at tick `t`; returns the summed cost.
    pub fn snapshot(&mut self, env: &Env, t: u64) -> Usage {
        let mut total = Usage::default();
        let when = env.time(t);
        match self.kind {
            Kind::Wsnap => {
                let mut c = Command::new(&env.wsnap);
                c.arg("--store")
                    .arg(&self.store)
                    .arg("snapshot")
                    .arg("--root")
                    .arg(&env.root);
                c.arg("--time").arg(proc::rfc3339(when)).arg("--json");
                total.add(self.exec(env, &mut c, &format!("snapshot tick {t}")));
            }
            Kind::Restic => {
                let targets: Vec<(usize, PathBuf)> = match env.granularity {
                    Granularity::Root => vec![(usize::MAX, env.root.clone())],
                    Granularity::Workspace => env
                        .ws
                        .iter()
                        .enumerate()
                        .map(|(i, w)| (i, env.root.join(w)))
                        .collect(),
                };
                let ts = proc::rfc3339(when).replace('T', " ").replace('Z', "");
                for (i, path) in targets {
                    let mut c = self.cmd(env, "restic");
                    c.arg("-r").arg(&self.store).args([
                        "backup",
                        "--compression",
                        "auto",
                        "--host",
                        "bench",
                        "--json",
                    ]);
                    c.args(["--time", &ts])
                        .args(excl_args(Kind::Restic))
                        .arg(&path);
                    total.add(self.exec(env, &mut c, &format!("backup tick {t}")));
                    let out = fs::read_to_string(env.logs.join("restic.out")).unwrap_or_default();
                    if let Some(id) = out
                        .lines()
                        .rev()
                        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                        .filter(|v| v["message_type"] == "summary")
                        .find_map(|v| v["snapshot_id"].as_str().map(str::to_string))
                    {
                        self.ids.insert((t, i), id);
                    }
                }
            }
            Kind::Borg => {
                let ts = proc::rfc3339(when).replace('Z', "");
                let targets: Vec<(String, String)> = match env.granularity {
                    Granularity::Root => vec![(format!("tick-{t:06}"), ".".to_string())],
                    Granularity::Workspace => env
                        .ws
                        .iter()
                        .map(|w| (format!("{}-{t:06}", ws_flat(w)), w.clone()))
                        .collect(),
                };
                for (arch, path) in targets {
                    let mut c = self.cmd(env, "borg");
                    c.current_dir(&env.root)
                        .args(["create", "-C", "zstd,3", "--timestamp", &ts]);
                    c.args(excl_args(Kind::Borg))
                        .arg(format!("{}::{arch}", self.store.display()))
                        .arg(&path);
                    total.add(self.exec(env, &mut c, &format!("create {arch}")));
                }
            }
            Kind::OldScript | Kind::LinkDest => {
                for (i, w) in env.ws.iter().enumerate() {
                    let dir = self
                        .store
                        .join(format!("{}_{}", ws_flat(w), proc::stamp(when)));
                    let mut c = self.cmd(env, "rsync");
                    c.args(["-a", "--delete"]).args(excl_args(self.kind));
                    if self.kind == Kind::LinkDest {
                        if let Some(prev) = self.copies[i].last() {
                            c.arg(format!("--link-dest={}", prev.dir.display()));
                        }
                    }
                    c.arg(format!("{}/", env.root.join(w).display()))
                        .arg(format!("{}/", dir.display()));
                    total.add(self.exec(env, &mut c, &format!("rsync {w} tick {t}")));
                    self.copies[i].push(Copy {
                        tick: t,
                        dir,
                        du: Du::default(),
                        on_disk: true,
                    });
                }
                self.account_copies(t);
            }
        }
        total
    }

    /// Untimed: records the size of the copies just made; the old script's
    /// copies that are not needed later are deleted and only accounted.
    fn account_copies(&mut self, t: u64) {
        for ws in 0..self.copies.len() {
            let c = self.copies[ws].last_mut().expect("copy just made");
            if self.kind == Kind::LinkDest {
                let before = self.link_du;
                du_new_inodes(&c.dir, &mut self.link_seen, &mut self.link_du);
                c.du = Du {
                    apparent: self.link_du.apparent - before.apparent,
                    allocated: self.link_du.allocated - before.allocated,
                };
                continue;
            }
            c.du = proc::du(&c.dir);
            if let Some(keep) = &self.keep_on_disk {
                for c in self.copies[ws].iter_mut() {
                    if c.on_disk && c.tick != t && !keep(c.tick) {
                        let _ = fs::remove_dir_all(&c.dir);
                        c.on_disk = false;
                    }
                }
            }
        }
    }

    /// Bytes of the store on disk. For the old script: the sum of its
    /// copies' sizes (full copies share nothing, so this is what `du` of all
    /// of them gives), including copies only accounted.
    pub fn store_du(&self) -> Du {
        match self.kind {
            Kind::OldScript | Kind::LinkDest => {
                // the store dir itself plus every copy
                let own = fs::symlink_metadata(&self.store)
                    .map(|m| (m.len(), m.blocks() * 512))
                    .unwrap_or((0, 0));
                let mut d = Du {
                    apparent: own.0,
                    allocated: own.1,
                };
                for c in self.copies.iter().flatten() {
                    d.apparent += c.du.apparent;
                    d.allocated += c.du.allocated;
                }
                d
            }
            _ => proc::du(&self.store),
        }
    }

    /// Restores workspace `wi` as it was at tick `t` into `dest`; returns
    /// the cost and the directory that holds the restored workspace.
    pub fn restore(&mut self, env: &Env, t: u64, wi: usize, dest: &Path) -> (Usage, PathBuf) {
        let _ = fs::remove_dir_all(dest);
        let w = &env.ws[wi];
        match self.kind {
            Kind::Wsnap => {
                let mut c = Command::new(&env.wsnap);
                c.arg("--store").arg(&self.store).args([
                    "restore",
                    w,
                    "--at",
                    &proc::rfc3339(env.time(t)),
                ]);
                c.arg("--to").arg(dest);
                (self.exec(env, &mut c, "restore"), dest.to_path_buf())
            }
            Kind::Restic => {
                let key = (
                    t,
                    if env.granularity == Granularity::Root {
                        usize::MAX
                    } else {
                        wi
                    },
                );
                let Some(id) = self.ids.get(&key).cloned() else {
                    self.notes
                        .push(format!("no restic snapshot id recorded for tick {t}"));
                    return (
                        Usage {
                            failures: 1,
                            ..Usage::default()
                        },
                        dest.to_path_buf(),
                    );
                };
                let mut c = self.cmd(env, "restic");
                c.arg("-r")
                    .arg(&self.store)
                    .args(["restore", &id, "--target"])
                    .arg(dest);
                c.arg("--include").arg(env.root.join(w));
                let got = dest.join(env.root.join(w).strip_prefix("/").expect("absolute root"));
                (self.exec(env, &mut c, "restore"), got)
            }
            Kind::Borg => {
                fs::create_dir_all(dest).expect("mkdir restore");
                let arch = match env.granularity {
                    Granularity::Root => format!("tick-{t:06}"),
                    Granularity::Workspace => format!("{}-{t:06}", ws_flat(w)),
                };
                let mut c = self.cmd(env, "borg");
                c.current_dir(dest)
                    .arg("extract")
                    .arg(format!("{}::{arch}", self.store.display()))
                    .arg(w);
                (self.exec(env, &mut c, "extract"), dest.join(w))
            }
            Kind::OldScript | Kind::LinkDest => {
                let Some(copy) = self.copies[wi].iter().find(|c| c.tick == t && c.on_disk) else {
                    self.notes
                        .push(format!("copy of tick {t} not kept on disk"));
                    return (
                        Usage {
                            failures: 1,
                            ..Usage::default()
                        },
                        dest.to_path_buf(),
                    );
                };
                let mut c = Command::new("cp");
                c.arg("-a").arg(&copy.dir).arg(dest);
                (self.exec(env, &mut c, "cp -a"), dest.to_path_buf())
            }
        }
    }

    /// Prunes to the newest `env.keep` snapshots of every workspace.
    pub fn prune(&mut self, env: &Env) {
        let k = env.keep.to_string();
        match self.kind {
            Kind::Wsnap => {
                let mut c = Command::new(&env.wsnap);
                c.arg("--store")
                    .arg(&self.store)
                    .args(["prune", "--keep-last", &k, "--json"]);
                let u = self.exec(env, &mut c, "prune");
                self.prune.push(("wsnap prune".into(), u));
            }
            Kind::Restic => {
                let mut c = self.cmd(env, "restic");
                c.arg("-r")
                    .arg(&self.store)
                    .args(["forget", "--keep-last", &k, "--prune"]);
                if env.granularity == Granularity::Workspace {
                    c.args(["--group-by", "paths"]);
                }
                let u = self.exec(env, &mut c, "forget --prune");
                self.prune.push(("restic forget --prune".into(), u));
            }
            Kind::Borg => {
                let mut total = Usage::default();
                let globs: Vec<Option<String>> = match env.granularity {
                    Granularity::Root => vec![None],
                    Granularity::Workspace => env
                        .ws
                        .iter()
                        .map(|w| Some(format!("{}-*", ws_flat(w))))
                        .collect(),
                };
                for g in globs {
                    let mut c = self.cmd(env, "borg");
                    c.args(["prune", "--keep-last", &k]);
                    if let Some(g) = g {
                        c.args(["--glob-archives", &g]);
                    }
                    c.arg(&self.store);
                    total.add(self.exec(env, &mut c, "prune"));
                }
                self.prune.push(("borg prune".into(), total));
                let mut c = self.cmd(env, "borg");
                c.arg("compact").arg(&self.store);
                let u = self.exec(env, &mut c, "compact");
                self.prune.push(("borg compact".into(), u));
            }
            Kind::OldScript | Kind::LinkDest => {
                let mut doomed = Vec::new();
                let mut accounted = 0usize;
                for cs in &mut self.copies {
                    let n = cs.len().saturating_sub(env.keep);
                    for c in cs.drain(..n) {
                        if c.on_disk {
                            doomed.push(c.dir);
                        } else {
                            accounted += 1;
                        }
                    }
                }
                let mut total = Usage::default();
                for part in doomed.chunks(200) {
                    let mut c = Command::new("rm");
                    c.arg("-rf").args(part);
                    total.add(self.exec(env, &mut c, "rm -rf"));
                }
                if accounted > 0 && !doomed.is_empty() {
                    let f = (doomed.len() + accounted) as f64 / doomed.len() as f64;
                    self.notes.push(format!(
                        "prune removed {} copies on disk; {accounted} more were only accounted, so the prune time is scaled by {f:.2}",
                        doomed.len()
                    ));
                    total.wall_s *= f;
                    total.cpu_s *= f;
                }
                if self.kind == Kind::LinkDest {
                    // what is left, walked again (hard links counted once)
                    self.link_seen.clear();
                    self.link_du = Du::default();
                    let dirs: Vec<PathBuf> = self
                        .copies
                        .iter()
                        .flatten()
                        .map(|c| c.dir.clone())
                        .collect();
                    for (i, d) in dirs.iter().enumerate() {
                        let before = self.link_du;
                        du_new_inodes(d, &mut self.link_seen, &mut self.link_du);
                        let c = self.copies.iter_mut().flatten().nth(i).expect("copy");
                        c.du = Du {
                            apparent: self.link_du.apparent - before.apparent,
                            allocated: self.link_du.allocated - before.allocated,
                        };
                    }
                }
                self.prune.push(("rm -rf oldest copies".into(), total));
            }
        }
    }

    /// Snapshots left after prune, as the tool reports them (or counts them).
    pub fn count_snapshots(&mut self, env: &Env) -> Option<usize> {
        let out = env.logs.join(format!("{}.list", self.name()));
        let err = env.logs.join(format!("{}.err", self.name()));
        let mut c = match self.kind {
            Kind::Wsnap => {
                let mut c = Command::new(&env.wsnap);
                c.arg("--store").arg(&self.store).args(["list", "--json"]);
                c
            }
            Kind::Restic => {
                let mut c = self.cmd(env, "restic");
                c.arg("-r").arg(&self.store).args(["snapshots", "--json"]);
                c
            }
            Kind::Borg => {
                let mut c = self.cmd(env, "borg");
                c.args(["list", "--short"]).arg(&self.store);
                c
            }
            Kind::OldScript | Kind::LinkDest => {
                return Some(self.copies.iter().map(Vec::len).sum())
            }
        };
        let (_, e) = run(&mut c, &out, &err);
        if e.is_some() {
            return None;
        }
        let text = fs::read_to_string(&out).ok()?;
        match self.kind {
            Kind::Borg => Some(
                text.lines().filter(|l| !l.trim().is_empty()).count()
                    * if env.granularity == Granularity::Root {
                        env.ws.len()
                    } else {
                        1
                    },
            ),
            Kind::Restic => serde_json::from_str::<serde_json::Value>(&text)
                .ok()?
                .as_array()
                .map(|a| {
                    a.len()
                        * if env.granularity == Granularity::Root {
                            env.ws.len()
                        } else {
                            1
                        }
                }),
            _ => {
                let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                count_wsnap(&v)
            }
        }
    }
}

fn count_wsnap(v: &serde_json::Value) -> Option<usize> {
    if let Some(a) = v.as_array() {
        return Some(a.len());
    }
    for key in ["snapshots", "workspaces"] {
        if let Some(a) = v[key].as_array() {
            if key == "workspaces" {
                return Some(
                    a.iter()
                        .map(|w| w["snapshots"].as_array().map_or(0, Vec::len))
                        .sum(),
                );
            }
            return Some(a.len());
        }
    }
    None
}

/// Adds to `d` every inode under `p` not in `seen` (directories always).
fn du_new_inodes(p: &Path, seen: &mut HashSet<(u64, u64)>, d: &mut Du) {
    let Ok(m) = fs::symlink_metadata(p) else {
        return;
    };
    if !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
        return;
    }
    d.apparent += m.len();
    d.allocated += m.blocks() * 512;
    if m.is_dir() {
        for e in fs::read_dir(p).into_iter().flatten().flatten() {
            du_new_inodes(&e.path(), seen, d);
        }
    }
}
