// Package adversarial is the standing adversarial benchmark of the VM: it
// times hostile workloads through the path an attacker uses against the gas
// they are charged (the pricing goal is 1 Mgas ≈ 1 ms, every shape within
// 0.5–2 ns per gas). It has no code outside its tests; upload_test.go holds
// the upload, compilation and module-load shapes:
//
//	go test ./vm/adversarial -run '^$' -bench AdversarialUpload -benchtime 2x -count 3
//
// The execution shapes are in shapes_test.go (BenchmarkAdversarial):
//
//	go test ./vm/adversarial -run '^$' -bench 'Adversarial$' -count 3
//
// reports ns/gas and gas/op for each shape, and
//
//	SOS_ADVERSARIAL_BAND=all go test ./vm/adversarial -run Band -v
//
// fails when a shape leaves the band (TestAdversarialBand; timing depends
// on the machine and its load, so it runs only when asked, on a quiet
// machine). TestAdversarialShapesRun, part of the ordinary test run, checks
// that every shape still deploys and runs.
//
// The shapes: straight-line code (empty loop, the most live locals a
// function may have — vm.MaxFunctionLocals — rotated, 1,000 computed values
// on the operand stack, globals, unpredictable branches, a huge br_table indexed
// at random, the dispatch loop Go emits, 64-bit division, float chains,
// direct and indirect calls, recursion at the depth limit with thin and fat
// frames, traps, an empty call with 8 MiB of memory and one writing both
// ends of it), memory (one touch per 4 KiB page over 8 MiB, after
// growing or not, grow churn, random loads over 1, 2, 4 and 8 MiB and —
// in the policy VM, whose memory limit is 64 MiB — over 16, 32 and 64 MiB,
// random stores over 8 MiB, sequential loads over 64 KiB, over the first
// 64 KiB of 8 MiB, over all of 8 MiB and of 64 MiB, memory.fill and
// memory.copy), host functions (the cheapest one in a loop, storage
// get/set/delete at the largest sizes, iterators over 100,000 committed or
// 20,000 buffered entries, iterators skipping deleted entries, hashing the
// largest input, ML-DSA verification, the largest events, WASI fd_write
// with 1,024 iovecs, poll_oneoff with 64 subscriptions, random_get,
// clocks), nested calls (the deepest chain, 1,000 calls, trapping Go
// callees) and Go-compiled code (a contract and a policy spinning on a
// package-level counter, maps, JSON, sorting, allocation, interface calls,
// panics, and what JSON decoding is made of: json.Valid's scanner, a switch
// on random bytes, plain calls, pointer chasing; and a call that does
// nothing), plus the shipped ROME policies on a 10,000 × 1,000 market
// (built by `make contracts`). BENCHMARKS.md ("VM adversarial: execution")
// records each shape's figures. Every call also pays for loading its
// module (vm.LoadGas), which these calls never do (the module stays in
// memory): ns/gas leaves that charge out, ns/gas-with-load does not.
package adversarial
