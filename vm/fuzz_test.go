package vm

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
)

// FuzzPrepare feeds mutated modules to Prepare: it must never panic or
// hang (initialization is bounded by gas, input by MaxCodeBytes), and a
// module it accepts must be callable.
func FuzzPrepare(f *testing.F) {
	for _, m := range []asmModule{
		simple(0x41, 0, 0x0b),
		simple(0x41, 10, 0x40, 0, 0x0b),
		simple(0x03, 0x40, 0x0c, 0, 0x0b, 0x41, 0, 0x0b),
		{
			types:     [][]byte{functype(nil, []byte{tI32}), functype(nil, nil)},
			funcTypes: []uint32{0, 1},
			bodies: [][]byte{
				body(0x23, 0, 0x41, 0xe4, 0, 0x2d, 0, 0, 0x6a, 0x0b),
				body(0x41, 9, 0x24, 0, 0x41, 0xe4, 0, 0x41, 7, 0x3a, 0, 0, 0x0b),
			},
			globals: vec([]byte{tI32, 1, 0x41, 5, 0x0b}),
			exports: [][]byte{exportFunc("execute", 0), exportFunc("_initialize", 1)},
			data:    vec(cat([]byte{0, 0x41, 8, 0x0b}, vec([]byte("hi")))),
		},
	} {
		f.Add(m.bytes())
	}
	v, err := New(context.Background(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer v.Close(context.Background())
	f.Fuzz(func(t *testing.T, wasm []byte) {
		id := sha256.Sum256(wasm)
		p, info, err := v.Prepare(context.Background(), id, wasm, 50_000_000)
		if err != nil {
			if !errors.Is(err, ErrInvalidModule) && !errors.Is(err, ErrLimit) &&
				!errors.Is(err, ErrTrap) && !errors.Is(err, ErrOutOfGas) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		for _, e := range info.Exports {
			if e == "execute" {
				_, err := v.Call(context.Background(), id, p, "execute", nil, testEnv(), newFakeHost(), 10_000_000)
				if errors.Is(err, ErrInvalidModule) {
					t.Fatalf("prepared module rejected by Call: %v", err)
				}
			}
		}
	})
}
