//! The status report in the Prometheus text exposition format, for
//! node_exporter's textfile collector, and its atomic write.

use std::path::Path;

use crate::durable;

use super::report::{Level, StatusReport, WorkspaceState, WorkspaceStatus};

/// Escape a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

struct Prom {
    out: String,
}

impl Prom {
    fn metric(&mut self, name: &str, kind: &str, help: &str) {
        self.out.push_str(&format!("# HELP {name} {help}\n"));
        self.out.push_str(&format!("# TYPE {name} {kind}\n"));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            self.out.push('{');
            self.out.push_str(&l.join(","));
            self.out.push('}');
        }
        self.out.push_str(&format!(" {value}\n"));
    }
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// The report in the Prometheus text format (for node_exporter's textfile
/// collector). `report` is `None` when the store could not be read: only
/// `wsnap_status 3` and the time are written then.
pub fn prometheus_text(level: Level, report: Option<&StatusReport>, now_ns: i64) -> String {
    let mut p = Prom { out: String::new() };
    p.metric(
        "wsnap_status",
        "gauge",
        "Overall status as a Nagios code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    );
    p.sample("wsnap_status", &[], f64::from(level.exit_code()));
    p.metric(
        "wsnap_status_time_seconds",
        "gauge",
        "When this status was computed (Unix time).",
    );
    p.sample("wsnap_status_time_seconds", &[], secs(now_ns));
    let Some(r) = report else {
        return p.out;
    };
    p.metric(
        "wsnap_max_age_seconds",
        "gauge",
        "Age beyond which a workspace's newest snapshot counts as stale.",
    );
    p.sample("wsnap_max_age_seconds", &[], secs(r.max_age_ns));
    if let Some(run) = &r.last_run {
        p.metric(
            "wsnap_last_run_start_time_seconds",
            "gauge",
            "Start of the last snapshot run (Unix time).",
        );
        p.sample(
            "wsnap_last_run_start_time_seconds",
            &[],
            secs(run.started_ns),
        );
        p.metric(
            "wsnap_last_run_end_time_seconds",
            "gauge",
            "End of the last snapshot run (Unix time).",
        );
        p.sample(
            "wsnap_last_run_end_time_seconds",
            &[],
            secs(run.finished_ns),
        );
        p.metric(
            "wsnap_last_run_workspaces",
            "gauge",
            "Workspaces of the last snapshot run, by result.",
        );
        p.sample(
            "wsnap_last_run_workspaces",
            &[("result", "ok")],
            run.workspaces_ok as f64,
        );
        p.sample(
            "wsnap_last_run_workspaces",
            &[("result", "failed")],
            run.workspaces_failed as f64,
        );
        p.metric(
            "wsnap_last_run_entries_skipped",
            "gauge",
            "Entries the last snapshot run could not store.",
        );
        p.sample(
            "wsnap_last_run_entries_skipped",
            &[],
            run.entries_skipped as f64,
        );
    }
    p.metric(
        "wsnap_retention_held_workspaces",
        "gauge",
        "Workspaces whose snapshots snapshot --prune keeps whole (failed or skipped entries).",
    );
    p.sample(
        "wsnap_retention_held_workspaces",
        &[],
        r.retention_held.len() as f64,
    );
    p.metric(
        "wsnap_store_size_bytes",
        "gauge",
        "Bytes of the store's files, by part (packs, catalog, tmp).",
    );
    p.sample(
        "wsnap_store_size_bytes",
        &[("part", "packs")],
        r.store.pack_bytes as f64,
    );
    p.sample(
        "wsnap_store_size_bytes",
        &[("part", "catalog")],
        r.store.catalog_bytes as f64,
    );
    p.sample(
        "wsnap_store_size_bytes",
        &[("part", "tmp")],
        r.store.tmp_bytes as f64,
    );
    p.metric(
        "wsnap_filesystem_avail_bytes",
        "gauge",
        "Bytes available on the store's file system.",
    );
    p.sample(
        "wsnap_filesystem_avail_bytes",
        &[],
        r.space.avail_bytes as f64,
    );
    p.metric(
        "wsnap_filesystem_size_bytes",
        "gauge",
        "Size of the store's file system in bytes.",
    );
    p.sample(
        "wsnap_filesystem_size_bytes",
        &[],
        r.space.size_bytes as f64,
    );
    p.metric(
        "wsnap_filesystem_min_free_bytes",
        "gauge",
        "The --min-free threshold in bytes.",
    );
    p.sample(
        "wsnap_filesystem_min_free_bytes",
        &[],
        r.space.min_free_bytes as f64,
    );
    p.metric(
        "wsnap_workspaces",
        "gauge",
        "Workspaces by state (ok, stale, missing, not_under_root).",
    );
    for state in [
        WorkspaceState::Ok,
        WorkspaceState::Stale,
        WorkspaceState::Missing,
        WorkspaceState::NotUnderRoot,
    ] {
        p.sample(
            "wsnap_workspaces",
            &[("state", state.label())],
            r.count(state) as f64,
        );
    }
    if !r.remotes.is_empty() {
        p.metric(
            "wsnap_remote_last_push_time_seconds",
            "gauge",
            "When the last successful push to each remote finished (Unix time; absent: never).",
        );
        for x in &r.remotes {
            if let Some(t) = x.last_push_ns {
                p.sample(
                    "wsnap_remote_last_push_time_seconds",
                    &[("remote", x.name.as_str())],
                    secs(t),
                );
            }
        }
        p.metric(
            "wsnap_remote_lag_seconds",
            "gauge",
            "How far each remote's newest snapshot is behind the store's.",
        );
        for x in &r.remotes {
            p.sample(
                "wsnap_remote_lag_seconds",
                &[("remote", x.name.as_str())],
                secs(x.lag_ns(now_ns)),
            );
        }
        p.metric(
            "wsnap_remote_push_failing",
            "gauge",
            "1 when the last push to a remote failed after its last success, else 0.",
        );
        for x in &r.remotes {
            p.sample(
                "wsnap_remote_push_failing",
                &[("remote", x.name.as_str())],
                if x.last_error.is_some() { 1.0 } else { 0.0 },
            );
        }
    }
    let names: Vec<(String, String, &WorkspaceStatus)> = r
        .workspaces
        .iter()
        .map(|w| {
            (
                String::from_utf8_lossy(&w.workspace.user).into_owned(),
                String::from_utf8_lossy(&w.workspace.project).into_owned(),
                w,
            )
        })
        .collect();
    p.metric(
        "wsnap_workspace_last_snapshot_time_seconds",
        "gauge",
        "Recorded time of each workspace's newest snapshot (Unix time).",
    );
    for (u, pr, w) in &names {
        if let Some(t) = w.newest_ns {
            p.sample(
                "wsnap_workspace_last_snapshot_time_seconds",
                &[("user", u.as_str()), ("project", pr.as_str())],
                secs(t),
            );
        }
    }
    p.metric(
        "wsnap_workspace_snapshots",
        "gauge",
        "Snapshots kept of each workspace.",
    );
    for (u, pr, w) in &names {
        p.sample(
            "wsnap_workspace_snapshots",
            &[("user", u.as_str()), ("project", pr.as_str())],
            w.snapshots as f64,
        );
    }
    p.metric(
        "wsnap_workspace_stale",
        "gauge",
        "1 when a workspace under the root has no snapshot within max age (or none at all), else 0.",
    );
    for (u, pr, w) in &names {
        if w.state != WorkspaceState::NotUnderRoot {
            let bad = matches!(w.state, WorkspaceState::Stale | WorkspaceState::Missing);
            p.sample(
                "wsnap_workspace_stale",
                &[("user", u.as_str()), ("project", pr.as_str())],
                if bad { 1.0 } else { 0.0 },
            );
        }
    }
    p.out
}

/// Write `text` to `path` atomically (temporary file in the same directory,
/// fsync, rename), mode 0644 so node_exporter can read it.
pub fn write_prometheus(path: &Path, text: &str) -> std::io::Result<()> {
    durable::replace_file(path, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn an_unreadable_store_gives_only_the_level_and_the_time() {
        let text = prometheus_text(Level::Unknown, None, 1_500_000_000);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples, ["wsnap_status 3", "wsnap_status_time_seconds 1.5"]);
    }
}
