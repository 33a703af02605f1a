//! Times and retention windows through the real binary (issue 13):
//!
//! - a `snapshot --time` more than 5 minutes in the future is refused
//!   (exit 2) unless `--allow-future-time`;
//! - `--keep-within` counts back from now, not from the newest snapshot, so
//!   a snapshot dated in the future cannot push the real ones out, and the
//!   newest snapshot is still always kept;
//! - `--keep-within` needs a unit, and no keep count (flags or
//!   `SCITEX_MAX_SNAPSHOTS`) may be 0: exit 2, nothing changed;
//! - DST (`TZ=Europe/Berlin`): a local time in the repeated hour means the
//!   earlier instant and says so naming both; one in the skipped hour is an
//!   error; `list` shows the UTC offset so the two passes differ.

mod common;

use std::collections::BTreeSet;
use std::fs;

use common::*;

const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

const BERLIN: &str = "Europe/Berlin";

/// Snapshot `u/p` at each time (content differs per snapshot), oldest first;
/// returns the ids.
fn series(env: &TestEnv, times: &[i64]) -> Vec<String> {
    let dir = env.ws("u", "p");
    times
        .iter()
        .map(|&t| {
            write(&dir.join("f.txt"), format!("at {t}").as_bytes());
            let mut c = env.cmd();
            c.args(["snapshot", "--json", "--allow-future-time", "--time"])
                .arg(rfc3339(t))
                .arg("--root")
                .arg(&env.root);
            let r = expect_code(&mut c, 0).json();
            s(&r["workspaces"][0], "id").to_string()
        })
        .collect()
}

fn ids(list: &[Value]) -> BTreeSet<String> {
    list.iter()
        .map(|s| s["id"].as_str().unwrap().into())
        .collect()
}

fn pick(ids: &[String], idx: &[usize]) -> BTreeSet<String> {
    idx.iter().map(|&i| ids[i].clone()).collect()
}

