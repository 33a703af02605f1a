#!/usr/bin/env bash
# Off-site copy: wsnap snapshot + push vs restic backup, per tick, against one
# Garage server on loopback, then restore of one workspace from the remote
# alone, pull, and check --remote --read-data.
#
#   benches/remote/run.sh            # needs garage (2.x) and restic on PATH
#
# Everything lives under target/remote-bench/ (Garage data, stores, logs).
# The workload (gen.py): 5 users x 2 projects, each 20 text files of 1-100 KB,
# two 10 MiB random files, a 5 MiB text table and a log (272 MB); each later
# tick appends 10 KB to every log, edits 50 bytes of one text file per
# project and adds one 2 MiB random file. Timing: /usr/bin/time (wall s, max
# RSS KiB). A single Garage node (replication 1): the 3-node cluster of the
# S3 tests is tests/common/garage.rs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=$REPO/target/remote-bench
W=${WSNAP:-$REPO/target/release/wsnap}
[ -x "$W" ] || (cd "$REPO" && cargo build --release -q)
rm -rf "$OUT" && mkdir -p "$OUT"
cd "$OUT"
PORT=$((39900 + RANDOM % 50 * 4))
cat > garage.toml <<TOML
metadata_dir = "$OUT/meta"
data_dir = "$OUT/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((PORT + 1))"
rpc_public_addr = "127.0.0.1:$((PORT + 1))"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$PORT"
root_domain = ".s3.garage.localhost"
TOML
garage -c garage.toml server > garage.log 2>&1 &
GPID=$!
trap 'kill $GPID 2>/dev/null || true' EXIT
for _ in $(seq 50); do garage -c garage.toml status >/dev/null 2>&1 && break; sleep 0.2; done
NODE=$(garage -c garage.toml node id -q | cut -d@ -f1)
garage -c garage.toml layout assign -z dc1 -c 10G "$NODE" >/dev/null
garage -c garage.toml layout apply --version 1 >/dev/null
garage -c garage.toml key create bench > key.txt
export AWS_ACCESS_KEY_ID=$(awk '/Key ID/ {print $3}' key.txt)
export AWS_SECRET_ACCESS_KEY=$(awk '/Secret key/ {print $3}' key.txt)
export AWS_DEFAULT_REGION=garage RESTIC_PASSWORD=bench
for b in wsnap restic; do
  garage -c garage.toml bucket create $b >/dev/null
  garage -c garage.toml bucket allow --read --write --owner $b --key bench >/dev/null
done
EP=http://127.0.0.1:$PORT
mkdir root
python3 "$HERE/gen.py" root 0
$W --store st init -q
$W --store st remote add g s3://wsnap/server1 --endpoint $EP --region garage --generate-key >/dev/null 2>&1
restic -r s3:$EP/restic init -q >/dev/null
t() { awk '{printf "%s s, %d MiB RSS", $1, $2/1024}' "$1"; }
echo "| tick | wsnap snapshot | wsnap push | uploaded | restic backup | restic added |"
echo "|---|---|---|---|---|---|"
for tick in 0 1 2 3 4 5; do
  [ $tick -gt 0 ] && python3 "$HERE/gen.py" root $tick
  /usr/bin/time -f "%e %M" -o ws $W --store st snapshot --root root -q >/dev/null
  /usr/bin/time -f "%e %M" -o wp $W --store st push --json > push.json
  /usr/bin/time -f "%e %M" -o rb restic -r s3:$EP/restic backup root --json -q > restic.json
  up=$(python3 -c "import json;print(json.load(open('push.json'))['uploaded']['size_bytes'])")
  radd=$(python3 -c "
import json
for l in open('restic.json'):
    v = json.loads(l)
    if v.get('message_type') == 'summary': print(v['data_added'])")
  echo "| $tick | $(t ws) | $(t wp) | $up B | $(t rb) | $radd B |"
done
$W --store fresh remote add g s3://wsnap/server1 --endpoint $EP --region garage --key-file st/remotes/g.key >/dev/null
/usr/bin/time -f "%e %M" -o wr $W --store fresh restore --remote g user1/proj-a --at latest --to out-wsnap --json > wr.json
SNAP=$(restic -r s3:$EP/restic snapshots --json -q | python3 -c "import json,sys;print(json.load(sys.stdin)[-1]['short_id'])")
/usr/bin/time -f "%e %M" -o rr restic -r s3:$EP/restic restore "$SNAP" --target out-restic --include /root/user1/proj-a -q
diff -r root/user1/proj-a out-wsnap >/dev/null
diff -r root/user1/proj-a out-restic/root/user1/proj-a >/dev/null
echo "restore user1/proj-a from the remote: wsnap $(t wr) ($(python3 -c "import json;v=json.load(open('wr.json'));print(v['fetched_bytes'], 'B fetched in', v['packs_fetched'], 'packs')")); restic $(t rr); both identical to the source"
$W --store pulled remote add g s3://wsnap/server1 --endpoint $EP --region garage --key-file st/remotes/g.key >/dev/null
/usr/bin/time -f "%e %M" -o wl $W --store pulled pull g -q >/dev/null
echo "pull: $(t wl); catalog image $(stat -c %s st/catalog.sqlite) B"
/usr/bin/time -f "%e %M" -o wc $W --store st check --remote g --read-data -q >/dev/null
echo "check --remote --read-data: $(t wc)"
