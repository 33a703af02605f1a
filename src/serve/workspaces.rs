//! `/workspaces`: every workspace with snapshots, searchable, sortable and
//! paged (user, project, newest snapshot's age, snapshot count, unique
//! bytes); `/ws/USER/PROJECT`: one workspace's 24-hour strip (one mark
//! per 5-minute tick, gaps and damaged snapshots visible) and, per
//! snapshot, the files it changed.
//!
//! The list comes from the cached summaries (`app.rs`), so a page costs a
//! sort of 10,000 rows in memory, not a catalog scan. A workspace page
//! reads that workspace's snapshot rows (one index range) and, for the
//! snapshot chosen, one diff against the one before it (trees only).

use std::cmp::Ordering;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::Uri;
use maud::{html, Markup};

use super::app::App;
use super::html::{self, enc, enc_ws, name, HttpError, Page};
use super::request::{self, blocking, Query as Params};
use crate::diff;
use crate::human;
use crate::model::SnapshotRow;
use crate::select::Selector;
use crate::timespec::{self, TimeSpec};

/// Rows per page of the list.
const PER_PAGE: usize = 100;
/// Changed paths shown for one snapshot at most.
const MAX_CHANGES: usize = 2000;
/// The strip: 288 ticks of 5 minutes.
const SLOT_NS: i64 = 300 * 1_000_000_000;
const SLOTS: i64 = 288;

/// `GET /workspaces?q=TEXT&sort=user|project|age|snapshots|unique&desc=1&page=N`.
pub async fn list(State(app): State<Arc<App>>, Query(q): Query<Params>) -> Page {
    let filter = q
        .get("q")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    let sort = q.get("sort").cloned().unwrap_or_else(|| "user".into());
    if !["user", "project", "age", "snapshots", "unique"].contains(&sort.as_str()) {
        return Err(HttpError::bad(format!(
            "sort {sort:?}: give user, project, age, snapshots or unique"
        )));
    }
    let desc = q.get("desc").is_some_and(|v| v == "1");
    let page: usize = match q.get("page") {
        None => 1,
        Some(p) => p
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| HttpError::bad(format!("page {p:?}: give a number from 1")))?,
    };
    let app2 = app.clone();
    let (summaries, unique, made, error) = blocking(&app, move |app| {
        let s = app.summaries()?;
        let u = app2.unique();
        Ok((s, u.bytes.clone(), u.made_ns, u.error.clone()))
    })
    .await?;
    let now = timespec::now_ns();
    let mut rows: Vec<_> = summaries
        .iter()
        .map(|s| {
            let text = format!("{}/{}", name(&s.workspace.user), name(&s.workspace.project));
            (s, text, unique.get(&s.workspace).copied())
        })
        .filter(|(_, text, _)| filter.is_empty() || text.to_lowercase().contains(&filter))
        .collect();
    rows.sort_by(|a, b| {
        let o = match sort.as_str() {
            "project" => a.0.workspace.project.cmp(&b.0.workspace.project),
            "age" => b.0.newest_time_ns.cmp(&a.0.newest_time_ns),
            "snapshots" => a.0.snapshots.cmp(&b.0.snapshots),
            "unique" => a.2.cmp(&b.2),
            _ => Ordering::Equal,
        };
        o.then_with(|| a.0.workspace.cmp(&b.0.workspace))
    });
    if desc {
        rows.reverse();
    }
    let total = rows.len();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let shown = rows.iter().skip((page - 1) * PER_PAGE).take(PER_PAGE);
    let qtext = q.get("q").cloned().unwrap_or_default();
    let link = |sort: &str, desc: bool, page: usize| {
        format!(
            "/workspaces?q={}&sort={sort}&desc={}&page={page}",
            enc(qtext.as_bytes()),
            u8::from(desc)
        )
    };
    let head = |label: &str, key: &str, num: bool| {
        let next_desc = sort == key && !desc;
        let mark = if sort == key {
            if desc {
                " ▼"
            } else {
                " ▲"
            }
        } else {
            ""
        };
        html! { th class=[num.then_some("num")] { a href=(link(key, next_desc, 1)) { (label) (mark) } } }
    };
    let body = html! {
        h1 { "Workspaces" }
        form class="inline" method="get" action="/workspaces" {
            input type="text" name="q" value=(qtext) placeholder="user or project contains…";
            input type="hidden" name="sort" value=(sort);
            button type="submit" { "Search" }
            span class="muted" { (total) " of " (summaries.len()) " workspaces" }
        }
        p class="muted" {
            @match made {
                Some(t) => { "Unique bytes as of " (human::local_time(t)) "." }
                None => { "Unique bytes: being computed (a walk of every blob); reload later." }
            }
            @if let Some(e) = &error { " " span class="error" { (e) } }
        }
        table id="workspaces" {
            tr { (head("user", "user", false)) (head("project", "project", false))
                 (head("newest snapshot", "age", false)) (head("snapshots", "snapshots", true))
                 (head("unique", "unique", true)) }
            @for (s, _, u) in shown {
                tr {
                    td { (name(&s.workspace.user)) }
                    td { a href={"/ws/" (enc_ws(&s.workspace))} { (name(&s.workspace.project)) } }
                    td { (human::duration(now - s.newest_time_ns)) " ago" }
                    td class="num" { (s.snapshots) }
                    td class="num" { @if let Some(u) = u { (human::size(*u)) } @else { "…" } }
                }
            }
        }
        p class="pages" {
            @for p in 1..=pages {
                @if p == page { span { b { (p) } } }
                @else if p <= 3 || p + 2 >= pages || p.abs_diff(page) <= 2 {
                    a href=(link(&sort, desc, p)) { (p) }
                }
            }
        }
    };
    Ok(html::ok(html::page("Workspaces", body)))
}

