#!/usr/bin/env python3
"""Turn target/ticks/logs/* into results.json and results.md.

    report.py OUT_DIR
"""

import collections
import json
import math
import os
import statistics
import sys

OUT = sys.argv[1]
LOGS = os.path.join(OUT, "logs")


def read_tsv(name):
    path = os.path.join(LOGS, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        return [dict(zip(head, ln.rstrip("\n").split("\t"))) for ln in f if ln.strip()]


def read_json(name, default=None):
    try:
        with open(os.path.join(LOGS, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def read_jsonl(name):
    out = []
    try:
        with open(os.path.join(LOGS, name)) as f:
            for ln in f:
                try:
                    out.append(json.loads(ln))
                except ValueError:
                    out.append(None)
    except OSError:
        pass
    return out


def fnum(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def pct(vals, p):  # nearest-rank percentile
    v = sorted(vals)
    if not v:
        return None
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


metrics = {r["key"]: r["value"] for r in read_tsv("metrics.tsv")}
raw = read_tsv("raw.tsv")
sizes = read_tsv("sizes.tsv")
tools = metrics.get("tools", "wsnap restic borg").split()
ticks = int(metrics.get("ticks", 0))
keep = int(metrics.get("keep", 288))

res = {"parameters": {k: metrics.get(k) for k in
                      ("args", "ticks", "scale", "seed", "keep", "settle", "nproc", "started", "finished")},
       "versions": {k: v for k, v in metrics.items() if k.endswith("_version") or k.startswith("wsnap_")},
       "workload": {"initial": read_json("workload-init.json"),
                    "final": read_json("workload-final.json")},
       "tools": {}, "sizes": {}, "verify": {}, "notes": []}

# workload activity over the ticks
tk = [t for t in read_jsonl("workload-ticks.jsonl") if t]
act = collections.Counter(len(t["active"]) for t in tk)
res["workload"]["ticks"] = {
    "count": len(tk),
    "active_workspaces_per_tick": {str(k): act[k] for k in sorted(act)},
    "text_files_edited": sum(t["edited"] for t in tk),
    "figures_rewritten": sum(t["figures"] for t in tk),
    "notebooks_edited": sum(t["notebooks"] for t in tk),
    "log_appends": sum(t["log_appends"] for t in tk),
    "big_file_4k_edits": sum(1 for t in tk if t["big_edit"]),
    "files_added": sum(t["added"] for t in tk),
    "files_deleted": sum(t["deleted"] for t in tk),
    "files_renamed": sum(t["renamed"] for t in tk),
}

for tool in tools:
    rows = [r for r in raw if r["tool"] == tool]
    tick_rows = [r for r in rows if r["phase"] == "tick"]
    walls = [fnum(r["wall"]) for r in tick_rows if fnum(r["wall"]) is not None]
    cpus = [fnum(r["user"]) + fnum(r["sys"]) for r in tick_rows
            if fnum(r["user"]) is not None and fnum(r["sys"]) is not None]
    rss = [fnum(r["maxrss_kb"]) for r in tick_rows if fnum(r["maxrss_kb"]) is not None]
    fails = [(r["phase"], r["tick"], r["rc"]) for r in rows if r["rc"] != "0"]
    init = next((r for r in rows if r["phase"] == "initial"), None)
    prune_rows = [r for r in rows if r["phase"] in ("prune", "compact")]
    slowest = sorted(tick_rows, key=lambda r: -(fnum(r["wall"]) or 0))[:5]
    d = {
        "ticks_measured": len(walls),
        "tick_wall_median": statistics.median(walls) if walls else None,
        "tick_wall_mean": statistics.mean(walls) if walls else None,
        "tick_wall_p95": pct(walls, 95),
        "tick_wall_max": max(walls) if walls else None,
        "tick_cpu_median": statistics.median(cpus) if cpus else None,
        "tick_cpu_p95": pct(cpus, 95),
        "tick_cpu_total": sum(cpus) if cpus else None,
        "tick_maxrss_kb_max": max(rss) if rss else None,
        "slowest_ticks": [{"tick": int(r["tick"]), "wall": fnum(r["wall"]), "cpu": (fnum(r["user"]) or 0) + (fnum(r["sys"]) or 0),
                           "load1": fnum(r["load1"])} for r in slowest],
        "initial_wall": fnum(init["wall"]) if init else None,
        "initial_cpu": (fnum(init["user"]) or 0) + (fnum(init["sys"]) or 0) if init else None,
        "prune_wall": sum(fnum(r["wall"]) for r in prune_rows) if prune_rows else None,
        "prune_phases": {r["phase"]: fnum(r["wall"]) for r in prune_rows},
        "failures": [{"phase": p, "tick": t, "rc": c} for p, t, c in fails],
    }
    sz = {r["tick"]: int(r["bytes"]) for r in sizes if r["tool"] == tool}
    d["store_bytes_initial"] = sz.get("0")
    d["store_bytes_after_ticks"] = sz.get("final", sz.get(str(ticks)))
    d["store_bytes_after_prune"] = sz.get("pruned")
    res["sizes"][tool] = sz
    res["tools"][tool] = d

# per-tool extras: what the tools themselves say they added
ws_reports = [x for x in read_jsonl("wsnap.jsonl") if x]
if ws_reports:
    added = [x["report"]["summary"]["added_bytes"] for x in ws_reports
             if isinstance(x.get("report"), dict) and x["tick"] > 0]
    waits = [x.get("settle_wait", 0) for x in ws_reports if x["tick"] > 0]
    failed_ws = [(x["tick"], w) for x in ws_reports if isinstance(x.get("report"), dict)
                 for w in x["report"].get("workspaces", []) if w.get("status") != "ok"]
    res["tools"]["wsnap"]["tick_bytes_added_median"] = statistics.median(added) if added else None
    res["tools"]["wsnap"]["tick_bytes_added_total"] = sum(added) if added else None
    res["tools"]["wsnap"]["settle_wait_ticks"] = sum(1 for w in waits if w > 0)
    res["tools"]["wsnap"]["settle_wait_total_s"] = round(sum(waits), 1)
    res["tools"]["wsnap"]["failed_workspace_runs"] = failed_ws[:20]
    r0 = ws_reports[0].get("report")
    if isinstance(r0, dict):
        res["tools"]["wsnap"]["initial_summary"] = r0.get("summary")
    pj = read_json("wsnap.prune.json")
    if pj is not None:
        res["tools"]["wsnap"]["prune_report"] = {k: (len(v) if isinstance(v, list) else v)
                                                 for k, v in pj.items()}
    lj = read_json("wsnap.list.json")
    if lj is not None:
        snaps = lj if isinstance(lj, list) else lj.get("snapshots", [])
        per = collections.Counter(f'{s.get("user")}/{s.get("project")}' for s in snaps if isinstance(s, dict))
        res["tools"]["wsnap"]["snapshots_after_prune_per_workspace"] = dict(sorted(per.items()))
rs = [x for x in read_jsonl("restic.jsonl") if x]
if rs and "restic" in res["tools"]:
    added = [x["summary"].get("data_added", 0) for x in rs if isinstance(x.get("summary"), dict) and x["tick"] > 0]
    res["tools"]["restic"]["tick_bytes_added_median"] = statistics.median(added) if added else None
    res["tools"]["restic"]["tick_bytes_added_total"] = sum(added) if added else None
    sj = read_json("restic.snapshots.json")
    if isinstance(sj, list):
        res["tools"]["restic"]["snapshots_after_prune"] = len(sj)
bg = [x for x in read_jsonl("borg.jsonl") if x]
if bg and "borg" in res["tools"]:
    added = [x["report"]["archive"]["stats"]["deduplicated_size"] for x in bg
             if isinstance(x.get("report"), dict) and x["tick"] > 0]
    res["tools"]["borg"]["tick_bytes_added_median"] = statistics.median(added) if added else None
    res["tools"]["borg"]["tick_bytes_added_total"] = sum(added) if added else None
    bl = read_json("borg.list.json")
    if isinstance(bl, dict):
        res["tools"]["borg"]["snapshots_after_prune"] = len(bl.get("archives", []))

for k, v in metrics.items():
    if k.startswith("verify_") and k not in ("verify_workspace", "verify_tick"):
        res["verify"][k[7:]] = v == "1"
res["verify"]["workspace"] = metrics.get("verify_workspace")
res["verify"]["tick"] = metrics.get("verify_tick")
res["cache_bytes"] = {"restic": fnum(metrics.get("cache_restic_bytes")), "borg": fnum(metrics.get("cache_borg_bytes"))}
loads = [fnum(r["load1"]) for r in raw if r["phase"] == "tick" and fnum(r["load1"]) is not None]
res["load1_median_during_ticks"] = statistics.median(loads) if loads else None
try:
    with open(os.path.join(OUT, "notes.txt")) as f:
        res["notes"] = [ln.rstrip("\n") for ln in f if ln.strip()]
except OSError:
    pass


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


cols = [("tick_wall_median", "median tick s"), ("tick_wall_p95", "p95 tick s"), ("tick_wall_max", "max tick s"),
        ("store_bytes_after_ticks", f"store bytes after {ticks} ticks"), ("prune_wall", "prune s"),
        ("store_bytes_after_prune", "store bytes after prune")]
ratios = {}
w = res["tools"].get("wsnap")
for other in ("restic", "borg"):
    o = res["tools"].get(other)
    if w and o:
        ratios[f"wsnap/{other}"] = {k: ratio(w[k], o[k]) for k, _ in cols + [("tick_cpu_median", "")]}
res["ratios"] = ratios
res["retention_note"] = (f"restic and borg take one snapshot of the whole root per tick, so keep-last {keep} per "
                         f"repository keeps the same {keep} ticks for every workspace as wsnap's per-workspace "
                         f"keep-last {keep}")
with open(os.path.join(OUT, "results.json"), "w") as f:
    json.dump(res, f, indent=2)


# ------------------------------------------------------------ markdown --
def fmt(k, v):
    if v is None:
        return "n/a"
    if "bytes" in k:
        return f"{int(v):,}"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


p = res["parameters"]
wi = res["workload"]["initial"] or {}
wf = res["workload"]["final"] or {}
L = []
L.append(f"# Tick workload: wsnap vs restic vs borg ({ticks} ticks, scale {p['scale']}, seed {p['seed']})\n")
L.append(f"Command: `benches/ticks/run.sh {p['args'] or ''}`  ")
L.append(f"Started {p['started']}, finished {p['finished']}; {p['nproc']} cores; median 1-min load "
         f"during ticks {res['load1_median_during_ticks']} (shared machine: wall times include contention).\n")
L.append("| tool | " + " | ".join(h for _, h in cols) + " | median tick CPU s |")
L.append("|---|" + "---:|" * (len(cols) + 1))
for tool in tools:
    d = res["tools"][tool]
    L.append(f"| {tool} | " + " | ".join(fmt(k, d[k]) for k, _ in cols) + f" | {fmt('cpu', d['tick_cpu_median'])} |")
for name, r in ratios.items():
    cells = [f"{r[k]:.3f}" if r[k] is not None else "n/a" for k, _ in cols + [("tick_cpu_median", "")]]
    L.append(f"| **{name}** | " + " | ".join(cells) + " |")
L.append("")
L.append(f"Tick times are per-tool wall seconds of one snapshot run over all workspaces (tick 0, the "
         f"initial full backup, excluded; it is listed below). Prune: wsnap `prune --keep-last {keep}` "
         f"(per workspace, --max-unused 10 %); restic `forget --keep-last {keep} --prune` (max-unused 5 %); "
         f"borg `prune --keep-last {keep}` + `compact` (threshold 10 %), both summed. Store bytes: `du -sb` "
         f"of the repository only; client caches are outside it (restic cache "
         f"{fmt('bytes', res['cache_bytes']['restic'])} B, borg cache/config "
         f"{fmt('bytes', res['cache_bytes']['borg'])} B after prune).\n")
L.append(f"**Retention equivalence:** restic and borg snapshot the whole root in one snapshot per tick, so "
         f"their keep-last {keep} per repository keeps the same {keep} ticks for every workspace as wsnap's "
         f"keep-last {keep} per workspace (wsnap records one snapshot per workspace per tick).\n")
L.append("## Details\n")
L.append("| tool | initial s | initial CPU s | median tick CPU s | p95 tick CPU s | total tick CPU s | max RSS MiB | median bytes added/tick | bytes added over ticks | snapshots after prune |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for tool in tools:
    d = res["tools"][tool]
    snaps = d.get("snapshots_after_prune")
    if tool == "wsnap":
        per = d.get("snapshots_after_prune_per_workspace") or {}
        snaps = (f"{sum(per.values())} ({len(per)} workspaces × {min(per.values())}–{max(per.values())})"
                 if per else "n/a")
    L.append(f"| {tool} | {fmt('s', d['initial_wall'])} | {fmt('s', d['initial_cpu'])} | {fmt('s', d['tick_cpu_median'])} | "
             f"{fmt('s', d['tick_cpu_p95'])} | {fmt('s', d['tick_cpu_total'])} | "
             f"{(d['tick_maxrss_kb_max'] or 0) / 1024:.0f} | {fmt('bytes', d.get('tick_bytes_added_median'))} | "
             f"{fmt('bytes', d.get('tick_bytes_added_total'))} | {snaps if snaps is not None else 'n/a'} |")
L.append("")
ticks_sz = sorted({r["tick"] for r in sizes}, key=lambda t: (not t.isdigit(), int(t) if t.isdigit() else 0, t))
L.append("Store size (`du -sb`) over time:\n")
L.append("| tick | " + " | ".join(tools) + " |")
L.append("|---|" + "---:|" * len(tools))
for t in ticks_sz:
    L.append(f"| {t} | " + " | ".join(fmt('bytes', res['sizes'][tool].get(t)) for tool in tools) + " |")
L.append("")
if w:
    L.append(f"wsnap prune report: `{json.dumps(w.get('prune_report'))}`; settle pauses before wsnap: "
             f"{w.get('settle_wait_ticks')} ticks, {w.get('settle_wait_total_s')} s total (untimed).\n")
L.append("Slowest ticks per tool (wall s / CPU s / load1):\n")
for tool in tools:
    L.append(f"- {tool}: " + ", ".join(f"t{s['tick']} {s['wall']:.2f}/{s['cpu']:.2f}/{s['load1']}"
                                       for s in res["tools"][tool]["slowest_ticks"]))
L.append("")
L.append("## Workload\n")
wt = res["workload"]["ticks"]
L.append(f"- Root: {len(wi.get('workspaces', []))} workspaces ({', '.join(wi.get('workspaces', []))}); "
         f"initially {wi.get('files')} included files / {fmt('bytes', wi.get('bytes'))} B, of which "
         f"{wi.get('big_files')} big binaries = {fmt('bytes', wi.get('big_bytes'))} B; plus "
         f"{wi.get('excluded_files')} excluded files / {fmt('bytes', wi.get('excluded_bytes'))} B "
         f"(.git/, node_modules/, __pycache__/).")
L.append(f"- After the ticks: {wf.get('files')} included files / {fmt('bytes', wf.get('bytes'))} B.")
L.append(f"- Over {wt['count']} ticks: active workspaces per tick {wt['active_workspaces_per_tick']}; "
         f"{wt['text_files_edited']} text-file edits, {wt['log_appends']} log appends, "
         f"{wt['notebooks_edited']} notebook edits, {wt['figures_rewritten']} figure rewrites, "
         f"{wt['big_file_4k_edits']} in-place 4 KiB edits of a 40 MiB-class file, "
         f"{wt['files_added']} files added / {wt['files_deleted']} deleted / {wt['files_renamed']} renamed.")
L.append(f"- wsnap clock: --time 2026-03-02T00:00:00Z + 5 min × tick.")
L.append("")
L.append("## Restore check (wsnap)\n")
for k, v in res["verify"].items():
    if k not in ("workspace", "tick") and not k.startswith("excluded_entries_"):
        if k == "pruned-mid-is-gone":
            L.append(f"- {k}: {'OK (restore --at a pruned time is refused)' if v else 'FAILED (still restorable)'}")
        else:
            L.append(f"- {k}: {'OK (diff -r clean)' if v else 'FAILED'}")
for k in ("restic", "borg"):
    if f"excluded_entries_{k}" in metrics:
        res["verify"][f"excluded_entries_{k}"] = metrics[f"excluded_entries_{k}"]
        L.append(f"- {k}: {metrics[f'excluded_entries_{k}']} excluded-pattern entries in its newest snapshot")
L.append(f"- workspace {res['verify']['workspace']} at tick {res['verify']['tick']}, compared with a `cp -a` "
         f"copy taken at that tick (excluded dirs ignored by diff -x).")
L.append("")
if res["notes"]:
    L.append("## Notes / errors\n")
    L.extend(f"- {n}" for n in res["notes"][:40])
    L.append("")
L.append("Versions: " + "; ".join(f"{k}={v}" for k, v in res["versions"].items()))
with open(os.path.join(OUT, "results.md"), "w") as f:
    f.write("\n".join(L) + "\n")
