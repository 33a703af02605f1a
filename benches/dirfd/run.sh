#!/usr/bin/env bash
# Directory-relative I/O cost (issue 12): the first snapshot and the
# no-change tick of two wsnap binaries (before/after) and restic, on the same
# tree, in one run, alternating, median of --reps. Ratios to restic are what
# to read (the machine is shared).
#
#   benches/dirfd/run.sh OLD_WSNAP NEW_WSNAP [--reps N] [--workspaces N] [--files N]
#
# Tree: N workspaces (default 200) × F small text files (default 250, in
# directories of 50, 200-1,200 bytes each), seeded. Warm page cache. Writes
# everything under target/bench-dirfd/.
set -euo pipefail
old=$1 new=$2; shift 2
reps=5 workspaces=200 files=250
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --workspaces) workspaces=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v restic >/dev/null || { echo "restic is not installed (apt-get install restic)" >&2; exit 2; }
cd "$(dirname "$0")/../.."
base=$PWD/target/bench-dirfd
rm -rf "$base"; mkdir -p "$base"
root=$base/root
python3 - "$root" "$workspaces" "$files" <<'PY'
import os, random, sys
root, nws, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(12)
letters = b"abcdefghijklmnopqrstuvwxyz \n"
for w in range(nws):
    for f in range(nfiles):
        d = os.path.join(root, f"user{w % 20:02d}", f"project{w // 20:03d}", f"d{f // 50:02d}")
        os.makedirs(d, exist_ok=True)
        n = r.randrange(200, 1200)
        with open(os.path.join(d, f"f{f:04d}.txt"), "wb") as fh:
            fh.write(bytes(r.choice(letters) for _ in range(n)))
PY
find "$root" -type f -print0 | xargs -0 cat > /dev/null
sleep 3  # out of the racy window: the first no-change tick reuses every file
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$base/restic-cache
now() { date +%s.%N; }
declare -A first tick
for tool in old new restic; do first[$tool]=""; tick[$tool]=""; done
for rep in $(seq "$reps"); do
  order="old new restic"; [ $((rep % 2)) = 0 ] && order="new old restic"
  for tool in $order; do
    store=$base/store-$tool
    rm -rf "$store" "$RESTIC_CACHE_DIR"
    case $tool in
      old|new)
        bin=$old; [ $tool = new ] && bin=$new
        t0=$(now); "$bin" --store "$store" -q snapshot --root "$root" >/dev/null || true; t1=$(now)
        "$bin" --store "$store" -q snapshot --root "$root" >/dev/null || true; t2=$(now) ;;
      restic)
        restic -q -r "$store" init >/dev/null
        t0=$(now); restic -q -r "$store" backup "$root" >/dev/null; t1=$(now)
        restic -q -r "$store" backup "$root" >/dev/null; t2=$(now) ;;
    esac
    first[$tool]+="$(echo "$t1 - $t0" | bc) "
    tick[$tool]+="$(echo "$t2 - $t1" | bc) "
  done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "tree: $workspaces workspaces x $files files; reps $reps; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %10s %10s\n' tool first_s nochange_s
for tool in old new restic; do
  f=$(echo "${first[$tool]}" | median); t=$(echo "${tick[$tool]}" | median)
  eval "F_$tool=$f T_$tool=$t"
  printf '%-8s %10.3f %10.3f\n' "$tool" "$f" "$t"
done
printf 'ratio to restic: first old %.3f new %.3f; no-change old %.3f new %.3f\n' \
  "$(echo "$F_old / $F_restic" | bc -l)" "$(echo "$F_new / $F_restic" | bc -l)" \
  "$(echo "$T_old / $T_restic" | bc -l)" "$(echo "$T_new / $T_restic" | bc -l)"
printf 'new / old: first %.3f, no-change %.3f\n' \
  "$(echo "$F_new / $F_old" | bc -l)" "$(echo "$T_new / $T_old" | bc -l)"
rm -rf "$base"
