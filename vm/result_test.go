package vm

import (
	"context"
	"errors"
	"testing"

	"github.com/sos-kernel/sos/vm/wasmasm"
)

// TestResultKeptOnFailure: the last result the guest passed to set_result
// is returned also when the call then traps, runs out of gas or hits a
// limit, and a set_result that cannot pay its gas or breaks a limit does
// not replace it (a policy's caller uses it: docs/rome-policy-abi.md).
func TestResultKeptOnFailure(t *testing.T) {
	s32 := wasmasm.S32
	types := [][]byte{functype(nil, []byte{tI32}), functype([]byte{tI32, tI32}, nil)}
	imports := [][]byte{cat(name("sos"), name("set_result"), []byte{0}, u32(1))}
	setResult := func(ptr, n int32) []byte { // i32.const ptr, i32.const n, call 0
		return cat([]byte{0x41}, s32(ptr), []byte{0x41}, s32(n), []byte{0x10, 0x00})
	}
	loop := []byte{0x03, 0x40, 0x0c, 0x00, 0x0b} // loop br 0 end
	module := func(tail ...byte) []byte {
		// Data at 0: "firstsecond". Hands in "first", then "second", then tail.
		code := cat(setResult(0, 5), setResult(5, 6), tail, []byte{0x41, 0x00, 0x0b})
		return asmModule{types: types, imports: imports, funcTypes: []uint32{0}, bodies: [][]byte{body(code...)},
			exports: [][]byte{exportFunc("execute", 1)},
			data:    vec(cat([]byte{0x00, 0x41, 0x00, 0x0b}, u32(11), []byte("firstsecond")))}.bytes()
	}
	for _, tc := range []struct {
		name string
		wasm []byte
		gas  uint64
		err  error
		want string
	}{
		{"returns", module(), 1_000_000, nil, "second"},
		{"trap", module(0x00), 1_000_000, ErrTrap, "second"},
		{"out of gas", module(loop...), 1_000_000, ErrOutOfGas, "second"},
		// A result above the limit traps before replacing the last one.
		{"limit", module(setResult(0, MaxResultBytes+1)...), 1_000_000, ErrLimit, "second"},
		// Out of gas inside set_result (60,000 bytes copied: ≈2,000 gas in cost
		// table v4, above what is left): the result it would have set is not kept.
		{"out of gas in set_result", module(setResult(0, 60_000)...), 1_000, ErrOutOfGas, "second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVM(t, Config{})
			code := [32]byte{byte(len(tc.name))}
			p, _, err := v.Prepare(context.Background(), code, tc.wasm, MaxUploadGas)
			if err != nil {
				t.Fatal(err)
			}
			load, err := loadGas(p) // charged before the call runs: the budgets are on top of it
			if err != nil {
				t.Fatal(err)
			}
			res, err := v.Call(context.Background(), code, p, "execute", nil, testEnv(), newFakeHost(), load+tc.gas)
			if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if string(res.Data) != tc.want {
				t.Fatalf("Data %q, want %q", res.Data, tc.want)
			}
		})
	}
}
