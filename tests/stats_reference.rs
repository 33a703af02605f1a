//! `stats` and `stats --by-user` against a reference computed by recursive
//! SQL on the same catalog (issue #18: stats keeps one 32-bit tag per blob
//! found by row number, and reads sizes in a second pass; these tests hold
//! every figure to the plain definition). The store's blob rows have gaps
//! (a forget purged blobs in the middle) and rows above them (a later
//! snapshot), and hold chunk lists, trees shared within and across users.

mod common;

use std::collections::BTreeMap;

use common::*;
use rusqlite::Connection;
use serde_json::Value;

const KIB: usize = 1024;

/// Per group (workspace "user/project", or user): stored and stored
/// content record bytes, unique and unique content record bytes.
type Figures = BTreeMap<String, [u64; 4]>;

/// Store-wide figures and per-workspace and per-user ones, from the
/// definitions (module doc of `src/stats/mod.rs`) by recursive SQL.
struct Reference {
    store: BTreeMap<&'static str, u64>,
    workspaces: Figures,
    users: Figures,
}

fn reference(store: &std::path::Path) -> Reference {
    let c = Connection::open(store.join("catalog.sqlite")).expect("open catalog");
    c.execute_batch(
        "CREATE TEMP TABLE reach AS
         WITH RECURSIVE r(ws, blob) AS (
             SELECT workspace_id, root_tree_id FROM snapshots
             UNION
             SELECT r.ws, t.blob_id FROM r JOIN tree_refs t ON t.tree_id = r.blob)
         SELECT r.ws, w.user AS user, r.blob, b.kind, b.stored_len + 48 AS record,
                b.stored_len, b.raw_len
         FROM r JOIN blobs b ON b.id = r.blob JOIN workspaces w ON w.id = r.ws;",
    )
    .expect("reach");
    let n = |sql: &str| -> u64 { c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64 };
    let distinct = "(SELECT DISTINCT blob, kind, record, stored_len, raw_len FROM reach)";
    let mut s = BTreeMap::new();
    s.insert(
        "referenced_bytes",
        n(&format!("SELECT COALESCE(SUM(record), 0) FROM {distinct}")),
    );
    s.insert(
        "chunks",
        n(&format!("SELECT COUNT(*) FROM {distinct} WHERE kind = 1")),
    );
    s.insert(
        "chunk_raw_bytes",
        n(&format!(
            "SELECT COALESCE(SUM(raw_len), 0) FROM {distinct} WHERE kind = 1"
        )),
    );
    s.insert(
        "chunk_stored_bytes",
        n(&format!(
            "SELECT COALESCE(SUM(stored_len), 0) FROM {distinct} WHERE kind = 1"
        )),
    );
    s.insert(
        "metadata_blobs",
        n(&format!("SELECT COUNT(*) FROM {distinct} WHERE kind <> 1")),
    );
    s.insert(
        "metadata_stored_bytes",
        n(&format!(
            "SELECT COALESCE(SUM(stored_len), 0) FROM {distinct} WHERE kind <> 1"
        )),
    );
    s.insert(
        "unreferenced_blobs",
        n("SELECT COUNT(*) FROM blobs WHERE id NOT IN (SELECT blob FROM reach)"),
    );
    s.insert("snapshots", n("SELECT COUNT(*) FROM snapshots"));
    s.insert(
        "logical_bytes",
        n("SELECT COALESCE(SUM(size_bytes), 0) FROM snapshots"),
    );

    // Per group: what it reaches (each blob once), and the part no other
    // group of its kind reaches.
    let figures = |key: &str, join: &str, name: &str| -> Figures {
        let sql = format!(
            "WITH g AS (SELECT DISTINCT {key} AS k, blob, kind, record FROM reach),
                  owners AS (SELECT blob, COUNT(*) AS n FROM g GROUP BY blob)
             SELECT {name}, SUM(g.record), SUM(CASE WHEN g.kind = 1 THEN g.record ELSE 0 END),
                    SUM(CASE WHEN o.n = 1 THEN g.record ELSE 0 END),
                    SUM(CASE WHEN o.n = 1 AND g.kind = 1 THEN g.record ELSE 0 END)
             FROM g JOIN owners o ON o.blob = g.blob {join}
             GROUP BY g.k"
        );
        let mut stmt = c.prepare(&sql).expect("figures");
        let rows = stmt
            .query_map([], |r| {
                let v = |i| r.get::<_, i64>(i).map(|v| v as u64);
                Ok((r.get::<_, String>(0)?, [v(1)?, v(2)?, v(3)?, v(4)?]))
            })
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    };
    Reference {
        store: s,
        workspaces: figures(
            "ws",
            "JOIN workspaces w ON w.id = g.k",
            "CAST(w.user AS TEXT) || '/' || CAST(w.project AS TEXT)",
        ),
        users: figures("user", "", "CAST(g.k AS TEXT)"),
    }
}

