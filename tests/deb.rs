//! The Debian package, for real (issue 19): `deploy/build-deb` packages the
//! binary `cargo test` built (stripped; the release build is the same
//! script without `--bin`, minutes slower), then on this machine, as root:
//! `lintian` (no error), `dpkg -i`, the installed `--version`, man pages,
//! completions, conffiles and units (`systemd-analyze verify`), a snapshot
//! and a restore by the cron line and `/usr/bin/wsnap` with
//! `/etc/default/wsnap` pointing at temp dirs, the timer enabled, then
//! `dpkg -r` and `dpkg -P`: nothing of the package left, the store
//! untouched.
//!
//! It installs system-wide, so it refuses to run where wsnap is installed
//! already (a developer's package is never clobbered), waits for another
//! run of itself (a lock in /run/lock), and purges what it installed even
//! when it fails. Needs root, dpkg, lintian, man-db, systemd-analyze and
//! cargo-deb (`deploy/build-deb` installs it); without one it fails saying
//! what to install. `WSNAP_DEB_TRANSCRIPT=FILE` also appends the commands
//! and their output to FILE; `WSNAP_DEB=FILE` tests that package instead of
//! building one (e.g. the release package of `deploy/build-deb`).

mod common;

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output};

use common::*;

const UNITS: [&str; 3] = [
    "wsnap-snapshot.service",
    "wsnap-snapshot.timer",
    "wsnap-serve.service",
];

/// Runs shell commands, logging each with its output to stderr (and to
/// `$WSNAP_DEB_TRANSCRIPT`).
struct Transcript {
    file: Option<fs::File>,
}

impl Transcript {
    fn new() -> Transcript {
        let file = std::env::var_os("WSNAP_DEB_TRANSCRIPT").map(|p| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .expect("open $WSNAP_DEB_TRANSCRIPT")
        });
        Transcript { file }
    }

    fn log(&mut self, text: &str) {
        eprint!("{text}");
        if let Some(f) = &mut self.file {
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// `sh -c cmd` with a plain root PATH; its output logged and returned.
    fn run(&mut self, cmd: &str) -> Output {
        let out = StdCommand::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .env("PATH", root_path())
            .env("LC_ALL", "C.UTF-8")
            .env_remove("MANPATH")
            .output()
            .unwrap_or_else(|e| panic!("sh -c {cmd}: {e}"));
        let mut text = format!("$ {cmd}\n");
        text += &String::from_utf8_lossy(&out.stdout);
        text += &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let _ = writeln!(text, "[exit {}]", out.status.code().unwrap_or(-1));
        }
        self.log(&text);
        out
    }

    /// [`Transcript::run`], which must succeed; its stdout.
    #[track_caller]
    fn ok(&mut self, cmd: &str) -> String {
        let out = self.run(cmd);
        assert!(
            out.status.success(),
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// PATH as root has it, plus cargo's bin directory (cargo-deb).
fn root_path() -> String {
    let cargo_bin = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"))
        .join("bin");
    format!(
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{}",
        cargo_bin.display()
    )
}

/// Purges the package if this test installed it, whatever happens after.
struct Installed {
    live: bool,
}

impl Drop for Installed {
    fn drop(&mut self) {
        if self.live {
            eprintln!("cleaning up: dpkg -P wsnap");
            let _ = StdCommand::new("dpkg").args(["-P", "wsnap"]).status();
        }
    }
}

/// dpkg's status of the wsnap package (`ii`, `rc`, …), None if unknown.
fn package_status() -> Option<String> {
    let out = StdCommand::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", "wsnap"])
        .output()
        .expect("dpkg-query (dpkg) is installed");
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.starts_with("un")).then_some(s)
}

fn need(tool: &str, package: &str) {
    let found = StdCommand::new("/bin/sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .env("PATH", root_path())
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is missing: `apt-get install {package}` (.ci/run does)"
    );
}

/// Every symlink or file below `dir` whose name mentions wsnap.
fn wsnap_entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().contains("wsnap") {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(wsnap_entries(&p));
        }
    }
    out
}

