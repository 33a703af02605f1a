//! `wsnap serve` over HTTP (issue #20), the real binary on an ephemeral
//! loopback port:
//!
//! - every request needs the token (401 without or with a wrong one,
//!   assets and unknown pages too; 200 with it), and every answer carries
//!   the security headers (CSP without script, nosniff, no framing);
//! - a non-loopback `--listen` without `--token-file`, and a token file
//!   others can read, are refused before anything listens;
//! - path traversal, NUL, bad workspace names, bad ids and times are 400;
//!   unknown workspaces, paths and ids 404;
//! - a file download is byte for byte what `wsnap cat` writes; a
//!   directory's (and the whole workspace's) `.tar.gz` unpacks to what
//!   `wsnap restore` writes (mtimes to the second, as tar keeps them);
//! - a download over `--max-download` is refused with 413 naming restore;
//! - hostile names (HTML, newlines, ESC, invalid UTF-8) render as escaped
//!   text, and download by their percent-encoded bytes;
//! - `/api/status` is the `status --json` object;
//! - a damaged snapshot is marked in the workspace page's strip and table,
//!   and a file whose data the store lost is answered with the error, never
//!   served as a complete answer.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use common::server::{enc, Server, TOKEN};
use common::*;

const CSP_NEEDS: &[&str] = &[
    "default-src 'none'",
    "frame-ancestors 'none'",
    "style-src 'self'",
];

fn assert_security_headers(a: &common::server::Answer, what: &str) {
    let csp = a
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    for need in CSP_NEEDS {
        assert!(csp.contains(need), "{what}: CSP {csp:?} lacks {need}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{what}: {csp}"
    );
    assert_eq!(
        a.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(a.header("x-frame-options"), Some("DENY"), "{what}");
}

fn store_with_varied(env: &TestEnv) {
    varied_workspaces(env);
    env.snapshot(&[]);
}

#[test]
fn every_request_needs_the_token_and_carries_the_security_headers() {
    let env = TestEnv::new();
    store_with_varied(&env);
    let srv = Server::start(&env, &[]);
    let pages = [
        "/",
        "/style.css",
        "/favicon.ico",
        "/api/status",
        "/workspaces",
        "/ws/alice/thesis",
        "/browse/alice/thesis",
        "/download/alice/thesis/notes.txt",
        "/no-such-page",
    ];
    let basic = |user_pass: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    };
    for p in pages {
        for auth in [
            None,
            Some("Bearer wrong-token".to_string()),
            Some(format!("Bearer {TOKEN}x")),
            Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
            Some(basic("admin:nope")),
            Some(TOKEN.to_string()),
        ] {
            let a = srv.raw(p, auth.as_deref());
            assert_eq!(a.status, 401, "{p} with {auth:?}");
            assert!(
                a.header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Basic")),
                "{p}: no WWW-Authenticate"
            );
            assert!(!a.text().contains("alice"), "{p}: a 401 leaks data");
            assert_security_headers(&a, p);
        }
        let want = if p == "/no-such-page" { 404 } else { 200 };
        let a = srv.get(p);
        assert_eq!(a.status, want, "{p}: {}", String::from_utf8_lossy(&a.body));
        assert_security_headers(&a, p);
        let b = srv.raw(p, Some(&basic(&format!("anyone:{TOKEN}"))));
        assert_eq!(b.status, want, "{p} with Basic");
    }
}

#[test]
fn a_non_loopback_address_needs_a_token_file_and_the_token_file_must_be_private() {
    let env = TestEnv::new();
    store_with_varied(&env);
    let mut c = env.cmd();
    c.args(["serve", "--listen", "0.0.0.0:0"]);
    let out = expect_code(&mut c, 2);
    assert!(
        out.stderr.contains("--token-file") && out.stderr.contains("loopback"),
        "{}",
        out.stderr
    );
    let token = env.path("open.token");
    fs::write(&token, format!("{TOKEN}\n")).unwrap();
    set_mode(&token, 0o644);
    let mut c = env.cmd();
    c.args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token);
    let out = expect_code(&mut c, 2);
    assert!(out.stderr.contains("0600"), "{}", out.stderr);
    set_mode(&token, 0o600);
    fs::write(&token, "short\n").unwrap();
    let mut c = env.cmd();
    c.args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token);
    let out = expect_code(&mut c, 2);
    assert!(out.stderr.contains("32 characters"), "{}", out.stderr);
}

