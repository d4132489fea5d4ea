// Command wasmpost makes a module that wasm-opt rewrote acceptable to the
// node again: binaryen writes a data count section whenever bulk memory is
// enabled (Go's output uses memory.copy and memory.fill, so it must be),
// and the node refuses that section because it exists for passive data
// segments, which it does not support. wasmpost removes the section when
// every data segment is active, and refuses (exit 1) otherwise.
//
// Usage: go run ./sdk-contracts/internal/wasmpost IN.wasm OUT.wasm
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: wasmpost IN.wasm OUT.wasm")
		os.Exit(2)
	}
	in, err := os.ReadFile(os.Args[1])
	if err == nil {
		var out []byte
		if out, err = stripDataCount(in); err == nil {
			err = os.WriteFile(os.Args[2], out, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmpost:", err)
		os.Exit(1)
	}
}

var errMalformed = errors.New("malformed module")

func uleb(b []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		if i >= len(b) {
			return 0, 0, errMalformed
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, 0, errMalformed
}

const (
	secData      = 11
	secDataCount = 12
)

// stripDataCount returns the module without its data count section, after
// checking that every data segment is active (flags 0 or 2).
func stripDataCount(b []byte) ([]byte, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, fmt.Errorf("%w: not a Wasm module", errMalformed)
	}
	out := append([]byte(nil), b[:8]...)
	for i := 8; i < len(b); {
		start := i
		id := b[i]
		n, j, err := uleb(b, i+1)
		if err != nil || n > uint64(len(b)-j) {
			return nil, fmt.Errorf("%w: section at %d", errMalformed, start)
		}
		end := j + int(n)
		if id == secData {
			if err := checkActive(b[j:end]); err != nil {
				return nil, err
			}
		}
		if id != secDataCount {
			out = append(out, b[start:end]...)
		}
		i = end
	}
	return out, nil
}

// checkActive reads the data section's segment flags: 0 (active, memory
// 0) and 2 (active, explicit memory) pass, 1 (passive) is refused.
func checkActive(p []byte) error {
	count, i, err := uleb(p, 0)
	if err != nil {
		return err
	}
	for s := uint64(0); s < count; s++ {
		var flag uint64
		if flag, i, err = uleb(p, i); err != nil {
			return err
		}
		switch flag {
		case 1:
			return fmt.Errorf("data segment %d is passive: the node does not support passive segments", s)
		case 2:
			if _, i, err = uleb(p, i); err != nil {
				return err
			}
			fallthrough
		case 0:
			// The offset: i32.const or global.get with its LEB128
			// immediate (which may contain the end opcode's byte), end.
			if i >= len(p) || p[i] != 0x41 && p[i] != 0x23 {
				return fmt.Errorf("%w: data segment %d: offset is not a constant expression", errMalformed, s)
			}
			if _, i, err = uleb(p, i+1); err != nil {
				return err
			}
			if i >= len(p) || p[i] != 0x0b {
				return fmt.Errorf("%w: data segment %d: offset expression", errMalformed, s)
			}
			i++
		default:
			return fmt.Errorf("%w: data segment %d has flags %d", errMalformed, s, flag)
		}
		var size uint64
		if size, i, err = uleb(p, i); err != nil || size > uint64(len(p)-i) {
			return fmt.Errorf("%w: data segment %d", errMalformed, s)
		}
		i += int(size)
	}
	return nil
}
