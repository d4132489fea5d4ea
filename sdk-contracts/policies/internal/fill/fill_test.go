package fill

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// TestSortDesc checks both of SortDesc's paths (packed integers, and pairs
// with a comparison for keys of 40 bits or more) against a plain sort.
func TestSortDesc(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, maxKey := range []uint64{5, 1 << 39, 1<<40 + 10, ^uint64(0)} {
		for range 20 {
			n := rng.IntN(300)
			pos := rng.Perm(n + 50)[:n]
			positions := make([]int32, n)
			keys := make([]uint64, n)
			for i := range n {
				positions[i] = int32(pos[i])
				keys[i] = rng.Uint64N(maxKey)
				if maxKey > 5 && i%3 == 0 { // ties
					keys[i] = maxKey - 1
				}
			}
			want := make([]int32, n)
			copy(want, positions)
			key := map[int32]uint64{}
			for i, p := range positions {
				key[p] = keys[i]
			}
			slices.SortFunc(want, func(a, b int32) int { return cmp.Or(cmp.Compare(key[b], key[a]), cmp.Compare(a, b)) })
			SortDesc(positions, keys)
			if !slices.Equal(positions, want) {
				t.Fatalf("keys below %d: order %v, want %v", maxKey, positions, want)
			}
			for i, p := range positions {
				if keys[i] != key[p] {
					t.Fatalf("keys below %d: key of %d is %d, want %d", maxKey, p, keys[i], key[p])
				}
			}
		}
	}
}

// TestIndexOrders checks NewIndex's orders on both paths (packed integers
// when prices fit in 24 bits, comparison functions otherwise) against the
// definition: Global by (price, job failure share, position), ByRegion the
// same order stably sorted by region.
func TestIndexOrders(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, maxPrice := range []uint64{4, 1<<24 - 1, 1 << 24, 1 << 50} {
		for range 10 {
			s := &policy.Snapshot{Kinds: []policy.Kind{policy.Compute, policy.Storage}}
			for range 1 + rng.IntN(200) {
				o := policy.Offer{Region: rng.Uint32N(5), Provider: 1,
					Jobs: policy.JobRecord{Completed: rng.Uint64N(4), Failed: rng.Uint64N(3), TimedOut: rng.Uint64N(2)}}
				for k := range 2 {
					o.Capacity[k], o.Price[k] = 1+rng.Uint64N(9), rng.Uint64N(maxPrice)
				}
				s.Offers = append(s.Offers, o)
			}
			x := NewIndex(s)
			for k := range 2 {
				want := make([]int32, len(s.Offers))
				for i := range want {
					want[i] = int32(i)
				}
				slices.SortFunc(want, func(a, b int32) int {
					oa, ob := &s.Offers[a], &s.Offers[b]
					return cmp.Or(cmp.Compare(oa.Price[k], ob.Price[k]), cmp.Compare(oa.JobFailureBps(), ob.JobFailureBps()), cmp.Compare(a, b))
				})
				if !slices.Equal(x.Global[k], want) {
					t.Fatalf("prices < %d, kind %d: Global %v, want %v", maxPrice, k, x.Global[k], want)
				}
				slices.SortStableFunc(want, func(a, b int32) int { return cmp.Compare(s.Offers[a].Region, s.Offers[b].Region) })
				if !slices.Equal(x.ByRegion[k], want) {
					t.Fatalf("prices < %d, kind %d: ByRegion %v, want %v", maxPrice, k, x.ByRegion[k], want)
				}
			}
		}
	}
}
