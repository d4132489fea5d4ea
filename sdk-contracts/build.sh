#!/bin/sh
# Builds every example contract to sdk-contracts/examples/<name>/<name>.wasm.
# Usage: sdk-contracts/build.sh [name...]   (default: all examples)
# Stripping (-ldflags=-s) drops the name section; -trimpath keeps builds
# reproducible across checkouts, so the same source gives the same code id.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
names=${*:-$(cd "$here/examples" && ls -d */ | tr -d /)}
for name in $names; do
	out="$here/examples/$name/$name.wasm"
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s \
		-o "$out" "./sdk-contracts/examples/$name"
	printf '%-16s %9d bytes  %s\n' "$name" "$(wc -c <"$out")" "${out#"$PWD"/}"
done
