package rome

import (
	"context"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// oneMatchEpoch places one offer and one matching request and returns the
// record of the epoch that allocates them.
func oneMatchEpoch(t *testing.T, h *harness) *EpochRecord {
	t.Helper()
	h.must(h.users[0], &ledger.RomeOffer{Capacity: res(1, 100), Price: res(1, 5)})
	h.must(h.users[1], &ledger.RomeRequest{Demand: res(1, 10), MaxPrice: res(1, 8), Epochs: 1})
	c, _ := h.m.Clock(h.st)
	h.untilEpoch(c.Epoch + 1)
	rec, err := h.m.Epoch(h.st, c.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// policyModule builds a module whose allocate runs code (which must leave
// an i32 on the stack); data is placed at address 0.
func policyModule(code []byte, data []byte) []byte {
	types := wasmasm.Vec(
		wasmasm.Cat([]byte{0x60}, wasmasm.Vec(), wasmasm.Vec([]byte{0x7f})),               // () -> i32
		wasmasm.Cat([]byte{0x60}, wasmasm.Vec([]byte{0x7f}, []byte{0x7f}), wasmasm.Vec()), // (i32, i32) -> ()
	)
	imports := wasmasm.Vec(wasmasm.Cat(wasmasm.Name("sos"), wasmasm.Name("set_result"), []byte{0x00}, wasmasm.U32(1)))
	body := wasmasm.Cat(wasmasm.Vec(), code, []byte{0x0b})
	m := wasmasm.Cat([]byte("\x00asm"), []byte{1, 0, 0, 0},
		wasmasm.Section(1, types), wasmasm.Section(2, imports), wasmasm.Section(3, wasmasm.Vec(wasmasm.U32(0))),
		wasmasm.Section(5, wasmasm.Vec([]byte{0x00, 0x01})),
		wasmasm.Section(7, wasmasm.Vec(wasmasm.Cat(wasmasm.Name("memory"), []byte{0x02, 0x00}), wasmasm.Cat(wasmasm.Name("allocate"), []byte{0x00, 0x01}))),
		wasmasm.Section(10, wasmasm.Vec(wasmasm.Cat(wasmasm.U32(uint32(len(body))), body))))
	if data != nil {
		m = wasmasm.Cat(m, wasmasm.Section(11, wasmasm.Vec(wasmasm.Cat([]byte{0x00, 0x41, 0x00, 0x0b}, wasmasm.U32(uint32(len(data))), data))))
	}
	return m
}

// returning makes code that passes data[0:n] to set_result and returns rc.
func returning(n int, rc int32) []byte {
	return wasmasm.Cat(handIn(0, n), []byte{0x41}, wasmasm.S32(rc))
}

// handIn makes code that passes data[off:off+n] to set_result.
func handIn(off, n int) []byte {
	return wasmasm.Cat([]byte{0x41}, wasmasm.S32(int32(off)), []byte{0x41}, wasmasm.S32(int32(n)), []byte{0x10, 0x00})
}

// Code that never ends (it runs out of gas) and code that traps; both leave
// an i32 on the stack for the validator.
var (
	spin = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00}
	trap = []byte{0x00, 0x41, 0x00}
)

// oneAllocation is the allocation list giving request 0 amount of offer 0
// at price on a one-kind snapshot.
func oneAllocation(amount, price uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 1)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, amount)
	return binary.LittleEndian.AppendUint64(b, price)
}

func newVM(t *testing.T) *vm.VM {
	t.Helper()
	v, err := vm.New(context.Background(), vm.Config{Purpose: vm.Policies})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(context.Background()) })
	return v
}

// activate uploads wasm and passes a governance proposal making it active.
func (h *harness) activate(wasm []byte) string {
	h.t.Helper()
	pid := id(h.must(h.users[2], &ledger.RomePolicyUpload{Name: "p", Wasm: wasm}), "")
	_ = pid
	polID := ledger.HashBytes(wasm).String()
	prop := id(h.must(h.users[2], &ledger.GovPropose{Param: "active_policy", Value: polID}), "proposal_id")
	h.must(h.node, &ledger.GovVote{ProposalID: prop, Option: ledger.VoteYes})
	for i := 0; i < 5; i++ {
		h.endBlock()
	}
	p, _ := h.m.Params(h.st)
	if p.ActivePolicy != polID {
		pr, _ := h.m.Proposal(h.st, prop)
		h.t.Fatalf("policy not active: proposal %s (%s)", ProposalStatusName(pr.Status), pr.Result)
	}
	return polID
}

