//! The query and monitoring commands through the real binary: `status`
//! (Nagios exit codes, the Prometheus textfile), `stats` (figures checked
//! against known data), `diff` and `log` on crafted histories, and their
//! `--json` schemas (docs/JSON.md).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;

use common::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `status --root ROOT EXTRA...`, asserting the exit code.
#[track_caller]
fn status(env: &TestEnv, extra: &[&str], code: i32) -> Out {
    let mut c = env.cmd();
    c.arg("status").arg("--root").arg(&env.root).args(extra);
    expect_code(&mut c, code)
}

/// `status --json`, asserting the exit code and that `status`/`exit_code`
/// agree with it.
#[track_caller]
fn status_json(env: &TestEnv, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let v = status(env, &args, code).json();
    assert_eq!(u(&v, "exit_code"), code as u64, "{v:#}");
    let label = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][code as usize];
    assert_eq!(s(&v, "status"), label, "{v:#}");
    assert!(
        s(&v, "summary").starts_with(&format!("WSNAP {label} - ")),
        "{v:#}"
    );
    v
}

/// (user/project) of every workspace object in `v[key]` with `state`.
fn in_state(v: &Value, state: &str) -> BTreeSet<String> {
    v["workspaces"]
        .as_array()
        .expect("workspaces array")
        .iter()
        .filter(|w| w["state"] == state)
        .map(ws_of)
        .collect()
}

fn problems(v: &Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|p| format!("{} {}", s(p, "level"), s(p, "message")))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Two workspaces with a file each.
fn two_workspaces(env: &TestEnv) {
    write(&env.ws("alice", "thesis").join("a.txt"), b"alice");
    write(&env.ws("bob", "lab").join("b.txt"), b"bob");
}

// ---------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------

#[test]
fn status_ok_when_every_workspace_is_fresh() {
    let env = TestEnv::new();
    two_workspaces(&env);
    env.snapshot(&[]);
    let out = status(&env, &["--min-free", "0"], 0);
    let first = out.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("WSNAP OK - 2 workspaces, last full run "),
        "{out}"
    );
    assert!(
        first.contains("| workspaces=2 stale=0 missing=0 failed=0"),
        "{out}"
    );

    let v = status_json(&env, &["--min-free", "0"], 0);
    assert!(problems(&v).is_empty(), "{v:#}");
    assert_eq!(in_state(&v, "ok"), set(&["alice/thesis", "bob/lab"]));
    let run = &v["last_run"];
    assert_eq!(u(run, "workspaces_ok"), 2);
    assert_eq!(u(run, "workspaces_failed"), 0);
    assert_eq!(u(run, "entries_skipped"), 0);
    assert!(u(run, "finished_ns") >= u(run, "started_ns"));
    assert_eq!(v["counts"]["ok"], 2);
    assert_eq!(v["max_age_seconds"], 900.0, "default --max-age is 15 min");
    // Store size: the packs on disk plus the catalog files.
    let store = &v["store"];
    assert_eq!(u(store, "pack_bytes"), pack_bytes(&env.store));
    assert!(
        u(store, "catalog_bytes")
            >= fs::metadata(env.store.join("catalog.sqlite"))
                .unwrap()
                .len()
    );
    assert_eq!(
        u(store, "size_bytes"),
        u(store, "pack_bytes") + u(store, "catalog_bytes") + u(store, "tmp_bytes")
    );
    let fsys = &v["filesystem"];
    assert!(u(fsys, "avail_bytes") > 0 && u(fsys, "avail_bytes") <= u(fsys, "size_bytes"));
    assert_eq!(u(fsys, "min_free_bytes"), 0);
    for w in v["workspaces"].as_array().unwrap() {
        assert_eq!(u(w, "snapshots"), 1);
        assert!(w["age_seconds"].as_f64().unwrap() < 900.0, "{w:#}");
    }
}

