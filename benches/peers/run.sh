#!/usr/bin/env bash
# Peer-comparison benchmark: wsnap vs restic, borg, rsync (+ physical floors).
#
#   benches/peers/run.sh [--small] [--scale X] [--seed N] [--reps N]
#                        [--tools "floors wsnap restic borg rsync"] [--no-build]
#
# Everything generated lives under target/peers/ (tree cache keyed by
# generator version/seed/scale, stores, restores, logs, results.{json,md}).
# Caches are WARM: nothing is dropped from the page cache; the tree is read
# once before any measurement, and `sync` runs (untimed) before every timed
# phase so one tool's dirty pages are not flushed on another tool's clock.
# Timing: /usr/bin/time -f '%e %U %S %M' (wall s, user s, sys s, max RSS KiB).
# With --reps N every tool sequence is repeated N times (tools interleaved per
# rep) and the table shows medians.
#
# Env overrides: WSNAP=/path/to/wsnap (skips the build), PYTHON=python3.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$REPO/target/peers
PYTHON=${PYTHON:-python3}

ORIG_ARGS="$*"
SCALE=1.0 SEED=42 REPS=1 SMALL=0 BUILD=1
TOOLS="floors wsnap restic borg rsync"
while (($#)); do
  case $1 in
    --small) SMALL=1 ;;
    --scale) SCALE=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --tools) TOOLS=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
NOTES=$OUT/notes.txt
note() { log "NOTE: $*"; printf '%s\n' "$*" >>"$NOTES"; }

# ------------------------------------------------------------------ setup --
mkdir -p "$OUT"
log "cleaning previous stores, copies, restores and logs under $OUT"
rm -rf "$OUT/stores" "$OUT/restore" "$OUT/rsync" "$OUT/cache" "$OUT/logs" "$OUT/bin" \
       "$OUT/results.json" "$OUT/results.md" "$NOTES" "$OUT/filelist0"
mkdir -p "$OUT/stores" "$OUT/restore" "$OUT/rsync" "$OUT/cache" "$OUT/logs" "$OUT/bin"
: >"$NOTES"
LOGS=$OUT/logs
RAW=$OUT/logs/raw.tsv          # tool phase rep wall user sys maxrss_kb rc load1
METRICS=$OUT/logs/metrics.tsv  # tool key rep value
printf 'tool\tphase\trep\twall\tuser\tsys\tmaxrss_kb\trc\tload1\n' >"$RAW"
printf 'tool\tkey\trep\tvalue\n' >"$METRICS"
metric() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$METRICS"; }

# Timer: GNU time, installed via apt-get if missing; python3 rusage fallback.
if [[ ! -x /usr/bin/time ]]; then
  log "/usr/bin/time missing: trying apt-get install time"
  { apt-get update -qq && apt-get install -y -qq time; } >&2 || true
fi
if [[ -x /usr/bin/time ]]; then
  TIMER=(/usr/bin/time -f '%e %U %S %M' -o)
else
  note "GNU time unavailable: using python3 resource.getrusage fallback timer"
  cat >"$OUT/bin/ptime.py" <<'EOF'
import resource, subprocess, sys, time
out = sys.argv[1]; t = time.monotonic()
rc = subprocess.call(sys.argv[2:])
w = time.monotonic() - t; u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(out, "w").write(f"{w:.2f} {u.ru_utime:.2f} {u.ru_stime:.2f} {u.ru_maxrss}\n")
sys.exit(rc)
EOF
  TIMER=("$PYTHON" "$OUT/bin/ptime.py")
fi

