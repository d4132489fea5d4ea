// Package units parses and prints byte sizes the way a user writes them:
// "256MiB", "1.5GiB", "64 KB", "4096". Binary suffixes (KiB, MiB, GiB, TiB,
// PiB, EiB) are powers of 1024, SI suffixes (kB/KB, MB, GB, TB, PB, EB)
// powers of 1000, and a bare number or a "B" suffix is bytes. Config files
// and the CLI read sizes with ParseBytes; JSON carries plain byte counts.
package units

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// ErrSize is returned for a size that cannot be read.
var ErrSize = errors.New("not a byte size")

type suffix struct {
	name string
	mult uint64
}

// suffixes in the order they are tried: longer names first.
var suffixes = []suffix{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40}, {"pib", 1 << 50}, {"eib", 1 << 60},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"pb", 1e15}, {"eb", 1e18},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, // as ls -h and dd print them
	{"b", 1},
}

// ParseBytes reads a size: a decimal number (a fraction is allowed if the
// result is a whole number of bytes) and an optional unit, case-insensitive,
// with optional space between. "0" is zero.
func ParseBytes(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := uint64(1)
	for _, x := range suffixes {
		if strings.HasSuffix(t, x.name) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, x.name)), x.mult
			break
		}
	}
	if t == "" || strings.ContainsAny(t, "+-eE_") {
		return 0, fmt.Errorf("units: %q: %w (want a number and a unit, e.g. 256MiB)", s, ErrSize)
	}
	if v, err := strconv.ParseUint(t, 10, 64); err == nil {
		if v != 0 && mult > ^uint64(0)/v {
			return 0, fmt.Errorf("units: %q: %w: above 2^64 bytes", s, ErrSize)
		}
		return v * mult, nil
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok {
		return 0, fmt.Errorf("units: %q: %w (want a number and a unit, e.g. 256MiB)", s, ErrSize)
	}
	r.Mul(r, new(big.Rat).SetUint64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("units: %q: %w: not a whole number of bytes", s, ErrSize)
	}
	if !r.Num().IsUint64() {
		return 0, fmt.Errorf("units: %q: %w: above 2^64 bytes", s, ErrSize)
	}
	return r.Num().Uint64(), nil
}

var binary = []struct {
	name  string
	shift uint
}{{"EiB", 60}, {"PiB", 50}, {"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}}

// FormatExact prints n with the largest binary unit that divides it
// ("256MiB", "1536KiB", "1000"): ParseBytes gives n back. It is how
// sizes are written to config files.
func FormatExact(n uint64) string {
	for _, u := range binary {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatUint(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatUint(n, 10)
}

// Format prints n for people: bytes below 1 KiB ("512B"), else in the
// largest binary unit it reaches, whole when exact ("256MiB"), otherwise
// rounded to one decimal ("2.9MiB").
func Format(n uint64) string {
	for _, u := range binary {
		if n >= 1<<u.shift {
			whole, rem := n>>u.shift, n&(1<<u.shift-1)
			if rem == 0 {
				return strconv.FormatUint(whole, 10) + u.name
			}
			tenths := (rem*10 + 1<<(u.shift-1)) >> u.shift
			if tenths == 10 {
				whole, tenths = whole+1, 0
			}
			return strconv.FormatUint(whole, 10) + "." + strconv.FormatUint(tenths, 10) + u.name
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}
