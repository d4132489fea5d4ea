#!/bin/sh
# build.sh builds the VM test contract: testdata/build.sh OUT.wasm
set -eu
out=$(realpath -m "${1:-contract.wasm}")
cd "$(dirname "$0")/contract"
GOOS=wasip1 GOARCH=wasm GOWORK=off GOFLAGS= go build -buildmode=c-shared -trimpath -o "$out" .