#[test]
fn traversal_bad_names_and_bad_ids_are_refused() {
    let env = TestEnv::new();
    store_with_varied(&env);
    let srv = Server::start(&env, &[]);
    let cases: &[(&str, u16)] = &[
        ("/browse/alice/thesis/../../../etc/passwd", 400),
        ("/browse/alice/thesis/%2e%2e/%2e%2e/etc", 400),
        ("/download/alice/thesis/..", 400),
        ("/download/../../etc/passwd", 400),
        ("/download/alice/%2e%2e/notes.txt", 400),
        ("/browse/alice/thesis/no%00te", 400),
        ("/browse/al%00ice/thesis", 400),
        ("/browse/alice%2Fbob/thesis", 400),
        ("/browse/alice", 400),
        ("/history/alice/thesis/..", 400),
        ("/diff/alice/thesis?from=zz&to=latest", 400),
        ("/browse/alice/thesis?snapshot=zz", 400),
        ("/browse/alice/thesis?at=not-a-time", 400),
        ("/workspaces?sort=nonsense", 400),
        ("/?range=1y", 400),
        ("/browse/alice/nope", 404),
        ("/browse/mallory/thesis", 404),
        ("/browse/alice/thesis/no-such-file", 404),
        ("/download/alice/thesis/no-such-file", 404),
        ("/browse/alice/thesis?snapshot=00000000", 404),
        (
            "/download/alice/thesis/notes.txt?at=2001-01-01%2000:00",
            404,
        ),
        ("/ws/alice/nope", 404),
    ];
    for (target, want) in cases {
        let a = srv.get(target);
        assert_eq!(
            a.status,
            *want,
            "{target}: {}",
            String::from_utf8_lossy(&a.body)
        );
        let body = String::from_utf8_lossy(&a.body);
        assert!(!body.contains("root:x:0:0"), "{target} read /etc/passwd");
    }
    // The refusal says why.
    let a = srv.get("/browse/alice/thesis/../x");
    assert!(a.text().contains(".."), "{}", a.text());
}

/// (relative path → metadata) with mtimes cut to whole seconds (what tar
/// keeps) and directories' mtimes left out (unpacking a directory's
/// children changes it).
fn comparable(root: &Path) -> BTreeMap<Vec<u8>, Meta> {
    listing(root)
        .into_iter()
        .map(|(k, mut m)| {
            m.mtime_ns = if m.kind == Kind::Dir {
                0
            } else {
                m.mtime_ns.div_euclid(1_000_000_000)
            };
            (k, m)
        })
        .collect()
}

fn untar_gz(bytes: &[u8], into: &Path) {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_preserve_ownerships(true);
    ar.unpack(into).expect("unpack the .tar.gz");
}

