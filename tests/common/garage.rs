//! A real S3 server for the remote tests: a 3-node Garage cluster with
//! replication factor 3 on 127.0.0.1, started by the test and stopped (every
//! node killed, its temp dir removed) when the handle drops.
//!
//! - [`Garage::start`]: three `garage server` processes, each with its own
//!   config, sqlite metadata and data dirs under one temp dir, RPC, S3 and
//!   admin ports taken from the OS; the nodes are connected, given a layout
//!   (zone `dc1`, 1G each, version 1), and a bucket ([`Garage::bucket`]) and
//!   a key ([`Garage::key`]) with read, write and owner rights on it exist.
//! - [`Garage::endpoint`] (node 0's S3 API), [`Garage::region`],
//!   [`Garage::aws_env`] (the credentials as wsnap reads them);
//! - [`Garage::kill`] (SIGKILL one node) and [`Garage::restart`];
//! - [`Garage::bucket_with_key`], [`Garage::create_bucket`],
//!   [`Garage::create_key`], [`Garage::allow`], [`Garage::delete_bucket`]:
//!   more buckets and keys;
//! - [`Garage::raw`] / [`raw_s3`]: list, get, put, delete objects byte for
//!   byte (tamper tests), the one place the tests talk S3 themselves;
//! - [`Proxy`]: a TCP proxy in front of an endpoint that holds uploads at a
//!   byte count (a client stopped mid-push, deterministically) and vanishes
//!   on close (an unreachable endpoint).
//!
//! Garage 2.x must be on `PATH`: without it every test that starts a
//! cluster fails saying how to install it ([`INSTALL_HINT`]); none is
//! skipped. Each node logs to a file in the temp dir; a failed start, a
//! failed `garage` command and a panicking test print the logs' tails.
//!
//! The nodes are spawned with `PR_SET_PDEATHSIG`: if the test process dies
//! without dropping the handle, the kernel kills them. The signal follows
//! the *thread* that spawned a node, so start and restart nodes from the
//! test's own thread, not from a helper thread that ends first.

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The Garage release the tests are written against.
pub const GARAGE_VERSION: &str = "2.5.0";

/// How to get Garage, said by every test that cannot find it.
pub const INSTALL_HINT: &str = "cargo install garage --locked --version 2.5.0";

/// Nodes in the cluster, and the replication factor: every object is on
/// every node, and reads and writes need a quorum of 2.
pub const NODES: usize = 3;

/// The S3 region Garage answers to (`[s3_api] s3_region`).
pub const REGION: &str = "garage";

/// Generous bound for the cluster to come up, for a restarted node to
/// rejoin, and for one `garage` command: a machine busy building must not
/// fail a test, a hang must.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of each node's log printed when something fails.
const LOG_TAIL_LINES: usize = 80;

/// Tries at taking ports from the OS when a node finds its port taken
/// between our probe and its bind.
const PORT_ATTEMPTS: usize = 4;

/// The `garage` binary on `PATH` (2.x); panics with [`INSTALL_HINT`] when
/// it is missing or another major version.
#[track_caller]
pub fn garage_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("garage"))
        .find(|p| p.is_file());
    let Some(bin) = found else {
        panic!(
            "`garage` is not on PATH: the S3 tests run a real Garage {GARAGE_VERSION} cluster on \
             127.0.0.1; install it with `{INSTALL_HINT}` (about 17 minutes on 2 cores; `.ci/run` \
             does it when garage is missing)"
        );
    };
    let out = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run {} --version: {e}; install with `{INSTALL_HINT}`",
                bin.display()
            )
        });
    let version = String::from_utf8_lossy(&out.stdout).into_owned();
    // "garage cargo:2.5.0 [features: ...]" or "garage v2.5.0 ..."
    let major_2 = version
        .split_whitespace()
        .nth(1)
        .map(|v| v.trim_start_matches("cargo:").trim_start_matches('v'))
        .is_some_and(|v| v.starts_with("2."));
    assert!(
        major_2,
        "{} is not Garage 2.x (`--version` says {:?}); the tests need Garage {GARAGE_VERSION}: `{INSTALL_HINT}`",
        bin.display(),
        version.trim()
    );
    bin
}

/// An S3 access key of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Key {
    /// `GK…`
    pub id: String,
    pub secret: String,
}

