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
