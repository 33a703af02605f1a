//! How results are shown: human lines or `--json`, the exit-code table, and
//! errors with the hints that name flags (the library's messages never do).
//!
//! The `--json` conventions live here and nowhere else (docs/JSON.md):
//! every command prints one object made by [`emit`], which adds
//! `schema_version` and `ok` (true exactly when the exit code is 0, so a
//! script that reads only the object still knows the outcome); times are
//! written by [`time`] beside their `*_ns` integer; byte counts are keys
//! ending in `_bytes`; an error is one object on stderr ([`print_error_json`]).

mod stream;

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{json, Value};

use wsnap::escape;
use wsnap::select::Selector;
use wsnap::Missing;
use wsnap::{Error, ErrorKind, LockHolder, SnapshotRow, WorkspaceName};

/// Exit codes. [`exit::TABLE`] says what each means: the one text that
/// `wsnap --help` and the man pages' EXIT STATUS print (README.md's table
/// gives the details). `status` has its own, Nagios codes
/// (`wsnap::status::Level::exit_code`).
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

    /// [`OK`] when the command's work is whole, else [`PARTIAL`].
    pub fn ok_or_partial(whole: bool) -> u8 {
        if whole {
            OK
        } else {
            PARTIAL
        }
    }

    /// Every code above with its meaning, in order.
    pub const TABLE: &[(u8, &str)] = &[
        (OK, "success"),
        (
            PARTIAL,
            "finished with failures (a workspace, file or restored file); the rest was \
             committed or restored",
        ),
        (
            INPUT,
            "bad input: arguments, time, keep flags, workspace name, unknown snapshot or \
             path, unusable restore target",
        ),
        (
            STORE,
            "store missing, foreign, of another format version, or damaged",
        ),
        (
            WRITE,
            "writing failed (disk full, I/O error); the store is left consistent",
        ),
        (
            UNAVAILABLE,
            "remote unavailable (unreachable, bad credentials, missing bucket)",
        ),
        (LOCKED, "store locked by another run (--lock-wait to wait)"),
    ];

    /// The table as `wsnap --help` ends.
    pub fn help() -> String {
        let mut s = String::from("Exit codes:");
        for (code, meaning) in TABLE {
            s.push_str(&format!("\n  {code:<3} {meaning}"));
        }
        s
    }
}

/// The version of the `--json` schema (docs/JSON.md, "History"). 1: the
/// objects before issue 17 (no version field; `list` an array); 2: one
/// object per command with `schema_version` and `ok`, byte counts in
/// `*_bytes`, every `*_ns` with its RFC 3339 string, errors as JSON.
pub const SCHEMA_VERSION: u32 = 2;

/// The `--json` flag's help, the same in every command.
pub const JSON_HELP: &str = "Print the result as one JSON object on stdout (schema in \
                             docs/JSON.md); an error as one JSON object on stderr";

pub fn code_for(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Input => exit::INPUT,
        ErrorKind::Store => exit::STORE,
        ErrorKind::Write => exit::WRITE,
        ErrorKind::Locked => exit::LOCKED,
        ErrorKind::Unavailable => exit::UNAVAILABLE,
    }
}

/// Where the store path came from: what a message about a missing or
/// foreign store says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOrigin {
    /// `--store DIR`.
    Flag,
    /// `SCITEX_BACKUP_ROOT`.
    Env,
    /// Neither: the built-in default.
    Default,
}

static STORE_ORIGIN: std::sync::OnceLock<StoreOrigin> = std::sync::OnceLock::new();

/// Record where this run's store path came from (once, from `main`).
pub fn set_store_origin(origin: StoreOrigin) {
    let _ = STORE_ORIGIN.set(origin);
}

fn store_origin() -> StoreOrigin {
    STORE_ORIGIN.get().copied().unwrap_or(StoreOrigin::Flag)
}

/// `wsnap COMMAND` as the user runs it against `store`: with `--store` only
/// when they gave it.
fn wsnap_on(store: &Path, command: &str) -> String {
    match store_origin() {
        StoreOrigin::Flag => format!("wsnap --store {} {command}", escape::path(store)),
        StoreOrigin::Env | StoreOrigin::Default => format!("wsnap {command}"),
    }
}

