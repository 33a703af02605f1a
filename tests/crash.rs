//! Crash safety: kill `wsnap` with SIGKILL at every crash point of gc and of
//! the snapshot writer (`WSNAP_CRASH_AT=name:n`, see `src/failpoint.rs`),
//! then recover with a normal run and check that
//!
//! - every snapshot `list` shows restores byte-identically to a copy of the
//!   tree saved when it was taken, and a crashed run's snapshot exists whole
//!   or not at all;
//! - the recovery leaves nothing behind: a further gc finds no orphan packs
//!   and nothing to delete or rewrite, and the packs take no more room than a
//!   clean, uncrashed run's;
//! - data that `forget` or `prune` dropped is gone from disk afterwards.
//!
//! Where a crash point is not reached for a given `n`, the child exits 0
//! normally; both outcomes are accepted and larger `n` are skipped. Each
//! crashed run is followed by a second crashing run at the same point
//! (a crash during recovery) before the clean recovery.
//!
//! Trees are small and each loop runs its cases on a few threads: the cost
//! is mostly fsync, not CPU.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use common::*;

const MIN: i64 = 60 * 1_000_000_000;

const WS: [&str; 3] = ["alice/proj", "bob/thesis", "carol/lab"];

/// Threads per loop.
const WORKERS: usize = 3;

/// Slack allowed over a clean run's pack bytes (equality is expected).
const SLACK_BYTES: u64 = 4096;

const GC_POINTS: [&str; 8] = [
    "gc.collected",
    "gc.repack_sealed",
    "gc.before_commit",
    "gc.committed",
    "gc.journal_rewritten",
    "gc.old_pack_removed",
    "gc.orphan_removed",
    "pack.before_rename",
];

const SNAPSHOT_POINTS: [&str; 5] = [
    "snapshot.pack_sealed",
    "snapshot.pack_indexed",
    "snapshot.before_commit",
    "snapshot.committed",
    "pack.before_rename",
];

// ---------------------------------------------------------------------------
// Kill accounting
// ---------------------------------------------------------------------------

static KILLS: AtomicU64 = AtomicU64::new(0);
static LOOPS_DONE: AtomicUsize = AtomicUsize::new(0);
/// The tests below that count kills.
const LOOPS: usize = 4;

fn loop_done(name: &str, kills: u64) {
    let total = KILLS.fetch_add(kills, Ordering::SeqCst) + kills;
    let done = LOOPS_DONE.fetch_add(1, Ordering::SeqCst) + 1;
    eprintln!("crash: {name}: {kills} kills (running total {total}, {done}/{LOOPS} loops)");
    if done == LOOPS {
        eprintln!("crash: TOTAL KILLS across all loops: {total}");
    }
}

// ---------------------------------------------------------------------------
// Running a child that may kill itself
// ---------------------------------------------------------------------------

enum Fate {
    Killed,
    Exited(Out),
}

impl std::fmt::Debug for Fate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fate::Killed => write!(f, "killed by SIGKILL"),
            Fate::Exited(out) => write!(f, "exited\n{out}"),
        }
    }
}

impl Fate {
    fn killed(&self) -> bool {
        matches!(self, Fate::Killed)
    }
}

/// Run `wsnap ARGS` on `env` with `WSNAP_CRASH_AT=spec`: SIGKILL (the crash
/// point was reached) or exit 0 (it was not). Anything else fails.
#[track_caller]
fn run_crashing(env: &TestEnv, args: &[&str], extra_env: &[(&str, &str)], spec: &str) -> Fate {
    let mut c = env.std_cmd();
    c.env("WSNAP_CRASH_AT", spec).args(args);
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let mut c = with_timeout(c);
    let t0 = Instant::now();
    let o = c.output().expect("run wsnap");
    let out = Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    // The timeout also kills with SIGKILL: tell the two apart.
    assert!(
        t0.elapsed() < RUN_TIMEOUT - std::time::Duration::from_secs(5),
        "WSNAP_CRASH_AT={spec} {args:?}: hung until the timeout\n{out}"
    );
    match o.status.signal() {
        Some(9) => Fate::Killed,
        Some(sig) => panic!("WSNAP_CRASH_AT={spec} {args:?}: died by signal {sig}\n{out}"),
        None => {
            assert_eq!(
                out.code, 0,
                "WSNAP_CRASH_AT={spec} {args:?}: neither killed nor exit 0\n{out}"
            );
            Fate::Exited(out)
        }
    }
}

