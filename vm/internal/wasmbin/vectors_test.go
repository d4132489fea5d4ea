package wasmbin

import (
	"errors"
	"testing"
)

// TestCheckVectors: each encoding of element and data segments (2.0
// prefixes) and the name section's subsections are walked to their end
// and counted; a count the bytes cannot hold is refused as malformed.
func TestCheckVectors(t *testing.T) {
	big := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	off := []byte{0x41, 0x00, 0x0b}       // i32.const 0; end
	ref := []byte{0xd2, 0x00, 0x0b}       // ref.func 0; end
	cat := func(parts ...[]byte) []byte { // parts concatenated
		var o []byte
		for _, p := range parts {
			o = append(o, p...)
		}
		return o
	}
	elements := []struct {
		name     string
		payload  []byte
		segments uint64
		entries  uint64
		bad      bool
	}{
		{"flags 0", cat([]byte{1, 0}, off, []byte{2, 0, 1}), 1, 2, false},
		{"flags 1", []byte{1, 1, 0, 1, 0}, 1, 1, false},
		{"flags 2", cat([]byte{1, 2, 0}, off, []byte{0, 1, 0}), 1, 1, false},
		{"flags 3", []byte{1, 3, 0, 0}, 1, 0, false},
		{"flags 4", cat([]byte{1, 4}, off, []byte{2}, ref, ref), 1, 2, false},
		{"flags 5", cat([]byte{1, 5, 0x70, 1}, ref), 1, 1, false},
		{"flags 6", cat([]byte{1, 6, 0}, off, []byte{0x70, 1}, ref), 1, 1, false},
		{"flags 7", cat([]byte{1, 7, 0x70, 1}, ref), 1, 1, false},
		{"two segments", cat([]byte{2, 1, 0, 1, 0, 3, 0, 2, 0, 0}), 2, 3, false},
		{"hostile segments", cat(big, []byte{1, 0, 0}), 0, 0, true},
		{"hostile indices", cat([]byte{1, 1, 0}, big), 0, 0, true},
		{"hostile expressions", cat([]byte{1, 5, 0x70}, big, ref), 0, 0, true},
		{"unknown flags", []byte{1, 8, 0, 0}, 0, 0, true},
		{"trailing bytes", []byte{1, 3, 0, 0, 0}, 0, 0, true},
	}
	for _, tc := range elements {
		c, err := CheckElements(tc.payload)
		if tc.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("elements %s: %v, want ErrMalformed", tc.name, err)
			}
			continue
		}
		if err != nil || c.Segments != tc.segments || c.Entries != tc.entries {
			t.Errorf("elements %s: %+v %v, want %d segments, %d entries", tc.name, c, err, tc.segments, tc.entries)
		}
	}
	data := []struct {
		name     string
		payload  []byte
		segments uint32
		bad      bool
	}{
		{"flags 0", cat([]byte{1, 0}, off, []byte{3, 'a', 'b', 'c'}), 1, false},
		{"flags 1", []byte{1, 1, 2, 'a', 'b'}, 1, false},
		{"flags 2", cat([]byte{1, 2, 0}, off, []byte{0}), 1, false},
		{"two", []byte{2, 1, 0, 1, 1, 'x'}, 2, false},
		{"hostile segments", cat(big, []byte{1, 0}), 0, true},
		{"hostile bytes", cat([]byte{1, 1}, big, []byte{'a'}), 0, true},
		{"unknown flags", []byte{1, 3, 0}, 0, true},
	}
	for _, tc := range data {
		n, err := CheckData(tc.payload)
		if tc.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("data %s: %v, want ErrMalformed", tc.name, err)
			}
			continue
		}
		if err != nil || n != tc.segments {
			t.Errorf("data %s: %d %v, want %d", tc.name, n, err, tc.segments)
		}
	}
	name := func(sub ...byte) []byte { return cat([]byte{4, 'n', 'a', 'm', 'e'}, sub) }
	names := []struct {
		name    string
		payload []byte
		want    NameCounts
		bad     bool
	}{
		{"module name", name(0, 2, 1, 'm'), NameCounts{}, false},
		{"function names", name(1, 7, 2, 0, 1, 'f', 1, 1, 'g'), NameCounts{Functions: 2}, false},
		{"local names", name(2, 8, 1, 0, 2, 0, 1, 'a', 1, 0), NameCounts{Functions: 1, Locals: 2}, false},
		{"unknown subsection", name(9, 2, 0xff, 0xff), NameCounts{}, false},
		{"another custom section", cat([]byte{4, 'm', 'e', 't', 'a'}, big), NameCounts{}, false},
		{"hostile function names", name(cat([]byte{1, 6}, big, []byte{0})...), NameCounts{}, true},
		{"hostile locals", name(cat([]byte{2, 8, 1, 0}, big, []byte{0})...), NameCounts{}, true},
		{"subsection past the end", name(1, 9, 0), NameCounts{}, true},
	}
	for _, tc := range names {
		c, err := CheckNames(tc.payload)
		if tc.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("names %s: %v, want ErrMalformed", tc.name, err)
			}
			continue
		}
		if err != nil || c != tc.want {
			t.Errorf("names %s: %+v %v, want %+v", tc.name, c, err, tc.want)
		}
	}
}

// FuzzCheckVectors: the walks never panic, and what they accept they
// count within the bytes they were given.
func FuzzCheckVectors(f *testing.F) {
	f.Add([]byte{1, 1, 0, 1, 0})
	f.Add([]byte{1, 5, 0x70, 1, 0xd2, 0, 0x0b})
	f.Add([]byte{4, 'n', 'a', 'm', 'e', 1, 4, 1, 0, 1, 'f'})
	f.Add([]byte{2, 1, 0, 1, 1, 'x'})
	f.Fuzz(func(t *testing.T, p []byte) {
		if c, err := CheckElements(p); err == nil && (c.Segments > uint64(len(p)) || c.Entries > uint64(len(p))) {
			t.Fatalf("elements: %+v from %d bytes", c, len(p))
		}
		if n, err := CheckData(p); err == nil && uint64(n) > uint64(len(p)) {
			t.Fatalf("data: %d segments from %d bytes", n, len(p))
		}
		if c, err := CheckNames(p); err == nil && (c.Functions > uint64(len(p)) || c.Locals > uint64(len(p))) {
			t.Fatalf("names: %+v from %d bytes", c, len(p))
		}
	})
}
