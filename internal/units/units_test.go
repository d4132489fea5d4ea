package units

import (
	"errors"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"0", 0}, {"4096", 4096}, {"12B", 12}, {"1KiB", 1024}, {"256MiB", 256 << 20}, {"256 mib", 256 << 20},
		{"1.5GiB", 3 << 29}, {"64KB", 64_000}, {"64kB", 64_000}, {"2MB", 2_000_000}, {"1TiB", 1 << 40},
		{"16EiB", 0}, // overflow, see below
		{"10M", 10 << 20}, {"0.5KiB", 512}, {"15EiB", 15 << 60},
	} {
		got, err := ParseBytes(c.in)
		if c.in == "16EiB" {
			if err == nil {
				t.Errorf("ParseBytes(%q) = %d, want an overflow error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.3B", "0.1KiB", "1e3", "abc", "1 2MiB", "1_000", "+5", "99999999999999999999"} {
		if v, err := ParseBytes(bad); err == nil || !errors.Is(err, ErrSize) {
			t.Errorf("ParseBytes(%q) = %d, %v; want ErrSize", bad, v, err)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		n            uint64
		exact, human string
	}{
		{0, "0", "0B"}, {512, "512", "512B"}, {1024, "1KiB", "1KiB"}, {1536, "3KiB"[:0] + "1536", "1.5KiB"},
		{256 << 20, "256MiB", "256MiB"}, {3_000_000, "3000000", "2.9MiB"}, {1 << 40, "1TiB", "1TiB"},
		{1<<30 + 1<<20, "1025MiB", "1.0GiB"},
	} {
		if got := FormatExact(c.n); got != c.exact {
			t.Errorf("FormatExact(%d) = %q, want %q", c.n, got, c.exact)
		}
		if got := Format(c.n); got != c.human {
			t.Errorf("Format(%d) = %q, want %q", c.n, got, c.human)
		}
	}
}

// FuzzParseBytes: ParseBytes never panics, and what FormatExact prints
// parses back to the same size.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"256MiB", "1.5GiB", "0", "64 KB", "18446744073709551615", "1e3", ".5k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			return
		}
		back, err := ParseBytes(FormatExact(n))
		if err != nil || back != n {
			t.Fatalf("%q = %d; FormatExact %q parses to %d, %v", s, n, FormatExact(n), back, err)
		}
	})
}
