//! The reference of issue 18's 1,000,000-file target: a bare parallel walk
//! and stat of a tree, what any no-change tick must do at least. Rayon
//! over directories; in each, the entries read from its fd (`getdents`)
//! and each stat'ed relative to it (`fstatat`, no symlink followed), the
//! subdirectories opened relative to it (`openat`, `O_NOFOLLOW`) and
//! walked in parallel. Nothing is compared, stored or sorted.
//!
//! `cargo build --release --example bare_walk`, then
//! `target/release/examples/bare_walk ROOT`: prints the files, directories
//! and bytes seen (so the work cannot be skipped) and the wall time.
//! `benches/bigtree/run.sh` runs it beside wsnap's no-change tick.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use rustix::fs::{openat, statat, AtFlags, Dir, FileType, Mode, OFlags, CWD};

#[derive(Default)]
struct Seen {
    files: AtomicU64,
    dirs: AtomicU64,
    bytes: AtomicU64,
}

fn open_dir(at: impl std::os::fd::AsFd, name: &std::ffi::CStr) -> rustix::io::Result<OwnedFd> {
    openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn walk(dir: OwnedFd, seen: &Seen) {
    seen.dirs.fetch_add(1, Ordering::Relaxed);
    let mut subdirs = Vec::new();
    for e in Dir::read_from(&dir).expect("read_dir") {
        let e = e.expect("dirent");
        let name = e.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let st = statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).expect("fstatat");
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => subdirs.push(name.to_owned()),
            _ => {
                seen.files.fetch_add(1, Ordering::Relaxed);
                seen.bytes.fetch_add(st.st_size as u64, Ordering::Relaxed);
            }
        }
    }
    subdirs.into_par_iter().for_each(|name| {
        if let Ok(fd) = open_dir(&dir, &name) {
            walk(fd, seen);
        }
    });
}

fn main() {
    let root = std::env::args().nth(1).expect("usage: bare_walk ROOT");
    let t = Instant::now();
    let seen = Seen::default();
    let fd = open_dir(CWD, &std::ffi::CString::new(root).expect("no NUL")).expect("open root");
    walk(fd, &seen);
    println!(
        "{} files, {} directories, {} bytes, {:.3} s",
        seen.files.into_inner(),
        seen.dirs.into_inner(),
        seen.bytes.into_inner(),
        t.elapsed().as_secs_f64()
    );
}
