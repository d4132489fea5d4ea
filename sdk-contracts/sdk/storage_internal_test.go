package sdk

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzKeyRoundTrip checks decode(encode(k)) == k and that the encoding keeps
// uint64 order.
func FuzzKeyRoundTrip(f *testing.F) {
	f.Add(uint64(0), uint64(1), "a", []byte{0, 0xff})
	f.Add(uint64(255), uint64(256), "", []byte(nil))
	f.Fuzz(func(t *testing.T, x, y uint64, s string, b []byte) {
		if got, err := decodeKey[uint64](encodeKey(x)); err != nil || got != x {
			t.Fatalf("uint64 %d -> %d, %v", x, got, err)
		}
		if c := bytes.Compare(encodeKey(x), encodeKey(y)); (c < 0) != (x < y) || (c == 0) != (x == y) {
			t.Fatalf("order of %d and %d not kept", x, y)
		}
		if got, err := decodeKey[string](encodeKey(s)); err != nil || got != s {
			t.Fatalf("string %q -> %q, %v", s, got, err)
		}
		if got, err := decodeKey[[]byte](encodeKey(b)); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("bytes %x -> %x, %v", b, got, err)
		}
		var a Address
		binary.BigEndian.PutUint64(a[24:], x)
		if got, err := decodeKey[Address](encodeKey(a)); err != nil || got != a {
			t.Fatalf("address %x -> %x, %v", a, got, err)
		}
	})
}

func TestDecodeKeyRejectsWrongWidth(t *testing.T) {
	if _, err := decodeKey[uint64]([]byte{1, 2, 3}); err == nil {
		t.Error("3-byte uint64 key accepted")
	}
	if _, err := decodeKey[Address](make([]byte, 31)); err == nil {
		t.Error("31-byte address key accepted")
	}
}

// FuzzValueRoundTrip checks the uint64/int64 fast path writes exactly what
// encoding/json writes, and reads it back.
func FuzzValueRoundTrip(f *testing.F) {
	f.Add(uint64(0), int64(-1))
	f.Add(uint64(1<<64-1), int64(-1<<63))
	f.Fuzz(func(t *testing.T, u uint64, i int64) {
		bu, _ := encodeValue(u)
		if got, err := decodeValue[uint64](bu); err != nil || got != u {
			t.Fatalf("uint64 %d -> %d, %v", u, got, err)
		}
		bi, _ := encodeValue(i)
		if got, err := decodeValue[int64](bi); err != nil || got != i {
			t.Fatalf("int64 %d -> %d, %v", i, got, err)
		}
		type wrap struct{ U uint64 }
		ju, _ := encodeValue(wrap{u})
		if want := `{"U":` + string(bu) + `}`; string(ju) != want {
			t.Fatalf("fast path %s differs from encoding/json %s", bu, ju)
		}
	})
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{[]byte("ab"), []byte("ac")},
		{[]byte{1, 0xff}, []byte{2}},
		{[]byte{0xff, 0xff}, nil},
		{nil, nil},
	} {
		if got := prefixEnd(tc.in); !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("prefixEnd(%x) = %x, want %x", tc.in, got, tc.want)
		}
	}
}
