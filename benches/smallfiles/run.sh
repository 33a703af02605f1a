#!/usr/bin/env bash
# Small text files (issue 18): store size and first-snapshot throughput of
# wsnap beside restic and borg, same run, on a tree of small text files not
# written by us.
#
#   benches/smallfiles/run.sh WSNAP [WSNAP2 ...] [--keep] [--edit-pct N] [--levels "1 3"]
#                             [--variant "LABEL[@LEVEL] K=V ..."]...
#
# Corpus (copied into a temp dir under target/bench-smallfiles/, never
# into git): /usr/include as workspace u1/include and the Python standard
# library (/usr/lib/python3.*, without __pycache__ and without the static
# libpython*.a archives, which are not text) as u2/python. Every tool
# takes a first snapshot into an empty store (timed: /usr/bin/time), then
# EDIT_PCT % of the files (every k-th, sorted by path) get one line
# changed in the middle, and every tool takes a second snapshot. Store
# size = `du -sb` of the store/repository after each. Peers use their
# default compression: restic 0.14 repository v2 (`--compression auto`),
# borg 1.x `init -e none` + `create` (lz4). Several wsnap binaries may be
# given (before/after); each gets its own store. Prints a TSV table and
# ratios; the machine is shared, so read ratios, not seconds (CPU seconds,
# user + sys, are steadier than wall seconds under load).
#
# --variant runs the first binary with environment K=V in its own store
# (LABEL@N: made with --compression-level N). For the experiments of
# docs/BENCHMARKS.md, build a scratch binary with
# benches/smallfiles/experiment.patch applied (`git apply`, never
# committed): WSNAP_EXP_DICT=FILE compresses and decompresses every zstd
# frame with that dictionary (train it with `zstd --train`), and
# WSNAP_EXP_SMALL_LEVEL=N uses level N for blobs of at most 32 KiB;
# WSNAP_EXP_TRAIN=BYTES trains a 110 KiB dictionary in the run from the
# first BYTES of blobs <= 32 KiB (blobs before it are compressed without),
# writes it to WSNAP_EXP_DICT and uses it from then on (later runs load
# it); WSNAP_EXP_TRAIN_FAST=1 trains with fastCover k=200 d=8 f=20 accel=1
# instead of `zstd::dict::from_continuous`'s optimiser;
# WSNAP_EXP_DICT_MAX=BYTES uses the dictionary only for blobs up to BYTES.
# Stores written
# with a dictionary are readable only with the same variables and file,
# and the dictionary is not in the store (add its compressed size):
# measurement only.
set -euo pipefail
bins=() keep=0 edit_pct=3 levels="" variants=()
while [ $# -gt 0 ]; do
  case $1 in
    --keep) keep=1; shift ;;
    --edit-pct) edit_pct=$2; shift 2 ;;
    --levels) levels=$2; shift 2 ;; # e.g. "1 3": wsnap init --compression-level each
    --variant) variants+=("$2"); shift 2 ;; # "LABEL[@LEVEL] K=V ...": the first binary with env K=V (experiments)
    *) bins+=("$1"); shift ;;
  esac
