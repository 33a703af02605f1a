//! The dashboard (`/`): the `status` figures with the Nagios level as a
//! colour, and the chart of the last 24 h / 7 d / 30 d; and
//! `/api/status`, the `status --json` object itself.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use maud::html;
use serde_json::Value;

use super::app::App;
use super::chart::{self, RANGES};
use super::html::{self, level_class, Page};
use super::request::{blocking, Query as Params};
use crate::human;
use crate::timespec;

/// `GET /api/status`: the object `wsnap status --json` prints, with
/// HTTP 200 whatever the level (it is in `status` and `exit_code`).
pub async fn api_status(State(app): State<Arc<App>>) -> Page {
    let (_, v) = blocking(&app, |app| Ok(app.status())).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.json.clone(),
    )
        .into_response())
}

/// `GET /?range=24h|7d|30d`.
pub async fn page(State(app): State<Arc<App>>, Query(q): Query<Params>) -> Page {
    let range = q.get("range").map(String::as_str).unwrap_or("24h");
    let Some(&(range, range_ns)) = RANGES.iter().find(|(n, _)| *n == range) else {
        return Err(html::HttpError::bad(format!(
            "range {range:?}: give 24h, 7d or 30d"
        )));
    };
    let (status, ticks) = blocking(&app, |app| {
        let (_, v) = app.status();
        Ok((v, app.ticks()?))
    })
    .await?;
    let status = &status.summary;
    let now = timespec::now_ns();
    let s = |k: &str| status.get(k).and_then(Value::as_str).unwrap_or("");
    let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let label = s("status");
    let counts = status.get("counts").cloned().unwrap_or(Value::Null);
    let store = status.get("store").cloned().unwrap_or(Value::Null);
    let fsys = status.get("filesystem").cloned().unwrap_or(Value::Null);
    let run = status.get("last_run").cloned().unwrap_or(Value::Null);
    let list = |k: &str| {
        status
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let problems = list("problems");
    let held = list("retention_held");
    let remotes = list("remotes");
    let body = html! {
        h1 { "Dashboard" }
        p { span id="level" class={"level " (level_class(label))} { (label) } " " (s("summary")) }
        @if let Some(t) = status.get("checked_at_ns").and_then(Value::as_i64) {
            p class="muted" { "Checked " (human::local_time(t)) " (made again at most every "
                (super::app::STATUS_FRESH.as_secs()) " s while the page is looked at)." }
        }
        div class="cards" {
            div class="card" { div class="k" { "last run" }
                div class="v" { @match run.get("finished_ns").and_then(Value::as_i64) {
                    Some(t) => { (human::local_time(t)) }
                    None => { "never" }
                } }
                @if !run.is_null() {
                    div class="k" { (n(&run, "workspaces_ok")) " ok, " (n(&run, "workspaces_failed")) " failed, "
                        (n(&run, "entries_skipped")) " entries skipped" }
                }
            }
            div class="card" { div class="k" { "workspaces ok" } div class="v" { (n(&counts, "ok")) } }
            div class="card" { div class="k" { "stale" } div class="v" { (n(&counts, "stale")) } }
            div class="card" { div class="k" { "missing" } div class="v" { (n(&counts, "missing")) } }
            div class="card" { div class="k" { "retention held" } div class="v" { (held.len()) } }
            div class="card" { div class="k" { "store size" } div class="v" { (human::size(n(&store, "size_bytes"))) } }
            div class="card" { div class="k" { "free disk" }
                div class="v" { (format!("{:.1} %", fsys.get("free_percent").and_then(Value::as_f64).unwrap_or(0.0))) }
                div class="k" { (human::size(n(&fsys, "avail_bytes"))) }
            }
        }
        @if !problems.is_empty() {
            h2 { "Problems" }
            table id="problems" {
                tr { th { "level" } th { "message" } }
                @for p in &problems {
                    @let l = p.get("level").and_then(Value::as_str).unwrap_or("");
                    tr { td { span class={"level " (level_class(l))} { (l) } }
                         td { (p.get("message").and_then(Value::as_str).unwrap_or("")) } }
                }
            }
        }
        @if !remotes.is_empty() {
            h2 { "Remotes" }
            table {
                tr { th { "name" } th { "last push" } th class="num" { "lag" } th { "last error" } }
                @for r in &remotes {
                    tr {
                        td { (r.get("name").and_then(Value::as_str).unwrap_or("")) }
                        td { (r.get("last_push").and_then(Value::as_str).unwrap_or("never")) }
                        td class="num" { (human::duration((r.get("lag_seconds").and_then(Value::as_f64).unwrap_or(0.0) * 1e9) as i64)) }
                        td { (r.get("last_error").and_then(Value::as_str).unwrap_or("")) }
                    }
                }
            }
        }
        h2 { "Growth" }
        p class="pages" {
            @for (name, _) in RANGES {
                @if *name == range { span { b { (name) } } } @else { a href={"/?range=" (name)} { (name) } }
            }
        }
        (chart::charts(&ticks, range_ns, now))
        p class="muted" { "Machine-readable: " a href="/api/status" { "/api/status" } " (the object of "
            code { "wsnap status --json" } ")" }
    };
    Ok(html::ok(html::page("Dashboard", body)))
}
