#!/usr/bin/env bash
# make bench-cluster: the 3-node devnet throughput and latency figures of
# BENCHMARKS.md. Each run starts a fresh 'sos devnet --nodes 3', funds and
# pre-signs transfers with 'sos loadgen', submits them to the leader (or a
# follower), and reports the committed rate and the CPU the three node
# processes spent per transaction (from /proc, Linux only).
#   RUNS=3 TXS=20000 WHO=leader|follower EXTRA='--rate 1000' scripts/bench-cluster.sh
set -euo pipefail
SOS=${SOS:-bin/sos}
RUNS=${RUNS:-3}
TXS=${TXS:-20000}
WHO=${WHO:-leader}
EXTRA=${EXTRA:-}
field() { grep -m1 -oE "\"$1\": *\"[0-9a-f]+\"" | grep -oE '[0-9a-f]{8,}'; }
nodecpu() { # user+system ticks of the devnet's node processes
  local t=0 p
  for p in $(pgrep -f " run --home $DIR/devnet/node" || true); do
    t=$((t + $(cut -d' ' -f14 "/proc/$p/stat") + $(cut -d' ' -f15 "/proc/$p/stat")))
  done
  echo "$t"
}
for run in $(seq 1 "$RUNS"); do
  DIR=$(mktemp -d -t sos-bench.XXXXXX)
  $SOS devnet --nodes 3 --dir "$DIR/devnet" > "$DIR/devnet.out" 2>&1 &
  PID=$!
  trap 'kill $PID 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT
  for _ in $(seq 1 150); do grep -q "devnet of 3 nodes running" "$DIR/devnet.out" 2>/dev/null && break; sleep 0.2; done
  mapfile -t URLS < <(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$DIR/devnet.out")
  [ "${#URLS[@]}" -eq 3 ] || { echo "devnet did not start"; tail -5 "$DIR"/devnet/node*.log; exit 1; }
  LEADER=""
  for _ in $(seq 1 50); do
    LEADER=$($SOS query status --node "${URLS[0]}" -o json | field leader || true)
    [ -n "$LEADER" ] && break; sleep 0.2
  done
  TARGET=""
  for u in "${URLS[@]}"; do
    id=$($SOS query status --node "$u" -o json | field node_id)
    if [ "$WHO" = leader ] && [ "$id" = "$LEADER" ]; then TARGET=$u; fi
    if [ "$WHO" = follower ] && [ "$id" != "$LEADER" ]; then TARGET=$u; fi
  done
  [ -n "$TARGET" ] || { echo "no $WHO found"; exit 1; }
  before=$(nodecpu)
  # shellcheck disable=SC2086
  out=$($SOS loadgen --from operator --home "$DIR/devnet/node0" --node "$TARGET" --txs "$TXS" $EXTRA 2>&1 | tail -1)
  after=$(nodecpu)
  echo "run $run ($WHO, $TXS txs $EXTRA): $out; node CPU $(( (after - before) * 1000000 / $(getconf CLK_TCK) / TXS )) us per tx"
  kill -INT "$PID"; wait "$PID" 2>/dev/null || true
  rm -rf "$DIR"; trap - EXIT
done