/// The name of an error kind in JSON (`error.kind`).
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Input => "input",
        ErrorKind::Store => "store",
        ErrorKind::Write => "write",
        ErrorKind::Locked => "locked",
        ErrorKind::Unavailable => "unavailable",
    }
}

/// An error as printed: the library's message, then what to do where that
/// means a command or flag of this binary.
pub fn message(e: &Error) -> String {
    let hint = match e {
        Error::NoStore { path } => match store_origin() {
            StoreOrigin::Flag => format!(": create it with `{}`", wsnap_on(path, "init")),
            StoreOrigin::Env => " (from SCITEX_BACKUP_ROOT; set it or --store to use another): \
                                  create one with `wsnap init`"
                .into(),
            StoreOrigin::Default => " (the default; set SCITEX_BACKUP_ROOT or --store to use \
                                      another): create one with `wsnap init`"
                .into(),
        },
        Error::OldBackups { path, .. } => {
            let p = escape::path(path);
            format!(
                ". These look like the old rsync copies: move them aside (`mv {p} {p}.rsync`) \
                 and import them into a new store here with `{}`",
                wsnap_on(path, &format!("import-rsync {p}.rsync"))
            )
        }
        Error::CatalogDamaged { path, .. } => format!(
            ". Rebuild the catalog from the packs with `wsnap --store {} repair` (the old file is kept aside)",
            escape::path(path)
        ),
        Error::UnsafeFileSystem { .. } => {
            ", or pass --unsafe-allow-network-fs (WSNAP_UNSAFE_ALLOW_NETWORK_FS=1) at your own risk"
                .into()
        }
        Error::Locked {
            path,
            lock_file,
            holder,
            waited,
        } => lock_hint(path, lock_file, holder, !waited.is_zero()),
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

/// What to do about a lock another process holds: wait (longer), or find
/// who holds it (a process that wrote no note is found only this way).
/// `--lock-wait` waits for the writers' lock only.
fn lock_hint(store: &Path, lock_file: &Path, holder: &LockHolder, waited: bool) -> String {
    let writers_lock = lock_file == store.join("lock");
    let lock_file = escape::path(lock_file);
    match (holder, waited) {
        // The readers' lock (held while gc deletes packs) and a remote's
        // push lock: no flag waits for them.
        (LockHolder::Gc, _) => "; run again when it has finished".into(),
        (_, _) if !writers_lock => "; run again when it has finished".into(),
        (LockHolder::Run(_), false) => {
            "; wait for it to finish, or pass --lock-wait DURATION to wait for it".into()
        }
        (LockHolder::Unknown, false) => format!(
            "; pass --lock-wait DURATION to wait for it, or find the holder with \
             `fuser -v {lock_file}`"
        ),
        (_, true) => {
            format!(". Give a longer --lock-wait, or find the holder with `fuser -v {lock_file}`")
        }
    }
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

pub fn snapshot_json(s: &SnapshotRow) -> Value {
    json!({
        "id": s.id.0.to_hex(),
        "short_id": s.id.0.short(),
        "user": lossy(&s.workspace.user),
        "project": lossy(&s.workspace.project),
        "time": time(s.time_ns),
        "time_ns": s.time_ns,
        "files": s.stats.files,
        "dirs": s.stats.dirs,
        "symlinks": s.stats.symlinks,
        "size_bytes": s.stats.size_bytes,
        "added_bytes": s.stats.bytes_added,
        "read_bytes": s.stats.bytes_read,
        "skipped": s.stats.skipped,
        "special_skipped": s.stats.special,
        "excluded": s.stats.excluded,
        "damaged": s.damaged,
    })
}

/// The snapshot object of a snapshot the user named (`ls`, `restore`,
/// `diff`, `find`), with `resolved_from`: the TIME given when it was chosen
/// by time, else `null`.
pub fn selected_json(s: &SnapshotRow, given: &str, sel: &Selector) -> Value {
    let mut v = snapshot_json(s);
    v["resolved_from"] = match sel {
        Selector::Time(_) => given.into(),
        Selector::Id(_) => Value::Null,
    };
    v
}

/// A time for JSON: RFC 3339 in UTC with all nine digits of the fraction
/// (`2026-11-26T09:05:00.000000000Z`): exact where the `*_ns` integer
/// beside it is not (above 2^53 in jq and JavaScript), and ordered as
/// strings in the order of time.
pub fn time(ns: i64) -> Value {
    use chrono::{SecondsFormat, TimeZone, Utc};
    Utc.timestamp_nanos(ns)
        .to_rfc3339_opts(SecondsFormat::Nanos, true)
        .into()
}

/// [`time`] of a time that may not exist (`null`).
pub fn time_opt(ns: Option<i64>) -> Value {
    ns.map_or(Value::Null, time)
}

/// Whether `-q` was given: no notes on stderr.
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Say on stderr which snapshot a TIME resolved to (`ls`, `restore`,
/// `diff`, `cat`, `find`): `snapshot ID at TIME (resolved from 'ARG')`.
/// Nothing for a snapshot named by id, or with `-q`.
pub fn note_resolved(s: &SnapshotRow, given: &str, sel: &Selector) {
    if QUIET.load(Ordering::Relaxed) || !matches!(sel, Selector::Time(_)) {
        return;
    }
    let line = resolved_line(s, given);
    super::progress::suspended(|| {
        let _ = writeln!(io::stderr().lock(), "{line}");
    });
}

fn resolved_line(s: &SnapshotRow, given: &str) -> String {
    format!(
        "snapshot {} at {} (resolved from '{}')",
        s.id.0.short(),
        wsnap::timespec::format_local_offset(s.time_ns),
        escape::escape(given.as_bytes())
    )
}

/// Print a command's JSON object on stdout with `schema_version` and `ok`
/// (`ok` is true exactly when `code`, the exit code, is 0); return `code`.
/// A closed pipe is not an error worth a message.
pub fn emit(code: u8, body: Value) -> u8 {
    // Buffered: stdout alone flushes at every newline, a write(2) per line
    // of pretty JSON (20 s for the 288,000 snapshots of 1,000 workspaces).
    let mut out = io::BufWriter::new(io::stdout().lock());
    let _ = write_emitted(&mut out, code, body);
    code
}

/// [`emit`]'s bytes, to `out`.
fn write_emitted(out: &mut impl Write, code: u8, body: Value) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &stamped(code, body))?;
    writeln!(out)?;
    out.flush()
}

/// `body` with its [`envelope`].
fn stamped(code: u8, mut body: Value) -> Value {
    envelope(code, &mut body);
    body
}

/// Add what every `--json` object carries: `schema_version`, and `ok`
/// (true exactly when `code` is 0).
pub fn envelope(code: u8, body: &mut Value) {
    let obj = body
        .as_object_mut()
        .expect("every --json result is one object");
    obj.insert("schema_version".into(), SCHEMA_VERSION.into());
    obj.insert("ok".into(), (code == exit::OK).into());
}

pub use stream::EmitStream;

/// The `error` member of a JSON error object: `kind`, `exit_code`,
/// `message` (as the text line, with its hint), and the machine fields the
/// error has (`path`, `user`/`project`, `snapshot`, `what`).
pub fn error_json(e: &Error) -> Value {
    let code = code_for(e.kind());
    let mut v = json!({
        "kind": kind_name(e.kind()),
        "exit_code": code,
        "message": message(e),
    });
    let path = match e {
        Error::NotAStore { path, .. }
        | Error::CatalogDamaged { path, .. }
        | Error::NoStore { path }
        | Error::UnsafeFileSystem { path, .. }
        | Error::Locked { path, .. }
        | Error::StoreWrite { path, .. }
        | Error::StoreRead { path, .. }
        | Error::Catalog { path, .. }
        | Error::Target { path, .. }
        | Error::TargetWrite { path, .. }
        | Error::TargetNotEmpty { path }
        | Error::UnrecognisedStore { path }
        | Error::WorkspaceRoot { path, .. }
        | Error::Mountpoint { path, .. } => Some(path.display().to_string()),
        _ => None,
    };
    if let Some(p) = path {
        v["path"] = p.into();
    }
    if let Error::Invalid { what, .. } = e {
        v["what"] = (*what).into();
    }
    if let Error::NotFound(m) = e {
        let (ws, snapshot, path) = match m {
            Missing::Snapshots(w) | Missing::SnapshotAt { workspace: w, .. } => {
                (Some(w), None, None)
            }
            Missing::SnapshotId { workspace, .. } => (workspace.as_ref(), None, None),
            Missing::Path {
                workspace,
                snapshot,
                path,
            } => (Some(workspace), Some(snapshot), Some(path)),
            Missing::History { workspace, path } => (workspace.as_ref(), None, Some(path)),
            Missing::Forgotten {
                snapshot,
                workspace,
            } => (workspace.as_ref(), Some(snapshot), None),
            Missing::User(user) => {
                v["user"] = lossy(user).into();
                (None, None, None)
            }
            _ => (None, None, None),
        };
        if let Some(w) = ws {
            v["user"] = lossy(&w.user).into();
            v["project"] = lossy(&w.project).into();
        }
        if let Some(s) = snapshot {
            v["snapshot"] = s.0.to_hex().into();
        }
        if let Some(p) = path {
            v["path"] = lossy(p).into();
        }
    }
    v
}

/// With `--json`: an error as one JSON object on one line of stderr,
/// `{"ok": false, "schema_version": N, "error": {…}}` ([`error_json`]).
pub fn print_error_json(error: Value) {
    let v = json!({"ok": false, "schema_version": SCHEMA_VERSION, "error": error});
    let _ = writeln!(io::stderr().lock(), "{v}");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The hints complete the library's messages into what users read
    /// (before issue 14 the library wrote the whole text itself).
    #[test]
    fn hints_complete_the_messages() {
        let path = PathBuf::from("/s");
        let locked = |holder, secs| Error::Locked {
            path: path.clone(),
            lock_file: path.join("lock"),
            holder,
            waited: std::time::Duration::from_secs(secs),
        };
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
                locked(LockHolder::Run("pid 7 snapshot".into()), 0),
                "store /s is locked by another wsnap run (pid 7 snapshot); wait for it to \
                 finish, or pass --lock-wait DURATION to wait for it",
            ),
            (
                locked(LockHolder::Unknown, 0),
                "store /s is locked by another process that is not a wsnap run (no holder \
                 record), e.g. `flock` while the store is copied; pass --lock-wait DURATION to \
                 wait for it, or find the holder with `fuser -v /s/lock`",
            ),
            (
                locked(LockHolder::Unknown, 90),
                "store /s is locked by another process that is not a wsnap run (no holder \
                 record), e.g. `flock` while the store is copied; waited 1m 30s. Give a longer \
                 --lock-wait, or find the holder with `fuser -v /s/lock`",
            ),
            (
                locked(LockHolder::Run("pid 7 prune".into()), 600),
                "store /s is locked by another wsnap run (pid 7 prune); waited 10m. Give a \
                 longer --lock-wait, or find the holder with `fuser -v /s/lock`",
            ),
            (
                Error::Locked {
                    path: path.clone(),
                    lock_file: path.join("readers"),
                    holder: LockHolder::Gc,
                    waited: std::time::Duration::from_secs(60),
                },
                "store /s is busy: garbage collection is deleting packs; waited 1m; run again \
                 when it has finished",
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
                Error::OldBackups {
                    path: path.clone(),
                    count: 1,
                    example: "a_b_20260101_120000".into(),
                },
                "/s holds the old rsync backups (1 directory named like a_b_20260101_120000), not \
                 a wsnap store; refusing to touch it. These look like the old rsync copies: move \
                 them aside (`mv /s /s.rsync`) and import them into a new store here with \
                 `wsnap --store /s import-rsync /s.rsync`",
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
