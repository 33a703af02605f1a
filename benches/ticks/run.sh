#!/usr/bin/env bash
# Tick-workload comparison: wsnap vs restic vs borg under 5-minute "ticks".
#
#   benches/ticks/run.sh [--ticks T] [--scale X] [--seed N] [--keep N]
#                        [--settle S] [--tools "wsnap restic borg"] [--no-build]
#
#   --ticks T   ticks after the initial snapshot (default 300)
#   --scale X   workload scale (default 1.0: 8 workspaces, ~1,950 files,
#               ~62 MB of ordinary files + one 40 MiB binary per two workspaces)
#   --seed N    workload seed (default 42)
#   --keep N    keep-last N for the final prune (default 288)
#   --settle S  seconds that must have passed since the tick's last write
#               before wsnap starts (default 2.5; see "settle" below)
#   --no-build  use the existing target/release/wsnap (or $WSNAP)
#   --out-sub D write to target/ticks/D instead of target/ticks (side runs)
#
# Everything lives under target/ticks/: root/ (the workspaces), stores/,
# cache/ (restic + borg client caches, NOT counted in store size), logs/,
# verify/ (the tick-T/2 copy and restores), results.{md,json}.
#
# Per tick: workload.py mutates the tree (deterministic in seed + tick), then
# each tool snapshots it; the tool order rotates every tick. Each tool run is
# preceded by an untimed `sync`, and timed with /usr/bin/time (wall from bash
# $EPOCHREALTIME, user/sys/maxrss from time). Store sizes: `du -sb` at tick 0,
# every 25 ticks, after the last tick and after the prune.
#
# settle: wsnap reuses a file's chunks without reading it only if the file's
# mtime/ctime is >2 s older than the *real* start of the parent run (git's
# racy-index rule). In production a tick is 5 minutes of scattered edits, so
# almost no edit lands in the last 2 s before a run; here all edits happen just
# before the run, so without a pause every file edited at tick t (including a
# 40 MiB file) would be re-read again at t+1. The pause is untimed and only
# taken if the other tools have not already used up the time.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$REPO/target/ticks
OUT_SUB=""
PYTHON=${PYTHON:-python3}

ORIG_ARGS="$*"
TICKS=300 SCALE=1.0 SEED=42 KEEP=288 SETTLE=2.5 BUILD=1
TOOLS="wsnap restic borg"
while (($#)); do
  case $1 in
    --ticks) TICKS=$2; shift ;;
    --scale) SCALE=$2; shift ;;
    --seed) SEED=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    --settle) SETTLE=$2; shift ;;
    --tools) TOOLS=$2; shift ;;
    --out-sub) OUT_SUB=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -z $OUT_SUB ]] || { [[ $OUT_SUB =~ ^[A-Za-z0-9._-]+$ ]] || { echo "bad --out-sub" >&2; exit 2; }; OUT=$OUT/$OUT_SUB; }
read -r -a TOOL_LIST <<<"$TOOLS"
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }

