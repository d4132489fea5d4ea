package bech32

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// BIP-173 test vectors.
func TestBIP173Valid(t *testing.T) {
	for _, s := range []string{
		"A12UEL5L",
		"a12uel5l",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
		"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
		"?1ezyfcl",
	} {
		t.Run(s, func(t *testing.T) {
			hrp, data, err := Decode(s)
			if err != nil {
				t.Fatal(err)
			}
			if got := Encode(hrp, data); got != strings.ToLower(s) {
				t.Fatalf("re-encode = %q", got)
			}
		})
	}
}

func TestBIP173Invalid(t *testing.T) {
	for _, s := range []string{
		"\x201nwldj5",   // HRP character out of range
		"\x7f1axkwrx",   // HRP character out of range
		"pzry9x0s0muk",  // no separator
		"1pzry9x0s0muk", // empty HRP
		"x1b4n0q5v",     // invalid data character
		"li1dgmt3",      // too short checksum
		"de1lg7wt\xff",  // invalid character in checksum
		"A1G7SGD8",      // checksum calculated with uppercase HRP
		"10a06t8",       // empty HRP
		"1qzzfhee",      // empty HRP
		"a12UEL5L",      // mixed case
		"an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx", // too long
	} {
		if _, _, err := Decode(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%q) err = %v, want ErrInvalid", s, err)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("sos", make([]byte, 32))
	f.Add("a", []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, hrp string, data []byte) {
		if len(hrp) == 0 || len(hrp)+1+(len(data)*8+4)/5+6 > 90 || strings.ToLower(hrp) != hrp {
			return
		}
		for i := 0; i < len(hrp); i++ {
			if hrp[i] < 33 || hrp[i] > 126 {
				return
			}
		}
		s := Encode(hrp, data)
		h, d, err := Decode(s)
		if err != nil || h != hrp || !bytes.Equal(d, data) {
			t.Fatalf("round trip of %q %x: %q %x %v", hrp, data, h, d, err)
		}
	})
}