#[test]
fn status_warns_on_a_stale_workspace() {
    let env = TestEnv::new();
    two_workspaces(&env);
    env.snapshot(&["--workspace", "bob/lab"]);
    snapshot_at(&env, &["alice/thesis"], hour_ago_ns());
    let out = status(&env, &["--min-free", "0"], 1);
    assert!(
        out.stdout
            .starts_with("WSNAP WARNING - 1 workspace with no snapshot in the last 15m"),
        "{out}"
    );
    assert!(out.stdout.contains("stale: alice/thesis"), "{out}");
    let v = status_json(&env, &["--min-free", "0"], 1);
    assert_eq!(in_state(&v, "stale"), set(&["alice/thesis"]));
    assert_eq!(in_state(&v, "ok"), set(&["bob/lab"]));
    let stale = v["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["state"] == "stale")
        .unwrap();
    let age = stale["age_seconds"].as_f64().unwrap();
    assert!((3590.0..3700.0).contains(&age), "{stale:#}");
    // A larger --max-age accepts it.
    status_json(&env, &["--min-free", "0", "--max-age", "2h"], 0);
}

#[test]
fn status_warns_on_a_workspace_without_snapshot_and_ignores_deleted_ones() {
    let env = TestEnv::new();
    two_workspaces(&env);
    env.snapshot(&[]);
    write(&env.ws("carol", "new").join("c.txt"), b"carol");
    let v = status_json(&env, &["--min-free", "0"], 1);
    assert_eq!(in_state(&v, "missing"), set(&["carol/new"]));
    assert!(
        problems(&v)
            .iter()
            .any(|p| p == "WARNING 1 workspace never snapshotted"),
        "{v:#}"
    );
    assert!(status(&env, &["--min-free", "0"], 1)
        .stdout
        .contains("missing: carol/new"));

    // A deleted project keeps its snapshots but raises no alarm, even
    // once they are old.
    fs::remove_dir_all(env.root.join("carol")).unwrap();
    fs::remove_dir_all(env.root.join("bob")).unwrap();
    let v = status_json(&env, &["--min-free", "0", "--max-age", "1ns"], 2);
    assert_eq!(in_state(&v, "not_under_root"), set(&["bob/lab"]));
    assert_eq!(in_state(&v, "stale"), set(&["alice/thesis"]));
    assert!(in_state(&v, "missing").is_empty());
}

#[test]
fn status_is_critical_when_the_last_run_failed_a_workspace() {
    let env = TestEnv::new();
    two_workspaces(&env);
    // A named workspace that does not exist fails; the other commits.
    let mut c = env.cmd();
    c.args(["snapshot", "--root"]).arg(&env.root).args([
        "--workspace",
        "alice/thesis",
        "--workspace",
        "ghost/gone",
    ]);
    expect_code(&mut c, 1);
    let out = status(&env, &["--min-free", "0"], 2);
    assert!(
        out.stdout
            .starts_with("WSNAP CRITICAL - last run failed 1 workspace"),
        "{out}"
    );
    let v = status_json(&env, &["--min-free", "0"], 2);
    let run = &v["last_run"];
    assert_eq!(
        (u(run, "workspaces_ok"), u(run, "workspaces_failed")),
        (1, 1)
    );
    // bob/lab was not part of that run, and has never been snapshotted.
    let not_in: BTreeSet<String> = run["not_in_run"]
        .as_array()
        .unwrap()
        .iter()
        .map(ws_of)
        .collect();
    assert_eq!(not_in, set(&["bob/lab"]));
    assert_eq!(in_state(&v, "missing"), set(&["bob/lab"]));
    // Worst first: the CRITICAL problem leads.
    assert!(
        problems(&v)[0].starts_with("CRITICAL last run failed 1 workspace"),
        "{v:#}"
    );

    // The next full run succeeds: OK again.
    env.snapshot(&[]);
    status_json(&env, &["--min-free", "0"], 0);
}

#[test]
fn status_is_critical_on_low_disk_space() {
    let env = TestEnv::new();
    two_workspaces(&env);
    env.snapshot(&[]);
    let v = status_json(&env, &["--min-free", "100%"], 2);
    let p = problems(&v);
    assert_eq!(p.len(), 1, "{v:#}");
    assert!(
        p[0].starts_with("CRITICAL only ") && p[0].contains("free on the store's file system"),
        "{v:#}"
    );
    assert_eq!(
        u(&v["filesystem"], "min_free_bytes"),
        u(&v["filesystem"], "size_bytes")
    );
    // An absolute threshold above the free space does the same.
    let avail = u(&v["filesystem"], "avail_bytes");
    status_json(
        &env,
        &["--min-free", &format!("{}", avail + 1024 * 1024 * 1024)],
        2,
    );
    status_json(&env, &["--min-free", "1K"], 0);
}

#[test]
fn status_is_critical_without_a_recent_run() {
    let env = TestEnv::new();
    two_workspaces(&env);
    expect_code(env.cmd().arg("init"), 0);
    let v = status_json(&env, &["--min-free", "0"], 2);
    assert!(
        problems(&v).contains(&"CRITICAL no snapshot run recorded in this store".to_string()),
        "{v:#}"
    );
    assert!(v["last_run"].is_null());
    assert_eq!(in_state(&v, "missing"), set(&["alice/thesis", "bob/lab"]));

    env.snapshot(&[]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let v = status_json(&env, &["--min-free", "0", "--max-age", "1s"], 2);
    assert!(
        problems(&v)
            .iter()
            .any(|p| p.starts_with("CRITICAL last run finished ")
                && p.ends_with(" ago (more than 1s)")),
        "{v:#}"
    );
}

#[test]
fn status_is_unknown_when_it_cannot_tell() {
    let env = TestEnv::new();
    two_workspaces(&env);
    // No store.
    let out = status(&env, &[], 3);
    assert!(
        out.stdout.starts_with("WSNAP UNKNOWN - no wsnap store at "),
        "{out}"
    );
    let v = status_json(&env, &[], 3);
    assert!(problems(&v)[0].contains("no wsnap store"), "{v:#}");
    // Bad thresholds are UNKNOWN too (a check that cannot run is not OK).
    env.snapshot(&[]);
    let out = status(&env, &["--max-age", "soon"], 3);
    assert!(
        out.stdout.starts_with("WSNAP UNKNOWN - invalid --max-age"),
        "{out}"
    );
    let out = status(&env, &["--min-free", "lots"], 3);
    assert!(
        out.stdout.starts_with("WSNAP UNKNOWN - invalid --min-free"),
        "{out}"
    );
    // A root that cannot be listed: missing workspaces are unknown.
    let mut c = env.cmd();
    c.args(["status", "--min-free", "0", "--json", "--root"])
        .arg(env.path("no-such-root"));
    let v = expect_code(&mut c, 3).json();
    assert_eq!(v["root_readable"], false);
    assert!(
        problems(&v)[0].starts_with("UNKNOWN cannot list the workspace root"),
        "{v:#}"
    );
    assert_eq!(in_state(&v, "ok"), set(&["alice/thesis", "bob/lab"]));
}

#[test]
fn status_answers_while_the_writer_lock_is_held() {
    let env = TestEnv::new();
    two_workspaces(&env);
    env.snapshot(&[]);
    let lock = fs::OpenOptions::new()
        .write(true)
        .open(env.store.join("lock"))
        .unwrap();
    // SAFETY: flock on an open file descriptor we own.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0);
    let t0 = std::time::Instant::now();
    status_json(&env, &["--min-free", "0"], 0);
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    drop(lock);
}

// ---------------------------------------------------------------------------
// The Prometheus textfile
// ---------------------------------------------------------------------------

/// One sample of a parsed exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ if s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) => {
            s.parse().map_err(|e| format!("value {s:?}: {e}"))
        }
        _ => Err(format!("value {s:?} is not a float")),
    }
}

