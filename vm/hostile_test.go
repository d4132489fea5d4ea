package vm

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
)

// hostileModules are tiny modules whose element, data or name section
// declares a vector of 2^32 − 1 entries. wazero's decoder allocates a
// slice that long before reading an entry, so each of them once ended the
// process compiling it with "fatal error: runtime: out of memory" (an
// unrecoverable error, not a panic): a contract upload, a policy or a job
// of a few dozen bytes took down the node, and every node that applied it.
func hostileModules() map[string][]byte {
	section := func(id byte, payload ...byte) []byte { return append([]byte{id, byte(len(payload))}, payload...) }
	maxU32 := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	cat := func(parts ...[]byte) []byte {
		o := []byte("\x00asm\x01\x00\x00\x00")
		for _, p := range parts {
			o = append(o, p...)
		}
		return o
	}
	typ := section(1, 0x01, 0x60, 0x00, 0x00)                               // () -> ()
	fn := section(3, 0x01, 0x00)                                            // one function of type 0
	tab := section(4, 0x01, 0x70, 0x00, 0x01)                               // a funcref table of 1
	mem := section(5, 0x01, 0x00, 0x01)                                     // one page
	exp := section(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00) // _start
	code := section(10, 0x01, 0x02, 0x00, 0x0b)
	name := func(sub ...byte) []byte {
		return section(0, append([]byte{0x04, 'n', 'a', 'm', 'e'}, sub...)...)
	}
	return map[string][]byte{
		"element segments":     cat(typ, fn, tab, mem, exp, section(9, append(maxU32, 0x00, 0x00)...), code),
		"element entries":      cat(typ, fn, tab, mem, exp, section(9, append([]byte{0x01, 0x01, 0x00}, append(maxU32, 0x00)...)...), code),
		"element expressions":  cat(typ, fn, tab, mem, exp, section(9, append([]byte{0x01, 0x05, 0x70}, append(maxU32, 0x00)...)...), code),
		"data segments":        cat(typ, fn, tab, mem, exp, code, section(11, append(maxU32, 0x00, 0x00)...)),
		"data bytes":           cat(typ, fn, tab, mem, exp, code, section(11, append([]byte{0x01, 0x01}, append(maxU32, 0x00)...)...)),
		"function names":       cat(typ, fn, tab, mem, exp, code, name(append([]byte{0x01, 0x06}, append(maxU32, 0x00)...)...)),
		"local names":          cat(typ, fn, tab, mem, exp, code, name(append([]byte{0x02, 0x06}, append(maxU32, 0x00)...)...)),
		"locals of a function": cat(typ, fn, tab, mem, exp, code, name(append([]byte{0x02, 0x08, 0x01, 0x00}, append(maxU32, 0x00)...)...)),
	}
}

// TestHostileVectorCounts: each hostile module is refused as invalid by
// the contract upload (Prepare) and by the jobs' executor, with a clear
// error, before wazero sees it, and the VM goes on working.
func TestHostileVectorCounts(t *testing.T) {
	ctx := context.Background()
	contracts := newVM(t, Config{})
	jobs := testJobVM(t, 0)
	for name, wasm := range hostileModules() {
		t.Run(name, func(t *testing.T) {
			_, _, err := contracts.Prepare(ctx, testCode, wasm, MaxUploadGas)
			if !errors.Is(err, ErrInvalidModule) {
				t.Errorf("contract upload: %v, want ErrInvalidModule", err)
			}
			t.Logf("contract upload: %v", err)
			res, err := jobs.RunJob(ctx, sha256.Sum256(wasm), JobBytes("", wasm), testJobSpec())
			if err != nil || res.Status != JobTrapped || !errors.Is(res.Err, ErrInvalidModule) {
				t.Errorf("job: %v %v %v, want trapped with ErrInvalidModule", res.Status, res.Err, err)
			}
		})
	}
	// Both still work.
	res := runJobtool(t, jobs, testJobSpec("hello"))
	if res.Status != JobExited {
		t.Fatalf("job after the hostile ones: %v %v", res.Status, res.Err)
	}
}
