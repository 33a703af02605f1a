#!/usr/bin/env python3
"""Summarise a benches/peers/run.sh run: reads target/peers/logs/*.tsv and the
tree manifest, writes results.json and results.md, prints the Markdown."""

import argparse
import csv
import json
import os
import statistics
from collections import defaultdict

# (label, tool key in raw.tsv, {column: (tool, phase)} overrides)
ROWS = [
    ("wsnap", "wsnap", {}),
    ("restic (zstd auto, repo v2)", "restic", {}),
    ("borg (zstd,3, -e none)", "borg", {}),
    ("rsync -a, full copy each run (old script)", "rsync", {}),
    ("rsync -a --link-dest", "rsync-link", {"first": ("rsync", "first")}),
    ("floor: cat all files > /dev/null", "floor-cat", {}),
    ("floor: b3sum all files", "floor-b3sum", {}),
    ("floor: find stat walk (no reads)", "floor-walk", {}),
]
PHASES = ("first", "nochange", "edit", "restore")


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    if x is None:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{nd}f}"


def fmt_bytes(b):
    if b is None:
        return "n/a"
    return f"{int(b):,} ({b / 1e6:.0f} MB)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--manifest", required=True)
    a = ap.parse_args()
    logs = os.path.join(a.out, "logs")
    manifest = json.load(open(a.manifest))
    st = manifest["stats"]
    incl = st["included_bytes"]

    raw = list(csv.DictReader(open(os.path.join(logs, "raw.tsv")), delimiter="\t"))
    mets = list(csv.DictReader(open(os.path.join(logs, "metrics.tsv")), delimiter="\t"))
    notes = [l.rstrip("\n") for l in open(os.path.join(a.out, "notes.txt")) if l.strip()]
    env = {}
    for l in open(os.path.join(logs, "env.txt")):
        k, _, v = l.rstrip("\n").partition("=")
        env[k] = v

    by = defaultdict(list)  # (tool, phase) -> rows
    for r in raw:
        by[(r["tool"], r["phase"])].append(r)
    metric = defaultdict(list)  # (tool, key) -> values
    for m in mets:
        metric[(m["tool"], m["key"])].append(m["value"])

    def phase(tool, ph, field="wall"):
        rows = by.get((tool, ph), [])
        ok = [r for r in rows if r["rc"] == "0"]
        return med([num(r[field]) for r in ok]) if ok else None

    def failed(tool, ph):
        return any(r["rc"] != "0" for r in by.get((tool, ph), []))

    table = []
    for label, tool, over in ROWS:
        if not any(k[0] == tool for k in by):
            continue
        cols = {}
        rss = []
        cpu_first = None
        for ph in PHASES:
            t, p = over.get(ph, (tool, ph))
            cols[ph] = phase(t, p)
            cols[ph + "_failed"] = failed(t, p)
            r = phase(t, p, "maxrss_kb")
            if r is not None:
                rss.append(r)
            if ph == "first":
                u, s = phase(t, p, "user"), phase(t, p, "sys")
                cpu_first = (u or 0) + (s or 0) if u is not None else None
        store = med([num(v) for v in metric.get((tool, "store_bytes"), [])])
        ver = metric.get((tool, "restore_verified"), [])
        table.append({
            "label": label, "tool": tool,
            "first_s": cols["first"], "first_MBps": (incl / 1e6 / cols["first"]) if cols["first"] else None,
            "nochange_s": cols["nochange"], "edit_s": cols["edit"],
            "store_bytes": store, "restore_s": cols["restore"],
            "peak_rss_MiB": (max(rss) / 1024) if rss else None,
            "first_cpu_s": cpu_first,
            "restore_verified": (all(v == "1" for v in ver) if ver else None),
            "failed_phases": [ph for ph in PHASES if cols[ph + "_failed"]],
        })

    def cell(row, key, nd=2):
        v = row[key]
        ph = {"first_s": "first", "nochange_s": "nochange", "edit_s": "edit", "restore_s": "restore"}.get(key)
        if v is None and ph and ph in row["failed_phases"]:
            return "FAILED"
        return fmt(v, nd)

    md = []
    reps = env.get("scale", "")
    md.append("# wsnap peer benchmark\n")
    md.append(f"- command: `{env.get('cmdline', '')}`  ({reps})")
    md.append(f"- date: {env.get('date')}; {env.get('host_nproc')} CPUs; "
              f"{int(env.get('mem_total_kb', 0)) // 1024} MiB RAM; fs {env.get('fs')}; kernel {env.get('kernel')}")
    md.append(f"- tree: `{manifest['root']}` (generator v{manifest['generator_version']}, seed "
              f"{manifest['seed']}, scale {manifest['scale']}): **{st['files']:,} files, "
              f"{st['bytes']:,} bytes**; after excludes {st['included_files']:,} files, "
              f"{st['included_bytes']:,} bytes ({st['excluded_files']} files / "
              f"{st['excluded_bytes']:,} bytes in .git/ node_modules/ __pycache__/ .venv/ *.pyc); "
              f"{len(manifest['workspaces'])} workspaces; largest `{manifest['largest_workspace']}` "
              f"({manifest['workspaces'][manifest['largest_workspace']]['included_bytes']:,} bytes)")
    md.append("- **warm page cache** (nothing dropped; the tree is read once before timing; "
              "`sync` untimed before every phase). Times are wall seconds, median of reps; "
              "MB/s = included bytes / first-run wall (MB = 10^6 B). Small edit = 10 small files "
              "appended + 1 MiB overwritten in place inside the ~300 MB file.")
    md.append("- wsnap: " + ", ".join(f"{k}={metric.get(('wsnap', k), ['n/a'])[0]}"
                                      for k in ("version", "git_rev", "git_dirty_files", "binary_b3")))
    md.append("")
    md.append("| tool | first-run s | first-run MB/s | no-change s | small-edit s | store/repo bytes after 3 runs | restore s | peak RSS MiB | first-run CPU s (u+s) | restore verified |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|:--:|")
    for r in table:
        ver = {True: "yes", False: "**NO**", None: "–"}[r["restore_verified"]]
        md.append(f"| {r['label']} | {cell(r, 'first_s')} | {fmt(r['first_MBps'], 1)} | "
                  f"{cell(r, 'nochange_s')} | {cell(r, 'edit_s')} | {fmt_bytes(r['store_bytes'])} | "
                  f"{cell(r, 'restore_s')} | {fmt(r['peak_rss_MiB'], 1)} | {fmt(r['first_cpu_s'])} | {ver} |")
    md.append("")
    md.append("rsync --link-dest: first run is the same full copy as rsync -a (shared measurement); "
              "its bytes count hard links once (`du -scb full1 link2 link3`). rsync full-copy bytes = "
              "3 copies. restic/borg `init` is excluded from first-run (see details).")
    md.append("")

    # Ratios
    rows = {r["tool"]: r for r in table}
    w = rows.get("wsnap")
    ratios = {}
    if w:
        md.append("## Ratios wsnap / peer (< 1: wsnap faster / smaller)\n")
        md.append("| peer | first-run | no-change | small-edit | store bytes | restore | peak RSS |")
        md.append("|---|---:|---:|---:|---:|---:|---:|")
        for peer in ("restic", "borg", "rsync", "rsync-link"):
            p = rows.get(peer)
            if not p:
                continue
            rr = {}
            for k in ("first_s", "nochange_s", "edit_s", "store_bytes", "restore_s", "peak_rss_MiB"):
                rr[k] = (w[k] / p[k]) if (w[k] is not None and p[k]) else None
            ratios[peer] = rr
            md.append(f"| wsnap/{peer} | " + " | ".join(fmt(rr[k], 2) for k in rr) + " |")
        md.append("")

    # Details
    md.append("## Details\n")
    md.append("| tool | phase | wall s | user s | sys s | max RSS MiB | load1 before | rc (per rep) |")
    md.append("|---|---|---:|---:|---:|---:|---:|---|")
    for (tool, ph), rs in by.items():
        md.append(f"| {tool} | {ph} | {fmt(phase(tool, ph))} | {fmt(phase(tool, ph, 'user'))} | "
                  f"{fmt(phase(tool, ph, 'sys'))} | "
                  f"{fmt((phase(tool, ph, 'maxrss_kb') or 0) / 1024, 1)} | "
                  f"{', '.join(r['load1'] for r in rs)} | {', '.join(r['rc'] for r in rs)} |")
    md.append("")
    interesting = [k for k in metric if k[0] in ("wsnap", "restic", "borg", "rsync", "rsync-link")
                   and "." in k[1]]
    if interesting:
        md.append("Tool-reported counters (per rep):\n")
        for k in sorted(interesting):
            md.append(f"- {k[0]} {k[1]}: {', '.join(metric[k])}")
        md.append("")

    # Consistency checks
    checks = []
    def chk(name, got, want):
        ok = got is not None and str(got) == str(want)
        checks.append({"check": name, "got": got, "want": want, "ok": ok})
    for ph in ("first", "nochange", "edit"):
        v = metric.get(("wsnap", f"{ph}.files"))
        if v:
            chk(f"wsnap {ph} files == included files", v[0], st["included_files"])
        v = metric.get(("restic", f"{ph}.total_files_processed"))
        if v:
            chk(f"restic {ph} files == included files", v[0], st["included_files"])
        v = metric.get(("borg", f"{ph}.nfiles"))
        if v:
            chk(f"borg {ph} files == included files", v[0], st["included_files"])
    v = metric.get(("wsnap", "first.size_bytes"))
    if v:
        chk("wsnap first size_bytes == included bytes", v[0], st["included_bytes"])
    v = metric.get(("wsnap", "nochange.bytes_added"))
    if v:
        chk("wsnap no-change bytes_added == 0", v[0], 0)
    v = metric.get(("wsnap", "nochange.bytes_read"))
    if v:
        chk("wsnap no-change bytes_read == 0 (stat cache hit)", v[0], 0)
    v = metric.get(("rsync", "first_copy_bytes"))
    if v:
        checks.append({"check": "rsync first copy bytes (dirs included) vs included bytes",
                       "got": v[0], "want": st["included_bytes"], "ok": None})
    if checks:
        md.append("## Checks\n")
        for c in checks:
            mark = {True: "ok", False: "**MISMATCH**", None: "info"}[c["ok"]]
            md.append(f"- {c['check']}: got {c['got']}, expected {c['want']} — {mark}")
        md.append("")
    if notes:
        md.append("## Notes from the run\n")
        md += [f"- {n}" for n in notes]
        md.append("")

    text = "\n".join(md) + "\n"
    open(os.path.join(a.out, "results.md"), "w").write(text)
    json.dump({"env": env, "tree": {k: manifest[k] for k in ("root", "key", "seed", "scale", "stats",
                                                                "by_kind", "largest_workspace", "edit")},
               "table": table, "ratios": ratios, "checks": checks, "notes": notes,
               "raw": raw, "metrics": mets},
              open(os.path.join(a.out, "results.json"), "w"), indent=2)
    print(text)


if __name__ == "__main__":
    main()