/// One node's ports on 127.0.0.1.
#[derive(Clone, Copy, Debug)]
struct Ports {
    rpc: u16,
    s3: u16,
    admin: u16,
}

struct Node {
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    ports: Ports,
    /// Full node id (hex public key), known once the node has run.
    id: String,
    child: Option<Child>,
}

impl Node {
    fn rpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ports.rpc)
    }

    /// `garage -c CONFIG` with nothing from the caller's `GARAGE_*`
    /// environment.
    fn cli(&self, bin: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(bin);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("GARAGE_") {
                c.env_remove(k);
            }
        }
        c.env("NO_COLOR", "1").arg("-c").arg(&self.config);
        c
    }

    fn running(&mut self) -> bool {
        match &mut self.child {
            None => false,
            Some(c) => matches!(c.try_wait(), Ok(None)),
        }
    }
}

/// A running 3-node Garage cluster (see the module doc). Dropping it kills
/// every node and removes its data.
pub struct Garage {
    bin: PathBuf,
    nodes: Vec<Node>,
    /// The bucket made at start.
    pub bucket: String,
    /// The key with read, write and owner rights on [`Garage::bucket`].
    pub key: S3Key,
    /// Last so that the nodes are killed before their files go.
    dir: TempDir,
}

impl Garage {
    /// Start the cluster, with bucket `wsnap-test` and key `wsnap-test`.
    #[track_caller]
    pub fn start() -> Garage {
        let bin = garage_bin();
        let secret = rpc_secret();
        let mut last_clash = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix("wsnap-garage-")
                .tempdir()
                .expect("create temp dir for Garage");
            let mut nodes = write_configs(dir.path(), &secret);
            for n in &mut nodes {
                spawn_node(&bin, n);
            }
            match wait_all_answer(&bin, &mut nodes) {
                Ok(()) => {}
                Err(StartError::PortClash(msg)) => {
                    for n in &mut nodes {
                        stop(n);
                    }
                    last_clash = msg;
                    continue;
                }
                Err(StartError::Other(msg)) => {
                    let logs = logs_of(&nodes);
                    for n in &mut nodes {
                        stop(n);
                    }
                    panic!("Garage cluster did not start: {msg}\n{logs}");
                }
            }
            let mut g = Garage {
                bin: bin.clone(),
                nodes,
                bucket: "wsnap-test".to_string(),
                key: S3Key {
                    id: String::new(),
                    secret: String::new(),
                },
                dir,
            };
            g.form_cluster();
            // A node whose S3 or admin port was taken keeps running without
            // that API (RPC clashes make it exit, seen above); by now it
            // has logged so.
            if let Some(i) = (0..NODES).find(|&i| port_clash_logged(&g.nodes[i])) {
                last_clash = format!("node {i}: {}", g.nodes[i].log.display());
                continue; // dropping g stops the nodes
            }
            g.key = g.bucket_with_key(&g.bucket.clone());
            return g;
        }
        panic!("Garage nodes kept finding their ports taken ({PORT_ATTEMPTS} tries): {last_clash}");
    }

    /// Connect the nodes, lay them out (RF 3 from the configs), apply the
    /// layout and wait until every partition is on all three.
    fn form_cluster(&mut self) {
        for i in 0..NODES {
            let out = self.run_on(i, &["node", "id", "-q"]);
            let full = out.trim();
            let id = full.split('@').next().unwrap_or_default();
            assert!(
                id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "garage node id of node {i} printed {full:?}\n{}",
                self.logs()
            );
            self.nodes[i].id = id.to_string();
        }
        for i in 1..NODES {
            let peer = format!("{}@{}", self.nodes[i].id, self.nodes[i].rpc_addr());
            self.run(&["node", "connect", &peer]);
        }
        for i in 0..NODES {
            let id = self.nodes[i].id.clone();
            self.run(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
        }
        self.run(&["layout", "apply", "--version", "1"]);
        self.wait_healthy(NODES);
    }

    /// Wait until, as every running node sees it, `up` storage nodes are
    /// connected and every partition has all its copies (or, with fewer
    /// nodes up, a quorum). Asking one node is not enough: a restarted node
    /// is seen by the others before it has reconnected to them all.
    #[track_caller]
    fn wait_healthy(&mut self, up: usize) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last = Value::Null;
        loop {
            let mut all = true;
            for i in 0..NODES {
                if !self.nodes[i].running() {
                    continue;
                }
                let h = match self.try_run_on(i, &["json-api", "GetClusterHealth"]) {
                    Ok(out) => serde_json::from_str(&out).unwrap_or(Value::Null),
                    Err(e) => Value::String(e),
                };
                let n = |k: &str| h[k].as_u64().unwrap_or(0);
                let parts = n("partitions");
                let ok = if up == NODES {
                    n("partitionsAllOk")
                } else {
                    n("partitionsQuorum")
                };
                let healthy = n("storageNodesUp") == up as u64
                    && n("connectedNodes") == up as u64
                    && parts > 0
                    && ok == parts;
                if !healthy {
                    all = false;
                    last = serde_json::json!({ "node": i, "health": h });
                    break;
                }
            }
            if all {
                return;
            }

            if Instant::now() > deadline {
                panic!(
                    "Garage cluster not healthy with {up} nodes up after {STARTUP_TIMEOUT:?}; last: {last:#}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // -----------------------------------------------------------------------
    // Where to reach it
    // -----------------------------------------------------------------------

    /// S3 endpoint of node 0 (`http://127.0.0.1:PORT`): what the tests give
    /// wsnap. Kill another node when the endpoint must stay up.
    pub fn endpoint(&self) -> String {
        self.endpoint_of(0)
    }

    /// S3 endpoint of node `i`.
    pub fn endpoint_of(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].ports.s3)
    }

    /// Every node's S3 endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        (0..NODES).map(|i| self.endpoint_of(i)).collect()
    }

    /// [`REGION`].
    pub fn region(&self) -> &'static str {
        REGION
    }

    /// `s3://BUCKET/PREFIX` of the start bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// The environment wsnap reads its credentials from, for `key`.
    pub fn aws_env_for(key: &S3Key) -> [(&'static str, String); 2] {
        [
            ("AWS_ACCESS_KEY_ID", key.id.clone()),
            ("AWS_SECRET_ACCESS_KEY", key.secret.clone()),
        ]
    }

    /// The environment wsnap reads its credentials from, for [`Garage::key`].
    pub fn aws_env(&self) -> [(&'static str, String); 2] {
        Garage::aws_env_for(&self.key)
    }

    /// The temp dir holding every node's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    // -----------------------------------------------------------------------
    // Nodes
    // -----------------------------------------------------------------------

    /// Whether node `i`'s server process is alive.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i].running()
    }

    /// SIGKILL node `i` and reap it.
    #[track_caller]
    pub fn kill(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let child = n
            .child
            .as_mut()
            .unwrap_or_else(|| panic!("node {i} is not running"));
        // std's kill is SIGKILL.
        let _ = child.kill();
        let _ = child.wait();
        n.child = None;
    }

    /// Start node `i` again with its config and data, and wait until it has
    /// rejoined (all nodes up, every partition complete).
    #[track_caller]
    pub fn restart(&mut self, i: usize) {
        assert!(!self.nodes[i].running(), "node {i} is still running");
        spawn_node(&self.bin, &mut self.nodes[i]);
        if let Err(e) = wait_answers(&self.bin, &mut self.nodes[i], i) {
            let msg = match e {
                StartError::PortClash(m) | StartError::Other(m) => m,
            };
            panic!("restart of Garage node {i}: {msg}\n{}", self.logs());
        }
        // Every peer would find it again, but only after its reconnection
        // back-off (tens of seconds): tell them now.
        let peer = format!("{}@{}", self.nodes[i].id, self.nodes[i].rpc_addr());
        for j in 0..NODES {
            if j != i && self.nodes[j].running() {
                self.run_on(j, &["node", "connect", &peer]);
            }
        }
        let up = (0..NODES).filter(|&j| self.nodes[j].running()).count();
        self.wait_healthy(up);
        assert!(
            !port_clash_logged(&self.nodes[i]),
            "restarted Garage node {i} found one of its ports taken by another process\n{}",
            self.logs()
        );
    }

    /// Wait until the nodes still running form a quorum for every
    /// partition (after a [`Garage::kill`], before relying on the rest).
    #[track_caller]
    pub fn wait_quorum(&mut self) {
        let up = (0..NODES).filter(|&j| self.nodes[j].running()).count();
        self.wait_healthy(up);
    }

    // -----------------------------------------------------------------------
    // The garage CLI
    // -----------------------------------------------------------------------

    /// `garage ARGS` on the first running node; asserts success, returns
    /// stdout.
    #[track_caller]
    pub fn run(&mut self, args: &[&str]) -> String {
        let i = self.live_node();
        self.run_on(i, args)
    }

    /// `garage ARGS` on node `i`; asserts success, returns stdout.
    #[track_caller]
    pub fn run_on(&mut self, i: usize, args: &[&str]) -> String {
        match self.try_run_on(i, args) {
            Ok(out) => out,
            Err(e) => panic!("{e}\n{}", self.logs()),
        }
    }

    fn try_run_on(&mut self, i: usize, args: &[&str]) -> Result<String, String> {
        run_cli(&self.bin, &self.nodes[i], args)
    }

    /// `garage json-api ENDPOINT` on the first running node, parsed.
    #[track_caller]
    pub fn json_api(&mut self, endpoint: &str) -> Value {
        match self.try_json(endpoint) {
            Ok(v) => v,
            Err(e) => panic!("{e}\n{}", self.logs()),
        }
    }

    fn try_json(&mut self, endpoint: &str) -> Result<Value, String> {
        let i = self.live_node();
        let out = self.try_run_on(i, &["json-api", endpoint])?;
        serde_json::from_str(&out).map_err(|e| format!("garage json-api {endpoint}: {e}: {out}"))
    }

    /// `GetClusterHealth`: `storageNodes`, `storageNodesUp`, `partitions`,
    /// `partitionsQuorum`, `partitionsAllOk`, `status`, …
    pub fn health(&mut self) -> Value {
        self.json_api("GetClusterHealth")
    }

    /// `GetClusterLayout`: `version`, `roles` (each with `storedPartitions`).
    pub fn layout(&mut self) -> Value {
        self.json_api("GetClusterLayout")
    }

    /// How many copies of each partition the applied layout keeps: the
    /// stored partitions of all roles over the partition count.
    pub fn replication_factor(&mut self) -> u64 {
        let layout = self.layout();
        let parts = self.health()["partitions"]
            .as_u64()
            .expect("partitions in GetClusterHealth");
        let stored: u64 = layout["roles"]
            .as_array()
            .expect("roles in GetClusterLayout")
            .iter()
            .map(|r| r["storedPartitions"].as_u64().unwrap_or(0))
            .sum();
        assert!(parts > 0 && stored % parts == 0, "layout: {layout:#}");
        stored / parts
    }

    fn live_node(&mut self) -> usize {
        (0..NODES)
            .find(|&i| self.nodes[i].running())
            .expect("no Garage node is running")
    }

    // -----------------------------------------------------------------------
    // Buckets and keys
    // -----------------------------------------------------------------------

    /// `bucket create NAME` (S3 names: 3 to 63 of `a-z0-9.-`).
    #[track_caller]
    pub fn create_bucket(&mut self, name: &str) {
        self.run(&["bucket", "create", name]);
    }

    /// `key create NAME`: a new key, with no rights yet.
    #[track_caller]
    pub fn create_key(&mut self, name: &str) -> S3Key {
        let out = self.run(&["key", "create", name]);
        let field = |label: &str| {
            out.lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {label:?} in `garage key create` output:\n{out}"))
        };
        let key = S3Key {
            id: field("Key ID:"),
            secret: field("Secret key:"),
        };
        assert!(key.id.starts_with("GK"), "key id {:?}:\n{out}", key.id);
        assert!(!key.secret.is_empty(), "empty secret:\n{out}");
        key
    }

    /// `bucket allow --read --write --owner BUCKET --key KEY`.
    #[track_caller]
    pub fn allow(&mut self, bucket: &str, key: &S3Key) {
        self.run(&[
            "bucket", "allow", "--read", "--write", "--owner", bucket, "--key", &key.id,
        ]);
    }

    /// Empty bucket `name` through S3 with `key` (Garage deletes only empty
    /// buckets), then `bucket delete --yes NAME`.
    #[track_caller]
    pub fn delete_bucket(&mut self, name: &str, key: &S3Key) {
        let raw = raw_s3(&self.endpoint(), REGION, name, key);
        for (obj, _) in raw.list("") {
            raw.delete(&obj);
        }
        self.run(&["bucket", "delete", "--yes", name]);
    }

    /// A new bucket `name` and a new key `name` allowed on it.
    #[track_caller]
    pub fn bucket_with_key(&mut self, name: &str) -> S3Key {
        self.create_bucket(name);
        let key = self.create_key(name);
        self.allow(name, &key);
        key
    }

    // -----------------------------------------------------------------------
    // Raw objects
    // -----------------------------------------------------------------------

    /// Raw access to [`Garage::bucket`] with [`Garage::key`] through node
    /// 0's endpoint.
    pub fn raw(&self) -> RawS3 {
        raw_s3(&self.endpoint(), REGION, &self.bucket, &self.key)
    }

    // -----------------------------------------------------------------------
    // Logs
    // -----------------------------------------------------------------------

    /// The last lines of every node's log.
    pub fn logs(&self) -> String {
        logs_of(&self.nodes)
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- Garage logs (test failed) ---\n{}", self.logs());
        }
        for n in &mut self.nodes {
            stop(n);
        }
    }
}

