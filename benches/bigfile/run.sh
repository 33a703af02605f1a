#!/usr/bin/env bash
# Large files (issue 18): what chunk tiers for large files cost and buy.
# wsnap before tiers (32 KiB chunks for every file), wsnap with each of the
# default tiers' sizes given to this file (t256k: 64/256/1024 KiB, the
# default from 256 MiB; t1m: 256/1024/4096 KiB, the default from 4 GiB) and
# restic on the same file, one run.
#
#   benches/bigfile/run.sh MAIN_WSNAP NEW_WSNAP [--gib N] [--keep]
#
# One workspace u/p holding one N GiB file (default 2) of 1 MiB blocks,
# alternately random (incompressible) and random over 16 byte values (zstd
# keeps about half). Each tool takes, into an empty store: a first snapshot
# (wall, peak RSS), then one after 16 scattered 4 KiB pages of the file are
# overwritten in place (wall, bytes the store grew by). For wsnap also the
# distinct chunks (`stats --json`), i.e. catalog `blobs` rows, and the
# catalog file; the 20 TB column is rows per GiB × 20 TB × 120.3 B/row
# (measured at 100 M rows by benches/blob_scale.rs). Warm page cache (the
# file is read once before). Everything lives under target/bench-bigfile/
# and is removed at the end (unless --keep).
set -euo pipefail
main=$1 new=$2; shift 2
gib=2 keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --gib) gib=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v restic >/dev/null || { echo "restic is not installed (apt-get install restic)" >&2; exit 2; }
cd "$(dirname "$0")/../.."
base=$PWD/target/bench-bigfile
rm -rf "$base"; mkdir -p "$base/root/u/p"
cp "$main" "$base/wsnap-main"; cp "$new" "$base/wsnap-new"
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$base/restic-cache
data=$base/root/u/p/big.bin
echo "load $(cut -d' ' -f1-3 /proc/loadavg); main $(realpath "$main"), new $(realpath "$new"); $(restic version | cut -d' ' -f1-2); $gib GiB"

python3 - "$data" "$gib" <<'PY'
import random, sys
path, gib = sys.argv[1], int(sys.argv[2])
r = random.Random(18)
low = bytes.maketrans(bytes(range(256)), bytes(48 + (b & 15) for b in range(256)))
with open(path, "wb") as f:
    for i in range(gib * 1024):
        b = r.randbytes(1 << 20)
        f.write(b if i % 2 == 0 else b.translate(low))
PY
cat "$data" >/dev/null

# edit apply|revert: 16 pages of 4 KiB, evenly spread, overwritten in place.
edit() {
  python3 - "$data" "$base/pages.orig" "$1" <<'PY'
import os, random, sys
path, orig, what = sys.argv[1:]
size = os.path.getsize(path)
offs = [((i * size // 16) + 5 * 4096 + i * 12288) // 4096 * 4096 for i in range(16)]
with open(path, "r+b") as f:
    if what == "apply":
        with open(orig, "wb") as o:
            for off in offs:
                f.seek(off); o.write(f.read(4096))
        r = random.Random(99)
        for off in offs:
            f.seek(off); f.write(r.randbytes(4096))
    else:
        with open(orig, "rb") as o:
            for off in offs:
                f.seek(off); f.write(o.read(4096))
PY
}

snap() { # snap TOOL STORE LOG: one snapshot; "wall_s peak_kb" to LOG
  local tool=$1 store=$2 log=$3
  case $tool in
    restic) /usr/bin/time -f '%e %M' -o "$log" \
              restic -q -r "$store" backup "$base/root" >/dev/null ;;
    main) /usr/bin/time -f '%e %M' -o "$log" \
              "$base/wsnap-main" --store "$store" -q snapshot --root "$base/root" >/dev/null ;;
    *) /usr/bin/time -f '%e %M' -o "$log" \
              "$base/wsnap-new" --store "$store" -q snapshot --root "$base/root" >/dev/null ;;
  esac
}

printf '%-8s %7s %7s %7s %8s %8s %9s %10s %7s %12s\n' \
  tool first_s MiB/s peak_MB store_MB chunks catalog_KB 20TB_cat_GB edit_s edit_added_KB
for tool in main t256k t1m restic; do
  store=$base/store-$tool
  case $tool in
    restic) restic -q -r "$store" init >/dev/null ;;
    main) "$base/wsnap-main" --store "$store" init >/dev/null ;;
    t256k) "$base/wsnap-new" --store "$store" init \
             --chunk-tiers 1:268435456=65536/262144/1048576 >/dev/null ;;
    t1m) "$base/wsnap-new" --store "$store" init \
                --chunk-tiers 1:268435456=262144/1048576/4194304 >/dev/null ;;
  esac
  snap "$tool" "$store" "$base/first.log"
  read -r first_s first_kb <"$base/first.log"
  bytes1=$(du -sb "$store" | cut -f1)
  chunks=- cat_kb=- cat20=-
  if [ "$tool" != restic ]; then
    bin=$base/wsnap-new; [ "$tool" = main ] && bin=$base/wsnap-main
    chunks=$("$bin" --store "$store" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
    cat_kb=$(( ($(stat -c %s "$store/catalog.sqlite") + $(stat -c %s "$store/catalog.sqlite-wal" 2>/dev/null || echo 0)) / 1024 ))
    cat20=$(python3 -c "print(f'{$chunks / $gib * (20e12 / 2**30) * 120.3 / 1e9:.1f}')")
  fi
  edit apply
  sleep 2.2
  snap "$tool" "$store" "$base/edit.log"
  read -r edit_s _ <"$base/edit.log"
  bytes2=$(du -sb "$store" | cut -f1)
  edit revert
  printf '%-8s %7s %7.0f %7d %8d %8s %9s %10s %7s %12d\n' "$tool" "$first_s" \
    "$(python3 -c "print($gib * 1024 / $first_s)")" $((first_kb / 1024)) $((bytes1 >> 20)) \
    "$chunks" "$cat_kb" "$cat20" "$edit_s" $(((bytes2 - bytes1) / 1024))
  [ $keep = 1 ] || rm -rf "$store"
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
[ $keep = 1 ] || rm -rf "$base"
