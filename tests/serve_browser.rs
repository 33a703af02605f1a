//! `wsnap serve` in a real browser (issue #20): headless Chromium driven
//! through Debian's chromedriver (WebDriver, `fantoccini`), the server
//! the real binary on an ephemeral loopback port.
//!
//! - every page loads with nothing in the browser's console (chromedriver's
//!   `goog:loggingPrefs` browser log: a CSP violation, a failed asset or a
//!   script error would be there);
//! - the dashboard's chart has one point per tick;
//! - a workspace's 24-hour strip shows a gap where ticks were skipped;
//! - a file downloads (the browser's own download) equal to `wsnap cat`;
//! - screenshots of each page go to `target/screenshots/`.
//!
//! Chromium and chromedriver missing is a failure with a message, never a
//! pass: `.ci/run` installs them (`apt-get install chromium
//! chromium-driver`). The ignored test makes the screenshots of a store
//! with 10 workspaces × 288 ticks (`cargo test --test serve_browser --
//! --ignored`).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use common::server::{Server, TOKEN};
use common::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TICK_NS: i64 = 300 * 1_000_000_000;

fn screenshots_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    addr: String,
}

impl Driver {
    fn start() -> Driver {
        for (bin, pkg) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the browser tests need Debian's chromium and chromium-driver \
                 (`apt-get install -y {pkg}`; .ci/run installs them)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let d = Driver {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let t = Instant::now();
        loop {
            if let Ok(v) = d.request("GET", "/status", None) {
                if v["value"]["ready"] == true {
                    return d;
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "chromedriver not ready in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A raw WebDriver request (for what fantoccini has no call for).
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let mut s = TcpStream::connect(&self.addr).map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        // chromedriver may keep the connection open: read up to the end
        // of the body its Content-Length announces.
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            all.extend_from_slice(&buf[..n]);
            if n == 0 || complete(&all) {
                break;
            }
        }
        let a = common::server::parse(&all)?;
        serde_json::from_slice(&a.body).map_err(|e| e.to_string())
    }
}

/// Does `all` hold the headers and the whole Content-Length body?
fn complete(all: &[u8]) -> bool {
    let Some(end) = all.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&all[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    len.is_some_and(|l| all.len() >= end + 4 + l)
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session: headless Chromium as root, downloads into `dl`.
struct Browser {
    driver: Driver,
    client: Client,
    session: String,
    base: String,
    rt: tokio::runtime::Runtime,
    shots: Vec<PathBuf>,
    prefix: String,
}

impl Browser {
    fn open(srv: &Server, dl: &Path, prefix: &str) -> Browser {
        let driver = Driver::start();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1500"],
                "prefs": {
                    "download.default_directory": dl.display().to_string(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://{}", driver.addr);
        let client = rt
            .block_on(async {
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url)
                    .await
            })
            .expect("a Chromium session");
        let session = rt
            .block_on(client.session_id())
            .unwrap()
            .expect("session id");
        // The token as HTTP Basic credentials: the browser sends them with
        // every request of this origin after the first.
        let base = srv
            .base
            .replacen("http://", &format!("http://admin:{TOKEN}@"), 1);
        Browser {
            driver,
            client,
            session,
            base,
            rt,
            shots: Vec::new(),
            prefix: prefix.to_string(),
        }
    }

    /// Load `path`, check the console stayed empty, save a screenshot.
    fn visit(&mut self, path: &str, shot: &str) {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(self.client.goto(&url)).expect("goto");
        let title = self.rt.block_on(self.client.title()).unwrap();
        assert!(
            !title.starts_with("4") && !title.starts_with("5"),
            "{path}: an error page: {title}"
        );
        self.assert_quiet_console(path);
        let png = self
            .rt
            .block_on(self.client.screenshot())
            .expect("screenshot");
        let file = screenshots_dir().join(format!("{}{shot}.png", self.prefix));
        std::fs::write(&file, png).unwrap();
        self.shots.push(file);
    }

    /// No console entry at all since the last look (errors, CSP
    /// violations, failed loads, warnings).
    fn assert_quiet_console(&self, what: &str) {
        let v = self
            .driver
            .request(
                "POST",
                &format!("/session/{}/se/log", self.session),
                Some(&json!({"type": "browser"})),
            )
            .expect("read the browser log");
        let entries = v["value"].as_array().unwrap_or_else(|| panic!("log: {v}"));
        let loud: Vec<&Value> = entries
            .iter()
            .filter(|e| e["level"] != "INFO" && e["level"] != "DEBUG")
            .collect();
        assert!(loud.is_empty(), "{what}: console: {loud:#?}");
    }

    fn count(&self, css: &str) -> usize {
        self.rt
            .block_on(self.client.find_all(Locator::Css(css)))
            .unwrap()
            .len()
    }

    fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            for e in self.client.find_all(Locator::Css(css)).await.unwrap() {
                out.push(e.attr(attr).await.unwrap().unwrap_or_default());
            }
            out
        })
    }

    fn click(&self, css: &str) {
        self.rt.block_on(async {
            self.client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{css}: {e}"))
                .click()
                .await
                .unwrap()
        });
    }
}

impl Drop for Browser {
    /// End the session: chromedriver closes Chromium (killing chromedriver
    /// alone would leave the browser running).
    fn drop(&mut self) {
        let _ = self
            .driver
            .request("DELETE", &format!("/session/{}", self.session), None);
    }
}

/// Snapshot every workspace at each of `ticks` tick slots before now
/// (slot 0 the oldest, `n - 1` the last full 5 minutes), editing a file
/// first so each tick adds bytes. Returns the times used.
fn history(env: &TestEnv, n: i64, skipped: &[i64], edit: impl Fn(i64)) -> Vec<i64> {
    let last = (now_ns().div_euclid(TICK_NS) - 1) * TICK_NS;
    let mut times = Vec::new();
    for k in 0..n {
        if skipped.contains(&k) {
            continue;
        }
        let t = last - (n - 1 - k) * TICK_NS + 7_000_000_000;
        edit(k);
        snapshot_at(env, &[], t);
        times.push(t);
    }
    times
}

/// Walk every page; check the chart, the strip and a download.
fn walk_pages(b: &mut Browser, env: &TestEnv, times: &[i64], ws: &str, file: &str) {
    b.visit("/", "dashboard");
    // One point per tick: the points' times are the ticks' (to the
    // minute), every tick from the chart's left edge on (a tick older
    // than 24 h falls off that edge).
    let minute = |t: &i64| t - t.rem_euclid(60_000_000_000);
    let edge = now_ns() - 24 * 3600 * 1_000_000_000;
    for chart in ["#added-chart", "#size-chart"] {
        let shown: Vec<i64> = b
            .attrs(&format!("{chart} circle.tick"), "data-time")
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let want: Vec<i64> = times
            .iter()
            .filter(|&&t| t >= edge - 120_000_000_000)
            .map(minute)
            .filter(|t| shown.first().is_some_and(|f| t >= f))
            .collect();
        assert_eq!(shown, want, "{chart}: one point per tick");
        let newer = times.iter().filter(|&&t| t > edge + 120_000_000_000);
        assert!(
            newer.map(minute).all(|t| shown.contains(&t)),
            "{chart}: a tick of the last 24 h has no point"
        );
    }
    b.visit("/?range=7d", "dashboard-7d");
    assert_eq!(
        b.count("#added-chart circle.tick"),
        times.len(),
        "7 days: every tick"
    );

    b.visit("/workspaces", "workspaces");
    assert!(b.count("#workspaces tr") >= 3);
    b.visit("/workspaces?q=thesis", "workspaces-search");

    b.visit(&format!("/ws/{ws}"), "workspace");
    assert_eq!(b.count("#strip rect"), 288);
    let mut slots: Vec<usize> = b
        .attrs("#strip rect.snap", "data-slot")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    slots.sort();
    let start: i64 = b.attrs("#strip rect[data-slot='0']", "data-time")[0]
        .parse()
        .unwrap();
    let in_strip = times.iter().filter(|&&t| t >= start).count();
    assert_eq!(slots.len(), in_strip, "one mark per snapshot: {slots:?}");
    // The newest snapshot's changed files.
    let href = b.attrs("#snapshots tr:nth-child(2) td:nth-child(2) a", "href")[0].clone();
    let id = href.rsplit('=').next().unwrap().to_string();
    b.visit(&format!("/ws/{ws}?snapshot={id}"), "workspace-changes");
    assert!(b.count("#changed tr") >= 2, "the newest tick changed files");

    b.visit(&format!("/browse/{ws}"), "browse-dir");
    assert!(b.count("#entries tr") >= 2);
    b.visit(&format!("/browse/{ws}/{file}"), "browse-file");
    assert!(
        b.count("#text tr") >= 1,
        "the text is shown with line numbers"
    );
    b.visit(
        &format!("/diff/{ws}?from={}&to=latest", rfc3339(times[0])),
        "diff",
    );
    assert!(
        b.count("#diff tr") >= 2,
        "the first and the last snapshot differ"
    );
    b.visit(&format!("/history/{ws}/{file}"), "history");

    // The browser's own download of the file shown.
    b.visit(&format!("/browse/{ws}/{file}"), "browse-file");
    b.click("#download");
    let name = Path::new(file).file_name().unwrap().to_owned();
    let dl = env.path("downloads").join(&name);
    let t = Instant::now();
    while !dl.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "no download in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut c = env.cmd();
    c.args(["cat", ws, file, "--at", "latest"]);
    let cat = c.output().unwrap();
    // Chromium writes NAME.crdownload, then renames: NAME is whole.
    assert_eq!(
        std::fs::read(&dl).unwrap(),
        cat.stdout,
        "download equals cat"
    );
    b.assert_quiet_console("download");
}

#[test]
fn pages_load_clean_with_one_chart_point_per_tick_and_gaps_in_the_strip() {
    let env = TestEnv::new();
    varied_workspaces(&env);
    let notes = env.root.join("alice/thesis/notes.txt");
    let times = history(&env, 12, &[4, 5, 6], |k| {
        append(&notes, format!("tick {k}\n").as_bytes())
    });
    assert_eq!(times.len(), 9);
    let srv = Server::start(&env, &[]);
    std::fs::create_dir(env.path("downloads")).unwrap();
    let mut b = Browser::open(&srv, &env.path("downloads"), "");
    walk_pages(&mut b, &env, &times, "alice/thesis", "notes.txt");

    // The strip: 9 marks, with the 3 skipped ticks as gaps between the
    // 4th and 5th.
    b.visit("/ws/alice/thesis", "workspace");
    let mut slots: Vec<usize> = b
        .attrs("#strip rect.snap", "data-slot")
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    slots.sort();
    let steps: Vec<usize> = slots.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(steps, [1, 1, 1, 4, 1, 1, 1, 1], "slots {slots:?}");
    let gaps = b.attrs("#strip rect.gap", "data-slot");
    for s in slots[3] + 1..slots[4] {
        assert!(gaps.contains(&s.to_string()), "slot {s} is not a gap");
    }
    eprintln!("screenshots: {:#?}", b.shots);
}

#[test]
#[ignore = "makes the screenshots of 10 workspaces × 288 ticks (about a minute)"]
fn screenshots_of_10_workspaces_with_288_ticks() {
    let env = TestEnv::new();
    for u in 0..5 {
        for p in 0..2 {
            let w = env.ws(&format!("user{u}"), &format!("project{p}"));
            write_file(&w.join("README.md"), b"# project\n", 0o644, hour_ago_ns());
            write_file(
                &w.join("data/table.csv"),
                &repeated(b"1,2,3\n", 64 * KIB),
                0o644,
                hour_ago_ns(),
            );
            write_file(&w.join("notes.txt"), b"start\n", 0o644, hour_ago_ns());
        }
    }
    // Ticks 100-105 skipped (the server was down): a gap in every strip.
    let skipped: Vec<i64> = (100..106).collect();
    let root = env.root.clone();
    let times = history(&env, 288, &skipped, |k| {
        // Every workspace changes a little each tick, one a lot.
        for u in 0..5 {
            for p in 0..2 {
                let w = root.join(format!("user{u}/project{p}"));
                let n = if (u * 2 + p) as i64 == k % 10 {
                    16 * KIB
                } else {
                    64
                };
                append(
                    &w.join("notes.txt"),
                    &repeated(format!("tick {k} ").as_bytes(), n),
                );
            }
        }
    });
    let srv = Server::start(&env, &[]);
    std::fs::create_dir(env.path("downloads")).unwrap();
    let mut b = Browser::open(&srv, &env.path("downloads"), "10x288-");
    walk_pages(&mut b, &env, &times, "user1/project1", "notes.txt");
    eprintln!("screenshots: {:#?}", b.shots);
}
