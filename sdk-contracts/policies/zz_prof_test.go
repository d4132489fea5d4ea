package policies_test

import (
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
)

func BenchmarkZZReplicas(b *testing.B) {
	c, _ := marketgen.FamilyConfig("replicas", 10000, 1000, 1)
	_, snap, _ := marketgen.Generate(c)
	for _, name := range policyNames {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := applyNative(name, snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
