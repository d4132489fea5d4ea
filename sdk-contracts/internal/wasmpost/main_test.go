package main

import (
	"bytes"
	"errors"
	"testing"
)

// module: header, a type section, a data count section and a data section
// with one active segment (i32.const 16, "hi").
var module = []byte{
	0, 'a', 's', 'm', 1, 0, 0, 0,
	1, 1, 0, // type section, empty vector
	12, 1, 1, // data count: 1
	11, 8, 1, 0, 0x41, 16, 0x0b, 2, 'h', 'i',
}

func TestStripDataCount(t *testing.T) {
	out, err := stripDataCount(module)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), module[:11]...), module[14:]...)
	if !bytes.Equal(out, want) {
		t.Fatalf("got %x\nwant %x", out, want)
	}
	passive := append(append([]byte(nil), module[:14]...), 11, 5, 1, 1, 2, 'h', 'i')
	if _, err := stripDataCount(passive); err == nil {
		t.Fatal("a passive segment passed")
	}
	// An offset whose LEB128 immediate holds the end opcode's byte (11).
	eleven := append(append([]byte(nil), module[:14]...), 11, 8, 1, 0, 0x41, 11, 0x0b, 2, 'h', 'i')
	if _, err := stripDataCount(eleven); err != nil {
		t.Fatalf("offset 11: %v", err)
	}
	if _, err := stripDataCount(module[:len(module)-1]); !errors.Is(err, errMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}

func FuzzStripDataCount(f *testing.F) {
	f.Add(module)
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := stripDataCount(b)
		if err != nil {
			return
		}
		// Stripping is idempotent and never grows the module.
		again, err := stripDataCount(out)
		if err != nil || !bytes.Equal(again, out) || len(out) > len(b) {
			t.Fatalf("not idempotent: %x -> %x -> %x (%v)", b, out, again, err)
		}
	})
}