#[test]
fn downloads_equal_cat_and_restore() {
    let env = TestEnv::new();
    store_with_varied(&env);
    // A file large enough for chunk lists, and a nested directory.
    write_file(
        &env.ws("bob", "data").join("sub/huge.bin"),
        &random_bytes(7, 9 * MIB),
        0o600,
        hour_ago_ns(),
    );
    env.snapshot(&[]);
    let srv = Server::start(&env, &[]);

    for (ws, path) in [
        ("alice/thesis", "big.bin"),
        ("alice/thesis", "notes.txt"),
        ("bob/data", "sub/huge.bin"),
        ("bob/data", "sub/deeper/x.csv"),
    ] {
        let a = srv.get(&format!("/download/{ws}/{path}?at=latest"));
        assert_eq!(a.status, 200, "{ws} {path}");
        let mut c = env.cmd();
        c.args(["cat", ws, path, "--at", "latest"]);
        let cat = c.output().unwrap();
        assert!(cat.status.success());
        assert_eq!(a.body.len(), cat.stdout.len(), "{ws} {path}: length");
        assert!(
            a.body == cat.stdout,
            "{ws} {path}: bytes differ from `wsnap cat`"
        );
        assert_eq!(
            a.header("content-length"),
            Some(cat.stdout.len().to_string().as_str())
        );
        assert!(a
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment"));
    }

    // A directory: its .tar.gz against `restore --path`.
    let a = srv.get("/download/bob/data/sub?at=latest");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/gzip"));
    let unpacked = env.path("unpacked-sub");
    fs::create_dir(&unpacked).unwrap();
    untar_gz(&a.body, &unpacked);
    let restored = env.path("restored-sub");
    let mut c = env.cmd();
    c.args([
        "restore", "bob/data", "--at", "latest", "--path", "sub", "--to",
    ])
    .arg(&restored);
    expect_code(&mut c, 0);
    let (u, r) = (
        comparable(&unpacked.join("sub")),
        comparable(&restored.join("sub")),
    );
    assert!(u.len() >= 3, "{u:?}");
    assert_eq!(u, r, ".tar.gz of bob/data/sub differs from restore");

    // The whole workspace (PATH empty): under the project's name, with the
    // empty directory and the symlink.
    let a = srv.get("/download/alice/thesis");
    assert_eq!(a.status, 200);
    let unpacked = env.path("unpacked-all");
    fs::create_dir(&unpacked).unwrap();
    untar_gz(&a.body, &unpacked);
    let restored = env.restore_latest("alice/thesis", "restored-all");
    let (u, r) = (comparable(&unpacked.join("thesis")), comparable(&restored));
    assert!(
        u.contains_key(b"empty".as_slice()) && u.contains_key(b"link".as_slice()),
        "{u:?}"
    );
    assert_eq!(u, r, ".tar.gz of alice/thesis differs from restore");

    // The gzip stream is whole (a cut transfer would fail here).
    let mut all = Vec::new();
    flate2::read::GzDecoder::new(a.body.as_slice())
        .read_to_end(&mut all)
        .expect("complete gzip stream");
}

#[test]
fn a_download_over_the_limit_is_refused_with_a_message() {
    let env = TestEnv::new();
    store_with_varied(&env);
    let srv = Server::start(&env, &["--max-download", "1MiB"]);
    for target in ["/download/alice/thesis/big.bin", "/download/alice/thesis"] {
        let a = srv.get(target);
        assert_eq!(a.status, 413, "{target}");
        let t = a.text();
        assert!(t.contains("wsnap restore") && t.contains("1.0 MiB"), "{t}");
    }
    assert_eq!(srv.get("/download/alice/thesis/notes.txt").status, 200);
    assert_eq!(srv.get("/download/bob/data/script.sh").status, 200);
}

/// Names a user controls, hostile to HTML and to terminals.
const H_USER: &[u8] = b"evil\nWSNAP OK";
const H_PROJECT: &[u8] = b"p\x1b[2Jx<b>bold";
const H_DIR: &[u8] = b"<img src=x onerror=alert(1)>";
const H_FILE: &[u8] = b"f\xff\"'&<script>alert(2).txt";

#[test]
fn hostile_names_render_as_escaped_text() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let ws = env
        .root
        .join(OsStr::from_bytes(H_USER))
        .join(OsStr::from_bytes(H_PROJECT));
    let dir = ws.join(OsStr::from_bytes(H_DIR));
    write_file(
        &dir.join(OsStr::from_bytes(H_FILE)),
        b"hostile content\n",
        0o644,
        hour_ago_ns(),
    );
    env.snapshot(&[]);
    let srv = Server::start(&env, &[]);
    let wsu = format!("{}/{}", enc(H_USER), enc(H_PROJECT));
    let pages = [
        "/workspaces".to_string(),
        format!("/ws/{wsu}"),
        format!("/browse/{wsu}"),
        format!("/browse/{wsu}/{}", enc(H_DIR)),
        format!("/browse/{wsu}/{}/{}", enc(H_DIR), enc(H_FILE)),
        format!("/history/{wsu}/{}/{}", enc(H_DIR), enc(H_FILE)),
        format!("/diff/{wsu}?from=latest&to=latest"),
    ];
    for p in &pages {
        let a = srv.get(p);
        assert_eq!(a.status, 200, "{p}: {}", String::from_utf8_lossy(&a.body));
        let t = a.text(); // valid UTF-8: \xff is shown escaped
        for raw in ["<img src=x", "<script>", "<b>bold", "\x1b"] {
            assert!(!t.contains(raw), "{p}: raw {raw:?} in the page");
        }
        assert!(!t.contains("evil\nWSNAP"), "{p}: a raw newline in a name");
    }
    let list = srv.get("/workspaces").text();
    assert!(list.contains(r"evil\nWSNAP OK"), "{list}");
    assert!(list.contains(r"p\x1b[2Jx&lt;b&gt;bold"), "{list}");
    let d = srv.get(&format!("/browse/{wsu}/{}", enc(H_DIR))).text();
    assert!(d.contains("&lt;img src=x onerror=alert(1)&gt;"), "{d}");
    assert!(
        d.contains(r"f\xff&quot;'&amp;&lt;script&gt;alert(2).txt"),
        "{d}"
    );
    // The file downloads by its percent-encoded bytes.
    let a = srv.get(&format!("/download/{wsu}/{}/{}", enc(H_DIR), enc(H_FILE)));
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b"hostile content\n");
    let cd = a.header("content-disposition").unwrap();
    assert!(!cd.contains('"') || cd.matches('"').count() == 2, "{cd}");
}

