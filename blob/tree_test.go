package blob

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"lukechampine.com/blake3"
	"lukechampine.com/blake3/bao"
)

// sizes covers the edges of every unit: segment, group, transfer chunk.
var sizes = []int{
	0, 1, 1023, 1024, 1025, 2049,
	GroupSize - 1, GroupSize, GroupSize + 1, 3*GroupSize + 5,
	ChunkSize - 1, ChunkSize, ChunkSize + 1, ChunkSize + GroupSize,
	2*ChunkSize + 7, 3*ChunkSize + ChunkSize/2 + 1000,
}

// TestBLAKE3Vectors checks ids against the official BLAKE3 test vectors
// (input byte i is i % 251), i.e. what b3sum prints for those inputs.
func TestBLAKE3Vectors(t *testing.T) {
	vectors := []struct {
		n    int
		hash string
	}{
		{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
		{1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
		{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
		{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
		{2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
		{8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
		{16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"},
		{31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
	}
	s := openMem(t, vfs.NewMem(), Options{})
	for _, v := range vectors {
		in := make([]byte, v.n)
		for i := range in {
			in[i] = byte(i % 251)
		}
		want, err := ParseID(v.hash)
		if err != nil {
			t.Fatal(err)
		}
		if got := Sum(in); got != want {
			t.Errorf("Sum(%d bytes) = %s, want %s", v.n, got, want)
		}
		if got := put(t, s, in); got != want {
			t.Errorf("Put(%d bytes) = %s, want %s", v.n, got, want)
		}
	}
}

func TestIDText(t *testing.T) {
	id := Sum([]byte("abc"))
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID(String()) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "zz", id.String()[:63], id.String() + "0", "g" + id.String()[1:]} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
	b, _ := id.MarshalText()
	var back ID
	if err := back.UnmarshalText(b); err != nil || back != id {
		t.Fatalf("text round trip: %v %v", back, err)
	}
}

// postOrder lists the parent spans of a tree of n leaves in post-order.
func postOrder(lo, hi uint64, out []span) []span {
	if hi-lo < 2 {
		return out
	}
	m := split(lo, hi)
	out = postOrder(lo, m, out)
	out = postOrder(m, hi, out)
	return append(out, span{lo, hi})
}

func TestEntryIndexIsPostOrder(t *testing.T) {
	for n := uint64(1); n <= 600; n++ {
		order := postOrder(0, n, nil)
		if uint64(len(order)) != n-1 {
			t.Fatalf("n=%d: %d parents", n, len(order))
		}
		for i, s := range order {
			if got := entryIndex(n, s); got != uint64(i) {
				t.Fatalf("n=%d: entryIndex(%v) = %d, want %d", n, s, got, i)
			}
		}
	}
	// Large trees: spot-check the spine and the last aligned blocks.
	for _, n := range []uint64{1<<20 + 12345, 1<<33 - 1, 1 << 36} {
		path, ok := ancestors(n, span{n - 1, n}, nil)
		if !ok {
			t.Fatal("last leaf not a subtree")
		}
		// The root is the last entry; the deepest spine node comes after all
		// aligned blocks, so indexes along the path decrease root-down.
		if got := entryIndex(n, path[0]); got != n-2 {
			t.Fatalf("n=%d: root index %d, want %d", n, got, n-2)
		}
		for i := 1; i < len(path); i++ {
			if entryIndex(n, path[i]) >= entryIndex(n, path[i-1]) {
				t.Fatalf("n=%d: child %v not before parent %v", n, path[i], path[i-1])
			}
		}
	}
}

// preOrder lists the parent spans of a tree of n groups in pre-order (the
// order of a Bao outboard).
func preOrder(lo, hi uint64, out []span) []span {
	if hi-lo < 2 {
		return out
	}
	m := split(lo, hi)
	out = append(out, span{lo, hi})
	out = preOrder(lo, m, out)
	return preOrder(m, hi, out)
}

// TestOutboardMatchesBao checks the stored outboard against the Bao
// library's (pre-order, group 4): the same pairs, at the post-order places.
func TestOutboardMatchesBao(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := content(n, uint64(n))
			id := put(t, s, data)
			enc, root := bao.EncodeBuf(data, groupLog, true)
			if id != ID(root) || id != ID(blake3.Sum256(data)) {
				t.Fatalf("id %s, bao root %x", id, root)
			}
			ob, err := readAll(s, s.obaoPath(id))
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(ob)) != outboardLen(uint64(n)) {
				t.Fatalf("outboard %d bytes, want %d", len(ob), outboardLen(uint64(n)))
			}
			ng := ceilDiv(leaves(uint64(n)), groupSegs)
			pre := preOrder(0, ng, nil)
			if len(enc) != lenPrefix+pairSize*len(pre) || binary.LittleEndian.Uint64(enc) != uint64(n) {
				t.Fatalf("bao outboard %d bytes for %d pairs", len(enc), len(pre))
			}
			for i, sp := range pre {
				want := enc[lenPrefix+i*pairSize:][:pairSize]
				j := entryIndex(ng, sp)
				got := ob[outHdrSize+j*pairSize:][:pairSize]
				if !bytes.Equal(got, want) {
					t.Fatalf("pair %v (post-order %d) differs from bao's", sp, j)
				}
			}
		})
	}
}

// TestSlicesMatchBao checks ReadSlice against the Bao library's slice
// extraction with 1 MiB groups, and VerifySlice against its verifier.
func TestSlicesMatchBao(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := content(n, uint64(n)+1)
			id := put(t, s, data)
			combined, _ := bao.EncodeBuf(data, bits.TrailingZeros(chunkSegs), false)
			for k := uint64(0); k < ChunkCount(uint64(n)); k++ {
				enc, err := s.ReadSlice(id, k)
				if err != nil {
					t.Fatal(err)
				}
				off, length := k*ChunkSize, min((k+1)*ChunkSize, uint64(n))-k*ChunkSize
				var want bytes.Buffer
				if err := bao.ExtractSlice(&want, bytes.NewReader(combined), nil, bits.TrailingZeros(chunkSegs), off, length); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc, want.Bytes()) {
					t.Fatalf("chunk %d: slice differs from bao's (%d vs %d bytes)", k, len(enc), want.Len())
				}
				if l, _ := SliceLen(uint64(n), k); l != len(enc) {
					t.Fatalf("SliceLen %d, slice %d", l, len(enc))
				}
				got, err := VerifySlice(id, uint64(n), k, enc)
				if err != nil || !bytes.Equal(got, data[off:off+length]) {
					t.Fatalf("chunk %d: VerifySlice: %v", k, err)
				}
				if length > 0 {
					if _, ok := bao.VerifySlice(enc, bits.TrailingZeros(chunkSegs), off, length, id); !ok {
						t.Fatalf("chunk %d: bao rejects our slice", k)
					}
				}
			}
			if _, err := s.ReadSlice(id, ChunkCount(uint64(n))); !isRange(err) {
				t.Fatalf("slice past the end: %v", err)
			}
		})
	}
}

func isRange(err error) bool { return err != nil && errorsIs(err, ErrRange) }

func TestSplitAndAncestors(t *testing.T) {
	for _, c := range []struct{ lo, hi, m uint64 }{{0, 2, 1}, {0, 3, 2}, {0, 4, 2}, {0, 5, 4}, {8, 13, 12}, {0, 1<<40 + 1, 1 << 40}} {
		if got := split(c.lo, c.hi); got != c.m {
			t.Errorf("split(%d,%d) = %d, want %d", c.lo, c.hi, got, c.m)
		}
	}
	if _, ok := ancestors(10, span{3, 5}, nil); ok {
		t.Error("[3,5) of 10 leaves is not a subtree")
	}
	if p, ok := ancestors(1, span{0, 1}, nil); !ok || len(p) != 0 {
		t.Error("a single leaf is the root")
	}
}
