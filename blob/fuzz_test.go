package blob

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// FuzzVerifyProof decodes untrusted proofs: whatever the bytes and segment,
// VerifyProof never panics and accepts exactly the canonical proof.
func FuzzVerifyProof(f *testing.F) {
	data := content(2*GroupSize+3*SegmentSize+17, 70)
	size := uint64(len(data))
	s := openMem(f, vfs.NewMem(), Options{})
	id := put(f, s, data)
	proofs := make([][]byte, SegmentCount(size))
	for seg := range proofs {
		p, err := s.Prove(id, uint64(seg))
		must(f, err)
		proofs[seg] = p
	}
	for _, seg := range []uint64{0, 1, 16, 34, 35} {
		f.Add(seg, proofs[seg])
	}
	f.Add(uint64(3), proofs[3][:100])
	f.Add(uint64(1<<63), []byte{})
	f.Fuzz(func(t *testing.T, seg uint64, p []byte) {
		err := VerifyProof(id, size, seg, p)
		if err == nil {
			if seg >= uint64(len(proofs)) || !bytes.Equal(p, proofs[seg]) {
				t.Fatalf("accepted a non-canonical proof for segment %d", seg)
			}
			return
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrRange) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// FuzzWriteSlice feeds untrusted slices to a partial blob: a slice is
// written only when it is the canonical one for its chunk, and a rejected
// slice changes nothing.
func FuzzWriteSlice(f *testing.F) {
	data := content(ChunkSize+5*GroupSize+9, 71)
	size := uint64(len(data))
	src := openMem(f, vfs.NewMem(), Options{})
	id := put(f, src, data)
	slicesOf := make([][]byte, ChunkCount(size))
	for k := range slicesOf {
		slicesOf[k] = mustSlice(f, src, id, uint64(k))
	}
	// The seed corpus carries the 1 MiB chunk only cut down; the short last
	// chunk whole.
	f.Add(uint64(1), slicesOf[1])
	f.Add(uint64(0), slicesOf[0][:200])
	f.Add(uint64(0), slicesOf[1])
	f.Add(uint64(2), []byte{})
	dst := openMem(f, vfs.NewMem(), Options{})
	f.Fuzz(func(t *testing.T, k uint64, enc []byte) {
		p, err := dst.Begin(id, size)
		must(t, err)
		defer func() { must(t, p.Abort()) }()
		err = p.WriteSlice(k, enc)
		missing := p.Missing()
		if err == nil {
			if k >= uint64(len(slicesOf)) || !bytes.Equal(enc, slicesOf[k]) {
				t.Fatalf("accepted a non-canonical slice for chunk %d", k)
			}
			if slices.Contains(missing, k) {
				t.Fatal("accepted chunk still missing")
			}
			return
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrRange) {
			t.Fatalf("unclassified error %v", err)
		}
		if len(missing) != len(slicesOf) {
			t.Fatalf("rejected slice changed Missing to %v", missing)
		}
	})
}
