//! Running a child process and measuring it (wall, user+sys CPU, peak RSS via
//! `wait4`), disk usage of a store (hard links counted once), and comparing a
//! restored tree with the expected one byte for byte.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// What one or several child runs cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub wall_s: f64,
    pub cpu_s: f64,
    pub maxrss_kb: u64,
    pub runs: u32,
    pub failures: u32,
}

impl Usage {
    pub fn add(&mut self, o: Usage) {
        self.wall_s += o.wall_s;
        self.cpu_s += o.cpu_s;
        self.maxrss_kb = self.maxrss_kb.max(o.maxrss_kb);
        self.runs += o.runs;
        self.failures += o.failures;
    }
}

/// Runs `cmd` to completion with stdout written to `out` (truncated) and
/// stderr appended to `err`; measures it with `wait4`. A non-zero exit is
/// counted in `failures` and its stderr tail returned in the error string.
pub fn run(cmd: &mut Command, out: &Path, err: &Path) -> (Usage, Option<String>) {
    let so = File::create(out).expect("create stdout log");
    let se = OpenOptions::new()
        .create(true)
        .append(true)
        .open(err)
        .expect("open stderr log");
    let errlen = se.metadata().map(|m| m.len()).unwrap_or(0);
    cmd.stdin(Stdio::null()).stdout(so).stderr(se);
    let t0 = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                Usage {
                    runs: 1,
                    failures: 1,
                    ..Usage::default()
                },
                Some(format!("cannot start {:?}: {e}", cmd.get_program())),
            )
        }
    };
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = loop {
        // SAFETY: pid is our child, status and ru point to valid memory.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        break rc;
    };
    let wall_s = t0.elapsed().as_secs_f64();
    drop(child);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let mut u = Usage {
        wall_s,
        cpu_s: tv(ru.ru_utime) + tv(ru.ru_stime),
        maxrss_kb: ru.ru_maxrss as u64,
        runs: 1,
        failures: 0,
    };
    let st = std::process::ExitStatus::from_raw(status);
    if rc == -1 || !st.success() {
        u.failures = 1;
        let tail = fs::read(err)
            .map(|b| {
                let b = &b[(errlen as usize).min(b.len())..];
                String::from_utf8_lossy(&b[b.len().saturating_sub(600)..]).replace('\n', " ")
            })
            .unwrap_or_default();
        return (
            u,
            Some(format!("{:?} exited {st}: {tail}", cmd.get_program())),
        );
    }
    (u, None)
}

/// Bytes of a tree: apparent (sum of sizes, like `du -sb`) and allocated
/// (st_blocks × 512, like `du -s`), every inode counted once.
#[derive(Clone, Copy, Debug, Default)]
pub struct Du {
    pub apparent: u64,
    pub allocated: u64,
}

pub fn du(path: &Path) -> Du {
    let mut seen = HashSet::new();
    let mut d = Du::default();
    du_into(path, &mut seen, &mut d);
    d
}

fn du_into(path: &Path, seen: &mut HashSet<(u64, u64)>, d: &mut Du) {
    let Ok(m) = fs::symlink_metadata(path) else {
        return;
    };
    if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
        return;
    }
    d.apparent += m.len();
    d.allocated += m.blocks() * 512;
    if m.is_dir() {
        if let Ok(rd) = fs::read_dir(path) {
            for e in rd.flatten() {
                du_into(&e.path(), seen, d);
            }
        }
    }
}

/// Names every tool is told to leave out (wsnap's defaults).
pub fn excluded_name(name: &[u8]) -> bool {
    matches!(
        name,
        b".git" | b"__pycache__" | b"node_modules" | b".venv" | b"venv"
    ) || name.ends_with(b".pyc")
}

/// Compares the restored tree `got` with `want` (entries excluded by
/// [`excluded_name`] are skipped in `want` and must be absent in `got`):
/// same names, kinds, symlink targets, file bytes and permission bits.
/// Returns (files, bytes) compared.
pub fn compare_trees(want: &Path, got: &Path) -> Result<(u64, u64), String> {
    let mut n = (0, 0);
    compare_dir(want, got, &mut n)?;
    Ok(n)
}

