package ledger

import (
	"fmt"
	"testing"
)

// TestIterateCopiesOnlyKeysInRange: iterating a small range of a State
// with thousands of buffered writes outside it allocates for the range,
// not for every buffered key (it used to copy each one to compare it: a
// block of 10,000 pins, each listing its request's leases, allocated
// ≈30 GB that way).
func TestIterateCopiesOnlyKeysInRange(t *testing.T) {
	st := NewState(memReader{})
	for i := range 5000 {
		st.Set(fmt.Appendf(nil, "b/%05d", i), []byte{1})
	}
	st.Set([]byte("a/1"), []byte{1})
	st.Set([]byte("a/2"), []byte{2})
	n := 0
	allocs := testing.AllocsPerRun(20, func() {
		n = 0
		if err := st.Iterate([]byte("a/"), []byte("a0"), false, func(k, v []byte) bool { n++; return true }); err != nil {
			t.Fatal(err)
		}
	})
	if n != 2 {
		t.Fatalf("%d keys in range, want 2", n)
	}
	if allocs > 20 {
		t.Fatalf("%.0f allocations to iterate 2 of 5,002 buffered keys", allocs)
	}
}
