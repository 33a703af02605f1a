//! Browsing: `/browse/USER/PROJECT/PATH?at=TIME` (a directory's entries,
//! or a file's metadata and, up to a size cap, its text with line
//! numbers), `/diff/USER/PROJECT?from=&to=` (as `wsnap diff`) and
//! `/history/USER/PROJECT/PATH` (as `wsnap log`).
//!
//! TIME takes the forms of the CLI's `--at` (`timespec::parse`); links
//! carry the snapshot id that TIME resolved to, so a page's links keep
//! pointing at the snapshot shown.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::Uri;
use maud::{html, Markup};

use super::app::App;
use super::html::{self, enc_path, enc_ws, name, nbsp, HttpError, Page};
use super::request::{self, blocking, Query as Params};
use crate::diff;
use crate::escape::Escaped;
use crate::human;
use crate::model::SnapshotRow;
use crate::select::Node;
use crate::tree::{Entry, EntryKind};

/// What the browse page shows.
enum Shown {
    Dir(Vec<Entry>),
    File { entry: Entry, text: Option<Vec<u8>> },
    Symlink(Entry),
}

/// `GET /browse/USER/PROJECT/PATH?at=TIME|snapshot=ID`.
pub async fn tree(State(app): State<Arc<App>>, uri: Uri, Query(q): Query<Params>) -> Page {
    let t = request::target(&uri)?;
    let sel = request::selector(&q)?;
    let (ws, path) = (t.ws.clone(), t.path.clone());
    let (snap, shown) = blocking(&app, move |app| {
        let reading = app.reading()?;
        let snap = reading.select(&ws, &sel)?;
        let shown = match reading.resolve(&snap, &path)? {
            Node::Root(tree) => Shown::Dir(tree.entries),
            Node::Entry(e) => match &e.kind {
                EntryKind::Dir { .. } => Shown::Dir(
                    reading
                        .list(&snap, &path)?
                        .entries
                        .into_iter()
                        .map(|(_, e)| e)
                        .collect(),
                ),
                EntryKind::Symlink { .. } => Shown::Symlink(e),
                EntryKind::File { .. } => {
                    let text = if e.size <= app.limits.text_bytes {
                        let mut buf = Vec::with_capacity(e.size as usize);
                        reading.cat(&snap, &path, &mut buf, Path::new("<page>"))?;
                        Some(buf)
                    } else {
                        None
                    };
                    Shown::File { entry: e, text }
                }
            },
        };
        Ok((snap, shown))
    })
    .await?;
    let ws = &t.ws;
    let at = snap.id.0.to_hex();
    let here = if t.path.is_empty() {
        String::new()
    } else {
        format!("/{}", enc_path(&t.path))
    };
    let crumbs = crumbs(ws, &t.path, &at);
    let title = format!("{}/{}/{}", name(&ws.user), name(&ws.project), name(&t.path));
    let body = html! {
        h1 { "Browse " (crumbs) }
        form class="inline" method="get" {
            label { "as of " input type="text" name="at" value=(q.get("at").cloned().unwrap_or_default())
                placeholder="latest, 2026-11-30 14:30, 20261130_143000, RFC 3339…"; }
            button type="submit" { "Go" }
        }
        p class="muted" { "Snapshot " code { (snap.id.0.short()) } " taken " (human::local_time(snap.time_ns))
            @if snap.damaged { " — " span class="error" { "damaged: some files cannot be read" } } }
        @match &shown {
            Shown::Dir(entries) => {
                p { a href={"/download/" (enc_ws(ws)) (here) "?snapshot=" (at)} { "Download this directory as .tar.gz" }
                    @if !t.path.is_empty() { " · " a href={"/history/" (enc_ws(ws)) (here)} { "History" } } }
                (listing(ws, &t.path, entries, &at))
            }
            Shown::Symlink(e) => {
                (meta(e))
                @if let EntryKind::Symlink { target } = &e.kind { p { "Symlink to " code { (name(target)) } } }
                p { a href={"/history/" (enc_ws(ws)) (here)} { "History" } }
            }
            Shown::File { entry, text } => {
                (meta(entry))
                p { a id="download" href={"/download/" (enc_ws(ws)) (here) "?snapshot=" (at)} { "Download" }
                    " · " a href={"/history/" (enc_ws(ws)) (here)} { "History" } }
                (text_view(entry, text.as_deref(), app.limits.text_bytes))
            }
        }
    };
    Ok(html::ok(html::page(&title, body)))
}

