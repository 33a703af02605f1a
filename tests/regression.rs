//! One test per fixed bug, named after what broke.

mod common;

use common::*;

/// `snapshot --root /nonexistent` used to create the store before failing.
#[test]
fn bad_root_creates_no_store() {
    let env = TestEnv::new();
    let mut c = env.cmd();
    c.args(["snapshot", "--root"]).arg(env.path("no-such-root"));
    let out = expect_code(&mut c, 2);
    assert!(out.stderr.contains("workspace root"), "{out}");
    assert!(!env.store.exists(), "store created for a bad root");
}

/// Two runs that died after indexing their pack and before committing
/// their snapshot left a pack holding only the (never committed) trees; the
/// third run wrote the very same trees into a byte-identical pack, and its
/// insert failed on `UNIQUE constraint failed: packs.pack_hash`, so every
/// later snapshot of the unchanged workspace failed. Found by
/// `tests/crash_random.rs`.
#[test]
fn identical_pack_after_crashes_is_reused() {
    let env = TestEnv::new();
    write(&env.ws("u", "p").join("f.txt"), b"unchanged content");
    for _ in 0..2 {
        let mut c = env.std_cmd();
        c.env("WSNAP_CRASH_AT", "snapshot.pack_indexed")
            .arg("snapshot")
            .arg("--root")
            .arg(&env.root);
        let st = c.status().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
    }
    env.snapshot(&[]);
    env.snapshot(&[]);
    let mut c = env.cmd();
    c.args(["check", "--read-data"]);
    expect_code(&mut c, 0);
}