done
[ ${#bins[@]} -ge 1 ] || { sed -n 2,20p "$0"; exit 2; }
for t in restic borg /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 2; }
done
cd "$(dirname "$0")/../.."
base=$PWD/target/bench-smallfiles
rm -rf "$base"; mkdir -p "$base/bin" "$base/stores" "$base/logs"
cleanup() { [ "$keep" = 1 ] || rm -rf "$base"; }
trap cleanup EXIT
i=0
for b in "${bins[@]}"; do cp "$b" "$base/bin/wsnap$i"; i=$((i + 1)); done

root=$base/root
mkdir -p "$root/u1" "$root/u2"
cp -a /usr/include "$root/u1/include"
py=$(ls -d /usr/lib/python3.* | sort -V | tail -n1)
(cd "$(dirname "$py")" && tar cf - --exclude=__pycache__ --exclude='*.a' "$(basename "$py")") |
  tar xf - -C "$root/u2"
mv "$root/u2/$(basename "$py")" "$root/u2/python"
files=$(find "$root" -type f | wc -l)
bytes=$(find "$root" -type f -printf '%s\n' | awk '{s+=$1} END{print s}')
echo "corpus: $files files, $bytes bytes ($(basename "$py"), /usr/include)" >&2
echo "wsnap commit $(git rev-parse --short HEAD 2>/dev/null || echo NA); $(restic version | cut -d' ' -f1-2); $(borg --version); load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)" >&2
cat "$root"/u*/*/* >/dev/null 2>&1 || true # warm the page cache
find "$root" -type f -print0 | xargs -0 cat >/dev/null

out=$base/results.tsv
printf 'tool\tphase\twall_s\tuser_s\tsys_s\tmaxrss_kb\tstore_bytes\n' >"$out"
t() { # TOOL PHASE STORE cmd...
  local tool=$1 phase=$2 store=$3; shift 3
  sync
  /usr/bin/time -f '%e\t%U\t%S\t%M' -o "$base/logs/time" "$@" \
    >"$base/logs/$tool.$phase.out" 2>"$base/logs/$tool.$phase.err" ||
    { echo "$tool $phase failed:" >&2; tail -5 "$base/logs/$tool.$phase.err" >&2; exit 1; }
  printf '%s\t%s\t%s\t%s\n' "$tool" "$phase" "$(cat "$base/logs/time")" \
    "$(du -sb "$store" | cut -f1)" >>"$out"
}

export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$base/cache/restic
export BORG_BASE_DIR=$base/cache/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
restic -r "$base/stores/restic" init >/dev/null 2>&1
borg init -e none "$base/stores/borg" >/dev/null 2>&1
wsnap_stores=()
for ((j = 0; j < ${#bins[@]}; j++)); do
  for l in ${levels:-default}; do
    s=$base/stores/wsnap$j-$l
    if [ "$l" = default ]; then "$base/bin/wsnap$j" --store "$s" init >/dev/null
    else "$base/bin/wsnap$j" --store "$s" init --compression-level "$l" >/dev/null; fi
    wsnap_stores+=("$j:$l")
  done
done

for v in "${variants[@]}"; do
  label=${v%% *} # LABEL@N: the store made with --compression-level N
  lvl=(); [[ $label == *@* ]] && lvl=(--compression-level "${label#*@}")
  "$base/bin/wsnap0" --store "$base/stores/wsnap-$label" init "${lvl[@]}" >/dev/null
done

snap_all() { # PHASE
  for v in "${variants[@]}"; do
    label=${v%% *} envs=${v#* }
    # shellcheck disable=SC2086
    t "wsnap-$label" "$1" "$base/stores/wsnap-$label" env $envs \
      "$base/bin/wsnap0" --store "$base/stores/wsnap-$label" snapshot --root "$root"
  done
  for ws in "${wsnap_stores[@]}"; do
    j=${ws%%:*} l=${ws#*:}
    t "wsnap$j-$l" "$1" "$base/stores/wsnap$j-$l" \
      "$base/bin/wsnap$j" --store "$base/stores/wsnap$j-$l" snapshot --root "$root"
  done
  t restic "$1" "$base/stores/restic" restic -r "$base/stores/restic" backup --host bench "$root"
  t borg "$1" "$base/stores/borg" env -C "$root" borg create "$base/stores/borg::$1" .
}
snap_all first
# The edit: every k-th file (sorted), one line in the middle replaced.
python3 - "$root" "$edit_pct" <<'PY'
import os, sys
root, pct = sys.argv[1], float(sys.argv[2])
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
               if not os.path.islink(os.path.join(d, f)))
k = max(1, round(100 / pct))
n = 0
for p in paths[::k]:
    with open(p, "rb") as f:
        b = f.read()
    lines = b.split(b"\n")
    m = len(lines) // 2
    lines[m] = b"/* edited by the small-files benchmark (issue 18) */"
    with open(p, "wb") as f:
        f.write(b"\n".join(lines))
    n += 1
print(f"edited {n} of {len(paths)} files", file=sys.stderr)
PY
sleep 2.1 # outside every tool's racy window
snap_all edit
cat "$out"
python3 - "$out" "$bytes" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
raw = int(sys.argv[2])
get = {(r["tool"], r["phase"]): r for r in rows}
def v(t, p, k): return float(get[(t, p)][k])
print(f"\nload: {open('/proc/loadavg').read().split()[:3]}")
print("| wsnap | store after first | after edit | / restic | / borg | first-snapshot MB/s | restic MB/s | throughput / restic | CPU restic / wsnap |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
def cpu(t): return v(t, "first", "user_s") + v(t, "first", "sys_s")
for t in sorted({r["tool"] for r in rows if r["tool"].startswith("wsnap")}):
    s = v(t, "edit", "store_bytes")
    mb = raw / 1e6 / v(t, "first", "wall_s")
    rmb = raw / 1e6 / v("restic", "first", "wall_s")
    print(f"| {t} | {v(t,'first','store_bytes'):,.0f} | {s:,.0f} | {s / v('restic','edit','store_bytes'):.3f} "
          f"| {s / v('borg','edit','store_bytes'):.3f} | {mb:.1f} | {rmb:.1f} | {mb / rmb:.2f} | {cpu('restic') / cpu(t):.2f} |")
for t in ("restic", "borg"):
    print(f"| ({t}) | {v(t,'first','store_bytes'):,.0f} | {v(t,'edit','store_bytes'):,.0f} | | | {raw / 1e6 / v(t,'first','wall_s'):.1f} | | | |")
PY