fn compare_dir(want: &Path, got: &Path, n: &mut (u64, u64)) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let list = |p: &Path| -> Result<Vec<std::ffi::OsString>, String> {
        let mut v: Vec<_> = fs::read_dir(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .flatten()
            .map(|e| e.file_name())
            .filter(|f| !excluded_name(f.as_bytes()))
            .collect();
        v.sort();
        Ok(v)
    };
    let (a, b) = (list(want)?, list(got)?);
    if a != b {
        let extra: Vec<_> = b.iter().filter(|x| !a.contains(x)).take(3).collect();
        let missing: Vec<_> = a.iter().filter(|x| !b.contains(x)).take(3).collect();
        return Err(format!(
            "{}: missing {missing:?}, extra {extra:?}",
            got.display()
        ));
    }
    for name in a {
        let (w, g) = (want.join(&name), got.join(&name));
        let mw = fs::symlink_metadata(&w).map_err(|e| format!("{}: {e}", w.display()))?;
        let mg = fs::symlink_metadata(&g).map_err(|e| format!("{}: {e}", g.display()))?;
        if mw.file_type() != mg.file_type() {
            return Err(format!("{}: kind differs", g.display()));
        }
        if mw.is_symlink() {
            if fs::read_link(&w).ok() != fs::read_link(&g).ok() {
                return Err(format!("{}: symlink target differs", g.display()));
            }
        } else if mw.is_dir() {
            compare_dir(&w, &g, n)?;
        } else {
            if mw.permissions().mode() & 0o7777 != mg.permissions().mode() & 0o7777 {
                return Err(format!("{}: mode differs", g.display()));
            }
            if mw.len() != mg.len() || !same_bytes(&w, &g)? {
                return Err(format!("{}: content differs", g.display()));
            }
            n.0 += 1;
            n.1 += mw.len();
        }
    }
    Ok(())
}

fn same_bytes(a: &Path, b: &Path) -> Result<bool, String> {
    let open = |p: &Path| File::open(p).map_err(|e| format!("{}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(|e| e.to_string())?;
        let nb = read_full(&mut fb, &mut bb).map_err(|e| e.to_string())?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Seconds since the epoch of a time `YYYY-mm-ddTHH:MM:SSZ` made from `secs`.
pub fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days_to_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// RFC 3339 UTC, e.g. `2026-03-02T00:05:00Z`.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The old script's directory suffix, `YYYYmmdd_HHMMSS`.
pub fn stamp(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}_{h:02}{mi:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(rfc3339(1_772_409_600), "2026-03-02T00:00:00Z");
        assert_eq!(stamp(1_772_409_600 + 300 * 300), "20260303_010000");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn compare_finds_a_changed_byte_and_ignores_excluded() {
        let t = std::env::temp_dir().join(format!("wsnap-bench-cmp-{}", std::process::id()));
        let (a, b) = (t.join("a"), t.join("b"));
        for d in [&a, &b] {
            fs::create_dir_all(d.join("x")).unwrap();
            fs::write(d.join("x/f"), b"hello").unwrap();
        }
        fs::create_dir_all(a.join(".git")).unwrap();
        fs::write(a.join("y.pyc"), b"z").unwrap();
        assert_eq!(compare_trees(&a, &b).unwrap(), (1, 5));
        fs::write(b.join("x/f"), b"hellp").unwrap();
        assert!(compare_trees(&a, &b)
            .unwrap_err()
            .contains("content differs"));
        fs::write(b.join("x/f"), b"hello").unwrap();
        fs::write(b.join("extra"), b"").unwrap();
        assert!(compare_trees(&a, &b).unwrap_err().contains("extra"));
        let d = du(&t);
        assert!(d.apparent >= 11);
        fs::remove_dir_all(&t).unwrap();
    }
}