/// The files (not directories) `dpkg -c` lists, as absolute paths.
fn package_files(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

#[test]
fn debian_package_installs_works_and_leaves_nothing_behind() {
    assert!(
        is_root(),
        "the package test installs with dpkg: run it as root (as CI does)"
    );
    for (tool, package) in [
        ("dpkg", "dpkg"),
        ("lintian", "lintian"),
        ("man", "man-db"),
        ("systemd-analyze", "systemd"),
        ("deb-systemd-helper", "init-system-helpers"),
        ("strip", "binutils"),
    ] {
        need(tool, package);
    }
    // One run at a time on this machine (other checkouts run it too).
    fs::create_dir_all("/run/lock").unwrap();
    let lock = fs::File::create("/run/lock/wsnap-deb-test.lock").unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    if let Some(status) = package_status() {
        panic!(
            "the wsnap package is on this machine already (dpkg status {status}): this test \
             installs and purges it, so it will not run here. Remove it first (`dpkg -P wsnap`)"
        );
    }
    assert!(
        !Path::new("/usr/bin/wsnap").exists(),
        "/usr/bin/wsnap exists but belongs to no package: remove it first"
    );
    let app_before = fs::read_dir("/app")
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        .ok();

    let mut t = Transcript::new();
    let tmp = tempfile::Builder::new()
        .prefix("wsnap-deb-")
        .tempdir()
        .unwrap();
    let out_dir = tmp.path().join("deb");
    let checkout = env!("CARGO_MANIFEST_DIR");

    // Build: the binary `cargo test` built, stripped, with its man pages
    // and completions; or test a package built before (the release one:
    // WSNAP_DEB=target/debian/wsnap_….deb).
    match std::env::var("WSNAP_DEB") {
        Ok(deb) => {
            fs::create_dir(&out_dir).unwrap();
            fs::copy(&deb, out_dir.join(Path::new(&deb).file_name().unwrap())).unwrap();
        }
        Err(_) => {
            t.ok(&format!(
                "{checkout}/deploy/build-deb --bin {BIN} --output {}",
                out_dir.display()
            ));
        }
    }
    let debs: Vec<PathBuf> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let deb = debs[0].to_str().unwrap().to_string();
    let name = debs[0].file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("wsnap_{}-", env!("CARGO_PKG_VERSION")))
            && name.ends_with(".deb"),
        "{name}"
    );
    t.ok(&format!("ls -l {deb}"));
    let contents = t.ok(&format!("dpkg -c {deb}"));
    let files = package_files(&contents);
    expect_code(
        bare_cmd()
            .args(["man", "--dir"])
            .arg(tmp.path().join("man")),
        0,
    );
    let pages: Vec<String> = fs::read_dir(tmp.path().join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(pages.len() > 20, "{pages:?}");
    for page in &pages {
        let want = format!("/usr/share/man/man1/{page}.gz");
        assert!(files.contains(&want), "{want} not packaged");
    }
    for want in [
        "/usr/bin/wsnap",
        "/usr/share/bash-completion/completions/wsnap",
        "/usr/share/zsh/vendor-completions/_wsnap",
        "/usr/share/fish/vendor_completions.d/wsnap.fish",
        "/etc/default/wsnap",
        "/etc/cron.d/wsnap",
        "/etc/logrotate.d/wsnap",
        "/usr/lib/systemd/system/wsnap-snapshot.service",
        "/usr/lib/systemd/system/wsnap-snapshot.timer",
        "/usr/lib/systemd/system/wsnap-serve.service",
        "/usr/share/doc/wsnap/copyright",
        "/usr/share/doc/wsnap/changelog.Debian.gz",
        "/usr/share/doc/wsnap/ADMIN.md",
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} not in:\n{contents}"
        );
    }
    assert!(
        !files.iter().any(|f| f.starts_with("/app")),
        "the package ships nothing under /app"
    );
    let control = t.ok(&format!("dpkg-deb -f {deb}"));
    let conffiles = t.ok(&format!(
        "dpkg-deb --ctrl-tarfile {deb} | tar -xOf - ./conffiles"
    ));
    for f in [
        "/etc/default/wsnap",
        "/etc/cron.d/wsnap",
        "/etc/logrotate.d/wsnap",
    ] {
        assert!(conffiles.lines().any(|l| l == f), "{f} not a conffile");
    }
    assert!(control.contains("Depends: libc6"), "{control}");
    let lintian = t.run(&format!("lintian --fail-on error --info {deb}"));
    let report = String::from_utf8_lossy(&lintian.stdout);
    assert!(
        lintian.status.success() && !report.lines().any(|l| l.starts_with("E:")),
        "lintian errors:\n{report}"
    );

    // Install.
    let mut installed = Installed { live: true };
    t.ok(&format!("dpkg -i {deb}"));
    assert_eq!(package_status().as_deref(), Some("ii"));
    let version = t.ok("/usr/bin/wsnap --version");
    let ours = expect_code(bare_cmd().arg("--version"), 0).stdout;
    assert_eq!(version, ours);
    let man = t.ok("man -w wsnap wsnap-restore wsnap-remote-add");
    assert_eq!(
        man.lines().collect::<Vec<_>>(),
        [
            "/usr/share/man/man1/wsnap.1.gz",
            "/usr/share/man/man1/wsnap-restore.1.gz",
            "/usr/share/man/man1/wsnap-remote-add.1.gz"
        ]
    );
    t.ok("man --warnings -P cat wsnap-restore | head -n 12");
    t.ok("bash -n /usr/share/bash-completion/completions/wsnap");
    let completion =
        t.ok("bash -c '. /usr/share/bash-completion/completions/wsnap; complete -p wsnap'");
    assert!(completion.contains("wsnap"), "{completion}");
    for f in [
        "/usr/share/zsh/vendor-completions/_wsnap",
        "/usr/share/fish/vendor_completions.d/wsnap.fish",
    ] {
        let text = fs::read_to_string(f).unwrap();
        assert!(text.contains("import-rsync"), "{f}");
    }
    let shipped =
        |rel: &str| fs::read_to_string(Path::new(checkout).join("deploy").join(rel)).unwrap();
    for (installed, rel) in [
        ("/etc/default/wsnap", "default/wsnap"),
        ("/etc/cron.d/wsnap", "cron.d/wsnap"),
        ("/etc/logrotate.d/wsnap", "logrotate.d/wsnap"),
    ] {
        assert_eq!(
            fs::read_to_string(installed).unwrap(),
            shipped(rel),
            "{installed}"
        );
    }
    let cron = fs::read_to_string("/etc/cron.d/wsnap").unwrap();
    assert!(
        !cron.lines().any(|l| l
            .trim_start()
            .starts_with(|c: char| c == '*' || c.is_ascii_digit())),
        "installing must not schedule backups:\n{cron}"
    );
    // The units as installed: verified, not enabled, not started.
    let unit_paths: Vec<String> = UNITS
        .iter()
        .map(|u| format!("/usr/lib/systemd/system/{u}"))
        .collect();
    let verify = t.run(&format!("systemd-analyze verify {}", unit_paths.join(" ")));
    assert!(
        verify.status.success() && verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify: {verify:?}"
    );
    let wants = Path::new("/etc/systemd/system/timers.target.wants/wsnap-snapshot.timer");
    assert!(!wants.exists(), "the timer is not enabled on install");
    let serve_wants = Path::new("/etc/systemd/system/multi-user.target.wants/wsnap-serve.service");
    assert!(
        !serve_wants.exists(),
        "the web page is not enabled on install"
    );
    let app_after = fs::read_dir("/app")
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        .ok();
    assert_eq!(app_before, app_after, "installing touched /app");

    // A snapshot by the cron line (uncommented, its log in a temp file) and
    // a restore by /usr/bin/wsnap, both reading /etc/default/wsnap.
    let env = TestEnv::new();
    env.ws("alice", "thesis");
    write(&env.root.join("alice/thesis/ch1.tex"), b"chapter one\n");
    write(&env.root.join("alice/thesis/data/x.csv"), b"1,2,3\n");
    fs::write(
        "/etc/default/wsnap",
        fs::read_to_string("/etc/default/wsnap")
            .unwrap()
            .replace("/app/data/users", env.root.to_str().unwrap())
            .replace("/app/backups/snapshots", env.store.to_str().unwrap()),
    )
    .unwrap();
    t.ok("grep -v '^#' /etc/default/wsnap");
    let log = env.path("workspace-backups.log");
    let job = cron
        .lines()
        .find_map(|l| l.strip_prefix("#*/5 * * * * root "))
        .expect("the commented-out job line")
        .replace("/app/logs/workspace-backups.log", log.to_str().unwrap());
    // As cron runs it: sh -c, the file's SHELL and PATH (no /usr/local).
    t.ok(&format!(
        "env -i SHELL=/bin/sh PATH=/usr/bin:/bin /bin/sh -c '{job}'"
    ));
    let logged = t.ok(&format!("cat {}", log.display()));
    assert!(
        logged.contains("ok      alice/thesis") && logged.contains("prune: forgot 0 snapshots"),
        "{logged}"
    );
    let restored = env.path("restored");
    t.ok(&format!(
        "set -a; . /etc/default/wsnap; /usr/bin/wsnap restore alice/thesis --at latest --to {}",
        restored.display()
    ));
    assert_trees_equal(&env.root.join("alice/thesis"), &restored);
    served_by_the_unit_line(&mut t, &env);
    let store_before = listing(&env.store);

    // The admin enables the timer; removing stops and masks it, purging
    // disables (unlinks) and unmasks it.
    t.ok("systemctl enable wsnap-snapshot.timer");
    assert!(wants.is_symlink(), "enabled");
    t.ok("dpkg -r wsnap");
    t.run(
        "dpkg -l wsnap | tail -n 1; readlink /etc/systemd/system/wsnap-snapshot.timer; \
         ls -d /usr/bin/wsnap /usr/share/man/man1/wsnap.1.gz /etc/default/wsnap 2>&1",
    );
    assert_eq!(package_status().as_deref(), Some("rc"), "conffiles kept");
    for f in files.iter().filter(|f| !f.starts_with("/etc/")) {
        assert!(!Path::new(f).exists(), "{f} left after dpkg -r");
    }
    let mask = Path::new("/etc/systemd/system/wsnap-snapshot.timer");
    assert_eq!(
        fs::read_link(mask).ok().as_deref(),
        Some(Path::new("/dev/null")),
        "a removed package's timer is masked: it cannot start"
    );
    assert_eq!(
        listing(&env.store),
        store_before,
        "dpkg -r touched the store"
    );
    t.ok("dpkg -P wsnap");
    installed.live = false;
    t.run(
        "ls -d /etc/default/wsnap /etc/cron.d/wsnap /etc/logrotate.d/wsnap /usr/share/doc/wsnap \
         /etc/systemd/system/timers.target.wants/wsnap-snapshot.timer 2>&1; \
         find /etc/systemd /var/lib/systemd -name '*wsnap*'",
    );
    assert_eq!(package_status(), None);
    for f in &files {
        assert!(!Path::new(f).exists(), "{f} left after dpkg -P");
    }
    assert!(!Path::new("/usr/share/doc/wsnap").exists());
    for dir in [
        "/etc/systemd/system",
        "/var/lib/systemd/deb-systemd-helper-enabled",
        "/var/lib/systemd/deb-systemd-helper-masked",
    ] {
        let left = wsnap_entries(Path::new(dir));
        assert!(left.is_empty(), "left after dpkg -P: {left:?}");
    }
    assert_eq!(
        listing(&env.store),
        store_before,
        "dpkg -P touched the store"
    );
    assert_trees_equal(&env.root.join("alice/thesis"), &restored);
    let app_after = fs::read_dir("/app")
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        .ok();
    assert_eq!(app_before, app_after, "the package touched /app");
    t.ok(&format!(
        "ls -A {} && dpkg -l wsnap || true",
        env.store.display()
    ));
}

