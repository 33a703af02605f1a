#!/usr/bin/env python3
"""Deterministic, seeded generator of a synthetic research-platform tree for
the wsnap peer benchmark (python3 stdlib only).

    gen_tree.py gen  --base DIR [--seed N] [--scale X | --small] [--force]
    gen_tree.py edit --tree KEYDIR apply|revert|status

`gen` builds  DIR/<key>/root/<user>/<project>/...  where <key> encodes the
generator version, seed and scale, and writes DIR/<key>/manifest.json last
(its presence means the tree is complete; an existing complete tree is
reused). It prints the key directory on stdout. Progress goes to stderr.

Content (scale 1.0, ~1.2 GB, ~12k files):
  * 20 workspaces under 12 users; two of them (alice/protein-fold and
    bob/protein-fold) are near-identical forks;
  * many small text files: .py, .md, .json, small numeric .csv;
  * mid-size CSV/TSV results (100 KB - 5 MB, numeric text, compressible);
  * .npy arrays (real npy v1 header; blocks of structured / quantised data
    interleaved with random float32 blocks);
  * high-entropy "figures" (.png header + random bytes, 50 - 500 KB);
  * one large file (~300 MB x scale) of mixed 4 MiB blocks: numeric text,
    random bytes, zeros;
  * excluded directories (.git/, __pycache__/ with *.pyc, node_modules/,
    .venv/) with a few files each.

`edit apply` makes the benchmark's "small edit": rewrites ~10 small files
(appends a line) and overwrites 1 MiB in place inside the big file; originals
are saved under KEYDIR/edit-backup so `edit revert` restores the exact bytes.
The edited bytes are deterministic (seeded).
"""

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import struct
import sys
import time
from array import array

GEN_VERSION = 5
EXCLUDED_DIR_NAMES = {".git", "__pycache__", "node_modules", ".venv", "venv"}
EXCLUDED_SUFFIXES = (".pyc",)
BASE_MTIME = 1_700_000_000  # 2023-11-14, fixed so rsync -a copies are reproducible
BIG_BLOCK = 4 << 20
EDIT_BYTES = 1 << 20
N_SMALL_EDITS = 10

WORDS = (
    "model data sample result figure loss accuracy batch epoch train test "
    "validation protein sequence gradient kernel feature matrix vector tensor "
    "simulation climate ensemble temperature pressure sensor signal spectrum "
    "baseline experiment config seed run metric score analysis pipeline "
    "cluster embedding attention layer network optimizer schedule warmup "
    "dataset split fold checkpoint inference latency throughput memory"
).split()

# (user, project, weight). Weight scales the number/size of files.
WORKSPACES = [
    ("alice", "protein-fold", 1.3),
    ("alice", "lab-notes", 0.4),
    ("bob", "protein-fold", 1.3),  # fork of alice/protein-fold
    ("carol", "climate-ensemble", 1.6),  # holds the big file
    ("carol", "downscaling", 0.8),
    ("dmitri", "eeg-decoding", 1.2),
    ("dmitri", "thesis", 0.5),
    ("eun-ji", "single-cell", 1.4),
    ("eun-ji", "spatial-omics", 1.0),
    ("farah", "nlp-benchmarks", 1.1),
    ("gustavo", "ocean-models", 1.0),
    ("gustavo", "teaching", 0.3),
    ("hiro", "robot-grasping", 0.9),
    ("ines", "microscopy-seg", 1.2),
    ("ines", "stats-course", 0.4),
    ("jamal", "genomics-qc", 1.0),
    ("kofi", "epidemics", 0.9),
    ("kofi", "survey-analysis", 0.6),
    ("lena", "materials-dft", 1.1),
    ("lena", "notebooks", 0.5),
]
FORK = (("alice", "protein-fold"), ("bob", "protein-fold"))
BIG_WS = ("carol", "climate-ensemble")
BIG_REL = "data/raw/ensemble_member_042.h5"


def log(msg):
    print(f"[gen_tree] {msg}", file=sys.stderr, flush=True)


def rng_for(seed, *parts):
    return random.Random("/".join([str(seed), *map(str, parts)]))


def loguniform(r, lo, hi):
    return int(math.exp(r.uniform(math.log(lo), math.log(hi))))


# ---------------------------------------------------------------- content --

def words(r, n):
    return " ".join(r.choice(WORDS) for _ in range(n))


