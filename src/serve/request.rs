//! What a request names, decoded through the CLI's own decoders: the
//! workspace (`WorkspaceName::new`), the path inside a snapshot
//! (`select::split_path`: no `..`, no NUL), the snapshot (`?at=TIME` as
//! `timespec::parse`, `?snapshot=ID` as an id prefix). A request that
//! fails one of them is a 400 with the decoder's message.
//!
//! URL paths are taken raw from the request line and percent-decoded to
//! bytes here (names need not be UTF-8).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::Uri;
use percent_encoding::percent_decode;

use super::app::App;
use super::html::HttpError;
use crate::error::Error;
use crate::select::{split_path, Selector};
use crate::timespec::{self, TimeSpec};
use crate::workspace::WorkspaceName;

/// `/PREFIX/USER/PROJECT[/PATH…]` of a request.
pub struct Target {
    pub ws: WorkspaceName,
    /// Inside the snapshot, components joined by `/` (empty: the root).
    pub path: Vec<u8>,
}

/// Decode the URI after its first segment (`/browse`, `/download`, …).
pub fn target(uri: &Uri) -> Result<Target, HttpError> {
    let raw = uri.path();
    let mut segs = raw.split('/').skip(2); // "", "browse"
    let mut next = |what: &str| -> Result<Vec<u8>, HttpError> {
        match segs.next() {
            Some(s) if !s.is_empty() => Ok(percent_decode(s.as_bytes()).collect()),
            _ => Err(HttpError::bad(format!(
                "the URL names no {what}: give /…/USER/PROJECT[/PATH]"
            ))),
        }
    };
    let user = next("user")?;
    let project = next("project")?;
    let ws = WorkspaceName::new(&user, &project).map_err(Error::from)?;
    let parts: Vec<Vec<u8>> = segs
        .map(|s| percent_decode(s.as_bytes()).collect())
        .collect();
    let path = parts.join(&b'/');
    // Checked here as well as where it is resolved: `..` is refused even
    // when the snapshot does not exist.
    split_path(&path)?;
    Ok(Target { ws, path })
}

/// The query's parameters (the last of each name wins).
pub type Query = HashMap<String, String>;

/// The snapshot a query names: `snapshot=ID`, else `at=TIME`, else the
/// latest.
pub fn selector(q: &Query) -> Result<Selector, HttpError> {
    if let Some(id) = q.get("snapshot").filter(|s| !s.trim().is_empty()) {
        return Ok(Selector::Id(id.trim().to_string()));
    }
    match q.get("at").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(t) => Ok(Selector::Time(timespec::parse(t)?)),
        None => Ok(Selector::Time(TimeSpec::Latest)),
    }
}

/// Run `f` on a blocking thread (catalog and pack reads block).
pub async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&Arc<App>) -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| {
            HttpError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("the request's worker failed: {e}"),
            )
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(uri: &str) -> Result<Target, HttpError> {
        target(&uri.parse::<Uri>().unwrap())
    }

    #[test]
    fn urls_decode_to_raw_names_and_bad_ones_are_refused() {
        let x = t("/browse/alice/thesis/data/caf%E9%0A.csv").ok().unwrap();
        assert_eq!(x.ws.user, b"alice");
        assert_eq!(x.path, b"data/caf\xe9\n.csv");
        assert!(t("/browse/alice/thesis").ok().unwrap().path.is_empty());
        for bad in [
            "/browse/alice/thesis/../x",
            "/browse/alice/thesis/a/%2E%2E/x",
            "/browse/%2E%2E/thesis",
            "/browse/alice/th%00esis",
            "/browse/alice/thesis/a%00b",
            "/browse/alice",
            "/browse/a%2Fb/thesis",
        ] {
            let e = t(bad).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
