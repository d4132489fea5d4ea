package policies_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
	"github.com/sos-kernel/sos/vm"
)

// TestOptimalIsAnytime runs the optimal policy in the VM on a bundle-heavy
// market with budgets from 2% to 99% of the gas a full run takes. Each run
// ends out of gas; what it handed in before (set_result) must be nothing
// (before the first hand-in) or a valid allocation list, the same bytes on
// a second run with the same budget, never worse than with a smaller
// budget, greedy's own list once greedy's answer is in, and something
// better than greedy before the end. issue 17: out of gas used to mean no
// answer at all.
func TestOptimalIsAnytime(t *testing.T) {
	v, ps := load(t)
	cfg, _ := marketgen.FamilyConfig("bundleheavy", 400, 40, 3)
	s, snap, err := marketgen.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := ps["optimal"]
	full, err := call(v, c, snap, len(s.Kinds))
	if err != nil {
		t.Fatal(err)
	}
	greedy := fill.Greedy(s)
	gv, fv := surplus(s, greedy), surplus(s, full.allocs)
	if fv.Cmp(gv) <= 0 {
		t.Fatalf("market too easy: optimal %v, greedy %v", fv, gv)
	}
	run := func(gas uint64) []byte {
		res, err := v.Call(context.Background(), c.code, c.prepared, "allocate", snap, vm.Env{ChainID: "test"}, refusingHost{}, gas)
		if !errors.Is(err, vm.ErrOutOfGas) {
			t.Fatalf("gas %d of %d: %v, want out of gas", gas, full.gas, err)
		}
		return res.Data
	}
	var last []policy.Allocation
	sawGreedy, sawBetter := false, false
	for _, pct := range []uint64{2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99} {
		gas := full.gas * pct / 100
		data := run(gas)
		if again := run(gas); !bytes.Equal(data, again) {
			t.Fatalf("gas %d: two runs handed in different lists", gas)
		}
		if len(data) == 0 {
			if last != nil {
				t.Fatalf("gas %d: nothing handed in, but a smaller budget had an answer", gas)
			}
			t.Logf("%2d%% (gas %d): nothing handed in yet", pct, gas)
			continue
		}
		as, err := policy.DecodeAllocations(data, len(s.Kinds))
		if err != nil {
			t.Fatalf("gas %d: %v", gas, err)
		}
		if err := validate(s, as); err != nil {
			t.Fatalf("gas %d: invalid hand-in: %v", gas, err)
		}
		if last != nil && surplus(s, as).Cmp(surplus(s, last)) < 0 {
			t.Fatalf("gas %d: surplus %v below a smaller budget's %v", gas, surplus(s, as), surplus(s, last))
		}
		if reflect.DeepEqual(as, greedy) {
			sawGreedy = true
		} else if surplus(s, as).Cmp(gv) > 0 {
			sawBetter = true
		}
		t.Logf("%2d%% (gas %d): surplus %v (greedy %v, full run %v)", pct, gas, surplus(s, as), gv, fv)
		last = as
	}
	if !sawGreedy || !sawBetter {
		t.Fatalf("handed in greedy's list: %v, a better one before the end: %v; want both", sawGreedy, sawBetter)
	}
}
