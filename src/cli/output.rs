//! How results are shown: human lines or `--json`, the exit-code table, and
//! errors with the hints that name flags (the library's messages never do).

use std::io::{self, Write};

use wsnap::escape;
use wsnap::{Error, ErrorKind, SnapshotRow, WorkspaceName};

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
    /// EX_UNAVAILABLE: a remote cannot be reached or refuses us
    /// (unreachable endpoint, bad credentials, missing bucket).
    pub const UNAVAILABLE: u8 = 69;
}

pub fn code_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Input => exit::INPUT,
        ErrorKind::Store => exit::STORE,
        ErrorKind::Write => exit::WRITE,
        ErrorKind::Locked => exit::LOCKED,
        ErrorKind::Unavailable => exit::UNAVAILABLE,
    }
}

/// An error as printed: the library's message, then what to do where that
/// means a command or flag of this binary.
pub fn message(e: &Error) -> String {
    let hint = match e {
        Error::NoStore { path } => format!(
            ": create it with `wsnap --store {} init`",
            escape::path(path)
        ),
        Error::CatalogDamaged { path, .. } => format!(
            ". Rebuild the catalog from the packs with `wsnap --store {} repair` (the old file is kept aside)",
            escape::path(path)
        ),
        Error::UnsafeFileSystem { .. } => {
            ", or pass --unsafe-allow-network-fs (WSNAP_UNSAFE_ALLOW_NETWORK_FS=1) at your own risk"
                .into()
        }
        Error::Locked { .. } => "; wait for it or pass --lock-wait".into(),
        Error::TargetNotEmpty { .. } => "; pick an empty directory or pass --overwrite".into(),
        Error::UnrecognisedStore { .. } => {
            ". If this really is a store whose every file lost its header, pass --force".into()
        }
        Error::WorkspaceRoot { .. } => " (set --root or SCITEX_WORKSPACE_ROOT)".into(),
        Error::Remote(r) => remote_hint(r).into(),
        _ => String::new(),
    };
    format!("{e}{hint}")
}

fn remote_hint(r: &wsnap::remote::RemoteError) -> &'static str {
    use wsnap::remote::RemoteError as R;
    match r {
        R::WrongKey { .. } => {
            ". Give the key file this remote was created with (`wsnap remote remove NAME`, then \
             `wsnap remote add NAME URL --key-file FILE`)"
        }
        R::Tampered { .. } => {
            ". Run `wsnap check --remote NAME --read-data` to see what else is affected; the next \
             `wsnap push` uploads what the remote lacks"
        }
        R::Missing { .. } => ". The next `wsnap push` uploads what the remote lacks",
        R::Empty { .. } => {
            ". Check the URL, or run `wsnap push NAME` from the store whose copy it is to be"
        }
        R::Credentials { .. } => {
            " (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `wsnap remote add` saves them \
             for cron when they are set)"
        }
        R::Unreachable { .. } => " (check --endpoint and that the server runs)",
        R::OtherStore { .. } => {
            ". Push to another prefix, or pass --force to replace that copy (its objects are \
             deleted after the grace period)"
        }
        _ => "",
    }
}

/// `1.5 KiB`-style sizes.
pub fn size(bytes: u64) -> String {
    wsnap::human::size(bytes)
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A workspace's user and project for `--json`.
pub fn ws_json(w: &WorkspaceName) -> (String, String) {
    (lossy(&w.user), lossy(&w.project))
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

/// A JSON array printed one element at a time, byte for byte as
/// [`print_json`] prints the whole array: for lists too long to hold.
pub struct JsonArray<W: Write> {
    out: W,
    empty: bool,
}

impl<W: Write> JsonArray<W> {
    pub fn new(mut out: W) -> JsonArray<W> {
        let _ = out.write_all(b"[");
        JsonArray { out, empty: true }
    }

    pub fn push(&mut self, v: &serde_json::Value) {
        let text = serde_json::to_string_pretty(v).expect("a JSON value prints");
        let _ = self.out.write_all(if self.empty { b"\n" } else { b",\n" });
        self.empty = false;
        // Strings escape their line breaks: every line is the value's own.
        for (i, line) in text.lines().enumerate() {
            if i > 0 {
                let _ = self.out.write_all(b"\n");
            }
            let _ = write!(self.out, "  {line}");
        }
    }

    pub fn finish(mut self) {
        let _ = self
            .out
            .write_all(if self.empty { b"]\n" } else { b"\n]\n" });
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The hints complete the library's messages into what users read
    /// (before issue 14 the library wrote the whole text itself).
    #[test]
    fn a_streamed_array_prints_as_the_whole_array() {
        let values: Vec<serde_json::Value> = vec![
            serde_json::json!({"a": 1, "b": "x\ny", "c": [1, 2], "d": {}}),
            serde_json::json!({"e": null}),
            serde_json::json!([]),
        ];
        for n in 0..=values.len() {
            let mut buf = Vec::new();
            let mut arr = JsonArray::new(&mut buf);
            for v in &values[..n] {
                arr.push(v);
            }
            arr.finish();
            let mut whole = serde_json::to_vec_pretty(&values[..n]).unwrap();
            whole.push(b'\n');
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                String::from_utf8(whole).unwrap()
            );
        }
    }

    #[test]
    fn hints_complete_the_messages() {
        let path = PathBuf::from("/s");
        let cases = [
            (
                Error::NoStore { path: path.clone() },
                "no wsnap store at /s: create it with `wsnap --store /s init`",
            ),
            (
                Error::CatalogDamaged {
                    path: path.clone(),
                    reason: "R".into(),
                },
                "store /s: R. Rebuild the catalog from the packs with `wsnap --store /s repair` \
                 (the old file is kept aside)",
            ),
            (
                Error::UnsafeFileSystem {
                    path: path.clone(),
                    fs: "NFS".into(),
                },
                "store /s is on NFS: wsnap supports local file systems only (its flock locks and \
                 its SQLite WAL catalog are not safe on network or FUSE file systems). Move the \
                 store to a local disk, or pass --unsafe-allow-network-fs \
                 (WSNAP_UNSAFE_ALLOW_NETWORK_FS=1) at your own risk",
            ),
            (
                Error::Locked {
                    path: path.clone(),
                    holder: "H".into(),
                },
                "store /s is locked by another wsnap run (H); wait for it or pass --lock-wait",
            ),
            (
                Error::TargetNotEmpty { path: path.clone() },
                "restore target /s: is not empty; pick an empty directory or pass --overwrite",
            ),
            (
                Error::WorkspaceRoot {
                    path: path.clone(),
                    source: io::Error::from_raw_os_error(2), // ENOENT
                },
                "invalid workspace root: /s: No such file or directory (os error 2) \
                 (set --root or SCITEX_WORKSPACE_ROOT)",
            ),
            (
                Error::UnrecognisedStore { path },
                "/s exists but is not a wsnap store (it has no catalog.sqlite and no file in \
                 packs/ or journal/ that wsnap wrote, so repair would create a store here); \
                 refusing to touch it. Pick an empty or absent directory for a new store. If \
                 this really is a store whose every file lost its header, pass --force",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(message(&e), want);
            assert!(
                !e.to_string().contains("--"),
                "the library names a flag: {e}"
            );
        }
    }
}