log() { printf '[ticks %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
NOTES=$OUT/notes.txt
note() { log "NOTE: $*"; printf '%s\n' "$*" >>"$NOTES"; }

# ------------------------------------------------------------------ setup --
mkdir -p "$OUT"
log "cleaning $OUT"
rm -rf "$OUT/root" "$OUT/stores" "$OUT/cache" "$OUT/logs" "$OUT/verify" "$OUT/bin" \
       "$OUT/results.md" "$OUT/results.json" "$NOTES"
mkdir -p "$OUT/stores" "$OUT/cache" "$OUT/logs" "$OUT/verify" "$OUT/bin"
: >"$NOTES"
LOGS=$OUT/logs
ROOT=$OUT/root
RAW=$LOGS/raw.tsv       # tool phase tick wall user sys maxrss_kb rc load1
SIZES=$LOGS/sizes.tsv   # tick tool bytes
METRICS=$LOGS/metrics.tsv
printf 'tool\tphase\ttick\twall\tuser\tsys\tmaxrss_kb\trc\tload1\n' >"$RAW"
printf 'tick\ttool\tbytes\n' >"$SIZES"
printf 'key\tvalue\n' >"$METRICS"
metric() { printf '%s\t%s\n' "$1" "$2" >>"$METRICS"; }
metric args "$ORIG_ARGS"
metric ticks "$TICKS"; metric scale "$SCALE"; metric seed "$SEED"; metric keep "$KEEP"
metric settle "$SETTLE"; metric tools "$TOOLS"; metric nproc "$(nproc)"
metric started "$(date -u +%FT%TZ)"

[[ -x /usr/bin/time ]] || { echo "need GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }

# measure TOOL PHASE TICK cmd... : times cmd, stdout -> $LOGS/TOOL.PHASE.out
# (overwritten; callers keep what they need), stderr appended to TOOL.err.
LAST_RC=0 LAST_WALL=0
measure() {
  local tool=$1 phase=$2 tick=$3; shift 3
  local out="$LOGS/$tool.$phase.out" tf="$LOGS/$tool.time" rc=0 load t0 t1 wall user sys rss
  sync
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf '== tick %s %s: %s\n' "$tick" "$phase" "$*" >>"$LOGS/$tool.err"
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" >"$out" 2>>"$LOGS/$tool.err" || rc=$?
  t1=$EPOCHREALTIME
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  read -r _ user sys rss < <(tail -n1 "$tf") || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$phase" "$tick" "$wall" \
    "${user:-NA}" "${sys:-NA}" "${rss:-NA}" "$rc" "$load" >>"$RAW"
  LAST_RC=$rc LAST_WALL=$wall
  if ((rc != 0)); then
    note "$tool $phase tick $tick exited $rc: $* -- stderr tail: $(tail -c 400 "$LOGS/$tool.err" | tr '\n' ' ')"
  fi
  return 0
}
dusb() { du -sb "$1" | cut -f1; }

# ------------------------------------------------------------------ wsnap --
if has_tool wsnap; then
  SRC=${WSNAP:-$REPO/target/release/wsnap}
  if ((BUILD)) && [[ -z ${WSNAP:-} ]]; then
    log "cargo build --release (waits for the cargo lock if another build holds it)"
    if ! (cd "$REPO" && cargo build --release) >"$LOGS/cargo-build.log" 2>&1; then
      note "cargo build --release failed: $(tail -c 600 "$LOGS/cargo-build.log" | tr '\n' ' ')"
      [[ -x $SRC ]] || exit 1
      note "using the existing $SRC"
    fi
  fi
  # private copy: others may rebuild target/release/wsnap while we run
  cp "$SRC" "$OUT/bin/wsnap"
  WSNAP_BIN=$OUT/bin/wsnap
  metric wsnap_git_rev "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo NA)"
  metric wsnap_src_dirty_files "$(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)"
  metric wsnap_binary_sha256 "$(sha256sum "$WSNAP_BIN" | cut -c1-16)"
  metric wsnap_version "$("$WSNAP_BIN" --version 2>&1 | head -n1)"
fi
has_tool restic && metric restic_version "$(restic version | head -n1)"
has_tool borg && metric borg_version "$(borg --version)"

WS_STORE=$OUT/stores/wsnap
RESTIC_REPO=$OUT/stores/restic
BORG_REPO=$OUT/stores/borg
export RESTIC_PASSWORD=dummy RESTIC_CACHE_DIR=$OUT/cache/restic
export BORG_BASE_DIR=$OUT/cache/borg BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
       BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_CHECK_I_KNOW_WHAT_I_AM_DOING=YES
RESTIC_EXCL=(--exclude .git --exclude node_modules --exclude __pycache__ --exclude '*.pyc'
             --exclude .venv --exclude venv)
BORG_EXCL=(--exclude 'sh:**/.git' --exclude 'sh:**/node_modules' --exclude 'sh:**/__pycache__'
           --exclude 'sh:**/*.pyc' --exclude 'sh:**/.venv' --exclude 'sh:**/venv')
DIFF_X=(-x .git -x node_modules -x __pycache__ -x '*.pyc' -x .venv -x venv)

# ------------------------------------------------------------- the tree --
log "generating the workspace root (seed $SEED, scale $SCALE)"
"$PYTHON" "$HERE/workload.py" init --root "$ROOT" --seed "$SEED" --scale "$SCALE" >"$LOGS/workload-init.json"
log "tree: $(cat "$LOGS/workload-init.json")"
# the workspace verified by restore: the busiest one holding a big binary
VWS=$(cd "$ROOT" && for d in */*/; do [[ -f $d/models/checkpoint.bin ]] && echo "${d%/}"; done | sort | head -n1)
[[ -n $VWS ]] || VWS=$(cd "$ROOT" && ls -d */*/ | sort | head -n1 | sed 's:/$::')
MID=$((TICKS / 2))
metric verify_workspace "$VWS"; metric verify_tick "$MID"
log "restore check: $VWS at tick $MID"

tick_time() { date -u -d "2026-03-02T00:00:00Z + $(( $1 * 5 )) minutes" +%FT%TZ; }

if has_tool restic; then
  restic -r "$RESTIC_REPO" init --repository-version 2 >"$LOGS/restic.init.log" 2>&1
fi
if has_tool borg; then
  borg init -e none "$BORG_REPO" >"$LOGS/borg.init.log" 2>&1
fi

MUT_END=$EPOCHREALTIME
snap() {  # TOOL TICK PHASE
  local tool=$1 t=$2 phase=$3
  case $tool in
    wsnap)
      local waited
      waited=$(awk -v a="$MUT_END" -v b="$EPOCHREALTIME" -v s="$SETTLE" 'BEGIN { w = s - (b - a); printf "%.3f", (w > 0 ? w : 0) }')
      [[ $waited != 0.000 ]] && sleep "$waited"
      measure wsnap "$phase" "$t" "$WSNAP_BIN" --store "$WS_STORE" snapshot --root "$ROOT" \
        --time "$(tick_time "$t")" --json
      { printf '{"tick":%s,"settle_wait":%s,"report":' "$t" "$waited"; tr -d '\n' <"$LOGS/wsnap.$phase.out"
        printf '}\n'; } >>"$LOGS/wsnap.jsonl"
      ;;
    restic)
      measure restic "$phase" "$t" restic -r "$RESTIC_REPO" backup --compression auto "${RESTIC_EXCL[@]}" \
        --host h --tag "tick-$t" --json "$ROOT"
      { printf '{"tick":%s,"summary":' "$t"; grep '"message_type":"summary"' "$LOGS/restic.$phase.out" | tail -n1 | tr -d '\n'
        printf '}\n'; } >>"$LOGS/restic.jsonl"
      ;;
    borg)
      measure borg "$phase" "$t" borg create --json -C zstd,3 "${BORG_EXCL[@]}" "$BORG_REPO::tick-$t" "$ROOT"
      { printf '{"tick":%s,"report":' "$t"; tr -d '\n' <"$LOGS/borg.$phase.out"; printf '}\n'; } >>"$LOGS/borg.jsonl"
      ;;
  esac
}
sizes() {  # TICK
  local tool
  for tool in "${TOOL_LIST[@]}"; do
    printf '%s\t%s\t%s\n' "$1" "$tool" "$(dusb "$OUT/stores/$tool")" >>"$SIZES"
  done
}

