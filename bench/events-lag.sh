#!/usr/bin/env bash
# events-lag.sh: how far the query store trails the units under the benchmark's
# load. It starts `tradeunit dev` (4 SQLite units, an embedded NATS, one relay per
# unit, the SQLite query store) in a scratch directory, drives its proxy with
# `tradeunit bench run` (mixed operations, closed loop), and samples the
# consumer's tradeunit_query_lag_seconds and tradeunit_query_pending_events and
# every relay's tradeunit_relay_lag_seconds five times a second; then it prints
# their median, p99 and max, the load's throughput and the host's steal share.
#
#   bash bench/events-lag.sh [CLIENTS] [DURATION] [--no-events]   (default 16 20s)
#
# With --no-events the cluster runs without the event flow: the same load's
# throughput without relays, bus and consumer, for comparison.
set -euo pipefail
clients=${1:-16}
duration=${2:-20s}
devflags=${3:-}
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
bin=$dir/tradeunit
go build -o "$bin" ./cmd/tradeunit
(cd "$dir" && exec "$bin" dev $devflags --listen 127.0.0.1:0 --health-listen 127.0.0.1:0 >"$dir/dev.out" 2>"$dir/dev.err") &
dev=$!
trap 'kill -INT $dev 2>/dev/null; wait $dev 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 300); do grep -q "Ctrl-C" "$dir/dev.out" 2>/dev/null && break; sleep 0.2; done
proxy=$(sed -n 's/.*proxy at \(http[^ ]*\).*/\1/p' "$dir/dev.out" | head -1)
key=$(sed -n 's/.*api_key \([a-z0-9-]*\).*/\1/p' "$dir/dev.out" | head -1)
consumer=$(sed -n 's/.*consumer metrics (lag): \(http[^ ]*\).*/\1/p' "$dir/dev.out")
relays=$(for f in "$dir"/data/run/relay-*.addr; do [ -f "$f" ] && echo "http://$(cat "$f")/metrics"; done; true)
steal() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
read s0 t0 < <(steal)
"$bin" bench run --target "$proxy" --key "$key" --clients "$clients" --duration "$duration" \
  --mix create=4,pay=3,query=6,refund=1,close=1 --json "$dir/bench.json" >"$dir/bench.out" 2>&1 &
load=$!
: >"$dir/samples"
while kill -0 $load 2>/dev/null; do
  [ -n "$consumer" ] || { sleep 0.2; continue; }
  q=$(curl -s "$consumer" | awk '/^tradeunit_query_lag_seconds /{l=$2} /^tradeunit_query_pending_events /{p=$2} END{print l, p}')
  r=$(for m in $relays; do curl -s "$m" | awk '/^tradeunit_relay_lag_seconds /{print $2}'; done | sort -g | tail -1)
  echo "$q $r" >>"$dir/samples"
  sleep 0.2
done
wait $load
read s1 t1 < <(steal)
stat() { # column name
  sort -g | awk -v name="$2" '{v[NR]=$1} END{if(NR==0){print name": no samples"; exit} printf "%s: median %.3f  p99 %.3f  max %.3f  (%d samples)\n", name, v[int((NR+1)/2)], v[(int(NR*0.99)>0)?int(NR*0.99):1], v[NR], NR}'
}
echo "load ($clients clients, $duration):"; grep -E '^(total|create|pay|query|refund|close)' "$dir/bench.out" || tail -5 "$dir/bench.out"
[ -s "$dir/samples" ] && awk '{print $1}' "$dir/samples" | stat x "query store lag, s (now - as_of)"
[ -s "$dir/samples" ] && awk '{print $2}' "$dir/samples" | stat x "query store pending events"
[ -s "$dir/samples" ] && awk '{print $3}' "$dir/samples" | stat x "relay lag, s (newest event published)"
awk -v s=$((s1-s0)) -v t=$((t1-t0)) 'BEGIN{printf "steal: %.1f%% of CPU time\n", 100*s/t}'
