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
# Each example contract also gets <name>.schema.json, the JSON Schema of its
# messages (`go run` of the contract natively: its main calls sdk.Main), for
# `sos contract upload --schema`.
# Stripping (-ldflags=-s) drops the name section (-w changes nothing for
# wasm: there is no DWARF to drop); -trimpath keeps builds reproducible
# across checkouts, so the same source gives the same code id (or job
# module id).
# Contracts (examples/) are then shrunk with wasm-opt -Oz whenever binaryen
# is installed (Debian: apt-get install binaryen; SOS_WASM_OPT=0 skips it:
# it costs ~30 s of CPU per contract, and make test builds them):
# about 5% smaller, 5% cheaper to upload and 4% cheaper to load on every
# call (BENCHMARKS.md). Its output is reproducible for one binaryen
# version; wasmpost removes the data count section binaryen adds, which the
# node refuses. Policies and jobs are left as Go builds them: policy ids
# are fixed in the conformance vectors.
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
	how=go
	if [ "$dir" = examples ] && [ "${SOS_WASM_OPT:-1}" = 1 ] && command -v wasm-opt >/dev/null 2>&1; then
		if wasm-opt -Oz --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory "$out" -o "$out.opt" &&
			(cd "$here" && go run ./internal/wasmpost "$out.opt" "$out.opt"); then
			mv "$out.opt" "$out"
			how="go, wasm-opt -Oz"
		else
			rm -f "$out.opt"
			echo "build.sh: $name: wasm-opt failed or its output is not accepted; keeping the Go build" >&2
		fi
	fi
	printf '%-16s %9d bytes  %s  (%s)\n' "$name" "$(wc -c <"$out")" "${out#"$PWD"/}" "$how"
	if [ "$dir" = examples ]; then
		schema="$here/$dir/$name/$name.schema.json"
		GOOS= GOARCH= go run "./sdk-contracts/$dir/$name" schema >"$schema.tmp"
		mv "$schema.tmp" "$schema"
	fi
done
