package blake3

import (
	"encoding/hex"
	"testing"
)

// Known answers from the BLAKE3 reference test vectors (input byte i is
// i % 251) plus two common strings.
func TestSum256(t *testing.T) {
	pattern := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i % 251)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{"abc", []byte("abc"), "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"},
		{"pattern-1", pattern(1), "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
		{"pattern-1025", pattern(1025), "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
		{"pattern-8193", pattern(8193), "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
		{"pattern-102400", pattern(102400), "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Sum256(tc.in)
			if hex.EncodeToString(got[:]) != tc.want {
				t.Fatalf("Sum256 = %x, want %s", got, tc.want)
			}
		})
	}
}

func BenchmarkSum256_1KiB(b *testing.B) {
	data := make([]byte, 1024)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Sum256(data)
	}
}
