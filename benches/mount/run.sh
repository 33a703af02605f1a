#!/usr/bin/env bash
# Browsing without restoring: `wsnap mount` beside `restic mount` and
# `borg mount` of the same contents, in one run on the same data.
#
#   benches/mount/run.sh [FILES] [BIG_MIB]      (defaults: 100000 files, 256 MiB)
#
# Data: one workspace of FILES small files (1-8 KiB, 100 per directory) and
# one BIG_MIB file of random bytes, backed up once by each tool. For each
# tool, on a fresh mount:
#   mount   launch to the first successful stat of the big file inside it
#   find    `find DIR -type f | wc -l` over the mounted workspace (cold)
#   cold    `cat big > /dev/null` right after mounting (page cache dropped)
#   warm    the same again (the tool's cache and the kernel's page cache)
# Needs root (drop_caches), FUSE (fuse3), restic, borg (`apt-get install
# borgbackup` here if missing). Prints a table; the lead runs it at full
# size, the closing note of issue 16 gives the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${1:-100000}
BIG_MIB=${2:-256}

command -v fusermount3 >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3; }
command -v borg >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq borgbackup python3-llfuse; }
command -v restic >/dev/null || { echo "restic is missing (apt-get install restic)" >&2; exit 2; }
cargo build --release --quiet
W=$PWD/target/release/wsnap

work=$(mktemp -d /var/tmp/wsnap-mount-bench.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt"
cleanup() {
  mountpoint -q "$mnt" && { fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; }
  rm -rf "$work"
}
trap cleanup EXIT

echo "data: $FILES files + ${BIG_MIB} MiB in $work" >&2
python3 - "$work/root/bench/ws" "$FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(16)
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.txt" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 8192)))
PY
head -c "$((BIG_MIB << 20))" /dev/urandom > "$work/root/bench/ws/big.bin"

export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/restic-cache
export BORG_PASSPHRASE="" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$work/borg-base
(cd "$work/root" &&
  "$W" --store "$work/wsnap" init >/dev/null &&
  "$W" --store "$work/wsnap" snapshot --root "$work/root" -q &&
  restic init -q -r "$work/restic" &&
  restic backup -q -r "$work/restic" bench/ws &&
  borg init -e none "$work/borg" &&
  borg create "$work/borg::snap" bench/ws)

now() { date +%s.%N; }
secs() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
rate() { python3 -c "import sys; d=float(sys.argv[2])-float(sys.argv[1]); print('%.0f' % ($BIG_MIB / d) if d > 0 else 'inf')" "$1" "$2"; }

# mount_cmd TOOL: start TOOL's mount of the backup at $mnt in the background.
start_mount() {
  case $1 in
    wsnap) "$W" --store "$work/wsnap" mount "$mnt" --foreground >/dev/null 2>>"$work/$1.log" & ;;
    restic) restic -r "$work/restic" mount "$mnt" >>"$work/$1.log" 2>&1 & ;;
    borg) borg mount -f "$work/borg::snap" "$mnt" >>"$work/$1.log" 2>&1 & ;;
  esac
  echo $!
}
stop_mount() {
  fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" || true
  wait "$1" 2>/dev/null || true
}

# Where each tool shows the workspace (restic's snapshot path is found once).
ws_dir() {
  case $1 in
    wsnap) echo "$mnt/workspaces/bench/ws/latest" ;;
    borg) echo "$mnt/bench/ws" ;;
    restic) echo "$mnt/snapshots/latest/$RESTIC_REL" ;;
  esac
}
pid=$(start_mount restic)
for _ in $(seq 600); do [ -d "$mnt/snapshots/latest" ] && break; sleep 0.1; done
big=$(find "$mnt/snapshots/latest/" -name big.bin -print -quit)
RESTIC_REL=${big#"$mnt/snapshots/latest/"}
RESTIC_REL=${RESTIC_REL%/big.bin}
stop_mount "$pid"

printf '%-8s %10s %12s %14s %14s\n' tool "mount (s)" "find (s)" "cold (MiB/s)" "warm (MiB/s)"
for tool in wsnap restic borg; do
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(now); pid=$(start_mount $tool)
  dir=$(ws_dir $tool)
  for _ in $(seq 6000); do stat "$dir/big.bin" >/dev/null 2>&1 && break; sleep 0.01; done
  t1=$(now)
  n=$(find "$dir/" -type f | wc -l); t2=$(now)
  cat "$dir/big.bin" > /dev/null; t3=$(now)
  cat "$dir/big.bin" > /dev/null; t4=$(now)
  stop_mount "$pid"
  printf '%-8s %10s %12s %14s %14s   (%s files)\n' $tool "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" \
    "$(rate "$t2" "$t3")" "$(rate "$t3" "$t4")" "$n"
done
