//! Random workspace trees from a seed: nested directories, files of many
//! sizes (one spanning chunk lists), symlinks, odd names (non-UTF-8, a
//! newline, a leading dash), modes, mtimes and (as root) owners. The same
//! seed always builds the same tree.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{is_root, lchown, random_bytes, set_mode, set_mtime, symlink, write_file};

/// SplitMix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ODD_NAMES: &[&[u8]] = &[
    b"latin1-\xe9t\xe9.txt",
    b"new\nline.txt",
    b"-rf",
    b"with space.csv",
    b"\xff\xfe",
    b"back\\slash",
];

fn name(rng: &mut Rng, i: usize) -> Vec<u8> {
    if rng.below(6) == 0 {
        let mut n = ODD_NAMES[rng.below(ODD_NAMES.len() as u64) as usize].to_vec();
        n.extend_from_slice(format!("-{i}").as_bytes());
        return n;
    }
    let ext = [".txt", ".csv", ".bin", ".py", ""][rng.below(5) as usize];
    format!("n{i}_{:x}{ext}", rng.below(1 << 16)).into_bytes()
}

/// Build a random tree of about `files` files under `dir` (which exists).
/// `big` adds one file of 3 MiB (more than 64 chunks: chunk lists).
pub fn build(dir: &Path, seed: u64, files: usize, big: bool) {
    let mut rng = Rng(seed);
    let base = 1_700_000_000_000_000_000i64;
    let mut dirs = vec![dir.to_path_buf()];
    for i in 0..files {
        // Now and then a new directory under a random existing one.
        if rng.below(5) == 0 {
            let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
            let d = parent.join(OsStr::from_bytes(&name(&mut rng, i)));
            if fs::create_dir(&d).is_ok() {
                dirs.push(d);
            }
        }
        let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
        let p = parent.join(OsStr::from_bytes(&name(&mut rng, i)));
        if p.symlink_metadata().is_ok() {
            continue;
        }
        let mtime = base + (rng.below(1 << 40) as i64) * 1000 + 7;
        if rng.below(8) == 0 {
            let target: &[u8] = match rng.below(3) {
                0 => b"../elsewhere",
                1 => b"\xfftarget",
                _ => b"/etc/hostname",
            };
            symlink(target, &p, mtime);
        } else {
            let len = match rng.below(10) {
                0 => 0,
                1..=6 => rng.below(4096) as usize,
                _ => rng.below(300_000) as usize,
            };
            let mode = [0o644, 0o600, 0o755, 0o640, 0o444][rng.below(5) as usize];
            write_file(&p, &random_bytes(rng.next(), len), mode, mtime);
        }
        if is_root() && rng.below(3) == 0 {
            lchown(&p, 1000 + rng.below(3) as u32, 1000 + rng.below(3) as u32);
        }
    }
    if big {
        let p = dirs[rng.below(dirs.len() as u64) as usize].join("big.bin");
        write_file(&p, &random_bytes(rng.next(), 3 << 20), 0o644, base + 99);
    }
    // Directory modes and mtimes last (children change a dir's mtime).
    for d in dirs.iter().skip(1).rev() {
        set_mode(d, [0o755, 0o750, 0o700][rng.below(3) as usize]);
        set_mtime(d, base + rng.below(1 << 30) as i64);
    }
}

/// Change a built tree: rewrite some files, remove one, add one.
pub fn mutate(dir: &Path, seed: u64) {
    let mut rng = Rng(seed);
    let files = super::all_files(dir);
    let chosen: Vec<_> = files.iter().filter(|_| rng.below(4) == 0).collect();
    for f in chosen {
        write_file(
            f,
            &random_bytes(rng.next(), 1000),
            0o644,
            1_750_000_000_000_000_000,
        );
    }
    if let Some(f) = files.first() {
        let _ = fs::remove_file(f);
    }
    write_file(
        &dir.join(format!("added-{seed}.txt")),
        b"added",
        0o644,
        1_750_000_000_000_000_000,
    );
}