def gen_py(r, size):
    out, n = [], 0
    out.append('"""%s."""\n\nimport json\nimport math\nimport os\n\n' % words(r, 6).capitalize())
    i = 0
    while n < size:
        name = "_".join(r.choice(WORDS) for _ in range(2))
        args = ", ".join(r.sample(WORDS, 3))
        body = [f"def {name}_{i}({args}):", f'    """{words(r, 10)}."""']
        for _ in range(r.randint(3, 12)):
            a, b = r.sample(WORDS, 2)
            body.append(f"    {a} = {b} * {r.uniform(-10, 10):.4f} + {r.randint(0, 999)}")
        body.append(f"    return {r.choice(WORDS)}\n\n")
        s = "\n".join(body)
        out.append(s)
        n += len(s)
        i += 1
    return "".join(out).encode()[:size]


def gen_md(r, size):
    out, n = [f"# {words(r, 4).title()}\n\n"], 0
    while n < size:
        if r.random() < 0.2:
            s = f"\n## {words(r, 3).title()}\n\n"
        elif r.random() < 0.3:
            s = "".join(f"- {words(r, r.randint(4, 12))}\n" for _ in range(r.randint(2, 6)))
        else:
            s = words(r, r.randint(20, 80)).capitalize() + ".\n\n"
        out.append(s)
        n += len(s)
    return "".join(out).encode()[:size]


def gen_json(r, size):
    d = {"name": words(r, 2), "seed": r.randint(0, 2**31), "params": {}}
    while len(json.dumps(d, indent=2)) < size:
        d["params"][f"{r.choice(WORDS)}_{r.randint(0, 9999)}"] = r.choice(
            [r.uniform(0, 1), r.randint(0, 10000), words(r, 3), [r.random() for _ in range(4)]])
    return json.dumps(d, indent=2, sort_keys=True).encode()[:size] + b"\n"


def gen_numeric_table(r, size, sep=","):
    """Numeric text table: experiment logs, metrics. ~3-4x compressible."""
    ncol = r.randint(4, 9)
    header = sep.join(["step"] + [f"{r.choice(WORDS)}_{j}" for j in range(ncol)]) + "\n"
    decs = [r.choice((3, 4, 6, 8)) for _ in range(ncol)]
    scales = [10 ** r.uniform(-3, 3) for _ in range(ncol)]
    parts, n, step = [header], len(header), 0
    fmts = [f"{{:.{d}f}}" for d in decs]
    rnd = r.random
    while n < size:
        rows = []
        for _ in range(256):
            step += 1
            decay = 1.0 / (1 + step * 1e-4)
            vals = [fmts[j].format(scales[j] * (decay + 0.05 * rnd())) for j in range(ncol)]
            rows.append(str(step) + sep + sep.join(vals))
        s = "\n".join(rows) + "\n"
        parts.append(s)
        n += len(s)
    return "".join(parts).encode()[:size]


def npy_header(shape, descr="<f4"):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    pad = 64 - (10 + len(h) + 1) % 64
    h = h + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode("latin1")


def structured_f32(r, nbytes):
    """Quantised smooth signal stored as float32: compressible-ish, no repeats."""
    n = nbytes // 4
    f = r.uniform(1e-4, 1e-2)
    a = r.uniform(1, 500)
    ph = r.uniform(0, 6.28)
    q = r.choice((0.5, 0.25, 0.125, 1.0))
    rnd = r.random
    sin = math.sin
    vals = array("f", [round((a * sin(f * i + ph) + 3 * rnd()) / q) * q for i in range(n)])
    return vals.tobytes()


