package vm

import (
	"bytes"
	"context"
	"testing"
)

// TestResetRestoresSnapshot checks the pooled-instance reset: after calls
// that write all over memory, a pooled instance's memory and globals equal
// those of a brand-new instance.
func TestResetRestoresSnapshot(t *testing.T) {
	p := loadPrepared(t)
	v := newVM(t, Config{})
	ctx := context.Background()
	h := newFakeHost()
	for _, msg := range []string{"panic x", "json 30", "shaloop 3", "incr", "storage 50", "global", "json 5"} {
		v.Call(ctx, testCode, p, "execute", []byte(msg), testEnv(), h, callGas(t, p, testGas))
	}
	mod, err := v.module(ctx, testCode, p)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.unref(ctx)
	if len(mod.pool) == 0 {
		t.Fatal("no pooled instance")
	}
	pooled, err := mod.acquire(ctx, v.rt)
	if err != nil {
		t.Fatal(err)
	}
	defer pooled.mod.Close(ctx)
	mod.mu.Lock()
	mod.pool = nil // force a new instance
	mod.mu.Unlock()
	fresh, err := mod.acquire(ctx, v.rt)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.mod.Close(ctx)
	a, _ := pooled.mod.Memory().Read(0, pooled.mod.Memory().Size())
	b, _ := fresh.mod.Memory().Read(0, fresh.mod.Memory().Size())
	if !bytes.Equal(a, b) {
		n := 0
		for i := range a {
			if a[i] != b[i] {
				n++
			}
		}
		t.Errorf("pooled memory differs from a fresh instance in %d bytes", n)
	}
	for i, g := range pooled.globals {
		if g.Get() != fresh.globals[i].Get() {
			t.Errorf("global %s: pooled %d, fresh %d", mod.globals[i], g.Get(), fresh.globals[i].Get())
		}
	}
}
