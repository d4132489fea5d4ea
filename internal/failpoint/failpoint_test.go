package failpoint

import "testing"

func TestInertUntilEnabled(t *testing.T) {
	if _, ok := Eval(Example); ok {
		t.Fatal("a failpoint fired without being enabled")
	}
	disable, err := Enable(Example, `2*return("boom")`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		v, ok := Eval(Example)
		if !ok || v != "boom" {
			t.Fatalf("evaluation %d: got %v, %v; want boom, true", i, v, ok)
		}
	}
	if _, ok := Eval(Example); ok {
		t.Fatal("2*return fired a third time")
	}
	if n := Count(Example); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	disable()
	if _, ok := Eval(Example); ok {
		t.Fatal("fired after disable")
	}
}

func TestEnableRejectsBadTerms(t *testing.T) {
	if _, err := Enable(Example, "nonsense((("); err == nil {
		t.Fatal("bad terms accepted")
	}
}

// TestCountWhileEvaluated: Count may be read while other goroutines
// evaluate the failpoint (under -race, gofail's own counter was a data
// race), and it counts every firing; it reads 0 once disabled.
func TestCountWhileEvaluated(t *testing.T) {
	disable, err := Enable(Example, "return")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			Eval(Example)
		}
	}()
	for range 1000 {
		_ = Count(Example)
	}
	<-done
	if n := Count(Example); n != 1000 {
		t.Fatalf("Count = %d, want 1000", n)
	}
	disable()
	if n := Count(Example); n != 0 {
		t.Fatalf("Count after disable = %d, want 0", n)
	}
}
