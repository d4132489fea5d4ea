// Package policies holds the ROME allocation policies shipped with the
// kernel and their quality and speed tests. Each policy is a package main
// built for wasip1 by sdk-contracts/build.sh into
// sdk-contracts/policies/<name>/<name>.wasm:
//
//	greedy   price priority, cheapest eligible offer first (fast)
//	auction  double auction with one clearing price per kind
//	optimal  maximum total surplus: exact min-cost flow per kind for
//	         divisible demand, bundles placed first by the dual prices of
//	         the LP relaxation
//
// The tests in this package run the .wasm files through the kernel's
// metered VM on markets from rome/marketgen and check every output against
// the ABI's validation rules; see BENCHMARKS.md for the figures.
package policies
