package marketgen_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

func TestGenerateDeterministic(t *testing.T) {
	cfg := marketgen.Config{Requests: 300, Offers: 40, Seed: 42, BundleShare: 0.3}
	_, a, err := marketgen.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, b, _ := marketgen.Generate(cfg)
	cfg.Seed++
	_, c, _ := marketgen.Generate(cfg)
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("Generate is not a function of the seed")
	}
	s, err := policy.Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	bundles := 0
	for _, r := range s.Requests {
		if r.Bundle() {
			bundles++
		}
	}
	if bundles < 60 || bundles > 120 {
		t.Errorf("%d bundles of 300 with share 0.3", bundles)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []marketgen.Config{
		{Requests: -1}, {Kinds: 5}, {BundleShare: 2}, {AnyRegionShare: 0.7, NearShare: 0.7}, {Load: 1000},
	} {
		if _, _, err := marketgen.Generate(cfg); err == nil {
			t.Errorf("Generate(%+v) accepted a bad config", cfg)
		}
	}
}

func ExampleGenerate() {
	s, snap, err := marketgen.Generate(marketgen.Config{Requests: 2000, Offers: 200, Kinds: 4, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(snap), len(s.Requests), len(s.Offers), s.Kinds)
	// Output:
	// 228233 2000 200 [compute bandwidth energy storage]
}

// TestFamilies: every benchmark family has the shape its name promises,
// so a quality figure per family measures what it says.
func TestFamilies(t *testing.T) {
	for _, f := range marketgen.Families(2000, 200, 1) {
		s, _, err := marketgen.Generate(f.Config)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		var bundles, wide, maxDemand, demand, capacity, replicated, spread uint64
		regions := map[uint32]bool{}
		for _, r := range s.Requests {
			if r.Replicas > 0 {
				replicated++
				if r.Spread() {
					spread++
				}
			}
			kinds := 0
			for k := range s.Kinds {
				if r.Demand[k] > 0 {
					kinds++
					demand += r.Demand[k]
					maxDemand = max(maxDemand, r.Demand[k])
				}
			}
			if r.Bundle() {
				bundles++
				if kinds >= 3 {
					wide++
				}
			}
		}
		for _, o := range s.Offers {
			regions[o.Region] = true
			for k := range s.Kinds {
				capacity += o.Capacity[k]
			}
		}
		share := float64(bundles) / float64(len(s.Requests))
		var ok bool
		switch f.Name {
		case "divisible":
			ok = bundles == 0
		case "bundleheavy":
			ok = share > 0.75 && share < 0.85 && wide == bundles
		case "scarce":
			ok = float64(demand) > 3*float64(capacity)
		case "heavytail":
			ok = maxDemand >= 1000
		case "regions":
			ok = len(regions) >= 40
		case "replicas":
			ok = replicas(t, s, replicated, spread) && bundles > 0
		case "tied":
			asks := map[uint64]bool{}
			for _, o := range s.Offers {
				asks[o.Price[0]] = true
			}
			ok = len(asks) <= 3
		default:
			ok = share > 0.25 && share < 0.35
		}
		if f.Name != "replicas" && (replicated > 0 || len(s.Held) > 0) {
			t.Errorf("%s: %d replicated requests, %d held replicas", f.Name, replicated, len(s.Held))
		}
		if !ok {
			t.Errorf("%s (%s): bundles %d (%d of 3+ kinds), demand/capacity %d/%d, largest demand %d, %d regions",
				f.Name, f.About, bundles, wide, demand, capacity, maxDemand, len(regions))
		}
	}
}

// replicas reports whether s has the replica family's shape: about 30%
// replicated requests, half of them spread (without a region), some holding
// a replica, providers with offers in several regions, most offers running
// jobs.
func replicas(t *testing.T, s *policy.Snapshot, replicated, spread uint64) bool {
	t.Helper()
	share := float64(replicated) / float64(len(s.Requests))
	provRegions := map[uint32]map[uint32]bool{}
	runs := 0
	for _, o := range s.Offers {
		if provRegions[o.Provider] == nil {
			provRegions[o.Provider] = map[uint32]bool{}
		}
		provRegions[o.Provider][o.Region] = true
		if o.RunsJobs() {
			runs++
		}
	}
	multi := 0
	for _, rs := range provRegions {
		if len(rs) > 1 {
			multi++
		}
	}
	for _, r := range s.Requests {
		if r.Replicas > 0 && (r.Replicas > 3 || r.Bundle() || r.Spread() && (r.Region != 0 || r.WithinKm != 0) || r.Demand[len(s.Kinds)-1] == 0) {
			t.Errorf("replicated request %d: %+v", r.ID, r)
		}
	}
	ok := share > 0.25 && share < 0.35 && spread > replicated/3 && spread < 2*replicated/3 &&
		len(s.Held) > 0 && len(s.Held) < int(replicated)/5 && len(provRegions) == len(s.Offers)/4 &&
		multi > len(provRegions)/2 && runs > 8*len(s.Offers)/10 && runs < len(s.Offers)
	if !ok {
		t.Logf("replicated %.3f, spread %d of %d, held %d, providers %d (%d in several regions), %d of %d offers run jobs",
			share, spread, replicated, len(s.Held), len(provRegions), multi, runs, len(s.Offers))
	}
	return ok
}