/// `GET /ws/USER/PROJECT?end=TIME&snapshot=ID`.
pub async fn page(State(app): State<Arc<App>>, uri: Uri, Query(q): Query<Params>) -> Page {
    let t = request::target(&uri)?;
    if !t.path.is_empty() {
        return Err(HttpError::bad(
            "a workspace page takes no path: /ws/USER/PROJECT",
        ));
    }
    let now = timespec::now_ns();
    let end = match q.get("end").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => now,
        Some(s) => match timespec::parse(s)? {
            TimeSpec::Latest => now,
            TimeSpec::At(t) => t,
        },
    };
    // Slots end at the next 5-minute boundary, so cron ticks (at :00,
    // :05, …) each fall in their own slot.
    let end = (end.div_euclid(SLOT_NS) + 1) * SLOT_NS;
    let start = end - SLOTS * SLOT_NS;
    let chosen = q.get("snapshot").cloned().filter(|s| !s.trim().is_empty());
    let ws = t.ws.clone();
    let (snaps, changes) = blocking(&app, move |app| {
        let reading = app.reading()?;
        let snaps = reading.snapshots(&ws)?;
        let changes = match chosen {
            None => None,
            Some(id) => {
                let snap = reading.select(&ws, &Selector::Id(id))?;
                let prev = snaps
                    .iter()
                    .take_while(|s| (s.time_ns, s.id) < (snap.time_ns, snap.id))
                    .last()
                    .cloned();
                let list = match &prev {
                    None => None,
                    Some(p) => Some(
                        reading
                            .with_catalog(|cat| diff::diff(reading.store(), cat, p, &snap))?
                            .0,
                    ),
                };
                Some((snap, prev, list))
            }
        };
        Ok((snaps, changes))
    })
    .await?;
    let ws = &t.ws;
    let in_window: Vec<&SnapshotRow> = snaps
        .iter()
        .filter(|s| s.time_ns >= start && s.time_ns < end)
        .collect();
    let newest = snaps.last().expect("snapshots() is never empty");
    let title = format!("{}/{}", name(&ws.user), name(&ws.project));
    let body = html! {
        h1 { "Workspace " (title) }
        div class="cards" {
            div class="card" { div class="k" { "snapshots" } div class="v" { (snaps.len()) } }
            div class="card" { div class="k" { "newest" } div class="v" { (human::duration(now - newest.time_ns)) " ago" }
                div class="k" { (human::local_time(newest.time_ns)) } }
            div class="card" { div class="k" { "files (newest)" } div class="v" { (newest.stats.files) } }
            div class="card" { div class="k" { "size (newest)" } div class="v" { (human::size(newest.stats.size_bytes)) } }
        }
        p {
            a href={"/browse/" (enc_ws(ws))} { "Browse the latest snapshot" } " · "
            a href={"/diff/" (enc_ws(ws))} { "Diff two times" } " · "
            a href={"/download/" (enc_ws(ws))} { "Download the latest as .tar.gz" }
        }
        h2 { "Last 24 hours" }
        form class="inline" method="get" {
            label { "ending at " input type="text" name="end" value=(q.get("end").cloned().unwrap_or_default())
                placeholder="now, or a TIME as for --at"; }
            button type="submit" { "Show" }
        }
        (strip(&in_window, start))
        p class="legend" {
            span { span class="sw snap" {} "snapshot" } span { span class="sw gap" {} "no snapshot (gap)" }
            span { span class="sw skipped" {} "skipped entries" } span { span class="sw damaged" {} "damaged" }
        }
        @if let Some((snap, prev, list)) = &changes {
            h2 id="changes" { "Changes in snapshot " (snap.id.0.short()) " (" (human::local_time(snap.time_ns)) ")" }
            (changes_table(ws, snap, prev.as_ref(), list.as_deref()))
        }
        h2 { "Snapshots in the window (" (in_window.len()) ")" }
        table id="snapshots" {
            tr { th { "time" } th { "id" } th class="num" { "files" } th class="num" { "size" }
                 th class="num" { "added" } th class="num" { "skipped" } th { "" } }
            @for s in in_window.iter().rev() {
                tr class=[s.damaged.then_some("damaged")] {
                    td { (human::local_time(s.time_ns)) }
                    td { a href={"/browse/" (enc_ws(ws)) "?snapshot=" (s.id.0.to_hex())} { code { (s.id.0.short()) } } }
                    td class="num" { (s.stats.files) }
                    td class="num" { (human::size(s.stats.size_bytes)) }
                    td class="num" { (human::size(s.stats.bytes_added)) }
                    td class="num" { (s.stats.skipped) }
                    td { a href={"/ws/" (enc_ws(ws)) "?snapshot=" (s.id.0.to_hex()) "#changes"} { "files changed" }
                         @if s.damaged { " · damaged" } }
                }
            }
        }
    };
    Ok(html::ok(html::page(&title, body)))
}

