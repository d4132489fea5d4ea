package policies_test

import (
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
)

func TestZZGas(t *testing.T) {
	v, ps := load(t)
	c, _ := marketgen.FamilyConfig("replicas", 10000, 1000, 1)
	for _, share := range []float64{0.3, 0} {
		cc := c
		cc.ReplicaShare = share
		s, snap, _ := marketgen.Generate(cc)
		for _, name := range []string{"greedy"} {
			out, err := call(v, ps[name], snap, len(s.Kinds))
			t.Logf("share %v %s: gas %d err %v len %d", share, name, out.gas, err, len(snap))
		}
	}
}
