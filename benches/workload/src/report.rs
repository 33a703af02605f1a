//! Results: `results.md` (tables and the targets), `results.json`
//! (everything, per tick) and `store-size.svg` (store size over ticks, log y).

use crate::gen::{Floor, TickSummary};
use crate::proc::Du;
use crate::tools::{Kind, Tool};
use crate::Args;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

pub struct Meta {
    pub args: Args,
    pub files0: u64,
    pub bytes0: u64,
    pub files1: u64,
    pub bytes1: u64,
    pub excluded_files: u64,
    pub excluded_bytes: u64,
    pub gen_s: f64,
    pub total_s: f64,
    pub verify_ws: String,
    pub mid: u64,
    pub notes: Vec<String>,
    pub wsnap_rev: String,
}

/// Median, p95 and max of `v` (nearest rank).
pub fn stats(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    (rank(0.5), rank(0.95), s[s.len() - 1])
}

struct Row {
    name: &'static str,
    version: String,
    first_s: f64,
    med: f64,
    p95: f64,
    max: f64,
    cpu_med: f64,
    cpu_total: f64,
    rss_mib: f64,
    disk_keep: Option<Du>,
    disk_end: Du,
    restore_s: f64,
    restore_ok: bool,
    prune_s: f64,
    after: Du,
    snapshots_after: Option<usize>,
}

fn du_at(t: &Tool, tick: u64) -> Option<Du> {
    t.du.iter().find(|d| d.0 == tick).map(|d| d.1)
}

fn row(t: &Tool, ticks: u64, keep: u64) -> Row {
    let walls: Vec<f64> = t.ticks.iter().map(|r| r.usage.wall_s).collect();
    let cpus: Vec<f64> = t.ticks.iter().map(|r| r.usage.cpu_s).collect();
    let (med, p95, max) = stats(&walls);
    let rss = t
        .ticks
        .iter()
        .map(|r| r.usage.maxrss_kb)
        .chain([t.first.maxrss_kb])
        .max()
        .unwrap_or(0);
    let rss = rss.max(t.restore.as_ref().map_or(0, |r| r.0.maxrss_kb));
    let rss = rss.max(t.prune.iter().map(|p| p.1.maxrss_kb).max().unwrap_or(0));
    Row {
        name: t.name(),
        version: t.version.clone(),
        first_s: t.first.wall_s,
        med,
        p95,
        max,
        cpu_med: stats(&cpus).0,
        cpu_total: cpus.iter().sum(),
        rss_mib: rss as f64 / 1024.0,
        disk_keep: du_at(t, keep.min(ticks)),
        disk_end: du_at(t, ticks).unwrap_or_default(),
        restore_s: t.restore.as_ref().map_or(f64::NAN, |r| r.0.wall_s),
        restore_ok: t.restore.as_ref().is_some_and(|r| r.1.is_ok()),
        prune_s: t.prune.iter().map(|p| p.1.wall_s).sum(),
        after: t.du_after_prune.unwrap_or_default(),
        snapshots_after: t.snapshots_after_prune,
    }
}

fn n(x: u64) -> String {
    let s = x.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            o.push(',');
        }
        o.push(c);
    }
    o
}

fn floor_at(series: &[(u64, Floor)], tick: u64) -> Floor {
    series
        .iter()
        .rev()
        .find(|f| f.0 <= tick)
        .map(|f| f.1.clone())
        .unwrap_or_default()
}