/// `USER/PROJECT / a / b`, each a link to that directory.
fn crumbs(ws: &crate::WorkspaceName, path: &[u8], at: &str) -> Markup {
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    html! {
        a href={"/ws/" (enc_ws(ws))} { (name(&ws.user)) "/" (name(&ws.project)) }
        " " a href={"/browse/" (enc_ws(ws)) "?snapshot=" (at)} { "/" }
        @for i in 0..parts.len() {
            @let p = parts[..=i].join(&b'/');
            " " a href={"/browse/" (enc_ws(ws)) "/" (enc_path(&p)) "?snapshot=" (at)} { (name(parts[i])) } " /"
        }
    }
}

fn kind(e: &Entry) -> &'static str {
    match e.kind {
        EntryKind::File { .. } => "file",
        EntryKind::Dir { .. } => "dir",
        EntryKind::Symlink { .. } => "symlink",
    }
}

fn listing(ws: &crate::WorkspaceName, dir: &[u8], entries: &[Entry], at: &str) -> Markup {
    html! {
        table id="entries" {
            tr { th { "name" } th { "type" } th { "mode" } th class="num" { "size" } th { "modified" } th { "owner" } }
            @for e in entries {
                @let p = crate::tree::join_rel(dir, &e.name);
                tr {
                    td { a href={"/browse/" (enc_ws(ws)) "/" (enc_path(&p)) "?snapshot=" (at)} {
                        (name(&e.name)) @if matches!(e.kind, EntryKind::Dir { .. }) { "/" } } }
                    td { (kind(e)) }
                    td { code { (format!("{:04o}", e.mode)) } }
                    td class="num" { @if matches!(e.kind, EntryKind::Dir { .. }) { (nbsp()) } @else { (human::size(e.size)) } }
                    td { (human::local_time(e.mtime_ns)) }
                    td { (e.uid) ":" (e.gid) }
                }
            }
        }
        @if entries.is_empty() { p class="muted" { "(empty directory)" } }
    }
}

fn meta(e: &Entry) -> Markup {
    html! {
        table id="meta" {
            tr { th { "name" } td { (name(&e.name)) } }
            tr { th { "type" } td { (kind(e)) } }
            tr { th { "size" } td { (human::size(e.size)) " (" (e.size) " bytes)" } }
            tr { th { "mode" } td { code { (format!("{:04o}", e.mode)) } } }
            tr { th { "modified" } td { (human::local_time(e.mtime_ns)) } }
            tr { th { "owner" } td { "uid " (e.uid) ", gid " (e.gid) } }
        }
    }
}

fn text_view(e: &Entry, text: Option<&[u8]>, cap: u64) -> Markup {
    match text {
        None => html! { p class="muted" { "Not shown: " (human::size(e.size)) " is more than "
        (human::size(cap)) "; download it." } },
        Some(t) if t.contains(&0) => {
            html! { p class="muted" { "Binary file (holds NUL bytes); download it." } }
        }
        Some(t) => {
            let s = String::from_utf8_lossy(t);
            html! {
                table class="src" id="text" {
                    @for (i, line) in s.lines().enumerate() {
                        tr { td class="ln" { (i + 1) } td { (line) } }
                    }
                }
            }
        }
    }
}

