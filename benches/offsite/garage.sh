#!/usr/bin/env bash
# A 3-node Garage cluster (replication factor 3) on 127.0.0.1 for the
# off-site benchmark, with its data under DIR.
#
#   benches/offsite/garage.sh start DIR BUCKET...   prints: ENDPOINT KEY_ID SECRET
#   benches/offsite/garage.sh stop DIR
#
# The integration tests start their own cluster (tests/common/garage.rs);
# this script is the same recipe in shell for benches/offsite/run.sh.
set -euo pipefail
cmd=$1 dir=$2; shift 2
command -v garage >/dev/null || { echo "garage is not installed: cargo install garage --locked --version 2.5.0" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
g() { garage -c "$dir/node1/garage.toml" "$@"; }

case $cmd in
start)
  rm -rf "$dir"; mkdir -p "$dir"
  secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  for n in 1 2 3; do
    d=$dir/node$n; mkdir -p "$d/meta" "$d/data"
    rpc=$(free_port) s3=$(free_port) admin=$(free_port)
    echo "$s3" > "$d/s3_port"
    cat > "$d/garage.toml" <<EOF
metadata_dir = "$d/meta"
data_dir = "$d/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"

[admin]
api_bind_addr = "127.0.0.1:$admin"
EOF
    garage -c "$d/garage.toml" server > "$d/log" 2>&1 &
    echo $! > "$d/pid"
  done
  for n in 1 2 3; do
    for _ in $(seq 100); do
      garage -c "$dir/node$n/garage.toml" node id -q > "$dir/node$n/id" 2>/dev/null && break
      sleep 0.1
    done
    [ -s "$dir/node$n/id" ] || { echo "node $n did not start:" >&2; cat "$dir/node$n/log" >&2; exit 1; }
  done
  for n in 2 3; do g node connect "$(cat "$dir/node$n/id")" >/dev/null; done
  for n in 1 2 3; do g layout assign -z dc1 -c 1G "$(cut -d@ -f1 "$dir/node$n/id")" >/dev/null; done
  g layout apply --version 1 >/dev/null
  key=$(g key create bench-key)
  key_id=$(echo "$key" | awk '/Key ID/ {print $NF}')
  secret_key=$(echo "$key" | awk '/Secret key/ {print $NF}')
  for b in "$@"; do
    g bucket create "$b" >/dev/null
    g bucket allow --read --write --owner "$b" --key bench-key >/dev/null
  done
  echo "http://127.0.0.1:$(cat "$dir/node1/s3_port") $key_id $secret_key"
  ;;
stop)
  for n in 1 2 3; do
    [ -f "$dir/node$n/pid" ] && kill "$(cat "$dir/node$n/pid")" 2>/dev/null || true
  done
  ;;
*) echo "usage: $0 start DIR BUCKET... | stop DIR" >&2; exit 2 ;;
esac