/// Users a and b, a's two projects sharing a file, a file shared by a and
/// b, a 3 MiB file (a chunk list); two snapshots each, then one of b/p's
/// snapshots and all of c/r forgotten (blobs purged from the middle of the
/// table), then a new snapshot of a/p with new data (rows above).
fn store_with_gaps() -> TestEnv {
    let env = TestEnv::new();
    let common = random_bytes(10, 64 * KIB);
    for (u_, p) in [("a", "p"), ("a", "q"), ("b", "p"), ("c", "r")] {
        let w = env.ws(u_, p);
        write(&w.join("common.bin"), &common);
        write(
            &w.join("own.txt"),
            format!("{u_}/{p} alone\n").repeat(500).as_bytes(),
        );
        write(
            &w.join("sub/deeper/data.csv"),
            &repeated(b"1,2,3\n", 20 * KIB),
        );
    }
    write(
        &env.ws("a", "p").join("a-shared.bin"),
        &random_bytes(11, 50 * KIB),
    );
    write(
        &env.ws("a", "q").join("a-shared.bin"),
        &random_bytes(11, 50 * KIB),
    );
    write(
        &env.ws("a", "q").join("big.bin"),
        &random_bytes(12, 3 << 20),
    );
    write(
        &env.ws("c", "r").join("c-only.bin"),
        &random_bytes(13, 80 * KIB),
    );
    env.snapshot(&[]);
    for (u_, p) in [("a", "q"), ("b", "p"), ("c", "r")] {
        write(
            &env.ws(u_, p).join("edit.bin"),
            &random_bytes(20 + p.len() as u64 + u_.len() as u64 * 7, 30 * KIB),
        );
    }
    write(
        &env.ws("b", "p").join("edit.bin"),
        &random_bytes(31, 30 * KIB),
    );
    env.snapshot(&[]);
    // Forget b/p's first snapshot and every snapshot of c/r: their unique
    // blobs are purged, leaving gaps in the blobs rows.
    let list = list_json(&env);
    let ids_of = |ws: &str| -> Vec<String> {
        list.iter()
            .filter(|x| ws_name(x) == ws)
            .map(|x| s(x, "id").to_string())
            .collect()
    };
    let mut forget: Vec<String> = ids_of("c/r");
    forget.push(ids_of("b/p")[0].clone());
    let mut cmd = env.cmd();
    cmd.arg("forget");
    for id in &forget {
        cmd.args(["--snapshot", id]);
    }
    expect_code(&mut cmd, 0);
    write(
        &env.ws("a", "p").join("late.bin"),
        &random_bytes(40, 40 * KIB),
    );
    env.snapshot_ws("a/p", &[]);
    env
}

fn ws_name(v: &Value) -> String {
    format!("{}/{}", s(v, "user"), s(v, "project"))
}

fn gaps(store: &std::path::Path) -> u64 {
    let c = Connection::open(store.join("catalog.sqlite")).expect("open catalog");
    c.query_row(
        "SELECT MAX(id) - MIN(id) + 1 - COUNT(*) FROM blobs",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as u64
}

#[test]
fn stats_per_workspace_equals_the_reference() {
    let env = store_with_gaps();
    assert!(gaps(&env.store) > 0, "the forget left no gap in blob rows");
    let want = reference(&env.store);
    let v = expect_code(env.cmd().args(["stats", "--json"]), 0).json();
    for (k, n) in &want.store {
        assert_eq!(u(&v, k), *n, "{k}: {v:#}");
    }
    assert!(u(&v, "chunks") > u(&v, "metadata_blobs"), "{v:#}");
    let got: Figures = v["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                ws_name(w),
                [u(w, "unique_bytes"), u(w, "unique_content_bytes")],
            )
        })
        .map(|(k, [a, b])| (k, [0, 0, a, b]))
        .collect();
    let want_ws: Figures = want
        .workspaces
        .iter()
        .map(|(k, f)| (k.clone(), [0, 0, f[2], f[3]]))
        .collect();
    assert_eq!(got, want_ws);
    // Not trivially zero: a/q holds big.bin alone, c/r is gone.
    assert!(want_ws["a/q"][3] > 3 << 20, "{want_ws:?}");
    assert!(!want_ws.contains_key("c/r"));
}

#[test]
fn stats_by_user_equals_the_reference() {
    let env = store_with_gaps();
    assert!(gaps(&env.store) > 0, "the forget left no gap in blob rows");
    let want = reference(&env.store);
    let v = expect_code(env.cmd().args(["stats", "--by-user", "--json"]), 0).json();
    for (k, n) in &want.store {
        assert_eq!(u(&v, k), *n, "{k}: {v:#}");
    }
    let got: Figures = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                s(x, "user").to_string(),
                [
                    u(x, "stored_bytes"),
                    u(x, "stored_content_bytes"),
                    u(x, "unique_bytes"),
                    u(x, "unique_content_bytes"),
                ],
            )
        })
        .collect();
    assert_eq!(got, want.users);
    // a's projects share a-shared.bin and big.bin is a's alone: unique;
    // common.bin is in a's and b's stored, in neither's unique.
    assert!(want.users["a"][3] > 3 << 20, "{:?}", want.users);
    assert!(want.users["b"][1] > want.users["b"][3] + 64 * KIB as u64);
}
