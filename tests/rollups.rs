//! Issue 17's views of a big store: `list` by user and by time (`USER`,
//! `--since`, `--until`, `--last`), `stats --by-user` (what each user's
//! projects store together and what only that user references), and the
//! snapshot a TIME resolved to, said on stderr and in `--json` by `ls`,
//! `restore`, `diff`, `cat` (and `find --at`).

mod common;

use common::*;

/// Snapshots of alice/thesis at 10:00, 11:00, 12:00, 13:00 and 14:00 on
/// 2026-03-02 (UTC), of alice/notes at 11:30 and 13:30, of bob/lab at 12:30,
/// and of alice/thesis on the next day at 09:00: their ids by (workspace,
/// hour:minute), and the env.
fn history() -> (TestEnv, Vec<(String, i64, String)>) {
    let env = TestEnv::new();
    for (u, p) in [("alice", "thesis"), ("alice", "notes"), ("bob", "lab")] {
        write(&env.ws(u, p).join("f.txt"), format!("{u}/{p}").as_bytes());
    }
    let plan = [
        ("alice/thesis", utc_ns(2026, 3, 2, 10, 0, 0)),
        ("alice/thesis", utc_ns(2026, 3, 2, 11, 0, 0)),
        ("alice/notes", utc_ns(2026, 3, 2, 11, 30, 0)),
        ("alice/thesis", utc_ns(2026, 3, 2, 12, 0, 0)),
        ("bob/lab", utc_ns(2026, 3, 2, 12, 30, 0)),
        ("alice/thesis", utc_ns(2026, 3, 2, 13, 0, 0)),
        ("alice/notes", utc_ns(2026, 3, 2, 13, 30, 0)),
        ("alice/thesis", utc_ns(2026, 3, 2, 14, 0, 0)),
        ("alice/thesis", utc_ns(2026, 3, 3, 9, 0, 0)),
    ];
    let mut ids = Vec::new();
    for (ws, t) in plan {
        let r = snapshot_at(&env, &[ws], t);
        ids.push((ws.to_string(), t, s(&r["workspaces"][0], "id").to_string()));
    }
    (env, ids)
}

/// `list ARGS --json`: (workspace, time) of each row, in order.
#[track_caller]
fn listed_times(env: &TestEnv, args: &[&str]) -> Vec<(String, i64)> {
    let mut c = env.cmd();
    c.arg("list").args(args).arg("--json");
    let v = expect_code(&mut c, 0).json();
    snapshots_of(&v)
        .iter()
        .map(|r| (ws_of(r), r["time_ns"].as_i64().unwrap()))
        .collect()
}

