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