/// Parse `{a="x",b="y\"z"}` (after the metric name); returns the labels
/// and the rest of the line.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err("raw newline in label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err(format!("expected , or }} at {rest:?}"));
        }
    }
}

/// Check the text exposition format's rules and return the samples:
/// every line is `# HELP`, `# TYPE` or a sample; HELP and TYPE come at most
/// once per metric and before its samples; a metric's samples are one
/// contiguous group; names and label names match the regexes; label values
/// use only the three escapes; values are floats; the file ends with `\n`;
/// no sample (name + labels) appears twice.
fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with('\n') {
        return Err("does not end with a newline".into());
    }
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = HashSet::new();
    let mut done = HashSet::new(); // metrics whose sample group has ended
    let mut current: Option<String> = None;
    let mut seen = HashSet::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kw = parts.next().unwrap_or("");
            let name = parts.next().unwrap_or("").to_string();
            let arg = parts.next().unwrap_or("");
            if !is_metric_name(&name) {
                return Err(err(format!("bad metric name {name:?}")));
            }
            if samples.iter().any(|s: &Sample| s.name == name) {
                return Err(err("HELP/TYPE after samples".into()));
            }
            match kw {
                "HELP" if !helped.insert(name.clone()) => return Err(err("second HELP".into())),
                "TYPE" => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg) {
                        return Err(err(format!("bad type {arg:?}")));
                    }
                    if typed.insert(name, arg.to_string()).is_some() {
                        return Err(err("second TYPE".into()));
                    }
                }
                _ => {} // other comments are allowed
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(err(format!("bad metric name {name:?}")));
        }
        if !typed.contains_key(name) {
            return Err(err("sample before its TYPE".into()));
        }
        let (labels, rest) = parse_labels(&line[name_end..]).map_err(err)?;
        let mut fields = rest.split_whitespace();
        let value =
            parse_value(fields.next().ok_or_else(|| err("no value".into()))?).map_err(err)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|e| err(format!("timestamp: {e}")))?;
        }
        if fields.next().is_some() {
            return Err(err("trailing fields".into()));
        }
        if current.as_deref() != Some(name) {
            if let Some(prev) = current.take() {
                done.insert(prev);
            }
            if done.contains(name) {
                return Err(err("samples of one metric are not contiguous".into()));
            }
            current = Some(name.to_string());
        }
        if !seen.insert((name.to_string(), labels.clone())) {
            return Err(err("duplicate sample".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

#[test]
fn the_validator_rejects_broken_expositions() {
    let ok = "# HELP a_b x\n# TYPE a_b gauge\na_b{l=\"q\\\"\\\\\\n\"} 1.5\n";
    assert_eq!(parse_exposition(ok).unwrap()[0].labels["l"], "q\"\\\n");
    for bad in [
        "a 1\n",                                                    // no TYPE
        "# TYPE a gauge\na 1",                                      // no final newline
        "# TYPE 1a gauge\n1a 1\n",                                  // bad name
        "# TYPE a gauge\na{l=\"x\\t\"} 1\n",                        // bad escape
        "# TYPE a gauge\na{l=x} 1\n",                               // unquoted
        "# TYPE a gauge\na one\n",                                  // not a float
        "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 2\n", // not contiguous
        "# TYPE a gauge\na 1\n# HELP a late\n",                     // HELP after samples
        "# TYPE a gauge\na 1\na 2\n",                               // duplicate
    ] {
        assert!(parse_exposition(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn prometheus_file_is_valid_and_carries_the_figures() {
    let env = TestEnv::new();
    // Names that need escaping in label values.
    let odd_user = "o\"brien\\x";
    let odd_project = "line\nbreak";
    write(&env.ws(odd_user, odd_project).join("f.txt"), b"odd");
    write(&env.ws("alice", "thesis").join("a.txt"), b"alice");
    snapshot_at(&env, &["alice/thesis"], hour_ago_ns());
    let mut c = env.cmd();
    c.arg("snapshot")
        .arg("--root")
        .arg(&env.root)
        .arg("--workspace");
    c.arg(format!("{odd_user}/{odd_project}"));
    expect_code(&mut c, 0);

    let dir = env.path("textfile");
    fs::create_dir(&dir).unwrap();
    let prom = dir.join("wsnap.prom");
    let v = status_json(
        &env,
        &["--min-free", "0", "--prometheus", prom.to_str().unwrap()],
        1,
    );
    let text = fs::read_to_string(&prom).unwrap();
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Atomic replace: only the final file is left, readable by node_exporter.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["wsnap.prom"]);
    assert_eq!(
        fs::metadata(&prom).unwrap().permissions().mode() & 0o777,
        0o644
    );

    let get = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
            .value
    };
    assert_eq!(get("wsnap_status", &[]), 1.0);
    assert_eq!(get("wsnap_max_age_seconds", &[]), 900.0);
    assert_eq!(get("wsnap_workspaces", &[("state", "stale")]), 1.0);
    assert_eq!(get("wsnap_workspaces", &[("state", "ok")]), 1.0);
    assert_eq!(get("wsnap_last_run_workspaces", &[("result", "ok")]), 1.0);
    assert_eq!(
        get("wsnap_last_run_workspaces", &[("result", "failed")]),
        0.0
    );
    assert_eq!(
        get("wsnap_store_size_bytes", &[("part", "packs")]),
        u(&v["store"], "pack_bytes") as f64
    );
    let run = &v["last_run"];
    assert_eq!(
        get("wsnap_last_run_end_time_seconds", &[]),
        u(run, "finished_ns") as f64 / 1e9
    );
    let odd = [("user", odd_user), ("project", odd_project)];
    assert_eq!(get("wsnap_workspace_stale", &odd), 0.0);
    assert_eq!(get("wsnap_workspace_snapshots", &odd), 1.0);
    let alice = [("user", "alice"), ("project", "thesis")];
    assert_eq!(get("wsnap_workspace_stale", &alice), 1.0);
    let t = get("wsnap_workspace_last_snapshot_time_seconds", &alice);
    assert!((t - hour_ago_ns() as f64 / 1e9).abs() < 120.0, "{t}");
    assert!(
        text.contains("user=\"o\\\"brien\\\\x\",project=\"line\\nbreak\""),
        "{text}"
    );

    // The store gone: the file still says UNKNOWN, replacing the old one.
    fs::rename(&env.store, env.path("moved")).unwrap();
    status(&env, &["--prometheus", prom.to_str().unwrap()], 3);
    let samples = parse_exposition(&fs::read_to_string(&prom).unwrap()).unwrap();
    assert_eq!(
        samples
            .iter()
            .find(|s| s.name == "wsnap_status")
            .unwrap()
            .value,
        3.0
    );
    // An unwritable destination is reported, and the check is UNKNOWN.
    fs::rename(env.path("moved"), &env.store).unwrap();
    let out = status(
        &env,
        &["--min-free", "0", "--prometheus", "/nonexistent-dir/x.prom"],
        3,
    );
    assert!(
        out.stdout
            .contains("cannot write the Prometheus file /nonexistent-dir/x.prom"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// stats
// ---------------------------------------------------------------------------

fn stats_json(env: &TestEnv, extra: &[&str]) -> Value {
    let mut c = env.cmd();
    c.args(["stats", "--json"]).args(extra);
    expect_code(&mut c, 0).json()
}

fn ws_stats<'a>(v: &'a Value, ws: &str) -> &'a Value {
    v["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| ws_of(w) == ws)
        .unwrap_or_else(|| panic!("{ws} not in {v:#}"))
}

#[test]
fn stats_figures_match_known_data() {
    let env = TestEnv::new();
    let k = 1024;
    // a/p and b/q hold the same bytes; c/r shares one file and has a unique one.
    for (u_, p) in [("a", "p"), ("b", "q")] {
        let ws = env.ws(u_, p);
        write(&ws.join("one.bin"), &random_bytes(1, 100 * k));
        write(&ws.join("two.bin"), &random_bytes(2, 100 * k));
    }
    let c = env.ws("c", "r");
    write(&c.join("one.bin"), &random_bytes(1, 100 * k));
    write(&c.join("mine.bin"), &random_bytes(3, 200 * k));
    env.snapshot(&[]);

    let v = stats_json(&env, &[]);
    assert_eq!(u(&v, "snapshots"), 3);
    assert_eq!(u(&v, "logical_bytes"), 700 * k as u64);
    assert_eq!(u(&v, "latest_logical_bytes"), 700 * k as u64);
    // Distinct content: one + two + mine.
    assert_eq!(u(&v, "chunk_raw_bytes"), 400 * k as u64);
    assert_eq!(v["dedup_ratio"].as_f64().unwrap(), 700.0 / 400.0);
    // Random bytes do not compress: stored raw.
    assert_eq!(u(&v, "chunk_stored_bytes"), 400 * k as u64);
    assert_eq!(v["compression_ratio"].as_f64().unwrap(), 1.0);
    assert_eq!(u(&v, "pack_bytes"), pack_bytes(&env.store));
    assert!(u(&v, "referenced_bytes") <= u(&v, "pack_bytes"));
    assert_eq!(u(&v, "unreferenced_blobs"), 0);
    let overall = v["overall_ratio"].as_f64().unwrap();
    assert!((overall - 700.0 * k as f64 / u(&v, "pack_bytes") as f64).abs() < 1e-9);

    for ws in ["a/p", "b/q"] {
        let w = ws_stats(&v, ws);
        assert_eq!(u(w, "unique_content_bytes"), 0, "{w:#}");
        // Only its own directory listing (inodes and ctimes differ).
        assert!(
            u(w, "unique_bytes") > 0 && u(w, "unique_bytes") < 4 * k as u64,
            "{w:#}"
        );
        assert_eq!(u(w, "latest_size_bytes"), 200 * k as u64);
    }
    let w = ws_stats(&v, "c/r");
    let unique = u(w, "unique_content_bytes");
    assert!(unique >= 200 * k as u64, "{w:#}");
    assert!(
        unique < 200 * k as u64 + 2 * k as u64,
        "{w:#}: ~7 record headers at most"
    );

    // An unchanged second snapshot doubles the logical size of a/p only.
    env.snapshot(&["--workspace", "a/p"]);
    let v2 = stats_json(&env, &[]);
    assert_eq!(u(&v2, "logical_bytes"), 900 * k as u64);
    assert_eq!(u(&v2, "latest_logical_bytes"), 700 * k as u64);
    assert_eq!(u(&v2, "chunk_raw_bytes"), 400 * k as u64);
    let w = ws_stats(&v2, "a/p");
    assert_eq!(
        (u(w, "snapshots"), u(w, "total_size_bytes")),
        (2, 400 * k as u64)
    );

    // unique_bytes is what forgetting the workspace frees from the
    // referenced data.
    let c_unique = u(ws_stats(&v2, "c/r"), "unique_bytes");
    let c_id = list_json(&env)
        .into_iter()
        .find(|s_| ws_of(s_) == "c/r")
        .map(|s_| s(&s_, "id").to_string())
        .unwrap();
    expect_code(env.cmd().args(["forget", "--snapshot", &c_id]), 0);
    let v3 = stats_json(&env, &[]);
    assert_eq!(
        u(&v2, "referenced_bytes") - u(&v3, "referenced_bytes"),
        c_unique,
        "before {v2:#}\nafter {v3:#}"
    );
    assert_eq!(u(&v3, "chunk_raw_bytes"), 200 * k as u64);
    // With c/r gone, a/p and b/q now each alone hold nothing: one.bin and
    // two.bin are still shared between them.
    assert_eq!(u(ws_stats(&v3, "a/p"), "unique_content_bytes"), 0);
}

#[test]
fn stats_of_one_workspace_and_human_output() {
    let env = TestEnv::new();
    two_workspaces(&env);
    write(
        &env.ws("alice", "thesis").join("big.bin"),
        &random_bytes(9, 300 * KIB),
    );
    env.snapshot(&[]);
    let v = stats_json(&env, &["alice/thesis"]);
    assert_eq!(v["workspaces"].as_array().unwrap().len(), 1);
    assert_eq!(ws_of(&v["workspaces"][0]), "alice/thesis");
    assert_eq!(
        u(&v, "snapshots"),
        2,
        "store-wide figures cover the whole store"
    );
    let out = expect_code(env.cmd().args(["stats"]), 0);
    assert!(out.stdout.contains("dedup ratio:"), "{out}");
    assert!(out.stdout.contains("KiB"), "{out}");
    assert!(out.stdout.contains("alice/thesis"), "{out}");
    let out = expect_code(env.cmd().args(["stats", "nobody/here"]), 2);
    assert!(
        out.stderr.contains("no snapshots of workspace nobody/here"),
        "{out}"
    );
    let out = expect_code(
        bare_cmd().arg("--store").arg(env.path("none")).arg("stats"),
        3,
    );
    assert!(out.stderr.contains("no wsnap store"), "{out}");
}

// ---------------------------------------------------------------------------
// diff
// ---------------------------------------------------------------------------

/// `diff WS FROM TO --json`.
fn diff_json(env: &TestEnv, ws: &str, from: &str, to: &str) -> Value {
    expect_code(env.cmd().args(["diff", ws, from, to, "--json"]), 0).json()
}

/// path → change of a diff or log.
fn changes(v: &Value) -> BTreeMap<String, String> {
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (s(c, "path").to_string(), s(c, "change").to_string()))
        .collect()
}

#[test]
fn diff_lists_every_kind_of_change_and_skips_equal_subtrees() {
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    let t = hour_ago_ns();
    write_file(&ws.join("a.txt"), b"first version\n", 0o644, t);
    write_file(&ws.join("script.sh"), b"#!/bin/sh\n", 0o644, t);
    write_file(&ws.join("old.txt"), b"to be deleted", 0o644, t);
    write_file(&ws.join("dir/b.txt"), b"to be renamed", 0o644, t);
    write_file(&ws.join("dir/sub/c.txt"), b"untouched", 0o644, t);
    write_file(&ws.join("x"), b"a file that becomes a dir", 0o644, t);
    symlink(b"a.txt", &ws.join("link"), t);
    let first = env.snapshot_ws("alice/thesis", &[]);

    append(&ws.join("a.txt"), b"second line\n");
    set_mode(&ws.join("script.sh"), 0o755);
    fs::remove_file(ws.join("old.txt")).unwrap();
    fs::rename(ws.join("dir/b.txt"), ws.join("dir/b2.txt")).unwrap();
    write(&ws.join("new.txt"), b"brand new");
    fs::remove_file(ws.join("x")).unwrap();
    write(&ws.join("x/inner.txt"), b"inside");
    fs::remove_file(ws.join("link")).unwrap();
    symlink(b"new.txt", &ws.join("link"), t);
    let second = env.snapshot_ws("alice/thesis", &[]);

    let (a, b) = (s(&first, "id"), s(&second, "id"));
    let v = diff_json(&env, "alice/thesis", &a[..8], &b[..8]);
    let want: BTreeMap<String, String> = [
        ("a.txt", "modified"),
        ("script.sh", "modified"),
        ("old.txt", "removed"),
        ("dir/b.txt", "removed"),
        ("dir/b2.txt", "added"),
        ("new.txt", "added"),
        ("x", "type_changed"),
        ("x/inner.txt", "added"),
        ("link", "modified"),
    ]
    .iter()
    .map(|(p, c)| (p.to_string(), c.to_string()))
    .collect();
    assert_eq!(changes(&v), want, "{v:#}");
    let by_path = |p: &str| -> Value {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == p)
            .unwrap()
            .clone()
    };
    let a_txt = by_path("a.txt");
    assert_eq!(
        (
            a_txt["content_changed"].clone(),
            a_txt["mode_changed"].clone()
        ),
        (true.into(), false.into())
    );
    assert_eq!(a_txt["size_change_bytes"], 12);
    assert_eq!(
        (
            u(&a_txt["old"], "size_bytes"),
            u(&a_txt["new"], "size_bytes")
        ),
        (14, 26)
    );
    let script = by_path("script.sh");
    assert_eq!(
        (
            script["content_changed"].clone(),
            script["mode_changed"].clone()
        ),
        (false.into(), true.into())
    );
    assert_eq!(
        (s(&script["old"], "mode"), s(&script["new"], "mode")),
        ("0644", "0755")
    );
    let x = by_path("x");
    assert_eq!(
        (s(&x["old"], "type"), s(&x["new"], "type")),
        ("file", "dir")
    );
    let link = by_path("link");
    assert_eq!(
        (s(&link["old"], "target"), s(&link["new"], "target")),
        ("a.txt", "new.txt")
    );
    assert!(by_path("old.txt")["new"].is_null());
    assert!(by_path("new.txt")["old"].is_null());
    let sum = &v["summary"];
    assert_eq!(
        (
            u(sum, "added"),
            u(sum, "removed"),
            u(sum, "modified"),
            u(sum, "type_changed")
        ),
        (3, 2, 3, 1)
    );
    assert_eq!(s(&v["from"], "id"), a);
    assert_eq!(s(&v["to"], "id"), b);
    // Two roots, two versions of dir/, and the new x/; dir/sub has the same
    // tree id on both sides and is never read.
    assert_eq!(u(sum, "trees_read"), 5, "{v:#}");

    // The other way round, everything is reversed.
    let back = diff_json(&env, "alice/thesis", b, a);
    let rev = changes(&back);
    assert_eq!(rev["new.txt"], "removed");
    assert_eq!(rev["dir/b.txt"], "added");
    assert_eq!(rev["x/inner.txt"], "removed");
    // A snapshot against itself: nothing, and no tree read.
    let same = diff_json(&env, "alice/thesis", a, a);
    assert!(changes(&same).is_empty());
    assert_eq!(u(&same["summary"], "trees_read"), 0);

    // Human output.
    let out = expect_code(env.cmd().args(["diff", "alice/thesis", a, b]), 0);
    for line in [
        "+ new.txt  (9 B)",
        "- old.txt  (13 B)",
        "M a.txt  (14 B -> 26 B, +12 B)",
        "m script.sh  mode 0644 -> 0755",
        "T x  file -> dir",
        "+ x/inner.txt  (6 B)",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(line)),
            "no line {line:?} in\n{out}"
        );
    }
    assert!(
        out.stdout
            .contains("3 added, 2 removed, 3 modified, 1 type changes"),
        "{out}"
    );
}

#[test]
fn diff_takes_times_like_at() {
    let env = TestEnv::new();
    let ws = env.ws("bob", "lab");
    write(&ws.join("data.csv"), b"1,2\n");
    let t1 = utc_ns(2026, 3, 2, 10, 0, 0);
    let t2 = utc_ns(2026, 3, 2, 10, 5, 0);
    snapshot_at(&env, &["bob/lab"], t1);
    append(&ws.join("data.csv"), b"3,4\n");
    snapshot_at(&env, &["bob/lab"], t2);
    // Times between snapshots select the newest at or before them.
    let v = diff_json(&env, "bob/lab", "2026-03-02T10:03:00Z", "latest");
    assert_eq!(
        changes(&v),
        BTreeMap::from([("data.csv".to_string(), "modified".to_string())])
    );
    assert_eq!(u(&v["from"], "time_ns"), t1 as u64);
    assert_eq!(u(&v["to"], "time_ns"), t2 as u64);
    let ids: Vec<String> = list_json(&env)
        .iter()
        .map(|x| s(x, "id").to_string())
        .collect();
    assert_eq!(
        diff_json(&env, "bob/lab", &ids[0], &ids[1])["changes"],
        v["changes"]
    );

    // Unusable selectors are bad input (exit 2) with a clear message.
    let out = expect_code(env.cmd().args(["diff", "bob/lab", "someday", "latest"]), 2);
    assert!(out.stderr.contains("give a snapshot id"), "{out}");
    let out = expect_code(
        env.cmd()
            .args(["diff", "bob/lab", "2026-03-01T00:00:00Z", "latest"]),
        2,
    );
    assert!(
        out.stderr.contains("no snapshot of bob/lab at or before"),
        "{out}"
    );
    let out = expect_code(env.cmd().args(["diff", "bob/lab", "ffff", "latest"]), 2);
    assert!(out.stderr.contains("has id ffff"), "{out}");
    expect_code(
        env.cmd().args(["diff", "nobody/here", "latest", "latest"]),
        2,
    );
}

// ---------------------------------------------------------------------------
// log
// ---------------------------------------------------------------------------

fn log_json(env: &TestEnv, ws: &str, path: &str) -> Value {
    expect_code(env.cmd().args(["log", ws, path, "--json"]), 0).json()
}

/// (time_ns, change, mode_changed, size or None) of each event.
fn events(v: &Value) -> Vec<(i64, String, bool, Option<u64>)> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["snapshot"]["time_ns"].as_i64().unwrap(),
                s(e, "change").to_string(),
                e["mode_changed"].as_bool().unwrap(),
                e["new"]["size_bytes"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn log_finds_every_snapshot_where_a_nested_path_changed() {
    let env = TestEnv::new();
    let ws = env.ws("alice", "thesis");
    let at = |m: u32| utc_ns(2026, 3, 2, 10, m, 0);
    let file = ws.join("src/analysis.py");
    write(&ws.join("src/other.py"), b"other");
    write(&ws.join("notes.txt"), b"notes");
    snapshot_at(&env, &[], at(0)); // absent
    write(&file, b"print(1)\n");
    snapshot_at(&env, &[], at(5)); // appears
    append(&ws.join("notes.txt"), b" more");
    snapshot_at(&env, &[], at(10)); // unchanged (elsewhere changed)
    append(&file, b"print(2)\n");
    snapshot_at(&env, &[], at(15)); // content changed
    set_mode(&file, 0o755);
    snapshot_at(&env, &[], at(20)); // mode changed
    fs::remove_file(&file).unwrap();
    snapshot_at(&env, &[], at(25)); // disappears
    write(&ws.join("src/z.py"), b"z");
    snapshot_at(&env, &[], at(30)); // src changed, path still absent
    write(&file, b"print(3)\n");
    snapshot_at(&env, &[], at(35)); // reappears

    let v = log_json(&env, "alice/thesis", "src/analysis.py");
    let want = vec![
        (at(5), "added".to_string(), false, Some(9)),
        (at(15), "modified".to_string(), false, Some(18)),
        (at(20), "modified".to_string(), true, Some(18)),
        (at(25), "removed".to_string(), false, None),
        (at(35), "added".to_string(), false, Some(9)),
    ];
    assert_eq!(events(&v), want, "{v:#}");
    assert_eq!(u(&v, "snapshots_examined"), 8);
    let e = &v["events"][1];
    assert_eq!(
        (
            e["content_changed"].as_bool(),
            e["size_change_bytes"].as_i64()
        ),
        (Some(true), Some(9))
    );
    assert_eq!(s(&v["events"][2]["new"], "mode"), "0755");
    assert_eq!(s(&v["events"][3]["old"], "type"), "file");
    assert_eq!(s(&v, "path"), "src/analysis.py");

    // The directory itself changes whenever something inside it does.
    let dir = log_json(&env, "alice/thesis", "src");
    let times: Vec<i64> = events(&dir).iter().map(|e| e.0).collect();
    // (The chmod at 20 changes the file's entry, so src/ too.)
    assert_eq!(
        times,
        [at(0), at(5), at(15), at(20), at(25), at(30), at(35)],
        "{dir:#}"
    );

    // Human output: one line per event with size and mode.
    let out = expect_code(
        env.cmd().args(["log", "alice/thesis", "src/analysis.py"]),
        0,
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines[1].contains("added") && lines[1].contains("9 B") && lines[1].contains("0644"),
        "{out}"
    );
    assert!(
        lines[3].contains("mode") && lines[3].contains("0644 -> 0755"),
        "{out}"
    );
    assert!(lines[4].contains("removed"), "{out}");

    // Never there: bad input.
    let out = expect_code(env.cmd().args(["log", "alice/thesis", "src/nothing.py"]), 2);
    assert!(
        out.stderr
            .contains("src/nothing.py is in no snapshot of alice/thesis"),
        "{out}"
    );
    expect_code(env.cmd().args(["log", "alice/thesis", "../etc"]), 2);
    expect_code(env.cmd().args(["log", "alice/thesis", "/"]), 2);
}

#[test]
fn log_stops_at_unchanged_directories() {
    let env = TestEnv::new();
    let ws = env.ws("bob", "lab");
    write(&ws.join("deep/er/still/analysis.py"), b"x = 1\n");
    let n = 6;
    for i in 0..n {
        // Only data/ changes: each root differs, deep/ never does.
        write(&ws.join(format!("data/run{i}.csv")), b"1,2,3\n");
        snapshot_at(&env, &[], utc_ns(2026, 3, 2, 11, i, 0));
    }
    let v = log_json(&env, "bob/lab", "deep/er/still/analysis.py");
    assert_eq!(events(&v).len(), 1, "{v:#}");
    // Every root once, and the path's three directories only for the first
    // snapshot: later ones stop at deep/, whose id did not change.
    assert_eq!(u(&v, "trees_read"), n as u64 + 3, "{v:#}");
}

#[test]
fn stats_counts_content_below_a_shared_tree_as_shared() {
    // Hard links give two workspaces an identical subdirectory tree (same
    // inode, ctime, mtime): the tree itself is shared, and so is all below it.
    let env = TestEnv::new();
    let a = env.ws("a", "p");
    let b = env.ws("b", "q");
    write(&a.join("sub/data.bin"), &random_bytes(7, 150 * KIB));
    fs::create_dir(b.join("sub")).unwrap();
    fs::hard_link(a.join("sub/data.bin"), b.join("sub/data.bin")).unwrap();
    write(&a.join("own.bin"), &random_bytes(8, 40 * KIB));
    env.snapshot(&[]);
    let v = stats_json(&env, &[]);
    assert_eq!(u(&v, "chunk_raw_bytes"), 190 * KIB as u64, "{v:#}");
    let (wa, wb) = (ws_stats(&v, "a/p"), ws_stats(&v, "b/q"));
    assert_eq!(u(wb, "unique_content_bytes"), 0, "{v:#}");
    let own = u(wa, "unique_content_bytes");
    assert!((40 * KIB as u64..41 * KIB as u64).contains(&own), "{v:#}");
    // b/q alone holds only its root listing: sub/ is the same tree as a/p's.
    let b_id = list_json(&env)
        .into_iter()
        .find(|x| ws_of(x) == "b/q")
        .map(|x| s(&x, "id").to_string())
        .unwrap();
    let b_unique = u(wb, "unique_bytes");
    expect_code(env.cmd().args(["forget", "--snapshot", &b_id]), 0);
    let after = stats_json(&env, &[]);
    assert_eq!(
        u(&v, "referenced_bytes") - u(&after, "referenced_bytes"),
        b_unique
    );
    assert_eq!(u(&after, "metadata_blobs"), u(&v, "metadata_blobs") - 1);
}