/// The web page as `wsnap-serve.service` starts it: its `ExecStart=` line
/// with the variables of `/etc/default/wsnap` (as `EnvironmentFile=` reads
/// them), only the token file and the port swapped for the test's (the
/// unit's are /etc/wsnap/serve.token and 8686). It serves the store the
/// cron line just wrote, with the token and not without.
fn served_by_the_unit_line(t: &mut Transcript, env: &TestEnv) {
    let unit = fs::read_to_string("/usr/lib/systemd/system/wsnap-serve.service").unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("wsnap-serve.service has an ExecStart= line");
    assert!(
        exec.contains("--listen 127.0.0.1:8686") && exec.contains("/etc/wsnap/serve.token"),
        "{exec}"
    );
    let token = server::token_file(env);
    let line = exec
        .replace("127.0.0.1:8686", "127.0.0.1:0")
        .replace("/etc/wsnap/serve.token", token.to_str().unwrap());
    t.log(&format!(
        "$ {line}   (with /etc/default/wsnap, as the unit)\n"
    ));
    let mut c = StdCommand::new("/bin/sh");
    c.arg("-c")
        .arg(format!("set -a; . /etc/default/wsnap; exec {line}"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    let page = server::Server::spawn(c, token);
    let status = page.get("/api/status");
    assert_eq!(status.status, 200, "{}", status.text());
    // The store and the root of /etc/default/wsnap (not the level: it
    // depends on the free space of the machine running the test).
    let text = status.text();
    let root = format!("\"root\": \"{}\"", env.root.display());
    assert!(
        text.contains(&root)
            && text.contains("\"project\": \"thesis\"")
            && text.contains("\"workspaces_ok\": 1"),
        "{text}"
    );
    assert_eq!(page.raw("/api/status", None).status, 401);
}
