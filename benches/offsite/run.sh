#!/usr/bin/env bash
# Off-site copies (issue 15): wsnap `push` beside restic's S3 backend, in one
# run, against the same 3-node Garage cluster (replication factor 3) on
# 127.0.0.1, on the same workload.
#
#   benches/offsite/run.sh [--ticks T] [--scale X] [--seed N] [--no-build]
#
# Workload: benches/ticks/workload.py (8 workspaces at scale 1: source files,
# CSVs, notebooks, arrays, figures, a growing log, one big binary per two
# workspaces), then T ticks of edits (default 12).
#
# Per tick: wsnap `snapshot` then `push` (timed separately; bytes uploaded
# from push --json), then `restic backup` of the same root to
# s3:ENDPOINT/restic (timed; bytes from the bucket's size before and after,
# the same measure for wsnap's bucket). After the last tick: restore one
# workspace from the remote into an empty directory, on a fresh wsnap store
# directory that has only the remote's config and key (`restore --remote`),
# and with `restic restore latest --include`; both trees are compared with
# the workspace. Ratios are what to read: the machine is shared.
#
# Everything lives under target/bench-offsite/; results.md at the end.
set -euo pipefail
ticks=12 scale=1.0 seed=42 build=1
while [ $# -gt 0 ]; do
  case $1 in
    --ticks) ticks=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v restic >/dev/null || { echo "restic is not installed (apt-get install restic)" >&2; exit 2; }
command -v garage >/dev/null || { echo "garage is not installed: cargo install garage --locked --version 2.5.0" >&2; exit 2; }
cd "$(dirname "$0")/../.."
repo=$PWD
[ $build = 1 ] && cargo build --release -q
wsnap=${WSNAP:-$repo/target/release/wsnap}
out=$repo/target/bench-offsite
rm -rf "$out"; mkdir -p "$out"
cluster=$out/garage
read -r endpoint key_id secret < <(benches/offsite/garage.sh start "$cluster" wsnap restic)
trap 'benches/offsite/garage.sh stop "$cluster"' EXIT
export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=garage
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$out/restic-cache
unset SCITEX_BACKUP_ROOT SCITEX_WORKSPACE_ROOT SCITEX_MAX_SNAPSHOTS

root=$out/root store=$out/store
python3 benches/ticks/workload.py init --root "$root" --seed "$seed" --scale "$scale" >/dev/null
"$wsnap" --store "$store" init >/dev/null 2>&1
"$wsnap" --store "$store" remote add off s3://wsnap/w --endpoint "$endpoint" --region garage \
  --key-file "$out/off.key" --generate-key > "$out/remote-add.log" 2>&1
restic -r "s3:$endpoint/restic" init > "$out/restic-init.log" 2>&1

# Bytes a bucket holds now: the sum of its objects' sizes, from Garage.
bucket_bytes() {
  garage -c "$cluster/node1/garage.toml" bucket info "$1" |
    python3 -c 'import re,sys
t=sys.stdin.read()
m=re.search(r"Size:\s*[0-9.]+\s*\S+\s*\(([0-9.]+)\s*(B|KiB|MiB|GiB|TiB)\)",t)
u={"B":1,"KiB":1024,"MiB":1024**2,"GiB":1024**3,"TiB":1024**4}
print(int(float(m.group(1))*u[m.group(2)]) if m else 0)'
}
now() { date +%s.%N; }
results=$out/ticks.tsv
printf 'tick\twsnap_snapshot_s\twsnap_push_s\twsnap_uploaded\twsnap_bucket_delta\trestic_backup_s\trestic_bucket_delta\n' > "$results"
for t in $(seq 0 "$ticks"); do
  if [ "$t" -gt 0 ]; then
    python3 benches/ticks/workload.py tick --root "$root" --tick "$t" --seed "$seed" >/dev/null
    sleep 2.5 # edits settle (see benches/ticks/run.sh: racy-file rule)
  fi
  sync
  b0=$(bucket_bytes wsnap)
  a=$(now); "$wsnap" --store "$store" snapshot --root "$root" -q > /dev/null; b=$(now)
  "$wsnap" --store "$store" push off --json > "$out/push-$t.json"; c=$(now)
  b1=$(bucket_bytes wsnap)
  up=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["uploaded"]["size_bytes"])' "$out/push-$t.json")
  sync
  r0=$(bucket_bytes restic)
  d=$(now); restic -r "s3:$endpoint/restic" backup "$root" -q > /dev/null; e=$(now)
  r1=$(bucket_bytes restic)
  printf '%s\t%.3f\t%.3f\t%s\t%s\t%.3f\t%s\n' "$t" "$(echo "$b - $a" | bc)" "$(echo "$c - $b" | bc)" \
    "$up" "$((b1 - b0))" "$(echo "$e - $d" | bc)" "$((r1 - r0))" >> "$results"
