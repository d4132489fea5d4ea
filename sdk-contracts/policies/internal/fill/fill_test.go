package fill

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
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
