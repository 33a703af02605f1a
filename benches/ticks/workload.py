#!/usr/bin/env python3
"""Seeded, deterministic research-workspace generator and "tick" mutator.

    workload.py init   --root R [--seed N] [--scale X] [--workspaces N]
    workload.py tick   --root R --tick N [--seed N]
    workload.py stats  --root R

`init` creates R/<user>/<project>/ workspaces with source files, CSVs,
notebooks (JSON), binary arrays (.npy), random "figures" (.png), a growing
log, one large binary file per two workspaces and excluded directories
(.git/, node_modules/, __pycache__/).  Everything is derived from the seed;
file contents depend only on (seed, workspace, file index).

`tick` applies one tick of user activity.  Its random stream is derived from
(seed, tick) only and every choice is made from *sorted* directory listings,
so the tree after tick N is a pure function of (seed, scale, N).  It prints a
one-line JSON summary of what changed.

Nothing outside the Python standard library is used.
"""

import argparse
import json
import os
import random
import struct
import sys

GEN_VERSION = 1

USERS = ["alice", "bob", "chen", "dana", "emre", "fatima", "goro", "hana",
         "ivan", "julia", "kofi", "lena"]
PROJECTS = ["eeg-decoding", "mri-seg", "rnaseq", "climate-ds", "thesis",
            "protein-fold", "ssm-bench", "survey-nlp", "ca-imaging", "spikes"]

WORDS = ("the of and to in is for that with on as by data model signal result "
         "figure table sample subject trial session mean std error fit train "
         "test loss epoch batch layer weight bias input output feature channel "
         "frequency band power phase time window filter noise baseline effect "
         "analysis method we our this these show shows significant p value "
         "increase decrease compare compared across between within during "
         "after before using based previous study studies cohort control "
         "group condition task response latency amplitude peak onset").split()
PY_IDENT = ("x y z df arr data out res fig ax model opt loss acc lr batch "
            "epoch idx n k i j mask sig freq psd raw clean feat label pred "
            "score cfg path fname rows cols mean std").split()

# Tick activity parameters (documented in the results).
P_FIGURE_REWRITE = 0.15      # per active workspace per tick
P_NOTEBOOK_EDIT = 0.25       # per active workspace per tick
P_EXCLUDED_CHURN = 0.5       # per active workspace: touch .git / __pycache__
BIG_EDIT_EVERY = 20          # in-place 4 KiB edit inside a big file
CHURN_EVERY = 50             # add / delete / rename a few files
BIG_EDIT_BYTES = 4096


# ------------------------------------------------------------- helpers --
def rng_for(*parts):
    return random.Random(":".join(str(p) for p in parts))