pub fn write(
    out: &Path,
    m: &Meta,
    tools: &[Tool],
    floor: &Floor,
    series: &[(u64, Floor)],
    ticks: &[TickSummary],
) {
    let a = &m.args;
    let keep_tick = (a.keep as u64).min(a.ticks);
    let rows: Vec<Row> = tools
        .iter()
        .map(|t| row(t, a.ticks, a.keep as u64))
        .collect();
    let fk = floor_at(series, keep_tick);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# wsnap-bench: {} ticks, scale {}, {} workspaces\n",
        a.ticks, a.scale, a.workspaces
    );
    let _ = writeln!(
        md,
        "wsnap `{}`; seed {}; keep-last {}; restic/borg granularity: {}; wall time of the run {:.0} s.\n",
        m.wsnap_rev, a.seed, a.keep, a.peer_granularity, m.total_s
    );
    let _ = writeln!(
        md,
        "Root at tick 0: {} files / {} bytes included ({} files / {} bytes excluded by every tool); after tick {}: {} files / {} bytes.\n",
        n(m.files0),
        n(m.bytes0),
        n(m.excluded_files),
        n(m.excluded_bytes),
        a.ticks,
        n(m.files1),
        n(m.bytes1)
    );
    let _ = writeln!(
        md,
        "Floor (every distinct file content ever seen, after excludes): {} contents, {} bytes raw, {} bytes zstd-3; counting appends and in-place edits as the bytes written: {} raw, {} zstd-3.\n",
        n(floor.contents),
        n(floor.raw),
        n(floor.zstd),
        n(floor.delta_raw),
        n(floor.delta_zstd)
    );
    let _ = writeln!(md, "| tool | first s | median tick s | p95 tick s | max tick s | median tick CPU s | CPU s all ticks | peak RSS MiB | disk at tick {keep_tick} | × zstd floor | × delta floor | disk at tick {} | restore s | verified | prune s | disk after prune | snapshots after prune |", a.ticks);
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
    );
    for r in &rows {
        let dk = r.disk_keep.unwrap_or_default().allocated;
        let _ = writeln!(
            md,
            "| {} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {} | {:.2} | {:.2} | {} | {:.2} | {} | {:.2} | {} | {} |",
            if r.name == "wsnap" { "**wsnap**" } else { r.name },
            r.first_s,
            r.med,
            r.p95,
            r.max,
            r.cpu_med,
            r.cpu_total,
            r.rss_mib,
            n(dk),
            dk as f64 / fk.zstd as f64,
            dk as f64 / fk.delta_zstd as f64,
            n(r.disk_end.allocated),
            r.restore_s,
            if r.restore_ok { "yes" } else { "NO" },
            r.prune_s,
            n(r.after.allocated),
            r.snapshots_after.map_or("?".into(), |x| x.to_string()),
        );
    }
    let _ = writeln!(
        md,
        "| floor (zstd-3) | | | | | | | | {} | 1.00 | | {} | | | | | |\n",
        n(fk.zstd),
        n(floor.zstd)
    );
    let _ = writeln!(md, "Disk is allocated bytes (`du`, st_blocks × 512, hard links once); results.json also has apparent sizes. Restore: `{}` as it was at tick {}, compared byte for byte (and mode) with a copy taken at that tick.\n", m.verify_ws, m.mid);

    let ws = rows.iter().find(|r| r.name == "wsnap");
    let mut targets = Vec::new();
    if let Some(w) = ws {
        let _ = writeln!(md, "| wsnap / peer | median tick | p95 tick | CPU all ticks | disk at tick {keep_tick} | restore | prune | disk after prune |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for r in rows.iter().filter(|r| r.name != "wsnap") {
            let dw = w.disk_keep.unwrap_or_default().allocated as f64;
            let dr = r.disk_keep.unwrap_or_default().allocated as f64;
            let _ = writeln!(
                md,
                "| {} | {:.3} | {:.3} | {:.3} | {:.4} | {:.3} | {:.3} | {:.4} |",
                r.name,
                w.med / r.med,
                w.p95 / r.p95,
                w.cpu_total / r.cpu_total,
                dw / dr,
                w.restore_s / r.restore_s,
                w.prune_s / r.prune_s,
                w.after.allocated as f64 / r.after.allocated as f64
            );
        }
        md.push('\n');
        let dw = w.disk_keep.unwrap_or_default().allocated as f64;
        let mut target = |what: &str, got: f64, limit: f64| {
            let ok = got <= limit;
            targets.push(json!({"target": what, "value": got, "limit": limit, "met": ok}));
            format!(
                "| {what} | {got:.4} | ≤ {limit:.4} | {} |\n",
                if ok { "met" } else { "**not met**" }
            )
        };
        let mut t =
            String::from("| target (issue #4) | measured | limit | |\n|---|---:|---:|---|\n");
        for r in &rows {
            let dr = r.disk_keep.unwrap_or_default().allocated as f64;
            match r.name {
                "restic" => {
                    t += &target("disk ≤ 0.6 × restic", dw / dr, 0.6);
                    t += &target("median tick ≤ 0.25 × restic", w.med / r.med, 0.25);
                    t += &target(
                        "prune ≤ 0.3 × restic forget --prune",
                        w.prune_s / r.prune_s,
                        0.3,
                    );
                }
                "borg" => t += &target("disk ≤ 0.6 × borg", dw / dr, 0.6),
                "old-script" => t += &target("disk ≤ 1/50 old script", dw / dr, 0.02),
                _ => {}
            }
        }
        t += &target("disk ≤ 1.3 × zstd floor", dw / fk.zstd as f64, 1.3);
        t += &target(
            "disk ≤ 1.3 × zstd delta floor (stricter)",
            dw / fk.delta_zstd as f64,
            1.3,
        );
        t += &target("peak RSS MiB < 200", w.rss_mib, 200.0);
        md.push_str(&t);
        md.push('\n');
    }
    let mut notes = m.notes.clone();
    for t in tools {
        for x in &t.notes {
            notes.push(format!("{}: {x}", t.name()));
        }
        if let Some((_, Err(e))) = &t.restore {
            notes.push(format!("{}: restore NOT verified: {e}", t.name()));
        }
    }
    if !notes.is_empty() {
        md.push_str("Notes:\n");
        for x in &notes {
            let _ = writeln!(md, "- {x}");
        }
    }
    let active: usize = ticks.iter().filter(|s| !s.active.is_empty()).count();
    let _ = writeln!(
        md,
        "\nTicks with any edit: {active} of {}; files written {}, bytes written {}; added {}, deleted {}, renamed {}; big-file in-place edits {}, big changes {}.",
        ticks.len(),
        ticks.iter().map(|s| s.files_written).sum::<u64>(),
        n(ticks.iter().map(|s| s.bytes_written).sum::<u64>()),
        ticks.iter().map(|s| s.added).sum::<u64>(),
        ticks.iter().map(|s| s.deleted).sum::<u64>(),
        ticks.iter().map(|s| s.renamed).sum::<u64>(),
        ticks.iter().filter(|s| s.big_edit).count(),
        ticks.iter().filter(|s| s.big_change).count()
    );
    std::fs::write(out.join("results.md"), &md).expect("write results.md");

    let du_json = |d: Du| json!({"apparent": d.apparent, "allocated": d.allocated});
    let tools_json: Vec<_> = tools
        .iter()
        .zip(&rows)
        .map(|(t, r)| {
            json!({
                "tool": t.name(), "version": r.version,
                "first": {"wall_s": t.first.wall_s, "cpu_s": t.first.cpu_s, "maxrss_kb": t.first.maxrss_kb},
                "tick_wall_s": {"median": r.med, "p95": r.p95, "max": r.max},
                "tick_cpu_s": {"median": r.cpu_med, "total": r.cpu_total},
                "peak_rss_mib": r.rss_mib,
                "per_tick": t.ticks.iter().map(|x| json!([x.tick, x.usage.wall_s, x.usage.cpu_s, x.usage.maxrss_kb, x.usage.failures])).collect::<Vec<_>>(),
                "du": t.du.iter().map(|(k, d)| json!([k, d.apparent, d.allocated])).collect::<Vec<_>>(),
                "restore": t.restore.as_ref().map(|(u, c)| json!({"wall_s": u.wall_s, "cpu_s": u.cpu_s, "maxrss_kb": u.maxrss_kb,
                    "verified": c.is_ok(), "files": c.as_ref().map(|x| x.0).ok(), "bytes": c.as_ref().map(|x| x.1).ok(),
                    "error": c.as_ref().err()})),
                "prune": t.prune.iter().map(|(k, u)| json!({"step": k, "wall_s": u.wall_s, "cpu_s": u.cpu_s, "maxrss_kb": u.maxrss_kb, "failures": u.failures})).collect::<Vec<_>>(),
                "du_after_prune": t.du_after_prune.map(du_json),
                "snapshots_after_prune": t.snapshots_after_prune,
                "notes": t.notes,
            })
        })
        .collect();
    let fj = |f: &Floor| json!({"contents": f.contents, "raw": f.raw, "zstd": f.zstd, "delta_raw": f.delta_raw, "delta_zstd": f.delta_zstd});
    let j = json!({
        "args": format!("{a:?}"),
        "ticks": a.ticks, "keep": a.keep, "scale": a.scale, "workspaces": a.workspaces, "seed": a.seed,
        "peer_granularity": a.peer_granularity, "wsnap_rev": m.wsnap_rev,
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "loadavg_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "root": {"files_tick0": m.files0, "bytes_tick0": m.bytes0, "files_end": m.files1, "bytes_end": m.bytes1,
                  "excluded_files": m.excluded_files, "excluded_bytes": m.excluded_bytes, "generate_s": m.gen_s},
        "floor": fj(floor),
        "floor_series": series.iter().map(|(t, f)| json!([t, f.raw, f.zstd, f.delta_raw, f.delta_zstd])).collect::<Vec<_>>(),
        "tools": tools_json,
        "targets": targets,
        "verify_workspace": m.verify_ws, "verify_tick": m.mid,
        "notes": notes,
        "total_s": m.total_s,
        "workload": ticks.iter().enumerate().map(|(i, s)| json!({"tick": i + 1, "active": s.active, "files_written": s.files_written,
            "bytes_written": s.bytes_written, "added": s.added, "deleted": s.deleted, "renamed": s.renamed,
            "big_edit": s.big_edit, "big_change": s.big_change})).collect::<Vec<_>>(),
    });
    std::fs::write(
        out.join("results.json"),
        serde_json::to_vec_pretty(&j).expect("json"),
    )
    .expect("write results.json");
    std::fs::write(out.join("store-size.svg"), svg(tools, series, a.ticks)).expect("write svg");
}

