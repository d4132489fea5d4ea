#!/bin/sh
# Builds every example contract to sdk-contracts/examples/<name>/<name>.wasm
# and every ROME policy to sdk-contracts/policies/<name>/<name>.wasm.
# Usage: sdk-contracts/build.sh [name...]   (default: all examples and policies;
# a name is looked up in examples/ first, then in policies/)
# Stripping (-ldflags=-s) drops the name section; -trimpath keeps builds
# reproducible across checkouts, so the same source gives the same code id.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
list() { (cd "$here/$1" && for d in */; do [ "$d" = internal/ ] || printf '%s\n' "${d%/}"; done); }
names=${*:-$(list examples; list policies)}
for name in $names; do
	dir=examples
	[ -d "$here/examples/$name" ] || dir=policies
	out="$here/$dir/$name/$name.wasm"
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s \
		-o "$out" "./sdk-contracts/$dir/$name"
	printf '%-16s %9d bytes  %s\n' "$name" "$(wc -c <"$out")" "${out#"$PWD"/}"
done