func TestMisbehavingPoliciesFallBack(t *testing.T) {
	overAlloc := oneAllocation(1_000_000, 5) // compute (the only kind) 1e6 units at 5: far above demand
	cases := []struct {
		name, why string
		wasm      []byte
	}{
		{"trap", "trap", policyModule([]byte{0x00}, nil)},
		{"loop", "out of gas", policyModule([]byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00}, nil)},
		{"garbage", "malformed", policyModule(returning(5, 0), []byte("hello"))},
		{"error", "returned an error", policyModule(returning(5, 1), []byte("nope!"))},
		{"infeasible", "infeasible", policyModule(returning(len(overAlloc), 0), overAlloc)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{vm: newVM(t), policyGas: 100_000_000}) // the loop burns all of it
			id := h.activate(tc.wasm)
			rec := oneMatchEpoch(t, h)
			if rec.Policy != BuiltinFirstCome || !strings.Contains(rec.Rejected, tc.why) || rec.NewLeases != 1 || rec.Interrupted != "" {
				t.Fatalf("epoch record: policy %s, rejected %q, leases %d; want fallback after %q", rec.Policy, rec.Rejected, rec.NewLeases, tc.why)
			}
			found := false
			for _, e := range rec.Events {
				found = found || e.Type == "rome_policy_rejected" && e.Attrs[0].Value == id
			}
			if !found {
				t.Fatalf("no rome_policy_rejected event: %+v", rec.Events)
			}
		})
	}
}

// TestAnytimePolicies: a policy that hands in an allocation and then runs
// out of gas or traps gets that allocation used (the record names the
// policy and how it stopped); the last list handed in is the one that
// counts, so an invalid one after a valid one, or an error return, makes
// the fallback run. oneMatchEpoch's market: one offer (compute 100 at 5),
// one request (compute 10, at most 8).
func TestAnytimePolicies(t *testing.T) {
	valid := oneAllocation(6, 5)   // 6 of the 10 units: not what the fallback does
	invalid := oneAllocation(6, 9) // price above the request's maximum
	data := append(append(append([]byte{}, valid...), invalid...), "nope!"...)
	vl, il := len(valid), len(invalid)
	cases := []struct {
		name        string
		code        []byte
		interrupted string // "": the fallback runs
		rejected    string
		leased      uint64 // compute leased by the epoch
	}{
		{"out of gas", wasmasm.Cat(handIn(0, vl), spin), "out of gas", "", 6},
		{"trap", wasmasm.Cat(handIn(0, vl), trap), "trap", "", 6},
		{"two hand-ins, the last counts", wasmasm.Cat(handIn(vl, il), handIn(0, vl), spin), "out of gas", "", 6},
		{"invalid after valid", wasmasm.Cat(handIn(0, vl), handIn(vl, il), spin), "", "out of gas; the allocation it handed in before", 10},
		{"error after valid", wasmasm.Cat(handIn(0, vl), handIn(vl+il, 5), []byte{0x41, 0x01}), "", "returned an error", 10},
		{"returned", wasmasm.Cat(handIn(0, vl), []byte{0x41, 0x00}), "", "", 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{vm: newVM(t), policyGas: 50_000_000})
			id := h.activate(policyModule(tc.code, data))
			rec := oneMatchEpoch(t, h)
			if rec.Interrupted != tc.interrupted || tc.rejected == "" && rec.Rejected != "" || !strings.Contains(rec.Rejected, tc.rejected) {
				t.Fatalf("epoch record: policy %s, interrupted %q, rejected %q; want interrupted %q, rejected %q",
					rec.Policy, rec.Interrupted, rec.Rejected, tc.interrupted, tc.rejected)
			}
			if used := tc.rejected == ""; used != (rec.Policy == id) {
				t.Fatalf("epoch record: policy %s (active %s), rejected %q", rec.Policy, id, rec.Rejected)
			}
			if rec.NewLeases != 1 || rec.Kinds[0].Matched != tc.leased {
				t.Fatalf("%d leases, %d units matched; want 1 lease of %d", rec.NewLeases, rec.Kinds[0].Matched, tc.leased)
			}
			found := false
			for _, e := range rec.Events {
				found = found || e.Type == "rome_policy_interrupted" && e.Attrs[1].Value == tc.interrupted
			}
			if found != (tc.interrupted != "") {
				t.Fatalf("rome_policy_interrupted event %v, want %v: %+v", found, tc.interrupted != "", rec.Events)
			}
		})
	}
}