const COLORS: &[&str] = &[
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Store size (allocated bytes) over ticks per tool, log-scale y, by hand.
fn svg(tools: &[Tool], series: &[(u64, Floor)], ticks: u64) -> String {
    let (w, h, l, r, t, b) = (900.0, 520.0, 90.0, 170.0, 30.0, 50.0);
    // (label, colour, points, dashed)
    type Line<'a> = (String, &'a str, Vec<(u64, f64)>, bool);
    let mut lines: Vec<Line> = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let pts = tool
            .du
            .iter()
            .map(|(k, d)| (*k, d.allocated as f64))
            .collect();
        let c = COLORS[match tool.kind {
            Kind::Wsnap => 0,
            Kind::Restic => 1,
            Kind::Borg => 2,
            Kind::OldScript => 3,
            Kind::LinkDest => 4,
        }];
        let _ = i;
        lines.push((tool.name().to_string(), c, pts, false));
    }
    lines.push((
        "floor zstd".into(),
        "#555555",
        series.iter().map(|(k, f)| (*k, f.zstd as f64)).collect(),
        true,
    ));
    lines.push((
        "delta floor zstd".into(),
        "#999999",
        series
            .iter()
            .map(|(k, f)| (*k, f.delta_zstd as f64))
            .collect(),
        true,
    ));
    let ys = lines
        .iter()
        .flat_map(|x| x.2.iter().map(|p| p.1))
        .filter(|v| *v > 0.0);
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for y in ys {
        lo = lo.min(y);
        hi = hi.max(y);
    }
    if hi <= 0.0 {
        lo = 1.0;
        hi = 10.0;
    }
    let (llo, lhi) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let px = |k: u64| l + (w - l - r) * k as f64 / ticks.max(1) as f64;
    let py = |v: f64| t + (h - t - b) * (1.0 - (v.max(1.0).log10() - llo) / (lhi - llo));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{l}\" y=\"18\" font-size=\"14\">Store size on disk over ticks (log scale)</text>\n"
    );
    let mut e = llo;
    while e <= lhi {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powf(e);
            if v.log10() > lhi + 1e-9 {
                continue;
            }
            let y = py(v);
            let _ = writeln!(
                s,
                "<line x1=\"{l}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#{}\"/>",
                w - r,
                if m == 1.0 { "ccc" } else { "eee" }
            );
            let label = if v >= 1e9 {
                format!("{} GB", v / 1e9)
            } else if v >= 1e6 {
                format!("{} MB", v / 1e6)
            } else {
                format!("{} kB", v / 1e3)
            };
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
                l - 6.0,
                y + 4.0
            );
        }
        e += 1.0;
    }
    for i in 0..=5 {
        let k = ticks * i / 5;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{k}</text>",
            px(k),
            h - b + 18.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">tick (5 minutes each)</text>",
        (l + w - r) / 2.0,
        h - 10.0
    );
    let _ = writeln!(
        s,
        "<rect x=\"{l}\" y=\"{t}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>",
        w - l - r,
        h - t - b
    );
    for (i, (name, c, pts, dashed)) in lines.iter().enumerate() {
        let p: Vec<String> = pts
            .iter()
            .map(|(k, v)| format!("{:.1},{:.1}", px(*k), py(*v)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{} points=\"{}\"/>",
            if *dashed {
                " stroke-dasharray=\"6,4\""
            } else {
                ""
            },
            p.join(" ")
        );
        let y = t + 16.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{c}\" stroke-width=\"2\"{}/>",
            w - r + 10.0,
            w - r + 34.0,
            if *dashed {
                " stroke-dasharray=\"6,4\""
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\">{name}</text>",
            w - r + 40.0,
            y + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::stats;

    #[test]
    fn nearest_rank_stats() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(stats(&v), (50.0, 95.0, 100.0));
        assert_eq!(stats(&[3.0]), (3.0, 3.0, 3.0));
        assert!(stats(&[]).0.is_nan());
    }
}
