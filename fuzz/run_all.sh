#!/usr/bin/env bash
# Fuzz every target in turn for SECONDS each (default 180) on the stable
# toolchain. Run from anywhere; needs `cargo install cargo-fuzz`.
#
#   fuzz/run_all.sh            # all targets, 180 s each
#   fuzz/run_all.sh 60 pack_scan tree_decode
#
# New corpus entries go to fuzz/corpus/<target>/ (git-ignored); crashes to
# fuzz/artifacts/<target>/. Logs go to fuzz/logs/<target>.log (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-180}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tree_decode tree_index_decode pack_record_decode pack_scan chunk_list_decode journal_decode remote_object restore_path time_parse chunk_tiers_decode)

dict_for() {
  case $1 in
    tree_decode|tree_index_decode) echo "-dict=fuzz/dicts/tree.dict" ;;
    pack_record_decode|pack_scan) echo "-dict=fuzz/dicts/pack.dict" ;;
    time_parse) echo "-dict=fuzz/dicts/time.dict" ;;
    *) echo "" ;;
  esac
}

export RUSTC_BOOTSTRAP=1
cargo fuzz build
mkdir -p fuzz/logs
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  dirs=("fuzz/corpus/$t" "fuzz/seeds/$t")
  [ -d "fuzz/regressions/$t" ] && dirs+=("fuzz/regressions/$t")
  echo "== $t (${secs}s)"
  # shellcheck disable=SC2046
  cargo fuzz run "$t" "${dirs[@]}" -- \
    -max_total_time="$secs" -print_final_stats=1 $(dict_for "$t") \
    >"fuzz/logs/$t.log" 2>&1 && rc=0 || rc=$?
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units' "fuzz/logs/$t.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "   $t FAILED (exit $rc): see fuzz/logs/$t.log and fuzz/artifacts/$t/"
  fi
done