// TestBuiltinFallbackPicksTheBetter: the built-in fallback runs FirstCome
// and Greedy and uses the allocation with more surplus (FirstCome on a
// tie), and the record says which. One offer (compute 10 at 1) and two
// requests for all of it, in the order posted: FirstCome serves the first,
// Greedy the bundle first, else the higher bid.
func TestBuiltinFallbackPicksTheBetter(t *testing.T) {
	divisible := func(max uint64) *ledger.RomeRequest {
		return &ledger.RomeRequest{Demand: res(1, 10), MaxPrice: res(1, max), Epochs: 1}
	}
	bundle := func(max uint64) *ledger.RomeRequest {
		r := divisible(max)
		r.Bundle = true
		return r
	}
	for _, tc := range []struct {
		name   string
		reqs   [2]*ledger.RomeRequest
		want   string
		served int // which request got the capacity
	}{
		{"first come wins", [2]*ledger.RomeRequest{divisible(10), bundle(2)}, BuiltinFirstCome, 0},
		{"greedy wins", [2]*ledger.RomeRequest{divisible(2), divisible(10)}, BuiltinGreedy, 1},
		{"tie", [2]*ledger.RomeRequest{bundle(2), divisible(10)}, BuiltinFirstCome, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.must(h.users[0], &ledger.RomeOffer{Capacity: res(1, 10), Price: res(1, 1)})
			var ids [2]uint64
			for i, r := range tc.reqs {
				ids[i] = id(h.must(h.users[1+i], r), "request_id")
			}
			c, _ := h.m.Clock(h.st)
			h.untilEpoch(c.Epoch + 1)
			rec, err := h.m.Epoch(h.st, c.Epoch)
			if err != nil {
				t.Fatal(err)
			}
			leases, err := h.m.Leases(h.st, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Policy != tc.want || len(leases) != 1 || leases[0].RequestID != ids[tc.served] {
				t.Fatalf("policy %s, leases %+v; want %s serving request %d", rec.Policy, leases, tc.want, ids[tc.served])
			}
		})
	}
}

// TestShippedPolicy runs a policy built from sdk-contracts/policies when
// present (make builds them).
func TestShippedPolicy(t *testing.T) {
	wasm, err := os.ReadFile("../sdk-contracts/policies/greedy/greedy.wasm")
	if err != nil {
		t.Skip("greedy.wasm not built:", err)
	}
	h := newHarness(t, harnessOpts{vm: newVM(t)})
	id := h.activate(wasm)
	h.must(h.users[0], &ledger.RomeOffer{Capacity: res(1, 100, 3, 50), Price: res(1, 5, 3, 1), Region: "eu-west"})
	h.must(h.users[1], &ledger.RomeRequest{Demand: res(1, 10, 3, 5), MaxPrice: res(1, 8, 3, 2), Epochs: 2, Region: "eu-west"})
	c, _ := h.m.Clock(h.st)
	h.untilEpoch(c.Epoch + 1)
	rec, _ := h.m.Epoch(h.st, c.Epoch)
	if rec.Policy != id || rec.Rejected != "" || rec.NewLeases == 0 {
		t.Fatalf("policy %s rejected %q leases %d", rec.Policy, rec.Rejected, rec.NewLeases)
	}
	t.Logf("greedy.wasm used %d gas", rec.PolicyGas)
}

// TestPolicyMemory runs a policy that needs more memory than a contract may
// have (300 pages, above vm.MaxMemoryPages): the policy VM admits it, and a
// market refuses a VM with the contract limits.
func TestPolicyMemory(t *testing.T) {
	grow := wasmasm.Cat([]byte{0x41}, wasmasm.S32(300), []byte{0x40, 0x00}, // memory.grow 300
		[]byte{0x41}, wasmasm.S32(-1), []byte{0x46, 0x04, 0x40, 0x00, 0x0b}, // == -1: unreachable
		returning(4, 0)) // an empty allocation list
	h := newHarness(t, harnessOpts{vm: newVM(t)})
	id := h.activate(policyModule(grow, make([]byte, 4)))
	rec := oneMatchEpoch(t, h)
	if rec.Policy != id || rec.Rejected != "" {
		t.Fatalf("policy %s, rejected %q; want %s accepted", rec.Policy, rec.Rejected, id)
	}

	contracts, err := vm.New(context.Background(), vm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer contracts.Close(context.Background())
	if _, err := New(h.codec, &ledger.Genesis{ChainID: "x"}, contracts); err == nil {
		t.Fatal("a market accepted a VM with the contract limits")
	}
}
