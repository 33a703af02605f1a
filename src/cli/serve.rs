//! `serve`: the read-only admin web page (issue #20). Flags become
//! `wsnap::serve::ServeOptions` here; the library serves.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use wsnap::serve::{self, Limits, ServeOptions, Token};
use wsnap::{Error, Result};

use super::flags;
use super::output::exit;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port). Anything but
    /// a loopback address needs --token-file
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8686")]
    pub listen: SocketAddr,
    /// File holding the token every request must carry (as `Authorization:
    /// Bearer TOKEN`, or as the password of HTTP Basic authentication);
    /// mode 0600, one word of at least 32 characters
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Workspace root, for the dashboard's status figures (as `status --root`)
    #[arg(long, env = "SCITEX_WORKSPACE_ROOT", default_value = "/app/data/users")]
    pub root: PathBuf,
    /// As `status --max-age`: a workspace's newest snapshot may be this old
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    pub max_age: String,
    /// As `status --min-free`: CRITICAL below this much free space
    #[arg(long, value_name = "SIZE|PERCENT", default_value = "10%")]
    pub min_free: String,
    /// Refuse downloads larger than this (a file, or a directory's files
    /// together); `restore` has no such limit
    #[arg(long, value_name = "SIZE", default_value = "4GiB")]
    pub max_download: String,
}

/// `serve`: runs until SIGINT or SIGTERM.
pub fn run(store_dir: &Path, allow_network_fs: bool, a: &ServeArgs) -> Result<u8> {
    let token = a.token_file.as_deref().map(Token::load).transpose()?;
    if token.is_none() && !a.listen.ip().is_loopback() {
        return Err(Error::Invalid {
            what: "--listen",
            detail: format!(
                "{} is not a loopback address: give --token-file (a 0600 file holding the \
                 token every request must carry), or listen on 127.0.0.1 behind a reverse proxy",
                a.listen
            ),
        });
    }
    // Checked now, not at the first page.
    flags::parse_duration(&a.max_age)?;
    flags::parse_min_free(&a.min_free)?;
    let download_bytes = match flags::parse_min_free(&a.max_download) {
        Ok(wsnap::status::MinFree::Bytes(b)) => b,
        _ => {
            return Err(Error::Invalid {
                what: "--max-download",
                detail: format!("{:?}: give a size (4GiB, 500M, 1024)", a.max_download),
            })
        }
    };
    let (dir, root, max_age, min_free) = (
        store_dir.to_path_buf(),
        a.root.clone(),
        a.max_age.clone(),
        a.min_free.clone(),
    );
    let status: serve::StatusFn = Arc::new(move || {
        super::status::json_object(&dir, allow_network_fs, &root, &max_age, &min_free)
    });
    let opts = ServeOptions {
        store_dir: store_dir.to_path_buf(),
        listen: a.listen,
        token,
        limits: Limits {
            download_bytes,
            ..Limits::default()
        },
        status,
    };
    serve::serve(opts, |addr| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "wsnap serve: listening on http://{addr}/");
        let _ = out.flush();
    })?;
    Ok(exit::OK)
}