// ---------------------------------------------------------------------------
// Starting nodes
// ---------------------------------------------------------------------------

enum StartError {
    /// A node could not bind a port we picked: pick others.
    PortClash(String),
    Other(String),
}

/// 64 hex digits from the OS's randomness.
fn rpc_secret() -> String {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `n` distinct free ports on 127.0.0.1: bound at once (so distinct), read,
/// closed. Another process may take one before the node binds it: the
/// caller retries.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// Fresh node dirs and configs under `root/nodeI`.
fn write_configs(root: &Path, secret: &str) -> Vec<Node> {
    let ports = free_ports(3 * NODES);
    (0..NODES)
        .map(|i| {
            let dir = root.join(format!("node{i}"));
            fs::create_dir_all(dir.join("meta")).unwrap();
            fs::create_dir_all(dir.join("data")).unwrap();
            let ports = Ports {
                rpc: ports[3 * i],
                s3: ports[3 * i + 1],
                admin: ports[3 * i + 2],
            };
            let config = dir.join("garage.toml");
            let toml = format!(
                r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
api_bind_addr = "127.0.0.1:{s3}"
s3_region = "{REGION}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
                meta = dir.join("meta").display(),
                data = dir.join("data").display(),
                rpc = ports.rpc,
                s3 = ports.s3,
                admin = ports.admin,
            );
            fs::write(&config, toml).unwrap();
            // It holds the RPC secret.
            super::set_mode(&config, 0o600);
            Node {
                log: dir.join("garage.log"),
                dir,
                config,
                ports,
                id: String::new(),
                child: None,
            }
        })
        .collect()
}

/// `garage -c CONFIG server`, output appended to the node's log, killed by
/// the kernel if the spawning thread dies first.
fn spawn_node(bin: &Path, n: &mut Node) {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&n.log)
        .expect("open Garage log");
    let mut c = n.cli(bin);
    c.arg("server")
        .current_dir(&n.dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; nothing else runs in the child
    // between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    n.child = Some(
        c.spawn()
            .unwrap_or_else(|e| panic!("spawn {} server: {e}", bin.display())),
    );
}

