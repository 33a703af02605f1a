//! Every crash, pause and flip point in `wsnap::failpoint::POINTS` has a
//! test that stops the real binary there: a point nobody kills at is a
//! durability step nobody has shown to be safe.
//!
//! "Has a test" means: some file under `tests/` (not this one) names the
//! point in a string literal (`"gc.committed"`, `"gc.committed:2"`,
//! `format!("restore.pinned:{}", …)`) and sets the point's environment
//! variable. The crash loops in `tests/crash.rs` then assert that each point
//! of theirs is actually reached.

use std::path::Path;

use wsnap::failpoint::{Kind, POINTS};

fn test_sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|x| x == "rs") && name != "failpoints.rs" {
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

#[test]
fn every_point_has_a_test_that_stops_there() {
    let sources = test_sources();
    let mut missing = Vec::new();
    for p in POINTS {
        let var = match p.kind {
            Kind::Crash => "WSNAP_CRASH_AT",
            Kind::Pause => "WSNAP_PAUSE_AT",
            Kind::Flip => "WSNAP_FLIP_AT",
        };
        let named = |text: &str| {
            text.contains(&format!("\"{}\"", p.name)) || text.contains(&format!("\"{}:", p.name))
        };
        if !sources
            .iter()
            .any(|(_, text)| text.contains(var) && named(text))
        {
            missing.push(format!("{} ({var}): {}", p.name, p.state));
        }
    }
    assert!(
        missing.is_empty(),
        "points no test stops at:\n  {}",
        missing.join("\n  ")
    );
}
