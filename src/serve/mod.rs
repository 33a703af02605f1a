//! `wsnap serve`: a read-only admin web page over the store (issue #20).
//!
//! One page per question an admin asks: the dashboard (the `status`
//! figures and a chart of the store's growth, `dashboard.rs` and
//! `chart.rs`), the workspaces (`workspaces.rs`: a searchable list, and a
//! workspace's 24-hour strip of snapshots), browsing a snapshot's tree as
//! of a time, a diff and the history of a path (`browse.rs`), and
//! downloads (`download.rs`: a file as is, a directory as a streamed
//! `.tar.gz`). `/api/status` answers the `status --json` object.
//!
//! Everything is read through the same pinned view and verified chunk
//! reader as `restore`, `cat` and the mount ([`crate::browse::Reading`]);
//! no request writes to the store or a workspace. Every path and id of a
//! request goes through the CLI's decoders (`WorkspaceName::new`,
//! `select::split_path`, `timespec::parse`, `diff::parse_selector`).
//! `guard.rs` holds the bearer token check and the security headers that
//! wrap every answer, assets included.
//!
//! The server is axum on a small tokio runtime; catalog and pack reads run
//! on tokio's blocking threads. A download streams through a bounded
//! channel (a few chunks in flight), so memory does not grow with the
//! file or directory.

mod app;
mod browse;
mod chart;
mod dashboard;
mod download;
mod guard;
mod html;
mod request;
mod workspaces;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::error::{Error, Result};
use crate::status::Level;

pub use guard::Token;

/// The `status --json` object and its level, made fresh on each call (the
/// CLI owns that object's shape: it hands `serve` a function that makes
/// it).
pub type StatusFn = Arc<dyn Fn() -> (Level, serde_json::Value) + Send + Sync>;

/// Size limits of what one request may read.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A download (a file, or a directory's files together) larger than
    /// this is refused (413) with a message naming `restore`.
    pub download_bytes: u64,
    /// Files up to this size are shown as text; larger ones only offered
    /// for download.
    pub text_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            download_bytes: 4 << 30,
            text_bytes: 512 << 10,
        }
    }
}

/// What `serve` needs.
pub struct ServeOptions {
    pub store_dir: PathBuf,
    pub listen: SocketAddr,
    /// `None`: no token asked (the caller allows that on loopback only).
    pub token: Option<Token>,
    pub limits: Limits,
    pub status: StatusFn,
}

/// Serve until SIGINT or SIGTERM. `bound` is told the address actually
/// bound (port 0 picks a free one) once requests are accepted.
pub fn serve(opts: ServeOptions, bound: impl FnOnce(SocketAddr)) -> Result<()> {
    let app = Arc::new(app::App::open(
        &opts.store_dir,
        opts.token,
        opts.limits,
        opts.status,
    )?);
    app.warm();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .enable_all()
        .build()
        .map_err(|e| Error::invalid("server", format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| {
                Error::invalid(
                    "listen address",
                    format!("cannot listen on {}: {e}", opts.listen),
                )
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::invalid("listen address", e.to_string()))?;
        bound(addr);
        axum::serve(listener, router(app))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| Error::invalid("server", e.to_string()))
    })
}

fn router(app: Arc<app::App>) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/style.css", get(html::style))
        .route("/favicon.ico", get(html::favicon))
        .route("/api/status", get(dashboard::api_status))
        .route("/workspaces", get(workspaces::list))
        .route("/ws/{*rest}", get(workspaces::page))
        .route("/browse/{*rest}", get(browse::tree))
        .route("/diff/{*rest}", get(browse::diff))
        .route("/history/{*rest}", get(browse::history))
        .route("/download/{*rest}", get(download::download))
        .fallback(html::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::guard,
        ))
        .with_state(app)
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