/// `GET /diff/USER/PROJECT?from=ID|TIME&to=ID|TIME` (as `wsnap diff`).
pub async fn diff(State(app): State<Arc<App>>, uri: Uri, Query(q): Query<Params>) -> Page {
    let t = request::target(&uri)?;
    let from = q.get("from").cloned().unwrap_or_default();
    let to = q.get("to").cloned().unwrap_or_default();
    let ws = t.ws.clone();
    let form = html! {
        form class="inline" method="get" {
            label { "from " input type="text" name="from" value=(from) placeholder="TIME or snapshot id"; }
            label { "to " input type="text" name="to" value=(to) placeholder="TIME or snapshot id"; }
            button type="submit" { "Diff" }
        }
    };
    let title = format!("{}/{}", name(&ws.user), name(&ws.project));
    if from.trim().is_empty() || to.trim().is_empty() {
        let body = html! { h1 { "Diff " (title) } (form) p class="muted" { "Give two times or snapshot ids (as `wsnap diff`)." } };
        return Ok(html::ok(html::page("Diff", body)));
    }
    let (a, b) = (diff::parse_selector(&from)?, diff::parse_selector(&to)?);
    let (s1, s2, changes) = blocking(&app, move |app| {
        let reading = app.reading()?;
        let s1 = reading.select(&ws, &a)?;
        let s2 = reading.select(&ws, &b)?;
        let (c, _) = reading.with_catalog(|cat| diff::diff(reading.store(), cat, &s1, &s2))?;
        Ok((s1, s2, c))
    })
    .await?;
    let sum = diff::DiffSummary::of(&changes);
    let ws = &t.ws;
    let body = html! {
        h1 { "Diff " (title) }
        (form)
        p { (snap_label(&s1)) " → " (snap_label(&s2)) ": " (sum.added) " added, " (sum.removed) " removed, "
            (sum.modified) " modified, " (sum.type_changed) " type changed; +" (human::size(sum.bytes_grown))
            " / −" (human::size(sum.bytes_shrunk)) }
        table id="diff" {
            tr { th { "change" } th { "path" } th { "before" } th { "after" } }
            @for c in &changes {
                @let side = |s: &SnapshotRow| format!("/browse/{}/{}?snapshot={}", enc_ws(ws), enc_path(&c.path), s.id.0.to_hex());
                tr {
                    td { (c.kind.label()) }
                    td { (name(&c.path)) }
                    td { @if let Some(o) = &c.old { a href=(side(&s1)) { (o.kind.label()) " " (human::size(o.size)) } } }
                    td { @if let Some(n) = &c.new { a href=(side(&s2)) { (n.kind.label()) " " (human::size(n.size)) } } }
                }
            }
        }
    };
    Ok(html::ok(html::page("Diff", body)))
}

fn snap_label(s: &SnapshotRow) -> Markup {
    html! { code { (s.id.0.short()) } " (" (human::local_time(s.time_ns)) ")" }
}

/// `GET /history/USER/PROJECT/PATH` (as `wsnap log`).
pub async fn history(State(app): State<Arc<App>>, uri: Uri) -> Page {
    let t = request::target(&uri)?;
    if t.path.is_empty() {
        return Err(HttpError::bad(
            "give a path inside the workspace: /history/USER/PROJECT/PATH",
        ));
    }
    let (ws, path) = (t.ws.clone(), t.path.clone());
    let events = blocking(&app, move |app| {
        let reading = app.reading()?;
        let snaps = reading.snapshots(&ws)?;
        let (ev, _) = reading.with_catalog(|cat| diff::log(reading.store(), cat, &snaps, &path))?;
        Ok(ev)
    })
    .await?;
    let ws = &t.ws;
    let title = format!("{}/{}/{}", name(&ws.user), name(&ws.project), name(&t.path));
    tracing::debug!("history of {}", Escaped(&t.path));
    let body = html! {
        h1 { "History of " (title) }
        p class="muted" { (events.len()) " snapshots in which it changed, oldest first." }
        table id="history" {
            tr { th { "snapshot" } th { "change" } th { "type" } th class="num" { "size" } th { "mode" } }
            @for ev in &events {
                @let s = &ev.snapshot;
                tr {
                    td { a href={"/browse/" (enc_ws(ws)) "/" (enc_path(&t.path)) "?snapshot=" (s.id.0.to_hex())} { (snap_label(s)) } }
                    td { (ev.change.kind.label()) }
                    td { @if let Some(n) = &ev.change.new { (n.kind.label()) } }
                    td class="num" { @if let Some(n) = &ev.change.new { (human::size(n.size)) } }
                    td { @if let Some(n) = &ev.change.new { code { (format!("{:04o}", n.mode)) } } }
                }
            }
        }
        p { a href={"/download/" (enc_ws(ws)) "/" (enc_path(&t.path))} { "Download the latest" } " · "
            a href={"/ws/" (enc_ws(ws))} { "Workspace" } }
    };
    Ok(html::ok(html::page("History", body)))
}
