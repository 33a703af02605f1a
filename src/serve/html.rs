//! The pages' frame: the layout every page shares, the style sheet, links
//! made from raw name bytes, and errors as pages.
//!
//! Every name from the store is shown through [`name`] (`escape::escape`:
//! control characters and invalid UTF-8 as escapes), then HTML-escaped by
//! maud; in links it is percent-encoded byte by byte ([`enc`]), so any
//! name a user can give a file round-trips through a URL.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Error, ErrorKind};
use crate::escape;
use crate::workspace::WorkspaceName;

/// Bytes left as they are in a URL path segment or query value.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment or query value, percent-encoded.
pub fn enc(bytes: &[u8]) -> String {
    percent_encode(bytes, SEGMENT).to_string()
}

/// A path inside a snapshot, each component encoded, `/` kept.
pub fn enc_path(path: &[u8]) -> String {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(enc)
        .collect::<Vec<_>>()
        .join("/")
}

/// `USER/PROJECT` for a URL.
pub fn enc_ws(ws: &WorkspaceName) -> String {
    format!("{}/{}", enc(&ws.user), enc(&ws.project))
}

/// A name as text (escaped as the CLI prints it).
pub fn name(bytes: &[u8]) -> String {
    escape::escape(bytes)
}

/// The page around `body`.
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · wsnap" }
                link rel="stylesheet" href="/style.css";
                link rel="icon" href="/favicon.ico";
            }
            body {
                nav {
                    a href="/" { "Dashboard" }
                    a href="/workspaces" { "Workspaces" }
                    span class="ro" { "read-only" }
                }
                main { (body) }
            }
        }
    }
}

/// An HTML page as a response.
pub fn ok(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A failed request: its status and the message shown.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<Error> for HttpError {
    fn from(e: Error) -> HttpError {
        let status = match (&e, e.kind()) {
            (Error::NotFound(_), _) => StatusCode::NOT_FOUND,
            (_, ErrorKind::Input) => StatusCode::BAD_REQUEST,
            (_, ErrorKind::Locked) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError::new(status, e.to_string())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let title = self.status.to_string();
        let body = page(
            &title,
            html! {
                h1 { (title) }
                p class="error" { (self.message) }
            },
        );
        (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body.into_string(),
        )
            .into_response()
    }
}

pub type Page = std::result::Result<Response, HttpError>;

pub async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "no such page")
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

pub async fn favicon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml")], ICON).into_response()
}

const ICON: &str = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>\
<rect width='16' height='16' rx='3' fill='#2a5d8f'/>\
<path d='M3 4h10v2H3zm0 3h10v2H3zm0 3h10v2H3z' fill='#fff'/></svg>";

/// A level's CSS class.
pub fn level_class(label: &str) -> &'static str {
    match label {
        "OK" => "lv-ok",
        "WARNING" => "lv-warning",
        "CRITICAL" => "lv-critical",
        _ => "lv-unknown",
    }
}

/// Non-breaking space, for empty cells.
pub fn nbsp() -> PreEscaped<&'static str> {
    PreEscaped("&nbsp;")
}

const CSS: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2430; background: #f6f7f9; }
nav { background: #1f3b57; padding: .6em 1em; display: flex; gap: 1.2em; align-items: center; }
nav a { color: #fff; text-decoration: none; font-weight: 600; }
nav .ro { margin-left: auto; color: #b8c7d6; font-size: .85em; }
main { padding: 1em 1.5em; max-width: 1200px; }
h1 { font-size: 1.4em; margin: .3em 0 .6em; }
h2 { font-size: 1.15em; margin: 1.2em 0 .4em; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e2e5ea; font-size: .92em; }
th { background: #eef1f5; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: #1d5fa0; }
.error { color: #a11; font-weight: 600; white-space: pre-wrap; }
.level { display: inline-block; padding: .3em .8em; border-radius: 4px; color: #fff; font-weight: 700; }
.lv-ok { background: #2e7d32; }
.lv-warning { background: #c77700; }
.lv-critical { background: #c62828; }
.lv-unknown { background: #6a1b9a; }
.cards { display: flex; flex-wrap: wrap; gap: .8em; margin: .8em 0; }
.card { background: #fff; border: 1px solid #dde2e8; border-radius: 6px; padding: .6em .9em; min-width: 10em; }
.card .v { font-size: 1.3em; font-weight: 700; }
.card .k { color: #5a6573; font-size: .85em; }
figure { margin: .8em 0; background: #fff; border: 1px solid #dde2e8; border-radius: 6px; padding: .5em; }
figcaption { font-size: .85em; color: #5a6573; }
svg.chart { width: 100%; height: auto; }
svg .axis { stroke: #8a94a3; stroke-width: 1; }
svg .label { font-size: 11px; fill: #5a6573; }
svg .label.end { text-anchor: end; }
svg polyline.size { fill: none; stroke: #1d5fa0; stroke-width: 1.5; }
svg circle.size { fill: #1d5fa0; }
svg line.stem { stroke: #7aa6d2; stroke-width: 1; }
svg circle.added { fill: #c77700; }
svg.strip { width: 100%; height: auto; background: #fff; border: 1px solid #dde2e8; }
svg.strip rect.snap { fill: #2e7d32; }
svg.strip rect.gap { fill: #f1d5d5; }
svg.strip rect.damaged { fill: #c62828; }
svg.strip rect.skipped { fill: #c77700; }
.legend span { margin-right: 1em; font-size: .85em; }
.sw { display: inline-block; width: .8em; height: .8em; vertical-align: middle; margin-right: .3em; }
.sw.snap { background: #2e7d32; } .sw.gap { background: #f1d5d5; }
.sw.damaged { background: #c62828; } .sw.skipped { background: #c77700; }
form.inline { display: flex; gap: .5em; align-items: center; margin: .6em 0; flex-wrap: wrap; }
input[type=text] { padding: .3em; min-width: 16em; }
table.src td { font-family: ui-monospace, monospace; font-size: .85em; border: 0; padding: 0 .6em; white-space: pre-wrap; word-break: break-all; }
table.src td.ln { color: #8a94a3; text-align: right; user-select: none; width: 4em; }
.muted { color: #5a6573; }
.pages a, .pages span { margin-right: .6em; }
tr.damaged td { background: #fde7e7; }
"#;
