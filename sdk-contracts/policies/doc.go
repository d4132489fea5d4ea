// Package policies holds the ROME allocation policies shipped with the
// kernel and their quality and speed tests. Each policy is a package main
// built for wasip1 by sdk-contracts/build.sh into
// sdk-contracts/policies/<name>/<name>.wasm:
//
//	greedy   price priority: bundles by bid, then divisible requests by
//	         bid, each from the cheapest eligible offers (fast)
//	auction  double auction with one clearing price per kind
//	optimal  maximum total surplus: exact min-cost flow per kind for
//	         divisible demand, bundles placed first by the Lagrangian
//	         prices of the LP relaxation and moved by a local search
//	         (replicated requests with them, as one bundle per replica
//	         kept on distinct providers and regions); an anytime policy
//	         (greedy's answer first, then better ones)
//
// The tests in this package run the .wasm files through the kernel's
// metered VM on markets from rome/marketgen and check every output against
// the ABI's validation rules; TestQuality holds optimal to a floor per
// market family (rome/marketgen.Families) against the LP relaxation solved
// by CBC (with the replica constraint for replicated requests: writeMIP);
// see BENCHMARKS.md for the figures.
package policies
