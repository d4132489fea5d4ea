// Package policy is the guest-side kit for ROME allocation policies: it
// decodes the epoch snapshot, implements the exact integer eligibility rules
// and encodes the allocation list of docs/rome-policy-abi.md (ABI v2).
//
// It needs only the Go standard library and no contract host package; a
// policy is a package main compiled like a contract
// (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared).
//
// # Writing a policy
//
// Step 1. Write the allocator as an ordinary function; it runs natively in
// tests and unchanged inside the VM:
//
//	func allocate(s *policy.Snapshot) ([]policy.Allocation, error) { ... }
//
// Step 2. Use the helpers for every decision the kernel will validate:
// Eligible (region, attributes, reliability, distance and price on every
// kind with demand), Compatible (the same without prices) and
// Snapshot.CheckAllocations (the ABI's validation rules, for tests).
// Inside the VM a loop and a call cost gas: for checks per candidate offer,
// MaxPrices and AtMost test every price at once, SatDot prices a whole
// demand (saturating) and Book.Fits compares the four kinds unrolled.
//
// Step 3. Export the entry point in a file built only for wasip1:
//
//	//go:build wasip1
//	package main
//
//	//go:wasmexport allocate
//	func exportAllocate() int32 { return policy.Handle(allocate) }
//
//	func main() {}
//
// Handle reads the snapshot with input_len/input_read, calls the allocator,
// writes the encoded list with set_result and returns 0, or writes the error
// text and returns 1. Apply does the same on byte slices, for native tests
// and benchmarks.
//
// # Anytime policies
//
// A policy that may not finish inside its gas budget hands in complete
// allocation lists as it finds them (docs/rome-policy-abi.md, "Anytime
// policies"): write the allocator as an AnytimeFunc, which gets a handIn
// function, and export it with HandleAnytime. Each list handed in is
// encoded and passed to set_result at once; if the call later runs out of
// gas or traps, the kernel validates and uses the last one. Hand in a fast
// valid answer first and then only better ones: each replaces the last.
// ApplyAnytime is the byte-slice form.
//
// # Replicated requests
//
// A replicated request (ABI v3) wants Replicas whole copies of its demand,
// each on a different provider (and with FlagSpread in a different region)
// from the others and from the ones it holds (Snapshot.Held). Handle and
// HandleAnytime hide replicated requests from the allocator and place
// their replicas afterwards on the capacity it left (PlaceReplicas), so
// every policy serves them without code of its own. An allocator that
// places replicas itself — to weigh them against other demand — is
// exported with HandleAll (ApplyAll): it sees every request, and its lists
// go to the kernel as they are; PlaceReplicas can still place the replicas
// a list leaves out.
//
// # Kinds
//
// Per-kind values (capacity, price, demand, amount) are fixed arrays indexed
// by the kind's position in Snapshot.Kinds, not by its id: index 0 is the
// first kind of the snapshot. Kind ids are fixed by the ABI (1 compute,
// 2 bandwidth, 3 energy, 4 storage), so there are at most MaxKinds.
//
// # Performance
//
// Marshalling is the main fixed cost of a policy call, so the codec reads
// and writes the binary format directly with encoding/binary's
// little-endian helpers: no reflection, one allocation per slice.
package policy
