//! `mount` (the snapshots as read-only directories, FUSE) and `umount`.
//!
//! Without `--foreground` the mount goes to the background the simple way:
//! this process starts itself again with `--foreground` in a new session
//! (`setsid`; a fresh `exec`, never a `fork` of a process with threads or
//! open catalog connections), waits until the mount is in place (or the
//! child failed, whose exit code it returns) and exits. Under systemd run it
//! with `--foreground` (`Type=simple`).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use wsnap::escape;
use wsnap::mount::{self, MountOptions};
use wsnap::{Error, Result, Store};

use super::flags;
use super::output::exit;

#[derive(Args, Debug)]
pub struct MountArgs {
    /// An existing, empty directory to mount at
    pub mountpoint: PathBuf,
    /// Show only this workspace (USER/PROJECT); repeatable
    #[arg(long = "workspace", value_name = "USER/PROJECT")]
    pub workspaces: Vec<OsString>,
    /// Let other users in; each file's recorded owner and mode apply
    /// (the kernel checks them: default_permissions)
    #[arg(long)]
    pub allow_other: bool,
    /// Stay in the foreground (logs on stderr; for systemd and tests)
    #[arg(long)]
    pub foreground: bool,
    /// Bound of the cache of verified chunks (e.g. 256MiB, 1G)
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    pub cache_size: String,
}

/// Set in the environment of the background child.
const BACKGROUND_CHILD: &str = "WSNAP_MOUNT_BACKGROUND";

/// `mount MOUNTPOINT [--workspace USER/PROJECT]... [--allow-other] [--foreground]`.
pub fn mount(store_dir: &Path, a: &MountArgs) -> Result<u8> {
    let cache_bytes = match flags::parse_min_free(&a.cache_size) {
        Ok(wsnap::status::MinFree::Bytes(b)) if b > 0 => b,
        _ => {
            return Err(Error::Invalid {
                what: "--cache-size",
                detail: format!("{:?}: give a size such as 256MiB or 1G", a.cache_size),
            })
        }
    };
    let opts = MountOptions {
        mountpoint: a.mountpoint.clone(),
        workspaces: a
            .workspaces
            .iter()
            .map(flags::workspace)
            .collect::<Result<_>>()?,
        allow_other: a.allow_other,
        cache_bytes,
    };
    // Refuse what cannot work here, before going to the background.
    let store = Store::open(store_dir)?;
    mount::check_fuse()?;
    let point = mount::check_mountpoint(&opts.mountpoint)?;
    if !a.foreground {
        return background(&point);
    }
    let quiet = std::env::var_os(BACKGROUND_CHILD).is_some();
    mount::mount(store, &opts, |p| {
        if quiet {
            return; // the parent says it
        }
        eprintln!(
            "wsnap: mounted {} at {}; `wsnap umount {}` or Ctrl-C to unmount",
            escape::path(store_dir),
            escape::path(p),
            escape::path(p)
        )
    })?;
    Ok(exit::OK)
}

/// Run this command again with `--foreground` in its own session; return
/// once the mount is in place, or with the child's exit code.
fn background(point: &Path) -> Result<u8> {
    let failed = |e: std::io::Error| Error::FuseUnavailable {
        reason: format!("starting the mount in the background: {e}"),
    };
    let me = std::env::current_exe().map_err(failed)?;
    let mut cmd = Command::new(me);
    cmd.args(std::env::args_os().skip(1))
        .arg("--foreground")
        .env(BACKGROUND_CHILD, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // Its log lines (damaged chunks) go where ours go, unless that is a
    // pipe, which would keep a caller waiting for its end.
    if stderr_is_pipe() {
        cmd.stderr(Stdio::null());
    }
    // SAFETY: setsid is async-signal-safe; nothing else runs in the child
    // before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(failed)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().map_err(failed)? {
            return Ok(status.code().unwrap_or(3) as u8);
        }
        if mount::is_wsnap_mount(point) {
            eprintln!(
                "wsnap: mounted at {} (pid {}); `wsnap umount {}` to unmount",
                escape::path(point),
                child.id(),
                escape::path(point)
            );
            return Ok(exit::OK);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(Error::FuseUnavailable {
                reason: "the mount did not appear within 60 s".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_is_pipe() -> bool {
    use std::os::unix::fs::FileTypeExt;
    let fd = std::io::stderr();
    let Ok(f) = std::os::fd::AsFd::as_fd(&fd).try_clone_to_owned() else {
        return true;
    };
    std::fs::File::from(f)
        .metadata()
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(true)
}

/// `umount MOUNTPOINT`.
pub fn umount(mountpoint: &Path) -> Result<u8> {
    mount::unmount(mountpoint)?;
    Ok(exit::OK)
}
