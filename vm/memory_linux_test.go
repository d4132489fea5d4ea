//go:build linux

package vm

import (
	"bytes"
	"fmt"
	"testing"
)

// TestMemoryWriteCount holds both ways of counting written pages (write
// protection, private copies) to the same answers: exact counts whatever
// the mapping went through before, reads not counted, grown memory
// counted, and reset restoring the snapshot and zero beyond it.
func TestMemoryWriteCount(t *testing.T) {
	data := make([]byte, 16*pageSize)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	for _, protect := range []bool{true, false} {
		t.Run(fmt.Sprintf("protect=%v", protect), func(t *testing.T) {
			img, err := newImage(data, 64*pageSize)
			if err != nil {
				t.Fatal(err)
			}
			defer img.close()
			img.noProtect = !protect
			lm := img.newMemory(64 * pageSize)
			m, ok := lm.(*mmapMemory)
			if !ok {
				t.Fatalf("%T", lm)
			}
			if protect && m.uffd < 0 {
				t.Skip("no userfaultfd write protection on this kernel")
			}
			var buf []byte
			check := func(want int) {
				t.Helper()
				got, err := m.written()
				if err != nil || got != want {
					t.Fatalf("written %d, %v; want %d", got, err, want)
				}
			}
			for round := range 3 {
				buf = m.Reallocate(40 * pageSize) // grown by 24 pages
				check(0)
				var sum int
				for p := range 40 { // reads are free
					sum += int(buf[p*pageSize+5])
				}
				check(0)
				buf[3] = 1                                            // page 0
				buf[pageSize-1] = 1                                   // page 0 again
				copy(buf[5*pageSize:5*pageSize+1], data[5*pageSize:]) // page 5, same value: still a write
				copy(buf[9*pageSize-2:], "xyzw")                      // pages 8 and 9
				buf[20*pageSize+round] = 9                            // grown page 20
				if round == 2 {
					clear(buf[:40*pageSize]) // every page
					check(40)
				} else {
					check(5)
				}
				if err := m.reset(); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf[:len(data)], data) || !allZero(buf[len(data):40*pageSize]) {
					t.Fatal("reset did not restore the snapshot")
				}
				_ = sum
			}
			// A mapping freed by an instance serves the next one, unwritten.
			buf = m.Reallocate(40 * pageSize)
			buf[pageSize] = 1
			m.Free()
			m2 := img.newMemory(64 * pageSize).(*mmapMemory)
			if m2 != m {
				t.Fatal("the freed mapping was not reused")
			}
			check(0)
		})
	}
}

// TestMemoryResetSparse: reset write-protects the runs of written pages
// one by one when they lie more than protectGap apart (not the whole span
// between the first and the last), and every page written after it is
// counted again, in a run, in a gap between runs or beyond both.
func TestMemoryResetSparse(t *testing.T) {
	const pages = 128
	data := make([]byte, pages*pageSize)
	for i := range data {
		data[i] = byte(i*13 + 5)
	}
	img, err := newImage(data, pages*pageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	m, ok := img.newMemory(pages * pageSize).(*mmapMemory)
	if !ok || m.uffd < 0 {
		t.Skip("no userfaultfd write protection on this kernel")
	}
	buf := m.Reallocate(pages * pageSize)
	rounds := [][]int{
		{0, 1, 2, 40, 41, 127},             // three runs far apart
		{0, 20, 41, 60, 100, 127},          // the gaps, the runs' ends
		{3, 3 + protectGap, 90},            // two runs merged across a gap of protectGap
		{3 + protectGap/2, 4, 19, 91, 126}, // inside and around the merged run
		{0, 1, 2, 40, 41, 127},
	}
	for r, write := range rounds {
		for _, p := range write {
			buf[p*pageSize+r] ^= 0xff
		}
		got, err := m.written()
		if err != nil || got != len(write) {
			t.Fatalf("round %d: written %d, %v; want %d", r, got, err, len(write))
		}
		if err := m.reset(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data) {
			t.Fatalf("round %d: reset did not restore the snapshot", r)
		}
		if got, err := m.written(); err != nil || got != 0 {
			t.Fatalf("round %d: %d pages written after reset, %v", r, got, err)
		}
	}
}
