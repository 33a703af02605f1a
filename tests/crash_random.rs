//! Crash safety at random points: `snapshot --prune` (and now and then
//! `repair`) runs in a child process that is SIGKILLed after a random delay
//! within its usual run time, tick after tick. After every kill,
//! `check --read-data` must find nothing; every few kills (and at the end)
//! every snapshot `list` shows is restored and compared with the tree it was
//! taken from.
//!
//! `tests/crash.rs` kills at each named crash point; this test kills
//! anywhere (inside a write, an fsync, a SQLite commit, a rename), which is
//! how a power cut or the OOM killer strikes.
//!
//! The short form runs in `cargo test` (≥ 200 kills). The long form:
//! `WSNAP_RANDOM_KILLS=2000 cargo test --test crash_random -- --ignored`.
//! `WSNAP_KILL_SEED` replays a run.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

const WS: [&str; 3] = ["alice/proj", "bob/thesis", "carol/lab"];
const KEEP: &str = "4";
const MIN_NS: i64 = 60 * 1_000_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

type Listing = BTreeMap<Vec<u8>, Meta>;

fn ws_dir(env: &TestEnv, ws: &str) -> std::path::PathBuf {
    let (u, p) = ws.split_once('/').unwrap();
    env.ws(u, p)
}

fn setup(env: &TestEnv) {
    for (k, ws) in WS.iter().enumerate() {
        let d = ws_dir(env, ws);
        write(&d.join("big.bin"), &random_bytes(100 + k as u64, 2 * MIB));
        write(&d.join("log.txt"), b"start\n");
        write(
            &d.join("src/main.py"),
            &repeated(b"print('hello')\n", 20 * KIB),
        );
        symlink(b"src/main.py", &d.join("entry"), hour_ago_ns());
    }
}

/// Most workspaces idle, some edited: new files, appends, in-place edits
/// of a big file, deletions.
fn edit(env: &TestEnv, rng: &mut Rng, tick: u64) {
    for ws in WS {
        let d = ws_dir(env, ws);
        match rng.below(6) {
            0 | 1 => {}
            2 => write(
                &d.join(format!("results/r{tick}.bin")),
                &random_bytes(rng.next(), (20 + rng.below(300)) as usize * KIB),
            ),
            3 => append(&d.join("log.txt"), format!("tick {tick}\n").as_bytes()),
            4 => {
                let mut big = std::fs::read(d.join("big.bin")).unwrap();
                let at = rng.below(big.len() as u64 - 4096) as usize;
                big[at..at + 4096].copy_from_slice(&random_bytes(rng.next(), 4096));
                write(&d.join("big.bin"), &big);
            }
            _ => {
                if let Ok(rd) = std::fs::read_dir(d.join("results")) {
                    if let Some(e) = rd.flatten().next() {
                        std::fs::remove_file(e.path()).unwrap();
                    }
                }
            }
        }
    }
}

fn verify_all(env: &TestEnv, states: &BTreeMap<(String, i64), Listing>, ctx: &str) -> usize {
    let list = list_json(env);
    for x in &list {
        let key = (ws_of(x), x["time_ns"].as_i64().unwrap());
        let want = states
            .get(&key)
            .unwrap_or_else(|| panic!("{ctx}: listed snapshot {key:?} was never taken"));
        let id = s(x, "id");
        let target = env.path("restored");
        let _ = std::fs::remove_dir_all(&target);
        let mut c = env.cmd();
        c.args(["restore", &key.0, "--snapshot", id, "--to"])
            .arg(&target);
        let out = run(&mut c);
        assert_eq!(out.code, 0, "{ctx}: restore of {key:?} failed\n{out}");
        assert!(
            &listing(&target) == want,
            "{ctx}: snapshot {key:?} ({id}) restored differently"
        );
    }
    list.len()
}

