//! Seeded synthetic data shared by the benchmarks, and their cache under
//! `target/bench-data/`.
//!
//! Everything is deterministic (xorshift seeded per use), so a cached tree
//! or store is reused across runs only when its `.complete` marker exists:
//! a setup interrupted half way is rebuilt from scratch.

#![allow(dead_code)] // each bench binary uses its own part of this module

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// xorshift64: fast, seeded, good enough for test data.
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn fill(&mut self, out: &mut Vec<u8>, n: usize) {
        while n > 0 && out.len() % 8 != 0 {
            out.push(self.next() as u8);
        }
        let end = out.len() + n;
        while out.len() + 8 <= end {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        while out.len() < end {
            out.push(self.next() as u8);
        }
    }
}

/// CSV-like text: numbered rows of ints, decimals and a few words.
pub fn csv_text(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 100);
    let mut line = 0u64;
    while v.len() < n {
        line += 1;
        let s = format!(
            "{line},{},{:.4},{:.6},{}\n",
            rng.below(1000),
            (rng.next() % 100_000) as f64 / 3.0,
            (rng.next() % 1_000_000) as f64 / 7.0e5,
            ["alpha", "beta", "gamma", "delta", "control", "treated"][rng.below(6)]
        );
        v.extend_from_slice(s.as_bytes());
    }
    v.truncate(n);
    v
}

/// Little-endian f64 arrays as numpy writes them: a noisy random walk
/// (the low mantissa bytes are noise, the high ones repeat).
pub fn float_array(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    let mut x = 0.0f64;
    while v.len() < n {
        x += ((rng.next() % 2001) as f64 - 1000.0) * 1e-3;
        let noisy = x + (rng.next() % 1000) as f64 * 1e-9;
        v.extend_from_slice(&noisy.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// A mix of what a workspace holds: random runs (figures, archives),
/// structured binary, CSV text and float arrays, in 4–64 KiB runs.
pub fn mixed(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 65536);
    while v.len() < n {
        let run = 4096 + rng.below(60 * 1024);
        match rng.below(4) {
            0 => rng.fill(&mut v, run),
            1 => {
                let base = v.len();
                v.extend((0..run).map(|i| ((base + i) as u64 * 31 % 251) as u8));
            }
            2 => v.extend_from_slice(&csv_text(rng, run)),
            _ => v.extend_from_slice(&float_array(rng, run)),
        }
    }
    v.truncate(n);
    v
}

/// `<worktree>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}

/// `target/bench-data/<name>`, created.
pub fn data_dir(name: &str) -> PathBuf {
    let d = target_dir().join("bench-data").join(name);
    fs::create_dir_all(&d).expect("creating the bench data directory");
    d
}

/// Run `build` into `dir` unless `dir/.complete` exists; `build` gets an
/// empty directory. Returns whether it built.
pub fn cached(dir: &Path, what: &str, build: impl FnOnce(&Path)) -> bool {
    let marker = dir.join(".complete");
    if marker.exists() {
        eprintln!("{what}: reusing {}", dir.display());
        return false;
    }
    if dir.exists() {
        fs::remove_dir_all(dir).expect("removing a half-built bench directory");
    }
    fs::create_dir_all(dir).expect("creating a bench directory");
    eprintln!("{what}: building {} (once; cached)", dir.display());
    let t = std::time::Instant::now();
    build(dir);
    fs::File::create(&marker).expect("writing the .complete marker");
    eprintln!("{what}: built in {:.1} s", t.elapsed().as_secs_f64());
    true
}

pub fn write_file(path: &Path, bytes: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).expect("creating a parent directory");
    }
    let mut f = fs::File::create(path).expect("creating a bench file");
    f.write_all(bytes).expect("writing a bench file");
}

/// `uptime`'s load averages, for the report.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Peak resident set size of this process so far, in bytes (VmHWM).
pub fn peak_rss_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Current resident set size in bytes (VmRSS).
pub fn rss_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Reset the peak RSS counter (Linux ≥ 4.0: write 5 to clear_refs), so
/// the next [`peak_rss_bytes`] covers only what follows. Returns whether
/// the kernel accepted it.
pub fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}