#[test]
fn api_status_is_the_status_json_object() {
    let env = TestEnv::new();
    store_with_varied(&env);
    let srv = Server::start(&env, &[]);
    let a = srv.get("/api/status");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let served: Value = serde_json::from_slice(&a.body).unwrap();
    let mut c = env.cmd();
    c.args(["status", "--json", "--min-free", "0", "--root"])
        .arg(&env.root);
    let cli = run(&mut c).json();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&served), keys(&cli));
    for k in [
        "status",
        "exit_code",
        "ok",
        "schema_version",
        "counts",
        "store",
    ] {
        assert_eq!(served[k], cli[k], "{k}");
    }
    // Workspaces alike but for their age, which grows between the two.
    let names = |v: &Value| {
        v["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| (w["user"].clone(), w["project"].clone(), w["state"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&served), names(&cli));
    assert_eq!(served["status"], "OK", "{served:#}");
    // The dashboard shows that level as a colour.
    let d = srv.get("/").text();
    assert!(d.contains(r#"class="level lv-ok""#), "{d}");
}

/// bob/p after `repaired_with_a_lost_file`: its second snapshot is
/// damaged (the pack with `big.bin` and `keep.txt` is lost). The workspace
/// page marks it in the strip and in the table; downloading `big.bin`
/// or `keep.txt` (both in the lost pack) from it answers 500 with the
/// error's message (before any byte is sent), and `later.txt`, stored in a
/// pack that was not lost, still downloads.
#[test]
fn a_damaged_snapshot_is_marked_and_lost_data_is_never_served_whole() {
    let env = TestEnv::new();
    let (damaged, _) = repaired_with_a_lost_file(&env);
    let flags = damaged_flags(&env);
    assert!(flags.contains(&(damaged.clone(), true)), "{flags:?}");
    let n_damaged = flags.iter().filter(|(_, d)| *d).count();

    let srv = Server::start(&env, &[]);
    let page = srv.get("/ws/bob/p");
    assert_eq!(page.status, 200);
    let html = page.text();
    let marks = html.matches(r#"<rect class="damaged""#).count();
    // One mark per 5-minute slot: the damaged snapshots share one slot,
    // or two if a slot boundary fell between them.
    assert!(
        (1..=n_damaged).contains(&marks),
        "{marks} damaged marks in the strip for {n_damaged} damaged snapshots: {html}"
    );
    assert!(html.contains(r#"<tr class="damaged">"#), "{html}");
    assert!(html.contains(" · damaged"), "{html}");

    // Lost from the first byte: the answer is the error, with its message
    // (the head waits for the first block).
    for lost_file in ["big.bin", "keep.txt"] {
        let target = format!("/download/bob/p/{lost_file}?snapshot={damaged}");
        let a = srv.get(&target);
        let t = a.text();
        assert_eq!(a.status, 500, "{target}: {t}");
        assert!(
            t.contains("corrupt") && t.contains("wsnap check"),
            "{target}: {t}"
        );
    }
    let later = srv.get(&format!("/download/bob/p/later.txt?snapshot={damaged}"));
    assert_eq!(
        (later.status, later.body.as_slice()),
        (200, &b"added later"[..])
    );
}