/// 288 marks of 5 minutes from `start`: a snapshot in the slot (damaged,
/// or with skipped entries, marked so), or a gap.
fn strip(snaps: &[&SnapshotRow], start: i64) -> Markup {
    let mut slots: Vec<Option<&SnapshotRow>> = vec![None; SLOTS as usize];
    for s in snaps {
        let i = ((s.time_ns - start) / SLOT_NS) as usize;
        if let Some(slot) = slots.get_mut(i) {
            // A damaged snapshot outranks a whole one in the same slot.
            if slot.is_none_or(|o| !o.damaged) {
                *slot = Some(s);
            }
        }
    }
    let w = 3.0;
    html! {
        svg id="strip" class="strip" viewBox={"0 0 " (SLOTS as f64 * w + 2.0) " 40"} role="img"
            aria-label="snapshots of the last 24 hours, one mark per 5 minutes" {
            @for (i, s) in slots.iter().enumerate() {
                @let t0 = start + i as i64 * SLOT_NS;
                @let class = match s {
                    None => "gap",
                    Some(s) if s.damaged => "damaged",
                    Some(s) if s.stats.skipped > 0 => "skipped",
                    Some(_) => "snap",
                };
                rect class=(class) x=(1.0 + i as f64 * w) y="4" width=(w - 0.6) height="32"
                    data-slot=(i) data-time=(t0) {
                    title {
                        (human::local_time(t0))
                        @if let Some(s) = s { ": snapshot " (s.id.0.short()) @if s.damaged { " (damaged)" } }
                        @else { ": no snapshot" }
                    }
                }
            }
        }
    }
}

fn changes_table(
    ws: &crate::WorkspaceName,
    snap: &SnapshotRow,
    prev: Option<&SnapshotRow>,
    list: Option<&[diff::Change]>,
) -> Markup {
    let (Some(prev), Some(list)) = (prev, list) else {
        return html! { p { "The workspace's first snapshot: every file is new." } };
    };
    let at = snap.id.0.to_hex();
    html! {
        p class="muted" { "Against " (prev.id.0.short()) " (" (human::local_time(prev.time_ns)) "): "
            (list.len()) " changes." }
        table id="changed" {
            tr { th { "change" } th { "path" } th class="num" { "size change" } }
            @for c in list.iter().take(MAX_CHANGES) {
                tr {
                    td { (c.kind.label()) }
                    td { a href={"/browse/" (enc_ws(ws)) "/" (html::enc_path(&c.path)) "?snapshot=" (at)} { (name(&c.path)) } }
                    td class="num" { (c.size_change()) }
                }
            }
        }
        @if list.len() > MAX_CHANGES { p class="muted" { "… and " (list.len() - MAX_CHANGES) " more (see `wsnap diff`)." } }
    }
}