/// Run `wsnap ARGS`, SIGKILLed after `kill_after` if still running.
/// Returns (killed, wall time).
fn run_child(env: &TestEnv, args: &[String], kill_after: Option<Duration>) -> (bool, Duration) {
    let mut c = env.std_cmd();
    c.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    let t0 = Instant::now();
    let child = c.spawn().expect("spawn wsnap");
    if let Some(d) = kill_after {
        std::thread::sleep(d);
        // SAFETY: signalling our own child, not yet reaped.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
    }
    let out = child.wait_with_output().unwrap();
    let took = t0.elapsed();
    match out.status.signal() {
        Some(9) => (true, took),
        _ => {
            assert!(
                out.status.success(),
                "{args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (false, took)
        }
    }
}

fn random_kills(target: u64) {
    let seed = std::env::var("WSNAP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_u64);
    let mut rng = Rng(seed | 1);
    let env = TestEnv::new();
    setup(&env);
    let mut c = env.cmd();
    c.arg("init");
    expect_code(&mut c, 0);
    let t0 = utc_ns(2026, 11, 1, 0, 0, 0);
    let mut states: BTreeMap<(String, i64), Listing> = BTreeMap::new();
    let root = env.root.to_str().unwrap().to_string();
    // Usual duration of an uninterrupted run, refreshed by every 6th run.
    let mut usual = Duration::from_millis(300);
    let mut usual_repair = Duration::from_millis(300);
    let (mut kills, mut completed, mut repair_kills, mut checks, mut restores) = (0, 0, 0, 0, 0);
    let started = Instant::now();
    let mut tick = 0u64;
    while kills < target {
        tick += 1;
        if tick % 40 == 0 {
            // A repair, killed at a random point, then run again whole: the
            // store must come out with the same snapshots.
            let before = list_json(&env).len();
            let args = vec!["repair".to_string()];
            let d = Duration::from_micros(rng.below(usual_repair.as_micros() as u64));
            if run_child(&env, &args, Some(d)).0 {
                kills += 1;
                repair_kills += 1;
            }
            let (_, took) = run_child(&env, &args, None);
            usual_repair = took;
            assert_eq!(list_json(&env).len(), before, "repair at tick {tick}");
            let out = check(&env, true);
            assert_eq!(
                out.code, 0,
                "after repair at tick {tick}: check --read-data found damage\n{out}"
            );
            checks += 1;
            continue;
        }
        edit(&env, &mut rng, tick);
        let t = t0 + tick as i64 * 5 * MIN_NS;
        for ws in WS {
            states.insert((ws.to_string(), t), listing(&ws_dir(&env, ws)));
        }
        let args: Vec<String> = [
            "snapshot",
            "--root",
            &root,
            "--time",
            &rfc3339(t),
            // The synthetic clock starts 2026-11-01: a long run may pass
            // the real one.
            "--allow-future-time",
            "--prune",
            "--keep-last",
            KEEP,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let kill_after = (tick % 6 != 0)
            .then(|| Duration::from_micros(rng.below(usual.as_micros() as u64 * 11 / 10)));
        let (killed, took) = run_child(&env, &args, kill_after);
        if killed {
            kills += 1;
            let ctx = format!("kill {kills} (tick {tick}, after {took:?})");
            let out = check(&env, true);
            assert_eq!(
                out.code, 0,
                "{}: check --read-data found damage\n{out}",
                &ctx
            );
            checks += 1;
            if kills % 10 == 0 {
                restores += verify_all(&env, &states, &ctx);
            }
        } else {
            completed += 1;
            if kill_after.is_none() {
                usual = took;
            }
        }
    }
    // Recovery: a normal run, then everything must check and restore.
    let t = t0 + (tick as i64 + 1) * 5 * MIN_NS;
    for ws in WS {
        states.insert((ws.to_string(), t), listing(&ws_dir(&env, ws)));
    }
    snapshot_at(&env, &[], t);
    let out = check(&env, true);
    assert_eq!(
        out.code, 0,
        "{}: check --read-data found damage\n{out}",
        "after recovery"
    );
    restores += verify_all(&env, &states, "after recovery");
    eprintln!(
        "crash_random: seed {seed:#x}: {kills} kills ({repair_kills} of repair) in {tick} ticks, \
         {completed} runs finished before their kill; {checks} clean check --read-data, \
         {restores} verified restores, {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn random_kills_short() {
    let n = std::env::var("WSNAP_RANDOM_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    random_kills(n);
}

#[test]
#[ignore = "long form: thousands of kills"]
fn random_kills_long() {
    random_kills(2000);
}
