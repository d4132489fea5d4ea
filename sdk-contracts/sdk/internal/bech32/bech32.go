// Package bech32 encodes and decodes BIP-173 bech32 strings, the form of
// every address on the chain ("sos1..."). It is the standard library-only
// twin of the node's encoder, used where no host is present (native builds
// and the test harness).
package bech32

import (
	"errors"
	"fmt"
	"strings"
)

const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// ErrInvalid reports a malformed bech32 string.
var ErrInvalid = errors.New("bech32: invalid")

func polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if (top>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

func hrpExpand(hrp string) []byte {
	out := make([]byte, 0, len(hrp)*2+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

func convertBits(data []byte, from, to uint, pad bool) ([]byte, error) {
	var acc, bits uint
	maxv := uint(1)<<to - 1
	out := make([]byte, 0, len(data)*int(from)/int(to)+1)
	for _, b := range data {
		if uint(b)>>from != 0 {
			return nil, fmt.Errorf("%w: data byte out of range", ErrInvalid)
		}
		acc = acc<<from | uint(b)
		bits += from
		for bits >= to {
			bits -= to
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(to-bits)&maxv))
		}
	} else if bits >= from || acc<<(to-bits)&maxv != 0 {
		return nil, fmt.Errorf("%w: non-zero padding", ErrInvalid)
	}
	return out, nil
}

// Encode renders data under the human-readable prefix hrp.
func Encode(hrp string, data []byte) string {
	five, _ := convertBits(data, 8, 5, true) // cannot fail: bytes are 8-bit
	values := append(hrpExpand(hrp), five...)
	pm := polymod(append(values, 0, 0, 0, 0, 0, 0)) ^ 1
	var sb strings.Builder
	sb.Grow(len(hrp) + 1 + len(five) + 6)
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, v := range five {
		sb.WriteByte(charset[v])
	}
	for i := range 6 {
		sb.WriteByte(charset[(pm>>(5*(5-i)))&31])
	}
	return sb.String()
}

// Decode parses s and returns its prefix (lower case) and data.
func Decode(s string) (hrp string, data []byte, err error) {
	if len(s) > 90 {
		return "", nil, fmt.Errorf("%w: longer than 90 characters", ErrInvalid)
	}
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "", nil, fmt.Errorf("%w: mixed case", ErrInvalid)
	}
	s = strings.ToLower(s)
	pos := strings.LastIndexByte(s, '1')
	if pos < 1 || pos+7 > len(s) {
		return "", nil, fmt.Errorf("%w: missing separator or checksum", ErrInvalid)
	}
	hrp = s[:pos]
	for i := 0; i < len(hrp); i++ {
		if hrp[i] < 33 || hrp[i] > 126 {
			return "", nil, fmt.Errorf("%w: prefix character %q", ErrInvalid, hrp[i])
		}
	}
	five := make([]byte, 0, len(s)-pos-1)
	for i := pos + 1; i < len(s); i++ {
		idx := strings.IndexByte(charset, s[i])
		if idx < 0 {
			return "", nil, fmt.Errorf("%w: character %q", ErrInvalid, s[i])
		}
		five = append(five, byte(idx))
	}
	if polymod(append(hrpExpand(hrp), five...)) != 1 {
		return "", nil, fmt.Errorf("%w: checksum mismatch", ErrInvalid)
	}
	data, err = convertBits(five[:len(five)-6], 5, 8, false)
	if err != nil {
		return "", nil, err
	}
	return hrp, data, nil
}
