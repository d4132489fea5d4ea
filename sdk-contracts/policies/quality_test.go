package policies_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
	"github.com/sos-kernel/sos/vm"
)

// eligible is the test's own reading of the ABI's eligibility rules
// (price on every kind with demand included).
func eligible(s *policy.Snapshot, o policy.Offer, r policy.Request) bool {
	if r.Region != 0 && r.Region != o.Region || o.Attrs&r.Attrs != r.Attrs || o.Reliability < r.MinReliability {
		return false
	}
	if r.WithinKm > 0 && !withinKm(o, r) {
		return false
	}
	for k := range s.Kinds {
		if r.Demand[k] > 0 && o.Price[k] > r.MaxPrice[k] {
			return false
		}
	}
	return true
}

// lpBound returns the optimum of the LP in which every request is
// divisible (bundles relaxed to per-kind divisible demand; exact for a
// divisible market, solved per kind as a transportation problem by mcf) and
// a Lagrangian bound on the LP relaxation of the market with bundles as
// they are (all kinds from one offer, in proportion): for any offer prices
// z >= 0, Σ capacity·z plus each request's best reduced surplus at z is an
// upper bound (weak duality). z is taken from the divisible solution's
// potentials. For a divisible market both numbers agree.
func lpBound(s *policy.Snapshot) (divisible, bundles int64) {
	nr, no := len(s.Requests), len(s.Offers)
	pairs := make([][]int, nr)
	for r := range s.Requests {
		for o := range s.Offers {
			if eligible(s, s.Offers[o], s.Requests[r]) {
				pairs[r] = append(pairs[r], o)
			}
		}
	}
	z := make([][policy.MaxKinds]int64, no)
	for k := range s.Kinds {
		src, sink := nr+no, nr+no+1
		g := newMCF(nr + no + 2)
		for r, req := range s.Requests {
			if req.Demand[k] == 0 {
				continue
			}
			g.add(src, r, int64(req.Demand[k]), -int64(req.MaxPrice[k]))
			for _, o := range pairs[r] {
				if s.Offers[o].Capacity[k] > 0 {
					g.add(r, nr+o, inf, 0)
				}
			}
		}
		for o, off := range s.Offers {
			if off.Capacity[k] > 0 {
				g.add(nr+o, sink, int64(off.Capacity[k]), int64(off.Price[k]))
			}
		}
		cost, pi := g.minCost(src, sink)
		divisible -= cost
		for o, off := range s.Offers {
			z[o][k] = max(0, pi[sink]-pi[nr+o]-int64(off.Price[k]))
		}
	}
	for o, off := range s.Offers {
		for k := range s.Kinds {
			bundles += int64(off.Capacity[k]) * z[o][k]
		}
	}
	for r, req := range s.Requests {
		if req.Flags&1 != 0 {
			var best int64
			for _, o := range pairs[r] {
				var v int64
				for k := range s.Kinds {
					v += int64(req.Demand[k]) * (int64(req.MaxPrice[k]) - int64(s.Offers[o].Price[k]) - z[o][k])
				}
				best = max(best, v)
			}
			bundles += best
			continue
		}
		for k := range s.Kinds {
			var best int64
			for _, o := range pairs[r] {
				if s.Offers[o].Capacity[k] > 0 {
					best = max(best, int64(req.MaxPrice[k])-int64(s.Offers[o].Price[k])-z[o][k])
				}
			}
			bundles += int64(req.Demand[k]) * best
		}
	}
	return divisible, min(bundles, divisible)
}

// metrics summarizes an allocation list.
type metrics struct {
	surplus       int64
	util, matched [policy.MaxKinds]float64 // per kind: of capacity, of demand
	allocs        int
}

func measure(s *policy.Snapshot, allocs []policy.Allocation) metrics {
	m := metrics{allocs: len(allocs)}
	var alloc, capTotal, demTotal [policy.MaxKinds]uint64
	for _, a := range allocs {
		r, o := s.Requests[a.Request], s.Offers[a.Offer]
		for k := range s.Kinds {
			m.surplus += int64(a.Amount[k]) * (int64(r.MaxPrice[k]) - int64(o.Price[k]))
			alloc[k] += a.Amount[k]
		}
	}
	for _, o := range s.Offers {
		for k := range s.Kinds {
			capTotal[k] += o.Capacity[k]
		}
	}
	for _, r := range s.Requests {
		for k := range s.Kinds {
			demTotal[k] += r.Demand[k]
		}
	}
	for k := range s.Kinds {
		m.util[k] = float64(alloc[k]) / float64(max(1, capTotal[k]))
		m.matched[k] = float64(alloc[k]) / float64(max(1, demTotal[k]))
	}
	return m
}

func (m metrics) perKind(s *policy.Snapshot) string {
	var b strings.Builder
	for k, kind := range s.Kinds {
		fmt.Fprintf(&b, " %s %.1f%%/%.1f%%", kind, 100*m.util[k], 100*m.matched[k])
	}
	return b.String()
}

