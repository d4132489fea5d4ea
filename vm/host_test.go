package vm

import (
	"context"
	"errors"
	"testing"
)

// skipHost's iterators skip `skips` entries (as deleted ones would be)
// before each entry they return, reporting them through OnSkip.
type skipHost struct {
	*fakeHost
	skips   int
	charged int // entries the VM was told about
}

type skipIter struct {
	Iterator
	h      *skipHost
	charge func(int)
}

func (h *skipHost) StorageIterate(start, end []byte, reverse bool) (Iterator, error) {
	it, err := h.fakeHost.StorageIterate(start, end, reverse)
	return &skipIter{Iterator: it, h: h}, err
}

func (it *skipIter) OnSkip(f func(int)) { it.charge = f }

func (it *skipIter) Next() ([]byte, []byte, bool, error) {
	for left := it.h.skips; left > 0; left -= 64 {
		n := min(left, 64)
		it.h.charged += n
		it.charge(n) // panics once gas runs out
	}
	return it.Iterator.Next()
}

// TestIteratorSkipsArePaid: entries a SkippingIterator skips cost
// GasIterSkip each, and an iterator that would skip without end stops
// when gas runs out instead of skipping unpaid.
func TestIteratorSkipsArePaid(t *testing.T) {
	p := loadPrepared(t)
	v := newVM(t, Config{})
	ctx := context.Background()
	store := map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": []byte("3")}
	run := func(skips int, gas uint64) (*skipHost, Result, error) {
		h := &skipHost{fakeHost: newFakeHost(), skips: skips}
		h.store = store
		res, err := v.Call(ctx, testCode, p, "execute", []byte("iter a - 0"), testEnv(), h, gas)
		return h, res, err
	}
	_, base, err := run(0, testGas)
	if err != nil || string(base.Data) != "a=1,b=2,c=3," {
		t.Fatalf("no skips: %v %q", err, base.Data)
	}
	h, res, err := run(100, testGas)
	if err != nil || string(res.Data) != "a=1,b=2,c=3," {
		t.Fatalf("with skips: %v %q", err, res.Data)
	}
	// Four Next calls (three entries and the end), 100 skips before each.
	if want := base.GasUsed + 4*100*GasIterSkip; res.GasUsed != want || h.charged != 400 {
		t.Fatalf("gas %d (charged %d skips), want %d", res.GasUsed, h.charged, want)
	}
	h, res, err = run(1_000_000_000, 10_000_000)
	if !errors.Is(err, ErrOutOfGas) {
		t.Fatalf("endless skipping: %v", err)
	}
	if h.charged > 10_000_000/GasIterSkip+64 {
		t.Fatalf("skipped %d entries on 10 Mgas", h.charged)
	}
	if res.GasUsed != 10_000_000 {
		t.Fatalf("gas used %d", res.GasUsed)
	}
}
