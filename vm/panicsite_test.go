package vm

import "testing"

// TestPanicSite: a Go guest's panic names the function and the source line
// it panicked at, read from the traceback its runtime printed (modules are
// stripped of their name section, so the trap location is only "$1467").
func TestPanicSite(t *testing.T) {
	log := "panic: chaos: boom\n\ngoroutine 1 [running]:\nmain.init.func5(0x28c138, {})\n" +
		"\tgithub.com/sos-kernel/sos/kernel/testdata/chaos/chaos.go:112 +0x7\n" +
		"main.init.Handler[...].func16({0x28e068, 0x2, 0x8})\n\tgithub.com/sos-kernel/sos/sdk-contracts/sdk/contract.go:34 +0x9\n"
	s := &callState{log: []byte(log)}
	want := ": contract panicked: panic: chaos: boom (in main.init.func5 at github.com/sos-kernel/sos/kernel/testdata/chaos/chaos.go:112)"
	if got := s.panicText(); got != want {
		t.Fatalf("panicText\n got %q\nwant %q", got, want)
	}
	if got := panicSite("panic: x\n"); got != "" {
		t.Fatalf("no traceback: %q", got)
	}
	if got := panicSite("panic: x\n\ngoroutine 1 [running]:\n"); got != "" {
		t.Fatalf("truncated traceback: %q", got)
	}
}