done

# Restore one workspace from the remote alone.
ws=$(cd "$root" && ls -d */* | sort | head -1)
fresh=$out/fresh-store
mkdir -p "$fresh"
"$wsnap" --store "$fresh" remote add off s3://wsnap/w --endpoint "$endpoint" --region garage \
  --key-file "$out/off.key" > /dev/null 2>&1
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
a=$(now); "$wsnap" --store "$fresh" restore --remote off "$ws" --at latest --to "$out/r-wsnap" -q; b=$(now)
rm -rf "$RESTIC_CACHE_DIR"
c=$(now); restic -r "s3:$endpoint/restic" restore latest --target "$out/r-restic" --include "$root/$ws" -q; d=$(now)
diff -r --no-dereference "$root/$ws" "$out/r-wsnap" > "$out/diff-wsnap.txt" || true
diff -r --no-dereference "$root/$ws" "$out/r-restic$root/$ws" > "$out/diff-restic.txt" || true

python3 - "$results" "$out" "$(echo "$b - $a" | bc)" "$(echo "$d - $c" | bc)" "$ws" <<'PY'
import csv, os, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
out, wsnap_restore, restic_restore, ws = sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
MiB = 1024 * 1024
first, rest = rows[0], rows[1:]
def f(r, k): return float(r[k])
root_bytes = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(os.path.join(out, "root")) for n in ns if os.path.isfile(os.path.join(d, n)))
lines = []
lines.append(f"workload: {root_bytes / MiB:.1f} MiB under root, {len(rest)} ticks after the first\n")
lines.append("| | wsnap | restic | wsnap / restic |")
lines.append("|---|---:|---:|---:|")
ws_first = f(first, "wsnap_snapshot_s") + f(first, "wsnap_push_s")
lines.append(f"| first snapshot + upload, s | {ws_first:.2f} | {f(first, 'restic_backup_s'):.2f} | {ws_first / f(first, 'restic_backup_s'):.2f} |")
lines.append(f"| first push alone, s (MiB/s of root) | {f(first, 'wsnap_push_s'):.2f} ({root_bytes / MiB / f(first, 'wsnap_push_s'):.1f}) | | |")
lines.append(f"| first upload, bucket MiB | {int(first['wsnap_bucket_delta']) / MiB:.2f} | {int(first['restic_bucket_delta']) / MiB:.2f} | {int(first['wsnap_bucket_delta']) / max(1, int(first['restic_bucket_delta'])):.2f} |")
if rest:
    n = len(rest)
    wt = sum(f(r, "wsnap_snapshot_s") + f(r, "wsnap_push_s") for r in rest) / n
    rt = sum(f(r, "restic_backup_s") for r in rest) / n
    wb = sum(int(r["wsnap_bucket_delta"]) for r in rest) / n
    rb = sum(int(r["restic_bucket_delta"]) for r in rest) / n
    wu = sum(int(r["wsnap_uploaded"]) for r in rest) / n
    lines.append(f"| per tick: snapshot + upload, s (mean) | {wt:.2f} | {rt:.2f} | {wt / rt:.2f} |")
    lines.append(f"| per tick: bucket growth, KiB (mean) | {wb / 1024:.1f} | {rb / 1024:.1f} | {wb / max(1, rb):.2f} |")
    lines.append(f"| per tick: bytes uploaded (push --json), KiB (mean) | {wu / 1024:.1f} | | |")
lines.append(f"| restore {ws} from the remote alone, s | {wsnap_restore:.2f} | {restic_restore:.2f} | {wsnap_restore / restic_restore:.2f} |")
for tool in ("wsnap", "restic"):
    d = open(os.path.join(out, f"diff-{tool}.txt")).read()
    lines.append(f"\n{tool} restore vs the workspace: {'identical' if not d else 'DIFFERS, see diff-' + tool + '.txt'}")
text = "\n".join(lines)
open(os.path.join(out, "results.md"), "w").write(text + "\n")
print(text)
PY