fn wait_all_answer(bin: &Path, nodes: &mut [Node]) -> Result<(), StartError> {
    for (i, n) in nodes.iter_mut().enumerate() {
        wait_answers(bin, n, i)?;
    }
    Ok(())
}

/// Wait until `garage status` through node `n` succeeds; an early exit is
/// a port clash when its log says so.
fn wait_answers(bin: &Path, n: &mut Node, i: usize) -> Result<(), StartError> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if !n.running() {
            let status = n.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            n.child = None;
            let status = status.map_or("?".to_string(), |s| s.to_string());
            let msg = format!("Garage node {i} exited ({status}) while starting");
            return Err(if port_clash_logged(n) {
                StartError::PortClash(msg)
            } else {
                StartError::Other(msg)
            });
        }
        match run_cli(bin, n, &["status"]) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(StartError::Other(format!(
                    "node {i} does not answer after {STARTUP_TIMEOUT:?}: {e}"
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Whether the node's log says one of its ports was taken.
fn port_clash_logged(n: &Node) -> bool {
    fs::read_to_string(&n.log).is_ok_and(|log| log.contains("Address already in use"))
}

/// `garage -c CONFIG ARGS` with [`CLI_TIMEOUT`]: stdout, or an error
/// saying what ran and what it printed.
fn run_cli(bin: &Path, n: &Node, args: &[&str]) -> Result<String, String> {
    let mut c = assert_cmd::Command::from_std(n.cli(bin));
    c.args(args).timeout(CLI_TIMEOUT);
    let out = c
        .output()
        .map_err(|e| format!("garage {}: {e}", args.join(" ")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`garage -c {} {}` failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            n.config.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn stop(n: &mut Node) {
    if let Some(mut c) = n.child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn logs_of(nodes: &[Node]) -> String {
    let mut s = String::new();
    for (i, n) in nodes.iter().enumerate() {
        let text = fs::read_to_string(&n.log).unwrap_or_else(|e| format!("({e})"));
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        let _ = writeln!(
            s,
            "=== Garage node {i} ({}), last {} lines ===",
            n.log.display(),
            lines.len() - from
        );
        for l in &lines[from..] {
            let _ = writeln!(s, "{l}");
        }
    }
    s
}

// ---------------------------------------------------------------------------
// Raw S3 objects
// ---------------------------------------------------------------------------

/// Objects of one bucket byte for byte, for tests that look at or tamper
/// with what wsnap stored. Blocking; errors panic with the S3 error.
pub struct RawS3 {
    store: object_store::aws::AmazonS3,
    rt: tokio::runtime::Runtime,
    bucket: String,
}

/// The one place the tests speak S3 themselves (`object_store`, path-style
/// requests over plain HTTP).
pub fn raw_s3(endpoint: &str, region: &str, bucket: &str, key: &S3Key) -> RawS3 {
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_region(region)
        .with_bucket_name(bucket)
        .with_access_key_id(&key.id)
        .with_secret_access_key(&key.secret)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_retry(object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..Default::default()
        })
        .build()
        .unwrap_or_else(|e| panic!("S3 client for {endpoint}/{bucket}: {e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    RawS3 {
        store,
        rt,
        bucket: bucket.to_string(),
    }
}

impl RawS3 {
    /// `(name, size)` of every object under `prefix` ("" for all), sorted.
    #[track_caller]
    pub fn list(&self, prefix: &str) -> Vec<(String, u64)> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let p = object_store::path::Path::from(prefix);
        let prefix = (!prefix.is_empty()).then_some(&p);
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list(prefix).try_collect())
            .unwrap_or_else(|e| panic!("list {}/{p}: {e}", self.bucket));
        let mut out: Vec<(String, u64)> = metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        out.sort();
        out
    }

    /// Whole object `name`.
    #[track_caller]
    pub fn get(&self, name: &str) -> Vec<u8> {
        self.try_get(name)
            .unwrap_or_else(|e| panic!("get {}/{name}: {e}", self.bucket))
    }

    /// Whole object `name`, or the S3 error (e.g. not found).
    pub fn try_get(&self, name: &str) -> Result<Vec<u8>, object_store::Error> {
        use object_store::ObjectStoreExt;
        let p = object_store::path::Path::from(name);
        self.rt.block_on(async {
            let r = self.store.get(&p).await?;
            Ok(r.bytes().await?.to_vec())
        })
    }

    /// Write object `name` (replacing it).
    #[track_caller]
    pub fn put(&self, name: &str, bytes: &[u8]) {
        use object_store::ObjectStoreExt;
        let p = object_store::path::Path::from(name);
        self.rt
            .block_on(self.store.put(&p, bytes.to_vec().into()))
            .unwrap_or_else(|e| panic!("put {}/{name}: {e}", self.bucket));
    }

    /// Delete object `name`.
    #[track_caller]
    pub fn delete(&self, name: &str) {
        use object_store::ObjectStoreExt;
        let p = object_store::path::Path::from(name);
        self.rt
            .block_on(self.store.delete(&p))
            .unwrap_or_else(|e| panic!("delete {}/{name}: {e}", self.bucket));
    }

    /// Flip bit `bit` (0..8) of byte `offset` of object `name` in place.
    #[track_caller]
    pub fn flip_bit(&self, name: &str, offset: usize, bit: u8) {
        let mut bytes = self.get(name);
        assert!(
            offset < bytes.len(),
            "{name} has {} bytes, no byte {offset}",
            bytes.len()
        );
        bytes[offset] ^= 1 << (bit % 8);
        self.put(name, &bytes);
    }
}

// ---------------------------------------------------------------------------
// A proxy in front of an S3 endpoint
// ---------------------------------------------------------------------------

/// A TCP proxy on 127.0.0.1 in front of one node's S3 API, for tests that
/// need a client stopped mid-upload at a known point, or an endpoint that
/// vanishes: [`Proxy::hold_after`] lets the first N bytes of requests
/// through and holds every connection there (the client waits, its
/// requests unfinished) until [`Proxy::release`]; [`Proxy::close`] drops
/// every connection and the listening port (connection refused).
pub struct Proxy {
    port: u16,
    shared: std::sync::Arc<ProxyShared>,
    accept: Option<std::thread::JoinHandle<()>>,
}

struct ProxyShared {
    upstream: std::net::SocketAddr,
    gate: std::sync::Mutex<Gate>,
    cv: std::sync::Condvar,
    stop: std::sync::atomic::AtomicBool,
    /// Both ends of every connection, to shut down on close.
    conns: std::sync::Mutex<Vec<std::net::TcpStream>>,
}

#[derive(Default)]
struct Gate {
    /// Request bytes (client to server) forwarded so far.
    sent: u64,
    /// Forward no request byte past this count.
    hold_after: Option<u64>,
    /// A connection is waiting at the gate.
    holding: bool,
}

impl Proxy {
    /// A proxy to `endpoint` (`http://127.0.0.1:PORT`).
    pub fn start(endpoint: &str) -> Proxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Condvar, Mutex};
        let upstream: std::net::SocketAddr = endpoint
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("proxy upstream {endpoint:?} is not http://IP:PORT"));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(ProxyShared {
            upstream,
            gate: Mutex::new(Gate::default()),
            cv: Condvar::new(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(s.upstream) else {
                    continue; // the client sees the connection closed
                };
                {
                    let mut conns = s.conns.lock().unwrap();
                    conns.push(client.try_clone().unwrap());
                    conns.push(server.try_clone().unwrap());
                }
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = s.clone();
                std::thread::spawn(move || pipe(client, server, Some(&up)));
                std::thread::spawn(move || pipe(s2, c2, None));
            }
        });
        Proxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Request bytes forwarded so far.
    pub fn sent(&self) -> u64 {
        self.shared.gate.lock().unwrap().sent
    }

    /// From now on, forward request bytes only up to `bytes` in all (counted
    /// since the proxy started), then hold.
    pub fn hold_after(&self, bytes: u64) {
        self.shared.gate.lock().unwrap().hold_after = Some(bytes);
        self.shared.cv.notify_all();
    }

    /// Wait until a connection is held at the gate; panics after `timeout`.
    #[track_caller]
    pub fn wait_held(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut g = self.shared.gate.lock().unwrap();
        while !g.holding {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no request reached the proxy's gate ({} bytes sent) within {timeout:?}",
                g.sent
            );
            g = self.shared.cv.wait_timeout(g, left).unwrap().0;
        }
    }

    /// Forward everything again.
    pub fn release(&self) {
        let mut g = self.shared.gate.lock().unwrap();
        g.hold_after = None;
        g.holding = false;
        self.shared.cv.notify_all();
    }

    /// Drop every connection and stop listening: the endpoint is gone.
    pub fn close(&mut self) {
        use std::sync::atomic::Ordering;
        if self.shared.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        self.release();
        // Wake the accept loop so that it sees `stop` and drops the listener.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.close();
    }
}

/// Copy `from` to `to` until either closes; request bytes (`gate` given)
/// pass the gate first.
fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream, gate: Option<&ProxyShared>) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 64 * 1024];
    'copy: loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut off = 0;
        while off < n {
            let k = match gate {
                None => n - off,
                Some(s) => match s.admit(n - off) {
                    Some(k) => k,
                    None => return, // closed
                },
            };
            if to.write_all(&buf[off..off + k]).is_err() {
                break 'copy;
            }
            off += k;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl ProxyShared {
    /// Wait until at least one of `want` request bytes may pass; how many
    /// may, now counted as sent. None once the proxy is closed.
    fn admit(&self, want: usize) -> Option<usize> {
        use std::sync::atomic::Ordering;
        let mut g = self.gate.lock().unwrap();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            let room = match g.hold_after {
                None => want as u64,
                Some(limit) => limit.saturating_sub(g.sent).min(want as u64),
            };
            if room > 0 {
                g.sent += room;
                return Some(room as usize);
            }
            g.holding = true;
            self.cv.notify_all();
            g = self.cv.wait(g).unwrap();
        }
    }
}