def gen_npy(r, size):
    """npy: 256 KiB blocks, ~half structured, some zero/mask, rest random."""
    body = max(size - 128, 4096) // 4 * 4
    hdr = npy_header((body // 4,))
    out = [hdr]
    left = body
    while left > 0:
        blk = min(left, 256 << 10)
        x = r.random()
        if x < 0.5:
            out.append(structured_f32(r, blk))
        elif x < 0.6:
            out.append(bytes(blk))
        else:
            out.append(r.randbytes(blk))
        left -= blk
    return b"".join(out)


PNG_SIG = b"\x89PNG\r\n\x1a\n"


def gen_figure(r, size):
    w, h = r.randint(400, 2400), r.randint(300, 1800)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    head = PNG_SIG + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"
    return head + r.randbytes(max(size - len(head), 0))


def gen_random(r, size):
    return r.randbytes(size)


# ------------------------------------------------------------------- plan --

def plan_workspace(seed, scale, user, project, weight):
    """List of (relpath, kind, size, content_seed) for one workspace."""
    r = rng_for(seed, "plan", user, project)
    files = []
    pkg = project.replace("-", "_")
    subdirs_small = [f"src/{pkg}", f"src/{pkg}/models", f"src/{pkg}/utils", "scripts",
                     "tests", "docs", "notes", "config", "notebooks",
                     "results/summary", "data/meta"]
    n_small = max(8, int(590 * weight * scale))
    for i in range(n_small):
        kind = r.choices(("py", "md", "json", "csv"), weights=(45, 20, 15, 20))[0]
        d = r.choice(subdirs_small)
        if r.random() < 0.3:
            d = f"{d}/{r.choice(WORDS)}_{r.randint(0, 20)}"
        size = {"py": loguniform(r, 300, 16000), "md": loguniform(r, 200, 9000),
                "json": loguniform(r, 150, 5000), "csv": loguniform(r, 500, 40000)}[kind]
        files.append((f"{d}/{r.choice(WORDS)}_{i:05d}.{kind}", kind, size))
    n_mid = max(1, round(8 * weight * min(scale * 4, 1)))
    mid_hi = int(5_000_000 * min(scale * 2, 1)) if scale < 1 else 5_000_000
    for i in range(n_mid):
        ext = r.choice(("csv", "tsv"))
        exp = f"results/exp_{r.randint(0, 30):03d}"
        files.append((f"{exp}/{r.choice(WORDS)}_metrics_{i:03d}.{ext}", "table_" + ext,
                      loguniform(r, 100_000, max(mid_hi, 150_000))))
    n_npy = max(1, round(5 * weight * min(scale * 4, 1)))
    for i in range(n_npy):
        files.append((f"data/processed/{r.choice(WORDS)}_{i:03d}.npy", "npy",
                      loguniform(r, 500_000, max(int(32_000_000 * scale), 600_000))))
    n_fig = max(2, round(20 * weight * min(scale * 4, 1)))
    for i in range(n_fig):
        ext = "png" if r.random() < 0.85 else "jpg"
        files.append((f"figures/{r.choice(WORDS)}_{i:03d}.{ext}", "figure",
                      loguniform(r, 50_000, 500_000)))
    # Excluded content (a few files each).
    files.append((".git/HEAD", "text", 23))
    files.append((".git/config", "text", 180))
    few = min(1.0, scale * 4)
    for i in range(max(2, int(r.randint(6, 14) * few))):
        files.append((f".git/objects/{r.randint(0, 255):02x}/{r.getrandbits(152):038x}",
                      "random", loguniform(r, 200, 60000)))
    for i in range(max(1, int(r.randint(3, 8) * few))):
        files.append((f"src/{pkg}/__pycache__/{r.choice(WORDS)}_{i}.cpython-311.pyc",
                      "random", loguniform(r, 500, 20000)))
    if r.random() < 0.25:
        for i in range(max(2, int(r.randint(10, 25) * few))):
            files.append((f"node_modules/{r.choice(WORDS)}-lib/index_{i}.js", "py",
                          loguniform(r, 300, 30000)))
    if r.random() < 0.15:
        for i in range(r.randint(3, 8)):
            files.append((f".venv/lib/python3.11/site-packages/{r.choice(WORDS)}_{i}.py", "py",
                          loguniform(r, 300, 30000)))
    # A stray *.pyc outside __pycache__ (excluded by pattern, not by dir).
    files.append((f"scripts/old_{pkg}.pyc", "random", 1500))
    # Dedupe paths (keep first), attach content seeds.
    seen, out = set(), []
    for rel, kind, size in files:
        if rel in seen:
            continue
        seen.add(rel)
        out.append((rel, kind, size, f"{user}/{project}/{rel}"))
    return out


def fork_plan(seed, base_plan, user, project):
    """Near-identical fork: same content seeds for ~96% of files; some
    edited, a few deleted, a few added."""
    r = rng_for(seed, "fork", user, project)
    out = []
    for rel, kind, size, cseed in base_plan:
        x = r.random()
        if x < 0.01 and not rel.startswith("."):
            continue  # deleted in the fork
        if x < 0.04:
            cseed = f"forkedit|{cseed}"  # edited in the fork: same base, bytes inserted
        out.append((rel, kind, size, cseed))
    for i in range(15):
        out.append((f"src/fork_additions/{r.choice(WORDS)}_{i}.py", "py",
                    loguniform(r, 500, 8000), f"fork-new:{user}/{project}/{i}"))
    return out


def build_plan(seed, scale):
    plans = {}
    for user, project, weight in WORKSPACES:
        if (user, project) == FORK[1]:
            continue
        plans[(user, project)] = plan_workspace(seed, scale, user, project, weight)
    plans[FORK[1]] = fork_plan(seed, plans[FORK[0]], *FORK[1])
    big_size = max(int(300_000_000 * scale) // BIG_BLOCK * BIG_BLOCK, BIG_BLOCK * 2)
    plans[BIG_WS].append((BIG_REL, "big", big_size, f"{BIG_WS[0]}/{BIG_WS[1]}/{BIG_REL}"))
    return {k: plans[k] for k in sorted(plans)}


def is_excluded(rel):
    parts = rel.split("/")
    return any(p in EXCLUDED_DIR_NAMES for p in parts[:-1]) or rel.endswith(EXCLUDED_SUFFIXES)


GENERATORS = {
    "py": gen_py, "md": gen_md, "json": gen_json,
    "csv": lambda r, s: gen_numeric_table(r, s, ","),
    "table_csv": lambda r, s: gen_numeric_table(r, s, ","),
    "table_tsv": lambda r, s: gen_numeric_table(r, s, "\t"),
    "npy": gen_npy, "figure": gen_figure, "random": gen_random,
    "text": lambda r, s: (words(r, s) + "\n").encode()[:s],
}


def write_big(path, r, size):
    """Mixed 4 MiB blocks: numeric text / random / zeros."""
    with open(path, "wb") as f:
        left = size
        while left > 0:
            blk = min(left, BIG_BLOCK)
            x = r.random()
            if x < 0.45:
                data = gen_numeric_table(r, blk, " ")
            elif x < 0.90:
                data = r.randbytes(blk)
            else:
                data = bytes(blk)
            f.write(data[:blk])
            left -= blk


def gen(args):
    scale = 0.04 if args.small else args.scale
    key = f"v{GEN_VERSION}-seed{args.seed}-scale{scale:g}"
    keydir = os.path.join(os.path.abspath(args.base), key)
    manifest = os.path.join(keydir, "manifest.json")
    if os.path.exists(manifest) and not args.force:
        log(f"reusing existing tree {keydir}")
        print(keydir)
        return
    tmp = keydir + ".tmp"
    for d in (tmp, keydir):
        if os.path.exists(d):
            shutil.rmtree(d)
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    t0 = time.time()
    plans = build_plan(args.seed, scale)
    total_files = sum(len(p) for p in plans.values())
    stats = {"files": 0, "bytes": 0, "included_files": 0, "included_bytes": 0,
             "excluded_files": 0, "excluded_bytes": 0}
    per_ws = {}
    by_kind = {}
    done = 0
    mtime_r = rng_for(args.seed, "mtimes")
    for (user, project), plan in plans.items():
        wsdir = os.path.join(root, user, project)
        ws = {"files": 0, "bytes": 0, "included_files": 0, "included_bytes": 0}
        for rel, kind, size, cseed in plan:
            path = os.path.join(wsdir, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            mutate = cseed.startswith("forkedit|")
            r = random.Random(f"{args.seed}/content/{cseed.split('|', 1)[-1]}")
            if kind == "big":
                write_big(path, r, size)
            else:
                data = GENERATORS[kind](r, size)
                if mutate:  # a few small local edits, as a user would make
                    mr = random.Random(f"{args.seed}/forkedit/{cseed}")
                    for _ in range(mr.randint(1, 3)):
                        at = mr.randint(0, len(data))
                        data = data[:at] + mr.randbytes(mr.randint(8, 200)) + data[at + mr.randint(0, 100):]
                with open(path, "wb") as f:
                    f.write(data)
            size = os.path.getsize(path)
            mt = BASE_MTIME + mtime_r.randint(0, 180 * 86400)
            os.utime(path, (mt, mt))
            excl = is_excluded(rel)
            for d in (stats, ws):
                d["files"] += 1
                d["bytes"] += size
                if not excl:
                    d["included_files"] += 1
                    d["included_bytes"] += size
            if excl:
                stats["excluded_files"] += 1
                stats["excluded_bytes"] += size
            k = by_kind.setdefault(kind, [0, 0])
            k[0] += 1
            k[1] += size
            done += 1
            if done % 2000 == 0:
                log(f"{done}/{total_files} files, {stats['bytes'] / 1e6:.0f} MB, "
                    f"{time.time() - t0:.0f}s")
        per_ws[f"{user}/{project}"] = ws
    largest = max(per_ws, key=lambda w: per_ws[w]["included_bytes"])
    m = {
        "generator_version": GEN_VERSION, "seed": args.seed, "scale": scale, "key": key,
        "root": os.path.join(keydir, "root"), "stats": stats, "by_kind": by_kind,
        "workspaces": per_ws, "largest_workspace": largest,
        "big_file": f"{BIG_WS[0]}/{BIG_WS[1]}/{BIG_REL}",
        "fork_pair": [f"{u}/{p}" for u, p in FORK],
        "excluded_dir_names": sorted(EXCLUDED_DIR_NAMES), "excluded_suffixes": list(EXCLUDED_SUFFIXES),
        "gen_seconds": round(time.time() - t0, 1),
    }
    m["edit"] = edit_plan(args.seed, plans)
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
    os.rename(tmp, keydir)
    log(f"generated {stats['files']} files, {stats['bytes']} bytes in {m['gen_seconds']}s -> {keydir}")
    print(keydir)


# ------------------------------------------------------------------- edit --

def edit_plan(seed, plans):
    r = rng_for(seed, "edit")
    small = [f"{u}/{p}/{rel}" for (u, p), plan in plans.items() for rel, kind, size, _ in plan
             if kind in ("py", "md", "json", "csv") and not is_excluded(rel)]
    small.sort()
    chosen = sorted(r.sample(small, min(N_SMALL_EDITS, len(small))))
    big_size = [s for rel, k, s, _ in plans[BIG_WS] if k == "big"][0]
    off = (int(big_size * 0.37) // 4096) * 4096
    return {"small_files": chosen, "big_file": f"{BIG_WS[0]}/{BIG_WS[1]}/{BIG_REL}",
            "big_offset": off, "big_len": EDIT_BYTES}


def edit(args):
    keydir = os.path.abspath(args.tree)
    with open(os.path.join(keydir, "manifest.json")) as f:
        m = json.load(f)
    root = m["root"]
    ep = m["edit"]
    state_path = os.path.join(keydir, "edit-state")
    bdir = os.path.join(keydir, "edit-backup")
    state = open(state_path).read().strip() if os.path.exists(state_path) else "clean"
    if args.action == "status":
        print(state)
        return
    if args.action == "apply":
        if state == "applied":
            log("edit already applied")
            return
        if os.path.exists(bdir):
            shutil.rmtree(bdir)
        os.makedirs(bdir)
        r = rng_for(m["seed"], "edit-content")
        for i, rel in enumerate(ep["small_files"]):
            p = os.path.join(root, rel)
            shutil.copyfile(p, os.path.join(bdir, f"small_{i}"))
            with open(p, "ab") as f:  # in place: same inode
                f.write(f"\n# edited: {words(r, 8)}\n".encode())
        with open(os.path.join(root, ep["big_file"]), "r+b") as f:
            f.seek(ep["big_offset"])
            orig = f.read(ep["big_len"])
            with open(os.path.join(bdir, "big_region"), "wb") as b:
                b.write(orig)
            f.seek(ep["big_offset"])
            f.write(r.randbytes(ep["big_len"]))
        with open(state_path, "w") as f:
            f.write("applied\n")
        log(f"applied edit: {len(ep['small_files'])} small files + {ep['big_len']} bytes at "
            f"offset {ep['big_offset']} of {ep['big_file']}")
    elif args.action == "revert":
        if state != "applied":
            log("tree already clean")
            return
        for i, rel in enumerate(ep["small_files"]):
            with open(os.path.join(bdir, f"small_{i}"), "rb") as b:
                data = b.read()
            with open(os.path.join(root, rel), "r+b") as f:
                f.write(data)
                f.truncate(len(data))
        with open(os.path.join(bdir, "big_region"), "rb") as b:
            data = b.read()
        with open(os.path.join(root, ep["big_file"]), "r+b") as f:
            f.seek(ep["big_offset"])
            f.write(data)
        with open(state_path, "w") as f:
            f.write("clean\n")
        log("reverted edit")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--base", required=True)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--scale", type=float, default=1.0)
    g.add_argument("--small", action="store_true", help="~50 MB tree (scale 0.04)")
    g.add_argument("--force", action="store_true")
    e = sub.add_parser("edit")
    e.add_argument("--tree", required=True, help="key directory printed by gen")
    e.add_argument("action", choices=("apply", "revert", "status"))
    a = ap.parse_args()
    gen(a) if a.cmd == "gen" else edit(a)


if __name__ == "__main__":
    main()
