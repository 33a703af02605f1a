#!/usr/bin/env bash
# Many small workspaces (issue 18): the no-change tick's fixed cost per
# workspace. Two wsnap binaries (before/after) and restic on the same
# seeded tree, in one run, alternating, median of --reps. Ratios to restic
# (and new/old) are what to read: the machine is shared.
#
#   benches/manyws/run.sh OLD_WSNAP NEW_WSNAP [--reps N] [--workspaces N]
#
# Tree: N workspaces (default 10,000: u0000/p0 … u0999/p9), each with 5
# small text files (README.md, main.py, notes.txt, data/results.csv,
# data/params.json: 4 directories' worth of entries, 200–1,200 bytes per
# file). Warm page cache. Each tool takes a first snapshot into an empty
# store (timed once), then --reps no-change ticks, in an order rotated per
# rep; wall and CPU seconds from /usr/bin/time. Writes everything under
# target/bench-manyws/ and removes it at the end (--keep leaves it).
set -euo pipefail
old=$1 new=$2; shift 2
reps=5 workspaces=10000 keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --workspaces) workspaces=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v restic >/dev/null || { echo "restic is not installed (apt-get install restic)" >&2; exit 2; }
cd "$(dirname "$0")/../.."
base=$PWD/target/bench-manyws
rm -rf "$base"; mkdir -p "$base"
cp "$old" "$base/wsnap-old"; cp "$new" "$base/wsnap-new"
root=$base/root
python3 - "$root" "$workspaces" <<'PY'
import os, random, sys
root, nws = sys.argv[1], int(sys.argv[2])
r = random.Random(18)
letters = "abcdefghijklmnopqrstuvwxyz \n"
names = ["README.md", "main.py", "notes.txt", "data/results.csv", "data/params.json"]
for w in range(nws):
    d = os.path.join(root, f"u{w // 10:04d}", f"p{w % 10}")
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    for n in names:
        with open(os.path.join(d, n), "w") as fh:
            fh.write("".join(r.choice(letters) for _ in range(r.randrange(200, 1200))))
PY
find "$root" -type f -print0 | xargs -0 cat > /dev/null
sleep 3  # out of the racy window: the first no-change tick reuses every file
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$base/restic-cache
# run TOOL LOG: one snapshot (backup) of the root by TOOL; wall and CPU to LOG.
run() {
  local tool=$1 log=$2
  case $tool in
    old|new) /usr/bin/time -f '%e %U %S %M' -o "$log" \
               "$base/wsnap-$tool" --store "$base/store-$tool" -q snapshot --root "$root" >/dev/null ;;
    restic) /usr/bin/time -f '%e %U %S %M' -o "$log" \
               restic -q -r "$base/store-restic" backup "$root" >/dev/null ;;
  esac
}
restic -q -r "$base/store-restic" init >/dev/null
declare -A first wall cpu
for tool in old new restic; do
  run $tool "$base/t"; first[$tool]=$(cut -d' ' -f1 "$base/t"); wall[$tool]=""; cpu[$tool]=""
done
for rep in $(seq "$reps"); do
  case $((rep % 3)) in
    0) order="old new restic" ;; 1) order="new restic old" ;; *) order="restic old new" ;;
  esac
  for tool in $order; do
    run $tool "$base/t"
    read -r w u s m < "$base/t"
    wall[$tool]+="$w "; cpu[$tool]+="$(echo "$u + $s" | bc) "
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "tree: $workspaces workspaces x 5 files; reps $reps; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "old $(realpath "$old"), new $(realpath "$new")"
printf '%-8s %9s %14s %14s  %s\n' tool first_s nochange_s nochange_cpu_s "all no-change walls"
for tool in old new restic; do
  t=$(echo "${wall[$tool]}" | median); c=$(echo "${cpu[$tool]}" | median)
  eval "T_$tool=$t"
  printf '%-8s %9.2f %14.3f %14.3f  %s\n' "$tool" "${first[$tool]}" "$t" "$c" "${wall[$tool]}"
done
printf 'no-change / restic: old %.3f, new %.3f; new / old %.3f\n' \
  "$(echo "$T_old / $T_restic" | bc -l)" "$(echo "$T_new / $T_restic" | bc -l)" \
  "$(echo "$T_new / $T_old" | bc -l)"
printf 'fixed cost per workspace (no-change wall / workspaces): old %.0f us, new %.0f us\n' \
  "$(echo "$T_old * 1000000 / $workspaces" | bc -l)" "$(echo "$T_new * 1000000 / $workspaces" | bc -l)"
[ "$keep" = 1 ] || rm -rf "$base"
