package policies_test

import (
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
)

func TestZZCount(t *testing.T) {
	c, _ := marketgen.FamilyConfig("replicas", 10000, 1000, 1)
	s, _, _ := marketgen.Generate(c)
	var scan, reps, spread, region int
	byReg := map[uint32]int{}
	for _, o := range s.Offers {
		byReg[o.Region]++
	}
	for _, r := range s.Requests {
		if r.Replicas == 0 {
			continue
		}
		reps++
		if r.Spread() {
			spread++
		}
		if r.Region != 0 {
			region++
			scan += byReg[r.Region]
		} else {
			scan += len(s.Offers)
		}
	}
	t.Logf("replicated %d spread %d region %d scan %d", reps, spread, region, scan)
}