REP=0
# measure TOOL PHASE cmd... : times cmd (stdout/stderr to logs), appends to RAW,
# returns the command's exit code.
measure() {
  local tool=$1 phase=$2; shift 2
  local base="$LOGS/$tool.$phase.r$REP" rc=0 load wall user sys rss
  sync
  load=$(cut -d' ' -f1 /proc/loadavg)
  log "$tool: $phase (rep $REP) ..."
  "${TIMER[@]}" "$base.time" "$@" >"$base.out" 2>"$base.err" || rc=$?
  read -r wall user sys rss < <(tail -n1 "$base.time") || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$phase" "$REP" "${wall:-NA}" \
    "${user:-NA}" "${sys:-NA}" "${rss:-NA}" "$rc" "$load" >>"$RAW"
  log "$tool: $phase done: wall ${wall:-?}s user ${user:-?}s sys ${sys:-?}s rss ${rss:-?}KiB rc $rc (load $load)"
  if ((rc != 0)); then
    note "$tool $phase (rep $REP) exited $rc: $* -- stderr tail: $(tail -c 600 "$base.err" | tr '\n' ' ')"
  fi
  return "$rc"
}
dusb() { du -scb "$@" 2>/dev/null | tail -n1 | cut -f1; }
# store_breakdown TOOL DIR: bytes per top-level entry (e.g. packs vs catalog + WAL)
store_breakdown() {
  local e
  for e in "$2"/*; do [[ -e $e ]] && metric "$1" "store.$(basename "$e")" "$REP" "$(dusb "$e")"; done
  return 0
}
have() { command -v "$1" >/dev/null 2>&1; }

# ------------------------------------------------------------- the tree --
GEN_ARGS=(gen --base "$OUT/tree" --seed "$SEED")
if ((SMALL)); then GEN_ARGS+=(--small); else GEN_ARGS+=(--scale "$SCALE"); fi
log "generating / reusing tree: gen_tree.py ${GEN_ARGS[*]}"
KEYDIR=$("$PYTHON" "$HERE/gen_tree.py" "${GEN_ARGS[@]}" | tail -n1)
MANIFEST=$KEYDIR/manifest.json
ROOT=$KEYDIR/root
mf() { "$PYTHON" -c 'import json,sys; m=json.load(open(sys.argv[1]))
v=m
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$MANIFEST" "$1"; }
LWS=$(mf largest_workspace)
INCL_BYTES=$(mf stats.included_bytes)
INCL_FILES=$(mf stats.included_files)
log "tree $ROOT: $(mf stats.files) files / $(mf stats.bytes) bytes;" \
    "included (after excludes) $INCL_FILES files / $INCL_BYTES bytes; largest workspace $LWS"

edit() { "$PYTHON" "$HERE/gen_tree.py" edit --tree "$KEYDIR" "$1"; }
# wsnap re-reads files whose mtime/ctime is within 2 s of the parent run's
# start (git's racy rule), so let the clock move past any tree modification
# before a first run; otherwise the no-change run would re-read them.
settle() { sleep 3; }
clean_tree() { edit revert; settle; }

# Sanity: refuse to run without room for 3 rsync copies + 3 stores + restores.
FREE=$(df -B1 --output=avail "$OUT" | tail -n1)
NEED=$(( INCL_BYTES * 8 ))
if ((FREE < NEED)); then
  log "only $FREE bytes free under $OUT, need ~$NEED"; exit 1
fi

EXCL_NAMES=(.git node_modules __pycache__ .venv venv)
DIFF_X=(); for n in "${EXCL_NAMES[@]}" '*.pyc'; do DIFF_X+=(-x "$n"); done
# verify TOOL RESTORED_DIR: restored workspace == source minus excluded entries
verify() {
  local tool=$1 dir=$2 ok=1
  if [[ ! -d $dir ]]; then
    note "$tool restore verification: $dir does not exist"; ok=0
  else
    if ! diff -r --no-dereference "${DIFF_X[@]}" "$ROOT/$LWS" "$dir" >"$LOGS/$tool.verify.r$REP.txt" 2>&1; then
      note "$tool restore verification FAILED: $(head -c 600 "$LOGS/$tool.verify.r$REP.txt" | tr '\n' ' ')"; ok=0
    fi
    local leaked
    leaked=$(find "$dir" \( -name .git -o -name node_modules -o -name __pycache__ -o -name .venv \
                          -o -name venv -o -name '*.pyc' \) -print | head -n3)
    if [[ -n $leaked ]]; then note "$tool restore contains excluded entries: $leaked"; ok=0; fi
  fi
  metric "$tool" restore_verified "$REP" "$ok"
  log "$tool: restore verified=$ok"
}

# ---------------------------------------------------------------- floors --
FILELIST=$OUT/filelist0
find "$ROOT" \( -name .git -o -name node_modules -o -name __pycache__ -o -name .venv -o -name venv \) \
  -prune -o -type f ! -name '*.pyc' -print0 >"$FILELIST"
log "warming the page cache (untimed read of every included file)"
xargs -0 cat <"$FILELIST" >/dev/null

run_floors() {
  clean_tree
  measure floor-cat first bash -c 'xargs -0 cat < "$1" > /dev/null' _ "$FILELIST" || true
  if have b3sum; then
    measure floor-b3sum first bash -c 'xargs -0 b3sum < "$1" > /dev/null' _ "$FILELIST" || true
  else note "b3sum missing: floor skipped"; fi
  measure floor-walk first find "$ROOT" \( -name .git -o -name node_modules -o -name __pycache__ \
    -o -name .venv -o -name venv \) -prune -o -type f ! -name '*.pyc' -printf '%s %T@ %C@ %i\n' || true
}

# ----------------------------------------------------------------- wsnap --
WSNAP_BIN=""
prepare_wsnap() {
  local src=${WSNAP:-}
  if [[ -z $src ]]; then
    if ((BUILD)); then
      log "building wsnap: cargo build --release (log: $LOGS/cargo-build.log)"
      if ! (cd "$REPO" && cargo build --release) >"$LOGS/cargo-build.log" 2>&1; then
        note "cargo build --release FAILED (concurrent edits?): $(tail -c 400 "$LOGS/cargo-build.log" | tr '\n' ' ')"
        [[ -x $REPO/target/release/wsnap ]] && note "falling back to the existing target/release/wsnap"
      fi
    fi
    src=$REPO/target/release/wsnap
  fi
  if [[ ! -x $src ]]; then note "wsnap binary $src missing: wsnap skipped"; return 1; fi
  # Private copy: others may rebuild target/release/wsnap while we run.
  cp "$src" "$OUT/bin/wsnap"
  WSNAP_BIN=$OUT/bin/wsnap
  metric wsnap git_rev 0 "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo NA)"
  metric wsnap git_dirty_files 0 "$(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)"
  metric wsnap binary_b3 0 "$(b3sum --no-names "$WSNAP_BIN" 2>/dev/null | cut -c1-16 || echo NA)"
  metric wsnap version 0 "$("$WSNAP_BIN" --version 2>&1 | head -n1)"
}

wsnap_stats() {  # PHASE: pull summary numbers out of the --json report
  local phase=$1 f="$LOGS/wsnap.$1.r$REP.out"
  "$PYTHON" - "$f" <<'EOF' | while IFS=$'\t' read -r k v; do metric wsnap "$phase.$k" "$REP" "$v"; done
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"parse_error\t{e!r}"); sys.exit(0)
s = d.get("summary", {})
# JSON schema 2 (docs/JSON.md): added_bytes, read_bytes; the metric names stay.
for k, key in (("files", "files"), ("size_bytes", "size_bytes"), ("bytes_added", "added_bytes"),
               ("failed", "failed"), ("entries_skipped", "entries_skipped")):
    print(f"{k}\t{s.get(key)}")
ws = d.get("workspaces", [])
print(f"bytes_read\t{sum(w.get('read_bytes', 0) or 0 for w in ws)}")
print(f"excluded\t{sum(w.get('excluded', 0) or 0 for w in ws)}")
print(f"ok\t{d.get('ok')}")
print(f"self_seconds\t{d.get('seconds')}")
EOF
}

run_wsnap() {
  [[ -n $WSNAP_BIN ]] || return 0
  local store=$OUT/stores/wsnap dst=$OUT/restore/wsnap
  rm -rf "$store" "$dst"
  clean_tree
  local ph
  for ph in first nochange edit; do
    [[ $ph == edit ]] && edit apply
    measure wsnap "$ph" "$WSNAP_BIN" --store "$store" snapshot --root "$ROOT" --json || true
    wsnap_stats "$ph"
  done
  metric wsnap store_bytes "$REP" "$(dusb "$store")"
  store_breakdown wsnap "$store"
  measure wsnap restore "$WSNAP_BIN" --store "$store" restore "$LWS" --at latest --to "$dst" || true
  verify wsnap "$dst"
  "$WSNAP_BIN" --store "$store" list >"$LOGS/wsnap.list.r$REP.txt" 2>&1 || true
}

# ---------------------------------------------------------------- restic --
RESTIC_X=(--exclude .git --exclude node_modules --exclude __pycache__ --exclude '*.pyc'
          --exclude .venv --exclude venv)
run_restic() {
  local repo=$OUT/stores/restic dst=$OUT/restore/restic
  rm -rf "$repo" "$dst" "$OUT/cache/restic"
  export RESTIC_PASSWORD=benchmark-dummy-password RESTIC_CACHE_DIR=$OUT/cache/restic
  clean_tree
  measure restic init restic -r "$repo" init --repository-version 2 || return 0
  local ph
  for ph in first nochange edit; do
    [[ $ph == edit ]] && edit apply
    measure restic "$ph" restic -r "$repo" backup --compression auto --host bench --json \
      "${RESTIC_X[@]}" "$ROOT" || true
    "$PYTHON" - "$LOGS/restic.$ph.r$REP.out" <<'EOF' | while IFS=$'\t' read -r k v; do metric restic "$ph.$k" "$REP" "$v"; done
import json, sys
summ = {}
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("message_type") == "summary":
        summ = d
for k in ("files_new", "files_changed", "files_unmodified", "total_files_processed",
          "total_bytes_processed", "data_added"):
    print(f"{k}\t{summ.get(k)}")
EOF
  done
  metric restic store_bytes "$REP" "$(dusb "$repo")"
  store_breakdown restic "$repo"
  measure restic restore restic -r "$repo" restore latest --target "$dst" --include "$ROOT/$LWS" || true
  verify restic "$dst$ROOT/$LWS"
}

# ------------------------------------------------------------------ borg --
BORG_X=(); for n in "${EXCL_NAMES[@]}" '*.pyc'; do BORG_X+=(--exclude "sh:**/$n"); done
run_borg() {
  local repo=$OUT/stores/borg dst=$OUT/restore/borg
  rm -rf "$repo" "$dst" "$OUT/cache/borg"
  export BORG_BASE_DIR=$OUT/cache/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
         BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
  clean_tree
  measure borg init borg init -e none "$repo" || return 0
  local ph
  for ph in first nochange edit; do
    [[ $ph == edit ]] && edit apply
    # Run from the root so archive paths are <user>/<project>/...
    measure borg "$ph" env -C "$ROOT" borg create --json -C zstd,3 "${BORG_X[@]}" "$repo::$ph" . || true
    "$PYTHON" - "$LOGS/borg.$ph.r$REP.out" <<'EOF' | while IFS=$'\t' read -r k v; do metric borg "$ph.$k" "$REP" "$v"; done
import json, sys
try:
    s = json.load(open(sys.argv[1]))["archive"]["stats"]
except Exception as e:
    s = {"parse_error": repr(e)}
for k, v in s.items():
    print(f"{k}\t{v}")
EOF
  done
  metric borg store_bytes "$REP" "$(dusb "$repo")"
  store_breakdown borg "$repo"
  mkdir -p "$dst"
  measure borg restore env -C "$dst" borg extract "$repo::edit" "$LWS" || true
  verify borg "$dst/$LWS"
}

# ----------------------------------------------------------------- rsync --
RSYNC_X=(--exclude .git/ --exclude __pycache__/ --exclude '*.pyc' --exclude node_modules/
         --exclude .venv/ --exclude venv/)
run_rsync() {
  local d=$OUT/rsync
  rm -rf "$d" "$OUT/restore/rsync" "$OUT/restore/rsync-link"
  mkdir -p "$d"
  clean_tree
  # Old script: a full copy each tick. full1 is also the --link-dest base.
  measure rsync first rsync -a "${RSYNC_X[@]}" "$ROOT/" "$d/full1/" || true
  measure rsync nochange rsync -a "${RSYNC_X[@]}" "$ROOT/" "$d/full2/" || true
  measure rsync-link nochange rsync -a "${RSYNC_X[@]}" --link-dest="$d/full1" "$ROOT/" "$d/link2/" || true
  edit apply
  measure rsync edit rsync -a "${RSYNC_X[@]}" "$ROOT/" "$d/full3/" || true
  measure rsync-link edit rsync -a "${RSYNC_X[@]}" --link-dest="$d/link2" "$ROOT/" "$d/link3/" || true
  metric rsync store_bytes "$REP" "$(dusb "$d/full1" "$d/full2" "$d/full3")"
  metric rsync-link store_bytes "$REP" "$(dusb "$d/full1" "$d/link2" "$d/link3")"  # hard links once
  metric rsync first_copy_bytes "$REP" "$(dusb "$d/full1")"
  measure rsync restore rsync -a "$d/full3/$LWS/" "$OUT/restore/rsync/" || true
  verify rsync "$OUT/restore/rsync"
  measure rsync-link restore rsync -a "$d/link3/$LWS/" "$OUT/restore/rsync-link/" || true
  verify rsync-link "$OUT/restore/rsync-link"
}

# ------------------------------------------------------------------- run --
{
  echo "date=$(date -Is)"; echo "host_nproc=$(nproc)"; echo "kernel=$(uname -r)"
  echo "mem_total_kb=$(awk '/MemTotal/{print $2}' /proc/meminfo)"
  echo "fs=$(df -T "$OUT" | awk 'NR==2{print $2" "$1}')"
  for t in restic borg rsync b3sum hyperfine zstd; do
    have "$t" && echo "$t=$("$t" --version 2>&1 | head -n1)"
  done
  echo "timer=${TIMER[*]}"
  echo "scale=$( ((SMALL)) && echo small || echo "$SCALE") seed=$SEED reps=$REPS tools=$TOOLS"
  echo "cmdline=$0 $ORIG_ARGS"
} >"$OUT/logs/env.txt"

ACTIVE=()
for t in $TOOLS; do
  case $t in
    floors) ACTIVE+=(floors) ;;
    wsnap) prepare_wsnap && ACTIVE+=(wsnap) ;;
    restic|borg|rsync)
      if have "$t"; then ACTIVE+=("$t"); else note "$t not installed: skipped"; fi ;;
    *) note "unknown tool $t: skipped" ;;
  esac
done
log "tools: ${ACTIVE[*]}; reps: $REPS"

T0=$SECONDS
for ((REP = 1; REP <= REPS; REP++)); do
  for t in "${ACTIVE[@]}"; do
    "run_$t"
  done
done
clean_tree
log "all measurements done in $((SECONDS - T0))s"

"$PYTHON" "$HERE/report.py" --out "$OUT" --manifest "$MANIFEST"
log "wrote $OUT/results.json and $OUT/results.md"