// lpBounds2000 are the LP relaxation optima (writeMIP with relax, solved
// by COIN-OR CBC 2.10: go test -run TestQuality ./sdk-contracts/policies)
// of marketgen.Families(2000, 200, 1): TestQuality's bounds when CBC is not
// installed or with -short, and checked against CBC when it runs.
var lpBounds2000 = map[string]float64{
	"divisible":   1993990,
	"bundles30":   1682310.6,
	"bundleheavy": 1436366.4,
	"scarce":      756097.2,
	"heavytail":   9662919.1,
	"regions":     1331459.7,
	"tied":        2964565,
	"replicas":    1513355.9,
}

// qualityFloors are optimal's minimum shares of the LP bound per family
// (the bound is at least the MIP optimum, so these are floors on the
// share of the MIP optimum too). Issue 17 asks 99% of the MIP optimum on
// bundle-heavy markets; the others hold what the policy reached then.
// Issue 13 asks 97% of the LP bound with the replica constraint (replicas:
// optimal reaches 99.63%; it reached 90.81% while replicas were placed
// after the other requests).
var qualityFloors = map[string]float64{
	"divisible":   0.9999,
	"bundles30":   0.995,
	"bundleheavy": 0.99,
	"scarce":      0.995,
	"heavytail":   0.995,
	"regions":     0.995,
	"tied":        0.995,
	"replicas":    0.99,
}

// TestQuality runs every policy on the market families of rome/marketgen
// (2,000 requests × 200 offers × 4 kinds, seed 1) and compares total
// surplus with the optimum of the LP relaxation solved outside the
// project (CBC; lpBounds2000 without it): optimal must reach its family's
// floor (qualityFloors) and never fall below greedy. Without -short the
// policies also run in the VM and must give the native output.
func TestQuality(t *testing.T) {
	var v *vm.VM
	var ps map[string]*compiled
	if !testing.Short() {
		v, ps = load(t)
	}
	for _, f := range marketgen.Families(2000, 200, 1) {
		t.Run(f.Name, func(t *testing.T) {
			s, snap, err := marketgen.Generate(f.Config)
			if err != nil {
				t.Fatal(err)
			}
			bound, ok := lpBounds2000[f.Name]
			if !ok {
				t.Fatalf("no recorded LP bound for family %s", f.Name)
			}
			source := "recorded CBC LP optimum"
			if !testing.Short() {
				switch lp, err := solveCBC(context.Background(), s, true, 10*time.Minute); {
				case errors.Is(err, errNoSolver):
					source += " (cbc not installed)"
				case err != nil:
					t.Fatal(err)
				default:
					if math.Abs(lp.Objective-bound) > 1 {
						t.Fatalf("CBC's LP optimum %.1f differs from the recorded %.1f: the generator or writeMIP changed; update lpBounds2000", lp.Objective, bound)
					}
					bound, source = lp.Objective, fmt.Sprintf("CBC LP optimum (%.1fs)", lp.Seconds)
				}
			}
			t.Logf("%s: snapshot %d bytes, bound %.1f: %s", f.About, len(snap), bound, source)
			var greedy int64
			for _, name := range policyNames {
				start := time.Now()
				allocs, err := native[name](s)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := validate(s, allocs); err != nil {
					t.Fatalf("%s: invalid output: %v", name, err)
				}
				if err := s.CheckAllocations(allocs); err != nil {
					t.Fatalf("%s: SDK validator: %v", name, err)
				}
				m := measure(s, allocs)
				ratio := float64(m.surplus) / bound
				vmRun := ""
				if v != nil {
					if out, err := call(v, ps[name], snap, len(s.Kinds)); err != nil {
						vmRun = "; VM: " + err.Error()
					} else if !reflect.DeepEqual(out.allocs, allocs) {
						t.Errorf("%s: VM output differs from native output", name)
					} else {
						vmRun = fmt.Sprintf("; VM: same output, gas %d, %v", out.gas, out.elapsed.Round(time.Millisecond))
					}
				}
				t.Logf("%-8s surplus %8d = %6.2f%% of LP, %4d allocations, native %v%s",
					name, m.surplus, 100*ratio, m.allocs, took.Round(time.Millisecond), vmRun)
				if float64(m.surplus) > bound+1 {
					t.Errorf("%s: surplus %d above the LP bound %.1f: bound or validator wrong", name, m.surplus, bound)
				}
				switch name {
				case "greedy":
					greedy = m.surplus
				case "optimal":
					if ratio < qualityFloors[f.Name] {
						t.Errorf("optimal reaches %.4f of the LP bound, want >= %.4f", ratio, qualityFloors[f.Name])
					}
					if m.surplus < greedy {
						t.Errorf("optimal's surplus %d below greedy's %d", m.surplus, greedy)
					}
				}
			}
		})
	}
}
