// Package jobs holds the example SOS jobs: ordinary Go programs compiled to
// WASI commands (GOOS=wasip1 GOARCH=wasm, no -buildmode) that a consumer
// runs on a compute lease with `sos job submit`. docs/jobs-abi.md is the
// interface they are written against.
//
//	sha256sum/        the inputs' SHA-256 in coreutils format, to stdout and /out/SHA256SUMS
//	wordcount/        the top N words; -map and -reduce for the distributed example
//	mandelbrot/       a PNG of the Mandelbrot set: CPU-bound, no inputs
//	distributed/      the split → map → reduce flow (README.md), the split and gentext tools
//	internal/textgen  deterministic text for tests, benchmarks and gentext
//	internal/wasirun  test support: runs a built job in plain wazero and its WASI
//
// sdk-contracts/build.sh (make contracts) builds every jobs/NAME/NAME.go
// to jobs/NAME/NAME.wasm.
//
// Each job is a package main in two files: main.go calls
// run(os.Args[1:], os.Stdin, "/in", "/out", os.Stdout, os.Stderr) and
// exits with its result, NAME.go holds run, so `go test` runs the program
// natively against temporary directories. Jobs use the standard library
// only and share no code (listing /in is repeated), so that any of them
// can be copied as the start of a new job.
//
// wasm_test.go in each job runs NAME.wasm in wazero, with the inputs in an
// in-memory fs.FS mounted at /in and a temporary directory at /out, and
// checks that exit code, stdout, stderr and outputs equal the native run's;
// it is skipped when the .wasm has not been built. Its Benchmark<Job> has
// native and wasm sub-benchmarks and reports CPU time per operation
// besides wall time. Compiled modules are cached in
// os.TempDir()/sos-wasirun-cache, so only the first run after a rebuild
// pays wazero's few seconds of compilation.
package jobs
