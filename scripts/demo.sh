#!/usr/bin/env bash
# make demo: a 3-node local cluster (sos devnet), signed transfers, an example
# contract, and every node at the same height and state root. Any failing
# step stops the demo with a non-zero exit; "demo ok" means everything ran.
set -euo pipefail
SOS=${SOS:-bin/sos}
DIR=$(mktemp -d -t sos-demo.XXXXXX)
WASM=${WASM:-sdk-contracts/examples/counter/counter.wasm}
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
die() { echo "demo failed: $*" >&2; exit 1; }
# json '["key"]': a field of the JSON on stdin (strings raw, the rest as JSON)
json() { python3 -c "import json,sys;v=json.load(sys.stdin)$1;print(v if isinstance(v,str) else json.dumps(v,separators=(',',':')))"; }

echo "== sos devnet --nodes 3 --dir $DIR/devnet"
$SOS devnet --nodes 3 --dir "$DIR/devnet" > "$DIR/devnet.out" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  grep -q "devnet of 3 nodes running" "$DIR/devnet.out" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.2
done
cat "$DIR/devnet.out"
grep -q "devnet of 3 nodes running" "$DIR/devnet.out" || { tail -5 "$DIR"/devnet/node*.log; die "the devnet did not start"; }
# "node0 api http://127.0.0.1:PORT p2p ...": the API URLs, in node order.
mapfile -t URLS < <(sed -nE 's/^node[0-9]+ api (http:[^ ]+) .*/\1/p' "$DIR/devnet.out")
[ "${#URLS[@]}" -eq 3 ] || die "expected 3 API URLs, got ${#URLS[@]}"
H=$DIR/devnet/node0
N0=${URLS[0]}
$SOS keys add bob --home "$H" >/dev/null
BOB=$($SOS keys show bob --home "$H")

echo "== transfers through node0"
$SOS tx transfer --from operator --to "$BOB" --amount 25TFLP --home "$H" --node "$N0"
$SOS tx transfer --from operator --to "$BOB" --amount 12.5KWTT --home "$H" --node "$N0"
$SOS tx transfer --from bob --to operator --amount 1TFLP --home "$H" --node "${URLS[1]}"

echo "== example contract (counter) through node1"
[ -f "$WASM" ] || die "$WASM missing: run 'make contracts'"
CODE=$($SOS contract upload "$WASM" --from operator --home "$H" --node "${URLS[1]}" -o json | json '["code_id"]')
echo "code id $CODE"
ADDR=$($SOS contract instantiate "$CODE" '{"count":1}' --from operator --label demo --home "$H" --node "${URLS[1]}" -o json | json '["address"]')
echo "contract $ADDR"
EXEC=$($SOS contract execute "$ADDR" '{"increment":{}}' --from bob --home "$H" --node "${URLS[1]}" -o json)
AT=$(echo "$EXEC" | json '["height"]')
echo "increment committed at height $AT (result $(echo "$EXEC" | json '["data"]'))"
# node2 serves the read once it has applied that block (--min-height).
COUNT=$($SOS contract query "$ADDR" '{"get":{}}' --node "${URLS[2]}" --min-height "$AT")
echo "query on node2 at height >= $AT: $COUNT"
[ "$COUNT" = '{"count":2}' ] || die "node2 reads $COUNT, want {\"count\":2}"

echo "== balances (from node2)"
$SOS query account "$BOB" --home "$H" --node "${URLS[2]}" --min-height "$AT"

echo "== proof of bob's account against node2's state root"
$SOS query account "$BOB" --prove -o json --home "$H" --node "${URLS[2]}" --min-height "$AT" > "$DIR/bob.json"
$SOS verify-proof "$DIR/bob.json" --node "${URLS[2]}"

echo "== every node at the same height and state root"
# The highest height any node reports; the others answer once they reach it.
H0=0
for u in "${URLS[@]}"; do h=$($SOS query status --node "$u" -o json | json '["height"]'); [ "$h" -gt "$H0" ] && H0=$h; done
ROOTS=()
for u in "${URLS[@]}"; do
  line=$($SOS query block "$H0" --node "$u" --min-height "$H0" -o json | json '["state_root"]')
  echo "$u height $H0 state_root $line"
  ROOTS+=("$line")
done
[ "${ROOTS[0]}" = "${ROOTS[1]}" ] && [ "${ROOTS[0]}" = "${ROOTS[2]}" ] || die "state roots differ at height $H0"
$SOS query status --node "$N0"
echo "demo ok"
