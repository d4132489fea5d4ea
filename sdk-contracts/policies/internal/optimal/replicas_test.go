package optimal

import (
	"reflect"
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// replicaMarkets are small replicas-family markets with the variations
// that make the replica rules bind: scarce regions (spread), many held
// replicas, providers with several offers, few offers running jobs, tied
// prices (the job failure share and the position break ties), capacity
// tight enough that whole replicas do not fit everywhere.
func replicaMarkets(t *testing.T) []*policy.Snapshot {
	t.Helper()
	var out []*policy.Snapshot
	for seed := range uint64(12) {
		cfg, _ := marketgen.FamilyConfig("replicas", 400, 60, seed+1)
		switch seed % 4 {
		case 1:
			cfg.Regions, cfg.MaxReplicas, cfg.SpreadShare, cfg.Load = 3, 5, 0.8, 2
		case 2:
			cfg.OffersPerProvider, cfg.HeldShare, cfg.RunsJobsShare = 10, 0.5, 0.5
		case 3:
			cfg.TiedPrices, cfg.HeavyTail, cfg.Load = true, true, 3
		}
		s, _, err := marketgen.Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Job records, so that the failure share breaks some ties.
		for i := range s.Offers {
			if i%3 == 0 {
				s.Offers[i].Jobs = policy.JobRecord{Completed: uint64(i % 7), TimedOut: uint64(i % 5)}
			}
		}
		out = append(out, s)
	}
	return out
}

// TestGreedyAnswerMatchesWithReplicas: optimal's first answer on a market
// with replicated requests, found from the copies' eligibility rows, is
// the very list greedy's policy gives (policy.WithReplicas with
// fill.Greedy, whose PlaceReplicas scans every offer), so optimal is never
// below greedy. Before greedyAnswer, optimal computed that list itself
// with PlaceReplicas; a difference in any rule (eligibility, runs jobs,
// spread, held replicas, room, cost, ties) fails here.
func TestGreedyAnswerMatchesWithReplicas(t *testing.T) {
	placed := 0
	for m, s := range replicaMarkets(t) {
		want, err := policy.WithReplicas(s, func(s *policy.Snapshot) ([]policy.Allocation, error) { return fill.Greedy(s), nil })
		if err != nil {
			t.Fatal(err)
		}
		xs, rp := expand(s)
		if rp == nil {
			t.Fatalf("market %d: not expanded", m)
		}
		rs, pos := byRegion(xs)
		g := newGraphSkip(rs, rp.siblings())
		rp.restrict(rs, g)
		got := greedyAnswer(s, rs, g, pos, rp)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("market %d: greedyAnswer differs from policy.WithReplicas(fill.Greedy): %d vs %d allocations", m, len(got), len(want))
		}
		for _, a := range got {
			if s.Requests[a.Request].Replicas > 0 {
				placed++
			}
		}
	}
	if placed == 0 {
		t.Fatal("no replica placed on any market")
	}
	t.Logf("%d replicas placed", placed)
}

// TestRestrictMatchesRule: after restrict, bit o of a copy's row is set
// exactly when offer o is eligible for the request (policy.Eligible), runs
// jobs, has a region if the request spreads, has the capacity for a whole
// replica, and is of no provider (with spread: in no region) of a replica
// the request holds — checked pair by pair.
func TestRestrictMatchesRule(t *testing.T) {
	for m, s := range replicaMarkets(t) {
		xs, rp := expand(s)
		rs, _ := byRegion(xs)
		g := newGraphSkip(rs, rp.siblings())
		rp.restrict(rs, g)
		nk := len(rs.Kinds)
		for gi, cs := range rp.groups {
			for _, c := range cs {
				r := &rs.Requests[c]
				row, lo, hi := g.span(int(c))
				for o := range rs.Offers {
					of := &rs.Offers[o]
					want := policy.Eligible(of, r, nk) && of.RunsJobs() && (!rp.spread[gi] || of.Region != 0)
					for k := range nk {
						want = want && r.Demand[k] <= of.Capacity[k]
					}
					for _, hd := range rp.held[gi] {
						want = want && hd.Provider != of.Provider && (!rp.spread[gi] || hd.Region != of.Region)
					}
					got := row[o>>6]&(1<<(o&63)) != 0
					if got != want {
						t.Fatalf("market %d, copy %d, offer %d: bit %v, want %v", m, c, o, got, want)
					}
					if got && (o>>6 < lo || o>>6 >= hi) {
						t.Fatalf("market %d, copy %d: offer %d outside the span [%d, %d)", m, c, o, lo, hi)
					}
				}
				if lo < hi && (row[lo] == 0 || row[hi-1] == 0) {
					t.Fatalf("market %d, copy %d: span [%d, %d) not tight", m, c, lo, hi)
				}
			}
		}
	}
}
