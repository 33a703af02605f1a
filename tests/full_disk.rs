//! A full disk while writing the store: a clear error (exit 4), a
//! consistent store, and the next run succeeds once space is back.
//!
//! The store lives on a small tmpfs, which needs `mount` (root with
//! CAP_SYS_ADMIN, as here and in CI). Where mounting is not permitted the
//! test says so and returns without checking anything.

mod common;

use common::*;
use std::process::Command as Std;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Std::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(path.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Std::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount tmpfs");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Std::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_fails_cleanly_and_recovers() {
    let env = TestEnv::new();
    let Some(fs) = Tmpfs::mount(&env.path("small-fs"), "3m") else {
        eprintln!("SKIPPED full_disk_fails_cleanly_and_recovers: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)");
        return;
    };
    let store = env.path("small-fs/store");
    let ws = env.ws("u", "p");
    write(&ws.join("a.txt"), b"first");
    let snap = |expect: i32| {
        let mut c = bare_cmd();
        c.arg("--store")
            .arg(&store)
            .args(["snapshot", "--root"])
            .arg(&env.root);
        expect_code(&mut c, expect)
    };
    let check = || {
        let mut c = bare_cmd();
        c.arg("--store").arg(&store).args(["check", "--read-data"]);
        expect_code(&mut c, 0)
    };
    snap(0);
    // 8 MB of incompressible data cannot fit in 3 MB.
    write(&ws.join("big.bin"), &random_bytes(7, 8 * MIB));
    let out = snap(4);
    assert!(out.stderr.contains("No space left on device"), "{out}");
    assert!(out.stderr.contains("disk full"), "{out}");
    // Consistent: everything committed before still checks and restores,
    // nothing half-written is referenced, no temporary pack is left.
    check();
    let mut c = bare_cmd();
    c.arg("--store").arg(&store).args(["list", "--json"]);
    assert_eq!(expect_code(&mut c, 0).json().as_array().unwrap().len(), 1);
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);

    fs.resize("64m");
    snap(0);
    check();
    let target = env.path("restored");
    let mut c = bare_cmd();
    c.arg("--store")
        .arg(&store)
        .args(["restore", "u/p", "--at", "latest", "--to"])
        .arg(&target);
    expect_code(&mut c, 0);
    assert_trees_equal(&ws, &target);
}