fn at(ws: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> (String, i64) {
    (ws.to_string(), utc_ns(y, mo, d, h, mi, 0))
}

#[test]
fn list_filters_by_user_time_and_count() {
    let (env, _) = history();
    let th = |h, mi| at("alice/thesis", 2026, 3, 2, h, mi);
    let no = |h, mi| at("alice/notes", 2026, 3, 2, h, mi);
    let next_day = at("alice/thesis", 2026, 3, 3, 9, 0);

    // A user alone: all of that user's projects, by project then time.
    assert_eq!(
        listed_times(&env, &["alice"]),
        [
            no(11, 30),
            no(13, 30),
            th(10, 0),
            th(11, 0),
            th(12, 0),
            th(13, 0),
            th(14, 0),
            next_day.clone()
        ]
    );
    assert_eq!(listed_times(&env, &["alice/"]).len(), 8, "a trailing slash");
    // Both bounds are inclusive.
    assert_eq!(
        listed_times(
            &env,
            &[
                "alice/thesis",
                "--since",
                "2026-03-02T11:00:00Z",
                "--until",
                "2026-03-02 13:00"
            ]
        ),
        [th(11, 0), th(12, 0), th(13, 0)]
    );
    // A range between two snapshots: nothing, and that is not an error.
    assert_eq!(
        listed_times(
            &env,
            &[
                "alice/thesis",
                "--since",
                "2026-03-02 12:01",
                "--until",
                "2026-03-02 12:59"
            ]
        ),
        []
    );
    // A day alone: from its start (--since) to its end (--until).
    assert_eq!(
        listed_times(
            &env,
            &[
                "alice/thesis",
                "--since",
                "2026-03-02",
                "--until",
                "2026-03-02"
            ]
        ),
        [th(10, 0), th(11, 0), th(12, 0), th(13, 0), th(14, 0)]
    );
    assert_eq!(
        listed_times(&env, &["alice", "--since", "2026-03-03"]),
        std::slice::from_ref(&next_day)
    );
    // The N newest of each workspace, within the bounds.
    assert_eq!(
        listed_times(&env, &["--last", "1"]),
        [no(13, 30), next_day, at("bob/lab", 2026, 3, 2, 12, 30)]
    );
    assert_eq!(
        listed_times(
            &env,
            &["alice", "--until", "2026-03-02 13:15", "--last", "2"]
        ),
        [no(11, 30), th(12, 0), th(13, 0)]
    );
    assert_eq!(
        listed_times(
            &env,
            &["--since", "2026-03-02 12:15", "--until", "2026-03-02 13:00"]
        ),
        [th(13, 0), at("bob/lab", 2026, 3, 2, 12, 30)]
    );
    let v = expect_code(
        env.cmd().args([
            "list",
            "alice/thesis",
            "--since",
            "2026-03-02",
            "--last",
            "3",
            "--json",
        ]),
        0,
    )
    .json();
    assert_eq!(
        (
            &v["filter"]["since_ns"],
            &v["filter"]["until_ns"],
            &v["filter"]["last"]
        ),
        (&utc_ns(2026, 3, 2, 0, 0, 0).into(), &Value::Null, &3.into()),
        "{v:#}"
    );

    // The table shows only that user.
    let out = expect_code(env.cmd().args(["list", "alice"]), 0);
    assert!(
        out.stdout.contains("alice/notes") && out.stdout.contains("alice/thesis"),
        "{out}"
    );
    assert!(!out.stdout.contains("bob/lab"), "{out}");
    assert_eq!(out.stdout.lines().count(), 9, "header and 8 rows: {out}");

    // Unknown names are errors that name them; bad bounds are refused.
    let out = expect_code(env.cmd().args(["list", "carol"]), 2);
    assert!(out.stderr.contains("no workspace of user carol"), "{out}");
    let out = expect_code(env.cmd().args(["list", "alice/none", "--last", "1"]), 2);
    assert!(out.stderr.contains("alice/none"), "{out}");
    let out = expect_code(env.cmd().args(["list", "--since", "latest"]), 2);
    assert!(out.stderr.contains("--last 1"), "{out}");
    let out = expect_code(env.cmd().args(["list", "--until", "whenever"]), 2);
    assert!(out.stderr.contains("whenever"), "{out}");
    expect_code(env.cmd().args(["list", "--last", "0"]), 2);
    expect_code(env.cmd().args(["list", ".."]), 2);
}

/// Random bytes that stay one chunk, stored raw (zstd does not pay on
/// them): a record of N + 48 bytes.
const FILE: usize = 1000;
const RECORD: u64 = FILE as u64 + 48;

/// Two users: alice's projects p1 and p2 share a.bin, alice/p1 and bob/q
/// share s.bin, bob/q alone has b.bin. Per workspace nothing of alice's
/// content is unique; per user a.bin is alice's alone.
#[test]
fn stats_by_user_counts_what_one_users_projects_share_once() {
    let env = TestEnv::new();
    let (a, shared, b) = (
        random_bytes(1, FILE),
        random_bytes(2, FILE),
        random_bytes(3, FILE),
    );
    write(&env.ws("alice", "p1").join("a.bin"), &a);
    write(&env.ws("alice", "p1").join("s.bin"), &shared);
    write(&env.ws("alice", "p2").join("a.bin"), &a);
    write(&env.ws("bob", "q").join("s.bin"), &shared);
    write(&env.ws("bob", "q").join("b.bin"), &b);
    snapshot_at(&env, &[], utc_ns(2026, 3, 2, 10, 0, 0));
    // Unchanged: a second snapshot of each adds nothing stored.
    snapshot_at(&env, &[], utc_ns(2026, 3, 2, 10, 5, 0));

    let ws = expect_code(env.cmd().args(["stats", "--json"]), 0).json();
    let per_ws = |name: &str| {
        ws["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| ws_of(w) == name)
            .unwrap_or_else(|| panic!("{name} in {ws:#}"))
            .clone()
    };
    let (p1, p2, q) = (per_ws("alice/p1"), per_ws("alice/p2"), per_ws("bob/q"));
    assert_eq!(
        [p1.clone(), p2.clone(), q.clone()].map(|w| u(&w, "unique_content_bytes")),
        [0, 0, RECORD],
        "per workspace, a.bin and s.bin are shared: {ws:#}"
    );
    // What is not content is each workspace's own directory listings.
    let meta = |w: &Value| u(w, "unique_bytes") - u(w, "unique_content_bytes");

    let by = expect_code(env.cmd().args(["stats", "--by-user", "--json"]), 0).json();
    let users = by["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "{by:#}");
    assert!(by.get("workspaces").is_none(), "{by:#}");
    let (alice, bob) = (&users[0], &users[1]);
    assert_eq!((s(alice, "user"), s(bob, "user")), ("alice", "bob"));
    let figures = |x: &Value| {
        [
            "workspace_count",
            "snapshots",
            "stored_content_bytes",
            "unique_content_bytes",
            "stored_bytes",
            "unique_bytes",
            "latest_size_bytes",
            "total_size_bytes",
        ]
        .map(|k| u(x, k))
    };
    let f = FILE as u64;
    assert_eq!(
        figures(alice),
        [
            2,
            4,
            2 * RECORD,
            RECORD,
            meta(&p1) + meta(&p2) + 2 * RECORD,
            meta(&p1) + meta(&p2) + RECORD,
            3 * f,
            6 * f
        ],
        "alice: a.bin once, s.bin stored but shared with bob: {by:#}"
    );
    assert_eq!(
        figures(bob),
        [
            1,
            2,
            2 * RECORD,
            RECORD,
            meta(&q) + 2 * RECORD,
            meta(&q) + RECORD,
            2 * f,
            4 * f
        ],
        "bob: b.bin his, s.bin shared: {by:#}"
    );
    // Unique to each user plus what they share is everything referenced.
    assert_eq!(
        u(alice, "unique_bytes") + u(bob, "unique_bytes") + RECORD,
        u(&by, "referenced_bytes"),
        "{by:#}"
    );
    // The store-wide figures are those of the per-workspace view.
    for k in [
        "referenced_bytes",
        "chunks",
        "snapshots",
        "workspace_count",
        "latest_logical_bytes",
    ] {
        assert_eq!(by[k], ws[k], "{k}");
    }

    let only = expect_code(env.cmd().args(["stats", "--by-user", "bob", "--json"]), 0).json();
    assert_eq!(only["users"].as_array().unwrap().len(), 1, "{only:#}");
    assert_eq!(figures(&only["users"][0]), figures(bob));
    expect_code(env.cmd().args(["stats", "--by-user", "carol"]), 2);
    expect_code(env.cmd().args(["stats", "--by-user", "bob/q"]), 2);

    let out = expect_code(env.cmd().args(["stats", "--by-user"]), 0);
    let header = out
        .stdout
        .lines()
        .find(|l| l.starts_with("USER"))
        .expect("{out}");
    for col in [
        "PROJECTS",
        "SNAPSHOTS",
        "LATEST",
        "STORED",
        "UNIQUE",
        "UNIQUE DATA",
    ] {
        assert!(header.contains(col), "{out}");
    }
    let help = expect_code(env.cmd().args(["stats", "--help"]), 0);
    for col in ["UNIQUE DATA", "STORED", "PROJECTS", "LATEST", "SNAPSHOTS"] {
        assert!(help.stdout.contains(&format!("  {col} ")), "{col}: {help}");
    }
}

/// A TIME between two snapshots resolves to the older one: said on stderr
/// (`snapshot ID at TIME (resolved from 'ARG')`, not with `-q`, not for an
/// id) and in `--json` (`snapshot`, or `from`/`to` for `diff`).
#[test]
fn commands_say_which_snapshot_a_time_resolved_to() {
    let (env, ids) = history();
    let (ten, eleven) = (&ids[0], &ids[1]);
    assert_eq!(ten.1, utc_ns(2026, 3, 2, 10, 0, 0));
    let short = |id: &str| id[..8].to_string();
    let ws = "alice/thesis";
    let given = "2026-03-02 10:30";
    let note = format!(
        "snapshot {} at 2026-03-02 10:00:00 +00:00 (resolved from '{given}')",
        short(&ten.2)
    );
    let check_json = |snap: &Value, want: &(String, i64, String), from: Option<&str>| {
        assert_eq!(snap["id"], want.2.as_str(), "{snap:#}");
        assert_eq!(snap["time_ns"], want.1, "{snap:#}");
        assert_eq!(
            snap["time"],
            rfc3339(want.1).replace('Z', ".000000000Z"),
            "{snap:#}"
        );
        assert_eq!(
            snap["resolved_from"],
            from.map_or(Value::Null, Value::from),
            "{snap:#}"
        );
    };

    let out = expect_code(env.cmd().args(["ls", ws, "--at", given, "--json"]), 0);
    assert_eq!(out.stderr.trim(), note, "{out}");
    check_json(&out.json()["snapshot"], ten, Some(given));

    let mut c = env.cmd();
    c.args(["restore", ws, "--at", given, "--json", "--to"])
        .arg(env.path("r1"));
    let out = expect_code(&mut c, 0);
    assert_eq!(out.stderr.trim(), note, "{out}");
    check_json(&out.json()["snapshot"], ten, Some(given));
    let mut c = env.cmd();
    c.args(["restore", ws, "--at", given, "--to"])
        .arg(env.path("r2"));
    let out = expect_code(&mut c, 0);
    assert_eq!(out.stderr.trim(), note, "text output too: {out}");

    let out = expect_code(env.cmd().args(["cat", ws, "f.txt", "--at", given]), 0);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.trim()),
        ("alice/thesis", note.as_str())
    );

    let out = expect_code(
        env.cmd()
            .args(["diff", ws, given, "2026-03-02 11:59:59", "--json"]),
        0,
    );
    let eleven_note = format!(
        "snapshot {} at 2026-03-02 11:00:00 +00:00 (resolved from '2026-03-02 11:59:59')",
        short(&eleven.2)
    );
    assert_eq!(out.stderr.trim(), format!("{note}\n{eleven_note}"), "{out}");
    let v = out.json();
    check_json(&v["from"], ten, Some(given));
    check_json(&v["to"], eleven, Some("2026-03-02 11:59:59"));

    let out = expect_code(
        env.cmd()
            .args(["find", ws, "f.txt", "--at", given, "--json"]),
        0,
    );
    assert_eq!(out.stderr.trim(), note, "{out}");
    check_json(&out.json()["snapshots"][0]["snapshot"], ten, Some(given));

    // Not with -q, not for a snapshot named by its id.
    let out = expect_code(env.cmd().args(["-q", "ls", ws, "--at", given]), 0);
    assert_eq!(out.stderr, "", "{out}");
    let out = expect_code(
        env.cmd().args(["ls", ws, "--snapshot", &ten.2, "--json"]),
        0,
    );
    assert_eq!(out.stderr, "", "{out}");
    check_json(&out.json()["snapshot"], ten, None);
    let out = expect_code(env.cmd().args(["diff", ws, &ten.2[..12], given]), 0);
    assert_eq!(
        out.stderr.trim(),
        note,
        "only the side given as a TIME: {out}"
    );
}
