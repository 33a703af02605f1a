//! Real FUSE mounts for the tests: [`require_fuse`] fails (never skips) a
//! test on a machine without FUSE, and [`Mounted`] runs `wsnap mount
//! --foreground` and always unmounts in its `Drop` (`fusermount3 -u`, then
//! `umount -l`), so a failed test leaves no mount behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{is_root, TestEnv};

/// Fail with what to install unless this machine can mount FUSE.
#[track_caller]
pub fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: the mount tests need FUSE (load the module: modprobe fuse; \
         in a container, pass the /dev/fuse device); they fail rather than skip"
    );
    assert!(
        on_path("fusermount3"),
        "fusermount3 is missing: install the fuse3 package (apt-get install fuse3; .ci/run \
         does); the mount tests fail rather than skip"
    );
    assert!(
        is_root(),
        "the mount tests run as root (as CI does): they mount, chown and drop caches"
    );
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// Is a file system mounted at `dir`?
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(canon) = fs::canonicalize(dir) else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A running `wsnap mount --foreground`; unmounted when dropped.
pub struct Mounted {
    pub dir: PathBuf,
    /// The mount's stderr (its log lines).
    pub log: PathBuf,
    child: Option<Child>,
}

impl Mounted {
    /// Mount `env`'s store at `env.path(name)` with `extra` flags.
    #[track_caller]
    pub fn start(env: &TestEnv, name: &str, extra: &[&str]) -> Mounted {
        require_fuse();
        let dir = env.path(name);
        fs::create_dir_all(&dir).unwrap();
        let log = env.path(format!("{name}.log"));
        let mut c = env.std_cmd();
        c.arg("mount")
            .arg(&dir)
            .arg("--foreground")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        let child = c.spawn().expect("start wsnap mount");
        let mut m = Mounted {
            dir,
            log,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(&m.dir) {
            if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "wsnap mount exited ({st}) before mounting:\n{}",
                    m.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no mount after 30 s:\n{}",
                m.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Wait (up to 30 s) for the mount process to end by itself.
    #[track_caller]
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "mount process still running:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if is_mounted(&self.dir) {
            let ok = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg(&self.dir)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.dir)
                    .status();
            }
        }
        if let Some(mut c) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