# ----------------------------------------------------------- tick 0 --
log "initial snapshot (tick 0, $(tick_time 0))"
for tool in "${TOOL_LIST[@]}"; do
  snap "$tool" 0 initial
  log "  $tool initial: ${LAST_WALL}s rc $LAST_RC"
done
sizes 0
((MID == 0)) && cp -a "$ROOT/$VWS" "$OUT/verify/mid-copy"

# ------------------------------------------------------------- ticks --
RUN_T0=$EPOCHREALTIME
for ((t = 1; t <= TICKS; t++)); do
  "$PYTHON" "$HERE/workload.py" tick --root "$ROOT" --seed "$SEED" --tick "$t" >>"$LOGS/workload-ticks.jsonl"
  MUT_END=$EPOCHREALTIME
  ((t == MID)) && cp -a "$ROOT/$VWS" "$OUT/verify/mid-copy"
  n=${#TOOL_LIST[@]} line="tick $t/$TICKS ($(tick_time "$t"))"
  for ((i = 0; i < n; i++)); do
    tool=${TOOL_LIST[$(( (i + t) % n ))]}
    snap "$tool" "$t" tick
    line+=" $tool=${LAST_WALL}s"
    ((LAST_RC == 0)) || line+="(rc $LAST_RC)"
  done
  if ((t % 25 == 0 || t == TICKS)); then
    sizes "$t"
    line+=" | sizes $(awk -F'\t' -v t="$t" '$1 == t { printf "%s=%s ", $2, $3 }' "$SIZES")"
  fi
  elapsed=$(awk -v a="$RUN_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
  log "$line | ${elapsed}s elapsed, load $(cut -d' ' -f1 /proc/loadavg)"
done
"$PYTHON" "$HERE/workload.py" stats --root "$ROOT" >"$LOGS/workload-final.json"

# ---------------------------------------------------- restore before prune --
verify_restore() {  # LABEL TIME DIR_EXPECTED
  local label=$1 at=$2 want=$3 dir="$OUT/verify/restore-$1" ok=1
  if measure wsnap "restore-$label" "$TICKS" "$WSNAP_BIN" --store "$WS_STORE" restore "$VWS" --at "$at" --to "$dir" \
     && ((LAST_RC == 0)) && diff -r --no-dereference "${DIFF_X[@]}" "$want" "$dir" >"$LOGS/verify-$label.diff" 2>&1; then
    :
  else
    ok=0; note "wsnap restore $VWS --at $at ($label) does NOT match $want: $(head -c 600 "$LOGS/verify-$label.diff" 2>/dev/null | tr '\n' ' ')"
  fi
  leaked=$(find "$dir" \( -name .git -o -name node_modules -o -name __pycache__ -o -name '*.pyc' \) -print 2>/dev/null | head -n3 || true)
  [[ -z $leaked ]] || { ok=0; note "restore $label contains excluded entries: $leaked"; }
  metric "verify_$label" "$ok"
  log "restore check $label ($VWS --at $at): ok=$ok"
}
if has_tool wsnap; then
  verify_restore mid-before-prune "$(tick_time "$MID")" "$OUT/verify/mid-copy"
  verify_restore last-before-prune "$(tick_time "$TICKS")" "$ROOT/$VWS"
fi

# ------------------------------------------------------------- prune --
sizes final
log "prune to the newest $KEEP"
for tool in "${TOOL_LIST[@]}"; do
  case $tool in
    wsnap)
      measure wsnap prune "$TICKS" "$WSNAP_BIN" --store "$WS_STORE" prune --keep-last "$KEEP" --json
      cp "$LOGS/wsnap.prune.out" "$LOGS/wsnap.prune.json" ;;
    restic)
      measure restic prune "$TICKS" restic -r "$RESTIC_REPO" forget --keep-last "$KEEP" --prune
      cp "$LOGS/restic.prune.out" "$LOGS/restic.prune.txt" ;;
    borg)
      measure borg prune "$TICKS" borg prune --keep-last "$KEEP" "$BORG_REPO"
      measure borg compact "$TICKS" borg compact "$BORG_REPO" ;;
  esac
  log "  $tool prune done (rc $LAST_RC)"
