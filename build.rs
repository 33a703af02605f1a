//! Records the commit the binary is built from, for `wsnap --version` and
//! the man pages:
//! `WSNAP_COMMIT` is `9119759`, `9119759, dirty` (tracked files differ from
//! the commit), or `unknown` where the sources are not a git checkout (a
//! tarball, the Debian source) or git is missing; `WSNAP_COMMIT_DATE` is
//! its date (YYYY-mm-dd), or empty.
//!
//! Reruns only when the commit can change (`HEAD`, the branch's ref,
//! `packed-refs`) or the sources cargo watches do (`src/`, `Cargo.toml`,
//! this file, which also keeps the dirty mark of those true), not on every
//! build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    for p in ["build.rs", "Cargo.toml", "src"] {
        println!("cargo:rerun-if-changed={}", dir.join(p).display());
    }
    println!("cargo:rustc-env=WSNAP_COMMIT={}", commit(&dir));
    // The man pages' date: the commit's (empty without git), so that
    // building the same commit twice gives the same pages.
    let date = match dir.join(".git").exists() {
        true => git(&dir, &["log", "-1", "--format=%cs"]).unwrap_or_default(),
        false => String::new(),
    };
    println!("cargo:rustc-env=WSNAP_COMMIT_DATE={date}");
}

/// The short commit id and dirty mark, or `unknown`.
fn commit(dir: &Path) -> String {
    // Only this package's own checkout: sources unpacked inside some other
    // repository must not take that repository's commit.
    if !dir.join(".git").exists() {
        return "unknown".into();
    }
    let Some(id) = git(dir, &["rev-parse", "--short=7", "HEAD"]) else {
        return "unknown".into();
    };
    for path in watched(dir) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    // `git diff --quiet HEAD` compares the tracked files with the commit
    // without writing the index (which would make cargo rerun this script).
    let clean = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["diff", "--quiet", "HEAD", "--"])
        .status()
        .map(|s| s.success());
    match clean {
        Ok(true) => id,
        Ok(false) => format!("{id}, dirty"),
        Err(_) => "unknown".into(),
    }
}

/// The git files whose change means another commit: `HEAD`, the branch's
/// loose ref (or, while it has none, the directory it will appear in) and
/// `packed-refs`. Only existing paths: cargo reruns the script on every
/// build for a path that does not exist.
fn watched(dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let git_path = |name: &str| {
        git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", name],
        )
        .map(PathBuf::from)
    };
    paths.extend(git_path("HEAD"));
    paths.extend(git_path("packed-refs"));
    if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(loose) = git_path(&r) {
            if loose.exists() {
                paths.push(loose);
            } else {
                paths.extend(loose.parent().map(Path::to_path_buf));
            }
        }
    }
    paths.retain(|p| p.exists());
    paths
}

/// A git command's trimmed output, or `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}
