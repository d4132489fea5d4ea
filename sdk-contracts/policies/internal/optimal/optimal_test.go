package optimal

import (
	"testing"
	"time"

	"github.com/sos-kernel/sos/rome/marketgen"
)

// TestAllocateNative runs the policy natively on a quality-size market and
// checks its output with the SDK validator.
func TestAllocateNative(t *testing.T) {
	for _, bundles := range []float64{0, 0.3} {
		s, _, err := marketgen.Generate(marketgen.Config{Requests: 2000, Offers: 200, Kinds: 4, Seed: 1, BundleShare: bundles})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		allocs, err := Allocate(s)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("bundles %.1f: %d allocations in %v", bundles, len(allocs), time.Since(start))
		if err := s.CheckAllocations(allocs); err != nil {
			t.Fatal(err)
		}
	}
}
