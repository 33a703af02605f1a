#!/usr/bin/env bash
# Page-load times of `wsnap serve` (issue #20) on a generated store:
# starts the server on a free loopback port with a token, loads each page
# once to warm the caches, then times RUNS loads of each with
# curl -w '%{time_total}' and prints min / median / max in ms.
#
#   CARGO_TARGET_DIR=target/rel CATALOG_SCALE_GENERATE_ONLY=1 \
#       nice cargo bench --bench catalog_scale          # the 10,000 × 288 store, kept
#   benches/serve/measure.sh target/rel/release/wsnap \
#       target/rel/bench-data/catalog-scale-v2-10000/gen
set -euo pipefail
WSNAP=${1:?path to the wsnap binary}
GEN=${2:?the gen/ directory of a generated store (holding store/ and root/)}
RUNS=${RUNS:-10}
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$tmp/token")
start=$(date +%s.%N)
"$WSNAP" --store "$GEN/store" serve --listen 127.0.0.1:0 --token-file "$tmp/token" \
    --root "$GEN/root" --min-free 0 --max-age 100000d > "$tmp/out" 2> "$tmp/err" &
pid=$!
until grep -q listening "$tmp/out"; do sleep 0.1; kill -0 "$pid"; done
ready=$(date +%s.%N)
base=$(sed -n 's/.*listening on \(http:[^ ]*\)\/$/\1/p' "$tmp/out")
printf 'started (caches warmed) in %.1f s\n' "$(echo "$ready - $start" | bc)"
auth="Authorization: Bearer $(cat "$tmp/token")"
if [ -n "${WAIT_UNIQUE:-}" ]; then
    # The workspace list's unique bytes come from a background walk of
    # every blob: wait for it, so /workspaces is timed with them.
    until curl -fsS -H "$auth" "$base/workspaces" | grep -q 'Unique bytes as of'; do
        sleep 2
    done
    printf 'unique bytes ready %.0f s after start\n' "$(echo "$(date +%s.%N) - $start" | bc)"
fi
ws=${WS:-u00000/p0}   # a workspace of the store (the generator names uNNNNN/pN)
for page in "/" "/?range=30d" "/ws/$ws" "/workspaces" "/workspaces?sort=age&page=50" \
            "/browse/$ws" "/api/status"; do
    curl -fsS -o /dev/null -H "$auth" "$base$page"
    ts=()
    for _ in $(seq "$RUNS"); do
        ts+=("$(curl -fsS -o /dev/null -w '%{time_total}' -H "$auth" "$base$page")")
    done
    printf '%s\n' "${ts[@]}" | sort -n | awk -v p="$page" '
        { t[NR] = $1 * 1000 }
        END { printf "%-32s min %7.1f ms  median %7.1f ms  max %7.1f ms  (%d runs)\n",
              p, t[1], t[int((NR + 1) / 2)], t[NR], NR }'
done
echo "server peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
