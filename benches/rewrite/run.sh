#!/usr/bin/env bash
# Purging one file from every snapshot of a workspace: `wsnap rewrite`
# against `borg recreate --exclude` + `borg compact --threshold 0` (every
# segment with freed space rewritten, as wsnap rewrites every pack holding
# removed data), on the same history.
#
#   benches/rewrite/run.sh [--snapshots N] [--files N]
#
# A workspace of FILES files (random, 4–60 KiB, in 20 directories) plus a
# 256 KiB random `secret.env`; N snapshots, one small edit (a note appended,
# one file rewritten) before each, taken by wsnap and by borg (repokey
# none, zstd 3). Then each tool drops `secret.env` from all N, and the
# script checks that no 64-byte window of the secret is left in any file of
# either store. Everything lives under target/rewrite-bench/ (deleted at
# the start of the next run). Timing: /usr/bin/time -f '%e %U %S %M'.
#
# Env: WSNAP=/path/to/wsnap (default target/release/wsnap).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$REPO/target/rewrite-bench
WSNAP=${WSNAP:-$REPO/target/release/wsnap}
N=48 FILES=2000
while (($#)); do
  case $1 in
    --snapshots) N=$2; shift ;;
    --files) FILES=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $WSNAP ]] || { echo "no wsnap binary at $WSNAP (cargo build --release)" >&2; exit 2; }
command -v borg >/dev/null || { echo "borg not installed (apt-get install borgbackup)" >&2; exit 2; }

rm -rf "$OUT"
WS=$OUT/root/alice/thesis
mkdir -p "$WS"
export BORG_REPO=$OUT/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$OUT/borg-base TZ=UTC
STORE=$OUT/wsnap

python3 - "$WS" "$FILES" <<'PY'
import os, random, sys
ws, n = sys.argv[1], int(sys.argv[2])
r = random.Random(17)
for i in range(n):
    d = os.path.join(ws, f"d{i % 20:02}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05}.bin"), "wb") as f:
        f.write(r.randbytes(r.randint(4096, 60 * 1024)))
with open(os.path.join(ws, "secret.env"), "wb") as f:
    f.write(random.Random(0x5EC2E7).randbytes(256 * 1024))
PY

t() { # label cmd...: time one command, append "label wall user sys maxrss_kb"
  local label=$1; shift
  /usr/bin/time -f "$label %e %U %S %M" -a -o "$OUT/times.txt" "$@" >"$OUT/$label.out" 2>&1
}
borg init -e none >/dev/null
echo "[rewrite-bench] $N snapshots of $FILES files ($(du -sh "$WS" | cut -f1)) into wsnap and borg" >&2
for ((i = 0; i < N; i++)); do
  echo "edit $i" >>"$WS/notes.txt"
  k=$(((i * 37) % FILES))
  head -c 20000 /dev/urandom >"$WS/d$(printf %02d $((k % 20)))/f$(printf %05d $k).bin"
  stamp=$(date -u -d "@$((1767225600 + i * 3600))" +%Y-%m-%dT%H:%M:%S)
  "$WSNAP" --store "$STORE" -q snapshot --root "$OUT/root" --time "${stamp}Z" >/dev/null
  (cd "$WS" && borg create -C zstd,3 --timestamp "$stamp" "::s$i" . )
done
before_w=$(du -sb "$STORE" | cut -f1); before_b=$(du -sb "$BORG_REPO" | cut -f1)
: >"$OUT/times.txt"
t wsnap_rewrite "$WSNAP" --store "$STORE" rewrite alice/thesis --all --exclude secret.env
t borg_recreate borg recreate --exclude 'sh:**/secret.env' --exclude 'sh:secret.env'
t borg_compact borg compact --threshold 0
after_w=$(du -sb "$STORE" | cut -f1); after_b=$(du -sb "$BORG_REPO" | cut -f1)

python3 - "$OUT" "$STORE" "$BORG_REPO" "$before_w" "$after_w" "$before_b" "$after_b" "$N" <<'PY'
import os, random, sys
out, wstore, brepo = sys.argv[1:4]
bw, aw, bb, ab, n = map(int, sys.argv[4:9])
secret = random.Random(0x5EC2E7).randbytes(256 * 1024)
wins = {secret[i:i + 64] for i in range(0, len(secret) - 63, 16384)}
def left(d):
    hits = 0
    for root, _, files in os.walk(d):
        for f in files:
            b = open(os.path.join(root, f), "rb").read()
            hits += any(w in b for w in wins)
    return hits
t = {}
for line in open(os.path.join(out, "times.txt")):
    p = line.split()
    if len(p) == 5:
        t[p[0]] = tuple(map(float, p[1:]))
w = t["wsnap_rewrite"][0]
b = t["borg_recreate"][0] + t["borg_compact"][0]
print(f"| tool | wall s | user s | max RSS MiB | store before | after | files still holding the secret |")
print(f"|---|---:|---:|---:|---:|---:|---:|")
print(f"| wsnap rewrite | {w:.2f} | {t['wsnap_rewrite'][1]:.2f} | {t['wsnap_rewrite'][3]/1024:.0f} | {bw} | {aw} | {left(wstore)} |")
print(f"| borg recreate + compact | {b:.2f} | {t['borg_recreate'][1] + t['borg_compact'][1]:.2f} | {max(t['borg_recreate'][3], t['borg_compact'][3])/1024:.0f} | {bb} | {ab} | {left(brepo)} |")
print(f"\n{n} snapshots; wsnap/borg wall time ratio {w / b:.3f}; load average {os.getloadavg()[0]:.1f}")
PY
