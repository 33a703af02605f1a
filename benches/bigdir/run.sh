#!/usr/bin/env bash
# Big directories (issue 18): what a one-file edit in one large directory
# costs, and the peak memory of a first and an unchanged snapshot of it.
# Two wsnap binaries (before/after) and restic on the same tree, one run.
#
#   benches/bigdir/run.sh OLD_WSNAP NEW_WSNAP [--entries N ...] [--keep]
#
# For each N (default 20000 and 100000): one workspace u/p whose directory
# big/ holds N small text files (20–40 bytes, distinct), plus a README.
# Each tool takes, into an empty store: a first snapshot (wall, peak RSS),
# an unchanged one (wall, peak RSS), then one after a one-line edit of the
# file in the middle (bytes its store grew by; for wsnap also `tree_refs`
# rows added). Peak RSS is /usr/bin/time's %M. Warm page cache; the racy
# window is waited out before each snapshot so the stat cache applies.
# Everything lives under target/bench-bigdir/ and is removed at the end.
set -euo pipefail
old=$1 new=$2; shift 2
sizes=() keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --entries) sizes+=("$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(20000 100000)
command -v restic >/dev/null || { echo "restic is not installed (apt-get install restic)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is not installed" >&2; exit 2; }
cd "$(dirname "$0")/../.."
base=$PWD/target/bench-bigdir
rm -rf "$base"; mkdir -p "$base"
cp "$old" "$base/wsnap-old"; cp "$new" "$base/wsnap-new"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$base/restic-cache
echo "load $(cut -d' ' -f1-3 /proc/loadavg); old $(realpath "$old"), new $(realpath "$new"); $(restic version | cut -d' ' -f1-2)"

store_bytes() { # bytes a tool's store holds (wsnap: packs; restic: the repository)
  case $1 in
    old|new) du -sb "$2/packs" | cut -f1 ;;
    restic) du -sb "$2" | cut -f1 ;;
  esac
}
refs() { sqlite3 "$1/catalog.sqlite" 'SELECT count(*) FROM tree_refs' ; }
# snap TOOL STORE ROOT LOG: one snapshot; "wall_s peak_kb" to LOG.
snap() {
  local tool=$1 store=$2 root=$3 log=$4
  case $tool in
    old|new) /usr/bin/time -f '%e %M' -o "$log" \
               "$base/wsnap-$tool" --store "$store" -q snapshot --root "$root" >/dev/null ;;
    restic) /usr/bin/time -f '%e %M' -o "$log" \
               restic -q -r "$store" backup "$root" >/dev/null ;;
  esac
}
racy() { sleep 2.2; }

printf '%-8s %8s %9s %9s %9s %9s %12s %10s\n' tool entries first_s first_MB same_s same_MB edit_added_KiB edit_refs
for n in "${sizes[@]}"; do
  root=$base/root-$n
  python3 - "$root/u/p" "$n" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(os.path.join(d, "big"))
with open(os.path.join(d, "README.md"), "w") as f:
    f.write("a big directory\n")
for i in range(n):
    with open(os.path.join(d, "big", f"sample-{i:06d}.txt"), "w") as f:
        f.write(f"sample {i}: {i * 7919}\n")
PY
  find "$root" -type f -print0 | xargs -0 cat > /dev/null
  for tool in old new restic; do
    store=$base/store-$tool-$n
    [ $tool = restic ] && restic -q -r "$store" init >/dev/null
    racy
    snap $tool "$store" "$root" "$base/t1"
    snap $tool "$store" "$root" "$base/t2"
    b0=$(store_bytes $tool "$store"); r0=0
    [ $tool = restic ] || r0=$(refs "$store")
    f=$root/u/p/big/sample-$(printf '%06d' $((n / 2))).txt
    printf 'sample %d: edited\n' $((n / 2)) > "$f"
    racy
    snap $tool "$store" "$root" "$base/t3"
    b1=$(store_bytes $tool "$store"); r1=0
    [ $tool = restic ] || r1=$(refs "$store")
    # Put the file back (same bytes, new mtime) for the next tool.
    printf 'sample %d: %d\n' $((n / 2)) $((n / 2 * 7919)) > "$f"
    read -r w1 m1 < "$base/t1"; read -r w2 m2 < "$base/t2"
    printf '%-8s %8d %9.2f %9.1f %9.2f %9.1f %12.1f %10s\n' $tool "$n" "$w1" "$(echo "$m1/1024" | bc -l)" \
      "$w2" "$(echo "$m2/1024" | bc -l)" "$(echo "($b1-$b0)/1024" | bc -l)" \
      "$([ $tool = restic ] && echo - || echo $((r1 - r0)))"
    [ "$keep" = 1 ] || rm -rf "$store"
  done
  [ "$keep" = 1 ] || rm -rf "$root"
done
[ "$keep" = 1 ] || rm -rf "$base"
