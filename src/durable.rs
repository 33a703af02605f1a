//! The only home of fsync, rename and directory fsync.
//!
//! Every durability step of the store goes through here so a reviewer can see
//! the crash order in one place. The rule for new files is always:
//! write to a temporary name → fsync the file → rename to the final name →
//! fsync the directory. A crash before the rename leaves a temporary file that
//! the next writer removes; a crash after it leaves a complete file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory in the store: it holds every user's data.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the store.
pub const FILE_MODE: u32 = 0o600;

/// Create `path` (and missing parents) with mode 0700, whatever the umask.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))
}

/// Create directory `path` of the store if it is missing (mode 0700,
/// missing parents too) and make its entry durable: each directory created
/// is fsynced, and so is the parent it was created in. Without the
/// parent's fsync a crash could lose the new directory's entry, and with it
/// every file already made durable inside it (a journal whose snapshots the
/// catalog has committed). An existing directory costs one `stat`.
pub fn ensure_private_dir(path: &Path) -> io::Result<()> {
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    ensure_private_dir(parent)?;
    match fs::DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => {}
        // Made meanwhile by another process: it made it durable.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))?;
    // Crash order: the new directory → its entry in the parent.
    sync_dir(path)?;
    sync_dir(parent)
}

/// Create a new file that must not exist yet, mode 0600 whatever the umask.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Make a finished temporary file permanent under `final_path`.
///
/// Crash order: data fsync → rename → directory fsync. A crash before the
/// rename leaves only the temporary file (garbage, removed later); after it,
/// the complete file.
pub fn commit_file(file: &File, tmp_path: &Path, final_path: &Path) -> io::Result<()> {
    file.sync_all()?;
    fs::rename(tmp_path, final_path)?;
    sync_dir(final_path.parent().unwrap_or(Path::new(".")))
}

/// fsync a file: data and metadata (a new file's header).
pub fn sync_file(file: &File) -> io::Result<()> {
    file.sync_all()
}

/// fdatasync a file: appended data (an append-only journal's records).
pub fn sync_data(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Cut `file` to `len` bytes, leave its offset there (the next write goes
/// at the cut), and make the cut durable.
pub fn cut(file: &mut File, len: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.set_len(len)?;
    file.seek(SeekFrom::Start(len))?;
    file.sync_data()
}

/// Rename `from` to `to` and fsync the directories of both, so the new name
/// (and the old one's absence) survive a crash.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    let dir_of = |p: &Path| match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let (dst, src) = (dir_of(to), dir_of(from));
    sync_dir(&dst)?;
    if src != dst {
        sync_dir(&src)?;
    }
    Ok(())
}

/// A durable second name of `from` at `to` (a hard link, or a copy fsynced
/// where links are not possible); `from` stays. The directory of `to` must
/// exist; it is fsynced.
pub fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to)?;
        File::open(to)?.sync_all()?;
    }
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// Unlink `path` and fsync its directory.
pub fn remove(path: &Path) -> io::Result<()> {
    fs::remove_file(path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsync a directory so a rename or unlink inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replace `path` atomically with `bytes`, mode `mode` (files outside the
/// store, e.g. the Prometheus textfile, which other users read).
///
/// Written as `.<name>.tmp.<pid>` in the same directory → fsync → rename →
/// directory fsync: a reader sees the old file or the new one, never a
/// partial one. On failure the temporary file is removed.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        commit_file(&file, &tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
