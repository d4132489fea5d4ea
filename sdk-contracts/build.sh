#!/bin/sh
# Builds every example contract to sdk-contracts/examples/<name>/<name>.wasm,
# every ROME policy to sdk-contracts/policies/<name>/<name>.wasm and every
# example job to sdk-contracts/jobs/<name>/<name>.wasm.
# Usage: sdk-contracts/build.sh [name...]   (default: all of them; a name is
# looked up in examples/, then policies/, then jobs/)
# Contracts and policies are reactors (-buildmode=c-shared: exports called by
# the VM); jobs are WASI commands (a main, run through _start). A job is a
# directory jobs/<name>/ holding <name>.go, so jobs/internal and
# jobs/distributed (tools that run on the user's machine) are not built.
# Stripping (-ldflags=-s) drops the name section; -trimpath keeps builds
# reproducible across checkouts, so the same source gives the same code id
# (or job module id).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
list() { (cd "$here/$1" && for d in */; do [ "$d" = internal/ ] || printf '%s\n' "${d%/}"; done); }
jobs() { (cd "$here/jobs" && for d in */; do [ -f "$d${d%/}.go" ] && printf '%s\n' "${d%/}"; done; true); }
names=${*:-$(list examples; list policies; jobs)}
for name in $names; do
	if [ -d "$here/examples/$name" ]; then
		dir=examples
	elif [ -d "$here/policies/$name" ]; then
		dir=policies
	elif [ -f "$here/jobs/$name/$name.go" ]; then
		dir=jobs
	else
		echo "build.sh: no example, policy or job named $name" >&2
		exit 1
	fi
	mode=-buildmode=c-shared
	[ "$dir" = jobs ] && mode=
	out="$here/$dir/$name/$name.wasm"
	GOOS=wasip1 GOARCH=wasm go build $mode -trimpath -ldflags=-s \
		-o "$out" "./sdk-contracts/$dir/$name"
	printf '%-16s %9d bytes  %s\n' "$name" "$(wc -c <"$out")" "${out#"$PWD"/}"
done