fn forgotten(r: &Value) -> BTreeSet<String> {
    r["forgotten"]
        .as_array()
        .unwrap_or_else(|| panic!("no forgotten[] in {r:#}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap().into())
        .collect()
}

/// Everything a refused command must leave alone.
fn store_state(env: &TestEnv) -> (Vec<(std::path::PathBuf, u64, String)>, BTreeSet<String>) {
    (pack_fingerprint(&env.store), ids(&list_json(env)))
}

fn berlin(env: &TestEnv) -> Command {
    let mut c = env.cmd();
    c.env("TZ", BERLIN);
    c
}

// ---------------------------------------------------------------------------
// --time in the future
// ---------------------------------------------------------------------------

#[test]
fn a_time_in_the_future_is_refused_unless_allowed() {
    let env = TestEnv::new();
    write(&env.ws("u", "p").join("f.txt"), b"real");
    let real = snapshot_at(&env, &[], now_ns() - HOUR);
    let real_id = s(&real["workspaces"][0], "id").to_string();
    let before = store_state(&env);

    for t in ["2099-01-01 00:00".to_string(), rfc3339(now_ns() + 10 * MIN)] {
        let mut c = env.cmd();
        c.args(["snapshot", "--time", &t, "--root"]).arg(&env.root);
        let out = expect_code(&mut c, 2);
        for word in ["future", "--allow-future-time", "5 min"] {
            assert!(out.stderr.contains(word), "{t}: no {word:?}:\n{out}");
        }
        assert!(
            store_state(&env) == before,
            "{t}: a refused run changed the store"
        );
    }
    // `restore --at latest` still finds the real snapshot.
    let to = env.restore_latest("u/p", "latest");
    assert_eq!(fs::read(to.join("f.txt")).unwrap(), b"real");

    // Within the skew (clocks disagree a little): accepted.
    write(&env.ws("u", "p").join("f.txt"), b"skewed");
    snapshot_at(&env, &[], now_ns() + 2 * MIN);

    // --allow-future-time takes it, and says what it is in `list`.
    write(&env.ws("u", "p").join("f.txt"), b"future");
    let mut c = env.cmd();
    c.args(["snapshot", "--json", "--allow-future-time"])
        .args(["--time", "2099-01-01T00:00:00Z", "--root"])
        .arg(&env.root);
    let r = expect_code(&mut c, 0).json();
    assert_eq!(
        r["workspaces"][0]["time_ns"].as_i64(),
        Some(utc_ns(2099, 1, 1, 0, 0, 0)),
        "{r:#}"
    );
    assert_eq!(list_json(&env).len(), 3);
    assert!(ids(&list_json(&env)).contains(&real_id));

    // The flag means nothing without --time: a usage error.
    let mut c = env.cmd();
    c.args(["snapshot", "--allow-future-time", "--root"])
        .arg(&env.root);
    expect_code(&mut c, 2);
}

// ---------------------------------------------------------------------------
// --keep-within anchored on now
// ---------------------------------------------------------------------------

#[test]
fn keep_within_counts_back_from_now_not_from_a_future_snapshot() {
    let env = TestEnv::new();
    let now = now_ns();
    // Hourly, the newest 10 minutes ago: 0 is 5h10m old … 5 is 10m old.
    let times: Vec<i64> = (0..6).map(|i| now - (5 - i) * HOUR - 10 * MIN).collect();
    let real = series(&env, &times);

    let dry = |args: &[&str]| -> Value {
        let mut c = env.cmd();
        c.args(["prune", "--json", "--dry-run"]).args(args);
        expect_code(&mut c, 0).json()
    };
    // 2h30m back from now: snapshots 3, 4, 5 (2h10m, 1h10m, 10m old).
    let r = dry(&["--keep-within", "150m"]);
    assert_eq!(forgotten(&r), pick(&real, &[0, 1, 2]), "{r:#}");

    // A snapshot dated 2099 (a wrong clock, an import) is the newest now.
    // Anchored on it, a 1d window would forget every real snapshot.
    let future = series(&env, &[utc_ns(2099, 1, 1, 0, 0, 0)]);
    let r = dry(&["--keep-within", "1d"]);
    assert!(forgotten(&r).is_empty(), "real snapshots forgotten: {r:#}");
    let r = dry(&["--keep-within", "150m"]);
    assert_eq!(forgotten(&r), pick(&real, &[0, 1, 2]), "{r:#}");

    // For real: what is kept is what the dry run said, and restores.
    let mut c = env.cmd();
    c.args(["prune", "--json", "--keep-within", "150m"]);
    let r = expect_code(&mut c, 0).json();
    assert_eq!(forgotten(&r), pick(&real, &[0, 1, 2]), "{r:#}");
    let mut want = pick(&real, &[3, 4, 5]);
    want.insert(future[0].clone());
    assert_eq!(ids(&list_json(&env)), want);

    // A window older than every snapshot keeps only the newest of each
    // workspace (another workspace, all of it days old).
    let env2 = TestEnv::new();
    let old = series(&env2, &[now - 3 * DAY, now - 2 * DAY, now - DAY - HOUR]);
    let mut c = env2.cmd();
    c.args(["prune", "--json", "--keep-within", "1h"]);
    let r = expect_code(&mut c, 0).json();
    assert_eq!(forgotten(&r), pick(&old, &[0, 1]), "{r:#}");
    assert_eq!(ids(&list_json(&env2)), pick(&old, &[2]));
}

// ---------------------------------------------------------------------------
// Units and zero counts
// ---------------------------------------------------------------------------

#[test]
fn keep_within_needs_a_unit_and_no_keep_count_may_be_zero() {
    let env = TestEnv::new();
    let now = now_ns();
    series(&env, &[now - 3 * HOUR, now - 2 * HOUR, now - HOUR]);
    let before = store_state(&env);
    // (SCITEX_MAX_SNAPSHOTS, args, stderr must mention)
    let cases: &[(Option<&str>, &[&str], &[&str])] = &[
        (None, &["--keep-within", "5"], &["--keep-within", "5h"]),
        (None, &["--keep-within", " 90 "], &["--keep-within", "90h"]),
        (None, &["--keep-within", "0s"], &["--keep-within", "24h"]),
        (None, &["--keep-within", "0d"], &["--keep-within"]),
        (None, &["--keep-last", "0"], &["--keep-last", "at least 1"]),
        (
            None,
            &["--keep-hourly", "0"],
            &["--keep-hourly", "at least 1"],
        ),
        (
            None,
            &["--keep-daily", "0"],
            &["--keep-daily", "at least 1"],
        ),
        (None, &["--keep-weekly", "0"], &["--keep-weekly"]),
        (None, &["--keep-monthly", "0"], &["--keep-monthly"]),
        // A zero next to a valid tier is still refused.
        (
            None,
            &["--keep-last", "3", "--keep-daily", "0"],
            &["--keep-daily"],
        ),
        (Some("0"), &[], &["SCITEX_MAX_SNAPSHOTS", "1 or more"]),
        (Some(" 0 "), &[], &["SCITEX_MAX_SNAPSHOTS"]),
    ];
    for (var, args, mentions) in cases {
        for cmd in ["prune", "snapshot"] {
            let mut c = env.cmd();
            if let Some(v) = var {
                c.env("SCITEX_MAX_SNAPSHOTS", v);
            }
            c.arg(cmd);
            if cmd == "snapshot" {
                // Refused before anything is taken.
                c.args(["--prune", "--root"]).arg(&env.root);
            }
            c.args(*args);
            let out = expect_code(&mut c, 2);
            for m in *mentions {
                assert!(
                    out.stderr.contains(m),
                    "{cmd} {var:?} {args:?}: stderr should mention {m:?}\n{out}"
                );
            }
            assert!(
                store_state(&env) == before,
                "{cmd} {var:?} {args:?} changed the store"
            );
        }
    }
    // With units, the same values are fine.
    for args in [&["--keep-within", "5h"][..], &["--keep-last", "1"]] {
        let mut c = env.cmd();
        c.args(["prune", "--dry-run"]).args(args);
        expect_code(&mut c, 0);
    }
}

// ---------------------------------------------------------------------------
// DST
// ---------------------------------------------------------------------------

/// The zone data must be there, or `TZ=Europe/Berlin` silently means UTC
/// and these tests would prove nothing.
fn assert_berlin_zone(env: &TestEnv) {
    let mut c = berlin(env);
    c.args(["snapshot", "--json", "--time", "2026-07-01 12:00", "--root"])
        .arg(&env.root);
    let r = expect_code(&mut c, 0).json();
    assert_eq!(
        r["workspaces"][0]["time_ns"].as_i64(),
        Some(utc_ns(2026, 7, 1, 10, 0, 0)),
        "is tzdata for {BERLIN} installed? {r:#}"
    );
}

#[test]
fn a_repeated_local_hour_means_the_earlier_instant_and_says_so() {
    let env = TestEnv::new();
    let f = env.ws("u", "p").join("f.txt");
    assert_berlin_zone(&env);

    // 2026-10-25: Berlin clocks go 03:00 CEST → 02:00 CET; 02:30 happens at
    // 00:30Z and again at 01:30Z.
    write(&f, b"first pass");
    let mut c = berlin(&env);
    c.args(["snapshot", "--json", "--time", "2026-10-25 02:15", "--root"])
        .arg(&env.root);
    let out = expect_code(&mut c, 0);
    let first = out.json();
    assert_eq!(
        first["workspaces"][0]["time_ns"].as_i64(),
        Some(utc_ns(2026, 10, 25, 0, 15, 0)),
        "the earlier instant: {first:#}"
    );
    for word in [
        "ambiguous",
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:15:00+01:00",
        "earlier",
    ] {
        assert!(out.stderr.contains(word), "no {word:?}:\n{out}");
    }
    // The second pass, chosen by its offset: no warning.
    write(&f, b"second pass");
    let mut c = berlin(&env);
    c.args(["snapshot", "--json", "--time", "2026-10-25T02:15:00+01:00"])
        .arg("--root")
        .arg(&env.root);
    let out = expect_code(&mut c, 0);
    assert!(!out.stderr.contains("ambiguous"), "{out}");
    assert_eq!(
        out.json()["workspaces"][0]["time_ns"].as_i64(),
        Some(utc_ns(2026, 10, 25, 1, 15, 0))
    );

    // `list` tells the two apart by their offsets.
    let mut c = berlin(&env);
    c.arg("list");
    let out = expect_code(&mut c, 0);
    assert!(out.stdout.contains("2026-10-25 02:15:00 +02:00"), "{out}");
    assert!(out.stdout.contains("2026-10-25 02:15:00 +01:00"), "{out}");
    assert!(out.stdout.contains("2026-07-01 12:00:00 +02:00"), "{out}");

    // `--at` in the repeated hour: the earlier instant (warned), so the
    // first pass; with an offset, the second.
    for (at, want, warned) in [
        ("2026-10-25 02:20", &b"first pass"[..], true),
        ("2026-10-25T02:20:00+01:00", b"second pass", false),
    ] {
        let to = env.path(format!("r-{}", at.replace([' ', ':', '+'], "_")));
        let mut c = berlin(&env);
        c.args(["restore", "u/p", "--at", at, "--to"]).arg(&to);
        let out = expect_code(&mut c, 0);
        assert_eq!(fs::read(to.join("f.txt")).unwrap(), want, "--at {at}");
        assert_eq!(
            out.stderr.contains("ambiguous"),
            warned,
            "--at {at}:\n{out}"
        );
    }
}

#[test]
fn a_skipped_local_hour_is_an_error() {
    let env = TestEnv::new();
    env.ws("u", "p");
    assert_berlin_zone(&env);
    let before = store_state(&env);
    // 2026-03-29: Berlin clocks go 02:00 CET → 03:00 CEST; 02:00 … 02:59
    // never show on a wall clock.
    for t in ["2026-03-29 02:00", "2026-03-29 02:30", "20260329_025959"] {
        let mut c = berlin(&env);
        c.args(["snapshot", "--time", t, "--root"]).arg(&env.root);
        let out = expect_code(&mut c, 2);
        for word in ["does not exist", "+01:00", "+02:00", "offset"] {
            assert!(out.stderr.contains(word), "{t}: no {word:?}:\n{out}");
        }
        let mut c = berlin(&env);
        c.args(["ls", "u/p", "--at", t]);
        expect_code(&mut c, 2);
    }
    assert!(
        store_state(&env) == before,
        "a refused run changed the store"
    );
    // Either side of the gap is fine.
    for (t, utc) in [
        ("2026-03-29 01:59:59", utc_ns(2026, 3, 29, 0, 59, 59)),
        ("2026-03-29 03:00", utc_ns(2026, 3, 29, 1, 0, 0)),
    ] {
        let mut c = berlin(&env);
        c.args(["snapshot", "--json", "--time", t, "--root"])
            .arg(&env.root);
        let r = expect_code(&mut c, 0).json();
        assert_eq!(r["workspaces"][0]["time_ns"].as_i64(), Some(utc), "{t}");
    }
}

/// `--at '45m ago'`, `-45m`, `now`, `today` and a date alone pick what an
/// admin means (#17: these all exited 2 before).
#[test]
fn times_people_type_pick_the_snapshot_meant() {
    let env = TestEnv::new();
    write(&env.ws("u", "p").join("f.txt"), b"two hours ago");
    let now = now_ns();
    let hour = 3_600_000_000_000;
    let older = snapshot_at(&env, &[], now - 2 * hour)["workspaces"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    write(&env.ws("u", "p").join("f.txt"), b"half an hour ago");
    wait_out_racy_window(&env.root);
    snapshot_at(&env, &[], now - hour / 2);
    let restored = |at: &str| {
        let target = env.path(format!("r-{}", at.replace([' ', ':'], "_")));
        let mut c = env.cmd();
        c.args(["restore", "u/p", "--at", at, "--to"]).arg(&target);
        expect_code(&mut c, 0);
        std::fs::read_to_string(target.join("f.txt")).unwrap()
    };
    assert_eq!(restored("45m ago"), "two hours ago");
    assert_eq!(restored("-45m"), "two hours ago");
    assert_eq!(restored("1 hour ago"), "two hours ago");
    assert_eq!(restored("10 minutes ago"), "half an hour ago");
    assert_eq!(restored("now"), "half an hour ago");
    let mut c = env.cmd();
    c.args(["restore", "u/p", "--at", "3 hours ago", "--to"])
        .arg(env.path("none"));
    let out = expect_code(&mut c, 2);
    assert!(out.stderr.contains(&older[..8]), "names the oldest: {out}");
    let mut c = env.cmd();
    c.args(["restore", "u/p", "--at", "45 parsecs ago", "--to"])
        .arg(env.path("bad"));
    let out = expect_code(&mut c, 2);
    assert!(out.stderr.contains("45m ago"), "{out}");
}

/// A day alone (`2026-11-29`, `yesterday`, `today`) is the end of that local
/// day; `yesterday 13:00` is that time (TZ=UTC in tests).
#[test]
fn a_day_alone_means_its_end() {
    let env = TestEnv::new();
    let day = 24 * 3_600_000_000_000i64;
    let now = now_ns();
    let yesterday = now.div_euclid(day) * day - day;
    let date = rfc3339(yesterday)[..10].to_string();
    for (at, text) in [
        (yesterday + day / 2, "yesterday noon"),
        (yesterday + day * 5 / 6, "yesterday 20:00"),
        (now - 60_000_000_000, "a minute ago"),
    ] {
        write(&env.ws("u", "p").join("f.txt"), text.as_bytes());
        wait_out_racy_window(&env.root);
        snapshot_at(&env, &[], at);
    }
    let restored = |at: &str| {
        let target = env.path(format!("r-{}", at.replace([' ', ':'], "_")));
        let mut c = env.cmd();
        c.args(["restore", "u/p", "--at", at, "--to"]).arg(&target);
        expect_code(&mut c, 0);
        std::fs::read_to_string(target.join("f.txt")).unwrap()
    };
    assert_eq!(restored("yesterday"), "yesterday 20:00");
    assert_eq!(restored(&date), "yesterday 20:00");
    assert_eq!(restored("yesterday 13:00"), "yesterday noon");
    assert_eq!(restored("today"), "a minute ago");
}
