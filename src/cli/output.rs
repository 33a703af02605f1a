//! How results are shown: human lines or `--json`, and the exit-code table.

use std::io::{self, Write};

use wsnap::{ErrorKind, SnapshotRow};

/// Exit codes (also in `wsnap --help` and README).
pub mod exit {
    pub const OK: u8 = 0;
    /// The run finished but something in it failed (a workspace, a file, a
    /// restored file): the rest was committed / restored.
    pub const PARTIAL: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const STORE: u8 = 3;
    pub const WRITE: u8 = 4;
    /// EX_TEMPFAIL: another run holds the store lock.
    pub const LOCKED: u8 = 75;
}

pub fn code_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Input => exit::INPUT,
        ErrorKind::Store => exit::STORE,
        ErrorKind::Write => exit::WRITE,
        ErrorKind::Locked => exit::LOCKED,
    }
}

/// `1.5 KiB`-style sizes.
pub fn size(bytes: u64) -> String {
    wsnap::status::human_size(bytes)
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ls -l`-style mode string.
pub fn mode_string(kind: char, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

pub fn snapshot_json(s: &SnapshotRow) -> serde_json::Value {
    serde_json::json!({
        "id": s.id.0.to_hex(),
        "short_id": s.id.0.short(),
        "user": lossy(&s.workspace.user),
        "project": lossy(&s.workspace.project),
        "time": wsnap::timespec::format_rfc3339(s.time_ns),
        "time_ns": s.time_ns,
        "files": s.stats.files,
        "dirs": s.stats.dirs,
        "symlinks": s.stats.symlinks,
        "size_bytes": s.stats.size_bytes,
        "bytes_added": s.stats.bytes_added,
        "bytes_read": s.stats.bytes_read,
        "skipped": s.stats.skipped,
        "special_skipped": s.stats.special,
        "excluded": s.stats.excluded,
        "damaged": s.damaged,
    })
}

/// Print JSON to stdout; a closed pipe is not an error worth a message.
pub fn print_json(v: &serde_json::Value) {
    let mut out = io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
}