def write(path, data, mode="wb"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(data)


def sentence(r, lo=6, hi=18):
    return " ".join(r.choice(WORDS) for _ in range(r.randint(lo, hi)))


def py_line(r):
    k = r.random()
    a, b, c = r.choice(PY_IDENT), r.choice(PY_IDENT), r.choice(PY_IDENT)
    if k < 0.35:
        return f"    {a} = {b}.{c}({r.choice(PY_IDENT)}, axis={r.randint(0, 2)})"
    if k < 0.55:
        return f"    {a} = np.{r.choice(['mean', 'std', 'sum', 'abs', 'log1p'])}({b}) * {r.uniform(0, 10):.4f}"
    if k < 0.70:
        return f"    # {sentence(r, 4, 10)}"
    if k < 0.85:
        return f"    for {a} in range({r.randint(1, 512)}):"
    return f"    logger.info(\"{sentence(r, 2, 6)}: %s\", {a})"


def text_file(r, ext, target):
    """Text of roughly `target` bytes, in a style matching the extension."""
    lines, size = [], 0
    if ext == ".py":
        lines.append("import numpy as np\nimport logging\n\nlogger = logging.getLogger(__name__)\n")
    elif ext == ".tex":
        lines.append("\\section{" + sentence(r, 2, 5) + "}\n")
    elif ext == ".md":
        lines.append("# " + sentence(r, 2, 6) + "\n")
    elif ext == ".R":
        lines.append("library(tidyverse)\n")
    fn = 0
    while size < target:
        if ext == ".py":
            if r.random() < 0.12:
                fn += 1
                ln = f"\ndef {r.choice(PY_IDENT)}_{fn}({r.choice(PY_IDENT)}, {r.choice(PY_IDENT)}=None):"
            else:
                ln = py_line(r)
        elif ext == ".R":
            ln = f"{r.choice(PY_IDENT)} <- {r.choice(['mean', 'sd', 'lm', 'read_csv', 'filter'])}({r.choice(PY_IDENT)})  # {sentence(r, 2, 6)}"
        elif ext in (".yaml", ".toml"):
            ln = f"{r.choice(PY_IDENT)}_{r.randint(0, 99)}: {r.uniform(0, 1):.5f}"
        else:
            ln = sentence(r)
        lines.append(ln)
        size += len(ln) + 1
    return ("\n".join(lines) + "\n").encode()


def csv_file(r, target):
    ncol = r.randint(4, 12)
    head = ",".join(["subject", "trial"] + [f"{r.choice(PY_IDENT)}_{i}" for i in range(ncol)])
    rows, size, i = [head], len(head), 0
    while size < target:
        row = f"S{r.randint(1, 40):02d},{i}," + ",".join(f"{r.gauss(0, 1):.6f}" for _ in range(ncol))
        rows.append(row)
        size += len(row) + 1
        i += 1
    return ("\n".join(rows) + "\n").encode()


def notebook(r, ncells):
    cells = []
    for i in range(ncells):
        if r.random() < 0.3:
            cells.append({"cell_type": "markdown", "metadata": {},
                          "source": [sentence(r) + "\n" for _ in range(r.randint(1, 4))]})
        else:
            src = [py_line(r).strip() + "\n" for _ in range(r.randint(2, 12))]
            outs = []
            if r.random() < 0.5:
                outs.append({"output_type": "stream", "name": "stdout",
                             "text": [f"{r.gauss(0, 1):.6f}\n" for _ in range(r.randint(1, 30))]})
            if r.random() < 0.15:  # embedded image output: base64-ish noise
                blob = r.randbytes(r.randint(2000, 20000)).hex()
                outs.append({"output_type": "display_data", "metadata": {},
                             "data": {"image/png": blob}})
            cells.append({"cell_type": "code", "execution_count": i + 1, "metadata": {},
                          "outputs": outs, "source": src})
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(nb, indent=1).encode()


def npy(r, nfloat):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % nfloat
    hdr = hdr + " " * (63 - (len(hdr) + 10) % 64) + "\n"
    body = struct.pack(f"<{nfloat}f", *(r.gauss(0, 1) for _ in range(nfloat)))
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + body


def figure(r, size):
    # PNG signature + incompressible noise: compressed image data.
    return b"\x89PNG\r\n\x1a\n" + r.randbytes(max(0, size - 8))


def big_binary(r, size):
    # A checkpoint-like file: float32-ish data, low compressibility, written in
    # 1 MiB pieces so memory stays flat.
    out = bytearray()
    step = 1 << 20
    while len(out) < size:
        n = min(step, size - len(out))
        out += r.randbytes(n)
    return bytes(out)


# ---------------------------------------------------------------- init --
def workspace_names(seed, n):
    r = rng_for(seed, "names")
    users = r.sample(USERS, min(len(USERS), max(2, (n + 1) // 2)))
    names, i = [], 0
    while len(names) < n:
        u = users[i % len(users)]
        p = PROJECTS[(i * 3 + len(u)) % len(PROJECTS)]
        if (u, p) not in names:
            names.append((u, p))
        i += 1
    return names


def init(root, seed, scale, nws):
    if os.path.exists(root) and os.listdir(root):
        sys.exit(f"workload: {root} exists and is not empty")
    os.makedirs(root, exist_ok=True)
    names = workspace_names(seed, nws)
    totals = {"files": 0, "bytes": 0, "excluded_files": 0, "excluded_bytes": 0,
              "big_files": 0, "big_bytes": 0}

    def put(path, data, excluded=False):
        write(path, data)
        k = "excluded_" if excluded else ""
        totals[k + "files"] += 1
        totals[k + "bytes"] += len(data)

    def n(x):  # scaled count, at least 1
        return max(1, int(round(x * scale)))

    for wi, (user, proj) in enumerate(names):
        r = rng_for(seed, "init", user, proj)
        ws = os.path.join(root, user, proj)
        mult = [1.6, 1.3, 1.1, 1.0, 0.9, 0.8, 0.7, 0.6][wi % 8]  # uneven users
        # ~250 files per workspace at scale 1 (2,000 over 8 workspaces)
        for i in range(n(135 * mult)):
            ext = r.choice([".py", ".py", ".py", ".md", ".tex", ".R", ".yaml"])
            sub = r.choice(["src", "src", "scripts", "docs", "paper", "config"])
            sub = {".tex": "paper", ".md": "docs", ".yaml": "config"}.get(ext, sub)
            put(os.path.join(ws, sub, f"{sub}_{i:03d}{ext}"),
                text_file(r, ext, int(r.lognormvariate(8.6, 0.8))))      # ~5-8 KB
        for i in range(n(30 * mult)):
            put(os.path.join(ws, "data", f"table_{i:03d}.csv"),
                csv_file(r, int(r.lognormvariate(11.2, 0.7))))           # ~70-100 KB
        for i in range(n(12 * mult)):
            put(os.path.join(ws, "notebooks", f"nb_{i:02d}.ipynb"), notebook(r, r.randint(8, 40)))
        for i in range(n(3)):
            put(os.path.join(ws, "arrays", f"arr_{i}.npy"),
                npy(r, int(r.uniform(60_000, 200_000))))                 # 240-800 KB
        for i in range(n(60 * mult)):
            put(os.path.join(ws, "figures", f"fig_{i:03d}.png"),
                figure(r, int(r.lognormvariate(10.0, 0.7))))             # ~25-35 KB
        put(os.path.join(ws, "logs", "run.log"),
            "".join(f"[init {j:05d}] {sentence(r, 3, 10)}\n" for j in range(n(400))).encode())
        if wi % 2 == 0:   # one big binary per two workspaces
            size = int(40 * 1024 * 1024 * scale)
            put(os.path.join(ws, "models", "checkpoint.bin"), big_binary(r, size))
            totals["big_files"] += 1
            totals["big_bytes"] += size
        # excluded directories: must never reach any store
        for i in range(n(25)):
            put(os.path.join(ws, ".git", "objects", f"{i:02x}", r.randbytes(19).hex()),
                r.randbytes(int(r.uniform(200, 6000))), excluded=True)
        put(os.path.join(ws, ".git", "HEAD"), b"ref: refs/heads/main\n", excluded=True)
        for i in range(n(15)):
            put(os.path.join(ws, "src", "__pycache__", f"src_{i:03d}.cpython-311.pyc"),
                r.randbytes(int(r.uniform(500, 8000))), excluded=True)
        if wi % 3 == 1:
            for i in range(n(120)):
                put(os.path.join(ws, "node_modules", f"pkg{i % 17}", f"index_{i}.js"),
                    text_file(r, ".js", int(r.uniform(300, 4000))), excluded=True)
    meta = {"generator_version": GEN_VERSION, "seed": seed, "scale": scale,
            "workspaces": [f"{u}/{p}" for u, p in names], **totals}
    print(json.dumps(meta))


# ---------------------------------------------------------------- tick --
def list_workspaces(root):
    out = []
    for u in sorted(os.listdir(root)):
        up = os.path.join(root, u)
        if os.path.isdir(up):
            for p in sorted(os.listdir(up)):
                if os.path.isdir(os.path.join(up, p)):
                    out.append(f"{u}/{p}")
    return out


EXCLUDED_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv"}


def files_of(ws_path):
    out = []
    for d, dirs, files in os.walk(ws_path):
        dirs[:] = sorted(x for x in dirs if x not in EXCLUDED_DIRS)
        for f in sorted(files):
            out.append(os.path.relpath(os.path.join(d, f), ws_path))
    return sorted(out)


TEXT_EXT = (".py", ".md", ".tex", ".R", ".yaml", ".csv")


def edit_lines(r, path):
    with open(path, "rb") as f:
        lines = f.read().decode().split("\n")
    ext = os.path.splitext(path)[1]
    for _ in range(r.randint(1, 4)):
        i = r.randrange(len(lines))
        op = r.random()
        if ext == ".csv":
            new = f"S{r.randint(1, 40):02d},{r.randint(0, 9999)}," + ",".join(
                f"{r.gauss(0, 1):.6f}" for _ in range(max(1, lines[0].count(",") - 1)))
        elif ext == ".py":
            new = py_line(r)
        else:
            new = sentence(r)
        if op < 0.6:
            lines[i] = new
        elif op < 0.85:
            lines.insert(i, new)
        elif len(lines) > 3:
            del lines[i]
    with open(path, "wb") as f:
        f.write("\n".join(lines).encode())


def edit_notebook(r, path):
    with open(path, "rb") as f:
        nb = json.load(f)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if code:
        c = r.choice(code)
        c["source"][r.randrange(len(c["source"]))] = py_line(r).strip() + "\n"
        c["execution_count"] = (c.get("execution_count") or 0) + 1
        c["outputs"] = [{"output_type": "stream", "name": "stdout",
                         "text": [f"{r.gauss(0, 1):.6f}\n" for _ in range(r.randint(1, 30))]}]
    with open(path, "wb") as f:
        f.write(json.dumps(nb, indent=1).encode())


def tick(root, seed, t):
    r = rng_for(seed, "tick", t)
    wss = list_workspaces(root)
    # uneven activity: the first workspaces are the busiest users
    weights = [max(0.15, 1.0 - 0.12 * i) for i in range(len(wss))]
    k = r.choices([1, 2, 3], weights=[0.55, 0.3, 0.15])[0]
    active = []
    while len(active) < min(k, len(wss)):
        w = r.choices(wss, weights=weights)[0]
        if w not in active:
            active.append(w)
    summary = {"tick": t, "active": active, "edited": 0, "figures": 0, "notebooks": 0,
               "log_appends": 0, "big_edit": None, "added": 0, "deleted": 0, "renamed": 0}
    for w in active:
        wp = os.path.join(root, w)
        files = files_of(wp)
        texts = [f for f in files if f.endswith(TEXT_EXT)]
        for f in r.sample(texts, min(len(texts), r.randint(1, 5))):
            edit_lines(r, os.path.join(wp, f))
            summary["edited"] += 1
        log = os.path.join(wp, "logs", "run.log")
        with open(log, "ab") as fh:
            fh.write("".join(f"[tick {t:05d}] {sentence(r, 3, 10)}\n"
                             for _ in range(r.randint(1, 20))).encode())
        summary["log_appends"] += 1
        if r.random() < P_FIGURE_REWRITE:
            figs = [f for f in files if f.endswith(".png")]
            if figs:
                f = r.choice(figs)
                size = os.path.getsize(os.path.join(wp, f))
                write(os.path.join(wp, f), figure(r, int(size * r.uniform(0.8, 1.25))))
                summary["figures"] += 1
        if r.random() < P_NOTEBOOK_EDIT:
            nbs = [f for f in files if f.endswith(".ipynb")]
            if nbs:
                edit_notebook(r, os.path.join(wp, r.choice(nbs)))
                summary["notebooks"] += 1
        if r.random() < P_EXCLUDED_CHURN:  # a commit / a re-import: excluded churn
            write(os.path.join(wp, ".git", "objects", f"{r.randrange(256):02x}",
                               r.randbytes(19).hex()), r.randbytes(r.randint(200, 4000)))
            write(os.path.join(wp, "src", "__pycache__", f"tick_{t % 7}.cpython-311.pyc"),
                  r.randbytes(r.randint(500, 4000)))
    if t % BIG_EDIT_EVERY == 0:
        bigs = [w for w in wss if os.path.exists(os.path.join(root, w, "models", "checkpoint.bin"))]
        if bigs:
            w = bigs[(t // BIG_EDIT_EVERY) % len(bigs)]
            p = os.path.join(root, w, "models", "checkpoint.bin")
            size = os.path.getsize(p)
            off = r.randrange(0, max(1, size - BIG_EDIT_BYTES))
            with open(p, "r+b") as fh:
                fh.seek(off)
                fh.write(r.randbytes(min(BIG_EDIT_BYTES, size)))
            summary["big_edit"] = {"workspace": w, "offset": off}
    if t % CHURN_EVERY == 0:
        w = r.choice(wss)
        wp = os.path.join(root, w)
        for i in range(r.randint(2, 5)):
            kind = r.choice(["py", "csv", "png"])
            name = {"py": f"src/new_t{t}_{i}.py", "csv": f"data/new_t{t}_{i}.csv",
                    "png": f"figures/new_t{t}_{i}.png"}[kind]
            data = {"py": lambda: text_file(r, ".py", r.randint(2000, 12000)),
                    "csv": lambda: csv_file(r, r.randint(20000, 120000)),
                    "png": lambda: figure(r, r.randint(10000, 60000))}[kind]()
            write(os.path.join(wp, name), data)
            summary["added"] += 1
        files = [f for f in files_of(wp) if not f.startswith(("logs/", "models/"))]
        for f in r.sample(files, min(len(files), r.randint(1, 3))):
            os.remove(os.path.join(wp, f))
            files.remove(f)
            summary["deleted"] += 1
        for f in r.sample(files, min(len(files), r.randint(1, 2))):
            d, b = os.path.split(f)
            dst = os.path.join(d if r.random() < 0.5 else "archive", f"renamed_t{t}_{b}")
            os.makedirs(os.path.join(wp, os.path.dirname(dst)), exist_ok=True)
            os.rename(os.path.join(wp, f), os.path.join(wp, dst))
            summary["renamed"] += 1
    print(json.dumps(summary))


def stats(root):
    inc = exc = incb = excb = 0
    for d, dirs, files in os.walk(root):
        excluded = any(part in EXCLUDED_DIRS for part in os.path.relpath(d, root).split(os.sep))
        for f in files:
            s = os.path.getsize(os.path.join(d, f))
            if excluded:
                exc += 1
                excb += s
            else:
                inc += 1
                incb += s
    print(json.dumps({"files": inc, "bytes": incb, "excluded_files": exc,
                      "excluded_bytes": excb, "workspaces": len(list_workspaces(root))}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    a = sp.add_parser("init")
    a.add_argument("--root", required=True)
    a.add_argument("--seed", type=int, default=42)
    a.add_argument("--scale", type=float, default=1.0)
    a.add_argument("--workspaces", type=int, default=8)
    b = sp.add_parser("tick")
    b.add_argument("--root", required=True)
    b.add_argument("--seed", type=int, default=42)
    b.add_argument("--tick", type=int, required=True)
    c = sp.add_parser("stats")
    c.add_argument("--root", required=True)
    args = ap.parse_args()
    if args.cmd == "init":
        init(args.root, args.seed, args.scale, args.workspaces)
    elif args.cmd == "tick":
        tick(args.root, args.seed, args.tick)
    else:
        stats(args.root)


if __name__ == "__main__":
    main()
