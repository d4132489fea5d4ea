package optimal

import (
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

func BenchmarkZZGreedy(b *testing.B) {
	cfg, _ := marketgen.FamilyConfig("replicas", 10000, 1000, 1)
	s, _, _ := marketgen.Generate(cfg)
	for b.Loop() {
		policy.WithReplicas(s, func(s *policy.Snapshot) ([]policy.Allocation, error) { return fill.Greedy(s), nil })
	}
}
func BenchmarkZZExpand(b *testing.B) {
	cfg, _ := marketgen.FamilyConfig("replicas", 10000, 1000, 1)
	s, _, _ := marketgen.Generate(cfg)
	for b.Loop() {
		expand(s)
	}
}
func BenchmarkZZGraph(b *testing.B) {
	cfg, _ := marketgen.FamilyConfig("replicas", 10000, 1000, 1)
	s, _, _ := marketgen.Generate(cfg)
	xs, rp := expand(s)
	for b.Loop() {
		rs, _ := byRegion(xs)
		g := newGraph(rs)
		rp.restrict(rs, g)
	}
}
