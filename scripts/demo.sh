#!/usr/bin/env bash
# make demo: a local node in a temp home, a few signed transfers, balances printed.
set -euo pipefail
SOS=${SOS:-bin/sos}
DIR=$(mktemp -d -t sos-demo.XXXXXX)
PORT=${PORT:-$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null || echo 26657)}
NODE=http://127.0.0.1:$PORT
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
H=$DIR/node
echo "== sos init (home $H)"
$SOS init --home "$H" --chain-id sos-demo
$SOS keys add alice --home "$H"
$SOS keys add bob --home "$H"
$SOS genesis add-account alice 1000000TFLP,5000KWTT,2000TBS --home "$H"
echo "== sos run (API $NODE)"
$SOS run --home "$H" --api "127.0.0.1:$PORT" --log-level warn &
PID=$!
for _ in $(seq 1 50); do $SOS query status --node "$NODE" >/dev/null 2>&1 && break; sleep 0.2; done
BOB=$($SOS keys show bob --home "$H")
echo "== transfers"
$SOS tx transfer --from alice --to "$BOB" --amount 25TFLP --home "$H" --node "$NODE"
$SOS tx transfer --from alice --to "$BOB" --amount 12.5KWTT --home "$H" --node "$NODE"
$SOS tx transfer --from bob --to alice --amount 1TFLP --home "$H" --node "$NODE"
echo "== balances"
$SOS query account alice --home "$H" --node "$NODE"
$SOS query account bob --home "$H" --node "$NODE"
echo "== proof of bob's account against the state root"
$SOS query account bob --prove -o json --home "$H" --node "$NODE" > "$DIR/bob.json"
$SOS verify-proof "$DIR/bob.json" --node "$NODE"
echo "== supply and status"
$SOS query supply --node "$NODE"
$SOS query status --node "$NODE"
echo "demo ok"