done
sizes pruned

# snapshot counts after prune
if has_tool wsnap; then
  "$WSNAP_BIN" --store "$WS_STORE" list --json >"$LOGS/wsnap.list.json" 2>>"$LOGS/wsnap.err" || note "wsnap list failed"
fi
if has_tool restic; then
  restic -r "$RESTIC_REPO" snapshots --json >"$LOGS/restic.snapshots.json" 2>>"$LOGS/restic.err" || note "restic snapshots failed"
fi
if has_tool borg; then
  borg list --json "$BORG_REPO" >"$LOGS/borg.list.json" 2>>"$LOGS/borg.err" || note "borg list failed"
fi
# excludes really excluded? (count excluded-looking entries in the newest snapshot)
EXRE='/(\.git|node_modules|__pycache__|\.venv|venv)(/|$)|\.pyc$'
if has_tool restic; then
  metric excluded_entries_restic "$(restic -r "$RESTIC_REPO" ls latest 2>/dev/null | grep -cE "$EXRE" || true)"
fi
if has_tool borg; then
  metric excluded_entries_borg "$(borg list "$BORG_REPO::tick-$TICKS" 2>/dev/null | grep -cE "$EXRE" || true)"
fi
metric cache_restic_bytes "$( [[ -d $OUT/cache/restic ]] && dusb "$OUT/cache/restic" || echo 0)"
metric cache_borg_bytes "$( [[ -d $OUT/cache/borg ]] && dusb "$OUT/cache/borg" || echo 0)"

if has_tool wsnap; then
  # snapshots are ticks 0..TICKS; keep-last KEEP leaves ticks TICKS-KEEP+1..TICKS
  if ((MID > TICKS - KEEP)); then
    verify_restore mid-after-prune "$(tick_time "$MID")" "$OUT/verify/mid-copy"
  else
    note "restore check after prune skipped: tick $MID is older than the newest $KEEP and was pruned"
    metric verify_pruned-mid-is-gone "$( "$WSNAP_BIN" --store "$WS_STORE" restore "$VWS" --at "$(tick_time "$MID")" \
      --to "$OUT/verify/restore-pruned" >/dev/null 2>&1 && echo 0 || echo 1)"
  fi
  verify_restore last-after-prune "$(tick_time "$TICKS")" "$ROOT/$VWS"
fi
metric finished "$(date -u +%FT%TZ)"

"$PYTHON" "$HERE/report.py" "$OUT"
log "wrote $OUT/results.md and $OUT/results.json"
cat "$OUT/results.md"