/// `wsnap ARGS` on `env` (no crash point), asserting exit 0.
#[track_caller]
fn ok(env: &TestEnv, args: &[&str]) -> Out {
    let mut c = env.cmd();
    c.args(args);
    expect_code(&mut c, 0)
}

/// Run `jobs` on [`WORKERS`] threads; each returns its kill count. A failing
/// job does not stop the others: every failure is reported at the end.
fn parallel<J: Send + std::fmt::Debug>(jobs: Vec<J>, f: impl Fn(J) -> u64 + Sync) -> u64 {
    let queue = Mutex::new(jobs.into_iter().collect::<VecDeque<J>>());
    let kills = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..WORKERS {
            sc.spawn(|| loop {
                let Some(job) = queue.lock().unwrap().pop_front() else {
                    break;
                };
                let name = format!("{job:?}");
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(job))) {
                    Ok(k) => {
                        kills.fetch_add(k, Ordering::SeqCst);
                    }
                    Err(e) => {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failures.lock().unwrap().push(format!("job {name}:\n{msg}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} crash case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    kills.into_inner()
}

// ---------------------------------------------------------------------------
// Building trees and base stores
// ---------------------------------------------------------------------------

fn tick_time(i: u64) -> i64 {
    utc_ns(2026, 3, 2, 9, 0, 0) + i as i64 * 10 * MIN
}

/// Content of `tick.bin` of workspace `k` at tick `i`: unique to that
/// tick's snapshot (rewritten every tick).
fn tick_bytes(k: usize, i: u64) -> Vec<u8> {
    random_bytes(10_000 + 100 * k as u64 + i, 6 * KIB)
}

/// Windows of the tick files a gc must have purged.
fn tick_needles(ticks: &[(usize, u64)]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for &(k, i) in ticks {
        let b = tick_bytes(k, i);
        out.push(b[..64].to_vec());
        out.push(b[3000..3064].to_vec());
    }
    out
}

/// Change workspace `k` for tick `i`: a note appended, the unique tick
/// file rewritten, a data file added and the one from three ticks ago
/// removed, `big.bin` rewritten every third tick.
fn edit(env: &TestEnv, k: usize, i: u64) {
    let (user, project) = WS[k].split_once('/').unwrap();
    let ws = env.ws(user, project);
    let m = tick_time(i) - 30 * MIN + k as i64;
    if !ws.join("static.txt").exists() {
        write_file(&ws.join("static.txt"), &b"static\n".repeat(300), 0o644, m);
        write_file(&ws.join("notes.txt"), b"notes\n", 0o600, m);
    }
    let mut notes = fs::read(ws.join("notes.txt")).unwrap();
    notes.extend_from_slice(format!("tick {i} of {}\n", WS[k]).as_bytes());
    write_file(&ws.join("notes.txt"), &notes, 0o600, m + 1);
    write_file(&ws.join("tick.bin"), &tick_bytes(k, i), 0o644, m + 2);
    write_file(
        &ws.join(format!("data/t{i}.bin")),
        &random_bytes(20_000 + 100 * k as u64 + i, 3 * KIB),
        0o640,
        m + 3,
    );
    if i >= 3 {
        let _ = fs::remove_file(ws.join(format!("data/t{}.bin", i - 3)));
    }
    if i % 3 == k as u64 % 3 || !ws.join("big.bin").exists() {
        write_file(
            &ws.join("big.bin"),
            &random_bytes(30_000 + 100 * k as u64 + i, 40 * KIB),
            0o644,
            m + 4,
        );
    }
}

/// A store with history, the tree it was taken from, and a saved copy of
/// every snapshot's tree.
struct Base {
    env: TestEnv,
    /// (workspace, time_ns) → saved copy of the tree at that snapshot.
    saved: BTreeMap<(String, i64), PathBuf>,
    /// Snapshot ids by (workspace index, tick).
    ids: BTreeMap<(usize, u64), String>,
    /// Kills spent building it.
    kills: u64,
}

/// `ticks` snapshots of all three workspaces (one run per tick, each
/// workspace changed every tick), each tree saved.
fn build_base(ticks: u64) -> Base {
    let env = TestEnv::new();
    let mut saved = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for i in 0..ticks {
        for k in 0..WS.len() {
            edit(&env, k, i);
        }
        let r = snapshot_at(&env, &[], tick_time(i));
        for (k, w) in WS.iter().enumerate() {
            let (user, project) = w.split_once('/').unwrap();
            let copy = env.path(format!("saved/{k}/{i}"));
            copy_tree(&env.root.join(user).join(project), &copy);
            saved.insert((w.to_string(), tick_time(i)), copy);
            let rep = r["workspaces"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| ws_of(x) == *w)
                .unwrap_or_else(|| panic!("{w} missing from {r:#}"));
            assert_eq!(rep["status"], "ok", "{r:#}");
            ids.insert((k, i), s(rep, "id").to_string());
        }
    }
    Base {
        env,
        saved,
        ids,
        kills: 0,
    }
}

/// Copy a base store (and, for snapshot tests, its tree) into a fresh env.
fn fresh_copy(base: &Base, with_root: bool) -> TestEnv {
    let env = TestEnv::new();
    copy_tree(&base.env.store, &env.store);
    if with_root {
        copy_tree(&base.env.root, &env.root);
    }
    env
}

/// Restore every listed snapshot and compare it with its saved copy
/// (looked up in `saved`, then `extra`); returns the listed keys.
#[track_caller]
fn verify_restores(
    env: &TestEnv,
    saved: &BTreeMap<(String, i64), PathBuf>,
    extra: &BTreeMap<(String, i64), PathBuf>,
    ctx: &str,
) -> BTreeSet<(String, i64)> {
    let list = list_json(env);
    let mut keys = BTreeSet::new();
    for x in &list {
        let key = (ws_of(x), x["time_ns"].as_i64().unwrap());
        let copy = saved
            .get(&key)
            .or_else(|| extra.get(&key))
            .unwrap_or_else(|| panic!("{ctx}: listed snapshot {key:?} was never taken: {x:#}"));
        let id = s(x, "id");
        let target = env.path(format!("restored/{}", &id[..16]));
        let mut c = env.cmd();
        c.args(["restore", &key.0, "--snapshot", id, "--to"])
            .arg(&target);
        let out = run(&mut c);
        assert_eq!(
            out.code, 0,
            "{ctx}: restore of {key:?} ({id}) failed\n{out}"
        );
        let r = std::panic::catch_unwind(|| assert_trees_equal(copy, &target));
        if let Err(e) = r {
            panic!(
                "{ctx}: snapshot {key:?} ({id}) restored differently: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            );
        }
        fs::remove_dir_all(&target).unwrap();
        assert!(keys.insert(key.clone()), "{ctx}: {key:?} listed twice");
    }
    keys
}

/// After recovery: `tmp/` holds no leftovers.
#[track_caller]
fn assert_tmp_empty(env: &TestEnv, ctx: &str) {
    let tmp = env.store.join("tmp");
    if tmp.is_dir() {
        let left = all_files(&tmp);
        assert!(left.is_empty(), "{ctx}: leftovers in tmp/: {left:?}");
    }
}

/// A gc after recovery must find nothing: no orphans, nothing to delete or
/// rewrite, nothing forgotten.
#[track_caller]
fn assert_quiet_gc(env: &TestEnv, args: &[&str], ctx: &str) {
    let r = ok(env, args).json();
    for k in [
        "orphan_packs_removed",
        "packs_deleted",
        "packs_rewritten",
        "packs_written",
        "blobs_deleted",
        "freed_bytes",
    ] {
        assert_eq!(u(&r, k), 0, "{ctx}: further gc {args:?}: {k} != 0\n{r:#}");
    }
    assert_eq!(
        r["forgotten"].as_array().map(|a| a.len()),
        Some(0),
        "{ctx}: further gc forgot snapshots: {r:#}"
    );
}

/// The end state that shows nothing leaked: forgetting every snapshot
/// leaves no pack file at all (an orphan or a never-collected blob would
/// keep its pack).
#[track_caller]
fn assert_forget_all_empties_store(env: &TestEnv, ctx: &str) {
    let ids: Vec<String> = list_json(env)
        .iter()
        .map(|x| s(x, "id").to_string())
        .collect();
    let mut c = env.cmd();
    c.args(["forget", "--json"]);
    for id in &ids {
        c.args(["--snapshot", id]);
    }
    let out = expect_code(&mut c, 0);
    assert!(
        list_json(env).is_empty(),
        "{ctx}: snapshots left after forgetting all"
    );
    let left = pack_files(&env.store);
    assert!(
        left.iter().all(|p| !p.is_file()),
        "{ctx}: pack files left after forgetting every snapshot: {left:#?}\n{out}"
    );
}

// ---------------------------------------------------------------------------
// gc: prune and forget
// ---------------------------------------------------------------------------

/// The gc base: 3 workspaces × 8 ticks, plus leftovers of crashed snapshot
/// runs for gc to clean up: three orphan packs (killed after the pack was
/// renamed into place, before it was indexed) and one indexed pack whose
/// snapshot never committed.
fn gc_base() -> Base {
    let mut base = build_base(8);
    let env = &base.env;
    for (j, point) in [
        "snapshot.pack_sealed",
        "snapshot.pack_sealed",
        "snapshot.pack_sealed",
        "snapshot.pack_indexed",
    ]
    .iter()
    .enumerate()
    {
        let ws = env.ws("alice", "proj");
        write(
            &ws.join(format!("crashed{j}.bin")),
            &random_bytes(40_000 + j as u64, 5 * KIB),
        );
        let args = [
            "snapshot",
            "--root",
            env.root.to_str().unwrap(),
            "--time",
            "2026-03-02T12:00:00Z",
        ];
        let fate = run_crashing(env, &args, &[], point);
        assert!(fate.killed(), "setting up {point}: not killed: {fate:?}");
        base.kills += 1;
    }
    base
}

struct Clean {
    keys: BTreeSet<(String, i64)>,
    pack_bytes: u64,
}

/// Run `args` on an uncrashed copy of the base: the reference result.
fn clean_run(base: &Base, args: &[&str], min_orphans: u64) -> Clean {
    let env = fresh_copy(base, false);
    let r = ok(&env, args).json();
    assert!(
        u(&r, "orphan_packs_removed") >= min_orphans,
        "clean {args:?} should remove the base's orphan packs: {r:#}"
    );
    assert!(
        u(&r, "packs_rewritten") > 0 && u(&r, "packs_written") > 0,
        "{r:#}"
    );
    let keys = verify_restores(&env, &base.saved, &BTreeMap::new(), "clean run");
    Clean {
        keys,
        pack_bytes: pack_bytes(&env.store),
    }
}

/// Shared checks after a gc crash and its recovery.
fn check_recovered(
    env: &TestEnv,
    base: &Base,
    clean: &Clean,
    further: &[&str],
    purged: &[Vec<u8>],
    ctx: &str,
) {
    let keys = verify_restores(env, &base.saved, &BTreeMap::new(), ctx);
    assert_eq!(
        keys, clean.keys,
        "{ctx}: listed snapshots differ from a clean run's"
    );
    assert_tmp_empty(env, ctx);
    let hits = files_containing(&env.store, purged);
    assert!(
        hits.is_empty(),
        "{ctx}: forgotten data still on disk: {hits:#?}"
    );
    assert_quiet_gc(env, further, ctx);
    let bytes = pack_bytes(&env.store);
    assert!(
        bytes <= clean.pack_bytes + SLACK_BYTES,
        "{ctx}: pack bytes {bytes} > clean run's {} (+{SLACK_BYTES})\npacks: {:#?}",
        clean.pack_bytes,
        pack_files(&env.store)
    );
    if bytes != clean.pack_bytes {
        eprintln!(
            "crash: {ctx}: pack bytes {bytes} vs clean {}",
            clean.pack_bytes
        );
    }
    assert_forget_all_empties_store(env, ctx);
}

#[test]
fn gc_prune_crash_loop() {
    let t0 = Instant::now();
    let base = gc_base();
    let prune: &[&str] = &["prune", "--keep-last", "3", "--max-unused", "0", "--json"];
    let clean = clean_run(&base, prune, 3);
    assert_eq!(clean.keys.len(), 9);
    // Ticks 0..5 are forgotten: their unique tick files must be gone.
    let purged = tick_needles(
        &(0..3)
            .flat_map(|k| (0..5).map(move |i| (k, i)))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        files_containing(&base.env.store, &purged).len(),
        purged.len(),
        "the base store should hold every purged needle once"
    );

    let reached = Mutex::new(BTreeSet::new());
    let kills = parallel(GC_POINTS.to_vec(), |point| {
        let mut kills = 0;
        for n in 1..=3 {
            let spec = format!("{point}:{n}");
            let ctx = format!("prune with WSNAP_CRASH_AT={spec}");
            let env = fresh_copy(&base, false);
            let first = run_crashing(&env, prune, &[], &spec);
            if first.killed() {
                kills += 1;
                reached.lock().unwrap().insert(point);
                // Crash again during recovery, at the same point.
                if run_crashing(&env, prune, &[], &spec).killed() {
                    kills += 1;
                }
            }
            let rec = ok(&env, prune).json();
            if !first.killed() {
                // The crash point was not reached: that run was complete
                // and this one must have nothing left to do.
                assert_eq!(u(&rec, "packs_written"), 0, "{ctx}: {rec:#}");
            }
            check_recovered(&env, &base, &clean, prune, &purged, &ctx);
            if !first.killed() {
                break; // larger n are not reached either
            }
        }
        kills
    });
    let reached = reached.into_inner().unwrap();
    for p in GC_POINTS {
        assert!(
            reached.contains(p),
            "crash point {p} was never reached by prune"
        );
    }
    eprintln!("crash: gc_prune_crash_loop took {:.1?}", t0.elapsed());
    loop_done("gc prune", kills + base.kills);
}

#[test]
fn gc_forget_crash_loop() {
    let t0 = Instant::now();
    let base = gc_base();
    // Forget ticks 1, 3 and 5 of every workspace.
    let gone: Vec<(usize, u64)> = (0..3).flat_map(|k| [1, 3, 5].map(|i| (k, i))).collect();
    let ids: Vec<String> = gone.iter().map(|key| base.ids[key].clone()).collect();
    let mut forget: Vec<&str> = vec!["forget", "--json"];
    for id in &ids {
        forget.extend(["--snapshot", id.as_str()]);
    }
    // After a committed forget, a prune that keeps everything cleans up.
    let cleanup: &[&str] = &[
        "prune",
        "--keep-last",
        "1000",
        "--max-unused",
        "0",
        "--json",
    ];
    let clean = clean_run(&base, &forget, 3);
    assert_eq!(clean.keys.len(), 24 - 9);
    let purged = tick_needles(&gone);
    assert_eq!(
        files_containing(&base.env.store, &purged).len(),
        purged.len()
    );

    let reached = Mutex::new(BTreeSet::new());
    let kills = parallel(GC_POINTS.to_vec(), |point| {
        let mut kills = 0;
        for n in 1..=3 {
            let spec = format!("{point}:{n}");
            let ctx = format!("forget with WSNAP_CRASH_AT={spec}");
            let env = fresh_copy(&base, false);
            let all_present = |env: &TestEnv| -> bool {
                let listed: BTreeSet<String> = list_json(env)
                    .iter()
                    .map(|x| s(x, "id").to_string())
                    .collect();
                let present = ids.iter().filter(|id| listed.contains(*id)).count();
                assert!(
                    present == 0 || present == ids.len(),
                    "{ctx}: forget was not atomic: {present} of {} snapshots left",
                    ids.len()
                );
                present == ids.len()
            };
            let first = run_crashing(&env, &forget, &[], &spec);
            if first.killed() {
                kills += 1;
                reached.lock().unwrap().insert(point);
                if all_present(&env) {
                    // Killed before the commit: forgetting again may crash
                    // again at the same point.
                    if run_crashing(&env, &forget, &[], &spec).killed() {
                        kills += 1;
                    }
                } else if run_crashing(&env, cleanup, &[], &spec).killed() {
                    kills += 1;
                }
            }
            if all_present(&env) {
                ok(&env, &forget);
            } else {
                ok(&env, cleanup);
            }
            check_recovered(&env, &base, &clean, cleanup, &purged, &ctx);
            if !first.killed() {
                break;
            }
        }
        kills
    });
    let reached = reached.into_inner().unwrap();
    for p in GC_POINTS {
        assert!(
            reached.contains(p),
            "crash point {p} was never reached by forget"
        );
    }
    eprintln!("crash: gc_forget_crash_loop took {:.1?}", t0.elapsed());
    loop_done("gc forget", kills + base.kills);
}

// ---------------------------------------------------------------------------
// snapshot, and snapshot --prune
// ---------------------------------------------------------------------------

/// Change every workspace of `env` for tick `i` and save copies of the
/// trees under `(workspace, time)` for each time in `times`.
fn edit_all_and_save(env: &TestEnv, i: u64, times: &[i64]) -> BTreeMap<(String, i64), PathBuf> {
    let mut saved = BTreeMap::new();
    for (k, w) in WS.iter().enumerate() {
        edit(env, k, i);
        let (user, project) = w.split_once('/').unwrap();
        let copy = env.path(format!("saved/{k}/{i}"));
        copy_tree(&env.root.join(user).join(project), &copy);
        for &t in times {
            saved.insert((w.to_string(), t), copy.clone());
        }
    }
    saved
}

#[test]
fn snapshot_crash_loop() {
    let t0 = Instant::now();
    let base = build_base(3);
    let t_crash = tick_time(3);
    let t_next = tick_time(4);
    // `group`: snapshots per group commit. 1 commits each workspace on its
    // own (as a run does once a group is due), so `:2` stops a run between
    // two commits; 0 keeps the default, one group for the whole run.
    let jobs: Vec<(&str, u64, usize)> = SNAPSHOT_POINTS
        .iter()
        .flat_map(|&p| [(p, 1, 1), (p, 2, 1), (p, 1, 0)])
        .collect();
    let reached = Mutex::new(BTreeSet::new());
    let kills = parallel(jobs, |(point, n, group)| {
        let spec = format!("{point}:{n}");
        let ctx = format!("snapshot with WSNAP_CRASH_AT={spec} WSNAP_GROUP_ROWS={group}");
        let env = fresh_copy(&base, true);
        let saved = edit_all_and_save(&env, 3, &[t_crash, t_next]);
        let root = env.root.to_str().unwrap().to_string();
        let crash_args = ["snapshot", "--root", &root, "--time", &rfc3339(t_crash)];
        let group_env = group.to_string();
        let fate = run_crashing(
            &env,
            &crash_args,
            &[("WSNAP_GROUP_ROWS", group_env.as_str())],
            &spec,
        );
        if fate.killed() {
            reached.lock().unwrap().insert(point);
        }
        ok(
            &env,
            &["snapshot", "--root", &root, "--time", &rfc3339(t_next)],
        );

        let keys = verify_restores(&env, &base.saved, &saved, &ctx);
        let base_keys: BTreeSet<_> = base.saved.keys().cloned().collect();
        assert!(base_keys.is_subset(&keys), "{ctx}: base snapshots lost");
        let crashed = keys.iter().filter(|(_, t)| *t == t_crash).count();
        let next = keys.iter().filter(|(_, t)| *t == t_next).count();
        assert_eq!(
            next, 3,
            "{ctx}: the run after the crash must snapshot every workspace"
        );
        if !fate.killed() {
            assert_eq!(
                crashed, 3,
                "{ctx}: not killed, so all three must have committed"
            );
        }
        if group == 1 && point == "snapshot.committed" {
            // Killed right after committing workspace n.
            assert_eq!(crashed, n as usize, "{ctx}");
        }
        if group == 0 && fate.killed() {
            // One group: all three snapshots commit together or not at all.
            let want = if point == "snapshot.committed" { 3 } else { 0 };
            assert_eq!(crashed, want, "{ctx}: the group commit was not atomic");
        }
        assert_eq!(keys.len(), base_keys.len() + crashed + next, "{ctx}");

        // gc cleans up whatever the crash left; a second gc finds nothing.
        let r = ok(&env, &["prune", "--json"]).json();
        assert_eq!(
            r["forgotten"].as_array().map(|a| a.len()),
            Some(0),
            "{ctx}: the default policy keeps everything here: {r:#}"
        );
        assert_tmp_empty(&env, &ctx);
        assert_quiet_gc(&env, &["prune", "--json"], &ctx);
        assert_quiet_gc(&env, &["prune", "--max-unused", "0", "--json"], &ctx);
        let after = verify_restores(&env, &base.saved, &saved, &format!("{ctx}, after prune"));
        assert_eq!(after, keys, "{ctx}: prune changed the list");
        assert_forget_all_empties_store(&env, &ctx);
        u64::from(fate.killed())
    });
    let reached = reached.into_inner().unwrap();
    for p in SNAPSHOT_POINTS {
        assert!(
            reached.contains(p),
            "crash point {p} was never reached by snapshot"
        );
    }
    eprintln!("crash: snapshot_crash_loop took {:.1?}", t0.elapsed());
    loop_done("snapshot", kills);
}

#[test]
fn snapshot_prune_crash_loop() {
    let t0 = Instant::now();
    let base = build_base(3);
    let t_crash = tick_time(3);
    let t_next = tick_time(4);
    // Every point once; pack.before_rename:2 is gc's repack (the first is
    // the pack the three workspaces share).
    let jobs: Vec<(&str, u64)> = SNAPSHOT_POINTS
        .iter()
        .chain(GC_POINTS.iter())
        .map(|&p| (p, 1))
        .chain([("pack.before_rename", 2), ("gc.old_pack_removed", 3)])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let kills = parallel(jobs, |(point, n)| {
        let spec = format!("{point}:{n}");
        let ctx = format!("snapshot --prune with WSNAP_CRASH_AT={spec}");
        let env = fresh_copy(&base, true);
        let saved = edit_all_and_save(&env, 3, &[t_crash, t_next]);
        let root = env.root.to_str().unwrap().to_string();
        let args = |t: i64| -> Vec<String> {
            [
                "snapshot",
                "--root",
                &root,
                "--json",
                "--time",
                &rfc3339(t),
                "--prune",
                "--keep-last",
                "2",
                "--max-unused",
                "0",
            ]
            .iter()
            .map(|x| x.to_string())
            .collect()
        };
        let crash_args = args(t_crash);
        let crash_args: Vec<&str> = crash_args.iter().map(|x| x.as_str()).collect();
        let fate = run_crashing(&env, &crash_args, &[], &spec);
        let next_args = args(t_next);
        let next_args: Vec<&str> = next_args.iter().map(|x| x.as_str()).collect();
        let r = ok(&env, &next_args).json();
        assert!(r["prune"].is_object(), "{ctx}: no prune report: {r:#}");

        let keys = verify_restores(&env, &base.saved, &saved, &ctx);
        // keep-last 2 per workspace: the new snapshot and the one before
        // (the crashed run's if it committed, else tick 2's).
        for w in WS {
            let mine: Vec<i64> = keys
                .iter()
                .filter(|(x, _)| x == w)
                .map(|(_, t)| *t)
                .collect();
            assert_eq!(mine.len(), 2, "{ctx}: {w} has {mine:?}");
            assert_eq!(mine[1], t_next, "{ctx}: {w}");
            assert!(
                mine[0] == t_crash || mine[0] == tick_time(2),
                "{ctx}: {w}: {mine:?}"
            );
            if !fate.killed() || point.starts_with("gc.") {
                assert_eq!(
                    mine[0], t_crash,
                    "{ctx}: {w}: the snapshot committed before gc"
                );
            }
        }
        assert_tmp_empty(&env, &ctx);
        assert_quiet_gc(
            &env,
            &["prune", "--keep-last", "2", "--max-unused", "0", "--json"],
            &ctx,
        );
        // Data of forgotten ticks 0 and 1 is gone.
        let purged = tick_needles(&(0..3).flat_map(|k| [(k, 0), (k, 1)]).collect::<Vec<_>>());
        let hits = files_containing(&env.store, &purged);
        assert!(
            hits.is_empty(),
            "{ctx}: forgotten data still on disk: {hits:#?}"
        );
        assert_forget_all_empties_store(&env, &ctx);
        u64::from(fate.killed())
    });
    eprintln!("crash: snapshot_prune_crash_loop took {:.1?}", t0.elapsed());
    loop_done("snapshot --prune", kills);
}
